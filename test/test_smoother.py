"""Velocity smoother: limits never exceeded (hypothesis), exact settling, timeout ramp, deadband."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agricare.core.control.smoother import SmootherParams, VelocitySmoother, _ramp_sum, _ramp_sum_inverse

PARAMS = SmootherParams(max_linear_speed_mps=1.2, max_linear_accel_mps2=0.8, max_linear_jerk_mps3=4.0,
                        max_angular_speed_radps=1.0, max_angular_accel_radps2=1.5, max_angular_jerk_radps3=6.0,
                        input_timeout_s=0.5)


def _check_limits(out, dt, vmax, amax, jmax, tol=1e-9):
    v = np.concatenate(([0.0], out))
    a = np.diff(v) / dt
    j = np.diff(np.concatenate(([0.0], a))) / dt
    assert np.all(np.abs(v) <= vmax + tol)
    assert np.all(np.abs(a) <= amax + tol)
    assert np.all(np.abs(j) <= jmax + 1e-6)


commands = st.lists(st.tuples(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), st.integers(1, 30)),
                    min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(commands, st.sampled_from([0.01, 0.02, 0.05, 0.1]))
def test_limits_never_exceeded(cmds, dt):
    sm = VelocitySmoother(PARAMS)
    sm.update(None, 0.0)
    out, t = [], 0.0
    for v, w, n in cmds:
        for k in range(n):
            t += dt
            out.append(sm.update((v, w) if k == 0 else None, t))
    out = np.array(out)
    _check_limits(out[:, 0], dt, 1.2, 0.8, 4.0)
    _check_limits(out[:, 1], dt, 1.0, 1.5, 6.0)


@settings(max_examples=30, deadline=None)
@given(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0))
def test_settles_exactly_without_overshoot(v0, target):
    sm = VelocitySmoother(PARAMS)
    dt = 0.02
    sm.update(None, 0.0)
    t = 0.0
    for _ in range(200):  # reach v0 first
        t += dt
        sm.update((v0, 0.0), t)
    start = sm.output[0]
    assert start == pytest.approx(float(np.clip(v0, -1.2, 1.2)))
    tgt = float(np.clip(target, -1.2, 1.2))
    vs = []
    for _ in range(300):
        t += dt
        vs.append(sm.update((target, 0.0), t)[0])
    assert vs[-1] == tgt
    lo, hi = min(start, tgt), max(start, tgt)
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in vs)  # monotone approach, no overshoot


def test_timeout_ramps_to_zero():
    sm = VelocitySmoother(PARAMS)
    dt = 0.05
    out = [sm.update((1.0, 0.5), 0.0)]
    t = 0.0
    for _ in range(60):
        t += dt
        out.append(sm.update((1.0, 0.5), t))
    assert out[-1] == pytest.approx((1.0, 0.5))
    for _ in range(80):  # no new command
        t += dt
        out.append(sm.update(None, t))
    arr = np.array(out)
    assert sm.timed_out and sm.output == (0.0, 0.0)
    assert np.all(np.abs(np.diff(arr[:, 0])) <= 0.8 * dt + 1e-9)  # a ramp, not a jump
    stop_index = 61 + int(0.5 / dt)
    assert arr[stop_index - 1, 0] == pytest.approx(1.0)


def test_deadband_and_nan():
    p = SmootherParams(linear_deadband_mps=0.05, angular_deadband_radps=0.1)
    sm = VelocitySmoother(p)
    t = 0.0
    for _ in range(100):
        t += 0.05
        out = sm.update((0.04, 0.09), t)
    assert out == (0.0, 0.0)
    for _ in range(100):
        t += 0.05
        out = sm.update((0.5, 0.2), t)
    assert out == pytest.approx((0.5, 0.2))
    for _ in range(100):
        t += 0.05
        out = sm.update((math.nan, 0.2), t)
    assert out == (0.0, 0.0)


def test_time_not_advancing_keeps_output():
    sm = VelocitySmoother(PARAMS)
    sm.update((1.0, 0.0), 0.0)
    a = sm.update((1.0, 0.0), 0.1)
    assert sm.update((1.0, 0.0), 0.1) == a
    assert sm.update((1.0, 0.0), 0.05) == a


@pytest.mark.parametrize("x", [0.0, 0.01, 0.1, 0.35, 1.0, 7.3, -2.2])
def test_ramp_sum_inverse(x):
    assert _ramp_sum(_ramp_sum_inverse(x, 0.1), 0.1) == pytest.approx(x)


def test_params_validation_names_field():
    with pytest.raises(ValueError, match="max_linear_jerk_mps3"):
        SmootherParams(max_linear_jerk_mps3=0.0)
    with pytest.raises(ValueError, match="angular_deadband_radps"):
        SmootherParams(angular_deadband_radps=-0.1)


def test_stop_on_timeout_gives_zero_at_once():
    """stop_on_timeout: a lost input is zero within input_timeout_s + one cycle, a NaN input at once."""
    from agricare.core.control.smoother import SmootherParams, VelocitySmoother

    sm = VelocitySmoother(SmootherParams(max_linear_speed_mps=3.0, max_linear_accel_mps2=0.8,
                                         input_timeout_s=0.5, stop_on_timeout=True))
    t, dt = 0.0, 0.05
    for _ in range(200):
        t += dt
        v, _ = sm.update((2.0, 0.0), t)
    assert v > 1.9
    for _ in range(9):   # 0.45 s without input: within the timeout, still the commanded speed
        t += dt
        v, _ = sm.update(None, t)
        assert v > 1.9
    for _ in range(2):   # by input_timeout_s + one cycle: zero, no ramp
        t += dt
        out = sm.update(None, t)
    assert out == (0.0, 0.0)
    for _ in range(100):
        t += dt
        sm.update((2.0, 0.0), t)
    assert sm.update((math.nan, 0.0), t + dt) == (0.0, 0.0)


def test_keep_curvature_holds_the_commanded_curvature_while_the_speed_ramps():
    """keep_curvature (car-like robots): w / v of the output is the command's at every step while the speed
    ramps and when the command changes; smoothed apart, the two axes drive another curvature meanwhile."""
    cmds = [(2.0, 0.4)] * 40 + [(1.0, 0.25)] * 40 + [(-0.8, 0.2)] * 60
    ratios = {}
    for keep in (True, False):
        sm = VelocitySmoother(SmootherParams(max_linear_speed_mps=3.0, max_linear_accel_mps2=0.8,
                                             max_angular_speed_radps=1.0, keep_curvature=keep))
        t, err = 0.0, 0.0
        sm.update((0.0, 0.0), t)
        for v_cmd, w_cmd in cmds:
            t += 0.05
            v, w = sm.update((v_cmd, w_cmd), t)
            if abs(v) > 0.05:
                err = max(err, abs(w / v - w_cmd / v_cmd))
        ratios[keep] = err
    assert ratios[True] < 1e-9
    assert ratios[False] > 0.5           # the two axes smoothed apart: 2.6 1/m off at worst (reversing from forwards)


def test_keep_curvature_respects_the_angular_speed_limit():
    sm = VelocitySmoother(SmootherParams(max_linear_speed_mps=3.0, max_linear_accel_mps2=0.8,
                                         max_angular_speed_radps=0.5, keep_curvature=True))
    t = 0.0
    for _ in range(100):
        t += 0.05
        v, w = sm.update((3.0, 0.9), t)
        assert abs(w) <= 0.5 + 1e-12
    assert v == pytest.approx(3.0) and w == pytest.approx(0.5)
