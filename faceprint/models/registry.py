"""The one registry of models: name -> class, with a per-process cache of loaded instances.

Adding a model is adding one file with a :class:`~faceprint.models.base.Detector` or
:class:`~faceprint.models.base.Embedder` subclass (or any class with a ``card``) and one entry in
``_BUILTIN`` below; a user's own
ONNX embedder is registered at run time with :func:`register_onnx_embedder`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import UnknownModelError
from .age_gender import AgeGenderNet
from .base import Detector, Embedder, ModelCard
from .dlib_landmarks import DlibLandmarker
from .dlib_resnet import DlibInt8Embedder, DlibResNetEmbedder
from .expression import ExpressionNet
from .facenet import FaceNetEmbedder
from .minifasnet import MiniFASNetV1SE, MiniFASNetV2
from .morph_detector import MorphDetector
from .pad_passive import PassiveLiveness
from .sface import SFaceEmbedder
from .yunet import YuNetDetector

# Detectors and embedders, then the models used beside recognition (landmarks, liveness, morphs, attributes).
_BUILTIN: dict[str, type] = {
    cls.card.name: cls for cls in (YuNetDetector, SFaceEmbedder, FaceNetEmbedder, DlibResNetEmbedder, DlibInt8Embedder,
                                   DlibLandmarker, MiniFASNetV2, MiniFASNetV1SE, PassiveLiveness, MorphDetector,
                                   ExpressionNet, AgeGenderNet)
}
_FACTORIES: dict[str, tuple[ModelCard, Callable[[], Detector | Embedder]]] = {
    name: (cls.card, cls) for name, cls in _BUILTIN.items()
}
_INSTANCES: dict[str, Detector | Embedder] = {}
_LOCK = threading.Lock()


def register(card: ModelCard, factory: Callable[[], Detector | Embedder]) -> None:
    """Add (or replace) a model under ``card.name``; ``factory()`` builds a loaded instance."""
    with _LOCK:
        _FACTORIES[card.name] = (card, factory)
        _INSTANCES.pop(card.name, None)


def cards() -> list[ModelCard]:
    """Cards of every registered model, detectors first."""
    return sorted((card for card, _ in _FACTORIES.values()), key=lambda c: (c.kind, c.name))


def card(name: str) -> ModelCard:
    """The card of model ``name`` (UnknownModelError if not registered)."""
    if name not in _FACTORIES:
        raise UnknownModelError(f"unknown model '{name}'; registered: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name][0]


def load(name: str) -> Detector | Embedder:
    """The loaded model ``name``, built once per process and then shared."""
    card(name)
    with _LOCK:
        if name not in _INSTANCES:
            _INSTANCES[name] = _FACTORIES[name][1]()
        return _INSTANCES[name]


def load_detector(name: str) -> Detector:
    """Like :func:`load`, checking that the model is a detector."""
    model = load(name)
    if not isinstance(model, Detector):
        raise UnknownModelError(f"model '{name}' is not a detector")
    return model


def load_landmarker() -> DlibLandmarker:
    """The process-wide 68-point landmarker (a :class:`DlibLandmarker`), loaded on first use (about 1 s)."""
    return load(DlibLandmarker.card.name)


def load_embedder(name: str) -> Embedder:
    """Like :func:`load`, checking that the model is an embedder."""
    model = load(name)
    if not isinstance(model, Embedder):
        raise UnknownModelError(f"model '{name}' is not an embedder")
    return model
