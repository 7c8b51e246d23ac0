"""``faceprint video``: who appears in a video file, camera or stream, and when."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from .cli_common import GALLERY_HELP, emit, engine_from_args, table
from .errors import FaceprintError

log = logging.getLogger("faceprint")


def _profile_for(args: argparse.Namespace) -> str:
    """The profile to run: ``--model`` when it names a non-default profile, else the gallery's own.

    A gallery's templates can only be searched with the profile that made them, so without an
    explicit choice the gallery's profile is used: fast for a gallery enrolled with ``--model
    fast``, otherwise that profile with a warning about speed. (The shared ``--model`` option
    defaults to the still-image default, which is not told apart from an explicit choice of it.)
    """
    from .gallery import open_gallery
    from .profiles import DEFAULT_PROFILE, get, names, register_model_config
    from .video_recognition import VIDEO_PROFILE

    if args.model and args.model != DEFAULT_PROFILE:
        return args.model
    register_model_config(args.model_config)
    with open_gallery(args.gallery) as gallery:
        model_id = gallery.model
    if model_id == get(VIDEO_PROFILE).model_id:
        return VIDEO_PROFILE
    for name in names():
        if get(name).model_id == model_id:
            log.warning("gallery %s was enrolled with profile '%s'; using it (slower than '%s': enrol with "
                        "--model %s for video)", args.gallery, name, VIDEO_PROFILE, VIDEO_PROFILE)
            return name
    raise FaceprintError(f"gallery {args.gallery} holds templates of model '{model_id}', which no profile makes")


def cmd_video(args: argparse.Namespace) -> int:
    """Track and name every face in a video; print a summary, write the JSON timeline and annotated video."""
    from tqdm import tqdm

    from .draw_video import AnnotatedVideoWriter
    from .video_recognition import VideoRecognizer, VideoSettings
    from .video_source import VideoSource

    if args.every < 1 or args.stride < 1:
        raise FaceprintError("--every and --stride must be at least 1")
    args.model = _profile_for(args)
    settings = VideoSettings(every=args.every, stride=args.stride, min_face=args.min_face,
                             max_frames=args.max_frames)
    engine = engine_from_args(args)
    with VideoSource(args.source) as source, engine.open_gallery(args.gallery, create=False) as gallery:
        total = source.frame_count if args.max_frames is None else min(source.frame_count or args.max_frames,
                                                                       args.max_frames)
        show = not args.json and (args.progress or sys.stderr.isatty())
        writer = AnnotatedVideoWriter(args.out_video, source.fps / args.stride, source.size) if args.out_video else None
        try:
            with tqdm(total=math.ceil(total / args.stride) if total else None, desc="video", unit="frame",
                      disable=not show, dynamic_ncols=True) as bar:
                timeline = VideoRecognizer(engine, gallery, settings).run(
                    source,
                    on_frame=(lambda frame, tracks: writer.write(frame.image, tracks)) if writer else None,
                    progress=bar.update,
                )
        finally:
            if writer is not None:
                writer.close()
    data = timeline.to_dict()
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(data, indent=1))
    emit(args, data, _summary(timeline, args))
    return 0


def _summary(timeline, args: argparse.Namespace) -> str:
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
    if args.out_json:
        text += f"\ntimeline: {args.out_json}"
    if args.out_video:
        text += f"\nannotated video: {args.out_video}"
    return text


def register(sub, eval_sub, common) -> None:
    """Add ``faceprint video``."""
    from .video_recognition import VIDEO_PROFILE, VideoSettings

    defaults = VideoSettings()
    p = sub.add_parser("video", parents=[common], help="track and name faces in a video file, camera or stream",
                       description="Track and name faces in a video. Without --model: the "
                                   f"'{VIDEO_PROFILE}' profile, or the profile the gallery was enrolled with.")
    p.add_argument("source", metavar="IN", help="video file, camera index (0, 1 ...) or rtsp:// / http:// URL")
    p.add_argument("--gallery", required=True, help=GALLERY_HELP)
    p.add_argument("--out-json", help="write the JSON timeline here")
    p.add_argument("--out-video", help="write an annotated copy here (.mp4 or .avi)")
    p.add_argument("--every", type=int, default=defaults.every,
                   help=f"most frames between detections; fewer when faces move (default {defaults.every})")
    p.add_argument("--stride", type=int, default=1, help="analyse every STRIDE-th frame only (default 1: all)")
    p.add_argument("--min-face", type=float, default=defaults.min_face,
                   help=f"shortest face side in pixels worth recognising (default {defaults.min_face:g})")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (cameras, streams)")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal (never with --json)")
    p.set_defaults(func=cmd_video)
