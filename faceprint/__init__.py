"""faceprint: offline face detection, verification and identification.

The main entry point is :class:`Engine`; :mod:`faceprint.api` gives one-liners.
"""

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
