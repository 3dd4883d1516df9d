"""The app's rclpy bridge against ROS entities: action goals with feedback, the protective stop, pose, status."""

import json
import os
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
pytest.importorskip("agricare_interfaces", reason="agricare_interfaces not built (make venv)")

from agricare.app.bridge import STOP_BOX_HALF_M, Bridge  # noqa: E402


def _wait(pred, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def bridge_with_robot():
    """A started bridge and, in its context, a fake tractor (CoverField server) and shuttle topics."""
    from agricare_interfaces.action import CoverField
    from agricare_interfaces.msg import MissionStatus, SafetyState
    from geometry_msgs.msg import PolygonStamped
    from nav_msgs.msg import Odometry
    from rclpy.action import ActionServer

    from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS

    events = []
    b = Bridge({"tractor": "farm", "shuttle_1": "care"}, domain_id=int(os.environ.get("AGRICARE_TEST_DOMAIN_ID", "77")),
               on_event=lambda kind, data: events.append((kind, data)), node_name="agricare_app_test")
    b.start()
    node = rclpy.create_node("fake_robots", context=b.context, start_parameter_services=False)
    got = {"goals": [], "geofence": []}

    def execute(handle):
        got["goals"].append([(p.x, p.y) for p in handle.request.field.points])
        got.setdefault("obstacles", []).append([[(p.x, p.y) for p in o.points] for o in handle.request.obstacles])
        fb = CoverField.Feedback()
        fb.state, fb.progress, fb.distance_remaining_m = "covering", 0.5, 12.0
        handle.publish_feedback(fb)
        handle.succeed()
        res = CoverField.Result()
        res.success, res.message, res.coverage_ratio = True, "covered", 0.99
        return res

    ActionServer(node, CoverField, "/tractor/cover_field", execute)
    node.create_subscription(PolygonStamped, "/shuttle_1/safety/geofence",
                             lambda m: got["geofence"].append([(p.x, p.y) for p in m.polygon.points]), LATCHED_QOS)
    pubs = {"odom": node.create_publisher(Odometry, "/shuttle_1/odom", SENSOR_QOS),
            "safety": node.create_publisher(SafetyState, "/shuttle_1/safety/state", LATCHED_QOS),
            "status": node.create_publisher(MissionStatus, "/shuttle_1/mission/status", RELIABLE_QOS)}
    b.executor.add_node(node)
    try:
        yield b, got, pubs, events
    finally:
        b.executor.remove_node(node)
        node.destroy_node()
        b.stop()


def test_goal_feedback_result_and_missing_server(bridge_with_robot):
    b, got, _pubs, events = bridge_with_robot
    assert _wait(lambda: b._actions[("tractor", "cover_field")].server_is_ready()), "CoverField server not seen"
    ring = [[0.0, 0.0], [40.0, 0.0], [40.0, 30.0], [0.0, 30.0]]
    pond = [[10.0, 10.0], [14.0, 10.0], [14.0, 14.0], [10.0, 14.0]]
    res = b.send_command("tractor", "cover_field", {"job_id": 7, "polygon": ring, "holes": [pond]}, "farmer")
    assert res.ok and res.envelope["kind"] == "cover_field" and res.envelope["issuer"] == "farmer"
    assert _wait(lambda: any(k == "goal_result" for k, _ in events)), events
    assert got["goals"] == [[tuple(p) for p in ring]]
    assert got["obstacles"] == [[[tuple(p) for p in pond]]]    # the field's pond goes with the goal, signed
    fb = [d for k, d in events if k == "goal_feedback"]
    assert fb and fb[0]["job"] == 7 and fb[0]["progress"] == 0.5
    result = next(d for k, d in events if k == "goal_result")
    assert result == {"robot": "tractor", "job": 7, "success": True, "message": "covered"}
    # no TransportChild server on the shuttle: the result says so, nothing pretends to have started
    res = b.send_command("shuttle_1", "transport_child", {"request_id": "r", "child_id": "c", "pickup": [0, 0],
                                                          "dropoff": [1, 1]}, "staff")
    assert not res.ok and "no action server on /shuttle_1/transport_child" in res.message
    assert not b.send_command("nobody", "resume", {}, "staff").ok


def test_pose_status_and_unsigned_protective_stop(bridge_with_robot):
    from agricare_interfaces.msg import MissionStatus, SafetyState
    from nav_msgs.msg import Odometry

    from agricare.ros.convert import yaw_to_quaternion_msg

    b, got, pubs, events = bridge_with_robot
    assert not b.send_command("shuttle_1", "protective_stop", {}, "staff").ok   # no pose yet: refused, said why
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.position.x, odom.pose.pose.position.y = 75.0, 101.8
    odom.pose.pose.orientation = yaw_to_quaternion_msg(0.5)
    odom.twist.twist.linear.x = 1.2
    st = MissionStatus(robot="shuttle_1", mission="care", state="ride", progress=0.25,
                       detail=json.dumps({"phase": "ride", "onboard": ["c1"], "delivered": [],
                                          "trips": {"trip_c1": {"child": "c1", "boarded_s": 12.5}}}))
    ok = _wait(lambda: (pubs["odom"].publish(odom), pubs["status"].publish(st),
                        pubs["safety"].publish(SafetyState(state=SafetyState.SLOW, reason="person_near")),
                        b.snapshot()["robots"]["shuttle_1"]["mission"] is not None
                        and b.snapshot()["robots"]["shuttle_1"]["pose"] is not None
                        and b.snapshot()["robots"]["shuttle_1"]["safety"] is not None)[-1], 10.0)
    assert ok
    s = b.snapshot()["robots"]["shuttle_1"]
    assert s["pose"] == [75.0, 101.8, 0.5] and s["pose_source"] == "odom" and s["speed_mps"] == 1.2
    assert s["safety"]["state"] == "SLOW" and s["safety"]["reason"] == "person_near"
    assert s["mission"]["onboard_requests"] == [["trip_c1", 12.5]] and s["mission"]["progress"] == 0.25
    res = b.send_command("shuttle_1", "protective_stop", {}, "staff")
    assert res.ok and res.envelope["signed"] is None                 # no site key: unsigned, and it says so
    assert _wait(lambda: len(got["geofence"]) >= 1)
    xs, ys = zip(*got["geofence"][-1])
    h = STOP_BOX_HALF_M
    assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((75.0 - h, 75.0 + h, 101.8 - h, 101.8 + h))
    assert b.snapshot()["robots"]["shuttle_1"]["stopped_by_app"]
    assert b.send_command("shuttle_1", "resume", {}, "staff").ok
    assert _wait(lambda: len(got["geofence"]) >= 2 and got["geofence"][-1] == [])   # empty polygon clears it
    assert not b.snapshot()["robots"]["shuttle_1"]["stopped_by_app"]


def test_site_answers_dispatch_events_and_goals_leave_signed(tmp_path):
    """With the site's command key the bridge signs what it sends: the SiteAnswer message and the action goals
    (signature block over their canonical encoding, checked as the robots check them) and the dispatcher's event
    envelope; start_scouting sends a signed ScoutField goal."""
    from agricare_interfaces.action import ScoutField
    from agricare_interfaces.msg import SiteAnswer
    from rclpy.action import ActionServer
    from std_msgs.msg import String

    from agricare.app.bridge import CommandSigner
    from agricare.core.security.commands import CommandVerifier
    from agricare.core.security.keys import SigningKey, TrustList
    from agricare.ros.qos import RELIABLE_QOS
    from agricare.ros.signed import verify_message

    key = SigningKey.generate("app")
    trust = TrustList().trust(key, kinds=["site_answer", "dispatch_event", "mission_goal"])
    b = Bridge({"row_robot": "farm", "shuttle_1": "care"},
               domain_id=int(os.environ.get("AGRICARE_TEST_DOMAIN_ID", "77")), signer=CommandSigner(key),
               node_name="agricare_app_signed")
    b.start()
    node = rclpy.create_node("fake_robots_signed", context=b.context, start_parameter_services=False)
    got = {"answers": [], "events": [], "goals": []}
    node.create_subscription(SiteAnswer, "/shuttle_1/care/site_answer", got["answers"].append, RELIABLE_QOS)
    node.create_subscription(String, "/dispatch/events", got["events"].append, RELIABLE_QOS)

    def execute(handle):
        got["goals"].append(handle.request)
        handle.succeed()
        return ScoutField.Result(success=True, message="scouted", rows_done=handle.request.rows)

    ActionServer(node, ScoutField, "/row_robot/scout_field", execute)
    b.executor.add_node(node)
    try:
        assert _wait(lambda: b._actions[("row_robot", "scout_field")].server_is_ready())
        assert _wait(lambda: b._pubs[("shuttle_1", "site_answer")].get_subscription_count() >= 1)
        res = b.send_command("shuttle_1", "site_answer", {"type": "code", "child": "c1", "trip": "trip_c1",
                                                          "guardian": "g1", "code": "ABCD"}, "guardian1")
        assert res.ok and res.envelope["signed"]["key_id"] == "app"
        res = b.send_command("", "dispatch", {"type": "cancel", "request": "trip_c1"}, "staff1")
        assert res.ok
        res = b.start_scouting("row_robot", 3, "farmer1", job_id=7)
        assert res.ok, res.message
        assert _wait(lambda: got["answers"] and got["events"] and got["goals"])
        answer = got["answers"][0]
        cmd = verify_message(answer, CommandVerifier(trust, ["site_answer"], "shuttle_1"))
        assert cmd.key_id == "app" and answer.code == "ABCD" and answer.trip == "trip_c1"
        answer.code = "WXYZ"                                   # any change voids it
        with pytest.raises(Exception, match="bad_signature"):
            verify_message(answer, CommandVerifier(trust, ["site_answer"], "shuttle_1"))
        ev = CommandVerifier(trust, ["dispatch_event"]).verify(got["events"][0].data, time.time())
        assert ev.payload == {"type": "cancel", "request": "trip_c1"}
        goal = got["goals"][0]
        assert goal.rows == 3
        assert verify_message(goal, CommandVerifier(trust, ["mission_goal"], "row_robot")).kind == "mission_goal"
        assert not b.start_scouting("row_robot", -1, "farmer1").ok
    finally:
        b.executor.remove_node(node)
        node.destroy_node()
        b.stop()
