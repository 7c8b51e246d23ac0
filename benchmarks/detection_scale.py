#!/usr/bin/env python3
"""Face detection across face and image sizes: faces found and cost, main pass alone vs with tiles.

    python benchmarks/detection_scale.py                  # one thread, best of 3 runs
    python benchmarks/detection_scale.py --threads 2 --repeat 5 --face-width 24

Scenes, built from ``../shared/data`` (research use: LFW; MIT: knn-small):

* ``small faces``: six LFW View 1 images pasted on a grey canvas so that each face is
  ``--face-width`` px wide (37 by default), on canvases from 1280x853 to 6000x4000. "found" counts
  the pasted faces with exactly one detection at their centre.
* ``full frame``: knn-small/test/obama1.jpg cropped to its face box and scaled so the long side is
  300 to 2400 px. "found" is the number of detections (1 is right).
* ``turned``: obama1.jpg as given and turned 90 degrees without EXIF: the cost of the orientation
  search, through :class:`faceprint.pipeline.detection.FaceFinder` (quality gate included).

With ``--orientation``, the orientation study instead: 184 photos (pairs-small, knn-small,
video stills, 80 LFW images drawn with seed 0, 20 Yale images), each as given and turned 90, 180
and 270 degrees clockwise, through :class:`~faceprint.pipeline.detection.FaceFinder`; and every third frame
of the Hamilton clip as given. Counts how many are put upright, left as given, or turned wrongly.

Modes: ``main pass`` is ``YuNetDetector.detect(image, small_faces=False)``: the image's long side
capped at 1280 px, plus a coarse pass only when a face is too large for it (what video frames and
``Engine.single_face`` use); ``with tiles`` is the default ``detect(image)``, which also scans the
image in tiles at the scale that makes a 20 px face 18 px wide when the main pass shrinks it
further than that. Wall and CPU ms are each the best of ``--repeat`` runs (one warm-up first);
CPU time, which a busy machine inflates less than wall time, is also given per megapixel of the
image as given. "1 thread": ``cv2.setNumThreads(1)`` and the process pinned to one CPU.
Prints a markdown table; writes JSON to out/bench/detection_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.bench_common import REPO_ROOT, log, versions  # noqa: E402

DATA_DIR = REPO_ROOT.parent / "shared" / "data"
LFW_PEOPLE = ("Aaron_Peirsol", "Colin_Powell", "George_W_Bush", "Serena_Williams", "Tony_Blair",
              "Gloria_Macapagal_Arroyo")
LFW_FACE_WIDTH = 93.0  # median YuNet box width of the face in a 250x250 LFW image
OBAMA_BOX = (557, 125, 343, 484)  # x, y, w, h of the face in knn-small/test/obama1.jpg
CANVASES = ((1280, 853), (1920, 1280), (3000, 2000), (4000, 3000), (6000, 4000))
FULL_FRAME = (300, 700, 1280, 2400)
DEFAULT_OUT = REPO_ROOT / "out" / "bench" / "detection_scale.json"


def small_faces_scene(faces: list[np.ndarray], width: int, height: int, face_width: float
                      ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A grey canvas with the LFW images pasted in a 3 x 2 grid; the centres of their faces."""
    image = np.full((height, width, 3), 118, np.uint8)
    side = round(250 * face_width / LFW_FACE_WIDTH)
    centres = []
    for i, face in enumerate(faces):
        x = int((i % 3 + 0.5) * width / 3 - side / 2) + (i * 137) % max(1, min(200, width // 3 - side))
        y = int((i // 3 + 0.5) * height / 2 - side / 2)
        image[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        centres.append((x + side / 2, y + side / 2))
    return image, centres


def found_once(detections: list, centres: list[tuple[float, float]], face_width: float) -> int:
    """How many of the pasted faces have exactly one detection centred on them."""
    count = 0
    for cx, cy in centres:
        hits = [f for f in detections
                if abs(f.box.center[0] - cx) < face_width / 2 and abs(f.box.center[1] - cy) < face_width / 2]
        count += len(hits) == 1
    return count


def orientation_study(data: Path) -> int:
    """Print how often FaceFinder puts photos upright, and never turns upright photos or video frames."""
    import random

    from faceprint.models.yunet import YuNetDetector
    from faceprint.pipeline.detection import SURE_SCORE, FaceFinder, turn
    from faceprint.pipeline.image_io import load_image

    finder = FaceFinder(YuNetDetector())
    files = [p for pattern in ("pairs-small/*.jpg", "knn-small/test/*", "knn-small/train/*/*", "video/*.jpg",
                               "video/*.png") for p in sorted(data.glob(pattern))]
    lfw = sorted(data.glob("lfw-view1/images/*/*.jpg"))
    random.Random(0).shuffle(lfw)
    files += lfw[:80] + sorted(data.glob("yale/subject0*"))[:20]
    counts = {"photos": 0, "upright searched": 0, "upright turned": 0, "turned put right": 0,
              "turned left as given": 0, "turned wrongly": 0}
    for path in files:
        image = load_image(path)
        upright = finder.find(image)
        if not any(finder.gate.passes(f) for f in upright):
            continue
        counts["photos"] += 1
        counts["upright searched"] += max(f.score for f in upright) < SURE_SCORE
        counts["upright turned"] += any(f.orientation for f in upright)
        for angle in (90, 180, 270):
            found = {f.orientation for f in finder.find(np.ascontiguousarray(turn(image, angle)), usable_only=True)}
            key = ("turned put right" if found == {360 - angle} else
                   "turned left as given" if found <= {0} else "turned wrongly")
            counts[key] += 1
        log(f"{path.name}: {counts}")
    video = cv2.VideoCapture(str(data / "video/short_hamilton_clip.mp4"))
    frames = turned = index = 0
    while True:
        ok, frame = video.read()
        if not ok:
            break
        if index % 3 == 0:
            frames += 1
            turned += any(f.orientation for f in finder.find(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        index += 1
    print("| set | count |")
    print("|---|---:|")
    for key, value in counts.items():
        print(f"| {key} | {value} |")
    print(f"| Hamilton clip frames (every 3rd) | {frames} |")
    print(f"| frames turned | {turned} |")
    return 0


def timed(fn, repeat: int) -> tuple[float, float, list]:
    """(best wall ms, best CPU ms of this process, over ``repeat`` runs after one warm-up; the last result)."""
    result = fn()
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall * 1000.0, cpu * 1000.0, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA_DIR), help="the shared data folder (default ../shared/data)")
    parser.add_argument("--face-width", type=float, default=37.0, help="width (px) of the pasted LFW faces")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row (the best is reported)")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (and CPUs pinned; default 1)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON output file")
    parser.add_argument("--orientation", action="store_true", help="run the orientation study instead")
    args = parser.parse_args(argv)
    if args.orientation:
        return orientation_study(Path(args.data))

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    cv2.setNumThreads(args.threads)
    from faceprint.models.yunet import YuNetDetector
    from faceprint.pipeline.detection import FaceFinder, turn
    from faceprint.pipeline.image_io import load_image

    data = Path(args.data)
    detector = YuNetDetector()
    finder = FaceFinder(detector)
    lfw = [load_image(sorted((data / "lfw-view1/images" / name).glob("*.jpg"))[0]) for name in LFW_PEOPLE]
    obama1 = load_image(data / "knn-small/test/obama1.jpg")
    rows = []

    def add(scene: str, image: np.ndarray, mode: str, fn, count, expected: int) -> None:
        ms, cpu_ms, result = timed(fn, args.repeat)
        megapixels = image.shape[0] * image.shape[1] / 1e6
        rows.append({"scene": scene, "size": f"{image.shape[1]}x{image.shape[0]}", "megapixels": round(megapixels, 2),
                     "mode": mode, "found": count(result), "expected": expected, "ms": round(ms, 1),
                     "cpu_ms": round(cpu_ms, 1), "cpu_ms_per_mp": round(cpu_ms / megapixels, 1)})
        log(f"{scene} {rows[-1]['size']} {mode}: {rows[-1]['found']}/{expected} in {ms:.0f} ms")

    for width, height in CANVASES:
        image, centres = small_faces_scene(lfw, width, height, args.face_width)
        for mode, small in (("main pass", False), ("with tiles", True)):
            add(f"small faces ({args.face_width:g} px)", image, mode,
                lambda image=image, small=small: detector.detect(image, small_faces=small),
                lambda found, centres=centres: found_once(found, centres, args.face_width), len(centres))
    x, y, w, h = OBAMA_BOX
    face_crop = obama1[y:y + h, x:x + w]
    for side in FULL_FRAME:
        s = side / max(face_crop.shape[:2])
        image = cv2.resize(face_crop, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
        for mode, small in (("main pass", False), ("with tiles", True)):
            add("full frame", image, mode, lambda image=image, small=small: detector.detect(image, small_faces=small),
                len, 1)
    for angle in (0, 90):
        image = np.ascontiguousarray(turn(obama1, angle))
        add(f"turned {angle} deg (FaceFinder)", image, "with tiles",
            lambda image=image: finder.find(image, usable_only=True), len, 1)

    print(f"| scene | image | MP | mode | faces found | wall ms ({args.threads} thread) | CPU ms | CPU ms/MP |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scene']} | {r['size']} | {r['megapixels']} | {r['mode']} | {r['found']}/{r['expected']} | "
              f"{r['ms']:.0f} | {r['cpu_ms']:.0f} | {r['cpu_ms_per_mp']:.0f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "repeat": args.repeat, "face_width": args.face_width,
                               "versions": versions(), "rows": rows}, indent=2))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
