"""Worked-corner headland rings: the whole machine stays inside, the corners get worked, manoeuvres only at
sharp convex corners; the mission lowers the implement right after a manoeuvre's cusp."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import LineString, Polygon, box
from shapely.ops import unary_union

from agricare.core.missions.farm import FarmMission, FarmMissionParams, MasterPlan
from agricare.core.planning.corners import Footprint, _reverse_len, corner_ring
from agricare.core.planning.coverage import CoverageParams, plan_coverage

from harness import TRACTOR_BODY as BODY, TRACTOR_IMPLEMENT as IMPLEMENT  # noqa: E402
from harness import implement_strips as _implement_strips, sample_poses as _poses  # noqa: E402
FIELD = box(0, 0, 100, 60)


def test_footprint_checks_every_rectangle_corner():
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    assert fp.fits([[50.0, 30.0, 0.3]])
    assert not fp.fits([[97.0, 30.0, 0.0]])                 # the bonnet 0.3 m past the edge
    assert not fp.fits([[50.0, 2.9, 0.0]])                  # the implement 0.1 m past the edge
    assert list(fp.outside_mask([[50.0, 30.0, 0.0], [1.5, 30.0, 0.0]])) == [False, True]


def test_corner_ring_keeps_the_machine_inside_and_works_the_corners():
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    d = 3.4
    ring = corner_ring(np.asarray(FIELD.buffer(-d, join_style="mitre").exterior.coords), 6.0, 4.5, fp, 1.6)
    assert ring is not None and ring.n_manoeuvres == 4              # four right-angle corners
    for s, _ in ring.pieces:
        assert fp.fits(_poses(s))
    # closed: every piece starts where the previous one ended
    ends = [p[0].xy[-1] for p in ring.pieces]
    starts = [p[0].xy[0] for p in ring.pieces[1:] + ring.pieces[:1]]
    assert max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05
    # manoeuvres reverse (three-point turns), working pieces are driven forward
    assert all(p[0].direction.min() < 0 for p in ring.pieces if not p[1])
    assert all(p[0].direction.min() > 0 for p in ring.pieces if p[1])
    # the corner squares (within 9 m of each corner, the band this pass works) are worked better than by
    # the rounded ring of the same pass (arc of the turning radius)
    band = FIELD.difference(FIELD.buffer(-(d + 3.0), join_style="mitre"))
    corners = unary_union([box(x, y, x + 9, y + 9) for x in (0, 91) for y in (0, 51)]).intersection(band)
    worked = _implement_strips(ring).intersection(corners).area / corners.area
    rounded = FIELD.buffer(-d, join_style="mitre").buffer(-4.5).buffer(4.5, quad_segs=32)
    xy = np.asarray(rounded.exterior.coords)
    yaw = np.arctan2(*np.diff(xy, axis=0).T[::-1])
    q = xy[1:] - 1.6 * np.column_stack([np.cos(yaw), np.sin(yaw)])
    ref = LineString(q).buffer(3.0, cap_style="flat").intersection(corners).area / corners.area
    assert worked > ref + 0.1 and worked > 0.85          # measured: 0.88 against 0.77


def test_shallow_corners_get_arcs_not_manoeuvres():
    hexagon = Polygon([(60 * math.cos(a), 60 * math.sin(a)) for a in np.arange(6) * math.pi / 3])
    fp = Footprint([BODY, IMPLEMENT], hexagon, margin_m=0.05)
    ring = corner_ring(np.asarray(hexagon.buffer(-9.0, join_style="mitre").exterior.coords), 6.0, 4.5, fp, 1.6,
                       min_angle_rad=math.radians(70))
    assert ring is not None and ring.n_manoeuvres == 0 and all(w for _, w in ring.pieces)


def test_plan_with_corner_turns_keeps_the_footprint_inside():
    fpm = BODY + IMPLEMENT
    plan = plan_coverage(FIELD, CoverageParams(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0,
                                               robot_width_m=6.8, footprint_m=fpm, implement_offset_m=1.6,
                                               corner_turns=True))
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.0)
    pth = plan.path
    head = pth.kind == 2                                    # headland passes (and their manoeuvres: kind 1 turn)
    assert head.sum() > 100 and np.any(pth.direction < 0)
    assert not fp.outside_mask(np.column_stack([pth.xy, pth.yaw])[head]).any()
    with pytest.raises(ValueError, match="footprint_m"):
        CoverageParams(corner_turns=True)


def test_implement_is_lowered_right_after_a_cusp():
    # reverse 6 m into a corner along x (heading +x, driving backwards), then work forwards from the cusp
    back = np.column_stack([np.linspace(10.0, 4.0, 13), np.zeros(13), np.zeros(13)])
    fwd = np.column_stack([np.linspace(4.0, 20.0, 33)[1:], np.zeros(32), np.zeros(32)])
    poses = np.vstack([back, fwd])
    direction = np.concatenate([-np.ones(13), np.ones(32)])
    working = np.concatenate([np.zeros(13, bool), np.ones(32, bool)])
    m = FarmMission(MasterPlan(poses, direction, working, np.zeros(len(poses))),
                    FarmMissionParams(implement_offset_m=1.6))
    m.start(0.0, poses[0])
    seen = []
    for k, x in enumerate([9.0, 7.0, 5.0, 4.2, 4.5, 5.0, 6.0, 8.0]):
        m.update(0.5 * k, [x, 0.0, 0.0])
        seen.append(m.implement_down())
    # up while reversing; down as soon as it drives forwards from the cusp (the implement, 1.6 m behind, is
    # on ground the path reversed over, not 1.6 m back along the path before the cusp)
    assert seen[:3] == [False, False, False] and all(seen[4:])


def test_plan_warns_when_the_machine_footprint_leaves_the_field():
    fpm = BODY + IMPLEMENT
    common = dict(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, footprint_m=fpm, implement_offset_m=1.6)
    # the implement's edge on the boundary: the rounded rings are moved in where the machine would leave the field
    # (they left it at every corner and along every straight before), so nothing is left to warn about
    tight = plan_coverage(FIELD, CoverageParams(robot_width_m=6.0, **common))
    assert not any("footprint" in w for w in tight.warnings)
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.0)
    assert not fp.outside_mask(np.column_stack([tight.path.xy, tight.path.yaw])).any()
    wide = plan_coverage(FIELD, CoverageParams(robot_width_m=6.8, **common))    # the demo's margin
    assert not any("footprint" in w for w in wide.warnings)
    # a 3 m headland without rings: the swath turns fit only with the reference point in (the bonnet swings out):
    # planned as before, with the warning
    narrow = plan_coverage(FIELD, CoverageParams(**{**common, "headland_width_m": 3.0}, robot_width_m=6.0,
                                                 plan_headland=False))
    assert any("footprint leaves the field" in w for w in narrow.warnings)


def test_corner_turns_on_a_field_whose_headland_pass_splits_in_two():
    # two 45 x 45 m squares joined by a 10 m neck: 9 m in, the pass is two rings (of different lengths); the
    # rounded rings they replace are removed by identity (list.remove compared numpy arrays element-wise)
    field = unary_union([box(0, 0, 45, 45), box(65, 0, 110, 45), box(40, 15, 70, 25)])
    plan = plan_coverage(field, CoverageParams(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0,
                                               robot_width_m=6.2, footprint_m=BODY + IMPLEMENT,
                                               implement_offset_m=1.6, corner_turns=True))
    assert len(plan.path) > 0
    assert any(len(p) >= 2 for p in plan.headland_rings)


#: a surveyed-like field (bench/farm_missions.py seed 0 without its pond): a 137 deg convex tip where no
#: three-point manoeuvre fits and a 130 deg concave notch where the working arc swings the implement out
SHARP = Polygon([(44.9, 4.7), (76.7, 20.2), (-5.7, 46.0), (-71.4, -20.1), (-40.8, -32.3), (-10.2, -78.9),
                 (12.4, -29.6), (22.9, -52.2), (52.8, -32.3), (42.3, -18.3)])


def test_a_corner_without_a_manoeuvre_breaks_the_pass_not_the_ring():
    fp = Footprint([BODY, IMPLEMENT], SHARP, margin_m=0.05)
    d = 3.1
    ring = corner_ring(np.asarray(SHARP.buffer(-d, join_style="mitre").exterior.coords), 6.0, 4.5, fp, 1.6,
                       min_leg_m=1.5)
    assert ring is not None                  # was None: the whole pass fell back to the rounded ring
    for s, _ in ring.pieces:
        assert fp.fits(_poses(s))
    ends = [p[0].xy[-1] for p in ring.pieces]
    starts = [p[0].xy[0] for p in ring.pieces[1:] + ring.pieces[:1]]
    assert max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05
    raised = [s for s, w in ring.pieces if not w]
    assert len(raised) > ring.n_manoeuvres             # manoeuvres plus the gaps at the corners left unworked
    assert any(s.direction.min() > 0 for s in raised)  # the concave notch: a forward loop, no reversing
    # the rounded ring it replaced swings the trailing implement out of the field at the corners; this one keeps
    # the machine inside and works nearly as much of the band along the boundary (measured 0.90 against 0.91;
    # the corners it leaves are the clean-up's)
    band = SHARP.difference(SHARP.buffer(-(d + 3.0), join_style="mitre"))
    rounded = SHARP.buffer(-d, join_style="mitre").buffer(-4.5).buffer(4.5, quad_segs=32)
    xy = np.asarray(rounded.exterior.coords)
    yaw = np.arctan2(*np.diff(xy, axis=0).T[::-1])
    q = xy[1:] - 1.6 * np.column_stack([np.cos(yaw), np.sin(yaw)])
    ref = LineString(q).buffer(3.0, cap_style="flat").intersection(band).area / band.area
    worked = _implement_strips(ring).intersection(band).area / band.area
    assert worked > ref - 0.02
    assert fp.outside_mask(np.column_stack([xy[1:], yaw])).any()


def test_clean_up_passes_end_where_the_machine_fits():
    # with reversing allowed the clean-up drives into the sharp corners: its passes stop where the tractor's
    # front and the implement are still inside (the region only keeps base_link half a body width in)
    plan = plan_coverage(SHARP, CoverageParams(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0,
                                               robot_width_m=6.2, footprint_m=BODY + IMPLEMENT,
                                               implement_offset_m=1.6, corner_turns=True, max_reverse_m=30.0))
    assert not any("footprint leaves" in w for w in plan.warnings), plan.warnings
    fp = Footprint([BODY, IMPLEMENT], SHARP, margin_m=0.0)
    assert not fp.outside_mask(np.column_stack([plan.path.xy, plan.path.yaw])).any()


def test_corner_reverse_budget_keeps_the_best_manoeuvres_within_it():
    # four right-angle corners, each manoeuvre reverses the same: a budget for two keeps two, none keeps none
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    ring_xy = np.asarray(FIELD.buffer(-3.4, join_style="mitre").exterior.coords)
    full = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6)
    assert full.n_manoeuvres == 4 and full.reverse_m > 20.0
    half = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, budget_m=0.5 * full.reverse_m + 0.1)
    assert half.n_manoeuvres == 2 and half.reverse_m <= 0.5 * full.reverse_m + 0.1
    none = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, budget_m=0.0)
    assert none.n_manoeuvres == 0 and none.reverse_m == 0.0
    for ring in (half, none):
        for s, working in ring.pieces:
            assert fp.fits(_poses(s))
            if working:
                assert s.direction.min() > 0
    with pytest.raises(ValueError, match="max_corner_reverse_m"):
        CoverageParams(max_corner_reverse_m=-1.0)


def _plan_reverse_m(plan) -> float:
    """Metres a plan's path drives in reverse."""
    p = plan.path
    seg = np.hypot(*np.diff(p.xy, axis=0).T)
    return float(np.sum(seg[p.direction[1:] < 0]))


def test_plan_corner_reverse_budget_bounds_the_manoeuvres():
    kw = dict(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, robot_width_m=6.2, footprint_m=BODY + IMPLEMENT,
              implement_offset_m=1.6, corner_turns=True)
    # no clean-up reversing (max_reverse_m 0): what the plan reverses is the corner manoeuvres'
    free = _plan_reverse_m(plan_coverage(FIELD, CoverageParams(**kw)))
    capped = _plan_reverse_m(plan_coverage(FIELD, CoverageParams(**kw, max_corner_reverse_m=20.0)))
    assert free > 40.0                                   # every corner of both passes gets a manoeuvre
    assert 0.0 < capped <= 20.0 + 1.0                    # + the one-sample direction label per leg


def test_reverse_exit_out_of_a_dead_end_leaves_room_to_turn():
    # a 7 m wide dead-end lane off a 40 m square: headed into its end, no forward U-turn fits (4 m radius); the
    # exit reverses (only) until one does, within the budget, and a tiny budget gives none (the backing-out exit;
    # the multi-point turn of cleanup_turnabout_exit: test_cleanup_turnabout.py)
    from agricare.core.planning.coverage import _Region, _reverse_exit, _turn_room

    field = unary_union([box(0, 0, 40, 40), box(40, 16.5, 54, 23.5)])
    p = CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0, cleanup_turnabout_exit=False)
    region = _Region(field.buffer(-1.5).buffer(1e-6))
    end = np.array([50.0, 20.0, 0.0])
    assert not _turn_room(end, p, region)
    r = _reverse_exit(end, p, region, None, 30.0)
    assert r is not None and r.length_m <= 30.0 - 2 * p.sample_step_m
    assert region.contains(r.xy) and np.all(r.direction[1:] < 0)
    assert _turn_room(np.array([*r.xy[-1], r.yaw[-1]]), p, region)
    assert _reverse_exit(end, p, region, None, 5.0) is None


def test_curvature_continuous_corners_end_where_the_plain_ones_do():
    """corner_cc: the manoeuvre's forward turn eases in and out (clothoids) and still ends on B's line where the
    pass along B starts; the transit onto the corner ring ends with the curvature back at zero."""
    from agricare.core.planning import turns as T
    from agricare.core.planning.corners import three_point_corner

    for inset in (0.0, 0.5, 1.0):
        plain = T.sample_primitives((0.0, 0.0, 0.0), three_point_corner(-1.4, -0.9, math.pi / 2, 4.5, 1.5, 1.5, inset),
                                    0.05)
        prims = three_point_corner(-1.4, -0.9, math.pi / 2, 4.5, 1.5, 1.5, inset, sharpness_1pm2=0.1)
        eased = T.sample_primitives((0.0, 0.0, 0.0), prims, 0.05)
        assert np.allclose(eased.xy[-1], plain.xy[-1], atol=1e-6) and abs(eased.yaw[-1] - plain.yaw[-1]) < 1e-9
        # forward pieces: curvature never jumps by more than the sharpness allows over a sample
        fwd = [p for p in prims if p[0] > 0 and (p[1] or p[2])]
        assert fwd[0][1] == 0.0 and fwd[-1][2] == 0.0 and all(abs(p[2] - p[1]) <= 0.1 * p[0] + 1e-9 for p in fwd)
        # the straight after the turn lies on B's line (x = 1.4 here: the vertex is 1.4 m ahead of the start)
        k_end = sum(1 for _ in prims) - 2
        after = T.sample_primitives((0.0, 0.0, 0.0), prims[:k_end + 1], 0.05)
        assert abs(after.xy[-1, 0] - 1.4) < 1e-6 and abs(after.yaw[-1] - math.pi / 2) < 1e-9

    p = CoverageParams(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, robot_width_m=6.18,
                       footprint_m=BODY + IMPLEMENT, implement_offset_m=1.6, corner_turns=True, corner_cc=True)
    plan = plan_coverage(FIELD, p)
    assert not [w for w in plan.warnings if "footprint" in w or "skipped" in w], plan.warnings
    path = plan.path
    # where a transit hands over to the outer (worked-corner) pass, the curvature is back to zero
    joins = [i for i in range(1, len(path)) if path.kind[i - 1] == 3 and path.kind[i] == 2
             and min(path.xy[i, 0], path.xy[i, 1], 100 - path.xy[i, 0], 60 - path.xy[i, 1]) < 3.2]
    assert joins and all(abs(path.curvature[i - 1]) < 1e-6 for i in joins)


def _reverse_m(samples_list):
    """Metres driven in reverse over ``(PathSamples, working)`` pieces, from the samples themselves."""
    total = 0.0
    for s, _ in samples_list:
        seg = np.hypot(*np.diff(s.xy, axis=0).T)
        total += float(np.sum(seg[s.direction[1:] < 0]))
    return total


def test_corner_budget_counts_the_reversing_of_gaps_too():
    # the sharp corners get gaps whose short reversing S was not counted: a ring under a budget reversed more
    fp = Footprint([BODY, IMPLEMENT], SHARP, margin_m=0.05)
    ring_xy = np.asarray(SHARP.buffer(-3.1, join_style="mitre").exterior.coords)
    free = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, min_leg_m=1.5)
    assert free is not None and free.n_manoeuvres >= 4 and _reverse_m(free.pieces) > 45.5
    assert free.reverse_m == pytest.approx(_reverse_m(free.pieces), abs=0.5 * len(free.pieces))
    capped = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, min_leg_m=1.5, budget_m=45.0)
    assert capped is not None and 0 < capped.n_manoeuvres < free.n_manoeuvres
    assert _reverse_m(capped.pieces) <= 45.0 + 0.5
    for s, _ in capped.pieces:
        assert fp.fits(_poses(s))


def test_gap_leaves_the_outer_pass_by_a_forward_s_instead_of_reversing(monkeypatch):
    import agricare.core.planning.corners as corners

    fp = Footprint([BODY, IMPLEMENT], SHARP, margin_m=0.05)
    ring_xy = np.asarray(SHARP.buffer(-3.1, join_style="mitre").exterior.coords)
    plain = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, min_leg_m=1.5, budget_m=0.0)
    assert plain is not None and plain.n_manoeuvres == 0
    assert _reverse_m(plain.pieces) > 1.0                  # the gaps' reversing S (over the 0 budget: nothing else)
    # with the turn after the S given 0.5 m more room (the default) this field's sharp corners have none left for
    # it: every gap keeps its reversing S
    safe = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, min_leg_m=1.5, budget_m=0.0, ease_radius_m=50.0)
    assert safe is not None and _reverse_m(safe.pieces) == pytest.approx(_reverse_m(plain.pieces))
    # the mechanism itself, without that extra room: the gaps leave forwards
    monkeypatch.setattr(corners, "EASE_TURN_MARGIN_M", 0.0)
    eased = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, min_leg_m=1.5, budget_m=0.0, ease_radius_m=50.0)
    assert eased is not None and eased.n_manoeuvres == 0
    assert _reverse_m(eased.pieces) < _reverse_m(plain.pieces)
    for s, _ in eased.pieces:
        assert fp.fits(_poses(s))
    # the S is worked, driven forward, and gentle (curvature at most 1/50 m)
    s_pieces = [s for s, w in eased.pieces if w and np.abs(s.kappa).max() > 1e-6 and np.abs(s.kappa).max() < 0.05]
    assert s_pieces and all(s.direction.min() > 0 for s in s_pieces)
    ends = [p[0].xy[-1] for p in eased.pieces]
    starts = [p[0].xy[0] for p in eased.pieces[1:] + eased.pieces[:1]]
    assert max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05
    with pytest.raises(ValueError, match="corner_ease_radius_m"):
        CoverageParams(corner_ease_radius_m=-1.0)


def test_plan_total_reverse_budget_bounds_all_reversing():
    kw = dict(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, robot_width_m=6.2, footprint_m=BODY + IMPLEMENT,
              implement_offset_m=1.6, corner_turns=True, max_reverse_m=30.0, optimizer_time_limit_s=0.0)
    free = _plan_reverse_m(plan_coverage(SHARP, CoverageParams(**kw)))
    capped = _plan_reverse_m(plan_coverage(SHARP, CoverageParams(**kw, max_total_reverse_m=25.0)))
    assert free > 25.0
    assert capped <= 25.0 + 1.0                             # + the one-sample direction label per leg
    with pytest.raises(ValueError, match="max_total_reverse_m"):
        CoverageParams(max_total_reverse_m=-1.0)


def test_corner_budget_is_kept_whenever_the_ring_has_manoeuvres():
    # the contract: a ring with manoeuvres never reverses more than its budget (None instead: the caller keeps
    # the rounded ring); only a ring of gaps that can leave the outer pass only by reversing may go over
    fp = Footprint([BODY, IMPLEMENT], SHARP, margin_m=0.05)
    ring_xy = np.asarray(SHARP.buffer(-3.1, join_style="mitre").exterior.coords)
    with_manoeuvres = 0
    for budget in (5.0, 20.0, 40.0, 60.0):
        ring = corner_ring(ring_xy, 6.0, 4.5, fp, 1.6, min_leg_m=1.5, budget_m=budget)
        if ring is None:
            continue
        assert ring.reverse_m == pytest.approx(_reverse_m(ring.pieces), abs=0.5 * len(ring.pieces))
        if ring.n_manoeuvres:
            with_manoeuvres += 1
            assert _reverse_m(ring.pieces) <= budget + 0.5
    assert with_manoeuvres >= 2


def test_clean_up_end_margin_is_validated():
    # (its effect is measured by bench/farm_missions.py --end-margin-m: SHARP's plan has no clean-up pass to test)
    assert CoverageParams(cleanup_end_margin_m=0.5).cleanup_end_margin_m == 0.5
    with pytest.raises(ValueError, match="cleanup_end_margin_m"):
        CoverageParams(cleanup_end_margin_m=-0.1)


def test_y_turn_candidates_end_on_the_next_pass_and_reverse_less_than_three_point():
    from agricare.core.planning import turns as T
    from agricare.core.planning.corners import three_point_corner, y_turn_candidates

    for deg in (60.0, 90.0, 120.0):
        d = math.radians(deg)
        for inset, sharp in ((0.0, 0.0), (0.5, 0.0), (0.5, 0.1)):
            cands = y_turn_candidates(-1.5, -0.5, d, 4.5, sharp, inset_m=inset)
            assert len(cands) > 10
            backs = [c[0] for c in cands]
            assert backs == sorted(backs)
            for back, prims in cands:
                end = T.end_pose((-1.5, inset, 0.0), prims)
                # on B's line, 0.5 m backed into the corner, heading along B
                assert np.allclose(end[:2], [-0.5 * math.cos(d), -0.5 * math.sin(d)], atol=2e-3)
                assert abs(T.wrap_angle(end[2] - d)) < 1e-3
                assert back == pytest.approx(sum(-q[0] for q in prims if q[0] < 0), abs=1e-6)
                assert prims[-1][0] < 0                      # backed onto B: the implement goes down at the cusp
        three = three_point_corner(-1.5, -0.5, d, 4.5, 1.5, 1.5)
        assert y_turn_candidates(-1.5, -0.5, d, 4.5)[0][0] < 0.8 * sum(-q[0] for q in three if q[0] < 0)


def test_y_turns_reverse_a_third_less_on_a_worked_corner_ring():
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    d = 3.1                                                   # the outer pass: a forward turn off it swings out
    xy = np.asarray(FIELD.buffer(-d, join_style="mitre").exterior.coords)
    three = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0)
    ring = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, y_turns=True)
    assert three.n_manoeuvres == ring.n_manoeuvres == 4
    # without a budget the deep Y turns (both passes as far into the corner as the machine fits)
    assert ring.reverse_m < 0.75 * three.reverse_m                   # measured 27.1 m against 40.2 m
    for s, _ in ring.pieces:
        assert fp.fits(_poses(s))
    ends = [p[0].xy[-1] for p in ring.pieces]
    starts = [p[0].xy[0] for p in ring.pieces[1:] + ring.pieces[:1]]
    assert max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05
    # each corner: a working S off the outer pass, then the manoeuvre (forward arc, reverse arc onto B), which
    # ends reversing so the implement goes down at the cusp
    man = [p[0] for p in ring.pieces if not p[1]]
    assert all(m.direction[-1] < 0 and m.direction.max() > 0 for m in man)
    band = FIELD.difference(FIELD.buffer(-(d + 3.0), join_style="mitre"))
    corners = unary_union([box(x, y, x + 15, y + 15) for x in (0, 85) for y in (0, 45)]).intersection(band)
    worked = _implement_strips(ring).intersection(corners).area / corners.area
    ref = _implement_strips(three).intersection(corners).area / corners.area
    assert worked > ref - 0.01 and worked > 0.95                      # measured 0.957 against 0.959
    # within a budget the plain ones, cheaper still
    cheap = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, y_turns=True, budget_m=30.0)
    # measured 24.5 m (23.1 m before the stops kept CUSP_OVERSHOOT_M of room to roll past them)
    assert cheap.n_manoeuvres == 4 and cheap.reverse_m < 0.62 * three.reverse_m


def test_inner_pass_corners_loop_forward_where_there_is_room():
    big = box(0, 0, 120, 80)
    # an inner pass 12 m in: the outer passes' strip between it and the boundary leaves room for a forward loop
    fp = Footprint([BODY, IMPLEMENT], big, margin_m=0.05)
    xy = np.asarray(big.buffer(-12.0, join_style="mitre").exterior.coords)
    ring = corner_ring(xy, 6.0, 4.5, fp, 1.6, y_turns=True)
    assert ring.n_manoeuvres == 4 and ring.reverse_m == 0.0
    assert all(p[0].direction.min() > 0 for p in ring.pieces)
    for s, _ in ring.pieces:
        assert fp.fits(_poses(s))
    # without room (the outer pass), no loop: the corners reverse
    xy3 = np.asarray(big.buffer(-3.1, join_style="mitre").exterior.coords)
    assert corner_ring(xy3, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, y_turns=True).reverse_m > 10.0


def test_y_turn_budget_takes_cheaper_shallower_turns_for_more_corners():
    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    d = 3.1
    xy = np.asarray(FIELD.buffer(-d, join_style="mitre").exterior.coords)
    band = FIELD.difference(FIELD.buffer(-(d + 3.0), join_style="mitre"))
    corners = unary_union([box(x, y, x + 15, y + 15) for x in (0, 85) for y in (0, 45)]).intersection(band)
    three = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, budget_m=15.0)
    ring = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, budget_m=15.0, y_turns=True)
    assert three.n_manoeuvres == 0                     # 10 m each: no three-point turn fits beside the gaps' S
    assert ring.n_manoeuvres == 4 and ring.reverse_m <= 15.0 + 1e-6
    worked = _implement_strips(ring).intersection(corners).area / corners.area
    ref = _implement_strips(three).intersection(corners).area / corners.area
    assert worked > ref + 0.15                          # measured 0.768 against 0.547
    # the deepest Y turn reverses 5.8 m a corner (test above): four fit only as shallower ones
    assert max(_reverse_len(p[0]) for p in ring.pieces if not p[1]) < 5.0


def test_plan_with_y_turns_reverses_less_and_keeps_the_footprint_inside():
    from agricare.core.planning.corners import CornerRing

    field = box(0, 0, 70, 45)
    kw = dict(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, robot_width_m=6.2, footprint_m=BODY + IMPLEMENT,
              implement_offset_m=1.6, corner_turns=True, optimizer_time_limit_s=0.0, plan_cleanup=False)
    three = plan_coverage(field, CoverageParams(**kw))
    plan = plan_coverage(field, CoverageParams(**kw, corner_y_turns=True))
    rings = [r for pr in plan.headland_rings for r in pr if isinstance(r, CornerRing)]
    assert len(rings) == 2 and all(r.n_manoeuvres == 4 for r in rings) and plan.n_rings_skipped == 0
    assert not plan.warnings                                   # the footprint inside at every planned pose
    assert _plan_reverse_m(plan) < 0.85 * _plan_reverse_m(three)    # measured 67.7 m against 84.2 m


def test_y_turns_work_a_shallow_corner_of_the_outer_pass_from_both_sides():
    from shapely.geometry import Point

    # an 18 degree convex corner at (80, 0): no working arc fits on the outer pass (the trailing implement swings out)
    field = Polygon([(0, 0), (80, 0), (130, 16), (130, 70), (0, 70)])
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    xy = np.asarray(field.buffer(-3.1, join_style="mitre").exterior.coords)
    near = Point(80, 0).buffer(15).intersection(field.difference(field.buffer(-6.1, join_style="mitre")))
    three = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0)
    ring = corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, y_turns=True)
    for s, _ in ring.pieces:
        assert fp.fits(_poses(s))
    # the three-point manoeuvre ends A and starts B a corner square's width apart, a strip between them unworked
    assert _implement_strips(three).intersection(near).area / near.area < 0.8             # measured 0.773
    assert _implement_strips(ring).intersection(near).area / near.area > 0.93             # measured 0.965


def test_corner_choose_keeps_the_plan_that_sweeps_most(monkeypatch):
    # corner_choose plans the field with worked corners on every subset of the headland passes and keeps the plan
    # whose implement sweeps most of the field; on this kite the outer corner ring, its sharp corners left to gaps
    # by the 30 m reverse limit, sweeps 3 % of the field less than the rounded outer ring and its clean-up passes
    import agricare.core.planning.coverage as cov

    kite = Polygon([(0, 0), (70, -10), (80, 30), (10, 50)])
    kw = dict(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, robot_width_m=6.2, footprint_m=BODY + IMPLEMENT,
              implement_offset_m=1.6, corner_turns=True, max_reverse_m=30.0, max_total_reverse_m=30.0,
              optimizer_time_limit_s=0.0)
    made = []
    orig = cov._plan_coverage

    def record(field, params, frame=None, corner_mask=None):
        plan = orig(field, params, frame, corner_mask)
        made.append((corner_mask, cov.plan_sweep_area(plan), plan))
        return plan

    monkeypatch.setattr(cov, "_plan_coverage", record)
    chosen = plan_coverage(kite, CoverageParams(**kw, corner_choose=True))
    assert [m for m, _, _ in made] == [None, (True, False), (False, True), (False, False)]
    best = max(made, key=lambda x: x[1])
    assert chosen is best[2]
    # measured: 3080.6 -> 3170.5 m^2 (2.7 %) before the clean-up's late starts, which work 25 m^2 more with the
    # corner rings (3105.8 m^2: 1.96 %)
    assert best[0] != made[0][0] and best[1] > made[0][1] + 0.015 * kite.area
    assert 0.9 * kite.area < best[1] <= kite.area
    assert _plan_reverse_m(chosen) <= 30.0 + 1.0
    # off (the default): one plan, every pass with worked corners
    made.clear()
    plain = plan_coverage(kite, CoverageParams(**kw))
    assert [m for m, _, _ in made] == [None] and plain.path.xy.shape == made[0][2].path.xy.shape


def test_ring_footprint_is_checked_between_its_samples():
    """A ring's samples can each keep the machine inside while the curve driven between them does not: at a field
    vertex the implement's corner, 3 m to the side, sweeps past it between two samples. The ring check looks there
    too, so push_ring_in moves such a ring in."""
    from agricare.core.planning.coverage import _ring_footprint_excess

    # a notch: the boundary's vertex at (50, 4) points into the field, between two samples 2 m apart
    field = Polygon([(0, 0), (49.0, 0), (50.0, 4.0), (51.0, 0), (100, 0), (100, 60), (0, 60)])
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    # a closed counter-clockwise ring 6.5 m in, sampled every 2 m (x = 11, 13, ... on the bottom), heading along it
    corners = [(11.0, 6.5), (89.0, 6.5), (89.0, 49.5), (11.0, 49.5), (11.0, 6.5)]
    xy = np.vstack([np.linspace(a, b, int(round(math.dist(a, b) / 2.0)) + 1)[:-1]
                    for a, b in zip(corners, corners[1:])])
    d = np.roll(xy, -1, axis=0) - xy
    ring = np.column_stack([xy, np.arctan2(d[:, 1], d[:, 0])])
    # the implement (3 m to the right, 1.2-2 m behind) clears the notch from the samples; from x = 52 it does not
    assert np.all(fp.excess(ring) == 0.0)
    e = _ring_footprint_excess(fp, ring)
    assert e.max() > 0.1
    hit = np.flatnonzero(e > 0)
    assert set(map(tuple, ring[hit, :2])) <= {(47.0, 6.5), (49.0, 6.5), (51.0, 6.5), (53.0, 6.5)}   # by the notch
    # no change where the straight ring keeps the machine inside between samples too
    plain = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    assert np.all(_ring_footprint_excess(plain, ring) == 0.0)


def test_manoeuvre_stops_leave_room_to_roll_past_them():
    """A stop where the machine changes direction is checked with the machine rolled CUSP_OVERSHOOT_M past it the way
    it arrives: a pass that stops with the bonnet 0.1 m from the boundary and reverses fits pose by pose but not
    so."""
    from agricare.core.planning import turns as T
    from agricare.core.planning.corners import CUSP_OVERSHOOT_M, _fits_stops, _overshoot_poses

    fp = Footprint([BODY, IMPLEMENT], FIELD, margin_m=0.05)
    near = 100.0 - 0.05 - 3.3 - 0.1                      # the bonnet 0.1 m inside the margin
    s = T.sample_primitives((near, 30.0, 0.0), [(-3.0, 0.0, 0.0), (2.0, 0.0, 0.0)], 0.5)
    assert fp.fits(_poses(s))
    c = _overshoot_poses(s)
    assert len(c) == 2                                       # the pass's end (arrived forwards) and the reverse leg's
    assert c[0][0] == pytest.approx(near + CUSP_OVERSHOOT_M)
    assert c[1][0] == pytest.approx(near - 3.0 - CUSP_OVERSHOOT_M)
    assert not _fits_stops(fp, s)
    assert _fits_stops(fp, T.sample_primitives((near - 0.5, 30.0, 0.0), [(-3.0, 0.0, 0.0), (2.0, 0.0, 0.0)], 0.5))
    # a piece without a stop has nothing to check
    assert _fits_stops(fp, T.sample_primitives((50.0, 30.0, 0.0), [(5.0, 0.0, 0.0)], 0.5))
