"""Look-alike impersonation (eval impersonation) and what a template leaks (leakage), on real UTKFace faces."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faceprint.evaluation.fairness import read_utkface, utkface_templates
from faceprint.evaluation.impersonation import success_probability
from tests.cli_run import run


@pytest.fixture(scope="module")
def utk(data_dir):
    sample, train = data_dir / "age" / "utkface-sample", data_dir / "age" / "utkface-train"
    if not (sample.is_dir() and train.is_dir()):
        pytest.skip(f"UTKFace folders not found under {data_dir / 'age'}")
    return sample, train


def test_success_probability_is_the_hypergeometric_chance():
    assert success_probability(np.array([10]), np.array([1]), 1)[0] == pytest.approx(0.1)
    assert success_probability(np.array([10]), np.array([1]), 10)[0] == pytest.approx(1.0)
    assert success_probability(np.array([10, 0]), np.array([0, 0]), 5).tolist() == [0.0, 0.0]
    expected = 1 - math.comb(98, 10) / math.comb(100, 10)
    assert success_probability(np.array([100]), np.array([2]), 10)[0] == pytest.approx(expected)
    assert success_probability(np.array([5]), np.array([1]), 100)[0] == pytest.approx(1.0)  # pool drawn whole


def _subset(folder, target, names):
    target.mkdir()
    for name in names:
        (target / name).symlink_to(folder / name)
    return target


def test_impersonation_on_real_faces(utk, tmp_path, capsys):
    sample, train = utk
    subjects, _ = read_utkface(sample)
    adults = [s.name for s in subjects if s.age >= 18][:25]
    pool, _ = read_utkface(train)
    targets = _subset(sample, tmp_path / "targets", adults)
    attackers = _subset(train, tmp_path / "attackers", [s.name for s in pool][::150])  # about 80, every age
    out = tmp_path / "imp"
    code, text, err = run(capsys, "eval", "impersonation", "--targets", targets, "--attackers", attackers,
                          "--profiles", "fast", "--out", out, "--no-cache")
    assert code == 0, err
    assert "look-alike" in text and "N=100" in text and (out / "impersonation.png").stat().st_size > 10_000
    report = json.loads((out / "report.json").read_text())
    assert report["target_count"] == 25
    rates = {(r["scores"], r["fmr"], r["pool"], r["attack_size"]): r for r in report["rates"]}
    for scores in {r["scores"] for r in report["rates"]}:
        for pool_name in ("attribute-matched", "random"):
            for fmr in (1e-3, 1e-4, 1e-5):  # more photos never help less; a stricter threshold never more
                s = [rates[scores, fmr, pool_name, n]["success"] for n in (1, 10, 100)]
                assert s == sorted(s)
            assert (rates[scores, 1e-5, pool_name, 100]["success"]
                    <= rates[scores, 1e-3, pool_name, 100]["success"])
        # 80 strangers drawn whole at N=100: someone passes for a sizeable share of targets at FMR 1e-3
        assert rates[scores, 1e-3, "random", 100]["success"] > 0


def test_templates_leak_gender_but_not_through_another_key_or_the_ciphertext(engine_fast, utk):
    pytest.importorskip("sklearn")
    from faceprint.evaluation.leakage import measure_leakage

    sample, _ = utk
    subjects, _ = read_utkface(sample)
    chosen = [s for s in subjects if s.age >= 18][:240]
    vectors, _ = utkface_templates(engine_fast, sample, [s.name for s in chosen], progress=False, cache=False)
    found = [s for s in chosen if np.any(vectors[s.name])]
    x = np.stack([vectors[s.name] for s in found])
    results = measure_leakage(x, {"gender": [s.gender for s in found]}, folds=3,
                              conditions=("plain", "rotate, other key", "ciphertext at rest"),
                              classifiers=("logistic regression",))
    by = {r.condition: r.balanced_accuracy for r in results}
    assert by["plain"] > 0.8  # what anyone holding the gallery learns without the photos
    assert by["rotate, other key"] < 0.65 and by["ciphertext at rest"] < 0.65  # about chance (0.5)
