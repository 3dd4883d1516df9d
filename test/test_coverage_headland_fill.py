"""Headland passes at sharp corners, and what a plan works where a pass starts (bench/field_plans.py's irregular
fields: crescents left unworked between successive headland rings at corners sharper than a right angle; the plan's
figures left a 0.5 m sliver out at the start of every swath and pass)."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import LineString, Point, Polygon, box

from agricare.core.planning import turns as T
from agricare.core.planning.cleanup import worked_area
from agricare.core.planning.coverage import (KIND_SWATH, KIND_TURN, CoverageParams, CoveragePlan, PlanPath,
                                             plan_coverage, plan_work_figures)
from agricare.core.planning.headland import corner_discs, corner_fill, headland_rings

R = 4.0
ACUTE = math.radians(40.0)
# a field with one 40 deg corner at the origin (the others 90 deg or blunter)
FIELD = Polygon([(0, 0), (100, 0), (100, 80), (80 * math.cos(ACUTE), 80 * math.sin(ACUTE))])


def _apex_distances(rings):
    """Per pass: how far along the 40 deg corner's bisector its ring lies from the corner."""
    u = np.array([math.cos(ACUTE / 2), math.sin(ACUTE / 2)])
    ray = LineString([(0, 0), tuple(60 * u)])
    out = []
    for pass_rings in rings:
        hits = [ray.intersection(LineString(r)) for r in pass_rings]
        out.append(min(Point(0, 0).distance(h) for h in hits if not h.is_empty))
    return out


def _max_turn_per_2m(ring: np.ndarray) -> float:
    """Largest heading change (rad) over any 2 m of a closed ring sampled every 0.5 m."""
    d = np.diff(ring, axis=0)
    h = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    h = np.concatenate([h, h[:4] + (h[-1] - h[0] + T.wrap_angle(h[0] - h[-1]))])
    return float(np.max(np.abs(h[4:] - h[:-4])))


def test_second_ring_follows_the_first_into_a_sharp_corner():
    off = [1.5, 4.5, 7.5]
    filled = _apex_distances(headland_rings(FIELD, off, R, fill_corners=True))
    plain = _apex_distances(headland_rings(FIELD, off, R, fill_corners=False))
    assert abs(filled[0] - plain[0]) < 0.05                    # the outer pass is the same
    # each ring tangent to its own offset: the second lies spacing / sin(20 deg) = 8.8 m behind the first (a crescent
    # 5.8 m deep unworked between them); bent into the corner it lies one spacing behind
    assert plain[1] - plain[0] > 8.0
    assert filled[1] - filled[0] < 3.0 + 0.3


def test_filled_rings_stay_drivable():
    for pass_rings in headland_rings(FIELD, [1.5, 4.5, 7.5], R, fill_corners=True):
        for ring in pass_rings:
            # no bend sharper than the turning radius (2 m of arc of radius R turns 0.5 rad; 10 % for the sampling)
            assert _max_turn_per_2m(ring) < 2.0 / R * 1.1


def test_corner_fill_works_more_of_the_field():
    a = math.radians(70.0)
    field = Polygon([(0, 0), (100, 0), (100, 90), (60 * math.cos(a), 60 * math.sin(a))])
    base = dict(width_m=3.0, turn_radius_m=R, headland_width_m=9.0)
    on = plan_work_figures(plan_coverage(field, CoverageParams(**base)))
    off = plan_work_figures(plan_coverage(field, CoverageParams(**base, headland_corner_fill=False)))
    assert on["rings_worked"] == on["rings_total"]
    assert on["worked_ratio"] > off["worked_ratio"] + 0.002


def _line_plan(field):
    """A plan whose path runs along y = 0 from x = -2 to 10, raised up to x = 0 and working from there (a turn's last
    sample at the swath's start, as the planner joins them)."""
    x = np.arange(-2.0, 10.01, 0.5)
    n = len(x)
    path = PlanPath(np.column_stack([x, np.zeros(n)]), np.zeros(n), np.zeros(n),
                    np.where(x <= 0, KIND_TURN, KIND_SWATH).astype(np.int8), x > 0, np.ones(n, np.int8))
    return CoveragePlan(field, field, 0.0, [], [], path, {}, 1.0, 0.0, CoverageParams())


def test_work_figures_count_a_swath_from_its_first_point():
    # the mission lowers the implement once past the last raised sample (FarmPlan.work_s counts the segment that ends
    # at a working sample): the strip from x = 0 is worked; the figures left the first 0.5 m out
    field = box(0.0, -1.5, 10.0, 1.5)
    f = plan_work_figures(_line_plan(field), width_m=3.0)
    assert f["worked_ratio"] > 0.99
    strips = worked_area(_line_plan(field).path.xy, _line_plan(field).path.working, 3.0)
    assert abs(strips.area - 30.0) < 0.1


def test_filled_rings_keep_the_outer_passes_offset_next_to_a_notch():
    # a bump of the boundary into the field 25 m from the 40 deg corner, within reach of the closing that joins a corner
    # disc to the pass: every ring keeps at least the outer pass's offset from the boundary
    a = ACUTE
    field = Polygon([(0, 0), (22, 0), (25, 3.0), (28, 0), (100, 0), (100, 80), (80 * math.cos(a), 80 * math.sin(a))])
    off = [1.5, 4.5, 7.5]
    rings = headland_rings(field, off, R, fill_corners=True)
    for pass_rings in rings:
        for ring in pass_rings:
            dist = np.array([field.exterior.distance(Point(q)) for q in ring[::2]])
            assert dist.min() > off[0] - 0.15


def test_corner_disc_is_not_taken_over_a_hole_with_its_own_ring():
    outer = Polygon(FIELD.exterior)
    prev = outer.buffer(-1.5, join_style="mitre").buffer(-R).buffer(R, quad_segs=32)
    region = outer.buffer(-4.5, join_style="mitre").buffer(-R).buffer(R, quad_segs=32)
    found = corner_discs(prev, region, 3.0, R)
    assert found                                        # the 40 deg corner's crescent
    grown = corner_fill(prev, region, 3.0, R)
    assert grown.area > region.area + 10.0
    # a pole's ring zone (the pole grown by the pass's offset) where the disc would go: the pass stays as it was there
    pole = Point(*found[0][0]).buffer(2.0)
    kept = corner_fill(prev, region, 3.0, R, keep_out=pole)
    assert kept.difference(region).intersection(pole).area < 1e-3
