"""Annotated images: boxes, landmarks and labels drawn over a photo."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .types import Face

KNOWN = (40, 170, 60)
UNKNOWN = (220, 50, 50)


def annotate(image: np.ndarray, faces: Sequence[Face], labels: Sequence[str | None] | None = None) -> np.ndarray:
    """A copy of an RGB image with each face's box and landmarks, and its label when given.

    A label of ``None`` draws the face as unknown (red); named faces are green.
    """
    out = image.copy()
    scale = max(1.0, max(out.shape[:2]) / 800.0)
    thickness = max(1, round(2 * scale))
    for i, face in enumerate(faces):
        label = labels[i] if labels is not None else f"{face.score:.2f}"
        colour = UNKNOWN if labels is not None and label is None else KNOWN
        x, y, w, h = (round(v) for v in (face.box.x, face.box.y, face.box.width, face.box.height))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        for px, py in face.landmarks:
            cv2.circle(out, (round(px), round(py)), thickness + 1, (255, 220, 0), -1)
        text = label if label is not None else "unknown"
        font_scale = 0.5 * scale
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = max(0, y - th - base - 4)
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def save_rgb(image: np.ndarray, path: str) -> None:
    """Write an RGB image to ``path`` (format from the extension)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}")
