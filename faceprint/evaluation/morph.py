"""``faceprint eval morph``: how often a morph of two people verifies as both (MMPMR).

Protocol. Pairs of different people come from an LFW-layout folder in one of two ways:

* ``pairs`` (default): the "different" pairs of an LFW pairs file (View 1 ``pairsDevTest.txt``:
  500). Each morph is made from the two listed images. Each contributor's **reference** (the probe
  the morph is compared with) is another image of that person where the folder has one, else the
  listed image itself; the report gives MMPMR over all morphs and over the morphs whose two
  references are both independent images.
* ``independent``: ``count`` seeded random pairs of different people who each have two or more
  images; the morph is made from each person's first image, the references are their second
  images, so every comparison is with an image the morph was not made from.

Morphs (:mod:`faceprint.pad.morph`) are complete landmark-aligned morphs at alpha 0.5 on dlib's 68
landmarks (:mod:`faceprint.models.dlib_landmarks`) of the face nearest the image centre, saved as JPEG
(quality 95) under ``out_dir/morphs-<protocol>/`` and reused when present. No pairing by sex or
ethnicity is done (LFW has no such labels), so many pairs are dissimilar and the figures are
lower than for an attacker who picks a look-alike accomplice.

MMPMR (Scherhag et al. 2017, ISO/IEC 20059): the fraction of morphs whose similarity to *every*
contributor's reference reaches the threshold (``>=``, the engine's decision rule). It is given
per profile at every calibrated FMR threshold (stricter enrolment thresholds lower it), with the
FNMR those thresholds cost on the pairs file's real mated pairs. For a fused profile each embedder
is also scored alone, from its block of the fused templates (:func:`part_templates`: exactly the
single-model profile's template when the flip setting is the same), at that single-model
profile's thresholds: fusion against its parts on the very same detections and morphs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..engine import Engine
from ..errors import FaceprintError
from ..models.registry import load_landmarker
from ..pad.morph import morph
from ..pipeline.detection import central_face
from .lfw import Pair, pair_scores, read_pairs
from .runner import lfw_templates

log = logging.getLogger(__name__)

__all__ = ["MorphCase", "MorphReport", "ProfileMorphResult", "build_morphs", "independent_cases",
           "mmpmr", "pairs_file_cases", "part_templates", "run_morph"]

PROTOCOLS = ("pairs", "independent")


@dataclass(frozen=True)
class MorphCase:
    """One morph: made from images ``a`` and ``b``; compared with ``ref_a`` and ``ref_b`` (relative paths)."""

    a: str
    b: str
    ref_a: str
    ref_b: str
    morph: str

    @property
    def independent(self) -> bool:
        """True when both references are images the morph was not made from."""
        return self.ref_a != self.a and self.ref_b != self.b


def _person_images(root: Path, person: str) -> list[str]:
    return sorted(f"{person}/{p.name}" for p in (root / person).glob("*.jpg"))


def _reference(root: Path, image: str) -> str:
    person = Path(image).parent.name
    others = [p for p in _person_images(root, person) if p != image]
    return others[0] if others else image


def pairs_file_cases(root: Path, pairs: list[Pair]) -> list[MorphCase]:
    """One case per different-person pair; references are other images of each person where the folder has one."""
    return [
        MorphCase(p.a, p.b, _reference(root, p.a), _reference(root, p.b), f"{i:04d}.jpg")
        for i, p in enumerate(q for q in pairs if not q.same)
    ]


def independent_cases(root: Path, count: int, seed: int = 0) -> list[MorphCase]:
    """``count`` seeded pairs of different people with two or more images each.

    The first image of each person is morphed, the second is the reference.
    """
    people = sorted(d.name for d in root.iterdir() if d.is_dir() and len(_person_images(root, d.name)) >= 2)
    if len(people) < 2:
        raise FaceprintError(f"{root}: fewer than two people with two or more images")
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    cases = []
    while len(cases) < count and len(seen) < len(people) * (len(people) - 1) // 2:
        i, j = sorted(rng.choice(len(people), size=2, replace=False).tolist())
        if (i, j) in seen:
            continue
        seen.add((i, j))
        a, b = _person_images(root, people[i]), _person_images(root, people[j])
        cases.append(MorphCase(a[0], b[0], a[1], b[1], f"{len(cases):04d}.jpg"))
    return cases


def build_morphs(
    engine: Engine, root: Path, cases: list[MorphCase], morph_dir: Path
) -> tuple[list[MorphCase], list[str]]:
    """Write each case's morph (unless present); returns the cases with a morph and why others failed."""
    landmarker = load_landmarker()
    morph_dir.mkdir(parents=True, exist_ok=True)
    made, failed = [], []
    for case in cases:
        target = morph_dir / case.morph
        if not target.is_file():
            images, points = [], []
            for rel in (case.a, case.b):
                image = engine.load(root / rel)
                face = central_face(engine.finder.find(image), image.shape)
                if face is None:
                    break
                images.append(image)
                points.append(landmarker.landmarks(image, face.box))
            if len(images) < 2:
                failed.append(f"{case.a} + {case.b}: no face found")
                continue
            result = morph(images[0], points[0], images[1], points[1], alpha=0.5)
            cv2.imwrite(str(target), cv2.cvtColor(result, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        made.append(case)
    log.info("morphs: %d made or reused, %d failed", len(made), len(failed))
    return made, failed


def mmpmr(sim_a: np.ndarray, sim_b: np.ndarray, threshold: float) -> float:
    """Mated morph presentation match rate: fraction of morphs matching both contributors (``>= threshold``)."""
    sim_a, sim_b = np.asarray(sim_a, np.float64), np.asarray(sim_b, np.float64)
    if sim_a.size == 0:
        raise ValueError("no morphs to score")
    return float(np.mean(np.minimum(sim_a, sim_b) >= threshold))


@dataclass
class ProfileMorphResult:
    """MMPMR of one profile at each calibrated FMR threshold, with what that threshold costs.

    ``fnmr`` is measured on the pairs file's real mated pairs at the same thresholds.
    """

    profile: str
    model: str
    thresholds: dict[str, float]
    mmpmr: dict[str, float]
    mmpmr_independent: dict[str, float | None]
    match_a: dict[str, float]
    match_b: dict[str, float]
    fnmr: dict[str, float]
    mean_min_similarity: float


@dataclass
class MorphReport:
    """Everything ``faceprint eval morph`` measured."""

    protocol: str
    morphs: int
    independent_morphs: int
    failed: list[str]
    operating_fmr: float
    mated_pairs: int
    results: list[ProfileMorphResult]
    morph_dir: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """A human-readable table: MMPMR and mated FNMR per profile and threshold."""
        from .._text import table

        rows = []
        for r in self.results:
            for key in r.thresholds:
                ind = r.mmpmr_independent[key]
                rows.append((r.profile, key + (" *" if float(key) == self.operating_fmr else ""),
                             f"{r.thresholds[key]:.4f}", f"{100 * r.mmpmr[key]:.1f}%",
                             "n/a" if ind is None else f"{100 * ind:.1f}%",
                             f"{100 * r.match_a[key]:.1f}% / {100 * r.match_b[key]:.1f}%",
                             f"{100 * r.fnmr[key]:.1f}%"))
        head = [(f"morphing attack ({self.protocol}): {self.morphs} morphs, {self.independent_morphs} with "
                f"independent references; FNMR on {self.mated_pairs} real mated pairs (* = operating FMR)")]
        body = table(rows, ["profile", "FMR", "threshold", "MMPMR", "MMPMR indep.", "matches A / B", "FNMR"])
        return head + body.splitlines() + [f"note: {n}" for n in self.notes] + [f"morphs: {self.morph_dir}"]


def _result(name: str, model: str, thresholds: dict[float, float], morph_t: dict[str, np.ndarray],
            ref_t: dict[str, np.ndarray], cases: list[MorphCase], mated: list[Pair]) -> ProfileMorphResult:
    """MMPMR and mated FNMR of one set of templates at each calibrated threshold."""

    def sims(ref: str) -> np.ndarray:
        return np.array([float(np.dot(morph_t[c.morph], ref_t[getattr(c, ref)])) for c in cases])

    sim_a, sim_b = sims("ref_a"), sims("ref_b")
    independent = np.array([c.independent for c in cases])
    mated_scores = pair_scores(mated, ref_t) if mated else np.zeros(0)
    out: dict[str, dict] = {k: {} for k in ("thr", "mm", "ind", "a", "b", "fnmr")}
    for fmr, thr in sorted(thresholds.items(), reverse=True):
        key = f"{fmr:g}"
        out["thr"][key] = thr
        out["mm"][key] = mmpmr(sim_a, sim_b, thr)
        out["ind"][key] = mmpmr(sim_a[independent], sim_b[independent], thr) if independent.any() else None
        out["a"][key] = float(np.mean(sim_a >= thr))
        out["b"][key] = float(np.mean(sim_b >= thr))
        out["fnmr"][key] = float(np.mean(mated_scores < thr)) if mated_scores.size else float("nan")
    return ProfileMorphResult(name, model, out["thr"], out["mm"], out["ind"], out["a"], out["b"], out["fnmr"],
                              float(np.mean(np.minimum(sim_a, sim_b))))


def part_templates(engine: Engine, templates: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Each embedder's own unit template inside fused templates: its block over ``sqrt(weight)``.

    A fused template is the concatenation of ``sqrt(w_i) * u_i`` (:mod:`faceprint.pipeline.embedding`), so
    this recovers exactly what a single-model profile with the same flip setting would make.
    """
    recognizer = engine.recognizer
    out: dict[str, dict[str, np.ndarray]] = {}
    start = 0
    for part, embedder in zip(recognizer.parts, recognizer.embedders, strict=True):
        dim = int(embedder.card.output_dim or 0)
        scale = np.float32(1.0 / np.sqrt(part.weight))
        out[part.model] = {k: v[start:start + dim] * scale for k, v in templates.items()}
        start += dim
    return out


def _profile_results(engine: Engine, root: Path, morph_dir: Path, cases: list[MorphCase], mated: list[Pair],
                     progress: bool, cache: bool) -> list[ProfileMorphResult]:
    """The fused profile's result, then one per embedder of a fusion (with its single-model profile's thresholds)."""
    from ..profiles import get, names

    refs = sorted({c.ref_a for c in cases} | {c.ref_b for c in cases} | {p.a for p in mated} | {p.b for p in mated})
    ref_t, _ = lfw_templates(engine, root, refs, progress=progress, cache=cache)
    morph_t, _ = lfw_templates(engine, morph_dir, [c.morph for c in cases], progress=progress, cache=cache)
    profile = engine.profile
    results = [_result(profile.name, engine.model_id, profile.thresholds, morph_t, ref_t, cases, mated)]
    if len(profile.parts) > 1:
        refs_by_part, morphs_by_part = part_templates(engine, ref_t), part_templates(engine, morph_t)
        for part in profile.parts:
            if part.model not in names():  # no single-model profile of this embedder (dlib-int8)
                continue
            single = get(part.model)
            if single.flip != profile.flip or len(single.parts) != 1 or part.zooms != single.parts[0].zooms:
                continue
            results.append(_result(f"{part.model} (in {profile.name})", single.model_id, single.thresholds,
                                   morphs_by_part[part.model], refs_by_part[part.model], cases, mated))
    return results


def run_morph(
    profiles: list[str], root: Path, pairs_file: Path, out_dir: Path, *, protocol: str = "pairs", count: int = 500,
    seed: int = 0, operating_fmr: float = 1e-3, progress: bool = True, cache: bool = True,
) -> MorphReport:
    """Build the morphs of ``protocol`` and measure MMPMR for each profile; writes ``report.json``."""
    if protocol not in PROTOCOLS:
        raise FaceprintError(f"unknown morph protocol '{protocol}'; choose one of: {', '.join(PROTOCOLS)}")
    pairs = read_pairs(pairs_file)
    cases = pairs_file_cases(root, pairs) if protocol == "pairs" else independent_cases(root, count, seed)
    morph_dir = out_dir / f"morphs-{protocol}"
    engines = [Engine(p, fmr=operating_fmr) for p in profiles]
    cases, failed = build_morphs(engines[0], root, cases, morph_dir)
    if not cases:
        raise FaceprintError("no morph could be built (no faces found)")
    mated = [p for p in pairs if p.same]
    results = [r for e in engines for r in _profile_results(e, root, morph_dir, cases, mated, progress, cache)]
    notes = [
        "MMPMR: morph similarity to both contributors' references >= threshold (Scherhag et al. 2017)",
        "references: another image of each contributor where the folder has one, else the image the morph "
        "was made from" if protocol == "pairs" else "references: each contributor's second image",
        "pairs are not matched by sex or ethnicity; morphs are not retouched (JPEG 95)",
    ]
    report = MorphReport(protocol, len(cases), int(sum(c.independent for c in cases)), failed, operating_fmr,
                         len(mated), results, str(morph_dir), notes)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"report-{protocol}.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report
