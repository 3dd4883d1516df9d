"""Headland passes as drivable rings around the field and its holes, and the inner field.

A headland pass ``k`` follows the field boundary (and every hole) at offset ``d_k`` from it; the ring is
the boundary of the field eroded by ``d_k`` and then opened with a disc of the turning radius, so every
convex corner is an arc of radius >= the turning radius (a tractor can drive it without stopping).
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon


def polygons_of(geom) -> list[Polygon]:
    """The non-empty polygons of a Polygon / MultiPolygon / GeometryCollection."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return [g for g in geom.geoms if not g.is_empty]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]


def headland_offsets(headland_width_m: float, width_m: float, robot_width_m: float = 0.0) -> list[float]:
    """Centre-line offsets (m) of the headland passes filling ``headland_width_m`` with the implement.

    The last pass is pulled in so that the passes end exactly at the headland width (overlap rather than
    a missed strip). An empty list when the headland is 0.
    """
    if headland_width_m <= 1e-9:
        return []
    n = max(1, math.ceil(headland_width_m / width_m - 1e-9))
    first = max(0.5 * width_m, 0.5 * robot_width_m)
    offs = [min(first + k * width_m, headland_width_m - 0.5 * width_m) for k in range(n)]
    offs = [max(o, first) for o in offs]
    out = []
    for o in offs:
        if not out or o > out[-1] + 1e-6:
            out.append(o)
    return out


def inner_field(field: Polygon, headland_width_m: float):
    """Field eroded by the headland width (mitred corners keep the full cultivated area)."""
    if headland_width_m <= 0:
        return field
    return field.buffer(-headland_width_m, join_style="mitre")


def _resample_ring(coords: np.ndarray, step_m: float) -> np.ndarray:
    line = LineString(coords)
    n = max(4, int(math.ceil(line.length / step_m)))
    d = np.linspace(0.0, line.length, n + 1)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    return pts


def headland_rings(field: Polygon, offsets_m, turn_radius_m: float, step_m: float = 0.5) -> list[list[np.ndarray]]:
    """Closed rings, one list per pass (outermost first), each ring an ``(N, 2)`` array (first == last).

    Rings around the outer boundary run counter-clockwise, rings around holes clockwise, so driving
    them keeps the field interior on the left of the outer ring.
    """
    passes = []
    for d in offsets_m:
        g = field.buffer(-d, join_style="mitre")
        if turn_radius_m > 0:
            g = g.buffer(-turn_radius_m).buffer(turn_radius_m, quad_segs=32)
        rings = []
        for poly in polygons_of(g):
            poly = shapely.geometry.polygon.orient(poly, 1.0)
            for ring in [poly.exterior, *poly.interiors]:
                if ring.length < 1e-6:
                    continue
                rings.append(_resample_ring(np.asarray(ring.coords), step_m))
        passes.append(rings)
    return passes
