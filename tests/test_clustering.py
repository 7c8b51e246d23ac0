"""Grouping unknown faces: metrics on hand-made labels, algorithms on synthetic and real faces, naming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint import cli
from faceprint.grouping.clustering import (
    ALGORITHMS,
    DEFAULT_LINK_FMR,
    average_linkage,
    chinese_whispers,
    cluster,
    connected_components,
    dbscan,
)
from faceprint.errors import ModelMismatchError
from faceprint.evaluation.clustering import bcubed, pairwise, score
from faceprint.gallery import Gallery
from faceprint.grouping.faces import ClusterOutputError, group_faces, name_cluster


def run_cli(monkeypatch, argv: list[str]) -> int:
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", tuple(dict.fromkeys((*cli.SUBCOMMAND_MODULES, "cluster"))))
    return cli.main(argv)


# -- metrics ------------------------------------------------------------------------------------


def test_metrics_perfect_all_in_one_and_all_alone():
    truth = ["a", "a", "b", "b"]
    assert pairwise([0, 0, 1, 1], truth) == (1.0, 1.0, 1.0)
    assert bcubed([5, 5, 2, 2], truth) == (1.0, 1.0, 1.0)
    p, r, _ = pairwise([0, 0, 0, 0], truth)
    assert (p, r) == pytest.approx((2 / 6, 1.0))
    p, r, _ = bcubed([0, 0, 0, 0], truth)
    assert (p, r) == pytest.approx((0.5, 1.0))
    # Noise (-1) counts as clusters of one: nothing is put together.
    assert pairwise([-1, -1, -1, -1], truth)[:2] == (1.0, 0.0)
    assert bcubed([-1, -1, -1, -1], truth)[:2] == pytest.approx((1.0, 0.5))


def test_metrics_hand_computed():
    truth = ["a", "a", "a", "b", "b"]
    pred = [0, 0, 1, 1, 1]  # {a, a} and {a, b, b}
    # pairs together: (0,1) right, (2,3) (2,4) wrong, (3,4) right; same-person pairs: 3 of a, 1 of b
    p, r, f = pairwise(pred, truth)
    assert (p, r, f) == pytest.approx((2 / 4, 2 / 4, 0.5))
    # BCubed precision per face: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    p, r, f = bcubed(pred, truth)
    assert (p, r) == pytest.approx((11 / 15, 11 / 15))
    s = score("x", np.array(pred), truth, 0.5, 0.0)
    assert (s.clusters, s.people, s.noise, s.faces) == (2, 2, 0, 5)


# -- algorithms on synthetic templates ----------------------------------------------------------


def blobs(people: int = 6, per: int = 5, dim: int = 64, spread: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((people * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), np.repeat(np.arange(people), per)[order]


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_every_algorithm_recovers_separated_people(algorithm):
    x, truth = blobs()
    labels = cluster(x, 0.5, algorithm)
    assert bcubed(labels, truth) == pytest.approx((1.0, 1.0, 1.0))
    assert sorted(np.bincount(labels)) == [5] * 6  # numbered 0..5, no noise


def test_bridge_face_chains_single_linkage_but_not_average():
    # Two people on orthogonal directions and one face halfway (cosine 0.71 to both).
    rng = np.random.default_rng(1)
    u, v = np.eye(32)[0], np.eye(32)[1]
    a = u + 0.05 * rng.standard_normal((5, 32))
    b = v + 0.05 * rng.standard_normal((5, 32))
    x = np.vstack([a, b, (u + v)[None]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert len(set(connected_components(x, 0.6))) == 1
    labels = average_linkage(x, 0.6)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:10])) == 1 and labels[0] != labels[5]


def naive_average_linkage(x: np.ndarray, threshold: float) -> set[frozenset]:
    groups = [[i] for i in range(len(x))]
    sims = x @ x.T
    while len(groups) > 1:
        best, pair = -np.inf, None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                s = sims[np.ix_(groups[i], groups[j])].mean()
                if s > best:
                    best, pair = s, (i, j)
        if best < threshold:
            break
        i, j = pair
        groups[i] += groups.pop(j)
    return {frozenset(g) for g in groups}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_linkage_matches_the_textbook_algorithm(seed):
    x, _ = blobs(people=5, per=6, dim=16, spread=0.6, seed=seed)  # overlapping: many merge decisions
    labels = average_linkage(x, 0.3)
    ours = {frozenset(np.flatnonzero(labels == k).tolist()) for k in set(labels.tolist())}
    assert 1 < len(ours) < len(x)
    assert ours == naive_average_linkage(x.astype(np.float64), 0.3)


def test_labels_are_numbered_by_size_and_dbscan_marks_noise():
    x, _ = blobs(people=3, per=4)
    lonely = np.zeros((1, x.shape[1]), np.float32)
    lonely[0, 0] = 1.0
    labels = dbscan(np.vstack([x[:4], x[4:], lonely]), 0.5)  # the first person, everyone else, one stray
    assert labels[-1] == -1
    assert np.bincount(labels[labels >= 0]).tolist() == [4, 4, 4]
    labels = chinese_whispers(np.vstack([x[:2], x[4:]]), 0.5)
    assert np.bincount(labels).tolist()[-1] == 2  # the two-face cluster is numbered last
    assert cluster(np.zeros((0, 8), np.float32), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="unknown clustering algorithm"):
        cluster(x, 0.5, "kmeans")


# -- real faces -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knn_groups(engine_fast, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("groups") / "out"
    return group_faces(engine_fast, data_dir / "knn-small" / "train", out), out


def test_knn_small_faces_cluster_into_their_people(knn_groups, engine_fast):
    result, out = knn_groups
    people = [Path(f.source).parent.name for f in result.faces]
    assert len(result.faces) == 9
    members = sorted(sorted(people[m] for m in c["members"]) for c in result.clusters)
    assert members == [[p, p] for p in ("biden", "kit_harington", "obama", "rose_leslie")]
    assert [people[i] for i in result.noise] == ["alex_lacamoire"]  # one photo: stays alone
    data = json.loads((out / "clusters.json").read_text())
    assert data["model"] == "faceprint-fast-v1" and len(data["clusters"]) == 4
    assert np.load(out / "templates.npy").shape == (9, 128)
    for face in data["faces"]:
        assert (out / face["crop"]).is_file()
    assert (out / "contact_sheet.png").stat().st_size > 1000
    with pytest.raises(ClusterOutputError, match="already holds"):
        group_faces(engine_fast, out.parent, out)


def test_naming_a_cluster_enrols_it_and_identify_finds_the_person(knn_groups, engine_fast, data_dir, tmp_path):
    result, out = knn_groups
    people = [Path(f.source).parent.name for f in result.faces]
    biden = next(c["id"] for c in result.clusters if people[c["members"][0]] == "biden")
    gallery = tmp_path / "people.db"
    record = name_cluster(out, [biden], "Joe", gallery)
    assert record.face_count == 2
    hits = engine_fast.identify(data_dir / "video" / "biden.jpg", gallery)
    assert [h.person for h in hits] == ["Joe"]
    with pytest.raises(ClusterOutputError, match="already enrolled"):
        name_cluster(out, [biden], "Joe", gallery)
    with pytest.raises(ClusterOutputError, match="no cluster 99"):
        name_cluster(out, [99], "X", gallery)
    other = tmp_path / "other.db"
    Gallery(other, model="faceprint-accurate-v1", dim=256).close()
    obama = next(c["id"] for c in result.clusters if people[c["members"][0]] == "obama")
    with pytest.raises(ModelMismatchError):
        name_cluster(out, [obama], "Barack", other)
    # Known people are left out of the next clustering.
    again = group_faces(engine_fast, data_dir / "knn-small" / "train", tmp_path / "again", gallery=gallery)
    assert sorted(people[i] for i in again.known) == ["biden", "biden"]
    assert len(again.clusters) == 3


def test_video_faces_carry_frame_and_time(engine_fast, data_dir, tmp_path):
    result = group_faces(engine_fast, data_dir / "video" / "short_hamilton_clip.mp4", tmp_path / "v", every=25)
    assert result.inputs_read == 11
    biggest = result.clusters[0]
    assert biggest["size"] >= 5
    frames = [result.faces[m].frame for m in biggest["members"]]
    assert frames == sorted(frames) and all(f % 25 == 0 for f in frames)
    assert all(result.faces[m].time_s == pytest.approx(result.faces[m].frame / 29.97, abs=1e-3)  # the clip's fps
               for m in biggest["members"])


def test_cli_cluster_name_and_eval(monkeypatch, data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(monkeypatch, ["cluster", str(data_dir / "knn-small" / "train"), "--out", str(out),
                                 "--model", "fast", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["clusters"]) == 4 and data["link_fmr"] == DEFAULT_LINK_FMR
    gallery = tmp_path / "g.db"
    assert run_cli(monkeypatch, ["cluster-name", str(out), "0,1", "Two", "--gallery", str(gallery)]) == 0
    assert "4 face(s)" in capsys.readouterr().out
    assert run_cli(monkeypatch, ["cluster-name", str(out), "x", "Y", "--gallery", str(gallery)]) == 2
    # eval cluster on a tiny LFW-layout folder: 4 people with 2+ images and one with 1.
    lfw = data_dir / "lfw-view1" / "images"
    tiny = tmp_path / "lfw"
    for name in ("Abdullah_Gul", "Adam_Sandler", "Alvaro_Uribe", "Amelie_Mauresmo", "AJ_Cook"):
        (tiny / name).mkdir(parents=True)
        for f in sorted((lfw / name).iterdir())[:3]:
            (tiny / name / f.name).symlink_to(f)
    assert run_cli(monkeypatch, ["eval", "cluster", "--images", str(tiny), "--model", "fast", "--no-cache",
                                 "--algorithms", "average,components", "--singletons", "--json",
                                 "--out", str(tmp_path / "ev")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["people"] == 5 and [r["algorithm"] for r in report["results"]] == ["average", "components"]
    assert report["results"][0]["bcubed_f"] == 1.0


def test_cluster_reports_the_faces_the_quality_gate_skipped(data_dir, tmp_path, capsys):
    """The child in profile in the group photo is not clustered, and the output says so and why."""
    out = tmp_path / "group"
    assert cli.main(["cluster", str(data_dir / "knn-small/test/obama_and_biden.jpg"), "--out", str(out),
                     "--model", "fast"]) == 0
    assert "1 face(s) skipped by the quality gate, not clustered: profile: 1" in capsys.readouterr().out
    data = json.loads((out / "clusters.json").read_text())
    assert len(data["faces"]) == 2
    (child,) = data["skipped_faces"]
    assert child["issues"] == ["profile"] and child["quality"] < 0.25
    assert child["reason"].startswith("low quality (profile, ") and child["source"].endswith("obama_and_biden.jpg")
