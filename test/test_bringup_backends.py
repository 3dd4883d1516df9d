"""One graph, three back-ends: every topic a node subscribes to is published by another node of the graph or
by the back-end: the embedded simulator (farm, care), the Gazebo bridge (gazebo_farm, gazebo_care) or the
hardware drivers (robot_* graphs: the package's drivers, plus the vendor drivers the graph names under
``external_drivers``). Operator inputs and optional inputs (``agricare.bringup.contract``) are the only
exceptions. The nodes are instantiated as launched and their topics read back from rclpy.
"""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml

from agricare.bringup.contract import (SIMULATOR_NODES, bridge_topics, contract_type, is_ground_truth, node_io,
                                       unmet_inputs)
from agricare.bringup.launch_description import launch_entries

ROOT = pathlib.Path(__file__).resolve().parents[1]
SC = ROOT / "config" / "scenarios"


GAZEBO = {"farm.yaml": "farm", "care.yaml": "care"}   # scenario -> Gazebo world of its launch file


@pytest.mark.parametrize("scenario", ["farm.yaml", "care.yaml", "farm_small.yaml", "care_small.yaml"])
def test_simulator_and_gazebo_graphs_are_complete(scenario, tmp_path):
    """Embedded simulator: the graph + sim_node. Gazebo (the same graph without sim_node, fed by the bridge)."""
    io = node_io(launch_entries(SC / scenario, include_sim=True, out_dir=str(tmp_path)), tmp_path)
    assert not [k for k, v in io.items() if "error" in v], {k: v["error"] for k, v in io.items() if "error" in v}
    assert not unmet_inputs(io, {}), "\n".join(unmet_inputs(io, {}))
    world = GAZEBO.get(scenario)
    if world is None:
        return
    launch = (ROOT / "launch" / f"gazebo_{world}.launch.py").read_text()
    assert f'"{scenario}"' in launch and f'gazebo_launch("{world}"' in launch
    bridge = bridge_topics(ROOT / "worlds" / f"{world}_bridge.yaml")
    gz_io = {k: v for k, v in io.items() if v["node"] != "sim_node"}
    problems = unmet_inputs(gz_io, bridge)
    assert not problems, "\n".join(problems)
    # robot nodes never get ground truth; the bridge gives it only to the simulated world's own nodes
    for fqn, rec in gz_io.items():
        if rec["node"] not in SIMULATOR_NODES:
            assert not [t for t in rec["subscribes"] if is_ground_truth(t)], fqn


def _with_ptys(entries, stack):
    """Driver nodes get a pseudo-terminal as their serial port (the device is not here; topics are the same)."""
    for e in entries:
        if e.executable in ("base_driver_node", "gnss_node", "safe_base_node"):
            master, slave = os.openpty()
            stack.append(master)
            stack.append(slave)
            e.parameters[0]["driver.port" if e.executable == "safe_base_node" else "port"] = os.ttyname(slave)
    return entries


@pytest.mark.parametrize("scenario", ["robot_care_shuttle.yaml", "robot_tractor.yaml", "robot_row_robot.yaml"])
def test_hardware_graph_is_complete(scenario, tmp_path):
    raw = yaml.safe_load((SC / scenario).read_text())
    external = raw.get("external_drivers") or {}
    robot = raw["robots"][0]["name"]
    for topic in external:
        assert contract_type(f"/{robot}/{topic}"), f"external driver topic {topic} is not in the topic contract"
    fds = []
    try:
        # as robot.launch.py starts it: no simulator, wall clock
        entries = _with_ptys(launch_entries(SC / scenario, use_sim_time=False, include_sim=False,
                                            out_dir=str(tmp_path)), fds)
        for e in entries:
            for k, v in list(e.parameters[0].items()):
                if isinstance(v, str) and v.startswith("/var/lib/agricare"):
                    e.parameters[0][k] = str(tmp_path / pathlib.Path(v).name)
                    if k.endswith("trust_file"):   # keys and trust lists are written at commissioning
                        from agricare.bringup.signing import ensure_key

                        name = pathlib.Path(v).name[:-len("_trust.yaml")]
                        ensure_key(tmp_path, name, [])
            if e.executable == "handover_node":
                e.parameters[0].update(key_file=str(tmp_path / "handover.key"), create_key_if_missing=True)
            if e.executable == "care_mission_node":  # the vehicle's audit key is made at commissioning
                e.parameters[0].update(create_audit_key_if_missing=True)
        io = node_io(entries, tmp_path)
    finally:
        for fd in fds:
            os.close(fd)
    errors = {k: v["error"] for k, v in io.items() if "error" in v}
    assert not errors, errors
    drivers = [k for k, v in io.items() if v["node"] in ("base_driver_node", "safe_base_node", "gnss_node")]
    assert len(drivers) == 2, drivers
    providers = {f"/{robot}/{t}": d for t, d in external.items()}
    problems = unmet_inputs(io, providers)
    assert not problems, "\n".join(problems)
    # the mission of the robot type is part of its hardware graph
    mission = {"robot_care_shuttle.yaml": "care_mission_node", "robot_tractor.yaml": "farm_mission_node",
               "robot_row_robot.yaml": "scouting_mission_node"}[scenario]
    assert any(v["node"] == mission for v in io.values())


def test_an_unpublished_input_is_found(tmp_path):
    """The check fails on a graph missing a publisher (the EKF removed: odometry/filtered has no source)."""
    f = tmp_path / "no_ekf.yaml"
    cfg = yaml.safe_load((SC / "care_small.yaml").read_text())
    cfg["nodes"] = [n for n in cfg["nodes"] if n["node"] != "ekf_node"]
    f.write_text(yaml.safe_dump(cfg))
    io = node_io(launch_entries(f, include_sim=True, out_dir=str(tmp_path)), tmp_path)
    problems = unmet_inputs(io, {})
    assert any("/shuttle_1/controller_node subscribes /shuttle_1/odometry/filtered" in p for p in problems), problems
