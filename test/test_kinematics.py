"""Diff-drive and Ackermann kinematics: forward/inverse, limits that keep the curvature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agricare.core.control.kinematics import (
    Ackermann,
    AckermannParams,
    DiffDrive,
    DiffDriveParams,
    integrate_twist,
)

speeds = st.floats(-10.0, 10.0, allow_nan=False)


def test_diff_forward_inverse_roundtrip():
    dd = DiffDrive(DiffDriveParams(wheel_separation_m=0.5, wheel_radius_m=0.1))
    wl, wr = dd.inverse(1.0, 2.0)
    assert wl == pytest.approx((1.0 - 0.5) / 0.1) and wr == pytest.approx((1.0 + 0.5) / 0.1)
    assert dd.forward(wl, wr) == pytest.approx((1.0, 2.0))


@settings(max_examples=60, deadline=None)
@given(speeds, speeds)
def test_diff_limit_keeps_curvature_and_wheel_limits(v, w):
    p = DiffDriveParams(wheel_separation_m=0.5, wheel_radius_m=0.1, max_wheel_speed_radps=12.0,
                        max_linear_speed_mps=1.0, max_angular_speed_radps=2.0)
    dd = DiffDrive(p)
    lv, lw = dd.limit(v, w)
    wl, wr = dd.inverse(lv, lw)
    assert max(abs(wl), abs(wr)) <= p.max_wheel_speed_radps + 1e-9
    assert abs(lv) <= p.max_linear_speed_mps + 1e-9 and abs(lw) <= p.max_angular_speed_radps + 1e-9
    # Same direction of motion, scaled by one factor in (0, 1].
    assert lv * w == pytest.approx(lw * v, abs=1e-9)
    assert abs(lv) <= abs(v) + 1e-12 and abs(lw) <= abs(w) + 1e-12
    if abs(v) < 0.5 and abs(w) < 0.5:
        assert (lv, lw) == pytest.approx((v, w))


def test_limit_rejects_non_finite():
    assert DiffDrive().limit(math.nan, 1.0) == (0.0, 0.0)
    assert Ackermann().limit(1.0, math.inf) == (0.0, 0.0)


def test_ackermann_forward_inverse_and_wheel_angles():
    ack = Ackermann(AckermannParams(wheelbase_m=2.5, track_width_m=1.6, max_steering_angle_rad=0.6))
    v, delta = ack.inverse(2.0, 0.4)
    assert delta == pytest.approx(math.atan(2.5 * 0.4 / 2.0))
    assert ack.forward(v, delta) == pytest.approx((2.0, 0.4))
    left, right = ack.wheel_angles(0.3)
    assert left > 0.3 > right > 0.0  # inner (left) wheel turns more in a left turn
    # Both wheels point at the same instantaneous centre of rotation.
    r = 2.5 / math.tan(0.3)
    assert math.tan(left) * (r - 0.8) == pytest.approx(2.5)
    assert math.tan(right) * (r + 0.8) == pytest.approx(2.5)
    assert ack.inverse(0.0, 1.0) == (0.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(speeds, speeds)
def test_ackermann_limit(v, w):
    p = AckermannParams(wheelbase_m=2.5, track_width_m=1.6, wheel_radius_m=0.6,
                        max_steering_angle_rad=0.6, max_wheel_speed_radps=5.0, max_linear_speed_mps=4.0)
    ack = Ackermann(p)
    lv, lw = ack.limit(v, w)
    if abs(v) < 1e-9:
        assert (lv, lw) == (0.0, 0.0)
        return
    kappa_max = math.tan(0.6) / 2.5
    assert abs(lv) <= p.max_linear_speed_mps + 1e-9
    assert max(abs(x) for x in ack.rear_wheel_speeds(lv, lw)) <= p.max_wheel_speed_radps + 1e-9
    assert abs(lw) <= abs(lv) * kappa_max + 1e-9
    assert np.sign(lv) == np.sign(v)
    if abs(w / v) <= kappa_max:  # feasible curvature is preserved
        assert lw / lv == pytest.approx(w / v, rel=1e-9, abs=1e-12)
    else:
        assert abs(lw / lv) == pytest.approx(kappa_max)


def test_steering_rate_limit():
    ack = Ackermann(AckermannParams(max_steering_angle_rad=0.6, max_steering_rate_radps=0.5))
    assert ack.rate_limit_steering(0.0, 0.4, 0.1) == pytest.approx(0.05)
    assert ack.rate_limit_steering(0.58, 1.0, 1.0) == pytest.approx(0.6)
    assert ack.rate_limit_steering(0.0, -0.01, 0.1) == pytest.approx(-0.01)


def test_params_validation_names_field():
    with pytest.raises(ValueError, match="wheel_radius_m"):
        DiffDriveParams(wheel_radius_m=-0.1)
    with pytest.raises(ValueError, match="max_steering_angle_rad"):
        AckermannParams(max_steering_angle_rad=2.0)
    with pytest.raises(ValueError, match="wheelbase_m"):
        AckermannParams(wheelbase_m=float("nan"))


def test_integrate_twist_exact_quarter_circle():
    pose = integrate_twist([0.0, 0.0, 0.0], 1.0, 0.5, math.pi)  # radius 2, quarter turn
    assert pose == pytest.approx([2.0, 2.0, math.pi / 2])
