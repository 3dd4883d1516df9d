"""route_planner_node: ``goal_pose`` + current pose -> ``plan`` on the occupancy map (A* / Hybrid-A*).

Subscribes
    ``goal_pose`` (geometry_msgs/PoseStamped, reliable), ``odometry/filtered`` (nav_msgs/Odometry, sensor QoS).
Publishes (latched)
    ``plan`` (nav_msgs/Path, map frame), ``plan_speed_limits`` (std_msgs/Float32MultiArray, one limit in m/s
    per plan pose: zones, curvature, max speed), ``/diagnostics``.

A goal that cannot be planned (no or stale pose, wrong frame, NaN, blocked start/goal, no path) publishes an
empty plan (the controller stops) and an error on ``/diagnostics``.

With ``trust_file`` (a trust list of ``agricare keys``) goals are accepted only as signed commands (kind
``mission_goal``, payload ``{"x_m", "y_m", "yaw_rad"}``) on ``goal_signed`` (std_msgs/String); a plain
``goal_pose`` is then refused and reported (``/diagnostics`` ``route_planner_node: security``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray, String

from agricare.core.planning.grid import (PlanningError, RoutePlannerParams, costmap_for, load_map, load_zones,
                                         path_length, plan_route)
from agricare.ros.convert import array_to_path, pose_to_xyyaw
from agricare.core.security.commands import CommandRejected, CommandVerifier
from agricare.core.security.keys import TrustList
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.guard import SecurityReport, guarded
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS


@dataclass(frozen=True)
class RoutePlannerNodeParams(RoutePlannerParams):
    """route_planner_node parameters: the planner's plus the node's."""

    map_yaml: str = "config/maps/town.yaml"
    zones_yaml: str = "config/maps/town_zones.yaml"
    pose_timeout_s: float = 1.0
    trust_file: str = ""

    def __post_init__(self):
        super().__post_init__()
        if not self.map_yaml.strip():
            raise ValueError("map_yaml must name a map_server YAML file")
        if not (math.isfinite(self.pose_timeout_s) and self.pose_timeout_s > 0):
            raise ValueError("pose_timeout_s must be > 0")


class RoutePlannerNode(Node):
    """Plans on a map for each goal (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("route_planner_node", **kwargs)
        self.params = load_params(self, RoutePlannerNodeParams)
        p = self.params
        try:
            self.grid = load_map(p.map_yaml)
        except (ValueError, OSError) as exc:
            raise ParameterError(f"route_planner_node: parameter 'map_yaml': {exc}") from exc
        try:
            self.zones = load_zones(p.zones_yaml) if p.zones_yaml.strip() else None
        except (ValueError, OSError) as exc:
            raise ParameterError(f"route_planner_node: parameter 'zones_yaml': {exc}") from exc
        self.costmap = costmap_for(self.grid, p, self.zones)
        self.diag = Diagnostics(self, "route_planner")
        self._pose = None
        self._pose_time = -math.inf
        self.last_plan = None
        self._plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self._speed_pub = self.create_publisher(Float32MultiArray, "plan_speed_limits", LATCHED_QOS)
        self.create_subscription(Odometry, "odometry/filtered", self._on_pose, SENSOR_QOS)
        self.security = SecurityReport(self)
        self.goals = None
        if p.trust_file:
            try:
                self.goals = CommandVerifier(TrustList.load(p.trust_file), ["mission_goal"],
                                             self.get_namespace().strip("/"))
            except (OSError, ValueError) as exc:
                raise ParameterError(f"route_planner_node: parameter 'trust_file': {exc}") from exc
        self.create_subscription(PoseStamped, "goal_pose", guarded(self.security, "goal_pose")(self._on_goal),
                                 RELIABLE_QOS)
        self.create_subscription(String, "goal_signed", guarded(self.security, "goal_signed")(self._on_signed_goal),
                                 RELIABLE_QOS)
        self.diag.ok("waiting for a goal", map=p.map_yaml, planner=p.planner)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_pose(self, msg: Odometry):
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            return
        self._pose = pose_to_xyyaw(msg.pose.pose)
        self._pose_time = self._now_s()

    def _fail(self, reason: str):
        self.get_logger().error(f"no plan: {reason}")
        self.diag.error(f"no plan: {reason}")
        self._publish([], [])

    def _publish(self, path, speeds):
        stamp = self.get_clock().now().to_msg()
        arr = np.asarray(path, dtype=float).reshape(-1, 3)
        self._plan_pub.publish(array_to_path(arr, self.params.map_frame, stamp))
        self._speed_pub.publish(Float32MultiArray(data=[float(v) for v in speeds]))

    def _on_signed_goal(self, msg: String):
        if self.goals is None:
            self.security.refused("goal_signed", "no_trust_list", "set trust_file to accept signed goals")
            return
        try:
            cmd = self.goals.verify(msg.data, time.time())
            goal = np.array([float(cmd.payload[k]) for k in ("x_m", "y_m", "yaw_rad")])
        except CommandRejected as exc:
            self.security.refused("goal_signed", exc.reason, exc.detail)
            return
        except (KeyError, TypeError, ValueError) as exc:
            self.security.refused("goal_signed", "malformed", str(exc)[:120])
            return
        self._plan_to(goal)

    def _on_goal(self, msg: PoseStamped):
        if self.goals is not None:
            self.security.refused("goal_pose", "unsigned", "goals must be signed (goal_signed)")
            return
        p = self.params
        if msg.header.frame_id and msg.header.frame_id != p.map_frame:
            self._fail(f"goal in frame '{msg.header.frame_id}', expected '{p.map_frame}'")
            return
        self._plan_to(pose_to_xyyaw(msg.pose))

    def _plan_to(self, goal):
        p = self.params
        if not np.all(np.isfinite(goal)):
            self._fail("goal is not finite")
            return
        if self._pose is None:
            self._fail("no current pose on 'odometry/filtered'")
            return
        age = self._now_s() - self._pose_time
        if age > p.pose_timeout_s:
            self._fail(f"current pose is stale ({age:.2f} s > pose_timeout_s={p.pose_timeout_s})")
            return
        t0 = time.perf_counter()
        try:
            path, speeds = plan_route(self.grid, self._pose, goal, p, self.zones, self.costmap)
        except PlanningError as exc:
            self._fail(str(exc))
            return
        ms = (time.perf_counter() - t0) * 1e3
        self.last_plan = (path, speeds)
        self._publish(path, speeds)
        self.get_logger().info(f"plan: {len(path)} poses, {path_length(path):.1f} m in {ms:.0f} ms")
        self.diag.ok("planned", poses=len(path), length_m=f"{path_length(path):.1f}", plan_ms=f"{ms:.0f}",
                     min_speed_limit_mps=f"{float(speeds.min()):.2f}")


def main(args=None):
    return run_node(RoutePlannerNode, args)


if __name__ == "__main__":
    main()
