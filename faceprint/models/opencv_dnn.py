"""One place that runs networks with OpenCV's dnn module (ONNX or frozen TensorFlow graphs)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

_LOG_LOCK = threading.Lock()


@contextmanager
def quiet_opencv_load() -> Iterator[None]:
    """Load an OpenCV model with OpenCV's own log level at most ERROR, then restore the caller's level.

    OpenCV 5 logs ``setPreferableTarget Targets are not supported by the new graph engine`` (a
    WARNING written by C++ straight to file descriptor 2) whenever a detector such as
    ``cv2.FaceDetectorYN`` sets its target on load; faceprint always runs on the default CPU
    target, so the line says nothing to a user. A level the caller set quieter is kept.
    """
    with _LOG_LOCK:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(min(previous, cv2.utils.logging.LOG_LEVEL_ERROR))
        try:
            yield
        finally:
            cv2.utils.logging.setLogLevel(previous)


class DnnModel:
    """A cv2.dnn network with one input and one output, safe to call from several threads.

    ``batch`` is False for graphs frozen with a batch of one: those are run crop by crop.
    """

    def __init__(self, path: str | os.PathLike, *, tensorflow: bool = False, batch: bool = True) -> None:
        with quiet_opencv_load():
            self.net = cv2.dnn.readNetFromTensorflow(str(path)) if tensorflow else cv2.dnn.readNet(str(path))
        self.batch = batch
        self._lock = threading.Lock()

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Output for an NCHW float32 batch, as float32 [n, -1]."""
        chunks = [blob] if self.batch else [blob[i : i + 1] for i in range(blob.shape[0])]
        outs = []
        with self._lock:
            for chunk in chunks:
                self.net.setInput(np.ascontiguousarray(chunk, dtype=np.float32))
                outs.append(self.net.forward().reshape(chunk.shape[0], -1))
        return np.concatenate(outs).astype(np.float32, copy=False)
