"""One place that creates ONNX Runtime sessions the way faceprint wants them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxModel:
    """A CPU ONNX Runtime session with one image input and one output.

    Models exported with a fixed batch of 1 are run one crop at a time; models with a dynamic
    batch dimension get the whole batch at once.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape = list(first.shape)
        batch = self.input_shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self._lock = threading.Lock()

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Output 0 for an NCHW float32 batch, as float32 [n, ...]."""
        with self._lock:
            if self.fixed_batch == 1 and blob.shape[0] != 1:
                outs = [self.session.run(None, {self.input_name: blob[i : i + 1]})[0] for i in range(blob.shape[0])]
                return np.concatenate(outs, axis=0).astype(np.float32)
            return self.session.run(None, {self.input_name: blob})[0].astype(np.float32)
