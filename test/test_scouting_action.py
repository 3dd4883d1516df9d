"""The row robot's scouting job is an action: an action client drives a signed ScoutField goal to completion
(feedback, result with the record's files) and cancels another; the row follower is enabled only meanwhile.

scouting_mission_node runs alone on simulated time; the test stands in for the rest of the robot: the row
follower's state (following / turning / done), odometry along the rows and growth_map_node's save service.
"""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
action_mod = pytest.importorskip("agricare_interfaces.action")
if not hasattr(action_mod, "ScoutField"):
    pytest.skip("agricare_interfaces is built from older definitions (no ScoutField): rebuild it (make venv)",
                allow_module_level=True)

from action_msgs.msg import GoalStatus  # noqa: E402
from agricare_interfaces.action import ScoutField  # noqa: E402
from agricare_interfaces.srv import SaveMap  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

from harness import SimTimeRig  # noqa: E402

from agricare.ros.qos import LATCHED_QOS, STATE_QOS, subscribe_latched  # noqa: E402

DT = 0.1


class RowRobot(SimTimeRig):
    """scouting_mission_node + a stand-in row follower (drives 8 m rows while enabled), odometry, save service."""

    def __init__(self, ctx, operator, tmp_path):
        from agricare.nodes.scouting_mission_node import ScoutingMissionNode

        self.mission = ScoutingMissionNode(context=ctx, parameter_overrides=operator.parameters("scout") + [
            Parameter("use_sim_time", value=True), Parameter("rows", value=4),
            Parameter("min_row_length_m", value=5.0), Parameter("output_dir", value=str(tmp_path / "records")),
            Parameter("status_period_s", value=0.5)])
        super().__init__(ctx, self.mission, "scout_test_io", DT, spins=6)
        self.odom = self.io.create_publisher(Odometry, "odometry/filtered", STATE_QOS)
        self.state = self.io.create_publisher(String, "row_follower/state", LATCHED_QOS)
        self.enabled = []
        subscribe_latched(self.io, Bool, "row_follower/enable", lambda m: self.enabled.append(bool(m.data)))
        self.saves = []
        self.io.create_service(SaveMap, "perception/save_growth_map", self._save)
        self.x, self.y, self.row, self.phase, self.turn_left_s = 0.0, 0.0, 0, "following", 0.0
        self.state.publish(String(data="following"))
        self.client = ActionClient(self.io, ScoutField, "scout_field")

    def _save(self, req, resp):
        self.saves.append(req.directory)
        resp.success, resp.message, resp.files = True, "saved", []
        return resp

    def move(self):
        if self.enabled and self.enabled[-1] and self.phase != "done":   # the follower drives only when enabled
            if self.phase == "following":
                self.x += 1.0 * DT
                if self.x >= 8.0 * (self.row + 1):
                    self.row += 1
                    self.phase, self.turn_left_s = ("done", 0.0) if self.row >= 4 else ("turning", 2.0)
                    self.state.publish(String(data=self.phase))
            elif self.phase == "turning":
                self.turn_left_s -= DT
                if self.turn_left_s <= 0:
                    self.phase = "following"
                    self.state.publish(String(data="following"))
        odom = Odometry()
        odom.header.frame_id = "map"
        odom.pose.pose.position.x, odom.pose.pose.position.y = self.x, self.y
        odom.pose.pose.orientation.w = 1.0
        self.odom.publish(odom)


@pytest.mark.timeout(90)
def test_scout_field_goal_runs_to_completion_with_feedback_and_another_is_canceled(rclpy_context, operator, tmp_path):
    robot = RowRobot(rclpy_context, operator, tmp_path)
    try:
        assert robot.until(robot.client.server_is_ready, 100)
        robot.until(lambda: False, 30)               # idle without a goal: the follower is not enabled
        assert robot.enabled and not any(robot.enabled) and robot.x == 0.0 and robot.mission.mission is None
        feedback = []
        fut = robot.client.send_goal_async(operator.sign(ScoutField.Goal(rows=3), "row_robot"),
                                           feedback_callback=lambda m: feedback.append(m.feedback))
        assert robot.until(fut.done, 100) and fut.result().accepted
        res = fut.result().get_result_async()
        assert robot.until(res.done, 3000), (robot.mission.mission.state, robot.mission.mission.reason)
        r = res.result()
        assert r.status == GoalStatus.STATUS_SUCCEEDED, r.result.message
        assert r.result.success and r.result.rows_done == 3
        assert robot.saves and any(f.endswith(".geojson") for f in r.result.record_files)
        assert robot.enabled[-1] is False                 # the follower is disabled again
        progress = [f.progress for f in feedback]
        assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] > 0.5
        assert any(f.eta_s > 0 for f in feedback)

        # another goal, then cancel: CANCELED and the follower is disabled
        robot.phase, robot.row = "following", 0
        robot.state.publish(String(data="following"))
        fut = robot.client.send_goal_async(operator.sign(ScoutField.Goal(), "row_robot"))
        assert robot.until(fut.done, 100) and fut.result().accepted
        handle = fut.result()
        x0 = robot.x
        assert robot.until(lambda: robot.x > x0 + 1.0, 200)    # it drives
        cancel = handle.cancel_goal_async()
        assert robot.until(cancel.done, 100)
        res = handle.get_result_async()
        assert robot.until(res.done, 100)
        assert res.result().status == GoalStatus.STATUS_CANCELED
        assert robot.enabled[-1] is False
        x1 = robot.x
        robot.until(lambda: False, 20)
        assert robot.x == x1                                   # stopped
    finally:
        robot.close()
