"""agricare run: run a scenario's node graph in the embedded simulator."""

from __future__ import annotations

import json
import pathlib

from agricare.cli import CliError

COMMAND = "run"
HELP = "run a scenario (config/scenarios/*.yaml) in the embedded simulator, record MCAP, write a report"


def add_arguments(p):
    p.add_argument("scenario", help="scenario YAML (path, or a name in config/scenarios/)")
    p.add_argument("--out", default=None, help="output directory (default out/<scenario name>)")
    p.add_argument("--until-done", action="store_true", help="stop when every mission is done or failed")
    p.add_argument("--max-sim-s", type=float, default=None, help="simulated seconds to run at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--multiprocess", action="store_true", help="one process per node (as ros2 launch)")
    p.add_argument("--real-time-factor", type=float, default=1.0, help="pace of --multiprocess (0 = max)")
    p.add_argument("--no-record", action="store_true", help="do not write recording.mcap")
    p.add_argument("--no-report", action="store_true", help="do not make PNG plots")
    p.add_argument("--foxglove", nargs="?", const=8765, type=int, default=None, metavar="PORT",
                   help="serve the live graph to Foxglove on ws://127.0.0.1:PORT (default 8765); the embedded "
                        "run is paced at --real-time-factor (default 1)")


#: what a run keeps across restarts of its nodes on one time base: audit logs, used codes, sequence stores
_RUN_STATE_DIRS = ("audit", "state")


def archive_previous_state(out_dir: pathlib.Path) -> pathlib.Path | None:
    """Move a previous simulated run's ``audit/`` and ``state/`` under ``out_dir`` to
    ``out_dir/previous/<UTC time>/`` and return that folder (None when there is nothing to move).

    Every simulated run starts its clock at 0, and the security stores (the latest time a shuttle has seen, used
    hand-over codes, command sequences) refuse a clock that goes back: left in place, a second run in the same
    folder would refuse every hand-over code. Moved, not deleted: the audit records of the earlier run are kept.
    """
    import datetime

    present = [d for d in _RUN_STATE_DIRS if (out_dir / d).exists()]
    if not present:
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    dest = out_dir / "previous" / stamp
    dest.mkdir(parents=True, exist_ok=False)
    for d in present:
        (out_dir / d).rename(dest / d)
    return dest


def run_scenario(scenario, out=None, until_done=False, max_sim_s=None, seed=0, multiprocess=False,
                 real_time_factor=1.0, record=True, report=True, progress=print, foxglove=None):
    from agricare.bringup.graph import GraphError, load_graph
    from agricare.core.sim.scenarios import ScenarioError, load_scenario

    try:
        graph = load_graph(scenario)
        load_scenario(graph.scenario_file)
    except (GraphError, ScenarioError) as exc:
        raise CliError(str(exc)) from exc
    out_dir = pathlib.Path(out) if out else pathlib.Path("out") / graph.name
    moved = archive_previous_state(out_dir)
    if moved is not None:
        progress(f"a previous run's audit logs and state stores are kept in {moved} (the simulated clock starts "
                 "again at 0: the stores' latest times and sequences belong to that run's time base)")
    if not record:
        graph.run.record = False
    from agricare.bringup.runner import EmbeddedRunner, run_multiprocess

    progress(f"agricare run: {graph.name} ({len(graph.nodes)} nodes, robots: {', '.join(graph.robots)}) "
             f"-> {out_dir}")
    if multiprocess:
        result = run_multiprocess(graph, out_dir, seed, max_sim_s, real_time_factor, progress, until_done)
    else:
        runner = EmbeddedRunner(graph, out_dir, seed, max_sim_s, until_done, progress, foxglove_port=foxglove,
                                real_time_factor=real_time_factor if foxglove is not None else 0.0,
                                in_process_clock=True)
        try:
            runner.build()
        except GraphError as exc:
            runner.shutdown()
            raise CliError(str(exc)) from exc
        try:
            result = runner.run()
        finally:
            runner.shutdown()
    if report and result.summary_path and (out_dir / "recording.mcap").exists():
        from agricare.bringup.report import make_report

        written = make_report(out_dir)
        progress("plots: " + ", ".join(pathlib.Path(p).name for p in written.values()))
    if report and result.summary_path:
        from agricare.bringup.report import write_report_md

        progress(f"report: {write_report_md(out_dir)}")
    progress(f"agricare run: {graph.name}: {result.stopped_because} at sim {result.sim_time_s:.1f} s "
             f"({result.wall_time_s:.1f} s wall), exit code {result.exit_code}")
    if result.summary_path:
        progress(f"summary: {result.summary_path}")
    return result


def run(args) -> int:
    if args.foxglove is not None and not (0 <= args.foxglove <= 65535):
        raise CliError(f"--foxglove: port must be in 0..65535, got {args.foxglove}")
    if args.foxglove is not None and args.multiprocess:
        raise CliError("--foxglove: the live view runs with the embedded runner (drop --multiprocess)")
    result = run_scenario(args.scenario, args.out, args.until_done, args.max_sim_s, args.seed, args.multiprocess,
                          args.real_time_factor, not args.no_record, not args.no_report, foxglove=args.foxglove)
    if result.violations:
        print("safety / boundary violations:\n" + json.dumps(result.violations[:10], indent=1, default=str))
    return result.exit_code
