"""Fault injection into a running multi-process graph (``agricare chaos``), measured on simulator ground truth.

A fault is written ``KIND[@t=SECONDS[,d=SECONDS]][:TARGET]`` (simulated time of the fault, its duration):

=================  ==========================================================================================
kind               what happens (TARGET)
=================  ==========================================================================================
kill               SIGKILL of the node process (node, e.g. ``/tractor/safety_supervisor_node``; ``base``: the
                   base driver's process on its rig, ``safe_base``: the safe base's, see
                   :mod:`agricare.bringup.chaos_serial`)
freeze             SIGSTOP of the node process for ``d`` s (default 5), then SIGCONT (node, ``base``, ``safe_base``)
drop               messages of the topic are not delivered for ``d`` s (default: to the end) (topic)
delay              messages of the topic are delivered ``delay_s`` = 1 s late (topic)
duplicate          every message of the topic is delivered twice (topic)
reorder            messages of the topic are delivered pairwise swapped (topic)
nan                the topic's values are NaN (twist, ranges, position, orientation, ...) (topic)
range              the topic's values are out of range (1e3 m/s, -5 m ranges, 200 deg latitude) (topic)
gnss_jump          the GNSS fix jumps 50 m north (robot)
scan_blind         the scanner is blinded: every range 0 (below range_min) (robot)
odom_frozen        wheel odometry repeats its last pose and twist with fresh stamps (robot)
imu_stuck          the IMU repeats its last reading with fresh stamps (robot)
camera_black       camera images are all zero (robot)
clock_stall        ``/clock`` is not published for ``d`` s (default 5) while the world goes on
clock_jump         ``/clock`` jumps back by ``d`` s (default 10) and stays behind the world
clock_skew         one process's clock runs ``d`` s (default 2) behind the others from then on (node)
cpu_hog            two busy processes (one per core) for ``d`` s (default 30)
disk_full          the recorder's writes fail with ENOSPC from then on (``recorder``), or the audit logs' node
                   processes can write no byte more (``audit``: their file-size limit, RLIMIT_FSIZE, is set
                   to the audit log's size, so the kernel fails every further write as a full disk would)
serial_unplug      the base driver's serial device disappears for ``d`` s (default 3), then comes back
                   (emulated device on a pty; see :mod:`agricare.bringup.chaos_serial`) (``base``)
=================  ==========================================================================================

Message faults and sensor lies are made by a relay in the runner's process: the topic's producer (the
simulator or the node named in :data:`PRODUCERS`) is remapped to ``chaos_raw/<topic>`` at start, the relay
forwards every message unchanged until the fault is active, then applies it. A robot's plan comes from the
operator: the chaos tool publishes one straight plan per robot (``plan_length_m`` along the start heading,
in the odometry frame) once the robot's odometry is there, and never again: after a fault the robot
moves again only on a fresh goal, which this tool never sends, so any motion after a stop is reported as
"resumed by itself".

Figures of each fault (:class:`FaultResult`) from ground truth: time from the fault to a zero command at
the wheels (the simulator's command input, zero when stale) and to standstill, distance driven after the
fault, contacts while moving, boundary violations, resumed or not, and whether the recording lost data
that it had acknowledged (messages logged before the fault missing from the file).
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

KILL_KINDS = ("kill", "freeze")
MESSAGE_KINDS = ("drop", "delay", "duplicate", "reorder", "nan", "range")
SENSOR_KINDS = {"gnss_jump": "gnss/fix", "scan_blind": "scan", "odom_frozen": "odom", "imu_stuck": "imu/data",
                "camera_black": "camera/image_raw"}
CLOCK_KINDS = ("clock_stall", "clock_jump", "clock_skew")
RESOURCE_KINDS = ("cpu_hog", "disk_full", "serial_unplug")
KINDS = KILL_KINDS + MESSAGE_KINDS + tuple(SENSOR_KINDS) + CLOCK_KINDS + RESOURCE_KINDS
DEFAULT_DURATION_S = {"freeze": 5.0, "clock_stall": 5.0, "clock_jump": 10.0, "clock_skew": 2.0, "cpu_hog": 30.0,
                      "serial_unplug": 3.0}
ENDLESS_KINDS = ("clock_jump", "clock_skew")   # d is an amount, not a duration: the fault lasts to the end

# topic (relative to the robot) -> message type, QoS name
TOPIC_TYPES = {
    "cmd_vel": ("geometry_msgs.msg:TwistStamped", "command"),
    "cmd_vel_smoothed": ("geometry_msgs.msg:TwistStamped", "command"),
    "cmd_vel_nav": ("geometry_msgs.msg:TwistStamped", "command"),
    "odom": ("nav_msgs.msg:Odometry", "sensor"),
    "odometry/filtered": ("nav_msgs.msg:Odometry", "sensor"),
    "scan": ("sensor_msgs.msg:LaserScan", "sensor"),
    "imu/data": ("sensor_msgs.msg:Imu", "sensor"),
    "gnss/fix": ("sensor_msgs.msg:NavSatFix", "sensor"),
    "camera/image_raw": ("sensor_msgs.msg:Image", "sensor"),
}
SIM_TOPICS = ("odom", "scan", "imu/data", "gnss/fix", "camera/image_raw")
# topic -> the node kinds that publish it (the first one in the robot's graph is remapped)
PRODUCERS = {"cmd_vel": ("safety_supervisor_node",), "cmd_vel_smoothed": ("velocity_smoother_node",),
             "cmd_vel_nav": ("controller_node", "row_follower_node"), "odometry/filtered": ("ekf_node",)}
ZERO_MPS = 0.02      # standstill
MOVING_MPS = 0.05
SAMPLE_TOLERANCE_S = 0.05   # one simulator step of the chaos scenarios (dt 0.05 s)
DELAY_S = 1.0


class ChaosError(ValueError):
    pass


@dataclasses.dataclass
class Fault:
    kind: str
    t_s: float = 10.0
    duration_s: float | None = None    # None: to the end of the run (message faults) or the kind's default
    target: str = ""

    @property
    def text(self) -> str:
        d = f",d={self.duration_s:g}" if self.duration_s is not None else ""
        return f"{self.kind}@t={self.t_s:g}{d}" + (f":{self.target}" if self.target else "")


_FAULT_RE = re.compile(r"^(?P<kind>[a-z_]+)(?:@(?P<when>[^:]+))?(?::(?P<target>.+))?$")


def parse_fault(text: str) -> Fault:
    """``KIND[@t=SECONDS[,d=SECONDS]][:TARGET]`` -> :class:`Fault` (raises :class:`ChaosError`)."""
    m = _FAULT_RE.match(text.strip())
    if not m:
        raise ChaosError(f"fault {text!r}: expected KIND[@t=SECONDS[,d=SECONDS]][:TARGET]")
    kind = m["kind"]
    if kind not in KINDS:
        raise ChaosError(f"fault {text!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    f = Fault(kind, duration_s=DEFAULT_DURATION_S.get(kind), target=(m["target"] or "").strip())
    for part in (m["when"] or "").split(","):
        if not part:
            continue
        key, _, val = part.partition("=")
        try:
            x = float(val)
        except ValueError:
            raise ChaosError(f"fault {text!r}: {part!r} is not KEY=SECONDS") from None
        if not (math.isfinite(x) and x >= 0):
            raise ChaosError(f"fault {text!r}: {key} must be a finite number >= 0")
        if key == "t":
            f.t_s = x
        elif key == "d":
            f.duration_s = x
        else:
            raise ChaosError(f"fault {text!r}: unknown key {key!r} (t, d)")
    return f


def resolve(faults, graph) -> list[Fault]:
    """Fill in default targets and check them against the graph."""
    robots = list(graph.robots)
    fqns = {n.fqn for n in graph.nodes}
    out = []
    for f in faults:
        f = copy.copy(f)
        if f.kind in KILL_KINDS and f.target in ("base", "safe_base"):   # the base driver's process, on its rig
            if len(faults) != 1:
                raise ChaosError(f"fault {f.text}: the base driver's faults run on their own rig: give it alone")
        elif f.kind in KILL_KINDS or f.kind == "clock_skew":
            if f.kind == "clock_skew" and not f.target:
                f.target = next((n.fqn for n in graph.nodes if n.node == "velocity_smoother_node"), "")
            if f.target not in fqns:
                raise ChaosError(f"fault {f.text}: target must be one of the graph's nodes: {', '.join(sorted(fqns))}"
                                 + (" or base / safe_base (the base driver, alone or in the safe base, on its rig)"
                                    if f.kind in KILL_KINDS else ""))
        elif f.kind in MESSAGE_KINDS:
            robot, rel = _split_topic(f.target, robots)
            if rel not in TOPIC_TYPES:
                raise ChaosError(f"fault {f.text}: topic must be /<robot>/<one of {', '.join(TOPIC_TYPES)}>")
            if rel not in SIM_TOPICS and _producer(graph, robot, rel) is None:
                raise ChaosError(f"fault {f.text}: no node of {robot} publishes {rel}")
            f.target = f"/{robot}/{rel}"
        elif f.kind in SENSOR_KINDS:
            robot = f.target.strip("/") or robots[0]
            if robot not in robots:
                raise ChaosError(f"fault {f.text}: robot must be one of {', '.join(robots)}")
            f.target = f"/{robot}/{SENSOR_KINDS[f.kind]}"
        elif f.kind == "serial_unplug":
            f.target = f.target or "base"
            if f.target != "base":
                raise ChaosError(f"fault {f.text}: serial_unplug target: base")
            if len(faults) != 1:
                raise ChaosError(f"fault {f.text}: serial_unplug runs on its own rig: give it alone")
        elif f.kind == "disk_full":
            f.target = f.target or "recorder"
            if f.target not in ("recorder", "audit"):
                raise ChaosError(f"fault {f.text}: disk_full target: recorder or audit")
            if f.target == "audit" and not any("audit_log" in n.params for n in graph.nodes):
                raise ChaosError(f"fault {f.text}: no node of this graph writes an audit log")
        out.append(f)
    return out


def _split_topic(target: str, robots) -> tuple[str, str]:
    parts = target.strip("/").split("/", 1)
    if len(parts) != 2 or parts[0] not in robots:
        raise ChaosError(f"topic {target!r}: expected /<robot>/<topic> with robot one of {', '.join(robots)}")
    return parts[0], parts[1]


def _producer(graph, robot: str, rel: str):
    for kind in PRODUCERS.get(rel, ()):
        for spec in graph.nodes:
            if spec.robot == robot and spec.node == kind:
                return spec
    return None


class _FullDisk:
    """A file whose every write fails with ENOSPC (what a full disk does to the recorder)."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, _data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._fh, name)


def fill_disk(pid: int, path) -> bytes:
    """The process ``pid`` can write no byte more to ``path`` (nor grow any file beyond its size): its file-size
    limit (RLIMIT_FSIZE) is set to the file's size now, and the kernel fails every further write, as a full disk
    would (EFBIG instead of ENOSPC; Python ignores SIGXFSZ). Returns the file's complete lines now: the
    records an audit log has acknowledged (each append fsyncs before it returns)."""
    import resource

    path = pathlib.Path(path)
    size = path.stat().st_size if path.exists() else 0
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, hard))
    # read after the limit: a record written between the size and the limit is in the file, and none after it
    data = path.read_bytes() if path.exists() else b""
    return data[:data.rfind(b"\n") + 1]


def audit_lost(acked_by_path: dict) -> str:
    """Audit records acknowledged before the fault that are missing or changed in the file now, the hash chain
    re-verified, and whether anything was written after the fault (then the full disk did not bite)."""
    from agricare.core.missions.audit import verify_log

    lost, parts = 0, []
    for path, acked in acked_by_path.items():
        path = pathlib.Path(path)
        data = path.read_bytes() if path.exists() else b""
        n_acked = acked.count(b"\n")
        kept = data.startswith(acked)
        if not kept:
            lost += n_acked - data[:len(acked)].count(b"\n")
        res = verify_log(path) if path.exists() else None
        after = data[len(acked):].count(b"\n") if kept else 0
        n_file = data.count(b"\n")
        chain = "no file" if res is None else ("verified" if res.ok else "BROKEN: " + res.reason)
        parts.append(f"{path.name}: {n_acked} acknowledged, {n_file} in the file, chain {chain}, {after} written "
                     "after the fault")
        if res is not None and not res.ok:
            lost += max(n_acked - res.n_records, 0)
    head = "none" if lost == 0 else f"{lost} acknowledged before the fault"
    return f"{head} ({'; '.join(parts)})"


def _import(ref: str):
    import importlib

    mod, name = ref.split(":")
    return getattr(importlib.import_module(mod), name)


# ------------------------------------------------------------------------------------------ message faults
def corrupt(msg, kind: str, rel: str):
    """Return ``msg`` with NaN (``kind`` 'nan') or out-of-range ('range') values."""
    bad = float("nan") if kind == "nan" else None
    if rel.startswith("cmd_vel"):
        msg.twist.linear.x = bad if bad is not None else 1e3
        msg.twist.angular.z = bad if bad is not None else -1e3
    elif rel in ("odom", "odometry/filtered"):
        msg.pose.pose.position.x = bad if bad is not None else 1e7
        msg.twist.twist.linear.x = bad if bad is not None else 1e3
    elif rel == "scan":
        n = len(msg.ranges)
        msg.ranges = [bad if bad is not None else -5.0] * n
    elif rel == "imu/data":
        msg.orientation.w = bad if bad is not None else 5.0
        msg.angular_velocity.z = bad if bad is not None else 1e3
    elif rel == "gnss/fix":
        msg.latitude = bad if bad is not None else 200.0
    elif rel == "camera/image_raw":
        msg.data = bytes(len(msg.data))
    return msg


def lie(msg, kind: str, held):
    """The sensor lies; ``held`` is the first message after the fault (frozen/stuck content)."""
    if kind == "gnss_jump":
        msg.latitude += 50.0 / 111_320.0
    elif kind == "scan_blind":
        msg.ranges = [0.0] * len(msg.ranges)
    elif kind == "odom_frozen":
        msg.pose, msg.twist = copy.deepcopy(held.pose), copy.deepcopy(held.twist)
    elif kind == "imu_stuck":
        msg.orientation, msg.angular_velocity = held.orientation, held.angular_velocity
        msg.linear_acceleration = held.linear_acceleration
    elif kind == "camera_black":
        msg.data = bytes(len(msg.data))
    return msg


class Relay:
    """Forwards ``<robot>/chaos_raw/<topic>`` to ``<robot>/<topic>``, applying the faults aimed at it."""

    def __init__(self, node, topic: str, faults, clock):
        from agricare.ros.qos import PROFILES

        robot, rel = topic.strip("/").split("/", 1)
        type_ref, qos = TOPIC_TYPES[rel]
        self.rel, self.faults, self.clock = rel, faults, clock
        self.pub = node.create_publisher(_import(type_ref), topic, PROFILES[qos])
        node.create_subscription(_import(type_ref), raw_topic(topic), self._on_msg, PROFILES[qos])
        self.queue: list = []      # (release time, msg) for delay
        self.held = None           # reorder / frozen content
        self._reorder_pending = False
        self.forwarded = 0
        self.dropped = 0

    def _active(self):
        t = self.clock()
        return [f for f in self.faults if f.t_s <= t and (f.duration_s is None or t < f.t_s + f.duration_s)]

    def _on_msg(self, msg):
        active = self._active()
        kinds = {f.kind for f in active}
        for f in active:   # the fault acts from its first message on: the stop is measured from there
            if getattr(f, "_t_first", None) is None:
                f._t_first = self.clock()
        if not active:
            if self.held is not None and self._reorder_pending:
                self._send(self.held)
            self.held, self._reorder_pending = None, False
            self._send(msg)
            return
        if "drop" in kinds:
            self.dropped += 1
            return
        for k in kinds & set(SENSOR_KINDS):
            if self.held is None:
                self.held = copy.deepcopy(msg)
            msg = lie(msg, k, self.held)
        for k in kinds & {"nan", "range"}:
            msg = corrupt(msg, k, self.rel)
        if "delay" in kinds:
            self.queue.append((self.clock() + DELAY_S, msg))
            return
        if "reorder" in kinds:
            if self.held is None:
                self.held, self._reorder_pending = msg, True
                return
            first, self.held, self._reorder_pending = self.held, None, False
            self._send(msg)
            self._send(first)
            return
        self._send(msg)
        if "duplicate" in kinds:
            self._send(msg)

    def _send(self, msg):
        self.pub.publish(msg)
        self.forwarded += 1

    def tick(self):
        t = self.clock()
        due = [m for (ts, m) in self.queue if ts <= t]
        self.queue = [(ts, m) for (ts, m) in self.queue if ts > t]
        for m in due:
            self._send(m)


def raw_topic(topic: str) -> str:
    robot, rel = topic.strip("/").split("/", 1)
    return f"/{robot}/chaos_raw/{rel}"


# ------------------------------------------------------------------------------------------ results
@dataclasses.dataclass
class FaultResult:
    fault: str
    t_fault_s: float
    speed_at_fault_mps: float
    cmd_zero_after_s: float | None      # the wheels' command input zero (or stale) after the fault
    standstill_after_s: float | None
    distance_after_fault_m: float
    contacts: int
    boundary_violations: int
    resumed: str
    records_lost: str
    bound_s: float | None
    verdict: str
    t_nominal_s: float | None = None    # the fault's time as asked (t_fault_s: when it was actually applied)


class ChaosHooks:
    """Hooks for :func:`agricare.bringup.runner.run_multiprocess`: the operator's plan, the relays, the
    faults at their times, and the ground-truth trace."""

    def __init__(self, graph, faults, plan_length_m: float = 95.0, bounds: dict | None = None):
        self.graph = graph
        self.faults = list(faults)
        self.plan_length_m = plan_length_m
        self.bounds = bounds or {}
        self.relays: dict[str, Relay] = {}
        self.trace: list[tuple] = []          # (t, robot, v, cmd_v_effective, x, y, age of an applied non-zero cmd)
        self.done: set[int] = set()
        self.ended: set[int] = set()
        self.events: list[str] = []
        self._plans = {}
        self._hogs: list[subprocess.Popen] = []
        self._clock_fault = None
        self._rec_logged_at_fault = None
        self.cmd_rx: dict[str, list] = {}      # robot -> [(wall s, sim s, v)] of cmd_vel as received
        self._remap: list[str] = []
        self.readers: dict[str, list] = {}     # relayed topic -> nodes reading it (at the end of the run)
        self._skews: list = []                 # (clock_skew fault, the node's own /clock topic)
        self._skew_pubs: list = []
        self._rec_logged_then = None
        self._audit_at_fault: dict[str, bytes] = {}   # audit log -> its bytes acknowledged at the fault
        self.applied_at: dict[int, float] = {}   # fault index -> simulated time it was injected

    # -------------------------------------------------------------- set-up (before the processes start)
    def prepare(self):
        """Remap the producers of faulted topics; returns the simulator's extra cli args."""
        sim_args = []
        for f in self.faults:
            if f.kind == "clock_skew":   # the node's /clock comes from the chaos tool, skewed from the fault on
                spec = next(n for n in self.graph.nodes if n.fqn == f.target)
                topic = "/chaos_clock" + spec.fqn
                spec.remap["/clock"] = topic
                self._skews.append((f, topic))
                continue
            if f.kind not in MESSAGE_KINDS and f.kind not in SENSOR_KINDS:
                continue
            robot, rel = f.target.strip("/").split("/", 1)
            if any(r == f.target for r in self._remapped()):
                continue
            self._remap.append(f.target)
            if rel in SIM_TOPICS:
                sim_args += ["-r", f"{f.target}:={raw_topic(f.target)}"]
            else:
                spec = _producer(self.graph, robot, rel)
                spec.remap[f.target] = raw_topic(f.target)
        return ["--ros-args"] + sim_args if sim_args else None

    def _remapped(self):
        return self._remap

    def setup(self, runner, sup):
        from geometry_msgs.msg import TwistStamped
        from nav_msgs.msg import Odometry, Path

        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        from agricare.ros.qos import LATCHED_QOS, SENSOR_QOS

        node = runner.monitor
        clock = runner.sim_time
        if self._skews:
            from rosgraph_msgs.msg import Clock

            from agricare.ros.qos import RELIABLE_QOS

            self._skew_pubs = [(f, node.create_publisher(Clock, topic, RELIABLE_QOS)) for f, topic in self._skews]
            self._install_clock(runner)
        for topic in dict.fromkeys(self._remap):
            self.relays[topic] = Relay(node, topic, [f for f in self.faults if f.target == topic], clock)
        for robot in self.graph.robots:
            cmd_topic = f"/{robot}/cmd_vel"
            if cmd_topic in self.relays:
                cmd_topic = raw_topic(cmd_topic)
            self.cmd_rx[robot] = []
            # every command (depth 100, not the command QoS's 1): a loaded runner must not see gaps that a
            # depth-1 queue made by keeping only the newest
            node.create_subscription(TwistStamped, cmd_topic, lambda m, r=robot: self.cmd_rx[r].append(
                (time.monotonic(), clock(), m.twist.linear.x, m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)),
                QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE))
            if robot in runner.mission_robots:   # its mission plans (the runner sends its goal)
                continue
            pub = node.create_publisher(Path, f"/{robot}/plan", LATCHED_QOS)
            # the plan is made in the frame of the pose the robot's controller follows
            ctrl = next((n for n in self.graph.nodes if n.robot == robot and n.node == "controller_node"), None)
            odom_topic = f"/{robot}/" + str((ctrl.params if ctrl else {}).get("odom_topic", "odom")).strip("/")
            if odom_topic in self.relays:
                odom_topic = raw_topic(odom_topic)
            node.create_subscription(Odometry, odom_topic, lambda m, r=robot, p=pub: self._first_odom(r, p, m),
                                     SENSOR_QOS)

    def _first_odom(self, robot, pub, msg):
        if robot in self._plans:
            return
        path = straight_plan(msg, self.plan_length_m)
        pub.publish(path)
        self._plans[robot] = path
        self.events.append(f"plan sent to {robot} ({self.plan_length_m:.0f} m) at sim {msg.header.stamp.sec} s")

    # -------------------------------------------------------------- every step
    def step(self, runner, sup):
        t = runner.sim_time()
        w = runner.sim.world
        for name, r in w.robots.items():
            v, _ = w.velocity(name)
            stale = w.command_stale(name, t)
            cmd = 0.0 if stale else r.cmd_v
            x, y = r.vehicle.x_m, r.vehicle.y_m
            # the age of the decision the wheels apply (its stamp against sim time; None: nothing applied)
            age = None if stale or abs(cmd) < 1e-9 else float(t - r.cmd_t)
            self.trace.append((t, name, float(v), float(cmd), float(x), float(y), age))
        for relay in self.relays.values():
            relay.tick()
        for i, f in enumerate(self.faults):
            if i not in self.done and t >= f.t_s:
                self.done.add(i)
                self.applied_at[i] = t
                self._inject(f, runner, sup)
            if (i in self.done and i not in self.ended and f.duration_s is not None and f.kind not in ENDLESS_KINDS
                    and t >= f.t_s + f.duration_s):
                self.ended.add(i)
                self._end(f, runner, sup)

    def _inject(self, f: Fault, runner, sup):
        t = runner.sim_time()
        self.events.append(f"{t:.2f} s: {f.text}")
        print(f"[chaos] sim {t:.2f} s: inject {f.text}", file=sys.stderr, flush=True)
        if f.target in self.relays:   # who reads the faulted topic (the graph is up now)
            infos = runner.monitor.get_subscriptions_info_by_topic(f.target)
            self.readers[f.target] = sorted({i.node_name for i in infos
                                             if i.node_name != runner.monitor.get_name()})
        if f.kind in KILL_KINDS:
            pid = sup.pid_of(f.target)
            if pid is None:
                self.events.append(f"  {f.target} not running")
                return
            os.kill(pid, signal.SIGKILL if f.kind == "kill" else signal.SIGSTOP)
            f._pid = pid
        elif f.kind == "clock_skew":
            f._active = True        # the skewed /clock of its node (published with the simulator's clock)
        elif f.kind in CLOCK_KINDS:
            self._install_clock(runner)
            self._clock_fault = f
        elif f.kind == "cpu_hog":
            code = "import time\nend = time.monotonic() + %f\nwhile time.monotonic() < end:\n    pass\n" % (
                f.duration_s or 30.0)
            self._hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
        elif f.kind == "disk_full" and f.target == "audit":
            self._fill_audit_disks(runner, sup)
        elif f.kind == "disk_full" and runner.recorder is not None:
            rec = runner.recorder
            self._rec_logged_at_fault = rec.acked          # flushed and fsynced: acknowledged
            self._rec_logged_then = sum(rec.counts.values())
            writer = rec._writer
            writer._Writer__stream = _FullDisk(writer._Writer__stream)

    def _fill_audit_disks(self, runner, sup):
        """Every node process that writes an audit log: no byte more (see :func:`fill_disk`)."""
        from agricare.bringup.runner import expand_out

        for spec in self.graph.nodes:
            if "audit_log" not in spec.params:
                continue
            path = pathlib.Path(expand_out(spec.params, runner.out_dir)["audit_log"])
            pid = sup.pid_of(spec.fqn)
            if pid is None:
                self.events.append(f"  {spec.fqn} not running: its audit log not filled")
                continue
            acked = fill_disk(pid, path)
            self._audit_at_fault[str(path)] = acked
            n_acked = acked.count(b"\n")
            self.events.append(f"  {spec.fqn}: audit log {path.name} full ({n_acked} records acknowledged)")

    def _audit_lost(self) -> str:
        if not self._audit_at_fault:
            return "no audit log"
        return audit_lost(self._audit_at_fault)

    def _end(self, f: Fault, runner, sup):
        if f.kind == "freeze":
            pid = getattr(f, "_pid", None)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        elif f.kind in CLOCK_KINDS and f.kind == "clock_stall":
            self._clock_fault = None

    def _install_clock(self, runner):
        """Route the simulator's /clock through the chaos tool: stalled or wound back (clock faults) and,
        for a node with its own /clock (clock_skew), skewed from the fault on."""
        pub = runner.sim._clock_pub
        if not hasattr(pub, "_chaos_real_publish"):
            real = pub.publish
            pub._chaos_real_publish = real

            def publish(msg, _real=real, hooks=self):
                ns0 = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec
                for sf, spub in hooks._skew_pubs:
                    m = copy.deepcopy(msg)
                    ns = max(ns0 - (int((sf.duration_s or 2.0) * 1e9) if getattr(sf, "_active", False) else 0), 0)
                    m.clock.sec, m.clock.nanosec = divmod(ns, 1_000_000_000)
                    spub.publish(m)
                cf = hooks._clock_fault
                if cf is None:
                    return _real(msg)
                if cf.kind == "clock_stall":
                    return None
                ns = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec - int((cf.duration_s or 10.0) * 1e9)
                ns = max(ns, 0)
                msg.clock.sec, msg.clock.nanosec = divmod(ns, 1_000_000_000)
                return _real(msg)

            pub.publish = publish

    # -------------------------------------------------------------- results
    def finish(self, runner, sup) -> dict:
        for p in self._hogs:
            if p.poll() is None:
                p.kill()
            p.wait()
        results = [dataclasses.asdict(r) for r in self.results(runner, sup)]
        relay = {t: {"forwarded": r.forwarded, "dropped": r.dropped, "readers": self.readers.get(t)}
                 for t, r in self.relays.items()}
        return {"chaos": {"faults": [f.text for f in self.faults], "events": self.events, "results": results,
                          "relays": relay, "safety_loop": self.loop_jitter(),
                          "load_avg_1min": round(os.getloadavg()[0], 2)}}

    def loop_jitter(self) -> dict:
        """The safety loop's period as its watchdog sees it: gaps between the stamps (its clock at each cycle) of
        consecutive commands it sent, before the first fault (a fault may stop the loop on purpose)."""
        t_first = min((f.t_s for f in self.faults), default=float("inf"))
        out = {}
        for robot, rx in self.cmd_rx.items():
            stamps = sorted({r[3] for r in rx if 0.0 < r[3] < t_first})
            gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
            if not gaps:
                continue
            over = sum(1 for g in gaps if g > 0.25)   # the supervisor's default loop watchdog
            out[robot] = {"cycles": len(gaps), "p50_s": round(gaps[len(gaps) // 2], 3),
                          "p99_s": round(gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], 3),
                          "max_s": round(gaps[-1], 3), "over_loop_timeout": over}
        return out

    def results(self, runner, sup) -> list[FaultResult]:
        w = runner.sim.world
        out = []
        rec_stats = runner.recorder.stats() if runner.recorder is not None else None
        for i, f in enumerate(self.faults):
            robot = self._robot_of(f)
            t_from = self.applied_at_s(i)
            audit_note = ""
            if f.kind == "disk_full" and f.target == "audit":
                # a full disk changes nothing until a record must be written: the behaviour is judged from the
                # first refused record (the audit writer's fault report), and the robot may drive until then
                writers = [n.fqn for n in self.graph.nodes if "audit_log" in n.params]
                refused = [x for x in runner.safety_faults if x["sim_time_s"] is not None and x["sim_time_s"] >= f.t_s
                           and any(x["fault"].startswith(w) for w in writers) and "audit" in x["fault"]]
                if refused:
                    t_from = refused[0]["sim_time_s"]
                    robot = refused[0]["robot"]
                    audit_note = f"; first refused record at {t_from:.1f} s, judged from there"
                else:
                    audit_note = "; no record refused before the end of the run"
            rows = [r for r in self.trace if r[1] == robot and r[0] >= t_from]
            if not rows:
                out.append(FaultResult(f.text, f.t_s, 0.0, None, None, 0.0, 0, 0, "not reached", "-", None,
                                       "not injected (run ended before)"))
                continue
            v0 = abs(rows[0][2])
            t_cmd0 = next((r[0] for r in rows if abs(r[3]) < 1e-6), None)
            t_still = next((r[0] for r in rows if abs(r[2]) < ZERO_MPS), None)
            dist = sum(math.hypot(b[4] - a[4], b[5] - a[5]) for a, b in zip(rows, rows[1:]))
            resumed = "no"
            if t_still is not None:   # moving again after standing (a late command after a gap is not it)
                again = [r for r in rows if r[0] > t_still and abs(r[2]) > MOVING_MPS]
                if again:
                    resumed = f"by itself at {again[0][0]:.1f} s (no fresh goal was sent)"
            contacts = sum(1 for c in w.contacts if c.robot == robot and abs(c.robot_speed_mps) > MOVING_MPS)
            bounds = sum(1 for b in w.boundary_violations if b.robot == robot)
            lost = "-"
            if f.kind == "disk_full" and f.target == "audit":
                lost = self._audit_lost() + audit_note
            elif f.kind == "disk_full" and rec_stats is not None:
                lost = self._records_lost(runner)
            if f.kind == "cpu_hog":
                lost = self._loop_figures(robot, f, runner)
            bound = self.bound_for(f, v0)
            readers = self.readers.get(f.target)
            if readers is not None and not readers:
                out.append(FaultResult(f.text, round(f.t_s, 3), round(v0, 3), None, None, round(dist, 2), contacts,
                                       bounds, resumed, lost, None,
                                       f"not exercised: no node of this graph reads {f.target}"))
                continue
            t_cmd = None if t_cmd0 is None else round(t_cmd0 - t_from, 3)
            verdict = self._verdict(f, v0, t_cmd, None if bound is None else round(bound, 3), contacts,
                                    bounds, resumed, lost, t_still)
            bound = None if bound is None else round(bound, 3)
            out.append(FaultResult(f.text, round(t_from, 3), round(v0, 3), t_cmd,
                                   None if t_still is None else round(t_still - t_from, 3), round(dist, 2),
                                   contacts, bounds, resumed, lost, bound, verdict, f.t_s))
        return out

    def applied_at_s(self, i: int) -> float:
        """Simulated time at which fault ``i`` took effect: its injection (the first simulator step at or after
        its time: a kill, a freeze, the clock, the hog, a full disk) or, for a fault a relay applies, the first
        message it changed (a message fault does nothing before a message comes). Stops are measured from here,
        not from the nominal time, which can lie a step before."""
        f = self.faults[i]
        t = max(self.applied_at.get(i, f.t_s), f.t_s)
        first = getattr(f, "_t_first", None)
        return max(t, first) if first is not None else t

    def _loop_figures(self, robot, f, runner=None) -> str:
        """Safety loop under the hog. The world runs on the simulator's clock, which the hog slows too, so the
        decisions are judged on it: the gaps between the supervisor's cycles (its command stamps), a non-zero
        command after a cycle later than its loop watchdog, the stops the wheels made because a decision was
        older than their bound (``cmd_max_age_s``, the safety loop's deadline) and, from the wheels' side, the
        non-zero decisions they applied older than that bound (the decision's stamp against the simulator's
        time at each step). Wall-clock gaps for reference."""
        t1 = f.t_s + (f.duration_s or 30.0)
        lim = self.bounds.get("loop_timeout_s", 0.25)
        max_age = float(getattr(getattr(getattr(runner, "sim", None), "params", None), "cmd_max_age_s", 0.0) or 0.0)
        rx = [r for r in self.cmd_rx.get(robot, []) if f.t_s <= r[1] <= t1]
        before = [r for r in self.cmd_rx.get(robot, []) if r[1] < f.t_s]
        applied = [r[6] for r in self.trace if r[1] == robot and f.t_s <= r[0] <= t1 and r[6] is not None]
        steps = [r for r in self.trace if r[1] == robot and f.t_s <= r[0] <= t1]
        wheel_stops = sum(1 for a, b in zip(steps, steps[1:]) if abs(a[3]) > 1e-6 and abs(b[3]) < 1e-6)
        bound = max_age if max_age > 0 else lim
        stale = sum(1 for age in applied if age > bound + 1e-9)
        oldest = f"{max(applied) * 1e3:.0f} ms" if applied else "-"
        if len(rx) < 2:
            return (f"loop stopped sending -- {len(rx)} commands during the hog; non-zero decisions older "
                    f"than {bound:g} s at the wheels: {stale}")
        stamps = sorted({r[3] for r in rx})
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:])) or [0.0]
        p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
        by_stamp = sorted(rx, key=lambda r: r[3])
        late_cycle = sum(1 for a, b in zip(by_stamp, by_stamp[1:]) if b[3] - a[3] > lim and abs(b[2]) > 1e-6)
        late_deadline = sum(1 for g in gaps if g > bound)
        wall = sorted(b[0] - a[0] for a, b in zip(rx, rx[1:]))
        base = [b[0] - a[0] for a, b in zip(before, before[1:])]
        ref = f", before {max(base) * 1e3:.0f} ms" if base else ""
        # which of the two the issue allows happened: the loop kept its deadline, or it missed it and the robot
        # stopped (the wheels refused the late decisions); driving on a stale one is the failure (the verdict)
        if late_deadline == 0 and wheel_stops == 0:
            head = f"loop kept its {bound:g} s deadline"
        else:
            head = (f"loop missed its {bound:g} s deadline: {late_deadline} late cycle(s), {wheel_stops} wheel stop(s) "
                    "on an out-of-date decision")
        return (f"{head} -- cycle gaps (sim) p99 {p99 * 1e3:.0f} ms max {gaps[-1] * 1e3:.0f} ms; wall max "
                f"{wall[-1] * 1e3:.0f} ms"
                f"{ref}; cycles later than {bound:g} s: {late_deadline}; wheel stops on an out-of-date decision: "
                f"{wheel_stops}; oldest decision applied {oldest}; non-zero commands after a late cycle: {late_cycle}; "
                f"non-zero decisions older than {bound:g} s at the wheels: {stale}")

    def _records_lost(self, runner) -> str:
        """Messages the recorder had acknowledged (flushed and fsynced) before the fault, read back from the
        file (an MCAP cut short by the full disk keeps what was flushed); messages logged since the last
        flush were never acknowledged and are counted apart."""
        acked = self._rec_logged_at_fault
        path = runner.out_dir / "recording.mcap" if runner.out_dir is not None else None
        if acked is None or path is None or not path.exists():
            return "no recording"
        from mcap.records import Message
        from mcap.stream_reader import StreamReader

        n = 0
        with open(path, "rb") as fh:
            try:
                for record in StreamReader(fh).records:
                    n += isinstance(record, Message)
            except Exception:   # the file ends where the full disk cut it: count what is readable
                pass
        pending = (self._rec_logged_then or acked) - acked
        if n >= acked:
            return (f"none ({n} readable, {acked} acknowledged before the fault; {pending} logged since the last "
                    f"flush were not yet acknowledged)")
        return f"{acked - n} of {acked} acknowledged before the fault"

    def _robot_of(self, f: Fault) -> str:
        t = f.target.strip("/")
        if "/" in t:
            return t.split("/", 1)[0]
        return next(iter(self.graph.robots))

    def bound_for(self, f: Fault, v0: float = 0.0) -> float | None:
        """Allowed time from the fault to a zero command at the wheels: the timeout of the input that catches
        it plus one control cycle. The safe base's faults (stale, NaN or refused inputs, lying sensors, time
        going back) zero the wheels' command at once; only a lost controller is caught by the smoother, whose
        zero the supervisor turns into its jerk-limited stop from the speed at the fault (``max_decel_mps2``,
        ``max_jerk_mps3``); a dead or frozen supervisor: the base's own command timeout."""
        from agricare.bringup.supervise import RESTARTABLE

        b = self.bounds
        cycle = b.get("cycle_s", 0.05)
        node = f.target.rsplit("/", 1)[-1]
        if f.kind in KILL_KINDS and node in RESTARTABLE:
            return None   # a driver or perception node: restarted; the robot stops only if safety needs it
        if f.kind in KILL_KINDS and "safety" in node:
            return b.get("base_timeout_s", 0.5) + cycle
        if f.kind == "duplicate" and not f.target.endswith("/cmd_vel_smoothed"):
            return None   # the same message twice: nothing to stop for (the safe base checks only its command)
        a, j = b.get("max_decel_mps2", 1.5), b.get("max_jerk_mps3", 1e9)
        ramp = abs(v0) / a + a / j   # jerk-limited stop from v0
        if (f.kind in KILL_KINDS and node in ("controller_node", "row_follower_node")) or (
                f.kind in MESSAGE_KINDS and f.target.endswith("/cmd_vel_nav")):
            return b.get("input_timeout_s", 0.5) + cycle + ramp
        if f.kind == "camera_black":   # perception says "no rows" at the next frame; the follower commands zero,
            # which the smoother and then the supervisor ramp down (the slower of the two limits)
            a2, j2 = min(a, b.get("smoother_accel_mps2", a)), min(j, b.get("smoother_jerk_mps3", j))
            return (b.get("camera_period_s", 0.1) + b.get("follower_cycle_s", cycle) + b.get("smoother_cycle_s", cycle)
                    + cycle + abs(v0) / a2 + a2 / j2)   # a frame, then one cycle of each stage, then the ramp
        if f.kind == "gnss_jump":
            stop_s = b.get("gnss_reject_stop_s", 0.0)
            if not stop_s:
                return None   # policy: dead-reckon on and report (the EKF gates the jump out)
            return stop_s + b.get("gnss_period_s", 0.2) + b.get("pose_timeout_s", 1.0) + cycle
        if f.kind in KILL_KINDS or f.kind in MESSAGE_KINDS or f.kind in SENSOR_KINDS or f.kind in CLOCK_KINDS:
            return b.get("input_timeout_s", 0.5) + cycle
        return None

    @staticmethod
    def _verdict(f, v0, t_cmd, bound, contacts, bounds, resumed, note="", t_still=None) -> str:
        problems = []
        # (a fault that needs no stop, bound None: a zero at the wheels is a late decision they refused, not a
        # stop command, and driving on is right)
        if bound is not None and t_cmd is not None and t_still is None and v0 >= MOVING_MPS:
            problems.append("drove on after the stop command (never stood still)")
        if ("non-zero commands after a late cycle: 0" not in note and "non-zero commands after" in note) or (
                "at the wheels: " in note and not note.endswith("at the wheels: 0")):
            problems.append("drove on stale decisions")
        if "acknowledged before the fault" in note and not note.startswith("none"):
            problems.append("recorded messages lost")
        if re.search(r"[1-9]\d* written after the fault", note):
            problems.append("the full disk did not bite (written after the fault)")
        if contacts:
            problems.append(f"{contacts} contact(s)")
        if bounds:
            problems.append(f"{bounds} boundary violation(s)")
        if resumed.startswith("by itself"):
            problems.append("resumed by itself")
        if v0 < MOVING_MPS and f.kind != "disk_full":   # a full disk matters to the records, whatever the speed
            problems.append("robot was not moving at the fault")
        if bound is not None:
            if t_cmd is None:
                problems.append("never stopped")
            # the wheels' command is sampled once per simulator step (cycle_s) and a fault lands between two
            # samples: the measurement resolves the stop to one sample, so one sample is its tolerance
            elif t_cmd > bound + SAMPLE_TOLERANCE_S + 1e-9:
                problems.append(f"stop command {t_cmd:.2f} s > bound {bound:.2f} s")
        if not problems:
            if f.kind == "cpu_hog" and note.startswith("loop "):
                return f"ok ({note.split(' -- ', 1)[0]})"
            if bound is None and t_cmd is None:
                return "ok (kept driving: nothing it needs failed)"
            return "ok"
        return "; ".join(problems)


_verdict_of = ChaosHooks._verdict


def straight_plan(odom_msg, length_m: float, spacing_m: float = 0.5):
    """nav_msgs/Path: a straight line of ``length_m`` from the odometry pose along its heading, in its frame."""
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    q = odom_msg.pose.pose.orientation
    yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
    x0, y0 = odom_msg.pose.pose.position.x, odom_msg.pose.pose.position.y
    path = Path()
    path.header = odom_msg.header
    for i in range(int(length_m / spacing_m) + 1):
        ps = PoseStamped()
        ps.header = odom_msg.header
        ps.pose.position.x = x0 + spacing_m * i * math.cos(yaw)
        ps.pose.position.y = y0 + spacing_m * i * math.sin(yaw)
        ps.pose.orientation = q
        path.poses.append(ps)
    return path


def chaos_graph(graph):
    """A copy of the graph whose node specs can be remapped without touching the caller's."""
    g = copy.copy(graph)
    g.nodes = [dataclasses.replace(n, remap=dict(n.remap)) for n in graph.nodes]
    return g


def run_chaos(scenario, faults, out_dir, seed=0, max_sim_s=None, real_time_factor=1.0, progress=print,
              supervision=None, plan_length_m: float = 95.0, overrides: dict | None = None, hold_s: float = 3.0,
              catch_up: bool = False):
    """Run ``scenario`` with one process per node and inject ``faults`` (texts or :class:`Fault`);
    ``overrides``: node parameters by full node name (``{"/tractor/safety_supervisor_node": {...}}``)."""
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import run_multiprocess

    graph = chaos_graph(load_graph(scenario, overrides))
    parsed = resolve([parse_fault(f) if isinstance(f, str) else f for f in faults], graph)
    from agricare.bringup.chaos_serial import is_rig_fault, run_rig

    if parsed and is_rig_fault(parsed[0]):
        return run_rig(parsed[0], out_dir, progress, hold_s=hold_s)
    hooks = ChaosHooks(graph, parsed, plan_length_m, bounds=safety_bounds(graph))
    sim_args = hooks.prepare()
    result = run_multiprocess(graph, out_dir, seed, max_sim_s, real_time_factor, progress, until_done=False,
                              supervision=supervision, hooks=hooks, sim_cli_args=sim_args, catch_up=catch_up)
    if result.summary_path is not None:   # the summary names the faults beside what ended the run
        import json

        data = json.loads(result.summary_path.read_text())
        data["stopped_because"] = f"{result.stopped_because}; faults injected: {', '.join(f.text for f in parsed)}"
        result.summary_path.write_text(json.dumps(data, indent=2))
        result.stopped_because = data["stopped_because"]
    return result, hooks


def survived(result) -> bool:
    """Every fault of the run measured and judged ok."""
    import json

    rows = json.loads(result.summary_path.read_text()).get("chaos", {}).get("results", [])
    return bool(rows) and all(r["verdict"].startswith("ok") for r in rows)


def safety_bounds(graph) -> dict:
    """The input timeout and control cycle of the robot's safety supervisor (its parameter files and
    scenario overrides), and the base's own command timeout (the simulator's vehicles: 0.5 s)."""
    params = {}
    for spec in graph.nodes:
        if spec.node == "safety_supervisor_node":
            params = dict(spec.params)   # parameter files merged, then the scenario's overrides
            break
    rate = float(params.get("loop_rate_hz", 20.0))
    timeouts = [float(params.get(k, 0.5)) for k in ("cmd_timeout_s", "odom_timeout_s", "scan_timeout_s",
                                                     "imu_timeout_s")]
    ekf = next((dict(n.params) for n in graph.nodes if n.node == "ekf_node"), {})
    smoother = next((dict(n.params) for n in graph.nodes if n.node == "velocity_smoother_node"), {})
    follower = next((dict(n.params) for n in graph.nodes if n.node == "row_follower_node"), {})
    gnss_hz, cam_hz = 5.0, 10.0
    for r in (graph.raw.get("robots") or []):
        gnss_hz = float(((r.get("sensors") or {}).get("gnss") or {}).get("rate_hz", gnss_hz))
        cam_hz = float(((r.get("sensors") or {}).get("camera") or {}).get("rate_hz", cam_hz))
    return {"cycle_s": 1.0 / rate, "input_timeout_s": max(timeouts), "base_timeout_s": 0.5,
            "gnss_reject_stop_s": float(ekf.get("gnss_reject_stop_s", 0.0)), "gnss_period_s": 1.0 / gnss_hz,
            "pose_timeout_s": float(params.get("pose_timeout_s", 1.0)), "camera_period_s": 1.0 / cam_hz,
            "smoother_accel_mps2": float(smoother.get("max_linear_accel_mps2", 1.0)),
            "smoother_jerk_mps3": float(smoother.get("max_linear_jerk_mps3", 5.0)),
            "follower_cycle_s": 1.0 / float(follower.get("rate_hz", 20.0)),
            "smoother_cycle_s": 1.0 / float(smoother.get("rate_hz", 20.0)),
            "loop_timeout_s": float(params.get("loop_timeout_s", 0.25)),
            "max_decel_mps2": float(params.get("max_decel_mps2", 1.5)),
            "max_jerk_mps3": float(params.get("max_jerk_mps3", 3.0))}


def rejudge(row: dict) -> dict:
    """A saved result row judged again with the current rules (bench/chaos.py --render)."""
    f = parse_fault(row["fault"].split(" (")[0])
    out = dict(row)
    # a rig row (the base driver on its emulated device) is judged by the rig's own rules too (motion after an
    # explicit restart, the device's sampling): its stored verdict stands
    if not row["verdict"].startswith("not ") and "(rig" not in row["fault"]:
        out["verdict"] = ChaosHooks._verdict(f, row["speed_at_fault_mps"], row["cmd_zero_after_s"], row["bound_s"],
                                             row["contacts"], row["boundary_violations"], row["resumed"],
                                             row["records_lost"], row["standstill_after_s"])
    return out


def format_table(results, load: str = "") -> str:
    cols = ["fault", "v@fault", "cmd 0 after", "bound", "stopped after", "dist after", "contacts", "bound.viol",
            "resumed", "records lost", "verdict"]
    dicts = [r if isinstance(r, dict) else dataclasses.asdict(r) for r in results]
    extra = [("run_exit", "exit"), ("detected", "run named"), ("load", "load")]
    extra = [(k, c) for k, c in extra if any(k in d for d in dicts)]
    cols += [c for _, c in extra]
    rows = []
    for d in dicts:
        def s(x, fmt="{:.2f}"):
            return "-" if x is None else fmt.format(x)

        rows.append((d["fault"], s(d["speed_at_fault_mps"]), s(d["cmd_zero_after_s"]), s(d["bound_s"]),
                     s(d["standstill_after_s"]), s(d["distance_after_fault_m"]), s(d["contacts"], "{}"),
                     s(d["boundary_violations"], "{}"), d["resumed"], d["records_lost"], d["verdict"])
                    + tuple(s(d.get(k), "{}") for k, _ in extra))
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    line = lambda r: " | ".join(x.ljust(w) for x, w in zip(r, widths))  # noqa: E731
    out = [line(cols), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows]
    if load:
        out.append(load)
    return "\n".join(out)


__all__ = ["ChaosError", "ChaosHooks", "Fault", "FaultResult", "KINDS", "format_table", "parse_fault",
           "resolve", "run_chaos", "safety_bounds", "time"]
