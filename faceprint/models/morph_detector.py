"""Single-image morphing-attack detection (S-MAD): is this enrolment photo a blend of two faces?

    from faceprint.models.morph_detector import MorphDetector
    detector = MorphDetector()                   # loads faceprint/models/weights/morph_detector.npz
    result = detector.check(image, face)         # image: RGB uint8 array; face: a detected Face
    result.score, result.is_morph, result.threshold

Landmark-aligned morphs (:mod:`faceprint.pad.morph`) are warped and averaged images: the blend smooths
skin texture, leaves ghosting around the eyes, nostrils and hair line, and damps high spatial
frequencies. The detector reuses the passive PAD's hand-crafted colour-texture (LBP), spectrum,
blur and JPEG-grid cues of the face region (:mod:`faceprint.models.pad_features`) under a
logistic-regression model trained by ``scripts/train_morph_detector.py`` on LFW View 1 DevTrain
people only (bona fide photos against morphs of pairs of them). The bona fide training photos were
re-saved through the morphs' own JPEG (quality 95) path, so that the model cannot tell the classes
apart by the extra compression alone, and a copy of both classes shrunk to 0.75x and re-saved was
added, so that it cannot rely on the original JPEG grid either. A morph post-processed in a way
not seen in training (measured: 0.6x and JPEG 85) mostly gets through: see docs/morphing.md.
``score`` is the model's probability that the face is a morph. ``check`` is a pure function of its
inputs: no detection, no I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceprintError
from ..types import Face
from .base import ModelCard
from .logistic import LogisticWeights
from .pad_features import FEATURE_VERSION, pad_features, pad_view

log = logging.getLogger(__name__)

__all__ = ["WEIGHTS", "MorphCheck", "MorphDetector", "MorphModelError", "morph_features"]

WEIGHTS = Path(__file__).resolve().parent / "weights" / "morph_detector.npz"


class MorphModelError(FaceprintError):
    """The morph-detector weights are missing, corrupt, or were made for other features."""

    code = "morph_model_error"


@dataclass(frozen=True)
class MorphCheck:
    """The morph-detection decision for one face.

    ``score`` is the model's probability that the face image is a morph, ``is_morph`` is
    ``score >= threshold``, ``model`` names the weights.
    """

    score: float
    is_morph: bool
    threshold: float
    model: str

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "score": round(self.score, 4),
            "is_morph": self.is_morph,
            "threshold": round(self.threshold, 4),
            "model": self.model,
        }


def morph_features(image: np.ndarray, face: Face) -> np.ndarray:
    """The feature vector the detector scores: the passive PAD cues of ``face``'s region in ``image``."""
    return pad_features(pad_view(image, face.box))


CARD = ModelCard(
    name="morph-detector",
    kind="morph detection",
    summary="single-image morph detection: PAD colour-texture, spectrum, blur and JPEG-grid cues, "
            "logistic regression",
    source="this repository (faceprint/models/weights/morph_detector.npz, rebuilt by "
           "scripts/train_morph_detector.py --seed 0)",
    licence="MIT",
    published_accuracy="none published; measured here: D-EER 1.0% on untouched LFW DevTest morphs, "
                       "MACER 63% after unseen resizing + JPEG (see docs/morphing.md)",
    input_spec="RGB image and one detected face box",
    weights=("faceprint/models/weights/morph_detector.npz",),
)


class MorphDetector:
    """Single-image morph detection from the shipped (or given) weights file.

    ``threshold`` overrides the operating point stored with the weights (chosen on held-out DevTrain
    people, as-is and resized, at a BPCER of 5%: at most one bona fide photo in 20 refused there).
    """

    card = CARD

    def __init__(self, weights: str | Path = WEIGHTS, *, threshold: float | None = None) -> None:
        self.weights = LogisticWeights.load(weights, FEATURE_VERSION, MorphModelError,
                                            "scripts/train_morph_detector.py --seed 0")
        self.model = self.weights.model
        self.threshold = self.weights.threshold if threshold is None else float(threshold)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Morph probabilities of a batch of feature vectors ([n, d] -> [n])."""
        return self.weights.probabilities(features)

    def check(self, image: np.ndarray, face: Face) -> MorphCheck:
        """Whether ``face`` in the RGB uint8 ``image`` looks like a morph."""
        score = float(self.score_features(morph_features(image, face))[0])
        return MorphCheck(score=score, is_morph=score >= self.threshold, threshold=self.threshold, model=self.model)
