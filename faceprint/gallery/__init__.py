"""Galleries: the enrolled people and their templates, searched 1:N.

:func:`open_gallery` opens the store a location names: a SQLite file (:class:`Gallery`,
:mod:`faceprint.gallery.sqlite`, optionally encrypted and with cancelable templates) or a
``postgresql://`` URL (:class:`~faceprint.gallery.postgres.PostgresGallery`, needs the ``postgres``
extra). Both implement :class:`GalleryStore`. Beside them: the records both return
(:mod:`faceprint.gallery.records`), the search indexes (:mod:`faceprint.gallery.index`) and person
names (:mod:`faceprint.gallery.names`).
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import GalleryError, PersonNotFoundError
from ..privacy.cancelable import CancelableTransform
from ..privacy.crypto import GalleryKey
from ..types import Candidate, Template
from .records import EnrolmentItem, FaceRecord, PersonRecord
from .sqlite import SCHEMA_VERSION, Gallery

__all__ = ["SCHEMA_VERSION", "EnrolmentItem", "FaceRecord", "Gallery", "GalleryStore", "PersonRecord",
           "is_postgres_url", "open_gallery", "stored_digests"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@runtime_checkable
class GalleryStore(Protocol):
    """What every gallery backend offers: :class:`Gallery` (SQLite) and ``postgres.PostgresGallery``."""

    path: str

    @property
    def model(self) -> str: ...
    @property
    def dim(self) -> int: ...
    def enroll(self, person: str, items: Sequence[EnrolmentItem], metadata: dict | None = None) -> PersonRecord: ...
    def enroll_many(self, batch: Sequence[tuple[str, Sequence[EnrolmentItem]]]) -> list[PersonRecord]: ...
    def delete_person(self, person: str) -> int: ...
    def delete_face(self, face_id: int) -> None: ...
    def persons(self) -> list[PersonRecord]: ...
    def get_person(self, name: str) -> PersonRecord: ...
    def faces(self, person: str) -> list[FaceRecord]: ...
    def __len__(self) -> int: ...
    def face_count(self) -> int: ...
    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def search(self, template: Template, k: int = 5) -> list[Candidate]: ...
    def search_many(self, vectors: np.ndarray, k: int = 5) -> list[list[Candidate]]: ...
    def close(self) -> None: ...


def stored_digests(store: GalleryStore, person: str) -> set[str]:
    """The image digests (``FaceRecord.sha256``) of ``person``'s faces in ``store``; empty for an unknown person."""
    try:
        return {f.sha256 for f in store.faces(person) if f.sha256}
    except PersonNotFoundError:
        return set()


def is_postgres_url(location) -> bool:
    """True for ``postgresql://`` and ``postgres://`` connection URLs."""
    return isinstance(location, str) and location.lower().startswith(_POSTGRES_SCHEMES)


def open_gallery(location, model: str | None = None, dim: int | None = None, *,
                 key: GalleryKey | None = None, transform: CancelableTransform | None = None) -> GalleryStore:
    """Open (or create, given ``model`` and ``dim``) the gallery at ``location``.

    A ``postgresql://`` or ``postgres://`` URL opens a PostgreSQL + pgvector gallery (needs
    ``psycopg``); anything else is a SQLite gallery file path. ``key`` (encryption at rest) and
    ``transform`` (cancelable templates) work with both.
    """
    if is_postgres_url(location):
        from .postgres import PostgresGallery

        return PostgresGallery(location, model=model, dim=dim, key=key, transform=transform)
    return Gallery(location, model=model, dim=dim, key=key, transform=transform)
