"""The embedded runner's in-process clock (``_set_clocks``): every node's ROS clock shows the simulator's time, as
rclpy's own ``TimeSource.clock_callback`` would set it, with one ``Time`` for all the nodes."""

from __future__ import annotations

import types

import pytest


def test_set_clocks_sets_every_node_clock_like_the_clock_callback(rclpy_context):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock

    from agricare.bringup.runner import EmbeddedRunner
    from agricare.ros.convert import to_stamp

    nodes = [rclpy.create_node(f"clk{k}", context=rclpy_context,
                               parameter_overrides=[Parameter("use_sim_time", value=True)]) for k in range(3)]
    ref = rclpy.create_node("clk_ref", context=rclpy_context,
                            parameter_overrides=[Parameter("use_sim_time", value=True)])
    try:
        fake = types.SimpleNamespace(_time_sources=[n._time_source for n in nodes])
        for t in (0.05, 12.345678901, 600.0):
            msg = Clock(clock=to_stamp(t))
            EmbeddedRunner._set_clocks(fake, msg)
            ref._time_source.clock_callback(msg)            # rclpy's own path
            want = ref.get_clock().now().nanoseconds
            assert want == int(round(t * 1e9))
            for n in nodes:
                assert n.get_clock().now().nanoseconds == want
                assert n._time_source._last_time_set.nanoseconds == want
    finally:
        for n in nodes + [ref]:
            n.destroy_node()
