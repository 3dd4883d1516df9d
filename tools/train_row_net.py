"""Train the small crop-row segmentation network used by ``detect_rows(method="learned")``.

The network maps a 160x120 BGR working image to a map of crop-row centre lines (logits), trained on the
tuning split of the dev set only (CRDLD images 0-199; 200-299 stay held out) against the label lines
(white lines on black, area-downscaled and widened to ~3 px). Augmentation: horizontal flips, colour,
brightness and contrast jitter, small shifts. Fixed seeds and one thread make a run reproducible on one
machine. Exported to ONNX (opset 13, plain Conv/ConvTranspose/Relu/Add) and run with OpenCV's DNN
module, so torch is needed only here, never at run time.

Run (torch from a separate environment, not a project requirement):
    python tools/train_row_net.py [--data ../shared/data/crop_rows_crdld] [--epochs 150]
writes ``src/agricare/core/perception/models/crop_row_net.onnx``.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import time

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "agricare" / "core" / "perception" / "models" / "crop_row_net.onnx"
W, H = 160, 120
TUNE_IDS = range(0, 200)


def load(root: pathlib.Path):
    xs, ys = [], []
    for i in TUNE_IDS:
        im = cv2.imread(str(root / "image" / f"{i}.jpg"), cv2.IMREAD_COLOR)
        lab = cv2.imread(str(root / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        if im is None or lab is None:
            continue
        x = cv2.resize(im, (W, H), interpolation=cv2.INTER_AREA)
        lab = cv2.dilate((lab > 127).astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
        y = cv2.resize(lab, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        xs.append(x)
        ys.append(np.clip(y * 1.5, 0.0, 1.0))
    return np.stack(xs), np.stack(ys)


def build(torch):
    nn = torch.nn

    class RowNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 12, 3, padding=1)
            self.c2 = nn.Conv2d(12, 24, 3, stride=2, padding=1)
            self.c3 = nn.Conv2d(24, 32, 3, stride=2, padding=1)
            self.c4 = nn.Conv2d(32, 32, 3, padding=2, dilation=2)
            self.u1 = nn.ConvTranspose2d(32, 24, 4, stride=2, padding=1)
            self.u2 = nn.ConvTranspose2d(24, 12, 4, stride=2, padding=1)
            self.out = nn.Conv2d(12, 1, 1)
            self.relu = nn.ReLU()

        def forward(self, x):
            a = self.relu(self.c1(x))
            b = self.relu(self.c2(a))
            c = self.relu(self.c3(b))
            c = self.relu(self.c4(c)) + c
            u = self.relu(self.u1(c)) + b
            u = self.relu(self.u2(u)) + a
            return self.out(u)

    return RowNet()


def augment(x, y, rng: np.random.Generator):
    x = x.astype(np.float32)
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
    x = x * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)                 # brightness / contrast
    x = x * rng.uniform(0.85, 1.15, size=3)[None, None, :]              # colour balance
    dx, dy = int(rng.integers(-8, 9)), int(rng.integers(-6, 7))
    M = np.float32([[1, 0, dx], [0, 1, dy]])
    x = cv2.warpAffine(np.ascontiguousarray(x), M, (W, H), borderMode=cv2.BORDER_REFLECT)
    y = cv2.warpAffine(np.ascontiguousarray(y), M, (W, H), borderMode=cv2.BORDER_CONSTANT)
    return np.clip(x, 0, 255), y


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str((REPO.parent / "shared" / "data" / "crop_rows_crdld").resolve()))
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    random.seed(0)
    rng = np.random.default_rng(0)
    torch.set_num_threads(1)
    X, Y = load(pathlib.Path(a.data))
    print(f"{len(X)} tuning images")
    net = build(torch)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    lossf = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(4.0))
    t0 = time.time()
    for ep in range(a.epochs):
        order = rng.permutation(len(X))
        tot = 0.0
        for k in range(0, len(order), 16):
            idx = order[k:k + 16]
            xb, yb = zip(*(augment(X[i], Y[i], rng) for i in idx))
            xt = torch.from_numpy(np.stack(xb).transpose(0, 3, 1, 2) / 255.0).float()
            yt = torch.from_numpy(np.stack(yb)[:, None]).float()
            opt.zero_grad()
            loss = lossf(net(xt), yt)
            loss.backward()
            opt.step()
            tot += float(loss) * len(idx)
        sched.step()
        if ep % 10 == 0 or ep == a.epochs - 1:
            print(f"epoch {ep:4d} loss {tot / len(X):.4f} {time.time() - t0:.0f} s", flush=True)
    net.eval()
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, torch.zeros(1, 3, H, W), str(out), opset_version=13, input_names=["bgr"],
                      output_names=["row_logits"], dynamo=False)
    print(f"-> {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
