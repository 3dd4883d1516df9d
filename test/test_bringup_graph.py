"""Scenario node graphs: loading, parameters files, one clear line for each kind of bad file."""

from __future__ import annotations

import pytest
import yaml

from agricare.bringup.graph import GraphError, available_nodes, load_graph, read_params_file
from agricare.bringup.launch_description import launch_entries

WORLD = {"name": "t", "datum": {"lat_deg": 36.1, "lon_deg": 140.1},
         "fields": [{"name": "f", "polygon": [[0, 0], [40, 0], [40, 30], [0, 30]]}]}


def write(tmp_path, doc, name="s.yaml"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def scenario(nodes, robots=None, **extra):
    return {"world": WORLD, "robots": robots or [{"name": "tractor", "type": "tractor",
                                                  "start": {"x_m": 5, "y_m": 5}}], "nodes": nodes, **extra}


def test_nodes_exist_for_every_module():
    nodes = available_nodes()
    assert "robot_description_node" in nodes and "controller_node" in nodes


def test_load_graph_merges_params(tmp_path):
    pf = write(tmp_path, {"/**": {"ros__parameters": {"desired_speed_mps": 2.0, "lookahead": {"min_m": 1.0}}}},
               "ctrl.yaml")
    g = load_graph(write(tmp_path, scenario([
        {"node": "controller_node", "robot": "tractor", "params_files": [str(pf)],
         "params": {"algorithm": "stanley"}, "remap": {"odometry/filtered": "ground_truth/odom"}},
        "robot_description_node"], run={"max_sim_s": 30, "step_dt_s": 0.02})))
    assert g.robots == {"tractor": "tractor"}
    ctrl = g.nodes[0]
    assert ctrl.fqn == "/tractor/controller_node"
    assert ctrl.params == {"desired_speed_mps": 2.0, "lookahead.min_m": 1.0, "algorithm": "stanley"}
    assert ctrl.remap == {"odometry/filtered": "ground_truth/odom"}
    assert g.nodes[1].fqn == "/robot_description_node"
    assert g.run.max_sim_s == 30
    entries = launch_entries(g.scenario_file, include_sim=True)
    assert entries[0].executable == "sim_node"
    robot_entry = [e for e in entries if e.executable == "controller_node"][0]
    assert robot_entry.namespace == "tractor"
    assert ("/tf", "tf") in robot_entry.remappings
    assert robot_entry.parameters[0]["use_sim_time"] is True
    only = launch_entries(g.scenario_file, include_sim=False, robot="tractor")
    assert [e.executable for e in only] == ["controller_node"]


@pytest.mark.parametrize("nodes,robots,match", [
    ([{"node": "teleport_node"}], None, "unknown node 'teleport_node'"),
    ([{"node": "controller_node", "params_files": ["missing.yaml"]}], None, "params file 'missing.yaml' not found"),
    ([{"node": "controller_node", "robot": "harvester"}], None, "unknown robot 'harvester'"),
    ([{"node": "controller_node", "colour": "red"}], None, "unknown key"),
    ([{"node": "controller_node"}, {"node": "controller_node"}], None, "duplicate node"),
])
def test_bad_graphs_fail_with_one_line(tmp_path, nodes, robots, match):
    with pytest.raises(GraphError) as err:
        load_graph(write(tmp_path, scenario(nodes, robots)))
    assert match in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_yaml_names_the_line(tmp_path):
    p = write(tmp_path, "world: {name: x\nrobots: [\n")
    with pytest.raises(GraphError, match=r"line \d+"):
        load_graph(p)


def test_bad_params_file(tmp_path):
    bad = write(tmp_path, "/**:\n  not_params: {a: 1}\n", "bad.yaml")
    with pytest.raises(GraphError, match="ros__parameters"):
        read_params_file(bad, "x")
    with pytest.raises(GraphError, match="not found"):
        load_graph(tmp_path / "nope.yaml")


def test_shipped_scenarios_load(repo_root):
    for path in sorted((repo_root / "config" / "scenarios").glob("*.yaml")):
        g = load_graph(path)
        assert g.name
