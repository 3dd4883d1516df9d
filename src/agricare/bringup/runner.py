"""The embedded runner behind ``agricare run``: the scenario's whole graph on simulated time.

In-process mode builds every node in one process on one executor; the simulator node runs in external
drive mode and the runner steps it (fixed dt), then lets the executor deliver what became due, so the
graph runs as fast as the machine allows and never sleeps on the wall clock. The executor is rclpy's C++
EventsExecutor (``AGRICARE_EXECUTOR=single`` selects the Python SingleThreadedExecutor): measured on the
tractor graph it runs 1.7x faster (8x against 4.7x real time), with the same results; after each step
it runs every queued callback, then what those callbacks published (two flush rounds). Two runs of a scenario are
the same run (DESIGN principle 6): the start-up delivers what the graph published while it was built in a fixed
order (:meth:`EmbeddedRunner._start`), a node's timers due together run in creation order
(:mod:`agricare.ros.timer_order`), goal ids come from the seed. Multi-process mode starts one
process per node (as ``ros2 launch`` would) and paces the simulator at a real-time factor.

Every run records an MCAP of all topics (``recording.mcap``), writes ``summary.json`` and, through
:mod:`agricare.bringup.report`, PNG plots. Ctrl-C stops the graph: every node's ``on_shutdown`` runs (the
safety supervisor and the simulator zero the velocity), the recording is closed cleanly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import signal
import sys
import tempfile
import time

import rclpy
import yaml
from rclpy.parameter import Parameter

from agricare.bringup.graph import Graph, GraphError, NodeSpec, node_class
from agricare.bringup.signing import MISSION_ACTIONS, prepare_mission_signing
from agricare.bringup.supervise import EXIT_SAFETY_FAULT
from agricare.ros.fastmsg import fast_subscriptions, fast_timers
from agricare.ros.guard import guard_callbacks
from agricare.ros.timer_order import order_timers

DONE_STATES = ("done", "completed", "succeeded")
# mission node -> (action name in the robot's namespace, action type "pkg.action:Type")
STANDSTILL_MPS = 0.05   # a robot slower than this at the moment of a contact was standing
FAILED_STATES = ("failed", "aborted", "error")
MOVING_MPS = 0.05       # a command source that falls silent while the robot is faster than this is a fault
# reasons of the safety supervisor (agricare.core.safety.supervisor) that are faults; the rest are protective
# stops (people, obstacles, geofence, tilt, battery, remote stop, e-stop) and slow-downs, which are no fault
_FAULT_PREFIXES = ("stale:", "nonfinite:", "loop_overrun", "clock_jump", "scan_blinded", "scan_rear_blinded",
                   "reverse_blind:", "odom_frozen", "imu_stuck",
                   "cmd_delayed", "cmd_future", "cmd_reordered", "cmd_duplicated", "cmd_out_of_range")
# an idle command source is no fault (its command is zero): only while the robot moves
_IDLE_REASONS = ("stale:cmd", "cmd_delayed")
DIAG_OK, DIAG_ERROR = b"\x00", b"\x02"    # diagnostic_msgs/DiagnosticStatus levels (bytes in rclpy)
_SAFETY_DIAG_NODES = ("safety_supervisor_node", "safe_base_node")


def fault_reasons(reason: str, moving: bool) -> list[str]:
    """The faults among a safety state's reasons (``,``-joined): not ``no_data:*`` (start-up), not a stale or
    delayed command while the robot stands (an idle planner)."""
    out = []
    for r in (x.strip() for x in (reason or "").replace(";", ",").split(",")):
        if not r or not r.startswith(_FAULT_PREFIXES):
            continue
        if r in _IDLE_REASONS and not moving:
            continue
        out.append(r)
    return out


def to_parameters(params: dict) -> list[Parameter]:
    out = []
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            if not v:
                continue  # an empty list has no type: keep the node's default
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and \
                    any(isinstance(x, float) for x in v):
                v = [float(x) for x in v]
            v = list(v)
        elif v is None:
            continue
        out.append(Parameter(k, value=v))
    return out


def _ros_args(spec: NodeSpec) -> list[str]:
    args = ["--ros-args", "-r", f"__node:={spec.name}"]
    remap = dict(spec.remap)
    if spec.robot:
        remap.setdefault("/tf", "tf")
        remap.setdefault("/tf_static", "tf_static")
    for src, dst in remap.items():
        args += ["-r", f"{src}:={dst}"]
    return args


@dataclasses.dataclass
class RunResult:
    sim_time_s: float
    wall_time_s: float
    stopped_because: str
    missions: dict
    violations: list
    summary_path: pathlib.Path | None
    exit_code: int


class EmbeddedRunner:
    """Build and run a scenario graph in this process.

    Parameters
    ----------
    graph : Graph
    out_dir : path-like or None
        Where recording.mcap and summary.json go; None records nothing.
    seed : int
    max_sim_s : float or None
        Overrides ``run.max_sim_s`` of the scenario.
    until_done : bool
        Stop as soon as every mission reports done or failed.
    progress : callable or None
        Called with one line of progress text every ``progress_period_s`` of simulated time.
    """

    def __init__(self, graph: Graph, out_dir=None, seed: int = 0, max_sim_s=None, until_done=True,
                 progress=print, progress_period_s: float = 10.0, domain_id: int | None = None,
                 record: bool | None = None, foxglove_port: int | None = None, real_time_factor: float = 0.0,
                 in_process_clock: bool = False):
        self.graph = graph
        # the nodes' clocks are set from the simulator in memory, in the place of ``/clock`` in the event queue
        # (see _attach_clocks); off for graphs that remap ``/clock`` (the chaos tool's clock faults)
        self.in_process_clock = bool(in_process_clock)
        self._time_sources: list = []
        # robots whose mission nodes decide when the run is done (fixed at construction: the multi-process
        # mode starts those nodes elsewhere)
        self.mission_robots = {n.robot for n in graph.nodes if n.robot and "mission" in n.node}
        # missions served as actions: the runner sends each robot its goal (a robot idles until it has one)
        self.mission_actions = {n.robot: MISSION_ACTIONS[n.node] for n in graph.nodes
                                if n.robot and n.node in MISSION_ACTIONS}
        self.goals: dict[str, MissionGoal] = {}
        self.out_dir = pathlib.Path(out_dir) if out_dir else None
        # the runner is the operator: it signs the goals; the mission nodes trust its key for goals only
        self.goal_keys = prepare_mission_signing(graph.nodes, self.out_dir)
        # each mission robot's goal key, fixed here: the multi-process mode builds the monitor with an empty
        # node list (the nodes run elsewhere), and its goals must be signed all the same
        self._goal_key_of = {s.robot: self.goal_keys[s.fqn] for s in graph.nodes if s.fqn in self.goal_keys}
        self.seed = int(seed)
        self.max_sim_s = float(max_sim_s if max_sim_s is not None else graph.run.max_sim_s)
        self.until_done = until_done
        self.progress = progress
        self.progress_period_s = progress_period_s
        self.record = graph.run.record if record is None else record
        self.context = rclpy.context.Context()
        self.domain_id = domain_id
        self.nodes = {}
        self.sim = None
        self.monitor = None
        self.recorder = None
        self.mission_status: dict[str, dict] = {}
        self.safety_states: dict[str, str] = {}
        self.safety_faults: list[dict] = []    # faults the robots' safety caught (first time each), for the exit code
        self._fault_seen: set = set()
        self._diag_ok: set = set()   # diagnostic status names that reported OK once (started up)
        self._faults_closed = None   # the wheels' refusals when the run ended (shutdown is not judged)
        self._interrupted = False
        self.parked: set[str] = set()   # robots switched off after their mission (run.park_when_done)
        self._t_done_seen: dict[str, float] = {}   # simulated time each robot's mission was first seen done
        self._t_missions_finished: float | None = None   # simulated time all missions were first seen finished
        self.node_error = None
        self._row_metrics: dict[str, dict] = {}
        self._truth_hist: dict[str, list] = {}   # robot -> [(t_s, pose (3,))], the last steps' true poses
        self.pose_errors: dict[str, list] = {}  # robot -> [(t_s, ex_m, ey_m, eyaw_rad)] estimate - truth
        self.docking_truth: dict[str, dict] = {}   # robot -> {(t_s, goal): (source, judged, true error m)}
        self.row_states: dict[str, str] = {}   # row follower state per row robot (turn samples are excluded)
        self.step_hook = None   # callable(runner) after every step (tests, tools)
        self.foxglove_port = foxglove_port   # serve the live view (Foxglove WebSocket) on this port
        self.foxglove = None
        self.real_time_factor = float(real_time_factor)   # > 0: pace the simulation (live viewing)
        self._t_stop = None
        self._order: list = []   # this process's nodes in build order (start_order), set by build

    # ------------------------------------------------------------------ build
    def build(self, isolate: bool = True):
        """Create every node. ``isolate``: this process's graph is invisible to other processes on the machine
        (no DDS discovery outside the process), so parallel runs and tests never share /clock."""
        if isolate:
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "OFF"
        kwargs = {"domain_id": self.domain_id} if self.domain_id is not None else {}
        rclpy.init(context=self.context, **kwargs)
        if os.environ.get("AGRICARE_EXECUTOR", "events") == "events":
            from rclpy.experimental import EventsExecutor

            self.executor = EventsExecutor(context=self.context)
        else:
            from rclpy.executors import SingleThreadedExecutor

            self.executor = SingleThreadedExecutor(context=self.context)
        common = dict(context=self.context, start_parameter_services=False, enable_rosout=False)
        sim_cls = node_class("sim_node")
        self.sim = sim_cls(parameter_overrides=to_parameters({
            "scenario_file": str(self.graph.scenario_file), "seed": self.seed,
            "step_dt_s": float(self.graph.run.step_dt_s), "drive_mode": "external"}),
            cli_args=getattr(self, "sim_cli_args", None), **common)
        for spec in self.graph.nodes:
            cls = node_class(spec.node)
            params = expand_out(spec.params, self.out_dir)
            params["use_sim_time"] = True
            try:
                node = cls(namespace=spec.namespace or "/", cli_args=_ros_args(spec),
                           parameter_overrides=to_parameters(params), **common)
            except GraphError:
                raise
            except Exception as exc:
                raise GraphError(f"{spec.fqn}: failed to start: {exc}") from exc
            fast_subscriptions(node)   # Odometry, Imu, TwistStamped decoded without rclpy's object building
            fast_timers(node)          # timer callbacks' signatures computed once, not on every call
            guard_callbacks(node)   # a malformed message is reported, never ends the run
            self.nodes[spec.fqn] = node
            if hasattr(node, "attach_base") and spec.robot in self.sim.world.robots:
                # the safe base: the simulated wheels take this robot's gated command in memory, not cmd_vel
                node.attach_base(self.sim.command_input(spec.robot))
        self._build_monitor(common)
        fast_subscriptions(self.monitor)
        if self.in_process_clock and not any("/clock" in spec.remap or "clock" in spec.remap
                                              for spec in self.graph.nodes):
            self._attach_clocks()
        if self.recorder is not None:
            # the recorder's subscriptions exist before the start-up delivery, so it takes the latched messages
            # in the same fixed order as the nodes (subscribed during the run, it got them when DDS delivered)
            self.recorder.discover()
        self._start(wait=isolate)

    # ------------------------------------------------------------------ start-up
    #: wall seconds the start-up waits at most for the middleware to match this process's endpoints and to
    #: deliver what was published while the graph was built (normally a few ms); on a timeout the run goes on
    #: with a warning: its start may then differ from run to run
    SETTLE_TIMEOUT_S = 10.0

    def start_order(self) -> list:
        """The nodes of this process in the order they were built (simulator, the graph's nodes, the runner's
        monitor): the order start-up messages are delivered in and, with ``AGRICARE_EXECUTOR=single``, the
        order every step's callbacks run in."""
        return [n for n in [self.sim, *self.nodes.values(), self.monitor] if n is not None]

    def _start(self, wait: bool = True):
        """Deliver what the nodes published while the graph was built, in a fixed order, then hand the nodes to
        the executor with nothing pending: the run is the same every time (DESIGN principle 6).

        Why: rclpy's EventsExecutor registers a node's subscriptions (and timers, services, ...) when it next
        spins, iterating over Python sets of the entity objects, i.e. in an order of memory addresses that
        differs from process to process (``PYTHONHASHSEED`` moves it). Every message waiting in a subscription
        at that moment is queued in that order. Before this, the first spin came after the first simulator step,
        so the latched start-up messages (robot description, follower state, ...) and all of step 1's sensor
        messages and ``/clock`` reached the nodes in a per-process order; e.g. the crop-row node saw its first
        image before or after its camera info and mount, and the row robot's run took one of a few start
        paths (``bench/crop_row_sim.py``: 1.10 or 2.17 cm RMS from the same code). Once registered, intra-process
        delivery is synchronous, so later steps' events come in publication order.

        Now: (1) wait until every publisher and subscription of this process has matched its QoS-compatible
        peers in this process, every action client its in-process server; (2) wait until every reliable
        publisher's messages are acknowledged (the latched history has reached readers created after it was
        published); (3) run the waiting callbacks node by node in :meth:`start_order`, each node's in rclpy's
        fixed order (timers, subscriptions in creation order, ...), repeated until nothing is ready (with a
        ``SingleThreadedExecutor``); (4) add the nodes to the executor and spin it once, so its entities are
        registered while nothing waits. Each node's timers are also put in order (:func:`order_timers`): the
        EventsExecutor dispatches a clock's due timers in an order of addresses too. ``wait`` False (a graph
        open to other processes: the multi-process mode, the operator app) skips (1) and (2): peers elsewhere
        come and go on their own time."""
        from rclpy.duration import Duration
        from rclpy.executors import SingleThreadedExecutor

        order = self.start_order()
        for node in order:
            order_timers(node)   # a node's timers due at one instant run in creation order (ros/timer_order.py)
        deadline = time.monotonic() + (self.SETTLE_TIMEOUT_S if wait else 0.0)
        missing = self._unmatched(order) if wait else []
        while missing and time.monotonic() < deadline:
            time.sleep(0.001)
            missing = self._unmatched(order)
        if missing:
            print(f"[agricare] warning: start-up: not matched after {self.SETTLE_TIMEOUT_S:g} s: "
                  f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (the run's start may vary)",
                  file=sys.stderr, flush=True)
        for node in order if wait else ():
            for pub in node.publishers:
                left = max(0.0, deadline - time.monotonic())
                if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
                    print(f"[agricare] warning: start-up: {pub.topic_name} not acknowledged by all readers "
                          "(the run's start may vary)", file=sys.stderr, flush=True)
        events = not hasattr(self.executor, "wait_for_ready_callbacks")
        drain = SingleThreadedExecutor(context=self.context) if events else self.executor
        for node in order:
            drain.add_node(node)
        self._drain(drain, order)
        if events:
            for node in order:
                drain.remove_node(node)
                self.executor.add_node(node)
            drain.shutdown()
        self._order = order
        self.spin_some(1)

    def _unmatched(self, nodes) -> list[str]:
        """Endpoints of ``nodes`` with fewer matched peers than the QoS-compatible ones among ``nodes`` (other
        processes' peers count too, so ``>=``), and action clients whose in-process server is not ready."""
        from rclpy.qos import QoSCompatibility, qos_check_compatible

        pubs = [p for n in nodes for p in n.publishers]
        subs = [s for n in nodes for s in n.subscriptions]

        def compatible(pq, sq):
            return qos_check_compatible(pq, sq)[0] != QoSCompatibility.ERROR

        out = []
        for p in pubs:
            want = sum(1 for s in subs if s.topic_name == p.topic_name and compatible(p.qos_profile, s.qos_profile))
            if p.get_subscription_count() < want:
                out.append(f"publisher {p.topic_name} {p.get_subscription_count()}/{want}")
        for s in subs:
            want = sum(1 for p in pubs if p.topic_name == s.topic_name and compatible(p.qos_profile, s.qos_profile))
            if s.get_publisher_count() < want:
                out.append(f"subscription {s.topic_name} {s.get_publisher_count()}/{want}")
        for robot, goal in self.goals.items():
            if any(spec.robot == robot and spec.fqn in self.nodes for spec in self.graph.nodes
                   if spec.node in MISSION_ACTIONS) and not goal.client.server_is_ready():
                out.append(f"action {goal.name}")
        return out

    @staticmethod
    def _drain(executor, order, max_rounds: int = 100):
        """Run every ready callback of ``order``'s nodes, one node at a time in that order, until none is ready."""
        for _ in range(max_rounds):
            ran = False
            for node in order:
                while _run_one(executor, [node]):
                    ran = True
            if not ran:
                return

    def _attach_clocks(self):
        """Drive every node's ROS clock from the simulator in this process instead of over DDS.

        Each node's ``/clock`` subscription (its ``TimeSource``) is removed, and after every step the
        simulator's time is handed to those time sources by a task queued behind the step's sensor messages:
        the place the ``/clock`` message took in the event queue, so callbacks see the same time as before
        and timers fire on the same jumps. ``/clock`` is still published (recording, live view). With ~20
        nodes at 20 Hz this saves ~400 DDS deliveries and Python message conversions per simulated second.
        """
        sources = []
        for node in list(self.nodes.values()) + [self.monitor]:
            ts = getattr(node, "_time_source", None)
            sub = getattr(ts, "_clock_sub", None)
            if ts is None or sub is None or not callable(getattr(ts, "clock_callback", None)):
                continue
            sources.append((node, ts, sub))
        for node, ts, sub in sources:
            node.destroy_subscription(sub)
            ts._clock_sub = None
            self._time_sources.append(ts)

    def _set_clocks(self, msg):
        """What each time source's ``clock_callback`` does with the ``/clock`` message, with one rclpy ``Time``
        for all of them (the callback builds one per node: ~25 per step, ~1 s of the care day)."""
        from rclpy.time import Time

        t = Time.from_msg(msg.clock)
        for ts in self._time_sources:
            clocks = getattr(ts, "_associated_clocks", None)
            if clocks is None or not hasattr(ts, "_last_time_set"):   # another rclpy: its own callback
                ts.clock_callback(msg)
                continue
            ts._last_time_set = t
            for clock in clocks:
                clock.set_ros_time_override(t)

    def step(self) -> float:
        """One simulator step; with ``in_process_clock`` the nodes' clocks follow once its messages are in."""
        t = self.sim.step_once()
        if self._time_sources:
            from rosgraph_msgs.msg import Clock as ClockMsg

            from agricare.ros.convert import to_stamp

            msg = ClockMsg(clock=to_stamp(float(self.sim.world.t_s)))
            self.executor.create_task(lambda: self._set_clocks(msg))
        return t

    def _build_monitor(self, common):
        from rclpy.node import Node

        self.monitor = Node("agricare_runner", parameter_overrides=[Parameter("use_sim_time", value=True)],
                            **common)
        from agricare_interfaces.msg import MissionStatus, SafetyState
        from nav_msgs.msg import Odometry
        from std_msgs.msg import String

        from agricare.ros.qos import RELIABLE_QOS, SENSOR_QOS, subscribe_latched

        for robot, rtype in self.graph.robots.items():
            self.monitor.create_subscription(
                MissionStatus, f"/{robot}/mission/status",
                lambda m, r=robot: self._on_status(r, m), RELIABLE_QOS)
            self.monitor.create_subscription(
                SafetyState, f"/{robot}/safety/state",
                lambda m, r=robot: self._on_safety_state(r, m), RELIABLE_QOS)
            # measuring only: the robot's own estimate (compared with the truth) and the row follower's state
            self.monitor.create_subscription(
                Odometry, f"/{robot}/odometry/filtered", lambda m, r=robot: self._on_estimate(r, m), SENSOR_QOS)
            if rtype == "row_robot":
                subscribe_latched(self.monitor, String, f"/{robot}/row_follower/state",
                                  lambda m, r=robot: self.row_states.__setitem__(r, m.data))
        from diagnostic_msgs.msg import DiagnosticArray

        from agricare.ros.fastmsg import decode_diagnostic_array, decoder

        # read with the light decoder (ros/fastmsg.py): every node's reports, ~50 arrays a second in the care day
        decode_diag = decoder(DiagnosticArray, decode_diagnostic_array)
        self.monitor.create_subscription(DiagnosticArray, "/diagnostics",
                                         lambda data: self._on_diagnostics(decode_diag(data)), RELIABLE_QOS, raw=True)
        if self.out_dir is not None and self.record:
            from agricare.bringup.recorder import McapRecorder

            # the thinned topics are read by polling after each step (McapRecorder.poll), from a node on no
            # executor: their messages are not all delivered to be dropped
            self._record_poll_node = Node("agricare_recorder_poll", **common)
            self.recorder = McapRecorder(self.monitor, self.out_dir / "recording.mcap",
                                         max_rate_hz=self.graph.run.record_max_rate_hz,
                                         exclude=self.graph.run.record_exclude, poll_node=self._record_poll_node)

        key_of = self._goal_key_of
        for robot, (name, type_ref) in self.mission_actions.items():
            self.goals[robot] = MissionGoal(self.monitor, f"/{robot}/{name}", type_ref, robot, key_of.get(robot),
                                            seed=self.seed)
        if self.foxglove_port is not None:
            from agricare.bringup.foxglove_view import FoxgloveView

            self.foxglove = FoxgloveView(self.monitor, port=self.foxglove_port)
            if self.progress:
                self.progress(f"live view: connect Foxglove to {self.foxglove.url} "
                              "(layout: config/foxglove_layout.json)")

    def _on_safety_state(self, robot, msg):
        self.safety_states[robot] = msg.reason or str(msg.state)
        if self._faults_closed is not None:   # shutting down: nodes stop one after the other, no fault
            return
        moving = False
        if self.sim is not None and robot in self.sim.world.robots:
            moving = abs(float(self.sim.world.velocity(robot)[0])) > MOVING_MPS
        for reason in fault_reasons(msg.reason, moving):
            if (robot, reason) in self._fault_seen:
                continue
            self._fault_seen.add((robot, reason))
            t = round(self.sim_time(), 3) if self.sim is not None else None
            self.safety_faults.append({"robot": robot, "fault": reason, "sim_time_s": t})
            print(f"[agricare] safety fault: {robot}: {reason} at sim {t} s (the robot stops)", file=sys.stderr,
                  flush=True)

    def _on_diagnostics(self, msg):
        """An ERROR a node reports about itself (a blank camera, a lost port, a record not written...) after it
        once reported OK is a fault too (before that it is starting up: its inputs are not there yet, as the
        supervisor's ``no_data``). The safety supervisor's own reports are judged on its state (above)."""
        if self._faults_closed is not None:
            return
        for st in msg.status:
            if st.level == DIAG_OK:
                self._diag_ok.add(st.name)
                continue
            if st.level != DIAG_ERROR or st.name not in self._diag_ok or any(k in st.name for k in _SAFETY_DIAG_NODES):
                continue
            robot = st.name.strip("/").split("/", 1)[0] if st.name.startswith("/") else ""
            if robot not in self.graph.robots:
                continue
            node = st.name.split(":", 1)[0]
            key = (robot, node, "error")
            if key in self._fault_seen:
                continue
            self._fault_seen.add(key)
            t = round(self.sim_time(), 3) if self.sim is not None else None
            self.safety_faults.append({"robot": robot, "fault": f"{node}: {st.message}", "sim_time_s": t})
            print(f"[agricare] fault reported: {st.name}: {st.message} at sim {t} s", file=sys.stderr, flush=True)

    def fault_report(self) -> tuple[list[dict], dict]:
        """Faults the robots' safety caught and decisions the wheels refused as too old (multi-process: the
        simulator's command input), each robot's first of each kind."""
        if self._faults_closed is not None:
            stale = self._faults_closed
        else:
            stale = self._refused_now()
        return list(self.safety_faults), {r: n for r, n in stale.items() if n}

    def close_fault_window(self):
        """The run has ended: what happens while the graph shuts down is not judged as a fault."""
        if self._faults_closed is None:
            self._faults_closed = self._refused_now()

    def _refused_now(self) -> dict:
        hook = getattr(self.sim, "decisions_refused", None)
        return dict(hook()) if callable(hook) else {}

    def send_goals(self):
        """Send each mission robot its (default) goal once its action server is up."""
        for goal in self.goals.values():
            goal.poll()

    def _on_status(self, robot, msg):
        detail = msg.detail
        try:
            detail = json.loads(detail) if detail.strip().startswith("{") else detail
        except ValueError:
            pass
        self.mission_status[robot] = {"mission": msg.mission, "state": msg.state, "progress": msg.progress,
                                      "detail": detail}
        if isinstance(detail, dict) and detail.get("docking"):
            self._measure_docking(robot, detail["docking"])

    def _measure_docking(self, robot, checks):
        """True distance to the boarding point at each docking check the mission reports (measuring only)."""
        if self.sim is None or robot not in self.sim.world.robots:
            return
        seen = self.docking_truth.setdefault(robot, {})
        for d in checks:
            if not isinstance(d, dict) or "t_s" not in d or "goal" not in d:
                continue
            key = (float(d["t_s"]), tuple(d["goal"]))
            if key in seen:
                continue
            hist = self._truth_hist.get(robot) or []
            near = min(hist, key=lambda h: abs(h[0] - key[0]), default=None)
            if near is None or abs(near[0] - key[0]) > 0.1:
                continue   # reported after the true poses kept (the last 2 s): not comparable
            true_m = math.hypot(near[1][0] - key[1][0], near[1][1] - key[1][1])
            seen[key] = (str(d.get("source", "")), float(d.get("error_m", math.nan)), true_m)

    def _on_estimate(self, robot, msg):
        """Error of the robot's own pose estimate against the simulator's true pose (measuring only)."""
        if self.sim is None or robot not in self.sim.world.robots:
            return
        from agricare.ros.convert import from_stamp, pose_to_xyyaw

        t = from_stamp(msg.header.stamp)
        truth = self._truth_at(robot, t)
        if truth is None:      # stamped outside the true poses kept (the last second): not comparable
            return
        now = t
        est = pose_to_xyyaw(msg.pose.pose)
        dyaw = (est[2] - truth[2] + math.pi) % (2.0 * math.pi) - math.pi
        gnss = self.sim.world.robots[robot].gnss
        urban = bool(gnss is not None and gnss.params.urban_range_m > 0.0 and
                     self.sim.world.distance_to_buildings(truth[0], truth[1]) <= gnss.params.urban_range_m)
        self.pose_errors.setdefault(robot, []).append(
            (round(now, 3), float(est[0] - truth[0]), float(est[1] - truth[1]), float(dyaw), int(urban)))

    def _truth_at(self, robot, t):
        """True pose (3,) at sim time ``t`` from the poses kept every step (exact step times only)."""
        hist = self._truth_hist.get(robot)
        if not hist:
            return None
        dt = self.graph.run.step_dt_s
        for ti, pose in reversed(hist):
            if abs(ti - t) <= 0.25 * dt:
                return pose
        return None

    def _keep_truth(self):
        w = self.sim.world
        t = float(w.t_s)
        for name in w.robots:
            hist = self._truth_hist.setdefault(name, [])
            hist.append((t, w.pose(name).copy()))
            if len(hist) > 40:
                del hist[:len(hist) - 40]

    # ------------------------------------------------------------------ run
    def sim_time(self) -> float:
        return float(self.sim.world.t_s)

    def _missions_finished(self) -> bool:
        return bool(self.mission_robots) and all(
            self.mission_status.get(r, {}).get("state", "").lower() in DONE_STATES + FAILED_STATES
            for r in self.mission_robots)

    #: simulated seconds the run goes on after the missions report finished, for the action servers' results
    #: to arrive (the mission topic says "done" a moment before the goal's result does)
    GOAL_RESULT_GRACE_S = 2.0

    def _goals_settled(self) -> bool:
        """No mission goal is still waiting for its result (sent and accepted goals are waiting)."""
        return not any(g.waiting for g in self.goals.values())

    def finished_with_results(self, t: float) -> bool:
        """The missions are finished and their goals' results are in (or ``GOAL_RESULT_GRACE_S`` has passed
        since the missions finished: a result that never comes stays "accepted" in the summary)."""
        if not self._missions_finished():
            self._t_missions_finished = None
            return False
        if self._t_missions_finished is None:
            self._t_missions_finished = t
        return self._goals_settled() or t >= self._t_missions_finished + self.GOAL_RESULT_GRACE_S

    def spin_some(self, n: int):
        """Run ready callbacks until none is ready (at most ``n`` * 10), so no backlog builds up."""
        if not hasattr(self.executor, "wait_for_ready_callbacks"):
            # EventsExecutor: events run in arrival order; a task queued now completes after every event
            # already queued. Two rounds also run what those callbacks published in turn.
            for _ in range(int(os.environ.get("AGRICARE_EVENT_ROUNDS", "2"))):
                fut = self.executor.create_task(_noop)
                self.executor.spin_until_future_complete(fut, timeout_sec=1.0)
            return

        # the nodes in build order (rclpy's executor keeps them in a set: an order of memory addresses)
        live = set(self.executor.get_nodes())
        nodes = [node for node in self._order if node in live] or None
        for _ in range(max(1, n) * 10):
            if not _run_one(self.executor, nodes):
                return

    def run(self) -> RunResult:
        if self.sim is None:
            self.build()
        wall0 = time.monotonic()
        next_progress = 0.0
        next_discover = 0.0
        reason = "max_sim_s"
        spins = max(4, len(self.nodes) + 2)
        old_handler = signal.getsignal(signal.SIGINT)
        try:
            while True:
                t = self.sim_time()
                if t >= self.max_sim_s:
                    break
                if self._interrupted:
                    reason = "interrupted"
                    break
                self.step()
                self._keep_truth()
                self.spin_some(spins)
                if self.recorder is not None:
                    self.recorder.poll()
                self.send_goals()
                self._sample_metrics()
                if self.step_hook is not None:
                    self.step_hook(self)
                if (self.recorder is not None or self.foxglove is not None) and t >= next_discover:
                    if self.recorder is not None:
                        self.recorder.discover()
                    if self.foxglove is not None:
                        self.foxglove.discover()
                    next_discover = t + (0.5 if t < 5.0 else 5.0)
                if self.real_time_factor > 0:
                    ahead = t / self.real_time_factor - (time.monotonic() - wall0)
                    if ahead > 0:
                        time.sleep(min(ahead, 0.1))
                if t >= next_progress:
                    self._print_progress(t, time.monotonic() - wall0)
                    next_progress = t + self.progress_period_s
                if self.until_done and self.finished_with_results(t):
                    reason = "missions finished"
                    break
                if self.graph.run.park_when_done:
                    self._park_finished()
                if self.recorder is not None and self.recorder.error:
                    reason = self.recorder.error
                    break
        except KeyboardInterrupt:
            reason = "interrupted"
        except Exception as exc:  # a node callback raised: stop the graph safely, keep the recording
            import traceback

            traceback.print_exc()
            reason = f"node error: {type(exc).__name__}: {exc}"
            self.node_error = reason
        finally:
            signal.signal(signal.SIGINT, old_handler)
            wall = time.monotonic() - wall0
            self._t_stop = self.sim_time()
            self.close_fault_window()
            self._stop()
        return self._finish(reason, wall)

    def _park_finished(self):
        """Switch off robots whose mission is done: their nodes leave the executor, their sensors stop."""
        t = self.sim_time()
        for robot in self.mission_robots - self.parked:
            if self.mission_status.get(robot, {}).get("state", "").lower() not in DONE_STATES:
                continue
            # its mission goal's result first (a parked action server sends nothing), within the grace
            t_done = self._t_done_seen.setdefault(robot, t)
            goal = self.goals.get(robot)
            if goal is not None and goal.waiting and t < t_done + self.GOAL_RESULT_GRACE_S:
                continue
            self.parked.add(robot)
            self.sim.world.park(robot)
            for spec in self.graph.nodes:
                if spec.robot == robot and spec.fqn in self.nodes:
                    hook = getattr(self.nodes[spec.fqn], "on_shutdown", None)
                    if callable(hook):
                        hook()
                    self.executor.remove_node(self.nodes[spec.fqn])
            if self.progress:
                self.progress(f"[sim {self.sim_time():7.1f} s] {robot}: mission done, switched off")

    def _print_progress(self, t, wall):
        if not self.progress:
            return
        rtf = t / wall if wall > 0 else 0.0
        parts = []
        for robot in self.graph.robots:
            st = self.mission_status.get(robot)
            if st:
                parts.append(f"{robot}: {st['state']} {100 * st['progress']:.0f}%")
        self.progress(f"[sim {t:7.1f} s | {rtf:5.1f}x real time] " + (" | ".join(parts) or "running"))

    def _stop(self):
        """Zero every robot's velocity and give the graph a moment to pass it on."""
        for node in list(self.nodes.values()) + [self.sim]:
            hook = getattr(node, "on_shutdown", None)
            if callable(hook):
                try:
                    hook()
                except Exception as exc:  # keep shutting down the rest
                    print(f"warning: {node.get_name()}.on_shutdown failed: {exc}", file=sys.stderr)
        # the graph stops here: only the simulator and the recorder take the last (zero) commands
        for node in self.nodes.values():
            try:
                self.executor.remove_node(node)
            except Exception:
                pass
        try:
            for _ in range(3):
                self.spin_some(4)
                self.step()
            self.spin_some(4)
        except Exception:
            pass

    def _sample_metrics(self):
        """Ground-truth figures sampled every step: the row robots' true lane offset inside crop blocks.

        Every sample inside a crop block while the robot's mission runs counts, whatever the speed or heading,
        except while the row follower says it is turning (the U-turn and the drive back into the next row); those
        are counted apart."""
        w = self.sim.world
        for name, r in w.robots.items():
            if r.spec.type != "row_robot":
                continue
            if name in self.parked or self.mission_status.get(name, {}).get("state", "").lower() in DONE_STATES:
                continue   # the job is over: a robot standing in the rows is not following them
            err = w.row_error(name)
            if err is None or not err.inside_block:
                continue
            m = self._row_metrics.setdefault(name, {"sq": 0.0, "n": 0, "max": 0.0, "lanes": set(), "turning": 0})
            if self.row_states.get(name) == "turning":
                m["turning"] += 1
                continue
            m["sq"] += err.lane_offset_m ** 2
            m["n"] += 1
            m["max"] = max(m["max"], abs(err.lane_offset_m))
            m["lanes"].add((err.block, err.lane_index))

    def world_summary(self) -> dict:
        """Mission figures measured by the simulator's ground truth (not by the robots' own estimates)."""
        w = self.sim.world
        out = {}
        for name, r in w.robots.items():
            fig = {"type": r.spec.type, "final_pose": [round(float(v), 3) for v in w.pose(name)]}
            cov = w.coverage.get(name) if hasattr(w, "coverage") else None
            if cov is not None:
                fig["covered_ratio_field"], fig["double_ratio_field"] = (round(x, 4) for x in cov.ratios())
                inner = self._inner_field(name)
                if inner is not None and not inner.is_empty and inner.geom_type == "Polygon":
                    import numpy as np

                    mask = cov.polygon_mask(np.asarray(inner.exterior.coords),
                                            [np.asarray(h.coords) for h in inner.interiors])
                    n = max(int(mask.sum()), 1)
                    fig["covered_ratio_inner"] = round(float(np.count_nonzero(cov.count[mask] >= 1)) / n, 4)
                    fig["double_ratio_inner"] = round(float(np.count_nonzero(cov.count[mask] >= 2)) / n, 4)
                rate = self._applied_rate(name, cov)
                if rate is not None:
                    fig["applied_rate"] = rate
            m = self._row_metrics.get(name)
            if m and m["n"]:
                fig["row_cross_track_rms_m"] = round(math.sqrt(m["sq"] / m["n"]), 4)
                fig["row_cross_track_max_m"] = round(m["max"], 4)
                fig["row_lanes_followed"] = len(m["lanes"])
                fig["row_samples"] = m["n"]
                fig["row_samples_excluded_turning"] = m["turning"]
            errs = self.pose_errors.get(name)
            if errs:
                import numpy as np

                e = np.asarray(errs, dtype=float)
                d = np.hypot(e[:, 1], e[:, 2])
                fig["pose_error"] = {"samples": len(e), "rmse_m": round(float(np.sqrt(np.mean(d ** 2))), 4),
                                     "max_m": round(float(d.max()), 4), "p95_m": round(float(np.percentile(d, 95)), 4),
                                     "yaw_rmse_rad": round(float(np.sqrt(np.mean(e[:, 3] ** 2))), 4),
                                     "source": f"/{name}/odometry/filtered vs simulator truth"}
                u = e[:, 4] > 0
                if np.any(u):   # between buildings, where the simulated GNSS is degraded
                    fig["pose_error"]["between_buildings"] = {
                        "samples": int(u.sum()), "rmse_m": round(float(np.sqrt(np.mean(d[u] ** 2))), 4),
                        "max_m": round(float(d[u].max()), 4)}
            if name in getattr(w, "camera_frames", {}):
                fig["camera_frames"] = w.camera_frames[name]
            dock = self.docking_truth.get(name)
            if dock:   # each docking check of the mission: what it was judged on and the true distance
                by = {}
                for source, judged, true_m in dock.values():
                    by.setdefault(source, []).append((judged, true_m))
                fig["docking"] = {src: {"checks": len(v), "true_error_m": {
                    "mean": round(sum(t for _, t in v) / len(v), 4), "max": round(max(t for _, t in v), 4)},
                    "judged_error_m_max": round(max(j for j, _ in v), 4)} for src, v in sorted(by.items())}
            fig["contacts"] = sum(1 for c in w.contacts if c.robot == name and abs(c.robot_speed_mps) > STANDSTILL_MPS)
            fig["contacts_at_standstill"] = sum(1 for c in w.contacts if c.robot == name
                                                and abs(c.robot_speed_mps) <= STANDSTILL_MPS)
            fig["boundary_violations"] = sum(1 for b in w.boundary_violations if b.robot == name)
            out[name] = fig
        return out

    def _applied_rate(self, robot, cov):
        """The truly applied dose (simulator) against the prescription the robot's section control applies:
        None without rate control (no prescription_file, or the implement never got a rate)."""
        if not getattr(cov, "dosed", False):
            return None
        for spec in self.graph.nodes:
            if spec.robot == robot and spec.node == "section_control_node" and spec.params.get("prescription_file"):
                import numpy as np

                from agricare import paths
                from agricare.core.farmdata.layers import read_grid_csv

                try:
                    rx = read_grid_csv(paths.resolve(spec.params["prescription_file"], "config/fields"))
                except (OSError, ValueError) as exc:
                    return {"error": f"prescription unreadable: {exc}"}
                xs, ys = cov.cell_center(np.arange(cov.height)[:, None], np.arange(cov.width)[None, :])
                xs, ys = np.broadcast_arrays(xs, ys)
                pr = rx.value_at(np.column_stack([xs.ravel(), ys.ravel()])).reshape(xs.shape)
                pr = np.where(np.isfinite(pr), pr, float(spec.params.get("default_rate_kgha", 0.0)))
                a = cov.rate_agreement(pr, 0.05)
                return {"within_5pct_of_worked_area": round(a["within_ratio"], 4),
                        "within_5pct_of_area_worked_once": round(a["within_ratio_worked_once"], 4),
                        "mean_abs_rel_error_worked_once": round(a["mean_abs_rel_error_worked_once"], 4),
                        "worked_area_m2": round(a["worked_area_m2"], 1),
                        "source": "simulator ground truth: rate truly applied per cell (metering lag), summed "
                                  "over passes, against the prescription map"}
        return None

    def _inner_field(self, robot):
        """The robot's field shrunk by the headland width its farm mission plans with."""
        for spec in self.graph.nodes:
            if spec.robot == robot and spec.node == "farm_mission_node":
                from agricare.core.missions.farm import load_scenario_field

                try:
                    poly = load_scenario_field(self.graph.scenario_file, self.sim.world.robots[robot].spec.field)
                except (ValueError, OSError):
                    return None
                return poly.buffer(-float(spec.params.get("headland_width_m", 9.0)))
        return None

    def violations(self) -> list:
        w = self.sim.world
        out = []
        # a contact counts against the robot when it was moving; the simulator's people do not avoid robots,
        # so one walking into a robot at a standstill is reported (summary world figures) but is no violation
        moving = [c for c in (getattr(w, "contacts", None) or []) if abs(c.robot_speed_mps) > STANDSTILL_MPS]
        for kind, events in (("contact", moving),
                             ("boundary", getattr(w, "boundary_violations", None))):
            for ev in events or []:
                fields = dataclasses.asdict(ev) if dataclasses.is_dataclass(ev) else {"what": str(ev)}
                out.append({"kind": kind, **fields})
        return out

    def _finish(self, reason, wall) -> RunResult:
        t = self._t_stop if self._t_stop is not None else self.sim_time()
        violations = self.violations()
        failed = [r for r, st in self.mission_status.items() if st.get("state", "").lower() in FAILED_STATES]
        code = 0
        if reason == "interrupted":
            code = 130
        elif failed or violations or self.node_error:
            code = 1
        elif self.until_done and self.mission_robots and not self._missions_finished():
            code = 1
            reason = f"{reason} before the missions finished"
        faults, refused = self.fault_report()
        if faults or refused:   # a fault the robot survived is still a fault: the run does not read as a success
            named = [f"{f['robot']}: {f['fault']} at {f['sim_time_s']} s" for f in faults[:4]]
            named += [f"{r}: {n} stale decision(s) refused at the wheels" for r, n in refused.items()]
            # the rest by name only: every fault is named in the summary line, whatever came first
            more = f" (+{len(faults) - 4} more: {', '.join(dict.fromkeys(f['fault'] for f in faults[4:]))})" \
                if len(faults) > 4 else ""
            reason = f"{reason}; fault(s) detected: {'; '.join(named)}{more}"
            if code == 0:
                code = EXIT_SAFETY_FAULT
        summary_path = None
        rec_stats = None
        if self.recorder is not None:
            self.recorder.close()
            rec_stats = self.recorder.stats()
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            summary = {
                "scenario": self.graph.name, "scenario_file": str(self.graph.scenario_file), "seed": self.seed,
                "sim_time_s": round(t, 3), "wall_time_s": round(wall, 3),
                "real_time_factor": round(t / wall, 2) if wall > 0 else None,
                "stopped_because": reason, "exit_code": code,
                "missions": self.mission_status, "safety_last_state": self.safety_states,
                "mission_goals": {r: g.summary() for r, g in self.goals.items()},
                "violations": violations, "world": _jsonable(self.world_summary()),
                "recording": rec_stats,
                "faults_detected": faults, "stale_decisions_refused": refused,
            }
            summary = _jsonable(summary)
            _split_long_lists(summary["missions"], self.out_dir)
            summary_path = self.out_dir / "summary.json"
            summary_path.write_text(json.dumps(summary, indent=2, default=_json_default))
            self._save_world_artifacts()
        return RunResult(t, wall, reason, self.mission_status, violations, summary_path, code)

    def _save_pose_errors(self):
        """Estimate-vs-truth pose error per robot: ``pose_error_<robot>.csv`` and one plot ``pose_error.png``."""
        if not self.pose_errors:
            return
        import csv

        for name, errs in self.pose_errors.items():
            with open(self.out_dir / f"pose_error_{name}.csv", "w", newline="") as f:
                wr = csv.writer(f)
                wr.writerow(["t_s", "error_x_m", "error_y_m", "error_yaw_rad", "gnss_degraded"])
                wr.writerows([(t, f"{ex:.4f}", f"{ey:.4f}", f"{eyaw:.4f}", u) for t, ex, ey, eyaw, u in errs])
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            import numpy as np

            fig, ax = plt.subplots(figsize=(8, 3.5))
            for name, errs in sorted(self.pose_errors.items()):
                e = np.asarray(errs, dtype=float)
                d = np.hypot(e[:, 1], e[:, 2])
                ax.plot(e[:, 0], 100.0 * d, lw=0.8,
                        label=f"{name}: RMSE {100 * np.sqrt(np.mean(d ** 2)):.1f} cm, max {100 * d.max():.1f} cm")
            ax.set_xlabel("simulated time [s]")
            ax.set_ylabel("position error [cm]")
            ax.set_title("own pose estimate (odometry/filtered) vs simulator truth")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(self.out_dir / "pose_error.png", dpi=110)
            plt.close(fig)
        except Exception as exc:  # a plot must never lose the run's summary
            print(f"warning: could not plot pose errors: {exc}", file=sys.stderr)

    def _save_world_artifacts(self):
        """Coverage maps (ground truth) of every robot with an implement: PNG + the raw pass counts (.npy)."""
        self._save_pose_errors()
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            import numpy as np
            from matplotlib.colors import ListedColormap

            for name, cov in (getattr(self.sim.world, "coverage", None) or {}).items():
                if cov is None:
                    continue
                np.save(self.out_dir / f"coverage_{name}.npy", cov.count)
                counts = np.minimum(cov.count.astype(float), 3.0)
                counts[~cov.field_mask] = np.nan
                fig, ax = plt.subplots(figsize=(8, 6))
                extent = (cov.origin[0], cov.origin[0] + cov.width * cov.cell_m,
                          cov.origin[1], cov.origin[1] + cov.height * cov.cell_m)
                cmap = ListedColormap(["#d62728", "#2ca02c", "#ff7f0e", "#9467bd"])
                im = ax.imshow(counts, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=3.5,
                               interpolation="nearest")
                ring = np.vstack([cov.polygon, cov.polygon[:1]])
                ax.plot(ring[:, 0], ring[:, 1], "k-", lw=1)
                inner = self._inner_field(name)
                if inner is not None and not inner.is_empty and inner.geom_type == "Polygon":
                    xi, yi = inner.exterior.xy
                    ax.plot(xi, yi, "k--", lw=0.8, label="inner field (headland boundary)")
                    ax.legend(fontsize=7, loc="upper right")
                cbar = fig.colorbar(im, ax=ax, ticks=[0, 1, 2, 3])
                cbar.ax.set_yticklabels(["missed", "once", "twice", "3+"])
                c, d = cov.ratios()
                ax.set_title(f"{name}: ground-truth coverage {100 * c:.1f}% of the field, double {100 * d:.1f}%")
                ax.set_aspect("equal")
                ax.set_xlabel("x east [m]")
                ax.set_ylabel("y north [m]")
                fig.tight_layout()
                fig.savefig(self.out_dir / f"coverage_{name}.png", dpi=110)
                plt.close(fig)
        except Exception as exc:  # a plot must never lose the run's summary
            print(f"warning: could not save coverage maps: {exc}", file=sys.stderr)

    def shutdown(self):
        if self.foxglove is not None:
            try:
                self.foxglove.close()
            except Exception:
                pass
            self.foxglove = None
        for node in list(self.nodes.values()):
            try:
                node.destroy_node()
            except Exception:
                pass
        for n in (self.sim, self.monitor):
            if n is not None:
                try:
                    n.destroy_node()
                except Exception:
                    pass
        try:
            self.executor.shutdown()
        except Exception:
            pass
        self.context.try_shutdown()

    def interrupt(self, *_):
        """SIGINT/SIGTERM: the run ends now. Ctrl-C reaches every node of the process group at once, so the
        commands the wheels stop getting from here on are the shutdown, not a fault: the fault window closes."""
        self._interrupted = True
        if self.sim is not None:
            self.close_fault_window()


def _noop():
    return None


class MissionGoal:
    """One robot's mission goal: sent with the action's default goal (the mission's configured task) as soon
    as the server is available; feedback and the result are kept for the summary."""

    def __init__(self, node, action_name: str, type_ref: str, robot: str = "", key_file=None, seed: int = 0):
        import importlib

        from rclpy.action import ActionClient

        from agricare.core.security.keys import load_signing_key

        mod, name = type_ref.split(":")
        self.action_type = getattr(importlib.import_module(mod), name)
        self.name = action_name
        self.client = ActionClient(node, self.action_type, action_name)
        self.goal_future = None
        self.handle = None
        self.result_future = None
        self.feedback = None
        self.status = "not sent"
        self._retry_in = 0
        self.robot = robot
        self.key = load_signing_key(key_file) if key_file else None
        self.seed = int(seed)
        self._n_sent = 0

    def goal(self):
        """The action's default goal (the mission's configured task), signed for this robot."""
        from agricare.ros.signed import sign_message

        g = self.action_type.Goal()
        if self.key is not None:
            sign_message(g, self.key, kind="mission_goal", target=self.robot)
        return g

    def goal_uuid(self, n: int):
        """The ``n``-th goal's id, from the run's seed and the action's name (rclpy draws a random one): the same
        in every run of a scenario, unique within it."""
        import hashlib

        from unique_identifier_msgs.msg import UUID

        digest = hashlib.sha256(f"agricare-goal:{self.seed}:{self.name}:{n}".encode()).digest()
        return UUID(uuid=list(digest[:16]))

    def poll(self):
        if self.status == "rejected":  # e.g. the plan is not there yet: try again a little later
            self._retry_in -= 1
            if self._retry_in > 0:
                return
            self.goal_future = self.handle = None
            self.status = "not sent"
        if self.goal_future is None:
            if self.client.server_is_ready():
                self.goal_future = self.client.send_goal_async(
                    self.goal(), feedback_callback=lambda m: setattr(self, "feedback", m.feedback),
                    goal_uuid=self.goal_uuid(self._n_sent))
                self._n_sent += 1
                self.status = "sent"
            return
        if self.handle is None and self.goal_future.done():
            self.handle = self.goal_future.result()
            self.status = "accepted" if self.handle.accepted else "rejected"
            self._retry_in = 50
            if self.handle.accepted:
                self.result_future = self.handle.get_result_async()
        if self.result_future is not None and self.result_future.done() and self.status == "accepted":
            from action_msgs.msg import GoalStatus

            res = self.result_future.result()
            self.status = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_CANCELED: "canceled",
                           GoalStatus.STATUS_ABORTED: "aborted"}.get(res.status, f"status {res.status}")

    @property
    def waiting(self) -> bool:
        """Sent or accepted, its result not in yet."""
        return self.status in ("sent", "accepted")

    def summary(self) -> dict:
        out = {"action": self.name, "status": self.status}
        if self.status == "accepted":   # e.g. a care shuttle with done_when_served still driving to its parking
            out["result"] = "not yet: the run ended while the goal was still running"
        return out


def expand_out(params: dict, out_dir) -> dict:
    """Parameters with ``${out}`` in string values replaced by the run's output directory (records, maps)."""
    out = str(out_dir) if out_dir is not None else "out"
    return {k: (v.replace("${out}", out) if isinstance(v, str) else v) for k, v in params.items()}


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, pathlib.Path):
        return str(o)
    return str(o)


LONG_LIST = 12   # mission detail lists longer than this go into their own CSV, summary.json keeps a reference


def _split_long_lists(missions: dict, out_dir: pathlib.Path) -> None:
    """Move long lists of mission details (low-cover cells, gaps, ...) into ``<robot>_<key>.csv``."""
    import csv

    for robot, st in missions.items():
        detail = st.get("detail") if isinstance(st, dict) else None
        if not isinstance(detail, dict):
            continue
        for key, value in list(detail.items()):
            if not isinstance(value, list) or len(value) <= LONG_LIST:
                continue
            name = f"{robot}_{key}.csv"
            with open(out_dir / name, "w", newline="") as f:
                wr = csv.writer(f)
                for row in value:
                    wr.writerow(row if isinstance(row, (list, tuple)) else [json.dumps(row) if isinstance(row, dict)
                                                                            else row])
            detail[key] = {"csv": name, "count": len(value)}


def _jsonable(d):
    return json.loads(json.dumps(d, default=_json_default, allow_nan=True))


# ---------------------------------------------------------------------------------------------- multiprocess
def write_params_file(spec: NodeSpec, directory: pathlib.Path, out_dir=None) -> pathlib.Path:
    params = expand_out(spec.params, out_dir)
    params["use_sim_time"] = True
    f = directory / f"{spec.fqn.strip('/').replace('/', '__')}.yaml"
    f.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=True))
    return f


def process_command(spec: NodeSpec, params_file: pathlib.Path) -> list[str]:
    """Command line of one node process, the same ``ros2 run`` would execute."""
    code = f"import sys; from agricare.nodes.{spec.node} import main; sys.exit(main())"
    cmd = [sys.executable, "-c", code] + _ros_args(spec)
    if spec.namespace:
        cmd += ["-r", f"__ns:={spec.namespace}"]
    cmd += ["--params-file", str(params_file)]
    return cmd


def run_multiprocess(graph: Graph, out_dir, seed=0, max_sim_s=None, real_time_factor=1.0, progress=print,
                     until_done=True, supervision=None, hooks=None, sim_cli_args=None,
                     catch_up: bool = False) -> RunResult:
    """One process per node; the simulator (with the recorder) runs here, paced at ``real_time_factor``.

    The node processes are supervised (:mod:`agricare.bringup.supervise`): a node that dies or stops
    answering fails the run (exit code 3, ``node_failures`` in summary.json), restartable nodes are
    restarted with backoff, any other failure lets the robot stop for ``fault_grace_s`` and ends the run.
    SIGINT/SIGTERM stop the graph with every node's zero command recorded. ``hooks`` (fault injection):
    an object with optional ``setup(runner, supervisor)``, ``step(runner, supervisor)`` and
    ``finish(runner, supervisor) -> dict`` (merged into summary.json). ``catch_up``: a simulator that fell
    behind real time steps back to back until it has caught up (the old pacing; for comparison only).
    """
    from agricare.bringup.supervise import EXIT_NODE_FAILED, ProcessSupervisor, SupervisionParams

    params = supervision or SupervisionParams()
    runner = EmbeddedRunner(graph, out_dir, seed, max_sim_s, until_done, progress)
    runner.sim_cli_args = sim_cli_args
    with tempfile.TemporaryDirectory(prefix="agricare_params_") as tmp:
        sup = ProcessSupervisor(
            graph.nodes, lambda s: process_command(s, write_params_file(s, pathlib.Path(tmp), out_dir)),
            params, progress)
        old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in old:
            signal.signal(sig, runner.interrupt)
        saved = graph.nodes
        reason = "max_sim_s"
        wall0 = time.monotonic()
        t_fatal = None
        rec_warned = False
        pacing = {"dropped_s": 0.0, "drops": 0}   # wall time the simulator gave up instead of catching up
        try:
            sup.start_all()
            graph.nodes = []  # this process runs only the simulator and the monitor
            try:
                runner.build(isolate=False)
            finally:
                graph.nodes = saved
            sup.attach(runner.monitor)
            if hooks is not None and hasattr(hooks, "setup"):
                hooks.setup(runner, sup)
            _wait_ready(runner, sup, progress)
            wall0 = pace0 = time.monotonic()
            step = graph.run.step_dt_s
            limit = runner.max_sim_s
            while runner.sim_time() < limit:
                if runner._interrupted:
                    reason = "interrupted"
                    break
                # the decisions that came in while this process waited for the wall clock reach the wheels before
                # the step, as a motor controller applies a command when it arrives (taken after the step, every
                # decision drove the world one step late: 50 ms of its 0.25 s deadline gone)
                runner.spin_some(8)
                runner.sim.step_once()
                runner.spin_some(8)
                if runner.recorder is not None:
                    runner.recorder.poll()
                if hasattr(runner, "send_goals"):
                    runner.send_goals()
                t = runner.sim_time()
                if runner.recorder is not None and int(t / step) % 50 == 0:
                    runner.recorder.discover()
                if hooks is not None and hasattr(hooks, "step"):
                    hooks.step(runner, sup)
                if runner.recorder is not None and runner.recorder.error and not rec_warned:
                    rec_warned = True
                    print(f"[agricare] {runner.recorder.error} (the robots go on)", file=sys.stderr, flush=True)
                if not runner._interrupted:
                    sup.poll(t)
                if sup.fatal is not None and t_fatal is None:
                    t_fatal = t
                    reason = f"node failed: {sup.fatal.node} ({sup.fatal.cause})"
                    progress(f"agricare run: {reason}: the robot's graph shuts down after "
                             f"{params.fault_grace_s:.0f} s for the safe stop")
                if t_fatal is not None and t >= t_fatal + params.fault_grace_s:
                    break
                if t_fatal is None and until_done and runner.finished_with_results(t):
                    reason = "missions finished"
                    break
                if real_time_factor > 0:
                    ahead = t / real_time_factor - (time.monotonic() - pace0)
                    if ahead > 0:
                        time.sleep(min(ahead, 0.05))
                    elif ahead < -step / real_time_factor and not catch_up:
                        # behind by more than a step (this process was starved): the world does not race
                        # ahead to catch up. Stepping back to back would advance simulated time faster than
                        # the node processes can answer, and their decisions would reach the wheels late on
                        # the simulator's clock although they were on time. The lost time is dropped (the
                        # run's real-time factor drops): simulated time never runs faster than real time,
                        # so a decision the wheels refuse as late was late in wall time too.
                        lag = -ahead - step / real_time_factor
                        pace0 += lag
                        pacing["dropped_s"] += lag
                        pacing["drops"] += 1
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            wall = time.monotonic() - wall0
            t_end = runner.sim_time() if runner.sim is not None else 0.0
            runner.close_fault_window()
            if runner.sim is not None:
                sup.stop_all(spin=lambda: _paced_step(runner, step_dt=graph.run.step_dt_s))
            else:
                sup.stop_all()
            for sig, h in old.items():
                signal.signal(sig, h)
        runner._t_stop = runner.sim_time()
        runner._stop()
        extra = hooks.finish(runner, sup) if hooks is not None and hasattr(hooks, "finish") else {}
        result = runner._finish(reason, wall)
        reason = result.stopped_because   # with the faults the robots' safety detected
        if sup.failures and result.exit_code != 130:
            result.exit_code = EXIT_NODE_FAILED
        rec_error = runner.recorder.error if runner.recorder is not None else None
        if rec_error:   # the robot may go on; the run's record did not
            if result.exit_code == 0:
                result.exit_code = 1
            reason = f"{reason}; {rec_error}"
            extra = {**(extra or {}), "recording_error": rec_error}
        if real_time_factor > 0:
            pacing = {"target_real_time_factor": real_time_factor,
                      "real_time_factor": round(t_end / wall, 3) if wall > 0 else None,
                      "wall_dropped_s": round(pacing["dropped_s"], 3), "drops": pacing["drops"],
                      "load_avg_1min": round(os.getloadavg()[0], 2)}
            extra = {**(extra or {}), "sim_pacing": pacing}
        if sup.failures or extra:
            result.stopped_because = reason
            _amend_summary(result, {"node_failures": sup.summary(), **(extra or {})})
        runner.shutdown()
        return result


def _paced_step(runner, step_dt):
    runner.sim.step_once()
    runner.spin_some(8)
    time.sleep(step_dt)


def _wait_ready(runner, sup, progress, timeout_s=None):
    """Spin (no simulated time passes) until every node process has said it is alive."""
    deadline = time.monotonic() + (timeout_s or sup.params.startup_timeout_s)
    while time.monotonic() < deadline and not runner._interrupted:
        waiting = [p.fqn for p in sup.procs.values() if p.last_alive is None and p.running()]
        if not waiting:
            return
        if any(not p.running() for p in sup.procs.values()):
            return   # one died while starting: the supervisor reports it on the first poll
        runner.spin_some(8)
        time.sleep(0.05)
    progress("agricare run: some nodes gave no sign of life before the start")


def _amend_summary(result, extra: dict):
    result_path = result.summary_path
    if result_path is None:
        return
    data = json.loads(result_path.read_text())
    data.update(_jsonable(extra))
    data["exit_code"] = result.exit_code
    data["stopped_because"] = result.stopped_because
    result_path.write_text(json.dumps(data, indent=2, default=_json_default))


__all__ = ["EmbeddedRunner", "RunResult", "run_multiprocess", "to_parameters", "GraphError"]

def _run_one(executor, nodes) -> bool:
    """Run one ready callback of ``nodes`` (every node of ``executor`` when None) and say whether one ran. An
    exception the callback raised is raised here: rclpy's executor keeps it on the handler."""
    from rclpy.executors import ShutdownException, TimeoutException

    try:
        handler, _entity, _node = executor.wait_for_ready_callbacks(timeout_sec=0.0, nodes=nodes)
    except (TimeoutException, ShutdownException):
        return False
    handler()
    exc = handler.exception()
    if exc is not None:
        raise exc
    return True
