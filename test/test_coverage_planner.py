"""Coverage planner: reference fields, properties on random fields with holes, bad input."""

import json
import math

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import Polygon, box

from agricare.core.planning.coverage import (KIND_TURN, CoverageParams, PlanningError, field_from_geojson,
                                             path_inside_fraction, plan_coverage, plan_to_dict)

FIELD_A = box(0, 0, 100, 60)
FIELD_B = affinity.rotate(box(0, 0, 250, 120), 30, origin=(0, 0))
F2C_DUBINS_M = {"A": 1480.4, "B": 8731.8}


def _check_plan(plan, radius, holes_ok=True):
    p = plan.path
    assert len(p) > 0
    assert np.all(np.isfinite(p.xy)) and np.all(np.isfinite(p.yaw)) and np.all(np.isfinite(p.curvature))
    steps = np.hypot(*np.diff(p.xy, axis=0).T)
    assert steps.max() <= 0.5 + 1e-6                     # sampled at most every 0.5 m
    assert path_inside_fraction(plan) == 1.0            # inside the field, outside holes
    turn = p.kind == KIND_TURN
    if turn.any():
        assert np.max(np.abs(p.curvature[turn])) <= 1.0 / radius + 1e-6
    assert plan.coverage_ratio >= 0.995


def test_field_a_beats_reference_with_turns_inside():
    plan = plan_coverage(FIELD_A, CoverageParams(width_m=3, turn_radius_m=4, headland_width_m=9))
    assert len(plan.swaths) == 14
    assert plan.inner.area == pytest.approx(3444.0)
    _check_plan(plan, 4.0)
    assert plan.lengths_m["total"] <= 0.97 * F2C_DUBINS_M["A"]
    assert plan.lengths_m["total"] == pytest.approx(plan.lengths_m["swaths"] + plan.lengths_m["turns"])


def test_field_b_beats_reference():
    plan = plan_coverage(FIELD_B, CoverageParams(width_m=3, turn_radius_m=4, headland_width_m=9))
    assert len(plan.swaths) == 34
    assert math.degrees(plan.angle_rad) == pytest.approx(30.0, abs=0.01)
    _check_plan(plan, 4.0)
    assert plan.lengths_m["total"] <= 0.97 * F2C_DUBINS_M["B"]


def test_missing_last_swath_is_covered():
    # inner field 40.5 m wide: 13.5 implement widths -> 14 swaths, the last one overlapping
    f = box(0, 0, 100, 58.5)
    plan = plan_coverage(f, CoverageParams(route="boustrophedon"))
    assert len(plan.swaths) == 14
    assert plan.coverage_ratio >= 0.9999
    assert plan.overlap_ratio > 0


def test_fixed_angle_and_ab_line():
    p1 = plan_coverage(FIELD_A, CoverageParams(angle_deg=90.0, plan_headland=False))
    assert math.degrees(p1.angle_rad) == pytest.approx(90.0)
    assert len(p1.swaths) == 28
    p2 = plan_coverage(FIELD_A, CoverageParams(ab_line_m=(0, 0, 10, 10), plan_headland=False))
    assert math.degrees(p2.angle_rad) == pytest.approx(45.0)
    sw = p2.swath_array()
    d = sw[:, 1] - sw[:, 0]
    assert np.allclose(d[:, 0], d[:, 1], atol=1e-6)   # parallel to (1, 1)


@pytest.mark.parametrize("route", ["boustrophedon", "snake", "spiral"])
def test_pattern_routes_visit_every_swath_once(route):
    plan = plan_coverage(FIELD_A, CoverageParams(route=route, plan_headland=False))
    lines = sorted(s.line for s in plan.swaths)
    assert lines == list(range(14))
    _check_plan(plan, 4.0)


def test_optimal_route_not_longer_than_patterns():
    opt = plan_coverage(FIELD_A, CoverageParams(route="optimal", plan_headland=False)).lengths_m["total"]
    for r in ("boustrophedon", "snake", "spiral"):
        assert opt <= plan_coverage(FIELD_A, CoverageParams(route=r, plan_headland=False)).lengths_m["total"] + 1e-6


def test_reeds_shepp_plan_has_reverse_and_stays_inside():
    plan = plan_coverage(FIELD_A, CoverageParams(turn_type="reeds_shepp", plan_headland=False))
    _check_plan(plan, 4.0)
    assert np.any(plan.path.direction < 0)


def test_turn_that_would_leave_the_field_is_replaced():
    # headland 5 m: a Dubins U-turn of radius 4 m for 3 m swaths (omega) cannot fit -> fishtail or loop
    plan = plan_coverage(box(0, 0, 80, 40), CoverageParams(headland_width_m=5.0, route="boustrophedon",
                                                           plan_headland=False))
    _check_plan(plan, 4.0)


@st.composite
def fields(draw):
    """Random star-shaped (possibly non-convex) fields, ~0.5-2 ha, with 0-2 square holes."""
    n = draw(st.integers(5, 9))
    r = [draw(st.floats(55, 90)) for _ in range(n)]
    ang = np.sort(np.array([draw(st.floats(0, 2 * math.pi)) for _ in range(n)]))
    if np.min(np.diff(np.concatenate([ang, [ang[0] + 2 * math.pi]]))) < 0.3:
        ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
    shell = [(ri * math.cos(a), ri * math.sin(a)) for ri, a in zip(r, ang)]
    holes = []
    for _ in range(draw(st.integers(0, 2))):
        cx, cy = draw(st.floats(-25, 25)), draw(st.floats(-25, 25))
        s = draw(st.floats(2, 6))
        holes.append([(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)])
    poly = Polygon(shell, holes)
    if not poly.is_valid:
        poly = Polygon(shell)
    return poly


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields(), st.sampled_from(["dubins", "dubins_cc", "reeds_shepp"]))
def test_random_fields_properties(field, turn_type):
    plan = plan_coverage(field, CoverageParams(width_m=3, turn_radius_m=4, headland_width_m=9,
                                               turn_type=turn_type, optimizer_time_limit_s=0.03))
    _check_plan(plan, 4.0)
    # holes: no path sample inside a hole
    for h in field.interiors:
        hp = Polygon(h)
        assert not np.any(shapely.contains_xy(hp, plan.path.xy[:, 0], plan.path.xy[:, 1]))


def test_plan_to_dict_format():
    plan = plan_coverage(FIELD_A, CoverageParams(plan_headland=False))
    d = json.loads(json.dumps(plan_to_dict(plan)))
    assert set(d) >= {"swaths", "path", "length_m", "coverage_ratio", "overlap_ratio", "plan_time_ms"}
    assert set(d["length_m"]) >= {"swaths", "turns", "headland", "total"}
    assert len(d["swaths"][0]) == 2 and len(d["swaths"][0][0]) == 2
    assert len(d["path"][0]) == 4 and d["path"][0][3] in (0, 1)


def test_wgs84_roundtrip_output_in_input_crs():
    lon0, lat0 = 5.663, 51.985
    dl, dn = 1 / (111200 * 0.6166), 1 / 111200
    ring = [[lon0, lat0], [lon0 + 120 * dl, lat0], [lon0 + 120 * dl, lat0 + 80 * dn], [lon0, lat0 + 80 * dn],
            [lon0, lat0]]
    field, frame = field_from_geojson({"type": "Polygon", "coordinates": [ring]})
    assert field.area == pytest.approx(120 * 80, rel=0.01)
    plan = plan_coverage(field, CoverageParams(), frame)
    d = plan_to_dict(plan)
    xy = np.array([p[:2] for p in d["path"]])
    assert np.all(np.abs(xy[:, 0] - lon0) < 0.01) and np.all(np.abs(xy[:, 1] - lat0) < 0.01)


@pytest.mark.parametrize("doc,msg", [
    ({"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]],
      "properties": {"crs": "local"}}, "self-intersecting"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]], "properties": {"crs": "EPSG:99999"}},
     "unknown CRS"),
    ({"type": "FeatureCollection", "features": []}, "exactly one Polygon"),
])
def test_bad_field_documents(doc, msg):
    with pytest.raises(PlanningError, match=msg):
        field_from_geojson(doc)


def test_field_smaller_than_headland():
    with pytest.raises(PlanningError, match="smaller than the headland"):
        plan_coverage(box(0, 0, 15, 15), CoverageParams(headland_width_m=9))


@pytest.mark.parametrize("kw", [{"width_m": 0}, {"width_m": -1}, {"turn_radius_m": float("nan")},
                                {"turn_type": "bezier"}, {"route": "random"}, {"sample_step_m": 1.0}])
def test_bad_params_name_the_field(kw):
    with pytest.raises(ValueError, match=next(iter(kw)).split("_m")[0]):
        CoverageParams(**kw)


def test_route_search_stops_on_its_solution_count_not_the_clock():
    # the OR-Tools search ends after optimizer_solution_limit solutions: the same problem gives the same route with
    # a 5 s or a 30 s cap (on a slower or busier machine a clock would stop it at another point), the count decides
    # how far it gets, and it does improve on the deterministic descents
    from agricare.core.planning.routing import optimal_route, route_cost

    rng = np.random.default_rng(3)
    n = 30
    pts = rng.uniform(0, 100, (2 * n, 2))
    cost = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1)) + rng.uniform(0, 20, (2 * n, 2 * n))
    seeds = [[(i, False) for i in range(n)]]
    r8 = optimal_route(cost, seeds, 5.0, solution_limit=8)
    assert optimal_route(cost, seeds, 30.0, solution_limit=8) == r8
    descents = route_cost(optimal_route(cost, seeds, 0.0), cost)
    assert route_cost(r8, cost) < route_cost(optimal_route(cost, seeds, 5.0, solution_limit=2), cost) < descents
    assert sorted(i for i, _ in r8) == list(range(n))


def test_default_plans_repeat():
    field = Polygon([(0, 0), (120, 0), (140, 70), (60, 95), (-10, 60)], [[(50, 40), (58, 40), (58, 48), (50, 48)]])
    a, b = plan_coverage(field, CoverageParams()), plan_coverage(field, CoverageParams())
    assert np.array_equal(a.path.xy, b.path.xy)
