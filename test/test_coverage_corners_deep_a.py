"""A Y turn whose pass along A works on as far into the corner as the machine fits (corners._y_manoeuvre ``deep_a``)
and the ranking's credit for what its bar works more there (corners._a_band, corners._manoeuvre_gain ``a_ref``)."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Polygon

from agricare.core.planning import corners as C
from agricare.core.planning.corners import Footprint
from agricare.core.planning.coverage import CoverageParams

from harness import TRACTOR_BODY as BODY, TRACTOR_IMPLEMENT as IMPLEMENT  # noqa: E402
from harness import outer_pass_frame, sample_poses as _poses  # noqa: E402


def _corner(turn_deg: float):
    """The outer pass of a field whose first corner turns ``turn_deg`` (A along +x, B leaving at that angle), as the
    seeded fields of bench/farm_missions.py have them: ``(fp, v, u, h, L, i, d)``."""
    ub = (math.cos(math.radians(turn_deg)), math.sin(math.radians(turn_deg)))
    p2 = (80 + 60 * ub[0], 60 * ub[1])
    field = Polygon([(0, 0), (80, 0), p2, (0, p2[1])])
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    v, u, h, L = outer_pass_frame(field)
    i = int(np.argmin(np.hypot(v[:, 0] - 80.0, v[:, 1])))
    return fp, v, u, h, L, i, math.radians(turn_deg)


def _a_end(m) -> float:
    return m[4] if len(m) > 4 else m[2]


def test_a_deep_a_y_turn_works_a_on_into_the_corner_and_fits():
    for turn_deg, lo in ((100.0, 0.5), (110.0, 0.5), (125.0, 1.0)):
        fp, v, u, h, L, i, d = _corner(turn_deg)
        args = (i, v, u, h, L, d, 4.5, 1.6, 6.0, fp, 0.5, 1.5, 18.0, 0.0, 50.0)
        plain = C._y_manoeuvre(*args)
        deep = C._y_manoeuvre(*args, deep_a=True)
        assert plain is not None and deep is not None
        # measured 0.75 m deeper at 100 and 110 deg, 1.5 m at 125 deg; B starts where it did
        assert _a_end(deep) > _a_end(plain) + lo
        assert abs(deep[3] - plain[3]) < 1e-9
        # the machine backs the extra length along the worked line first: reverses about as much more
        assert deep[1] - plain[1] < _a_end(deep) - _a_end(plain) + 0.3        # measured 0.75 / 0.75 / 1.52 m more
        for s, _ in deep[0]:
            assert fp.fits(_poses(s)) and C._fits_stops(fp, s)
        # A's end is the deepest that fits with a Y turn from there: the pass ends where the whole machine fits
        end = np.array([*(v[i] + _a_end(deep) * u[i - 1]), h[i - 1]])
        assert fp.fits([end])


def test_the_credit_is_what_the_bar_works_more_and_b_does_not():
    # at a 110 deg corner most of the extra length of A's strip lies in B's strip: 0.66 of 4.5 m^2 for 0.75 m
    d = math.radians(110.0)
    assert C._a_band(d, -1.59, -1.59, -0.09, 1.6, 6.0) == 0.0
    band = C._a_band(d, -1.59, -0.84, -0.09, 1.6, 6.0)
    assert 0.3 < band < 1.2                                                      # measured 0.66 m^2
    # B starting far out of the corner: the whole 6 m x 0.75 m
    assert abs(C._a_band(d, -1.59, -0.84, 30.0, 1.6, 6.0) - 4.5) < 1e-6
    fp, v, u, h, L, i, d = _corner(110.0)
    args = (i, v, u, h, L, d, 4.5, 1.6, 6.0, fp, 0.5, 1.5, 18.0, 0.0, 50.0)
    plain, deep = C._y_manoeuvre(*args), C._y_manoeuvre(*args, deep_a=True)
    a0, b0 = C._pass_ends(i, v, u, h, L, d, 1.6, 6.0, fp)

    def gap(k):
        return C._gap(v[k], u[k - 1], u[k], L[k - 1], L[k], d, 4.5, fp, 0.5, 50.0)

    def eased(k):
        return C._eased_arc(v[k], u[k - 1], u[k], L[k - 1], L[k], d, 4.5, fp, 0.5, 50.0, per_side=True)

    def gain(m, a_ref=None):
        return C._manoeuvre_gain(i, v, u, h, L, d, 4.5, 6.0, fp, 0.5, m, gap, eased, b0, a_ref, 1.6)[0]

    # without a_ref both score the same against the eased arc; with it the deep one gets its band, the plain one none
    assert abs(gain(plain) - gain(deep)) < 1e-9
    assert abs(gain(plain, a0) - gain(plain)) < 1e-9
    assert abs(gain(deep, a0) - gain(deep) - C._a_band(d, a0, _a_end(deep), deep[3], 1.6, 6.0)) < 1e-9


def test_the_parameter_is_off_by_default():
    assert CoverageParams(width_m=6.0, turn_radius_m=4.5).corner_deep_a is False
