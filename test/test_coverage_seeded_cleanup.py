"""Clean-up with a trailing implement (bench/farm_missions.py's seeded fields: a 6 m bar 1.6 m behind base_link).

The clean-up's leftover patches are what the trailing bar leaves (it is raised reversing, so a dead-end pass works
only until the bar is its offset short of the end)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from shapely.geometry import box

from agricare.core.planning import turns as T
from agricare.core.planning.cleanup import worked_area
from agricare.core.planning.coverage import CoverageParams, PlanPath, _trail_worked


def _path(parts):
    """PlanPath of (PathSamples, working) parts."""
    xy, yaw, k, w, d = [], [], [], [], []
    for i, (s, working) in enumerate(parts):
        sl = slice(1, None) if i else slice(None)
        xy.append(s.xy[sl])
        yaw.append(s.yaw[sl])
        k.append(s.kappa[sl])
        w.append(np.full(len(s.yaw[sl]), working))
        d.append(s.direction[sl])
    n = sum(len(v) for v in yaw)
    return PlanPath(np.concatenate(xy), np.concatenate(yaw), np.concatenate(k), np.zeros(n, np.int8),
                    np.concatenate(w), np.concatenate(d))


def test_trailing_bar_is_raised_at_a_reverse_exit_and_lowered_a_bar_offset_late():
    # 5 m transit, a 20 m working pass, 5 m straight back: the bar 1.6 m behind base_link is lowered when it reaches
    # the pass's start and raised when the machine reverses, so it works 18.4 m of the pass, not 20
    p = CoverageParams(width_m=3.0, implement_offset_m=1.6)
    lead = T.sample_primitives((-5.0, 0.0, 0.0), [(5.0, 0.0, 0.0)], 0.5)
    work = T.sample_primitives((0.0, 0.0, 0.0), [(20.0, 0.0, 0.0)], 0.5)
    back = T.sample_primitives((20.0, 0.0, 0.0), [(-5.0, 0.0, 0.0)], 0.5)
    path = _path([(lead, False), (work, True), (back, False)])
    trail = _trail_worked(path, p)
    assert trail.area == pytest.approx(3.0 * 18.4, abs=0.6)
    x0, _, x1, _ = trail.bounds
    assert x0 == pytest.approx(0.0, abs=0.3) and x1 == pytest.approx(18.4, abs=0.3)
    # the old reading (the bar at base_link) credits the whole pass
    assert worked_area(path.xy, path.working, 3.0).area == pytest.approx(60.0, abs=0.6)
    # without an offset both agree
    assert _trail_worked(path, CoverageParams(width_m=3.0)).area == pytest.approx(60.0, abs=0.6)


def test_trailing_bar_cuts_the_inside_of_a_bend():
    # a quarter turn of 4.5 m radius, working: the rigidly mounted bar 1.6 m behind sweeps less than base_link's strip
    p = CoverageParams(width_m=6.0, implement_offset_m=1.6)
    lead = T.sample_primitives((0.0, -10.0, math.pi / 2), [(10.0, 0.0, 0.0)], 0.5)
    arc = T.sample_primitives((0.0, 0.0, math.pi / 2), [(0.5 * math.pi * 4.5, -1 / 4.5, -1 / 4.5)], 0.5)
    path = _path([(lead, True), (arc, True)])
    field = box(-20, -20, 20, 20)
    missed = worked_area(path.xy, path.working, 6.0).intersection(field).difference(_trail_worked(path, p))
    assert missed.area > 1.0


def test_small_leftover_blobs_get_clean_up_passes_with_a_wide_bar():
    # bench/farm_missions.py tuning seed 8 (6 m bar, plain plan: no worked corners, no footprint): a clean-up pass had
    # to work a quarter of a squared width (9 m^2), which left the blobs of 3-9 m^2 at the inner ring's corners and by
    # the pond; at 0.05 squared widths (1.8 m^2) 98.90 -> 99.26 % of the field is worked, reversing 0 -> 2.7 m
    # (measured), double 10.9 -> 12.4 % of the plan's strips
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    import farm_missions

    from agricare.core.planning.coverage import plan_coverage, plan_work_figures

    field = farm_missions.random_field(np.random.default_rng(8))
    base = farm_missions.plan_params(False, 30.0)
    assert base.cleanup_min_gain_w2 == pytest.approx(0.05)
    old = plan_work_figures(plan_coverage(field, dataclasses.replace(base, cleanup_min_gain_w2=0.25)))
    new = plan_work_figures(plan_coverage(field, base))
    assert old["worked_ratio"] < 0.99
    assert new["worked_ratio"] > old["worked_ratio"] + 0.003
    assert new["worked_ratio"] >= 0.99
    assert new["reverse_m"] <= 30.0
    assert new["double_ratio"] < old["double_ratio"] + 0.03
