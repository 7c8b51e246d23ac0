"""Small logistic-regression models stored as ``.npz`` (the liveness and morph detectors).

A weights file holds ``mean``, ``scale`` and ``coef`` (one value per feature), ``bias``, the
operating ``threshold``, the ``feature_version`` it was trained on and the ``model`` name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceprintError


@dataclass(frozen=True)
class LogisticWeights:
    """Standardise, then a logistic regression: ``sigmoid(((x - mean) / scale) . coef + bias)``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    bias: float
    threshold: float
    model: str

    @classmethod
    def load(cls, path: str | Path, feature_version: str, error: type[FaceprintError], rebuild: str) -> LogisticWeights:
        """Read ``path``; ``error`` (naming ``rebuild``, the command that remakes it) if missing,
        unreadable, inconsistent or trained on other features than ``feature_version``."""
        path = Path(path)
        if not path.is_file():
            raise error(f"weights not found: {path} (rebuild: {rebuild})")
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = cls(mean=data["mean"].astype(np.float32), scale=data["scale"].astype(np.float32),
                              coef=data["coef"].astype(np.float32), bias=float(data["bias"]),
                              threshold=float(data["threshold"]), model=str(data["model"]))
                version = str(data["feature_version"])
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise error(f"weights {path} cannot be read: {exc}") from exc
        if version != feature_version:
            raise error(f"{path} was trained on features '{version}', this code computes '{feature_version}': "
                        f"retrain with {rebuild}")
        if not (weights.mean.shape == weights.scale.shape == weights.coef.shape) or weights.mean.ndim != 1:
            raise error(f"weights {path} have inconsistent shapes")
        return weights

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of the positive class for a batch of feature vectors ([n, d] -> [n])."""
        z = (np.atleast_2d(features) - self.mean) / self.scale @ self.coef + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
