"""Read age, gender, expression, head pose, eye state and quality off detected faces.

    from faceprint.attributes import FaceAnalyzer
    analyzer = FaceAnalyzer()
    results = analyzer.analyze(faces, {"pose", "eyes"})   # faces from Engine.detect: one FaceAttributes each

Only the attributes asked for are computed, and only their models are loaded: ``{"quality"}``
costs nothing beyond detection, ``{"pose", "eyes"}`` one pass of dlib's 68-point predictor per
face (:mod:`faceprint.attributes.pose`, :mod:`faceprint.attributes.eyes`), ``age`` and
``gender`` one run of the age/gender network for all faces together, ``expression`` one run of
the expression network. The networks come from the model registry
(:mod:`faceprint.models.registry`: ``faceprint.models.age_gender`` and
``faceprint.models.expression``).

A face that cannot carry an attribute gets no value for it and a reason instead
(:attr:`FaceAttributes.not_estimated`): smaller than the model needs, blurred, too dark or turned
too far for the networks; too small for the landmarks; eyes of a blurred face or of one turned
beyond :data:`faceprint.attributes.eyes.MAX_YAW`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import ModelUnavailableError, UnknownAttributeError, UnknownModelError
from ..models import registry
from ..pipeline.detection import turn
from ..pipeline.quality import QualityGate
from ..types import Box, Face
from .eyes import MAX_YAW, eye_state
from .pose import head_pose
from .results import EXPRESSIONS, AgeEstimate, ExpressionEstimate, FaceAttributes, GenderEstimate, QualityReport

log = logging.getLogger(__name__)

#: Every attribute :meth:`FaceAnalyzer.analyze` can compute, in the order results list them.
ATTRIBUTES = ("age", "gender", "expression", "pose", "eyes", "quality")
#: Shortest face side (px) at which the 68 landmarks (pose, eyes) are computed.
LANDMARK_MIN_PX = 32.0
#: Shortest face side (px) at which eye state is read: an open eye is then about 3 px high.
EYES_MIN_PX = 48.0
#: Quality reasons (:mod:`faceprint.pipeline.quality`) that stop the networks, and what each says.
NETWORK_BLOCKERS = {"blurry": "face too blurred", "dark": "face too dark",
                    "profile": "face turned too far from the camera"}

#: (module under faceprint.models, class) of the network behind each attribute.
_NETWORKS = {"age": ("age_gender", "AgeGenderNet"), "gender": ("age_gender", "AgeGenderNet"),
             "expression": ("expression", "ExpressionNet")}


def parse_attributes(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The attribute names asked for, in :data:`ATTRIBUTES` order: ``None`` or ``"all"`` for all of them,
    else a comma-separated string (``"age,expression"``) or an iterable of names.

    Raises :class:`~faceprint.errors.UnknownAttributeError` for a name not in :data:`ATTRIBUTES`.
    """
    if value is None:
        return ATTRIBUTES
    names = [n.strip().lower() for n in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    if names == ["all"]:
        return ATTRIBUTES
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown or not names:
        raise UnknownAttributeError(f"unknown attribute(s) {', '.join(map(repr, unknown)) or '(none given)'}: "
                                    f"choose from {','.join(ATTRIBUTES)} (or all)")
    return tuple(a for a in ATTRIBUTES if a in names)


def load_network(module: str, cls: str):
    """The loaded network ``faceprint.models.<module>.<cls>`` from the registry (registered on first use).

    Raises :class:`~faceprint.errors.ModelUnavailableError` when this faceprint has no such model.
    """
    try:
        model_class = getattr(importlib.import_module(f"faceprint.models.{module}"), cls)
    except (ImportError, AttributeError) as exc:
        raise ModelUnavailableError(f"faceprint.models.{module}.{cls} is missing from this faceprint install: "
                                    f"reinstall faceprint ('faceprint doctor' lists every model)") from exc
    try:
        registry.card(model_class.card.name)
    except UnknownModelError:
        registry.register(model_class.card, model_class)
    return registry.load(model_class.card.name)


def upright_box(box: Box, angle: int, width: int, height: int) -> Box:
    """``box`` of a ``width`` x ``height`` image, in that image turned ``angle`` degrees clockwise."""
    x0, y0, x1, y1 = box.x, box.y, box.x + box.width, box.y + box.height
    if angle == 90:
        x0, y0, x1, y1 = height - y1, x0, height - y0, x1
    elif angle == 180:
        x0, y0, x1, y1 = width - x1, height - y1, width - x0, height - y0
    elif angle == 270:
        x0, y0, x1, y1 = y0, width - x1, y1, width - x0
    return Box(x0, y0, x1 - x0, y1 - y0)


class FaceAnalyzer:
    """Computes the asked-for attributes of detected faces; models load on first use and are shared.

    ``gate`` is the quality gate that decides :attr:`QualityReport.usable` (the engine's own).
    """

    def __init__(self, gate: QualityGate | None = None) -> None:
        self.gate = gate or QualityGate()

    def landmarks68(self, face: Face) -> np.ndarray:
        """The 68 dlib points (float [68, 2]) of ``face``, in pixels of its upright image.

        A face found in a turned photo (``orientation`` 90, 180, 270) is measured in the photo
        turned upright, so that pose angles are those of an upright face.
        """
        if face.image is None:
            raise ValueError("68-point landmarks need the face's image (a Face from Engine.detect)")
        height, width = face.image.shape[:2]
        image = turn(face.image, face.orientation)
        return registry.load_landmarker().landmarks(image, upright_box(face.box, face.orientation, width, height))

    def analyze(self, faces: Sequence[Face], attributes: str | Iterable[str] | None = None) -> list[FaceAttributes]:
        """One :class:`FaceAttributes` per face (same order) with the asked-for ``attributes`` (all when None).

        Faces need their image (``Face.image``, set by detection). Raises
        :class:`~faceprint.errors.UnknownAttributeError` for an unknown attribute name and
        :class:`~faceprint.errors.ModelUnavailableError` when a network asked for is not installed.
        """
        wanted = parse_attributes(attributes)
        if not faces:
            return []
        values: list[dict] = [{} for _ in faces]
        reasons: list[dict[str, str]] = [{} for _ in faces]
        points: list[np.ndarray | None] = [None] * len(faces)
        if "quality" in wanted:
            for v, face in zip(values, faces):
                v["quality"] = QualityReport(score=float(face.quality), reasons=tuple(face.quality_reasons),
                                             usable=self.gate.passes(face))
        if "pose" in wanted or "eyes" in wanted:
            self._landmark_attributes(faces, wanted, values, reasons, points)
        if "age" in wanted or "gender" in wanted:
            self._age_gender(faces, wanted, values, reasons)
        if "expression" in wanted:
            self._expression(faces, values, reasons)
        return [FaceAttributes(face=face, not_estimated={a: r[a] for a in wanted if a in r},
                               landmarks68=p, **v)
                for face, v, r, p in zip(faces, values, reasons, points)]

    def _landmark_attributes(self, faces, wanted, values, reasons, points) -> None:
        for i, face in enumerate(faces):
            side = min(face.box.width, face.box.height)
            if side < LANDMARK_MIN_PX:
                why = f"face too small ({side:.0f} px < {LANDMARK_MIN_PX:.0f} px)"
                reasons[i].update({a: why for a in ("pose", "eyes") if a in wanted})
                continue
            p = points[i] = self.landmarks68(face)
            height, width = face.image.shape[:2]
            size = (height, width) if face.orientation in (90, 270) else (width, height)
            pose = head_pose(p, size)
            if "pose" in wanted:
                values[i]["pose"] = pose
            if "eyes" not in wanted:
                continue
            if side < EYES_MIN_PX:
                reasons[i]["eyes"] = f"face too small ({side:.0f} px < {EYES_MIN_PX:.0f} px)"
            elif "blurry" in face.quality_reasons:
                reasons[i]["eyes"] = "face too blurred"
            elif abs(pose.yaw) > MAX_YAW:
                reasons[i]["eyes"] = f"face turned too far (yaw {pose.yaw:+.0f} degrees)"
            else:
                values[i]["eyes"] = eye_state(p)

    @staticmethod
    def _network_ready(faces, model, names, reasons) -> list[int]:
        """Indexes of the faces the network ``model`` may read; the others get a reason under each of ``names``."""
        ready = []
        minimum = float(getattr(model, "min_face_px", 0.0))
        for i, face in enumerate(faces):
            side = min(face.box.width, face.box.height)
            blockers = [NETWORK_BLOCKERS[r] for r in face.quality_reasons if r in NETWORK_BLOCKERS]
            if side < minimum:
                why = f"face too small ({side:.0f} px < {minimum:.0f} px)"
            elif blockers:
                why = blockers[0]
            else:
                ready.append(i)
                continue
            reasons[i].update({n: why for n in names})
        return ready

    def _age_gender(self, faces, wanted, values, reasons) -> None:
        model = load_network(*_NETWORKS["age"])
        names = [a for a in ("age", "gender") if a in wanted]
        ready = self._network_ready(faces, model, names, reasons)
        for idx, image in _by_image(faces, ready):
            out = model.predict(image, [faces[i] for i in idx])
            for j, i in enumerate(idx):
                if "age" in wanted:
                    values[i]["age"] = AgeEstimate(years=float(out.age[j]), low=float(out.age_low[j]),
                                                   high=float(out.age_high[j]))
                if "gender" in wanted:
                    p_female = float(out.p_female[j])
                    label = "female" if p_female >= 0.5 else "male"
                    values[i]["gender"] = GenderEstimate(label=label, confidence=max(p_female, 1.0 - p_female),
                                                         p_female=p_female)

    def _expression(self, faces, values, reasons) -> None:
        model = load_network(*_NETWORKS["expression"])
        ready = self._network_ready(faces, model, ["expression"], reasons)
        for idx, image in _by_image(faces, ready):
            probabilities = np.asarray(model.predict(image, [faces[i] for i in idx]), dtype=np.float64)
            for j, i in enumerate(idx):
                values[i]["expression"] = expression_estimate(probabilities[j])


def expression_estimate(probabilities: Sequence[float]) -> ExpressionEstimate:
    """The :class:`ExpressionEstimate` of one probability vector in :data:`EXPRESSIONS` order."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != (len(EXPRESSIONS),):
        raise ValueError(f"expected {len(EXPRESSIONS)} expression probabilities, got shape {p.shape}")
    return ExpressionEstimate(label=EXPRESSIONS[int(np.argmax(p))],
                              probabilities={name: float(v) for name, v in zip(EXPRESSIONS, p)})


def _by_image(faces: Sequence[Face], indexes: Sequence[int]) -> list[tuple[list[int], np.ndarray]]:
    """``indexes`` grouped by the image their face was found in (usually one group), with that image."""
    groups: dict[int, tuple[list[int], np.ndarray]] = {}
    for i in indexes:
        image = faces[i].image
        if image is None:
            raise ValueError("face attributes need the face's image (a Face from Engine.detect)")
        groups.setdefault(id(image), ([], image))[0].append(i)
    return list(groups.values())
