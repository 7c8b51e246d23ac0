"""Train faceprint's age and gender network on UTKFace and export it to ONNX.

    make train-env
    .venv-train/bin/python scripts/train_age_gender.py --recipe w32 --epochs 60 --device cpu

Data: ``../shared/data/age/utkface-train/`` (12,262 UTKFace chips, labels in the file names
``age_gender_race_date.jpg.chip.jpg``). A sixth of it, drawn with the seed, is held out to choose
the recipe and to measure the error that sets the age range (``--ranges``); ``utkface-sample`` is
never read here (``faceprint eval age`` reports on it). Each chip is cropped as faceprint crops a
detected face (:func:`faceprint.models.age_gender.crop_from_landmarks`: YuNet's five landmarks,
similarity-aligned to :data:`~faceprint.models.age_gender.UTK_TEMPLATE`, 64x64 RGB), so training
and use see the same framing; ``--pack DIR`` writes those crops as a WebP mosaic (the compact form
carried to a GPU machine) and ``--packed DIR`` trains from it.

The network: a stride-2 stem and four double-convolution blocks with batch norm (``w32``: 32-64-128-256
channels; ``w48``; ``*se`` with squeeze-and-excitation; ``full32`` without the stride-2 stem),
global average pooling, and two heads: 101 age bins (0-100 years; the estimate is the softmax
expectation, trained with a Gaussian label distribution of sigma 2.5 years plus an L1 term on the
expectation, as in DLDL-v2, Gao et al. 2018) and one gender logit. Augmentation: flips, rotation
+-10 degrees, scale and shift, brightness, contrast and colour. AdamW with a cosine schedule.
The exported ONNX (opset 17) takes float32 [n, 3, 64, 64] RGB 0-255 and returns [n, 2]: age in
years and the probability that the face looks female, averaged over the crop and its mirror.
``--int8`` also writes an int8 build (ONNX Runtime static quantisation, calibrated on every 40th
training crop) and prints its held-out figures beside the float32 graph's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from training_common import block, pack_mosaic, quantise_int8, random_similarity, read_mosaic

SIZE = 64
AGES = 101


def labels_of(names: list[str]) -> np.ndarray:
    """[n, 3] int: age, gender (0 male, 1 female), race, from UTKFace file names."""
    return np.array([[int(v) for v in n.split("_")[:3]] for n in names], np.int64)


def read_folder(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """Crops [n, 64, 64, 3] RGB uint8 (framed as faceprint frames a detected face) and labels [n, 3]."""
    import cv2

    from faceprint.models import registry
    from faceprint.models.age_gender import crop_from_landmarks, fallback_landmarks

    detector = registry.load_detector("yunet")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg") and n.count("_") >= 3)
    crops = []
    for i, name in enumerate(names):
        image = cv2.imread(os.path.join(folder, name))[..., ::-1].copy()
        faces = detector.detect(image, small_faces=False)
        if faces:  # a large face near the middle of the chip (a few chips hold a second face at an edge)
            centre = np.array(image.shape[1::-1]) / 2
            face = max(faces, key=lambda f: f.box.area - 4 * np.hypot(*(np.array(f.box.center) - centre)))
            landmarks = face.landmarks
        else:
            landmarks = fallback_landmarks(image.shape)
        crops.append(crop_from_landmarks(image, landmarks))
        if i % 2000 == 0:
            print(f"cropped {i}/{len(names)}", flush=True)
    return np.stack(crops), labels_of(names)


def pack(crops: np.ndarray, labels: np.ndarray, out: Path, quality: int) -> None:
    pack_mosaic(crops, labels, out / "utkface-train.webp", out / "utkface-train-labels.npy", quality)


def read_packed(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    return read_mosaic(folder / "utkface-train.webp", folder / "utkface-train-labels.npy", SIZE, rgb=True)


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: a seeded sixth held out."""
    order = np.random.default_rng(seed).permutation(n)
    return order[n // 6:], order[:n // 6]


class AgeGenderCNN(nn.Module):
    """Input float [n, 3, 64, 64] RGB 0-255; output (age logits [n, 101], gender logit [n])."""

    def __init__(self, width: int = 32, se: bool = False, stem_stride: int = 2) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, stride=stem_stride, padding=1, bias=False),
                                  nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList([block(w[0], w[0], se), block(w[0], w[1], se), block(w[1], w[2], se),
                                     block(w[2], w[3], se)])
        self.dropout = nn.Dropout(0.3)
        self.age = nn.Linear(w[3], AGES)
        self.gender = nn.Linear(w[3], 1)

    def forward(self, x):
        x = self.stem((x - 128.0) / 64.0)
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i < 3:
                x = F.max_pool2d(x, 2)
        x = self.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return self.age(x), self.gender(x).squeeze(1)


class Exported(nn.Module):
    """[n, 2]: expected age (years) and P(female), averaged over the crop and its mirror image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("ages", torch.arange(AGES, dtype=torch.float32))

    def forward(self, x):
        out = []
        for view in (x, torch.flip(x, dims=[3])):
            age_logits, gender_logit = self.net(view)
            out.append(torch.stack([(F.softmax(age_logits, 1) * self.ages).sum(1), torch.sigmoid(gender_logit)], 1))
        return 0.5 * (out[0] + out[1])


RECIPES = {
    "w32": dict(width=32), "w32se": dict(width=32, se=True), "w48": dict(width=48),
    "w48se": dict(width=48, se=True), "full32": dict(width=32, stem_stride=1),
}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, dev = x.shape[0], x.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen, device=dev)

    x = random_similarity(x, gen, scale=0.08, shift=0.1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + (rand(n, 1, 1, 1) * 2 - 1) * 0.25) + mean + (rand(n, 1, 1, 1) * 2 - 1) * 20
    x = x * (1 + (rand(n, 3, 1, 1) * 2 - 1) * 0.06)  # colour balance
    grey = x.mean(dim=1, keepdim=True)
    x = torch.where(rand(n, 1, 1, 1) < 0.1, grey.expand_as(x), x)  # a few grey photos
    return x.clamp(0, 255)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    """[n, 2] (age, p_female) with the flip, on ``x`` float [n, 3, 64, 64]."""
    model.eval()
    exported = Exported(model).to(x.device)
    return torch.cat([exported(x[i:i + batch]) for i in range(0, len(x), batch)]).cpu().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/age/utkface-train")
    parser.add_argument("--packed", type=Path)
    parser.add_argument("--pack", type=Path)
    parser.add_argument("--pack-quality", type=int, default=50)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="w32")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--sigma", type=float, default=2.5, help="years: width of the Gaussian age-label distribution")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("faceprint/models/weights/age_gender.onnx"))
    parser.add_argument("--log", type=Path)
    parser.add_argument("--embedding-head", action="store_true",
                        help="instead of training the network, measure a head on SFace embeddings (ridge regression "
                             "for age, logistic regression for gender) on the same held-out part, and stop")
    parser.add_argument("--int8", action="store_true",
                        help="also write an int8 graph (.int8.onnx) and its held-out figures (measured, not shipped)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.pack:
        pack(*read_folder(args.data), args.pack, args.pack_quality)
        print("packed into", args.pack)
        return
    if args.embedding_head:
        embedding_head(args.data, args.seed)
        return
    crops, labels = read_packed(args.packed) if args.packed else read_folder(args.data)
    train_idx, held_idx = split(len(crops), args.seed)
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = args.device == "cuda"
    x_all = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    tx, vx = x_all[train_idx].to(dev), x_all[held_idx].to(dev)
    age = torch.from_numpy(labels[:, 0]).clamp(0, AGES - 1)
    ta, tg = age[train_idx].to(dev), torch.from_numpy(labels[train_idx, 1]).float().to(dev)
    va, vg = labels[held_idx, 0], labels[held_idx, 1]
    print(f"data: {len(tx)} train, {len(vx)} held-out crops, {time.time() - t0:.1f} s", flush=True)
    model = AgeGenderCNN(**RECIPES[args.recipe]).to(dev)
    print(f"recipe {args.recipe}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)
    bins = torch.arange(AGES, dtype=torch.float32, device=dev)
    steps = math.ceil(len(tx) / args.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps, pct_start=0.15)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    cpu_gen = torch.Generator()
    cpu_gen.manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.time()
        order = torch.randperm(len(tx), generator=cpu_gen).to(dev)
        total = 0.0
        for step in range(steps):
            idx = order[step * args.batch:(step + 1) * args.batch]
            x, a, g = augment(tx[idx], gen), ta[idx].float(), tg[idx]
            age_logits, gender_logit = model(x)
            target = torch.exp(-0.5 * ((bins[None] - a[:, None]) / args.sigma) ** 2)
            target = target / target.sum(1, keepdim=True)
            logp = F.log_softmax(age_logits, 1)
            expected = (logp.exp() * bins).sum(1)
            loss = (-(target * logp).sum(1).mean() + 0.05 * (expected - a).abs().mean()
                    + F.binary_cross_entropy_with_logits(gender_logit, g))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        out = predict(model, vx)
        err = np.abs(out[:, 0] - va)
        old = va >= 60
        line = {"recipe": args.recipe, "epoch": epoch, "loss": round(total / steps, 4),
                "heldout_mae": round(float(err.mean()), 3), "heldout_mae_60plus": round(float(err[old].mean()), 3),
                "heldout_gender_accuracy": round(float(((out[:, 1] > 0.5) == vg).mean()), 4),
                "epoch_seconds": round(time.time() - start, 1)}
        print(json.dumps(line), flush=True)
        if args.log:
            with open(args.log, "a") as fh:
                fh.write(json.dumps(line) + "\n")
        if epoch % 10 == 0:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    export(model, args.out)
    print(f"exported {args.out}; {time.time() - t0:.0f} s in all", flush=True)
    graphs = {"float32": args.out}
    if args.int8:
        graphs["int8"] = args.out.with_suffix(".int8.onnx")
        quantise(args.out, graphs["int8"], crops[train_idx[::40]])
    for kind, path in graphs.items():
        held = np.concatenate([run_onnx(path, crops[held_idx[i:i + 256]]) for i in range(0, len(held_idx), 256)])
        error = np.abs(held[:, 0] - va)
        by_decade = {d: round(float(error[np.minimum(va // 10 * 10, 90) == d].mean()), 2) for d in (60, 70, 80, 90)
                     if (np.minimum(va // 10 * 10, 90) == d).any()}
        print(f"{kind} graph on the held-out crops: MAE {error.mean():.3f}, aged 60+ {error[va >= 60].mean():.3f} "
              f"(by decade {by_decade}), gender accuracy {((held[:, 1] > 0.5) == vg).mean():.4f}")
        if kind == "float32":
            print("AGE_RANGES for faceprint/models/age_gender.py:", json.dumps(age_ranges(held[:, 0], va)))


def embedding_head(folder: str, seed: int) -> None:
    """Held-out age MAE and gender accuracy of linear heads on the SFace embeddings faceprint computes anyway."""
    import cv2

    from faceprint.models import registry
    from faceprint.models.age_gender import fallback_landmarks
    from faceprint.models.base import ARCFACE_112
    from faceprint.models.logistic import fit_logistic
    from faceprint.models.warp import align_face

    detector, sface = registry.load_detector("yunet"), registry.load_embedder("sface")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg") and n.count("_") >= 3)
    embeddings = []
    for name in names:
        image = cv2.imread(os.path.join(folder, name))[..., ::-1].copy()
        faces = detector.detect(image, small_faces=False)
        centre = np.array(image.shape[1::-1]) / 2
        landmarks = (max(faces, key=lambda f: f.box.area - 4 * np.hypot(*(np.array(f.box.center) - centre))).landmarks
                     if faces else fallback_landmarks(image.shape))
        embeddings.append(sface.embed_crops(align_face(image, landmarks, ARCFACE_112, (112, 112))[None])[0])
    x = np.array(embeddings, np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = labels_of(names)
    train, held = split(len(x), seed)
    mean = x[train].mean(axis=0)
    xt, xh = x[train] - mean, x[held] - mean
    age = labels[:, 0].astype(np.float64)
    coef = np.linalg.solve(xt.T @ xt + np.eye(x.shape[1]), xt.T @ (age[train] - age[train].mean()))
    estimate = np.clip(xh @ coef + age[train].mean(), 0, 100)
    error = np.abs(estimate - age[held])
    g_coef, g_bias = fit_logistic(xt, labels[train, 1], lam=1.0)
    gender = ((xh @ g_coef + g_bias) > 0) == (labels[held, 1] == 1)
    print(f"SFace-embedding head on the held-out crops: MAE {error.mean():.3f}, aged 60+ "
          f"{error[age[held] >= 60].mean():.3f}, gender accuracy {gender.mean():.4f}")


def quantise(source: Path, target: Path, calibration: np.ndarray) -> None:
    """Static QDQ int8 quantisation by ONNX Runtime (weights per channel), calibrated on RGB crops [n, 64, 64, 3]."""
    quantise_int8(source, target, "rgb", calibration.transpose(0, 3, 1, 2).astype(np.float32))


def run_onnx(path: Path, crops: np.ndarray) -> np.ndarray:
    """[n, 2] (age, p_female) of the exported graph on RGB crops [n, 64, 64, 3]."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"rgb": crops.transpose(0, 3, 1, 2).astype(np.float32)})[0]


def age_ranges(estimate: np.ndarray, age: np.ndarray) -> dict:
    """10th / 90th percentile of (age - estimate) in bins of estimated age: the 80% interval."""
    edges = [0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    bins = np.clip(np.searchsorted(edges, estimate, side="right") - 1, 0, len(edges) - 1)
    error = age - estimate

    def percentile(k: int, q: float) -> float:  # a bin without held-out faces takes everyone's
        inside = error[bins == k]
        return round(float(np.percentile(inside if len(inside) else error, q)), 2)

    return {"edges": edges, "low": [percentile(k, 10) for k in range(len(edges))],
            "high": [percentile(k, 90) for k in range(len(edges))]}


def export(model: nn.Module, path: Path) -> None:
    exported = Exported(model.cpu().eval())
    torch.onnx.export(exported, torch.zeros(1, 3, SIZE, SIZE), str(path), input_names=["rgb"],
                      output_names=["age_p_female"], dynamic_axes={"rgb": {0: "n"}, "age_p_female": {0: "n"}},
                      opset_version=17, dynamo=False)


if __name__ == "__main__":
    main()
