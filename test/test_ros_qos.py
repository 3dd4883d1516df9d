"""QoS that interoperates: volatile publishers reach latched subscribers, reliable subscribers get odometry."""

from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from agricare.ros.qos import LATCHED_QOS, subscribe_latched  # noqa: E402

VOLATILE_RELIABLE = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.VOLATILE)


def _spin_until(executor, cond, timeout_s=3.0):
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < timeout_s:
        executor.spin_once(timeout_sec=0.02)
    return cond()


def test_subscribe_latched_gets_late_joined_and_volatile_publishers_once(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor

    node = rclpy.create_node("qos_probe", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    try:
        latched = node.create_publisher(String, "plan_text", LATCHED_QOS)
        latched.publish(String(data="before join"))
        got = []
        _tl_sub, vol_sub = subscribe_latched(node, String, "plan_text", lambda m: got.append(m.data))
        assert _spin_until(ex, lambda: got == ["before join"]), got
        volatile = node.create_publisher(String, "plan_text", VOLATILE_RELIABLE)
        # the volatile publisher is compatible with (and matched by) the subscription
        assert _spin_until(ex, lambda: volatile.get_subscription_count() >= 1 and vol_sub.get_publisher_count() >= 2)
        volatile.publish(String(data="from ros2 topic pub"))
        assert _spin_until(ex, lambda: len(got) >= 2), got
        latched.publish(String(data="after join"))  # reaches both halves: delivered once
        assert _spin_until(ex, lambda: len(got) >= 3), got
        for _ in range(10):  # anything still in flight would show up as a duplicate
            ex.spin_once(timeout_sec=0.02)
        assert sorted(got) == sorted(["before join", "from ros2 topic pub", "after join"])
        latched.publish(String(data="after join"))  # an equal message published again is delivered again
        assert _spin_until(ex, lambda: len(got) >= 4), got
        for _ in range(10):
            ex.spin_once(timeout_sec=0.02)
        assert got.count("after join") == 2, got
        # a transient-local-only subscription would have missed the volatile publisher
        tl_only = []
        node.create_subscription(String, "plan_text", lambda m: tl_only.append(m.data), LATCHED_QOS)
        volatile.publish(String(data="second"))
        assert _spin_until(ex, lambda: "second" in got)
        assert "second" not in tl_only
    finally:
        ex.shutdown()
        node.destroy_node()


def _build(repo_root, name):
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import EmbeddedRunner

    runner = EmbeddedRunner(load_graph(repo_root / "config" / "scenarios" / name), None, seed=1,
                            until_done=False, progress=None, record=False)
    runner.build()
    return runner


def _endpoints(runner):
    node = runner.monitor
    for _ in range(20):  # the graph cache fills asynchronously: 0.4 s of simulated time
        runner.sim.step_once()
        runner.spin_some(4)
    topics = [t for t, _ in node.get_topic_names_and_types()]
    return {t: (node.get_publishers_info_by_topic(t), node.get_subscriptions_info_by_topic(t)) for t in topics}


@pytest.fixture(scope="module")
def farm_graph(repo_root):
    """farm_small built once (not run) for the QoS checks of this module."""
    runner = _build(repo_root, "farm_small.yaml")
    try:
        yield runner, _endpoints(runner)
    finally:
        runner.shutdown()


def _latched_checks(eps):
    checked = 0
    for topic, (_pubs, subs) in eps.items():
        if "/_action/" in topic:
            continue  # the action status topic is transient-local by the action design, on both ends
        by_node = {}
        for s in subs:
            by_node.setdefault((s.node_namespace, s.node_name), []).append(s.qos_profile.durability)
        for who, durabilities in by_node.items():
            if DurabilityPolicy.TRANSIENT_LOCAL in durabilities:
                checked += 1
                assert DurabilityPolicy.VOLATILE in durabilities, \
                    f"{who} subscribes {topic} transient-local only: a volatile publisher is ignored"
    return checked


def test_every_latched_subscription_also_accepts_volatile_publishers(repo_root, farm_graph):
    assert _latched_checks(farm_graph[1]) >= 3   # plan, speed_limit_mps, plan_directions, ...
    runner = _build(repo_root, "care_small.yaml")
    try:
        eps = _endpoints(runner)
    finally:
        runner.shutdown()
    assert _latched_checks(eps) >= 2             # plan, speed_limit_mps, safety/state


def test_odometry_is_published_reliable_and_reaches_a_reliable_subscriber(farm_graph):
    from nav_msgs.msg import Odometry

    runner, eps = farm_graph
    for topic in ("/tractor/odom", "/tractor/odometry/filtered"):
        pubs = eps[topic][0]
        assert pubs, topic
        assert all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in pubs), topic
    got = {"/tractor/odom": 0, "/tractor/odometry/filtered": 0}
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    for topic in got:
        runner.monitor.create_subscription(
            Odometry, topic, lambda m, t=topic: got.__setitem__(t, got[t] + 1), reliable)
    for _ in range(100):  # 2 s of simulated time
        runner.sim.step_once()
        runner.spin_some(4)
    assert got["/tractor/odom"] > 10 and got["/tractor/odometry/filtered"] > 10, got
