"""Pieces the attribute training scripts share (``train_expression.py``, ``train_age_gender.py``).

Run in the training environment (``make train-env``: torch, CPU build); never imported by faceprint.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

GRID_COLS = 128  # tiles per row of a packed mosaic


class SqueezeExcite(nn.Module):
    """Channel attention of Hu et al. (2018), reduction 8."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, max(8, channels // 8), 1)
        self.fc2 = nn.Conv2d(max(8, channels // 8), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(w))))


def block(cin: int, cout: int, se: bool) -> nn.Sequential:
    """Two 3x3 conv + batch norm + ReLU layers, then squeeze-excitation when ``se``."""
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
              nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if se:
        layers.append(SqueezeExcite(cout))
    return nn.Sequential(*layers)


def random_similarity(x: torch.Tensor, gen: torch.Generator, scale: float, shift: float) -> torch.Tensor:
    """A random rotation (up to 10 degrees), scale (1 +- ``scale``), mirror (half) and shift (+- ``shift``
    of the half-size) of the float batch ``x`` [n, c, h, w], borders replicated.

    Draws from ``gen`` in a fixed order (angle, scale, mirror, x and y shift), so a seed gives one run.
    """
    n, dev = x.shape[0], x.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen, device=dev)

    angle = (rand(n) * 2 - 1) * math.radians(10)
    zoom = 1 + (rand(n) * 2 - 1) * scale
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    tx, ty = (rand(n) * 2 - 1) * shift, (rand(n) * 2 - 1) * shift
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def pack_mosaic(tiles: np.ndarray, labels: np.ndarray, image: Path, label_file: Path, quality: int,
                label_dtype=np.int16) -> None:
    """Write uint8 ``tiles`` [n, t, t] (grey) or [n, t, t, 3] (RGB) as one WebP mosaic, GRID_COLS a row."""
    import cv2

    size = tiles.shape[1]
    rows = math.ceil(len(tiles) / GRID_COLS)
    mosaic = np.zeros((rows * size, GRID_COLS * size, *tiles.shape[3:]), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, GRID_COLS)
        mosaic[r * size:(r + 1) * size, c * size:(c + 1) * size] = tile
    image.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image), mosaic if mosaic.ndim == 2 else mosaic[..., ::-1], [cv2.IMWRITE_WEBP_QUALITY, quality])
    np.save(label_file, labels.astype(label_dtype))


def read_mosaic(image: Path, label_file: Path, size: int, rgb: bool) -> tuple[np.ndarray, np.ndarray]:
    """The tiles and labels :func:`pack_mosaic` wrote (labels as int64)."""
    import cv2

    labels = np.load(label_file).astype(np.int64)
    mosaic = cv2.imread(str(image))[..., ::-1] if rgb else cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    tiles = np.empty((len(labels), size, size, *((3,) if rgb else ())), np.uint8)
    for i in range(len(labels)):
        r, c = divmod(i, GRID_COLS)
        tiles[i] = mosaic[r * size:(r + 1) * size, c * size:(c + 1) * size]
    return tiles, labels


def quantise_int8(source: Path, target: Path, input_name: str, blobs: np.ndarray) -> None:
    """Static QDQ int8 quantisation of the ONNX file ``source`` into ``target`` by ONNX Runtime.

    Weights int8 per channel, activations uint8, calibrated on ``blobs`` (float32 network inputs, one
    row a calibration sample) fed one at a time as ``input_name``.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{input_name: blobs[i:i + 1]} for i in range(len(blobs))])

        def get_next(self):
            return next(self.items, None)

    prepared = target.with_suffix(".prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    prepared.unlink()
