"""``faceprint eval identify``: open-set 1:N identification accuracy on an LFW-layout folder.

Protocol (one template per enrolled person, so a person's score is its template's score):

* people with two or more images give the **gallery** (their first image, sorted by file name) and
  **mated probes** (their other images);
* people with exactly one image give **non-mated probes** (people not enrolled, "unknowns");
* ``max_people`` keeps a deterministic random subset of people (seeded), for quick runs.

Search is exact cosine similarity of every probe against every gallery template (numpy).

Metrics, as defined in NIST IR 8271 (FRVT 1:N identification):

* **CMC rank-k hit rate** (closed-set, over mated probes only): fraction of mated probes whose
  mate is among the ``k`` highest-scoring gallery entries. A mate's rank is ``1 +`` the number of
  other gallery entries scoring strictly higher than it (ties go to the mate).
* **FPIR(t)** (false positive identification rate): fraction of non-mated probes whose top-1
  score is ``>= t``.
* **FNIR(t)** (false negative identification rate): fraction of mated probes whose mate is *not*
  returned at rank 1 with score ``>= t``.
* ``FNIR @ FPIR = f``: ``t`` is the smallest threshold with ``FPIR(t) <= f``, set on the
  non-mated probes' top-1 scores (:func:`faceprint.evaluation.metrics.threshold_at_fmr`); it is
  ``None`` when there are fewer than ``1/f`` non-mated probes (the rate cannot be resolved).

Distractors (MegaFace-style gallery growth): ``N`` extra gallery templates that are no probe's
mate. They are real first -- the largest face of each image under ``distractor_images``, when
given -- then **synthetic**: ``mean + z``, ``z ~ Normal(0, C)`` where ``mean`` and ``C`` are the
empirical mean and covariance of the gallery templates, each normalised to unit length. A table
row is computed per requested size; a larger size's distractors include every smaller size's.
Synthetic templates match the gallery's first and second moments only, so they are usually
*easier* distractors than real faces of other people: treat their decay as a lower bound.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..engine import Engine
from ..pipeline.embedding import unit_rows
from ..pipeline.image_io import IMAGE_SUFFIXES
from .metrics import threshold_at_fmr
from .runner import DEFAULT_CACHE, TemplateCache, cached_templates, lfw_templates

log = logging.getLogger(__name__)

__all__ = [
    "IdentificationReport",
    "IdentificationSplit",
    "SearchResult",
    "SizeResult",
    "cmc",
    "det_curve",
    "distractor_pool",
    "evaluate",
    "fnir_at",
    "fnir_at_fpir",
    "fpir_at",
    "list_images",
    "run_identify",
    "search",
    "split_protocol",
    "subsample_people",
    "synthetic_distractors",
]

CMC_RANKS = (1, 5)
CHUNK = 256  # probes scored per matrix product


# --------------------------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------------------------


@dataclass
class IdentificationSplit:
    """Relative image paths of each role; ``gallery[i]`` is person ``people[i]``'s enrolled image.

    ``mated_people[j]`` is the index into ``gallery`` of mated probe ``mated[j]``'s mate.
    """

    people: list[str]
    gallery: list[str]
    mated: list[str]
    mated_people: list[int]
    nonmated: list[str]


def _person(name: str) -> str:
    """The person (folder) of a relative image path ``NAME/NAME_0001.jpg``."""
    parts = Path(name).parts
    if len(parts) < 2:
        raise ValueError(f"image path {name!r} is not in a person folder (expected NAME/file)")
    return parts[-2]


def list_images(root: Path) -> list[str]:
    """Every image ``PERSON/file`` one level below ``root``, as sorted relative POSIX paths."""
    names = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        names.extend(f"{folder.name}/{p.name}" for p in sorted(folder.iterdir())
                     if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return names


def subsample_people(names: Sequence[str], max_people: int | None, seed: int = 0) -> list[str]:
    """The images of a seeded random subset of at most ``max_people`` people (all when ``None``)."""
    people = sorted({_person(n) for n in names})
    if max_people is None or max_people >= len(people):
        return sorted(names)
    if max_people < 1:
        raise ValueError(f"max_people must be >= 1, got {max_people}")
    rng = np.random.default_rng(seed)
    keep = {people[i] for i in rng.choice(len(people), size=max_people, replace=False)}
    return sorted(n for n in names if _person(n) in keep)


def split_protocol(names: Sequence[str]) -> IdentificationSplit:
    """Gallery / mated / non-mated split of relative image paths (see the module docstring)."""
    by_person: dict[str, list[str]] = {}
    for name in names:
        by_person.setdefault(_person(name), []).append(name)
    split = IdentificationSplit(people=[], gallery=[], mated=[], mated_people=[], nonmated=[])
    for person in sorted(by_person):
        images = sorted(by_person[person], key=lambda n: Path(n).name)
        if len(images) == 1:
            split.nonmated.append(images[0])
            continue
        index = len(split.people)
        split.people.append(person)
        split.gallery.append(images[0])
        split.mated.extend(images[1:])
        split.mated_people.extend([index] * (len(images) - 1))
    return split


# --------------------------------------------------------------------------------------------
# search and metrics (pure numpy)
# --------------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """Per-probe outcome of one exhaustive search.

    ``top1_score``/``top1_index`` have one entry per probe; ``mate_score``/``mate_rank`` (rank
    1-based) one per mated probe, in probe order.
    """

    top1_score: np.ndarray
    top1_index: np.ndarray
    mate_score: np.ndarray
    mate_rank: np.ndarray


def search(probes: np.ndarray, gallery: np.ndarray, mates: Sequence[int] | np.ndarray | None = None) -> SearchResult:
    """Exact cosine search of every probe row against every gallery row.

    Args:
        probes: ``(P, d)`` templates (normalised here).
        gallery: ``(G, d)`` templates (normalised here).
        mates: for each probe, the gallery row of its mate; ``None`` (or ``-1`` entries) for
            non-mated probes. ``mate_score``/``mate_rank`` are returned for the probes with a mate,
            in probe order.
    """
    p = unit_rows(probes)
    g = unit_rows(gallery)
    if p.shape[1] != g.shape[1]:
        raise ValueError(f"probe and gallery dimensions differ: {p.shape[1]} vs {g.shape[1]}")
    if g.shape[0] == 0:
        raise ValueError("gallery is empty")
    mate_arr = np.full(p.shape[0], -1, dtype=np.int64) if mates is None else np.asarray(mates, dtype=np.int64)
    if mate_arr.shape != (p.shape[0],):
        raise ValueError(f"mates has {mate_arr.size} entries for {p.shape[0]} probes")
    if np.any(mate_arr >= g.shape[0]):
        raise ValueError("a mate index is outside the gallery")
    top1_score = np.empty(p.shape[0], dtype=np.float64)
    top1_index = np.empty(p.shape[0], dtype=np.int64)
    mate_score = np.full(p.shape[0], np.nan)
    mate_rank = np.zeros(p.shape[0], dtype=np.int64)
    for start in range(0, p.shape[0], CHUNK):
        stop = min(start + CHUNK, p.shape[0])
        scores = p[start:stop] @ g.T
        best = np.argmax(scores, axis=1)
        rows = np.arange(stop - start)
        top1_index[start:stop] = best
        top1_score[start:stop] = scores[rows, best]
        m = mate_arr[start:stop]
        has = m >= 0
        if has.any():
            ms = scores[rows[has], m[has]]
            mate_score[start:stop][has] = ms
            mate_rank[start:stop][has] = 1 + np.sum(scores[has] > ms[:, None], axis=1)
    has_mate = mate_arr >= 0
    return SearchResult(top1_score=top1_score, top1_index=top1_index,
                        mate_score=mate_score[has_mate], mate_rank=mate_rank[has_mate])


def cmc(mate_ranks: np.ndarray, ranks: Sequence[int] = CMC_RANKS) -> dict[int, float]:
    """Closed-set hit rate at each rank ``k``: fraction of mated probes with mate rank ``<= k``."""
    r = np.asarray(mate_ranks).ravel()
    if r.size == 0:
        raise ValueError("no mated probes")
    return {int(k): float(np.mean(r <= k)) for k in ranks}


def fpir_at(nonmated_top1: np.ndarray, threshold: float) -> float:
    """FPIR: fraction of non-mated probes whose top-1 score is ``>= threshold``."""
    s = np.asarray(nonmated_top1, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("no non-mated probes")
    return float(np.mean(s >= threshold))


def fnir_at(mate_ranks: np.ndarray, mate_scores: np.ndarray, threshold: float) -> float:
    """FNIR: fraction of mated probes whose mate is not at rank 1 with score ``>= threshold``."""
    r = np.asarray(mate_ranks).ravel()
    s = np.asarray(mate_scores, dtype=np.float64).ravel()
    if r.shape != s.shape or r.size == 0:
        raise ValueError("mate_ranks and mate_scores must be non-empty and of equal length")
    return float(1.0 - np.mean((r == 1) & (s >= threshold)))


def fnir_at_fpir(
    mate_ranks: np.ndarray, mate_scores: np.ndarray, nonmated_top1: np.ndarray, fpir: float
) -> tuple[float | None, float | None, str | None]:
    """``(fnir, threshold, None)`` at the smallest threshold with FPIR ``<= fpir``.

    Returns ``(None, None, reason)`` when there are fewer than ``1/fpir`` non-mated probes.
    """
    n = np.asarray(nonmated_top1).size
    needed = int(round(1.0 / fpir))
    if n < needed:
        return None, None, f"needs >= {needed} non-mated probes, have {n}"
    t = threshold_at_fmr(nonmated_top1, fpir)
    return fnir_at(mate_ranks, mate_scores, t), t, None


def det_curve(
    mate_ranks: np.ndarray, mate_scores: np.ndarray, nonmated_top1: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpir, fnir, thresholds)`` at every distinct score, thresholds descending (FPIR ascending)."""
    nm = np.sort(np.asarray(nonmated_top1, dtype=np.float64).ravel())
    r = np.asarray(mate_ranks).ravel()
    ms = np.asarray(mate_scores, dtype=np.float64).ravel()
    if nm.size == 0 or r.size == 0:
        raise ValueError("det_curve needs mated and non-mated probes")
    hits = np.sort(ms[r == 1])
    thresholds = np.unique(np.r_[nm, hits])[::-1]
    fpir = (nm.size - np.searchsorted(nm, thresholds, side="left")) / nm.size
    fnir = 1.0 - (hits.size - np.searchsorted(hits, thresholds, side="left")) / r.size
    return fpir, fnir, thresholds


# --------------------------------------------------------------------------------------------
# distractors
# --------------------------------------------------------------------------------------------


def synthetic_distractors(gallery: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors ``normalise(mean + z)``, ``z ~ Normal(0, C)``, mean and ``C`` of ``gallery``."""
    g = unit_rows(gallery).astype(np.float64)
    d = g.shape[1]
    if n <= 0:
        return np.zeros((0, d), dtype=np.float32)
    if g.shape[0] < 2:
        raise ValueError("synthetic distractors need at least 2 gallery templates")
    mean = g.mean(axis=0)
    cov = np.cov(g, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    factor = vectors * np.sqrt(np.clip(values, 0.0, None))  # C = factor @ factor.T, PSD-safe
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        z = rng.standard_normal((stop - start, d)) @ factor.T
        out[start:stop] = unit_rows(mean + z)
    return out


def real_distractor_templates(
    engine: Engine, folder: Path, *, progress: bool = True, cache: bool = True, cache_dir: Path = DEFAULT_CACHE,
) -> tuple[np.ndarray, dict[str, int]]:
    """Templates of the largest face of every image under ``folder`` (recursive), cached.

    Images without a detected face are left out (counted as ``no-face``).
    """
    folder = Path(folder)
    names = sorted(str(p.relative_to(folder).as_posix()) for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    store = TemplateCache(cache_dir, f"{engine.profile.model_id}-{engine.profile.fingerprint}-largest", folder,
                          enabled=cache)

    def compute(path: Path) -> tuple[np.ndarray, str]:
        faces = engine.finder.find(engine.load(path))  # largest first
        if not faces:  # cached as a zero vector so it is not retried
            return np.zeros(engine.recognizer.dim, dtype=np.float32), "no-face"
        return engine.embed_faces([faces[0]])[0].vector, "detected"

    templates, how = cached_templates(store, folder, names, compute, progress=progress, desc="distractors")
    vectors = [v for v in (templates[n] for n in names) if np.linalg.norm(v) > 0]
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32), how
    return unit_rows(np.stack(vectors)), how


def distractor_pool(gallery: np.ndarray, n: int, real: np.ndarray | None = None, seed: int = 0
                    ) -> tuple[np.ndarray, int]:
    """``n`` distractors: the first ``n`` real ones, then synthetic; returns ``(templates, n_real)``."""
    real = np.zeros((0, gallery.shape[1]), dtype=np.float32) if real is None or real.size == 0 else unit_rows(real)
    if real.shape[1] != gallery.shape[1]:
        raise ValueError(f"distractor dimension {real.shape[1]} differs from gallery's {gallery.shape[1]}")
    n_real = min(n, real.shape[0])
    synth = synthetic_distractors(gallery, n - n_real, seed=seed)
    return np.concatenate([real[:n_real], synth]).astype(np.float32), n_real


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    """Accuracy with ``distractors`` extra gallery templates (``gallery_size`` in all)."""

    distractors: int
    real_distractors: int
    synthetic_distractors: int
    gallery_size: int
    rank1: float
    rank5: float
    fnir_at_fpir_1e2: float | None
    threshold_at_fpir_1e2: float | None
    fnir_at_fpir_1e3: float | None
    threshold_at_fpir_1e3: float | None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class IdentificationReport:
    """Open-set 1:N results on one folder, one :class:`SizeResult` per distractor count."""

    profile: str
    model: str
    images: str
    people: int
    gallery: int
    mated_probes: int
    nonmated_probes: int
    results: list[SizeResult]
    distractor_source: str = "none"
    face_found: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plot: str | None = None
    histogram: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict of all fields."""
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """A short human-readable table, one string per line."""

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{100.0 * v:.2f}%"

        def thr(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.4f}"

        lines = [
            f"open-set 1:N on {self.images}: profile '{self.profile}' ({self.model})",
            f"{self.people} people: gallery {self.gallery}, mated probes {self.mated_probes}, "
            f"non-mated probes {self.nonmated_probes}; distractors: {self.distractor_source}",
        ]
        header = ["distractors", "gallery", "rank-1", "rank-5", "FNIR@FPIR=1e-2", "t", "FNIR@FPIR=1e-3", "t"]
        rows = [[str(r.distractors), str(r.gallery_size), pct(r.rank1), pct(r.rank5),
                 pct(r.fnir_at_fpir_1e2), thr(r.threshold_at_fpir_1e2),
                 pct(r.fnir_at_fpir_1e3), thr(r.threshold_at_fpir_1e3)] for r in self.results]
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]
        for row in [header, ["-" * w for w in widths], *rows]:
            lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        for r in self.results:
            lines.extend(f"note ({r.distractors} distractors): {k}: {v}" for k, v in r.notes.items())
        if self.face_found:
            lines.append("faces: " + ", ".join(f"{k} {v}" for k, v in sorted(self.face_found.items())))
        return lines


def evaluate(
    gallery: np.ndarray, mated: np.ndarray, mated_people: Sequence[int], nonmated: np.ndarray,
    distractor_counts: Sequence[int] = (0,), real_distractors: np.ndarray | None = None, seed: int = 0,
) -> tuple[list[SizeResult], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Metrics for each distractor count, and each count's DET curve ``(fpir, fnir)``."""
    g = unit_rows(gallery)
    counts = sorted({int(c) for c in distractor_counts})
    if counts and counts[0] < 0:
        raise ValueError("distractor counts must be >= 0")
    pool, n_real_pool = distractor_pool(g, counts[-1] if counts else 0, real_distractors, seed=seed)
    probes = np.concatenate([unit_rows(mated), unit_rows(nonmated)])
    mates = np.r_[np.asarray(mated_people, dtype=np.int64), np.full(len(nonmated), -1, dtype=np.int64)]
    results, curves = [], {}
    for n in counts:
        full = np.concatenate([g, pool[:n]])
        res = search(probes, full, mates)
        nm_top1 = res.top1_score[len(mated):]
        hits = cmc(res.mate_rank, CMC_RANKS)
        notes: dict[str, str] = {}
        at = {}
        for target, key in ((1e-2, "fnir_at_fpir_1e2"), (1e-3, "fnir_at_fpir_1e3")):
            fnir, t, why = fnir_at_fpir(res.mate_rank, res.mate_score, nm_top1, target)
            at[target] = (fnir, t)
            if why:
                notes[key] = why
        n_real = min(n, n_real_pool)
        results.append(SizeResult(
            distractors=n, real_distractors=n_real, synthetic_distractors=n - n_real, gallery_size=full.shape[0],
            rank1=hits[1], rank5=hits[5],
            fnir_at_fpir_1e2=at[1e-2][0], threshold_at_fpir_1e2=at[1e-2][1],
            fnir_at_fpir_1e3=at[1e-3][0], threshold_at_fpir_1e3=at[1e-3][1], notes=notes,
        ))
        fpir, fnir_curve, _ = det_curve(res.mate_rank, res.mate_score, nm_top1)
        curves[n] = (fpir, fnir_curve)
    return results, curves


def run_identify(
    engine: Engine, images_root: Path, out_dir: Path, *, max_people: int | None = None,
    distractors: Sequence[int] = (0,), distractor_images: Path | None = None, seed: int = 0,
    progress: bool = True, cache: bool = True,
) -> IdentificationReport:
    """Run the protocol on an LFW-layout folder; writes ``report.json``, ``det.png`` and ``scores.png`` in ``out_dir``.

    ``det.png``: FNIR against FPIR per gallery size, axes from the rates the probes resolve, with
    the profile's calibrated thresholds and the engine's threshold in use marked on the curve
    without distractors (when 0 is among ``distractors``). ``scores.png``: without distractors,
    each mated probe's score against its mate and each non-mated probe's best gallery score, with
    the same thresholds.

    Raises:
        FaceprintError: ``images_root`` is not a folder or lacks gallery or non-mated people.
    """
    from ..errors import FaceprintError
    from .plots import plot_identification_det, plot_score_histogram
    from .runner import engine_operating_points

    images_root = Path(images_root)
    if not images_root.is_dir():
        raise FaceprintError(f"{images_root}: not a folder")
    names = subsample_people(list_images(images_root), max_people, seed=seed)
    split = split_protocol(names)
    if not split.gallery or not split.nonmated:
        raise FaceprintError(f"{images_root}: need people with >= 2 images (gallery) and with 1 image "
                             f"(non-mated probes); found {len(split.gallery)} and {len(split.nonmated)}")
    started = time.perf_counter()
    templates, how = lfw_templates(engine, images_root, names, progress=progress, cache=cache)
    real, source = None, "synthetic (gallery mean + Gaussian with the gallery covariance, normalised)"
    if distractor_images is not None:
        real, real_how = real_distractor_templates(engine, Path(distractor_images), progress=progress, cache=cache)
        source = (f"real: {len(real)} largest faces of {distractor_images} "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(real_how.items()))}), then {source}")
    if max(distractors, default=0) == 0:
        source = "none"
    gallery = np.stack([templates[n] for n in split.gallery])
    mated = np.stack([templates[n] for n in split.mated])
    nonmated = np.stack([templates[n] for n in split.nonmated])
    results, curves = evaluate(gallery, mated, split.mated_people, nonmated, distractors, real, seed=seed)
    elapsed = time.perf_counter() - started
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Without distractors: the scores behind the histogram and the marked thresholds.
    base = search(np.concatenate([mated, nonmated]), gallery,
                  np.r_[np.asarray(split.mated_people, dtype=np.int64), np.full(len(nonmated), -1, dtype=np.int64)])
    nonmated_top1 = base.top1_score[len(mated):]
    points = engine_operating_points(engine)
    names = {r.distractors: f"{r.gallery_size} enrolled ({r.distractors} distractors)" for r in results}
    marks = {names[0]: [(p, fpir_at(nonmated_top1, p.threshold), fnir_at(base.mate_rank, base.mate_score, p.threshold))
                        for p in points]} if 0 in names else {}
    where = f"{images_root.parent.name}/{images_root.name}"
    plot = plot_identification_det(
        {names[r.distractors]: curves[r.distractors] for r in results},
        out_dir / "det.png",
        title=f"Open-set 1:N on {where}: {engine.profile.name}",
        counts=(len(nonmated), len(mated)), marks=marks,
    )
    histogram = plot_score_histogram(
        np.r_[base.mate_score, nonmated_top1], np.r_[np.ones(len(mated), bool), np.zeros(len(nonmated), bool)],
        out_dir / "scores.png", points=points,
        title=f"Open-set 1:N on {where}: {engine.profile.name}, {len(gallery)} enrolled, no distractors",
        mated_name="mated probes: score of their mate", non_mated_name="non-mated probes: best score in the gallery",
    )
    report = IdentificationReport(
        profile=engine.profile.name, model=engine.model_id, images=str(images_root),
        people=len(split.people) + len(split.nonmated), gallery=len(split.gallery),
        mated_probes=len(split.mated), nonmated_probes=len(split.nonmated), results=results,
        distractor_source=source, face_found=how, seconds=round(elapsed, 1), plot=str(plot),
        histogram=str(histogram),
    )
    payload = report.to_dict()
    payload["summary_lines"] = report.summary_lines() + [
        f"plots: {plot} (DET), {histogram} (scores); figures: {out_dir / 'report.json'}"]
    (out_dir / "report.json").write_text(json.dumps(payload, indent=2))
    return report
