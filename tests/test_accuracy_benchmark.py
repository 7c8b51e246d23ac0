"""benchmarks/accuracy.py keeps running: a quick smoke run always, one with the peer under ``-m slow``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCURACY = REPO_ROOT / "benchmarks" / "accuracy.py"
LFW_DIR = REPO_ROOT.parent / "shared" / "data" / "lfw-view1"
LFW_IMAGES = LFW_DIR / "images"
LFW_PAIRS = LFW_DIR / "pairsDevTest.txt"

needs_lfw = pytest.mark.skipif(not (LFW_IMAGES.is_dir() and LFW_PAIRS.is_file()),
                               reason=f"LFW View 1 images or pairsDevTest.txt not found under {LFW_DIR}")


def run_accuracy(tmp_path: Path, *extra: str, timeout: float) -> tuple[dict, str]:
    # A private template cache: the test computes its templates and leaves the user's cache alone.
    proc = subprocess.run(
        [sys.executable, str(ACCURACY), "--images", str(LFW_IMAGES), "--pairs", str(LFW_PAIRS),
         "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *extra],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "accuracy.json").read_text()), proc.stdout


def check_row(row: dict, pairs: int) -> None:
    assert row["status"] == "ok", row.get("error")
    assert row["n_pairs"] == pairs and row["n_same"] == pairs // 2 and row["n_diff"] == pairs - pairs // 2
    assert len(row["fold_accuracies"]) == 10  # every fold keeps pairs under --limit-pairs
    assert row["accuracy_mean"] > 0.9
    assert 0.0 <= row["accuracy_std"] <= 0.5
    assert row["auc"] > 0.9 and 0.0 <= row["eer"] < 0.2
    # 20 impostor pairs cannot measure FMR 1e-3: None, with the reason.
    assert row["tmr_at_fmr_1e3"] is None and "impostor" in row["notes"]["tmr_at_fmr_1e3"]


@needs_lfw
def test_accuracy_smoke(tmp_path):
    data, stdout = run_accuracy(tmp_path, "--limit-pairs", "40", "--profiles", "fast", "--skip-peer", timeout=60)
    meta = data["meta"]
    assert meta["pairs"]["used"] == 40 and meta["pairs"]["same"] == 20 and meta["pairs"]["folds"] == 10
    assert [r["key"] for r in data["rows"]] == ["fast"]
    row = data["rows"][0]
    check_row(row, 40)
    assert row["model"] == "faceprint-fast-v1"
    assert sum(row["face_found"].values()) == meta["images"]
    assert (tmp_path / "roc_det.png").stat().st_size > 0
    assert "| faceprint fast |" in stdout and "10-fold accuracy" in stdout and "pairsDevTest.txt" in stdout


@pytest.mark.slow
@needs_lfw
def test_accuracy_with_peer(tmp_path):
    data, stdout = run_accuracy(tmp_path, "--limit-pairs", "40", "--profiles", "fast", timeout=900)
    rows = {r["key"]: r for r in data["rows"]}
    assert list(rows) == ["fast", "face_recognition"]
    check_row(rows["fast"], 40)
    peer = rows["face_recognition"]
    if peer["status"] == "not installed":
        assert "not installed" in stdout and "pip install --no-deps" in stdout
        return
    check_row(peer, 40)
    assert peer["model"] == "face_recognition-1.3.0-hog"
    assert sum(peer["face_found"].values()) == data["meta"]["images"]
    assert set(peer["face_found"]) <= {"detected", "assumed-centre"}
    assert 0.5 < peer["accuracy_at_fixed_tolerance"] <= 1.0
    # Scores are -distance: the chosen thresholds are negated distances.
    assert all(t < 0 for t in peer["fold_thresholds"])
    assert "| face_recognition (HOG, 5-pt, 1 jitter) |" in stdout and "tolerance" in stdout
