"""Process supervision for ``agricare run --multiprocess`` (and ``agricare chaos``): one process per node.

Policy (the same one the launch files carry, :mod:`agricare.bringup.launch_description`):

- every node process is watched: an exit (code or signal) or silence on ``/agricare/alive`` for longer
  than ``alive_timeout_s`` of wall time (frozen process, stuck executor) is a node failure, reported on the
  console and in ``summary.json`` (``node_failures``), and the run's exit code is :data:`EXIT_NODE_FAILED`;
- a node marked restartable (:data:`RESTARTABLE`: device drivers and perception, which hold no motion
  state) is restarted with exponential backoff (``restart_backoff_s`` doubling up to
  ``max_restarts``); a restart never commands motion by itself: the controller keeps its plan, the
  safety supervisor latches its stop until a reset, and a mission starts only on a fresh goal;
- any other node failing shuts the robot's graph down: the simulator keeps running for ``fault_grace_s``
  of simulated time so the parts still alive (the safety supervisor's watchdogs, the base's own command
  timeout) bring the robot to a stop, which the ground truth measures; then every process gets SIGINT and
  the runner keeps stepping the simulator and the recorder until they have all exited, so every robot's
  last command (zero) is recorded.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

from agricare.bringup.graph import NodeSpec

EXIT_NODE_FAILED = 3
EXIT_SAFETY_FAULT = 4    # no node failed, but the robot's safety caught a fault (a latched safety fault, the
                         # command stream lost while driving, stale decisions refused at the wheels)
# drivers and perception: restarting them cannot start motion (they hold no goal, no plan)
# the nodes between the decision and the wheels: they keep the scheduler's normal priority, every other node
# process is started ``background_nice`` steps nicer (no root needed: a process may always lower its own
# priority), so a busy planner, perception or localiser cannot starve the safety loop of its CPU
SAFETY_CRITICAL = frozenset({"safety_supervisor_node", "safe_base_node", "base_driver_node"})
RESTARTABLE = frozenset({"base_driver_node", "gnss_node", "obstacle_tracker_node", "crop_row_node",
                         "marker_node", "growth_map_node", "robot_description_node"})


def is_restartable(spec: NodeSpec) -> bool:
    return spec.node in RESTARTABLE


@dataclasses.dataclass
class SupervisionParams:
    alive_period_s: float = 0.25       # node liveness period (AGRICARE_ALIVE_PERIOD_S)
    alive_timeout_s: float = 4.0       # wall seconds of silence = not answering (a loaded machine lags)
    startup_timeout_s: float = 120.0   # wall seconds for a process's first sign of life
    # while the graph starts (some process has not said it is alive yet, and ``startup_settle_s`` after the last
    # one did) silence counts only after ``startup_alive_timeout_s``: twenty Python processes importing rclpy and
    # numpy at once starve those already up for seconds (4-5 s seen at load 9), and no simulated time passes
    # before every node is up, so nothing moves that a node could fail to stop
    startup_alive_timeout_s: float = 15.0
    startup_settle_s: float = 3.0
    restart_backoff_s: float = 1.0     # first restart delay, doubled each time
    max_restarts: int = 3
    fault_grace_s: float = 6.0         # simulated seconds the robot gets to stop after a fatal failure
    stop_timeout_s: float = 15.0       # wall seconds for processes to exit after SIGINT
    background_nice: int = 5           # niceness added to every node process but the safety-critical ones

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not (v >= 0) or (f.name == "background_nice" and v > 19):
                raise ValueError(f"{f.name}: must be >= 0, got {v!r}")
        if self.alive_timeout_s <= self.alive_period_s:
            raise ValueError("alive_timeout_s must exceed alive_period_s")
        if self.startup_alive_timeout_s < self.alive_timeout_s:
            raise ValueError("startup_alive_timeout_s must be at least alive_timeout_s")


@dataclasses.dataclass
class NodeFailure:
    node: str
    cause: str
    sim_time_s: float
    wall_time_s: float
    action: str                        # "restarted", "restart scheduled", "graph shut down", "gave up"

    def line(self) -> str:
        return f"node failure: {self.node}: {self.cause} at sim {self.sim_time_s:.1f} s -> {self.action}"


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class NodeProcess:
    def __init__(self, spec: NodeSpec, cmd: list[str], env: dict, nice: int = 0):
        self.spec, self.cmd, self.env = spec, cmd, env
        self.nice = int(nice)
        self.popen: subprocess.Popen | None = None
        self.restarts = 0
        self.restart_at: float | None = None   # wall time of a scheduled restart
        self.started_wall = 0.0
        self.last_alive = None                 # wall time of the last /agricare/alive
        self.failed = False                    # counted as failed and not (yet) running again

    @property
    def fqn(self) -> str:
        return self.spec.fqn

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def start(self):
        inc = self.nice
        # in the child before exec: every thread it starts inherits the niceness
        self.popen = subprocess.Popen(self.cmd, env=self.env, preexec_fn=(lambda: os.nice(inc)) if inc > 0 else None)
        self.started_wall = time.monotonic()
        self.last_alive = None
        self.failed = False

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class ProcessSupervisor:
    """Starts, watches, restarts and stops the node processes of a graph."""

    def __init__(self, specs, command_for, params: SupervisionParams | None = None, progress=print,
                 env: dict | None = None):
        self.params = params or SupervisionParams()
        self.progress = progress or (lambda *_: None)
        env = dict(os.environ if env is None else env)
        env["AGRICARE_ALIVE_PERIOD_S"] = str(self.params.alive_period_s)
        self.procs = {s.fqn: NodeProcess(s, command_for(s), env,
                                         0 if s.node in SAFETY_CRITICAL else self.params.background_nice)
                      for s in specs}
        self.failures: list[NodeFailure] = []
        self.fatal: NodeFailure | None = None
        self._wall0 = time.monotonic()
        self._all_up_wall: float | None = None   # wall time every process had first said it is alive

    # ------------------------------------------------------------------ life cycle
    def start_all(self):
        for p in self.procs.values():
            p.start()

    def attach(self, node):
        """Listen to ``/agricare/alive`` on ``node`` (the runner's monitor)."""
        from std_msgs.msg import String

        from agricare.ros.node_main import ALIVE_TOPIC
        from agricare.ros.qos import SENSOR_QOS

        node.create_subscription(String, ALIVE_TOPIC, self._on_alive, SENSOR_QOS)

    def _on_alive(self, msg):
        p = self.procs.get(msg.data)
        if p is not None and p.running():
            p.last_alive = time.monotonic()

    def pid_of(self, fqn: str) -> int | None:
        p = self.procs.get(fqn)
        return p.pid if p is not None and p.running() else None

    # ------------------------------------------------------------------ watching
    def poll(self, sim_time_s: float) -> list[NodeFailure]:
        """Check every process once; returns the failures found now (also kept in ``failures``)."""
        now = time.monotonic()
        found = []
        alive_timeout = self.alive_timeout(now)
        for p in self.procs.values():
            if p.failed:
                if p.restart_at is not None and now >= p.restart_at:
                    p.restart_at = None
                    p.restarts += 1
                    p.start()
                    self.progress(f"supervisor: restarted {p.fqn} (restart {p.restarts})")
                continue
            if p.popen is None:
                continue
            code = p.popen.poll()
            cause = None
            if code is not None:
                cause = describe_exit(code)
            elif p.last_alive is None:
                if now - p.started_wall > self.params.startup_timeout_s:
                    cause = f"no sign of life {self.params.startup_timeout_s:.0f} s after start"
            elif now - p.last_alive > alive_timeout:
                cause = f"not answering for {now - p.last_alive:.1f} s"
            if cause is None:
                continue
            f = self._fail(p, cause, sim_time_s, now)
            found.append(f)
        return found

    def alive_timeout(self, now: float) -> float:
        """The silence (wall s) that counts as a failure now: ``startup_alive_timeout_s`` while the graph is
        starting (a process not yet alive, or less than ``startup_settle_s`` since the last one was), else
        ``alive_timeout_s``. Once the graph has been up, a restart does not bring the start-up allowance back."""
        if self._all_up_wall is None:
            if any(p.last_alive is None and p.running() for p in self.procs.values()):
                return self.params.startup_alive_timeout_s
            self._all_up_wall = now
        if now - self._all_up_wall < self.params.startup_settle_s:
            return self.params.startup_alive_timeout_s
        return self.params.alive_timeout_s

    def _fail(self, p: NodeProcess, cause: str, sim_t: float, now: float) -> NodeFailure:
        p.failed = True
        if p.running():  # silent but alive: it must not come back on its own half-way
            try:
                p.popen.kill()
                os.kill(p.popen.pid, signal.SIGCONT)
            except (OSError, ProcessLookupError):
                pass
        if is_restartable(p.spec) and self.fatal is None:
            if p.restarts < self.params.max_restarts:
                delay = self.params.restart_backoff_s * (2 ** p.restarts)
                p.restart_at = now + delay
                action = f"restart in {delay:.1f} s"
            else:
                action = "gave up restarting: robot's graph shut down"
        else:
            action = "robot's graph shut down"
        f = NodeFailure(p.fqn, cause, round(sim_t, 3), round(now - self._wall0, 3), action)
        self.failures.append(f)
        if "shut down" in action and self.fatal is None:
            self.fatal = f
        print(f"[agricare] {f.line()}", file=sys.stderr, flush=True)
        return f

    # ------------------------------------------------------------------ stopping
    def stop_all(self, spin=None):
        """SIGINT every running process (SIGCONT first for a frozen one), keep calling ``spin()`` (the
        simulator and recorder) until they have exited, SIGKILL what is left after ``stop_timeout_s``."""
        for p in self.procs.values():
            p.restart_at = None
            if p.running():
                try:
                    p.popen.send_signal(signal.SIGINT)
                    os.kill(p.popen.pid, signal.SIGCONT)
                except (OSError, ProcessLookupError):
                    pass
        deadline = time.monotonic() + self.params.stop_timeout_s
        while any(p.running() for p in self.procs.values()) and time.monotonic() < deadline:
            if spin is not None:
                spin()
            else:
                time.sleep(0.05)
        for p in self.procs.values():
            if p.running():
                print(f"[agricare] {p.fqn} did not stop on SIGINT: killed", file=sys.stderr)
                p.popen.kill()
                p.popen.wait(timeout=5)
        if spin is not None:   # the last messages (zero commands) reach the simulator and the recorder
            for _ in range(10):
                spin()

    def summary(self) -> list[dict]:
        out = [dataclasses.asdict(f) for f in self.failures]
        for p in self.procs.values():
            if p.restarts:
                out.append({"node": p.fqn, "restarts": p.restarts})
        return out


def params_dir():
    return tempfile.TemporaryDirectory(prefix="agricare_params_")


__all__ = ["EXIT_NODE_FAILED", "EXIT_SAFETY_FAULT", "RESTARTABLE", "SAFETY_CRITICAL",
           "NodeFailure", "ProcessSupervisor", "SupervisionParams",
           "describe_exit", "is_restartable", "params_dir", "pathlib"]
