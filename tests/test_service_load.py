"""Load and fault test of the service (the short form runs in CI; ``-m slow`` runs the 60 s one).

32 concurrent clients mix identify and enrol against ``faceprint serve`` on loopback: no request
may get a 5xx, and the gallery must hold exactly the enrolments that were acknowledged. Then the
server is killed with SIGKILL mid-load and restarted: every acknowledged enrolment is there. With
two replicas on one PostgreSQL, one is killed mid-load: the other keeps answering and holds every
acknowledged enrolment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pytest.importorskip("httpx")
from service_load import load_and_fault, replica_load


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


@pytest.fixture
def fresh_database(pg_url) -> str:
    """A new, empty database on the session's PostgreSQL server (no keys, no collections)."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "load_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def test_two_replicas_kill_one(tmp_path, data_dir, fresh_database):
    """Two replicas on one PostgreSQL under load; one SIGKILLed after 6 acknowledged enrolments; nothing lost.

    The kill and the end of the run are decided by answers (acknowledged enrolments, answered
    requests), never by elapsed time.
    """
    report = replica_load(tmp_path, replicas=2, clients=8, seconds=4, database=fresh_database, workers=1,
                          kill_after=6)
    load = report["load"]
    assert load["server_errors"] == 0, load["statuses"]
    assert load["requests"] > 8 and load["acknowledged_enrolments"] > 0
    assert report["replicas_agree"] and report["lost_enrolments"] == 0 and not report["missing_names"]
    kill = report["kill"]
    assert kill["stopped_by_event"] and kill["acknowledged_before_kill"] >= 6
    assert kill["answers"] >= 2 * kill["answers_before_kill"]  # the survivor kept answering
    assert kill["server_errors"] == 0, kill["statuses"]
    assert kill["missing_after_kill"] == 0, kill["missing_names"]
