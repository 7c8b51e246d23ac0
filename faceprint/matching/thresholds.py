"""Decision thresholds: from impostor scores to the threshold of a false-match rate, and back.

Conventions: scores are similarities (higher means more alike); a pair is accepted when
``score >= threshold``; FMR is the fraction of impostor pairs accepted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from ..errors import FaceprintError

logger = logging.getLogger(__name__)

__all__ = ["interpolated_threshold", "threshold_at_fmr"]


def threshold_at_fmr(impostor_scores: np.ndarray, fmr: float) -> float:
    """Smallest threshold meeting a false-match-rate bound.

    Returns the smallest threshold ``t`` such that the fraction of impostor scores with
    ``score >= t`` is ``<= fmr``. With ``n`` impostors at most ``k = floor(fmr * n)`` of them may
    be accepted, so the set of valid thresholds is ``(s_(k+1), +inf)`` where ``s_(k+1)`` is the
    (k+1)-th largest impostor score; the returned value is the next float64 above ``s_(k+1)``
    (``np.nextafter``). Do not round it to float32: that can land back on ``s_(k+1)``.

    The achievable resolution is ``1/n``. If ``fmr < 1/n`` no impostor may be accepted: the
    result is the maximum impostor score plus one ulp and a warning is logged, because the
    measured FMR (0) says nothing reliable about the requested rate.

    Args:
        impostor_scores: similarity scores of different-person pairs.
        fmr: target false match rate in ``(0, 1)``.
    """
    imp = np.asarray(impostor_scores, dtype=np.float64).ravel()
    if imp.size == 0:
        raise ValueError("impostor_scores is empty")
    if not np.all(np.isfinite(imp)):
        raise ValueError("impostor_scores contain NaN or infinite values")
    if not 0.0 < fmr < 1.0:
        raise ValueError(f"fmr must be in (0, 1), got {fmr}")
    n = imp.size
    k = int(math.floor(fmr * n + 1e-9))  # tolerance for e.g. 1e-3 * 1e5 = 99.99999...
    if k == 0:
        logger.warning(
            "FMR %.3g is below the resolution 1/%d of %d impostor scores; "
            "using max impostor score + epsilon (measured FMR is 0)",
            fmr, n, n,
        )
    top = np.partition(imp, n - 1 - k)[n - 1 - k]  # the (k+1)-th largest
    return float(np.nextafter(top, np.inf))


def interpolated_threshold(thresholds: Mapping[float, float], fmr: float, owner: str) -> float:
    """The threshold for false-match rate ``fmr`` from calibrated points ``{fmr: threshold}``.

    Between calibrated points the threshold is interpolated linearly in log(FMR); outside them it
    is an error (FaceprintError), because extrapolating an FMR is a guess. ``owner`` names what the
    points belong to (``"profile 'fast'"``) in the error message.
    """
    if not thresholds:
        raise FaceprintError(f"{owner} has no calibrated thresholds: pass an explicit threshold")
    if fmr in thresholds:
        return float(thresholds[fmr])
    points = sorted(thresholds.items())
    if not points[0][0] <= fmr <= points[-1][0]:
        raise FaceprintError(
            f"FMR {fmr:g} is outside the calibrated range {points[0][0]:g}..{points[-1][0]:g} of {owner}"
        )
    for (f0, t0), (f1, t1) in zip(points, points[1:]):
        if f0 <= fmr <= f1:
            w = (math.log(fmr) - math.log(f0)) / (math.log(f1) - math.log(f0))
            return float(t0 + w * (t1 - t0))
    raise AssertionError("unreachable")  # pragma: no cover
