"""Plan check with the robot's own tracker and kinematic model (core/control/track_check)."""

from __future__ import annotations


import numpy as np
import pytest
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.track_check import (MachineModel, Prediction, check_plan, excursions, footprint_points,
                                               predict_track)
from harness import TRACKER_CURVES, primitive_path  # noqa: E402

CURVES = TRACKER_CURVES   # bench/farm_missions.py's controller with worked corners and the curve law
FOOTPRINT = (-0.9, 3.3, -1.1, 1.1, -2.0, -1.2, -3.0, 3.0)
R = 4.5


_path = primitive_path


def _swept(poses, margin):
    """The machine's footprint along the plan (every 0.1 m), grown by ``margin``: a field the plan keeps that far
    inside everywhere."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poses[:, :2], axis=0).T))])
    ss = np.arange(0.0, s[-1] + 0.05, 0.1)
    dense = np.column_stack([np.interp(ss, s, poses[:, 0]), np.interp(ss, s, poses[:, 1]),
                             np.interp(ss, s, np.unwrap(poses[:, 2]))])
    quads = footprint_points(dense, FOOTPRINT).reshape(len(dense), -1, 4, 2)
    return unary_union([Polygon(q) for pose in quads for q in pose]).buffer(margin)


def test_straight_plan_is_predicted_on_its_line_and_inside():
    plan = _path([(40.0, 0.0)])
    pred = predict_track(plan, np.ones(len(plan)), TrackerParams(**CURVES))
    assert pred.done
    assert np.max(np.abs(pred.poses[:, 1])) < 1e-6
    assert check_plan(plan, np.ones(len(plan)), _swept(plan, 0.05), FOOTPRINT, TrackerParams(**CURVES)).excursions == []


def test_check_finds_the_opposite_arcs_the_steering_cannot_follow_and_not_with_the_transition_laws():
    # a transit's C C word: an arc onto the opposite one at the minimum radius, the plan kept 0.1 m inside
    plan = _path([(15.0, 0.0), (6.0, 1 / R), (8.0, -1 / R), (20.0, 0.0)])
    dirs = np.ones(len(plan))
    region = _swept(plan, 0.1)
    old = check_plan(plan, dirs, region, FOOTPRINT, TrackerParams(**CURVES))
    assert old.prediction.done
    assert len(old.excursions) >= 1 and old.worst_m > 0.1, old.excursions        # measured 0.29 m beyond the 0.1
    e = old.excursions[0]
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(plan[:, :2], axis=0).T))])
    assert 15.0 <= s[e.first] <= 35.0 and e.first <= e.last                    # on the arcs, not on the straights
    new = check_plan(plan, dirs, region, FOOTPRINT,
                     TrackerParams(**CURVES, steer_anticipation=0.3, transition_ramp_m=0.75))
    assert new.excursions == [], new.excursions                              # 0.06 m beyond the plan: inside
    assert new.wall_s > 0.0


def test_excursions_are_runs_of_poses_with_a_corner_outside():
    region = box(-10.0, -10.0, 100.0, 10.0)
    ys = [0.0, 0.0, 7.5, 7.6, 0.0, -7.3, 0.0]       # implement half width 3 m: out at 7.5, 7.6 and -7.3
    poses = np.array([[10.0 + i, y, 0.0] for i, y in enumerate(ys)])
    pred = Prediction(poses, np.arange(len(ys)) * 2, True, 0.35)
    ex = excursions(region, pred, FOOTPRINT)
    assert [(e.first, e.last) for e in ex] == [(4, 7), (10, 11)]
    assert ex[0].worst_m == pytest.approx(0.6) and ex[1].worst_m == pytest.approx(0.3)
    assert excursions(region, pred, FOOTPRINT, margin_m=0.0)[0].t_s == pytest.approx(0.15)
    assert len(excursions(region.buffer(1.0), pred, FOOTPRINT)) == 0


def test_machine_model_rejects_bad_numbers():
    with pytest.raises(ValueError):
        MachineModel(steer_rate_radps=0.0)
    with pytest.raises(ValueError):
        MachineModel(max_steering_angle_rad=2.0)
    with pytest.raises(ValueError):
        MachineModel(wheelbase_m=float("nan"))
