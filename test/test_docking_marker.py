"""Docking with the boarding point's ArUco sign: the simulator draws it, the detector finds it, the marker's position
fix agrees with where the shuttle is, and the fusion falls back to the estimate when there is no fresh sighting."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
import yaml

from agricare.core.description import frame_pose, parse_urdf
from agricare.core.missions.docking import MarkerDocking, MarkerDockingParams
from agricare.core.perception.markers import BoardingSigns, MarkerDetector, MarkerParams
from agricare.core.sim.scenarios import parse_scenario
from agricare.core.sim.world import World

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def town():
    cfg = yaml.safe_load((ROOT / "config" / "scenarios" / "care_small.yaml").read_text())
    world = World.from_scenario(parse_scenario(cfg), seed=0)
    model = parse_urdf((ROOT / "urdf" / "care_shuttle.urdf").read_text())
    return world, frame_pose(model, "camera_optical_frame")


def _place(world, r, pose):
    v = world.robots["shuttle_1"].vehicle
    v.x_m, v.y_m, v.yaw_rad = (float(a) for a in pose)


@pytest.mark.parametrize("back_m, lateral_m", [(0.0, 0.0), (1.0, 0.15), (3.0, -0.1)])
def test_simulated_sign_is_detected_and_fixes_the_position(town, back_m, lateral_m):
    world, T_base_opt = town
    signs = world.spec.boarding_signs
    assert signs is not None and signs.id_base == 10
    boarding = (75.0, 101.8, 0.0)                                # home_1: place 1 -> marker 11
    truth = np.array([75.0 - back_m, 101.8 + lateral_m, 0.02])
    _place(world, "shuttle_1", truth)
    det = MarkerDetector(MarkerParams(signs.dictionary, signs.length_m, tuple(range(10, 22)), 3.0))
    found = {m.id: m for m in det.detect(world.camera_image("shuttle_1"), world.camera_matrix("shuttle_1"))}
    assert 11 in found, sorted(found)
    dock = MarkerDocking(signs)
    estimate = truth + [0.0, 0.0, 0.003]                      # the estimate's heading (a few mrad off)
    assert dock.on_detection(1.0, 11, found[11].position_m, T_base_opt, boarding, estimate)
    err = math.hypot(*(dock.fix[2] - truth[:2]))
    assert err < 0.05, err          # measured 1.4-4.1 cm up to 6 m from the sign


def test_fusion_weights_gates_and_falls_back():
    signs = BoardingSigns()
    dock = MarkerDocking(signs, MarkerDockingParams(timeout_s=1.0, gate_m=0.5))
    boarding = (0.0, 0.0, 0.0)
    T_base_opt = (np.array([2.0, 0.0, 1.3]), np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))
    # the marker as seen from base pose (0, 0, 0): its centre in the optical frame
    t_map_marker, _ = signs.marker_pose_in_map(boarding)
    p_base = t_map_marker - np.array([0.0, 0.0, 0.0])
    p_opt = T_base_opt[1].T @ (p_base - T_base_opt[0])
    # no sighting yet: the estimate, said so
    est = np.array([0.2, 0.0, 0.0])
    pose, source = dock.fused(0.5, 10, est, 0.05)
    assert source == "estimate" and np.allclose(pose, est)
    # a sighting: the fix is at the true (0, 0); fused between it and the estimate by their variances
    assert dock.on_detection(1.0, 10, p_opt, T_base_opt, boarding, est)
    assert np.allclose(dock.fix[2], [0.0, 0.0], atol=1e-9)
    pose, source = dock.fused(1.2, 10, est, 0.05)
    std_fix = dock.fix[3]
    w = (1 / std_fix ** 2) / (1 / std_fix ** 2 + 1 / 0.05 ** 2)
    assert source == "marker" and pose[0] == pytest.approx(0.2 * (1 - w)) and pose[0] < 0.2
    # another marker id, or a stale fix: the estimate again
    assert dock.fused(1.2, 11, est, 0.05)[1] == "estimate"
    assert dock.fused(2.5, 10, est + [0.05, 0.0, 0.0], 0.05)[1] == "estimate"    # stale, and the shuttle moved
    assert dock.fused(2.5, 10, est + [0.0, 0.0, 0.02], 0.05)[1] == "estimate"    # stale, and it turned
    assert dock.fused(30.0, 10, est + [0.01, 0.0, 0.0], 0.05)[1] == "marker"     # stale, but it stood still
    # a fix far from the estimate (a misread) is refused
    assert not dock.on_detection(3.0, 10, p_opt, T_base_opt, boarding, np.array([1.0, 0.0, 0.0]))
    assert dock.refused == 1


def test_sign_camera_renders_only_near_a_sign_and_while_docking():
    """``sign_range_m``: the simulated camera sends frames only with a sign in range and in view, and stops
    ``CAMERA_STILL_S`` after its shuttle stood still (the demo's care day keeps the camera cheap this way)."""
    from agricare.core.sim.world import CAMERA_STILL_S

    cfg = yaml.safe_load((ROOT / "config" / "scenarios" / "care_small.yaml").read_text())
    cfg["world"]["people"] = []
    cfg["robots"][0]["sensors"]["camera"] = {"enabled": True, "width_px": 480, "height_px": 360, "rate_hz": 5.0,
                                             "sign_range_m": 12.0}
    world = World.from_scenario(parse_scenario(cfg), seed=0)

    def frames(seconds, v):
        world.set_command("shuttle_1", v, 0.0)
        n = 0
        for _ in range(int(round(seconds / 0.05))):
            world.step(0.05)
            world.set_command("shuttle_1", v, 0.0)
            n += sum(1 for s in world.sensors_due() if s.robot == "shuttle_1" and s.kind == "camera")
        return n

    _place(world, "shuttle_1", (50.0, 101.8, 0.0))     # home_1's sign (80.0, 103.4) 28 m ahead of the camera
    assert frames(2.0, 1.0) == 0
    _place(world, "shuttle_1", (67.0, 101.8, 0.0))     # 11 m: in range and in view
    assert frames(2.0, 1.0) >= 9
    _place(world, "shuttle_1", (85.0, 101.8, 0.0))     # past it (the next sign, home_2's, is 17 m ahead)
    assert frames(1.0, 0.0) == 0
    _place(world, "shuttle_1", (74.0, 101.8, 0.0))     # at home_1's boarding point, stopping
    frames(1.0, 0.0)
    assert frames(CAMERA_STILL_S - 1.2, 0.0) >= 5      # still sent just after it stopped (the docking check)
    frames(1.0, 0.0)
    assert frames(5.0, 0.0) == 0                       # parked at the sign: no frames
    assert frames(1.0, 0.5) >= 4                       # moving off again
