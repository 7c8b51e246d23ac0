"""One place that runs networks with OpenCV's dnn module (ONNX or frozen TensorFlow graphs)."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np


class DnnModel:
    """A cv2.dnn network with one input and one output, safe to call from several threads.

    ``batch`` is False for graphs frozen with a batch of one: those are run crop by crop.
    """

    def __init__(self, path: str | os.PathLike, *, tensorflow: bool = False, batch: bool = True) -> None:
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
