"""The typed records that flow through faceprint: faces, templates, and decisions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned face box in pixel coordinates of the source image.

    Boxes of detected faces are clipped to the image (:meth:`clipped`), so ``image[y:y+h, x:x+w]``
    (after rounding) is the visible part of the face; a face cut by the image edge keeps its
    landmarks where the detector placed them, which may be outside the image.
    """

    x: float
    y: float
    width: float
    height: float

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        """Box centre (x, y)."""
        return (self.x + self.width / 2.0, self.y + self.height / 2.0)

    def intersection(self, other: Box) -> float:
        """Area (square pixels) of the overlap of this box and ``other``; 0 when they do not overlap."""
        w = min(self.x + self.width, other.x + other.width) - max(self.x, other.x)
        h = min(self.y + self.height, other.y + other.height) - max(self.y, other.y)
        return w * h if w > 0 and h > 0 else 0.0

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other``, in [0, 1] (0 when they do not overlap)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self) -> list[float]:
        """[x, y, width, height], rounded to 0.1 px, for JSON output."""
        return [round(float(v), 1) for v in (self.x, self.y, self.width, self.height)]

    def clipped(self, width: float, height: float) -> Box:
        """This box cut to an image of ``width`` x ``height`` pixels (x and y in [0, width] and [0, height]).

        A box wholly outside the image becomes an empty box (width or height 0) on the nearest edge.
        """
        x0, y0 = min(max(self.x, 0.0), width), min(max(self.y, 0.0), height)
        x1 = min(max(self.x + self.width, x0), width)
        y1 = min(max(self.y + self.height, y0), height)
        return Box(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class LivenessCue:
    """A recapture cue that fired on a face (:mod:`faceprint.models.pad_cues`).

    ``name`` (``moire``, ``colour gamut``, ``washed out``, ``glare``), its ``value``, the ``limit``
    99% of live photos stay within, and ``text``, one sentence for people.
    """

    name: str
    value: float
    limit: float
    text: str

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"cue": self.name, "value": round(self.value, 4), "limit": self.limit, "text": self.text}


@dataclass(frozen=True)
class Liveness:
    """The passive PAD decision for one face (:class:`~faceprint.models.pad_passive.PassiveLiveness`).

    ``score`` is the probability (0-1) that the face is live (bona fide), ``is_live`` is
    ``score >= threshold``. ``attack_type`` is the attack the model finds more likely (``"print"``
    or ``"screen"``, given for every face; it matters when the face is rejected) and
    ``attack_probability`` its probability (0-1). ``context`` is how much image there is around the
    face, in face-box sizes (up to 4.0; below 1.5 the image is a tight crop and live faces are
    rejected more often). ``cues`` are the recapture cues that fired (checked on rejected faces
    only). ``judged`` is False when the check cannot judge the face (a greyscale image): then
    ``is_live`` is False and ``reason`` says why. ``reason`` says why the face was judged an attack
    or what limited the check (``None`` when live and nothing to report), ``model`` names the model.
    """

    score: float
    is_live: bool
    threshold: float
    reason: str | None
    model: str
    attack_type: str = "screen"
    attack_probability: float = 0.0
    context: float = 4.0
    cues: tuple[LivenessCue, ...] = ()
    judged: bool = True

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "score": round(self.score, 4),
            "is_live": self.is_live,
            "judged": self.judged,
            "threshold": round(self.threshold, 4),
            "attack_type": self.attack_type,
            "attack_probability": round(self.attack_probability, 4),
            "context": round(self.context, 2),
            "cues": [c.to_dict() for c in self.cues],
            "reason": self.reason,
            "model": self.model,
        }


@dataclass
class Face:
    """One detected face.

    ``box`` and ``landmarks`` are in pixels of the image as given (never of a turned copy).
    ``landmarks`` are five (x, y) points, in the order right eye, left eye (both as seen in the
    upright face: the subject's right eye is on the left), nose tip, right mouth corner, left mouth
    corner; they are not clipped to the image. ``orientation`` (0, 90, 180 or 270) is how many
    degrees clockwise the image must be turned for this face to be upright: 0 for an upright face,
    90 for a photo taken sideways and saved without an EXIF orientation (see
    :class:`faceprint.pipeline.detection.FaceFinder`). ``quality`` is in [0, 1]: see
    :mod:`faceprint.pipeline.quality`. ``image`` keeps a reference to the RGB image the face was found in,
    so it can be aligned and embedded without passing the image again (alignment turns the face
    upright whatever its ``orientation``).
    """

    box: Box
    landmarks: np.ndarray
    score: float
    quality: float = 1.0
    quality_reasons: tuple[str, ...] = ()
    orientation: int = 0
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        """One short line: box rounded to 0.1 px, detector score, quality and its issues (no landmarks)."""
        x, y, w, h = self.box.as_list()
        issues = f", issues={','.join(self.quality_reasons)}" if self.quality_reasons else ""
        turned = f", orientation={self.orientation}" if self.orientation else ""
        return (f"Face(box=[{x:g}, {y:g}, {w:g}, {h:g}], score={self.score:.3f}, quality={self.quality:.2f}"
                f"{issues}{turned})")

    def to_dict(self) -> dict:
        """A JSON-ready description (the image is left out)."""
        return {
            "box": self.box.as_list(),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "score": round(float(self.score), 4),
            "quality": round(float(self.quality), 4),
            "quality_reasons": list(self.quality_reasons),
            "orientation": int(self.orientation),
        }


@dataclass(frozen=True)
class Template:
    """A unit-length face embedding, tagged with the id of the model that made it.

    Two templates can be compared only when their ``model`` ids are equal.
    """

    vector: np.ndarray
    model: str

    def __post_init__(self) -> None:
        vec = np.asarray(self.vector, dtype=np.float32).reshape(-1)
        object.__setattr__(self, "vector", vec)

    @property
    def dim(self) -> int:
        """Number of dimensions."""
        return int(self.vector.shape[0])

    def __repr__(self) -> str:
        """One short line: model id, dimension, L2 norm and the first three values (about 100 characters)."""
        head = ", ".join(f"{v:.4f}" for v in self.vector[:3])
        more = ", ..." if self.dim > 3 else ""
        norm = float(np.linalg.norm(self.vector))
        return f"Template(model={self.model!r}, dim={self.dim}, norm={norm:.3f}, vector=[{head}{more}])"


@dataclass(frozen=True)
class Verification:
    """The answer to "are these the same person?".

    ``threshold`` is the similarity at which the model was calibrated to give a false-match rate
    of ``fmr`` on impostor pairs; ``is_match`` is ``similarity >= threshold``. With a liveness
    check, ``liveness`` holds its result per face; when a face fails it, ``rejected`` says why,
    the faces are not compared (``similarity`` is NaN) and ``is_match`` is False.
    """

    similarity: float
    is_match: bool
    threshold: float
    fmr: float
    model: str
    liveness: tuple[Liveness, ...] = ()
    rejected: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready description (``similarity`` is null when a liveness check rejected a face)."""
        out = {
            "similarity": None if math.isnan(self.similarity) else round(self.similarity, 4),
            "is_match": self.is_match,
            "threshold": round(self.threshold, 4),
            "fmr": self.fmr,
            "model": self.model,
        }
        if self.liveness:
            out["liveness"] = [x.to_dict() for x in self.liveness]
            out["rejected"] = self.rejected
        return out


@dataclass(frozen=True)
class Candidate:
    """One enrolled person proposed as the identity of a probe face."""

    person: str
    person_id: int
    score: float

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {"person": self.person, "person_id": self.person_id, "score": round(self.score, 4)}


#: Cosine-similarity margin of a tie: different people whose scores for one probe face are within
#: it of the best score, all at or above the threshold, are tied (:func:`tied_names`). 0.01 is
#: well below the spread of mated scores of one person's different photos, and above the
#: differences that printed scores (3 or 4 decimals) can show.
TIE_MARGIN = 0.01


def tied_names(candidates: list[Candidate], threshold: float, margin: float = TIE_MARGIN) -> tuple[str, ...]:
    """Names of the candidates tied for first place, best first; ``()`` when there is no tie.

    ``candidates`` are one probe's, best first, one per person (as a gallery search returns
    them). A tie needs two or more candidates scoring at or above ``threshold`` and within
    ``margin`` of the best score.
    """
    if not candidates:
        return ()
    top = candidates[0].score
    names = tuple(c.person for c in candidates if c.score >= threshold and top - c.score <= margin)
    return names if len(names) > 1 else ()


@dataclass
class Identification:
    """The 1:N answer for one probe face: ranked candidates and the decision.

    ``person`` is the best candidate's name when its score reaches ``threshold``, else ``None``
    (unknown). ``skipped`` says why a detected face was not searched at all (it failed the quality
    gate, e.g. ``"low quality (profile, 0.21)"``); such a face has no candidates and no person.
    ``tied`` names the people tied for first place (:func:`tied_names`: two or more different
    people at or above the threshold within :data:`TIE_MARGIN` of each other, best first), e.g. the
    same face enrolled under two names; ``person`` is then the first of them and should not be
    trusted alone. Empty when there is no tie.
    """

    face: Face
    candidates: list[Candidate]
    threshold: float
    fmr: float
    liveness: Liveness | None = None
    skipped: str | None = None
    tied: tuple[str, ...] = ()

    @property
    def rejected(self) -> str | None:
        """Why the face was not matched (a failed liveness check), or None."""
        if self.liveness is None or self.liveness.is_live:
            return None
        return self.liveness.reason or "presentation attack suspected"

    @property
    def best(self) -> Candidate | None:
        """The top-ranked candidate, whatever its score."""
        return self.candidates[0] if self.candidates else None

    @property
    def person(self) -> str | None:
        """The identified person's name, or ``None`` when the face is unknown."""
        best = self.best
        if best is None or best.score < self.threshold or self.rejected or self.skipped:
            return None
        return best.person

    @property
    def is_known(self) -> bool:
        """True when the best candidate reaches the threshold."""
        return self.person is not None

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "face": self.face.to_dict(),
            "person": self.person,
            "candidates": [c.to_dict() for c in self.candidates],
            "tied": list(self.tied),
            "threshold": round(self.threshold, 4),
            "fmr": self.fmr,
            **({"liveness": self.liveness.to_dict(), "rejected": self.rejected} if self.liveness else {}),
            "skipped": self.skipped,
        }
