#!/usr/bin/env python3
"""Frames per second of the video pipeline on 1 and 2 cores, next to the naive baseline.

    python benchmarks/video_speed.py                       # Hamilton clip (640x360), fast profile, 1 and 2 cores
    python benchmarks/video_speed.py --profiles fast,accurate --repeat 3

Pipelines, each run on the whole clip in its own worker process (this script with ``--worker``):

* ``tracked``: :class:`faceprint.video.recognition.VideoRecognizer` (adaptive detection, optical-flow
  tracking, per-track identity, frames decoded ahead on a second thread);
* ``naive``: detect, quality-gate, embed and search every frame (``identify_every_frame``), frames
  decoded in the same thread: what calling ``engine.identify`` per frame costs.

"1 core": the worker is pinned to one CPU (``os.sched_setaffinity``) with every thread pool at one
thread (OMP/OpenBLAS/MKL variables, ``cv2.setNumThreads(1)``). "2 cores": pinned to two CPUs, two
threads. Timed: decoding, tracking, detection, embedding and search of every frame; not timed:
model loading, enrolling the two reference photos, one warm-up frame. fps = analysed frames /
wall time, the best of ``--repeat`` runs; "CPU ms/frame" is the worker's CPU time per frame, which
a busy machine inflates less than wall time. Each row also scores the run against the clip's
ground truth (precision / recall per frame, see benchmarks/video_accuracy.py), so a faster
configuration that got worse is visible in the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from video_accuracy import (
    DATA_DIR,
    DEFAULT_TRUTH,
    enrol_truth_people,
    load_truth,
    score_frames,
)

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
DEFAULT_OUT = REPO_ROOT / "out" / "bench" / "video_speed.json"
REALTIME_FPS = 25.0


def worker(args: argparse.Namespace) -> int:
    """One pipeline, one profile, one core count: time it and print one JSON line."""
    cpus = [int(c) for c in args.cpus.split(",")]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    import cv2

    cv2.setNumThreads(args.threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    from faceprint import Engine
    from faceprint.video.recognition import VideoRecognizer, identify_every_frame
    from faceprint.video.source import VideoSource

    truth, segments = load_truth(args.truth)
    video = DATA_DIR / truth["video"]
    engine = Engine(args.profile)
    runs = []
    with tempfile.TemporaryDirectory(prefix="faceprint-video-speed-") as tmp:
        gallery_path = Path(tmp) / "people.db"
        enrol_truth_people(engine, truth, gallery_path)
        with engine.open_gallery(gallery_path, create=False) as gallery:
            with VideoSource(video) as source:  # warm-up: one frame through every model
                frame = next(source.frames(limit=1))
                engine.embed_faces(engine.finder.find(frame.image)[:1])
            for _ in range(args.repeat):
                cpu0 = time.process_time()
                with VideoSource(video) as source:
                    if args.pipeline == "tracked":
                        timeline = VideoRecognizer(engine, gallery).run(source)
                        labels, stats = timeline.frame_labels(), timeline.stats
                    else:
                        labels, stats = identify_every_frame(engine, gallery, source)
                cpu = time.process_time() - cpu0
                score = score_frames(labels, segments, range(truth["frames"]))
                runs.append({"fps": stats.fps, "elapsed_s": stats.elapsed_s, "frames": stats.frames,
                             "cpu_ms_per_frame": 1000 * cpu / max(stats.frames, 1), "stats": stats.to_dict(),
                             "precision": score.overall.precision, "recall": score.overall.recall})
    best = max(runs, key=lambda r: r["fps"])
    print(json.dumps({"pipeline": args.pipeline, "profile": args.profile, "cores": len(cpus),
                      "threads": args.threads, "cpus": cpus, "size": list(source.size), "best": best,
                      "runs": runs}))
    return 0


def measure(pipeline: str, profile: str, cpus: list[int], args: argparse.Namespace) -> dict:
    """Run one worker and return its result (or the error)."""
    threads = len(cpus)
    env = dict(os.environ, **{name: str(threads) for name in THREAD_ENV})
    cmd = [sys.executable, __file__, "--worker", "--pipeline", pipeline, "--profile", profile,
           "--cpus", ",".join(map(str, cpus)), "--threads", str(threads), "--repeat", str(args.repeat),
           "--truth", str(args.truth)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=args.timeout)
    if proc.returncode != 0:
        return {"pipeline": pipeline, "profile": profile, "cores": len(cpus), "error": proc.stderr[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    """The CPU's model name (Linux), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def table(rows: list[dict]) -> str:
    """The markdown table of every row."""
    lines = [("| pipeline | profile | cores | frames/s | ms/frame | CPU ms/frame | x real time (25 fps) | "
              "detections | embeddings | precision | recall |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['pipeline']} | {r['profile']} | {r['cores']} | failed: "
                         f"{r['error'].strip().splitlines()[-1][:100] if r['error'].strip() else '?'} |" + " |" * 7)
            continue
        b = r["best"]
        lines.append(f"| {r['pipeline']} | {r['profile']} | {r['cores']} | {b['fps']:.1f} | "
                     f"{1000 / b['fps']:.1f} | {b['cpu_ms_per_frame']:.1f} | {b['fps'] / REALTIME_FPS:.2f} | "
                     f"{b['stats']['detections']} | {b['stats']['embeddings']} | "
                     f"{100 * (b['precision'] or 0):.1f}% | {100 * (b['recall'] or 0):.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", default="fast", help="comma-separated recognition profiles (default fast)")
    ap.add_argument("--cores", default="1,2", help="core counts to run (default 1,2)")
    ap.add_argument("--pipelines", default="tracked,naive", help="tracked, naive or both (default both)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per configuration; the fastest counts (default 2)")
    ap.add_argument("--truth", default=str(DEFAULT_TRUTH), help="ground truth naming the clip (default Hamilton)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pipeline", help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)
    ap.add_argument("--cpus", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    if not DATA_DIR.is_dir():
        print(f"shared data not found at {DATA_DIR}", file=sys.stderr)
        return 2
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    rows = []
    for cores in [int(c) for c in args.cores.split(",")]:
        if cores > len(allowed):
            print(f"[video_speed] skipping {cores} cores: only {len(allowed)} allowed", file=sys.stderr)
            continue
        for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
            for pipeline in [p.strip() for p in args.pipelines.split(",") if p.strip()]:
                print(f"[video_speed] {pipeline} {profile} on {cores} core(s) ...", file=sys.stderr, flush=True)
                rows.append(measure(pipeline, profile, allowed[:cores], args))
    truth, _ = load_truth(args.truth)
    print(f"CPU: {cpu_model()}; video: {truth['video']} ({truth['frames']} frames, "
          f"{truth['size'][0]}x{truth['size'][1]}); best of {args.repeat} run(s)\n")
    print(table(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": cpu_model(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows},
                              indent=1))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
