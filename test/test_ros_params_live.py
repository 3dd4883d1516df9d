"""Live parameters: set_parameters goes through the same dataclass validation as the start; one schema per node."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from rclpy.parameter import Parameter  # noqa: E402

from agricare.ros.params import ParameterError  # noqa: E402


def _controller(ctx):
    from agricare.nodes.controller_node import ControllerNode

    return ControllerNode(context=ctx)


def test_bad_type_and_range_are_refused_with_the_reason_and_nothing_changes(rclpy_context):
    node = _controller(rclpy_context)
    try:
        before = node.tracker.params.desired_speed_mps
        bad_type = node.set_parameters([Parameter("desired_speed_mps", value="fast")])[0]
        assert not bad_type.successful
        assert "desired_speed_mps" in bad_type.reason and "number" in bad_type.reason
        bad_range = node.set_parameters([Parameter("desired_speed_mps", value=-1.0)])[0]
        assert not bad_range.successful and "desired_speed_mps must be > 0" in bad_range.reason
        cross = node.set_parameters([Parameter("max_lookahead_m", value=0.1)])[0]  # below min_lookahead_m
        assert not cross.successful and "max_lookahead_m" in cross.reason
        nan = node.set_parameters([Parameter("pose_timeout_s", value=float("nan"))])[0]
        assert not nan.successful and "pose_timeout_s" in nan.reason
        assert node.get_parameter("desired_speed_mps").value == before
        assert node.tracker.params.desired_speed_mps == before
    finally:
        node.destroy_node()


def test_safe_values_apply_live_and_restart_only_values_are_refused(rclpy_context):
    node = _controller(rclpy_context)
    try:
        ok = node.set_parameters([Parameter("desired_speed_mps", value=0.7),
                                  Parameter("pose_timeout_s", value=2)])  # an integer for a float is fine
        assert all(r.successful for r in ok), [r.reason for r in ok]
        assert node.tracker.params.desired_speed_mps == 0.7
        assert node.params.pose_timeout_s == 2.0
        # vehicle limits go to the vehicle model the tracker clamps with
        assert node.set_parameters([Parameter("max_linear_speed_mps", value=0.9)])[0].successful
        assert node.tracker.vehicle.params.max_linear_speed_mps == 0.9
        topic = node.set_parameters([Parameter("odom_topic", value="odom")])[0]
        assert not topic.successful and "restart" in topic.reason and "odom_topic" in topic.reason
        assert node.params.odom_topic == "odometry/filtered"
        # setting a restart-only parameter to its current value is no change (ros2 param load of the same file)
        assert node.set_parameters([Parameter("odom_topic", value="odometry/filtered")])[0].successful
    finally:
        node.destroy_node()


def test_row_follower_speed_changes_live(rclpy_context):
    from agricare.nodes.row_follower_node import RowFollowerNode

    node = RowFollowerNode(context=rclpy_context)
    try:
        assert node.set_parameters([Parameter("speed_mps", value=0.55)])[0].successful
        assert node.follower.p.speed_mps == 0.55
        res = node.set_parameters([Parameter("rows_per_turn", value=2)])[0]
        assert not res.successful and "restart" in res.reason
    finally:
        node.destroy_node()


CORE_SCHEMAS = {
    "controller_node": ("agricare.core.control.path_tracking:TrackerParams",
                        "agricare.core.control.kinematics:DiffDriveParams",
                        "agricare.core.control.kinematics:AckermannParams"),
    "row_follower_node": ("agricare.core.control.row_follower:RowFollowerParams",),
    "growth_map_node": ("agricare.core.perception.vegetation:GrowthMapParams",),
    "crop_row_node": ("agricare.core.perception.crop_rows:CropRowParams",
                      "agricare.core.perception.crop_rows:GuidanceFilterParams"),
}


def _load(ref):
    mod, name = ref.split(":")
    return getattr(importlib.import_module(mod), name)


@pytest.mark.parametrize("node_name", sorted(CORE_SCHEMAS))
def test_one_schema_per_node_the_core_dataclass_flattened(rclpy_context, node_name):
    from agricare.bringup.graph import node_class

    cores = [_load(r) for r in CORE_SCHEMAS[node_name]]
    mod = importlib.import_module(f"agricare.nodes.{node_name}")
    core_fields = {f.name for c in cores for f in dataclasses.fields(c)}
    # no dataclass of the node module repeats a core field (a mirror of the core dataclass)
    for obj in vars(mod).values():
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == mod.__name__:
            mirrored = {f.name for f in dataclasses.fields(obj)} & core_fields
            assert not mirrored, f"{obj.__name__} mirrors core fields {sorted(mirrored)}"
    node = node_class(node_name)(context=rclpy_context)
    try:
        declared = set(node._parameters)
        assert core_fields <= declared, sorted(core_fields - declared)
        for c in cores:  # the node runs on the core dataclass instances themselves
            assert isinstance(node.param_set.of(c), c)
    finally:
        node.destroy_node()


def test_bad_parameter_at_start_is_logged_fatal_to_rosout(rclpy_context):
    from rcl_interfaces.msg import Log
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from agricare.nodes.controller_node import ControllerNode

    listener = rclpy.create_node("rosout_listener", context=rclpy_context)
    got = []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    listener.create_subscription(Log, "/rosout", got.append, qos)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(listener)
    try:
        with pytest.raises(ParameterError) as err:
            ControllerNode(context=rclpy_context, parameter_overrides=[Parameter("lookahead_time_s", value=-2.0)])
        assert err.value.logged
        fatal = []
        for _ in range(200):
            ex.spin_once(timeout_sec=0.02)
            fatal = [m for m in got if m.level == Log.FATAL and "lookahead_time_s" in m.msg]
            if fatal:
                break
        assert fatal, [(m.level, m.msg) for m in got]
        assert fatal[0].name.endswith("controller_node")
    finally:
        ex.shutdown()
        listener.destroy_node()
