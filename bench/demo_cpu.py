"""CPU and wall time of each ``make demo`` scenario, this tree beside a reference commit, with the figures.

Each scenario runs as ``agricare demo --only <name>`` in its own child process (as ``make demo`` runs it),
once from a reference commit (``git archive`` into a temporary directory) and
once from this working tree, the two at the same time so they share the machine's load. Per run it prints
the child's CPU seconds (user + system, from ``resource.getrusage``), the wall seconds, the simulated
seconds and the figures of ``summary.json`` (coverage, cross-track, trips, pose error, contacts), so a
speed-up that changed a result shows in the same table. The load average is printed before and after:
on a shared machine the wall time is noisy, the CPU time much less so.

Usage: ``PYTHONPATH=src python bench/demo_cpu.py [--ref main] [--only care|farm] [--max-sim-s S]
[--scenario-file FILE] [--ref-scenario-file FILE]``; ``--scenario-file`` runs that file in place of the ``--only``
scenario's (e.g. a copy of farm.yaml with other settings), both trees reading the same file unless
``--ref-scenario-file`` gives the reference its own (e.g. main's farm.yaml beside a copy with settings main's code
does not know).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIOS = ("farm", "care")

_CHILD = r"""
import json, resource, sys, time
from agricare.cli.cmd_demo import SCENARIOS, _run_one
name, out, max_sim = sys.argv[1], sys.argv[2], (float(sys.argv[3]) if sys.argv[3] != "-" else None)
scenario = sys.argv[4] if len(sys.argv) > 4 else dict(SCENARIOS)[name]
t0 = time.monotonic()
res = _run_one(name, scenario, out, max_sim, 0)
ru = resource.getrusage(resource.RUSAGE_SELF)
res.update(cpu_s=ru.ru_utime + ru.ru_stime, total_wall_s=time.monotonic() - t0)
print("BENCH " + json.dumps(res))
"""


def _export(rev: str, dest: pathlib.Path) -> pathlib.Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _start(tree: pathlib.Path, name: str, out: pathlib.Path, max_sim_s, scenario_file=None):
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONDONTWRITEBYTECODE="1")
    cap = "-" if max_sim_s is None else str(max_sim_s)
    extra = [str(pathlib.Path(scenario_file).resolve())] if scenario_file else []
    return subprocess.Popen([sys.executable, "-c", _CHILD, name, str(out), cap, *extra], cwd=str(tree), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _finish(proc) -> dict:
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    return {"error": f"exit {proc.returncode}"}


def _figures(summary_path) -> dict:
    if not summary_path or not pathlib.Path(summary_path).exists():
        return {}
    from agricare.bringup.report import robot_rows

    s = json.loads(pathlib.Path(summary_path).read_text())
    return {r["robot"]: f"{r['figures']}; pose {r['pose_rmse']} / {r['pose_max']} (degraded GNSS {r['pose_urban']});"
                        f" contacts {r['contacts_moving']}, violations {r['boundary_violations']}"
            for r in robot_rows(s)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="reference commit (default main)")
    ap.add_argument("--only", choices=SCENARIOS, default=None)
    ap.add_argument("--max-sim-s", type=float, default=None)
    ap.add_argument("--scenario-file", default=None, help="scenario file run in place of --only's (needs --only)")
    ap.add_argument("--ref-scenario-file", default=None,
                    help="scenario file the reference runs (default: --scenario-file's, else --only's own)")
    args = ap.parse_args(argv)
    if args.scenario_file and not args.only:
        ap.error("--scenario-file needs --only")
    names = [args.only] if args.only else list(SCENARIOS)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    results = []
    with tempfile.TemporaryDirectory(prefix="agricare_bench_demo_") as tmp:
        tmp = pathlib.Path(tmp)
        ref_tree = _export(args.ref, tmp / "ref")
        for name in names:
            procs = {"reference " + args.ref: _start(ref_tree, name, tmp / "out_ref" / name, args.max_sim_s,
                                                     args.ref_scenario_file or args.scenario_file),
                     "this tree": _start(ROOT, name, tmp / "out_new" / name, args.max_sim_s, args.scenario_file)}
            runs = {label: _finish(p) for label, p in procs.items()}
            print(f"\n{name}{' (' + args.scenario_file + ')' if args.scenario_file else ''}"
                  f"{'; reference: ' + args.ref_scenario_file if args.ref_scenario_file else ''}:")
            print(f"  {'run':22s} {'CPU s':>7s} {'wall s':>7s} {'sim s':>6s} {'exit':>4s}")
            for label, r in runs.items():
                if "error" in r:
                    print(f"  {label:22s} {r['error']}")
                    continue
                print(f"  {label:22s} {r['cpu_s']:7.1f} {r['total_wall_s']:7.1f} {r['sim_time_s']:6.1f} "
                      f"{r['exit_code']:4d}")
            for label, r in runs.items():
                for robot, fig in _figures(r.get("summary_path")).items():
                    print(f"  {label:22s} {robot}: {fig}")
            for r in runs.values():   # the whole summary kept beside the figures: diff them to compare runs
                sp = r.get("summary_path")
                if sp and pathlib.Path(sp).exists():
                    r["summary"] = json.loads(pathlib.Path(sp).read_text())
            results.append({"scenario": name, "scenario_file": args.scenario_file, "runs": runs})
    print(f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    dest = ROOT / "out" / "bench"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "demo_cpu.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
