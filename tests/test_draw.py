"""Annotated pictures: faces the quality gate rejects are drawn apart from the usable ones.

The group photo knn-small/test/obama_and_biden.jpg has two usable faces and a child's face in
profile (quality about 0.21, below the gate's 0.25). ``detect --out`` and ``identify --out`` must
draw the child grey and dashed, labelled "skipped", and the others in solid green (or red).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceprint.cli import main
from faceprint.pipeline.draw import KNOWN, SKIPPED, UNKNOWN

GROUP = "knn-small/test/obama_and_biden.jpg"


def _edge(image: np.ndarray, box: list[float]) -> np.ndarray:
    """The pixels along the left edge of ``box`` (x rounded as annotate does), label area excluded."""
    x, y, _, h = (round(v) for v in box)
    return image[y + 2:y + h - 2, x]


def _share(pixels: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float(np.mean(np.all(np.abs(pixels.astype(int) - colour) <= 2, axis=1)))


def _run(capsys, *argv) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def group_faces(engine_fast, data_dir):
    faces = engine_fast.detect(data_dir / GROUP)
    assert [engine_fast.gate.passes(f) for f in faces] == [True, True, False]
    return faces


def test_detect_out_draws_the_rejected_face_grey_and_dashed(capsys, data_dir, tmp_path, group_faces):
    out = tmp_path / "detected.png"
    _run(capsys, "detect", data_dir / GROUP, "--out", out, "--model", "fast")
    drawn = np.asarray(Image.open(out).convert("RGB"))
    for face in group_faces[:2]:
        edge = _edge(drawn, face.box.as_list())
        assert _share(edge, KNOWN) > 0.95 and _share(edge, SKIPPED) == 0
    child = _edge(drawn, group_faces[2].box.as_list())
    # Dashed: about half the edge is grey, the rest is the photo; nothing of it is green.
    assert 0.3 < _share(child, SKIPPED) < 0.7 and _share(child, KNOWN) == 0


def test_identify_out_colours_known_unknown_and_skipped(capsys, data_dir, tmp_path, group_faces):
    gallery = tmp_path / "g.db"
    _run(capsys, "enroll", "--gallery", gallery, "--person", "obama", data_dir / "knn-small/train/obama/obama.jpg",
         "--model", "fast")
    out = tmp_path / "identified.png"
    text = _run(capsys, "identify", "--gallery", gallery, data_dir / GROUP, "--out", out, "--model", "fast")
    assert "3 face(s): 1 known, 1 unknown, 1 skipped" in text
    drawn = np.asarray(Image.open(out).convert("RGB"))
    obama, biden, child = (_edge(drawn, f.box.as_list()) for f in group_faces)
    assert _share(obama, KNOWN) > 0.95 and _share(biden, UNKNOWN) > 0.95
    assert 0.3 < _share(child, SKIPPED) < 0.7 and _share(child, UNKNOWN) == 0


NOTE_GREY = (40, 40, 40)


def test_notes_under_a_face_at_the_bottom_of_the_image_are_not_cut_off(engine_fast, data_dir):
    """A photo cropped just under the chin: the notes move above the label and are drawn whole.

    The same crop with blank rows added below (the notes then fit under the box, at the same text
    size) shows how many pixels of note background the whole notes cover; the crop must show as many.
    """
    from faceprint.pipeline.draw import annotate

    photo = np.asarray(Image.open(data_dir / "video" / "obama.jpg").convert("RGB"))
    face = engine_fast.detect(photo)[0]
    bottom = round(face.box.y + face.box.height) + 3
    crop = np.ascontiguousarray(photo[:bottom])
    padded = np.concatenate([crop, np.full((200, crop.shape[1], 3), 255, np.uint8)])
    assert max(padded.shape[:2]) == max(crop.shape[:2])  # same text size in both
    notes = [["age 52 (41-63)", "male 0.98", "eyes open 0.52"]]
    face = engine_fast.detect(crop)[0]

    def note_pixels(image: np.ndarray) -> int:
        drawn = annotate(image, [face], labels=["#0"], notes=notes)
        return int(np.sum(np.all(drawn == NOTE_GREY, axis=2) & ~np.all(image == NOTE_GREY, axis=2)))

    whole = note_pixels(padded)
    assert whole > 1000
    assert note_pixels(crop) == whole
