"""YuNet face detector (OpenCV model zoo, 2023mar), run by OpenCV's FaceDetectorYN at the scales a photo needs.

YuNet finds faces reliably only within a band of sizes (box width in pixels of its input, measured
here): below about 18 px it misses faces (LFW faces pasted on a grey canvas: 40 of 40 found at
20 px, 39 at 18 px, 37 at 16 px, 28 at 12 px); above about 240 px its box shrinks inside the face,
its landmarks drift and it may split one face into two boxes (a portrait crop scaled so the face
is 500-1300 px tall). :class:`YuNetDetector` therefore runs up to three kinds of pass and keeps each
face from the finest one that saw it within that band:

1. the whole image, its long side capped at ``max_side`` (always);
2. a coarse pass that makes such a face ``TARGET_FACE`` px wide, when pass 1 found a face wider
   than ``LARGE_FACE`` px or two overlapping boxes (a face filling the frame); it keeps only
   faces where pass 1 saw one, and runs once more if the face is still too large;
3. tiles of the image at the scale that makes a ``min_face``-wide face ``SMALL_FACE`` px wide,
   when pass 1 had to shrink the image so much that such faces fall below the band (small faces
   in a big photo).

A photo up to ``max_side`` px with faces between about 20 and 240 px wide costs one pass, as before.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Box, Face
from .base import Detector, ModelCard, weights_file
from .opencv_dnn import quiet_opencv_load

log = logging.getLogger(__name__)

#: Smallest face (box width, px of the detector's input) found reliably.
SMALL_FACE = 18.0
#: Widest face (px of the detector's input) whose box and landmarks are still accurate.
LARGE_FACE = 240.0
#: Width (px of the detector's input) a face too large for the main pass is given in a coarse pass.
TARGET_FACE = 200.0
#: Most coarse passes (each one for faces still too large in the one before).
MAX_COARSE = 2
#: Smallest long side (px) of a coarse pass's input.
MIN_SIDE = 64
#: Side (px) of a square tile in the small-face pass.
TILE = 1024
#: Overlapping boxes (intersection over the smaller box) above this trigger the coarse pass.
OVERLAP_TRIGGER = 0.3


@dataclass(frozen=True)
class _Found:
    """One detection in source-image pixels, with where it came from and how it ranks."""

    face: Face
    run: int  # one id per call of the network: detections of one call were already suppressed by it
    scale: float  # detector input px per source px
    trusted: bool  # the face was within the reliable band at this scale


def _overlap(a: Box, b: Box) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box) of two boxes."""
    return a.iou(b), a.intersection(b) / max(min(a.area, b.area), 1e-9)


class YuNetDetector(Detector):
    """Fast CNN detector giving a box, five landmarks and a score per face, at every face size.

    ``max_side``: the long side (px) of the image in the main pass; larger images are shrunk for it
    (boxes are mapped back to full resolution). ``min_face``: the smallest face width (px of the
    source image) to find: when the main pass shrinks the image so much that such a face would be
    narrower than ``SMALL_FACE`` px, the image is also scanned in tiles at a finer scale (cost: about
    60-70 ms per megapixel scanned on one core; see benchmarks/detection_scale.py). Faces
    wider than ``LARGE_FACE`` px at the main pass's scale are taken from a coarse pass.
    ``score_threshold`` and ``nms_threshold`` are YuNet's own (score in [0, 1]; IoU).
    """

    card = ModelCard(
        name="yunet",
        kind="detector",
        summary="YuNet 2023mar: light CNN face detector with 5 landmarks (OpenCV model zoo)",
        source="bundled with faceprint (faceprint/models/weights/face_detection_yunet_2023mar.onnx, 0.23 MB; OpenCV model zoo)",
        licence="MIT",
        published_accuracy="WIDER Face val AP 0.887 easy / 0.871 medium / 0.768 hard",
        input_spec="RGB image of any size; faces 20 px wide to the whole frame (multi-scale; tiles for big photos)",
    )

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int = 1280,
        top_k: int = 5000,
        min_face: float = 20.0,
    ) -> None:
        path = weights_file("face_detection_yunet_2023mar.onnx")
        self.score_threshold = score_threshold
        self.max_side = max_side
        self.min_face = min_face
        with quiet_opencv_load():  # FaceDetectorYN sets a dnn target on load: OpenCV 5 warns on stderr
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold, top_k
            )
        self._lock = threading.Lock()

    def _tile_scale(self) -> float:
        """The scale at which tiles show a ``min_face`` face at :data:`SMALL_FACE` px (0: no tiles)."""
        return min(1.0, SMALL_FACE / self.min_face) if self.min_face > 0 else 0.0

    def has_small_face_pass(self, shape: tuple[int, ...]) -> bool:
        """True when the main pass shrinks an image of ``shape`` so far that tiles are needed for
        ``min_face`` faces (long side over about 1,560 px with the defaults)."""
        main_scale = min(1.0, self.max_side / float(max(shape[0], shape[1])))
        return self._tile_scale() > 1.1 * main_scale

    def detect(self, image: np.ndarray, *, small_faces: bool = True) -> list[Face]:
        """Faces in an RGB uint8 image (H x W x 3), best score first.

        Boxes are clipped to the image; landmarks are not (a face cut by the edge keeps its
        geometry for alignment). ``small_faces=False`` skips the small-face tiles (video frames:
        a 1920x1080 frame would otherwise be tiled for 20 px faces at every detection).
        """
        height, width = image.shape[:2]
        long_side = float(max(height, width))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        main_scale = min(1.0, self.max_side / long_side)
        found = [
            _Found(face, 0, main_scale, face.box.width * main_scale <= LARGE_FACE)
            for face in self._run(bgr, main_scale, image)
        ]
        runs = 1
        scale, triggers = main_scale, self._too_large(found)
        while triggers and runs < 1 + MAX_COARSE:
            scale = min(0.75 * scale, TARGET_FACE / max(b.width for b in triggers))
            if scale * long_side < MIN_SIDE:
                break
            # Only faces where the pass before saw one too large: at a coarse scale YuNet also finds
            # faces in the background (a shoulder, hair) that the finer pass rightly did not.
            coarse = [
                _Found(face, runs, scale, face.box.width * scale <= LARGE_FACE)
                for face in self._run(bgr, scale, image)
                if face.box.width * main_scale >= LARGE_FACE / 2  # smaller ones: the main pass sees them better
                and any(_same_face(face.box, b) for b in triggers)
            ]
            found += coarse
            runs += 1
            triggers = [f.face.box for f in coarse if not f.trusted]
        if small_faces and self.has_small_face_pass(image.shape):
            found += self._tiles(bgr, image, self._tile_scale(), main_scale, runs)
        faces = [f.face for f in _suppress(found)]
        faces = [
            Face(box=f.box.clipped(width, height), landmarks=f.landmarks, score=f.score, image=image)
            for f in faces
        ]
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces

    @staticmethod
    def _too_large(found: list[_Found]) -> list[Box]:
        """Boxes (source px) of the faces the main pass saw beyond the band, and the union of
        any two overlapping boxes (one large face split in two); empty when there is none."""
        boxes = [f.face.box for f in found if not f.trusted]
        for i, a in enumerate(found):
            for b in found[i + 1:]:
                if _overlap(a.face.box, b.face.box)[1] > OVERLAP_TRIGGER:
                    union = _union(a.face.box, b.face.box)
                    if union.width * a.scale > LARGE_FACE / 2:  # smaller: two faces, one partly behind the other
                        boxes.append(union)
        return boxes

    def _run(self, bgr: np.ndarray, scale: float, image: np.ndarray, offset: tuple[float, float] = (0.0, 0.0),
             resized: np.ndarray | None = None) -> list[Face]:
        """One network call on ``bgr`` shrunk by ``scale`` (or on ``resized``, already at that
        scale, whose top-left corner is ``offset`` px of the scaled image); faces in source pixels."""
        if resized is None:
            if scale < 1.0:
                size = (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale)))
                resized = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            else:
                resized = bgr
        with self._lock:
            self._net.setInputSize((resized.shape[1], resized.shape[0]))
            _, rows = self._net.detect(resized)
        if rows is None:
            return []
        faces = []
        for row in rows:
            x, y, w, h = (float(v) for v in row[:4])
            box = Box((x + offset[0]) / scale, (y + offset[1]) / scale, w / scale, h / scale)
            landmarks = ((row[4:14].reshape(5, 2) + np.asarray(offset, np.float32)) / scale).astype(np.float32)
            faces.append(Face(box=box, landmarks=landmarks, score=float(row[14]), image=image))
        return faces

    def _tiles(self, bgr: np.ndarray, image: np.ndarray, scale: float, main_scale: float, first_run: int
               ) -> list[_Found]:
        """Faces too small for the main pass, from overlapping tiles of the image at ``scale``.

        A tile keeps only faces narrower than 1.5 x ``SMALL_FACE`` px at the main pass's scale
        (larger ones the main pass finds itself) and not touching one of its inner edges (such a
        face lies wholly inside the neighbouring tile: tiles overlap by more than its width).
        """
        height, width = bgr.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        scaled = bgr if scale >= 1.0 else cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        largest = 1.5 * SMALL_FACE / main_scale  # widest face (source px) the tiles are responsible for
        overlap = min(TILE // 2, math.ceil(1.4 * largest * scale) + 8)
        xs = _starts(scaled.shape[1], overlap)
        ys = _starts(scaled.shape[0], overlap)
        found: list[_Found] = []
        run = first_run
        for y0 in ys:
            for x0 in xs:
                tile = scaled[y0:y0 + TILE, x0:x0 + TILE]
                inner = (x0 > 0, y0 > 0, x0 + tile.shape[1] < scaled.shape[1], y0 + tile.shape[0] < scaled.shape[0])
                for face in self._run(bgr, scale, image, (x0, y0), tile):
                    if face.box.width >= largest or _touches_inner_edge(face.box, scale, (x0, y0), tile.shape, inner):
                        continue
                    found.append(_Found(face, run, scale, True))
                run += 1
        log.debug("small-face pass: %d tiles of %d px at scale %.3f, %d faces", run - first_run, TILE, scale,
                  len(found))
        return found


def _starts(length: int, overlap: int) -> list[int]:
    """Tile origins along one axis of ``length`` px: tiles of ``TILE`` px overlapping by at least ``overlap``."""
    if length <= TILE:
        return [0]
    count = math.ceil((length - overlap) / (TILE - overlap))
    return [round(i * (length - TILE) / (count - 1)) for i in range(count)]


def _touches_inner_edge(box: Box, scale: float, origin: tuple[int, int], shape: tuple[int, ...],
                        inner: tuple[bool, bool, bool, bool]) -> bool:
    """True when ``box`` (source px) reaches within 2 px of a tile edge that is not the image's edge."""
    x0 = box.x * scale - origin[0]
    y0 = box.y * scale - origin[1]
    x1 = x0 + box.width * scale
    y1 = y0 + box.height * scale
    left, top, right, bottom = inner
    margin = 2.0
    return ((left and x0 < margin) or (top and y0 < margin)
            or (right and x1 > shape[1] - margin) or (bottom and y1 > shape[0] - margin))


def _suppress(found: list[_Found]) -> list[_Found]:
    """One detection per face: trusted before untrusted, then the finest scale, then the best score.

    A detection is dropped when a better-ranked one from another network call overlaps it (IoU
    0.3, or 0.5 of the smaller box: a face split into parts at one scale is whole at another).
    Detections of one call were already suppressed by YuNet and are left alone.
    """
    ranked = sorted(found, key=lambda f: (f.trusted, f.scale, f.face.score), reverse=True)
    kept: list[_Found] = []
    for cand in ranked:
        if all(k.run == cand.run or not _same_face(k.face.box, cand.face.box) for k in kept):
            kept.append(cand)
    return kept


def _union(a: Box, b: Box) -> Box:
    """The smallest box holding ``a`` and ``b``."""
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    return Box(x0, y0, max(a.x + a.width, b.x + b.width) - x0, max(a.y + a.height, b.y + b.height) - y0)


def _same_face(a: Box, b: Box) -> bool:
    """True when two boxes overlap enough to be one face (IoU 0.3, or 0.5 of the smaller box)."""
    iou, over_smaller = _overlap(a, b)
    return iou > 0.3 or over_smaller > 0.5
