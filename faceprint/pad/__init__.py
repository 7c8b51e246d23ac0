"""Presentation attack detection (liveness): is the face in front of the camera a live person?

Kept import-light: the names below are loaded from their modules on first use.
``PassiveLiveness`` and ``Liveness`` live in :mod:`faceprint.pad.passive` (single-image PAD).
"""

from __future__ import annotations

import importlib

_LAZY = {"Liveness": "passive", "PassiveLiveness": "passive",
         "ActiveLivenessSession": "active", "ActiveLivenessResult": "active"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
