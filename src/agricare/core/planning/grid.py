"""Route planning on an occupancy map: map_server maps, costmaps, zones, A* and Hybrid-A*.

- :func:`load_map` / :func:`save_map`: the map_server format (a PGM/PNG image + a YAML with ``resolution``,
  ``origin``, ``negate``, ``occupied_thresh``, ``free_thresh``). Internally row 0 is the cell row at the
  origin (bottom of the image), as in ``nav_msgs/OccupancyGrid``.
- :func:`load_zones`: a YAML layer of speed-limit zones (school zone, crossings) and keep-out areas, plus
  named places.
- :func:`build_costmap`: obstacles + keep-out areas -> clearance (distance to the nearest obstacle, m) and
  an inflated cost 0..254.
- :func:`astar` (8-connected, cost-aware) with :func:`smooth_path` (line-of-sight shortcut + gradient
  smoothing that keeps clearance), and :func:`hybrid_astar` for car-like footprints with a minimum turning
  radius (arc primitives, obstacle-aware holonomic heuristic, Dubins shot to the goal).
- :func:`plan_route`: the one call a mission uses: ``(N, 3)`` poses + per-pose speed limits.

Run ``python -m agricare.core.planning.grid`` for a demo on a generated map.
"""

from __future__ import annotations

import heapq
import math
import pathlib
from dataclasses import dataclass, field

import cv2
import numpy as np
import yaml

from agricare.core.geometry import points_in_polygon, wrap_angle

LETHAL = 254
TWO_PI = 2.0 * math.pi


class PlanningError(RuntimeError):
    """No path: start/goal blocked, outside the map, or the search space exhausted."""


# ============================================================================ maps
@dataclass
class OccupancyMap:
    """A 2-D occupancy grid.

    Attributes
    ----------
    occupied : ndarray (H, W) bool
        Row 0 is the row at ``origin_xy[1]`` (south), column 0 at ``origin_xy[0]`` (west).
    resolution_m : float
        Cell edge length.
    origin_xy : tuple (2,)
        Map-frame position of the outer corner of cell (0, 0), metres.
    unknown : ndarray (H, W) bool or None
    """

    occupied: np.ndarray
    resolution_m: float
    origin_xy: tuple = (0.0, 0.0)
    unknown: np.ndarray | None = None

    def __post_init__(self):
        self.occupied = np.asarray(self.occupied, dtype=bool)
        if self.occupied.ndim != 2 or min(self.occupied.shape) < 1:
            raise ValueError("occupied must be a non-empty 2-D array")
        if not (math.isfinite(self.resolution_m) and self.resolution_m > 0):
            raise ValueError(f"resolution_m must be > 0, got {self.resolution_m!r}")
        if self.unknown is None:
            self.unknown = np.zeros_like(self.occupied)
        self.origin_xy = (float(self.origin_xy[0]), float(self.origin_xy[1]))

    @property
    def height(self) -> int:
        return self.occupied.shape[0]

    @property
    def width(self) -> int:
        return self.occupied.shape[1]

    @property
    def size_m(self) -> tuple[float, float]:
        return self.width * self.resolution_m, self.height * self.resolution_m

    def world_to_cell(self, points_xy):
        """Map-frame points (N, 2) -> integer ``(col, row)`` arrays (may be out of bounds)."""
        p = np.asarray(points_xy, dtype=float).reshape(-1, 2)
        col = np.floor((p[:, 0] - self.origin_xy[0]) / self.resolution_m).astype(np.int64)
        row = np.floor((p[:, 1] - self.origin_xy[1]) / self.resolution_m).astype(np.int64)
        return col, row

    def cell_to_world(self, col, row) -> np.ndarray:
        """Cell centres (N, 2) of integer ``(col, row)`` arrays."""
        col = np.asarray(col, dtype=float)
        row = np.asarray(row, dtype=float)
        return np.column_stack([self.origin_xy[0] + (col + 0.5) * self.resolution_m,
                                self.origin_xy[1] + (row + 0.5) * self.resolution_m])

    def in_bounds(self, col, row) -> np.ndarray:
        return (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)


def resolve_data_path(path) -> pathlib.Path:
    """Find a data file: absolute, relative to the working directory, to the source tree, or to the
    installed ``share/agricare`` directory (``config/maps/town.yaml`` works from anywhere)."""
    p = pathlib.Path(str(path)).expanduser()
    if p.is_absolute() or p.exists():
        return p
    here = pathlib.Path(__file__).resolve()
    candidates = [here.parents[4] / p]                       # source tree: src/agricare/core/planning
    import sys
    candidates.append(pathlib.Path(sys.prefix) / "share" / "agricare" / p)
    for c in candidates:
        if c.exists():
            return c
    return p


def load_map(yaml_path) -> OccupancyMap:
    """Load a map_server map (YAML + image). Supports ``mode: trinary`` (default) and ``scale``.

    Raises
    ------
    ValueError
        On a missing key, an unreadable image, a rotated origin or bad thresholds.
    """
    path = resolve_data_path(yaml_path)
    if not path.is_file():
        raise ValueError(f"map YAML {yaml_path} not found")
    meta = yaml.safe_load(path.read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a map YAML")
    for key in ("image", "resolution", "origin"):
        if key not in meta:
            raise ValueError(f"{path}: missing key '{key}'")
    res = float(meta["resolution"])
    origin = [float(v) for v in meta["origin"]]
    if len(origin) < 2 or not all(math.isfinite(v) for v in origin):
        raise ValueError(f"{path}: origin must be [x, y, yaw]")
    if len(origin) > 2 and abs(origin[2]) > 1e-9:
        raise ValueError(f"{path}: rotated map origins (yaw {origin[2]}) are not supported")
    occ_t = float(meta.get("occupied_thresh", 0.65))
    free_t = float(meta.get("free_thresh", 0.196))
    if not 0.0 <= free_t < occ_t <= 1.0:
        raise ValueError(f"{path}: need 0 <= free_thresh < occupied_thresh <= 1")
    img_path = (path.parent / str(meta["image"])).resolve()
    img = cv2.imread(str(img_path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: cannot read image {img_path}")
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    maxval = 65535.0 if img.dtype == np.uint16 else 255.0
    v = img.astype(np.float64) / maxval
    p_occ = v if int(meta.get("negate", 0)) else 1.0 - v
    occupied = p_occ > occ_t
    free = p_occ < free_t
    unknown = ~(occupied | free)
    mode = str(meta.get("mode", "trinary"))
    if mode not in ("trinary", "scale", "raw"):
        raise ValueError(f"{path}: unknown mode {mode!r}")
    return OccupancyMap(np.flipud(occupied).copy(), res, (origin[0], origin[1]), np.flipud(unknown).copy())


def save_map(grid_map: OccupancyMap, yaml_path, image_name: str | None = None) -> pathlib.Path:
    """Write a map_server YAML + PGM (0 occupied, 254 free, 205 unknown). Returns the YAML path."""
    path = pathlib.Path(yaml_path)
    image_name = image_name or path.with_suffix(".pgm").name
    img = np.full(grid_map.occupied.shape, 254, dtype=np.uint8)
    img[grid_map.unknown] = 205
    img[grid_map.occupied] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path.parent / image_name), np.flipud(img)):
        raise OSError(f"cannot write {path.parent / image_name}")
    meta = {"image": image_name, "mode": "trinary", "resolution": float(grid_map.resolution_m),
            "origin": [grid_map.origin_xy[0], grid_map.origin_xy[1], 0.0], "negate": 0,
            "occupied_thresh": 0.65, "free_thresh": 0.196}
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return path


# =========================================================================== zones
@dataclass(frozen=True)
class Zone:
    """A polygon (N, 2) in the map frame; ``kind`` is ``speed_limit`` or ``keep_out``."""

    name: str
    kind: str
    polygon: np.ndarray
    speed_limit_mps: float = math.inf


@dataclass
class ZoneLayer:
    """Speed-limit and keep-out zones plus named places (``{name: [x, y, yaw]}``)."""

    zones: list = field(default_factory=list)
    default_speed_limit_mps: float = math.inf
    places: dict = field(default_factory=dict)

    @property
    def keep_out(self) -> list:
        return [z for z in self.zones if z.kind == "keep_out"]

    def speed_limits(self, points_xy) -> np.ndarray:
        """Speed limit (N,) at map-frame points (N, 2): the lowest zone limit containing each point."""
        pts = np.asarray(points_xy, dtype=float).reshape(-1, 2)
        out = np.full(len(pts), self.default_speed_limit_mps, dtype=float)
        for z in self.zones:
            if z.kind == "speed_limit":
                inside = points_in_polygon(pts, z.polygon)
                out[inside] = np.minimum(out[inside], z.speed_limit_mps)
        return out

    def zone_names_at(self, point_xy) -> list[str]:
        return [z.name for z in self.zones if points_in_polygon(np.asarray(point_xy)[None], z.polygon)[0]]


def parse_zones(data: dict, source: str = "zones") -> ZoneLayer:
    """Build a :class:`ZoneLayer` from the YAML structure (see ``config/maps/town_zones.yaml``)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping")
    default = float(data.get("default_speed_limit_mps", math.inf))
    if not default > 0:
        raise ValueError(f"{source}: default_speed_limit_mps must be > 0")
    zones = []
    for i, z in enumerate(data.get("zones", []) or []):
        name = str(z.get("name", f"zone_{i}"))
        kind = str(z.get("type", ""))
        if kind not in ("speed_limit", "keep_out"):
            raise ValueError(f"{source}: zone '{name}': type must be speed_limit or keep_out, got {kind!r}")
        poly = np.asarray(z.get("polygon", []), dtype=float)
        if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.all(np.isfinite(poly)):
            raise ValueError(f"{source}: zone '{name}': polygon must be >= 3 finite [x, y] points")
        limit = math.inf
        if kind == "speed_limit":
            limit = float(z.get("speed_limit_mps", float("nan")))
            if not (math.isfinite(limit) and limit > 0):
                raise ValueError(f"{source}: zone '{name}': speed_limit_mps must be > 0")
        zones.append(Zone(name, kind, poly, limit))
    places = {}
    for name, pose in (data.get("places", {}) or {}).items():
        arr = np.asarray(pose, dtype=float)
        if arr.shape not in ((2,), (3,)) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{source}: place '{name}' must be [x, y] or [x, y, yaw]")
        places[str(name)] = np.append(arr, 0.0) if arr.shape == (2,) else arr
    return ZoneLayer(zones, default, places)


def load_zones(yaml_path) -> ZoneLayer:
    """Load a zone layer YAML."""
    path = resolve_data_path(yaml_path)
    if not path.is_file():
        raise ValueError(f"zones YAML {yaml_path} not found")
    return parse_zones(yaml.safe_load(path.read_text()), str(path))


# ========================================================================= costmap
@dataclass
class Costmap:
    """Obstacle clearance and inflated cost on the map grid.

    Attributes
    ----------
    blocked : ndarray (H, W) bool
        Obstacles, keep-out areas (and unknown cells when treated as obstacles).
    clearance_m : ndarray (H, W) float32
        Distance from each cell centre to the nearest blocked cell's edge (0 on blocked cells).
    cost : ndarray (H, W) uint8
        0 free .. 253 inflated, 254 lethal for a disc of ``inscribed_radius_m``.
    """

    grid: OccupancyMap
    blocked: np.ndarray
    clearance_m: np.ndarray
    cost: np.ndarray
    inscribed_radius_m: float

    def clearance_at(self, points_xy) -> np.ndarray:
        """Clearance (N,) at map-frame points; 0 outside the map."""
        col, row = self.grid.world_to_cell(points_xy)
        ok = self.grid.in_bounds(col, row)
        out = np.zeros(len(col), dtype=np.float32)
        out[ok] = self.clearance_m[row[ok], col[ok]]
        return out

    def cost_at(self, points_xy) -> np.ndarray:
        col, row = self.grid.world_to_cell(points_xy)
        ok = self.grid.in_bounds(col, row)
        out = np.full(len(col), LETHAL, dtype=np.uint8)
        out[ok] = self.cost[row[ok], col[ok]]
        return out


def rasterize_polygons(grid_map: OccupancyMap, polygons) -> np.ndarray:
    """Boolean mask (H, W) of the cells whose centres lie inside any polygon (N, 2) in the map frame."""
    mask = np.zeros(grid_map.occupied.shape, dtype=np.uint8)
    for poly in polygons:
        p = (np.asarray(poly, dtype=float) - np.asarray(grid_map.origin_xy)) / grid_map.resolution_m - 0.5
        cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def build_costmap(grid_map: OccupancyMap, inscribed_radius_m: float, inflation_radius_m: float,
                  cost_scaling: float = 3.0, zones: ZoneLayer | None = None,
                  unknown_is_obstacle: bool = True) -> Costmap:
    """Inflate obstacles (and keep-out zones).

    Parameters
    ----------
    inscribed_radius_m : float
        Cells closer than this to an obstacle are lethal (254) for the robot's centre.
    inflation_radius_m : float
        Beyond this the cost is 0; in between ``253 * exp(-cost_scaling * (d - inscribed))``.
    """
    if not inflation_radius_m >= inscribed_radius_m >= 0:
        raise ValueError("need inflation_radius_m >= inscribed_radius_m >= 0")
    blocked = grid_map.occupied.copy()
    if unknown_is_obstacle:
        blocked |= grid_map.unknown
    if zones is not None and zones.keep_out:
        blocked |= rasterize_polygons(grid_map, [z.polygon for z in zones.keep_out])
    free = (~blocked).astype(np.uint8)
    if blocked.any():
        dist_cells = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        clearance = np.maximum(dist_cells - 0.5, 0.0).astype(np.float32) * grid_map.resolution_m
    else:
        clearance = np.full(blocked.shape, np.float32(1e9), dtype=np.float32)
    clearance[blocked] = 0.0
    cost = np.zeros(blocked.shape, dtype=np.uint8)
    infl = (clearance > inscribed_radius_m) & (clearance < inflation_radius_m)
    cost[infl] = np.clip(253.0 * np.exp(-cost_scaling * (clearance[infl] - inscribed_radius_m)), 1, 253)
    cost[clearance <= inscribed_radius_m] = LETHAL
    return Costmap(grid_map, blocked, clearance, cost, float(inscribed_radius_m))


# ============================================================================== A*
_NEIGH = [(1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0),
          (1, 1, math.sqrt(2)), (1, -1, math.sqrt(2)), (-1, 1, math.sqrt(2)), (-1, -1, math.sqrt(2))]


def coarsen_costmap(costmap: Costmap, factor: int) -> Costmap:
    """A conservative coarser costmap: each coarse cell takes the worst (max cost, min clearance) fine cell."""
    if factor <= 1:
        return costmap
    g = costmap.grid
    Hc, Wc = -(-g.height // factor), -(-g.width // factor)

    def pool(a, fill, fn):
        pad = np.full((Hc * factor, Wc * factor), fill, dtype=a.dtype)
        pad[:g.height, :g.width] = a
        return fn(pad.reshape(Hc, factor, Wc, factor), axis=(1, 3))

    cost = pool(costmap.cost, LETHAL, np.max)
    blocked = pool(costmap.blocked, True, np.max)
    clear = pool(costmap.clearance_m, np.float32(0.0), np.min)
    grid = OccupancyMap(blocked, g.resolution_m * factor, g.origin_xy)
    return Costmap(grid, blocked, clear, cost, costmap.inscribed_radius_m)


def astar(costmap: Costmap, start_xy, goal_xy, cost_weight: float = 2.0,
          max_expansions: int = 5_000_000, guide_cell_m: float = 0.0) -> np.ndarray:
    """8-connected A* over the costmap (lethal cells forbidden, no diagonal corner cutting).

    Step cost = length * (1 + cost_weight * cost / 253). The heuristic is the larger of the octile distance
    and a coarse obstacle-aware distance (cells of ``guide_cell_m``, 0: automatic). Returns cell-centre
    waypoints (N, 2), the first and last replaced by the exact start and goal.
    """
    g = costmap.grid
    W, H = g.width, g.height
    (sc,), (sr,) = g.world_to_cell(start_xy)
    (gc,), (gr,) = g.world_to_cell(goal_xy)
    for name, c, r in (("start", sc, sr), ("goal", gc, gr)):
        if not (0 <= c < W and 0 <= r < H):
            raise PlanningError(f"{name} {tuple(np.round(start_xy if name == 'start' else goal_xy, 2))} "
                                "is outside the map")
        if costmap.cost[r, c] >= LETHAL:
            raise PlanningError(f"{name} is in collision (clearance {costmap.clearance_m[r, c]:.2f} m)")
    cost = costmap.cost.ravel()
    lethal = (cost >= LETHAL).tolist()
    penalty = (1.0 + cost_weight * cost.astype(np.float64) / 253.0).tolist()
    start, goal = sr * W + sc, gr * W + gc
    gbest = {start: 0.0}
    parent = {start: -1}
    closed = bytearray(W * H)
    sq2m2 = math.sqrt(2.0) - 2.0
    # obstacle-aware guide: coarse Dijkstra distance to the goal (in fine cells), minus a slack
    guide_cell_m = guide_cell_m if guide_cell_m > 0 else max(4 * g.resolution_m, 0.02 * max(g.size_m), 0.4)
    field_m, cell_m = holonomic_heuristic(costmap, goal_xy, guide_cell_m, costmap.inscribed_radius_m)
    f = max(1, int(round(cell_m / g.resolution_m)))
    guide = np.maximum(field_m / g.resolution_m - 2.0 * f, 0.0)
    guide = np.repeat(np.repeat(guide, f, axis=0), f, axis=1)[:H, :W].ravel().tolist()

    def octile(c, r):
        dx, dy = abs(gc - c), abs(gr - r)
        h = dx + dy + sq2m2 * (dx if dx < dy else dy)
        hg = guide[r * W + c]
        return hg if h < hg < math.inf else h

    heap = [(octile(sc, sr), -0.0, start)]
    expansions = 0
    while heap:
        _, neg_g, cur = heapq.heappop(heap)
        gcur = -neg_g
        if closed[cur]:
            continue
        if cur == goal:
            break
        closed[cur] = 1
        expansions += 1
        if expansions > max_expansions:
            raise PlanningError("A*: expansion limit reached")
        r, c = divmod(cur, W)
        for dc, dr, step in _NEIGH:
            nc, nr = c + dc, r + dr
            if nc < 0 or nr < 0 or nc >= W or nr >= H:
                continue
            n = nr * W + nc
            if lethal[n] or closed[n]:
                continue
            if dc and dr and (lethal[r * W + nc] or lethal[nr * W + c]):
                continue
            ng = gcur + step * 0.5 * (penalty[cur] + penalty[n])
            if ng < gbest.get(n, math.inf):
                gbest[n] = ng
                parent[n] = cur
                heapq.heappush(heap, (ng + octile(nc, nr), -ng, n))
    else:
        raise PlanningError("A*: no path between start and goal")
    cells = []
    n = goal
    while n != -1:
        cells.append(divmod(n, W))
        n = parent[n]
    cells.reverse()
    rc = np.asarray(cells)
    pts = g.cell_to_world(rc[:, 1], rc[:, 0])
    pts[0] = np.asarray(start_xy, dtype=float)[:2]
    pts[-1] = np.asarray(goal_xy, dtype=float)[:2]
    return pts


def segment_clear(costmap: Costmap, a, b, min_clearance_m: float) -> bool:
    """True when every point of segment a-b (sampled at half a cell) has clearance >= min_clearance_m."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = max(2, int(math.ceil(np.hypot(*(b - a)) / (0.5 * costmap.grid.resolution_m))) + 1)
    pts = a + (b - a) * np.linspace(0.0, 1.0, n)[:, None]
    return bool(np.all(costmap.clearance_at(pts) >= min_clearance_m))


def resample_polyline(points, spacing_m: float) -> np.ndarray:
    """Points (N, 2) resampled at equal arc length ``spacing_m`` (keeps both ends)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(p) < 2:
        return p.copy()
    seg = np.hypot(*np.diff(p, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return p[:1].copy()
    n = max(2, int(math.ceil(s[-1] / spacing_m)) + 1)
    si = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(si, s, p[:, 0]), np.interp(si, s, p[:, 1])])


def smooth_path(costmap: Costmap, points, min_clearance_m: float, spacing_m: float = 0.25,
                iterations: int = 100, weight_data: float = 0.1, weight_smooth: float = 0.4) -> np.ndarray:
    """Shortcut a grid path by line of sight, resample, then relax it (gradient smoothing).

    Every moved point keeps ``clearance >= min_clearance_m``; the ends never move. Returns (M, 2).
    """
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(p) <= 2:
        return resample_polyline(p, spacing_m)
    keep = [0]
    i = 0
    while i < len(p) - 1:
        j = len(p) - 1
        while j > i + 1 and not segment_clear(costmap, p[i], p[j], min_clearance_m):
            j = max(i + 1, (i + j) // 2) if j - i > 8 else j - 1
        keep.append(j)
        i = j
    q = resample_polyline(p[keep], spacing_m)
    orig = q.copy()
    for _ in range(iterations):
        new = q.copy()
        new[1:-1] += weight_data * (orig[1:-1] - q[1:-1]) + weight_smooth * (q[:-2] + q[2:] - 2.0 * q[1:-1])
        ok = costmap.clearance_at(new) >= min_clearance_m
        ok[0] = ok[-1] = False
        q[ok] = new[ok]
    return q


def headings(points) -> np.ndarray:
    """Tangent heading (N,) of a polyline (N, 2) (central differences)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(p) < 2:
        return np.zeros(len(p))
    d = np.gradient(p, axis=0)
    return np.arctan2(d[:, 1], d[:, 0])


# ========================================================================== Dubins
def _mod2pi(a):
    return a % TWO_PI


def _dubins_candidates(start, goal, radius_m):
    x0, y0, t0 = (float(v) for v in start)
    x1, y1, t1 = (float(v) for v in goal)
    dx, dy = x1 - x0, y1 - y0
    d = math.hypot(dx, dy) / radius_m
    th = _mod2pi(math.atan2(dy, dx)) if d > 1e-12 else 0.0
    a, b = _mod2pi(t0 - th), _mod2pi(t1 - th)
    sa, sb, ca, cb = math.sin(a), math.sin(b), math.cos(a), math.cos(b)
    cab = math.cos(a - b)
    cands = []
    p2 = 2 + d * d - 2 * cab + 2 * d * (sa - sb)
    if p2 >= 0:
        tmp = math.atan2(cb - ca, d + sa - sb)
        cands.append(("LSL", _mod2pi(-a + tmp), math.sqrt(p2), _mod2pi(b - tmp)))
    p2 = 2 + d * d - 2 * cab + 2 * d * (sb - sa)
    if p2 >= 0:
        tmp = math.atan2(ca - cb, d - sa + sb)
        cands.append(("RSR", _mod2pi(a - tmp), math.sqrt(p2), _mod2pi(-b + tmp)))
    p2 = -2 + d * d + 2 * cab + 2 * d * (sa + sb)
    if p2 >= 0:
        p = math.sqrt(p2)
        tmp = math.atan2(-ca - cb, d + sa + sb) - math.atan2(-2.0, p)
        cands.append(("LSR", _mod2pi(-a + tmp), p, _mod2pi(-b + tmp)))
    p2 = -2 + d * d + 2 * cab - 2 * d * (sa + sb)
    if p2 >= 0:
        p = math.sqrt(p2)
        tmp = math.atan2(ca + cb, d - sa - sb) - math.atan2(2.0, p)
        cands.append(("RSL", _mod2pi(a - tmp), p, _mod2pi(b - tmp)))
    tmp = (6.0 - d * d + 2 * cab + 2 * d * (sa - sb)) / 8.0
    if abs(tmp) <= 1.0:
        p = _mod2pi(TWO_PI - math.acos(tmp))
        t = _mod2pi(a - math.atan2(ca - cb, d - sa + sb) + p / 2.0)
        cands.append(("RLR", t, p, _mod2pi(a - b - t + p)))
    tmp = (6.0 - d * d + 2 * cab + 2 * d * (-sa + sb)) / 8.0
    if abs(tmp) <= 1.0:
        p = _mod2pi(TWO_PI - math.acos(tmp))
        t = _mod2pi(-a + math.atan2(-ca + cb, d + sa - sb) + p / 2.0)
        cands.append(("LRL", t, p, _mod2pi(b - a - t + p)))
    return cands


def dubins_length(start, goal, radius_m: float) -> float:
    """Length (m) of the shortest Dubins path ignoring obstacles (a Hybrid-A* heuristic)."""
    cands = _dubins_candidates(start, goal, radius_m)
    return min(c[1] + c[2] + c[3] for c in cands) * radius_m if cands else math.inf


def dubins_path(start, goal, radius_m: float):
    """Shortest Dubins path (forward only) between two poses.

    Returns
    -------
    (word, lengths_m, total_m) or None
        ``word`` like ``"LSR"``, segment lengths in metres.
    """
    x1, y1, t1 = (float(v) for v in goal)
    best = None
    cands = _dubins_candidates(start, goal, radius_m)
    for word, t, p, q in sorted(cands, key=lambda c: c[1] + c[2] + c[3]):
        lengths = (t * radius_m, p * radius_m, q * radius_m)
        end = sample_dubins(start, word, lengths, radius_m, max(lengths) + 1.0)[-1]
        if math.hypot(end[0] - x1, end[1] - y1) < 1e-3 * max(1.0, radius_m) and \
                abs(wrap_angle(end[2] - t1)) < 1e-3:
            best = (word, lengths, sum(lengths))
            break
    return best


def sample_dubins(start, word: str, lengths_m, radius_m: float, step_m: float) -> np.ndarray:
    """Poses (N, 3) along a Dubins path every ``step_m`` (start included, exact end included)."""
    pose = np.asarray(start, dtype=float).copy()
    out = [pose.copy()]
    for seg, L in zip(word, lengths_m):
        if L <= 1e-12:
            continue
        n = max(1, int(math.ceil(L / step_m)))
        ds = np.linspace(L / n, L, n)
        k = {"L": 1.0 / radius_m, "S": 0.0, "R": -1.0 / radius_m}[seg]
        out.append(_arc(pose, k, ds))
        pose = out[-1][-1].copy()
    return np.vstack([o.reshape(-1, 3) for o in out])


def _arc(pose, curvature, s):
    """Poses (len(s), 3) after driving arc lengths s (signed) from pose with a constant curvature."""
    x, y, t = pose
    s = np.asarray(s, dtype=float)
    if abs(curvature) < 1e-12:
        return np.column_stack([x + s * math.cos(t), y + s * math.sin(t), np.full_like(s, t)])
    tn = t + curvature * s
    return np.column_stack([x + (np.sin(tn) - math.sin(t)) / curvature,
                            y - (np.cos(tn) - math.cos(t)) / curvature, wrap_angle(tn)])


# ====================================================================== Hybrid-A*
@dataclass(frozen=True)
class Footprint:
    """Rectangular footprint covered by discs along the body axis.

    Parameters
    ----------
    length_m, width_m : float
    center_ahead_m : float
        Distance the rectangle centre lies ahead of base_link (rear axle for car-like robots).
    """

    length_m: float = 2.6
    width_m: float = 1.4
    center_ahead_m: float = 0.9

    def discs(self):
        """``(offsets_m (K,), radius_m)``: disc centres along +x of base_link covering the rectangle."""
        k = max(1, int(math.ceil(self.length_m / self.width_m)))
        seg = self.length_m / k
        offsets = self.center_ahead_m - self.length_m / 2.0 + seg * (np.arange(k) + 0.5)
        return offsets, math.hypot(self.width_m / 2.0, seg / 2.0)


def footprint_clear(costmap: Costmap, poses, footprint: Footprint, margin_m: float = 0.0) -> np.ndarray:
    """Boolean (N,): the footprint at each pose (N, 3) is free of obstacles (with ``margin_m``)."""
    poses = np.asarray(poses, dtype=float).reshape(-1, 3)
    offs, radius = footprint.discs()
    c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
    cx = poses[:, 0:1] + c[:, None] * offs[None, :]
    cy = poses[:, 1:2] + s[:, None] * offs[None, :]
    clear = costmap.clearance_at(np.column_stack([cx.ravel(), cy.ravel()])).reshape(len(poses), -1)
    return np.all(clear >= radius + margin_m, axis=1)


def holonomic_heuristic(costmap: Costmap, goal_xy, cell_m: float, min_clearance_m: float):
    """Obstacle-aware distance-to-goal field on a coarse grid (Dijkstra from the goal).

    Returns ``(dist (h, w) float, cell_m)``; inf where unreachable. A coarse cell is passable when any of
    its fine cells has ``clearance >= min_clearance_m``.
    """
    g = costmap.grid
    f = max(1, int(round(cell_m / g.resolution_m)))
    Hc, Wc = -(-g.height // f), -(-g.width // f)
    pad = np.zeros((Hc * f, Wc * f), dtype=np.float32)
    pad[:g.height, :g.width] = costmap.clearance_m
    coarse = pad.reshape(Hc, f, Wc, f).max(axis=(1, 3)) >= min_clearance_m
    cm = f * g.resolution_m
    gc = int((goal_xy[0] - g.origin_xy[0]) // cm)
    gr = int((goal_xy[1] - g.origin_xy[1]) // cm)
    dist = np.full(Hc * Wc, np.inf)
    if not (0 <= gc < Wc and 0 <= gr < Hc):
        return dist.reshape(Hc, Wc), cm
    passable = coarse.ravel().tolist()
    passable[gr * Wc + gc] = True
    d = [math.inf] * (Hc * Wc)
    start = gr * Wc + gc
    d[start] = 0.0
    heap = [(0.0, start)]
    while heap:
        dc, cur = heapq.heappop(heap)
        if dc > d[cur]:
            continue
        r, c = divmod(cur, Wc)
        for ddc, ddr, step in _NEIGH:
            nc, nr = c + ddc, r + ddr
            if 0 <= nc < Wc and 0 <= nr < Hc:
                n = nr * Wc + nc
                if passable[n]:
                    nd = dc + step * cm
                    if nd < d[n]:
                        d[n] = nd
                        heapq.heappush(heap, (nd, n))
    return np.asarray(d).reshape(Hc, Wc), cm


@dataclass(frozen=True)
class HybridAStarParams:
    """Search settings of :func:`hybrid_astar`."""

    min_turn_radius_m: float = 4.0
    xy_resolution_m: float = 1.0
    yaw_bins: int = 72
    step_m: float = 0.0               # 0: 1.5 * xy_resolution_m
    heuristic_weight: float = 1.5     # > 1 trades optimality for speed
    heuristic_cell_m: float = 1.0
    use_dubins_heuristic: bool = True  # max(obstacle-aware distance, Dubins length without obstacles)
    steer_samples: int = 5             # odd: -k_max .. +k_max
    allow_reverse: bool = False
    reverse_penalty: float = 2.0
    steer_penalty: float = 0.05
    steer_change_penalty: float = 0.2
    cost_weight: float = 1.0
    analytic_range_m: float = 25.0
    goal_tolerance_m: float = 0.3
    goal_yaw_tolerance_rad: float = 0.15
    max_expansions: int = 100_000
    clearance_margin_m: float = 0.05

    def __post_init__(self):
        for name in ("min_turn_radius_m", "xy_resolution_m", "analytic_range_m", "goal_tolerance_m",
                     "goal_yaw_tolerance_rad", "heuristic_cell_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.yaw_bins < 8:
            raise ValueError("yaw_bins must be >= 8")
        if not self.heuristic_weight >= 1.0:
            raise ValueError("heuristic_weight must be >= 1")
        if self.steer_samples < 3 or self.steer_samples % 2 == 0:
            raise ValueError("steer_samples must be odd and >= 3")
        if self.max_expansions < 1:
            raise ValueError("max_expansions must be >= 1")


def hybrid_astar(costmap: Costmap, start, goal, footprint: Footprint,
                 params: HybridAStarParams | None = None) -> np.ndarray:
    """Kinematically feasible path for a car-like footprint.

    Parameters
    ----------
    start, goal : array_like (3,)
        ``[x_m, y_m, yaw_rad]`` of base_link in the map frame.

    Returns
    -------
    ndarray (N, 4)
        ``x, y, yaw, direction`` (+1 forward, -1 reverse) every ~ resolution / 2 along the path;
        curvature never exceeds ``1 / min_turn_radius_m``.
    """
    hp = params or HybridAStarParams()
    start = np.asarray(start, dtype=float)
    goal = np.asarray(goal, dtype=float)
    margin = hp.clearance_margin_m
    for name, pose in (("start", start), ("goal", goal)):
        if not footprint_clear(costmap, pose, footprint, margin)[0]:
            raise PlanningError(f"{name} pose {np.round(pose, 2).tolist()} is in collision or outside the map")
    R = hp.min_turn_radius_m
    step = hp.step_m if hp.step_m > 0 else 1.5 * hp.xy_resolution_m
    sample_ds = max(costmap.grid.resolution_m, 0.1)
    n_sub = max(2, int(math.ceil(step / sample_ds)))
    s_local = np.linspace(step / n_sub, step, n_sub)
    kappas = np.linspace(-1.0 / R, 1.0 / R, hp.steer_samples)
    prims = []  # (curvature, direction, local poses (n_sub, 3))
    for d in ((1.0, -1.0) if hp.allow_reverse else (1.0,)):
        for k in kappas:
            prims.append((float(k), d, _arc(np.zeros(3), float(k), d * s_local)))
    offs, radius = footprint.discs()
    h_field, h_cell = holonomic_heuristic(costmap, goal, hp.heuristic_cell_m, radius + margin)
    h_w = hp.heuristic_weight
    g0 = costmap.grid

    def heuristic(x, y):
        c = int((x - g0.origin_xy[0]) // h_cell)
        r = int((y - g0.origin_xy[1]) // h_cell)
        eu = math.hypot(goal[0] - x, goal[1] - y)
        if 0 <= r < h_field.shape[0] and 0 <= c < h_field.shape[1]:
            hv = h_field[r, c]
            return h_w * max(eu, hv - 1.5 * h_cell) if math.isfinite(hv) else math.inf
        return math.inf

    def heuristic_pose(p):
        h = heuristic(p[0], p[1])
        if math.isfinite(h) and hp.use_dubins_heuristic:
            h = max(h, h_w * dubins_length(p, goal, R) * (0.5 if hp.allow_reverse else 1.0))
        return h

    if not math.isfinite(heuristic(start[0], start[1])):
        raise PlanningError("Hybrid-A*: goal unreachable from start (no corridor wide enough)")
    yaw_res = TWO_PI / hp.yaw_bins

    def key(p):
        return (int(p[0] // hp.xy_resolution_m), int(p[1] // hp.xy_resolution_m),
                int(((p[2] + math.pi) % TWO_PI) // yaw_res))

    nodes_pose = [start]
    nodes_parent = [-1]
    nodes_seg = [None]      # (poses (n, 3), direction) leading to the node
    nodes_kappa = [0.0]
    best_g = {key(start): 0.0}
    heap = [(heuristic(start[0], start[1]), 0.0, 0)]
    closed = set()
    expansions = 0
    cost_w = hp.cost_weight / 253.0
    while heap:
        _, gcur, ni = heapq.heappop(heap)
        pose = nodes_pose[ni]
        k = key(pose)
        if k in closed:
            continue
        closed.add(k)
        expansions += 1
        if expansions > hp.max_expansions:
            raise PlanningError(f"Hybrid-A*: no path within {hp.max_expansions} expansions")
        dist_goal = math.hypot(goal[0] - pose[0], goal[1] - pose[1])
        if dist_goal <= hp.goal_tolerance_m and abs(wrap_angle(goal[2] - pose[2])) <= hp.goal_yaw_tolerance_rad:
            return _collect(nodes_pose, nodes_parent, nodes_seg, ni, None)
        if dist_goal <= hp.analytic_range_m and (expansions % 5 == 1 or dist_goal < 3 * R):
            db = dubins_path(pose, goal, R)
            if db is not None:
                tail = sample_dubins(pose, db[0], db[1], R, sample_ds)
                if np.all(footprint_clear(costmap, tail, footprint, margin)):
                    return _collect(nodes_pose, nodes_parent, nodes_seg, ni, tail[1:])
        c, s = math.cos(pose[2]), math.sin(pose[2])
        all_local = np.stack([p[2] for p in prims])  # (P, n_sub, 3)
        wx = pose[0] + c * all_local[..., 0] - s * all_local[..., 1]
        wy = pose[1] + s * all_local[..., 0] + c * all_local[..., 1]
        wt = wrap_angle(pose[2] + all_local[..., 2])
        world = np.stack([wx, wy, wt], axis=-1)
        free = footprint_clear(costmap, world.reshape(-1, 3), footprint, margin).reshape(len(prims), -1)
        ends = world[:, -1, :]
        end_cost = costmap.cost_at(ends[:, :2]).astype(float)
        for pi, (kappa, d, _) in enumerate(prims):
            if not free[pi].all():
                continue
            end = ends[pi]
            kk = key(end)
            if kk in closed:
                continue
            g = gcur + step * (1.0 + (hp.reverse_penalty if d < 0 else 0.0) + hp.steer_penalty * abs(kappa) * R
                               + cost_w * end_cost[pi]) + hp.steer_change_penalty * abs(kappa - nodes_kappa[ni]) * R
            if g >= best_g.get(kk, math.inf):
                continue
            best_g[kk] = g
            h = heuristic_pose(end)
            if not math.isfinite(h):
                continue
            nodes_pose.append(end)
            nodes_parent.append(ni)
            nodes_seg.append((world[pi], d))
            nodes_kappa.append(kappa)
            heapq.heappush(heap, (g + h, g, len(nodes_pose) - 1))
    raise PlanningError("Hybrid-A*: search space exhausted, no path")


def _collect(poses, parents, segs, ni, tail):
    chunks = []
    while ni != -1:
        seg = segs[ni]
        if seg is not None:
            w, d = seg
            chunks.append(np.column_stack([w, np.full(len(w), d)]))
        else:
            chunks.append(np.append(poses[ni], 1.0)[None])
        ni = parents[ni]
    chunks.reverse()
    if tail is not None and len(tail):
        chunks.append(np.column_stack([tail, np.ones(len(tail))]))
    return np.vstack(chunks)


# ====================================================================== plan_route
@dataclass(frozen=True)
class RoutePlannerParams:
    """Parameters of :func:`plan_route` and ``route_planner_node`` (flat, SI units)."""

    map_frame: str = "map"
    map_yaml: str = ""
    zones_yaml: str = ""
    planner: str = "hybrid_astar"       # or "astar"
    robot_length_m: float = 2.6
    robot_width_m: float = 1.4
    robot_center_ahead_m: float = 0.9
    min_turn_radius_m: float = 4.0
    inflation_radius_m: float = 2.0
    cost_scaling: float = 2.0
    cost_weight: float = 1.0
    unknown_is_obstacle: bool = True
    xy_resolution_m: float = 1.0
    yaw_bins: int = 72
    heuristic_weight: float = 1.5
    astar_resolution_m: float = 0.0     # 0: the map resolution; coarser is faster on large maps
    allow_reverse: bool = False
    goal_tolerance_m: float = 0.3
    goal_yaw_tolerance_rad: float = 0.15
    max_expansions: int = 100_000
    path_spacing_m: float = 0.25
    smoothing_iterations: int = 100
    max_speed_mps: float = 3.0
    max_lateral_accel_mps2: float = 1.0

    def __post_init__(self):
        if not isinstance(self.map_frame, str) or not self.map_frame or self.map_frame.startswith("/"):
            raise ValueError(f"map_frame must be a frame id without leading '/', got {self.map_frame!r}")
        if self.planner not in ("hybrid_astar", "astar"):
            raise ValueError(f"planner must be 'hybrid_astar' or 'astar', got {self.planner!r}")
        for name in ("robot_length_m", "robot_width_m", "min_turn_radius_m", "xy_resolution_m",
                     "goal_tolerance_m", "goal_yaw_tolerance_rad", "path_spacing_m", "max_speed_mps",
                     "max_lateral_accel_mps2", "cost_scaling"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (math.isfinite(self.inflation_radius_m) and self.inflation_radius_m >= self.robot_width_m / 2):
            raise ValueError("inflation_radius_m must be >= robot_width_m / 2")
        if not (math.isfinite(self.cost_weight) and self.cost_weight >= 0):
            raise ValueError("cost_weight must be >= 0")
        if not math.isfinite(self.robot_center_ahead_m):
            raise ValueError("robot_center_ahead_m must be finite")
        if self.yaw_bins < 8:
            raise ValueError("yaw_bins must be >= 8")
        if not self.heuristic_weight >= 1.0:
            raise ValueError("heuristic_weight must be >= 1")
        if not (math.isfinite(self.astar_resolution_m) and self.astar_resolution_m >= 0):
            raise ValueError("astar_resolution_m must be >= 0")
        if self.max_expansions < 1 or self.smoothing_iterations < 0:
            raise ValueError("max_expansions must be >= 1 and smoothing_iterations >= 0")

    @property
    def footprint(self) -> Footprint:
        return Footprint(self.robot_length_m, self.robot_width_m, self.robot_center_ahead_m)

    @property
    def hybrid(self) -> HybridAStarParams:
        return HybridAStarParams(min_turn_radius_m=self.min_turn_radius_m, xy_resolution_m=self.xy_resolution_m,
                                 yaw_bins=self.yaw_bins, allow_reverse=self.allow_reverse,
                                 cost_weight=self.cost_weight, goal_tolerance_m=self.goal_tolerance_m,
                                 goal_yaw_tolerance_rad=self.goal_yaw_tolerance_rad,
                                 max_expansions=self.max_expansions, heuristic_weight=self.heuristic_weight,
                                 heuristic_cell_m=max(self.xy_resolution_m, 1.0))


def costmap_for(grid_map: OccupancyMap, params: RoutePlannerParams, zones: ZoneLayer | None = None) -> Costmap:
    """The costmap :func:`plan_route` uses (build once, reuse for many plans)."""
    return build_costmap(grid_map, params.robot_width_m / 2.0, params.inflation_radius_m, params.cost_scaling,
                         zones, params.unknown_is_obstacle)


def speed_limits_along(path_xyyaw, params: RoutePlannerParams, zones: ZoneLayer | None = None) -> np.ndarray:
    """Speed limit (N,) per pose: max speed, zone limits, lateral acceleration on curvature."""
    p = np.asarray(path_xyyaw, dtype=float).reshape(-1, 3)
    v = np.full(len(p), params.max_speed_mps)
    if zones is not None:
        v = np.minimum(v, zones.speed_limits(p[:, :2]))
    if len(p) >= 3:
        ds = np.hypot(*np.diff(p[:, :2], axis=0).T)
        dyaw = np.abs(wrap_angle(np.diff(p[:, 2])))
        kappa = np.zeros(len(p))
        with np.errstate(divide="ignore", invalid="ignore"):
            k_seg = np.where(ds > 1e-6, dyaw / ds, 0.0)
        kappa[1:] = np.maximum(kappa[1:], k_seg)
        kappa[:-1] = np.maximum(kappa[:-1], k_seg)
        with np.errstate(divide="ignore"):
            v = np.minimum(v, np.sqrt(params.max_lateral_accel_mps2 / np.maximum(kappa, 1e-9)))
    return v


def plan_route(grid_map, start_xyyaw, goal_xyyaw, params: RoutePlannerParams | None = None,
               zones: ZoneLayer | None = None, costmap: Costmap | None = None):
    """Plan a drivable route on a map.

    Parameters
    ----------
    grid_map : OccupancyMap or str or pathlib.Path
        The map, or the path of a map_server YAML.
    start_xyyaw, goal_xyyaw : array_like (3,)
        Poses of base_link in the map frame ``[x_m, y_m, yaw_rad]``.
    params : RoutePlannerParams
    zones : ZoneLayer, optional
        Speed-limit and keep-out zones (keep-out areas become obstacles).
    costmap : Costmap, optional
        A prebuilt :func:`costmap_for` (saves ~0.1 s per call on a town map).

    Returns
    -------
    path : ndarray (N, 3)
        ``x_m, y_m, yaw_rad`` every ``path_spacing_m``; first pose = start, last = goal.
    speed_limits_mps : ndarray (N,)

    Raises
    ------
    PlanningError
        Start or goal blocked / outside the map, or no path.
    """
    params = params or RoutePlannerParams()
    if not isinstance(grid_map, OccupancyMap):
        grid_map = load_map(grid_map)
    start = np.asarray(start_xyyaw, dtype=float).reshape(3)
    goal = np.asarray(goal_xyyaw, dtype=float).reshape(3)
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(goal))):
        raise PlanningError("start and goal must be finite")
    cm = costmap if costmap is not None else costmap_for(grid_map, params, zones)
    if params.planner == "astar":
        factor = max(1, int(round(params.astar_resolution_m / grid_map.resolution_m)))
        pts = astar(coarsen_costmap(cm, factor), start[:2], goal[:2], params.cost_weight,
                    params.max_expansions * 50)
        pts = smooth_path(cm, pts, cm.inscribed_radius_m + 0.5 * grid_map.resolution_m, params.path_spacing_m,
                          params.smoothing_iterations)
        yaw = headings(pts)
        yaw[0], yaw[-1] = start[2], goal[2]
        path = np.column_stack([pts, yaw])
    else:
        raw = hybrid_astar(cm, start, goal, params.footprint, params.hybrid)
        path = _resample_poses(raw[:, :3], params.path_spacing_m)
        path[-1] = goal
    return path, speed_limits_along(path, params, zones)


def _resample_poses(poses, spacing_m):
    """Keep poses about ``spacing_m`` apart along the path (first and last kept)."""
    p = np.asarray(poses, dtype=float)
    keep = [0]
    acc = 0.0
    for i in range(1, len(p)):
        acc += math.hypot(p[i, 0] - p[i - 1, 0], p[i, 1] - p[i - 1, 1])
        if acc >= spacing_m - 1e-9:
            keep.append(i)
            acc = 0.0
    if keep[-1] != len(p) - 1:
        keep.append(len(p) - 1)
    return p[keep].copy()


def path_length(path) -> float:
    p = np.asarray(path, dtype=float)
    return float(np.sum(np.hypot(*np.diff(p[:, :2], axis=0).T))) if len(p) > 1 else 0.0


def max_curvature(path) -> float:
    """Largest |dyaw / ds| along poses (N, 3) (ignores zero-length steps)."""
    p = np.asarray(path, dtype=float)
    ds = np.hypot(*np.diff(p[:, :2], axis=0).T)
    dy = np.abs(wrap_angle(np.diff(p[:, 2])))
    ok = ds > 1e-6
    return float(np.max(dy[ok] / ds[ok])) if np.any(ok) else 0.0


if __name__ == "__main__":  # pragma: no cover
    import time

    occ = np.zeros((400, 400), dtype=bool)
    occ[100:300, 150:170] = True
    occ[0:250, 260:280] = True
    m = OccupancyMap(occ, 0.1)
    for planner in ("astar", "hybrid_astar"):
        t0 = time.perf_counter()
        path, v = plan_route(m, (2.0, 20.0, 0.0), (38.0, 5.0, -math.pi / 2),
                             RoutePlannerParams(planner=planner, min_turn_radius_m=3.0))
        print(f"{planner}: {len(path)} poses, {path_length(path):.1f} m, "
              f"{(time.perf_counter() - t0) * 1e3:.0f} ms, max curvature {max_curvature(path):.3f} 1/m")
