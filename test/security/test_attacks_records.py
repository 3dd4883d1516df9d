"""Attacks on the records: an edited and re-chained audit log, two writers, a torn last line, SaveMap outside
its directory, weak hand-over keys, non-finite times on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("cryptography", reason="cryptography (Ed25519) is not installed")

from agricare.core.missions.audit import AuditError, AuditLog, seal, verify_log  # noqa: E402
from agricare.core.missions.handover import KeyFileError, load_key  # noqa: E402
from agricare.core.security.keys import SigningKey, write_signing_key  # noqa: E402


def _signed_log(tmp_path, n=4):
    vehicle = SigningKey.generate("shuttle_1")
    _, pub = write_signing_key(tmp_path / "keys", vehicle)
    path = tmp_path / "audit.jsonl"
    log = AuditLog.open(path, signer=vehicle)
    for i in range(n):
        log.append("handover_check", 100.0 + i, child=f"c{i}", accepted=True)
    log.close()
    return path, pub, vehicle


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "agricare.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_edited_and_rechained_audit_log_fails_verify_with_the_vehicle_key(tmp_path):
    path, pub, vehicle = _signed_log(tmp_path)
    ok = _cli("audit", "verify", path, "--key", pub)
    assert ok.returncode == 0 and "every record signed" in ok.stdout
    # the attacker edits record 1 and recomputes the whole hash chain (as the plain SHA-256 chain allowed)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    recs[1]["accepted"] = False
    prev = "0" * 64
    lines = []
    for r in recs:
        r = {k: v for k, v in r.items() if k not in ("sha256", "sig")}
        r["prev"] = prev
        line = seal(r)
        lines.append(line)
        import hashlib
        prev = hashlib.sha256(line.encode()).hexdigest()
    path.write_text("\n".join(lines) + "\n")
    assert verify_log(path).ok                      # the chain alone is fooled ...
    bad = _cli("audit", "verify", path, "--key", pub)
    assert bad.returncode == 1 and "not signed" in bad.stdout   # ... the signatures are not
    # re-signed with another key: refused as well
    mallory = SigningKey.generate("shuttle_1")
    forged = tmp_path / "forged.jsonl"
    log = AuditLog.open(forged, signer=mallory)
    log.append("handover_check", 100.0, child="c0", accepted=True)
    log.close()
    res = _cli("audit", "verify", forged, "--key", pub)
    assert res.returncode == 1 and "signature does not match" in res.stdout


def test_one_writer_and_a_torn_last_line_is_cut_and_recorded(tmp_path):
    path, pub, vehicle = _signed_log(tmp_path, 3)
    first = AuditLog.open(path, signer=vehicle)
    with pytest.raises(AuditError, match="another writer"):
        AuditLog.open(path, signer=vehicle)
    first.close()
    with open(path, "ab") as f:
        f.write(b'{"event":"handover_check","prev":"')           # a crash in the middle of a write
    log = AuditLog.open(path, signer=vehicle, t_s=200.0)
    log.append("boarded", 201.0, child="c9")
    log.close()
    from agricare.core.security.keys import public_key_from_b64

    res = verify_log(path, public_key=public_key_from_b64(open(pub).read()))
    assert res.ok and res.n_records == 5
    rec = json.loads(path.read_text().splitlines()[3])
    assert rec["event"] == "recovered_torn_line" and rec["cut_bytes"] == 34


def test_weak_handover_keys_and_nonfinite_times_refused(tmp_path):
    for name, text in (("pw.key", "passwordpassword"), ("zero.key", "00" * 32)):
        p = tmp_path / name
        p.write_text(text + "\n")
        p.chmod(0o600)
        with pytest.raises(KeyFileError):
            load_key(p)
    key = tmp_path / "ok.key"
    assert _cli("handover", "new-key", key).returncode == 0
    res = _cli("handover", "verify", key, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", "c", "g", "t", "--now", "nan")
    assert res.returncode == 2 and "finite" in res.stderr


def test_savemap_writes_only_under_its_directory(rclpy_context, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from agricare.nodes import growth_map_node as gmn

    if gmn.SaveMap is None:
        pytest.skip("agricare_interfaces SaveMap is not built")
    root = tmp_path / "maps"
    node = gmn.GrowthMapNode(context=rclpy_context, parameter_overrides=[
        Parameter("save_directory", value=str(root)), Parameter("datum_lat_deg", value=52.0),
        Parameter("datum_lon_deg", value=5.0)])
    atk = rclpy.create_node("attacker", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(atk)
    cli = atk.create_client(gmn.SaveMap, "perception/save_growth_map")
    try:
        for _ in range(200):
            if cli.service_is_ready():
                break
            ex.spin_once(timeout_sec=0.01)
        results = {}
        for d in (str(tmp_path / "elsewhere"), "../escape", "/etc/agricare_test", "inside"):
            fut = cli.call_async(gmn.SaveMap.Request(directory=d))
            for _ in range(400):
                if fut.done():
                    break
                ex.spin_once(timeout_sec=0.01)
            results[d] = fut.result()
        for d in (str(tmp_path / "elsewhere"), "../escape", "/etc/agricare_test"):
            assert not results[d].success and "outside" in results[d].message
        assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "escape").exists()
        assert results["inside"].success, results["inside"].message
        assert (root / "inside" / "growth_map.png").exists()
    finally:
        ex.shutdown()
        node.destroy_node()
        atk.destroy_node()


def test_a_raising_callback_is_reported_and_the_node_keeps_spinning(rclpy_context):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from agricare.ros.guard import guard_callbacks

    node = rclpy.create_node("fragile", context=rclpy_context)
    got = []

    def on_msg(msg):
        got.append(int(msg.data))  # "[]" raises ValueError

    def on_srv(req, resp):
        raise RuntimeError("bug")
    node.create_subscription(String, "in", on_msg, 10)
    node.create_service(Trigger, "poke", on_srv)
    assert guard_callbacks(node) == 2 and guard_callbacks(node) == 0   # idempotent
    atk = rclpy.create_node("attacker", context=rclpy_context)
    pub = atk.create_publisher(String, "in", 10)
    cli = atk.create_client(Trigger, "poke")
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(atk)
    try:
        for _ in range(100):
            if pub.get_subscription_count() and cli.service_is_ready():
                break
            ex.spin_once(timeout_sec=0.01)
        for text in ("[]", "7"):
            pub.publish(String(data=text))
        fut = cli.call_async(Trigger.Request())
        for _ in range(300):
            if got and fut.done():
                break
            ex.spin_once(timeout_sec=0.01)
        assert got == [7] and fut.done() and not fut.result().success
        assert node.security.counts == {"/in.callback_error": 1, "poke.callback_error": 1}
    finally:
        ex.shutdown()
        node.destroy_node()
        atk.destroy_node()
