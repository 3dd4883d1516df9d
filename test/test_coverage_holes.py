"""Headland rings round holes and the whole machine inside the field: smooth hole rings, a hole's own ring where the
outer ring's opening would swallow it, rounded concave corners, rings / turns / transits / the job's run-out checked
with the machine's footprint (bench/farm_missions.py's seeded fields left the field at 4-46 planned poses each)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import Point, Polygon, box

from agricare.core.planning import turns as T
from agricare.core.planning.corners import Footprint
from agricare.core.planning.coverage import (KIND_TRANSIT, CoverageParams, _Builder, _drift_off, _end_run_out,
                                             _Region, _turn_room, plan_coverage, plan_work_figures)
from agricare.core.planning.headland import headland_rings, hole_offset, min_bend_radius

BODY, IMPLEMENT = (-0.9, 3.3, -1.1, 1.1), (-2.0, -1.2, -3.0, 3.0)     # the bench's / demo's tractor
R = 4.5


def _turns(ring: np.ndarray) -> np.ndarray:
    """Heading change (rad) at every vertex of a closed ring (first == last)."""
    d = np.diff(ring, axis=0)
    h = np.arctan2(d[:, 1], d[:, 0])
    return np.abs(T.wrap_angle(np.diff(np.concatenate([h, h[:1]]))))


def _pond(cx, cy, r):
    return Point(cx, cy).buffer(r, quad_segs=4)          # a 16-gon, as the bench's ponds and poles


def test_hole_ring_is_smooth_and_keeps_its_offset():
    pond = _pond(50, 50, 4.0)
    field = Polygon(box(0, 0, 100, 100).exterior, [pond.exterior.coords])
    rings = headland_rings(field, [3.1, 9.0], R, smooth_holes=True)
    for d, pass_rings in zip((3.1, 9.0), rings):
        hole_ring = [r for r in pass_rings
                     if Polygon(r).contains(Point(50, 50)) and not Polygon(r).contains(Point(20, 20))]
        assert len(hole_ring) == 1
        ring = hole_ring[0]
        # no kink: every 0.5 m step turns at most what the turning radius allows (+10 %); the mitred offset of the
        # 16-gon turned 21 deg at once every 3 m
        assert _turns(ring).max() <= 1.1 * 0.5 / R
        dist = np.array([pond.exterior.distance(Point(x, y)) for x, y in ring])
        assert dist.min() >= d - 0.02 and dist.max() <= d + 0.3
    # at the first pass's offset (below the turning radius) the opening needs only a few centimetres more
    assert hole_offset(pond, 3.1, R).buffer(0.02).contains(pond.buffer(3.1))
    # without a footprint (smooth_holes default off): the mitred offset, kinked at every vertex, as before
    kinked = [r for r in headland_rings(field, [3.1], R)[0] if not Polygon(r).contains(Point(20, 20))]
    assert _turns(kinked[0]).max() > 0.3


def test_a_hole_near_the_edge_keeps_its_second_ring():
    # a pond 20 m from the edge: at 9 m the hole's ring and the boundary's are 2 m apart; the opening of the pass
    # (corridors under two turning radii dropped) swallowed the hole's ring, a 6 m annulus was never worked
    pond = _pond(24, 50, 4.0)
    field = Polygon(box(0, 0, 100, 100).exterior, [pond.exterior.coords])
    rings = headland_rings(field, [3.1, 9.0], R)
    for pass_rings in rings:
        assert sum(Polygon(r).contains(Point(24, 50)) for r in pass_rings) >= 2    # the outer ring and the pond's
        assert any(Polygon(r).contains(Point(24, 50)) and not Polygon(r).contains(Point(60, 50)) for r in pass_rings)


def test_rings_are_moved_in_where_the_trailing_implement_would_leave_the_field():
    field = box(0, 0, 100, 60)
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    ex = lambda q: fp.excess(q)                           # noqa: E731
    plain = headland_rings(field, [3.1], R)[0][0]
    # the rounded corners swing the implement's rear corner out (both ways round)
    d = np.diff(plain, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    assert ex(np.column_stack([plain[:-1], yaw])).max() > 0.1
    safe = headland_rings(field, [3.1], R, excess=ex)[0][0]
    d = np.diff(safe, axis=0)
    for yaw in (np.arctan2(d[:, 1], d[:, 0]), np.arctan2(-d[:, 1], -d[:, 0])):
        assert ex(np.column_stack([safe[:-1], yaw])).max() == 0.0
    # moved only near the corners: the straights' middles keep the pass's offset
    mid = [Point(50, 3.1), Point(96.9, 30), Point(50, 56.9), Point(3.1, 30)]
    ring_line = Polygon(safe).exterior
    assert all(ring_line.distance(p) < 0.02 for p in mid)


def test_concave_corner_of_the_outer_ring_is_rounded_with_the_footprint():
    # a 44 deg notch (the seeded fields' kind): the ring kinked by its angle at once, the machine overran it by 2 m;
    # now a bend of the turning radius, the machine inside along it
    field = Polygon([(0, 0), (100, 0), (100, 60), (50, 40), (0, 60)])
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    ex = lambda q: fp.excess(q)                           # noqa: E731
    plain = headland_rings(field, [3.1], R)[0][0]
    assert _turns(plain).max() > 0.65                                   # 0.76 rad, split over two samples
    ring = headland_rings(field, [3.1], R, excess=ex)[0][0]
    assert _turns(ring).max() <= 1.15 * 0.5 / R
    d = np.diff(ring, axis=0)
    assert ex(np.column_stack([ring[:-1], np.arctan2(d[:, 1], d[:, 0])])).max() == 0.0
    # an L-shaped field's 90 deg notch: the turning radius moves the ring 1.9 m into the notch (a band of the pass
    # unworked), but a quarter of it (the earlier choice, 0.47 m) is a bend the machine cannot steer (it ran 1.26 m
    # out of a seeded field after one): the ring bends with the turning radius, the whole machine inside
    field = Polygon([(0, 0), (100, 0), (100, 50), (50, 50), (50, 100), (0, 100)])
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    ex = lambda q: fp.excess(q)                           # noqa: E731
    plain = headland_rings(field, [3.1], R)[0][0]
    assert _turns(plain).max() > 1.4                                    # 1.47 rad at one sample
    assert min_bend_radius(plain) < 1.5
    ring = headland_rings(field, [3.1], R, excess=ex)[0][0]
    assert min_bend_radius(ring) >= 0.9 * R
    d = np.diff(ring, axis=0)
    assert ex(np.column_stack([ring[:-1], np.arctan2(d[:, 1], d[:, 0])])).max() == 0.0


def test_min_bend_radius_of_circles_and_kinks():
    th = np.linspace(0, 2 * math.pi, 400, endpoint=False)
    assert min_bend_radius(np.column_stack([5 * np.cos(th), 5 * np.sin(th)])) == pytest.approx(5.0, rel=0.08)
    # sampled as the planner samples rings (0.5 m): a 3.5 m bend, tighter than the bench tractor steers, reads 3.5 m
    # (it read 5.2 m, measured over one segment more than the turns it counted, and passed a 0.9 R = 4.05 m check)
    th = np.linspace(0, 2 * math.pi, int(2 * math.pi * 3.5 / 0.5), endpoint=False)
    assert min_bend_radius(np.column_stack([3.5 * np.cos(th), 3.5 * np.sin(th)])) == pytest.approx(3.5, rel=0.05)
    u = np.linspace(0, 1, 40, endpoint=False)[:, None]
    square = np.vstack([np.array(a) + (np.array(b) - np.array(a)) * u
                        for a, b in [((0, 0), (20, 0)), ((20, 0), (20, 20)), ((20, 20), (0, 20)), ((0, 20), (0, 0))]])
    assert min_bend_radius(square) < 1.5 / (math.pi / 2) * 1.1      # a 90 deg kink within the 1.5 m window


def _bench_outer_ring(seed: int):
    """The outer headland ring of bench/farm_missions.py's seeded field ``seed`` (its planner settings, the ring moved
    in where the whole machine would leave the field), with the parameters and the machine's footprint."""
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    import farm_missions as fm
    from agricare.core.planning.coverage import _machine, _ring_footprint_excess
    from agricare.core.planning.headland import headland_offsets

    field = fm.random_field(np.random.default_rng(seed))
    p = fm.plan_params(True, 30.0, math.inf, 30.0, 50.0, 0.5)
    fp = _machine(p, field, 0.05)
    d0 = headland_offsets(p.headland_width_m, p.width_m, p.body_width_m)[0]
    rings = headland_rings(field, [d0], p.turn_radius_m, p.sample_step_m,
                           excess=lambda q: _ring_footprint_excess(fp, q))[0]
    return max(rings, key=lambda r: Polygon(r).area), p, fp


def test_outer_ring_without_a_drivable_rounding_takes_the_least_tight_one():
    # bench/farm_missions.py seed 10: no rounding of the outer ring's concave corners stays >= 0.9 R once pushed in
    # (R: 3.83 m, R/2: 2.48 m, R/4: 1.32 m); the fallback took the first within 0.6 m of the notch, the R/4 one, and
    # the tracked machine left the field by 1.26 m after its bend. Now the least tight of them
    outer, p, fp = _bench_outer_ring(10)
    assert min_bend_radius(outer) > 0.8 * p.turn_radius_m             # 3.83 m for 4.5 m; the R/4 ring 1.32 m


def test_a_pushed_outer_ring_is_rounded_again_where_the_push_tightened_a_bend():
    # bench/farm_missions.py seed 5: the R rounding of the outer ring, pushed in where the trailing implement would
    # leave the field, bent 3.49 m at a convex corner (the push moves an arc towards its centre), tighter than the
    # tractor steers (3.8 m); tracked, it left the field by 0.091 m there. Opened again with the turning radius and
    # re-pushed it bends 4.47 m and still keeps the whole machine inside
    outer, p, fp = _bench_outer_ring(5)
    assert min_bend_radius(outer) >= 0.9 * p.turn_radius_m           # 4.47 m; 3.49 m before
    q = outer[:-1]
    d = np.roll(q, -1, axis=0) - q
    poses = np.column_stack([q, np.arctan2(d[:, 1], d[:, 0])])
    from agricare.core.planning.coverage import _ring_footprint_excess
    assert np.all(_ring_footprint_excess(fp, poses) <= 0.0)


def test_region_fits_checks_the_whole_machine_on_a_curve():
    field = box(0, 0, 100, 60)
    region = _Region(field.buffer(-3.1), Footprint([BODY, IMPLEMENT], field, margin_m=0.05))
    # a left quarter turn of the turning radius hugging the bottom edge: base_link keeps 3.2 m, the trailing
    # implement's right rear corner swings out
    s = T.sample_primitives((20.0, 3.2, 0.0), [(math.pi / 2 * R, 1 / R, 1 / R)], 0.5)
    assert region.contains(s.xy)
    assert not region.fits(s)
    assert _Region(field.buffer(-3.1)).fits(s)                       # without a footprint: the point check only
    s_in = T.sample_primitives((20.0, 4.0, 0.0), [(math.pi / 2 * R, 1 / R, 1 / R)], 0.5)
    assert region.fits(s_in)


def test_a_machine_on_the_outer_pass_drifts_off_it_before_turning():
    field = box(0, 0, 100, 60)
    region = _Region(field.buffer(-3.1), Footprint([BODY, IMPLEMENT], field, margin_m=0.05))
    p = CoverageParams(width_m=6.0, turn_radius_m=R, headland_width_m=12.0, robot_width_m=6.2,
                       footprint_m=BODY + IMPLEMENT, implement_offset_m=1.6)
    pose = np.array([50.0, 3.12, 0.0])                                # on the outer pass, the implement 0.12 m in
    assert not _turn_room(pose, p, region)                            # any turn swings the implement's corner out
    drifts = _drift_off(pose, p, region)
    assert drifts and all(region.fits(q) for q in drifts)
    inward = [q for q in drifts if q.xy[-1, 1] > 3.4]
    assert inward and all(q.direction.min() > 0 for q in drifts)


def test_the_jobs_run_out_is_cut_where_the_machine_meets_a_hole():
    pond = _pond(50, 30, 3.0)
    field = Polygon(box(0, 0, 100, 60).exterior, [pond.exterior.coords])
    p = CoverageParams(width_m=6.0, turn_radius_m=R, headland_width_m=12.0, robot_width_m=6.2,
                       footprint_m=BODY + IMPLEMENT, implement_offset_m=1.6, cleanup_end_margin_m=0.5)
    fp_end = Footprint([BODY, IMPLEMENT], field, margin_m=0.55)
    # the last pass ends heading at the pond where the machine (front 3.3 m ahead) just fits
    x_end = 40.0
    while fp_end.fits([[x_end + 0.1, 30.0, 0.0]]):
        x_end += 0.1
    b = _Builder(0.5)
    b.add(T.sample_primitives((20.0, 30.0, 0.0), [(x_end - 20.0, 0.0, 0.0)], 0.5), 2, True)
    _end_run_out(b, field, p)
    path = b.build()
    assert not path.working[-1] and b.parts[-1][1] == KIND_TRANSIT      # the mission adds no run-out of its own
    assert path.xy[-1, 0] - x_end < 0.3                                  # only what fits of the 1.6 m
    assert fp_end.fits(np.column_stack([path.xy, path.yaw]))
    # where the whole run-out fits, the plan is left as it was (the mission drives it)
    b2 = _Builder(0.5)
    b2.add(T.sample_primitives((20.0, 30.0, 0.0), [(10.0, 0.0, 0.0)], 0.5), 2, True)
    _end_run_out(b2, field, p)
    assert len(b2.parts) == 1


def test_seeded_field_plan_keeps_the_whole_machine_inside():
    # bench/farm_missions.py seed 2 (a pond, a notch) with the bench's worked-corner settings: its rounded outer
    # ring, ring entries and transits left the field at 32 planned poses, up to 0.22 m
    import sys
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    import farm_missions as fm
    import dataclasses

    field = fm.random_field(np.random.default_rng(2))
    p = dataclasses.replace(fm.plan_params(True, 30.0, math.inf, 30.0, 50.0, 0.5), optimizer_time_limit_s=0.0)
    plan = plan_coverage(field, p)
    fig = plan_work_figures(plan)
    assert fig["footprint_outside_poses"] == 0
    assert fig["rings_worked"] == fig["rings_total"]
    assert not any("footprint" in w for w in plan.warnings)
