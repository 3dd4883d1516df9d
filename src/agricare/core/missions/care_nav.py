"""Lane-keeping routes for the care shuttle on a town's road network (pure core, no ROS).

The town is a set of roads (centre-line polylines with a width, the scenario's ``world.roads``). A route
from the shuttle's pose to a boarding point is the shortest centre-line path over the noded road graph,
shifted onto the traffic lane (``keep_left``: Japan; lane centre at ``width / 4`` from the centre line) and
cut into *legs*. A new leg starts where the shuttle must turn round: the differential-drive shuttle turns
on the spot on the centre line (its body sweeps a circle of radius ~2.3 m, inside a 5 m road), so

- if the shuttle faces away from the way it must go, leg 1 moves it ``uturn_ahead_m`` ahead onto the
  centre line and leg 2 starts there in the other direction;
- if the route reaches the boarding point's road against the boarding direction (a boarding point is on
  the lane of its ``yaw``), the shuttle passes the point by ``uturn_ahead_m`` on the centre line, turns,
  and comes back on the correct lane.

The controller rotates to the heading of a new plan before driving, so each leg is one plain path.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point

from agricare.core.geometry import angle_diff


@dataclass(frozen=True)
class RoadNetworkParams:
    """Routing parameters (m, rad).

    Attributes
    ----------
    keep_left : bool
        Traffic keeps left (lane on the left of the travel direction).
    lane_offset_ratio : float
        Lane centre distance from the road centre line as a fraction of the road width (0..0.5).
    uturn_ahead_m : float
        Distance driven past a point before turning round on the centre line, m.
    merge_m : float
        Length over which the path merges from the shuttle's position onto the lane (and back), m.
    spacing_m : float
        Distance between path poses, m.
    uturn_angle_rad : float
        Heading difference above which the shuttle turns round instead of driving on.
    """

    keep_left: bool = True
    lane_offset_ratio: float = 0.25
    uturn_ahead_m: float = 6.0
    merge_m: float = 4.0
    spacing_m: float = 0.25
    uturn_angle_rad: float = 1.75

    def __post_init__(self):
        if not 0.0 <= self.lane_offset_ratio < 0.5:
            raise ValueError(f"lane_offset_ratio: must be in [0, 0.5), got {self.lane_offset_ratio!r}")
        for name in ("uturn_ahead_m", "merge_m", "spacing_m", "uturn_angle_rad"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be finite and > 0, got {v!r}")


class RoutingError(ValueError):
    """No route (point too far from every road, disconnected roads)."""


def densify(points: np.ndarray, spacing_m: float) -> np.ndarray:
    """Poses (N, 3) x, y, yaw every ``spacing_m`` along the polyline ``points`` (M, 2); yaw = direction."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    keep = [0]
    for i in range(1, len(pts)):
        if np.hypot(*(pts[i] - pts[keep[-1]])) > 1e-6:
            keep.append(i)
    pts = pts[keep]
    if len(pts) < 2:
        return np.zeros((0, 3))
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(math.ceil(np.hypot(*(b - a)) / spacing_m)))
        for k in range(1, n + 1):
            out.append(a + (b - a) * k / n)
    out = np.asarray(out)
    d = np.diff(out, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    yaw = np.append(yaw, yaw[-1])
    return np.column_stack([out, yaw])


def _length(pts: np.ndarray) -> float:
    return float(np.sum(np.hypot(*np.diff(pts, axis=0).T))) if len(pts) > 1 else 0.0


def _cut(pts: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """Part of the polyline between arc lengths s0 and s1 (clamped)."""
    line = LineString(pts)
    s0, s1 = max(0.0, s0), min(line.length, s1)
    if s1 <= s0:
        return np.asarray(line.interpolate(s0).coords)
    inner = [c for c, s in zip(pts, np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))]))
             if s0 < s < s1]
    return np.vstack([line.interpolate(s0).coords, *(np.reshape(c, (1, 2)) for c in inner),
                      line.interpolate(s1).coords])


class RoadNetwork:
    """Road graph of a town.

    Parameters
    ----------
    roads : sequence of mapping
        ``{"name", "polyline": [[x, y], ...], "width_m"}`` (map frame, m).
    params : RoadNetworkParams
    """

    def __init__(self, roads: Sequence[Mapping], params: RoadNetworkParams | None = None):
        self.params = params or RoadNetworkParams()
        if not roads:
            raise ValueError("roads: need at least one road")
        self.roads = []
        for r in roads:
            line = LineString(np.asarray(r["polyline"], dtype=float))
            w = float(r["width_m"])
            if not (w > 0 and line.length > 0):
                raise ValueError(f"road {r.get('name')!r}: needs a width > 0 and a polyline of length > 0")
            self.roads.append((str(r.get("name", "")), line, w))
        noded = shapely.unary_union([ln for _, ln, _ in self.roads])
        segs = list(noded.geoms) if isinstance(noded, MultiLineString) else [noded]
        self._nodes: list[tuple[float, float]] = []
        self._index: dict[tuple[int, int], int] = {}
        self.edges: list[tuple[int, int, np.ndarray, float]] = []  # a, b, points (K, 2), width
        for seg in segs:
            pts = np.asarray(seg.coords)
            mid = seg.interpolate(0.5, normalized=True)
            width = min(self.roads, key=lambda rd: rd[1].distance(mid))[2]
            self.edges.append((self._node(pts[0]), self._node(pts[-1]), pts, width))

    def _node(self, xy) -> int:
        key = (round(float(xy[0]) * 100), round(float(xy[1]) * 100))
        if key not in self._index:
            self._index[key] = len(self._nodes)
            self._nodes.append((float(xy[0]), float(xy[1])))
        return self._index[key]

    @classmethod
    def from_world(cls, world: Mapping, params: RoadNetworkParams | None = None) -> RoadNetwork:
        """From a scenario's ``world`` mapping (its ``roads``)."""
        return cls(world.get("roads") or [], params)

    # ------------------------------------------------------------------ graph search
    def _project(self, xy) -> tuple[int, float, float]:
        """(edge index, arc length along it, distance) of the closest centre-line point."""
        p = Point(float(xy[0]), float(xy[1]))
        best = None
        for i, (_, _, pts, _) in enumerate(self.edges):
            ln = LineString(pts)
            d = ln.distance(p)
            if best is None or d < best[2]:
                best = (i, ln.project(p), d)
        return best

    def centerline(self, start_xy, goal_xy) -> tuple[np.ndarray, list[float]]:
        """Shortest centre-line polyline (K, 2) between the projections of two points, and the road width
        of each of its segments."""
        es, ss, ds = self._project(start_xy)
        eg, sg, dg = self._project(goal_xy)
        for name, (d, w) in (("start", (ds, self.edges[es][3])), ("goal", (dg, self.edges[eg][3]))):
            if d > w:
                raise RoutingError(f"{name} point is {d:.1f} m from the nearest road (width {w:.1f} m)")
        if es == eg:  # same edge: straight along it (the road graph is only needed to leave the edge)
            pts, w = self.edges[es][2], self.edges[es][3]
            ln = LineString(pts)
            direct = _cut(pts, min(ss, sg), max(ss, sg))
            if ss > sg:
                direct = direct[::-1]
            best_direct = (abs(sg - ss), direct, [w] * (len(direct) - 1))
            del ln
        else:
            best_direct = None
        # Dijkstra from the start's two edge ends
        n = len(self._nodes)
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for i, (a, b, _pts, _) in enumerate(self.edges):
            adj[a].append((b, i))
            adj[b].append((a, i))
        dist = [math.inf] * n
        prev: list[tuple[int, int] | None] = [None] * n
        a, b, pts, _ = self.edges[es]
        length_s = LineString(pts).length
        heap = []
        for node, d0 in ((a, ss), (b, length_s - ss)):
            if d0 < dist[node]:
                dist[node] = d0
                heapq.heappush(heap, (d0, node))
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, ei in adj[u]:
                nd = d + LineString(self.edges[ei][2]).length
                if nd < dist[v]:
                    dist[v] = nd
                    prev[v] = (u, ei)
                    heapq.heappush(heap, (nd, v))
        ga, gb, gpts, gw = self.edges[eg]
        glen = LineString(gpts).length
        cands = [(dist[ga] + sg, ga), (dist[gb] + glen - sg, gb)]
        total, end_node = min(cands)
        if best_direct is not None and best_direct[0] <= total + 1e-9:
            return best_direct[1], best_direct[2]
        if not math.isfinite(total):
            raise RoutingError("start and goal are on roads that are not connected")
        # rebuild the node chain back to the start edge
        chain = []
        u = end_node
        while prev[u] is not None:
            pu, ei = prev[u]
            chain.append((pu, u, ei))
            u = pu
        chain.reverse()
        first_node = u
        sa, sb, spts, sw = self.edges[es]
        # start partial edge: from the start projection to first_node
        if first_node == sa:
            part = _cut(spts, 0.0, ss)[::-1]
        else:
            part = _cut(spts, ss, length_s)
        poly = [part]
        widths = [sw] * (len(part) - 1)
        for pu, _v, ei in chain:
            ea, eb, epts, ew = self.edges[ei]
            seg = epts if ea == pu else epts[::-1]
            poly.append(seg[1:])
            widths += [ew] * (len(seg) - 1)
        if end_node == ga:
            tail = _cut(gpts, 0.0, sg)
        else:
            tail = _cut(gpts, sg, glen)[::-1]
        poly.append(tail[1:])
        widths += [gw] * (len(tail) - 1)
        pts = np.vstack(poly)
        # drop zero-length segments (and their widths)
        keep_pts, keep_w = [pts[0]], []
        for i in range(1, len(pts)):
            if np.hypot(*(pts[i] - keep_pts[-1])) > 1e-6:
                keep_pts.append(pts[i])
                keep_w.append(widths[i - 1] if i - 1 < len(widths) else gw)
        return np.asarray(keep_pts), keep_w

    def distance_m(self, a_xy, b_xy) -> float:
        """Road distance between two points (centre line), m (for the dispatcher's travel times)."""
        pts, _ = self.centerline(a_xy, b_xy)
        return _length(pts) + self._project(a_xy)[2] + self._project(b_xy)[2]

    # ------------------------------------------------------------------ lanes and legs
    def _lane(self, pts: np.ndarray, widths: Sequence[float]) -> np.ndarray:
        """Offset the centre line onto the travel lane (corners at the offset lines' intersections)."""
        sign = 1.0 if self.params.keep_left else -1.0
        d = np.diff(pts, axis=0)
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        nrm = sign * np.column_stack([-d[:, 1], d[:, 0]])
        off = np.asarray(widths, dtype=float) * self.params.lane_offset_ratio
        out = [pts[0] + nrm[0] * off[0]]
        for k in range(1, len(pts) - 1):
            p1 = pts[k] + nrm[k - 1] * off[k - 1]
            p2 = pts[k] + nrm[k] * off[k]
            cross = d[k - 1, 0] * d[k, 1] - d[k - 1, 1] * d[k, 0]
            if abs(cross) < 1e-6:
                out.append(p2)
                continue
            t = ((p2 - p1)[0] * d[k, 1] - (p2 - p1)[1] * d[k, 0]) / cross
            out.append(p1 + d[k - 1] * t)
        out.append(pts[-1] + nrm[-1] * off[-1])
        return np.asarray(out)

    def route(self, start_xyyaw: Sequence[float], goal_xyyaw: Sequence[float]) -> list[np.ndarray]:
        """Legs (each (N, 3) x, y, yaw in the map frame) from the shuttle's pose to a boarding point.

        Returns an empty list when the shuttle is already there (within ``spacing_m`` and aligned).
        """
        p = self.params
        sx, sy, syaw = (float(v) for v in start_xyyaw)
        gx, gy, gyaw = (float(v) for v in goal_xyyaw)
        start, goal = np.array([sx, sy]), np.array([gx, gy])
        if np.hypot(*(goal - start)) < 0.5 and abs(angle_diff(gyaw, syaw)) < 0.3:
            return []
        cl, widths = self.centerline(start, goal)
        legs: list[np.ndarray] = []
        if _length(cl) < 1e-3:  # same place on the road (other side / turned): turn round on the spot
            cl = np.vstack([cl[0], cl[0] + p.uturn_ahead_m * np.array([math.cos(gyaw), math.sin(gyaw)])])
            widths = [widths[0] if widths else self.edges[self._project(start)[0]][3]]
        first_dir = cl[1] - cl[0]
        heading0 = math.atan2(first_dir[1], first_dir[0])
        if abs(angle_diff(heading0, syaw)) > p.uturn_angle_rad:
            # turn round first: move ahead onto the centre line, then start over from there facing back
            fwd = np.array([math.cos(syaw), math.sin(syaw)])
            proj = np.asarray(LineString(cl).interpolate(0.0).coords)[0]
            turn_at = proj + fwd * p.merge_m
            legs.append(densify(np.vstack([start, turn_at]), p.spacing_m))
            return legs + self.route((turn_at[0], turn_at[1], heading0), goal_xyyaw)
        last_dir = cl[-1] - cl[-2]
        heading_n = math.atan2(last_dir[1], last_dir[0])
        lane = self._lane(cl, widths)
        total = _length(lane)
        body = _cut(lane, min(p.merge_m, total / 2), total)
        if abs(angle_diff(heading_n, gyaw)) > p.uturn_angle_rad:
            # arrives against the boarding direction: pass the point on the centre line, turn, come back
            dn = last_dir / np.linalg.norm(last_dir)
            turn_at = cl[-1] + dn * p.uturn_ahead_m
            approach = _cut(lane, min(p.merge_m, total / 2), max(total - p.merge_m, min(p.merge_m, total / 2)))
            legs.append(densify(np.vstack([start, approach, turn_at]), p.spacing_m))
            back = -dn
            nrm = (1.0 if p.keep_left else -1.0) * np.array([-back[1], back[0]])
            lane_pt = goal - back * min(p.merge_m / 2, p.uturn_ahead_m / 2)
            del nrm
            legs.append(densify(np.vstack([turn_at, lane_pt, goal]), p.spacing_m))
            return [leg for leg in legs if len(leg) >= 2]
        pts = np.vstack([start, body[:-1], goal]) if len(body) > 1 else np.vstack([start, goal])
        legs.append(densify(pts, p.spacing_m))
        return [leg for leg in legs if len(leg) >= 2]
