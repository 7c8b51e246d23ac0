"""The audit log: hash chain, tamper detection (edit, delete, reorder, truncate), concurrency, export."""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
import threading

import pytest

from faceprint.privacy.audit import (
    AUDIT_ENV,
    GENESIS,
    AuditLog,
    AuditLogError,
    audit_cli,
    audit_log_from,
)


def filled(tmp_path, n=5) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl", actor="tester@host")
    for i in range(n):
        log.append("enroll", subject=f"person{i}", collection="g.sqlite", details={"faces": i + 1})
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_append_builds_a_valid_chain(tmp_path):
    log = filled(tmp_path)
    recs = list(log.records())
    assert [r["seq"] for r in recs] == [0, 1, 2, 3, 4]
    assert recs[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(recs))
    assert recs[2]["actor"] == "tester@host" and recs[2]["time"].endswith("+00:00")
    assert recs[2]["details"] == {"faces": 3} and recs[2]["subject"] == "person2"
    report = log.verify()
    assert report.ok and report.records == 5 and report.head_seq == 4 and report.head_hash == recs[-1]["hash"]
    assert (log.path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(AuditLogError):
        log.append("steal")


def test_edit_is_detected_at_its_record(tmp_path):
    log = filled(tmp_path)
    text = lines(log)
    rec = json.loads(text[2])
    rec["subject"] = "someone else"
    text[2] = json.dumps(rec) + "\n"
    log.path.write_text("".join(text))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2 and "edited" in report.reason


def test_deletion_and_reordering_are_detected(tmp_path):
    log = filled(tmp_path)
    text = lines(log)
    log.path.write_text("".join(text[:1] + text[2:]))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2 and report.first_bad_line == 2
    log.path.write_text("".join([text[0], text[2], text[1]] + text[3:]))
    assert not log.verify().ok and log.verify().first_bad_seq == 2


def test_recomputed_hashes_still_break_the_chain_downstream(tmp_path):
    from faceprint.privacy.audit import record_hash

    log = filled(tmp_path)
    text = lines(log)
    rec = json.loads(text[1])
    rec["action"] = "search"
    rec["hash"] = record_hash(rec)  # a forger who recomputes this record's hash ...
    text[1] = json.dumps(rec) + "\n"
    log.path.write_text("".join(text))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2  # ... breaks the next link


def test_truncation_is_detected_against_a_saved_head(tmp_path):
    log = filled(tmp_path)
    head = log.head()
    assert log.verify(expected_head=head).ok
    log.path.write_text("".join(lines(log)[:3]))
    assert log.verify().ok  # a shorter chain is still a valid chain ...
    report = log.verify(expected_head=head)
    assert not report.ok and "removed from the end" in report.reason  # ... but not the one we saw


def test_concurrent_appends_from_threads_and_processes(tmp_path):
    path = tmp_path / "audit.jsonl"

    def worker(tag):
        log = AuditLog(path)
        for i in range(20):
            log.append("search", subject=f"{tag}-{i}")

    threads = [threading.Thread(target=worker, args=(f"t{k}",)) for k in range(4)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=worker, args=(f"p{k}",)) for k in range(2)]
    for t in procs + threads:  # fork before any thread runs
        t.start()
    for t in threads + procs:
        t.join()
    assert all(p.exitcode == 0 for p in procs)
    report = AuditLog(path).verify()
    assert report.ok, report.reason
    assert report.records == 120


def test_export_jsonl_and_csv(tmp_path):
    log = filled(tmp_path, 3)
    assert log.export("jsonl") == log.path.read_text()
    rows = list(csv.DictReader(io.StringIO(log.export("csv"))))
    assert [r["subject"] for r in rows] == ["person0", "person1", "person2"]
    assert json.loads(rows[1]["details"]) == {"faces": 2} and rows[1]["seq"] == "1"
    with pytest.raises(AuditLogError):
        log.export("xml")


def test_cli_helper_uses_option_then_environment(tmp_path, monkeypatch):
    import argparse

    monkeypatch.delenv(AUDIT_ENV, raising=False)
    args = argparse.Namespace(gallery="people.sqlite", audit_log=None)
    assert audit_cli(args, "delete", subject="bob") is None and audit_log_from() is None
    monkeypatch.setenv(AUDIT_ENV, str(tmp_path / "env.jsonl"))
    rec = audit_cli(args, "delete", subject="bob", details={"faces": 2})
    assert rec.collection == "people.sqlite" and rec.seq == 0
    args.audit_log = str(tmp_path / "opt.jsonl")
    audit_cli(args, "enroll", subject="amy")
    assert AuditLog(tmp_path / "opt.jsonl").verify().records == 1
    assert AuditLog(tmp_path / "env.jsonl").verify().records == 1


def test_cli_audit_verify_and_export(tmp_path, capsys):
    from test_crypto import privacy_cli

    log = filled(tmp_path, 3)
    out = tmp_path / "audit.csv"
    assert privacy_cli(["audit", "export", str(log.path), "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text().startswith("seq,time,actor")
    capsys.readouterr()
    assert privacy_cli(["audit", "verify", str(log.path)]) == 0
    head = capsys.readouterr().out.split("head ")[1].split()[0]
    assert privacy_cli(["audit", "verify", str(log.path), "--expect-head", head]) == 0
    text = lines(log)
    log.path.write_text("".join(text[:2]))
    assert privacy_cli(["audit", "verify", str(log.path)]) == 0
    assert privacy_cli(["audit", "verify", str(log.path), "--expect-head", head]) == 1
    log.path.write_text(text[0] + text[2])
    capsys.readouterr()
    assert privacy_cli(["audit", "verify", str(log.path)]) == 1
    assert "BROKEN at seq 2" in capsys.readouterr().out


def test_cli_audit_on_a_missing_file_is_an_error_not_an_empty_log(tmp_path, capsys):
    from test_crypto import privacy_cli

    missing = tmp_path / "no-such-audit.log"
    for argv in (["audit", "verify", str(missing)], ["audit", "export", str(missing)]):
        capsys.readouterr()
        assert privacy_cli(argv) == 2
        err = capsys.readouterr().err
        assert "no-such-audit.log: no such audit log file" in err and "OK" not in err
    assert not missing.exists()  # checking it did not create it
