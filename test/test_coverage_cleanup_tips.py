"""Clean-up passes into corner tips, with ends that stop at the patch, and the approach test before transit searches.

Fields from bench/field_plans.py (irregular seeded fields, 3 m width, 4 m turn radius, 9 m headland), its tuning seeds.
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
from shapely.geometry import Point, Polygon, box

from agricare.core.planning.cleanup import patch_pass_options, patch_passes
from agricare.core.planning.coverage import CoverageParams, _approachable, _Region, plan_coverage, plan_work_figures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import field_plans  # noqa: E402


def _tip_field(angle_deg=40.0, length=40.0):
    a = math.radians(angle_deg)
    return Polygon([(0, 0), (length, 0), (length * math.cos(a), length * math.sin(a))])


def test_tight_ends_stop_at_the_patch():
    # a 6 x 2 m patch in open ground: the pass along it ran to the patch grown by half a width (1.5 m past either
    # end: 9 m); with tight ends it stops 0.25 m past the patch, working the same
    patch = box(0, 0, 6, 2)
    region = patch.buffer(30)
    old = patch_passes(patch, region, 3.0, 1.0, long_axis_only=True)
    new = patch_passes(patch, region, 3.0, 1.0, long_axis_only=True, tight=True)
    assert len(old) == len(new) == 1
    len_old = float(np.hypot(*(old[0][1] - old[0][0])))
    len_new = float(np.hypot(*(new[0][1] - new[0][0])))
    assert len_old > 8.9
    assert 6.0 <= len_new <= 6.5 + 1e-6


def test_tip_axis_pass_reaches_nearer_the_apex():
    # a 40 deg tip left beyond the rings: the machine's centre keeps 1.5 m off both edges; the passes along the
    # patch's rectangle and the field edges stop short of the apex, the pass along the tip's axis through its
    # apex gets nearer
    field = _tip_field()
    region = field.buffer(-1.5 - 0.05)
    tip = field.intersection(Point(0, 0).buffer(16.0))
    apex = np.array([0.0, 0.0])
    edges = field.exterior

    def nearest(passes):
        return min(min(np.hypot(*(a - apex)), np.hypot(*(q - apex))) for a, q in passes)

    old = patch_pass_options(tip, region, 3.0, 1.0, boundary=edges)
    new = patch_pass_options(tip, region, 3.0, 1.0, boundary=edges, tip_axis=True)
    # the region's own apex lies 1.55 / sin(20 deg) = 4.5 m from the field's
    assert nearest(new) < nearest(old) - 1.0
    assert nearest(new) < 5.0


def test_approach_test_refuses_poses_headed_out_of_a_tip():
    field = _tip_field()
    region = _Region(field.buffer(-1.5))
    p = CoverageParams(**field_plans.BASE)
    b = math.radians(20.0)                      # the 40 deg tip's bisector
    # near the region's apex (4.4 m in from the field's) headed out of the tip: every way of arriving there comes
    # from beyond the apex; 10 m in, headed into the tip, the machine arrives from the open side
    out_of_tip = np.array([4.8 * math.cos(b), 4.8 * math.sin(b), b])
    into_tip = np.array([10.0 * math.cos(b), 10.0 * math.sin(b), b + math.pi])
    assert not _approachable(out_of_tip, p, region)
    assert _approachable(into_tip, p, region)


def test_min_gain_param_is_checked():
    try:
        CoverageParams(cleanup_min_gain_w2=-0.1)
    except ValueError as exc:
        assert "cleanup_min_gain_w2" in str(exc)
    else:
        raise AssertionError("cleanup_min_gain_w2 < 0 accepted")


def _figures_without_and_with(seed: int, option: str, **extra):
    """plan_work_figures of bench/field_plans.py's tuning field ``seed`` (its planner settings, 30 m of reverse, and
    ``extra`` options) with the clean-up ``option`` off and on."""
    field = field_plans.seeded_field(seed)
    # measured before the edge passes (cleanup_edge_in_m), which work part of what the tips' passes do
    base = dict(field_plans.BASE, max_reverse_m=30.0, cleanup_edge_in_m=0.0, **extra)
    return tuple(plan_work_figures(plan_coverage(field, CoverageParams(**base, **{option: on})))
                 for on in (False, True))


def test_tip_passes_work_more_of_a_field_with_acute_tips():
    # tuning seed 14 (three acute tips, a pond near one): the tip-axis passes compete for the 30 m reverse budget
    # from the first round (before, the first rounds spent it on short passes and the third round found 4 m left)
    old, new = _figures_without_and_with(14, "cleanup_tip_passes")
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]
    assert new["worked_ratio"] > old["worked_ratio"] + 0.002


def test_worked_area_keeps_every_strip_of_a_tuning_field():
    # tuning seed 18: during its clean-up the plain union of the implement strips (swaths 3 m apart, edge on edge)
    # dropped a whole 128 m swath, a 380 m^2 phantom patch that 28 short clean-up passes then crossed (double work
    # 3.6 -> 9.2 % of the field); every worked_area the planner computes there leaves no patch of that size
    import agricare.core.planning.cleanup as cleanup

    field = field_plans.seeded_field(18)
    largest = []
    orig = cleanup.worked_area

    def recording(xy, working, width_m):
        out = orig(xy, working, width_m)
        rest = field.difference(out)
        largest.append(max(g.area for g in getattr(rest, "geoms", [rest])))
        return out

    cleanup.worked_area = recording
    try:
        plan = plan_coverage(field, CoverageParams(**field_plans.BASE, max_reverse_m=30.0, cleanup_min_gain_w2=0.25))
    finally:
        cleanup.worked_area = orig
    assert len(largest) >= 3
    assert max(largest) < 100.0
    assert plan_work_figures(plan)["double_ratio"] < 0.05


def test_late_start_works_a_pass_no_forward_arrival_reaches_at_its_start():
    # tuning seed 12: passes left forwards whose start lies headed across a tip (no forward arrival fits there) were
    # dropped; started later along their line they work the rest of their strip (98.98 -> 99.11 % when measured).
    # With the multi-point turn exits (cleanup_turnabout_exit, on by default) the field reaches 99.11 % without late
    # starts too (16.0 m reversed): measured here with backing-out exits, the setting the late starts were made for,
    # and without the gap passes (cleanup_gap_passes_m: with them the pass through the pond's gap works that strip
    # and the late starts add nothing, 99.18 % either way), nor the curved wedge passes (cleanup_wedge_passes_m: the
    # arc round that pond works it too, 99.18 % either way)
    old, new = _figures_without_and_with(12, "cleanup_late_start", cleanup_turnabout_exit=False,
                                         cleanup_gap_passes_m=0.0, cleanup_wedge_passes_m=0.0)
    assert new["reverse_m"] <= 30.0
    assert new["rings_worked"] == new["rings_total"]
    assert new["worked_ratio"] > old["worked_ratio"] + 0.0008
    assert new["worked_ratio"] >= 0.99
