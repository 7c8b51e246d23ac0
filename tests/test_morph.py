"""Landmark-aligned morphs and the morphing-attack evaluation (MMPMR), on real LFW faces."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from faceprint.evaluation import morph as M
from faceprint.pad.morph import border_points, delaunay_triangles, morph, warp_to_shape

A = "Aaron_Guiel/Aaron_Guiel_0001.jpg"
B = "Adam_Kennedy/Adam_Kennedy_0001.jpg"


@pytest.fixture(scope="module")
def lfw(data_dir):
    root = data_dir / "lfw-view1"
    if not (root / "images").is_dir():
        pytest.skip(f"LFW View 1 not found at {root}")
    return root


@pytest.fixture(scope="module")
def faces(lfw, engine_fast):
    """Images and 68 landmarks of two different people."""
    from faceprint.models.registry import load_landmarker
    from faceprint.pipeline.detection import central_face

    out = []
    for rel in (A, B):
        image = engine_fast.load(lfw / "images" / rel)
        face = central_face(engine_fast.finder.find(image), image.shape)
        out.append((image, load_landmarker().landmarks(image, face.box)))
    return out


def test_identity_warp_returns_the_image(faces):
    image, points = faces[0]
    h, w = image.shape[:2]
    pts = np.vstack([np.clip(points, 0, [w - 1, h - 1]), border_points(w, h)])
    triangles = delaunay_triangles(pts, w, h)
    assert len(triangles) > 100  # 68 landmarks + 8 border points
    warped = warp_to_shape(image, pts, pts, triangles)
    assert np.abs(warped - image.astype(np.float32)).mean() < 1.0


def test_morph_at_alpha_0_is_face_a_and_rejects_bad_input(faces):
    (a, pa), (b, pb) = faces
    assert np.abs(morph(a, pa, b, pb, alpha=0.0).astype(float) - a).mean() < 1.0
    with pytest.raises(ValueError):
        morph(a, pa, b, pb, alpha=1.5)
    with pytest.raises(ValueError):
        morph(a, pa, b, pb[:5])


def test_morph_resembles_both_contributors(faces, engine_fast):
    (a, pa), (b, pb) = faces
    m = morph(a, pa, b, pb, alpha=0.5)
    assert m.shape == a.shape and m.dtype == np.uint8
    ta, tb, tm = (engine_fast.embed(x, largest=True).vector for x in (a, b, m))
    between = float(ta @ tb)
    assert between < 0.2  # different people
    assert float(tm @ ta) > between + 0.15
    assert float(tm @ tb) > between + 0.15


def test_mmpmr_needs_both_contributors():
    sim_a = np.array([0.9, 0.9, 0.1, 0.5])
    sim_b = np.array([0.9, 0.1, 0.9, 0.5])
    assert M.mmpmr(sim_a, sim_b, 0.5) == pytest.approx(0.5)  # the first and the last (>=)
    assert M.mmpmr(sim_a, sim_b, 0.95) == 0.0
    with pytest.raises(ValueError):
        M.mmpmr(np.zeros(0), np.zeros(0), 0.5)


def _tree(tmp_path, people):
    for person, n in people.items():
        (tmp_path / person).mkdir()
        for i in range(1, n + 1):
            (tmp_path / person / f"{person}_{i:04d}.jpg").write_bytes(b"")
    return tmp_path


def test_cases_pick_independent_references(tmp_path):
    from faceprint.evaluation.lfw import Pair

    root = _tree(tmp_path, {"Ann": 2, "Bob": 1, "Cy": 3, "Di": 1})
    cases = M.pairs_file_cases(root, [Pair("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True, 0),
                                      Pair("Ann/Ann_0002.jpg", "Bob/Bob_0001.jpg", False, 0),
                                      Pair("Cy/Cy_0002.jpg", "Ann/Ann_0001.jpg", False, 0)])
    assert [(c.ref_a, c.ref_b, c.independent) for c in cases] == [
        ("Ann/Ann_0001.jpg", "Bob/Bob_0001.jpg", False),
        ("Cy/Cy_0001.jpg", "Ann/Ann_0002.jpg", True),
    ]
    independent = M.independent_cases(root, 5, seed=1)
    assert len(independent) == 1  # only Ann and Cy have two images
    case = independent[0]
    assert case.independent and {case.a, case.b} == {"Ann/Ann_0001.jpg", "Cy/Cy_0001.jpg"}


def test_cli_eval_morph_on_a_small_pairs_file(lfw, tmp_path, capsys, engine_fast):
    from faceprint.cli import trust as cli_trust

    lines = (lfw / "pairsDevTest.txt").read_text().splitlines()
    n = int(lines[0])
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["2", *lines[1:3], *lines[1 + n: 3 + n]]) + "\n")
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    for flag, kw in (("--model", {"default": "accurate"}), ("--model-config", {"default": None}),
                     ("--fmr", {"type": float, "default": 1e-3}), ("--threshold", {"type": float, "default": None}),
                     ("--json", {"action": "store_true"}), ("-v", {"action": "store_true"})):
        common.add_argument(flag, **kw)
    sub = parser.add_subparsers()
    cli_trust.register(sub, sub.add_parser("eval").add_subparsers(), common)
    args = parser.parse_args(["eval", "morph", "--images", str(lfw / "images"), "--pairs", str(pairs),
                              "--profiles", "fast", "--out", str(tmp_path / "out"), "--json", "--no-cache"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["morphs"] == 2 and report["mated_pairs"] == 2
    (result,) = report["results"]
    assert result["profile"] == "fast"
    rates = [result["mmpmr"][k] for k in ("0.01", "0.001", "0.0001", "1e-05")]
    assert all(0.0 <= r <= 1.0 for r in rates) and rates == sorted(rates, reverse=True)  # stricter: fewer
    assert len(list((tmp_path / "out" / "morphs-pairs").glob("*.jpg"))) == 2
    assert (tmp_path / "out" / "report-pairs.json").is_file()


def test_fused_template_blocks_are_the_single_model_templates(lfw, engine):
    from faceprint import Engine
    from faceprint.profiles import names

    image = lfw / "images" / A
    fused = {"x": engine.embed(image, largest=True).vector}
    parts = M.part_templates(engine, fused)
    assert set(parts) == {p.model for p in engine.profile.parts}
    for model, templates in parts.items():
        assert float(np.linalg.norm(templates["x"])) == pytest.approx(1.0, abs=1e-4)
        if model not in names():  # dlib-int8 (with its zooms) has no single-model profile to compare with
            continue
        alone = Engine(model).embed(image, largest=True).vector
        assert float(templates["x"] @ alone) > 0.9999
