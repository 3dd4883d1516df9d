"""Section control core: overlap and field-edge switching, raster recording, parameter validation."""

import math

import numpy as np
import shapely
import pytest
from shapely.geometry import box

from agricare.core.control.sections import (CoverageRaster, SectionController, SectionParams, section_bar,
                                            section_states)

FIELD = box(0, 0, 60, 30)


def test_bar_geometry_left_to_right():
    bars = section_bar([10, 5, 0.0], SectionParams(section_widths_m=(1, 2, 1), implement_offset_m=-2))
    assert bars.shape == (3, 2, 2)
    assert np.allclose(bars[0, 0], [8, 7]) and np.allclose(bars[-1, 1], [8, 3])
    assert np.allclose(np.hypot(*(bars[:, 1] - bars[:, 0]).T), [1, 2, 1])


def test_sections_off_over_covered_ground_on_return_pass():
    sc = SectionController(SectionParams(section_widths_m=(1, 1, 1)), FIELD)
    for x in np.arange(2, 50, 0.5):
        st = sc.update([x, 10, 0.0])
    assert st.tolist() == [1, 1, 1]
    assert sc.raster.covered_area_m2 == pytest.approx(3 * 47.5, rel=0.05)
    # return pass heading west 2 m to the north: the left section (south side) overlaps the first pass
    for x in np.arange(48, 10, -0.5):
        st = sc.update([x, 12, math.pi])
    assert st.tolist() == [0, 1, 1]


def test_sections_off_outside_field():
    p = SectionParams(section_widths_m=(1, 1, 1), implement_offset_m=0.0)
    # driving east along the south edge: the right section is outside
    assert section_states([20, 0.9, 0.0], p, FIELD, None).tolist() == [1, 1, 0]
    assert section_states([80, 10, 0.0], p, FIELD, None).tolist() == [0, 0, 0]


def test_shapely_coverage_record():
    p = SectionParams(section_widths_m=(1, 1), implement_offset_m=0.0)
    covered = box(0, 10, 60, 11)
    assert section_states([20, 10, 0.0], p, FIELD, covered).tolist() == [0, 1]


def test_raster_marks_rotated_quad():
    r = CoverageRaster((0, 0, 10, 10), 0.1)
    r.mark_quad(np.array([[5, 2], [8, 5], [5, 8], [2, 5]]))
    assert r.covered_area_m2 == pytest.approx(18.0, rel=0.05)


@pytest.mark.parametrize("kw,name", [({"section_widths_m": ()}, "section_widths_m"),
                                     ({"section_widths_m": (1, -1)}, "section_widths_m"),
                                     ({"overlap_threshold": 1.5}, "overlap_threshold"),
                                     ({"look_ahead_m": 0}, "look_ahead_m")])
def test_bad_params(kw, name):
    with pytest.raises(ValueError, match=name):
        SectionParams(**kw)


def test_nan_pose_rejected():
    sc = SectionController(SectionParams(), FIELD)
    with pytest.raises(ValueError):
        sc.update([float("nan"), 0, 0])


def _states_one_by_one(pose, p, work_area, covered):
    """section_states as it was written before the sections were batched: one section after the other."""
    from agricare.core.control.sections import _strip_samples

    out = np.zeros(len(p.section_widths_m), dtype=np.uint8)
    for i, (left, right) in enumerate(section_bar(pose, p)):
        pts = _strip_samples(left, right, float(pose[2]), p.look_ahead_m)
        inside = shapely.contains_xy(work_area, pts[:, 0], pts[:, 1])
        if inside.mean() < p.min_inside_fraction:
            continue
        cov = covered.covered(pts) if covered is not None else np.zeros(len(pts), dtype=bool)
        frac = float(np.mean(cov[inside])) if inside.any() else 1.0
        out[i] = 1 if frac <= p.overlap_threshold else 0
    return out


def test_batched_sections_decide_and_record_exactly_as_one_by_one():
    """The batched section decision and the one-pass quad marking give the same states and the same raster,
    cell for cell, as the per-section loop, along a wandering path that crosses the field edge, stops (bars that
    do not move: degenerate quads), turns on the spot and jumps."""
    p = SectionParams(section_widths_m=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0), implement_offset_m=-1.6,
                      overlap_threshold=0.5, raster_resolution_m=0.2)
    field = shapely.Polygon([(0, 0), (60, 0), (60, 30), (30, 45), (0, 30)])
    rng = np.random.default_rng(7)
    sc = SectionController(p, field)
    r = sc.raster
    ref = CoverageRaster((r.x0, r.y0, r.x0 + r.nx * r.res, r.y0 + r.ny * r.res), p.raster_resolution_m)
    assert (ref.nx, ref.ny) == (sc.raster.nx, sc.raster.ny)
    pose = np.array([-3.0, 5.0, 0.3])
    last = None
    n_on = n_mixed = 0
    for k in range(1500):
        step = 0.0 if k % 97 < 6 else rng.uniform(0.05, 0.6)          # stands still now and then
        pose = pose + [step * math.cos(pose[2]), step * math.sin(pose[2]), rng.normal(0.0, 0.08)]
        if k % 400 == 399:
            pose[:2] += 7.0                                              # a relocalisation jump
        pose[0], pose[1] = np.clip(pose[0], -8, 68), np.clip(pose[1], -8, 50)
        want = _states_one_by_one(pose, p, field, ref)
        bars = section_bar(pose, p)
        if last is not None and float(np.max(np.hypot(*(bars[:, 0] - last[0][:, 0]).T))) < 5.0:
            for i, on in enumerate(last[1]):
                if on:
                    (l0, r0), (l1, r1) = last[0][i], bars[i]
                    ref.mark_quad(np.array([l0, r0, r1, l1]))
        got = sc.update(pose)
        assert got.tolist() == want.tolist(), k
        assert np.array_equal(sc.last_bars, bars), k   # what section control's rate command reads
        assert np.array_equal(sc.raster.grid, ref.grid), k
        assert sc.raster.covered_area_m2 == float(ref.grid.sum()) * 0.2 * 0.2, k   # the running count
        last = (bars, want)
        n_on += int(want.any())
        n_mixed += int(0 < want.sum() < len(want))
    assert n_on > 150 and n_mixed > 20 and ref.grid.sum() > 2000   # the path did exercise on, off and mixed sections


def test_mark_quads_equals_mark_quad_for_degenerate_and_outside_quads():
    a, b = CoverageRaster((0, 0, 10, 10), 0.2), CoverageRaster((0, 0, 10, 10), 0.2)
    quads = np.array([[[1, 1], [3, 1.2], [3, 3], [1, 2.5]],
                      [[4, 4], [6, 6], [6, 6], [4, 4]],            # a bar that did not move: a line
                      [[20, 20], [22, 20], [22, 22], [20, 22]],    # outside the raster
                      [[9, 9], [12, 9], [12, 12], [9, 12]]], float)
    for q in quads:
        a.mark_quad(q)
    b.mark_quads(quads)
    assert a.grid.sum() > 50
    assert a.covered_area_m2 == b.covered_area_m2 == float(a.grid.sum()) * 0.2 * 0.2
    assert np.array_equal(a.grid, b.grid)


def _return_pass(keep_open_m: float):
    """A pass east along y = 10 (three 1 m sections, bar 8.5-11.5 m), then one west along y = 12.15 whose south
    section (10.65-11.65 m) finds 4 of its 5 fifths worked: (final states, is y = 11.6 worked, covered m^2)."""
    sc = SectionController(SectionParams(section_widths_m=(1, 1, 1), implement_offset_m=0.0, overlap_threshold=0.5,
                                         raster_resolution_m=0.05, keep_open_m=keep_open_m), FIELD)
    for x in np.arange(2, 50, 0.5):
        sc.update([x, 10, 0.0])
    for x in np.arange(48, 10, -0.5):
        st = sc.update([x, 12.15, math.pi])
    return st.tolist(), bool(sc.raster.covered(np.array([[30.0, 11.6]]))[0]), sc.raster.covered_area_m2


def test_keep_open_works_the_band_a_mostly_covered_section_would_leave():
    # by the covered fraction alone (80 % > 0.5) the south section is off and the 0.15 m between the passes is
    # left unworked for good (the seams of the tracked seeded fields); kept open for a band of 0.15 m it works it,
    # at the price of working the 0.85 m beside it twice
    st, gap_worked, area = _return_pass(0.0)
    assert st == [0, 1, 1] and not gap_worked
    st_k, gap_worked_k, area_k = _return_pass(0.15)
    assert st_k == [1, 1, 1] and gap_worked_k
    assert area_k - area == pytest.approx(0.15 * 38, rel=0.35)
    # a band wider than the section's open fifth (0.2 m) does not keep it on
    assert _return_pass(0.3)[0] == [0, 1, 1]


def test_keep_open_rejects_negative():
    with pytest.raises(ValueError, match="keep_open_m"):
        SectionParams(keep_open_m=-0.1)


def _cross_worked_edge(look_ahead_m: float, angle_deg: float, leave: bool = False):
    """Six 1 m sections 1.6 m behind (the bench's tractor, overlap threshold 0.5, keep_open_m 0.4), ground south of
    y = 30 worked; one pass crosses y = 30 at ``angle_deg`` into the worked ground (``leave``: out of it), 0.125 m a
    step (2.5 m/s at 20 Hz): (unworked, worked twice) m^2 of its swath within 3 m of the edge."""
    sp = SectionParams(section_widths_m=(1.0,) * 6, implement_offset_m=-1.6, overlap_threshold=0.5, keep_open_m=0.4,
                       look_ahead_m=look_ahead_m)
    sc = SectionController(sp, box(0, 0, 60, 60))
    r = sc.raster
    X, Y = np.meshgrid(r.x0 + (np.arange(r.nx) + 0.5) * r.res, r.y0 + (np.arange(r.ny) + 0.5) * r.res)
    r.grid[:] = Y < 30.0
    before = r.grid.copy()
    swept = CoverageRaster((r.x0, r.y0, r.x0 + r.nx * r.res, r.y0 + r.ny * r.res), r.res)
    mark = r.mark_quads
    r.mark_quads = lambda q: (mark(q), swept.mark_quads(q))
    a = math.radians(angle_deg)
    d = np.array([math.cos(a), -math.sin(a)]) * (-1 if leave else 1)
    for k in np.arange(-15, 15, 0.125):
        p = np.array([30.0, 30.0]) + (k + 1.6) * d            # the bar crosses the edge at (30, 30)
        sc.update([p[0], p[1], math.atan2(d[1], d[0])])
    band = (np.abs((Y - 30) * d[0] - (X - 30) * d[1]) < 2.9) & (np.abs(Y - 30) < 3)
    return (np.count_nonzero(band & ~before & ~swept.grid) * r.res ** 2,
            np.count_nonzero(band & before & swept.grid) * r.res ** 2)


def test_shorter_look_ahead_leaves_less_at_a_worked_edge_for_less_double():
    # deciding on the next 1 m at half covered, a section switches off 0.4-0.5 m before the edge of worked ground
    # (the slivers along that edge on the tracked seeded fields) and on 0.4-0.5 m before leaving it (the bench has no
    # delay from the pose to the sections to cover). Measured (unworked / twice m^2, look-ahead 1.0 -> 0.25): in at
    # 90 deg 1.20/0 -> 0/0, in at 45 deg 2.28/0 -> 0.32/1.20, in at 30 deg 1.92/0.52 -> 0.56/1.72, out at 90 deg
    # 0/3.60 -> 0/1.20, out at 45 deg 0/3.08 -> 0.08/1.80, out at 30 deg 0/3.76 -> 0.36/2.48; in all 5.40/10.96 ->
    # 1.32/8.40 (0.5 m: 2.80/8.60)
    old_in, new_in = _cross_worked_edge(1.0, 90), _cross_worked_edge(0.25, 90)
    assert old_in[0] > 1.0 and new_in == (0, 0)
    old_in, new_in = _cross_worked_edge(1.0, 45), _cross_worked_edge(0.25, 45)
    assert new_in[0] < 0.5 * old_in[0] and new_in[0] + new_in[1] < 0.8 * (old_in[0] + old_in[1])
    old_out, new_out = _cross_worked_edge(1.0, 90, leave=True), _cross_worked_edge(0.25, 90, leave=True)
    assert old_out[0] == new_out[0] == 0 and new_out[1] < 0.5 * old_out[1]
    # over the six crossings, less left unworked and less worked twice
    old = [_cross_worked_edge(1.0, a, lv) for a in (90, 45, 30) for lv in (False, True)]
    new = [_cross_worked_edge(0.25, a, lv) for a in (90, 45, 30) for lv in (False, True)]
    assert sum(g for g, _ in new) < 0.35 * sum(g for g, _ in old)
    assert sum(d for _, d in new) < 0.85 * sum(d for _, d in old)


def test_keep_open_band_of_two_fifths_counts_at_every_heading():
    # 0.4 m open across a 1 m section is two of its fifths; the width from the bar's ends is a hair under 1 m at
    # about half the headings, where keep_open_m 0.4 used to ask three fifths (2964 of 6000 sections at random
    # headings): 3 fifths worked (60 % > overlap 0.5), 2 open, the section stays on at every heading
    p = SectionParams(section_widths_m=(1.0,), implement_offset_m=0.0, overlap_threshold=0.5, keep_open_m=0.4)
    field = box(-50, -50, 50, 50)
    short = 0
    for yaw in np.linspace(-3.1, 3.1, 41):
        bar = section_bar([1.3, -2.7, yaw], p)[0]
        short += int(np.hypot(*(bar[1] - bar[0])) * 2 / 5 < 0.4)
        d = np.array([math.cos(yaw), math.sin(yaw)])
        left, cut = bar[0], bar[0] + 0.6 * (bar[1] - bar[0])      # the left 3 fifths, along the look-ahead
        worked = shapely.Polygon([left - d, cut - d, cut + 2 * d, left + 2 * d])
        assert section_states([1.3, -2.7, yaw], p, field, worked).tolist() == [1], yaw
        assert section_states([1.3, -2.7, yaw], SectionParams(**{**p.__dict__, "keep_open_m": 0.41}), field,
                              worked).tolist() == [0], yaw
    assert short > 5      # the headings did include widths under 1 m
