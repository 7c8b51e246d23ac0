"""Fitting and comparing the fair score normalisers that ``Engine(fair=True)`` ships.

Two ways to fit the per-cluster offsets of a :class:`~faceprint.matching.normalisation.ScoreNormaliser`
(a comparison of templates in clusters ``i`` and ``j`` scores ``s - (delta_i + delta_j) / 2``),
both without demographic labels at query time:

* **FSN** (:func:`faceprint.matching.normalisation.fit_normaliser`; Terhörst et al., PRL 2020):
  each cluster's offset is its own threshold at the target FMR minus the global one.
* **Centroid regression** (:func:`fit_centroid_regression`), the post-processing of Conti and
  Clémençon ("Mitigating bias in facial recognition systems: centroid fairness loss
  optimization", NeurIPS 2024 AFME workshop; ICPR 2024 FairBio workshop), reduced to the same
  production form: the offsets of the centroid-based scores are the parameters of a regression
  fitted by gradient descent on a smooth loss that penalises the spread of the per-group ROC
  curves at the operating point (the squared log ratio of each labelled group's false-match rate
  to the global one) while keeping global accuracy (the smoothed FNMR of mated pairs at the
  global threshold, which is reset to the target FMR at every step). Demographic labels are
  used only while fitting. The paper trains a small network on top of the embeddings with
  identity centroids; here the centroids are the k-means clusters FSN uses and only the offsets
  are learnt, so the two methods differ in how the offsets are fitted and nothing else.

:func:`compare_methods` measures each on held-out data: per-group FMR and proxy FNMR on a UTKFace
folder and FMR, FNMR and 10-fold accuracy on LFW DevTest (``scripts/fit_fair_normaliser.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..matching.normalisation import CALIBRATED_FMRS, ScoreNormaliser, impostor_thresholds
from ..matching.thresholds import threshold_at_fmr
from .fairness import (
    RATIO_COLUMNS,
    GroupRate,
    Subject,
    attribute_rates,
    impostor_mask,
    max_min_ratio,
    proxy_fnmr_rates,
)

log = logging.getLogger(__name__)

__all__ = ["MethodResult", "compare_methods", "fit_centroid_regression", "score_spread"]


def _sample_pairs(members: np.ndarray, ids: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``limit`` impostor pairs ``[m, 2]`` of distinct identities among the indices ``members``."""
    n = len(members)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    total = n * (n - 1) // 2
    if total <= limit:
        i, j = np.triu_indices(n, k=1)
    else:
        i, j = rng.integers(0, n, size=(2, limit))
        keep = i != j
        i, j = i[keep], j[keep]
    pairs = np.stack([members[i], members[j]], axis=1)
    return pairs[ids[pairs[:, 0]] != ids[pairs[:, 1]]]


def fit_centroid_regression(
    base: ScoreNormaliser, vectors: np.ndarray, identities: Sequence[str], groups: dict[str, Sequence[int]],
    mated_pairs: np.ndarray, *, fmr: float = 1e-3, pairs_per_group: int = 200_000, spread_weight: float = 1.0,
    accuracy_weight: float = 1.0, temperature: float = 0.01, steps: int = 300, learning_rate: float = 0.003,
    seed: int = 0, fitted_on: str = "",
) -> ScoreNormaliser:
    """Offsets for ``base``'s centroids fitted by the centroid-regression loss (see the module docstring).

    ``vectors`` [n, dim] unit templates of ``identities``; ``groups`` maps a labelled group to the
    indices of its templates (within-group impostor pairs measure its FMR; one template may be in
    several groups); ``mated_pairs`` [m, 2] index pairs of the same person. Thresholds are
    recalibrated on all sampled impostor pairs at ``fmr`` and at :data:`CALIBRATED_FMRS`.
    """
    rng = np.random.default_rng(seed)
    ids = np.asarray(identities)
    x = np.asarray(vectors, np.float32)
    cluster = base.clusters(x)
    k = len(base.centroids)
    group_pairs = [_sample_pairs(np.asarray(m, np.int64), ids, pairs_per_group, rng) for m in groups.values()]
    group_pairs = [p for p in group_pairs if len(p) * fmr >= 10]  # groups whose FMR the pairs can resolve
    everyone = _sample_pairs(np.arange(len(x)), ids, pairs_per_group * 4, rng)

    def raw(pairs: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", x[pairs[:, 0]], x[pairs[:, 1]])

    sets = [(raw(p), cluster[p[:, 0]], cluster[p[:, 1]]) for p in group_pairs]
    all_raw, all_a, all_b = raw(everyone), cluster[everyone[:, 0]], cluster[everyone[:, 1]]
    mated = (raw(mated_pairs), cluster[mated_pairs[:, 0]], cluster[mated_pairs[:, 1]])
    beta = np.zeros(k)
    m1, m2 = np.zeros(k), np.zeros(k)
    log_target = np.log(fmr)

    def shifted(s: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return s - 0.5 * (beta[a] + beta[b])

    def grad_of(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # d shifted / d beta_c = -0.5 (1[a == c] + 1[b == c]); ``weights`` is dL/d shifted per pair
        return -0.5 * (np.bincount(a, weights, minlength=k) + np.bincount(b, weights, minlength=k))

    for step in range(1, steps + 1):
        t = threshold_at_fmr(shifted(all_raw, all_a, all_b), fmr)
        grad = np.zeros(k)
        for s, a, b in sets:
            z = np.clip((shifted(s, a, b) - t) / temperature, -40, 40)
            p = 1.0 / (1.0 + np.exp(-z))
            soft = max(p.mean(), 1e-6)
            diff = np.log(soft) - log_target
            # d/dshifted of w * diff^2 = 2 w diff * (1 / soft) * p (1 - p) / T / n
            grad += grad_of(spread_weight * 2 * diff / soft * p * (1 - p) / temperature / len(s), a, b) / len(sets)
        s, a, b = mated
        z = np.clip((t - shifted(s, a, b)) / temperature, -40, 40)
        q = 1.0 / (1.0 + np.exp(-z))  # soft non-match
        grad += grad_of(-accuracy_weight * q * (1 - q) / temperature / len(s) / max(fmr * 10, 1e-3), a, b)
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad**2
        beta -= learning_rate * (m1 / (1 - 0.9**step)) / (np.sqrt(m2 / (1 - 0.999**step)) + 1e-8)
        beta -= beta.mean()  # only differences between clusters matter; the threshold absorbs the mean
    normalised = shifted(all_raw, all_a, all_b)
    thresholds = impostor_thresholds(normalised, sorted({fmr, *CALIBRATED_FMRS}))
    log.info("centroid regression: offsets %.4f..%.4f, threshold %.4f", beta.min(), beta.max(), thresholds[fmr])
    return ScoreNormaliser(base.centroids, beta.copy(), thresholds[fmr], fmr, base.model, thresholds,
                           "centroid-regression", fitted_on)


@dataclass
class MethodResult:
    """Figures of one way of scoring on held-out data: UTKFace per-group FMR and proxy FNMR, LFW DevTest."""

    method: str
    threshold: float
    utk_overall_fmr: GroupRate
    utk_fmr: dict[str, list[GroupRate]]
    utk_fmr_ratio: dict[str, float | None]
    utk_fnmr_proxy: dict[str, list[GroupRate]]
    lfw_fmr: float
    lfw_fnmr: float
    lfw_fnmr_at_fmr: float
    lfw_accuracy: float

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def score_spread(result: MethodResult) -> float:
    """Mean log10 max/min FMR ratio over :data:`RATIO_COLUMNS` (lower: fairer); unresolved ratios count as 0."""
    values = [np.log10(v) for a in RATIO_COLUMNS if (v := result.utk_fmr_ratio.get(a))]
    return float(np.mean(values)) if values else 0.0


def compare_methods(
    methods: Sequence[tuple[str, float, ScoreNormaliser | None]], subjects: Sequence[Subject], utk: np.ndarray,
    utk_degraded: np.ndarray, lfw: np.ndarray, lfw_persons: Sequence[str], pair_index: np.ndarray,
    same: np.ndarray, folds: np.ndarray, fmr: float,
) -> list[MethodResult]:
    """Each ``(name, threshold, normaliser or None for raw scores)`` measured on the same held-out data.

    ``utk`` / ``utk_degraded`` [n, dim]: templates of ``subjects`` and of their degraded copies (the
    proxy mated pairs); ``lfw`` [m, dim] DevTest templates of ``lfw_persons``; ``pair_index`` [p, 2],
    ``same`` and ``folds``: the DevTest pairs.
    """
    from .metrics import kfold_accuracy

    persons = np.asarray(lfw_persons)
    lfw_imp = np.triu(persons[:, None] != persons[None, :], k=1)
    upper = impostor_mask(len(subjects))
    results = []
    for name, threshold, norm in methods:
        def score(a: np.ndarray, b: np.ndarray, norm=norm) -> np.ndarray:
            return norm.normalise(a, b) if norm is not None else a @ b.T

        utk_scores = score(utk, utk)
        rates = attribute_rates(utk_scores, list(subjects), threshold, fmr)
        mated = np.einsum("ij,ij->i", utk, utk_degraded)
        if norm is not None:
            mated = norm.normalise_scores(mated, utk, utk_degraded)
        ok = np.any(utk_degraded != 0, axis=1)
        fnmr = proxy_fnmr_rates((mated < threshold)[ok], [s for s, k in zip(subjects, ok) if k],
                                ("gender", "race", "age"))
        lfw_scores = score(lfw, lfw)
        imp = lfw_scores[lfw_imp]
        pair = lfw_scores[pair_index[:, 0], pair_index[:, 1]]
        overall = utk_scores[upper]
        results.append(MethodResult(
            method=name, threshold=float(threshold),
            utk_overall_fmr=GroupRate.of("all", int((overall >= threshold).sum()), int(overall.size), fmr),
            utk_fmr=rates, utk_fmr_ratio={a: max_min_ratio(r) for a, r in rates.items()}, utk_fnmr_proxy=fnmr,
            lfw_fmr=float(np.mean(imp >= threshold)), lfw_fnmr=float(np.mean(pair[same] < threshold)),
            lfw_fnmr_at_fmr=float(np.mean(pair[same] < threshold_at_fmr(imp, fmr))),
            lfw_accuracy=kfold_accuracy(pair, same, folds).mean,
        ))
    return results
