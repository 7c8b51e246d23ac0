"""Cancelable templates: the keyed transform, its use by the gallery, and cross-key unlinkability on real faces."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from faceprint.privacy.cancelable import (
    CancelableTransform,
    TransformMismatchError,
    random_orthogonal,
)
from faceprint.gallery import EnrolmentItem, Gallery
from faceprint.privacy.crypto import GalleryKey
from faceprint.types import Template

MODEL, DIM = "test-model", 32
KEY_A, KEY_B = GalleryKey(b"A" * 32), GalleryKey(b"B" * 32)


def unit(rng, n, dim=DIM):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_matrix_is_orthogonal_deterministic_and_keyed():
    q = random_orthogonal(b"seed", 64)
    np.testing.assert_allclose(q @ q.T, np.eye(64), atol=1e-10)
    np.testing.assert_array_equal(q, random_orthogonal(b"seed", 64))
    a, b = CancelableTransform(KEY_A), CancelableTransform(KEY_B)
    assert a.id != b.id and a.id.startswith("rotate:")
    assert CancelableTransform(KEY_A, "sign").id != a.id
    assert a.id == CancelableTransform(GalleryKey(b"A" * 32)).id
    assert abs(np.corrcoef(a.matrix(64).ravel(), b.matrix(64).ravel())[0, 1]) < 0.05
    with pytest.raises(ValueError):
        CancelableTransform(KEY_A, "xor")


def test_rotation_preserves_same_key_scores_and_scrambles_cross_key(rng):
    x = unit(rng, 200, dim=128)
    a, b = CancelableTransform(KEY_A), CancelableTransform(KEY_B)
    ya, yb = a.apply(x), b.apply(x)
    np.testing.assert_allclose(ya @ ya.T, x @ x.T, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ya, axis=1), 1.0, atol=1e-5)
    same = np.sum(ya * yb, axis=1)  # the very same template under two keys
    assert abs(same.mean()) < 0.05 and same.std() < 0.15  # like random directions: ~N(0, 1/dim)


def test_sign_mode_is_binary_and_estimates_cosine(rng):
    t = CancelableTransform(KEY_A, "sign")
    x = unit(rng, 300, dim=512)
    y = t.apply(x)
    assert set(np.unique(np.round(y * np.sqrt(512), 4))) == {-1.0, 1.0}
    cos = (x @ x.T)[np.triu_indices(300, 1)]
    est = t.to_cosine(y @ y.T)[np.triu_indices(300, 1)]
    assert np.abs(est - cos).mean() < 0.06
    assert t.to_cosine(np.float32(1.0)) == pytest.approx(1.0)


def test_gallery_stores_transformed_templates_and_searches_raw_probes(tmp_path, rng):
    path = tmp_path / "g.sqlite"
    vecs = unit(rng, 6)
    t = CancelableTransform(KEY_A)
    with Gallery(path, model=MODEL, dim=DIM, transform=t) as g:
        assert g.transform_id == t.id
        for i, name in enumerate(["ann", "ben", "cy"]):
            g.enroll(name, [EnrolmentItem(Template(v, MODEL)) for v in vecs[2 * i:2 * i + 2]])
        top = g.search(Template(vecs[3], MODEL), k=1)[0]
        assert top.person == "ben" and top.score == pytest.approx(1.0, abs=1e-5)
        stored = g.matrix()[2]
        np.testing.assert_allclose(stored, t.apply(vecs), atol=1e-6)
    raw = b"".join(r[0] for r in sqlite3.connect(path).execute("SELECT template FROM faces"))
    assert vecs[0].tobytes() not in raw
    with pytest.raises(TransformMismatchError) as exc:
        Gallery(path)
    assert exc.value.code == "transform_mismatch"
    with pytest.raises(TransformMismatchError):
        Gallery(path, transform=CancelableTransform(KEY_B))
    with Gallery(path, transform=CancelableTransform(KEY_A)) as g:  # same key: same transform
        assert g.search(Template(vecs[5], MODEL), k=1)[0].person == "cy"


def test_gallery_with_sign_transform_reports_cosine_scale(tmp_path, rng):
    vecs = unit(rng, 20, dim=DIM)
    with Gallery(tmp_path / "g.sqlite", model=MODEL, dim=DIM, transform=CancelableTransform(KEY_A, "sign")) as g:
        g.enroll_many([(f"p{i}", [EnrolmentItem(Template(v, MODEL))]) for i, v in enumerate(vecs)])
        hits = g.search_many(vecs, k=1)
        assert [h[0].person for h in hits] == [f"p{i}" for i in range(20)]
        assert all(h[0].score == pytest.approx(1.0) for h in hits)


def _lfw_templates(engine, data_dir, n_people=12):
    """Two templates each of the first ``n_people`` same-person DevTest pairs."""
    from faceprint.evaluation.lfw import read_pairs

    view1 = data_dir / "lfw-view1"
    same = [p for p in read_pairs(view1 / "pairsDevTest.txt") if p.same][:n_people]
    a = np.stack([engine.embed(view1 / "images" / p.a, largest=True).vector for p in same])
    b = np.stack([engine.embed(view1 / "images" / p.b, largest=True).vector for p in same])
    return a, b


def test_real_faces_match_under_one_key_and_not_across_keys(engine_fast, data_dir):
    a, b = _lfw_templates(engine_fast, data_dir)
    thr = engine_fast.threshold
    plain = np.sum(a * b, axis=1)
    assert np.mean(plain >= thr) >= 0.75  # sanity: most of these same-person pairs do match
    for mode in ("rotate", "sign"):
        ta, tb = CancelableTransform(KEY_A, mode), CancelableTransform(KEY_B, mode)
        same_key = ta.to_cosine(np.sum(ta.apply(a) * ta.apply(b), axis=1))
        if mode == "rotate":
            np.testing.assert_allclose(same_key, plain, atol=1e-5)
        else:
            assert np.abs(same_key - plain).max() < 0.2
        cross = ta.to_cosine(np.sum(ta.apply(a) * tb.apply(b), axis=1))
        cross_same_image = ta.to_cosine(np.sum(ta.apply(a) * tb.apply(a), axis=1))
        assert not np.any(cross >= thr) and not np.any(cross_same_image >= thr)
        assert abs(cross.mean()) < 0.15
