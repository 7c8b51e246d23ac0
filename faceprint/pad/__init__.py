"""Presentation attacks and their detection: is the face in front of the camera a live person?

- :mod:`~faceprint.pad.active`: active liveness on video (blink, turn, smile on request);
- :mod:`~faceprint.pad.attacks`: synthetic replay and print attacks (to measure the passive check);
- :mod:`~faceprint.pad.morph`: landmark-aligned morphs of two faces (to measure morphing attacks).

The single-image detectors are models, in the one model registry: passive liveness
(:class:`~faceprint.models.pad_passive.PassiveLiveness`, its decision a :class:`~faceprint.types.Liveness`)
and morph detection (:class:`~faceprint.models.morph_detector.MorphDetector`).

Kept import-light: the names below are loaded from their modules on first use.
"""

from __future__ import annotations

import importlib

_LAZY = {"Liveness": "faceprint.types", "PassiveLiveness": "faceprint.models.pad_passive",
         "ActiveLivenessSession": "faceprint.pad.active", "ActiveLivenessResult": "faceprint.pad.active"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
