"""Per-group error rates, the FMR heatmap and fair score normalisation, on real UTKFace faces."""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest

from faceprint.evaluation import fairness as F
from faceprint.matching.normalisation import (
    NormaliserError,
    ScoreNormaliser,
    fit_normaliser,
    spherical_kmeans,
)


@pytest.fixture(scope="module")
def utk_dir(data_dir):
    root = data_dir / "age" / "utkface-sample"
    if not root.is_dir():
        pytest.skip(f"UTKFace sample not found at {root}")
    return root


def pick(root, n_per, predicate):
    subjects, _ = F.read_utkface(root)
    return [s for s in subjects if predicate(s)][:n_per]


# ------------------------------------------------------------------------------------ labels, rates


def test_read_utkface_parses_labels_and_skips_bad_names(tmp_path):
    for name in ("25_1_2_20170116174525125.jpg.chip.jpg", "3_0_4_20170104.jpg.chip.jpg", "39_1_20170116.jpg.chip.jpg"):
        (tmp_path / name).write_bytes(b"")
    subjects, skipped = F.read_utkface(tmp_path)
    assert skipped == ["39_1_20170116.jpg.chip.jpg"]
    by_age = {s.age: s for s in subjects}
    assert (by_age[25].gender, by_age[25].race, by_age[25].age_band) == ("female", "Asian", "18-29")
    assert (by_age[3].gender, by_age[3].race, by_age[3].age_band, by_age[3].group) == ("male", "Others", "0-17",
                                                                                      "male Others")
    assert F.Subject("x", 60, "male", "White").age_band == "60+"


def test_wilson_interval_contains_rate_and_shrinks_with_n():
    low, high = F.wilson_interval(5, 100)
    assert low < 0.05 < high
    low2, high2 = F.wilson_interval(50, 1000)
    assert high2 - low2 < high - low
    assert F.wilson_interval(0, 3000)[1] == pytest.approx(1.28e-3, rel=0.1)  # about 3.84 / n
    assert F.wilson_interval(0, 0) == (0.0, 1.0)


def test_group_rate_resolution_rule():
    assert F.GroupRate.of("g", 0, 3000, 1e-3).resolved  # rule of three
    assert not F.GroupRate.of("g", 0, 2999, 1e-3).resolved
    assert F.GroupRate.of("g", 10, 500, 1e-3).resolved  # enough errors to know the rate itself
    assert not F.GroupRate.of("g", 9, 500, 1e-3).resolved


def test_group_rates_and_cross_group_counts_are_exact():
    labels = ["a", "a", "a", "b", "b"]
    scores = np.zeros((5, 5))
    scores[0, 1] = scores[1, 0] = 0.9  # one accepted pair within a (of 3)
    scores[0, 3] = scores[3, 0] = 0.9  # one accepted pair across a-b (of 6)
    rates = {r.group: r for r in F.group_rates(scores, labels, 0.5, 1e-3)}
    assert (rates["a"].errors, rates["a"].n) == (1, 3)
    assert (rates["b"].errors, rates["b"].n) == (0, 1)
    fmr, pairs = F.cross_group_fmr(scores, labels, ["a", "b"], 0.5)
    assert pairs.tolist() == [[3, 6], [6, 1]]
    assert fmr[0, 1] == pytest.approx(1 / 6) and fmr[0, 0] == pytest.approx(1 / 3) and fmr[1, 1] == 0


def test_proxy_fnmr_rates_count_misses_per_group():
    subjects = [F.Subject("a.jpg", 30, "male", "White"), F.Subject("b.jpg", 5, "male", "Black"),
                F.Subject("c.jpg", 40, "female", "White")]
    rates = F.proxy_fnmr_rates(np.array([True, True, False]), subjects, ("gender", "race"))
    assert set(rates) == {"gender", "race"}
    assert [(r.group, r.errors, r.n) for r in rates["gender"]] == [("female", 0, 1), ("male", 2, 2)]
    assert [(r.group, r.errors, r.n) for r in rates["race"]] == [("Black", 1, 1), ("White", 1, 2)]
    assert not rates["race"][1].resolved  # 2 pairs: far below 3 / FNMR_TARGET


def test_max_min_ratio_uses_resolved_groups_only():
    rates = [F.GroupRate.of("a", 20, 1000, 1e-3), F.GroupRate.of("b", 10, 1000, 1e-3),
             F.GroupRate.of("c", 1, 10, 1e-3)]
    assert F.max_min_ratio(rates) == pytest.approx(2.0)
    assert F.max_min_ratio(rates[:1]) is None


def test_degrade_is_deterministic_and_lowers_quality(utk_dir):
    import cv2

    image = cv2.cvtColor(cv2.imread(str(next(iter(sorted(utk_dir.glob("*.jpg")))))), cv2.COLOR_BGR2RGB)
    a, b = F.degrade(image), F.degrade(image)
    assert a.shape == image.shape and np.array_equal(a, b)
    sharp = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    blurred = cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    assert blurred < 0.5 * sharp
    assert a.mean() < image.mean()  # gamma 1.5 darkens


# ------------------------------------------------------------------------------------ real faces


@pytest.fixture(scope="module")
def small_utk(utk_dir, tmp_path_factory):
    """A 48-image UTKFace folder: 24 young children and 24 adults (children match each other far more often)."""
    kids = pick(utk_dir, 24, lambda s: s.age <= 4)
    adults = pick(utk_dir, 24, lambda s: 25 <= s.age <= 50)
    folder = tmp_path_factory.mktemp("utk")
    for s in kids + adults:
        shutil.copy(utk_dir / s.name, folder / s.name)
    return folder


def test_run_fairness_on_real_faces(engine_fast, small_utk, tmp_path):
    report = F.run_fairness(engine_fast, small_utk, tmp_path, progress=False, cache=False)
    assert report.images == 48
    assert report.impostor_pairs == sum(n * (n - 1) // 2 for n in [48 - sum(report.failures_to_acquire.values())])
    ages = {r.group: r for r in report.fmr["age"]}
    # young children are much harder to tell apart than adults (NIST IR 8280 reports the same)
    adult = max([r.rate for g, r in ages.items() if g != "0-17"] + [1e-3])
    assert ages["0-17"].rate > 3 * adult
    # a mildly degraded copy of the same photo still matches
    assert report.overall_fnmr_proxy.rate <= 0.1
    for name in ("fmr_heatmap.png", "fmr_heatmap_adults.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.json").is_file()
    assert len(report.heatmap_pairs) == 10 and report.heatmap_pairs[0][0] >= 0


def test_fsn_narrows_the_gap_between_children_and_adults(engine_fast, small_utk, tmp_path):
    subjects, _ = F.read_utkface(small_utk)
    templates, _ = F.utkface_templates(engine_fast, small_utk, [s.name for s in subjects], progress=False,
                                       cache=False)
    keep = [s for s in subjects if np.any(templates[s.name])]
    v = np.stack([templates[s.name] for s in keep])
    child = np.array([s.age <= 4 for s in keep])
    norm = fit_normaliser(v, [s.name for s in keep], clusters=2, fmr=0.05, model=engine_fast.model_id)

    def fmr_gap(scores, threshold):
        def rate(mask):
            sub = scores[np.ix_(mask, mask)][np.triu_indices(int(mask.sum()), 1)]
            return float(np.mean(sub >= threshold))
        return rate(child) - rate(~child)

    raw = v @ v.T
    iu = np.triu_indices(len(keep), 1)
    raw_thr = np.sort(raw[iu])[::-1][int(0.05 * len(iu[0]))]
    before = fmr_gap(raw, raw_thr)
    after = fmr_gap(norm.normalise(v, v), norm.threshold)
    assert before > 0.1
    assert after < 0.5 * before

    path = norm.save(tmp_path / "fsn.npz")
    loaded = ScoreNormaliser.load(path)
    assert np.allclose(loaded.normalise(v, v), norm.normalise(v, v))
    assert loaded.model == engine_fast.model_id and loaded.threshold == pytest.approx(norm.threshold)
    loaded.check_model(engine_fast.model_id)
    with pytest.raises(Exception, match="fitted for model"):
        loaded.check_model("other-model")


def test_normaliser_errors(tmp_path):
    with pytest.raises(NormaliserError):
        spherical_kmeans(np.eye(3), 5)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(NormaliserError):
        ScoreNormaliser.load(bad)


def test_spherical_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0, 0]) + 0.05 * rng.normal(size=(30, 3))
    b = np.array([0, 1.0, 0]) + 0.05 * rng.normal(size=(30, 3))
    c = spherical_kmeans(np.vstack([a, b]), 2, seed=3)
    assert sorted(np.argmax(np.abs(c), axis=1).tolist()) == [0, 1]


def test_cli_eval_fairness(small_utk, tmp_path, capsys, engine_fast):
    from faceprint.cli import trust as cli_trust

    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    for flag, kw in (("--model", {"default": "fast"}), ("--model-config", {"default": None}),
                     ("--fmr", {"type": float, "default": 1e-3}), ("--threshold", {"type": float, "default": None}),
                     ("--json", {"action": "store_true"}), ("-v", {"action": "store_true"})):
        common.add_argument(flag, **kw)
    sub = parser.add_subparsers()
    eval_sub = sub.add_parser("eval").add_subparsers()
    cli_trust.register(sub, eval_sub, common)
    args = parser.parse_args(["eval", "fairness", "--images", str(small_utk), "--out", str(tmp_path), "--json",
                              "--no-cache"])
    assert args.func(args) == 0
    import json

    payload = json.loads(capsys.readouterr().out)
    assert payload["fairness"]["profile"] == "fast"
    assert {r["group"] for r in payload["fairness"]["fmr"]["gender"]} <= {"male", "female"}
