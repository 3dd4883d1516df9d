"""safety_supervisor_node: the one gate in front of the wheels (logic: ``agricare.core.safety``).

Subscribes
    ``cmd_vel_smoothed`` (geometry_msgs/TwistStamped, command QoS), ``odom`` (nav_msgs/Odometry),
    ``imu/data`` (sensor_msgs/Imu), ``scan`` (sensor_msgs/LaserScan), ``<pose_topic>`` (nav_msgs/Odometry,
    default ``odometry/filtered``, map pose for the geofence), ``tracked_objects``
    (agricare_interfaces/TrackedObjectArray; frame ``base_frame``, the ``odom`` frame or the pose frame),
    ``battery_state`` (sensor_msgs/BatteryState) -- all sensor QoS; ``safety/estop`` (std_msgs/Bool,
    reliable; true latches), ``safety/geofence`` (geometry_msgs/PolygonStamped in ``map_frame``, latched
    QoS: one dynamic keep-out polygon that replaces the previous one; an empty polygon clears it).
Publishes (every loop, ``loop_rate_hz``)
    ``cmd_vel`` (geometry_msgs/TwistStamped, command QoS; nobody else publishes it),
    ``safety/heartbeat`` (std_msgs/Header: stamp = now, frame_id = state name; command QoS),
    ``safety/state`` (agricare_interfaces/SafetyState, latched QoS), ``/diagnostics`` (each transition and
    reason change at once, counters of every reason as values).
Service
    ``safety/reset`` (std_srvs/Trigger): releases a latched e-stop / latched faults only when the e-stop
    input is false and no fault condition is active.

Input time is the node clock at reception (``use_sim_time`` works). Shutdown publishes a zero command.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from geometry_msgs.msg import PolygonStamped, TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter
from sensor_msgs.msg import BatteryState, Imu, LaserScan
from std_msgs.msg import Bool, Header
from std_srvs.srv import Trigger

from agricare.core.geometry import quat_to_rpy, quat_to_yaw, se2_transform_points
from agricare.core.safety.fields import scan_to_points_in_base, validate_polygon
from agricare.core.safety.supervisor import SafetyState, Supervisor, SupervisorInputs, SupervisorParams
from agricare.ros.convert import polygon_to_array, twist_stamped
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params
from agricare.ros.qos import COMMAND_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched

from agricare_interfaces.msg import SafetyState as SafetyStateMsg
from agricare_interfaces.msg import TrackedObjectArray

_DIAG_LEVEL = {SafetyState.RUN: "ok", SafetyState.SLOW: "ok", SafetyState.PROTECTIVE_STOP: "warn",
               SafetyState.EMERGENCY_STOP: "error", SafetyState.FAULT: "error"}


@dataclasses.dataclass(frozen=True)
class SafetyNodeParams(SupervisorParams):
    """safety_supervisor_node parameters: every ``SupervisorParams`` field plus the node's own."""

    loop_rate_hz: float = 20.0
    base_frame: str = "base_link"
    map_frame: str = "map"
    pose_topic: str = "odometry/filtered"
    scan_mount_xyyaw: tuple[float, ...] = (0.0, 0.0, 0.0)
    geofence_topic_enabled: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.loop_rate_hz) and self.loop_rate_hz > 0):
            raise ValueError(f"loop_rate_hz: must be > 0, got {self.loop_rate_hz}")
        if self.loop_timeout_s <= 1.0 / self.loop_rate_hz:
            raise ValueError(f"loop_timeout_s: {self.loop_timeout_s} must exceed the loop period "
                             f"1 / loop_rate_hz = {1.0 / self.loop_rate_hz:.3f} s")
        if len(self.scan_mount_xyyaw) != 3 or not all(math.isfinite(v) for v in self.scan_mount_xyyaw):
            raise ValueError(f"scan_mount_xyyaw: need 3 finite values [x_m, y_m, yaw_rad], got "
                             f"{list(self.scan_mount_xyyaw)}")
        for name in ("base_frame", "map_frame", "pose_topic"):
            if not getattr(self, name):
                raise ValueError(f"{name}: must not be empty")

    def supervisor_params(self) -> SupervisorParams:
        names = [f.name for f in dataclasses.fields(SupervisorParams)]
        return SupervisorParams(**{n: getattr(self, n) for n in names})


def imu_roll_pitch(msg: Imu) -> tuple[float, float]:
    """Roll and pitch (rad) from the orientation, or from gravity when the orientation is unknown
    (``orientation_covariance[0] == -1``, sensor_msgs/Imu convention). NaN for a corrupt message."""
    if msg.orientation_covariance[0] == -1.0:
        a = msg.linear_acceleration
        return math.atan2(a.y, a.z), math.atan2(-a.x, math.hypot(a.y, a.z))
    q = msg.orientation
    try:
        roll, pitch, _ = quat_to_rpy((q.w, q.x, q.y, q.z))
    except ValueError:
        return math.nan, math.nan
    return roll, pitch


class SafetySupervisorNode(ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("safety_supervisor_node", **kwargs)
        self.params = load_params(self, SafetyNodeParams)
        self.supervisor = Supervisor(self.params.supervisor_params())
        self.inputs = SupervisorInputs()
        self.last_decision = None
        self._odom_frame = ""
        self._odom_pose = None  # [x, y, yaw] of base in the odom frame
        self._pose_frame = ""
        self.diag = Diagnostics(self, "safety")
        self._cmd_pub = self.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
        self._hb_pub = self.create_publisher(Header, "safety/heartbeat", COMMAND_QOS)
        self._state_pub = self.create_publisher(SafetyStateMsg, "safety/state", LATCHED_QOS)
        self.create_subscription(TwistStamped, "cmd_vel_smoothed", self._on_cmd, COMMAND_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        self.create_subscription(Imu, "imu/data", self._on_imu, SENSOR_QOS)
        self.create_subscription(LaserScan, "scan", self._on_scan, SENSOR_QOS)
        self.create_subscription(Odometry, self.params.pose_topic, self._on_pose, SENSOR_QOS)
        self.create_subscription(BatteryState, "battery_state", self._on_battery, SENSOR_QOS)
        self.create_subscription(Bool, "safety/estop", self._on_estop, RELIABLE_QOS)
        self.create_subscription(TrackedObjectArray, "tracked_objects", self._on_objects, SENSOR_QOS)
        if self.params.geofence_topic_enabled:
            subscribe_latched(self, PolygonStamped, "safety/geofence", self._on_geofence)
        self.create_service(Trigger, "safety/reset", self._on_reset)
        self._timer = self.create_timer(1.0 / self.params.loop_rate_hz, self.step)
        self.autostart()
        self._last_state_key = None
        self._last_state_t = -1e9
        self._diag_key = None
        self.get_logger().info(f"safety supervisor up: required inputs {self.supervisor.required_inputs()}, "
                               f"max {self.params.max_speed_mps} m/s, loop {self.params.loop_rate_hz} Hz")

    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        """Declare parameters that ``load_params`` gives only a type (empty-array defaults such as
        ``keep_in_xy``) as dynamically typed and unset instead: reading a statically typed, unset
        parameter raises in rclpy, and an unset one lets ``load_params`` fall back to the empty default
        while an override of any array type is still accepted."""
        if isinstance(value, Parameter.Type):
            descriptor = descriptor if descriptor is not None else ParameterDescriptor()
            descriptor.dynamic_typing = True
            value = None
        return super().declare_parameter(name, value, descriptor, ignore_override)

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self):
        """Receipt time of an input; None (not received) while simulated time has not started."""
        t = self._now()
        return t if t > 0.0 else None

    def _on_cmd(self, msg: TwistStamped):
        self.inputs.cmd_v_mps = msg.twist.linear.x
        self.inputs.cmd_w_radps = msg.twist.angular.z
        self.inputs.cmd_stamp_s = self._stamp()

    def _on_odom(self, msg: Odometry):
        self.inputs.odom_v_mps = msg.twist.twist.linear.x
        self.inputs.odom_w_radps = msg.twist.twist.angular.z
        self.inputs.odom_stamp_s = self._stamp()
        q = msg.pose.pose.orientation
        self._odom_frame = msg.header.frame_id
        self._odom_pose = np.array([msg.pose.pose.position.x, msg.pose.pose.position.y,
                                    quat_to_yaw((q.w, q.x, q.y, q.z))])

    def _on_imu(self, msg: Imu):
        self.inputs.roll_rad, self.inputs.pitch_rad = imu_roll_pitch(msg)
        self.inputs.imu_stamp_s = self._stamp()

    def _on_scan(self, msg: LaserScan):
        pts = scan_to_points_in_base(msg.ranges, msg.angle_min, msg.angle_increment, msg.range_min,
                                     msg.range_max, self.params.scan_mount_xyyaw)
        self.inputs.scan_points_in_base = np.full((1, 2), np.nan) if pts is None else pts
        self.inputs.scan_stamp_s = self._stamp()

    def _on_pose(self, msg: Odometry):
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            self.get_logger().warning(f"{self.params.pose_topic} in frame '{msg.header.frame_id}', expected "
                                   f"'{self.params.map_frame}': ignored", throttle_duration_sec=5.0)
            return
        q = msg.pose.pose.orientation
        yaw = quat_to_yaw((q.w, q.x, q.y, q.z))
        self._pose_frame = msg.header.frame_id or self.params.map_frame
        self.inputs.pose_in_map = np.array([msg.pose.pose.position.x, msg.pose.pose.position.y, yaw])
        self.inputs.pose_stamp_s = self._stamp()

    def _on_battery(self, msg: BatteryState):
        self.inputs.battery_fraction = float(msg.percentage)
        self.inputs.battery_stamp_s = self._stamp()

    def _on_estop(self, msg: Bool):
        self.inputs.estop = bool(msg.data)
        self.inputs.estop_stamp_s = self._now()
        if msg.data:
            self.step()  # act at once, not at the next tick

    def _on_objects(self, msg):
        frame = msg.header.frame_id
        if frame in ("", self.params.base_frame):
            T = None
        elif frame == self._odom_frame and self._odom_pose is not None:
            T = self._odom_pose
        elif frame == self._pose_frame and self.inputs.pose_in_map is not None:
            T = self.inputs.pose_in_map
        else:
            self.get_logger().warning(f"tracked_objects in unknown frame '{frame}': ignored",
                                   throttle_duration_sec=5.0)
            return
        rows = np.array([[o.position.x, o.position.y, o.velocity.x, o.velocity.y, o.radius_m,
                          1.0 if o.is_person else 0.0] for o in msg.objects], dtype=float).reshape(-1, 6)
        if T is not None and len(rows):
            x, y, yaw = T
            c, s = math.cos(yaw), math.sin(yaw)
            rows[:, 0:2] = se2_transform_points([-c * x - s * y, s * x - c * y, -yaw], rows[:, 0:2])
            vx, vy = rows[:, 2].copy(), rows[:, 3].copy()
            rows[:, 2], rows[:, 3] = c * vx + s * vy, -s * vx + c * vy
        self.inputs.objects_in_base = rows
        self.inputs.objects_stamp_s = self._stamp()

    def _on_geofence(self, msg: PolygonStamped):
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            self.get_logger().error(f"safety/geofence in frame '{msg.header.frame_id}', expected "
                                    f"'{self.params.map_frame}': rejected")
            return
        ring = polygon_to_array(msg.polygon)
        try:
            polys = [] if len(ring) == 0 else [validate_polygon("safety/geofence", ring)]
            self.supervisor.set_dynamic_keep_out(polys)
        except ValueError as exc:
            self.get_logger().error(f"rejected keep-out polygon: {exc}")
            return
        self.get_logger().info(f"dynamic keep-out {'cleared' if not polys else f'set ({len(ring)} vertices)'}")

    def _on_reset(self, request, response):
        ok, message = self.supervisor.reset()
        response.success, response.message = ok, message
        if ok:
            self.get_logger().info(f"reset: {message}")
        else:
            self.get_logger().warning(f"reset refused: {message}")
        return response

    # ------------------------------------------------------------------ loop
    def step(self):
        if not self.active:  # inactive: no command and no heartbeat, so the base driver holds the wheels still
            return
        t = self._now()
        if t <= 0.0:
            # simulated time has not started (no /clock yet): hold still, judge nothing. Inputs that arrived
            # before time existed would look stale at the first tick and latch a fault.
            self._cmd_pub.publish(twist_stamped(0.0, 0.0, self.get_clock().now().to_msg(), self.params.base_frame))
            return
        d = self.supervisor.update(t, self.inputs)
        self.last_decision = d
        stamp = self.get_clock().now().to_msg()
        self._cmd_pub.publish(twist_stamped(d.cmd_v_mps, d.cmd_w_radps, stamp, self.params.base_frame))
        self._hb_pub.publish(Header(stamp=stamp, frame_id=d.state.name))
        key = (int(d.state), d.reason, round(float(d.limit_mps), 3), bool(d.estop_latched))
        if key != self._last_state_key or t - self._last_state_t >= 1.0:  # latched: on change, and 1 Hz
            self._publish_state(d, stamp)
            self._last_state_key, self._last_state_t = key, t
        self._report(d)

    def _publish_state(self, d, stamp):
        msg = SafetyStateMsg()
        msg.header = Header(stamp=stamp, frame_id=self.params.base_frame)
        msg.state = int(d.state)
        msg.reason = d.reason
        msg.speed_limit_mps = float(d.limit_mps)
        msg.estop_latched = bool(d.estop_latched)
        self._state_pub.publish(msg)

    def _report(self, d):
        key = (d.state, d.reasons, d.warnings)
        if key == self._diag_key and d.transition is None:
            return
        prev = self._diag_key[0].name if self._diag_key else "START"
        self._diag_key = key
        text = f"{d.state.name}" + (f": {d.reason}" if d.reasons else "")
        if d.warnings:
            text += f" [{','.join(d.warnings)}]"
        if d.transition is not None:
            text += f" (from {prev})"
            if d.state in (SafetyState.RUN, SafetyState.SLOW):
                self.get_logger().info(f"safety {prev} -> {text}")
            else:
                self.get_logger().warning(f"safety {prev} -> {text}")
        level = "warn" if d.warnings and _DIAG_LEVEL[d.state] == "ok" else _DIAG_LEVEL[d.state]
        values = {f"count.{k}": v for k, v in sorted(self.supervisor.counters.items())}
        values.update(state=d.state.name, speed_limit_mps=f"{d.limit_mps:.3f}", estop_latched=d.estop_latched,
                      fault_latched=d.fault_latched)
        getattr(self.diag, level)(text, **values)

    def stop_outputs(self):
        """Leave the robot with a zero command (the base driver also stops on a stale heartbeat)."""
        stamp = self.get_clock().now().to_msg()
        self._cmd_pub.publish(twist_stamped(0.0, 0.0, stamp, self.params.base_frame))


def main(args=None):
    return run_node(SafetySupervisorNode, args)


if __name__ == "__main__":
    main()
