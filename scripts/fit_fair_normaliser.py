"""Fit the fair score normaliser that ``Engine(fair=True)`` / ``--fair`` ships, and measure it before and after.

Data (no test image is used for fitting):

* fit: ``--fit-utk`` images (default 4,000) drawn with ``--seed`` from the UTKFace **training**
  chips (``../shared/data/age/utkface-train``: every image whose name or picture matches an
  evaluation image was removed from it), each taken as a different person, plus every image of
  LFW View 1 **DevTrain** (3,443 images, their identities from the folder names);
* held out: the UTKFace sample (``../shared/data/age/utkface-sample``, 1,000 images; per-group FMR,
  and the proxy FNMR of each image against a degraded copy of itself) and LFW View 1 **DevTest**
  (500 mated pairs and every pair of different people for FMR, FNMR and 10-fold accuracy).

Two methods fit per-cluster offsets on the same 20 spherical k-means clusters of the fit set
(:mod:`faceprint.evaluation.fair_thresholds`): FSN (Terhörst et al. 2020) and the centroid
regression after Conti and Clémençon (2024), which uses the UTKFace labels of the fit set while
fitting; its weight on global accuracy is chosen from ``--accuracy-weights`` on a validation set of the
training side only (``--val-utk`` further UTKFace training chips, outside the fit set, for the group
FMRs; LFW DevTrain pairs for accuracy), by the rule below, before anything is measured on held-out
data. Both are measured with the profile's own threshold (before) and the raw score with the
threshold recalibrated on the fit set. The method kept, chosen on the same validation set, is the fairer
one (lower mean log10 max/min FMR ratio over the UTKFace groups) among those that keep global
accuracy (LFW FNMR at FMR 1e-3, threshold-free, at most 0.5 points above the raw scores');
the held-out figures of every method are then reported. With
``--ship`` it is written to ``faceprint/models/weights/fair_<profile>.npz``.

    python scripts/fit_fair_normaliser.py --profile accurate --ship      # about 20 min the first time (templates)
    python scripts/fit_fair_normaliser.py --profile fast --ship

Writes ``<out>/report.json`` and prints the before/after table (``--out``, default ``out/fair-<profile>``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from faceprint.engine import Engine
from faceprint.evaluation.fair_thresholds import compare_methods, fit_centroid_regression, score_spread
from faceprint.evaluation.fairness import ADULT_AGE, RATIO_COLUMNS, read_utkface, utkface_templates
from faceprint.evaluation.lfw import read_pairs
from faceprint.evaluation.runner import lfw_templates
from faceprint.matching.normalisation import CALIBRATED_FMRS, fit_normaliser, weights_path
from faceprint.matching.thresholds import threshold_at_fmr

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FNMR_SLACK = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--utk-train", type=Path, default=DATA / "age" / "utkface-train")
    parser.add_argument("--utk-test", type=Path, default=DATA / "age" / "utkface-sample")
    parser.add_argument("--lfw", type=Path, default=DATA / "lfw-view1")
    parser.add_argument("--fit-utk", type=int, default=4000, help="UTKFace training images in the fit set")
    parser.add_argument("--val-utk", type=int, default=1000,
                        help="UTKFace training images outside the fit set that choose the accuracy weight")
    parser.add_argument("--accuracy-weights", default="1,5,20",
                        help="weights of the accuracy term of the centroid regression tried on the validation set")
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--fmr", type=float, default=1e-3, help="operating point the offsets are fitted at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--ship", action="store_true", help="write the kept normaliser into the package")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or Path("out") / f"fair-{args.profile}"
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine(args.profile)
    model = engine.profile.model_id

    train_subjects, _ = read_utkface(args.utk_train)
    train_t, _ = utkface_templates(engine, args.utk_train, [s.name for s in train_subjects], progress=False)
    found = [s for s in train_subjects if np.any(train_t[s.name])]
    order = np.random.default_rng(args.seed).permutation(len(found))
    fit_utk = [found[i] for i in np.sort(order[: args.fit_utk])]
    val_utk = [found[i] for i in np.sort(order[args.fit_utk: args.fit_utk + args.val_utk])]
    train_pairs = read_pairs(args.lfw / "pairsDevTrain.txt")
    test_pairs = read_pairs(args.lfw / "pairsDevTest.txt")
    train_names = sorted({p.a for p in train_pairs} | {p.b for p in train_pairs})
    test_names = sorted({p.a for p in test_pairs} | {p.b for p in test_pairs})
    lfw_t, _ = lfw_templates(engine, args.lfw / "images", train_names + test_names, progress=False)

    def person(rel: str) -> str:
        return Path(rel).parent.name

    fit_vectors = np.vstack([np.stack([train_t[s.name] for s in fit_utk]),
                             np.stack([lfw_t[n] for n in train_names])]).astype(np.float32)
    fit_ids = [f"utk:{s.name}" for s in fit_utk] + [person(n) for n in train_names]
    fitted_on = (f"{len(fit_utk)} UTKFace training chips (seed {args.seed}) + {len(train_names)} LFW View 1 "
                 f"DevTrain images; UTKFace and LFW are research-use data sets")
    fsn = fit_normaliser(fit_vectors, fit_ids, clusters=args.clusters, fmr=args.fmr, model=model, seed=args.seed,
                         fmrs=CALIBRATED_FMRS, fitted_on=fitted_on)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(fit_utk):
        for attr in ("gender", "race", "age", "group"):
            groups.setdefault(f"{attr}:{s.attribute(attr)}", []).append(i)
        if s.age >= ADULT_AGE:
            groups.setdefault(f"adult group:{s.group}", []).append(i)
    groups["lfw"] = list(range(len(fit_utk), len(fit_ids)))
    ids = np.asarray(fit_ids)
    lfw_idx = np.arange(len(fit_utk), len(fit_ids))
    same = ids[lfw_idx][:, None] == ids[lfw_idx][None, :]
    mi, mj = np.nonzero(np.triu(same, k=1))
    mated_pairs = np.stack([lfw_idx[mi], lfw_idx[mj]], axis=1)
    train_index = {n: i for i, n in enumerate(train_names)}
    val_vectors = np.stack([train_t[s.name] for s in val_utk])
    validation = (val_utk, val_vectors, np.zeros_like(val_vectors), np.stack([lfw_t[n] for n in train_names]),
                  [person(n) for n in train_names], np.array([[train_index[p.a], train_index[p.b]] for p in train_pairs]),
                  np.array([p.same for p in train_pairs]), np.array([p.fold for p in train_pairs]), args.fmr)
    val_before = compare_methods([("raw", engine.profile.threshold(args.fmr), None)], *validation)[0]
    tried = []
    for weight in (float(w) for w in args.accuracy_weights.split(",")):
        fitted = fit_centroid_regression(fsn, fit_vectors, fit_ids, groups, mated_pairs, fmr=args.fmr,
                                         accuracy_weight=weight, seed=args.seed, fitted_on=fitted_on)
        val = compare_methods([(f"weight {weight:g}", fitted.threshold, fitted)], *validation)[0]
        tried.append((val, fitted, weight))
        print(f"validation: centroid regression, accuracy weight {weight:g}: spread {score_spread(val):.3f}, "
              f"LFW DevTrain FNMR@{args.fmr:g} {100 * val.lfw_fnmr_at_fmr:.2f}% "
              f"(raw {100 * val_before.lfw_fnmr_at_fmr:.2f}%)")
    keeps = [t for t in tried if t[0].lfw_fnmr_at_fmr <= val_before.lfw_fnmr_at_fmr + FNMR_SLACK]
    _, regression, chosen_weight = (min(keeps, key=lambda t: score_spread(t[0])) if keeps
                                    else min(tried, key=lambda t: t[0].lfw_fnmr_at_fmr))
    print(f"validation: accuracy weight {chosen_weight:g} chosen")
    raw = fit_vectors @ fit_vectors.T
    recalibrated = threshold_at_fmr(raw[np.triu(ids[:, None] != ids[None, :], k=1)], args.fmr)
    del raw

    test_subjects, _ = read_utkface(args.utk_test)
    test_t, _ = utkface_templates(engine, args.utk_test, [s.name for s in test_subjects], progress=False)
    degraded_t, _ = utkface_templates(engine, args.utk_test, [s.name for s in test_subjects], degraded=True,
                                      progress=False)
    held = [s for s in test_subjects if np.any(test_t[s.name])]
    index = {n: i for i, n in enumerate(test_names)}
    results = compare_methods(
        [("profile threshold (before)", engine.profile.threshold(args.fmr), None),
         ("raw, threshold recalibrated on the fit set", recalibrated, None),
         ("FSN", fsn.threshold, fsn), ("centroid regression", regression.threshold, regression)],
        held, np.stack([test_t[s.name] for s in held]), np.stack([degraded_t[s.name] for s in held]),
        np.stack([lfw_t[n] for n in test_names]), [person(n) for n in test_names],
        np.array([[index[p.a], index[p.b]] for p in test_pairs]), np.array([p.same for p in test_pairs]),
        np.array([p.fold for p in test_pairs]), args.fmr)
    val_fsn = compare_methods([("FSN", fsn.threshold, fsn)], *validation)[0]
    val_regression = next(v for v, fitted, _ in tried if fitted is regression)
    candidates = [(val_fsn, fsn), (val_regression, regression)]
    accurate = [c for c in candidates if c[0].lfw_fnmr_at_fmr <= val_before.lfw_fnmr_at_fmr + FNMR_SLACK]
    kept = (min(accurate, key=lambda c: score_spread(c[0])) if accurate
            else min(candidates, key=lambda c: c[0].lfw_fnmr_at_fmr))[1]
    print(f"validation: FSN spread {score_spread(val_fsn):.3f}, LFW DevTrain FNMR@{args.fmr:g} "
          f"{100 * val_fsn.lfw_fnmr_at_fmr:.2f}%; kept {kept.method}")
    report = {"profile": args.profile, "model": model, "fmr": args.fmr, "fitted_on": fitted_on,
              "validation": {"utk_images": len(val_utk), "accuracy_weight": chosen_weight,
                             "tried": [{"accuracy_weight": w, "spread": score_spread(v),
                                        "lfw_devtrain_fnmr_at_fmr": v.lfw_fnmr_at_fmr} for v, _, w in tried]},
              "held_out": f"{len(held)} UTKFace sample images; LFW View 1 DevTest ({len(test_names)} images)",
              "kept": kept.method, "thresholds": {f"{k:g}": v for k, v in kept.thresholds.items()},
              "spread": {r.method: score_spread(r) for r in results}, "methods": [r.to_dict() for r in results]}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    kept.save(out / f"fair_{args.profile}.npz")
    if args.ship:
        kept.save(weights_path(args.profile))
    print(f"profile {args.profile} ({model}); fit: {fitted_on}")
    head = ["method", "threshold", "UTK FMR", *(f"max/min {c}" for c in RATIO_COLUMNS), "LFW FMR", "LFW FNMR",
            f"LFW FNMR@{args.fmr:g}", "LFW acc", "spread"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        ratios = [f"{v:.1f}" if (v := r.utk_fmr_ratio.get(c)) else "n/a" for c in RATIO_COLUMNS]
        print(f"| {r.method} | {r.threshold:.4f} | {r.utk_overall_fmr.rate:.1e} | " + " | ".join(ratios)
              + f" | {r.lfw_fmr:.1e} | {100 * r.lfw_fnmr:.1f}% | {100 * r.lfw_fnmr_at_fmr:.1f}% | "
              f"{100 * r.lfw_accuracy:.2f}% | {score_spread(r):.3f} |")
    for r in results:
        for attr in ("age", "race", f"race ({ADULT_AGE}+)", f"group ({ADULT_AGE}+)"):
            print(f"{r.method}: FMR {attr}: " + ", ".join(
                f"{g.group} {g.rate:.1e}{'' if g.resolved else '?'}" for g in r.utk_fmr[attr]))
        print(f"{r.method}: proxy FNMR by age: " + ", ".join(
            f"{g.group} {g.errors}/{g.n}" for g in r.utk_fnmr_proxy["age"]))
    print(f"kept: {kept.method}" + (f" -> {weights_path(args.profile)}" if args.ship else ""))


if __name__ == "__main__":
    main()
