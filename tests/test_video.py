"""The video pipeline end to end on a real clip, against hand-made ground truth.

The clip is ``../shared/data/video/short_hamilton_clip.mp4`` (275 frames, 640x360, 29.97 fps).
Its ground truth, ``tests/data/hamilton_truth.json``, was made by hand: shot cuts were found from
frame differences and checked by extracting the frames around each cut to /tmp with OpenCV and
viewing them with an image viewer; who is where was read off contact sheets of every 5th frame
(every 3rd in frames 42-81) and enlarged crops of frame 0, also extracted to /tmp and viewed (the
file's "how" field has the details). The two reference photos are enrolled with the fast profile,
the profile the video command uses by default.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.errors import FaceprintError
from faceprint.video.recognition import (
    SceneCutDetector,
    VideoRecognizer,
    VideoSettings,
    identify_every_frame,
    prefetched,
)
from faceprint.video.source import Frame, VideoOpenError, VideoSource

REPO_ROOT = Path(__file__).resolve().parents[1]
TRUTH = REPO_ROOT / "tests" / "data" / "hamilton_truth.json"
LIN, ALEX = "lin-manuel-miranda", "alex-lacamoire"


def _accuracy_module():
    spec = importlib.util.spec_from_file_location("video_accuracy", REPO_ROOT / "benchmarks" / "video_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


acc = _accuracy_module()


@pytest.fixture(scope="module")
def gallery_path(engine_fast, data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "people.db"
    truth, _ = acc.load_truth(TRUTH)
    for person, image in truth["enrolled"].items():
        engine_fast.enroll(person, [data_dir / image], path)
    return path


@pytest.fixture(scope="module")
def timeline(engine_fast, gallery_path, clip):
    with VideoSource(clip) as source, engine_fast.open_gallery(gallery_path, create=False) as gallery:
        return VideoRecognizer(engine_fast, gallery).run(source)


# -- the Hamilton clip -----------------------------------------------------------------------


def test_both_people_found_in_their_own_places_and_nobody_else_named(timeline):
    truth, segments = acc.load_truth(TRUTH)
    score = acc.score_frames(timeline.frame_labels(), segments, range(truth["frames"]))
    named = {t.person for t in timeline.tracks} - {None}
    assert named == {LIN, ALEX}
    # Precision 1: no name on the audience, no swap of the two people in the wide shot.
    assert score.overall.fp == 0, score.to_dict()
    assert score.by_person[LIN].recall >= 0.9, score.to_dict()
    # Alex Lacamoire is recognisable in the wide shot only (profile close-up afterwards).
    assert score.by_segment["0-19"].recall >= 0.9, score.to_dict()
    assert score.overall.recall >= 0.6, score.to_dict()


def test_tracks_keep_one_identity_and_end_at_cuts(timeline):
    assert sum(t.identity_switches for t in timeline.tracks) == 0
    assert timeline.stats.scene_cuts == 3
    for track in timeline.tracks:
        frames = [o.frame for o in track.observations]
        assert frames == sorted(frames)
        # No track crosses a cut (frames 20, 82, 211 start new shots).
        assert not any(f0 < cut <= f1 for cut in (20, 82, 211) for f0, f1 in [(frames[0], frames[-1])])
    lin_tracks = [t for t in timeline.tracks if t.person == LIN]
    wide, medium = sorted(lin_tracks, key=lambda t: t.first_s)
    assert wide.observations[0].frame <= 6 and wide.observations[-1].frame == 19
    # The whole medium shot (frames 82-210) is one track, even though he moves and turns.
    assert medium.observations[0].frame <= 88 and medium.observations[-1].frame >= 205
    assert medium.score >= timeline.threshold and medium.best_score >= medium.score - 0.3


def test_detector_runs_on_a_fraction_of_frames(timeline):
    stats = timeline.stats
    assert stats.frames == 275
    assert stats.detections < 0.5 * stats.frames
    assert stats.embeddings < 0.5 * stats.frames


def test_tracked_pipeline_finds_what_identify_every_frame_misses(engine_fast, gallery_path, clip, timeline):
    _, segments = acc.load_truth(TRUTH)
    with VideoSource(clip) as source, engine_fast.open_gallery(gallery_path, create=False) as gallery:
        labels, stats = identify_every_frame(engine_fast, gallery, source, max_frames=20)
    naive = acc.score_frames(labels, segments, range(20))
    tracked = acc.score_frames(timeline.frame_labels(), segments, range(20))
    assert stats.frames == 20 and naive.overall.fp == 0
    # The soft 25-pixel face at the piano fails the still-image quality gate in every frame.
    assert naive.by_person.get(ALEX, acc.Counts()).tp == 0
    assert tracked.by_person[ALEX].tp >= 18


def test_timeline_json_round_trip(timeline):
    data = json.loads(json.dumps(timeline.to_dict()))
    assert data["size"] == [640, 360] and data["frame_count"] == 275 and data["ended"] == "end"
    people = {p["person"]: p for p in data["people"]}
    assert set(people) == {LIN, ALEX}
    assert people[LIN]["seconds"] > people[ALEX]["seconds"] > 0.5
    track = next(t for t in data["tracks"] if t["person"] == ALEX)
    assert track["first_s"] < track["last_s"] < 0.7
    assert all(set(b) == {"frame", "t", "box", "detected"} for b in track["boxes"])
    assert any(b["detected"] for b in track["boxes"]) and not all(b["detected"] for b in track["boxes"])


def test_stride_and_max_frames(engine_fast, gallery_path, clip):
    settings = VideoSettings(stride=2, max_frames=40)
    with VideoSource(clip) as source, engine_fast.open_gallery(gallery_path, create=False) as gallery:
        result = VideoRecognizer(engine_fast, gallery, settings).run(source)
    assert result.stats.frames == 20
    frames = {o.frame for t in result.tracks for o in t.observations}
    assert frames and all(f % 2 == 0 and f < 40 for f in frames)
    assert {t.person for t in result.tracks} >= {LIN, ALEX}


# -- CLI -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    """The real parser when cli.video is wired into faceprint.cli, else one built the same way."""
    from faceprint import cli
    from faceprint.cli import video as cli_video

    if "video" in cli.SUBCOMMAND_MODULES:
        return cli.build_parser()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default=argparse.SUPPRESS)
    common.add_argument("--model-config", default=argparse.SUPPRESS)
    common.add_argument("--fmr", type=float, default=argparse.SUPPRESS)
    common.add_argument("--threshold", type=float, default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="faceprint")
    parser.set_defaults(model="accurate", model_config=None, fmr=1e-3, threshold=None, json=False, verbose=False)
    sub = parser.add_subparsers(dest="command", required=True)
    cli_video.register(sub, None, common)
    return parser


def test_cli_writes_timeline_and_annotated_video(gallery_path, clip, tmp_path, capsys):
    out_json, out_video = tmp_path / "timeline.json", tmp_path / "annotated.mp4"
    args = _parser().parse_args(["video", str(clip), "--gallery", str(gallery_path), "--max-frames", "30",
                                 "--out-json", str(out_json), "--out-video", str(out_video)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert LIN in text and ALEX in text and "frames/s" in text
    data = json.loads(out_json.read_text())
    assert data["model"] == "faceprint-fast-v1"  # the gallery's profile and the video default
    assert {p["person"] for p in data["people"]} == {LIN, ALEX}
    capture = cv2.VideoCapture(str(out_video))
    try:
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
        ok, frame = capture.read()
        assert ok and frame.shape == (360, 640, 3)
    finally:
        capture.release()


def test_cli_json_output_and_errors(gallery_path, clip, tmp_path, capsys):
    args = _parser().parse_args(["video", str(clip), "--gallery", str(gallery_path), "--max-frames", "10", "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["frames"] == 10
    args = _parser().parse_args(["video", str(tmp_path / "missing.mp4"), "--gallery", str(gallery_path)])
    with pytest.raises(VideoOpenError):
        args.func(args)
    args = _parser().parse_args(["video", str(clip), "--gallery", str(gallery_path), "--out-video",
                                 str(tmp_path / "x.gif")])
    with pytest.raises(FaceprintError, match="unsupported video extension"):
        args.func(args)
    args = _parser().parse_args(["video", str(clip), "--gallery", str(gallery_path), "--every", "0"])
    with pytest.raises(FaceprintError, match="at least 1"):
        args.func(args)


# -- pieces ----------------------------------------------------------------------------------


def test_scene_cut_detector_flags_a_new_shot_not_motion():
    rng = np.random.default_rng(0)
    shot_a = rng.integers(0, 255, (360, 640), dtype=np.uint8)
    shot_b = rng.integers(0, 255, (360, 640), dtype=np.uint8)
    cuts = SceneCutDetector(threshold=20.0)
    assert not cuts.is_cut(shot_a)
    assert not cuts.is_cut(np.roll(shot_a, 3, axis=1))  # a small pan
    assert cuts.is_cut(cv2.GaussianBlur(shot_b, (0, 0), 8) // 2 + 100)


def test_prefetch_keeps_order_and_raises_reader_errors():
    frames = [Frame(i, i / 25, np.zeros((2, 2, 3), np.uint8)) for i in range(50)]
    assert [f.index for f in prefetched(iter(frames), depth=4)] == list(range(50))

    def broken():
        yield frames[0]
        raise VideoOpenError("gone")

    got = []
    with pytest.raises(VideoOpenError, match="gone"):
        for frame in prefetched(broken(), depth=4):
            got.append(frame.index)
    assert got == [0]


def test_settings_are_checked():
    with pytest.raises(ValueError):
        VideoSettings(every=0)
    with pytest.raises(ValueError):
        VideoSettings(every=3, min_every=4)
    with pytest.raises(ValueError):
        VideoSettings(stride=0)
