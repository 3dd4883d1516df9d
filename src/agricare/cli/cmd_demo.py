"""agricare demo: the farm and care scenarios end to end in the embedded simulator."""

from __future__ import annotations

import json
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


def run(args) -> int:
    out = pathlib.Path(args.out)
    t0 = time.monotonic()
    results = {}
    code = 0
    for name, scenario in SCENARIOS:
        if args.only and args.only != name:
            continue
        print(f"\n=== agricare demo: {name} ===", flush=True)
        res = run_scenario(scenario, out / name, until_done=True, max_sim_s=args.max_sim_s, seed=args.seed,
                           progress=lambda s: print(s, flush=True))
        results[name] = res
        code = code or res.exit_code
    print(f"\n=== agricare demo finished in {time.monotonic() - t0:.0f} s ===")
    for name, res in results.items():
        d = out / name
        print(f"{name}: {res.stopped_because}, sim {res.sim_time_s:.0f} s, exit {res.exit_code}")
        if res.summary_path and res.summary_path.exists():
            s = json.loads(res.summary_path.read_text())
            for robot, st in (s.get("missions") or {}).items():
                detail = st.get("detail")
                figures = ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, (dict, list))) \
                    if isinstance(detail, dict) else str(detail)
                print(f"  {robot}: {st.get('state')} {figures}")
        for f in sorted(d.glob("*")):
            print(f"  {f}")
    return code
