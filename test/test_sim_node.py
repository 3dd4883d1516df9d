"""sim_node in-process (external drive mode): topics, /clock, cmd_vel and implement sections."""

from __future__ import annotations

import math

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")

from geometry_msgs.msg import PoseArray, TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import BatteryState, CameraInfo, Image, Imu, LaserScan, NavSatFix  # noqa: E402
from std_msgs.msg import Float64MultiArray, UInt8MultiArray  # noqa: E402

from agricare.nodes.sim_node import SimNode  # noqa: E402
from agricare.ros.convert import from_stamp, image_to_bgr, to_stamp  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

SENSOR_TOPICS = {
    "/tractor/odom": Odometry, "/tractor/imu/data": Imu, "/tractor/gnss/fix": NavSatFix, "/tractor/scan": LaserScan,
    "/tractor/scan_rear": LaserScan,
    "/tractor/battery_state": BatteryState, "/row_robot/camera/image_raw": Image,
    "/row_robot/camera/camera_info": CameraInfo, "/row_robot/odom": Odometry,
}
TRUTH_TOPICS = {"/tractor/ground_truth/odom": Odometry, "/tractor/ground_truth/coverage": Float64MultiArray,
                "/ground_truth/people": PoseArray, "/clock": Clock}


def _sim(ctx, repo_root, **params):
    overrides = [Parameter("scenario_file", value=str(repo_root / "config/scenarios/farm_small.yaml")),
                 Parameter("drive_mode", value="external")]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return SimNode(context=ctx, parameter_overrides=overrides)


def test_external_drive_publishes_everything_and_follows_commands(rclpy_context, repo_root):
    sim = _sim(rclpy_context, repo_root, seed=3)
    probe = rclpy.create_node("probe", context=rclpy_context)
    got = {}
    for topic, mtype in {**SENSOR_TOPICS, **TRUTH_TOPICS}.items():
        qos = SENSOR_QOS if topic in SENSOR_TOPICS else RELIABLE_QOS
        probe.create_subscription(mtype, topic, lambda m, t=topic: got.setdefault(t, []).append(m), qos)
    cmd = probe.create_publisher(TwistStamped, "/tractor/cmd_vel", COMMAND_QOS)
    sections = probe.create_publisher(UInt8MultiArray, "/tractor/implement/sections", COMMAND_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(probe)
    try:
        x0 = float(sim.world.pose("tractor")[0])
        for i in range(100):  # 2 s of sim time
            msg = TwistStamped()
            msg.twist.linear.x = 1.0
            msg.header.stamp = to_stamp(sim.world.t_s)   # the decision's time (sim clock): the wheels check it
            cmd.publish(msg)
            if i == 0:
                sections.publish(UInt8MultiArray(data=[1, 0, 1]))
            for _ in range(20):
                ex.spin_once(timeout_sec=0.0)
            t = sim.step_once()
        for _ in range(200):
            ex.spin_once(timeout_sec=0.0)
            if all(k in got for k in {**SENSOR_TOPICS, **TRUTH_TOPICS}) and \
                    from_stamp(got["/clock"][-1].clock) >= 2.0 - 1e-9:
                break
        assert t == pytest.approx(2.0)
        assert set(got) == set(SENSOR_TOPICS) | set(TRUTH_TOPICS)
        clocks = [from_stamp(m.clock) for m in got["/clock"]]
        assert clocks == sorted(clocks) and clocks[-1] == pytest.approx(2.0) and len(clocks) >= 90
        assert sim.world.pose("tractor")[0] > x0 + 1.0  # cmd_vel moved it
        assert list(sim.world.robots["tractor"].sections) == [1, 0, 1]
        gt = got["/tractor/ground_truth/odom"][-1]
        assert gt.header.frame_id == "map" and gt.child_frame_id == "base_link"
        assert gt.pose.pose.position.x == pytest.approx(sim.world.pose("tractor")[0], abs=0.1)
        odom = got["/tractor/odom"][-1]
        assert odom.header.frame_id == "odom" and odom.pose.pose.position.x > 0.5
        fix = got["/tractor/gnss/fix"][-1]
        assert fix.status.status == 2 and abs(fix.latitude - 36.1002) < 1e-3
        img = image_to_bgr(got["/row_robot/camera/image_raw"][-1])
        info = got["/row_robot/camera/camera_info"][-1]
        assert img.shape == (info.height, info.width, 3) and info.k[0] > 0
        assert 25 <= len(got["/row_robot/camera/image_raw"]) <= 31  # 15 Hz over 2 s
        scan = got["/tractor/scan"][-1]   # the bonnet scanner: 270 deg at 1 deg
        assert len(scan.ranges) == 271 and scan.angle_increment > 0 and scan.header.frame_id == "laser"
        rear = got["/tractor/scan_rear"][-1]   # the rear one: 210 deg at 1 deg, in its own frame
        assert len(rear.ranges) == 211 and rear.header.frame_id == "laser_rear"
        assert rear.angle_max - rear.angle_min == pytest.approx(math.radians(210.0), abs=1e-4)
        cov = got["/tractor/ground_truth/coverage"][-1]
        assert len(cov.data) == 2 and 0.0 < cov.data[0] < 0.05 and cov.data[1] == 0.0
        # same seed, same scenario: a second simulator reproduces the trajectory exactly
        sim2 = _sim(rclpy_context, repo_root, seed=3)
        sim2.world.set_sections("tractor", [1, 0, 1])
        assert sim2.world.pose("tractor")[0] == pytest.approx(x0)
        sim2.destroy_node()
    finally:
        ex.shutdown()
        probe.destroy_node()
        sim.destroy_node()


def test_tf_is_published_when_tf2_msgs_is_available(rclpy_context, repo_root):
    tf2 = pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs (local interface package) is not built/sourced")
    sim = _sim(rclpy_context, repo_root)
    probe = rclpy.create_node("probe_tf", context=rclpy_context)
    got = []
    probe.create_subscription(tf2.TFMessage, "/tractor/tf", got.append, RELIABLE_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(probe)
    try:
        for _ in range(10):
            sim.step_once()
            for _ in range(10):
                ex.spin_once(timeout_sec=0.0)
        frames = {(t.header.frame_id, t.child_frame_id) for m in got for t in m.transforms}
        assert ("odom", "base_link") in frames  # one TF tree per robot namespace
    finally:
        ex.shutdown()
        probe.destroy_node()
        sim.destroy_node()


def test_timer_mode_steps_by_itself_as_fast_as_possible(rclpy_context, repo_root):
    sim = _sim(rclpy_context, repo_root, drive_mode="timer", real_time_factor=0.0)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    try:
        for _ in range(5000):  # bounded: the timer fires every 0.1 ms of wall time
            ex.spin_once(timeout_sec=0.01)
            if sim.world.t_s >= 0.5:
                break
        assert sim.world.t_s >= 0.5
    finally:
        ex.shutdown()
        sim.destroy_node()


def test_bad_parameters_name_the_parameter(rclpy_context, repo_root, tmp_path):
    with pytest.raises(ParameterError, match="scenario_file"):
        SimNode(context=rclpy_context, parameter_overrides=[Parameter("drive_mode", value="external")])
    with pytest.raises(ParameterError, match=r"scenario_file.*robots\[0\]\.type: unknown robot type 'boat'"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("world: {name: x, datum: {lat_deg: 36, lon_deg: 140}}\n"
                       "robots: [{name: a, type: boat, start: {x_m: 0, y_m: 0}}]\n")
        SimNode(context=rclpy_context, parameter_overrides=[Parameter("scenario_file", value=str(bad))])
    with pytest.raises(ParameterError, match="drive_mode"):
        _sim(rclpy_context, repo_root, drive_mode="sometimes")


def test_wheels_refuse_decisions_older_than_their_bound(rclpy_context, repo_root):
    """The decision's stamp (sim time) is the command's time: unstamped, future and too old decisions are
    refused at once, an accepted one moves the robot only until it is cmd_max_age_s old (a late safety loop
    stops the robot instead of driving it on its last decision)."""
    sim = _sim(rclpy_context, repo_root, seed=3, cmd_max_age_s=0.25)
    probe = rclpy.create_node("probe_age", context=rclpy_context)
    cmd = probe.create_publisher(TwistStamped, "/tractor/cmd_vel", COMMAND_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(probe)
    w = sim.world

    def applied():
        return 0.0 if w.command_stale("tractor") else w.robots["tractor"].cmd_v

    def send(stamp_s, v=1.0):
        msg = TwistStamped()
        msg.twist.linear.x = v
        if stamp_s is not None:
            msg.header.stamp = to_stamp(stamp_s)
        cmd.publish(msg)
        for _ in range(20):
            ex.spin_once(timeout_sec=0.0)

    try:
        for _ in range(50):   # 1 s: time exists
            sim.step_once()
        for stamp in (None, w.t_s - 0.3, w.t_s + 0.5):   # unstamped, older than 0.25 s, from the future
            send(stamp)
            assert applied() == 0.0, stamp
        assert sim.stale_commands["tractor"] == 3
        for _ in range(25):   # fresh decisions every step: applied
            send(w.t_s)
            sim.step_once()
            assert applied() == 1.0
        assert abs(w.velocity("tractor")[0]) > 0.1
        t_last = w.t_s
        send(t_last)
        while not w.command_stale("tractor"):   # no new decision: out of date 0.25 s after it was made
            sim.step_once()
        assert w.t_s - t_last == pytest.approx(0.25 + 0.02, abs=0.021)
        sim.step_once()   # the wheels brake on it in this step: one stop on an out-of-date decision
        assert sim.decisions_refused()["tractor"] == 3 + 1
    finally:
        ex.remove_node(probe)
        ex.remove_node(sim)
        probe.destroy_node()
        sim.destroy_node()
