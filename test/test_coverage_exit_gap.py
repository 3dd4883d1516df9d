"""Clean-up passes on irregular fields: a dead-end pass's multi-point-turn exit works on its forward legs
(``CoverageParams.cleanup_exit_working``), and passes thread the narrow gap between an obstacle and the field's edge
(``cleanup_gap_passes_m``, :func:`agricare.core.planning.cleanup.gap_lines`)."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from agricare.core.planning import turns as T
from agricare.core.planning.cleanup import gap_lines
from agricare.core.planning.coverage import (KIND_TRANSIT, CoverageParams, _exit_working, plan_coverage,
                                             plan_work_figures)

BASE = dict(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0, max_reverse_m=30.0)
# test_cleanup_turnabout's field: a spike 8 m wide at its base and 26 m long off a 60 x 50 m rectangle
SPIKE = Polygon([(0, 0), (60, 0), (60, 50), (34, 50), (31, 76), (26, 50), (0, 50)])


def test_exit_works_only_where_it_drives_forward_and_not_at_a_cusp():
    # a reverse arc, then a forward arc and a straight: what a multi-point turn out of a tip looks like
    s = T.sample_primitives((0.0, 0.0, 0.0), [(-3.0, 0.25, 0.25), (3.0, -0.25, -0.25), (4.0, 0.0, 0.0)], 0.5)
    w = _exit_working(s)
    fw = s.direction > 0
    assert w.any()
    assert not w[0]
    assert not np.any(w & ~fw)                      # never reversing
    assert not np.any(w[1:] & ~fw[:-1])             # nor on the segment leaving the cusp
    assert w[-1]


def test_spike_exit_forward_legs_work_the_tip():
    figs, paths = [], []
    for on in (False, True):
        plan = plan_coverage(SPIKE, CoverageParams(**BASE, cleanup_exit_working=on))
        figs.append(plan_work_figures(plan))
        paths.append(plan.path)
    old, new = figs
    p = paths[1]
    worked_transit = (p.kind == KIND_TRANSIT) & p.working
    assert not paths[0].working[paths[0].kind == KIND_TRANSIT].any()
    assert worked_transit.any()                     # the exits' forward legs are lowered
    assert not np.any(p.working & (p.direction < 0))
    # measured 97.55 -> 97.75 % of the field, the same 15.7 m reversed
    assert new["worked_ratio"] > old["worked_ratio"] + 1e-3
    assert new["reverse_m"] <= old["reverse_m"] + 1e-6
    assert new["reverse_m"] <= 30.0 and new["rings_worked"] == new["rings_total"]


def _gap_field(gap_m):
    """A 80 x 60 m field with a round pond (radius 4 m) whose lowest point is ``gap_m`` above the bottom edge."""
    pond = Point(40.0, 4.0 + gap_m).buffer(4.0, quad_segs=4)     # a vertex points straight down
    return Polygon(box(0, 0, 80, 60).exterior.coords, [pond.exterior.coords])


def test_gap_line_threads_a_gap_a_little_wider_than_the_bar():
    field = _gap_field(3.15)
    region = field.buffer(-1.5 + 1e-6).buffer(1e-6).buffer(-0.05)
    lines = gap_lines(field, region, 3.0, 6.0)
    assert len(lines) == 1
    line = lines[0]
    assert shapely.covers(region.buffer(1e-6), line)
    q = np.asarray(line.coords)
    assert min(q[:, 0]) < 30.0 and max(q[:, 0]) > 50.0  # right through, under the pond, on both sides of it
    # none where the bar does not fit, nor where the gap is wide (the usual passes reach it)
    for gap in (2.9, 7.0):
        f = _gap_field(gap)
        assert gap_lines(f, f.buffer(-1.5 + 1e-6).buffer(1e-6).buffer(-0.05), 3.0, 6.0) == []


def test_gap_pass_works_the_gap_under_the_pond():
    field = _gap_field(3.15)
    under = Polygon([(34, 0), (46, 0), (46, 7.15), (34, 7.15)]).difference(Polygon(field.interiors[0]))
    done = []
    for g in (0.0, 6.0):
        # cleanup_counted_fill off: the figures below were measured before it (with it the field without gap passes
        # works 98.99 %: the fill's metres buy part of the gap)
        plan = plan_coverage(field, CoverageParams(**BASE, cleanup_gap_passes_m=g, cleanup_wedge_passes_m=0.0,
                                                   cleanup_edge_in_m=0.0,
                                                   cleanup_counted_fill=False))
        f = plan_work_figures(plan)
        path = plan.path
        work = path.working[1:]
        runs = np.flatnonzero(np.diff(np.concatenate([[0], work.astype(np.int8), [0]])))
        strips = [LineString(path.xy[a:b + 1]).buffer(1.5, cap_style="flat") for a, b in zip(runs[::2], runs[1::2])
                  if b > a]
        done.append((shapely.intersection(shapely.union_all(strips), under).area / under.area, f))
    (old, f_old), (new, f_new) = done
    # measured: the 12 m under the pond 57 -> 86 % worked; 98.83 -> 99.38 % of the field, 16.3 -> 16.4 m reversed (with
    # clean-up passes down to 0.25 squared widths, as before cleanup_min_gain_w2 0.05: 99.26 % and 5.9 m, no dead-end
    # passes into the gap from either side; at 0.05 the reverse it saves goes to passes over the smaller blobs).
    # Without the curved wedge passes (cleanup_wedge_passes_m), which work much of it too: with them 84 -> 97 % of
    # the 12 m, 99.17 -> 99.49 % of the field
    assert new > old + 0.15
    assert f_new["worked_ratio"] > f_old["worked_ratio"] + 0.004
    assert f_new["reverse_m"] <= 30.0 and f_new["rings_worked"] == f_new["rings_total"]


def test_gap_param_is_checked():
    import pytest

    with pytest.raises(ValueError, match="cleanup_gap_passes_m"):
        CoverageParams(cleanup_gap_passes_m=-1.0)
