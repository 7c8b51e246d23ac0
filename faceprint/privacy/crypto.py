"""Gallery keys and the AES-256-GCM codec that encrypts stored templates and images.

A :class:`GalleryKey` is 32 random bytes, read from a key file (``faceprint keys new`` writes one,
mode 0600) or from the environment variable :data:`KEY_ENV` (the same bytes, base64). Two
sub-keys are derived from it with HKDF-SHA256: one encrypts, one computes the key check value
(:attr:`GalleryKey.fingerprint`) that a gallery stores to recognise its key, so the stored value
reveals nothing about the encryption key itself.

:class:`BlobCipher` seals each blob with its own random 96-bit nonce and binds it to its row with
associated data (gallery id, face id, person id): a ciphertext moved to another row, or to another
gallery, fails to decrypt instead of silently changing whose face it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import FaceprintError, GalleryError

log = logging.getLogger(__name__)

KEY_ENV = "FACEPRINT_GALLERY_KEY"
"""Environment variable holding a gallery key as base64 (32 bytes once decoded)."""

KEY_BYTES = 32
CIPHER_ID = "aes-256-gcm-v1"
"""What an encrypted gallery records as its ``encryption`` in ``meta``."""

_BLOB_VERSION = b"\x01"
_NONCE_BYTES = 12
OVERHEAD = len(_BLOB_VERSION) + _NONCE_BYTES + 16
"""Bytes an encrypted blob has on top of its plaintext (version, nonce, GCM tag)."""


class KeyFileError(FaceprintError):
    """A key file or key variable that is missing, unreadable or not a 32-byte key."""

    code = "key_error"


class GalleryKeyRequiredError(GalleryError):
    """The gallery is encrypted and no key was given to open it."""

    code = "gallery_key_required"


class WrongGalleryKeyError(GalleryError):
    """The key given is not the one the gallery was encrypted with."""

    code = "wrong_gallery_key"


class GalleryNotEncryptedError(GalleryError):
    """A key was given for a gallery that stores its templates unencrypted."""

    code = "gallery_not_encrypted"


class DecryptionError(GalleryError):
    """A stored blob failed authentication: corrupt, tampered with, or moved to another row."""

    code = "decryption_failed"


def _derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"faceprint " + label).derive(key)


@dataclass(frozen=True)
class GalleryKey:
    """A 32-byte secret key. ``repr`` never shows it."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise KeyFileError(f"a gallery key must be exactly {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> GalleryKey:
        """A fresh random key from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_base64(cls, text: str) -> GalleryKey:
        """The key whose base64 encoding is ``text`` (surrounding whitespace ignored)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyFileError(f"gallery key is not valid base64: {exc}") from exc
        if len(raw) != KEY_BYTES:
            raise KeyFileError(f"gallery key decodes to {len(raw)} bytes, expected {KEY_BYTES}")
        return cls(raw)

    def to_base64(self) -> str:
        """The key as base64 text (what key files and :data:`KEY_ENV` hold)."""
        return base64.b64encode(self.secret).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """A key check value: 16 hex digits of an HMAC under a derived sub-key; safe to store."""
        check = _derive(self.secret, b"key check")
        return hmac.new(check, b"faceprint gallery key check", hashlib.sha256).hexdigest()[:16]

    def derive(self, label: str) -> bytes:
        """A 32-byte sub-key for ``label`` (HKDF-SHA256); different labels give unrelated keys."""
        return _derive(self.secret, label.encode())


def write_key_file(path: str | os.PathLike, key: GalleryKey, *, overwrite: bool = False) -> Path:
    """Write ``key`` as base64 to ``path`` with mode 0600; refuse to replace a file unless ``overwrite``."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"key file {target} already exists; not overwriting it") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {target}: {exc}") from exc
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key.to_base64() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.info("wrote gallery key %s (fingerprint %s)", target, key.fingerprint)
    return target


def read_key_file(path: str | os.PathLike) -> GalleryKey:
    """The key in the key file at ``path``; warns when others can read the file."""
    target = Path(path)
    try:
        text = target.read_text()
        mode = target.stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {target}: {exc}") from exc
    if mode & 0o077:
        log.warning("key file %s is readable by other users (mode %o); chmod 600 it", target, mode & 0o777)
    return GalleryKey.from_base64(text)


def load_key(key_file: str | os.PathLike | None = None, environ: dict | None = None) -> GalleryKey | None:
    """The key from ``key_file`` if given, else from :data:`KEY_ENV`, else ``None`` (no encryption)."""
    if key_file is not None:
        return read_key_file(key_file)
    value = (os.environ if environ is None else environ).get(KEY_ENV)
    return GalleryKey.from_base64(value) if value else None


class BlobCipher:
    """AES-256-GCM with a per-blob random nonce; ``blob = version || nonce || ciphertext+tag``."""

    def __init__(self, key: GalleryKey) -> None:
        self.fingerprint = key.fingerprint
        self._aead = AESGCM(key.derive("blob encryption v1"))

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        """Seal ``plaintext``; ``associated`` must be given again, unchanged, to decrypt."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _BLOB_VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        """Open a blob sealed by :meth:`encrypt`; raises :class:`DecryptionError` if it does not authenticate."""
        if len(blob) < OVERHEAD or blob[:1] != _BLOB_VERSION:
            raise DecryptionError("stored blob is not a faceprint ciphertext (wrong version or too short)")
        nonce = blob[1:1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES:], associated)
        except InvalidTag as exc:
            raise DecryptionError("stored blob failed authentication (tampered, corrupt or moved)") from exc
