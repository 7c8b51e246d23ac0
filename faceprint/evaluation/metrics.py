"""1:1 verification metrics over similarity scores.

Conventions used throughout this module:

* ``scores`` are floats where *higher means more similar*.
* ``labels`` are bool/int, ``1``/``True`` = same person (genuine pair), ``0`` = different
  (impostor pair).
* A pair is *accepted* (declared "same") when ``score >= threshold``.
* FMR (false match rate, a.k.a. FAR) = fraction of impostor pairs accepted;
  TMR (true match rate, a.k.a. TAR) = fraction of genuine pairs accepted;
  FNMR = 1 - TMR.

All functions are pure numpy and do not modify their inputs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..matching.thresholds import threshold_at_fmr  # noqa: F401 (re-exported: evaluation's name for it)

logger = logging.getLogger(__name__)

__all__ = [
    "KFoldResult",
    "VerificationReport",
    "auc",
    "best_accuracy_threshold",
    "eer",
    "kfold_accuracy",
    "roc_curve",
    "threshold_at_fmr",
    "tmr_at_fmr",
    "verification_report",
]


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _as_arrays(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``scores``/``labels`` to 1-D float64 / bool arrays."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    raw = np.asarray(labels).ravel()
    if s.shape != raw.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} vs {raw.size}")
    if s.size == 0:
        raise ValueError("scores is empty")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    if raw.dtype != bool and not np.all((raw == 0) | (raw == 1)):
        raise ValueError("labels must be bool or 0/1")
    return s, raw.astype(bool)


def _require_both_classes(lab: np.ndarray, what: str) -> None:
    if lab.all() or not lab.any():
        raise ValueError(f"{what} needs both genuine (label 1) and impostor (label 0) pairs")


# --------------------------------------------------------------------------------------------
# ROC family
# --------------------------------------------------------------------------------------------


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROC curve from sorted scores.

    One point per distinct score value ``t`` (accept ``score >= t``), plus a leading point
    ``(fmr=0, tmr=0)`` at threshold ``+inf``. Tied scores produce a single point, so a tie
    between a genuine and an impostor score is a diagonal segment.

    Returns:
        ``(fmr, tmr, thresholds)``: FMR is non-decreasing (ascending), thresholds descending,
        the last point is ``(1, 1)`` at the minimum score.
    """
    s, lab = _as_arrays(scores, labels)
    _require_both_classes(lab, "roc_curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    lab_sorted = lab[order]
    tp = np.cumsum(lab_sorted)
    fp = np.cumsum(~lab_sorted)
    # last index of each run of equal scores
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    n_pos = tp[-1]
    n_neg = fp[-1]
    fmr = np.r_[0.0, fp[last] / n_neg]
    tmr = np.r_[0.0, tp[last] / n_pos]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return fmr, tmr, thresholds


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the exact ROC curve (trapezoid rule).

    Equal to the probability that a random genuine score exceeds a random impostor score,
    counting ties as 1/2 (the Mann-Whitney statistic).
    """
    fmr, tmr, _ = roc_curve(scores, labels)
    return float(np.sum(np.diff(fmr) * (tmr[1:] + tmr[:-1]) / 2.0))


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold.

    Walks the exact ROC from strict to lenient thresholds and finds the first point where
    FMR >= FNMR. If they are equal there, that point is returned; otherwise FMR and FNMR are
    linearly interpolated between that point and the previous one, and the threshold is
    interpolated the same way (when the previous threshold is ``+inf`` the point's own threshold
    is returned).

    Returns:
        ``(eer, threshold)``.
    """
    fmr, tmr, thr = roc_curve(scores, labels)
    fnmr = 1.0 - tmr
    diff = fmr - fnmr  # -1 at the first point, +1 at the last: there is always a crossing
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fmr[i]), float(thr[i])
    d0, d1 = diff[i - 1], diff[i]
    alpha = d0 / (d0 - d1)
    rate = fmr[i - 1] + alpha * (fmr[i] - fmr[i - 1])
    if np.isinf(thr[i - 1]):
        threshold = thr[i]
    else:
        threshold = thr[i - 1] + alpha * (thr[i] - thr[i - 1])
    return float(rate), float(threshold)


def tmr_at_fmr(scores: np.ndarray, labels: np.ndarray, fmr: float) -> tuple[float, float]:
    """True match rate at a false match rate (TAR @ FAR).

    The threshold comes from :func:`threshold_at_fmr` on the impostor scores.

    Returns:
        ``(tmr, threshold)``.
    """
    s, lab = _as_arrays(scores, labels)
    _require_both_classes(lab, "tmr_at_fmr")
    t = threshold_at_fmr(s[~lab], fmr)
    return float(np.mean(s[lab] >= t)), t


# --------------------------------------------------------------------------------------------
# accuracy / k-fold
# --------------------------------------------------------------------------------------------


def best_accuracy_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Threshold maximising verification accuracy.

    Candidates are every midpoint between consecutive sorted unique scores, plus the two
    degenerate thresholds "accept all" (the minimum score) and "reject all" (one ulp above the
    maximum score). Ties in accuracy are broken towards the *smallest* threshold.

    Returns:
        ``(threshold, accuracy)``.
    """
    s, lab = _as_arrays(scores, labels)
    uniq = np.unique(s)
    candidates = np.r_[uniq[0], (uniq[:-1] + uniq[1:]) / 2.0, np.nextafter(uniq[-1], np.inf)]
    gen = np.sort(s[lab])
    imp = np.sort(s[~lab])
    # accepted genuines: score >= t ; rejected impostors: score < t
    tp = gen.size - np.searchsorted(gen, candidates, side="left")
    tn = np.searchsorted(imp, candidates, side="left")
    acc = (tp + tn) / s.size
    i = int(np.argmax(acc))
    return float(candidates[i]), float(acc[i])


@dataclass
class KFoldResult:
    """Per-fold accuracies of the LFW k-fold protocol.

    ``std`` is numpy's population standard deviation (ddof=0) of the fold accuracies.
    ``stderr`` is the standard error of the mean as defined in the LFW reporting procedure:
    ``sample_std(ddof=1) / sqrt(n_folds)``.
    """

    accuracies: np.ndarray
    mean: float
    std: float
    stderr: float
    thresholds: np.ndarray
    folds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """LFW-protocol k-fold accuracy.

    For each fold ``k`` (in sorted order of the fold ids), the threshold is chosen with
    :func:`best_accuracy_threshold` on all pairs *not* in fold ``k``, and accuracy is measured on
    fold ``k`` alone. Fold ``k`` never influences its own threshold.
    """
    s, lab = _as_arrays(scores, labels)
    f = np.asarray(folds).ravel()
    if f.shape != s.shape:
        raise ValueError(f"folds and scores differ in length: {f.size} vs {s.size}")
    fold_ids = np.unique(f)
    if fold_ids.size < 2:
        raise ValueError("kfold_accuracy needs at least 2 folds")
    accs = np.empty(fold_ids.size)
    thrs = np.empty(fold_ids.size)
    for j, k in enumerate(fold_ids):
        test = f == k
        thrs[j], _ = best_accuracy_threshold(s[~test], lab[~test])
        accs[j] = np.mean((s[test] >= thrs[j]) == lab[test])
    std = float(np.std(accs))
    stderr = float(np.std(accs, ddof=1) / math.sqrt(accs.size))
    return KFoldResult(
        accuracies=accs,
        mean=float(np.mean(accs)),
        std=std,
        stderr=stderr,
        thresholds=thrs,
        folds=fold_ids,
    )


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass
class VerificationReport:
    """Summary of a verification benchmark run.

    ``tmr_at_fmr_1e3`` / ``tmr_at_fmr_1e2`` are ``None`` when there are too few impostor pairs to
    measure that FMR (fewer than 1000 / 100); the reason is recorded in ``notes`` under the field
    name.
    """

    n_pairs: int
    n_same: int
    n_diff: int
    accuracy_mean: float
    accuracy_std: float
    accuracy_stderr: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    tmr_at_fmr_1e3: float | None
    threshold_at_fmr_1e3: float | None
    tmr_at_fmr_1e2: float | None
    threshold_at_fmr_1e2: float | None
    eer: float
    eer_threshold: float
    auc: float
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict of all fields."""
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """A short human-readable table, one string per line."""

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{100.0 * v:6.2f}%"

        lines = [
            f"pairs              {self.n_pairs} ({self.n_same} same, {self.n_diff} diff)",
            f"accuracy ({len(self.fold_accuracies)}-fold)  {pct(self.accuracy_mean)} "
            f"+/- {100.0 * self.accuracy_std:.2f} (std), "
            f"{100.0 * self.accuracy_stderr:.2f} (stderr)",
            f"AUC                {self.auc:.4f}",
            f"EER                {pct(self.eer)} @ {self.eer_threshold:.4f}",
            f"TMR @ FMR=1e-2     {pct(self.tmr_at_fmr_1e2)}",
            f"TMR @ FMR=1e-3     {pct(self.tmr_at_fmr_1e3)}",
        ]
        lines.extend(f"note: {k}: {v}" for k, v in self.notes.items())
        return lines


def _tmr_if_resolvable(
    scores: np.ndarray, labels: np.ndarray, fmr: float, n_diff: int
) -> tuple[float | None, float | None, str | None]:
    """TMR at ``fmr`` or ``(None, None, reason)`` when there are fewer than 1/fmr impostors."""
    needed = int(round(1.0 / fmr))
    if n_diff < needed:
        return None, None, f"needs >= {needed} impostor pairs, have {n_diff}"
    tmr, thr = tmr_at_fmr(scores, labels, fmr)
    return tmr, thr, None


def verification_report(
    scores: np.ndarray, labels: np.ndarray, folds: np.ndarray
) -> VerificationReport:
    """Compute the full :class:`VerificationReport` for one set of scored pairs."""
    s, lab = _as_arrays(scores, labels)
    _require_both_classes(lab, "verification_report")
    n_same = int(lab.sum())
    n_diff = int(s.size - n_same)
    kf = kfold_accuracy(s, lab, folds)
    e, e_thr = eer(s, lab)
    notes: dict[str, str] = {}
    t3, th3, why3 = _tmr_if_resolvable(s, lab, 1e-3, n_diff)
    if why3:
        notes["tmr_at_fmr_1e3"] = why3
    t2, th2, why2 = _tmr_if_resolvable(s, lab, 1e-2, n_diff)
    if why2:
        notes["tmr_at_fmr_1e2"] = why2
    return VerificationReport(
        n_pairs=int(s.size),
        n_same=n_same,
        n_diff=n_diff,
        accuracy_mean=kf.mean,
        accuracy_std=kf.std,
        accuracy_stderr=kf.stderr,
        fold_accuracies=[float(a) for a in kf.accuracies],
        fold_thresholds=[float(t) for t in kf.thresholds],
        tmr_at_fmr_1e3=t3,
        threshold_at_fmr_1e3=th3,
        tmr_at_fmr_1e2=t2,
        threshold_at_fmr_1e2=th2,
        eer=e,
        eer_threshold=e_thr,
        auc=auc(s, lab),
        notes=notes,
    )
