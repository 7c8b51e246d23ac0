"""faceprint video --attributes expression: per-track smoothed expression in the timeline, events and a plot.

The expression network is replaced by a stand-in whose reading depends on where the face is (left
half of the frame: happy, right half: sad, with one misread frame of the left face): what is tested is
the video plumbing and the smoothing, which must hold whatever the network; the network's own
accuracy is measured by ``faceprint eval expression``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceprint.attributes import analyzer as analyzer_module
from faceprint.attributes.results import EXPRESSIONS
from faceprint.cli import main
from faceprint.errors import UnknownAttributeError
from faceprint.video.expressions import TrackExpression
from faceprint.video.recognition import VideoSettings

HAPPY, SAD = EXPRESSIONS.index("happy"), EXPRESSIONS.index("sad")


class _ByPosition:
    min_face_px = 24
    calls = 0

    def predict(self, image, faces):
        out = np.full((len(faces), 7), 0.02)
        for i, face in enumerate(faces):
            _ByPosition.calls += 1
            left = face.box.center[0] < image.shape[1] / 2
            misread = _ByPosition.calls == 5
            out[i, SAD if (not left or misread) else HAPPY] = 0.88
        return out


def test_smoothing_follows_a_held_expression_and_shrugs_off_one_misreading():
    series = TrackExpression(tau_s=1.0)
    happy, sad = np.eye(7)[HAPPY], np.eye(7)[SAD]
    for k in range(10):
        series.add(6 * k, 0.2 * k, sad if k == 4 else happy)
    assert [s.label for s in series.samples].count("happy") == 10  # the sad frame moves the average, not the label
    assert series.samples[4].probabilities[SAD] == pytest.approx(1 - np.exp(-0.2), abs=1e-9)
    for k in range(10, 25):
        series.add(6 * k, 0.2 * k, sad)
    assert series.current == "sad" and series.to_dict()["label"] == "happy"  # 10 happy, then sad after a lag
    assert 10 < [s.label for s in series.samples].index("sad") <= 15


def test_video_timeline_events_and_plot_carry_each_tracks_expression(clip, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(analyzer_module, "load_network", lambda module, cls: _ByPosition())
    gallery, events, plot = tmp_path / "g.db", tmp_path / "events.jsonl", tmp_path / "expr.png"
    assert main(["enroll", "--model", "fast", "--gallery", str(gallery), "--person", "lin",
                 str(data_dir / "video" / "lin-manuel-miranda.png")]) == 0
    capsys.readouterr()
    assert main(["video", str(clip), "--gallery", str(gallery), "--max-frames", "90", "--attributes", "expression",
                 "--expression-plot", str(plot), "--events", str(events), "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    followed = [t for t in timeline["tracks"] if "expression" in t]
    assert followed, "no track got an expression"
    for track in followed:
        left = np.mean([b["box"][0] + b["box"][2] / 2 for b in track["boxes"]]) < timeline["size"][0] / 2
        assert track["expression"]["label"] == ("happy" if left else "sad")
        samples = track["expression"]["samples"]
        assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)
        assert all(abs(sum(s["probabilities"].values()) - 1) < 0.05 for s in samples[1:])
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e.get("expression") in ("happy", "sad") for e in lines)
    assert plot.stat().st_size > 10_000


def test_unknown_video_attribute_and_plot_without_it_are_refused(clip, tmp_path, capsys):
    with pytest.raises(UnknownAttributeError, match="'age'.*choose from expression"):
        VideoSettings(attributes=("age",))
    assert main(["video", str(clip), "--gallery", str(tmp_path / "g.db"), "--expression-plot", "x.png"]) == 2
    assert "--expression-plot needs --attributes expression" in capsys.readouterr().err
