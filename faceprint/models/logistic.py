"""Small logistic-regression models stored as ``.npz`` (the morph detector), and how they are fitted.

A weights file holds ``mean``, ``scale`` and ``coef`` (one value per feature), ``bias``, the
operating ``threshold``, the ``feature_version`` it was trained on and the ``model`` name.
:func:`fit_logistic` fits one (scripts/train_morph_detector.py, benchmarks/pad.py).
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


def fit_logistic(x: np.ndarray, y: np.ndarray, lam: float, iters: int = 30) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression by Newton's method.

    ``x`` is [n, d] float, ``y`` [n] in {0, 1}, ``lam`` the L2 strength (the bias is not
    penalised); returns (coef [d], bias). Each class weighs half, whatever its count.
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    weight = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * n
    w = np.zeros(d + 1)
    reg = np.full(d + 1, lam)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (weight * (p - y)) + reg * w
        hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-6)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1], float(w[-1])
