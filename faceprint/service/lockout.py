"""Failed-verification lockout: a verify endpoint that resists guessing.

An attacker who can submit photos to ``POST /v1/collections/{c}/persons/{p}/verify`` can try many
look-alike faces against one enrolled person (``faceprint eval impersonation`` measures how often
one of N such photos passes). :class:`VerifyLockout` counts failed verifications in a sliding
window, per API key and person and per person over every key, and refuses further attempts
(HTTP 429 with ``Retry-After``) once either count reaches its limit, until the oldest failure
leaves the window. A successful verification clears the key's count for that person (not the
count over every key, so that a second key cannot wash out the first one's failures).

The counts live behind :class:`FailureStore` (:class:`MemoryFailureStore` for one process,
:class:`SQLiteFailureStore` in the service's data folder so that a restart does not reset them);
a store in a shared database gives replicas one count. Time comes from an injected ``clock``
(seconds), so tests need no sleeping.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import FaceprintError

__all__ = ["FailureStore", "LockoutPolicy", "MemoryFailureStore", "SQLiteFailureStore", "VerifyLockedError",
           "VerifyLockout"]


class VerifyLockedError(FaceprintError):
    """Too many failed verifications against this person: retry after ``retry_after`` seconds (HTTP 429)."""

    code = "verify_locked"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LockoutPolicy:
    """Limits of :class:`VerifyLockout`: failures allowed per key and person, per person, and the window (s).

    A limit of 0 turns that count off; both 0 turns the lockout off.
    """

    per_key: int = 5
    per_person: int = 20
    window_s: float = 900.0

    def __post_init__(self) -> None:
        if self.per_key < 0 or self.per_person < 0 or self.window_s <= 0:
            raise ValueError("lockout limits must be >= 0 and the window > 0 seconds")

    @property
    def enabled(self) -> bool:
        """Whether any count is limited."""
        return bool(self.per_key or self.per_person)


class FailureStore(Protocol):
    """Where failure times are kept, by scope (a string naming key + person, or person)."""

    def times(self, scope: str, since: float) -> list[float]: ...
    def add(self, scopes: list[str], at: float) -> None: ...
    def clear(self, scope: str) -> None: ...


class MemoryFailureStore:
    """Failure times in this process's memory."""

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def times(self, scope: str, since: float) -> list[float]:
        """Failure times of ``scope`` after ``since``, oldest first (older ones are dropped)."""
        with self._lock:
            kept = [t for t in self._times.get(scope, []) if t > since]
            if kept:
                self._times[scope] = kept
            else:
                self._times.pop(scope, None)
            return kept

    def add(self, scopes: list[str], at: float) -> None:
        """Record one failure at time ``at`` in each scope."""
        with self._lock:
            for scope in scopes:
                self._times[scope].append(at)

    def clear(self, scope: str) -> None:
        """Forget every failure of ``scope``."""
        with self._lock:
            self._times.pop(scope, None)


class SQLiteFailureStore:
    """Failure times in a SQLite file (kept across restarts of the service)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("CREATE TABLE IF NOT EXISTS failures (scope TEXT NOT NULL, at REAL NOT NULL)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS failures_scope ON failures (scope, at)")

    def times(self, scope: str, since: float) -> list[float]:
        """Failure times of ``scope`` after ``since``, oldest first (older ones are deleted)."""
        with self._lock:
            self._conn.execute("DELETE FROM failures WHERE scope = ? AND at <= ?", (scope, since))
            rows = self._conn.execute("SELECT at FROM failures WHERE scope = ? ORDER BY at", (scope,)).fetchall()
        return [r[0] for r in rows]

    def add(self, scopes: list[str], at: float) -> None:
        """Record one failure at time ``at`` in each scope (one transaction)."""
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT INTO failures VALUES (?, ?)", [(s, at) for s in scopes])
            self._conn.execute("COMMIT")

    def clear(self, scope: str) -> None:
        """Forget every failure of ``scope``."""
        with self._lock:
            self._conn.execute("DELETE FROM failures WHERE scope = ?", (scope,))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()


class VerifyLockout:
    """Counts failed verifications per (key, collection, person) and per (collection, person); refuses past limits."""

    def __init__(self, policy: LockoutPolicy, store: FailureStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.store = store if store is not None else MemoryFailureStore()
        self.clock = clock

    @staticmethod
    def _scopes(key_id: str, collection: str, person: str) -> tuple[str, str]:
        return f"key\x1f{key_id}\x1f{collection}\x1f{person}", f"person\x1f{collection}\x1f{person}"

    def check(self, key_id: str, collection: str, person: str) -> None:
        """Raise :class:`VerifyLockedError` when this key, or every key together, used up its failures on ``person``."""
        if not self.policy.enabled:
            return
        now = self.clock()
        since = now - self.policy.window_s
        for scope, limit, who in zip(self._scopes(key_id, collection, person),
                                     (self.policy.per_key, self.policy.per_person), ("this key", "all keys")):
            if not limit:
                continue
            times = self.store.times(scope, since)
            if len(times) >= limit:
                # the attempt is allowed again once the failures in the window drop below the limit
                free_at = times[len(times) - limit] + self.policy.window_s
                retry = max(1, math.ceil(free_at - now))
                raise VerifyLockedError(
                    f"{len(times)} failed verifications of {person!r} in collection {collection!r} by {who} in the "
                    f"last {self.policy.window_s:g} s (limit {limit}): verification of this person is locked for "
                    f"{retry} s; retry after that, or enrol a better photo if genuine attempts fail",
                    retry_after=retry)

    def record(self, key_id: str, collection: str, person: str, matched: bool) -> None:
        """Count one verification's outcome: a failure in both counts, or a success that clears the key's count."""
        if not self.policy.enabled:
            return
        key_scope, person_scope = self._scopes(key_id, collection, person)
        if matched:
            self.store.clear(key_scope)
        else:
            self.store.add([key_scope, person_scope], self.clock())
