"""Where the time of a scenario graph goes: real-time factor per scenario and callback time per node.

Runs each scenario's whole graph in the embedded runner (as ``agricare run`` / ``make demo``, recording on) for
``--max-sim-s`` simulated seconds, with every node's subscription, timer and service callbacks wrapped by a
timer (``time.perf_counter``; ``--cpu``: ``time.thread_time``, the calling thread's CPU seconds, which a loaded
machine does not inflate), and prints per scenario: simulated / wall seconds, the real-time factor, and per
node the callback seconds and their share of the wall time; "simulator step" is the simulator's own world
step (sensors, ray casting, camera rendering) and "executor + DDS" the rest (message passing, serialisation,
recording). The reference in the same process is the same run without the timing wrappers (``--reference``),
so the wrappers' own cost is visible.

Usage: ``PYTHONPATH=src python bench/graph.py [farm.yaml care.yaml] [--max-sim-s 120] [--reference] [--cpu]``; writes
``out/bench/graph.json``. The machine's load matters: report it with the figures (``uptime``).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

_TIMES: dict[str, float] = collections.defaultdict(float)
_CLOCK = [time.perf_counter]   # what the wrappers read (--cpu: time.thread_time)
_DEPTH = [0]                   # nesting of timed callbacks: only the outermost is counted
_CALLS: dict[str, int] = collections.defaultdict(int)


def _wrap(node, cb):
    key = node.get_fully_qualified_name()

    @functools.wraps(cb)   # rclpy reads the callback's signature (timer info, message info) through __wrapped__
    def timed(*args, **kwargs):
        if _DEPTH[0]:   # inside another timed callback (a fast subscription's decoder calls the node's): counted there
            return cb(*args, **kwargs)
        clock = _CLOCK[0]
        _DEPTH[0] += 1
        t0 = clock()
        try:
            return cb(*args, **kwargs)
        finally:
            _TIMES[key] += clock() - t0
            _CALLS[key] += 1
            _DEPTH[0] -= 1
    return timed


def install_timers():
    """Wrap the callbacks of every subscription, timer and service created from now on."""
    from rclpy.node import Node

    orig_sub, orig_timer, orig_srv = Node.create_subscription, Node.create_timer, Node.create_service

    def create_subscription(self, msg_type, topic, callback, *a, **k):
        return orig_sub(self, msg_type, topic, _wrap(self, callback), *a, **k)

    def create_timer(self, period, callback, *a, **k):
        return orig_timer(self, period, _wrap(self, callback), *a, **k)

    def create_service(self, srv_type, name, callback, *a, **k):
        return orig_srv(self, srv_type, name, _wrap(self, callback), *a, **k)

    Node.create_subscription, Node.create_timer, Node.create_service = create_subscription, create_timer, \
        create_service
    return lambda: setattr(Node, "create_subscription", orig_sub) or setattr(Node, "create_timer", orig_timer) \
        or setattr(Node, "create_service", orig_srv)


def run_one(scenario: str, max_sim_s: float, timed: bool) -> dict:
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import EmbeddedRunner

    _TIMES.clear()
    _CALLS.clear()
    undo = install_timers() if timed else None
    graph = load_graph(ROOT / "config" / "scenarios" / scenario)
    with tempfile.TemporaryDirectory(prefix="agricare_bench_graph_") as tmp:
        runner = EmbeddedRunner(graph, out_dir=tmp, max_sim_s=max_sim_s, until_done=True, progress=None,
                                in_process_clock=True)
        try:
            runner.build()
            step = runner.sim.step_once
            sim_key = "simulator step (world, sensors, camera)"

            def step_timed():
                t0 = _CLOCK[0]()
                try:
                    return step()
                finally:
                    _TIMES[sim_key] += _CLOCK[0]() - t0
                    _CALLS[sim_key] += 1
            runner.sim.step_once = step_timed
            cpu0 = time.process_time()
            result = runner.run()
            cpu = time.process_time() - cpu0
        finally:
            runner.shutdown()
            if undo:
                undo()
    wall = result.wall_time_s
    nodes = dict(sorted(_TIMES.items(), key=lambda kv: -kv[1]))
    return {"scenario": scenario, "timed": timed, "sim_s": round(result.sim_time_s, 1), "wall_s": round(wall, 2),
            "real_time_factor": round(result.sim_time_s / wall, 2) if wall > 0 else None,
            "stopped_because": result.stopped_because, "cpu_s": round(cpu, 2),
            "callback_s": {k: round(v, 3) for k, v in nodes.items()},
            "calls": {k: _CALLS[k] for k in nodes}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=["farm.yaml", "care.yaml"])
    ap.add_argument("--max-sim-s", type=float, default=120.0)
    ap.add_argument("--reference", action="store_true", help="also run each scenario without the wrappers")
    ap.add_argument("--cpu", action="store_true", help="time callbacks in thread CPU seconds (time.thread_time), "
                                                       "not wall seconds; the rest is then the run's own CPU time "
                                                       "outside the callbacks")
    args = ap.parse_args(argv)
    if args.cpu:
        _CLOCK[0] = time.thread_time
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} on "
          f"{os.cpu_count()} CPUs")
    out = []
    for sc in args.scenarios:
        runs = [run_one(sc, args.max_sim_s, True)] + ([run_one(sc, args.max_sim_s, False)] if args.reference else [])
        out += runs
        r = runs[0]
        print(f"\n{sc}: {r['sim_s']} s simulated in {r['wall_s']} s wall: {r['real_time_factor']}x real time "
              f"({r['stopped_because']})" + (f"; without timing wrappers {runs[1]['real_time_factor']}x"
                                              if len(runs) > 1 else ""))
        total = sum(r["callback_s"].values())
        share = "of cpu" if args.cpu else "of wall"
        print(f"  {'where':58s} {'seconds':>8s} {share:>8s} {'calls':>8s} {'us/call':>8s}")
        for k, v in r["callback_s"].items():
            if v < 0.005 * (r["cpu_s"] if args.cpu else r["wall_s"]):
                continue
            n = r["calls"][k]
            print(f"  {k:58s} {v:8.2f} {100 * v / (r['cpu_s'] if args.cpu else r['wall_s']):7.1f}% {n:8d} "
                  f"{1e6 * v / max(n, 1):8.0f}")
        base = r["cpu_s"] if args.cpu else r["wall_s"]
        rest = base - total
        print(f"  {'executor + DDS + recording (the rest)':58s} {rest:8.2f} {100 * rest / base:7.1f}%")
        print(f"  process CPU {r['cpu_s']:.2f} s (all threads) in {r['wall_s']:.2f} s wall"
              + ("; seconds above are thread CPU, shares of the process CPU" if args.cpu else ""))
    dest = ROOT / "out" / "bench"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "graph.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
