"""Out-of-domain check: does a template come from a face at all?

A detector false positive (a patch of wallpaper, a shoulder, noise) still yields a unit-length
template, and once enrolled it can match other non-faces. :class:`OodCheck` scores a template by
its Mahalanobis distance to the distribution of real face templates of the same profile (mean and
covariance fitted on LFW View 1 DevTrain images) and rejects it above a threshold set at a 1%
false-reject rate on face templates held out from the fit. Fitted parameters live in
``faceprint/models/weights/ood_<profile>.npz``; ``benchmarks/ood.py`` refits them and measures the
rejection rates (figures in the README, Privacy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FaceprintError, ModelMismatchError
from ..pipeline.embedding import Recognizer
from ..types import Template

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"
TARGET_FRR = 0.01
"""False-reject rate on held-out face templates at which the threshold is set."""


class OodModelMissingError(FaceprintError):
    """No fitted out-of-domain model for this profile (run ``benchmarks/ood.py --fit``)."""

    code = "ood_model_missing"


def weights_path(profile: str) -> Path:
    """Where the fitted parameters for ``profile`` are stored."""
    return WEIGHTS_DIR / f"ood_{profile}.npz"


@dataclass(frozen=True)
class OodCheck:
    """A fitted face/non-face test on templates of one model.

    ``score`` is the Mahalanobis distance to the face distribution; a template is a face when
    ``score <= threshold``.
    """

    model: str
    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    fitted_on: str = ""

    @classmethod
    def fit(cls, model: str, fit_faces: np.ndarray, calibration_faces: np.ndarray,
            target_frr: float = TARGET_FRR, fitted_on: str = "") -> OodCheck:
        """Fit mean and covariance on ``fit_faces``; set the threshold on ``calibration_faces``.

        The two sets must be disjoint: distances of the fitted templates themselves are biased
        low, so a threshold set on them would reject far more than ``target_frr`` of new faces.
        """
        x = np.asarray(fit_faces, dtype=np.float64)
        if x.ndim != 2 or len(x) <= x.shape[1]:
            raise ValueError(f"need more face templates than dimensions to fit, got shape {x.shape}")
        mean = x.mean(axis=0)
        cov = np.cov(x - mean, rowvar=False) + 1e-6 * np.eye(x.shape[1])
        check = cls(model, mean.astype(np.float32), np.linalg.inv(cov).astype(np.float32), float("inf"), fitted_on)
        scores = check.scores(np.asarray(calibration_faces, dtype=np.float32))
        threshold = float(np.quantile(scores, 1.0 - target_frr))
        return cls(model, check.mean, check.precision, threshold, fitted_on)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of template vectors ``[n, dim]`` (higher = less face-like)."""
        z = np.asarray(vectors, dtype=np.float32) - self.mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, self.precision, z), 0.0))

    def check(self, template: Template) -> tuple[bool, float]:
        """``(is_face, score)`` for one template of this check's model."""
        if template.model != self.model:
            raise ModelMismatchError(f"OOD check fitted for model {self.model!r}, template is {template.model!r}")
        score = float(self.scores(template.vector[None, :])[0])
        return score <= self.threshold, score

    def save(self, path: str | Path) -> Path:
        """Write the parameters as a small ``.npz``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(target, model=np.array(self.model), mean=self.mean, precision=self.precision,
                            threshold=np.array(self.threshold), fitted_on=np.array(self.fitted_on))
        return target

    @classmethod
    def load(cls, path: str | Path) -> OodCheck:
        """Read parameters written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(str(data["model"]), data["mean"].astype(np.float32), data["precision"].astype(np.float32),
                       float(data["threshold"]), str(data["fitted_on"]))

    @classmethod
    def for_profile(cls, profile: str, model: str | None = None) -> OodCheck:
        """The shipped check for ``profile`` (e.g. ``"fast"``, ``"accurate"``); checks its model id."""
        path = weights_path(profile)
        if not path.is_file():
            raise OodModelMissingError(f"no out-of-domain model for profile {profile!r} at {path}")
        check = cls.load(path)
        if model is not None and check.model != model:
            raise ModelMismatchError(f"{path} was fitted for model {check.model!r}, not {model!r}")
        return check


def embed_as_aligned(recognizer: Recognizer, crops: list[np.ndarray]) -> np.ndarray:
    """Fused templates ``[n, dim]`` of RGB uint8 ``crops`` fed to every embedder as if aligned faces.

    Each crop is resized to each embedder's input size and stands for every zoom of the part (a
    crop without landmarks has no zoom); flip and fusion follow the recognizer, exactly as
    :meth:`Recognizer.embed` does after alignment. Used to measure the check on non-faces.
    """
    blocks = []
    for i, (part, embedder) in enumerate(zip(recognizer.parts, recognizer.embedders, strict=True)):
        width, height = embedder.crop_size
        x = np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_AREA) for c in crops])
        blocks.append(recognizer.part_embeddings(i, np.concatenate([x] * len(part.zooms))))
    return recognizer.fuse(blocks)
