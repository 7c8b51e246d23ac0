"""Every exception faceprint raises on purpose.

All derive from :class:`FaceprintError`, so ``except FaceprintError`` catches any documented
failure; the CLI turns each into a one-line message and exit code 2.
"""

from __future__ import annotations


class FaceprintError(Exception):
    """Base class of every documented faceprint error."""

    code = "faceprint_error"


class ImageDecodeError(FaceprintError):
    """The input is empty, truncated, corrupt or not an image at all."""

    code = "image_decode_error"


class ImageTooLargeError(FaceprintError):
    """The image's pixel count (or byte size) is over the limit: a possible decompression bomb."""

    code = "image_too_large"


class UnsupportedInputError(FaceprintError):
    """The input is of a type faceprint cannot read as an image (not a path, bytes, array or PIL image)."""

    code = "unsupported_input"


class NoFaceError(FaceprintError):
    """No face passed detection and the quality gate where one was required."""

    code = "no_face"


class MultipleFacesError(FaceprintError):
    """Several faces were found where exactly one is required (enrolment, verification)."""

    code = "multiple_faces"


class ModelMismatchError(FaceprintError):
    """Templates or a gallery made by one model were used with another.

    ``found`` is the model id of the templates or gallery that did not match, when known.
    """

    code = "model_mismatch"

    def __init__(self, message: str, *, found: str | None = None) -> None:
        super().__init__(message)
        self.found = found


class UnknownModelError(FaceprintError):
    """A model name that is not in the registry."""

    code = "unknown_model"


class UnknownAttributeError(FaceprintError):
    """A face attribute name that faceprint cannot compute (see faceprint.attributes.ATTRIBUTES)."""

    code = "unknown_attribute"


class ModelUnavailableError(FaceprintError):
    """A registered model whose weights or runtime package is not installed."""

    code = "model_unavailable"


class GalleryError(FaceprintError):
    """A gallery file that cannot be opened, is corrupt, or an operation on it that failed."""

    code = "gallery_error"


class PersonNotFoundError(GalleryError):
    """A person name or id that is not in the gallery."""

    code = "person_not_found"


class NotAFaceError(FaceprintError):
    """A template that does not look like it came from a face (the out-of-domain check)."""

    code = "not_a_face"


class MorphSuspectedError(FaceprintError):
    """An enrolment photo that the morph detector flags as a blend of two faces."""

    code = "morph_suspected"


class InvalidNameError(FaceprintError):
    """A person name that is empty, too long, or holds control or invisible characters (see faceprint.gallery.names)."""

    code = "invalid_name"


class DuplicateIdentityError(FaceprintError):
    """An enrolment face that already matches another enrolled person (at or above the duplicate threshold).

    ``person`` is the name being enrolled, ``other`` the person it matches and ``score`` their
    cosine similarity; enrol anyway with ``allow_duplicate`` (``--allow-duplicate``).
    """

    code = "duplicate_identity"

    def __init__(self, message: str, *, person: str = "", other: str = "", score: float = float("nan")) -> None:
        super().__init__(message)
        self.person, self.other, self.score = person, other, score


class ModelConfigError(FaceprintError):
    """A model config file (``--model-config``) that is missing, not JSON, or not a valid embedder spec."""

    code = "model_config"


class ExtraNotInstalledError(FaceprintError):
    """A feature whose optional part of faceprint (a pip extra, e.g. ``faceprint[service]``) is not installed.

    ``extra`` names the extra; the message gives the pip command that adds it.
    """

    code = "extra_not_installed"

    def __init__(self, message: str, *, extra: str = "") -> None:
        super().__init__(message)
        self.extra = extra


class OutputPathError(FaceprintError):
    """An output option (``--out``, ``--out-json`` ...) naming a place faceprint cannot write.

    Its folder is missing and cannot be created, it is a folder where a file is expected (or a
    file where a folder is), the file type has no image writer, or the place is not writable.
    Raised before any work starts; the message names the option and the path, and what to give.
    """

    code = "output_path"
