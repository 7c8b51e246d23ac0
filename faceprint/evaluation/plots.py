"""Plots a user reads to judge a profile and choose a threshold (matplotlib, Agg canvas, no global state).

* :func:`plot_det`: verification DET, FNMR against FMR on log axes.
* :func:`plot_score_histogram`: how mated and non-mated scores are spread, thresholds as lines.
* :func:`plot_identification_det`: open-set FNIR against FPIR on log axes.
* :func:`plot_roc_det`: ROC (log FMR) beside DET, one curve per pipeline (benchmarks).

Every rate axis is limited to what the data resolve: with ``n`` impostor pairs the smallest
non-zero FMR is ``1/n``, so the axis starts there (likewise FNMR with the mated pairs). Operating
thresholds (:class:`OperatingPoint`) are marked where the data put them; a threshold no impostor
reaches has a measured FMR of 0, which a log axis cannot show: it is drawn on the axis edge as a
``<`` marker and its legend entry says ``FMR < 1/n``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faceprint.evaluation.metrics import auc, eer, roc_curve

logger = logging.getLogger(__name__)

__all__ = [
    "OperatingPoint",
    "format_rate",
    "operating_points",
    "plot_det",
    "plot_identification_det",
    "plot_roc_det",
    "plot_score_histogram",
]

IN_USE_COLOUR = "#d62728"
CALIBRATED_MARKERS = ("o", "s", "D", "^", "v", "P")
DPI = 120


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold to mark on a plot.

    ``label`` names it (``"calibrated FMR 1e-3"``), ``threshold`` is the score (cosine
    similarity) at or above which two faces match, ``in_use`` marks the one decisions use now
    (``--fmr`` / ``--threshold``): it is drawn in red and larger.
    """

    label: str
    threshold: float
    in_use: bool = False


def format_rate(rate: float) -> str:
    """``1e-3`` for 0.001, ``3e-5`` for 3e-5, ``0.25`` for rates of 0.1 and more."""
    if rate >= 0.1 or rate <= 0:
        return f"{rate:g}"
    mantissa, exponent = f"{rate:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def operating_points(calibrated: Mapping[float, float], threshold: float | None = None,
                     fmr: float | None = None) -> list[OperatingPoint]:
    """The profile's calibrated thresholds (FMR -> cosine), most lenient first, and the one in use.

    The calibrated point equal to ``threshold`` (within 1e-6) is marked ``in_use``; when none is,
    ``threshold`` is added as its own point, labelled with ``fmr`` when it was interpolated from
    the calibration for that rate, else as an explicit threshold. ``threshold=None``: calibrated
    points only.
    """
    points = [OperatingPoint(f"calibrated FMR {format_rate(f)}", float(t),
                             in_use=threshold is not None and math.isclose(t, threshold, abs_tol=1e-6))
              for f, t in sorted(calibrated.items(), reverse=True)]
    if threshold is not None and not any(p.in_use for p in points):
        label = f"FMR {format_rate(fmr)} (interpolated)" if fmr is not None else "explicit threshold"
        points.append(OperatingPoint(f"in use: {label}", float(threshold), in_use=True))
    return points


def _new_figure(size: tuple[float, float], rows: int = 1, cols: int = 1) -> tuple[Figure, object]:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols)


def _save(fig: Figure, path: str | Path, what: str, bottom: float = 0.0) -> Path:
    path = Path(path)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    logger.info("wrote %s %s", what, path)
    return path


def _pct(rate: float) -> str:
    return f"{100.0 * rate:.2f}%" if rate >= 1e-3 else f"{100.0 * rate:.3f}%"


def _classes(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mated, non_mated)`` float64 score arrays; ValueError unless both are non-empty."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    lab = np.asarray(labels).ravel().astype(bool)
    if s.shape != lab.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} vs {lab.size}")
    if lab.all() or not lab.any():
        raise ValueError("a plot needs both mated (label 1) and non-mated (label 0) scores")
    return s[lab], s[~lab]


def _log_limits(ax: Axes, n_x: int, n_y: int) -> tuple[float, float]:
    """Log axes from the resolution (``1/n``) to 1, a little padding below; returns the lower limits."""
    x_low, y_low = 1.0 / max(n_x, 1), 1.0 / max(n_y, 1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_low / 1.5, 1.05)
    ax.set_ylim(y_low / 1.5, 1.05)
    return x_low / 1.5, y_low / 1.5


def _no_curve(ax: Axes, why: str) -> None:
    """Say in the plot why no curve is drawn (no threshold gives both error rates above zero)."""
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize="small",
            bbox={"facecolor": "white", "edgecolor": "0.6"})


def _mark(ax: Axes, points: Sequence[tuple[OperatingPoint, float, float]], x_low: float, y_low: float,
          n_x: int, n_y: int, x_name: str, y_name: str) -> None:
    """Draw each ``(point, x_rate, y_rate)``; zero rates sit on the axis edge with an arrow marker."""
    for i, (point, x, y) in enumerate(points):
        marker = "*" if point.in_use else CALIBRATED_MARKERS[i % len(CALIBRATED_MARKERS)]
        x_text = f"{x_name} {_pct(x)}" if x > 0 else f"{x_name} < 1/{n_x}"
        y_text = f"{y_name} {_pct(y)}" if y > 0 else f"{y_name} < 1/{n_y}"
        if x <= 0:
            marker = "<"
        elif y <= 0:
            marker = "v"
        ax.plot([max(x, x_low)], [max(y, y_low)], marker=marker, linestyle="none", clip_on=False, zorder=5,
                markersize=13 if point.in_use else 8, markeredgecolor="black",
                color=IN_USE_COLOUR if point.in_use else "white",
                label=f"{point.label}: t = {point.threshold:.4f} -> {x_text}, {y_text}")


def plot_det(
    scores: np.ndarray,
    labels: np.ndarray,
    path: str | Path,
    *,
    name: str = "",
    title: str = "",
    points: Sequence[OperatingPoint] = (),
) -> Path:
    """Write a PNG verification DET: FNMR (mated pairs rejected) against FMR (non-mated accepted), log-log.

    Args:
        scores: similarity per pair (higher = more alike), shape ``[n]``.
        labels: 1/True = mated (same person), shape ``[n]``.
        path: output PNG (parent folders are created).
        name: curve label (the profile); the legend adds EER and the pair counts.
        title: figure title.
        points: thresholds to mark; each is placed at the FMR and FNMR it gives on these pairs.

    The axes run from ``1/n`` (the finest rate ``n`` pairs of that class resolve) to 1.

    Raises:
        ValueError: scores and labels differ in length, or one class is empty.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    mated, non_mated = _classes(scores, labels)
    fig, ax = _new_figure((7.5, 6.2))
    fmr, tmr, _ = roc_curve(scores, labels)
    fnmr = 1.0 - tmr
    ok = (fmr > 0) & (fnmr > 0)
    rate, _ = eer(scores, labels)
    ax.plot(fmr[ok], fnmr[ok], color="#1f77b4", linewidth=2,
            label=f"{name or 'scores'} (EER {_pct(rate)})")
    if not ok.any():
        _no_curve(ax, "No curve: a threshold separates every mated pair from every non-mated\n"
                      "pair here (see the score histogram); more pairs would show the curve.")
    x_low, y_low = _log_limits(ax, non_mated.size, mated.size)
    _mark(ax, [(p, float(np.mean(non_mated >= p.threshold)), float(np.mean(mated < p.threshold)))
               for p in points], x_low, y_low, non_mated.size, mated.size, "FMR", "FNMR")
    ax.set_xlabel(f"FMR: non-mated pairs accepted (of {non_mated.size}; finest rate 1/{non_mated.size})")
    ax.set_ylabel(f"FNMR: mated pairs rejected (of {mated.size})")
    ax.set_title(title or "Verification DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small", framealpha=0.9)
    return _save(fig, path, "DET plot")


def plot_score_histogram(
    scores: np.ndarray,
    labels: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    points: Sequence[OperatingPoint] = (),
    mated_name: str = "mated pairs (same person)",
    non_mated_name: str = "non-mated pairs (different people)",
    score_name: str = "score (cosine similarity of the templates)",
) -> Path:
    """Write a PNG with the score distribution of each class and the thresholds as vertical lines.

    Two panels share the score axis: the top one shows each class as a density (its shape), the
    bottom one counts per bin on a log scale (the tails, where a threshold is chosen). The legend
    says how many of each class fall on the wrong side of the threshold in use.

    Args:
        scores: similarity per pair or probe, shape ``[n]``.
        labels: 1/True = mated, shape ``[n]``.
        path: output PNG (parent folders are created).
        title: figure title.
        points: thresholds to draw; the ``in_use`` one is red and solid, the others grey and dashed.
        mated_name, non_mated_name, score_name: how the legend and axis name the classes and score.

    Raises:
        ValueError: scores and labels differ in length, or one class is empty.
    """
    mated, non_mated = _classes(scores, labels)
    fig, (top, bottom) = _new_figure((9.0, 8.0), rows=2)
    every = np.r_[mated, non_mated, [p.threshold for p in points]]
    bins = np.linspace(float(every.min()), float(every.max()), 81)
    for ax, density in ((top, True), (bottom, False)):
        ax.hist(non_mated, bins=bins, density=density, histtype="stepfilled", alpha=0.45, color="#ff7f0e",
                label=f"{non_mated_name}: {non_mated.size}, median {np.median(non_mated):.3f}")
        ax.hist(mated, bins=bins, density=density, histtype="stepfilled", alpha=0.45, color="#1f77b4",
                label=f"{mated_name}: {mated.size}, median {np.median(mated):.3f}")
        for point in points:
            ax.axvline(point.threshold, color=IN_USE_COLOUR if point.in_use else "0.35",
                       linestyle="-" if point.in_use else "--", linewidth=2.0 if point.in_use else 1.0)
        ax.grid(True, alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_ylim(bottom=0.5)  # a bin holding one score stays visible
    top.set_ylabel("density")
    bottom.set_ylabel("count per bin (log)")
    bottom.set_xlabel(score_name)
    for point in points:
        top.annotate(point.label.replace("calibrated ", ""), (point.threshold, 1.0), xycoords=("data", "axes fraction"),
                     rotation=90, va="top", ha="right", fontsize="small",
                     color=IN_USE_COLOUR if point.in_use else "0.25")
    handles, texts = top.get_legend_handles_labels()
    for point in points:
        if point.in_use:
            wrong_non = int(np.sum(non_mated >= point.threshold))
            wrong_mated = int(np.sum(mated < point.threshold))
            handles.append(top.plot([], [], color=IN_USE_COLOUR, linewidth=2)[0])
            texts.append(f"{point.label}, t = {point.threshold:.4f}: non-mated at or above "
                         f"{wrong_non}/{non_mated.size}, mated below {wrong_mated}/{mated.size}")
    fig.legend(handles, texts, loc="lower center", fontsize="small", frameon=False)
    top.set_title(title or "Score distributions")
    return _save(fig, path, "score histogram", bottom=0.01 + 0.024 * len(texts))


def plot_identification_det(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "",
    *,
    counts: tuple[int, int] | None = None,
    marks: Mapping[str, Sequence[tuple[OperatingPoint, float, float]]] | None = None,
) -> Path:
    """Write a PNG with an open-set identification DET: FNIR against FPIR, both log scale.

    Args:
        curves: ``name -> (fpir, fnir)`` (e.g. from
            :func:`faceprint.evaluation.identification.det_curve`), one curve per gallery size.
        path: output PNG path (parent directories are created).
        title: figure title.
        counts: ``(non-mated probes, mated probes)``: the axes then start at the rates they
            resolve (``1/n``); without it, at the smallest non-zero rate drawn.
        marks: ``name -> [(point, fpir, fnir)]``: thresholds to mark on that curve, at the rates
            the caller measured for them.

    Points with a zero rate cannot be drawn on a log axis and are omitted from the curves.
    """
    fig, ax = _new_figure((7.5, 6.2))
    lowest_x, lowest_y, drawn = 1.0, 1.0, False
    for name, (fpir, fnir) in curves.items():
        fpir = np.asarray(fpir, dtype=np.float64)
        fnir = np.asarray(fnir, dtype=np.float64)
        ok = (fpir > 0) & (fnir > 0)
        if ok.any():
            drawn = True
            lowest_x = min(lowest_x, float(fpir[ok].min()))
            lowest_y = min(lowest_y, float(fnir[ok].min()))
        ax.plot(fpir[ok], fnir[ok], label=name, drawstyle="steps-post", linewidth=2)
    if curves and not drawn:
        _no_curve(ax, "no threshold gives both error rates above zero here: no curve to draw")
    n_x, n_y = counts if counts else (round(1 / lowest_x), round(1 / lowest_y))
    x_low, y_low = _log_limits(ax, n_x, n_y)
    for name, points in (marks or {}).items():
        if name in curves:
            _mark(ax, points, x_low, y_low, n_x, n_y, "FPIR", "FNIR")
    what = f" (of {counts[0]}; finest rate 1/{counts[0]})" if counts else ""
    ax.set_xlabel(f"FPIR: non-mated probes given an identity{what}")
    ax.set_ylabel("FNIR: mated probes not named" + (f" (of {counts[1]})" if counts else ""))
    ax.set_title(title or "Open-set identification DET")
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.9)
    return _save(fig, path, "identification DET plot")


def plot_roc_det(
    results: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "",
) -> Path:
    """Write a PNG with a ROC panel and a DET panel, one curve per named result (comparing pipelines).

    Args:
        results: ``name -> (scores, labels)``; labels 1 = same person.
        path: output PNG path (parent directories are created).
        title: figure title.

    Both panels have a log FMR axis from the finest rate the impostor pairs resolve (``1/n``,
    the largest ``n`` of the results) to 1. The ROC's TMR axis spans the TMRs drawn (not 0 to 1,
    where curves near 1 would be a flat line at the top); the DET plots FNMR on a log axis. Points
    with a zero rate cannot be drawn on a log axis and are omitted. The legend shows AUC and EER
    per curve.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    fig, (ax_roc, ax_det) = _new_figure((12, 5.5), cols=2)
    n_non_mated, n_mated, tmr_low = 1, 1, 1.0
    for name, (scores, labels) in results.items():
        mated, non_mated = _classes(scores, labels)
        n_non_mated, n_mated = max(n_non_mated, non_mated.size), max(n_mated, mated.size)
        fmr, tmr, _ = roc_curve(scores, labels)
        fnmr = 1.0 - tmr
        label = f"{name} (AUC {auc(scores, labels):.4f}, EER {100 * eer(scores, labels)[0]:.2f}%)"
        roc_ok = fmr > 0
        (line,) = ax_roc.plot(fmr[roc_ok], tmr[roc_ok], label=label)
        if roc_ok.any():
            tmr_low = min(tmr_low, float(tmr[roc_ok].min()))
        det_ok = (fmr > 0) & (fnmr > 0)
        ax_det.plot(fmr[det_ok], fnmr[det_ok], label=label, color=line.get_color())
    x_low = 1.0 / n_non_mated
    ax_roc.set_xscale("log")
    ax_roc.set_xlim(x_low / 1.5, 1.05)
    ax_roc.set_ylim(max(0.0, tmr_low - 0.02), 1.002)
    ax_roc.set_xlabel(f"FMR (false match rate; finest 1/{n_non_mated})")
    ax_roc.set_ylabel("TMR (true match rate)")
    ax_roc.set_title("ROC")
    _log_limits(ax_det, n_non_mated, n_mated)
    ax_det.set_xlabel(f"FMR (false match rate; finest 1/{n_non_mated})")
    ax_det.set_ylabel("FNMR (false non-match rate)")
    ax_det.set_title("DET")
    for ax in (ax_roc, ax_det):
        ax.grid(True, which="both", alpha=0.3)
        if results:
            ax.legend(loc="lower right" if ax is ax_roc else "upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path, "ROC/DET plot")
