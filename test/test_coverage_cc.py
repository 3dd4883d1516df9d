"""Fast curvature-continuous planning: turn-length estimate, turn cache, route descent, CC plans of A and B."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import box

from agricare.core.planning import turns as T
from agricare.core.planning.coverage import (KIND_TURN, CoverageParams, TurnCache, path_inside_fraction,
                                             plan_coverage)
from agricare.core.planning.routing import improve_route, route_cost, search_time_s

R, SIGMA = 4.0, 0.1
F2C_CC_M = {"A": 1492.5, "B": 8762.6}
FIELDS = {"A": box(0, 0, 100, 60), "B": affinity.rotate(box(0, 0, 250, 120), 30, origin=(0, 0))}


def _exact(goal, start=(0.0, 0.0, 0.0)):
    c = T.dubins_cc_candidates(np.array(start), np.array(goal), R, SIGMA)
    return T.primitives_length(c[0]) if c else math.inf


@pytest.mark.parametrize("dy", [3, -3, 6, 9, -9, 12, 18, 30])
def test_cc_estimate_is_exact_for_aligned_u_turns(dy):
    # swath ends side by side: the estimate is the exact solver's length (CC circles or one wide turn)
    est = T.dubins_cc_lengths(np.zeros(3), [0.0, dy, math.pi], R, SIGMA)[0]
    assert est == pytest.approx(_exact([0.0, dy, math.pi]), abs=0.01)


def test_cc_estimate_is_tight_for_staggered_swath_ends():
    offsets = itertools.product((-10, -4, 0, 2, 6, 10), (3, 6, 9, 15, -6, -21))
    goals = np.array([[dx, dy, math.pi] for dx, dy in offsets])
    est = T.dubins_cc_lengths(np.zeros_like(goals), goals, R, SIGMA)
    assert est.shape == (len(goals),)
    exact = np.array([_exact(g) for g in goals])
    assert np.all(np.abs(est - exact) <= 0.05 * exact)


def test_cc_estimate_finds_the_word_the_exact_solver_finds_close_ahead():
    s, g = np.array([-1.0, 0.0, 0.125]), np.zeros(3)
    one = T.dubins_cc_lengths(s, g, R, SIGMA)
    assert np.isfinite(one[0]) and one[0] == pytest.approx(_exact(g, start=s), rel=1e-9)


# derandomized: the same examples in every CI run (a random search found the case above, kept as its own test)
@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.tuples(st.floats(-40, 40), st.floats(-40, 40), st.floats(-math.pi, math.pi)),
       st.tuples(st.floats(-40, 40), st.floats(-40, 40), st.floats(-math.pi, math.pi)))
def test_cc_estimate_vectorised_and_finite(s, g):
    one = T.dubins_cc_lengths(np.array(s), np.array(g), R, SIGMA)
    many = T.dubins_cc_lengths(np.array([s, s]), np.array([g, g]), R, SIGMA)
    assert one.shape == (1,) and not np.isnan(one[0]) and one[0] > 0
    assert many[0] == pytest.approx(one[0]) and many[1] == pytest.approx(one[0])
    # never shorter than the Dubins path with the same radius (curvature-continuous turns are longer)
    assert one[0] >= T.dubins_lengths(np.array(s), np.array(g), R)[0] - 1e-6
    assert np.isfinite(one[0])                             # the CC-circle words always include a path


def test_cc_estimate_is_exact_where_only_turn_turn_turn_fits():
    # goal 1 m ahead, 7 cm aside, same heading: no turn-straight-turn; the estimate is the CCC word's exact length
    s, g = np.array([0.0, 1.0, -1.5]), np.array([0.0, 0.0, -1.5])
    est = T.dubins_cc_lengths(s, g, R, SIGMA)[0]
    assert est == pytest.approx(_exact(g, start=s), rel=1e-9)
    assert est < 2.2 * T.dubins_lengths(s, g, R)[0]        # measured: 54.42 m against Dubins 26.13 m


def test_sampled_clothoid_ends_where_integration_ends():
    s = np.array([3.0, -2.0, 0.7])
    for prims in ([(2.5, 0.0, 0.25), (3.0, 0.25, 0.25), (2.5, 0.25, 0.0)], [(1.3, 0.0, -0.13), (1.3, -0.13, 0.0)]):
        smp = T.sample_primitives(s, prims, 0.5)
        e = T.end_pose(s, prims)
        assert np.hypot(*(smp.xy[-1] - e[:2])) < 1e-6
        assert abs(T.wrap_angle(smp.yaw[-1] - e[2])) < 1e-9
        assert np.max(np.hypot(*np.diff(smp.xy, axis=0).T)) <= 0.5 + 1e-9


def test_turn_cache_solves_a_repeated_geometry_once():
    cache = TurnCache(CoverageParams(turn_type="dubins_cc"))
    starts = [np.array([x, y, 0.3]) for x, y in ((0, 0), (17.5, -4.0), (-120.0, 55.0))]
    for s in starts:
        c, sn = math.cos(0.3), math.sin(0.3)
        g = s + np.array([c * 1.0 - sn * 9.0, sn * 1.0 + c * 9.0, math.pi])
        cands = cache.candidates(s, g, "dubins_cc")
        assert cands
        e = T.end_pose(s, cands[0])
        assert np.hypot(*(e[:2] - g[:2])) < 1e-3 and abs(T.wrap_angle(e[2] - g[2])) < 1e-4
    assert cache.n_solved == 1
    assert cache.length(starts[0], starts[0] + np.array([0.0, 30.0, math.pi]), "dubins_cc") > 0
    assert cache.n_solved == 2


def _random_problem(rng, n):
    cost = rng.uniform(1.0, 20.0, (2 * n, 2 * n))
    seed = [(int(i), bool(rng.integers(2))) for i in rng.permutation(n)]
    return cost, seed


@pytest.mark.parametrize("seed", range(6))
def test_improve_route_local_optimum(seed):
    rng = np.random.default_rng(seed)
    cost, start = _random_problem(rng, int(rng.integers(2, 9)))
    n = cost.shape[0] // 2
    out = improve_route(cost, start)
    assert sorted(i for i, _ in out) == list(range(n))
    best = route_cost(out, cost)
    assert best <= route_cost(start, cost) + 1e-9
    # no reversal of a run (with direction flips) and no single-swath move shortens it
    for a in range(n):
        for b in range(a, n):
            alt = out[:a] + [(i, not r) for i, r in out[a:b + 1][::-1]] + out[b + 1:]
            assert route_cost(alt, cost) >= best - 1e-6
        rest = out[:a] + out[a + 1:]
        for pos in range(n):
            for flip in (False, True):
                i, r = out[a]
                alt = rest[:pos] + [(i, r ^ flip)] + rest[pos:]
                assert route_cost(alt, cost) >= best - 1e-6


def test_improve_route_finds_the_skip_pattern_on_parallel_swaths():
    # 8 parallel swaths 3 m apart, turn cost from the lateral jump: neighbours cost an omega turn
    n = 8
    cost = np.full((2 * n, 2 * n), 1e7)
    for a, b in itertools.product(range(2 * n), repeat=2):
        if a // 2 != b // 2 and a % 2 != b % 2:          # U-turn: reverse direction
            jump = 3.0 * abs(a // 2 - b // 2)
            cost[a, b] = 25.6 if jump < 8 else math.pi * 4 + (jump - 8)
    start = [(i, bool(i % 2)) for i in range(n)]       # boustrophedon: 7 omega turns
    out = improve_route(cost, start)
    assert route_cost(out, cost) < route_cost(start, cost) - 50


def test_search_time_scales_and_is_capped():
    assert search_time_s(28, 0.08) < 0.08
    assert search_time_s(2000, 0.08) == 0.08
    assert search_time_s(2, 0.08) == pytest.approx(0.01)
    assert search_time_s(10, 0.005) == 0.005


@pytest.mark.parametrize("name", ["A", "B"])
def test_cc_plan_beats_reference_and_is_drivable(name):
    p = CoverageParams(width_m=3, turn_radius_m=R, headland_width_m=9, robot_width_m=3, turn_type="dubins_cc",
                       max_curvature_rate_1pm2=SIGMA)
    plan = plan_coverage(FIELDS[name], p)
    assert plan.lengths_m["total"] <= 0.97 * F2C_CC_M[name]
    assert plan.coverage_ratio >= 0.995
    assert path_inside_fraction(plan) == 1.0
    assert plan.n_fallback_turns == 0
    path = plan.path
    turn = path.kind == KIND_TURN
    assert np.max(np.abs(path.curvature[turn])) <= 1.0 / R + 1e-9
    # curvature rate limit within turns and across the swath/turn joins (curvature continuous with the
    # straight swaths); ds is the chord, not the arc
    pair = turn[1:] | turn[:-1]
    ds = np.hypot(*np.diff(path.xy, axis=0).T)[pair]
    dk = np.abs(np.diff(path.curvature))[pair]
    assert np.all(dk <= SIGMA * ds * 1.002 + 1e-6)
