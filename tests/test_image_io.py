"""Tests for faceprint.pipeline.image_io: every input kind, every mode conversion, every documented error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from faceprint.errors import ImageDecodeError, ImageTooLargeError, UnsupportedInputError
from faceprint.pipeline import image_io
from faceprint.pipeline.image_io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    SUPPORTED_FORMATS,
    bit_depth,
    describe_source,
    load_image,
)

PHOTO = Path(__file__).resolve().parents[1].parent / "shared/data/video/obama.jpg"


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_rgb(arr: np.ndarray, h: int, w: int) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (h, w, 3)
    assert arr.dtype == np.uint8
    assert arr.flags.c_contiguous


def png_with_header_size(width: int, height: int) -> bytes:
    """A real 8x8 PNG whose IHDR is rewritten to claim width x height (a header-only bomb)."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.fixture(scope="module")
def rgb_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)), "JPEG")


# ---------------------------------------------------------------- public constants and labels


def test_defaults_and_pillow_truncation_flag():
    assert DEFAULT_MAX_PIXELS == 40_000_000
    assert DEFAULT_MAX_BYTES == 50 * 1024 * 1024
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # importing image_io must not enable it


def test_describe_source(tmp_path):
    assert describe_source(str(tmp_path / "a.jpg")) == str(tmp_path / "a.jpg")
    assert describe_source(tmp_path / "a.jpg") == str(tmp_path / "a.jpg")
    assert describe_source(b"x" * 1234) == "<bytes: 1234 B>"
    assert describe_source(bytearray(5)) == "<bytearray: 5 B>"
    assert describe_source(memoryview(b"abcd")) == "<memoryview: 4 B>"
    assert describe_source(np.zeros((250, 250, 3), np.uint8)) == "<array 250x250x3>"
    assert describe_source(np.zeros((7,))) == "<array 7>"
    assert describe_source(Image.new("RGB", (640, 480))) == "<PIL image 640x480 RGB>"
    assert describe_source(42) == "<int>"
    assert describe_source(None) == "<NoneType>"


# ---------------------------------------------------------------- files and encoded bytes


def test_jpeg_from_str_path_pathlib_bytes_bytearray_memoryview(tmp_path):
    data = encode(Image.new("RGB", (64, 48), (200, 30, 40)), "JPEG", quality=95)
    path = write(tmp_path, "red.jpg", data)
    results = [load_image(s) for s in (str(path), path, data, bytearray(data), memoryview(data))]
    for arr in results:
        assert_rgb(arr, 48, 64)
        np.testing.assert_array_equal(arr, results[0])
    assert np.abs(results[0].astype(int) - [200, 30, 40]).max() <= 4


def test_png_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :10] = [255, 0, 0, 255]  # opaque red
    rgba[:, 10:15] = [0, 0, 0, 0]  # fully transparent black -> white
    rgba[:, 15:] = [0, 0, 0, 128]  # half-transparent black -> mid grey
    arr = load_image(write(tmp_path, "a.png", encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert_rgb(arr, 10, 20)
    assert (arr[:, :10] == [255, 0, 0]).all()
    assert (arr[:, 10:15] == 255).all()
    assert (np.abs(arr[:, 15:].astype(int) - 127) <= 1).all()


def test_la_and_palette_transparency_composited_over_white():
    la = Image.fromarray(np.dstack([np.full((4, 4), 10, np.uint8), np.zeros((4, 4), np.uint8)]), "LA")
    assert (load_image(encode(la, "PNG")) == 255).all()
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.info["transparency"] = 1
    data = encode(pal, "GIF", transparency=1)
    assert (load_image(data) == 255).all()


def test_grey_pgm_gives_three_equal_channels(tmp_path):
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1))
    path = write(tmp_path, "g.pgm", encode(Image.fromarray(grey, "L"), "PPM"))
    arr = load_image(path)
    assert_rgb(arr, 5, 25)
    for c in range(3):
        np.testing.assert_array_equal(arr[:, :, c], grey)


def test_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    arr = load_image(write(tmp_path, "anim.gif", data))
    assert_rgb(arr, 16, 16)
    assert (arr == [255, 0, 0]).all()


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    arr = load_image(write(tmp_path, "deep.png", data))
    assert_rgb(arr, 1, 4)
    np.testing.assert_array_equal(arr[0, :, 0], [0, 1, 128, 255])


def test_float_and_int32_pil_modes_are_scaled():
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    np.testing.assert_array_equal(load_image(f)[0, :, 1], [0, 128, 255])
    big = Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.int32), "I")
    out = load_image(big)[0, :, 2]
    assert out[0] == 0 and out[2] == 255 and 0 < out[1] < 10
    small = Image.fromarray(np.array([[0, 100, 200]], dtype=np.int32), "I")
    np.testing.assert_array_equal(load_image(small)[0, :, 0], [0, 100, 200])


def test_cmyk_and_1bit_and_palette_modes():
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 0))  # no ink = white
    assert (load_image(encode(cmyk, "JPEG")) >= 250).all()
    one = Image.new("1", (8, 4), 1)
    assert_rgb(load_image(one), 4, 8)
    assert (load_image(one) == 255).all()
    pal = Image.new("RGB", (8, 8), (0, 128, 255)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert (load_image(pal) == [0, 128, 255]).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (300, 200), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 150, 200))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = encode(img, "JPEG", exif=exif.tobytes(), quality=95)
    for src in (write(tmp_path, "rot.jpg", data), data, Image.open(io.BytesIO(data))):
        arr = load_image(src)
        assert_rgb(arr, 300, 200)
        assert arr[:140].mean() > 240 and arr[160:].mean() < 15  # white half ends up on top


def test_real_photo_same_array_from_every_input_kind():
    if not PHOTO.exists():
        pytest.skip(f"sample photo not found at {PHOTO}")
    data = PHOTO.read_bytes()
    from_path = load_image(PHOTO)
    assert from_path.ndim == 3 and from_path.shape[2] == 3 and from_path.dtype == np.uint8
    h, w = from_path.shape[:2]
    assert_rgb(from_path, h, w)
    np.testing.assert_array_equal(load_image(str(PHOTO)), from_path)
    np.testing.assert_array_equal(load_image(data), from_path)
    np.testing.assert_array_equal(load_image(from_path), from_path)
    with Image.open(PHOTO) as pil:
        np.testing.assert_array_equal(load_image(pil), from_path)
    cv2 = pytest.importorskip("cv2")
    bgr = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)  # independent decoder, RGB order check
    assert bgr.shape == from_path.shape
    assert np.abs(bgr[:, :, ::-1].astype(int) - from_path).mean() < 3


# ---------------------------------------------------------------- decode errors


def test_truncated_jpeg(tmp_path, rgb_jpeg):
    path = write(tmp_path, "half.jpg", rgb_jpeg[: len(rgb_jpeg) // 2])
    with pytest.raises(ImageDecodeError, match="truncated") as exc:
        load_image(path)
    assert str(path) in str(exc.value)
    with pytest.raises(ImageDecodeError, match=r"<bytes: \d+ B>"):
        load_image(rgb_jpeg[: len(rgb_jpeg) // 2])


def test_truncated_png():
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)), "PNG")
    with pytest.raises(ImageDecodeError):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize("data", [b"", bytearray(), memoryview(b"")])
def test_empty_bytes(data):
    with pytest.raises(ImageDecodeError, match="empty") as exc:
        load_image(data)
    assert describe_source(data) in str(exc.value)


def test_zero_byte_file(tmp_path):
    path = write(tmp_path, "empty.jpg", b"")
    with pytest.raises(ImageDecodeError, match="empty") as exc:
        load_image(path)
    assert str(path) in str(exc.value)


def test_text_file_named_jpg(tmp_path):
    path = write(tmp_path, "notes.jpg", b"this is not an image, just some text\n" * 10)
    with pytest.raises(ImageDecodeError) as exc:
        load_image(path)
    assert str(path) in str(exc.value)


def test_random_bytes():
    data = np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ImageDecodeError, match="<bytes: 4096 B>"):
        load_image(data)


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ImageDecodeError, match="no such file") as exc:
        load_image(missing)
    assert str(missing) in str(exc.value)
    with pytest.raises(ImageDecodeError, match="is a folder, not an image file") as exc:
        load_image(str(tmp_path))
    assert str(tmp_path) in str(exc.value)


# ---------------------------------------------------------------- size limits


def test_file_and_bytes_over_max_bytes(tmp_path, rgb_jpeg):
    path = write(tmp_path, "big.jpg", rgb_jpeg)
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(path, max_bytes=len(rgb_jpeg) - 1)
    assert str(path) in str(exc.value)
    with pytest.raises(ImageTooLargeError, match="<bytes:"):
        load_image(rgb_jpeg, max_bytes=100)
    assert_rgb(load_image(path, max_bytes=len(rgb_jpeg)), 200, 200)  # exactly at the limit is fine


def test_max_pixels_boundary():
    data = encode(Image.new("RGB", (100, 50)), "PNG")
    assert_rgb(load_image(data, max_pixels=5000), 50, 100)
    with pytest.raises(ImageTooLargeError, match="100x50"):
        load_image(data, max_pixels=4999)


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    data = encode(Image.new("1", (9000, 9000)), "PNG")  # 81 Mpx, under Pillow's own warning limit
    assert len(data) < 50_000
    return data


def test_bomb_rejected_from_header_before_pixel_decode(tmp_path, bomb_png, monkeypatch):
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or real_load(self))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # our guard must not rely on Pillow's
    path = write(tmp_path, "bomb.png", bomb_png)
    with pytest.raises(ImageTooLargeError, match="9000x9000") as exc:
        load_image(path)  # default max_pixels = 40 Mpx
    assert decoded == []  # rejected from the header: not one pixel decoded
    assert str(path) in str(exc.value)
    with pytest.raises(ImageTooLargeError):
        load_image(bomb_png, max_pixels=1_000_000)
    assert decoded == []


def test_forged_header_bomb(monkeypatch):
    data = png_with_header_size(30000, 30000)
    assert len(data) < 200
    with pytest.raises(ImageTooLargeError):  # Pillow's own DecompressionBombError, mapped
        load_image(data, max_pixels=10**12)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageTooLargeError, match="30000x30000"):  # our guard
        load_image(data)


def test_pillow_bomb_warning_and_error_are_mapped(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageTooLargeError):  # 1600 px: DecompressionBombWarning
        load_image(encode(Image.new("RGB", (40, 40)), "PNG"))
    with pytest.raises(ImageTooLargeError):  # 10000 px: DecompressionBombError
        load_image(encode(Image.new("RGB", (100, 100)), "PNG"))


# ---------------------------------------------------------------- numpy arrays


def test_array_layouts():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for src in (grey, grey[:, :, None]):
        out = load_image(src)
        assert_rgb(out, 3, 4)
        assert (out == grey[:, :, None]).all()
    rgb = np.random.default_rng(3).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(rgb), rgb)
    rgba = np.concatenate([rgb, np.zeros((3, 4, 1), np.uint8)], axis=2)
    np.testing.assert_array_equal(load_image(rgba), rgb)  # alpha dropped, not composited


def test_array_dtypes_are_scaled():
    np.testing.assert_array_equal(load_image(np.array([[0.0, 0.5, 1.0]]))[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(load_image(np.array([[0.0, 2.0, 255.0]], np.float32))[0, :, 0], [0, 2, 255])
    np.testing.assert_array_equal(load_image(np.array([[0, 256, 65535]], np.uint16))[0, :, 0], [0, 1, 255])
    np.testing.assert_array_equal(load_image(np.array([[0, 65535]], ">u2"))[0, :, 0], [0, 255])


def test_array_non_contiguous_input():
    base = np.random.default_rng(4).integers(0, 256, (10, 8, 3), dtype=np.uint8)
    view = base[::2, ::-1]
    out = load_image(view)
    assert_rgb(out, 5, 8)
    np.testing.assert_array_equal(out, view)
    bgr_view = base[:, :, ::-1]
    np.testing.assert_array_equal(load_image(bgr_view), bgr_view)
    assert load_image(bgr_view).flags.c_contiguous


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((10, 10, 3), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
    ],
    ids=["rgb", "rgba", "grey", "float"],
)
def test_array_result_never_shares_memory(arr):
    out = load_image(arr)
    assert not np.shares_memory(out, arr)
    out[...] = 77
    assert (arr == 0).all()


@pytest.mark.parametrize(
    "arr, why",
    [
        (np.zeros(10, np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        (np.zeros((4, 4, 3), bool), "dtype"),
        (np.zeros((4, 4), object), "dtype"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.array([[0.5, np.inf]]), "NaN"),
        (np.array([[-1.0, 0.5]]), "float values"),
        (np.array([[0.0, 300.0]]), "float values"),
    ],
)
def test_bad_arrays(arr, why):
    with pytest.raises(UnsupportedInputError, match=why) as exc:
        load_image(arr)
    msg = str(exc.value)
    assert describe_source(arr) in msg and str(arr.shape) in msg and str(arr.dtype) in msg


def test_array_over_max_pixels():
    arr = np.zeros((100, 50, 3), np.uint8)
    with pytest.raises(ImageTooLargeError, match=r"<array 100x50x3>"):
        load_image(arr, max_pixels=4999)
    assert_rgb(load_image(arr, max_pixels=5000), 100, 50)


# ---------------------------------------------------------------- PIL images


def test_pil_input_converted_and_not_mutated():
    img = Image.new("RGBA", (6, 4), (0, 0, 255, 0))
    out = load_image(img)
    assert_rgb(out, 4, 6)
    assert (out == 255).all()
    assert img.mode == "RGBA" and img.getpixel((0, 0)) == (0, 0, 255, 0)


def test_pil_over_max_pixels():
    with pytest.raises(ImageTooLargeError, match=r"<PIL image 100x50 RGB>"):
        load_image(Image.new("RGB", (100, 50)), max_pixels=4999)


def test_lazy_truncated_pil_image(rgb_jpeg):
    img = Image.open(io.BytesIO(rgb_jpeg[: len(rgb_jpeg) // 2]))
    with pytest.raises(ImageDecodeError, match=r"<PIL image 200x200 RGB>"):
        load_image(img)


# ---------------------------------------------------------------- unsupported types


@pytest.mark.parametrize("src", [42, None, [1, 2, 3], {"a": 1}, 3.5], ids=lambda s: type(s).__name__)
def test_unsupported_types(src):
    with pytest.raises(UnsupportedInputError) as exc:
        load_image(src)
    msg = str(exc.value)
    assert type(src).__name__ in msg and "path" in msg and "numpy array" in msg


def test_file_object_is_unsupported(tmp_path, rgb_jpeg):
    path = write(tmp_path, "x.jpg", rgb_jpeg)
    with open(path, "rb") as fh:
        with pytest.raises(UnsupportedInputError, match="BufferedReader"):
            load_image(fh)


def test_module_uses_named_logger():
    assert image_io.log.name == "faceprint.pipeline.image_io"


# ---------------------------------------------------------------- formats: HEIC, AVIF and the rest


@pytest.fixture(scope="module")
def face_photo(data_dir) -> np.ndarray:
    """A real face photo (obama.jpg, 910x1137) as RGB uint8, halved to keep encoders quick."""
    with Image.open(data_dir / "video/obama.jpg") as img:
        return np.asarray(img.convert("RGB").reduce(2))


def test_every_listed_suffix_is_a_format_pillow_opens():
    Image.init()
    registered = Image.registered_extensions()
    assert {".heic", ".heif", ".avif", ".jpg", ".png", ".webp", ".tif"} <= IMAGE_SUFFIXES
    for fmt in SUPPORTED_FORMATS:
        for suffix in fmt.suffixes:
            assert suffix == suffix.lower() and suffix in IMAGE_SUFFIXES
            assert registered.get(suffix) in Image.OPEN, (fmt.name, suffix)


def test_every_listed_format_round_trips_a_face_photo(tmp_path, face_photo):
    """Each format, written by Pillow (pillow-heif for HEIC) from a real photo, reads back close to it."""
    registered = Image.registered_extensions()
    lossless = {"PNG", "TIFF", "BMP", "PPM"}
    for fmt in SUPPORTED_FORMATS:
        suffix = fmt.suffixes[0]
        pillow_format = registered[suffix]
        path = tmp_path / f"face{suffix}"
        Image.fromarray(face_photo).save(path, pillow_format, **({} if pillow_format in lossless else {"quality": 90}))
        arr = load_image(path)
        assert_rgb(arr, *face_photo.shape[:2])
        error = np.abs(arr.astype(int) - face_photo).mean()
        assert (error == 0) if pillow_format in lossless else (error < 6), (fmt.name, error)
        np.testing.assert_array_equal(load_image(path.read_bytes()), arr)


def test_heic_and_avif_give_the_same_person(tmp_path, face_photo, engine_fast):
    """HEIC (the iPhone default) and AVIF photos give a usable face matching the JPEG original."""
    original = engine_fast.embed(face_photo)
    for name, fmt in (("IMG_0001.HEIC", "HEIF"), ("IMG_0002.avif", "AVIF")):
        path = tmp_path / name
        Image.fromarray(face_photo).save(path, fmt, quality=80)
        with Image.open(path) as img:
            assert img.format == fmt
        image = load_image(path)
        faces = [f for f in engine_fast.finder.find(image) if engine_fast.gate.passes(f)]
        assert len(faces) == 1, name
        assert engine_fast.verify(engine_fast.embed(image), original).similarity > 0.95, name


@pytest.mark.parametrize("name", ["notes.heic", "notes.jpg", "notes.avif", "notes.txt"])
def test_non_image_names_the_file_and_the_accepted_formats(tmp_path, name):
    path = write(tmp_path, name, b"shopping list: milk, eggs\n" * 20)
    for source, label in ((path, str(path)), (path.read_bytes(), "<bytes: 520 B>")):
        with pytest.raises(ImageDecodeError) as exc:
            load_image(source)
        msg = str(exc.value)
        assert msg.startswith(f"{label}: not an image in a format faceprint reads")
        assert "HEIC/HEIF" in msg and "AVIF" in msg and "JPEG" in msg
        assert "object at 0x" not in msg and "BytesIO" not in msg


def test_no_error_text_carries_an_object_repr(tmp_path, rgb_jpeg):
    """Decode errors raised after the header (truncated data) carry no ``<... object at 0x...>`` either."""
    heic = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(heic, "HEIF")
    for data in (rgb_jpeg[: len(rgb_jpeg) // 2], heic.getvalue()[: len(heic.getvalue()) // 2]):
        path = write(tmp_path, "cut.img", data)
        with pytest.raises(ImageDecodeError) as exc:
            load_image(path)
        assert str(exc.value).startswith(str(path)) and "object at 0x" not in str(exc.value)


# ---------------------------------------------------------------- wide data: 10/12/14/16-bit


def test_bit_depth_is_the_smallest_that_holds_the_data():
    for peak, bits in [(0, 8), (255, 8), (256, 10), (1023, 10), (1024, 12), (4095, 12), (4096, 14),
                       (16383, 14), (16384, 16), (65535, 16)]:
        assert bit_depth(peak) == bits, peak


def test_12bit_data_in_16bit_containers_keeps_its_brightness(face_photo):
    """12-bit data (infrared, machine-vision cameras) in 16-bit PNG, TIFF and arrays reads as the 8-bit original."""
    cv2 = pytest.importorskip("cv2")
    twelve = ((face_photo.astype(np.uint32) * 4095 + 127) // 255).astype(np.uint16)
    assert twelve.max() < 4096 and twelve.max() > 3800
    grey8 = np.asarray(Image.fromarray(face_photo).convert("L"))
    grey12 = ((grey8.astype(np.uint32) * 4095 + 127) // 255).astype(np.uint16)
    sources = {
        "grey PNG (Pillow I;16)": (encode(Image.fromarray(grey12), "PNG"), grey8),
        "grey TIFF": (encode(Image.fromarray(grey12), "TIFF"), grey8),
        "RGB PNG": (cv2.imencode(".png", twelve[:, :, ::-1])[1].tobytes(), face_photo),
        "RGB TIFF": (cv2.imencode(".tiff", twelve[:, :, ::-1])[1].tobytes(), face_photo),
        "RGBA PNG": (cv2.imencode(".png", np.dstack([twelve[:, :, ::-1], np.full(grey8.shape, 65535, np.uint16)]))[1]
                     .tobytes(), face_photo),
        "uint16 RGB array": (twelve, face_photo),
        "uint16 grey array": (grey12, grey8),
    }
    for what, (source, expected) in sources.items():
        arr = load_image(source)
        expected = expected if expected.ndim == 3 else np.repeat(expected[:, :, None], 3, axis=2)
        assert_rgb(arr, *face_photo.shape[:2])
        np.testing.assert_array_equal(arr, expected, err_msg=what)
    ten = ((face_photo.astype(np.uint32) * 1023 + 127) // 255).astype(np.uint16)  # 10-bit
    np.testing.assert_array_equal(load_image(ten), face_photo)
    sixteen = face_photo.astype(np.uint16) * 257  # full 16-bit range: unchanged behaviour
    np.testing.assert_array_equal(load_image(sixteen), face_photo)


def test_16bit_colour_png_applies_exif_orientation():
    """A 16-bit colour PNG (decoded by OpenCV) is still turned upright by its EXIF orientation."""
    cv2 = pytest.importorskip("cv2")
    rgb = np.zeros((20, 30, 3), np.uint16)
    rgb[:, :15] = 4095  # left half white, 12-bit
    png = cv2.imencode(".png", rgb)[1].tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    body = exif.tobytes()[6:]  # eXIf holds the TIFF structure without the "Exif\0\0" header
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    arr = load_image(png[:33] + chunk + png[33:])  # right after IHDR
    assert_rgb(arr, 30, 20)
    assert (arr[:15] == 255).all() and (arr[15:] == 0).all()  # white half on top


def test_12bit_face_is_found_usable_and_matches_the_8bit_original(face_photo, engine_fast):
    """Case 7: a face in a 12-bit PNG is found, passes the gate (not "blurry", not "dark") and matches."""
    cv2 = pytest.importorskip("cv2")
    twelve = ((face_photo.astype(np.uint32) * 4095 + 127) // 255).astype(np.uint16)
    image = load_image(cv2.imencode(".png", twelve[:, :, ::-1])[1].tobytes())
    faces = engine_fast.finder.find(image)
    assert len(faces) == 1 and engine_fast.gate.passes(faces[0])
    assert not {"blurry", "dark"} & set(faces[0].quality_reasons)
    assert engine_fast.verify(engine_fast.embed(image), engine_fast.embed(face_photo)).similarity > 0.99


def test_a_dark_face_is_reported_dark_not_blurry(face_photo, engine_fast):
    """A genuinely underexposed photo (1/16 of the light, what the old high-byte cut gave) says "dark"."""
    from faceprint.pipeline.quality import brightness

    dark = (face_photo // 16).astype(np.uint8)
    faces = engine_fast.finder.find(dark)
    assert len(faces) == 1
    face = faces[0]
    assert brightness(face) < 12
    assert "dark" in face.quality_reasons and "blurry" not in face.quality_reasons
    assert not engine_fast.gate.passes(face)
    bright = engine_fast.finder.find(face_photo)[0]
    assert brightness(bright) > 100 and "dark" not in bright.quality_reasons
