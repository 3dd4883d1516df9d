"""Dead-end clean-up passes left by a multi-point turn inside the tip (cleanup.turnabout_exit,
``CoverageParams.cleanup_turnabout_exit``) instead of backing out until a forward half-turn fits."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from agricare.core.planning.cleanup import turnabout_exit
from agricare.core.planning.coverage import (CoverageParams, _exit_reverse_m, _Region, _reverse_exit, _turn_room,
                                             plan_coverage, plan_work_figures)

# base_link's region: a dead-end corridor 5 m wide and 30 m long off open ground (a 4 m turning radius: a forward
# half-turn needs 8 m, a three-point turn at full lock about 4 m)
CORRIDOR = Polygon([(0, 0), (5, 0), (5, 30), (25, 30), (25, 60), (-20, 60), (-20, 30), (0, 30)])


def test_turnabout_turns_round_in_a_corridor_where_backing_out_does_not_fit_the_budget():
    region = _Region(CORRIDOR)
    end = np.array([2.5, 2.0, -math.pi / 2])          # mid-corridor, 2 m from its closed end, headed into it
    old = _reverse_exit(end, CoverageParams(max_reverse_m=40.0, cleanup_turnabout_exit=False), region, None, 40.0)
    p = CoverageParams(max_reverse_m=40.0, cleanup_turnabout_exit=True)
    new = _reverse_exit(end, p, region, None, 40.0)
    assert old is None                                 # 28 m back to the open ground and a half-turn: over 40 m
    assert new is not None
    rev = _exit_reverse_m(new, p)
    # measured 13.7 m reversed over three reverse legs (cusps), every sample in the corridor
    assert rev < 16.0
    assert new.n_cusps >= 2
    assert region.contains(new.xy)
    last_cusp = int(np.flatnonzero(new.direction[1:] != new.direction[:-1])[-1])
    assert float(np.max(new.xy[:last_cusp + 1, 1])) < 30.0   # turned round inside the corridor, then forwards out
    assert math.cos(new.yaw[-1] - math.pi / 2) > 0.9         # headed out of it
    assert _turn_room(np.array([*new.xy[-1], new.yaw[-1]]), p, region)
    # its count of reversing: every reverse leg plus a sample either side
    seg = np.hypot(*np.diff(new.xy, axis=0).T)
    assert float(np.sum(seg[new.direction[1:] < 0])) <= rev


def test_turnabout_reverses_less_than_backing_out_of_a_7m_lane():
    # test_coverage_corners' dead-end lane (7 m wide off a 40 m square): backing out until a half-turn fits reversed
    # 14.1 m (with its allowance), the multi-point turn measured 7.9 m
    field = unary_union([box(0, 0, 40, 40), box(40, 16.5, 54, 23.5)])
    region = _Region(field.buffer(-1.5).buffer(1e-6))
    end = np.array([50.0, 20.0, 0.0])
    cost = []
    for on in (False, True):
        p = CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0, cleanup_turnabout_exit=on)
        r = _reverse_exit(end, p, region, None, 30.0)
        assert r is not None and region.contains(r.xy)
        assert _turn_room(np.array([*r.xy[-1], r.yaw[-1]]), p, region)
        cost.append(_exit_reverse_m(r, p))
    assert cost[1] < 0.7 * cost[0]


def test_turnabout_respects_its_budget_and_reports_none():
    region = _Region(CORRIDOR)
    end = np.array([2.5, 2.0, -math.pi / 2])
    got = turnabout_exit(end, 4.0, 0.5, lambda s: region.contains(s.xy),
                         lambda q: _turn_room(q, CoverageParams(), region), 8.0)
    assert got is None                                 # the cheapest turn measured 13.7 m


def test_spike_worked_more_with_less_reversing():
    # a 60 x 50 m field with a spike 8 m wide at its base and 26 m long: measured 97.39 % / 24.6 m reversed without,
    # 97.55 % / 15.7 m with the multi-point turns
    # (edge passes held off: with cleanup_edge_in_m the metres the turns save buy the corners' edge passes, 26.1 m
    # reversed with the turns, 28.4 m without)
    field = Polygon([(0, 0), (60, 0), (60, 50), (34, 50), (31, 76), (26, 50), (0, 50)])
    figs = []
    for on in (False, True):
        plan = plan_coverage(field, CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0,
                                                   max_reverse_m=30.0, cleanup_turnabout_exit=on,
                                                   cleanup_edge_in_m=0.0))
        figs.append(plan_work_figures(plan))
    old, new = figs
    assert new["worked_ratio"] > old["worked_ratio"] + 0.001
    assert new["reverse_m"] < old["reverse_m"] - 5.0
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]


def test_with_a_machine_footprint_the_exit_backs_out_as_before():
    # with footprint_m (the tracked mission's machine) no multi-point turns: tracked, one farm_missions tuning field
    # left the field by 0.045 m with them
    region = _Region(CORRIDOR)
    end = np.array([2.5, 2.0, -math.pi / 2])
    fp = (-1.0, 1.0, -0.5, 0.5)
    assert _reverse_exit(end, CoverageParams(max_reverse_m=40.0, footprint_m=fp), region, None, 40.0) is None
    assert _reverse_exit(end, CoverageParams(max_reverse_m=40.0), region, None, 40.0) is not None


def test_a_split_candidate_may_turn_about_under_the_footprint_with_the_whole_machine_inside():
    # cleanup_turnabout_footprint (the reverse split's candidates, behind the plan check): the multi-point turn with the
    # machine checked, the whole machine inside the corridor at every pose
    from agricare.core.planning.corners import Footprint

    region = _Region(CORRIDOR)
    end = np.array([2.5, 2.0, -math.pi / 2])
    rects = (-1.0, 1.0, -0.5, 0.5)
    fp = Footprint(rects, CORRIDOR, margin_m=0.05)
    p = CoverageParams(max_reverse_m=40.0, footprint_m=rects, cleanup_turnabout_footprint=True)
    r = _reverse_exit(end, p, region, fp, 40.0)
    assert r is not None and fp.fits(np.column_stack([r.xy, r.yaw]))
    # a machine too wide to turn about in the 5 m corridor: none
    wide = (-1.0, 1.0, -2.3, 2.3)
    assert _reverse_exit(end, CoverageParams(max_reverse_m=40.0, footprint_m=wide, cleanup_turnabout_footprint=True),
                         region, Footprint(wide, CORRIDOR, margin_m=0.05), 40.0) is None
