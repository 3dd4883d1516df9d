"""Field coverage planning: headland rings, swaths, route, drivable turns, one continuous path.

Entry point :func:`plan_coverage` (field polygon in metres + :class:`CoverageParams` -> :class:`CoveragePlan`);
:func:`load_field` reads a GeoJSON field (local metres, WGS84 -> UTM, or a projected CRS) and
:func:`plan_to_json` writes the plan back in the CRS of the input. Runnable demo::

    PYTHONPATH=src python -m agricare.core.planning.coverage
"""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass, field as dc_field

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, shape
from shapely.validation import explain_validity

from agricare.core.planning import turns as T
from agricare.core.planning.decomposition import (OBJECTIVES, Swath, boustrophedon_cells, choose_angle,
                                                  generate_swaths)
from agricare.core.planning.headland import headland_offsets, headland_rings, inner_field, polygons_of
from agricare.core.planning.routing import ROUTES, end_poses, improve_route, optimal_route, pattern_route

TURN_TYPES = ("dubins", "dubins_cc", "reeds_shepp")
KIND_SWATH, KIND_TURN, KIND_HEADLAND, KIND_TRANSIT = 0, 1, 2, 3
KIND_NAMES = ("swath", "turn", "headland", "transit")


class PlanningError(ValueError):
    """The field or the parameters cannot give a plan (message is one clear line)."""


@dataclass(frozen=True)
class CoverageParams:
    """Coverage planner parameters (SI units).

    ``angle_deg`` NaN means "search the angle for ``objective``"; ``ab_line_m`` ``(x0, y0, x1, y1)`` in the
    field frame (all zeros = unused) fixes the swath direction along the AB line and takes precedence.
    ``robot_width_m`` 0 means "same as the implement"; turns keep half of it away from the boundary.
    """

    width_m: float = 3.0
    turn_radius_m: float = 4.0
    headland_width_m: float = 9.0
    robot_width_m: float = 0.0
    turn_type: str = "dubins"
    route: str = "optimal"
    objective: str = "swaths"
    angle_deg: float = float("nan")
    ab_line_m: tuple = (0.0, 0.0, 0.0, 0.0)
    max_curvature_rate_1pm2: float = 0.1
    sample_step_m: float = 0.5
    plan_headland: bool = True
    optimizer_time_limit_s: float = 0.08

    def __post_init__(self):
        for name in ("width_m", "turn_radius_m", "max_curvature_rate_1pm2", "sample_step_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("headland_width_m", "robot_width_m", "optimizer_time_limit_s"):  # 0 time: deterministic
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.sample_step_m > 0.5:
            raise ValueError(f"sample_step_m must be <= 0.5 m, got {self.sample_step_m!r}")
        if self.turn_type not in TURN_TYPES:
            raise ValueError(f"turn_type {self.turn_type!r} not in {TURN_TYPES}")
        if self.route not in ROUTES:
            raise ValueError(f"route {self.route!r} not in {ROUTES}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} not in {OBJECTIVES}")
        if not isinstance(self.angle_deg, (int, float)) or math.isinf(self.angle_deg):
            raise ValueError(f"angle_deg must be a finite number or NaN, got {self.angle_deg!r}")
        if len(tuple(self.ab_line_m)) != 4 or not all(math.isfinite(float(v)) for v in self.ab_line_m):
            raise ValueError(f"ab_line_m must be 4 finite numbers (x0, y0, x1, y1), got {self.ab_line_m!r}")

    @property
    def body_width_m(self) -> float:
        return self.robot_width_m if self.robot_width_m > 0 else self.width_m


@dataclass
class PlanPath:
    """The continuous path, sampled at most every ``sample_step_m``.

    Attributes
    ----------
    xy : ndarray (N, 2) metres; yaw : (N,) rad; curvature : (N,) 1/m (steering, + = left);
    kind : (N,) int8, index in :data:`KIND_NAMES`; working : (N,) bool implement on;
    direction : (N,) int8, +1 forward / -1 reverse.
    """

    xy: np.ndarray
    yaw: np.ndarray
    curvature: np.ndarray
    kind: np.ndarray
    working: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw)


@dataclass
class FieldFrame:
    """How the metric planning frame maps to the CRS of the input file."""

    crs: str = "local"              # "local", or a pyproj CRS string of the input
    to_input: object = None         # callable(x, y) -> (X, Y) in the input CRS, None for identity

    def convert(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.to_input is None:
            return xy
        X, Y = self.to_input(xy[:, 0], xy[:, 1])
        return np.column_stack([X, Y])


@dataclass
class CoveragePlan:
    """Result of :func:`plan_coverage` (all geometry in the metric planning frame)."""

    field: Polygon
    inner: object
    angle_rad: float
    swaths: list                    # list[Swath] in driving order (p0 -> p1 is the driving direction)
    headland_rings: list            # list of passes, each a list of (N, 2) closed rings
    path: PlanPath
    lengths_m: dict
    coverage_ratio: float
    overlap_ratio: float
    params: CoverageParams
    n_fallback_turns: int = 0
    warnings: list = dc_field(default_factory=list)
    frame: FieldFrame = dc_field(default_factory=FieldFrame)
    plan_time_ms: float = float("nan")

    def swath_array(self) -> np.ndarray:
        """Swaths as an array (n, 2, 2): [[x0, y0], [x1, y1]] in driving direction."""
        return np.array([[s.p0, s.p1] for s in self.swaths]).reshape(-1, 2, 2)

    def kind_segments(self):
        """Runs of constant kind/working/direction: list of (start_index, end_index_exclusive, kind,
        working, direction) over the path samples (what a controller needs besides the poses)."""
        p = self.path
        key = np.stack([p.kind, p.working.astype(np.int8), p.direction], axis=1)
        change = np.nonzero(np.any(key[1:] != key[:-1], axis=1))[0] + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(p)]])
        return [(int(a), int(b), int(p.kind[a]), bool(p.working[a]), int(p.direction[a])) for a, b in zip(starts, ends)]


# -------------------------------------------------------------------------------------------- field input
def validate_field(field: Polygon) -> Polygon:
    """Check a field polygon; raise :class:`PlanningError` with one clear line."""
    if field is None or field.is_empty:
        raise PlanningError("field polygon is empty")
    if field.geom_type != "Polygon":
        raise PlanningError(f"field must be one Polygon, got {field.geom_type}")
    coords = np.asarray(field.exterior.coords)
    if not np.all(np.isfinite(coords)):
        raise PlanningError("field polygon has non-finite coordinates")
    if not field.is_valid:
        why = explain_validity(field)
        if "Self-intersection" in why or "Ring Self-intersection" in why:
            raise PlanningError(f"field polygon is self-intersecting ({why})")
        raise PlanningError(f"field polygon is invalid ({why})")
    if field.area <= 0:
        raise PlanningError("field polygon has zero area")
    return field


def _polygon_from_geojson(doc):
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
        polys = [f for f in feats if (f.get("geometry") or {}).get("type") in ("Polygon", "MultiPolygon")]
        if len(polys) != 1:
            raise PlanningError(f"expected exactly one Polygon feature, found {len(polys)}")
        return polys[0].get("geometry"), polys[0].get("properties") or {}
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        return doc.get("geometry") or {}, doc.get("properties") or {}
    if isinstance(doc, dict) and doc.get("type") in ("Polygon", "MultiPolygon"):
        return doc, doc.get("properties") or {}
    raise PlanningError("no Polygon found (expected a GeoJSON Polygon, Feature or FeatureCollection)")


def _crs_name(doc, props) -> str:
    if "crs" in props:
        return str(props["crs"])
    crs = doc.get("crs") if isinstance(doc, dict) else None
    if isinstance(crs, dict):
        name = (crs.get("properties") or {}).get("name")
        if name:
            return str(name)
    return "EPSG:4326"                 # RFC 7946 default


def field_from_geojson(doc) -> tuple[Polygon, FieldFrame]:
    """Field polygon in metres and its :class:`FieldFrame` from a parsed GeoJSON document."""
    geom, props = _polygon_from_geojson(doc)
    crs_name = _crs_name(doc, props)
    try:
        poly = shape(geom)
    except Exception as exc:  # noqa: BLE001 - shapely raises many types on malformed input
        raise PlanningError(f"malformed polygon geometry ({exc})") from None
    if poly.geom_type == "MultiPolygon":
        if len(poly.geoms) != 1:
            raise PlanningError(f"expected one Polygon, got a MultiPolygon of {len(poly.geoms)}")
        poly = poly.geoms[0]
    if poly.is_empty:
        raise PlanningError("field polygon is empty")
    if crs_name.lower() in ("local", "metres", "meters", "m"):
        return validate_field(poly), FieldFrame("local", None)
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    norm = crs_name.replace("urn:ogc:def:crs:OGC:1.3:CRS84", "OGC:CRS84")
    try:
        crs_in = CRS.from_user_input(norm)
    except CRSError:
        raise PlanningError(f"unknown CRS {crs_name!r} (use 'local' for metres, EPSG:4326 or an EPSG code)") from None
    if crs_in.is_projected:
        return validate_field(poly), FieldFrame(crs_name, None)
    from agricare.core.geodesy import utm_crs_for

    xy = np.asarray(poly.exterior.coords)[:, :2]
    lon_min, lat_min = xy.min(axis=0)
    lon_max, lat_max = xy.max(axis=0)
    if not (-180 <= lon_min and lon_max <= 180 and -90 <= lat_min and lat_max <= 90):
        raise PlanningError(f"coordinates (x {lon_min:g}..{lon_max:g}, y {lat_min:g}..{lat_max:g}) are not lon/lat "
                            "degrees: metres need properties.crs 'local' (or a projected EPSG code)")
    if max(lon_max - lon_min, lat_max - lat_min) > 0.5:   # > ~50 km: metres read as degrees
        raise PlanningError(f"the field spans {lon_max - lon_min:g} x {lat_max - lat_min:g} degrees: coordinates in "
                            "metres without a crs? set properties.crs to 'local' (or a projected EPSG code)")
    lon, lat = xy.mean(axis=0)
    utm = utm_crs_for(float(lat), float(lon))
    fwd = Transformer.from_crs(crs_in, utm, always_xy=True)
    inv = Transformer.from_crs(utm, crs_in, always_xy=True)
    poly_m = shapely.transform(poly, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
    return validate_field(poly_m), FieldFrame(crs_name, inv.transform)


def load_field(path) -> tuple[Polygon, FieldFrame]:
    """Read a GeoJSON field file. Raises :class:`PlanningError` (one line) on any bad input."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise PlanningError(f"field file {str(p)!r} not found")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise PlanningError(f"field file {str(p)!r} is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanningError(f"field file {str(p)!r} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return field_from_geojson(doc)


# ----------------------------------------------------------------------------------------- connections
class _Region:
    """Prepared polygon for fast point-in-region tests."""

    def __init__(self, geom):
        self.geom = geom
        shapely.prepare(geom)

    def contains(self, xy: np.ndarray) -> bool:
        return bool(np.all(shapely.contains_xy(self.geom, xy[:, 0], xy[:, 1])))


def _candidates(start, goal, p: CoverageParams, kind: str):
    return T.turn_candidates(start, goal, kind, p.turn_radius_m, p.max_curvature_rate_1pm2)


class TurnCache:
    """Turn candidates keyed by the relative geometry of the goal seen from the start.

    Primitives do not depend on where the turn starts, only on the goal in the start's frame; swaths are
    parallel, so most turns of a plan repeat. The relative pose is rounded (``pos_tol_m`` metres,
    ``yaw_tol_rad``) for the key and the turn is solved once, for the first pose met with that key, so a
    reused turn ends within about the rounding of the exact goal.

    Parameters
    ----------
    p : CoverageParams
        Turn radius and curvature rate.
    pos_tol_m, yaw_tol_rad : float
        Rounding of the relative pose.
    """

    def __init__(self, p: CoverageParams, pos_tol_m: float = 1e-4, yaw_tol_rad: float = 1e-5):
        self.p = p
        self.pos_tol_m = float(pos_tol_m)
        self.yaw_tol_rad = float(yaw_tol_rad)
        self._store: dict = {}
        self.n_solved = 0

    def key(self, start, goal) -> tuple[int, int, int]:
        """Rounded relative pose of ``goal`` in the frame of ``start``."""
        return self._key(T._to_local(start, goal))

    def _key(self, rel) -> tuple[int, int, int]:
        x, y, th = rel
        return (round(x / self.pos_tol_m), round(y / self.pos_tol_m), round(th / self.yaw_tol_rad))

    def candidates(self, start, goal, kind: str) -> list:
        """Candidate primitive lists of ``kind`` from ``start`` to ``goal``, shortest first."""
        rel = T._to_local(start, goal)
        entry = (kind, self._key(rel))
        if entry not in self._store:
            # solved for the first exact relative pose met (not the rounded one: that would turn exactly
            # anti-parallel swaths into almost-parallel ones)
            self._store[entry] = _candidates(np.zeros(3), np.array(rel), self.p, kind)
            self.n_solved += 1
        return self._store[entry]

    def length(self, start, goal, kind: str) -> float:
        """Length (m) of the shortest candidate, ``inf`` when there is none."""
        c = self.candidates(start, goal, kind)
        return T.primitives_length(c[0]) if c else math.inf


def connect(start, goal, p: CoverageParams, region: _Region, cache: TurnCache | None = None):
    """A drivable connection from ``start`` to ``goal`` that stays in ``region``.

    Tries the requested turn type, then every Reeds-Shepp / Dubins word (fishtail / three-point turns
    are C|C|C Reeds-Shepp words), then backing up along the finished swath before turning. With a
    :class:`TurnCache` the candidates of repeated relative geometries are solved once.

    Returns
    -------
    (PathSamples, fallback_used) or (None, True) when nothing fits.
    """
    step = p.sample_step_m
    order = [p.turn_type] + [t for t in ("reeds_shepp", "dubins") if t != p.turn_type]
    for k, kind in enumerate(order):
        cands = cache.candidates(start, goal, kind) if cache is not None else _candidates(start, goal, p, kind)
        for prims in cands[:12]:
            s = T.sample_primitives(start, prims, step)
            if region.contains(s.xy):
                return s, k > 0
    for back in (1.0, 2.0, 4.0):
        b = back * p.turn_radius_m
        s0 = np.array([start[0] - b * math.cos(start[2]), start[1] - b * math.sin(start[2]), start[2]])
        for prims in T.reeds_shepp_candidates(s0, goal, p.turn_radius_m)[:8]:
            full = [(-b, 0.0, 0.0)] + prims
            s = T.sample_primitives(start, full, step)
            if region.contains(s.xy):
                return s, True
    return None, True


def _cost_matrix(swaths, p: CoverageParams, region: _Region) -> np.ndarray:
    """Exit -> entry connection lengths (m) between oriented swaths, shape (2n, 2n)."""
    entry, exit_ = end_poses(swaths)
    m = len(entry)
    ii, jj = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    cost = T.dubins_lengths(exit_[ii.ravel()], entry[jj.ravel()], p.turn_radius_m).reshape(m, m)
    if p.turn_type == "dubins_cc":
        # cheap closed-form estimate on every pair; the route's turns are solved exactly afterwards
        est = T.dubins_cc_lengths(exit_[ii.ravel()], entry[jj.ravel()], p.turn_radius_m,
                                  p.max_curvature_rate_1pm2).reshape(m, m)
        cost = np.where(np.isfinite(est), est, cost * 3)
    elif p.turn_type != "dubins":
        near_lim = 4 * p.turn_radius_m + 4 * p.width_m
        cache = {}
        for a in range(m):
            for b in range(m):
                if a // 2 == b // 2:
                    continue
                d = math.hypot(*(entry[b, :2] - exit_[a, :2]))
                if d > near_lim:
                    continue
                rel = T._to_local(exit_[a], entry[b])
                key = (round(rel[0], 2), round(rel[1], 2), round(rel[2], 3))
                if key not in cache:
                    c = _candidates(np.zeros(3), np.array(rel), p, p.turn_type)
                    cache[key] = T.primitives_length(c[0]) if c else cost[a, b] * 3
                cost[a, b] = cache[key]
    # a connection whose straight chord leaves the field needs a detour: penalise it (one vectorised test)
    a_idx, b_idx = np.nonzero((cost > 6 * p.turn_radius_m) & ((ii // 2) != (jj // 2)))
    if len(a_idx):
        t = np.linspace(0.0, 1.0, 8)
        pts = exit_[a_idx, None, :2] + t[None, :, None] * (entry[b_idx, None, :2] - exit_[a_idx, None, :2])
        inside = shapely.contains_xy(region.geom, pts[..., 0].ravel(), pts[..., 1].ravel()).reshape(pts.shape[:2])
        bad = ~np.all(inside, axis=1)
        cost[a_idx[bad], b_idx[bad]] *= 3.0
    for i in range(len(swaths)):
        cost[2 * i, 2 * i + 1] = cost[2 * i + 1, 2 * i] = 1e7
        cost[2 * i, 2 * i] = cost[2 * i + 1, 2 * i + 1] = 1e7
    return cost


# --------------------------------------------------------------------------------------------- assembly
def _straight(p0, p1, step):
    L = float(math.hypot(p1[0] - p0[0], p1[1] - p0[1]))
    yaw = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    return T.sample_primitives((p0[0], p0[1], yaw), [(L, 0.0, 0.0)], step)


def _ring_samples(ring: np.ndarray) -> T.PathSamples:
    d = np.diff(ring, axis=0)
    seg = np.hypot(d[:, 0], d[:, 1])
    yaw = np.arctan2(d[:, 1], d[:, 0])
    yaw = np.concatenate([yaw, yaw[:1]])
    dyaw = np.diff(np.unwrap(np.concatenate([yaw[-2:-1], yaw])))
    kappa = np.concatenate([[0.0], dyaw[1:] / np.maximum(seg, 1e-9)])
    kappa = np.resize(kappa, len(ring))
    return T.PathSamples(ring.copy(), yaw[: len(ring)], kappa, np.ones(len(ring), dtype=np.int8), float(seg.sum()))


class _Builder:
    def __init__(self, step):
        self.step = step
        self.parts = []          # (PathSamples, kind, working)
        self.lengths = {n: 0.0 for n in ("swaths", "turns", "headland", "transit")}

    def add(self, s: T.PathSamples, kind: int, working: bool):
        self.parts.append((s, kind, working))
        key = {KIND_SWATH: "swaths", KIND_TURN: "turns", KIND_HEADLAND: "headland", KIND_TRANSIT: "transit"}[kind]
        self.lengths[key] += s.length_m

    def build(self) -> PlanPath:
        xy, yaw, k, kind, work, dirn = [], [], [], [], [], []
        for i, (s, kd, w) in enumerate(self.parts):
            sl = slice(1, None) if i > 0 else slice(None)
            xy.append(s.xy[sl])
            yaw.append(s.yaw[sl])
            k.append(s.kappa[sl])
            n = len(s.yaw[sl])
            kind.append(np.full(n, kd, dtype=np.int8))
            work.append(np.full(n, w, dtype=bool))
            dirn.append(s.direction[sl])
        if not xy:
            z = np.zeros(0)
            return PlanPath(np.zeros((0, 2)), z, z, z.astype(np.int8), z.astype(bool), z.astype(np.int8))
        return PlanPath(np.concatenate(xy), np.concatenate(yaw), np.concatenate(k), np.concatenate(kind),
                        np.concatenate(work), np.concatenate(dirn))


def coverage_metrics(inner, swaths, width_m: float) -> tuple[float, float]:
    """(coverage_ratio, overlap_ratio) of the inner field by the swath strips (flat-capped buffers)."""
    area = inner.area
    if area <= 0 or not swaths:
        return 0.0, 0.0
    strips = [LineString([s.p0, s.p1]).buffer(0.5 * width_m, cap_style="flat") for s in swaths]
    clipped = [shapely.intersection(st, inner) for st in strips]
    # snap to a 1 mm grid: strips sharing an edge make GEOS unions drop whole strips otherwise
    union = shapely.union_all(clipped, grid_size=1e-3)
    cov = union.area / area
    over = (sum(c.area for c in clipped) - union.area) / area
    return float(min(cov, 1.0)), float(max(over, 0.0))


def _choose_route(cell_idx, swaths, cost: np.ndarray, p: CoverageParams):
    """Route over the swaths for ``p.route`` with the connection costs ``cost``."""
    if p.route != "optimal":
        return pattern_route(cell_idx, p.route, swaths, cost)
    k0 = max(2, math.ceil(2 * p.turn_radius_m / p.width_m))
    pats = ("boustrophedon", "snake", "spiral", f"skip{k0}", f"skip{k0 + 1}", f"skip{k0 + 2}")
    seeds = [pattern_route(cell_idx, r, swaths, cost) for r in pats]
    return optimal_route(cost, seeds, p.optimizer_time_limit_s)


def _connect_route(route, cell_idx, swaths, cost: np.ndarray, p: CoverageParams, region: _Region,
                   cache: TurnCache, max_rounds: int = 4, tol_m: float = 0.05):
    """Drive the route's connections and re-plan the route where they cost more than estimated (lazy).

    Each connection of the route is built by :func:`connect` (the requested turn type solved exactly, or
    the fallback that stays in the field) and its driven length written into ``cost`` (in place, never
    lowered). When one turned out longer than its estimate by more than ``tol_m`` (an estimated curvature-
    continuous turn, a turn that would have left the field) the route is chosen again with the corrected
    costs (the optimal route by a descent from the previous one, :func:`improve_route`), at most
    ``max_rounds`` times.

    Returns
    -------
    (route, connections) where ``connections[(a, b)] = (PathSamples or None, fallback_used)`` for the
    oriented-swath arcs a -> b of the route (and of earlier candidates).
    """
    entry, exit_ = end_poses(swaths)
    conns: dict = {}
    for rnd in range(max_rounds + 1):
        worse = False
        nodes = [2 * i + int(r) for i, r in route]
        for a, b in zip(nodes[:-1], nodes[1:]):
            if (a, b) in conns:
                continue
            c, fb = connect(exit_[a], entry[b], p, region, cache)
            conns[(a, b)] = (c, fb)
            driven = c.length_m if c is not None else 1e7
            if driven > cost[a, b] + tol_m:
                worse = True
            cost[a, b] = max(cost[a, b], driven)
        if not worse or rnd == max_rounds:
            break
        if p.route == "optimal":
            route = improve_route(cost, route)
        else:
            route = pattern_route(cell_idx, p.route, swaths, cost)
    return route, conns


def plan_coverage(field: Polygon, params: CoverageParams, frame: FieldFrame | None = None) -> CoveragePlan:
    """Plan the coverage of a field.

    Parameters
    ----------
    field : shapely Polygon
        Field boundary in metres (holes = keep-out areas).
    params : CoverageParams
    frame : FieldFrame, optional
        Kept on the plan for :func:`plan_to_json` (output in the input CRS).

    Returns
    -------
    CoveragePlan

    Raises
    ------
    PlanningError
        Invalid field, field smaller than the headland, or no drivable connection.
    """
    p = params
    field = validate_field(field)
    field = shapely.geometry.polygon.orient(field, 1.0)
    inner = inner_field(field, p.headland_width_m)
    inner = shapely.union_all([g for g in polygons_of(inner) if g.area > 1e-3 * p.width_m ** 2])
    if inner.is_empty or inner.area < p.width_m * p.width_m:
        raise PlanningError(f"field is smaller than the headland: nothing left inside a {p.headland_width_m:g} m "
                            "headland")
    margin = 0.5 * p.body_width_m
    region_geom = field.buffer(-margin + 1e-6) if margin > 0 else field
    region = _Region(region_geom.buffer(1e-6))
    # swath direction
    ab = tuple(float(v) for v in p.ab_line_m)
    if any(abs(v) > 0 for v in ab) and math.hypot(ab[2] - ab[0], ab[3] - ab[1]) > 1e-9:
        angle = math.atan2(ab[3] - ab[1], ab[2] - ab[0]) % math.pi
    elif math.isfinite(p.angle_deg):
        angle = math.radians(p.angle_deg) % math.pi
    else:
        angle = choose_angle(inner, p.width_m, p.objective, math.pi * p.turn_radius_m)
    swaths = generate_swaths(inner, angle, p.width_m, allowed=field)
    if not swaths:
        raise PlanningError("no swath fits in the inner field")
    cells = boustrophedon_cells(swaths, angle)
    idx_of = {id(s): i for i, s in enumerate(swaths)}
    cell_idx = [[idx_of[id(s)] for s in c] for c in cells]
    cost = _cost_matrix(swaths, p, region)
    cache = TurnCache(p)
    route = _choose_route(cell_idx, swaths, cost, p)
    route, conns = _connect_route(route, cell_idx, swaths, cost, p, region, cache)
    ordered = []
    for i, rev in route:
        s = swaths[i]
        ordered.append(Swath(s.p1.copy(), s.p0.copy(), s.line, s.cell) if rev else
                       Swath(s.p0.copy(), s.p1.copy(), s.line, s.cell))
    b = _Builder(p.sample_step_m)
    warnings = []
    n_fb = 0
    nodes = [2 * i + int(r) for i, r in route]
    for k, s in enumerate(ordered):
        if k > 0:
            c, fb = conns[(nodes[k - 1], nodes[k])]
            if c is None:
                raise PlanningError(f"no drivable connection inside the field between swaths {k - 1} and {k}; "
                                    "widen the headland or reduce the turning radius")
            n_fb += int(fb)
            b.add(c, KIND_TURN, False)
        b.add(_straight(s.p0, s.p1, p.sample_step_m), KIND_SWATH, True)
    rings = []
    if p.plan_headland and p.headland_width_m > 0:
        rings = headland_rings(field, headland_offsets(p.headland_width_m, p.width_m, p.body_width_m),
                               p.turn_radius_m, p.sample_step_m)
        last = ordered[-1]
        pose = np.array([*last.p1, math.atan2(last.p1[1] - last.p0[1], last.p1[0] - last.p0[0])])
        for pass_rings in reversed(rings):           # innermost pass first, outer boundary last
            todo = list(pass_rings)
            while todo:
                best = None
                for ri, ring in enumerate(todo):
                    d = np.hypot(ring[:, 0] - pose[0], ring[:, 1] - pose[1])
                    j = int(np.argmin(d))
                    if best is None or d[j] < best[0]:
                        best = (float(d[j]), ri, j)
                _, ri, j = best
                ring = todo.pop(ri)
                loop = np.concatenate([ring[j:-1], ring[:j + 1]])
                fwd = _ring_samples(loop)
                rev = _ring_samples(loop[::-1].copy())
                samples = None
                for cand in sorted((fwd, rev), key=lambda s: abs(T.wrap_angle(s.yaw[0] - pose[2]))):
                    # enter the ring a little ahead so the connection has room to turn
                    ahead = min(len(cand.yaw) - 1, int(3 * p.turn_radius_m / p.sample_step_m))
                    target = np.array([*cand.xy[ahead], cand.yaw[ahead]])
                    c, fb = connect(pose, target, p, region, cache)
                    if c is not None:
                        rolled = np.concatenate([loop[ahead:-1], loop[:ahead + 1]]) if cand is fwd else None
                        if rolled is None:
                            lr = loop[::-1].copy()
                            rolled = np.concatenate([lr[ahead:-1], lr[:ahead + 1]])
                        samples = (c, _ring_samples(rolled))
                        break
                if samples is None:
                    warnings.append("a headland ring could not be reached inside the field; skipped")
                    continue
                b.add(samples[0], KIND_TRANSIT, False)
                b.add(samples[1], KIND_HEADLAND, True)
                pose = np.array([*samples[1].xy[-1], samples[1].yaw[-1]])
    path = b.build()
    lengths = dict(b.lengths)
    lengths["total"] = lengths["swaths"] + lengths["turns"]
    cov, over = coverage_metrics(inner, ordered, p.width_m)
    return CoveragePlan(field=field, inner=inner, angle_rad=angle, swaths=ordered, headland_rings=rings,
                        path=path, lengths_m=lengths, coverage_ratio=cov, overlap_ratio=over, params=p,
                        n_fallback_turns=n_fb, warnings=warnings, frame=frame or FieldFrame())


def plan_to_dict(plan: CoveragePlan) -> dict:
    """The plan as a JSON-able dict (coordinates in the input CRS; yaw/curvature/lengths metric)."""
    fr = plan.frame
    sw = plan.swath_array()
    sw_out = fr.convert(sw.reshape(-1, 2)).reshape(-1, 2, 2) if len(sw) else sw
    xy = fr.convert(plan.path.xy) if len(plan.path) else np.zeros((0, 2))
    pth = plan.path
    path = [[float(x), float(y), float(yaw), int(w)] for (x, y), yaw, w in zip(xy, pth.yaw, pth.working)]
    return {
        "crs": fr.crs,
        "swaths": sw_out.tolist(),
        "path": path,
        "path_curvature": [float(v) for v in pth.curvature],
        "path_kind": [KIND_NAMES[int(v)] for v in pth.kind],
        "path_direction": [int(v) for v in pth.direction],
        "length_m": {k: round(float(v), 3) for k, v in plan.lengths_m.items()},
        "coverage_ratio": round(plan.coverage_ratio, 6),
        "overlap_ratio": round(plan.overlap_ratio, 6),
        "plan_time_ms": None if not math.isfinite(plan.plan_time_ms) else round(plan.plan_time_ms, 2),
        "angle_deg": round(math.degrees(plan.angle_rad), 4),
        "n_swaths": len(plan.swaths),
        "turn_type": plan.params.turn_type,
        "route": plan.params.route,
        "fallback_turns": plan.n_fallback_turns,
        "warnings": list(plan.warnings),
    }


def plan_to_json(plan: CoveragePlan, indent=None) -> str:
    """JSON text of :func:`plan_to_dict` (the CLI's OUT.json)."""
    return json.dumps(plan_to_dict(plan), indent=indent)


def path_inside_fraction(plan: CoveragePlan) -> float:
    """Fraction of path samples inside the field polygon (outside holes)."""
    if len(plan.path) == 0:
        return 1.0
    f = plan.field.buffer(1e-6)
    return float(np.mean(shapely.contains_xy(f, plan.path.xy[:, 0], plan.path.xy[:, 1])))


if __name__ == "__main__":   # demo: field A
    demo = plan_coverage(Polygon([(0, 0), (100, 0), (100, 60), (0, 60)]), CoverageParams())
    print(len(demo.swaths), "swaths", {k: round(v, 1) for k, v in demo.lengths_m.items()},
          "coverage", round(demo.coverage_ratio, 4))
