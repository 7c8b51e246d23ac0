"""Erasure: deleting a person or purging old faces removes templates, images and index entries,
and their bytes (plaintext and ciphertext) are gone from the database file and its WAL."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import GalleryError, PersonNotFoundError
from faceprint.gallery import index as search_index
from faceprint.gallery import EnrolmentItem, Gallery
from faceprint.privacy.crypto import GalleryKey
from faceprint.types import Template

MODEL, DIM = "test-model", 16


def unit(rng, n):
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def items(vecs, tag: str):
    return [EnrolmentItem(Template(v, MODEL), source=f"{tag}{i}.jpg", image=f"IMAGE<{tag}-{i}>".encode() * 20)
            for i, v in enumerate(vecs)]


def file_bytes(path) -> bytes:
    data = Path(path).read_bytes()
    wal = Path(str(path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def stored_blobs(path) -> list[bytes]:
    conn = sqlite3.connect(path)
    try:
        blobs = [r[0] for r in conn.execute("SELECT template FROM faces")]
        return blobs + [r[0] for r in conn.execute("SELECT image FROM face_images")]
    finally:
        conn.close()


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.mark.parametrize("encrypted", [False, True])
def test_delete_person_erases_templates_images_and_ciphertexts(tmp_path, rng, encrypted):
    path = tmp_path / "g.sqlite"
    key = GalleryKey.generate() if encrypted else None
    keep, gone = unit(rng, 2), unit(rng, 40)
    with Gallery(path, model=MODEL, dim=DIM, key=key) as g:
        g.enroll("alice", items(keep, "alice"))
        g.enroll("bob", items(gone, "bob"))
    assert len(stored_blobs(path)) == 84
    raw = file_bytes(path)
    if encrypted:
        assert gone[0].tobytes() not in raw and b"IMAGE<bob-0>" not in raw
    else:
        assert gone[0].tobytes() in raw and b"IMAGE<bob-0>" in raw
    with Gallery(path, key=key) as g:
        bob_faces = [f.id for f in g.faces("bob")]
        conn = g._db()
        bob_blobs = [r[0] for r in conn.execute(
            "SELECT template FROM faces WHERE person_id = (SELECT id FROM persons WHERE name = 'bob')")]
        bob_blobs += [r[0] for r in conn.execute(
            f"SELECT image FROM face_images WHERE face_id IN ({','.join(map(str, bob_faces))})")]
        assert len(bob_blobs) == 80
        assert g.delete_person("bob") == 40
        assert all(g.face_image(f) is None for f in bob_faces)
        assert g._db().execute("SELECT COUNT(*) FROM face_images").fetchone()[0] == 2
        raw = file_bytes(path)  # while still open
        for blob in bob_blobs:  # ciphertext (or plaintext) exactly as it was stored
            assert blob not in raw
        for v in gone:
            assert v.tobytes() not in raw
        assert b"IMAGE<bob-" not in raw and b"bob0.jpg" not in raw
    raw = file_bytes(path)
    assert all(blob not in raw for blob in bob_blobs)
    assert b"IMAGE<bob-" not in raw
    with Gallery(path, key=key) as g:
        assert [p.name for p in g.persons()] == ["alice"]
        assert g.face_image(g.faces("alice")[0].id) == b"IMAGE<alice-0>" * 20
        with pytest.raises(PersonNotFoundError):
            g.get_person("bob")


def test_delete_drops_entries_from_the_approximate_index(tmp_path, rng):
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 60)
    with Gallery(path, model=MODEL, dim=DIM, approximate_from=20) as g:
        g.enroll("alice", items(vecs[:30], "a"))
        g.enroll("bob", items(vecs[30:], "b"))
        assert g.search(Template(vecs[40], MODEL), k=1)[0].person == "bob"  # builds the index
        bob_ids = {f.id for f in g.faces("bob")}
        g.delete_person("bob")
        assert all(c.person != "bob" for c in g.search(Template(vecs[40], MODEL), k=5))
    idx = search_index.load(str(path) + ".index")  # saved again on close, without bob
    assert isinstance(idx, search_index.ApproximateIndex)
    _, ids = idx.search(vecs[30:], 60)
    assert not bob_ids & set(ids.ravel().tolist())
    with Gallery(path, approximate_from=20) as g:
        assert g.face_count() == 30


def test_purge_older_than(tmp_path, rng):
    path = tmp_path / "g.sqlite"
    old, new = unit(rng, 3), unit(rng, 2)
    with Gallery(path, model=MODEL, dim=DIM) as g:
        g.enroll("old-only", items(old[:2], "o"))
        g.enroll("mixed", items(old[2:], "m"))
        conn = g._db()
        stale = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat(timespec="microseconds")
        conn.execute("UPDATE faces SET created_at = ?", (stale,))
        g.enroll("mixed", items(new[:1], "n"))
        g.enroll("fresh", items(new[1:], "f"))
        assert g.purge_older_than(365) == 0
        assert g.purge_older_than(30) == 3
        assert sorted(p.name for p in g.persons()) == ["fresh", "mixed"]  # emptied people go too
        assert g.get_person("mixed").face_count == 1
        assert g.purge_older_than(30) == 0
        with pytest.raises(GalleryError):
            g.purge_older_than(-1)
        raw = file_bytes(path)
        for v in old:
            assert v.tobytes() not in raw
        assert b"IMAGE<o-0>" not in raw and new[0].tobytes() in raw
        future = datetime.now(timezone.utc) + timedelta(days=1)
        assert g.purge_older_than(0, now=future) == 2
        assert len(g) == 0
