"""Path tracking benchmark: closed-loop accuracy per scenario and per-cycle compute time.

Accuracy: straight (start 0.5 m off the line), circle, S-curve, Dubins-like U-turn and a reversing cusp,
for regulated pure pursuit and Stanley on a diff-drive robot and an Ackermann tractor, kinematic models
in closed loop at 20 Hz. Printed: cross-track RMS / max (base_link, while tracking), goal position and
yaw error, time to goal.

Compute time: pure pursuit and Stanley on a 5 000-point coverage-like path (lanes joined by U-turns),
per control cycle, with the moving-window nearest-point search against the naive full-path search
(the in-process reference). Target: < 1 ms per cycle for pure pursuit.

Run: ``PYTHONPATH=src .venv/bin/python bench/control.py``; writes ``out/bench/control.json``.
"""

from __future__ import annotations

import json
import math
import pathlib
import platform
import time

import numpy as np

from agricare.core.control.kinematics import Ackermann, AckermannParams, DiffDrive, arc_step
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit
from agricare.core.control.stanley import Stanley
from agricare.core.control.tracking_scenarios import build_path, run_closed_loop, scenario_paths

OUT = pathlib.Path(__file__).resolve().parents[1] / "out" / "bench" / "control.json"
DT_S = 0.05

VEHICLES = {
    "diff": (DiffDrive(), TrackerParams(wheelbase_m=0.5), 3.0),
    "ackermann": (Ackermann(AckermannParams(wheelbase_m=2.5, max_steering_angle_rad=0.6)),
                  TrackerParams(wheelbase_m=2.5, max_steering_angle_rad=0.6, desired_speed_mps=2.0,
                                regulated_min_radius_m=4.0, min_lookahead_m=2.0, max_lookahead_m=5.0), 6.0),
}
ALGORITHMS = {"pure_pursuit": RegulatedPurePursuit, "stanley": Stanley}


def accuracy_table() -> list[dict]:
    rows = []
    for vname, (vehicle, params, radius) in VEHICLES.items():
        for scenario, (poses, dirs, start) in scenario_paths(radius).items():
            for aname, cls in ALGORITHMS.items():
                res = run_closed_loop(cls(params, vehicle), vehicle, poses, dirs, start, dt_s=DT_S)
                rows.append(dict(vehicle=vname, scenario=scenario, algorithm=aname, done=res.done,
                                 time_s=round(res.time_s, 2), cross_track_rms_m=res.cross_track_rms_m,
                                 cross_track_max_m=res.cross_track_max_m, goal_error_m=res.goal_error_m,
                                 goal_yaw_error_rad=res.goal_yaw_error_rad,
                                 compute_mean_us=res.compute_time_mean_s * 1e6))
    return rows


def coverage_path(n_points: int = 5000, lane_m: float = 60.0, spacing_m: float = 3.0, step_m: float = 0.1):
    """Lanes joined by half-circle turns, cut to ``n_points`` poses."""
    prims = []
    total, k = 0.0, 0
    need = n_points * step_m
    while total < need:
        prims.append((lane_m, 0.0, 1))
        turn = 1.0 / (0.5 * spacing_m) * (1 if k % 2 == 0 else -1)
        prims.append((math.pi * 0.5 * spacing_m, turn, 1))
        total += lane_m + math.pi * 0.5 * spacing_m
        k += 1
    poses, dirs = build_path(prims, step_m=step_m)
    return poses[:n_points], dirs[:n_points]


def timing(cls, naive: bool, poses, dirs, cycles: int) -> dict:
    vehicle, params, _ = VEHICLES["diff"]
    tracker = cls(params, vehicle, naive_search=naive)
    tracker.set_plan(poses, dirs)
    pose, v = poses[0].copy(), 0.0
    times = np.empty(cycles)
    cpu = np.empty(cycles)
    ctes = np.empty(cycles)
    for k in range(cycles):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter()
        out = tracker.compute(pose, v, k * DT_S)
        times[k] = time.perf_counter() - t0
        cpu[k] = (time.thread_time_ns() - c0) * 1e-9
        ctes[k] = out.cross_track_m
        vv, w = vehicle.limit(out.v_mps, out.w_radps)
        pose = np.array(arc_step(pose[0], pose[1], pose[2], vv * DT_S, w * DT_S))
        v = vv
    us = times * 1e6
    cpu_us = cpu * 1e6
    return dict(mean_us=float(us.mean()), p50_us=float(np.percentile(us, 50)),
                p99_us=float(np.percentile(us, 99)), max_us=float(us.max()),
                cpu_mean_us=float(cpu_us.mean()), cpu_p99_us=float(np.percentile(cpu_us, 99)),
                progress=float(out.progress), cross_track_rms_m=float(np.sqrt(np.mean(ctes ** 2))))


def main() -> int:
    t_start = time.perf_counter()
    rows = accuracy_table()
    print("Closed-loop tracking (20 Hz, kinematic models; cross-track of base_link while tracking)")
    hdr = (f"{'vehicle':9s} {'scenario':15s} {'algorithm':13s} {'done':>4s} {'t_s':>6s} {'cte_rms_m':>9s} "
           f"{'cte_max_m':>9s} {'goal_m':>7s} {'yaw_rad':>7s} {'cpu_us':>7s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['vehicle']:9s} {r['scenario']:15s} {r['algorithm']:13s} {str(r['done'])[0]:>4s} "
              f"{r['time_s']:6.1f} {r['cross_track_rms_m']:9.3f} {r['cross_track_max_m']:9.3f} "
              f"{r['goal_error_m']:7.3f} {r['goal_yaw_error_rad']:7.3f} {r['compute_mean_us']:7.0f}")

    poses, dirs = coverage_path(5000)
    cycles = 3000
    timings = {}
    for aname, cls in ALGORITHMS.items():
        for label, naive in (("window", False), ("naive_full_path", True)):
            timings[f"{aname}/{label}"] = timing(cls, naive, poses, dirs, cycles)
    print(f"\nPer-cycle compute time, {len(poses)}-point coverage path, {cycles} closed-loop cycles (diff drive)")
    print("wall = perf_counter (includes preemption by other processes), cpu = this thread's CPU time")
    hdr = (f"{'tracker/search':30s} {'wall_mean':>9s} {'wall_p50':>9s} {'wall_p99':>9s} {'wall_max':>9s} "
           f"{'cpu_mean':>9s} {'cpu_p99':>9s} {'cte_rms_m':>9s}")
    print(hdr + "   (us)")
    print("-" * len(hdr))
    for key, t in timings.items():
        print(f"{key:30s} {t['mean_us']:9.0f} {t['p50_us']:9.0f} {t['p99_us']:9.0f} {t['max_us']:9.0f} "
              f"{t['cpu_mean_us']:9.0f} {t['cpu_p99_us']:9.0f} {t['cross_track_rms_m']:9.3f}")
    pp = timings["pure_pursuit/window"]
    ref = timings["pure_pursuit/naive_full_path"]
    target_ok = pp["cpu_p99_us"] < 1000.0
    print(f"\npure pursuit, window search: cpu p99 {pp['cpu_p99_us']:.0f} us, wall p50 {pp['p50_us']:.0f} us; "
          f"naive full-path reference: cpu p99 {ref['cpu_p99_us']:.0f} us, wall p50 {ref['p50_us']:.0f} us "
          f"(x{ref['cpu_mean_us'] / pp['cpu_mean_us']:.1f} cpu mean). Target < 1000 us per cycle (cpu p99): "
          f"{'MET' if target_ok else 'NOT MET'}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(dict(
        machine=platform.platform(), python=platform.python_version(), dt_s=DT_S, accuracy=rows,
        compute_time=dict(path_points=len(poses), cycles=cycles, results=timings, target_us=1000.0,
                          target_met=target_ok),
        wall_time_s=time.perf_counter() - t_start), indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
