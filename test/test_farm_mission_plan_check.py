"""The plan check in the robot graph: farm_mission_node builds the planner's check (``plan_coverage(check=...)``,
:class:`agricare.core.missions.farm.MissionPlanCheck`) from its own parameters (mission, footprint, the
``check_controller.*`` controller and machine model), the reverse split keeps a plan the check predicts inside and
vetoes one it predicts out of the field; without a check nothing is split.

The planner's own pieces are replaced by stand-ins (``_plan_coverage`` returning a plan whose corners reverse what
their budget allows and whose straight runs further the less they reverse), so the node's wiring is tested in
seconds; bench/farm_missions.py measures the split on the seeded fields (tracked)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import yaml
from shapely.geometry import box

from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.track_check import MachineModel
from agricare.core.missions.farm import FarmMissionParams, MissionPlanCheck, detour_inside
from agricare.core.planning import coverage as C

ROOT = pathlib.Path(__file__).resolve().parents[1]
from harness import straight_plan  # noqa: E402

FIELD = box(0.0, 0.0, 60.0, 40.0)
FP = (-0.9, 3.3, -1.1, 1.1, -2.0, -1.2, -3.0, 3.0)


def _fake_plan(p, corner_rev: float, start_x: float, work_m: float):
    """A plan whose corner rings reverse ``corner_rev`` m: a working straight of ``work_m`` along y = 20 from
    ``start_x``, then ``corner_rev`` m straight back (not working)."""
    return straight_plan(p, FIELD, start_x, work_m, corner_rev, corner_rev)


def _split_planner(monkeypatch, split_end_x: float):
    """Corners reverse up to 25 m; the base plan's straight runs from x = 8 to 40, a plan whose corners are held
    back runs on to ``split_end_x`` and 0.1 m further per metre they give up (works more: the split prefers it)."""
    planned = []

    def fake(field, p, frame=None, corner_mask=None):
        corner = min(25.0, p.max_corner_reverse_m)
        planned.append(p.max_corner_reverse_m)
        end = 40.0 if corner >= 25.0 else split_end_x + 0.1 * (25.0 - corner)
        return _fake_plan(p, corner, 8.0, end - 8.0)

    monkeypatch.setattr(C, "_plan_coverage", fake)
    return planned


def test_mission_plan_check_drives_the_plan_as_the_mission_hands_it_out_with_the_given_controller(monkeypatch):
    from agricare.core.control import track_check

    seen = []
    real = track_check.check_plan

    def spy(poses, directions, region, footprint, tracker_params, model=None, margin_m=0.0):
        seen.append((len(poses), tuple(footprint), tracker_params, model))
        return real(poses, directions, region, footprint, tracker_params, model, margin_m)

    monkeypatch.setattr(track_check, "check_plan", spy)
    tp, mm = TrackerParams(desired_speed_mps=2.2, reverse_speed_mps=0.9), MachineModel(steer_time_constant_s=0.3)
    mp = FarmMissionParams(turn_radius_m=4.5, implement_offset_m=1.6, implement_overlap_m=0.3)
    starts, done = [], []
    check = MissionPlanCheck(FIELD, mp, tp, FP, mm, detour_inside(FIELD, 3.6), on_start=starts.append,
                             on_done=lambda k, r: done.append((k, r.worst_m)))
    inside = _fake_plan(C.CoverageParams(footprint_m=FP), 0.0, 8.0, 32.0)       # ends at x = 40: inside
    out = _fake_plan(C.CoverageParams(footprint_m=FP), 0.0, 8.0, 60.0)          # runs to x = 68: 8 m out
    assert check(inside) == 0.0
    assert check(out) > 5.0
    assert starts == [1, 2] and [k for k, _ in done] == [1, 2] and len(check.results) == 2
    # the controller and model given, the footprint given, and the mission's plan (its run-out: more poses than the
    # plan's own path)
    assert all(s[2] is tp and s[3] is mm and s[1] == FP for s in seen)
    assert seen[0][0] > len(inside.path)
    with pytest.raises(ValueError, match="footprint"):
        MissionPlanCheck(FIELD, mp, tp, (), mm)


def test_without_a_check_the_planner_does_not_split(monkeypatch):
    planned = _split_planner(monkeypatch, 55.0)
    p = C.CoverageParams(width_m=6.0, footprint_m=FP, implement_offset_m=1.6, corner_turns=True,
                         max_total_reverse_m=30.0)
    assert p.cleanup_reverse_split == (0.67, 0.5)           # on by default ...
    plan = C.plan_coverage(FIELD, p)                        # ... where a check is given: here none
    assert planned == [np.inf] and plan.corner_share == 1.0 and plan.n_split_checks == 0
    plan = C.plan_coverage(FIELD, p, check=lambda pl: 0.0)
    assert plan.corner_share == 0.5 and plan.n_split_checks == 1


rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")


def _node(ctx, operator, **extra):
    from rclpy.parameter import Parameter

    from agricare.nodes.farm_mission_node import FarmMissionNode

    over = {"use_gnss": False, "width_m": 6.0, "turn_radius_m": 4.5, "headland_width_m": 12.0,
            "robot_width_m": 6.18, "corner_turns": True, "footprint_m": list(FP), "max_total_reverse_m": 30.0,
            "check_controller.desired_speed_mps": 2.2, "check_controller.reverse_speed_mps": 0.9,
            "check_controller.steer_time_constant_s": 0.3, **extra}
    node = FarmMissionNode(context=ctx, parameter_overrides=operator.parameters() + [
        Parameter(k, value=v) for k, v in over.items()])
    node.field = FIELD
    return node


def test_node_builds_the_check_from_its_own_parameters_and_keeps_a_split_plan_predicted_inside(
        rclpy_context, operator, monkeypatch):
    from agricare.core.control import track_check

    seen = []
    real = track_check.check_plan
    monkeypatch.setattr(track_check, "check_plan", lambda *a, **k: (seen.append(a), real(*a, **k))[1])
    planned = _split_planner(monkeypatch, 52.0)     # the held-back plans end at x = 52.5-53: inside with the run-out
    node = _node(rclpy_context, operator)
    try:
        node._plan()
        assert node.coverage.corner_share == 0.5 and node.coverage.n_split_checks == 1
        assert planned == [np.inf, pytest.approx(20.1), pytest.approx(15.0)]
        (poses, _dirs, region, footprint, tp, model), = seen
        # the node's check_controller.* (wheelbase and steering limit one parameter of both, the machine's by default)
        assert tp == TrackerParams(desired_speed_mps=2.2, reverse_speed_mps=0.9, wheelbase_m=2.6,
                                   max_steering_angle_rad=0.6)
        assert model == MachineModel(steer_time_constant_s=0.3)
        assert tuple(footprint) == FP and region is FIELD
        assert node.mission is not None and node.state == "planning" and "plan check 1" in node.message
    finally:
        node.destroy_node()


def test_node_check_vetoes_a_split_plan_predicted_out_of_the_field(rclpy_context, operator, monkeypatch):
    _split_planner(monkeypatch, 70.0)               # the held-back plans run 10 m past the boundary
    node = _node(rclpy_context, operator)
    try:
        node._plan()
        # the 0.5 plan checked (out, 10 m past the boundary), the base (inside), the 0.67 plan (out): the corners-first
        # plan is driven
        assert node.coverage.corner_share == 1.0 and node.coverage.n_split_checks == 3
        assert float(np.max(node.coverage.path.xy[:, 0])) <= 40.0 + 1e-6
    finally:
        node.destroy_node()
    # plan_check off: no check, no split (the corners-first plan, nothing asked of the controller)
    node = _node(rclpy_context, operator, plan_check=False)
    try:
        node._plan()
        assert node.coverage.corner_share == 1.0 and node.coverage.n_split_checks == 0
    finally:
        node.destroy_node()


def test_the_demo_graph_checks_plans_with_the_tractor_controllers_own_parameters():
    farm = yaml.safe_load((ROOT / "config" / "scenarios" / "farm.yaml").read_text())
    nodes = {n["node"]: n.get("params", {}) for n in farm["nodes"] if n.get("robot") == "tractor"}
    check = nodes["farm_mission_node"]["check_controller"]
    assert check == nodes["controller_node"] and check["desired_speed_mps"] == 3.0
