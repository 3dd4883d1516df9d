"""lifecycle_manager_node: bring a robot's managed nodes up in order and down safely (as Nav2's manager).

Parameters: ``node_names`` (in bring-up order, relative to the manager's namespace: drivers, safety,
localisation, missions), ``autostart`` (bring up at start), ``service_timeout_s``. Start-up: configure every
node in order, then activate every node in order; a failure stops there and deactivates what it had
activated (reverse order). Shut-down: deactivate in reverse order (missions first, the driver last, so
nothing drives a robot whose driver already stopped), then clean up. Services ``lifecycle_manager/startup``
and ``lifecycle_manager/shutdown`` (std_srvs/Trigger). Calls ``<node>/change_state``
(lifecycle_msgs/ChangeState) asynchronously: the manager never blocks its executor.
"""

from __future__ import annotations

import dataclasses

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.node import Node
from std_srvs.srv import Trigger

from agricare.core.validation import require
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params

UP = ((Transition.TRANSITION_CONFIGURE, "configure", False), (Transition.TRANSITION_ACTIVATE, "activate", False))
DOWN = ((Transition.TRANSITION_DEACTIVATE, "deactivate", True), (Transition.TRANSITION_CLEANUP, "cleanup", True))


@dataclasses.dataclass(frozen=True)
class LifecycleManagerParams:
    node_names: tuple[str, ...] = ()
    autostart: bool = True
    service_timeout_s: float = 10.0

    def __post_init__(self):
        require(len(self.node_names) > 0, "node_names", "must list the managed nodes in bring-up order")
        require(self.service_timeout_s > 0, "service_timeout_s", "must be > 0", self.service_timeout_s)


class LifecycleManagerNode(Node):
    """Drives the managed nodes through their transitions (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("lifecycle_manager", **kwargs)
        self.p = load_params(self, LifecycleManagerParams)
        self._change_state = {n: self.create_client(ChangeState, f"{n}/change_state") for n in self.p.node_names}
        self.active: list[str] = []
        self.state = "idle"        # idle | starting | active | stopping | stopped | failed
        self.message = ""
        self._steps: list[tuple[str, int, str]] = []
        self._pending = None       # (future, node, label, deadline)
        self._t0 = None
        self.create_service(Trigger, "lifecycle_manager/startup", self._srv(self.startup))
        self.create_service(Trigger, "lifecycle_manager/shutdown", self._srv(self.shutdown))
        self.create_timer(0.05, self._step)
        if self.p.autostart:
            self.startup()

    def _srv(self, fn):
        def handle(_req, resp):
            resp.success = fn()
            resp.message = self.state
            return resp
        return handle

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def startup(self) -> bool:
        if self.state in ("starting", "stopping"):
            return False
        self.state, self.message = "starting", ""
        self._steps = [(n, tid, label) for tid, label, _ in UP for n in self.p.node_names]
        return True

    def shutdown(self) -> bool:
        if self.state == "stopping":
            return False
        self.state = "stopping"
        order = list(reversed(self.p.node_names))
        self._steps = [(n, tid, label) for tid, label, _ in DOWN for n in order]
        self._pending = None
        return True

    def _step(self) -> None:
        now = self._now()
        if self._pending is not None:
            fut, node, label, deadline = self._pending
            if not fut.done():
                if now > deadline:
                    self._fail(f"{node}: {label} timed out")
                return
            self._pending = None
            ok = fut.exception() is None and fut.result().success
            if not ok:
                if self.state == "stopping":  # keep going down: every node must get its chance to stop
                    self.get_logger().error(f"{node}: {label} failed; continuing the shut-down")
                else:
                    self._fail(f"{node}: {label} failed")
                    return
            if label == "activate":
                self.active.append(node)
            elif label == "deactivate" and node in self.active:
                self.active.remove(node)
            self.get_logger().info(f"{node}: {label} done")
        if not self._steps:
            if self.state == "starting":
                self.state = "active"
                self.get_logger().info("all managed nodes active: " + ", ".join(self.p.node_names))
            elif self.state == "stopping":
                self.state = "stopped"
                self.get_logger().info("all managed nodes stopped")
            return
        node, tid, label = self._steps[0]
        client = self._change_state[node]
        if not client.service_is_ready():
            self._t0 = now if self._t0 is None else self._t0
            if now - self._t0 > self.p.service_timeout_s:
                self._fail(f"{node}/change_state not available after {self.p.service_timeout_s} s")
            return
        self._t0 = None
        self._steps.pop(0)
        req = ChangeState.Request()
        req.transition.id = tid
        self._pending = (client.call_async(req), node, label, now + self.p.service_timeout_s)

    def _fail(self, message: str) -> None:
        self.get_logger().error(f"bring-up failed: {message}; stopping what was activated")
        self.message = message
        started = list(self.active)
        self.state = "failed"
        self._pending = None
        self._steps = [(n, Transition.TRANSITION_DEACTIVATE, "deactivate") for n in reversed(started)]
        if self._steps:
            self.state = "stopping"


def main(args=None):
    return run_node(LifecycleManagerNode, args)


if __name__ == "__main__":
    main()
