"""From detected faces to templates: align for each embedder, embed (with test-time augmentation), fuse.

A :class:`Recognizer` holds one or more embedders with fusion weights. For each face it aligns a
crop per embedder (:mod:`faceprint.pipeline.align`) at each of the part's zooms, embeds the crops
and, where the part flips, their mirror images, sums the raw embeddings (test-time augmentation),
L2-normalises each model's embedding, and concatenates the blocks scaled by ``sqrt(weight)``. Every
crop one embedder needs for the faces of one call goes through it in one batch. Weights sum to one,
so the dot product of two fused templates is exactly the weighted sum of the per-model cosine
similarities: score-level fusion that still leaves one unit-length vector per face, searchable by
any vector index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.base import Embedder
from ..types import Face, Template
from .align import align_face

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionPart:
    """One embedder in a recognizer, its share of the fused similarity and its test-time augmentation.

    ``flip``: also embed each crop's mirror image (twice the embedder's cost); None takes the
    recognizer's (the profile's) setting. ``zooms``: the face's scale in each crop, relative to the
    embedder's template (1.0 = the template itself; 0.93 shows a little more around the face);
    every zoom costs one more crop (two with flip).
    """

    model: str
    weight: float
    flip: bool | None = None
    zooms: tuple[float, ...] = (1.0,)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def unit_rows(templates: np.ndarray) -> np.ndarray:
    """A float32 ``[n, d]`` copy of ``templates`` with unit-length rows; ValueError if not 2-D."""
    x = np.asarray(templates, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D [n, d] array of templates, got shape {x.shape}")
    return l2_normalize(x)


class Recognizer:
    """Turns faces into unit-length templates tagged ``model_id``."""

    def __init__(
        self,
        model_id: str,
        parts: Sequence[FusionPart],
        embedders: Sequence[Embedder],
        flip: bool = True,
    ) -> None:
        if len(parts) != len(embedders) or not parts:
            raise ValueError("a recognizer needs one embedder per fusion part")
        total = float(sum(p.weight for p in parts))
        self.model_id = model_id
        self.parts = [FusionPart(p.model, p.weight / total, flip if p.flip is None else p.flip, tuple(p.zooms))
                      for p in parts]
        self.embedders = list(embedders)
        self.flip = flip

    @property
    def dim(self) -> int:
        """Length of the fused template."""
        return int(sum(e.card.output_dim or 0 for e in self.embedders))

    def crops(self, faces: Sequence[Face], embedder: Embedder, zoom: float = 1.0) -> np.ndarray:
        """Aligned crops [n, h, w, 3] of ``faces`` for ``embedder``, the face scaled by ``zoom``
        about the centre of the embedder's template."""
        template = embedder.template
        if zoom != 1.0:
            centre = template.mean(axis=0)
            template = ((template - centre) * np.float32(zoom) + centre).astype(np.float32)
        return np.stack([align_face(f.image, f.landmarks, template, embedder.crop_size) for f in faces])

    def part_crops(self, index: int, faces: Sequence[Face]) -> np.ndarray:
        """Every crop part ``index`` embeds for ``faces``: [zooms * n, h, w, 3], zoom by zoom."""
        embedder = self.embedders[index]
        return np.concatenate([self.crops(faces, embedder, zoom) for zoom in self.parts[index].zooms])

    def part_embeddings(self, index: int, crops: np.ndarray) -> np.ndarray:
        """Unit-length embeddings [n, d] of part ``index`` from its :meth:`part_crops` [zooms * n, h, w, 3].

        The crops (and, where the part flips, their mirror images) go through the embedder in one
        batch; each face's raw embeddings are summed before normalising.
        """
        part = self.parts[index]
        batch = np.concatenate([crops, crops[:, :, ::-1]]) if part.flip else crops
        raw = self.embedders[index].embed_crops(batch)
        count = len(crops) // len(part.zooms)
        return l2_normalize(raw.reshape(-1, count, raw.shape[-1]).sum(axis=0))

    def fuse(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        """Fused unit-length templates [n, dim] from each part's unit-length embeddings [n, d_i]."""
        scaled = [b * np.float32(np.sqrt(part.weight)) for part, b in zip(self.parts, blocks, strict=True)]
        return l2_normalize(np.concatenate(scaled, axis=1))

    def embed(self, faces: Sequence[Face]) -> list[Template]:
        """One template per face, in order."""
        if not faces:
            return []
        for face in faces:
            if face.image is None:
                raise ValueError("a Face must carry its source image to be embedded")
        blocks = [self.part_embeddings(i, self.part_crops(i, faces)) for i in range(len(self.parts))]
        return [Template(vector=row, model=self.model_id) for row in self.fuse(blocks)]
