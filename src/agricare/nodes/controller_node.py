"""controller_node: follows ``plan`` with regulated pure pursuit or Stanley, publishes ``cmd_vel_nav``.

Subscribes
    ``plan`` (nav_msgs/Path, latched), ``<odom_topic>`` (nav_msgs/Odometry, sensor QoS; default
    ``odometry/filtered``), ``plan_directions`` (std_msgs/Int8MultiArray, latched, optional: +1/-1 per
    plan pose for reversing segments), ``obstacle_distance`` (std_msgs/Float32, sensor QoS, optional).
Publishes
    ``cmd_vel_nav`` (geometry_msgs/TwistStamped) at ``control_rate_hz``, ``controller/status``
    (agricare_interfaces/ControllerStatus: state, cross_track_m, progress, ...), ``/diagnostics``.

Fail safe: no plan, stale pose (older than ``pose_timeout_s``), NaN, or a plan/pose frame mismatch
give a zero command (and a diagnostics error for the faults). Goal reached: zero command, status
``goal_reached``. A new plan replaces the old one. ``plan_directions`` is matched to a plan by length:
publish it before (or right after) the plan; it is used once.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from agricare_interfaces.msg import ControllerStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Float32, Int8MultiArray

from agricare.core.control.kinematics import Ackermann, AckermannParams, DiffDrive, DiffDriveParams
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit
from agricare.core.control.stanley import Stanley
from agricare.ros.convert import from_stamp, path_to_array, pose_to_xyyaw, to_stamp
from agricare.ros.fastmsg import twist_stamped_cdr
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import load_schema
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched

ALGORITHMS = {"pure_pursuit": RegulatedPurePursuit, "stanley": Stanley}
VEHICLES = ("diff", "ackermann")


@dataclasses.dataclass(frozen=True)
class ControllerSettings:
    """controller_node's own settings; the tracker and vehicle parameters are the core dataclasses
    (``TrackerParams``, ``DiffDriveParams`` / ``AckermannParams``), flattened beside these by
    :func:`agricare.ros.params.load_schema`."""

    algorithm: str = "pure_pursuit"
    vehicle: str = "diff"
    control_rate_hz: float = 20.0
    pose_timeout_s: float = 0.5
    obstacle_timeout_s: float = 1.0
    status_period_s: float = 0.5
    odom_topic: str = "odometry/filtered"
    base_frame_id: str = "base_link"

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


SCHEMA = (ControllerSettings, TrackerParams, DiffDriveParams, AckermannParams)
# the node's shipping defaults where they differ from the core's (a small diff-drive robot)
DEFAULTS = {"max_steering_angle_rad": 0.6, "wheelbase_m": 1.0, "wheel_radius_m": 0.1,
            "max_wheel_speed_radps": 20.0, "max_linear_speed_mps": 1.5}
# changing these means new subscriptions, timers or a different controller: restart the node
RESTART_ONLY = ("algorithm", "vehicle", "control_rate_hz", "odom_topic")


def make_vehicle(params):
    """The vehicle model the settings select, from the flattened parameter set."""
    if params.of(ControllerSettings).vehicle == "diff":
        return DiffDrive(params.of(DiffDriveParams))
    return Ackermann(params.of(AckermannParams))


class ControllerNode(Node):
    """Path tracking controller node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("controller_node", **kwargs)
        self.param_set = load_schema(self, *SCHEMA, defaults=DEFAULTS)
        self.params = p = self.param_set.of(ControllerSettings)
        self.tracker = ALGORITHMS[p.algorithm](self.param_set.of(TrackerParams), make_vehicle(self.param_set))
        self.param_set.on_change(self._on_params, live=set(self.param_set.values) - set(RESTART_ONLY))
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
        self._status_pub = self.create_publisher(ControllerStatus, "controller/status", RELIABLE_QOS)
        subscribe_latched(self, Path, "plan", self._on_plan)
        subscribe_latched(self, Int8MultiArray, "plan_directions", self._on_directions)
        self.create_subscription(Odometry, p.odom_topic, self._on_odom, SENSOR_QOS)
        self.create_subscription(Float32, "obstacle_distance", self._on_obstacle, SENSOR_QOS)
        subscribe_latched(self, Float32, "speed_limit_mps", self._on_speed_limit)
        self._speed_limit_mps = math.inf
        self._timer = self.create_timer(1.0 / p.control_rate_hz, self._on_timer)
        self.diag.ok("waiting for a plan", algorithm=p.algorithm, vehicle=p.vehicle)

    def _on_params(self, params) -> None:
        """Live parameter change (already validated): swap the tracker's and vehicle's parameters; the
        plan and the progress along it are kept."""
        old, new = self.tracker.params, params.of(TrackerParams)
        self.params = params.of(ControllerSettings)
        self.tracker.params = new
        self.tracker.vehicle = make_vehicle(params)
        goal = ("goal_xy_tolerance_m", "goal_yaw_tolerance_rad", "goal_xy_hysteresis_m", "goal_yaw_hysteresis_rad")
        if any(getattr(old, k) != getattr(new, k) for k in goal):
            self.tracker.goal_checker = type(self.tracker.goal_checker)(*(getattr(new, k) for k in goal))
        self.get_logger().info("parameters changed live")

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
        # serialized here (ros/fastmsg.py): the message convert.twist_stamped builds, without the objects
        self._cmd_pub.publish(twist_stamped_cdr(now_s, self.params.base_frame_id, v, w))

    def _publish_status(self, state: str, now_s: float, force: bool = False, **extra) -> None:
        key = (state, extra.get("message", ""))
        if not force and key == self._last_status and now_s - self._last_status_time_s < self.params.status_period_s:
            return
        self._last_status, self._last_status_time_s = key, now_s
        msg = ControllerStatus(state=state, message=str(extra.get("message", "") or ""))
        msg.header.stamp = to_stamp(now_s)
        msg.header.frame_id = self._plan_frame
        for name in ("cross_track_m", "progress", "distance_to_goal_m"):
            setattr(msg, name, float(extra.get(name, 0.0)))
        msg.target_index = int(extra.get("target_index", -1))
        msg.section = int(extra.get("section", -1))
        msg.direction = int(extra.get("direction", 0))
        self._status_pub.publish(msg)

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
