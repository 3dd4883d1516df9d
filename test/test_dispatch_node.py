"""dispatcher_node in-process: latched initial plan (typed DispatchPlan), re-plan on an urgent request, bad events
refused."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed")

from agricare_interfaces.msg import DispatchPlan  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from agricare.core.planning.dispatch import check_solution  # noqa: E402
from agricare.ros.convert import plan_msg_to_dict  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS  # noqa: E402


def _office(tmp_path):
    """The office's event key and the dispatcher's events trust list (events are signed envelopes)."""
    from agricare.core.security.keys import SigningKey, TrustList

    key = SigningKey.generate("office")
    TrustList().trust(key, kinds=["dispatch_event"]).save(tmp_path / "events.yaml")
    return key, [Parameter("events_trust_file", value=str(tmp_path / "events.yaml")),
                 Parameter("command_replay_file", value=str(tmp_path / "dispatcher_commands.json"))]


def test_plan_and_replan(rclpy_context, repo_root, tmp_path):
    from agricare.core.security.commands import envelope_to_text, sign_command
    from agricare.nodes.dispatcher_node import DispatcherNode

    office, trust = _office(tmp_path)

    def signed(event):
        return envelope_to_text(sign_command(event, office, kind="dispatch_event"))

    day = repo_root / "config" / "care" / "requests_day.yaml"
    node = DispatcherNode(context=rclpy_context, parameter_overrides=trust + [
        Parameter("requests_file", value=str(day)), Parameter("time_limit_s", value=0.3)])
    plans = []
    from rclpy.node import Node

    io = Node("dispatch_io", context=rclpy_context)
    io.create_subscription(DispatchPlan, "dispatch/plan", lambda m: plans.append(plan_msg_to_dict(m)), LATCHED_QOS)
    pub = io.create_publisher(String, "dispatch/events", RELIABLE_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(io)
    try:
        for _ in range(300):
            if plans:
                break
            ex.spin_once(timeout_sec=0.02)
        assert plans and plans[0]["revision"] == 1 and plans[0]["solution"]["unserved"] == []
        assert plans[0]["meta"]["trip_c1"]["child"] == "c1"
        first = plans[0]["solution"]
        # shuttle_1 has boarded its first child; an urgent sick-child trip arrives
        s1 = first["routes"]["shuttle_1"][0]
        pub.publish(String(data=signed({"type": "vehicle_state", "vehicle": "shuttle_1", "xy": s1["xy"],
                                        "ready_s": s1["start_s"] + 30, "onboard": [[s1["request"],
                                                                                     s1["start_s"] + 30]]})))
        pub.publish(String(data="not json"))
        pub.publish(String(data=json.dumps({"type": "cancel", "request": s1["request"]})))   # unsigned
        pub.publish(String(data=signed({"type": "new_request", "now_s": s1["start_s"] + 30, "request": {
            "id": "urgent", "pickup": [192.0, 101.8], "dropoff": [251.0, 98.2], "pickup_window": [0, 1500],
            "dropoff_by": 2000, "service_s": 60, "max_ride_s": 600, "child": "c9"}})))
        for _ in range(500):
            if len(plans) >= 2:
                break
            ex.spin_once(timeout_sec=0.02)
        assert len(plans) == 2 and plans[1]["reason"] == "new_request"
        assert node.security.counts.get("dispatch_event.malformed") == 1
        assert node.security.counts.get("dispatch_event.unsigned") == 1   # the unsigned cancel did nothing
        sol = plans[1]["solution"]
        assert any(s["request"] == "urgent" for r in sol["routes"].values() for s in r)
        # the boarded child stays on shuttle_1 (drop-off only)
        mine = [s["action"] for s in sol["routes"]["shuttle_1"] if s["request"] == s1["request"]]
        assert mine == ["dropoff"]
        assert check_solution(node.problem, sol) == []
        # a shuttle asks for a re-plan (it refused a plan): the dispatcher plans again with what it knows
        pub.publish(String(data=signed({"type": "replan", "now_s": s1["start_s"] + 40,
                                        "reason": "plan rejected: picks up children already on board"})))
        for _ in range(500):
            if len(plans) >= 3:
                break
            ex.spin_once(timeout_sec=0.02)
        assert len(plans) == 3 and plans[2]["revision"] == 3 and plans[2]["reason"].startswith("replan: plan rej")
        again = plans[2]["solution"]
        assert [s["action"] for s in again["routes"]["shuttle_1"] if s["request"] == s1["request"]] == ["dropoff"]
        assert any(s["request"] == "urgent" for r in again["routes"].values() for s in r)
        assert check_solution(node.problem, again) == []
    finally:
        ex.shutdown()
        io.destroy_node()
        node.destroy_node()


def test_missing_requests_file_refused(rclpy_context, tmp_path):
    from agricare.nodes.dispatcher_node import DispatcherNode

    _key, trust = _office(tmp_path)
    with pytest.raises(ParameterError, match="requests_file"):
        DispatcherNode(context=rclpy_context, parameter_overrides=trust)
    with pytest.raises(ParameterError, match="requests_file"):
        DispatcherNode(context=rclpy_context,
                       parameter_overrides=trust + [Parameter("requests_file", value=str(tmp_path / "nope.yaml"))])
    day = Parameter("requests_file", value=str(tmp_path / "nope.yaml"))
    with pytest.raises(ParameterError, match="events_trust_file: must be set"):
        DispatcherNode(context=rclpy_context, parameter_overrides=[day])
    with pytest.raises(ParameterError, match="command_replay_file: must be set"):
        DispatcherNode(context=rclpy_context, parameter_overrides=[day, trust[0]])
