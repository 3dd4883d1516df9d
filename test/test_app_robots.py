"""The app's robot host scenario: every shuttle is set up for where it actually starts."""

import math

import yaml

from agricare.app import robots


def test_care_host_localisation_starts_at_each_shuttles_own_pose(tmp_path):
    scen = yaml.safe_load(robots.care_scenario(tmp_path, ["c2"], "short").read_text())
    starts = {r["name"]: r["start"] for r in scen["robots"]}
    assert set(starts) == set(robots.SHUTTLES)
    seen = {}
    for n in scen["nodes"]:
        pose = (n.get("params") or {}).get("initial_pose_in_map")
        if pose is None:
            continue
        s = starts[n["robot"]]
        assert pose == [s["x_m"], s["y_m"], math.radians(s["yaw_deg"])], (n["robot"], n["node"], pose)
        seen.setdefault(n["robot"], set()).add(n["node"])
    # both shuttles localise on the map (map pose required by their EKF): both nodes per shuttle checked
    assert seen == {r: {"map_localizer_node", "ekf_node"} for r in robots.SHUTTLES}
