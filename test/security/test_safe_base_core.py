"""The safe base's core rules without ROS: gate, blinded scans, e-stop freshness, clock jumps, trip codes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.missions.handover import TripCodeVerifier, UsedCodeStore, issue_trip_code
from agricare.core.safety.fields import scan_to_safety_points
from agricare.core.safety.supervisor import (
    SafetyState,
    Supervisor,
    SupervisorInputs,
    SupervisorParams,
    gated_command,
)

REQ = ("cmd", "odom", "scan", "imu", "estop")


def fresh(t, **kw):
    base = dict(cmd_v_mps=1.0, cmd_stamp_s=t, odom_stamp_s=t, scan_points_in_base=np.zeros((0, 2)), scan_stamp_s=t,
                imu_stamp_s=t, estop_stamp_s=t)
    base.update(kw)
    return SupervisorInputs(**base)


def run(sup, t0, n, dt=0.05, **kw):
    d = None
    for k in range(n):
        d = sup.update(t0 + k * dt, fresh(t0 + k * dt, **kw))
    return d, t0 + (n - 1) * dt


def test_gate_passes_the_command_only_on_run_or_slow():
    sup = Supervisor(SupervisorParams(required_inputs=REQ))
    d, t = run(sup, 0.0, 30)
    assert d.state == SafetyState.RUN and gated_command(d)[0] > 0.3
    d = sup.update(t + 0.05, fresh(t + 0.05, estop=True))
    assert d.state == SafetyState.EMERGENCY_STOP and gated_command(d) == (0.0, 0.0)


def test_scan_reading_rep117_and_blinded():
    meta = (-math.pi, 2 * math.pi / 8, 0.1, 30.0)
    # every beam inside the minimum range (a covered window): obstacles at range_min, and blinded (a fault)
    pts, blinded = scan_to_safety_points([-np.inf] * 8, *meta)
    assert blinded and len(pts) == 8 and np.allclose(np.hypot(*pts.T), 0.1)
    pts, blinded = scan_to_safety_points([0.02] * 8, *meta)          # below range_min: obstacles at range_min
    assert blinded and len(pts) == 8 and np.allclose(np.hypot(*pts.T), 0.1)
    pts, blinded = scan_to_safety_points([0.02] * 3 + [5.0] * 5, *meta)   # something close on a few beams
    assert not blinded and np.allclose(np.sort(np.hypot(*pts.T))[:3], 0.1)
    pts, blinded = scan_to_safety_points([np.inf] * 8, *meta)        # nothing within range: free, not blinded
    assert not blinded and len(pts) == 0
    _, blinded = scan_to_safety_points([np.nan] * 6 + [5.0] * 2, *meta)
    assert blinded
    sup = Supervisor(SupervisorParams(required_inputs=REQ))
    run(sup, 0.0, 10)
    d = sup.update(0.5, fresh(0.5, scan_blinded=True))
    assert d.state == SafetyState.FAULT and "scan_blinded" in d.reasons


def test_missing_or_stale_estop_is_a_protective_stop_not_a_latched_fault():
    sup = Supervisor(SupervisorParams(required_inputs=REQ, resume_hold_s=0.2))
    d = sup.update(0.0, fresh(0.0, estop_stamp_s=None))
    assert "estop_missing" in d.reasons and d.cmd_v_mps == 0.0
    d, t = run(sup, 0.05, 20)
    assert d.state == SafetyState.RUN
    # the circuit goes quiet while the loop runs on: a protective stop once the e-stop input is older than its
    # timeout (measured: RUN up to 0.50 s, then PROTECTIVE_STOP from 0.55 s), never a latched fault
    quiet = t
    for k in range(1, 21):
        d = sup.update(quiet + 0.05 * k, fresh(quiet + 0.05 * k, estop_stamp_s=quiet))
        if 0.05 * k > 0.55:
            assert d.state == SafetyState.PROTECTIVE_STOP and d.reasons == ("estop_stale",) and d.cmd_v_mps == 0.0, d
    assert sup.latched_faults == ()
    d, t = run(sup, quiet + 1.05, 6)                                     # it reports again: resumes after the hold
    assert d.state == SafetyState.RUN and sup.latched_faults == (), d
    d = sup.update(t + 1.0, fresh(t + 1.0, estop_stamp_s=t))          # the circuit went quiet 1 s ago
    # the 1 s gap of the loop itself is a fault (latched); the stale e-stop is reported but not latched
    assert d.state == SafetyState.FAULT and set(d.reasons) == {"loop_overrun", "estop_stale"}, d
    assert sup.latched_faults == ("loop_overrun",)
    d, _ = run(sup, t + 1.05, 40)
    assert d.state == SafetyState.FAULT and "loop_overrun" in d.reasons   # the 1 s gap itself latched
    assert sup.reset()[0]
    d, _ = run(sup, t + 3.1, 10)
    assert d.state == SafetyState.RUN


def test_clock_jump_back_recovers_once_inputs_are_fresh_and_the_panel_resets():
    """Time going back mid-run latches a stop (no drive-off on the old plan, issue 21); it must not stay in FAULT
    until time catches up (990 s here): once every input is fresh on the new time base, the local reset
    releases it."""
    sup = Supervisor(SupervisorParams(required_inputs=REQ, resume_hold_s=0.2))
    d, t = run(sup, 1000.0, 20)
    assert d.state == SafetyState.RUN
    back = 10.0
    d = sup.update(back, fresh(1000.0 + 1.0))                         # inputs stamped before the jump
    assert d.state == SafetyState.FAULT and "clock_jump" in d.reasons and d.cmd_v_mps == 0.0
    sup.reset()
    d = sup.update(back + 0.05, fresh(1000.0 + 1.0))
    assert "clock_jump" in d.reasons and d.cmd_v_mps == 0.0            # still stale-from-the-future
    d, t = run(sup, back + 0.1, 10)                                    # fresh inputs on the new time base
    assert d.state == SafetyState.FAULT and d.cmd_v_mps == 0.0         # latched: never resumes by itself
    assert sup.reset()[0]                                              # the vehicle's panel
    d, _ = run(sup, t + 0.05, 10)
    assert d.state == SafetyState.RUN and not sup.latched_faults


def test_trip_codes_bound_timed_and_single_use(tmp_path):
    key = bytes(range(32))
    store = UsedCodeStore(tmp_path / "used.json")
    v = TripCodeVerifier(key, "shuttle_1", store, max_lifetime_s=600)
    code = issue_trip_code(key, "c1", "g1", "t1", "shuttle_1", 100.0, 60.0)
    assert v.verify(code, "c1", "g1", "t1", math.nan).reason == "bad_time"
    assert v.verify(code, "c1", "g1", "t2", 120.0).reason == "invalid"        # other trip
    assert v.verify(code, "c2", "g1", "t1", 120.0).reason == "invalid"        # other child: nothing more said
    assert v.verify(issue_trip_code(key, "c1", "g1", "t1", "shuttle_1", 100.0, 3600.0), "c1", "g1", "t1",
                    120.0).reason == "lifetime_too_long"
    assert v.verify(code, "c1", "g1", "t1", 120.0).accepted
    assert v.verify(code, "c1", "g1", "t1", 121.0).reason == "replayed"
    assert v.verify(code, "c1", "g1", "t1", 110.0).reason == "clock_rewound"
    assert UsedCodeStore(tmp_path / "used.json").latest_time_s == 121.0      # persisted with the used codes
    with pytest.raises(ValueError):
        TripCodeVerifier(key, "shuttle_1", None)


def test_unbound_version1_codes_only_when_enabled_and_still_single_use(tmp_path):
    from agricare.core.missions.handover import issue_code

    key = bytes(range(32))
    code = issue_code(key, "c1", "g1", "t1", 500.0)
    strict = TripCodeVerifier(key, "shuttle_1", UsedCodeStore(tmp_path / "a.json"))
    assert strict.verify(code, "c1", "g1", "t1", 100.0).reason == "malformed"
    v = TripCodeVerifier(key, "shuttle_1", UsedCodeStore(tmp_path / "b.json"), accept_v1=True, max_lifetime_s=600)
    assert v.verify(code, "c2", "g1", "t1", 100.0).reason == "invalid"
    assert v.verify(issue_code(key, "c1", "g1", "t1", 5000.0), "c1", "g1", "t1", 100.0).reason == "lifetime_too_long"
    assert v.verify(code, "c1", "g1", "t1", 100.0).accepted
    assert v.verify(code, "c1", "g1", "t1", 101.0).reason == "replayed"
    assert v.verify(code, "c1", "g1", "t1", 90.0).reason == "clock_rewound"
