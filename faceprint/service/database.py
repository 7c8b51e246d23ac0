"""The service's state in PostgreSQL (``faceprint serve --database URL``): keys and collections shared by replicas.

Every ``faceprint serve`` process given the same URL sees the same API keys, collections, people,
templates, kept images and audit log, so any number of them can run behind a load balancer.
Nothing that must agree between replicas is held in a process:

* API keys (:class:`PostgresKeyStore`) are read from the database on every request, so a key
  revoked through one replica is refused by all of them at once.
* A collection (:class:`PostgresCollections`) is a row in ``faceprint_service.collections`` naming
  the PostgreSQL gallery that holds it (:class:`~faceprint.gallery.postgres.PostgresGallery`, one
  schema ``c_<hex>`` per collection, encrypted when the service has a key). Each process keeps the
  gallery connection open, but every use first reads the row again: a collection deleted (or
  deleted and made again) through another replica is never served from a stale connection.
* Liveness challenges in flight (:class:`~faceprint.service.challenges.PostgresChallengeStore`) are
  rows of one table, so any replica takes any frame of any challenge.
* Failed verifications counted against the lockout limits (:class:`PostgresFailureStore`, the
  store behind :class:`~faceprint.service.lockout.VerifyLockout`) are rows of one table, so a
  guesser spreading attempts over replicas meets one count. The times are each replica's clock:
  keep the replicas' clocks in step (NTP), as any cluster must.
* The per-collection write lock that keeps an enrolment's duplicate check and its write together
  is a PostgreSQL advisory lock (``pg_advisory_lock``), held on a connection of the calling
  thread: it excludes writers in every replica, and a replica killed while holding it releases it
  with its connection.

The tables are created and migrated once, in one transaction under an advisory lock, by whichever
process starts first (as the galleries' own migrations are).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from ..gallery.postgres import DatabaseUnavailableError, PostgresGallery, mask_url, parse_url
from ..privacy.crypto import GalleryKey
from .collections import (NAME, CollectionExistsError, CollectionInfo, CollectionNotFoundError, InvalidCollectionError,
                          collection_model)
from .keys import ApiKey, KeyStore

try:
    import psycopg
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - depends on the install
    psycopg = None
    _IMPORT_ERROR = exc

log = logging.getLogger(__name__)

SCHEMA = "faceprint_service"
SCHEMA_VERSION = 3
_MIGRATION_LOCK = 0x66_61_63_65_73_76  # "facesv": one advisory lock key for the service tables' migrations

# version -> SQL to go from version-1 to version, in schema {s}. Append new versions; never edit one.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE {s}.api_keys (
    id text PRIMARY KEY, digest text NOT NULL, role text NOT NULL, collections jsonb NOT NULL,
    label text NOT NULL, created_at text NOT NULL);
CREATE TABLE {s}.collections (
    name text PRIMARY KEY, profile text NOT NULL, model text NOT NULL, keep_images boolean NOT NULL,
    created_at text NOT NULL, gallery text UNIQUE NOT NULL);
"""),
    (2, """
CREATE TABLE {s}.verify_failures (scope text NOT NULL, at double precision NOT NULL);
CREATE INDEX verify_failures_scope ON {s}.verify_failures (scope, at);
"""),
    # Liveness challenges (faceprint.service.challenges.PostgresChallengeStore). Faceprint before this step
    # made the table itself, IF NOT EXISTS under the advisory lock "fchall" (0x666368616C6C); so does this
    # step: it keeps such a database's table and rows, and waits for a replica not yet upgraded.
    (3, """
SELECT pg_advisory_xact_lock(112577139010668);
CREATE TABLE IF NOT EXISTS {s}.liveness_challenges (
    id text PRIMARY KEY, started_at double precision NOT NULL, record jsonb NOT NULL);
"""),
]


class DatabaseError(DatabaseUnavailableError):
    """The service database cannot be reached or used (HTTP 503)."""


def _connect(url: str):
    if psycopg is None:
        raise DatabaseError(f"faceprint serve --database needs faceprint's optional 'postgres' part "
                            f"({_IMPORT_ERROR}): pip install 'faceprint[postgres]'")
    conninfo, _ = parse_url(url)
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the service database {mask_url(url)}: {exc}".strip()) from exc


def check_url(url: str) -> str:
    """``url`` if it can be the service database's; a ``gallery=`` parameter is refused (collections choose their own)."""
    if "gallery=" in url.split("?", 1)[-1] and "?" in url:
        raise DatabaseError(f"{mask_url(url)}: drop the gallery= parameter; with --database every collection "
                            f"gets its own gallery schema in that database")
    return url


def migrate(url: str) -> None:
    """Create the service tables, or bring them to :data:`SCHEMA_VERSION`, once, under an advisory lock."""
    conn = _connect(check_url(url))
    s = sql.Identifier(SCHEMA)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.meta (key text PRIMARY KEY, value text NOT NULL)")
                         .format(s))
            row = conn.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'").format(s)).fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise DatabaseError(f"the service database {mask_url(url)} has schema version {current}; this "
                                    f"faceprint knows {SCHEMA_VERSION}: upgrade faceprint on every replica")
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements.split(";"):
                        if statement.strip():
                            conn.execute(sql.SQL(statement).format(s=s))
                    log.info("service database %s: migrated to schema version %d", mask_url(url), version)
                    current = version
            conn.execute(sql.SQL("INSERT INTO {}.meta (key, value) VALUES ('schema_version', %s) "
                                 "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value").format(s), (str(current),))
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot prepare the service database {mask_url(url)}: {exc}") from exc
    finally:
        conn.close()


class _Connection:
    """One autocommit connection shared by a process's threads under a lock; database errors become DatabaseError.

    A connection the server dropped (a restart, a failover) is replaced at the next use: the
    request that found it broken fails, the ones after it reconnect.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = _connect(url)
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator:
        with self._lock:
            if self._conn is None:
                raise DatabaseError(f"the service database connection {mask_url(self.url)} is closed")
            if self._conn.closed or self._conn.broken:
                log.warning("service database %s: connection lost; reconnecting", mask_url(self.url))
                self._conn = _connect(self.url)
            try:
                with self._conn.transaction():
                    yield self._conn
            except psycopg.Error as exc:
                raise DatabaseError(f"service database {mask_url(self.url)}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _q(text: str) -> sql.Composed:
    return sql.SQL(text).format(s=sql.Identifier(SCHEMA))


class PostgresKeyStore(KeyStore):
    """API keys in ``faceprint_service.api_keys``: the same methods as :class:`~faceprint.service.keys.KeyStore`."""

    def __init__(self, url: str) -> None:  # noqa: D107 - no SQLite file: the database holds the keys
        migrate(url)
        self.path = mask_url(url)
        self._db = _Connection(url)

    def _insert(self, record: ApiKey, digest: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(_q("INSERT INTO {s}.api_keys VALUES (%s, %s, %s, %s::jsonb, %s, %s)"),
                         (record.id, digest, record.role, json.dumps(list(record.collections)), record.label,
                          record.created_at))

    def _row(self, key_id: str):
        with self._db.transaction() as conn:
            return conn.execute(_q("SELECT id, digest, role, collections, label, created_at FROM {s}.api_keys "
                                   "WHERE id = %s"), (key_id,)).fetchone()

    def list(self) -> list[ApiKey]:
        """Every key's public record."""
        with self._db.transaction() as conn:
            rows = conn.execute(_q("SELECT id, role, collections, label, created_at FROM {s}.api_keys "
                                   "ORDER BY created_at, id")).fetchall()
        return [ApiKey(r[0], r[1], tuple(r[2]), r[3], r[4]) for r in rows]

    def _delete(self, key_id: str) -> int:
        with self._db.transaction() as conn:
            return conn.execute(_q("DELETE FROM {s}.api_keys WHERE id = %s"), (key_id,)).rowcount

    def create_first_admin(self) -> str | None:
        """Issue an admin key for every collection when the database holds no key yet (once, under a lock)."""
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            if conn.execute(_q("SELECT EXISTS (SELECT 1 FROM {s}.api_keys)")).fetchone()[0]:
                return None
            full, record, digest = self._new("admin", ["*"], "first admin key")
            conn.execute(_q("INSERT INTO {s}.api_keys VALUES (%s, %s, %s, %s::jsonb, %s, %s)"),
                         (record.id, digest, record.role, json.dumps(list(record.collections)), record.label,
                          record.created_at))
        return full

    def ping(self) -> bool:
        """Whether the database answers now."""
        try:
            with self._db.transaction() as conn:
                conn.execute("SELECT 1")
            return True
        except DatabaseError:
            return False

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def _lock_id(collection: str) -> int:
    """The advisory lock key (a signed 64-bit integer) of one collection's writes."""
    return int.from_bytes(hashlib.sha256(b"faceprint collection " + collection.encode()).digest()[:8], "big",
                          signed=True)


class PostgresCollections:
    """Collections as rows of ``faceprint_service.collections``, each with its own PostgreSQL gallery schema.

    The same methods as :class:`~faceprint.service.collections.Collections`, plus :meth:`write_lock`.
    """

    def __init__(self, url: str, key: GalleryKey | None = None) -> None:
        migrate(url)
        self.url, self.key = url, key
        self._conninfo, _ = parse_url(url)
        self._db = _Connection(url)
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, PostgresGallery]] = {}  # collection -> (its gallery schema, the store)
        self._local = threading.local()  # each thread's connection for advisory locks
        self._lock_conns: list = []  # every such connection, closed by close()

    def _gallery_url(self, schema: str) -> str:
        return self._conninfo + ("&" if "?" in self._conninfo else "?") + f"gallery={schema}"

    @staticmethod
    def _check_name(name: str) -> None:
        if not NAME.match(name or ""):
            raise InvalidCollectionError(
                f"invalid collection name {name!r}: 1-64 letters, digits, '_', '.', '-', not starting with a symbol")

    def create(self, name: str, profile: str, keep_images: bool = False, fair: bool = False) -> CollectionInfo:
        """Make a new, empty collection bound to ``profile``: its gallery first, then the row that names it."""
        self._check_name(name)
        prof, model = collection_model(profile, fair)  # UnknownModelError for a bad profile
        if self._row(name) is not None:
            raise CollectionExistsError(f"collection {name!r} already exists")
        schema = "c_" + uuid.uuid4().hex[:16]
        PostgresGallery(self._gallery_url(schema), model=model, dim=prof.dim, key=self.key).close()
        info = CollectionInfo(name, prof.name, model, bool(keep_images),
                              datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._db.transaction() as conn:
            added = conn.execute(_q("INSERT INTO {s}.collections VALUES (%s, %s, %s, %s, %s, %s) "
                                    "ON CONFLICT (name) DO NOTHING RETURNING name"),
                                 (name, info.profile, info.model, info.keep_images, info.created_at, schema)).fetchone()
            if added is None:  # another replica made it meanwhile: drop the gallery made for nothing
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
                raise CollectionExistsError(f"collection {name!r} already exists")
        log.info("created collection %s (profile %s, gallery schema %s)", name, info.profile, schema)
        return info

    def _row(self, name: str):
        with self._db.transaction() as conn:
            return conn.execute(_q("SELECT name, profile, model, keep_images, created_at, gallery "
                                   "FROM {s}.collections WHERE name = %s"), (name,)).fetchone()

    def _found(self, name: str):
        self._check_name(name)
        row = self._row(name)
        if row is None:
            raise CollectionNotFoundError(f"collection {name!r} not found")
        return row

    def info(self, name: str) -> CollectionInfo:
        """A collection's settings; :class:`CollectionNotFoundError` when there is none."""
        return CollectionInfo(*self._found(name)[:5])

    def names(self) -> list[str]:
        """Names of every collection, sorted."""
        with self._db.transaction() as conn:
            return [r[0] for r in conn.execute(_q("SELECT name FROM {s}.collections ORDER BY name COLLATE \"C\""))]

    def gallery(self, name: str) -> PostgresGallery:
        """The gallery of collection ``name``: the open one when it is still the collection's, else opened now."""
        row = self._found(name)
        schema, model = row[5], row[2]
        with self._lock:
            held = self._open.get(name)
            if held is not None and held[0] != schema:  # deleted and made again through another replica
                held[1].close()
                held = None
            if held is None:
                held = (schema, PostgresGallery(self._gallery_url(schema), model=model, key=self.key))
                self._open[name] = held
            return held[1]

    def delete(self, name: str) -> None:
        """Delete a collection: its row and its gallery schema (every template and kept image), in one transaction."""
        self._found(name)
        with self._db.transaction() as conn:
            row = conn.execute(_q("DELETE FROM {s}.collections WHERE name = %s RETURNING gallery"), (name,)).fetchone()
            if row is None:
                raise CollectionNotFoundError(f"collection {name!r} not found")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(row[0])))
        with self._lock:
            held = self._open.pop(name, None)
        if held is not None:
            held[1].close()
        log.info("deleted collection %s (gallery schema %s)", name, row[0])

    @contextmanager
    def write_lock(self, name: str) -> Iterator[None]:
        """Hold collection ``name``'s write lock in every replica: a PostgreSQL session advisory lock."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = _connect(self.url)
            with self._lock:
                self._lock_conns.append(conn)
        lock = _lock_id(name)
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
        except psycopg.Error as exc:
            conn.close()
            raise DatabaseError(f"cannot take the write lock of collection {name!r}: {exc}") from exc
        try:
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))
            except psycopg.Error:
                conn.close()  # closing the session releases its locks

    def close(self) -> None:
        """Close every open gallery and the connection."""
        with self._lock:
            for _, gallery in self._open.values():
                gallery.close()
            self._open.clear()
            for conn in self._lock_conns:
                conn.close()
            self._lock_conns.clear()
        self._db.close()


class PostgresFailureStore:
    """Failed-verification times in ``faceprint_service.verify_failures``, one count for every replica.

    The methods of :class:`faceprint.service.lockout.FailureStore`; each call is one transaction.
    """

    def __init__(self, url: str) -> None:
        migrate(url)
        self._db = _Connection(url)

    def times(self, scope: str, since: float) -> list[float]:
        """Failure times of ``scope`` after ``since``, oldest first (older ones are deleted)."""
        with self._db.transaction() as conn:
            conn.execute(_q("DELETE FROM {s}.verify_failures WHERE scope = %s AND at <= %s"), (scope, since))
            rows = conn.execute(_q("SELECT at FROM {s}.verify_failures WHERE scope = %s ORDER BY at"),
                                (scope,)).fetchall()
        return [float(r[0]) for r in rows]

    def add(self, scopes: list[str], at: float) -> None:
        """Record one failure at time ``at`` in each scope (one transaction)."""
        with self._db.transaction() as conn:
            conn.cursor().executemany(_q("INSERT INTO {s}.verify_failures (scope, at) VALUES (%s, %s)"),
                                      [(scope, float(at)) for scope in scopes])

    def clear(self, scope: str) -> None:
        """Forget every failure of ``scope``."""
        with self._db.transaction() as conn:
            conn.execute(_q("DELETE FROM {s}.verify_failures WHERE scope = %s"), (scope,))

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
