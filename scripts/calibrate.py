"""Choose the fusion weights and calibrate every profile's thresholds on LFW View 1 DevTrain.

Only DevTrain images are used (View 1's DevTest people are disjoint from them), so DevTest figures
reported by ``faceprint eval lfw`` stay unbiased. Writes ``faceprint/calibration.json``.

1. Templates of each single-model profile (sface, facenet, dlib; flip on) and of "fast" for
   every DevTrain image, through the same detection path as ``faceprint eval lfw``.
2. Every pair of DevTrain images: same person = mated, else impostor (about 2.2 thousand mated
   and 5.9 million impostor pairs).
3. Fusion weights of the "accurate" profile's embedders: a grid over the simplex (step 0.05) of
   weighted sums of the per-model cosines, minimising FNMR at FMR 1e-3 over those pairs (ties:
   FNMR at 1e-4, then EER), with the impostor side subsampled to one million pairs for speed.
   Because each template block is a unit vector scaled by sqrt(weight), the weighted sum is
   exactly the dot product of the fused templates the "accurate" profile makes.
4. For every profile, the cosine threshold at FMR 1e-2 ... 1e-5 on the impostor pairs.

    python scripts/calibrate.py --images ../shared/data/lfw-view1/images \
        --pairs ../shared/data/lfw-view1/pairsDevTrain.txt
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from faceprint import profiles
from faceprint.engine import Engine
from faceprint.evaluation.lfw import read_pairs
from faceprint.evaluation.metrics import eer, threshold_at_fmr
from faceprint.evaluation.runner import lfw_templates

FMRS = (1e-2, 1e-3, 1e-4, 1e-5)
SINGLE = ("sface", "facenet", "dlib")
FUSED = tuple(part.model for part in profiles.get("accurate").parts)
CALIBRATION = Path(__file__).resolve().parents[1] / "faceprint" / "calibration.json"


def all_pair_scores(matrix: np.ndarray, people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of every unordered pair of rows, split into (mated, impostor)."""
    sims = matrix @ matrix.T
    upper = np.triu_indices(len(people), k=1)
    same = people[upper[0]] == people[upper[1]]
    scores = sims[upper]
    return scores[same], scores[~same]


def fnmr_at(mated: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """False non-match rate of the mated scores at the impostors' FMR threshold."""
    return float(np.mean(mated < threshold_at_fmr(impostor, fmr)))


def quick_fnmr(mated: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """:func:`fnmr_at` with the threshold from a partial sort: for the weight search only."""
    rank = len(impostor) - int(fmr * len(impostor)) - 1
    return float(np.mean(mated < np.partition(impostor, rank)[rank]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True, help="pairsDevTrain.txt")
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write calibration.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    names = sorted({p.a for p in read_pairs(args.pairs)} | {p.b for p in read_pairs(args.pairs)})
    people = np.array([n.split("/")[0] for n in names])
    blocks = {}
    for profile in (*SINGLE, "fast"):
        engine = Engine(profile, threshold=0.0)
        templates, how = lfw_templates(engine, args.images, names)
        blocks[profile] = np.stack([templates[n] for n in names])
        print(f"{profile}: {len(names)} templates ({how})")

    pair_sets = {p: all_pair_scores(blocks[p], people) for p in blocks}
    mated_n, impostor_n = len(pair_sets["sface"][0]), len(pair_sets["sface"][1])
    print(f"{mated_n} mated and {impostor_n} impostor pairs")
    for p, (m, i) in pair_sets.items():
        print(f"  {p:<8} FNMR@FMR1e-3 {fnmr_at(m, i, 1e-3):.4f}")

    # Per-model cosines of every pair, for the weight search (float32 to fit in memory).
    upper = np.triu_indices(len(names), k=1)
    same = people[upper[0]] == people[upper[1]]
    cos = np.stack([(blocks[p] @ blocks[p].T)[upper].astype(np.float32) for p in FUSED], axis=1)
    mated = cos[same]
    impostor = cos[~same][np.random.default_rng(0).choice(int((~same).sum()), 1_000_000, replace=False)]
    steps = int(round(1 / args.step))
    best = None
    for combo in itertools.product(range(steps + 1), repeat=len(FUSED) - 1):
        if sum(combo) > steps:
            continue
        w = np.array([*combo, steps - sum(combo)], dtype=np.float32) / steps
        m, i = mated @ w, impostor @ w
        key = (quick_fnmr(m, i, 1e-3), quick_fnmr(m, i, 1e-4), eer(np.r_[m, i], np.r_[np.ones(len(m)), np.zeros(len(i))])[0])
        if best is None or key < best[0]:
            best = (key, w)
    (best_fnmr, best_fnmr4, best_eer), weights = best
    print(f"fusion weights {dict(zip(FUSED, weights.round(3)))}: FNMR@FMR1e-3 {best_fnmr:.4f}, "
          f"@1e-4 {best_fnmr4:.4f}, EER {best_eer:.4f} (1M impostor subsample)")

    fused = cos @ weights
    pair_sets["accurate"] = (fused[same], fused[~same])
    calibration = {}
    for profile, (_, impostor) in pair_sets.items():
        entry = {
            "thresholds": {f"{f:g}": round(float(threshold_at_fmr(impostor, f)), 5) for f in FMRS},
            "calibrated_on": f"LFW View 1 DevTrain: {impostor_n} impostor pairs of {len(names)} images",
        }
        if profile == "accurate":
            entry["weights"] = {m: round(float(w), 4) for m, w in zip(FUSED, weights)}
        calibration[f"faceprint-{profile}-v1"] = entry
    text = json.dumps(calibration, indent=2)
    print(text)
    if not args.dry_run:
        CALIBRATION.write_text(text + "\n")
        print(f"wrote {CALIBRATION}")


if __name__ == "__main__":
    main()
