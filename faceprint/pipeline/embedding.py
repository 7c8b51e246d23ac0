"""From detected faces to templates: align for each embedder, embed (with flip), fuse.

A :class:`Recognizer` holds one or more embedders with fusion weights. For each face it aligns a
crop per embedder (:mod:`faceprint.pipeline.align`), embeds the crop and, with test-time augmentation, its
mirror image (the two raw embeddings are summed), L2-normalises each model's embedding, and
concatenates the blocks scaled by ``sqrt(weight)``. Weights sum to one, so the dot product of two
fused templates is exactly the weighted sum of the per-model cosine similarities: score-level
fusion that still leaves one unit-length vector per face, searchable by any vector index.
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
    """One embedder in a recognizer and its share of the fused similarity."""

    model: str
    weight: float


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
        self.parts = [FusionPart(p.model, p.weight / total) for p in parts]
        self.embedders = list(embedders)
        self.flip = flip

    @property
    def dim(self) -> int:
        """Length of the fused template."""
        return int(sum(e.card.output_dim or 0 for e in self.embedders))

    def crops(self, faces: Sequence[Face], embedder: Embedder) -> np.ndarray:
        """Aligned crops [n, h, w, 3] of ``faces`` for ``embedder``."""
        return np.stack(
            [align_face(f.image, f.landmarks, embedder.template, embedder.crop_size) for f in faces]
        )

    def model_embeddings(self, faces: Sequence[Face], embedder: Embedder) -> np.ndarray:
        """Unit-length embeddings [n, d] of ``faces`` by one embedder (flip-summed if enabled)."""
        crops = self.crops(faces, embedder)
        if self.flip:
            both = embedder.embed_crops(np.concatenate([crops, crops[:, :, ::-1]]))
            raw = both[: len(faces)] + both[len(faces) :]
        else:
            raw = embedder.embed_crops(crops)
        return l2_normalize(raw)

    def embed(self, faces: Sequence[Face]) -> list[Template]:
        """One template per face, in order."""
        if not faces:
            return []
        for face in faces:
            if face.image is None:
                raise ValueError("a Face must carry its source image to be embedded")
        blocks = [
            self.model_embeddings(faces, embedder) * np.float32(np.sqrt(part.weight))
            for part, embedder in zip(self.parts, self.embedders, strict=True)
        ]
        fused = l2_normalize(np.concatenate(blocks, axis=1))
        return [Template(vector=row, model=self.model_id) for row in fused]
