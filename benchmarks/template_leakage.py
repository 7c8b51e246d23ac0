"""What a stored template leaks: gender, race and age band read from templates (docs/privacy.md table).

    python benchmarks/template_leakage.py                       # accurate profile, 3,000 UTKFace training chips
    python benchmarks/template_leakage.py --profile fast --limit 12262

Templates of ``--limit`` UTKFace training chips drawn with ``--seed`` (from the template cache;
missing ones are computed), labels from their file names; 5-fold stratified cross-validation of
logistic regression and an MLP (one hidden layer of 128) under each condition of
:mod:`faceprint.evaluation.leakage` (plain; cancelable rotate and sign, same key and another key;
AES-GCM ciphertext at rest). Prints a Markdown table and writes ``<out>/leakage.json``.
Needs the ``bench`` extra (scikit-learn).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_common import REPO_ROOT, log, versions

from faceprint.engine import Engine
from faceprint.evaluation.fairness import read_utkface, utkface_templates
from faceprint.evaluation.leakage import ATTRIBUTES, CLASSIFIERS, CONDITIONS, measure_leakage

DATA = REPO_ROOT / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--images", type=Path, default=DATA / "age" / "utkface-train")
    parser.add_argument("--limit", type=int, default=3000, help="UTKFace images used (seeded sample)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "bench" / "leakage")
    args = parser.parse_args()
    engine = Engine(args.profile)
    subjects, _ = read_utkface(args.images)
    templates, _ = utkface_templates(engine, args.images, [s.name for s in subjects], progress=False)
    found = [s for s in subjects if np.any(templates[s.name])]
    pick = np.sort(np.random.default_rng(args.seed).permutation(len(found))[: args.limit])
    chosen = [found[i] for i in pick]
    vectors = np.stack([templates[s.name] for s in chosen]).astype(np.float32)
    labels = {a: [s.attribute(a) for s in chosen] for a in ATTRIBUTES}
    log(f"{len(chosen)} templates ({engine.model_id}); {args.folds}-fold cross-validation")
    results = measure_leakage(vectors, labels, folds=args.folds, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "leakage.json").write_text(json.dumps(
        {"profile": args.profile, "model": engine.model_id, "images": str(args.images), "samples": len(chosen),
         "folds": args.folds, "seed": args.seed, "versions": versions(), "results": [r.to_dict() for r in results]},
        indent=2))
    by = {(r.condition, r.attribute, r.classifier): r for r in results}
    head = ["templates"] + [f"{a} ({c.split()[0]})" for a in ATTRIBUTES for c in CLASSIFIERS]
    print(f"balanced accuracy, {args.folds}-fold, {len(chosen)} UTKFace training chips, profile {args.profile}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    chance = [f"{by['plain', a, CLASSIFIERS[0]].chance:.0%}" for a in ATTRIBUTES for _ in CLASSIFIERS]
    print("| chance (1 / classes) | " + " | ".join(chance) + " |")
    for condition in CONDITIONS:
        cells = [f"{by[condition, a, c].balanced_accuracy:.1%}" for a in ATTRIBUTES for c in CLASSIFIERS]
        print(f"| {condition} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
