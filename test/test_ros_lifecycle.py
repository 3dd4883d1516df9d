"""Lifecycle: managed nodes wait unconfigured, the manager brings them up in order and down safely; an
inactive driver commands nothing; an inactive mission accepts no goal."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
pytest.importorskip("agricare_interfaces.action")
from geometry_msgs.msg import TwistStamped  # noqa: E402
from lifecycle_msgs.msg import State  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from agricare.ros.convert import twist_stamped  # noqa: E402
from agricare.ros.qos import COMMAND_QOS  # noqa: E402


def _spin_until(ex, cond, n=400):
    for _ in range(n):
        if cond():
            return True
        ex.spin_once(timeout_sec=0.01)
    return cond()


def test_manager_brings_a_robot_up_in_order_and_down_safely(rclpy_context, operator):
    from agricare_interfaces.action import CoverField

    from agricare.nodes.base_driver_node import BaseDriverNode
    from agricare.nodes.farm_mission_node import FarmMissionNode
    from agricare.nodes.lifecycle_manager_node import LifecycleManagerNode

    managed = [Parameter("managed", value=True)]
    driver = BaseDriverNode(context=rclpy_context, parameter_overrides=managed + [
        Parameter("driver", value="sim")])
    mission = FarmMissionNode(context=rclpy_context, parameter_overrides=managed + operator.parameters() + [
        Parameter("scenario_file", value="farm_small.yaml"), Parameter("field_name", value="field_a")])
    io = rclpy.create_node("lifecycle_test_io", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    for n in (driver, mission, io):
        ex.add_node(n)
    get_state = {n: io.create_client(GetState, f"{n}/get_state") for n in ("base_driver_node", "farm_mission_node")}
    cmd = io.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
    goals = ActionClient(io, CoverField, "cover_field")
    manager = None
    try:
        def state_of(name):
            fut = get_state[name].call_async(GetState.Request())
            assert _spin_until(ex, fut.done)
            return fut.result().current_state.id

        assert _spin_until(ex, lambda: all(c.service_is_ready() for c in get_state.values()))
        assert state_of("base_driver_node") == State.PRIMARY_STATE_UNCONFIGURED
        assert state_of("farm_mission_node") == State.PRIMARY_STATE_UNCONFIGURED
        # unconfigured: a velocity command does not reach the wheels, a mission goal is refused
        assert _spin_until(ex, lambda: cmd.get_subscription_count() >= 1)
        cmd.publish(twist_stamped(0.5, 0.0, driver.get_clock().now().nanoseconds * 1e-9))
        for _ in range(20):
            ex.spin_once(timeout_sec=0.01)
        assert driver.loop._cmd is None   # the command never reached the drive loop
        assert _spin_until(ex, goals.server_is_ready)
        fut = goals.send_goal_async(operator.sign(CoverField.Goal()))
        assert _spin_until(ex, fut.done) and not fut.result().accepted

        manager = LifecycleManagerNode(context=rclpy_context, parameter_overrides=[
            Parameter("node_names", value=["base_driver_node", "farm_mission_node"])])
        ex.add_node(manager)
        assert _spin_until(ex, lambda: manager.state == "active"), (manager.state, manager.message)
        assert manager.active == ["base_driver_node", "farm_mission_node"]   # the driver first
        assert state_of("base_driver_node") == State.PRIMARY_STATE_ACTIVE
        assert driver.active and mission.active
        cmd.publish(twist_stamped(0.5, 0.0, driver.get_clock().now().nanoseconds * 1e-9))
        assert _spin_until(ex, lambda: driver.loop._cmd is not None and driver.loop._cmd[0] == 0.5)

        assert manager.shutdown()
        assert _spin_until(ex, lambda: manager.state == "stopped"), (manager.state, manager.message)
        assert state_of("farm_mission_node") == State.PRIMARY_STATE_UNCONFIGURED
        assert state_of("base_driver_node") == State.PRIMARY_STATE_UNCONFIGURED
        assert driver.loop._cmd[:2] == (0.0, 0.0)   # deactivating zeroed the wheels
        cmd.publish(twist_stamped(0.5, 0.0, driver.get_clock().now().nanoseconds * 1e-9))
        for _ in range(20):
            ex.spin_once(timeout_sec=0.01)
        assert driver.loop._cmd[:2] == (0.0, 0.0)   # and an inactive driver takes no command
    finally:
        ex.shutdown()
        for n in (driver, mission, io, manager):
            if n is not None:
                n.destroy_node()
