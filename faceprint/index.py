"""Search indexes for 1:N identification: top face candidates for query templates.

One job: given unit-length float32 templates with integer ids, return the best-scoring ids (the
score is the dot product, i.e. the cosine) for each query vector.

* :class:`ExactIndex` - a numpy matrix product over every template; the reference.
* :class:`ApproximateIndex` - an HNSW graph (``hnswlib``, inner-product space). The graph only
  *finds* candidates: the top ``rerank`` of them are scored against the stored float32 templates,
  so every returned score is the exact cosine (the approximation can only miss a candidate, never
  mis-score one). Removal marks the id deleted in the graph: it is never returned again, at once.

:func:`make_index` picks exact search below :data:`APPROXIMATE_FROM` templates and the HNSW index
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
"""Face candidates fetched from the approximate index and re-scored exactly per query."""

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


class ApproximateIndex:
    """HNSW (``hnswlib``, inner product, float32 storage) + exact re-scoring of the candidates.

    ``m`` / ``ef_construction`` trade build time for graph quality; ``ef_search`` (at least
    ``rerank``) trades latency for recall; ``threads`` is used for building and batch queries.
    """

    kind = "hnsw"

    def __init__(self, dim: int, rerank: int = RERANK, m: int = 16, ef_construction: int = 64,
                 ef_search: int = 512, threads: int | None = None, capacity: int = 1024):
        import hnswlib

        self.dim = int(dim)
        self.rerank = int(rerank)
        self.ef_search = int(ef_search)
        self.threads = int(threads or os.cpu_count() or 1)
        self.stamp: object = None
        self._count = 0  # live (not deleted) ids
        self._index = hnswlib.Index(space="ip", dim=self.dim)
        self._index.init_index(max_elements=max(int(capacity), 16), ef_construction=int(ef_construction), M=int(m))

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Bytes held by the graph and the stored vectors (capacity included)."""
        ix = self._index
        per = 4 * self.dim + 8 + 4 + ix.M * 2 * 4 + 4  # vector, label, level-0 links + count
        upper = ix.element_count * (ix.M * 4 + 4) / max(1, ix.M)  # ~1/M of nodes have upper levels
        return int(ix.max_elements * per + upper)

    def add(self, ids, vectors, threads: int | None = None) -> None:
        """Add templates; an id already present (even a deleted one) is replaced."""
        ids, vecs = _batch(ids, vectors, self.dim)
        if not len(ids):
            return
        ix = self._index
        need = ix.element_count + len(ids)  # upper bound: re-added ids reuse their slot
        if need > ix.max_elements:
            ix.resize_index(max(need, int(ix.max_elements * 1.5)))
        live_before = self._live(ids) if ix.element_count else 0
        ix.add_items(vecs, ids.astype(np.uint64), num_threads=int(threads or self.threads))
        self._count += len(ids) - live_before

    def _live(self, ids: np.ndarray) -> int:
        n = 0
        for i in ids.tolist():
            try:
                self._index.get_items([i])  # raises for absent or deleted labels
                n += 1
            except RuntimeError:
                pass
        return n

    def remove(self, ids) -> None:
        """Mark ids deleted: they are never returned again. Absent ids are ignored."""
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            try:
                self._index.mark_deleted(i)
                self._count -= 1
            except RuntimeError:  # not present, or already deleted
                pass

    def search(self, queries, k: int, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(exact scores float32 [m, k'], ids int64 [m, k']), best first, k' = max(k, rerank).

        Padded with -inf / -1 when fewer candidates exist. The candidates' scores are the exact
        float32 dot products of the stored templates (hnswlib scores candidates on the stored
        float32 vectors, so re-ranking them is a sort by that exact score, done here).
        """
        q = _queries(queries, self.dim)
        want = max(int(k), self.rerank)
        out_s = np.full((len(q), want), -np.inf, dtype=np.float32)
        out_i = np.full((len(q), want), -1, dtype=np.int64)
        count = min(want, self._count)
        if count == 0 or len(q) == 0:
            return out_s, out_i
        self._index.set_ef(max(self.ef_search, count))
        while True:
            try:
                labels, dist = self._index.knn_query(q, k=count, num_threads=int(threads or self.threads))
                break
            except RuntimeError:  # too few reachable live nodes (many deletions): ask for fewer
                if count == 1:
                    return out_s, out_i
                count = max(1, count // 2)
        scores = (1.0 - dist).astype(np.float32)
        labels = labels.astype(np.int64)
        for r in range(len(q)):  # exact re-rank: score desc, then id asc
            o = np.lexsort((labels[r], -scores[r]))
            out_s[r, :count], out_i[r, :count] = scores[r, o], labels[r, o]
        return out_s, out_i

    def save(self, path) -> None:
        (state,) = self._index.__getstate__()
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        params = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        header = {"format": _FORMAT, "kind": self.kind, "dim": self.dim, "stamp": self.stamp,
                  "rerank": self.rerank, "ef_search": self.ef_search, "count": self._count, "params": params}
        _atomic_savez(path, header, arrays)

    @classmethod
    def _from(cls, header: dict, z) -> "ApproximateIndex":
        import hnswlib

        idx = cls(header["dim"], rerank=header["rerank"], ef_search=header["ef_search"], capacity=16)
        state = dict(header["params"])
        for key in z.files:
            if key != "header":
                state[key] = z[key]
        ix = hnswlib.Index.__new__(hnswlib.Index)  # pybind11 restores into an unconstructed object
        ix.__setstate__((state,))
        idx._index, idx._count = ix, int(header["count"])
        return idx


def load(path) -> ExactIndex | ApproximateIndex:
    """Load an index written by ``save``; raises ``ValueError`` (or ``OSError``) when unreadable."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        header = json.loads(z["header"].tobytes().decode())
        if header.get("format") != _FORMAT:
            raise ValueError(f"{path}: unsupported index format {header.get('format')!r}")
        cls = {"exact": ExactIndex, "hnsw": ApproximateIndex}.get(header.get("kind"))
        if cls is None:
            raise ValueError(f"{path}: unknown index kind {header.get('kind')!r}")
        idx = cls._from(header, z)
    stamp = header.get("stamp")
    idx.stamp = tuple(stamp) if isinstance(stamp, list) else stamp
    return idx


def make_index(ids, vectors, dim: int, approximate_from: int = APPROXIMATE_FROM,
               **options) -> ExactIndex | ApproximateIndex:
    """Build the index for these templates: exact below ``approximate_from`` of them, else HNSW."""
    n = len(ids)
    if n < approximate_from:
        idx = ExactIndex(dim)
    else:
        idx = ApproximateIndex(dim, capacity=n, **options)
    idx.add(ids, vectors)
    return idx
