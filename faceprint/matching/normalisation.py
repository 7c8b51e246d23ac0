"""Fair score normalisation: per-cluster threshold offsets that need no demographic labels.

    from faceprint.matching.normalisation import fit_normaliser, ScoreNormaliser
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

In production, ``Engine(fair=True)`` loads the normaliser shipped for its profile
(:meth:`ScoreNormaliser.for_profile`, ``faceprint/models/weights/fair_<profile>.npz``, fitted by
``scripts/fit_fair_normaliser.py``) and compares and searches through it; its templates and
galleries carry the model id :func:`fair_model_id` (``faceprint-accurate-v2+fair``), so a gallery
of plain scores is never searched with fair ones, nor the reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FaceprintError, ModelMismatchError
from ..pipeline.embedding import unit_rows
from .thresholds import interpolated_threshold, threshold_at_fmr

log = logging.getLogger(__name__)

__all__ = ["CALIBRATED_FMRS", "FAIR_SUFFIX", "NormaliserError", "NormaliserMissingError", "ScoreNormaliser",
           "fair_model_id", "fit_normaliser", "impostor_thresholds", "is_fair_model", "plain_model_id",
           "spherical_kmeans", "weights_path"]

#: Appended to a profile's model id by ``Engine(fair=True)``: templates and galleries whose scores are normalised.
FAIR_SUFFIX = "+fair"
#: False-match rates at which a shipped normaliser carries a calibrated threshold (as profiles do).
CALIBRATED_FMRS = (1e-2, 1e-3, 1e-4, 1e-5)
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"


class NormaliserError(FaceprintError):
    """A score normaliser that cannot be fitted, loaded or applied."""

    code = "normaliser_error"


class NormaliserMissingError(NormaliserError):
    """No fair score normaliser is shipped for this profile (``fair=True`` / ``--fair`` cannot be used)."""

    code = "normaliser_missing"


def fair_model_id(model: str) -> str:
    """The model id of fair-normalised templates of ``model`` (``faceprint-fast-v1`` -> ``faceprint-fast-v1+fair``)."""
    return model if is_fair_model(model) else model + FAIR_SUFFIX


def is_fair_model(model: str) -> bool:
    """Whether templates of model id ``model`` are compared through a fair score normaliser."""
    return model.endswith(FAIR_SUFFIX)


def plain_model_id(model: str) -> str:
    """The profile's own model id of ``model``, without :data:`FAIR_SUFFIX`."""
    return model[: -len(FAIR_SUFFIX)] if is_fair_model(model) else model


def weights_path(profile: str) -> Path:
    """Where the normaliser shipped for built-in profile ``profile`` is stored."""
    return WEIGHTS_DIR / f"fair_{profile}.npz"


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
    """Fitted normaliser: centroids, per-cluster offsets and the recalibrated threshold(s).

    ``threshold`` is the threshold at ``fmr``; ``thresholds`` maps every calibrated FMR to its
    threshold on normalised scores (at least ``{fmr: threshold}``). ``method`` says how the
    offsets were fitted (``"fsn"``, or ``"centroid-regression"``), ``fitted_on`` on what data.
    """

    centroids: np.ndarray
    offsets: np.ndarray
    threshold: float
    fmr: float
    model: str
    thresholds: dict[float, float] = field(default_factory=dict)
    method: str = "fsn"
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if not self.thresholds:
            self.thresholds = {float(self.fmr): float(self.threshold)}

    def threshold_at(self, fmr: float) -> float:
        """The threshold on normalised scores at false-match rate ``fmr`` (log-interpolated; FaceprintError outside)."""
        return interpolated_threshold(self.thresholds, fmr, f"the fair score normaliser of {self.model}")

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
        """Raise ModelMismatchError unless the normaliser was fitted on templates of ``model`` (fair id or plain)."""
        if plain_model_id(model) != self.model:
            raise ModelMismatchError(f"score normaliser fitted for model '{self.model}', templates are '{model}'")

    def save(self, path: str | Path) -> Path:
        """Write the parameters to an ``.npz`` file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmrs = sorted(self.thresholds)
        np.savez(path, centroids=self.centroids, offsets=self.offsets, threshold=self.threshold, fmr=self.fmr,
                 model=np.array(self.model), fmrs=np.array(fmrs, dtype=np.float64),
                 fmr_thresholds=np.array([self.thresholds[f] for f in fmrs], dtype=np.float64),
                 method=np.array(self.method), fitted_on=np.array(self.fitted_on))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ScoreNormaliser:
        """Read parameters written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                thresholds = ({float(f): float(t) for f, t in zip(data["fmrs"], data["fmr_thresholds"])}
                              if "fmrs" in data else {})
                return cls(data["centroids"].astype(np.float32), data["offsets"].astype(np.float64),
                           float(data["threshold"]), float(data["fmr"]), str(data["model"]), thresholds,
                           str(data["method"]) if "method" in data else "fsn",
                           str(data["fitted_on"]) if "fitted_on" in data else "")
        except (OSError, KeyError, ValueError) as exc:
            raise NormaliserError(f"cannot read score normaliser {path}: {exc}") from exc

    @classmethod
    def for_profile(cls, profile: str, model: str) -> ScoreNormaliser:
        """The normaliser shipped for built-in profile ``profile``, checked against its ``model`` id.

        Raises :class:`NormaliserMissingError` when none is shipped (the message says what works instead).
        """
        path = weights_path(profile)
        if not path.is_file():
            shipped = sorted(p.stem.removeprefix("fair_") for p in WEIGHTS_DIR.glob("fair_*.npz"))
            raise NormaliserMissingError(
                f"no fair score normaliser for profile {profile!r}: fair scores (--fair, fair=True) work with "
                f"{', '.join(repr(s) for s in shipped) or 'no profile'}; fit one with scripts/fit_fair_normaliser.py "
                f"--profile {profile}, or drop --fair")
        norm = cls.load(path)
        norm.check_model(model)
        return norm

    def search(self, probes: np.ndarray, vectors: np.ndarray, person_ids: np.ndarray,
               k: int) -> list[list[tuple[int, float]]]:
        """Exhaustive 1:N search on normalised scores: the top ``k`` ``(person_id, score)`` per probe row.

        ``vectors`` [n, dim] are the gallery's templates and ``person_ids`` [n] their owners; a
        person's score is the maximum over their templates (as in the gallery's own search). Ties
        go to the smaller person id.
        """
        probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
        if len(vectors) == 0:
            return [[] for _ in range(len(probes))]
        delta = self.offset(vectors)
        order = np.argsort(person_ids, kind="stable")
        pids, vecs, delta = person_ids[order], np.asarray(vectors, np.float32)[order], delta[order]
        starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        owners = pids[starts]
        scores = probes @ vecs.T - 0.5 * delta[None, :] - 0.5 * self.offset(probes)[:, None]
        best = np.maximum.reduceat(scores, starts, axis=1)
        out = []
        for row in best:
            top = np.lexsort((owners, -row))[:k]
            out.append([(int(owners[j]), float(row[j])) for j in top])
        return out


def impostor_thresholds(normalised_impostors: np.ndarray, fmrs: Sequence[float]) -> dict[float, float]:
    """``{fmr: threshold}`` on normalised impostor scores, for each FMR the scores can resolve (>= 1 / fmr pairs)."""
    n = np.asarray(normalised_impostors).size
    return {float(f): threshold_at_fmr(normalised_impostors, f) for f in fmrs if n * f >= 1.0}


def fit_normaliser(
    vectors: np.ndarray, identities: Sequence[str], *, clusters: int = 20, fmr: float = 1e-3, model: str = "",
    seed: int = 0, fmrs: Sequence[float] = (), fitted_on: str = "",
) -> ScoreNormaliser:
    """Fit FSN on calibration templates (rows of ``vectors``) of the given ``identities``.

    Every pair of templates of different identities is an impostor pair. A cluster whose impostor
    pairs are too few to resolve ``fmr`` (fewer than ``1 / fmr``) keeps offset 0. ``fmrs``: more
    false-match rates to calibrate thresholds at (:attr:`ScoreNormaliser.thresholds`).
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
    normalised = (scores - 0.5 * (delta[:, None] + delta[None, :]))[impostor]
    thresholds = impostor_thresholds(normalised, sorted({fmr, *fmrs}))
    threshold = thresholds[float(fmr)] if float(fmr) in thresholds else threshold_at_fmr(normalised, fmr)
    log.info("FSN: %d clusters, offsets %.4f..%.4f, threshold %.4f -> %.4f", clusters, offsets.min(),
             offsets.max(), global_thr, threshold)
    return ScoreNormaliser(centroids.astype(np.float32), offsets, float(threshold), float(fmr), model,
                           thresholds, "fsn", fitted_on)

