"""obstacle_tracker_node publishes tracked people in base_link (the frame the safety supervisor accepts without
a transform), with velocities over ground: a person standing still stays still while the shuttle drives by,
and a walking person has their own walking velocity, whatever the shuttle does."""

from __future__ import annotations

import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("agricare_interfaces.msg")

from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import LaserScan  # noqa: E402

from agricare.core.geometry import se2_compose, se2_inverse, se2_transform_points  # noqa: E402
from agricare.nodes import obstacle_tracker_node as otn  # noqa: E402
from agricare.ros.convert import to_stamp, xyyaw_to_pose  # noqa: E402
from agricare.ros.qos import RELIABLE_QOS, SENSOR_QOS  # noqa: E402

LASER = (2.0, 0.0, 0.0)  # lidar at the front of the shuttle, as in the care scenarios


def _spin_until(ex, cond, max_iter=300):
    for _ in range(max_iter):
        if cond():
            return True
        ex.spin_once(timeout_sec=0.02)
    return cond()


def _scan_of(person_in_odom, T_odom_base, n=360):
    """A scan (laser frame) of one 0.25 m person at ``person_in_odom`` seen from the shuttle at ``T_odom_base``."""
    T_odom_laser = se2_compose(T_odom_base, LASER)
    cx, cy = se2_transform_points(se2_inverse(T_odom_laser), [person_in_odom])[0]
    r = 0.25
    ang = -math.pi + 2 * math.pi / n * np.arange(n)
    d = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    b = d @ np.array([cx, cy])
    disc = b * b - (cx * cx + cy * cy - r * r)
    t = b - np.sqrt(np.maximum(disc, 0))
    rr = np.where((disc >= 0) & (t > 0), t, np.inf)
    s = LaserScan()
    s.header.frame_id = "laser"
    s.angle_min, s.angle_increment = -math.pi, 2 * math.pi / n
    s.angle_max = s.angle_min + (n - 1) * s.angle_increment
    s.range_min, s.range_max = 0.1, 30.0
    s.ranges = [float(v) for v in rr]
    return s


@pytest.mark.parametrize("person_vel", [(0.0, 0.0), (0.0, 1.0)])
def test_tracked_people_in_base_link_with_ground_velocity(rclpy_context, person_vel):
    node = otn.ObstacleTrackerNode(context=rclpy_context, parameter_overrides=[
        Parameter("odom_topic", value="odom"), Parameter("laser_x_m", value=LASER[0]),
        Parameter("use_sim_time", value=True)])
    io = rclpy.create_node("tracker_test_io", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(io)
    try:
        out = []
        io.create_subscription(otn.TrackedObjectArray, "tracked_objects", out.append, RELIABLE_QOS)
        scan_pub = io.create_publisher(LaserScan, "scan", SENSOR_QOS)
        odom_pub = io.create_publisher(Odometry, "odom", SENSOR_QOS)
        clock_pub = io.create_publisher(Clock, "/clock", RELIABLE_QOS)
        assert _spin_until(ex, lambda: scan_pub.get_subscription_count() and odom_pub.get_subscription_count()
                           and clock_pub.get_subscription_count())
        # the shuttle drives north at 1.5 m/s (yaw 90 deg) past a person 4 m ahead, 2 m to its left
        v_robot, dt = 1.5, 0.1
        person0 = np.array([8.0, 16.0])
        for k in range(25):
            t = 1.0 + k * dt
            clock_pub.publish(Clock(clock=to_stamp(t)))
            assert _spin_until(ex, lambda t=t: abs(node.get_clock().now().nanoseconds * 1e-9 - t) < 1e-6)
            T_odom_base = np.array([10.0, 10.0 + v_robot * (t - 1.0), math.pi / 2])
            person = person0 + np.array(person_vel) * (t - 1.0)
            odom = Odometry()
            odom.header.frame_id = "odom"
            odom.header.stamp = to_stamp(t)
            odom.pose.pose = xyyaw_to_pose(*T_odom_base)
            odom.twist.twist.linear.x = v_robot
            odom_pub.publish(odom)
            assert _spin_until(ex, lambda T=T_odom_base: node._odom is not None and abs(node._odom[1] - T[1]) < 1e-9)
            n = len(out)
            scan = _scan_of(person, T_odom_base)
            scan.header.stamp = to_stamp(t)
            scan_pub.publish(scan)
            assert _spin_until(ex, lambda n=n: len(out) > n)
        last = out[-1]
        assert last.header.frame_id == "base_link"
        people = [o for o in last.objects if o.is_person]
        assert len(people) == 1
        o = people[0]
        expected = se2_transform_points(se2_inverse(T_odom_base), [person])[0]
        assert math.hypot(o.position.x - expected[0], o.position.y - expected[1]) < 0.3
        # over ground, in base_link axes (yaw 90 deg: ground +y is base +x)
        c, s = math.cos(-T_odom_base[2]), math.sin(-T_odom_base[2])
        ev = (c * person_vel[0] - s * person_vel[1], s * person_vel[0] + c * person_vel[1])
        # the shuttle's own 1.5 m/s must not show up in the person's velocity
        speed_err = math.hypot(o.velocity.x - ev[0], o.velocity.y - ev[1])
        assert speed_err < 0.3, (o.velocity, ev)
    finally:
        ex.remove_node(node)
        ex.remove_node(io)
        node.destroy_node()
        io.destroy_node()
