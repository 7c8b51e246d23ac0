"""Every score is shown beside the threshold it had to reach and the decision it led to.

The web page's sentence comes from ``static/verdict.js``, run here with node (skipped where node is
not installed; the Chromium test drives the whole page). The CLI's identify table is checked on
real faces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from faceprint.cli import main

VERDICT_JS = Path(__file__).resolve().parents[1] / "faceprint" / "service" / "static" / "verdict.js"
NODE = shutil.which("node") or shutil.which("nodejs")


def verdicts(cases: list[dict]) -> list[str]:
    """``faceVerdict(face, index, threshold, fmr)`` of each case, run by node."""
    script = (f"const {{ faceVerdict }} = require({json.dumps(str(VERDICT_JS))});\n"
              f"const cases = {json.dumps(cases)};\n"
              "console.log(JSON.stringify(cases.map((c) => faceVerdict(c.face, c.index, c.threshold, c.fmr))));")
    proc = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def face(person, score, unknown, **extra) -> dict:
    candidates = [{"person": person, "person_id": 1, "score": score}] if person else []
    return {"face": {"box": [0, 0, 10, 10]}, "person": None if unknown else person, "unknown": unknown,
            "candidates": candidates, **extra}


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
def test_web_page_says_score_threshold_and_decision_in_words():
    cases = [
        {"face": face("Rose Leslie", 0.1723, True), "index": 0, "threshold": 0.3586, "fmr": 0.001},
        {"face": face("obama", 0.7311, False), "index": 1, "threshold": 0.3586, "fmr": 0.001},
        {"face": face("biden", 0.3581, True), "index": 2, "threshold": 0.3586, "fmr": 0.0001},
        {"face": face(None, 0.0, True), "index": 3, "threshold": 0.8009, "fmr": 0.001},
        {"face": face("x", 0.9, True, skipped="low quality (profile, 0.21)"), "index": 4, "threshold": 0.5,
         "fmr": 0.001},
        {"face": face("x", 0.9, True, rejected="screen replay suspected"), "index": 5, "threshold": 0.5,
         "fmr": 3e-5},
    ]
    assert verdicts(cases) == [
        "Face 1: unknown: nearest Rose Leslie scored 0.17, below the 0.36 needed for a match (FMR 1e-3)",
        "Face 2: obama (scored 0.73, at or above the 0.36 needed for a match, FMR 1e-3)",
        # equal at two decimals: four, so the sentence never reads "0.36, below the 0.36"
        "Face 3: unknown: nearest biden scored 0.3581, below the 0.3586 needed for a match (FMR 1e-4)",
        "Face 4: unknown: nobody enrolled to compare with",
        "Face 5: skipped, not searched (low quality (profile, 0.21))",
        "Face 6: rejected before matching (screen replay suspected)",
    ]


def test_web_page_loads_the_verdict_script_before_the_app():
    html = (VERDICT_JS.parent / "index.html").read_text()
    assert html.index('src="/static/verdict.js"') < html.index('src="/static/app.js"')
    assert "faceVerdict(f, i, result.threshold, result.fmr)" in (VERDICT_JS.parent / "app.js").read_text()


def test_cli_identify_shows_each_score_against_the_threshold(data_dir, tmp_path, capsys):
    knn = data_dir / "knn-small"
    gallery = str(tmp_path / "g.db")
    obama = [str(p) for p in sorted((knn / "train" / "obama").iterdir())]
    assert main(["enroll", "--model", "fast", "--gallery", gallery, "--person", "obama", *obama]) == 0
    capsys.readouterr()
    assert main(["identify", "--model", "fast", "--gallery", gallery, str(knn / "test" / "obama_and_biden.jpg")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "score vs threshold" in lines[0]
    known = next(line for line in lines if " obama " in f" {line} " and ">= 0.359" in line)
    unknown = next(line for line in lines if "unknown" in line and "< 0.359" in line)
    assert float(known.split(">=")[0].split()[-1]) >= 0.359 > float(unknown.split("<")[0].split()[-1])
