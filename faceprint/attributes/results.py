"""What faceprint reads off a face besides its identity: typed results of :func:`faceprint.attributes.analyze_faces`.

Every attribute is ``None`` when it was not asked for, and also when it was asked for but could
not be estimated; in that case :attr:`FaceAttributes.not_estimated` says why (``"face too
small (18 px < 32 px)"``, ``"face too blurred"`` ...) instead of a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import Face
from .eyes import EyeState
from .pose import HeadPose

#: The seven FER2013 expression classes, in the order of every probability vector.
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@dataclass(frozen=True)
class AgeEstimate:
    """Apparent age in years (``years``), with a range (``low`` .. ``high``, years) the model gives for it."""

    years: float
    low: float
    high: float

    def to_dict(self) -> dict:
        """A JSON-ready description, years rounded to 0.1."""
        return {"years": round(self.years, 1), "low": round(self.low, 1), "high": round(self.high, 1)}


@dataclass(frozen=True)
class GenderEstimate:
    """Apparent gender as a face-appearance estimate, not a person's identity: ``label`` is
    ``"female"`` or ``"male"``, ``confidence`` (0.5-1) the model's probability for that label and
    ``p_female`` (0-1) its probability of ``"female"``."""

    label: str
    confidence: float
    p_female: float

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"label": self.label, "confidence": round(self.confidence, 3), "p_female": round(self.p_female, 3)}


@dataclass(frozen=True)
class ExpressionEstimate:
    """Facial expression: ``label`` is the most probable of :data:`EXPRESSIONS`, ``probabilities``
    maps each of them to its probability (summing to 1)."""

    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        """Probability of ``label`` (0-1)."""
        return self.probabilities[self.label]

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"label": self.label, "confidence": round(self.confidence, 3),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}


@dataclass(frozen=True)
class QualityReport:
    """The recognition quality of the face (:mod:`faceprint.pipeline.quality`): ``score`` in [0, 1],
    the ``reasons`` that pulled it down, and whether it is ``usable`` for recognition (passes the gate)."""

    score: float
    reasons: tuple[str, ...]
    usable: bool

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"score": round(self.score, 4), "reasons": list(self.reasons), "usable": self.usable}


@dataclass(frozen=True)
class FaceAttributes:
    """Everything asked of one detected face.

    ``face`` is the detection (box, landmarks, quality). Each attribute is None when not asked for
    or not estimated; ``not_estimated`` maps an asked-for attribute name that has no value to the
    reason (``{"expression": "face too small (20 px < 32 px)"}``). ``landmarks68`` are the 68 dlib
    points (float [68, 2], image pixels) when pose or eyes were asked for, else None.
    """

    face: Face
    age: AgeEstimate | None = None
    gender: GenderEstimate | None = None
    expression: ExpressionEstimate | None = None
    pose: HeadPose | None = None
    eyes: EyeState | None = None
    quality: QualityReport | None = None
    not_estimated: dict[str, str] = field(default_factory=dict)
    landmarks68: object = field(default=None, repr=False, compare=False)

    def notes(self) -> list[str]:
        """Short lines for tables and image labels: one per estimated attribute group, then one per
        attribute not estimated, e.g. ``["age 34 (28-41), female 0.93", "happy 0.81",
        "yaw -12 pitch +3 roll +1", "eyes open", "quality 0.87", "expression: face too blurred"]``."""
        lines = []
        if self.age is not None or self.gender is not None:
            age = f"age {self.age.years:.0f} ({self.age.low:.0f}-{self.age.high:.0f})" if self.age else ""
            gender = f"{self.gender.label} {self.gender.confidence:.2f}" if self.gender else ""
            lines.append(", ".join(x for x in (age, gender) if x))
        if self.expression is not None:
            lines.append(f"{self.expression.label} {self.expression.confidence:.2f}")
        if self.pose is not None:
            lines.append(f"yaw {self.pose.yaw:+.0f} pitch {self.pose.pitch:+.0f} roll {self.pose.roll:+.0f}")
        if self.eyes is not None:
            lines.append("eyes open" if self.eyes.open else "eyes closed")
        if self.quality is not None:
            lines.append(f"quality {self.quality.score:.2f}" + (f" ({','.join(self.quality.reasons)})"
                                                                 if self.quality.reasons else ""))
        lines += [f"{name}: {why}" for name, why in self.not_estimated.items()]
        return lines

    def summary(self) -> str:
        """:meth:`notes` on one line, joined by ``"; "`` (``"-"`` when there are none)."""
        return "; ".join(self.notes()) or "-"

    def to_dict(self) -> dict:
        """A JSON-ready description: the face, each asked-for attribute (null when not estimated) and the reasons."""
        out: dict = {"face": self.face.to_dict()}
        for name in ("age", "gender", "expression", "pose", "eyes", "quality"):
            value = getattr(self, name)
            if value is not None or name in self.not_estimated:
                out[name] = value.to_dict() if value is not None else None
        out["not_estimated"] = dict(self.not_estimated)
        return out


@dataclass(frozen=True)
class Analysis:
    """The attributes of every face in one image, largest face first.

    ``faces`` is empty when no face was found, and ``reason`` then says so; ``attributes`` are
    the attribute names that were asked for, ``image_size`` is (width, height) in pixels.
    """

    faces: list[FaceAttributes]
    attributes: tuple[str, ...]
    image_size: tuple[int, int]
    reason: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"attributes": list(self.attributes), "image_size": list(self.image_size),
                "faces": [f.to_dict() for f in self.faces], "reason": self.reason}
