"""``faceprint video``: who appears in a video file, camera or stream, and when.

While it runs it prints one line per sighting event on standard output (and writes them to
``--events`` / ``--webhook``). SIGINT (Ctrl-C) or SIGTERM stops it cleanly after the current frame:
the annotated video is finished, the timeline written, the summary printed and the exit status is
0; a second signal aborts at once (status 130, as any interrupted command).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path

from ..errors import FaceprintError
from .common import GALLERY_HELP, add_output_option, emit, resolve_profile, table

log = logging.getLogger("faceprint")


def _profile_for(args: argparse.Namespace) -> str:
    """The profile to run: ``--model`` when given, else the gallery's own (:func:`resolve_profile`).

    A gallery's templates can only be searched with the profile that made them, so without an
    explicit choice the gallery's profile is used: fast for a gallery enrolled with ``--model
    fast``, otherwise that profile with a warning about speed. An explicit ``--model`` of another
    profile than the gallery's is refused with what to pass instead.
    """
    from ..video.recognition import VIDEO_PROFILE

    profile = resolve_profile(args, args.gallery)
    if args.model is None and profile != VIDEO_PROFILE:
        log.warning("gallery %s was enrolled with profile '%s'; using it (slower than '%s': enrol with "
                    "--model %s for video)", args.gallery, profile, VIDEO_PROFILE, VIDEO_PROFILE)
    return profile


class StopOnSignals:
    """Within the ``with`` block, SIGINT and SIGTERM set :attr:`event` (stop after the current frame).

    A second signal restores the previous handlers and raises ``KeyboardInterrupt`` at once (the
    command then exits 130). :attr:`name` is the first signal's name (``SIGINT``), or ``None``.
    Outside the main thread (where Python cannot install handlers) the block runs unchanged.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.name: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.event.is_set():
            self._restore()
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name
        self.event.set()
        # os.write, not print: the main thread may be inside a write to stderr (progress bar, logging).
        os.write(2, f"faceprint: {self.name}: stopping after the current frame (again to abort)\n".encode())

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()


def _event_line(event, live: bool) -> str:
    """One console line for a sighting event: when, track, who, score against threshold."""
    when = event.wall[11:23] if live else f"{event.time_s:9.2f}s"
    who = event.person or "unknown"
    if event.score is None:
        score = "no score"
    else:
        score = f"score {event.score:.3f} {'>=' if event.score >= event.threshold else '<'} {event.threshold:.3f}"
        if event.person is None and event.nearest is not None:
            score += f" (nearest {event.nearest})"
    what = {"seen": "seen", "changed": "now", "ended": "ended"}[event.kind]
    text = f"{when}  track {event.track_id:<4d} {what:<6} {who:<24} {score}"
    if event.live is False:
        text += "  SPOOF suspected (passive liveness)"
    if event.expression is not None:
        text += f"  expression {event.expression}"
    if event.kind == "ended":
        text += f"  on screen {event.first_s:.2f}-{event.last_s:.2f} s"
    return text


def _event_outputs(args: argparse.Namespace):
    """The --events file and --webhook sinks (opened before the annotated video, so a bad path fails first)."""
    from ..video.events import EventOutputs, JsonLinesSink, WebhookSink

    sinks = []
    try:
        if args.events:
            sinks.append(JsonLinesSink(args.events))
        if args.webhook:
            sinks.append(WebhookSink(args.webhook))
    except FaceprintError:
        EventOutputs(sinks).close()
        raise
    return EventOutputs(sinks)


def cmd_video(args: argparse.Namespace) -> int:
    """Track and name every face in a video; print events as they happen, then a summary, the JSON timeline
    and the annotated video. Stopped by SIGINT/SIGTERM it still writes all of them and returns 0."""
    if args.every < 1 or args.stride < 1:
        raise FaceprintError("--every and --stride must be at least 1")
    if args.reconnect_max < 0:
        raise FaceprintError("--reconnect-max must be 0 (no reconnecting) or more")
    if args.expression_plot and "expression" not in (args.attributes or "").split(","):
        raise FaceprintError("--expression-plot needs --attributes expression (the series it plots)")
    with StopOnSignals() as stop:  # from here on a signal stops cleanly, even one while the models load
        timeline, outputs = _watch(args, stop.event)
    stopped_by = stop.name if timeline.ended == "stopped" else None
    data = timeline.to_dict()
    if args.expression_plot:
        from ..video.expressions import plot_expressions

        plot_expressions(timeline.tracks, args.expression_plot)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(data, indent=1))
    if stopped_by:
        print(f"faceprint: stopped by {stopped_by} after {timeline.stats.frames} frames; the summary and "
              "timeline cover what was seen until then", file=sys.stderr)
    emit(args, data, _summary(timeline, args, outputs, stopped_by))
    return 0


def _watch(args: argparse.Namespace, stop: threading.Event):
    """Open the source, gallery, event outputs and annotated video; run until the end or ``stop``; close.

    Returns the timeline and the (closed) event outputs.
    """
    from tqdm import tqdm

    from ..engine import Engine
    from ..video.draw import AnnotatedVideoWriter
    from ..video.recognition import VideoRecognizer, VideoSettings
    from ..video.source import ReconnectPolicy, VideoSource

    args.model = _profile_for(args)
    settings = VideoSettings(every=args.every, stride=args.stride, min_face=args.min_face,
                             max_frames=args.max_frames, liveness=args.require_live,
                             attributes=tuple(a for a in (args.attributes or "").split(",") if a))
    engine = Engine(args.model, fmr=args.fmr, threshold=args.threshold)  # the gallery's profile, checked above
    reconnect = ReconnectPolicy(attempts=args.reconnect_max)
    with (VideoSource(args.source, loop=args.loop, reconnect=reconnect) as source,
          engine.open_gallery(args.gallery, create=False) as gallery):
        total = source.frame_count if args.max_frames is None else min(source.frame_count or args.max_frames,
                                                                       args.max_frames)
        show = not args.json and (args.progress or sys.stderr.isatty())
        outputs = _event_outputs(args)
        writer = None
        try:
            if args.out_video:
                writer = AnnotatedVideoWriter(args.out_video, source.fps / args.stride, source.size)
            with tqdm(total=math.ceil(total / args.stride) if total else None, desc="video", unit="frame",
                      disable=not show, dynamic_ncols=True) as bar:

                def on_event(event) -> None:
                    if not args.json:
                        bar.write(_event_line(event, source.live), file=sys.stdout)
                        sys.stdout.flush()
                    outputs.emit(event)

                timeline = VideoRecognizer(engine, gallery, settings).run(
                    source,
                    on_frame=(lambda frame, tracks: writer.write(frame.image, tracks)) if writer else None,
                    progress=bar.update, on_event=on_event, stop=stop,
                )
        except KeyboardInterrupt:  # the second signal: abort without waiting for the webhook
            outputs.close(wait=False)
            raise
        finally:
            if writer is not None:
                writer.close()
            outputs.close()  # the webhook's queue drains here (a second signal aborts it)
    return timeline, outputs


def _summary(timeline, args: argparse.Namespace, outputs=None, stopped_by: str | None = None) -> str:
    """The console summary: named tracks, people, unknown tracks and speed."""
    named = [t for t in timeline.tracks if t.person is not None]
    rows = [(t.track_id, t.person, f"{t.first_s:.2f}", f"{t.last_s:.2f}", f"{t.score:.3f}",
             f"{t.best_score:.3f}" if t.best_score is not None else "-", t.templates) for t in named]
    text = (table(rows, ["track", "person", "first s", "last s", "track score", "best frame", "templates"])
            if rows else "no enrolled person recognised")
    people = timeline.people()
    if people:
        text += "\n\n" + table([(p.person, len(p.tracks), f"{p.seconds:.1f}", f"{p.first_s:.2f}", f"{p.last_s:.2f}",
                                 f"{p.best_score:.3f}") for p in people],
                               ["person", "tracks", "seconds on screen", "first s", "last s", "best score"])
    stats = timeline.stats
    unknown = len(timeline.tracks) - len(named)
    text += (f"\n\n{len(people)} known people in {len(named)} track(s); {unknown} unknown track(s); "
             f"threshold {timeline.threshold:.4f} (model {timeline.model})"
             f"\n{stats.frames} frames in {stats.elapsed_s:.1f} s ({stats.fps:.1f} frames/s): "
             f"{stats.detections} detections, {stats.embeddings} embeddings, {stats.scene_cuts} scene cuts")
    checked = [t for t in timeline.tracks if t.liveness is not None and t.liveness.frames]
    if checked:
        spoofs = [t for t in checked if not t.liveness.is_live]
        text += "\n\n" + table(
            [(t.track_id, t.person or "unknown", f"{t.liveness.score:.3f}", t.liveness.frames,
              "LIVE" if t.liveness.is_live else "NOT JUDGED (greyscale)" if t.liveness.not_judged == t.liveness.frames
              else f"SPOOF ({t.liveness.attack_type})") for t in checked],
            ["track", "person", "mean live score", "frames checked", "passive liveness"])
        text += (f"\n{len(spoofs)} of {len(checked)} checked track(s) failed passive liveness "
                 f"(mean live score below {checked[0].liveness.threshold:.4f})")
    followed = [t for t in timeline.tracks if t.expression is not None]
    if followed:
        text += "\n\n" + table(
            [(t.track_id, t.person or "unknown", t.expression.to_dict()["label"],
              ", ".join(f"{k} {v:.0%}" for k, v in t.expression.to_dict()["share"].items()), len(t.expression.samples))
             for t in followed], ["track", "person", "expression", "share of readings (smoothed)", "readings"])
    if stopped_by:
        text += f"\nstopped by {stopped_by}: results so far"
    elif timeline.ended == "lost":
        text += "\nthe stream dropped and did not come back (see --reconnect-max): results until then"
    if outputs is not None and outputs.sinks:
        text += f"\n{outputs.count} event(s)"
        for sink in outputs.sinks:
            if hasattr(sink, "delivered"):
                text += (f"; webhook {sink.url}: {sink.delivered} delivered, {sink.failed} failed, "
                         f"{sink.dropped} dropped")
            else:
                text += f"; file {sink.path}"
    if args.out_json:
        text += f"\ntimeline: {args.out_json}"
    if args.out_video:
        text += f"\nannotated video: {args.out_video}"
    if args.expression_plot:
        text += f"\nexpression plot: {args.expression_plot}"
    return text


def register(sub, eval_sub, common) -> None:
    """Add ``faceprint video``."""
    from ..video.recognition import VIDEO_PROFILE, VideoSettings
    from ..video.source import ReconnectPolicy

    defaults = VideoSettings()
    p = sub.add_parser("video", parents=[common], help="track and name faces in a video file, camera or stream",
                       description="Track and name faces in a video. Without --model: the "
                                   f"'{VIDEO_PROFILE}' profile, or the profile the gallery was enrolled with.")
    p.add_argument("source", metavar="IN", help="video file, camera index (0, 1 ...) or rtsp:// / http:// URL")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP)
    add_output_option(p, "--out-json", kind="file", help="write the JSON timeline here")
    add_output_option(p, "--out-video", kind="video", help="write an annotated copy here (.mp4 or .avi)")
    p.add_argument("--every", type=int, default=defaults.every,
                   help=f"most frames between detections; fewer when faces move (default {defaults.every})")
    p.add_argument("--stride", type=int, default=1, help="analyse every STRIDE-th frame only (default 1: all)")
    p.add_argument("--min-face", type=float, default=defaults.min_face,
                   help=f"shortest face side in pixels worth recognising (default {defaults.min_face:g})")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (cameras, streams)")
    p.add_argument("--require-live", action="store_true",
                   help="check passive liveness of every face at each detection and mark tracks whose mean live "
                        "score fails (SPOOF in the events and the summary, 'liveness' in the JSON)")
    p.add_argument("--attributes", metavar="LIST",
                   help="face attributes to follow over time per track: expression (smoothed probabilities in the "
                        "timeline, the current label in the events)")
    p.add_argument("--expression-plot", metavar="FILE",
                   help="with --attributes expression: plot each track's smoothed expression over time (PNG)")
    p.add_argument("--events", metavar="FILE",
                   help="append each sighting event (seen, changed, ended) to FILE as a JSON line, flushed at once")
    p.add_argument("--webhook", metavar="URL",
                   help="POST each sighting event as JSON to URL (background thread: a slow or dead receiver "
                        "never stalls the video; failures are logged)")
    p.add_argument("--loop", action="store_true",
                   help="replay a video file forever (a stand-in for a camera); stop with Ctrl-C")
    p.add_argument("--reconnect-max", type=int, default=ReconnectPolicy().attempts, metavar="N",
                   help="camera or stream: reopen attempts in a row after a drop, waiting 1, 2, 4 ... 30 s, "
                        f"before giving up (default {ReconnectPolicy().attempts}; 0: no reconnecting)")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal (never with --json)")
    p.set_defaults(func=cmd_video)
