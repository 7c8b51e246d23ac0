#!/usr/bin/env python3
"""CK+48 subject-disjoint: faceprint's expression networks with a linear head refit on CK+'s own classes.

    .venv/bin/python benchmarks/expression_ckplus.py            # about a minute

The CK+ literature reports accuracy after training on CK+ with folds that keep each subject's
crops together. Here the shipped networks stay frozen: their pooled features (the global average
pool of each of the three networks, averaged over the crop and its mirror image: 960 values) are
read from the shipped ONNX graph, and a multinomial logistic regression (standardised features,
L2 weight 1.0 fixed beforehand, 500 full-batch gradient steps) is fitted on nine of ten folds and
scored on the tenth. Folds: the subjects (``S<nnn>`` in the file names) in sorted order, dealt
round-robin into 10 groups, so no subject is in both the training and the test part of a fold.
All seven CK+ classes are scored, contempt included (the head learns it; the FER2013 classes have
none). ``faceprint eval expression ../shared/data/expression/ckplus48`` gives the figure without
any refit (contempt left out).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceprint.models.expression import to_grey48  # noqa: E402
from faceprint.models.base import weights_file  # noqa: E402


def feature_session():
    """An ONNX Runtime session of the shipped expression graph that also returns the pooled features."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(weights_file("expression_fer.onnx")))
    names = [n.output[0] for n in model.graph.node if n.op_type == "Flatten"]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]), names


def features(crops: np.ndarray) -> np.ndarray:
    """[n, 960]: each network's pooled features, crop and mirror averaged, concatenated."""
    session, names = feature_session()
    outs = session.run(names, {"grey": crops.astype(np.float32)[:, None]})
    by_member: dict[str, list[np.ndarray]] = {}
    for name, out in zip(names, outs):
        by_member.setdefault(re.search(r"members\.(\d+)", name).group(1), []).append(out)
    return np.concatenate([np.mean(v, axis=0) for _, v in sorted(by_member.items())], axis=1)


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, l2: float = 1.0, steps: int = 500) -> np.ndarray:
    """Weights [d + 1, classes] of an L2-regularised multinomial logistic regression (full-batch gradient)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros((xb.shape[1], classes))
    onehot = np.eye(classes)[y]
    lr = 0.5
    for _ in range(steps):
        z = xb @ w
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = xb.T @ (p - onehot) / len(x) + l2 * np.vstack([w[:-1], np.zeros((1, classes))]) / len(x)
        w -= lr * grad
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "expression" / "ckplus48")
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args()
    classes = sorted(p.name for p in args.data.iterdir() if p.is_dir())
    paths, labels = [], []
    for k, name in enumerate(classes):
        for path in sorted((args.data / name).iterdir()):
            paths.append(path)
            labels.append(k)
    y = np.array(labels)
    subjects = np.array([re.match(r"(S\d+)", p.name).group(1) for p in paths])
    crops = np.stack([to_grey48(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in paths])
    x = features(crops)
    order = {s: i % args.folds for i, s in enumerate(sorted(set(subjects)))}
    fold = np.array([order[s] for s in subjects])
    predicted = np.empty_like(y)
    for f in range(args.folds):
        train, test = fold != f, fold == f
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
        w = fit_softmax((x[train] - mean) / std, y[train], len(classes))
        xt = np.hstack([(x[test] - mean) / std, np.ones((test.sum(), 1))])
        predicted[test] = (xt @ w).argmax(axis=1)
    print(f"CK+48 ({args.data}): {len(y)} crops, {len(set(subjects))} subjects, {args.folds} subject-disjoint folds")
    print(f"{'class':<10} {'crops':>5} {'recall':>7}")
    for k, name in enumerate(classes):
        print(f"{name:<10} {(y == k).sum():>5} {100 * (predicted[y == k] == k).mean():>6.1f}%")
    per_fold = [(predicted[fold == f] == y[fold == f]).mean() for f in range(args.folds)]
    print(f"accuracy {100 * (predicted == y).mean():.2f}% (folds: {100 * min(per_fold):.1f}-{100 * max(per_fold):.1f}%)")


if __name__ == "__main__":
    main()
