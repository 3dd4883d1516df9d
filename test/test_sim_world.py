"""Embedded simulator core: determinism, kinematics, actuator limits, coverage, contacts, boundaries, rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.sim.coverage import CoverageRaster
from agricare.core.sim.scenarios import load_scenario, scenario_dict
from agricare.core.sim.world import World

DT = 0.02
QUIET = {"odom": {"scale_error_std": 0.0, "track_error_std": 0.0, "steer_bias_std_rad": 0.0,
                  "velocity_noise_std_mps": 0.0, "yaw_rate_noise_std_radps": 0.0}}


def robot(name="r", rtype="row_robot", x=0.0, y=0.0, yaw_deg=0.0, **extra):
    d = {"name": name, "type": rtype, "start": {"x_m": x, "y_m": y, "yaw_deg": yaw_deg}}
    d.update(extra)
    return d


def drive(world, name, v, w, seconds, dt=DT, record=False):
    poses = []
    for _ in range(int(round(seconds / dt))):
        world.set_command(name, v, w)
        world.step(dt)
        if record:
            poses.append(world.pose(name))
    return np.array(poses)


def fit_circle_radius(xy):
    """Algebraic (Kasa) circle fit."""
    x, y = xy[:, 0], xy[:, 1]
    A = np.column_stack([x, y, np.ones_like(x)])
    b = x * x + y * y
    c = np.linalg.lstsq(A, b, rcond=None)[0]
    cx, cy = c[0] / 2, c[1] / 2
    return math.sqrt(c[2] + cx * cx + cy * cy)


def test_same_seed_gives_identical_runs_and_other_seed_differs(repo_root):
    spec = load_scenario(repo_root / "config/scenarios/farm_small.yaml")

    def run(seed):
        w = World.from_scenario(spec, seed=seed)
        log = []
        for i in range(150):
            w.set_command("tractor", 1.5, 0.1 * math.sin(i * 0.05))
            w.set_command("row_robot", 0.5, 0.0)
            w.set_sections("tractor", [1, i % 2, 1])
            w.step(DT)
            for s in w.sensors_due():
                r = s.reading
                if s.kind == "camera":
                    log.append(r.image.astype(np.int64).sum())
                elif s.kind == "gnss":
                    log.extend([r.latitude_deg, r.longitude_deg])
                elif s.kind == "scan":
                    log.append(float(np.nansum(np.where(np.isfinite(r.ranges_m), r.ranges_m, 0))))
                elif s.kind == "odom":
                    log.extend([r.x_m, r.y_m, r.yaw_rad, r.v_mps])
                elif s.kind == "imu":
                    log.extend(r.angular_velocity_radps.tolist())
            log.extend(w.pose("tractor").tolist())
        return np.array(log, dtype=float)

    a, b, c = run(5), run(5), run(6)
    assert a.shape == b.shape and np.array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)


def test_time_is_exact_integer_nanoseconds():
    w = World.from_scenario(scenario_dict([robot()]))
    for _ in range(1000):
        w.step(0.01)
    assert w.t_ns == 10_000_000_000 and w.t_s == 10.0


@pytest.mark.parametrize("rtype,v,w_cmd,radius", [("row_robot", 0.5, 0.25, 2.0), ("care_shuttle", 2.0, 0.2, 10.0),
                                                  ("tractor", 2.0, 0.2, 10.0)])
def test_circle_radius_matches_v_over_w(rtype, v, w_cmd, radius):
    w = World.from_scenario(scenario_dict([robot(rtype=rtype)]))
    drive(w, "r", v, w_cmd, 5.0)  # let actuators settle
    poses = drive(w, "r", v, w_cmd, 2 * math.pi / w_cmd, record=True)
    assert fit_circle_radius(poses[:, :2]) == pytest.approx(radius, rel=0.01)
    assert w.velocity("r")[0] == pytest.approx(v, rel=0.01)


def test_tractor_steering_is_clipped_to_max_steer():
    w = World.from_scenario(scenario_dict([robot(rtype="tractor", vehicle={"max_steer_deg": 30.0})]))
    drive(w, "r", 1.0, 2.0, 8.0)
    poses = drive(w, "r", 1.0, 2.0, 15.0, record=True)
    assert fit_circle_radius(poses[:, :2]) == pytest.approx(2.6 / math.tan(math.radians(30.0)), rel=0.01)
    assert abs(w.robots["r"].vehicle.steer_rad) <= math.radians(30.0) + 1e-12


@pytest.mark.parametrize("rtype", ["row_robot", "tractor"])
def test_straight_line_keeps_heading(rtype):
    w = World.from_scenario(scenario_dict([robot(rtype=rtype, x=3.0, y=4.0, yaw_deg=30.0)]))
    drive(w, "r", 1.0, 0.0, 10.0)
    x, y, yaw = w.pose("r")
    assert yaw == pytest.approx(math.radians(30.0), abs=1e-9)
    assert math.atan2(y - 4.0, x - 3.0) == pytest.approx(math.radians(30.0), abs=1e-9)
    assert 8.5 < math.hypot(x - 3.0, y - 4.0) < 10.0  # lag makes it a bit less than 10 m


def test_speed_lag_is_first_order_with_its_time_constant():
    w = World.from_scenario(scenario_dict([robot(rtype="tractor")]))
    tau = w.robots["r"].vehicle.params.speed_time_constant_s
    drive(w, "r", 0.3, 0.0, tau)
    assert w.velocity("r")[0] == pytest.approx(0.3 * (1 - math.exp(-1)), rel=0.03)


def test_acceleration_and_steering_rate_limits():
    w = World.from_scenario(scenario_dict([robot(rtype="tractor")]))
    p = w.robots["r"].vehicle.params
    last_v, last_steer = 0.0, 0.0
    for _ in range(100):
        w.set_command("r", 4.0, 1.5)
        w.step(DT)
        veh = w.robots["r"].vehicle
        assert veh.wheel_v_mps - last_v <= p.max_accel_mps2 * DT + 1e-12
        assert abs(veh.steer_rad - last_steer) <= p.max_steer_rate_radps * DT + 1e-12
        last_v, last_steer = veh.wheel_v_mps, veh.steer_rad
    assert last_v == pytest.approx(p.max_accel_mps2 * 100 * DT, rel=0.05)  # accel-limited ramp


def test_diff_drive_wheel_speed_limit_keeps_curvature():
    w = World.from_scenario(scenario_dict([robot(vehicle={"max_wheel_speed_mps": 1.0, "max_speed_mps": 1.0,
                                                          "max_yaw_rate_radps": 2.0})]))
    drive(w, "r", 1.0, 1.0, 3.0)
    v, wz = w.velocity("r")
    half = w.robots["r"].vehicle.params.track_width_m / 2
    assert v + wz * half == pytest.approx(1.0, rel=1e-3)  # outer wheel at its limit
    assert wz / v == pytest.approx(1.0, rel=1e-3)


def test_stale_command_brakes_to_zero_and_fresh_one_moves_again():
    w = World.from_scenario(scenario_dict([robot()]))
    drive(w, "r", 0.8, 0.0, 2.0)
    assert w.velocity("r")[0] > 0.7
    w.set_command("r", 0.8, 0.0)
    for _ in range(int(0.4 / DT)):
        w.step(DT)
    assert w.velocity("r")[0] > 0.7  # still fresh
    for _ in range(int(1.6 / DT)):
        w.step(DT)
    assert w.velocity("r")[0] == pytest.approx(0.0, abs=1e-6)
    drive(w, "r", 0.5, 0.0, 2.0)
    assert w.velocity("r")[0] > 0.4


def test_nan_command_stops():
    w = World.from_scenario(scenario_dict([robot()]))
    drive(w, "r", 0.8, 0.0, 2.0)
    drive(w, "r", float("nan"), 0.0, 2.0)
    assert w.velocity("r")[0] == pytest.approx(0.0, abs=1e-6)


def test_odometry_without_errors_matches_truth_and_slip_makes_it_drift():
    fields = [{"name": "f", "polygon": [[-50, -50], [50, -50], [50, 50], [-50, 50]]}]
    for slip, expect_equal in ((0.0, True), (0.05, False)):
        cfg = scenario_dict([robot(sensors=QUIET)], fields=fields,
                            terrain={"soil_slip_long_ratio": slip, "soil_slip_lat_gain_s": 0.0})
        w = World.from_scenario(cfg)
        drive(w, "r", 0.8, 0.2, 10.0)
        odom = w.robots["r"].odom
        truth = w.pose("r")
        if expect_equal:
            assert odom.x_m == pytest.approx(truth[0], abs=1e-9)
            assert odom.y_m == pytest.approx(truth[1], abs=1e-9)
        else:
            assert math.hypot(odom.x_m - truth[0], odom.y_m - truth[1]) > 0.2


def test_coverage_of_a_straight_swath_and_switched_off_section():
    fields = [{"name": "f", "polygon": [[0, 0], [50, 0], [50, 20], [0, 20]], "coverage_cell_m": 0.1}]
    imp = {"section_widths_m": [1.0, 1.0, 1.0], "offset_m": 1.5}
    w = World.from_scenario(scenario_dict([robot("t", "tractor", 3.0, 5.0, field="f", implement=imp)], fields=fields))
    w.set_sections("t", [1, 0, 1])
    drive(w, "t", 2.0, 0.0, 17.0)
    cov = w.coverage["t"]
    assert 30.0 < w.pose("t")[0] < 40.0

    def box(x0, x1, y0, y1):
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    assert cov.covered_ratio(box(8, 25, 5.55, 6.45)) > 0.99  # left section (north)
    assert cov.covered_ratio(box(8, 25, 3.55, 4.45)) > 0.99  # right section (south)
    assert cov.covered_ratio(box(8, 25, 4.6, 5.4)) == 0.0  # middle section off
    assert cov.covered_ratio(box(8, 25, 7.0, 9.0)) == 0.0
    assert cov.double_ratio(box(8, 25, 3.5, 6.5)) == 0.0
    covered, double = w.coverage_ratios("t")
    assert covered == pytest.approx(2.0 * (w.pose("t")[0] - 1.5 - 3.0) / (50 * 20), rel=0.05)
    assert double == 0.0


def test_coverage_raster_counts_overlapping_passes_once_each():
    r = CoverageRaster([[0, 0], [20, 0], [20, 10], [0, 10]], cell_m=0.1)
    # pass 1: x 0..20 at y 2..5 (swept in small steps), pass 2 later: y 4..7
    for k in range(200):
        x0, x1 = k * 0.1, (k + 1) * 0.1
        r.sweep([[[x0, 5], [x0, 2], [x1, 2], [x1, 5]]], t_s=k * 0.05)
    for k in range(200):
        x0, x1 = 20 - k * 0.1, 20 - (k + 1) * 0.1
        r.sweep([[[x0, 4], [x0, 7], [x1, 7], [x1, 4]]], t_s=100 + k * 0.05)
    assert r.covered_ratio() == pytest.approx(0.5, abs=0.01)
    assert r.double_ratio() == pytest.approx(0.1, abs=0.01)
    assert r.count.max() == 2


def test_contacts_with_person_obstacle_building_and_robot():
    cfg = scenario_dict(
        [robot("a", "care_shuttle", 0.0, 0.0), robot("b", "row_robot", 20.0, 10.0, yaw_deg=180.0)],
        people=[{"name": "kid", "kind": "child", "path": [[6.0, 0.3]]}],
        obstacles=[{"name": "post", "circle": {"center": [12.0, -0.5], "radius_m": 0.2}}],
        places=[{"name": "house", "kind": "home", "xy": [30.0, 0.0],
                 "footprint": [[25.0, -3.0], [35.0, -3.0], [35.0, 3.0], [25.0, 3.0]],
                 "boarding": {"x_m": 22.0, "y_m": 0.0}}])
    w = World.from_scenario(cfg)
    drive(w, "a", 2.0, 0.0, 1.0)
    assert w.contacts == []
    drive(w, "a", 2.0, 0.0, 2.5)
    kid = [c for c in w.contacts if c.other == "kid"]
    assert len(kid) == 1 and kid[0].other_kind == "child" and kid[0].robot == "a"
    assert kid[0].robot_speed_mps > 1.0
    drive(w, "a", 2.0, 0.0, 10.0)
    others = {c.other: c for c in w.contacts if c.robot == "a"}
    assert others["kid"].t_end_s is not None  # drove through and past
    assert others["post"].other_kind == "obstacle"
    assert others["house"].other_kind == "building" and others["house"].t_end_s is None
    # robots: move b onto a
    b = w.robots["b"].vehicle
    b.x_m, b.y_m = w.pose("a")[0] + 1.0, w.pose("a")[1]
    w.step(DT)
    assert any(c.robot == "a" and c.other == "b" and c.other_kind == "robot" for c in w.contacts)


def test_boundary_violation_when_leaving_the_field():
    fields = [{"name": "f", "polygon": [[0, 0], [30, 0], [30, 20], [0, 20]]}]
    imp = {"section_widths_m": [1.5, 1.5]}
    w = World.from_scenario(scenario_dict([robot("t", "tractor", 5.0, 10.0, field="f", implement=imp)], fields=fields))
    drive(w, "t", 2.0, 0.0, 5.0)
    assert w.boundary_violations == []
    drive(w, "t", 2.0, 0.0, 12.0)
    assert len(w.boundary_violations) == 1
    ev = w.boundary_violations[0]
    assert ev.robot == "t" and ev.field == "f" and ev.t_end_s is None and ev.max_outside_m > 1.0


def test_people_walk_their_paths_deterministically():
    cfg = scenario_dict([robot()], people=[
        {"name": "p", "path": [[0, 10], [10, 10]], "speed_mps": 1.0, "mode": "pingpong", "pause_s": 2.0},
        {"name": "q", "kind": "child", "path": [[0, 0], [4, 0], [4, 4]], "speed_mps": 2.0, "mode": "loop",
         "start_delay_s": 1.0}])
    w = World.from_scenario(cfg)
    for _ in range(int(5.0 / DT)):
        w.step(DT)
    assert w.people.positions[0] == pytest.approx([5.0, 10.0])
    assert w.people.velocities[0] == pytest.approx([1.0, 0.0])
    assert w.people.positions[1] == pytest.approx([4.0, 4.0])  # 8 m walked in 4 s
    for _ in range(int(6.0 / DT)):  # t = 11: at the far end, pausing
        w.step(DT)
    assert w.people.positions[0] == pytest.approx([10.0, 10.0])
    assert w.people.velocities[0] == pytest.approx([0.0, 0.0])
    assert w.people.radii[1] < w.people.radii[0]


def test_row_error_offsets_and_heading(repo_root):
    w = World.from_scenario(load_scenario(repo_root / "config/scenarios/farm_small.yaml"))
    veh = w.robots["row_robot"].vehicle
    veh.x_m, veh.y_m, veh.yaw_rad = 10.0, 36.3, 0.1  # rows at y = 36.0, 36.75, ... heading east
    e = w.row_error("row_robot")
    assert e.row_index == 0 and e.block == "lettuce" and e.inside_block
    assert e.offset_m == pytest.approx(0.3, abs=1e-9)
    assert e.heading_rad == pytest.approx(0.1, abs=1e-9)
    assert e.lane_offset_m == pytest.approx(-0.075, abs=1e-9)
    assert e.along_m == pytest.approx(7.0, abs=1e-6)
    veh.yaw_rad = math.pi - 0.05  # driving west: the row direction flips, so does the side
    e = w.row_error("row_robot")
    assert e.offset_m == pytest.approx(-0.3, abs=1e-9)
    assert e.heading_rad == pytest.approx(-0.05, abs=1e-9)
    assert e.lane_offset_m == pytest.approx(0.075, abs=1e-9)


def test_curved_rows_row_error_follows_the_arc():
    k = 0.02  # 50 m radius, rows turn left
    fields = [{"name": "f", "polygon": [[-10, -10], [60, -10], [60, 60], [-10, 60]],
               "crop_blocks": [{"name": "c", "origin": [0, 0], "heading_deg": 0, "rows": 3, "spacing_m": 0.75,
                                "length_m": 30, "curvature_1pm": k}]}]
    w = World.from_scenario(scenario_dict([robot()], fields=fields))
    # a point 0.2 m left of row 0 at arc length 20 m: centre of the arc is (0, 50)
    s = 20.0
    ang = k * s
    r = 1 / k - 0.2
    veh = w.robots["r"].vehicle
    veh.x_m, veh.y_m, veh.yaw_rad = r * math.sin(ang), 1 / k - r * math.cos(ang), ang
    e = w.row_error("r")
    assert e.offset_m == pytest.approx(0.2, abs=2e-3)
    assert e.heading_rad == pytest.approx(0.0, abs=2e-3)


def test_parked_robot_stops_its_sensors_but_keeps_its_truth():
    cfg = scenario_dict([{"name": "a", "type": "row_robot", "start": {"x_m": 0, "y_m": 0}},
                         {"name": "b", "type": "row_robot", "start": {"x_m": 5, "y_m": 0}}])
    w = World.from_scenario(cfg, seed=0)
    w.set_command("a", 0.5, 0.0)
    w.park("a")
    kinds = {"a": set(), "b": set()}
    for _ in range(40):
        w.step(0.05)
        for smp in w.sensors_due():
            if smp.robot in kinds:
                kinds[smp.robot].add(smp.kind)
    assert kinds["a"] == {"ground_truth"}
    assert {"odom", "imu", "gnss", "scan", "ground_truth"} <= kinds["b"]
    assert abs(w.velocity("a")[0]) < 1e-6   # the command was zeroed


def test_implement_applies_the_commanded_rate_with_its_metering_lag():
    fields = [{"name": "f", "polygon": [[0, 0], [60, 0], [60, 20], [0, 20]], "coverage_cell_m": 0.1}]
    imp = {"section_widths_m": [1.0, 1.0, 1.0], "offset_m": 1.5, "rate_delay_s": 0.5, "rate_time_constant_s": 0.4}
    w = World.from_scenario(scenario_dict([robot("t", "tractor", 3.0, 5.0, field="f", implement=imp)], fields=fields))
    w.set_sections("t", [1, 1, 1])
    w.set_rates("t", [100.0, 100.0, 100.0])
    drive(w, "t", 2.0, 0.0, 10.0)
    x_switch = w.pose("t")[0] - 1.5                       # the working line when the new rate is commanded
    w.set_rates("t", [200.0, 200.0, 50.0])
    drive(w, "t", 2.0, 0.0, 8.0)
    cov = w.coverage["t"]
    row = int((5.5 - cov.origin[1]) / cov.cell_m)          # left section (north, y 5..6)
    xs = cov.cell_center(row, np.arange(cov.width))[0]
    dose = cov.dose[row]
    before = (xs > x_switch - 8) & (xs < x_switch - 1)
    assert np.allclose(dose[before], 100.0, rtol=0.01)
    # dead time: nothing changes for the first 0.5 s (1 m at 2 m/s) after the command
    assert np.allclose(dose[(xs > x_switch + 0.1) & (xs < x_switch + 0.8)], 100.0, rtol=0.01)
    # then a first-order lag (0.4 s = 0.8 m): after one time constant 63 %, after five at the new rate
    k = int(np.argmin(np.abs(xs - (x_switch + 1.0 + 0.8))))
    assert 150.0 < dose[k] < 180.0
    assert np.allclose(dose[(xs > x_switch + 6) & (xs < x_switch + 12)], 200.0, rtol=0.01)
    row_r = int((4.5 - cov.origin[1]) / cov.cell_m) - 5     # right section (south, y 3..4): 50
    assert np.allclose(cov.dose[row_r][(xs > x_switch + 6) & (xs < x_switch + 12)], 50.0, rtol=0.01)
    # against a prescription: 100 before the switch, 200 after (left/middle), 50 right -> the lag band misses
    pr = np.where(xs[None, :] < x_switch, 100.0, 200.0) * np.ones((cov.height, 1))
    ys = cov.cell_center(np.arange(cov.height), 0)[1]
    pr[(ys > 3.0) & (ys < 4.0)] = np.where(xs < x_switch, 100.0, 50.0)
    a = cov.rate_agreement(pr, 0.05)
    assert 0.8 < a["within_ratio"] < 0.99 and a["worked_area_m2"] > 60.0


def test_without_rate_commands_nothing_is_dosed():
    fields = [{"name": "f", "polygon": [[0, 0], [50, 0], [50, 20], [0, 20]], "coverage_cell_m": 0.1}]
    imp = {"section_widths_m": [1.0, 1.0, 1.0], "offset_m": 1.5}
    w = World.from_scenario(scenario_dict([robot("t", "tractor", 3.0, 5.0, field="f", implement=imp)], fields=fields))
    w.set_sections("t", [1, 1, 1])
    drive(w, "t", 2.0, 0.0, 5.0)
    assert w.coverage["t"].covered_ratio() > 0.01 and not w.coverage["t"].dosed and w.coverage["t"].dose.max() == 0
