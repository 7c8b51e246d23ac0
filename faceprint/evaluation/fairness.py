"""``faceprint eval fairness``: false match and false non-match rates per demographic group.

Data: the UTKFace sample (``age_gender_race_date.jpg.chip.jpg``: gender 0 male 1 female; race 0
White 1 Black 2 Asian 3 Indian 4 Others). Every image is taken to show a different person, so every
pair of images is an **impostor pair**. At one global threshold (the engine's, calibrated on LFW
View 1 DevTrain) this measures, as NIST IR 8280 does:

* **FMR per group**: the fraction of impostor pairs *within* a group (both images in it) accepted;
  per attribute (gender, race, age band) and per gender x race cell;
* the **FMR heatmap**: the FMR of the impostor pairs between every two gender x race groups
  (log colour scale, like NIST IR 8280's cross-group figures), each cell with its pair count;
* **max/min ratio** of the per-group FMRs, over the groups with enough pairs to resolve the FMR;
* the same per gender, race and gender x race among adults (18+) only: young children match each
  other far more often than adults, and the groups differ in how many children they hold.

A rate is *resolved* when its group has at least ``3 / fmr`` pairs (with ``3 / fmr`` pairs and no
error the 95% upper bound of the rate is ``fmr``: the "rule of three") or at least
:data:`MIN_ERRORS` errors (then the rate itself is known to within about +-60%, whatever the
target); every rate carries its Wilson 95% interval and its pair count, and unresolved cells are
marked. The max/min ratio uses resolved groups only.

UTKFace has no second image of anyone, so **mated pairs are not real here**: the FNMR per group is
measured on a *proxy*: each image against a degraded copy of itself (:func:`degrade`: rotated,
downscaled to a quarter and back, darker, JPEG-recompressed). It measures how robust templates of
each group are to image quality, not to ageing, pose or expression, and says nothing about real
mated comparisons. Images where no face is found (even at a low detector threshold) are counted
per group as failures to acquire and left out of both rates.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..engine import Engine
from ..models.yunet import YuNetDetector
from ..pipeline.detection import central_face
from .runner import DEFAULT_CACHE, TemplateCache, cached_templates

log = logging.getLogger(__name__)

__all__ = [
    "AGE_BANDS",
    "FairnessReport",
    "GroupRate",
    "Subject",
    "degrade",
    "group_rates",
    "impostor_mask",
    "max_min_ratio",
    "plot_fmr_heatmap",
    "proxy_fnmr_rates",
    "read_utkface",
    "run_fairness",
    "utkface_templates",
    "wilson_interval",
]

GENDERS = ("male", "female")
RACES = ("White", "Black", "Asian", "Indian", "Others")
AGE_BANDS = ((0, 17), (18, 29), (30, 44), (45, 59), (60, 200))
NO_FACE = "no-face"
MIN_ERRORS = 10
FNMR_TARGET = 0.03  # the proxy FNMR a group's rate is resolved against (3 / 0.03 = 100 mated pairs)
ATTRIBUTES = ("gender", "race", "age", "group")
ADULT_AGE = 18
ADULT_ATTRIBUTES = ("gender", "race", "group")
RATIO_COLUMNS = ("gender", "race", "age", "group", f"race ({ADULT_AGE}+)", f"group ({ADULT_AGE}+)")
#: A UTKFace file name: ``age_gender_race_date.jpg.chip.jpg`` (gender 0 male / 1 female; race 0-4 as :data:`RACES`).
UTKFACE_NAME = re.compile(r"^(\d+)_([01])_([0-4])_")


@dataclass(frozen=True)
class Subject:
    """One UTKFace image and its labels (file name relative to the folder)."""

    name: str
    age: int
    gender: str
    race: str

    @property
    def age_band(self) -> str:
        """``"18-29"`` style band of :data:`AGE_BANDS` (the last is ``"60+"``)."""
        for lo, hi in AGE_BANDS:
            if lo <= self.age <= hi:
                return f"{lo}+" if hi >= 200 else f"{lo}-{hi}"
        raise ValueError(f"age {self.age} outside every band")

    @property
    def group(self) -> str:
        """The gender x race cell, e.g. ``"female Asian"``."""
        return f"{self.gender} {self.race}"

    def attribute(self, name: str) -> str:
        """The subject's value of ``gender``, ``race``, ``age`` (band) or ``group``."""
        return {"gender": self.gender, "race": self.race, "age": self.age_band, "group": self.group}[name]


def read_utkface(root: Path) -> tuple[list[Subject], list[str]]:
    """Subjects of every labelled image under ``root``, and the names whose labels cannot be parsed."""
    subjects, skipped = [], []
    for path in sorted(Path(root).glob("*.jpg")):
        m = UTKFACE_NAME.match(path.name)
        if m is None:
            skipped.append(path.name)
            continue
        subjects.append(Subject(path.name, int(m[1]), GENDERS[int(m[2])], RACES[int(m[3])]))
    return subjects, skipped


def degrade(image: np.ndarray) -> np.ndarray:
    """A fixed, deterministic low-quality copy of an RGB image (the proxy "mated" sample).

    Rotated 8 degrees about the centre, scaled to a quarter of its size and back (bilinear),
    gamma 1.5 (darker), and JPEG-recompressed at quality 40.
    """
    h, w = image.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 8.0, 1.0)
    out = cv2.warpAffine(image, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    small = cv2.resize(out, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    out = (255.0 * (out / 255.0) ** 1.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 40])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def utkface_templates(
    engine: Engine, root: Path, names: Sequence[str], *, degraded: bool = False, progress: bool = True,
    cache: bool = True, cache_dir: Path = DEFAULT_CACHE,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Templates of the face nearest the centre of each image (``degraded``: of its degraded copy).

    Where nothing is found at the detector's threshold it is rerun at 0.3; where still nothing is
    found the template is all zeros and its ``how`` is ``"no-face"``.
    """
    suffix = "utk-degraded" if degraded else "utk"
    store = TemplateCache(cache_dir, f"{engine.profile.model_id}-{engine.profile.fingerprint}-{suffix}", root,
                          enabled=cache)
    fallback = YuNetDetector(score_threshold=0.3)

    def compute(path: Path) -> tuple[np.ndarray, str]:
        image = engine.load(path)
        if degraded:
            image = degrade(image)
        face = central_face(engine.finder.find(image), image.shape)
        how = "detected"
        if face is None:
            face = central_face(fallback.detect(image), image.shape)
            how = "detected-low-threshold"
        if face is None:
            return np.zeros(engine.recognizer.dim, dtype=np.float32), NO_FACE
        return engine.embed_faces([face])[0].vector, how

    return cached_templates(store, root, list(names), compute, progress=progress,
                            desc="degraded templates" if degraded else "templates")


def wilson_interval(errors: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (95% by default); ``(0, 1)`` when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    p = errors / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class GroupRate:
    """An error rate of one group: ``errors`` of ``n`` comparisons, with its Wilson 95% interval.

    ``resolved`` is False when ``n`` is below ``3 / target`` and fewer than :data:`MIN_ERRORS`
    errors were seen: the rate is then not known well enough to compare groups.
    """

    group: str
    n: int
    errors: int
    rate: float | None
    low: float
    high: float
    resolved: bool

    @classmethod
    def of(cls, group: str, errors: int, n: int, target: float) -> GroupRate:
        """The rate of ``errors`` in ``n`` comparisons, resolved against ``target``."""
        low, high = wilson_interval(errors, n)
        resolved = n >= math.ceil(3.0 / target) or errors >= MIN_ERRORS
        return cls(group, n, errors, errors / n if n else None, low, high, resolved)


def impostor_mask(n: int) -> np.ndarray:
    """Upper-triangle mask (``i < j``) of an ``n x n`` score matrix: every unordered pair once."""
    return np.triu(np.ones((n, n), dtype=bool), k=1)


def group_rates(
    scores: np.ndarray, labels: Sequence[str], threshold: float, target: float
) -> list[GroupRate]:
    """Within-group FMR of a square impostor score matrix (every pair of different images).

    ``labels[i]`` is image ``i``'s group; pairs with both images in a group count for it.
    """
    labels = np.asarray(labels)
    upper = impostor_mask(len(labels))
    out = []
    for g in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == g)
        s = scores[np.ix_(idx, idx)][upper[: len(idx), : len(idx)]]
        out.append(GroupRate.of(str(g), int((s >= threshold).sum()), int(s.size), target))
    return out


def cross_group_fmr(
    scores: np.ndarray, labels: Sequence[str], groups: Sequence[str], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(fmr, pairs)`` matrices over ``groups``: impostor pairs with one image in each group."""
    labels = np.asarray(labels)
    k = len(groups)
    fmr = np.full((k, k), np.nan)
    pairs = np.zeros((k, k), dtype=np.int64)
    accepted = scores >= threshold
    for a, ga in enumerate(groups):
        ia = np.flatnonzero(labels == ga)
        for b, gb in enumerate(groups):
            ib = np.flatnonzero(labels == gb)
            block = accepted[np.ix_(ia, ib)]
            if a == b:
                block = block[impostor_mask(len(ia))]
            pairs[a, b] = block.size
            if block.size:
                fmr[a, b] = block.sum() / block.size
    return fmr, pairs


def max_min_ratio(rates: Sequence[GroupRate]) -> float | None:
    """Highest over lowest rate of the resolved groups; ``None`` with fewer than two or a zero low.

    A zero lowest rate makes the ratio unbounded; use the interval bounds then.
    """
    values = [r.rate for r in rates if r.resolved and r.rate is not None]
    if len(values) < 2 or min(values) == 0:
        return None
    return max(values) / min(values)


def plot_fmr_heatmap(
    fmr: np.ndarray, pairs: np.ndarray, groups: Sequence[str], path: Path, *, min_pairs: int, title: str
) -> Path:
    """Write the cross-group FMR heatmap (log colour scale) with each cell's FMR and pair count.

    Unresolved cells (fewer than ``min_pairs`` pairs and fewer than :data:`MIN_ERRORS` false
    matches) are hatched and their value bracketed; cells with no false match are drawn at the
    lowest colour and labelled ``0``.
    """
    path = Path(path)
    fig = Figure(figsize=(9.5, 8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    positive = fmr[np.isfinite(fmr) & (fmr > 0)]
    vmin = float(positive.min()) if positive.size else 1e-5
    vmax = float(max(positive.max(), vmin * 10)) if positive.size else 1e-2
    shown = np.where(np.isfinite(fmr), np.maximum(fmr, vmin), np.nan)
    image = ax.imshow(shown, cmap="viridis", norm=LogNorm(vmin=vmin, vmax=vmax))
    fig.colorbar(image, ax=ax, label="FMR (log scale)")
    for a in range(len(groups)):
        for b in range(len(groups)):
            value = fmr[a, b]
            text = "-" if not np.isfinite(value) else ("0" if value == 0 else f"{value:.1e}")
            errors = 0.0 if not np.isfinite(value) else value * pairs[a, b]
            if pairs[a, b] < min_pairs and errors < MIN_ERRORS - 0.5:
                text = f"({text})"
                ax.add_patch(_hatch(a, b))
            ax.text(b, a, f"{text}\n{pairs[a, b]}", ha="center", va="center", fontsize=6.5,
                    color="white" if np.isfinite(value) and shown[a, b] < vmin * 10 else "black")
    ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right")
    ax.set_yticks(range(len(groups)), groups)
    ax.set_xlabel("group of image B")
    ax.set_ylabel("group of image A")
    legend = f"cell: FMR / impostor pairs; bracketed, hatched: unresolved (< {min_pairs} pairs, < {MIN_ERRORS} errors)"
    ax.set_title(f"{title}\n({legend})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    log.info("wrote FMR heatmap %s", path)
    return path


def _hatch(row: int, col: int):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, hatch="///", edgecolor="grey", linewidth=0)


@dataclass
class FairnessReport:
    """Everything ``faceprint eval fairness`` measured (JSON-ready through :meth:`to_dict`)."""

    profile: str
    model: str
    threshold: float
    fmr_target: float
    images: int
    failures_to_acquire: dict[str, int]
    impostor_pairs: int
    overall_fmr: GroupRate
    fmr: dict[str, list[GroupRate]]
    fmr_ratio: dict[str, float | None]
    fnmr_proxy: dict[str, list[GroupRate]]
    overall_fnmr_proxy: GroupRate
    heatmap_groups: list[str]
    heatmap_fmr: list[list[float | None]]
    heatmap_pairs: list[list[int]]
    plot: str
    plot_adults: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """A human-readable report."""

        def pct(r: GroupRate) -> str:
            if r.rate is None:
                return "n/a"
            mark = "" if r.resolved else "  (unresolved)"
            return f"{r.rate:.2e} [{r.low:.1e}, {r.high:.1e}] {r.errors}/{r.n}{mark}"

        lines = [
            (f"fairness on UTKFace ({self.images} images), profile '{self.profile}', threshold "
            f"{self.threshold:.4f} (calibrated FMR {self.fmr_target:g} "
            f"{'on fair-normalised scores of the fit set' if self.model.endswith('+fair') else 'on LFW DevTrain'})"),
            f"overall impostor FMR: {pct(self.overall_fmr)}",
            f"overall proxy FNMR (image vs degraded copy): {pct(self.overall_fnmr_proxy)}",
        ]
        for attr, rates in self.fmr.items():
            ratio = self.fmr_ratio.get(attr)
            lines.append(f"FMR within {attr} groups (max/min over resolved: "
                         f"{'n/a' if ratio is None else f'{ratio:.1f}'}):")
            lines.extend(f"  {r.group:16s} {pct(r)}" for r in rates)
        for attr, rates in self.fnmr_proxy.items():
            lines.append(f"proxy FNMR by {attr}:")
            lines.extend(f"  {r.group:16s} {pct(r)}" for r in rates)
        if any(self.failures_to_acquire.values()):
            lines.append("no face found: " + ", ".join(f"{k} {v}" for k, v in self.failures_to_acquire.items() if v))
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"heatmaps: {self.plot}, {self.plot_adults} (adults only)")
        return lines




def attribute_rates(
    scores: np.ndarray, subjects: Sequence[Subject], threshold: float, target: float
) -> dict[str, list[GroupRate]]:
    """Within-group FMR per attribute, then per gender, race and gender x race among adults only.

    The adult-only breakdown leaves out young children, whose FMR is far higher in every group and
    whose share differs between groups.
    """
    rates = {a: group_rates(scores, [s.attribute(a) for s in subjects], threshold, target) for a in ATTRIBUTES}
    adults = np.array([i for i, s in enumerate(subjects) if s.age >= ADULT_AGE], dtype=np.int64)
    adult_scores = scores[np.ix_(adults, adults)]
    for a in ADULT_ATTRIBUTES:
        rates[f"{a} ({ADULT_AGE}+)"] = group_rates(adult_scores, [subjects[i].attribute(a) for i in adults],
                                                   threshold, target)
    return rates


def proxy_fnmr_rates(
    misses: np.ndarray, subjects: Sequence[Subject], attributes: Sequence[str] = ATTRIBUTES
) -> dict[str, list[GroupRate]]:
    """Proxy FNMR per group of each of ``attributes``, resolved against :data:`FNMR_TARGET`.

    ``misses[i]`` (bool) says that ``subjects[i]``'s proxy mated pair (its image against its
    degraded copy, :func:`degrade`) scored below the threshold.
    """
    misses = np.asarray(misses, dtype=bool)
    rates = {}
    for a in attributes:
        values = np.array([s.attribute(a) for s in subjects])
        rates[a] = [GroupRate.of(str(g), int(misses[values == g].sum()), int((values == g).sum()), FNMR_TARGET)
                    for g in sorted(set(values.tolist()))]
    return rates


def _stack(templates: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    return np.stack([templates[n] for n in names]).astype(np.float32)


def run_fairness(
    engine: Engine, root: Path, out_dir: Path, *, progress: bool = True, cache: bool = True
) -> FairnessReport:
    """Per-group FMR and proxy FNMR on the UTKFace folder ``root``.

    Writes ``report.json``, ``fmr_heatmap.png`` and ``fmr_heatmap_adults.png`` in ``out_dir``.
    With ``Engine(fair=True)`` every score is fair-normalised and the threshold is the normaliser's.
    """
    from ..errors import FaceprintError

    subjects, skipped = read_utkface(root)
    if not subjects:
        raise FaceprintError(f"no UTKFace-named images (age_gender_race_*.jpg) under {root}")
    names = [s.name for s in subjects]
    originals, how = utkface_templates(engine, root, names, progress=progress, cache=cache)
    degraded, how_degraded = utkface_templates(engine, root, names, degraded=True, progress=progress, cache=cache)
    found = [s for s in subjects if np.any(originals[s.name])]
    fta = {g: sum(1 for s in subjects if s.group == g and not np.any(originals[s.name]))
           for g in sorted({s.group for s in subjects})}
    vectors = _stack(originals, [s.name for s in found])
    scores = engine.scores(vectors, vectors)  # fair-normalised with Engine(fair=True)
    thr, target = engine.threshold, engine.fmr
    upper = impostor_mask(len(found))
    all_imp = scores[upper]
    overall = GroupRate.of("all", int((all_imp >= thr).sum()), int(all_imp.size), target)
    fmr = attribute_rates(scores, found, thr, target)
    adults = np.array([i for i, s in enumerate(found) if s.age >= ADULT_AGE], dtype=np.int64)
    adult_scores = scores[np.ix_(adults, adults)]
    ratio = {a: max_min_ratio(r) for a, r in fmr.items()}

    mated_ok = [s for s in found if np.any(degraded[s.name])]
    probe_a, probe_b = _stack(originals, [s.name for s in mated_ok]), _stack(degraded, [s.name for s in mated_ok])
    mated = np.einsum("ij,ij->i", probe_a, probe_b)
    if engine.normaliser is not None:
        mated = engine.normaliser.normalise_scores(mated, probe_a, probe_b)
    misses = mated < thr
    fnmr = proxy_fnmr_rates(misses, mated_ok)
    overall_fnmr = GroupRate.of("all", int(misses.sum()), int(misses.size), FNMR_TARGET)

    groups = [f"{g} {r}" for g in GENDERS for r in RACES]
    heat, pairs = cross_group_fmr(scores, [s.group for s in found], groups, thr)
    min_pairs = math.ceil(3.0 / target)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_fmr_heatmap(heat, pairs, groups, out_dir / "fmr_heatmap.png", min_pairs=min_pairs,
                            title=f"UTKFace impostor FMR by gender x race: {engine.profile.name}, "
                                  f"threshold {thr:.4f} (FMR {target:g} on LFW)")
    adult_heat, adult_pairs = cross_group_fmr(adult_scores, [found[i].group for i in adults], groups, thr)
    plot_adults = plot_fmr_heatmap(adult_heat, adult_pairs, groups, out_dir / "fmr_heatmap_adults.png",
                                   min_pairs=min_pairs,
                                   title=f"UTKFace adults ({ADULT_AGE}+) impostor FMR by gender x race: "
                                         f"{engine.profile.name}, threshold {thr:.4f}")
    notes = [
        "every UTKFace image is taken as a different person: all pairs are impostor pairs",
        (f"a rate is resolved with >= {min_pairs} pairs (3 / FMR target) or >= {MIN_ERRORS} errors; "
        "intervals are Wilson 95%"),
        ("FNMR is a proxy: each image against a degraded copy of itself (rotation, 4x downscale, "
        "gamma, JPEG 40); UTKFace has no real mated pairs, so FNMR per group on real mated pairs "
        "is NOT measured; FNMR groups count as resolved from 100 images"),
        f"faces found: {how}; degraded copies: {how_degraded}",
    ]
    if skipped:
        notes.append(f"{len(skipped)} file(s) without parseable labels skipped, e.g. {skipped[0]}")
    report = FairnessReport(
        profile=engine.profile.name, model=engine.model_id, threshold=float(thr), fmr_target=target,
        images=len(subjects), failures_to_acquire=fta, impostor_pairs=int(all_imp.size),
        overall_fmr=overall, fmr=fmr, fmr_ratio=ratio, fnmr_proxy=fnmr, overall_fnmr_proxy=overall_fnmr,
        heatmap_groups=groups,
        heatmap_fmr=[[None if not np.isfinite(v) else float(v) for v in row] for row in heat],
        heatmap_pairs=pairs.tolist(), plot=str(plot), plot_adults=str(plot_adults), notes=notes,
    )
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report


# --------------------------------------------------------------------------------------------
# mitigation: fair score normalisation (no labels at query time), before / after
# --------------------------------------------------------------------------------------------


@dataclass
class MethodFigures:
    """Per-group FMR on the held-out UTKFace half, and overall accuracy on LFW DevTest, of one method."""

    method: str
    threshold: float
    utk_overall_fmr: GroupRate
    utk_fmr: dict[str, list[GroupRate]]
    utk_fmr_ratio: dict[str, float | None]
    lfw_fmr_at_threshold: float
    lfw_fnmr_at_threshold: float
    lfw_fnmr_at_fmr: float
    lfw_accuracy: float


@dataclass
class MitigationReport:
    """Before/after figures of fair score normalisation (FSN)."""

    profile: str
    model: str
    clusters: int
    fmr_target: float
    fit_images: dict[str, int]
    test_images: int
    lfw_test_impostor_pairs: int
    lfw_test_mated_pairs: int
    methods: list[MethodFigures]
    normaliser: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """A before/after table."""
        from .._text import table

        def ratio(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f}"

        rows = [(m.method, f"{m.threshold:.4f}", f"{m.utk_overall_fmr.rate:.2e}",
                 *(ratio(m.utk_fmr_ratio[a]) for a in RATIO_COLUMNS),
                 f"{m.lfw_fmr_at_threshold:.2e}", f"{100 * m.lfw_fnmr_at_threshold:.1f}%",
                 f"{100 * m.lfw_fnmr_at_fmr:.1f}%", f"{100 * m.lfw_accuracy:.2f}%") for m in self.methods]
        head = ["method", "threshold", "UTK FMR", *(f"max/min {a}" for a in RATIO_COLUMNS), "LFW FMR",
                "LFW FNMR", f"FNMR@{self.fmr_target:g}", "LFW acc"]
        lines = [(f"mitigation: fair score normalisation ({self.clusters} clusters), profile '{self.profile}'; "
                 f"fit on {self.fit_images}, tested on {self.test_images} held-out UTKFace images and LFW DevTest "
                 f"({self.lfw_test_mated_pairs} mated, {self.lfw_test_impostor_pairs} impostor pairs)")]
        lines += table(rows, head).splitlines()
        for m in self.methods:
            for attr in ("race", "age", f"race ({ADULT_AGE}+)"):
                lines.append(f"{m.method}: FMR within {attr} groups: " + ", ".join(
                    f"{r.group} {r.rate:.1e}{'' if r.resolved else '?'}" for r in m.utk_fmr[attr]))
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"normaliser: {self.normaliser}")
        return lines


def _person_of(rel: str) -> str:
    return Path(rel).parent.name


def run_mitigation(
    engine: Engine, utk_root: Path, lfw_root: Path, train_pairs: Path, test_pairs: Path, out_dir: Path, *,
    clusters: int = 20, seed: int = 0, progress: bool = True, cache: bool = True,
) -> MitigationReport:
    """Fit FSN on half of UTKFace plus LFW DevTrain; compare per-group FMR and accuracy before and after.

    Methods: the engine's threshold (LFW-calibrated), the raw score with the global threshold
    recalibrated on the fit set (the fair baseline: same data as FSN), and FSN.
    """
    from .lfw import read_pairs
    from .metrics import kfold_accuracy, threshold_at_fmr
    from .runner import lfw_templates
    from ..matching.normalisation import fit_normaliser

    subjects, _ = read_utkface(utk_root)
    utk, _ = utkface_templates(engine, utk_root, [s.name for s in subjects], progress=progress, cache=cache)
    found = [s for s in subjects if np.any(utk[s.name])]
    order = np.random.default_rng(seed).permutation(len(found))
    fit_utk = [found[i] for i in sorted(order[: len(found) // 2])]
    test_utk = [found[i] for i in sorted(order[len(found) // 2:])]

    train = read_pairs(train_pairs)
    test = read_pairs(test_pairs)
    train_names = sorted({p.a for p in train} | {p.b for p in train})
    test_names = sorted({p.a for p in test} | {p.b for p in test})
    lfw, _ = lfw_templates(engine, lfw_root, train_names + test_names, progress=progress, cache=cache)

    fit_vectors = np.vstack([_stack(utk, [s.name for s in fit_utk]), _stack(lfw, train_names)])
    fit_ids = [f"utk:{s.name}" for s in fit_utk] + [_person_of(n) for n in train_names]
    target = engine.fmr
    norm = fit_normaliser(fit_vectors, fit_ids, clusters=clusters, fmr=target, model=engine.profile.model_id, seed=seed)
    saved = norm.save(out_dir / "fsn.npz")
    raw_fit = fit_vectors @ fit_vectors.T
    ids = np.asarray(fit_ids)
    recalibrated = threshold_at_fmr(raw_fit[np.triu(ids[:, None] != ids[None, :], k=1)], target)

    tv = _stack(utk, [s.name for s in test_utk])
    lv = _stack(lfw, test_names)
    persons = np.array([_person_of(n) for n in test_names])
    lfw_imp = np.triu(persons[:, None] != persons[None, :], k=1)
    index = {n: i for i, n in enumerate(test_names)}
    ia = np.array([index[p.a] for p in test])
    ib = np.array([index[p.b] for p in test])
    same = np.array([p.same for p in test])
    folds = np.array([p.fold for p in test])

    def figures(method: str, threshold: float, utk_scores: np.ndarray, lfw_scores: np.ndarray) -> MethodFigures:
        upper = impostor_mask(len(test_utk))
        overall = utk_scores[upper]
        rates = attribute_rates(utk_scores, test_utk, threshold, target)
        imp = lfw_scores[lfw_imp]
        pair = lfw_scores[ia, ib]
        own_thr = threshold_at_fmr(imp, target)
        return MethodFigures(
            method=method, threshold=float(threshold),
            utk_overall_fmr=GroupRate.of("all", int((overall >= threshold).sum()), int(overall.size), target),
            utk_fmr=rates, utk_fmr_ratio={a: max_min_ratio(r) for a, r in rates.items()},
            lfw_fmr_at_threshold=float(np.mean(imp >= threshold)),
            lfw_fnmr_at_threshold=float(np.mean(pair[same] < threshold)),
            lfw_fnmr_at_fmr=float(np.mean(pair[same] < own_thr)),
            lfw_accuracy=kfold_accuracy(pair, same, folds).mean,
        )

    raw_utk, raw_lfw = tv @ tv.T, lv @ lv.T
    methods = [
        figures("engine threshold", engine.threshold, raw_utk, raw_lfw),
        figures("recalibrated threshold", recalibrated, raw_utk, raw_lfw),
        figures("FSN", norm.threshold, norm.normalise(tv, tv), norm.normalise(lv, lv)),
    ]
    report = MitigationReport(
        profile=engine.profile.name, model=engine.model_id, clusters=clusters, fmr_target=target,
        fit_images={"utkface": len(fit_utk), "lfw_devtrain": len(train_names)}, test_images=len(test_utk),
        lfw_test_impostor_pairs=int(lfw_imp.sum()), lfw_test_mated_pairs=int(same.sum()), methods=methods,
        normaliser=str(saved),
        notes=[
            (f"UTKFace split in two seeded halves (seed {seed}): FSN and the recalibrated threshold are fitted on "
            "one half plus LFW DevTrain, every UTKFace figure is on the other half"),
            ("LFW FMR: all pairs of different DevTest people at the method's threshold; LFW FNMR: DevTest mated "
            f"pairs at that threshold; FNMR@{target:g}: at the threshold giving FMR {target:g} on those impostors "
            "(threshold-free cost); LFW acc: 10-fold accuracy on the DevTest pairs"),
            "a group rate marked ? has too few pairs to resolve the FMR",
        ],
    )
    (out_dir / "mitigation.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report
