"""Tests for faceprint.gallery: persistence, search, model binding, atomicity and secure deletion."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import GalleryError, InvalidNameError, ModelMismatchError, PersonNotFoundError
from faceprint.gallery import EnrolmentItem, Gallery
from faceprint.types import Template

MODEL = "test-model"
DIM = 16
REPO_ROOT = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    v = rng.standard_normal((n or 1, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v if n else v[0]


def tpl(vec: np.ndarray, model: str = MODEL) -> Template:
    return Template(np.asarray(vec, dtype=np.float32), model)


def items(vecs: np.ndarray, source: str = "img") -> list[EnrolmentItem]:
    return [EnrolmentItem(tpl(v), source=f"{source}{i}.jpg", box=[1.0, 2.0, 30.0, 40.0], quality=0.9)
            for i, v in enumerate(vecs)]


def snapshot(path) -> tuple:
    """Logical content seen by a fresh Gallery: persons with metadata and face counts, and vectors."""
    with Gallery(path) as g:
        fids, pids, vecs = g.matrix()
        persons = [(p.name, p.metadata, p.face_count) for p in g.persons()]
        return persons, g.face_count(), fids.tolist(), vecs.tobytes()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "gallery.sqlite"


@pytest.fixture
def gallery(path):
    g = Gallery(path, model=MODEL, dim=DIM)
    yield g
    g.close()


# -- create / open / persistence ----------------------------------------------------------


def test_create_and_reopen_round_trip(path, rng):
    vecs = unit(rng, 3)
    with Gallery(path, model=MODEL, dim=DIM) as g:
        assert (g.model, g.dim, len(g), g.face_count()) == (MODEL, DIM, 0, 0)
        rec = g.enroll("alice", items(vecs), metadata={"team": "red"})
        assert (rec.name, rec.face_count, rec.metadata) == ("alice", 3, {"team": "red"})
        g.enroll("bob", items(unit(rng, 2)))
        g.enroll("alice", items(unit(rng, 1)), metadata={"age": 30})  # existing person: merge
    with Gallery(path) as g:  # no model needed to open
        assert (g.model, g.dim) == (MODEL, DIM)
        assert len(g) == 2 and g.face_count() == 6
        alice = g.get_person("alice")
        assert alice.face_count == 4 and alice.metadata == {"team": "red", "age": 30}
        assert alice.created_at <= alice.updated_at and alice.created_at.endswith("+00:00")
        assert [p.name for p in g.persons()] == ["alice", "bob"]
        faces = g.faces("alice")
        assert len(faces) == 4 and all(f.person_id == alice.id for f in faces)
        assert faces[0].source == "img0.jpg" and faces[0].box == [1.0, 2.0, 30.0, 40.0]
        assert faces[0].quality == pytest.approx(0.9)
        fids, pids, mat = g.matrix()
        assert mat.dtype == np.float32 and mat.shape == (6, DIM)
        assert fids.dtype == np.int64 and pids.dtype == np.int64
        stored = {int(f): mat[i] for i, f in enumerate(fids)}
        np.testing.assert_array_equal(stored[faces[0].id], vecs[0])
    with Gallery(path, model=MODEL, dim=DIM) as g:  # matching model and dim is fine
        assert len(g) == 2


def test_pragmas_and_schema(gallery):
    conn = sqlite3.connect(gallery.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta["schema_version"] == "2" and meta["model"] == MODEL and meta["dim"] == str(DIM)
        assert "created_at" in meta
    finally:
        conn.close()
    db = gallery._db()
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_get_person_and_delete_missing(gallery):
    with pytest.raises(PersonNotFoundError):
        gallery.get_person("nobody")
    with pytest.raises(PersonNotFoundError):
        gallery.delete_person("nobody")
    with pytest.raises(PersonNotFoundError):
        gallery.faces("nobody")


def test_closed_gallery_raises(path):
    g = Gallery(path, model=MODEL, dim=DIM)
    g.close()
    g.close()  # idempotent
    with pytest.raises(GalleryError):
        len(g)


# -- errors on open -----------------------------------------------------------------------


def test_create_without_model_is_gallery_error(path):
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery(path)
    assert not path.exists()  # nothing was created


def test_missing_parent_directory(tmp_path):
    with pytest.raises(GalleryError):
        Gallery(tmp_path / "nope" / "g.sqlite", model=MODEL, dim=DIM)


def test_text_file_is_gallery_error(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a database, just some text\n" * 50)
    with pytest.raises(GalleryError, match="not a"):
        Gallery(bogus)
    with pytest.raises(GalleryError):
        Gallery(bogus, model=MODEL, dim=DIM)
    assert bogus.read_text().startswith("this is not a database")


def test_sqlite_without_meta_is_gallery_error(tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    with pytest.raises(GalleryError, match="meta"):
        Gallery(other, model=MODEL, dim=DIM)


def test_model_mismatch_on_open(path):
    Gallery(path, model=MODEL, dim=DIM).close()
    with pytest.raises(ModelMismatchError) as err:
        Gallery(path, model="other-model")
    assert MODEL in str(err.value) and "other-model" in str(err.value)
    with pytest.raises(ModelMismatchError):
        Gallery(path, model=MODEL, dim=DIM + 1)


def test_model_and_dim_mismatch_on_enrol_and_search(gallery, rng):
    gallery.enroll("alice", items(unit(rng, 2)))
    with pytest.raises(ModelMismatchError):
        gallery.enroll("bob", [EnrolmentItem(tpl(unit(rng), model="other-model"))])
    with pytest.raises(ModelMismatchError):
        gallery.enroll("bob", [EnrolmentItem(Template(np.ones(DIM + 1, np.float32) / 4.0, MODEL))])
    with pytest.raises(ModelMismatchError):
        gallery.search(tpl(unit(rng), model="other-model"))
    with pytest.raises(ModelMismatchError):
        gallery.search(Template(np.ones(DIM - 1, np.float32) / 4.0, MODEL))
    with pytest.raises(ModelMismatchError):
        gallery.search_many(np.zeros((2, DIM + 1), np.float32))
    assert [p.name for p in gallery.persons()] == ["alice"] and gallery.face_count() == 2


def test_enrol_validation(gallery, rng):
    with pytest.raises(GalleryError, match="nothing to enrol"):
        gallery.enroll("alice", [])
    with pytest.raises(InvalidNameError):
        gallery.enroll("", items(unit(rng, 1)))
    with pytest.raises(InvalidNameError):
        gallery.enroll("   ", items(unit(rng, 1)))
    assert len(gallery) == 0 and gallery.face_count() == 0


# -- search -------------------------------------------------------------------------------


def test_search_finds_right_person(gallery, rng):
    people = {f"p{i}": unit(rng, 3) for i in range(20)}
    for name, vecs in people.items():
        gallery.enroll(name, items(vecs))
    for name, vecs in people.items():
        probe = vecs[1] + 0.05 * rng.standard_normal(DIM).astype(np.float32)
        probe /= np.linalg.norm(probe)
        res = gallery.search(tpl(probe), k=5)
        assert len(res) == 5
        assert res[0].person == name
        assert res[0].person_id == gallery.get_person(name).id
        assert res[0].score > 0.9
        assert all(a.score >= b.score for a, b in zip(res, res[1:]))
        assert len({c.person for c in res}) == 5  # one entry per person, not per face


def test_search_uses_max_over_templates(gallery, rng):
    probe = unit(rng)
    orth = unit(rng)
    orth -= orth.dot(probe) * probe
    orth /= np.linalg.norm(orth)
    near = 0.95 * probe + np.sqrt(1 - 0.95**2) * orth  # cos 0.95 to the probe
    mid = 0.80 * probe + np.sqrt(1 - 0.80**2) * orth  # cos 0.80
    # alice: one very close template and two far ones (mean would be low); bob: three medium.
    gallery.enroll("alice", items(np.stack([near, -probe, -probe])))
    gallery.enroll("bob", items(np.stack([mid, mid, mid])))
    res = gallery.search(tpl(probe), k=5)
    assert [c.person for c in res] == ["alice", "bob"]
    assert res[0].score == pytest.approx(0.95, abs=1e-5)
    assert res[1].score == pytest.approx(0.80, abs=1e-5)


def test_search_k_limit_and_empty(gallery, rng):
    assert gallery.search(tpl(unit(rng))) == []
    assert gallery.search_many(unit(rng, 3)) == [[], [], []]
    for i in range(8):
        gallery.enroll(f"p{i}", items(unit(rng, 2)))
    assert len(gallery.search(tpl(unit(rng)), k=3)) == 3
    assert len(gallery.search(tpl(unit(rng)), k=1)) == 1
    assert len(gallery.search(tpl(unit(rng)), k=100)) == 8
    with pytest.raises(ValueError):
        gallery.search(tpl(unit(rng)), k=0)


def test_search_many_matches_search(gallery, rng):
    for i in range(10):
        gallery.enroll(f"p{i}", items(unit(rng, 1 + i % 3)))
    probes = unit(rng, 4)
    batch = gallery.search_many(probes, k=4)
    assert len(batch) == 4
    for probe, got in zip(probes, batch):
        single = gallery.search(tpl(probe), k=4)
        assert [c.person for c in got] == [c.person for c in single]
        assert [c.score for c in got] == pytest.approx([c.score for c in single], abs=1e-6)
    # brute-force reference for the first probe
    fids, pids, vecs = gallery.matrix()
    scores = vecs @ probes[0]
    best = {}
    for pid, s in zip(pids.tolist(), scores.tolist()):
        best[pid] = max(best.get(pid, -2.0), s)
    ref = sorted(best, key=lambda p: -best[p])[:4]
    assert [c.person_id for c in batch[0]] == ref


def test_matrix_cache_invalidated_on_write(gallery, rng):
    gallery.enroll("alice", items(unit(rng, 2)))
    first = gallery.matrix()
    assert gallery.matrix()[2] is first[2]  # cached
    gallery.enroll("bob", items(unit(rng, 1)))
    assert gallery.matrix()[2].shape == (3, DIM)
    gallery.delete_face(int(first[0][0]))
    assert gallery.matrix()[2].shape == (2, DIM)


def test_matrix_sees_writes_from_another_connection(path, rng):
    with Gallery(path, model=MODEL, dim=DIM) as a, Gallery(path) as b:
        a.enroll("alice", items(unit(rng, 1)))
        assert b.matrix()[2].shape == (1, DIM)
        b.enroll("bob", items(unit(rng, 2)))
        assert a.matrix()[2].shape == (3, DIM)


# -- atomicity / crash injection -----------------------------------------------------------


def test_nan_midway_rolls_back(path, rng):
    with Gallery(path, model=MODEL, dim=DIM) as g:
        g.enroll("alice", items(unit(rng, 2)), metadata={"k": 1})
    before = snapshot(path)
    vecs = unit(rng, 5)
    vecs[2, 4] = np.nan
    with Gallery(path) as g:
        with pytest.raises(GalleryError, match="non-finite"):
            g.enroll("carol", items(vecs), metadata={"x": 1})
        with pytest.raises(GalleryError, match="non-finite"):
            g.enroll("alice", items(vecs), metadata={"k": 2})  # existing person: metadata untouched
        assert [(p.name, p.face_count) for p in g.persons()] == [("alice", 2)]
        assert g.get_person("alice").metadata == {"k": 1}
        assert g.face_count() == 2
    assert snapshot(path) == before


def test_insert_helper_failure_rolls_back(path, rng, monkeypatch):
    with Gallery(path, model=MODEL, dim=DIM) as g:
        g.enroll("alice", items(unit(rng, 2)))
    before = snapshot(path)
    calls = {"n": 0}
    original = Gallery._insert_face

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected failure")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Gallery, "_insert_face", flaky)
    with Gallery(path) as g:
        with pytest.raises(RuntimeError, match="injected"):
            g.enroll("bob", items(unit(rng, 5)))
        assert calls["n"] == 3
        assert len(g) == 1 and g.face_count() == 2
        with pytest.raises(PersonNotFoundError):
            g.get_person("bob")
        g.enroll("bob", items(unit(rng, 2)))  # the gallery is still usable afterwards
        assert g.get_person("bob").face_count == 2
    monkeypatch.undo()
    after = snapshot(path)
    assert after[0] == before[0] + [("bob", {}, 2)]


def test_enroll_many_is_atomic(path, rng):
    with Gallery(path, model=MODEL, dim=DIM) as g:
        g.enroll("alice", items(unit(rng, 1)))
        before = snapshot(path)
        bad = unit(rng, 3)
        bad[1, 0] = np.inf
        with pytest.raises(GalleryError):
            g.enroll_many([("bob", items(unit(rng, 3))), ("carol", items(unit(rng, 2))), ("dave", items(bad))])
        with pytest.raises(ModelMismatchError):
            g.enroll_many([("bob", items(unit(rng, 3))), ("eve", [EnrolmentItem(tpl(unit(rng), "m2"))])])
        with pytest.raises(GalleryError, match="nothing to enrol"):
            g.enroll_many([("bob", items(unit(rng, 3))), ("carol", [])])
        assert snapshot(path) == before
        recs = g.enroll_many([("bob", items(unit(rng, 3))), ("carol", items(unit(rng, 2)))])
        assert [(r.name, r.face_count) for r in recs] == [("bob", 3), ("carol", 2)]
    assert [(p[0], p[2]) for p in snapshot(path)[0]] == [("alice", 1), ("bob", 3), ("carol", 2)]


CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from faceprint.gallery import EnrolmentItem, Gallery
    from faceprint.types import Template

    crash_at = int(os.environ["FACEPRINT_CRASH_AT"])
    calls = [0]
    original = Gallery._insert_face

    def crashing(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == crash_at:
            sys.stdout.write("crashing\\n"); sys.stdout.flush()
            os._exit(1)  # no cleanup, no rollback, no close: a hard process death
        return original(self, *args, **kwargs)

    Gallery._insert_face = crashing
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((4000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    g = Gallery(sys.argv[1])
    g._db().execute("PRAGMA cache_size=8")  # tiny page cache: uncommitted pages spill to the WAL
    g.enroll("victim", [EnrolmentItem(Template(v, "test-model"), source=f"f{i}") for i, v in enumerate(vecs)])
    print("finished without crashing")
    """
)


def test_process_crash_midway_leaves_no_partial_enrolment(path, rng, tmp_path):
    with Gallery(path, model=MODEL, dim=DIM) as g:
        g.enroll("alice", items(unit(rng, 3)))
    before = snapshot(path)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, FACEPRINT_CRASH_AT="3000",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(script), str(path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "crashing" in proc.stdout and "finished" not in proc.stdout
    wal = Path(str(path) + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the child left uncommitted frames behind

    with Gallery(path) as g:
        assert g._db().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert g._db().execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(PersonNotFoundError):
            g.get_person("victim")
        assert g.face_count() == 3 and len(g) == 1
        assert all(c.person == "alice" for c in g.search(tpl(unit(rng))))
    assert snapshot(path) == before


# -- deletion -----------------------------------------------------------------------------


def _file_bytes(path) -> bytes:
    data = Path(path).read_bytes()
    wal = Path(str(path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.mark.parametrize("n_faces", [3, 300])  # 300 faces span many pages, which go to the freelist
def test_delete_person_scrubs_templates(path, rng, n_faces):
    keep = unit(rng, 2)
    gone = unit(rng, n_faces)
    with Gallery(path, model=MODEL, dim=DIM) as g:
        g.enroll("alice", items(keep))
        g.enroll("bob", items(gone))
    # closing checkpoints the WAL into the main file: the bytes are really there now
    assert gone[0].tobytes() in Path(path).read_bytes()
    with Gallery(path) as g:
        g.enroll("carol", items(unit(rng, 1)))  # some WAL traffic too
        assert g.delete_person("bob") == n_faces
        with pytest.raises(PersonNotFoundError):
            g.get_person("bob")
        assert g.face_count() == 3 and len(g) == 2
        for v in gone[:10]:
            assert all(c.person != "bob" for c in g.search(tpl(v), k=10))
        assert g.search(tpl(gone[0]), k=10)[0].score < 0.99
        blob = _file_bytes(path)  # while open: main file + WAL
        for v in gone:
            assert tpl(v).vector.tobytes() not in blob
        assert keep[0].tobytes() in blob  # sanity: the search does find what is there
    blob = _file_bytes(path)  # and after close
    for v in gone:
        assert v.tobytes() not in blob
    with Gallery(path) as g:
        assert [p.name for p in g.persons()] == ["alice", "carol"]
        assert g._db().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_delete_face_keeps_person(gallery, rng):
    vecs = unit(rng, 2)
    gallery.enroll("alice", items(vecs))
    faces = gallery.faces("alice")
    gallery.delete_face(faces[0].id)
    assert gallery.get_person("alice").face_count == 1
    assert vecs[0].tobytes() not in _file_bytes(gallery.path)
    gallery.delete_face(faces[1].id)
    alice = gallery.get_person("alice")
    assert alice.face_count == 0 and len(gallery) == 1
    assert gallery.search(tpl(vecs[0])) == []
    with pytest.raises(GalleryError):
        gallery.delete_face(faces[1].id)
