"""Passive presentation attack detection: features, attack synthesis, the shipped model, ISO 30107-3 metrics."""

from __future__ import annotations

import argparse
import json
import shutil

import cv2
import numpy as np
import pytest

from faceprint.evaluation.pad import PadDatasetError, apcer, bpcer, pad_folders, pad_metrics
from faceprint.models.pad_features import FACE_SIZE, feature_groups, lbp_histogram, pad_features, pad_view
from faceprint.models.pad_passive import NO_FACE_REASON, Liveness, PadModelError, PassiveLiveness, pad_face
from faceprint.pad import attacks
from faceprint.types import Box

# LFW people outside the training sources (train_pad.py uses the first 1,000 names in sorted order)
LFW_SAMPLES = ["Sila_Calderon/Sila_Calderon_0001.jpg", "Silvan_Shalom/Silvan_Shalom_0001.jpg",
               "Silvia_Farina_Elia/Silvia_Farina_Elia_0001.jpg", "Silvie_Cabero/Silvie_Cabero_0001.jpg"]


# --- metrics (hand-computed) ---------------------------------------------------------------------

def test_apcer_bpcer_by_hand():
    bona = np.array([0.9, 0.8, 0.7, 0.2])
    screen = np.array([0.1, 0.3, 0.75])
    prints = np.array([0.05, 0.85])
    assert apcer(screen, 0.5) == pytest.approx(1 / 3)
    assert bpcer(bona, 0.5) == pytest.approx(1 / 4)
    m = pad_metrics(bona, {"screen": screen, "print": prints}, threshold=0.5)
    assert m.apcer_per_type == {"screen": pytest.approx(1 / 3), "print": pytest.approx(0.5)}
    assert m.apcer == pytest.approx(0.5) and m.worst_type == "print"
    assert m.bpcer == pytest.approx(0.25)
    # worst-case APCER <= 5% needs every attack rejected: threshold above 0.85, so 3 of 4 bona fide rejected
    assert m.threshold_at_apcer[0.05] > 0.85
    assert m.bpcer_at_apcer[0.05] == pytest.approx(0.75)


def test_bpcer_at_apcer_is_lowest_threshold_meeting_target():
    rng = np.random.default_rng(0)
    bona = rng.normal(1.0, 1.0, 2000)
    attack = rng.normal(-1.0, 1.0, 1000)
    m = pad_metrics(bona, {"replay": attack})
    t = m.threshold_at_apcer[0.10]
    assert apcer(attack, t) <= 0.10
    assert apcer(attack, attack[attack < t].max()) > 0.10  # one more attack accepted breaks the target
    assert m.bpcer_at_apcer[0.10] == pytest.approx(bpcer(bona, t))
    assert m.bpcer_at_apcer[0.05] >= m.bpcer_at_apcer[0.10]
    assert 0.12 < m.eer < 0.20  # two unit normals 2 apart: EER = Phi(-1) = 0.159
    with pytest.raises(PadDatasetError):
        pad_metrics(bona, {})


# --- features and attacks ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lfw_images(data_dir):
    from faceprint.pipeline.image_io import load_image

    return [load_image(data_dir / "lfw-view1" / "images" / p) for p in LFW_SAMPLES]


def test_lbp_histogram():
    flat = np.full((10, 10), 7, np.uint8)
    hist = lbp_histogram(flat)
    assert hist.shape == (59,) and hist.sum() == pytest.approx(1.0)
    assert hist.max() == pytest.approx(1.0)  # every neighbour >= centre: one uniform code everywhere
    noise = np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)
    assert lbp_histogram(noise)[58] > 0.3  # random texture is mostly non-uniform patterns


def test_features_shape_and_determinism(lfw_images):
    image = lfw_images[0]
    view = pad_view(image, Box(70, 60, 110, 130))
    assert view.face.shape == (FACE_SIZE, FACE_SIZE, 3) and not view.whole_image
    f1, f2 = pad_features(view), pad_features(pad_view(image, Box(70, 60, 110, 130)))
    assert f1.dtype == np.float32 and np.isfinite(f1).all()
    assert f1.shape[0] == max(s.stop for s in feature_groups().values())
    assert np.array_equal(f1, f2)
    assert pad_view(image, None).whole_image


def test_attacks_are_seeded_and_leave_recapture_traces(lfw_images):
    image = lfw_images[1]
    for kind in attacks.ATTACK_TYPES:
        a = attacks.synthesise(image, kind, np.random.default_rng(3))
        b = attacks.synthesise(image, kind, np.random.default_rng(3))
        assert a.shape == image.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)
        assert np.abs(a.astype(int) - image.astype(int)).mean() > 5
    with pytest.raises(ValueError):
        attacks.synthesise(image, "mask", np.random.default_rng(0))



def test_capture_nuisances_are_seeded_and_video_frames_lose_chroma_detail(lfw_images):
    image = lfw_images[1]
    a = attacks.capture(image, np.random.default_rng(5))
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, attacks.capture(image, np.random.default_rng(5)))
    draws = [attacks.capture(image, np.random.default_rng(s)) for s in range(6)]
    assert len({d.tobytes() for d in draws}) == 6  # a distribution, not one fixed degradation

    def chroma_detail(rgb: np.ndarray) -> float:
        cr = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1].astype(np.float32)
        return float(np.abs(np.diff(cr, axis=1)).mean())

    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)  # pixel-level colour detail
    assert chroma_detail(attacks.video_frame(noise, 45)) < 0.5 * chroma_detail(noise)

# --- the shipped model ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pad():
    return PassiveLiveness()


@pytest.fixture(scope="module")
def detector(data_dir):
    from faceprint.models import registry

    return registry.load_detector("yunet")


def test_shipped_model_ranks_live_above_synthetic_attacks(pad, detector, lfw_images):
    live, attacked = [], []
    rng = np.random.default_rng(123)  # not the training seed's draws
    for image in lfw_images:
        live.append(pad.check(image, pad_face(detector.detect(image))).score)
        for kind in attacks.ATTACK_TYPES:
            fake = attacks.synthesise(image, kind, rng)
            attacked.append(pad.check(fake, pad_face(detector.detect(fake))).score)
    assert np.mean(live) > np.mean(attacked) + 0.2
    assert sum(s >= pad.threshold for s in live) >= 3


def test_check_result_and_whole_image_fallback(pad, lfw_images):
    result = pad.check(lfw_images[2], None)
    assert isinstance(result, Liveness)
    assert 0.0 <= result.score <= 1.0 and result.is_live == (result.score >= result.threshold)
    assert NO_FACE_REASON in result.reason
    d = result.to_dict()
    assert set(d) == {"score", "is_live", "threshold", "reason", "model"}
    assert PassiveLiveness(threshold=1.01).check(lfw_images[2], None).is_live is False


def test_missing_or_foreign_weights(tmp_path):
    with pytest.raises(PadModelError):
        PassiveLiveness(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(3), scale=np.ones(3), coef=np.zeros(3), bias=0.0, threshold=0.5,
             feature_version="other", model="x")
    with pytest.raises(PadModelError, match="retrain"):
        PassiveLiveness(bad)


# --- folder runner and CLI on real attack images ----------------------------------------------------

@pytest.fixture(scope="module")
def replay_subset(data_dir, tmp_path_factory):
    """Six live and six replayed frames of the real one-person set, in the real/ + fake/ layout."""
    src = data_dir / "antispoof" / "replay-one-person"
    root = tmp_path_factory.mktemp("replay")
    for kind in ("real", "fake"):
        (root / kind).mkdir()
        for path in sorted((src / kind).glob("*.png"))[:6]:
            shutil.copy(path, root / kind / path.name)
    return root


def _parser():
    from faceprint.cli import pad as cli_pad

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    eval_sub = sub.add_parser("eval").add_subparsers(dest="protocol")
    cli_pad.register(sub, eval_sub, common)
    return parser


def test_eval_pad_command_writes_report_and_det(replay_subset, tmp_path, capsys):
    out = tmp_path / "eval"
    args = _parser().parse_args(["eval", "pad", str(replay_subset), "--out", str(out), "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    m = payload["metrics"]
    assert m["bona_fide_count"] == 6 and m["attack_counts"] == {"fake": 6}
    assert set(m["bpcer_at_apcer"]) == {"0.05", "0.1"}
    assert 0.0 <= m["apcer_worst_case"] <= 1.0 and 0.0 <= m["bpcer"] <= 1.0
    assert (out / "det.png").stat().st_size > 5000
    assert len((out / "scores.csv").read_text().splitlines()) == 13
    assert json.loads((out / "report.json").read_text())["metrics"] == m


def test_pad_folders_layout(tmp_path):
    (tmp_path / "real").mkdir()
    with pytest.raises(PadDatasetError):
        pad_folders(tmp_path)
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    (tmp_path / "attack-print").mkdir()
    (tmp_path / "attack-print" / "b.jpg").write_bytes(b"x")
    (tmp_path / "notes").mkdir()
    groups = pad_folders(tmp_path)
    assert set(groups) == {"bona_fide", "print"}


def test_liveness_command_on_silent_face_samples(data_dir, capsys):
    samples = data_dir / "antispoof" / "silent-face-samples"
    args = _parser().parse_args(["liveness", str(samples / "image_T1.jpg"), "--json"])
    code = args.func(args)
    payload = json.loads(capsys.readouterr().out)
    assert payload["faces"] and payload["faces"][0]["box"] is not None
    assert code == (0 if all(f["is_live"] for f in payload["faces"]) else 1)


def test_liveness_command_takes_another_weights_file(data_dir, tmp_path, capsys):
    from faceprint.models.pad_passive import WEIGHTS

    with np.load(WEIGHTS) as shipped:
        fields = {k: shipped[k] for k in shipped.files}
    other = tmp_path / "other.npz"
    np.savez(other, **{**fields, "model": "other-model", "threshold": 1.01})  # rejects everything
    image = data_dir / "antispoof" / "silent-face-samples" / "image_T1.jpg"
    args = _parser().parse_args(["liveness", str(image), "--pad-weights", str(other), "--json"])
    assert args.func(args) == 1
    face = json.loads(capsys.readouterr().out)["faces"][0]
    assert face["model"] == "other-model" and face["threshold"] == 1.01 and face["is_live"] is False
