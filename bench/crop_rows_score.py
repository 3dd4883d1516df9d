"""Score crop-row detection on the labelled dev set (CRDLD test images, ``../shared/data/crop_rows_crdld``).

CRDA (Vidovic, Cupec & Hocenski, Pattern Recognition 2016), the headline figure
-------------------------------------------------------------------------------
The label image holds every row as a ~6 px white line; label lines are recovered by tracking run centres
image row by image row from the bottom up (they stop where they merge near the vanishing point) and each
is fitted by a quadratic ``u*(v)``. The ``m = 3`` label lines nearest the image centre (horizontal distance
to the centre column at ``v = 0.75 H``) are scored. For each of them and every image row ``v`` it covers:

* ``d*(v)`` = true spacing to the adjacent label line(s) at ``v`` (mean of left and right when both exist);
* ``s = max(1 - ((u(v) - u*(v)) / (0.1 d*(v)))^2, 0)`` with ``u(v)`` the detected row matched to it;

the image's CRDA is the mean of ``s`` over these rows and image rows (a missed row scores 0 on all its
image rows), the data set's the mean over images. Detected polylines are extended linearly beyond their
ends. Matching is one-to-one (each detection serves at most one label line), chosen to maximise the
summed score, so a detector cannot gain by returning many candidate lines.

Checks of the scorer itself (dev-set labels): the label lines' own quadratic fits score 1.000, straight
lines fitted to them 0.968 (labels bend slightly), the same straight lines moved 1 px sideways 0.944; moving
the "vp" detector's rows by +-0.5 or +-1 px changes its CRDA by at most 0.01 (0.653 on every 4th tuning
image), so no pixel-centre or scale convention costs score. The image rows that count are those where the
label line is drawn apart from its neighbours (tracking stops where the lines merge near the vanishing
point, where ``d*`` would go to 0).

Beside it, for the matched rows: ``pos_err`` mean ``|u - u*| / d*`` (capped at 0.5 per sample),
``ang_err_deg`` mean absolute direction difference over the row's lower half.

Split (fixed once, never changed): images 0-199 tune the detector, 200-299 are held out. Both are reported,
held-out separately, and per condition. The dev set carries no condition labels, so conditions are tagged
from the image and its label only (never from a detection), with fixed rules (``conditions``): small /
large plants (vegetation cover), shadow (large dark area), flare (saturated pixels), curved rows (label
lines bend), turned (the centre label line is oblique).

Run: ``PYTHONPATH=src python bench/crop_rows_score.py [--ids tune|held|all] [--overlay DIR]``; writes
``out/bench/crop_rows_score.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import cv2
import numpy as np

from agricare.core.perception.crop_row_score import CAP, crda_image, label_lines, label_rows  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_ROOT = (REPO.parent / "shared" / "data" / "crop_rows_crdld").resolve()


def _x_at(poly: np.ndarray, y: float) -> float:
    """x of a bottom-up polyline at image row y (NaN outside its y-range)."""
    ys, xs = poly[:, 1], poly[:, 0]
    lo, hi = float(np.min(ys)), float(np.max(ys))
    if y < lo - 1e-9 or y > hi + 1e-9:
        return math.nan
    order = np.argsort(ys)
    return float(np.interp(y, ys[order], xs[order]))


def _direction(poly: np.ndarray, y0: float, y1: float) -> float:
    xa, xb = _x_at(poly, y0), _x_at(poly, y1)
    return math.atan2(xb - xa, y0 - y1)


def score_image(rows, label_gray, step: int = 4) -> dict:
    """Score detected rows (list of (N,2) bottom-up polylines, px) against a label image."""
    gts = label_lines(label_gray)
    h = np.asarray(label_gray).shape[0]
    det = [np.asarray(r, float) for r in rows if len(r) >= 2]
    # extend each detected row down to the image bottom so its x is defined there
    ext = []
    for r in det:
        q = r.copy()
        if q[0, 1] < h - 1:
            q = np.vstack([[q[0, 0] + (q[0, 0] - q[1, 0]) * (h - 1 - q[0, 1]) / max(q[0, 1] - q[1, 1], 1e-6),
                            h - 1], q])
        ext.append(q)
    errs, per_line = [], {i: [] for i in range(len(gts))}
    for y in range(h - 1, 0, -step):
        xs = [(i, _x_at(g, y)) for i, g in enumerate(gts)]
        xs = [(i, x) for i, x in xs if math.isfinite(x)]
        if len(xs) < 2:
            continue
        sx = np.sort([x for _, x in xs])
        spacing = float(np.median(np.diff(sx)))
        if spacing < 8:
            continue
        dx = [_x_at(r, y) for r in ext]
        dx = np.array([v for v in dx if math.isfinite(v)])
        for i, x in xs:
            e = CAP if dx.size == 0 else min(CAP, float(np.min(np.abs(dx - x))) / spacing)
            errs.append(e)
            per_line[i].append((y, e))
    out = {"n_label_lines": len(gts), "n_detected": len(det)}
    if not errs:
        out.update(pos_err=CAP, hit_rate=0.0, ang_err_deg=90.0, center_pos_err=CAP, center_ang_err_deg=90.0)
        return out
    errs = np.asarray(errs)
    out["pos_err"] = float(errs.mean())
    out["hit_rate"] = float((errs < 0.1).mean())
    # angle errors over matched lines
    angs = []
    centre_i = int(np.argmin([abs(g[0, 0] - np.asarray(label_gray).shape[1] / 2) + 1e3 * (g[0, 1] < h * 0.9)
                              for g in gts]))
    c_pos, c_ang = CAP, 90.0
    for i, g in enumerate(gts):
        y0, y1 = float(g[0, 1]), float(g[0, 1] - 0.5 * (g[0, 1] - g[-1, 1]))
        lower = [e for (y, e) in per_line[i] if y >= y1]
        if not lower:
            continue
        me = float(np.mean(lower))
        # best matching detection by x at the two ends of the lower half
        best, best_d = None, math.inf
        for r in ext:
            xa, xb = _x_at(r, y0), _x_at(r, y1)
            if not (math.isfinite(xa) and math.isfinite(xb)):
                continue
            dd = abs(xa - _x_at(g, y0)) + abs(xb - _x_at(g, y1))
            if dd < best_d:
                best, best_d = r, dd
        a_err = 90.0
        if best is not None and me < 0.25:
            a_err = abs(math.degrees(_direction(best, y0, y1) - _direction(g, y0, y1)))
            angs.append(a_err)
        if i == centre_i:
            c_pos, c_ang = me, a_err
    out["ang_err_deg"] = float(np.mean(angs)) if angs else 90.0
    out["matched_lines"] = len(angs)
    out["center_pos_err"] = float(c_pos)
    out["center_ang_err_deg"] = float(c_ang)
    return out



# ----------------------------------------------------------------------------------------------
# CRDA

TUNE_IDS = range(0, 200)
HELD_IDS = range(200, 300)


CONDITIONS = ("small_plants", "large_plants", "shadow", "flare", "curved", "turned")


def conditions(image_bgr, label_gray) -> list[str]:
    """Field-condition tags from the image and its label only (fixed rules, see the module docstring)."""
    img = np.asarray(image_bgr)
    f = img.astype(np.float32)
    b, g, r = f[..., 0], f[..., 1], f[..., 2]
    s = b + g + r + 1.0
    exg = (2 * g - r - b) / s
    veg = float((exg > 0.08).mean())
    tags = []
    if veg < 0.05:
        tags.append("small_plants")
    elif veg > 0.20:
        tags.append("large_plants")
    lum = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lum = cv2.blur(lum, (15, 15))
    if float((lum < 0.5 * np.median(lum)).mean()) > 0.12:
        tags.append("shadow")
    if float((img.min(axis=2) > 245).mean()) > 0.01:
        tags.append("flare")
    gts, w = label_rows(label_gray)
    h = np.asarray(label_gray).shape[0]
    bend = 0.0
    for c, y0, y1 in gts:
        if y1 - y0 < 60:
            continue
        yy = np.linspace(y0, y1, 20)
        xx = np.polyval(c, yy)
        chord = xx[0] + (xx[-1] - xx[0]) * (yy - y0) / (y1 - y0)
        bend = max(bend, float(np.max(np.abs(xx - chord))))
    if bend > 0.012 * h:
        tags.append("curved")
    if gts:
        xref = np.array([np.polyval(c, 0.75 * h) for c, _, _ in gts])
        c, y0, y1 = gts[int(np.argmin(np.abs(xref - (w - 1) / 2.0)))]
        ang = math.degrees(math.atan(abs(np.polyval(np.polyder(c), 0.5 * (y0 + y1)))))
        if ang > 12.0:
            tags.append("turned")
    return tags or ["plain"]


def image_ids(root: pathlib.Path) -> list[int]:
    return sorted(int(p.stem) for p in (root / "image").glob("*.jpg"))


def _summary(per: dict, ids) -> dict:
    ids = [i for i in ids if i in per and math.isfinite(per[i]["crda"])]
    if not ids:
        return {"n": 0}
    out = {"n": len(ids)}
    for k in ("crda", "pos_err", "ang_err_deg", "ms"):
        out[k] = float(np.mean([per[i][k] for i in ids]))
    out["crda_median"] = float(np.median([per[i]["crda"] for i in ids]))
    out["frac_crda_ge_0.5"] = float(np.mean([per[i]["crda"] >= 0.5 for i in ids]))
    return out


def score_dataset(root=DEFAULT_ROOT, params=None, ids=None, overlay_dir=None, detector=None,
                  legacy: bool = False) -> dict:
    """Run a detector (default :func:`detect_rows` with ``params``) over the dev set; CRDA per image,
    aggregated for all, the tuning and the held-out split and per condition."""
    from agricare.core.perception.crop_rows import detect_rows, draw_rows

    if detector is None:
        def detector(im):
            return detect_rows(im, params)

    root = pathlib.Path(root)
    ids = image_ids(root) if ids is None else list(ids)
    per = {}
    for i in ids:
        img = cv2.imread(str(root / "image" / f"{i}.jpg"), cv2.IMREAD_COLOR)
        lab = cv2.imread(str(root / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        t0 = time.perf_counter()
        res = detector(img)
        dt = time.perf_counter() - t0
        s = crda_image(res.rows, lab)
        s["ms"] = dt * 1e3
        s["confidence"] = float(res.confidence)
        s["conditions"] = conditions(img, lab)
        if legacy:
            s["legacy"] = score_image(res.rows, lab)
        per[i] = s
        if overlay_dir is not None:
            ov = draw_rows(img, res)
            for g in label_lines(lab):
                cv2.polylines(ov, [np.round(g[::8]).astype(np.int32).reshape(-1, 1, 2)], False, (255, 0, 0), 1)
            cv2.putText(ov, f"CRDA {s['crda']:.2f}", (5, ov.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1, cv2.LINE_AA)
            pathlib.Path(overlay_dir).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(pathlib.Path(overlay_dir) / f"{i}.png"), ov)
    agg = {"all": _summary(per, ids), "tune": _summary(per, [i for i in ids if i in TUNE_IDS]),
           "held_out": _summary(per, [i for i in ids if i in HELD_IDS])}
    cond = {}
    for c in CONDITIONS + ("plain",):
        sel = [i for i in ids if c in per[i]["conditions"]]
        cond[c] = {"all": _summary(per, sel), "held_out": _summary(per, [i for i in sel if i in HELD_IDS])}
    return {"aggregate": agg, "conditions": cond, "per_image": per}


def print_report(r: dict, title: str = "") -> None:
    agg = r["aggregate"]
    if title:
        print(title)
    print(f"  {'split':<22}{'n':>5}{'CRDA':>8}{'median':>8}{'>=0.5':>8}{'pos_err':>9}{'ang_deg':>9}{'ms':>8}")
    rows = [(k, agg[k]) for k in ("tune", "held_out", "all")]
    rows += [(f"  {c}", v["all"]) for c, v in r["conditions"].items()]
    rows += [(f"  {c} (held-out)", v["held_out"]) for c, v in r["conditions"].items()]
    for name, v in rows:
        if v.get("n", 0) == 0:
            continue
        print(f"  {name:<22}{v['n']:>5}{v['crda']:>8.3f}{v['crda_median']:>8.3f}{v['frac_crda_ge_0.5']:>8.2f}"
              f"{v['pos_err']:>9.3f}{v['ang_err_deg']:>9.1f}{v['ms']:>8.1f}")


def _flip(a):
    """The mirror pass asked for (``--flip`` / ``--no-flip``), None for the bundled model's setting."""
    return True if a.flip else (False if a.no_flip else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--ids", choices=("tune", "held", "all", "val", "val5"), default="all",
                    help="val: 160-199 (the learned path's validation split so far); val5: every 5th of 0-199")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--overlay", default=None, help="write overlays (detected red/yellow, label blue)")
    ap.add_argument("--method", choices=("vp", "fourier", "learned"), default="vp")
    ap.add_argument("--out", default=str(REPO / "out" / "bench" / "crop_rows_score.json"))
    ap.add_argument("--model", default="", help="learned path: score this ONNX model instead of the bundled one")
    ap.add_argument("--net-size", type=int, default=0, help="learned path: network input side (default: bundled)")
    ap.add_argument("--no-flip", action="store_true", help="learned path: without the mirror-image pass")
    ap.add_argument("--flip", action="store_true", help="learned path: with the mirror-image pass")
    a = ap.parse_args(argv)
    root = pathlib.Path(a.root)
    if not (root / "image").is_dir():
        print(f"dev set not found at {root}", file=sys.stderr)
        return 2
    ids = image_ids(root)
    if a.ids == "tune":
        ids = [i for i in ids if i in TUNE_IDS]
    elif a.ids == "held":
        ids = [i for i in ids if i in HELD_IDS]
    elif a.ids == "val":
        ids = [i for i in ids if 160 <= i < 200]
    elif a.ids == "val5":
        ids = [i for i in ids if i in TUNE_IDS and i % 5 == 0]
    if a.model or a.net_size or a.no_flip or a.flip:
        from agricare.core.perception import crop_rows_net

        crop_rows_net.use_net(a.model, a.net_size, _flip(a))
    if a.limit:
        ids = ids[: a.limit]
    from agricare.core.perception.crop_rows import CropRowParams

    r = score_dataset(root, ids=ids, overlay_dir=a.overlay, params=CropRowParams(method=a.method))
    print_report(r, f"CRDA (m = 3 rows nearest the centre), tune = 0-199, held-out = 200-299, method {a.method}")
    worst = sorted(((i, s) for i, s in r["per_image"].items() if math.isfinite(s["crda"])),
                   key=lambda kv: kv[1]["crda"])[:10]
    print("worst:", ", ".join(f"{i}:{s['crda']:.2f}" for i, s in worst))
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
