"""Section control: switch implement sections off over covered ground or outside the field.

The implement bar is perpendicular to the vehicle heading, ``implement_offset_m`` along the vehicle x axis
from the pose (negative = behind); sections are listed from the left end (+y) to the right.
Each section looks at the strip it will sweep in the next ``look_ahead_m``; it is on when at most
``overlap_threshold`` of that strip is already covered (or, with ``keep_open_m``, while a band at least that wide
across it is not) and at least ``min_inside_fraction`` lies in the work area. The coverage record is a boolean
raster (:class:`CoverageRaster`) or any shapely geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely


@dataclass(frozen=True)
class SectionParams:
    """Section control parameters (metres, fractions in [0, 1])."""

    section_widths_m: tuple = (1.0, 1.0, 1.0)
    implement_offset_m: float = -1.5
    look_ahead_m: float = 1.0         # the strip ahead that decides: a section goes off (on) when the edge of worked
                                      # (unworked) ground is about look_ahead_m / 2 ahead of the bar, the lead that
                                      # covers the delay from the pose to the sections. Where there is none (the
                                      # tracked seeded fields, bench/farm_missions.py) 1 m left a 0.25-0.5 m sliver
                                      # wherever a pass entered worked ground and worked as much twice where it left
                                      # it; 0.25 m on tuning seeds 0-19: 96.75 -> 97.04 % of the field, double 2.07 ->
                                      # 1.67 %, every field better in both (0.5 m: 96.97 %, 1.80 %)
    overlap_threshold: float = 0.3
    min_inside_fraction: float = 0.5
    raster_resolution_m: float = 0.2
    keep_open_m: float = 0.0          # a section stays on while a band at least this wide across it (its look-ahead
                                      # strip in fifths, a fifth open when most of it is uncovered) is not yet
                                      # covered, whatever the covered fraction: 0 = the fraction alone. Off at 60 %
                                      # covered a 1 m section leaves the other 0.4 m for good (the seams of the
                                      # tracked seeded fields, bench/farm_missions.py: a ring crossing the oblique
                                      # ends of the swaths); on, it works the 0.6 m twice

    def __post_init__(self):
        w = tuple(self.section_widths_m)
        if not w or not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in w):
            raise ValueError(f"section_widths_m must be a non-empty list of widths > 0, got {self.section_widths_m!r}")
        if not math.isfinite(self.implement_offset_m):
            raise ValueError("implement_offset_m must be finite")
        if not (math.isfinite(self.keep_open_m) and self.keep_open_m >= 0):
            raise ValueError(f"keep_open_m must be >= 0, got {self.keep_open_m!r}")
        for name in ("look_ahead_m", "raster_resolution_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        for name in ("overlap_threshold", "min_inside_fraction"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")


def section_bar(pose_xyyaw, params: SectionParams) -> np.ndarray:
    """Left and right ends of every section, shape (n, 2, 2) ``[[left_xy], [right_xy]]`` in the map frame."""
    x, y, yaw = (float(v) for v in pose_xyyaw)
    w = np.asarray(params.section_widths_m, dtype=float)
    edges = 0.5 * w.sum() - np.concatenate([[0.0], np.cumsum(w)])      # lateral offsets, left (+) to right
    c, s = math.cos(yaw), math.sin(yaw)
    bx, by = x + params.implement_offset_m * c, y + params.implement_offset_m * s
    pts = np.column_stack([bx - s * edges, by + c * edges])
    return np.stack([pts[:-1], pts[1:]], axis=1)


class CoverageRaster:
    """Boolean raster of covered ground over a bounding box (metres)."""

    def __init__(self, bounds, resolution_m: float):
        x0, y0, x1, y1 = bounds
        self.x0, self.y0, self.res = float(x0), float(y0), float(resolution_m)
        self.nx = max(1, int(math.ceil((x1 - x0) / resolution_m)))
        self.ny = max(1, int(math.ceil((y1 - y0) / resolution_m)))
        self.grid = np.zeros((self.ny, self.nx), dtype=bool)
        self._n_covered = 0   # cells set by mark_quad(s), counted as they are set (covered_area_m2 on every pose)

    def _idx(self, pts):
        ix = np.floor((pts[:, 0] - self.x0) / self.res).astype(int)
        iy = np.floor((pts[:, 1] - self.y0) / self.res).astype(int)
        ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return ix, iy, ok

    def covered(self, pts: np.ndarray) -> np.ndarray:
        """Covered flag per point (points outside the raster are not covered)."""
        ix, iy, ok = self._idx(pts)
        out = np.zeros(len(pts), dtype=bool)
        out[ok] = self.grid[iy[ok], ix[ok]]
        return out

    def mark_quad(self, quad: np.ndarray) -> None:
        """Mark the cells whose centres lie in a convex quadrilateral (4, 2)."""
        lo = np.floor((quad.min(axis=0) - [self.x0, self.y0]) / self.res).astype(int)
        hi = np.ceil((quad.max(axis=0) - [self.x0, self.y0]) / self.res).astype(int)
        lo = np.clip(lo, 0, [self.nx, self.ny])
        hi = np.clip(hi, 0, [self.nx, self.ny])
        if np.any(hi <= lo):
            return
        xs = self.x0 + (np.arange(lo[0], hi[0]) + 0.5) * self.res
        ys = self.y0 + (np.arange(lo[1], hi[1]) + 0.5) * self.res
        X, Y = np.meshgrid(xs, ys)
        inside = np.ones(X.shape, dtype=bool)
        area2 = 0.0
        for i in range(4):
            a, b = quad[i], quad[(i + 1) % 4]
            area2 += a[0] * b[1] - b[0] * a[1]
        sign = 1.0 if area2 >= 0 else -1.0
        for i in range(4):
            a, b = quad[i], quad[(i + 1) % 4]
            inside &= sign * ((b[0] - a[0]) * (Y - a[1]) - (b[1] - a[1]) * (X - a[0])) >= -1e-9
        self._set(slice(lo[1], hi[1]), slice(lo[0], hi[0]), inside)

    def _set(self, rows, cols, inside) -> None:
        sub = self.grid[rows, cols]
        self._n_covered += int(np.count_nonzero(inside & ~sub))
        sub |= inside

    def mark_quads(self, quads: np.ndarray) -> None:
        """:meth:`mark_quad` of each convex quadrilateral of ``quads`` (k, 4, 2), in one pass over their joint
        bounding box: each quad still marks only cells of its own box, with the same tests on the same cell
        centres, so the raster ends the same as with one :meth:`mark_quad` per quad."""
        quads = np.asarray(quads, dtype=float)
        if len(quads) == 0:
            return
        org = np.array([self.x0, self.y0])
        lo = np.floor((quads.min(axis=1) - org) / self.res).astype(int)
        hi = np.ceil((quads.max(axis=1) - org) / self.res).astype(int)
        lo = np.clip(lo, 0, [self.nx, self.ny])
        hi = np.clip(hi, 0, [self.nx, self.ny])
        keep = np.all(hi > lo, axis=1)
        if not keep.any():
            return
        quads, lo, hi = quads[keep], lo[keep], hi[keep]
        L, H = lo.min(axis=0), hi.max(axis=0)
        ix = np.arange(L[0], H[0])
        iy = np.arange(L[1], H[1])
        xs = self.x0 + (ix + 0.5) * self.res
        ys = self.y0 + (iy + 0.5) * self.res
        X, Y = np.meshgrid(xs, ys)
        # each quad's own box (a degenerate quad, a bar that did not move, passes the tests along its whole line)
        inside = ((ix[None, None, :] >= lo[:, 0, None, None]) & (ix[None, None, :] < hi[:, 0, None, None])
                  & (iy[None, :, None] >= lo[:, 1, None, None]) & (iy[None, :, None] < hi[:, 1, None, None]))
        a_all, b_all = quads, np.roll(quads, -1, axis=1)
        area2 = np.zeros(len(quads))
        for i in range(4):   # summed in the same order as mark_quad
            a, b = a_all[:, i], b_all[:, i]
            area2 = area2 + (a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])
        sign = np.where(area2 >= 0, 1.0, -1.0)[:, None, None]
        for i in range(4):
            a, b = a_all[:, i, :, None, None], b_all[:, i, :, None, None]
            inside &= sign * ((b[:, 0] - a[:, 0]) * (Y - a[:, 1]) - (b[:, 1] - a[:, 1]) * (X - a[:, 0])) >= -1e-9
        self._set(slice(L[1], H[1]), slice(L[0], H[0]), inside.any(axis=0))

    @property
    def covered_area_m2(self) -> float:
        # the running count of mark_quad(s); a grid written directly (a restored record) is counted afresh
        n = self._n_covered
        if getattr(self, "_counted_id", None) != id(self.grid):
            n = self._n_covered = int(np.count_nonzero(self.grid))
            self._counted_id = id(self.grid)
        return float(n) * self.res * self.res


#: samples across and along each section's look-ahead strip
N_ACROSS, N_ALONG = 5, 4


def _strip_samples(left, right, heading, look_ahead_m, n_across=N_ACROSS, n_along=N_ALONG):
    u = (np.arange(n_across) + 0.5) / n_across
    v = (np.arange(n_along) + 0.5) / n_along * look_ahead_m
    base = left[None, :] + u[:, None] * (right - left)[None, :]
    d = np.array([math.cos(heading), math.sin(heading)])
    return (base[:, None, :] + v[None, :, None] * d[None, None, :]).reshape(-1, 2)


def _strip_samples_all(bars, heading, look_ahead_m, n_across=N_ACROSS, n_along=N_ALONG):
    """:func:`_strip_samples` of every section of ``bars`` (n, 2, 2) at once: (n, n_across * n_along, 2), the same
    numbers (the same operations, broadcast over the sections)."""
    u = (np.arange(n_across) + 0.5) / n_across
    v = (np.arange(n_along) + 0.5) / n_along * look_ahead_m
    left, right = bars[:, 0, :], bars[:, 1, :]
    base = left[:, None, :] + u[None, :, None] * (right - left)[:, None, :]
    d = np.array([math.cos(heading), math.sin(heading)])
    return (base[:, :, None, :] + v[None, None, :, None] * d[None, None, None, :]).reshape(len(bars), -1, 2)


def section_states(pose_xyyaw, params: SectionParams, work_area, covered, bars=None) -> np.ndarray:
    """On/off (uint8 1/0) per section for a vehicle pose.

    Parameters
    ----------
    pose_xyyaw : array_like (3,)
        Vehicle pose in the map frame.
    params : SectionParams
    work_area : shapely Polygon
        Area to treat (usually the field; the inner field when the headland is worked separately).
    covered : CoverageRaster or shapely geometry or None
        Ground already treated.
    bars : (n, 2, 2) array or None
        ``section_bar(pose_xyyaw, params)`` when the caller has it already.
    """
    if bars is None:
        bars = section_bar(pose_xyyaw, params)
    yaw = float(pose_xyyaw[2])
    n = len(bars)
    # every section's strip samples in one array (n, m, 2): one point-in-polygon and one raster look-up for all
    # (the per-section loop cost ~1 ms per odometry message); the counts are integers, so the fractions are the
    # same floats as the per-section means
    pts = _strip_samples_all(bars, yaw, params.look_ahead_m)
    m = pts.shape[1]
    flat = pts.reshape(-1, 2)
    inside = shapely.contains_xy(work_area, flat[:, 0], flat[:, 1]).reshape(n, m)
    if covered is None:
        cov = np.zeros((n, m), dtype=bool)
    elif isinstance(covered, CoverageRaster):
        cov = covered.covered(flat).reshape(n, m)
    elif covered.is_empty:
        cov = np.zeros((n, m), dtype=bool)
    else:
        cov = shapely.contains_xy(covered, flat[:, 0], flat[:, 1]).reshape(n, m)
    n_in = inside.sum(axis=1)
    n_cov = (cov & inside).sum(axis=1)
    out = np.zeros(n, dtype=np.uint8)
    open_m = np.zeros(n)
    if params.keep_open_m > 0:
        # the fifths across each section (the samples are laid out across-major, N_ACROSS x N_ALONG): a fifth is
        # open when most of its inside samples are not covered; the width of the open fifths per section
        ins = inside.reshape(n, N_ACROSS, -1)
        unc = (~cov & inside).reshape(n, N_ACROSS, -1)
        n_ins = ins.sum(axis=2)
        fifth_open = (n_ins > 0) & (2 * unc.sum(axis=2) > n_ins)
        widths = np.hypot(*(bars[:, 1] - bars[:, 0]).T)
        open_m = fifth_open.sum(axis=1) * widths / N_ACROSS
    for i in range(n):
        if int(n_in[i]) / m < params.min_inside_fraction:
            continue
        frac = int(n_cov[i]) / int(n_in[i]) if n_in[i] else 1.0
        # open_m is a count of fifths times the section's width as the bar's ends give it, a hair under or over the
        # nominal width by the pose's sine and cosine: 2 fifths of a 1 m section came out under 0.4 m for 2964 of
        # 6000 sections at random headings, so keep_open_m 0.4 asked 3 fifths there and 2 elsewhere
        keep = params.keep_open_m > 0 and open_m[i] >= params.keep_open_m - 1e-9
        out[i] = 1 if frac <= params.overlap_threshold or keep else 0
    return out


class SectionController:
    """Stateful section control: decides the sections and records what the active sections treat.

    Call :meth:`update` with each new pose (no clock: the caller owns time).
    """

    def __init__(self, params: SectionParams, work_area):
        self.params = params
        self.work_area = work_area
        shapely.prepare(work_area)
        minx, miny, maxx, maxy = work_area.bounds
        pad = sum(params.section_widths_m) + abs(params.implement_offset_m) + 1.0
        self.raster = CoverageRaster((minx - pad, miny - pad, maxx + pad, maxy + pad), params.raster_resolution_m)
        self._last_bars = None
        self._last_states = None
        self.last_bars = None   # the section bars (n, 2, 2) at the pose of the last update (read-only)

    def update(self, pose_xyyaw, enable: bool = True) -> np.ndarray:
        """Record the ground swept since the previous pose by the sections that were on, then decide.

        ``enable`` False (implement raised: turn, transit, hold) switches every section off; only what the
        sections really treat is recorded as covered.
        """
        pose = np.asarray(pose_xyyaw, dtype=float)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)):
            raise ValueError("pose_xyyaw must be 3 finite numbers")
        bars = section_bar(pose, self.params)
        if self._last_bars is not None:
            moved = float(np.max(np.hypot(*(bars[:, 0] - self._last_bars[:, 0]).T)))
            if moved < 5.0:                 # a jump (relocalisation) is not a sweep
                on = np.asarray(self._last_states) > 0
                if on.any():   # quads [l0, r0, r1, l1] of the sections that were on, marked in one pass
                    prev, cur = self._last_bars[on], bars[on]
                    self.raster.mark_quads(np.stack([prev[:, 0], prev[:, 1], cur[:, 1], cur[:, 0]], axis=1))
        # decide against what was covered before this instant (the current bar is not yet "covered")
        states = section_states(pose, self.params, self.work_area, self.raster, bars=bars)
        if not enable:
            states = np.zeros_like(states)
        self._last_bars, self._last_states = bars, states
        self.last_bars = bars
        return states
