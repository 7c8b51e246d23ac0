"""``faceprint eval impersonation``: how often N look-alike photos of other people pass as an enrolled target.

Faces that share attributes (gender, race, age) crowd into one region of the template space: Kim,
Paik, Hwang, Kim and Seo ("Non-Adaptive Adversarial Face Generation", arXiv 2507.12107, 2025)
call it an *attribute subsphere* and impersonate a target with one non-adaptive query of 100
synthetic faces generated on the target's subsphere (93% success against AWS CompareFaces at its
default threshold). This protocol is the real-photo form of that attack, with no generator:

* each **target** is enrolled from one photo (a UTKFace image, ``--targets``);
* the **attacker** submits N real photos of *other* people (``--attackers``, a disjoint UTKFace
  folder) that share the target's labelled gender, race and age band (**attribute-matched**), or
  N photos drawn from everyone (**random strangers**), and wins when any of them is accepted at the
  operating threshold (verification 1:1 against the target's template);
* success rate = the fraction of targets won, for N = 1, 10, 100, at the profile's thresholds for
  FMR 1e-3, 1e-4 and 1e-5, per target group (gender, race, age band, gender x race), per
  profile, with plain scores and with the fair score normaliser (``--fair`` scores), when the
  profile ships one.

No sampling noise: for a target whose pool (matched or random) holds ``n`` photos of which ``a``
are accepted, the chance that N photos drawn without replacement include at least one accepted
is exactly ``1 - C(n - a, N) / C(n, N)``; the rate is its mean over targets. Every UTKFace image is
taken as a different person (the data set repeats a few celebrities, so a few "attackers" may be
the target; the training folder was cleaned of copies and near-copies of evaluation images).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..engine import Engine
from ..errors import FaceprintError
from ..matching.normalisation import NormaliserMissingError
from .fairness import Subject, read_utkface, utkface_templates

log = logging.getLogger(__name__)

__all__ = ["ATTACK_SIZES", "OPERATING_FMRS", "AttackRate", "ImpersonationReport", "run_impersonation",
           "success_probability"]

ATTACK_SIZES = (1, 10, 100)
OPERATING_FMRS = (1e-3, 1e-4, 1e-5)
GROUP_ATTRIBUTES = ("gender", "race", "age", "group")


def success_probability(pool: np.ndarray, accepted: np.ndarray, n: int) -> np.ndarray:
    """Chance, per target, that ``n`` photos drawn without replacement from a pool of ``pool`` photos,
    ``accepted`` of which pass, include at least one that passes: ``1 - C(pool - accepted, n) / C(pool, n)``.

    ``pool`` and ``accepted`` are integer arrays of the same shape; a pool smaller than ``n`` is
    drawn whole.
    """
    pool, accepted = np.asarray(pool, np.int64), np.asarray(accepted, np.int64)
    draw = np.minimum(pool, n)
    rest = pool - accepted
    lg = np.vectorize(math.lgamma, otypes=[float])
    left = np.maximum(rest - draw, 0)  # where fewer than ``draw`` photos fail, every draw includes a pass
    fail = np.where(rest >= draw, np.exp(lg(rest + 1.0) - lg(left + 1.0) - lg(pool + 1.0) + lg(pool - draw + 1.0)),
                    0.0)
    return np.where(pool > 0, np.clip(1.0 - fail, 0.0, 1.0), 0.0)  # clip: rounding of exp(lgamma ...) near 1


@dataclass
class AttackRate:
    """Attack success of one scoring, operating point, attack size and pool, overall and per target group."""

    profile: str
    scores: str  # "plain" or "fair"
    fmr: float
    threshold: float
    attack_size: int
    pool: str  # "attribute-matched" or "random"
    success: float
    targets: int
    per_group: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class ImpersonationReport:
    """Everything ``faceprint eval impersonation`` measured (``report.json``)."""

    targets: str
    attackers: str
    target_count: int
    attacker_count: int
    matched_pool_median: int
    rates: list[AttackRate]
    plot: str
    notes: list[str]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def rate(self, profile: str, scores: str, fmr: float, size: int, pool: str) -> AttackRate | None:
        """The rate of one cell, or None when it was not measured."""
        return next((r for r in self.rates if (r.profile, r.scores, r.fmr, r.attack_size, r.pool)
                     == (profile, scores, fmr, size, pool)), None)

    def summary_lines(self) -> list[str]:
        """The overall table, then attack success per target group at N = 100 (attribute-matched)."""
        from .._text import table

        lines = [f"targets: {self.target_count} ({self.targets}), each enrolled from one photo; attackers drawn from "
                 f"{self.attacker_count} photos of other people ({self.attackers}); median attribute-matched pool "
                 f"{self.matched_pool_median}"]
        keys = sorted({(r.profile, r.scores, r.fmr) for r in self.rates}, key=lambda k: (k[0], k[1], -k[2]))
        rows = []
        for profile, scores, fmr in keys:
            for pool, label in (("attribute-matched", "look-alike"), ("random", "random")):
                cells = [self.rate(profile, scores, fmr, n, pool) for n in ATTACK_SIZES]
                rows.append((profile, scores, f"{fmr:g}", f"{cells[0].threshold:.4f}", label,
                             *(f"{100 * c.success:.1f}%" for c in cells)))
        head = ["profile", "scores", "FMR", "threshold", "photos", *(f"N={n}" for n in ATTACK_SIZES)]
        lines += table(rows, head).splitlines()
        for profile, scores, fmr in keys:
            r = self.rate(profile, scores, fmr, ATTACK_SIZES[-1], "attribute-matched")
            for attr in ("age", "race"):
                lines.append(f"{profile} {scores} FMR {fmr:g}, N={r.attack_size} matched, by {attr}: " + ", ".join(
                    f"{g} {100 * v:.0f}%" for g, v in r.per_group[attr].items()))
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"plot: {self.plot}")
        return lines


def _templates(engine: Engine, root: Path, progress: bool, cache: bool) -> tuple[list[Subject], np.ndarray]:
    subjects, _ = read_utkface(root)
    if not subjects:
        raise FaceprintError(f"no UTKFace-named images (age_gender_race_date.jpg.chip.jpg) under {root}; give the "
                             f"UTKFace folders with --targets and --attackers")
    vectors, _ = utkface_templates(engine, root, [s.name for s in subjects], progress=progress, cache=cache)
    found = [s for s in subjects if np.any(vectors[s.name])]
    return found, np.stack([vectors[s.name] for s in found]).astype(np.float32)


def _key(s: Subject) -> str:
    return f"{s.gender}|{s.race}|{s.age_band}"


def run_impersonation(
    profiles: Sequence[str], targets_root: Path, attackers_root: Path, out_dir: Path, *,
    sizes: Sequence[int] = ATTACK_SIZES, fmrs: Sequence[float] = OPERATING_FMRS, progress: bool = True,
    cache: bool = True,
) -> ImpersonationReport:
    """Attack success per profile, scoring (plain, fair), FMR, N and pool; writes report.json and impersonation.png."""
    rates: list[AttackRate] = []
    notes = ["every UTKFace image is taken as a different person",
             "success is exact (hypergeometric), not sampled: 1 - C(n - a, N) / C(n, N) per target, averaged",
             "attribute-matched: same gender, race and age band as the target (0-17, 18-29, 30-44, 45-59, 60+)"]
    matched_median = 0
    targets = attackers = None
    for name in profiles:
        plain = Engine(name)
        targets, tv = _templates(plain, targets_root, progress, cache)
        attackers, av = _templates(plain, attackers_root, progress, cache)
        pool_keys = np.array([_key(s) for s in attackers])
        matched = np.stack([pool_keys == _key(t) for t in targets])  # [targets, attackers]
        matched_median = int(np.median(matched.sum(axis=1)))
        engines = [("plain", plain)]
        try:
            engines.append(("fair", Engine(name, fair=True)))
        except NormaliserMissingError as exc:
            notes.append(f"{name}: no fair scores ({exc})")
        for scores_name, engine in engines:
            scores = engine.scores(tv, av)
            for fmr in fmrs:
                threshold = engine.calibrated_threshold(fmr)
                accepted = scores >= threshold
                for pool_name, mask in (("attribute-matched", matched), ("random", None)):
                    if mask is None:
                        pool = np.full(len(targets), len(attackers))
                        hits = accepted.sum(axis=1)
                    else:
                        pool, hits = mask.sum(axis=1), (accepted & mask).sum(axis=1)
                    for n in sizes:
                        p = success_probability(pool, hits, n)
                        groups = {a: {} for a in GROUP_ATTRIBUTES}
                        for attr in GROUP_ATTRIBUTES:
                            values = np.array([t.attribute(attr) for t in targets])
                            for g in sorted(set(values.tolist())):
                                groups[attr][g] = float(p[values == g].mean())
                        rates.append(AttackRate(name, scores_name, fmr, float(threshold), n, pool_name,
                                                float(p.mean()), len(targets), groups))
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_attack(rates, sizes, out_dir / "impersonation.png")
    report = ImpersonationReport(str(targets_root), str(attackers_root), len(targets or []), len(attackers or []),
                                 matched_median, rates, str(plot), notes)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report


def plot_attack(rates: Sequence[AttackRate], sizes: Sequence[int], path: Path) -> Path:
    """Attack success against N (log axis): one panel per profile and scoring, a line per FMR and pool."""
    panels = sorted({(r.profile, r.scores) for r in rates})
    fig = Figure(figsize=(4.2 * len(panels), 3.8))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    colours = {1e-3: "tab:red", 1e-4: "tab:orange", 1e-5: "tab:blue"}
    for ax, (profile, scores) in zip(axes, panels):
        for fmr in sorted({r.fmr for r in rates}, reverse=True):
            for pool, style in (("attribute-matched", "-"), ("random", ":")):
                ys = [next(r.success for r in rates if (r.profile, r.scores, r.fmr, r.pool, r.attack_size)
                           == (profile, scores, fmr, pool, n)) for n in sizes]
                ax.plot(sizes, [100 * y for y in ys], style, marker="o", color=colours.get(fmr, "black"),
                        label=f"FMR {fmr:g}, {pool}")
        ax.set_xscale("log")
        ax.set_xticks(list(sizes), [str(n) for n in sizes])
        ax.set_xlabel("photos submitted (N)")
        ax.set_title(f"{profile}, {scores} scores", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("targets impersonated (%)")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Impersonation by look-alike real photos (UTKFace)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path
