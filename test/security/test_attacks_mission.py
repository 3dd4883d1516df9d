"""Attacks on the care mission, run against the real care_mission_node with an attacker node on the graph:
a fake hand-over verifier, a wound-back /clock, a replayed code after a restart, forged / replayed /
malformed dispatch plans, fake site answers, unsigned / forged / expired / replayed transport_child goals."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("cryptography", reason="cryptography (Ed25519) is not installed")
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
pytest.importorskip("agricare_interfaces.msg")

from agricare_interfaces.action import TransportChild  # noqa: E402
from agricare_interfaces.msg import DispatchPlan, HandoverEvent, SiteAnswer  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from agricare_interfaces.srv import VerifyHandover  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from harness import CARE_DAY, AttackerGraph, attack_goals  # noqa: E402

from agricare.core.missions import care  # noqa: E402
from agricare.core.missions.handover import issue_trip_code, write_key  # noqa: E402
from agricare.core.security.commands import envelope_to_text, sign_command  # noqa: E402
from agricare.core.security.keys import SigningKey, TrustList  # noqa: E402
from agricare.nodes.care_mission_node import CareMissionNode, solve_day  # noqa: E402
from agricare.ros.convert import plan_dict_to_msg  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.signed import sign_message  # noqa: E402
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS  # noqa: E402

DAY = CARE_DAY


class Graph(AttackerGraph):
    def __init__(self, ctx, tmp_path):
        self.ctx, self.tmp = ctx, tmp_path
        self.req = tmp_path / "day.yaml"
        self.req.write_text(json.dumps(DAY))
        self.key_file = tmp_path / "sim.key"
        if not self.key_file.exists():
            write_key(self.key_file)
        self.key = bytes.fromhex(self.key_file.read_text().strip())
        super().__init__(ctx)
        self.clock = self.attacker.create_publisher(Clock, "/clock", RELIABLE_QOS)
        self.plan_pub = self.attacker.create_publisher(DispatchPlan, "/dispatch/plan", LATCHED_QOS)
        self.site_key = SigningKey.generate("nursery_tablet")
        self.site_trust = tmp_path / "site.yaml"
        TrustList().trust(self.site_key, kinds=["site_answer"]).save(self.site_trust)
        self.events: list = []
        self.attacker.create_subscription(HandoverEvent, "/shuttle_1/handover/events", self.events.append,
                                          RELIABLE_QOS)

    def mission(self, operator=None, **params):
        base = dict(robot_name="shuttle_1", scenario_file="care_small.yaml", requests_file=str(self.req),
                    handover_key_file=str(self.key_file), used_codes_file=str(self.tmp / "used_codes.json"),
                    audit_log=str(self.tmp / f"m{len(self.nodes)}.jsonl"), use_sim_time=True,
                    site_trust_file=str(self.site_trust), command_replay_file=str(self.tmp / "commands.json"))
        if operator is None:   # a trust list of some operator (the goal tests pass theirs)
            trust = self.tmp / "no_operator.yaml"
            if not trust.exists():
                TrustList().trust(SigningKey.generate("someone"), kinds=["mission_goal"]).save(trust)
            base["goal_trust_file"] = str(trust)
        else:
            base["goal_trust_file"] = str(operator.trust)
        base.update(params)
        node = CareMissionNode(context=self.ctx, namespace="/shuttle_1",
                               parameter_overrides=[Parameter(k, value=v) for k, v in base.items()])
        return self.add(node)

    def drop(self, node):
        node.on_shutdown()     # the mission node's own shutdown (audit record) before it goes
        super().drop(node)

    def set_clock(self, node, t_s):
        self.clock.publish(Clock(clock=Time(sec=int(t_s), nanosec=0)))
        assert self.spin_until(lambda: abs(node._now_s() - t_s) < 1e-6)



@pytest.fixture
def graph(rclpy_context, tmp_path):
    g = Graph(rclpy_context, tmp_path)
    yield g
    g.close()


def _dropoff(node, child):
    return next(s for s in node.mission.stops if s.action == care.DROPOFF and s.child_id == child)


def _verdicts(node):
    d = node.figures_summary()
    return d["handovers_verified"], [r["reason"] for r in d["refusals"]]


@pytest.mark.timeout(60)
def test_fake_verifier_releases_nothing_and_a_wound_back_clock_unexpires_nothing(graph):
    m = graph.mission()
    calls = []

    def fake_verifier(req, resp):  # answers "accepted" for anything
        calls.append(req.code)
        resp.accepted, resp.reason = True, "ok"
        return resp
    graph.attacker.create_service(VerifyHandover, "/shuttle_1/verify_handover", fake_verifier)
    graph.set_clock(m, 1000)
    stop = _dropoff(m, "e1")
    m._check_code(stop, "g_e1", "GARB-AGEC-ODEX-XXXX-XXXX-XXXX-XXXX-XXXX")
    other_vehicle = issue_trip_code(graph.key, "e1", "g_e1", "trip_e1", "shuttle_2", 995, 300)
    m._check_code(stop, "g_e1", other_vehicle)
    other_child = issue_trip_code(graph.key, "e2", "g_e2", "trip_e2", "shuttle_1", 995, 300)
    m._check_code(stop, "g_e1", other_child)
    verified, reasons = _verdicts(m)
    assert verified == 0 and calls == []              # the network verifier is never asked
    assert reasons == ["malformed", "invalid", "invalid"]   # nothing says whose code it was
    assert graph.spin_until(lambda: len(graph.events) >= 3)
    assert not any(e.accepted for e in graph.events)

    # a code that expired at 960 s; the attacker winds /clock back to 930 s
    expired = issue_trip_code(graph.key, "e1", "g_e1", "trip_e1", "shuttle_1", 900, 60)
    m._check_code(stop, "g_e1", expired)
    graph.set_clock(m, 930)
    m._check_code(stop, "g_e1", expired)
    verified, reasons = _verdicts(m)
    assert verified == 0 and reasons[-2:] == ["expired", "clock_rewound"]
    # the control: a valid code at the real time is accepted
    graph.set_clock(m, 1001)
    m._check_code(stop, "g_e1", issue_trip_code(graph.key, "e1", "g_e1", "trip_e1", "shuttle_1", 1000, 60))
    assert _verdicts(m)[0] == 1


@pytest.mark.timeout(60)
def test_code_replayed_after_restart_is_refused_and_the_store_is_required(graph):
    m = graph.mission()
    graph.set_clock(m, 1000)
    code = issue_trip_code(graph.key, "e1", "g_e1", "trip_e1", "shuttle_1", 995, 300)
    m._check_code(_dropoff(m, "e1"), "g_e1", code)
    assert _verdicts(m) == (1, [])
    graph.drop(m)
    m2 = graph.mission()                               # restarted, same used-code store
    graph.set_clock(m2, 1001)
    m2._check_code(_dropoff(m2, "e1"), "g_e1", code)
    assert _verdicts(m2) == (0, ["replayed"])
    with pytest.raises(ParameterError, match="used_codes_file"):
        graph.mission(used_codes_file="")


def _plan_msg(plan, key=None, **kw):
    msg = plan_dict_to_msg(plan)
    return sign_message(msg, key, kind="dispatch_plan", **kw) if key is not None else msg


@pytest.mark.timeout(60)
def test_forged_replayed_and_malformed_dispatch_plans_are_refused_and_the_node_keeps_running(graph):
    fleet, mallory = SigningKey.generate("fleet"), SigningKey.generate("mallory")
    trust = graph.tmp / "trust.yaml"
    TrustList().trust(fleet, kinds=["dispatch_plan"]).save(trust)
    m = graph.mission(plan_topic="/dispatch/plan", plan_trust_file=str(trust))
    sec = m.security
    plan = json.loads(json.dumps(solve_day(DAY, "greedy", 2.0, None)))

    def send(msg, key):
        before = sec.counts.get(key, 0)
        graph.plan_pub.publish(msg)
        assert graph.spin_until(lambda: sec.counts.get(key, 0) > before), key

    send(_plan_msg({**plan, "revision": 5}), "dispatch_plan.unsigned")      # unsigned, higher revision
    send(_plan_msg({**plan, "revision": 7}, mallory), "dispatch_plan.unknown_key")
    forged = _plan_msg({**plan, "revision": 8}, fleet)
    forged.routes[0].stops[0].position.x += 50.0                            # a stop moved after signing
    send(forged, "dispatch_plan.bad_signature")
    forged = _plan_msg({**plan, "revision": 8}, fleet)
    forged.signature.target = "shuttle_1"                                   # the signature block edited
    send(forged, "dispatch_plan.bad_signature")
    send(_plan_msg({**plan, "revision": 9}, fleet, issued_at_s=1000.0, lifetime_s=60.0), "dispatch_plan.expired")
    assert m.mission is None and m.plan_revision == -1
    genuine = _plan_msg({**plan, "revision": 1}, fleet, target="shuttle_1")
    send(genuine, "dispatch_plan.accepted")
    assert m.plan_revision == 1 and m.mission is not None
    send(genuine, "dispatch_plan.replayed")
    bad = plan_dict_to_msg({**plan, "revision": 2})
    bad.routes[0].stops[0].action = "teleport"
    send(sign_message(bad, fleet, kind="dispatch_plan"), "dispatch_plan.malformed")
    bad = plan_dict_to_msg({**plan, "revision": 2})
    bad.routes[0].stops[0].arrival_s = float("nan")
    send(sign_message(bad, fleet, kind="dispatch_plan"), "dispatch_plan.malformed")
    bad = plan_dict_to_msg({**plan, "revision": 2})
    bad.unserved_reasons = ["no seat"]
    send(sign_message(bad, fleet, kind="dispatch_plan"), "dispatch_plan.malformed")
    send(_plan_msg({**plan, "revision": 3}, fleet), "dispatch_plan.accepted")
    assert m.plan_revision == 3
    assert sec.total("dispatch_plan") == 9
    with pytest.raises(ParameterError, match="plan_trust_file"):
        graph.mission(plan_topic="/dispatch/plan")


@pytest.mark.timeout(60)
def test_unsigned_and_forged_goals_refused_by_the_route_planner(graph):
    from geometry_msgs.msg import PoseStamped

    from agricare.nodes.route_planner_node import RoutePlannerNode

    fleet, mallory = SigningKey.generate("fleet"), SigningKey.generate("mallory")
    trust = graph.tmp / "goals.yaml"
    TrustList().trust(fleet, kinds=["mission_goal"]).save(trust)
    planner = RoutePlannerNode(context=graph.ctx, namespace="/shuttle_1",
                               parameter_overrides=[Parameter("trust_file", value=str(trust))])
    graph.ex.add_node(planner)
    graph.nodes.append(planner)
    pose_pub = graph.attacker.create_publisher(PoseStamped, "/shuttle_1/goal_pose", RELIABLE_QOS)
    signed_pub = graph.attacker.create_publisher(String, "/shuttle_1/goal_signed", RELIABLE_QOS)
    sec = planner.security
    goal = PoseStamped()
    goal.header.frame_id = "map"
    pose_pub.publish(goal)
    assert graph.spin_until(lambda: sec.counts.get("goal_pose.unsigned", 0) == 1)
    signed_pub.publish(String(data=envelope_to_text(sign_command({"x_m": 1.0, "y_m": 2.0, "yaw_rad": 0.0}, mallory,
                                                                 kind="mission_goal"))))
    assert graph.spin_until(lambda: sec.counts.get("goal_signed.unknown_key", 0) == 1)
    assert "waiting for a goal" in planner.diag.message       # nothing reached the planner
    signed_pub.publish(String(data=envelope_to_text(sign_command({"x_m": 1.0, "y_m": 2.0, "yaw_rad": 0.0}, fleet,
                                                                 kind="mission_goal"))))
    assert graph.spin_until(lambda: "no current pose" in planner.diag.message)   # the fleet's goal did


@pytest.mark.timeout(60)
def test_fake_boarded_site_answer_refused_when_site_answers_are_signed(graph):
    site, mallory = graph.site_key, SigningKey.generate("mallory")
    m = graph.mission()
    pub = graph.attacker.create_publisher(SiteAnswer, "/shuttle_1/care/site_answer", RELIABLE_QOS)
    sec = m.security

    def answer(key=None, **kw):
        msg = SiteAnswer(robot="shuttle_1", type="boarded", child="e1", trip="trip_e1")
        return sign_message(msg, key, kind="site_answer", **kw) if key is not None else msg

    forged = answer(site, target="shuttle_1")
    forged.child = "e2"                                        # another child, after signing
    replayed = answer(site, target="shuttle_1")
    for msg, key in ((answer(), "site_answer.unsigned"),
                     (answer(mallory), "site_answer.unknown_key"),
                     (answer(site, target="shuttle_2"), "site_answer.wrong_target"),
                     (forged, "site_answer.bad_signature"),
                     (answer(site, target="shuttle_1", issued_at_s=1000.0, lifetime_s=60.0), "site_answer.expired"),
                     (replayed, "site_answer.accepted"),
                     (replayed, "site_answer.replayed")):
        pub.publish(msg)
        assert graph.spin_until(lambda k=key: sec.counts.get(k, 0) == 1), key
    with pytest.raises(ParameterError, match="site_trust_file"):
        graph.mission(site_trust_file="")


@pytest.mark.timeout(60)
def test_unsigned_forged_expired_replayed_and_unknown_key_transport_child_goals_are_rejected(graph, operator):
    """Each bad goal is rejected (nothing starts) and counted on /diagnostics; the operator's goal runs, a copy
    of it is a replay, also after a restart; the node does not start without the trust list or the store."""
    m = graph.mission(operator=operator)
    graph.set_clock(m, 10)
    client = ActionClient(graph.attacker, TransportChild, "/shuttle_1/transport_child")
    assert graph.spin_until(client.server_is_ready)
    sec = m.security

    def goal(**kw):
        return TransportChild.Goal(request_id="trip_e1", **kw)

    def tamper(forged):
        forged.request_id = "trip_e2"                            # another trip, after signing

    def wrong_kind_and_nothing_started(send):
        assert not send(sign_message(goal(), operator.key, kind="site_answer"),
                        "transport_child_goal.wrong_kind").accepted
        assert m.state == "idle" and m._goal is None           # nothing started

    genuine = attack_goals(graph.spin_until, m, client, "transport_child_goal", goal, operator, "shuttle_1",
                           tamper=tamper, before_genuine=wrong_kind_and_nothing_started)
    assert graph.spin_until(lambda: m._goal is not None)
    assert sec.total("transport_child_goal") == 7 and "refused transport_child_goal" in sec.diag.message
    graph.drop(m)
    m2 = graph.mission(operator=operator)                    # restarted: the sequence store remembers
    assert graph.spin_until(client.server_is_ready)
    before = m2.security.counts.get("transport_child_goal.replayed", 0)
    fut = client.send_goal_async(genuine)
    assert graph.spin_until(fut.done) and not fut.result().accepted
    assert m2.security.counts.get("transport_child_goal.replayed", 0) == before + 1
    with pytest.raises(ParameterError, match="goal_trust_file"):
        graph.mission(goal_trust_file="")
    with pytest.raises(ParameterError, match="command_replay_file"):
        graph.mission(command_replay_file="")


@pytest.mark.timeout(60)
def test_wound_back_clock_unexpires_nothing_at_the_handover_node(graph):
    from agricare.core.missions.handover import issue_code
    from agricare.nodes.handover_node import HandoverNode

    node = HandoverNode(context=graph.ctx, namespace="/shuttle_1", parameter_overrides=[
        Parameter(k, value=v) for k, v in dict(key_file=str(graph.key_file), use_sim_time=True,
                                               used_nonces_file=str(graph.tmp / "nonces.txt")).items()])
    graph.ex.add_node(node)
    graph.nodes.append(node)
    cli = graph.attacker.create_client(VerifyHandover, "/shuttle_1/verify_handover")
    assert graph.spin_until(cli.service_is_ready)

    def ask(code):
        req = VerifyHandover.Request(code=code, child_id="e1", guardian_id="g_e1", trip_id="trip_e1")
        fut = cli.call_async(req)
        assert graph.spin_until(fut.done)
        return fut.result()

    code = issue_code(graph.key, "e1", "g_e1", "trip_e1", 960)
    graph.set_clock(node, 1000)
    assert ask(code).reason.startswith("expired")
    graph.set_clock(node, 930)
    res = ask(code)
    assert not res.accepted and res.reason.startswith("clock_rewound")


@pytest.mark.timeout(60)
def test_signed_plan_replayed_after_a_restart_is_refused(graph):
    fleet = SigningKey.generate("fleet")
    trust = graph.tmp / "trust.yaml"
    TrustList().trust(fleet, kinds=["dispatch_plan"]).save(trust)
    plan = json.loads(json.dumps(solve_day(DAY, "greedy", 2.0, None)))
    genuine = _plan_msg({**plan, "revision": 1}, fleet)
    m = graph.mission(plan_topic="/dispatch/plan", plan_trust_file=str(trust))
    graph.plan_pub.publish(genuine)
    assert graph.spin_until(lambda: m.plan_revision == 1)
    graph.drop(m)
    m2 = graph.mission(plan_topic="/dispatch/plan", plan_trust_file=str(trust))   # restarted: revision -1
    graph.plan_pub.publish(genuine)
    assert graph.spin_until(lambda: m2.security.counts.get("dispatch_plan.replayed", 0) >= 1)
    assert m2.plan_revision == -1 and m2.mission is None


@pytest.mark.timeout(60)
def test_dispatcher_signs_plans_and_takes_only_signed_events(graph, repo_root):
    from agricare.core.security.commands import CommandVerifier
    from agricare.core.security.keys import write_signing_key
    from agricare.ros.convert import plan_msg_to_dict
    from agricare.ros.signed import verify_message
    from agricare.nodes.dispatcher_node import DispatcherNode

    fleet, office, mallory = (SigningKey.generate(k) for k in ("fleet", "office", "mallory"))
    key_path, _ = write_signing_key(graph.tmp / "keys", fleet)
    trust = graph.tmp / "events.yaml"
    TrustList().trust(office, kinds=["dispatch_event"]).save(trust)
    node = DispatcherNode(context=graph.ctx, parameter_overrides=[
        Parameter("requests_file", value=str(repo_root / "config/care/requests_day.yaml")),
        Parameter("time_limit_s", value=0.3), Parameter("method", value="greedy"),
        Parameter("signing_key_file", value=key_path), Parameter("events_trust_file", value=str(trust)),
        Parameter("command_replay_file", value=str(graph.tmp / "dispatcher_commands.json"))])
    graph.ex.add_node(node)
    graph.nodes.append(node)
    plans = []
    graph.attacker.create_subscription(DispatchPlan, "/dispatch/plan", plans.append, LATCHED_QOS)
    events = graph.attacker.create_publisher(String, "/dispatch/events", RELIABLE_QOS)
    assert graph.spin_until(lambda: plans)
    verify_message(plans[0], CommandVerifier(TrustList().trust(fleet), ["dispatch_plan"], max_lifetime_s=86400))
    plan = plan_msg_to_dict(plans[0])
    assert plan["revision"] == 1 and plan["solution"]["routes"]
    out = {"type": "out_of_service", "vehicle": "shuttle_1"}
    events.publish(String(data=json.dumps(out)))
    events.publish(String(data=envelope_to_text(sign_command(out, mallory, kind="dispatch_event"))))
    assert graph.spin_until(lambda: node.security.total("dispatch_event") == 2)
    assert node.revision == 1                                  # nothing re-planned
    events.publish(String(data=envelope_to_text(sign_command(out, office, kind="dispatch_event"))))
    assert graph.spin_until(lambda: node.revision == 2)
