"""Face detection with the quality gate applied: the first two steps of the pipeline."""

from __future__ import annotations

import logging

import numpy as np

from .models.base import Detector
from .quality import QualityGate
from .types import Face

log = logging.getLogger(__name__)


class FaceFinder:
    """Runs a detector model and scores every face with a :class:`QualityGate`.

    ``find(image)`` returns every detected face, quality-assessed, largest first;
    ``find(image, usable_only=True)`` keeps only faces that pass the gate.
    """

    def __init__(self, detector: Detector, gate: QualityGate | None = None) -> None:
        self.detector = detector
        self.gate = gate or QualityGate()

    def find(self, image: np.ndarray, *, usable_only: bool = False) -> list[Face]:
        """Faces in an RGB uint8 image, largest box first."""
        faces = [self.gate.assess(f) for f in self.detector.detect(image)]
        faces.sort(key=lambda f: f.box.area, reverse=True)
        if usable_only:
            kept = [f for f in faces if self.gate.passes(f)]
            if len(kept) < len(faces):
                log.debug("quality gate dropped %d of %d faces", len(faces) - len(kept), len(faces))
            return kept
        return faces


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
