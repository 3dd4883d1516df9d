"""Launch semantics as ROS users expect: rcl params-file matching everywhere, robot selection separate from
the pushed namespace, the simulator gets params_file, absolute output paths, goal senders per mission."""

from __future__ import annotations

import ast
import os

import pytest
import yaml

from agricare.bringup.graph import key_matches, load_graph, read_params_file
from agricare.bringup.launch_description import launch_entries


@pytest.mark.parametrize("key,fqn,expected", [
    ("/**", "/tractor/controller_node", True),
    ("**", "/controller_node", True),
    ("/tractor/controller_node", "/tractor/controller_node", True),
    ("/tractor/controller_node", "/shuttle_1/controller_node", False),
    ("controller_node", "/controller_node", True),        # a bare name is absolute, as in rcl
    ("controller_node", "/tractor/controller_node", False),
    ("/**/controller_node", "/tractor/controller_node", True),
    ("/**/controller_node", "/controller_node", True),
    ("/tractor/*", "/tractor/ekf_node", True),
    ("/tractor/*", "/tractor/sub/ekf_node", False),
    ("/*/controller_node", "/fleet/tractor/controller_node", False),
])
def test_params_file_keys_match_like_rcl(key, fqn, expected):
    assert key_matches(key, fqn) is expected


def test_params_file_sections_apply_by_fully_qualified_name(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"a": 1}},
        "/tractor/controller_node": {"ros__parameters": {"b": 2}},
        "controller_node": {"ros__parameters": {"c": 3}}}))
    assert read_params_file(f, "/tractor/controller_node") == {"a": 1, "b": 2}
    assert read_params_file(f, "/controller_node") == {"a": 1, "c": 3}


def test_launch_entries(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = repo_root / "config" / "scenarios" / "farm_small.yaml"
    extra = str(tmp_path / "extra.yaml")
    entries = launch_entries(scenario, use_sim_time=True, include_sim=True, params_file=extra, out_dir="rel_out")
    sim = entries[0]
    assert sim.executable == "sim_node" and sim.parameters[-1] == extra and sim.parameters[0]["use_sim_time"] is False
    for e in entries[1:]:
        assert e.parameters[-1] == extra   # the same params file reaches every node
        for v in e.parameters[0].values():
            assert not (isinstance(v, str) and "${out}" in v)
            if isinstance(v, str) and "rel_out" in v:
                assert os.path.isabs(v) and v.startswith(str(tmp_path))
    graph = load_graph(scenario)
    missions = [n for n in graph.nodes if n.node in ("farm_mission_node", "care_mission_node", "scouting_mission_node")]
    goals = [e for e in entries if e.executable == "mission_goal_node"]
    assert missions and sorted(e.namespace for e in goals) == sorted(n.robot for n in missions)
    # the goal senders sign with the run's operator key, which the missions trust for goals only
    from agricare.core.security.keys import TrustList, load_signing_key

    for e in goals:
        key = load_signing_key(e.parameters[0]["signing_key_file"])
        assert e.parameters[0]["robot_name"] == e.namespace
        (mission,) = [m for m in entries if m.namespace == e.namespace and m.executable.endswith("mission_node")]
        entry = TrustList.load(mission.parameters[0]["goal_trust_file"]).get(key.key_id)
        assert entry is not None and entry.kinds == ("mission_goal",)
        assert mission.parameters[0]["command_replay_file"].startswith(str(tmp_path))
    only = launch_entries(scenario, include_sim=False, robot="tractor")
    assert only and all(e.namespace == "tractor" for e in only)
    manager = [e for e in only if e.executable == "lifecycle_manager_node"]
    assert len(manager) == 1
    order = manager[0].parameters[0]["node_names"]
    # safety before localisation before the mission
    assert order.index("safety_supervisor_node") < order.index("ekf_node") < order.index("farm_mission_node")
    managed = [e for e in only if e.parameters[0].get("managed")]
    assert sorted(e.name for e in managed) == sorted(order)


def test_launch_files_push_the_namespace_and_append_environment(repo_root):
    text = (repo_root / "launch" / "_common.py").read_text()
    tree = ast.parse(text)
    called = {getattr(n.func, "id", getattr(n.func, "attr", "")) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {"PushRosNamespace", "GroupAction", "AppendEnvironmentVariable"} <= called
    assert "SetEnvironmentVariable" not in called   # never overwrite the user's GZ_SIM_RESOURCE_PATH
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument":
            assert any(k.arg == "description" for k in call.keywords), ast.unparse(call)[:80]
