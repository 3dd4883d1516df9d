"""Synthetic localisation benchmark (seeded generator, not the simulator): EKF (RTK, standard GNSS, 30 s
outage) and the map particle filter in the town.

Ground truth, wheel odometry (1 % scale error, noise, yaw-rate bias), a biased gyro, GNSS and a ray-cast
lidar come from the seeded generator in ``agricare.core.localization.synthetic``. Raw GNSS and dead
reckoning are computed in the same process as references.

Usage: ``PYTHONPATH=src .venv/bin/python bench/localization_synthetic.py [--quick]``;
writes ``out/bench/localization_synthetic.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np

from agricare.core.geometry import se2_compose, se2_inverse, wrap_angle
from agricare.core.localization import synthetic as syn
from agricare.core.localization.ekf import EkfParams, PlanarEkf
from agricare.core.localization.particle_filter import ParticleFilter, ParticleFilterParams
from agricare.core.planning.grid import RoutePlannerParams, load_map, load_zones, plan_route

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_ekf(traj, gnss_std, outages=(), gnss_rate_hz=5.0, seed=0):
    to, vo, wo, odom_pose = syn.odometry(traj, rate_hz=50.0, scale_error=0.01, seed=seed)
    tg, wg = syn.gyro(traj, rate_hz=100.0, bias_radps=0.005, std_radps=0.003, seed=seed + 1)
    tf, xy = syn.gnss(traj, std_m=gnss_std, rate_hz=gnss_rate_hz, outages=outages, seed=seed + 2)
    ekf = PlanarEkf(EkfParams())
    ekf.initialize(0.0, traj.pose(0) + [0.0, 0.0, 0.0], (max(gnss_std, 0.02),) * 2 + (0.05,))
    events = sorted([(t, 0, i) for i, t in enumerate(to)] + [(t, 1, i) for i, t in enumerate(tg)]
                    + [(t, 2, i) for i, t in enumerate(tf)])
    est = np.zeros((len(to), 3))
    k_odom = 0
    cpu = 0.0
    for t, kind, i in events:
        c0 = time.perf_counter()
        if kind == 0:
            ekf.update("odom", t, [vo[i], wo[i]], np.diag([0.02 ** 2, 0.01 ** 2]))
        elif kind == 1:
            ekf.update("imu_rate", t, [wg[i]], [[0.003 ** 2]])
        else:
            ekf.update("gnss", t, xy[i], np.eye(2) * gnss_std ** 2)
        cpu += time.perf_counter() - c0
        if kind == 0:
            est[k_odom] = ekf.x[:3]
            k_odom += 1
    idx = np.round(to / traj.dt_s).astype(int)
    truth = np.column_stack([traj.x[idx], traj.y[idx], traj.yaw[idx]])
    err = np.hypot(*(est[:, :2] - truth[:, :2]).T)
    # dead reckoning from the true start pose
    T0 = traj.pose(0)
    dr = np.array([se2_compose(T0, p) for p in odom_pose])
    dr_err = np.hypot(*(dr[:, :2] - truth[:, :2]).T)
    gidx = np.round(tf / traj.dt_s).astype(int)
    raw_err = np.hypot(xy[:, 0] - traj.x[gidx], xy[:, 1] - traj.y[gidx])
    return dict(t=to, err=err, dr_err=dr_err, raw_err=raw_err, cpu_us=cpu / len(events) * 1e6, ekf=ekf,
                truth=truth, est=est)


def rmse(e, mask=None):
    e = np.asarray(e) if mask is None else np.asarray(e)[mask]
    return float(np.sqrt(np.mean(e ** 2)))


def bench_ekf(quick: bool):
    rows = 3 if quick else 6
    traj = syn.lawnmower(speed_mps=3.0, row_length_m=100.0, row_spacing_m=12.0, rows=rows, dt_s=0.01)
    out = {}
    r = run_ekf(traj, 0.02)
    m = r["t"] > 2.0
    out["rtk"] = dict(rmse_m=rmse(r["err"], m), raw_gnss_rmse_m=rmse(r["raw_err"]), dead_reckoning_rmse_m=rmse(
        r["dr_err"], m), target_m=0.03, cpu_us=r["cpu_us"], rejected=r["ekf"].stats.rejected["gnss"])
    r = run_ekf(traj, 1.5, seed=10)
    m = r["t"] > 10.0
    out["standard"] = dict(rmse_m=rmse(r["err"], m), raw_gnss_rmse_m=rmse(r["raw_err"]),
                           dead_reckoning_rmse_m=rmse(r["dr_err"], m), target_m=0.5, cpu_us=r["cpu_us"],
                           rejected=r["ekf"].stats.rejected["gnss"])
    t0, t1 = 25.0, 55.0                             # covers the end of a row and a headland turn
    r = run_ekf(traj, 0.02, outages=[(t0, t1)], seed=20)
    inside = (r["t"] >= t0) & (r["t"] < t1)
    i0, i1 = int(t0 / traj.dt_s), int(t1 / traj.dt_s)
    dist = traj.distance_m(i0, i1)
    # dead reckoning over the outage, started from the truth at the outage start (the best case for it)
    to, vo, wo, odom_pose = syn.odometry(traj, rate_hz=50.0, scale_error=0.01, seed=20)
    k0 = int(np.searchsorted(to, t0))
    k1 = int(np.searchsorted(to, t1)) - 1
    T = se2_compose(r["truth"][k0], se2_compose(se2_inverse(odom_pose[k0]), odom_pose[k1]))
    dr_drift = math.hypot(T[0] - r["truth"][k1, 0], T[1] - r["truth"][k1, 1])
    out["outage"] = dict(drift_end_m=float(r["err"][k1]), drift_max_m=float(r["err"][inside].max()),
                         distance_m=dist, drift_pct=100.0 * float(r["err"][inside].max()) / dist,
                         dead_reckoning_drift_pct=100.0 * dr_drift / dist, target_pct=1.0, cpu_us=r["cpu_us"])
    return out


def bench_pf(quick: bool):
    grid = load_map(ROOT / "config" / "maps" / "town.yaml")
    zones = load_zones(ROOT / "config" / "maps" / "town_zones.yaml")
    params = RoutePlannerParams()
    legs = [("depot", "home_4"), ("home_4", "nursery")] if quick else \
        [("depot", "home_4"), ("home_4", "nursery"), ("nursery", "clinic")]
    path = np.vstack([plan_route(grid, zones.places[a], zones.places[b], params, zones)[0] for a, b in legs])
    traj = syn.follow_path(path, 2.5, dt_s=0.02)
    to, vo, wo, odom_pose = syn.odometry(traj, rate_hz=50.0, scale_error=0.01, speed_std_mps=0.03,
                                         yaw_rate_std_radps=0.02, yaw_rate_bias_radps=0.003, seed=5)
    pf = ParticleFilter(grid, ParticleFilterParams(max_particles=3000, seed=7))
    T0 = traj.pose(0)
    init = T0 + [1.5, -1.32, math.radians(20.0)]      # 2.0 m and 20 deg off
    pf.initialize(init, np.diag([1.0, 1.0, 0.35 ** 2]))
    pf.motion_update(odom_pose[0])
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    scan_every = 5                                     # 10 Hz lidar with 50 Hz odometry
    ts, errs, yaw_errs, upd_ms, dr_errs = [], [], [], [], []
    for k in range(1, len(to)):
        pf.motion_update(odom_pose[k])
        if k % scan_every:
            continue
        i = int(round(to[k] / traj.dt_s))
        truth = traj.pose(i)
        ranges = syn.simulate_scan(grid, truth, angles, 30.0, 0.02, seed=k)
        c0 = time.perf_counter()
        pf.sensor_update(ranges, angles, force=True)
        upd_ms.append((time.perf_counter() - c0) * 1e3)
        est, _ = pf.estimate()
        ts.append(to[k])
        errs.append(math.hypot(est[0] - truth[0], est[1] - truth[1]))
        yaw_errs.append(abs(wrap_angle(est[2] - truth[2])))
        dr = se2_compose(init, se2_compose(se2_inverse(odom_pose[0]), odom_pose[k]))
        dr_errs.append(math.hypot(dr[0] - truth[0], dr[1] - truth[1]))
    ts, errs, yaw_errs = np.asarray(ts), np.asarray(errs), np.asarray(yaw_errs)
    bad = (errs > 0.2) | (yaw_errs > math.radians(3.0))
    conv_idx = int(np.nonzero(bad)[0][-1]) + 1 if bad.any() else 0
    t_conv = float(ts[conv_idx] - to[0]) if conv_idx < len(ts) else math.inf
    after = slice(conv_idx, None)
    return dict(rmse_m=rmse(errs[after]) if conv_idx < len(ts) else math.inf, target_m=0.10,
                yaw_rmse_deg=math.degrees(rmse(yaw_errs[after])) if conv_idx < len(ts) else math.inf,
                converge_s=t_conv, converge_target_s=5.0, distance_m=traj.distance_m(),
                dead_reckoning_rmse_m=rmse(dr_errs), update_ms_mean=float(np.mean(upd_ms)),
                update_ms_p95=float(np.percentile(upd_ms, 95)), particles_end=len(pf.particles),
                resamples=pf.resamples)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ekf = bench_ekf(args.quick)
    pf = bench_pf(args.quick)
    ok = {
        "rtk": ekf["rtk"]["rmse_m"] <= 0.03,
        "standard": ekf["standard"]["rmse_m"] <= 0.5,
        "outage": ekf["outage"]["drift_pct"] <= 1.0,
        "map_rmse": pf["rmse_m"] <= 0.10,
        "map_converge": pf["converge_s"] <= 5.0,
    }
    line = "-" * 104
    print(line)
    print(f"{'scenario':34s} {'target':>10s} {'filter':>10s} {'raw GNSS':>10s} {'dead reck.':>11s} "
          f"{'update':>12s}  pass")
    print(line)
    r = ekf["rtk"]
    print(f"{'RTK 2 cm, 3 m/s: RMSE':34s} {'<= 0.030 m':>10s} {r['rmse_m']:9.4f}m {r['raw_gnss_rmse_m']:9.4f}m "
          f"{r['dead_reckoning_rmse_m']:10.3f}m {r['cpu_us']:9.1f} us  {ok['rtk']}")
    r = ekf["standard"]
    print(f"{'standard 1.5 m @5 Hz + odom: RMSE':34s} {'<= 0.50 m':>10s} {r['rmse_m']:9.3f}m "
          f"{r['raw_gnss_rmse_m']:9.3f}m {r['dead_reckoning_rmse_m']:10.3f}m {r['cpu_us']:9.1f} us  "
          f"{ok['standard']}")
    r = ekf["outage"]
    print(f"{'30 s outage: max drift / distance':34s} {'<= 1 %':>10s} {r['drift_pct']:8.3f} % {'-':>10s} "
          f"{r['dead_reckoning_drift_pct']:9.3f} % {r['cpu_us']:9.1f} us  {ok['outage']}")
    print(f"{'':34s} (EKF drift max {r['drift_max_m']:.3f} m, at the end {r['drift_end_m']:.3f} m, "
          f"over {r['distance_m']:.1f} m)")
    print(f"{'map localiser (town): RMSE':34s} {'<= 0.10 m':>10s} {pf['rmse_m']:9.3f}m {'-':>10s} "
          f"{pf['dead_reckoning_rmse_m']:10.3f}m {pf['update_ms_mean']:9.1f} ms  {ok['map_rmse']}")
    print(f"{'map localiser: converged after':34s} {'<= 5 s':>10s} {pf['converge_s']:9.2f}s {'-':>10s} "
          f"{'-':>11s} {pf['update_ms_p95']:6.1f} ms p95  {ok['map_converge']}")
    print(line)
    print(f"(map localiser: {pf['distance_m']:.0f} m route, yaw RMSE {pf['yaw_rmse_deg']:.2f} deg, "
          f"{pf['particles_end']} particles at the end; EKF update = mean per measurement; "
          f"total bench time {time.perf_counter() - t0:.1f} s)")
    out = ROOT / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "localization_synthetic.json").write_text(json.dumps({"ekf": ekf, "map_localizer": pf, "pass": ok,
                                                       "quick": args.quick}, indent=2, default=float))
    print(f"summary: {'PASS' if all(ok.values()) else 'FAIL'} {ok} -> out/bench/localization_synthetic.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
