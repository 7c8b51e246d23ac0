"""Out-of-domain check: fitting, persistence, and the shipped checks on real faces and non-faces."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ModelMismatchError
from faceprint.privacy.ood import OodCheck, OodModelMissingError, embed_as_aligned, weights_path
from faceprint.types import Template


def test_fit_threshold_hits_the_target_false_reject_rate(tmp_path):
    rng = np.random.default_rng(0)
    scale = np.linspace(0.2, 1.0, 8)
    faces = rng.standard_normal((3000, 8)) * scale + 1.0
    check = OodCheck.fit("m", faces[:1500], faces[1500:2500])
    new_faces = faces[2500:]
    frr = np.mean(check.scores(new_faces) > check.threshold)
    assert frr < 0.03
    outliers = rng.standard_normal((200, 8)) * scale + 1.0 + 6 * scale  # off the face distribution
    assert np.mean(check.scores(outliers) > check.threshold) > 0.95
    path = check.save(tmp_path / "ood_x.npz")
    again = OodCheck.load(path)
    assert again.model == "m" and again.threshold == pytest.approx(check.threshold)
    np.testing.assert_allclose(again.scores(new_faces), check.scores(new_faces), rtol=1e-5)
    with pytest.raises(ValueError):
        OodCheck.fit("m", faces[:5], faces[5:10])  # fewer templates than dimensions


def test_missing_profile_and_model_mismatch():
    with pytest.raises(OodModelMissingError) as exc:
        OodCheck.for_profile("no-such-profile")
    assert exc.value.code == "ood_model_missing"
    check = OodCheck.for_profile("fast")
    with pytest.raises(ModelMismatchError):
        OodCheck.for_profile("fast", model="other-model")
    with pytest.raises(ModelMismatchError):
        check.check(Template(np.ones(check.mean.shape[0], np.float32), "other-model"))


@pytest.mark.parametrize("profile", ["fast", "accurate"])
def test_shipped_weights_are_small(profile):
    path = weights_path(profile)
    assert path.is_file() and path.stat().st_size < 1_000_000


def test_real_faces_pass_and_noise_is_rejected(engine_fast, data_dir):
    check = OodCheck.for_profile("fast", engine_fast.model_id)
    view1 = data_dir / "lfw-view1" / "images"
    photos = sorted(view1.glob("*/*_0001.jpg"))[:12]
    verdicts = [check.check(engine_fast.embed(p, largest=True)) for p in photos]
    assert sum(ok for ok, _ in verdicts) >= 11  # ~1% false rejects expected
    rng = np.random.default_rng(5)
    noise = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(10)]
    vectors = embed_as_aligned(engine_fast.recognizer, noise)
    results = [check.check(Template(v, engine_fast.model_id)) for v in vectors]
    assert not any(ok for ok, _ in results)
    assert min(s for _, s in results) > max(s for _, s in verdicts)


def test_enrolment_gate_refuses_a_non_face_template_when_asked(tmp_path, data_dir):
    """``Engine(check_domain=True)`` refuses noise dressed up as a face crop; off by default."""
    import numpy as np

    from faceprint import Engine
    from faceprint.errors import NotAFaceError
    from faceprint.privacy.ood import embed_as_aligned
    from faceprint.types import Template

    engine = Engine("accurate", check_domain=True)
    rng = np.random.default_rng(0)
    noise = embed_as_aligned(engine.recognizer, [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)])[0]
    with pytest.raises(NotAFaceError):
        engine.check_in_domain(Template(noise, engine.model_id), "noise")
    engine.check_in_domain(engine.embed(data_dir / "knn-small/train/obama/obama.jpg"), "obama")
    Engine("accurate").check_in_domain(Template(noise, engine.model_id), "noise")  # default: no check
