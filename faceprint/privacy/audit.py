"""An append-only, tamper-evident audit log: who enrolled, searched, matched and deleted whom, and when.

One JSON object per line. Each record carries ``seq`` (0, 1, 2 ...), ``time`` (UTC, ISO 8601),
``actor``, ``action``, ``collection`` (the gallery), ``subject`` (the person, if any),
``outcome``, ``details``, ``prev_hash`` and ``hash = sha256(prev_hash || canonical JSON of the
record without its hash)``. Changing, deleting, inserting or reordering any record breaks the chain
at that point, which :meth:`AuditLog.verify` reports. Cutting records off the END leaves a valid
shorter chain: to detect that, keep the head (``seq`` and ``hash`` from :meth:`AuditLog.head`)
somewhere else and pass it to :meth:`AuditLog.verify`.

:meth:`AuditLog.append` is safe across threads and processes (an exclusive ``fcntl`` lock on the
file around read-last-record / write / ``fsync``). Records hold no templates or images: only
names, counts and decisions.
"""

from __future__ import annotations

import csv
import fcntl
import getpass
import hashlib
import io
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import FaceprintError

log = logging.getLogger(__name__)

AUDIT_ENV = "FACEPRINT_AUDIT_LOG"
"""Environment variable naming the audit log file the CLI writes to."""

GENESIS = "0" * 64
"""``prev_hash`` of the first record."""

ACTIONS = ("enroll", "search", "verify", "identify", "delete", "purge", "rotate_key", "export", "other")
FIELDS = ("seq", "time", "actor", "action", "collection", "subject", "outcome", "details", "prev_hash", "hash")


class AuditLogError(FaceprintError):
    """The audit log cannot be read or written, or a record is malformed."""

    code = "audit_log_error"


def _canonical(record: dict) -> bytes:
    body = {k: record[k] for k in FIELDS if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict) -> str:
    """The chain hash of ``record``: sha256 of its ``prev_hash`` and its canonical JSON (hash left out)."""
    return hashlib.sha256(record["prev_hash"].encode() + _canonical(record)).hexdigest()


def default_actor() -> str:
    """``user@host`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class AuditRecord:
    """One audit log line."""

    seq: int
    time: str
    actor: str
    action: str
    collection: str | None
    subject: str | None
    outcome: str
    details: dict
    prev_hash: str
    hash: str


@dataclass
class VerificationReport:
    """The result of checking a log's hash chain; ``first_bad_seq`` is the first record that fails."""

    ok: bool
    records: int
    head_seq: int | None
    head_hash: str
    first_bad_seq: int | None = None
    first_bad_line: int | None = None
    reason: str = ""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return asdict(self)


class AuditLog:
    """An audit log file (JSON lines); created on first append."""

    def __init__(self, path: str | os.PathLike, actor: str | None = None) -> None:
        self.path = Path(path)
        self.actor = actor or default_actor()
        self._lock = threading.Lock()

    def _last_record(self, fh) -> dict | None:
        """The last complete record in the open file (read backwards from the end)."""
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        block = 4096
        tail = b""
        pos = end
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            tail = fh.read(step) + tail
            lines = tail.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                last = lines[-1].strip()
                if not last:
                    return None
                try:
                    return json.loads(last)
                except json.JSONDecodeError as exc:
                    raise AuditLogError(f"audit log {self.path}: last line is not a record: {exc}") from exc
        return None

    def append(self, action: str, *, subject: str | None = None, collection: str | None = None,
               outcome: str = "ok", details: dict | None = None, actor: str | None = None) -> AuditRecord:
        """Append one record, chained to the last one, and ``fsync`` it; returns the record."""
        if action not in ACTIONS:
            raise AuditLogError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise AuditLogError(f"cannot open audit log {self.path}: {exc.strerror or exc}; give a file "
                                    f"path in a folder that exists and can be written") from exc
            with os.fdopen(fd, "r+b") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    last = self._last_record(fh)
                    record = {
                        "seq": 0 if last is None else int(last["seq"]) + 1,
                        "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                        "actor": actor or self.actor,
                        "action": action,
                        "collection": None if collection is None else str(collection),
                        "subject": subject,
                        "outcome": outcome,
                        "details": dict(details or {}),
                        "prev_hash": GENESIS if last is None else last["hash"],
                    }
                    record["hash"] = record_hash(record)
                    line = json.dumps({k: record[k] for k in FIELDS}, ensure_ascii=False) + "\n"
                    fh.write(line.encode())
                    fh.flush()
                    os.fsync(fh.fileno())
                except (TypeError, ValueError) as exc:
                    raise AuditLogError(f"audit record is not JSON-serialisable: {exc}") from exc
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return AuditRecord(**record)

    def records(self) -> Iterator[dict]:
        """Every record as a dict, in file order (no checking)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise AuditLogError(f"{self.path}:{lineno}: not a JSON record: {exc}") from exc

    def head(self) -> tuple[int | None, str]:
        """``(seq, hash)`` of the last record (``(None, GENESIS)`` for an empty log): keep it elsewhere."""
        report = self.verify()
        return report.head_seq, report.head_hash

    def verify(self, expected_head: tuple[int, str] | None = None) -> VerificationReport:
        """Check every record's hash and its link to the previous one; report the first break.

        ``expected_head`` (a ``(seq, hash)`` saved earlier) also detects records cut off the end.
        """
        if not self.path.exists():
            return verify_lines([], expected_head)
        with open(self.path, encoding="utf-8") as fh:
            return verify_lines(enumerate(fh, 1), expected_head)

    def export(self, fmt: str = "jsonl") -> str:
        """The whole log as ``jsonl`` or ``csv`` text (``details`` as JSON in CSV)."""
        return export_records(list(self.records()), fmt)


def verify_lines(lines, expected_head: tuple[int, str] | None = None) -> VerificationReport:
    """Check a chain given as ``(line number, JSON line)`` pairs in order (see :meth:`AuditLog.verify`)."""
    prev, count, head_seq = GENESIS, 0, None
    seen_head = expected_head is None
    for lineno, line in lines:
        if not line.strip():
            continue
        bad = _check_line(line, prev, count)
        if bad:
            seq = _seq_of(line)
            return VerificationReport(False, count, head_seq, prev, seq if seq is not None else count,
                                      lineno, bad, [f"line {lineno}: {bad}"])
        rec = json.loads(line)
        prev, head_seq, count = rec["hash"], rec["seq"], count + 1
        if expected_head is not None and (rec["seq"], rec["hash"]) == tuple(expected_head):
            seen_head = True
    if not seen_head:
        reason = f"saved head seq {expected_head[0]} is not in the log: records were removed from the end"
        return VerificationReport(False, count, head_seq, prev, count, None, reason, [reason])
    return VerificationReport(True, count, head_seq, prev)


def _check_line(line: str, prev: str, expected_seq: int) -> str:
    """Why ``line`` breaks the chain ('' when it does not)."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return "not a JSON record"
    if not isinstance(rec, dict) or set(rec) != set(FIELDS):
        return "fields missing or added"
    if rec["seq"] != expected_seq:
        return f"sequence number {rec['seq']} where {expected_seq} was expected (record deleted or moved)"
    if rec["prev_hash"] != prev:
        return "prev_hash does not match the previous record (record deleted, inserted or moved)"
    if record_hash(rec) != rec["hash"]:
        return "hash does not match the record's content (record edited)"
    return ""


def export_records(records: list[dict], fmt: str = "jsonl") -> str:
    """``records`` as ``jsonl`` or ``csv`` text (``details`` as JSON in CSV)."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({**r, "details": json.dumps(r.get("details", {}), sort_keys=True)})
        return out.getvalue()
    raise AuditLogError(f"unknown export format {fmt!r}; use jsonl or csv")


AUDIT_SCHEMA = "faceprint_audit"
_AUDIT_LOCK = 0x66_61_63_65_61_75  # "faceau": the advisory lock of the audit table's creation


class PostgresAuditLog:
    """The same hash-chained log as :class:`AuditLog`, as rows of a PostgreSQL table, shared by many processes.

    ``{schema}.audit_log`` holds one row per record (the same fields, ``seq`` the primary key).
    :meth:`append` takes ``LOCK TABLE ... SHARE ROW EXCLUSIVE`` in its transaction, reads the last
    row and inserts the next: appends from every process are serialised by the database, so the
    chain stays one chain with any number of service replicas. :meth:`verify` and :meth:`export`
    read the table in ``seq`` order and check it exactly as the file is checked.
    """

    def __init__(self, url: str, actor: str | None = None, schema: str = AUDIT_SCHEMA) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError as exc:
            raise AuditLogError(f"an audit log in PostgreSQL needs faceprint's optional 'postgres' part ({exc}): "
                                "pip install 'faceprint[postgres]'") from exc
        self._psycopg = psycopg
        self.actor = actor or default_actor()
        self._table = sql.SQL("{}.audit_log").format(sql.Identifier(schema))
        self._sql = sql
        self._lock = threading.Lock()
        self._url = url
        try:
            self._conn = psycopg.connect(url, autocommit=True)
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
                self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                self._conn.execute(self._q(
                    "CREATE TABLE IF NOT EXISTS {t} (seq bigint PRIMARY KEY, time text NOT NULL, actor text NOT NULL, "
                    "action text NOT NULL, collection text, subject text, outcome text NOT NULL, "
                    "details jsonb NOT NULL, prev_hash text NOT NULL, hash text NOT NULL)"))
        except psycopg.Error as exc:
            raise AuditLogError(f"cannot open the audit log table {schema}.audit_log: {exc}") from exc

    def _q(self, text: str):
        return self._sql.SQL(text).format(t=self._table)

    def append(self, action: str, *, subject: str | None = None, collection: str | None = None,
               outcome: str = "ok", details: dict | None = None, actor: str | None = None) -> AuditRecord:
        """Append one record, chained to the last one, in one committed transaction; returns the record."""
        if action not in ACTIONS:
            raise AuditLogError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn.closed or self._conn.broken:  # the server dropped it (restart, failover)
                        self._conn = self._psycopg.connect(self._url, autocommit=True)
                    record = self._append(action, subject, collection, outcome, details, actor)
                    break
                except (TypeError, ValueError) as exc:
                    raise AuditLogError(f"audit record is not JSON-serialisable: {exc}") from exc
                except self._psycopg.Error as exc:
                    # nothing was committed: on a connection found dropped, append once more on a new one
                    if attempt == 2 or not self._conn.broken:
                        raise AuditLogError(f"cannot append to the audit log table: {exc}") from exc
        return AuditRecord(**record)

    def _append(self, action: str, subject: str | None, collection: str | None, outcome: str,
                details: dict | None, actor: str | None) -> dict:
        with self._conn.transaction():
            self._conn.execute(self._q("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE"))
            last = self._conn.execute(self._q("SELECT seq, hash FROM {t} ORDER BY seq DESC LIMIT 1")).fetchone()
            record = {
                "seq": 0 if last is None else int(last[0]) + 1,
                "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "actor": actor or self.actor, "action": action,
                "collection": None if collection is None else str(collection), "subject": subject,
                "outcome": outcome, "details": dict(details or {}),
                "prev_hash": GENESIS if last is None else last[1],
            }
            record["hash"] = record_hash(record)
            self._conn.execute(self._q(
                "INSERT INTO {t} (seq, time, actor, action, collection, subject, outcome, details, prev_hash, "
                "hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"),
                [record[k] if k != "details" else json.dumps(record[k], ensure_ascii=False) for k in FIELDS])
        return record

    def records(self) -> Iterator[dict]:
        """Every record as a dict, in ``seq`` order (no checking)."""
        with self._lock:
            rows = self._conn.execute(self._q(
                "SELECT seq, time, actor, action, collection, subject, outcome, details, prev_hash, hash "
                "FROM {t} ORDER BY seq")).fetchall()
        for row in rows:
            yield dict(zip(FIELDS, row))

    def verify(self, expected_head: tuple[int, str] | None = None) -> VerificationReport:
        """As :meth:`AuditLog.verify`; "line" numbers count rows in ``seq`` order from 1."""
        return verify_lines(((i, json.dumps(r, ensure_ascii=False)) for i, r in enumerate(self.records(), 1)),
                            expected_head)

    def head(self) -> tuple[int | None, str]:
        """``(seq, hash)`` of the last record (``(None, GENESIS)`` when empty): keep it elsewhere."""
        report = self.verify()
        return report.head_seq, report.head_hash

    def export(self, fmt: str = "jsonl") -> str:
        """The whole log as ``jsonl`` or ``csv`` text."""
        return export_records(list(self.records()), fmt)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()


def _seq_of(line: str) -> int | None:
    try:
        seq = json.loads(line).get("seq")
        return seq if isinstance(seq, int) else None
    except (json.JSONDecodeError, AttributeError):
        return None


def audit_log_from(path: str | os.PathLike | None = None, environ: dict | None = None) -> AuditLog | None:
    """The audit log at ``path``, else at :data:`AUDIT_ENV`, else ``None`` (auditing off)."""
    target = path or (os.environ if environ is None else environ).get(AUDIT_ENV)
    return AuditLog(target) if target else None


def audit_cli(args, action: str, *, subject: str | None = None, outcome: str = "ok",
              details: dict | None = None) -> AuditRecord | None:
    """Record a CLI command in the log named by ``args.audit_log`` or :data:`AUDIT_ENV` (no-op when neither).

    ``collection`` is ``args.gallery`` when the command has one. Call it after the command's
    gallery change succeeded (and with ``outcome="error"`` from an ``except`` if wanted).
    """
    audit = audit_log_from(getattr(args, "audit_log", None))
    if audit is None:
        return None
    gallery = getattr(args, "gallery", None)
    return audit.append(action, subject=subject, collection=None if gallery is None else str(gallery),
                        outcome=outcome, details=details)
