"""The embedded simulator's world: fixed-step, seeded, 2-D, usable without ROS.

Typical closed loop in plain Python::

    from agricare.core.sim.world import World
    from agricare.core.sim.scenarios import load_scenario

    world = World.from_scenario(load_scenario("config/scenarios/farm_small.yaml"), seed=1)
    for _ in range(1000):
        world.set_command("tractor", 1.5, 0.05)          # what cmd_vel carries (stamped with world time)
        world.set_sections("tractor", [1, 1, 1])          # implement/sections
        world.step(0.02)
        for sample in world.sensors_due():               # readings whose time has come
            handle(sample.robot, sample.kind, sample.reading)
    print(world.coverage_ratios("tractor"), world.contacts, world.boundary_violations)

Public API (all times are sim time in seconds, all poses map frame ``[x_m, y_m, yaw_rad]``)
-----------------------------------------------------------------------------------------
``World(spec: ScenarioSpec, seed=0)``; ``World.from_scenario(cfg: dict | ScenarioSpec, seed=0)``;
``World.from_file(path, seed=0)``.
``.step(dt_s)``: advance one fixed step (vehicles, people, coverage, contacts, boundary, odometry).
``.t_s`` current time (exact: kept as integer nanoseconds ``.t_ns``); ``.robot_names``.
``.set_command(robot, v_mps, w_radps, t_s=None)``: velocity command received at ``t_s`` (default now);
a command older than the vehicle's ``cmd_timeout_s`` (0.5 s) makes the robot brake to zero.
``.set_sections(robot, sections, t_s=None)``: implement section states (nonzero = on), left to right.
``.set_rates(robot, rates, t_s=None)``: commanded section rates (``implement/rate``); the implement applies
them after its metering dead time and lag (``rate_delay_s``, ``rate_time_constant_s``) and the coverage
raster adds the truly applied rate to ``.dose`` of every cell a pass works (ground truth for as-applied).
``.sensors_due() -> list[SensorSample]``: every reading due at the current time, in a fixed order.
``SensorSample(robot, kind, reading)``; kinds and readings: ``odom`` OdomReading (odom frame),
``imu`` ImuReading, ``gnss`` GnssReading, ``scan`` and ``scan_rear`` ScanReading, ``camera`` CameraReading,
``battery`` BatteryReading, ``ground_truth`` TruthReading (map frame), ``coverage`` CoverageReading
(tractor with implement and field), ``people`` PeopleReading (``robot`` is None).
``.pose(robot) -> ndarray (3,)`` true pose; ``.velocity(robot) -> (v_mps, w_radps)``.
``.scan(robot, kind="scan") -> ScanReading`` and ``.camera_image(robot) -> (H, W, 3) uint8`` rendered on demand.
``.row_error(robot) -> RowError | None``: true lateral offset/heading to the nearest crop row (below).
``.coverage[robot] -> CoverageRaster``; ``.coverage_ratios(robot) -> (covered_ratio, double_ratio)``.
``.contacts -> list[ContactEvent]`` and ``.boundary_violations -> list[BoundaryViolation]`` (episodes;
``t_end_s`` is None while still going on).
``.people`` (Crowd), ``.places`` (name -> PlaceSpec), ``.fields`` (name -> FieldSpec), ``.crop_blocks``
(list of CropBlock with ``.rows`` (R, P, 2), ``.plants`` (N, 2), ``.weeds`` (M, 2)), ``.ltp``
(LocalTangentPlane of the datum), ``.terrain_height(x, y)``, ``.terrain_rpy(x, y, yaw)``.

Row truth (``row_error``): the nearest crop row centreline (any block) is found; its direction is taken
along the robot's travel direction (the one within 90 degrees of its heading).
``offset_m`` is the signed distance of base_link from that row, positive when base_link is on the
row's left; ``heading_rad`` is robot yaw minus row direction (positive = turned left of the row);
``lane_offset_m`` is the offset from the middle of the inter-row lane on the robot's side of the row
(the path a robot driving between two rows should hold), positive to the left. ``along_m`` is the
arc length along the row from its start; before or after the block the end segments are extended
straight (``along_m`` < 0 or > length, ``inside_block`` False), so the offset stays lateral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from agricare.core.geodesy import LocalTangentPlane
from agricare.core.sim.camera import CameraRenderer, GroundTexture, camera_matrix
from agricare.core.sim.signs import SignPainter
from agricare.core.sim.terrain import TerrainSurface
from agricare.core.sim.coverage import CoverageRaster
from agricare.core.sim.people import Crowd
from agricare.core.sim.scenarios import CropBlockSpec, ScenarioSpec, load_scenario, parse_scenario
from agricare.core.sim.sensors import (BatteryModel, GnssModel, ImuModel, OdomParams, ScanReading,
                                       WheelOdometry, ray_cast)
from agricare.core.sim.vehicles import make_vehicle

#: a camera with ``sign_range_m`` keeps rendering this long after its robot stopped
CAMERA_STILL_S = 3.0
SENSOR_ORDER = ("odom", "imu", "gnss", "scan", "scan_rear", "camera", "battery")
_SENSOR_CODE = {"odom": 1, "imu": 2, "gnss": 3, "scan": 4, "camera": 5, "battery": 6, "scan_rear": 7}


# -------------------------------------------------------------------------------------------- readings


@dataclass
class SensorSample:
    robot: str | None
    kind: str
    reading: object


@dataclass
class TruthReading:
    """True state: pose in map, body velocities, terrain height and tilt."""

    t_s: float
    x_m: float
    y_m: float
    yaw_rad: float
    v_mps: float
    v_lat_mps: float
    w_radps: float
    z_m: float
    roll_rad: float
    pitch_rad: float


@dataclass
class CoverageReading:
    t_s: float
    covered_ratio: float
    double_ratio: float


@dataclass
class PeopleReading:
    t_s: float
    names: list
    kinds: list
    positions: np.ndarray  # (N, 2) map
    velocities: np.ndarray  # (N, 2) map


@dataclass
class CameraReading:
    t_s: float
    image: np.ndarray  # (H, W, 3) uint8 BGR
    K: np.ndarray  # (3, 3)
    width_px: int
    height_px: int


@dataclass
class ContactEvent:
    """Overlap of a robot footprint with a person, obstacle, building or another robot."""

    robot: str
    other: str
    other_kind: str  # adult | child | obstacle | building | robot
    t_start_s: float
    robot_speed_mps: float
    position_xy: tuple
    t_end_s: float | None = None


@dataclass
class BoundaryViolation:
    """Part of a robot footprint (implement included) outside its field (or inside a hole)."""

    robot: str
    field: str
    t_start_s: float
    max_outside_m: float
    t_end_s: float | None = None


@dataclass
class RowError:
    offset_m: float
    heading_rad: float
    lane_offset_m: float
    row_index: int
    block: str
    along_m: float
    inside_block: bool
    forward: bool = True   # travelling along the block's own row direction

    @property
    def lane_index(self) -> int:
        """Index of the lane (between rows k and k+1 -> k) the robot is in, in the block's own frame."""
        return self.row_index if (self.offset_m >= 0) == self.forward else self.row_index - 1


# ----------------------------------------------------------------------------------------- crop blocks


class CropBlock:
    """Geometry of a crop block: row centrelines, plant and weed positions (seeded)."""

    def __init__(self, spec: CropBlockSpec, rng: np.random.Generator, ds_m: float = 0.1):
        self.spec = spec
        n = max(int(math.ceil(spec.length_m / ds_m)), 1)
        s = np.linspace(0.0, spec.length_m, n + 1)
        k, h0 = spec.curvature_1pm, spec.heading_rad
        if abs(k) < 1e-9:
            ref = np.column_stack([np.cos(h0) * s, np.sin(h0) * s])
            head = np.full_like(s, h0)
        else:
            head = h0 + k * s
            ref = np.column_stack([(np.sin(head) - math.sin(h0)) / k, (math.cos(h0) - np.cos(head)) / k])
        ref += np.asarray(spec.origin)
        normal = np.column_stack([-np.sin(head), np.cos(head)])
        wave = spec.wave_amplitude_m * np.sin(2.0 * math.pi * s / spec.wave_length_m)
        offs = np.arange(spec.rows) * spec.spacing_m
        self.s = s
        self.rows = ref[None, :, :] + normal[None, :, :] * (offs[:, None, None] + wave[None, :, None])
        # plants along each row, jittered, with gaps
        plants, diam = [], []
        for r in range(spec.rows):
            sp = np.arange(0.5 * spec.plant_spacing_m, spec.length_m, spec.plant_spacing_m)
            sp = sp + rng.normal(0.0, 0.05 * spec.plant_spacing_m, len(sp))
            keep = rng.random(len(sp)) >= spec.gap_probability
            lat = rng.normal(0.0, 0.012, len(sp))
            pts = self.point_at(r, sp, lat)
            d = spec.plant_diameter_m * rng.uniform(0.75, 1.2, len(sp))
            plants.append(pts[keep])
            diam.append(d[keep])
        self.plants = np.vstack(plants) if plants else np.zeros((0, 2))
        self.plant_diameters = np.concatenate(diam) if diam else np.zeros(0)
        width = spec.rows * spec.spacing_m
        n_weeds = int(rng.poisson(spec.weed_density_per_m2 * width * spec.length_m))
        ws = rng.uniform(0.0, spec.length_m, n_weeds)
        wl = rng.uniform(-0.5 * spec.spacing_m, width - 0.5 * spec.spacing_m, n_weeds)
        self.weeds = self._point_at_lateral(ws, wl)
        self.weed_diameters = rng.uniform(0.04, 0.12, n_weeds)
        allpts = self.rows.reshape(-1, 2)
        margin = spec.spacing_m
        self.bounds = np.array([allpts.min(axis=0) - margin, allpts.max(axis=0) + margin])

    def _frame_at(self, s):
        s = np.clip(np.asarray(s, dtype=float), 0.0, self.spec.length_m)
        k, h0 = self.spec.curvature_1pm, self.spec.heading_rad
        head = h0 + k * s
        if abs(k) < 1e-9:
            ref = np.column_stack([np.cos(h0) * s, np.sin(h0) * s])
        else:
            ref = np.column_stack([(np.sin(head) - math.sin(h0)) / k, (math.cos(h0) - np.cos(head)) / k])
        ref = ref + np.asarray(self.spec.origin)
        normal = np.column_stack([-np.sin(head), np.cos(head)])
        wave = self.spec.wave_amplitude_m * np.sin(2.0 * math.pi * s / self.spec.wave_length_m)
        return ref, normal, wave

    def _point_at_lateral(self, s, lateral_m):
        ref, normal, wave = self._frame_at(s)
        return ref + normal * (np.asarray(lateral_m)[:, None] + wave[:, None])

    def point_at(self, row: int, s, lateral_m=0.0):
        """Map points at arc length ``s`` (N,) on row ``row`` shifted ``lateral_m`` to its left."""
        s = np.atleast_1d(np.asarray(s, dtype=float))
        lat = np.broadcast_to(np.asarray(lateral_m, dtype=float), s.shape)
        return self._point_at_lateral(s, row * self.spec.spacing_m + lat)


# --------------------------------------------------------------------------------------------- robots


class _Schedule:
    __slots__ = ("robot", "kind", "period_s", "next_t")

    def __init__(self, robot, kind, rate_hz):
        self.robot = robot
        self.kind = kind
        self.period_s = 1.0 / rate_hz
        self.next_t = 0.0


class SimRobot:
    """One simulated robot: vehicle, command, sensors, implement."""

    def __init__(self, world: World, spec, index: int, seed: int):
        self.name = spec.name
        self.type = spec.type
        self.spec = spec
        self.vehicle = make_vehicle(spec.type, spec.vehicle, spec.start)
        self.cmd_v = 0.0
        self.cmd_w = 0.0
        self.cmd_t = -math.inf
        self.cmd_max_age_s = math.inf       # a command older than this (or the vehicle's timeout) is not applied
        self.cmd_expired = 0                # non-zero commands that ran out of date at the wheels (max age)
        self.cmd_was_stale = True
        self.field = world.fields.get(spec.field) if spec.field else None
        self.implement = spec.implement
        self.sections = np.zeros(len(spec.implement.section_widths_m) if spec.implement else 0, np.uint8)
        self.rate_commands: list = []       # (t_s, rates) received, oldest first (metering dead time)
        self.rate_target = None             # the command the metering follows now (None: no rate control)
        self.rate_applied = np.zeros(len(self.sections))   # what the sections truly apply (lagged)

        def rng(kind):
            return np.random.default_rng([seed, index + 1, _SENSOR_CODE[kind]])

        s = spec.sensors
        # odometry always integrates (odom -> base_link TF); publishing depends on the sensor being enabled
        self.odom = WheelOdometry(s.get("odom") or OdomParams(), rng("odom"), spec.type,
                                  getattr(spec.vehicle, "wheelbase_m", 1.0))
        self.imu = ImuModel(s["imu"], rng("imu")) if "imu" in s else None
        self.gnss = GnssModel(s["gnss"], rng("gnss"), world.ltp) if "gnss" in s else None
        self.scan_params = s.get("scan")
        self.scan_rng = rng("scan")
        self.scan_rear_params = s.get("scan_rear")   # the rear-facing scanner (tractor)
        self.scan_rear_rng = rng("scan_rear")
        self.battery = BatteryModel(s["battery"]) if "battery" in s else None
        self.camera = None
        if "camera" in s:
            self.camera = CameraRenderer(s["camera"], world.textures, rng("camera"), terrain=world.terrain)
        # rectangles in base_link: body (+ implement)
        rects = list(self.vehicle.rectangles)
        if self.implement is not None:
            im = self.implement
            half = 0.5 * im.width_m
            rects.append((-im.offset_m - 0.5 * im.depth_m, -im.offset_m + 0.5 * im.depth_m,
                          im.lateral_offset_m - half, im.lateral_offset_m + half))
            widths = np.asarray(im.section_widths_m)
            self.section_edges_y = im.lateral_offset_m + half - np.concatenate([[0.0], np.cumsum(widths)])
        self.rects = np.array(rects, dtype=float)  # (R, 4) x_min, x_max, y_min, y_max
        self.rect_list = [tuple(float(v) for v in rc) for rc in rects]
        r = self.rects
        self._local_corners = np.stack([np.stack([r[:, 0], r[:, 1], r[:, 1], r[:, 0]], axis=1),
                                        np.stack([r[:, 2], r[:, 2], r[:, 3], r[:, 3]], axis=1)],
                                       axis=2).reshape(-1, 2)
        self.bound_radius = float(np.max(np.hypot(np.maximum(np.abs(self.rects[:, 0]), np.abs(self.rects[:, 1])),
                                                  np.maximum(np.abs(self.rects[:, 2]), np.abs(self.rects[:, 3])))))
        self.coverage = None
        self._prev_edges = None
        self._prev_sweep_t = 0.0
        if self.implement is not None and self.field is not None:
            self.coverage = CoverageRaster(self.field.polygon, self.field.holes, self.field.coverage_cell_m)
        self.slip_long = 0.0
        self.slip_lat = 0.0
        self._static_xy = (math.nan, math.nan)
        self._static_budget = 0.0
        self._field_xy = (math.nan, math.nan)
        self._field_budget = 0.0
        self._sections_in = None

    def pose(self) -> np.ndarray:
        v = self.vehicle
        return np.array([v.x_m, v.y_m, v.yaw_rad])

    def corners(self) -> np.ndarray:
        """Footprint corners in map, shape (R, 4, 2) (counter-clockwise per rectangle)."""
        v = self.vehicle
        c, s = math.cos(v.yaw_rad), math.sin(v.yaw_rad)
        out = self._local_corners @ np.array([[c, s], [-s, c]])
        out += (v.x_m, v.y_m)
        return out.reshape(-1, 4, 2)

    def section_edges_map(self) -> np.ndarray:
        """Working-line section edges in map (K+1, 2), left to right."""
        v = self.vehicle
        c, s = math.cos(v.yaw_rad), math.sin(v.yaw_rad)
        lx = -self.implement.offset_m
        ly = self.section_edges_y
        return np.column_stack([v.x_m + c * lx - s * ly, v.y_m + s * lx + c * ly])


# ---------------------------------------------------------------------------------------------- world


class World:
    """Fixed-step 2-D world of a scenario. See the module docstring for the API."""

    def __init__(self, spec: ScenarioSpec, seed: int = 0):
        self.spec = spec
        self.seed = int(seed)
        self.t_ns = 0
        self.step_count = 0
        self.ltp = LocalTangentPlane(spec.datum.lat_deg, spec.datum.lon_deg, spec.datum.alt_m)
        self.fields = {f.name: f for f in spec.fields}
        self.field_shapes = {f.name: Polygon(f.polygon, list(f.holes)) for f in spec.fields}
        for shape in self.field_shapes.values():
            shapely.prepare(shape)
        self.places = {p.name: p for p in spec.places}
        self.roads = list(spec.roads)
        self.crop_blocks = []
        bi = 0
        for f in spec.fields:
            for b in f.crop_blocks:
                self.crop_blocks.append(CropBlock(b, np.random.default_rng([self.seed, 1000 + bi])))
                bi += 1
        self._textures = None
        self.people = Crowd(spec.people)
        self._build_static()
        self.terrain = TerrainSurface(spec.terrain)  # vehicle tilt, GNSS height and the camera's ground
        self.robots: dict[str, SimRobot] = {}
        for i, rs in enumerate(spec.robots):
            self.robots[rs.name] = SimRobot(self, rs, i, self.seed)
        self.robot_names = list(self.robots)
        self.coverage = {n: r.coverage for n, r in self.robots.items() if r.coverage is not None}
        self.contacts: list[ContactEvent] = []
        self.boundary_violations: list[BoundaryViolation] = []
        self._open_contacts: dict = {}
        self._open_violations: dict = {}
        gt = spec.ground_truth
        self._schedules = []
        self.camera_frames: dict[str, int] = {}   # frames rendered per robot (figures: what the cameras cost)
        for name, r in self.robots.items():
            for kind in SENSOR_ORDER:
                p = r.spec.sensors.get(kind)
                if p is not None:
                    self._schedules.append(_Schedule(name, kind, p.rate_hz))
            self._schedules.append(_Schedule(name, "ground_truth", gt.odom_rate_hz))
            if r.coverage is not None:
                self._schedules.append(_Schedule(name, "coverage", gt.coverage_rate_hz))
        self._schedules.append(_Schedule(None, "people", gt.people_rate_hz))

    # ------------------------------------------------------------------------------------ construction

    @classmethod
    def from_scenario(cls, cfg, seed: int = 0) -> World:
        """World from a scenario dict (validated here) or an already parsed ``ScenarioSpec``."""
        spec = cfg if isinstance(cfg, ScenarioSpec) else parse_scenario(cfg)
        return cls(spec, seed)

    @classmethod
    def from_file(cls, path, seed: int = 0) -> World:
        return cls(load_scenario(path), seed)

    def _build_static(self):
        self.signs = None   # ArUco signs at the boarding points (drawn into camera images)
        if self.spec.boarding_signs is not None:
            bs = self.spec.boarding_signs
            self.signs = SignPainter(bs, [(bs.id_base + i, pl.boarding) for i, pl in enumerate(self.spec.places)
                                          if pl.boarding is not None])
        seg_a, seg_b, self.static_polys = [], [], []
        for p in self.spec.places:
            if p.footprint is not None:
                self.static_polys.append((p.name, "building", p.footprint))
        circ_c, circ_r, circ_n = [], [], []
        for o in self.spec.obstacles:
            if o.polygon is not None:
                self.static_polys.append((o.name, "obstacle", o.polygon))
            else:
                circ_c.append(o.center)
                circ_r.append(o.radius_m)
                circ_n.append(o.name)
        for _, _, poly in self.static_polys:
            seg_a.append(poly)
            seg_b.append(np.roll(poly, -1, axis=0))
        self.static_seg_a = np.vstack(seg_a) if seg_a else np.zeros((0, 2))
        self.static_seg_b = np.vstack(seg_b) if seg_b else np.zeros((0, 2))
        self.static_circ_c = np.asarray(circ_c, dtype=float).reshape(-1, 2)
        self.static_circ_r = np.asarray(circ_r, dtype=float)
        self.static_circ_names = circ_n
        self._poly_shapes = [Polygon(p) for _, _, p in self.static_polys]
        self._static_union = shapely.union_all(self._poly_shapes) if self._poly_shapes else None
        blds = [Polygon(p) for _, kind, p in self.static_polys if kind == "building"]
        self._buildings = shapely.union_all(blds) if blds else None
        if self._static_union is not None:
            shapely.prepare(self._static_union)
        self._poly_centers = np.array([p.mean(axis=0) for _, _, p in self.static_polys]).reshape(-1, 2)
        self._poly_radii = np.array([np.max(np.hypot(*(p - p.mean(axis=0)).T)) for _, _, p in self.static_polys])

    def distance_to_buildings(self, x_m: float, y_m: float) -> float:
        """Distance (m) from a point to the nearest building footprint (inf without buildings)."""
        if self._buildings is None:
            return math.inf
        return float(shapely.distance(self._buildings, shapely.Point(x_m, y_m)))

    def textures(self) -> list:
        """Ground textures of the crop blocks (painted on first use, shared by all cameras)."""
        if self._textures is None:
            self._textures = []
            for i, b in enumerate(self.crop_blocks):
                rng = np.random.default_rng([self.seed, 2000 + i])
                margin = 4.0
                bounds = b.bounds + np.array([[-margin, -margin], [margin, margin]])
                tex = GroundTexture(bounds, b.spec.texture_resolution_m, rng)
                sun, shadow = math.radians(220.0), 0.12
                tex.paint_plants(b.weeds, b.weed_diameters, rng, sun, 0.5 * shadow, weed=True)
                tex.paint_plants(b.plants, b.plant_diameters, rng, sun, shadow)
                self._textures.append(tex)
        return self._textures

    # ---------------------------------------------------------------------------------------- state

    @property
    def t_s(self) -> float:
        return self.t_ns * 1e-9

    def pose(self, robot: str) -> np.ndarray:
        return self.robots[robot].pose()

    def velocity(self, robot: str) -> tuple[float, float]:
        v = self.robots[robot].vehicle
        return v.v_mps, v.w_radps

    def terrain_height(self, x_m, y_m):
        return self.terrain.height(x_m, y_m)

    def terrain_rpy(self, x_m: float, y_m: float, yaw_rad: float) -> tuple[float, float]:
        """Roll and pitch (rad, REP-103) of a vehicle standing on the terrain with heading ``yaw_rad``."""
        return self.terrain.rpy(x_m, y_m, yaw_rad)

    # ------------------------------------------------------------------------------------- commands

    def set_command(self, robot: str, v_mps: float, w_radps: float, t_s: float | None = None,
                    max_age_s: float | None = None) -> None:
        """Velocity command (what cmd_vel carries) made at ``t_s`` (default: now). NaN/inf -> stop. It is applied
        while younger than the vehicle's ``cmd_timeout_s`` and ``max_age_s`` (if given), then the robot brakes."""
        r = self.robots[robot]
        if not (math.isfinite(v_mps) and math.isfinite(w_radps)):
            v_mps, w_radps = 0.0, 0.0
        r.cmd_v, r.cmd_w = float(v_mps), float(w_radps)
        r.cmd_t = self.t_s if t_s is None else float(t_s)
        r.cmd_max_age_s = math.inf if max_age_s is None else float(max_age_s)

    def command_stale(self, robot: str, t_s: float | None = None) -> bool:
        """True when the robot's command is too old to be applied at ``t_s`` (default now): the wheels brake."""
        r = self.robots[robot]
        t = self.t_s if t_s is None else t_s
        return t - r.cmd_t > min(r.vehicle.params.cmd_timeout_s, r.cmd_max_age_s)

    def set_sections(self, robot: str, sections, t_s: float | None = None) -> None:
        """Implement section states (left to right, nonzero = on); extra entries ignored, missing = off."""
        r = self.robots[robot]
        key = tuple(sections)
        if key == r._sections_in:
            return
        r._sections_in = key
        n = len(r.sections)
        vals = np.zeros(n, np.uint8)
        src = np.asarray(list(sections), dtype=float).ravel()[:n]
        vals[:len(src)] = (src != 0)
        if r.coverage is not None and not np.array_equal(vals, r.sections):
            self._sweep(r, self.t_s, force=True)
        r.sections = vals

    def set_rates(self, robot: str, rates, t_s: float | None = None) -> None:
        """Commanded section rates (left to right; extra ignored, missing = 0) received at ``t_s`` (default
        now); the implement applies them ``rate_delay_s`` later through a first-order lag."""
        r = self.robots[robot]
        n = len(r.sections)
        vals = np.zeros(n)
        src = np.asarray(list(rates), dtype=float).ravel()[:n]
        vals[:len(src)] = np.where(np.isfinite(src), np.maximum(src, 0.0), 0.0)
        r.rate_commands.append((self.t_s if t_s is None else float(t_s), vals))

    def _step_rates(self, r: SimRobot, t: float, dt_s: float) -> None:
        im = r.implement
        q = r.rate_commands
        while q and q[0][0] <= t - im.rate_delay_s:     # commands past the dead time reach the metering
            r.rate_target = q.pop(0)[1]
        if r.rate_target is None:
            return
        a = 1.0 if im.rate_time_constant_s <= 0 else 1.0 - math.exp(-dt_s / im.rate_time_constant_s)
        r.rate_applied += a * (r.rate_target - r.rate_applied)

    # ----------------------------------------------------------------------------------------- step

    def step(self, dt_s: float) -> None:
        """Advance the world by one fixed step of ``dt_s`` seconds."""
        if not (dt_s > 0 and math.isfinite(dt_s)):
            raise ValueError(f"dt_s must be > 0, got {dt_s!r}")
        t_now = self.t_s
        check_soil = self.step_count % 10 == 0
        for r in self.robots.values():
            veh = r.vehicle
            stale = t_now - r.cmd_t > min(veh.params.cmd_timeout_s, r.cmd_max_age_s)
            if stale and not r.cmd_was_stale and (r.cmd_v or r.cmd_w) and math.isfinite(r.cmd_max_age_s):
                r.cmd_expired += 1          # a moving decision ran out of date before the next one came
            r.cmd_was_stale = stale
            if check_soil:
                self._update_slip(r)
            veh.step(dt_s, r.cmd_v, r.cmd_w, r.slip_long, r.slip_lat, brake=stale)
            r.odom.integrate(dt_s, veh.wheel_v_mps, veh.wheel_w_radps)
            if r.battery is not None:
                r.battery.integrate(dt_s, veh.wheel_v_mps, veh.accel_mps2)
        self.t_ns += int(round(dt_s * 1e9))
        self.step_count += 1
        t = self.t_s
        if len(self.people):
            self.people.update(t)
        for r in self.robots.values():
            if r.coverage is not None:
                if r.rate_commands or r.rate_target is not None:
                    self._step_rates(r, t, dt_s)
                self._sweep(r, t)
        self._check_contacts(t)
        self._check_boundaries(t)

    def _update_slip(self, r: SimRobot):
        terr = self.spec.terrain
        x, y = r.vehicle.x_m, r.vehicle.y_m
        on_soil = any(bool(shapely.contains_xy(shape, x, y)) for shape in self.field_shapes.values())
        r.slip_long = terr.soil_slip_long_ratio if on_soil else 0.0
        r.slip_lat = terr.soil_slip_lat_gain_s if on_soil else 0.0

    def _sweep(self, r: SimRobot, t: float, force: bool = False):
        """Fill the area swept by the active sections since the last sweep.

        Sweeps are batched until the working line moved one cell (or 0.2 s passed) to save time;
        ``force`` flushes (before the section states change)."""
        prev = r._prev_edges
        if prev is None:
            r._prev_edges = r.section_edges_map()
            r._prev_sweep_t = t
            return
        if not force and t - r._prev_sweep_t < 0.2:
            v = r.vehicle
            c, s = math.cos(v.yaw_rad), math.sin(v.yaw_rad)
            lx = -r.implement.offset_m
            y0, y1 = r.section_edges_y[0], r.section_edges_y[-1]
            moved = max(abs(v.x_m + c * lx - s * y0 - prev[0, 0]) + abs(v.y_m + s * lx + c * y0 - prev[0, 1]),
                        abs(v.x_m + c * lx - s * y1 - prev[-1, 0]) + abs(v.y_m + s * lx + c * y1 - prev[-1, 1]))
            if moved < r.coverage.cell_m:
                return
        edges = r.section_edges_map()
        r._prev_edges = edges
        r._prev_sweep_t = t
        if not r.sections.any():
            return
        if r.rate_target is not None:
            # rate control: one quad per active section, each with the rate it truly applies now
            on = np.flatnonzero(r.sections)
            quads = np.stack([prev[on], prev[on + 1], edges[on + 1], edges[on]], axis=1)
            r.coverage.sweep(quads, t, values=r.rate_applied[on])
            return
        # adjacent active sections share edges on the (straight) working line: one quad per run of them
        sec = r.sections
        starts = [i for i in range(len(sec)) if sec[i] and (i == 0 or not sec[i - 1])]
        ends = [i + 1 for i in range(len(sec)) if sec[i] and (i == len(sec) - 1 or not sec[i + 1])]
        quads = np.stack([prev[starts], prev[ends], edges[ends], edges[starts]], axis=1)
        r.coverage.sweep(quads, t)

    def _check_contacts(self, t: float):
        current = {}
        robots = list(self.robots.values())
        for i, r in enumerate(robots):
            veh = r.vehicle
            x, y, c, s = veh.x_m, veh.y_m, math.cos(veh.yaw_rad), math.sin(veh.yaw_rad)
            # static things are only checked once the robot may have used up its clearance to them
            static_due = self._static_check_due(r, x, y)
            # people (few): plain Python is cheaper than numpy here
            ppl = self.people
            for j, (px, py) in enumerate(ppl.position_list):
                dx, dy = px - x, py - y
                rad = ppl.radius_list[j]
                if dx * dx + dy * dy > (r.bound_radius + rad) ** 2:
                    continue
                lx, ly = c * dx + s * dy, -s * dx + c * dy
                for x0, x1, y0, y1 in r.rect_list:
                    qx, qy = min(max(lx, x0), x1), min(max(ly, y0), y1)
                    if (lx - qx) ** 2 + (ly - qy) ** 2 < rad * rad:
                        current[(r.name, ppl.names[j])] = ppl.kinds[j]
            # circular obstacles
            for centers, radii, names, kinds in (
                    (self.static_circ_c, self.static_circ_r, self.static_circ_names, None),):
                if len(radii) == 0 or not static_due:
                    continue
                dx = centers[:, 0] - x
                dy = centers[:, 1] - y
                near = np.hypot(dx, dy) <= r.bound_radius + radii
                if not near.any():
                    continue
                lx = c * dx + s * dy
                ly = -s * dx + c * dy
                for rect in r.rects:
                    qx = np.clip(lx, rect[0], rect[1])
                    qy = np.clip(ly, rect[2], rect[3])
                    hit = near & (np.hypot(lx - qx, ly - qy) < radii)
                    for j in np.flatnonzero(hit):
                        kind = kinds[j] if kinds is not None else "obstacle"
                        current[(r.name, names[j])] = kind
            if len(robots) == 1 and not static_due:
                continue
            # polygons (buildings, obstacles) and other robots, with a bounding-circle broad phase
            shape = None
            if len(self._poly_radii) and static_due:
                d = np.hypot(self._poly_centers[:, 0] - x, self._poly_centers[:, 1] - y)
                for j in np.flatnonzero(d <= r.bound_radius + self._poly_radii):
                    shape = shape or self._robot_shape(r)
                    if shape.intersects(self._poly_shapes[j]):
                        name, kind, _ = self.static_polys[j]
                        current[(r.name, name)] = kind
            for other in robots[i + 1:]:
                ov = other.vehicle
                if math.hypot(ov.x_m - x, ov.y_m - y) <= r.bound_radius + other.bound_radius:
                    shape = shape or self._robot_shape(r)
                    if shape.intersects(self._robot_shape(other)):
                        current[(r.name, other.name)] = "robot"
                        current[(other.name, r.name)] = "robot"
        for key, kind in current.items():
            if key not in self._open_contacts:
                r = self.robots[key[0]]
                ev = ContactEvent(key[0], key[1], kind, t, abs(r.vehicle.v_mps), (r.vehicle.x_m, r.vehicle.y_m))
                self._open_contacts[key] = ev
                self.contacts.append(ev)
        for key in [k for k in self._open_contacts if k not in current]:
            self._open_contacts.pop(key).t_end_s = t

    def _static_check_due(self, r: SimRobot, x: float, y: float) -> bool:
        """False while the robot is still within the clearance to every static obstacle it had at the last
        check (nothing static can touch it then); refreshes that clearance when it is used up."""
        if r._static_budget > 0.0 and math.hypot(x - r._static_xy[0], y - r._static_xy[1]) < r._static_budget:
            return False
        clear = math.inf
        if len(self.static_circ_r):
            clear = float(np.min(np.hypot(self.static_circ_c[:, 0] - x, self.static_circ_c[:, 1] - y)
                                 - self.static_circ_r))
        if self._static_union is not None:
            clear = min(clear, float(shapely.distance(self._static_union, shapely.Point(x, y))))
        budget = clear - r.bound_radius
        r._static_xy = (x, y)
        r._static_budget = budget if budget > 0.05 else 0.0
        return r._static_budget == 0.0

    def _robot_shape(self, r: SimRobot):
        polys = [Polygon(c) for c in r.corners()]
        return polys[0] if len(polys) == 1 else MultiPolygon(polys)

    def _check_boundaries(self, t: float):
        for r in self.robots.values():
            if r.field is None:
                continue
            x, y = r.vehicle.x_m, r.vehicle.y_m
            if r._field_budget > 0.0 and math.hypot(x - r._field_xy[0], y - r._field_xy[1]) < r._field_budget:
                continue  # still well inside (no open violation while a budget is held)
            shape = self.field_shapes[r.field.name]
            pts = r.corners().reshape(-1, 2)
            inside = shapely.contains_xy(shape, pts[:, 0], pts[:, 1])
            key = r.name
            if inside.all():
                ev = self._open_violations.pop(key, None)
                if ev is not None:
                    ev.t_end_s = t
                budget = float(shapely.distance(shape.boundary, shapely.Point(x, y))) - r.bound_radius
                r._field_xy = (x, y)
                r._field_budget = budget if budget > 0.05 and shapely.contains_xy(shape, x, y) else 0.0
                continue
            r._field_budget = 0.0
            out_pts = pts[~inside]
            dist = float(np.max(shapely.distance(shape, shapely.points(out_pts[:, 0], out_pts[:, 1]))))
            ev = self._open_violations.get(key)
            if ev is None:
                ev = BoundaryViolation(r.name, r.field.name, t, float(dist))
                self._open_violations[key] = ev
                self.boundary_violations.append(ev)
            else:
                ev.max_outside_m = max(ev.max_outside_m, float(dist))

    # --------------------------------------------------------------------------------------- sensors

    def park(self, robot: str) -> None:
        """Switch a robot off: zero command, its sensors stop (its true pose is still published).

        With ``run.park_when_done`` the runner parks a robot whose mission is done and takes its nodes out of the
        executor: the farm's row robot then costs nothing (no camera frames rendered, no crop-row detection, no
        growth map) while the tractor works on. A simulation saving only, like the care cameras'
        :data:`CAMERA_STILL_S`: a real robot's sensors stream until it is switched off."""
        self.set_command(robot, 0.0, 0.0)
        self._schedules = [s for s in self._schedules if s.robot != robot or s.kind in ("ground_truth", "coverage")]

    def sensors_due(self) -> list[SensorSample]:
        """Readings due at the current time (each schedule fires at most once per call)."""
        t = self.t_s
        out = []
        for sch in self._schedules:
            if t + 1e-9 < sch.next_t:
                continue
            while sch.next_t <= t + 1e-9:
                sch.next_t += sch.period_s
            if sch.kind == "camera":
                if not self._camera_wanted(sch.robot):
                    continue
                self.camera_frames[sch.robot] = self.camera_frames.get(sch.robot, 0) + 1
            out.append(SensorSample(sch.robot, sch.kind, self._read(sch.robot, sch.kind, t)))
        return out

    def _camera_wanted(self, robot: str) -> bool:
        """A camera with ``sign_range_m`` renders only while a boarding sign is in range and in view, and the robot
        moves or stopped less than ``CAMERA_STILL_S`` ago (docking is checked once it stands still; the frames of a
        shuttle parked at the sign while children board would all be the same).

        A simulation saving only: a real camera streams all the time, and the nodes must not rely on frames
        stopping (they do not: the marker check keeps its last fix while the estimate stands still)."""
        r = self.robots[robot]
        rng = r.camera.params.sign_range_m
        if rng <= 0.0:
            return True
        veh = r.vehicle
        if abs(veh.v_mps) > 0.01 or abs(veh.w_radps) > 0.01:
            r.camera_moving_t = self.t_s
        if self.t_s - getattr(r, "camera_moving_t", -math.inf) > CAMERA_STILL_S:
            return False
        return self.signs is not None and self.signs.any_in_view(r.camera.params, r.pose(), rng)

    def _read(self, name, kind, t):
        if kind == "people":
            return PeopleReading(t, list(self.people.names), list(self.people.kinds),
                                 self.people.positions.copy(), self.people.velocities.copy())
        r = self.robots[name]
        veh = r.vehicle
        if kind == "odom":
            return r.odom.read(t)
        if kind == "imu":
            roll, pitch = self.terrain_rpy(veh.x_m, veh.y_m, veh.yaw_rad)
            return r.imu.read(t, roll, pitch, veh.yaw_rad, veh.w_radps, veh.accel_mps2, veh.v_mps)
        if kind == "gnss":
            gp = r.gnss.params
            c, s = math.cos(veh.yaw_rad), math.sin(veh.yaw_rad)
            ax = veh.x_m + c * gp.antenna_x_m - s * gp.antenna_y_m
            ay = veh.y_m + s * gp.antenna_x_m + c * gp.antenna_y_m
            urban = gp.urban_range_m > 0.0 and self.distance_to_buildings(ax, ay) <= gp.urban_range_m
            return r.gnss.read(t, ax, ay, float(self.terrain_height(ax, ay)) + gp.antenna_height_m, urban=urban)
        if kind in ("scan", "scan_rear"):
            return self.scan(name, kind)
        if kind == "camera":
            return CameraReading(t, self.camera_image(name), r.camera.K.copy(), r.camera.params.width_px,
                                 r.camera.params.height_px)
        if kind == "battery":
            return r.battery.read(t)
        if kind == "ground_truth":
            roll, pitch = self.terrain_rpy(veh.x_m, veh.y_m, veh.yaw_rad)
            return TruthReading(t, veh.x_m, veh.y_m, veh.yaw_rad, veh.v_mps, veh.v_lat_mps, veh.w_radps,
                                float(self.terrain_height(veh.x_m, veh.y_m)), roll, pitch)
        if kind == "coverage":
            cov, dbl = r.coverage.ratios()
            return CoverageReading(t, cov, dbl)
        raise KeyError(kind)

    def scan(self, robot: str, kind: str = "scan") -> ScanReading:
        """Ray-cast the robot's lidar now (buildings, obstacles, people, other robots); ``kind`` ``"scan_rear"``:
        its rear-facing one."""
        r = self.robots[robot]
        if kind not in ("scan", "scan_rear"):
            raise KeyError(f"no laser scanner kind {kind!r}")
        p = getattr(r, f"{kind}_params")
        if p is None:
            raise KeyError(f"robot {robot!r} has no {kind} sensor")
        veh = r.vehicle
        c, s = math.cos(veh.yaw_rad), math.sin(veh.yaw_rad)
        ox = veh.x_m + c * p.mount_x_m - s * p.mount_y_m
        oy = veh.y_m + s * p.mount_x_m + c * p.mount_y_m
        seg_a, seg_b = [self.static_seg_a], [self.static_seg_b]
        for other in self.robots.values():
            if other is r:
                continue
            corners = other.corners()
            seg_a.append(corners.reshape(-1, 2))
            seg_b.append(corners[:, [1, 2, 3, 0], :].reshape(-1, 2))
        circ_c = np.vstack([self.static_circ_c, self.people.positions]) if len(self.people) else self.static_circ_c
        circ_r = np.concatenate([self.static_circ_r, self.people.radii]) if len(self.people) else self.static_circ_r
        angles = p.beam_angles()
        ranges = ray_cast((ox, oy), angles + veh.yaw_rad + p.mount_yaw_rad, np.vstack(seg_a), np.vstack(seg_b),
                          circ_c, circ_r, p.range_max_m)
        if p.noise_std_m > 0:
            ranges = ranges + p.noise_std_m * getattr(r, f"{kind}_rng").standard_normal(len(ranges))
        ranges[ranges < p.range_min_m] = -np.inf
        return ScanReading(self.t_s, p.angle_min_rad, p.angle_increment_rad, p.range_min_m, p.range_max_m,
                           ranges.astype(np.float32))

    def camera_image(self, robot: str) -> np.ndarray:
        """Render the robot's forward camera now, (H, W, 3) uint8 BGR."""
        r = self.robots[robot]
        if r.camera is None:
            raise KeyError(f"robot {robot!r} has no camera")
        img = r.camera.render(r.pose())
        if self.signs is not None:
            self.signs.draw(img, r.camera.K, r.camera.params, r.pose())
        return img

    def camera_matrix(self, robot: str) -> np.ndarray:
        return camera_matrix(self.robots[robot].spec.sensors["camera"])

    # ------------------------------------------------------------------------------------ evaluation

    def coverage_ratios(self, robot: str) -> tuple[float, float]:
        """``(covered_ratio, double_ratio)`` of the robot's field (tractor with implement)."""
        return self.coverage[robot].ratios()

    def row_error(self, robot: str) -> RowError | None:
        """True offset and heading of a robot relative to the nearest crop row (None without crop rows)."""
        if not self.crop_blocks:
            return None
        veh = self.robots[robot].vehicle
        p = np.array([veh.x_m, veh.y_m])
        best = None
        for b in self.crop_blocks:
            a = b.rows[:, :-1, :].reshape(-1, 2)
            e = (b.rows[:, 1:, :] - b.rows[:, :-1, :]).reshape(-1, 2)
            L2 = np.einsum("ij,ij->i", e, e)
            u_free = np.einsum("ij,ij->i", p - a, e) / np.where(L2 > 0, L2, 1.0)
            q = a + e * np.clip(u_free, 0.0, 1.0)[:, None]
            d = np.hypot(*(p - q).T)
            k = int(np.argmin(d))
            if best is None or d[k] < best[0]:
                best = (float(d[k]), b, k, a[k], e[k], float(u_free[k]))
        _, b, k, q, e, u = best  # q: start of the nearest segment; offsets are to its (extended) line
        n_seg = b.rows.shape[1] - 1
        row, seg = divmod(k, n_seg)
        tangent = e / (np.linalg.norm(e) + 1e-12)
        row_dir = math.atan2(tangent[1], tangent[0])
        dpsi = (veh.yaw_rad - row_dir + math.pi) % (2 * math.pi) - math.pi
        forward = abs(dpsi) <= math.pi / 2
        if not forward:
            tangent = -tangent
            row_dir += math.pi
            dpsi = (veh.yaw_rad - row_dir + math.pi) % (2 * math.pi) - math.pi
        off = float(tangent[0] * (p[1] - q[1]) - tangent[1] * (p[0] - q[0]))
        half = 0.5 * b.spec.spacing_m
        lane = off - math.copysign(half, off) if off != 0 else -half
        along = float(b.s[seg] + u * (b.s[seg + 1] - b.s[seg]))  # < 0 or > length outside the block
        inside = 0.0 < along < b.spec.length_m
        return RowError(off, float(dpsi), float(lane), int(row), b.spec.name, along, bool(inside), bool(forward))
