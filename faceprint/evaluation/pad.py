"""Presentation attack detection metrics as ISO/IEC 30107-3 defines them, a DET plot, and a folder runner.

Scores are "live" scores: a presentation is accepted as bona fide when ``score >= threshold``.

- APCER of one attack type (PAI species): the share of that type's attack presentations accepted;
  the worst case over types is the figure ISO/IEC 30107-3 reports as APCER;
- BPCER: the share of bona fide presentations rejected;
- BPCER@APCER=x: the BPCER at the lowest threshold whose worst-case APCER is at most x
  (BPCER10 and BPCER20 in the standard's shorthand are BPCER@APCER=10% and 5%).

:func:`run_pad_eval` scores a folder laid out as ``real/`` (bona fide) plus ``fake/`` (one attack
type) or ``attack-<type>/`` folders (or, with ``bona_fide_only``, every image of a folder as bona
fide), detecting the largest face in each image and falling back to the whole image when none is
found. When the bona fide images carry labels, it also gives the BPCER per group with Wilson 95%
intervals (:func:`bpcer_by_group`): per gender, age band and race for UTKFace file names
(``age_gender_race_*.jpg``), per person for an LFW-style layout (``<Name>/<Name>_0001.jpg``).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import FaceprintError
from ..pipeline.image_io import IMAGE_SUFFIXES
from .fairness import read_utkface, wilson_interval

log = logging.getLogger(__name__)

APCER_TARGETS = (0.05, 0.10)
BONA_FIDE_DIRS = ("real", "live", "bona-fide")


class PadDatasetError(FaceprintError):
    """A PAD evaluation folder without bona fide or attack images in the expected layout."""

    code = "pad_dataset_error"


def apcer(attack_scores: np.ndarray, threshold: float) -> float:
    """Share of attack presentations accepted as bona fide at ``threshold``."""
    scores = np.asarray(attack_scores, dtype=np.float64)
    return float((scores >= threshold).mean()) if scores.size else 0.0


def bpcer(bona_fide_scores: np.ndarray, threshold: float) -> float:
    """Share of bona fide presentations rejected at ``threshold``."""
    scores = np.asarray(bona_fide_scores, dtype=np.float64)
    return float((scores < threshold).mean()) if scores.size else 0.0


def det_curve(bona_fide: np.ndarray, attacks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, worst-case APCER, BPCER) at every distinct score, thresholds ascending.

    One more threshold above the highest score closes the curve at APCER 0.
    """
    bona = np.asarray(bona_fide, dtype=np.float64)
    every = np.concatenate([bona] + [np.asarray(a, np.float64) for a in attacks.values()])
    thresholds = np.unique(every)
    thresholds = np.append(thresholds, np.nextafter(thresholds[-1], np.inf) if thresholds.size else 1.0)
    worst = np.zeros_like(thresholds)
    for scores in attacks.values():
        s = np.sort(np.asarray(scores, np.float64))
        if s.size:
            accepted = s.size - np.searchsorted(s, thresholds, side="left")
            worst = np.maximum(worst, accepted / s.size)
    b = np.sort(bona)
    rejected = np.searchsorted(b, thresholds, side="left") / max(b.size, 1)
    return thresholds, worst, rejected


@dataclass
class PadMetrics:
    """ISO/IEC 30107-3 figures for one set of scores.

    ``apcer_per_type``, ``apcer`` (worst case) and ``bpcer`` are at ``threshold`` (None when no
    operating threshold was given). ``bpcer_at_apcer[x]`` is the BPCER at ``threshold_at_apcer[x]``,
    the lowest threshold with worst-case APCER at most x. ``eer`` is where worst-case APCER and
    BPCER cross, at ``eer_threshold``.
    """

    bona_fide_count: int
    attack_counts: dict[str, int]
    threshold: float | None
    apcer_per_type: dict[str, float] | None
    apcer: float | None
    bpcer: float | None
    bpcer_at_apcer: dict[float, float]
    threshold_at_apcer: dict[float, float]
    eer: float
    eer_threshold: float
    worst_type: str | None = field(default=None)

    def to_dict(self) -> dict:
        """A JSON-ready description (rates as fractions)."""
        return {
            "bona_fide_count": self.bona_fide_count,
            "attack_counts": self.attack_counts,
            "threshold": None if self.threshold is None else round(self.threshold, 6),
            "apcer_per_type": self.apcer_per_type,
            "apcer_worst_case": self.apcer,
            "worst_type": self.worst_type,
            "bpcer": self.bpcer,
            "bpcer_at_apcer": {f"{x:g}": v for x, v in self.bpcer_at_apcer.items()},
            "threshold_at_apcer": {f"{x:g}": round(v, 6) for x, v in self.threshold_at_apcer.items()},
            "eer": self.eer,
            "eer_threshold": round(self.eer_threshold, 6),
        }


def pad_metrics(
    bona_fide: np.ndarray,
    attacks: dict[str, np.ndarray],
    threshold: float | None = None,
    targets: tuple[float, ...] = APCER_TARGETS,
) -> PadMetrics:
    """APCER per type and worst case, BPCER (at ``threshold`` when given), BPCER@APCER and EER."""
    attacks = {k: np.asarray(v, np.float64) for k, v in attacks.items() if np.asarray(v).size}
    if not np.asarray(bona_fide).size or not attacks:
        raise PadDatasetError("PAD metrics need at least one bona fide and one attack score")
    thresholds, worst, rejected = det_curve(bona_fide, attacks)
    at_bpcer, at_threshold = {}, {}
    for target in targets:
        ok = np.flatnonzero(worst <= target + 1e-12)  # worst is non-increasing, so ok is a tail
        i = int(ok[0])
        at_bpcer[target] = float(rejected[i])
        at_threshold[target] = float(thresholds[i])
    gap = np.abs(worst - rejected)
    j = int(np.argmin(gap))
    per_type = worst_case = rate = worst_type = None
    if threshold is not None:
        per_type = {k: apcer(v, threshold) for k, v in attacks.items()}
        worst_type = max(per_type, key=per_type.get)
        worst_case = per_type[worst_type]
        rate = bpcer(bona_fide, threshold)
    return PadMetrics(
        bona_fide_count=int(np.asarray(bona_fide).size),
        attack_counts={k: int(v.size) for k, v in attacks.items()},
        threshold=threshold,
        apcer_per_type=per_type,
        apcer=worst_case,
        bpcer=rate,
        bpcer_at_apcer=at_bpcer,
        threshold_at_apcer=at_threshold,
        eer=float((worst[j] + rejected[j]) / 2.0),
        eer_threshold=float(thresholds[j]),
        worst_type=worst_type,
    )


def plot_pad_det(bona_fide: np.ndarray, attacks: dict[str, np.ndarray], path: str | Path, title: str = "",
                 threshold: float | None = None) -> Path:
    """Write a PNG DET plot: BPCER against APCER (log-log), one curve per attack type plus the worst case.

    The operating ``threshold``, when given, is marked on the worst-case curve. Points with a zero
    rate cannot be drawn on a log axis and are omitted.
    """
    path = Path(path)
    fig = Figure(figsize=(7, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    curves = {f"attack: {k}": {k: v} for k, v in attacks.items()}
    if len(attacks) > 1:
        curves["worst case"] = attacks
    lowest = 1e-2
    for name, subset in curves.items():
        _, a, b = det_curve(bona_fide, subset)
        ok = (a > 0) & (b > 0)
        if ok.any():
            lowest = min(lowest, float(a[ok].min()), float(b[ok].min()))
        ax.plot(a[ok], b[ok], label=name, drawstyle="steps-post")
    if threshold is not None:
        a0 = max(apcer(v, threshold) for v in attacks.values())
        b0 = bpcer(bona_fide, threshold)
        ax.plot([max(a0, lowest)], [max(b0, lowest)], "ko",
                label=f"threshold {threshold:.3f}: APCER {100 * a0:.1f}%, BPCER {100 * b0:.1f}%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lowest / 2, 1.0)
    ax.set_ylim(lowest / 2, 1.0)
    ax.set_xlabel("APCER (attacks accepted)")
    ax.set_ylabel("BPCER (bona fide rejected)")
    ax.set_title(title or "PAD DET (ISO/IEC 30107-3)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    log.info("wrote PAD DET plot %s", path)
    return path


def pad_folders(root: str | Path, *, bona_fide_only: bool = False) -> dict[str, list[Path]]:
    """``{"bona_fide": [...], "<type>": [...]}`` from a ``real/`` + ``fake/`` or ``attack-<type>/`` folder.

    With ``bona_fide_only`` every image under ``root`` is bona fide. Raises :class:`PadDatasetError`
    when ``root`` is not a folder or lacks the images the layout needs.
    """
    root = Path(root)
    if not root.is_dir():
        raise PadDatasetError(f"{root}: not a folder; give a folder with real/ and fake/ (or attack-<type>/) "
                              "sub-folders, or a folder of live photos with --bona-fide-only")
    if bona_fide_only:
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise PadDatasetError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return {"bona_fide": images}
    groups: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name.lower()
        if name in BONA_FIDE_DIRS:
            kind = "bona_fide"
        elif name == "fake":
            kind = "fake"
        elif name.startswith("attack-") and len(name) > 7:
            kind = name[7:]
        else:
            continue
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        groups.setdefault(kind, []).extend(images)
    if not groups.get("bona_fide") or len([k for k, v in groups.items() if k != "bona_fide" and v]) == 0:
        raise PadDatasetError(f"{root}: expected real/ with images and fake/ or attack-<type>/ with images; "
                              f"found {', '.join(f'{k} ({len(v)})' for k, v in groups.items()) or 'nothing'}; "
                              "for live photos only, add --bona-fide-only")
    return groups


@dataclass(frozen=True)
class GroupBpcer:
    """BPCER of one group of bona fide images: ``rejected`` of ``n``, with its Wilson 95% interval."""

    attribute: str
    group: str
    n: int
    rejected: int
    low: float
    high: float

    @property
    def bpcer(self) -> float:
        """The share rejected (0-1)."""
        return self.rejected / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        """A JSON-ready description (rates as fractions)."""
        return {"attribute": self.attribute, "group": self.group, "n": self.n, "rejected": self.rejected,
                "bpcer": round(self.bpcer, 4), "wilson95": [round(self.low, 4), round(self.high, 4)]}


def group_labels(paths: list[Path]) -> dict[str, dict[Path, str]]:
    """Group labels of bona fide images, by attribute: ``gender``, ``age``, ``race`` for UTKFace file names,
    ``person`` for images named after their folder (``<Name>/<Name>_0001.jpg``, LFW's layout). Images
    without a label are left out of that attribute; an attribute nobody has is absent."""
    labels: dict[str, dict[Path, str]] = {}
    by_folder: dict[Path, set[str]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, set()).add(path.name)
    for folder, names in by_folder.items():
        subjects, _ = read_utkface(folder)
        for s in subjects:
            if s.name in names:
                for attribute in ("gender", "age", "race"):
                    labels.setdefault(attribute, {})[folder / s.name] = s.attribute(attribute)
    for path in paths:
        if path.stem.startswith(path.parent.name + "_"):
            labels.setdefault("person", {})[path] = path.parent.name
    return labels


def bpcer_by_group(paths: list[Path], scores: np.ndarray, threshold: float) -> list[GroupBpcer]:
    """BPCER at ``threshold`` per group of :func:`group_labels` (``scores[i]`` is the live score of ``paths[i]``),
    attributes in the order gender, age, race, person; groups by name."""
    rejected = {p: bool(s < threshold) for p, s in zip(paths, np.asarray(scores, np.float64))}
    out = []
    labels = group_labels(list(paths))
    for attribute in ("gender", "age", "race", "person"):
        members: dict[str, list[Path]] = {}
        for path, group in labels.get(attribute, {}).items():
            members.setdefault(group, []).append(path)
        for group in sorted(members):
            n, bad = len(members[group]), sum(rejected[p] for p in members[group])
            low, high = wilson_interval(bad, n)
            out.append(GroupBpcer(attribute, group, n, bad, low, high))
    return out


@dataclass
class PadRun:
    """Per-image results, metrics and per-group BPCER of :func:`run_pad_eval`.

    ``metrics`` is None for a bona fide-only run (no attacks: BPCER only, in ``bpcer``).
    """

    metrics: PadMetrics | None
    bpcer: float
    threshold: float
    groups: list[GroupBpcer]
    rows: list[dict]
    files: dict[str, str]

    def to_dict(self) -> dict:
        """A JSON-ready description (without the per-image rows)."""
        faces = sum(1 for r in self.rows if r["face_found"])
        return {"metrics": None if self.metrics is None else self.metrics.to_dict(), "threshold": self.threshold,
                "bpcer": self.bpcer, "bpcer_by_group": [g.to_dict() for g in self.groups],
                "images": len(self.rows), "faces_found": faces,
                "not_judged": sum(1 for r in self.rows if not r.get("judged", True)), "files": self.files}


def run_pad_eval(root: str | Path, out: str | Path, *, threshold: float | None = None,
                 bona_fide_only: bool = False, progress: bool = True) -> PadRun:
    """Score every image under ``root`` with the passive PAD check; write report.json, scores.csv and det.png.

    ``threshold`` overrides the check's operating threshold. A face that is not judged (greyscale)
    counts as rejected at every threshold. det.png is written only when there are attacks. Raises :class:`PadDatasetError` for a folder without the expected images.
    """
    from tqdm import tqdm

    from ..models import registry
    from ..models.pad_passive import PassiveLiveness, pad_face
    from ..pipeline.image_io import load_image

    groups = pad_folders(root, bona_fide_only=bona_fide_only)
    model = PassiveLiveness(threshold=threshold)
    detector = registry.load_detector("yunet")
    rows = []
    todo = [(kind, p) for kind, paths in groups.items() for p in paths]
    for kind, path in tqdm(todo, desc="PAD", unit="img", disable=not (progress and sys.stderr.isatty())):
        image = load_image(path)
        face = pad_face(detector.detect(image))
        result = model.check(image, face)
        rows.append({"image": str(path), "type": kind, "score": result.score, "is_live": result.is_live,
                     "judged": result.judged, "attack_type": result.attack_type, "attack_probability": result.attack_probability,
                     "context": result.context, "face_found": face is not None})
    bona_rows = [r for r in rows if r["type"] == "bona_fide"]

    def decided(r: dict) -> float:  # a face that is not judged (greyscale) is rejected at every threshold
        return r["score"] if r["judged"] else 0.0

    bona = np.array([decided(r) for r in bona_rows])
    attacks = {k: np.array([decided(r) for r in rows if r["type"] == k]) for k in groups if k != "bona_fide"}
    metrics = pad_metrics(bona, attacks, threshold=model.threshold) if attacks else None
    per_group = bpcer_by_group([Path(r["image"]) for r in bona_rows], bona, model.threshold)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"report": str(out / "report.json"), "scores": str(out / "scores.csv")}
    if attacks:
        files["det"] = str(plot_pad_det(bona, attacks, out / "det.png", title=f"PAD DET: {Path(root).name}",
                                        threshold=model.threshold))
    with open(out / "scores.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run = PadRun(metrics=metrics, bpcer=bpcer(bona, model.threshold), threshold=model.threshold, groups=per_group,
                 rows=rows, files=files)
    payload = {"dataset": str(root), "model": model.model, **run.to_dict()}
    (out / "report.json").write_text(json.dumps(payload, indent=2))
    return run
