"""Real-time factor of the embedded simulator core (one core, no ROS).

Cases: the farm tractor alone without camera (target >= 50x), the row robot with its camera at 15 Hz
(target >= 10x), and the whole farm / care scenarios for reference. Each robot gets a smooth velocity
command every step (as a controller would), the tractor's sections are on, and every reading that is due
is produced (``World.sensors_due()``), exactly what sim_node publishes.

Run: ``PYTHONPATH=src .venv/bin/python bench/sim.py [--sim-s 60]``; writes ``out/bench/sim.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pathlib
import time

import cv2

from agricare.core.sim.scenarios import load_scenario, parse_scenario
from agricare.core.sim.world import World

ROOT = pathlib.Path(__file__).resolve().parents[1]


def only_robots(path, names):
    spec = load_scenario(path)
    cfg = copy.deepcopy(spec.raw)
    cfg["robots"] = [r for r in cfg["robots"] if r["name"] in names]
    return parse_scenario(cfg)


def run(spec, sim_s: float, dt_s: float) -> dict:
    world = World.from_scenario(spec, seed=1)
    if any(r.camera is not None for r in world.robots.values()):
        world.textures()  # paint once before timing (a start-up cost, reported apart)
    steps = int(round(sim_s / dt_s))
    counts = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(steps):
        t = i * dt_s
        for name, r in world.robots.items():
            if r.type == "tractor":
                world.set_command(name, 2.5, 0.08 * math.sin(0.05 * t))
                world.set_sections(name, [1] * len(r.sections))  # as a section controller would, every step
            elif r.type == "row_robot":
                world.set_command(name, 0.5, 0.02 * math.sin(0.3 * t))
            else:
                world.set_command(name, 2.0, 0.05 * math.sin(0.1 * t))
        world.step(dt_s)
        for s in world.sensors_due():
            counts[s.kind] = counts.get(s.kind, 0) + 1
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"sim_s": sim_s, "dt_s": dt_s, "wall_s": wall, "cpu_s": cpu, "real_time_factor": sim_s / wall,
            "real_time_factor_cpu": sim_s / cpu, "us_per_step": wall / steps * 1e6, "readings": counts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-s", type=float, default=60.0, help="simulated seconds per case")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    farm = ROOT / "config/scenarios/farm.yaml"
    small = ROOT / "config/scenarios/farm_small.yaml"
    care = ROOT / "config/scenarios/care.yaml"
    cases = [
        ("tractor, farm.yaml, no camera", only_robots(farm, {"tractor"}), 0.02, 50.0),
        ("tractor, farm.yaml, no camera, dt 0.01", only_robots(farm, {"tractor"}), 0.01, None),
        ("row robot + camera 15 Hz, farm.yaml", only_robots(farm, {"row_robot"}), 0.02, 10.0),
        ("row robot + camera 15 Hz, farm_small.yaml", only_robots(small, {"row_robot"}), 0.02, 10.0),
        ("whole farm.yaml (tractor + row robot)", load_scenario(farm), 0.02, None),
        ("whole care.yaml (2 shuttles, 7 people)", load_scenario(care), 0.02, None),
    ]
    results = []
    print(f"load average before: {os.getloadavg()[0]:.2f} (the machine is shared; RTF(cpu) uses process CPU time)")
    print(f"{'case':45s} {'dt':>6s} {'RTF':>7s} {'RTF(cpu)':>9s} {'target':>7s} {'us/step':>8s}  ok")
    for label, spec, dt, target in cases:
        r = run(spec, args.sim_s, dt)
        ok = None if target is None else r["real_time_factor"] >= target
        r.update(case=label, target_rtf=target, meets_target=ok)
        results.append(r)
        print(f"{label:45s} {dt:6.3f} {r['real_time_factor']:7.1f} {r['real_time_factor_cpu']:9.1f} "
              f"{target or '-':>7} {r['us_per_step']:8.0f}  "
              f"{'' if target is None else ('yes' if r['meets_target'] else 'NO')}")
    out = ROOT / "out/bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim.json").write_text(json.dumps({"benchmark": "sim", "load_average": os.getloadavg()[0],
                                              "cases": results}, indent=2))
    tr, cam = results[0]["real_time_factor"], results[2]["real_time_factor"]
    print(f"sim: tractor {tr:.0f}x real time (target 50x), row robot + camera {cam:.0f}x (target 10x) "
          f"-> {out / 'sim.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
