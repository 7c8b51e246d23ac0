"""The embedders as ONNX Runtime runs them, the accurate profile they make, and galleries it replaced.

Real LFW faces throughout (``../shared/data``): SFace rewritten for ONNX Runtime gives OpenCV's
embeddings, dlib's ResNet rebuilt as ONNX gives dlib's own descriptors, the int8 build shipped in
the repository stays next to them, test-time zooms and flips add up as documented, the profile
matches a person's two photos and not two people, and a gallery of the previous ``accurate``
templates is refused with the way to re-enrol.
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_run import run

from faceprint import Engine
from faceprint.errors import ModelMismatchError
from faceprint.models import registry
from faceprint.models.base import WEIGHTS_DIR, bundled_weights, weights_file
from faceprint.pipeline.embedding import FusionPart, Recognizer, l2_normalize

LFW = "lfw-view1/images"
# LFW View 1 DevTest pairs (pairsDevTest.txt): the first same-person and different-people ones.
MATED = [("Abdullah_Gul/Abdullah_Gul_0013.jpg", "Abdullah_Gul/Abdullah_Gul_0014.jpg"),
         ("Adel_Al-Jubeir/Adel_Al-Jubeir_0001.jpg", "Adel_Al-Jubeir/Adel_Al-Jubeir_0003.jpg")]
IMPOSTOR = [("AJ_Lamas/AJ_Lamas_0001.jpg", "Zach_Safrin/Zach_Safrin_0001.jpg"),
            ("Aaron_Tippin/Aaron_Tippin_0001.jpg",
             "Jose_Luis_Rodriguez_Zapatero/Jose_Luis_Rodriguez_Zapatero_0001.jpg")]


@pytest.fixture(scope="module")
def faces(data_dir, engine_fast):
    """The central face of each test photo, as the engine finds it."""
    from faceprint.pipeline.detection import central_face

    names = sorted({n for pair in MATED + IMPOSTOR for n in pair})
    found = {}
    for name in names:
        image = engine_fast.load(data_dir / LFW / name)
        found[name] = central_face(engine_fast.finder.find(image), image.shape)
    assert all(f is not None for f in found.values())
    return found


def _crops(faces, embedder) -> np.ndarray:
    recognizer = Recognizer("test", [FusionPart(embedder.card.name, 1.0)], [embedder], flip=False)
    return recognizer.crops(list(faces.values()), embedder)


def test_sface_on_onnx_runtime_gives_opencvs_embeddings(faces):
    import cv2

    crops = _crops(faces, registry.load_embedder("sface"))
    net = cv2.dnn.readNet(str(weights_file("face_recognition_sface_2021dec.onnx")))
    net.setInput(np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32))
    reference = net.forward()
    ours = registry.load_embedder("sface").embed_crops(crops)
    assert ours.shape == (len(faces), 128)
    assert np.abs(ours - reference).max() < 1e-4 * np.abs(reference).max()


def test_dlib_rebuilt_as_onnx_gives_dlibs_descriptors(faces):
    dlib = pytest.importorskip("dlib")
    from faceprint.models.dlib_resnet import dlib_model_path

    chips = _crops(faces, registry.load_embedder("dlib"))
    net = dlib.face_recognition_model_v1(str(dlib_model_path()))
    reference = np.asarray([np.asarray(v) for v in net.compute_face_descriptor(list(chips))], np.float32)
    ours = registry.load_embedder("dlib").embed_crops(chips)
    assert np.abs(ours - reference).max() < 1e-5


def test_int8_dlib_loads_from_the_repository_and_stays_next_to_the_float_model(faces):
    shipped = bundled_weights()["dlib_face_recognition_resnet_model_v1_int8.onnx"]
    assert shipped.model == "dlib-int8" and shipped.path.parent == WEIGHTS_DIR and shipped.path.is_file()
    assert (WEIGHTS_DIR / shipped.licence_file).is_file()
    int8 = registry.load_embedder("dlib-int8")
    chips = _crops(faces, int8)
    a = l2_normalize(int8.embed_crops(chips))
    b = l2_normalize(registry.load_embedder("dlib").embed_crops(chips))
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.995
    # Still a face embedding: each face is nearer its own float descriptor than any other face's.
    assert np.all(np.argmax(a @ b.T, axis=1) == np.arange(len(chips)))


def test_zooms_and_flips_sum_the_raw_embeddings_of_every_crop(faces):
    embedder = registry.load_embedder("dlib-int8")
    zooms = (0.93, 1.0, 1.07)
    recognizer = Recognizer("test", [FusionPart("dlib-int8", 1.0, True, zooms)], [embedder])
    face = [next(iter(faces.values()))]
    crops = recognizer.part_crops(0, face)
    assert crops.shape == (3, 150, 150, 3)
    assert not np.array_equal(crops[0], crops[1])  # each zoom frames the face differently
    raw = embedder.embed_crops(np.concatenate([crops, crops[:, :, ::-1]]))
    expected = l2_normalize(raw.sum(axis=0, keepdims=True))
    assert np.allclose(recognizer.part_embeddings(0, crops), expected, atol=1e-5)
    assert np.allclose(recognizer.embed(face)[0].vector, expected[0], atol=1e-5)


def test_accurate_matches_the_same_person_and_not_two_people(data_dir, engine):
    assert engine.model_id == "faceprint-accurate-v2"
    assert engine.duplicate_threshold > engine.threshold  # calibrated down to FMR 1e-5
    for a, b in MATED:
        assert engine.verify(data_dir / LFW / a, data_dir / LFW / b).is_match, (a, b)
    for a, b in IMPOSTOR:
        assert not engine.verify(data_dir / LFW / a, data_dir / LFW / b).is_match, (a, b)


def test_a_gallery_of_the_previous_accurate_profile_is_refused_with_how_to_reenrol(data_dir, engine, tmp_path, capsys):
    old = Engine("accurate-v1")
    gallery = tmp_path / "old.db"
    photo = data_dir / LFW / MATED[0][0]
    old.enroll("Abdullah Gul", [photo], gallery=gallery)

    with pytest.raises(ModelMismatchError) as caught:
        engine.identify(data_dir / LFW / MATED[0][1], gallery)
    message = str(caught.value)
    assert "faceprint-accurate-v1" in message and "Re-enrol" in message and "--model accurate-v1" in message

    code, out, err = run(capsys, "identify", "--gallery", gallery, data_dir / LFW / MATED[0][1])
    assert code != 0 and "Re-enrol" in err and "enroll --tree" in err
    code, out, err = run(capsys, "identify", "--gallery", gallery, "--model", "accurate-v1",
                         data_dir / LFW / MATED[0][1])
    assert code == 0 and "Abdullah Gul" in out


def test_the_reenrol_hint_is_about_the_gallery_not_the_engine(data_dir, engine_fast, tmp_path):
    """A fast gallery opened by an accurate-v1 engine: the gallery is current, so no re-enrol hint."""
    gallery = tmp_path / "fast.db"
    engine_fast.enroll("Abdullah Gul", [data_dir / LFW / MATED[0][0]], gallery=gallery)
    with pytest.raises(ModelMismatchError) as caught:
        Engine("accurate-v1").identify(data_dir / LFW / MATED[0][1], gallery)
    assert caught.value.found == "faceprint-fast-v1"
    assert "Re-enrol" not in str(caught.value), caught.value
