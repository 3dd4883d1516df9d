"""Forward in-field transit: a drivable, forward-only path between two poses that stays inside the field.

Used where a direct turn (Dubins word) leaves the field: between headland rings, around obstacles, through
narrow necks. The free space (where the machine's reference point may be: the field eroded by half the machine
width) is rasterised; a shortest route that keeps clear of the edges (A* on an 8-connected grid, cost growing
near edges) is driven as a chain of forward Dubins curves (minimum turning radius): from the current pose to
the farthest point of the route that one curve reaches inside the field (headed along the route's tangent),
until the goal pose is reachable.
"""

from __future__ import annotations

import heapq
import math

import cv2
import numpy as np
import shapely

from agricare.core.planning import turns as T


class FreeSpace:
    """Rasterised free space of a region (shapely polygon), with the distance to its edge per cell."""

    def __init__(self, region_geom, res_m: float = 1.0):
        self.geom = region_geom
        shapely.prepare(region_geom)
        minx, miny, maxx, maxy = region_geom.bounds
        self.res = float(res_m)
        self.x0, self.y0 = minx - res_m, miny - res_m
        self.nx = int(math.ceil((maxx - minx) / res_m)) + 3
        self.ny = int(math.ceil((maxy - miny) / res_m)) + 3
        xs = self.x0 + (np.arange(self.nx) + 0.5) * res_m
        ys = self.y0 + (np.arange(self.ny) + 0.5) * res_m
        X, Y = np.meshgrid(xs, ys)
        self.free = shapely.contains_xy(region_geom, X, Y)
        self.clear_m = cv2.distanceTransform(self.free.astype(np.uint8), cv2.DIST_L2, 5) * res_m
        self._routes = {}             # (start cell, goal cell, prefer_clear_m) -> route cell centres (or None)

    def cell(self, xy) -> tuple[int, int]:
        return (int(np.clip((xy[1] - self.y0) / self.res, 0, self.ny - 1)),
                int(np.clip((xy[0] - self.x0) / self.res, 0, self.nx - 1)))

    def centre(self, rc) -> np.ndarray:
        return np.array([self.x0 + (rc[1] + 0.5) * self.res, self.y0 + (rc[0] + 0.5) * self.res])

    def nearest_free(self, rc, max_r: int = 6):
        if self.free[rc]:
            return rc
        r0, c0 = rc
        best = None
        for r in range(max(0, r0 - max_r), min(self.ny, r0 + max_r + 1)):
            for c in range(max(0, c0 - max_r), min(self.nx, c0 + max_r + 1)):
                if self.free[r, c]:
                    d = (r - r0) ** 2 + (c - c0) ** 2
                    if best is None or d < best[0]:
                        best = (d, (r, c))
        return None if best is None else best[1]

    def route(self, a_xy, b_xy, prefer_clear_m: float) -> np.ndarray | None:
        """Shortest route (N, 2) from a to b through free cells, cost x (1 + 2 prefer / clearance) near edges."""
        s = self.nearest_free(self.cell(a_xy))
        g = self.nearest_free(self.cell(b_xy))
        if s is None or g is None:
            return None
        key = (s, g, float(prefer_clear_m))
        if key not in self._routes:         # the clean-up asks again for the same cells (both ends of a pass, rounds)
            self._routes[key] = self._search(s, g, prefer_clear_m)
        pts = self._routes[key]
        if pts is None:
            return None
        pts = pts.copy()
        pts[0], pts[-1] = a_xy[:2], b_xy[:2]
        return pts

    def _search(self, s, g, prefer_clear_m: float) -> np.ndarray | None:
        """A* from cell ``s`` to cell ``g`` (8-connected, step cost x the mean edge penalty of its two cells): the
        centres of the route's cells, or None. On flat Python lists of a grid padded by one blocked cell (no bounds
        tests; the padded flat index orders like the (row, col) pair, so ties pop in the same order)."""
        pen = 1.0 + 2.0 * np.clip(prefer_clear_m / np.maximum(self.clear_m, 1e-3) - 1.0, 0.0, 20.0)
        ny, nx = self.ny, self.nx
        W = nx + 2
        free = np.zeros((ny + 2, W), dtype=bool)
        free[1:-1, 1:-1] = self.free
        penp = np.ones((ny + 2, W))
        penp[1:-1, 1:-1] = pen
        free_l = free.ravel().tolist()
        # the penalties as NumPy scalars of the raster's dtype (float32 from the distance transform): the costs add
        # up in that precision as the array version did, so equal-cost ties and the route are the same
        penp = penp.astype(pen.dtype)
        pen_l = list(penp.ravel())
        inf = math.inf
        dist = [inf] * len(free_l)
        prev = [-1] * len(free_l)
        si = (s[0] + 1) * W + s[1] + 1
        gi = (g[0] + 1) * W + g[1] + 1
        gr, gc = g[0] + 1, g[1] + 1
        dist[si] = 0.0
        pq = [(0.0, 0.0, si)]
        steps = [(-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0),
                 (-1, -1, 1.4142), (-1, 1, 1.4142), (1, -1, 1.4142), (1, 1, 1.4142)]
        steps = [(dr * W + dc, dr, dc, w) for dr, dc, w in steps]
        pop, push = heapq.heappop, heapq.heappush
        while pq:                                           # A* (octile distance is admissible: pen >= 1)
            _, d, i = pop(pq)
            if i == gi:
                break
            if d > dist[i]:
                continue
            r, c = divmod(i, W)
            pi = pen_l[i]
            for off, dr, dc, w in steps:
                j = i + off
                if free_l[j]:
                    nd = d + w * 0.5 * (pi + pen_l[j])
                    if nd < dist[j]:
                        dist[j] = nd
                        prev[j] = i
                        ddr, ddc = abs(r + dr - gr), abs(c + dc - gc)
                        h = max(ddr, ddc) + 0.4142 * min(ddr, ddc)
                        push(pq, (nd + h, nd, j))
        if not math.isfinite(dist[gi]):
            return None
        cells = [gi]
        while cells[-1] != si:
            cells.append(prev[cells[-1]])
        rc = [divmod(i, W) for i in reversed(cells)]
        return np.array([self.centre((r - 1, c - 1)) for r, c in rc])


def forward_transit(start, goal, radius_m: float, step_m: float, region_geom, contains,
                    space: FreeSpace | None = None, max_legs: int = 40, fits=None, memo: dict | None = None):
    """Forward-only drivable path from pose ``start`` to pose ``goal`` inside the region, or None.

    Parameters
    ----------
    start, goal : array_like (3,)
        Poses (x, y, yaw).
    radius_m, step_m : float
        Minimum turning radius and sampling step.
    region_geom : shapely Polygon
        Where the reference point may go.
    contains : callable (N, 2) -> bool
        All points inside the region.
    space : FreeSpace, optional
        Cached raster of the region (built on first use otherwise).
    fits : callable PathSamples -> bool, optional
        Replaces ``contains`` for the curves when given: a check of the poses, not only the points (the whole
        machine's footprint inside the field: a curve whose reference point keeps half a body width in can still
        swing the trailing implement's corner out).
    memo : dict, optional
        Results of the Dubins legs tried, kept across calls that share the same ``fits`` / ``contains`` (the
        clean-up's candidates all start from the current pose and follow routes sharing most of their cells):
        the same legs are not sampled and checked again. Results are the same as without it.
    """
    start = np.asarray(start, float)
    goal = np.asarray(goal, float)
    ok = fits if fits is not None else (lambda smp: contains(smp.xy))

    def leg(a, b):
        key = (a.tobytes(), b.tobytes()) if memo is not None else None
        if key is not None and key in memo:
            return memo[key]
        found = None
        for prims in T.dubins_candidates(a, b, radius_m)[:6]:
            s = T.sample_primitives(a, prims, step_m)
            if ok(s):
                found = s
                break
        if key is not None:
            memo[key] = found
        return found

    s = leg(start, goal)
    if s is not None:
        return s
    space = space or FreeSpace(region_geom, res_m=max(0.5, min(2.0, radius_m / 4)))
    route = space.route(start[:2], goal[:2], prefer_clear_m=1.5 * radius_m)
    if route is None or len(route) < 2:
        return None
    # tangent of the route over +-1.5 turning radii (a smooth heading for the waypoints)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(route, axis=0).T))])
    half = 1.5 * radius_m

    def pose_at(j):
        lo = int(np.searchsorted(cum, cum[j] - half))
        hi = min(len(route) - 1, int(np.searchsorted(cum, cum[j] + half)))
        d = route[hi] - route[min(lo, hi - 1) if hi > 0 else 0]
        return np.array([*route[j], math.atan2(d[1], d[0])])

    # greedy: from the current pose, drive to the farthest point of the route reachable by one Dubins curve
    out, cur, i = [], start, 0
    n = len(route)
    for _ in range(max_legs):
        s = leg(cur, goal)
        if s is not None:
            out.append(s)
            return concat_samples(out)
        stride = max(1, int(round(radius_m / space.res / 2)))
        found = None
        for j in range(n - 2, i, -stride):
            if cum[j] - cum[i] < 0.5 * radius_m:
                break
            cand = pose_at(j)
            s = leg(cur, cand)
            if s is not None:
                found = (j, cand, s)
                break
        if found is None:
            return None
        i, cur, s = found
        out.append(s)
    return None


def concat_samples(parts) -> T.PathSamples:
    xy = np.vstack([p.xy if i == 0 else p.xy[1:] for i, p in enumerate(parts)])
    yaw = np.concatenate([p.yaw if i == 0 else p.yaw[1:] for i, p in enumerate(parts)])
    kappa = np.concatenate([p.kappa if i == 0 else p.kappa[1:] for i, p in enumerate(parts)])
    dirn = np.concatenate([p.direction if i == 0 else p.direction[1:] for i, p in enumerate(parts)])
    return T.PathSamples(xy, yaw, kappa, dirn, float(sum(p.length_m for p in parts)))
