"""agricare chaos: run a scenario one process per node and inject faults; figures from ground truth."""

from __future__ import annotations

import json
import os
import pathlib

from agricare.cli import CliError

COMMAND = "chaos"
# exit code: 0 every fault survived (zero command within its bound, no contact, no boundary violation, no
# motion without a fresh goal), 1 otherwise; the run's own exit code (3: a node failed) is in summary.json
HELP = "fault injection: kill/freeze nodes, corrupt topics, lying sensors, clock, CPU, disk (see --help)"


def add_arguments(p):
    p.add_argument("scenario", help="scenario YAML (e.g. config/chaos/tractor_line.yaml)")
    p.add_argument("--fault", action="append", default=[], metavar="KIND[@t=S[,d=S]][:TARGET]",
                   help="a fault to inject (repeatable); kinds: kill freeze drop delay duplicate reorder nan "
                        "range gnss_jump scan_blind odom_frozen imu_stuck camera_black clock_stall clock_jump "
                        "clock_skew cpu_hog disk_full serial_unplug; serial_unplug, kill:base and freeze:base run "
                        "alone, on the base driver rig (base_driver_node on an emulated motor controller)")
    p.add_argument("--out", default=None, help="output directory (default out/chaos_<scenario>)")
    p.add_argument("--max-sim-s", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real-time-factor", type=float, default=1.0)
    p.add_argument("--plan-length-m", type=float, default=95.0, help="the operator's straight plan per robot")


def run(args) -> int:
    from agricare.bringup.chaos import ChaosError, format_table, run_chaos, survived
    from agricare.bringup.graph import GraphError

    if not args.fault:
        raise CliError("give at least one --fault")
    out = pathlib.Path(args.out) if args.out else pathlib.Path("out") / f"chaos_{pathlib.Path(args.scenario).stem}"
    try:
        result, hooks = run_chaos(args.scenario, args.fault, out, args.seed, args.max_sim_s,
                                  args.real_time_factor, plan_length_m=args.plan_length_m)
    except (ChaosError, GraphError) as exc:
        raise CliError(str(exc)) from exc
    summary = json.loads(result.summary_path.read_text()) if result.summary_path else {}
    rows = summary.get("chaos", {}).get("results", [])
    print(format_table(rows, f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores"))
    for f in summary.get("node_failures", []):
        if "cause" in f:
            print(f"node failure: {f['node']}: {f['cause']} at sim {f['sim_time_s']} s -> {f['action']}")
    ok = survived(result)
    print(f"agricare chaos: {result.stopped_because}; run exit code {result.exit_code}; "
          f"{'every fault survived' if ok else 'NOT every fault survived'}; summary: {result.summary_path}")
    return 0 if ok else 1
