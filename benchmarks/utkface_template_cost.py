#!/usr/bin/env python3
"""What a fresh ``faceprint eval impersonation`` (or ``eval fairness``) costs: milliseconds per UTKFace image.

    python benchmarks/utkface_template_cost.py                          # accurate and fast, 200 images
    python benchmarks/utkface_template_cost.py --profiles fast --limit 500

Times :func:`faceprint.evaluation.fairness.utkface_templates` (decoding, detection, alignment,
embedding; the template cache off) on the first ``--limit`` chips of ``--images``, after a warm-up
that loads the models, and prints the milliseconds per image and the minutes the ~13,262 images of
``utkface-sample`` and ``utkface-train`` take per profile without the cache.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from faceprint import Engine
from faceprint.evaluation.fairness import utkface_templates

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "age"
IMPERSONATION_IMAGES = 13_262  # utkface-sample (1,000 targets) + utkface-train (12,262 attacker photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DATA / "utkface-train")
    parser.add_argument("--profiles", default="accurate,fast")
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    names = sorted(p.name for p in args.images.iterdir() if p.suffix == ".jpg")[:args.limit]
    for profile in args.profiles.split(","):
        engine = Engine(profile)
        utkface_templates(engine, args.images, names[:5], progress=False, cache=False)  # load the models
        start = time.perf_counter()
        utkface_templates(engine, args.images, names, progress=False, cache=False)
        per_image = (time.perf_counter() - start) / len(names)
        print(f"{profile}: {1000 * per_image:.1f} ms/image over {len(names)} images; a fresh impersonation run: "
              f"{IMPERSONATION_IMAGES * per_image / 60:.1f} min for {IMPERSONATION_IMAGES:,} images")


if __name__ == "__main__":
    main()
