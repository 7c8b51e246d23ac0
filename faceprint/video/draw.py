"""Annotated video output: each tracked face boxed and labelled with its name and track id."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import FaceprintError
from ..pipeline.draw import KNOWN, UNKNOWN
from ..types import Box

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoWriteError(FaceprintError):
    """The annotated video could not be written (unknown container, no codec, unwritable path)."""

    code = "video_write_failed"


def draw_tracks(image: np.ndarray, tracks: Sequence[tuple[int, Box, str | None]]) -> np.ndarray:
    """A copy of an RGB frame with each (track id, box, person or None) drawn: named green, unknown red."""
    out = image.copy()
    scale = max(1.0, max(out.shape[:2]) / 800.0)
    thickness = max(1, round(2 * scale))
    font_scale = 0.5 * scale
    for track_id, box, person in tracks:
        colour = KNOWN if person is not None else UNKNOWN
        x, y, w, h = (round(v) for v in (box.x, box.y, box.width, box.height))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        text = f"{person or 'unknown'} #{track_id}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = max(0, y - th - base - 4)
        left = max(0, min(x, out.shape[1] - tw - 4))  # keep the label inside the frame
        cv2.rectangle(out, (left, top), (left + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(out, text, (left + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
    return out


class AnnotatedVideoWriter:
    """Writes RGB frames to a video file; the codec follows the extension (.mp4 mp4v, .avi MJPG)."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        codec = FOURCC.get(self.path.suffix.lower())
        if codec is None:
            raise VideoWriteError(f"{self.path}: unsupported video extension (use one of {', '.join(FOURCC)})")
        if self.path.parent and not self.path.parent.is_dir():
            raise VideoWriteError(f"{self.path}: folder {self.path.parent} does not exist")
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), fps, size)
        if not self._writer.isOpened():
            raise VideoWriteError(f"{self.path}: cannot open for writing with codec {codec}")
        self.size = size

    def write(self, image: np.ndarray, tracks: Sequence[tuple[int, Box, str | None]]) -> None:
        """Draw ``tracks`` on an RGB frame and append it."""
        frame = draw_tracks(image, tracks)
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the file."""
        self._writer.release()

    def __enter__(self) -> AnnotatedVideoWriter:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
