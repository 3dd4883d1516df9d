"""Score crop-row detection on the labelled dev set (CRDLD test images, ``../shared/data/crop_rows_crdld``).

Metric (per image, then averaged over images)
---------------------------------------------
The label image holds every row as a ~6 px white line. Label lines are recovered by tracking run
centres image row by image row from the bottom up (they stop where they merge near the vanishing point).
On every 4th image row ``y`` where at least two label lines exist:

* ``spacing(y)`` = median distance between neighbouring label lines on that image row;
* for each label line, the error is ``|x_detected(y) - x_label(y)| / spacing(y)`` with the nearest
  detected row, capped at 0.5 (a miss or a row off by half a spacing is as bad as it gets).

``pos_err`` is the mean of that relative error, ``hit_rate`` the fraction below 0.1 spacing.
``ang_err_deg`` is the mean absolute difference in direction (deg) between each label line and the
detected row matched to it (mean relative error < 0.25 over the line's lower half).
``center_*`` are the same figures for the label line nearest the image centre at the bottom (the row
a row robot follows), measured on the lower half of the image.

Run: ``PYTHONPATH=src .venv/bin/python bench/crop_rows_score.py [--limit N] [--overlay DIR]``; writes
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

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_ROOT = (REPO.parent / "shared" / "data" / "crop_rows_crdld").resolve()
CAP = 0.5


def label_lines(label_gray: np.ndarray, min_len_px: int = 20) -> list[np.ndarray]:
    """Recover label lines as (K, 2) arrays of (x, y) run centres, bottom-up."""
    lab = np.asarray(label_gray)
    if lab.ndim == 3:
        lab = lab[..., 0]
    on = lab > 127
    h, _w = on.shape
    active: list[dict] = []
    done: list[list] = []
    for y in range(h - 1, -1, -1):
        row = on[y].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row, [0]])))
        starts, ends = edges[0::2], edges[1::2]
        centres = (starts + ends - 1) / 2.0
        widths = ends - starts
        claimed: dict[int, list[int]] = {}
        for ti, t in enumerate(active):
            pts = t["pts"]
            pred = pts[-1][0] + (t["slope"] if len(pts) > 5 else 0.0)
            if len(centres) == 0:
                continue
            j = int(np.argmin(np.abs(centres - pred)))
            if abs(centres[j] - pred) <= 8:
                claimed.setdefault(j, []).append(ti)
        stop = set()
        for j, tis in claimed.items():
            if len(tis) > 1 or widths[j] > 14:
                stop.update(tis)
            else:
                t = active[tis[0]]
                t["pts"].append((float(centres[j]), float(y)))
                if len(t["pts"]) > 5:
                    a, b = t["pts"][-6], t["pts"][-1]
                    t["slope"] = (b[0] - a[0]) / 5.0
                t["miss"] = 0
        claimed_tracks = {ti for tis in claimed.values() for ti in tis}
        for ti, t in enumerate(active):
            if ti not in claimed_tracks:
                t["miss"] += 1
                if t["miss"] > 3:
                    stop.add(ti)
        for ti in sorted(stop, reverse=True):
            done.append(active.pop(ti)["pts"])
        # new tracks for unclaimed narrow runs (lines entering from the side / bottom)
        for j in range(len(centres)):
            if j not in claimed and widths[j] <= 14:
                if all(abs(t["pts"][-1][0] - centres[j]) > 10 for t in active):
                    active.append({"pts": [(float(centres[j]), float(y))], "slope": 0.0, "miss": 0})
    done.extend(t["pts"] for t in active)
    return [np.asarray(p) for p in done if len(p) >= min_len_px]


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


def image_ids(root: pathlib.Path) -> list[int]:
    return sorted(int(p.stem) for p in (root / "image").glob("*.jpg"))


def score_dataset(root=DEFAULT_ROOT, params=None, ids=None, overlay_dir=None) -> dict:
    """Run :func:`detect_rows` over the dev set and aggregate the per-image scores."""
    from agricare.core.perception.crop_rows import detect_rows, draw_rows

    root = pathlib.Path(root)
    ids = image_ids(root) if ids is None else list(ids)
    per, times = {}, []
    for i in ids:
        img = cv2.imread(str(root / "image" / f"{i}.jpg"), cv2.IMREAD_COLOR)
        lab = cv2.imread(str(root / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        t0 = time.perf_counter()
        res = detect_rows(img, params)
        times.append(time.perf_counter() - t0)
        s = score_image(res.rows, lab)
        s["confidence"] = res.confidence
        per[i] = s
        if overlay_dir is not None:
            ov = draw_rows(img, res)
            for g in label_lines(lab):
                cv2.polylines(ov, [np.round(g[::8]).astype(np.int32).reshape(-1, 1, 2)], False, (255, 0, 0), 1)
            pathlib.Path(overlay_dir).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(pathlib.Path(overlay_dir) / f"{i}.png"), ov)
    keys = ["pos_err", "hit_rate", "ang_err_deg", "center_pos_err", "center_ang_err_deg", "confidence"]
    agg = {k: float(np.mean([per[i][k] for i in per])) for k in keys}
    agg["center_median_pos_err"] = float(np.median([per[i]["center_pos_err"] for i in per]))
    agg["center_ok_frac"] = float(np.mean([per[i]["center_pos_err"] < 0.1 and per[i]["center_ang_err_deg"] < 5
                                           for i in per]))
    agg["n_images"] = len(per)
    agg["mean_ms"] = float(np.mean(times) * 1e3)
    return {"aggregate": agg, "per_image": per}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--overlay", default=None, help="write overlays (detected red/yellow, label blue)")
    ap.add_argument("--out", default=str(REPO / "out" / "bench" / "crop_rows_score.json"))
    a = ap.parse_args(argv)
    root = pathlib.Path(a.root)
    if not (root / "image").is_dir():
        print(f"dev set not found at {root}", file=sys.stderr)
        return 2
    ids = image_ids(root)
    if a.limit:
        ids = ids[: a.limit]
    r = score_dataset(root, ids=ids, overlay_dir=a.overlay)
    agg = r["aggregate"]
    print(f"{'metric':<24}{'value':>10}")
    for k, v in agg.items():
        print(f"{k:<24}{v:>10.3f}" if isinstance(v, float) else f"{k:<24}{v:>10}")
    worst = sorted(r["per_image"].items(), key=lambda kv: -kv[1]["pos_err"])[:8]
    print("worst:", ", ".join(f"{i}:{s['pos_err']:.2f}" for i, s in worst))
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True) if False else out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
