"""The demo behind ``make demo``: enrol five people, then name everyone in a few group photos.

Uses the example data in ``../shared/data`` (face_recognition's knn example, MIT): the people in
``knn-small/train/<name>/`` are enrolled into a fresh gallery, every photo in ``knn-small/test``
plus a crowd photo of strangers is identified, a table is printed and annotated copies are
written to ``--out``.

    python -m faceprint.cli.demo --out out/demo [--data ../shared/data] [--model fast]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from ..engine import Engine
from ..errors import FaceprintError
from ..pipeline.draw import annotate, save_rgb
from ..pipeline.image_io import IMAGE_SUFFIXES
from .common import check_output


def default_data() -> Path:
    """The shared/data folder: beside the source checkout faceprint runs from, else ``../shared/data``.

    An installed faceprint (a wheel in site-packages) has no checkout, so the folder is looked
    for relative to the working directory, as the README's commands give it.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout.parent / "shared" / "data"
    return Path("..") / "shared" / "data"


def run(data: Path, out: Path, profile: str) -> int:
    """Run the demo; returns a process exit code."""
    train, test = data / "knn-small" / "train", data / "knn-small" / "test"
    if not train.is_dir():
        print(f"demo data not found at {data}: pass --data DIR (the shared/data folder)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    gallery = out / "demo-gallery.db"
    for leftover in out.glob("demo-gallery.db*"):
        leftover.unlink()
    engine = Engine(profile)
    started = time.perf_counter()
    print(f"Enrolling people from {train} (profile '{profile}', model {engine.model_id})")
    for person_dir in sorted(p for p in train.iterdir() if p.is_dir()):
        images = sorted(p for p in person_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        record = engine.enroll(person_dir.name, images, gallery, largest=True)
        print(f"  {record.name:<16} {record.face_count} face(s)")
    probes = sorted(p for p in test.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    crowd = data / "video" / "multiface.jpg"
    if crowd.is_file():
        probes.append(crowd)
    print(f"\nIdentifying faces at calibrated FMR {engine.fmr:g} (threshold {engine.threshold:.3f})\n")
    print(f"{'image':<24} {'face box [x, y, w, h]':<28} {'identity':<16} {'score':>6}")
    print("-" * 78)
    for probe in probes:
        try:
            image = engine.load(probe)
            results = engine.identify(image, gallery)
        except FaceprintError as exc:
            print(f"{probe.name:<24} error: {exc}")
            continue
        for r in results:
            score = f"{r.best.score:.3f}" if r.best else "-"
            identity = r.person or "unknown"
            line = f"{probe.name:<24} {str(r.face.box.as_list()):<28} {identity:<16} {score:>6}"
            print(f"{probe.name:<24} {str(r.face.box.as_list()):<28} skipped: {r.skipped}" if r.skipped else line)
        if not results:
            print(f"{probe.name:<24} {'(no face)':<28}")
        save_rgb(annotate(image, [r.face for r in results], [r.person for r in results],
                          skipped=[bool(r.skipped) for r in results]),
                 str(out / f"{probe.stem}-identified.jpg"))
    print(f"\nAnnotated images and the gallery are in {out}/ (enrolment and identification took "
          f"{time.perf_counter() - started:.1f} s, model loading included)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m faceprint.cli.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="the shared/data folder (default: ../shared/data beside the checkout or the working directory)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--model", default="accurate", help="recognition profile (see 'faceprint models')")
    args = parser.parse_args(argv)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no dnn backend chatter on stderr
    try:
        check_output(args.out, "--out", "folder")
        return run(args.data or default_data(), args.out, args.model)
    except FaceprintError as exc:
        print(f"faceprint demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
