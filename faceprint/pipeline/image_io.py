"""Image loading: turn any supported input into an RGB ``uint8`` array of shape (H, W, 3).

Accepted inputs are a file path (``str`` / ``os.PathLike``), encoded image data (``bytes``,
``bytearray``, ``memoryview``), a numpy array or a ``PIL.Image.Image``. Anything that cannot be
read raises a documented :mod:`faceprint.errors` exception whose message names the source.

Encoded data is decoded with Pillow, with pillow-heif's opener registered for HEIC/HEIF (the
iPhone default); :data:`SUPPORTED_FORMATS` lists the formats and :data:`IMAGE_SUFFIXES` their file
name suffixes. 16-bit colour PNG and TIFF, which Pillow cuts to their high byte, are decoded with
OpenCV instead. Data wider than 8 bits (16-bit PIL modes, ``uint16`` arrays, 16-bit colour files)
is scaled by the smallest bit depth that holds its largest value, 8, 10, 12, 14 or 16 bits
(:func:`bit_depth`), so 12-bit data from an infrared or machine-vision camera stored in a 16-bit
PNG keeps its brightness.

The pixel count is read from the header and checked against ``max_pixels`` *before* any pixel is
decoded (decompression-bomb guard); this check does not rely on Pillow's global
``Image.MAX_IMAGE_PIXELS``, though Pillow's own bomb errors are also mapped to
:class:`ImageTooLargeError`. Truncated files are errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is
never enabled here).
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from faceprint.errors import ImageDecodeError, ImageTooLargeError, UnsupportedInputError

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener()

DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels
DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # 50 MiB of encoded data


@dataclass(frozen=True)
class ImageFormat:
    """One encoded image format that :func:`load_image` reads.

    ``suffixes`` are lower-case file name suffixes with the dot; ``reader`` names the library
    that decodes it; ``notes`` says what is done beyond a plain RGB decode.
    """

    name: str
    suffixes: tuple[str, ...]
    reader: str
    notes: str


SUPPORTED_FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("JPEG", (".jpg", ".jpeg", ".jpe", ".jfif"), "Pillow",
                "EXIF orientation applied; CMYK and grey converted"),
    ImageFormat("PNG", (".png", ".apng"), "Pillow; OpenCV for 16-bit colour",
                "alpha composited over white; 16-bit scaled by its real bit depth; first frame of APNG"),
    ImageFormat("HEIC/HEIF", (".heic", ".heif", ".hif"), "pillow-heif (libheif)",
                "iPhone default; primary image; 10-bit HDR reduced to 8-bit"),
    ImageFormat("AVIF", (".avif",), "Pillow (libavif)", "primary image"),
    ImageFormat("WebP", (".webp",), "Pillow", "lossy and lossless; first frame"),
    ImageFormat("TIFF", (".tif", ".tiff"), "Pillow; OpenCV for 16-bit colour",
                "first page; 16-bit scaled by its real bit depth"),
    ImageFormat("BMP", (".bmp", ".dib"), "Pillow", ""),
    ImageFormat("GIF", (".gif",), "Pillow", "first frame; transparency over white"),
    ImageFormat("Netpbm", (".pgm", ".ppm", ".pbm", ".pnm"), "Pillow", "16-bit PGM scaled by its real bit depth"),
    ImageFormat("JPEG 2000", (".jp2", ".j2k", ".jpf", ".jpx"), "Pillow (OpenJPEG)",
                "as in ICAO passport chips"),
)
#: Lower-case file name suffixes treated as images when a folder is scanned: every suffix of
#: :data:`SUPPORTED_FORMATS`.
IMAGE_SUFFIXES = frozenset(suffix for fmt in SUPPORTED_FORMATS for suffix in fmt.suffixes)
#: The accepted formats in words, for error messages.
ACCEPTED_FORMATS = ", ".join(fmt.name for fmt in SUPPORTED_FORMATS)

ImageInput = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image

_ACCEPTED = "a path, bytes/bytearray/memoryview, a numpy array or a PIL image"
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
_WIDE_GREY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_BIT_DEPTHS = (8, 10, 12, 14, 16)
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def describe_source(source: object) -> str:
    """Return a short human label for ``source``, for error messages and logs."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{type(source).__name__}: {len(source)} B>"
    if isinstance(source, memoryview):
        return f"<memoryview: {source.nbytes} B>"
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape)) or '0-d'}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height} {source.mode}>"
    return f"<{type(source).__name__}>"


#: The next step of every message about image data that is there but cannot be decoded.
DAMAGED = "the file is damaged or incomplete: copy it again or re-export it"


def load_image(
    source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES,
    label: str | None = None,
) -> np.ndarray:
    """Load ``source`` as a new C-contiguous RGB ``uint8`` array of shape (H, W, 3).

    Error messages name ``label`` (for example an upload's file name), else the source itself
    (:func:`describe_source`).

    Raises :class:`ImageDecodeError` (missing, empty, truncated or non-image data),
    :class:`ImageTooLargeError` (over ``max_bytes`` encoded or ``max_pixels`` pixels) or
    :class:`UnsupportedInputError` (an input type, dtype or shape that is not accepted).
    """
    label = label or describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        data = _read_file(source, label, max_bytes)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = source.tobytes() if isinstance(source, memoryview) else bytes(source)
    elif isinstance(source, np.ndarray):
        return _from_array(source, label, max_pixels)
    elif isinstance(source, Image.Image):
        return _from_pil(source, label, max_pixels)
    else:
        raise UnsupportedInputError(f"{label}: unsupported input type {type(source).__name__}; expected {_ACCEPTED}")
    if not data:
        raise ImageDecodeError(f"{label}: empty image data (0 bytes); give a complete image file")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{label}: {len(data)} bytes is over the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label}: {_why(exc)}") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"{label}: not an image in a format faceprint reads, or its header is damaged; "
            f"accepted formats: {ACCEPTED_FORMATS}"
        ) from None
    except Exception as exc:  # Pillow raises SyntaxError, ValueError... on a damaged header
        raise ImageDecodeError(f"{label}: not a readable image ({_why(exc)}); {DAMAGED}") from None
    log.debug("decoding %s: %s %dx%d %s", label, img.format, img.width, img.height, img.mode)
    if _is_wide_colour(img):
        _check_pixels(img.width, img.height, label, max_pixels)
        return _wide_colour_from_bytes(data, img, label)
    return _from_pil(img, label, max_pixels)


def bit_depth(peak: int) -> int:
    """The smallest of 8, 10, 12, 14 and 16 bits that holds the non-negative integer ``peak``.

    A 16-bit container whose largest value is 4000 holds 12-bit data and is scaled by 4095, not
    65535. Values over 65535 give 16.
    """
    return next((bits for bits in _BIT_DEPTHS if peak < 1 << bits), 16)


def _scale_by_bit_depth(arr: np.ndarray) -> np.ndarray:
    """Non-negative integer data (any shape) onto 0..255, full scale at :func:`bit_depth` of its maximum."""
    bits = bit_depth(int(arr.max()) if arr.size else 0)
    if bits == 8:
        return arr.astype(np.uint8)
    full = (1 << bits) - 1
    return ((arr.astype(np.uint32) * 510 + full) // (2 * full)).astype(np.uint8)  # exact rounding


def _why(exc: BaseException) -> str:
    """An exception's text without Python object reprs such as ``<_io.BytesIO object at 0x...>``."""
    return _OBJECT_REPR.sub("the data", str(exc)) or type(exc).__name__


def _is_wide_colour(img: Image.Image) -> bool:
    """True for a 16-bit-per-channel colour PNG or TIFF, which Pillow would cut to its high byte."""
    if img.format not in ("PNG", "TIFF") or img.mode not in ("RGB", "RGBA", "LA") or not img.tile:
        return False
    args = img.tile[0].args
    rawmode = args[0] if isinstance(args, tuple) and args else args
    return isinstance(rawmode, str) and ";16" in rawmode


def _wide_colour_from_bytes(data: bytes, img: Image.Image, label: str) -> np.ndarray:
    """Decode 16-bit colour PNG/TIFF ``data`` with OpenCV, scale by bit depth, apply EXIF orientation."""
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageDecodeError(f"{label}: cannot decode 16-bit {img.format} image ({_why(exc)}); {DAMAGED}") from None
    if raw is None or raw.dtype != np.uint16 or raw.shape[:2] != (img.height, img.width):
        raise ImageDecodeError(f"{label}: cannot decode 16-bit {img.format} image (damaged or truncated data); "
                               f"{DAMAGED}")
    if raw.ndim == 2:
        raw = raw[:, :, None]
    colour = raw[:, :, 2::-1] if raw.shape[2] >= 3 else raw[:, :, :1]  # BGR(A) -> RGB
    if raw.shape[2] in (2, 4):  # composite over white at the data's own full scale
        full = float((1 << bit_depth(int(colour.max()))) - 1)
        alpha = raw[:, :, -1:].astype(np.float32) / 65535.0
        colour = np.rint(colour * alpha + full * (1.0 - alpha)).astype(np.uint16)
    rgb = _scale_by_bit_depth(colour)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    orientation = img.getexif().get(0x0112)
    if orientation and orientation != 1:
        out = Image.fromarray(np.ascontiguousarray(rgb))
        out.getexif()[0x0112] = orientation
        rgb = np.asarray(ImageOps.exif_transpose(out))
    return np.ascontiguousarray(rgb)


def _read_file(path: str | os.PathLike, label: str, max_bytes: int) -> bytes:
    if os.path.isdir(path):
        raise ImageDecodeError(f"{label}: is a folder, not an image file; give one image (identify and find "
                               f"take a folder of images)")
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise ImageTooLargeError(f"{label}: file of {size} bytes is over the limit of {max_bytes} bytes")
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)  # the caller re-checks the length
    except FileNotFoundError:
        raise ImageDecodeError(f"{label}: no such file; check the path") from None
    except OSError as exc:
        raise ImageDecodeError(f"{label}: cannot read file ({exc.strerror or exc}); check that it is readable "
                               f"(permissions, a disk that is mounted)") from None


def _check_pixels(width: int, height: int, label: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{label}: {width}x{height} = {width * height} pixels is over the limit of {max_pixels}; "
            f"give a smaller copy of the image"
        )


def _from_pil(img: Image.Image, label: str, max_pixels: int) -> np.ndarray:
    _check_pixels(img.width, img.height, label, max_pixels)
    try:
        img.load()  # full decode; raises OSError on truncated data
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label}: {_why(exc)}") from None
    except Exception as exc:
        raise ImageDecodeError(f"{label}: cannot decode image ({_why(exc)}); {DAMAGED}") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # malformed EXIF must not make the image unreadable
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", label, _why(exc))
    if img.mode in _WIDE_GREY_MODES:
        grey = _scale_wide(np.asarray(img))
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    try:
        if img.mode in _ALPHA_MODES or "transparency" in img.info:
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
        elif img.mode != "RGB":
            img = img.convert("RGB")
    except ValueError as exc:
        raise UnsupportedInputError(f"{label}: cannot convert image mode {img.mode} to RGB ({_why(exc)})") from None
    return np.array(img, dtype=np.uint8, order="C")


def _scale_wide(arr: np.ndarray) -> np.ndarray:
    """Map a 16-bit, 32-bit int or float grey image onto 0..255 without clipping to white.

    Unsigned 16-bit data, and integer data within 0..65535, is scaled by its :func:`bit_depth`.
    """
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        return _scale_by_bit_depth(arr)
    if arr.dtype.kind in "iu" and arr.size and int(arr.min()) >= 0 and int(arr.max()) <= 65535:
        return _scale_by_bit_depth(arr)
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if arr.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        pass
    else:
        a = (a - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _from_array(original: np.ndarray, label: str, max_pixels: int) -> np.ndarray:
    arr = original

    def bad(why: str) -> UnsupportedInputError:
        return UnsupportedInputError(
            f"{label}: unsupported array (shape {original.shape}, dtype {original.dtype}): {why}; "
            "expected (H,W), (H,W,1), (H,W,3) or (H,W,4) of uint8, uint16 or float"
        )

    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise bad("wrong shape")
    if arr.size == 0:
        raise bad("empty array")
    kind, itemsize = arr.dtype.kind, arr.dtype.itemsize
    if not (kind == "f" or (kind == "u" and itemsize in (1, 2))):
        raise bad("wrong dtype")
    _check_pixels(arr.shape[1], arr.shape[0], label, max_pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if kind == "u" and itemsize == 2:
        arr = _scale_by_bit_depth(arr)
    elif kind == "f":
        if not np.isfinite(arr).all():
            raise bad("contains NaN or infinity")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 255.0:
            raise bad(f"float values must lie in [0, 1] or [0, 255], got [{lo:g}, {hi:g}]")
        scaled = arr.astype(np.float64) * (255.0 if hi <= 1.0 else 1.0)
        arr = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if np.may_share_memory(arr, original):
        return arr.copy(order="C")  # never hand back a view of the caller's array
    return np.ascontiguousarray(arr)
