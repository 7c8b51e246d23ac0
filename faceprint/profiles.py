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
import os
from dataclasses import dataclass, field
from importlib import resources

from .errors import UnknownModelError
from .matching.thresholds import interpolated_threshold
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
        return interpolated_threshold(self.thresholds, fmr, f"profile '{self.name}'")

    def flips(self, part: FusionPart) -> bool:
        """Whether ``part`` embeds mirror images too (its own setting, else the profile's)."""
        return self.flip if part.flip is None else part.flip

    @property
    def fingerprint(self) -> str:
        """A short hash of what shapes the templates (embedders, weights, flip, zooms): not thresholds."""
        parts = [(p.model, round(p.weight, 6)) if p.flip is None and p.zooms == (1.0,)
                 else (p.model, round(p.weight, 6), self.flips(p), list(p.zooms)) for p in self.parts]
        recipe = json.dumps([self.model_id, parts, self.flip])
        return hashlib.sha1(recipe.encode()).hexdigest()[:10]

    @property
    def augmentation(self) -> str:
        """How each embedder is run, for tables: ``sface(flip) + dlib-int8(flip, zooms 0.93/1/1.07)``."""
        def one(p: FusionPart) -> str:
            extra = (["flip"] if self.flips(p) else []) + (
                [f"zooms {'/'.join(f'{z:g}' for z in p.zooms)}"] if p.zooms != (1.0,) else [])
            return f"{p.model}({', '.join(extra)})" if extra else p.model
        return " + ".join(one(p) for p in self.parts)

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "name": self.name,
            "model_id": self.model_id,
            "embedders": {p.model: round(p.weight, 4) for p in self.parts},
            "flip": self.flip,
            "augmentation": self.augmentation,
            "thresholds": {f"{k:g}": round(v, 4) for k, v in sorted(self.thresholds.items())},
            "calibrated_on": self.calibrated_on,
            "description": self.description,
        }


@functools.lru_cache(maxsize=1)
def _calibration() -> dict:
    text = resources.files("faceprint").joinpath("calibration.json").read_text()
    return json.loads(text)


@dataclass(frozen=True)
class _Recipe:
    """A built-in profile before calibration: its template id, embedders and description.

    ``replaced_by``: for a previous version kept so that its galleries stay usable, the profile
    that replaced it (such a profile is not offered for a gallery it did not make).
    """

    model_id: str
    parts: tuple[FusionPart, ...]
    flip: bool
    description: str
    replaced_by: str = ""


def _builtin(name: str, recipe: _Recipe) -> Profile:
    entry = _calibration().get(recipe.model_id, {})
    weights = entry.get("weights", {})
    return Profile(
        name=name,
        model_id=recipe.model_id,
        parts=tuple(
            FusionPart(p.model, w, p.flip, p.zooms) for p in recipe.parts
            if (w := float(weights.get(p.model, p.weight))) > 0
        ),
        flip=recipe.flip,
        thresholds={float(k): float(v) for k, v in entry.get("thresholds", {}).items()},
        calibrated_on=entry.get("calibrated_on", ""),
        description=recipe.description,
    )


# Embedders of each built-in profile. The "accurate" fusion weights given here are overridden by
# the ones scripts/calibrate.py chose on LFW View 1 DevTrain and wrote to calibration.json. A
# profile whose templates change gets a new template id (``-v2``...): galleries made by the old
# one are refused, naming the previous profile kept under PREVIOUS.
_BUILTIN: dict[str, _Recipe] = {
    "accurate": _Recipe(
        "faceprint-accurate-v2",
        (FusionPart("sface", 0.22), FusionPart("dlib-int8", 0.78, zooms=(0.93, 1.0, 1.07))),
        True,
        "YuNet + SFace with flip and dlib ResNet (int8) with flip at three zooms, fused at score level (default)",
    ),
    "fast": _Recipe("faceprint-fast-v1", (FusionPart("sface", 1.0),), False, "YuNet + SFace, single pass"),
    "sface": _Recipe("faceprint-sface-v1", (FusionPart("sface", 1.0),), True, "YuNet + SFace with flip"),
    "facenet": _Recipe("faceprint-facenet-v1", (FusionPart("facenet", 1.0),), True, "YuNet + FaceNet CASIA with flip"),
    "dlib": _Recipe("faceprint-dlib-v1", (FusionPart("dlib", 1.0),), True, "YuNet + dlib ResNet with flip"),
}
#: Previous versions of built-in profiles, kept so that their galleries stay usable until re-enrolled.
PREVIOUS: dict[str, _Recipe] = {
    "accurate-v1": _Recipe(
        "faceprint-accurate-v1",
        (FusionPart("sface", 0.5), FusionPart("dlib", 0.5)),
        True,
        "the 'accurate' profile until faceprint-accurate-v2: YuNet + SFace and dlib ResNet with flip",
        replaced_by="accurate",
    ),
}
DEFAULT_PROFILE = "accurate"
_USER: dict[str, Profile] = {}


def names() -> list[str]:
    """Names of every current profile, built-in first (previous versions, :data:`PREVIOUS`, are not listed)."""
    return list(_BUILTIN) + sorted(_USER)


def get(name: str = DEFAULT_PROFILE) -> Profile:
    """The profile called ``name``, current or previous (UnknownModelError if there is none)."""
    if name in _USER:
        return _USER[name]
    recipe = _BUILTIN.get(name) or PREVIOUS.get(name)
    if recipe is None:
        raise UnknownModelError(f"unknown profile '{name}'; choose one of: {', '.join(names())}")
    return _builtin(name, recipe)


def reenrol_hint(model_id: str) -> str | None:
    """What to do with a gallery of templates made by ``model_id`` when a newer profile replaced it.

    None when ``model_id`` is not a previous built-in profile's. The text names the profile that
    replaced it, the command that re-enrols, and the ``--model`` that keeps the gallery usable.
    """
    for name, recipe in PREVIOUS.items():
        if recipe.model_id == model_id:
            current = _BUILTIN[recipe.replaced_by].model_id
            return (f"its templates ({model_id}) were made by the previous '{recipe.replaced_by}' profile, which "
                    f"faceprint replaced by {current} (more accurate, faster); they cannot be compared with "
                    f"{current} templates. Re-enrol its people into a new gallery from their photos "
                    f"(faceprint enroll --tree PHOTOS --gallery NEW.db; see 'Re-enrolling after a profile "
                    f"change' in docs), or keep using this gallery with --model {name}")
    return None


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
