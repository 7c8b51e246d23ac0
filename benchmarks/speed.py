#!/usr/bin/env python3
"""Speed of faceprint, stage by stage, next to face_recognition's own pipeline, on LFW images.

    python benchmarks/speed.py                                  # 200 LFW View 1 images, fast + accurate
    python benchmarks/speed.py --limit 50 --profiles fast --skip-peer --cores 1

Every configuration runs in its own worker process (this script with ``--worker``), started with
every thread pool limited (OMP/OpenBLAS/MKL env vars, ``cv2.setNumThreads``, ONNX Runtime
``intra_op_num_threads``) and pinned with ``os.sched_setaffinity``:

* 1 core:  one process, one thread, one CPU; gives the per-stage times and img/s on 1 core.
* 2 cores: (a) two processes, each on its own CPU with one thread, each doing half the images;
  (b) one process with two threads on two CPUs. The higher throughput is reported, and which.

Workers decode their images and load and warm up their models first, then wait at a barrier;
only the loop after the barrier is timed (no decoding, no model loading). Throughput is images
divided by wall time of that loop (for two processes: first start to last end). "CPU ms/img" is
the 1-core worker's process CPU time over that loop per image: on a machine other jobs share, it
moves less than wall time does, because time spent waiting for the CPU is not counted.

faceprint, per image: detect = YuNet + quality gate (``engine.finder.find``) + picking the central
face; align = every crop the profile needs (one per embedder and zoom); embed = every embedder, with
the mirrored crops where the profile flips, plus fusion. face_recognition: detect =
``face_locations(img)`` (HOG, upsample 1) + picking the central face; embed =
``face_encodings(img, [location])`` (5-point landmarks, chip, ResNet, 1 jitter), whose alignment
is inside the call and cannot be timed apart. Images where nothing is found cost only detection.

The peer is optional: ``pip install --no-deps -r requirements-bench.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import PEER, PEER_INSTALL, REPO_ROOT, log, unavailable_row, versions

DEFAULT_IMAGES = "../shared/data/lfw-view1/images"
DEFAULT_OUT = "out/bench/speed.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")



def stats(values: list[float]) -> dict | None:
    """Median and mean (in ms) of durations in seconds; None when there are none."""
    if not values:
        return None
    ms = [v * 1000.0 for v in values]
    return {"median": statistics.median(ms), "mean": statistics.fmean(ms), "n": len(ms)}


# --------------------------------------------------------------------------------------------
# Worker: one pipeline, one thread/CPU configuration, one shard of the images.
# --------------------------------------------------------------------------------------------


def decode(path: str):
    """RGB uint8 array of an image file (the same decoder for every pipeline)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def faceprint_pipeline(profile: str, threads: int):
    """A function image -> per-stage seconds, for ``profile`` with ``threads`` threads per runtime."""
    import cv2
    import numpy as np

    cv2.setNumThreads(threads)
    from faceprint import Engine
    from faceprint.pipeline.detection import central_face

    # The threshold does not matter for speed; an explicit one keeps calibration out of the way.
    engine = Engine(profile, threshold=0.5)
    finder, recognizer = engine.finder, engine.recognizer  # load the models now
    perf = time.perf_counter

    def run(image) -> dict:
        t0 = perf()
        face = central_face(finder.find(image), image.shape)
        t1 = perf()
        if face is None:
            return {"detect": t1 - t0, "face": False}
        crops, align_by = [], {}
        for i, part in enumerate(recognizer.parts):
            s = perf()
            crops.append(recognizer.part_crops(i, [face]))
            align_by[part.model] = perf() - s
        t2 = perf()
        blocks, embed_by = [], {}
        for i, (part, crop) in enumerate(zip(recognizer.parts, crops, strict=True)):
            s = perf()  # as Recognizer.embed: every zoom and mirror image of the part in one batch
            blocks.append(recognizer.part_embeddings(i, crop))
            embed_by[part.model] = perf() - s
        fused = recognizer.fuse(blocks)[0]
        t3 = perf()
        return {"detect": t1 - t0, "align": t2 - t1, "embed": t3 - t2, "face": True,
                "align_by": align_by, "embed_by": embed_by, "vector": fused, "face_obj": face}

    def check(image) -> float | None:
        """Largest difference between the timed stages' template and Recognizer.embed's."""
        out = run(image)
        if not out["face"]:
            return None
        reference = recognizer.embed([out["face_obj"]])[0].vector
        return float(np.max(np.abs(reference - out["vector"])))

    return run, check


def peer_pipeline(threads: int):
    """face_recognition's pipeline; raises ImportError/SystemExit when it is not installed.

    dlib has no thread setting of its own: the OpenBLAS/OMP variables and the CPU affinity set
    by the parent are what hold it to ``threads``.
    """
    import face_recognition  # its import calls quit() when face_recognition_models is missing

    perf = time.perf_counter

    def central(locations, shape):
        # The same choice as faceprint.pipeline.detection.central_face, for (top, right, bottom, left) boxes.
        cx, cy = shape[1] / 2.0, shape[0] / 2.0

        def cost(loc):
            top, right, bottom, left = loc
            w, h = right - left, bottom - top
            d = ((left + w / 2.0 - cx) ** 2 + (top + h / 2.0 - cy) ** 2) ** 0.5
            return d - 0.5 * max(w * h, 0) ** 0.5

        return min(locations, key=cost) if locations else None

    def run(image) -> dict:
        t0 = perf()
        # face_recognition's defaults, spelled out: HOG, upsample once; 1 jitter, 5-point landmarks.
        location = central(face_recognition.face_locations(image, number_of_times_to_upsample=1,
                                                           model="hog"), image.shape)
        t1 = perf()
        if location is None:
            return {"detect": t1 - t0, "face": False}
        encodings = face_recognition.face_encodings(image, [location], num_jitters=1, model="small")
        t2 = perf()
        if len(encodings) != 1 or len(encodings[0]) != 128:
            raise RuntimeError("face_recognition returned no 128-d encoding")
        return {"detect": t1 - t0, "embed": t2 - t1, "face": True}

    return run, None


def worker(args: argparse.Namespace) -> int:
    """Load, warm up, wait for the go line on stdin, time the shard, write the result JSON."""
    # Keep stdout for the READY line only: anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    result: dict = {"pipeline": args.pipeline, "threads": args.threads, "cpus": args.cpus,
                    "shard": args.shard}

    def finish(code: int) -> int:
        Path(args.result).write_text(json.dumps(result, indent=1))
        return code

    cpus = [int(c) for c in args.cpus.split(",")]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    result["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    index, count = (int(v) for v in args.shard.split("/"))
    paths = Path(args.image_list).read_text().splitlines()[index::count]
    result["images"] = len(paths)

    load_start = time.perf_counter()
    try:
        if args.pipeline == PEER:
            run, check = peer_pipeline(args.threads)
        else:
            run, check = faceprint_pipeline(args.pipeline, args.threads)
    except (ImportError, SystemExit) as exc:
        result.update(status="not installed", error=f"{type(exc).__name__}: {exc}")
        return finish(3)
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        return finish(4)
    images = [decode(p) for p in paths]
    for image in images[: max(args.warmup, 1)]:
        run(image)
    if check is not None:
        diffs = [d for d in (check(image) for image in images[: max(args.warmup, 1)]) if d is not None]
        result["template_max_abs_diff"] = max(diffs) if diffs else None
    result["load_and_warmup_s"] = time.perf_counter() - load_start

    channel.write("READY\n")
    channel.flush()
    if sys.stdin.readline().strip() != "GO":
        result.update(status="failed", error="no GO from the parent")
        return finish(5)

    per_image: list[dict] = []
    wall_start, start, cpu_start = time.time(), time.perf_counter(), time.process_time()
    for image in images:
        out = run(image)
        out.pop("vector", None)
        out.pop("face_obj", None)
        per_image.append(out)
    elapsed, wall_end, cpu = time.perf_counter() - start, time.time(), time.process_time() - cpu_start

    with_face = [r for r in per_image if r["face"]]
    models = list(with_face[0].get("embed_by", {})) if with_face else []
    result.update(
        status="ok",
        wall_start=wall_start,
        wall_end=wall_end,
        elapsed_s=elapsed,
        images_per_s=len(images) / elapsed if elapsed > 0 else None,
        cpu_ms_per_image=1000.0 * cpu / len(images) if images else None,
        faces_embedded=len(with_face),
        detect_ms=stats([r["detect"] for r in per_image]),
        align_ms=stats([r["align"] for r in with_face if "align" in r]),
        embed_ms=stats([r["embed"] for r in with_face]),
        total_ms=stats([r["detect"] + r.get("align", 0.0) + r.get("embed", 0.0) for r in per_image]),
        align_ms_by_model={m: stats([r["align_by"][m] for r in with_face]) for m in models},
        embed_ms_by_model={m: stats([r["embed_by"][m] for r in with_face]) for m in models},
    )
    return finish(0)


# --------------------------------------------------------------------------------------------
# Parent: choose images, run every configuration, print and save the table.
# --------------------------------------------------------------------------------------------


def select_images(root: Path, limit: int) -> tuple[list[Path], str]:
    """``limit`` images spread evenly over the sorted list of all images under ``root``.

    Returns the images and how they were chosen (every k-th of the sorted relative paths).
    """
    everything = sorted(
        (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if limit <= 0 or limit >= len(everything):
        return everything, f"all {len(everything)}"
    step = len(everything) // limit
    return everything[::step][:limit], f"every {step}th of {len(everything)} sorted paths, from the first"


def run_config(pipeline: str, workers: list[dict], image_list: Path, tmp: Path, args) -> dict:
    """Start ``workers`` (dicts of cpus, threads, shard) together and time them past a barrier."""
    procs = []
    for i, spec in enumerate(workers):
        result = tmp / f"{pipeline}-{spec['threads']}t-{spec['shard'].replace('/', 'of')}-{i}.json"
        result.unlink(missing_ok=True)
        stderr = open(tmp / (result.stem + ".err"), "w+")  # noqa: SIM115 - closed below
        env = dict(os.environ, **{k: str(spec["threads"]) for k in THREAD_ENV})
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--pipeline", pipeline,
               "--threads", str(spec["threads"]), "--cpus", ",".join(map(str, spec["cpus"])),
               "--shard", spec["shard"], "--image-list", str(image_list), "--result", str(result),
               "--warmup", str(args.warmup)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                text=True, env=env, cwd=REPO_ROOT)
        procs.append((proc, result, stderr))

    ready = []
    for proc, _, _ in procs:
        line = proc.stdout.readline()  # "" when the worker exits before the barrier
        ready.append(line.strip() == "READY")
    for proc, _, _ in procs:
        try:
            if all(ready):
                proc.stdin.write("GO\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
    results = []
    for proc, result, stderr in procs:
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.seek(0)
        tail = stderr.read()[-1500:]
        stderr.close()
        if result.is_file():
            data = json.loads(result.read_text())
        else:
            data = {"status": "failed", "error": f"worker exited with {proc.returncode}: {tail.strip()}"}
        if data.get("status") == "ok" and not all(ready):
            data["status"] = "failed"
        data["returncode"] = proc.returncode
        results.append(data)

    bad = [r for r in results if r.get("status") != "ok"]
    if bad:
        statuses = {r.get("status") for r in bad}
        status = "not installed" if statuses == {"not installed"} else "failed"
        errors = "; ".join(dict.fromkeys(r.get("error") or "a sibling worker failed" for r in bad))
        return {"status": status, "error": errors, "workers": results}
    wall = max(r["wall_end"] for r in results) - min(r["wall_start"] for r in results)
    images = sum(r["images"] for r in results)
    return {"status": "ok", "images": images, "wall_s": wall,
            "images_per_s": images / wall if wall > 0 else None, "workers": results}


def measure(pipeline: str, cpus: list[int], cores: int, image_list: Path, tmp: Path, args) -> dict:
    """Every configuration of one pipeline, as one table row."""
    label = (f"{PEER} (HOG, 5-pt, 1 jitter)" if pipeline == PEER else f"faceprint {pipeline}")
    row: dict = {"pipeline": label, "key": pipeline, "kind": "peer" if pipeline == PEER else "faceprint"}
    log(f"[speed] {label}: 1 core")
    one = run_config(pipeline, [{"cpus": cpus[:1], "threads": 1, "shard": "0/1"}], image_list, tmp, args)
    row["configs"] = {"1 core": one}
    if one["status"] != "ok":
        row.update(status=one["status"], error=one["error"])
        return row
    w = one["workers"][0]
    row.update(
        status="ok", images=w["images"], faces_embedded=w["faces_embedded"],
        detect_ms=w["detect_ms"], align_ms=w["align_ms"], embed_ms=w["embed_ms"], total_ms=w["total_ms"],
        align_ms_by_model=w["align_ms_by_model"], embed_ms_by_model=w["embed_ms_by_model"],
        template_max_abs_diff=w.get("template_max_abs_diff"), load_and_warmup_s=w["load_and_warmup_s"],
        img_s_1core=one["images_per_s"], cpu_ms_1core=w.get("cpu_ms_per_image"), img_s_2cores=None,
        two_core_mode=None,
    )
    if cores >= 2 and len(cpus) >= 2:
        log(f"[speed] {label}: 2 cores, 2 processes x 1 thread")
        procs = run_config(pipeline, [{"cpus": [cpus[0]], "threads": 1, "shard": "0/2"},
                                      {"cpus": [cpus[1]], "threads": 1, "shard": "1/2"}], image_list, tmp, args)
        log(f"[speed] {label}: 2 cores, 1 process x 2 threads")
        threads = run_config(pipeline, [{"cpus": cpus[:2], "threads": 2, "shard": "0/1"}], image_list, tmp, args)
        row["configs"].update({"2 processes": procs, "2 threads": threads})
        options = [(c["images_per_s"], name) for name, c in (("2 proc", procs), ("2 thr", threads))
                   if c["status"] == "ok" and c["images_per_s"]]
        row["img_s_2proc"] = procs.get("images_per_s")
        row["img_s_2thread"] = threads.get("images_per_s")
        if options:
            row["img_s_2cores"], row["two_core_mode"] = max(options)
        errors = [c["error"] for c in (procs, threads) if c["status"] != "ok"]
        if errors:
            row["two_core_errors"] = errors
    return row


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"



def image_sizes(paths: list[Path]) -> dict:
    from PIL import Image

    sizes: dict[str, int] = {}
    for p in paths:
        with Image.open(p) as img:
            key = f"{img.width}x{img.height}"
        sizes[key] = sizes.get(key, 0) + 1
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def fmt_ms(s: dict | None) -> str:
    return "—" if not s else f"{s['median']:.1f} / {s['mean']:.1f}"


def fmt_rate(v: float | None) -> str:
    return "—" if not v else f"{v:.1f}"


def table(rows: list[dict], cores: int) -> str:
    head = ["pipeline", "detect ms", "align ms", "embed ms", "total ms/img (1 core)", "CPU ms/img (1 core)",
            "img/s 1 core",
            "img/s 2 cores", f"speed-up vs {PEER} (img/s {'2 cores' if cores >= 2 else '1 core'})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        missing = unavailable_row(r, len(head))
        if missing is not None:
            lines.append(missing)
            continue
        align = fmt_ms(r["align_ms"]) if r["kind"] == "faceprint" else "in embed"
        two = fmt_rate(r.get("img_s_2cores"))
        if r.get("img_s_2cores"):
            two += f" ({r['two_core_mode']})"
        elif cores < 2:
            two = "not run"
        ratio = r.get("speedup_vs_peer")
        lines.append("| " + " | ".join([
            r["pipeline"], fmt_ms(r["detect_ms"]), align, fmt_ms(r["embed_ms"]), fmt_ms(r["total_ms"]),
            fmt_rate(r.get("cpu_ms_1core")), fmt_rate(r["img_s_1core"]), two,
            "—" if ratio is None else f"{ratio:.2f}x",
        ]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=DEFAULT_IMAGES,
                    help=f"image folder (default {DEFAULT_IMAGES}, relative to the repo root)")
    ap.add_argument("--limit", type=int, default=200, help="images, spread evenly over the sorted list (0 = all)")
    ap.add_argument("--profiles", default="fast,accurate", help="faceprint profiles, comma-separated")
    ap.add_argument("--skip-peer", action="store_true", help=f"do not run {PEER}")
    ap.add_argument("--cores", type=int, choices=(1, 2), default=2, help="measure up to this many cores")
    ap.add_argument("--cpus", default=None, help="CPU ids to pin to (default: the first allowed ones)")
    ap.add_argument("--warmup", type=int, default=3, help="images run before timing, per worker")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker after the barrier")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT} in the repo)")
    # Internal: one worker process.
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pipeline", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--shard", default="0/1", help=argparse.SUPPRESS)
    ap.add_argument("--image-list", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)

    images_root = Path(args.images)
    if not images_root.is_absolute() and args.images == DEFAULT_IMAGES:
        images_root = REPO_ROOT / images_root
    out = Path(args.out)
    if not out.is_absolute() and args.out == DEFAULT_OUT:
        out = REPO_ROOT / out
    images_root = images_root.resolve()
    if not images_root.is_dir():
        log(f"[speed] no image folder {images_root}")
        return 2
    paths, selection = select_images(images_root, args.limit)
    if not paths:
        log(f"[speed] no images under {images_root}")
        return 2
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else allowed
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    pipelines = profiles + ([] if args.skip_peer else [PEER])

    meta = {
        "cpu": cpu_model(),
        "cpus_allowed": len(allowed),
        "cpus_used": cpus[: args.cores],
        "images": {"root": str(images_root.resolve()), "count": len(paths), "sizes": image_sizes(paths),
                   "selection": selection},
        "versions": versions(),
        "warmup_images": args.warmup,
        "notes": "ms cells are median / mean per image (detect, total) or per embedded face (align, embed); "
                 "decoding and model loading excluded; 1 thread per runtime per core",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="faceprint-speed-") as tmp:
        image_list = Path(tmp) / "images.txt"
        image_list.write_text("\n".join(str(p.resolve()) for p in paths) + "\n")
        for pipeline in pipelines:
            rows.append(measure(pipeline, cpus, args.cores, image_list, Path(tmp), args))

    peer = next((r for r in rows if r["kind"] == "peer" and r["status"] == "ok"), None)
    basis = "img_s_2cores" if args.cores >= 2 and len(cpus) >= 2 else "img_s_1core"
    for r in rows:
        if peer and r["status"] == "ok" and r.get(basis) and peer.get(basis):
            r["speedup_vs_peer"] = r[basis] / peer[basis]
        else:
            r["speedup_vs_peer"] = None
        r["speedup_basis"] = basis

    v = meta["versions"]
    lines = [
        f"CPU: {meta['cpu']} ({meta['cpus_allowed']} CPUs allowed, pinned to {meta['cpus_used']})",
        f"Images: {len(paths)} from {images_root} ({', '.join(f'{k}: {n}' for k, n in meta['images']['sizes'].items())})",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "Cells in ms are median / mean; detect and total per image, align and embed per embedded face; "
        "decoding and model loading excluded.",
        "",
        table(rows, args.cores if len(cpus) >= 2 else 1),
        "",
    ]
    for r in rows:
        if r["status"] == "ok":
            extra = ""
            if r.get("embed_ms_by_model") and len(r["embed_ms_by_model"]) > 1:
                extra = "; embed by model: " + ", ".join(
                    f"{m} {s['median']:.1f}" for m, s in r["embed_ms_by_model"].items() if s)
            both = ""
            if r.get("img_s_2proc") or r.get("img_s_2thread"):
                both = f"; 2 cores: 2 proc {fmt_rate(r.get('img_s_2proc'))}, 2 thr {fmt_rate(r.get('img_s_2thread'))} img/s"
            lines.append(f"- {r['pipeline']}: faces embedded {r['faces_embedded']}/{r['images']}{both}{extra}")
            for err in r.get("two_core_errors", []):
                lines.append(f"  - 2-core run failed: {err[:300]}")
        elif r["status"] == "not installed":
            lines.append(f"- {r['pipeline']}: not installed ({r['error']}); install with: {PEER_INSTALL}")
        else:
            lines.append(f"- {r['pipeline']}: failed: {r['error'][:500]}")
    print("\n".join(lines))

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    log(f"[speed] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
