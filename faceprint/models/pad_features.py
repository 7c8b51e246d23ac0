"""Hand-crafted presentation-attack cues of one face: the morph detector's features and the liveness cues.

Pure functions, no state. :func:`pad_view` defines the pixels looked at (the face box expanded,
resized to fixed sizes, or the whole image when no face is given); :func:`pad_features` turns that
view into one float32 vector (the morph detector's input, :mod:`faceprint.morph_detection`) made of
these groups, and :func:`cue_values` gives the few of them that :mod:`faceprint.pad.cues` shows a
person when a face fails the liveness check:

- ``lbp``: uniform LBP(8, 1) histograms of the face in Y, Cr, Cb, H, S and V (the colour-texture
  PAD of Boulkenafet et al., 2016): print and screen recapture change fine texture and chroma;
- ``colour``: mean, spread and tails of each of those channels, clipped highlights and shadows,
  the specular-highlight ratio (bright, unsaturated pixels): screens and prints have a smaller
  gamut, a raised black level and different gamma;
- ``spectrum``: the face's radial and angular power spectrum and the peakiness of its high
  frequencies: moire and screen pixel grids leave narrow peaks there;
- ``blur``: Laplacian and gradient energy, and how much of it survives a 2x downscale;
- ``blocks``: the 8x8 JPEG grid at native resolution (re-compression leaves a stronger grid);
- ``border``: long straight edges and brightness of the context ring around the face (screen
  bezels and paper edges).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Box

FEATURE_VERSION = "pad-features-1"
FACE_SIZE = 128  # side of the face view, pixels
CONTEXT_SIZE = 96  # side of the context view, pixels
FACE_EXPAND = 1.2  # face view: the detector box scaled by this (square, about its centre)
CONTEXT_EXPAND = 2.2  # context view: the box scaled by this
NATIVE_MAX = 384  # the native-resolution face (for the JPEG grid) is capped at this side

RADIAL_BINS = 24
ANGULAR_BINS = 8


@dataclass(frozen=True)
class PadView:
    """The pixels PAD looks at for one face.

    ``face`` is the expanded face box resized to FACE_SIZE square (RGB uint8), ``context`` the
    larger box around it resized to CONTEXT_SIZE (RGB uint8), ``native_grey`` the face region's
    grey levels at the source resolution (float32), and ``whole_image`` tells that no face was
    given, so the whole image stood in for the face.
    """

    face: np.ndarray
    context: np.ndarray
    native_grey: np.ndarray
    whole_image: bool


def _region(box: Box, expand: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The square of side ``expand`` x the box's longer side about its centre, clipped to the image."""
    cx, cy = box.center
    half = expand * max(box.width, box.height) / 2.0
    height, width = shape[:2]
    x0, y0 = max(0, int(round(cx - half))), max(0, int(round(cy - half)))
    x1, y1 = min(width, int(round(cx + half))), min(height, int(round(cy + half)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0, 0, width, height
    return x0, y0, x1, y1


def face_view(image: np.ndarray, box: Box | None) -> np.ndarray:
    """The face view alone (FACE_SIZE square, RGB uint8) of :func:`pad_view`: what :func:`cue_values` needs."""
    x0, y0, x1, y1 = (0, 0, image.shape[1], image.shape[0]) if box is None else _region(box, FACE_EXPAND, image.shape)
    return cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


def pad_view(image: np.ndarray, box: Box | None) -> PadView:
    """The face and context views of ``box`` in an RGB uint8 image (the whole image when ``box`` is None)."""
    if box is None:
        face_xy = ctx_xy = (0, 0, image.shape[1], image.shape[0])
    else:
        face_xy = _region(box, FACE_EXPAND, image.shape)
        ctx_xy = _region(box, CONTEXT_EXPAND, image.shape)
    fx0, fy0, fx1, fy1 = face_xy
    cx0, cy0, cx1, cy1 = ctx_xy
    face_native = np.ascontiguousarray(image[fy0:fy1, fx0:fx1])
    face = cv2.resize(face_native, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    context = cv2.resize(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), (CONTEXT_SIZE, CONTEXT_SIZE),
                         interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(face_native, cv2.COLOR_RGB2GRAY)
    if max(grey.shape) > NATIVE_MAX:
        grey = grey[:NATIVE_MAX, :NATIVE_MAX]  # a corner at full resolution keeps the JPEG grid intact
    return PadView(face=face, context=context, native_grey=grey.astype(np.float32), whole_image=box is None)


def _uniform_lbp_table() -> np.ndarray:
    """Maps the 256 LBP(8, 1) codes to 59 bins: 58 uniform patterns, then one for the rest."""
    table = np.full(256, 58, dtype=np.int64)
    next_bin = 0
    for code in range(256):
        bits = [(code >> k) & 1 for k in range(8)]
        transitions = sum(bits[k] != bits[(k + 1) % 8] for k in range(8))
        if transitions <= 2:
            table[code] = next_bin
            next_bin += 1
    return table


_LBP_TABLE = _uniform_lbp_table()
_LBP_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def lbp_histogram(channel: np.ndarray) -> np.ndarray:
    """Normalised 59-bin uniform LBP(8, 1) histogram of one 2-D channel."""
    c = channel.astype(np.int16)
    centre = c[1:-1, 1:-1]
    h, w = centre.shape
    code = np.zeros((h, w), dtype=np.uint8)
    for k, (dy, dx) in enumerate(_LBP_OFFSETS):
        neighbour = c[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        code |= (neighbour >= centre).astype(np.uint8) << k
    hist = np.bincount(_LBP_TABLE[code].ravel(), minlength=59).astype(np.float32)
    return hist / max(hist.sum(), 1.0)


def _channels(rgb: np.ndarray) -> list[np.ndarray]:
    """Y, Cr, Cb, H, S, V planes (uint8) of an RGB uint8 image."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    return [ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2], hsv[..., 0], hsv[..., 1], hsv[..., 2]]


def _colour_stats(rgb: np.ndarray, planes: list[np.ndarray]) -> list[float]:
    stats: list[float] = []
    for i, plane in enumerate(planes):
        if i == 3:  # hue is circular: its spread is in the LBP and the chroma planes
            continue
        p = plane.astype(np.float32) / 255.0
        lo, hi = np.percentile(p, [5, 95])
        stats += [float(p.mean()), float(p.std()), float(lo), float(hi)]
    v = planes[5].astype(np.float32) / 255.0
    s = planes[4].astype(np.float32) / 255.0
    stats += [
        float((rgb >= 250).any(axis=2).mean()),  # clipped highlights
        float((rgb <= 5).all(axis=2).mean()),  # crushed shadows
        float(((v > 0.85) & (s < 0.2)).mean()),  # specular highlights
        float(np.corrcoef(rgb[..., 0].ravel(), rgb[..., 2].ravel())[0, 1]) if rgb.std() > 0 else 1.0,
    ]
    return stats


def _spectrum(grey: np.ndarray) -> list[float]:
    """Radial and angular energy of the windowed power spectrum, and high-frequency peakiness."""
    n = grey.shape[0]
    g = grey.astype(np.float32)
    g = (g - g.mean()) / (g.std() + 1e-3)
    window = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    power = np.abs(np.fft.fftshift(np.fft.fft2(g * window))) ** 2
    logp = np.log1p(power)
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    radius = np.hypot(xx, yy) / (n / 2.0)
    angle = np.mod(np.arctan2(yy, xx), np.pi)
    inside = (radius > 0.02) & (radius <= 1.0)
    rbin = np.minimum((radius * RADIAL_BINS).astype(np.int64), RADIAL_BINS - 1)
    radial = np.bincount(rbin[inside], weights=logp[inside], minlength=RADIAL_BINS)
    counts = np.bincount(rbin[inside], minlength=RADIAL_BINS).clip(min=1)
    radial = radial / counts
    radial = radial - radial.mean()
    high = inside & (radius > 0.3)
    abin = np.minimum((angle / np.pi * ANGULAR_BINS).astype(np.int64), ANGULAR_BINS - 1)
    angular = np.bincount(abin[high], weights=power[high], minlength=ANGULAR_BINS)
    angular = angular / max(angular.sum(), 1e-9)
    band = logp[high]
    median = float(np.median(band))
    peaks = [float(band.max() - median), float(np.percentile(band, 99) - median),
             float((band > median + 3.0).mean())]
    return radial.tolist() + angular.tolist() + peaks


def _blur(grey: np.ndarray) -> list[float]:
    g = grey.astype(np.float32)
    lap = float(cv2.Laplacian(g, cv2.CV_32F).var())
    half = cv2.resize(g, (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_AREA)
    lap_half = float(cv2.Laplacian(half, cv2.CV_32F).var())
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    grad = float(np.hypot(gx, gy).mean())
    return [np.log1p(lap), np.log1p(grad), np.log1p(lap_half) - np.log1p(lap)]


def _blockiness(grey: np.ndarray) -> list[float]:
    """Strength of an 8-pixel grid in horizontal and vertical differences (max phase over mean)."""
    out = []
    for axis in (1, 0):
        diff = np.abs(np.diff(grey, axis=axis)).mean(axis=1 - axis)
        if diff.size < 16:
            out.append(0.0)
            continue
        phases = np.array([diff[p::8].mean() for p in range(8)])
        out.append(float(np.log((phases.max() + 1e-3) / (phases.mean() + 1e-3))))
    return out


def _border(context: np.ndarray) -> list[float]:
    """Long straight edges (bezels, paper edges) and the brightness of the ring around the face."""
    g = cv2.cvtColor(context, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0))
    gy = np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    col = gx.mean(axis=0)
    row = gy.mean(axis=1)
    n = g.shape[0]
    ring = np.ones_like(g, dtype=bool)
    ring[n // 5:n - n // 5, n // 5:n - n // 5] = False
    v = g[ring] / 255.0
    return [
        float(np.log((col.max() + 1.0) / (col.mean() + 1.0))),
        float(np.log((row.max() + 1.0) / (row.mean() + 1.0))),
        float(v.mean()),
        float(v.std()),
        float((v < 0.06).mean()),
    ]


def pad_features(view: PadView) -> np.ndarray:
    """The feature vector (float32) of one :class:`PadView`; see the module docstring for its groups."""
    planes = _channels(view.face)
    lbp = [lbp_histogram(p) for p in planes]
    grey = planes[0]
    parts = [
        np.concatenate(lbp),
        np.asarray(_colour_stats(view.face, planes), dtype=np.float32),
        np.asarray(_spectrum(grey), dtype=np.float32),
        np.asarray(_blur(grey), dtype=np.float32),
        np.asarray(_blockiness(view.native_grey), dtype=np.float32),
        np.asarray(_border(view.context), dtype=np.float32),
    ]
    vec = np.concatenate(parts).astype(np.float32)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)


def feature_groups() -> dict[str, slice]:
    """Where each named group sits in the vector of :func:`pad_features`."""
    sizes = {"lbp": 6 * 59, "colour": 5 * 4 + 4, "spectrum": RADIAL_BINS + ANGULAR_BINS + 3,
             "blur": 3, "blocks": 2, "border": 5}
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = slice(start, start + size)
        start += size
    return out


@functools.lru_cache(maxsize=4)
def _spectrum_masks(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The Hann window and the high-frequency band mask of :func:`_spectrum` for an n x n face."""
    window = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    radius = np.hypot(xx, yy) / (n / 2.0)
    return window, (radius > 0.3) & (radius <= 1.0)


def cue_values(face: np.ndarray) -> dict[str, float]:
    """The recapture cue values of a :func:`face_view` (FACE_SIZE square RGB uint8), in 1-2 ms.

    The same numbers as the matching entries of :func:`pad_features`, computed alone: ``moire``,
    the face spectrum's highest high-frequency peak over the band's median (log power);
    ``colour gamut``, the standard deviation (0-1) of Cr plus that of Cb; ``washed out``, luma's
    5th-to-95th percentile range (0-1); ``glare``, the share of bright (V > 0.85), unsaturated
    (S < 0.2) pixels.
    """
    ycrcb = cv2.cvtColor(face, cv2.COLOR_RGB2YCrCb)
    hsv = cv2.cvtColor(face, cv2.COLOR_RGB2HSV_FULL)
    luma = ycrcb[..., 0].astype(np.float32) / 255.0
    low, high = np.percentile(luma, [5, 95])
    chroma = ycrcb[..., 1:].astype(np.float32).reshape(-1, 2) / 255.0
    spread = chroma.std(axis=0)
    glare = ((hsv[..., 2] > 0.85 * 255.0) & (hsv[..., 1] < 0.2 * 255.0)).mean()
    g = ycrcb[..., 0].astype(np.float32)
    g = (g - g.mean()) / (g.std() + 1e-3)
    window, band = _spectrum_masks(g.shape[0])
    logp = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(g * window))) ** 2)[band]
    return {"moire": float(logp.max() - np.median(logp)), "colour gamut": float(spread[0] + spread[1]),
            "washed out": float(high - low), "glare": float(glare)}
