"""Open-set 1:N identification evaluation: hand-computed metrics, the protocol split, distractors, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from faceprint.cli import main
from faceprint.evaluation.identification import (
    IdentificationReport,
    cmc,
    det_curve,
    distractor_pool,
    evaluate,
    fnir_at,
    fnir_at_fpir,
    fpir_at,
    list_images,
    real_distractor_templates,
    search,
    split_protocol,
    subsample_people,
    synthetic_distractors,
)

# Six probes computed by hand: three mated (mate rank, mate score) and three non-mated (top-1 score).
RANKS = np.array([1, 1, 2])
MATE = np.array([0.9, 0.6, 0.7])
NONMATED = np.array([0.8, 0.5, 0.3])


def test_cmc_by_hand():
    assert cmc(RANKS, (1, 2, 5)) == pytest.approx({1: 2 / 3, 2: 1.0, 5: 1.0})
    assert cmc(np.array([3, 1, 7, 1, 2]), (1, 5)) == pytest.approx({1: 0.4, 5: 0.8})
    with pytest.raises(ValueError):
        cmc(np.array([], dtype=int))


def test_fpir_fnir_six_probes_by_hand():
    # t = 0.55: non-mated 0.8 accepted -> FPIR 1/3; mated: 0.9 (rank 1) and 0.6 (rank 1) hit,
    # 0.7 at rank 2 misses -> FNIR 1/3.
    assert fpir_at(NONMATED, 0.55) == pytest.approx(1 / 3)
    assert fnir_at(RANKS, MATE, 0.55) == pytest.approx(1 / 3)
    # t = 0.85: no false positive; only the 0.9 mate hits -> FNIR 2/3.
    assert fpir_at(NONMATED, 0.85) == 0.0
    assert fnir_at(RANKS, MATE, 0.85) == pytest.approx(2 / 3)
    # t <= 0.3: every non-mated probe is a false positive; the rank-2 mate still misses.
    assert fpir_at(NONMATED, 0.3) == 1.0
    assert fnir_at(RANKS, MATE, 0.3) == pytest.approx(1 / 3)


def test_fnir_at_fpir_threshold_on_nonmated_top1():
    # FPIR <= 0.34 with 3 non-mated probes allows one: t just above the 2nd largest (0.5).
    fnir, t, why = fnir_at_fpir(RANKS, MATE, NONMATED, 0.34)
    assert why is None
    assert 0.5 < t < 0.5 + 1e-12
    assert fpir_at(NONMATED, t) == pytest.approx(1 / 3)
    assert fnir == pytest.approx(1 / 3)
    # FPIR 0.1 needs 10 non-mated probes.
    assert fnir_at_fpir(RANKS, MATE, NONMATED, 0.1) == (None, None, "needs >= 10 non-mated probes, have 3")


def test_det_curve_by_hand():
    fpir, fnir, thr = det_curve(RANKS, MATE, NONMATED)
    np.testing.assert_allclose(thr, [0.9, 0.8, 0.6, 0.5, 0.3])
    np.testing.assert_allclose(fpir, [0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(fnir, [2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3])


def test_search_ranks_and_scores():
    angles = np.deg2rad([0.0, 30.0, 90.0])
    gallery = np.c_[np.cos(angles), np.sin(angles)] * np.array([[2.0], [1.0], [3.0]])  # normalised inside
    probes = np.array([[1.0, 0.0], [np.cos(np.deg2rad(80)), np.sin(np.deg2rad(80))], [0.0, -1.0]])
    res = search(probes, gallery, [0, 0, -1])
    np.testing.assert_array_equal(res.top1_index, [0, 2, 0])
    np.testing.assert_allclose(res.top1_score, [1.0, np.cos(np.deg2rad(10)), 0.0], atol=1e-6)
    # probe 1 (80 deg) against its mate at 0 deg: beaten by 90 and 30 deg -> rank 3
    np.testing.assert_array_equal(res.mate_rank, [1, 3])
    np.testing.assert_allclose(res.mate_score, [1.0, np.cos(np.deg2rad(80))], atol=1e-6)
    with pytest.raises(ValueError):
        search(probes, gallery, [0, 5, -1])


def _fake_lfw(root):
    people = {"Ann": 3, "Bob": 1, "Cid": 2, "Dee": 1, "Eve": 1}
    for person, n in people.items():
        (root / person).mkdir(parents=True)
        for i in range(n, 0, -1):  # created in reverse order: the split must sort
            (root / person / f"{person}_{i:04d}.jpg").write_bytes(b"")
    (root / "Ann" / "notes.txt").write_text("not an image")
    (root / "stray.jpg").write_bytes(b"")  # not in a person folder: ignored
    return people


def test_protocol_split_on_fake_tree(tmp_path):
    _fake_lfw(tmp_path)
    names = list_images(tmp_path)
    assert names[:3] == ["Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", "Ann/Ann_0003.jpg"]
    assert len(names) == 8
    split = split_protocol(list(reversed(names)))
    assert split.people == ["Ann", "Cid"]
    assert split.gallery == ["Ann/Ann_0001.jpg", "Cid/Cid_0001.jpg"]
    assert split.mated == ["Ann/Ann_0002.jpg", "Ann/Ann_0003.jpg", "Cid/Cid_0002.jpg"]
    assert split.mated_people == [0, 0, 1]
    assert split.nonmated == ["Bob/Bob_0001.jpg", "Dee/Dee_0001.jpg", "Eve/Eve_0001.jpg"]


def test_subsample_people_is_deterministic(tmp_path):
    _fake_lfw(tmp_path)
    names = list_images(tmp_path)
    a = subsample_people(names, 3, seed=1)
    assert a == subsample_people(names, 3, seed=1)
    assert len({n.split("/")[0] for n in a}) == 3
    assert a == sorted(a) and set(a) <= set(names)
    assert subsample_people(names, None) == names
    assert subsample_people(names, 99) == names


def _templates(n_people=40, dim=16, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_people, dim))
    gallery = centres + 0.3 * rng.standard_normal(centres.shape)
    mated = centres + 0.3 * rng.standard_normal(centres.shape)
    nonmated = rng.standard_normal((n_people * 3, dim))
    return gallery, mated, list(range(n_people)), nonmated


def test_synthetic_distractors_unit_norm_and_count():
    gallery = _templates()[0]
    d = synthetic_distractors(gallery, 1234, seed=5)
    assert d.shape == (1234, gallery.shape[1]) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(d, synthetic_distractors(gallery, 1234, seed=5))
    assert synthetic_distractors(gallery, 0).shape == (0, gallery.shape[1])
    # real ones come first, then synthetic
    real = np.eye(gallery.shape[1])[:3]
    pool, n_real = distractor_pool(gallery, 10, real)
    assert n_real == 3 and pool.shape == (10, gallery.shape[1])
    np.testing.assert_allclose(pool[:3], real)


def test_evaluate_rows_per_distractor_count():
    gallery, mated, mates, nonmated = _templates()
    results, curves = evaluate(gallery, mated, mates, nonmated, [500, 0], real_distractors=np.eye(16)[:2])
    assert [r.distractors for r in results] == [0, 500]
    assert [r.gallery_size for r in results] == [40, 540]
    assert (results[1].real_distractors, results[1].synthetic_distractors) == (2, 498)
    assert results[0].rank1 == 1.0 and results[1].rank1 <= results[0].rank1
    assert results[0].fnir_at_fpir_1e2 is not None and results[0].fnir_at_fpir_1e3 is None
    assert "fnir_at_fpir_1e3" in results[0].notes
    assert set(curves) == {0, 500}
    report = IdentificationReport(profile="p", model="m", images="x", people=160, gallery=40, mated_probes=40,
                                  nonmated_probes=120, results=results)
    json.dumps(report.to_dict())
    assert any("rank-1" in line for line in report.summary_lines())


def test_real_distractors_largest_face(data_dir, engine_fast, tmp_path):
    source = data_dir / "age" / "utkface-sample"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in sorted(source.iterdir())[:3]:
        shutil.copy(path, folder / path.name)
    vectors, how = real_distractor_templates(engine_fast, folder, progress=False, cache_dir=tmp_path / "cache")
    assert vectors.shape[0] == how.get("detected", 0) >= 2
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_cli_eval_identify_on_lfw(data_dir, tmp_path, capsys):
    images = data_dir / "lfw-view1" / "images"
    if not images.is_dir():
        pytest.skip(f"{images} not found")
    out = tmp_path / "out"
    code = main(["eval", "identify", "--images", str(images), "--model", "fast", "--max-people", "300",
                 "--distractors", "0,2000", "--out", str(out), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    assert (out / "det.png").stat().st_size > 1000
    assert printed["gallery"] == report["gallery"] > 50
    assert report["people"] == 300
    rows = report["results"]
    assert [r["gallery_size"] for r in rows] == [report["gallery"], report["gallery"] + 2000]
    assert rows[0]["rank1"] > 0.9 and rows[0]["rank5"] >= rows[0]["rank1"]
    assert rows[0]["fnir_at_fpir_1e2"] is not None
