"""Eased arcs given up one corner at a time (corners.corner_ring ``eased_per_corner``): where the eased arcs of a pass
leave nothing of some edge, the ring was built without any eased arc, and every shallow corner whose working arc does
not fit the outer pass then took a Y turn (bench/farm_missions.py seed 18: no outer corner ring within the budget)."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Polygon, box

from agricare.core.planning.corners import CornerRing, Footprint, corner_ring
from agricare.core.planning.coverage import CoverageParams, plan_coverage

from harness import TRACTOR_BODY as BODY, TRACTOR_IMPLEMENT as IMPLEMENT  # noqa: E402
from harness import sample_poses as _poses  # noqa: E402

#: the outline of bench/farm_missions.py seed 18 (to 0.1 m): 21, 28 and 36 deg corners between longer edges and a 55
#: deg corner 17.9 m after the 36 deg one on the outer pass, whose eased arcs (9.3 and 10.3 m either side) overlap
SEED18 = Polygon([(64.6, 37.0), (58.4, 56.5), (-15.5, 79.0), (-19.6, 46.3), (-45.5, 7.1), (-68.6, -29.1),
                  (-63.7, -33.4), (-43.1, -55.1), (-14.3, -69.0), (49.2, -9.4)])


def _closed(ring) -> bool:
    ends = [p[0].xy[-1] for p in ring.pieces]
    starts = [p[0].xy[0] for p in ring.pieces[1:] + ring.pieces[:1]]
    return max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05


def _ring(field, **kw):
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    xy = np.asarray(field.buffer(-3.1, join_style="mitre").exterior.coords)
    return fp, corner_ring(xy, 6.0, 4.5, fp, 1.6, 0.5, math.radians(50.0), min_leg_m=1.5, ease_radius_m=50.0,
                           y_turns=True, loop_back=True, eased_arcs=True, partial_y_turns=True, depth_gain=True, **kw)


def _eased(ring) -> int:
    return sum(k.startswith("eased_arc") for *_, k in ring.vertices)


def test_an_edge_eaten_by_eased_arcs_costs_one_eased_arc_not_all():
    _, plain = _ring(SEED18, budget_m=30.0)
    fp, per = _ring(SEED18, budget_m=30.0, eased_per_corner=True)
    assert plain is not None and per is not None and _closed(per)
    # without: no eased arc at all, the 21 and 28 deg corners reverse 1.53 and 5.49 m in Y turns (23.07 m in all)
    assert _eased(plain) == 0
    # with: both of them worked forward on eased arcs, 19.97 m in all
    assert _eased(per) >= 2
    assert per.reverse_m < plain.reverse_m - 2.0
    for s, _ in per.pieces:
        assert fp.fits(_poses(s))


def test_with_eased_arcs_per_corner_the_outer_pass_fits_a_smaller_budget():
    # the pass's Y turns at its shallow corners alone reverse more than 20 m: no ring (the planner kept the rounded one)
    assert _ring(SEED18, budget_m=20.0)[1] is None
    _, per = _ring(SEED18, budget_m=20.0, eased_per_corner=True)
    assert per is not None and _closed(per)
    assert per.reverse_m <= 20.0 + 1e-6                     # measured 14.1 m
    assert _eased(per) >= 3                                 # measured 4 (21, 28, 36 and 69 deg)
    _, tight = _ring(SEED18, budget_m=10.0, eased_per_corner=True)
    assert tight is not None and tight.reverse_m <= 10.0 + 1e-6   # measured 9.5 m


def test_a_ring_whose_eased_arcs_fit_is_unchanged():
    field = box(0, 0, 100, 60)
    _, plain = _ring(field, budget_m=12.0)
    _, per = _ring(field, budget_m=12.0, eased_per_corner=True)
    assert plain is not None and per is not None
    assert per.vertices == plain.vertices and abs(per.reverse_m - plain.reverse_m) < 1e-9
    assert len(per.pieces) == len(plain.pieces)


def test_the_planner_works_the_outer_pass_corners_of_the_field_by_default():
    # the planner with a 20 m corner budget: by default (eased arcs per corner) the outer pass gets its corner ring
    # (14.1 m reversed, eased arcs at the 21, 28, 36 and 69 deg corners); without, only the inner pass does
    def rings(**kw):
        p = CoverageParams(width_m=6.0, turn_radius_m=4.5, headland_width_m=12.0, robot_width_m=6.2,
                           footprint_m=(*BODY, *IMPLEMENT), implement_offset_m=1.6, corner_turns=True,
                           max_corner_reverse_m=20.0, corner_ease_radius_m=50.0, corner_y_turns=True, **kw)
        plan = plan_coverage(SEED18, p)
        return {k: cr for k, pr in enumerate(plan.headland_rings) for cr in pr if isinstance(cr, CornerRing)}

    assert CoverageParams().corner_eased_per_corner
    # (as measured before eased arcs were inset per side: with that the S curves no longer eat the 17.9 m edge and
    # the outer pass gets its ring either way, test_coverage_corners_eased_side.py)
    off, on = rings(corner_eased_per_corner=False, corner_eased_per_side=False), rings(corner_eased_per_side=False)
    assert 0 not in off and 1 in off
    assert 0 in on and 1 in on
    assert sum(cr.reverse_m for cr in on.values()) <= 20.0 + 1e-6    # measured 14.1 + 1.75 m
    assert _eased(on[0]) >= 3
