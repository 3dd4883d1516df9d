"""Managed (lifecycle) nodes, as Nav2's servers: unconfigured -> inactive -> active and back.

:class:`ManagedNode` is an rclpy ``LifecycleNode`` with the usual services (``<node>/change_state``,
``<node>/get_state``) whose node does its work only while **active**: a subclass checks :attr:`active`
in its timers and callbacks and implements :meth:`stop_outputs` (zero velocity, empty plan, implement up)
which runs on deactivate, cleanup, shutdown and process exit.

With the parameter ``managed: false`` (the default, the embedded runner and tests) the node configures and
activates itself at construction. With ``managed: true`` (launch files with a lifecycle manager) it stays
unconfigured until ``lifecycle_manager_node`` brings the robot up in order.
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn


class ManagedNode(LifecycleNode):
    """A lifecycle node that is active only between activate and deactivate (see module docstring)."""

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.declare_parameter("managed", False, ParameterDescriptor(
            description="true: wait for a lifecycle manager; false: configure and activate at start"))
        self.active = False

    def autostart(self) -> None:
        """Call at the end of the subclass constructor: configure + activate unless managed."""
        if not self.get_parameter("managed").value:
            self.trigger_configure()
            self.trigger_activate()

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.active = True
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.active = False
        self._stop()
        self.get_logger().info("inactive: outputs stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self.active = False
        self._stop()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state=None):
        """Lifecycle shutdown transition, and the process-exit hook of run_node / the runner (no state)."""
        self.active = False
        self._stop()
        return TransitionCallbackReturn.SUCCESS if state is not None else None

    def on_error(self, state) -> TransitionCallbackReturn:
        self.active = False
        self._stop()
        return TransitionCallbackReturn.SUCCESS

    def _stop(self) -> None:
        try:
            self.stop_outputs()
        except Exception as exc:  # stopping must go on
            self.get_logger().error(f"stop_outputs failed: {exc}")

    def stop_outputs(self) -> None:
        """Make the robot safe: what this node commands goes to zero / empty. Subclasses override."""
