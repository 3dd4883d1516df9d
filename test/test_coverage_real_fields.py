"""Whole-field plans on a traced irregular field (79 vertices, three obstacles, a narrow neck): every headland
ring reached by forward transit, little reversing, >= 99 % of the field worked; forward transit around an
obstacle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from agricare.core.planning.coverage import (CoverageParams, path_inside_fraction, plan_coverage,
                                             plan_work_figures)
from agricare.core.planning.transit import forward_transit


def test_bruchwiese_whole_field(repo_root):
    pytest.importorskip("lxml")
    from agricare.core.farmdata import load_field_data

    fd = load_field_data(repo_root / "config/fields/bruchwiese.geojson")
    plan = plan_coverage(fd.work_area(), CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0))
    f = plan_work_figures(plan)
    assert f["rings_total"] >= 9 and f["rings_worked"] == f["rings_total"]
    assert f["reverse_m"] <= 30.0
    assert f["worked_ratio"] >= 0.99
    assert path_inside_fraction(plan) == 1.0
    # the reference (Dubins / Reeds-Shepp words only, no clean-up) is what the planner did before
    ref = plan_work_figures(plan_coverage(fd.work_area(), CoverageParams(
        width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0, transit="direct", plan_cleanup=False)))
    assert ref["rings_worked"] < ref["rings_total"] and ref["reverse_m"] > 100.0


def test_forward_transit_goes_around_an_obstacle():
    field = box(0, 0, 80, 40).difference(Point(40, 20).buffer(8.0))
    region = field.buffer(-1.5)
    shapely.prepare(region)

    def contains(xy):
        return bool(np.all(shapely.contains_xy(region, xy[:, 0], xy[:, 1])))

    start, goal = np.array([10.0, 20.0, 0.0]), np.array([70.0, 20.0, 0.0])
    s = forward_transit(start, goal, 4.0, 0.5, region, contains)
    assert s is not None and np.all(s.direction > 0) and contains(s.xy)
    assert np.hypot(*(s.xy[-1] - goal[:2])) < 0.05 and abs(math.remainder(s.yaw[-1] - goal[2], 2 * math.pi)) < 0.02
    assert s.length_m < 90.0                      # around the obstacle, not a long detour
    # no way through: the goal is walled off
    walled = box(0, 0, 80, 40).difference(box(38, -1, 42, 41)).buffer(-1.5)
    walled = max(getattr(walled, "geoms", [walled]), key=lambda g: g.area)
    shapely.prepare(walled)
    assert forward_transit(start, goal, 4.0, 0.5, walled,
                           lambda xy: bool(np.all(shapely.contains_xy(walled, xy[:, 0], xy[:, 1])))) is None


def test_ring_entry_tries_every_entry_forwards_before_reversing(repo_root):
    # an irregular seeded field (bench/field_plans.py seed 114, 53 vertices, two obstacles) where the six nearest ring
    # entries could not be reached forwards and the last resort was a Reeds-Shepp word reversing 74 m; with forward
    # transit to every entry point first, the whole plan reverses within the 30 m and skips no ring
    import importlib.util

    spec = importlib.util.spec_from_file_location("field_plans", repo_root / "bench" / "field_plans.py")
    fp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fp)
    plan = plan_coverage(fp.seeded_field(114), CoverageParams(**fp.BASE, max_reverse_m=30.0))
    f = plan_work_figures(plan)
    assert f["reverse_m"] <= 30.0, f
    assert f["rings_worked"] == f["rings_total"], f
