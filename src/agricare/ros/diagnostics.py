"""A small diagnostics publisher: one DiagnosticStatus per node component on ``/diagnostics``.

Publishes at ``period_s`` (1 Hz default) and at once whenever the level or message changes, so transitions
are never lost between periods.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from agricare.ros.qos import RELIABLE_QOS

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE


class Diagnostics:
    """Report the health of one component.

    Parameters
    ----------
    node : rclpy.node.Node
    name : str
        Status name; the node's fully qualified name is prefixed (``/tractor/controller_node: tracking``).
    hardware_id : str
    period_s : float
        Periodic republish interval (node clock).
    """

    def __init__(self, node, name: str, hardware_id: str = "", period_s: float = 1.0):
        self._node = node
        self._name = f"{node.get_fully_qualified_name()}: {name}"
        self._hw = hardware_id
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self.level = STALE
        self.message = "starting"
        self.values: dict[str, str] = {}
        self._timer = node.create_timer(period_s, self.publish)

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

    def publish(self):
        st = DiagnosticStatus(level=self.level, name=self._name, message=self.message, hardware_id=self._hw)
        st.values = [KeyValue(key=k, value=v) for k, v in self.values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.status = [st]
        try:
            self._pub.publish(arr)
        except Exception:  # context already shut down
            pass
