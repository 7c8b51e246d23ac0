"""Micro-expression spotting on sequences made from real LFW photos with a planted subtle warp.

No labelled micro-expression set is available: each sequence is one LFW photo, jittered by a
random walk of sub-pixel head motion with sensor noise, in which one region (a brow, a mouth
corner) is pushed up by a smooth bump of 0.04 inter-ocular distances at its centre, rising from
frame 20 to its apex at frame 24 and gone by frame 29 (0.3 s at 30 frames/s). The Hamilton clip
(people talking and singing, with blinks) checks that ordinary speech and blinks are not all
reported.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from faceprint.cli import main
from faceprint.video.micro import spot_frames
from faceprint.video.source import Frame

ONSET, APEX, OFFSET = 20, 24, 29
PLANTS = [("AJ_Cook/AJ_Cook_0001.jpg", "right brow", range(17, 22)),
          ("AJ_Lamas/AJ_Lamas_0001.jpg", "left mouth corner", (53, 54, 55, 64)),
          ("Aaron_Guiel/Aaron_Guiel_0001.jpg", "right brow", range(17, 22)),
          ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "left mouth corner", (53, 54, 55, 64))]


def planted_sequence(image: np.ndarray, points: np.ndarray, centre_points, seed: int, n: int = 48) -> list[Frame]:
    iod = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    cx, cy = points[list(centre_points)].mean(0)
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]].astype(np.float32)
    bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.15 * iod) ** 2)).astype(np.float32)
    rng = np.random.default_rng(seed)
    frames, tx, ty = [], 0.0, 0.0
    for t in range(n):
        rise = (t - ONSET) / (APEX - ONSET) if t <= APEX else (OFFSET - t) / (OFFSET - APEX)
        s = 0.0 if t <= ONSET or t >= OFFSET else rise
        tx, ty = tx + rng.normal(0, 0.3), ty + rng.normal(0, 0.3)
        moved = cv2.remap(image, xx - tx, yy - ty + 0.04 * iod * s * bump, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
        noisy = np.clip(moved + rng.normal(0, 1.5, moved.shape), 0, 255).astype(np.uint8)
        frames.append(Frame(t, t / 30, noisy))
    return frames


def test_planted_movements_are_found_at_the_right_frames(engine_fast, data_dir):
    from faceprint.models.registry import load_landmarker

    found, onset_err, apex_err, false = 0, [], [], 0
    for seed, (name, region, centre) in enumerate(PLANTS):
        image = cv2.resize(np.array(Image.open(data_dir / "lfw-view1" / "images" / name).convert("RGB")), (400, 400))
        points = load_landmarker().landmarks(image, engine_fast.detect(image)[0].box)
        events = spot_frames(planted_sequence(image, points, centre, seed), 30.0, engine_fast).events
        hits = [e for e in events if e.region == region and e.onset <= APEX <= e.offset]
        false += len(events) - len(hits[:1])
        if hits:
            found += 1
            onset_err.append(abs(hits[0].onset - (ONSET + 1)))  # the first moved frame is ONSET + 1
            apex_err.append(abs(hits[0].apex - APEX))
            assert hits[0].duration_s < 0.5 and hits[0].intensity < 0.05
    assert found >= 3, f"recall {found}/{len(PLANTS)}"
    assert max(apex_err) <= 1 and max(onset_err) <= 2
    assert false == 0


def test_a_still_sequence_gives_no_event(engine_fast, data_dir):
    image = cv2.resize(np.array(Image.open(data_dir / "lfw-view1" / "images" / PLANTS[0][0]).convert("RGB")), (400, 400))
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
