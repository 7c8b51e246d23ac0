"""Every output option of the command line is checked before the work starts (``OutputPathError``, exit 2).

One check (``faceprint.cli.common.check_output``, run by the dispatcher for each option added with
``add_output_option``) refuses a folder that cannot be made, a folder where a file is expected and a file
type nothing can write, in one ``faceprint: error:`` line naming the option and what to give. The input
of each refused command is missing on purpose: the output error must come first, before any input is read.
"""

from __future__ import annotations

import pytest

from cli_run import run
from faceprint.cli import build_parser
from faceprint.cli.common import OUTPUT_KINDS

MISSING_IMG = "missing.jpg"  # reading it would fail with ImageDecodeError: the output check must come first


@pytest.fixture()
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


CASES = [
    (("analyze", MISSING_IMG, "--out", "afile/sub/a.png"), ("--out afile/sub/a.png", "give a path in a folder")),
    (("detect", MISSING_IMG, "--out", "ann.xyz"), ("'.xyz'", ".png")),
    (("detect", MISSING_IMG, "--out", "ann_nodot"), ("no extension", ".png")),
    (("analyze", MISSING_IMG, "--out", "adir"), ("--out adir is a folder", "give a file name in it")),
    (("identify", "--gallery", "g.db", MISSING_IMG, "--out", "adir/"), ("adir/ is a folder", "file name")),
    (("micro-expressions", "missing.mp4", "--out", "afile/m.png"), ("--out afile/m.png", "give a path in a folder")),
    (("micro-expressions", "missing.mp4", "--out", "m.txt"), ("'.txt'", ".png, .svg, .pdf")),
    (("video", "missing.mp4", "--gallery", "g.db", "--out-video", "a.gif"), ("--out-video", ".mp4")),
    (("video", "missing.mp4", "--gallery", "g.db", "--out-json", "adir"), ("--out-json adir is a folder", "file name")),
    (("eval", "lfw", "--images", "x", "--pairs", "y", "--out", "afile"), ("afile is a file, not a folder", "give")),
    (("eval", "impersonation", "--targets", "x", "--attackers", "y", "--out", "afile/x"), ("afile", "give a path")),
    (("eval", "age", "missing", "--out", "afile"), ("afile is a file, not a folder", "give")),
    (("eval", "expression", "missing", "--out", "afile/x"), ("afile", "give a path")),
    (("cluster", "missing", "--out", "afile"), ("--out afile", "not a folder")),
    (("audit", "export", "missing.log", "--out", "adir"), ("--out adir is a folder", "file name")),
]


@pytest.mark.parametrize("argv,says", CASES, ids=[" ".join(c[0][:2]) + " " + c[0][-1] for c in CASES])
def test_unwritable_output_is_refused_first(here, capsys, argv, says):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "", err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("faceprint: error: --out"), err
    assert "Traceback" not in err
    for part in says:
        assert part in err, f"{part!r} not in {err}"
    assert not (here / "afile.png").exists()


def test_missing_folders_of_an_output_are_created(here, capsys, data_dir):
    code, out, err = run(capsys, "detect", data_dir / "video" / "obama.jpg", "--model", "fast", "--out", "new/sub/a.png")
    assert code == 0, err
    assert (here / "new" / "sub" / "a.png").stat().st_size > 1000


def test_every_output_option_is_checked():
    """Each subcommand option that names an output is registered with the dispatcher's check."""
    parser = build_parser()
    seen = []

    def walk(p, path):
        for action in p._actions:
            if action.choices and isinstance(action.choices, dict):  # subparsers
                for name, child in action.choices.items():
                    walk(child, path + (name,))
            elif any(flag.startswith("--out") for flag in action.option_strings):
                checked = {dest for dest, _, _ in (p.get_default("output_options") or ())}
                seen.append(path)
                assert action.dest in checked, f"faceprint {' '.join(path)} {action.option_strings[0]} is not checked"
        for _, _, kind in p.get_default("output_options") or ():
            assert kind in OUTPUT_KINDS

    walk(parser, ())
    assert len(seen) >= 15
