"""Deployable graphs: no robot node reads the simulator's ground truth, in any shipped scenario or launch file.

Every node of every graph is instantiated (nothing spins) exactly as ``ros2 launch`` would start it
(``launch_entries``: parameters, namespaces, remappings), and the topics it subscribes to are read back from
rclpy, so a ground-truth topic reached by a parameter default, a scenario parameter or a remap is caught.
Nodes that cannot start here (hardware drivers without their serial device, a missing key file) are checked
on their parameters and remappings instead.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from agricare.bringup.contract import SIMULATOR_NODES, is_ground_truth, node_io
from agricare.bringup.launch_description import launch_entries

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "config" / "scenarios").glob("*.yaml"))


def _launch_scenarios():
    """Scenario files the launch files start by default."""
    out = set()
    for f in sorted((ROOT / "launch").glob("*.launch.py")):
        for name in re.findall(r"[\"']([\w.-]+\.yaml)[\"']", f.read_text()):
            if (ROOT / "config" / "scenarios" / name).is_file():
                out.add(name)
    return sorted(out)


def test_every_launch_file_starts_a_shipped_scenario():
    names = _launch_scenarios()
    assert {"care.yaml", "farm.yaml", "robot_care_shuttle.yaml"} <= set(names), names


def _static_ground_truth_inputs(entry) -> list[str]:
    bad = [f"param {k}={v}" for k, v in entry.parameters[0].items() if isinstance(v, str) and "ground_truth" in v]
    bad += [f"remap {a}:={b}" for a, b in entry.remappings if "ground_truth" in b]
    return bad


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_no_robot_node_reads_ground_truth(scenario, tmp_path):
    # a vehicle's own graph (robot_*.yaml) runs on the wall clock, as robot.launch.py starts it
    entries = launch_entries(scenario, include_sim=False, use_sim_time=not scenario.stem.startswith("robot_"),
                             out_dir=str(tmp_path))
    robot_entries = [e for e in entries if e.executable not in SIMULATOR_NODES]
    assert robot_entries, f"{scenario.name}: no robot nodes"
    io = node_io(robot_entries, tmp_path)
    offenders = []
    started = 0
    for e in robot_entries:
        fqn = f"/{e.namespace}/{e.name}" if e.namespace else f"/{e.name}"
        offenders += [f"{fqn}: {b}" for b in _static_ground_truth_inputs(e)]
        rec = io[fqn]
        if "error" in rec:
            continue
        started += 1
        offenders += [f"{fqn} subscribes {t}" for t in rec["subscribes"] if is_ground_truth(t)]
    assert not offenders, "\n".join(offenders)
    # a node may fail to start here only for what a vehicle has and this machine has not (a serial device, a key
    # made at commissioning); every other node must start, so its subscriptions were really checked above
    absent = ("serial device", "does not exist", "key file", "key_file", "audit_key_file", "cannot read trust list")
    other = {k: v["error"] for k, v in io.items() if "error" in v and not any(a in v["error"] for a in absent)}
    assert not other, other
    assert started >= len(robot_entries) // 2, {k: v.get("error") for k, v in io.items() if "error" in v}


def test_the_check_catches_a_ground_truth_input(tmp_path):
    """The same check on a graph that does read ground truth (by parameter and by remap) finds both."""
    src = (ROOT / "config" / "scenarios" / "care_small.yaml").read_text()
    bad = src.replace("odom_topic: odometry/filtered", "odom_topic: ground_truth/odom", 1)
    assert bad != src
    bad = bad.replace("  - node: velocity_smoother_node\n    robot: shuttle_1\n",
                      "  - node: velocity_smoother_node\n    robot: shuttle_1\n"
                      "    remap: {cmd_vel_nav: ground_truth/twist}\n")
    f = tmp_path / "bad.yaml"
    f.write_text(bad)
    entries = [e for e in launch_entries(f, include_sim=False, out_dir=str(tmp_path))
               if e.executable not in SIMULATOR_NODES]
    io = node_io(entries, tmp_path)
    subs = {fqn: [t for t in rec.get("subscribes", {}) if is_ground_truth(t)] for fqn, rec in io.items()}
    assert subs["/shuttle_1/care_mission_node"] == ["/shuttle_1/ground_truth/odom"]
    assert subs["/shuttle_1/velocity_smoother_node"] == ["/shuttle_1/ground_truth/twist"]


def test_simulator_world_nodes_are_the_only_readers_of_truth(tmp_path):
    """care_site_sim_node (the simulated staff and guardians) sees the true shuttle: it is part of the world."""
    entries = [e for e in launch_entries(ROOT / "config" / "scenarios" / "care_small.yaml", include_sim=False,
                                         out_dir=str(tmp_path))
               if e.executable == "care_site_sim_node"]
    io = node_io(entries, tmp_path)
    assert any(is_ground_truth(t) for rec in io.values() for t in rec["subscribes"])
