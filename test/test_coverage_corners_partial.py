"""Sharp corners where the full manoeuvre does not fit the reverse limit (corners.corner_ring ``partial_y_turns``) and
the ranking of Y turns that start the next pass further out of the corner (corners._manoeuvre_gain ``b_ref``)."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Point, Polygon, box

from agricare.core.planning import corners as C
from agricare.core.planning.corners import Footprint, corner_ring
from agricare.core.planning.coverage import CoverageParams

from harness import TRACTOR_BODY as BODY, TRACTOR_IMPLEMENT as IMPLEMENT  # noqa: E402
from harness import implement_strips as _implement_strips, outer_pass_frame, sample_poses as _poses  # noqa: E402

#: a 100 x 60 m field with a narrow spike (37 deg at its tip, a 143 deg turn of the outer pass) as the seeded fields
#: of bench/farm_missions.py have (seeds 6, 7, 10, 12)
SPIKE = Polygon([(0, 0), (100, 0), (100, 60), (85, 60), (70, 105), (55, 60), (0, 60)])


def _closed(ring) -> bool:
    ends = [p[0].xy[-1] for p in ring.pieces]
    starts = [p[0].xy[0] for p in ring.pieces[1:] + ring.pieces[:1]]
    return max(np.hypot(*(a - b)) for a, b in zip(ends, starts)) < 0.05


def _spike_ring(**kw):
    fp = Footprint([BODY, IMPLEMENT], SPIKE, margin_m=0.05)
    xy = np.asarray(SPIKE.buffer(-3.1, join_style="mitre").exterior.coords)
    return fp, corner_ring(xy, 6.0, 4.5, fp, 1.6, ease_radius_m=50.0, y_turns=True, loop_back=True, eased_arcs=True,
                           **kw)


def _tip_kind(ring) -> str:
    return next(k for _, _, t, k in ring.vertices if t > 130.0)


def test_a_spike_whose_y_turn_exceeds_the_limit_gets_a_partial_y_turn():
    fp, full = _spike_ring()
    _, part = _spike_ring(partial_y_turns=True)
    assert full is not None and part is not None and _closed(part)
    # the full Y turn reverses 18.7 m or more there (over the 18 m limit of one manoeuvre): no manoeuvre at the tip
    assert "no_fit" in _tip_kind(full)
    # B starts 1 m further out of the tip, 17.86 m reversed
    kind = _tip_kind(part)
    assert kind.startswith("partial_y")
    assert 15.0 < float(kind.split()[-1]) <= 18.0
    assert part.n_manoeuvres == full.n_manoeuvres + 1
    for s, _ in part.pieces:
        assert fp.fits(_poses(s))
    band = SPIKE.difference(SPIKE.buffer(-6.1, join_style="mitre"))
    tip = Point(70, 105).buffer(30).intersection(band)
    w_full = _implement_strips(full).intersection(tip).area
    w_part = _implement_strips(part).intersection(tip).area
    assert w_part > w_full + 50.0                                   # measured 205.9 against 136.0 m^2 of 251.5


def test_a_partial_y_turn_is_ranked_within_the_budget():
    # with a 30 m budget the spike's partial Y turn (17.86 m) is bought and the right angles that work least per metre
    # fall back to eased arcs; all within the budget
    _, part = _spike_ring(partial_y_turns=True, depth_gain=True, budget_m=30.0)
    assert part is not None and _closed(part)
    assert _tip_kind(part).startswith("partial_y")
    assert part.reverse_m <= 30.0 + 1e-6                            # measured 23.98 m
    assert sum("eased_arc" in k for *_, k in part.vertices) >= 2    # measured 3 of the 4 right angles


def test_a_y_turn_that_starts_the_next_pass_further_out_is_charged_the_strip_it_leaves():
    # the outer pass of a rectangle, a right-angle corner whose fallback is an eased arc (nothing reversed): the Y turn
    # whose pass along B starts 4 m further out leaves a 6 m x 4 m strip more, which the ranking now charges it
    field = box(0, 0, 100, 60)
    fp = Footprint([BODY, IMPLEMENT], field, margin_m=0.05)
    v, u, h, L = outer_pass_frame(field)
    i, d = 1, math.pi / 2
    args = (i, v, u, h, L, d, 4.5, 1.6, 6.0, fp, 0.5, 0.0, 18.0, 0.0, 50.0)
    full = C._y_manoeuvre(*args)
    part = C._y_manoeuvre(*args, b_extra_m=4.0)
    assert full is not None and part is not None
    assert part[1] < full[1] - 2.0                                  # measured 3.89 against 6.12 m reversed
    assert abs(part[3] - full[3] - 4.0) < 1e-6

    def gap(k):
        return C._gap(v[k], u[k - 1], u[k], L[k - 1], L[k], d, 4.5, fp, 0.5, 50.0)

    def eased(k):
        return C._eased_arc(v[k], u[k - 1], u[k], L[k - 1], L[k], d, 4.5, fp, 0.5, 50.0)

    assert eased(i) is not None
    b0 = C._pass_ends(i, v, u, h, L, d, 1.6, 6.0, fp)[1]

    def gain(m, b_ref=None, eased_at=eased):
        return C._manoeuvre_gain(i, v, u, h, L, d, 4.5, 6.0, fp, 0.5, m, gap, eased_at, b_ref)[0]

    # without b_ref both score the same against the eased arc (15.8 m^2), the cheaper one bought first
    assert abs(gain(full) - gain(part)) < 1e-9
    # with it the strip is charged: 6 m wide, 4 m long
    assert abs(gain(full, b0) - gain(full)) < 1e-9
    assert abs(gain(full, b0) - gain(part, b0) - 24.0) < 1e-6
    # against a gap the cut-back counted it already: b_ref changes nothing there
    assert abs(gain(part, b0, None) - gain(part, None, None)) < 1e-9
    assert abs(gain(full, None, None) - gain(part, None, None) - 24.0) < 1e-6    # measured 96 against 72 m^2


def test_the_parameters_are_on_by_default():
    p = CoverageParams(width_m=6.0, turn_radius_m=4.5)
    assert p.corner_partial_y_turns is True and p.corner_depth_gain is True
