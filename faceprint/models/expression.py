"""Facial expression: the seven FER2013 classes from a 48x48 grey crop, run by ONNX Runtime.

    from faceprint.models.expression import ExpressionNet
    net = ExpressionNet()
    probabilities = net.predict(image, faces)       # [n, 7] in ExpressionNet.CLASSES order
    probabilities = net.predict_crops(crops)        # 48x48 grey FER crops as read from disk

The network is faceprint's own, trained by ``scripts/train_expression.py`` on the FER2013 Training
split (Goodfellow et al., ICML 2013 challenge; research use) and chosen on its PublicTest split: the
mean of three VGG-style CNNs (four double-convolution blocks with batch norm, global average
pooling; 32, 40 and 48 base channels) trained with augmentation, mixup and label smoothing, each
averaging the softmax of the crop and of its mirror image (test-time flip), quantised to int8 by
ONNX Runtime (PublicTest accuracy 69.7% in float32, 69.7% in int8; about 1 ms a network on one
core). Accuracy on PrivateTest crops and CK+48: docs/attributes.md (``faceprint eval expression``).

The crop is framed like FER2013's: the five landmarks of a detected face are mapped by a
similarity transform onto :data:`FER_TEMPLATE` (the median landmarks YuNet finds on FER2013
PublicTest crops, made left-right symmetric), in grey. An expression is what the face shows, not
what the person feels: the classes are the posed and spontaneous prototypes FER2013's annotators
labelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import UnsupportedInputError
from ..types import Face
from .base import ModelCard
from .onnx_runtime import bundled_model
from .warp import align_face

#: The seven FER2013 classes, in the network's output order.
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
#: Side of the network's square grey input, pixels.
INPUT_SIZE = 48
#: Where a face's five landmarks (right eye, left eye, nose, right and left mouth corner) lie in a
#: 48x48 FER2013 crop: medians of YuNet's landmarks on 463 PublicTest crops, mirrored to symmetry.
FER_TEMPLATE = np.array(
    [[15.0, 18.9], [33.0, 18.9], [24.0, 28.5], [16.3, 36.0], [31.7, 36.0]], dtype=np.float32
)
WEIGHTS = "expression_fer.onnx"


def to_grey48(crop: np.ndarray) -> np.ndarray:
    """A crop as the network reads it: grey uint8 48x48 from grey [h, w] or RGB [h, w, 3] (any size).

    Raises UnsupportedInputError for another shape or an empty crop.
    """
    crop = np.asarray(crop)
    if crop.ndim == 3 and crop.shape[2] == 3:
        crop = cv2.cvtColor(crop.astype(np.uint8, copy=False), cv2.COLOR_RGB2GRAY)
    elif crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[..., 0]
    if crop.ndim != 2 or min(crop.shape) == 0:
        raise UnsupportedInputError(
            f"an expression crop must be grey [h, w] or RGB [h, w, 3], got shape {crop.shape}; "
            "pass a face crop, or a whole image with its faces to predict()"
        )
    crop = crop.astype(np.uint8, copy=False)
    if crop.shape != (INPUT_SIZE, INPUT_SIZE):
        crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return crop


class ExpressionNet:
    """faceprint's FER2013 expression network: ``predict`` gives [n, 7] probabilities per face.

    ``min_face_px`` is the smallest face box side (pixels) the prediction is trusted at: FER2013
    PrivateTest crops shrunk to a 32 px face read 67.2% against 69.1% at 48 px, 66.8% at 24 px and
    53.1% at 16 px (``benchmarks/attributes.py --sizes``; docs/attributes.md).
    ``threads``: ONNX Runtime intra-op threads (default 1: one face costs a few ms).
    """

    CLASSES = CLASSES
    min_face_px = 32
    file = WEIGHTS
    card = ModelCard(
        name="expression-fer",
        kind="attribute",
        summary="faceprint's FER2013 expression CNNs (3, int8): 7 classes (angry, disgust, fear, happy, neutral, sad, surprise)",
        source=(f"bundled with faceprint (faceprint/models/weights/{WEIGHTS}); trained here by "
                "scripts/train_expression.py on the FER2013 Training split, chosen on PublicTest"),
        licence="MIT",
        published_accuracy="measured here (docs/attributes.md): FER2013 PrivateTest crops and CK+48",
        input_spec="n x 1 x 48 x 48 grey float 0-255, FER2013 framing (5-point similarity to FER_TEMPLATE); int8 graph",
        output_dim=len(CLASSES),
        weights=(f"faceprint/models/weights/{WEIGHTS}",),
    )

    def __init__(self, threads: int = 1) -> None:
        self._model = bundled_model(self.file, threads=threads)

    def crop(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The grey 48x48 uint8 crop of ``face`` in the RGB uint8 ``image_rgb``, framed like FER2013."""
        aligned = align_face(image_rgb, face.landmarks, FER_TEMPLATE, (INPUT_SIZE, INPUT_SIZE))
        return to_grey48(aligned)

    def predict_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities float32 [n, 7] (rows sum to 1, :data:`CLASSES` order) of grey or RGB crops."""
        if len(crops) == 0:
            return np.zeros((0, len(CLASSES)), np.float32)
        blob = np.stack([to_grey48(c) for c in crops]).astype(np.float32)[:, None]
        probabilities = self._model.run(blob)
        return (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, image_rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Probabilities float32 [len(faces), 7] of each face of the RGB uint8 ``image_rgb``."""
        return self.predict_crops([self.crop(image_rgb, f) for f in faces])
