"""QoS profiles, a two-node round trip in one process, diagnostics publishing."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from agricare.ros import qos  # noqa: E402
from agricare.ros.convert import twist_stamped  # noqa: E402
from agricare.ros.diagnostics import Diagnostics  # noqa: E402


def spin_until(executor, cond, max_iter=2000):
    for _ in range(max_iter):
        if cond():
            return True
        executor.spin_once(timeout_sec=0.01)
    return cond()


def test_qos_profiles():
    assert qos.SENSOR_QOS.reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos.COMMAND_QOS.reliability == ReliabilityPolicy.RELIABLE and qos.COMMAND_QOS.depth == 1
    assert qos.LATCHED_QOS.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos.RELIABLE_QOS.depth == 10


def test_two_node_round_trip(rclpy_context):
    ex = SingleThreadedExecutor(context=rclpy_context)
    a = rclpy.create_node("talker", context=rclpy_context)
    b = rclpy.create_node("echo", context=rclpy_context)
    ex.add_node(a)
    ex.add_node(b)
    got = []
    pub_b = b.create_publisher(TwistStamped, "echo", qos.COMMAND_QOS)
    b.create_subscription(TwistStamped, "cmd", lambda m: pub_b.publish(m), qos.COMMAND_QOS)
    a.create_subscription(TwistStamped, "echo", got.append, qos.COMMAND_QOS)
    pub_a = a.create_publisher(TwistStamped, "cmd", qos.COMMAND_QOS)
    assert spin_until(ex, lambda: pub_a.get_subscription_count() == 1 and pub_b.get_subscription_count() == 1)
    pub_a.publish(twist_stamped(0.7, -0.2, 12.5))
    assert spin_until(ex, lambda: len(got) == 1)
    assert got[0].twist.linear.x == pytest.approx(0.7) and got[0].twist.angular.z == pytest.approx(-0.2)
    assert got[0].header.stamp.sec == 12 and got[0].header.stamp.nanosec == 500_000_000
    ex.shutdown()
    a.destroy_node()
    b.destroy_node()


def test_latched_late_joiner(rclpy_context):
    ex = SingleThreadedExecutor(context=rclpy_context)
    a = rclpy.create_node("pub_latched", context=rclpy_context)
    ex.add_node(a)
    pub = a.create_publisher(String, "latched", qos.LATCHED_QOS)
    pub.publish(String(data="plan-1"))
    b = rclpy.create_node("late", context=rclpy_context)
    ex.add_node(b)
    got = []
    b.create_subscription(String, "latched", got.append, qos.LATCHED_QOS)
    assert spin_until(ex, lambda: got)
    assert got[0].data == "plan-1"
    ex.shutdown()


def test_diagnostics_publishes_on_change(rclpy_context):
    ex = SingleThreadedExecutor(context=rclpy_context)
    node = rclpy.create_node("diag_test", namespace="robot1", context=rclpy_context)
    listener = rclpy.create_node("diag_listener", context=rclpy_context)
    ex.add_node(node)
    ex.add_node(listener)
    got = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", got.append, qos.RELIABLE_QOS)
    diag = Diagnostics(node, "tracking", hardware_id="hw1")
    assert spin_until(ex, lambda: diag._pub.get_subscription_count() == 1)
    diag.error("pose is stale", age_s=1.25)
    assert spin_until(ex, lambda: any(s.level == DiagnosticStatus.ERROR for m in got for s in m.status))
    st = [s for m in got for s in m.status if s.level == DiagnosticStatus.ERROR][0]
    assert st.name == "/robot1/diag_test: tracking" and st.message == "pose is stale"
    assert {kv.key: kv.value for kv in st.values} == {"age_s": "1.25"}
    ex.shutdown()
