"""Apparent age (years, with a range) and gender appearance from a face, by faceprint's own network.

    from faceprint.models.age_gender import AgeGenderNet
    net = AgeGenderNet()
    result = net.predict(image, faces)        # AgeGender: age, age_low, age_high, p_female, each [n]

The network (``faceprint/models/weights/age_gender.onnx``, 10.8 MB, float32) is trained by
``scripts/train_age_gender.py`` (recipe ``w48``, seed 15) on ``../shared/data/age/utkface-train``
(UTKFace, Zhang, Song and Qi, CVPR 2017; non-commercial research use), chosen on a held-out sixth
of it, and reported on ``utkface-sample`` (docs/attributes.md, ``faceprint eval age``). It is a
small CNN (a stride-2 stem, four double-convolution blocks, 2.7 M parameters) with an age head of
101 one-year bins whose softmax expectation is the estimate (trained with Gaussian label
distributions, as in DLDL-v2) and a gender head; the crop and its mirror image are averaged. Its
crop is framed like a UTKFace chip: the five landmarks of the detected face are mapped by a
similarity transform onto :data:`UTK_TEMPLATE`, 64x64 RGB.

A head on the SFace recognition embedding (ridge regression for age, logistic regression for
gender) was measured too and left: on the same held-out part of utkface-train its age error was
about 9.4 years against 6.0 for this network (docs/attributes.md).

``age_low`` / ``age_high`` is an 80% interval: the 10th and 90th percentiles of the network's
error on the held-out part of utkface-train in bins of estimated age (:data:`AGE_RANGES`, printed
by the training script), added to the estimate; it held 79% of the held-out ages.
``p_female`` is the probability that the face *looks* female to a model trained on UTKFace's
binary labels: an appearance estimate, never a statement about a person's gender identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UnsupportedInputError
from ..types import Face
from .base import ModelCard
from .onnx_runtime import bundled_model
from .warp import align_face

WEIGHTS = "age_gender.onnx"
#: The 80% interval around an estimate: for estimates from ``edges[i]`` years, the 10th (``low``) and
#: 90th (``high``) percentile of (true - estimated) age on the held-out sixth of utkface-train
#: (printed by scripts/train_age_gender.py after training).
AGE_RANGES = {
    "edges": (0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0),
    "low": (-1.5, -3.61, -4.9, -3.27, -5.52, -9.9, -15.87, -14.71, -14.46, -16.7, -19.36),
    "high": (0.71, 4.3, 4.52, 7.4, 8.21, 8.86, 8.71, 8.58, 9.65, 6.1, 6.24),
}
#: Where the five landmarks (right eye, left eye, nose, right and left mouth corner) lie in a 200x200
#: UTKFace chip: medians of YuNet's landmarks on utkface-train, made left-right symmetric. The
#: network's crop is a chip framed like that (scaled to :data:`NET_SIZE`).
UTK_TEMPLATE = np.array([[61.0, 58.3], [139.0, 58.3], [100.0, 100.2], [67.1, 136.5], [132.9, 136.5]], np.float32)
#: Side of the square RGB crop the age/gender network reads, pixels.
NET_SIZE = 64


def crop_from_landmarks(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = NET_SIZE) -> np.ndarray:
    """The face with ``landmarks`` framed like a UTKFace chip: RGB uint8 [size, size, 3]."""
    return align_face(image_rgb, landmarks, UTK_TEMPLATE * (size / 200.0), (size, size))


def fallback_landmarks(shape: tuple[int, ...]) -> np.ndarray:
    """Landmarks to crop a UTKFace chip of ``shape`` (H, W, ...) in which no face was detected:
    the template itself, scaled to the chip (the chips are aligned already)."""
    return UTK_TEMPLATE * np.array([shape[1] / 200.0, shape[0] / 200.0], np.float32)


@dataclass(frozen=True)
class AgeGender:
    """Per-face estimates, each a numpy array of shape [n] (n faces, in the order given).

    ``age``: apparent age in years (float); ``age_low`` / ``age_high``: an 80% interval in years
    around it (from the model's measured error at that age); ``p_female``: probability in [0, 1]
    that the face looks female (an appearance estimate, not identity).
    """

    age: np.ndarray
    age_low: np.ndarray
    age_high: np.ndarray
    p_female: np.ndarray

    def __len__(self) -> int:
        return len(self.age)


def _check_crop(crop: np.ndarray) -> np.ndarray:
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) == 0:
        raise UnsupportedInputError(
            f"an age/gender crop must be RGB [h, w, 3] (AgeGenderNet.crop makes one), got shape {crop.shape}"
        )
    crop = crop.astype(np.uint8, copy=False)
    if crop.shape[:2] != (NET_SIZE, NET_SIZE):
        crop = cv2.resize(crop, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_AREA)
    return crop


def age_range(age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 80% interval (low, high) in years around estimated ``age`` [n] (:data:`AGE_RANGES`)."""
    edges = np.asarray(AGE_RANGES["edges"])
    bins = np.clip(np.searchsorted(edges, age, side="right") - 1, 0, len(edges) - 1)
    low = np.clip(age + np.asarray(AGE_RANGES["low"])[bins], 0.0, None)
    high = np.maximum(age + np.asarray(AGE_RANGES["high"])[bins], age)
    return np.minimum(low, age), high


class AgeGenderNet:
    """Apparent age and gender appearance of faces: ``predict(image, faces)`` -> :class:`AgeGender`.

    ``min_face_px``: the smallest face box side (pixels) the estimate is trusted at: UTKFace photos
    shrunk to a 32 px face gave an age MAE of 5.20 years against 4.72 at 48 px, 6.30 at 24 px and
    16 at 16 px (``benchmarks/attributes.py --sizes``; docs/attributes.md).
    ``threads``: ONNX Runtime intra-op threads (default 1: a face costs a few ms).
    """

    min_face_px = 32
    file = WEIGHTS
    card = ModelCard(
        name="age-gender",
        kind="attribute",
        summary="faceprint's apparent-age (years, 80% range) and gender-appearance CNN, trained on UTKFace",
        source=(f"bundled with faceprint (faceprint/models/weights/{WEIGHTS}); trained here by "
                "scripts/train_age_gender.py on UTKFace (utkface-train)"),
        licence="MIT",
        published_accuracy="measured here (docs/attributes.md): UTKFace MAE and gender accuracy on utkface-sample",
        input_spec="n x 3 x 64 x 64 RGB float 0-255, UTKFace-chip framing (5-point similarity to UTK_TEMPLATE)",
        output_dim=2,
        weights=(f"faceprint/models/weights/{WEIGHTS}",),
    )

    def __init__(self, threads: int = 1) -> None:
        self._model = bundled_model(self.file, threads=threads)

    def crop(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The network's crop of ``face`` in the RGB uint8 ``image_rgb``: RGB uint8 64x64, UTKFace framing."""
        return crop_from_landmarks(image_rgb, face.landmarks)

    def predict_crops(self, crops: Sequence[np.ndarray]) -> AgeGender:
        """Estimates for RGB crops made by :meth:`crop` (other sizes are resized to 64x64)."""
        if len(crops) == 0:
            empty = np.zeros(0, np.float32)
            return AgeGender(empty, empty, empty, empty)
        blob = np.stack([_check_crop(c) for c in crops]).transpose(0, 3, 1, 2).astype(np.float32)
        out = self._model.run(blob).astype(np.float64)
        age = np.clip(out[:, 0], 0.0, 100.0)
        low, high = age_range(age)
        return AgeGender(age=age.astype(np.float32), age_low=low.astype(np.float32),
                         age_high=high.astype(np.float32), p_female=np.clip(out[:, 1], 0.0, 1.0).astype(np.float32))

    def predict(self, image_rgb: np.ndarray, faces: Sequence[Face]) -> AgeGender:
        """Estimates for each face of the RGB uint8 ``image_rgb``."""
        return self.predict_crops([self.crop(image_rgb, f) for f in faces])
