"""Coverage ground truth: a raster over a field counting the passes of active implement sections.

Each step the area swept by every active section (the quadrilateral between its working edge at the
previous and at the current step) is filled into the raster: a cell is swept when its centre lies inside.
A cell counts one more pass when it is swept after not having been swept for ``new_pass_gap_s`` (so one
pass that takes several steps counts once).

Public API
----------
``CoverageRaster(polygon, holes=(), cell_m=0.1, new_pass_gap_s=1.0)``
    ``.sweep(quads, t_s)`` with quads ``(K, 4, 2)`` in map; ``.count`` (H, W) uint16 passes per cell
    (row 0 = south, ``cell_center(i, j)``); ``.field_mask`` cells inside polygon minus holes;
    ``.covered_ratio(polygon=None)``, ``.double_ratio(polygon=None)``: fraction of the cells inside the
    polygon (default the field) swept at least once / at least twice; ``.ratios()`` both for the field.
    ``.sweep(quads, t_s, values)`` with one applied rate per quad also adds that rate to ``.dose`` (H, W) of
    every cell the sweep starts a new pass on (what was truly put on the ground, summed over passes);
    ``.rate_agreement(prescribed, tol)`` compares it with a prescription.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Polygon


class CoverageRaster:
    """Pass counter over the bounding box of a field polygon.

    Parameters
    ----------
    polygon : array_like (N, 2)
        Field outline in map (metres).
    holes : sequence of array_like (M, 2)
        Areas not to be covered (they are excluded from the ratios).
    cell_m : float
        Raster cell size, metres.
    new_pass_gap_s : float
        A cell swept again after at least this long counts as a new pass.
    """

    def __init__(self, polygon, holes=(), cell_m: float = 0.1, new_pass_gap_s: float = 1.0, margin_m: float = 2.0):
        if not (math.isfinite(cell_m) and cell_m > 0):
            raise ValueError(f"cell_m must be > 0, got {cell_m!r}")
        poly = np.asarray(polygon, dtype=float).reshape(-1, 2)
        self.cell_m = float(cell_m)
        self.origin = poly.min(axis=0) - margin_m
        top = poly.max(axis=0) + margin_m
        self.width = int(math.ceil((top[0] - self.origin[0]) / cell_m))
        self.height = int(math.ceil((top[1] - self.origin[1]) / cell_m))
        self.count = np.zeros((self.height, self.width), np.uint16)
        self.last_t = np.full((self.height, self.width), -1e18)
        self.dose = np.zeros((self.height, self.width), np.float32)   # applied rate summed over passes
        self.dosed = False                                              # any sweep carried rates
        self.new_pass_gap_s = float(new_pass_gap_s)
        self.polygon = poly
        self.holes = [np.asarray(h, dtype=float).reshape(-1, 2) for h in holes]
        self.field_mask = self.polygon_mask(poly, self.holes)
        self._field_cells = max(int(self.field_mask.sum()), 1)

    def cell_center(self, row, col):
        """Map coordinates of a cell centre."""
        return (self.origin[0] + (np.asarray(col) + 0.5) * self.cell_m,
                self.origin[1] + (np.asarray(row) + 0.5) * self.cell_m)

    def polygon_mask(self, polygon, holes=()) -> np.ndarray:
        """Boolean mask (H, W) of cells whose centre is inside a polygon minus holes."""
        shape = Polygon(np.asarray(polygon, dtype=float).reshape(-1, 2), [np.asarray(h, float) for h in holes])
        shapely.prepare(shape)
        xs, ys = self.cell_center(np.arange(self.height)[:, None], np.arange(self.width)[None, :])
        xs, ys = np.broadcast_arrays(xs, ys)
        return shapely.contains_xy(shape, xs, ys)

    def sweep(self, quads, t_s: float, values=None) -> None:
        """Count the cells under the swept quadrilaterals ``(K, 4, 2)`` (map) at time ``t_s``; with ``values``
        (K,) (the rate each quad applied) add it to the dose of the cells a new pass starts on."""
        q = np.asarray(quads, dtype=float).reshape(-1, 4, 2)
        if len(q) == 0:
            return
        vals = None if values is None else np.asarray(values, dtype=float).reshape(len(q))
        c = (q - self.origin) / self.cell_m - 0.5  # cell index coordinates (col, row)
        lo = np.floor(c.reshape(-1, 2).min(axis=0)).astype(int)
        hi = np.ceil(c.reshape(-1, 2).max(axis=0)).astype(int) + 1
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, [self.width, self.height])
        if hi[0] <= lo[0] or hi[1] <= lo[1]:
            return
        cols = np.arange(lo[0], hi[0], dtype=float)[None, :]
        rows = np.arange(lo[1], hi[1], dtype=float)[:, None]
        hit = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), bool)
        val = None if vals is None else np.full(hit.shape, np.nan, np.float32)
        for k, quad in enumerate(c):
            # convex quadrilateral: centre inside when on the same side of all four edges
            d1, d2 = quad[2] - quad[0], quad[3] - quad[1]
            if abs(float(d1[0] * d2[1] - d1[1] * d2[0])) <= 1e-12:
                continue  # no area swept
            e = quad[[1, 2, 3, 0]] - quad
            cross = e[:, 0, None, None] * (rows[None] - quad[:, 1, None, None]) \
                - e[:, 1, None, None] * (cols[None] - quad[:, 0, None, None])
            hk = (cross >= 0).all(axis=0) | (cross <= 0).all(axis=0)
            hit |= hk
            if val is not None:
                val[hk & np.isnan(val)] = vals[k]
        sl = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        last = self.last_t[sl]
        new = hit & ((t_s - last) > self.new_pass_gap_s)
        self.count[sl][new] += 1
        if val is not None:
            self.dose[sl][new] += val[new]
            self.dosed = True
        last[hit] = t_s

    def covered_ratio(self, polygon=None) -> float:
        """Fraction of the cells inside ``polygon`` (default: the field minus holes) swept at least once."""
        mask = self.field_mask if polygon is None else self.polygon_mask(polygon)
        n = max(int(mask.sum()), 1)
        return float(np.count_nonzero(self.count[mask] >= 1)) / n

    def double_ratio(self, polygon=None) -> float:
        """Fraction of the cells inside ``polygon`` (default: the field minus holes) swept twice or more."""
        mask = self.field_mask if polygon is None else self.polygon_mask(polygon)
        n = max(int(mask.sum()), 1)
        return float(np.count_nonzero(self.count[mask] >= 2)) / n

    def ratios(self) -> tuple[float, float]:
        """``(covered_ratio, double_ratio)`` of the field."""
        c = self.count[self.field_mask]
        return (float(np.count_nonzero(c >= 1)) / self._field_cells,
                float(np.count_nonzero(c >= 2)) / self._field_cells)

    def rate_agreement(self, prescribed: np.ndarray, tol: float = 0.05) -> dict:
        """Truly applied dose against a prescription ``(H, W)`` (rate per cell, this raster's cells) over the
        worked cells of the field: ``within_ratio`` the fraction of worked cells whose dose is within ``tol``
        (relative) of the prescription; also over the cells worked once, the mean absolute relative error and
        the worked area (m^2)."""
        pr = np.asarray(prescribed, dtype=float)
        worked = self.field_mask & (self.count >= 1)
        once = self.field_mask & (self.count == 1)
        err = np.abs(self.dose.astype(float) - pr)
        ok = err <= tol * np.maximum(np.abs(pr), 1e-9)
        n, n1 = int(worked.sum()), int(once.sum())
        rel = err / np.maximum(np.abs(pr), 1e-9)
        return {"within_ratio": float(np.count_nonzero(ok & worked)) / max(n, 1),
                "within_ratio_worked_once": float(np.count_nonzero(ok & once)) / max(n1, 1),
                "mean_abs_rel_error_worked_once": float(np.mean(rel[once])) if n1 else float("nan"),
                "worked_area_m2": n * self.cell_m ** 2, "tolerance": tol}
