"""Perception benchmark: crop-row detection speed on one core, dev-set CRDA, closed-loop row following.

Prints frames per second of :func:`detect_rows` at 320x240, 512x512 and 640x480 (real dev-set images
resized; one OpenCV thread, numpy single-threaded by environment), measured as CPU time of this process
(robust to other load on the machine) and as wall time, for the default ``"vp"`` detector side by side
with the previous ``"fourier"`` detector, the ``"learned"`` path (small ONNX row-line network run with
OpenCV's DNN module, when its model file is present) and the vegetation segmentation alone (resize + ExG + Otsu, the
floor any detector of this kind pays), all in the same process. Then the dev-set CRDA of each detector
(``bench/crop_rows_score.py``: tuning split 0-199, held-out split 200-299) and the plain-Python
closed-loop row-following cross-track RMS. Writes ``out/bench/perception.json``.

Run: ``PYTHONPATH=src .venv/bin/python bench/perception.py [--frames 200] [--quick]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = (REPO.parent / "shared" / "data" / "crop_rows_crdld").resolve()


def _frames():
    if (DATA / "image").is_dir():
        return [cv2.imread(str(DATA / "image" / f"{i}.jpg"), cv2.IMREAD_COLOR) for i in range(0, 100, 10)]
    from agricare.core.perception.crop_rows import CameraGeometry, render_synthetic_rows

    cam = CameraGeometry(500, 500, 319.5, 239.5, 640, 480, 1.0, 0.6)
    return [render_synthetic_rows(cam, 0.5, 0.05 * k, 0.02 * k, seed=k) for k in range(10)]


def _time(fn, imgs, n):
    fn(imgs[0])
    c0, w0 = time.process_time(), time.perf_counter()
    for k in range(n):
        fn(imgs[k % len(imgs)])
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


class _candidate_net:
    """Context: the learned path runs ``model`` (input side ``size``, mirror pass ``flip``); the bundled net's
    settings are restored on exit."""

    def __init__(self, model: str, size: int, flip: bool):
        self.args = (model, size, flip)

    def __enter__(self):
        from agricare.core.perception import crop_rows_net as m

        self.saved = (m.ROW_NET_PATH, m.NET_SIZE, m.FLIP_AVERAGE)
        m.use_net(*self.args)
        m._net.cache_clear()
        return self

    def __exit__(self, *exc):
        from agricare.core.perception import crop_rows_net as m

        m.ROW_NET_PATH, m.NET_SIZE, m.FLIP_AVERAGE = self.saved
        m._net.cache_clear()
        return False


def _flip(a):
    """The mirror pass asked for (``--flip`` / ``--no-flip``), None for the bundled model's setting."""
    return True if a.flip else (False if a.no_flip else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="skip the dev-set score and the closed loop")
    ap.add_argument("--model", default="",
                    help="also time this ONNX row network (as 'cand', the bundled one beside it in this process)")
    ap.add_argument("--net-size", type=int, default=0, help="--model's input side (default: the bundled one's)")
    ap.add_argument("--no-flip", action="store_true", help="--model without the mirror-image pass")
    ap.add_argument("--flip", action="store_true", help="learned path: with the mirror-image pass")
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    from agricare.core.perception.crop_rows import CropRowParams, detect_rows, segment_vegetation

    base = _frames()
    from agricare.core.perception.crop_rows import ROW_NET_PATH

    methods = {"vp": CropRowParams(), "fourier": CropRowParams(method="fourier")}
    if ROW_NET_PATH.is_file():
        methods["learned"] = CropRowParams(method="learned")
    out = {"fps": {}, "note": "fps = 1 / CPU time per frame of this process (one core); wall in brackets"}
    print(f"{'size':<10}{'method':<10}{'fps (cpu)':>11}{'(wall)':>9}{'ms':>8}")
    for W, H in [(320, 240), (512, 512), (640, 480)]:
        imgs = [cv2.resize(im, (W, H), interpolation=cv2.INTER_AREA) for im in base]
        row = {}
        for name, prm in methods.items():
            cpu, wall = _time(lambda im, prm=prm: detect_rows(im, prm), imgs, a.frames)
            row[name] = {"fps_cpu": 1 / cpu, "fps_wall": 1 / wall, "ms_cpu": cpu * 1e3}
            print(f"{W}x{H:<6}{name:<10}{1 / cpu:>11.0f}{1 / wall:>9.0f}{cpu * 1e3:>8.2f}")
        if a.model:  # the candidate net through the shipped code, then the bundled net restored
            with _candidate_net(a.model, a.net_size, _flip(a)):
                cpu, wall = _time(lambda im: detect_rows(im, CropRowParams(method="learned")), imgs, a.frames)
            row["cand"] = {"fps_cpu": 1 / cpu, "fps_wall": 1 / wall, "ms_cpu": cpu * 1e3, "model": a.model}
            print(f"{W}x{H:<6}{'cand':<10}{1 / cpu:>11.0f}{1 / wall:>9.0f}{cpu * 1e3:>8.2f}")

        def seg(im):
            ww = 160
            small = cv2.resize(im, (ww, int(round(im.shape[0] * ww / im.shape[1]))), interpolation=cv2.INTER_AREA)
            return segment_vegetation(small)

        scpu, swall = _time(seg, imgs, a.frames)
        row["segment_only"] = {"fps_cpu": 1 / scpu, "fps_wall": 1 / swall, "ms_cpu": scpu * 1e3}
        print(f"{W}x{H:<6}{'segment':<10}{1 / scpu:>11.0f}{1 / swall:>9.0f}{scpu * 1e3:>8.2f}")
        out["fps"][f"{W}x{H}"] = row
    if "learned" not in methods:
        print(f"learned path skipped: {ROW_NET_PATH} not found (tools/train_row_net.py writes it)")
    if not a.quick:
        if (DATA / "image").is_dir():
            spec = importlib.util.spec_from_file_location("crop_rows_score", REPO / "bench" / "crop_rows_score.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            out["dev_set"] = {}
            for name, prm in methods.items():
                r = mod.score_dataset(DATA, params=prm)
                out["dev_set"][name] = {"aggregate": r["aggregate"],
                                        "conditions": {c: v["all"] for c, v in r["conditions"].items()}}
                mod.print_report(r, f"dev set CRDA, method {name}")
        else:
            print("dev set not found, score skipped")
        from agricare.core.control.row_follower import simulate_row_following

        rms = []
        for seed in range(3):
            r = simulate_row_following(duration_s=8.0, seed=seed, camera_rate_hz=15.0, latency_s=0.05)
            m = r["t"] > 3.0
            rms.append(float(np.sqrt(np.mean(r["cte"][m] ** 2))))
        out["closed_loop_cte_rms_m"] = rms
        print("closed loop (synthetic camera, 1 m/s, 15 Hz, 50 ms latency) cross-track RMS after 3 s [cm]:",
              ", ".join(f"{100 * v:.2f}" for v in rms))
    dest = REPO / "out" / "bench" / "perception.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))
    print(f"-> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
