"""Quiet by default: no OpenCV chatter on stderr, output that fits 100 columns, short reprs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from faceprint.cli.common import ELLIPSIS, WIDTH, table

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter so that stderr is captured at the file-descriptor level: OpenCV's C++
# logger writes to fd 2 directly, which pytest's capsys cannot see.
API_RUN = """
import sys
import faceprint
from faceprint import Engine
engine = Engine("fast")
print(engine.verify(sys.argv[1], sys.argv[2]).is_match)
print(len(engine.detect(sys.argv[3])))
print(faceprint.embed(sys.argv[1]).dim)
"""


def _opencv_noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "[ WARN" in line or "setPreferableTarget" in line
            or "global " in line and ".cpp:" in line]


def test_python_api_prints_no_opencv_warning(data_dir):
    pairs = data_dir / "pairs-small"
    proc = subprocess.run([sys.executable, "-c", API_RUN, str(pairs / "img1.jpg"), str(pairs / "img2.jpg"),
                           str(pairs / "couple.jpg")], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "2", "256"]  # the default engine of faceprint.embed is "accurate"
    assert _opencv_noise(proc.stderr) == [], proc.stderr


def test_enroll_tree_prints_no_opencv_warning(data_dir, tmp_path):
    """Batch enrolment loads the models in worker processes, where the CLI's own log setting never ran."""
    proc = subprocess.run([sys.executable, "-m", "faceprint", "enroll", "--model", "fast", "--workers", "2",
                           "--tree", str(data_dir / "knn-small" / "train"), "--gallery", str(tmp_path / "g.db")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "enrolled" in proc.stdout
    assert _opencv_noise(proc.stderr) == [], proc.stderr


def test_a_file_that_is_not_a_video_gives_one_line(tmp_path):
    """FFmpeg's own lines ("[mjpeg @ 0x...] No JPEG data found") stay out of the one-line error."""
    (tmp_path / "notes.jpg").write_text("hello, this is a text file\n")
    proc = subprocess.run([sys.executable, "-m", "faceprint", "micro-expressions", str(tmp_path / "notes.jpg"),
                           "--model", "fast"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("faceprint: error: "), proc.stderr
    assert "give a video file" in proc.stderr


@pytest.mark.parametrize("level", [cv2.utils.logging.LOG_LEVEL_INFO, cv2.utils.logging.LOG_LEVEL_SILENT])
def test_model_load_restores_the_callers_opencv_log_level(data_dir, level):
    from faceprint.models.yunet import YuNetDetector

    before = cv2.utils.logging.getLogLevel()
    try:
        cv2.utils.logging.setLogLevel(level)
        YuNetDetector()
        assert cv2.utils.logging.getLogLevel() == level
    finally:
        cv2.utils.logging.setLogLevel(before)


def test_models_output_fits_100_columns_and_keeps_every_fact():
    # A fresh process: models and profiles that earlier tests registered in this one are not listed.
    run = subprocess.run([sys.executable, "-m", "faceprint", "models"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    widest = max(out.splitlines(), key=len)
    assert len(widest) <= WIDTH, widest
    assert ELLIPSIS not in out  # wrapped, not cut
    flat = " ".join(out.split())
    from faceprint.models import registry

    for card in (model.card for model in registry._BUILTIN.values()):  # not the ones earlier tests registered
        for fact in (card.name, card.source, card.licence, card.published_accuracy):
            assert " ".join(fact.split()) in flat, fact
    assert "0.3586" in out  # fast's threshold at FMR 1e-3


def test_table_cuts_long_cells_to_100_columns():
    rows = [("sface", "x" * 300, "Apache-2.0"), ("yunet", "short", "MIT")]
    text = table(rows, ["model", "source", "licence"])
    lines = text.splitlines()
    assert max(len(line) for line in lines) == WIDTH
    assert lines[2].startswith("sface") and ELLIPSIS + "  Apache-2.0" in lines[2]
    assert lines[3].split() == ["yunet", "short", "MIT"]
    narrow = table([("a", "b")], ["x", "y"])  # a table that fits is left as it was
    assert narrow.splitlines() == ["x  y", "-  -", "a  b"]


def test_template_and_face_reprs_are_short(engine_fast, data_dir):
    image = data_dir / "pairs-small" / "img1.jpg"
    template = engine_fast.embed(image)
    text = repr(template)
    assert len(text) <= 120, text
    assert text.startswith("Template(model='faceprint-fast-v1', dim=128, norm=1.000, vector=[")
    assert f"{template.vector[0]:.4f}" in text and text.endswith(", ...])")
    face = engine_fast.detect(image)[0]
    assert len(repr(face)) <= 120 and repr(face).startswith("Face(box=[") and "score=" in repr(face)
    assert str(template) == text
