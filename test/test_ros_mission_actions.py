"""Missions are actions: an action client drives a CoverField goal to completion and cancels another.

The farm mission node runs alone on simulated time; the test stands in for the rest of the robot: it
publishes /clock, moves the odometry along every plan the mission publishes and reports ``goal_reached``
at its end (what controller_node would say).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
action_mod = pytest.importorskip("agricare_interfaces.action")
CoverField = action_mod.CoverField
if "eta_s" not in CoverField.Feedback.get_fields_and_field_types():
    pytest.skip("agricare_interfaces is built from older definitions (no eta_s): rebuild it (make venv)",
                allow_module_level=True)

from action_msgs.msg import GoalStatus  # noqa: E402
from agricare_interfaces.msg import ControllerStatus  # noqa: E402
from geometry_msgs.msg import Point32, Polygon  # noqa: E402
from nav_msgs.msg import Odometry, Path  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from harness import SimTimeRig  # noqa: E402

from agricare.ros.convert import path_to_array, to_stamp  # noqa: E402
from agricare.ros.qos import RELIABLE_QOS, STATE_QOS, subscribe_latched  # noqa: E402

DT = 0.05


class Robot(SimTimeRig):
    """The farm mission node plus a stand-in for odometry, controller and clock."""

    def __init__(self, ctx, operator):
        from agricare.nodes.farm_mission_node import FarmMissionNode

        self.operator = operator
        self.mission = FarmMissionNode(context=ctx, parameter_overrides=operator.parameters() + [
            Parameter("use_sim_time", value=True), Parameter("use_gnss", value=False),
            Parameter("headland_width_m", value=6.0), Parameter("width_m", value=4.0),
            Parameter("turn_radius_m", value=3.0), Parameter("front_overhang_m", value=1.0),
            Parameter("start_delay_s", value=0.0)])
        super().__init__(ctx, self.mission, "mission_test_io", DT, spins=8)
        self.odom = self.io.create_publisher(Odometry, "odometry/filtered", STATE_QOS)
        self.ctrl = self.io.create_publisher(ControllerStatus, "controller/status", RELIABLE_QOS)
        self.plans: list[np.ndarray] = []
        subscribe_latched(self.io, Path, "plan", lambda m: self.plans.append(path_to_array(m)))
        self.pose = np.array([8.0, 8.0, 0.0])
        self.plan_i = 0       # index into the newest plan
        self.plan_n = 0       # number of plans seen when plan_i was reset
        self.follow = True    # drive along the newest plan
        self.client = ActionClient(self.io, CoverField, "cover_field")

    def move(self):
        if len(self.plans) != self.plan_n:
            self.plan_n, self.plan_i, self.follow = len(self.plans), 0, True
        if self.follow and self.plans and len(self.plans[-1]):
            plan = self.plans[-1]
            self.plan_i = min(self.plan_i + 4, len(plan) - 1)  # drive along the plan
            self.pose = plan[self.plan_i].copy()
            if self.plan_i == len(plan) - 1:
                self.ctrl.publish(ControllerStatus(state="goal_reached"))
        odom = Odometry()
        odom.header.frame_id = "map"
        odom.pose.pose.position.x, odom.pose.pose.position.y = float(self.pose[0]), float(self.pose[1])
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = np.sin(self.pose[2] / 2), np.cos(self.pose[2] / 2)
        self.odom.publish(odom)


def field_goal(w=60.0, h=40.0):
    goal = CoverField.Goal()
    goal.field.points = [Point32(x=x, y=y) for x, y in ((0.0, 0.0), (w, 0.0), (w, h), (0.0, h))]
    return goal


def test_cover_field_goal_runs_to_completion_with_feedback_then_a_second_goal_is_canceled(rclpy_context, operator):
    robot = Robot(rclpy_context, operator)
    sign = operator.sign
    try:
        assert robot.until(robot.client.server_is_ready, 100)
        for _ in range(20):   # idle without a goal: no plan is published
            robot.step()
        assert robot.plans == [] and robot.mission.state == "idle"
        feedback = []
        fut = robot.client.send_goal_async(sign(field_goal()), feedback_callback=lambda m: feedback.append(m.feedback))
        assert robot.until(fut.done, 200)
        handle = fut.result()
        assert handle.accepted
        res = handle.get_result_async()
        assert robot.until(res.done, 8000), (robot.mission.state, robot.mission.message)
        assert res.result().status == GoalStatus.STATUS_SUCCEEDED, res.result().result.message
        assert res.result().result.success and res.result().result.coverage_ratio > 0.8
        progress = [f.progress for f in feedback]
        assert len(progress) >= 3 and progress == sorted(progress) and 0.0 < progress[-1] <= 1.0
        assert any(f.eta_s > 0.0 for f in feedback) and all(f.distance_remaining_m >= 0.0 for f in feedback)

        # a second goal on a named field file that does not exist is rejected with nothing started
        bad = sign(CoverField.Goal(field_file="no_such_field.geojson"))
        fut = robot.client.send_goal_async(bad)
        assert robot.until(fut.done, 200) and not fut.result().accepted

        # obstacles that cut the field in two: rejected with nothing started
        split = field_goal()
        split.obstacles = [Polygon(points=[Point32(x=x, y=y) for x, y in ((28.0, -5.0), (32.0, -5.0), (32.0, 45.0),
                                                                           (28.0, 45.0))])]
        fut = robot.client.send_goal_async(sign(split))
        assert robot.until(fut.done, 200) and not fut.result().accepted

        # a goal with a pond (the app sends a field's holes as obstacles), then cancel: the mission's field has the
        # pond cut out, its plan keeps out of it; CANCELED, and the controller gets an empty plan (stop)
        robot.follow, robot.pose = False, np.array([8.0, 8.0, 0.0])  # back at the field entrance
        pond = ((34.0, 16.0), (42.0, 16.0), (42.0, 24.0), (34.0, 24.0))
        goal = field_goal()
        goal.obstacles = [Polygon(points=[Point32(x=x, y=y) for x, y in pond])]
        fut = robot.client.send_goal_async(sign(goal))
        assert robot.until(fut.done, 200) and fut.result().accepted
        handle = fut.result()
        n_plans = len(robot.plans)
        assert robot.until(lambda: len(robot.plans) > n_plans, 400)  # the new mission has started driving
        assert len(robot.mission.field.interiors) == 1
        assert robot.mission.field.area == pytest.approx(60 * 40 - 8 * 8)
        plan = robot.plans[-1]
        inside = (plan[:, 0] > 34.0) & (plan[:, 0] < 42.0) & (plan[:, 1] > 16.0) & (plan[:, 1] < 24.0)
        assert len(plan) > 10 and not inside.any()
        cancel = handle.cancel_goal_async()
        assert robot.until(cancel.done, 200)
        res = handle.get_result_async()
        assert robot.until(res.done, 200)
        assert res.result().status == GoalStatus.STATUS_CANCELED
        assert robot.until(lambda: len(robot.plans[-1]) == 0, 50)
        assert robot.mission.state == "canceled"
    finally:
        robot.close()


def test_mission_goal_node_sends_a_field_file_goal_and_reports_success(rclpy_context, tmp_path, operator):
    """What the launch files start per mission: it sends the goal (here a field file) and ends with the result."""
    from agricare.nodes.mission_goal_node import MissionGoalNode

    field = tmp_path / "small.geojson"
    field.write_text(json.dumps({"type": "Feature", "properties": {"crs": "local"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [60, 0], [60, 40], [0, 40], [0, 0]]]}}))
    robot = Robot(rclpy_context, operator)
    sender = MissionGoalNode(context=rclpy_context, parameter_overrides=[
        Parameter("action", value="cover_field"), Parameter("field_file", value=str(field)),
        Parameter("signing_key_file", value=str(operator.key_file)), Parameter("robot_name", value="tractor"),
        Parameter("use_sim_time", value=True)])
    robot.ex.add_node(sender)
    try:
        assert robot.until(lambda: sender.outcome is not None, 8000), (robot.mission.state, robot.mission.message)
        assert sender.outcome == "succeeded"
        assert robot.mission.coverage is not None and robot.mission.state == "done"
    finally:
        robot.ex.remove_node(sender)
        sender.destroy_node()
        robot.close()


def test_cover_field_goal_carries_its_ab_line_and_a_bad_one_is_refused(rclpy_context, operator):
    """The AB line travels in the signed goal: the plan's swaths run along it; a malformed line is refused."""
    import math

    robot = Robot(rclpy_context, operator)
    sign = operator.sign
    try:
        assert robot.until(robot.client.server_is_ready, 100)
        for pts in ([(5.0, 2.0)], [(5.0, 2.0), (5.3, 2.2)], [(5.0, 2.0), (float("nan"), 9.0)]):
            goal = field_goal()
            goal.ab_line.points = [Point32(x=x, y=y, z=0.0) for x, y in pts]
            fut = robot.client.send_goal_async(sign(goal))
            assert robot.until(fut.done, 200) and not fut.result().accepted, pts
        angles = {}
        for name, pts in (("east", [(2.0, 5.0), (30.0, 5.0)]), ("north", [(5.0, 2.0), (5.0, 30.0)])):
            robot.follow, robot.pose = False, np.array([8.0, 8.0, 0.0])
            goal = field_goal()
            goal.ab_line.points = [Point32(x=x, y=y, z=0.0) for x, y in pts]
            prev = robot.mission.coverage
            fut = robot.client.send_goal_async(sign(goal))
            assert robot.until(fut.done, 200) and fut.result().accepted, name
            assert robot.until(lambda prev=prev: robot.mission.coverage is not None and
                               robot.mission.coverage is not prev, 400), robot.mission.message
            angles[name] = robot.mission.coverage.angle_rad % math.pi
            handle = fut.result()
            assert robot.until(handle.cancel_goal_async().done, 200)
            res = handle.get_result_async()
            assert robot.until(res.done, 200) and res.result().status == GoalStatus.STATUS_CANCELED
        assert min(angles["east"], math.pi - angles["east"]) < 0.02, angles
        assert abs(angles["north"] - math.pi / 2) < 0.02, angles
    finally:
        robot.close()


def test_farm_mission_status_at_a_human_rate_and_changes_at_once():
    """mission/status goes out when the state or message changes and otherwise at most every status_period_s,
    not at the 20 Hz tick; a forced status (cancel, shutdown) always goes out."""
    from types import SimpleNamespace

    from agricare.nodes.farm_mission_node import FarmMissionNode

    sent, clock = [], [0.0]
    node = SimpleNamespace(state="driving", message="pass 1", mission=None, coverage=None, _last_status=(None, -1.0),
                           p=SimpleNamespace(status_period_s=0.5, frame_id="map", robot_name="tractor"),
                           _now=lambda: clock[0], _status_pub=SimpleNamespace(publish=sent.append))
    node.get_clock = lambda: SimpleNamespace(now=lambda: SimpleNamespace(to_msg=lambda: to_stamp(clock[0])))
    times = []
    for k in range(40):                     # 2 s of 20 Hz ticks
        clock[0] = 0.05 * k
        if k == 13:
            node.message = "pass 2"           # a change goes out at once
        if k == 27:
            node.state = "done"
        n = len(sent)
        FarmMissionNode._publish_status(node)
        if len(sent) > n:
            times.append(round(clock[0], 2))
    assert times == [0.0, 0.5, 0.65, 1.15, 1.35, 1.85]
    assert json.loads(sent[-1].detail)["message"] == "pass 2" and sent[-1].state == "done"
    FarmMissionNode._publish_status(node, force=True)
    assert len(sent) == 7
