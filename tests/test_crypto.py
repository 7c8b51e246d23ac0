"""Encryption at rest: keys, the AES-GCM blob codec, encrypted galleries and atomic key rotation."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.privacy import crypto
from faceprint.privacy.crypto import (
    BlobCipher,
    DecryptionError,
    GalleryKey,
    GalleryKeyRequiredError,
    GalleryNotEncryptedError,
    KeyFileError,
    WrongGalleryKeyError,
)
from faceprint.gallery import EnrolmentItem, Gallery
from faceprint.types import Template

MODEL, DIM = "test-model", 16


def unit(rng, n):
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def items(vecs, image: bytes | None = None):
    return [EnrolmentItem(Template(v, MODEL), source=f"img{i}.jpg", image=image) for i, v in enumerate(vecs)]


def file_bytes(path) -> bytes:
    data = Path(path).read_bytes()
    wal = Path(str(path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def key():
    return GalleryKey.generate()


def test_key_file_round_trip_and_permissions(tmp_path, key):
    path = crypto.write_key_file(tmp_path / "k.key", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.read_key_file(path) == key
    with pytest.raises(KeyFileError, match="already exists"):
        crypto.write_key_file(path, GalleryKey.generate())
    assert key.secret.hex() not in repr(key) and key.to_base64() not in repr(key)
    assert crypto.load_key(None, {crypto.KEY_ENV: key.to_base64()}) == key
    assert crypto.load_key(None, {}) is None
    with pytest.raises(KeyFileError):
        crypto.load_key(None, {crypto.KEY_ENV: "c2hvcnQ="})  # 5 bytes
    with pytest.raises(KeyFileError):
        crypto.load_key(None, {crypto.KEY_ENV: "not base64 at all!"})
    with pytest.raises(KeyFileError):
        crypto.read_key_file(tmp_path / "missing.key")


def test_blob_cipher_binds_associated_data(key):
    cipher = BlobCipher(key)
    blob = cipher.encrypt(b"secret template", b"row 1")
    other = cipher.encrypt(b"secret template", b"row 1")
    assert blob != other  # a fresh nonce per blob
    assert len(blob) == len(b"secret template") + crypto.OVERHEAD
    assert cipher.decrypt(blob, b"row 1") == b"secret template"
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, b"row 2")
    with pytest.raises(DecryptionError):
        BlobCipher(GalleryKey.generate()).decrypt(blob, b"row 1")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(tampered), b"row 1")


def test_encrypted_gallery_stores_no_plaintext(tmp_path, rng, key):
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 4)
    photo = b"\xff\xd8\xff JPEG face crop of alice"
    with Gallery(path, model=MODEL, dim=DIM, key=key) as g:
        assert g.encrypted
        g.enroll("alice", items(vecs[:2], image=photo))
        g.enroll("bob", items(vecs[2:]))
        fid = g.faces("alice")[0].id
        assert g.face_image(fid) == photo
        assert g.search(Template(vecs[0], MODEL), k=1)[0].person == "alice"
        np.testing.assert_array_equal(g.matrix()[2], vecs)
    raw = file_bytes(path)
    for v in vecs:
        assert v.tobytes() not in raw
        assert v[:4].tobytes() not in raw  # not even a fragment
    assert photo not in raw and b"JPEG face crop" not in raw
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    conn.close()
    assert meta["encryption"] == crypto.CIPHER_ID and meta["key_check"] == key.fingerprint
    assert key.to_base64() not in raw.decode("latin-1")
    with Gallery(path, key=key) as g:  # reopens, decrypts
        assert g.search(Template(vecs[3], MODEL), k=1)[0].person == "bob"


def test_open_without_or_with_wrong_key(tmp_path, rng, key):
    path = tmp_path / "g.sqlite"
    with Gallery(path, model=MODEL, dim=DIM, key=key) as g:
        g.enroll("alice", items(unit(rng, 1)))
    with pytest.raises(GalleryKeyRequiredError) as exc:
        Gallery(path)
    assert exc.value.code == "gallery_key_required"
    with pytest.raises(WrongGalleryKeyError) as exc:
        Gallery(path, key=GalleryKey.generate())
    assert exc.value.code == "wrong_gallery_key"
    plain = tmp_path / "plain.sqlite"
    with Gallery(plain, model=MODEL, dim=DIM) as g:
        g.enroll("alice", items(unit(rng, 1)))
    with pytest.raises(GalleryNotEncryptedError):
        Gallery(plain, key=key)


def test_swapped_ciphertexts_fail_to_decrypt(tmp_path, rng, key):
    path = tmp_path / "g.sqlite"
    with Gallery(path, model=MODEL, dim=DIM, key=key) as g:
        g.enroll("alice", items(unit(rng, 1)))
        g.enroll("bob", items(unit(rng, 1)))
    conn = sqlite3.connect(path)
    (a, ta), (b, tb) = conn.execute("SELECT id, template FROM faces ORDER BY id").fetchall()
    conn.execute("UPDATE faces SET template = ? WHERE id = ?", (tb, a))
    conn.execute("UPDATE faces SET template = ? WHERE id = ?", (ta, b))
    conn.commit()
    conn.close()
    with Gallery(path, key=key) as g, pytest.raises(DecryptionError):
        g.matrix()


def test_rotation_re_encrypts_every_row(tmp_path, rng, key):
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 5)
    with Gallery(path, model=MODEL, dim=DIM, key=key) as g:
        g.enroll("alice", items(vecs[:3], image=b"photo-bytes"))
        g.enroll("bob", items(vecs[3:]))
        conn = g._db()
        old_blobs = [r[0] for r in conn.execute("SELECT template FROM faces")]
        old_blobs += [r[0] for r in conn.execute("SELECT image FROM face_images")]
    new = GalleryKey.generate()
    with Gallery(path, key=key) as g:
        assert g.rekey(new) == 5
    raw = file_bytes(path)
    for blob in old_blobs:
        assert blob not in raw  # the old ciphertexts are gone from the file and the WAL
    with pytest.raises(WrongGalleryKeyError):
        Gallery(path, key=key)
    with Gallery(path, key=new) as g:
        np.testing.assert_array_equal(g.matrix()[2], vecs)
        assert g.face_image(g.faces("alice")[0].id) == b"photo-bytes"
        g.rekey(None)  # decrypt
    with Gallery(path) as g:
        assert not g.encrypted
        np.testing.assert_array_equal(g.matrix()[2], vecs)
        g.rekey(key)  # and encrypt a plaintext gallery
    with Gallery(path, key=key) as g:
        np.testing.assert_array_equal(g.matrix()[2], vecs)


def test_rotation_failing_midway_leaves_the_old_key(tmp_path, rng, key, monkeypatch):
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 6)
    with Gallery(path, model=MODEL, dim=DIM, key=key) as g:
        g.enroll("alice", items(vecs))
        before = g._db().execute("SELECT id, template FROM faces ORDER BY id").fetchall()
    calls = {"n": 0}
    real = BlobCipher.encrypt

    def failing(self, plaintext, associated):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk unplugged midway")
        return real(self, plaintext, associated)

    monkeypatch.setattr(BlobCipher, "encrypt", failing)
    new = GalleryKey.generate()
    with Gallery(path, key=key) as g, pytest.raises(OSError, match="midway"):
        g.rekey(new)
    monkeypatch.setattr(BlobCipher, "encrypt", real)
    assert calls["n"] == 4
    with pytest.raises(WrongGalleryKeyError):
        Gallery(path, key=new)
    with Gallery(path, key=key) as g:
        assert g._db().execute("SELECT id, template FROM faces ORDER BY id").fetchall() == before
        np.testing.assert_array_equal(g.matrix()[2], vecs)


def test_encrypted_gallery_never_writes_the_search_index(tmp_path, rng, key):
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 40)
    with Gallery(path, model=MODEL, dim=DIM, approximate_from=10, key=key) as g:
        g.enroll("alice", items(vecs[:20]))
        g.enroll("bob", items(vecs[20:]))
        assert g.search(Template(vecs[25], MODEL), k=1)[0].person == "bob"
    assert not os.path.exists(str(path) + ".index")


# -- command line -------------------------------------------------------------------------


def privacy_cli(argv: list[str]) -> int:
    """Run a ``faceprint`` command of :mod:`faceprint.cli.privacy` (through the real CLI once it is wired in)."""
    import argparse

    from faceprint import cli
    from faceprint.cli import privacy as cli_privacy

    if "privacy" in cli.SUBCOMMAND_MODULES:
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="faceprint")
    parser.add_argument("--json", action="store_true")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    cli_privacy.register(sub, None, common)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except crypto.FaceprintError as exc:
        print(f"faceprint: error: {exc}", file=sys.stderr)
        return 2


def test_cli_keys_new_rotate_and_purge(tmp_path, rng, monkeypatch, capsys):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    a, b = tmp_path / "a.key", tmp_path / "b.key"
    assert privacy_cli(["keys", "new", str(a)]) == 0
    assert privacy_cli(["keys", "new", str(b)]) == 0
    assert privacy_cli(["keys", "new", str(b)]) == 2  # refuses to overwrite
    key_a, key_b = crypto.read_key_file(a), crypto.read_key_file(b)
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 3)
    with Gallery(path, model=MODEL, dim=DIM, key=key_a) as g:
        g.enroll("alice", items(vecs))
    log = tmp_path / "audit.jsonl"
    capsys.readouterr()
    assert privacy_cli(["keys", "rotate", "--gallery", str(path), "--old-key-file", str(a),
                        "--new-key-file", str(b), "--audit-log", str(log)]) == 0
    assert key_b.fingerprint in capsys.readouterr().out
    with pytest.raises(WrongGalleryKeyError):
        Gallery(path, key=key_a)
    assert privacy_cli(["keys", "rotate", "--gallery", str(path), "--old-key-file", str(a),
                        "--new-key-file", str(b)]) == 2  # the old key is no longer the gallery's
    monkeypatch.setenv(crypto.KEY_ENV, key_b.to_base64())
    capsys.readouterr()
    assert privacy_cli(["purge", "--gallery", str(path), "--older-than-days", "30", "--json",
                        "--audit-log", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["faces_removed"] == 0
    assert privacy_cli(["purge", "--gallery", str(path), "--older-than-days", "0"]) == 0
    with Gallery(path, key=key_b) as g:
        assert g.face_count() == 0
    from faceprint.privacy.audit import AuditLog

    recs = list(AuditLog(log).records())
    assert [r["action"] for r in recs] == ["rotate_key", "purge"]
    assert recs[0]["details"]["new_key_check"] == key_b.fingerprint and AuditLog(log).verify().ok
