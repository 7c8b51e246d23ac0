"""API keys: issued once, stored only as hashes, each with a role and the collections it may use.

A key reads ``fp_<id>_<secret>``. The id is public (it names the key in lists and logs); the
secret is 32 random bytes, of which only the SHA-256 digest is stored. Secrets are random, not
passwords, so a fast hash is enough: guessing 256 bits is hopeless whatever the hash costs.

Roles nest: ``admin`` (manage keys and collections) > ``writer`` (enrol and delete) >
``reader`` (detect, verify, identify, list). A key's ``collections`` is a list of names, or
``["*"]`` for every collection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ..errors import FaceprintError

ROLES = ("reader", "writer", "admin")
ALL = "*"


class ApiKeyError(FaceprintError):
    """An invalid key request (unknown role, bad collection list, unknown key id)."""

    code = "invalid_key_request"


@dataclass(frozen=True)
class ApiKey:
    """A stored key's public record (never the secret)."""

    id: str
    role: str
    collections: tuple[str, ...]
    label: str
    created_at: str

    def allows(self, role: str, collection: str | None = None) -> bool:
        """Whether this key has at least ``role`` and, if given, may use ``collection``."""
        if ROLES.index(self.role) < ROLES.index(role):
            return False
        return collection is None or ALL in self.collections or collection in self.collections

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {**asdict(self), "collections": list(self.collections)}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """API keys in a small SQLite file (``keys.sqlite`` in the service's data folder)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, digest TEXT NOT NULL, role TEXT NOT NULL,"
            " collections TEXT NOT NULL, label TEXT NOT NULL, created_at TEXT NOT NULL)")

    def create(self, role: str, collections: list[str] | tuple[str, ...], label: str = "") -> tuple[str, ApiKey]:
        """Issue a key; returns ``(the full key, its record)``. The full key is not kept."""
        full, record, digest = self._new(role, collections, label)
        self._insert(record, digest)
        return full, record

    @staticmethod
    def _new(role: str, collections: list[str] | tuple[str, ...], label: str) -> tuple[str, ApiKey, str]:
        """(the full key, its record, the digest of its secret) for a new key; nothing is stored."""
        if role not in ROLES:
            raise ApiKeyError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        names = tuple(dict.fromkeys(str(c).strip() for c in collections if str(c).strip()))
        if not names:
            raise ApiKeyError("a key needs at least one collection name, or '*' for all")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = ApiKey(key_id, role, names, label, datetime.now(timezone.utc).isoformat(timespec="seconds"))
        return f"fp_{key_id}_{secret}", record, _digest(secret)

    def _insert(self, record: ApiKey, digest: str) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
                               (record.id, digest, record.role, json.dumps(list(record.collections)), record.label,
                                record.created_at))

    def _row(self, key_id: str):
        """(id, digest, role, collections as a list, label, created_at) of key ``key_id``, or None."""
        with self._lock:
            row = self._conn.execute("SELECT id, digest, role, collections, label, created_at FROM api_keys"
                                     " WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else (*row[:3], json.loads(row[3]), *row[4:])

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The key record for a presented key, or ``None`` if it is malformed, unknown or wrong."""
        if not presented or not presented.startswith("fp_") or presented.count("_") < 2:
            return None
        key_id, secret = presented[3:].split("_", 1)
        row = self._row(key_id)
        expected = row[1] if row else _digest("decoy")  # same work whether or not the id exists
        if not hmac.compare_digest(expected, _digest(secret)) or row is None:
            return None
        return ApiKey(row[0], row[2], tuple(row[3]), row[4], row[5])

    def list(self) -> list[ApiKey]:
        """Every key's public record."""
        with self._lock:
            rows = self._conn.execute("SELECT id, role, collections, label, created_at FROM api_keys"
                                      " ORDER BY created_at, id").fetchall()
        return [ApiKey(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4]) for r in rows]

    def _delete(self, key_id: str) -> int:
        with self._lock:
            return self._conn.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount

    def revoke(self, key_id: str) -> None:
        """Delete a key; :class:`ApiKeyError` when there is no such key."""
        if self._delete(key_id) == 0:
            raise ApiKeyError(f"no key with id {key_id!r}")

    def close(self) -> None:
        """Close the key file."""
        self._conn.close()
