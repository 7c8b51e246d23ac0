"""The single-image morph detector: shipped weights, real morphs of LFW DevTest people, bad weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.models.morph_detector import (
    WEIGHTS,
    MorphCheck,
    MorphDetector,
    MorphModelError,
)

PAIRS = 5


def _jpeg95(image: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> MorphDetector:
    return MorphDetector()


def test_shipped_weights_load(detector):
    assert detector.weights.mean.shape == detector.weights.coef.shape and detector.weights.mean.size > 100
    assert 0.0 < detector.threshold < 1.0
    assert detector.model.startswith("morph-detector-lr")


@pytest.fixture(scope="module")
def devtest_morph_scores(data_dir, detector):
    """Morph scores, source scores, the morph images and the source paths of PAIRS seeded pairs of
    different DevTest people."""
    from faceprint.evaluation.lfw import read_pairs
    from faceprint.models.registry import load_landmarker
    from faceprint.models.yunet import YuNetDetector
    from faceprint.pad.morph import morph
    from faceprint.pipeline.detection import central_face
    from faceprint.pipeline.image_io import load_image

    lfw = data_dir / "lfw-view1"
    different = [p for p in read_pairs(lfw / "pairsDevTest.txt") if not p.same]
    rng = np.random.default_rng(0)
    finder, landmarker = YuNetDetector(), load_landmarker()
    morph_scores, source_scores = [], []
    kept: dict[str, list] = {"morphs": [], "sources": []}
    for index in rng.choice(len(different), size=PAIRS, replace=False):
        pair = different[int(index)]
        images, points = [], []
        for rel in (pair.a, pair.b):
            image = load_image(lfw / "images" / rel)
            face = central_face(finder.detect(image), image.shape)
            images.append(image)
            points.append(landmarker.landmarks(image, face.box))
            source_scores.append(detector.check(image, face).score)
            kept["sources"].append(lfw / "images" / rel)
        blended = _jpeg95(morph(images[0], points[0], images[1], points[1]))
        face = central_face(finder.detect(blended), blended.shape)
        assert face is not None
        result = detector.check(blended, face)
        assert isinstance(result, MorphCheck) and result.is_morph == (result.score >= result.threshold)
        assert set(result.to_dict()) == {"score", "is_morph", "threshold", "model"}
        morph_scores.append(result.score)
        kept["morphs"].append(blended)
    return np.array(morph_scores), np.array(source_scores), kept


def test_morphs_score_higher_than_their_sources(devtest_morph_scores):
    morphs, sources, _ = devtest_morph_scores
    assert morphs.mean() > sources.mean()
    assert np.median(morphs) > np.median(sources)


def test_operating_point_flags_morphs_not_sources(devtest_morph_scores, detector):
    morphs, sources, _ = devtest_morph_scores
    assert (morphs >= detector.threshold).sum() >= PAIRS - 1, morphs
    assert (sources >= detector.threshold).sum() <= 1, sources


def test_missing_weights_raise(tmp_path: Path):
    with pytest.raises(MorphModelError, match="not found"):
        MorphDetector(tmp_path / "absent.npz")


def test_corrupt_weights_raise(tmp_path: Path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a numpy archive")
    with pytest.raises(MorphModelError, match="cannot be read"):
        MorphDetector(bad)


def test_weights_for_other_features_raise(tmp_path: Path):
    other = tmp_path / "other.npz"
    with np.load(WEIGHTS, allow_pickle=False) as data:
        fields = {k: data[k] for k in data.files}
    fields["feature_version"] = np.array("pad-features-0")
    np.savez(other, **fields)
    with pytest.raises(MorphModelError, match="retrain"):
        MorphDetector(other)


def test_enrolment_with_check_morph_refuses_a_flagged_morph(devtest_morph_scores, detector, tmp_path):
    """``enroll --check-morph``: a flagged morph is refused with ``morph_suspected``; its sources enrol."""
    from faceprint import Engine
    from faceprint.errors import MorphSuspectedError

    morphs, sources, kept = devtest_morph_scores
    engine = Engine("fast", check_morph=True)
    flagged = kept["morphs"][int(np.argmax(morphs))]
    gallery = tmp_path / "g.db"
    with pytest.raises(MorphSuspectedError):
        engine.enroll("claimant", [flagged], gallery)
    source = kept["sources"][int(np.argmin(sources))]
    assert engine.enroll("real", [source], gallery).face_count == 1
    assert [p.name for p in engine.open_gallery(gallery).persons()] == ["real"]
    Engine("fast").enrolment_items([flagged])  # off by default
