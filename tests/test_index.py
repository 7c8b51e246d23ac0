"""Tests for faceprint.gallery.index and the gallery's use of it (exact below a threshold, sketch index above)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import index as fi
from faceprint.gallery import EnrolmentItem, Gallery
from faceprint.types import Template

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL = "test-model"


def normalise(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n_persons: int, per_person: int, dim: int, seed: int = 0, spread: float = 0.6):
    """Templates = person centre + noise (cosine ~0.85 to the centre); and one probe per person."""
    rng = np.random.default_rng(seed)
    centres = normalise(rng.standard_normal((n_persons, dim)))
    noise = normalise(rng.standard_normal((n_persons, per_person, dim)))
    vecs = normalise(centres[:, None, :] + spread * noise).reshape(-1, dim)
    probes = normalise(centres + spread * normalise(rng.standard_normal((n_persons, dim))))
    return centres, vecs, probes


@pytest.fixture(scope="module")
def data20k():
    centres, vecs, probes = clustered(2000, 10, 128)
    ids = np.arange(len(vecs), dtype=np.int64) + 1
    exact = fi.ExactIndex(128)
    exact.add(ids, vecs)
    approx = fi.make_index(ids, vecs, 128, approximate_from=1000)
    assert isinstance(approx, fi.ApproximateIndex) and len(approx) == len(vecs)
    return ids, vecs, probes, exact, approx


def test_approximate_agrees_with_exact(data20k):
    ids, vecs, probes, exact, approx = data20k
    queries = np.concatenate([probes[:500], vecs[::40]])  # new probes and stored templates
    es, ei = exact.search(queries, 10)
    as_, ai = approx.search(queries, 10)
    assert ai.shape[1] >= 10
    recall1 = np.mean(ai[:, 0] == ei[:, 0])
    assert recall1 >= 0.99, recall1
    # scores are the int8 copies' cosines, within 0.005 of the float32 ones, best first
    # (the gallery re-scores its final candidates exactly: see the gallery test below)
    rows = np.searchsorted(ids, ai[:, :10])
    want = np.einsum("qd,qkd->qk", queries, vecs[rows])
    np.testing.assert_allclose(as_[:, :10], want, atol=5e-3)
    assert np.all(np.diff(as_[:, :10], axis=1) <= 1e-7)
    hit = np.mean([len(set(a[:10]) & set(e)) / 10 for a, e in zip(ai, ei)])
    assert hit >= 0.95


def test_exact_index_is_exact(data20k):
    ids, vecs, probes, exact, _ = data20k
    s, i = exact.search(probes[:5], 3)
    full = probes[:5] @ vecs.T
    np.testing.assert_array_equal(i[:, 0], ids[np.argmax(full, axis=1)])
    np.testing.assert_allclose(s[:, 0], full.max(axis=1), rtol=1e-6)
    s, i = fi.ExactIndex(4).search(np.ones((2, 4)), 3)
    assert (i == -1).all() and np.isneginf(s).all()


@pytest.mark.parametrize("kind", ["exact", "approximate"])
def test_removal_is_immediate_and_re_add_works(kind):
    _, vecs, _, = clustered(300, 2, 32)
    ids = np.arange(len(vecs)) + 10
    idx = fi.make_index(ids, vecs, 32, approximate_from=0 if kind == "approximate" else 10**9)
    q = vecs[:50]
    _, top = idx.search(q, 5)
    assert (top[:, 0] == ids[:50]).all()
    idx.remove(ids[:50])
    idx.remove([999_999])  # absent: ignored
    assert len(idx) == len(ids) - 50
    _, top = idx.search(q, 5)
    assert not np.isin(top, ids[:50]).any()
    idx.add(ids[:10], vecs[:10])
    assert len(idx) == len(ids) - 40
    _, top = idx.search(q[:10], 1)
    assert (top[:, 0] == ids[:10]).all()


def test_approximate_remove_almost_everything():
    _, vecs, _ = clustered(100, 1, 16)
    idx = fi.make_index(np.arange(100), vecs, 16, approximate_from=0)
    idx.remove(np.arange(97))
    s, i = idx.search(vecs[:3], 5)
    live = i[i >= 0]
    assert set(live.tolist()) <= {97, 98, 99}


@pytest.mark.parametrize("kind", ["exact", "approximate"])
def test_save_load_round_trip(tmp_path, kind):
    _, vecs, probes = clustered(500, 2, 32)
    ids = np.arange(len(vecs)) * 3
    idx = fi.make_index(ids, vecs, 32, approximate_from=0 if kind == "approximate" else 10**9)
    idx.remove(ids[:5])
    idx.stamp = (len(idx), int(ids.max()), "m")
    path = tmp_path / "g.index"
    idx.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["g.index"]  # no temp file left behind
    back = fi.load(path)
    assert type(back) is type(idx) and len(back) == len(idx) and back.stamp == idx.stamp
    a, b = idx.search(probes, 10), back.search(probes, 10)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0])
    assert not np.isin(b[1], ids[:5]).any()
    back.add([10**6], probes[:1])
    assert back.search(probes[:1], 1)[1][0, 0] == 10**6


def enrol_all(g: Gallery, vecs: np.ndarray, per_person: int) -> None:
    batch = [(f"p{i:05d}", [EnrolmentItem(Template(v, MODEL)) for v in vecs[i * per_person:(i + 1) * per_person]])
             for i in range(len(vecs) // per_person)]
    g.enroll_many(batch)


def test_gallery_above_threshold_returns_correct_persons(tmp_path):
    dim = 64
    _, vecs, probes = clustered(1000, 3, dim, seed=1)
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL, dim) as exact_g:
        enrol_all(exact_g, vecs, 3)
        want = exact_g.search_many(probes, 5)
    assert not (tmp_path / "g.sqlite.index").exists()  # exact below the threshold: no index file
    with Gallery(path, approximate_from=1000) as g:
        got = g.search_many(probes, 5)
        assert isinstance(g._index, fi.ApproximateIndex)
        assert (tmp_path / "g.sqlite.index").exists()
        top1 = np.mean([a[0].person == b[0].person for a, b in zip(got, want)])
        assert top1 >= 0.99
        assert np.mean([a[0].person == f"p{i:05d}" for i, a in enumerate(got)]) >= 0.99
        for a, b in zip(got[:50], want[:50]):  # same persons, same (max-over-templates) scores
            if [c.person for c in a] == [c.person for c in b]:
                np.testing.assert_allclose([c.score for c in a], [c.score for c in b], atol=1e-5)
        # enrol and delete update the index at once
        new = probes[0] * 0.2 + probes[1] * 0.8
        new = normalise(new)
        g.enroll("newcomer", [EnrolmentItem(Template(new, MODEL))])
        assert g.search(Template(new, MODEL), 1)[0].person == "newcomer"
        built = g._index
        g.delete_person("p00001")
        assert g._index is built  # updated in place, not rebuilt
        assert not (tmp_path / "g.sqlite.index").exists()  # held the deleted templates
        for cands in g.search_many(probes[:3], 10):
            assert "p00001" not in [c.person for c in cands]
        fid = g.faces("p00002")[0].id
        g.delete_face(fid)
        assert fid not in g._index.search(probes[2:3], 100)[1]
    assert (tmp_path / "g.sqlite.index").exists()  # saved on close
    with Gallery(path, approximate_from=1000) as g:
        assert g.search(Template(new, MODEL), 1)[0].person == "newcomer"
        assert g._index_dirty is False  # loaded, not rebuilt


def test_stale_or_corrupt_index_is_rebuilt(tmp_path, caplog):
    dim = 32
    _, vecs, probes = clustered(200, 2, dim, seed=2)
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL, dim, approximate_from=100) as g:
        enrol_all(g, vecs, 2)
        g.search_many(probes[:1], 1)
    stamp = fi.load(str(path) + ".index").stamp
    with Gallery(path) as g:  # exact search (default threshold): does not touch the index file
        g.enroll("late", [EnrolmentItem(Template(probes[5], MODEL))])
    assert fi.load(str(path) + ".index").stamp == stamp  # now stale
    with Gallery(path, approximate_from=100) as g:
        assert g.search(Template(probes[5], MODEL), 1)[0].person == "late"
        assert list(g._index.stamp)[0] == 401
    assert list(fi.load(str(path) + ".index").stamp)[0] == 401
    Path(str(path) + ".index").write_bytes(b"garbage")
    with Gallery(path, approximate_from=100) as g:
        assert g.search(Template(probes[5], MODEL), 1)[0].person == "late"
    assert list(fi.load(str(path) + ".index").stamp)[0] == 401


def run_scale(tmp_path, *args) -> dict:
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "scale.py"), *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    assert "| n | dim |" in proc.stdout
    return json.loads(out.read_text())


def test_scale_benchmark_small(tmp_path):
    result = run_scale(tmp_path, "--sizes", "5000", "--dims", "128", "--queries", "50")
    (row,) = result["rows"]
    # int8 copies + 16-byte sketches + scale + id + flag: about 166 bytes a 128-d template
    assert row["n"] == 5000 and row["recall1"] >= 0.98 and 5000 * 128 < row["index_bytes"] < 5000 * 128 * 2
    assert row["exact_top1_is_mate"] == 1.0


@pytest.mark.slow
def test_scale_benchmark_100k(tmp_path):
    result = run_scale(tmp_path, "--sizes", "100000", "--dims", "128", "--queries", "300")
    (row,) = result["rows"]
    assert row["recall1"] >= 0.99 and row["meets"]["p99_ms"] and row["meets"]["build_s"]
