"""The clean-up's last round on the reverse budget as the plan counts it (``cleanup_counted_fill``).

Fields from bench/field_plans.py (irregular seeded fields, 3 m width, 4 m turn radius, 9 m headland, 30 m of reverse),
its tuning seeds. The clean-up's rounds charge each reverse leg its length and a sample either end; the plan counts a
leg and the one sample after its cusp (plan_work_figures), so the worst fields ended with 4-7 m of the 30 m unspent.
Re-measured after the rounds, what is left buys one more round of dead-end passes; the passes before it stay.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import numpy as np

from agricare.core.planning.coverage import CoverageParams, _counted_reverse, plan_coverage, plan_work_figures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import field_plans  # noqa: E402


def test_counted_fill_works_more_within_the_budget():
    # measured (seed 214, 0.93 ha): worked 99.383 -> 99.444 % of the field, reverse 15.7 -> 20.0 m
    field = field_plans.seeded_field(214)
    # measured before the edge passes (cleanup_edge_in_m), which spend the same metres
    base = CoverageParams(**field_plans.BASE, max_reverse_m=30.0, cleanup_edge_in_m=0.0)
    old_plan, new_plan = (plan_coverage(field, dataclasses.replace(base, cleanup_counted_fill=on))
                          for on in (False, True))
    old, new = plan_work_figures(old_plan), plan_work_figures(new_plan)
    assert old["worked_ratio"] < 0.9941
    assert new["worked_ratio"] > old["worked_ratio"] + 0.0004
    assert new["reverse_m"] > old["reverse_m"] + 2.0          # the metres the old charge left unspent
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]
    # the fill only appends: the plan before it is the old one (whose exit after its last pass was dropped)
    n = len(old_plan.path) - 1
    assert np.allclose(new_plan.path.xy[:n], old_plan.path.xy[:n])
    # the budget is counted as the figures count it
    assert abs(_counted_reverse(new_plan.path, new_plan.params) - new["reverse_m"]) < 1e-6
