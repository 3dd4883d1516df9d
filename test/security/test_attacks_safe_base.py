"""Attacks on the safe base, run against the real nodes in one process with an attacker node on the graph.

Each test first shows the attack surface works for the vehicle itself (the wheels do move on a RUN verdict),
then that the attacker's messages move nothing, clear nothing, and are reported.
"""

from __future__ import annotations

import math
import os
import time

import pytest

pytest.importorskip("cryptography", reason="cryptography (Ed25519) is not installed")
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PolygonStamped, TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Imu, LaserScan  # noqa: E402
from std_msgs.msg import Bool, Header, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from agricare.core.safety.supervisor import SafetyState  # noqa: E402
from agricare.core.security.commands import envelope_to_text, sign_command  # noqa: E402
from agricare.core.security.keys import SigningKey, TrustList  # noqa: E402
from agricare.nodes.base_driver_node import BaseDriverNode  # noqa: E402
from agricare.nodes.safe_base_node import SafeBaseNode  # noqa: E402
from agricare.ros.convert import twist_stamped  # noqa: E402
from agricare.ros.qos import COMMAND_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

NS = "/robot"


def replay_param(store_dir) -> Parameter:
    """A fresh signed-command sequence store (required by the safe base) in the test's ``tmp_path``."""
    return Parameter("command_replay_file", value=os.path.join(str(store_dir), "commands.json"))


class Rig:
    """A safe base (sim driver) with the vehicle's own inputs, and an attacker node on the same graph."""

    def __init__(self, ctx, store_dir, extra=(), driver=None):
        self.node = SafeBaseNode(driver=driver, context=ctx, namespace=NS, parameter_overrides=[
            Parameter("panel", value="none"), Parameter("driver.driver", value="sim"),
            Parameter("driver.max_speed_mps", value=2.0), Parameter("resume_hold_s", value=0.2),
            Parameter("required_inputs", value=["cmd", "odom", "scan", "imu"]), replay_param(store_dir),
            # the lidar at base_link, an explicit mount override (no robot_description on this graph)
            Parameter("scan_mount_xyyaw", value=[0.0, 0.0, 0.0]), *extra])
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.vehicle = rclpy.create_node("vehicle_inputs", namespace=NS, context=ctx)   # planner + sensors
        self.attacker = rclpy.create_node("attacker", namespace=NS, context=ctx)
        for n in (self.vehicle, self.attacker):
            self.ex.add_node(n)
        v = self.vehicle
        self.pub_cmd = v.create_publisher(TwistStamped, "cmd_vel_smoothed", COMMAND_QOS)
        self.pub_scan = v.create_publisher(LaserScan, "scan", SENSOR_QOS)
        self.pub_imu = v.create_publisher(Imu, "imu/data", SENSOR_QOS)
        a = self.attacker
        self.atk_cmd_vel = a.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
        self.atk_smoothed = a.create_publisher(TwistStamped, "cmd_vel_smoothed", COMMAND_QOS)
        self.atk_heartbeat = a.create_publisher(Header, "safety/heartbeat", COMMAND_QOS)
        self.atk_estop = a.create_publisher(Bool, "safety/estop", RELIABLE_QOS)
        self.atk_fence = a.create_publisher(PolygonStamped, "safety/geofence", LATCHED_QOS)
        self.atk_command = a.create_publisher(String, "safety/command", RELIABLE_QOS)
        self.atk_reset = a.create_client(Trigger, "safety/reset")
        self.diag: list = []
        a.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diag.extend(m.status), RELIABLE_QOS)
        self.v_cmd = 0.5
        self.ranges = math.inf
        self.attack = None
        self.pressed = False
        self.panel_alive = True

    def feed(self):
        node = self.node
        if self.panel_alive:
            node.panel.report(self.pressed, node._now())
        stamp = node.get_clock().now().to_msg()
        if self.v_cmd is not None:
            self.pub_cmd.publish(twist_stamped(self.v_cmd, 0.0, stamp))
        imu = Imu()
        imu.orientation.w = 1.0
        self._k = getattr(self, "_k", 0) + 1
        imu.angular_velocity.x = 1e-4 * (self._k % 7)   # sensor noise: no two readings alike (no stuck IMU)
        self.pub_imu.publish(imu)
        scan = LaserScan()
        scan.angle_min, scan.angle_increment = -math.pi, 2 * math.pi / 180
        scan.range_min, scan.range_max = 0.05, 30.0
        scan.ranges = [float(v) for v in self.ranges] if isinstance(self.ranges, list) else [float(self.ranges)] * 180
        self.pub_scan.publish(scan)
        if self.attack is not None:
            self.attack()

    def spin_until(self, cond, max_wall_s=30.0, min_iter=0):
        t_end = time.monotonic() + max_wall_s
        k = 0
        while time.monotonic() < t_end:
            if k >= min_iter and cond():
                return True
            if k % 4 == 0:
                self.feed()
            self.ex.spin_once(timeout_sec=0.02)
            k += 1
        return cond()

    def cycles(self, n):
        """Let the safe base run ``n`` more cycles."""
        target = len(self.states) + n
        assert self.spin_until(lambda: len(self.states) >= target)

    @property
    def states(self):
        return self._states  # one entry per safe-base cycle (recorded by the fixture)

    def state(self):
        d = self.node.last_decision
        return None if d is None else d.state

    def xy(self):
        x, y, _ = self.node.base_driver.loop.odometry.pose
        return float(x), float(y)

    def close(self):
        self.ex.shutdown()
        for n in (self.attacker, self.vehicle, self.node):
            n.destroy_node()


@pytest.fixture
def rig(rclpy_context, tmp_path):
    made = []

    def make(extra=(), driver=None):
        r = Rig(rclpy_context, tmp_path / f"rig{len(made)}", extra, driver)
        r._states = []
        orig = r.node.step

        def step():
            orig()
            if r.node.last_decision is not None:
                r._states.append(r.node.last_decision.state)
        r.node.step = step
        r.node._timer.callback = step
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _moved(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


@pytest.mark.timeout(60)
def test_cmd_vel_during_estop_moves_nothing_and_a_peer_cannot_clear_the_stop(rig):
    r = rig()
    # the vehicle's own planner drives: the wheels move on a RUN verdict (the test can fail)
    start = r.xy()
    assert r.spin_until(lambda: r.state() == SafetyState.RUN and _moved(r.xy(), start) > 0.05)
    # nothing in this process listens to cmd_vel or the heartbeat: the gated command never crosses DDS
    assert r.node.count_subscribers(f"{NS}/cmd_vel") == 0
    assert r.node.count_subscribers(f"{NS}/safety/heartbeat") == 0

    # a peer presses the e-stop (allowed: anyone may stop the robot), then tries to drive during it
    r.atk_estop.publish(Bool(data=True))
    assert r.spin_until(lambda: r.state() == SafetyState.EMERGENCY_STOP)
    r.cycles(5)                                    # wheels at rest (the sim driver stops at once)
    held = r.xy()

    def drive_anyway():
        now = r.attacker.get_clock().now().to_msg()
        r.atk_cmd_vel.publish(twist_stamped(2.0, 0.0, now))
        r.atk_cmd_vel.publish(twist_stamped(2.0, 0.0, Header().stamp))   # stamp 0
        r.atk_smoothed.publish(twist_stamped(2.0, 0.0, now))
        r.atk_heartbeat.publish(Header(stamp=now, frame_id="RUN"))
        r.atk_estop.publish(Bool(data=False))    # "release" from the network
    r.attack = drive_anyway
    r.cycles(40)
    assert r.state() == SafetyState.EMERGENCY_STOP
    assert _moved(r.xy(), held) < 1e-3, "the wheels moved during a latched e-stop"
    assert max(abs(w) for w in r.node.base_driver.loop.wheel_speed_radps) < 1e-6

    # the network reset is refused and reported; the stop stays
    fut = r.atk_reset.call_async(Trigger.Request())
    assert r.spin_until(fut.done)
    assert not fut.result().success
    r.cycles(5)
    assert r.state() == SafetyState.EMERGENCY_STOP
    counts = r.node.security.counts
    assert counts.get("reset.network_request", 0) >= 1 and counts.get("estop.release_from_network", 0) >= 1
    assert any("security" in s.name and "refused" in s.message for s in r.diag)

    # only the vehicle's own panel releases it, and then the planner drives again
    r.attack = None
    r.node.panel.request_reset()
    ok_ = r.spin_until(lambda: r.state() == SafetyState.RUN and _moved(r.xy(), held) > 0.05)
    assert ok_, (r.state(), r.node.base_driver.last_result, r.node.base_driver.loop.stalls)
    assert r.node.panel.reset_results[-1][0]


@pytest.mark.timeout(60)
def test_estop_circuit_that_stops_reporting_is_a_protective_stop(rig):
    r = rig()
    assert r.spin_until(lambda: r.state() == SafetyState.RUN)
    r.panel_alive = False                       # the e-stop circuit stops reporting (cable cut, process hung)
    assert r.spin_until(lambda: r.state() == SafetyState.PROTECTIVE_STOP)
    assert "estop_stale" in r.node.last_decision.reasons and r.node.last_decision.cmd_v_mps == 0.0


@pytest.mark.timeout(60)
def test_blinded_scan_stops_the_robot(rig):
    r = rig()
    assert r.spin_until(lambda: r.state() == SafetyState.RUN)
    r.ranges = math.nan                        # all NaN: blinded
    assert r.spin_until(lambda: r.state() == SafetyState.FAULT)
    assert "scan_blinded" in r.node.last_decision.reasons
    r.ranges = math.inf
    r.cycles(4)                                # the cause is gone (fresh, valid scans) but the fault is latched
    assert r.state() == SafetyState.FAULT
    r.node.panel.request_reset()
    assert r.spin_until(lambda: r.state() == SafetyState.RUN)
    # REP-117: -inf is "closer than range_min", on every beam at once a covered window: an obstacle at
    # range_min (never free space) and a blinded scanner (a fault, latched until the panel's reset)
    for covered in (-math.inf, 0.01):          # 0.01: below range_min (0.05 m)
        r.ranges = covered
        assert r.spin_until(lambda: r.state() == SafetyState.FAULT)
        assert {"scan_blinded", "obstacle"} <= set(r.node.last_decision.reasons)
        r.ranges = math.inf
        r.cycles(4)
        assert r.state() == SafetyState.FAULT
        r.node.panel.request_reset()
        assert r.spin_until(lambda: r.state() == SafetyState.RUN)
    r.ranges = [0.01] * 20 + [math.inf] * 160  # something inside range_min on a few beams: a protective stop
    assert r.spin_until(lambda: r.state() == SafetyState.PROTECTIVE_STOP)
    assert "obstacle" in r.node.last_decision.reasons and "scan_blinded" not in r.node.last_decision.reasons
    held = r.xy()
    r.cycles(10)
    assert _moved(r.xy(), held) < 0.05         # braking from 0.5 m/s only, then standing


@pytest.mark.timeout(60)
def test_geofence_and_remote_stop_only_as_signed_commands(rig, tmp_path):
    fleet, mallory = SigningKey.generate("fleet"), SigningKey.generate("mallory")
    trust = tmp_path / "trust.yaml"
    TrustList().trust(fleet, kinds=["geofence", "protective_stop"]).save(trust)
    r = rig([Parameter("trust_file", value=str(trust))])
    assert r.spin_until(lambda: r.state() == SafetyState.RUN)
    sec = r.node.security
    r.atk_fence.publish(PolygonStamped())                    # "clear the geofence", unsigned
    forged = sign_command({"polygon": []}, mallory, kind="geofence", target="robot")
    r.atk_command.publish(String(data=envelope_to_text(forged)))
    assert r.spin_until(lambda: sec.counts.get("geofence.unsigned", 0) >= 1
                        and sec.counts.get("safety_command.unknown_key", 0) >= 1)
    # the fleet's signed keep-out is applied; the same message replayed is refused
    fence = sign_command({"polygon": [[50, 0], [51, 0], [51, 1], [50, 1]]}, fleet, kind="geofence", target="robot")
    r.atk_command.publish(String(data=envelope_to_text(fence)))
    assert r.spin_until(lambda: r.node.supervisor.geofence.active)
    r.atk_command.publish(String(data=envelope_to_text(fence)))
    assert r.spin_until(lambda: sec.counts.get("safety_command.replayed", 0) >= 1)
    # a signed remote protective stop stops the robot; a forged release does not release it
    stop = sign_command({"stop": True}, fleet, kind="protective_stop", target="robot")
    r.atk_command.publish(String(data=envelope_to_text(stop)))
    assert r.spin_until(lambda: r.state() in (SafetyState.PROTECTIVE_STOP, SafetyState.FAULT)
                        and "remote_stop" in r.node.last_decision.reasons)
    go = sign_command({"stop": False}, mallory, kind="protective_stop", target="robot")
    r.atk_command.publish(String(data=envelope_to_text(go)))
    assert r.spin_until(lambda: sec.counts.get("safety_command.unknown_key", 0) >= 2)
    r.cycles(3)
    assert "remote_stop" in r.node.last_decision.reasons


def test_standalone_base_driver_refuses_unstamped_commands_and_stop_heartbeats(rclpy_context):
    node = BaseDriverNode(context=rclpy_context, parameter_overrides=[Parameter("driver", value="sim")])
    atk = rclpy.create_node("attacker", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(atk)
    cmd = atk.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
    hb = atk.create_publisher(Header, "safety/heartbeat", SENSOR_QOS)
    cycles = [0]
    tick = node._timer.callback

    def counted():
        cycles[0] += 1
        tick()
    node._timer.callback = counted
    try:
        def run(frame, stamped, n=20):
            """Publish heartbeat + command before every driver cycle for ``n`` cycles; distance driven."""
            end = cycles[0] + n
            k = 0
            while cycles[0] < end and k < 20000:
                if k % 3 == 0:
                    now = atk.get_clock().now().to_msg()
                    hb.publish(Header(stamp=now, frame_id=frame))
                    cmd.publish(twist_stamped(1.0, 0.0, now if stamped else Header().stamp))
                ex.spin_once(timeout_sec=0.01)
                k += 1
            return float(node.loop.odometry.pose[0])

        assert run("EMERGENCY_STOP", True) == 0.0        # a stop verdict in the heartbeat: no motion
        assert run("RUN", False) == 0.0                  # stamp 0 no longer skips the age check
        assert node.refused_heartbeats > 0 and node.stale_commands > 0
        assert run("RUN", True) > 0.0                    # the bench path itself works
    finally:
        ex.shutdown()
        node.destroy_node()
        atk.destroy_node()


def _panel(path, line):
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        return s.recv(256).decode()


@pytest.mark.timeout(60)
def test_vehicle_panel_on_a_local_socket_and_driver_files(rclpy_context, tmp_path):
    sock = tmp_path / "run" / "panel.sock"
    node = SafeBaseNode(context=rclpy_context, namespace=NS, parameter_overrides=[
        Parameter("panel", value="socket"), Parameter("panel_socket_path", value=str(sock)),
        Parameter("driver_params_files", value=["base_driver_node.yaml", "hardware/zlac8015d_shuttle.yaml"]),
        Parameter("driver.driver", value="sim"), replay_param(tmp_path / "store"),
        Parameter("scan_mount_xyyaw", value=[0.0, 0.0, 0.0])])
    try:
        assert node.base_driver.params.wheel_radius_m == 0.0825     # from the hardware file
        assert node.base_driver.params.driver == "sim"              # the override wins
        assert (sock.stat().st_mode & 0o777) == 0o600 and ((sock.parent.stat().st_mode & 0o777) == 0o700)
        assert _panel(sock, "estop 1").startswith("ok")
        assert node.panel.state()[0] is True
        assert _panel(sock, "reset").startswith("ok")
        assert node.panel.take_reset_request()
        assert _panel(sock, "drive 2.0").startswith("refused")
    finally:
        node.on_shutdown()
        node.destroy_node()
    assert not sock.exists()


@pytest.mark.timeout(60)
def test_simulated_wheels_take_only_the_in_process_gated_command(rclpy_context, repo_root):
    from agricare.nodes.sim_node import SimNode

    sim = SimNode(context=rclpy_context, parameter_overrides=[
        Parameter("scenario_file", value=str(repo_root / "config/scenarios/care_small.yaml")),
        Parameter("drive_mode", value="external"), Parameter("seed", value=1)])
    atk = rclpy.create_node("attacker", context=rclpy_context)
    pub = atk.create_publisher(TwistStamped, "/shuttle_1/cmd_vel", COMMAND_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(atk)
    try:
        wheels = sim.command_input("shuttle_1")     # what the runner hands to the shuttle's safe base
        x0, y0 = (float(c) for c in sim.world.pose("shuttle_1")[:2])
        for _ in range(100):                        # the attacker commands 2 m/s
            pub.publish(twist_stamped(2.0, 0.0, Header().stamp))
            for _ in range(5):
                ex.spin_once(timeout_sec=0.0)
            sim.step_once()
        x, y = (float(c) for c in sim.world.pose("shuttle_1")[:2])
        assert math.hypot(x - x0, y - y0) < 0.02
        for _ in range(100):                        # the gated command does move it
            wheels.drive(1.0, 0.0)
            sim.step_once()
        x, y = (float(c) for c in sim.world.pose("shuttle_1")[:2])
        assert math.hypot(x - x0, y - y0) > 0.5
    finally:
        ex.shutdown()
        sim.destroy_node()
        atk.destroy_node()


def test_the_vehicle_graph_runs_a_safe_base_that_publishes_no_wheel_command(rclpy_context, repo_root, tmp_path):
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import to_parameters

    graph = load_graph(repo_root / "config/scenarios/robot_care_shuttle.yaml")
    assert "base_driver_node" not in [n.node for n in graph.nodes]
    (spec,) = [n for n in graph.nodes if n.node == "safe_base_node"]
    params = {**spec.params, "driver.driver": "sim", "panel_socket_path": str(tmp_path / "run" / "panel.sock")}
    node = SafeBaseNode(context=rclpy_context, namespace=spec.namespace, parameter_overrides=to_parameters(params))
    try:
        assert node.params.panel == "socket" and not node.params.publish_cmd_vel
        assert node.count_publishers(f"{spec.namespace}/cmd_vel") == 0
        assert node.base_driver.params.wheel_radius_m == 0.0825 and node.params.max_speed_mps > 0
        assert "estop" in node.supervisor.required_inputs()
    finally:
        node.on_shutdown()
        node.destroy_node()


@pytest.mark.timeout(60)
def test_estop_pin_read_by_the_motor_driver_latches_and_its_release_needs_the_panel_reset(rig):
    from agricare.drivers.base import SimMotorDriver

    class PinDriver(SimMotorDriver):
        pressed = False

        def read_estop(self):
            return self.pressed

    driver = PinDriver()
    r = rig(driver=driver)                   # the vehicle's controller with its e-stop input
    r.panel_alive = False                    # only the pin reports the circuit
    assert r.spin_until(lambda: r.state() == SafetyState.RUN)
    driver.pressed = True
    assert r.spin_until(lambda: r.state() == SafetyState.EMERGENCY_STOP)
    driver.pressed = False
    r.cycles(5)
    assert r.state() == SafetyState.EMERGENCY_STOP   # latched until the vehicle's own reset
    r.node.panel.request_reset()
    assert r.spin_until(lambda: r.state() == SafetyState.RUN)
