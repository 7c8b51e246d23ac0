"""Collections: named galleries in the service's data folder, each bound to one recognition profile.

``DATA/collections/<name>/collection.json`` holds the settings (profile, whether uploaded images
are kept, when it was made); ``gallery.sqlite`` beside it is the gallery, which also holds the
uploaded images of a collection that keeps them (encrypted with the templates when the service
has a key).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import FaceprintError
from ..gallery import Gallery
from ..matching.normalisation import ScoreNormaliser, fair_model_id
from ..privacy.crypto import GalleryKey
from ..profiles import Profile
from ..profiles import get as get_profile

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CollectionNotFoundError(FaceprintError):
    """No collection by that name."""

    code = "collection_not_found"


class CollectionExistsError(FaceprintError):
    """A collection by that name already exists."""

    code = "collection_exists"


class InvalidCollectionError(FaceprintError):
    """A collection name or setting that is not allowed."""

    code = "invalid_collection"


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's settings."""

    name: str
    profile: str
    model: str
    keep_images: bool
    created_at: str

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return asdict(self)


def collection_model(profile: str, fair: bool = False) -> tuple[Profile, str]:
    """The profile named ``profile`` and the model id of a new collection's gallery: fair-normalised when ``fair``.

    Raises UnknownModelError for an unknown profile and NormaliserMissingError when ``fair`` is
    asked of a profile that ships no fair score normaliser.
    """
    prof = get_profile(profile)
    if not fair:
        return prof, prof.model_id
    ScoreNormaliser.for_profile(prof.name, prof.model_id)
    return prof, fair_model_id(prof.model_id)


class Collections:
    """Create, list, open and delete collections under ``root``; galleries stay open once opened."""

    def __init__(self, root: str | os.PathLike, key: GalleryKey | None = None) -> None:
        self.root = Path(root)
        self.key = key
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[str, Gallery] = {}
        self._write_locks: dict[str, threading.Lock] = {}

    def _dir(self, name: str) -> Path:
        if not NAME.match(name or ""):
            raise InvalidCollectionError(
                f"invalid collection name {name!r}: 1-64 letters, digits, '_', '.', '-', not starting with a symbol")
        return self.root / name

    def create(self, name: str, profile: str, keep_images: bool = False, fair: bool = False) -> CollectionInfo:
        """Make a new, empty collection bound to ``profile`` (fair scores when ``fair``: :func:`collection_model`)."""
        folder = self._dir(name)
        prof, model = collection_model(profile, fair)  # UnknownModelError for a bad profile
        with self._lock:
            if (folder / "collection.json").exists():
                raise CollectionExistsError(f"collection {name!r} already exists")
            folder.mkdir(parents=True, exist_ok=True)
            info = CollectionInfo(name, prof.name, model, bool(keep_images),
                                  datetime.now(timezone.utc).isoformat(timespec="seconds"))
            Gallery(folder / "gallery.sqlite", model=model, dim=prof.dim, key=self.key).close()
            tmp = folder / "collection.json.tmp"
            tmp.write_text(json.dumps(info.to_dict(), indent=2))
            os.replace(tmp, folder / "collection.json")
        return info

    def info(self, name: str) -> CollectionInfo:
        """A collection's settings; :class:`CollectionNotFoundError` when there is none."""
        path = self._dir(name) / "collection.json"
        if not path.exists():
            raise CollectionNotFoundError(f"collection {name!r} not found")
        return CollectionInfo(**json.loads(path.read_text()))

    def names(self) -> list[str]:
        """Names of every collection, sorted."""
        return sorted(p.parent.name for p in self.root.glob("*/collection.json"))

    def gallery(self, name: str) -> Gallery:
        """The open gallery of collection ``name`` (opened on first use, then shared)."""
        info = self.info(name)
        with self._lock:
            if name not in self._open:
                self._open[name] = Gallery(self.root / name / "gallery.sqlite", model=info.model, key=self.key)
            return self._open[name]

    def delete(self, name: str) -> None:
        """Delete a collection and its gallery (with any kept images)."""
        self.info(name)
        with self._lock:
            gallery = self._open.pop(name, None)
            if gallery is not None:
                gallery.close()
            shutil.rmtree(self._dir(name))

    def write_lock(self, name: str) -> threading.Lock:
        """Collection ``name``'s write lock, held while an enrolment checks and writes (so its face ids are its own).

        A lock of this process: one service process owns a data folder.
        """
        with self._lock:
            return self._write_locks.setdefault(name, threading.Lock())

    def close(self) -> None:
        """Close every open gallery."""
        with self._lock:
            for gallery in self._open.values():
                gallery.close()
            self._open.clear()
