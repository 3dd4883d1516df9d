"""base_driver_node and gnss_node in-process with rclpy, against the sim driver and the pty emulators."""

from __future__ import annotations

import pathlib

import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TwistStamped, TwistWithCovarianceStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import BatteryState, JointState, NavSatFix  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from agricare.drivers.emulators import AsciiBridgeEmulator, GnssEmulator, RoboClawEmulator  # noqa: E402
from agricare.nodes.base_driver_node import BaseDriverNode  # noqa: E402
from agricare.nodes.gnss_node import GnssNode  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def spin_until(ex, cond, max_iter=1500, step=0.01):
    for _ in range(max_iter):
        if cond():
            return True
        ex.spin_once(timeout_sec=step)
    return cond()


def overrides(**kw):
    return [Parameter(k, value=v) for k, v in kw.items()]


class Harness:
    """A test node that drives cmd_vel/heartbeat and records what the driver node publishes."""

    def __init__(self, ctx, ex):
        self.node = rclpy.create_node("harness", context=ctx)
        ex.add_node(self.node)
        n = self.node
        self.cmd_pub = n.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
        self.hb_pub = n.create_publisher(Header, "safety/heartbeat", SENSOR_QOS)
        self.odom, self.joints, self.battery, self.diag = [], [], [], []
        n.create_subscription(Odometry, "odom", self.odom.append, SENSOR_QOS)
        n.create_subscription(JointState, "joint_states", self.joints.append, RELIABLE_QOS)
        n.create_subscription(BatteryState, "battery_state", self.battery.append, SENSOR_QOS)
        n.create_subscription(DiagnosticArray, "/diagnostics",
                              lambda m: self.diag.extend(m.status), RELIABLE_QOS)
        self.timer = None
        self.v = None
        self.zeros_first = 3   # the stack starts stopped: its first commands are zero (they arm the driver)

    def drive(self, v, w=0.0, heartbeat=True):
        """Publish cmd_vel (v, w) and a heartbeat at 20 Hz from a timer (None: stop publishing); the first
        three commands are zero, as a stack's that starts stopped."""
        self.v, self.w, self.hb = v, w, heartbeat
        if self.timer is None:
            self.timer = self.node.create_timer(0.05, self._tick)

    def _tick(self):
        now = self.node.get_clock().now().to_msg()
        if self.hb:
            self.hb_pub.publish(Header(stamp=now, frame_id="RUN"))
        if self.v is not None:
            m = TwistStamped()
            m.header.stamp = now
            if self.zeros_first > 0:
                self.zeros_first -= 1
            else:
                m.twist.linear.x, m.twist.angular.z = self.v, self.w
            self.cmd_pub.publish(m)


@pytest.fixture
def ex(rclpy_context):
    e = SingleThreadedExecutor(context=rclpy_context)
    yield e
    e.shutdown()


def test_sim_driver_drives_and_stops_on_stale_cmd(rclpy_context, ex):
    node = BaseDriverNode(context=rclpy_context, parameter_overrides=overrides(driver="sim", cmd_timeout_s=0.3))
    ex.add_node(node)
    h = Harness(rclpy_context, ex)
    h.drive(0.5, 0.2)
    assert spin_until(ex, lambda: h.odom and h.odom[-1].pose.pose.position.x > 0.15)
    assert h.odom[-1].twist.twist.linear.x == pytest.approx(0.5, abs=0.1)
    assert h.odom[-1].header.frame_id == "odom" and h.odom[-1].child_frame_id == "base_link"
    assert h.joints and h.joints[-1].name == ["left_wheel_joint", "right_wheel_joint"]
    assert spin_until(ex, lambda: any(s.level == DiagnosticStatus.OK and s.message == "driving" for s in h.diag))
    h.v = None  # cmd_vel stops, heartbeat goes on
    assert spin_until(ex, lambda: node.loop.driver.speed_radps == [0.0, 0.0])
    assert "older than" in node.last_result.stop_reason
    node.destroy_node()


def test_heartbeat_loss_stops_and_shutdown_stops(rclpy_context, ex):
    node = BaseDriverNode(context=rclpy_context, parameter_overrides=overrides(driver="sim",
                                                                                heartbeat_timeout_s=0.2))
    ex.add_node(node)
    h = Harness(rclpy_context, ex)
    h.drive(0.4)
    assert spin_until(ex, lambda: node.loop.driver.speed_radps[0] > 0)
    h.hb = False
    assert spin_until(ex, lambda: node.loop.driver.speed_radps == [0.0, 0.0])
    assert spin_until(ex, lambda: any(s.level == DiagnosticStatus.WARN and "heartbeat" in s.message
                                      for s in h.diag))
    h.hb = True
    assert spin_until(ex, lambda: node.loop.driver.speed_radps[0] > 0)
    node.on_shutdown()
    assert node.loop.driver.commands[-1] == (0.0, 0.0)
    node.destroy_node()


def test_a_stall_whose_exchange_fails_is_reported_as_a_stall_with_the_link(rclpy_context, ex):
    """The node's report of a cycle that found itself stalled (last exchange older than the device's timeout:
    the process was frozen) and whose exchange then failed: the error names the stall before the lost link,
    as a fault monitor reading /diagnostics looks for it, not only "link down"."""
    node = BaseDriverNode(context=rclpy_context, parameter_overrides=overrides(driver="sim"))
    ex.add_node(node)
    h = Harness(rclpy_context, ex)
    h.drive(0.4)
    assert spin_until(ex, lambda: node.loop.driver.speed_radps[0] > 0)
    node.loop._last_exchange_s -= 1.0   # as after a 1 s SIGSTOP: the device has stopped the wheels itself
    node.loop.driver.fail_next = 1
    assert spin_until(ex, lambda: any(s.level == DiagnosticStatus.ERROR and "link down" in s.message
                                      for s in h.diag))
    err = next(s for s in h.diag if s.level == DiagnosticStatus.ERROR)
    assert err.message.startswith("driver cycle stalled 1.") and "link down, motors stopped" in err.message, err
    assert node.loop.stalls == 1
    node.destroy_node()


def test_roboclaw_node_link_loss_reconnect_no_replay(rclpy_context, ex, tmp_path):
    link = str(tmp_path / "roboclaw")
    with RoboClawEmulator(seed=2, symlink=link) as emu:
        node = BaseDriverNode(context=rclpy_context, parameter_overrides=overrides(
            driver="roboclaw", port=link, io_timeout_s=0.02, io_attempts=2, reconnect_initial_s=0.05,
            reconnect_max_s=0.2, aux_every_n=2))
        ex.add_node(node)
        h = Harness(rclpy_context, ex)
        h.drive(0.3)
        assert spin_until(ex, lambda: h.odom and h.odom[-1].pose.pose.position.x > 0.05)
        assert spin_until(ex, lambda: h.battery)
        assert h.battery[-1].voltage == pytest.approx(24.2)
        assert max(abs(v) for c in emu.speed_commands for v in c) <= 15.0 * 4096 / 6.283185 + 1
        h.v = None
        emu.unplug()
        assert spin_until(ex, lambda: not node.loop.connected)
        assert spin_until(ex, lambda: any(s.level == DiagnosticStatus.ERROR and "link down" in s.message
                                          for s in h.diag))
        emu.replug()
        assert spin_until(ex, lambda: node.loop.connected and emu.speed_commands)
        n0 = len(emu.speed_commands)
        assert spin_until(ex, lambda: len(emu.speed_commands) > n0 + 5)
        assert all(c == (0, 0) for c in emu.speed_commands[n0:]), "old command replayed after reconnect"
        h.v = 0.3   # the command stream goes on: no motion by itself after the link came back
        n1 = len(emu.speed_commands)
        assert spin_until(ex, lambda: len(emu.speed_commands) > n1 + 10)
        assert all(c == (0, 0) for c in emu.speed_commands[n1:]), "drove off by itself after the reconnect"
        assert any("no motion by itself" in s.message for s in h.diag)
        h.v = 0.0   # upstream stopped: re-armed
        assert spin_until(ex, lambda: not node.loop.rearm_needed)
        h.v = 0.3
        assert spin_until(ex, lambda: emu.speed_commands[-1][0] > 0)
        node.destroy_node()
        assert emu.speed_commands[-1] == (0, 0)  # stopped on shutdown


def test_ascii_node_drives_through_pty(rclpy_context, ex, tmp_path):
    link = str(tmp_path / "ascii")
    with AsciiBridgeEmulator(seed=4, symlink=link) as emu:
        node = BaseDriverNode(context=rclpy_context, parameter_overrides=overrides(
            driver="ascii", port=link, ticks_per_rev=1200.0, io_timeout_s=0.05, require_heartbeat=False,
            ascii_boot_wait_s=0.0,
            ascii_pid_gains="30:10:1:40"))
        ex.add_node(node)
        h = Harness(rclpy_context, ex)
        h.drive(-0.3, heartbeat=False)
        assert spin_until(ex, lambda: h.odom and h.odom[-1].pose.pose.position.x < -0.05)
        assert emu.motor_commands[-1][0] < 0
        assert emu.pid == (30, 10, 1, 40)
        node.destroy_node()


@pytest.mark.parametrize("params,name", [
    (dict(driver="canbus"), "driver"),
    (dict(driver="sim", max_speed_mps=-1.0), "max_speed_mps"),
    (dict(driver="roboclaw", port="/dev/no_such_port_xyz"), "port"),
    (dict(driver="ascii"), "port"),
    (dict(driver="sim", cmd_timeout_s=-0.5), "cmd_timeout_s"),
])
def test_bad_parameters_fail_at_start_naming_them(rclpy_context, params, name):
    with pytest.raises(ParameterError, match=name):
        BaseDriverNode(context=rclpy_context, parameter_overrides=overrides(**params))


def test_gnss_node_publishes_rtk_fix_and_velocity(rclpy_context, ex, tmp_path):
    link = str(tmp_path / "gnss")
    with GnssEmulator(seed=6, symlink=link, rate_hz=20.0, quality=4, speed_mps=2.0, course_deg=0.0) as emu:
        node = GnssNode(context=rclpy_context, parameter_overrides=overrides(port=link))
        ex.add_node(node)
        lis = rclpy.create_node("gnss_listener", context=rclpy_context)
        ex.add_node(lis)
        fixes, vels = [], []
        lis.create_subscription(NavSatFix, "gnss/fix", fixes.append, SENSOR_QOS)
        lis.create_subscription(TwistWithCovarianceStamped, "gnss/vel", vels.append, SENSOR_QOS)
        assert spin_until(ex, lambda: len(fixes) >= 3 and vels)
        f = fixes[-1]
        assert f.status.status == 2 and f.position_covariance_type == NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
        assert f.latitude == pytest.approx(52.0, abs=0.01) and f.altitude == pytest.approx(55.0, abs=0.01)
        assert vels[-1].twist.twist.linear.y == pytest.approx(2.0, abs=0.01)  # north
        # standing still, the receiver drops the course (u-blox): gnss/vel still comes, zero with its variance
        emu.speed_mps, emu.course_min_speed_mps = 0.1, 0.5
        assert spin_until(ex, lambda: vels[-1].twist.twist.linear.y == 0.0
                          and vels[-1].twist.covariance[0] >= 0.1 ** 2 + 0.099 ** 2)
        emu.quality = 5
        emu.sentences = ("GGA",)  # no GST: HDOP model
        assert spin_until(ex, lambda: fixes[-1].position_covariance_type
                          == NavSatFix.COVARIANCE_TYPE_APPROXIMATED)
        emu.faults.corrupt_prob = 0.5
        assert spin_until(ex, lambda: node.rx.parser.counters.checksum_errors > 2)
        emu.unplug()
        assert spin_until(ex, lambda: not node.rx.is_open)
        emu.faults.corrupt_prob = 0.0
        emu.replug()
        n = len(fixes)
        assert spin_until(ex, lambda: len(fixes) > n + 2)
        node.destroy_node()
        lis.destroy_node()


def test_gnss_node_bad_port(rclpy_context):
    with pytest.raises(ParameterError, match="port"):
        GnssNode(context=rclpy_context, parameter_overrides=overrides(port="/dev/no_such_gnss"))


def test_shipped_configs_parse(repo_root):
    import yaml

    for name in ("base_driver_node.yaml", "gnss_node.yaml"):
        data = yaml.safe_load((repo_root / "config" / name).read_text())
        assert data["/**"]["ros__parameters"]
    from agricare.drivers.base import BaseDriverParams

    BaseDriverParams(**yaml.safe_load((repo_root / "config/base_driver_node.yaml").read_text())
                     ["/**"]["ros__parameters"])


def test_gnss_node_is_managed_and_publishes_nothing_unless_active(rclpy_context, ex, tmp_path):
    """gnss_node is a lifecycle node like the other drivers: with ``managed: true`` it waits unconfigured;
    active it publishes fixes; deactivated it closes the port and publishes nothing; active again it resumes."""
    from lifecycle_msgs.msg import State

    link = str(tmp_path / "gnss_managed")
    with GnssEmulator(seed=7, symlink=link, rate_hz=20.0, quality=4):
        node = GnssNode(context=rclpy_context, parameter_overrides=overrides(port=link, managed=True))
        ex.add_node(node)
        lis = rclpy.create_node("gnss_lifecycle_listener", context=rclpy_context)
        ex.add_node(lis)
        fixes = []
        lis.create_subscription(NavSatFix, "gnss/fix", fixes.append, SENSOR_QOS)
        spin_until(ex, lambda: False, max_iter=60)   # 0.6 s unconfigured at 20 fixes/s
        assert fixes == [] and not node.rx.is_open
        assert node._state_machine.current_state[1] == "unconfigured"
        node.trigger_configure()
        spin_until(ex, lambda: False, max_iter=30)
        assert fixes == []   # configured but inactive: still nothing
        node.trigger_activate()
        assert spin_until(ex, lambda: len(fixes) >= 3) and node.rx.is_open
        node.trigger_deactivate()
        assert not node.rx.is_open
        n = len(fixes)
        spin_until(ex, lambda: False, max_iter=60)
        assert len(fixes) <= n + 1   # at most one already in flight when it was deactivated
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
        node.trigger_activate()
        assert spin_until(ex, lambda: len(fixes) >= n + 3)
        node.trigger_shutdown()
        assert not node.rx.is_open
