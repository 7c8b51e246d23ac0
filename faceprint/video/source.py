"""Video input: a file, a camera index or a stream URL, read frame by frame as RGB arrays.

OpenCV's ``VideoCapture`` does the decoding. A source that cannot be opened, or that yields no
frame at all, raises :class:`VideoOpenError` naming it.

A *live* source (a camera, or a URL whose length is unknown) that stops giving frames has
dropped, not ended: it is reopened after an exponential backoff (:class:`ReconnectPolicy`),
logged as a warning each time, until a frame comes again or the attempts run out. A file that
ends has ended; with ``loop=True`` it is replayed from the start, frame indices and times running
on, which makes a file a stand-in for a camera.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import FaceprintError

log = logging.getLogger(__name__)

# FFmpeg's own log lines ("[mjpeg @ 0x...] No JPEG data found") would reach stderr beside faceprint's one-line
# error; OpenCV reads this when it first opens a video. A value the user set is kept (for debugging).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

#: What a video source can be: the next step of every message about one that cannot be read.
GIVE_VIDEO = "give a video file (.mp4, .avi ...), a camera index (0) or a stream URL (rtsp://...)"


class VideoOpenError(FaceprintError):
    """The video file, camera or stream could not be opened or yielded no frame."""

    code = "video_open_failed"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source, its time in seconds and RGB ``uint8`` pixels."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source is reopened after a drop: capped exponential backoff.

    ``attempts``: reopen attempts in a row (without a frame in between) before the source is
    given up as lost; 0 turns reconnecting off. The n-th attempt in a row waits
    ``min(max_s, initial_s * factor ** (n - 1))`` seconds first (defaults: 1, 2, 4 ... 30 s).
    """

    attempts: int = 20
    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.initial_s < 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise ValueError(f"need attempts >= 0, initial_s >= 0, factor >= 1 and max_s >= initial_s: {self}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopen attempt ``attempt`` (1-based, counted since the last frame)."""
        return min(self.max_s, self.initial_s * self.factor ** (attempt - 1))


def _capture_target(source: str | int | os.PathLike) -> str | int:
    if isinstance(source, int):
        return source
    text = os.fspath(source)
    if text.isdigit():
        return int(text)  # "0" on the command line means camera 0
    if "://" not in text and not os.path.exists(text):
        raise VideoOpenError(f"{text}: no such video file; check the path, or give a camera index (0) or a "
                             f"stream URL (rtsp://...)")
    if "://" not in text and _is_still_image(text):
        raise VideoOpenError(f"{text}: a still image, not a video; {GIVE_VIDEO} (photos go to faceprint analyze, "
                             f"detect or identify)")
    return text


def _is_still_image(path: str) -> bool:
    """True when ``path`` is a photo (a format Pillow reads, one frame): an animated GIF or WebP is a video."""
    from PIL import Image, UnidentifiedImageError

    if os.path.isdir(path):
        return False
    try:
        with Image.open(path) as img:
            return not getattr(img, "is_animated", False)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


Opener = Callable[[str | int], Any]
"""Makes a capture for a target (default ``cv2.VideoCapture``); anything with the same
``isOpened``/``read``/``grab``/``get``/``release`` methods will do (tests use fakes)."""


class VideoSource:
    """Frames of a video file, camera (``0``, ``1`` ...) or ``rtsp://`` / ``http://`` stream.

    Use as a context manager or call :meth:`close`. ``fps`` falls back to 25 when the container
    does not say; ``frame_count`` is ``None`` for cameras, live streams and looped files.
    ``live`` is true for a camera or a URL of unknown length: such a source is reopened after a
    drop as ``reconnect`` says (default :class:`ReconnectPolicy`). ``loop=True`` replays a file
    forever and raises :class:`FaceprintError` for a live source. After :meth:`frames`:
    ``drops`` (times the live source stopped giving frames), ``reconnects`` (times it came back)
    and ``lost`` (it did not come back within the attempts).
    """

    def __init__(self, source: str | int | os.PathLike, *, loop: bool = False,
                 reconnect: ReconnectPolicy | None = None, opener: Opener = cv2.VideoCapture) -> None:
        self.label = os.fspath(source) if not isinstance(source, int) else f"camera {source}"
        self._target = _capture_target(source)
        self._opener = opener
        self._capture = opener(self._target)
        if not self._capture.isOpened():
            raise VideoOpenError(f"{self.label}: cannot open video (not a video, an unsupported format, a missing "
                                 f"codec or no such device); {GIVE_VIDEO}")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 and not isinstance(self._target, int) else None
        self.size = (
            int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.live = isinstance(self._target, int) or ("://" in self._target and self.frame_count is None)
        if loop and self.live:
            self.close()
            raise FaceprintError(f"{self.label}: only a video file can be looped; a camera or stream runs until "
                                 "stopped (drop the loop option)")
        self.loop = loop
        if loop:
            self.frame_count = None
        self.reconnect = reconnect or ReconnectPolicy()
        self.drops = 0
        self.reconnects = 0
        self.lost = False

    @property
    def duration_s(self) -> float | None:
        """Length in seconds, when the frame count is known."""
        return self.frame_count / self.fps if self.frame_count else None

    def frames(self, every: int = 1, limit: int | None = None,
               stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield every ``every``-th frame (RGB), at most ``limit`` frames read in all.

        Skipped frames are grabbed without being decoded to pixels, which is much cheaper. Indices
        and times run on across loops and reconnections. Ends early, without error, once ``stop``
        is set (reconnect waits are cut short by it too). Raises :class:`VideoOpenError` when no
        frame at all could be decoded (and no stop was asked for), or when a looped file cannot
        be reopened.
        """
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        wait = (stop or threading.Event()).wait  # a never-set event: waits the full delay
        index = 0
        yielded = 0
        in_pass = 0  # frames read since the file was (re)opened
        failures = 0  # reads in a row that gave no frame (live sources)
        while limit is None or index < limit:
            if stop is not None and stop.is_set():
                break
            if index % every:
                ok, bgr = self._capture.grab(), None
            else:
                ok, bgr = self._capture.read()
            if not ok:
                if self.loop and in_pass > 0:
                    self._reopen(f"{self.label}: cannot reopen the file to loop it")
                    in_pass = 0
                    continue
                if not self.live or not self._wait_to_reopen(failures := failures + 1, wait):
                    break
                self._reopen(None)
                continue
            if failures:
                self.reconnects += 1
                log.warning("%s: reconnected after %d attempt(s)", self.label, failures)
                failures = 0
            in_pass += 1
            if bgr is not None:
                yielded += 1
                yield Frame(index=index, time_s=index / self.fps, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
        if yielded == 0 and not (stop is not None and stop.is_set()):
            raise VideoOpenError(f"{self.label}: no frame could be decoded (not a video, or a damaged or incomplete "
                                 f"file); {GIVE_VIDEO}")

    def _wait_to_reopen(self, attempt: int, wait: Callable[[float], bool]) -> bool:
        """After a failed read of a live source: wait out the backoff; False to give up (or stopped)."""
        policy = self.reconnect
        if attempt == 1:
            self.drops += 1
        if attempt > policy.attempts:
            self.lost = True
            if policy.attempts:
                log.error("%s: stream lost: no frame after %d reconnect attempt(s)", self.label, policy.attempts)
            else:
                log.error("%s: stream dropped and reconnecting is off", self.label)
            return False
        delay = policy.delay(attempt)
        log.warning("%s: %s; reconnecting in %.1f s (attempt %d of %d)", self.label,
                    "stream dropped" if attempt == 1 else "still no frame", delay, attempt, policy.attempts)
        return not wait(delay)

    def _reopen(self, error: str | None) -> None:
        """Release the capture and open the target again; raise ``error`` if given and that fails."""
        self._capture.release()
        self._capture = self._opener(self._target)
        if error is not None and not self._capture.isOpened():
            raise VideoOpenError(error)

    def close(self) -> None:
        """Release the capture device or file."""
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
