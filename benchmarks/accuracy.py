#!/usr/bin/env python3
"""Accuracy of faceprint profiles next to face_recognition's own pipeline, on an LFW pairs file.

    python benchmarks/accuracy.py                                 # View 1 DevTest, every profile + peer
    python benchmarks/accuracy.py --profiles fast --skip-peer --limit-pairs 40

Same images, same pairs, same protocol for every row, in one run:

* faceprint, per profile: ``faceprint.evaluation.runner.lfw_templates`` (YuNet, the face nearest
  the image centre; a rerun at detector threshold 0.3 where nothing is found; else the mean LFW
  landmarks, counted as "assumed-centre"); score = cosine similarity of the templates.
* face_recognition (the peer): ``face_locations(img)`` (HOG, upsample 1), the location nearest the
  image centre (the rule of ``faceprint.pipeline.detection.central_face``); where HOG finds nothing, the
  centre box ``(h*0.24, w*0.76, h*0.76, w*0.24)``, counted as "assumed-centre";
  ``face_encodings(img, [location])`` (5-point landmarks, 1 jitter); score = -Euclidean distance,
  so that higher means more similar and the same metrics apply. Its accuracy at its documented
  fixed tolerance (same person if distance <= 0.6) is reported too.

Every row: ``verification_report`` - 10-fold accuracy (each fold's threshold chosen on the other
nine), TMR at FMR 1e-3 and 1e-2 (n/a where there are too few impostor pairs to measure them), EER,
AUC - and how faces were found. Templates of both are cached under ~/.cache/faceprint/templates
(keyed by model, image folder, relative path, size and mtime), so reruns are quick.

``--limit-pairs N`` keeps N/2 same and N/2 different pairs for quick runs: the first pairs of
each fold, taken round-robin over the folds, so every pair keeps its own fold and all folds stay
populated (the plain first N/2 of a View 1 file would all be fold 0).

The peer is optional: ``pip install --no-deps -r requirements-bench.txt``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import PEER, PEER_INSTALL, REPO_ROOT, log, unavailable_row, versions

DEFAULT_IMAGES = "../shared/data/lfw-view1/images"
DEFAULT_PAIRS = "../shared/data/lfw-view1/pairsDevTest.txt"
DEFAULT_OUT = "out/bench/accuracy"
DEFAULT_PROFILES = "accurate,fast,sface,facenet,dlib"
PEER_MODEL_ID = "face_recognition-1.3.0-hog"
PEER_TOLERANCE = 0.6
HOW_ORDER = ("detected", "detected-low-threshold", "assumed-centre")




# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


def limit_pairs(pairs: list, n: int) -> list:
    """``n // 2`` same and ``n - n // 2`` different pairs: the first of each fold, round-robin.

    Pairs keep their ``fold``; the result is in the original file order.
    """
    if n <= 0 or n >= len(pairs):
        return list(pairs)
    keep: set[int] = set()
    for same, quota in ((True, n // 2), (False, n - n // 2)):
        by_fold: dict[int, list[int]] = {}
        for i, p in enumerate(pairs):
            if p.same == same:
                by_fold.setdefault(p.fold, []).append(i)
        folds = sorted(by_fold)
        taken, depth = 0, 0
        while taken < quota and any(depth < len(by_fold[f]) for f in folds):
            for f in folds:
                if taken < quota and depth < len(by_fold[f]):
                    keep.add(by_fold[f][depth])
                    taken += 1
            depth += 1
    return [p for i, p in enumerate(pairs) if i in keep]


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


def faceprint_templates(profile: str, images_root: Path, names: list[str], cache_dir: Path,
                        cache: bool) -> tuple[dict, dict, str, dict]:
    """(templates, how-found counts, model id, profile description) of one faceprint profile."""
    from faceprint import Engine
    from faceprint.evaluation.runner import lfw_templates

    # The 10-fold protocol picks its own thresholds; an explicit one keeps calibration out of the way.
    engine = Engine(profile, threshold=0.0)
    templates, how = lfw_templates(engine, images_root, names, progress=True, cache=cache, cache_dir=cache_dir)
    return templates, how, engine.model_id, engine.profile.to_dict()


def peer_central(locations: list, shape: tuple) -> tuple | None:
    """The (top, right, bottom, left) box chosen as faceprint.pipeline.detection.central_face chooses."""
    cx, cy = shape[1] / 2.0, shape[0] / 2.0

    def cost(loc):
        top, right, bottom, left = loc
        w, h = right - left, bottom - top
        d = ((left + w / 2.0 - cx) ** 2 + (top + h / 2.0 - cy) ** 2) ** 0.5
        return d - 0.5 * max(w * h, 0) ** 0.5

    return min(locations, key=cost) if locations else None


def peer_templates(images_root: Path, names: list[str], cache_dir: Path, cache: bool) -> tuple[dict, dict]:
    """face_recognition encodings (128-d, not normalised) and how-found counts.

    Raises ImportError or SystemExit when face_recognition (or its models) is not installed.
    """
    import face_recognition  # its import calls quit() when face_recognition_models is missing

    from faceprint.evaluation.runner import TemplateCache, cached_templates

    store = TemplateCache(cache_dir, PEER_MODEL_ID, images_root, enabled=cache)

    def compute(path: Path) -> tuple[np.ndarray, str]:
        image = face_recognition.load_image_file(str(path))
        h, w = image.shape[:2]
        # face_recognition's defaults, spelled out: HOG, upsample once; 1 jitter, 5-point landmarks.
        location = peer_central(
            face_recognition.face_locations(image, number_of_times_to_upsample=1, model="hog"), image.shape)
        how = "detected"
        if location is None:
            location = (round(h * 0.24), round(w * 0.76), round(h * 0.76), round(w * 0.24))
            how = "assumed-centre"
        encodings = face_recognition.face_encodings(image, [location], num_jitters=1, model="small")
        if len(encodings) != 1 or len(encodings[0]) != 128:
            raise RuntimeError(f"face_recognition returned no 128-d encoding for {path}")
        return np.asarray(encodings[0], dtype=np.float64), how

    return cached_templates(store, images_root, names, compute, desc=PEER)


def peer_distances(pairs: list, templates: dict) -> np.ndarray:
    """Euclidean distance of the two encodings of each pair."""
    return np.array([float(np.linalg.norm(templates[p.a] - templates[p.b])) for p in pairs], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def all_pairs(names: list[str], templates: dict, euclidean: bool = False) -> dict:
    """NIST-style FNMR at fixed FMR over EVERY pair of the images (not only the listed pairs).

    Same person name = mated pair, else impostor; the FMR threshold is set on the impostors.
    On View 1 DevTest: about 1 thousand mated and 1.2 million impostor pairs, so FMR 1e-3 and
    1e-4 are resolved, where the 500 listed impostor pairs cannot resolve either.
    """
    from faceprint.evaluation.metrics import threshold_at_fmr

    x = np.stack([templates[n] for n in names]).astype(np.float64)
    if euclidean:
        sq = (x * x).sum(1)
        sims = -np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    else:
        sims = x @ x.T
    people = np.array([n.split("/")[0] for n in names])
    upper = np.triu_indices(len(names), k=1)
    same = people[upper[0]] == people[upper[1]]
    scores = sims[upper]
    mated, impostor = scores[same], scores[~same]
    out = {"mated": int(same.sum()), "impostor": int((~same).sum())}
    for fmr, key in ((1e-3, "fnmr_at_fmr_1e3"), (1e-4, "fnmr_at_fmr_1e4")):
        out[key] = float(np.mean(mated < threshold_at_fmr(impostor, fmr))) if len(impostor) * fmr >= 10 else None
    return out


def report_row(row: dict, scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict:
    from faceprint.evaluation.metrics import verification_report

    report = verification_report(scores, labels, folds)
    row.update(status="ok", **report.to_dict())
    return row


def measure_profile(profile: str, pairs: list, names: list[str], images_root: Path,
                    args) -> tuple[dict, np.ndarray | None]:
    from faceprint.evaluation.lfw import pair_scores

    row: dict = {"pipeline": f"faceprint {profile}", "key": profile, "kind": "faceprint"}
    log(f"[accuracy] faceprint {profile}: templates for {len(names)} images")
    started = time.perf_counter()
    try:
        templates, how, model_id, description = faceprint_templates(
            profile, images_root, names, args.cache_dir, not args.no_cache)
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        return row, None
    row.update(model=model_id, profile=description, face_found=how,
               seconds=round(time.perf_counter() - started, 1), score="cosine similarity",
               all_pairs=all_pairs(names, templates))
    scores = pair_scores(pairs, templates)
    labels = np.array([p.same for p in pairs], dtype=bool)
    folds = np.array([p.fold for p in pairs])
    return report_row(row, scores, labels, folds), scores


def measure_peer(pairs: list, names: list[str], images_root: Path, args) -> tuple[dict, np.ndarray | None]:
    row: dict = {"pipeline": f"{PEER} (HOG, 5-pt, 1 jitter)", "key": PEER, "kind": "peer"}
    log(f"[accuracy] {PEER}: encodings for {len(names)} images")
    started = time.perf_counter()
    try:
        templates, how = peer_templates(images_root, names, args.cache_dir, not args.no_cache)
    except (ImportError, SystemExit) as exc:
        row.update(status="not installed", error=f"{type(exc).__name__}: {exc}")
        return row, None
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        return row, None
    distances = peer_distances(pairs, templates)
    labels = np.array([p.same for p in pairs], dtype=bool)
    folds = np.array([p.fold for p in pairs])
    row.update(model=PEER_MODEL_ID, face_found=how, seconds=round(time.perf_counter() - started, 1),
               score="-Euclidean distance (thresholds below are negated distances)",
               all_pairs=all_pairs(names, templates, euclidean=True))
    scores = -distances
    report_row(row, scores, labels, folds)
    row["fixed_tolerance"] = PEER_TOLERANCE
    row["accuracy_at_fixed_tolerance"] = float(np.mean((distances <= PEER_TOLERANCE) == labels))
    row["fold_distance_thresholds"] = [-t for t in row["fold_thresholds"]]
    row["eer_distance"] = -row["eer_threshold"]
    return row, scores


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100.0 * v:.2f}%"


def faces_cell(how: dict | None) -> str:
    if not how:
        return "—"
    keys = [k for k in HOW_ORDER if k in how] + sorted(k for k in how if k not in HOW_ORDER)
    return ", ".join(f"{k} {how[k]}" for k in keys)


def table(rows: list[dict]) -> str:
    head = ["pipeline", "10-fold accuracy", "TMR@FMR=1e-3", "TMR@FMR=1e-2", "EER", "AUC",
            "all pairs: FNMR@FMR=1e-3", "all pairs: FNMR@FMR=1e-4", "faces found"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * 7 + ["---"]) + "|"]
    for r in rows:
        missing = unavailable_row(r, len(head))
        if missing is not None:
            lines.append(missing)
            continue
        lines.append("| " + " | ".join([
            r["pipeline"],
            f"{100.0 * r['accuracy_mean']:.2f}% ± {100.0 * r['accuracy_std']:.2f}",
            pct(r["tmr_at_fmr_1e3"]), pct(r["tmr_at_fmr_1e2"]), pct(r["eer"]), f"{r['auc']:.4f}",
            pct(r["all_pairs"]["fnmr_at_fmr_1e3"]), pct(r["all_pairs"]["fnmr_at_fmr_1e4"]),
            faces_cell(r.get("face_found")),
        ]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from faceprint.evaluation.runner import DEFAULT_CACHE

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=DEFAULT_IMAGES,
                    help=f"LFW image folder (default {DEFAULT_IMAGES}, relative to the repo root)")
    ap.add_argument("--pairs", default=DEFAULT_PAIRS,
                    help=f"LFW pairs file, View 1 or View 2 (default {DEFAULT_PAIRS}, relative to the repo root)")
    ap.add_argument("--profiles", default=DEFAULT_PROFILES, help="faceprint profiles, comma-separated")
    ap.add_argument("--skip-peer", action="store_true", help=f"do not run {PEER}")
    ap.add_argument("--limit-pairs", type=int, default=0,
                    help="keep N/2 same and N/2 different pairs, the first of each fold (0 = all)")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help=f"output folder for accuracy.json and roc_det.png (default {DEFAULT_OUT} in the repo)")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"template cache (default {DEFAULT_CACHE})")
    ap.add_argument("--no-cache", action="store_true", help="compute every template, read and write no cache")
    return ap.parse_args(argv)


def repo_path(value: str, default: str) -> Path:
    """``value`` as given, except that the defaults are relative to the repository root."""
    path = Path(value)
    if not path.is_absolute() and value == default:
        path = REPO_ROOT / path
    return path.resolve()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from faceprint.evaluation.lfw import missing_images, read_pairs
    from faceprint.evaluation.plots import plot_roc_det

    images_root = repo_path(args.images, DEFAULT_IMAGES)
    pairs_file = repo_path(args.pairs, DEFAULT_PAIRS)
    out_dir = repo_path(args.out, DEFAULT_OUT)
    if not images_root.is_dir():
        log(f"[accuracy] no image folder {images_root}")
        return 2
    if not pairs_file.is_file():
        log(f"[accuracy] no pairs file {pairs_file}")
        return 2
    all_pairs = read_pairs(pairs_file)
    pairs = limit_pairs(all_pairs, args.limit_pairs)
    missing = missing_images(images_root, pairs)
    if missing:
        log(f"[accuracy] {len(missing)} image(s) of {pairs_file} missing under {images_root}, e.g. {missing[0]}")
        return 2
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    n_same = sum(p.same for p in pairs)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]

    meta = {
        "pairs_file": str(pairs_file),
        "images_root": str(images_root),
        "pairs": {"used": len(pairs), "same": n_same, "different": len(pairs) - n_same,
                  "in_file": len(all_pairs), "folds": len({p.fold for p in pairs}),
                  "selection": (f"first {args.limit_pairs} (round-robin over folds)"
                                if 0 < args.limit_pairs < len(all_pairs) else "all")},
        "images": len(names),
        "versions": versions(),
        "protocol": "10-fold: each fold's threshold maximises accuracy on the other folds; "
                    "accuracy is mean ± std (ddof=0) over the folds",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    rows: list[dict] = []
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    labels = np.array([p.same for p in pairs], dtype=bool)
    for profile in profiles:
        row, scores = measure_profile(profile, pairs, names, images_root, args)
        rows.append(row)
        if scores is not None:
            curves[row["pipeline"]] = (scores, labels)
    if not args.skip_peer:
        row, scores = measure_peer(pairs, names, images_root, args)
        rows.append(row)
        if scores is not None:
            curves[f"{PEER} (-distance)"] = (scores, labels)

    out_dir.mkdir(parents=True, exist_ok=True)
    plot = None
    if curves:
        plot = plot_roc_det(curves, out_dir / "roc_det.png",
                            title=f"LFW {pairs_file.name}: {len(pairs)} pairs, {len(names)} images")
    meta["plot"] = str(plot) if plot else None

    v = meta["versions"]
    lines = [
        f"Pairs: {pairs_file} ({len(pairs)} pairs: {n_same} same, {len(pairs) - n_same} different"
        + (f"; {meta['pairs']['selection']} of {len(all_pairs)}" if meta["pairs"]["selection"] != "all" else "")
        + f"; {meta['pairs']['folds']} folds)",
        f"Images: {len(names)} from {images_root}",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "Accuracy: 10-fold mean ± std, each fold's threshold chosen on the other folds. "
        "faceprint scores are cosine similarities; face_recognition's are -Euclidean distance.",
        "",
        table(rows),
        "",
    ]
    ok = [r for r in rows if r["status"] == "ok"]
    notes = sorted({f"{k}: {v}" for r in ok for k, v in r.get("notes", {}).items()})
    for note in notes:
        lines.append(f"- n/a {note}")
    for r in rows:
        if r["status"] == "ok" and r["kind"] == "peer":
            lines.append(f"- {r['pipeline']} at its documented fixed tolerance (same if distance <= "
                         f"{PEER_TOLERANCE}): accuracy {pct(r['accuracy_at_fixed_tolerance'])}; "
                         f"EER at distance {r['eer_distance']:.3f}")
        elif r["status"] == "not installed":
            lines.append(f"- {r['pipeline']}: not installed ({r['error']}); install with: {PEER_INSTALL}")
        elif r["status"] != "ok":
            lines.append(f"- {r['pipeline']}: failed: {r['error'][:500]}")
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        lines.append(f"- all pairs: every pair of the {len(names)} images ({ok[0]['all_pairs']['mated']} mated, "
                     f"{ok[0]['all_pairs']['impostor']} impostor), threshold set on the impostors at that FMR")
    lines.append("- faces found: 'detected' at the detector's normal threshold; 'detected-low-threshold': "
                 "YuNet rerun at 0.3; 'assumed-centre': nothing found, a fixed central face assumed")
    lines.append(f"Plot: {plot}; figures: {out_dir / 'accuracy.json'}")
    print("\n".join(lines))

    (out_dir / "accuracy.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    log(f"[accuracy] wrote {out_dir / 'accuracy.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
