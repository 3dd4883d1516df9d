"""Property tests of the safety supervisor over random input sequences (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agricare.core.safety.supervisor import (
    STOP_STATES,
    SafetyState,
    Supervisor,
    SupervisorInputs,
    SupervisorParams,
)

REQUIRED = ("cmd", "odom", "scan", "imu")
PARAMS = SupervisorParams(required_inputs=REQUIRED, resume_hold_s=0.3)
# point certainly inside the inflated footprint (front edge 0.6 m + 0.2 m margin) -> always a stop
INSIDE_FOOTPRINT_POINT = (0.7, 0.0)

finite_speed = st.floats(-3.0, 3.0, allow_nan=False)
maybe_bad_speed = st.one_of(finite_speed, finite_speed, finite_speed, st.sampled_from([math.nan, math.inf]))
age = st.one_of(st.just(0.0), st.floats(0.0, 0.4), st.floats(0.6, 5.0), st.none())

step = st.fixed_dictionaries({
    "dt": st.one_of(st.just(0.05), st.floats(0.01, 0.2), st.just(0.5)),
    "cmd_v": maybe_bad_speed,
    "cmd_w": st.one_of(st.floats(-2.0, 2.0), st.just(math.nan)),
    "odom_v": finite_speed,
    "ages": st.fixed_dictionaries({n: age for n in REQUIRED}),
    "estop": st.sampled_from([False] * 8 + [True]),
    "obstacle": st.one_of(st.none(), st.just("inside"), st.tuples(st.floats(-6, 6), st.floats(-3, 3))),
    "scan_nan": st.sampled_from([False] * 9 + [True]),
    "roll": st.one_of(st.just(0.0), st.floats(-0.6, 0.6)),
    "pitch": st.one_of(st.just(0.0), st.floats(-0.6, 0.6)),
    "battery": st.one_of(st.none(), st.floats(0.0, 1.0)),
    "reset": st.sampled_from([False] * 5 + [True]),
})


def build_inputs(t, s) -> tuple[SupervisorInputs, set[str]]:
    """Inputs for one step and the set of fault causes this step must produce."""
    ages = s["ages"]
    causes = set()
    stamps = {}
    for name in REQUIRED:
        a = ages[name]
        if a is None:
            stamps[name] = None
            causes.add(f"no_data:{name}")
        else:
            stamps[name] = t - a
            if a > PARAMS.timeout_s(name):
                causes.add(f"stale:{name}")
    pts = np.zeros((0, 2))
    if s["obstacle"] == "inside":
        pts = np.array([INSIDE_FOOTPRINT_POINT])
    elif s["obstacle"] is not None:
        pts = np.array([s["obstacle"]])
    if s["scan_nan"]:
        pts = np.vstack([pts, [[math.nan, 1.0]]])
    fresh = {n for n in REQUIRED if ages[n] is not None and ages[n] <= PARAMS.timeout_s(n)}
    if "cmd" in fresh and not (math.isfinite(s["cmd_v"]) and math.isfinite(s["cmd_w"])):
        causes.add("nonfinite:cmd")
    if "scan" in fresh and s["scan_nan"]:
        causes.add("nonfinite:scan")
    inp = SupervisorInputs(
        cmd_v_mps=s["cmd_v"], cmd_w_radps=s["cmd_w"], cmd_stamp_s=stamps["cmd"],
        odom_v_mps=s["odom_v"], odom_stamp_s=stamps["odom"],
        scan_points_in_base=pts, scan_stamp_s=stamps["scan"],
        roll_rad=s["roll"], pitch_rad=s["pitch"], imu_stamp_s=stamps["imu"],
        estop=s["estop"], estop_stamp_s=t if s["estop"] else None,
        battery_fraction=math.nan if s["battery"] is None else s["battery"],
        battery_stamp_s=None if s["battery"] is None else t,
    )
    return inp, causes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=60))
def test_supervisor_invariants_over_random_sequences(steps):
    sup = Supervisor(PARAMS)
    t = 100.0
    estop_pending = False  # e-stop seen and not yet released by a successful reset
    for k, s in enumerate(steps):
        t += s["dt"]
        inp, fault_causes = build_inputs(t, s)
        d = sup.update(t, inp)
        # outputs are always finite numbers
        assert math.isfinite(d.cmd_v_mps) and math.isfinite(d.cmd_w_radps) and math.isfinite(d.limit_mps)
        # never above the active limit (forward or reverse)
        assert abs(d.cmd_v_mps) <= d.limit_mps + 1e-12
        assert d.limit_mps <= PARAMS.max_speed_mps + 1e-12
        assert abs(d.cmd_w_radps) <= PARAMS.max_angular_speed_radps + 1e-12
        # zero in every stop state
        if d.state in STOP_STATES:
            assert d.cmd_v_mps == 0.0 and d.cmd_w_radps == 0.0 and d.limit_mps == 0.0
        # stale / missing / NaN input -> FAULT (or the latched e-stop above it) in this very cycle
        if fault_causes:
            assert d.state in (SafetyState.FAULT, SafetyState.EMERGENCY_STOP)
            assert fault_causes <= set(d.reasons), (fault_causes, d.reasons)
        if s["dt"] > PARAMS.loop_timeout_s and k > 0:
            assert "loop_overrun" in d.reasons and d.state in STOP_STATES
        # other causes stop in the same cycle
        if s["obstacle"] == "inside":
            assert d.state in STOP_STATES
        if abs(s["roll"]) >= PARAMS.max_roll_rad or abs(s["pitch"]) >= PARAMS.max_pitch_rad:
            assert d.state in STOP_STATES
        if s["battery"] is not None and s["battery"] <= PARAMS.battery_critical_fraction:
            assert d.state in STOP_STATES
        # e-stop: same cycle, and never released without a successful reset
        if s["estop"]:
            estop_pending = True
            assert d.state == SafetyState.EMERGENCY_STOP
        if estop_pending:
            assert d.state == SafetyState.EMERGENCY_STOP and d.estop_latched
        if s["reset"]:
            ok, _ = sup.reset()
            if s["estop"] or fault_causes:
                assert not ok  # the stop source is not cleared
            if ok:
                estop_pending = False


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(finite_speed, st.floats(-1.0, 1.0)), min_size=2, max_size=80))
def test_comfort_limits_hold_in_run(cmds):
    """With no safety cause present, output accel / lateral accel stay within the passenger limits."""
    p = SupervisorParams(required_inputs=("cmd",))
    sup = Supervisor(p)
    dt = 0.05
    prev = None
    for k, (v, w) in enumerate(cmds):
        t = k * dt
        d = sup.update(t, SupervisorInputs(cmd_v_mps=v, cmd_w_radps=w, cmd_stamp_s=t))
        assert d.state == SafetyState.RUN
        assert abs(d.cmd_v_mps * d.cmd_w_radps) <= p.max_lateral_accel_mps2 + 1e-9
        if prev is not None:
            assert abs(d.cmd_v_mps - prev) / dt <= max(p.max_accel_mps2, p.max_decel_mps2) + 1e-9
        prev = d.cmd_v_mps
