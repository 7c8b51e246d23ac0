"""Annotated images: boxes, landmarks and labels drawn over a photo.

Colours (RGB): green solid boxes for named (or, without labels, usable) faces, red for unknown
faces, and grey dashed boxes labelled "skipped" for faces the quality gate rejected (they were
not searched).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..types import Face

KNOWN = (40, 170, 60)
UNKNOWN = (220, 50, 50)
SKIPPED = (150, 150, 150)
LANDMARK = (255, 220, 0)
SKIPPED_LABEL = "skipped"


def _dashed_rectangle(out: np.ndarray, x: int, y: int, w: int, h: int, colour: tuple[int, int, int],
                      thickness: int, dash: int) -> None:
    """Draw a dashed rectangle in place: dashes of ``dash`` px with gaps of ``dash`` px along each side."""
    corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        length = max(abs(x1 - x0), abs(y1 - y0))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            a = (x0 + (x1 - x0) * start // length, y0 + (y1 - y0) * start // length)
            b = (x0 + (x1 - x0) * end // length, y0 + (y1 - y0) * end // length)
            cv2.line(out, a, b, colour, thickness)


def annotate(image: np.ndarray, faces: Sequence[Face], labels: Sequence[str | None] | None = None,
             skipped: Sequence[bool] | None = None, notes: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """A copy of an RGB uint8 image (H, W, 3) with each face's box and landmarks, and its label.

    Without ``labels`` each face is labelled with its detector score (green). A label of ``None``
    draws the face as unknown (red). A face whose ``skipped`` entry is true (it failed the quality
    gate) is drawn with a grey dashed box labelled "skipped", whatever its label. ``notes`` are
    lines of text written under each face's box (its attributes, for instance); where they would run
    off the bottom of the image they go above the box's label, or inside the box. ``labels``,
    ``skipped`` and ``notes``, when given, have one entry per face.
    """
    for name, given in (("labels", labels), ("skipped flags", skipped), ("notes", notes)):
        if given is not None and len(given) != len(faces):
            raise ValueError(f"{len(given)} {name} for {len(faces)} faces")
    out = image.copy()
    scale = max(1.0, max(out.shape[:2]) / 800.0)
    thickness = max(1, round(2 * scale))
    for i, face in enumerate(faces):
        x, y, w, h = (round(v) for v in (face.box.x, face.box.y, face.box.width, face.box.height))
        if skipped is not None and skipped[i]:
            colour, text = SKIPPED, SKIPPED_LABEL
            _dashed_rectangle(out, x, y, w, h, colour, thickness, dash=max(4, 5 * thickness))
        else:
            label = labels[i] if labels is not None else f"{face.score:.2f}"
            colour = UNKNOWN if label is None else KNOWN
            text = label if label is not None else "unknown"
            cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        for px, py in face.landmarks:
            cv2.circle(out, (round(px), round(py)), thickness + 1, LANDMARK, -1)
        font_scale = 0.5 * scale
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = max(0, y - th - base - 4)
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
        lines = list(notes[i]) if notes is not None else []
        sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness) for line in lines]
        block = sum(th + base + 4 for (_, th), base in sizes)
        line_top = _notes_top(out.shape[0], y, h, top, block)
        for line, ((tw, th), base) in zip(lines, sizes):
            left = max(0, min(x, out.shape[1] - tw - 4))  # inside the image on the right too
            cv2.rectangle(out, (left, line_top), (left + tw + 4, line_top + th + base + 4), (40, 40, 40), -1)
            cv2.putText(out, line, (left + 2, line_top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                        (255, 255, 255), thickness, cv2.LINE_AA)
            line_top += th + base + 4
    return out


def _notes_top(height: int, y: int, h: int, label_top: int, block: int) -> int:
    """Where a face's block of notes (``block`` px tall) starts: under the box when it fits in the image,
    else above the box's label, else inside the box at its bottom (never cut off by the image's edge
    when the image is taller than the block)."""
    if y + h + 2 + block <= height:
        return y + h + 2
    if label_top - block >= 0:
        return label_top - block
    return max(0, min(y + h, height) - block)


def save_rgb(image: np.ndarray, path: str) -> None:
    """Write an RGB image to ``path`` (format from the extension)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}")
