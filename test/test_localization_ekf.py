"""EKF: accuracy on a synthetic drive and every bad input (NaN, jumps, stale, late, clock back, params)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.localization import synthetic as syn
from agricare.core.localization.ekf import (ACCEPTED, CLOCK_RESET, DROPPED_LATE, INVALID, REJECTED,
                                            EkfParams, PlanarEkf)


def run_drive(params=None, gnss_std=0.02, outages=(), seconds_rows=2, seed=0):
    traj = syn.lawnmower(speed_mps=3.0, row_length_m=45.0, row_spacing_m=10.0, rows=seconds_rows, dt_s=0.01)
    to, vo, wo, _ = syn.odometry(traj, seed=seed)
    tg, wg = syn.gyro(traj, seed=seed + 1)
    tf, xy = syn.gnss(traj, std_m=gnss_std, outages=outages, seed=seed + 2)
    ekf = PlanarEkf(params or EkfParams())
    ekf.initialize(0.0, traj.pose(0), (0.05, 0.05, 0.02))
    events = sorted([(t, 0, i) for i, t in enumerate(to)] + [(t, 1, i) for i, t in enumerate(tg)]
                    + [(t, 2, i) for i, t in enumerate(tf)])
    errs = []
    for t, kind, i in events:
        if kind == 0:
            ekf.update("odom", t, [vo[i], wo[i]], np.diag([0.02 ** 2, 0.01 ** 2]))
        elif kind == 1:
            ekf.update("imu_rate", t, [wg[i]], [[0.003 ** 2]])
        else:
            ekf.update("gnss", t, xy[i], np.eye(2) * gnss_std ** 2)
            k = int(round(t / traj.dt_s))
            errs.append(math.hypot(ekf.x[0] - traj.x[k], ekf.x[1] - traj.y[k]))
    return ekf, traj, np.asarray(errs)


def test_rtk_drive_is_accurate():
    ekf, _, errs = run_drive()
    rmse = float(np.sqrt(np.mean(errs[20:] ** 2)))
    assert rmse < 0.03, rmse
    assert ekf.stats.rejected["gnss"] <= 3
    assert 1.005 < ekf.x[6] < 1.015  # odometry scale error (1 %) learnt


def test_nan_and_inf_are_refused_without_touching_the_state():
    ekf = PlanarEkf()
    ekf.initialize(0.0, [1.0, 2.0, 0.3])
    x0, P0 = ekf.x.copy(), ekf.P.copy()
    assert ekf.update("gnss", 0.1, [math.nan, 2.0], np.eye(2)) == INVALID
    assert ekf.update("odom", 0.1, [1.0, math.inf], np.eye(2)) == INVALID
    assert ekf.update("gnss", 0.1, [1.0, 2.0], np.eye(2) * math.nan) == INVALID
    assert ekf.update("gnss", 0.1, [1.0, 2.0], -np.eye(2)) == INVALID
    assert ekf.update("imu_rate", math.nan, [0.0], [[1.0]]) == INVALID
    assert np.array_equal(ekf.x, x0) and np.array_equal(ekf.P, P0)
    assert ekf.stats.invalid["gnss"] == 3 and ekf.stats.invalid["odom"] == 1


def test_50m_jump_is_rejected_and_counted():
    ekf, traj, _ = run_drive(seconds_rows=1)
    t = ekf.t + 0.2
    pred, _ = ekf.predicted(t)
    assert ekf.update("gnss", t, pred[:2] + [50.0, 0.0], np.eye(2) * 0.02 ** 2) == REJECTED
    assert ekf.stats.rejected["gnss"] >= 1
    assert math.hypot(*(ekf.x[:2] - pred[:2])) < 0.1


def test_persistent_offset_is_eventually_trusted():
    p = EkfParams(max_consecutive_gnss_rejections=5)
    ekf = PlanarEkf(p)
    ekf.initialize(0.0, [0.0, 0.0, 0.0], (0.01, 0.01, 0.01))
    for k in range(1, 6):
        ekf.update("gnss", 0.2 * k, [30.0, 0.0], np.eye(2) * 0.01)
    assert ekf.stats.gnss_resets == 1 and abs(ekf.x[0] - 30.0) < 0.5


def test_stale_source_reported_and_covariance_grows():
    ekf, _, _ = run_drive(seconds_rows=1)
    t_last = ekf.t
    assert ekf.stale_sources(t_last) == {}
    stale = ekf.stale_sources(t_last + 5.0)
    assert set(stale) == {"odom", "imu_rate", "gnss"} and stale["gnss"] >= 5.0
    _, P1 = ekf.predicted(t_last + 1.0)
    _, P5 = ekf.predicted(t_last + 5.0)
    assert P5[0, 0] > P1[0, 0] > ekf.P[0, 0]
    assert ekf.t == t_last  # predicting does not move the filter


def test_late_measurement_is_reapplied_in_order():
    base = PlanarEkf()
    late = PlanarEkf()
    for f in (base, late):
        f.initialize(0.0, [0.0, 0.0, 0.0], (0.5, 0.5, 0.1))
    meas = [("odom", 0.02 * k, [2.0, 0.1], np.diag([1e-3, 1e-3])) for k in range(1, 31)]
    fix = ("gnss", 0.3, [0.6, 0.05], np.eye(2) * 0.01)
    for m in sorted(meas + [fix], key=lambda m: m[1]):
        base.update(*m)
    for m in meas:
        late.update(*m)
    assert late.update(*fix) == ACCEPTED
    assert late.stats.reprocessed == 1
    np.testing.assert_allclose(late.x, base.x, atol=1e-9)
    np.testing.assert_allclose(late.P, base.P, atol=1e-9)


def test_too_late_dropped_and_clock_jump_back_resets():
    ekf = PlanarEkf(EkfParams(history_s=0.5, clock_jump_back_s=2.0))
    ekf.initialize(0.0, [0.0, 0.0, 0.0])
    for k in range(1, 101):
        ekf.update("odom", 0.05 * k, [1.0, 0.0], np.diag([1e-3, 1e-3]))
    assert ekf.update("gnss", 5.0 - 1.0, [4.0, 0.0], np.eye(2)) == DROPPED_LATE
    assert ekf.stats.dropped_late["gnss"] == 1
    assert ekf.update("gnss", 0.5, [0.5, 0.0], np.eye(2)) == CLOCK_RESET
    assert ekf.stats.clock_resets == 1 and ekf.t == 0.5
    assert not ekf.yaw_initialized  # a reset forgets the pose (no initial pose configured)


def test_heading_learnt_from_course_without_initial_pose():
    traj = syn.lawnmower(speed_mps=2.0, row_length_m=30.0, rows=1, dt_s=0.01, pose0=(5.0, 5.0, 0.7))
    to, vo, wo, _ = syn.odometry(traj, seed=3)
    tf, xy = syn.gnss(traj, std_m=0.02, seed=4)
    ekf = PlanarEkf()
    events = sorted([(t, 0, i) for i, t in enumerate(to)] + [(t, 2, i) for i, t in enumerate(tf)])
    for t, kind, i in events:
        if kind == 0:
            ekf.update("odom", t, [vo[i], wo[i]], np.diag([4e-4, 1e-4]))
        else:
            ekf.update("gnss", t, xy[i], np.eye(2) * 4e-4)
    assert ekf.initialized
    assert abs(math.remainder(ekf.x[2] - 0.7, 2 * math.pi)) < 0.05


@pytest.mark.parametrize("field,value", [
    ("map_frame", ""), ("base_frame", "/base_link"), ("odom_frame", "map"), ("accel_noise_mps2", -1.0),
    ("default_gnss_std_m", math.nan), ("gnss_antenna_offset_m", (0.0,)), ("history_s", 0.0),
    ("initial_pose_std", (1.0, 0.0, 1.0)), ("max_consecutive_gnss_rejections", 0),
])
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError) as exc:
        EkfParams(**{field: value})
    msg = str(exc.value)
    assert field in msg, msg   # odom_frame: "map_frame, odom_frame and base_frame must be three different frames"


def test_unknown_source_and_imu_orientation_when_untrusted():
    ekf = PlanarEkf()
    with pytest.raises(ValueError):
        ekf.update("lidar", 0.0, [0.0], [[1.0]])
    assert ekf.update("imu_yaw", 0.0, [0.3], [[0.01]]) == INVALID
    trusted = PlanarEkf(EkfParams(use_imu_orientation=True))
    assert trusted.update("imu_yaw", 0.0, [0.3], [[0.01]]) == ACCEPTED
    assert trusted.yaw_initialized and abs(trusted.x[2] - 0.3) < 1e-12


def test_sparse_prediction_and_closed_form_updates_match_the_dense_forms():
    """The prediction multiplies only the rows F changes and the 1-/2-D updates invert S in closed form: the same
    state, covariance and verdicts as the dense F and LAPACK's inverse, on random states and every source."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        ekf = PlanarEkf(EkfParams(gnss_antenna_offset_m=(0.4, -0.1)))
        x = np.array([rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-3, 3), rng.uniform(-3, 3),
                      rng.uniform(-1, 1), rng.uniform(-0.01, 0.01), rng.uniform(0.95, 1.05)])
        A = rng.normal(size=(7, 7)) * rng.uniform(0.01, 1.0)
        P = A @ A.T + np.eye(7) * 1e-6
        dt = rng.uniform(0.001, 0.02)
        xs, Ps = ekf._process(x, P, dt)
        xd, Pd = ekf._process_reference(x, P, dt)
        assert np.array_equal(xs, xd) and np.allclose(Ps, Pd, rtol=1e-12, atol=1e-15)
        assert np.array_equal(Ps, Ps.T)
        for source, z, R in (("odom", [x[3] + rng.normal(0, 0.1)], [[rng.uniform(1e-4, 1e-2)]]),
                             ("imu_rate", [x[4] + rng.normal(0, 0.1)], [[rng.uniform(1e-4, 1e-2)]]),
                             ("gnss", x[:2] + rng.normal(0, 0.5, 2), np.diag(rng.uniform(1e-4, 1.0, 2))),
                             ("pose", x[:2] + rng.normal(0, 3.0, 2), np.diag(rng.uniform(1e-4, 1.0, 2)))):
            z, R = np.asarray(z, dtype=float), np.asarray(R, dtype=float)
            H = np.zeros((len(z), 7))
            if source == "odom":
                H[0, 3] = 1.0
            elif source == "imu_rate":
                H[0, 4] = H[0, 5] = 1.0
            else:
                H[0, 0] = H[1, 1] = 1.0
                H[:, 2] = rng.normal(0, 0.3, 2)
            y = z - H @ x
            fast, ref = PlanarEkf(ekf.p), PlanarEkf(ekf.p)
            for f in (fast, ref):
                f.x, f.P = x.copy(), P.copy()
            verdict = fast._kalman(source, y, H, R, ekf.p.gate_chi2_2dof, False)
            assert verdict == ref._kalman_reference(source, y, H, R, ekf.p.gate_chi2_2dof, False)
            assert np.allclose(fast.x, ref.x, rtol=1e-10, atol=1e-12)
            assert np.allclose(fast.P, ref.P, rtol=1e-8, atol=1e-14)
    ekf = PlanarEkf(EkfParams())
    ekf.P = np.zeros((7, 7))        # S singular: refused as invalid, as LAPACK's inverse refuses it
    H = np.zeros((2, 7))
    H[0, 0] = H[1, 1] = 1.0
    assert ekf._kalman("gnss", np.ones(2), H, np.zeros((2, 2)), 13.8, False) == INVALID
    assert ekf._kalman("imu_rate", np.ones(1), H[:1], np.zeros((1, 1)), 10.8, False) == INVALID
