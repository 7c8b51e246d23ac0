"""Apparent age (years, with a range) and gender appearance from a face, by faceprint's own model.

    from faceprint.models.age_gender import AgeGenderNet
    net = AgeGenderNet()
    result = net.predict(image, faces)        # AgeGender: age, age_low, age_high, p_female, each [n]

The weights (``faceprint/models/weights/age_gender.npz``) are trained by
``scripts/train_age_gender.py`` on ``../shared/data/age/utkface-train`` (UTKFace, Zhang, Song and Qi,
CVPR 2017; non-commercial research use), chosen on a held-out sixth of it, and reported on
``utkface-sample`` (docs/attributes.md, ``faceprint eval age``). The model is a head on the SFace
recognition embedding of the face's aligned 112x112 crop: ridge regression for age, a logistic
regression for gender.

``age_low`` / ``age_high`` is an 80% interval: the 10th and 90th percentile of the model's
error on the held-out part of utkface-train, in bins of predicted age, added to the estimate.
``p_female`` is the probability that the face *looks* female to a model trained on UTKFace's
binary labels: an appearance estimate, never a statement about a person's gender identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelUnavailableError, UnsupportedInputError
from ..types import Face
from .base import ARCFACE_112, ModelCard, weights_file
from .sface import SFaceEmbedder
from .warp import align_face

WEIGHTS = "age_gender.npz"
#: Side of the aligned crop the model reads, pixels.
CROP_SIZE = 112


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
    if crop.shape[:2] != (CROP_SIZE, CROP_SIZE):
        import cv2

        crop = cv2.resize(crop.astype(np.uint8, copy=False), (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    return crop.astype(np.uint8, copy=False)


class AgeGenderNet:
    """Apparent age and gender of faces: ``predict(image, faces)`` -> :class:`AgeGender`.

    ``min_face_px``: the smallest face box side (pixels) the estimate is trusted at.
    """

    min_face_px = 40
    file = WEIGHTS
    card = ModelCard(
        name="age-gender",
        kind="attribute",
        summary="faceprint's apparent-age (years, 80% range) and gender-appearance model",
        source=(f"bundled with faceprint (faceprint/models/weights/{WEIGHTS}); trained here by "
                "scripts/train_age_gender.py on UTKFace (utkface-train)"),
        licence="MIT",
        published_accuracy="measured here (docs/attributes.md): UTKFace MAE and gender accuracy on utkface-sample",
        input_spec="112x112 RGB, ArcFace 5-point alignment (SFace embedding, then the head)",
        output_dim=4,
        weights=(f"faceprint/models/weights/{WEIGHTS}",),
    )

    def __init__(self) -> None:
        path = weights_file(self.file)
        try:
            with np.load(path, allow_pickle=False) as data:
                self._mean = data["mean"].astype(np.float64)
                self._age_coef = data["age_coef"].astype(np.float64)
                self._age_bias = float(data["age_bias"])
                self._gender_coef = data["gender_coef"].astype(np.float64)
                self._gender_bias = float(data["gender_bias"])
                self._range_edges = data["range_edges"].astype(np.float64)
                self._range_low = data["range_low"].astype(np.float64)
                self._range_high = data["range_high"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelUnavailableError(f"{path} cannot be read ({exc}): reinstall faceprint "
                                        "('faceprint doctor' checks every model file)") from exc
        self._embedder: SFaceEmbedder | None = None

    def crop(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The model's input crop of ``face``: RGB uint8 112x112, ArcFace 5-point alignment."""
        return align_face(image_rgb, face.landmarks, ARCFACE_112, (CROP_SIZE, CROP_SIZE))

    def predict_crops(self, crops: Sequence[np.ndarray]) -> AgeGender:
        """Estimates for RGB crops made by :meth:`crop` (other sizes are resized)."""
        if len(crops) == 0:
            empty = np.zeros(0, np.float32)
            return AgeGender(empty, empty, empty, empty)
        if self._embedder is None:  # loaded on first use
            self._embedder = SFaceEmbedder(threads=1)
        embeddings = self._embedder.embed_crops(np.stack([_check_crop(c) for c in crops])).astype(np.float64)
        x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True) - self._mean
        age = np.clip(x @ self._age_coef + self._age_bias, 0.0, 100.0)
        p_female = 1.0 / (1.0 + np.exp(-np.clip(x @ self._gender_coef + self._gender_bias, -50, 50)))
        return self._result(age, p_female)

    def predict(self, image_rgb: np.ndarray, faces: Sequence[Face]) -> AgeGender:
        """Estimates for each face of the RGB uint8 ``image_rgb``."""
        return self.predict_crops([self.crop(image_rgb, f) for f in faces])

    def _result(self, age: np.ndarray, p_female: np.ndarray) -> AgeGender:
        bins = np.clip(np.searchsorted(self._range_edges, age, side="right") - 1, 0, len(self._range_low) - 1)
        low = np.clip(age + self._range_low[bins], 0.0, None)
        high = age + self._range_high[bins]
        return AgeGender(age=age.astype(np.float32), age_low=low.astype(np.float32),
                         age_high=high.astype(np.float32), p_female=p_female.astype(np.float32))
