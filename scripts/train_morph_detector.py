"""Train and measure the single-image morph detector (faceprint/models/weights/morph_detector.npz).

    .venv/bin/python scripts/train_morph_detector.py --seed 0      # builds morphs, trains, prints the table

Data (LFW View 1, ``../shared/data/lfw-view1``), with no person in two roles:

* test morphs: the 500 morphs of ``faceprint eval morph --protocol independent`` (same cases, same
  builder, same folder ``out/morph/morphs-independent``, reused when present); test bona fide: every
  image of ``pairsDevTest.txt`` (1,549);
* training people: the people of ``pairsDevTrain.txt`` minus anyone who contributes to, or is a
  reference of, a test morph. They are split 80/20 by person into fit and validation; each split
  gives its people's first images as bona fide and --morphs x (0.8, 0.2) morphs of seeded pairs of
  different people of that split (first image each, :func:`faceprint.evaluation.morph.build_morphs`,
  written under ``out/morph-detector/morphs-train``).

Morphs are saved as JPEG quality 95, so they carry one more compression than the LFW photos, and
their warp erases the source's 8x8 JPEG grid. Three variants measure how much a detector learns
from that alone: ``plain`` (bona fide as downloaded), ``control`` (every bona fide image re-saved
through the morphs' JPEG 95 path first) and ``augmented``, shipped (the control data plus a copy of
both classes shrunk to 0.75x and re-saved, which takes the JPEG grid away from both). Every variant
is tested on DevTest as downloaded, re-saved, 0.75x-laundered and 0.6x + JPEG 85 (a post-processing
no variant trains on). Features are the passive PAD cues of the face nearest the image centre
(YuNet); the classifier is ``faceprint.models.logistic.fit_logistic`` (class-balanced L2 logistic regression), its
L2 strength chosen on validation D-EER, its threshold where validation BPCER is 5%. MMPMR of the
test morphs at the accurate profile's FMR 1e-3 threshold is given with and without refusing what
each detector flags. Features are cached in ``out/morph-detector/features-*.npz``; the report is
written to ``out/morph-detector/report.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceprint.engine import Engine
from faceprint.evaluation.lfw import read_pairs
from faceprint.evaluation.morph import MorphCase, build_morphs, independent_cases
from faceprint.evaluation.pad import pad_metrics
from faceprint.evaluation.runner import lfw_templates
from faceprint.models.logistic import fit_logistic
from faceprint.models.morph_detector import WEIGHTS, morph_features
from faceprint.models.pad_features import FEATURE_VERSION
from faceprint.models.yunet import YuNetDetector
from faceprint.pipeline.detection import central_face
from faceprint.pipeline.image_io import load_image

LFW = ROOT / ".." / "shared" / "data" / "lfw-view1"
OUT = ROOT / "out" / "morph-detector"
TEST_MORPHS = ROOT / "out" / "morph" / "morphs-independent"
TEST_COUNT, TEST_SEED = 500, 0  # faceprint eval morph --protocol independent defaults
JPEG_QUALITY = 95  # as faceprint.evaluation.morph.build_morphs saves morphs
LAUNDER_SCALE = 0.75  # training augmentation and a test condition
UNSEEN_SCALE, UNSEEN_QUALITY = 0.6, 85  # a test-only post-processing no variant trains on
TARGET_BPCER = 0.05
MACER_TARGETS = (0.05, 0.1)
LAMBDAS = (0.1, 1.0, 10.0, 100.0)  # L2 strengths tried; chosen on validation
OPERATING_FMR = 1e-3
# What each variant trains on: (bona fide condition, morph condition) sets of the fit and validation splits.
VARIANTS = {
    "plain": (("as-is", "as-is"),),
    "control": (("resaved", "as-is"),),
    "augmented": (("resaved", "as-is"), ("laundered", "laundered")),
}
SHIPPED = "augmented"
log = logging.getLogger("train_morph_detector")


def resave(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """``image`` through the morphs' JPEG path (BGR, quality 95 by default) and back to RGB."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def launder(image: np.ndarray, scale: float = LAUNDER_SCALE, quality: int = JPEG_QUALITY) -> np.ndarray:
    """``image`` shrunk to ``scale`` of its size (area interpolation), then through :func:`resave`.

    The resampling moves every pixel off the original 8x8 JPEG grid, so neither class keeps its
    compression history: what is left for the detector is the morph itself.
    """
    h, w = image.shape[:2]
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return resave(small, quality)


CONDITIONS = {
    "as-is": lambda image: image,
    "resaved": resave,
    "laundered": launder,
    "unseen": lambda image: launder(image, UNSEEN_SCALE, UNSEEN_QUALITY),  # never used in training
}


def first_image(person: str) -> str:
    """``Name/Name_0001.jpg``-style path of a person's first image."""
    return f"{person}/{min(p.name for p in (LFW / 'images' / person).glob('*.jpg'))}"


def people_of(paths: set[str]) -> set[str]:
    """Person names of relative image paths."""
    return {Path(p).parent.name for p in paths}


def paired_cases(people: list[str], count: int, rng: np.random.Generator, prefix: str) -> list[MorphCase]:
    """``count`` morph cases of disjoint pairs of different people (first image each)."""
    chosen = rng.permutation(len(people))[: 2 * count]
    cases = []
    for k in range(len(chosen) // 2):
        a, b = first_image(people[chosen[2 * k]]), first_image(people[chosen[2 * k + 1]])
        cases.append(MorphCase(a, b, a, b, f"{prefix}-{k:04d}.jpg"))
    return cases


class FeatureCache:
    """Feature vectors keyed by ``root-tag/relative-path|variant``, in one .npz file; NaN row = no face."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                self.rows = dict(zip((str(k) for k in data["keys"]), data["x"], strict=True))
        self.detector: YuNetDetector | None = None

    def features(self, root: Path, tag: str, names: list[str], condition: str) -> np.ndarray:
        """Features of the central face of each image after ``CONDITIONS[condition]`` (NaN rows: no face)."""
        out = []
        for name in names:
            key = f"{tag}/{name}|{condition}"
            if key not in self.rows:
                if self.detector is None:
                    self.detector = YuNetDetector()
                image = CONDITIONS[condition](load_image(root / name))
                face = central_face(self.detector.detect(image), image.shape)
                self.rows[key] = morph_features(image, face) if face is not None else np.full(423, np.nan, np.float32)
            out.append(self.rows[key])
        return np.stack(out)

    def save(self) -> None:
        """Write the cache."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.rows)
        np.savez_compressed(self.path, keys=np.array(keys), x=np.stack([self.rows[k] for k in keys]))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def threshold_at_bpcer(bona: np.ndarray, target: float) -> float:
    """The lowest morph-score threshold at which at most ``target`` of ``bona`` is flagged (score >= threshold)."""
    s = np.sort(bona)
    k = int(np.floor(target * s.size))
    return float(np.nextafter(s[s.size - k - 1], np.inf))


def rates(bona: np.ndarray, morphs: np.ndarray, threshold: float) -> dict:
    """D-EER, MACER and BPCER at ``threshold``, BPCER at MACER 5% / 10% (morph scores: high = morph)."""
    metrics = pad_metrics(-bona, {"morph": -morphs}, targets=MACER_TARGETS)  # pad_metrics wants bona fide high
    return {
        "d_eer": metrics.eer,
        "macer": float(np.mean(morphs < threshold)),
        "bpcer": float(np.mean(bona >= threshold)),
        **{f"bpcer_at_macer_{t:g}": metrics.bpcer_at_apcer[t] for t in MACER_TARGETS},
        "bona_fide": int(bona.size),
        "morphs": int(morphs.size),
    }


def fit(x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> dict:
    """Standardise on fit, choose L2 on validation D-EER, threshold at validation BPCER 5%."""
    mean, scale = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6
    best = None
    for lam in LAMBDAS:
        coef, bias = fit_logistic((x_fit - mean) / scale, y_fit, lam)
        val = sigmoid((x_val - mean) / scale @ coef + bias)
        eer = pad_metrics(-val[y_val == 0], {"morph": -val[y_val == 1]}).eer
        print(f"  lambda {lam:g}: validation D-EER {100 * eer:.2f}%")
        if best is None or eer < best["val_d_eer"]:
            best = {"lambda": lam, "coef": coef, "bias": bias, "val_d_eer": eer, "val_scores": val}
    best["threshold"] = threshold_at_bpcer(best["val_scores"][y_val == 0], TARGET_BPCER)
    best.update(mean=mean, scale=scale)
    return best


def score(model: dict, x: np.ndarray) -> np.ndarray:
    """Morph probabilities under a fitted model."""
    return sigmoid((x - model["mean"]) / model["scale"] @ model["coef"] + model["bias"])


def pct(v: float) -> str:
    """A rate as a percentage with one decimal."""
    return f"{100 * v:.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--morphs", type=int, default=600, help="training morphs, fit + validation (80/20)")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="weights file to write (the control variant)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv2.setNumThreads(1)
    start = time.time()
    images = LFW / "images"
    engine = Engine("accurate", fmr=OPERATING_FMR)

    test_cases = independent_cases(images, TEST_COUNT, TEST_SEED)
    test_cases, failed = build_morphs(engine, images, test_cases, TEST_MORPHS)
    test_people = people_of({p for c in test_cases for p in (c.a, c.b, c.ref_a, c.ref_b)})
    dev_test = sorted({p for pair in read_pairs(LFW / "pairsDevTest.txt") for p in (pair.a, pair.b)})
    dev_train_people = people_of({p for pair in read_pairs(LFW / "pairsDevTrain.txt") for p in (pair.a, pair.b)})
    train_people = sorted(dev_train_people - test_people - people_of(set(dev_test)))
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train_people))
    n_val = len(train_people) // 5
    splits = {"val": sorted(train_people[i] for i in order[:n_val]),
              "fit": sorted(train_people[i] for i in order[n_val:])}
    n_val_morphs = args.morphs // 5
    train_cases = {"fit": paired_cases(splits["fit"], args.morphs - n_val_morphs, rng, "fit"),
                   "val": paired_cases(splits["val"], n_val_morphs, rng, "val")}
    train_dir = OUT / "morphs-train"
    for split, cases in list(train_cases.items()):
        train_cases[split], more = build_morphs(engine, images, cases, train_dir)
        failed += more
    print(f"people: {len(train_people)} for training ({len(splits['fit'])} fit, {len(splits['val'])} validation; "
          f"{len(dev_train_people) - len(train_people)} DevTrain people left out as test-morph contributors), "
          f"test morphs {len(test_cases)} from {len(test_people)} people, test bona fide {len(dev_test)} images; "
          f"{len(failed)} morphs failed")

    cache = FeatureCache(OUT / f"features-{FEATURE_VERSION}.npz")
    try:
        morph_x = {(split, cond): cache.features(train_dir, "train", [c.morph for c in cases], cond)
                   for split, cases in train_cases.items() for cond in ("as-is", "laundered")}
        morph_names = [c.morph for c in test_cases]
        morph_x.update({("test", cond): cache.features(TEST_MORPHS, "independent", morph_names, cond)
                        for cond in ("as-is", "laundered", "unseen")})
        train_bona = ("as-is", "resaved", "laundered")
        bona_names = {split: [first_image(p) for p in people] for split, people in splits.items()}
        bona_x = {(split, cond): cache.features(images, "lfw", names, cond)
                  for split, names in bona_names.items() for cond in train_bona}
        bona_x.update({("test", cond): cache.features(images, "lfw", dev_test, cond) for cond in CONDITIONS})
    finally:
        cache.save()
    feature_s = time.time() - start

    def clean(x: np.ndarray) -> np.ndarray:
        return x[~np.isnan(x).any(axis=1)]

    no_face = {f"{kind} {split} {cond}": int(np.isnan(v).any(axis=1).sum())
               for kind, xs in (("morphs", morph_x), ("bona fide", bona_x)) for (split, cond), v in xs.items()}
    ref_names = sorted({c.ref_a for c in test_cases} | {c.ref_b for c in test_cases})
    ref_t, _ = lfw_templates(engine, images, ref_names)
    morph_t, _ = lfw_templates(engine, TEST_MORPHS, [c.morph for c in test_cases])
    face_threshold = float(engine.profile.thresholds[OPERATING_FMR])
    min_sim = np.array([min(float(morph_t[c.morph] @ ref_t[c.ref_a]), float(morph_t[c.morph] @ ref_t[c.ref_b]))
                        for c in test_cases])
    matches_both = min_sim >= face_threshold
    test_found = ~np.isnan(morph_x[("test", "as-is")]).any(axis=1)

    models, results = {}, {}
    for variant, training in VARIANTS.items():
        print(f"variant {variant}: (bona fide, morph) conditions {training}")
        xs = {s: (np.vstack([clean(bona_x[(s, b)]) for b, _ in training]),
                  np.vstack([clean(morph_x[(s, m)]) for _, m in training])) for s in ("fit", "val")}
        x_fit = np.vstack(xs["fit"])
        y_fit = np.r_[np.zeros(len(xs["fit"][0])), np.ones(len(xs["fit"][1]))]
        x_val = np.vstack(xs["val"])
        y_val = np.r_[np.zeros(len(xs["val"][0])), np.ones(len(xs["val"][1]))]
        model = fit(x_fit, y_fit, x_val, y_val)
        models[variant] = model
        flagged = np.zeros(len(test_cases), dtype=bool)
        flagged[test_found] = score(model, morph_x[("test", "as-is")][test_found]) >= model["threshold"]
        results[variant] = {
            "lambda": model["lambda"], "threshold": model["threshold"], "val_d_eer": model["val_d_eer"],
            "test": {cond: rates(score(model, clean(bona_x[("test", cond)])),
                                 score(model, clean(morph_x[("test", "as-is" if cond == "resaved" else cond)])),
                                 model["threshold"]) for cond in CONDITIONS},
            "mmpmr": float(matches_both.mean()),
            "mmpmr_with_detector": float((matches_both & ~flagged).mean()),
        }

    shipped = models[SHIPPED]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    name = f"morph-detector-lr-seed{args.seed}"
    np.savez(args.out, mean=shipped["mean"].astype(np.float32), scale=shipped["scale"].astype(np.float32),
             coef=shipped["coef"].astype(np.float32), bias=np.float64(shipped["bias"]),
             threshold=np.float64(shipped["threshold"]), feature_version=FEATURE_VERSION, model=name)
    report = {"model": name, "seed": args.seed, "training_people": len(train_people),
              "fit_people": len(splits["fit"]), "val_people": len(splits["val"]),
              "training_morphs": {k: len(v) for k, v in train_cases.items()}, "test_morphs": len(test_cases),
              "test_bona_fide": len(dev_test), "no_face": no_face, "failed_morphs": failed,
              "face_threshold": face_threshold, "operating_fmr": OPERATING_FMR, "variants": results,
              "feature_seconds": round(feature_s, 1), "total_seconds": round(time.time() - start, 1)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=2))

    print()
    print("| detector (bona fide in training) | DevTest images scored | D-EER | MACER at threshold | "
          "BPCER at threshold | BPCER at MACER 5% | BPCER at MACER 10% |")
    print("|---|---|---|---|---|---|---|")
    labels = {"plain": "plain (as downloaded)", "control": "control (re-saved JPEG 95)",
              "augmented": f"augmented (control + both classes x{LAUNDER_SCALE} resized)"}
    labels[SHIPPED] = f"**{labels[SHIPPED]}, shipped**"
    tested = {"resaved": "bona fide re-saved JPEG 95; morphs", "as-is": "bona fide as downloaded; morphs",
              "laundered": f"both x{LAUNDER_SCALE} resized + JPEG 95",
              "unseen": f"both x{UNSEEN_SCALE} resized + JPEG {UNSEEN_QUALITY} (unseen in training)"}
    for variant in VARIANTS:
        for cond in ("resaved", "as-is", "laundered", "unseen"):
            r = results[variant]["test"][cond]
            print(f"| {labels[variant]} | {tested[cond]} | {pct(r['d_eer'])} | {pct(r['macer'])} | {pct(r['bpcer'])} | "
                  f"{pct(r['bpcer_at_macer_0.05'])} | {pct(r['bpcer_at_macer_0.1'])} |")
    print()
    print(f"| enrolment check (accurate profile, FMR {OPERATING_FMR:g}) | MMPMR | BPCER on DevTest photos |")
    print("|---|---|---|")
    print(f"| no morph detector | {pct(results['control']['mmpmr'])} | 0.0% |")
    for variant in VARIANTS:
        r = results[variant]
        print(f"| refuse what the {variant} detector flags | {pct(r['mmpmr_with_detector'])} | "
              f"{pct(r['test']['as-is']['bpcer'])} |")
    print(f"\nwrote {args.out} ({args.out.stat().st_size} bytes) and {OUT / 'report.json'} "
          f"in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
