"""Which face of an uploaded image a request means, and a small crop of it to show.

A request that needs one face (enrolment, verification) names it when the image holds several
usable faces: ``face`` = an index into ``POST /v1/detect``'s list for the same image (every
detected face, largest box first, ties in detector order: the same image always gives the same
order), ``box`` = ``x,y,w,h`` in pixels (the detected face whose box overlaps it most, at an IoU of
at least :data:`MIN_IOU`), or ``largest`` (the biggest usable face). Without any of them an image
with several usable faces is refused with :class:`~faceprint.errors.MultipleFacesError`.

Error messages name the upload by its file name (``label``), never by its bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..engine import Engine, no_usable_face_error
from ..errors import FaceprintError, MultipleFacesError, NoFaceError
from ..types import Box, Face

MIN_IOU = 0.5  # a ``box`` must overlap the detected face it names at least this much
THUMBNAIL_PX = 96  # longest side of an enrolment thumbnail
THUMBNAIL_MARGIN = 0.25  # fraction of the box added on every side of a thumbnail crop


class FaceChoiceError(FaceprintError):
    """A ``face``, ``box`` or ``largest`` field that is malformed or does not fit the images sent."""

    code = "bad_request"


@dataclass(frozen=True)
class FaceChoice:
    """How a request names the face to use in one image; all unset means "the one usable face"."""

    index: int | None = None
    box: Box | None = None
    largest: bool = False


def _where(faces: Sequence[Face], indices: Sequence[int]) -> str:
    return ", ".join(f"face {i} at {faces[i].box.as_list()}" for i in indices)


def choose_face(engine: Engine, faces: Sequence[Face], label: str, choice: FaceChoice) -> Face:
    """The face ``choice`` names among ``faces`` (as ``engine.detect`` gives them) of the image ``label``.

    Raises NoFaceError when there is no usable face, the index is out of range, no detected face
    overlaps the box enough, or the named face fails the quality gate; MultipleFacesError when
    several faces are usable and the choice names none of them.
    """
    usable = [i for i, f in enumerate(faces) if engine.gate.passes(f)]
    if choice.index is not None or choice.box is not None:
        if choice.index is not None:
            if choice.index >= len(faces):
                raise NoFaceError(f"{label}: no face {choice.index}: {len(faces)} face(s) detected in this image "
                                  f"(indices 0..{len(faces) - 1} in POST /v1/detect's list)" if faces else
                                  f"{label}: no face {choice.index}: no face detected in this image")
            index = choice.index
        else:
            overlaps = [choice.box.iou(f.box) for f in faces]
            index = int(np.argmax(overlaps)) if overlaps else -1
            best = overlaps[index] if overlaps else 0.0
            if best < MIN_IOU:
                raise NoFaceError(f"{label}: no detected face matches box {choice.box.as_list()} (best overlap "
                                  f"IoU {best:.2f} < {MIN_IOU}); take a box from POST /v1/detect")
        reason = engine.skip_reason(faces[index])
        if reason is not None:
            raise NoFaceError(f"{label}: face {index} at {faces[index].box.as_list()} is not usable ({reason}); "
                              f"choose a usable face or another photo")
        return faces[index]
    if not usable:
        raise no_usable_face_error(label, faces)
    if len(usable) > 1 and not choice.largest:
        raise MultipleFacesError(
            f"{label}: {len(usable)} usable faces found where one is required ({_where(faces, usable)}); "
            f"name one with field 'face' (its index in POST /v1/detect's list) or 'box' (x,y,w,h), "
            f"or send largest=true")
    return faces[usable[0]]


def thumbnail(image: np.ndarray, face: Face, size: int = THUMBNAIL_PX) -> str:
    """A small JPEG crop of ``face`` (its box plus a margin) as a ``data:image/jpeg;base64,`` URL."""
    return "data:image/jpeg;base64," + base64.b64encode(crop_jpeg(image, face.box, size)).decode("ascii")


def crop_jpeg(image: np.ndarray, b: Box, size: int = THUMBNAIL_PX) -> bytes:
    """JPEG bytes of box ``b`` (plus :data:`THUMBNAIL_MARGIN` on every side) of an RGB image, at most ``size`` px."""
    mx, my = b.width * THUMBNAIL_MARGIN, b.height * THUMBNAIL_MARGIN
    x0, y0 = max(0, int(b.x - mx)), max(0, int(b.y - my))
    x1 = min(image.shape[1], int(np.ceil(b.x + b.width + mx)))
    y1 = min(image.shape[0], int(np.ceil(b.y + b.height + my)))
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        crop = image
    scale = size / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise FaceprintError("could not encode a thumbnail")
    return jpeg.tobytes()


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _per_image(fields: dict, name: str, count: int, single: bool) -> list:
    """Field ``name`` as one value per image (None where absent); ``single`` says a lone value is one entry."""
    value = fields.get(name)
    if value is None:
        return [None] * count
    values = [value] if single or not isinstance(value, list) else value
    if len(values) != count:
        raise FaceChoiceError(f"field {name!r} has {len(values)} value(s) for {count} image(s): give one per image, "
                              f"in the order of the images (empty for an image with one face)")
    return values


def _index(value: object, name: str) -> int | None:
    if _is_empty(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FaceChoiceError(f"field {name!r} must be a face index (0, 1, ...), got {value!r}")
    try:
        index = int(value)
    except ValueError:
        raise FaceChoiceError(f"field {name!r} must be a face index (0, 1, ...), got {value!r}") from None
    if index < 0:
        raise FaceChoiceError(f"field {name!r} must be 0 or more, got {index}")
    return index


def _box(value: object, name: str) -> Box | None:
    if _is_empty(value):
        return None
    parts = value.split(",") if isinstance(value, str) else value
    try:
        x, y, w, h = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise FaceChoiceError(f"field {name!r} must be x,y,w,h in pixels, got {value!r}") from None
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        raise FaceChoiceError(f"field {name!r} must have a positive width and height, got {value!r}")
    return Box(x, y, w, h)


def _flag(value: object, name: str) -> bool:
    if _is_empty(value) or value is False:
        return False
    if value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on")):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise FaceChoiceError(f"field {name!r} must be true or false, got {value!r}")


def choices(fields: dict, count: int, suffix: str = "") -> list[FaceChoice]:
    """One FaceChoice per image from the request fields ``face{suffix}``, ``box{suffix}`` and ``largest``.

    ``face`` and ``box`` hold one value per image (repeated multipart fields, or a JSON list; a
    lone value when there is one image), empty where the image has one usable face. Raises
    FaceChoiceError (HTTP 400) for a malformed value, a count that does not match the images, or
    an image given both a face and a box.
    """
    face_name, box_name = "face" + suffix, "box" + suffix
    box_value = fields.get(box_name)
    lone_box = isinstance(box_value, list) and len(box_value) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in box_value)
    indices = [_index(v, face_name) for v in _per_image(fields, face_name, count, single=False)]
    boxes = [_box(v, box_name) for v in _per_image(fields, box_name, count, single=lone_box)]
    largest = _flag(fields.get("largest"), "largest")
    out = []
    for i, (index, box) in enumerate(zip(indices, boxes, strict=True)):
        if index is not None and box is not None:
            raise FaceChoiceError(f"image {i}: give {face_name!r} or {box_name!r}, not both")
        out.append(FaceChoice(index=index, box=box, largest=largest))
    return out
