"""Input health of the safe base: refused commands (delayed, future, reordered, out of range) and sensors that
lie with fresh stamps (frozen odometry, stuck IMU) become latched supervisor faults with a zero command."""

from __future__ import annotations

import math

import pytest

from agricare.core.safety.health import CommandCheck, FrozenOdometry, StuckImu
from agricare.core.safety.supervisor import SafetyState, Supervisor, SupervisorInputs, SupervisorParams


def test_command_check_refuses_delayed_future_reordered_and_out_of_range():
    c = CommandCheck(max_age_s=0.5, max_v_mps=3.0, max_w_radps=0.8, range_factor=2.0)
    assert c.check(10.0, 10.02, 2.0, 0.1) is None
    assert c.check(10.05, 10.06, 2.0, 0.1) is None
    assert c.check(10.05, 10.07, 2.0, 0.1) == "cmd_duplicated"      # the same decision again: a repeating link
    assert c.check(10.05, 10.07, 2.5, 0.1) is None                  # the same stamp, another decision: taken
    assert c.check(10.05, 10.08, 2.5, 0.1) == "cmd_duplicated"      # ... and it is the last one now
    assert c.check(10.08, 10.1, 2.5, 0.1) is None                   # the same values, a new stamp: a new decision
    assert c.check(10.0, 10.1, 2.0, 0.1) == "cmd_reordered"         # older than the last accepted one
    assert c.check(9.4, 10.1, 2.0, 0.1) == "cmd_reordered"
    c2 = CommandCheck(0.5, 3.0, 0.8)
    assert c2.check(9.4, 10.0, 2.0, 0.0) == "cmd_delayed"           # 0.6 s old > 0.5 s
    assert c2.check(9.6, 10.0, 2.0, 0.0) is None                    # 0.4 s old: still fresh
    assert c2.check(10.7, 10.1, 2.0, 0.0) == "cmd_future"           # the sender's clock runs 0.6 s ahead
    assert c2.check(10.2, 10.2, 6.01, 0.0) == "cmd_out_of_range"    # 2 x 3 m/s
    assert c2.check(10.2, 10.2, 5.9, 1.59) is None                  # above the limit, plausible: clamped later
    assert c2.check(10.25, 10.25, 0.0, -1.7) == "cmd_out_of_range"
    assert c2.check(10.3, 10.3, math.nan, 0.0) is None              # NaN: the supervisor's nonfinite:cmd
    assert c2.check(0.0, 10.3, 1.0, 0.0) is None                    # unstamped: no stamp checks
    # our own clock went back (simulation restart): the order starts again
    assert c2.check(1.0, 1.01, 1.0, 0.0) is None


def test_frozen_odometry_needs_a_moving_command_or_a_turn_over_the_whole_window():
    f = FrozenOdometry(window_s=0.5, min_speed_mps=0.2, min_yaw_rate_radps=0.1)
    t = 0.0
    for k in range(40):   # moving: the pose changes every sample
        t = 0.05 * k
        f.command(t, 1.0)
        f.gyro(t, 0.0)
        f.pose(t, (0.05 * k, 0.0, 1.0, 0.0, 0.0, 0.0))
        assert not f.frozen(t)
    t_freeze = t
    hits = []
    for k in range(1, 20):   # the pose stands still, the command still moves
        t = t_freeze + 0.05 * k
        f.command(t, 1.0)
        f.gyro(t, 0.0)
        f.pose(t, (0.05 * 39, 0.0, 1.0, 0.0, 0.0, 0.0))
        if f.frozen(t):
            hits.append(round(t - t_freeze, 3))
    assert hits and abs(hits[0] - 0.5) < 1e-9, hits   # frozen for the whole window: caught at its end
    # standing still on a zero command is not frozen, however long
    g = FrozenOdometry(0.5, 0.2, 0.1)
    for k in range(60):
        g.command(0.05 * k, 0.0)
        g.gyro(0.05 * k, 0.0)
        g.pose(0.05 * k, (1.0, 2.0, 1.0, 0.0, 0.0, 0.0))
        assert not g.frozen(0.05 * k)
    # a command that only now starts moving has not had the window to move the pose
    g.command(3.0, 1.0)
    g.pose(3.0, (1.0, 2.0, 1.0, 0.0, 0.0, 0.0))
    assert not g.frozen(3.0) and not g.frozen(3.45)
    assert g.frozen(3.5)
    # turning on the spot (zero linear command) with the IMU measuring the turn
    h = FrozenOdometry(0.5, 0.2, 0.1)
    for k in range(30):
        h.command(0.05 * k, 0.0)
        h.gyro(0.05 * k, 0.4)
        h.pose(0.05 * k, (0.0, 0.0, 1.0, 0.0, 0.0, 0.0))
    assert h.frozen(0.05 * 29)


def test_stuck_imu_counts_identical_readings():
    s = StuckImu(8)
    for k in range(30):
        s.reading((1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-4 * (k % 5), 0.0, 0.0, 9.8))
        assert not s.stuck
    for _ in range(8):
        assert not s.stuck
        s.reading((1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.8))
    assert s.stuck
    s.reading((1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-6, 0.0, 0.0, 9.8))
    assert not s.stuck
    assert not StuckImu(0).stuck


@pytest.mark.parametrize("lie", ["odom_frozen", "imu_stuck", "cmd_future", "cmd_reordered", "cmd_out_of_range"])
def test_supervisor_stops_at_once_on_a_lie_and_latches_it(lie):
    sup = Supervisor(SupervisorParams(required_inputs=("cmd", "odom", "imu")))
    inp = SupervisorInputs(cmd_v_mps=1.0)

    def fresh(t):
        inp.cmd_stamp_s = inp.odom_stamp_s = inp.imu_stamp_s = t

    t = 0.0
    for k in range(60):
        t = 0.05 * k
        fresh(t)
        d = sup.update(t, inp)
    assert d.state == SafetyState.RUN and d.cmd_v_mps > 0.5
    t += 0.05
    fresh(t)
    if lie.startswith("cmd_"):
        inp.cmd_refused = (lie,)
    else:
        setattr(inp, lie, True)
    d = sup.update(t, inp)
    assert d.state == SafetyState.FAULT and lie in d.reasons and d.cmd_v_mps == 0.0
    # the lie ends: the fault stays latched (no motion by itself) until the panel's reset
    inp.cmd_refused, inp.odom_frozen, inp.imu_stuck = (), False, False
    for _ in range(20):
        t += 0.05
        fresh(t)
        d = sup.update(t, inp)
        assert d.state == SafetyState.FAULT and d.cmd_v_mps == 0.0
    assert sup.counters[lie] == 1
    ok, msg = sup.reset()
    assert ok and lie in msg
    t += 0.05
    fresh(t)
    assert sup.update(t, inp).state == SafetyState.RUN


def test_a_delayed_command_is_no_command_refused_while_it_comes_late():
    sup = Supervisor(SupervisorParams(required_inputs=("cmd",)))
    inp = SupervisorInputs(cmd_v_mps=1.0)
    t = 0.0
    for k in range(40):
        t = 0.05 * k
        inp.cmd_stamp_s = t
        d = sup.update(t, inp)
    assert d.state == SafetyState.RUN
    t += 0.05
    inp.cmd_stamp_s = t
    inp.cmd_refused = ("cmd_delayed",)
    d = sup.update(t, inp)
    assert d.state == SafetyState.FAULT and "cmd_delayed" in d.reasons and d.cmd_v_mps == 0.0
    assert not d.fault_latched      # like stale:cmd: an idle or late command source is no hazard by itself


def test_time_going_back_latches_no_drive_off_on_the_old_plan():
    sup = Supervisor(SupervisorParams(required_inputs=("cmd",)))
    inp = SupervisorInputs(cmd_v_mps=1.0)
    t = 0.0
    for k in range(40):
        t = 10.0 + 0.05 * k
        inp.cmd_stamp_s = t
        sup.update(t, inp)
    t = 0.05   # the clock went back
    d = sup.update(t, inp)
    assert d.state == SafetyState.FAULT and "clock_jump" in d.reasons
    for k in range(1, 40):   # fresh inputs on the new time base: still stopped
        t = 0.05 + 0.05 * k
        inp.cmd_stamp_s = t
        d = sup.update(t, inp)
        assert d.state == SafetyState.FAULT and d.cmd_v_mps == 0.0 and "clock_jump" in d.reasons
    assert sup.reset()[0]
    t += 0.05
    inp.cmd_stamp_s = t
    assert sup.update(t, inp).state == SafetyState.RUN
