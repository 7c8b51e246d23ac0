"""Landmark-aligned face morphs: warp two faces to their mean shape and blend them.

    from faceprint.pad.morph import morph
    image = morph(image_a, points_a, image_b, points_b, alpha=0.5)

This is the classic "complete" morph of the morphing-attack literature (e.g. Ferrara et al. 2014,
Scherhag et al. 2017): the landmarks of both faces are averaged into one shape, each image is
warped onto it piecewise-affinely over a Delaunay triangulation of the landmarks plus points on
the image border (so the whole frame moves smoothly), and the two warped images are blended.
No retouching of ghosting artefacts is done: real attackers would, so results here are a lower
bound on what a careful morph achieves.

Pure functions; no state. Images are RGB uint8 of any size; ``image_b`` is resized to
``image_a``'s size (its points scaled with it).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["border_points", "delaunay_triangles", "mean_shape", "morph", "warp_to_shape"]


def border_points(width: int, height: int) -> np.ndarray:
    """Eight points on the image border (corners and edge midpoints), float32 [8, 2]."""
    w, h = width - 1.0, height - 1.0
    return np.array(
        [[0, 0], [w / 2, 0], [w, 0], [w, h / 2], [w, h], [w / 2, h], [0, h], [0, h / 2]], dtype=np.float32
    )


def mean_shape(points_a: np.ndarray, points_b: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The shape ``(1 - alpha) * a + alpha * b`` of two corresponding point sets."""
    return ((1.0 - alpha) * np.asarray(points_a, np.float32) + alpha * np.asarray(points_b, np.float32)).astype(
        np.float32
    )


def delaunay_triangles(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Delaunay triangles of ``points`` (inside a ``width`` x ``height`` frame) as index triples [t, 3]."""
    pts = np.asarray(points, np.float32)
    inside = np.clip(pts, 0, [width - 1, height - 1])
    subdiv = cv2.Subdiv2D((0, 0, width, height))
    for x, y in inside:
        subdiv.insert((float(x), float(y)))
    triangles = []
    for t in subdiv.getTriangleList().reshape(-1, 3, 2):
        idx = [int(np.argmin(np.sum((inside - v) ** 2, axis=1))) for v in t]
        if len(set(idx)) == 3 and all(np.min(np.sum((inside - v) ** 2, axis=1)) < 1.0 for v in t):
            triangles.append(idx)
    return np.array(sorted({tuple(t) for t in triangles}), dtype=np.int64).reshape(-1, 3)


def warp_to_shape(
    image: np.ndarray, points: np.ndarray, shape: np.ndarray, triangles: np.ndarray
) -> np.ndarray:
    """``image`` warped piecewise-affinely so its ``points`` land on ``shape`` (float32 result)."""
    h, w = image.shape[:2]
    out = np.zeros((h, w, image.shape[2]), dtype=np.float32)
    covered = np.zeros((h, w), dtype=np.float32)
    src_img = image.astype(np.float32)
    for tri in triangles:
        src = np.asarray(points, np.float32)[tri]
        dst = np.asarray(shape, np.float32)[tri]
        x, y, bw, bh = cv2.boundingRect(dst)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + bw, w), min(y + bh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        matrix = cv2.getAffineTransform(src, dst - np.array([x0, y0], np.float32))
        patch = cv2.warpAffine(src_img, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        cv2.fillConvexPoly(mask, np.round(dst - [x0, y0]).astype(np.int32), 1.0, lineType=cv2.LINE_8)
        mask *= 1.0 - covered[y0:y1, x0:x1]  # shared edges are written once
        out[y0:y1, x0:x1] += patch * mask[..., None]
        covered[y0:y1, x0:x1] += mask
    holes = covered < 0.5
    if holes.any():  # rounding gaps along edges: take the plain image there
        out[holes] = src_img[holes]
    return out


def morph(
    image_a: np.ndarray, points_a: np.ndarray, image_b: np.ndarray, points_b: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """The morph of two faces (RGB uint8, ``image_a``'s size): shape and texture mixed by ``alpha``.

    ``points_a`` and ``points_b`` are corresponding landmarks [n, 2] in each image's pixels (e.g.
    68-point landmarks of :mod:`faceprint.models.dlib_landmarks`); ``alpha`` 0 gives face a, 1 face b.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    pa, pb = np.asarray(points_a, np.float32), np.asarray(points_b, np.float32)
    if pa.shape != pb.shape or pa.ndim != 2 or pa.shape[1] != 2:
        raise ValueError(f"landmarks must be matching [n, 2] arrays, got {pa.shape} and {pb.shape}")
    h, w = image_a.shape[:2]
    if image_b.shape[:2] != (h, w):
        bh, bw = image_b.shape[:2]
        pb = pb * np.array([w / bw, h / bh], np.float32)
        image_b = cv2.resize(image_b, (w, h), interpolation=cv2.INTER_AREA)
    frame = np.array([w - 1, h - 1], np.float32)
    pa, pb = np.clip(pa, 0, frame), np.clip(pb, 0, frame)  # jaw points can fall outside the frame
    border = border_points(w, h)
    pa = np.vstack([pa, border])
    pb = np.vstack([pb, border])
    shape = mean_shape(pa, pb, alpha)
    triangles = delaunay_triangles(shape, w, h)
    warped_a = warp_to_shape(image_a, pa, shape, triangles)
    warped_b = warp_to_shape(image_b, pb, shape, triangles)
    blended = (1.0 - alpha) * warped_a + alpha * warped_b
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
