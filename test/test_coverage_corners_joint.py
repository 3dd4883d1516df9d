"""Corner rings that share one reverse budget where they work most (corners.joint_budgets, ``corner_joint_budget``) and
corner rings built where a short edge ends at a concave corner (``concave_gaps``, ``corner_concave_gaps``) or where an
edge's straight cuts a shallow dip of the pass's line (``inset_edges``, ``corner_inset_edges``)."""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
import pytest
from shapely.geometry import Polygon

from agricare.core.planning.corners import corner_ring, joint_budgets

from harness import sample_poses as _poses  # noqa: E402


def _ramp(per_m: float, upto_m: float, budget_m: float, step_m: float = 0.1) -> np.ndarray:
    """A ring whose corners work ``per_m`` m^2 per metre reversed up to ``upto_m`` metres."""
    b = np.arange(int(round(budget_m / step_m)) + 1) * step_m
    return per_m * np.minimum(b, upto_m)


def _step(gain: float, cost_m: float, budget_m: float, step_m: float = 0.1) -> np.ndarray:
    """A ring with one corner that works ``gain`` m^2 for ``cost_m`` metres reversed."""
    b = np.arange(int(round(budget_m / step_m)) + 1) * step_m
    return np.where(b >= cost_m - 1e-9, gain, 0.0)


def test_the_budget_goes_where_the_rings_work_most_in_all():
    # the outer ring (first) would take all 10 m at 10 m^2 a metre (100 m^2) and leave the inner ring's 1.5 m loop-back
    # (50 m^2) nothing; shared, the outer ring gives up 1.5 m (15 m^2) for it
    outer, inner = _ramp(10.0, 20.0, 10.0), _step(50.0, 1.5, 10.0)
    shares = joint_budgets([outer, inner], 10.0)
    assert shares == pytest.approx([8.5, 1.5])
    # an inner ring that works less per metre than the outer one gets nothing
    assert joint_budgets([outer, _step(10.0, 1.5, 10.0)], 10.0) == pytest.approx([10.0, 0.0])


def test_a_ring_that_needs_budget_gets_it_first_and_no_split_without_every_curve():
    # a ring that cannot be driven below 2 m (a manoeuvre without a fallback: -inf below its cost)
    needs = np.where(np.arange(101) * 0.1 >= 2.0 - 1e-9, 0.0, -np.inf)
    shares = joint_budgets([_ramp(10.0, 20.0, 10.0), needs], 10.0)
    assert shares == pytest.approx([8.0, 2.0])
    assert joint_budgets([_ramp(10.0, 20.0, 10.0), np.full(101, -np.inf)], 10.0) is None
    assert joint_budgets([_ramp(10.0, 20.0, 10.0), None], 10.0) is None


def _bench_pass(seed: int, k: int):
    """The k-th headland pass's outline of bench/farm_missions.py's seeded field ``seed`` (its planner settings) and the
    machine's footprint, as the planner builds its corner ring."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    import farm_missions as fm
    from agricare.core.planning.coverage import _machine
    from agricare.core.planning.headland import headland_offsets

    field = fm.random_field(np.random.default_rng(seed))
    p = fm.plan_params(True, 30.0, math.inf, 30.0, 50.0, 0.5, True)
    fp = _machine(p, field, 0.05)
    d = headland_offsets(p.headland_width_m, p.width_m, p.body_width_m)[k]
    g = field.buffer(-d, join_style="mitre")
    poly = g if isinstance(g, Polygon) else max(g.geoms, key=lambda q: q.area)
    return np.asarray(poly.exterior.coords), p, fp


def _ring_only_with(seed: int, **option):
    """The outer pass of bench seed ``seed``: asserts it builds no corner ring at simplification 0.3, 1 or 2 m, nor at
    0.3 m with only the options before the last of ``option``; returns its ring with all of ``option`` (0.3 m, 30 m
    budget) and the machine's footprint."""
    xy, p, fp = _bench_pass(seed, 0)
    kw = dict(min_leg_m=p.corner_min_leg_m, ease_radius_m=p.corner_ease_radius_m, y_turns=True, loop_back=True,
              eased_arcs=True, step_m=p.sample_step_m, min_angle_rad=math.radians(p.corner_min_angle_deg))

    def ring(simplify_m, **opt):
        return corner_ring(xy, p.width_m, p.turn_radius_m, fp, p.implement_offset_m, simplify_m=simplify_m,
                           budget_m=30.0, **kw, **opt)

    for simplify_m in (0.3, 1.0, 2.0):
        assert ring(simplify_m) is None
    names = list(option)
    for k in range(1, len(names)):
        assert ring(0.3, **{n: option[n] for n in names[:k]}) is None
    return ring(0.3, **option), fp


def _assert_closed_fitting_within_budget(ring, fp):
    assert ring is not None
    ends = [q[0].xy[-1] for q in ring.pieces]
    starts = [q[0].xy[0] for q in ring.pieces[1:] + ring.pieces[:1]]
    assert max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05
    for s, _ in ring.pieces:
        assert fp.fits(_poses(s))
    assert ring.reverse_m <= 30.0 + 1e-6


def test_a_short_edge_at_a_concave_corner_no_longer_leaves_the_pass_without_worked_corners():
    # bench/farm_missions.py seed 10, outer pass: a 17.1 m edge between a -77 deg concave corner (its working arc's
    # tangent 3.6 m) and a 145 deg sharp corner (the pass along it ends ~14 m before the vertex): no corner ring at any
    # simplification, so the pass was the rounded ring with no corner worked. With the concave corner looped: a ring
    ring, fp = _ring_only_with(10, concave_gaps=True)
    _assert_closed_fitting_within_budget(ring, fp)
    kinds = {round(t): kind for _, _, t, kind in ring.vertices}
    assert kinds[-77].startswith("gap")                                 # the concave corner looped
    assert ring.n_manoeuvres >= 3                                       # measured: sharp corners worked


def test_an_edge_that_cuts_a_dip_of_the_pass_is_moved_in_and_the_pass_gets_its_corners():
    # bench/farm_missions.py seed 2, outer pass: the straight of a 49 m edge takes the machine 0.21 m out of the field
    # (a shallow dip of the pass's own line that every simplification cuts): no corner ring at 0.3, 1 or 2 m, nor with
    # concave gaps. With that edge moved in by as much: a closed ring that fits, within the budget
    ring, fp = _ring_only_with(2, concave_gaps=True, inset_edges=True)
    _assert_closed_fitting_within_budget(ring, fp)
    assert ring.n_manoeuvres >= 7                      # measured: 8 of its 9 corners by a manoeuvre (29.3 m)


def test_inset_edges_moves_only_the_edge_that_leaves_and_keeps_the_others():
    # a 60 x 40 m rectangle whose bottom edge's straight leaves a field with a 0.3 m dip in the middle of that side
    from agricare.core.planning.corners import Footprint, _inset_edges

    field = Polygon([(-10, -10), (30, -10), (30.5, -9.7), (40, -9.7), (40.5, -10), (80, -10), (80, 60), (-10, 60)])
    fp = Footprint([(-0.5, 0.5, -0.5, 0.5)], field, margin_m=0.0)     # a 1 m square machine on base_link
    v = np.array([[0.0, -9.5], [70.0, -9.5], [70.0, 50.0], [0.0, 50.0]])
    new = _inset_edges(v, fp, 0.5, 5.0)
    assert new[0, 1] == pytest.approx(-9.19, abs=0.011) and new[1, 1] == pytest.approx(-9.19, abs=0.011)
    assert new[0, 0] == pytest.approx(0.0) and new[1, 0] == pytest.approx(70.0)
    assert np.allclose(new[2:], v[2:])
    assert np.array_equal(_inset_edges(v + [0.0, 0.5], fp, 0.5, 5.0), v + [0.0, 0.5])   # nothing leaves: unchanged
