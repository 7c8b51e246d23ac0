"""Active liveness (faceprint.pad.active) on real faces: stills, real photo sequences, the Hamilton clip.

Ground truth in tests/data/active_liveness_truth.json was established by viewing: LFW head
directions and Yale "sleepy" eyes from contact sheets of the photos; Hamilton blinks from
contrast-stretched face and eye crops of every frame of the clip.

A still photo cannot blink or turn: videos made from one photo, with small random rotation, zoom,
translation, brightness changes and pixel noise, must fail. Sequences stitched from several real
photos of one person (LFW: frontal / turned left / turned right; Yale: normal / sleepy / happy)
stand in for a live person acting on request: each frame is a real face, the change between
frames is a real change of pose, eyelids or mouth.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceprint.pad import active as al
from faceprint.pipeline.detection import central_face
from faceprint.pipeline.image_io import load_image

TRUTH = json.loads((Path(__file__).parent / "data" / "active_liveness_truth.json").read_text())
FPS = 12.0


@pytest.fixture(scope="module")
def finder(engine_fast):
    return engine_fast.finder


@pytest.fixture(scope="module")
def landmarker(data_dir):
    from faceprint.models.registry import load_landmarker

    return load_landmarker()


def _rgb(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def _jitter(rgb: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """A hand-held-looking copy of ``rgb``: slow sway in rotation, zoom and position, plus noise."""
    h, w = rgb.shape[:2]
    angle = 1.5 * np.sin(2 * np.pi * t / 3.1) + rng.normal(0, 0.2)
    scale = 1 + 0.03 * np.sin(2 * np.pi * t / 2.3) + rng.normal(0, 0.003)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += (3 * np.sin(2 * np.pi * t / 1.7) + rng.normal(0, 0.5), 2 * np.cos(2 * np.pi * t / 2.9) + rng.normal(0, 0.5))
    frame = cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    frame = frame * (1 + rng.normal(0, 0.02)) + rng.normal(0, 2, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def _sequence(segments: list[tuple[np.ndarray, float]], fps: float = FPS, seed: int = 0):
    """(frame, time) pairs: each (image, seconds) segment shown for that long, jittered."""
    rng = np.random.default_rng(seed)
    t = 0.0
    for image, seconds in segments:
        for _ in range(max(1, round(seconds * fps))):
            yield _jitter(image, t, rng), t
            t += 1.0 / fps


def _still_video(photo: Path, path: Path, seconds: float = 4.0, fps: float = 15.0) -> Path:
    rgb = _rgb(photo)
    scale = 400 / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame, _ in _sequence([(rgb, seconds)], fps=fps):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _run(session: al.ActiveLivenessSession, frames) -> al.ActiveLivenessResult:
    for frame, t in frames:
        if session.feed(frame, t).done:
            break
    return session.result()


def _points(image, finder, landmarker):
    face = central_face(finder.find(image), image.shape)
    assert face is not None
    return landmarker.landmarks(image, face.box)


# --- the measures on real photos ------------------------------------------------------------


def test_yaw_sign_follows_head_direction_on_lfw(data_dir, finder, landmarker):
    images = data_dir / "lfw-view1" / "images"
    yaw = {group: [al.yaw_proxy(_points(load_image(images / name), finder, landmarker)) for name in names]
           for group, names in TRUTH["lfw_yaw"].items() if not group.startswith("_")}
    assert all(y < -0.3 for y in yaw["subject_right"]), yaw["subject_right"]
    assert all(y > 0.3 for y in yaw["subject_left"]), yaw["subject_left"]
    assert all(abs(y) < 0.15 for y in yaw["frontal"]), yaw["frontal"]


def test_yaw_of_mirrored_photo_is_negated(data_dir, finder, landmarker):
    images = data_dir / "lfw-view1" / "images"
    for name in TRUTH["lfw_yaw"]["subject_left"][:3]:
        image = load_image(images / name)
        points = _points(image, finder, landmarker)
        flipped = _points(np.ascontiguousarray(image[:, ::-1]), finder, landmarker)
        # Same head, opposite direction; dlib's points are not exactly mirror-symmetric at strong yaw.
        assert al.yaw_proxy(flipped) == pytest.approx(-al.yaw_proxy(points), abs=0.2)
        assert al.yaw_proxy(points, mirrored=True) == pytest.approx(-al.yaw_proxy(points))


def _yale(data_dir, finder, landmarker, subject: int, condition: str) -> al.FaceMeasures:
    image = _rgb(data_dir / "yale" / f"subject{subject:02d}.{condition}")
    return al.FaceMeasures.from_landmarks(_points(image, finder, landmarker))


def test_eye_aspect_ratio_drops_for_closed_eyes_on_yale(data_dir, finder, landmarker):
    ratio = {s: _yale(data_dir, finder, landmarker, s, "sleepy").ear / _yale(data_dir, finder, landmarker, s, "normal").ear
             for s in range(1, 16)}
    closed = TRUTH["yale_sleepy"]["eyes_closed"]
    below = [s for s in closed if ratio[s] < al.ActiveConfig().blink_close_ratio]
    assert len(below) >= len(closed) - 1, ratio
    for s in TRUTH["yale_sleepy"]["eyes_open"]:
        assert ratio[s] > 0.95, ratio


def test_mouth_ratio_rises_for_smiles_on_yale(data_dir, finder, landmarker):
    threshold = al.ActiveConfig().smile_ratio
    happy, sleepy = [], []
    for s in range(1, 16):
        normal = _yale(data_dir, finder, landmarker, s, "normal").mouth
        happy.append(_yale(data_dir, finder, landmarker, s, "happy").mouth / normal)
        sleepy.append(_yale(data_dir, finder, landmarker, s, "sleepy").mouth / normal)
    assert sum(r > threshold for r in happy) >= 13, happy
    assert sum(r < threshold for r in sleepy) >= 14, sleepy


# --- (a) a still photo cannot pass ---------------------------------------------------------------


@pytest.mark.parametrize("photo", ["video/obama.jpg", "lfw-view1/images/Tom_Cruise/Tom_Cruise_0001.jpg"])
def test_video_of_a_still_photo_fails_by_timeout(data_dir, finder, landmarker, tmp_path, photo):
    video = _still_video(data_dir / photo, tmp_path / "still.mp4", seconds=4.0)
    report = al.count_blinks(video, finder=finder, landmarker=landmarker)
    assert report.blink_count == 0
    assert max(t.frames for t in report.tracks) >= 55  # the face was followed all along
    session = al.ActiveLivenessSession(["blink"], timeout_s=3.0, finder=finder, landmarker=landmarker)
    result = al.run_challenge(video, session)
    assert not result.passed
    assert result.reason.startswith("step 1 (blink): timeout: no blink within 3 s")
    assert result.face_frames == result.frames
    for seed in range(3):
        session = al.ActiveLivenessSession(n_steps=2, timeout_s=1.5, rng=random.Random(seed), finder=finder,
                                           landmarker=landmarker)
        result = al.run_challenge(video, session)
        assert not result.passed and "timeout" in result.reason, result.to_dict()


# --- real photo sequences standing in for a live person ------------------------------------------


def test_blink_detected_in_real_closed_eye_photos(data_dir, finder, landmarker):
    passed = {}
    for subject in TRUTH["yale_sleepy"]["eyes_closed"]:
        normal, sleepy = (_rgb(data_dir / "yale" / f"subject{subject:02d}.{c}") for c in ("normal", "sleepy"))
        session = al.ActiveLivenessSession(["blink"], finder=finder, landmarker=landmarker)
        result = _run(session, _sequence([(normal, 1.0), (sleepy, 0.2), (normal, 0.8)], seed=subject))
        passed[subject] = result.passed
        if result.passed:
            assert 0.9 <= result.steps[0].ended_s <= 1.5  # when the eyes opened again
    # Measured: 11 of 14. Missed: subject 13 (glasses: dlib keeps the eyes open) and subjects 1 and
    # 11, whose sleepy mouths are wide enough to count as a smile, which suppresses the blink.
    assert sum(passed.values()) >= 10, passed


def test_no_blink_when_the_sleepy_photo_has_open_eyes(data_dir, finder, landmarker):
    subject = TRUTH["yale_sleepy"]["eyes_open"][0]
    normal, sleepy = (_rgb(data_dir / "yale" / f"subject{subject:02d}.{c}") for c in ("normal", "sleepy"))
    session = al.ActiveLivenessSession(["blink"], finder=finder, landmarker=landmarker)
    result = _run(session, _sequence([(normal, 1.0), (sleepy, 0.2), (normal, 0.8)]))
    assert not result.passed


def _turn_stream(data_dir, index: int):
    images = data_dir / "lfw-view1" / "images"
    frontal, left, right = (load_image(images / TRUTH["lfw_yaw"][g][index]) for g in ("frontal", "subject_left", "subject_right"))
    return _sequence([(frontal, 1.0), (left, 0.4), (frontal, 0.6), (right, 0.4), (frontal, 0.6)], seed=index)


@pytest.mark.parametrize("index", range(5))
def test_turns_pass_in_the_recorded_order_and_fail_replayed_for_another(data_dir, finder, landmarker, index):
    recorded = al.ActiveLivenessSession(["turn_left", "turn_right"], finder=finder, landmarker=landmarker)
    result = _run(recorded, _turn_stream(data_dir, index))
    assert result.passed, result.to_dict()
    assert result.steps[0].value > 0.35 and result.steps[1].value < -0.35
    replayed = al.ActiveLivenessSession(["turn_right", "turn_left"], finder=finder, landmarker=landmarker)
    result = _run(replayed, _turn_stream(data_dir, index))
    assert not result.passed
    assert result.reason == "step 1 (turn_right): wrong action: turn_left when asked to turn_right"


def test_blink_then_smile_recording_fails_other_orders(data_dir, finder, landmarker):
    normal, sleepy, happy = (_rgb(data_dir / "yale" / f"subject09.{c}") for c in ("normal", "sleepy", "happy"))
    segments = [(normal, 1.0), (sleepy, 0.2), (normal, 0.8), (happy, 0.4), (normal, 0.6)]
    outcomes = {}
    for order in (["blink", "smile"], ["smile", "blink"], ["turn_left", "blink"], ["smile"]):
        session = al.ActiveLivenessSession(order, finder=finder, landmarker=landmarker)
        outcomes[",".join(order)] = _run(session, _sequence(segments)).passed
    assert outcomes == {"blink,smile": True, "smile,blink": False, "turn_left,blink": False, "smile": True}


# --- (d) the random order ------------------------------------------------------------------


def test_challenge_order_is_random_and_reproducible_with_a_seed():
    assert al.random_challenge(3, random.Random(7)) == al.random_challenge(3, random.Random(7))
    orders = {tuple(al.random_challenge(2, random.Random(seed))) for seed in range(10)}
    assert len(orders) > 3
    secure = {tuple(al.random_challenge(4)) for _ in range(20)}
    assert len(secure) > 1
    a = al.ActiveLivenessSession(n_steps=2, rng=random.Random(1), finder=object(), landmarker=object())
    b = al.ActiveLivenessSession(n_steps=2, rng=random.Random(1), finder=object(), landmarker=object())
    assert a.challenge == b.challenge and len(set(a.challenge)) == 2
    with pytest.raises(al.ChallengeError):
        al.ActiveLivenessSession(["blink", "blink"])
    with pytest.raises(al.ChallengeError):
        al.random_challenge(5)


# --- (b) the Hamilton clip ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hamilton(data_dir, finder, landmarker):
    return al.count_blinks(data_dir / "video" / "short_hamilton_clip.mp4", finder=finder, landmarker=landmarker)


def _blinks_in(report: al.BlinkReport, frames: list[int], centre_x: list[float], fps: float = 29.97):
    start, end = frames[0] / fps - 0.1, frames[1] / fps + 0.1
    return [b for t in report.tracks if centre_x[0] <= t.centre[0] <= centre_x[1]
            for b in t.blinks if b.end_s >= start and b.start_s <= end]


def test_hamilton_faces_are_tracked_per_scene(hamilton):
    audience = [t for t in hamilton.tracks if t.first_s >= 7.0 and t.frames >= 40]
    assert len(audience) >= 4  # the Obamas and the people beside them, after the cut at frame 211
    speaker = [t for t in hamilton.tracks if 2.7 <= t.first_s <= 2.8 and t.frames >= 120]
    assert len(speaker) == 1  # Lin-Manuel Miranda from the cut at frame 82 to the cut at 211


def test_hamilton_no_blink_where_eyes_stay_open(hamilton):
    for case in TRUTH["hamilton"]["no_blink"]:
        assert _blinks_in(hamilton, case["frames"], case["centre_x"]) == [], case["who"]


@pytest.mark.xfail(strict=True, reason="known miss: dlib's 68 points do not follow the eyelids of the dark "
                                        "3/4-profile faces (about 68 px) of the audience, so EAR stays flat")
def test_hamilton_viewed_blinks_are_found(hamilton):
    for case in TRUTH["hamilton"]["blinks"]:
        assert _blinks_in(hamilton, case["frames"], case["centre_x"]), case["who"]


# --- CLI ------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    from faceprint import cli

    if "liveness" in cli.SUBCOMMAND_MODULES:
        return cli.main(argv)
    from faceprint.cli import liveness as cli_liveness

    parser = argparse.ArgumentParser(prog="faceprint")
    parser.add_argument("--json", action="store_true")
    common = argparse.ArgumentParser(add_help=False)
    cli_liveness.register(parser.add_subparsers(dest="command", required=True), None, common)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_liveness_challenge_on_still_video(data_dir, tmp_path, capsys):
    video = _still_video(data_dir / "video" / "biden.jpg", tmp_path / "biden.mp4", seconds=2.5)
    assert _cli(["--json", "liveness-challenge", str(video), "--steps", "blink", "--timeout", "1.5"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["passed"] is False and out["challenge"] == ["blink"]
    assert "Blink your eyes" in captured.err
    assert _cli(["--json", "liveness-challenge", str(video), "--blinks-only"]) == 0
    assert json.loads(capsys.readouterr().out)["blinks"] == 0
    try:  # through faceprint.cli.main the error becomes exit status 2
        code = _cli(["liveness-challenge", str(video), "--steps", "jump"])
    except al.ChallengeError:
        code = 2
    assert code == 2
