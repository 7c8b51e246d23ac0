"""Train faceprint's expression network on FER2013 and export it to ONNX.

    make train-env                                         # .venv-train: torch (CPU build) and numpy
    .venv-train/bin/python scripts/train_expression.py --recipe vgg32 --epochs 60 --device cpu

Data: the FER2013 Training split (``../shared/data/expression/fer2013-train/``, 28,397 48x48 grey
crops, a folder per class) for training and the PublicTest split (``fer2013-publictest/``, 3,553) for
choosing the recipe and reporting per-epoch figures; the PrivateTest crops are never read here
(``faceprint eval expression`` reports on them). ``--packed DIR`` reads the same splits from JPEG/WebP
mosaics of 48x48 tiles (``DIR/<split>.webp`` + ``DIR/<split>-labels.npy``, made by ``--pack DIR``),
the compact form used to ship the data to a GPU machine.

Recipes (``--recipe``): VGG-style networks of four double-convolution blocks with batch norm
(``vgg32``: 32-64-128-256 channels, 1.2 M parameters; ``vgg48``; ``vgg64``), optionally with
squeeze-and-excitation (``*se``). Training: AdamW, one-cycle cosine learning rate, label smoothing
0.1, mixup (alpha 0.2) for half of the batches, augmentation on the batch tensor (random
rotation +-10 degrees, scale 0.9-1.1, shift +-10%, horizontal flip, brightness/contrast, random
erasing). Seeded (``--seed``); every epoch prints the PublicTest accuracy (with a flip at test
time). The exported ONNX (opset 17) takes float32 [n, 1, 48, 48] grey values 0-255 and returns
softmax probabilities [n, 7] averaged over the crop and its mirror image; the state dict is saved
beside it (``.pt``). ``--ensemble vgg40=A.pt vgg48=B.pt ...`` writes the mean of several trained
networks as one graph, quantised to int8 (the shipped ``expression_fer.onnx``: see
docs/attributes.md for the three members and their commands).
"""

from __future__ import annotations

import argparse
import glob
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

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
TILE = 48


def read_folder(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """Grey 48x48 crops [n, 48, 48] uint8 and labels [n] of a folder-per-class FER split."""
    import cv2

    images, labels = [], []
    for k, name in enumerate(CLASSES):
        for path in sorted(glob.glob(os.path.join(folder, name, "*"))):
            grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            if grey.shape != (TILE, TILE):
                grey = cv2.resize(grey, (TILE, TILE), interpolation=cv2.INTER_AREA)
            images.append(grey)
            labels.append(k)
    return np.stack(images), np.array(labels, np.int64)


def pack(images: np.ndarray, labels: np.ndarray, out: Path, split: str, quality: int) -> None:
    """Write ``images`` as one WebP mosaic of 48x48 tiles and the labels as .npy."""
    pack_mosaic(images, labels, out / f"{split}.webp", out / f"{split}-labels.npy", quality, np.uint8)


def read_packed(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The crops and labels :func:`pack` wrote."""
    return read_mosaic(folder / f"{split}.webp", folder / f"{split}-labels.npy", TILE, rgb=False)


class ExpressionCNN(nn.Module):
    """VGG-style: four double-conv blocks (max-pool between), global average pooling, dropout, linear.

    Input: float [n, 1, 48, 48] grey 0-255 (normalised inside); output: logits [n, 7].
    """

    def __init__(self, width: int = 32, se: bool = False, dropout: float = 0.3) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.blocks = nn.ModuleList([block(1, w[0], se), block(w[0], w[1], se), block(w[1], w[2], se),
                                     block(w[2], w[3], se)])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(w[3], len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 128.0) / 64.0
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i < 3:
                x = F.max_pool2d(x, 2)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(self.dropout(x))


class WithFlip(nn.Module):
    """Softmax probabilities averaged over the input and its horizontal mirror (test-time flip)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (F.softmax(self.net(x), 1) + F.softmax(self.net(torch.flip(x, dims=[3])), 1))


RECIPES = {
    "vgg32": dict(width=32, se=False),
    "vgg32se": dict(width=32, se=True),
    "vgg40": dict(width=40, se=False),
    "vgg40se": dict(width=40, se=True),
    "vgg48": dict(width=48, se=False),
    "vgg48se": dict(width=48, se=True),
    "vgg64": dict(width=64, se=False),
}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random similarity warp, flip, brightness/contrast and erasing of a float [n, 1, 48, 48] batch (0-255)."""
    n, dev = x.shape[0], x.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen, device=dev)

    x = random_similarity(x, gen, scale=0.1, shift=0.2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + (rand(n, 1, 1, 1) * 2 - 1) * 0.3
    bright = (rand(n, 1, 1, 1) * 2 - 1) * 25
    x = ((x - mean) * contrast + mean + bright).clamp(0, 255)
    # random erasing (Zhong et al. 2020): half of the crops lose one rectangle of 2-25% of the area
    area = rand(n) * 0.23 + 0.02
    aspect = torch.exp((rand(n) * 2 - 1) * math.log(3))
    h = (torch.sqrt(area * aspect) * TILE).clamp(4, TILE - 1)
    w = (torch.sqrt(area / aspect) * TILE).clamp(4, TILE - 1)
    y0, x0 = rand(n) * (TILE - h), rand(n) * (TILE - w)
    ys = torch.arange(TILE, device=dev).view(1, TILE, 1)
    xs = torch.arange(TILE, device=dev).view(1, 1, TILE)
    box = ((ys >= y0.view(n, 1, 1)) & (ys < (y0 + h).view(n, 1, 1)) & (xs >= x0.view(n, 1, 1))
           & (xs < (x0 + w).view(n, 1, 1)) & (rand(n).view(n, 1, 1) < 0.5))
    x = torch.where(box.unsqueeze(1), rand(n, 1, TILE, TILE) * 255, x)
    return x


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 512) -> float:
    """Accuracy with a test-time flip."""
    model.eval()
    tta = WithFlip(model)
    hits = 0
    for i in range(0, len(images), batch):
        hits += (tta(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum().item()
    return hits / len(images)


class Ensemble(nn.Module):
    """The mean of several networks' flip-averaged probabilities."""

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList([WithFlip(n) for n in nets])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(m(x) for m in self.members) / len(self.members)


def export_ensemble(members: list[str], path: Path, data: str) -> None:
    """Export the mean of ``members`` (``RECIPE=STATE.pt``) to ONNX, then quantise it to int8 (``path``).

    Static QDQ quantisation by ONNX Runtime (weights int8 per channel, activations uint8),
    calibrated on every 100th crop of the FER2013 Training split.
    """
    nets = []
    for member in members:
        recipe, state = member.split("=", 1)
        net = ExpressionCNN(**RECIPES[recipe])
        net.load_state_dict(torch.load(state, map_location="cpu"))
        nets.append(net.eval())
    float_path = path.with_suffix(".float.onnx")
    torch.onnx.export(Ensemble(nets).eval(), torch.zeros(1, 1, TILE, TILE), str(float_path), input_names=["grey"],
                      output_names=["probabilities"], dynamic_axes={"grey": {0: "n"}, "probabilities": {0: "n"}},
                      opset_version=17, dynamo=False)
    calibration = read_folder(os.path.join(data, "fer2013-train"))[0][::100].astype(np.float32)[:, None]
    quantise_int8(float_path, path, "grey", calibration)
    print(f"ensemble of {len(nets)} exported: {path} ({path.stat().st_size / 1e6:.2f} MB int8; "
          f"float32 graph kept at {float_path})")


def export(model: nn.Module, path: Path) -> None:
    """ONNX (opset 17) of the model with the flip, dynamic batch, float32, on the CPU."""
    model = WithFlip(model.cpu().eval())
    dummy = torch.zeros(1, 1, TILE, TILE)
    torch.onnx.export(model, dummy, str(path), input_names=["grey"], output_names=["probabilities"],
                      dynamic_axes={"grey": {0: "n"}, "probabilities": {0: "n"}}, opset_version=17, dynamo=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/expression", help="folder holding fer2013-train/ and fer2013-publictest/")
    parser.add_argument("--packed", type=Path, help="read the splits from mosaics in this folder instead")
    parser.add_argument("--pack", type=Path, help="write the splits as mosaics into this folder and stop")
    parser.add_argument("--pack-quality", type=int, default=30, help="WebP quality of --pack (a GPU run carries ~12 MB)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="vgg32")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--mixup", type=float, default=0.2, help="mixup alpha (0: none)")
    parser.add_argument("--smoothing", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-batches", type=int, default=0, help="stop each epoch after this many batches (a smoke test)")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="stop after this epoch of the --epochs schedule (its state is what the run leaves)")
    parser.add_argument("--ensemble", nargs="+", metavar="RECIPE=STATE.pt",
                        help="export the mean of these trained networks to --out, quantised to int8, and stop")
    parser.add_argument("--out", type=Path, default=Path("faceprint/models/weights/expression_fer.onnx"))
    parser.add_argument("--log", type=Path, help="append one JSON line per epoch here")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.pack:
        for split in ("fer2013-train", "fer2013-publictest"):
            pack(*read_folder(os.path.join(args.data, split)), args.pack, split, args.pack_quality)
        print("packed into", args.pack)
        return
    if args.ensemble:
        export_ensemble(args.ensemble, args.out, args.data)
        return
    t0 = time.time()
    if args.packed:
        train_x, train_y = read_packed(args.packed, "fer2013-train")
        val_x, val_y = read_packed(args.packed, "fer2013-publictest")
    else:
        train_x, train_y = read_folder(os.path.join(args.data, "fer2013-train"))
        val_x, val_y = read_folder(os.path.join(args.data, "fer2013-publictest"))
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = args.device == "cuda"
    tx = torch.from_numpy(train_x).float().unsqueeze(1).to(dev)
    ty = torch.from_numpy(train_y).to(dev)
    vx = torch.from_numpy(val_x).float().unsqueeze(1).to(dev)
    vy = torch.from_numpy(val_y).to(dev)
    print(f"data: {len(tx)} train, {len(vx)} public-test crops, {time.time() - t0:.1f} s", flush=True)

    model = ExpressionCNN(**RECIPES[args.recipe]).to(dev)
    params = sum(p.numel() for p in model.parameters())
    print(f"recipe {args.recipe}: {params / 1e6:.2f} M parameters", flush=True)
    steps_per_epoch = math.ceil(len(tx) / args.batch)
    if args.max_batches:
        steps_per_epoch = min(steps_per_epoch, args.max_batches)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    cpu_gen = torch.Generator()
    cpu_gen.manual_seed(args.seed)
    beta = torch.distributions.Beta(args.mixup, args.mixup) if args.mixup > 0 else None
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.time()
        order = torch.randperm(len(tx), generator=cpu_gen).to(dev)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch:(step + 1) * args.batch]
            x, y = augment(tx[idx], gen), ty[idx]
            target = F.one_hot(y, len(CLASSES)).float() * (1 - args.smoothing) + args.smoothing / len(CLASSES)
            if beta is not None and step % 2 == 0:
                lam = float(beta.sample())
                perm = torch.randperm(len(x), generator=cpu_gen).to(dev)
                x = lam * x + (1 - lam) * x[perm]
                target = lam * target + (1 - lam) * target[perm]
            loss = torch.sum(-target * F.log_softmax(model(x), 1), 1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        seconds = time.time() - start
        acc = evaluate(model, vx, vy)
        best = max(best, acc)
        line = {"recipe": args.recipe, "epoch": epoch, "loss": round(total / steps_per_epoch, 4),
                "publictest_accuracy": round(acc, 4), "epoch_seconds": round(seconds, 1)}
        print(json.dumps(line), flush=True)
        if args.log:
            with open(args.log, "a") as fh:
                fh.write(json.dumps(line) + "\n")
        if epoch == args.stop_after:
            break
        if epoch % 10 == 0:  # a run stopped early still leaves its last state
            args.out.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    export(model, args.out)
    print(f"exported {args.out} ({args.out.stat().st_size / 1e6:.2f} MB); last public-test accuracy {acc:.4f}, "
          f"best {best:.4f}; {time.time() - t0:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
