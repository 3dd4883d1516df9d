"""Scenario files of the embedded simulator: load, validate, and turn into typed specs.

A scenario YAML has four top-level keys: ``world`` and ``robots`` (read here), ``nodes`` and ``mission``
(read by the bring-up, ignored here). Angles in YAML are in degrees (keys ending ``_deg``), everything else
SI. Map frame: x east, y north, metres from the datum.

Schema (``?`` = optional, with default)::

    world:
      name: str
      datum: {lat_deg, lon_deg, alt_m?: 0}
      terrain?: {slope_x?: 0, slope_y?: 0, undulation_amplitude_m?: 0, undulation_wavelength_m?: 30,
                 soil_slip_long_ratio?: 0.03, soil_slip_lat_gain_s?: 0.02}       # dz/dx, dz/dy
      fields?: - {name, polygon: [[x, y], ...], holes?: [[[x, y], ...], ...], coverage_cell_m?: 0.1,
                  crop_blocks?: - {name, origin: [x, y], heading_deg, rows, spacing_m, length_m,
                                   plant_spacing_m?: 0.3, plant_diameter_m?: 0.22, gap_probability?: 0.05,
                                   weed_density_per_m2?: 0.3, curvature_1pm?: 0, wave_amplitude_m?: 0,
                                   wave_length_m?: 15, texture_resolution_m?: 0.01}}
      roads?: - {name, polyline: [[x, y], ...], width_m}
      places?: - {name, kind: home|nursery|clinic|depot|other, xy: [x, y], footprint?: [[x, y], ...],
                  boarding: {x_m, y_m, yaw_deg?: 0}}
      obstacles?: - {name, circle: {center: [x, y], radius_m}} | {name, polygon: [[x, y], ...]}
      people?: - {name, kind?: adult|child, radius_m?, speed_mps?: 1.2 (child 1.0), path: [[x, y], ...],
                  mode?: pingpong|loop|once, start_delay_s?: 0, pause_s?: 0}
      ground_truth?: {odom_rate_hz?: 50, people_rate_hz?: 10, coverage_rate_hz?: 1}
      boarding_signs?: {id_base?: 10, length_m?: 0.5, ahead_m?: 5.0, left_m?: 1.6, height_m?: 1.2,
                        dictionary?: DICT_4X4_50}   ArUco signs at the places' boarding points (camera images)
    robots:
      - name: str (ROS namespace)
        type: tractor | row_robot | care_shuttle
        start: {x_m, y_m, yaw_deg?: 0}
        field?: name of the field it works in (coverage + boundary violations)
        vehicle?: {<TractorParams / DiffDriveParams field>: value}
        implement?: {section_widths_m: [..], offset_m?: 1.5, depth_m?: 0.6, lateral_offset_m?: 0,   # tractor
                     rate_delay_s?: 0.3, rate_time_constant_s?: 0.6}   # metering of implement/rate
        sensors?: {odom|imu|gnss|scan|scan_rear|camera|battery: {<params field>: value} | false}
          (scan_rear: the tractor's rear-facing safety scanner, topic scan_rear, frame laser_rear)
          angles in sensor params are given in degrees: hfov_deg, pitch_deg, fov_deg, mount_yaw_deg, ...
          gnss.outages: [[t_start_s, t_end_s], ...]
    nodes: [...]     # bring-up (not read here)
    mission: {...}   # bring-up (not read here)

Public API
----------
``load_scenario(path) -> ScenarioSpec`` (reads YAML, validates, raises ``ScenarioError``).
``parse_scenario(cfg: dict) -> ScenarioSpec`` (validates an already loaded dict).
``ScenarioError``: ``ValueError`` with one line naming the bad key path and value.
``scenario_dict(robots, **world_sections) -> dict``: a minimal scenario dict (datum 36.1 N 140.1 E, no
terrain slope) for tests and closed-loop experiments, e.g.
``scenario_dict([{"name": "r", "type": "row_robot", "start": {"x_m": 0, "y_m": 0}}], obstacles=[...])``.
Spec dataclasses: ``ScenarioSpec``, ``Datum``, ``Terrain``, ``FieldSpec``, ``CropBlockSpec``, ``RoadSpec``,
``PlaceSpec``, ``ObstacleSpec``, ``RobotSpec``, ``ImplementSpec``, ``GroundTruthRates``.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass, field

import numpy as np
import yaml
from shapely.geometry import LineString, Polygon
from shapely.validation import explain_validity

from agricare.core.mounts import MOUNTS
from agricare.core.perception.markers import BoardingSigns
from agricare.core.sim.camera import CameraParams
from agricare.core.sim.people import PERSON_KINDS, PERSON_MODES, PersonSpec
from agricare.core.sim.sensors import BatteryParams, GnssParams, ImuParams, OdomParams, ScanParams
from agricare.core.sim.vehicles import vehicle_params_from_dict

ROBOT_TYPES = ("tractor", "row_robot", "care_shuttle")
PLACE_KINDS = ("home", "nursery", "clinic", "depot", "other")
SENSOR_TYPES = {"odom": OdomParams, "imu": ImuParams, "gnss": GnssParams, "scan": ScanParams,
                "scan_rear": ScanParams, "camera": CameraParams, "battery": BatteryParams}


class ScenarioError(ValueError):
    """A scenario file or dict is invalid; the message is one line naming the key path."""


# ----------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Datum:
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0


@dataclass(frozen=True)
class Terrain:
    """Ground height ``z = slope_x*x + slope_y*y + A*sin(2 pi x/L)*sin(2 pi y/L)``; slip inside fields."""

    slope_x: float = 0.0
    slope_y: float = 0.0
    undulation_amplitude_m: float = 0.0
    undulation_wavelength_m: float = 30.0
    soil_slip_long_ratio: float = 0.03
    soil_slip_lat_gain_s: float = 0.02


@dataclass(frozen=True)
class CropBlockSpec:
    """Parallel crop rows. Row 0 starts at ``origin``; rows are stacked to the left of ``heading``."""

    name: str
    origin: tuple
    heading_rad: float
    rows: int
    spacing_m: float
    length_m: float
    plant_spacing_m: float = 0.3
    plant_diameter_m: float = 0.22
    gap_probability: float = 0.05
    weed_density_per_m2: float = 0.3
    curvature_1pm: float = 0.0
    wave_amplitude_m: float = 0.0
    wave_length_m: float = 15.0
    texture_resolution_m: float = 0.01


@dataclass(frozen=True)
class FieldSpec:
    name: str
    polygon: np.ndarray
    holes: tuple = ()
    coverage_cell_m: float = 0.1
    crop_blocks: tuple = ()


@dataclass(frozen=True)
class RoadSpec:
    name: str
    polyline: np.ndarray
    width_m: float


@dataclass(frozen=True)
class PlaceSpec:
    name: str
    kind: str
    xy: tuple
    footprint: np.ndarray | None
    boarding: tuple  # (x_m, y_m, yaw_rad)


@dataclass(frozen=True)
class ObstacleSpec:
    name: str
    center: tuple | None = None
    radius_m: float = 0.0
    polygon: np.ndarray | None = None


@dataclass(frozen=True)
class ImplementSpec:
    """Implement behind the rear axle; sections are numbered from left to right (driving direction)."""

    section_widths_m: tuple
    offset_m: float = 1.5
    depth_m: float = 0.6
    lateral_offset_m: float = 0.0
    rate_delay_s: float = 0.3           # metering: dead time and first-order lag of the commanded rate
    rate_time_constant_s: float = 0.6   # (``implement/rate``) before it is truly applied on the ground

    @property
    def width_m(self) -> float:
        return float(sum(self.section_widths_m))


@dataclass(frozen=True)
class RobotSpec:
    name: str
    type: str
    start: tuple  # (x_m, y_m, yaw_rad)
    vehicle: object
    sensors: dict  # kind -> params dataclass (only enabled ones)
    field: str | None = None
    implement: ImplementSpec | None = None


@dataclass(frozen=True)
class GroundTruthRates:
    odom_rate_hz: float = 50.0
    people_rate_hz: float = 10.0
    coverage_rate_hz: float = 1.0


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    datum: Datum
    terrain: Terrain = Terrain()
    fields: tuple = ()
    roads: tuple = ()
    places: tuple = ()
    obstacles: tuple = ()
    people: tuple = ()
    robots: tuple = ()
    ground_truth: GroundTruthRates = GroundTruthRates()
    boarding_signs: BoardingSigns | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)


# --------------------------------------------------------------------------------------------- helpers


def _fail(path: str, msg: str):
    raise ScenarioError(f"{path}: {msg}")


def _mapping(value, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, f"expected a mapping, got {type(value).__name__} {value!r:.60}")
    return value


def _list(value, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(path, f"expected a list, got {type(value).__name__} {value!r:.60}")
    return value


def _known(d: dict, allowed, path: str):
    for key in d:
        if key not in allowed:
            _fail(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _req(d: dict, key: str, path: str):
    if key not in d or d[key] is None:
        _fail(f"{path}.{key}", "missing")
    return d[key]


def _num(value, path: str, lo=None, hi=None, lo_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        _fail(path, f"expected a finite number, got {value!r:.60}")
    v = float(value)
    if lo is not None and (v < lo or (lo_open and v <= lo)):
        _fail(path, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        _fail(path, f"must be <= {hi}, got {v}")
    return v


def _str(value, path: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(path, f"expected a non-empty string, got {value!r:.60}")
    return value


def _points(value, path: str, min_n: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        _fail(path, f"expected a list of [x, y] points, got {value!r:.60}")
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < min_n:
        _fail(path, f"expected a list of at least {min_n} [x, y] points, got {value!r:.60}")
    if not np.all(np.isfinite(arr)):
        _fail(path, "points must be finite")
    return arr


def _polygon(value, path: str) -> np.ndarray:
    arr = _points(value, path, 3)
    if len(arr) > 3 and np.allclose(arr[0], arr[-1]):
        arr = arr[:-1]
    poly = Polygon(arr)
    if not poly.is_valid:
        _fail(path, f"bad polygon: {explain_validity(poly)}")
    if poly.area <= 1e-9:
        _fail(path, "bad polygon: zero area")
    return arr


def _xy(value, path: str) -> tuple:
    arr = _points([value] if value is not None else None, path, 1)
    return (float(arr[0, 0]), float(arr[0, 1]))


def _pose(d, path: str) -> tuple:
    d = _mapping(d, path)
    _known(d, {"x_m", "y_m", "yaw_deg"}, path)
    return (_num(_req(d, "x_m", path), f"{path}.x_m"), _num(_req(d, "y_m", path), f"{path}.y_m"),
            math.radians(_num(d.get("yaw_deg", 0.0), f"{path}.yaw_deg")))


def _deg_keys_to_rad(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if k.endswith("_deg"):
            out[k[:-4] + "_rad"] = math.radians(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        else:
            out[k] = v
    return out


def _dataclass_from(cls, d: dict, path: str, defaults=None):
    """Build ``cls`` from a dict (``*_deg`` keys become ``*_rad``); errors name the key path."""
    d = _deg_keys_to_rad(_mapping(d, path))
    names = {f.name: f for f in dataclasses.fields(cls)}
    shown = sorted(n[:-4] + "_deg" if n.endswith("_rad") else n for n in names)
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            shown_key = key[:-4] + "_deg" if key.endswith("_rad") and key[:-4] + "_deg" in shown else key
            _fail(f"{path}.{shown_key}", f"unknown key (allowed: {', '.join(shown)})")
        ftype = names[key].type
        if key == "outages":
            value = tuple(tuple(_num(x, f"{path}.outages", 0.0) for x in _list(iv, f"{path}.outages"))
                          for iv in _list(value, f"{path}.outages"))
        elif ftype in ("int", int):
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(f"{path}.{key}", f"expected an integer, got {value!r:.60}")
        elif ftype in ("bool", bool):
            if not isinstance(value, bool):
                _fail(f"{path}.{key}", f"expected true/false, got {value!r:.60}")
        elif ftype in ("float", float):
            value = _num(value, f"{path}.{key}")
        elif ftype in ("str", str):
            value = _str(value, f"{path}.{key}")
        kwargs[key] = value
    try:
        base = defaults if defaults is not None else cls()
        return dataclasses.replace(base, **kwargs)
    except ValueError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------------- parser

def _mounted(robot_type: str, **more) -> dict:
    """Sensor placement from ``core/mounts.py``, the numbers the URDFs are generated from."""
    m = MOUNTS[robot_type]
    gnss = GnssParams(mode="rtk", antenna_x_m=m.gnss_xyz[0], antenna_y_m=m.gnss_xyz[1],
                      antenna_height_m=m.base_height_m + m.gnss_xyz[2])
    return dict(gnss=gnss, **more)


def _scan(robot_type: str, range_max_m: float, **more) -> ScanParams:
    m = MOUNTS[robot_type]
    return ScanParams(range_max_m=range_max_m, mount_x_m=m.laser_xyz[0], mount_y_m=m.laser_xyz[1],
                      mount_yaw_rad=m.laser_yaw_rad, **more)


def _scan_rear(robot_type: str, range_max_m: float, **more) -> ScanParams:
    m = MOUNTS[robot_type]
    return ScanParams(range_max_m=range_max_m, mount_x_m=m.rear_laser_xyz[0], mount_y_m=m.rear_laser_xyz[1],
                      mount_yaw_rad=m.rear_laser_yaw_rad, **more)


def _camera(robot_type: str, enabled: bool = True) -> CameraParams:
    m = MOUNTS[robot_type]
    return CameraParams(enabled=enabled, mount_x_m=m.camera_xyz[0], mount_y_m=m.camera_xyz[1],
                        mount_height_m=m.base_height_m + m.camera_xyz[2], pitch_rad=m.camera_pitch_rad)


_DEFAULT_SENSORS = {
    "tractor": {"odom": OdomParams(), "imu": ImuParams(), "battery": BatteryParams(capacity_ah=400.0),
                **_mounted("tractor"),
                # the bonnet scanner sees 270 deg ahead and to the sides (the cab blocks the rest, as in the Gazebo
                # model); the rear one 210 deg behind (wider would see the rear wheels): together all round
                "scan": _scan("tractor", 40.0, fov_rad=math.radians(270.0), n_beams=271),
                "scan_rear": _scan_rear("tractor", 40.0, fov_rad=math.radians(210.0), n_beams=211)},
    "row_robot": {"odom": OdomParams(), "imu": ImuParams(), "battery": BatteryParams(capacity_ah=40.0,
                  idle_power_w=30.0, power_per_mps_w=150.0),
                  **_mounted("row_robot"), "scan": _scan("row_robot", 12.0), "camera": _camera("row_robot")},
    "care_shuttle": {"odom": OdomParams(), "imu": ImuParams(), "battery": BatteryParams(capacity_ah=150.0),
                     **_mounted("care_shuttle"), "scan": _scan("care_shuttle", 30.0),
                     "camera": _camera("care_shuttle", enabled=False)},   # on with camera: {enabled: true}
}


def default_sensors(robot_type: str) -> dict:
    """Default sensor parameter set of a robot type (kind -> params)."""
    return dict(_DEFAULT_SENSORS[robot_type])


def _parse_crop_block(d, path) -> CropBlockSpec:
    d = _mapping(d, path)
    allowed = {f.name for f in dataclasses.fields(CropBlockSpec)} - {"heading_rad"} | {"heading_deg"}
    _known(d, allowed, path)
    spec = CropBlockSpec(
        name=_str(_req(d, "name", path), f"{path}.name"),
        origin=_xy(_req(d, "origin", path), f"{path}.origin"),
        heading_rad=math.radians(_num(_req(d, "heading_deg", path), f"{path}.heading_deg")),
        rows=int(_num(_req(d, "rows", path), f"{path}.rows", 1)),
        spacing_m=_num(_req(d, "spacing_m", path), f"{path}.spacing_m", 0.05, lo_open=True),
        length_m=_num(_req(d, "length_m", path), f"{path}.length_m", 0.5, lo_open=True),
        plant_spacing_m=_num(d.get("plant_spacing_m", 0.3), f"{path}.plant_spacing_m", 0.02, lo_open=True),
        plant_diameter_m=_num(d.get("plant_diameter_m", 0.22), f"{path}.plant_diameter_m", 0.01, lo_open=True),
        gap_probability=_num(d.get("gap_probability", 0.05), f"{path}.gap_probability", 0.0, 1.0),
        weed_density_per_m2=_num(d.get("weed_density_per_m2", 0.3), f"{path}.weed_density_per_m2", 0.0),
        curvature_1pm=_num(d.get("curvature_1pm", 0.0), f"{path}.curvature_1pm", -0.2, 0.2),
        wave_amplitude_m=_num(d.get("wave_amplitude_m", 0.0), f"{path}.wave_amplitude_m", 0.0),
        wave_length_m=_num(d.get("wave_length_m", 15.0), f"{path}.wave_length_m", 0.5, lo_open=True),
        texture_resolution_m=_num(d.get("texture_resolution_m", 0.01), f"{path}.texture_resolution_m", 0.002, 0.1),
    )
    return spec


def _parse_field(d, path) -> FieldSpec:
    d = _mapping(d, path)
    _known(d, {"name", "polygon", "holes", "coverage_cell_m", "crop_blocks"}, path)
    poly = _polygon(_req(d, "polygon", path), f"{path}.polygon")
    holes = tuple(_polygon(h, f"{path}.holes[{i}]") for i, h in enumerate(_list(d.get("holes"), f"{path}.holes")))
    shell = Polygon(poly)
    for i, h in enumerate(holes):
        if not shell.contains(Polygon(h)):
            _fail(f"{path}.holes[{i}]", "hole is not inside the field polygon")
    blocks = tuple(_parse_crop_block(b, f"{path}.crop_blocks[{i}]")
                   for i, b in enumerate(_list(d.get("crop_blocks"), f"{path}.crop_blocks")))
    return FieldSpec(name=_str(_req(d, "name", path), f"{path}.name"), polygon=poly, holes=holes,
                     coverage_cell_m=_num(d.get("coverage_cell_m", 0.1), f"{path}.coverage_cell_m", 0.02, 1.0),
                     crop_blocks=blocks)


def _parse_place(d, path) -> PlaceSpec:
    d = _mapping(d, path)
    _known(d, {"name", "kind", "xy", "footprint", "boarding"}, path)
    kind = d.get("kind", "other")
    if kind not in PLACE_KINDS:
        _fail(f"{path}.kind", f"unknown place kind {kind!r} (allowed: {', '.join(PLACE_KINDS)})")
    fp = d.get("footprint")
    return PlaceSpec(name=_str(_req(d, "name", path), f"{path}.name"), kind=kind,
                     xy=_xy(_req(d, "xy", path), f"{path}.xy"),
                     footprint=None if fp is None else _polygon(fp, f"{path}.footprint"),
                     boarding=_pose(_req(d, "boarding", path), f"{path}.boarding"))


def _parse_obstacle(d, path) -> ObstacleSpec:
    d = _mapping(d, path)
    _known(d, {"name", "circle", "polygon"}, path)
    name = _str(_req(d, "name", path), f"{path}.name")
    if ("circle" in d) == ("polygon" in d):
        _fail(path, "an obstacle needs exactly one of 'circle' or 'polygon'")
    if "circle" in d:
        c = _mapping(d["circle"], f"{path}.circle")
        _known(c, {"center", "radius_m"}, f"{path}.circle")
        return ObstacleSpec(name=name, center=_xy(_req(c, "center", f"{path}.circle"), f"{path}.circle.center"),
                            radius_m=_num(_req(c, "radius_m", f"{path}.circle"), f"{path}.circle.radius_m",
                                          0.0, lo_open=True))
    return ObstacleSpec(name=name, polygon=_polygon(d["polygon"], f"{path}.polygon"))


def _parse_person(d, path) -> PersonSpec:
    d = _mapping(d, path)
    _known(d, {"name", "kind", "radius_m", "speed_mps", "path", "mode", "start_delay_s", "pause_s"}, path)
    kind = d.get("kind", "adult")
    if kind not in PERSON_KINDS:
        _fail(f"{path}.kind", f"unknown person kind {kind!r} (allowed: {', '.join(PERSON_KINDS)})")
    mode = d.get("mode", "pingpong")
    if mode not in PERSON_MODES:
        _fail(f"{path}.mode", f"unknown mode {mode!r} (allowed: {', '.join(PERSON_MODES)})")
    pts = _points(_req(d, "path", path), f"{path}.path", 1)
    return PersonSpec(name=_str(_req(d, "name", path), f"{path}.name"), kind=kind,
                      radius_m=_num(d.get("radius_m", PERSON_KINDS[kind]), f"{path}.radius_m", 0.0, lo_open=True),
                      speed_mps=_num(d.get("speed_mps", 1.2 if kind == "adult" else 1.0), f"{path}.speed_mps",
                                     0.0, 5.0, lo_open=True),
                      path=tuple(map(tuple, pts.tolist())), mode=mode,
                      start_delay_s=_num(d.get("start_delay_s", 0.0), f"{path}.start_delay_s", 0.0),
                      pause_s=_num(d.get("pause_s", 0.0), f"{path}.pause_s", 0.0))


def _parse_robot(d, path, field_names) -> RobotSpec:
    d = _mapping(d, path)
    _known(d, {"name", "type", "start", "field", "vehicle", "implement", "sensors"}, path)
    name = _str(_req(d, "name", path), f"{path}.name")
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        _fail(f"{path}.name", f"{name!r} is not a valid ROS namespace (letters, digits, _; starts with a letter)")
    rtype = _req(d, "type", path)
    if rtype not in ROBOT_TYPES:
        _fail(f"{path}.type", f"unknown robot type {rtype!r} (allowed: {', '.join(ROBOT_TYPES)})")
    veh = _mapping(d.get("vehicle"), f"{path}.vehicle")
    for k, v in veh.items():
        _num(v, f"{path}.vehicle.{k}")
    try:
        vehicle = vehicle_params_from_dict(rtype, _deg_keys_to_rad(veh))
    except ValueError as exc:
        raise ScenarioError(f"{path}.vehicle: {exc}") from None
    fld = d.get("field")
    if fld is not None and fld not in field_names:
        _fail(f"{path}.field", f"unknown field {fld!r} (fields: {', '.join(field_names) or 'none'})")
    implement = None
    if d.get("implement") is not None:
        ip = f"{path}.implement"
        if rtype != "tractor":
            _fail(ip, f"only a tractor carries an implement, not a {rtype}")
        im = _mapping(d["implement"], ip)
        _known(im, {"section_widths_m", "offset_m", "depth_m", "lateral_offset_m", "rate_delay_s",
                    "rate_time_constant_s"}, ip)
        widths = _list(_req(im, "section_widths_m", ip), f"{ip}.section_widths_m")
        if not 1 <= len(widths) <= 64:
            _fail(f"{ip}.section_widths_m", "needs 1 to 64 sections")
        implement = ImplementSpec(
            section_widths_m=tuple(_num(w, f"{ip}.section_widths_m", 0.0, lo_open=True) for w in widths),
            offset_m=_num(im.get("offset_m", 1.5), f"{ip}.offset_m"),
            depth_m=_num(im.get("depth_m", 0.6), f"{ip}.depth_m", 0.0, lo_open=True),
            lateral_offset_m=_num(im.get("lateral_offset_m", 0.0), f"{ip}.lateral_offset_m"),
            rate_delay_s=_num(im.get("rate_delay_s", 0.3), f"{ip}.rate_delay_s", 0.0),
            rate_time_constant_s=_num(im.get("rate_time_constant_s", 0.6), f"{ip}.rate_time_constant_s", 0.0))
    sensors = default_sensors(rtype)
    sens_cfg = _mapping(d.get("sensors"), f"{path}.sensors")
    for kind, cfg in sens_cfg.items():
        sp = f"{path}.sensors.{kind}"
        if kind not in SENSOR_TYPES:
            _fail(sp, f"unknown sensor (allowed: {', '.join(SENSOR_TYPES)})")
        if cfg is False or cfg is None:
            sensors.pop(kind, None)
            continue
        base = sensors.get(kind, SENSOR_TYPES[kind]())
        sensors[kind] = _dataclass_from(SENSOR_TYPES[kind], cfg, sp, defaults=base)
    sensors = {k: v for k, v in sensors.items() if v.enabled}
    return RobotSpec(name=name, type=rtype, start=_pose(_req(d, "start", path), f"{path}.start"), vehicle=vehicle,
                     sensors=sensors, field=fld, implement=implement)


def parse_scenario(cfg) -> ScenarioSpec:
    """Validate a scenario dict (the parsed YAML) and return its typed spec.

    Raises
    ------
    ScenarioError
        One line naming the bad key path and value.
    """
    cfg = _mapping(cfg, "scenario")
    if "world" not in cfg:
        _fail("world", "missing")
    w = _mapping(cfg["world"], "world")
    _known(w, {"name", "datum", "terrain", "fields", "roads", "places", "obstacles", "people", "ground_truth",
               "boarding_signs"}, "world")
    dd = _mapping(_req(w, "datum", "world"), "world.datum")
    _known(dd, {"lat_deg", "lon_deg", "alt_m"}, "world.datum")
    datum = Datum(lat_deg=_num(_req(dd, "lat_deg", "world.datum"), "world.datum.lat_deg", -89.0, 89.0),
                  lon_deg=_num(_req(dd, "lon_deg", "world.datum"), "world.datum.lon_deg", -180.0, 180.0),
                  alt_m=_num(dd.get("alt_m", 0.0), "world.datum.alt_m"))
    terrain = _dataclass_from(Terrain, w.get("terrain"), "world.terrain")
    if terrain.undulation_wavelength_m <= 0:
        _fail("world.terrain.undulation_wavelength_m", "must be > 0")
    fields = tuple(_parse_field(f, f"world.fields[{i}]") for i, f in enumerate(_list(w.get("fields"), "world.fields")))
    roads = []
    for i, r in enumerate(_list(w.get("roads"), "world.roads")):
        p = f"world.roads[{i}]"
        r = _mapping(r, p)
        _known(r, {"name", "polyline", "width_m"}, p)
        line = _points(_req(r, "polyline", p), f"{p}.polyline", 2)
        if LineString(line).length <= 0:
            _fail(f"{p}.polyline", "zero length")
        roads.append(RoadSpec(_str(_req(r, "name", p), f"{p}.name"), line,
                              _num(_req(r, "width_m", p), f"{p}.width_m", 0.5)))
    places = tuple(_parse_place(x, f"world.places[{i}]") for i, x in enumerate(_list(w.get("places"), "world.places")))
    obstacles = tuple(_parse_obstacle(x, f"world.obstacles[{i}]")
                      for i, x in enumerate(_list(w.get("obstacles"), "world.obstacles")))
    people = tuple(_parse_person(x, f"world.people[{i}]") for i, x in enumerate(_list(w.get("people"), "world.people")))
    gt = _dataclass_from(GroundTruthRates, w.get("ground_truth"), "world.ground_truth")
    for name in ("odom_rate_hz", "people_rate_hz", "coverage_rate_hz"):
        if getattr(gt, name) <= 0:
            _fail(f"world.ground_truth.{name}", "must be > 0")
    signs = None
    if w.get("boarding_signs") is not None:
        bs = _mapping(w["boarding_signs"], "world.boarding_signs")
        if "id_base" in bs and (isinstance(bs["id_base"], bool) or not isinstance(bs["id_base"], int)):
            _fail("world.boarding_signs.id_base", f"expected an integer, got {bs['id_base']!r:.60}")
        _known(bs, {f.name for f in dataclasses.fields(BoardingSigns)}, "world.boarding_signs")
        try:
            signs = BoardingSigns(**{k: (v if k in ("id_base", "dictionary") else _num(v, f"world.boarding_signs.{k}"))
                                     for k, v in bs.items()})
        except ValueError as exc:
            _fail("world.boarding_signs", str(exc))
    field_names = [f.name for f in fields]
    robots_raw = _list(cfg.get("robots"), "robots")
    if not robots_raw:
        _fail("robots", "at least one robot is needed")
    robots = tuple(_parse_robot(r, f"robots[{i}]", field_names) for i, r in enumerate(robots_raw))
    for kind, items in (("fields", fields), ("places", places), ("people", people), ("robots", robots),
                        ("obstacles", obstacles)):
        seen = set()
        for i, it in enumerate(items):
            if it.name in seen:
                _fail(f"{'robots' if kind == 'robots' else 'world.' + kind}[{i}].name", f"duplicate name {it.name!r}")
            seen.add(it.name)
    return ScenarioSpec(name=str(w.get("name", "scenario")), datum=datum, terrain=terrain, fields=fields,
                        roads=tuple(roads), places=places, obstacles=obstacles, people=people, robots=robots,
                        ground_truth=gt, boarding_signs=signs, raw=cfg)


def scenario_dict(robots, **world_sections) -> dict:
    """Minimal scenario dict around a datum in Tsukuba; ``world_sections`` override/add world keys."""
    world = {"name": "test", "datum": {"lat_deg": 36.1, "lon_deg": 140.1, "alt_m": 20.0}}
    world.update(world_sections)
    return {"world": world, "robots": list(robots), "nodes": [], "mission": {}}


def load_scenario(path) -> ScenarioSpec:
    """Read and validate a scenario YAML file.

    Raises
    ------
    ScenarioError
        ``"<file>: <key path>: <problem>"`` on one line (also for a missing file or bad YAML).
    """
    p = pathlib.Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read scenario: {exc.strerror or exc}") from None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{p}: bad YAML{where}: {problem}") from None
    try:
        return parse_scenario(cfg)
    except ScenarioError as exc:
        raise ScenarioError(f"{p}: {exc}") from None
