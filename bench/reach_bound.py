"""How much of a seeded field can the farm bench's machine work at all: an upper bound for ``farm_missions.py``.

A point counts as reachable when some pose of the machine puts its working bar (``WIDTH_M`` wide,
``IMPLEMENT_OFFSET_M`` behind base_link) over it while the whole footprint (``farm_missions.FOOTPRINT``: the
body from 0.9 m behind to 3.3 m ahead of base_link, 2.2 m wide, and the implement's 0.8 m deep rectangle) lies
inside the field. No kinematics, no turning radius, no reverse budget and no connection between poses: the
bound says what geometry alone leaves, so a plan below it loses to planning, budget or tracking, not to the
field's shape.

Raster method (cell ``--cell`` m, headings every ``--dth`` degrees): for each heading the field mask is eroded
by the footprint's sample points (the poses whose footprint is inside) and dilated by the bar's (what the bar
covers from them); the union over headings, within the field, over the field's cells. Raster effects are of the
order of a cell along the boundary (a 0.2 m cell on a 1 ha field's 450 m of boundary: ~0.1 % either way), so
figures within 0.1 % of 100 % mean "nothing lost to geometry".

    python bench/reach_bound.py --seed 0 --fields 20          # the tuning seeds
    python bench/reach_bound.py --seed 100 --fields 20 --demo # the report seeds and the demo field
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import farm_missions as fm  # noqa: E402


def field_mask(field, cell: float, pad: int):
    """Raster of ``field`` (shapely polygon with holes): 1 inside, 0 outside; pad cells of 0 around it."""
    minx, miny, maxx, maxy = field.bounds
    w = int(math.ceil((maxx - minx) / cell)) + 2 * pad
    h = int(math.ceil((maxy - miny) / cell)) + 2 * pad
    mask = np.zeros((h, w), np.uint8)

    def px(coords):
        a = np.asarray(coords)[:, :2]
        cells = np.column_stack([(a[:, 0] - minx) / cell + pad, (a[:, 1] - miny) / cell + pad])
        return np.round(cells * 16).astype(np.int32)

    cv2.fillPoly(mask, [px(field.exterior.coords)], 1, shift=4)
    for hole in field.interiors:
        cv2.fillPoly(mask, [px(hole.coords)], 0, shift=4)
    return mask


def _rect_points(x0: float, x1: float, y0: float, y1: float, step: float) -> np.ndarray:
    xs = np.append(np.arange(x0, x1, step), x1)
    ys = np.append(np.arange(y0, y1, step), y1)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def _kernel(points: np.ndarray, cell: float):
    """A structuring element with a 1 at every cell holding one of ``points`` (metres, anchor at the centre)."""
    r = int(math.ceil(np.abs(points).max() / cell)) + 1
    k = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    c = np.round(points / cell).astype(int) + r
    k[c[:, 1], c[:, 0]] = 1
    return k, (r, r)


def reach_fraction(field, cell: float = 0.2, dth_deg: float = 3.0, body: bool = True) -> float:
    """Fraction of ``field``'s cells the bar can cover from poses whose footprint is inside (``body=False``:
    the implement's rectangle alone must be inside)."""
    bx0, bx1, by0, by1, ix0, ix1, iy0, iy1 = fm.FOOTPRINT
    step = cell / 2
    foot = [_rect_points(ix0, ix1, iy0, iy1, step)]
    if body:
        foot.append(_rect_points(bx0, bx1, by0, by1, step))
    foot = np.vstack(foot)
    bar = _rect_points(-fm.IMPLEMENT_OFFSET_M, -fm.IMPLEMENT_OFFSET_M, -fm.WIDTH_M / 2, fm.WIDTH_M / 2, step)
    pad = int(math.ceil(8.0 / cell))
    mask = field_mask(field, cell, pad)
    reach = np.zeros_like(mask)
    for th in np.arange(0.0, 360.0, dth_deg):
        c, s = math.cos(math.radians(th)), math.sin(math.radians(th))
        rot = np.array([[c, -s], [s, c]])
        k, a = _kernel(foot @ rot.T, cell)
        poses = cv2.erode(mask, k, anchor=a, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        kb, ab = _kernel(-(bar @ rot.T), cell)
        reach |= cv2.dilate(poses, kb, anchor=ab)
    reach &= mask
    return float(reach.sum()) / float(mask.sum())


def min_corner_angle_deg(field) -> float:
    co = np.asarray(field.exterior.coords)[:-1, :2]
    out = []
    for i in range(len(co)):
        u, v = co[i - 1] - co[i], co[(i + 1) % len(co)] - co[i]
        out.append(math.degrees(math.acos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))))
    return min(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fields", type=int, default=20)
    ap.add_argument("--cell", type=float, default=0.2, help="raster cell, m")
    ap.add_argument("--dth", type=float, default=3.0, help="heading step, degrees")
    ap.add_argument("--demo", action="store_true", help="also the demo field")
    a = ap.parse_args(argv)
    if a.cell <= 0 or a.dth <= 0:
        ap.error("--cell and --dth must be positive")
    rows = []
    print(f"{'field':>6} {'ha':>5} {'min angle':>9} {'machine':>8} {'implement':>9} {'s':>5}")
    fields = [(str(s), fm.random_field(np.random.default_rng(s))) for s in range(a.seed, a.seed + a.fields)]
    if a.demo:
        fields.append(("demo", fm.DEMO_FIELD))
    for name, f in fields:
        t0 = time.time()
        m = reach_fraction(f, a.cell, a.dth, body=True)
        i = reach_fraction(f, a.cell, a.dth, body=False)
        rows.append(m)
        print(f"{name:>6} {f.area / 1e4:5.2f} {min_corner_angle_deg(f):9.0f} {100 * m:7.2f}% {100 * i:8.2f}% "
              f"{time.time() - t0:5.1f}", flush=True)
    if rows:
        print(f"mean machine bound {100 * np.mean(rows):.2f} %, min {100 * np.min(rows):.2f} % over {len(rows)} fields")
    return 0


if __name__ == "__main__":
    sys.exit(main())
