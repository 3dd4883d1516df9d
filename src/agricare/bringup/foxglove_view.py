"""Live view: the running graph served to Foxglove over its WebSocket protocol (``foxglove-sdk``).

Every topic of the graph (tf, odometry, plans, scans, camera, markers, coverage, safety state, ...) becomes
a Foxglove channel carrying the ROS messages as they are on the wire (``cdr`` with the ``ros2msg`` schema,
as foxglove_bridge serves them), so Foxglove decodes them like a ROS 2 bag. Connect Foxglove to
``ws://HOST:PORT`` and open ``config/foxglove_layout.json``. Heavy topics are throttled
(``max_rate_hz``); ``/rosout``, ``/parameter_events`` and action internals are left out.
"""

from __future__ import annotations

import functools

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from agricare.bringup.recorder import new_topics, rate_limit_for

SKIP = ("/rosout", "/parameter_events")
DEFAULT_MAX_RATE_HZ = {"camera/image_raw": 5.0, "scan": 10.0}


class FoxgloveView:
    """A Foxglove WebSocket server fed from ``node``'s view of the graph.

    Parameters
    ----------
    node : rclpy.node.Node
        Subscribes through this node (the runner's monitor); its clock stamps the messages (sim time).
    port : int
        TCP port (0: any free port; see :attr:`port`).
    host : str
        Interface to listen on (default localhost; ``0.0.0.0`` to reach it from another machine).
    """

    def __init__(self, node, port: int = 8765, host: str = "127.0.0.1", max_rate_hz: dict | None = None,
                 name: str = "agricare"):
        try:
            import foxglove
        except ImportError as exc:  # pragma: no cover - foxglove-sdk is in requirements.txt
            raise RuntimeError("the live view needs foxglove-sdk (pip install -r requirements.txt)") from exc
        self._fg = foxglove
        self.node = node
        self.context = foxglove.Context()
        self.server = foxglove.start_server(name=name, host=host, port=port, context=self.context)
        self.port = self.server.port
        self.host = host
        self.max_rate_hz = dict(DEFAULT_MAX_RATE_HZ if max_rate_hz is None else max_rate_hz)
        self.channels: dict[str, object] = {}
        self.types: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.skipped: dict[str, str] = {}
        self._subs = {}
        self._last_ns: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _rate_for(self, topic):
        return rate_limit_for(self.max_rate_hz, topic)

    def discover(self) -> int:
        """Serve the topics that appeared since the last call. Returns the number of new channels."""
        new = 0
        def excluded(topic):
            return topic in SKIP or "/_action/" in topic

        for topic, type_name, text, msg_cls in new_topics(self.node, self._subs, self.skipped, excluded):
            schema = self._fg.Schema(name=type_name, encoding="ros2msg", data=text.encode())
            self.channels[topic] = self._fg.Channel(topic, message_encoding="cdr", schema=schema,
                                                    context=self.context)
            self.types[topic] = type_name
            self.counts[topic] = 0
            self._subs[topic] = self.node.create_subscription(
                msg_cls, topic, functools.partial(self._on_msg, topic), self._qos_for(topic), raw=True)
            new += 1
        return new

    def _qos_for(self, topic):
        infos = self.node.get_publishers_info_by_topic(topic)
        latched = bool(infos) and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        # best effort matches every publisher; transient local only where every publisher latches
        if latched:
            return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)

    def _on_msg(self, topic, data: bytes):
        t_ns = self.node.get_clock().now().nanoseconds
        hz = self._rate_for(topic)
        if hz:
            last = self._last_ns.get(topic)
            if last is not None and 0 <= t_ns - last < 1e9 / hz:
                return
            self._last_ns[topic] = t_ns
        self.channels[topic].log(bytes(data), log_time=max(t_ns, 0))
        self.counts[topic] += 1

    def close(self):
        for sub in self._subs.values():
            try:
                self.node.destroy_subscription(sub)
            except Exception:
                pass
        self._subs.clear()
        self.server.stop()
