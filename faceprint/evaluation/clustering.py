"""``faceprint eval cluster``: how well unknown faces are grouped into people, on an LFW-layout folder.

Protocol: every image of every person with at least ``min_images`` images (default 2) is one face
to cluster (the subject's face, found as in ``faceprint eval lfw``: see
:mod:`faceprint.evaluation.runner`, whose template cache is reused); ``pairs`` restricts the people
to those of one LFW pairs file (View 1's DevTrain and DevTest have disjoint people, so one can
choose on DevTrain and report on DevTest); ``singletons`` adds the people with one image, each its
own true cluster (faces that should stay alone). Faces are clustered in sorted file-name order.

Metrics, comparing predicted clusters with true people (noise faces count as clusters of one):

* **pairwise precision / recall / F1**: over all pairs of faces, precision is the fraction of pairs
  put in one cluster that show one person, recall the fraction of same-person pairs put in one
  cluster. Precision is 1 when no pair is put together.
* **BCubed precision / recall / F** (Bagga & Baldwin 1998; Amigo et al. 2009): per face, the share
  of its cluster that is its person (precision) and the share of its person that is in its cluster
  (recall), averaged over faces. Unlike pairwise figures, large people do not dominate.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..engine import Engine
from ..grouping.clustering import ALGORITHMS, DEFAULT_LINK_FMR, cluster
from .lfw import read_pairs
from .runner import lfw_templates

log = logging.getLogger(__name__)

__all__ = ["ClusterScores", "ClusteringRun", "bcubed", "lfw_cluster_set", "pairwise", "run_cluster_eval", "score"]


def _contingency(predicted: np.ndarray, truth: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_ij as a flat array of non-zero cells, cluster sizes per cell, person sizes per cell)."""
    pred = np.asarray(predicted).copy()
    if pred.shape[0] != len(truth):
        raise ValueError(f"{pred.shape[0]} predicted labels for {len(truth)} true labels")
    noise = pred < 0
    pred[noise] = pred.max(initial=-1) + 1 + np.arange(int(noise.sum()))  # noise: clusters of one
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(np.asarray(truth), return_inverse=True)
    cells, n_ij = np.unique(np.stack([p, t], axis=1), axis=0, return_counts=True)
    cluster_size = np.bincount(p)[cells[:, 0]]
    person_size = np.bincount(t)[cells[:, 1]]
    return n_ij.astype(np.float64), cluster_size.astype(np.float64), person_size.astype(np.float64)


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def pairwise(predicted: np.ndarray, truth: Sequence) -> tuple[float, float, float]:
    """Pairwise (precision, recall, F1) of predicted cluster labels against true labels."""
    n_ij, _, _ = _contingency(predicted, truth)
    tp = float((n_ij * (n_ij - 1) / 2).sum())
    pred_pairs = _pairs_of(predicted)
    true_pairs = _pairs_of(truth)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    return precision, recall, _f(precision, recall)


def _pairs_of(labels: Sequence) -> float:
    arr = np.asarray(labels)
    if arr.dtype.kind in "iu":
        arr = arr[arr >= 0]
    _, counts = np.unique(arr, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def bcubed(predicted: np.ndarray, truth: Sequence) -> tuple[float, float, float]:
    """BCubed (precision, recall, F) of predicted cluster labels against true labels."""
    n_ij, cluster_size, person_size = _contingency(predicted, truth)
    n = n_ij.sum()
    precision = float((n_ij**2 / cluster_size).sum() / n)
    recall = float((n_ij**2 / person_size).sum() / n)
    return precision, recall, _f(precision, recall)


@dataclass(frozen=True)
class ClusterScores:
    """Every figure for one clustering of one face set."""

    algorithm: str
    threshold: float
    faces: int
    people: int
    clusters: int
    noise: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    seconds: float

    def row(self) -> list[str]:
        """Table cells, in the order of :data:`ClusterScores.HEADER`."""
        return [self.algorithm, f"{self.threshold:.4f}", str(self.clusters), str(self.people), str(self.noise),
                *(f"{v:.4f}" for v in (self.pairwise_precision, self.pairwise_recall, self.pairwise_f1,
                                       self.bcubed_precision, self.bcubed_recall, self.bcubed_f)),
                f"{self.seconds:.2f}"]

    HEADER = ("algorithm", "threshold", "clusters", "people", "noise", "pair P", "pair R", "pair F1",
              "BCubed P", "BCubed R", "BCubed F", "seconds")


def score(algorithm: str, predicted: np.ndarray, truth: Sequence, threshold: float, seconds: float) -> ClusterScores:
    """All figures for ``predicted`` labels (``-1`` noise) against ``truth``."""
    pp, pr, pf = pairwise(predicted, truth)
    bp, br, bf = bcubed(predicted, truth)
    predicted = np.asarray(predicted)
    return ClusterScores(
        algorithm=algorithm, threshold=float(threshold), faces=len(truth), people=len(set(truth)),
        clusters=int(np.unique(predicted[predicted >= 0]).size), noise=int((predicted < 0).sum()),
        pairwise_precision=pp, pairwise_recall=pr, pairwise_f1=pf,
        bcubed_precision=bp, bcubed_recall=br, bcubed_f=bf, seconds=seconds,
    )


def lfw_cluster_set(images_root: Path, *, pairs: Path | None = None, min_images: int = 2,
                    singletons: bool = False) -> list[str]:
    """Relative image paths (``Name/Name_0001.jpg``) of the protocol's faces, sorted."""
    people = sorted(p for p in images_root.iterdir() if p.is_dir())
    if pairs is not None:
        wanted = {n.split("/")[0] for pair in read_pairs(pairs) for n in (pair.a, pair.b)}
        people = [p for p in people if p.name in wanted]
    names = []
    for person in people:
        images = sorted(f"{person.name}/{f.name}" for f in person.iterdir() if f.suffix.lower() == ".jpg")
        if len(images) >= min_images or (singletons and images):
            names.extend(images)
    return names


@dataclass
class ClusteringRun:
    """One evaluation: the face set, the operating point and one :class:`ClusterScores` per algorithm."""

    profile: str
    model: str
    images: str
    pairs: str | None
    singletons: bool
    link_fmr: float | None
    threshold: float
    faces: int
    people: int
    results: list[ClusterScores]

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        data = asdict(self)
        data["results"] = [asdict(r) for r in self.results]
        return data

    def summary_lines(self) -> list[str]:
        """A readable table of every algorithm's figures."""
        from .._text import table

        head = (f"clustering {self.faces} faces of {self.people} people ({self.images}"
                f"{', people of ' + Path(self.pairs).name if self.pairs else ''}"
                f"{', singletons included' if self.singletons else ''}); profile '{self.profile}', "
                f"link threshold {self.threshold:.4f}"
                + (f" (calibrated FMR {self.link_fmr:g})" if self.link_fmr is not None else ""))
        return [head, table([r.row() for r in self.results], ClusterScores.HEADER)]


def run_cluster_eval(
    engine: Engine, images_root: Path, out_dir: Path | None = None, *, pairs: Path | None = None,
    algorithms: Sequence[str] = tuple(ALGORITHMS), link_fmr: float | None = DEFAULT_LINK_FMR,
    threshold: float | None = None, min_images: int = 2,
    singletons: bool = False, progress: bool = True, cache: bool = True,
) -> ClusteringRun:
    """Cluster the protocol's faces with each algorithm; writes ``report.json`` in ``out_dir`` when given.

    Faces are linked at ``threshold`` when given, else at the profile's threshold calibrated for
    ``link_fmr`` (the default of ``faceprint cluster``).
    """
    names = lfw_cluster_set(images_root, pairs=pairs, min_images=min_images, singletons=singletons)
    if not names:
        from ..errors import FaceprintError

        raise FaceprintError(f"no person with {min_images} or more images under {images_root}")
    templates, _ = lfw_templates(engine, images_root, names, progress=progress, cache=cache)
    x = np.stack([templates[n] for n in names])
    truth = [n.split("/")[0] for n in names]
    if threshold is None and link_fmr is None:
        raise ValueError("give threshold or link_fmr")
    t = float(threshold if threshold is not None else engine.profile.threshold(link_fmr))
    results = []
    for algorithm in algorithms:
        started = time.perf_counter()
        labels = cluster(x, t, algorithm)
        results.append(score(algorithm, labels, truth, t, time.perf_counter() - started))
        log.info("%s: BCubed F %.4f", algorithm, results[-1].bcubed_f)
    run = ClusteringRun(profile=engine.profile.name, model=engine.model_id, images=str(images_root),
                        pairs=str(pairs) if pairs else None, singletons=singletons,
                        link_fmr=link_fmr if threshold is None else None,
                        threshold=t, faces=len(names), people=len(set(truth)), results=results)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps(run.to_dict(), indent=2))
    return run
