"""Occupancy map of a scenario world: the static geometry the simulator's laser sees, on a map_server grid.

Buildings (place footprints), walls, kerbs and fixed obstacles (polygons and circles) of ``world`` are
rasterised: a cell is occupied when its centre lies inside a shape (a circle thinner than a cell still
marks the cell it stands in). People and vehicles move and are not mapped. The result is what the
map localiser matches its scans against, so a map made here and the simulated world agree by
construction; ``agricare make-map`` writes it as PGM + YAML.

Public API
----------
``scenario_occupancy(spec, resolution_m=0.2, margin_m=10.0) -> OccupancyMap``
    ``spec``: a ``ScenarioSpec`` or a scenario dict.
``world_bounds(spec, margin_m) -> (x0, y0, x1, y1)``: extent of roads, fields, places and obstacles.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from agricare.core.planning.grid import OccupancyMap
from agricare.core.sim.scenarios import ScenarioSpec, parse_scenario


def _spec(spec) -> ScenarioSpec:
    return spec if isinstance(spec, ScenarioSpec) else parse_scenario(spec)


def world_bounds(spec, margin_m: float = 10.0) -> tuple[float, float, float, float]:
    """Axis-aligned extent ``(x0, y0, x1, y1)`` of everything static in the world, plus ``margin_m``."""
    s = _spec(spec)
    pts = [np.zeros((0, 2))]
    pts += [np.asarray(r.polyline, dtype=float) for r in s.roads]
    pts += [np.asarray(f.polygon, dtype=float) for f in s.fields]
    for p in s.places:
        pts.append(np.asarray([p.xy, p.boarding[:2]], dtype=float))
        if p.footprint is not None:
            pts.append(np.asarray(p.footprint, dtype=float))
    for o in s.obstacles:
        pts.append(np.asarray(o.polygon, dtype=float) if o.polygon is not None
                   else np.asarray(o.center, dtype=float)[None, :] + np.array([[-o.radius_m], [o.radius_m]]))
    pts += [np.asarray(r.start[:2], dtype=float)[None, :] for r in s.robots]
    allp = np.vstack(pts)
    if not len(allp):
        raise ValueError("the world has no static geometry to map")
    lo, hi = allp.min(axis=0) - margin_m, allp.max(axis=0) + margin_m
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def scenario_occupancy(spec, resolution_m: float = 0.2, margin_m: float = 10.0) -> OccupancyMap:
    """Rasterise the world's static geometry.

    Parameters
    ----------
    spec : ScenarioSpec or dict
    resolution_m : float
        Cell edge length, (0, 5].
    margin_m : float
        Free space added around the world's extent.

    Returns
    -------
    OccupancyMap
        Origin on a multiple of ``resolution_m`` (so maps of one world at one resolution align).
    """
    if not (isinstance(resolution_m, (int, float)) and 0.0 < resolution_m <= 5.0):
        raise ValueError(f"resolution_m must be in (0, 5] m, got {resolution_m!r}")
    if not (math.isfinite(margin_m) and margin_m >= 0.0):
        raise ValueError(f"margin_m must be >= 0, got {margin_m!r}")
    s = _spec(spec)
    x0, y0, x1, y1 = world_bounds(s, margin_m)
    res = float(resolution_m)
    ox, oy = math.floor(x0 / res) * res, math.floor(y0 / res) * res
    w, h = int(math.ceil((x1 - ox) / res)), int(math.ceil((y1 - oy) / res))
    xs, ys = ox + (np.arange(w) + 0.5) * res, oy + (np.arange(h) + 0.5) * res
    occ = np.zeros((h, w), dtype=bool)
    polys = [p.footprint for p in s.places if p.footprint is not None]
    polys += [o.polygon for o in s.obstacles if o.polygon is not None]
    for poly in polys:
        poly = np.asarray(poly, dtype=float)
        (c0, r0), (c1, r1) = _cells(poly.min(axis=0), ox, oy, res, w, h), _cells(poly.max(axis=0), ox, oy, res, w, h)
        X, Y = np.meshgrid(xs[c0:c1 + 1], ys[r0:r1 + 1])
        occ[r0:r1 + 1, c0:c1 + 1] |= shapely.contains_xy(shapely.Polygon(poly), X, Y)
    for o in s.obstacles:
        if o.polygon is not None:
            continue
        c = np.asarray(o.center, dtype=float)
        r = max(float(o.radius_m), 0.5 * res)
        (c0, r0), (c1, r1) = _cells(c - r - res, ox, oy, res, w, h), _cells(c + r + res, ox, oy, res, w, h)
        X, Y = np.meshgrid(xs[c0:c1 + 1], ys[r0:r1 + 1])
        occ[r0:r1 + 1, c0:c1 + 1] |= np.hypot(X - c[0], Y - c[1]) <= r
    return OccupancyMap(occ, res, (round(ox, 6), round(oy, 6)))


def _cells(xy, ox, oy, res, w, h):
    col = int(np.clip(math.floor((xy[0] - ox) / res), 0, w - 1))
    row = int(np.clip(math.floor((xy[1] - oy) / res), 0, h - 1))
    return col, row
