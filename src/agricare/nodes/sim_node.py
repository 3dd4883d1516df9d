"""sim_node: the embedded headless simulator as a ROS 2 node (thin wrapper over ``core/sim``).

Parameters (``SimNodeParams``): ``scenario_file``, ``seed``, ``step_dt_s``, ``real_time_factor``
(0 = as fast as possible), ``drive_mode`` (``timer``: the node steps itself on a steady wall-clock timer;
``external``: no timer, the embedded runner calls :meth:`SimNode.step_once`), ``prefix_frames_with_robot``
(frame ids ``<robot>/odom``, ``<robot>/base_link``...; default off: each robot has its own TF tree on
``/<robot>/tf`` as in multi-robot Nav2, ``tf_per_robot``), ``publish_tf``,
``publish_ground_truth``.

Per robot ``<r>`` (absolute names; every stamp is sim time):

=============================== ============================= ==============
topic                           type                          QoS
=============================== ============================= ==============
``/<r>/odom``                   nav_msgs/Odometry (odom)      STATE_QOS (reliable: RViz, Nav2)
``/<r>/imu/data``               sensor_msgs/Imu               SENSOR_QOS
``/<r>/gnss/fix``               sensor_msgs/NavSatFix         SENSOR_QOS
``/<r>/scan``                   sensor_msgs/LaserScan         SENSOR_QOS
``/<r>/scan_rear``              sensor_msgs/LaserScan         SENSOR_QOS    rear-facing scanner (tractor)
``/<r>/camera/image_raw``       sensor_msgs/Image (bgr8)      SENSOR_QOS
``/<r>/camera/camera_info``     sensor_msgs/CameraInfo        SENSOR_QOS
``/<r>/battery_state``          sensor_msgs/BatteryState      SENSOR_QOS
``/<r>/ground_truth/odom``      nav_msgs/Odometry (map)       RELIABLE_QOS
``/<r>/ground_truth/coverage``  std_msgs/Float64MultiArray    RELIABLE_QOS  [covered_ratio, double_ratio]
``/ground_truth/people``        geometry_msgs/PoseArray (map) RELIABLE_QOS
``/clock``                      rosgraph_msgs/Clock           RELIABLE_QOS  every step
``/<r>/tf``                     tf2_msgs/TFMessage            RELIABLE_QOS  odom -> base_link at odom rate
``/diagnostics``                diagnostic_msgs               RELIABLE_QOS
=============================== ============================= ==============

Subscribes ``/<r>/cmd_vel`` unless a safe base in the same process took the robot's command input
(:meth:`SimNode.command_input`; the embedded runner does) (geometry_msgs/TwistStamped, COMMAND_QOS;
the header stamp (sim time of the decision) is the command time: a command is applied only while it is younger
than ``cmd_max_age_s`` (default 0.25 s, the safety loop's deadline) and the vehicle's own 0.5 s timeout, else the
robot brakes to zero; unstamped, future or too old commands are refused at once) and ``/<r>/implement/sections``
(std_msgs/UInt8MultiArray, COMMAND_QOS, one byte per section left to right, nonzero = on) and
``/<r>/implement/rate`` (std_msgs/Float32MultiArray, COMMAND_QOS, rate per section: the simulated implement
applies it after its metering lag and records the truly applied dose per coverage cell).

For the runner: ``node.world`` is the core :class:`agricare.core.sim.world.World` (ground truth, contacts,
boundary violations, coverage); ``node.step_once()`` advances one ``step_dt_s`` and publishes what is due.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Pose, PoseArray, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import BatteryState, CameraInfo, Image, Imu, LaserScan, NavSatFix, NavSatStatus
from std_msgs.msg import Float32MultiArray, Float64MultiArray, UInt8MultiArray

from agricare.core.sim.scenarios import ScenarioError, load_scenario
from agricare.core.geometry import rpy_to_quat, yaw_to_quat
from agricare.core.sim.world import World
from agricare.ros.convert import bgr_to_image, header, to_stamp, yaw_to_quaternion_msg
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.fastmsg import imu_cdr, laser_scan_cdr, odometry_cdr, tf_cdr
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS, STATE_QOS

DRIVE_MODES = ("timer", "external")


@dataclass(frozen=True)
class SimNodeParams:
    scenario_file: str = ""
    seed: int = 0
    step_dt_s: float = 0.02
    real_time_factor: float = 1.0
    drive_mode: str = "timer"
    prefix_frames_with_robot: bool = False
    tf_per_robot: bool = True     # odom -> base_link on /<robot>/tf (one TF tree per namespace), else /tf
    publish_tf: bool = True
    publish_ground_truth: bool = True
    # the wheels refuse a decision older than this (its header stamp against sim time, the clock it was made
    # on): a command is applied only while ``now - stamp <= cmd_max_age_s``, so a starved or late safety loop
    # stops the robot instead of driving it on a stale decision. Default: the safety loop's deadline (the
    # supervisor's ``loop_timeout_s``). 0: off (receipt time is the command time, as before).
    cmd_max_age_s: float = 0.25

    def __post_init__(self):
        if not self.scenario_file:
            raise ValueError("scenario_file must name a scenario YAML file")
        if not (math.isfinite(self.step_dt_s) and 1e-4 <= self.step_dt_s <= 0.1):
            raise ValueError(f"step_dt_s must be in [0.0001, 0.1] s, got {self.step_dt_s!r}")
        if not (math.isfinite(self.real_time_factor) and self.real_time_factor >= 0):
            raise ValueError(f"real_time_factor must be >= 0 (0 = as fast as possible), got {self.real_time_factor!r}")
        if self.drive_mode not in DRIVE_MODES:
            raise ValueError(f"drive_mode must be one of {DRIVE_MODES}, got {self.drive_mode!r}")
        if not (math.isfinite(self.cmd_max_age_s) and self.cmd_max_age_s >= 0):
            raise ValueError(f"cmd_max_age_s must be >= 0 (0 = off), got {self.cmd_max_age_s!r}")


_ZERO36 = (0.0,) * 36   # ground truth: exact, no covariance

class _RobotIO:
    """Publishers and frame names of one robot."""

    def __init__(self, node: SimNode, name: str, sensors: dict, has_coverage: bool, prefix: bool):
        p = f"{name}/" if prefix else ""
        self.odom_frame, self.base_frame = f"{p}odom", f"{p}base_link"
        self.imu_frame, self.gnss_frame = f"{p}imu_link", f"{p}gnss_link"
        self.laser_frame, self.camera_frame = f"{p}laser", f"{p}camera_optical_frame"
        self.laser_rear_frame = f"{p}laser_rear"
        ns = f"/{name}"
        pub = node.create_publisher
        self.pubs = {}
        if "odom" in sensors:
            self.pubs["odom"] = pub(Odometry, f"{ns}/odom", STATE_QOS)
        if "imu" in sensors:
            self.pubs["imu"] = pub(Imu, f"{ns}/imu/data", SENSOR_QOS)
        if "gnss" in sensors:
            self.pubs["gnss"] = pub(NavSatFix, f"{ns}/gnss/fix", SENSOR_QOS)
        if "scan" in sensors:
            self.pubs["scan"] = pub(LaserScan, f"{ns}/scan", SENSOR_QOS)
        if "scan_rear" in sensors:
            self.pubs["scan_rear"] = pub(LaserScan, f"{ns}/scan_rear", SENSOR_QOS)
        if "camera" in sensors:
            self.pubs["camera"] = pub(CameraInfo, f"{ns}/camera/camera_info", SENSOR_QOS)
            self.image_pub = pub(Image, f"{ns}/camera/image_raw", SENSOR_QOS)
        if "battery" in sensors:
            self.pubs["battery"] = pub(BatteryState, f"{ns}/battery_state", SENSOR_QOS)
        if node.params.publish_ground_truth:
            self.pubs["ground_truth"] = pub(Odometry, f"{ns}/ground_truth/odom", RELIABLE_QOS)
            if has_coverage:
                self.pubs["coverage"] = pub(Float64MultiArray, f"{ns}/ground_truth/coverage", RELIABLE_QOS)


class _InProcessCommand:
    """What a safe base drives in the simulator: ``drive(v, w)`` every cycle, ``stop()`` at shutdown."""

    def __init__(self, world: World, robot: str):
        self.world, self.robot = world, robot

    def drive(self, v_mps: float, w_radps: float) -> None:
        self.world.set_command(self.robot, v_mps, w_radps)

    def stop(self) -> None:
        self.world.set_command(self.robot, 0.0, 0.0)


class SimNode(Node):
    """Embedded simulator node. See the module docstring for topics and parameters."""

    #: simulated seconds between the periodic diagnostics reports in external drive mode
    DIAG_PERIOD_S = 1.0

    def __init__(self, **kwargs):
        super().__init__("sim_node", **kwargs)
        self.params = load_params(self, SimNodeParams)
        try:
            spec = load_scenario(self.params.scenario_file)
        except ScenarioError as exc:
            raise ParameterError(f"{self.get_name()}: parameter 'scenario_file': {exc}") from None
        self.world = World.from_scenario(spec, seed=self.params.seed)
        self.dt_s = self.params.step_dt_s
        self._io = {}
        self._cmd_subs = {}
        self.stale_commands: dict[str, int] = {}   # decisions refused at the wheels as too old, per robot
        for name, r in self.world.robots.items():
            self._io[name] = _RobotIO(self, name, r.spec.sensors, r.coverage is not None,
                                      self.params.prefix_frames_with_robot)
            self._cmd_subs[name] = self.create_subscription(TwistStamped, f"/{name}/cmd_vel",
                                                            lambda msg, n=name: self._on_cmd(n, msg), COMMAND_QOS)
            if r.implement is not None:
                self.create_subscription(UInt8MultiArray, f"/{name}/implement/sections",
                                         lambda msg, n=name: self._on_sections(n, msg), COMMAND_QOS)
                self.create_subscription(Float32MultiArray, f"/{name}/implement/rate",
                                         lambda msg, n=name: self.world.set_rates(n, list(msg.data)), COMMAND_QOS)
        self._clock_pub = self.create_publisher(ClockMsg, "/clock", RELIABLE_QOS)
        self._people_pub = (self.create_publisher(PoseArray, "/ground_truth/people", RELIABLE_QOS)
                            if self.params.publish_ground_truth else None)
        self._tf_pub = None
        if self.params.publish_tf:
            try:
                from tf2_msgs.msg import TFMessage

                self._tf_type = TFMessage
                if self.params.tf_per_robot:
                    self._tf_pub = {name: self.create_publisher(TFMessage, f"/{name}/tf", RELIABLE_QOS)
                                    for name in self.world.robots}
                else:
                    shared = self.create_publisher(TFMessage, "/tf", RELIABLE_QOS)
                    self._tf_pub = {name: shared for name in self.world.robots}
            except ImportError:
                self.get_logger().warning("tf2_msgs is not importable: /tf (odom -> base_link) is not published")
        self._warned_sections = set()
        self._n_contacts = 0
        self._n_violations = 0
        self.diag = Diagnostics(self, "simulator")
        self._next_diag_s = None
        if self.params.drive_mode == "external":
            # stepped by the runner: the periodic report follows simulated time (every DIAG_PERIOD_S simulated),
            # stamped with it, not this node's wall clock, so two runs report at the same steps
            self.diag.drive_periodic(lambda: to_stamp(float(self.world.t_s)))
            self._next_diag_s = float(self.world.t_s) + self.DIAG_PERIOD_S
        self.diag.ok("running", scenario=spec.name, robots=",".join(self.world.robot_names))
        self._timer = None
        self._wall_start = None
        self._steps_done = 0
        if self.params.drive_mode == "timer":
            rtf = self.params.real_time_factor
            period = self.dt_s / rtf if rtf > 0 else 1e-4
            self._timer = self.create_timer(period, self._on_timer, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"scenario '{spec.name}' with {len(self.world.robots)} robot(s), dt {self.dt_s} s, "
            f"drive {self.params.drive_mode}, real-time factor {self.params.real_time_factor or 'max'}")

    # ------------------------------------------------------------------------------------------ input

    def command_input(self, robot: str) -> _InProcessCommand:
        """The in-process command input of ``robot`` for a safe base in the same process (the embedded
        runner): the robot's ``cmd_vel`` subscription is removed, so only the gated command moves it."""
        sub = self._cmd_subs.pop(robot, None)
        if sub is not None:
            self.destroy_subscription(sub)
        return _InProcessCommand(self.world, robot)

    def _on_cmd(self, robot: str, msg: TwistStamped) -> None:
        max_age = self.params.cmd_max_age_s
        if max_age <= 0:
            self.world.set_command(robot, msg.twist.linear.x, msg.twist.angular.z)
            return
        # the decision's time is its stamp (sim time, the clock the supervisor made it on); a stamp of 0, from
        # the future or older than cmd_max_age_s is no decision: the wheels get zero now
        now = self.world.t_s
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if not (0.0 < stamp <= now + self.dt_s and now - stamp <= max_age):
            self.stale_commands[robot] = self.stale_commands.get(robot, 0) + 1
            self.world.set_command(robot, 0.0, 0.0)
            return
        self.world.set_command(robot, msg.twist.linear.x, msg.twist.angular.z, t_s=min(stamp, now),
                               max_age_s=max_age)

    def decisions_refused(self) -> dict[str, int]:
        """Per robot: decisions the wheels refused as too old on arrival plus non-zero decisions that ran out of
        date (``cmd_max_age_s``) before the next one came; each one is a stop the safety loop's lateness caused."""
        out = {}
        for name, r in self.world.robots.items():
            n = self.stale_commands.get(name, 0) + r.cmd_expired
            if n:
                out[name] = n
        return out

    def _on_sections(self, robot: str, msg: UInt8MultiArray) -> None:
        n = len(self.world.robots[robot].sections)
        if len(msg.data) != n and robot not in self._warned_sections:
            self._warned_sections.add(robot)
            self.get_logger().warning(f"{robot}: implement/sections has {len(msg.data)} entries, the implement "
                                      f"has {n} sections (extra ignored, missing = off)")
        self.world.set_sections(robot, list(msg.data))

    # ------------------------------------------------------------------------------------------- step

    def _on_timer(self) -> None:
        rtf = self.params.real_time_factor
        if rtf <= 0:
            self.step_once()
            return
        now = time.monotonic()
        if self._wall_start is None:
            self._wall_start = now
        due = int((now - self._wall_start) * rtf / self.dt_s) + 1
        for _ in range(min(due - self._steps_done, 10)):  # catch up, but never spiral
            self.step_once()
        if due - self._steps_done > 50:  # far behind: stop trying to catch up
            self._steps_done = due

    def step_once(self) -> float:
        """Advance the world by ``step_dt_s``, publish every reading due and ``/clock``; returns sim time."""
        w = self.world
        w.step(self.dt_s)
        self._steps_done += 1
        t = w.t_s
        for sample in w.sensors_due():
            self._publish(sample.robot, sample.kind, sample.reading)
        self._clock_pub.publish(ClockMsg(clock=to_stamp(t)))
        if self._next_diag_s is not None and t >= self._next_diag_s - 1e-9:
            self._next_diag_s += self.DIAG_PERIOD_S
            self.diag.publish_periodic()
        if len(w.contacts) != self._n_contacts or len(w.boundary_violations) != self._n_violations:
            self._n_contacts, self._n_violations = len(w.contacts), len(w.boundary_violations)
            last = (w.contacts[-1] if w.contacts else None)
            self.diag.warn("contact or boundary violation recorded", contacts=self._n_contacts,
                           boundary_violations=self._n_violations,
                           last_contact=f"{last.robot}-{last.other}@{last.t_start_s:.2f}s" if last else "")
        return t

    # ----------------------------------------------------------------------------------------- output

    def _publish(self, robot, kind, r) -> None:
        if kind == "people":
            if self._people_pub is not None:
                msg = PoseArray(header=header(r.t_s, "map"))
                for (x, y), (vx, vy) in zip(r.positions, r.velocities):
                    p = Pose()
                    p.position.x, p.position.y = float(x), float(y)
                    p.orientation = yaw_to_quaternion_msg(math.atan2(vy, vx) if vx or vy else 0.0)
                    msg.poses.append(p)
                self._people_pub.publish(msg)
            return
        io = self._io[robot]
        if kind == "odom" and self._tf_pub is not None:   # odom -> base_link, serialized here (ros/fastmsg.py)
            w, x, y, z = yaw_to_quat(r.yaw_rad)
            self._tf_pub[robot].publish(tf_cdr([(r.t_s, io.odom_frame, io.base_frame, (float(r.x_m), float(r.y_m), 0.0),
                                                 (float(x), float(y), float(z), float(w)))]))
        pub = io.pubs.get(kind)
        if pub is None:
            return
        if kind == "odom":   # serialized here: the simulator's highest-rate message (see ros/fastmsg.py)
            w, x, y, z = yaw_to_quat(r.yaw_rad)
            msg = odometry_cdr(r.t_s, io.odom_frame, io.base_frame, (float(r.x_m), float(r.y_m), 0.0),
                               (float(x), float(y), float(z), float(w)), np.ravel(r.pose_covariance),
                               (float(r.v_mps), 0.0, 0.0), (0.0, 0.0, float(r.w_radps)),
                               np.ravel(r.twist_covariance))
        elif kind == "imu":   # serialized here too (ros/fastmsg.py: the same message rclpy would make)
            w, x, y, z = rpy_to_quat(r.roll_rad, r.pitch_rad, r.yaw_rad)
            msg = imu_cdr(r.t_s, io.imu_frame, (float(x), float(y), float(z), float(w)),
                          np.ravel(r.orientation_covariance), np.ravel(r.angular_velocity_radps),
                          np.ravel(r.angular_velocity_covariance), np.ravel(r.linear_acceleration_mps2),
                          np.ravel(r.linear_acceleration_covariance))
        elif kind == "gnss":
            msg = NavSatFix(header=header(r.t_s, io.gnss_frame))
            msg.status = NavSatStatus(status=r.status, service=NavSatStatus.SERVICE_GPS)
            msg.latitude, msg.longitude, msg.altitude = r.latitude_deg, r.longitude_deg, r.altitude_m
            msg.position_covariance = r.position_covariance.tolist()
            msg.position_covariance_type = (NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN if r.status >= 0
                                            else NavSatFix.COVARIANCE_TYPE_UNKNOWN)
        elif kind in ("scan", "scan_rear"):   # serialized here (ros/fastmsg.py): ~100 us fewer than a message
            frame = io.laser_frame if kind == "scan" else io.laser_rear_frame
            rate_hz = getattr(self.world.robots[robot], f"{kind}_params").rate_hz
            msg = laser_scan_cdr(r.t_s, frame, r.angle_min_rad, r.angle_max_rad, r.angle_increment_rad,
                                 0.0, 1.0 / rate_hz, r.range_min_m, r.range_max_m, r.ranges_m)
        elif kind == "camera":
            stamp = to_stamp(r.t_s)
            io.image_pub.publish(bgr_to_image(r.image, stamp, io.camera_frame))
            msg = CameraInfo(header=header(r.t_s, io.camera_frame), width=r.width_px, height=r.height_px,
                             distortion_model="plumb_bob")
            msg.d = [0.0] * 5
            msg.k = [float(v) for v in r.K.ravel()]
            msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            msg.p = [float(r.K[0, 0]), 0.0, float(r.K[0, 2]), 0.0, 0.0, float(r.K[1, 1]), float(r.K[1, 2]), 0.0,
                     0.0, 0.0, 1.0, 0.0]
        elif kind == "battery":
            msg = BatteryState(header=header(r.t_s, io.base_frame), voltage=r.voltage_v, current=r.current_a,
                               charge=r.charge_ah, capacity=r.capacity_ah, design_capacity=r.capacity_ah,
                               percentage=r.percentage, present=True,
                               power_supply_status=BatteryState.POWER_SUPPLY_STATUS_DISCHARGING,
                               power_supply_health=BatteryState.POWER_SUPPLY_HEALTH_GOOD,
                               power_supply_technology=BatteryState.POWER_SUPPLY_TECHNOLOGY_LION)
        elif kind == "ground_truth":
            w, x, y, z = rpy_to_quat(r.roll_rad, r.pitch_rad, r.yaw_rad)
            msg = odometry_cdr(r.t_s, "map", io.base_frame, (float(r.x_m), float(r.y_m), float(r.z_m)),
                               (float(x), float(y), float(z), float(w)), _ZERO36,
                               (float(r.v_mps), float(r.v_lat_mps), 0.0), (0.0, 0.0, float(r.w_radps)), _ZERO36)
        elif kind == "coverage":
            msg = Float64MultiArray(data=[r.covered_ratio, r.double_ratio])
        else:
            return
        pub.publish(msg)

    def on_shutdown(self) -> None:
        """Stop every robot (the world keeps its state for the runner's report)."""
        for name in self.world.robot_names:
            self.world.set_command(name, 0.0, 0.0)


def main(args=None):
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
