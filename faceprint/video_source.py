"""Video input: a file, a camera index or a stream URL, read frame by frame as RGB arrays.

OpenCV's ``VideoCapture`` does the decoding. A source that cannot be opened, or that yields no
frame at all, raises :class:`VideoOpenError` naming it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import FaceprintError

log = logging.getLogger(__name__)


class VideoOpenError(FaceprintError):
    """The video file, camera or stream could not be opened or yielded no frame."""

    code = "video_open_failed"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source, its time in seconds and RGB ``uint8`` pixels."""

    index: int
    time_s: float
    image: np.ndarray


def _capture_target(source: str | int | os.PathLike) -> str | int:
    if isinstance(source, int):
        return source
    text = os.fspath(source)
    if text.isdigit():
        return int(text)  # "0" on the command line means camera 0
    if "://" not in text and not os.path.exists(text):
        raise VideoOpenError(f"{text}: no such video file")
    return text


class VideoSource:
    """Frames of a video file, camera (``0``, ``1`` ...) or ``rtsp://`` / ``http://`` stream.

    Use as a context manager or call :meth:`close`. ``fps`` falls back to 25 when the container
    does not say; ``frame_count`` is ``None`` for cameras and live streams.
    """

    def __init__(self, source: str | int | os.PathLike) -> None:
        self.label = os.fspath(source) if not isinstance(source, int) else f"camera {source}"
        target = _capture_target(source)
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise VideoOpenError(f"{self.label}: cannot open video (unsupported format, missing codec or no device)")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 and not isinstance(target, int) else None
        self.size = (
            int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )

    @property
    def duration_s(self) -> float | None:
        """Length in seconds, when the frame count is known."""
        return self.frame_count / self.fps if self.frame_count else None

    def frames(self, every: int = 1, limit: int | None = None) -> Iterator[Frame]:
        """Yield every ``every``-th frame (RGB), at most ``limit`` frames read in all.

        Skipped frames are grabbed without being decoded to pixels, which is much cheaper.
        """
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        index = 0
        yielded = 0
        while limit is None or index < limit:
            if index % every:
                if not self._capture.grab():
                    break
            else:
                ok, bgr = self._capture.read()
                if not ok:
                    break
                yielded += 1
                yield Frame(index=index, time_s=index / self.fps, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
        if yielded == 0:
            raise VideoOpenError(f"{self.label}: no frame could be decoded")

    def close(self) -> None:
        """Release the capture device or file."""
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
