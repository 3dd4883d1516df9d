"""Hand-over codes: issue/verify, refusal reasons, key file permissions."""

from __future__ import annotations

import os

import pytest

from agricare.core.missions.handover import (
    HandoverVerifier,
    KeyFileError,
    issue_code,
    load_key,
    parse_code,
    write_key,
)

KEY = bytes(range(32))
MANIFEST = {"t1": [("anna", "mum_anna"), ("ben", "dad_ben"), ("anna", "gran_anna")]}


def _code(child="anna", guardian="mum_anna", trip="t1", expiry=1000.0, nonce=b"\x01" * 6, key=KEY):
    return issue_code(key, child, guardian, trip, expiry, nonce)


def test_valid_code_accepted_once_then_replayed():
    v = HandoverVerifier(KEY, MANIFEST)
    code = _code()
    assert len(code.replace("-", "")) == 32 and code.count("-") == 7
    ok = v.verify(code, "anna", "mum_anna", "t1", now_s=900.0)
    assert ok.accepted and ok.reason == "ok"
    again = v.verify(code, "anna", "mum_anna", "t1", now_s=901.0)
    assert not again.accepted and again.reason == "replayed"


def test_human_typing_is_tolerated():
    code = _code()
    typed = code.lower().replace("-", " ").replace("O", "0")
    assert HandoverVerifier(KEY).verify(typed, "anna", "mum_anna", "t1", 0.0).accepted


def test_expired_refused():
    v = HandoverVerifier(KEY)
    r = v.verify(_code(expiry=1000.0), "anna", "mum_anna", "t1", now_s=1000.5)
    assert not r.accepted and r.reason == "expired"
    assert v.verify(_code(expiry=1000.0), "anna", "mum_anna", "t1", now_s=1000.0).accepted


def test_forged_refused():
    v = HandoverVerifier(KEY, MANIFEST)
    forged = _code(key=b"x" * 32)
    assert v.verify(forged, "anna", "mum_anna", "t1", 0.0).reason == "forged"
    # flip one character of a genuine code
    code = _code()
    i = 20
    flipped = code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1:]
    assert v.verify(flipped, "anna", "mum_anna", "t1", 0.0).reason == "forged"
    # a later expiry written into a genuine code is a forgery too
    payload = bytearray(parse_code(code))
    payload[8] ^= 0x01
    import base64
    tampered = base64.b32encode(bytes(payload)).decode()
    assert v.verify(tampered, "anna", "mum_anna", "t1", 0.0).reason == "forged"


def test_other_child_other_guardian_other_trip_refused():
    v = HandoverVerifier(KEY, MANIFEST)
    bens = _code(child="ben", guardian="dad_ben")
    r = v.verify(bens, "anna", "mum_anna", "t1", 0.0)
    assert not r.accepted and r.reason == "other_child" and "ben" in r.detail
    grans = _code(guardian="gran_anna")
    r = v.verify(grans, "anna", "mum_anna", "t1", 0.0)
    assert not r.accepted and r.reason == "other_guardian"
    assert v.verify(_code(trip="t2"), "anna", "mum_anna", "t1", 0.0).reason == "forged"
    # without a manifest, another child's code is still refused (as a signature mismatch)
    assert HandoverVerifier(KEY).verify(bens, "anna", "mum_anna", "t1", 0.0).reason == "forged"


def test_guardian_not_in_manifest_refused_even_with_valid_code():
    v = HandoverVerifier(KEY, MANIFEST)
    stranger = _code(guardian="stranger")
    assert v.verify(stranger, "anna", "stranger", "t1", 0.0).reason == "not_authorised"


def test_malformed_refused():
    v = HandoverVerifier(KEY)
    for bad in ("", "ABCD", "!" * 32, _code()[:-2]):
        r = v.verify(bad, "anna", "mum_anna", "t1", 0.0)
        assert not r.accepted and r.reason == "malformed"


def test_refused_codes_do_not_burn_the_nonce_and_used_set_persists():
    v = HandoverVerifier(KEY, MANIFEST)
    code = _code()
    assert v.verify(code, "ben", "dad_ben", "t1", 0.0).reason != "ok"
    assert v.verify(code, "anna", "mum_anna", "t1", 0.0).accepted
    restarted = HandoverVerifier(KEY, MANIFEST, used_nonces=v.used)
    assert restarted.verify(code, "anna", "mum_anna", "t1", 0.0).reason == "replayed"


def test_random_nonces_differ():
    a = issue_code(KEY, "anna", "mum_anna", "t1", 1000)
    b = issue_code(KEY, "anna", "mum_anna", "t1", 1000)
    assert a != b


@pytest.mark.parametrize("mode, who", [(0o644, "group and others"), (0o640, "group"), (0o604, "others"),
                                       (0o660, "group"), (0o602, "others")])
def test_key_file_refused_if_group_or_world_accessible(tmp_path, mode, who):
    path = tmp_path / "handover.key"
    write_key(path, KEY)
    assert load_key(path) == KEY
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=f"{who} can access it") as exc:
        load_key(path)
    assert "chmod 600" in str(exc.value) and f"{mode:04o}" in str(exc.value)


def test_key_file_created_private_and_short_keys_refused(tmp_path):
    path = tmp_path / "k"
    write_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(load_key(path)) == 32
    with pytest.raises(FileExistsError):
        write_key(path)
    short = tmp_path / "short"
    fd = os.open(short, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"abcd\n")
    os.close(fd)
    with pytest.raises(KeyFileError, match="at least"):
        load_key(short)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_key(tmp_path / "missing")


def test_cli_issue_and_verify(tmp_path, repo_root):
    import subprocess
    import sys

    env = {"PYTHONPATH": str(repo_root / "src"), "PATH": "/usr/bin:/bin"}

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "agricare.cli", "handover", *a], capture_output=True,
                              text=True, env=env, timeout=60)

    key = str(tmp_path / "k")
    assert cli("new-key", key).returncode == 0
    code = cli("issue", key, "anna", "mum", "t1", "5000").stdout.strip()
    assert cli("verify", key, code, "anna", "mum", "t1", "--now", "10").returncode == 0
    refused = cli("verify", key, code, "anna", "mum", "t1", "--now", "6000")
    assert refused.returncode == 1 and "expired" in refused.stdout
    os.chmod(key, 0o644)
    bad = cli("issue", key, "anna", "mum", "t1", "5000")
    assert bad.returncode == 2 and "chmod 600" in bad.stderr
