"""Passive presentation attack detection (PAD) on one image: is this face live, or a replay or print?

    from faceprint.models.pad_passive import PassiveLiveness
    pad = PassiveLiveness()                      # MiniFASNetV2 + V1SE, bundled ONNX files
    result = pad.check(image, face)              # image: the whole RGB uint8 frame; face: a detected Face or None
    result.score, result.is_live, result.attack_type, result.reason     # a faceprint.types.Liveness

The score is the probability of "live" from Silent-Face's two MiniFASNet networks
(:mod:`faceprint.models.minifasnet`), averaged. Each looks at the face with context around it (2.7x
and 4.0x the box), so ``check`` needs the whole image and the face box, not an aligned crop.
:data:`THRESHOLD` was chosen on LFW View 1 DevTrain live photos and synthetic attacks only, and
reported on held-out real data (docs/liveness.md; ``benchmarks/pad.py``). ``check`` is a pure
function of its inputs: no detection, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import UnsupportedInputError
from ..types import Box, Face, Liveness
from .base import ModelCard
from .minifasnet import CLASSES, LIVE, MiniFASNet, MiniFASNetV1SE, MiniFASNetV2
from .pad_cues import recapture_cues

#: Operating threshold on the live score: the highest threshold that rejects at most 10% of the live
#: LFW View 1 DevTrain photos (3,443 images of 2,132 people); benchmarks/pad.py reproduces it.
THRESHOLD = 0.4806
#: Context (image around the face, in face-box widths) below which the image is called a tight crop:
#: live photos cropped to 1.2x the box pass 75% of the time, at 1.5x 93%, with full context 98% (docs/liveness.md).
TIGHT_CONTEXT = 1.5
NO_FACE_REASON = "no face given: the whole image was used as the face box"
#: Mean spread between the colour channels over the face (:func:`colour_spread`) below which the image is
#: greyscale: 0 in every Yale and ORL image, up to 6.4 in black-and-white photos scanned to colour JPEG (LFW,
#: UTKFace), 9.0 and more in colour photos (docs/liveness.md; benchmarks/pad.py --tight-grey-only).
GREY_SPREAD = 8.0
#: Why a greyscale face is not judged (benchmarks/pad.py --tight-grey-only; docs/liveness.md).
GREY_REASON = ("greyscale image: not judged (the networks were trained on colour photos; on greyscale live photos and "
               "greyscale attacks they do no better than chance, EER 45%, and reject 99% of live faces); "
               "give a colour camera frame")
MODEL_NAME = "minifasnet-v2+v1se"
#: The networks averaged, in this order.
NETWORKS: tuple[type[MiniFASNet], ...] = (MiniFASNetV2, MiniFASNetV1SE)


CARD = ModelCard(
    name="pad-passive",
    kind="liveness",
    summary="passive PAD: MiniFASNetV2 (box x2.7) and MiniFASNetV1SE (box x4.0) averaged; attack type print/screen",
    source="the two bundled Silent-Face networks (minifasnet-v2, minifasnet-v1se)",
    licence="Apache-2.0",
    published_accuracy="none published; measured here: docs/liveness.md (real replay set, Silent-Face samples, "
                       "LFW, UTKFace, synthetic attacks)",
    input_spec="the whole RGB image and one detected face box (no aligned crop); the whole image without a box",
    weights=MiniFASNetV2.card.weights + MiniFASNetV1SE.card.weights,
)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
               else type(image).__name__)
        raise UnsupportedInputError(f"a liveness check needs an RGB uint8 image (H x W x 3), got {got}; "
                                    "load the file with faceprint.load_image")
    if min(image.shape[:2]) < 8:
        raise UnsupportedInputError(f"image of {image.shape[1]}x{image.shape[0]} px is too small for a liveness "
                                    "check; give the whole camera frame")


def is_greyscale(image: np.ndarray, box: Box | None) -> bool:
    """True when the RGB uint8 ``image`` has no colour over ``box`` (the whole image for None):
    its :func:`colour_spread` is below :data:`GREY_SPREAD`."""
    return colour_spread(image, box) < GREY_SPREAD


def colour_spread(image: np.ndarray, box: Box | None) -> float:
    """Mean of max - min over the three channels (0-255) of the RGB uint8 ``image`` within ``box`` (the whole
    image for None, or when the box holds under 2x2 pixels), on a 64x64 nearest-neighbour sample."""
    if box is not None:
        x0, y0 = int(max(0, box.x)), int(max(0, box.y))
        x1, y1 = int(min(image.shape[1], box.x + box.width)), int(min(image.shape[0], box.y + box.height))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            image = image[y0:y1, x0:x1]
    pixels = cv2.resize(image, (64, 64), interpolation=cv2.INTER_NEAREST)  # 4,096 pixels are plenty for a mean
    spread = cv2.max(cv2.max(pixels[..., 0], pixels[..., 1]), pixels[..., 2]).astype(np.float32) - cv2.min(
        cv2.min(pixels[..., 0], pixels[..., 1]), pixels[..., 2])
    return float(spread.mean())


class PassiveLiveness:
    """Single-image liveness from the two bundled MiniFASNet networks.

    ``threshold`` overrides :data:`THRESHOLD`. Raises
    :class:`~faceprint.errors.ModelUnavailableError` when a network file is missing or damaged.
    """

    card = CARD

    def __init__(self, *, threshold: float | None = None, networks: tuple[MiniFASNet, ...] | None = None) -> None:
        self.networks = networks if networks is not None else tuple(cls() for cls in NETWORKS)
        self.threshold = THRESHOLD if threshold is None else float(threshold)
        self.model = MODEL_NAME

    def probabilities(self, image: np.ndarray, box: Box) -> tuple[np.ndarray, float]:
        """The networks' mean softmax [print, live, screen] for ``box`` in ``image``, and the context (box sizes)."""
        crops = [net.crop(image, box) for net in self.networks]
        probs = np.mean([net.probabilities(c) for net, c in zip(self.networks, crops)], axis=0)
        return probs, max(c.scale for c in crops)

    def check(self, image: np.ndarray, face: Face | None) -> Liveness:
        """Liveness of ``face`` in the whole RGB uint8 ``image`` (the whole image as the box when ``face`` is None).

        A greyscale face (:func:`is_greyscale`) is not judged: ``judged`` is False, ``is_live`` False (a
        gate that requires a live face fails closed) and ``reason`` says why. Raises
        :class:`~faceprint.errors.UnsupportedInputError` for anything but an RGB uint8 array.
        """
        _check_image(image)
        height, width = image.shape[:2]
        box = face.box.clipped(width, height) if face is not None else None
        if box is None or box.width < 2 or box.height < 2:
            box, whole = Box(0.0, 0.0, float(width), float(height)), True
        else:
            whole = False
        probs, context = self.probabilities(image, box)
        score = float(probs[LIVE])
        attack = 0 if probs[0] > probs[2] else 2
        judged = not is_greyscale(image, None if whole else box)
        is_live = judged and score >= self.threshold
        notes, cues = [], ()
        if not judged:
            notes.append(GREY_REASON)
        elif not is_live:
            cues = recapture_cues(image, None if whole else box)
            notes.append(f"{CLASSES[attack]} attack suspected (live {score:.2f} < {self.threshold:.2f}; "
                         f"{CLASSES[attack]} {probs[attack]:.2f})")
            if cues:
                notes.append("cues: " + ", ".join(c.name for c in cues))
        if whole:
            notes.append(NO_FACE_REASON)
        if context < TIGHT_CONTEXT:
            notes.append(f"tight crop: {context:.1f}x the face box in the image, the check expects 2.7-4x; give the "
                         "whole camera frame (tight crops of live faces are rejected more often)")
        return Liveness(score=score, is_live=is_live, threshold=self.threshold, reason="; ".join(notes) or None,
                        model=self.model, attack_type=CLASSES[attack], attack_probability=float(probs[attack]),
                        context=context, cues=cues, judged=judged)


def pad_face(faces: list[Face]) -> Face | None:
    """The face PAD should judge among detected ``faces``: the largest, or None when there is none."""
    if not faces:
        return None
    return max(faces, key=lambda f: f.box.area)


@dataclass
class TrackLiveness:
    """The passive score of one face track aggregated over its frames.

    ``score`` is the mean live probability of the ``frames`` checked (0-1), ``is_live`` is
    ``score >= threshold`` and ``attack_type`` the attack class most often named on the frames that
    failed on their own (None when none failed); :meth:`to_dict` adds ``live_frames``, how many
    frames passed on their own, and ``not_judged_frames``, how many were greyscale (not judged, so
    failed). A track with no judged frame is not live.
    """

    threshold: float = THRESHOLD
    scores: list[float] = field(default_factory=list)
    failed_types: list[str] = field(default_factory=list)
    not_judged: int = 0

    def add(self, result: Liveness) -> None:
        """Count one frame's result."""
        self.scores.append(result.score)
        if not result.judged:
            self.not_judged += 1
        elif not result.is_live:
            self.failed_types.append(result.attack_type)

    @property
    def frames(self) -> int:
        """Frames checked."""
        return len(self.scores)

    @property
    def score(self) -> float | None:
        """Mean live probability over the frames (None before the first)."""
        return float(np.mean(self.scores)) if self.scores else None

    @property
    def is_live(self) -> bool | None:
        """Mean score at or above the threshold (None before the first frame)."""
        if not self.scores:
            return None
        return self.not_judged < self.frames and self.score >= self.threshold

    @property
    def attack_type(self) -> str | None:
        """The attack type named most often on failed frames."""
        if not self.failed_types:
            return None
        return max(sorted(set(self.failed_types)), key=self.failed_types.count)  # a tie: the first by name

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"score": None if self.score is None else round(self.score, 4), "is_live": self.is_live,
                "threshold": round(self.threshold, 4), "frames": self.frames,
                "live_frames": self.frames - len(self.failed_types) - self.not_judged,
                "not_judged_frames": self.not_judged, "attack_type": self.attack_type}
