#!/usr/bin/env python3
"""How often would enrolment's duplicate-identity check and identify's tie rule fire? LFW View 1.

    python benchmarks/duplicates.py --images ../shared/data/lfw-view1/images --profile fast

Uses the open-set split of ``faceprint eval identify`` (one gallery image per person with two or
more images; their other images are mated probes; people with a single image are non-mated).
Enrolling a non-mated probe under its own name is a *new person*: the check must let it through.
Enrolling a mated probe under a new name is *the same person under two names*: the check should
catch it. For each of the profile's calibrated thresholds the table gives both rates, so the
duplicate threshold (``Engine.duplicate_threshold``) can be chosen by measurement; a second table
counts identify's ties (runner-up within the margin of the best, both at or above the threshold).
Templates come from the ``eval lfw`` cache (computed when missing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import log
from faceprint import Engine
from faceprint.evaluation.identification import list_images, split_protocol
from faceprint.evaluation.runner import lfw_templates
from faceprint.types import TIE_MARGIN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/data/lfw-view1/images"),
                        help="LFW-layout folder: NAME/NAME_0001.jpg")
    parser.add_argument("--profile", default="fast")
    args = parser.parse_args(argv)

    engine = Engine(args.profile)
    names = list_images(args.images)
    split = split_protocol(names)
    log(f"{len(names)} images; templates for profile {args.profile} (cached after the first run)")
    templates, _ = lfw_templates(engine, args.images, names, progress=sys.stderr.isatty())
    gallery = np.stack([templates[n] for n in split.gallery])
    mated = np.stack([templates[n] for n in split.mated])
    nonmated = np.stack([templates[n] for n in split.nonmated])
    mate_scores = (mated @ gallery.T)[np.arange(len(mated)), np.array(split.mated_people)]
    best_nonmated = (nonmated @ gallery.T).max(axis=1)

    print(f"profile {args.profile}: {len(gallery)} people enrolled, {len(mated)} mated probes, "
          f"{len(nonmated)} non-mated probes\n")
    print("| threshold at FMR | cosine | new people refused | same person under a new name caught |")
    print("|---|---|---|---|")
    in_use = engine.duplicate_threshold
    for fmr, threshold in sorted(engine.profile.thresholds.items(), reverse=True):
        mark = " (duplicate threshold)" if abs(threshold - in_use) < 1e-9 else ""
        print(f"| {fmr:g}{mark} | {threshold:.4f} | {(best_nonmated >= threshold).mean():.1%} | "
              f"{(mate_scores >= threshold).mean():.1%} |")

    print(f"\nties at identify's threshold {engine.threshold:.4f} (runner-up another person):\n")
    print("| probes | margin | ties | runner-up also at or above threshold |")
    print("|---|---|---|---|")
    for label, probes in (("mated", mated), ("non-mated", nonmated)):
        top2 = -np.sort(-(probes @ gallery.T), axis=1)[:, :2]
        both = top2[:, 1] >= engine.threshold
        for margin in (TIE_MARGIN, 0.02, 0.05):
            ties = both & (top2[:, 0] - top2[:, 1] <= margin)
            print(f"| {label} ({len(probes)}) | {margin:g} | {ties.sum()} ({ties.mean():.1%}) | {both.sum()} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
