"""``faceprint micro-expressions``: short, low-intensity movements of brows, eyes and mouth corners in a video."""

from __future__ import annotations

import argparse

from .common import add_output_option, emit, engine_from_args, table


def cmd_micro(args: argparse.Namespace) -> int:
    """Print every spotted event (region, onset / apex / offset frames and times, intensity); optionally plot."""
    from ..video.micro import SpotSettings, plot_movement, spot_micro_expressions

    engine = engine_from_args(args)
    settings = SpotSettings(max_duration_s=args.max_duration, max_frames=args.max_frames)
    result = spot_micro_expressions(args.video, engine, settings)
    if args.out:
        plot_movement(result, args.out)
    rows = [(e.region, e.onset, e.apex, e.offset, f"{e.onset_s:.2f}-{e.offset_s:.2f}", f"{e.duration_s:.2f}",
             f"{e.intensity:.3f}") for e in result.events]
    text = (table(rows, ["region", "onset", "apex", "offset", "time (s)", "duration (s)", "intensity (IOD)"])
            if rows else "no micro-expression spotted")
    text += (f"\n{len(result.events)} event(s) in {result.frames} frames ({result.face_frames} with a face) "
             f"of {result.source}" + (f"; plot: {args.out}" if args.out else ""))
    emit(args, result.to_dict(), text)
    return 0


def register(sub, eval_sub, common) -> None:
    """Add ``faceprint micro-expressions``."""
    p = sub.add_parser("micro-expressions", parents=[common],
                       help="spot short, low-intensity facial movements (onset, apex, offset) in a video")
    p.add_argument("video", help="video file, camera index or stream URL (the largest face is followed)")
    add_output_option(p, "--out", kind="plot", help="write a plot of each region's movement with the events shaded (PNG)")
    p.add_argument("--max-duration", type=float, default=0.5, help="longest movement reported, seconds (default 0.5)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.set_defaults(func=cmd_micro)
