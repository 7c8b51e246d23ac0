"""One-liners over a shared default :class:`~faceprint.engine.Engine` per profile.

    import faceprint
    faceprint.verify("a.jpg", "b.jpg").is_match
    faces = faceprint.detect("group.jpg")
    template = faceprint.embed("portrait.jpg")
"""

from __future__ import annotations

import functools

from .engine import Engine
from .pipeline.image_io import ImageInput
from .profiles import DEFAULT_PROFILE
from .types import Face, Template, Verification


@functools.lru_cache(maxsize=8)
def default_engine(profile: str = DEFAULT_PROFILE) -> Engine:
    """The process-wide engine for ``profile`` (models load on first use)."""
    return Engine(profile)


def detect(image: ImageInput, profile: str = DEFAULT_PROFILE) -> list[Face]:
    """Every face in ``image``, largest first, with quality scores."""
    return default_engine(profile).detect(image)


def embed(image: ImageInput, profile: str = DEFAULT_PROFILE) -> Template:
    """The template of the single face in ``image``."""
    return default_engine(profile).embed(image)


def verify(a: ImageInput | Template, b: ImageInput | Template, profile: str = DEFAULT_PROFILE) -> Verification:
    """Whether two images (or templates) show the same person, at FMR 1e-3."""
    return default_engine(profile).verify(a, b)


def similarity(a: Template, b: Template) -> float:
    """Cosine similarity of two templates of the same model."""
    return default_engine(_profile_of(a)).compare(a, b)


def _profile_of(template: Template) -> str:
    prefix, suffix = "faceprint-", "-v1"
    if template.model.startswith(prefix) and template.model.endswith(suffix):
        return template.model[len(prefix) : -len(suffix)]
    return DEFAULT_PROFILE
