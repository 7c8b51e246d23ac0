"""Fair score normalisation: per-cluster threshold offsets that need no demographic labels.

    from faceprint.evaluation.score_normalisation import fit_normaliser, ScoreNormaliser
    norm = fit_normaliser(vectors, identities, clusters=20, fmr=1e-3, model=engine.model_id)
    norm.save("fsn.npz")
    norm = ScoreNormaliser.load("fsn.npz")
    scores = norm.normalise(a_vectors, b_vectors)          # [n_a, n_b] normalised similarities
    accepted = scores >= norm.threshold

The method is Fair Score Normalisation (Terhörst, Kolf, Damer, Kirchbuchner, Kuijper: "Post-
comparison mitigation of demographic bias in face recognition using fair score normalization",
Pattern Recognition Letters 2020), in the family of FairCal (Salvador et al., ICLR 2022):

1. cluster the templates of a calibration set with spherical k-means (no labels);
2. for each cluster ``c``, find the threshold ``thr_c`` at the target FMR over the impostor pairs
   with at least one template in ``c``, and its offset ``delta_c = thr_c - thr_global``;
3. a comparison of templates in clusters ``i`` and ``j`` scores ``s - (delta_i + delta_j) / 2``;
4. the global threshold is recalibrated on the normalised impostor scores to the same FMR.

At query time only the templates are needed: each is assigned to its nearest centroid. Identities
are needed only to tell impostor pairs from mated ones in the calibration set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceprintError, ModelMismatchError
from ..pipeline.embedding import unit_rows
from .metrics import threshold_at_fmr

log = logging.getLogger(__name__)

__all__ = ["NormaliserError", "ScoreNormaliser", "fit_normaliser", "spherical_kmeans"]


class NormaliserError(FaceprintError):
    """A score normaliser that cannot be fitted, loaded or applied."""

    code = "normaliser_error"


def spherical_kmeans(vectors: np.ndarray, k: int, *, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """``k`` unit-length centroids of unit vectors (cosine k-means, k-means++ seeding)."""
    x = unit_rows(vectors)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise NormaliserError(f"cannot make {k} clusters of {n} templates")
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(n)]]
    dist = 1.0 - x @ centroids[0]
    for _ in range(k - 1):
        p = np.maximum(dist, 0.0) ** 2
        pick = rng.choice(n, p=p / p.sum()) if p.sum() > 0 else rng.integers(n)
        centroids.append(x[pick])
        dist = np.minimum(dist, 1.0 - x @ x[pick])
    c = np.stack(centroids)
    assign = np.full(n, -1)
    for _ in range(iterations):
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                c[j] = members.sum(axis=0)
        c = unit_rows(c)
    return c


@dataclass
class ScoreNormaliser:
    """Fitted FSN parameters: centroids, per-cluster offsets and the recalibrated threshold."""

    centroids: np.ndarray
    offsets: np.ndarray
    threshold: float
    fmr: float
    model: str

    def clusters(self, vectors: np.ndarray) -> np.ndarray:
        """Index of the nearest centroid (cosine) of each template."""
        return np.argmax(unit_rows(np.atleast_2d(vectors)) @ self.centroids.T, axis=1)

    def offset(self, vectors: np.ndarray) -> np.ndarray:
        """Each template's cluster offset ``delta_c``."""
        return self.offsets[self.clusters(vectors)]

    def normalise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Normalised similarity matrix [n_a, n_b] of templates ``a`` and ``b`` (rows)."""
        a, b = np.atleast_2d(a).astype(np.float32), np.atleast_2d(b).astype(np.float32)
        raw = a @ b.T
        return raw - 0.5 * (self.offset(a)[:, None] + self.offset(b)[None, :])

    def normalise_scores(self, scores: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Normalised versions of paired scores ``scores[i] = a[i] . b[i]``."""
        return np.asarray(scores) - 0.5 * (self.offset(a) + self.offset(b))

    def check_model(self, model: str) -> None:
        """Raise ModelMismatchError unless the normaliser was fitted on templates of ``model``."""
        if model != self.model:
            raise ModelMismatchError(f"score normaliser fitted for model '{self.model}', templates are '{model}'")

    def save(self, path: str | Path) -> Path:
        """Write the parameters to an ``.npz`` file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, centroids=self.centroids, offsets=self.offsets, threshold=self.threshold, fmr=self.fmr,
                 model=np.array(self.model))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ScoreNormaliser:
        """Read parameters written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls(data["centroids"].astype(np.float32), data["offsets"].astype(np.float64),
                           float(data["threshold"]), float(data["fmr"]), str(data["model"]))
        except (OSError, KeyError, ValueError) as exc:
            raise NormaliserError(f"cannot read score normaliser {path}: {exc}") from exc


def fit_normaliser(
    vectors: np.ndarray, identities: Sequence[str], *, clusters: int = 20, fmr: float = 1e-3, model: str = "",
    seed: int = 0,
) -> ScoreNormaliser:
    """Fit FSN on calibration templates (rows of ``vectors``) of the given ``identities``.

    Every pair of templates of different identities is an impostor pair. A cluster whose impostor
    pairs are too few to resolve ``fmr`` (fewer than ``1 / fmr``) keeps offset 0.
    """
    x = unit_rows(vectors)
    ids = np.asarray(identities)
    if len(ids) != len(x):
        raise NormaliserError(f"{len(x)} templates but {len(ids)} identities")
    centroids = spherical_kmeans(x, clusters, seed=seed)
    assign = np.argmax(x @ centroids.T, axis=1)
    scores = x @ x.T
    impostor = np.triu(ids[:, None] != ids[None, :], k=1)
    global_thr = threshold_at_fmr(scores[impostor], fmr)
    needed = int(np.ceil(1.0 / fmr))
    offsets = np.zeros(clusters)
    for c in range(clusters):
        inside = assign == c
        mask = impostor & (inside[:, None] | inside[None, :])
        count = int(mask.sum())
        if count < needed:
            log.warning("cluster %d has %d impostor pairs (< %d): offset left at 0", c, count, needed)
            continue
        offsets[c] = threshold_at_fmr(scores[mask], fmr) - global_thr
    delta = offsets[assign]
    normalised = scores - 0.5 * (delta[:, None] + delta[None, :])
    threshold = threshold_at_fmr(normalised[impostor], fmr)
    log.info("FSN: %d clusters, offsets %.4f..%.4f, threshold %.4f -> %.4f", clusters, offsets.min(),
             offsets.max(), global_thr, threshold)
    return ScoreNormaliser(centroids.astype(np.float32), offsets, float(threshold), float(fmr), model)
