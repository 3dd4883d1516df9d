"""Attacks on the mission goals of the farm robots, against the real farm_mission_node and scouting_mission_node
with an attacker node on the graph: unsigned, forged, expired, replayed (also after a restart), wrong-robot and
unknown-key CoverField / ScoutField goals are rejected, nothing starts, and each refusal is on /diagnostics."""

from __future__ import annotations

import pytest

pytest.importorskip("cryptography", reason="cryptography (Ed25519) is not installed")
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
action_mod = pytest.importorskip("agricare_interfaces.action")
if not hasattr(action_mod, "ScoutField"):
    pytest.skip("agricare_interfaces is built from older definitions (no ScoutField): rebuild it (make venv)",
                allow_module_level=True)

from agricare_interfaces.action import CoverField, ScoutField  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Point32  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from harness import AttackerGraph, attack_goals  # noqa: E402

from agricare.core.security.keys import SigningKey  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import RELIABLE_QOS  # noqa: E402
from agricare.ros.signed import sign_message, verify_message  # noqa: E402


class Graph(AttackerGraph):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.diagnostics: list[str] = []
        self.attacker.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diagnostics.extend(
            s.message for s in m.status), RELIABLE_QOS)


@pytest.fixture
def graph(rclpy_context):
    g = Graph(rclpy_context)
    yield g
    g.close()


def _farm(graph, operator, **params):
    from agricare.nodes.farm_mission_node import FarmMissionNode

    base = [Parameter("use_gnss", value=False), Parameter("start_delay_s", value=0.0)] + operator.parameters("farm")
    over = {p.name: p for p in base}
    over.update({k: Parameter(k, value=v) for k, v in params.items()})
    return graph.add(FarmMissionNode(context=graph.ctx, namespace="/tractor", parameter_overrides=list(over.values())))


def _scout(graph, operator, tmp_path, **params):
    from agricare.nodes.scouting_mission_node import ScoutingMissionNode

    base = {p.name: p for p in operator.parameters("scout")}
    base["output_dir"] = Parameter("output_dir", value=str(tmp_path / "records"))
    base.update({k: Parameter(k, value=v) for k, v in params.items()})
    return graph.add(ScoutingMissionNode(context=graph.ctx, namespace="/row_robot",
                                         parameter_overrides=list(base.values())))


def _attack(graph, node, client, what, goal_fn, operator, target):
    """The shared goal attacks (``harness.attack_goals``); the refusals also show on /diagnostics."""
    def on_diagnostics(_send):
        assert graph.spin_until(lambda: any(f"refused {what}" in m for m in graph.diagnostics))

    return attack_goals(graph.spin_until, node, client, what, goal_fn, operator, target,
                        before_genuine=on_diagnostics)


@pytest.mark.timeout(60)
def test_cover_field_goals_unsigned_forged_expired_replayed_are_rejected_and_reported(graph, operator):
    m = _farm(graph, operator)
    client = ActionClient(graph.attacker, CoverField, "/tractor/cover_field")
    assert graph.spin_until(client.server_is_ready)

    def goal():
        g = CoverField.Goal()
        g.field.points = [Point32(x=x, y=y) for x, y in ((0.0, 0.0), (60.0, 0.0), (60.0, 40.0), (0.0, 40.0))]
        return g

    assert m.state == "idle" and m._goal is None
    genuine = _attack(graph, m, client, "cover_field_goal", goal, operator, "tractor")
    # the genuine goal started the job; after a restart its copy is still a replay (sequence store)
    assert graph.spin_until(lambda: m._goal is not None)
    graph.drop(m)
    m2 = _farm(graph, operator)
    assert graph.spin_until(client.server_is_ready)
    fut = client.send_goal_async(genuine)
    assert graph.spin_until(fut.done) and not fut.result().accepted
    assert m2.security.counts.get("cover_field_goal.replayed", 0) == 1 and m2.state == "idle"
    graph.drop(m2)
    with pytest.raises(ParameterError, match="goal_trust_file"):
        _farm(graph, operator, goal_trust_file="")
    with pytest.raises(ParameterError, match="command_replay_file"):
        _farm(graph, operator, command_replay_file="")


@pytest.mark.timeout(60)
def test_scout_field_goals_unsigned_forged_expired_replayed_are_rejected_and_reported(graph, operator, tmp_path):
    m = _scout(graph, operator, tmp_path)
    client = ActionClient(graph.attacker, ScoutField, "/row_robot/scout_field")
    assert graph.spin_until(client.server_is_ready)
    assert m.mission is None
    _attack(graph, m, client, "scout_field_goal", lambda: ScoutField.Goal(rows=2), operator, "row_robot")
    assert graph.spin_until(lambda: m._goal is not None) and m.mission.p.rows == 2


def test_a_signed_goal_verifies_after_any_number_of_wire_round_trips():
    """The signature covers a canonical encoding, not the CDR bytes (Fast CDR leaves alignment padding
    uninitialised: the same goal gave a different CDR digest about 1 time in 20); float32 fields sign as
    they travel (rounded), NaN included."""
    from rclpy.serialization import deserialize_message, serialize_message

    from agricare.core.security.commands import CommandVerifier
    from agricare.core.security.keys import TrustList

    key = SigningKey.generate("operator")
    verifier = CommandVerifier(TrustList().trust(key), ["mission_goal"], "tractor")
    for i in range(200):
        g = CoverField.Goal()
        g.field.points = [Point32(x=0.1 * i + 0.123456789, y=1.1), Point32(x=3.3, y=float("nan"))]
        wire = deserialize_message(serialize_message(sign_message(g, key, kind="mission_goal")), CoverField.Goal)
        assert verify_message(wire, verifier).key_id == "operator"
        s = deserialize_message(serialize_message(sign_message(ScoutField.Goal(rows=i), key, kind="mission_goal")),
                                ScoutField.Goal)
        assert verify_message(s, verifier).seq > 0


@pytest.mark.timeout(60)
def test_mission_pause_only_as_a_signed_command(graph, operator):
    """A peer cannot pause (or resume) the tractor: mission/pause is a MissionPause signed like a goal; unsigned,
    unknown-key, wrong-robot and replayed pauses change nothing and are reported."""
    from agricare_interfaces.msg import MissionPause

    m = _farm(graph, operator)
    pub = graph.attacker.create_publisher(MissionPause, "/tractor/mission/pause", RELIABLE_QOS)
    sec = m.security
    assert graph.spin_until(lambda: pub.get_subscription_count() > 0)

    def publish(msg, key):
        before = sec.counts.get(key, 0)
        pub.publish(msg)
        assert graph.spin_until(lambda: sec.counts.get(key, 0) == before + 1), (key, sec.counts)

    publish(MissionPause(pause=True), "mission_pause.unsigned")
    publish(sign_message(MissionPause(pause=True), SigningKey.generate("mallory"), kind="mission_goal"),
            "mission_pause.unknown_key")
    publish(operator.sign(MissionPause(pause=True), "someone_else"), "mission_pause.wrong_target")
    assert m.pause is False                                     # none of them paused the machine
    genuine = operator.sign(MissionPause(pause=True), "tractor")
    publish(genuine, "mission_pause.accepted")
    assert m.pause is True
    publish(operator.sign(MissionPause(pause=False), "tractor"), "mission_pause.accepted")
    assert m.pause is False
    publish(genuine, "mission_pause.replayed")                  # the old pause again: refused
    assert m.pause is False
    assert graph.spin_until(lambda: any("refused mission_pause" in s for s in graph.diagnostics))
