"""Audit log: chain, tamper detection (edit, deletion, reordering, gap), ENOSPC, CLI."""

from __future__ import annotations

import errno
import io
import json
import subprocess
import sys

import pytest

from agricare.core.missions.audit import (
    AuditError,
    AuditLog,
    AuditWriteError,
    verify_lines,
    verify_log,
)


def _log(tmp_path, n=5):
    path = tmp_path / "audit.jsonl"
    log = AuditLog.open(path)
    for i in range(n):
        log.append("boarded", 100.0 + i, child=f"c{i}", trip=f"t{i}")
    log.close()
    return path


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def test_chain_verifies_and_continues_after_reopen(tmp_path):
    path = _log(tmp_path, 3)
    res = verify_log(path)
    assert res.ok and res.n_records == 3
    log = AuditLog.open(path)
    assert log.seq == 3 and log.head == res.head
    log.append("handover_accepted", 200.0, child="c0")
    log.close()
    res2 = verify_log(path)
    assert res2.ok and res2.n_records == 4
    rec = json.loads(_lines(path)[-1])
    assert rec["seq"] == 3 and rec["event"] == "handover_accepted" and rec["prev"] == res.head
    import os
    assert os.stat(path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("tamper, bad_line", [
    ("edit_middle", 3),
    ("edit_last", 5),
    ("delete_middle", 3),
    ("swap", 2),
    ("duplicate", 4),
    ("insert", 3),
    ("truncate_line", 5),
    ("garbage", 2),
])
def test_tamper_detected_at_first_bad_line(tmp_path, tamper, bad_line):
    path = _log(tmp_path, 5)
    lines = _lines(path)
    if tamper == "edit_middle":
        lines[2] = lines[2].replace('"c2"', '"cX"')
    elif tamper == "edit_last":
        lines[4] = lines[4].replace('"c4"', '"cY"')
    elif tamper == "delete_middle":
        del lines[2]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif tamper == "duplicate":
        lines.insert(3, lines[2])
    elif tamper == "insert":
        rec = json.loads(lines[1])
        rec["seq"] = 2
        lines.insert(2, json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
    elif tamper == "truncate_line":
        lines[4] = lines[4][:-20]
    elif tamper == "garbage":
        lines[1] = "not json\n"
    path.write_text("".join(lines))
    res = verify_log(path)
    assert not res.ok
    assert res.bad_line == bad_line, res


def test_cut_from_end_detected_with_head(tmp_path):
    path = _log(tmp_path, 4)
    head = verify_log(path).head
    path.write_text("".join(_lines(path)[:-1]))
    assert verify_log(path).ok  # undetectable without an anchor...
    res = verify_log(path, expect_head=head)
    assert not res.ok and "removed from the end" in res.reason


def test_open_refuses_broken_log(tmp_path):
    path = _log(tmp_path, 3)
    lines = _lines(path)
    path.write_text(lines[0] + lines[2])
    with pytest.raises(AuditError, match="broken"):
        AuditLog.open(path)


class _FullDisk(io.RawIOBase):
    def __init__(self, fail_on="write", ok_writes=0):
        self.fail_on, self.ok_writes, self.data = fail_on, ok_writes, b""

    def writable(self):
        return True

    def write(self, b):
        if self.fail_on == "write" and self.ok_writes <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.ok_writes -= 1
        self.data += bytes(b)
        return len(b)

    def flush(self):
        if self.fail_on == "flush":
            raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self):
        raise io.UnsupportedOperation("no fd")


@pytest.mark.parametrize("fail_on", ["write", "flush"])
def test_enospc_raises_clear_error_and_keeps_events(fail_on):
    f = _FullDisk(fail_on, ok_writes=1 if fail_on == "write" else 0)
    log = AuditLog(f, name="fake.jsonl")
    if fail_on == "write":
        log.append("mission_started", 1.0)
    with pytest.raises(AuditWriteError, match="disk full") as exc:
        log.append("boarded", 2.0, child="anna")
    assert exc.value.errno == errno.ENOSPC and exc.value.record["event"] == "boarded"
    # failed for good: later events are refused too, and kept, never dropped silently
    with pytest.raises(AuditWriteError, match="failed earlier"):
        log.append("handover_accepted", 3.0, child="anna")
    assert [r["event"] for r in log.unwritten] == ["boarded", "handover_accepted"]


def test_short_write_is_an_error():
    class Short(_FullDisk):
        def write(self, b):
            return len(b) - 1

    with pytest.raises(AuditWriteError):
        AuditLog(Short("none")).append("x", 0.0)


def test_reserved_fields_and_non_json_values_rejected():
    log = AuditLog(io.BytesIO())
    with pytest.raises(ValueError, match="reserved"):
        log.append("x", 0.0, seq=3)
    with pytest.raises(ValueError, match="JSON"):
        log.append("x", 0.0, value=float("nan"))
    assert log.seq == 0


def test_verify_lines_in_memory():
    buf = io.BytesIO()
    log = AuditLog(buf)
    for i in range(3):
        log.append("e", float(i))
    lines = buf.getvalue().decode().splitlines(keepends=True)
    assert verify_lines(lines).ok


def test_cli_verify(tmp_path, repo_root):
    path = _log(tmp_path, 4)
    env = {"PYTHONPATH": str(repo_root / "src"), "PATH": "/usr/bin:/bin"}

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "agricare.cli", "audit", "verify", *a],
                              capture_output=True, text=True, env=env, timeout=60)

    ok = cli(str(path))
    assert ok.returncode == 0 and "OK, 4 events" in ok.stdout
    lines = _lines(path)
    lines[1] = lines[1].replace('"c1"', '"cZ"')
    path.write_text("".join(lines))
    bad = cli(str(path))
    assert bad.returncode == 1
    assert f"{path}:2:" in bad.stdout and '"cZ"' in bad.stdout
    missing = cli(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
