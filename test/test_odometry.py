"""Wheel odometry: exact arc integration against the analytic circle, covariance growth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.control.odometry import OdometryParams, WheelOdometry, encoder_delta


@pytest.mark.parametrize("steps", [4, 17, 360])
def test_exact_arc_matches_analytic_circle(steps):
    radius, total = 3.0, 1.75 * math.pi  # 315 deg of a left circle starting at the origin heading +x
    odo = WheelOdometry()
    for k in range(steps):
        odo.update(radius * total / steps, total / steps, t_s=0.1 * (k + 1))
    expected = [radius * math.sin(total), radius * (1.0 - math.cos(total)), math.remainder(total, 2 * math.pi)]
    assert odo.pose == pytest.approx(expected, abs=1e-9)
    assert odo.distance_m == pytest.approx(radius * total)


def test_four_big_arc_steps_are_exact_where_euler_is_far_off():
    # 315 deg of a 3 m circle in 4 updates: the odometry integrates each update as an arc (exact); a forward-
    # Euler integrator of the same increments would end more than 0.5 m away. Both are compared with the circle.
    radius, total, steps = 3.0, 1.75 * math.pi, 4
    ds, dyaw = radius * total / steps, total / steps
    odo = WheelOdometry()
    x = y = yaw = 0.0
    for _ in range(steps):
        odo.update(ds, dyaw)
        x, y, yaw = x + ds * math.cos(yaw), y + ds * math.sin(yaw), yaw + dyaw
    exact = np.array([radius * math.sin(total), radius * (1.0 - math.cos(total))])
    assert np.hypot(*(np.asarray(odo.pose[:2]) - exact)) < 1e-9
    assert np.hypot(x - exact[0], y - exact[1]) > 0.5
    assert np.hypot(*(np.asarray(odo.pose[:2]) - [x, y])) > 0.5


def test_diff_drive_and_ackermann_updates():
    odo = WheelOdometry()
    sep = 0.5
    # Left wheel on radius 0.75, right on 1.25 -> centre radius 1.0, quarter turn.
    for _ in range(10):
        odo.update_diff_drive(0.75 * math.pi / 20, 1.25 * math.pi / 20, sep)
    assert odo.pose == pytest.approx([1.0, 1.0, math.pi / 2], abs=1e-9)
    ack = WheelOdometry(pose=(1.0, 2.0, 0.0))
    wheelbase, delta = 2.5, 0.3
    r = wheelbase / math.tan(delta)
    ack.update_ackermann(r * math.pi, delta, wheelbase)  # half circle in one step
    assert ack.pose == pytest.approx([1.0, 2.0 + 2 * r, -math.pi], abs=1e-9)


def test_twist_from_time_and_reverse():
    odo = WheelOdometry()
    odo.update(0.0, 0.0, t_s=1.0)
    odo.update(-0.1, 0.02, t_s=1.1)
    assert odo.v_mps == pytest.approx(-1.0) and odo.w_radps == pytest.approx(0.2)
    # backing along an arc of radius ds / dyaw = -5 m: behind the start, heading turned by +0.02 rad
    r = -0.1 / 0.02
    assert odo.pose == pytest.approx([r * math.sin(0.02), r * (1.0 - math.cos(0.02)), 0.02], abs=1e-12)
    assert odo.distance_m == pytest.approx(0.1)


def test_covariance_grows_with_distance_and_is_psd():
    odo = WheelOdometry(OdometryParams(linear_noise_m2_per_m=1e-3, heading_noise_rad2_per_m=1e-4))
    traces = []
    for _ in range(50):
        odo.update(0.1, 0.01)
        c = odo.covariance
        assert np.allclose(c, c.T)
        assert np.all(np.linalg.eigvalsh(c) >= -1e-15)
        traces.append(np.trace(c))
    assert np.all(np.diff(traces) > 0.0)
    # Driving straight, the lateral variance grows faster than the distance (heading error times distance).
    straight = WheelOdometry(OdometryParams(heading_noise_rad2_per_m=1e-4))
    lateral = []
    for _ in range(2):
        for _ in range(100):
            straight.update(0.1, 0.0)
        lateral.append(straight.covariance[1, 1])
    assert lateral[1] > 4.0 * lateral[0]
    assert straight.covariance[0, 0] == pytest.approx(20.0 * straight.params.linear_noise_m2_per_m)
    still = odo.covariance
    odo.update(0.0, 0.0)
    assert odo.covariance == pytest.approx(still)  # no motion, no growth
    cov6 = odo.pose_covariance_6x6()
    assert cov6.shape == (6, 6) and cov6[5, 5] == pytest.approx(still[2, 2]) and cov6[2, 2] == 1e3


def test_non_finite_increments_are_ignored():
    odo = WheelOdometry()
    odo.update(0.5, 0.1)
    pose, dist, cov = list(odo.pose), odo.distance_m, odo.covariance.copy()
    for bad in ((math.nan, 0.0), (0.1, math.inf), (-math.inf, math.nan)):
        odo.update(*bad)
        assert odo.pose == pytest.approx(pose) and odo.distance_m == dist
        assert np.array_equal(odo.covariance, cov)
    odo.update(0.5, 0.0)   # and it carries on integrating afterwards: 0.5 m straight on along heading 0.1 rad
    assert odo.distance_m == pytest.approx(1.0)
    assert odo.pose == pytest.approx([pose[0] + 0.5 * math.cos(0.1), pose[1] + 0.5 * math.sin(0.1), 0.1], abs=1e-12)


def test_encoder_delta_wraps():
    assert encoder_delta(10, 15) == 5
    # a signed 32-bit counter wrapping from +2^31-2 to -2^31+3, and the same counts read as unsigned
    assert encoder_delta(2**31 - 2, -(2**31) + 3, bits=32) == 5
    assert encoder_delta(2**31 - 2, 2**31 + 3) == 5
    assert encoder_delta(2**32 - 2, 3, bits=32) == 5
    assert encoder_delta(3, 2**32 - 2, bits=32) == -5
    assert encoder_delta(65530, 4, bits=16) == 10
    assert encoder_delta(4, 65530, bits=16) == -10


def test_params_validation():
    with pytest.raises(ValueError, match="linear_noise_m2_per_m"):
        OdometryParams(linear_noise_m2_per_m=-1.0)
