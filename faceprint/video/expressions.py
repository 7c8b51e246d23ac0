"""Facial expression over time, per video track: smoothed probabilities of the seven FER2013 expressions.

At each detection frame the expression network reads every tracked face big enough for it
(:class:`~faceprint.attributes.FaceAnalyzer`); a track keeps an exponential moving average of the
probabilities with time constant ``tau_s`` (1 s: a smile held for a second dominates, a single
misread frame moves the average by about a fifth at 6-frame detection spacing in 30 fps video),
and the label of the smoothed probabilities is the track's expression at that moment. The
timeline (``faceprint video --attributes expression``) lists every sample; :func:`plot_expressions`
draws them.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..attributes.results import EXPRESSIONS

#: Time constant (seconds) of the moving average.
TAU_S = 1.0


@dataclass(frozen=True)
class ExpressionSample:
    """The smoothed expression of one track at one detection frame (``frame``, ``time_s``)."""

    frame: int
    time_s: float
    probabilities: np.ndarray  # float [7], EXPRESSIONS order, smoothed

    @property
    def label(self) -> str:
        """The most probable expression of the smoothed probabilities."""
        return EXPRESSIONS[int(np.argmax(self.probabilities))]

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"frame": self.frame, "t": round(self.time_s, 3), "label": self.label,
                "probabilities": {k: round(float(v), 4) for k, v in zip(EXPRESSIONS, self.probabilities)}}


@dataclass
class TrackExpression:
    """A track's expression series: add each frame's raw probabilities, read the smoothed ones."""

    tau_s: float = TAU_S
    samples: list[ExpressionSample] = field(default_factory=list)

    def add(self, frame: int, time_s: float, probabilities: np.ndarray) -> ExpressionSample:
        """Fold one reading (float [7], EXPRESSIONS order) into the moving average; returns the new sample."""
        raw = np.asarray(probabilities, dtype=np.float64)
        if self.samples:
            last = self.samples[-1]
            alpha = 1.0 - math.exp(-max(time_s - last.time_s, 0.0) / self.tau_s)
            raw = last.probabilities + alpha * (raw - last.probabilities)
        sample = ExpressionSample(frame, time_s, raw)
        self.samples.append(sample)
        return sample

    @property
    def current(self) -> str | None:
        """The smoothed label now (None before the first reading)."""
        return self.samples[-1].label if self.samples else None

    def to_dict(self) -> dict:
        """The most frequent smoothed label over the track (``label``), the share of samples per label, and every sample."""
        counts = Counter(s.label for s in self.samples)
        total = max(len(self.samples), 1)
        return {"label": counts.most_common(1)[0][0] if counts else None,
                "share": {k: round(v / total, 3) for k, v in counts.most_common()},
                "tau_s": self.tau_s, "samples": [s.to_dict() for s in self.samples]}


def plot_expressions(tracks, path: str | os.PathLike) -> int:
    """Plot the smoothed expression probabilities over time of every track that has them, one panel per track.

    ``tracks`` are :class:`~faceprint.video.recognition.TrackRecord` objects (``expression`` set);
    returns the number of tracks drawn (0 writes a figure that says there were none).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in tracks if getattr(t, "expression", None) is not None and t.expression.samples]
    fig, axes = plt.subplots(max(len(shown), 1), 1, figsize=(10, 2.2 * max(len(shown), 1) + 0.8), squeeze=False,
                             sharex=True)
    colours = plt.get_cmap("tab10").colors
    for ax, track in zip(axes[:, 0], shown):
        t = [s.time_s for s in track.expression.samples]
        p = np.stack([s.probabilities for s in track.expression.samples])
        for k, name in enumerate(EXPRESSIONS):
            ax.plot(t, p[:, k], label=name, color=colours[k], lw=1.2, marker=".", ms=3)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"track {track.track_id}: {track.person or 'unknown'}", fontsize=9)
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no track had a face large enough for the expression network", ha="center")
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(ncol=7, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.35))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(shown)
