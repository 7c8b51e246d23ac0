"""benchmarks/speed.py keeps running: a quick smoke run always, a fuller one with ``-m slow``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEED = REPO_ROOT / "benchmarks" / "speed.py"
LFW_IMAGES = REPO_ROOT.parent / "shared" / "data" / "lfw-view1" / "images"

needs_lfw = pytest.mark.skipif(not LFW_IMAGES.is_dir(), reason=f"LFW images not found at {LFW_IMAGES}")


def run_speed(tmp_path: Path, *extra: str, timeout: float) -> tuple[dict, str]:
    out = tmp_path / "speed.json"
    proc = subprocess.run(
        [sys.executable, str(SPEED), "--images", str(LFW_IMAGES), "--out", str(out), *extra],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def check_faceprint_row(row: dict, images: int, two_cores: bool) -> None:
    assert row["status"] == "ok", row.get("error")
    assert row["images"] == images
    assert 0 < row["faces_embedded"] <= images
    for key in ("detect_ms", "align_ms", "embed_ms", "total_ms"):
        assert row[key]["median"] > 0 and row[key]["mean"] > 0, key
    assert row["total_ms"]["mean"] >= row["detect_ms"]["mean"]
    assert row["img_s_1core"] > 0
    assert set(row["embed_ms_by_model"]) == {"sface"}
    # The timed stages produce exactly the template Recognizer.embed gives.
    assert row["template_max_abs_diff"] is not None and row["template_max_abs_diff"] < 1e-4
    if two_cores:
        assert row["img_s_2cores"] > 0 and row["two_core_mode"] in ("2 proc", "2 thr")


@needs_lfw
def test_speed_smoke(tmp_path):
    data, stdout = run_speed(tmp_path, "--limit", "3", "--profiles", "fast", "--skip-peer", "--cores", "1",
                             timeout=60)
    assert data["meta"]["images"]["count"] == 3
    assert data["meta"]["cpu"]
    assert [r["key"] for r in data["rows"]] == ["fast"]
    check_faceprint_row(data["rows"][0], 3, two_cores=False)
    assert "| faceprint fast |" in stdout and "img/s 1 core" in stdout


@pytest.mark.slow
@needs_lfw
def test_speed_with_peer(tmp_path):
    data, stdout = run_speed(tmp_path, "--limit", "10", "--profiles", "fast", timeout=900)
    rows = {r["key"]: r for r in data["rows"]}
    assert list(rows) == ["fast", "face_recognition"]
    two = data["meta"]["cpus_allowed"] >= 2
    check_faceprint_row(rows["fast"], 10, two_cores=two)
    peer = rows["face_recognition"]
    if peer["status"] == "not installed":
        assert "not installed" in stdout and "pip install --no-deps" in stdout
        assert rows["fast"]["speedup_vs_peer"] is None
    else:
        assert peer["status"] == "ok", peer.get("error")
        assert peer["detect_ms"]["median"] > 0 and peer["embed_ms"]["median"] > 0
        assert peer["img_s_1core"] > 0
        assert rows["fast"]["speedup_vs_peer"] > 0
        assert peer["speedup_vs_peer"] == pytest.approx(1.0)
