"""Five-point similarity alignment: warp a face so its landmarks land on a model's template.

Pure functions; no state. The transform is the least-squares similarity (rotation, uniform scale,
translation) of Umeyama (1991), the same one insightface's ``norm_crop`` and OpenCV's
``FaceRecognizerSF.alignCrop`` use. It lives among the models because each model's crop is defined
by it (:mod:`faceprint.pipeline.align` gives it to the pipeline).
"""

from __future__ import annotations

import cv2
import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity matrix that best maps points ``src`` onto ``dst`` (both [n, 2])."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    matrix = np.zeros((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def align_face(
    image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """The aligned crop (RGB uint8, ``size`` = (width, height)) of the face with ``landmarks``."""
    matrix = similarity_transform(np.asarray(landmarks, np.float32), template)
    return cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
