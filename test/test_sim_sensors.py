"""Embedded simulator sensors: ray casting, GNSS noise and outages, IMU tilt, camera geometry, schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.geodesy import LocalTangentPlane
from agricare.core.sim.camera import project_ground_points
from agricare.core.sim.scenarios import scenario_dict
from agricare.core.sim.sensors import GnssModel, GnssParams, ray_cast
from agricare.core.sim.world import World

DT = 0.02


def robot(name="r", rtype="row_robot", x=0.0, y=0.0, yaw_deg=0.0, **extra):
    d = {"name": name, "type": rtype, "start": {"x_m": x, "y_m": y, "yaw_deg": yaw_deg}}
    d.update(extra)
    return d


def test_ray_cast_exact_ranges_against_wall_and_circle():
    seg_a = np.array([[5.0, -10.0]])
    seg_b = np.array([[5.0, 10.0]])
    circ_c = np.array([[0.0, 3.0]])
    circ_r = np.array([1.0])
    angles = np.array([0.0, math.pi / 4, math.pi / 2, math.pi, -math.atan2(10.0, 5.0) - 1e-3])
    r = ray_cast((0.0, 0.0), angles, seg_a, seg_b, circ_c, circ_r, 30.0)
    assert r[0] == pytest.approx(5.0, abs=1e-12)
    assert r[1] == pytest.approx(5.0 * math.sqrt(2.0), abs=1e-12)
    assert r[2] == pytest.approx(2.0, abs=1e-12)
    assert np.isinf(r[3]) and np.isinf(r[4])  # behind, and just past the wall's end
    # tangent-ish ray to the circle and range limit
    r2 = ray_cast((0.0, 0.0), np.array([0.0]), seg_a, seg_b, circ_c, circ_r, 4.0)
    assert np.isinf(r2[0])


def test_world_scan_sees_building_person_and_other_robot_exactly():
    cfg = scenario_dict(
        [robot("a", "care_shuttle", sensors={"scan": {"noise_std_m": 0.0, "mount_x_m": 0.0, "n_beams": 360}}),
         robot("b", "row_robot", x=0.0, y=-6.0, yaw_deg=0.0)],
        places=[{"name": "house", "kind": "home", "xy": [12, 0], "footprint": [[10, -3], [14, -3], [14, 3], [10, 3]],
                 "boarding": {"x_m": 8, "y_m": 0}}],
        people=[{"name": "p", "path": [[0.0, 4.0]], "radius_m": 0.25}])
    w = World.from_scenario(cfg)
    scan = w.scan("a")
    ang = scan.angle_min_rad + scan.angle_increment_rad * np.arange(len(scan.ranges_m))
    i0 = int(np.argmin(np.abs(ang)))
    i90 = int(np.argmin(np.abs(ang - math.pi / 2)))
    im90 = int(np.argmin(np.abs(ang + math.pi / 2)))
    assert scan.ranges_m[i0] == pytest.approx(10.0, abs=1e-5)
    assert scan.ranges_m[i90] == pytest.approx(3.75, abs=1e-5)
    # row robot b at y=-6, width 0.55: its left side is at y = -6 + 0.275
    assert scan.ranges_m[im90] == pytest.approx(6.0 - 0.275, abs=1e-5)
    assert scan.angle_increment_rad == pytest.approx(2 * math.pi / 360)
    assert np.isinf(scan.ranges_m[int(np.argmin(np.abs(ang - math.pi)))])


@pytest.mark.parametrize("mode,sigma", [("standard", 1.5), ("rtk", 0.02)])
def test_gnss_white_noise_statistics(mode, sigma):
    ltp = LocalTangentPlane(36.1, 140.1, 20.0)
    g = GnssModel(GnssParams(mode=mode, correlation_time_s=0.0), np.random.default_rng(3), ltp)
    fixes = [g.read(i * 0.1, 10.0, 20.0, 2.0) for i in range(3000)]
    lat = np.array([f.latitude_deg for f in fixes])
    lon = np.array([f.longitude_deg for f in fixes])
    x, y = ltp.to_map(lat, lon)
    for err in (x - 10.0, y - 20.0):
        assert abs(err.mean()) < 4 * sigma / math.sqrt(3000)
        assert err.std() == pytest.approx(sigma, rel=0.06)
    expected_status = 2 if mode == "rtk" else 0
    assert all(f.status == expected_status for f in fixes)
    assert fixes[0].position_covariance[0] == pytest.approx(sigma ** 2)


def test_gnss_correlated_noise_keeps_its_stationary_std():
    ltp = LocalTangentPlane(36.1, 140.1, 20.0)
    g = GnssModel(GnssParams(mode="standard", correlation_time_s=0.5), np.random.default_rng(9), ltp)
    err = np.array([[f.error_east_m, f.error_north_m] for f in (g.read(i * 0.1, 0, 0, 0) for i in range(10000))])
    assert err.std(axis=0) == pytest.approx([1.5, 1.5], rel=0.1)
    lag1 = np.corrcoef(err[:-1, 0], err[1:, 0])[0, 1]
    assert lag1 == pytest.approx(math.exp(-0.1 / 0.5), abs=0.03)


def test_gnss_outage_gives_no_fix_then_recovers():
    cfg = scenario_dict([robot(sensors={"gnss": {"rate_hz": 10.0, "outages": [[1.0, 2.0]]}})])
    w = World.from_scenario(cfg)
    fixes = []
    for _ in range(int(3.0 / DT)):
        w.step(DT)
        fixes += [s.reading for s in w.sensors_due() if s.kind == "gnss"]
    assert len(fixes) == pytest.approx(30, abs=1)
    for f in fixes:
        if 1.0 <= f.t_s < 2.0:
            assert f.status == -1 and math.isnan(f.latitude_deg)
        else:
            assert f.status == 2 and abs(f.latitude_deg - 36.1) < 1e-4
    assert sum(f.status == -1 for f in fixes) == 10


def test_gnss_fix_is_at_the_antenna_position():
    cfg = scenario_dict([robot(x=30.0, y=-40.0, yaw_deg=90.0,
                               sensors={"gnss": {"horizontal_std_m": 0.0, "vertical_std_m": 0.0,
                                                 "antenna_x_m": 0.5, "antenna_height_m": 1.5}})])
    w = World.from_scenario(cfg)
    w.step(DT)
    fix = next(s.reading for s in w.sensors_due() if s.kind == "gnss")
    x, y, z = w.ltp.to_map(fix.latitude_deg, fix.longitude_deg, fix.altitude_m)
    assert (x, y, z) == pytest.approx((30.0, -39.5, 1.5), abs=1e-6)


def test_imu_roll_and_pitch_follow_the_slope():
    quiet = {"imu": {"tilt_noise_std_rad": 0.0, "yaw_noise_std_rad": 0.0, "yaw_bias_std_rad": 0.0,
                     "gyro_noise_std_radps": 0.0, "gyro_bias_std_radps": 0.0, "accel_noise_std_mps2": 0.0}}
    cfg = scenario_dict([robot("east", yaw_deg=0.0, sensors=quiet), robot("north", x=5, yaw_deg=90.0, sensors=quiet)],
                        terrain={"slope_x": 0.1})
    w = World.from_scenario(cfg)
    w.step(DT)
    imu = {s.robot: s.reading for s in w.sensors_due() if s.kind == "imu"}
    # going east uphill: nose up = negative pitch (REP-103); facing north the right side is higher
    assert imu["east"].pitch_rad == pytest.approx(-math.atan(0.1), abs=1e-12)
    assert imu["east"].roll_rad == pytest.approx(0.0, abs=1e-12)
    assert imu["north"].roll_rad == pytest.approx(-math.atan(0.1), abs=1e-12)
    assert imu["north"].yaw_rad == pytest.approx(math.pi / 2, abs=1e-12)
    acc = imu["east"].linear_acceleration_mps2
    assert np.linalg.norm(acc) == pytest.approx(9.80665, rel=1e-9)  # at rest: only gravity
    assert acc[0] == pytest.approx(9.80665 * math.sin(math.atan(0.1)), rel=1e-9)


def test_sensor_rates_follow_their_schedules():
    cfg = scenario_dict([robot(sensors={"camera": False})])
    w = World.from_scenario(cfg)
    counts = {}
    for _ in range(int(2.0 / DT)):
        w.step(DT)
        for s in w.sensors_due():
            counts[s.kind] = counts.get(s.kind, 0) + 1
    # schedules start at t = 0 (first sample after the first step) and include t = 2.0
    assert counts["odom"] == 100 and counts["gnss"] == 21 and counts["scan"] == 21
    assert counts["imu"] == 100  # 100 Hz asked, capped by the 50 Hz step
    assert counts["battery"] == 3 and counts["people"] == 21 and counts["ground_truth"] == 100
    assert "camera" not in counts and "coverage" not in counts


def test_battery_drains_faster_when_driving():
    w = World.from_scenario(scenario_dict([robot("idle"), robot("busy", y=5.0)]))
    for _ in range(int(20 / DT)):
        w.set_command("busy", 1.0, 0.0)
        w.step(DT)
    bi, bb = w.robots["idle"].battery, w.robots["busy"].battery
    assert bb.charge_ah < bi.charge_ah < bi.params.capacity_ah * bi.params.initial_soc
    assert bb.read(w.t_s).current_a < bi.read(w.t_s).current_a < 0


def _crop_world(**cam):
    fields = [{"name": "f", "polygon": [[-5, -5], [40, -5], [40, 10], [-5, 10]],
               "crop_blocks": [{"name": "c", "origin": [0.0, 0.0], "heading_deg": 0.0, "rows": 4, "spacing_m": 0.75,
                                "length_m": 30.0, "gap_probability": 0.0, "weed_density_per_m2": 0.0,
                                "plant_spacing_m": 0.1, "plant_diameter_m": 0.12}]}]
    cam = {"noise_std": 0.0, "width_px": 320, "height_px": 240, **cam}
    return World.from_scenario(scenario_dict([robot(x=5.0, y=1.125, sensors={"camera": cam})], fields=fields))


def test_camera_renders_rows_at_their_projected_columns():
    w = _crop_world()
    img = w.camera_image("r").astype(float)
    exg = 2 * img[:, :, 1] - img[:, :, 0] - img[:, :, 2]
    params = w.robots["r"].spec.sensors["camera"]
    K = w.camera_matrix("r")
    pose = w.pose("r")
    on, off = [], []
    for d in np.arange(1.0, 3.0, 0.05):  # ground distances ahead of the camera
        xg = pose[0] + params.mount_x_m + d
        for y_row in (0.75, 1.5):  # the two rows either side of the lane
            (u, v), = project_ground_points(K, params, pose, [[xg, y_row]])
            (u_mid, _), = project_ground_points(K, params, pose, [[xg, y_row + 0.375 * np.sign(y_row - 1.125)]])
            on.append(exg[int(round(v)), int(round(u))])
            off.append(exg[int(round(v)), int(round(u_mid))])
        (uc, vc), = project_ground_points(K, params, pose, [[xg, 1.125]])
        off.append(exg[int(round(vc)), int(round(uc))])
    assert np.median(on) > 60 and np.median(off) < 10
    # lane centre projects to the image centre column when driving along it
    (uc, _), = project_ground_points(K, params, pose, [[pose[0] + 5.0, 1.125]])
    assert uc == pytest.approx(K[0, 2], abs=1e-6)


def test_camera_horizon_shows_sky_and_image_is_deterministic():
    w1 = _crop_world(pitch_deg=10.0, hfov_deg=90.0)
    w2 = _crop_world(pitch_deg=10.0, hfov_deg=90.0)
    a = w1.camera_image("r")
    assert np.array_equal(a, w2.camera_image("r"))
    cam = w1.robots["r"].camera
    assert 0 < cam.horizon_v < a.shape[0]
    top = a[: int(cam.horizon_v) - 1]
    assert np.all(top[:, :, 0] > top[:, :, 2])  # bluish sky above the horizon
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
