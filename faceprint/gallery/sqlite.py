"""The SQLite gallery store: enrolled people and their face templates in one file.

A gallery is bound to one embedding model (its id and dimension are stored in the ``meta``
table); templates of any other model are refused. Every write runs in a single explicit
transaction, so an error or a crash midway leaves the gallery exactly as it was before.
Deleted templates are scrubbed from the database file (``secure_delete``) and from the
write-ahead log (a ``TRUNCATE`` checkpoint after each delete).

Privacy options, chosen when the gallery is created and checked every time it is opened:

* ``key`` (:class:`~faceprint.privacy.crypto.GalleryKey`): every template and stored face image is
  encrypted with AES-256-GCM, bound to its row; the gallery records only the key's check value.
  Opening it needs the key. While open, the decrypted templates are held in RAM (the search
  matrix), and the approximate search index is kept in memory only, never written to disk.
* ``transform`` (:class:`~faceprint.privacy.cancelable.CancelableTransform`): templates are stored, and
  probes searched, in a keyed transformed space, so stored templates cannot be matched against
  another deployment's; the gallery records the transform's id.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator, Sequence

import numpy as np

from ..errors import GalleryError, ModelMismatchError, PersonNotFoundError
from ..privacy.cancelable import CancelableTransform
from ..privacy.crypto import CIPHER_ID, BlobCipher, GalleryKey
from ..types import Candidate, Template
from . import index as search_index
from .names import normalise_name
from .records import (
    EnrolmentItem,
    FaceRecord,
    PersonRecord,
    _now,
    checked_digest,
    checked_probes,
    checked_vector,
    merged_people,
    privacy_updates,
    unique_items,
)

log = logging.getLogger(__name__)

#: Version 2 added ``faces.sha256`` (one face per image per person) and canonical person names
#: (:func:`faceprint.gallery.names.normalise_name`); a version-1 gallery is upgraded when it is opened.
SCHEMA_VERSION = 2

_DIGEST_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS faces_person_sha256 ON faces(person_id, sha256) "
                 "WHERE sha256 IS NOT NULL")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT, updated_at TEXT);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    template BLOB NOT NULL, source TEXT, box TEXT, quality REAL, created_at TEXT, sha256 TEXT);
CREATE INDEX IF NOT EXISTS faces_person_id ON faces(person_id);
""" + _DIGEST_INDEX

_IMAGES_SCHEMA = """CREATE TABLE IF NOT EXISTS face_images (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE, image BLOB NOT NULL)"""

_PERSON_SQL = (
    "SELECT p.id, p.name, p.metadata, p.created_at, p.updated_at, "
    "(SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) FROM persons p"
)


def _person(row) -> PersonRecord:
    return PersonRecord(row[0], row[1], json.loads(row[2]), int(row[5]), row[3], row[4])


class Gallery:
    """A gallery file: open or create it, enrol, delete, and search people by face template.

    One SQLite connection is shared by all threads, guarded by a lock. Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, model: str | None = None, dim: int | None = None,
                 approximate_from: int | None = None, *, key: GalleryKey | None = None,
                 transform: CancelableTransform | None = None):
        """Open the gallery at ``path``, creating it when it does not exist.

        Creating needs ``model`` and ``dim``. Opening an existing gallery with a ``model`` (or
        ``dim``) other than the stored one raises :class:`ModelMismatchError`; a file that is not
        a gallery raises :class:`GalleryError`. From ``approximate_from`` templates on (default
        :data:`faceprint.gallery.index.APPROXIMATE_FROM`) search uses a sketch index kept in
        ``<path>.index``; below it, exact search.

        ``key`` encrypts a new gallery (or an existing empty one); an encrypted gallery opened
        without it raises :class:`~faceprint.privacy.crypto.GalleryKeyRequiredError`, with another key
        :class:`~faceprint.privacy.crypto.WrongGalleryKeyError`, and a key given for an unencrypted gallery
        that holds templates :class:`~faceprint.privacy.crypto.GalleryNotEncryptedError` (encrypt it with
        :meth:`rekey`). ``transform`` likewise must be the one the gallery was created with
        (:class:`~faceprint.privacy.cancelable.TransformMismatchError` otherwise).
        """
        self.path = os.fspath(path)
        self._cipher: BlobCipher | None = None
        self._transform = transform
        self._gallery_id = ""
        self.index_path = self.path + ".index"
        self._approximate_from = int(search_index.APPROXIMATE_FROM if approximate_from is None
                                     else approximate_from)
        self._index = None  # ExactIndex or ApproximateIndex, valid for the cache key _index_key
        self._index_key = None
        self._index_lookup = None  # (face ids sorted, their person ids) for the cached matrix
        self._index_dirty = False  # approximate index changed since it was last saved
        self._lock = threading.RLock()
        self._version = 0  # bumped on every write by this object; invalidates the matrix cache
        self._cache: tuple | None = None
        self._conn: sqlite3.Connection | None = None
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise GalleryError(f"cannot open gallery {self.path}: directory {parent} does not exist")
        if os.path.isdir(self.path):
            raise GalleryError(f"cannot open gallery {self.path}: it is a folder; give a gallery file, e.g. "
                               f"{os.path.join(self.path, 'people.db')}")
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if not exists and (model is None or dim is None):
            raise GalleryError(f"gallery {self.path} does not exist; enrol with a model to create it")
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise GalleryError(f"cannot open gallery {self.path}: {exc}") from exc
        self._conn = conn
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._model, self._dim = self._load_or_create(model, dim)
            self._check_privacy(key, transform)
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise GalleryError(f"{self.path} is not a faceprint gallery (not a SQLite database: {exc}); give the "
                               f"gallery file enroll created, or a new file name to start one") from exc
        except BaseException:
            self.close()
            raise
        log.debug("opened gallery %s (model %s, dim %d)", self.path, self._model, self._dim)

    def _load_or_create(self, model: str | None, dim: int | None) -> tuple[str, int]:
        conn = self._conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if model is None or dim is None:
                raise GalleryError(f"gallery {self.path} does not exist; enrol with a model to create it")
            if not isinstance(dim, int) or dim <= 0:
                raise GalleryError(f"invalid template dimension {dim!r}")
            with self._transaction():
                for statement in _SCHEMA.split(";"):  # not executescript: that would COMMIT early
                    if statement.strip():
                        conn.execute(statement)
                meta = {"schema_version": str(SCHEMA_VERSION), "model": model, "dim": str(dim), "created_at": _now(),
                        "gallery_id": uuid.uuid4().hex}
                conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
            log.info("created gallery %s for model %s (dim %d)", self.path, model, dim)
            return model, dim
        if "meta" not in tables:
            raise GalleryError(f"{self.path} is not a faceprint gallery (no meta table)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        known = {str(v) for v in range(1, SCHEMA_VERSION + 1)}
        if meta.get("schema_version") not in known or "model" not in meta or "dim" not in meta:
            raise GalleryError(f"{self.path}: unsupported or corrupt gallery meta {meta!r} "
                               f"(this faceprint knows schema versions 1 to {SCHEMA_VERSION})")
        stored_model, stored_dim = meta["model"], int(meta["dim"])
        if model is not None and model != stored_model:
            raise ModelMismatchError(
                f"gallery {self.path} was made with model {stored_model!r}, not {model!r}", found=stored_model)
        if dim is not None and dim != stored_dim:
            raise ModelMismatchError(
                f"gallery {self.path} holds {stored_dim}-d templates, not {dim}-d")
        return stored_model, stored_dim

    def _check_privacy(self, key: GalleryKey | None, transform: CancelableTransform | None) -> None:
        """Check ``key`` and ``transform`` against what the gallery records; record them on an empty one."""
        conn = self._conn
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        empty = conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 0
        updates = privacy_updates(self.path, meta, empty, key, transform, encrypt_hint=(
            f"is not encrypted; encrypt it with 'faceprint keys rotate --gallery {self.path} --new-key-file KEY'"))
        if updates or "gallery_id" not in meta:
            with self._transaction():
                conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", updates.items())
                # an id once set never changes (it is in every ciphertext's associated data)
                conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('gallery_id', ?)", (uuid.uuid4().hex,))
        self._gallery_id = conn.execute("SELECT value FROM meta WHERE key = 'gallery_id'").fetchone()[0]
        if key is not None:
            self._cipher = BlobCipher(key)

    def _upgrade(self) -> None:
        """Bring a gallery of an older schema version to :data:`SCHEMA_VERSION`, in one transaction.

        Version 1 -> 2: adds ``faces.sha256`` and its index, and brings every stored name to the
        canonical form (:func:`faceprint.gallery.names.repair_name`). People whose names become equal are
        merged into the oldest of them (their faces moved, and re-encrypted under the new person
        id in an encrypted gallery; metadata merged, later people's keys winning), with a warning.
        """
        conn = self._conn
        if conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION):
            return
        try:
            with self._transaction():
                if conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1":
                    if "sha256" not in {r[1] for r in conn.execute("PRAGMA table_info(faces)")}:
                        conn.execute("ALTER TABLE faces ADD COLUMN sha256 TEXT")
                    conn.execute(_DIGEST_INDEX)
                    self._canonical_names(conn)
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                    log.info("gallery %s: upgraded to schema version %d", self.path, SCHEMA_VERSION)
        except sqlite3.OperationalError as exc:
            raise GalleryError(f"gallery {self.path} is of schema version 1 and could not be upgraded ({exc}); "
                               f"open it once with write access") from exc

    def _canonical_names(self, conn: sqlite3.Connection) -> None:
        """Rename every person to the canonical form of their name; merge people whose names collide."""
        rows = conn.execute("SELECT id, name, metadata, created_at, updated_at FROM persons ORDER BY id").fetchall()
        for name, group in merged_people(rows).items():
            keep, others = group[0], group[1:]
            if others:
                metadata: dict = {}
                for row in group:
                    metadata.update(json.loads(row[2]))
                for row in others:
                    self._move_faces(conn, row[0], keep[0])
                    conn.execute("DELETE FROM persons WHERE id = ?", (row[0],))
                created = min((r[3] for r in group if r[3]), default=keep[3])
                updated = max((r[4] for r in group if r[4]), default=keep[4])
                conn.execute("UPDATE persons SET metadata = ?, created_at = ?, updated_at = ? WHERE id = ?",
                             (json.dumps(metadata), created, updated, keep[0]))
                faces = conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (keep[0],)).fetchone()[0]
                log.warning("gallery %s: the stored names %s are the same name after Unicode normalisation; "
                            "merged them into one person %r with %d face(s)", self.path,
                            ", ".join(repr(r[1]) for r in group), name, faces)
            if keep[1] != name:
                conn.execute("UPDATE persons SET name = ? WHERE id = ?", (name, keep[0]))
                log.info("gallery %s: person %r renamed %r (canonical form)", self.path, keep[1], name)

    def _move_faces(self, conn: sqlite3.Connection, from_person: int, to_person: int) -> None:
        """Give every face of person ``from_person`` to ``to_person`` (re-encrypting their templates)."""
        if self._cipher is None:
            conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (to_person, from_person))
            return
        for fid, blob in conn.execute("SELECT id, template FROM faces WHERE person_id = ?", (from_person,)).fetchall():
            plain = self._cipher.decrypt(blob, self._face_aad(fid, from_person))
            conn.execute("UPDATE faces SET person_id = ?, template = ? WHERE id = ?",
                         (to_person, self._cipher.encrypt(plain, self._face_aad(fid, to_person)), fid))

    @property
    def encrypted(self) -> bool:
        """True when templates and images are stored encrypted."""
        return self._cipher is not None

    @property
    def transform_id(self) -> str | None:
        """The id of the cancelable transform templates are stored under, or ``None``."""
        return self._transform.id if self._transform is not None else None

    @property
    def model(self) -> str:
        """The id of the embedding model this gallery is bound to."""
        return self._model

    @property
    def dim(self) -> int:
        """The template dimension."""
        return self._dim

    def __repr__(self) -> str:
        return f"Gallery({self.path!r}, model={getattr(self, '_model', None)!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError(f"gallery {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (which is re-raised)."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            self._version += 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _check_template(self, template: Template) -> np.ndarray:
        return checked_vector(template, self._model, self._dim)

    def _ensure_person(self, conn: sqlite3.Connection, name: str, metadata: dict | None, now: str) -> int:
        """The id of person ``name`` (already canonical), created when new; ``metadata`` merged in."""
        row = conn.execute("SELECT id, metadata FROM persons WHERE name = ?", (name,)).fetchone()
        try:
            if row is None:
                meta = json.dumps(dict(metadata or {}))
                cur = conn.execute(
                    "INSERT INTO persons(name, metadata, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (name, meta, now, now))
                return int(cur.lastrowid)
            merged = {**json.loads(row[1]), **(metadata or {})}
            conn.execute("UPDATE persons SET metadata = ?, updated_at = ? WHERE id = ?",
                         (json.dumps(merged), now, row[0]))
        except (TypeError, ValueError) as exc:
            raise GalleryError(f"metadata for {name!r} is not a JSON object: {exc}") from exc
        return int(row[0])

    def _face_aad(self, face_id: int, person_id: int) -> bytes:
        return f"faceprint/{self._gallery_id}/face/{face_id}/person/{person_id}".encode()

    def _image_aad(self, face_id: int) -> bytes:
        return f"faceprint/{self._gallery_id}/image/{face_id}".encode()

    def _stored_vector(self, template: Template) -> np.ndarray:
        """The vector as it is stored: checked, then transformed when the gallery has a transform."""
        vec = self._check_template(template)
        return vec if self._transform is None else self._transform.apply(vec).astype("<f4")

    def _insert_face(self, conn: sqlite3.Connection, person_id: int, item: EnrolmentItem,
                     now: str) -> tuple[int, np.ndarray]:
        """Insert one face (and its image, if any); returns its id and its stored vector."""
        vec = self._stored_vector(item.template)
        box = None if item.box is None else json.dumps([float(v) for v in item.box])
        quality = None if item.quality is None else float(item.quality)
        if quality is not None and not math.isfinite(quality):
            raise GalleryError("face quality must be finite")
        if item.image is not None and not isinstance(item.image, (bytes, bytearray)):
            raise GalleryError("a face image must be given as encoded bytes")
        digest = checked_digest(item)
        if self._cipher is None:
            cur = conn.execute(
                "INSERT INTO faces(person_id, template, source, box, quality, created_at, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (person_id, vec.tobytes(), item.source, box, quality, now, digest))
            fid = int(cur.lastrowid)
        else:  # the id goes into the associated data, so pick it first (we hold the write lock)
            fid = int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM faces").fetchone()[0])
            blob = self._cipher.encrypt(vec.tobytes(), self._face_aad(fid, person_id))
            conn.execute(
                "INSERT INTO faces(id, person_id, template, source, box, quality, created_at, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (fid, person_id, blob, item.source, box, quality, now, digest))
        if item.image is not None:
            image = bytes(item.image)
            if self._cipher is not None:
                image = self._cipher.encrypt(image, self._image_aad(fid))
            conn.execute(_IMAGES_SCHEMA)
            conn.execute("INSERT INTO face_images(face_id, image) VALUES (?, ?)", (fid, image))
        return fid, vec

    def _enroll_one(self, conn, person: str, items: Sequence[EnrolmentItem], metadata: dict | None,
                    added: list | None = None) -> int:
        """Write ``items`` for ``person``, skipping images already stored for them; returns the person id."""
        person = normalise_name(person)
        if not items:
            raise GalleryError(f"nothing to enrol for {person!r}")
        now = _now()
        pid = self._ensure_person(conn, person, metadata, now)
        stored = {r[0] for r in conn.execute("SELECT sha256 FROM faces WHERE person_id = ? AND sha256 IS NOT NULL",
                                             (pid,))}
        for item in unique_items(items, stored):
            fid, vec = self._insert_face(conn, pid, item, now)
            if added is not None:
                added.append((fid, np.asarray(vec, dtype=np.float32)))
        return pid

    def _checkpoint(self) -> None:
        busy, _, _ = self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("gallery %s: WAL checkpoint blocked by a reader; deleted data may linger in the WAL",
                        self.path)

    # -- writes ---------------------------------------------------------------------------

    def enroll(self, person: str, items: Sequence[EnrolmentItem], metadata: dict | None = None) -> PersonRecord:
        """Add ``items`` to ``person`` (created if new; ``metadata`` is merged into theirs).

        ``person`` is brought to its canonical form (:func:`faceprint.gallery.names.normalise_name`;
        :class:`~faceprint.errors.InvalidNameError` when it cannot be). Items whose image digest
        is already stored for the person are skipped (see :class:`EnrolmentItem`). All in one
        transaction: on any error nothing is written and the error is re-raised.
        """
        added: list = []
        with self._transaction() as conn:
            before = self._index_stamp_before(conn)
            pid = self._enroll_one(conn, person, items, metadata, added)
            record = _person(conn.execute(_PERSON_SQL + " WHERE p.id = ?", (pid,)).fetchone())
            after = self._db_stamp(conn) if before is not None else None
        self._index_update(before, after, added=added)
        log.info("enrolled %d face(s) for %r", len(added), record.name)
        return record

    def enroll_many(self, batch: Sequence[tuple[str, Sequence[EnrolmentItem]]]) -> list[PersonRecord]:
        """Enrol several ``(person, items)`` pairs in one transaction: all or nothing (as :meth:`enroll`)."""
        added: list = []
        with self._transaction() as conn:
            before = self._index_stamp_before(conn)
            pids = [self._enroll_one(conn, name, items, None, added) for name, items in batch]
            records = [_person(conn.execute(_PERSON_SQL + " WHERE p.id = ?", (pid,)).fetchone())
                       for pid in pids]
            after = self._db_stamp(conn) if before is not None else None
        self._index_update(before, after, added=added)
        log.info("enrolled %d person(s) in one batch", len(batch))
        return records

    def delete_person(self, person: str) -> int:
        """Delete ``person`` and all their faces; return how many faces were removed.

        ``person`` is looked up by its canonical name (:func:`faceprint.gallery.names.normalise_name`).
        Raises :class:`PersonNotFoundError` when absent. The deleted templates are overwritten in
        the file and the WAL is checkpointed and truncated so their bytes do not linger there.
        """
        person = normalise_name(person)
        with self._lock:
            with self._transaction() as conn:
                row = conn.execute("SELECT id FROM persons WHERE name = ?", (person,)).fetchone()
                if row is None:
                    raise PersonNotFoundError(f"no person named {person!r} in the gallery")
                before = self._index_stamp_before(conn)
                gone = [r[0] for r in conn.execute("SELECT id FROM faces WHERE person_id = ?", row)]
                n = len(gone)
                conn.execute("DELETE FROM persons WHERE id = ?", row)  # faces go by ON DELETE CASCADE
                after = self._db_stamp(conn) if before is not None else None
            self._index_update(before, after, removed=gone)
            self._checkpoint()
        log.info("deleted %r and %d face(s)", person, n)
        return int(n)

    def delete_face(self, face_id: int) -> None:
        """Delete one face template by id. A person left with no faces is kept (with 0 faces)."""
        with self._lock:
            with self._transaction() as conn:
                before = self._index_stamp_before(conn)
                cur = conn.execute("DELETE FROM faces WHERE id = ?", (int(face_id),))
                if cur.rowcount == 0:
                    raise GalleryError(f"no face with id {face_id} in the gallery")
                after = self._db_stamp(conn) if before is not None else None
            self._index_update(before, after, removed=[int(face_id)])
            self._checkpoint()
        log.info("deleted face %d", face_id)

    def purge_older_than(self, days: float, *, now: datetime | None = None) -> int:
        """Delete every face enrolled more than ``days`` days ago (and its image); return how many.

        People left with no faces by the purge are deleted too (their name and metadata are
        personal data). Scrubbed like :meth:`delete_person`.
        """
        if not (isinstance(days, (int, float)) and math.isfinite(days) and days >= 0):
            raise GalleryError(f"retention must be a non-negative number of days, got {days!r}")
        cutoff = ((now or datetime.now(timezone.utc)) - timedelta(days=days)).isoformat(timespec="microseconds")
        with self._lock:
            with self._transaction() as conn:
                before = self._index_stamp_before(conn)
                rows = conn.execute("SELECT id, person_id FROM faces WHERE created_at < ?", (cutoff,)).fetchall()
                gone = [r[0] for r in rows]
                conn.executemany("DELETE FROM faces WHERE id = ?", [(f,) for f in gone])
                touched = sorted({r[1] for r in rows})
                conn.executemany(
                    "DELETE FROM persons WHERE id = ? AND NOT EXISTS (SELECT 1 FROM faces WHERE person_id = ?)",
                    [(p, p) for p in touched])
                after = self._db_stamp(conn) if before is not None else None
            if gone:
                self._index_update(before, after, removed=gone)
                self._checkpoint()
        log.info("purged %d face(s) enrolled before %s", len(gone), cutoff)
        return len(gone)

    @staticmethod
    def _has_images_table(conn: sqlite3.Connection) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'face_images'").fetchone() is not None

    def faces_with_image(self, person: str) -> set[int]:
        """Ids of ``person``'s faces that have a stored image (nothing is read or decrypted)."""
        with self._lock:
            pid = self.get_person(person).id
            conn = self._db()
            if not self._has_images_table(conn):
                return set()
            rows = conn.execute("SELECT fi.face_id FROM face_images fi JOIN faces f ON f.id = fi.face_id "
                                "WHERE f.person_id = ?", (pid,)).fetchall()
        return {int(r[0]) for r in rows}

    def face_image(self, face_id: int) -> bytes | None:
        """The image bytes stored with face ``face_id`` (decrypted), or ``None`` when none was stored."""
        with self._lock:
            conn = self._db()
            if not self._has_images_table(conn):
                return None
            row = conn.execute("SELECT image FROM face_images WHERE face_id = ?", (int(face_id),)).fetchone()
        if row is None:
            return None
        return row[0] if self._cipher is None else self._cipher.decrypt(row[0], self._image_aad(int(face_id)))

    def rekey(self, new_key: GalleryKey | None) -> int:
        """Re-encrypt every template and image under ``new_key`` in ONE transaction; return the face count.

        The gallery must have been opened with its current key (or none, to encrypt a plaintext
        gallery); ``new_key=None`` decrypts it. A failure or crash midway leaves the gallery
        exactly as it was, under the old key. Afterwards the WAL is checkpointed and truncated,
        so the old ciphertexts do not linger in the files.
        """
        new = BlobCipher(new_key) if new_key is not None else None
        old = self._cipher
        with self._lock:
            with self._transaction() as conn:
                faces = conn.execute("SELECT id, person_id, template FROM faces").fetchall()
                for fid, pid, blob in faces:
                    aad = self._face_aad(fid, pid)
                    plain = blob if old is None else old.decrypt(blob, aad)
                    conn.execute("UPDATE faces SET template = ? WHERE id = ?",
                                 (plain if new is None else new.encrypt(plain, aad), fid))
                if self._has_images_table(conn):
                    for fid, blob in conn.execute("SELECT face_id, image FROM face_images").fetchall():
                        aad = self._image_aad(fid)
                        plain = blob if old is None else old.decrypt(blob, aad)
                        conn.execute("UPDATE face_images SET image = ? WHERE face_id = ?",
                                     (plain if new is None else new.encrypt(plain, aad), fid))
                if new is None:
                    conn.execute("DELETE FROM meta WHERE key IN ('encryption', 'key_check')")
                else:
                    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                     [("encryption", CIPHER_ID), ("key_check", new.fingerprint)])
            self._cipher = new
            self._cache = None
            self._index = None
            if new is not None and os.path.exists(self.index_path):
                os.unlink(self.index_path)  # it held unencrypted template sketches
            self._checkpoint()
        log.info("re-encrypted %d face(s) of %s (key %s)", len(faces), self.path,
                 new.fingerprint if new is not None else "none")
        return len(faces)

    # -- reads ----------------------------------------------------------------------------

    def persons(self) -> list[PersonRecord]:
        """Every enrolled person, ordered by name."""
        with self._lock:
            return [_person(r) for r in self._db().execute(_PERSON_SQL + " ORDER BY p.name")]

    def get_person(self, name: str) -> PersonRecord:
        """The person called ``name`` (in any form with the same canonical name); :class:`PersonNotFoundError`
        when absent, :class:`~faceprint.errors.InvalidNameError` for a name that cannot be a person's."""
        name = normalise_name(name)
        with self._lock:
            row = self._db().execute(_PERSON_SQL + " WHERE p.name = ?", (name,)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"no person named {name!r} in the gallery")
        return _person(row)

    def faces(self, person: str) -> list[FaceRecord]:
        """The faces stored for ``person``, oldest first."""
        with self._lock:
            pid = self.get_person(person).id
            rows = self._db().execute(
                "SELECT id, person_id, source, box, quality, created_at, sha256 FROM faces "
                "WHERE person_id = ? ORDER BY id", (pid,)).fetchall()
        return [FaceRecord(r[0], r[1], r[2], None if r[3] is None else json.loads(r[3]), r[4], r[5], r[6])
                for r in rows]

    def __len__(self) -> int:
        """Number of persons."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM persons").fetchone()[0])

    def face_count(self) -> int:
        """Number of stored face templates."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def _load(self) -> tuple:
        """The cached (face_ids, person_ids, vectors, names, segment starts), sorted by person."""
        with self._lock:
            conn = self._db()
            key = (self._version, conn.execute("PRAGMA data_version").fetchone()[0])
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            rows = conn.execute("SELECT id, person_id, template FROM faces ORDER BY person_id, id").fetchall()
            names = dict(conn.execute("SELECT id, name FROM persons").fetchall())
        if self._cipher is not None:
            rows = [(f, p, self._cipher.decrypt(blob, self._face_aad(f, p))) for f, p, blob in rows]
        width = 4 * self._dim
        bad = [r[0] for r in rows if len(r[2]) != width]
        if bad:
            raise GalleryError(f"gallery {self.path} is corrupt: face(s) {bad[:5]} are not {self._dim}-d")
        fids = np.array([r[0] for r in rows], dtype=np.int64)
        pids = np.array([r[1] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").astype(np.float32)
        vecs = vecs.reshape(len(rows), self._dim)
        starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]]) if len(rows) else np.zeros(0, np.int64)
        for arr in (fids, pids, vecs):
            arr.setflags(write=False)
        data = (fids, pids, vecs, names, starts)
        with self._lock:
            self._cache = (key, data)
        return data

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face_ids int64[n], person_ids int64[n], vectors float32[n, dim]), read-only, cached."""
        fids, pids, vecs, _, _ = self._load()
        return fids, pids, vecs

    # -- search index ---------------------------------------------------------------------

    @staticmethod
    def _db_stamp(conn) -> list:
        """[face count, max face id, sum of face ids] as the database has them now."""
        n, top, total = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM faces").fetchone()
        return [int(n), int(top), int(total)]

    def _index_stamp_before(self, conn) -> list | None:
        """Inside a write: the stamp before it, when an approximate index is to be kept up to date."""
        if isinstance(self._index, search_index.ApproximateIndex):
            return self._db_stamp(conn) + [self._model]
        return None

    def _index_update(self, before, after, added=(), removed=()) -> None:
        """After a committed write: apply it to the approximate index, or drop a stale index."""
        with self._lock:
            idx = self._index
            if before is None or not isinstance(idx, search_index.ApproximateIndex):
                return
            if list(idx.stamp) != before:  # someone else wrote meanwhile: rebuild lazily
                self._index = None
                return
            if added:
                idx.add([a[0] for a in added], np.stack([a[1] for a in added]))
            if removed:
                idx.remove(removed)
                if os.path.exists(self.index_path):  # it holds the deleted templates
                    os.unlink(self.index_path)
            idx.stamp = after + [self._model]
            self._index_dirty = True

    def _search_index(self, fids, pids, vecs):
        """(index, (face ids sorted, their person ids)) for the cached matrix; builds lazily."""
        with self._lock:
            key = self._cache[0] if self._cache is not None else None
            if self._index is not None and self._index_key == key:
                return self._index, self._index_lookup
            order = np.argsort(fids, kind="stable")
            lookup = (fids[order], pids[order], order)
            if len(fids) < self._approximate_from:
                idx = search_index.ExactIndex.from_matrix(fids, vecs)
            else:
                stamp = [len(fids), int(fids.max()), int(fids.sum()), self._model]
                idx = self._index if isinstance(self._index, search_index.ApproximateIndex) else None
                if idx is None or list(idx.stamp) != stamp:
                    idx = self._open_index(fids, vecs, stamp)
            self._index, self._index_key, self._index_lookup = idx, key, lookup
            return idx, lookup

    def _open_index(self, fids, vecs, stamp) -> "search_index.ApproximateIndex":
        """The saved index when its stamp matches the gallery; else built afresh and saved."""
        try:
            if self._cipher is None and os.path.exists(self.index_path):
                idx = search_index.load(self.index_path)
                if isinstance(idx, search_index.ApproximateIndex) and list(idx.stamp or ()) == stamp:
                    log.debug("loaded search index %s", self.index_path)
                    self._index_dirty = False
                    return idx
                log.info("search index %s is stale; rebuilding it", self.index_path)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("cannot read search index %s (%s); rebuilding it", self.index_path, exc)
        idx = search_index.make_index(fids, vecs, self._dim, approximate_from=0)
        idx.stamp = stamp
        self._save_index(idx)
        return idx

    def _save_index(self, idx) -> None:
        if self._cipher is not None:  # the index holds template sketches: never on disk unencrypted
            self._index_dirty = False
            return
        try:
            idx.save(self.index_path)
            self._index_dirty = False
        except OSError as exc:
            log.warning("cannot save search index %s: %s", self.index_path, exc)

    def _search_approximate(self, idx, lookup, names, vecs, q, k) -> list[list[Candidate]]:
        """Top face candidates from the index, re-scored exactly, then the max per person."""
        sorted_f, sorted_p, rows = lookup
        _, ids = idx.search(q, max(k * 10, idx.rerank))
        pos = np.clip(np.searchsorted(sorted_f, ids), 0, len(sorted_f) - 1)
        ok = (ids >= 0) & (sorted_f[pos] == ids)
        out = []
        for r in range(len(q)):
            hit = pos[r][ok[r]]
            exact = vecs[rows[hit]] @ q[r]  # exact cosines of the candidates
            best: dict[int, float] = {}
            for s, p in zip(exact.tolist(), sorted_p[hit].tolist()):
                if s > best.get(p, -np.inf):
                    best[p] = s
            top = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
            out.append([Candidate(names[p], p, float(s)) for p, s in top])
        return out

    def search(self, template: Template, k: int = 5) -> list[Candidate]:
        """The top-``k`` persons for ``template``, best first; ``[]`` for an empty gallery.

        Exact search: similarity is the dot product (cosine, as templates are unit length), and a
        person's score is the MAX over all of their templates.
        """
        return self.search_many(self._check_template(template)[None, :], k)[0]

    def search_many(self, vectors: np.ndarray, k: int = 5) -> list[list[Candidate]]:
        """:meth:`search` for each row of a float32 ``[m, dim]`` array of this gallery's model.

        Probes are plain templates: with a cancelable transform the gallery transforms them itself
        and reports cosine-scale scores.
        """
        q = checked_probes(vectors, self._dim, k)
        if self._transform is not None:
            q = self._transform.apply(q)
        fids, pids, vecs, names, starts = self._load()
        if len(fids) == 0:
            return [[] for _ in range(len(q))]
        idx, lookup = self._search_index(fids, pids, vecs)
        if isinstance(idx, search_index.ApproximateIndex):
            out = self._search_approximate(idx, lookup, names, vecs, q, k)
            if self._transform is None:
                return out
            return [[Candidate(c.person, c.person_id, float(self._transform.to_cosine(c.score))) for c in row]
                    for row in out]
        scores = np.maximum.reduceat(idx.scores(q), starts, axis=1)  # [m, persons]: max per person
        if self._transform is not None:
            scores = self._transform.to_cosine(scores)  # monotone: the ranking is unchanged
        person_ids = pids[starts]
        out = []
        for row in scores:
            order = np.lexsort((person_ids, -row))[:k]  # score desc, then person id for ties
            out.append([Candidate(names[int(person_ids[j])], int(person_ids[j]), float(row[j])) for j in order])
        return out

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                if self._index_dirty and isinstance(self._index, search_index.ApproximateIndex):
                    self._save_index(self._index)
                self._conn.close()
                self._conn = None
                self._cache = None
                self._index = None

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sources(self) -> set[str]:
        """Every distinct non-NULL ``faces.source`` value (batch enrolment skips these as already done)."""
        with self._lock:
            return {r[0] for r in self._db().execute("SELECT DISTINCT source FROM faces WHERE source IS NOT NULL")}
