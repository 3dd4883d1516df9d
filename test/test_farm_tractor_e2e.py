"""Tractor coverage end to end on the demo's field: the ground truth must show the whole inner field worked.

The whole graph (EKF localisation, coverage mission, controller, smoother, safety, section control) runs
in-process on simulated time against the embedded simulator; figures come from the simulator's coverage
raster, not from the plan.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")
from agricare.bringup.graph import load_graph  # noqa: E402
from agricare.bringup.runner import EmbeddedRunner  # noqa: E402


@pytest.mark.timeout(400)
def test_tractor_covers_the_demo_field(repo_root, tmp_path):
    # farm.yaml's 100 x 60 m field (the 40 x 30 m field of farm_small needs three-point turns in its 6 m
    # headland, which the Ackermann tractor tracks poorly in reverse; see the closing note)
    src = repo_root / "config" / "scenarios" / "farm.yaml"
    d = yaml.safe_load(src.read_text())
    d["robots"] = [r for r in d["robots"] if r["name"] == "tractor"]
    d["nodes"] = [n for n in d["nodes"] if n.get("robot") == "tractor"]
    for n in d["nodes"]:
        if "scenario_file" in n.get("params", {}):
            n["params"]["scenario_file"] = str(src)
    p = tmp_path / "tractor_small.yaml"
    p.write_text(yaml.safe_dump(d))
    runner = EmbeddedRunner(load_graph(p), tmp_path / "out", seed=0, until_done=True, progress=None)
    runner.build()
    try:
        result = runner.run()
    finally:
        runner.shutdown()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["missions"]["tractor"]["state"] == "done", summary["stopped_because"]
    assert summary["mission_goals"]["tractor"]["status"] == "succeeded", summary["mission_goals"]
    fig = summary["world"]["tractor"]
    assert fig["covered_ratio_inner"] >= 0.99
    assert fig["double_ratio_inner"] <= 0.03
    assert fig["boundary_violations"] == 0 and fig["contacts"] == 0
    assert result.exit_code == 0
    # worked corners, the outer pass 0.09 m off the boundary (issue 22's demo criterion; measured in the demo graph:
    # whole field 99.3-99.5 %, double 0.5-0.6 %, rate within 5 % on 98 % of the worked area)
    assert fig["covered_ratio_field"] >= 0.99 and fig["double_ratio_field"] <= 0.03
    assert fig["applied_rate"]["within_5pct_of_worked_area"] >= 0.95
    # the machine's own field record was written at the end of the job
    rec = tmp_path / "out" / "records" / "tractor"
    assert (rec / "applied_area.geojson").is_file() and (rec / "sections_log.csv").is_file()
    applied = json.loads((rec / "applied_area.geojson").read_text())["properties"]["applied_area_m2"]
    assert applied > 0.9 * 100 * 60
    # ... and the as-applied record for farm software: ISO-XML task with its binary time log (rates from the
    # demo's prescription map), Shapefile and GeoJSON points
    from agricare.core.farmdata.isoxml import read_timelog

    assert (rec / "TASKDATA" / "TASKDATA.XML").is_file() and (rec / "as_applied.shp").is_file()
    tl = read_timelog(rec / "TASKDATA")
    pre = tl["values"][:, tl["ddi"].index(0x06)]
    # the record's setpoint is the mean prescription under the sections that are on (zones meet under the bar)
    on = pre > 0
    assert on.mean() > 0.5 and np.all((pre[on] >= 119.5 * 100) & (pre[on] <= 180.5 * 100))
    assert {120.0, 150.0, 180.0} <= set((pre[on] / 100).round())
