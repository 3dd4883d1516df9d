"""Reversing safely: the tractor backs up only while its rear scanner sees behind it.

Closed loop in plain Python (no ROS, ``agricare.core.safety.scenario_check``): the embedded simulator's world
(tractor with the demo's 6 m implement, its bonnet and rear laser scanners as shipped, a person) and the safety
supervisor with the shipped tractor profile and the demo farm's footprint. A constant reverse request at the
profile's maximum reverse speed stands in for a corner manoeuvre. Contacts and clearances are the simulator's
(ground truth, measuring only; the implement counts as part of the machine).
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
import yaml

from agricare.core.safety.scenario_check import load_profile, run_closed_loop
from agricare.core.safety.supervisor import STOP_STATES, SafetyState, Supervisor, SupervisorInputs
from agricare.core.sim.scenarios import scenario_dict
from agricare.core.sim.world import World

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT = 0.05
IMPLEMENT = {"section_widths_m": [1.0] * 6, "offset_m": 1.6, "depth_m": 0.8}   # config/scenarios/farm.yaml


def farm_tractor_profile(**overrides):
    """The tractor profile with the demo farm's overrides (footprint with the 6 m implement)."""
    farm = yaml.safe_load((ROOT / "config" / "scenarios" / "farm.yaml").read_text())
    node = next(n for n in farm["nodes"] if n["node"] == "safety_supervisor_node" and n["robot"] == "tractor")
    extra = {k: v for k, v in node["params"].items() if k != "command_replay_file"}
    extra.update(overrides)
    return load_profile(ROOT / "config", "tractor", **extra)


def run_reverse(person: dict, params, sensors=None, t_end=30.0):
    """Back the tractor up from (0, 0) heading +x (so it moves towards -x) at the profile's maximum reverse speed.

    Returns (contacts while the tractor moved, closest gap machine-person (m), tractor speed at the first stop
    verdict (m/s), distance driven from that verdict to standstill (m), the loop result)."""
    robot = {"name": "tractor", "type": "tractor", "start": {"x_m": 0.0, "y_m": 0.0, "yaw_deg": 0.0},
             "implement": IMPLEMENT, "sensors": {"gnss": False, "battery": False, **(sensors or {})}}
    world = World.from_scenario(scenario_dict([robot], people=[person]), seed=3)
    res = run_closed_loop(world, "tractor", -params.max_reverse_speed_mps, params, mode="scan", t_end_s=t_end)
    moving = [c for c in res.contacts if c.robot_speed_mps > 0.05]
    stops = [i for i, st in enumerate(res.states) if st in STOP_STATES]
    if not stops:
        return moving, res.min_clearance_m["worker"], None, None, res
    i = stops[0]
    still = next((k for k in range(i, len(res.v_mps)) if abs(res.v_mps[k]) < 0.01), len(res.v_mps) - 1)
    braking = float(np.hypot(*(res.pose[still, :2] - res.pose[i, :2])))
    return moving, res.min_clearance_m["worker"], abs(float(res.v_mps[i])), braking, res


STANDING = {"name": "worker", "kind": "adult", "speed_mps": 0.5, "path": [[-9.0, 1.0], [-9.0, 1.2]],
            "mode": "pingpong", "pause_s": 30.0}
# crosses the reversing machine's path from its right, reaching it as the implement would
CROSSING = {"name": "worker", "kind": "adult", "speed_mps": 1.1, "path": [[-7.0, -9.0], [-7.0, 9.0]], "mode": "once"}


@pytest.mark.parametrize("person", [STANDING, CROSSING], ids=["standing", "crossing"])
def test_reversing_tractor_stops_before_a_person_behind_it(person):
    params = farm_tractor_profile()
    assert "scan_rear" in params.reverse_required_inputs
    contacts, gap, v_stop, braking, res = run_reverse(person, params)
    assert not contacts, contacts
    assert SafetyState.PROTECTIVE_STOP in res.states
    assert v_stop is not None and v_stop > 0.5 * params.max_reverse_speed_mps, v_stop   # it was backing up
    # the machine (implement included) stays clear of the person by at least the stop margin's half
    assert gap >= 0.5 * params.stop_margin_m, gap
    print(f"{('standing', 'crossing')[person is CROSSING]}: stopped from {v_stop:.2f} m/s in {braking:.2f} m, "
          f"closest gap {gap:.2f} m")


def test_without_rear_sensing_and_implement_in_the_footprint_it_backs_into_the_person():
    """The same standing person with what the tractor had before: no rear scanner and the body-only footprint
    (the bonnet scanner's 270 deg do not reach behind the cab)."""
    params = farm_tractor_profile(footprint_xy=[3.3, 1.1, -0.9, 1.1, -0.9, -1.1, 3.3, -1.1],
                                  reverse_required_inputs=[])
    contacts, gap, *_ = run_reverse(STANDING, params, sensors={"scan_rear": False})
    assert contacts and gap < 0.0


def test_stale_rear_scan_stops_reversing_but_not_driving_forwards():
    """The rear scanner falls silent (its stamp stops): backing up becomes a protective stop that is released once
    it is back; driving forwards it is only a warning."""
    params = farm_tractor_profile()
    for v_req, expect in ((-0.8, SafetyState.PROTECTIVE_STOP), (2.0, SafetyState.RUN)):
        sup = Supervisor(params)
        seen = []
        for k in range(120):   # the profile's resume_hold_s is 2 s (40 cycles)
            t = k * DT
            rear_t = t if (k < 20 or k >= 50) else 19 * DT   # silent from cycle 20 to 49
            inp = SupervisorInputs(cmd_v_mps=v_req, cmd_stamp_s=t, odom_v_mps=0.0, odom_stamp_s=t,
                                   scan_points_in_base=np.zeros((0, 2)), scan_stamp_s=t, imu_stamp_s=t,
                                   scan_rear_points_in_base=np.zeros((0, 2)), scan_rear_stamp_s=rear_t)
            d = sup.update(t, inp)
            seen.append((d.state, d.reasons, d.warnings))
        silent = [s for k, s in enumerate(seen) if 35 <= k < 50]
        assert all(s[0] == expect for s in silent), silent
        if expect == SafetyState.PROTECTIVE_STOP:
            assert all("reverse_blind:stale:scan_rear" in s[1] for s in silent)
            assert seen[-1][0] != SafetyState.PROTECTIVE_STOP   # released after resume_hold_s, not latched
            assert not sup.latched_faults
        else:
            assert all("stale:scan_rear" in s[2] and not s[1] for s in silent), silent


@pytest.mark.parametrize("corrupt", ["nan", "blinded", "never"])
def test_broken_rear_scan_fails_safe_when_backing_up(corrupt):
    params = farm_tractor_profile()
    for v_req, odom_v in ((-0.5, 0.0), (0.0, -0.4), (1.0, 1.0)):   # request backwards, rolling backwards, forwards
        sup = Supervisor(params)
        d = None
        for k in range(10):
            t = k * DT
            inp = SupervisorInputs(cmd_v_mps=v_req, cmd_stamp_s=t, odom_v_mps=odom_v, odom_stamp_s=t,
                                   scan_points_in_base=np.zeros((0, 2)), scan_stamp_s=t, imu_stamp_s=t)
            if corrupt == "nan":
                inp.scan_rear_points_in_base, inp.scan_rear_stamp_s = np.full((1, 2), np.nan), t
            elif corrupt == "blinded":   # what scan_to_safety_points makes of a covered window: points at range_min
                inp.scan_rear_points_in_base = np.array([[-1.1, 0.0], [-1.1, 0.02]])
                inp.scan_rear_blinded, inp.scan_rear_stamp_s = True, t
            d = sup.update(t, inp)
        cond = {"nan": "nonfinite", "blinded": "blinded", "never": "no_data"}[corrupt]
        if v_req < 0 or odom_v < 0:
            assert d.state == SafetyState.PROTECTIVE_STOP and f"reverse_blind:{cond}:scan_rear" in d.reasons, d
            assert d.cmd_v_mps == 0.0
        else:
            assert d.state == SafetyState.RUN and f"{cond}:scan_rear" in d.warnings, d
            assert d.cmd_v_mps > 0.0
        assert not sup.latched_faults


def test_rear_scan_points_count_only_where_the_machine_goes():
    """A person 1.1 m behind the implement: a stop while backing up at full reverse speed, nothing forwards."""
    params = farm_tractor_profile()
    person = np.array([[-2.4 - 1.1 + 0.1 * math.cos(a), 0.1 * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 12)])
    for v_req, expect in ((-params.max_reverse_speed_mps, SafetyState.PROTECTIVE_STOP), (2.0, SafetyState.RUN)):
        sup = Supervisor(params)
        for k in range(6):
            t = k * DT
            d = sup.update(t, SupervisorInputs(cmd_v_mps=v_req, cmd_stamp_s=t, odom_v_mps=0.0, odom_stamp_s=t,
                                               scan_points_in_base=np.zeros((0, 2)), scan_stamp_s=t, imu_stamp_s=t,
                                               scan_rear_points_in_base=person, scan_rear_stamp_s=t))
        assert d.state == expect and (expect == SafetyState.RUN or "obstacle" in d.reasons), d


def test_reverse_required_inputs_are_validated():
    with pytest.raises(ValueError, match="reverse_required_inputs"):
        farm_tractor_profile(reverse_required_inputs=["rear_camera"])
