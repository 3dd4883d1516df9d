"""Unit tests of the safety supervisor core (no rclpy)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from agricare.core.safety.fields import (
    FieldGeometry,
    points_in_field,
    scan_to_points_in_base,
    stopping_distance_m,
    validate_polygon,
)
from agricare.core.safety.geofence import KEEP_IN, KEEP_OUT, Geofence, split_flat_polygons
from agricare.core.safety.supervisor import (
    STOP_STATES,
    SafetyState,
    Supervisor,
    SupervisorInputs,
    SupervisorParams,
)

DT = 0.05


def fresh(t, **kw) -> SupervisorInputs:
    """All default-required inputs fresh at ``t`` with an empty scan."""
    base = dict(cmd_stamp_s=t, odom_stamp_s=t, scan_stamp_s=t, imu_stamp_s=t,
                scan_points_in_base=np.zeros((0, 2)))
    base.update(kw)
    return SupervisorInputs(**base)


def run(sup, t0, n, **kw):
    d = None
    for k in range(n):
        t = t0 + k * DT
        d = sup.update(t, fresh(t, **kw))
    return d, t0 + n * DT


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("field,value", [
    ("stop_margin_m", -0.1), ("lateral_margin_m", -1.0), ("scan_timeout_s", 0.0), ("resume_hold_s", -1.0),
    ("max_speed_mps", math.nan), ("braking_decel_mps2", 0.0), ("geofence_margin_m", -0.5),
    ("person_stop_margin_m", 0.1), ("battery_critical_fraction", 0.5), ("max_roll_rad", 2.0),
])
def test_params_reject_bad_value_and_name_it(field, value):
    with pytest.raises(ValueError, match=field):
        SupervisorParams(**{field: value})


@pytest.mark.parametrize("field,value,match", [
    ("footprint_xy", (), "footprint_xy: empty polygon"),
    ("footprint_xy", (0.0, 0.0, 1.0, 0.0, 1.0), "footprint_xy: odd"),
    ("footprint_xy", (0.0, 0.0, 1.0, 0.0, 2.0, 0.0), "footprint_xy: polygon"),
    ("footprint_xy", (0.0, 0.0, 1e-4, 0.0, 1e-4, 1e-4, 0.0, 1e-4), "footprint_xy: polygon has"),
    ("footprint_xy", (0, 0, 1, 1, 1, 0, 0, 1), "footprint_xy: polygon is not simple"),
    ("keep_in_xy", (0.0, 0.0, 1.0, 1.0), "keep_in_xy: polygon needs at least 3"),
    ("required_inputs", ("scan", "gnss"), "required_inputs: unknown"),
])
def test_params_reject_bad_polygon_and_inputs(field, value, match):
    with pytest.raises(ValueError, match=match):
        SupervisorParams(**{field: value})


def test_keep_out_counts_must_match():
    with pytest.raises(ValueError, match="keep_out_xy"):
        SupervisorParams(keep_out_xy=(0, 0, 1, 0, 1, 1, 0, 1), keep_out_vertex_counts=(3,))
    with pytest.raises(ValueError, match=r"keep_out_xy\[1\]"):
        split_flat_polygons("keep_out_xy", [0, 0, 1, 0, 1, 1, 5, 5, 6, 6, 7, 7], [3, 3])
    ok = SupervisorParams(keep_out_xy=(0, 0, 1, 0, 1, 1, 0, 1), keep_out_vertex_counts=(4,))
    assert ok.keep_out_vertex_counts == (4,)


def test_defaults_are_valid_and_passenger_limits_are_conservative():
    p = SupervisorParams()
    assert p.max_speed_mps <= 20.0 / 3.6 / 2  # well under ISO 13482's 20 km/h
    assert p.max_accel_mps2 == 1.5 and p.max_lateral_accel_mps2 == 1.5 and p.max_jerk_mps3 == 3.0


# ---------------------------------------------------------------- fields and geofence helpers
def test_stopping_distance_formula():
    assert stopping_distance_m(2.0, 0.25, 2.0) == pytest.approx(2.0 * 0.25 + 4.0 / 4.0)
    assert stopping_distance_m(-2.0, 0.25, 2.0) == stopping_distance_m(2.0, 0.25, 2.0)


def test_field_grows_with_speed_and_points_backwards_when_reversing():
    fg = FieldGeometry([0.6, 0.4, -0.6, 0.4, -0.6, -0.4, 0.6, -0.4], margin_m=0.2)
    fronts = [fg.field(v, 0.0, 0.25, 2.0, 3.0, 0.3)[:, 0].max() for v in (0.2, 1.0, 2.0)]
    assert fronts[0] < fronts[1] < fronts[2]
    assert fronts[2] == pytest.approx(0.8 + stopping_distance_m(2.0, 0.25, 2.0) + 0.3, abs=1e-6)
    rev = fg.field(-1.0, 0.0, 0.25, 2.0, 3.0, 0.3)
    assert rev[:, 0].min() == pytest.approx(-0.8 - stopping_distance_m(1.0, 0.25, 2.0) - 0.3, abs=1e-6)
    assert rev[:, 0].max() == pytest.approx(0.8, abs=1e-6)
    left = fg.field(1.0, 1.0, 0.25, 2.0, 3.0, 0.3)  # turning left sweeps to +y
    assert left[:, 1].max() > 0.6 + 0.2 and left[:, 1].max() > -left[:, 1].min()
    right = fg.field(1.0, -1.0, 0.25, 2.0, 3.0, 0.3)
    assert right[:, 1].min() == pytest.approx(-left[:, 1].max())


def test_points_in_field_matches_plain_test():
    rng = np.random.default_rng(3)
    poly = np.array([[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3]], dtype=float)
    pts = rng.uniform(-1, 4, size=(500, 2))
    from agricare.core.geometry import points_in_polygon
    assert np.array_equal(points_in_field(pts, poly), points_in_polygon(pts, poly))


def test_scan_conversion_drops_no_return_and_flags_corrupt_metadata():
    ranges = np.array([1.0, np.inf, np.nan, 0.01, 50.0, 2.0])
    pts = scan_to_points_in_base(ranges, 0.0, math.pi / 2, 0.1, 30.0, (0.5, 0.0, 0.0))
    assert pts.shape == (2, 2)
    np.testing.assert_allclose(pts[0], [1.5, 0.0], atol=1e-12)  # 1 m ahead of a scanner 0.5 m forward
    np.testing.assert_allclose(pts[1], [0.5 + 2.0 * math.cos(5 * math.pi / 2), 2.0 * math.sin(5 * math.pi / 2)],
                               atol=1e-9)
    assert scan_to_points_in_base(ranges, math.nan, 0.01, 0.1, 30.0) is None


def test_geofence_keep_in_and_keep_out():
    fence = Geofence([[0, 0], [20, 0], [20, 10], [0, 10]], [[[8, 4], [10, 4], [10, 6], [8, 6]]])
    box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    assert fence.check_field([5, 5, 0], box) is None
    assert fence.check_field([19.5, 5, 0], box) == KEEP_IN
    assert fence.check_field([7.5, 5, 0], box) == KEEP_OUT
    fence.set_dynamic_keep_out([[[3, 3], [4, 3], [4, 4]]])
    assert fence.check_field([4.5, 4.5, 0], box) == KEEP_OUT
    fence.set_dynamic_keep_out([])
    assert fence.check_field([4.5, 4.5, 0], box) is None
    with pytest.raises(ValueError, match="dynamic_keep_out"):
        fence.set_dynamic_keep_out([[[0, 0], [1, 1]]])
    with pytest.raises(ValueError, match="keep_in: empty"):
        validate_polygon("keep_in", [])


# ---------------------------------------------------------------- state machine
def test_startup_waits_for_inputs_without_latching():
    sup = Supervisor()
    d = sup.update(0.0, SupervisorInputs(cmd_v_mps=1.0, cmd_stamp_s=0.0))
    assert d.state == SafetyState.FAULT and d.cmd_v_mps == 0.0
    assert {"no_data:odom", "no_data:scan", "no_data:imu"} <= set(d.reasons)
    assert not d.fault_latched
    d, _ = run(sup, DT, 3, cmd_v_mps=1.0)
    assert d.state == SafetyState.RUN and d.cmd_v_mps > 0.0


def test_estop_latches_same_cycle_and_needs_cleared_source_for_reset():
    sup = Supervisor()
    d, t = run(sup, 0.0, 40, cmd_v_mps=1.0)
    assert d.state == SafetyState.RUN and d.cmd_v_mps > 0.5
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, estop=True, estop_stamp_s=t))
    assert d.state == SafetyState.EMERGENCY_STOP and d.cmd_v_mps == 0.0 and d.estop_latched
    assert sup.reset() == (False, "e-stop input still active")
    d, t = run(sup, t + DT, 100, cmd_v_mps=1.0, estop=False, estop_stamp_s=None)
    assert d.state == SafetyState.EMERGENCY_STOP and d.cmd_v_mps == 0.0  # never clears on its own
    ok, msg = sup.reset()
    assert ok and "estop" in msg
    d, t = run(sup, t, 1, cmd_v_mps=1.0)
    assert d.state == SafetyState.RUN
    assert sup.counters["estop"] == 1 and sup.counters["reset"] == 1


def test_reset_refused_while_fault_active():
    sup = Supervisor()
    _, t = run(sup, 0.0, 5)
    sup.update(t, fresh(t, estop=True, estop_stamp_s=t))
    d = sup.update(t + DT, fresh(t + DT, scan_stamp_s=t + DT - 1.0))  # scan stale now
    assert d.state == SafetyState.EMERGENCY_STOP and "stale:scan" in d.reasons
    ok, msg = sup.reset()
    assert not ok and "stale:scan" in msg


def test_stale_sensor_faults_same_cycle_and_latches_until_reset():
    sup = Supervisor()
    _, t = run(sup, 0.0, 30, cmd_v_mps=1.0)
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, odom_stamp_s=t - 0.6))
    assert d.state == SafetyState.FAULT and d.cmd_v_mps == 0.0 and "stale:odom" in d.reasons
    d, t = run(sup, t + DT, 10, cmd_v_mps=1.0)
    assert d.state == SafetyState.FAULT and d.fault_latched and d.cmd_v_mps == 0.0
    assert sup.reset()[0]
    d, t = run(sup, t, 2, cmd_v_mps=1.0)
    assert d.state == SafetyState.RUN


def test_stale_command_is_fault_but_clears_when_commands_return():
    sup = Supervisor()
    _, t = run(sup, 0.0, 30, cmd_v_mps=1.0)
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, cmd_stamp_s=t - 0.6))
    assert d.state == SafetyState.FAULT and d.cmd_v_mps == 0.0 and not d.fault_latched
    d, _ = run(sup, t + DT, 2, cmd_v_mps=1.0)
    assert d.state == SafetyState.RUN and 0.0 < d.cmd_v_mps < 0.2  # ramps up again from zero


def test_unlatched_faults_clear_without_reset():
    sup = Supervisor(SupervisorParams(latch_faults=False))
    _, t = run(sup, 0.0, 5, cmd_v_mps=1.0)
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, scan_points_in_base=np.array([[np.nan, 1.0]])))
    assert d.state == SafetyState.FAULT and "nonfinite:scan" in d.reasons
    d, _ = run(sup, t + DT, 1, cmd_v_mps=1.0)
    assert d.state == SafetyState.RUN


@pytest.mark.parametrize("kw,reason", [
    (dict(cmd_v_mps=math.nan), "nonfinite:cmd"),
    (dict(odom_w_radps=math.inf), "nonfinite:odom"),
    (dict(pitch_rad=math.nan), "nonfinite:imu"),
    (dict(scan_points_in_base=np.array([[1.0, -np.inf]])), "nonfinite:scan"),
    (dict(battery_fraction=math.inf, battery_stamp_s=0.0), "nonfinite:battery"),
    (dict(objects_in_base=np.array([[1.0, 1.0, 0.0, np.nan, 0.3, 1.0]]), objects_stamp_s=0.0),
     "nonfinite:objects"),
])
def test_nonfinite_input_faults(kw, reason):
    sup = Supervisor()
    _, t = run(sup, 0.0, 5, cmd_v_mps=0.5)
    kw = {k: (t if k.endswith("stamp_s") else v) for k, v in kw.items()}
    d = sup.update(t, fresh(t, **{"cmd_v_mps": 0.5, **kw}))
    assert d.state == SafetyState.FAULT and reason in d.reasons and d.cmd_v_mps == 0.0


def test_loop_overrun_and_clock_jump_fault():
    sup = Supervisor()
    _, t = run(sup, 0.0, 5)
    d = sup.update(t + 1.0, fresh(t + 1.0))
    assert d.state == SafetyState.FAULT and "loop_overrun" in d.reasons
    sup = Supervisor()
    _, t = run(sup, 0.0, 5)
    d = sup.update(t - 1.0, fresh(t - 1.0))
    assert d.state == SafetyState.FAULT and "clock_jump" in d.reasons


def test_required_inputs_parameter_allows_missing_sensor():
    sup = Supervisor(SupervisorParams(required_inputs=("cmd", "scan")))
    d = sup.update(0.0, SupervisorInputs(cmd_v_mps=0.3, cmd_stamp_s=0.0, scan_stamp_s=0.0,
                                         scan_points_in_base=np.zeros((0, 2))))
    assert d.state == SafetyState.RUN


def test_obstacle_stop_and_resume_only_after_hold_time():
    p = SupervisorParams(resume_hold_s=1.0)
    sup = Supervisor(p)
    _, t = run(sup, 0.0, 40, cmd_v_mps=1.0)
    blocked = np.array([[1.0, 0.0]])
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, scan_points_in_base=blocked))
    assert d.state == SafetyState.PROTECTIVE_STOP and d.cmd_v_mps == 0.0 and "obstacle" in d.reasons
    t_clear = t + DT
    states = []
    for k in range(40):
        tk = t_clear + k * DT
        states.append((tk, sup.update(tk, fresh(tk, cmd_v_mps=1.0)).state))
    first_run = next(tk for tk, s in states if s not in STOP_STATES)
    assert first_run - t == pytest.approx(p.resume_hold_s, abs=DT + 1e-9)
    assert all(s == SafetyState.PROTECTIVE_STOP for tk, s in states if tk < t + p.resume_hold_s - 1e-9)


def test_obstacle_behind_does_not_stop_forward_motion_but_stops_reversing():
    sup = Supervisor()
    _, t = run(sup, 0.0, 20, cmd_v_mps=0.5)
    behind = np.array([[-1.2, 0.0]])
    d = sup.update(t, fresh(t, cmd_v_mps=0.5, odom_v_mps=0.5, scan_points_in_base=behind))
    assert d.state == SafetyState.RUN
    sup = Supervisor()
    _, t = run(sup, 0.0, 20, cmd_v_mps=-0.4)
    d = sup.update(t, fresh(t, cmd_v_mps=-0.4, odom_v_mps=-0.4, scan_points_in_base=behind))
    assert d.state == SafetyState.PROTECTIVE_STOP


def test_odometry_noise_at_standstill_does_not_swing_the_field_sideways():
    """Standing beside a wall, a noisy odometry twist (-0.01 m/s, 0.005 rad/s) has an arbitrary curvature;
    it must not sweep the field sideways into the wall (found in the simulator: a tractor stopped beside a
    parked trailer never resumed). A real reversing motion is still protected."""
    p = SupervisorParams(footprint_xy=(3.3, 1.1, -0.9, 1.1, -0.9, -1.1, 3.3, -1.1), lateral_margin_m=0.4,
                         stop_margin_m=0.5, slow_speed_mps=0.8, max_speed_mps=3.0, person_stop_margin_m=1.5,
                         person_slow_margin_m=4.0, resume_hold_s=0.5)
    wall = np.column_stack((np.linspace(-0.5, 3.0, 30), np.full(30, -1.8)))  # 0.3 m outside the fields
    for noise_v, noise_w in ((-0.01, 0.005), (-0.02, -0.008), (0.01, 0.005)):
        sup = Supervisor(p)
        d, t = run(sup, 0.0, 30, cmd_v_mps=0.0, odom_v_mps=noise_v, odom_w_radps=noise_w,
                   scan_points_in_base=wall)
        assert d.state == SafetyState.RUN, (noise_v, noise_w, d.reasons)
    sup = Supervisor(p)
    d, _ = run(sup, 0.0, 30, cmd_v_mps=0.0, odom_v_mps=-0.5, odom_w_radps=0.4, scan_points_in_base=wall)
    assert d.state == SafetyState.PROTECTIVE_STOP  # really turning backwards into the wall: protected


def test_slow_field_limits_speed():
    sup = Supervisor()
    _, t = run(sup, 0.0, 60, cmd_v_mps=2.0)
    p = sup.params
    d_slow = 0.8 + stopping_distance_m(2.0, p.reaction_time_s, p.braking_decel_mps2) + 0.3 + 1.0
    d = sup.update(t, fresh(t, cmd_v_mps=2.0, odom_v_mps=2.0, scan_points_in_base=np.array([[d_slow, 0.0]])))
    assert d.state == SafetyState.SLOW and "obstacle_near" in d.reasons
    assert d.limit_mps == p.slow_speed_mps and abs(d.cmd_v_mps) <= p.slow_speed_mps


def test_person_gets_larger_distance_than_obstacle():
    sup_o, sup_p = Supervisor(), Supervisor()
    p = sup_o.params
    _, t = run(sup_o, 0.0, 30, cmd_v_mps=1.0)
    run(sup_p, 0.0, 30, cmd_v_mps=1.0)
    # a static object just beyond the obstacle stop field: obstacle -> not a stop, person -> stop
    x = 0.8 + stopping_distance_m(1.0, p.reaction_time_s, p.braking_decel_mps2) + p.stop_margin_m + 0.1
    obj = np.array([[x + 0.2, 0.0, 0.0, 0.0, 0.2, 0.0]])
    per = obj.copy()
    per[0, 5] = 1.0
    kw = dict(cmd_v_mps=1.0, odom_v_mps=1.0, objects_stamp_s=t)
    assert sup_o.update(t, fresh(t, objects_in_base=obj, **kw)).state == SafetyState.SLOW
    d = sup_p.update(t, fresh(t, objects_in_base=per, **kw))
    assert d.state == SafetyState.PROTECTIVE_STOP and "person" in d.reasons


def test_person_walking_towards_path_is_predicted():
    sup = Supervisor()
    _, t = run(sup, 0.0, 30, cmd_v_mps=1.0)
    kw = dict(cmd_v_mps=1.0, odom_v_mps=1.0, objects_stamp_s=t)
    standing = np.array([[1.5, 3.0, 0.0, 0.0, 0.3, 1.0]])
    walking = np.array([[1.5, 3.0, 0.0, -2.0, 0.3, 1.0]])
    assert sup.update(t, fresh(t, objects_in_base=standing, **kw)).state == SafetyState.SLOW
    assert sup.update(t + DT, fresh(t + DT, objects_in_base=walking, **kw)).state == SafetyState.PROTECTIVE_STOP


def test_tilt_stop_and_slope_limit():
    p = SupervisorParams()
    sup = Supervisor(p)
    _, t = run(sup, 0.0, 10, cmd_v_mps=2.0)
    pitch = p.max_pitch_rad * 0.75  # halfway between slow start (0.5) and limit
    d, t = run(sup, t, 40, cmd_v_mps=2.0, pitch_rad=pitch)
    expected = p.max_speed_mps - 0.5 * (p.max_speed_mps - p.slope_min_speed_mps)
    assert d.state == SafetyState.SLOW and d.reasons == ("slope",)
    assert d.limit_mps == pytest.approx(expected) and d.cmd_v_mps <= expected + 1e-12
    d = sup.update(t, fresh(t, cmd_v_mps=2.0, roll_rad=-p.max_roll_rad - 0.01))
    assert d.state == SafetyState.PROTECTIVE_STOP and "tilt_roll" in d.reasons and d.cmd_v_mps == 0.0


def test_battery_low_reported_critical_stops():
    sup = Supervisor()
    _, t = run(sup, 0.0, 10, cmd_v_mps=1.0)
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, battery_fraction=0.2, battery_stamp_s=t))
    assert d.state == SafetyState.RUN and d.warnings == ("battery_low",)
    d = sup.update(t + DT, fresh(t + DT, cmd_v_mps=1.0, battery_fraction=0.05, battery_stamp_s=t))
    assert d.state == SafetyState.PROTECTIVE_STOP and "battery_critical" in d.reasons and d.cmd_v_mps == 0.0
    d = sup.update(t + 2 * DT, fresh(t + 2 * DT, cmd_v_mps=1.0, battery_fraction=math.nan, battery_stamp_s=t))
    assert "battery_unknown" in d.warnings and "nonfinite:battery" not in d.reasons


def test_passenger_accel_jerk_and_lateral_limits():
    p = SupervisorParams()
    sup = Supervisor(p)
    vs, ws = [], []
    for k in range(200):
        t = k * DT
        w = 1.0 if k > 100 else 0.0  # then a tight turn request: curvature 0.5 1/m
        d = sup.update(t, fresh(t, cmd_v_mps=2.0, cmd_w_radps=w))
        vs.append(d.cmd_v_mps)
        ws.append(d.cmd_w_radps)
    v = np.array(vs)
    w = np.array(ws)
    a = np.diff(v) / DT
    j = np.diff(a) / DT
    assert np.max(np.abs(a)) <= p.max_accel_mps2 + 1e-9
    assert np.max(np.abs(j)) <= p.max_jerk_mps3 + 1e-6
    assert np.max(np.abs(v * w)) <= p.max_lateral_accel_mps2 + 1e-9
    assert v[100] == pytest.approx(2.0)  # reached the requested speed
    assert v[-1] == pytest.approx(math.sqrt(p.max_lateral_accel_mps2 / 0.5), rel=1e-6)
    assert w[-1] == pytest.approx(0.5 * v[-1])  # requested path curvature is kept


def test_geofence_requires_pose_and_stops_near_line():
    p = SupervisorParams(keep_in_xy=(0, -10, 10, -10, 10, 10, 0, 10))
    sup = Supervisor(p)
    assert "pose" in sup.required_inputs()
    d = sup.update(0.0, fresh(0.0, cmd_v_mps=1.0))
    assert "no_data:pose" in d.reasons
    sup = Supervisor(p)
    pose = np.array([8.8, 0.0, 0.0])  # front + margin at 9.6 m: even at slow speed the field crosses 10 m
    _, t = run(sup, 0.0, 5, cmd_v_mps=1.0, pose_in_map=pose, pose_stamp_s=0.0)
    d = sup.update(t, fresh(t, cmd_v_mps=1.0, pose_in_map=pose, pose_stamp_s=t))
    assert d.state == SafetyState.PROTECTIVE_STOP and "geofence_keep_in" in d.reasons
    d = sup.update(t + DT, fresh(t + DT, cmd_v_mps=1.0, pose_in_map=np.array([8.8, 0.0, math.pi]),
                                 pose_stamp_s=t + DT))
    assert "geofence_keep_in" not in d.reasons  # facing away from the line is fine


def test_counters_count_rising_edges():
    sup = Supervisor()
    _, t = run(sup, 0.0, 5, cmd_v_mps=0.5)
    for _ in range(3):
        _, t = run(sup, t, 3, cmd_v_mps=0.5, scan_points_in_base=np.array([[0.7, 0.0]]))
        _, t = run(sup, t, 30, cmd_v_mps=0.5)
    assert sup.counters["obstacle"] == 3
    assert sup.counters["enter:PROTECTIVE_STOP"] == 3


def test_params_dataclass_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SupervisorParams().max_speed_mps = 3.0  # type: ignore[misc]


def test_vectorised_segment_distance_matches_shapely():
    import shapely

    from agricare.core.safety.fields import segments_polygon_distance_m

    rng = np.random.default_rng(11)
    poly = np.array([[0, 0], [4, 0], [4, 1], [2, 1], [2, 3], [0, 3]], dtype=float)
    a = rng.uniform(-3, 7, size=(300, 2))
    b = a + rng.normal(0, 2, size=(300, 2))
    b[:20] = a[:20]  # degenerate segments (static objects)
    got = segments_polygon_distance_m(a, b, poly)
    ref = [shapely.Polygon(poly).distance(shapely.LineString([p, q]) if not np.allclose(p, q) else shapely.Point(p))
           for p, q in zip(a, b)]
    np.testing.assert_allclose(got, ref, atol=1e-9)
