"""One place that creates ONNX Runtime sessions the way faceprint wants them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import ModelUnavailableError
from .base import weights_file


def default_threads() -> int:
    """Threads per ONNX Runtime session: as many as OpenCV may use (``cv2.setNumThreads``).

    One setting for both runtimes of the pipeline: a worker process that holds OpenCV to one thread
    (video, batch enrolment, the service's workers) holds ONNX Runtime to one too.
    """
    return max(1, int(cv2.getNumThreads()))


class OnnxModel:
    """A CPU ONNX Runtime session with one image input and one output.

    ``model`` is an ONNX file or its serialised bytes (a graph rewritten in memory); ``name``
    labels it in messages. ``threads``: intra-op threads (default :func:`default_threads`, read
    when the session is made); idle threads sleep rather than spin, so a session never burns a
    core another process needs. Models exported with a fixed batch of 1 are run one crop at a
    time; models with a dynamic batch dimension get the whole batch at once.
    """

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None, name: str | None = None) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if isinstance(model, bytes):
            self.path = Path(name or "<in memory>")
            source: str | bytes = model
        else:
            self.path = Path(model)
            source = str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
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


def bundled_model(file: str, threads: int | None = None) -> OnnxModel:
    """The session of ``file``, one of the weights bundled in ``faceprint/models/weights/``.

    Raises :class:`~faceprint.errors.ModelUnavailableError` (saying how to repair the install) when
    ONNX Runtime cannot load the file.
    """
    path = weights_file(file)
    try:
        return OnnxModel(path, threads=threads)
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf types
        raise ModelUnavailableError(f"{path} cannot be loaded ({type(exc).__name__}): the file is damaged; "
                                    "reinstall faceprint ('faceprint doctor' checks every model file)") from exc
