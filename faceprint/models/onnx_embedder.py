"""A user's own ONNX face embedder (ArcFace, SFace, AdaFace...), registered from a JSON spec.

A spec says where the file is and how the network wants its input; nothing is downloaded::

    {"name": "arcface-r50", "path": "/models/w600k_r50.onnx", "input_size": [112, 112],
     "mean": 127.5, "std": 127.5, "channel_order": "RGB", "output_dim": 512,
     "licence": "non-commercial research", "source": "insightface buffalo_l",
     "published_accuracy": "LFW 99.83%", "thresholds": {"0.001": 0.32}}

``input_size`` must be square multiples of 112 (ArcFace alignment is scaled to fit) unless
``template`` gives the five landmark positions explicitly. ``thresholds`` (FMR -> cosine) are
optional: without them verification needs an explicit threshold.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelConfigError, ModelUnavailableError
from .base import ARCFACE_112, Embedder, ModelCard
from .onnx_runtime import OnnxModel


@dataclass(frozen=True)
class OnnxEmbedderSpec:
    """How to run one ONNX embedder; see the module docstring for the JSON form."""

    name: str
    path: str
    input_size: tuple[int, int] = (112, 112)
    mean: float = 127.5
    std: float = 127.5
    channel_order: str = "RGB"
    output_dim: int | None = None
    licence: str = "unknown (user-supplied)"
    source: str = "user-supplied file"
    published_accuracy: str = "unknown"
    template: tuple[tuple[float, float], ...] | None = None
    thresholds: dict[float, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, base_dir: str | os.PathLike | None = None) -> OnnxEmbedderSpec:
        """Build a spec from parsed JSON; a relative ``path`` is taken relative to ``base_dir``."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown keys in model spec '{data.get('name')}': {', '.join(unknown)}")
        if "name" not in known or "path" not in known:
            raise ValueError("a model spec needs at least 'name' and 'path'")
        path = Path(known["path"])
        if not path.is_absolute() and base_dir is not None:
            known["path"] = str(Path(base_dir) / path)
        if "input_size" in known:
            known["input_size"] = tuple(int(v) for v in known["input_size"])
        if known.get("template") is not None:
            known["template"] = tuple(tuple(float(c) for c in p) for p in known["template"])
        known["thresholds"] = {float(k): float(v) for k, v in known.get("thresholds", {}).items()}
        if known.get("channel_order", "RGB") not in ("RGB", "BGR"):
            raise ValueError("channel_order must be 'RGB' or 'BGR'")
        return cls(**known)


def read_specs(path: str | os.PathLike) -> list[OnnxEmbedderSpec]:
    """Specs from a JSON file holding one spec object or a list of them.

    Raises :class:`~faceprint.errors.ModelConfigError` for a file that cannot be read, is not JSON or
    holds an invalid spec, naming the file and the problem.
    """
    try:
        data = json.loads(Path(path).read_text())
        items = data if isinstance(data, list) else [data]
        return [OnnxEmbedderSpec.from_dict(item, base_dir=Path(path).parent) for item in items]
    except OSError as exc:
        raise ModelConfigError(f"model config {path}: cannot read it ({exc.strerror or exc}); check the path") from None
    except (ValueError, TypeError, AttributeError) as exc:  # bad JSON, a spec that is not an object, bad values
        raise ModelConfigError(f"model config {path}: not a valid embedder spec ({exc}); see the README, "
                               f"'Your own ONNX embedder', for the JSON form") from None


class OnnxEmbedder(Embedder):
    """Runs an :class:`OnnxEmbedderSpec` with ONNX Runtime."""

    def __init__(self, spec: OnnxEmbedderSpec, threads: int | None = None) -> None:
        if not Path(spec.path).is_file():
            raise ModelUnavailableError(f"model '{spec.name}': no such file {spec.path}; fix its 'path' in the "
                                        f"model config (--model-config)")
        self.spec = spec
        self._model = OnnxModel(spec.path, threads=threads)
        self.crop_size = (int(spec.input_size[0]), int(spec.input_size[1]))
        if spec.template is not None:
            self.template = np.asarray(spec.template, dtype=np.float32)
        else:
            self.template = (ARCFACE_112 * np.array(self.crop_size, np.float32) / 112.0).astype(np.float32)
        self.card = card_for(spec)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw embeddings for RGB uint8 crops [n, h, w, 3]."""
        if self.spec.channel_order == "BGR":
            crops = crops[..., ::-1]
        blob = (crops.astype(np.float32).transpose(0, 3, 1, 2) - self.spec.mean) / self.spec.std
        out = self._model.run(np.ascontiguousarray(blob))
        return out.reshape(out.shape[0], -1)


def card_for(spec: OnnxEmbedderSpec) -> ModelCard:
    """The model card a spec describes."""
    return ModelCard(
        name=spec.name,
        kind="embedder",
        summary=f"user ONNX embedder {Path(spec.path).name}",
        source=spec.source,
        licence=spec.licence,
        published_accuracy=spec.published_accuracy,
        input_spec=f"{spec.input_size[0]}x{spec.input_size[1]} {spec.channel_order}, (x - {spec.mean}) / {spec.std}",
        output_dim=spec.output_dim,
        weights=(spec.path,),
    )
