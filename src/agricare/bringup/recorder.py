"""Record every topic of the graph into an MCAP file with ROS 2 message schemas.

The recorder subscribes in raw (serialized CDR) mode, so nothing is deserialised on the hot path, and
writes each message with its ``ros2msg`` schema text (the .msg definition followed by every nested type
after a line of 80 ``=``), exactly what ``ros2 bag`` (rosbag2_storage_mcap) writes, so the file opens in
Foxglove and in rosbag2 tools. Log time is the node clock (simulated time under ``use_sim_time``).
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import re
import time

from mcap.writer import CompressionType, Writer
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

_BUILTINS = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
             "int64", "uint64", "string", "wstring"}


def new_topics(node, known, skipped: dict, excluded):
    """The topics of the graph not in ``known`` / ``skipped`` and not ``excluded(topic)``, with their type:
    yields ``(topic, type_name, message definition text, message class)``; a topic whose type cannot be
    resolved goes into ``skipped`` with the reason (the recorder and the Foxglove view both discover this way)."""
    for topic, types in node.get_topic_names_and_types():
        if topic in known or topic in skipped or excluded(topic):
            continue
        type_name = types[0]
        try:
            text = message_definition(type_name)
            msg_cls = import_type(type_name)
        except (FileNotFoundError, ImportError, AttributeError) as exc:
            skipped[topic] = str(exc)
            continue
        yield topic, type_name, text, msg_cls


def rate_limit_for(max_rate_hz: dict, topic: str) -> float | None:
    """The rate limit (Hz) of ``topic`` from ``{topic or robot-relative name: Hz}``, None when unlimited."""
    for key, hz in max_rate_hz.items():
        if topic == key or topic.endswith("/" + key.lstrip("/")):
            return float(hz)
    return None


class RecorderError(RuntimeError):
    """Recording cannot go on (disk full, file not writable)."""


def _share_dirs() -> list[pathlib.Path]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    import sys

    prefixes.append(sys.prefix)
    return [pathlib.Path(p) / "share" for p in prefixes]


@functools.cache
def _definition_file(type_name: str) -> str:
    """Text of ``pkg/msg/Type`` (or ``pkg/Type``) from an ament share directory."""
    parts = type_name.split("/")
    pkg, kind, name = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "msg", parts[-1])
    for share in _share_dirs():
        f = share / pkg / kind / f"{name}.msg"
        if f.is_file():
            return f.read_text()
    raise FileNotFoundError(f"no definition for {type_name} under AMENT_PREFIX_PATH")


def _field_types(text: str, pkg: str) -> list[str]:
    """Non-builtin field types of a .msg text, as ``pkg/Type`` (constants and builtins skipped)."""
    out = []
    for line in text.splitlines():
        tok = line.split("#", 1)[0].split()
        if len(tok) < 2 or "=" in tok[1]:  # blank, or a constant "uint8 NAME=1"
            continue
        base = re.sub(r"\[.*\]$", "", re.sub(r"<=\d+", "", tok[0]))
        if base in _BUILTINS:
            continue
        if base == "Header":
            out.append("std_msgs/Header")
        elif "/" in base:
            out.append(base)
        else:
            out.append(f"{pkg}/{base}")
    return out


@functools.cache
def message_definition(type_name: str) -> str:
    """The full ``ros2msg`` schema text of a message type like ``nav_msgs/msg/Odometry``."""
    pkg = type_name.split("/")[0]
    root = _definition_file(type_name)
    seen: list[str] = []
    stack = list(_field_types(root, pkg))
    while stack:
        dep = stack.pop(0)
        dep_short = dep.replace("/msg/", "/")
        if dep_short in seen:
            continue
        seen.append(dep_short)
        stack.extend(_field_types(_definition_file(dep_short), dep_short.split("/")[0]))
    parts = [root.rstrip("\n")]
    for dep in seen:
        parts.append("=" * 80 + f"\nMSG: {dep}\n" + _definition_file(dep).rstrip("\n"))
    return "\n".join(parts) + "\n"


class McapRecorder:
    """Record all topics visible to ``node`` into ``path``.

    Parameters
    ----------
    node : rclpy.node.Node
        The node that owns the raw subscriptions (its clock stamps log times).
    path : path-like
    max_rate_hz : dict
        Topic name (or suffix, e.g. ``camera/image_raw``) -> max recorded rate; heavy streams are thinned.
    exclude : iterable of str
        Topic names or suffixes not to record.
    flush_period_s : float
        Every this long (node clock, and at least this long on the wall clock: a simulation running 5x faster
        than real time fsyncs once per wall period, not five times) the chunk in progress is closed, written
        and fsynced: the messages in it are then acknowledged (``acked``), on the disk whatever happens to the
        process or the disk after. On a robot the two clocks agree; in the care day this is ~110 fsyncs
        instead of ~620, each blocking the step for 2-6 ms.
        Messages logged since the last flush are not yet acknowledged; a write that fails (a full disk)
        stops the recording with ``error`` set and the acknowledged messages readable in the file.
    poll_node : rclpy.node.Node, optional
        A node on no executor (the embedded runner's). The thinned topics (``max_rate_hz``) are then subscribed
        on it with a queue of one and read by :meth:`poll`, which the owner calls after each step: the newest
        message of a topic whose period has elapsed is taken and logged at the poll's time (at most one step
        after it was published). Without it every message of a thinned topic is delivered by the executor and
        most are dropped: in the care day ~240 of the recorder's ~550 deliveries per simulated second.
    """

    def __init__(self, node, path, max_rate_hz=None, exclude=(), compression=True, flush_period_s=1.0,
                 poll_node=None):
        self.node = node
        self.poll_node = poll_node
        self._polled: dict = {}
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rate_hz = dict(max_rate_hz or {})
        self.exclude = tuple(exclude)
        try:
            self._fh = open(self.path, "wb")
            self._writer = Writer(self._fh, compression=CompressionType.ZSTD if compression else CompressionType.NONE)
            self._writer.start(profile="ros2", library="agricare")
        except OSError as exc:
            raise RecorderError(f"cannot write {self.path}: {exc}") from exc
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._subs = {}
        self._last_t: dict[str, float] = {}
        self._period_ns: dict[str, int] = {}
        self._clock = node.get_clock()
        self.counts: dict[str, int] = {}
        self.types: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.error: str | None = None
        self._closed = False
        self.flush_period_s = float(flush_period_s)
        self.acked = 0                 # messages flushed and fsynced
        self._last_flush_ns: int | None = None
        self._last_flush_wall = 0.0

    def _rate_for(self, topic):
        return rate_limit_for(self.max_rate_hz, topic)

    def _excluded(self, topic):
        return any(topic == e or topic.endswith("/" + e.lstrip("/")) for e in self.exclude)

    def discover(self) -> int:
        """Subscribe to topics that appeared since the last call. Returns the number of new topics."""
        new = 0
        for topic, type_name, text, msg_cls in new_topics(self.node, self._subs, self.skipped, self._excluded):
            qos = self._qos_for(topic)
            schema_name = type_name.replace("/msg/", "/")
            if schema_name not in self._schemas:
                self._schemas[schema_name] = self._writer.register_schema(
                    name=type_name, encoding="ros2msg", data=text.encode())
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="cdr", schema_id=self._schemas[schema_name],
                metadata={"offered_qos_profiles": ""})
            self.types[topic] = type_name
            self.counts[topic] = 0
            hz = self._rate_for(topic)
            self._period_ns[topic] = math.ceil(1e9 / hz) if hz else 0   # looked up once, not per message
            if self._period_ns[topic] and self.poll_node is not None:
                polled_qos = QoSProfile(depth=1, reliability=qos.reliability, durability=qos.durability)
                self._polled[topic] = self._subs[topic] = self.poll_node.create_subscription(
                    msg_cls, topic, _never_called, polled_qos, raw=True)
            else:
                self._subs[topic] = self.node.create_subscription(
                    msg_cls, topic, functools.partial(self._on_msg, topic), qos, raw=True)
            new += 1
        return new

    def _qos_for(self, topic):
        infos = self.node.get_publishers_info_by_topic(topic)
        reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        latched = bool(infos) and any(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        # /diagnostics: every node of every robot reports at the same instant (health + security status each)
        return QoSProfile(depth=500 if topic == "/diagnostics" else 50,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _now_ns(self) -> int:
        handle = self._clock.handle   # the clock's time without building an rclpy Time (~5 us a message)
        with handle:
            return handle.get_now().nanoseconds

    def poll(self) -> int:
        """Log the newest message of each polled topic whose period has elapsed (see ``poll_node``); returns
        how many were logged."""
        if self._closed or self.error or not self._polled:
            return 0
        t_ns = self._now_ns()
        n = 0
        for topic, sub in self._polled.items():
            last = self._last_t.get(topic)
            if last is not None and (t_ns - last) < self._period_ns[topic]:
                continue
            with sub.handle:
                got = sub.handle.take_message(sub.msg_type, True)
            if got is None:
                continue
            self._last_t[topic] = t_ns
            self._write(topic, got[0], t_ns)
            n += 1
        return n

    def _on_msg(self, topic, data: bytes):
        if self._closed or self.error:
            return
        t_ns = self._now_ns()
        period = self._period_ns.get(topic, 0)
        if period:
            last = self._last_t.get(topic)
            if last is not None and (t_ns - last) < period:
                return
            self._last_t[topic] = t_ns
        self._write(topic, data, t_ns)

    def _write(self, topic, data, t_ns: int):
        if self._closed or self.error:
            return
        try:
            self._writer.add_message(channel_id=self._channels[topic], log_time=t_ns, data=bytes(data),
                                     publish_time=t_ns, sequence=self.counts[topic])
        except OSError as exc:  # disk full: stop recording, keep the robot safe, say why
            self.error = f"recording stopped: {exc} ({self.acked} messages safely on disk)"
            return
        self.counts[topic] += 1
        if self._last_flush_ns is None:
            self._last_flush_ns, self._last_flush_wall = t_ns, time.monotonic()
        elif t_ns < self._last_flush_ns or (t_ns - self._last_flush_ns >= self.flush_period_s * 1e9
                                            and time.monotonic() - self._last_flush_wall >= self.flush_period_s):
            self.flush()

    def flush(self) -> bool:
        """Write the chunk in progress and fsync: every message logged so far is acknowledged. False (and
        ``error`` set, the recording stopped) when the write fails."""
        if self._closed or self.error:
            return False
        logged = sum(self.counts.values())
        try:
            self._writer.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self.error = f"recording stopped: {exc} ({self.acked} messages safely on disk)"
            return False
        self.acked = logged
        self._last_flush_ns = self.node.get_clock().now().nanoseconds
        self._last_flush_wall = time.monotonic()
        return True

    def close(self):
        if self._closed:
            return
        self._closed = True
        for topic, sub in self._subs.items():
            (self.poll_node if topic in self._polled else self.node).destroy_subscription(sub)
        try:
            if not self.error:
                self._writer.finish()
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self.acked = sum(self.counts.values())
        except OSError as exc:
            self.error = self.error or f"cannot finish MCAP: {exc} ({self.acked} messages safely on disk)"
        finally:
            try:
                self._fh.close()
            except OSError as exc:
                self.error = self.error or f"cannot close {self.path}: {exc}"

    def stats(self) -> dict:
        return {"file": str(self.path), "topics": dict(sorted(self.counts.items())), "acked": self.acked,
                "types": dict(sorted(self.types.items())), "skipped": self.skipped, "error": self.error,
                "bytes": self.path.stat().st_size if self.path.exists() else 0, "closed_at_wall": time.time()}


def _never_called(_msg):
    """Callback of a polled subscription (its node is on no executor)."""


def import_type(type_name: str):
    """The Python class of ``pkg/msg/Type`` (or ``pkg/Type``, as MCAP schemas name it)."""
    import importlib

    parts = type_name.split("/")
    pkg, kind, name = (parts[0], "msg", parts[1]) if len(parts) == 2 else parts
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
