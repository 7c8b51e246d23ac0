"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks and a 3-D face model, by solvePnP.

Fourteen of dlib's 68 points (brow ends, eye corners, nose wings, mouth corners, lower lip, chin)
are matched to the same points of a generic 3-D head (:data:`MODEL_POINTS`, from the
anthropometric model of Martins & Batista, ISR Coimbra, as used by lincolnhard/head-pose-estimation)
and the head's rotation is found with OpenCV's SQPnP solver (Terzakis & Lourakis 2020) for a
pinhole camera whose focal length is the image's longer side and whose centre is the image centre
(a phone or webcam at its widest; the true lens is unknown, and a wrong focal length changes the
angles of a centred face by little).

Angles, in degrees, of the head relative to the camera (0, 0, 0 looks straight into the lens):

- ``yaw`` > 0: the subject turns towards their own left (the nose moves to the image's right);
- ``pitch`` > 0: the subject looks up (chin up);
- ``roll`` > 0: the head tilts clockwise as seen in the image (towards the subject's left
  shoulder).

A mirrored image therefore negates yaw and roll and keeps pitch; turning the image clockwise by
``a`` degrees adds ``a`` to roll. The generic model has no one's real proportions: a frontal face
reads within a few degrees of 0, and angles beyond about 60 degrees of yaw are out of reach of the
68-point predictor (one side of the face is hidden). Measured on real photos in docs/attributes.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: dlib 68-point indices used, in the order of :data:`MODEL_POINTS`.
MODEL_INDICES = (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8)

#: The same points on a generic head, in camera-like axes: x to the image's right, y down, z away
#: from the camera (the nose is nearest, so it has the most negative z). Units are about 1 cm.
MODEL_POINTS = -np.array([
    [6.825897, 6.760612, 4.402142],     # 17 brow, outer end (image left)
    [1.330353, 7.122144, 6.903745],     # 21 brow, inner end
    [-1.330353, 7.122144, 6.903745],    # 22 brow, inner end (image right)
    [-6.825897, 6.760612, 4.402142],    # 26 brow, outer end
    [5.311432, 5.485328, 3.987654],     # 36 eye, outer corner (image left)
    [1.789930, 5.393625, 4.413414],     # 39 eye, inner corner
    [-1.789930, 5.393625, 4.413414],    # 42 eye, inner corner (image right)
    [-5.311432, 5.485328, 3.987654],    # 45 eye, outer corner
    [2.005628, 1.409845, 6.165652],     # 31 nose wing (image left)
    [-2.005628, 1.409845, 6.165652],    # 35 nose wing
    [2.774015, -2.080775, 5.048531],    # 48 mouth corner (image left)
    [-2.774015, -2.080775, 5.048531],   # 54 mouth corner
    [0.000000, -3.116408, 6.097667],    # 57 lower lip, middle
    [0.000000, -7.415691, 4.070434],    # 8 chin
], dtype=np.float64)


@dataclass(frozen=True)
class HeadPose:
    """Head rotation relative to the camera, degrees: ``yaw`` (> 0 turned to the subject's left),
    ``pitch`` (> 0 looking up), ``roll`` (> 0 tilted clockwise in the image); see :mod:`faceprint.attributes.pose`."""

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict:
        """A JSON-ready description, degrees rounded to 0.1."""
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}


def camera_matrix(width: int, height: int) -> np.ndarray:
    """The assumed pinhole camera of a ``width`` x ``height`` image: focal length = longer side, centred."""
    f = float(max(width, height))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def euler_angles(rotation: np.ndarray) -> HeadPose:
    """Yaw, pitch and roll (degrees, conventions of this module) of a 3x3 model-to-camera rotation.

    The rotation is split as R = Rz(roll) @ Ry(-yaw) @ Rx(-pitch) in camera axes (x right, y down,
    z forward).
    """
    r = np.asarray(rotation, dtype=np.float64)
    about_y = math.asin(float(np.clip(-r[2, 0], -1.0, 1.0)))
    about_x = math.atan2(r[2, 1], r[2, 2])
    about_z = math.atan2(r[1, 0], r[0, 0])
    return HeadPose(yaw=-math.degrees(about_y), pitch=-math.degrees(about_x), roll=math.degrees(about_z))


def rotation_matrix(pose: HeadPose) -> np.ndarray:
    """The 3x3 model-to-camera rotation of ``pose`` (inverse of :func:`euler_angles`)."""
    y, p, r = (math.radians(v) for v in (-pose.yaw, -pose.pitch, pose.roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> HeadPose:
    """The head pose of a face from its 68 landmarks (float [68, 2], pixels of an upright image).

    ``image_size`` is the image's (width, height), which sets the assumed camera
    (:func:`camera_matrix`). Raises ValueError when ``points`` is not [68, 2] or the solver fails.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"head pose needs 68 (x, y) landmarks, got an array of shape {p.shape}")
    image_points = np.ascontiguousarray(p[list(MODEL_INDICES)])
    ok, rvec, _ = cv2.solvePnP(MODEL_POINTS, image_points, camera_matrix(*image_size), None,
                               flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise ValueError("head pose: the landmarks fit no head position")
    return euler_angles(cv2.Rodrigues(rvec)[0])
