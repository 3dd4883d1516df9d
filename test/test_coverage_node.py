"""coverage_planner_node and section_control_node in-process: plan published latched, sections published."""

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")


def _spin_until(ex, cond, n=200):
    for _ in range(n):
        ex.spin_once(timeout_sec=0.05)
        if cond():
            return True
    return False


def test_planner_publishes_plan_segments_markers(rclpy_context, repo_root):
    from nav_msgs.msg import Path
    from rclpy.parameter import Parameter
    from std_msgs.msg import Float64MultiArray
    from visualization_msgs.msg import MarkerArray

    from agricare.nodes.coverage_planner_node import CoveragePlannerNode, segments_from_msg
    from agricare.ros.qos import LATCHED_QOS

    node = CoveragePlannerNode(context=rclpy_context, parameter_overrides=[
        Parameter("field_file", value=str(repo_root / "config/fields/field_a.geojson"))])
    sub = rclpy.create_node("probe_cov", context=rclpy_context)
    got = {}
    sub.create_subscription(Path, "plan", lambda m: got.setdefault("plan", m), LATCHED_QOS)
    sub.create_subscription(Float64MultiArray, "coverage_plan/segments", lambda m: got.setdefault("seg", m),
                            LATCHED_QOS)
    sub.create_subscription(MarkerArray, "coverage_plan/markers", lambda m: got.setdefault("mk", m), LATCHED_QOS)
    ex = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(sub)
    try:
        assert _spin_until(ex, lambda: len(got) == 3)
        assert got["plan"].header.frame_id == "map"
        seg = segments_from_msg(got["seg"])
        assert seg.shape == (len(got["plan"].poses), 4)
        assert set(np.unique(seg[:, 2])) <= {-1.0, 1.0}
        assert seg[:, 1].any() and not seg[:, 1].all()
        assert len(got["mk"].markers) > 3
    finally:
        ex.shutdown()
        node.destroy_node()
        sub.destroy_node()


def test_section_node_publishes_one_byte_per_section(rclpy_context, repo_root):
    from nav_msgs.msg import Odometry
    from rclpy.parameter import Parameter
    from std_msgs.msg import UInt8MultiArray

    from agricare.nodes.section_control_node import SectionControlNode
    from agricare.ros.convert import xyyaw_to_pose
    from agricare.ros.qos import COMMAND_QOS, SENSOR_QOS

    node = SectionControlNode(context=rclpy_context, parameter_overrides=[
        Parameter("field_file", value=str(repo_root / "config/fields/field_a.geojson")),
        Parameter("section_widths_m", value=[1.0, 1.0, 1.0, 1.0])])
    probe = rclpy.create_node("probe_sec", context=rclpy_context)
    got = []
    probe.create_subscription(UInt8MultiArray, "implement/sections", lambda m: got.append(list(m.data)), COMMAND_QOS)
    pub = probe.create_publisher(Odometry, "odometry/filtered", SENSOR_QOS)
    ex = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        for x in np.arange(20, 30, 0.5):
            msg = Odometry()
            msg.pose.pose = xyyaw_to_pose(float(x), 30.0, 0.0)
            pub.publish(msg)
            ex.spin_once(timeout_sec=0.05)
        # unchanged states are repeated at 5 Hz only: at least the first command arrives
        assert _spin_until(ex, lambda: len(got) >= 1)
        assert all(len(g) == 4 for g in got)
        assert got[-1] == [1, 1, 1, 1]
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
