"""Tests for the PostgreSQL + pgvector gallery, and the gallery behaviours both backends share.

A real PostgreSQL (with pgvector) is started once per session by ``pgserver`` in a temporary
folder; the tests skip, saying why, only when it cannot be started. Each test gets its own
gallery (a schema named in the URL's ``gallery=`` parameter), so they do not see each other.
"""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
import uuid

import numpy as np
import pytest

from faceprint.errors import GalleryError, InvalidNameError, ModelMismatchError, PersonNotFoundError
from faceprint.gallery import EnrolmentItem, Gallery, GalleryStore, open_gallery
from faceprint.types import Template

MODEL = "test-model"
DIM = 16


def unit(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    v = rng.standard_normal((n or 1, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v if n else v[0]


def tpl(vec: np.ndarray, model: str = MODEL) -> Template:
    return Template(np.asarray(vec, dtype=np.float32), model)


def items(vecs: np.ndarray, source: str = "img") -> list[EnrolmentItem]:
    return [EnrolmentItem(tpl(v), source=f"{source}{i}.jpg", box=[1.0, 2.0, 30.0, 40.0], quality=0.9)
            for i, v in enumerate(vecs)]


def _with_gallery(url: str, name: str) -> str:
    return url + ("&" if "?" in url else "?") + f"gallery={name}"


@pytest.fixture
def pg_location(pg_url) -> str:
    return _with_gallery(pg_url, "t_" + uuid.uuid4().hex[:12])


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    """Where a new, empty gallery of either backend can be created."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.sqlite")
    return request.getfixturevalue("pg_location")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# -- behaviour shared by both backends ----------------------------------------------------------


def test_dispatch_by_url(location):
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        assert isinstance(g, GalleryStore)
        assert isinstance(g, Gallery) == (not location.startswith("postgresql://"))


def test_round_trip(location, rng):
    vecs = unit(rng, 3)
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        rec = g.enroll("ada", items(vecs[:2]), metadata={"team": "x"})
        assert (rec.name, rec.face_count, rec.metadata) == ("ada", 2, {"team": "x"})
        rec2 = g.enroll("ada", items(vecs[2:]), metadata={"role": "y"})
        assert rec2.id == rec.id and rec2.face_count == 3 and rec2.metadata == {"team": "x", "role": "y"}
        g.enroll_many([("bob", items(vecs[:1])), ("cy", items(vecs[1:2]))])
    with open_gallery(location) as g:
        assert (g.model, g.dim, len(g), g.face_count()) == (MODEL, DIM, 3, 5)
        assert [p.name for p in g.persons()] == ["ada", "bob", "cy"]
        faces = g.faces("ada")
        assert [f.source for f in faces] == ["img0.jpg", "img1.jpg", "img0.jpg"]
        assert faces[0].box == [1.0, 2.0, 30.0, 40.0] and faces[0].quality == pytest.approx(0.9)
        fids, pids, m = g.matrix()
        assert m.shape == (5, DIM) and not m.flags.writeable
        ada = g.get_person("ada").id
        np.testing.assert_allclose(m[pids == ada], vecs, atol=1e-7)
        with pytest.raises(PersonNotFoundError):
            g.get_person("nobody")


def test_model_mismatch(location, rng):
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", items(unit(rng, 1)))
        with pytest.raises(ModelMismatchError):
            g.enroll("bob", [EnrolmentItem(tpl(unit(rng), model="other"))])
        with pytest.raises(ModelMismatchError):
            g.search(Template(np.ones(DIM + 1, np.float32), MODEL))
    with pytest.raises(ModelMismatchError):
        open_gallery(location, model="other")
    with pytest.raises(ModelMismatchError):
        open_gallery(location, model=MODEL, dim=DIM * 2)


def test_missing_gallery_needs_model(location):
    with pytest.raises(GalleryError, match="does not exist"):
        open_gallery(location)


def test_search_max_aggregation(location, rng):
    people = {f"p{i}": unit(rng, 1 + i % 3) for i in range(20)}
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        g.enroll_many([(name, items(v)) for name, v in people.items()])
        probes = unit(rng, 5)
        got = g.search_many(probes, k=4)
        single = g.search(tpl(probes[0]), k=4)
        assert [c.person for c in single] == [c.person for c in got[0]]
    for probe, cands in zip(probes, got):
        expected = sorted(((float(np.max(v @ probe)), n) for n, v in people.items()), reverse=True)[:4]
        assert [c.person for c in cands] == [n for _, n in expected]
        np.testing.assert_allclose([c.score for c in cands], [s for s, _ in expected], atol=1e-5)


def test_search_empty_and_bad_k(location, rng):
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        assert g.search(tpl(unit(rng))) == []
        with pytest.raises(ValueError):
            g.search(tpl(unit(rng)), k=0)


def test_deleted_never_returned(location, rng):
    vecs = unit(rng, 4)
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", items(vecs[:2]))
        g.enroll("bob", items(vecs[2:]))
        assert g.delete_person("ada") == 2
        with pytest.raises(PersonNotFoundError):
            g.delete_person("ada")
        for v in vecs:
            assert "ada" not in [c.person for c in g.search(tpl(v), k=5)]
        bob_faces = g.faces("bob")
        g.delete_face(bob_faces[0].id)
        with pytest.raises(GalleryError):
            g.delete_face(bob_faces[0].id)
        assert g.get_person("bob").face_count == 1
        assert g.search(tpl(vecs[2]), k=1)[0].score < 0.9999
        assert g.face_count() == 1


def test_atomic_enrol_with_nan(location, rng):
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", items(unit(rng, 1)))
        bad = unit(rng, 2)
        bad[1, 3] = np.nan
        with pytest.raises(GalleryError, match="non-finite"):
            g.enroll("bob", items(bad))
        with pytest.raises(GalleryError, match="non-finite"):
            g.enroll_many([("cy", items(unit(rng, 1))), ("dee", items(bad))])
        with pytest.raises(GalleryError):
            g.enroll("eve", [])
        assert [p.name for p in g.persons()] == ["ada"] and g.face_count() == 1


JOSE = "Jos\u00e9 \u00d1\u00fa\u00f1ez"  # precomposed letters (NFC)
JOSE_NFD = unicodedata.normalize("NFD", JOSE)  # base letters + combining accents: prints the same


def test_one_visible_name_is_one_person(location, rng):
    vecs = unit(rng, 3)
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        assert g.enroll(JOSE, items(vecs[:1])).name == JOSE
        rec = g.enroll(f" {JOSE_NFD}\n", items(vecs[1:2]))
        assert (rec.name, rec.face_count) == (JOSE, 2)
        g.enroll_many([(JOSE_NFD, items(vecs[2:])), ("bob", items(vecs[:1]))])
        assert [(p.name, p.face_count) for p in g.persons()] == [(JOSE, 3), ("bob", 1)]
        assert g.get_person(JOSE_NFD).name == JOSE and len(g.faces(JOSE_NFD)) == 3
        for bad in ("Ada\nLovelace", "", "x\u202e"):
            with pytest.raises(InvalidNameError):
                g.enroll(bad, items(vecs[:1]))
        with pytest.raises(InvalidNameError):
            g.get_person("Jos\x00e")
        assert g.delete_person(JOSE_NFD) == 3
        with pytest.raises(PersonNotFoundError):
            g.get_person(JOSE)
        assert all(c.person == "bob" for c in g.search(tpl(vecs[1]), k=5))


def test_same_image_digest_stored_once_per_person(location, rng):
    vecs = unit(rng, 3)
    a, b = "a" * 64, "b" * 64
    with open_gallery(location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", [EnrolmentItem(tpl(vecs[0]), sha256=a), EnrolmentItem(tpl(vecs[1]), sha256=a)])
        assert g.get_person("ada").face_count == 1  # repeated within one call
        g.enroll("ada", [EnrolmentItem(tpl(vecs[1]), sha256=a), EnrolmentItem(tpl(vecs[2]), sha256=b),
                         EnrolmentItem(tpl(vecs[2]))])
        assert [f.sha256 for f in g.faces("ada")] == [a, b, None]
        assert g.enroll("bob", [EnrolmentItem(tpl(vecs[0]), sha256=a)]).face_count == 1  # per person
        with pytest.raises(GalleryError, match="SHA-256"):
            g.enroll("cy", [EnrolmentItem(tpl(vecs[0]), sha256="A" * 64)])
        assert g.face_count() == 4 and len(g) == 2


# -- PostgreSQL only ----------------------------------------------------------------------------


def test_version_1_gallery_upgraded_names_merged(pg_location, pg_url, rng, caplog):
    """A gallery made by schema version 1 with two names that print the same comes out as one person."""
    import psycopg

    from faceprint.gallery.postgres import MIGRATIONS, SCHEMA_VERSION

    name = pg_location.rsplit("gallery=", 1)[1]
    vecs = unit(rng, 3)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(f'CREATE TABLE "{name}".faceprint_meta (key text PRIMARY KEY, value text NOT NULL)')
        for statement in MIGRATIONS[0][1].replace("{dim}", str(DIM)).replace("{{", "{").replace("}}", "}").split(";"):
            if statement.strip():
                conn.execute(statement.replace("{s}", f'"{name}"'))
        conn.cursor().executemany(f'INSERT INTO "{name}".faceprint_meta VALUES (%s, %s)',
                                  [("schema_version", "1"), ("model", MODEL), ("dim", str(DIM))])
        for pid, person, meta in [(1, JOSE_NFD, {"a": 1}), (2, JOSE, {"b": 2}), (3, "bob\t", {})]:
            conn.execute(f'INSERT INTO "{name}".persons (id, name, metadata) VALUES (%s, %s, %s::jsonb)',
                         (pid, person, json.dumps(meta)))
        for pid, vec in zip((1, 2, 3), vecs):
            conn.execute(f'INSERT INTO "{name}".faces (person_id, embedding) VALUES (%s, %s::vector)',
                         (pid, str(vec.tolist())))
    with caplog.at_level(logging.WARNING, logger="faceprint.gallery.postgres"):
        with open_gallery(pg_location) as g:
            assert [(p.id, p.name, p.face_count, p.metadata) for p in g.persons()] == [
                (1, JOSE, 2, {"a": 1, "b": 2}), (3, "bob", 1, {})]
            assert g.search(tpl(vecs[1]), k=1)[0].person == JOSE
    assert any("merged" in r.getMessage() and JOSE in r.getMessage() for r in caplog.records)
    with psycopg.connect(pg_url) as conn:
        meta = dict(conn.execute(f'SELECT key, value FROM "{name}".faceprint_meta').fetchall())
        assert meta["schema_version"] == str(SCHEMA_VERSION) == "3"
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'faces_person_sha256'",
                            (name,)).fetchone() is not None


def test_path_masks_password(pg_url):
    from faceprint.gallery.postgres import mask_url, parse_url

    assert mask_url("postgresql://u:secret@h:5432/db?gallery=x") == "postgresql://u:***@h:5432/db?gallery=x"
    assert parse_url("postgres://u@h/db?sslmode=require&gallery=staff") == ("postgres://u@h/db?sslmode=require", "staff")
    with pytest.raises(GalleryError, match="invalid gallery name"):
        parse_url("postgresql://h/db?gallery=Bad-Name")


def test_migration_idempotent_and_schema(pg_location, pg_url):
    import psycopg

    from faceprint.gallery.postgres import SCHEMA_VERSION

    name = pg_location.rsplit("gallery=", 1)[1]
    with open_gallery(pg_location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", items(unit(np.random.default_rng(1), 1)))
    for _ in range(2):
        with open_gallery(pg_location, model=MODEL, dim=DIM) as g:
            assert g.face_count() == 1
    with psycopg.connect(pg_url) as conn:
        meta = dict(conn.execute(f'SELECT key, value FROM "{name}".faceprint_meta').fetchall())
        assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["dim"] == str(DIM)
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
                             (name, "faces_embedding_hnsw")).fetchone()[0]
        assert "hnsw" in index and "vector_ip_ops" in index


def test_concurrent_creation_and_writers(pg_location, rng):
    """Two writers with their own connections, racing to create the gallery and upsert people."""
    vecs = unit(rng, 2)
    acked: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(tag: str) -> None:
        try:
            start.wait()
            with open_gallery(pg_location, model=MODEL, dim=DIM) as g:
                for i in range(50):
                    g.enroll(f"{tag}{i}", [EnrolmentItem(tpl(vecs[0]), source=f"{tag}{i}")])
                    acked.append((f"{tag}{i}", f"{tag}{i}"))
                    g.enroll("shared", [EnrolmentItem(tpl(vecs[1]), source=f"shared-{tag}{i}")])
                    acked.append(("shared", f"shared-{tag}{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with open_gallery(pg_location) as g:
        stored = {(p.name, f.source) for p in g.persons() for f in g.faces(p.name)}
        assert set(acked) <= stored and len(acked) == 200
        assert len(g) == 101 and g.get_person("shared").face_count == 100


def test_ann_path_matches_exact(pg_location, rng):
    people = {f"p{i}": unit(rng, 3) for i in range(60)}
    with open_gallery(pg_location, model=MODEL, dim=DIM) as g:
        g.enroll_many([(name, items(v)) for name, v in people.items()])
        probes = unit(rng, 5)
        exact = g.search_many(probes, k=3)
        g._exact_below = 0  # force the HNSW path
        approx = g.search_many(probes, k=3)
        g._exact_below = 0
        many = g.search_many(probes, k=100)  # more people than the ANN rows hold: falls back to exact
    assert [[c.person for c in r] for r in approx] == [[c.person for c in r] for r in exact]
    assert all(len(r) == 60 for r in many)


def test_cli_people_and_delete(pg_location, rng, capsys):
    from faceprint.cli import main

    with open_gallery(pg_location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", items(unit(rng, 2)))
        g.enroll("bob", items(unit(rng, 1)))
    capsys.readouterr()
    assert main(["people", "--gallery", pg_location, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == MODEL
    assert payload["people"] == [{"name": "ada", "faces": 2}, {"name": "bob", "faces": 1}]
    assert main(["delete", "ada", "--gallery", pg_location]) == 0
    assert "2 template(s) removed" in capsys.readouterr().out
    assert main(["people", "--gallery", pg_location]) == 0
    assert "1 people" in capsys.readouterr().out


def test_engine_accepts_postgres_store(pg_location):
    from faceprint import Engine

    engine = Engine("fast")  # models load lazily: nothing is loaded here
    with open_gallery(pg_location, model=engine.model_id, dim=DIM) as g:
        assert engine.open_gallery(g) is g
    with engine.open_gallery(pg_location, create=False) as g:
        assert g.model == engine.model_id and not isinstance(g, Gallery)
    with open_gallery(pg_location.replace("gallery=", "gallery=m"), model="other", dim=DIM) as other:
        with pytest.raises(ModelMismatchError):
            engine.open_gallery(other)


def test_unreachable_server_is_gallery_error():
    with pytest.raises(GalleryError, match="cannot open gallery"):
        open_gallery("postgresql://nobody:pw@127.0.0.1:1/db?connect_timeout=2")


# -- encryption, cancelable templates and kept images on PostgreSQL -------------------------------


def _columns(pg_url: str, location: str) -> list[tuple]:
    """(embedding as text, template bytes) of every stored face, read straight from the database."""
    import psycopg

    name = location.rsplit("gallery=", 1)[1]
    with psycopg.connect(pg_url) as conn:
        return conn.execute(f'SELECT embedding::text, template FROM "{name}".faces ORDER BY id').fetchall()


def test_encrypted_gallery_holds_only_ciphertext(pg_location, pg_url, rng):
    from faceprint.privacy.crypto import (
        GalleryKey,
        GalleryKeyRequiredError,
        GalleryNotEncryptedError,
        WrongGalleryKeyError,
    )

    key = GalleryKey.generate()
    vecs = unit(rng, 3)
    photo = b"\xff\xd8 a kept photo " + bytes(range(64))
    with open_gallery(pg_location, model=MODEL, dim=DIM, key=key) as g:
        g.enroll("ada", [EnrolmentItem(tpl(vecs[0]), source="a.jpg", image=photo), *items(vecs[1:2])])
        g.enroll("bob", items(vecs[2:]))
        assert g.encrypted
        assert [c.person for c in g.search(tpl(vecs[2]), k=2)] == ["bob", "ada"]
        assert g.search(tpl(vecs[2]), k=1)[0].score == pytest.approx(1.0, abs=1e-5)
        first = g.faces("ada")[0].id
        assert g.faces_with_image("ada") == {first} and g.face_image(first) == photo
        _, _, matrix = g.matrix()
        assert np.allclose(np.sort(matrix, axis=0), np.sort(vecs, axis=0), atol=1e-6)
    rows = _columns(pg_url, pg_location)
    assert len(rows) == 3 and all(emb is None for emb, _ in rows)  # no plaintext template in the database
    blobs = [bytes(t) for _, t in rows]
    assert all(vecs[i].tobytes() not in b for i in range(3) for b in blobs)
    import psycopg

    name = pg_location.rsplit("gallery=", 1)[1]
    with psycopg.connect(pg_url) as conn:
        stored = bytes(conn.execute(f'SELECT image FROM "{name}".face_images').fetchone()[0])
    assert photo not in stored and len(stored) > len(photo)
    with pytest.raises(GalleryKeyRequiredError):
        open_gallery(pg_location)
    with pytest.raises(WrongGalleryKeyError):
        open_gallery(pg_location, key=GalleryKey.generate())
    plain = pg_location.replace("gallery=", "gallery=p")
    with open_gallery(plain, model=MODEL, dim=DIM) as g:
        g.enroll("ada", items(vecs[:1]))
    with pytest.raises(GalleryNotEncryptedError):
        open_gallery(plain, key=key)


@pytest.mark.parametrize("mode", ["rotate", "sign"])
def test_cancelable_transform_in_the_index(pg_location, pg_url, rng, mode):
    from faceprint.privacy.cancelable import CancelableTransform, TransformMismatchError
    from faceprint.privacy.crypto import GalleryKey

    transform = CancelableTransform(GalleryKey.generate(), mode)
    key = GalleryKey.generate()
    vecs = unit(rng, 4)
    with open_gallery(pg_location, model=MODEL, dim=DIM, key=key, transform=transform) as g:
        g.enroll_many([(f"p{i}", items(vecs[i:i + 1])) for i in range(4)])
        for i in range(4):
            top = g.search(tpl(vecs[i]), k=1)[0]
            assert top.person == f"p{i}" and top.score == pytest.approx(1.0, abs=1e-5)
    rows = _columns(pg_url, pg_location)
    stored = np.array([json.loads(emb) for emb, _ in rows], dtype=np.float32)
    assert np.allclose(stored, transform.apply(vecs), atol=1e-6)  # the index holds transformed templates
    assert not np.allclose(stored, vecs, atol=1e-3)
    assert all(t is not None for _, t in rows)  # and the encrypted column their ciphertext
    with pytest.raises(TransformMismatchError):
        open_gallery(pg_location, key=key)
    other = CancelableTransform(GalleryKey.generate(), mode)
    with pytest.raises(TransformMismatchError):
        open_gallery(pg_location, key=key, transform=other)


def test_kept_images_plain_and_cascade(pg_location, rng):
    vecs = unit(rng, 2)
    with open_gallery(pg_location, model=MODEL, dim=DIM) as g:
        g.enroll("ada", [EnrolmentItem(tpl(vecs[0]), source="a.jpg", image=b"one"),
                         EnrolmentItem(tpl(vecs[1]), source="b.jpg")])
        first, second = (f.id for f in g.faces("ada"))
        assert g.faces_with_image("ada") == {first}
        assert g.face_image(first) == b"one" and g.face_image(second) is None
        g.delete_face(first)
        assert g.face_image(first) is None
        g.enroll("bob", [EnrolmentItem(tpl(vecs[0]), source="c.jpg", image=b"two")])
        bob = g.faces("bob")[0].id
        g.delete_person("bob")
        assert g.face_image(bob) is None


def test_cli_encrypted_cancelable_postgres_gallery(pg_location, data_dir, tmp_path, capsys):
    """faceprint enroll / identify on a postgresql:// gallery with --key-file and --transform-key-file."""
    from faceprint.cli import main

    knn = data_dir / "knn-small"
    for name in ("gallery.key", "transform.key"):
        assert main(["keys", "new", str(tmp_path / name)]) == 0
    privacy = ["--key-file", str(tmp_path / "gallery.key"), "--transform-key-file", str(tmp_path / "transform.key")]
    assert main(["enroll", "--model", "fast", "--gallery", pg_location, "--person", "obama",
                 str(knn / "train/obama/obama.jpg"), *privacy]) == 0
    capsys.readouterr()
    assert main(["identify", "--model", "fast", "--gallery", pg_location, str(knn / "test/obama1.jpg"),
                 "--json", *privacy]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["person"] == "obama" and result["candidates"][0]["score"] > 0.6  # cosine scale, transformed
    assert main(["identify", "--model", "fast", "--gallery", pg_location, str(knn / "test/obama1.jpg")]) == 2
    assert "encrypted" in capsys.readouterr().err
