"""Synthetic presentation attacks: a live photo re-shown on a screen or printed, then re-captured.

Pure functions of an RGB uint8 image and a ``numpy.random.Generator`` (seeded by the caller), used
to measure the passive PAD check on attacks no data set here holds (``benchmarks/pad.py``):

- the **screen**: the photo on a display (gamma, raised black level, colour cast, overexposure),
  its sub-pixel RGB stripe grid sampled by the camera at a slightly different pitch (real aliasing,
  hence real moire), and a bezel;
- the **print**: the photo on paper (smaller gamut, paper white and black, warm cast, halftone dots
  or paper grain) with a white margin;
- the **framing** (:data:`FRAMINGS`) of that surface in the camera's frame: ``"scene"``, the whole
  screen or sheet in front of a random background (45-75% of the frame's width); ``"hands"``, the
  same with fingers coming in from an edge; ``"filled"``, the surface filling the frame with its
  edges outside it (no bezel or paper edge visible); and glare on the glass or paper;
- the capture: :func:`camera` (exposure, white balance, gamma, defocus, noise, JPEG 55-95), then
  a last JPEG encoding at a chosen quality.

:func:`synthesise` makes one attack at the source's size (framing as a hand-held device: 75-125%
of the frame); :func:`attack_frame` chooses framing, frame size and JPEG quality. Geometry is not
preserved: detect the face again in the result.
"""

from __future__ import annotations

import cv2
import numpy as np

ATTACK_TYPES = ("screen", "print")
FRAMINGS = ("scene", "hands", "filled")


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def camera(image: np.ndarray, rng: np.random.Generator, *, strength: float = 1.0) -> np.ndarray:
    """The camera that films the attack: exposure, white balance, defocus, sensor noise and JPEG re-encoding."""
    img = _to_float(image)
    img = img * rng.uniform(1 - 0.15 * strength, 1 + 0.15 * strength)
    img = img * rng.uniform(1 - 0.05 * strength, 1 + 0.05 * strength, size=3).astype(np.float32)
    img = np.clip(img, 0.0, 1.0) ** rng.uniform(1 - 0.15 * strength, 1 + 0.15 * strength)
    sigma = rng.uniform(0.0, 1.0 * strength)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0.0, rng.uniform(0.0, 0.015 * strength), size=img.shape).astype(np.float32)
    return jpeg(_to_uint8(img), int(rng.integers(55, 96)))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` encoded as JPEG at ``quality`` (1-100) and decoded again."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _background(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth random scene: a base colour with low-frequency shading."""
    h, w = shape
    base = rng.uniform(0.1, 0.9, size=3).astype(np.float32)
    low = rng.uniform(-0.25, 0.25, size=(4, 4, 3)).astype(np.float32)
    shade = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + shade, 0.0, 1.0)


def _placement(shape: tuple[int, int], size: tuple[int, int], rng: np.random.Generator,
               fill: tuple[float, float]) -> np.ndarray:
    """A 3x3 perspective mapping a ``size`` (w, h) surface into the frame, about ``fill`` of its width."""
    h, w = shape
    sw, sh = size
    scale = rng.uniform(*fill) * w / sw
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    cy = h / 2 + rng.uniform(-0.1, 0.1) * h
    angle = np.deg2rad(rng.uniform(-10, 10))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = np.array([[-sw / 2, -sh / 2], [sw / 2, -sh / 2], [sw / 2, sh / 2], [-sw / 2, sh / 2]]) * scale
    dst = corners @ rot.T + [cx, cy]
    dst += rng.normal(0.0, 0.02 * w, size=dst.shape)  # perspective tilt
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], dtype=np.float32)
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32))


def _composite(surface: np.ndarray, shape: tuple[int, int], matrix: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """``surface`` warped by ``matrix`` over a random background, with the camera's sampling."""
    h, w = shape
    warped = cv2.warpPerspective(surface, matrix, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(surface.shape[:2], np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)
    return warped + (1.0 - mask[..., None]) * _background((h, w), rng)


def _fingers(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three skin-coloured fingers coming in from an edge of the frame."""
    h, w = img.shape[:2]
    skin = np.array([rng.uniform(0.55, 0.95), rng.uniform(0.4, 0.75), rng.uniform(0.3, 0.6)], np.float32)
    layer = np.zeros((h, w), np.float32)
    side = int(rng.integers(4))
    for _ in range(int(rng.integers(1, 4))):
        t = rng.uniform(0.1, 0.9)
        centre = [(int(t * w), 0), (w - 1, int(t * h)), (int(t * w), h - 1), (0, int(t * h))][side]
        axes = (max(2, int(rng.uniform(0.04, 0.08) * w)), max(2, int(rng.uniform(0.1, 0.2) * h)))
        angle = 90.0 * (side % 2) + rng.uniform(-20, 20)
        cv2.ellipse(layer, centre, axes, angle, 0, 360, 1.0, -1)
    layer = cv2.GaussianBlur(layer, (0, 0), 1.0)[..., None]
    shading = 0.85 + 0.15 * layer
    return img * (1 - layer) + layer * skin * shading


def _glare(img: np.ndarray, rng: np.random.Generator, strength: tuple[float, float]) -> np.ndarray:
    """A soft specular patch (a lamp reflected by glass or glossy paper)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = rng.uniform(0.05, 0.4) * w, rng.uniform(0.05, 0.4) * h
    blob = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2.0)
    return img + rng.uniform(*strength) * blob[..., None]


def _screen_panel(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The float RGB photo ``img`` as a display shows it: gamma and cast, sub-pixel grid, bezel, camera blur."""
    h, w = img.shape[:2]
    black = rng.uniform(0.02, 0.15)
    contrast = rng.uniform(0.7, 1.0)
    img = black + contrast * (1 - black) * img ** rng.uniform(0.65, 1.4)
    cast = np.array([rng.uniform(0.9, 1.08), rng.uniform(0.92, 1.05), rng.uniform(0.95, 1.15)], np.float32)
    img = np.clip(img * cast * rng.uniform(0.95, 1.35), 0.0, 1.0)
    # the display's pixel grid: each pixel is three vertical R, G, B stripes with dark gaps
    pitch = rng.uniform(0.6, 1.5)  # camera pixels per display pixel
    n_w = max(16, int(round(w * 1.25 / pitch)))
    n_h = max(16, int(round(n_w * h / w)))
    shown = cv2.resize(img, (n_w, n_h), interpolation=cv2.INTER_LINEAR)
    sub = np.repeat(np.repeat(shown, 3, axis=0), 3, axis=1)
    stripe = np.full((3, 3, 3), rng.uniform(0.0, 0.25), np.float32)
    for c in range(3):
        stripe[:, c, c] = 1.0
    stripe[2, :, :] *= rng.uniform(0.4, 0.9)  # gap between rows
    grid = np.tile(stripe, (n_h, n_w, 1)) * (3.0 / (1.0 + 2.0 * stripe[0, 0, 1]))
    visibility = rng.uniform(0.2, 1.0)  # how much of the grid survives the display's diffuser
    sub *= 1.0 - visibility + visibility * grid
    bezel = int(rng.integers(2, 12)) * 3
    panel = np.full((sub.shape[0] + 2 * bezel, sub.shape[1] + 2 * bezel, 3), rng.uniform(0.0, 0.12), np.float32)
    panel[bezel:-bezel, bezel:-bezel] = sub
    optics = rng.uniform(0.4, 2.5)  # camera blur, in display sub-pixels, before sampling
    return cv2.GaussianBlur(panel, (0, 0), optics)


def _halftone(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CMY halftone dots at screen angles 15, 75 and 0 degrees, averaged back to the image grid."""
    k = int(rng.integers(2, 5))
    h, w = img.shape[:2]
    big = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0:h * k, 0:w * k].astype(np.float32)
    period = rng.uniform(2.0, 4.0) * k
    out = np.empty_like(big)
    for c, angle in enumerate(np.deg2rad([15.0, 75.0, 0.0])):
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        screen = 0.5 + 0.25 * (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))
        ink = 1.0 - big[..., c]
        out[..., c] = 1.0 - (ink > screen).astype(np.float32)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def _print_sheet(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The float RGB photo ``img`` printed: smaller gamut, paper white and black, halftone or grain, margin."""
    h, w = img.shape[:2]
    grey = img.mean(axis=2, keepdims=True)
    img = grey + rng.uniform(0.55, 0.95) * (img - grey)  # smaller gamut
    paper_white = rng.uniform(0.78, 0.97)
    paper_black = rng.uniform(0.05, 0.22)
    img = paper_black + (paper_white - paper_black) * np.clip(img, 0, 1) ** rng.uniform(0.8, 1.3)
    img = img * np.array([rng.uniform(1.0, 1.06), 1.0, rng.uniform(0.86, 1.0)], np.float32)
    if rng.random() < 0.6:
        img = _halftone(np.clip(img, 0, 1), rng)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8))
    grain = cv2.GaussianBlur(rng.normal(0, 1, size=(h, w)).astype(np.float32), (0, 0), rng.uniform(0.5, 1.5))
    img = img * (1.0 + rng.uniform(0.01, 0.05) * grain[..., None])
    margin = int(rng.uniform(0.02, 0.12) * w)
    sheet = np.full((h + 2 * margin, w + 2 * margin, 3), paper_white, np.float32)
    sheet[margin:margin + h, margin:margin + w] = np.clip(img, 0, 1)
    return sheet


def _check_kind(kind: str) -> None:
    if kind not in ATTACK_TYPES:
        raise ValueError(f"unknown attack type {kind!r}; expected one of {ATTACK_TYPES}")


def synthesise(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """An attack of ``kind`` (one of :data:`ATTACK_TYPES`) made from the live RGB uint8 ``image``, same size.

    The screen or sheet fills 75-125% of the frame's width (a device held up to the camera), with
    fingers (p 0.4) and glare (screen p 0.5, print p 0.3), then :func:`camera`.
    """
    _check_kind(kind)
    h, w = image.shape[:2]
    img = _to_float(image)
    if kind == "screen":
        surface, fill, glare = _screen_panel(img, rng), (0.75, 1.25), ((0.1, 0.5), 0.5)
    else:
        surface, fill, glare = _print_sheet(img, rng), (0.8, 1.3), ((0.05, 0.3), 0.3)
    out = _composite(surface, (h, w), _placement((h, w), (surface.shape[1], surface.shape[0]), rng, fill), rng)
    if rng.random() < 0.4:
        out = _fingers(out, rng)
    if rng.random() < glare[1]:
        out = _glare(out, rng, glare[0])
    return camera(_to_uint8(out), rng)


def attack_frame(image: np.ndarray, kind: str, rng: np.random.Generator, *, framing: str = "scene",
                 size: float = 1.0, quality: int = 90) -> np.ndarray:
    """An attack of ``kind`` made from the live RGB uint8 ``image``, framed as ``framing`` (:data:`FRAMINGS`).

    The frame is ``size`` x the source's width and height (the face's size in pixels scales with
    it); glare p 0.4; :func:`camera`, then JPEG at ``quality`` (1-100). Raises ValueError for an
    unknown ``kind`` or ``framing`` or a ``size`` that is not positive.
    """
    _check_kind(kind)
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; expected one of {FRAMINGS}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    h, w = image.shape[:2]
    img = _to_float(image)
    surface = _screen_panel(img, rng) if kind == "screen" else _print_sheet(img, rng)
    frame = (max(16, round(h * size)), max(16, round(w * size)))
    fill = (1.3, 1.6) if framing == "filled" else (0.45, 0.75)
    out = _composite(surface, frame, _placement(frame, (surface.shape[1], surface.shape[0]), rng, fill), rng)
    if framing == "hands":
        out = _fingers(out, rng)
    if rng.random() < 0.4:
        out = _glare(out, rng, (0.1, 0.5) if kind == "screen" else (0.05, 0.3))
    return jpeg(camera(_to_uint8(out), rng), quality)
