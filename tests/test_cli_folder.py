"""Folders in, answers out: ``faceprint identify --gallery G DIR``, ``faceprint find IMAGE DIR``, and the
gallery's own profile used when ``--model`` is not given. Real photos of ``knn-small``; fast profile.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from cli_run import run

FAST = ["--model", "fast"]


@pytest.fixture(scope="module")
def gallery(data_dir, engine_fast, tmp_path_factory) -> Path:
    """The five people of knn-small/train enrolled with the fast profile."""
    path = tmp_path_factory.mktemp("gallery") / "people.db"
    for person in sorted((data_dir / "knn-small/train").iterdir()):
        engine_fast.enroll(person.name, sorted(person.iterdir()), path, largest=True)
    return path


@pytest.fixture(scope="module")
def photos(data_dir, tmp_path_factory) -> Path:
    """knn-small/test, plus a sub-folder with a photo of Biden, a text file named .jpg and a .txt file."""
    root = tmp_path_factory.mktemp("photos")
    for f in (data_dir / "knn-small/test").iterdir():
        shutil.copy(f, root / f.name)
    (root / "more").mkdir()
    shutil.copy(data_dir / "knn-small/train/biden/biden.jpg", root / "more" / "biden.jpg")
    (root / "broken.jpg").write_text("this is a text file, not a photo\n")
    (root / "notes.txt").write_text("not a photo either\n")
    return root


#: Who each photo of ``photos`` shows (the faces that pass the quality gate).
EXPECTED = {
    "alex_lacamoire1.jpg": {"alex_lacamoire"},
    "johnsnow_test1.jpg": {"kit_harington"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "obama1.jpg": {"obama"},
    "obama_and_biden.jpg": {"obama", "biden"},
    "more/biden.jpg": {"biden"},
}


def _table_rows(out: str) -> list[list[str]]:
    """The rows of the first table in ``out`` (cells split on runs of two or more spaces)."""
    lines = out.splitlines()
    rows = []
    for line in lines[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) < 4:
            break
        rows.append(cells)
    return rows


def test_identify_folder_table(capsys, gallery, photos):
    code, out, err = run(capsys, "identify", "--gallery", gallery, photos)  # no --model: the gallery's profile
    assert code == 0, err
    assert err == ""  # no progress bar off a terminal
    header = re.split(r"\s{2,}", out.splitlines()[0].strip())
    assert header == ["image", "#", "box [x, y, w, h]", "identity", "score", "nearest"]
    named: dict[str, set[str]] = {}
    for image, _, _, identity, *_ in _table_rows(out):
        if not identity.startswith(("skipped", "unknown")):
            named.setdefault(image, set()).add(identity)
    assert named == EXPECTED
    assert "7 image(s) in" in out and "model faceprint-fast-v1" in out
    assert "1 other file(s) passed over" in out and "notes.txt" not in out
    unreadable = out.split("1 file(s) could not be read:\n")[1]
    assert unreadable.strip().startswith("broken.jpg:") and "not an image" in unreadable
    assert "<_io." not in out and "object at 0x" not in out


def test_identify_folder_csv(capsys, gallery, photos):
    code, out, err = run(capsys, "identify", "--gallery", gallery, photos, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    named: dict[str, set[str]] = {}
    for row in rows:
        image = Path(row["image"]).relative_to(photos).as_posix()
        if row["status"] == "known":
            assert float(row["score"]) >= float(row["threshold"]), row
            named.setdefault(image, set()).add(row["person"])
        elif row["status"] == "unknown":
            assert float(row["score"]) < float(row["threshold"]), row
    assert named == EXPECTED
    (broken,) = [r for r in rows if r["status"] == "unreadable"]
    assert Path(broken["image"]).name == "broken.jpg" and "not an image" in broken["note"]
    assert all(float(r["width"]) > 0 for r in rows if r["status"] in ("known", "unknown", "skipped"))


def test_identify_folder_json_lines(capsys, gallery, photos):
    code, out, err = run(capsys, "identify", "--gallery", gallery, photos, "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    images = [Path(d["image"]).relative_to(photos).as_posix() for d in lines]
    assert sorted(images) == sorted([*EXPECTED, "broken.jpg"])  # one line per image file, notes.txt passed over
    by_image = dict(zip(images, lines, strict=True))
    error = by_image.pop("broken.jpg")["error"]
    assert error["code"] == "image_decode_error" and "broken.jpg" in error["message"]
    named = {image: {r["person"] for r in d["results"] if r["person"]} for image, d in by_image.items()}
    assert named == EXPECTED
    assert all(r["threshold"] > 0 for d in by_image.values() for r in d["results"])


def test_identify_single_image_csv(capsys, gallery, data_dir):
    code, out, err = run(capsys, "identify", "--gallery", gallery, data_dir / "knn-small/test/obama_and_biden.jpg",
                         "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["person"] for r in rows if r["status"] == "known"} == {"obama", "biden"}


def test_find_obama_in_a_folder(capsys, data_dir, photos):
    probe = data_dir / "knn-small/train/obama/obama.jpg"
    code, out, err = run(capsys, "find", probe, photos, "--json", *FAST)
    assert code == 0, err
    payload = json.loads(out)
    found = [Path(m["photo"]).name for m in payload["matches"]]
    assert sorted(found) == ["obama1.jpg", "obama_and_biden.jpg"]
    scores = [m["score"] for m in payload["matches"]]
    assert scores == sorted(scores, reverse=True) and min(scores) >= payload["threshold"]
    assert payload["images"] == 7 and [Path(u["photo"]).name for u in payload["unreadable"]] == ["broken.jpg"]

    code, out, _ = run(capsys, "find", probe, photos, *FAST)
    assert code == 0
    listed = [row[0] for row in _table_rows(out)]
    assert sorted(listed) == ["obama1.jpg", "obama_and_biden.jpg"]
    assert "2 photo(s) of 7 show the person" in out


def test_find_nobody_exits_1(capsys, data_dir):
    code, out, err = run(capsys, "find", data_dir / "knn-small/train/obama/obama.jpg",
                         data_dir / "knn-small/train/rose_leslie", *FAST)
    assert code == 1, err
    assert "0 photo(s) of 2 show the person" in out and "closest:" in out


def test_find_in_a_group_photo_needs_largest(capsys, data_dir):
    two = data_dir / "video/two_people.jpg"
    code, _, err = run(capsys, "find", two, data_dir / "knn-small/test", *FAST)
    assert code == 2 and "--largest" in err
    code, out, err = run(capsys, "find", two, data_dir / "knn-small/test", "--largest", "--json", *FAST)
    assert code == 0, err
    assert [Path(m["photo"]).name for m in json.loads(out)["matches"]] == ["obama_and_biden.jpg"]  # Biden


def test_the_gallery_profile_is_used_without_model(capsys, data_dir, tmp_path):
    gallery = tmp_path / "fast.db"
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "obama",
                         data_dir / "knn-small/train/obama/obama.jpg", *FAST)
    assert code == 0, err
    # identify and enroll without --model run the gallery's profile (no model mismatch)
    code, out, err = run(capsys, "identify", "--gallery", gallery, data_dir / "knn-small/test/obama1.jpg", "--json")
    assert code == 0, err
    assert [r["person"] for r in json.loads(out)["results"]] == ["obama"]
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "biden",
                         data_dir / "knn-small/train/biden/biden.jpg")
    assert code == 0, err
    assert "faceprint-fast-v1" in out
    tree = tmp_path / "tree" / "rose_leslie"
    tree.mkdir(parents=True)
    shutil.copy(data_dir / "knn-small/train/rose_leslie/img1.jpg", tree / "img1.jpg")
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--tree", tree.parent, "--workers", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == "faceprint-fast-v1"
    code, out, _ = run(capsys, "people", "--gallery", gallery, "--json")
    assert [p["name"] for p in json.loads(out)["people"]] == ["biden", "obama", "rose_leslie"]

    # an explicit other profile says what to pass, for reading and for enrolling
    for argv in (["identify", "--gallery", gallery, data_dir / "knn-small/test/obama1.jpg"],
                 ["enroll", "--gallery", gallery, "--person", "x", data_dir / "knn-small/test/obama1.jpg"],
                 ["enroll", "--gallery", gallery, "--tree", tree.parent]):
        code, out, err = run(capsys, *argv, "--model", "accurate")
        assert code == 2 and out == ""
        assert f"gallery {gallery} was made with profile 'fast' (model faceprint-fast-v1)" in err
        assert "drop --model or pass --model fast" in err


def test_resolve_profile_defaults(tmp_path):
    import argparse

    from faceprint.cli.common import resolve_profile

    args = argparse.Namespace(model=None, model_config=None)
    assert resolve_profile(args) == "accurate"
    assert resolve_profile(args, tmp_path / "new.db") == "accurate"  # a gallery still to be created
    args.model = "fast"
    assert resolve_profile(args, tmp_path / "new.db") == "fast"
