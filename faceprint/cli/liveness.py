"""``faceprint liveness-challenge``: active liveness (blink / turn / smile on request) on a camera or video."""

from __future__ import annotations

import argparse
import random
import sys

from .common import emit, table


def cmd_liveness_challenge(args: argparse.Namespace) -> int:
    """Run a challenge (or count blinks with --blinks-only); exit 0 when passed, 1 when failed."""
    from ..models import registry
    from ..pad.active import ActiveLivenessSession, count_blinks, run_challenge

    source = int(args.source) if args.source.isdigit() else args.source
    passive = registry.load("pad-passive")
    if args.blinks_only:
        report = count_blinks(source, every=args.every, passive=passive)
        rows = [
            (t.track_id, f"{t.first_s:.2f}-{t.last_s:.2f}", t.frames, len(t.blinks),
             ", ".join(f"{b.start_s:.2f}-{b.end_s:.2f}" for b in t.blinks) or "-",
             f"{t.passive.score:.3f} {'LIVE' if t.passive.is_live else 'SPOOF'}" if t.passive.frames else "-")
            for t in report.tracks if t.frames >= args.min_track_frames
        ]
        text = table(rows, ["track", "seen (s)", "frames", "blinks", "blink times (s)", "passive live score"])
        text += f"\n{report.blink_count} blink(s) in {report.frames} frames of {report.source}"
        emit(args, report.to_dict(), text)
        return 0

    steps = args.steps.split(",") if args.steps else None
    rng = random.Random(args.seed) if args.seed is not None else None
    session = ActiveLivenessSession(steps, n_steps=args.n_steps, timeout_s=args.timeout, rng=rng,
                                    mirrored=args.mirrored, passive=passive)
    shown: list[str | None] = [None]

    def show(state) -> None:
        if state.instruction != shown[0] and not state.done:
            shown[0] = state.instruction
            print(f"[{state.phase}] {state.instruction} ({args.timeout:g} s)", file=sys.stderr)

    result = run_challenge(source, session, every=args.every, on_state=show)
    rows = [(i + 1, s.action, "pass" if s.passed else "FAIL", f"{s.started_s:.2f}-{s.ended_s:.2f}", s.reason or "-")
            for i, s in enumerate(result.steps)]
    text = table(rows, ["step", "action", "result", "time (s)", "reason"])
    p = result.passive
    if not result.passed:
        verdict = f"NOT VERIFIED: {result.reason}"
    elif not result.live and p.frames and p.not_judged == p.frames:
        verdict = ("NOT VERIFIED: every step passed, but the passive check could not judge the frames: the face is "
                   "greyscale (an infrared or black-and-white camera); use a colour camera")
    elif not result.live:
        verdict = (f"NOT VERIFIED: every step passed, but passive liveness failed ({p.attack_type} attack suspected, "
                   f"mean live score {p.score:.3f} < {p.threshold:.3f})" if p.frames else
                   "NOT VERIFIED: every step passed, but no face was seen for the passive check")
    else:
        verdict = "LIVE: every step passed and the passive check too"
    text += f"\nchallenge {','.join(result.challenge)}: {verdict}"
    if p.frames:
        text += (f"\npassive liveness: mean live score {p.score:.3f} over {p.frames} frames "
                 f"({p.to_dict()['live_frames']} live)")
    emit(args, result.to_dict(), text)
    return 0 if result.live else 1


def register(sub, eval_sub, common) -> None:
    """Add ``liveness-challenge`` to the top-level subcommands."""
    from ..pad.active import ACTIONS

    p = sub.add_parser("liveness-challenge", parents=[common],
                       help="active liveness: blink / turn / smile on request, from a camera or video "
                            "(exit 0 passed, 1 failed)")
    p.add_argument("source", help="camera index (0, 1 ...), video file or stream URL")
    p.add_argument("--steps", help=f"comma-separated actions in order, from {','.join(ACTIONS)} "
                                   "(default: --n-steps drawn at random)")
    p.add_argument("--n-steps", type=int, default=2, help="number of random steps (default 2)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds allowed per step (default 5)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for the step order (tests only: the default secure random order is the replay guard)")
    p.add_argument("--mirrored", action="store_true",
                   help="frames are mirrored like a selfie preview (swaps what counts as left and right)")
    p.add_argument("--every", type=int, default=1, help="use every N-th frame (default 1)")
    p.add_argument("--blinks-only", action="store_true",
                   help="no challenge: report every face's blinks and their times")
    p.add_argument("--min-track-frames", type=int, default=10,
                   help="--blinks-only: hide face tracks shorter than this (default 10)")
    p.set_defaults(func=cmd_liveness_challenge)
