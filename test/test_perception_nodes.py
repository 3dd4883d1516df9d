"""In-process rclpy tests of the perception nodes and the row follower node."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseArray, TwistStamped  # noqa: E402
from nav_msgs.msg import OccupancyGrid, Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, LaserScan  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from agricare.core.perception.crop_rows import CameraGeometry, render_synthetic_rows  # noqa: E402
from agricare.core.perception.markers import euler_to_rvec, render_marker  # noqa: E402
from agricare.nodes import crop_row_node as crn  # noqa: E402
from agricare.nodes import obstacle_tracker_node as otn  # noqa: E402
from agricare.nodes.growth_map_node import GrowthMapNode  # noqa: E402
from agricare.nodes.marker_node import MarkerNode  # noqa: E402
from agricare.nodes.row_follower_node import RowFollowerNode  # noqa: E402
from agricare.ros.convert import bgr_to_image, to_stamp, xyyaw_to_pose  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import COMMAND_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

CAM = CameraGeometry(300.0, 300.0, 159.5, 119.5, 320, 240, height_m=0.8, pitch_rad=0.7, x_m=0.2)


def spin_until(ex, cond, max_iter=300):
    for _ in range(max_iter):
        if cond():
            return True
        ex.spin_once(timeout_sec=0.02)
    return cond()


class IO:
    def __init__(self, ctx, node):
        self.ex = SingleThreadedExecutor(context=ctx)
        self.node = node
        self.io = rclpy.create_node("perception_test_io", context=ctx)
        self.ex.add_node(node)
        self.ex.add_node(self.io)
        self.diag: list[DiagnosticStatus] = []
        self.io.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diag.extend(m.status),
                                    RELIABLE_QOS)

    def now(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def pub(self, mtype, topic, qos):
        p = self.io.create_publisher(mtype, topic, qos)
        assert spin_until(self.ex, lambda: p.get_subscription_count() >= 1)
        return p

    def sub(self, mtype, topic, qos):
        box = []
        self.io.create_subscription(mtype, topic, box.append, qos)
        return box

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


def camera_info(cam=CAM):
    ci = CameraInfo()
    ci.width, ci.height = cam.width_px, cam.height_px
    ci.k = [cam.fx_px, 0.0, cam.cx_px, 0.0, cam.fy_px, cam.cy_px, 0.0, 0.0, 1.0]
    ci.header.frame_id = "camera_optical"
    return ci


def guidance_values(msg):
    return msg.offset_m, msg.heading_rad, msg.confidence, msg.end_of_row


def _mount(cam=CAM):
    return [Parameter("camera_height_m", value=cam.height_m), Parameter("camera_pitch_rad", value=cam.pitch_rad),
            Parameter("camera_x_m", value=cam.x_m), Parameter("stale_timeout_s", value=0.3)]


def test_crop_row_node_guidance_and_health(rclpy_context):
    node = crn.CropRowNode(context=rclpy_context, parameter_overrides=_mount())
    t = IO(rclpy_context, node)
    try:
        out = t.sub(crn.GUIDANCE_TYPE, "perception/row_guidance", RELIABLE_QOS)
        img_pub = t.pub(type(bgr_to_image(np.zeros((2, 2, 3), np.uint8), 0.0, "c")), "camera/image_raw", SENSOR_QOS)
        info_pub = t.pub(CameraInfo, "camera/camera_info", SENSOR_QOS)
        img = render_synthetic_rows(CAM, 0.5, 0.06, -0.04, seed=2)
        # no camera_info yet: guidance withheld, confidence 0, warning on /diagnostics
        img_pub.publish(bgr_to_image(img, t.now(), "camera_optical"))
        assert spin_until(t.ex, lambda: len(out) >= 1)
        assert guidance_values(out[-1])[2] == 0.0
        assert spin_until(t.ex, lambda: any("camera_info" in d.message for d in t.diag))
        # with camera_info: metric guidance
        info_pub.publish(camera_info())
        spin_until(t.ex, lambda: node._camera is not None)
        for _ in range(4):
            n = len(out)
            img_pub.publish(bgr_to_image(img, t.now(), "camera_optical"))
            assert spin_until(t.ex, lambda n=n: len(out) > n)
        off, hdg, conf, eor = guidance_values(out[-1])
        assert conf > 0.5 and not eor
        assert off == pytest.approx(0.06, abs=0.02)
        assert hdg == pytest.approx(-0.04, abs=0.02)
        # a non-BGR image: no crash, warning
        bad = bgr_to_image(img, t.now(), "camera_optical")
        bad.encoding = "32FC1"
        img_pub.publish(bad)
        assert spin_until(t.ex, lambda: any("bad image" in d.message for d in t.diag))
        # camera goes quiet: stale on /diagnostics
        assert spin_until(t.ex, lambda: any(d.level == DiagnosticStatus.STALE and "stale" in d.message
                                            for d in t.diag), max_iter=200)
    finally:
        t.close()


def test_crop_row_node_takes_the_newest_frame_only(rclpy_context):
    """A detector slower than the camera must not work through a queue of old frames (a blank camera would be
    noticed only after them): the image subscription keeps the newest frame only."""
    node = crn.CropRowNode(context=rclpy_context, parameter_overrides=_mount())
    try:
        subs = {s.topic_name: s for s in node.subscriptions}
        image = subs[node.resolve_topic_name("camera/image_raw")]
        assert image.qos_profile.depth == 1
        assert subs[node.resolve_topic_name("camera/camera_info")].qos_profile.depth == SENSOR_QOS.depth
    finally:
        node.destroy_node()


def test_crop_row_node_bad_parameter(rclpy_context):
    with pytest.raises(ParameterError, match="camera_height_m"):
        crn.CropRowNode(context=rclpy_context, parameter_overrides=[Parameter("camera_height_m", value=-1.0)])


def _guidance_msg(off, hdg, conf, eor):
    m = crn.RowGuidance()
    m.offset_m, m.heading_rad, m.confidence, m.end_of_row = off, hdg, conf, eor
    return m


def test_row_follower_node_servo_end_of_row_and_turn_plan(rclpy_context):
    node = RowFollowerNode(context=rclpy_context, parameter_overrides=[Parameter("rate_hz", value=50.0)])
    t = IO(rclpy_context, node)
    try:
        cmds = t.sub(TwistStamped, "cmd_vel_nav", COMMAND_QOS)
        states = t.sub(String, "row_follower/state", LATCHED_QOS)
        g_pub = t.pub(crn.GUIDANCE_TYPE, "perception/row_guidance", RELIABLE_QOS)
        o_pub = t.pub(Odometry, "odometry/filtered", SENSOR_QOS)

        def odom(x=0.0):
            m = Odometry()
            m.header.frame_id = "odom"
            m.header.stamp = to_stamp(t.now())
            m.pose.pose = xyyaw_to_pose(x, 0.0, 0.0)
            o_pub.publish(m)

        # no guidance: zero command
        assert spin_until(t.ex, lambda: len(cmds) >= 2)
        assert cmds[-1].twist.linear.x == 0.0
        assert spin_until(t.ex, lambda: states and states[-1].data == "following")
        g_pub.publish(_guidance_msg(0.1, 0.0, 0.9, False))
        odom()
        assert spin_until(t.ex, lambda: cmds and cmds[-1].twist.linear.x > 0.5)
        assert cmds[-1].twist.angular.z > 0  # row on the left: turn left
        # end of row: drives the exit, then plans the turn
        g_pub.publish(_guidance_msg(0.0, 0.0, 0.9, True))
        odom()
        assert spin_until(t.ex, lambda: states[-1].data == "end_of_row")
        odom(x=2.0)  # the exit distance has been driven
        assert spin_until(t.ex, lambda: states[-1].data == "turning")
        assert node.follower.turn_path is not None
    finally:
        t.close()


def test_row_follower_node_stops_at_once_on_a_camera_fault(rclpy_context):
    """A camera fault from perception is acted on when it arrives, not at the follower's next cycle: with a 2 s
    cycle, the zero command follows the fault within a fraction of it."""
    node = RowFollowerNode(context=rclpy_context, parameter_overrides=[Parameter("rate_hz", value=0.5)])
    t = IO(rclpy_context, node)
    try:
        cmds = t.sub(TwistStamped, "cmd_vel_nav", COMMAND_QOS)
        assert spin_until(t.ex, lambda: len(cmds) >= 1, max_iter=600)   # the first cycle (2 s after start)
        n0, t0 = len(cmds), time.monotonic()
        node._on_guidance(_guidance_msg(0.1, 0.0, 0.9, False))          # seeing: no command until the next cycle
        spin_until(t.ex, lambda: False, max_iter=20)
        assert len(cmds) == n0
        node._on_guidance(_guidance_msg(0.0, 0.0, -1.0, False))         # CAMERA_FAULT
        assert spin_until(t.ex, lambda: len(cmds) > n0, max_iter=50)
        assert time.monotonic() - t0 < 1.5                              # before the next 2 s cycle
        assert cmds[-1].twist.linear.x == 0.0 and cmds[-1].twist.angular.z == 0.0
        assert node.follower.reason == "no fresh confident row guidance"
        node._timer.cancel()                                            # from here on, only guidance acts
        n1 = len(cmds)
        for _ in range(5):                                              # the camera stays black: frames go on
            node._on_guidance(_guidance_msg(0.0, 0.0, -1.0, False))
        spin_until(t.ex, lambda: False, max_iter=20)
        assert len(cmds) == n1                                          # the stop is not re-sent per frame
        node._on_guidance(_guidance_msg(0.1, 0.0, 0.9, False))          # it sees again, then a new fault
        node._on_guidance(_guidance_msg(0.0, 0.0, -1.0, False))
        assert spin_until(t.ex, lambda: len(cmds) == n1 + 1, max_iter=50)
    finally:
        t.close()


def _scan(t_s, circles, n=360):
    ang = -math.pi + 2 * math.pi / n * np.arange(n)
    d = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    rr = np.full(n, np.inf)
    for cx, cy, r in circles:
        b = d @ np.array([cx, cy])
        disc = b * b - (cx * cx + cy * cy - r * r)
        tt = b - np.sqrt(np.maximum(disc, 0))
        rr = np.where((disc >= 0) & (tt > 0) & (tt < rr), tt, rr)
    rr[::17] = np.nan  # REP-117 dropouts
    s = LaserScan()
    s.header.frame_id = "laser"
    s.header.stamp = to_stamp(t_s)
    s.angle_min, s.angle_increment = -math.pi, 2 * math.pi / n
    s.angle_max = s.angle_min + (n - 1) * s.angle_increment
    s.range_min, s.range_max = 0.1, 20.0
    s.ranges = [float(v) for v in rr]
    return s


def test_obstacle_tracker_node(rclpy_context):
    # the lidar at base_link, set as an explicit override (no robot_description in this test)
    node = otn.ObstacleTrackerNode(context=rclpy_context, parameter_overrides=[Parameter("track_in_odom", value=False),
                                                                               Parameter("laser_x_m", value=0.0)])
    t = IO(rclpy_context, node)
    try:
        out = t.sub(otn.TrackedObjectArray, "tracked_objects", RELIABLE_QOS)
        from visualization_msgs.msg import MarkerArray

        mk = t.sub(MarkerArray, "perception/obstacles/markers", RELIABLE_QOS)
        s_pub = t.pub(LaserScan, "scan", SENSOR_QOS)
        for _k in range(6):
            n = len(out)
            s_pub.publish(_scan(t.now(), [(2.0, 1.0, 0.2)]))
            assert spin_until(t.ex, lambda n=n: len(out) > n)
        last = out[-1]
        assert len(last.objects) == 1 and last.objects[0].is_person
        assert last.objects[0].position.x == pytest.approx(2.0, abs=0.2)
        assert last.objects[0].position.y == pytest.approx(1.0, abs=0.2)
        assert spin_until(t.ex, lambda: mk and len(mk[-1].markers) >= 3)
    finally:
        t.close()


def test_marker_node_pose(rclpy_context):
    node = MarkerNode(context=rclpy_context)
    t = IO(rclpy_context, node)
    try:
        poses = t.sub(PoseArray, "markers/poses", RELIABLE_QOS)
        ids = t.sub(String, "markers/ids", RELIABLE_QOS)
        img_pub = t.pub(type(bgr_to_image(np.zeros((2, 2, 3), np.uint8), 0.0, "c")), "camera/image_raw", SENSOR_QOS)
        info_pub = t.pub(CameraInfo, "camera/camera_info", SENSOR_QOS)
        cam = CameraGeometry(600.0, 600.0, 319.5, 239.5, 640, 480, 1.0, 0.5)
        K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
        img = render_marker(4, K, euler_to_rvec(math.pi + 0.2, 0.1, 0.0), (0.1, 0.05, 1.5))
        img_pub.publish(bgr_to_image(img, t.now(), "camera_optical"))
        assert spin_until(t.ex, lambda: any("camera_info" in d.message for d in t.diag))
        info_pub.publish(camera_info(cam))
        spin_until(t.ex, lambda: node._K is not None)
        img_pub.publish(bgr_to_image(img, t.now(), "camera_optical"))
        assert spin_until(t.ex, lambda: len(poses) >= 1 and len(ids) >= 1)
        p = poses[-1].poses[0].position
        assert (p.x, p.y, p.z) == pytest.approx((0.1, 0.05, 1.5), abs=0.02)
        assert poses[-1].header.frame_id == "camera_optical"
        assert json.loads(ids[-1].data)[0]["id"] == 4
    finally:
        t.close()


def test_growth_map_node_map_and_save(rclpy_context, tmp_path):
    node = GrowthMapNode(context=rclpy_context, parameter_overrides=[
        Parameter("camera_height_m", value=CAM.height_m), Parameter("camera_pitch_rad", value=CAM.pitch_rad),
        Parameter("camera_x_m", value=CAM.x_m), Parameter("width_m", value=10.0), Parameter("height_m", value=6.0),
        Parameter("origin_x_m", value=-2.0), Parameter("origin_y_m", value=-3.0), Parameter("min_samples", value=2),
        Parameter("publish_period_s", value=0.1), Parameter("save_directory", value=str(tmp_path)),
        Parameter("datum_lat_deg", value=52.0), Parameter("datum_lon_deg", value=5.0)])
    t = IO(rclpy_context, node)
    try:
        grids = t.sub(OccupancyGrid, "perception/growth_map", LATCHED_QOS)
        img_pub = t.pub(type(bgr_to_image(np.zeros((2, 2, 3), np.uint8), 0.0, "c")), "camera/image_raw", SENSOR_QOS)
        info_pub = t.pub(CameraInfo, "camera/camera_info", SENSOR_QOS)
        o_pub = t.pub(Odometry, "odometry/filtered", SENSOR_QOS)
        info_pub.publish(camera_info())
        spin_until(t.ex, lambda: node._camera is not None)
        for k in range(3):
            m = Odometry()
            m.header.frame_id = "map"
            m.header.stamp = to_stamp(t.now())
            m.pose.pose = xyyaw_to_pose(0.5 * k, 0.0, 0.0)
            o_pub.publish(m)
            spin_until(t.ex, lambda k=k: node._pose is not None and abs(node._pose[0] - 0.5 * k) < 1e-9)
            img_pub.publish(bgr_to_image(render_synthetic_rows(CAM, 0.5, 0.0, 0.0, seed=k), t.now(), "cam"))
            assert spin_until(t.ex, lambda k=k: node._frames == k + 1)
        assert spin_until(t.ex, lambda: grids and max(grids[-1].data) > 20)
        g = grids[-1]
        assert g.info.width == 40 and g.info.height == 24 and g.header.frame_id == "map"
        assert min(g.data) == -1  # unseen cells
        from agricare.nodes import growth_map_node as gmn

        cli = t.io.create_client(gmn.SaveMap, "perception/save_growth_map")
        req = gmn.SaveMap.Request(directory=str(tmp_path / "req"))
        out_dir = tmp_path / "req"
        assert spin_until(t.ex, cli.service_is_ready)
        fut = cli.call_async(req)
        assert spin_until(t.ex, fut.done)
        assert fut.result().success, fut.result().message
        assert (out_dir / "growth_map.png").exists() and (out_dir / "growth_map.pgw").exists()
        assert "lat_deg" in (out_dir / "growth_map.csv").read_text().splitlines()[0]
        # relative paths, as make demo has them (out/farm/records): the scouting mission's request lands in
        # <output_dir>/growth_map itself, not in <save_directory>/<output_dir>/growth_map
        from agricare.nodes.scouting_mission_node import growth_map_request_dir

        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            node.params = dataclasses.replace(node.params, save_directory="out/farm/records/growth_map")
            files, _ = node._save(growth_map_request_dir("out/farm/records"))
        finally:
            os.chdir(cwd)
        assert files and all(pathlib.Path(f).parent == tmp_path / "out/farm/records/growth_map" for f in files), files
    finally:
        t.close()
