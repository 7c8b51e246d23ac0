"""Cancelable templates: what the keyed transform costs in accuracy, and that two keys do not match.

    python benchmarks/cancelable.py                     # fast and accurate profiles, LFW View 1 DevTest
    python benchmarks/cancelable.py --profiles fast

Templates come from the LFW template cache (``faceprint eval lfw`` fills it; missing ones are
computed). For each profile and each transform (none, ``rotate``, ``sign``), under key A:

* 10-fold accuracy and TMR at FMR 1e-2 on the 1000 DevTest pairs (the LFW protocol);
* FNMR at FMR 1e-3 over ALL DevTest image pairs (every same-person pair is genuine, every
  different-person pair an impostor: about a million, enough to resolve 1e-3);
* across keys: templates of key A against templates of key B (and raw templates against key A),
  scored at the profile's calibrated threshold for FMR 1e-3: the rate at which the SAME person
  matches (should be about the FMR, i.e. no better than chance) and the impostor FMR.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from bench_common import REPO_ROOT, log

from faceprint.engine import Engine
from faceprint.evaluation.lfw import pair_scores, read_pairs
from faceprint.evaluation.metrics import threshold_at_fmr, verification_report
from faceprint.evaluation.runner import lfw_templates
from faceprint.privacy.cancelable import CancelableTransform
from faceprint.privacy.crypto import GalleryKey

DATA = REPO_ROOT / ".." / "shared" / "data"
KEY_A = GalleryKey(bytes(range(32)))
KEY_B = GalleryKey(bytes(range(32, 64)))


def all_pairs(names: list[str], vectors_a: np.ndarray, vectors_b: np.ndarray, to_cosine) -> tuple[np.ndarray, np.ndarray]:
    """(genuine scores, impostor scores) over every unordered pair of distinct images."""
    people = np.array([n.split("/")[0] for n in names])
    scores = to_cosine(vectors_a @ vectors_b.T)
    iu = np.triu_indices(len(names), k=1)
    same = people[iu[0]] == people[iu[1]]
    s = scores[iu]
    return s[same], s[~same]


def measure(profile: str, data: Path) -> list[dict]:
    """One row per transform for ``profile``."""
    engine = Engine(profile)
    view1 = data / "lfw-view1"
    pairs = read_pairs(view1 / "pairsDevTest.txt")
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    templates, _ = lfw_templates(engine, view1 / "images", names, progress=False)
    raw = np.stack([templates[n] for n in names]).astype(np.float32)
    labels = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    threshold = engine.profile.threshold(1e-3)
    rows = []
    for mode in (None, "rotate", "sign"):
        if mode is None:
            t_a = t_b = None
            a, b, to_cos = raw, raw, (lambda s: s)
        else:
            t_a, t_b = CancelableTransform(KEY_A, mode), CancelableTransform(KEY_B, mode)
            a, b, to_cos = t_a.apply(raw), t_b.apply(raw), t_a.to_cosine
        by_name = dict(zip(names, a))
        report = verification_report(to_cos(pair_scores(pairs, by_name)), labels, folds)
        genuine, impostor = all_pairs(names, a, a, to_cos)
        thr = threshold_at_fmr(impostor, 1e-3)
        row = {"profile": profile, "transform": mode or "none", "accuracy": report.accuracy_mean,
               "tmr_at_fmr_1e2_pairs": report.tmr_at_fmr_1e2, "fnmr_at_fmr_1e3_all": float(np.mean(genuine < thr)),
               "fmr_at_calibrated_threshold": float(np.mean(impostor >= threshold)),
               "genuine_pairs": len(genuine), "impostor_pairs": len(impostor),
               "threshold_fmr_1e3": threshold}
        if mode is not None:
            cross_g, cross_i = all_pairs(names, a, b, to_cos)
            same_img = to_cos(np.sum(a * b, axis=1))  # the very same image under key A and key B
            raw_g, _ = all_pairs(names, raw, a, to_cos)
            row.update({
                "cross_key_same_image_match": float(np.mean(same_img >= threshold)),
                "cross_key_same_person_match": float(np.mean(cross_g >= threshold)),
                "cross_key_impostor_fmr": float(np.mean(cross_i >= threshold)),
                "cross_key_score_mean": float(np.mean(cross_g)), "cross_key_score_std": float(np.std(cross_g)),
                "raw_vs_key_same_person_match": float(np.mean(raw_g >= threshold)),
            })
        rows.append(row)
        log(f"{profile}/{mode or 'none'}: accuracy {report.accuracy_mean:.4f}")
    return rows


def pct(value: float | None, digits: int = 2) -> str:
    """A percentage or n/a."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def main(argv: list[str] | None = None) -> int:
    """Run and print a markdown table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", default="fast,accurate")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [r for p in args.profiles.split(",") for r in measure(p.strip(), args.data)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| profile | transform | accuracy (10-fold) | TMR@FMR1e-2 (pairs) | FNMR@FMR1e-3 (all pairs) "
          "| FMR at the calibrated 1e-3 threshold "
          "| key A vs B: same image matches | same person matches | impostor FMR | same-person score mean +/- std "
          "| raw vs key A: same person matches |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cross = ["-"] * 5
        if r["transform"] != "none":
            cross = [pct(r["cross_key_same_image_match"], 3), pct(r["cross_key_same_person_match"], 3),
                     pct(r["cross_key_impostor_fmr"], 3),
                     f"{r['cross_key_score_mean']:.3f} +/- {r['cross_key_score_std']:.3f}",
                     pct(r["raw_vs_key_same_person_match"], 3)]
        print(f"| {r['profile']} | {r['transform']} | {pct(r['accuracy'])} | {pct(r['tmr_at_fmr_1e2_pairs'])} "
              f"| {pct(r['fnmr_at_fmr_1e3_all'])} | {pct(r['fmr_at_calibrated_threshold'], 3)} | "
              + " | ".join(cross) + " |")
    print(f"\n{rows[0]['genuine_pairs']} genuine and {rows[0]['impostor_pairs']} impostor pairs per profile "
          "(all DevTest image pairs); cross-key rates at the profile's calibrated FMR 1e-3 threshold.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
