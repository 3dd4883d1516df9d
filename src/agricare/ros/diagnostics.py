"""A small diagnostics publisher: one DiagnosticStatus per node component on ``/diagnostics``.

Publishes at ``period_s`` (1 Hz default) and at once whenever the level or message changes, so transitions
are never lost between periods. The periodic report of all components of one node goes out as one
``DiagnosticArray`` (as ``diagnostic_updater`` does: one array per node and period, one status per component)
from one timer per node: a care shuttle's nodes have two components each (their own and ``security``), and a
message and a timer wake-up per component was ~50 ``/diagnostics`` messages per simulated second in the care
day, each built, serialised, delivered to the runner and the recorder. A change is still published at once,
in an array holding only the component that changed.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from agricare.ros.qos import RELIABLE_QOS

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE

_HUBS_ATTR = "_agricare_diagnostics_hubs"


class _Hub:
    """The components of one node reporting at one period: one publisher, one timer, one array per period."""

    def __init__(self, node, period_s: float):
        self.node = node
        self.pub = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self.members: list[Diagnostics] = []
        self.timer = node.create_timer(period_s, self.publish_all)
        self.stamp_fn = None   # () -> builtin_interfaces/Time, the stamp instead of the node clock's now

    def publish_all(self):
        self.publish(self.members)

    def publish(self, members):
        if not members:
            return
        arr = DiagnosticArray()
        arr.header.stamp = self.stamp_fn() if self.stamp_fn is not None else self.node.get_clock().now().to_msg()
        arr.status = [m.status() for m in members]
        try:
            self.pub.publish(arr)
        except Exception:  # context already shut down
            pass


def _hub(node, period_s: float) -> _Hub:
    hubs = getattr(node, _HUBS_ATTR, None)
    if hubs is None:
        hubs = {}
        setattr(node, _HUBS_ATTR, hubs)
    key = float(period_s)
    if key not in hubs:
        hubs[key] = _Hub(node, key)
    return hubs[key]


class Diagnostics:
    """Report the health of one component.

    Parameters
    ----------
    node : rclpy.node.Node
    name : str
        Status name; the node's fully qualified name is prefixed (``/tractor/controller_node: tracking``).
    hardware_id : str
    period_s : float
        Periodic republish interval (node clock); components of one node with the same period share one
        array, publisher and timer.
    """

    def __init__(self, node, name: str, hardware_id: str = "", period_s: float = 1.0):
        self._node = node
        self._name = f"{node.get_fully_qualified_name()}: {name}"
        self._hw = hardware_id
        self._hub = _hub(node, period_s)
        self._hub.members.append(self)
        self._pub = self._hub.pub
        self.level = STALE
        self.message = "starting"
        self.values: dict[str, str] = {}

    def _set(self, level, message, values):
        changed = level != self.level or message != self.message
        self.level, self.message = level, message
        self.values = {k: str(v) for k, v in values.items()}
        if changed:
            self.publish()

    def ok(self, message: str = "ok", **values):
        self._set(OK, message, values)

    def warn(self, message: str, **values):
        self._set(WARN, message, values)

    def error(self, message: str, **values):
        self._set(ERROR, message, values)

    def stale(self, message: str, **values):
        self._set(STALE, message, values)

    def status(self) -> DiagnosticStatus:
        st = DiagnosticStatus(level=self.level, name=self._name, message=self.message, hardware_id=self._hw)
        st.values = [KeyValue(key=k, value=v) for k, v in self.values.items()]
        return st

    def publish(self):
        """Publish this component's status now (alone in its array)."""
        self._hub.publish([self])

    def drive_periodic(self, stamp_fn) -> None:
        """Hand the periodic report to the caller: the node's report timer is removed, :meth:`publish_periodic`
        publishes it, every report is stamped ``stamp_fn()``. For a node stepped on simulated time whose own
        clock is the wall clock (the simulator stepped by the embedded runner): its reports then come at the
        same steps with the same stamps in every run (DESIGN principle 6)."""
        hub = self._hub
        if hub.timer is not None:
            hub.node.destroy_timer(hub.timer)
            hub.timer = None
        hub.stamp_fn = stamp_fn

    def publish_periodic(self) -> None:
        """The periodic report of every component sharing this one's array (see :meth:`drive_periodic`)."""
        self._hub.publish_all()
