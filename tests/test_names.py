"""One visible name is one person; the same face under two names; ties (issue 11, cases 4 and 5).

Real faces from ``../shared/data/knn-small`` through the CLI, the Python API, the batch tree
enrolment and the REST service; the name rule itself on strings; and the upgrade of a version-1
gallery (written directly into a SQLite file) whose names collide after Unicode normalisation.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import unicodedata
import uuid

import numpy as np
import pytest

from cli_run import run
from faceprint.errors import DuplicateIdentityError, InvalidNameError, PersonNotFoundError
from faceprint.gallery import EnrolmentItem, Gallery
from faceprint.gallery.names import MAX_NAME_LENGTH, normalise_name
from faceprint.privacy.crypto import GalleryKey
from faceprint.types import TIE_MARGIN, Candidate, tied_names

FAST = ["--model", "fast"]
JOSE = "Jos\u00e9 \u00d1\u00fa\u00f1ez"  # precomposed letters (NFC)
JOSE_NFD = unicodedata.normalize("NFD", JOSE)  # base letters + combining accents, as macOS file names


@pytest.fixture(scope="module")
def knn(data_dir):
    return data_dir / "knn-small"


# -- the rule -------------------------------------------------------------------------------------


def test_normalise_name_rule():
    assert JOSE != JOSE_NFD and len(JOSE_NFD) == len(JOSE) + 4
    assert normalise_name(JOSE) == normalise_name(JOSE_NFD) == JOSE
    assert normalise_name("  Ada Lovelace\n") == "Ada Lovelace"  # surrounding whitespace, a trailing newline too
    assert normalise_name("Ada \u00a0  Lovelace") == "Ada Lovelace"  # inner runs of spaces, no-break ones too
    assert normalise_name("ada") != normalise_name("Ada")  # case is kept
    persian = "\u0645\u06cc\u200c\u0631\u0648\u0632"  # a Persian name spelled with a zero-width non-joiner
    assert normalise_name(persian) == persian
    for bad, shown in [("Ada\nLovelace", "U+000A"), ("Ada\tL", "U+0009"), ("Ada\x00", "U+0000"),
                       ("Ada\u202eecalevoL", "U+202E"), ("A\u200bda", "U+200B"), ("Ada\u2028L", "U+2028")]:
        with pytest.raises(InvalidNameError, match=re.escape(shown)):
            normalise_name(bad)
    for empty in ("", "   ", "\n\t"):
        with pytest.raises(InvalidNameError, match="empty"):
            normalise_name(empty)
    assert normalise_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    with pytest.raises(InvalidNameError, match="over the limit"):
        normalise_name("x" * (MAX_NAME_LENGTH + 1))
    with pytest.raises(InvalidNameError):
        normalise_name(None)
    assert InvalidNameError.code == "invalid_name"


def test_tied_names():
    c = [Candidate("obama", 1, 0.9301), Candidate("Barack", 2, 0.9301), Candidate("biden", 3, 0.1)]
    assert tied_names(c, 0.36) == ("obama", "Barack")
    near = [Candidate("a", 1, 0.80), Candidate("b", 2, 0.80 - TIE_MARGIN / 2), Candidate("c", 3, 0.80 - 2 * TIE_MARGIN)]
    assert tied_names(near, 0.36) == ("a", "b")
    assert tied_names(near, 0.797) == ()  # the runner-up is below the threshold: no tie
    assert tied_names(c[:1], 0.36) == () and tied_names([], 0.36) == ()
    assert tied_names([Candidate("a", 1, 0.3), Candidate("b", 2, 0.3)], 0.36) == ()  # unknown, not a tie


# -- CLI and Python API on real faces --------------------------------------------------------------


def test_two_forms_of_a_name_are_one_person(capsys, knn, tmp_path):
    gallery = tmp_path / "g.db"
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", JOSE, knn / "train/obama/obama.jpg",
                         *FAST)
    assert code == 0, err
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", JOSE_NFD,
                         knn / "train/obama/obama2.jpg", "--json", *FAST)
    assert code == 0, err  # the same person: no duplicate-identity refusal
    assert json.loads(out)["enrolled"] == [{"person": JOSE, "faces_added": 1, "faces_total": 2}]
    assert run(capsys, "enroll", "--gallery", gallery, "--person", "biden", knn / "train/biden/biden.jpg",
               *FAST)[0] == 0
    code, out, _ = run(capsys, "people", "--gallery", gallery, "--json", *FAST)
    assert json.loads(out)["people"] == [{"name": JOSE, "faces": 2}, {"name": "biden", "faces": 1}]
    code, out, _ = run(capsys, "identify", "--gallery", gallery, knn / "test/obama1.jpg", "--json", *FAST)
    assert [r["person"] for r in json.loads(out)["results"] if r["person"]] == [JOSE]

    code, out, err = run(capsys, "delete", JOSE_NFD, "--gallery", gallery, *FAST)
    assert code == 0, err
    assert "2 template(s) removed" in out
    code, out, _ = run(capsys, "people", "--gallery", gallery, "--json", *FAST)
    assert json.loads(out)["people"] == [{"name": "biden", "faces": 1}]
    code, out, _ = run(capsys, "identify", "--gallery", gallery, knn / "test/obama1.jpg", "--json", *FAST)
    results = json.loads(out)["results"]
    assert all(JOSE not in (r["person"], *[c["person"] for c in r["candidates"]]) for r in results)
    assert not any(r["person"] for r in results)
    code, _, err = run(capsys, "delete", JOSE, "--gallery", gallery, *FAST)
    assert code == 2 and "no person named" in err


def test_name_with_newline_refused_by_cli(capsys, knn, tmp_path):
    gallery = tmp_path / "g.db"
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "Ada\nLovelace",
                         knn / "train/obama/obama.jpg", *FAST)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faceprint: error: person name") and "U+000A" in lines[0]
    assert not gallery.exists()  # refused before anything was made
    assert run(capsys, "enroll", "--gallery", gallery, "--person", "Ada", knn / "train/obama/obama.jpg", *FAST)[0] == 0
    code, _, err = run(capsys, "delete", "Ada\u202e", "--gallery", gallery, *FAST)
    assert code == 2 and "U+202E" in err


def test_same_face_under_two_names_refused_then_tied(capsys, knn, tmp_path):
    gallery, photo = tmp_path / "g.db", knn / "train/obama/obama.jpg"
    assert run(capsys, "enroll", "--gallery", gallery, "--person", "obama", photo, *FAST)[0] == 0
    assert run(capsys, "enroll", "--gallery", gallery, "--person", "biden", knn / "train/biden/biden.jpg",
               *FAST)[0] == 0
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "Barack", photo, *FAST)
    assert code == 2 and out == ""
    assert "already matches 'obama'" in err and "similarity 1.0000" in err and "--allow-duplicate" in err
    code, out, _ = run(capsys, "people", "--gallery", gallery, "--json", *FAST)
    assert [p["name"] for p in json.loads(out)["people"]] == ["biden", "obama"]  # nothing written

    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "Barack", photo, "--allow-duplicate",
                         *FAST)
    assert code == 0, err
    code, out, _ = run(capsys, "identify", "--gallery", gallery, knn / "test/obama_and_biden.jpg", "--top", "1", *FAST)
    assert code == 0
    assert "obama = Barack (tie)" in out and "1 face(s) tied between different people" in out
    code, out, _ = run(capsys, "identify", "--gallery", gallery, knn / "test/obama_and_biden.jpg", "--json", *FAST)
    results = json.loads(out)["results"]
    tied = [r for r in results if r["tied"]]
    assert len(tied) == 1 and tied[0]["tied"] == ["obama", "Barack"]
    top = tied[0]["candidates"]
    assert top[0]["score"] == top[1]["score"] and top[0]["score"] > tied[0]["threshold"]
    biden = [r for r in results if r["person"] == "biden"]
    assert len(biden) == 1 and biden[0]["tied"] == []


def test_same_image_twice_stores_one_face(capsys, knn, tmp_path):
    gallery, photo = tmp_path / "g.db", knn / "train/obama/obama.jpg"
    copy = tmp_path / "renamed copy.jpg"
    shutil.copyfile(photo, copy)
    assert run(capsys, "enroll", "--gallery", gallery, "--person", "obama", photo, *FAST)[0] == 0
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "obama", photo, copy,
                         knn / "train/obama/obama2.jpg", "--json", *FAST)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["enrolled"] == [{"person": "obama", "faces_added": 1, "faces_total": 2}]
    assert sorted(s["image"] for s in payload["skipped"]) == sorted([str(photo), str(copy)])
    assert {s["reason"] for s in payload["skipped"]} == {"already enrolled"}
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--person", "obama", copy, *FAST)
    assert code == 0 and "already enrolled" in out
    with Gallery(gallery) as g:
        faces = g.faces("obama")
        assert len(faces) == 2 and len({f.sha256 for f in faces}) == 2 and all(len(f.sha256) == 64 for f in faces)


def test_engine_enroll_api(engine_fast, knn, tmp_path):
    gallery, photo = tmp_path / "g.db", knn / "train/obama/obama.jpg"
    record = engine_fast.enroll(JOSE_NFD, [photo, photo], gallery)  # the same image twice in one call
    assert (record.name, record.face_count) == (JOSE, 1)
    assert engine_fast.enroll(f"  {JOSE}  ", [photo], gallery).face_count == 1
    with pytest.raises(DuplicateIdentityError) as caught:
        engine_fast.enroll("Barack", [photo], gallery)
    assert (caught.value.person, caught.value.other) == ("Barack", JOSE) and caught.value.score > 0.99
    assert caught.value.code == "duplicate_identity"
    with pytest.raises(DuplicateIdentityError) as other_photo:  # another photo of him is caught too
        engine_fast.enroll("Barack", [knn / "train/obama/obama2.jpg"], gallery)
    assert engine_fast.duplicate_threshold <= other_photo.value.score < 0.99
    assert engine_fast.duplicate_threshold > engine_fast.threshold  # stricter than identification's
    assert engine_fast.enroll("biden", [knn / "train/biden/biden.jpg"], gallery).face_count == 1  # someone else
    with pytest.raises(InvalidNameError):
        engine_fast.enroll("Bar\nack", [photo], gallery, allow_duplicate=True)
    assert engine_fast.enroll("Barack", [photo], gallery, allow_duplicate=True).face_count == 1
    results = engine_fast.identify(knn / "test/obama1.jpg", gallery, k=1)
    assert [r.tied for r in results if r.person] == [(JOSE, "Barack")]
    assert all(len(r.candidates) <= 1 for r in results)  # ties are found beyond k, candidates stay k


def test_tree_skips_a_face_of_another_person(knn, tmp_path):
    from faceprint.batch import ALREADY_ENROLLED, MATCHES_OTHER, enrol_tree

    tree = tmp_path / "tree"
    layout = {"obama": ["obama.jpg", "obama2.jpg"], "Barack": ["obama.jpg"], "biden": ["biden.jpg"]}
    for folder, files in layout.items():
        (tree / folder).mkdir(parents=True)
        for name in files:
            src = knn / "train" / ("biden" if folder == "biden" else "obama") / name
            shutil.copyfile(src, tree / folder / name)
    shutil.copyfile(knn / "train/biden/biden.jpg", tree / "biden" / "biden copy.jpg")
    gallery = tmp_path / "g.db"
    summary = enrol_tree(tree, gallery, profile="fast", workers=1)
    # "Barack" sorts before "biden" and "obama": Barack's face is enrolled first, obama.jpg then matches it
    assert summary.faces_added == {"Barack": 1, "biden": 1}
    assert summary.skip_counts[ALREADY_ENROLLED] == 1  # biden copy.jpg: the same pixels as biden.jpg
    matched = [s for s in summary.skipped if s["reason"] == MATCHES_OTHER]
    assert {(s["person"], s["image"].rsplit("/", 1)[1]) for s in matched} == {("obama", "obama.jpg"),
                                                                               ("obama", "obama2.jpg")}
    assert all("already matches 'Barack'" in s["detail"] for s in matched)
    again = enrol_tree(tree, gallery, profile="fast", workers=1, allow_duplicate=True)
    assert again.faces_added == {"obama": 2}
    with Gallery(gallery) as g:
        assert {p.name: p.face_count for p in g.persons()} == {"Barack": 1, "biden": 1, "obama": 2}


# -- upgrading a version-1 gallery ------------------------------------------------------------------

V1_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE persons (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', "
    "created_at TEXT, updated_at TEXT)",
    "CREATE TABLE faces (id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES persons(id) "
    "ON DELETE CASCADE, template BLOB NOT NULL, source TEXT, box TEXT, quality REAL, created_at TEXT)",
    "CREATE INDEX faces_person_id ON faces(person_id)",
]


@pytest.fixture(scope="module")
def templates(engine_fast, knn):
    """Real templates: obama.jpg, obama2.jpg, biden.jpg."""
    return [engine_fast.embed(knn / p) for p in ("train/obama/obama.jpg", "train/obama/obama2.jpg",
                                                 "train/biden/biden.jpg")]


def test_version_1_gallery_is_upgraded_and_merged(engine_fast, templates, knn, tmp_path, caplog):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in V1_SCHEMA:
        conn.execute(statement)
    meta = {"schema_version": "1", "model": engine_fast.model_id, "dim": str(templates[0].dim),
            "created_at": "2024-01-01T00:00:00+00:00", "gallery_id": uuid.uuid4().hex}
    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    people = [(1, JOSE, {"team": "a"}, "2024-01-02"), (2, JOSE_NFD, {"role": "b"}, "2024-01-01"),
              (3, "biden ", {}, "2024-01-03"), (4, "\n", {}, "2024-01-04")]
    conn.executemany("INSERT INTO persons VALUES (?, ?, ?, ?, ?)",
                     [(i, n, json.dumps(m), t, t) for i, n, m, t in people])
    conn.executemany("INSERT INTO faces(id, person_id, template, source) VALUES (?, ?, ?, ?)",
                     [(1, 1, templates[0].vector.astype("<f4").tobytes(), "obama.jpg"),
                      (2, 2, templates[1].vector.astype("<f4").tobytes(), "obama2.jpg"),
                      (3, 3, templates[2].vector.astype("<f4").tobytes(), "biden.jpg")])
    conn.commit()
    conn.close()
    assert unicodedata.normalize("NFC", JOSE_NFD) == JOSE  # two rows that print the same

    with caplog.at_level(logging.WARNING, logger="faceprint.gallery"):
        with Gallery(path) as g:
            persons = {p.name: p for p in g.persons()}
            assert set(persons) == {JOSE, "biden", "unnamed person 4"}
            jose = persons[JOSE]
            assert (jose.id, jose.face_count, jose.metadata) == (1, 2, {"team": "a", "role": "b"})
            assert jose.created_at == "2024-01-01" and jose.updated_at == "2024-01-02"
            assert g.get_person(JOSE_NFD).id == 1 and g.get_person("biden").face_count == 1
    merged = [r.getMessage() for r in caplog.records if "merged" in r.getMessage()]
    assert len(merged) == 1 and JOSE in merged[0] and "2 face(s)" in merged[0]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert conn.execute("SELECT COUNT(*) FROM persons WHERE name = ?", (JOSE_NFD,)).fetchone()[0] == 0
    conn.close()
    results = engine_fast.identify(knn / "test/obama1.jpg", path)
    assert [r.person for r in results if r.person] == [JOSE] and not any(r.tied for r in results)


def test_encrypted_version_1_gallery_merge_reencrypts(templates, tmp_path):
    """Faces moved to another person are re-encrypted: their person id is in the ciphertext's associated data."""
    path, key = tmp_path / "sealed.db", GalleryKey.generate()
    model, dim = templates[0].model, templates[0].dim
    with Gallery(path, model=model, dim=dim, key=key) as g:
        g.enroll(JOSE, [EnrolmentItem(templates[0], source="obama.jpg")])
        g.enroll("placeholder", [EnrolmentItem(templates[1], source="obama2.jpg")])
    conn = sqlite3.connect(path)  # what an old faceprint could have written: the same name twice
    conn.execute("DROP INDEX faces_person_sha256")
    conn.execute("UPDATE persons SET name = ? WHERE name = 'placeholder'", (JOSE_NFD,))
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Gallery(path, key=key) as g:
        assert [(p.name, p.face_count) for p in g.persons()] == [(JOSE, 2)]
        _, pids, vecs = g.matrix()  # decrypts every template under its new person id
        assert set(pids.tolist()) == {g.get_person(JOSE).id}
        np.testing.assert_allclose(sorted(vecs @ templates[1].vector)[-1], 1.0, atol=1e-5)
        assert g.search(templates[1], k=1)[0].person == JOSE


def test_gallery_lookups_and_digests(templates, tmp_path):
    digest = "ab" * 32
    with Gallery(tmp_path / "g.db", model=templates[0].model, dim=templates[0].dim) as g:
        g.enroll(JOSE_NFD, [EnrolmentItem(templates[0], sha256=digest), EnrolmentItem(templates[1], sha256=digest)])
        assert g.get_person(JOSE).face_count == 1  # the repeated digest was skipped
        g.enroll(JOSE, [EnrolmentItem(templates[1], sha256=digest), EnrolmentItem(templates[1])])
        assert [f.sha256 for f in g.faces(JOSE_NFD)] == [digest, None]
        g.enroll("biden", [EnrolmentItem(templates[2], sha256=digest)])  # per person: another person may hold it
        with pytest.raises(Exception, match="SHA-256"):
            g.enroll("biden", [EnrolmentItem(templates[2], sha256="not-hex")])
        assert g.delete_person(f" {JOSE_NFD} ") == 2
        with pytest.raises(PersonNotFoundError):
            g.get_person(JOSE)
        with pytest.raises(InvalidNameError):
            g.get_person("bi\nden")


# -- REST service --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory, data_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from faceprint.service.app import ServiceSettings, create_app

    app = create_app(ServiceSettings(tmp_path_factory.mktemp("svc"), profile="fast", workers=1, queue=4))
    admin, _ = app.state.service.keys.create("admin", ["*"])
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {admin}"
        assert c.post("/v1/collections", json={"name": "names"}).status_code == 201
        yield c


def _images(*paths) -> list:
    return [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def test_service_names_duplicates_and_ties(client, knn):
    photo = knn / "train/obama/obama.jpg"
    base = "/v1/collections/names/persons"
    bad = client.post(f"{base}/Ada%0ALovelace/faces", files=_images(photo))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_name"
    assert "U+000A" in bad.json()["error"]["message"]

    r = client.post(f"{base}/{JOSE}/faces", files=_images(photo))
    assert r.status_code == 201 and r.json()["name"] == JOSE and len(r.json()["faces_added"]) == 1
    again = client.post(f"{base}/{JOSE_NFD}/faces", files=_images(photo, knn / "train/obama/obama2.jpg"))
    assert again.status_code == 201, again.text
    assert again.json()["already_enrolled"] == ["obama.jpg"] and len(again.json()["faces_added"]) == 1
    assert again.json()["face_count"] == 2
    assert [p["name"] for p in client.get(base).json()] == [JOSE]
    assert client.get(f"{base}/{JOSE_NFD}").json()["face_count"] == 2

    dup = client.post(f"{base}/Barack/faces", files=_images(photo))
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate_identity"
    assert JOSE in dup.json()["error"]["message"]
    assert client.get(f"{base}/Barack").status_code == 404
    ok = client.post(f"{base}/Barack/faces?allow_duplicate=true",
                     files=_images(photo, knn / "train/obama/obama2.jpg"))  # the very faces of JOSE: a tie
    assert ok.status_code == 201, ok.text

    group = knn / "test/obama_and_biden.jpg"
    found = client.post("/v1/collections/names/identify?top_k=1",
                        files=[("image", (group.name, group.read_bytes(), "image/jpeg"))]).json()
    assert [f["tied"] for f in found["faces"] if f["tied"]] == [[JOSE, "Barack"]]
    assert all(len(f["candidates"]) <= 1 for f in found["faces"])

    verify = client.post(f"{base}/{JOSE_NFD}/verify", files=[("image", ("o.jpg", photo.read_bytes(), "image/jpeg"))])
    assert verify.status_code == 200 and verify.json()["person"] == JOSE and verify.json()["is_match"]
    gone = client.delete(f"{base}/{JOSE_NFD}")
    assert gone.json() == {"deleted": JOSE, "faces_removed": 2}
    assert [p["name"] for p in client.get(base).json()] == ["Barack"]
    assert client.get(f"{base}/{JOSE}").json()["error"]["code"] == "person_not_found"
