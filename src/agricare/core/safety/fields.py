"""Speed-dependent protective fields around a robot footprint.

A protective field is the region the robot body may sweep before it can be stopped: the footprint
(inflated by a margin) swept along the commanded arc over the stopping distance

    d_stop = v * t_reaction + v**2 / (2 * a_brake) + extra_m

(the usual reaction-plus-braking-distance sizing of ISO 3691-4 / IEC 62998 personnel detection
fields). The swept region is over-approximated by the convex hull of footprint copies sampled along
the arc, which is conservative and cheap. All coordinates are in ``base_link`` (x forward, y left,
metres) unless a name says otherwise.

Run ``python -m agricare.core.safety.fields`` for a small demo.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import shapely

from agricare.core.geometry import points_in_polygon, se2_transform_points

#: Heading step (rad) between footprint samples along a curved sweep.
_ARC_SAMPLE_STEP_RAD = 0.2
_MAX_ARC_SAMPLES = 24


def stopping_distance_m(speed_mps: float, reaction_time_s: float, decel_mps2: float) -> float:
    """Distance travelled before standstill: ``|v| t_r + v^2 / (2 a)`` (m)."""
    v = abs(float(speed_mps))
    return v * reaction_time_s + v * v / (2.0 * decel_mps2)


def stopping_time_s(speed_mps: float, reaction_time_s: float, decel_mps2: float) -> float:
    """Time until standstill: ``t_r + |v| / a`` (s)."""
    return reaction_time_s + abs(float(speed_mps)) / decel_mps2


def validate_polygon(name: str, xy, min_area_m2: float = 1e-6) -> np.ndarray:
    """Check a polygon ring given as (N, 2) or a flat ``[x0, y0, x1, y1, ...]`` sequence.

    Returns the ring as an (N, 2) float array. Raises ``ValueError`` naming ``name`` when it is
    empty, has an odd number of coordinates, fewer than 3 vertices, non-finite values, (near) zero
    area or crosses itself.
    """
    arr = np.asarray(xy, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name}: empty polygon")
    if arr.size % 2:
        raise ValueError(f"{name}: odd number of coordinates ({arr.size}); expected x,y pairs")
    ring = arr.reshape(-1, 2)
    if len(ring) < 3:
        raise ValueError(f"{name}: polygon needs at least 3 vertices, got {len(ring)}")
    if not np.all(np.isfinite(ring)):
        raise ValueError(f"{name}: non-finite coordinate in {ring.tolist()}")
    poly = shapely.Polygon(ring)
    if not poly.is_valid:
        raise ValueError(f"{name}: polygon is not simple (edges cross or collapse): "
                         f"{shapely.is_valid_reason(poly)}")
    if poly.area < min_area_m2:
        raise ValueError(f"{name}: polygon has (near) zero area {poly.area:.3g} m^2")
    return ring


def scan_to_points_in_base(ranges_m, angle_min_rad: float, angle_increment_rad: float,
                           range_min_m: float, range_max_m: float, T_base_sensor=(0.0, 0.0, 0.0)):
    """Convert LaserScan ranges to points in ``base_link``.

    Non-finite ranges and ranges outside ``[range_min_m, range_max_m]`` are "no return" (REP-117)
    and dropped. Returns ``None`` when the scan *metadata* is non-finite (a corrupt message, which the
    supervisor treats as a fault), else an (N, 2) array.

    Parameters
    ----------
    ranges_m : array_like, shape (R,)
    angle_min_rad, angle_increment_rad : float
    range_min_m, range_max_m : float
    T_base_sensor : array_like, shape (3,)
        Pose ``[x_m, y_m, yaw_rad]`` of the scanner in ``base_link``.
    """
    meta = (angle_min_rad, angle_increment_rad, range_min_m, range_max_m)
    if not all(math.isfinite(float(m)) for m in meta):
        return None
    r = np.asarray(ranges_m, dtype=float).ravel()
    a = angle_min_rad + angle_increment_rad * np.arange(r.size)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & (r >= range_min_m) & (r <= range_max_m)
    r, a = r[ok], a[ok]
    pts = np.column_stack((r * np.cos(a), r * np.sin(a)))
    return se2_transform_points(T_base_sensor, pts)


def scan_to_safety_points(ranges_m, angle_min_rad: float, angle_increment_rad: float, range_min_m: float,
                          range_max_m: float, T_base_sensor=(0.0, 0.0, 0.0), min_valid_fraction: float = 0.5):
    """LaserScan ranges as the safety supervisor must read them: a blinded scanner is never free space.

    REP-117: ``-inf`` (and any reading below ``range_min_m``) means "something closer than the minimum
    range": it becomes an obstacle point at ``range_min_m``. ``+inf`` and readings beyond ``range_max_m``
    are "no return" (free up to the maximum range). ``NaN`` is an erroneous reading. When fewer than
    ``min_valid_fraction`` of the beams measure something (neither NaN nor below ``range_min_m``) the scan is
    *blinded*: no scene puts an object inside the minimum range on most of a scanner's field of view at once,
    a covered or dirty window does (what a safety scanner reports as contamination). Those beams still
    count as obstacles at ``range_min_m``: blinded is a fault on top of the stop, never free space.

    Returns
    -------
    points : ndarray (N, 2) or None
        Points in ``base_link`` (None when the metadata is non-finite: a corrupt message).
    blinded : bool
    """
    meta = (angle_min_rad, angle_increment_rad, range_min_m, range_max_m)
    if not all(math.isfinite(float(m)) for m in meta):
        return None, True
    r = np.asarray(ranges_m, dtype=float).ravel()
    if r.size == 0:
        return np.zeros((0, 2)), True
    a = angle_min_rad + angle_increment_rad * np.arange(r.size)
    valid = ~np.isnan(r)
    with np.errstate(invalid="ignore"):
        close = valid & (r < range_min_m)            # includes -inf
        hit = valid & np.isfinite(r) & (r >= range_min_m) & (r <= range_max_m)
    blinded = bool(np.count_nonzero(valid & ~close) < min_valid_fraction * r.size)
    rr = np.where(close, float(range_min_m), r)
    keep = close | hit
    rr, a = rr[keep], a[keep]
    pts = np.column_stack((rr * np.cos(a), rr * np.sin(a)))
    return se2_transform_points(T_base_sensor, pts), blinded


def arc_pose(distance_m: float, heading_change_rad: float) -> np.ndarray:
    """Pose ``[x, y, yaw]`` reached after driving ``distance_m`` (signed) on a constant-curvature arc
    that turns by ``heading_change_rad``."""
    s, th = float(distance_m), float(heading_change_rad)
    if abs(th) < 1e-6:
        return np.array([s, 0.0, th])
    radius = s / th
    return np.array([radius * math.sin(th), radius * (1.0 - math.cos(th)), th])


class FieldGeometry:
    """Builds swept protective fields around one footprint.

    Parameters
    ----------
    footprint_xy : array_like, shape (M, 2) or flat (2M,)
        Footprint ring in ``base_link`` (m).
    margin_m : float
        Clearance added all around the footprint before sweeping (m).
    """

    def __init__(self, footprint_xy, margin_m: float = 0.0):
        ring = validate_polygon("footprint", footprint_xy)
        if not (math.isfinite(margin_m) and margin_m >= 0.0):
            raise ValueError(f"margin_m: must be finite and >= 0, got {margin_m}")
        self.footprint_xy = ring
        poly = shapely.Polygon(ring)
        if margin_m > 0.0:
            poly = poly.buffer(margin_m, join_style="mitre", mitre_limit=2.0)
        self.inflated_xy = shapely.get_coordinates(poly.exterior)[:-1]
        self.inflated_hull_xy = shapely.get_coordinates(poly.convex_hull.exterior)[:-1]

    def sweep(self, distance_m: float, heading_change_rad: float) -> np.ndarray:
        """Convex hull (P, 2) of the inflated footprint swept along an arc.

        ``distance_m`` is signed (negative = reversing); a pure rotation has distance 0.
        """
        if abs(distance_m) < 1e-9 and abs(heading_change_rad) < 1e-9:
            return self.inflated_hull_xy
        n = 1 + min(_MAX_ARC_SAMPLES, int(math.ceil(abs(heading_change_rad) / _ARC_SAMPLE_STEP_RAD)))
        fr = np.arange(n + 1) / n
        s, th = fr * distance_m, fr * heading_change_rad
        if abs(heading_change_rad) < 1e-6:
            px, py = s, np.zeros_like(s)
        elif abs(distance_m) < 1e-9:
            px = py = np.zeros_like(s)
        else:
            radius = distance_m / heading_change_rad
            px, py = radius * np.sin(th), radius * (1.0 - np.cos(th))
        c, sn = np.cos(th)[:, None], np.sin(th)[:, None]
        bx, by = self.inflated_hull_xy[:, 0][None, :], self.inflated_hull_xy[:, 1][None, :]
        cloud = np.stack((c * bx - sn * by + px[:, None], sn * bx + c * by + py[:, None]), axis=-1)
        return convex_hull(cloud.reshape(-1, 2))

    def field(self, v_mps: float, w_radps: float, reaction_time_s: float, decel_mps2: float,
              angular_decel_radps2: float, extra_m: float = 0.0) -> np.ndarray:
        """Field polygon (P, 2) for a motion ``(v, w)``: sweep over the stopping distance plus ``extra_m``.

        When ``|v|`` is (near) zero the sweep is the rotation angle needed to stop ``w``; otherwise the
        arc follows the curvature ``w / v``.
        """
        v, w = float(v_mps), float(w_radps)
        if abs(v) > 1e-3:
            dist = stopping_distance_m(v, reaction_time_s, decel_mps2) + extra_m
            heading = (w / v) * dist
            return self.sweep(math.copysign(dist, v), heading)
        if abs(w) > 1e-3:
            ang = abs(w) * reaction_time_s + w * w / (2.0 * angular_decel_radps2)
            return self.sweep(0.0, math.copysign(min(ang, math.pi), w))
        return self.inflated_hull_xy


def convex_hull(points) -> np.ndarray:
    """Convex hull ring (P, 2), without the closing vertex, of points (N, 2); exact input vertices."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) < 3:
        return pts
    idx = cv2.convexHull(pts.astype(np.float32), returnPoints=False).ravel()
    return pts[idx]


def points_in_field(points_xy, polygon_xy) -> np.ndarray:
    """Boolean mask (N,) of the points (N, 2) inside the polygon (P, 2), with a bounding-box prefilter."""
    pts = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    poly = np.asarray(polygon_xy, dtype=float).reshape(-1, 2)
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    box = np.all((pts >= lo) & (pts <= hi), axis=1)
    mask = np.zeros(len(pts), dtype=bool)
    if np.any(box):
        idx = np.flatnonzero(box)
        mask[idx] = points_in_polygon(pts[idx], poly)
    return mask


def segments_polygon_distance_m(p0_xy, p1_xy, polygon_xy) -> np.ndarray:
    """Distances (K,) from segments ``p0[k] -> p1[k]`` (K, 2) to one polygon ring (P, 2); 0 when a
    segment touches or enters the polygon. Vectorised over segments and edges."""
    a = np.asarray(p0_xy, dtype=float).reshape(-1, 2)
    b = np.asarray(p1_xy, dtype=float).reshape(-1, 2)
    e0 = np.asarray(polygon_xy, dtype=float).reshape(-1, 2)
    e1 = np.roll(e0, -1, axis=0)
    k = len(a)
    if k == 0:
        return np.zeros(0)
    inside = points_in_polygon(np.vstack((a, b)), e0)
    hit = inside[:k] | inside[k:]

    def cross(ox, oy, px, py, qx, qy):
        return (px - ox) * (qy - oy) - (py - oy) * (qx - ox)

    # proper segment / edge crossings, (K, P)
    A = (a[:, None, 0], a[:, None, 1])
    B = (b[:, None, 0], b[:, None, 1])
    C = (e0[None, :, 0], e0[None, :, 1])
    D = (e1[None, :, 0], e1[None, :, 1])
    d1 = cross(*C, *D, *A)
    d2 = cross(*C, *D, *B)
    d3 = cross(*A, *B, *C)
    d4 = cross(*A, *B, *D)
    hit |= np.any((d1 * d2 < 0) & (d3 * d4 < 0), axis=1)

    def point_seg(px, py, sx0, sy0, sx1, sy1):
        dx, dy = sx1 - sx0, sy1 - sy0
        den = dx * dx + dy * dy
        t = np.where(den > 0, ((px - sx0) * dx + (py - sy0) * dy) / np.where(den > 0, den, 1.0), 0.0)
        t = np.clip(t, 0.0, 1.0)
        return np.hypot(px - (sx0 + t * dx), py - (sy0 + t * dy))

    dist = np.minimum(point_seg(*A, *C, *D), point_seg(*B, *C, *D))  # segment ends to edges
    dist = np.minimum(dist, point_seg(*C, *A, *B))  # polygon vertices to the segment
    out = dist.min(axis=1)
    out[hit] = 0.0
    return out


def segment_polygon_distance_m(p0_xy, p1_xy, polygon) -> float:
    """Distance (m) from the segment ``p0 -> p1`` to a polygon (0 when they touch or overlap).

    ``polygon`` is an (P, 2) ring or a ``shapely.Polygon`` (build it once for many segments).
    """
    poly = polygon if isinstance(polygon, shapely.Polygon) else shapely.Polygon(polygon)
    x0, y0 = float(p0_xy[0]), float(p0_xy[1])
    x1, y1 = float(p1_xy[0]), float(p1_xy[1])
    geom = shapely.Point(x0, y0) if (x0 == x1 and y0 == y1) else shapely.LineString([(x0, y0), (x1, y1)])
    return float(shapely.distance(poly, geom))


if __name__ == "__main__":
    fg = FieldGeometry([1.0, 0.5, -0.3, 0.5, -0.3, -0.5, 1.0, -0.5], margin_m=0.2)
    for v in (0.0, 0.5, 1.0, 2.0):
        f = fg.field(v, 0.2, reaction_time_s=0.2, decel_mps2=2.0, angular_decel_radps2=3.0, extra_m=0.3)
        print(f"v={v:.1f} m/s: d_stop={stopping_distance_m(v, 0.2, 2.0):.2f} m, field x-extent "
              f"{f[:, 0].min():.2f}..{f[:, 0].max():.2f} m, {len(f)} vertices")
