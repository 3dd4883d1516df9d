"""Scenario tests of the safety supervisor in the embedded simulator (plain Python closed loop, no rclpy).

Driver (constant speed straight ahead) -> ``Supervisor.update`` fed like ``safety_supervisor_node`` (scan
points in base_link with the lidar mount, odom twist, imu, map pose; tracked people) -> ``World.set_command``,
at the simulator's fixed step; see ``agricare.core.safety.scenario_check``. The obstacle tracker is
replaced by ground truth here: the simulator's people positions / velocities transformed to base_link, for
the people the scan hits (an occluded person is not tracked). The ``scan`` variant feeds no tracked objects.

Every person scenario is timed so that, with the gate open, the person's centre is on the path centre line
exactly when the robot's front reaches their track; a control run with the supervisor bypassed must end in
a contact (and a geofence control run must cross the line), so each test can fail. Profiles come from the
shipped YAMLs (``config/safety_supervisor_node.yaml`` + ``config/safety_<robot>.yaml``), the lidar mount
from the simulated robot (what the scenario files pass as ``scan_mount_xyyaw``).
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np
import pytest
import shapely
import yaml

from agricare.core.safety.scenario_check import load_profile, run_closed_loop
from agricare.core.safety.supervisor import STOP_STATES, SafetyState
from agricare.core.sim.people import Crowd
from agricare.core.sim.scenarios import default_sensors, scenario_dict
from agricare.core.sim.world import World

CONFIG = pathlib.Path(__file__).resolve().parents[1] / "config"
DT = 0.05
ROBOT = {"tractor": "tractor", "shuttle": "care_shuttle", "row_robot": "row_robot"}
HALF_WIDTH = {"tractor": 1.1, "shuttle": 0.8}
SPEEDS = [("tractor", 1.0), ("tractor", 2.0), ("tractor", 3.0), ("shuttle", 0.5), ("shuttle", 1.0), ("shuttle", 2.0)]
# kind, speed (m/s), side the person comes from (-1 = the robot's right), start distance from the centre line (m)
ADULT_WALK = ("adult", 1.4, -1, 6.0)
CHILD_RUN = ("child", 3.0, +1, 8.0)
PERSON_CAUSES = ("person", "obstacle")  # protective-stop reasons a person can cause (tracked / scan only)
PAUSE_S = 10.0  # how long a person stepping into the path stands there
STAND_OFF_M = 6.0  # a crossing person ends up standing this far (m) from the centre line


def robot_entry(profile, **extra):
    return {"name": "r", "type": ROBOT[profile], "start": {"x_m": 0.0, "y_m": 0.0, "yaw_deg": 0.0},
            "sensors": {"gnss": False, "battery": False}, **extra}


@functools.cache
def front_x_at(profile, v_req, t_s) -> float:
    """Front bumper x (m) at ``t_s`` when the driver's request goes straight to the vehicle (start at 0)."""
    world = World.from_scenario(scenario_dict([robot_entry(profile)]), seed=1)
    run_closed_loop(world, "r", v_req, mode="bypass", t_end_s=t_s + DT / 2)
    return front_x(world)


def person_world(profile, v_req, kind, speed, side, start_m, step_in=False, obstacles=(), late_s=0.0):
    """The robot drives +x from the origin; a person comes from ``side * start_m`` (y) along x = xc.

    ``step_in=False``: crosses the whole path and stands beyond it. ``step_in=True``: walks to the
    centre line, stands there ``PAUSE_S``, walks back (and would come again after ``PAUSE_S``). Timed so
    that their centre is on the centre line when the ungated robot's front reaches x = xc (``late_s`` later).
    A crossing person stands at least ``STAND_OFF_M`` beyond the path (out of every stop field).
    Returns ``(world, xc)``.
    """
    t_meet = max(v_req / 0.6 + 1.0, start_m / speed + 0.5)  # at cruise speed, after the person set off
    xc = front_x_at(profile, v_req, t_meet)
    end = [xc, 0.0] if step_in else [xc, -side * max(start_m, STAND_OFF_M)]
    person = {"name": "p", "kind": kind, "speed_mps": speed, "mode": "pingpong" if step_in else "once",
              "pause_s": PAUSE_S if step_in else 0.0, "path": [[xc, side * start_m], end],
              "start_delay_s": t_meet + late_s - start_m / speed}
    cfg = scenario_dict([robot_entry(profile)], people=[person], obstacles=list(obstacles))
    return World.from_scenario(cfg, seed=1), xc


def control_hits(make_world, v_req, t_end):
    world, _ = make_world()
    res = run_closed_loop(world, "r", v_req, mode="bypass", t_end_s=t_end, until=lambda w, d: bool(w.contacts))
    return bool(res.contacts)


def front_x(world) -> float:
    return float(world.pose("r")[0]) + max(x1 for _, x1, _, _ in world.robots["r"].rect_list)


def drove_past(xc):
    """Run end: the front is past the person's track (they end up standing >= 6 m off the path)."""
    return lambda world, d: front_x(world) > xc + 0.5


def check_resume_after_hold(params, res, tag):
    """Every protective stop caused by the person ended exactly ``resume_hold_s`` after its last cause."""
    for _t_enter, t_leave in res.stop_episodes():
        assert t_leave is not None, f"{tag}: still stopped at the end of the run"
        t_cause = max(float(t) for t, r in zip(res.t_s, res.reasons)
                      if any(c in r for c in PERSON_CAUSES) and t < t_leave)
        assert params.resume_hold_s - 1e-6 <= t_leave - t_cause <= params.resume_hold_s + DT + 1e-6, tag


def run_person_case(profile, v_req, person, mode, step_in=False, obstacles=(), late_s=0.0):
    params = load_profile(CONFIG, profile)
    make = lambda: person_world(profile, v_req, *person, step_in=step_in, obstacles=obstacles,  # noqa: E731
                                late_s=late_s)
    world, xc = make()
    spec = world.people.specs[0]
    t_end = spec.start_delay_s + 2 * STAND_OFF_M / person[1] + PAUSE_S * step_in + 14.0
    assert control_hits(make, v_req, t_end), "control run (gate open) should hit the person"
    res = run_closed_loop(world, "r", v_req, params, mode=mode, t_end_s=t_end, until=drove_past(xc))
    tag = f"{mode} {profile} {v_req} m/s {person[0]} {'step-in' if step_in else 'crossing'}"
    assert not res.contacts, f"{tag}: contact {res.contacts[0]}"
    assert min(res.min_clearance_m.values()) > 0.0, tag
    assert front_x(world) > xc + 0.5, f"{tag}: did not drive on past the person's track"
    check_resume_after_hold(params, res, tag)
    return params, res, xc, tag, world


@pytest.mark.parametrize("profile", ["tractor", "shuttle", "row_robot"])
def test_profile_lidar_mount_matches_the_simulated_robot(profile):
    """The closed loop converts scans with the simulated lidar's mount; on the robot the supervisor reads it
    from robot_description. The shipped profile must not repeat it (a stale copy shifts every scan point), and
    the URDF's laser frame must be where the simulator puts the lidar."""
    from agricare.core.description import parse_urdf, sensor_mounts

    values = {}
    for name in ("safety_supervisor_node.yaml", f"safety_{profile}.yaml"):
        values.update(yaml.safe_load((CONFIG / name).read_text())["/**"]["ros__parameters"])
    assert "scan_mount_xyyaw" not in values
    urdf = CONFIG.parent / "urdf" / f"{ROBOT[profile]}.urdf"
    laser = sensor_mounts(parse_urdf(urdf.read_text()))["laser"]
    sp = default_sensors(ROBOT[profile])["scan"]
    assert laser == pytest.approx([sp.mount_x_m, sp.mount_y_m, sp.mount_yaw_rad], abs=1e-6)


# ------------------------------------------------------------------------------------------------ crossings
def first_on_path_time(world, hw) -> float:
    """Time (s) the person's disc first overlaps the robot's straight path band |y| < hw."""
    spec = world.people.specs[0]
    crowd = Crowd([spec])
    for t in np.arange(0.0, 60.0, DT):
        crowd.update(float(t))
        if abs(crowd.positions[0, 1]) < hw + spec.radius_m:
            return float(t)
    raise AssertionError("the person never reaches the path")


CROSSINGS = [(profile, v, person, "tracked") for profile, v in SPEEDS for person in (ADULT_WALK, CHILD_RUN)] + \
    [(profile, v, CHILD_RUN, "scan") for profile, v in SPEEDS]


@pytest.mark.parametrize("profile,v_req,person,mode", CROSSINGS,
                         ids=[f"{p}-{v}-{q[0]}-{m}" for p, v, q, m in CROSSINGS])
def test_person_crossing_the_path_no_contact(profile, v_req, person, mode):
    """An adult walking / a child running crosses the whole path: no contact. When the person steps onto
    the path the robot is already at most at the slow speed or stopping (at the higher speeds the slow field
    alone lets them pass ahead of it); it drives on afterwards; any protective stop ends after the hold time.
    (The scan-only variant runs the harder case, the running child.)"""
    params, res, xc, tag, world = run_person_case(profile, v_req, person, mode)
    t_on = first_on_path_time(world, HALF_WIDTH[profile])
    i_on = int(np.searchsorted(res.t_s, t_on))
    assert res.cmd_v_mps[i_on] <= params.slow_speed_mps + 1e-9, f"{tag}: {res.cmd_v_mps[i_on]:.2f} m/s at {t_on} s"
    assert res.reasons[i_on], tag


STEP_IN = [("tractor", 2.0, "tracked"), ("tractor", 3.0, "tracked"), ("shuttle", 1.0, "tracked"),
           ("shuttle", 2.0, "tracked"), ("tractor", 3.0, "scan"), ("shuttle", 2.0, "scan")]


@pytest.mark.parametrize("profile,v_req,mode", STEP_IN)
def test_person_steps_into_path_stop_and_resume(profile, v_req, mode):
    """An adult walks into the path and stands there: protective stop, no contact; after they walked back
    out, the robot resumes exactly the hold time after the field became clear and drives on. (At the lower
    speeds the crossings above already end in a stop.)"""
    params, res, xc, tag, _ = run_person_case(profile, v_req, ADULT_WALK, mode, step_in=True)
    check_stop_and_resume(res, tag)


def check_stop_and_resume(res, tag):
    stops = res.stop_episodes()
    assert stops, f"{tag}: no protective stop"
    t_enter, t_leave = stops[0]
    i_enter, i_leave = (int(np.searchsorted(res.t_s, t)) for t in (t_enter, t_leave))
    assert np.abs(res.v_mps[i_enter:i_leave + 1]).min() < 0.05, f"{tag}: never (nearly) stood still in the stop"
    assert res.states[i_leave] not in STOP_STATES and res.v_mps[-1] > 0.1, f"{tag}: did not resume"
    return stops


OCCLUDED = [(p, v, late, mode) for p, v in (("tractor", 3.0), ("shuttle", 2.0))
            for late, mode in ((0.3, "tracked"), (0.3, "scan"), (0.9, "tracked"))]


@pytest.mark.parametrize("profile,v_req,late_s,mode", OCCLUDED)
def test_person_steps_out_from_behind_obstacle(profile, v_req, late_s, mode):
    """A person hidden behind a parked trailer / van beside the path steps out and walks across the path in
    front of the robot at its full speed (the parked vehicle is outside the protective fields: no slow-down
    before; the person is not tracked while hidden), their centre reaching the centre line ``late_s`` after
    the ungated robot's front passed their track: protective stop, no contact, resume after the hold time.
    Scan only runs the earlier step-out: 0.9 s late the shuttle's scan sees the person 0.8 m ahead of its
    front at 2 m/s, inside any stopping distance; only the tracked person's predicted path is in time."""
    params = load_profile(CONFIG, profile)
    hw = HALF_WIDTH[profile]
    start = hw + 1.9  # just behind the parked vehicle's far end: out of the lidar's sight until stepping out
    person = ADULT_WALK[:3] + (start,)
    _, xc = person_world(profile, v_req, *person, late_s=late_s)
    box = {"name": "parked", "polygon": [[xc - 6.0, -hw - 0.7], [xc - 0.6, -hw - 0.7],
                                         [xc - 0.6, -start - 1.0], [xc - 6.0, -start - 1.0]]}
    params, res, xc2, tag, _ = run_person_case(profile, v_req, person, mode, obstacles=[box], late_s=late_s)
    assert xc2 == xc
    stops = check_stop_and_resume(res, tag)
    first_reaction = next(i for i, r in enumerate(res.reasons) if r)
    assert res.v_mps[first_reaction] > 0.95 * v_req, f"{tag}: slowed down before the person appeared (premise)"
    assert stops[0][0] - res.t_s[first_reaction] < 0.5, tag


# ------------------------------------------------------------------------------------------------ geofence
def run_geofence(profile, keep_in, mode):
    """Drive at the profile's max speed straight at x = 25 m: a keep-in field edge or a keep-out pond."""
    params0 = load_profile(CONFIG, profile)
    v = params0.max_speed_mps
    line_x = 25.0
    if keep_in:
        ring = [[-10.0, -15.0], [line_x, -15.0], [line_x, 15.0], [-10.0, 15.0]]
        params = load_profile(CONFIG, profile, keep_in_xy=[c for p in ring for c in p])
        cfg = scenario_dict([robot_entry(profile, field="f")], fields=[{"name": "f", "polygon": ring}])
        keep_out = ()
    else:
        pond = [[line_x, -4.0], [line_x + 6.0, -4.0], [line_x + 6.0, 4.0], [line_x, 4.0]]
        params = load_profile(CONFIG, profile, keep_out_xy=[c for p in pond for c in p], keep_out_vertex_counts=[4])
        cfg = scenario_dict([robot_entry(profile)])
        keep_out = (pond,)
    world = World.from_scenario(cfg, seed=1)
    if mode == "bypass":
        res = run_closed_loop(world, "r", v, mode="bypass", t_end_s=25.0, keep_out_xy=keep_out,
                              until=lambda w, d: w.pose("r")[0] > line_x + 2.0)
    else:
        res = run_closed_loop(world, "r", v, params, mode="scan", t_end_s=40.0, keep_out_xy=keep_out,
                              until=lambda w, d: d is not None and d.state in STOP_STATES and abs(w.velocity("r")[0])
                              < 1e-6 and w.t_s > 5.0)
    body = shapely.MultiPolygon([shapely.Polygon(c) for c in world.robots["r"].corners()])
    gap = line_x - float(shapely.bounds(body)[2])
    return params, res, gap, v


@pytest.mark.parametrize("keep_in", [True, False], ids=["keep_in", "keep_out"])
@pytest.mark.parametrize("profile", ["tractor", "shuttle"])
def test_geofence_approach_stops_before_the_line(profile, keep_in):
    _, control, gap_open, v = run_geofence(profile, keep_in, "bypass")
    if keep_in:
        assert control.boundary_violations, "control run (gate open) should leave the field"
    else:
        assert control.keep_out_gap_m < 0.0, "control run (gate open) should enter the pond"
    params, res, gap, v = run_geofence(profile, keep_in, "supervised")
    tag = f"{profile} {'keep-in' if keep_in else 'keep-out'}"
    assert res.v_mps.max() > 0.95 * v, f"{tag}: never reached max speed (test premise)"
    assert res.states[-1] == SafetyState.PROTECTIVE_STOP, tag
    reason = "geofence_keep_in" if keep_in else "geofence_keep_out"
    assert reason in res.reasons[-1], f"{tag}: {res.reasons[-1]}"
    if keep_in:
        assert not res.boundary_violations, f"{tag}: {res.boundary_violations}"
    else:
        assert res.keep_out_gap_m > 0.0, f"{tag}: body touched the keep-out polygon"
    assert 0.0 < gap < params.geofence_margin_m + params.lateral_margin_m + params.stop_margin_m + 1.5, \
        f"{tag}: stopped {gap:.2f} m before the line"
