"""Fault-free multi-process runs under CPU load: does the run stay clean, and when a decision reaches the wheels late,
whose lateness is it?

    python bench/chaos_load.py [--load 0 10] [--runs 1] [--sim-s 16] [--out out/bench_chaos_load]

For each load level (N busy Python loops at nice 0, beside whatever else runs on the machine) two fault-free runs,
one with the simulator catching up after a stall (stepping back to back: the reference, the old pacing) and one with
today's pacing (simulated time never faster than real time), each of ``config/chaos/tractor_line.yaml`` (one process
per node, the chaos tool's straight plan): its exit code and what it named, the decisions the wheels refused as too
old, the safety loop's gaps (its own clock), and for every command the simulator received, its age on the
simulator's clock (what the wheels judge) beside its age in wall time (how long the decision really took to arrive,
from the wall time at which the simulator published the sim time stamped on it). A decision old in simulated time
but young in wall time is one the simulator outran (it stepped faster than real time to catch up); old in both, the
node graph was late. The simulator's own pacing: steps made faster than real time (catch-up) and the wall time it
dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SCENARIO = ROOT / "config" / "chaos" / "tractor_line.yaml"


def _hogs(n: int):
    code = "while True:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def one_run(out: pathlib.Path, sim_s: float, catch_up: bool) -> dict:
    import bisect

    from agricare.bringup import chaos

    steps: list[tuple[float, float]] = []   # (sim s, wall s) of every step

    class Hooks(chaos.ChaosHooks):
        def step(self, runner, sup):
            steps.append((runner.sim_time(), time.monotonic()))
            super().step(runner, sup)

    real = chaos.ChaosHooks
    chaos.ChaosHooks = Hooks
    try:
        result, hooks = chaos.run_chaos(SCENARIO, [], out, max_sim_s=sim_s, progress=lambda *_: None,
                                        catch_up=catch_up)
    finally:
        chaos.ChaosHooks = real
    summary = json.loads(result.summary_path.read_text())
    sims = [s for s, _ in steps]
    rows = []
    for rx in hooks.cmd_rx.values():
        for wall, sim, v, stamp in rx:
            if stamp <= 0 or not sims or stamp < sims[0]:
                continue
            i = min(bisect.bisect_left(sims, stamp - 1e-9), len(steps) - 1)
            rows.append((sim - stamp, wall - steps[i][1], v))
    late = [r for r in rows if r[0] > 0.25 and abs(r[2]) > 1e-6]
    outrun = [r for r in late if r[1] <= 0.25]
    fast = sum(1 for a, b in zip(steps, steps[1:]) if (b[1] - a[1]) < 0.5 * (b[0] - a[0]))
    wall = steps[-1][1] - steps[0][1] if len(steps) > 1 else 0.0
    return {"exit": summary["exit_code"], "named": summary["stopped_because"].split("; faults injected")[0],
            "refused": summary.get("stale_decisions_refused") or {}, "loop": summary["chaos"]["safety_loop"],
            "sim_pacing": summary.get("sim_pacing"),
            "commands": len(rows), "late_nonzero_sim": len(late), "late_outrun_by_sim": len(outrun),
            "max_age_sim_ms": round(max((r[0] for r in rows), default=0) * 1e3),
            "max_age_wall_ms": round(max((r[1] for r in rows), default=0) * 1e3),
            "steps_faster_than_half_real_time": fast,
            "sim_rtf": round((steps[-1][0] - steps[0][0]) / wall, 2) if wall > 0 else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", nargs="+", type=int, default=[0, 10], help="busy loops per level")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--sim-s", type=float, default=16.0)
    ap.add_argument("--out", default=str(ROOT / "out" / "bench_chaos_load"))
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    for n in args.load:
        for k in range(args.runs):
            for catch_up in (True, False):   # the old pacing (reference) and today's, at the same load
                hogs = _hogs(n)
                try:
                    time.sleep(2.0 if n else 0.0)
                    r = one_run(out / f"load{n}_{k}_{'catchup' if catch_up else 'paced'}", args.sim_s, catch_up)
                finally:
                    for p in hogs:
                        p.kill()
                        p.wait()
                r = {"pacing": "catch up (reference)" if catch_up else "no faster than real time",
                     "busy_loops": n, "loadavg_1min": round(os.getloadavg()[0], 1), **r}
                print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
