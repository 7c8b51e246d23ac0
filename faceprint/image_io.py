"""Image loading: turn any supported input into an RGB ``uint8`` array of shape (H, W, 3).

Accepted inputs are a file path (``str`` / ``os.PathLike``), encoded image data (``bytes``,
``bytearray``, ``memoryview``), a numpy array or a ``PIL.Image.Image``. Anything that cannot be
read raises a documented :mod:`faceprint.errors` exception whose message names the source.

Encoded data is decoded with Pillow. The pixel count is read from the header and checked against
``max_pixels`` *before* any pixel is decoded (decompression-bomb guard); this check does not rely
on Pillow's global ``Image.MAX_IMAGE_PIXELS``, though Pillow's own bomb errors are also mapped to
:class:`ImageTooLargeError`. Truncated files are errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is
never enabled here).
"""

from __future__ import annotations

import io
import logging
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from faceprint.errors import ImageDecodeError, ImageTooLargeError, UnsupportedInputError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels
DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # 50 MiB of encoded data
# File name suffixes treated as images when a folder is scanned.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"})

ImageInput = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image

_ACCEPTED = "a path, bytes/bytearray/memoryview, a numpy array or a PIL image"
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
_WIDE_GREY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


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


def load_image(
    source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """Load ``source`` as a new C-contiguous RGB ``uint8`` array of shape (H, W, 3).

    Raises :class:`ImageDecodeError` (missing, empty, truncated or non-image data),
    :class:`ImageTooLargeError` (over ``max_bytes`` encoded or ``max_pixels`` pixels) or
    :class:`UnsupportedInputError` (an input type, dtype or shape that is not accepted).
    """
    label = describe_source(source)
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
        raise ImageDecodeError(f"{label}: empty image data (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{label}: {len(data)} bytes is over the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label}: {exc}") from None
    except Exception as exc:  # Pillow raises UnidentifiedImageError, SyntaxError, ValueError...
        raise ImageDecodeError(f"{label}: not a readable image ({exc})") from None
    log.debug("decoding %s: %s %dx%d %s", label, img.format, img.width, img.height, img.mode)
    return _from_pil(img, label, max_pixels)


def _read_file(path: str | os.PathLike, label: str, max_bytes: int) -> bytes:
    if os.path.isdir(path):
        raise ImageDecodeError(f"{label}: is a directory")
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise ImageTooLargeError(f"{label}: file of {size} bytes is over the limit of {max_bytes} bytes")
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)  # the caller re-checks the length
    except FileNotFoundError:
        raise ImageDecodeError(f"{label}: no such file") from None
    except OSError as exc:
        raise ImageDecodeError(f"{label}: cannot read file ({exc.strerror or exc})") from None


def _check_pixels(width: int, height: int, label: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{label}: {width}x{height} = {width * height} pixels is over the limit of {max_pixels}"
        )


def _from_pil(img: Image.Image, label: str, max_pixels: int) -> np.ndarray:
    _check_pixels(img.width, img.height, label, max_pixels)
    try:
        img.load()  # full decode; raises OSError on truncated data
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label}: {exc}") from None
    except Exception as exc:
        raise ImageDecodeError(f"{label}: cannot decode image ({exc})") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # malformed EXIF must not make the image unreadable
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", label, exc)
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
        raise UnsupportedInputError(f"{label}: cannot convert image mode {img.mode} to RGB ({exc})") from None
    return np.array(img, dtype=np.uint8, order="C")


def _scale_wide(arr: np.ndarray) -> np.ndarray:
    """Map a 16-bit, 32-bit int or float grey image onto 0..255 without clipping to white."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        return (arr >> 8).astype(np.uint8)
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if arr.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        pass
    elif lo >= 0.0 and hi <= 65535.0 and arr.dtype.kind != "f":
        a = a / 257.0  # 16-bit data held in a 32-bit int image
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
        arr = (arr >> 8).astype(np.uint8)
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
