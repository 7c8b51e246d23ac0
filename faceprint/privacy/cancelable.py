"""Cancelable templates: a keyed, revocable transform applied to templates before they are stored.

A :class:`CancelableTransform` is derived from a secret :class:`~faceprint.privacy.crypto.GalleryKey`: a
random orthogonal matrix ``Q`` (seeded by HKDF of the key, generated with SHAKE-256 so it does not
depend on NumPy's random streams), and one of two modes:

* ``rotate``: ``y = Q x``. Orthogonal, so every dot product between templates under the same key
  is unchanged: zero accuracy cost. Templates under two different keys are unrelated vectors
  (their cosines look like those of random directions), so a leaked gallery cannot be matched
  against another deployment's templates, and issuing a new key revokes the old templates.
  Anyone holding the key can invert it.
* ``sign``: ``y = sign(Q x) / sqrt(d)``, a binary (SimHash) template: one bit per dimension, so
  the original vector cannot be recovered exactly even with the key. The agreement ``s`` of two
  sign templates estimates their angle; :meth:`CancelableTransform.to_cosine` maps it back to
  ``sin(pi s / 2)``, the cosine estimate, so the profile's calibrated thresholds stay usable.
  It costs some accuracy (see ``benchmarks/cancelable.py``).

The gallery records :attr:`CancelableTransform.id` (a keyed fingerprint, not the key) and refuses
to be opened with another transform or none.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import GalleryError
from .crypto import GalleryKey

MODES = ("rotate", "sign")


class TransformMismatchError(GalleryError):
    """The gallery's templates were stored under a different cancelable transform (or none)."""

    code = "transform_mismatch"


def _gaussian(seed: bytes, rows: int, cols: int) -> np.ndarray:
    """Deterministic standard normals from SHAKE-256 of ``seed`` (Box-Muller on 53-bit uniforms)."""
    n = rows * cols
    half = (n + 1) // 2
    raw = np.frombuffer(hashlib.shake_256(seed).digest(16 * half), dtype="<u8").reshape(2, half)
    u1 = ((raw[0] >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53  # (0, 1]
    u2 = (raw[1] >> np.uint64(11)).astype(np.float64) / 2.0**53
    radius = np.sqrt(-2.0 * np.log(u1))
    z = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    return z[:n].reshape(rows, cols)


def random_orthogonal(seed: bytes, dim: int) -> np.ndarray:
    """A ``dim x dim`` orthogonal matrix, uniformly (Haar) distributed, determined by ``seed``."""
    q, r = np.linalg.qr(_gaussian(seed + dim.to_bytes(4, "little"), dim, dim))
    return q * np.sign(np.diag(r))


@dataclass
class CancelableTransform:
    """A keyed template transform; ``mode`` is ``"rotate"`` or ``"sign"``."""

    key: GalleryKey = field(repr=False)
    mode: str = "rotate"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"cancelable mode must be one of {MODES}, got {self.mode!r}")
        self._seed = self.key.derive("cancelable transform v1")
        self._matrices: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        """``<mode>:<16 hex digits>``: identifies the key and mode without revealing the key."""
        tag = hmac.new(self.key.derive("cancelable id"), self.mode.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{self.mode}:{tag}"

    def matrix(self, dim: int) -> np.ndarray:
        """The orthogonal float32 matrix used for ``dim``-d templates (cached)."""
        with self._lock:
            if dim not in self._matrices:
                self._matrices[dim] = random_orthogonal(self._seed, dim).astype(np.float32)
            return self._matrices[dim]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Transformed copies of unit-length templates (a ``[dim]`` vector or ``[n, dim]`` rows)."""
        x = np.asarray(vectors, dtype=np.float32)
        y = x @ self.matrix(x.shape[-1]).T
        if self.mode == "sign":
            y = np.where(y >= 0, 1.0, -1.0).astype(np.float32) / np.float32(np.sqrt(x.shape[-1]))
        return np.ascontiguousarray(y, dtype=np.float32)

    def to_cosine(self, scores: np.ndarray) -> np.ndarray:
        """Map dot products of transformed templates to cosine estimates of the originals."""
        s = np.asarray(scores, dtype=np.float32)
        if self.mode == "sign":
            return np.sin(np.float32(np.pi / 2) * np.clip(s, -1.0, 1.0)).astype(np.float32)
        return s
