"""Two runs of the same scenario in the embedded runner are the same run (DESIGN principle 6).

Each run is its own Python process (another ``PYTHONHASHSEED``, other memory addresses): the row robot's graph
of farm_small for 0.5 s simulated. Compared: the order and content of every callback the nodes run from the
first step on (subscriptions with a digest of the message, timers) and the true and estimated pose after every
step, bit for bit. Before the runner's ordered start-up (``EmbeddedRunner._start``) the first step's messages
reached the nodes in an order of memory addresses (rclpy's EventsExecutor registering subscriptions from a set
on its first spin), different in every process, and the row robot's run took one of a few start paths
(``bench/crop_row_sim.py``: 1.10 or 2.17 cm RMS from the same code), and the simulator's periodic
diagnostics came on the wall clock (now every simulated second, stamped with simulated time). Both of the
runner's executors: rclpy's EventsExecutor (the default) and its SingleThreadedExecutor
(``AGRICARE_EXECUTOR=single``, the nodes now taken in build order, not in the order of a set).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("agricare_interfaces.msg")

REPO = pathlib.Path(__file__).resolve().parents[1]

_RUN = r'''
import hashlib, json, os, pathlib, sys
import numpy as np
import yaml
from agricare.bringup.graph import load_graph
from agricare.bringup.runner import EmbeddedRunner
from agricare.ros.fastmsg import decode_diagnostic_array

repo, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cfg = yaml.safe_load((repo / "config" / "scenarios" / "farm_small.yaml").read_text())
cfg["robots"] = [r for r in cfg["robots"] if r["type"] == "row_robot"]
names = {r["name"] for r in cfg["robots"]}
cfg["nodes"] = [n for n in cfg["nodes"] if n.get("robot") in names]
for n in cfg["nodes"]:
    if n["node"] == "scouting_mission_node":
        n["params"]["output_dir"] = str(out / "records")
    if n["node"] == "growth_map_node":
        n["params"]["save_directory"] = str(out / "records" / "growth_map")
cfg.setdefault("run", {})["max_sim_s"] = float(sys.argv[3])
cfg["run"]["record"] = False
scenario = out / "scenario.yaml"
scenario.write_text(yaml.safe_dump(cfg, sort_keys=False))
runner = EmbeddedRunner(load_graph(scenario), out_dir=out / "run", progress=None, record=False,
                        domain_id=int(sys.argv[4]))
runner.build()
trace = []


def digest(m):
    """Message content (field values, arrays as bytes; serialized padding is not content)."""
    h = hashlib.md5()

    def walk(x):
        if hasattr(x, "get_fields_and_field_types"):
            for f in x.get_fields_and_field_types():
                walk(getattr(x, f))
        elif hasattr(x, "__slots__") and not isinstance(x, (str, bytes)):
            for f in x.__slots__:
                walk(getattr(x, f))
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, np.ndarray) or type(x).__name__ == "array":
            h.update(bytes(memoryview(x)))
        else:
            h.update(repr(x).encode())

    walk(m)
    return h.hexdigest()[:12]


def wrap_sub(name, sub):
    cb = sub.callback

    def f(m, cb=cb):
        if isinstance(m, (bytes, bytearray, memoryview)):
            from rclpy.serialization import deserialize_message
            if sub.topic_name == "/diagnostics":
                body = decode_diagnostic_array(bytes(m))
            else:
                body = deserialize_message(bytes(m), sub.msg_type)
        else:
            body = m
        trace.append(f"{runner.sim.world.t_s:.3f} {name} {sub.topic_name} {digest(body)}")
        return cb(m)

    sub.callback = f


def wrap_timer(name, i, tmr):
    import inspect
    cb = tmr.callback

    def f(cb=cb):
        trace.append(f"{runner.sim.world.t_s:.3f} {name} timer {i}")
        return cb()

    f.__signature__ = inspect.Signature()
    tmr.callback = f


for name, node in [*runner.nodes.items(), ("monitor", runner.monitor), ("sim", runner.sim)]:
    for sub in list(node.subscriptions):
        wrap_sub(name, sub)
    for i, tmr in enumerate(list(node.timers)):
        wrap_timer(name, i, tmr)


def hook(r):
    w = r.sim.world
    est = r.pose_errors.get("row_robot") or [None]
    trace.append(f"{w.t_s:.3f} STEP {w.pose('row_robot').tolist()!r} {est[-1]!r}")


runner.step_hook = hook
try:
    runner.run()
finally:
    runner.shutdown()
print(json.dumps(trace))
'''


def _run(tmp_path, tag, hash_seed, sim_s=0.5, executor="events"):
    out = tmp_path / tag
    out.mkdir()
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed), PYTHONPATH=str(REPO / "src") + os.pathsep +
               os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1", AGRICARE_EXECUTOR=executor)
    domain = str(150 + (os.getpid() + hash_seed) % 60)   # own DDS domain (the runner also turns discovery off)
    p = subprocess.run([sys.executable, "-c", _RUN, str(REPO), str(out), str(sim_s), domain], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("executor", ["events", "single"])
def test_two_runs_of_the_row_robot_graph_are_identical(tmp_path, executor):
    a = _run(tmp_path, "a", 1, executor=executor)
    b = _run(tmp_path, "b", 2, executor=executor)
    steps = [x for x in a if " STEP " in x]
    assert len(steps) >= 9, "the run made fewer than 9 steps"
    assert sum(" /row_robot/" in x for x in a) > 100, "too few callbacks traced"
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))
    shown = "\n".join(f"  {x}\n  {y}" for x, y in list(zip(a + [""], b + [""]))[first or 0:(first or 0) + 5])
    assert first is None, f"the runs part at entry {first} of {len(a)} / {len(b)}:\n{shown}"
