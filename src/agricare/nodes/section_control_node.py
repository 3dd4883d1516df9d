"""section_control_node: switches implement sections on/off from the pose and the ground already treated.

Subscribes ``implement/enable`` (std_msgs/Bool from the farm mission: implement lowered; when fresh it replaces
the plan lookup below), ``odometry/filtered`` (nav_msgs/Odometry, sensor QoS), ``plan`` (nav_msgs/Path) and
``coverage_plan/segments`` (std_msgs/Float64MultiArray from coverage_planner_node, latched): a section is on
only where the plan says the implement works (nearest plan pose) and the core
:class:`agricare.core.control.sections.SectionController` allows it (not over covered ground, inside the
field). Publishes ``implement/sections`` (std_msgs/UInt8MultiArray, one byte per section, command QoS) on
every pose, and all-off when the pose is older than ``odom_timeout_s``. With ``prescription_file`` (a rate map)
it also publishes ``implement/rate`` (std_msgs/Float32MultiArray, kg/ha setpoint per section, applied where the
section is on; the map read ahead by the metering lag, :mod:`agricare.core.control.rate`) and records applied
against prescribed rate in the as-applied record (applied: ``implement/rate_applied`` from the implement when it
reports, else the metering model).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Bool, Float32MultiArray, Float64MultiArray, UInt8MultiArray

from agricare.core.control.sections import SectionController, SectionParams
from agricare.core.planning.coverage import PlanningError, load_field
from agricare.ros.convert import from_stamp, path_to_array, pose_to_xyyaw
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched


@dataclass(frozen=True)
class SectionControlNodeParams:
    field_file: str = "field_a.geojson"
    scenario_file: str = ""      # with field_name: the field of a simulator scenario instead of field_file
    field_name: str = ""
    section_widths_m: tuple[float, ...] = (1.0, 1.0, 1.0)
    implement_offset_m: float = -1.5
    look_ahead_m: float = 1.0
    overlap_threshold: float = 0.3
    keep_open_m: float = 0.0        # a section stays on while a band this wide across it is not yet worked (0: off)
    min_inside_fraction: float = 0.5
    raster_resolution_m: float = 0.2
    odom_timeout_s: float = 0.5
    plan_match_distance_m: float = 2.0
    record_dir: str = ""            # where the field record is written at shutdown (empty: not written)
    record_period_s: float = 1.0    # as-applied record: one sample per period and at every section change
    datum_lat_deg: float = float("nan")   # WGS84 of the map origin for ISO-XML/KML records (NaN: the
    datum_lon_deg: float = float("nan")   # scenario's world datum, else records in local metres only)
    prescription_file: str = ""     # rate map (x_m,y_m,cell_m,rate_kgha CSV, map frame): publishes implement/rate
    actuator_delay_s: float = 0.3   # metering dead time and lag: the map is read this far ahead (x speed)
    actuator_time_constant_s: float = 0.6
    rate_lag_compensation: bool = False  # invert the metering lag instead of reading the map further ahead
    default_rate_kgha: float = 0.0  # rate outside the prescription map

    def __post_init__(self):
        if not self.field_file and not (self.scenario_file and self.field_name):
            raise ValueError("field_file must name a GeoJSON field (or set scenario_file and field_name)")
        for name in ("odom_timeout_s", "plan_match_distance_m", "record_period_s"):
            if not (getattr(self, name) > 0):
                raise ValueError(f"{name} must be > 0")
        self.section_params()
        self.rate_params()

    def rate_params(self):
        from agricare.core.control.rate import RateParams

        return RateParams(actuator_delay_s=self.actuator_delay_s,
                          actuator_time_constant_s=self.actuator_time_constant_s,
                          lag_compensation=self.rate_lag_compensation,
                          default_rate_kgha=self.default_rate_kgha)

    def section_params(self) -> SectionParams:
        return SectionParams(section_widths_m=tuple(self.section_widths_m), implement_offset_m=self.implement_offset_m,
                             look_ahead_m=self.look_ahead_m, overlap_threshold=self.overlap_threshold,
                             keep_open_m=self.keep_open_m, min_inside_fraction=self.min_inside_fraction,
                             raster_resolution_m=self.raster_resolution_m)


class SectionControlNode(Node):
    def __init__(self, **kwargs):
        super().__init__("section_control_node", **kwargs)
        self.p = load_params(self, SectionControlNodeParams)
        from agricare import paths

        try:
            if self.p.scenario_file and self.p.field_name:
                from agricare.core.missions.farm import load_scenario_field

                field = load_scenario_field(paths.resolve(self.p.scenario_file, "config/scenarios"),
                                            self.p.field_name)
            else:
                field, _ = load_field(paths.resolve(self.p.field_file, "config/fields"))
        except (PlanningError, ValueError, OSError) as exc:
            raise ParameterError(f"{self.get_name()}: parameter 'field_file'/'field_name': {exc}") from exc
        self.ctrl = SectionController(self.p.section_params(), field)
        self.n = len(self.p.section_widths_m)
        self.diag = Diagnostics(self, "section_control")
        self.plan_xy = None
        self.plan_working = None
        self._last_odom_t = None
        self._stale_sent = False
        self._pub = self.create_publisher(UInt8MultiArray, "implement/sections", COMMAND_QOS)
        self.create_subscription(Odometry, "odometry/filtered", self._on_odom, SENSOR_QOS)
        subscribe_latched(self, Path, "plan", self._on_plan)
        self.create_subscription(Bool, "implement/enable", self._on_enable, RELIABLE_QOS)
        self._enable = False
        self._enable_t = None
        self._last_sent = None
        self._last_sent_t = -1e9
        self._section_log = []
        self._field_ring = np.asarray(field.exterior.coords)
        self._field = field
        self._as_applied = []           # (t, x, y, yaw, states) every record_period_s and on every change
        self._geo = self._datum()
        self._rate = None
        if self.p.prescription_file:
            from agricare.core.control.rate import RateActuator, RateController
            from agricare.core.farmdata import FarmDataError
            from agricare.core.farmdata.layers import read_grid_csv

            try:
                rx = read_grid_csv(paths.resolve(self.p.prescription_file, "config/fields"))
            except FarmDataError as exc:
                raise ParameterError(f"{self.get_name()}: parameter 'prescription_file': {exc}") from exc
            self._rate = RateController(self.p.rate_params(), rx)
            self._actuator = RateActuator(self.p.rate_params(), self.n)
            self._rate_pub = self.create_publisher(Float32MultiArray, "implement/rate", COMMAND_QOS)
            self._applied_fb = None         # (t, rates) from the implement, when it reports them
            self.create_subscription(Float32MultiArray, "implement/rate_applied", self._on_rate_applied,
                                     RELIABLE_QOS)
        self._pose_now = None
        subscribe_latched(self, Float64MultiArray, "coverage_plan/segments", self._on_segments)
        self.create_timer(0.1, self._watchdog)

    def _datum(self):
        """The map frame's WGS84 datum: parameters, else the scenario's world datum, else None (local)."""
        from agricare.core.geodesy import LocalTangentPlane

        lat, lon = self.p.datum_lat_deg, self.p.datum_lon_deg
        if not (np.isfinite(lat) and np.isfinite(lon)) and self.p.scenario_file:
            import yaml

            from agricare import paths

            try:
                world = (yaml.safe_load(paths.resolve(self.p.scenario_file, "config/scenarios").read_text())
                         or {}).get("world") or {}
                d = world.get("datum") or {}
                lat, lon = float(d.get("lat_deg", "nan")), float(d.get("lon_deg", "nan"))
            except (OSError, ValueError, TypeError, AttributeError):
                return None
        return LocalTangentPlane(lat, lon) if np.isfinite(lat) and np.isfinite(lon) else None

    def _on_rate_applied(self, msg: Float32MultiArray):
        v = np.asarray(msg.data, float)
        if v.shape == (self.n,) and np.all(np.isfinite(v)):
            self._applied_fb = (self.get_clock().now().nanoseconds * 1e-9, v)

    def _rates(self, pose, speed, states, t_s):
        """Commanded rates (published on implement/rate) and the (applied, prescribed) means of the on sections
        at the implement now: applied from the implement's report when fresh, else the metering model."""
        from agricare.core.control.rate import section_centres

        centres = section_centres(self.ctrl.last_bars)   # the bars of this pose (ctrl.update ran on it just now)
        cmd = self._rate.command(centres, float(pose[2]), speed, t_s)
        msg = Float32MultiArray()
        msg.data = [float(v) for v in cmd]
        self._rate_pub.publish(msg)
        model = self._actuator.step(t_s, cmd)
        fb = self._applied_fb
        applied = fb[1] if fb is not None and self._last_odom_t - fb[0] <= self.p.odom_timeout_s else model
        on = np.asarray(states) > 0
        if not on.any():
            return float("nan"), float("nan")
        return float(np.mean(applied[on])), float(np.mean(self._rate.prescribed(centres[on])))

    def _on_plan(self, msg: Path):
        self.plan_xy = path_to_array(msg)[:, :2]

    def _on_segments(self, msg: Float64MultiArray):
        seg = np.asarray(msg.data, dtype=float).reshape(-1, 4)
        self.plan_working = seg[:, 1] > 0.5

    def _on_enable(self, msg: Bool):
        self._enable = bool(msg.data)
        self._enable_t = self.get_clock().now().nanoseconds * 1e-9

    def _implement_enabled(self, xy) -> bool:
        """The mission's implement command when it is fresh, else the plan's working flag at the nearest pose."""
        if self._enable_t is not None:
            age = self.get_clock().now().nanoseconds * 1e-9 - self._enable_t
            if age <= self.p.odom_timeout_s:
                return self._enable
            return False  # the mission went quiet: raise the implement
        return self._plan_allows(xy)

    def _plan_allows(self, xy) -> bool:
        if self.plan_xy is None or self.plan_working is None or len(self.plan_xy) != len(self.plan_working):
            return True                       # no plan: section control alone decides
        if len(self.plan_xy) == 0:
            return False                      # an empty plan is a hold: implement off
        d = np.hypot(self.plan_xy[:, 0] - xy[0], self.plan_xy[:, 1] - xy[1])
        i = int(np.argmin(d))
        return bool(d[i] <= self.p.plan_match_distance_m and self.plan_working[i])

    def _publish(self, states):
        data = [int(v) for v in states]
        now = self.get_clock().now().nanoseconds * 1e-9
        if data == self._last_sent and now - self._last_sent_t < 0.2:
            return  # unchanged: repeat at 5 Hz only (the implement driver holds the last command)
        msg = UInt8MultiArray()
        msg.data = data
        self._pub.publish(msg)
        self._last_sent, self._last_sent_t = data, now

    def _on_odom(self, msg: Odometry):
        pose = pose_to_xyyaw(msg.pose.pose)
        if not np.all(np.isfinite(pose)):
            self._publish(np.zeros(self.n, dtype=np.uint8))
            self.diag.error("non-finite pose: all sections off")
            return
        self._last_odom_t = self.get_clock().now().nanoseconds * 1e-9
        self._stale_sent = False
        states = self.ctrl.update(pose, enable=self._implement_enabled(pose[:2]))
        if not self._section_log or list(self._section_log[-1][4]) != [int(v) for v in states]:
            self._section_log.append((self._last_odom_t, float(pose[0]), float(pose[1]), float(pose[2]),
                                      [int(v) for v in states]))
        row = (self._last_odom_t, float(pose[0]), float(pose[1]), float(pose[2]), [int(v) for v in states])
        if self._rate is not None:
            stamp = from_stamp(msg.header.stamp)
            row = row + self._rates(pose, float(msg.twist.twist.linear.x), states,
                                    stamp if stamp > 0 else self._last_odom_t)
        aa = self._as_applied
        if not aa or list(aa[-1][4]) != row[4] or self._last_odom_t - aa[-1][0] >= self.p.record_period_s:
            aa.append(row)
        self._publish(states)
        self.diag.ok("running", sections_on=int(states.sum()), covered_m2=round(self.ctrl.raster.covered_area_m2, 1),
                     odom_stamp=round(from_stamp(msg.header.stamp), 3))

    def _watchdog(self):
        now = self.get_clock().now().nanoseconds * 1e-9
        if self._last_odom_t is not None and now - self._last_odom_t > self.p.odom_timeout_s and not self._stale_sent:
            self._publish(np.zeros(self.n, dtype=np.uint8))
            self._stale_sent = True
            self.diag.stale("odometry older than odom_timeout_s: all sections off")

    def on_shutdown(self):
        self._publish(np.zeros(self.n, dtype=np.uint8))
        if self.p.record_dir:
            self.write_record(self.p.record_dir)

    def write_record(self, directory) -> list:
        """The field record (applied area GeoJSON/CSV/PNG, section log) from what the sections treated."""
        from agricare.core.missions.field_record import write_field_record

        r = self.ctrl.raster
        try:
            files = write_field_record(directory, r.grid, r.x0, r.y0, r.res, self._section_log,
                                       self._field_ring, self.n)
        except OSError as exc:
            self.diag.error(f"field record not written: {exc}")
            return []
        files += self._write_as_applied(directory)
        self.get_logger().info(f"field record: {', '.join(files)}")
        return files


    def _write_as_applied(self, directory) -> list:
        """As-applied record for farm software: ISO-XML TaskData (georeferenced only), Shapefile, GeoJSON."""
        from agricare.core.farmdata import FarmDataError, FieldData
        from agricare.core.farmdata.records import AsAppliedLog, write_as_applied
        from agricare.core.missions.field_record import applied_polygons

        r = self.ctrl.raster
        name = self.p.field_name or pathlib.Path(self.p.field_file).stem
        fd = FieldData(name, self._field, geo=self._geo)
        try:
            log = AsAppliedLog.from_rows(self.p.section_widths_m, self._as_applied)
            return [str(f) for f in write_as_applied(directory, log, fd, applied_polygons(r.grid, r.x0, r.y0, r.res))]
        except (OSError, FarmDataError) as exc:
            self.diag.error(f"as-applied record not written: {exc}")
            return []


def main(args=None):
    return run_node(SectionControlNode, args)


if __name__ == "__main__":
    main()
