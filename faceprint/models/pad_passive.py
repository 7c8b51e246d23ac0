"""Passive presentation attack detection (PAD) on one image: is this face live, or a replay or print?

    from faceprint.models.pad_passive import PassiveLiveness
    pad = PassiveLiveness()                      # loads faceprint/models/weights/pad_passive.npz
    result = pad.check(image, face)              # image: RGB uint8 array; face: a detected Face or None
    result.score, result.is_live, result.threshold

The score is the probability of "live" given hand-crafted recapture cues
(:mod:`faceprint.models.pad_features`) under a logistic-regression model trained by
``scripts/train_pad.py`` on live photos against attacks synthesised from them
(:mod:`faceprint.pad.attacks`). ``check`` is a pure function of its inputs: no detection, no I/O.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import FaceprintError
from ..types import Face, Liveness
from .base import ModelCard
from .logistic import LogisticWeights
from .pad_features import FEATURE_VERSION, pad_features, pad_view

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parent / "weights" / "pad_passive.npz"
NO_FACE_REASON = "no face given: the whole image was used"


class PadModelError(FaceprintError):
    """The passive PAD weights are missing, corrupt, or were made for other features."""

    code = "pad_model_error"


CARD = ModelCard(
    name="pad-passive",
    kind="liveness",
    summary="passive PAD: colour-texture LBP, spectrum (moire), gamut, blur, JPEG-grid and border cues, "
            "logistic regression",
    source="this repository (faceprint/models/weights/pad_passive.npz, rebuilt by scripts/train_pad.py --seed 0)",
    licence="MIT",
    published_accuracy="none published; measured here: see the README, Liveness (synthetic validation and a real "
                       "one-person replay set)",
    input_spec="RGB image and one detected face box (the box x1.2 and x2.2, resized); whole image without a box",
    weights=("faceprint/models/weights/pad_passive.npz",),
)


class PassiveLiveness:
    """Single-image liveness from the shipped (or given) weights file.

    ``threshold`` overrides the operating point stored with the weights (chosen on the synthetic
    validation split at a worst-case APCER of 5%).
    """

    card = CARD

    def __init__(self, weights: str | Path = WEIGHTS, *, threshold: float | None = None) -> None:
        self.weights = LogisticWeights.load(weights, FEATURE_VERSION, PadModelError,
                                            "scripts/train_pad.py --seed 0")
        self.model = self.weights.model
        self.threshold = self.weights.threshold if threshold is None else float(threshold)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Live probabilities of a batch of feature vectors ([n, d] -> [n])."""
        return self.weights.probabilities(features)

    def check(self, image: np.ndarray, face: Face | None) -> Liveness:
        """Liveness of ``face`` in the RGB uint8 ``image`` (the whole image when ``face`` is None)."""
        view = pad_view(image, face.box if face is not None else None)
        score = float(self.score_features(pad_features(view))[0])
        is_live = score >= self.threshold
        reason = None
        if not is_live:
            reason = "presentation attack suspected (recapture cues: print or screen)"
        if view.whole_image:
            reason = NO_FACE_REASON if reason is None else f"{reason}; {NO_FACE_REASON}"
        return Liveness(score=score, is_live=is_live, threshold=self.threshold, reason=reason, model=self.model)


def pad_face(faces: list[Face]) -> Face | None:
    """The face PAD should judge among detected ``faces``: the largest, or None when there is none."""
    if not faces:
        return None
    return max(faces, key=lambda f: f.box.area)
