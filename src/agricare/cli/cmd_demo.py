"""agricare demo: the farm and care scenarios end to end in the embedded simulator, in parallel processes."""

from __future__ import annotations

import json
import multiprocessing
import pathlib
import time

from agricare.cli.cmd_run import run_scenario

COMMAND = "demo"
HELP = "run the farm scenario (tractor coverage + row robot) and the care scenario; write out/farm, out/care"

SCENARIOS = (("farm", "farm.yaml"), ("care", "care.yaml"))


def add_arguments(p):
    p.add_argument("--out", default="out", help="output directory (default out/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=[n for n, _ in SCENARIOS], default=None, help="run one scenario only")
    p.add_argument("--max-sim-s", type=float, default=None, help="cap on simulated time per scenario")
    p.add_argument("--sequential", action="store_true", help="one scenario after the other (default: in parallel)")


def _run_one(name, scenario, out, max_sim_s, seed):
    """One scenario in its own process (own rclpy context, no DDS discovery outside it)."""
    res = run_scenario(scenario, out, until_done=True, max_sim_s=max_sim_s, seed=seed,
                       progress=lambda s: print(f"[{name}] {s}", flush=True))
    return {"stopped_because": res.stopped_because, "sim_time_s": res.sim_time_s, "wall_time_s": res.wall_time_s,
            "exit_code": res.exit_code, "summary_path": str(res.summary_path) if res.summary_path else None}


def run(args) -> int:
    out = pathlib.Path(args.out)
    t0 = time.monotonic()
    jobs = [(n, s) for n, s in SCENARIOS if not args.only or args.only == n]
    print(f"=== agricare demo: {', '.join(n for n, _ in jobs)} "
          f"({'one after the other' if args.sequential or len(jobs) == 1 else 'in parallel processes'}) ===",
          flush=True)
    if args.sequential or len(jobs) == 1:
        results = {n: _run_one(n, s, out / n, args.max_sim_s, args.seed) for n, s in jobs}
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(len(jobs)) as pool:
            pending = {n: pool.apply_async(_run_one, (n, s, out / n, args.max_sim_s, args.seed)) for n, s in jobs}
            results = {n: p.get() for n, p in pending.items()}
    wall = time.monotonic() - t0
    print(f"\n=== agricare demo finished in {wall:.0f} s wall ===")
    code = 0
    figures = [f"# agricare demo figures ({wall:.0f} s wall for the demo)", ""]
    for name, res in results.items():
        code = code or res["exit_code"]
        print(f"{name}: {res['stopped_because']}, sim {res['sim_time_s']:.0f} s in {res['wall_time_s']:.0f} s wall, "
              f"exit {res['exit_code']}")
        if res["summary_path"] and pathlib.Path(res["summary_path"]).exists():
            from agricare.bringup.report import robot_rows

            s = json.loads(pathlib.Path(res["summary_path"]).read_text())
            for r in robot_rows(s):
                line = (f"  {r['robot']}: {r['mission']}; {r['figures']}; pose error RMSE {r['pose_rmse']}, max "
                        f"{r['pose_max']} (GNSS degraded: {r['pose_urban']}); contacts while moving "
                        f"{r['contacts_moving']}, boundary violations {r['boundary_violations']}")
                print(line)
                figures.append(f"- {name}/{line.strip()}")
        print(f"  report: {out / name / 'report.md'}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.md").write_text("\n".join(figures) + "\n")
    return code
