"""handover_node in-process: service accepts once, refuses replays/forgeries, publishes events, audits."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed")
srv = pytest.importorskip("agricare_interfaces.srv", reason="agricare_interfaces is not built")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from agricare.core.missions.audit import verify_log  # noqa: E402
from agricare.core.missions.handover import issue_code, write_key  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402

KEY = bytes(range(1, 33))


def _node(ctx, tmp_path, **extra):
    from agricare.nodes.handover_node import HandoverNode

    key = tmp_path / "handover.key"
    if not key.exists():
        write_key(key, KEY)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("trips:\n  t1: [[anna, mum_anna], [ben, dad_ben]]\n")
    params = {"key_file": str(key), "manifest_file": str(manifest),
              "used_nonces_file": str(tmp_path / "used.txt"), "audit_log": str(tmp_path / "audit.jsonl"),
              "robot": "s1", **extra}
    return HandoverNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def _call(ctx, node, code, child="anna", guardian="mum_anna", trip="t1"):
    from agricare_interfaces.msg import HandoverEvent

    io = node  # client on the same node keeps the test small
    events = []
    sub = io.create_subscription(HandoverEvent, "handover/events", events.append, 10)
    cli = io.create_client(srv.VerifyHandover, "verify_handover")
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        for _ in range(200):
            if cli.service_is_ready():
                break
            ex.spin_once(timeout_sec=0.02)
        req = srv.VerifyHandover.Request(code=code, child_id=child, guardian_id=guardian, trip_id=trip)
        fut = cli.call_async(req)
        for _ in range(500):
            if fut.done() and events:
                break
            ex.spin_once(timeout_sec=0.02)
        assert fut.done(), "no service answer"
        return fut.result(), events
    finally:
        io.destroy_subscription(sub)
        io.destroy_client(cli)
        ex.remove_node(node)


def test_accept_once_then_replay_refused_and_audited(rclpy_context, tmp_path):
    node = _node(rclpy_context, tmp_path)
    try:
        code = issue_code(KEY, "anna", "mum_anna", "t1", 2**31)
        res, events = _call(rclpy_context, node, code)
        assert res.accepted and res.reason == "ok"
        assert events and events[0].accepted and events[0].child_id == "anna" and events[0].action == "verify"
        res, _ = _call(rclpy_context, node, code)
        assert not res.accepted and res.reason.startswith("replayed")
        res, _ = _call(rclpy_context, node, issue_code(KEY, "ben", "dad_ben", "t1", 2**31))
        assert not res.accepted and res.reason.startswith("other_child")
        res, _ = _call(rclpy_context, node, issue_code(b"z" * 32, "anna", "mum_anna", "t1", 2**31))
        assert not res.accepted and res.reason.startswith("forged")
    finally:
        node.on_shutdown()
        node.destroy_node()
    log = verify_log(tmp_path / "audit.jsonl")
    assert log.ok and log.n_records == 4
    # the used nonce survives a restart
    node2 = _node(rclpy_context, tmp_path)
    try:
        res, _ = _call(rclpy_context, node2, code)
        assert not res.accepted and res.reason.startswith("replayed")
    finally:
        node2.on_shutdown()
        node2.destroy_node()


def test_world_readable_key_refused_at_start(rclpy_context, tmp_path):
    key = tmp_path / "handover.key"
    write_key(key, KEY)
    os.chmod(key, 0o644)
    with pytest.raises(ParameterError, match="key_file.*chmod 600"):
        _node(rclpy_context, tmp_path)


def test_missing_key_file_parameter_refused(rclpy_context):
    from agricare.nodes.handover_node import HandoverNode

    with pytest.raises(ParameterError, match="key_file"):
        HandoverNode(context=rclpy_context)
