"""ROC and DET plots for verification results (matplotlib, Agg canvas, no global state)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faceprint.evaluation.metrics import auc, eer, roc_curve

logger = logging.getLogger(__name__)

__all__ = ["plot_identification_det", "plot_roc_det"]

FMR_MIN = 1e-4


def plot_roc_det(
    results: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "",
) -> Path:
    """Write a PNG with a ROC panel and a DET panel, one curve per named result.

    Args:
        results: ``name -> (scores, labels)``; labels 1 = same person.
        path: output PNG path (parent directories are created).
        title: figure title.

    The ROC panel plots TMR against FMR on a log x axis from 1e-4 to 1; the DET panel plots
    FNMR against FMR, both log scale. Points with a zero rate cannot be drawn on a log axis and
    are omitted. The legend shows AUC and EER per curve.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    fig = Figure(figsize=(12, 5.5))
    FigureCanvasAgg(fig)
    ax_roc, ax_det = fig.subplots(1, 2)
    for name, (scores, labels) in results.items():
        fmr, tmr, _ = roc_curve(scores, labels)
        fnmr = 1.0 - tmr
        label = f"{name} (AUC {auc(scores, labels):.4f}, EER {100 * eer(scores, labels)[0]:.2f}%)"
        roc_ok = fmr > 0
        (line,) = ax_roc.plot(fmr[roc_ok], tmr[roc_ok], label=label)
        det_ok = (fmr > 0) & (fnmr > 0)
        ax_det.plot(fmr[det_ok], fnmr[det_ok], label=label, color=line.get_color())

    ax_roc.set_xscale("log")
    ax_roc.set_xlim(FMR_MIN, 1.0)
    ax_roc.set_ylim(0.0, 1.01)
    ax_roc.set_xlabel("FMR (false match rate)")
    ax_roc.set_ylabel("TMR (true match rate)")
    ax_roc.set_title("ROC")

    ax_det.set_xscale("log")
    ax_det.set_yscale("log")
    ax_det.set_xlim(FMR_MIN, 1.0)
    ax_det.set_xlabel("FMR (false match rate)")
    ax_det.set_ylabel("FNMR (false non-match rate)")
    ax_det.set_title("DET")

    for ax in (ax_roc, ax_det):
        ax.grid(True, which="both", alpha=0.3)
        if results:
            ax.legend(loc="lower right" if ax is ax_roc else "upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    logger.info("wrote ROC/DET plot %s", path)
    return path


def plot_identification_det(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "",
) -> Path:
    """Write a PNG with an open-set identification DET: FNIR against FPIR, both log scale.

    Args:
        curves: ``name -> (fpir, fnir)`` (e.g. from
            :func:`faceprint.evaluation.identification.det_curve`), one curve per gallery size.
        path: output PNG path (parent directories are created).
        title: figure title.

    Points with a zero rate cannot be drawn on a log axis and are omitted.
    """
    path = Path(path)
    fig = Figure(figsize=(7, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    lowest = 1.0
    for name, (fpir, fnir) in curves.items():
        fpir = np.asarray(fpir, dtype=np.float64)
        fnir = np.asarray(fnir, dtype=np.float64)
        ok = (fpir > 0) & (fnir > 0)
        if ok.any():
            lowest = min(lowest, float(fpir[ok].min()))
        ax.plot(fpir[ok], fnir[ok], label=name, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(min(FMR_MIN, lowest), 1.0)
    ax.set_xlabel("FPIR (false positive identification rate)")
    ax.set_ylabel("FNIR (false negative identification rate)")
    ax.set_title(title or "Open-set identification DET")
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    logger.info("wrote identification DET plot %s", path)
    return path
