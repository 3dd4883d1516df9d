"""Turn geometry: every word reaches its goal, curvature bounds, Reeds-Shepp never longer than Dubins."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
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


def _check_cc_turn(s, g, r=4.0, sigma=0.1, sample_all=True):
    s, g = np.array(s), np.array(g)
    cands = T.dubins_cc_candidates(s, g, r, sigma)
    assert cands
    lengths = [T.primitives_length(p) for p in cands]
    assert lengths == sorted(lengths)
    assert lengths[0] >= T.dubins_lengths(s, g, r)[0] - 1e-6     # never shorter than the Dubins path
    for i, p in enumerate(cands):                                 # every candidate, not only the shortest
        assert _reaches(s, g, p)
        # forward only; curvature from 0 to 0, continuous from one primitive to the next, <= 1 / r, and changing
        # at most sigma per metre along each primitive
        ks = [0.0] + [k for _, k0, k1 in p for k in (k0, k1)] + [0.0]
        assert np.allclose(ks[0::2], ks[1::2], rtol=0, atol=1e-9)
        assert all(L >= 0 and abs(k1 - k0) <= sigma * L * (1 + 1e-9) + 1e-12 for L, k0, k1 in p)
        assert max(abs(k) for k in ks) <= 1 / r + 1e-9
        if i == 0 or sample_all:                                  # and the sampled path says the same
            step = 0.1
            smp = T.sample_primitives(s, p, step)
            assert np.max(np.abs(smp.kappa)) <= 1 / r + 1e-9
            # curvature continuous: per-sample change bounded by sigma * step (samples are at most a step apart)
            assert np.max(np.abs(np.diff(smp.kappa))) <= sigma * step + 1e-6
            assert abs(smp.kappa[0]) < 1e-9 and abs(smp.kappa[-1]) < 1e-9


# derandomized: CI must give the same answer on every run; a random search found the case below, kept as a test
@settings(max_examples=15, deadline=None, derandomize=True)
@given(pose, pose)
def test_curvature_continuous_turns(s, g):
    _check_cc_turn(s, g)


def test_curvature_continuous_turn_to_a_goal_just_ahead_and_aside():
    # found by a random search: the CC circles are too close for turn-straight-turn, a CCC word loops around
    _check_cc_turn((0.0, 1.0, -1.5), (0.0, 0.0, -1.5))
    # more found by a random search afterwards (goal about 1 m ahead, a few cm aside, heading within 0.03 rad)
    _check_cc_turn((11.5448, 4.5126, -1.711), (11.2967, 3.3582, -1.7212))
    _check_cc_turn((-29.226, 1.6665, 1.7859), (-29.6243, 2.5334, 1.7937))
    _check_cc_turn((-10.5821, 19.7122, -1.5428), (-10.6599, 19.3131, -1.5182))


def test_curvature_continuous_turns_to_every_close_goal():
    # goals within 2 m of the start in any heading: where turn-straight-turn cannot fit, CCC words must
    for x in (-2.0, 0.0, 1.0, 2.0):
        for y in (-0.07, 0.0, 1.5):
            for th in (0.0, 0.02, math.pi / 2, 3.0, -2.0):
                if x == y == th == 0.0:
                    continue
                _check_cc_turn((0.0, 0.0, 0.0), (x, y, th), sample_all=False)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(pose, st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.floats(-math.pi, math.pi)), st.floats(1.0, 10.0),
       st.floats(0.01, 2.0))
def test_curvature_continuous_turns_any_radius_and_sharpness(s, d, r, sigma):
    # CC turns exist when the two clothoids of a turn up to full curvature deflect less than about 4.5 rad
    # (ClothoidTurns.cc_circle_ok): beyond that a clothoid alone winds past a half turn and no turn of small
    # deflection ends on the CC circle, so the family (and the completeness argument) does not apply
    assume(T.ClothoidTurns(r, sigma).cc_circle_ok)
    _check_cc_turn(s, (s[0] + d[0], s[1] + d[1], d[2]), r, sigma)


def test_cc_turns_of_every_deflection_end_on_the_cc_circle():
    for r, sigma in ((4.0, 0.1), (4.0, 1.0), (2.0, 0.3), (10.0, 0.05)):
        cc = T.ClothoidTurns(r, sigma)
        assert cc.cc_circle_ok
        centre = np.array([cc.a_m, cc.rho_m])
        for delta in (0.0, 1e-6, 0.05, 0.3, cc.dmin * 0.999, cc.dmin, 2.0, math.pi, 6.2):
            for side in (1, -1):
                prims = cc.cc_prims(delta, side)
                e = T.end_pose((0.0, 0.0, 0.0), prims)
                c = centre * [1, side]
                # on the CC circle, heading at mu to its tangent (the centre is a_m behind, rho_m to the side)
                assert np.hypot(*(e[:2] - c)) == pytest.approx(cc.r_cc, abs=1e-6)
                h = np.array([math.cos(e[2]), math.sin(e[2])])
                n = np.array([-h[1], h[0]])
                assert np.allclose(e[:2] - cc.a_m * h + side * cc.rho_m * n, c, atol=1e-6)
                assert T.wrap_angle(e[2] - side * delta) == pytest.approx(0.0, abs=1e-9)
                assert T.primitives_length(prims) == pytest.approx(cc.cc_length(delta)[0], rel=1e-9)
                for L, k0, k1 in prims:     # sharpness <= sigma, curvature <= 1 / r
                    assert abs(k1 - k0) <= sigma * L * (1 + 1e-9) and max(abs(k0), abs(k1)) <= 1 / r + 1e-12


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
