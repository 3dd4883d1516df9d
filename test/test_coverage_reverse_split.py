"""One reverse budget for the whole field: the plan reverses at most ``max_total_reverse_m`` in all, and with
``cleanup_reverse_split`` corners and clean-up share it, the plan check vetoing plans the machine would drive out.

The planner's own pieces are replaced by small stand-ins (``_plan_coverage`` returning a plan whose corners reverse
what their budget allows), so the choice logic is tested in milliseconds; the seeded fields of bench/farm_missions.py
measure it (its ``--reverse-split``)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from shapely.geometry import box

from agricare.core.planning import coverage as C

from harness import straight_plan  # noqa: E402

FIELD = box(0.0, 0.0, 60.0, 40.0)
FP = (-0.9, 3.3, -1.1, 1.1, -2.0, -1.2, -3.0, 3.0)


def _params(**kw):
    return C.CoverageParams(width_m=6.0, footprint_m=FP, implement_offset_m=1.6, corner_turns=True,
                            max_total_reverse_m=30.0, **kw)


def _fake_plan(p, corner_rev: float, extra_rev: float, work_m: float):
    """A plan whose corner rings reverse ``corner_rev`` m, with ``extra_rev`` m more reversing elsewhere (a
    connection), and a working straight of ``work_m`` (the trailing bar's worked area grows with it)."""
    return straight_plan(p, FIELD, 5.0, work_m, corner_rev + extra_rev, corner_rev)


def test_plan_over_the_total_budget_is_planned_again_with_the_corners_held_back(monkeypatch):
    # corners take what their budget allows (up to 29.3 m), then a connection onto an inner ring reverses 4.5 m that
    # was never counted (bench/farm_missions.py seed 101: 33.8 m planned for 30)
    calls = []

    def fake(field, p, frame=None, corner_mask=None):
        calls.append(p.max_corner_reverse_m)
        return _fake_plan(p, min(29.3, p.max_corner_reverse_m), 4.5, 40.0)

    monkeypatch.setattr(C, "_plan_coverage", fake)
    p = _params()
    plan = C.plan_coverage(FIELD, p)
    assert C.plan_reverse_m(plan) <= 30.0
    assert len(calls) == 2 and calls[1] <= 29.3 - 3.8
    assert plan.params is p
    # within the budget: planned once
    calls.clear()
    monkeypatch.setattr(C, "_plan_coverage", lambda field, p, frame=None, corner_mask=None: (
        calls.append(1), _fake_plan(p, min(20.0, p.max_corner_reverse_m), 4.5, 40.0))[1])
    assert C.plan_reverse_m(C.plan_coverage(FIELD, p)) == pytest.approx(24.5, abs=0.6)
    assert len(calls) == 1
    # no finite total: nothing re-planned
    calls.clear()
    C.plan_coverage(FIELD, dataclasses.replace(p, max_total_reverse_m=math.inf))
    assert len(calls) == 1


def _split_field(monkeypatch):
    """Corners reverse what they may up to 28 m; every metre they give up works 0.5 m more of the straight."""
    planned = []

    def fake(field, p, frame=None, corner_mask=None):
        corner = min(28.0, p.max_corner_reverse_m)
        planned.append(p.max_corner_reverse_m)
        return _fake_plan(p, corner, 0.0, 30.0 + 0.5 * (28.0 - corner))

    monkeypatch.setattr(C, "_plan_coverage", fake)
    return planned


def test_split_keeps_the_plan_that_works_most_when_the_check_finds_it_inside(monkeypatch):
    planned = _split_field(monkeypatch)
    checked = []
    plan = C.plan_coverage(FIELD, _params(cleanup_reverse_split=(0.67, 0.5)),
                           check=lambda pl: (checked.append(C.corner_reverse_of(pl)), 0.0)[1])
    assert plan.corner_share == 0.5 and C.corner_reverse_of(plan) == pytest.approx(15.0)
    assert checked == [pytest.approx(15.0)] and plan.n_split_checks == 1      # only the winner checked
    assert planned == [math.inf, pytest.approx(20.1), pytest.approx(15.0)]


def test_split_rejects_a_plan_the_check_predicts_further_out_than_the_base_plan(monkeypatch):
    _split_field(monkeypatch)
    # the 0.5 plan leaves the field by 5 cm, the 0.67 plan by 1 cm, the base plan by 2 cm: 0.67 is kept
    out = {28.0: 0.02, 20.1: 0.01, 15.0: 0.05}
    checked = []

    def check(pl):
        c = round(C.corner_reverse_of(pl), 1)
        checked.append(c)
        return out[c]

    plan = C.plan_coverage(FIELD, _params(cleanup_reverse_split=(0.67, 0.5)), check=check)
    assert plan.corner_share == 0.67
    assert checked == [15.0, 28.0, 20.1]          # the winner, the base (once), the next
    # every split plan out, the base inside: the base plan, as without the split
    plan = C.plan_coverage(FIELD, _params(cleanup_reverse_split=(0.67, 0.5)),
                           check=lambda pl: 0.0 if C.corner_reverse_of(pl) > 27.0 else 0.03)
    assert plan.corner_share == 1.0 and C.corner_reverse_of(plan) == pytest.approx(28.0)


def test_split_plans_no_share_that_holds_no_corner_back(monkeypatch):
    planned = []

    def fake(field, p, frame=None, corner_mask=None):
        planned.append(p.max_corner_reverse_m)
        return _fake_plan(p, min(10.0, p.max_corner_reverse_m), 0.0, 30.0)

    monkeypatch.setattr(C, "_plan_coverage", fake)
    plan = C.plan_coverage(FIELD, _params(cleanup_reverse_split=(0.67, 0.5)), check=lambda pl: 1.0 / 0.0)
    assert planned == [math.inf] and plan.corner_share == 1.0


def test_split_shares_are_checked():
    for bad in ((1.5,), (-0.1,), ("0.5",), 0.5):
        with pytest.raises(ValueError, match="cleanup_reverse_split"):
            C.CoverageParams(cleanup_reverse_split=bad)
    assert C.CoverageParams(cleanup_reverse_split=(0.67, 0.5)).cleanup_reverse_split == (0.67, 0.5)


def test_turnabout_exits_under_a_footprint_are_split_candidates_behind_the_check_and_never_unchecked(monkeypatch):
    # a plan with multi-point turn exits (cleanup_turnabout_footprint) works 3 m more of the straight
    planned = []

    def fake(field, p, frame=None, corner_mask=None):
        corner = min(28.0, p.max_corner_reverse_m)
        planned.append((p.max_corner_reverse_m, p.cleanup_turnabout_footprint))
        return _fake_plan(p, corner, 0.0, 30.0 + 0.5 * (28.0 - corner) + (3.0 if p.cleanup_turnabout_footprint else 0))

    monkeypatch.setattr(C, "_plan_coverage", fake)
    p = _params(cleanup_turnabout_footprint=True)
    # no check: no split, and no multi-point turn under the footprint either (never unchecked)
    plan = C.plan_coverage(FIELD, p)
    assert planned == [(math.inf, False)] and not plan.turnabout_footprint and plan.params is p
    # the check finds every plan inside: the 0.5 share with turnabout exits works most and is kept
    planned.clear()
    plan = C.plan_coverage(FIELD, p, check=lambda pl: 0.0)
    assert plan.turnabout_footprint and plan.corner_share == 0.5
    assert sorted((round(c, 1), t) for c, t in planned) == [(15.0, False), (15.0, True), (20.1, False), (20.1, True),
                                                            (math.inf, False), (math.inf, True)]
    # the check predicts every turnabout plan out (and the base inside): the best plan without them (checked: the
    # 0.5 share's turnabout plan, the base, the 0.67 share's turnabout plan, the 0.5 share's plan)
    plan = C.plan_coverage(FIELD, p, check=lambda pl: 0.04 if pl.turnabout_footprint else 0.0)
    assert not plan.turnabout_footprint and plan.corner_share == 0.5 and plan.n_split_checks == 4
