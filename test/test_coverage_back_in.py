"""Dead-end clean-up passes worked backwards-in, forwards-out (``cleanup_back_in``).

A pass driven forwards into a dead end stops with the tractor's front at the boundary, so a trailing implement stops
``implement_offset_m`` (and the body ahead of base_link) short of the tip, and the machine must then back out. Backwards
in, the implement raised and leading, the machine stops with the bar deepest, lowers it at the cusp and works forwards
out: no exit after the pass. It costs the whole pass in reverse, so it is taken only where that reverses less than the
forward pass's exit (a multi-point turn inside the tip is often cheaper than the pass).
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import numpy as np
import pytest

from agricare.core.planning.coverage import CoverageParams, _trail_worked, plan_coverage, plan_work_figures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import farm_missions  # noqa: E402
import field_plans  # noqa: E402


def _cusps_into_work(plan) -> int:
    """Samples where a reverse leg ends and the forward leg after it works at once (a backwards-in pass's cusp, or a
    multi-point exit's forward leg)."""
    d, w = plan.path.direction, plan.path.working
    return int(np.sum((d[:-1] < 0) & (d[1:] > 0) & w[1:]))


def test_a_trailing_implement_reverses_less_for_as_much_worked():
    # bench/farm_missions.py tuning seed 5 (6 m bar 1.6 m behind base_link, worked corners, the standard flags' planner
    # settings and plan check): measured reverse 18.02 -> 14.59 m (22.97 m without cleanup_dead_end_estimate), the
    # trailing bar's share of the field 98.133 -> 98.142 %
    field = farm_missions.random_field(np.random.default_rng(5))
    base = farm_missions.plan_params(True, 30.0, total_reverse_m=30.0, corner_ease_m=50.0, end_margin_m=0.5,
                                     y_turns=True)
    # the corner rings these figures were measured with (with eased arcs inset per side the corners reverse 2.2 m
    # more and no dead-end pass is left to back into: 22.50 m either way)
    base = dataclasses.replace(base, corner_eased_per_side=False)
    # without the last round that spends what is left of the budget (cleanup_counted_fill): it spends the metres
    # backing in saves on more dead-end passes (28.15 m reversed, the trailing bar's share the same 98.142 %)
    base = dataclasses.replace(base, cleanup_counted_fill=False)
    # and the edge passes, whose reverse exits spend what the back-in saves (cleanup_edge_in_m, added later)
    base = dataclasses.replace(base, cleanup_edge_in_m=0.0)
    check = farm_missions.mission_check(field, {**farm_missions.CONTROLLER, **farm_missions.MANOEUVRE,
                                                **farm_missions.CURVE_LAW})
    old, new = (plan_coverage(field, dataclasses.replace(base, cleanup_back_in=on), check=check)
                for on in (False, True))
    f_old, f_new = plan_work_figures(old), plan_work_figures(new)
    assert f_new["reverse_m"] < f_old["reverse_m"] - 3.0
    assert _cusps_into_work(new) == _cusps_into_work(old) + 1
    trail_old = _trail_worked(old.path, old.params).intersection(field).area
    trail_new = _trail_worked(new.path, new.params).intersection(field).area
    assert trail_new >= trail_old
    assert f_new["footprint_outside_poses"] == 0
    assert f_new["rings_worked"] == f_new["rings_total"]


def test_without_an_implement_offset_the_plan_is_the_same():
    # bench/field_plans.py tuning seed 6 (3 m bar at base_link): its dead-end passes leave by exits of 2.0-12.7 m that
    # the same passes reversed whole (4.6-20.3 m) never beat; the same plan on all 60 tuning fields (97.994 % here)
    field = field_plans.seeded_field(6)
    base = CoverageParams(**field_plans.BASE, max_reverse_m=30.0)
    old, new = (plan_work_figures(plan_coverage(field, dataclasses.replace(base, cleanup_back_in=on)))
                for on in (False, True))
    assert new["worked_ratio"] == pytest.approx(old["worked_ratio"], abs=1e-12)
    assert new["reverse_m"] == pytest.approx(old["reverse_m"], abs=1e-9)
