"""Choosing the clustering algorithm and threshold by measurement, on LFW View 1.

    python benchmarks/clustering.py --profiles fast,accurate --out out/bench/clustering

Faces: every image of the people with two or more images (see :mod:`faceprint.evaluation.clustering`).
View 1's DevTrain and DevTest have disjoint people, so each algorithm's operating point (the
profile's calibrated threshold at one FMR of a grid) is **chosen on DevTrain**, by the mean BCubed F
of two face sets (DevTrain's people with two or more images; the same plus its people with a
single image, faces that must stay alone), and then **reported on DevTest** untouched (both ways)
and on all of View 1 (1,165 people with 2+ images; plus the 1,930 with one). Templates come from the ``eval lfw`` cache
(``~/.cache/faceprint/templates``); a profile not cached yet is computed first (slow for
``accurate``: about 0.3 s an image). Prints markdown tables; writes ``clustering.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import REPO_ROOT, log, versions
from faceprint.evaluation.clustering import ClusterScores, lfw_cluster_set, score
from faceprint.evaluation.runner import lfw_templates
from faceprint.grouping.clustering import ALGORITHMS, cluster

FMR_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
DATA = REPO_ROOT / ".." / "shared" / "data" / "lfw-view1"


def face_set(images: Path, split: str) -> tuple[list[str], list[str]]:
    """(relative paths, true person of each) of a split: DevTrain, DevTest or all, each optionally "+singletons"."""
    part = split.split("+")[0]
    pairs = {"DevTrain": images.parent / "pairsDevTrain.txt", "DevTest": images.parent / "pairsDevTest.txt"}
    names = lfw_cluster_set(images, pairs=pairs.get(part), singletons=split.endswith("+singletons"))
    return names, [n.split("/")[0] for n in names]


def run(engine, x: np.ndarray, truth: list[str], algorithm: str, fmr: float) -> ClusterScores:
    """Cluster at the profile's threshold for ``fmr`` and score."""
    threshold = engine.profile.threshold(fmr)
    started = time.perf_counter()
    labels = cluster(x, threshold, algorithm)
    result = score(algorithm, labels, truth, threshold, time.perf_counter() - started)
    log(f"  {algorithm} at FMR {fmr:g} on {len(truth)} faces: BCubed F {result.bcubed_f:.4f} ({result.seconds:.1f} s)")
    return result


def md_table(rows: list[dict]) -> str:
    """Markdown table of result rows (each a ClusterScores dict plus profile, split and fmr)."""
    head = ("profile", "set", "algorithm", "FMR", "threshold", "clusters", "people", "pair P", "pair R",
            "pair F1", "BCubed P", "BCubed R", "BCubed F", "s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = (r["profile"], r["split"], r["algorithm"], f"{r['fmr']:g}", f"{r['threshold']:.4f}",
                 r["clusters"], r["people"], *(f"{r[k]:.4f}" for k in (
                     "pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_precision",
                     "bcubed_recall", "bcubed_f")), f"{r['seconds']:.2f}")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default=str(DATA / "images"), help="LFW View 1 images folder")
    parser.add_argument("--profiles", default="fast", help="comma-separated profiles (default fast)")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated algorithms")
    parser.add_argument("--out", default="out/bench/clustering", help="folder for clustering.json")
    args = parser.parse_args()

    from faceprint import Engine

    images = Path(args.images).resolve()
    algorithms = args.algorithms.split(",")
    choose_on = ("DevTrain", "DevTrain+singletons")
    report_on = ("DevTest", "DevTest+singletons", "all", "all+singletons")
    sweep, chosen_rows = [], []
    for profile in args.profiles.split(","):
        engine = Engine(profile)
        sets = {s: face_set(images, s) for s in choose_on + report_on}
        every = sorted({n for names, _ in sets.values() for n in names})
        log(f"{profile}: templates of {len(every)} images (cached ones are reused)")
        templates, _ = lfw_templates(engine, images, every, progress=sys.stderr.isatty())
        xs = {s: np.stack([templates[n] for n in names]) for s, (names, _) in sets.items()}
        chosen = {}
        for algorithm in algorithms:
            trials = []
            for fmr in FMR_GRID:
                rows = [run(engine, xs[s], sets[s][1], algorithm, fmr) for s in choose_on]
                sweep += [{"profile": profile, "split": s, "fmr": fmr, **vars(r)} for s, r in zip(choose_on, rows)]
                trials.append((float(np.mean([r.bcubed_f for r in rows])), -fmr))  # ties: the stricter threshold
            chosen[algorithm] = -max(trials)[1]
            log(f"{profile} {algorithm}: best on DevTrain at FMR {chosen[algorithm]:g}")
        for split in report_on:
            for algorithm in algorithms:
                r = run(engine, xs[split], sets[split][1], algorithm, chosen[algorithm])
                chosen_rows.append({"profile": profile, "split": split, "fmr": chosen[algorithm], **vars(r)})
    print("## Sweep on DevTrain, without and with singletons (each algorithm's FMR: best mean BCubed F)\n")
    print(md_table(sweep))
    print("\n## Each algorithm at its DevTrain-chosen FMR\n")
    print(md_table(chosen_rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "clustering.json").write_text(json.dumps(
        {"versions": versions(), "fmr_grid": FMR_GRID, "sweep": sweep, "chosen": chosen_rows}, indent=2))
    log(f"figures: {out / 'clustering.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
