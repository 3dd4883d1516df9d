"""Row following in the simulator with a chosen crop-row detector (issue 19: <= 2 cm RMS with the new one).

The farm_small scenario with its row robot only (as ``test/test_farm_row_robot_e2e.py``), in the embedded
simulator, with ``crop_row_node``'s ``method`` set to the one given (the robot's configured default is in
``config/crop_row_node.yaml``). The robot drives on its own EKF pose; the cross-track figures are measured
against the simulator's ground truth (runner ``world_summary``), every in-row sample, the follower's turns
left out and counted. Several minutes of wall time on a loaded machine: a bench, not a test.

Run: ``PYTHONPATH=src .venv/bin/python bench/crop_row_sim.py [--method learned] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("vp", "fourier", "learned"), default="learned")
    ap.add_argument("--out", default=str(REPO / "out" / "bench" / "crop_row_sim"))
    a = ap.parse_args(argv)
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import EmbeddedRunner

    out = pathlib.Path(a.out) / a.method
    out.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((REPO / "config" / "scenarios" / "farm_small.yaml").read_text())
    cfg["robots"] = [r for r in cfg["robots"] if r["type"] == "row_robot"]
    names = {r["name"] for r in cfg["robots"]}
    cfg["nodes"] = [n for n in cfg["nodes"] if n.get("robot") in names]
    for n in cfg["nodes"]:
        if n["node"] == "scouting_mission_node":
            n["params"]["output_dir"] = str(out / "records")
        if n["node"] == "growth_map_node":
            n["params"]["save_directory"] = str(out / "records" / "growth_map")
        if n["node"] == "crop_row_node":
            n["params"]["method"] = a.method
    cfg.setdefault("run", {})["max_sim_s"] = 150
    cfg["run"]["record"] = False
    scenario = out / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(cfg, sort_keys=False))
    runner = EmbeddedRunner(load_graph(scenario), out_dir=out / "run", progress=None, record=False,
                            domain_id=150 + os.getpid() % 60)
    runner.run()
    summary = json.loads((out / "run" / "summary.json").read_text())
    fig = summary["world"]["row_robot"]
    keys = ("row_cross_track_rms_m", "row_cross_track_max_m", "row_samples", "row_samples_excluded_turning",
            "row_lanes_followed")
    print(f"method {a.method}: {summary['stopped_because']}, mission {summary['missions']['row_robot']['state']}")
    print("  " + ", ".join(f"{k} {fig[k]}" for k in keys))
    print(f"  EKF pose vs truth: RMSE {fig['pose_error']['rmse_m']} m, max {fig['pose_error']['max_m']} m")
    (out / "figures.json").write_text(json.dumps({k: fig[k] for k in keys} | {"pose_error": fig["pose_error"]},
                                                 indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
