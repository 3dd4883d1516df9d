"""row_follower_node: row guidance -> ``cmd_vel_nav`` by visual servoing, end of row, U-turn into the next row.

Subscribes ``perception/row_guidance`` (agricare_interfaces/RowGuidance, reliable) and
``odom_topic`` (nav_msgs/Odometry, sensor QoS; default ``odometry/filtered``).
Publishes ``cmd_vel_nav`` (geometry_msgs/TwistStamped, command QoS) at ``rate_hz``,
``row_follower/state`` (std_msgs/String, latched: ``following`` / ``end_of_row`` / ``turning`` / ``done``),
``row_follower/turn_plan`` (nav_msgs/Path, latched, the planned U-turn in the odometry frame, for display)
and ``/diagnostics``. With ``enable_topic`` (``row_follower/enable`` from scouting_mission_node) it commands
zero until a std_msgs/Bool true arrives there, and again after a false (the scouting goal ended).

The headland turn is planned here (see :mod:`agricare.core.control.row_follower`) and executed with pure
pursuit on odometry; no other node has to take over. Stale guidance while following, or missing odometry
during the exit/turn, commands zero velocity and is reported on ``/diagnostics``.
"""

from __future__ import annotations

import dataclasses
import math

from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Bool, String

from agricare.core.control.row_follower import RowFollower, RowFollowerParams
from agricare.ros.convert import array_to_path, pose_to_xyyaw, twist_stamped
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import load_schema
from agricare.ros.qos import COMMAND_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched

from agricare_interfaces.msg import RowGuidance

GUIDANCE_TYPE = RowGuidance


@dataclasses.dataclass(frozen=True)
class RowFollowerSettings:
    """row_follower_node's own settings; the follower's parameters are ``RowFollowerParams`` itself,
    flattened beside these by :func:`agricare.ros.params.load_schema`."""

    rate_hz: float = 20.0
    odom_topic: str = "odometry/filtered"
    odom_timeout_s: float = 0.5
    base_frame_id: str = "base_link"
    enable_topic: str = ""   # "" = drive at once; else idle (zero command) until std_msgs/Bool true on it

    def __post_init__(self):
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        if not (math.isfinite(self.odom_timeout_s) and self.odom_timeout_s > 0):
            raise ValueError(f"odom_timeout_s must be > 0, got {self.odom_timeout_s}")
        if not self.odom_topic:
            raise ValueError("odom_topic must not be empty")


SCHEMA = (RowFollowerSettings, RowFollowerParams)
# a different pattern of rows or turns mid-field would contradict the rows already done: restart for those
RESTART_ONLY = ("rate_hz", "odom_topic", "enable_topic", "row_spacing_m", "rows_per_turn", "first_turn_left",
                "max_rows")


class RowFollowerNode(Node):
    """Row follower node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("row_follower_node", **kwargs)
        self.param_set = load_schema(self, *SCHEMA)
        self.params = self.param_set.of(RowFollowerSettings)
        self.follower = RowFollower(self.param_set.of(RowFollowerParams))
        self.param_set.on_change(self._on_params, live=set(self.param_set.values) - set(RESTART_ONLY))
        self.diag = Diagnostics(self, "row_follower")
        self._pose = None
        self._pose_t = None
        self._odom_frame = "odom"
        self._state_sent = None
        self._plan_sent = None
        self._camera_fault = False       # the last guidance said CAMERA_FAULT
        self._cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_nav", COMMAND_QOS)
        self._state_pub = self.create_publisher(String, "row_follower/state", LATCHED_QOS)
        self._plan_pub = self.create_publisher(Path, "row_follower/turn_plan", LATCHED_QOS)
        self.create_subscription(GUIDANCE_TYPE, "perception/row_guidance", self._on_guidance, RELIABLE_QOS)
        self.create_subscription(Odometry, self.params.odom_topic, self._on_odom, SENSOR_QOS)
        self._enabled = not self.params.enable_topic
        if self.params.enable_topic:   # the scouting mission enables the follower while its goal runs
            subscribe_latched(self, Bool, self.params.enable_topic, self._on_enable)
        self._timer = self.create_timer(1.0 / self.params.rate_hz, self._on_timer)
        self._publish_state()

    def _on_enable(self, msg: Bool) -> None:
        self._enabled = bool(msg.data)

    def _on_params(self, params) -> None:
        """Live change (validated): speeds, gains, timeouts and thresholds take effect on the next step."""
        self.params = params.of(RowFollowerSettings)
        self.follower.p = params.of(RowFollowerParams)
        self.get_logger().info("parameters changed live")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_guidance(self, msg: RowGuidance) -> None:
        off, hdg, conf, eor = msg.offset_m, msg.heading_rad, msg.confidence, bool(msg.end_of_row)
        self.follower.set_guidance(self._now_s(), float(off), float(hdg), float(conf), eor)
        fault = float(conf) < 0.0
        if fault and not self._camera_fault:
            # a camera fault (CAMERA_FAULT) begins: the follower stops on it; act at once instead of at the next
            # cycle (up to one period later), so the stop starts one stage earlier down the command chain. While
            # it lasts, the timer's cycle repeats the stop (not every frame of the black camera as well)
            self._on_timer()
        self._camera_fault = fault

    def _on_odom(self, msg: Odometry) -> None:
        self._pose = pose_to_xyyaw(msg.pose.pose)
        self._pose_t = self._now_s()
        self._odom_frame = msg.header.frame_id or "odom"

    def _publish_state(self) -> None:
        st = self.follower.state
        if st != self._state_sent:
            self._state_pub.publish(String(data=st))
            self._state_sent = st

    def _on_timer(self) -> None:
        now = self._now_s()
        if not self._enabled:
            self._cmd_pub.publish(twist_stamped(0.0, 0.0, now, self.params.base_frame_id))
            self.diag.ok(f"idle: waiting for {self.params.enable_topic}", state=self.follower.state)
            return
        pose = self._pose
        if self._pose_t is None or now - self._pose_t > self.params.odom_timeout_s:
            pose = None
        v, w = self.follower.step(now, pose)
        if not (math.isfinite(v) and math.isfinite(w)):
            v = w = 0.0
        self._cmd_pub.publish(twist_stamped(v, w, now, self.params.base_frame_id))
        self._publish_state()
        plan = self.follower.turn_path
        if plan is not None and plan is not self._plan_sent:
            self._plan_pub.publish(array_to_path(plan, self._odom_frame, now))
            self._plan_sent = plan
        values = dict(state=self.follower.state, v_mps=f"{v:.2f}", w_radps=f"{w:.2f}",
                      rows_done=self.follower.rows_done)
        reason = self.follower.reason
        if v == 0.0 and w == 0.0 and self.follower.state != "done" and reason:
            self.diag.warn(f"stopped: {reason}", **values)
        else:
            self.diag.ok(reason or self.follower.state, **values)

    def on_shutdown(self) -> None:
        self._cmd_pub.publish(twist_stamped(0.0, 0.0, self._now_s(), self.params.base_frame_id))


def main(args=None):
    return run_node(RowFollowerNode, args)


if __name__ == "__main__":
    main()
