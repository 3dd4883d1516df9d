"""Two runs of the same scenario in the embedded runner are the same run (DESIGN principle 6).

Each run is its own Python process (another ``PYTHONHASHSEED``, other memory addresses): the row robot's graph
of farm_small for 1.2 s simulated (past t = 1 s, where every node's 1 Hz report falls due with its loop).
Compared: the order and content of every callback the nodes run from the first step on (subscriptions with a
digest of the message, timers) and the true and estimated pose after every step, bit for bit.

Before the runner's ordered start-up (``EmbeddedRunner._start``) the first step's messages reached the nodes in
an order of memory addresses (rclpy's EventsExecutor registering subscriptions from a set on its first spin),
different in every process, and the row robot's run took one of a few start paths (``bench/crop_row_sim.py``:
1.10 or 2.17 cm RMS from the same code); the simulator's periodic diagnostics came on the wall clock (now every
simulated second, stamped with simulated time); a node's timers due at one instant ran in an order of addresses
(now creation order, ``ros/timer_order.py``). Both of the runner's executors: rclpy's EventsExecutor (the
default) and its SingleThreadedExecutor (``AGRICARE_EXECUTOR=single``, the nodes now taken in build order, not
in the order of a set).
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
from agricare.bringup.graph import load_graph
from agricare.bringup.runner import EmbeddedRunner
from agricare.ros.fastmsg import decode_diagnostic_array

repo, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
sys.path.insert(0, str(repo / "bench"))
from crop_row_sim import row_robot_scenario   # the row robot alone, as the row-following bench runs it
scenario = row_robot_scenario(out, float(sys.argv[3]))
runner = None
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


def wrap_timers(node):
    import inspect
    name = node.get_fully_qualified_name()
    for i, tmr in enumerate(list(node.timers)):
        cb = tmr.callback
        if getattr(cb, "_traced", False):
            continue

        def f(cb=cb, i=i):
            trace.append(f"{runner.sim.world.t_s:.3f} {name} timer {i}")
            return cb()

        f.__signature__ = inspect.Signature()
        f._traced = True
        tmr.callback = f


# timers are traced where their callbacks run: inside the runner's timer ordering where it has one
import agricare.bringup.runner as runner_module
real_order = getattr(runner_module, "order_timers", None)
if real_order is not None:
    def traced_order(node):
        wrap_timers(node)
        return real_order(node)

    runner_module.order_timers = traced_order
runner = EmbeddedRunner(load_graph(scenario), out_dir=out / "run", progress=None, record=False,
                        domain_id=int(sys.argv[4]))
runner.build()
for node in [*runner.nodes.values(), runner.monitor, runner.sim]:
    for sub in list(node.subscriptions):
        wrap_sub(node.get_fully_qualified_name(), sub)
    if real_order is None:   # a runner without timer ordering: traced in dispatch order
        wrap_timers(node)


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


def _run(tmp_path, tag, hash_seed, sim_s=1.2, executor="events"):
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
    assert len(steps) >= 23, "the run made fewer than 23 steps"
    assert sum(" /row_robot/" in x for x in a) > 300, "too few callbacks traced"
    # the instant where the nodes' 1 Hz reports fall due with their loops (ros/timer_order.py) is in
    assert sum(x.startswith(("1.000 ", "1.050 ")) and " timer " in x for x in a) >= 10, "too few timers at 1 s"
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))
    shown = "\n".join(f"  {x}\n  {y}" for x, y in list(zip(a + [""], b + [""]))[first or 0:(first or 0) + 5])
    assert first is None, f"the runs part at entry {first} of {len(a)} / {len(b)}:\n{shown}"


@pytest.mark.parametrize("executor", ["events", "single"])
def test_timers_due_together_run_once_each_in_creation_order(rclpy_context, executor):
    """``order_timers`` on rclpy's executors: six timers of one node on simulated time, all due at every tick,
    run in the order they were created, each exactly once per tick, also at a tick where one of them raises."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.experimental import EventsExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.time import Time

    from agricare.ros.timer_order import order_timers

    node = Node("timer_order_test", context=rclpy_context, parameter_overrides=[Parameter("use_sim_time", value=True)],
                start_parameter_services=False, enable_rosout=False)
    ran = []
    fail = {"tick": None}

    def cb(k):
        def f():
            ran.append((tick[0], k))
            if k == 2 and fail["tick"] == tick[0]:
                raise RuntimeError("timer 2 fails at this tick")
        return f

    tick = [0]
    timers = [node.create_timer(0.1, cb(k)) for k in range(6)]
    assert order_timers(node) == 6
    ex = (EventsExecutor if executor == "events" else SingleThreadedExecutor)(context=rclpy_context)
    ex.add_node(node)

    def spin():
        """What the runner's spin_some does: run what is queued (events: until a task queued last is done, three
        rounds; single: until nothing is ready)."""
        for _ in range(3 if executor == "events" else 30):
            try:
                if executor == "events":
                    fut = ex.create_task(lambda: None)
                    ex.spin_until_future_complete(fut, timeout_sec=1.0)
                else:
                    ex.spin_once(timeout_sec=0.0)
            except RuntimeError:
                pass   # timer 2's failure at tick 3 (the executor re-raises a callback's exception)

    try:
        spin()   # the executor takes the timers at time 0, before they are due (as the runner's start-up)
        for t in range(1, 5):
            tick[0] = t
            fail["tick"] = 3
            node.get_clock().set_ros_time_override(Time(nanoseconds=t * 100_000_000))
            spin()
        for t in range(1, 5):
            assert [k for tk, k in ran if tk == t] == list(range(6)), (t, ran)
    finally:
        ex.shutdown()
        for tmr in timers:
            node.destroy_timer(tmr)
        node.destroy_node()
