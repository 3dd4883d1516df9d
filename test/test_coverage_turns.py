"""Turn geometry: every word reaches its goal, curvature bounds, Reeds-Shepp never longer than Dubins."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agricare.core.planning import turns as T

pose = st.tuples(st.floats(-30, 30), st.floats(-30, 30), st.floats(-math.pi, math.pi))


def _reaches(start, goal, prims, tol=1e-3):
    e = T.end_pose(start, prims)
    return math.hypot(e[0] - goal[0], e[1] - goal[1]) < tol and abs(T.wrap_angle(e[2] - goal[2])) < 1e-3


@settings(max_examples=40, deadline=None)
@given(pose, pose, st.floats(1.0, 10.0))
def test_dubins_and_reeds_shepp_reach_goal(s, g, r):
    s, g = np.array(s), np.array(g)
    d = T.dubins_candidates(s, g, r)
    assert d and all(_reaches(s, g, p) for p in d)
    rs = T.reeds_shepp_candidates(s, g, r)
    assert rs and all(_reaches(s, g, p) for p in rs)
    assert T.primitives_length(rs[0]) <= T.primitives_length(d[0]) + 1e-6
    for p in d + rs:
        assert all(abs(k0) <= 1 / r + 1e-9 and abs(k1) <= 1 / r + 1e-9 for _, k0, k1 in p)
    assert all(L >= -1e-9 for p in d for L, _, _ in p)          # Dubins never reverses


def test_vectorised_dubins_matches_scalar():
    rng = np.random.default_rng(1)
    s = rng.uniform(-20, 20, (50, 3))
    g = rng.uniform(-20, 20, (50, 3))
    v = T.dubins_lengths(s, g, 4.0)
    for i in range(50):
        assert v[i] == pytest.approx(T.primitives_length(T.dubins_path(s[i], g[i], 4.0)), abs=1e-9)


def test_known_u_turn_lengths():
    s = np.zeros(3)
    # swaths 9 m apart, radius 4: half circle + 1 m straight
    assert T.primitives_length(T.dubins_path(s, [0, 9, math.pi], 4.0)) == pytest.approx(4 * math.pi + 1)
    # adjacent swaths 3 m apart need the omega turn (the figure Fields2Cover reports per turn)
    assert T.primitives_length(T.dubins_path(s, [0, 3, math.pi], 4.0)) == pytest.approx(25.5705, abs=1e-3)


def _check_cc_turn(s, g):
    s, g = np.array(s), np.array(g)
    r, sigma = 4.0, 0.1
    cands = T.dubins_cc_candidates(s, g, r, sigma)
    assert cands
    p = cands[0]
    assert _reaches(s, g, p)
    smp = T.sample_primitives(s, p, 0.1)
    assert np.max(np.abs(smp.kappa)) <= 1 / r + 1e-9
    # curvature continuous: per-sample change bounded by sigma * step
    assert np.max(np.abs(np.diff(smp.kappa))) <= sigma * 0.1 + 1e-6
    assert abs(smp.kappa[0]) < 1e-9 and abs(smp.kappa[-1]) < 1e-9


# derandomized: CI must give the same answer on every run; a random search found the case below, kept as a test
@settings(max_examples=15, deadline=None, derandomize=True)
@given(pose, pose)
def test_curvature_continuous_turns(s, g):
    _check_cc_turn(s, g)


def test_curvature_continuous_turn_to_a_goal_just_ahead_and_aside():
    # found by a random search: the CC circles are too close for turn-straight-turn, a CCC word loops around
    _check_cc_turn((0.0, 1.0, -1.5), (0.0, 0.0, -1.5))


def test_elementary_turn_closed_form_matches_integration():
    for d in (0.1, 0.5, 1.0, 2.0, 3.0, 5.5):
        for kp in (0.05, 0.25):
            e = T.elementary_end([d], kp, 0.1)[0]
            n = T.end_pose((0, 0, 0), T.elementary_prims(d, 1, kp, 0.1))
            assert np.allclose(e[:2], n[:2], atol=1e-5)


def test_sampling_step_and_direction():
    s = np.zeros(3)
    p = T.reeds_shepp_path(s, [0, 3, math.pi], 4.0)
    smp = T.sample_primitives(s, p, 0.5)
    steps = np.hypot(*np.diff(smp.xy, axis=0).T)
    assert steps.max() <= 0.5 + 1e-9
    assert set(np.unique(smp.direction)) <= {-1, 1}
    assert not np.any(np.isnan(smp.xy))
