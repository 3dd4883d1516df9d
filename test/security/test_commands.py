"""Signed command envelopes and keys: every refusal reason, key file checks, weak keys."""

from __future__ import annotations

import copy
import os

import pytest

pytest.importorskip("cryptography", reason="cryptography (Ed25519) is not installed")

from agricare.core.security.commands import (  # noqa: E402
    CommandRejected,
    CommandVerifier,
    envelope_to_text,
    sign_command,
    verify_command,
)
from agricare.core.security.keys import (  # noqa: E402
    KeyFileError,
    SigningKey,
    TrustList,
    WeakKeyError,
    check_key_material,
    load_signing_key,
    write_signing_key,
)

T0 = 1_800_000_000.0


@pytest.fixture()
def fleet():
    return SigningKey.generate("fleet")


def _verifier(key, **kw):
    return CommandVerifier(TrustList().trust(key), ["dispatch_plan", "geofence"], "shuttle_1", **kw)


def _reason(verifier, env, now=T0 + 1.0):
    with pytest.raises(CommandRejected) as exc:
        verifier.verify(env, now)
    return exc.value.reason


def test_signed_command_round_trip_and_text(fleet):
    env = sign_command({"revision": 3}, fleet, kind="dispatch_plan", target="shuttle_1", issued_at_s=T0, seq=10)
    v = _verifier(fleet)
    cmd = v.verify(envelope_to_text(env), T0 + 1.0)
    assert cmd.payload == {"revision": 3} and cmd.key_id == "fleet" and cmd.seq == 10
    assert verify_command(env, TrustList().trust(fleet), T0 + 1.0).payload == {"revision": 3}


def test_every_refusal_reason(fleet):
    v = _verifier(fleet)
    ok = sign_command({"revision": 3}, fleet, kind="dispatch_plan", target="shuttle_1", issued_at_s=T0, seq=10)
    assert _reason(v, {"revision": 99}) == "unsigned"
    assert _reason(v, "[]") == "unsigned"
    assert _reason(v, '{"revision": 1e400') == "malformed"
    tampered = copy.deepcopy(ok)
    tampered["payload"]["revision"] = 4
    assert _reason(v, tampered) == "bad_signature"
    other = SigningKey.generate("mallory")
    assert _reason(v, sign_command({}, other, kind="dispatch_plan", issued_at_s=T0, seq=1)) == "unknown_key"
    forged_id = sign_command({}, other, kind="dispatch_plan", issued_at_s=T0, seq=1)
    forged_id["key_id"] = "fleet"
    assert _reason(v, forged_id) == "bad_signature"
    assert _reason(v, sign_command({}, fleet, kind="mission_goal", issued_at_s=T0, seq=2)) == "wrong_kind"
    assert _reason(v, sign_command({}, fleet, kind="geofence", target="shuttle_2", issued_at_s=T0,
                                   seq=3)) == "wrong_target"
    assert _reason(v, sign_command({}, fleet, kind="geofence", issued_at_s=T0 - 100, lifetime_s=30,
                                   seq=4)) == "expired"
    assert _reason(v, sign_command({}, fleet, kind="geofence", issued_at_s=T0 + 60, seq=5)) == "not_yet_valid"
    assert _reason(v, sign_command({}, fleet, kind="geofence", issued_at_s=T0, lifetime_s=86400,
                                   seq=6)) == "lifetime_too_long"
    v.verify(ok, T0 + 1.0)
    assert _reason(v, ok) == "replayed"
    v.trust.revoke("fleet")
    assert _reason(v, sign_command({}, fleet, kind="geofence", issued_at_s=T0, seq=11)) == "revoked_key"
    assert v.counters["replayed"] == 1 and v.counters["accepted"] == 1


def test_replay_window_and_restart(fleet, tmp_path):
    state = tmp_path / "seq.json"
    v = _verifier(fleet, state_file=state)
    envs = [sign_command({"n": i}, fleet, kind="geofence", issued_at_s=T0, seq=100 + i) for i in range(3)]
    v.verify(envs[2], T0)
    v.verify(envs[0], T0)               # out of order inside the window: accepted once
    assert _reason(v, envs[0], T0) == "replayed"
    restarted = _verifier(fleet, state_file=state)
    assert _reason(restarted, envs[1], T0) == "replayed"   # a restart does not reopen the window
    restarted.verify(sign_command({}, fleet, kind="geofence", issued_at_s=T0, seq=103), T0)
    kinds_only = TrustList().trust(fleet, kinds=["geofence"])
    with pytest.raises(CommandRejected) as exc:
        CommandVerifier(kinds_only, ["dispatch_plan"]).verify(
            sign_command({}, fleet, kind="dispatch_plan", issued_at_s=T0, seq=1), T0)
    assert exc.value.reason == "kind_not_allowed"


def test_default_sequence_numbers_grow(fleet):
    a = sign_command({}, fleet, kind="geofence")
    b = sign_command({}, fleet, kind="geofence")
    assert b["seq"] > a["seq"] > 0


def test_weak_keys_refused():
    for weak in (b"passwordpasswordpasswordpassword", bytes(32), b"\x01" * 32, b"short",
                 bytes.fromhex("00" * 16 + "01" * 16)):
        with pytest.raises(WeakKeyError):
            check_key_material(weak)
    with pytest.raises(WeakKeyError):
        SigningKey.from_seed("k", bytes(32))
    assert check_key_material(os.urandom(32))


def test_key_files_mode_owner_and_directory(tmp_path, fleet):
    d = tmp_path / "keys"
    key_path, pub_path = write_signing_key(d, fleet)
    assert (os.stat(key_path).st_mode & 0o777) == 0o600
    assert load_signing_key(key_path).public_b64 == fleet.public_b64
    with pytest.raises(FileExistsError):
        write_signing_key(d, fleet)
    os.chmod(key_path, 0o640)
    with pytest.raises(KeyFileError, match="group or others"):
        load_signing_key(key_path)
    os.chmod(key_path, 0o600)
    os.chmod(d, 0o777)
    with pytest.raises(KeyFileError, match="replace keys"):
        load_signing_key(key_path)
    os.chmod(d, 0o700)
    trust = TrustList().trust(fleet)
    trust.save(d / "trust.yaml")
    assert TrustList.load(d / "trust.yaml").get("fleet").public_key is not None
    os.chmod(d / "trust.yaml", 0o666)
    with pytest.raises(KeyFileError, match="add keys"):
        TrustList.load(d / "trust.yaml")


def test_keys_cli_generate_rotate_revoke_and_weak_seeds(tmp_path):
    import subprocess
    import sys

    d = tmp_path / "keys"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "agricare.cli", "keys", "--dir", str(d), *args],
                              capture_output=True, text=True, timeout=60)

    assert cli("generate", "fleet", "--kinds", "dispatch_plan").returncode == 0
    assert (os.stat(d / "fleet.key").st_mode & 0o777) == 0o600 and (os.stat(d).st_mode & 0o777) == 0o700
    for seed in ("00" * 32, b"passwordpasswordpasswordpassword".hex()):
        res = cli("generate", "weak", "--seed-hex", seed)
        assert res.returncode == 2 and "random key" in res.stderr
    assert not (d / "weak.key").exists()
    assert cli("rotate", "fleet", "fleet2").returncode == 0
    listing = cli("list").stdout
    assert "fleet " in listing and "REVOKED" in listing.split("fleet2")[0] and "kinds=dispatch_plan" in listing
    trust = TrustList.load(d / "trust.yaml")
    assert trust.get("fleet").revoked and not trust.get("fleet2").revoked
    assert cli("revoke", "fleet2").returncode == 0 and TrustList.load(d / "trust.yaml").get("fleet2").revoked
    # a revoked key's commands are refused by a receiver using the trust list
    key = load_signing_key(d / "fleet2.key")
    v = CommandVerifier(TrustList.load(d / "trust.yaml"), ["dispatch_plan"])
    with pytest.raises(CommandRejected, match="revoked"):
        v.verify(sign_command({}, key, kind="dispatch_plan", issued_at_s=T0, seq=1), T0)
    os.chmod(d, 0o777)
    assert cli("list").returncode == 2   # a directory others may write is refused
