"""The recorder's polled topics (``McapRecorder(poll_node=...)``): a thinned topic is read from a node on no
executor, newest message first once its period has elapsed, and nothing else is lost or invented."""

from __future__ import annotations

import time

import pytest


def test_polled_topic_logs_the_newest_message_once_per_period(rclpy_context, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from mcap_ros2.reader import read_ros2_messages
    from std_msgs.msg import String

    from agricare.bringup.recorder import McapRecorder

    node = rclpy.create_node("rec_poll", context=rclpy_context)
    poll = rclpy.create_node("rec_poll_poller", context=rclpy_context)
    try:
        thin = node.create_publisher(String, "/rec_poll/thin", 10)
        full = node.create_publisher(String, "/rec_poll/full", 10)
        rec = McapRecorder(node, tmp_path / "r.mcap", max_rate_hz={"thin": 5.0}, poll_node=poll)
        assert rec.discover() >= 2
        assert "/rec_poll/thin" in rec._polled and "/rec_poll/full" not in rec._polled
        assert rec.poll() == 0                       # nothing published yet
        for k in range(3):
            thin.publish(String(data=f"a{k}"))
        deadline = time.monotonic() + 5.0
        n = 0
        while n == 0 and time.monotonic() < deadline:
            n = rec.poll()
            time.sleep(0.01)
        assert n == 1                                # one message per period: the newest of the three
        thin.publish(String(data="b"))
        time.sleep(0.05)
        assert rec.poll() == 0                       # within the period (0.2 s): not taken yet
        time.sleep(0.25)
        assert rec.poll() == 1                       # period elapsed: "b" now
        assert rec.poll() == 0                       # each message once
        del full
        rec.close()
        got = [(m.channel.topic, m.ros_msg.data) for m in read_ros2_messages(str(tmp_path / "r.mcap"))]
        assert got == [("/rec_poll/thin", "a2"), ("/rec_poll/thin", "b")]
    finally:
        poll.destroy_node()
        node.destroy_node()
