"""Row robot end to end in the embedded simulator: the farm_small scenario without the tractor.

navsat_node + ekf_node (RTK GNSS, wheel odometry, IMU) -> crop_row_node -> row_follower_node ->
velocity_smoother -> safety -> sim, growth_map_node and scouting_mission_node, all in one process on simulated
time (EmbeddedRunner). Every node drives on the robot's own estimate (odometry/filtered); the figures are
measured with the simulator's ground truth (runner ``world_summary``).
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

pytest.importorskip("agricare_interfaces.msg")

from agricare.bringup.graph import load_graph  # noqa: E402
from agricare.bringup.runner import EmbeddedRunner  # noqa: E402


def _row_robot_only(repo_root, tmp_path):
    src = repo_root / "config" / "scenarios" / "farm_small.yaml"
    cfg = yaml.safe_load(src.read_text())
    cfg["robots"] = [r for r in cfg["robots"] if r["type"] == "row_robot"]
    names = {r["name"] for r in cfg["robots"]}
    cfg["nodes"] = [n for n in cfg["nodes"] if n.get("robot") in names]
    assert any(n["node"] == "scouting_mission_node" for n in cfg["nodes"]), "farm_small.yaml lost its row robot"
    for n in cfg["nodes"]:
        if n["node"] == "scouting_mission_node":
            n["params"]["output_dir"] = str(tmp_path / "records")
        if n["node"] == "growth_map_node":  # it writes only inside its own save directory
            n["params"]["save_directory"] = str(tmp_path / "records" / "growth_map")
    cfg.setdefault("run", {})["max_sim_s"] = 150
    cfg["run"]["record"] = False
    out = tmp_path / "farm_small_row_robot.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


@pytest.mark.timeout(120)
def test_row_robot_scouts_rows_in_the_simulator(repo_root, tmp_path):
    scenario = _row_robot_only(repo_root, tmp_path)
    graph = load_graph(scenario)
    domain = 150 + os.getpid() % 60  # own DDS domain: other simulations on this machine publish /clock too
    runner = EmbeddedRunner(graph, out_dir=tmp_path / "run", progress=None, record=False, domain_id=domain)
    result = runner.run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_because"] == "missions finished", summary["stopped_because"]
    status = summary["missions"]["row_robot"]
    assert status["state"] == "done", status
    assert summary["mission_goals"]["row_robot"]["status"] == "succeeded", summary["mission_goals"]
    detail = status["detail"]
    assert detail["rows_done"] == 2
    fig = summary["world"]["row_robot"]
    # ground truth: cross-track (lane offset) RMS within the 2 cm target; the robot ends in the second
    # lane (lane centres 36.375 + k * 0.75 m; the runner's row_lanes_followed labels lanes driven westwards by
    # the nearer row, so it can undercount: check the final lane directly)
    assert fig["row_lanes_followed"] == 2, fig
    x_end, y_end = fig["final_pose"][:2]
    assert abs(y_end - (36.375 + 0.75)) < 0.1 and 2.0 < x_end < 24.0, fig
    # every in-row sample counts; only the samples while the follower turns are left out (and counted).
    # Measured at 43179c9: 0.90 cm RMS, 2.6 cm max over 866 samples, 132 excluded (the one U-turn's re-entry)
    assert fig["row_cross_track_rms_m"] <= 0.013, fig
    assert fig["row_cross_track_max_m"] <= 0.04, fig
    assert fig["row_samples"] >= 2 * 20.0 / 1.0 / 0.05 * 0.8, fig   # ~2 rows of 20 m at 1 m/s, 20 Hz samples
    assert 0 < fig["row_samples_excluded_turning"] < 0.25 * fig["row_samples"], fig
    # the robot drove on its own estimate: the EKF's pose stayed within a few cm of the truth
    err = fig["pose_error"]   # measured: RMSE 1.11 cm, max 3.4 cm over 1,200 samples
    assert err["samples"] > 1000 and err["rmse_m"] <= 0.02 and err["max_m"] <= 0.06, err
    assert fig["contacts"] == 0 and fig["boundary_violations"] == 0, fig
    # the record: growth map saved by the service, scouting record files written
    rec = tmp_path / "records"
    for name in ("scouting_record.geojson", "scouting_cells.csv", "scouting_record.png", "scouting_record.json",
                 "growth_map/growth_map.csv", "growth_map/growth_map.png"):
        assert (rec / name).is_file(), name
    gj = json.loads((rec / "scouting_record.geojson").read_text())
    assert gj["features"][0]["properties"]["kind"] == "track"
    record = json.loads((rec / "scouting_record.json").read_text())
    assert record["rows_done"] == 2 and record["plant_gaps"] == detail["plant_gaps"], record
    # the scouted track lies on the rows driven (the record is georeferenced by the robot's own estimate, map
    # metres): inside the block (x 3 .. 23 m) every track point is within 8 cm of one of the two lane centres
    track = [f for f in gj["features"] if f["properties"]["kind"] == "track"][0]["geometry"]["coordinates"]
    xy = [(x, y) for x, y in track if 4.0 < x < 22.0]
    assert len(xy) > 2 * 15 / 0.2 * 0.8, len(xy)   # points every 0.2 m along two rows
    lanes = (36.375, 37.125)
    assert all(min(abs(y - c) for c in lanes) < 0.08 for _, y in xy), xy
    assert {min(lanes, key=lambda c: abs(y - c)) for _, y in xy} == set(lanes)   # both lanes
    assert result.exit_code == 0 and result.stopped_because == "missions finished"
