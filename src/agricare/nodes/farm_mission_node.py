"""farm_mission_node: the tractor's coverage job from field to done.

Loads the field (``field_file`` GeoJSON, or the field ``field_name`` of the scenario ``scenario_file``), plans
the coverage (headland rings, swaths, drivable turns), and drives it through the controller with
:class:`agricare.core.missions.farm.FarmMission`: pause/resume, refill trips, GNSS-outage slow-down/stop.

Publishes ``implement/enable`` (std_msgs/Bool: implement lowered, at the update rate) for section control.
Subscribes ``<odom_topic>`` (nav_msgs/Odometry), ``gnss/fix`` (NavSatFix), ``controller/status`` (String JSON),
``mission/pause`` (std_msgs/Bool). Publishes ``plan`` (nav_msgs/Path), ``plan_directions``
(Int8MultiArray), ``coverage_plan/segments`` (Float64MultiArray N x 4: kind, working, direction, curvature;
for section control),
``speed_limit`` (std_msgs/Float32, negative = none), ``mission/status`` (agricare_interfaces/MissionStatus).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
from agricare_interfaces.msg import MissionStatus
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from sensor_msgs.msg import NavSatFix, NavSatStatus
from std_msgs.msg import Bool, Float32, Float64MultiArray, Int8MultiArray, MultiArrayDimension, String

from agricare.core.missions.farm import (DONE, FAILED, FarmMission, FarmMissionParams, load_scenario_field,
                                        master_plan_from_coverage)
from agricare.core.validation import require
from agricare.ros.convert import array_to_path, pose_to_xyyaw
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS


@dataclasses.dataclass(frozen=True)
class FarmMissionNodeParams:
    robot_name: str = "tractor"
    field_file: str = ""
    scenario_file: str = ""
    field_name: str = ""
    frame_id: str = "map"
    odom_topic: str = "odometry/filtered"
    update_rate_hz: float = 20.0
    start_delay_s: float = 1.0
    # coverage planner
    width_m: float = 3.0
    turn_radius_m: float = 4.0
    headland_width_m: float = 9.0
    robot_width_m: float = 0.0
    turn_type: str = "dubins"
    route: str = "optimal"
    objective: str = "swaths"
    angle_deg: float = float("nan")
    route_time_limit_s: float = 0.0    # 0: deterministic local search only; > 0 adds time-limited OR-Tools search
    # mission
    capacity_m: float = 0.0
    depot_x_m: float = float("nan")
    depot_y_m: float = float("nan")
    refill_time_s: float = 30.0
    gnss_slow_after_s: float = 1.0
    gnss_stop_after_s: float = 10.0
    gnss_slow_speed_mps: float = 0.5
    use_gnss: bool = True
    detour_margin_m: float = 0.3
    front_overhang_m: float = 3.3     # body ahead of base_link (rear axle): swings out in turns
    implement_offset_m: float = 1.6   # implement working line behind base_link
    implement_overlap_m: float = 0.3  # lowered early / raised late by this much at the ends of a pass

    def __post_init__(self):
        require(bool(self.field_file) or (bool(self.scenario_file) and bool(self.field_name)), "field_file",
                "or scenario_file + field_name must be set")
        require(self.update_rate_hz > 0, "update_rate_hz", "must be > 0", self.update_rate_hz)
        require(self.start_delay_s >= 0, "start_delay_s", "must be >= 0", self.start_delay_s)


class FarmMissionNode(Node):
    def __init__(self, **kwargs):
        super().__init__("farm_mission_node", **kwargs)
        self.p = load_params(self, FarmMissionNodeParams)
        from agricare.core.planning.coverage import CoverageParams, PlanningError, load_field

        try:
            self.mission_params = FarmMissionParams(
                capacity_m=self.p.capacity_m, depot_x_m=self.p.depot_x_m, depot_y_m=self.p.depot_y_m,
                refill_time_s=self.p.refill_time_s, turn_radius_m=self.p.turn_radius_m,
                gnss_slow_after_s=self.p.gnss_slow_after_s, gnss_stop_after_s=self.p.gnss_stop_after_s,
                gnss_slow_speed_mps=self.p.gnss_slow_speed_mps, implement_offset_m=self.p.implement_offset_m,
                implement_overlap_m=self.p.implement_overlap_m)
            self.cov_params = CoverageParams(
                width_m=self.p.width_m, turn_radius_m=self.p.turn_radius_m, headland_width_m=self.p.headland_width_m,
                robot_width_m=self.p.robot_width_m, turn_type=self.p.turn_type, route=self.p.route,
                objective=self.p.objective, angle_deg=self.p.angle_deg,
                optimizer_time_limit_s=self.p.route_time_limit_s)
            if self.p.field_file:
                from agricare import paths

                self.field, _frame = load_field(paths.resolve(self.p.field_file, "config/fields"))
            else:
                from agricare import paths

                self.field = load_scenario_field(paths.resolve(self.p.scenario_file, "config/scenarios"),
                                                 self.p.field_name)
        except (ValueError, OSError, PlanningError) as exc:
            raise ParameterError(f"{self.get_name()}: {exc}") from exc
        self.diag = Diagnostics(self, "farm mission")
        self._plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self._dir_pub = self.create_publisher(Int8MultiArray, "plan_directions", LATCHED_QOS)
        self._seg_pub = self.create_publisher(Float64MultiArray, "coverage_plan/segments", LATCHED_QOS)
        self._enable_pub = self.create_publisher(Bool, "implement/enable", RELIABLE_QOS)
        self._limit_pub = self.create_publisher(Float32, "speed_limit", LATCHED_QOS)
        self._last_limit = None
        self._last_enable = None
        self._last_status = (None, -1.0)
        self._last_enable_t = -1.0
        self._status_pub = self.create_publisher(MissionStatus, "mission/status", RELIABLE_QOS)
        self.create_subscription(Odometry, self.p.odom_topic, self._on_odom, SENSOR_QOS)
        self.create_subscription(NavSatFix, "gnss/fix", self._on_fix, SENSOR_QOS)
        self.create_subscription(String, "controller/status", self._on_controller, RELIABLE_QOS)
        self.create_subscription(Bool, "mission/pause", self._on_pause, RELIABLE_QOS)
        self.pose = None
        self.last_fix_t = None
        self.goal_reached = False
        self.pause = False
        self.mission = None
        self.coverage = None
        self.t0 = None
        self.state = "waiting"
        self.message = "waiting for a pose"
        self.create_timer(1.0 / self.p.update_rate_hz, self._tick)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_odom(self, msg: Odometry):
        pose = pose_to_xyyaw(msg.pose.pose)
        if np.all(np.isfinite(pose)):
            self.pose = pose

    def _on_fix(self, msg: NavSatFix):
        if msg.status.status >= NavSatStatus.STATUS_FIX and math.isfinite(msg.latitude) and \
                math.isfinite(msg.longitude):
            self.last_fix_t = self._now()

    def _on_controller(self, msg: String):
        try:
            self.goal_reached = json.loads(msg.data).get("state") == "goal_reached"
        except (ValueError, AttributeError):
            pass

    def _on_pause(self, msg: Bool):
        self.pause = bool(msg.data)

    def _plan(self):
        from shapely.geometry import Point

        from agricare.core.planning.coverage import PlanningError, plan_coverage

        try:
            self.coverage = plan_coverage(self.field, self.cov_params)
        except PlanningError as exc:
            self.state, self.message = FAILED, f"coverage planning failed: {exc}"
            self.diag.error(self.message)
            return
        # detours (lead-in, depot trips) keep the whole machine inside: inset by half the widest part
        half = max(0.5 * self.p.width_m, 0.5 * self.p.robot_width_m, self.p.front_overhang_m) + self.p.detour_margin_m
        allowed = self.field.buffer(-half)

        def inside(xy):
            return np.array([allowed.contains(Point(float(x), float(y))) for x, y in xy])

        self.mission = FarmMission(master_plan_from_coverage(self.coverage), self.mission_params, inside)
        self.get_logger().info(
            f"coverage plan: {len(self.coverage.swaths)} swaths, {self.coverage.lengths_m['total']:.0f} m "
            f"(+{self.coverage.lengths_m.get('headland', 0.0):.0f} m headland), planned coverage "
            f"{100 * self.coverage.coverage_ratio:.1f}%")

    def _publish_path(self, active):
        now = self.get_clock().now().to_msg()
        self._dir_pub.publish(Int8MultiArray(data=[int(d) for d in active.direction]))
        seg = Float64MultiArray()
        n = len(active.direction)
        seg.layout.dim = [MultiArrayDimension(label="pose", size=n, stride=4 * n),
                          MultiArrayDimension(label="kind,working,direction,curvature", size=4, stride=4)]
        kind = np.where(active.master_index >= 0, 0, 3) if n else np.zeros(0)
        seg.data = np.column_stack([kind, active.working.astype(float), active.direction.astype(float),
                                    np.zeros(n)]).ravel().tolist() if n else []
        self._seg_pub.publish(seg)
        if len(active.poses):
            self._plan_pub.publish(array_to_path(active.poses, self.p.frame_id, now))
        else:
            msg = Path()
            msg.header.frame_id = self.p.frame_id
            msg.header.stamp = now
            self._plan_pub.publish(msg)
        self.goal_reached = False

    def _tick(self):
        t = self._now()
        if self.t0 is None:
            self.t0 = t
        if self.mission is None and self.state != FAILED and self.pose is not None and \
                t - self.t0 >= self.p.start_delay_s:
            self._plan()
            if self.mission is not None:
                out = self.mission.start(t, self.pose)
                self._apply(out)
        elif self.mission is not None and self.pose is not None:
            gnss_age = 0.0
            if self.p.use_gnss:
                gnss_age = (t - self.last_fix_t) if self.last_fix_t is not None else (t - self.t0)
            out = self.mission.update(t, self.pose, gnss_age_s=gnss_age, pause=self.pause,
                                      goal_reached=self.goal_reached)
            self._apply(out)
            down = self.mission.implement_down()
            if down != self._last_enable or t - self._last_enable_t >= 0.1:
                self._enable_pub.publish(Bool(data=down))
                self._last_enable, self._last_enable_t = down, t
        self._publish_status()

    def _apply(self, out):
        if out.new_path is not None:
            self._publish_path(out.new_path)
        limit = float(out.speed_limit_mps) if out.speed_limit_mps is not None else -1.0
        if limit != self._last_limit:  # latched: published on change only
            self._limit_pub.publish(Float32(data=limit))
            self._last_limit = limit
        self.state = out.state
        if out.message:
            self.message = out.message
        if out.state == FAILED:
            self.diag.error(self.message)
        elif out.state in ("gnss_stop", "gnss_slow"):
            self.diag.warn(self.message)
        else:
            self.diag.ok(self.message, **(self.mission.figures() if self.mission else {}))

    def _publish_status(self):
        msg = MissionStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p.frame_id
        msg.robot = self.p.robot_name
        msg.mission = "coverage"
        msg.state = self.state
        figures = self.mission.figures() if self.mission else {}
        if self.coverage is not None:
            figures.update(planned_swaths=len(self.coverage.swaths),
                           planned_total_m=round(self.coverage.lengths_m["total"], 1),
                           planned_coverage=round(self.coverage.coverage_ratio, 4))
        msg.progress = float(figures.get("progress", 0.0)) if self.state != DONE else 1.0
        figures["message"] = self.message
        msg.detail = json.dumps(figures)
        self._status_pub.publish(msg)

    def on_shutdown(self):
        if self.mission is not None:
            self._publish_status()


def main(args=None):
    return run_node(FarmMissionNode, args)


if __name__ == "__main__":
    main()
