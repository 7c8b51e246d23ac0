"""Run the ``faceprint`` command line in the test's own process (shared by the CLI tests)."""

from __future__ import annotations

from faceprint.cli import main


def run(capsys, *argv: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``faceprint argv...`` run in this process."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
