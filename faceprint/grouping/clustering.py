"""Clustering unit face templates into people: pure numpy, no state.

Every algorithm takes an ``[n, d]`` array of unit-length templates and a cosine-similarity
``threshold`` (normally the engine's calibrated threshold, so "linked" means "would verify as the
same person") and returns one integer label per template, ``-1`` for noise (DBSCAN only).

* ``average``: agglomerative clustering, average linkage, cut where the mean similarity between two
  clusters falls below ``threshold`` (nearest-neighbour-chain algorithm, O(n^2) time and memory: 4 n^2 bytes).
  One false match cannot join two people: a merge needs the *average* over all their pairs.
* ``chinese_whispers``: label propagation on the graph of pairs at or above ``threshold``, each
  edge weighted by its similarity (Biemann 2006; dlib's face clustering example). Seeded.
* ``dbscan``: density-based (Ester et al. 1996) with ``eps = 1 - threshold`` in cosine distance and
  ``min_samples`` faces (the face itself included) to make a core face; the rest is noise.
* ``components``: connected components of the threshold graph (single linkage): the baseline.
* ``leader``: one pass in input order, each face joining the cluster whose mean template is most
  similar to it if that reaches ``threshold``, else starting a new one: the online baseline.

Labels are renumbered ``0, 1, ...`` by decreasing cluster size (ties: first member's position).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..pipeline.embedding import unit_rows

log = logging.getLogger(__name__)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_LINK_FMR",
    "average_linkage",
    "chinese_whispers",
    "cluster",
    "connected_components",
    "dbscan",
    "leader",
    "medoid",
]


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0.. by decreasing cluster size, ties by first appearance; -1 stays -1."""
    labels = np.asarray(labels)
    out = np.full(labels.shape[0], -1, dtype=np.int64)
    kept = labels[labels >= 0]
    if kept.size == 0:
        return out
    values, first, counts = np.unique(kept, return_index=True, return_counts=True)
    first_pos = np.flatnonzero(labels >= 0)[first]
    order = np.lexsort((first_pos, -counts))
    mapping = {int(values[i]): rank for rank, i in enumerate(order)}
    for pos in np.flatnonzero(labels >= 0):
        out[pos] = mapping[int(labels[pos])]
    return out


def _neighbours(x: np.ndarray, threshold: float) -> list[np.ndarray]:
    """For each face, the indices of the other faces with similarity >= threshold."""
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return [np.flatnonzero(row >= threshold) for row in sims]


def connected_components(templates: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the graph linking every pair at or above ``threshold``."""
    x = unit_rows(templates)
    n = x.shape[0]
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, nbrs in enumerate(_neighbours(x, threshold)):
        for j in nbrs[nbrs > i]:
            ri, rj = root(i), root(int(j))
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    return _renumber(np.array([root(i) for i in range(n)]))


def chinese_whispers(templates: np.ndarray, threshold: float, *, iterations: int = 30, seed: int = 0) -> np.ndarray:
    """Chinese whispers on the similarity-weighted threshold graph.

    Every face starts in its own class; in each pass (faces in a seeded random order) a face takes
    the class with the largest summed edge weight among its neighbours. Stops after a pass with no
    change or ``iterations`` passes.
    """
    x = unit_rows(templates)
    n = x.shape[0]
    sims = x @ x.T
    nbrs = _neighbours(x, threshold)
    weights = [sims[i, nb].astype(np.float64) for i, nb in enumerate(nbrs)]
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for it in range(iterations):
        changed = 0
        for i in rng.permutation(n):
            nb = nbrs[i]
            if nb.size == 0:
                continue
            cand, inverse = np.unique(labels[nb], return_inverse=True)
            votes = np.bincount(inverse, weights=weights[i])
            best = int(cand[int(np.argmax(votes))])
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if changed == 0:
            log.debug("chinese whispers converged after %d passes", it + 1)
            break
    return _renumber(labels)


def average_linkage(templates: np.ndarray, threshold: float) -> np.ndarray:
    """Agglomerative clustering (average linkage) cut at mean cluster similarity ``threshold``.

    Nearest-neighbour chain: follow nearest neighbours until two clusters are each other's nearest;
    merge them if their average similarity reaches ``threshold``, else retire both (average linkage
    is reducible, so nothing can later come closer to either than they are to each other).
    """
    x = unit_rows(templates)
    n = x.shape[0]
    sims = x @ x.T  # float32: n^2 * 4 bytes (100 MB at 5,000 faces)
    np.fill_diagonal(sims, -np.inf)
    size = np.ones(n, dtype=np.float32)
    labels = np.arange(n)
    open_ = np.ones(n, dtype=bool)  # clusters that may still merge

    def retire(i: int) -> None:
        open_[i] = False
        sims[i, :] = -np.inf
        sims[:, i] = -np.inf

    chain: list[int] = []
    while True:
        if not chain:
            rest = np.flatnonzero(open_)
            if rest.size == 0:
                break
            chain.append(int(rest[0]))
        a = chain[-1]
        row = sims[a]
        b = int(np.argmax(row))
        if not np.isfinite(row[b]):
            retire(a)
            chain.pop()
            continue
        if len(chain) > 1 and row[chain[-2]] >= row[b]:
            b = chain[-2]
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            if row[b] >= threshold:
                merged = (size[a] * sims[a] + size[b] * sims[b]) / (size[a] + size[b])
                merged[[a, b]] = -np.inf
                sims[a, :] = merged
                sims[:, a] = merged
                size[a] += size[b]
                labels[labels == b] = a
                retire(b)
            else:
                retire(a)
                retire(b)
        else:
            chain.append(b)
    return _renumber(labels)


def dbscan(templates: np.ndarray, threshold: float, *, min_samples: int = 3) -> np.ndarray:
    """DBSCAN with cosine distance ``eps = 1 - threshold``; noise is labelled ``-1``.

    A core face has at least ``min_samples`` faces (itself included) within ``eps``; core faces
    linked within ``eps`` form a cluster; a border face joins its most similar core neighbour's.
    """
    x = unit_rows(templates)
    n = x.shape[0]
    nbrs = _neighbours(x, threshold)
    core = np.array([nb.size + 1 >= min_samples for nb in nbrs], dtype=bool)
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    for start in np.flatnonzero(core):
        if labels[start] >= 0:
            continue
        labels[start] = next_label
        stack = [int(start)]
        while stack:
            i = stack.pop()
            for j in nbrs[i]:
                if core[j] and labels[j] < 0:
                    labels[j] = next_label
                    stack.append(int(j))
        next_label += 1
    for i in np.flatnonzero(~core):
        cores = nbrs[i][core[nbrs[i]]]
        if cores.size:
            labels[i] = labels[cores[int(np.argmax(x[cores] @ x[i]))]]
    return _renumber(labels)


def leader(templates: np.ndarray, threshold: float) -> np.ndarray:
    """Online one-pass clustering: join the most similar cluster mean if it reaches ``threshold``."""
    x = unit_rows(templates)
    sums = np.zeros_like(x)
    means = np.zeros_like(x)
    count = 0
    labels = np.empty(x.shape[0], dtype=np.int64)
    for i, vec in enumerate(x):
        if count:
            scores = means[:count] @ vec
            best = int(np.argmax(scores))
            if scores[best] >= threshold:
                sums[best] += vec
                means[best] = sums[best] / max(float(np.linalg.norm(sums[best])), 1e-12)
                labels[i] = best
                continue
        sums[count] = means[count] = vec
        labels[i] = count
        count += 1
    return _renumber(labels)


ALGORITHMS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "average": average_linkage,
    "chinese_whispers": chinese_whispers,
    "dbscan": dbscan,
    "components": connected_components,
    "leader": leader,
}
DEFAULT_ALGORITHM = "average"
# Chosen on LFW View 1 DevTrain (benchmarks/clustering.py; figures in docs/grouping.md): with average linkage,
# the profile's threshold calibrated for a false-match rate of 3e-5 had the best mean BCubed F (with
# and without faces seen once) of the grid 1e-2 ... 1e-5, for both the fast and the accurate profile.
DEFAULT_LINK_FMR = 3e-5


def cluster(templates: np.ndarray, threshold: float, algorithm: str = DEFAULT_ALGORITHM) -> np.ndarray:
    """Labels for ``templates`` from the named algorithm (see :data:`ALGORITHMS`)."""
    try:
        fn = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown clustering algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}") from None
    if len(templates) == 0:
        return np.empty(0, dtype=np.int64)
    return fn(templates, threshold)


def medoid(templates: np.ndarray) -> int:
    """Index of the template with the highest mean similarity to the others (a cluster's face)."""
    x = unit_rows(templates)
    if x.shape[0] <= 2:
        return 0
    return int(np.argmax((x @ x.T).sum(axis=1)))
