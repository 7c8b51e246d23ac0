"""Silent-Face MiniFASNet passive anti-spoofing networks (V2 and V1SE), run by ONNX Runtime.

Each network looks at the face with a different amount of context around it: the detector's box
scaled about its centre by 2.7 (V2) or 4.0 (V1SE), shrunk when that would leave the image, shifted
back inside it, cut out and resized to 80x80 (Silent-Face's ``CropImage``). The input is BGR,
float 0-255, no mean or standard deviation. The output is three logits; after softmax, index 1 is
**live** and 0 and 2 are two kinds of attack. Which kind each answers to was measured here
(docs/liveness.md): index 0 fires on prints and almost never on screens, index 2 on screen
replays and on many prints too, so :data:`CLASSES` names them ``print`` and ``screen``.

The crop needs the whole image and the face box, not an aligned face crop: bezels, paper edges and
hands around the face are part of what the networks learnt. When the image holds less context than
the recipe asks for (a tight crop), the crop is smaller (:attr:`ContextCrop.scale` says how much).
Padding the missing context was measured and rejected, at the shipped threshold (tightly cropped
attacks pass as live) and as a tight-crop score and threshold of their own chosen on development data
(the candidate that data picked accepted 48% of the real replayed frames; docs/liveness.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Box
from .base import ModelCard
from .onnx_runtime import bundled_model

#: Names of the three output classes, in the networks' order.
CLASSES = ("print", "live", "screen")
#: Index of the live class.
LIVE = 1
#: Side of the square network input, pixels.
INPUT_SIZE = 80

_SOURCE = ("bundled with faceprint (faceprint/models/weights/{file}, 1.7 MB; LICENSE-minifasnet.txt, "
           "NOTICE-minifasnet.txt): minivision-ai/Silent-Face-Anti-Spoofing resources/anti_spoof_models/{pth}, "
           "converted to ONNX by yakhyo/face-anti-spoofing")
_ACCURACY = ("none published; measured here (docs/liveness.md): the two networks averaged, at faceprint's threshold, "
             "on a real screen-replay set, Silent-Face's samples, LFW and UTKFace")


@dataclass(frozen=True)
class ContextCrop:
    """The pixels one network sees: ``pixels`` 80x80x3 BGR uint8, cut from ``region`` (x0, y0, x1, y1, px of
    the image, inclusive) at ``scale`` x the box, where ``requested`` was asked for.

    ``scale`` is below ``requested`` when the image holds less context around the face than the
    network expects (a crop close to the face).
    """

    pixels: np.ndarray
    region: tuple[int, int, int, int]
    scale: float
    requested: float


def context_crop(image: np.ndarray, box: Box, scale: float, size: int = INPUT_SIZE) -> ContextCrop:
    """Silent-Face's crop of ``box`` at ``scale`` from an RGB uint8 ``image`` (H x W x 3), as BGR.

    The box keeps its aspect ratio; the scale is lowered until the region fits in the image, and a
    region past an edge is shifted back inside (never padded). Raises ValueError for an empty box.
    """
    height, width = image.shape[:2]
    if box.width <= 0 or box.height <= 0:
        raise ValueError(f"empty face box {box.as_list()}")
    used = min((height - 1) / box.height, (width - 1) / box.width, scale)
    new_w, new_h = box.width * used, box.height * used
    cx, cy = box.center
    x0, y0, x1, y1 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x0 < 0:
        x1, x0 = x1 - x0, 0.0
    if y0 < 0:
        y1, y0 = y1 - y0, 0.0
    if x1 > width - 1:
        x0, x1 = x0 - (x1 - width + 1), float(width - 1)
    if y1 > height - 1:
        y0, y1 = y0 - (y1 - height + 1), float(height - 1)
    region = (int(x0), int(y0), int(x1), int(y1))
    patch = image[region[1]:region[3] + 1, region[0]:region[2] + 1]
    rgb = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)  # per channel: resize, then swap to BGR
    return ContextCrop(pixels=np.ascontiguousarray(rgb[..., ::-1]), region=region, scale=float(used),
                       requested=float(scale))


class MiniFASNet:
    """One MiniFASNet network: ``probabilities(image, box)`` gives softmax [print, live, screen]."""

    card: ModelCard
    file: str
    scale: float

    def __init__(self) -> None:
        self._model = bundled_model(self.file, threads=1)

    def crop(self, image: np.ndarray, box: Box) -> ContextCrop:
        """This network's context crop of ``box`` in the RGB uint8 ``image``."""
        return context_crop(image, box, self.scale)

    def probabilities(self, crop: ContextCrop) -> np.ndarray:
        """Softmax probabilities, float64 [3] in :data:`CLASSES` order, of one crop."""
        blob = crop.pixels.transpose(2, 0, 1)[None].astype(np.float32)
        logits = self._model.run(blob)[0].astype(np.float64)
        e = np.exp(logits - logits.max())
        return e / e.sum()


class MiniFASNetV2(MiniFASNet):
    """MiniFASNetV2 at 2.7x the face box."""

    file = "MiniFASNetV2.onnx"
    scale = 2.7
    card = ModelCard(
        name="minifasnet-v2",
        kind="liveness",
        summary="MiniFASNetV2 (Silent-Face): passive anti-spoofing on the face box x2.7, classes print/live/screen",
        source=_SOURCE.format(file=file, pth="2.7_80x80_MiniFASNetV2.pth"),
        licence="Apache-2.0",
        published_accuracy=_ACCURACY,
        input_spec="1x3x80x80 BGR float 0-255: the face box x2.7 about its centre, shrunk to fit the image, resized",
        output_dim=3,
        weights=(f"faceprint/models/weights/{file}",),
    )


class MiniFASNetV1SE(MiniFASNet):
    """MiniFASNetV1SE (squeeze-and-excitation) at 4.0x the face box."""

    file = "MiniFASNetV1SE.onnx"
    scale = 4.0
    card = ModelCard(
        name="minifasnet-v1se",
        kind="liveness",
        summary="MiniFASNetV1SE (Silent-Face): passive anti-spoofing on the face box x4.0, classes print/live/screen",
        source=_SOURCE.format(file=file, pth="4_0_0_80x80_MiniFASNetV1SE.pth"),
        licence="Apache-2.0",
        published_accuracy=_ACCURACY,
        input_spec="1x3x80x80 BGR float 0-255: the face box x4.0 about its centre, shrunk to fit the image, resized",
        output_dim=3,
        weights=(f"faceprint/models/weights/{file}",),
    )
