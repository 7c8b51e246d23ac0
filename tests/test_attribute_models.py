"""The expression and age/gender models on real faces: FER2013 PrivateTest crops, UTKFace chips, photos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceprint.errors import UnsupportedInputError
from faceprint.models import registry
from faceprint.models.age_gender import AgeGender, AgeGenderNet
from faceprint.models.expression import CLASSES, ExpressionNet


@pytest.fixture(scope="module")
def expression() -> ExpressionNet:
    return registry.load(ExpressionNet.card.name)


@pytest.fixture(scope="module")
def age_gender() -> AgeGenderNet:
    return registry.load(AgeGenderNet.card.name)


def _grey(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def _rgb(path):
    from faceprint.pipeline.image_io import load_image

    return load_image(path)


def test_happy_and_surprised_fer_crops_are_read_as_such(expression, data_dir):
    folder = data_dir / "expression" / "fer2013-sample"
    for name, n in (("happy", 24), ("surprise", 24)):
        crops = [_grey(p) for p in sorted((folder / name).iterdir())[:n]]
        p = expression.predict_crops(crops)
        assert p.shape == (n, 7) and p.dtype == np.float32
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
        hits = (p.argmax(axis=1) == CLASSES.index(name)).mean()
        assert hits >= 0.6, f"{name}: {hits:.2f} of {n} crops"  # chance: 1 in 7
    rgb = np.repeat(crops[0][..., None], 3, axis=2)  # an RGB crop gives the grey one's answer
    assert np.allclose(expression.predict_crops([rgb]), expression.predict_crops([crops[0]]), atol=1e-5)


def test_expression_on_detected_faces_and_bad_crops(expression, data_dir, engine_fast):
    image = _rgb(data_dir / "video" / "obama.jpg")  # smiling
    faces = engine_fast.detect(image)
    p = expression.predict(image, faces)
    assert p.shape == (len(faces), 7) and CLASSES[int(p[0].argmax())] == "happy"
    assert expression.crop(image, faces[0]).shape == (48, 48)
    assert expression.predict(image, []).shape == (0, 7)
    with pytest.raises(UnsupportedInputError, match="grey"):
        expression.predict_crops([np.zeros((4, 4, 2), np.uint8)])


def _utk(data_dir, predicate, n):
    folder = data_dir / "age" / "utkface-sample"
    files = [p for p in sorted(folder.iterdir()) if predicate(int(p.name.split("_")[0]))]
    return files[:n]


def test_older_faces_are_estimated_older_than_children(age_gender, data_dir, engine_fast):
    estimates = {}
    for label, predicate in (("child", lambda a: a <= 8), ("old", lambda a: a >= 65)):
        crops = []
        for path in _utk(data_dir, predicate, 6):
            image = _rgb(path)
            face = engine_fast.detect(image)[0]
            crops.append(age_gender.crop(image, face))
        estimates[label] = age_gender.predict_crops(crops)
    child, old = estimates["child"], estimates["old"]
    assert isinstance(child, AgeGender) and len(child) == 6
    assert np.median(old.age) > np.median(child.age) + 25
    assert np.all(child.age_low <= child.age) and np.all(child.age <= child.age_high)
    assert np.all((old.p_female >= 0) & (old.p_female <= 1))


def test_gender_appearance_on_utkface(age_gender, data_dir, engine_fast):
    files = _utk(data_dir, lambda a: 20 <= a <= 50, 16)
    crops, labels = [], []
    for path in files:
        image = _rgb(path)
        crops.append(age_gender.crop(image, engine_fast.detect(image)[0]))
        labels.append(int(path.name.split("_")[1]))  # 0 male, 1 female
    p = age_gender.predict_crops(crops).p_female
    assert ((p > 0.5) == np.array(labels, bool)).mean() >= 0.75
    assert len(age_gender.predict_crops([])) == 0


def test_eval_expression_on_fer_and_ckplus_folders(capsys, data_dir, tmp_path):
    from cli_run import run

    code, out, _ = run(capsys, "--json", "eval", "expression", data_dir / "expression" / "fer2013-sample",
                       "--limit", 8, "--out", tmp_path / "fer")
    report = json.loads(out)
    assert code == 0 and report["n"] == 7 * 8 and 0.4 <= report["accuracy"] <= 1.0
    assert report["recall"]["happy"] >= 0.75 and 0 < report["macro_f1"] <= 1
    assert np.array(report["confusion"]).sum() == report["n"] and (tmp_path / "fer" / "confusion.png").stat().st_size
    code, out, _ = run(capsys, "eval", "expression", data_dir / "expression" / "ckplus48", "--limit", 5)
    assert code == 0 and "anger -> angry" in out and "contempt: not one of the model's classes" in out


def test_eval_age_on_utkface_names_and_bad_folders(capsys, data_dir, tmp_path):
    from cli_run import run

    code, out, _ = run(capsys, "--json", "eval", "age", data_dir / "age" / "utkface-sample", "--limit", 24,
                       "--out", tmp_path / "age")
    report = json.loads(out)
    assert code == 0 and report["n"] == 24 and 0 < report["mae"] < 15
    groups = {(g["attribute"], g["group"]) for g in report["groups"]}
    assert ("all", "all") in groups and any(a == "decade" for a, _ in groups) and any(a == "race" for a, _ in groups)
    assert (tmp_path / "age" / "mae_by_decade.png").stat().st_size > 0
    code, _, err = run(capsys, "eval", "age", data_dir / "expression" / "ckplus48" / "happy", "--limit", 2)
    assert code == 2 and "not a UTKFace file name" in err
    code, _, err = run(capsys, "eval", "expression", data_dir / "age" / "utkface-sample")
    assert code == 2 and "one sub-folder per expression" in err


def _benchmark(name: str, *args: object, timeout: float) -> str:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / name), *map(str, args)], cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_attributes_benchmark_runs(data_dir):
    out = _benchmark("attributes.py", "--limit", 16, "--faces", 4, timeout=300)
    assert "faceprint age-gender" in out and "faceprint expression + age-gender" in out


@pytest.mark.slow
def test_ckplus_subject_disjoint_refit_beats_85_percent(data_dir):
    out = _benchmark("expression_ckplus.py", timeout=600)
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy > 85.0, out
