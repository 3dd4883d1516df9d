"""Robustness of the learned crop-row path to photometric shifts, on tuning-split images only.

The learned path (``detect_rows(method="learned")``) is scored by CRDA (``bench/crop_rows_score.py``) on the
val5 images (every 5th of 0-199; never the held-out 200-299) as they are and with one perturbation applied
to every image before the network sees it: colour casts, gamma, saturation, hue, JPEG, blur and synthetic
stones on the soil (the ``--stones`` augmentation of ``tools/train_row_net.py``). A net whose score drops
little under a perturbation is robust to that kind of shift between fields; the drop is printed per
perturbation, for the bundled net and any ``--model`` given, in the same process.

Run: ``PYTHONPATH=src python bench/crop_rows_robustness.py [--model A.onnx B.onnx ...]``
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def perturbations(train_mod):
    """name -> function(BGR uint8 image) -> BGR uint8 image (deterministic)."""

    def gain(b, g, r):
        return lambda im: np.clip(im.astype(np.float32) * np.array([b, g, r], np.float32), 0, 255).astype(np.uint8)

    def gamma(gm):
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gm, 0, 255).astype(np.uint8)
        return lambda im: cv2.LUT(im, lut)

    def hsv(dh=0.0, sat=1.0):
        def f(im):
            h = cv2.cvtColor(im, cv2.COLOR_BGR2HSV).astype(np.float32)
            h[..., 0] = (h[..., 0] + dh) % 180
            h[..., 1] = np.clip(h[..., 1] * sat, 0, 255)
            return cv2.cvtColor(h.astype(np.uint8), cv2.COLOR_HSV2BGR)
        return f

    def jpeg(q):
        return lambda im: cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)

    def stones(im):
        h, w = im.shape[:2]
        s = cv2.resize(im, (train_mod.NET_W, train_mod.NET_H), interpolation=cv2.INTER_AREA).astype(np.float32)
        seed = int(im[::37, ::41].sum()) % (1 << 30)
        y = train_mod._stones(s, np.random.default_rng(seed))
        return np.clip(cv2.resize(y, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)

    return {
        "none": lambda im: im,
        "warm cast (B x0.8, R x1.2)": gain(0.8, 1.0, 1.2),
        "cool cast (B x1.2, R x0.8)": gain(1.2, 1.0, 0.8),
        "dark (x0.6)": gain(0.6, 0.6, 0.6),
        "gamma 0.6": gamma(0.6),
        "gamma 1.6": gamma(1.6),
        "saturation x0.5": hsv(sat=0.5),
        "saturation x1.5": hsv(sat=1.5),
        "hue +10": hsv(dh=10),
        "jpeg q20": jpeg(20),
        "blur sigma 1.5": lambda im: cv2.GaussianBlur(im, (0, 0), 1.5),
        "stones on the soil": stones,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="*", default=[], help="also score these ONNX row nets (224 px, mirror pass)")
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    score = _load("crop_rows_score", REPO / "bench" / "crop_rows_score.py")
    train = _load("train_row_net", REPO / "tools" / "train_row_net.py")
    from agricare.core.perception import crop_rows_net
    from agricare.core.perception.crop_rows import CropRowParams

    root = score.DEFAULT_ROOT
    if not (root / "image").is_dir():
        print(f"dev set not found at {root}", file=sys.stderr)
        return 2
    ids = [i for i in score.image_ids(root) if i in score.TUNE_IDS and i % 5 == 0]
    orig = crop_rows_net.row_heatmap
    bundled = crop_rows_net.ROW_NET_PATH
    nets = {"bundled": bundled, **{pathlib.Path(m).stem: pathlib.Path(m) for m in a.model}}
    res = {}
    for pname, f in perturbations(train).items():
        crop_rows_net.row_heatmap = lambda im, f=f: orig(f(im))
        for nname, path in nets.items():
            crop_rows_net.ROW_NET_PATH = path.resolve()
            crop_rows_net._net.cache_clear()
            r = score.score_dataset(root, ids=ids, params=CropRowParams(method="learned"))
            res[(pname, nname)] = r["aggregate"]["all"]["crda"]
    crop_rows_net.row_heatmap = orig
    crop_rows_net.ROW_NET_PATH = bundled
    crop_rows_net._net.cache_clear()
    print(f"val5 ({len(ids)} images of 0-199) CRDA, and its change under each perturbation")
    print(f"{'perturbation':<30}" + "".join(f"{n:>14}" for n in nets))
    for pname in perturbations(train):
        cells = []
        for n in nets:
            v = res[(pname, n)]
            cells.append(f"{v:>14.3f}" if pname == "none" else f"{v - res[('none', n)]:>+14.3f}")
        print(f"{pname:<30}" + "".join(cells))
    drops = {n: np.mean([res[(p, n)] - res[("none", n)] for p in perturbations(train) if p != "none"]) for n in nets}
    print(f"{'mean change':<30}" + "".join(f"{drops[n]:>+14.3f}" for n in nets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
