"""Closed-loop path tracking with the kinematic models (pure pursuit and Stanley, diff and Ackermann)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.control.kinematics import Ackermann, AckermannParams, DiffDrive, integrate_twist
from agricare.core.control.path_tracking import TrackerParams, TrackPath
from agricare.core.control.pure_pursuit import RegulatedPurePursuit
from agricare.core.control.stanley import Stanley
from agricare.core.control.tracking_scenarios import build_path, run_closed_loop, scenario_paths

DIFF_PARAMS = TrackerParams(wheelbase_m=0.5)
ACK_PARAMS = TrackerParams(wheelbase_m=2.5, max_steering_angle_rad=0.6, desired_speed_mps=2.0,
                           regulated_min_radius_m=4.0, min_lookahead_m=2.0, max_lookahead_m=5.0)
ACK_VEHICLE = Ackermann(AckermannParams(wheelbase_m=2.5, max_steering_angle_rad=0.6))

# (cross-track RMS limit, max limit) per scenario; straight starts 0.5 m off the line.
LIMITS = {
    "diff": {"straight": (0.2, 0.55), "circle": (0.05, 0.1), "s_curve": (0.08, 0.2),
             "dubins_turn": (0.06, 0.15), "reversing_cusp": (0.06, 0.12)},
    "ackermann": {"straight": (0.25, 0.55), "circle": (0.05, 0.15), "s_curve": (0.2, 0.5),
                  "dubins_turn": (0.15, 0.35), "reversing_cusp": (0.2, 0.3)},
}
SCENARIOS = {"diff": scenario_paths(3.0), "ackermann": scenario_paths(6.0)}


@pytest.mark.parametrize("algorithm", [RegulatedPurePursuit, Stanley])
@pytest.mark.parametrize("vehicle_name", ["diff", "ackermann"])
@pytest.mark.parametrize("scenario", ["straight", "circle", "s_curve", "dubins_turn", "reversing_cusp"])
def test_closed_loop_tracking(algorithm, vehicle_name, scenario):
    if vehicle_name == "diff":
        vehicle, params = DiffDrive(), DIFF_PARAMS
    else:
        vehicle, params = ACK_VEHICLE, ACK_PARAMS
    poses, dirs, start = SCENARIOS[vehicle_name][scenario]
    res = run_closed_loop(algorithm(params, vehicle), vehicle, poses, dirs, start, max_time_s=90.0)
    rms_limit, max_limit = LIMITS[vehicle_name][scenario]
    assert res.done, f"not done after {res.time_s:.1f} s, states {res.states}"
    assert res.goal_error_m <= params.goal_xy_tolerance_m + 0.01
    assert res.cross_track_rms_m <= rms_limit
    assert res.cross_track_max_m <= max_limit
    if scenario == "reversing_cusp":
        assert "cusp_stop" in res.states
    if vehicle_name == "diff":
        assert res.goal_yaw_error_rad <= params.goal_yaw_tolerance_rad + 0.01


def _drive(tracker, vehicle, pose, n, dt=0.05, speed=0.0):
    outs = []
    for k in range(n):
        out = tracker.compute(pose, speed, k * dt)
        outs.append(out)
        if out.done:
            break
        v, w = vehicle.limit(out.v_mps, out.w_radps)
        pose = integrate_twist(pose, v, w, dt)
        speed = v
    return outs, pose


def test_cusp_stops_before_reversing():
    poses, dirs = build_path([(4.0, 0.0, 1), (3.0, 0.0, -1)])
    tracker = RegulatedPurePursuit(DIFF_PARAMS, DiffDrive())
    tracker.set_plan(poses, dirs)
    outs, pose = _drive(tracker, DiffDrive(), np.zeros(3), 1500)
    assert outs[-1].done
    v = np.array([o.v_mps for o in outs])
    assert v.max() > 0.5 and v.min() < -0.3
    # Every sign change of the command passes through an exact zero (stop at the cusp).
    nz = np.flatnonzero(v != 0.0)
    for a, b in zip(nz[:-1], nz[1:]):
        if np.sign(v[a]) != np.sign(v[b]):
            assert b - a >= 2
    assert abs(pose[0] - 1.0) <= DIFF_PARAMS.goal_xy_tolerance_m + 0.01


def test_cusp_waits_for_measured_stop():
    poses, dirs = build_path([(2.0, 0.0, 1), (2.0, 0.0, -1)])
    tracker = RegulatedPurePursuit(DIFF_PARAMS, DiffDrive())
    tracker.set_plan(poses, dirs)
    at_cusp = np.array([2.0, 0.0, 0.0])
    out = tracker.compute(at_cusp, 0.5, 0.0)  # still rolling
    assert out.state == "cusp_stop" and out.v_mps == 0.0
    out = tracker.compute(at_cusp, 0.5, 0.05)
    assert out.state == "cusp_stop"
    out = tracker.compute(at_cusp, 0.0, 0.1)  # stopped -> switches section, the next cycle reverses
    out = tracker.compute(at_cusp, 0.0, 0.15)
    assert out.section_index == 1 and out.v_mps < 0.0


def test_speed_regulated_by_obstacle_distance():
    p = TrackerParams(obstacle_slowdown_distance_m=2.0, obstacle_stop_distance_m=0.5, min_regulated_speed_mps=0.1)
    poses, dirs = build_path([(20.0, 0.0, 1)])
    speeds = []
    for d in (math.inf, 1.8, 1.0, 0.6, 0.4):
        tracker = RegulatedPurePursuit(p, DiffDrive())
        tracker.set_plan(poses, dirs)
        out = tracker.compute(np.array([2.0, 0.0, 0.0]), 1.0, 0.0, obstacle_distance_m=d)
        speeds.append(out.v_mps)
    assert speeds[0] == pytest.approx(p.desired_speed_mps)
    assert speeds[0] > speeds[1] > speeds[2] > speeds[3] >= p.min_regulated_speed_mps
    assert speeds[1] == pytest.approx(p.desired_speed_mps * (1.8 - 0.5) / 1.5)
    assert speeds[4] == 0.0


def test_obstacle_stop_state():
    poses, dirs = build_path([(20.0, 0.0, 1)])
    tracker = Stanley(DIFF_PARAMS, DiffDrive())
    tracker.set_plan(poses, dirs)
    out = tracker.compute(np.array([2.0, 0.0, 0.0]), 1.0, 0.0, obstacle_distance_m=0.1)
    assert out.state == "obstacle_stop" and out.v_mps == 0.0 and out.w_radps == 0.0


def test_speed_regulated_by_curvature():
    p = TrackerParams(regulated_min_radius_m=3.0, min_regulated_speed_mps=0.1)
    straight, d1 = build_path([(20.0, 0.0, 1)])
    tight, d2 = build_path([(20.0, 1.0 / 1.5, 1)])
    v = []
    for poses, dirs in ((straight, d1), (tight, d2)):
        tracker = RegulatedPurePursuit(p, DiffDrive())
        tracker.set_plan(poses, dirs)
        v.append(tracker.compute(poses[0], 0.0, 0.0).v_mps)
    assert v[0] == pytest.approx(p.desired_speed_mps)
    assert v[1] == pytest.approx(p.desired_speed_mps * 1.5 / 3.0, rel=0.1)


def test_lookahead_scales_with_speed():
    p = TrackerParams(lookahead_time_s=1.5, min_lookahead_m=0.5, max_lookahead_m=3.0)
    tracker = RegulatedPurePursuit(p, DiffDrive())
    assert tracker.lookahead_m(0.0) == 0.5
    assert tracker.lookahead_m(1.0) == pytest.approx(1.5)
    assert tracker.lookahead_m(-1.0) == pytest.approx(1.5)
    assert tracker.lookahead_m(10.0) == 3.0


def test_approach_slows_down_near_goal():
    poses, dirs = build_path([(10.0, 0.0, 1)])
    tracker = RegulatedPurePursuit(DIFF_PARAMS, DiffDrive())
    tracker.set_plan(poses, dirs)
    far = tracker.compute(np.array([5.0, 0.0, 0.0]), 1.0, 0.0).v_mps
    near = tracker.compute(np.array([9.6, 0.0, 0.0]), 1.0, 0.1).v_mps
    assert far == pytest.approx(DIFF_PARAMS.desired_speed_mps)
    assert DIFF_PARAMS.min_approach_speed_mps <= near < 0.5 * far


@pytest.mark.parametrize("algorithm", [RegulatedPurePursuit, Stanley])
def test_rotate_to_heading_diff_only(algorithm):
    poses, dirs = build_path([(10.0, 0.0, 1)])
    backwards = np.array([0.0, 0.0, math.pi])
    diff = algorithm(DIFF_PARAMS, DiffDrive())
    diff.set_plan(poses, dirs)
    out = diff.compute(backwards, 0.0, 0.0)
    assert out.state == "rotating" and out.v_mps == 0.0 and abs(out.w_radps) > 0.0
    outs, _ = _drive(diff, DiffDrive(), backwards, 800)
    assert outs[-1].done
    ack = algorithm(ACK_PARAMS, ACK_VEHICLE)
    ack.set_plan(poses, dirs)
    assert ack.compute(backwards, 0.0, 0.0).state != "rotating"


def test_final_rotation_to_goal_yaw():
    poses, dirs = build_path([(5.0, 0.0, 1)])
    poses[-1, 2] = 1.2  # arrive heading 0, goal yaw 1.2 rad
    tracker = RegulatedPurePursuit(DIFF_PARAMS, DiffDrive())
    tracker.set_plan(poses, dirs)
    outs, pose = _drive(tracker, DiffDrive(), np.zeros(3), 800)
    states = [o.state for o in outs]
    assert "final_rotate" in states and outs[-1].done
    assert abs(math.remainder(pose[2] - 1.2, 2 * math.pi)) <= DIFF_PARAMS.goal_yaw_tolerance_rad + 1e-6


def test_bad_input_gives_zero_and_done_is_sticky():
    poses, dirs = build_path([(5.0, 0.0, 1)])
    tracker = RegulatedPurePursuit(DIFF_PARAMS, DiffDrive())
    assert tracker.compute(np.zeros(3), 0.0, 0.0).state == "idle"
    tracker.set_plan(poses, dirs)
    out = tracker.compute(np.array([np.nan, 0.0, 0.0]), 0.0, 0.0)
    assert out.state == "error" and (out.v_mps, out.w_radps) == (0.0, 0.0)
    out = tracker.compute(poses[-1], 0.0, 0.1)
    assert out.done and out.state == "goal_reached"
    out = tracker.compute(poses[-1] + np.array([0.05, 0.0, 0.0]), 0.0, 0.2)
    assert out.done and out.v_mps == 0.0
    tracker.set_plan(poses, dirs)  # a new plan replaces the old one
    assert not tracker.compute(poses[0], 0.0, 0.3).done


def test_window_search_does_not_jump_to_neighbouring_pass():
    # Out along y=0, U-turn, back along y=1: a robot near the first pass must stay on it.
    poses, dirs = build_path([(10.0, 0.0, 1), (math.pi * 0.5, 2.0, 1), (10.0, 0.0, 1)])
    path = TrackPath(poses, dirs)
    first, last = path.sections[0]
    robot = np.array([5.0, 0.6])
    i_win, _, cte_win = path.nearest(robot, first, last, hint=0, window_m=8.0)
    i_all, _, _ = path.nearest_naive(robot, first, last)
    assert path.xy[i_win, 1] == pytest.approx(0.0, abs=1e-9)
    assert cte_win == pytest.approx(0.6)
    assert path.xy[i_all, 1] == pytest.approx(1.0, abs=1e-6)


def test_window_search_matches_naive_on_simple_path():
    poses, dirs = build_path([(10.0, 0.2, 1)])
    path = TrackPath(poses, dirs)
    rng = np.random.default_rng(3)
    hint = 0
    for s in np.linspace(0.0, 9.5, 40):
        p, _ = path.point_at(s, 0, len(path) - 1)
        q = p + rng.normal(0.0, 0.05, 2)
        i_w, t_w, e_w = path.nearest(q, 0, len(path) - 1, hint, 2.0)
        i_n, t_n, e_n = path.nearest_naive(q, 0, len(path) - 1)
        hint = i_w
        assert path.s[i_w] + t_w * path.seg_len[i_w] == pytest.approx(path.s[i_n] + t_n * path.seg_len[i_n])
        assert e_w == pytest.approx(e_n)


def test_track_path_sections_and_validation():
    poses, dirs = build_path([(2.0, 0.0, 1), (2.0, 0.5, -1), (2.0, 0.0, 1)])
    path = TrackPath(poses, dirs)
    assert len(path.sections) == 3
    assert [path.section_direction(k) for k in range(3)] == [1, -1, 1]
    assert path.sections[0][1] == path.sections[1][0]
    with pytest.raises(ValueError):
        TrackPath(np.zeros((3, 2)))
    with pytest.raises(ValueError):
        TrackPath(poses, np.zeros(len(poses)))
    with pytest.raises(ValueError):
        TrackPath(np.full((2, 3), np.nan))


def test_tracker_params_validation_names_field():
    with pytest.raises(ValueError, match="desired_speed_mps"):
        TrackerParams(desired_speed_mps=-1.0)
    with pytest.raises(ValueError, match="max_lookahead_m"):
        TrackerParams(min_lookahead_m=2.0, max_lookahead_m=1.0)
    with pytest.raises(ValueError, match="obstacle_stop_distance_m"):
        TrackerParams(obstacle_stop_distance_m=-0.1)
