"""mission_goal_node: send a robot's mission its goal, report feedback, exit with the result.

A robot idles until its mission has a goal (``cover_field``: agricare_interfaces/action/CoverField,
``transport_child``: TransportChild, ``scout_field``: ScoutField, in the robot's namespace). The launch files
start one of these per mission, the way a Nav2 user sends ``navigate_to_pose``; an operator app can do the
same. Goals are signed (:mod:`agricare.ros.signed`, kind ``mission_goal``) with ``signing_key_file`` (an
``agricare keys`` key the mission trusts): a mission refuses unsigned goals, so a bare ``ros2 action
send_goal`` is refused. Parameters: ``action`` (cover_field | transport_child | scout_field), ``field_file``
(CoverField; empty = the mission's configured field), ``request_id`` (TransportChild; empty = the day plan),
``rows`` (ScoutField; 0 = the configured rows), ``robot_name`` (the goal's target; empty = the namespace),
``server_timeout_s``. Exit code 0 when the goal succeeded, 1 otherwise.
"""

from __future__ import annotations

import dataclasses

import rclpy
from action_msgs.msg import GoalStatus
from agricare_interfaces.action import CoverField, ScoutField, TransportChild
from rclpy.action import ActionClient
from rclpy.node import Node

from agricare import paths
from agricare.core.security.keys import KeyFileError, load_signing_key
from agricare.core.validation import require
from agricare.ros.params import ParameterError, load_params
from agricare.ros.signed import sign_message

ACTIONS = {"cover_field": CoverField, "transport_child": TransportChild, "scout_field": ScoutField}
STATUS = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_CANCELED: "canceled",
          GoalStatus.STATUS_ABORTED: "aborted"}


@dataclasses.dataclass(frozen=True)
class MissionGoalParams:
    action: str = "cover_field"
    field_file: str = ""
    request_id: str = ""
    rows: int = 0
    signing_key_file: str = ""
    robot_name: str = ""
    goal_lifetime_s: float = 30.0
    server_timeout_s: float = 60.0
    feedback_period_s: float = 10.0

    def __post_init__(self):
        require(self.action in ACTIONS, "action", f"must be one of {sorted(ACTIONS)}", self.action)
        require(bool(self.signing_key_file), "signing_key_file", "must be set (missions accept only signed goals)")
        require(self.rows >= 0, "rows", "must be >= 0", self.rows)
        require(0 < self.goal_lifetime_s <= 300, "goal_lifetime_s", "must be in (0, 300] s", self.goal_lifetime_s)
        require(self.server_timeout_s > 0, "server_timeout_s", "must be > 0", self.server_timeout_s)
        require(self.feedback_period_s > 0, "feedback_period_s", "must be > 0", self.feedback_period_s)


class MissionGoalNode(Node):
    """Sends one goal (see module docstring); ``outcome`` is set when it ends."""

    def __init__(self, **kwargs):
        super().__init__("mission_goal", **kwargs)
        self.p = load_params(self, MissionGoalParams)
        try:
            self.key = load_signing_key(paths.resolve(self.p.signing_key_file))
        except (KeyFileError, OSError, ValueError) as exc:
            raise ParameterError(f"mission_goal: parameter 'signing_key_file': {exc}") from None
        self.target = self.p.robot_name or self.get_namespace().strip("/")
        self.action_type = ACTIONS[self.p.action]
        self.client = ActionClient(self, self.action_type, self.p.action)
        self.outcome: str | None = None
        self._last_feedback_s = -1e18
        self._t0 = None
        self._sent = None
        self.create_timer(0.5, self._poll)

    def goal(self):
        g = self.action_type.Goal()
        if self.p.action == "cover_field":
            g.field_file = self.p.field_file
        elif self.p.action == "scout_field":
            g.rows = self.p.rows
        else:
            g.request_id = self.p.request_id
        # signed when sent (a fresh sequence number per attempt: a retried goal is not a replay)
        return sign_message(g, self.key, kind="mission_goal", target=self.target, lifetime_s=self.p.goal_lifetime_s)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _poll(self):
        if self._sent is not None or self.outcome is not None:
            return
        now = self._now_s()
        self._t0 = now if self._t0 is None else self._t0
        if not self.client.server_is_ready():
            if now - self._t0 > self.p.server_timeout_s:
                self.outcome = "no server"
                self.get_logger().error(f"no '{self.p.action}' action server after {self.p.server_timeout_s} s")
            return
        self._sent = self.client.send_goal_async(self.goal(), feedback_callback=self._on_feedback)
        self._sent.add_done_callback(self._on_response)

    def _on_feedback(self, msg):
        now = self._now_s()
        if now - self._last_feedback_s >= self.p.feedback_period_s:
            self._last_feedback_s = now
            fb = msg.feedback
            self.get_logger().info(f"{self.p.action}: {fb.state} {100 * fb.progress:.0f}% eta {fb.eta_s:.0f} s")

    def _on_response(self, fut):
        handle = fut.result()
        if not handle.accepted:
            # e.g. the mission is not active yet (a lifecycle manager is bringing the robot up): try again
            if self._now_s() - self._t0 > self.p.server_timeout_s:
                self.outcome = "rejected"
                self.get_logger().error(f"{self.p.action} goal rejected (see the mission node's log)")
            else:
                self.get_logger().warning(f"{self.p.action} goal rejected; retrying", throttle_duration_sec=10.0)
                self._sent = None
            return
        self.get_logger().info(f"{self.p.action} goal accepted")
        handle.get_result_async().add_done_callback(self._on_result)

    def _on_result(self, fut):
        res = fut.result()
        self.outcome = STATUS.get(res.status, f"status {res.status}")
        self.get_logger().info(f"{self.p.action} {self.outcome}: {res.result.message}")


def main(args=None):
    import sys

    rclpy.init(args=args)
    node = None
    code = 1
    try:
        node = MissionGoalNode()
        while rclpy.ok() and node.outcome is None:
            rclpy.spin_once(node, timeout_sec=0.5)
        code = 0 if node.outcome == "succeeded" else 1
    except ParameterError as exc:
        if not exc.logged:
            print(f"[FATAL] {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
