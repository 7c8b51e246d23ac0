"""Batch enrolment (``faceprint enroll --tree``): worker processes, skip reasons, input formats,
resumability, kill safety.

Runs on real photos from ``../shared/data`` (skipped with a message when absent), with the fast
profile and two worker processes. No test waits on elapsed time: the kill test stops the run at a
known commit through the batch writer's test hook (``FACEPRINT_BATCH_PAUSE_AFTER``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from faceprint.batch import PAUSE_ENV, source_key
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
    Image.open(data_dir / "knn-small/test/alex_lacamoire1.jpg").convert("RGB").save(new, quality=90)
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
    with Gallery(gallery) as g:
        return g.face_count()


def test_killed_run_resumes_with_every_image_once(data_dir, tmp_path):
    """SIGKILL right after a known commit, mid-run: nothing committed is lost, a re-run adds the rest once.

    The run is stopped by the batch writer's test hook, not by timing: after committing 13 faces
    (two people and 3 of the third's 5, so a person is cut in two) it reports the count on a pipe
    and blocks; the test reads the pipe, then kills the CLI and its workers.
    """
    root = tmp_path / "big"
    total = _big_tree(data_dir, root)
    gallery = tmp_path / "g.db"
    pause_at = 13
    cmd = [sys.executable, "-m", "faceprint.cli", "--model", "fast", "enroll", "--gallery", str(gallery),
           "--tree", str(root), "--workers", "2", "--largest", "--json",
           "--allow-duplicate"]  # _big_tree gives several people the same photos
    read_end, write_end = os.pipe()
    env = {**os.environ, PAUSE_ENV: f"{pause_at}:{write_end}"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            pass_fds=(write_end,), start_new_session=True)
    os.close(write_end)  # EOF on read_end as soon as the CLI exits without pausing
    try:
        # The guard only ends a hung run; the pause is signalled on the pipe, never guessed from time.
        ready, _, _ = select.select([read_end], [], [], 600)
        message = os.read(read_end, 64).decode() if ready else ""
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers: one process group
    finally:
        os.close(read_end)
        proc.wait()
    assert message == f"{pause_at}\n", f"the run did not pause at {pause_at} faces: {proc.stderr.read().decode()}"
    assert proc.returncode == -signal.SIGKILL
    assert _faces_in(gallery) == pause_at < total  # every acknowledged face survived the SIGKILL

    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["skipped_counts"] == {"already enrolled": pause_at}
    assert report["enrolled_faces"] == total - pause_at
    assert {e["person"]: e["faces_total"] for e in report["enrolled"]}["person_02"] == 5  # the split person
    with Gallery(gallery) as g:
        sources = [f.source for p in g.persons() for f in g.faces(p.name)]
        assert len(sources) == total
        assert len(set(sources)) == total  # every image exactly once
        assert {p.face_count for p in g.persons()} == {5}
        assert sorted(source.split("|")[0] for source in sources) == sorted(
            str(p.resolve()) for p in root.glob("*/*.jpg"))


def test_heic_and_avif_are_enrolled_and_every_other_entry_is_listed(capsys, data_dir, tmp_path):
    """iPhone HEIC and AVIF photos enrol like JPEGs; each file that is not looked at is listed with why."""
    train = data_dir / "knn-small/train"
    root = tmp_path / "phone"
    (root / "obama/old").mkdir(parents=True)
    (root / "biden").mkdir()
    Image.open(train / "obama/obama.jpg").convert("RGB").save(root / "obama/IMG_0001.HEIC", "HEIF", quality=90)
    Image.open(train / "obama/obama2.jpg").convert("RGB").save(root / "obama/IMG_0002.avif", "AVIF", quality=90)
    Image.open(train / "biden/biden.jpg").convert("RGB").save(root / "biden/IMG_0003.heif", "HEIF", quality=90)
    (root / "obama/._IMG_0001.HEIC").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata
    (root / "obama/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "obama/notes.txt").write_text("taken at the 2012 convention")
    (root / "obama/IMG_0004.dng").write_bytes(b"II*\x00")
    (root / "obama/README").write_text("no suffix")
    (root / "obama/old/obama.jpg").write_bytes((train / "obama/obama.jpg").read_bytes())
    (root / "loose.jpg").write_bytes((train / "biden/biden2.jpg").read_bytes())
    (root / ".thumbnails").mkdir()

    gallery = tmp_path / "g.db"
    _, report = run_json(capsys, "enroll", "--gallery", gallery, "--tree", root, "--json", *FAST)
    assert report["images"] == 3
    assert {e["person"]: e["faces_added"] for e in report["enrolled"]} == {"biden": 1, "obama": 2}
    expected = {
        ".thumbnails": (None, "hidden"), "loose.jpg": (None, "not in a person folder"),
        "._IMG_0001.HEIC": ("obama", "hidden"), ".DS_Store": ("obama", "hidden"),
        "notes.txt": ("obama", "unsupported extension"), "IMG_0004.dng": ("obama", "unsupported extension"),
        "README": ("obama", "unsupported extension"), "old": ("obama", "nested folder"),
    }
    assert {Path(s["image"]).name: (s["person"], s["reason"]) for s in report["skipped"]} == expected
    assert report["skipped_counts"] == {"unsupported extension": 3, "hidden": 3, "not in a person folder": 1,
                                        "nested folder": 1}
    dng = next(s for s in report["skipped"] if s["image"].endswith(".dng"))
    assert "'.dng'" in dng["detail"] and "HEIC" in dng["detail"] and "AVIF" in dng["detail"]
    with Gallery(gallery) as g:
        assert sorted(s.split("|")[0].rsplit("/", 1)[1] for s in g.sources()) == [
            "IMG_0001.HEIC", "IMG_0002.avif", "IMG_0003.heif"]

    # The table output names every skipped entry and its reason too.
    capsys.readouterr()
    assert main(["enroll", "--gallery", str(gallery), "--tree", str(root), *FAST]) == 0
    out = capsys.readouterr().out
    for name, (_, reason) in expected.items():
        assert any(name in line and f"[{reason}]" in line for line in out.splitlines()), (name, out)


def test_tree_without_images_says_what_was_skipped(capsys, tmp_path):
    root = tmp_path / "tree"
    (root / "ada").mkdir(parents=True)
    (root / "ada/scan.txt").write_text("x")
    (root / "ada/._ada.heic").write_bytes(b"\x00")
    capsys.readouterr()
    assert main(["enroll", "--gallery", str(tmp_path / "g.db"), "--tree", str(root), *FAST]) == 2
    err = capsys.readouterr().err
    assert "no person folders with images found" in err
    assert "1 unsupported extension (.txt), 1 hidden" in err and "HEIC/HEIF" in err
