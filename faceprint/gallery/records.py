"""What every gallery backend stores and returns, and the checks they all apply.

:class:`PersonRecord` and :class:`FaceRecord` describe what a gallery holds; an
:class:`EnrolmentItem` is one template to enrol with where it came from. The ``checked_*``
functions validate templates, probes and image digests the same way in the SQLite
(:mod:`faceprint.gallery.sqlite`) and PostgreSQL (:mod:`faceprint.gallery.postgres`) stores, and
:func:`privacy_updates` checks a gallery key and cancelable transform against a gallery's meta.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from ..errors import GalleryError, ModelMismatchError
from ..privacy.cancelable import CancelableTransform, TransformMismatchError
from ..privacy.crypto import (
    CIPHER_ID,
    GalleryKey,
    GalleryKeyRequiredError,
    GalleryNotEncryptedError,
    WrongGalleryKeyError,
)
from ..types import Template
from .names import repair_name

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class PersonRecord:
    """One enrolled person, with the number of face templates stored for them."""

    id: int
    name: str
    metadata: dict
    face_count: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class FaceRecord:
    """One stored face template's bookkeeping (the vector itself is in :meth:`Gallery.matrix`).

    ``sha256`` is the digest of the image the face was enrolled from (see :class:`EnrolmentItem`),
    or ``None`` when none was given.
    """

    id: int
    person_id: int
    source: str | None
    box: list[float] | None
    quality: float | None
    created_at: str
    sha256: str | None = None


@dataclass(frozen=True)
class EnrolmentItem:
    """A template to enrol, with where it came from.

    ``image`` (encoded image bytes, e.g. the face crop as JPEG) is stored only when given, in the
    ``face_images`` table (encrypted like the template when the gallery has a key) and deleted
    with the face.

    ``sha256`` (64 lower-case hex digits, e.g. :func:`faceprint.engine.image_digest` of the decoded
    image) identifies the image content: a person holds at most one face per digest, so an item
    whose digest is already stored for that person (or repeats an earlier item of the same call)
    is skipped, not stored twice.
    """

    template: Template
    source: str | None = None
    box: list[float] | None = None
    quality: float | None = None
    image: bytes | None = None
    sha256: str | None = None


def checked_digest(item: EnrolmentItem) -> str | None:
    """The item's ``sha256``, checked to be 64 lower-case hex digits (GalleryError otherwise), or None."""
    digest = item.sha256
    if digest is None:
        return None
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise GalleryError(f"image digest {digest!r} is not a SHA-256 in lower-case hex")
    return digest


def repeated_items(items: Sequence[EnrolmentItem], stored: set[str]) -> list[int]:
    """Indexes of the ``items`` whose digest is in ``stored`` or repeats an earlier item's."""
    seen = set(stored)
    out = []
    for i, item in enumerate(items):
        digest = checked_digest(item)
        if digest is None:
            continue
        if digest in seen:
            out.append(i)
        else:
            seen.add(digest)
    return out


def unique_items(items: Sequence[EnrolmentItem], stored: set[str]) -> list[EnrolmentItem]:
    """``items`` without those whose digest is in ``stored`` or repeats an earlier item's."""
    repeated = set(repeated_items(items, stored))
    for i in sorted(repeated):
        log.info("%s: the same image is already enrolled for this person; not stored again",
                 items[i].source or "an enrolment image")
    return [item for i, item in enumerate(items) if i not in repeated]


def merged_people(rows: Sequence[tuple]) -> dict[str, list[tuple]]:
    """Stored people grouped by canonical name, for the migration to canonical names.

    ``rows`` are ``(id, name, ...)`` in id order; a name with nothing printable left becomes
    ``"unnamed person <id>"``. Each group's rows stay in id order (the first is kept).
    """
    groups: dict[str, list[tuple]] = {}
    unnamed = []
    for row in rows:
        name = repair_name(row[1])
        if name:
            groups.setdefault(name, []).append(row)
        else:
            unnamed.append(row)
    for row in unnamed:
        name = f"unnamed person {row[0]}"
        while name in groups:
            name += "'"
        groups[name] = [row]
        log.warning("stored person name %r has no printable character; renamed %r", row[1], name)
    return groups


def checked_vector(template: Template, model: str, dim: int) -> np.ndarray:
    """The template's vector as little-endian float32, if it is of ``model``, ``dim``-d and finite.

    Shared by every gallery backend; raises ModelMismatchError or GalleryError.
    """
    if template.model != model:
        raise ModelMismatchError(f"template made by model {template.model!r}; gallery uses {model!r}")
    if template.dim != dim:
        raise ModelMismatchError(f"template has {template.dim} dimensions; gallery uses {dim}")
    vec = np.ascontiguousarray(template.vector, dtype="<f4")
    if not np.all(np.isfinite(vec)):
        raise GalleryError("template has non-finite values (NaN or infinity)")
    return vec


def checked_probes(vectors: np.ndarray, dim: int, k: int) -> np.ndarray:
    """A float32 ``[m, dim]`` probe array for a top-``k`` search, validated for every backend."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    q = np.asarray(vectors, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ModelMismatchError(f"probe array has shape {q.shape}; gallery uses {dim}-d templates")
    if not np.all(np.isfinite(q)):
        raise GalleryError("probe template has non-finite values (NaN or infinity)")
    return q


def privacy_updates(path: str, meta: dict[str, str], empty: bool, key: GalleryKey | None,
                    transform: CancelableTransform | None, *, encrypt_hint: str) -> dict[str, str]:
    """Check ``key`` and ``transform`` against a gallery's ``meta``; the meta entries to record.

    ``meta`` is the gallery's key/value meta table, ``empty`` whether it holds no faces. A key or a
    transform is recorded (``encryption`` and ``key_check``, or ``transform``) only on a gallery
    with no faces; the returned dict holds those entries (empty when nothing is to change).
    ``encrypt_hint`` ends the message when a key is given for an unencrypted gallery that holds
    faces: the next step, which depends on the backend.

    Raises GalleryError (unknown encryption), GalleryKeyRequiredError, WrongGalleryKeyError,
    GalleryNotEncryptedError or TransformMismatchError.
    """
    updates: dict[str, str] = {}
    encryption = meta.get("encryption")
    if encryption is not None and encryption != CIPHER_ID:
        raise GalleryError(f"gallery {path} uses unknown encryption {encryption!r}")
    if encryption and key is None:
        raise GalleryKeyRequiredError(
            f"gallery {path} is encrypted: give its key (--key-file or FACEPRINT_GALLERY_KEY)")
    if encryption and key.fingerprint != meta.get("key_check"):
        raise WrongGalleryKeyError(
            f"gallery {path} is encrypted with another key (key check {meta.get('key_check')}, "
            f"given {key.fingerprint}); give the key file it was encrypted with")
    if not encryption and key is not None:
        if not empty:
            raise GalleryNotEncryptedError(f"gallery {path} {encrypt_hint}")
        updates.update(encryption=CIPHER_ID, key_check=key.fingerprint)
    stored = meta.get("transform")
    given = transform.id if transform is not None else None
    if stored != given and not (stored is None and empty):
        raise TransformMismatchError(
            f"gallery {path} stores templates under cancelable transform {stored or 'none'}, "
            f"not {given or 'none'}; " + ("drop --transform-key-file: it has no transform" if stored is None else
                                         "give the --transform-key-file and --transform-mode it was made with"))
    if stored is None and given is not None:
        updates["transform"] = given
    return updates
