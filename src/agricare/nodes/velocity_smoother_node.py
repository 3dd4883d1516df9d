"""velocity_smoother_node: ``cmd_vel_nav`` -> ``cmd_vel_smoothed`` with velocity/accel/jerk limits.

Subscribes ``cmd_vel_nav`` (geometry_msgs/TwistStamped, command QoS); publishes ``cmd_vel_smoothed``
(TwistStamped, command QoS) at ``rate_hz`` and ``/diagnostics``. Without input for
``input_timeout_s`` (or on NaN input) the output ramps to zero within the limits. Only linear x and
angular z are used; other twist components are ignored.
"""

from __future__ import annotations

import dataclasses
import math

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node

from agricare.core.control.smoother import SmootherParams, VelocitySmoother
from agricare.ros.fastmsg import twist_stamped_cdr
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params
from agricare.ros.qos import COMMAND_QOS

_SMOOTHER_FIELDS = tuple(f.name for f in dataclasses.fields(SmootherParams))


@dataclasses.dataclass(frozen=True)
class VelocitySmootherNodeParams:
    """velocity_smoother_node parameters (the smoother limits plus the output rate)."""

    rate_hz: float = 20.0
    base_frame_id: str = "base_link"
    max_linear_speed_mps: float = 1.5
    max_linear_accel_mps2: float = 1.0
    max_linear_jerk_mps3: float = 5.0
    max_angular_speed_radps: float = 1.5
    max_angular_accel_radps2: float = 2.0
    max_angular_jerk_radps3: float = 10.0
    linear_deadband_mps: float = 0.0
    angular_deadband_radps: float = 0.0
    input_timeout_s: float = 0.5
    stop_on_timeout: bool = False     # lost or NaN input: output 0 at once (else ramp down)
    keep_curvature: bool = False      # car-like: the angular output keeps the commanded curvature w / v

    def __post_init__(self):
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0.0):
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz!r}")
        self.smoother_params()

    def smoother_params(self) -> SmootherParams:
        return SmootherParams(**{name: getattr(self, name) for name in _SMOOTHER_FIELDS})


class VelocitySmootherNode(Node):
    """Velocity smoother node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("velocity_smoother_node", **kwargs)
        self.params = load_params(self, VelocitySmootherNodeParams)
        self.smoother = VelocitySmoother(self.params.smoother_params())
        self.diag = Diagnostics(self, "velocity_smoother")
        self._pending = None
        self._pending_time_s = 0.0
        self._bad_input = False
        self._pub = self.create_publisher(TwistStamped, "cmd_vel_smoothed", COMMAND_QOS)
        self.create_subscription(TwistStamped, "cmd_vel_nav", self._on_cmd, COMMAND_QOS)
        self._timer = self.create_timer(1.0 / self.params.rate_hz, self._on_timer)
        self.diag.ok("waiting for cmd_vel_nav")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_cmd(self, msg: TwistStamped) -> None:
        v, w = float(msg.twist.linear.x), float(msg.twist.angular.z)
        self._bad_input = not (math.isfinite(v) and math.isfinite(w))
        self._pending = (v, w)
        self._pending_time_s = self._now_s()

    def _on_timer(self) -> None:
        now = self._now_s()
        cmd, self._pending = self._pending, None
        v, w = self.smoother.update(cmd, now, self._pending_time_s if cmd is not None else None)
        self._pub.publish(twist_stamped_cdr(now, self.params.base_frame_id, v, w))   # serialized: ros/fastmsg.py
        values = dict(v_mps=f"{v:.3f}", w_radps=f"{w:.3f}")
        if self._bad_input:
            self.diag.warn("NaN/inf input: ramping to zero", **values)
        elif self.smoother.timed_out:
            self.diag.ok("no recent input: output ramps to zero", **values)
        else:
            self.diag.ok("smoothing", **values)

    def on_shutdown(self) -> None:
        """One zero command on the way out (the safety node and driver stop anyway)."""
        self._pub.publish(twist_stamped_cdr(self._now_s(), self.params.base_frame_id, 0.0, 0.0))


def main(args=None):
    return run_node(VelocitySmootherNode, args)


if __name__ == "__main__":
    main()
