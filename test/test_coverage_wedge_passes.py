"""Curved clean-up passes into the wedges between an obstacle and the field's edge (``cleanup_wedge_passes_m``) and
the clean-up's last dead-end pass left without its exit (``cleanup_final_dead_end``).

A pond closer to the edge than the implement is wide leaves a wedge either side of the gap: the headland rings
round the pond open there, and straight passes into a wedge leave the band along the pond's round outline. The
curved pass follows a circle half a width off the pond (at least the turning radius), into the wedge until the
region the machine's centre may use ends, and leaves by reversing along itself. Fields from bench/field_plans.py
(3 m width, 4 m turn radius, 9 m headland, 30 m of reverse), its tuning seeds.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import sys

import numpy as np
import shapely
from shapely.geometry import Point, Polygon, box

from agricare.core.planning.cleanup import arc_passes, wedge_circles
from agricare.core.planning.coverage import CoverageParams, plan_coverage, plan_work_figures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import field_plans  # noqa: E402


def _pond_field(gap_m: float, r: float = 4.5):
    pond = Point(25.0, r + gap_m).buffer(r, quad_segs=4)
    return Polygon(box(0, 0, 50, 40).exterior.coords, [pond.exterior.coords])


def test_wedge_circle_keeps_half_a_width_off_the_pond_and_its_arcs_stay_in_the_region():
    field = _pond_field(1.5)
    region = field.buffer(-1.5 - 0.05)
    circles = wedge_circles(field, region, 3.0, 4.0, 6.0)
    assert len(circles) == 1
    ctr, rho, th, inside = circles[0]
    assert np.allclose(ctr, (25.0, 6.0), atol=1e-6)
    assert abs(rho - (4.5 + 1.55)) < 1e-6                # the pond's bounding circle + half a width + 5 cm
    assert inside.any() and not inside.all()            # cut where the gap to the edge pinches it
    # a pond farther from the edge than max_gap_m has none; a pond of 1.5 m radius gets the turning radius
    assert wedge_circles(_pond_field(8.0), _pond_field(8.0).buffer(-1.55), 3.0, 4.0, 6.0) == []
    small = _pond_field(1.0, r=1.5)
    (_c, rho_small, _t, _i), = wedge_circles(small, small.buffer(-1.55), 3.0, 4.0, 6.0)
    assert rho_small == 4.0
    # the wedges either side of the gap (the strip along the edge there)
    wedges = shapely.intersection(field, box(15, 0, 35, 4))
    arcs = [a for w in getattr(wedges, "geoms", [wedges]) for a in arc_passes(circles, w, 3.0, 1.0)]
    assert len(arcs) >= 2
    for a in arcs:
        pts = np.asarray(a.line().coords)
        assert shapely.contains_xy(region.buffer(0.3), pts[:, 0], pts[:, 1]).all()
        assert a.rho >= 4.0 and 0 < a.th1 - a.th0 < math.pi


def _figures(seed, **opts):
    base = CoverageParams(**field_plans.BASE, max_reverse_m=30.0)
    return plan_work_figures(plan_coverage(field_plans.seeded_field(seed), dataclasses.replace(base, **opts)))


def test_wedge_passes_work_the_wedges_beside_a_pond_just_wider_off_the_edge_than_the_bar():
    # test_coverage_exit_gap's field: 80 x 60 m, a round pond (4 m) 3.15 m above the bottom edge; measured (with the
    # gap pass through it): 99.375 -> 99.490 % of the field, reverse 17.1 -> 11.9 m (a 2 m gap: 98.913 -> 98.876 %,
    # the budget spent on the arcs; 1 m: 98.968 -> 99.004 %). On field_plans' tuning seed 12 (0.82 ha): 99.296 ->
    # 99.349 %, reverse 18.1 m both
    pond = Point(40.0, 7.15).buffer(4.0, quad_segs=4)
    field = Polygon(box(0, 0, 80, 60).exterior.coords, [pond.exterior.coords])
    # measured before the edge passes (cleanup_edge_in_m), which work part of the wedge
    base = CoverageParams(**field_plans.BASE, max_reverse_m=30.0, cleanup_edge_in_m=0.0)
    old, new = (plan_work_figures(plan_coverage(field, dataclasses.replace(base, cleanup_wedge_passes_m=m)))
                for m in (0.0, 6.0))
    assert old["worked_ratio"] < 0.9940
    assert new["worked_ratio"] > old["worked_ratio"] + 0.0008
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]


def test_final_dead_end_pass_works_the_last_wedge():
    # measured: seed 6 (0.59 ha, a pond 1.5 m from the edge, a 13 deg tip) 97.994 % with wedge passes alone (as
    # without), 98.108 % with the last dead-end pass left without its exit, reverse 23.1 -> 24.6 m
    new = _figures(6, cleanup_wedge_passes_m=6.0, cleanup_final_dead_end=True)
    assert new["worked_ratio"] > 0.9808
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]
