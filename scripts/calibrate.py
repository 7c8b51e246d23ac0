"""Choose the fusion weights and calibrate every profile's thresholds on LFW View 1 DevTrain.

Only DevTrain images are used (View 1's DevTest people are disjoint from them), so DevTest figures
reported by ``faceprint eval lfw`` stay unbiased. Writes ``faceprint/calibration.json``.

1. Templates of every profile asked for, and of each member of every fused one (run as a
   one-model profile with that member's flip and zooms), for every DevTrain image, through the same
   detection path as ``faceprint eval lfw``.
2. Every pair of DevTrain images: same person = mated, else impostor (about 2.2 thousand mated
   and 5.9 million impostor pairs).
3. Fusion weights of each fused profile's members: a grid over the simplex (``--step``, 0.01) of
   weighted sums of the per-member cosines, minimising FNMR at FMR 1e-3 over those pairs (ties:
   FNMR at 1e-4, then EER), with the impostor side subsampled to one million pairs for speed.
   Because each template block is a unit vector scaled by sqrt(weight), the weighted sum is
   exactly the dot product of the fused templates the profile makes.
4. For every profile asked for, the cosine threshold at FMR 1e-2 ... 1e-5 on the impostor pairs;
   the entries of the other profiles in calibration.json are kept as they are.

    python scripts/calibrate.py --images ../shared/data/lfw-view1/images \
        --pairs ../shared/data/lfw-view1/pairsDevTrain.txt --profiles accurate
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
from faceprint.pipeline.embedding import FusionPart

FMRS = (1e-2, 1e-3, 1e-4, 1e-5)
CALIBRATION = Path(__file__).resolve().parents[1] / "faceprint" / "calibration.json"


def member(profile: profiles.Profile, part: FusionPart) -> profiles.Profile:
    """Member ``part`` of fused ``profile`` as a one-model profile with the same flip and zooms."""
    return profiles.Profile(name=f"{profile.name}.{part.model}", model_id=f"{profile.model_id}.{part.model}",
                            parts=(FusionPart(part.model, 1.0, profile.flips(part), part.zooms),), flip=profile.flip)


def fnmr_at(mated: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """False non-match rate of the mated scores at the impostors' FMR threshold."""
    return float(np.mean(mated < threshold_at_fmr(impostor, fmr)))


def quick_fnmr(mated: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """:func:`fnmr_at` with the threshold from a partial sort: for the weight search only."""
    rank = len(impostor) - int(fmr * len(impostor)) - 1
    return float(np.mean(mated < np.partition(impostor, rank)[rank]))


def search_weights(cos: np.ndarray, same: np.ndarray, step: float) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Weights (summing to one) of the per-member cosines ``cos`` [pairs, members] that minimise
    (FNMR at FMR 1e-3, at 1e-4, EER) on those pairs, the impostors subsampled to one million."""
    mated = cos[same]
    impostor = cos[~same]
    impostor = impostor[np.random.default_rng(0).choice(len(impostor), min(1_000_000, len(impostor)), replace=False)]
    steps = int(round(1 / step))
    best = None
    for combo in itertools.product(range(steps + 1), repeat=cos.shape[1] - 1):
        if sum(combo) > steps:
            continue
        w = np.array([*combo, steps - sum(combo)], dtype=np.float32) / steps
        m, i = mated @ w, impostor @ w
        key = (quick_fnmr(m, i, 1e-3), quick_fnmr(m, i, 1e-4))
        if best is None or key < best[0]:
            best = (key, w)
    (fnmr3, fnmr4), w = best
    m, i = mated @ w, impostor @ w
    return w, (fnmr3, fnmr4, eer(np.r_[m, i], np.r_[np.ones(len(m)), np.zeros(len(i))])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True, help="pairsDevTrain.txt")
    parser.add_argument("--profiles", default=",".join(profiles.names()),
                        help="profiles to (re)calibrate, comma-separated (default: every current built-in one)")
    parser.add_argument("--step", type=float, default=0.01, help="grid step of the fusion weights")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write calibration.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    listed = read_pairs(args.pairs)
    names = sorted({p.a for p in listed} | {p.b for p in listed})
    people = np.array([n.split("/")[0] for n in names])
    upper = np.triu_indices(len(names), k=1)
    same = people[upper[0]] == people[upper[1]]
    print(f"{int(same.sum())} mated and {int((~same).sum())} impostor pairs of {len(names)} images")

    def templates(profile: profiles.Profile) -> np.ndarray:
        found, how = lfw_templates(Engine(profile, threshold=0.0), args.images, names)
        print(f"{profile.name}: {len(names)} templates ({how})")
        return np.stack([found[n] for n in names])

    calibration = json.loads(CALIBRATION.read_text()) if CALIBRATION.is_file() else {}
    for name in [n.strip() for n in args.profiles.split(",") if n.strip()]:
        profile = profiles.get(name)
        entry: dict = {}
        if len(profile.parts) > 1:
            cos = np.stack([(b @ b.T)[upper].astype(np.float32)
                            for b in (templates(member(profile, p)) for p in profile.parts)], axis=1)
            weights, (fnmr3, fnmr4, error) = search_weights(cos, same, args.step)
            entry["weights"] = {p.model: round(float(w), 4) for p, w in zip(profile.parts, weights, strict=True)}
            print(f"{name}: fusion weights {entry['weights']}: FNMR@FMR1e-3 {fnmr3:.4f}, @1e-4 {fnmr4:.4f}, "
                  f"EER {error:.4f} (1M impostor subsample)")
            scores = cos @ weights
        else:
            block = templates(profile)
            scores = (block @ block.T)[upper]
        impostor = scores[~same]
        print(f"{name}: FNMR@FMR1e-3 {fnmr_at(scores[same], impostor, 1e-3):.4f}")
        calibration[profile.model_id] = {
            "thresholds": {f"{f:g}": round(float(threshold_at_fmr(impostor, f)), 5) for f in FMRS},
            "calibrated_on": f"LFW View 1 DevTrain: {len(impostor)} impostor pairs of {len(names)} images",
            **entry,
        }
    text = json.dumps(calibration, indent=2)
    print(text)
    if not args.dry_run:
        CALIBRATION.write_text(text + "\n")
        print(f"wrote {CALIBRATION}")

if __name__ == "__main__":
    main()
