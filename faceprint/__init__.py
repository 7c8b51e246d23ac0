"""faceprint: offline face detection, verification and identification.

The main entry point is :class:`Engine`; :mod:`faceprint.api` gives one-liners.
"""

import importlib

from . import _compat
from ._version import __version__
from .api import detect, embed, similarity, verify
from .engine import Engine
from .errors import (
    FaceprintError,
    GalleryError,
    ImageDecodeError,
    ImageTooLargeError,
    ModelMismatchError,
    ModelUnavailableError,
    MultipleFacesError,
    NoFaceError,
    PersonNotFoundError,
    UnknownModelError,
    UnsupportedInputError,
)
from .gallery import Gallery
from .pipeline.image_io import load_image
from .types import Box, Candidate, Face, Identification, Template, Verification


__all__ = [
    "Box", "Candidate", "Engine", "Face", "FaceprintError", "Gallery", "GalleryError",
    "Identification", "ImageDecodeError", "ImageTooLargeError", "ModelMismatchError",
    "ModelUnavailableError", "MultipleFacesError", "NoFaceError", "PersonNotFoundError",
    "Template", "UnknownModelError", "UnsupportedInputError", "Verification", "detect", "embed",
    "load_image", "similarity", "verify",
]

# Old module paths (faceprint.image_io, faceprint.crypto ...) keep importing, with a warning, for one release.
_compat.install()


def __getattr__(name: str) -> object:
    """``faceprint.<old module>`` read as an attribute before anything imported it (see :mod:`faceprint._compat`)."""
    if f"{__name__}.{name}" in _compat.MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
