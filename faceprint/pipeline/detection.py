"""Face detection with the quality gate applied: the first two steps of the pipeline.

A photo taken sideways and saved without an EXIF orientation tag reaches the detector turned by
90, 180 or 270 degrees. YuNet then misses the real face or scores it low, and finds "faces" in
the background that pass the quality gate (a window, a shoulder), while it scores upside-down
faces almost as high as upright ones (up to 0.91). :class:`FaceFinder` therefore looks at the
other three orientations whenever no face reaches :data:`SURE_SCORE`, and turns the image only
when another orientation shows a face scored at least :data:`TURN_SCORE` and :data:`TURN_MARGIN`
above the best upright one. Scores of every detection count, usable or not: a sure profile face
shows which way is up as well as a frontal one. Measured with YuNet on 184 real photos (LFW,
pairs-small, knn-small, video stills, Yale; ``benchmarks/detection_scale.py --orientation``), each
also turned 90, 180 and 270 degrees: no upright photo is turned (16 of them have no sure face and
are searched), 551 of the 552 turned photos are put right and one is left as given; none of 92
frames of the Hamilton clip is turned (its best turned "face" scores 0.87). Video pipelines pass
``any_orientation=False``: a camera does not turn its frames.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..models.base import Detector
from ..types import Box, Face
from .quality import QualityGate

log = logging.getLogger(__name__)

#: A face scored at least this by the detector settles the orientation of the image
#: (YuNet scores upright faces 0.93 typically, upside-down and sideways ones up to 0.91).
SURE_SCORE = 0.92
#: The least score of the best face in another orientation for the image to be turned ...
TURN_SCORE = 0.88
#: ... and how much it must beat the best upright face by.
TURN_MARGIN = 0.03
#: Long side (px) of the shrunk copies compared by the orientation search.
SEARCH_SIDE = 640
#: Clockwise turns (degrees) tried, upright first.
ORIENTATIONS = (0, 90, 180, 270)
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turn(image: np.ndarray, angle: int) -> np.ndarray:
    """``image`` turned ``angle`` degrees clockwise (0, 90, 180 or 270); ValueError otherwise."""
    if angle == 0:
        return image
    if angle not in _ROTATE:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {angle}")
    return cv2.rotate(image, _ROTATE[angle])


def unturn_points(points: np.ndarray, angle: int, width: int, height: int) -> np.ndarray:
    """Points [n, 2] (x, y) of an image turned ``angle`` degrees clockwise, in the unturned image.

    ``width`` x ``height`` is the size of the unturned image; coordinates are continuous pixels
    (0 at the left/top edge of the first pixel).
    """
    p = np.asarray(points, np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    if angle == 90:
        out = np.stack([y, height - x], axis=1)
    elif angle == 180:
        out = np.stack([width - x, height - y], axis=1)
    elif angle == 270:
        out = np.stack([width - y, x], axis=1)
    else:
        out = p
    return out.astype(np.float32)


def unturn_face(face: Face, angle: int, image: np.ndarray) -> Face:
    """``face`` found in ``image`` turned ``angle`` degrees clockwise, in the coordinates of ``image``."""
    height, width = image.shape[:2]
    b = face.box
    corners = unturn_points(np.array([[b.x, b.y], [b.x + b.width, b.y + b.height]]), angle, width, height)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    box = Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0)).clipped(width, height)
    return Face(box=box, landmarks=unturn_points(face.landmarks, angle, width, height), score=face.score,
                orientation=angle, image=image)


class FaceFinder:
    """Runs a detector model and scores every face with a :class:`QualityGate`.

    ``find(image)`` returns every detected face, quality-assessed, largest first;
    ``find(image, usable_only=True)`` keeps only faces that pass the gate. When no face is sure (score below :data:`SURE_SCORE`), the image is also searched turned by 90, 180 and
    270 degrees, and the faces of the best orientation are returned (each with its
    ``orientation``; boxes and landmarks in the coordinates of the image as given).
    """

    def __init__(self, detector: Detector, gate: QualityGate | None = None) -> None:
        self.detector = detector
        self.gate = gate or QualityGate()

    def find(self, image: np.ndarray, *, usable_only: bool = False, any_orientation: bool = True,
             small_faces: bool = True) -> list[Face]:
        """Faces in an RGB uint8 image (H x W x 3), largest box first.

        ``any_orientation=False`` looks at the image as given only (video frames: an empty frame
        would otherwise cost four searches). ``small_faces=False`` lets the detector skip its extra
        passes for faces too small for its main pass (see :meth:`Detector.detect`).
        """
        faces = self._assessed(image, 0, small_faces)
        if any_orientation and _best_score(faces) < SURE_SCORE:
            angle = self._orientation(image, faces)
            if angle:
                log.info("no sure upright face; faces are upright with the image turned %d degrees clockwise", angle)
                faces = self._assessed(image, angle, small_faces)
        faces.sort(key=lambda f: f.box.area, reverse=True)
        if usable_only:
            kept = [f for f in faces if self.gate.passes(f)]
            if len(kept) < len(faces):
                log.debug("quality gate dropped %d of %d faces", len(faces) - len(kept), len(faces))
            return kept
        return faces

    def _assessed(self, image: np.ndarray, angle: int, small_faces: bool) -> list[Face]:
        """Faces of ``image`` turned ``angle`` degrees clockwise, mapped back and quality-assessed."""
        found = self.detector.detect(turn(image, angle), small_faces=small_faces)
        if angle:
            found = [unturn_face(f, angle, image) for f in found]
        return [self.gate.assess(f) for f in found]

    def _orientation(self, image: np.ndarray, upright: list[Face]) -> int:
        """The clockwise turn (degrees) that puts the faces of ``image`` upright; 0 unless another
        orientation's best face scores at least :data:`TURN_SCORE` and :data:`TURN_MARGIN`
        more than the upright one.

        Compared on copies shrunk to :data:`SEARCH_SIDE` px (about 10 ms a turn); ``upright``
        are the faces already found in ``image`` as given.
        """
        scale = SEARCH_SIDE / max(image.shape[:2])
        if scale < 1.0:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            evidence = {0: self._search_evidence(small, 0)}
        else:  # the image is already small: its upright faces are the upright evidence
            small = image
            evidence = {0: _best_score(upright)}
        for angle in ORIENTATIONS[1:]:
            evidence[angle] = self._search_evidence(small, angle)
        log.debug("best detector score per clockwise turn: %s", evidence)
        angle = max(ORIENTATIONS, key=lambda a: evidence[a])
        if angle and evidence[angle] >= TURN_SCORE and evidence[angle] >= evidence[0] + TURN_MARGIN:
            return angle
        return 0

    def _search_evidence(self, small: np.ndarray, angle: int) -> float:
        """The best face's score in ``small`` turned ``angle`` degrees clockwise."""
        return _best_score(self.detector.detect(turn(small, angle), small_faces=False))


def _best_score(faces: list[Face]) -> float:
    """The best detector score among ``faces`` (0 when there are none)."""
    return max((f.score for f in faces), default=0.0)


def central_face(faces: list[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face a centred portrait is about: nearest the image centre, larger faces preferred.

    Used where an image is known to show one subject among possible bystanders (LFW's protocol).
    """
    if not faces:
        return None
    centre = np.array([image_shape[1] / 2.0, image_shape[0] / 2.0])

    def cost(face: Face) -> float:
        return float(np.linalg.norm(np.array(face.box.center) - centre) - 0.5 * np.sqrt(face.box.area))

    return min(faces, key=cost)
