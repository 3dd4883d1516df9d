"""The care shuttle follows its lane-keeping routes round 90 degree corners without oscillating.

Closed loop without ROS: the route of ``care_nav`` -> regulated pure pursuit -> velocity smoother -> the
simulator's care shuttle (per-wheel acceleration limit 0.8 m/s^2, motor lag), with the controller and smoother
parameters of ``config/scenarios/care.yaml``. With a smoother that asks for more linear acceleration than the
wheels can give (1.5 m/s^2, the old setting), both wheels saturate when the shuttle speeds up out of a turn,
the yaw rate cannot change, the heading overshoots the lane and rotate-to-heading fires again and again (the
stop-and-go on the west avenue in the full care day).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import yaml

from agricare.core.control.kinematics import DiffDrive, DiffDriveParams
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit
from agricare.core.control.smoother import SmootherParams, VelocitySmoother
from agricare.core.missions.care_nav import RoadNetwork, RoadNetworkParams
from agricare.core.sim.vehicles import DiffDriveVehicle, default_vehicle_params

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIO = yaml.safe_load((ROOT / "config" / "scenarios" / "care.yaml").read_text())
TRACKER_FIELDS = set(TrackerParams.__dataclass_fields__)
SMOOTHER_FIELDS = set(SmootherParams.__dataclass_fields__)


def _node_params(node: str, robot: str = "shuttle_2") -> dict:
    for n in SCENARIO["nodes"]:
        if n["node"] == node and n.get("robot") == robot:
            return dict(n.get("params") or {})
    raise KeyError(node)


def _drive(start, goal, smoother_overrides=None, tracker_overrides=None, max_s=400.0):
    """Drive every leg of the route; returns (sim time s, rotate-to-heading episodes, final pose)."""
    ctrl = _node_params("controller_node")
    ctrl.update(tracker_overrides or {})
    tracker = TrackerParams(**{k: v for k, v in ctrl.items() if k in TRACKER_FIELDS})
    vehicle = DiffDrive(DiffDriveParams(
        wheel_separation_m=ctrl["wheel_separation_m"], wheel_radius_m=ctrl["wheel_radius_m"],
        max_wheel_speed_radps=ctrl["max_wheel_speed_radps"], max_linear_speed_mps=ctrl["max_linear_speed_mps"],
        max_angular_speed_radps=ctrl["max_angular_speed_radps"]))
    sm_params = {k: v for k, v in _node_params("velocity_smoother_node").items() if k in SMOOTHER_FIELDS}
    sm_params.update(smoother_overrides or {})
    smoother = VelocitySmoother(SmootherParams(**sm_params))
    shuttle = DiffDriveVehicle(default_vehicle_params("care_shuttle"), start)
    net = RoadNetwork.from_world(SCENARIO["world"], RoadNetworkParams())
    t, dt, rotations = 0.0, 0.05, 0
    for leg in net.route(start, goal):
        trk = RegulatedPurePursuit(tracker, vehicle)
        trk.set_plan(leg)
        prev = ""
        while t < max_s:
            out = trk.compute(np.asarray(shuttle.pose), shuttle.v_mps, t)
            rotations += out.state == "rotating" and prev != "rotating"
            prev = out.state
            if out.done:
                break
            v, w = smoother.update((out.v_mps, out.w_radps), t)
            shuttle.step(dt, v, w)
            t += dt
    return t, rotations, np.asarray(shuttle.pose)


# depot -> home_7: east on the main street, right into the west avenue (south), left into the south lane
DEPOT_TO_HOME_7 = ((22.0, 101.8, 0.0), (105.0, 36.25, 0.0))
# home_7 -> home_5: U-turn, west on the south lane, right into the west avenue (north), right into the north lane
HOME_7_TO_HOME_5 = ((104.8, 36.25, 0.0), (85.0, 166.25, 0.0))
# home_8 -> clinic: U-turn, east on the south lane, left into the east avenue (north), main street, U-turn
HOME_8_TO_CLINIC = ((175.0, 33.75, np.pi), (251.0, 98.2, np.pi))


def test_scenario_smoother_within_the_shuttle_wheel_acceleration():
    wheel_accel = default_vehicle_params("care_shuttle").max_accel_mps2
    for robot in ("shuttle_1", "shuttle_2"):
        sm = _node_params("velocity_smoother_node", robot)
        # margin left for the wheels to change the yaw rate while the shuttle speeds up at the full ramp
        assert sm["max_linear_accel_mps2"] <= wheel_accel - 0.2


@pytest.mark.parametrize("route, turns, max_s", [(DEPOT_TO_HOME_7, 2, 100.0), (HOME_7_TO_HOME_5, 3, 150.0),
                                                  (HOME_8_TO_CLINIC, 4, 120.0)])
def test_corners_without_stop_and_go(route, turns, max_s):
    t, rotations, pose = _drive(*route, max_s=400.0)
    goal = route[1]
    assert np.hypot(pose[0] - goal[0], pose[1] - goal[1]) < 0.5
    assert rotations <= turns  # at most one rotation per corner / U-turn, never a train of them
    assert t < max_s  # the road distance at up to 2 m/s, with the turns


OLD_TRACKER = {"min_lookahead_m": 1.2, "lookahead_time_s": 1.2}
OLD_SMOOTHER = {"max_linear_accel_mps2": 1.5, "max_angular_accel_radps2": 1.0}


def test_smoother_beyond_wheel_acceleration_oscillates():
    """The cause, kept as a check: the old settings give the stop-and-go limit cycle, the old controller with
    a smoother ramp the wheels can follow does not (the longer lookahead only makes the corners smoother)."""
    t, rotations, _ = _drive(*HOME_7_TO_HOME_5, OLD_SMOOTHER, OLD_TRACKER, max_s=300.0)
    assert rotations > 10 and t > 150.0
    t, rotations, _ = _drive(*HOME_7_TO_HOME_5, {**OLD_SMOOTHER, "max_linear_accel_mps2": 0.5}, OLD_TRACKER)
    assert rotations <= 3 and t < 150.0
