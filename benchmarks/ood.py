"""Out-of-domain check: fit it on LFW faces and measure how often it rejects non-face templates.

    python benchmarks/ood.py                 # measure the shipped checks (fast and accurate)
    python benchmarks/ood.py --fit           # refit faceprint/models/weights/ood_<profile>.npz first

Face templates come from the LFW template cache (``faceprint eval lfw`` fills it). The check is fitted
on half of the DevTrain people and its threshold set at a 1% false-reject rate on the other half.
False rejects are measured on every DevTest image (people disjoint from DevTrain) and on the faces
of ``pairs-small`` (another domain: phone photos, group shots). Non-faces, each embedded by
running the profile's embedders directly on the crop as if it were an aligned face:

* ``lfw-corners``: the four 70x70 corners of DevTest images (background, shoulders, hair);
* ``pairs-small-corners``: the four corners (a quarter of the short side) of pairs-small photos;
* ``uniform-noise``, ``smooth-noise`` (upsampled Gaussian noise), ``flat-colour``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from bench_common import REPO_ROOT, log

from faceprint.engine import Engine
from faceprint.errors import FaceprintError
from faceprint.evaluation.lfw import read_pairs
from faceprint.evaluation.runner import lfw_templates
from faceprint.pipeline.image_io import load_image
from faceprint.privacy.ood import OodCheck, embed_as_aligned, weights_path

DATA = REPO_ROOT / ".." / "shared" / "data"


def pair_names(pairs_file: Path) -> list[str]:
    """Every image named in an LFW pairs file, sorted."""
    pairs = read_pairs(pairs_file)
    return sorted({p.a for p in pairs} | {p.b for p in pairs})


def non_face_crops(data: Path, lfw_names: list[str], n_images: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Named sets of RGB uint8 non-face crops."""
    rng = np.random.default_rng(seed)
    crops: dict[str, list[np.ndarray]] = {"lfw-corners": [], "pairs-small-corners": []}
    for i in rng.choice(len(lfw_names), min(n_images, len(lfw_names)), replace=False):
        image = load_image(data / "lfw-view1" / "images" / lfw_names[i])
        h, w = image.shape[:2]
        for y, x in [(0, 0), (0, w - 70), (h - 70, 0), (h - 70, w - 70)]:
            crops["lfw-corners"].append(image[y:y + 70, x:x + 70])
    for path in sorted((data / "pairs-small").glob("*.jpg"))[: n_images // 2]:
        image = load_image(path)
        h, w = image.shape[:2]
        s = min(h, w) // 4
        for y, x in [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s)]:
            crops["pairs-small-corners"].append(image[y:y + s, x:x + s])
    crops["uniform-noise"] = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(n_images)]
    smooth = []
    for _ in range(n_images):
        z = cv2.resize(rng.normal(size=(14, 14, 3)), (112, 112), interpolation=cv2.INTER_CUBIC)
        smooth.append(((z - z.min()) / (z.max() - z.min()) * 255).astype(np.uint8))
    crops["smooth-noise"] = smooth
    crops["flat-colour"] = [np.full((112, 112, 3), rng.integers(0, 256, 3), dtype=np.uint8)
                            for _ in range(n_images // 2)]
    return crops


def other_domain_faces(engine: Engine, data: Path) -> np.ndarray:
    """Templates of the largest usable face in each pairs-small photo (photos without one are skipped)."""
    vectors = []
    for path in sorted((data / "pairs-small").glob("*.jpg")):
        try:
            vectors.append(engine.embed(path, largest=True).vector)
        except FaceprintError:
            continue
    return np.stack(vectors)


def fit(engine: Engine, train: dict[str, np.ndarray], seed: int) -> OodCheck:
    """Fit on half of the DevTrain people, threshold on the other half."""
    people = sorted({name.split("/")[0] for name in train})
    chosen = set(np.random.default_rng(seed).permutation(people)[: len(people) // 2].tolist())
    fit_set = np.stack([v for n, v in train.items() if n.split("/")[0] in chosen])
    calib = np.stack([v for n, v in train.items() if n.split("/")[0] not in chosen])
    return OodCheck.fit(engine.model_id, fit_set, calib,
                        fitted_on=f"LFW View 1 DevTrain: fit {len(fit_set)} images, threshold {len(calib)} images")


def run_profile(profile: str, args: argparse.Namespace) -> list[dict]:
    """Rows of the table for one profile."""
    engine = Engine(profile)
    view1 = args.data / "lfw-view1"
    if args.fit:
        names = pair_names(view1 / "pairsDevTrain.txt")
        train, _ = lfw_templates(engine, view1 / "images", names, progress=False)
        check = fit(engine, train, args.seed)
        log(f"{profile}: wrote {check.save(weights_path(profile))} (threshold {check.threshold:.2f})")
    check = OodCheck.for_profile(profile, engine.model_id)
    test_names = pair_names(view1 / "pairsDevTest.txt")
    test, _ = lfw_templates(engine, view1 / "images", test_names, progress=False)
    started = time.perf_counter()
    sets = {"lfw-devtest-faces": np.stack(list(test.values())), "pairs-small-faces": other_domain_faces(engine, args.data)}
    for name, crops in non_face_crops(args.data, test_names, args.images, args.seed).items():
        sets[name] = embed_as_aligned(engine.recognizer, crops)
    log(f"{profile}: embedded the test sets in {time.perf_counter() - started:.0f} s")
    rows = []
    non_face = []
    for name, vectors in sets.items():
        scores = check.scores(vectors)
        rejected = scores > check.threshold
        is_face = name.endswith("-faces")
        if not is_face:
            non_face.append(rejected)
        rows.append({"profile": profile, "set": name, "kind": "face" if is_face else "non-face",
                     "n": len(vectors), "rejected": float(rejected.mean()),
                     "scores": [round(float(scores.min()), 1), round(float(scores.max()), 1)]})
    allnf = np.concatenate(non_face)
    spread = [r["scores"] for r in rows if r["kind"] == "non-face"]
    rows.append({"profile": profile, "set": "all non-faces", "kind": "non-face", "n": len(allnf),
                 "rejected": float(allnf.mean()), "scores": [min(lo for lo, _ in spread), max(hi for _, hi in spread)]})
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", default="fast,accurate", help="comma-separated profiles (default fast,accurate)")
    ap.add_argument("--fit", action="store_true", help="refit and overwrite the shipped ood_<profile>.npz first")
    ap.add_argument("--images", type=int, default=60, help="LFW images whose corners are cropped (default 60)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = [row for profile in args.profiles.split(",") for row in run_profile(profile.strip(), args)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| profile | set | kind | n | rejected as non-face | distance min - max (threshold) |")
    print("|---|---|---|---|---|---|")
    thresholds = {p: OodCheck.for_profile(p).threshold for p in {r["profile"] for r in rows}}
    for r in rows:
        what = "false reject" if r["kind"] == "face" else "true reject"
        low, high = r["scores"]
        print(f"| {r['profile']} | {r['set']} | {r['kind']} | {r['n']} | {100 * r['rejected']:.1f}% ({what}) "
              f"| {low:.1f} - {high:.1f} ({thresholds[r['profile']]:.1f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
