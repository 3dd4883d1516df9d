"""A full disk under the recorder: what it acknowledged (flushed and fsynced) stays readable, the failure is
reported with how much is safe, and nothing after it is claimed."""

from __future__ import annotations

import errno

import pytest


def _count_messages(path) -> int:
    from mcap.records import Message
    from mcap.stream_reader import StreamReader

    n = 0
    with open(path, "rb") as fh:
        try:
            for record in StreamReader(fh).records:
                n += isinstance(record, Message)
        except Exception:   # cut short by the full disk: count what is readable
            pass
    return n


def test_full_disk_keeps_every_acknowledged_message(rclpy_context, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    from agricare.bringup.chaos import _FullDisk
    from agricare.bringup.recorder import McapRecorder

    node = rclpy.create_node("rec_test", context=rclpy_context)
    try:
        pub = node.create_publisher(String, "/rec_test/topic", 10)
        rec = McapRecorder(node, tmp_path / "r.mcap", flush_period_s=3600.0)   # flushes only when asked
        assert rec.discover() >= 1 and "/rec_test/topic" in rec.counts
        data = serialize_message(String(data="x" * 100))
        for _ in range(50):
            rec._on_msg("/rec_test/topic", data)
        assert rec.acked == 0                     # logged, not yet on the disk
        assert rec.flush() and rec.acked == 50
        for _ in range(30):                       # logged after the last flush: not acknowledged
            rec._on_msg("/rec_test/topic", data)
        rec._writer._Writer__stream = _FullDisk(rec._writer._Writer__stream)
        assert not rec.flush()                    # the disk is full now
        assert "No space left" in rec.error and "50 messages safely on disk" in rec.error
        assert rec.acked == 50
        rec._on_msg("/rec_test/topic", data)      # nothing more is taken after the failure
        assert rec.counts["/rec_test/topic"] == 80
        rec.close()
        assert rec.stats()["acked"] == 50
        assert _count_messages(tmp_path / "r.mcap") >= 50
        del pub
    finally:
        node.destroy_node()


def test_periodic_flush_acknowledges_by_the_node_clock(rclpy_context, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    import time

    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    from agricare.bringup.recorder import McapRecorder

    node = rclpy.create_node("rec_test2", context=rclpy_context)
    try:
        node.create_publisher(String, "/rec_test2/topic", 10)
        rec = McapRecorder(node, tmp_path / "r.mcap", flush_period_s=0.05)
        rec.discover()
        data = serialize_message(String(data="y"))
        rec._on_msg("/rec_test2/topic", data)
        time.sleep(0.1)
        rec._on_msg("/rec_test2/topic", data)     # a flush period has passed: both on the disk
        assert rec.acked == 2
        rec.close()
        assert _count_messages(tmp_path / "r.mcap") == 2
    finally:
        node.destroy_node()


def test_full_disk_wrapper_raises_enospc():
    from agricare.bringup.chaos import _FullDisk

    with pytest.raises(OSError) as exc:
        _FullDisk(None).write(b"x")
    assert exc.value.errno == errno.ENOSPC


def test_periodic_flush_waits_for_the_wall_period_too(rclpy_context, tmp_path):
    """A simulation faster than real time: the node clock passes the period many times within one wall period,
    and the recorder fsyncs once per wall period (then everything logged so far is acknowledged)."""
    rclpy = pytest.importorskip("rclpy")
    import time

    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    from agricare.bringup.recorder import McapRecorder

    node = rclpy.create_node("rec_test3", context=rclpy_context)
    try:
        node.create_publisher(String, "/rec_test3/topic", 10)
        rec = McapRecorder(node, tmp_path / "r.mcap", flush_period_s=0.3)
        rec.discover()
        data = serialize_message(String(data="z"))
        t0 = time.monotonic()
        for k in range(5):                           # 5 node-clock periods within a few ms of wall time
            rec._write("/rec_test3/topic", data, int(k * 0.31e9))
        if time.monotonic() - t0 < 0.25:             # (a machine this slow cannot tell)
            assert rec.acked == 0
        time.sleep(0.35)
        rec._write("/rec_test3/topic", data, int(5 * 0.31e9))
        assert rec.acked == 6
        rec.close()
        assert _count_messages(tmp_path / "r.mcap") == 6
    finally:
        node.destroy_node()
