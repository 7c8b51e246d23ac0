"""``faceprint eval lfw``: templates for every image of a pairs file, then the LFW protocol.

Detection is part of what is measured: each image goes through the engine's detector, and the
face nearest the image centre is taken (LFW images are centred on their subject). Where the
detector finds nothing at its normal threshold it is rerun at 0.3; where it still finds nothing
the face is assumed at the mean LFW landmark positions (scaled to the image) and the report counts
it, as LFW's "unrestricted, labeled outside data" protocol lets methods do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..engine import Engine
from ..errors import FaceprintError
from ..models.yunet import YuNetDetector
from ..pipeline.detection import central_face
from ..types import Box, Face
from .lfw import missing_images, pair_scores, read_pairs
from .metrics import verification_report
from .plots import OperatingPoint, operating_points, plot_det, plot_score_histogram

log = logging.getLogger(__name__)

# Mean YuNet landmarks (central face) on 250x250 LFW images, used when nothing is detected:
# measured on every 10th image of LFW View 1 (500 faces).
LFW_MEAN_LANDMARKS = np.array(
    [[103.7, 112.3], [147.7, 112.1], [125.9, 137.1], [107.7, 156.7], [145.2, 156.4]], dtype=np.float32
)
DEFAULT_CACHE = Path.home() / ".cache" / "faceprint" / "templates"


class TemplateCache:
    """Templates of one recipe (``key``) for one image folder, in one ``.npz`` file keyed by relative path.

    An entry is reused only while the image file's size and modification time are unchanged.
    """

    def __init__(self, directory: Path, key: str, images_root: Path, enabled: bool = True) -> None:
        digest = hashlib.sha1(str(images_root.resolve()).encode()).hexdigest()[:12]
        self.path = directory / f"{key}-{digest}.npz"
        self.enabled = enabled
        self.entries: dict[str, tuple[str, np.ndarray, str]] = {}
        if enabled:
            self.entries = self._read()

    def _read(self) -> dict[str, tuple[str, np.ndarray, str]]:
        if not self.path.is_file():
            return {}
        with np.load(self.path, allow_pickle=False) as data:
            return {
                str(key): (str(stamp), vec, str(how))
                for key, stamp, vec, how in zip(data["keys"], data["stamps"], data["vectors"], data["how"])
            }

    @staticmethod
    def stamp(path: Path) -> str:
        """Size and mtime of a file, as a string."""
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"

    def get(self, key: str, path: Path) -> tuple[np.ndarray, str] | None:
        """The cached (vector, how-detected) for ``key`` if still valid."""
        entry = self.entries.get(key)
        if entry is None or entry[0] != self.stamp(path):
            return None
        return entry[1], entry[2]

    def put(self, key: str, path: Path, vector: np.ndarray, how: str) -> None:
        """Remember a template."""
        self.entries[key] = (self.stamp(path), vector, how)

    def save(self) -> None:
        """Write the cache file atomically, keeping entries another process saved meanwhile."""
        if not self.enabled or not self.entries:
            return
        self.entries = {**self._read(), **self.entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.entries)
        tmp = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            keys=np.array(keys),
            stamps=np.array([self.entries[k][0] for k in keys]),
            vectors=np.stack([self.entries[k][1] for k in keys]),
            how=np.array([self.entries[k][2] for k in keys]),
        )
        tmp.replace(self.path)


def lfw_face(engine: Engine, image: np.ndarray, fallback: YuNetDetector) -> tuple[Face, str]:
    """The subject's face in an LFW-style image and how it was found."""
    face = central_face(engine.finder.find(image), image.shape)
    if face is not None:
        return face, "detected"
    face = central_face(fallback.detect(image), image.shape)
    if face is not None:
        return face, "detected-low-threshold"
    scale = np.array([image.shape[1] / 250.0, image.shape[0] / 250.0], dtype=np.float32)
    landmarks = LFW_MEAN_LANDMARKS * scale
    box = Box(float(landmarks[:, 0].min() - 30), float(landmarks[:, 1].min() - 40), 100.0, 120.0)
    return replace(Face(box=box, landmarks=landmarks, score=0.0), image=image), "assumed-centre"


def cached_templates(
    store: TemplateCache,
    images_root: Path,
    names: list[str],
    compute: Callable[[Path], tuple[np.ndarray, str]],
    *,
    progress: bool = True,
    desc: str = "templates",
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """``compute(path) -> (vector, how)`` for every name not in ``store``; saves as it goes.

    The progress bar is drawn only when ``progress`` is set and standard error is a terminal, so a
    log file never fills with carriage returns.

    Returns every name's vector and a count of each ``how`` (how the face was found).
    """
    templates: dict[str, np.ndarray] = {}
    how_counts: dict[str, int] = {}
    todo = []
    for name in names:
        hit = store.get(name, images_root / name)
        if hit is None:
            todo.append(name)
        else:
            templates[name] = hit[0]
            how_counts[hit[1]] = how_counts.get(hit[1], 0) + 1
    log.info("%s: %d cached, %d to compute", desc, len(templates), len(todo))
    try:
        bar = tqdm(todo, desc=desc, unit="img", disable=not (progress and sys.stderr.isatty()))
        for i, name in enumerate(bar):
            path = images_root / name
            vector, how = compute(path)
            templates[name] = vector
            store.put(name, path, vector, how)
            how_counts[how] = how_counts.get(how, 0) + 1
            if i % 500 == 499:
                store.save()
    finally:
        store.save()
    return templates, how_counts


def lfw_templates(
    engine: Engine, images_root: Path, names: list[str], *, progress: bool = True, cache: bool = True,
    cache_dir: Path = DEFAULT_CACHE,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Templates for every relative image path in ``names`` and a count of how faces were found."""
    store = TemplateCache(cache_dir, f"{engine.profile.model_id}-{engine.profile.fingerprint}", images_root,
                          enabled=cache)
    fallback = YuNetDetector(score_threshold=0.3)

    def compute(path: Path) -> tuple[np.ndarray, str]:
        face, how = lfw_face(engine, engine.load(path), fallback)
        return engine.embed_faces([face])[0].vector, how

    return cached_templates(store, images_root, names, compute, progress=progress)


def engine_operating_points(engine: Engine) -> list[OperatingPoint]:
    """The profile's calibrated thresholds and the engine's threshold in use (see :func:`operating_points`)."""
    try:
        from_fmr = math.isclose(engine.profile.threshold(engine.fmr), engine.threshold, abs_tol=1e-6)
    except FaceprintError:  # no calibration covers engine.fmr: the threshold was given explicitly
        from_fmr = False
    return operating_points(engine.profile.thresholds, engine.threshold, engine.fmr if from_fmr else None)


def score_summary(mated: np.ndarray, non_mated: np.ndarray, threshold: float) -> dict:
    """Medians and tails of each class, and how each falls against ``threshold`` (JSON-ready).

    ``mated`` and ``non_mated`` are 1-D similarity arrays; rates are fractions in [0, 1].
    """
    mated, non_mated = np.asarray(mated, np.float64), np.asarray(non_mated, np.float64)
    return {
        "mated": {"count": int(mated.size), "median": round(float(np.median(mated)), 4),
                  "p01": round(float(np.percentile(mated, 1)), 4), "min": round(float(mated.min()), 4)},
        "non_mated": {"count": int(non_mated.size), "median": round(float(np.median(non_mated)), 4),
                      "p99": round(float(np.percentile(non_mated, 99)), 4), "max": round(float(non_mated.max()), 4)},
        "threshold": round(float(threshold), 4),
        "non_mated_at_or_above": int(np.sum(non_mated >= threshold)),
        "mated_below": int(np.sum(mated < threshold)),
    }


def run_lfw(
    engine: Engine, images_root: Path, pairs_file: Path, out_dir: Path, *, progress: bool = True,
    cache: bool = True,
) -> dict:
    """Run the LFW protocol; writes ``report.json``, ``det.png`` and ``scores.png`` in ``out_dir``.

    ``det.png`` is the DET (FNMR against FMR, log axes, from the rates the pairs resolve) with the
    profile's calibrated thresholds and the engine's threshold in use marked; ``scores.png`` the
    mated and non-mated score histograms with the same thresholds. Returns the report.

    Raises:
        FaceprintError: an image the pairs file names is missing under ``images_root``.
    """
    pairs = read_pairs(pairs_file)
    missing = missing_images(images_root, pairs)
    if missing:
        raise FaceprintError(
            f"{len(missing)} image(s) of {pairs_file} are missing under {images_root}, e.g. {missing[0]}"
        )
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    started = time.perf_counter()
    templates, how = lfw_templates(engine, images_root, names, progress=progress, cache=cache)
    elapsed = time.perf_counter() - started
    scores = pair_scores(pairs, templates)
    labels = np.array([p.same for p in pairs], dtype=bool)
    folds = np.array([p.fold for p in pairs])
    report = verification_report(scores, labels, folds)
    out_dir.mkdir(parents=True, exist_ok=True)
    points = engine_operating_points(engine)
    name = f"LFW {pairs_file.name}: profile {engine.profile.name}"
    plot = plot_det(scores, labels, out_dir / "det.png", name=engine.profile.name, points=points,
                    title=f"{name}, DET")
    histogram = plot_score_histogram(scores, labels, out_dir / "scores.png", points=points,
                                     title=f"{name}, scores of {labels.sum()} mated and {(~labels).sum()} "
                                           f"non-mated pairs")
    summary = score_summary(scores[labels], scores[~labels], engine.threshold)
    in_use = next(p for p in points if p.in_use)
    result = report.to_dict()
    result.update(
        {
            "profile": engine.profile.name,
            "model": engine.model_id,
            "pairs_file": str(pairs_file),
            "images": len(names),
            "face_found": how,
            "seconds": round(elapsed, 1),
            "scores": summary,
            "plot": str(plot),
            "histogram": str(histogram),
        }
    )
    lines = [f"LFW protocol on {pairs_file.name} ({len(pairs)} pairs, {len(names)} images), profile "
             f"'{engine.profile.name}' ({engine.model_id})"]
    lines += report.summary_lines()
    m, n = summary["mated"], summary["non_mated"]
    lines.append(f"scores (cosine)    mated median {m['median']:.3f} (1% below {m['p01']:.3f}), "
                 f"non-mated median {n['median']:.3f} (1% above {n['p99']:.3f})")
    lines.append(f"threshold in use   {engine.threshold:.4f} ({in_use.label.removeprefix('in use: ')}): "
                 f"non-mated at or above {summary['non_mated_at_or_above']}/{n['count']}, "
                 f"mated below {summary['mated_below']}/{m['count']}")
    lines.append("faces: " + ", ".join(f"{k} {v}" for k, v in sorted(how.items())))
    lines.append(f"plots: {plot} (DET), {histogram} (scores); figures: {out_dir / 'report.json'}")
    result["summary_lines"] = lines
    (out_dir / "report.json").write_text(json.dumps(result, indent=2))
    return result
