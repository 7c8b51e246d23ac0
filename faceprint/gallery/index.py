"""Search indexes for 1:N identification: top face candidates for query templates.

One job: given unit-length float32 templates with integer ids, return the best-scoring ids (the
score is the dot product, i.e. the cosine) for each query vector.

* :class:`ExactIndex` - a numpy matrix product over every template; the reference.
* :class:`ApproximateIndex` - binary SimHash sketches scanned by FAISS, the nearest re-scored from
  int8 copies: 144 MB for a million 128-d templates, 548 MB for 512-d. The gallery re-scores its
  top candidates against the exact float32 templates, so the scores it reports are exact cosines
  (the approximation can only miss a candidate, never mis-score one). Chosen by measurement over
  HNSW (hnswlib: recall@1 0.71 and a 7-minute build at 1M; it also needs a compiler to install)
  and FAISS IVF-SQ8 (recall@1 0.81 at 1.6 ms): see ``benchmarks/scale.py``.

:func:`make_index` picks exact search below :data:`APPROXIMATE_FROM` templates and the sketch index
from there on. Both indexes save to and load from one file (``numpy`` ``.npz``, written to a
temporary file and moved into place with :func:`os.replace`), carrying a caller-defined ``stamp``
(the gallery stores its face count, max face id and model there) so a stale file can be detected.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

APPROXIMATE_FROM = 50_000
"""Template count from which :func:`make_index` builds an :class:`ApproximateIndex`."""

RERANK = 100
"""Face candidates the approximate index returns per query (at least ``k``)."""

CANDIDATES = 1000
"""Nearest sketches re-scored per query by the approximate index."""

_FORMAT = 1


def _batch(ids, vectors, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    if vecs.ndim == 1:
        vecs = vecs.reshape(1, -1)
    if vecs.ndim != 2 or vecs.shape[1] != dim or len(vecs) != len(ids):
        raise ValueError(f"expected {len(ids)} vectors of {dim} dimensions, got shape {vecs.shape}")
    if len(ids) and ids.min() < 0:
        raise ValueError("ids must be non-negative")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("duplicate ids in one add() call")
    return ids, vecs


def _queries(queries, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must be [m, {dim}], got shape {q.shape}")
    return q


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of ``scores`` [m, n] (score desc, then id asc), padded with -inf / -1."""
    m, n = scores.shape
    out_s = np.full((m, k), -np.inf, dtype=np.float32)
    out_i = np.full((m, k), -1, dtype=np.int64)
    kk = min(k, n)
    if kk == 0:
        return out_s, out_i
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < n else np.broadcast_to(np.arange(n), (m, n))
    for r in range(m):
        cand = part[r]
        order = np.lexsort((ids[cand], -scores[r, cand]))
        out_s[r, :kk] = scores[r, cand[order]]
        out_i[r, :kk] = ids[cand[order]]
    return out_s, out_i


def _atomic_savez(path: str | os.PathLike, header: dict, arrays: dict) -> None:
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ExactIndex:
    """Brute-force search: ``queries @ vectors.T``. Exact; memory is ``4 * n * dim`` bytes."""

    kind = "exact"

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.stamp: object = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, self.dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._ids)

    @classmethod
    def from_matrix(cls, ids, vectors) -> "ExactIndex":
        """An index over existing arrays, without copying them (they must not change)."""
        vecs = np.asarray(vectors, dtype=np.float32)
        idx = cls(vecs.shape[1])
        idx._ids, idx._vecs = np.asarray(ids, dtype=np.int64), vecs
        return idx

    @property
    def nbytes(self) -> int:
        """Bytes held by the index structures."""
        return int(self._ids.nbytes + self._vecs.nbytes)

    def scores(self, queries) -> np.ndarray:
        """Every score: float32 [m, n], columns in insertion order (see :meth:`ids`)."""
        return _queries(queries, self.dim) @ self._vecs.T

    def ids(self) -> np.ndarray:
        return self._ids

    def add(self, ids, vectors) -> None:
        """Add templates; an id already present is replaced."""
        ids, vecs = _batch(ids, vectors, self.dim)
        if not len(ids):
            return
        self.remove(ids)
        self._ids = np.concatenate([self._ids, ids])
        self._vecs = np.concatenate([self._vecs, vecs])

    def remove(self, ids) -> None:
        """Remove ids (absent ones are ignored)."""
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64).reshape(-1))
        if not keep.all():
            self._ids, self._vecs = self._ids[keep], self._vecs[keep]

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [m, k], ids int64 [m, k]), best first; padded with -inf / -1."""
        q = _queries(queries, self.dim)
        return _top(q @ self._vecs.T, self._ids, int(k))

    def save(self, path) -> None:
        _atomic_savez(path, {"format": _FORMAT, "kind": self.kind, "dim": self.dim, "stamp": self.stamp},
                      {"ids": self._ids, "vectors": self._vecs})

    @classmethod
    def _from(cls, header: dict, z) -> "ExactIndex":
        idx = cls(header["dim"])
        idx._ids, idx._vecs = z["ids"].astype(np.int64), z["vectors"].astype(np.float32)
        return idx


def _rotation(dim: int, bits: int, seed: int) -> np.ndarray:
    """A fixed random orthonormal projection ``[dim, bits]`` (SimHash hyperplanes)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return np.ascontiguousarray(q[:, :bits], dtype=np.float32)


class ApproximateIndex:
    """Binary sketches + int8 re-scoring: memory-light, exact-recall-in-practice 1:N search.

    Each template is kept twice, compactly: a SimHash sketch (the signs of ``bits`` random
    orthonormal projections, ``bits / 8`` bytes: the Hamming distance of two sketches estimates the
    angle between the templates) and an int8 copy with one float32 scale (``dim + 4`` bytes).
    A query takes the ``candidates`` nearest sketches (FAISS ``IndexBinaryFlat``: a popcount scan,
    no training, no graph), re-scores them with the int8 copies (error about 0.003 in cosine) and
    returns the best ``max(k, rerank)``. Face templates of different people are nearly orthogonal
    (Hamming distance about ``bits / 2``) while a mated probe at cosine 0.7 sits near ``bits / 4``,
    so the mate is in the candidate list with overwhelming probability: recall@1 was 1.000 against
    exact search at 1M templates (``benchmarks/scale.py``). Removal clears an ``alive`` flag (never
    returned again, at once); the arrays are compacted once more than 1,024 entries are dead.
    """

    kind = "sketch"
    MAX_DEAD = 1024

    def __init__(self, dim: int, rerank: int = RERANK, candidates: int = CANDIDATES, bits: int | None = None,
                 seed: int = 0):
        self.dim = int(dim)
        self.rerank = int(rerank)
        self.candidates = int(candidates)
        self.bits = int(bits or min(256, -(-self.dim // 8) * 8))
        if self.bits % 8:
            raise ValueError("bits must be a multiple of 8")
        self.seed = int(seed)
        self.stamp: object = None
        self._rotation = _rotation(self.dim, self.bits, self.seed) if self.bits <= self.dim else None
        if self._rotation is None:
            raise ValueError(f"bits ({self.bits}) cannot exceed dim ({self.dim})")
        self._ids = np.zeros(0, dtype=np.int64)
        self._codes = np.zeros((0, self.dim), dtype=np.int8)
        self._scales = np.zeros(0, dtype=np.float32)
        self._sketches = np.zeros((0, self.bits // 8), dtype=np.uint8)
        self._alive = np.zeros(0, dtype=bool)
        self._binary = None  # faiss.IndexBinaryFlat over _sketches, same row order; built lazily

    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def nbytes(self) -> int:
        """Bytes held: ids, int8 copies, scales, sketches (twice: ours and FAISS's), flags, projection."""
        arrays = (self._ids, self._codes, self._scales, self._sketches, self._sketches, self._alive, self._rotation)
        return int(sum(a.nbytes for a in arrays))

    def sketch(self, vectors: np.ndarray) -> np.ndarray:
        """SimHash sketches, uint8 ``[n, bits / 8]``."""
        return np.packbits(vectors @ self._rotation > 0, axis=1)

    def add(self, ids, vectors) -> None:
        """Add templates; an id already present is replaced."""
        ids, vecs = _batch(ids, vectors, self.dim)
        if not len(ids):
            return
        self.remove(ids)
        scales = np.maximum(np.abs(vecs).max(axis=1), 1e-12) / 127.0
        codes = np.round(vecs / scales[:, None]).astype(np.int8)
        sketches = self.sketch(vecs)
        self._ids = np.concatenate([self._ids, ids])
        self._codes = np.concatenate([self._codes, codes])
        self._scales = np.concatenate([self._scales, scales.astype(np.float32)])
        self._sketches = np.concatenate([self._sketches, sketches])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        if self._binary is not None:
            self._binary.add(sketches)

    def remove(self, ids) -> None:
        """Remove ids (absent ones are ignored): they are never returned again."""
        gone = np.isin(self._ids, np.asarray(ids, dtype=np.int64).reshape(-1)) & self._alive
        if gone.any():
            self._alive[gone] = False
            if int((~self._alive).sum()) > self.MAX_DEAD:
                self._compact()

    def _compact(self) -> None:
        keep = self._alive
        self._ids, self._codes, self._scales = self._ids[keep], self._codes[keep], self._scales[keep]
        self._sketches, self._alive = self._sketches[keep], self._alive[keep]
        self._binary = None

    def _index(self):
        if self._binary is None:
            import faiss

            self._binary = faiss.IndexBinaryFlat(self.bits)
            if len(self._sketches):
                self._binary.add(self._sketches)
        return self._binary

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [m, k'], ids int64 [m, k']), best first, k' = max(k, rerank).

        Scores are int8-approximate cosines (within about 0.003); padded with -inf / -1.
        """
        q = _queries(queries, self.dim)
        want = max(int(k), self.rerank)
        out_s = np.full((len(q), want), -np.inf, dtype=np.float32)
        out_i = np.full((len(q), want), -1, dtype=np.int64)
        n = len(self._ids)
        if n == 0 or len(q) == 0:
            return out_s, out_i
        dead = n - len(self)
        fetch = min(n, max(self.candidates, want) + dead)
        _, rows = self._index().search(self.sketch(q), fetch)
        for r in range(len(q)):
            cand = rows[r][rows[r] >= 0]
            cand = cand[self._alive[cand]]
            if not len(cand):
                continue
            scores = (self._codes[cand].astype(np.float32) @ q[r]) * self._scales[cand]
            top = min(want, len(cand))
            order = np.lexsort((self._ids[cand], -scores))[:top]
            out_s[r, :top], out_i[r, :top] = scores[order], self._ids[cand[order]]
        return out_s, out_i

    def save(self, path) -> None:
        header = {"format": _FORMAT, "kind": self.kind, "dim": self.dim, "stamp": self.stamp,
                  "rerank": self.rerank, "candidates": self.candidates, "bits": self.bits, "seed": self.seed}
        _atomic_savez(path, header, {"ids": self._ids, "codes": self._codes, "scales": self._scales,
                                     "sketches": self._sketches, "alive": self._alive})

    @classmethod
    def _from(cls, header: dict, z) -> "ApproximateIndex":
        idx = cls(header["dim"], rerank=header["rerank"], candidates=header["candidates"],
                  bits=header["bits"], seed=header["seed"])
        idx._ids, idx._codes, idx._scales = z["ids"], z["codes"], z["scales"]
        idx._sketches, idx._alive = z["sketches"], z["alive"]
        return idx


def load(path) -> ExactIndex | ApproximateIndex:
    """Load an index written by ``save``; raises ``ValueError`` (or ``OSError``) when unreadable."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        header = json.loads(z["header"].tobytes().decode())
        if header.get("format") != _FORMAT:
            raise ValueError(f"{path}: unsupported index format {header.get('format')!r}")
        cls = {"exact": ExactIndex, "sketch": ApproximateIndex}.get(header.get("kind"))
        if cls is None:
            raise ValueError(f"{path}: unknown index kind {header.get('kind')!r}")
        idx = cls._from(header, z)
    stamp = header.get("stamp")
    idx.stamp = tuple(stamp) if isinstance(stamp, list) else stamp
    return idx


def make_index(ids, vectors, dim: int, approximate_from: int = APPROXIMATE_FROM,
               **options) -> ExactIndex | ApproximateIndex:
    """Build the index for these templates: exact below ``approximate_from`` of them, else sketches."""
    n = len(ids)
    if n < approximate_from:
        idx = ExactIndex(dim)
    else:
        idx = ApproximateIndex(dim, **options)
    idx.add(ids, vectors)
    return idx
