"""Curvature steps through the demo's command chain: steering anticipation and the transition speed law.

A steering that turns at most 0.8 rad/s after a 0.15 s lag cannot follow a step of the path's curvature; the
machine's corners (tractor body and the 6 m implement 1.6 m behind base_link) then leave the sweep the planner
checked against the field. These tests drive such steps on the simulator's tractor through the velocity smoother
(``keep_curvature``) at 20 Hz on the pose of the last cycle with soil slip, as bench/farm_missions.py ``--chain``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon
from shapely.ops import unary_union

from agricare.core.control.kinematics import Ackermann, AckermannParams
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit
from agricare.core.control.smoother import SmootherParams, VelocitySmoother
from agricare.core.sim.vehicles import AckermannVehicle, TractorParams
from harness import TRACKER_CURVES, primitive_path  # noqa: E402

CURVES = TRACKER_CURVES   # bench/farm_missions.py's controller with worked corners and the curve law
NEW = dict(steer_anticipation=0.3, transition_ramp_m=0.75)
RECTS = ((-0.9, 3.3, -1.1, 1.1), (-2.0, -1.2, -3.0, 3.0))   # body and implement in base_link (x0, x1, y0, y1)
R = 4.5


_path = primitive_path


def _drive(poses, params):
    tracker = RegulatedPurePursuit(TrackerParams(**params), Ackermann(AckermannParams(
        wheelbase_m=2.6, track_width_m=1.7, wheel_radius_m=0.8, max_steering_angle_rad=0.6, max_linear_speed_mps=3.0)))
    tracker.set_plan(poses)
    veh = AckermannVehicle(TractorParams(), poses[0])
    smoother = VelocitySmoother(SmootherParams(max_linear_speed_mps=3.0, max_linear_accel_mps2=0.8,
                                               max_angular_speed_radps=1.0, keep_curvature=True))
    seen, seen_v, cmd, t, out, driven = np.array(poses[0]), 0.0, (0.0, 0.0), 0.0, None, []
    while t < 200.0:
        out = tracker.compute(seen, seen_v, t)
        if out.done or out.state == "goal_missed":
            break
        seen, seen_v = np.array(veh.pose), veh.v_mps
        veh.step(0.05, *cmd, 0.04, 0.03)
        cmd = smoother.update((out.v_mps, out.w_radps), t)
        t += 0.05
        driven.append(np.array(veh.pose))
    return out.done, np.array(driven), t


def _footprints(poses):
    polys = []
    for x, y, th in poses:
        c, s = math.cos(th), math.sin(th)
        for x0, x1, y0, y1 in RECTS:
            polys.append(Polygon([(x + c * a - s * b, y + s * a + c * b) for a, b in ((x0, y0), (x1, y0), (x1, y1),
                                                                                      (x0, y1))]))
    return polys


def _excursion(plan, driven):
    """Largest distance (m) of a corner of the driven machine outside the union of the machine along the plan
    (resampled every 0.1 m): how far it leaves what a planner checked; the first 15 m (start-up) not counted."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(plan[:, :2], axis=0).T))])
    ss = np.arange(0.0, s[-1], 0.1)
    dense = np.column_stack([np.interp(ss, s, plan[:, 0]), np.interp(ss, s, plan[:, 1]),
                             np.interp(ss, s, np.unwrap(plan[:, 2]))])
    env = unary_union(_footprints(dense))
    q = driven[np.hypot(driven[:, 0] - plan[0, 0], driven[:, 1] - plan[0, 1]) > 15.0]
    corners = np.array([(a, b) for x0, x1, y0, y1 in RECTS for a, b in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))])
    c, s_ = np.cos(q[:, 2])[:, None], np.sin(q[:, 2])[:, None]
    px = (q[:, :1] + c * corners[None, :, 0] - s_ * corners[None, :, 1]).ravel()
    py = (q[:, 1:2] + s_ * corners[None, :, 0] + c * corners[None, :, 1]).ravel()
    return float(np.max(shapely.distance(env, shapely.points(px, py))))


ENTRY = [(20.0, 0.0), (0.5 * math.pi * R, 1 / R), (25.0, 0.0)]          # onto a headland pass
FLIP = [(20.0, 0.0), (6.0, 1 / R), (8.0, -1 / R), (25.0, 0.0)]          # a transit's C C word


@pytest.mark.parametrize("prims,old_min,new_max", [(ENTRY, 0.10, 0.085), (FLIP, 0.40, 0.10)],
                         ids=["ring_entry", "opposite_arcs"])
def test_anticipation_and_transition_law_keep_the_machine_in_the_planned_sweep(prims, old_min, new_max):
    plan = _path(prims)
    done_old, old, _ = _drive(plan, CURVES)
    done_new, new, _ = _drive(plan, {**CURVES, **NEW})
    assert done_old and done_new
    e_old, e_new = _excursion(plan, old), _excursion(plan, new)
    # measured: ring entry 0.116 -> 0.063 m, opposite arcs 0.477 -> 0.078 m
    assert e_old > old_min, e_old
    assert e_new < new_max, (e_old, e_new)


def test_anticipation_is_the_path_curvature_on_a_constant_arc():
    plan = _path([(60.0, 1 / 6.2)])
    tracker = RegulatedPurePursuit(TrackerParams(**{**CURVES, **NEW}), Ackermann(AckermannParams(
        wheelbase_m=2.6, track_width_m=1.7, wheel_radius_m=0.8, max_steering_angle_rad=0.6)))
    tracker.set_plan(plan)
    first, last = tracker.path.sections[0]
    for s in (10.0, 25.0, 40.0):
        assert tracker._anticipated_curvature(s, 2.5, first, last, 1 / 6.2) == pytest.approx(1 / 6.2, rel=1e-3)
    # a straight ahead of an arc: the feedforward starts to turn before the arc (centred ramp), less than the arc
    tracker.set_plan(_path([(20.0, 0.0), (20.0, 1 / R)]))
    first, last = tracker.path.sections[0]
    k = [tracker._anticipated_curvature(s, 1.9, first, last, 0.0 if s < 20.0 else 1 / R)
         for s in (19.0, 19.8, 20.0, 20.2, 21.0)]
    assert k[0] == pytest.approx(0.0, abs=1e-9) and k[-1] == pytest.approx(1 / R, rel=1e-3)
    assert 0.0 < k[1] < k[2] < k[3] < 1 / R, k


def test_transition_speed_caps_only_changes_of_curvature():
    tracker = RegulatedPurePursuit(TrackerParams(**{**CURVES, **NEW}), Ackermann(AckermannParams(
        wheelbase_m=2.6, track_width_m=1.7, wheel_radius_m=0.8, max_steering_angle_rad=0.6)))
    tracker.set_plan(_path([(60.0, 1 / 6.2)]))
    first, last = tracker.path.sections[0]
    assert tracker._transition_speed(20.0, first, last) == math.inf       # a circle: nothing to ramp
    tracker.set_plan(_path(FLIP))
    first, last = tracker.path.sections[0]
    span = 2 * math.atan(2.6 / R)
    at_flip = tracker._transition_speed(26.0, first, last)
    assert at_flip == pytest.approx(0.75 * 0.8 / span, rel=0.02)          # 0.57 m/s where the arcs meet
    # braking distance ahead of it: sqrt(v^2 + 2 a x) from the window's start
    ahead = tracker._transition_speed(15.0, first, last)
    assert at_flip < ahead < CURVES["desired_speed_mps"]
    off = RegulatedPurePursuit(TrackerParams(**CURVES), Ackermann(AckermannParams(wheelbase_m=2.6)))
    off.set_plan(_path(FLIP))
    out = off.compute(np.array([26.0, 0.0, 0.0]), 2.0, 0.0)
    assert abs(out.v_mps) > 1.0   # the law is off by default


def test_transition_law_costs_little_time_where_the_curvature_is_constant():
    plan = _path([(20.0, 0.0), (2 * math.pi * 6.2, 1 / 6.2), (20.0, 0.0)])
    _, _, t_old = _drive(plan, CURVES)
    _, _, t_new = _drive(plan, {**CURVES, **NEW})
    assert t_new < 1.12 * t_old, (t_old, t_new)
