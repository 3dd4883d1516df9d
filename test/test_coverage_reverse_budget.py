"""The field's reverse budget: swath turns take forward detours, clean-up passes spend the budget where it works most.

Fields from bench/field_plans.py (irregular seeded fields, 3 m width, 4 m turn radius, 9 m headland), its tuning seeds.
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
from shapely.geometry import Polygon

from agricare.core.planning.cleanup import patch_pass_options, patch_passes
from agricare.core.planning.coverage import (KIND_TURN, CoverageParams, path_inside_fraction, plan_coverage,
                                             plan_work_figures)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import field_plans  # noqa: E402


def _turn_reverse_m(plan) -> float:
    p = plan.path
    seg = np.hypot(*np.diff(p.xy, axis=0).T)
    return float(np.sum(seg[(p.direction[1:] < 0) & (p.kind[1:] == KIND_TURN)]))


def test_swath_turns_take_forward_detours_instead_of_reversing():
    # seed 0: swaths ending on slanted edges; the fishtail turns (Reeds-Shepp words reversing up to 2 R, accepted
    # before) reversed 16 m of the field's 30 m, which the clean-up passes then lacked for the corner tips
    field = field_plans.seeded_field(0)
    base = dict(field_plans.BASE, plan_cleanup=False, plan_headland=False, optimizer_time_limit_s=0.0)
    old = plan_coverage(field, CoverageParams(**base, turn_reverse_detour_m=8.0, turn_detour_radii=8.0))
    new = plan_coverage(field, CoverageParams(**base))
    assert _turn_reverse_m(old) > 8.0
    assert _turn_reverse_m(new) == 0.0
    assert path_inside_fraction(new) == 1.0
    assert len(new.swaths) == len(old.swaths)


def test_turn_detour_params_are_checked():
    for name in ("turn_reverse_detour_m", "turn_detour_radii"):
        try:
            CoverageParams(**{name: -1.0})
        except ValueError as exc:
            assert name in str(exc)
        else:
            raise AssertionError(f"{name} < 0 accepted")


def test_pass_options_cover_every_direction_of_a_tip():
    # a 40 deg corner tip: the best direction on paper is across the tip; the options also hold passes along
    # each of its two edges (driven in and backed out)
    tip = Polygon([(0, 0), (20, 0), (20 * math.cos(math.radians(40)), 20 * math.sin(math.radians(40)))])
    region = tip.buffer(30)                      # the machine's centre may go anywhere near (no edge clips the passes)
    edges = tip.exterior
    best = patch_passes(tip, region, 3.0, 1.0, boundary=edges)
    opts = patch_pass_options(tip, region, 3.0, 1.0, boundary=edges)
    dirs = {round(math.degrees(math.atan2(q[1] - a[1], q[0] - a[0])) % 180.0) for a, q in opts}
    assert len(opts) > len(best)
    assert any(abs(d - 0) <= 1 or abs(d - 180) <= 1 for d in dirs)          # along the bottom edge
    assert any(abs(d - 40) <= 1 for d in dirs)                               # along the upper edge
    assert all(tuple(map(tuple, b)) in {tuple(map(tuple, o)) for o in opts} for b in best)


def test_reverse_by_gain_works_more_within_the_budget():
    # seed 5: the dead-end clean-up passes by area worked per metre reversed (over passes in every direction of the
    # leftover patches) against by pass length per metre reversed
    field = field_plans.seeded_field(5)
    base = dict(field_plans.BASE, max_reverse_m=30.0)
    old = plan_work_figures(plan_coverage(field, CoverageParams(**base, cleanup_reverse_by_gain=False)))
    new = plan_work_figures(plan_coverage(field, CoverageParams(**base)))
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]
    assert new["worked_ratio"] > old["worked_ratio"] + 0.0005
