"""safety_supervisor_node: the one gate in front of the wheels (logic: ``agricare.core.safety``).

The safe base: the process that owns this node attaches the wheels to it (:meth:`attach_base`): the
``safe_base_node`` composes it with the base driver, the embedded runner with the simulator. The gated
command is then handed over in memory in the same cycle as its verdict (``gated_command``: zero unless RUN or
SLOW) and never crosses DDS; a ``cmd_vel`` published by a peer reaches nobody. ``publish_cmd_vel`` (default
true, false on a vehicle) still publishes the gated command for recordings and for a simulator in another
process (Gazebo, multi-process runs), which is the only case where it crosses the network.

E-stop and reset come from the vehicle (:class:`agricare.core.safety.panel.LocalPanel`: ``panel`` =
``socket`` serves it on a Unix socket for the vehicle's own panel process, ``simulated`` reports
"released" every cycle for simulations, ``none`` leaves it to the owning process, ``auto`` (default) is
``simulated`` with ``use_sim_time`` and ``none`` otherwise). The e-stop input is
required (``require_estop``): a panel that stops reporting is a protective stop. On the network,
``safety/estop`` true presses the e-stop (anyone may stop the robot); false is ignored; ``safety/reset``
refuses every request and reports it. Watchdogs use the steady clock (the node clock only with
``use_sim_time``, where the simulator's clock is the only time that advances with the world).

Subscribes
    ``cmd_vel_smoothed`` (geometry_msgs/TwistStamped, command QoS), ``odom`` (nav_msgs/Odometry),
    ``imu/data`` (sensor_msgs/Imu), ``scan`` (sensor_msgs/LaserScan), ``scan_rear`` (sensor_msgs/LaserScan, the
    rear-facing scanner; only when ``scan_rear`` is in ``required_inputs`` or ``reverse_required_inputs``, mount
    from the description's ``laser_rear`` frame), ``<pose_topic>`` (nav_msgs/Odometry,
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
    ``safety/reset`` (std_srvs/Trigger): always refused (a network peer must not clear a stop) and
    reported on ``/diagnostics``; the reset comes from the local panel, and releases a latched e-stop /
    latched faults only when the e-stop input is false and no fault condition is active.

Input time is the node clock at reception (``use_sim_time`` works). Shutdown publishes a zero command.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from geometry_msgs.msg import PolygonStamped, TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState, Imu, LaserScan
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger

from agricare.core.geometry import quat_to_rpy, quat_to_yaw, se2_transform_points
from agricare.core.safety.fields import scan_to_safety_points, validate_polygon
from agricare.core.safety.health import CommandCheck, FrozenOdometry, StuckImu
from agricare.core.safety.panel import LocalPanel, UnixPanelServer
from agricare.core.security.commands import CommandRejected, CommandVerifier
from agricare.core.security.keys import KeyFileError, TrustList
from agricare.core.safety.supervisor import (
    SafetyState,
    Supervisor,
    SupervisorInputs,
    SupervisorParams,
    gated_command,
)
from agricare.ros.convert import from_stamp, polygon_to_array
from agricare.ros.fastmsg import header_cdr, twist_stamped_cdr
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.guard import SecurityReport, guarded
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.mounts import MountFromDescription
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
    # lidar pose in base_link [x_m, y_m, yaw_rad]: NaN = from robot_description (the URDF); set = an override
    scan_mount_xyyaw: tuple[float, ...] = (math.nan, math.nan, math.nan)
    scan_rear_mount_xyyaw: tuple[float, ...] = (math.nan, math.nan, math.nan)   # the rear scanner's (laser_rear)
    geofence_topic_enabled: bool = False
    trust_file: str = ""
    command_replay_file: str = ""
    require_estop: bool = True
    scan_min_valid_fraction: float = 0.5
    publish_cmd_vel: bool = True
    panel: str = "auto"
    panel_socket_path: str = ""
    # input health (agricare.core.safety.health); 0 switches a check off
    cmd_range_factor: float = 2.0           # commands beyond this x the limits are corrupt: refused
    odom_frozen_min_speed_mps: float = 0.2  # pose still for odom_timeout_s while sending at least this
    odom_frozen_min_yaw_rate_radps: float = 0.1  # ... or while the IMU measures at least this yaw rate
    imu_stuck_samples: int = 8              # this many identical IMU readings in a row: stuck

    def __post_init__(self):
        super().__post_init__()
        if not self.command_replay_file:
            raise ValueError("command_replay_file: must be set (the signed-command sequence store: a stop or "
                             "geofence command must not be replayable after a restart)")
        if self.panel not in ("auto", "none", "socket", "simulated"):
            raise ValueError(f"panel: one of auto, none, socket, simulated; got {self.panel!r}")
        if not 0.0 <= self.scan_min_valid_fraction <= 1.0:
            raise ValueError(f"scan_min_valid_fraction: must be in [0, 1], got {self.scan_min_valid_fraction}")
        if not (math.isfinite(self.loop_rate_hz) and self.loop_rate_hz > 0):
            raise ValueError(f"loop_rate_hz: must be > 0, got {self.loop_rate_hz}")
        if self.loop_timeout_s <= 1.0 / self.loop_rate_hz:
            raise ValueError(f"loop_timeout_s: {self.loop_timeout_s} must exceed the loop period "
                             f"1 / loop_rate_hz = {1.0 / self.loop_rate_hz:.3f} s")
        for name in ("scan_mount_xyyaw", "scan_rear_mount_xyyaw"):
            mount = getattr(self, name)
            if len(mount) != 3 or not (all(math.isfinite(v) for v in mount) or all(math.isnan(v) for v in mount)):
                raise ValueError(f"{name}: need 3 finite values [x_m, y_m, yaw_rad] (or NaN: from "
                                 f"robot_description), got {list(mount)}")
        for name in ("base_frame", "map_frame", "pose_topic"):
            if not getattr(self, name):
                raise ValueError(f"{name}: must not be empty")

    def supervisor_params(self) -> SupervisorParams:
        names = [f.name for f in dataclasses.fields(SupervisorParams)]
        values = {n: getattr(self, n) for n in names}
        if self.require_estop and "estop" not in self.required_inputs:
            values["required_inputs"] = tuple(self.required_inputs) + ("estop",)
        return SupervisorParams(**values)


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
    PARAMS = SafetyNodeParams

    def __init__(self, node_name: str = "safety_supervisor_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self._base = None  # set first: a failed start still shuts down cleanly (the context destroys the node)
        self._panel_server = None
        self.params = load_params(self, self.PARAMS)
        self._sim_time = bool(self.get_parameter("use_sim_time").value)
        self.security = SecurityReport(self)
        self.panel = LocalPanel()
        if self.params.panel == "socket":
            if self._sim_time:
                raise ParameterError(f"{self.get_name()}: panel 'socket' needs the steady clock (use_sim_time false)")
            try:
                self._panel_server = UnixPanelServer(self.panel, self._panel_socket_path(), self._now)
            except (OSError, ValueError) as exc:
                raise ParameterError(f"{self.get_name()}: parameter 'panel_socket_path': {exc}") from exc
        self._estop_event = False
        # a simulation has no e-stop circuit: "auto" simulates a released one only with use_sim_time
        self._panel_simulated = self.params.panel == "simulated" or (self.params.panel == "auto" and self._sim_time)
        self.supervisor = Supervisor(self.params.supervisor_params())
        self.inputs = SupervisorInputs()
        p = self.params
        self._cmd_check = CommandCheck(p.cmd_timeout_s, max(p.max_speed_mps, p.max_reverse_speed_mps),
                                       p.max_angular_speed_radps, p.cmd_range_factor)
        self._frozen = FrozenOdometry(p.odom_timeout_s, p.odom_frozen_min_speed_mps, p.odom_frozen_min_yaw_rate_radps)
        self._stuck = StuckImu(p.imu_stuck_samples)
        self._refused_pending: list[str] = []
        self.refused_counts: dict[str, int] = {}   # every refused command by reason (on /diagnostics)
        self.last_decision = None
        self._odom_frame = ""
        self._odom_pose = None  # [x, y, yaw] of base in the odom frame
        self._pose_frame = ""
        self.diag = Diagnostics(self, "safety")
        # where the lidar sits: from the URDF (robot_description); until known, scans are not used (no_data)
        self.scan_mount = MountFromDescription(self, "laser", self.params.scan_mount_xyyaw, "scan_mount_xyyaw")
        self.uses_scan_rear = "scan_rear" in tuple(p.required_inputs) + tuple(p.reverse_required_inputs)
        self.scan_rear_mount = MountFromDescription(self, "laser_rear", self.params.scan_rear_mount_xyyaw,
                                                    "scan_rear_mount_xyyaw") if self.uses_scan_rear else None
        self._cmd_pub = self.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS) \
            if self.params.publish_cmd_vel else None
        self._hb_pub = self.create_publisher(Header, "safety/heartbeat", COMMAND_QOS) \
            if self.params.publish_cmd_vel else None
        self._state_pub = self.create_publisher(SafetyStateMsg, "safety/state", LATCHED_QOS)
        g = self.security
        # every command in the order it came (depth 10, not the command QoS's 1): the last one is the command,
        # the ones before it are checked too, so a reordered pair is not hidden by the queue keeping one
        self.create_subscription(TwistStamped, "cmd_vel_smoothed", guarded(g, "cmd_vel_smoothed")(self._on_cmd),
                                 QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                            reliability=ReliabilityPolicy.RELIABLE,
                                            durability=DurabilityPolicy.VOLATILE))
        self.create_subscription(Odometry, "odom", guarded(g, "odom")(self._on_odom), SENSOR_QOS)
        self.create_subscription(Imu, "imu/data", guarded(g, "imu")(self._on_imu), SENSOR_QOS)
        self.create_subscription(LaserScan, "scan", guarded(g, "scan")(self._on_scan), SENSOR_QOS)
        if self.uses_scan_rear:
            self.create_subscription(LaserScan, "scan_rear", guarded(g, "scan_rear")(self._on_scan_rear), SENSOR_QOS)
        self.create_subscription(Odometry, self.params.pose_topic, guarded(g, "pose")(self._on_pose), SENSOR_QOS)
        self.create_subscription(BatteryState, "battery_state", guarded(g, "battery")(self._on_battery), SENSOR_QOS)
        self.create_subscription(Bool, "safety/estop", guarded(g, "estop")(self._on_estop), RELIABLE_QOS)
        self.create_subscription(TrackedObjectArray, "tracked_objects", guarded(g, "tracked_objects")(
            self._on_objects), SENSOR_QOS)
        subscribe_latched(self, PolygonStamped, "safety/geofence", guarded(g, "geofence")(self._on_geofence))
        self.commands = None
        if self.params.trust_file:
            try:
                self.commands = CommandVerifier(TrustList.load(self.params.trust_file), ["geofence", "protective_stop"],
                                                self.get_namespace().strip("/"),
                                                state_file=self.params.command_replay_file)
            except (KeyFileError, OSError, ValueError) as exc:
                raise ParameterError(f"{self.get_name()}: parameter 'trust_file': {exc}") from None
        self.create_subscription(String, "safety/command", guarded(g, "safety_command")(self._on_command),
                                 RELIABLE_QOS)
        self._remote_stop = False
        self.create_service(Trigger, "safety/reset", self._on_reset)
        self._timer = self.create_timer(1.0 / self.params.loop_rate_hz, self.step)
        self.autostart()
        self._last_state_key = None
        self._last_state_t = -1e9
        self._diag_key = None
        self._diag_refused, self._diag_refused_t = 0, -1e9
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
        """Watchdog time (s): the steady clock; the node clock only with use_sim_time (simulations)."""
        if self._sim_time:
            return self.get_clock().now().nanoseconds * 1e-9
        return time.monotonic()

    def _panel_socket_path(self) -> str:
        if not self.params.panel_socket_path:
            raise ValueError("must be set when panel is 'socket'")
        return self.params.panel_socket_path

    # ------------------------------------------------------------------ the safe base
    def attach_base(self, base) -> None:
        """Hand the wheels to this node: every cycle ``base.drive(v_mps, w_radps)`` gets the gated command of
        that cycle (zero unless RUN/SLOW); ``base.stop()`` at shutdown. Optional ``base.odometry()`` returns
        the measured ``(v_mps, w_radps)`` (or None) and then feeds the odometry input in memory."""
        self._base = base

    def use_simulated_panel(self) -> None:
        """Simulations: an e-stop circuit that is never pressed, refreshed every cycle."""
        self._panel_simulated = True

    def _stamp(self):
        """Receipt time of an input; None (not received) while simulated time has not started."""
        t = self._now()
        return t if t > 0.0 else None

    def _on_cmd(self, msg: TwistStamped):
        v, w = float(msg.twist.linear.x), float(msg.twist.angular.z)
        # the stamp is compared on the clock that made it (ROS time: simulated or system), not the steady one
        reason = self._cmd_check.check(from_stamp(msg.header.stamp), self.get_clock().now().nanoseconds * 1e-9, v, w)
        if reason is not None:
            self.refused_counts[reason] = self.refused_counts.get(reason, 0) + 1
            self._refused_pending.append(reason)
            if self.refused_counts[reason] == 1:
                self.get_logger().error(f"command refused: {reason} (v {v:.3g} m/s, w {w:.3g} rad/s)")
            return
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
        if self.inputs.odom_stamp_s is not None:
            self._frozen.pose(self.inputs.odom_stamp_s, (msg.pose.pose.position.x, msg.pose.pose.position.y,
                                                         q.w, q.x, q.y, q.z))

    def _on_imu(self, msg: Imu):
        self.inputs.roll_rad, self.inputs.pitch_rad = imu_roll_pitch(msg)
        self.inputs.imu_stamp_s = self._stamp()
        o, g, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        self._stuck.reading((o.w, o.x, o.y, o.z, g.x, g.y, g.z, a.x, a.y, a.z))
        if self.inputs.imu_stamp_s is not None:
            self._frozen.gyro(self.inputs.imu_stamp_s, g.z)

    def _on_scan(self, msg: LaserScan):
        self._take_scan("scan", self.scan_mount, msg)

    def _on_scan_rear(self, msg: LaserScan):
        self._take_scan("scan_rear", self.scan_rear_mount, msg)

    def _take_scan(self, name: str, mount: MountFromDescription, msg: LaserScan):
        """One scanner's points in base_link (``<name>_points_in_base``, ``_blinded``, ``_stamp_s``); unused until
        its mount is known."""
        if mount.value is None:
            return
        pts, blinded = scan_to_safety_points(msg.ranges, msg.angle_min, msg.angle_increment, msg.range_min,
                                             msg.range_max, mount.value, self.params.scan_min_valid_fraction)
        setattr(self.inputs, f"{name}_points_in_base", np.full((1, 2), np.nan) if pts is None else pts)
        setattr(self.inputs, f"{name}_blinded", blinded)
        setattr(self.inputs, f"{name}_stamp_s", self._stamp())

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
        """The network can press the e-stop (latches at once), never release or refresh it."""
        if msg.data:
            self._estop_event = True
            self.step()  # act at once, not at the next tick
        else:
            self.security.refused("estop", "release_from_network", "only the vehicle's panel releases")

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

    def _on_command(self, msg: String):
        """Signed commands (``safety/command``, std_msgs/String envelope): ``geofence`` with payload
        ``{"polygon": [[x, y], ...]}`` (map frame; ``[]`` clears) and ``protective_stop`` with ``{"stop": bool}``
        (a remote protective stop and its release; it never releases the e-stop)."""
        if self.commands is None:
            self.security.refused("safety_command", "no_trust_list", "this safe base accepts no remote commands")
            return
        try:
            cmd = self.commands.verify(msg.data, time.time())
        except CommandRejected as exc:
            self.security.refused("safety_command", exc.reason, exc.detail)
            return
        try:
            if cmd.kind == "protective_stop":
                stop = cmd.payload["stop"]
                if not isinstance(stop, bool):
                    raise TypeError("stop must be true or false")
                self._remote_stop = stop
            else:
                ring = np.asarray(cmd.payload["polygon"], dtype=float).reshape(-1, 2)
                polys = [] if len(ring) == 0 else [validate_polygon("geofence", ring)]
                self.supervisor.set_dynamic_keep_out(polys)
        except (KeyError, TypeError, ValueError) as exc:
            self.security.refused(cmd.kind, "malformed", str(exc)[:120])
            return
        self.security.accepted(cmd.kind)
        self.get_logger().info(f"signed {cmd.kind} from key {cmd.key_id} applied")
        if cmd.kind == "protective_stop" and self._remote_stop:
            self.step()

    def _on_geofence(self, msg: PolygonStamped):
        if not self.params.geofence_topic_enabled or self.commands is not None:
            self.security.refused("geofence", "unsigned", "use a signed geofence command on safety/command")
            return
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
        response.success = False
        response.message = "refused: a stop is reset only from the vehicle's own panel"
        self.security.refused("reset", "network_request", "safety/reset service")
        return response

    def _local_reset(self) -> None:
        ok, message = self.supervisor.reset()
        self.panel.reset_results.append((ok, message))
        if ok:
            self.get_logger().info(f"reset from the local panel: {message}")
        else:
            self.get_logger().warning(f"local reset refused: {message}")

    # ------------------------------------------------------------------ loop
    def step(self):
        if not self.active:  # inactive: no command and no heartbeat, so the base driver holds the wheels still
            if self._base is not None:
                self._base.drive(0.0, 0.0)
            return
        t = self._now()
        if t <= 0.0:
            # simulated time has not started (no /clock yet): hold still, judge nothing. Inputs that arrived
            # before time existed would look stale at the first tick and latch a fault.
            self._drive(0.0, 0.0, self.get_clock().now().to_msg())
            return
        if self._panel_simulated:
            self.panel.report(False, t)
        pin = getattr(self._base, "estop_input", None)
        if callable(pin):  # the e-stop circuit read as an input pin by the motor driver
            pressed = pin()
            if pressed is not None:
                self.panel.report(bool(pressed), t)
        pressed, refreshed = self.panel.state()
        self.inputs.estop = pressed or self._estop_event
        self.inputs.remote_stop = self._remote_stop
        self.inputs.estop_stamp_s = refreshed if not self._estop_event else t
        self._estop_event = False
        if self._base is not None and hasattr(self._base, "odometry"):
            meas = self._base.odometry()
            if meas is not None:
                self.inputs.odom_v_mps, self.inputs.odom_w_radps = meas
                self.inputs.odom_stamp_s = t
        self.inputs.odom_frozen = self._frozen.frozen(t)
        self.inputs.imu_stuck = self._stuck.stuck
        self.inputs.cmd_refused = tuple(self._refused_pending)
        self._refused_pending.clear()
        d = self.supervisor.update(t, self.inputs)
        if self.panel.take_reset_request():
            self._local_reset()
        self.last_decision = d
        stamp = self.get_clock().now().to_msg()
        v, w = gated_command(d)
        self._frozen.command(t, v)
        self._drive(v, w, stamp)
        if self._hb_pub is not None:
            self._hb_pub.publish(header_cdr(stamp, d.state.name))   # serialized: ros/fastmsg.py
        key = (int(d.state), d.reason, round(float(d.limit_mps), 3), bool(d.estop_latched))
        if key != self._last_state_key or t - self._last_state_t >= 1.0:  # latched: on change, and 1 Hz
            self._publish_state(d, stamp)
            self._last_state_key, self._last_state_t = key, t
        self._report(d)

    def _drive(self, v: float, w: float, stamp) -> None:
        """The gated command of this cycle to the wheels (in memory) and, if enabled, on ``cmd_vel``."""
        if self._base is not None:
            self._base.drive(v, w)
        if self._cmd_pub is not None:
            self._cmd_pub.publish(twist_stamped_cdr(stamp, self.params.base_frame, v, w))   # ros/fastmsg.py

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
        refused = sum(self.refused_counts.values())
        now = time.monotonic()
        recount = refused != self._diag_refused and now - self._diag_refused_t >= 1.0   # new refusals: 1 Hz
        if key == self._diag_key and d.transition is None and not recount:
            return
        self._diag_refused, self._diag_refused_t = refused, now
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
        values.update({f"refused.{k}": v for k, v in sorted(self.refused_counts.items())})
        values.update(state=d.state.name, speed_limit_mps=f"{d.limit_mps:.3f}", estop_latched=d.estop_latched,
                      fault_latched=d.fault_latched)
        getattr(self.diag, level)(text, **values)

    def stop_outputs(self):
        """Leave the robot with a zero command: to the attached wheels and on cmd_vel (the standalone base
        driver also stops on a stale heartbeat)."""
        self._drive(0.0, 0.0, self.get_clock().now().to_msg())

    def on_shutdown(self, state=None):
        """Process exit (and the lifecycle shutdown): zero command, then release the wheels and the panel."""
        ret = super().on_shutdown(state)
        if self._base is not None and hasattr(self._base, "stop"):
            self._base.stop()
        if self._panel_server is not None:
            self._panel_server.close()
            self._panel_server = None
        return ret


def main(args=None):
    return run_node(SafetySupervisorNode, args)


if __name__ == "__main__":
    main()
