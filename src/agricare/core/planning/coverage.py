"""Field coverage planning: headland rings, swaths, route, drivable turns, one continuous path.

Entry point :func:`plan_coverage` (field polygon in metres + :class:`CoverageParams` -> :class:`CoveragePlan`);
:func:`load_field` reads a GeoJSON field (local metres, WGS84 -> UTM, or a projected CRS) and
:func:`plan_to_json` writes the plan back in the CRS of the input. Runnable demo::

    PYTHONPATH=src python -m agricare.core.planning.coverage
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from dataclasses import dataclass, field as dc_field

import numpy as np
import shapely
from shapely.geometry import LinearRing, LineString, Polygon, shape
from shapely.validation import explain_validity

from agricare.core.planning import turns as T
from agricare.core.planning.corners import CornerRing, Footprint, corner_ring, joint_budgets
from agricare.core.planning.decomposition import (OBJECTIVES, Swath, boustrophedon_cells, choose_angle,
                                                  generate_swaths)
from agricare.core.planning.headland import headland_offsets, headland_rings, inner_field, polygons_of
from agricare.core.planning.routing import ROUTES, end_poses, improve_route, optimal_route, pattern_route
from agricare.core.planning.transit import FreeSpace, concat_samples, forward_transit

TURN_TYPES = ("dubins", "dubins_cc", "reeds_shepp")
KIND_SWATH, KIND_TURN, KIND_HEADLAND, KIND_TRANSIT = 0, 1, 2, 3
KIND_NAMES = ("swath", "turn", "headland", "transit")


class PlanningError(ValueError):
    """The field or the parameters cannot give a plan (message is one clear line)."""


@dataclass(frozen=True)
class CoverageParams:
    """Coverage planner parameters (SI units).

    ``angle_deg`` NaN means "search the angle for ``objective``"; ``ab_line_m`` ``(x0, y0, x1, y1)`` in the
    field frame (all zeros = unused) fixes the swath direction along the AB line and takes precedence.
    ``robot_width_m`` 0 means "same as the implement"; turns keep half of it away from the boundary.
    """

    width_m: float = 3.0
    turn_radius_m: float = 4.0
    headland_width_m: float = 9.0
    robot_width_m: float = 0.0
    turn_type: str = "dubins"
    route: str = "optimal"
    objective: str = "swaths"
    angle_deg: float = float("nan")
    ab_line_m: tuple = (0.0, 0.0, 0.0, 0.0)
    max_curvature_rate_1pm2: float = 0.1
    sample_step_m: float = 0.5
    plan_headland: bool = True
    plan_cleanup: bool = True              # straight passes over what swaths and rings leave unworked
    max_reverse_m: float = 0.0             # reversing allowed for clean-up exits (from dead-end corners); 0: only
                                           # clean-up passes the machine can leave forwards
    transit: str = "forward"               # "forward": forward in-field transit before reversing; "direct":
                                           # turns and ring connections by Dubins / Reeds-Shepp words only
    optimizer_time_limit_s: float = 2.0    # route search: 0 = deterministic descents only; > 0 OR-Tools search too,
                                           # capped at this many seconds
    optimizer_solution_limit: int = 8      # the route search stops after this many solutions: the same field gives
                                           # the same plan on any machine and load (the cap above is then rarely
                                           # reached); 0 = a time-limited search (scaled to the problem size)
    footprint_m: tuple = ()                # the machine: rectangles (x_min, x_max, y_min, y_max) in base_link,
                                           # flattened (body, implement); () = only the centre + half body width
    implement_offset_m: float = 0.0        # implement working line behind base_link (corner passes)
    corner_turns: bool = False             # headland passes work the corners (manoeuvres; needs footprint_m)
    corner_min_angle_deg: float = 50.0     # convex corners turning this much or more get a manoeuvre
    corner_min_leg_m: float = 1.5          # shortest leg of a corner manoeuvre (a tracker settles on it)
    max_corner_reverse_m: float = math.inf  # all corner manoeuvres of the field together reverse at most this; the
                                           # corners that work most per metre reversed first (outer pass first)
    corner_cc: bool = False                # worked corners curvature-continuous (clothoids of
                                           # max_curvature_rate_1pm2): the transit onto a corner ring and the
                                           # manoeuvres' forward turns. A Dubins arc ending on a pass 0.1 m off
                                           # the boundary is overshot by the steering lag (rate-limited), the
                                           # implement's rear corner leaving the field
    max_total_reverse_m: float = math.inf  # all reversing of the field together (corner manoeuvres first, their own
                                           # limit too, then clean-up exits with what is left of this)
    cleanup_end_margin_m: float = 0.0      # clean-up passes end where the machine stands this much further inside
                                           # than the footprint's 5 cm (a tracker overshoots the stop at a pass's end
                                           # by a few decimetres; a dead-end pass ends near the boundary)
    corner_ease_radius_m: float = 0.0      # > 0: where a corner is not worked (a gap), the machine leaves the outer
                                           # pass by a gentle forward S of this radius, still working, instead of a
                                           # short reversing S (0: reversing S only, as before)
    turn_reverse_detour_m: float = 0.0     # a swath turn that would reverse more than this (a fishtail / three-point
                                           # Reeds-Shepp word) is replaced by a forward in-field detour where one
                                           # exists: every metre a turn reverses comes off the field's reverse budget
                                           # (max_reverse_m), which the clean-up passes need for dead-end corners
                                           # (was 2 turning radii)
    turn_detour_radii: float = 30.0        # such a detour is at most this many turning radii plus twice the distance
                                           # (was 8, and 12 transit legs; above 8, 40 legs)
    cleanup_reverse_by_gain: bool = True   # clean-up passes that need a reverse exit chosen one at a time by the area
                                           # they still work per metre reversed, over passes in every direction of
                                           # each leftover patch (_plan_cleanup); False: by pass length per metre
                                           # reversed, the best direction per patch only, as before
    headland_corner_fill: bool = True      # each headland pass bent into the corners where the turning radius cut it
                                           # off from the pass outside it (headland.corner_fill): no crescent left
                                           # between successive passes at corners sharper than a right angle (not
                                           # with corner_turns: the corner rings replace the rounded outer rings)
    cleanup_min_gain_w2: float = 0.05      # a clean-up pass must work at least this many squared implement widths
                                           # of what is left (at least 1 m^2; was 0.5: 4.5 m^2 for a 3 m bar left
                                           # the crescents of 3-4.5 m^2 at ring corners unworked; then 0.25: 9 m^2
                                           # for a 6 m bar, which left blobs of 3-9 m^2 at the inner ring's corners
                                           # and by holes, 1 % of a seeded field in pieces of 3 m^2 or more.
                                           # bench/farm_missions.py standard flags, tracked, tuning seeds 0-19:
                                           # 96.75 -> 96.87 %, every field better (+0.03 to +0.42 points), double
                                           # 2.07 -> 2.12 %, 0 violations, reverse max 29.3 m both)
    cleanup_tip_passes: bool = True        # clean-up passes also along each leftover patch's axis through its apex
                                           # (a corner tip's bisector), and passes in every direction of every patch
                                           # compete for the reverse budget from the first round (cleanup.
                                           # patch_pass_options); False: as before (the third round only, no axis)
    cleanup_late_start: bool = True        # a clean-up pass left forwards whose start no forward arrival reaches
                                           # (_approachable) starts later along its line, 0.25 m at a time; one
                                           # whose start no forward transit reaches, 1, 2 or 3 m later
    cleanup_tight_ends: bool = True        # a clean-up pass runs only as far as its strip meets the patch (+0.25 m;
                                           # cleanup._tight_clip), and a pass that can be left forwards is skipped
                                           # where its round's earlier passes already worked what it would; False:
                                           # to the patch grown by half a width (up to 1.5 m of double work at either
                                           # end of every pass), every pass of the round driven
    cleanup_trail_worked: bool = True      # with implement_offset_m: the clean-up's leftover patches are what the
                                           # implement leaves as the mission works (the bar that far behind base_link,
                                           # lowered by the plan's flag where the bar is, from the last cusp on,
                                           # raised reversing: _trail_worked), and a dead-end pass is credited only as
                                           # far as the bar gets before the reverse exit; False: the bar at base_link
                                           # (a 1.6 m trailing bar cuts the inside of every ring bend and turn, and
                                           # leaves a crescent round each hole that the clean-up never saw)
    cleanup_turnabout_exit: bool = True    # a dead-end clean-up pass may be left by a multi-point turn inside the
                                           # tip (reverse arc, forward arc, ... at full lock: cleanup.turnabout_exit)
                                           # where that reverses less than backing out until a half-turn fits
                                           # (bench/field_plans.py tuning seeds 0-19: 99.19 -> 99.25 %, min 97.17 ->
                                           # 97.42 %, 16 -> 17 fields >= 99 %; False: as before). Plans without a
                                           # machine footprint only: with footprint_m (the tracked mission's
                                           # machine, bench/farm_missions.py) plan-trail tuning went 96.42 ->
                                           # 96.48 % but tracked seed 10 left the field by 0.045 m (cause not found)
    cleanup_reverse_split: tuple = (0.67, 0.5)  # with corner_turns, a finite max_total_reverse_m and a plan check
                                           # (plan_coverage's check: the robot's own controller on its own model,
                                           # core/missions/farm.MissionPlanCheck, which farm_mission_node passes):
                                           # shares (0-1) of the total reverse budget the corner manoeuvres may take;
                                           # the field is also planned with each (the clean-up exits get the rest)
                                           # and the plan whose trailing implement works most is kept, unless the
                                           # check predicts the machine driving it out of the field (further than
                                           # the plan with the corners first). () or no check: corners first, the
                                           # clean-up gets what they leave (on the seeded fields of
                                           # bench/farm_missions.py 1-3 m of 30). Measured there (tracked, standard
                                           # flags, the bench's controller through MissionPlanCheck as the node
                                           # builds it): tuning seeds 0-19 96.03 -> 96.27 % of the field, 0
                                           # violations, double 2.05 -> 2.10 %, split kept on 6 fields; plan time
                                           # x3-4 where the budget binds (two more plans and one to three checks of
                                           # seconds each; tuning mean 16.0 s a field)
    cleanup_turnabout_footprint: bool = False  # with footprint_m and the reverse split (a plan check given): each
                                           # split plan is also planned with multi-point turn exits under the
                                           # footprint (cleanup_turnabout_exit's turn, the whole machine checked,
                                           # kept cleanup_end_margin_m further in), a candidate like the others:
                                           # kept only where it works most and the check does not veto it. Never
                                           # unchecked: without a check (no split) it is ignored. Alone (unchecked,
                                           # session 12) tracked seed 10 left the field by 0.045 m; behind the check
                                           # (tracked tuning 0-19, standard flags): 96.27 -> 96.29 %, 0 violations,
                                           # kept on 4 fields (6, 7, 14, 15: +0.02-0.19), seed 10's vetoed; off by
                                           # default: plan time doubles (mean 16.0 -> 31.4 s a field) for 0.02 points
    cleanup_transit_clearance_m: float = 0.05  # with footprint_m: a clean-up transit (implement raised) keeps the
                                           # whole machine this much further in than the footprint's 5 cm, except
                                           # within cleanup_transit_free_m of arc of an end where the machine itself
                                           # stands closer (the pass it leaves ran along the edge); the search is
                                           # repeated with that room, and a pass no such transit reaches is left
                                           # (another candidate may work it). bench/farm_missions.py report seed 106
                                           # (tracked, standard flags, with corner_partial_y_turns): a transit looping
                                           # back past a pond, planned 6.4 cm off it, went 1 mm into it tracked; now
                                           # 0 violations. Cost (tracked, against the same code at 0): tuning seeds
                                           # 0-17 -0.03 points (0.15: -0.07 on 0-18; seed 11 -0.13), report seeds
                                           # -0.03 (seed 110 -0.34: a dead-end pass left, its reverse unspent). 0: off
    cleanup_transit_free_m: float = 4.0    # see cleanup_transit_clearance_m
    cleanup_exit_working: bool = True      # the forward legs of a dead-end clean-up pass's exit (a multi-point turn's
                                           # forward arcs and run-out inside the tip: cleanup.turnabout_exit) work
                                           # (implement lowered; raised reversing); False: the whole exit raised
    cleanup_gap_passes_m: float = 6.0      # > 0: clean-up passes also along the line that threads each gap between an
                                           # obstacle and the field's edge (or two obstacles) narrower than this and
                                           # wider than the implement (cleanup.gap_lines: the rings go round the
                                           # obstacle, and a 3.15 m gap leaves a 3 m bar one line 0.15 m wide);
                                           # bench/field_plans.py tuning seeds 0-19: 99.28 -> 99.30 %, 17 -> 18 fields
                                           # >= 99 % (seed 13 98.76 -> 99.02 %), none worse (11 m: seed 5 -0.01);
                                           # 0: none, as before
    cleanup_wedge_passes_m: float = 6.0    # > 0: curved clean-up passes round each obstacle within this of the
                                           # field's edge (or another obstacle), on a circle half a width off it (at
                                           # least the turning radius), into the wedges either side of the gap, left
                                           # by reversing along themselves (cleanup.wedge_circles, ranked for the
                                           # reverse budget with the straight ones). bench/field_plans.py 60 tuning
                                           # fields (seeds 0, 200, 300): mean 99.349 -> 99.356 %, 52 fields >= 99 %
                                           # both, 10 better (seed 318 +0.09, 300 +0.08, 317 +0.07), 3 worse (seed
                                           # 0 -0.017, 19 and 312 -0.001), reverse max 27.6 m both; the budget is
                                           # what limits them (a wedge's exit reverses 5-10 m: seed 204's east wedge
                                           # 11 m^2 for 9.5 m). farm_missions plan-trail seeds 0-9: the same plans.
                                           # 0: none, as before
    cleanup_final_dead_end: bool = False   # the clean-up ends with the dead-end pass that works most of what is left
                                           # (of the six that work most, the first driven), its exit not driven: the
                                           # job ends there, as it ends after whatever pass is last without (the
                                           # last exit dropped). bench/field_plans.py 60 tuning fields with wedge
                                           # passes: mean 99.356 -> 99.384 %, 52 -> 53 fields >= 99 % (seed 204
                                           # 98.93 -> 99.12 %: the wedge arc is the last pass), min 97.90 -> 98.11 %
                                           # (seed 14), 34 better, 1 worse (-0.001). Off: the machine is left in a
                                           # dead end and reverses out of it after the job, up to the exit not
                                           # driven (not counted in the plan's reverse)
    corner_y_turns: bool = False           # a sharp corner may get a two-leg Y turn (drive on, forward arc into the
                                           # field, reverse arc onto the next edge) where it reverses less than the
                                           # three-point manoeuvre (corners.y_turn_candidates)
    corner_loop_back: bool = True          # with corner_y_turns: a sharp corner may get a forward loop onto the next
                                           # edge's line and one short straight reverse onto its start where that
                                           # reverses less than the Y turn (corners._loop_back_corner; fits on inner
                                           # passes: 1.5-2.75 m where the Y turn reverses ~5 m)
    corner_eased_arcs: bool = True         # with corner_turns and corner_ease_radius_m > 0: a convex corner whose
                                           # working arc does not fit on the pass's line (the outer pass) is worked
                                           # on an arc between lines shifted in by working S curves
                                           # (corners._eased_arc), nothing reversed, instead of a Y turn at a shallow
                                           # corner or a gap (a reversing S) where a sharp corner has no manoeuvre.
                                           # Both on, bench/farm_missions.py tuning seeds 0-19 (standard flags): plan
                                           # swept by the trailing bar 96.42 -> 96.78 %, tracked 96.03 -> 96.36 %,
                                           # 0 violations, reverse max 29.5 m driven (eased arcs alone: 96.71 %
                                           # plan-trail; loop-backs alone 96.47 %). False, False: as before
    corner_partial_y_turns: bool = True    # with corner_y_turns: a sharp corner where no manoeuvre fits within one
                                           # manoeuvre's reverse limit (four turning radii) gets the Y turn whose
                                           # pass along B starts 1-10 m further out of the corner, least first
                                           # (corners.corner_ring partial_y_turns), ranked with the others, instead
                                           # of only its fallback (a gap at the seeded fields' narrow spikes, whose
                                           # full Y turn reverses 18.7-20.8 m). False: as before
    corner_depth_gain: bool = True         # with corner_y_turns and a reverse budget: a Y turn that starts B further
                                           # out of the corner is charged the strip it leaves against a working or
                                           # eased arc too (corners._manoeuvre_gain b_ref), not only against a gap:
                                           # the ranking bought the cheapest such variant at full gain. Both on,
                                           # bench/farm_missions.py tuning seeds 0-19, standard flags, tracked:
                                           # 97.39 -> 97.59 % (9 fields better, seeds 6 +1.36 and 12 +1.24 points,
                                           # none worse), double max 2.52 %, 0 violations, reverse max 29.4 m
                                           # (plan-trail: partial Y turns alone +0.13, depth gain alone +0.09,
                                           # both +0.20 points); report seeds 100-119: 97.64 -> 97.84 %, 11 better,
                                           # 1 worse (-0.01), double max 2.51 %, but 1 boundary violation of 1 mm
                                           # on seed 106: not at a corner, on a transit past a hole that the plan
                                           # keeping all the budget for the corners (kept now instead of the 0.5
                                           # split) passes 6.4 cm off and the plan check predicts inside. False: as
                                           # before
    corner_eased_per_corner: bool = True   # with corner_eased_arcs: where the corners leave nothing of an edge and an
                                           # end of it is worked on an eased arc, that end (the sharper of two) gives
                                           # its eased arc up and the pass is built again, instead of the whole pass
                                           # being built without eased arcs (corners.corner_ring eased_per_corner:
                                           # its shallow corners then took Y turns, or the pass kept its rounded
                                           # ring). bench/farm_missions.py standard flags, tracked: tuning seeds 0-19
                                           # 97.56 -> 97.59 % (7 plans change: seeds 18 +0.30, 2 +0.27, 4 +0.21,
                                           # 8 0.00, 3 -0.04, 15 -0.10, 7 -0.16 points), report seeds 100-119
                                           # 97.80 -> 97.84 % (102 +0.21, 104 +0.05, 119 +0.55, none worse), double
                                           # max 2.52 / 2.51 %, 0 violations, reverse max 29.4 m. False: as before
    corner_eased_per_side: bool = True     # with corner_eased_arcs: each side of an eased arc gets the least inset that
                                           # fits (corners.EASED_SIDE_INSETS, corners._eased_arc per_side), not the
                                           # same 0.3 / 0.5 m on both: A needs 0.25 m (the trailing bar swings out
                                           # 0.26 m where the arc leaves A's line), B none, so B's 7.7 m S goes.
                                           # bench/farm_missions.py standard flags, tracked: tuning seeds 0-19
                                           # 97.59 -> 97.83 % (all 20 better, +0.04 to +0.87 points; corners
                                           # 1.54 -> 1.34 % of the field), double max 2.44 %, 0 violations, reverse
                                           # max 29.5 m; report seeds 100-119 97.84 -> 98.03 % (18 better, 2 plans
                                           # unchanged, none worse), double max 2.43 %, 0 violations, reverse max
                                           # 29.4 m; the demo (no eased arcs) unchanged, 99.51 %
                                           # False: as before
    corner_deep_a: bool = False            # with corner_y_turns and a reverse budget: a sharp corner may also get the Y
                                           # turn whose pass along A works on as far into the corner as the whole
                                           # machine fits and then backs along its worked line to make room for the
                                           # forward arc (corners._y_manoeuvre deep_a), ranked by what its bar works
                                           # more there and B's strip does not (corners._a_band). Off: A goes
                                           # 0.75-1.5 m deeper (the body's nose meets edge B), and most of the strip
                                           # it adds lies in B's (0.66 m^2 for 0.75 m more reversed at a 110 deg
                                           # corner). bench/farm_missions.py tuning seeds 0-19, standard flags:
                                           # plan-trail 97.85 -> 97.87 % (10 plans change, 9 better, none worse),
                                           # tracked 97.824 -> 97.835 % (6 better, 4 worse, -0.01 to -0.05 points),
                                           # corners 1.343 -> 1.341 % of the field, double max 2.28 %, 0 violations
    corner_swept_gain: bool = True         # with corner_y_turns and a reverse budget: the corners' manoeuvres are
                                           # ranked by what the bar's strips round the corner work with and without
                                           # them (corners._swept_gain) instead of by formulas that take a manoeuvre
                                           # to work the whole corner (a Y turn gains 2.2 m^2 over the eased arc at
                                           # 80 deg, not 9.3; at 70 deg the eased arc works more). The budget goes
                                           # to the sharp corners. bench/farm_missions.py standard flags, tuning
                                           # seeds 0-19: plan-trail 97.85 -> 97.91 % (11 plans change, all better),
                                           # tracked 97.824 -> 97.869 % (11 better, +0.01 to +0.20 points, none
                                           # worse), corners 1.343 -> 1.301 % of the field, reverse mean 24.2 ->
                                           # 23.3 m, double max 2.42 %, 0 violations; report seeds 100-119
                                           # 98.03 -> 98.06 % (7 better, 2 worse by 0.02), double max 2.49 %,
                                           # 0 violations, reverse max 29.4 m; the demo has no budget: unchanged.
                                           # False: as before
    corner_joint_budget: bool = False      # with corner_turns and a reverse budget: the passes' corner rings share it
                                           # where they work most in all (corners.joint_budgets over each ring's
                                           # gain per budget) instead of each pass taking what the outer ones left
    corner_concave_gaps: bool = True       # with corner_turns: where no corner ring of a pass can be built because
                                           # the corners eat a short edge that ends at a concave corner, build it
                                           # again with such corners joined by a loop over the field instead of
                                           # their working arc (corners.corner_ring concave_gaps). Only passes that
                                           # had no corner ring change. bench/farm_missions.py tuning seeds 0-19,
                                           # standard flags, tracked: 96.69 -> 96.74 % (seeds 5 +0.18, 10 +0.36,
                                           # 14 +0.37 points, the rest identical), 0 violations, reverse max 29.3 m
    corner_inset_edges: bool = True        # with corner_turns: where no corner ring of a pass can be built otherwise,
                                           # build it again with every edge whose straight would take the machine
                                           # out of the field (a shallow dip of the pass's line that the simplified
                                           # outline cuts) moved into the field by as much (corners._inset_edges).
                                           # Only passes that had no corner ring change: bench/farm_missions.py
                                           # standard flags, tracked, tuning seeds 0-19 only seed 2 changes, 97.39 ->
                                           # 97.51 % (reverse 4.3 -> 28.7 m, 0 violations); report seeds 100-119
                                           # only seed 113, 96.99 -> 97.55 % (26.8 m, 0 violations)
    cleanup_late_start_dead_end: bool = True  # with cleanup_late_start and a reverse budget: the clean-up is also
                                           # planned with the dead-end passes (those bought from the reverse budget)
                                           # started later where no forward arrival reaches their end (a pass along a
                                           # pocket between a pond and a corner: 2 m behind either end is pond or
                                           # boundary; bench/field_plans.py seed 204, a 22.5 m^2 pass skipped), the
                                           # rest of its line a candidate again; the clean-up whose implement works
                                           # more is kept (alone, the greedy spending then bought other passes: seed
                                           # 14 97.85 -> 97.37 %). bench/field_plans.py tuning seeds 0-19, 200-219,
                                           # 300-319 (60 fields): mean 99.32 -> 99.34 %, fields >= 99 % 51 -> 52
                                           # (seed 201 98.88 -> 99.00 %), 36 fields better, one worse by 0.0006
                                           # points (seed 305), reverse max 26.8 -> 27.6 m, 0 rings skipped; plan
                                           # time x2 (mean 1.6 -> 3.2 s). bench/farm_missions.py (6 m bar, worked
                                           # corners, standard flags, plan-trail, seeds 0-19): the same figures on
                                           # every field (its clean-up gets 1-3 m of the budget). False: as before
    ring_reverse_exit: bool = True         # a headland ring that no forward connection (nor 1-2 turning radii straight
                                           # back) reaches from where the machine stands is reached by the shortest
                                           # reverse after which a forward half-turn fits (_reverse_exit, within the
                                           # clean-up's reverse budget), then forwards, before the last resort (any
                                           # Reeds-Shepp word): bench/field_plans.py seed 312 (a swath ends headed
                                           # into the gap between a pond and the edge) reversed 60.5 m to the next
                                           # ring, 61.0 m for the field against the limit of 30; now 4.5 m there,
                                           # 26.6 m for the field, 99.14 -> 99.37 % worked (tuning seeds 0-19,
                                           # 200-219, 300-319: no other field changes); False: as before
    cleanup_dead_end_estimate: bool = True  # the clean-up planned with whole dead-end passes only (no later starts:
                                           # cleanup_late_start_dead_end's first variant) ranks a dead-end pass by the
                                           # exit of a direction that ends in the dead end, not the cheaper of its two
                                           # ends (the open end's: no pass there needs an exit, so every pass was
                                           # costed 2 m and the ranking was by area alone, where exits cost 2-13 m).
                                           # bench/field_plans.py 60 tuning fields: mean 99.342 -> 99.349 %, min
                                           # 97.845 -> 97.900 %, >= 99 % 52 both, 10 fields better, 3 worse (seed 208
                                           # 99.318 -> 99.293 %), reverse max 27.6 m both, 0 rings skipped, plan
                                           # time mean 3.22 -> 3.31 s; report seeds 100-119 (read once) mean 99.35 ->
                                           # 99.38 %, 18 of 20 >= 99 % both. bench/farm_missions.py (standard flags,
                                           # plan-trail, seeds 0-19): 3 fields better (seed 11 96.77 -> 97.01 %), none
                                           # worse. In both variants: 4 of the 8 worst fields better, 4 worse. False:
                                           # as before
    cleanup_back_in: bool = False          # a dead-end clean-up pass may be worked backwards-in, forwards-out: reached
                                           # forwards at its open end headed out, reversed in with the implement
                                           # raised (leading), worked forwards out (no exit after it), where that
                                           # reverses less than the forward pass's exit (_plan_cleanup). Forwards in,
                                           # a trailing implement stops implement_offset_m and the body short of the
                                           # tip. bench/farm_missions.py (6 m bar 1.6 m behind, standard flags,
                                           # plan-trail, tuning seeds 0-19): 3 fields change, seed 1 97.81 -> 97.83 %
                                           # reversing 22.6 -> 16.1 m, seed 5 97.59 -> 97.60 % (21.1 -> 12.7 m), seed
                                           # 19 98.77 % both (24.4 -> 27.7 m). bench/field_plans.py (no implement
                                           # offset, 60 tuning fields): the same plans on every field - there the
                                           # whole pass in reverse never costs less than the exit it saves (a
                                           # multi-point turn inside the tip: seed 6's 19.3 m axis pass leaves by
                                           # 12.7 m). False: as before
    cleanup_corner_back_in: bool = False   # with footprint_m and a trailing implement: clean-up passes backed into
                                           # the leftover patches at the field's edge (cleanup.back_in_passes): from
                                           # a pose reached forwards, a reverse arc (0-180 deg) onto the pass's line
                                           # and straight back, the implement raised and leading, to where the whole
                                           # machine still fits cleanup_end_margin_m deeper; then worked forwards out
                                           # of the corner. Every other clean-up pass is placed by its strip at
                                           # base_link, whose region keeps half a body width (3.1 m) off the edge:
                                           # the patches a corner's Y turn leaves (tuning seed 0: 6 of 3-30 m^2) had
                                           # no candidate at all, whatever the budget. Also: where no forward transit
                                           # leaves the pose a pass ended at, the shortest reverse for room is tried
                                           # even where a half-turn fits there (seed 0 at 300 m: every candidate after
                                           # one pass into a 43 deg tip failed from its end, 221 m left unspent).
                                           # bench/farm_missions.py plan-trail, tuning seeds 0-19, standard flags
                                           # (30 m): 97.91 -> 97.93 % (6 plans change, all better, +0.04 to +0.11
                                           # points), reverse max 28.2 m both; tracked 97.872 -> 97.890 % (those 6
                                           # +0.02 to +0.16 points), 0 violations, double max 2.44 %, reverse max
                                           # 27.8 m; report seeds 100-119 (read once) plan-trail 98.04 -> 98.07 %
                                           # (5 change), tracked those 5: 4 better (+0.02 to +0.41), seed 100 -0.01,
                                           # 0 violations, double max 2.45 %, reverse max 26.6 m.
                                           # Budgets (reverse, corner, total) of 100 m: 98.21 -> 98.35 %
                                           # (18 better, seed 12 -0.05), reverse mean 50.4 -> 64.9 m, max 87.9 ->
                                           # 92.8 m; of 300 m: 98.21 -> 98.42 % (all 20 better, corners 1.06 -> 0.85
                                           # % of the field), reverse mean 55.7 -> 80.7 m, max 130.5 -> 148.6 m;
                                           # tracked at 300 m, seeds 0, 1, 6, 7, 10, 12, 13, 17: all better (+0.18 to
                                           # +0.50 points, mean 97.78 -> 98.06 %), double max 2.63 %, violations 0
                                           # but seed 10's one (0.064 m out; the same with the option off).
                                           # Off by default: plan time at 30 m (split plans, each clean-up twice)
                                           # mean 11.0 -> 16.8 s, max 27.9 -> 47.8 s for 0.02 points. False: as
                                           # before
    cleanup_exact_charge: bool = False     # the clean-up's reverse budget charged as the plan's reverse is counted
                                           # (plan_work_figures: a segment with either end reversing, so a leg and the
                                           # one sample after its cusp), re-measured on the path after every exit
                                           # driven, instead of each exit's length and a sample either end (a sample
                                           # per leg more than counted: the worst tuning fields ended their clean-up
                                           # with 4.4-7.2 m of the 30 m unspent). bench/field_plans.py 60 tuning
                                           # fields: mean 99.356 -> 99.364 %, >= 99 % 52 -> 53, min 97.900 -> 98.008
                                           # %, but 5 fields worse (seed 208 -0.125, 202 -0.117 points: the greedy
                                           # spending buys other passes early), reverse max 27.6 -> 29.4 m. Off: the
                                           # rounds charged as before, cleanup_counted_fill spends the difference
    cleanup_counted_fill: bool = True      # after the clean-up's rounds the reverse budget is re-measured as
                                           # cleanup_exact_charge counts it and what is left is spent on one more
                                           # round of dead-end passes (charged as counted), the passes before it the
                                           # same. bench/field_plans.py 60 tuning fields (seeds 0, 200, 300): mean
                                           # 99.356 -> 99.370 %, min 97.900 % both, >= 99 % 52 both, 26 fields better
                                           # (seed 208 99.293 -> 99.488 %, 213 98.181 -> 98.253 %), none worse,
                                           # reverse max 27.6 -> 27.1 m, 0 rings skipped; traced fields the same;
                                           # plan time (seeds 0-19, paired) mean 2.67 -> 2.96 s, max 6.66 -> 7.24 s.
                                           # Report seeds 100-119 (read once): mean 99.380 -> 99.395 %, min 97.938 ->
                                           # 98.009 %, >= 99 % 18 both, 8 better, none worse. bench/farm_missions.py
                                           # (standard flags, plan-trail, seeds 0-9): seed 0 96.80 -> 96.91 %, the
                                           # other 9 the same plans. Passes shortened at their dead end to fit the
                                           # last metres bought nothing more (same plans on all 60). False: as before
    cleanup_edge_in_m: float = 0.1         # > 0: a leftover patch's clean-up passes also at its outermost offsets
                                           # moved this far in: half a width off the edge, where the outermost
                                           # pass lies, the region pass ends keep inside stops 5 cm short, so a
                                           # patch against the edge (the 6.5 m^2 a rounded ring leaves at each
                                           # corner of a rectangle, 3 m width, 4 m radius) had no pass at all
                                           # (cleanup._passes_along). bench/field_plans.py 60 tuning fields (seeds
                                           # 0, 200, 300): mean 99.37 -> 99.42 %, >= 99 % 52 -> 53, min 97.90 ->
                                           # 97.92 %, 56 better, 4 worse (seed 208 -0.15 points, the rest < 0.01),
                                           # reverse max 27.1 -> 27.8 m, plan time mean 5.1 -> 5.8 s; traced
                                           # field_c_holes 99.77 -> 99.83 %, hofacker and bruchwiese the same; a
                                           # 50 x 20 m paddy 97.43 -> 98.23 %. bench/farm_missions.py (standard
                                           # flags, tuning 0-19), had it applied there: 10 plans change, tracked seed
                                           # 0 96.69 -> 96.59 %, the other 9 within 0.03 points; the demo's tractor the
                                           # same (99.51 %). Only where the bar works at base_link
                                           # (implement_offset_m 0): with a trailing implement the passes it added on
                                           # the operator app's 40 x 30 m field (3 m bar 1.5 m behind, no reverse
                                           # budget) worked nothing more and made the path 24 % longer (1919 -> 2371
                                           # samples, 91.71 % both), and the farm bench gained nothing. 0: as before
    corner_choose: bool = False            # with corner_turns: plan the field with worked corners on every subset
                                           # of the headland passes (all, each alone, none: the rounded rings) and
                                           # keep the plan whose implement sweeps most of the field (the gaps a
                                           # reverse budget leaves can lose more than the rounded ring and its
                                           # clean-up passes, which the budget then pays for; plan_sweep_area).
                                           # Off by default: the plans it picks swept more (seeded fields 100-119,
                                           # 96.94 -> 97.33 %), but tracked, the mission stalled on 1 field of 20
                                           # there (seed 101: circling at a pond's ring) and on seed 9 of 0-19

    def __post_init__(self):
        for name in ("width_m", "turn_radius_m", "max_curvature_rate_1pm2", "sample_step_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        # 0 time: deterministic
        for name in ("headland_width_m", "robot_width_m", "optimizer_time_limit_s", "corner_ease_radius_m",
                     "cleanup_end_margin_m", "turn_reverse_detour_m", "turn_detour_radii", "cleanup_min_gain_w2",
                     "cleanup_gap_passes_m", "cleanup_transit_clearance_m", "cleanup_transit_free_m",
                     "cleanup_wedge_passes_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.sample_step_m > 0.5:
            raise ValueError(f"sample_step_m must be <= 0.5 m, got {self.sample_step_m!r}")
        if self.turn_type not in TURN_TYPES:
            raise ValueError(f"turn_type {self.turn_type!r} not in {TURN_TYPES}")
        if self.route not in ROUTES:
            raise ValueError(f"route {self.route!r} not in {ROUTES}")
        if self.transit not in ("forward", "direct"):
            raise ValueError(f"transit {self.transit!r} not in ('forward', 'direct')")
        fp = tuple(float(v) for v in self.footprint_m)
        if len(fp) % 4 or not all(math.isfinite(v) for v in fp):
            raise ValueError(f"footprint_m must be finite numbers, 4 per rectangle, got {self.footprint_m!r}")
        if self.corner_turns and not fp:
            raise ValueError("corner_turns needs footprint_m (the machine must be checked inside the field)")
        if not (isinstance(self.optimizer_solution_limit, int) and self.optimizer_solution_limit >= 0):
            raise ValueError(f"optimizer_solution_limit must be an integer >= 0, got {self.optimizer_solution_limit!r}")
        if not (isinstance(self.max_reverse_m, (int, float)) and self.max_reverse_m >= 0):
            raise ValueError(f"max_reverse_m must be >= 0, got {self.max_reverse_m!r}")
        for name in ("max_corner_reverse_m", "max_total_reverse_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        split = self.cleanup_reverse_split
        if not (isinstance(split, (tuple, list)) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in split)):
            raise ValueError(f"cleanup_reverse_split must be shares in [0, 1], got {split!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} not in {OBJECTIVES}")
        if not isinstance(self.angle_deg, (int, float)) or math.isinf(self.angle_deg):
            raise ValueError(f"angle_deg must be a finite number or NaN, got {self.angle_deg!r}")
        if len(tuple(self.ab_line_m)) != 4 or not all(math.isfinite(float(v)) for v in self.ab_line_m):
            raise ValueError(f"ab_line_m must be 4 finite numbers (x0, y0, x1, y1), got {self.ab_line_m!r}")

    @property
    def body_width_m(self) -> float:
        return self.robot_width_m if self.robot_width_m > 0 else self.width_m


@dataclass
class PlanPath:
    """The continuous path, sampled at most every ``sample_step_m``.

    Attributes
    ----------
    xy : ndarray (N, 2) metres; yaw : (N,) rad; curvature : (N,) 1/m (steering, + = left);
    kind : (N,) int8, index in :data:`KIND_NAMES`; working : (N,) bool implement on;
    direction : (N,) int8, +1 forward / -1 reverse.
    """

    xy: np.ndarray
    yaw: np.ndarray
    curvature: np.ndarray
    kind: np.ndarray
    working: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw)


@dataclass
class FieldFrame:
    """How the metric planning frame maps to the CRS of the input file."""

    crs: str = "local"              # "local", or a pyproj CRS string of the input
    to_input: object = None         # callable(x, y) -> (X, Y) in the input CRS, None for identity

    def convert(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.to_input is None:
            return xy
        X, Y = self.to_input(xy[:, 0], xy[:, 1])
        return np.column_stack([X, Y])


@dataclass
class CoveragePlan:
    """Result of :func:`plan_coverage` (all geometry in the metric planning frame)."""

    field: Polygon
    inner: object
    angle_rad: float
    swaths: list                    # list[Swath] in driving order (p0 -> p1 is the driving direction)
    headland_rings: list            # list of passes, each a list of (N, 2) closed rings
    path: PlanPath
    lengths_m: dict
    coverage_ratio: float
    overlap_ratio: float
    params: CoverageParams
    n_fallback_turns: int = 0
    warnings: list = dc_field(default_factory=list)
    frame: FieldFrame = dc_field(default_factory=FieldFrame)
    plan_time_ms: float = float("nan")
    n_rings_skipped: int = 0
    corner_share: float = 1.0       # cleanup_reverse_split: share of the total reverse budget the kept plan's corners
                                    # were held to (1.0: corners first), and the plan checks run to choose it
    n_split_checks: int = 0
    turnabout_footprint: bool = False  # the kept plan is a cleanup_turnabout_footprint candidate of the split

    def swath_array(self) -> np.ndarray:
        """Swaths as an array (n, 2, 2): [[x0, y0], [x1, y1]] in driving direction."""
        return np.array([[s.p0, s.p1] for s in self.swaths]).reshape(-1, 2, 2)

    def kind_segments(self):
        """Runs of constant kind/working/direction: list of (start_index, end_index_exclusive, kind,
        working, direction) over the path samples (what a controller needs besides the poses)."""
        p = self.path
        key = np.stack([p.kind, p.working.astype(np.int8), p.direction], axis=1)
        change = np.nonzero(np.any(key[1:] != key[:-1], axis=1))[0] + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(p)]])
        return [(int(a), int(b), int(p.kind[a]), bool(p.working[a]), int(p.direction[a])) for a, b in zip(starts, ends)]


# -------------------------------------------------------------------------------------------- field input
def validate_field(field: Polygon) -> Polygon:
    """Check a field polygon; raise :class:`PlanningError` with one clear line."""
    if field is None or field.is_empty:
        raise PlanningError("field polygon is empty")
    if field.geom_type != "Polygon":
        raise PlanningError(f"field must be one Polygon, got {field.geom_type}")
    coords = np.asarray(field.exterior.coords)
    if not np.all(np.isfinite(coords)):
        raise PlanningError("field polygon has non-finite coordinates")
    if not field.is_valid:
        why = explain_validity(field)
        if "Self-intersection" in why or "Ring Self-intersection" in why:
            raise PlanningError(f"field polygon is self-intersecting ({why})")
        raise PlanningError(f"field polygon is invalid ({why})")
    if field.area <= 0:
        raise PlanningError("field polygon has zero area")
    return field


#: the most swaths one plan takes. The route's cost matrix grows with the square of the swath ends (1500 swaths: 3000
#: ends, 72 MB for one matrix of them); a field of 80 x 60 m whose metres were read as degrees (a GeoJSON without
#: ``"crs": "local"``) is 6,000 km across and asked numpy for 174 TiB instead of a clear error
MAX_SWATHS = 1500


def _narrowest_m(field: Polygon) -> float:
    """The short side of the field's minimum rotated rectangle: no swath direction needs fewer swaths than this over
    the implement's width."""
    box = np.asarray(shapely.minimum_rotated_rectangle(field).exterior.coords)
    sides = np.hypot(*np.diff(box[:3], axis=0).T)
    return float(sides.min())


def _check_swath_count(n: float, width_m: float, where: str) -> None:
    if n > MAX_SWATHS:
        raise PlanningError(f"field too large for one plan: about {int(n)} swaths of {width_m:g} m {where} (at most "
                            f"{MAX_SWATHS}); split it into parts, or check its units (metres read as degrees?)")


def _polygon_from_geojson(doc):
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
        polys = [f for f in feats if (f.get("geometry") or {}).get("type") in ("Polygon", "MultiPolygon")]
        if len(polys) != 1:
            raise PlanningError(f"expected exactly one Polygon feature, found {len(polys)}")
        return polys[0].get("geometry"), polys[0].get("properties") or {}
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        return doc.get("geometry") or {}, doc.get("properties") or {}
    if isinstance(doc, dict) and doc.get("type") in ("Polygon", "MultiPolygon"):
        return doc, doc.get("properties") or {}
    raise PlanningError("no Polygon found (expected a GeoJSON Polygon, Feature or FeatureCollection)")


def _crs_name(doc, props) -> str:
    if "crs" in props:
        return str(props["crs"])
    crs = doc.get("crs") if isinstance(doc, dict) else None
    if isinstance(crs, dict):
        name = (crs.get("properties") or {}).get("name")
        if name:
            return str(name)
    return "EPSG:4326"                 # RFC 7946 default


def field_from_geojson(doc) -> tuple[Polygon, FieldFrame]:
    """Field polygon in metres and its :class:`FieldFrame` from a parsed GeoJSON document."""
    geom, props = _polygon_from_geojson(doc)
    crs_name = _crs_name(doc, props)
    try:
        poly = shape(geom)
    except Exception as exc:  # noqa: BLE001 - shapely raises many types on malformed input
        raise PlanningError(f"malformed polygon geometry ({exc})") from None
    if poly.geom_type == "MultiPolygon":
        if len(poly.geoms) != 1:
            raise PlanningError(f"expected one Polygon, got a MultiPolygon of {len(poly.geoms)}")
        poly = poly.geoms[0]
    if poly.is_empty:
        raise PlanningError("field polygon is empty")
    if crs_name.lower() in ("local", "metres", "meters", "m"):
        return validate_field(poly), FieldFrame("local", None)
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    norm = crs_name.replace("urn:ogc:def:crs:OGC:1.3:CRS84", "OGC:CRS84")
    try:
        crs_in = CRS.from_user_input(norm)
    except CRSError:
        raise PlanningError(f"unknown CRS {crs_name!r} (use 'local' for metres, EPSG:4326 or an EPSG code)") from None
    if crs_in.is_projected:
        return validate_field(poly), FieldFrame(crs_name, None)
    from agricare.core.geodesy import utm_crs_for

    xy = np.asarray(poly.exterior.coords)[:, :2]
    lon_min, lat_min = xy.min(axis=0)
    lon_max, lat_max = xy.max(axis=0)
    if not (-180 <= lon_min and lon_max <= 180 and -90 <= lat_min and lat_max <= 90):
        raise PlanningError(f"coordinates (x {lon_min:g}..{lon_max:g}, y {lat_min:g}..{lat_max:g}) are not lon/lat "
                            "degrees: metres need properties.crs 'local' (or a projected EPSG code)")
    if max(lon_max - lon_min, lat_max - lat_min) > 0.5:   # > ~50 km: metres read as degrees
        raise PlanningError(f"the field spans {lon_max - lon_min:g} x {lat_max - lat_min:g} degrees: coordinates in "
                            "metres without a crs? set properties.crs to 'local' (or a projected EPSG code)")
    lon, lat = xy.mean(axis=0)
    utm = utm_crs_for(float(lat), float(lon))
    fwd = Transformer.from_crs(crs_in, utm, always_xy=True)
    inv = Transformer.from_crs(utm, crs_in, always_xy=True)
    poly_m = shapely.transform(poly, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
    return validate_field(poly_m), FieldFrame(crs_name, inv.transform)


def load_field(path) -> tuple[Polygon, FieldFrame]:
    """Read a GeoJSON field file. Raises :class:`PlanningError` (one line) on any bad input."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise PlanningError(f"field file {str(p)!r} not found")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise PlanningError(f"field file {str(p)!r} is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanningError(f"field file {str(p)!r} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return field_from_geojson(doc)


# ----------------------------------------------------------------------------------------- connections
class _Region:
    """Prepared polygon for fast point-in-region tests; with ``fp`` (the machine's :class:`Footprint`) also the
    whole machine along a curve (:meth:`fits`)."""

    def __init__(self, geom, fp: Footprint | None = None):
        self.geom = geom
        self.fp = fp
        self.space = None             # FreeSpace raster, built on first use by a forward transit
        shapely.prepare(geom)

    def contains(self, xy: np.ndarray) -> bool:
        return bool(np.all(shapely.contains_xy(self.geom, xy[:, 0], xy[:, 1])))

    def loose(self) -> _Region:
        """The same region without the footprint check (sharing its prepared geometry and transit raster)."""
        r = _Region.__new__(_Region)
        r.geom, r.fp, r.space = self.geom, None, self.space
        return r

    def fits(self, s: T.PathSamples) -> bool:
        """The reference point of every sample in the region and, with a footprint, the whole machine at every
        sample inside the field: a turn or transit that keeps base_link half a body width in can still swing
        the trailing implement's rear corner out of the field (or into a hole) in a tight curve."""
        if not self.contains(s.xy):
            return False
        return self.fp is None or self.fp.fits(np.column_stack([s.xy, s.yaw]))


def _candidates(start, goal, p: CoverageParams, kind: str):
    return T.turn_candidates(start, goal, kind, p.turn_radius_m, p.max_curvature_rate_1pm2)


class TurnCache:
    """Turn candidates keyed by the relative geometry of the goal seen from the start.

    Primitives do not depend on where the turn starts, only on the goal in the start's frame; swaths are
    parallel, so most turns of a plan repeat. The relative pose is rounded (``pos_tol_m`` metres,
    ``yaw_tol_rad``) for the key and the turn is solved once, for the first pose met with that key, so a
    reused turn ends within about the rounding of the exact goal.

    Parameters
    ----------
    p : CoverageParams
        Turn radius and curvature rate.
    pos_tol_m, yaw_tol_rad : float
        Rounding of the relative pose.
    """

    def __init__(self, p: CoverageParams, pos_tol_m: float = 1e-4, yaw_tol_rad: float = 1e-5):
        self.p = p
        self.pos_tol_m = float(pos_tol_m)
        self.yaw_tol_rad = float(yaw_tol_rad)
        self._store: dict = {}
        self.n_solved = 0

    def key(self, start, goal) -> tuple[int, int, int]:
        """Rounded relative pose of ``goal`` in the frame of ``start``."""
        return self._key(T._to_local(start, goal))

    def _key(self, rel) -> tuple[int, int, int]:
        x, y, th = rel
        return (round(x / self.pos_tol_m), round(y / self.pos_tol_m), round(th / self.yaw_tol_rad))

    def candidates(self, start, goal, kind: str) -> list:
        """Candidate primitive lists of ``kind`` from ``start`` to ``goal``, shortest first."""
        rel = T._to_local(start, goal)
        entry = (kind, self._key(rel))
        if entry not in self._store:
            # solved for the first exact relative pose met (not the rounded one: that would turn exactly
            # anti-parallel swaths into almost-parallel ones)
            self._store[entry] = _candidates(np.zeros(3), np.array(rel), self.p, kind)
            self.n_solved += 1
        return self._store[entry]

    def length(self, start, goal, kind: str) -> float:
        """Length (m) of the shortest candidate, ``inf`` when there is none."""
        c = self.candidates(start, goal, kind)
        return T.primitives_length(c[0]) if c else math.inf


def _reverse_length(s: T.PathSamples) -> float:
    seg = np.hypot(*np.diff(s.xy, axis=0).T)
    return float(np.sum(seg[s.direction[1:] < 0]))


def _forward(start, goal, p: CoverageParams, region: _Region):
    """Forward in-field transit, not much longer than a turn: at most ``turn_detour_radii`` turning radii plus twice
    the distance (None otherwise)."""
    if region.space is None:
        region.space = FreeSpace(region.geom, res_m=max(0.5, min(2.0, p.turn_radius_m / 4)))
    long_ok = p.turn_detour_radii > 8.0
    s = forward_transit(start, goal, p.turn_radius_m, p.sample_step_m, region.geom, region.contains, region.space,
                        max_legs=40 if long_ok else 12, fits=region.fits)
    cap = p.turn_detour_radii * p.turn_radius_m + 2.0 * math.hypot(*(goal[:2] - start[:2]))
    if s is not None and s.length_m <= cap:
        return s
    return None


def connect(start, goal, p: CoverageParams, region: _Region, cache: TurnCache | None = None):
    """A drivable connection from ``start`` to ``goal`` that stays in ``region``.

    Tries the requested turn type, then every Reeds-Shepp / Dubins word (fishtail / three-point turns
    are C|C|C Reeds-Shepp words; with ``transit="forward"`` a forward in-field detour replaces a Reeds-Shepp
    word that reverses more than two turning radii), then backing up along the finished swath before
    turning. With a
    :class:`TurnCache` the candidates of repeated relative geometries are solved once.

    With the machine's footprint on the region, connections are checked with the whole machine inside the field;
    when none fits that way, the one that keeps only the reference point in (as without a footprint) is returned and
    the plan's footprint check warns about it (a narrow headland: a plan with a warning rather than no plan).

    Returns
    -------
    (PathSamples, fallback_used) or (None, True) when nothing fits.
    """
    s, fb = _connect(start, goal, p, region, cache)
    if s is None and region.fp is not None:
        return _connect(start, goal, p, region.loose(), cache)
    return s, fb


def _connect(start, goal, p: CoverageParams, region: _Region, cache: TurnCache | None = None):
    """:func:`connect` for one region (its footprint check as it has one)."""
    step = p.sample_step_m
    order = [p.turn_type] + [t for t in ("dubins", "reeds_shepp") if t != p.turn_type]
    for k, kind in enumerate(order):
        cands = cache.candidates(start, goal, kind) if cache is not None else _candidates(start, goal, p, kind)
        for prims in cands[:12]:
            s = T.sample_primitives(start, prims, step)
            if region.fits(s):
                if k > 0 and kind == "reeds_shepp" and p.transit == "forward" and \
                        _reverse_length(s) > p.turn_reverse_detour_m:
                    # a forward in-field detour rather than a long reverse (tracked poorly by Ackermann machines)
                    fw = _forward(start, goal, p, region)
                    if fw is not None:
                        return fw, True
                return s, k > 0
    if p.transit == "forward":
        fw = _forward(start, goal, p, region)
        if fw is not None:
            return fw, True
    for back in (1.0, 2.0, 4.0):
        b = back * p.turn_radius_m
        s0 = np.array([start[0] - b * math.cos(start[2]), start[1] - b * math.sin(start[2]), start[2]])
        for prims in T.reeds_shepp_candidates(s0, goal, p.turn_radius_m)[:8]:
            full = [(-b, 0.0, 0.0)] + prims
            s = T.sample_primitives(start, full, step)
            if region.fits(s):
                return s, True
    return None, True


def _cost_matrix(swaths, p: CoverageParams, region: _Region) -> np.ndarray:
    """Exit -> entry connection lengths (m) between oriented swaths, shape (2n, 2n)."""
    entry, exit_ = end_poses(swaths)
    m = len(entry)
    ii, jj = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    cost = T.dubins_lengths(exit_[ii.ravel()], entry[jj.ravel()], p.turn_radius_m).reshape(m, m)
    if p.turn_type == "dubins_cc":
        # cheap closed-form estimate on every pair; the route's turns are solved exactly afterwards
        est = T.dubins_cc_lengths(exit_[ii.ravel()], entry[jj.ravel()], p.turn_radius_m,
                                  p.max_curvature_rate_1pm2).reshape(m, m)
        cost = np.where(np.isfinite(est), est, cost * 3)
    elif p.turn_type != "dubins":
        near_lim = 4 * p.turn_radius_m + 4 * p.width_m
        cache = {}
        for a in range(m):
            for b in range(m):
                if a // 2 == b // 2:
                    continue
                d = math.hypot(*(entry[b, :2] - exit_[a, :2]))
                if d > near_lim:
                    continue
                rel = T._to_local(exit_[a], entry[b])
                key = (round(rel[0], 2), round(rel[1], 2), round(rel[2], 3))
                if key not in cache:
                    c = _candidates(np.zeros(3), np.array(rel), p, p.turn_type)
                    cache[key] = T.primitives_length(c[0]) if c else cost[a, b] * 3
                cost[a, b] = cache[key]
    # a connection whose straight chord leaves the field needs a detour: penalise it (one vectorised test)
    a_idx, b_idx = np.nonzero((cost > 6 * p.turn_radius_m) & ((ii // 2) != (jj // 2)))
    if len(a_idx):
        t = np.linspace(0.0, 1.0, 8)
        pts = exit_[a_idx, None, :2] + t[None, :, None] * (entry[b_idx, None, :2] - exit_[a_idx, None, :2])
        inside = shapely.contains_xy(region.geom, pts[..., 0].ravel(), pts[..., 1].ravel()).reshape(pts.shape[:2])
        bad = ~np.all(inside, axis=1)
        cost[a_idx[bad], b_idx[bad]] *= 3.0
    for i in range(len(swaths)):
        cost[2 * i, 2 * i + 1] = cost[2 * i + 1, 2 * i] = 1e7
        cost[2 * i, 2 * i] = cost[2 * i + 1, 2 * i + 1] = 1e7
    return cost


# --------------------------------------------------------------------------------------------- assembly
def _straight(p0, p1, step):
    L = float(math.hypot(p1[0] - p0[0], p1[1] - p0[1]))
    yaw = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    return T.sample_primitives((p0[0], p0[1], yaw), [(L, 0.0, 0.0)], step)


def _ring_samples(ring: np.ndarray) -> T.PathSamples:
    d = np.diff(ring, axis=0)
    seg = np.hypot(d[:, 0], d[:, 1])
    yaw = np.arctan2(d[:, 1], d[:, 0])
    yaw = np.concatenate([yaw, yaw[:1]])
    dyaw = np.diff(np.unwrap(np.concatenate([yaw[-2:-1], yaw])))
    kappa = np.concatenate([[0.0], dyaw[1:] / np.maximum(seg, 1e-9)])
    kappa = np.resize(kappa, len(ring))
    return T.PathSamples(ring.copy(), yaw[: len(ring)], kappa, np.ones(len(ring), dtype=np.int8), float(seg.sum()))


class _Builder:
    def __init__(self, step):
        self.step = step
        self.parts = []          # (PathSamples, kind, working)
        self.lengths = {n: 0.0 for n in ("swaths", "turns", "headland", "transit")}
        self.corner_reverse_m = 0.0      # reversing inside worked-corner manoeuvres

    def add(self, s: T.PathSamples, kind: int, working: bool):
        self.parts.append((s, kind, working))
        key = {KIND_SWATH: "swaths", KIND_TURN: "turns", KIND_HEADLAND: "headland", KIND_TRANSIT: "transit"}[kind]
        self.lengths[key] += s.length_m

    def copy(self) -> _Builder:
        """A builder holding the same parts so far (the parts themselves are shared: they are never changed)."""
        c = _Builder(self.step)
        c.parts, c.lengths, c.corner_reverse_m = list(self.parts), dict(self.lengths), self.corner_reverse_m
        return c

    def build(self) -> PlanPath:
        xy, yaw, k, kind, work, dirn = [], [], [], [], [], []
        for i, (s, kd, w) in enumerate(self.parts):
            sl = slice(1, None) if i > 0 else slice(None)
            xy.append(s.xy[sl])
            yaw.append(s.yaw[sl])
            k.append(s.kappa[sl])
            n = len(s.yaw[sl])
            kind.append(np.full(n, kd, dtype=np.int8))
            work.append(np.asarray(w, dtype=bool)[sl] if np.ndim(w) else np.full(n, w, dtype=bool))
            dirn.append(s.direction[sl])
        if not xy:
            z = np.zeros(0)
            return PlanPath(np.zeros((0, 2)), z, z, z.astype(np.int8), z.astype(bool), z.astype(np.int8))
        return PlanPath(np.concatenate(xy), np.concatenate(yaw), np.concatenate(k), np.concatenate(kind),
                        np.concatenate(work), np.concatenate(dirn))


def coverage_metrics(inner, swaths, width_m: float) -> tuple[float, float]:
    """(coverage_ratio, overlap_ratio) of the inner field by the swath strips (flat-capped buffers)."""
    area = inner.area
    if area <= 0 or not swaths:
        return 0.0, 0.0
    strips = [LineString([s.p0, s.p1]).buffer(0.5 * width_m, cap_style="flat") for s in swaths]
    clipped = [shapely.intersection(st, inner) for st in strips]
    # snap to a 1 mm grid: strips sharing an edge make GEOS unions drop whole strips otherwise
    union = shapely.union_all(clipped, grid_size=1e-3)
    cov = union.area / area
    over = (sum(c.area for c in clipped) - union.area) / area
    return float(min(cov, 1.0)), float(max(over, 0.0))


def _choose_route(cell_idx, swaths, cost: np.ndarray, p: CoverageParams):
    """Route over the swaths for ``p.route`` with the connection costs ``cost``."""
    if p.route != "optimal":
        return pattern_route(cell_idx, p.route, swaths, cost)
    k0 = max(2, math.ceil(2 * p.turn_radius_m / p.width_m))
    pats = ("boustrophedon", "snake", "spiral", f"skip{k0}", f"skip{k0 + 1}", f"skip{k0 + 2}")
    seeds = [pattern_route(cell_idx, r, swaths, cost) for r in pats]
    return optimal_route(cost, seeds, p.optimizer_time_limit_s, solution_limit=p.optimizer_solution_limit)


def _connect_route(route, cell_idx, swaths, cost: np.ndarray, p: CoverageParams, region: _Region,
                   cache: TurnCache, max_rounds: int = 4, tol_m: float = 0.05):
    """Drive the route's connections and re-plan the route where they cost more than estimated (lazy).

    Each connection of the route is built by :func:`connect` (the requested turn type solved exactly, or
    the fallback that stays in the field) and its driven length written into ``cost`` (in place, never
    lowered). When one turned out longer than its estimate by more than ``tol_m`` (an estimated curvature-
    continuous turn, a turn that would have left the field) the route is chosen again with the corrected
    costs (the optimal route by a descent from the previous one, :func:`improve_route`), at most
    ``max_rounds`` times.

    Returns
    -------
    (route, connections) where ``connections[(a, b)] = (PathSamples or None, fallback_used)`` for the
    oriented-swath arcs a -> b of the route (and of earlier candidates).
    """
    entry, exit_ = end_poses(swaths)
    conns: dict = {}
    for rnd in range(max_rounds + 1):
        worse = False
        nodes = [2 * i + int(r) for i, r in route]
        for a, b in zip(nodes[:-1], nodes[1:]):
            if (a, b) in conns:
                continue
            c, fb = connect(exit_[a], entry[b], p, region, cache)
            conns[(a, b)] = (c, fb)
            driven = c.length_m if c is not None else 1e7
            if driven > cost[a, b] + tol_m:
                worse = True
            cost[a, b] = max(cost[a, b], driven)
        if not worse or rnd == max_rounds:
            break
        if p.route == "optimal":
            route = improve_route(cost, route)
        else:
            route = pattern_route(cell_idx, p.route, swaths, cost)
    return route, conns


def plan_coverage(field: Polygon, params: CoverageParams, frame: FieldFrame | None = None,
                  check=None) -> CoveragePlan:
    """Plan the coverage of a field.

    With ``corner_turns`` and ``corner_choose`` the field is planned once per subset of the headland passes that get
    worked corners (every pass, each pass alone, none) and the plan whose implement sweeps most of the field
    (:func:`plan_sweep_area`) is kept; the first of equals in that order.

    With ``corner_turns``, ``cleanup_reverse_split`` and a finite ``max_total_reverse_m`` the field is planned with the
    corner manoeuvres allowed all of the total reverse budget (the base plan) and each given share of it (the clean-up
    exits get the rest), and the plans are ranked by the area their trailing implement works (:func:`_trail_worked`).
    A plan other than the base one is kept only if ``check`` (a callable: plan -> the largest distance, m, the machine
    driving it is predicted outside the field: the robot's own controller on its own model,
    :class:`agricare.core.missions.farm.MissionPlanCheck`) predicts it inside, or no further outside than the base
    plan; else the next one. Without a ``check`` nothing is split (the base plan): a plan the robot's controller was
    not asked about is not preferred over the corners-first one. Only the plans that are taken are checked
    (one check when the best one is inside, none when the base plan works most), and a share that would not hold the
    corners back (the base plan's corners reverse no more than it) is not planned again.

    Parameters
    ----------
    field : shapely Polygon
        Field boundary in metres (holes = keep-out areas).
    params : CoverageParams
    frame : FieldFrame, optional
        Kept on the plan for :func:`plan_to_json` (output in the input CRS).

    Returns
    -------
    CoveragePlan

    Raises
    ------
    PlanningError
        Invalid field, field smaller than the headland, or no drivable connection.
    """
    if params.corner_turns and params.cleanup_reverse_split and math.isfinite(params.max_total_reverse_m) and \
            check is not None:
        return _plan_split(field, params, frame, check)
    if params.cleanup_turnabout_footprint:
        # multi-point turn exits under a footprint only behind the check's veto (the split): not here
        plan = _plan_unsplit(field, dataclasses.replace(params, cleanup_turnabout_footprint=False), frame)
        plan.params = params
        return plan
    return _plan_unsplit(field, params, frame)


def _plan_unsplit(field: Polygon, params: CoverageParams, frame: FieldFrame | None = None) -> CoveragePlan:
    """:func:`plan_coverage` without the reverse split: ``corner_choose``'s subsets, or :func:`_plan_in_budget`."""
    if params.corner_turns and params.corner_choose and params.plan_headland and params.headland_width_m > 0:
        n = len(headland_offsets(params.headland_width_m, params.width_m, params.body_width_m))
        masks = [None] + ([tuple(k == j for k in range(n)) for j in range(n)] if n > 1 else []) + [(False,) * n]
        best = None
        for mask in masks:
            plan = _plan_in_budget(field, params, frame, mask)
            area = plan_sweep_area(plan)
            if best is None or area > best[0] + 1e-6:
                best = (area, plan)
        return best[1]
    return _plan_in_budget(field, params, frame)


def plan_reverse_m(plan: CoveragePlan) -> float:
    """Metres the plan's path is driven in reverse (all of it: corner manoeuvres, connections, clean-up exits)."""
    path = plan.path
    if len(path) < 2:
        return 0.0
    seg = np.hypot(*np.diff(path.xy, axis=0).T)
    return float(np.sum(seg[np.asarray(path.direction)[1:] < 0]))


def _plan_in_budget(field: Polygon, params: CoverageParams, frame: FieldFrame | None = None,
                    corner_mask: tuple | None = None, tries: int = 3) -> CoveragePlan:
    """:func:`_plan_coverage`, and with worked corners and a finite ``max_total_reverse_m`` planned again while the
    plan reverses more than that, the corners held to what they reversed less the excess (and a sample step either
    side): the corner rings' budget is set before the rings are connected, and a connection onto an inner corner
    ring may reverse (a Reeds-Shepp word where no forward one fits: bench/farm_missions.py seed 101, 4.5 m onto the
    inner ring after 29.3 m of corners, 33.8 m for 30). The first plan within the total, else the one reversing
    least; it keeps ``params``."""
    plan = _plan_coverage(field, params, frame, corner_mask)
    total = float(params.max_total_reverse_m)
    if not (params.corner_turns and math.isfinite(total)):
        return plan
    best, q = plan, params
    for _ in range(tries):
        rev = plan_reverse_m(plan)
        used = corner_reverse_of(plan)
        if rev <= total + 1e-6 or used <= 0.0:
            break
        q = dataclasses.replace(q, max_corner_reverse_m=max(0.0, min(q.max_corner_reverse_m, used)
                                                            - (rev - total) - 2 * q.sample_step_m))
        plan = _plan_coverage(field, q, frame, corner_mask)
        plan.params = params
        if plan_reverse_m(plan) < plan_reverse_m(best) - 1e-9 or plan_reverse_m(plan) <= total + 1e-6:
            best = plan
    return best


def corner_reverse_of(plan: CoveragePlan) -> float:
    """Metres the plan's worked corners reverse (their manoeuvres and gaps' S, as :func:`corner_ring` counts them)."""
    return float(sum(r.reverse_m for pass_rings in plan.headland_rings for r in pass_rings
                     if isinstance(r, CornerRing)))


def _plan_split(field: Polygon, params: CoverageParams, frame: FieldFrame | None, check) -> CoveragePlan:
    """:func:`plan_coverage` with ``cleanup_reverse_split``: the base plan (corners first) and one plan per share of
    the total reverse budget held for the corners, ranked by the trailing implement's worked area, the best one that
    ``check`` does not predict further outside the field than the base plan (the base plan itself unchecked)."""
    total = float(params.max_total_reverse_m)
    one = dataclasses.replace(params, cleanup_reverse_split=(), cleanup_turnabout_footprint=False)
    base = _plan_unsplit(field, one, frame)
    used = corner_reverse_of(base)
    cands, shares, qs = [base], [1.0], [one]
    for share in sorted({float(v) for v in params.cleanup_reverse_split if float(v) < 1.0}, reverse=True):
        cap = min(float(params.max_corner_reverse_m), share * total)
        if cap >= used - 1e-9:
            continue                    # the corners of the base plan fit: the same plan
        q = dataclasses.replace(one, max_corner_reverse_m=cap)
        cands.append(_plan_unsplit(field, q, frame))
        shares.append(share)
        qs.append(q)
    if params.cleanup_turnabout_footprint and params.cleanup_turnabout_exit and len(params.footprint_m):
        # each plan again with multi-point turn exits under the footprint; one that changed nothing is left out
        for k in range(len(qs)):
            c = _plan_unsplit(field, dataclasses.replace(qs[k], cleanup_turnabout_footprint=True), frame)
            if len(c.path) == len(cands[k].path) and np.array_equal(c.path.xy, cands[k].path.xy):
                continue
            c.turnabout_footprint = True
            cands.append(c)
            shares.append(shares[k])
    for c in cands:
        c.params = params
    area = [float(_trail_worked(c.path, params).intersection(c.field).area) for c in cands]
    # best first; the base plan (index 0) first of equals
    order = sorted(range(len(cands)), key=lambda k: (-round(area[k], 6), k))
    base_out, n_checks, pick = None, 0, 0
    for k in order:
        if k == 0:
            break
        out = float(check(cands[k]))
        n_checks += 1
        if out > 0.0 and base_out is None:
            base_out = float(check(base))
            n_checks += 1
        if out <= 0.0 or out <= base_out:
            pick = k
            break
    cands[pick].corner_share, cands[pick].n_split_checks = shares[pick], n_checks
    return cands[pick]


def plan_sweep_area(plan: CoveragePlan) -> float:
    """Area (m^2) of the field the plan's working path sweeps with the implement: the strips of
    :func:`~agricare.core.planning.cleanup.worked_area` (``width_m`` wide, a segment worked when the sample it ends at
    works, as the mission lowers the implement) along the path moved ``implement_offset_m`` behind base_link, clipped
    to the field."""
    from agricare.core.planning.cleanup import worked_area

    path, p = plan.path, plan.params
    if len(path.yaw) < 2:
        return 0.0
    xy = path.xy - float(p.implement_offset_m) * np.column_stack([np.cos(path.yaw), np.sin(path.yaw)])
    return float(worked_area(xy, np.asarray(path.working, dtype=bool), p.width_m).intersection(plan.field).area)


def trailing_bar(xy, yaw, working, direction, offset_m: float, s=None):
    """Where a rigidly mounted implement ``offset_m`` behind base_link is along a path, and whether it is down, as the
    mission lowers it (:meth:`agricare.core.missions.farm.FarmMission.implement_down`, without its overlap): down where
    the plan's ``working`` flag at the bar's arc length (``s``, default the path's own) works, following the flags only
    from the last cusp on (after reversing into a corner it goes down at once), raised while reversing. Returns
    ``(bar_xy (N, 2), lowered (N,))``."""
    xy = np.asarray(xy, float)
    yaw = np.asarray(yaw, float)
    work = np.asarray(working, dtype=bool)
    dr = np.asarray(direction)
    if s is None:
        s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    n = len(dr)
    change = np.concatenate([[False], dr[1:] != dr[:-1]])
    cusp = np.maximum.accumulate(np.where(change, np.arange(n), 0))
    j = np.maximum(np.searchsorted(s, s - offset_m, side="left"), cusp)
    low = work[np.clip(j, 0, n - 1)] & (dr > 0)
    return xy - offset_m * np.column_stack([np.cos(yaw), np.sin(yaw)]), low


def _trail_worked(path: PlanPath, p: CoverageParams):
    """The area the implement works along ``path`` as the mission lowers it (:func:`trailing_bar`: the bar
    ``implement_offset_m`` behind base_link, rigidly, so it cuts the inside of bends). Without an offset the strips of
    :func:`~agricare.core.planning.cleanup.worked_area` at base_link."""
    from agricare.core.planning.cleanup import worked_area

    off = float(p.implement_offset_m)
    if off <= 0 or len(path.yaw) < 2:
        return worked_area(path.xy, np.asarray(path.working, dtype=bool), p.width_m)
    q, low = trailing_bar(path.xy, path.yaw, path.working, path.direction, off)
    return worked_area(q, low, p.width_m)


def _plan_coverage(field: Polygon, params: CoverageParams, frame: FieldFrame | None = None,
                   corner_mask: tuple | None = None) -> CoveragePlan:
    """:func:`plan_coverage` for one choice of the passes with worked corners (``corner_mask[k]`` for pass ``k``,
    outermost first; None: every pass)."""
    p = params
    field = validate_field(field)
    field = shapely.geometry.polygon.orient(field, 1.0)
    _check_swath_count(_narrowest_m(field) / p.width_m, p.width_m, "at its narrowest")
    inner = inner_field(field, p.headland_width_m)
    inner = shapely.union_all([g for g in polygons_of(inner) if g.area > 1e-3 * p.width_m ** 2])
    if inner.is_empty or inner.area < p.width_m * p.width_m:
        raise PlanningError(f"field is smaller than the headland: nothing left inside a {p.headland_width_m:g} m "
                            "headland")
    margin = 0.5 * p.body_width_m
    region_geom = field.buffer(-margin + 1e-6) if margin > 0 else field
    # with the machine's footprint, every turn and transit is checked with the whole machine inside the field (5 cm
    # in, as the corner manoeuvres and clean-up passes are)
    region = _Region(region_geom.buffer(1e-6), _machine(p, field, 0.05) if len(p.footprint_m) else None)
    # swath direction
    ab = tuple(float(v) for v in p.ab_line_m)
    if any(abs(v) > 0 for v in ab) and math.hypot(ab[2] - ab[0], ab[3] - ab[1]) > 1e-9:
        angle = math.atan2(ab[3] - ab[1], ab[2] - ab[0]) % math.pi
    elif math.isfinite(p.angle_deg):
        angle = math.radians(p.angle_deg) % math.pi
    else:
        angle = choose_angle(inner, p.width_m, p.objective, math.pi * p.turn_radius_m)
    swaths = generate_swaths(inner, angle, p.width_m, allowed=field)
    if not swaths:
        raise PlanningError("no swath fits in the inner field")
    _check_swath_count(len(swaths), p.width_m, "in the swath direction")
    cells = boustrophedon_cells(swaths, angle)
    idx_of = {id(s): i for i, s in enumerate(swaths)}
    cell_idx = [[idx_of[id(s)] for s in c] for c in cells]
    cost = _cost_matrix(swaths, p, region)
    cache = TurnCache(p)
    route = _choose_route(cell_idx, swaths, cost, p)
    route, conns = _connect_route(route, cell_idx, swaths, cost, p, region, cache)
    ordered = []
    for i, rev in route:
        s = swaths[i]
        ordered.append(Swath(s.p1.copy(), s.p0.copy(), s.line, s.cell) if rev else
                       Swath(s.p0.copy(), s.p1.copy(), s.line, s.cell))
    b = _Builder(p.sample_step_m)
    warnings = []
    n_fb = 0
    nodes = [2 * i + int(r) for i, r in route]
    for k, s in enumerate(ordered):
        if k > 0:
            c, fb = conns[(nodes[k - 1], nodes[k])]
            if c is None:
                raise PlanningError(f"no drivable connection inside the field between swaths {k - 1} and {k}; "
                                    "widen the headland or reduce the turning radius")
            n_fb += int(fb)
            b.add(c, KIND_TURN, False)
        b.add(_straight(s.p0, s.p1, p.sample_step_m), KIND_SWATH, True)
    rings = []
    n_skipped = 0
    if p.plan_headland and p.headland_width_m > 0:
        # with the machine's footprint: rings moved in where the machine would leave the field, concave corners
        # rounded (headland_rings)
        rings = headland_rings(field, headland_offsets(p.headland_width_m, p.width_m, p.body_width_m),
                               p.turn_radius_m, p.sample_step_m,
                               excess=(lambda q: _ring_footprint_excess(region.fp, q)) if region.fp is not None
                               else None,
                               warnings=warnings,
                               # with worked corners the outer rings are replaced by corner rings: the fill would bend
                               # the inner passes after rings that are not driven (more worked twice, nothing gained
                               # on farm_missions' seeded fields)
                               fill_corners=p.headland_corner_fill and not p.corner_turns)
        if p.corner_turns:
            # the corners get what the swath turns have not reversed of the field's total budget
            rings = _with_worked_corners(field, rings, headland_offsets(p.headland_width_m, p.width_m,
                                                                        p.body_width_m), p, corner_mask,
                                         reversed_m=_reverse_length_of(b))
        # what the corner rings still to be driven reverse (reserved from the total budget): a ring connection's
        # short reverse may spend only what is left beside it (bench/farm_missions.py seed 101: a 4.5 m reverse onto
        # an inner ring before corner rings of 29.3 m, 33.8 m planned for 30)
        corner_due = sum(r.reverse_m for pass_rings in rings for r in pass_rings if isinstance(r, CornerRing))
        last = ordered[-1]
        pose = np.array([*last.p1, math.atan2(last.p1[1] - last.p0[1], last.p1[0] - last.p0[0])])
        def then_forwards(lead, target):
            """``lead`` (a short move for room) and a forward transit from its end to ``target``; None without one."""
            fw = forward_transit(np.array([*lead.xy[-1], lead.yaw[-1]]), target, p.turn_radius_m, p.sample_step_m,
                                 region.geom, region.contains, region.space, fits=region.fits)
            return concat_samples([lead, fw]) if fw is not None else None

        for pass_rings in reversed(rings):           # innermost pass first, outer boundary last
            todo = list(pass_rings)
            while todo:
                corner_rings = [r for r in todo if isinstance(r, CornerRing)]
                if corner_rings:
                    ring = corner_rings[0]
                    todo.remove(ring)
                    corner_due -= ring.reverse_m
                    pose, ok = _drive_corner_ring(b, ring, pose, p, region, cache)
                    if not ok:
                        warnings.append("a headland ring could not be reached inside the field; skipped")
                        n_skipped += 1
                    continue
                best = None
                for ri, ring in enumerate(todo):
                    d = np.hypot(ring[:, 0] - pose[0], ring[:, 1] - pose[1])
                    j = int(np.argmin(d))
                    if best is None or d[j] < best[0]:
                        best = (float(d[j]), ri, j)
                _, ri, j = best
                ring = todo.pop(ri)
                loop = np.concatenate([ring[j:-1], ring[:j + 1]])
                seqs = [loop, loop[::-1].copy()]
                yaw0 = [_ring_samples(q).yaw[0] for q in seqs]
                order = sorted(range(2), key=lambda k: abs(T.wrap_angle(yaw0[k] - pose[2])))
                n_ring = len(loop) - 1
                # enter the ring a little ahead so the connection has room to turn; other entry points around
                # the ring (every eighth) when that one cannot be reached
                ahead = min(n_ring - 1, int(3 * p.turn_radius_m / p.sample_step_m))
                entries = [(k, (ahead + m * max(1, n_ring // 8)) % n_ring) for m in range(8) for k in order]
                samples = None

                def entry_target(k, idx, seqs=seqs):
                    q = seqs[k]
                    rs = _ring_samples(np.concatenate([q[idx:-1], q[:idx + 1]]))
                    return np.array([*rs.xy[0], rs.yaw[0]]), rs

                if p.transit == "forward":
                    best = None
                    for k, idx in entries:                        # direct forward turns (cheap) first
                        target, rs = entry_target(k, idx)
                        for prims in T.dubins_candidates(pose, target, p.turn_radius_m)[:6]:
                            c = T.sample_primitives(pose, prims, p.sample_step_m)
                            if region.fits(c):
                                if best is None or c.length_m < best[0].length_m:
                                    best = (c, rs)
                                break
                    samples = best
                    if samples is None and region.space is None:
                        region.space = FreeSpace(region.geom, res_m=max(0.5, min(2.0, p.turn_radius_m / 4)))
                    # forwards to every entry point before any reversing (a connection that reverses is the last
                    # resort: without a footprint it may be a long Reeds-Shepp word, 74 m on one field)
                    tries = [("forward", e) for e in entries]
                    if region.fp is not None:
                        # or drifting off the outer pass first (the whole machine checked, fewer simple connections
                        # fit)
                        tries += [("drift", e) for e in entries[:4]]
                    # a short reverse for room: within what is left of the field's reverse budget
                    left = p.max_total_reverse_m - _reverse_length_of(b) - corner_due
                    tries += [(m, e) for m in ("back1", "back2") for e in entries[:2]
                              if float(m[4:]) * p.turn_radius_m + 2 * p.sample_step_m <= left]
                    if p.ring_reverse_exit:
                        # the shortest reverse (straight back and / or a reverse arc) after which a forward
                        # half-turn fits, then forwards to any entry point: within what is left of the clean-up's
                        # budget too (every metre here comes off it)
                        if p.max_reverse_m > 0:
                            left = min(left, p.max_reverse_m - (_reverse_length_of(b) - b.corner_reverse_m))
                        tries += [("unstick", e) for e in entries] if left > 2 * p.sample_step_m else []
                        unstick_memo = {}
                else:
                    tries = []
                if region.fp is not None:
                    # the whole machine inside at every entry point before any connection that keeps only the
                    # reference point in (connect's last resort)
                    tries += [("strict", e) for e in entries[:2]]
                tries += [("any", e) for e in entries[:2]]
                for mode, (k, idx) in tries:
                    if samples is not None:
                        break
                    target, rs = entry_target(k, idx)
                    if mode == "forward":
                        c = forward_transit(pose, target, p.turn_radius_m, p.sample_step_m, region.geom,
                                            region.contains, region.space, fits=region.fits)
                    elif mode.startswith("back"):
                        # a short straight reverse to get room, then forwards
                        back = T.sample_primitives(pose, [(-float(mode[4:]) * p.turn_radius_m, 0.0, 0.0)],
                                                   p.sample_step_m)
                        c = then_forwards(back, target) if region.fits(back) else None
                    elif mode == "unstick":
                        if "q" not in unstick_memo:
                            unstick_memo["q"] = _reverse_exit(pose, p, region, region.fp, left)
                        q = unstick_memo["q"]
                        c = then_forwards(q, target) if q is not None else None
                    elif mode == "strict":
                        c, _ = _connect(pose, target, p, region, cache)
                    elif mode == "drift":
                        c = None
                        for q in _drift_off(pose, p, region):
                            c = then_forwards(q, target)
                            if c is not None:
                                break
                    else:
                        c, _ = connect(pose, target, p, region, cache)
                    if c is not None:
                        samples = (c, rs)
                if samples is None:
                    warnings.append("a headland ring could not be reached inside the field; skipped")
                    n_skipped += 1
                    continue
                b.add(samples[0], KIND_TRANSIT, False)
                b.add(samples[1], KIND_HEADLAND, True)
                pose = np.array([*samples[1].xy[-1], samples[1].yaw[-1]])
    if p.plan_cleanup and p.plan_headland and rings and ordered:
        if region.space is None:
            region.space = FreeSpace(region.geom, res_m=max(0.5, min(2.0, p.turn_radius_m / 4)))
        if p.cleanup_late_start_dead_end and p.cleanup_late_start and p.max_reverse_m > 0:
            # the clean-up planned both ways (dead-end passes whole only, or started later where no forward arrival
            # reaches their end) and the one whose implement works more kept: later starts buy passes that were
            # skipped (a pocket between a pond and a corner) but the greedy spending then buys other passes
            # (bench/field_plans.py seed 14: 97.85 -> 97.37 % with later starts alone)
            best = None
            for late in (False, True):
                bb = b.copy()
                out = _plan_cleanup(bb, field, region, region.space, pose, p, late_dead_end=late)
                area = _trail_worked(bb.build(), p).intersection(field).area
                if best is None or area > best[0] + 1e-6:
                    best = (area, bb, out)
            _, b, (pose, n_cl) = best
        else:
            pose, n_cl = _plan_cleanup(b, field, region, region.space, pose, p)
        if n_cl:
            warnings.append(f"{n_cl} clean-up pass(es) could not be reached forward inside the field; skipped")
    if region.fp is not None:
        _end_run_out(b, field, p)
    path = b.build()
    if len(p.footprint_m) and len(path):
        fp = _machine(p, field, 0.0)
        bad = fp.outside_mask(np.column_stack([path.xy, path.yaw]))
        if bad.any():
            warnings.append(f"the machine footprint leaves the field at {int(bad.sum())} of {len(path)} planned "
                            "poses (widen robot_width_m)")
    lengths = dict(b.lengths)
    lengths["total"] = lengths["swaths"] + lengths["turns"]
    cov, over = coverage_metrics(inner, ordered, p.width_m)
    return CoveragePlan(field=field, inner=inner, angle_rad=angle, swaths=ordered, headland_rings=rings,
                        path=path, lengths_m=lengths, coverage_ratio=cov, overlap_ratio=over, params=p,
                        n_fallback_turns=n_fb, warnings=warnings, frame=frame or FieldFrame(),
                        n_rings_skipped=n_skipped)


def _end_run_out(b: _Builder, field, p: CoverageParams) -> None:
    """The job's run-out where the machine ends on a working straight, shortened to what fits.

    The mission drives on ``implement_offset_m`` past a working end, so the trailing implement works the last
    metres too (:meth:`agricare.core.missions.farm.FarmMission._run_out`); it cannot see the field. A job that
    ends at a pass into a dead end (a clean-up pass stopping just clear of a hole or the boundary) then ran the
    tractor's front into the hole. Here the run-out is checked with the whole machine inside the field (and the
    clean-up passes' end margin, room for the tracker's stop): nothing changes when the whole run-out fits (the
    mission adds it); else the part that fits is appended, implement raised, so the plan no longer ends working
    and the mission adds none."""
    if p.implement_offset_m <= 0 or not b.parts:
        return
    s_last, _, working = b.parts[-1]
    if not working or len(s_last.yaw) < 2 or s_last.direction[-1] < 0 or \
            float(np.max(np.abs(T.wrap_angle(s_last.yaw[-min(len(s_last.yaw), 6):] - s_last.yaw[-1])))) > 0.02:
        return
    fp = _machine(p, field, 0.05 + p.cleanup_end_margin_m)
    x, y, th = float(s_last.xy[-1, 0]), float(s_last.xy[-1, 1]), float(s_last.yaw[-1])

    def run_out(length):
        return T.sample_primitives((x, y, th), [(length, 0.0, 0.0)], p.sample_step_m)

    whole = run_out(p.implement_offset_m)
    if fp.fits(np.column_stack([whole.xy, whole.yaw])):
        return
    length = p.implement_offset_m
    while length > 0.05:
        length -= 0.1
        q = run_out(max(length, 0.01))
        if fp.fits(np.column_stack([q.xy, q.yaw])):
            break
    b.add(run_out(max(length, 0.01)), KIND_TRANSIT, False)


def _ring_footprint_excess(fp: Footprint, poses, substeps: int = 4) -> np.ndarray:
    """Per pose of a closed ring (M, 3), in driving order: :meth:`Footprint.excess` at the pose and at ``substeps - 1``
    poses between it and each neighbour (positions on the chord, heading turning from one sample's tangent to the
    next one's), the worst of them. The ring is driven as a curve, not only at its samples (0.5-0.6 m apart): at a
    field vertex the trailing implement's corner, 3 m to the side and 1.2-2 m behind base_link, sweeps through the
    margin between two samples that both keep it (seeds 5 and 14 of bench/farm_missions.py: the planned ring 2 cm
    outside and 2 cm inside the field between samples kept 12 and 6 cm, the tracked runs 3.5 and 2.4 cm out)."""
    q = np.asarray(poses, float).reshape(-1, 3)
    e = fp.excess(q)
    if len(q) < 3 or substeps < 2:
        return e
    # the tangent at each sample from its neighbours, turned to the driving direction the caller's yaw gives
    chord = np.roll(q[:, :2], -1, axis=0) - np.roll(q[:, :2], 1, axis=0)
    tang = np.arctan2(chord[:, 1], chord[:, 0])
    flip = np.abs(np.angle(np.exp(1j * (q[:, 2] - tang)))) > 0.5 * math.pi
    tang = np.where(flip, tang + math.pi, tang)
    nxt = np.roll(np.arange(len(q)), -1)
    dyaw = np.angle(np.exp(1j * (tang[nxt] - tang)))
    worst = np.zeros(len(q))
    for f in np.arange(1, substeps) / substeps:
        mid = np.column_stack([q[:, :2] + f * (q[nxt, :2] - q[:, :2]), tang + f * dyaw])
        worst = np.maximum(worst, fp.excess(mid))
    e = np.maximum(e, worst)
    return np.maximum(e, worst[np.roll(np.arange(len(q)), 1)])


def _with_worked_corners(field, rings, offsets, p: CoverageParams, mask: tuple | None = None,
                         reversed_m: float = 0.0):
    """Replace the rounded outer-boundary ring of every pass (of the passes ``k`` with ``mask[k]``, when given) by a
    :class:`CornerRing` (worked corners) where one can be driven with the whole machine inside the field.
    ``reversed_m``: what the plan has reversed before the rings (swath turns), off the total budget."""
    fp = _machine(p, field, 0.05)
    budget = float(min(p.max_corner_reverse_m, max(0.0, p.max_total_reverse_m - reversed_m)))
    if not (p.corner_joint_budget and math.isfinite(budget)):
        return _corner_rings_of(field, rings, offsets, p, mask, fp, budget)[0]
    # every ring ranked on the whole budget, then the budget shared where the rings work most in all
    _, built = _corner_rings_of(field, rings, offsets, p, mask, fp, budget, shared=True)
    shares = joint_budgets([cr.gain_curve for cr in built], budget)
    if shares is not None:
        out, again = _corner_rings_of(field, rings, offsets, p, mask, fp, budget, fixed=shares)
        if len(again) == len(built) and sum(cr.reverse_m for cr in again) <= budget + 1e-6:
            return out
    return _corner_rings_of(field, rings, offsets, p, mask, fp, budget)[0]


def _corner_rings_of(field, rings, offsets, p: CoverageParams, mask, fp, budget: float, shared: bool = False,
                     fixed: list | None = None):
    """:func:`_with_worked_corners` with ``budget`` for all rings: each ring on what the rings before it left
    (``shared``: each on the whole budget; ``fixed``: the n-th ring built on ``fixed[n]``, in order). Returns the
    passes' rings and the corner rings built."""
    out, built = [], []
    for k, (d, pass_rings) in enumerate(zip(offsets, rings)):
        if mask is not None and not (k < len(mask) and mask[k]):
            out.append(list(pass_rings))
            continue
        g = field.buffer(-d, join_style="mitre")
        keep = list(pass_rings)
        new = []
        for poly in polygons_of(g):
            # short edges (an offset ring bending round a hole's offset, a surveyed curve) get eaten by their
            # corners: the outline simplified more, as long as a ring results
            tries = [(s, False, False) for s in (0.3, 1.0, 2.0)] + ([(0.3, True, False)] if p.corner_concave_gaps
                                                                    else [])
            tries += [(0.3, p.corner_concave_gaps, True)] if p.corner_inset_edges else []
            ring_budget = budget if fixed is None or len(built) >= len(fixed) else fixed[len(built)] + 1e-6
            for simplify_m, concave_gaps, inset_edges in tries:
                cr = corner_ring(np.asarray(poly.exterior.coords), p.width_m, p.turn_radius_m, fp,
                                 p.implement_offset_m, p.sample_step_m, math.radians(p.corner_min_angle_deg),
                                 simplify_m=simplify_m, min_leg_m=p.corner_min_leg_m,
                                 budget_m=ring_budget if math.isfinite(ring_budget) else None,
                                 ease_radius_m=p.corner_ease_radius_m,
                                 sharpness_1pm2=p.max_curvature_rate_1pm2 if p.corner_cc else 0.0,
                                 y_turns=p.corner_y_turns,
                                 loop_back=p.corner_loop_back, eased_arcs=p.corner_eased_arcs,
                                 concave_gaps=concave_gaps, inset_edges=inset_edges,
                                 partial_y_turns=p.corner_partial_y_turns, depth_gain=p.corner_depth_gain,
                                 eased_per_corner=p.corner_eased_per_corner,
                                 eased_per_side=p.corner_eased_per_side, deep_a=p.corner_deep_a,
                                 swept_gain=p.corner_swept_gain)
                if cr is not None:
                    break
            if cr is None:
                continue
            built.append(cr)
            if not shared:
                budget -= cr.reverse_m
            outer = Polygon(poly.exterior)
            # by identity: list.remove compares numpy arrays element-wise (fails on rings of other lengths)
            keep = [ring for ring in keep
                    if not (LinearRing(ring).is_ccw and outer.contains(Polygon(ring).representative_point()))]
            new.append(cr)
        out.append(new + keep)
    return out, built


def _drive_corner_ring(b, ring: CornerRing, pose, p: CoverageParams, region, cache):
    """Reach a :class:`CornerRing` at the start of its nearest reachable straight and drive it round."""
    # entered half-way along a straight (its ends may be backed into corners) and left there after the round
    def halves(k):
        st = ring.pieces[ring.starts[k]][0]
        m = len(st.yaw) // 2
        if m < 1:
            return None
        cut = [T.PathSamples(st.xy[sl], st.yaw[sl], st.kappa[sl], st.direction[sl],
                             float(np.sum(np.hypot(*np.diff(st.xy[sl], axis=0).T))))
               for sl in (slice(m, None), slice(None, m + 1))]
        return cut

    mids = [np.array([*ring.pieces[i][0].xy[len(ring.pieces[i][0].yaw) // 2],
                      ring.pieces[i][0].yaw[len(ring.pieces[i][0].yaw) // 2]]) for i in ring.starts]
    order = sorted(range(len(ring.starts)), key=lambda k: float(np.hypot(*(mids[k][:2] - pose[:2]))))
    for k in order[:8]:
        target = mids[k]
        cut = halves(k)
        if cut is None:
            continue
        c = None
        words = T.dubins_candidates(pose, target, p.turn_radius_m)[:6]
        if p.corner_cc:
            words = T.dubins_cc_candidates(pose, target, p.turn_radius_m, p.max_curvature_rate_1pm2)[:6] + words
        for prims in words:
            s = T.sample_primitives(pose, prims, p.sample_step_m)
            if region.fits(s):
                c = s
                break
        if c is None and p.transit == "forward":
            if region.space is None:
                region.space = FreeSpace(region.geom, res_m=max(0.5, min(2.0, p.turn_radius_m / 4)))
            c = forward_transit(pose, target, p.turn_radius_m, p.sample_step_m, region.geom, region.contains,
                                region.space, fits=region.fits)
        if c is None:
            c, _ = connect(pose, target, p, region, cache)
        if c is None:
            continue
        b.add(c, KIND_TRANSIT, False)
        rest = ring.rotated(ring.starts[k])[1:]
        for smp, working in [(cut[0], True)] + rest + [(cut[1], True)]:
            b.add(smp, KIND_HEADLAND if working else KIND_TURN, working)
            if not working:
                b.corner_reverse_m += _reverse_length(smp)
        last = b.parts[-1][0]
        return np.array([*last.xy[-1], last.yaw[-1]]), True
    return pose, False


def _machine(p: CoverageParams, field, margin_m: float) -> Footprint:
    """The machine (``p.footprint_m``: body and implement) checked against ``field`` shrunk by ``margin_m``."""
    return Footprint(p.footprint_m, field, margin_m=margin_m)


def _reverse_length_of(b: _Builder) -> float:
    """Metres reversed by the path built so far."""
    return float(sum(_reverse_length(s) for s, _, _ in b.parts))


def _drift_off(pose, p: CoverageParams, region: _Region) -> list:
    """Gentle forward arcs off a pass that runs close to the boundary (radius 25-80 m, 6-12 m long), the first that
    fits with the whole machine either way: from the outer pass any turn of the turning radius swings the trailing
    implement's rear corner about ``x_r * theta`` out (0.27 m for the bench's tractor) before base_link has moved in;
    a long, gentle arc moves base_link in first (``s^2 / 2 r``: 0.45 m after 6 m of a 40 m arc) while the swing
    stays at ``x_r^2 / 2 r`` (5 cm at 40 m, 2.5 cm at 80 m)."""
    out = []
    for side in (1.0, -1.0):                       # the first that fits each way (each costs a transit search)
        for radius, length in ((40.0, 6.0), (25.0, 6.0), (80.0, 8.0), (80.0, 12.0)):
            q = T.sample_primitives(pose, [(length, side / radius, side / radius)], p.sample_step_m)
            if region.fits(q):
                out.append(q)
                break
    return out


def _turn_room(pose, p: CoverageParams, region: _Region) -> bool:
    """Whether a forward half-turn of the minimum radius (left or right) from ``pose`` stays in the region."""
    for k in (1.0, -1.0):
        s = T.sample_primitives(pose, [(math.pi * p.turn_radius_m, k / p.turn_radius_m, k / p.turn_radius_m)],
                                p.sample_step_m)
        if region.fits(s):
            return True
    return False


def _clear_leg(s: T.PathSamples, start, goal, fp: Footprint, free_m: float) -> bool:
    """The machine ``fp`` fits at every sample of ``s``, a leg of a transit from pose ``start`` to pose ``goal`` (or
    the whole transit), except within ``free_m`` of arc of an end that is the transit's and where ``fp`` itself does
    not fit (a transit leaving a pass that ran along the edge has to start there; one that only comes close on its
    way, or on its last curve onto the next pass, does not)."""
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(s.xy, axis=0).T))])
    keep = np.ones(len(cum), dtype=bool)
    for end, arc, i in ((start, cum, 0), (goal, cum[-1] - cum, -1)):
        if np.allclose(s.xy[i], end[:2], atol=1e-6) and not fp.fits(np.asarray(end, float)[None, :]):
            keep &= arc > free_m
    return not keep.any() or fp.fits(np.column_stack([s.xy[keep], s.yaw[keep]]))


def _reverse_exit(end, p: CoverageParams, region: _Region, fp, budget_m: float):
    """The shortest reverse out of a dead end after which a forward half-turn fits: straight back, or straight
    back then a reverse arc of the minimum radius (a three-point turn's second leg turns the machine, so far less
    reversing than straight back until there is room for a U-turn); inside the region and, with ``fp``, the whole
    machine inside the field. None when nothing fits within ``budget_m`` (minus a sample step either end: the
    path labels a leg's direction one sample late). With ``cleanup_turnabout_exit`` (plans without a footprint)
    a multi-point turn inside the dead end where it reverses less
    (:func:`agricare.core.planning.cleanup.turnabout_exit`; its cost in :func:`_exit_reverse_m`)."""
    R = p.turn_radius_m
    cands = []
    for f in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        if f > 0:
            cands.append((f * R, [(-f * R, 0.0, 0.0)]))
        for ang in (math.pi / 4, math.pi / 2, 3 * math.pi / 4):
            for k in (1.0 / R, -1.0 / R):
                prims = ([(-f * R, 0.0, 0.0)] if f > 0 else []) + [(-ang * R, k, k)]
                cands.append((f * R + ang * R, prims))
    cands.sort(key=lambda c: c[0])
    found = None
    for length, prims in cands:
        if length + _leg_margin(p) > budget_m + 1e-6:
            break
        r = T.sample_primitives(end, prims, p.sample_step_m)
        if not region.contains(r.xy):
            continue
        if not _turn_room(np.array([*r.xy[-1], r.yaw[-1]]), p, region):
            continue
        if fp is not None and not fp.fits(np.column_stack([r.xy, r.yaw])):
            continue
        found = r
        break
    if not p.cleanup_turnabout_exit or (p.footprint_m and not p.cleanup_turnabout_footprint):
        return found
    r = found
    # a multi-point turn inside the tip where it reverses less than backing out until a half-turn fits
    from agricare.core.planning.cleanup import turnabout_exit

    # under a footprint (a split candidate, cleanup_turnabout_footprint): the whole machine inside, kept
    # cleanup_end_margin_m further in (its cusps are stops, which a tracker overshoots like a pass's end)
    fpm = fp.inset(p.cleanup_end_margin_m) if fp is not None and p.cleanup_end_margin_m > 0 else fp

    def fits(s):
        return region.contains(s.xy) and (fpm is None or fpm.fits(np.column_stack([s.xy, s.yaw])))

    cap = budget_m if r is None else min(budget_m, r.length_m + _leg_margin(p) - 1e-3)
    t = turnabout_exit(end, R, p.sample_step_m, fits, lambda q: _turn_room(q, p, region), cap)
    if t is None:
        return r
    t[0].reverse_m = t[1]
    return t[0]


def _leg_margin(p: CoverageParams) -> float:
    """What a reverse leg costs the budget beyond its length: with ``cleanup_exact_charge`` the sample after its cusp
    (plan_work_figures counts a segment with either end reversing), else a sample either end."""
    return p.sample_step_m if p.cleanup_exact_charge else 2 * p.sample_step_m


def _counted_reverse(path: PlanPath, p: CoverageParams) -> float:
    """Metres of ``path`` driven in reverse as plan_work_figures counts them (a segment with either end reversing),
    and the segment after its end where it ends reversing (the next part's first sample counts it)."""
    if len(path) < 2:
        return 0.0
    seg = np.hypot(*np.diff(path.xy, axis=0).T)
    d = path.direction
    return float(np.sum(seg[(d[1:] < 0) | (d[:-1] < 0)])) + (p.sample_step_m if d[-1] < 0 else 0.0)


def _exit_reverse_m(r: T.PathSamples, p: CoverageParams) -> float:
    """What a reverse exit (:func:`_reverse_exit`) costs the reverse budget: its length and a sample either end (the
    path labels a leg's direction one sample late), or a multi-point turn's own count of its reverse legs."""
    return getattr(r, "reverse_m", r.length_m + _leg_margin(p))


def _exit_working(r: T.PathSamples) -> np.ndarray:
    """Per sample of a dead-end pass's exit, whether the implement works there: on its forward legs (a multi-point
    turn's forward arcs and run-out, inside the tip), not reversing and not at the cusps (a sample works the segment
    that ends at it, so the sample and the one before it forward)."""
    fw = np.asarray(r.direction) > 0
    return np.concatenate([[False], fw[1:] & fw[:-1]])


def _approachable(goal, p: CoverageParams, region: _Region, length_m: float = 2.0) -> bool:
    """Whether a forward arrival at ``goal`` can end with ``length_m`` of straight or of either full-lock arc inside
    the region (the machine's last metres before the pose, driven backwards from it): a cheap test before a
    transit search (a raster route and dozens of Dubins legs) to a pose that lies headed out of a dead end."""
    k = 1.0 / p.turn_radius_m
    for kk in (0.0, k, -k):
        if region.fits(T.sample_primitives(goal, [(-length_m, kk, kk)], p.sample_step_m)):
            return True
    return False


def _fit_pass(s0, s1, yaw: float, fp: Footprint, step_m: float = 0.25, min_len_m: float = 1.0):
    """The pass ``s0 -> s1`` shortened at both ends until the machine's footprint fits there; (None, None) when
    less than ``min_len_m`` is left."""
    u = np.array([math.cos(yaw), math.sin(yaw)])
    length = float(np.dot(s1 - s0, u))
    a, b = 0.0, length
    while a < b - min_len_m and not fp.fits([[*(s0 + a * u), yaw]]):
        a += step_m
    while b > a + min_len_m and not fp.fits([[*(s0 + b * u), yaw]]):
        b -= step_m
    if b - a < min_len_m or not fp.fits([[*(s0 + a * u), yaw], [*(s0 + b * u), yaw]]):
        return None, None
    return s0 + a * u, s0 + b * u


def _plan_cleanup(b: _Builder, field, region: _Region, space: FreeSpace, pose, p: CoverageParams,
                  late_dead_end: bool = False):
    """Append clean-up passes to the builder (those left forwards greedy nearest first, then those needing a
    reverse exit, within ``max_reverse_m``), in rounds: passes in the direction that works most of each leftover
    patch, then over what is still left passes along each patch's long axis (a corner tip's cross passes cannot be
    reached in the narrow tip). Dead-end passes: with ``cleanup_reverse_by_gain`` taken one at a time by the area
    each still works per metre reversed, and a third round over passes in every direction of each patch
    (:func:`~agricare.core.planning.cleanup.patch_pass_options`: in a tip the direction that works most on paper is
    the one that cannot be reached); otherwise by reverse metres per metre of pass. With ``cleanup_wedge_passes_m``
    (and ``cleanup_reverse_by_gain``) curved passes into the wedges beside an obstacle near the edge compete with
    the straight ones (:func:`~agricare.core.planning.cleanup.arc_passes`). With ``cleanup_counted_fill`` a last
    round spends what the budget has left as the plan counts it (the rounds charge a sample more per leg). With
    ``cleanup_corner_back_in`` passes backed into the patches at the field's edge compete for the budget from the first
    round and in that last one (:func:`~agricare.core.planning.cleanup.back_in_passes`). Returns (pose, number
    skipped in the last round that spent reverse)."""
    from agricare.core.planning.cleanup import (ArcPass, BackInPass, arc_passes, back_in_passes, gap_lines,
                                                gap_passes, leftover_patches, patch_pass_options, patch_passes,
                                                wedge_circles, worked_area)

    edges = shapely.union_all([LineString(r.coords) for r in [field.exterior, *field.interiors]])
    inner_region = region.geom.buffer(-0.05)            # pass ends strictly inside (turns tangent to the edge)
    min_gain = max(1.0, p.cleanup_min_gain_w2 * p.width_m * p.width_m)
    # the edge passes with the bar at base_link only (cleanup_edge_in_m: with a trailing implement they worked nothing)
    edge_in = p.cleanup_edge_in_m if p.implement_offset_m == 0 else 0.0
    sofar = b.build()

    def budget_left(reverse_all: float) -> float:
        """What the clean-up may still reverse after ``reverse_all`` m in all: corner manoeuvres reverse by design
        (their own budget, ``corner_ring``'s) and are not counted against clean-up exits, but count in the total."""
        return min(p.max_reverse_m - (reverse_all - b.corner_reverse_m), p.max_total_reverse_m - reverse_all)

    if p.cleanup_exact_charge:
        reverse_all = _counted_reverse(sofar, p)
    else:
        seg = np.hypot(*np.diff(sofar.xy, axis=0).T) if len(sofar) > 1 else np.zeros(0)
        reverse_all = float(np.sum(seg[sofar.direction[1:] < 0]))
    reverse_left = budget_left(reverse_all)
    left0, counted0 = reverse_left, reverse_all

    def charge(m: float) -> None:
        """Take a reverse leg just driven off the budget: ``m`` as charged, or as the path now counts it."""
        nonlocal reverse_left
        reverse_left = left0 - (_counted_reverse(b.build(), p) - counted0) if p.cleanup_exact_charge \
            else reverse_left - m
    # with the machine's footprint known, a pass ends where the whole machine still fits (the region only keeps
    # base_link half a body width in: driving into a corner would put the tractor's front out of the field)
    fp = region.fp                              # the machine 5 cm in (plan_coverage's region), None without one
    fp_end = _machine(p, field, 0.05 + p.cleanup_end_margin_m) if fp is not None and p.cleanup_end_margin_m > 0 \
        else None

    driven = []                                 # the passes driven, as (s0, s1) after fitting
    # the transit legs tried (all with region.fits): the candidates of a round are searched for from the same pose
    # along routes that share most of their cells, and a pose the machine is stuck at fails the same legs each time
    legs_tried = {}
    # transits with cleanup_transit_clearance_m more room (their own memo: a leg may pass one check and not the other)
    fp_clear = fp.inset(p.cleanup_transit_clearance_m) if fp is not None and p.cleanup_transit_clearance_m > 0 \
        else None
    legs_clear = {}
    # the bar trails base_link: leftovers as the mission works them, and a pass left by a reverse exit works only
    # until the bar is ``implement_offset_m`` short of its end (raised at the cusp)
    trail = p.cleanup_trail_worked and p.implement_offset_m > 0

    def with_room(c, start):
        """The forward transit ``c`` to ``start`` where it keeps ``cleanup_transit_clearance_m`` of room, else one
        searched with that room (a raised transit needs no edge: room for the tracker's error where the search
        finds it); None where nothing drives there with room."""
        c0 = np.array([*c.xy[0], c.yaw[0]])
        if fp_clear is None or _clear_leg(c, c0, start, fp_clear, p.cleanup_transit_free_m):
            return c

        def fits_clear(q):
            return region.fits(q) and _clear_leg(q, c0, start, fp_clear, p.cleanup_transit_free_m)

        return forward_transit(c0, start, p.turn_radius_m, p.sample_step_m, region.geom, region.contains, space,
                               fits=fits_clear, memo=legs_clear)

    def back_in(s0, s1, yaw: float, exit_r) -> bool:
        """Work the dead-end pass ``s0 -> s1`` backwards-in, forwards-out where that reverses less than ``exit_r``
        (the forward pass's exit; None: none within the budget): a forward transit to ``s0`` headed out, straight
        back to ``s1`` with the implement raised, then forwards to ``s0`` working; the machine then faces out of the
        dead end (no exit). With the footprint both ends are fitted with the machine headed out (the implement
        leads in) and the cusp kept ``cleanup_end_margin_m`` further in, as a pass's end. True when driven."""
        nonlocal pose, reverse_left
        yaw_out = yaw + math.pi
        a, g = (s1, s0) if fp is None else _fit_pass(s1, s0, yaw_out, fp)
        if a is None:
            return False
        if fp_end is not None:                  # the cusp is a stop: room for the overshoot
            u_in = (a - g) / max(float(np.hypot(*(a - g))), 1e-9)
            while np.dot(a - g, u_in) > 1.0 and not fp_end.fits([[*a, yaw_out]]):
                a = a - 0.25 * u_in
            if not fp_end.fits([[*a, yaw_out]]):
                return False
        length = float(np.hypot(*(g - a)))
        cost = length + _leg_margin(p)          # as _exit_reverse_m charges a leg
        if cost >= (_exit_reverse_m(exit_r, p) if exit_r is not None else math.inf) - 1e-6 \
                or cost > reverse_left + 1e-6:
            return False
        goal = np.array([*g, yaw_out])
        if not _approachable(goal, p, region):
            return False
        c = forward_transit(pose, goal, p.turn_radius_m, p.sample_step_m, region.geom, region.contains, space,
                            fits=region.fits, memo=legs_tried)
        if c is None or (fp is not None and not fp.fits(np.column_stack([c.xy, c.yaw]))):
            return False
        if fp_clear is not None and not _clear_leg(c, np.array([*c.xy[0], c.yaw[0]]), goal, fp_clear,
                                                   p.cleanup_transit_free_m):
            return False
        back = T.sample_primitives(goal, [(-length, 0.0, 0.0)], p.sample_step_m)
        if not region.contains(back.xy):
            return False
        b.add(c, KIND_TRANSIT, False)
        b.add(back, KIND_TRANSIT, False)
        b.add(_straight(a, g, p.sample_step_m), KIND_HEADLAND, True)
        driven.append((a, g))
        pose = goal
        charge(cost)
        return True

    def unstick_ways(budget_m: float) -> list:
        """Moves that may get the machine out of where it stands when no forward transit leaves it (it stands headed
        into a narrowing corner, a ring or pass ended there): a forward quarter or half turn at full lock where it
        fits, gentle forward arcs off the edge, else a short reverse within ``budget_m``."""
        pre = []
        for ang in (0.5 * math.pi, math.pi):
            for k in (1.0, -1.0):
                pre.append(T.sample_primitives(pose, [(ang * p.turn_radius_m, k / p.turn_radius_m,
                                                       k / p.turn_radius_m)], p.sample_step_m))
        pre = [q for q in pre if region.fits(q)]
        if region.fp is not None and not _turn_room(pose, p, region):
            pre += _drift_off(pose, p, region)
        if p.max_reverse_m > 0 and (p.cleanup_corner_back_in or not _turn_room(pose, p, region)):
            q = _reverse_exit(pose, p, region, fp, budget_m)
            pre += [q] if q is not None else []
        return pre

    def transit_from_here(target, budget_m: float):
        """(the forward transit from where the machine stands to ``target``, None), else, where none leaves it, (the
        transit after one of the moves for room of :func:`unstick_ways` within ``budget_m``, that move), else
        (None, None)."""
        c = forward_transit(pose, target, p.turn_radius_m, p.sample_step_m, region.geom, region.contains, space,
                            fits=region.fits, memo=legs_tried)
        if c is not None:
            return c, None
        for q in unstick_ways(budget_m):
            if fp is not None and not fp.fits(np.column_stack([q.xy, q.yaw])):
                continue
            c = forward_transit(np.array([*q.xy[-1], q.yaw[-1]]), target, p.turn_radius_m, p.sample_step_m,
                                region.geom, region.contains, space, fits=region.fits, memo=legs_tried)
            if c is not None:
                return c, q
        return None, None

    def add_move(move) -> None:
        """Append a move for room (:func:`transit_from_here`), its reverse charged to the budget."""
        b.add(move, KIND_TRANSIT, False)
        if move.direction.min() < 0:
            charge(_exit_reverse_m(move, p))

    def try_pass(a, q, allow_reverse: bool, final: bool = False) -> bool:
        nonlocal pose, reverse_left
        ends = sorted([(a, q), (q, a)], key=lambda e: np.hypot(*(e[0] - pose[:2])))
        # prefer a direction that leaves room to turn forwards at the end of the pass
        ends.sort(key=lambda e: not _turn_room(np.array([*e[1], math.atan2(*(e[1] - e[0])[::-1])]), p, region))
        for s0, s1 in ends:
            yaw = math.atan2(s1[1] - s0[1], s1[0] - s0[0])
            u = np.array([math.cos(yaw), math.sin(yaw)])
            if fp is not None:
                s0, s1 = _fit_pass(s0, s1, yaw, fp)
                if s0 is None:
                    continue
                if fp_end is not None:                  # where the machine stops: more room for the overshoot
                    while np.dot(s1 - s0, u) > 1.0 and not fp_end.fits([[*s1, yaw]]):
                        s1 = s1 - 0.25 * u
                    if not fp_end.fits([[*s1, yaw]]):
                        continue
            start = np.array([*s0, yaw])
            end = np.array([*s1, yaw])
            exit_r = None
            if not _turn_room(end, p, region) and not final:
                if not allow_reverse:
                    continue
                exit_r = _reverse_exit(end, p, region, fp, reverse_left)
                if p.cleanup_back_in and back_in(s0, s1, yaw, exit_r):
                    return True
                if exit_r is None:
                    continue
            arrives = _approachable(start, p, region)
            if not arrives and p.cleanup_late_start and (not allow_reverse or late_dead_end):
                # a pass left forwards starts later, where a forward arrival fits (the rest of it still works the
                # patch); a dead-end pass too with ``late_dead_end`` (the part it no longer works stays a
                # candidate: spend_by_gain)
                while not arrives and np.dot(s1 - s0, u) > 1.0 + 0.25:
                    s0 = s0 + 0.25 * u
                    start = np.array([*s0, yaw])
                    arrives = _approachable(start, p, region)
            if not arrives:
                continue                                # nothing arrives there forwards: no transit search
            # where the machine stands headed into a narrowing corner (a ring or pass ended there) and the transit's
            # curves find no way round: a forward arc of the turning radius first (a quarter or half turn) where it
            # fits, else a short reverse (charged to the budget with this pass's exit)
            c, unstick = transit_from_here(start, reverse_left - (_exit_reverse_m(exit_r, p)
                                                                  if exit_r is not None else 0.0))
            if c is None and p.cleanup_late_start and not allow_reverse:
                # no transit reaches the start: 1-3 m later along the pass (its rest still works the patch)
                for shift in (1.0, 2.0, 3.0):
                    if np.dot(s1 - s0, u) - shift < 1.0:
                        break
                    st2 = np.array([*(s0 + shift * u), yaw])
                    if _approachable(st2, p, region):
                        c = forward_transit(pose, st2, p.turn_radius_m, p.sample_step_m, region.geom,
                                            region.contains, space, fits=region.fits, memo=legs_tried)
                        if c is not None:
                            s0, start = s0 + shift * u, st2
                            break
            if c is None:
                continue
            if fp is not None and not fp.fits(np.column_stack([c.xy, c.yaw])):
                continue
            c = with_room(c, start)
            if c is None:
                continue                            # nothing drives there with room: the pass is left to another
            if unstick is not None:
                add_move(unstick)
            b.add(c, KIND_TRANSIT, False)
            b.add(_straight(s0, s1, p.sample_step_m), KIND_HEADLAND, True)
            if trail and exit_r is not None:
                u = (s1 - s0) / max(float(np.hypot(*(s1 - s0))), 1e-9)
                driven.append((s0, s1 - min(p.implement_offset_m, float(np.hypot(*(s1 - s0)))) * u))
            else:
                driven.append((s0, s1))
            pose = end
            if exit_r is not None:
                b.add(exit_r, KIND_TRANSIT, _exit_working(exit_r) if p.cleanup_exit_working else False)
                pose = np.array([*exit_r.xy[-1], exit_r.yaw[-1]])
                charge(_exit_reverse_m(exit_r, p))
            return True
        return False

    def arc_exit(end, k: float, budget_m: float):
        """A dead-end curved pass's exit: reversing along its own circle (curvature ``k``) until a forward half-turn
        fits, or :func:`_reverse_exit`'s, whichever reverses less; None when neither fits ``budget_m``."""
        best = _reverse_exit(end, p, region, fp, budget_m)
        cap = budget_m if best is None else min(budget_m, _exit_reverse_m(best, p) - 1e-3)
        back = 0.5
        while back + _leg_margin(p) <= cap + 1e-6:
            q = T.end_pose(end, [(-back, k, k)])
            if _turn_room(q, p, region):
                r = T.sample_primitives(end, [(-back, k, k)], p.sample_step_m)
                if region.contains(r.xy) and (fp is None or fp.fits(np.column_stack([r.xy, r.yaw]))):
                    return r
                break
            back += 0.5
        return best

    def arc_sub(s, i0: int, i1: int) -> T.PathSamples:
        xy = s.xy[i0:i1 + 1]
        return T.PathSamples(xy, s.yaw[i0:i1 + 1], s.kappa[i0:i1 + 1], s.direction[i0:i1 + 1],
                             float(np.sum(np.hypot(*np.diff(xy, axis=0).T))))

    def arc_ways(arc):
        """The curved pass driven counter-clockwise and clockwise: sampled, the way ending with room to turn first."""
        ways = [T.sample_primitives(arc.start_pose(ccw), arc.prims(ccw), p.sample_step_m) for ccw in (True, False)]
        return sorted(ways, key=lambda w: (not _turn_room(np.array([*w.xy[-1], w.yaw[-1]]), p, region),
                                           float(np.hypot(*(w.xy[0] - pose[:2])))))

    def try_arc(arc, allow_reverse: bool, final: bool = False):
        """Drive the curved pass ``arc`` (cleanup.ArcPass) as :func:`try_pass` drives a straight one; the strip it
        works when driven, else None."""
        nonlocal pose, reverse_left
        min_n = max(1, int(round(1.0 / p.sample_step_m)))
        for s in arc_ways(arc):
            if not region.contains(s.xy):
                continue
            i0, i1 = 0, len(s.xy) - 1
            if fp is not None:                  # trimmed at both ends until the whole machine fits (as _fit_pass)
                fe = fp_end if fp_end is not None else fp
                while i1 - i0 > min_n and not fp.fits([[*s.xy[i0], s.yaw[i0]]]):
                    i0 += 1
                while i1 - i0 > min_n and not fe.fits([[*s.xy[i1], s.yaw[i1]]]):
                    i1 -= 1
                if i1 - i0 <= min_n or not fp.fits(np.column_stack([s.xy[i0:i1 + 1], s.yaw[i0:i1 + 1]])):
                    continue
            end = np.array([*s.xy[i1], s.yaw[i1]])
            exit_r = None
            if not _turn_room(end, p, region) and not final:
                if not allow_reverse:
                    continue
                exit_r = arc_exit(end, float(s.kappa[i1]), reverse_left)
                if exit_r is None:
                    continue
            start = np.array([*s.xy[i0], s.yaw[i0]])
            arrives = _approachable(start, p, region)
            while not arrives and i1 - i0 > 2 * min_n:  # a later start where a forward arrival fits
                i0 += min_n
                start = np.array([*s.xy[i0], s.yaw[i0]])
                arrives = _approachable(start, p, region)
            if not arrives:
                continue
            c = forward_transit(pose, start, p.turn_radius_m, p.sample_step_m, region.geom, region.contains, space,
                                fits=region.fits, memo=legs_tried)
            if c is None or (fp is not None and not fp.fits(np.column_stack([c.xy, c.yaw]))):
                continue
            c = with_room(c, start)
            if c is None:
                continue
            work = arc_sub(s, i0, i1)
            b.add(c, KIND_TRANSIT, False)
            b.add(work, KIND_HEADLAND, True)
            pose = end
            wxy = work.xy
            if exit_r is not None:
                b.add(exit_r, KIND_TRANSIT, False)
                pose = np.array([*exit_r.xy[-1], exit_r.yaw[-1]])
                charge(_exit_reverse_m(exit_r, p))
                if trail:                       # the bar is raised at the cusp, implement_offset_m short of it
                    keep = max(2, len(wxy) - int(round(p.implement_offset_m / p.sample_step_m)))
                    wxy = wxy[:keep]
            return LineString(wxy).buffer(0.5 * p.width_m, cap_style="flat")
        return None

    def arc_cost(arc) -> float:
        """The reverse metres a curved pass needs (both ways: the one that needs least; 0 with an open end that is
        reached forwards: a way out of the wedge starts in it, where no forward arrival fits)."""
        costs = []
        for s in arc_ways(arc):
            end = np.array([*s.xy[-1], s.yaw[-1]])
            if _turn_room(end, p, region):
                if _approachable(np.array([*s.xy[0], s.yaw[0]]), p, region):
                    return 0.0
                continue
            r = arc_exit(end, float(s.kappa[-1]), reverse_left)
            costs.append(_exit_reverse_m(r, p) - _leg_margin(p) if r is not None else math.inf)
        return min(costs, default=0.0)

    def exit_cost(e):
        costs = []
        for s0, s1 in (e, e[::-1]):
            yaw = math.atan2(s1[1] - s0[1], s1[0] - s0[0])
            if p.cleanup_dead_end_estimate and not late_dead_end and _turn_room(np.array([*s1, yaw]), p, region):
                continue                        # the open end: a pass ending there needs no exit
            r = _reverse_exit(np.array([*s1, yaw]), p, region, None, reverse_left)
            costs.append(_exit_reverse_m(r, p) - _leg_margin(p) if r is not None else math.inf)
        return min(costs, default=0.0)         # both ends open (a pass no forward transit reached): no exit

    def strip(a, q=None):
        if isinstance(a, BackInPass):
            return a.strip(p.width_m)
        if q is None:                           # a curved pass
            return a.line(p.sample_step_m).buffer(0.5 * p.width_m, cap_style="flat")
        return LineString([a, q]).buffer(0.5 * p.width_m, cap_style="flat")

    def worked_by(path):
        """What ``path`` works: as the trailing bar leaves it with ``cleanup_trail_worked``, else at base_link."""
        return _trail_worked(path, p) if trail else worked_area(path.xy, path.working, p.width_m)

    back_memo = {}

    def back_ins(c: BackInPass) -> list:
        """Ways to back into a back-in pass, least reversing first: from a pose ``h`` reached forwards, a reverse arc at
        full lock (none, 45, 90, 135 or 180 deg; the machine is turned onto the line headed out) onto the line at
        ``g`` (its working end or 1-16 m further out, up to its outer end), then straight back to the cusp; the
        whole machine inside (``fp``), ``h`` in the region with two turning radii behind it (a forward arrival);
        the first 8. ``[(h, reverse samples), ...]``."""
        key = c.key()
        if key in back_memo:
            return back_memo[key]
        R = p.turn_radius_m
        room = float(np.hypot(*(c.outer - c.end)))
        out = []
        for d in (0.0, 1.0, 2.5, 5.0, 8.0, 12.0, 16.0):
            if d > room + 1e-6:
                break
            g = np.array([*(c.end + d * c.u), c.yaw_out])
            straight = float(np.hypot(*(g[:2] - c.cusp)))
            for ang in (0.0, 0.25 * math.pi, 0.5 * math.pi, 0.75 * math.pi, math.pi):
                for kk in ((0.0,) if ang == 0 else (1.0 / R, -1.0 / R)):
                    prims = [(-ang * R, kk, kk)] if ang > 0 else []
                    h = T.end_pose(g, [(ang * R, kk, kk)]) if ang > 0 else g
                    out.append((ang * R + straight, h, prims + [(-straight, 0.0, 0.0)]))
        out.sort(key=lambda e: e[0])
        found = []
        for _length, h, prims in out:
            if not region.contains(np.asarray(h)[None, :2]) or not _approachable(np.asarray(h), p, region,
                                                                                 2.0 * p.turn_radius_m):
                continue
            r = T.sample_primitives(h, prims, p.sample_step_m)
            if fp.fits(np.column_stack([r.xy, r.yaw])):
                found.append((np.asarray(h), r))
            if len(found) >= 8:
                break
        back_memo[key] = found
        return found

    def back_in_cost(c: BackInPass) -> float:
        """Reverse metres of a back-in pass: its cheapest way in (:func:`back_ins`)."""
        w = back_ins(c)
        return w[0][1].length_m if w else math.inf

    def try_back_in(c: BackInPass) -> bool:
        """Drive a back-in pass: a forward transit to a way in (:func:`back_ins`), reversed in with the implement
        raised, then forwards working from the cusp to its end. True when driven."""
        nonlocal pose
        # the machine leaves along the line until base_link is back in the region (where transits start)
        room = float(np.hypot(*(c.outer - c.end)))
        d = 0.0
        while d <= room and not region.contains((c.end + d * c.u)[None, :]):
            d += p.sample_step_m
        if d > room:
            return False
        leave = c.end + d * c.u
        for h, back in back_ins(c):
            if back.length_m + _leg_margin(p) > reverse_left + 1e-6:
                break
            t, unstick = transit_from_here(h, reverse_left - back.length_m - _leg_margin(p))
            if t is None or (fp is not None and not fp.fits(np.column_stack([t.xy, t.yaw]))):
                continue
            if fp_clear is not None and not _clear_leg(t, np.array([*t.xy[0], t.yaw[0]]), h, fp_clear,
                                                       p.cleanup_transit_free_m):
                continue
            if unstick is not None:
                add_move(unstick)
            b.add(t, KIND_TRANSIT, False)
            b.add(back, KIND_TRANSIT, False)
            b.add(_straight(c.cusp, c.end, p.sample_step_m), KIND_HEADLAND, True)
            if d > 0:
                b.add(_straight(c.end, leave, p.sample_step_m), KIND_TRANSIT, False)
            pose = np.array([*leave, c.yaw_out])
            charge(back.length_m + _leg_margin(p))
            return True
        return False

    def back_in_cands(worked) -> list:
        """Back-in passes into the leftover patches that ``worked`` leaves at the field's edge."""
        # the shortest costs its 2 m working leg in reverse and a sample
        if not (p.cleanup_corner_back_in and fp is not None and p.implement_offset_m > 0) or \
                reverse_left < 2.0 + _leg_margin(p):
            return []
        out = []
        memo = region.__dict__.setdefault("back_in_memo", {})  # the same patches recur in the clean-up's variants
        for patch in leftover_patches(field, worked, min_patch_m2=min_gain):
            if patch.distance(field.exterior) > 0.5 * p.width_m:
                continue
            key = (shapely.to_wkb(patch), p.cleanup_end_margin_m)
            if key not in memo:
                memo[key] = back_in_passes(patch, fp, p.width_m, p.implement_offset_m, min_gain, edges,
                                           stop_margin_m=p.cleanup_end_margin_m)
            out += memo[key]
        return out

    cost = {}

    def spend_by_gain(cands, rest):
        """Dead-end passes by the area each still works per metre reversed (its exit and two samples of labelling;
        gains updated after each pass driven) while the budget lasts; the number that failed."""
        failed = 0
        cands = list(cands)
        again = set()                           # passes already put back once (a later start)
        while cands and reverse_left > 0:
            best, best_rate = None, 0.0
            for i, cand in enumerate(cands):
                arc = isinstance(cand, ArcPass)
                bi = isinstance(cand, BackInPass)
                gain = shapely.intersection(strip(cand) if arc or bi else strip(*cand), rest).area
                if gain < min_gain:
                    continue
                key = cand.key() if arc or bi else (tuple(np.round(cand[0], 3)), tuple(np.round(cand[1], 3)))
                if key not in cost:
                    cost[key] = (back_in_cost(cand) if bi else arc_cost(cand) if arc else exit_cost(cand)) \
                        + _leg_margin(p)
                if not math.isfinite(cost[key]) or cost[key] > reverse_left + 1e-6:
                    continue
                # ranked by the exit as charged before (a sample either end of each leg): the exact charge changes
                # what is affordable, not the order
                rate = gain / max(cost[key] + 2 * p.sample_step_m - _leg_margin(p), 0.5)
                if rate > best_rate:
                    best, best_rate = i, rate
            if best is None:
                break
            cand = cands.pop(best)
            if isinstance(cand, BackInPass):      # optional: one not reached is no skipped pass
                if try_back_in(cand):
                    rest = shapely.difference(rest, cand.strip(p.width_m))
                continue
            if isinstance(cand, ArcPass):
                w = try_arc(cand, allow_reverse=True)
                if w is not None:
                    rest = shapely.difference(rest, w)
                else:
                    failed += 1
                continue
            a, q = cand
            n0 = len(driven)
            if try_pass(a, q, allow_reverse=True):
                s0, s1 = driven[n0]
                rest = shapely.difference(rest, strip(s0, s1))
                key = (tuple(np.round(a, 3)), tuple(np.round(q, 3)))
                if late_dead_end and key not in again and min(np.hypot(*(s0 - a)), np.hypot(*(s0 - q))) > 1e-6:
                    # started later than its end (no forward arrival there): what it left of its line is a
                    # candidate again, once (driven the other way, its gain now only the part not worked; a pass
                    # that needs no exit would otherwise be put back and driven again for ever)
                    again.add(key)
                    cands.append((a, q))
            else:
                failed += 1
        return failed

    # rounds: passes in the direction that works most of each leftover patch, then along each patch's long axis;
    # with cleanup_reverse_by_gain a third over passes in every direction of each patch (patch_pass_options)
    skipped = 0
    gaps = gap_lines(field, inner_region, p.width_m, p.cleanup_gap_passes_m) if p.cleanup_gap_passes_m > 0 else []
    circles = wedge_circles(field, inner_region, p.width_m, p.turn_radius_m, p.cleanup_wedge_passes_m,
                            p.sample_step_m) if p.cleanup_wedge_passes_m > 0 else []

    def round_passes(worked, rnd: int) -> list:
        """The clean-up passes of round ``rnd`` over what ``worked`` leaves: gap and wedge passes, then each patch's
        pass along its long side (round 0), its long axis (round 1) or every direction (round 2 on)."""
        passes = []
        for patch in leftover_patches(field, worked, min_patch_m2=min_gain):
            passes += gap_passes(gaps, patch, p.width_m, min_gain) if gaps else []
            passes += arc_passes(circles, patch, p.width_m, min_gain) if circles and p.cleanup_reverse_by_gain \
                else []
            if rnd < 2:
                passes += patch_passes(patch, inner_region, p.width_m, min_gain, boundary=edges,
                                       long_axis_only=rnd == 1, tight=p.cleanup_tight_ends,
                                       edge_in_m=edge_in)
            else:
                passes += patch_pass_options(patch, inner_region, p.width_m, min_gain, boundary=edges,
                                             tip_axis=p.cleanup_tip_passes, tight=p.cleanup_tight_ends,
                                             edge_in_m=edge_in)
        return passes

    for rnd in range(3 if p.cleanup_reverse_by_gain else 2):
        now = sofar if rnd == 0 else b.build()
        worked = worked_by(now)
        passes = round_passes(worked, rnd)
        # first every pass the machine can leave forwards (greedy nearest first), then the dead-end ones that
        # need a reverse exit while the reverse budget lasts (a corner taken first-come could spend it on one long
        # exit)
        deferred = []
        rest = shapely.difference(field, worked) if p.cleanup_tight_ends else None
        while passes:
            d = [min(np.hypot(*(a - pose[:2])), np.hypot(*(q - pose[:2])))
                 for a, q in ((c.ends() if isinstance(c, ArcPass) else c) for c in passes)]
            cand = passes.pop(int(np.argmin(d)))
            if isinstance(cand, ArcPass):
                if rest is not None and shapely.intersection(strip(cand), rest).area < min_gain:
                    continue
                w = try_arc(cand, allow_reverse=False)
                if w is None:
                    deferred.append(cand)
                elif rest is not None:
                    rest = shapely.difference(rest, w)
                continue
            a, q = cand
            if rest is not None and shapely.intersection(strip(a, q), rest).area < min_gain:
                continue                        # what it would work, this round's earlier passes already did
            n0 = len(driven)
            if not try_pass(a, q, allow_reverse=False):
                deferred.append((a, q))
            elif rest is not None:
                rest = shapely.difference(rest, strip(*driven[n0]))
        if p.cleanup_reverse_by_gain:
            if p.max_reverse_m > 0 and (deferred or (rnd == 0 and p.cleanup_corner_back_in)) and reverse_left > 0:
                now = b.build()
                done = worked_by(now)
                if rnd == 0 and p.cleanup_tip_passes:
                    # passes in every direction of every patch (a tip's axis among them) compete for the budget
                    # from the start: the third round finds only what the first two left of it
                    for patch in leftover_patches(field, done, min_patch_m2=min_gain):
                        deferred += patch_pass_options(patch, inner_region, p.width_m, min_gain, boundary=edges,
                                                       tip_axis=True, tight=p.cleanup_tight_ends,
                                                       edge_in_m=edge_in)
                if rnd == 0:
                    # corner tips beyond the reach of base_link's region: backed in, the bar leading
                    deferred += back_in_cands(done)
                skipped = spend_by_gain(deferred, shapely.difference(field, done))
            continue
        if p.max_reverse_m > 0 and deferred:
            # reverse metres (the exit and two samples of labelling) per metre of pass: the budget where it works most
            deferred.sort(key=lambda e: (exit_cost(e) + _leg_margin(p)) /
                          max(float(np.hypot(*(e[1] - e[0]))), 0.5))
        skipped = 0
        for a, q in deferred:
            skipped += int(not try_pass(a, q, allow_reverse=True))
    if p.cleanup_counted_fill and p.cleanup_reverse_by_gain and p.max_reverse_m > 0 and not p.cleanup_exact_charge:
        # the rounds charged each leg a sample more than the path counts: re-measured, what is left buys one more
        # round of dead-end passes, charged as counted from here on (the passes before it are the same)
        p = dataclasses.replace(p, cleanup_exact_charge=True)
        now = b.build()
        counted0 = _counted_reverse(now, p)     # charge() reads this and left0 from here on
        left0 = budget_left(counted0)
        if left0 > reverse_left + 1e-6:
            reverse_left = left0
            cost.clear()                        # exits costed (or out of reach) under the old charge
            done = worked_by(now)
            # round 2's passes (every direction) over what is left
            spend_by_gain(round_passes(done, 2) + back_in_cands(done),
                          shapely.difference(field, done))   # what it cannot reach stays
    if p.cleanup_final_dead_end and p.cleanup_reverse_by_gain:
        # the job ends after the last pass, where it stops: the dead-end pass that works most, its exit not driven
        done = worked_by(b.build())
        rest = shapely.difference(field, done)
        cands = []
        for patch in leftover_patches(field, done, min_patch_m2=min_gain):
            cands += patch_pass_options(patch, inner_region, p.width_m, min_gain, boundary=edges,
                                        tip_axis=p.cleanup_tip_passes, tight=p.cleanup_tight_ends,
                                        edge_in_m=edge_in)
            cands += arc_passes(circles, patch, p.width_m, min_gain) if circles else []
        gains = [shapely.intersection(strip(c) if isinstance(c, ArcPass) else strip(*c), rest).area for c in cands]
        for k in np.argsort(gains)[::-1][:6]:
            if gains[k] < min_gain:
                break
            c = cands[k]
            if (try_arc(c, True, final=True) is not None) if isinstance(c, ArcPass) else try_pass(*c, True, final=True):
                break
    # the job ends after the last pass: no exit manoeuvre after it
    while b.parts and b.parts[-1][1] == KIND_TRANSIT and len(b.parts) > 1:
        s_last, kd, _ = b.parts.pop()
        b.lengths["transit"] -= s_last.length_m
        pose = np.array([*b.parts[-1][0].xy[-1], b.parts[-1][0].yaw[-1]])
    return pose, skipped


def plan_to_dict(plan: CoveragePlan) -> dict:
    """The plan as a JSON-able dict (coordinates in the input CRS; yaw/curvature/lengths metric)."""
    fr = plan.frame
    sw = plan.swath_array()
    sw_out = fr.convert(sw.reshape(-1, 2)).reshape(-1, 2, 2) if len(sw) else sw
    xy = fr.convert(plan.path.xy) if len(plan.path) else np.zeros((0, 2))
    pth = plan.path
    path = [[float(x), float(y), float(yaw), int(w)] for (x, y), yaw, w in zip(xy, pth.yaw, pth.working)]
    return {
        "crs": fr.crs,
        "swaths": sw_out.tolist(),
        "path": path,
        "path_curvature": [float(v) for v in pth.curvature],
        "path_kind": [KIND_NAMES[int(v)] for v in pth.kind],
        "path_direction": [int(v) for v in pth.direction],
        "length_m": {k: round(float(v), 3) for k, v in plan.lengths_m.items()},
        "coverage_ratio": round(plan.coverage_ratio, 6),
        "overlap_ratio": round(plan.overlap_ratio, 6),
        "plan_time_ms": None if not math.isfinite(plan.plan_time_ms) else round(plan.plan_time_ms, 2),
        "angle_deg": round(math.degrees(plan.angle_rad), 4),
        "n_swaths": len(plan.swaths),
        "turn_type": plan.params.turn_type,
        "route": plan.params.route,
        "fallback_turns": plan.n_fallback_turns,
        "warnings": list(plan.warnings),
    }


def plan_to_json(plan: CoveragePlan, indent=None) -> str:
    """JSON text of :func:`plan_to_dict` (the CLI's OUT.json)."""
    return json.dumps(plan_to_dict(plan), indent=indent)


def plan_work_figures(plan: CoveragePlan, width_m: float | None = None) -> dict:
    """What the plan itself works of the whole field (the implement swept along the working path).

    Returns ``worked_ratio`` (area of the field under the working implement / field area), ``double_ratio``
    (area worked twice or more / field area, by a 0.25 m raster), ``reverse_m`` (length driven in reverse;
    ``reverse_turns_m`` of it in the turns between swaths),
    ``rings_total`` / ``rings_worked`` (headland rings planned / driven); with ``params.footprint_m`` also
    ``footprint_outside_poses`` / ``footprint_outside_max_m`` (planned poses where the whole machine leaves the
    field, and by how much).
    """
    w = float(width_m or plan.params.width_m)
    p = plan.path
    field = plan.field
    out = {"worked_ratio": 0.0, "double_ratio": 0.0, "reverse_m": 0.0, "reverse_turns_m": 0.0,
           "rings_total": int(sum(len(r) for r in plan.headland_rings)),
           "rings_worked": int(sum(len(r) for r in plan.headland_rings)) - int(plan.n_rings_skipped)}
    if len(p) < 2:
        return out
    seg = np.hypot(*np.diff(p.xy, axis=0).T)
    back = (p.direction[1:] < 0) | (p.direction[:-1] < 0)
    out["reverse_m"] = float(np.sum(seg[back]))
    # of which in the turns between swaths (K-turns where the headland is too narrow to turn forwards; the
    # reverse budgets bound the clean-up and the corners, not these)
    out["reverse_turns_m"] = float(np.sum(seg[back & (p.kind[1:] == KIND_TURN)]))
    # raster sweep of the implement bar between consecutive working samples
    res = 0.25
    minx, miny, maxx, maxy = field.bounds
    nx, ny = int(math.ceil((maxx - minx) / res)) + 1, int(math.ceil((maxy - miny) / res)) + 1
    count = np.zeros((ny, nx), dtype=np.int16)
    xs = minx + (np.arange(nx) + 0.5) * res
    ys = miny + (np.arange(ny) + 0.5) * res
    # the segment i -> i + 1 is worked when sample i + 1 is (the mission's reading: FarmPlan.work_s, implement_down
    # lowers the implement once it is past a sample whose successor works): a swath's first sample is the turn's
    # last (raised), and the implement is down from there
    work = p.working[1:]
    runs = np.flatnonzero(np.diff(np.concatenate([[0], work.astype(np.int8), [0]])))
    for a, b in zip(runs[::2], runs[1::2]):
        line = LineString(p.xy[a:b + 1])
        if line.length <= 0:
            continue
        strip = line.buffer(0.5 * w, cap_style="flat", join_style="round")
        x0, y0, x1, y1 = strip.bounds
        i0, i1 = max(0, int((x0 - minx) / res)), min(nx, int((x1 - minx) / res) + 2)
        j0, j1 = max(0, int((y0 - miny) / res)), min(ny, int((y1 - miny) / res) + 2)
        X, Y = np.meshgrid(xs[i0:i1], ys[j0:j1])
        count[j0:j1, i0:i1] += shapely.contains_xy(strip, X, Y).astype(np.int16)
    X, Y = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(field, X, Y)
    n_in = max(int(inside.sum()), 1)
    out["worked_ratio"] = float(np.count_nonzero((count >= 1) & inside)) / n_in
    out["double_ratio"] = float(np.count_nonzero((count >= 2) & inside)) / n_in
    if len(plan.params.footprint_m):
        # the whole machine (params.footprint_m: body and implement) at every planned pose
        fp = _machine(plan.params, field, 0.0)
        bad = fp.outside_mask(np.column_stack([p.xy, p.yaw]))
        out["footprint_outside_poses"] = int(bad.sum())
        out["footprint_outside_max_m"] = float(np.max(shapely.distance(field, shapely.points(
            fp.points(np.column_stack([p.xy, p.yaw])[bad]))))) if bad.any() else 0.0
    return out


def path_inside_fraction(plan: CoveragePlan) -> float:
    """Fraction of path samples inside the field polygon (outside holes)."""
    if len(plan.path) == 0:
        return 1.0
    f = plan.field.buffer(1e-6)
    return float(np.mean(shapely.contains_xy(f, plan.path.xy[:, 0], plan.path.xy[:, 1])))


if __name__ == "__main__":   # demo: field A
    demo = plan_coverage(Polygon([(0, 0), (100, 0), (100, 60), (0, 60)]), CoverageParams())
    print(len(demo.swaths), "swaths", {k: round(v, 1) for k, v in demo.lengths_m.items()},
          "coverage", round(demo.coverage_ratio, 4))
