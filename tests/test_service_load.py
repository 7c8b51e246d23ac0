"""Load and fault test of the service (the short form runs in CI; ``-m slow`` runs the 60 s one).

32 concurrent clients mix identify and enrol against ``faceprint serve`` on loopback: no request
may get a 5xx, and the gallery must hold exactly the enrolments that were acknowledged. Then the
server is killed with SIGKILL mid-load and restarted: every acknowledged enrolment is there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pytest.importorskip("httpx")
from service_load import load_and_fault


def check(report: dict, clients: int) -> None:
    load = report["load"]
    assert load["clients"] == clients
    assert load["server_errors"] == 0, load["statuses"]
    assert load["requests"] > clients  # every client got answers
    assert load["latency"]["identify"]["count"] > 0 and load["acknowledged_enrolments"] > 0
    assert report["lost_enrolments"] == 0 and not report["missing_names"]
    kill = report["kill"]
    assert kill["server_errors"] == 0
    assert kill["missing_after_restart"] == 0, kill["missing_names"]


def test_short_load_and_kill(tmp_path, data_dir):
    report = load_and_fault(tmp_path / "data", clients=32, seconds=12, kill_after=4)
    check(report, 32)


@pytest.mark.slow
def test_full_load_and_kill(tmp_path, data_dir):
    report = load_and_fault(tmp_path / "data", clients=32, seconds=60, kill_after=10)
    check(report, 32)
