"""End to end: a scenario graph in-process on simulated time, the MCAP read back, Ctrl-C handling."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rclpy")
from mcap.reader import make_reader  # noqa: E402
from mcap_ros2.decoder import DecoderFactory  # noqa: E402

from agricare.bringup.graph import load_graph  # noqa: E402
from agricare.bringup.runner import EmbeddedRunner  # noqa: E402


def tractor_only(repo_root, tmp_path, max_sim_s):
    """farm_small with the tractor's graph only (short, deterministic)."""
    import yaml

    d = yaml.safe_load((repo_root / "config" / "scenarios" / "farm_small.yaml").read_text())
    d["robots"] = [r for r in d["robots"] if r["name"] == "tractor"]
    d["nodes"] = [n for n in d["nodes"] if n.get("robot") == "tractor"]
    for n in d["nodes"]:
        if "scenario_file" in n.get("params", {}):
            n["params"]["scenario_file"] = str(repo_root / "config" / "scenarios" / "farm_small.yaml")
    d["run"]["max_sim_s"] = max_sim_s
    p = tmp_path / "tractor_only.yaml"
    p.write_text(yaml.safe_dump(d))
    return load_graph(p)


@pytest.fixture(scope="module")
def short_run(repo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    graph = tractor_only(repo_root, tmp, 12.0)
    runner = EmbeddedRunner(graph, tmp / "out", seed=3, until_done=False, progress=None)
    runner.build()
    try:
        result = runner.run()
    finally:
        runner.shutdown()
    return tmp / "out", result


def test_runs_on_sim_time_and_writes_summary(short_run):
    out, result = short_run
    assert result.sim_time_s == pytest.approx(12.0, abs=0.1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_because"] == "max_sim_s"
    assert summary["missions"]["tractor"]["mission"] == "coverage"
    assert summary["missions"]["tractor"]["state"] in ("running", "done")
    fig = summary["world"]["tractor"]
    assert fig["contacts"] == 0
    assert 0.0 < fig["covered_ratio_field"] < 1.0  # it has started working, not finished in 12 s
    # the tractor moved away from its start under its own control loop
    assert fig["final_pose"][0] > 6.0


def test_mcap_reads_back_with_schemas_and_counts(short_run):
    out, _ = short_run
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "recording.mcap", "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        s = reader.get_summary()
        topics = {ch.topic: s.schemas[ch.schema_id] for ch in s.channels.values()}
        counts = {s.channels[c].topic: n for c, n in s.statistics.channel_message_counts.items()}
        expected = {
            "/clock": "rosgraph_msgs/msg/Clock",
            "/tractor/odom": "nav_msgs/msg/Odometry",
            "/tractor/cmd_vel": "geometry_msgs/msg/TwistStamped",
            "/tractor/cmd_vel_nav": "geometry_msgs/msg/TwistStamped",
            "/tractor/plan": "nav_msgs/msg/Path",
            "/tractor/safety/state": "agricare_interfaces/msg/SafetyState",
            "/tractor/mission/status": "agricare_interfaces/msg/MissionStatus",
            "/tractor/tf_static": "tf2_msgs/msg/TFMessage",
        }
        for topic, type_name in expected.items():
            assert topic in topics, topic
            assert topics[topic].name == type_name and topics[topic].encoding == "ros2msg"
            assert counts.get(topic, 0) > 0, topic
        assert counts == {k: v for k, v in summary["recording"]["topics"].items() if v}
        # /clock at every step (dt 0.05): 240 steps + 3 while stopping, minus those before the recorder subscribed
        assert 200 <= counts["/clock"] <= 243
        # decode a few messages: stamps are sim time, not wall time
        for _schema, _ch, msg, decoded in reader.iter_decoded_messages(topics=["/tractor/cmd_vel"]):
            assert msg.log_time < 13e9
            assert abs(decoded.twist.linear.x) <= 3.0 + 1e-6
    # the latched plan was recorded although it was published before the recorder subscribed
    assert counts["/tractor/plan"] >= 1


def test_ctrl_c_zeroes_cmd_vel_and_closes_the_recording(repo_root, tmp_path):
    graph = tractor_only(repo_root, tmp_path, 60.0)
    runner = EmbeddedRunner(graph, tmp_path / "out", seed=1, until_done=False, progress=None)

    def interrupt(r):
        if r.sim_time() >= 8.0:
            raise KeyboardInterrupt

    runner.step_hook = interrupt
    runner.build()
    try:
        result = runner.run()
    finally:
        runner.shutdown()
    assert result.stopped_because == "interrupted" and result.exit_code == 130
    assert result.sim_time_s < 9.0
    with open(tmp_path / "out" / "recording.mcap", "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        assert reader.get_summary() is not None  # footer and summary written: closed cleanly
        last = None
        for _s, _c, _m, decoded in reader.iter_decoded_messages(topics=["/tractor/cmd_vel"]):
            last = decoded
    assert last is not None and last.twist.linear.x == 0.0 and last.twist.angular.z == 0.0
    world = runner.sim.world  # the last command it got is zero: the tractor comes to rest and stays there
    for _ in range(40):
        world.step(0.05)
    assert world.velocity("tractor")[0] == pytest.approx(0.0, abs=1e-3)


def test_bad_scenario_files_give_one_line(tmp_path, capsys):
    from agricare.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("world: {name: x, datum: {lat_deg: 36, lon_deg: 140}}\nrobots:\n"
                   "  - {name: r1, type: hovercraft, start: {x_m: 0, y_m: 0}}\nnodes: []\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hovercraft" in err[0]
    bad.write_text("world: [\n")
    assert main(["run", str(bad)]) == 2
    assert "bad YAML" in capsys.readouterr().err
    bad.write_text("world: {name: x, datum: {lat_deg: 36, lon_deg: 140}}\nrobots: []\nnodes: [{node: warp_node}]\n")
    assert main(["run", str(bad)]) == 2
    assert "unknown node 'warp_node'" in capsys.readouterr().err


def test_a_previous_runs_audit_and_state_are_moved_aside_not_deleted(tmp_path):
    """A second simulated run in the same folder starts its clock at 0 again: the first run's used-code store
    (latest time seen 619.8 s) would refuse every hand-over code as a wound-back clock. The run moves audit/
    and state/ aside and keeps them."""
    from agricare.cli.cmd_run import archive_previous_state
    from agricare.core.missions.handover import UsedCodeStore

    out = tmp_path / "care"
    assert archive_previous_state(out) is None               # nothing yet
    store = UsedCodeStore(out / "audit" / "shuttle_1_used_codes.json")
    store.latest_time_s, store.used = 619.8, {"0c26b9fbac2e1be8"}
    store.save()
    (out / "audit" / "shuttle_1_mission_audit.jsonl").write_text('{"seq": 1}\n')
    (out / "state").mkdir()
    (out / "state" / "shuttle_1_commands.json").write_text("{}")
    (out / "summary.json").write_text("{}")                  # outputs stay where they are
    moved = archive_previous_state(out)
    assert moved is not None and moved.parent == out / "previous"
    assert not (out / "audit").exists() and not (out / "state").exists() and (out / "summary.json").exists()
    assert (moved / "audit" / "shuttle_1_mission_audit.jsonl").read_text() == '{"seq": 1}\n'
    kept = UsedCodeStore(moved / "audit" / "shuttle_1_used_codes.json")
    assert kept.latest_time_s == 619.8 and kept.used == {"0c26b9fbac2e1be8"}
    assert UsedCodeStore(out / "audit" / "shuttle_1_used_codes.json").latest_time_s == float("-inf")   # fresh


def test_mission_goal_summary_says_when_the_result_never_came():
    # a run can end while a goal still runs (a care shuttle with done_when_served drives on to park): the summary
    # keeps the true status and says so, and a finished goal carries no such note
    from agricare.bringup.runner import MissionGoal

    g = MissionGoal.__new__(MissionGoal)
    g.name, g.status = "/shuttle_2/transport_child", "accepted"
    assert g.summary() == {"action": "/shuttle_2/transport_child", "status": "accepted",
                           "result": "not yet: the run ended while the goal was still running"}
    g.status = "succeeded"
    assert g.summary() == {"action": "/shuttle_2/transport_child", "status": "succeeded"}
