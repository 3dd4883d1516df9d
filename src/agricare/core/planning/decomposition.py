"""Swath angle search, swath generation and boustrophedon cell decomposition of the inner field.

Swaths are generated in a frame rotated so the driving direction is +x. Lines are spaced at the implement
width from the lowest point of the inner field; the last line is pulled back to the top edge so no strip
is left uncovered (the "missing last swath"). Every swath spans the whole extent of its implement strip
inside the inner field, so slanted field edges are covered to the corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, box

from agricare.core.planning.headland import polygons_of

OBJECTIVES = ("swaths", "length", "overlap")


@dataclass
class Swath:
    """One straight working pass.

    Attributes
    ----------
    p0, p1 : ndarray (2,)
        Ends in the field frame, metres (driving direction p0 -> p1 unless reversed by the route).
    line : int
        Index of the parallel line (0 = lowest in the swath frame).
    cell : int
        Boustrophedon cell the swath belongs to.
    """

    p0: np.ndarray
    p1: np.ndarray
    line: int
    cell: int = -1

    @property
    def length_m(self) -> float:
        return float(np.hypot(*(self.p1 - self.p0)))


def _rings(geom) -> list[np.ndarray]:
    out = []
    for poly in polygons_of(geom):
        out.append(np.asarray(poly.exterior.coords))
        out.extend(np.asarray(r.coords) for r in poly.interiors)
    return out


def line_offsets(ymin: float, ymax: float, width_m: float) -> np.ndarray:
    """Centre lines covering [ymin, ymax] with strips of ``width_m``; the last one is pulled back."""
    extent = ymax - ymin
    n = max(1, math.ceil(extent / width_m - 1e-9))
    ys = ymin + 0.5 * width_m + width_m * np.arange(n)
    if n == 1:
        ys[0] = 0.5 * (ymin + ymax)
    else:
        ys[-1] = ymax - 0.5 * width_m
    return ys


def angle_scores(inner, width_m: float, angles_rad: np.ndarray, turn_cost_m: float):
    """Fast per-angle estimate: (number of swath segments, total swath length m, overlap area m^2).

    Lines are intersected with the polygon edges analytically (no shapely), all angles of a chunk at once
    (arrays angles x lines x edges), so hundreds of angles cost a few milliseconds.

    Returns
    -------
    ndarray, shape (len(angles_rad), 3)
    """
    rings = _rings(inner)
    a = np.concatenate([r[:-1] for r in rings])
    b = np.concatenate([r[1:] for r in rings])
    area = inner.area
    angles = np.atleast_1d(np.asarray(angles_rad, dtype=float))
    out = np.zeros((len(angles), 3))
    n_edges = len(a)
    m = n_edges - n_edges % 2
    # chunk the angles so one chunk's (angles, lines, edges) arrays stay around a million entries
    diag = float(np.hypot(*(a.max(axis=0) - a.min(axis=0)))) if n_edges else 0.0
    max_lines = diag / width_m + 2
    chunk = max(1, int(1e6 // max(1.0, max_lines * n_edges)))
    for k0 in range(0, len(angles), chunk):
        th = angles[k0:k0 + chunk, None]
        c, s = np.cos(th), np.sin(th)
        ay = -s * a[:, 0] + c * a[:, 1]                       # (K, E)
        by = -s * b[:, 0] + c * b[:, 1]
        ax = c * a[:, 0] + s * a[:, 1]
        bx = c * b[:, 0] + s * b[:, 1]
        ymin = np.minimum(ay.min(axis=1), by.min(axis=1))
        ymax = np.maximum(ay.max(axis=1), by.max(axis=1))
        n = np.maximum(1, np.ceil((ymax - ymin) / width_m - 1e-9).astype(int))
        j = np.arange(int(n.max()))
        # same lines as line_offsets: strips from the lowest point, the last pulled back to the top
        ys = ymin[:, None] + 0.5 * width_m + width_m * j[None, :]
        last = n - 1
        rows = np.arange(len(n))
        ys[rows, last] = np.where(n == 1, 0.5 * (ymin + ymax), ymax - 0.5 * width_m)
        valid = j[None, :] < n[:, None]
        y = ys[:, :, None]
        lo = np.minimum(ay, by)[:, None, :]
        hi = np.maximum(ay, by)[:, None, :]
        hit = (y >= lo) & (y < hi) & valid[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            xs = np.where(hit, ax[:, None, :] + (y - ay[:, None, :]) * (bx - ax)[:, None, :] / (by - ay)[:, None, :],
                          np.nan)
        xs = np.sort(xs, axis=2)                   # NaN last; crossings per line are even
        n_seg = np.sum(np.sum(hit, axis=2) // 2, axis=1)
        total = np.nansum(xs[:, :, 1:m:2] - xs[:, :, 0:m:2], axis=(1, 2))
        out[k0:k0 + chunk, 0] = n_seg
        out[k0:k0 + chunk, 1] = total
        out[k0:k0 + chunk, 2] = np.maximum(0.0, total * width_m - area)
    return out


def choose_angle(inner, width_m: float, objective: str, turn_cost_m: float) -> float:
    """Swath direction (rad, in [0, pi)) minimising the objective; 1 degree search, 0.05 degree refinement."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} ({', '.join(OBJECTIVES)})")

    def key(sc):
        n, length, overlap = sc[:, 0], sc[:, 1], sc[:, 2]
        path = length + n * turn_cost_m
        if objective == "swaths":
            return n * 1e6 + path
        if objective == "length":
            return path
        return overlap * 1e3 + path

    coarse = np.radians(np.arange(0.0, 180.0, 1.0))
    sc = key(angle_scores(inner, width_m, coarse, turn_cost_m))
    best = float(coarse[int(np.argmin(sc))])
    fine = best + np.radians(np.arange(-1.0, 1.0001, 0.05))
    sf = key(angle_scores(inner, width_m, fine, turn_cost_m))
    i = int(np.argmin(sf))
    # prefer the coarse angle on ties (round angles align with straight field edges)
    if sf[i] >= key(angle_scores(inner, width_m, np.array([best]), turn_cost_m))[0] - 1e-9:
        return best % math.pi
    return float(fine[i]) % math.pi


def generate_swaths(inner, angle_rad: float, width_m: float, allowed=None) -> list[Swath]:
    """Swaths at ``angle_rad`` (driving direction) covering the inner field, lowest line first.

    Parameters
    ----------
    inner : Polygon or MultiPolygon
        Area to cover (metres).
    angle_rad : float
        Swath direction in the field frame.
    width_m : float
        Implement working width.
    allowed : Polygon, optional
        Area the swath centre line must stay in (the field minus holes); lines leaving it are split.
    """
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    rot = shapely.affinity.rotate(inner, -angle_rad, origin=(0.0, 0.0), use_radians=True)
    allowed_rot = None
    if allowed is not None:
        allowed_rot = shapely.affinity.rotate(allowed, -angle_rad, origin=(0.0, 0.0), use_radians=True)
        shapely.prepare(allowed_rot)
    xmin, ymin, xmax, ymax = rot.bounds
    swaths = []
    for i, y in enumerate(line_offsets(ymin, ymax, width_m)):
        strip = box(xmin - 1.0, y - 0.5 * width_m, xmax + 1.0, y + 0.5 * width_m).intersection(rot)
        segs = []
        for comp in polygons_of(strip):
            if comp.area < 1e-6:
                continue
            x0, _, x1, _ = comp.bounds
            if x1 - x0 < 1e-3:
                continue
            segs.append((x0, x1))
        segs.sort()
        merged = []
        for x0, x1 in segs:
            if merged and x0 <= merged[-1][1] + 1e-6:
                merged[-1] = (merged[-1][0], max(merged[-1][1], x1))
            else:
                merged.append((x0, x1))
        for x0, x1 in merged:
            pieces = [(x0, x1)]
            if allowed_rot is not None:
                line = LineString([(x0, y), (x1, y)])
                if not allowed_rot.covers(line):
                    pieces = []
                    for g in getattr(line.intersection(allowed_rot), "geoms", [line.intersection(allowed_rot)]):
                        if g.geom_type == "LineString" and g.length > 1e-3:
                            xs = np.asarray(g.coords)[:, 0]
                            pieces.append((float(xs.min()), float(xs.max())))
            for a, b in pieces:
                p0 = np.array([c * a - s * y, s * a + c * y])
                p1 = np.array([c * b - s * y, s * b + c * y])
                swaths.append(Swath(p0, p1, i))
    return swaths


def boustrophedon_cells(swaths: list[Swath], angle_rad: float) -> list[list[Swath]]:
    """Group swaths into boustrophedon cells: runs of lines where each segment overlaps exactly one
    segment on the next line and vice versa. Sets ``Swath.cell``; cells list swaths lowest line first."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)

    def xr(sw):
        a = c * sw.p0[0] + s * sw.p0[1]
        b = c * sw.p1[0] + s * sw.p1[1]
        return min(a, b), max(a, b)

    by_line: dict[int, list[Swath]] = {}
    for sw in swaths:
        by_line.setdefault(sw.line, []).append(sw)
    cells: list[list[Swath]] = []
    prev: list[Swath] = []
    prev_line = None
    for line in sorted(by_line):
        cur = by_line[line]
        for sw in cur:
            a0, a1 = xr(sw)
            over = [p for p in prev if prev_line == line - 1 and min(a1, xr(p)[1]) - max(a0, xr(p)[0]) > 1e-6]
            if len(over) == 1:
                p = over[0]
                b0, b1 = xr(p)
                back = [q for q in cur if min(b1, xr(q)[1]) - max(b0, xr(q)[0]) > 1e-6]
                if len(back) == 1:
                    sw.cell = p.cell
                    cells[p.cell].append(sw)
                    continue
            sw.cell = len(cells)
            cells.append([sw])
        prev, prev_line = cur, line
    return cells
