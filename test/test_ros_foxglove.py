"""Live view: a WebSocket client connects to `agricare run --foxglove`'s server, subscribes to a channel and
receives the ROS messages (cdr, ros2msg schema); the shipped layout names topics the graph serves."""

from __future__ import annotations

import json
import re
import struct

import pytest

pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
pytest.importorskip("foxglove", reason="foxglove-sdk is not installed (pip install -r requirements.txt)")
ws_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")

from agricare.bringup.graph import load_graph  # noqa: E402
from agricare.bringup.runner import EmbeddedRunner  # noqa: E402

SUBPROTOCOL = "foxglove.sdk.v1"


def _tractor_graph(repo_root, tmp_path):
    import yaml

    d = yaml.safe_load((repo_root / "config" / "scenarios" / "farm_small.yaml").read_text())
    d["robots"] = [r for r in d["robots"] if r["name"] == "tractor"]
    d["nodes"] = [n for n in d["nodes"] if n.get("robot") == "tractor"]
    for n in d["nodes"]:
        if "scenario_file" in n.get("params", {}):
            n["params"]["scenario_file"] = str(repo_root / "config" / "scenarios" / "farm_small.yaml")
    p = tmp_path / "tractor_only.yaml"
    p.write_text(yaml.safe_dump(d))
    return load_graph(p)


def test_websocket_client_subscribes_and_receives_odometry(repo_root, tmp_path):
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message

    runner = EmbeddedRunner(_tractor_graph(repo_root, tmp_path), None, seed=1, until_done=False, progress=None,
                            record=False, foxglove_port=0)
    runner.build()
    try:
        def step(n):
            for _ in range(n):
                runner.sim.step_once()
                runner.spin_some(4)
            runner.foxglove.discover()

        step(20)
        channels = {}
        with ws_client.connect(runner.foxglove.url, subprotocols=[SUBPROTOCOL], open_timeout=10) as ws:
            deadline = 200
            while "/tractor/odom" not in channels and deadline > 0:
                deadline -= 1
                try:
                    frame = ws.recv(timeout=0.05)
                except TimeoutError:
                    step(1)
                    continue
                if isinstance(frame, str):
                    msg = json.loads(frame)
                    if msg.get("op") == "advertise":
                        channels.update({c["topic"]: c for c in msg["channels"]})
            odom = channels["/tractor/odom"]
            assert odom["encoding"] == "cdr" and odom["schemaName"] == "nav_msgs/msg/Odometry"
            assert odom["schemaEncoding"] == "ros2msg" and "geometry_msgs/PoseWithCovariance" in odom["schema"]
            ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": odom["id"]}]}))
            got = []
            for _ in range(400):
                if len(got) >= 3:
                    break
                try:
                    frame = ws.recv(timeout=0.02)
                except TimeoutError:
                    step(2)
                    continue
                if isinstance(frame, bytes) and frame[0] == 0x01:   # message data
                    sub_id, t_ns = struct.unpack_from("<IQ", frame, 1)
                    assert sub_id == 7
                    got.append((t_ns, deserialize_message(frame[13:], Odometry)))
        assert len(got) >= 3
        assert all(m.header.frame_id == "odom" for _, m in got)
        assert got[-1][0] > got[0][0] > 0   # stamped with simulated time, advancing
        served = set(runner.foxglove.channels)
    finally:
        runner.shutdown()
    # the shipped layout shows topics that the graph serves (tractor part checked here)
    layout = json.loads((repo_root / "config" / "foxglove_layout.json").read_text())
    text = json.dumps(layout)
    tractor_topics = set(re.findall(r"/tractor/[A-Za-z0-9_/]+?(?=[\".])", text))
    missing = {t for t in tractor_topics if t not in served}
    assert not missing, f"layout names topics the tractor graph does not serve: {sorted(missing)}"
