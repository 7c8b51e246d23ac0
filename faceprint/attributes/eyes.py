"""Eyes open or closed, from the eye aspect ratio of the 68 landmarks (Soukupova & Cech 2016).

The eye aspect ratio (EAR) of an eye's six points p1..p6 (dlib 36-41 and 42-47) is
(|p2-p6| + |p3-p5|) / (2 |p1-p4|): the lids' opening over the eye's width, about 0.3 for an open
eye and near 0 for a shut one, whatever the face's size. An eye counts as open when its EAR is at
least :data:`OPEN_EAR`; the face's eyes are open when both are. The threshold was chosen on real
open and closed eyes (the Yale faces' ``sleepy`` and ``wink`` photos against the other
conditions, subjects 1-7: the highest EAR that calls at most 5% of their open eyes closed) and checked
on subjects 8-15 (docs/attributes.md, ``benchmarks/pose_eyes.py``).

A single photo has no open-eye baseline for its person, so narrow eyes (and smiles that squeeze
them) read as less open than in a video, where :mod:`faceprint.pad.active` compares each frame
with the same face's own open-eye EAR. Turned far sideways, the far eye is hidden: the caller
leaves eyes unestimated beyond :data:`MAX_YAW` degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIGHT_EYE = slice(36, 42)  # the subject's right eye: on the image's left
LEFT_EYE = slice(42, 48)

#: An eye is open at or above this EAR (chosen on Yale subjects 1-7: see the module docstring).
OPEN_EAR = 0.203
#: Beyond this yaw (degrees) one eye is hidden and eye state is not estimated.
MAX_YAW = 45.0


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of six eye points p1..p6 (float [6, 2]): (|p2-p6| + |p3-p5|) / (2 |p1-p4|); about 0.3 open, near 0 shut."""
    eye = np.asarray(eye, dtype=np.float64)
    width = np.linalg.norm(eye[0] - eye[3])
    if width <= 0:
        return 0.0
    return float((np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / (2.0 * width))


@dataclass(frozen=True)
class EyeState:
    """Both eyes of one face: ``open`` is True when both eyes' EAR reach ``threshold``.

    ``right_ear`` and ``left_ear`` are the subject's right (image left) and left eye's aspect
    ratios; ``score`` (0-1) is how open the less open eye is, EAR / (2 x threshold) clipped, so
    0.5 is the decision point.
    """

    open: bool
    score: float
    right_ear: float
    left_ear: float
    threshold: float = OPEN_EAR

    @property
    def right_open(self) -> bool:
        """The subject's right eye (on the image's left) is open."""
        return self.right_ear >= self.threshold

    @property
    def left_open(self) -> bool:
        """The subject's left eye (on the image's right) is open."""
        return self.left_ear >= self.threshold

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"open": self.open, "score": round(self.score, 3), "right_open": self.right_open,
                "left_open": self.left_open, "right_ear": round(self.right_ear, 4),
                "left_ear": round(self.left_ear, 4), "threshold": self.threshold}


def eye_state(points: np.ndarray, threshold: float = OPEN_EAR) -> EyeState:
    """Open or closed eyes of a face from its 68 landmarks (float [68, 2]); ValueError for another shape."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"eye state needs 68 (x, y) landmarks, got an array of shape {p.shape}")
    right, left = eye_aspect_ratio(p[RIGHT_EYE]), eye_aspect_ratio(p[LEFT_EYE])
    least = min(right, left)
    return EyeState(open=least >= threshold, score=float(np.clip(least / (2.0 * threshold), 0.0, 1.0)),
                    right_ear=right, left_ear=left, threshold=threshold)
