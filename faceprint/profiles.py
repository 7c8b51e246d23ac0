"""Recognition profiles: which embedders, fused how, and the calibrated decision thresholds.

A profile names a complete recognition configuration. Its ``model_id`` tags every template it
makes, so a gallery built by one profile can never be searched with another. Thresholds (cosine
similarity at a target false-match rate) live in ``calibration.json`` beside this file, written by
``scripts/calibrate.py`` from impostor pairs of LFW View 1 DevTrain people only, so DevTest
figures stay unbiased.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources

from .errors import FaceprintError, UnknownModelError
from .models import registry
from .models.onnx_embedder import OnnxEmbedder, OnnxEmbedderSpec, card_for, read_specs
from .pipeline.embedding import FusionPart

DEFAULT_FMR = 1e-3


@dataclass(frozen=True)
class Profile:
    """A named recognition configuration with its calibrated thresholds (FMR -> cosine)."""

    name: str
    model_id: str
    parts: tuple[FusionPart, ...]
    flip: bool = True
    thresholds: dict[float, float] = field(default_factory=dict)
    calibrated_on: str = ""
    description: str = ""

    @property
    def dim(self) -> int:
        """Length of this profile's fused template, from its embedders' model cards."""
        from .models import registry

        return int(sum(registry.card(part.model).output_dim or 0 for part in self.parts))

    def threshold(self, fmr: float = DEFAULT_FMR) -> float:
        """The similarity threshold calibrated for false-match rate ``fmr``.

        Between calibrated points the threshold is interpolated linearly in log(FMR); outside
        them it is an error, because extrapolating an FMR is a guess.
        """
        if not self.thresholds:
            raise FaceprintError(
                f"profile '{self.name}' has no calibrated thresholds: pass an explicit threshold"
            )
        if fmr in self.thresholds:
            return self.thresholds[fmr]
        points = sorted(self.thresholds.items())
        if not points[0][0] <= fmr <= points[-1][0]:
            raise FaceprintError(
                f"FMR {fmr:g} is outside the calibrated range "
                f"{points[0][0]:g}..{points[-1][0]:g} of profile '{self.name}'"
            )
        for (f0, t0), (f1, t1) in zip(points, points[1:]):
            if f0 <= fmr <= f1:
                w = (math.log(fmr) - math.log(f0)) / (math.log(f1) - math.log(f0))
                return t0 + w * (t1 - t0)
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def fingerprint(self) -> str:
        """A short hash of what shapes the templates (embedders, weights, flip): not thresholds."""
        recipe = json.dumps([self.model_id, [(p.model, round(p.weight, 6)) for p in self.parts], self.flip])
        return hashlib.sha1(recipe.encode()).hexdigest()[:10]

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "name": self.name,
            "model_id": self.model_id,
            "embedders": {p.model: round(p.weight, 4) for p in self.parts},
            "flip": self.flip,
            "thresholds": {f"{k:g}": round(v, 4) for k, v in sorted(self.thresholds.items())},
            "calibrated_on": self.calibrated_on,
            "description": self.description,
        }


@functools.lru_cache(maxsize=1)
def _calibration() -> dict:
    text = resources.files("faceprint").joinpath("calibration.json").read_text()
    return json.loads(text)


def _builtin(name: str, parts: tuple[FusionPart, ...], flip: bool, description: str) -> Profile:
    model_id = f"faceprint-{name}-v1"
    entry = _calibration().get(model_id, {})
    weights = entry.get("weights", {})
    return Profile(
        name=name,
        model_id=model_id,
        parts=tuple(
            FusionPart(p.model, w) for p in parts if (w := float(weights.get(p.model, p.weight))) > 0
        ),
        flip=flip,
        thresholds={float(k): float(v) for k, v in entry.get("thresholds", {}).items()},
        calibrated_on=entry.get("calibrated_on", ""),
        description=description,
    )


# Embedders of each built-in profile. The "accurate" fusion weights given here are overridden by
# the ones scripts/calibrate.py chose on LFW View 1 DevTrain and wrote to calibration.json.
_BUILTIN_PARTS: dict[str, tuple[tuple[FusionPart, ...], bool, str]] = {
    "accurate": (
        (FusionPart("sface", 0.5), FusionPart("dlib", 0.5)),
        True,
        "YuNet + SFace and dlib ResNet with flip, fused at score level (default)",
    ),
    "fast": ((FusionPart("sface", 1.0),), False, "YuNet + SFace, single pass"),
    "sface": ((FusionPart("sface", 1.0),), True, "YuNet + SFace with flip"),
    "facenet": ((FusionPart("facenet", 1.0),), True, "YuNet + FaceNet CASIA with flip"),
    "dlib": ((FusionPart("dlib", 1.0),), True, "YuNet + dlib ResNet with flip"),
}
DEFAULT_PROFILE = "accurate"
_USER: dict[str, Profile] = {}


def names() -> list[str]:
    """Names of every profile, built-in first."""
    return list(_BUILTIN_PARTS) + sorted(_USER)


def get(name: str = DEFAULT_PROFILE) -> Profile:
    """The profile called ``name`` (UnknownModelError if there is none)."""
    if name in _USER:
        return _USER[name]
    if name not in _BUILTIN_PARTS:
        raise UnknownModelError(f"unknown profile '{name}'; choose one of: {', '.join(names())}")
    parts, flip, description = _BUILTIN_PARTS[name]
    return _builtin(name, parts, flip, description)


def register_onnx(spec: OnnxEmbedderSpec, flip: bool = True) -> Profile:
    """Register a user's ONNX embedder as a model and as a single-model profile of the same name."""
    registry.register(card_for(spec), lambda: OnnxEmbedder(spec))
    profile = Profile(
        name=spec.name,
        model_id=f"user-{spec.name}",
        parts=(FusionPart(spec.name, 1.0),),
        flip=flip,
        thresholds=dict(spec.thresholds),
        calibrated_on="user-supplied" if spec.thresholds else "",
        description=f"YuNet + user ONNX model {spec.name}",
    )
    _USER[spec.name] = profile
    return profile


def register_model_config(path: str | os.PathLike | None) -> None:
    """Register every user ONNX embedder of the JSON spec file at ``path`` (``--model-config``); None: nothing."""
    for spec in read_specs(path) if path else []:
        register_onnx(spec)
