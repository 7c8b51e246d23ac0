"""The ``faceprint`` command line on real photos, run in-process through ``faceprint.cli.main``.

One test runs the installed console script in a subprocess. The fast profile is used throughout
(models are shared with the engines of the same process), except where a mismatch with the
default profile is what is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_run import run

FAST = ["--model", "fast"]


def assert_one_line_error(err: str) -> None:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"stderr is not one line: {err!r}"
    assert lines[0].startswith("faceprint: error:"), err
    assert "Traceback" not in err


def console_script() -> Path:
    script = Path(sys.executable).parent / ("faceprint.exe" if os.name == "nt" else "faceprint")
    if not script.exists():
        pytest.skip(f"console script not installed at {script} (pip install -e .)")
    return script


@pytest.fixture
def zero_jpg(tmp_path) -> Path:
    path = tmp_path / "zero.jpg"
    path.write_bytes(b"")
    return path


def test_detect_json_and_annotated_image(capsys, data_dir, tmp_path):
    out_png = tmp_path / "x.png"
    code, out, err = run(capsys, "detect", data_dir / "video/two_people.jpg", "--out", out_png, "--json", *FAST)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["image"].endswith("two_people.jpg")
    assert len(payload["faces"]) == 2
    for face in payload["faces"]:
        assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
        assert 0.0 <= face["quality"] <= 1.0 and face["score"] > 0.5
    with Image.open(out_png) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(out_png) as img, Image.open(data_dir / "video/two_people.jpg") as src:
        assert img.size == src.size


def test_detect_table(capsys, data_dir):
    code, out, _ = run(capsys, "detect", data_dir / "video/multiface.jpg", *FAST)
    assert code == 0
    assert "6 face(s)" in out


def test_verify_same_and_different(capsys, data_dir):
    obama, obama2 = data_dir / "video/obama.jpg", data_dir / "knn-small/train/obama/obama2.jpg"
    code, out, err = run(capsys, "verify", obama, obama2, *FAST)
    assert code == 0, err
    assert "SAME" in out
    code, out, _ = run(capsys, "verify", obama, data_dir / "video/biden.jpg", *FAST)
    assert code == 1
    assert "DIFFERENT" in out
    code, out, _ = run(capsys, "verify", obama, data_dir / "video/biden.jpg", "--json", *FAST)
    assert code == 1
    payload = json.loads(out)
    assert payload["is_match"] is False
    assert payload["model"] == "faceprint-fast-v1"
    assert payload["similarity"] < payload["threshold"]


def test_verify_group_photo_needs_largest(capsys, data_dir):
    two, biden = data_dir / "video/two_people.jpg", data_dir / "video/biden.jpg"
    code, _, err = run(capsys, "verify", two, biden, *FAST)
    assert code == 2
    assert_one_line_error(err)
    assert "2 faces" in err
    code, out, _ = run(capsys, "verify", two, biden, "--largest", *FAST)
    assert code == 0 and "SAME" in out


def test_enroll_people_identify_delete(capsys, data_dir, tmp_path):
    gallery = tmp_path / "g.db"
    probe = data_dir / "knn-small/test/obama_and_biden.jpg"
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--tree", data_dir / "knn-small/train", "--largest",
                         *FAST)
    assert code == 0, err
    assert "faceprint-fast-v1" in out

    code, out, _ = run(capsys, "people", "--gallery", gallery, "--json")
    assert code == 0
    people = json.loads(out)["people"]
    assert [p["name"] for p in people] == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]
    assert sum(p["faces"] for p in people) == 9
    code, out, _ = run(capsys, "people", "--gallery", gallery)
    assert "5 people" in out

    code, out, err = run(capsys, "identify", "--gallery", gallery, probe, "--json", *FAST)
    assert code == 0, err
    results = json.loads(out)["results"]
    assert {r["person"] for r in results if not r["skipped"]} == {"obama", "biden"}
    (child,) = [r for r in results if r["skipped"]]  # the child in profile: listed with its reason
    assert child["skipped"].startswith("low quality (profile, ") and child["candidates"] == []
    code, out, _ = run(capsys, "identify", "--gallery", gallery, probe, *FAST)
    assert "skipped: low quality (profile, " in out and "3 face(s): 2 known, 0 unknown, 1 skipped" in out

    code, out, _ = run(capsys, "delete", "obama", "--gallery", gallery)
    assert code == 0
    assert "obama" in out and "2 template(s)" in out

    code, out, _ = run(capsys, "identify", "--gallery", gallery, probe, "--json", *FAST)
    assert code == 0
    results = json.loads(out)["results"]
    names = {r["person"] for r in results} | {c["person"] for r in results for c in r["candidates"]}
    assert "obama" not in names
    assert "biden" in {r["person"] for r in results}

    code, _, err = run(capsys, "delete", "obama", "--gallery", gallery)
    assert code == 2
    assert_one_line_error(err)


def test_detect_zero_byte_file(capsys, zero_jpg):
    code, out, err = run(capsys, "detect", zero_jpg, *FAST)
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert str(zero_jpg) in err


def test_detect_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.jpg"
    code, out, err = run(capsys, "detect", missing, *FAST)
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert "nope.jpg" in err


def test_identify_with_other_profile_is_a_model_mismatch(capsys, data_dir, tmp_path):
    gallery = tmp_path / "g.db"
    code, _, err = run(capsys, "enroll", "--gallery", gallery, "--person", "obama", data_dir / "video/obama.jpg", *FAST)
    assert code == 0, err
    code, out, err = run(capsys, "identify", "--gallery", gallery, data_dir / "video/obama.jpg", "--model", "accurate")
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert "model" in err and "faceprint-fast-v1" in err and "faceprint-accurate-v2" in err


def test_people_on_missing_gallery(capsys, tmp_path):
    code, _, err = run(capsys, "people", "--gallery", tmp_path / "none.db")
    assert code == 2
    assert_one_line_error(err)
    assert not (tmp_path / "none.db").exists()


def test_models_json(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    payload = json.loads(out)
    models = {m["name"]: m for m in payload["models"]}
    for name in ("yunet", "sface", "facenet", "dlib"):
        assert name in models, f"{name} missing from {sorted(models)}"
        assert models[name]["licence"].strip(), name
        assert models[name]["source"].strip(), name
    assert models["yunet"]["kind"] == "detector"
    assert {models[n]["kind"] for n in ("sface", "facenet", "dlib")} == {"embedder"}
    profiles = {p["name"]: p for p in payload["profiles"]}
    assert {"accurate", "fast"} <= set(profiles)
    assert profiles["fast"]["model_id"] == "faceprint-fast-v1"


def test_enroll_skip_bad(capsys, data_dir, tmp_path, zero_jpg):
    gallery = tmp_path / "g.db"
    good = [data_dir / "knn-small/train/obama/obama.jpg", data_dir / "knn-small/train/obama/obama2.jpg"]
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "obama", good[0], zero_jpg, good[1],
                         "--skip-bad", "--json", *FAST)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["enrolled"] == [{"person": "obama", "faces_added": 2, "faces_total": 2}]
    assert [s["image"] for s in payload["skipped"]] == [str(zero_jpg)]
    assert "0 bytes" in payload["skipped"][0]["reason"]

    code, out, _ = run(capsys, "enroll", "--gallery", gallery, "--person", "biden", data_dir / "video/biden.jpg",
                       zero_jpg, "--skip-bad", *FAST)
    assert code == 0
    assert "skipped" in out and str(zero_jpg) in out


def test_enroll_bad_image_without_skip_bad_writes_nothing(capsys, data_dir, tmp_path, zero_jpg):
    gallery = tmp_path / "g.db"
    code, _, err = run(capsys, "enroll", "--gallery", gallery, "--person", "obama", data_dir / "video/obama.jpg",
                       zero_jpg, *FAST)
    assert code == 2
    assert_one_line_error(err)
    assert not gallery.exists() or gallery.stat().st_size == 0


def test_common_options_before_subcommand(capsys, data_dir):
    code, out, err = run(capsys, "--model", "fast", "--json", "detect", data_dir / "video/obama.jpg")
    assert code == 0, err
    assert len(json.loads(out)["faces"]) == 1


def test_console_script(data_dir, tmp_path):
    script = console_script()
    proc = subprocess.run([str(script), "detect", str(data_dir / "video/two_people.jpg"), "--json", *FAST],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["faces"]) == 2

    (tmp_path / "zero.jpg").write_bytes(b"")
    proc = subprocess.run([str(script), "detect", "zero.jpg"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr)


def test_console_script_error_after_model_load_is_one_line(data_dir, tmp_path):
    script = console_script()
    gallery = tmp_path / "g.db"
    enrol = subprocess.run([str(script), "enroll", "--gallery", str(gallery), "--person", "obama",
                            str(data_dir / "video/obama.jpg"), *FAST], capture_output=True, text=True, timeout=120)
    assert enrol.returncode == 0, enrol.stderr
    proc = subprocess.run([str(script), "identify", "--gallery", str(gallery), str(data_dir / "video/obama.jpg"),
                           "--model", "accurate"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr)


def test_no_subcommand_module_changes_the_shared_defaults():
    """Subcommand modules share the option objects of --model & co.; none may change their defaults."""
    from faceprint.cli import build_parser

    parser = build_parser()
    for argv in (["detect", "x.jpg"], ["eval", "lfw", "--images", "i", "--pairs", "p"],
                 ["video", "v.mp4", "--gallery", "g.db"], ["enroll", "--gallery", "g.db", "--tree", "t"]):
        args = parser.parse_args(argv)
        assert args.model is None and args.fmr == 1e-3 and args.json is False, argv  # None: the gallery's profile
    assert parser.parse_args(["--model", "fast", "enroll", "--gallery", "g", "--tree", "t"]).model == "fast"


def test_a_reader_that_stops_reading_ends_the_command_quietly():
    """``faceprint models | head -0``: the pipe's reader is gone before anything is written."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the command starts: its first write fails, deterministically
    try:
        run = subprocess.run([sys.executable, "-m", "faceprint", "models"], stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert run.returncode == 141, run.stderr
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr


def test_a_closed_pipe_after_a_short_answer_is_quiet_too(tmp_path):
    """A short answer sits in the output buffer until the command returns: still exit 141, quietly."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run([sys.executable, "-m", "faceprint", "keys", "new", str(tmp_path / "k.key")],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert run.returncode == 141, run.stderr
    assert "BrokenPipeError" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr
    assert (tmp_path / "k.key").is_file()  # the work was done; only its report had nowhere to go


def test_detect_and_identify_say_no_face_found(capsys, data_dir, tmp_path):
    """The lower part of a real photo (a suit, no face): the same "no face found" line as analyze and verify."""
    photo = Image.open(data_dir / "video" / "obama.jpg")
    suit = tmp_path / "suit.jpg"
    photo.crop((0, int(photo.height * 0.7), photo.width, photo.height)).save(suit)
    gallery = tmp_path / "g.db"
    assert run(capsys, "enroll", "--gallery", gallery, "--person", "obama", data_dir / "video" / "obama.jpg",
               *FAST)[0] == 0
    for argv in (("detect", suit), ("identify", "--gallery", gallery, suit)):
        code, out, err = run(capsys, *argv, *FAST)
        assert code == 0, err
        assert f"{suit}: no face found; give a photo" in out and "0 face(s)" in out
        code, out, _ = run(capsys, *argv, *FAST, "--json")
        assert "no face found" in json.loads(out)["reason"]


@pytest.mark.parametrize("argv,usage,says", [
    (("analyze", "img.jpg", "--atributes", "age"), "usage: faceprint analyze", "did you mean --attributes?"),
    (("eval", "lfw", "--images", "x", "--pairs", "y", "--bogus"), "usage: faceprint eval lfw", "--bogus"),
    (("verify", "a.jpg", "b.jpg", "c.jpg"), "usage: faceprint verify", "unrecognized arguments: c.jpg"),
])
def test_argument_errors_show_the_subcommand_usage(capsys, argv, usage, says):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(usage) and says in err, err
    assert "{" not in err.split("\n")[0], "the top-level usage (with its list of commands) was printed"


def test_analyze_takes_several_images_and_offers_no_recognition_options(capsys, data_dir):
    code, out, _ = run(capsys, "analyze", "--help")
    assert code == 0 and "--attributes" in out
    assert not any(flag in out for flag in ("--model", "--fmr", "--threshold")), out
    assert run(capsys, "analyze", data_dir / "video" / "obama.jpg", "--fmr", "1e-4")[0] == 2
    images = [data_dir / "video" / "obama.jpg", data_dir / "video" / "biden.jpg"]
    code, out, err = run(capsys, "analyze", *images, "--attributes", "eyes", "--json")
    assert code == 0, err
    assert [(Path(r["image"]).name, len(r["faces"])) for r in json.loads(out)] == [("obama.jpg", 1), ("biden.jpg", 1)]
    code, out, err = run(capsys, "analyze", *images, "--attributes", "eyes")
    assert code == 0 and out.count("1 face(s)") == 2 and "biden.jpg" in out
    code, _, err = run(capsys, "analyze", *images, "--out", "a.png")
    assert code == 2 and "drop --out or give one image" in err


@pytest.mark.parametrize("command,required,gone", [
    (("eval", "impersonation"), ("--targets", "x", "--attackers", "y"), ("--model", "--fmr", "--threshold")),
    (("eval", "morph"), ("--images", "x", "--pairs", "y"), ("--model", "--threshold")),
])
def test_evaluations_by_profiles_offer_no_ignored_model_option(capsys, command, required, gone):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "--profiles" in out
    assert not any(flag + " " in out for flag in gone), out
    code, _, err = run(capsys, *command, "--model", "fast", *required)
    assert code == 2 and "unrecognized arguments: --model" in err
