"""Batch enrolment (``faceprint enroll --tree``): worker processes, skip reasons, resumability, kill safety.

Runs on real photos from ``../shared/data`` (skipped with a message when absent), with the fast
profile and two worker processes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from faceprint.batch import source_key
from faceprint.cli import main
from faceprint.gallery import Gallery

FAST = ["--model", "fast", "--workers", "2"]


def run_json(capsys, *argv) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return code, json.loads(out)


@pytest.fixture
def tree(data_dir, tmp_path) -> Path:
    """knn-small/train (5 people, 9 faces) plus one image of each kind that must be skipped."""
    root = tmp_path / "tree"
    train = data_dir / "knn-small/train"
    for person in sorted(p for p in train.iterdir() if p.is_dir()):
        (root / person.name).mkdir(parents=True)
        for img in person.iterdir():
            (root / person.name / img.name).write_bytes(img.read_bytes())
    (root / "obama/group.jpg").write_bytes((data_dir / "knn-small/test/obama_and_biden.jpg").read_bytes())
    (root / "biden/corrupt.jpg").write_bytes((train / "biden/biden.jpg").read_bytes()[:600])
    Image.new("RGB", (240, 240), (128, 128, 128)).save(root / "rose_leslie/grey.png")
    blurred = Image.open(train / "obama/obama.jpg").convert("RGB").filter(ImageFilter.GaussianBlur(8))
    blurred.save(root / "kit_harington/blurred.jpg")
    return root


def test_tree_reasons_rerun_and_increment(capsys, tree, data_dir, tmp_path):
    gallery = tmp_path / "g.db"
    _, first = run_json(capsys, "enroll", "--gallery", gallery, "--tree", tree, "--json", *FAST)
    assert first["workers"] == 2
    assert first["images"] == 13
    assert first["enrolled_people"] == 5 and first["enrolled_faces"] == 9
    assert first["skipped_counts"] == {"no face": 1, "low quality": 1, "several faces": 1, "unreadable": 1}
    by_image = {Path(s["image"]).name: s for s in first["skipped"]}
    assert by_image["grey.png"]["reason"] == "no face"
    assert by_image["blurred.jpg"]["reason"] == "low quality" and "blurry" in by_image["blurred.jpg"]["detail"]
    assert by_image["group.jpg"]["reason"] == "several faces"
    assert by_image["corrupt.jpg"]["reason"] == "unreadable"
    with Gallery(gallery) as g:
        assert g.face_count() == 9
        assert {p.name: p.face_count for p in g.persons()} == {
            "alex_lacamoire": 1, "biden": 2, "kit_harington": 2, "obama": 2, "rose_leslie": 2}
        assert all(s.startswith(str(tree.resolve())) and s.count("|") == 2 for s in g.sources())

    # A re-run enrols nothing and reports every enrolled image as already enrolled.
    _, again = run_json(capsys, "enroll", "--gallery", gallery, "--tree", tree, "--json", *FAST)
    assert again["enrolled_faces"] == 0
    assert again["skipped_counts"]["already enrolled"] == 9
    assert again["processed"] == 4  # only the four bad images are looked at again

    # One new image: only that one is enrolled.
    new = tree / "alex_lacamoire/new.jpg"
    Image.open(data_dir / "knn-small/train/obama/obama2.jpg").convert("RGB").save(new, quality=90)
    _, third = run_json(capsys, "enroll", "--gallery", gallery, "--tree", tree, "--json", *FAST)
    assert third["enrolled"] == [{"person": "alex_lacamoire", "faces_added": 1, "faces_total": 2}]
    assert third["skipped_counts"]["already enrolled"] == 9
    with Gallery(gallery) as g:
        assert g.face_count() == 10

    # The table output names each reason.
    capsys.readouterr()
    assert main(["enroll", "--gallery", str(gallery), "--tree", str(tree), *FAST]) == 0
    out = capsys.readouterr().out
    for reason in ("already enrolled", "no face", "low quality", "several faces", "unreadable"):
        assert reason in out


def test_source_key_changes_with_content(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 10)
    key = source_key(path)
    assert key.startswith(str(path.resolve()) + "|10|")
    path.write_bytes(b"y" * 11)
    assert source_key(path) != key


def _big_tree(data_dir: Path, root: Path, people: int = 8, per_person: int = 5) -> int:
    """``people`` folders of ``per_person`` re-encoded (byte-distinct) face photos."""
    train = data_dir / "knn-small/train"
    photos = sorted(p for p in train.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg"})
    images = [Image.open(p).convert("RGB") for p in photos]
    n = 0
    for i in range(people):
        folder = root / f"person_{i:02d}"
        folder.mkdir(parents=True)
        for j in range(per_person):
            images[(i * per_person + j) % len(images)].save(folder / f"{j}.jpg", quality=60 + i * per_person + j)
            n += 1
    return n


def _faces_in(gallery: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{gallery}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_killed_run_resumes_with_every_image_once(data_dir, tmp_path):
    root = tmp_path / "big"
    total = _big_tree(data_dir, root)
    gallery = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "faceprint.cli", "--model", "fast", "enroll", "--gallery", str(gallery),
           "--tree", str(root), "--workers", "2", "--largest", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while _faces_in(gallery) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        at_kill = _faces_in(gallery)
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers: one process group
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert 0 < at_kill < total, f"kill came too late to test a partial run ({at_kill} of {total} faces)"

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["skipped_counts"].get("already enrolled", 0) >= at_kill
    with Gallery(gallery) as g:
        sources = [f.source for p in g.persons() for f in g.faces(p.name)]
        assert len(sources) == total
        assert len(set(sources)) == total  # every image exactly once
        assert {p.face_count for p in g.persons()} == {5}
