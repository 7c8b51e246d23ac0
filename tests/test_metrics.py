"""Tests for faceprint.evaluation: metrics, LFW pair files and ROC/DET plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from faceprint.evaluation.lfw import Pair, image_path, missing_images, pair_scores, read_pairs
from faceprint.evaluation.metrics import (
    auc,
    best_accuracy_threshold,
    eer,
    kfold_accuracy,
    roc_curve,
    threshold_at_fmr,
    tmr_at_fmr,
    verification_report,
)
from faceprint.evaluation.plots import plot_roc_det

# genuine: 0.9, 0.8, 0.3 ; impostor: 0.7, 0.2, 0.1
HAND_SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
HAND_LABELS = np.array([1, 1, 0, 1, 0, 0])

REAL_VIEW1 = Path(__file__).resolve().parents[2] / "shared/data/lfw-view1/pairsDevTest.txt"


# ------------------------------------------------------------------ metrics: hand-computed


def test_roc_curve_hand_case():
    fmr, tmr, thr = roc_curve(HAND_SCORES, HAND_LABELS)
    np.testing.assert_allclose(fmr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tmr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert np.isinf(thr[0])
    np.testing.assert_allclose(thr[1:], [0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    assert np.all(np.diff(fmr) >= 0)


def test_auc_hand_case():
    # genuine > impostor comparisons: 0.9 beats 3, 0.8 beats 3, 0.3 beats 2 -> 8 of 9
    assert auc(HAND_SCORES, HAND_LABELS) == pytest.approx(8 / 9)


def test_auc_counts_ties_as_half():
    scores = np.array([2, 1, 1, 1, 0])
    labels = np.array([1, 1, 0, 0, 0])
    # pairs (g, i): (2,*) 3 wins; (1,1) x2 ties -> 1; (1,0) win -> total 5 of 6
    assert auc(scores, labels) == pytest.approx(5 / 6)


def test_auc_matches_brute_force_with_ties():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 8, size=300).astype(float)
    labels = rng.integers(0, 2, size=300)
    g = scores[labels == 1][:, None]
    i = scores[labels == 0][None, :]
    expected = np.mean((g > i) + 0.5 * (g == i))
    assert auc(scores, labels) == pytest.approx(expected)


def test_eer_hand_case_exact_crossing():
    rate, thr = eer(HAND_SCORES, HAND_LABELS)
    # at t = 0.7: FMR = 1/3 (0.7 accepted), FNMR = 1/3 (0.3 rejected)
    assert rate == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.7)


def test_eer_interpolated():
    scores = np.array([0.9, 0.4, 0.6, 0.1, 0.0, -0.1])
    labels = np.array([1, 1, 0, 0, 0, 0])
    # t=0.6: FMR .25, FNMR .5 ; t=0.4: FMR .25, FNMR 0 -> halfway: .25 at t=.5
    rate, thr = eer(scores, labels)
    assert rate == pytest.approx(0.25)
    assert thr == pytest.approx(0.5)


def test_best_accuracy_threshold_hand_case():
    # midpoints 0.25 and 0.75 both give 5/6; ties go to the smallest threshold
    thr, acc = best_accuracy_threshold(HAND_SCORES, HAND_LABELS)
    assert thr == pytest.approx(0.25)
    assert acc == pytest.approx(5 / 6)


def test_perfect_separation():
    scores = np.array([0.95, 0.9, 0.8, 0.4, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    thr, acc = best_accuracy_threshold(scores, labels)
    assert acc == 1.0
    assert thr == pytest.approx(0.6)
    assert auc(scores, labels) == 1.0
    assert eer(scores, labels)[0] == 0.0


def test_inverted_scores():
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    labels = np.array([1, 1, 0, 0])
    assert auc(scores, labels) == 0.0
    assert eer(scores, labels)[0] == pytest.approx(1.0)


def test_random_scores_auc_near_half():
    rng = np.random.default_rng(12345)
    scores = rng.normal(size=20000)
    labels = rng.integers(0, 2, size=20000)
    assert auc(scores, labels) == pytest.approx(0.5, abs=0.02)
    assert eer(scores, labels)[0] == pytest.approx(0.5, abs=0.02)


def test_input_validation():
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [1])
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [1, 1])  # no impostors
    with pytest.raises(ValueError):
        auc([0.1, np.nan], [1, 0])
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [1, 2])


# ------------------------------------------------------------------ threshold at FMR


def test_threshold_at_fmr_bound_on_normal_impostors():
    rng = np.random.default_rng(0)
    imp = rng.normal(size=100_000)
    t = threshold_at_fmr(imp, 1e-3)
    measured = np.mean(imp >= t)
    assert measured <= 1e-3
    assert measured > 0.5e-3


def test_threshold_at_fmr_is_smallest():
    imp = np.array([0.9, 0.5, 0.4, 0.3])
    t = threshold_at_fmr(imp, 0.25)  # one of four may be accepted
    assert np.mean(imp >= t) == 0.25
    assert t > 0.5
    assert np.nextafter(t, -np.inf) == 0.5  # any smaller float accepts 2 of 4


def test_threshold_at_fmr_ties_never_exceed_bound():
    imp = np.array([1.0, 1.0, 1.0, 0.0])
    t = threshold_at_fmr(imp, 0.5)
    assert np.mean(imp >= t) <= 0.5


def test_threshold_at_fmr_below_resolution_warns(caplog):
    imp = np.array([0.7, 0.2, 0.1])
    with caplog.at_level(logging.WARNING, logger="faceprint.evaluation.metrics"):
        t = threshold_at_fmr(imp, 0.1)
    assert t > 0.7 and t == pytest.approx(0.7)
    assert "resolution" in caplog.text


def test_threshold_at_fmr_rejects_bad_fmr():
    for bad in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(ValueError):
            threshold_at_fmr([0.1, 0.2], bad)


def test_tmr_at_fmr_hand_case():
    tmr, t = tmr_at_fmr(HAND_SCORES, HAND_LABELS, 0.34)  # one impostor (0.7) may pass
    assert t == pytest.approx(0.2) and t > 0.2
    assert tmr == 1.0
    tmr, t = tmr_at_fmr(HAND_SCORES, HAND_LABELS, 0.1)  # below 1/3 resolution
    assert t > 0.7
    assert tmr == pytest.approx(2 / 3)


# ------------------------------------------------------------------ k-fold


def test_kfold_threshold_uses_only_other_folds():
    scores = np.array([0.5, 0.45, 0.3, 0.2, 0.9, 0.8, 0.6, 0.55, 0.95, 0.85, 0.65, 0.5])
    labels = np.array([1, 1, 0, 0] * 3)
    folds = np.repeat([0, 1, 2], 4)
    # fold 0 alone would be perfectly separated at 0.375...
    own_thr, own_acc = best_accuracy_threshold(scores[:4], labels[:4])
    assert own_thr == pytest.approx(0.375) and own_acc == 1.0
    res = kfold_accuracy(scores, labels, folds)
    # ...but its threshold must come from folds 1 and 2: 0.725, rejecting both its genuines
    other_thr, _ = best_accuracy_threshold(scores[4:], labels[4:])
    assert res.thresholds[0] == pytest.approx(other_thr) == pytest.approx(0.725)
    assert res.accuracies[0] == pytest.approx(0.5)
    for j in (1, 2):
        mask = folds != j
        assert res.thresholds[j] == best_accuracy_threshold(scores[mask], labels[mask])[0]
    assert res.mean == pytest.approx(np.mean(res.accuracies))
    assert res.std == pytest.approx(np.std(res.accuracies))
    assert res.stderr == pytest.approx(np.std(res.accuracies, ddof=1) / np.sqrt(3))
    assert list(res.folds) == [0, 1, 2]


def test_kfold_perfect_separation_and_stats():
    rng = np.random.default_rng(1)
    n = 200
    labels = np.tile([1, 0], n // 2)
    scores = np.where(labels == 1, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.4, n))
    folds = np.repeat(np.arange(10), n // 10)
    res = kfold_accuracy(scores, labels, folds)
    assert res.accuracies.shape == (10,)
    assert res.mean == 1.0 and res.std == 0.0 and res.stderr == 0.0


def test_kfold_needs_two_folds():
    with pytest.raises(ValueError):
        kfold_accuracy(HAND_SCORES, HAND_LABELS, np.zeros(6, dtype=int))


# ------------------------------------------------------------------ report


def _synthetic(
    n_same: int, n_diff: int, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(0.6, 0.15, n_same), rng.normal(0.1, 0.15, n_diff)]
    labels = np.r_[np.ones(n_same, dtype=int), np.zeros(n_diff, dtype=int)]
    folds = np.r_[np.arange(n_same) % 10, np.arange(n_diff) % 10]
    return scores, labels, folds


def test_verification_report_small_set_has_no_tmr_at_1e3():
    scores, labels, folds = _synthetic(500, 500)
    rep = verification_report(scores, labels, folds)
    assert (rep.n_pairs, rep.n_same, rep.n_diff) == (1000, 500, 500)
    assert rep.tmr_at_fmr_1e3 is None
    assert "1000" in rep.notes["tmr_at_fmr_1e3"]
    assert rep.tmr_at_fmr_1e2 is not None and 0.0 < rep.tmr_at_fmr_1e2 <= 1.0
    assert len(rep.fold_accuracies) == 10
    assert 0.9 < rep.accuracy_mean <= 1.0
    assert rep.auc == pytest.approx(auc(scores, labels))
    assert rep.eer == pytest.approx(eer(scores, labels)[0])
    d = rep.to_dict()
    json.dumps(d)
    assert d["tmr_at_fmr_1e3"] is None
    lines = rep.summary_lines()
    assert all(isinstance(x, str) for x in lines)
    assert any("AUC" in x for x in lines) and any("n/a" in x for x in lines)


def test_verification_report_large_set_has_tmr_at_1e3():
    scores, labels, folds = _synthetic(1000, 2000)
    rep = verification_report(scores, labels, folds)
    assert rep.tmr_at_fmr_1e3 is not None
    assert rep.tmr_at_fmr_1e3 <= rep.tmr_at_fmr_1e2
    assert "tmr_at_fmr_1e3" not in rep.notes


# ------------------------------------------------------------------ LFW pair files


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _view1_text(n: int) -> str:
    same = [f"Person_{k}\t1\t{k + 2}" for k in range(n)]
    diff = [f"Alpha_{k} {k + 1} Beta_{k}  {k + 3}" for k in range(n)]  # spaces, double space
    return "\n".join([str(n), *same, *diff]) + "\n"


def test_read_pairs_view1(tmp_path):
    pairs = read_pairs(_write(tmp_path, "pairsDevTest.txt", _view1_text(20)))
    assert len(pairs) == 40
    assert pairs[0] == Pair("Person_0/Person_0_0001.jpg", "Person_0/Person_0_0002.jpg", True, 0)
    assert pairs[20] == Pair("Alpha_0/Alpha_0_0001.jpg", "Beta_0/Beta_0_0003.jpg", False, 0)
    assert [p.same for p in pairs] == [True] * 20 + [False] * 20
    # 10 contiguous chunks of 2 in each class
    assert [p.fold for p in pairs[:20]] == [k for k in range(10) for _ in range(2)]
    assert [p.fold for p in pairs[20:]] == [k for k in range(10) for _ in range(2)]


def test_read_pairs_view2(tmp_path):
    lines = ["2\t3"]
    for f in range(2):
        lines += [f"S{f}_{k}\t{k + 1}\t{k + 2}" for k in range(3)]
        lines += [f"A{f}_{k}\t1\tB{f}_{k}\t2" for k in range(3)]
    pairs = read_pairs(_write(tmp_path, "pairs.txt", "\n".join(lines) + "\n"))
    assert len(pairs) == 12
    assert [p.fold for p in pairs] == [0] * 6 + [1] * 6
    assert [p.same for p in pairs] == ([True] * 3 + [False] * 3) * 2
    assert pairs[7] == Pair("S1_1/S1_1_0002.jpg", "S1_1/S1_1_0003.jpg", True, 1)
    assert pairs[11] == Pair("A1_2/A1_2_0001.jpg", "B1_2/B1_2_0002.jpg", False, 1)


@pytest.mark.parametrize(
    ("text", "lineno"),
    [
        ("abc\nX\t1\t2\nA\t1\tB\t2\n", 1),  # non-integer header
        ("1 2 3\nX\t1\t2\nA\t1\tB\t2\n", 1),  # three header fields
        ("0\n", 1),  # non-positive count
        ("2\nX\t1\t2\nA\t1\tB\t2\nC\t1\tD\t2\nE\t1\tF\t2\n", 3),  # diff line in same section
        ("1\nX\t1\t2\nA\t1\t2\n", 3),  # same line in diff section
        ("1\nX\tone\t2\nA\t1\tB\t2\n", 2),  # non-integer index
        ("2\nX\t1\t2\nY\t1\t2\nA\t1\tB\t2\n", 4),  # too few lines
        ("1\nX\t1\t2\nA\t1\tB\t2\nC\t1\tD\t2\n", 4),  # too many lines
        ("1 1\nX\t1\t2\n", 2),  # view 2 too short
    ],
)
def test_read_pairs_malformed(tmp_path, text, lineno):
    path = _write(tmp_path, "bad.txt", text)
    with pytest.raises(ValueError, match=rf"bad\.txt:{lineno}:"):
        read_pairs(path)


def test_read_pairs_empty_file(tmp_path):
    with pytest.raises(ValueError):
        read_pairs(_write(tmp_path, "empty.txt", "\n\n"))


def test_read_pairs_real_view1_dev_test():
    if not REAL_VIEW1.is_file():
        pytest.skip(f"LFW View 1 pair file not found at {REAL_VIEW1}")
    pairs = read_pairs(REAL_VIEW1)
    assert len(pairs) == 1000
    assert sum(p.same for p in pairs) == 500
    folds = np.array([p.fold for p in pairs])
    assert np.bincount(folds).tolist() == [100] * 10
    same = np.array([p.same for p in pairs])
    assert np.bincount(folds[same]).tolist() == [50] * 10


def test_image_path_and_missing_images(tmp_path):
    assert image_path(tmp_path, "Ann_Lee", 7) == tmp_path / "Ann_Lee" / "Ann_Lee_0007.jpg"
    (tmp_path / "Ann_Lee").mkdir()
    image_path(tmp_path, "Ann_Lee", 1).write_bytes(b"x")
    pairs = [
        Pair("Ann_Lee/Ann_Lee_0001.jpg", "Ann_Lee/Ann_Lee_0002.jpg", True, 0),
        Pair("Ann_Lee/Ann_Lee_0001.jpg", "Bo/Bo_0001.jpg", False, 0),
    ]
    assert missing_images(tmp_path, pairs) == ["Ann_Lee/Ann_Lee_0002.jpg", "Bo/Bo_0001.jpg"]


def test_pair_scores_cosine():
    templates = {"a": np.array([2.0, 0.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.0, -3.0])}
    pairs = [Pair("a", "b", True, 0), Pair("a", "c", False, 0), Pair("b", "b", True, 0)]
    np.testing.assert_allclose(pair_scores(pairs, templates), [1 / np.sqrt(2), 0.0, 1.0])
    with pytest.raises(KeyError):
        pair_scores([Pair("a", "zzz", False, 0)], templates)
    with pytest.raises(ValueError):
        pair_scores([Pair("a", "z", False, 0)], {**templates, "z": np.zeros(2)})


# ------------------------------------------------------------------ plots


def test_plot_roc_det_writes_png(tmp_path):
    rng = np.random.default_rng(5)
    labels = np.r_[np.ones(500, dtype=int), np.zeros(5000, dtype=int)]
    good = np.r_[rng.normal(0.7, 0.1, 500), rng.normal(0.1, 0.1, 5000)]
    weak = np.r_[rng.normal(0.4, 0.2, 500), rng.normal(0.1, 0.2, 5000)]
    results = {"good": (good, labels), "weak": (weak, labels)}
    out = plot_roc_det(results, tmp_path / "sub" / "r.png", "t")
    assert out == tmp_path / "sub" / "r.png"
    data = out.read_bytes()
    assert len(data) > 1000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
