"""care_mission_node in-process with care_site_sim_node and handover_node; the vehicle is faked.

A test node plays simulator and controller: it publishes ``/clock`` (fast), puts the shuttle at the end of
every plan it receives (``odometry/filtered`` for the mission, ``ground_truth/odom`` for the simulated site)
and reports ``goal_reached``. Failure paths through the
node: guardian absent at home -> the child is taken back to the nursery and handed over to the staff;
a code of another child is refused before the right one is accepted.
"""

from __future__ import annotations

import math

import pytest
import rclpy
import yaml

pytest.importorskip("agricare_interfaces.msg")

from action_msgs.msg import GoalStatus  # noqa: E402
from agricare_interfaces.action import TransportChild  # noqa: E402
from agricare_interfaces.msg import ControllerStatus  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from nav_msgs.msg import Odometry, Path  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from agricare_interfaces.msg import CareNotification  # noqa: E402

from harness import CARE_DAY  # noqa: E402

from agricare.core.missions.care_sim import CareSite, CareSiteParams  # noqa: E402
from agricare.core.missions.handover import TripCodeVerifier, UsedCodeStore, write_key  # noqa: E402
from agricare.nodes.care_mission_node import CareMissionNode  # noqa: E402
from agricare.ros.convert import care_notification_to_dict  # noqa: E402
from agricare.nodes.care_site_sim_node import CareSiteSimNode  # noqa: E402
from agricare.nodes.handover_node import HandoverNode  # noqa: E402
from agricare.ros.convert import path_to_array, yaw_to_quaternion_msg  # noqa: E402
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

DAY = CARE_DAY


class FakeVehicle(rclpy.node.Node):
    """Clock + teleporting vehicle + controller status."""

    def __init__(self, **kw):
        super().__init__("fake_vehicle", **kw)
        self.t = 0.0
        self.pose = (60.0, 101.8, 0.0)
        self.pending_goal = None
        self.clock_pub = self.create_publisher(Clock, "/clock", RELIABLE_QOS)
        self.odom_pub = self.create_publisher(Odometry, "/shuttle_1/odometry/filtered", SENSOR_QOS)  # the mission
        self.site_odom_pub = self.create_publisher(Odometry, "/shuttle_1/ground_truth/odom", RELIABLE_QOS)  # site sim
        self.status_pub = self.create_publisher(ControllerStatus, "/shuttle_1/controller/status", RELIABLE_QOS)
        self.create_subscription(Path, "/shuttle_1/plan", self._on_plan, LATCHED_QOS)
        self.plans = 0

    def _on_plan(self, msg):
        arr = path_to_array(msg)
        if len(arr):
            self.plans += 1
            self.pending_goal = (self.t + 1.0, tuple(arr[-1]))
            self.status_pub.publish(ControllerStatus(state="tracking"))

    def step(self, dt):
        self.t += dt
        sec = int(self.t)
        self.clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=int((self.t - sec) * 1e9))))
        if self.pending_goal is not None and self.t >= self.pending_goal[0]:
            self.pose = self.pending_goal[1]
            self.pending_goal = None
            self.status_pub.publish(ControllerStatus(state="goal_reached"))
        m = Odometry()
        m.header.frame_id = "map"
        m.header.stamp = Time(sec=sec, nanosec=int((self.t - sec) * 1e9))
        m.pose.pose.position.x, m.pose.pose.position.y = float(self.pose[0]), float(self.pose[1])
        m.pose.pose.orientation = yaw_to_quaternion_msg(float(self.pose[2]))
        self.odom_pub.publish(m)
        self.site_odom_pub.publish(m)


def _spin_until_idle(ex, max_callbacks: int = 400):
    """Run every ready callback (a busy machine must not let simulated time outrun the graph)."""
    from rclpy.executors import TimeoutException

    for _ in range(max_callbacks):
        try:
            handler, _e, _n = ex.wait_for_ready_callbacks(timeout_sec=0.002)
        except TimeoutException:
            return
        handler()
        if handler.exception() is not None:
            raise handler.exception()


def _run_day(rclpy_context, tmp_path, site_params: dict, until_s: float = 400.0, operator=None):
    req = tmp_path / "day.yaml"
    req.write_text(yaml.safe_dump(DAY))
    key = tmp_path / "sim.key"
    write_key(key)
    sim_time = [Parameter("use_sim_time", value=True)]
    common = dict(context=rclpy_context, namespace="/shuttle_1")
    site = CareSiteSimNode(parameter_overrides=sim_time + [
        Parameter("requests_file", value=str(req)), Parameter("scenario_file", value="care_small.yaml"),
        Parameter("key_file", value=str(key)), Parameter("signing_key_file", value=str(tmp_path / "site" / "site.key"))]
        + [Parameter(k, value=v) for k, v in site_params.items()], **common)
    ho = HandoverNode(parameter_overrides=sim_time + [
        Parameter("key_file", value=str(key)), Parameter("used_nonces_file", value=str(tmp_path / "nonces.txt")),
        Parameter("audit_log", value=str(tmp_path / "ho.jsonl"))], **common)
    mission = CareMissionNode(parameter_overrides=sim_time + [
        Parameter("robot_name", value="shuttle_1"), Parameter("scenario_file", value="care_small.yaml"),
        Parameter("requests_file", value=str(req)), Parameter("guardian_escalate_s", value=10.0),
        Parameter("guardian_wait_s", value=20.0), Parameter("audit_log", value=str(tmp_path / "m.jsonl")),
        Parameter("handover_key_file", value=str(key)),
        Parameter("used_codes_file", value=str(tmp_path / "used_codes.json")),
        Parameter("site_trust_file", value=str(tmp_path / "site" / "trust.yaml"))] + operator.parameters(),
        **common)
    fake = FakeVehicle(context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    for n in (site, ho, mission, fake):
        ex.add_node(n)
    notes = []
    watch = rclpy.node.Node("watch", context=rclpy_context)
    watch.create_subscription(CareNotification, "/shuttle_1/care/notifications",
                              lambda m: notes.append(care_notification_to_dict(m)), RELIABLE_QOS)
    ex.add_node(watch)
    # the shuttle idles until it has a goal: the whole day plan, sent as an operator (or the runner) would
    client = ActionClient(fake, TransportChild, "/shuttle_1/transport_child")
    goal = result = None
    try:
        for _ in range(50):
            if mission.state != "idle" or fake.plans:
                break
            fake.step(0.1)
            _spin_until_idle(ex)
        assert fake.plans == 0 and mission.state == "idle"  # nothing moves without a goal
        while fake.t < until_s and not (mission.finished and result is not None and result.done()):
            if goal is None and client.server_is_ready():
                goal = client.send_goal_async(operator.sign(TransportChild.Goal(), "shuttle_1"))
            if goal is not None and goal.done() and result is None:
                assert goal.result().accepted
                result = goal.result().get_result_async()
            fake.step(0.1)
            _spin_until_idle(ex)
        for _ in range(20):
            ex.spin_once(timeout_sec=0.0)
        assert result is not None and result.done(), "the transport_child goal did not finish"
        assert result.result().status == GoalStatus.STATUS_SUCCEEDED, result.result().result.message
        return mission, notes, fake
    finally:
        ex.shutdown()
        for n in (site, ho, mission, fake, watch):
            n.destroy_node()


@pytest.mark.timeout(60)
def test_guardian_absent_child_back_to_nursery(rclpy_context, tmp_path, operator):
    mission, notes, fake = _run_day(rclpy_context, tmp_path, {"absent_guardians": ["g_e1"]}, operator=operator)
    assert mission.finished
    d = mission.figures_summary()
    assert d["delivered"] == ["trip_e2"]
    assert d["returned_to_nursery"] == ["trip_e1"]
    assert d["trips"]["trip_e1"]["receiver"] == "staff_nursery"
    kinds = [n["kind"] for n in notes]
    assert "guardian_absent" in kinds and "child_returned" in kinds
    assert math.hypot(fake.pose[0] - 60.0, fake.pose[1] - 101.8) < 1e-6  # parked at the depot
    # care_small has boarding signs but this fake vehicle has no camera: every docking fell back to the estimate
    assert d["docking"] and all(x["source"] == "estimate" for x in d["docking"]), d["docking"]
    assert d["handovers_verified"] == 2 and d["handovers_refused"] == 0


@pytest.mark.timeout(60)
def test_code_of_another_child_refused_then_right_code_accepted(rclpy_context, tmp_path, operator):
    mission, notes, _ = _run_day(rclpy_context, tmp_path, {"forged_first": ["e2"]}, operator=operator)
    assert mission.finished
    d = mission.figures_summary()
    assert sorted(d["delivered"]) == ["trip_e1", "trip_e2"] and d["returned_to_nursery"] == []
    assert d["handovers_refused"] == 1 and d["handovers_verified"] == 2
    # the sender learns only "invalid", never whose code it was
    assert d["refusals"][0]["child"] == "e2" and d["refusals"][0]["reason"] == "invalid"
    assert "handover_refused" in [n["kind"] for n in notes]


def test_care_site_boards_only_at_the_stop_after_window_open(tmp_path):
    key = b"k" * 32
    site = CareSite(DAY["requests"], key, (192.0, 101.8), CareSiteParams(board_delay_s=2.0, handover_delay_s=1.0))
    site.request("boarding", "e1", "trip_e1", "nursery", 0.0)
    assert site.step(5.0, (150.0, 101.8)) == []  # not at the boarding point
    assert site.step(5.0, (192.0, 101.8), 1.0) == []  # still moving
    out = site.step(5.0, (192.2, 101.8))
    assert out == [{"type": "boarded", "child": "e1", "trip": "trip_e1"}]
    site.request("handover", "e1", "trip_e1", "home_1", 10.0, vehicle="shuttle_1")
    assert site.step(10.5, (75.0, 101.8)) == []  # the guardian needs a moment
    (code,) = site.step(11.5, (75.0, 101.8))
    assert code["guardian"] == "g_e1"
    store = UsedCodeStore(tmp_path / "used.json")
    assert TripCodeVerifier(key, "shuttle_1", store).verify(code["code"], "e1", "g_e1", "trip_e1", 12.0).accepted
    assert not TripCodeVerifier(key, "shuttle_2", store).verify(code["code"], "e1", "g_e1", "trip_e1", 12.0).accepted
    with pytest.raises(ValueError, match="kind"):
        CareSiteParams() and site.request("wave", "e1", "trip_e1", "home_1", 0.0)
    with pytest.raises(ValueError, match="board_delay_s"):
        CareSiteParams(board_delay_s=-1.0)
