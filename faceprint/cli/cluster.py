"""``faceprint cluster``, ``faceprint cluster-name`` and ``faceprint eval cluster``: grouping unknown faces."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..grouping.clustering import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_LINK_FMR
from .common import GALLERY_HELP, add_output_option, emit, engine_from_args, table


def cmd_cluster(args: argparse.Namespace) -> int:
    """Group the faces of a folder, image or video into clusters and write the output folder."""
    from ..grouping.faces import group_faces

    engine = engine_from_args(args, args.gallery)
    result = group_faces(engine, args.input, args.out, gallery=args.gallery, algorithm=args.algorithm,
                         link_fmr=args.link_fmr, threshold=args.link_threshold, min_size=args.min_size,
                         every=args.every, progress=not args.json and sys.stderr.isatty())
    faces = result.faces
    rows = []
    for c in result.clusters:
        rep = faces[c["representative"]]
        where = rep.source + (f" @ {rep.time_s:.1f}s" if rep.time_s is not None else "")
        rows.append((c["id"], c["size"], where, rep.crop))
    text = table(rows, ["cluster", "faces", "representative face", "crop"]) if rows else "no cluster"
    text += (f"\n{len(faces)} face(s) in {result.inputs_read} input(s): {len(result.clusters)} cluster(s), "
             f"{len(result.noise)} alone, {len(result.known)} already enrolled"
             f"\nalgorithm {result.algorithm}, link threshold {result.threshold:.4f}, model {result.model}"
             f"\noutput: {args.out} (clusters.json, contact_sheet.png); name a cluster with: "
             f"faceprint cluster-name {args.out} CLUSTER_ID PERSON --gallery GALLERY")
    if result.skipped_faces:
        issues = Counter(", ".join(s["issues"]) or "low quality" for s in result.skipped_faces)
        text += (f"\n{len(result.skipped_faces)} face(s) skipped by the quality gate, not clustered: "
                 + "; ".join(f"{issue}: {n}" for issue, n in issues.most_common()))
    if result.skipped:
        text += "\nskipped:\n" + "\n".join(f"  {s['source']}: {s['reason']}" for s in result.skipped)
    emit(args, result.to_dict(), text)
    return 0


def cmd_cluster_name(args: argparse.Namespace) -> int:
    """Enrol one or more clusters of an output folder as one person."""
    from ..grouping.faces import name_cluster

    try:
        ids = [int(v) for v in args.cluster.split(",") if v.strip()]
    except ValueError:
        from ..grouping.faces import ClusterOutputError

        raise ClusterOutputError(f"cluster ids must be integers like 3 or 3,7, got {args.cluster!r}") from None
    record = name_cluster(args.out_dir, ids, args.person, args.gallery)
    emit(args, {"person": record.name, "clusters": ids, "faces_total": record.face_count, "gallery": args.gallery},
         f"enrolled cluster(s) {', '.join(map(str, ids))} as {record.name}: {record.face_count} face(s) in "
         f"{args.gallery}")
    return 0


def cmd_eval_cluster(args: argparse.Namespace) -> int:
    """Cluster LFW faces with each algorithm and report pairwise and BCubed figures."""
    from ..evaluation.clustering import run_cluster_eval

    engine = engine_from_args(args)
    run = run_cluster_eval(engine, Path(args.images), Path(args.out), pairs=Path(args.pairs) if args.pairs else None,
                           algorithms=args.algorithms.split(","), link_fmr=args.link_fmr,
                           threshold=args.link_threshold,
                           singletons=args.singletons, progress=not args.json, cache=not args.no_cache)
    emit(args, run.to_dict(), "\n".join(run.summary_lines() + [f"figures: {Path(args.out) / 'report.json'}"]))
    return 0


def _algorithms(text: str) -> str:
    unknown = [a for a in text.split(",") if a not in ALGORITHMS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown algorithm(s) {', '.join(unknown)}; choose from {', '.join(ALGORITHMS)}")
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--link-fmr", type=float, default=DEFAULT_LINK_FMR,
                   help=f"two faces are linked at the profile's threshold for this false-match rate "
                        f"(default {DEFAULT_LINK_FMR:g}, chosen on LFW DevTrain)")
    p.add_argument("--link-threshold", type=float, default=None,
                   help="explicit cosine threshold for linking (overrides --link-fmr)")


def register(sub, eval_sub, common) -> None:
    """Add ``cluster``, ``cluster-name`` and ``eval cluster``."""
    p = sub.add_parser("cluster", parents=[common], help="group the faces of people not enrolled into clusters")
    p.add_argument("input", help="a folder of images (searched recursively), an image, or a video file")
    add_output_option(p, "--out", kind="folder", required=True, help="output folder (clusters.json, crops, contact_sheet.png)")
    p.add_argument("--gallery", help=GALLERY_HELP + "; faces matching an enrolled person are left out")
    p.add_argument("--algorithm", choices=list(ALGORITHMS), default=DEFAULT_ALGORITHM,
                   help=f"clustering algorithm (default {DEFAULT_ALGORITHM})")
    _link_options(p)
    p.add_argument("--min-size", type=_positive, default=2, help="smaller clusters are listed as faces alone (default 2)")
    p.add_argument("--every", type=_positive, default=10, help="video: use every N-th frame (default 10)")
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("cluster-name", parents=[common], help="enrol a cluster from 'faceprint cluster' as a person")
    p.add_argument("out_dir", help="the output folder of 'faceprint cluster'")
    p.add_argument("cluster", help="cluster id, or several comma-separated (one person split in two clusters)")
    p.add_argument("person", help="the person's name")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP + "; created if missing")
    p.set_defaults(func=cmd_cluster_name)

    e = eval_sub.add_parser("cluster", parents=[common],
                            help="clustering accuracy (pairwise and BCubed) on an LFW-layout folder")
    e.add_argument("--images", required=True, help="LFW-layout folder: NAME/NAME_0001.jpg")
    e.add_argument("--pairs", help="only the people of this pairs file (e.g. pairsDevTest.txt)")
    e.add_argument("--singletons", action="store_true", help="add people with one image (each must stay alone)")
    e.add_argument("--algorithms", type=_algorithms, default=",".join(ALGORITHMS),
                   help=f"comma-separated (default {','.join(ALGORITHMS)})")
    _link_options(e)
    add_output_option(e, "--out", kind="folder", default="out/eval-cluster", help="folder for report.json (default out/eval-cluster)")
    e.add_argument("--no-cache", action="store_true", help="recompute every template")
    e.set_defaults(func=cmd_eval_cluster)
