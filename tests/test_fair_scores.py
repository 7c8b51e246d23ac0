"""Fair scores in production: Engine(fair=True), --fair, fair galleries and collections, on real faces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceprint import Engine
from faceprint.errors import ModelMismatchError, NoFaceError, UnsupportedInputError
from faceprint.evaluation.fairness import read_utkface
from faceprint.matching.normalisation import (NormaliserMissingError, ScoreNormaliser, fair_model_id, is_fair_model,
                                              plain_model_id, weights_path)
from tests.cli_run import run


@pytest.fixture(scope="module")
def fair(data_dir):
    if not weights_path("accurate").is_file():
        pytest.fail(f"no shipped normaliser at {weights_path('accurate')}: run scripts/fit_fair_normaliser.py --ship")
    return Engine("accurate", fair=True)


@pytest.fixture(scope="module")
def knn(data_dir):
    return data_dir / "knn-small"


def test_fair_engine_has_its_own_model_id_and_calibrated_thresholds(fair, engine):
    assert fair.model_id == "faceprint-accurate-v2+fair" == fair_model_id(engine.model_id)
    assert is_fair_model(fair.model_id) and plain_model_id(fair.model_id) == engine.model_id
    norm = fair.normaliser
    assert norm.model == engine.model_id and norm.fitted_on
    assert fair.threshold == pytest.approx(norm.threshold_at(1e-3))
    assert set(norm.thresholds) >= {1e-2, 1e-3, 1e-4, 1e-5}
    assert sorted(norm.thresholds.values()) == [norm.thresholds[f] for f in sorted(norm.thresholds, reverse=True)]
    assert fair.duplicate_threshold >= norm.threshold_at(1e-5) - 1e-9


def test_fair_verify_on_real_faces(fair, engine, knn):
    same = fair.verify(knn / "train/obama/obama.jpg", knn / "test/obama1.jpg")
    other = fair.verify(knn / "train/obama/obama.jpg", knn / "train/biden/biden.jpg")
    assert same.is_match and not other.is_match
    assert same.model == fair.model_id and same.threshold == fair.threshold
    a, b = (engine.embed(p) for p in (knn / "train/obama/obama.jpg", knn / "test/obama1.jpg"))
    raw = float(a.vector @ b.vector)
    expected = raw - 0.5 * (fair.normaliser.offset(a.vector)[0] + fair.normaliser.offset(b.vector)[0])
    assert same.similarity == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ModelMismatchError, match="--fair"):
        fair.compare(a, b)  # plain templates are refused, with the way out


def test_fair_scores_cut_false_matches_among_children(fair, engine, data_dir):
    """40 UTKFace children: at FMR 1e-3 the plain LFW-calibrated threshold accepts a large share of their
    impostor pairs (0.41 in docs/fairness.md); the fair threshold accepts far fewer."""
    root = data_dir / "age" / "utkface-sample"
    subjects, _ = read_utkface(root)
    vectors = []
    for s in (s for s in subjects if s.age <= 10):
        try:
            vectors.append(engine.embed(root / s.name, largest=True).vector)
        except NoFaceError:  # a few chips are too blurred for the quality gate
            continue
        if len(vectors) == 40:
            break
    vectors = np.stack(vectors)
    upper = np.triu_indices(len(vectors), k=1)
    plain = (vectors @ vectors.T)[upper] >= engine.threshold
    fair_accepts = fair.scores(vectors, vectors)[upper] >= fair.threshold
    assert plain.mean() > 0.1
    assert fair_accepts.mean() < plain.mean() / 5


def test_fair_gallery_search_and_refusal_of_the_other_kind(fair, engine, knn, tmp_path):
    gallery = tmp_path / "fair.db"
    for person in ("obama", "biden"):
        fair.enroll(person, sorted((knn / "train" / person).glob("*.jpg")), gallery=gallery)
    with fair.open_gallery(gallery) as store:
        assert store.model == fair.model_id
        probe = fair.embed(knn / "test/obama1.jpg")
        ranked = fair.search(store, probe.vector[None, :], k=2)[0]
        _, pids, vecs = store.matrix()
        scores = fair.normaliser.normalise(probe.vector, vecs)[0]
        best = {int(p): float(scores[pids == p].max()) for p in set(pids.tolist())}
        assert [c.score for c in ranked] == pytest.approx(sorted(best.values(), reverse=True), abs=1e-6)
    hits = fair.identify(knn / "test/obama1.jpg", gallery)
    assert hits[0].person == "obama" and hits[0].threshold == fair.threshold
    with pytest.raises(ModelMismatchError, match="fair-normalised.*--fair"):
        engine.open_gallery(gallery)
    plain = tmp_path / "plain.db"
    engine.enroll("obama", [knn / "train/obama/obama.jpg"], gallery=plain)
    with pytest.raises(ModelMismatchError, match="not fair-normalised.*without --fair"):
        fair.identify(knn / "test/obama1.jpg", plain)


def test_fair_is_refused_where_it_cannot_work(data_dir):
    with pytest.raises(NormaliserMissingError, match="fair scores .* work with .*accurate"):
        Engine("dlib", fair=True)
    from faceprint.privacy.cancelable import CancelableTransform
    from faceprint.privacy.crypto import GalleryKey

    with pytest.raises(UnsupportedInputError, match="cancelable"):
        Engine("accurate", fair=True, transform=CancelableTransform(GalleryKey(b"k" * 32)))


def test_cli_fair_verify_enroll_identify(fair, knn, tmp_path, capsys):
    code, out, _ = run(capsys, "verify", knn / "train/obama/obama.jpg", knn / "test/obama1.jpg", "--fair")
    assert code == 0 and "+fair" in out
    gallery = tmp_path / "cli.db"
    code, out, err = run(capsys, "enroll", "--gallery", gallery, "--tree", knn / "train", "--fair", "--workers", "1",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == "faceprint-accurate-v2+fair"  # batch enrolment keeps the fair model id
    code, out, _ = run(capsys, "identify", knn / "test/obama1.jpg", "--gallery", gallery, "--fair", "--json")
    assert code == 0 and json.loads(out)["results"][0]["person"] == "obama"
    code, _, err = run(capsys, "identify", knn / "test/obama1.jpg", "--gallery", gallery)
    assert code == 2 and "fair-normalised" in err and "--fair" in err


def test_service_collection_with_fair_scores(data_dir, knn, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from faceprint.service.app import ServiceSettings, create_app

    app = create_app(ServiceSettings(tmp_path / "svc", profile="accurate", workers=1, warm=False))
    admin, _ = app.state.service.keys.create("admin", ["*"])
    h = {"Authorization": f"Bearer {admin}"}
    with TestClient(app) as client:
        r = client.post("/v1/collections", json={"name": "fairdoor", "fair": True}, headers=h)
        assert r.status_code == 201, r.text
        info = r.json()
        norm = ScoreNormaliser.for_profile("accurate", "faceprint-accurate-v2")
        assert info["fair"] is True and info["model"].endswith("+fair")
        assert info["threshold"] == pytest.approx(norm.threshold_at(1e-3))
        enrol = [("images", ("obama.jpg", (knn / "train/obama/obama.jpg").read_bytes(), "image/jpeg"))]
        assert client.post("/v1/collections/fairdoor/persons/obama/faces", files=enrol, headers=h).status_code == 201
        probe = [("image", ("obama1.jpg", (knn / "test/obama1.jpg").read_bytes(), "image/jpeg"))]
        r = client.post("/v1/collections/fairdoor/persons/obama/verify", files=probe, headers=h)
        assert r.status_code == 200 and r.json()["is_match"] and r.json()["model"].endswith("+fair")
        r = client.post("/v1/collections", json={"name": "nofair", "profile": "dlib", "fair": True}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "normaliser_missing"
