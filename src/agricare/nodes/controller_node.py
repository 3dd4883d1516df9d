"""controller_node: follows ``plan`` with regulated pure pursuit or Stanley, publishes ``cmd_vel_nav``.

Subscribes
    ``plan`` (nav_msgs/Path, latched), ``<odom_topic>`` (nav_msgs/Odometry, sensor QoS; default
    ``odometry/filtered``), ``plan_directions`` (std_msgs/Int8MultiArray, latched, optional: +1/-1 per
    plan pose for reversing segments), ``obstacle_distance`` (std_msgs/Float32, sensor QoS, optional).
Publishes
    ``cmd_vel_nav`` (geometry_msgs/TwistStamped) at ``control_rate_hz``, ``controller/status``
    (std_msgs/String JSON: state, cross_track_m, progress, ...), ``/diagnostics``.

Fail safe: no plan, stale pose (older than ``pose_timeout_s``), NaN, or a plan/pose frame mismatch
give a zero command (and a diagnostics error for the faults). Goal reached: zero command, status
``goal_reached``. A new plan replaces the old one. ``plan_directions`` is matched to a plan by length:
publish it before (or right after) the plan; it is used once.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Float32, Int8MultiArray, String

from agricare.core.control.kinematics import Ackermann, AckermannParams, DiffDrive, DiffDriveParams
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit
from agricare.core.control.stanley import Stanley
from agricare.ros.convert import from_stamp, path_to_array, pose_to_xyyaw, twist_stamped
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched

ALGORITHMS = {"pure_pursuit": RegulatedPurePursuit, "stanley": Stanley}
VEHICLES = ("diff", "ackermann")
_TRACKER_FIELDS = tuple(f.name for f in dataclasses.fields(TrackerParams))


@dataclasses.dataclass(frozen=True)
class ControllerNodeParams:
    """controller_node parameters (flat: node, tracker and vehicle fields; SI units)."""

    algorithm: str = "pure_pursuit"
    vehicle: str = "diff"
    control_rate_hz: float = 20.0
    pose_timeout_s: float = 0.5
    obstacle_timeout_s: float = 1.0
    status_period_s: float = 0.5
    odom_topic: str = "odometry/filtered"
    base_frame_id: str = "base_link"
    # tracker (see core.control.path_tracking.TrackerParams)
    desired_speed_mps: float = 1.0
    reverse_speed_mps: float = 0.5
    lookahead_time_s: float = 1.5
    min_lookahead_m: float = 0.6
    max_lookahead_m: float = 3.0
    regulated_min_radius_m: float = 1.5
    min_regulated_speed_mps: float = 0.2
    obstacle_slowdown_distance_m: float = 2.0
    obstacle_stop_distance_m: float = 0.5
    approach_distance_m: float = 1.0
    min_approach_speed_mps: float = 0.05
    use_rotate_to_heading: bool = True
    rotate_to_heading_min_angle_rad: float = 0.785
    rotate_to_heading_speed_radps: float = 1.0
    rotate_gain_per_s: float = 2.0
    stanley_gain_per_s: float = 2.0
    stanley_softening_mps: float = 0.3
    stanley_rear_axle_correction: bool = True
    wheelbase_m: float = 1.0
    goal_xy_tolerance_m: float = 0.15
    goal_yaw_tolerance_rad: float = 0.15
    goal_xy_hysteresis_m: float = 0.1
    goal_yaw_hysteresis_rad: float = 0.1
    cusp_tolerance_m: float = 0.2
    cusp_settle_s: float = 2.0
    stop_speed_mps: float = 0.03
    search_window_m: float = 2.0
    max_steering_angle_rad: float = 0.6
    # vehicle limits
    wheel_separation_m: float = 0.5
    wheel_radius_m: float = 0.1
    track_width_m: float = 1.6
    max_wheel_speed_radps: float = 20.0
    max_linear_speed_mps: float = 1.5
    max_angular_speed_radps: float = 2.0
    max_steering_rate_radps: float = 0.8

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {self.algorithm!r}")
        if self.vehicle not in VEHICLES:
            raise ValueError(f"vehicle must be one of {list(VEHICLES)}, got {self.vehicle!r}")
        for name in ("control_rate_hz", "pose_timeout_s", "obstacle_timeout_s", "status_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not self.odom_topic:
            raise ValueError("odom_topic must not be empty")
        self.tracker_params()
        self.make_vehicle()

    def tracker_params(self) -> TrackerParams:
        return TrackerParams(**{name: getattr(self, name) for name in _TRACKER_FIELDS})

    def make_vehicle(self):
        if self.vehicle == "diff":
            return DiffDrive(DiffDriveParams(
                wheel_separation_m=self.wheel_separation_m, wheel_radius_m=self.wheel_radius_m,
                max_wheel_speed_radps=self.max_wheel_speed_radps, max_linear_speed_mps=self.max_linear_speed_mps,
                max_angular_speed_radps=self.max_angular_speed_radps))
        return Ackermann(AckermannParams(
            wheelbase_m=self.wheelbase_m, track_width_m=self.track_width_m, wheel_radius_m=self.wheel_radius_m,
            max_steering_angle_rad=self.max_steering_angle_rad,
            max_steering_rate_radps=self.max_steering_rate_radps,
            max_wheel_speed_radps=self.max_wheel_speed_radps, max_linear_speed_mps=self.max_linear_speed_mps))


class ControllerNode(Node):
    """Path tracking controller node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("controller_node", **kwargs)
        self.params = load_params(self, ControllerNodeParams)
        p = self.params
        self.tracker = ALGORITHMS[p.algorithm](p.tracker_params(), p.make_vehicle())
        self.diag = Diagnostics(self, "controller")
        self._pose: np.ndarray | None = None
        self._speed = 0.0
        self._pose_time_s = -math.inf
        self._pose_frame = ""
        self._plan_frame = ""
        self._plan: np.ndarray | None = None
        self._pending_dirs: np.ndarray | None = None
        self._plan_has_dirs = False
        self._obstacle_m = math.inf
        self._obstacle_time_s = -math.inf
        self._last_status: tuple | None = None
        self._last_status_time_s = -math.inf
        self.last_output = None

        self._cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_nav", COMMAND_QOS)
        self._status_pub = self.create_publisher(String, "controller/status", RELIABLE_QOS)
        subscribe_latched(self, Path, "plan", self._on_plan)
        subscribe_latched(self, Int8MultiArray, "plan_directions", self._on_directions)
        self.create_subscription(Odometry, p.odom_topic, self._on_odom, SENSOR_QOS)
        self.create_subscription(Float32, "obstacle_distance", self._on_obstacle, SENSOR_QOS)
        subscribe_latched(self, Float32, "speed_limit", self._on_speed_limit)
        self._speed_limit_mps = math.inf
        self._timer = self.create_timer(1.0 / p.control_rate_hz, self._on_timer)
        self.diag.ok("waiting for a plan", algorithm=p.algorithm, vehicle=p.vehicle)

    # ------------------------------------------------------------------ inputs
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_plan(self, msg: Path) -> None:
        arr = path_to_array(msg)
        self._plan_frame = msg.header.frame_id
        if arr.shape[0] == 0:
            self._plan = None
            self.tracker.clear_plan()
            self.get_logger().info("empty plan: stopping")
            return
        if not np.all(np.isfinite(arr)):
            self._plan = None
            self.tracker.clear_plan()
            self.diag.error("plan contains NaN/inf; ignored")
            return
        dirs = None
        if self._pending_dirs is not None and self._pending_dirs.shape[0] == arr.shape[0]:
            dirs = self._pending_dirs
        self._pending_dirs = None
        self._apply_plan(arr, dirs)

    def _apply_plan(self, arr: np.ndarray, dirs) -> None:
        try:
            self.tracker.set_plan(arr, dirs)
        except ValueError as exc:
            self._plan = None
            self.tracker.clear_plan()
            self.diag.error(f"plan rejected: {exc}")
            return
        self._plan = arr
        self._plan_has_dirs = dirs is not None
        n_sections = len(self.tracker.path.sections)
        self.get_logger().info(f"new plan: {arr.shape[0]} poses, {self.tracker.path.length_m:.1f} m, "
                               f"{n_sections} section(s)")

    def _on_directions(self, msg: Int8MultiArray) -> None:
        dirs = np.asarray(msg.data, dtype=float)
        if not np.all(np.isin(dirs, (-1.0, 1.0))):
            self.diag.warn("plan_directions must be +1/-1; ignored")
            return
        if self._plan is not None and not self._plan_has_dirs and dirs.shape[0] == self._plan.shape[0]:
            self._apply_plan(self._plan, dirs)  # directions arrived just after their plan
        else:
            self._pending_dirs = dirs

    def _on_odom(self, msg: Odometry) -> None:
        self._pose = pose_to_xyyaw(msg.pose.pose)
        self._speed = float(msg.twist.twist.linear.x)
        stamp = from_stamp(msg.header.stamp)
        self._pose_time_s = stamp if stamp > 0.0 else self._now_s()
        self._pose_frame = msg.header.frame_id

    def _on_speed_limit(self, msg: Float32) -> None:
        """A mission's speed limit (m/s); negative or NaN clears it."""
        v = float(msg.data)
        self._speed_limit_mps = v if math.isfinite(v) and v >= 0.0 else math.inf

    def _on_obstacle(self, msg: Float32) -> None:
        self._obstacle_m = float(msg.data)
        self._obstacle_time_s = self._now_s()

    # ------------------------------------------------------------------ control cycle
    def _publish_cmd(self, v: float, w: float, now_s: float) -> None:
        self._cmd_pub.publish(twist_stamped(v, w, now_s, self.params.base_frame_id))

    def _publish_status(self, state: str, now_s: float, force: bool = False, **extra) -> None:
        key = (state, extra.get("message", ""))
        if not force and key == self._last_status and now_s - self._last_status_time_s < self.params.status_period_s:
            return
        self._last_status, self._last_status_time_s = key, now_s
        body = {"state": state}
        body.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in extra.items()})
        self._status_pub.publish(String(data=json.dumps(body)))

    def _fault(self, message: str, now_s: float) -> None:
        self._publish_cmd(0.0, 0.0, now_s)
        self.diag.error(message)
        self._publish_status("error", now_s, message=message, cross_track_m=0.0, progress=0.0)

    def _on_timer(self) -> None:
        now = self._now_s()
        p = self.params
        if self.tracker.path is None:
            self._publish_cmd(0.0, 0.0, now)
            self.diag.ok("idle: no plan")
            self._publish_status("idle", now, cross_track_m=0.0, progress=0.0)
            return
        if self._pose is None:
            self._fault(f"no pose on '{p.odom_topic}'", now)
            return
        age = now - self._pose_time_s
        if age > p.pose_timeout_s:
            self._fault(f"stale pose: {age:.2f} s old (pose_timeout_s={p.pose_timeout_s})", now)
            return
        if not (np.all(np.isfinite(self._pose)) and math.isfinite(self._speed)):
            self._fault("pose or speed is NaN/inf", now)
            return
        if self._plan_frame and self._pose_frame and self._plan_frame != self._pose_frame:
            self._fault(f"plan frame '{self._plan_frame}' != pose frame '{self._pose_frame}'", now)
            return
        obstacle = self._obstacle_m
        obstacle_stale = now - self._obstacle_time_s > p.obstacle_timeout_s
        if obstacle_stale or math.isnan(obstacle):
            obstacle = math.inf
        out = self.tracker.compute(self._pose, self._speed, now, obstacle)
        self.last_output = out
        v_cmd, w_cmd = out.v_mps, out.w_radps
        if abs(v_cmd) > self._speed_limit_mps:  # scale both: the curvature is kept
            k = self._speed_limit_mps / abs(v_cmd)
            v_cmd, w_cmd = v_cmd * k, w_cmd * k
        self._publish_cmd(v_cmd, w_cmd, now)
        values = dict(state=out.state, cross_track_m=f"{out.cross_track_m:.3f}", progress=f"{out.progress:.3f}",
                      distance_to_goal_m=f"{out.distance_to_goal_m:.2f}")
        if out.state == "error":
            self.diag.error(out.message or "tracker error", **values)
        elif out.state in ("goal_missed", "obstacle_stop"):
            self.diag.warn(out.message or out.state, **values)
        else:
            self.diag.ok(out.state, **values)
        self._publish_status(out.state, now, cross_track_m=out.cross_track_m, progress=out.progress,
                             distance_to_goal_m=out.distance_to_goal_m, target_index=out.target_index,
                             section=out.section_index, direction=out.direction, message=out.message)

    def on_shutdown(self) -> None:
        """Send one zero command on the way out."""
        self._publish_cmd(0.0, 0.0, self._now_s())


def main(args=None):
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    main()
