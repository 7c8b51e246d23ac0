"""Micro-expression spotting on sequences made from real LFW photos with a planted subtle warp.

No labelled micro-expression set is available: each sequence is one LFW photo, jittered by a
random walk of sub-pixel head motion with sensor noise, in which one region (a brow, a mouth
corner) is pushed up by a smooth bump of 0.04 inter-ocular distances at its centre, rising from
frame 20 to its apex at frame 24 and gone by frame 29 (0.3 s at 30 frames/s;
:mod:`faceprint.evaluation.micro`, which ``benchmarks/micro_expressions.py`` runs on more photos). The Hamilton clip
(people talking and singing, with blinks) checks that ordinary speech and blinks are not all
reported.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
from PIL import Image

from faceprint.cli import main
from faceprint.evaluation.micro import Plant, score_spotting
from faceprint.video.micro import SpotSettings, spot_frames, spot_in_tracks
from faceprint.video.source import Frame

PLANTS = [("AJ_Cook/AJ_Cook_0001.jpg", "right brow"), ("AJ_Lamas/AJ_Lamas_0001.jpg", "left mouth corner"),
          ("Aaron_Guiel/Aaron_Guiel_0001.jpg", "right brow"), ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "left mouth corner")]


def _photo(data_dir, name: str) -> np.ndarray:
    return cv2.resize(np.array(Image.open(data_dir / "lfw-view1" / "images" / name).convert("RGB")), (400, 400))


def test_planted_movements_are_found_at_the_right_frames(engine_fast, data_dir):
    score = score_spotting(engine_fast, [_photo(data_dir, name) for name, _ in PLANTS],
                           [Plant(region=region) for _, region in PLANTS])
    assert score.found >= 3, score
    assert max(score.apex_errors) <= 1 and max(score.onset_errors) <= 2
    assert score.false_events == 0 and score.spill == 0


def test_a_still_sequence_gives_no_event(engine_fast, data_dir):
    image = _photo(data_dir, PLANTS[0][0])
    rng = np.random.default_rng(7)
    frames = [Frame(t, t / 30, np.clip(image + rng.normal(0, 1.5, image.shape), 0, 255).astype(np.uint8))
              for t in range(40)]
    assert spot_frames(frames, 30.0, engine_fast).events == []


def test_hamilton_speech_and_blinks_are_not_all_reported(clip, tmp_path, capsys):
    plot = tmp_path / "micro.png"
    assert main(["micro-expressions", str(clip), "--model", "fast", "--json", "--out", str(plot)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 275 and result["frames_with_face"] > 250
    # Nine seconds of talking and singing: the mouth moves in most of them; a handful of events at most.
    assert len(result["events"]) <= 5
    assert all(e["duration_s"] <= 0.5 for e in result["events"])
    assert plot.stat().st_size > 10_000


def _bump(n: int, start: int, rise: int, fall: int, height: float = 0.05) -> np.ndarray:
    """A movement track (IOD) with low jitter and one smooth bump from ``start``: ``rise`` frames up, ``fall`` down."""
    m = 0.001 + 0.0005 * np.random.default_rng(3).random(n)
    shape = np.concatenate([np.linspace(0, 1, rise + 1)[1:], np.linspace(1, 0, fall + 2)[1:-1]])
    m[start:start + len(shape)] += height * shape
    m[0] = np.nan  # the first frame has nothing to compare with
    return m


def test_a_gap_in_the_face_track_does_not_end_a_movement():
    """A movement cut off by a gap (no face, the largest face jumps) has no real offset and is not reported;
    the same movement with its real offset is; one longer than 0.5 s is not made short by a gap."""
    fps, settings = 30.0, SpotSettings()
    whole = _bump(90, 40, 4, 5)
    assert [(e.onset <= 40, e.apex, e.offset >= 48) for e in spot_in_tracks({"right eye": whole}, fps, settings)] \
        == [(True, 43, True)]
    cut = whole.copy()
    cut[45:50] = np.nan  # the face is lost two frames after the apex, before the movement is over
    assert spot_in_tracks({"right eye": cut}, fps, settings) == []
    slow = _bump(120, 30, 12, 20)  # about 1 s: a macro expression
    assert spot_in_tracks({"right eye": slow}, fps, settings) == []
    slow[40:44] = np.nan  # a gap in the rise used to leave a short run ending at the gap
    assert spot_in_tracks({"right eye": slow}, fps, settings) == []
    end = _bump(60, 50, 4, 5)[:55]  # the clip ends during the movement
    assert spot_in_tracks({"right eye": end}, fps, settings) == []
