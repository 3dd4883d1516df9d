"""In-process rclpy tests of safety_supervisor_node."""

from __future__ import annotations

import math
import os
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Point32, PolygonStamped, TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Imu, LaserScan  # noqa: E402
from std_msgs.msg import Bool, Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from agricare.core.safety.supervisor import SafetyState  # noqa: E402
from agricare.nodes.safety_supervisor_node import SafetySupervisorNode  # noqa: E402
from agricare.ros.convert import twist_stamped  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import COMMAND_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

SafetyStateMsg = pytest.importorskip("agricare_interfaces.msg").SafetyState
# the signed-command sequence store is required (a stop / geofence command must not be replayable)
def replay_param(store_dir) -> Parameter:
    """The store in the test's own temporary directory (pytest's ``tmp_path``, removed by pytest)."""
    return Parameter("command_replay_file", value=os.path.join(str(store_dir), "commands.json"))


class Harness:
    def __init__(self, ctx, store_dir, overrides=()):
        self.ex = SingleThreadedExecutor(context=ctx)
        # the lidar at base_link, set as an explicit override (no robot_description in this test)
        mount = [Parameter("scan_mount_xyyaw", value=[0.0, 0.0, 0.0])]
        self.node = SafetySupervisorNode(context=ctx, parameter_overrides=[replay_param(store_dir), *mount, *overrides])
        self.io = rclpy.create_node("safety_test_io", context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        self.cmds: list[TwistStamped] = []
        self.beats: list[Header] = []
        self.states: list = []
        self.diag: list = []
        self.pub_cmd = self.io.create_publisher(TwistStamped, "cmd_vel_smoothed", COMMAND_QOS)
        self.pub_odom = self.io.create_publisher(Odometry, "odom", SENSOR_QOS)
        self.pub_imu = self.io.create_publisher(Imu, "imu/data", SENSOR_QOS)
        self.pub_scan = self.io.create_publisher(LaserScan, "scan", SENSOR_QOS)
        self.pub_estop = self.io.create_publisher(Bool, "safety/estop", RELIABLE_QOS)
        self.pub_fence = self.io.create_publisher(PolygonStamped, "safety/geofence", LATCHED_QOS)
        self.io.create_subscription(TwistStamped, "cmd_vel", self.cmds.append, COMMAND_QOS)
        self.io.create_subscription(Header, "safety/heartbeat", self.beats.append, COMMAND_QOS)
        self.io.create_subscription(SafetyStateMsg, "safety/state", self.states.append, LATCHED_QOS)
        self.io.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diag.extend(m.status),
                                    RELIABLE_QOS)
        self.reset_client = self.io.create_client(Trigger, "safety/reset")
        self.feed_scan = True
        self.scan_range = math.inf
        self.pressed = False   # the vehicle's own e-stop button (local panel), refreshed with the inputs
        self._k = 0
        assert self.spin_until(lambda: self.pub_scan.get_subscription_count() >= 1
                               and self.reset_client.service_is_ready())

    def spin_until(self, cond, max_iter=1500, feed=False, max_wall_s=30.0):
        """Spin until ``cond()``: at least ``max_iter`` rounds, and (a loaded machine starves the 20 Hz
        timer) until ``max_wall_s`` has passed."""
        t_end = time.monotonic() + max_wall_s
        k = 0
        while k < max_iter or time.monotonic() < t_end:
            if cond():
                return True
            if feed and k % 4 == 0:
                self.feed()
            self.ex.spin_once(timeout_sec=0.02)
            k += 1
        return cond()

    def feed(self, v=0.5):
        self.node.panel.report(self.pressed, self.node._now())
        stamp = self.node.get_clock().now().to_msg()
        self.pub_cmd.publish(twist_stamped(v, 0.0, stamp))
        self._k += 1
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id = stamp, "odom"
        odom.pose.pose.position.x = 1e-3 * self._k   # a moving robot: the pose changes (no frozen odometry)
        self.pub_odom.publish(odom)
        imu = Imu()
        imu.header.stamp = stamp
        imu.orientation.w = 1.0
        imu.angular_velocity.x = 1e-4 * (self._k % 7)   # sensor noise: no two readings alike (no stuck IMU)
        self.pub_imu.publish(imu)
        if self.feed_scan:
            scan = LaserScan()
            scan.header.stamp = stamp
            scan.angle_min, scan.angle_increment = -math.pi, 2 * math.pi / 360
            scan.range_min, scan.range_max = 0.05, 30.0
            scan.ranges = [self.scan_range] * 360
            self.pub_scan.publish(scan)

    def last_state(self):
        return self.states[-1].state if self.states else None

    def network_reset(self):
        fut = self.reset_client.call_async(Trigger.Request())
        assert self.spin_until(fut.done, feed=True)
        return fut.result()

    def reset(self):
        """Reset from the vehicle's panel; returns (success, message)."""
        n = len(self.node.panel.reset_results)
        self.node.panel.request_reset()
        assert self.spin_until(lambda: len(self.node.panel.reset_results) > n, feed=True)
        return self.node.panel.reset_results[-1]


def test_node_runs_latches_estop_resets_and_faults_on_stale_scan(rclpy_context, tmp_path):
    h = Harness(rclpy_context, tmp_path, [Parameter("resume_hold_s", value=0.2)])
    try:
        # fresh inputs -> RUN, the command passes (ramped), heartbeat carries the state
        assert h.spin_until(lambda: h.cmds and h.cmds[-1].twist.linear.x > 0.1, feed=True)
        assert h.last_state() == SafetyState.RUN
        assert h.beats and h.beats[-1].frame_id == "RUN"
        assert h.diag and any("RUN" in s.message for s in h.diag)

        # e-stop latches; the output is zero at once
        h.pub_estop.publish(Bool(data=True))
        assert h.spin_until(lambda: h.last_state() == SafetyState.EMERGENCY_STOP, feed=True)
        n = len(h.cmds)
        assert h.spin_until(lambda: len(h.cmds) > n + 3, feed=True)
        assert all(c.twist.linear.x == 0.0 for c in h.cmds[n:])
        assert h.states[-1].estop_latched and h.beats[-1].frame_id == "EMERGENCY_STOP"
        h.pressed = True                      # the button on the vehicle is held
        ok, message = h.reset()
        assert not ok and "e-stop" in message  # source not cleared
        h.pressed = False
        h.pub_estop.publish(Bool(data=False))  # the network cannot release it
        n = len(h.cmds)
        assert h.spin_until(lambda: len(h.cmds) > n + 5, feed=True)
        assert h.last_state() == SafetyState.EMERGENCY_STOP  # never clears on its own
        res = h.network_reset()
        assert not res.success and "panel" in res.message  # nor can a peer reset it
        assert h.node.security.counts["reset.network_request"] == 1
        ok, message = h.reset()
        assert ok, message
        assert h.spin_until(lambda: h.last_state() == SafetyState.RUN and h.cmds[-1].twist.linear.x > 0.0,
                            feed=True)

        # stop feeding the scan -> FAULT (stale:scan) and zero cmd_vel
        h.feed_scan = False
        assert h.spin_until(lambda: h.last_state() == SafetyState.FAULT, feed=True)
        assert "stale:scan" in h.states[-1].reason
        n = len(h.cmds)
        assert h.spin_until(lambda: len(h.cmds) > n + 2, feed=True)
        assert all(c.twist.linear.x == 0.0 and c.twist.angular.z == 0.0 for c in h.cmds[n:])
        assert any("FAULT" in s.message and s.level == s.ERROR for s in h.diag)
        assert h.node.supervisor.counters.get("stale:scan") == 1
    finally:
        h.node.destroy_node()
        h.io.destroy_node()


def test_node_protective_stop_from_scan_and_keep_out_topic(rclpy_context, tmp_path):
    # unsigned keep-out polygons only where a bench set-up enables them
    h = Harness(rclpy_context, tmp_path, [Parameter("resume_hold_s", value=0.2),
                                          Parameter("geofence_topic_enabled", value=True)])
    try:
        assert h.spin_until(lambda: h.last_state() == SafetyState.RUN, feed=True)
        h.scan_range = 0.5  # ring of returns 0.5 m around the base: inside the footprint margin
        assert h.spin_until(lambda: h.last_state() == SafetyState.PROTECTIVE_STOP, feed=True)
        assert "obstacle" in h.states[-1].reason and h.cmds[-1].twist.linear.x == 0.0
        h.scan_range = math.inf
        assert h.spin_until(lambda: h.last_state() == SafetyState.RUN, feed=True)
        # a bad keep-out polygon is rejected; a good one arms the geofence, which then needs a map pose
        msg = PolygonStamped()
        msg.header.frame_id = "map"
        msg.polygon.points = [Point32(x=10.0, y=0.0), Point32(x=11.0, y=0.0), Point32(x=11.0, y=1.0),
                              Point32(x=10.0, y=1.0)]
        h.pub_fence.publish(msg)
        assert h.spin_until(lambda: h.last_state() == SafetyState.FAULT, feed=True)
        assert "no_data:pose" in h.states[-1].reason
    finally:
        h.node.destroy_node()
        h.io.destroy_node()


@pytest.mark.parametrize("name,value", [("stop_margin_m", -0.5), ("footprint_xy", [0.0, 0.0, 1.0, 0.0]),
                                        ("loop_rate_hz", 2.0), ("required_inputs", ["scan", "lidar"])])
def test_node_rejects_bad_parameters_naming_them(rclpy_context, tmp_path, name, value):
    with pytest.raises(ParameterError, match=name):
        SafetySupervisorNode(context=rclpy_context, parameter_overrides=[replay_param(tmp_path),
                                                                               Parameter(name, value=value)])


def test_node_does_not_start_without_the_command_sequence_store(rclpy_context):
    with pytest.raises(ParameterError, match="command_replay_file: must be set"):
        SafetySupervisorNode(context=rclpy_context, parameter_overrides=[Parameter("command_replay_file", value="")])


@pytest.mark.parametrize("profile", ["tractor", "shuttle", "row_robot"])
def test_node_accepts_shipped_yaml(rclpy_context, repo_root, profile):
    import yaml

    values = {}
    for name in ("safety_supervisor_node.yaml", f"safety_{profile}.yaml"):
        values.update(yaml.safe_load((repo_root / "config" / name).read_text())["/**"]["ros__parameters"])
    node = SafetySupervisorNode(context=rclpy_context,
                                parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    try:
        assert node.params.max_speed_mps == values["max_speed_mps"]
        assert node.params.footprint_xy == tuple(values["footprint_xy"])
        assert node.params.keep_in_xy == () and not node.supervisor.geofence.active
    finally:
        node.destroy_node()


def test_imu_roll_pitch_from_orientation_or_gravity():
    from agricare.core.geometry import rpy_to_quat
    from agricare.nodes.safety_supervisor_node import imu_roll_pitch

    msg = Imu()
    w, x, y, z = rpy_to_quat(0.1, -0.2, 1.0)
    msg.orientation.w, msg.orientation.x, msg.orientation.y, msg.orientation.z = w, x, y, z
    assert imu_roll_pitch(msg) == pytest.approx((0.1, -0.2))
    msg.orientation_covariance[0] = -1.0  # orientation unknown: use gravity (pitch -0.2 rad)
    msg.linear_acceleration.x, msg.linear_acceleration.z = -9.81 * math.sin(-0.2), 9.81 * math.cos(0.2)
    assert imu_roll_pitch(msg) == pytest.approx((0.0, -0.2))
    msg.orientation_covariance[0] = 0.0
    msg.orientation.w = msg.orientation.x = msg.orientation.y = msg.orientation.z = 0.0
    assert all(math.isnan(v) for v in imu_roll_pitch(msg))


def test_node_backs_up_only_while_its_rear_scanner_reports(rclpy_context, tmp_path):
    """reverse_required_inputs [scan_rear]: the node subscribes scan_rear (mount override here, the URDF's laser_rear
    otherwise); a person 0.4 m behind the rear scanner stops a reversing robot; the rear scanner falling silent
    stops backing up (reverse_blind:stale:scan_rear) and only warns driving forwards."""
    h = Harness(rclpy_context, tmp_path, [Parameter("reverse_required_inputs", value=["scan_rear"]),
                                Parameter("scan_rear_mount_xyyaw", value=[-0.6, 0.0, math.pi]),
                                Parameter("resume_hold_s", value=0.2),
                                # this test is about the rear scanner: a loaded machine that starves the test's
                                # executor for 0.25 s latches loop_overrun (tested on its own), not what is asked
                                Parameter("loop_timeout_s", value=1.0)])
    pub_rear = h.io.create_publisher(LaserScan, "scan_rear", SENSOR_QOS)
    rear = {"on": True, "range": math.inf}
    plain_feed = h.feed

    def feed(v=0.5):
        plain_feed(v)
        if rear["on"]:
            scan = LaserScan()
            scan.header.stamp = h.node.get_clock().now().to_msg()
            scan.angle_min, scan.angle_increment = -math.radians(105.0), math.radians(1.0)
            scan.range_min, scan.range_max = 0.05, 30.0
            scan.ranges = [math.inf] * 100 + [rear["range"]] * 11 + [math.inf] * 100   # dead behind: 1 deg beams
            pub_rear.publish(scan)

    try:
        assert h.spin_until(lambda: pub_rear.get_subscription_count() >= 1)
        back = lambda: feed(-0.3)  # noqa: E731
        h.feed = back
        assert h.spin_until(lambda: h.cmds and h.cmds[-1].twist.linear.x < -0.1, feed=True)
        assert h.last_state() == SafetyState.RUN
        rear["range"] = 0.4                       # somebody steps in right behind the robot
        assert h.spin_until(lambda: h.last_state() == SafetyState.PROTECTIVE_STOP
                            and "obstacle" in h.states[-1].reason.split(","), feed=True), h.states[-1]
        rear["range"] = math.inf
        assert h.spin_until(lambda: h.last_state() == SafetyState.RUN, feed=True)
        rear["on"] = False                        # the rear scanner falls silent while backing up
        assert h.spin_until(lambda: "reverse_blind:stale:scan_rear" in h.states[-1].reason, feed=True), h.states[-1]
        assert h.last_state() == SafetyState.PROTECTIVE_STOP
        h.feed = lambda: feed(0.5)                # forwards it may go on, with a warning on /diagnostics
        assert h.spin_until(lambda: h.last_state() == SafetyState.RUN and h.cmds[-1].twist.linear.x > 0.1,
                            feed=True), h.states[-1]
        assert any("stale:scan_rear" in s.message for s in h.diag if s.name.endswith("safety"))
        assert not h.node.supervisor.latched_faults
    finally:
        h.ex.shutdown()
        h.io.destroy_node()
        h.node.destroy_node()
