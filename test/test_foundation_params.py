"""agricare.ros.params: declare from a dataclass, validate, name the bad parameter."""

from __future__ import annotations

import dataclasses

import pytest

from agricare.core.validation import require, require_positive

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402

from agricare.ros.params import ParameterError, load_params  # noqa: E402


@dataclasses.dataclass(frozen=True)
class DemoParams:
    max_speed_mps: float = 1.5
    lookahead_m: float = 0.8
    control_rate_hz: float = 20.0
    frame_id: str = "map"
    retries: int = 3
    enabled: bool = True
    footprint_xy_m: tuple[float, ...] = (0.5, 0.3, -0.5, 0.3, -0.5, -0.3, 0.5, -0.3)
    mode: str = "pure_pursuit"

    def __post_init__(self):
        require_positive(self, "max_speed_mps", "lookahead_m", "control_rate_hz")
        require(self.retries >= 0, "retries", "must be >= 0", self.retries)
        require(len(self.footprint_xy_m) >= 6 and len(self.footprint_xy_m) % 2 == 0, "footprint_xy_m",
                "needs at least 3 x,y pairs", self.footprint_xy_m)
        require(self.mode in ("pure_pursuit", "stanley"), "mode", "must be pure_pursuit or stanley", self.mode)


def _node(ctx, overrides=()):
    return rclpy.create_node("param_test", context=ctx, parameter_overrides=list(overrides))


def test_defaults_are_declared_and_loaded(rclpy_context):
    node = _node(rclpy_context)
    try:
        p = load_params(node, DemoParams)
        assert p == DemoParams()
        assert node.get_parameter("max_speed_mps").value == 1.5
        assert list(node.get_parameter("footprint_xy_m").value) == list(DemoParams().footprint_xy_m)
    finally:
        node.destroy_node()


def test_overrides_and_int_to_float(rclpy_context):
    node = _node(rclpy_context, [Parameter("max_speed_mps", value=2), Parameter("mode", value="stanley")])
    try:
        p = load_params(node, DemoParams)
        assert p.max_speed_mps == 2.0 and isinstance(p.max_speed_mps, float)
        assert p.mode == "stanley"
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    "name,value",
    [
        ("max_speed_mps", -1.0),
        ("lookahead_m", 0.0),
        ("control_rate_hz", float("nan")),
        ("retries", -2),
        ("footprint_xy_m", [1.0, 2.0]),
        ("mode", "bang_bang"),
        ("max_speed_mps", "fast"),
        ("enabled", 3),
    ],
)
def test_each_bad_value_is_named(rclpy_context, name, value):
    node = _node(rclpy_context, [Parameter(name, value=value)])
    try:
        with pytest.raises(ParameterError) as err:
            load_params(node, DemoParams)
        assert name in str(err.value)
        assert "param_test" in str(err.value)
    finally:
        node.destroy_node()


@dataclasses.dataclass(frozen=True)
class EmptyArrayParams:
    keep_out_xy_m: tuple[float, ...] = ()
    names: tuple[str, ...] = ()


def test_empty_array_defaults(rclpy_context):
    node = _node(rclpy_context)
    try:
        assert load_params(node, EmptyArrayParams) == EmptyArrayParams()
    finally:
        node.destroy_node()
    node = _node(rclpy_context, [Parameter("keep_out_xy_m", value=[1.0, 2.0, 3.0])])
    try:
        assert load_params(node, EmptyArrayParams).keep_out_xy_m == (1.0, 2.0, 3.0)
    finally:
        node.destroy_node()
