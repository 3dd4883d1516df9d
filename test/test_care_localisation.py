"""The care shuttle localises itself: map particle filter + EKF in the care town (care_small, embedded simulator).

- GNSS lost for 60 s in the town: the shuttle keeps localising on the map (estimate vs simulator truth).
- The map does not match the world (every wall 2 m east, north, west or south): the localiser reports the low
  match on ``/diagnostics`` (the scans pass through mapped walls, or pull the estimate off the odometry), no
  estimate is published and the shuttle stops instead of driving on a wrong pose.
- The simulator's GNSS between buildings: no RTK, multipath jumps and outages.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
import yaml

pytest.importorskip("agricare_interfaces.msg")

from agricare.bringup.graph import load_graph  # noqa: E402
from agricare.bringup.runner import EmbeddedRunner  # noqa: E402
from agricare.core.planning.grid import OccupancyMap, load_map, save_map  # noqa: E402
from agricare.core.sim.scenarios import load_scenario  # noqa: E402
from agricare.core.sim.sensors import STATUS_FIX, STATUS_GBAS_FIX, STATUS_NO_FIX, GnssModel, GnssParams  # noqa: E402
from agricare.core.sim.world import World  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CARE_SMALL = ROOT / "config" / "scenarios" / "care_small.yaml"


def _scenario(tmp_path, max_sim_s, gnss_outage=None, map_yaml=None):
    cfg = yaml.safe_load(CARE_SMALL.read_text())
    cfg["run"]["max_sim_s"] = max_sim_s
    cfg["run"]["record"] = False
    if gnss_outage:
        cfg["robots"][0]["sensors"]["gnss"]["outages"] = [list(gnss_outage)]
    for n in cfg["nodes"]:
        if n["node"] == "map_localizer_node" and map_yaml:
            n["params"]["map_yaml"] = str(map_yaml)
        if n["node"] in ("care_site_sim_node", "care_mission_node"):
            for k in ("requests_file", "scenario_file"):
                if k in n["params"] and not pathlib.Path(n["params"][k]).is_absolute():
                    base = ROOT if k == "requests_file" else CARE_SMALL.parent
                    n["params"][k] = str(base / n["params"][k])
    f = tmp_path / "care_small_test.yaml"
    f.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f


def _level(status) -> int:
    return status.level[0] if isinstance(status.level, bytes) else int(status.level)


def _run(scenario, tmp_path, hook=None):
    runner = EmbeddedRunner(load_graph(scenario), out_dir=tmp_path / "out", progress=None, record=False)
    runner.build()
    diags = []
    from diagnostic_msgs.msg import DiagnosticArray

    from rclpy.qos import QoSProfile, ReliabilityPolicy

    # every node reports once a second at the same simulated instant (two statuses each with the security
    # report): a deep queue so that none is overwritten before this monitor reads it
    runner.monitor.create_subscription(DiagnosticArray, "/diagnostics",
                                       lambda m: diags.extend((runner.sim_time(), s) for s in m.status),
                                       QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE))
    runner.step_hook = None if hook is None else (lambda r: hook(r, diags))
    try:
        result = runner.run()
    finally:
        runner.shutdown()
    return runner, result, diags


@pytest.mark.timeout(90)
def test_gnss_lost_60_s_in_town_keeps_localising(tmp_path):
    outage = (10.0, 70.0)
    travelled = []

    def hook(r, _diags):
        if outage[0] <= r.sim_time() < outage[1]:
            travelled.append(r.sim.world.pose("shuttle_1")[:2].copy())

    runner, result, diags = _run(_scenario(tmp_path, 75.0, gnss_outage=outage), tmp_path, hook)
    errs = np.asarray(runner.pose_errors["shuttle_1"])
    during = errs[(errs[:, 0] >= outage[0]) & (errs[:, 0] < outage[1])]
    d = np.hypot(during[:, 1], during[:, 2])
    path = np.asarray(travelled)
    dist = float(np.sum(np.hypot(*np.diff(path, axis=0).T)))
    assert dist > 30.0, f"the shuttle drove only {dist:.1f} m during the outage"
    assert len(during) >= 0.9 * (outage[1] - outage[0]) * 20, len(during)   # estimate published throughout
    assert float(np.sqrt(np.mean(d ** 2))) <= 0.10 and float(d.max()) <= 0.30, (np.sqrt(np.mean(d ** 2)), d.max())
    # the EKF says GNSS is stale while the map keeps it localised
    ekf = [s for t, s in diags if s.name == "/shuttle_1/ekf_node: ekf" and outage[0] + 5 < t < outage[1]]
    assert ekf and any("gnss" in s.message for s in ekf), [s.message for s in ekf[:3]]
    assert all(_level(s) != 2 for s in ekf), [s.message for s in ekf if _level(s) == 2][:3]


# shift of every wall (m), the simulated time (s) within which the localiser must say the map is wrong, and the
# check that says it. Measured (care_small): east, south, west 1.9 s (beams through the mapped walls at once);
# north 19.2 s. The street's walls are north of the shuttle and nothing is near on its south side, so a map
# shifted north only looks like unmapped things in front of the walls, no beam passes through a mapped wall, and
# the filter slides north onto the shifted map (1.8 m in 55 s; before the window checks nothing was reported in
# 60 s). Over the first 10 m of travel only 32 % of the end points lie on the map (the whole care day on the
# right map: at least 70 % over any 10 m, both shuttles); the scans' pull off the odometry reaches 0.8-1.7 m
# (at most 0.41 m in the care day) and is the second line.
MAP_SHIFTS = {"east": ((2.0, 0.0), 5.0, "through"), "north": ((0.0, 2.0), 25.0, "match"),
              "west": ((-2.0, 0.0), 5.0, "through"), "south": ((0.0, -2.0), 5.0, "through")}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("direction", list(MAP_SHIFTS))
def test_map_that_does_not_match_stops_the_shuttle(tmp_path, direction):
    (dx, dy), bound_s, check = MAP_SHIFTS[direction]
    good = load_map(ROOT / "config" / "maps" / "care_town.yaml")
    # every wall 2 m off where it is (people and the other shuttle only shorten beams, they do not trip this)
    shifted = OccupancyMap(good.occupied, good.resolution_m, (good.origin_xy[0] + dx, good.origin_xy[1] + dy))
    map_yaml = save_map(shifted, tmp_path / "maps" / "shifted.yaml")
    speeds = []

    def hook(r, diags):
        speeds.append((r.sim_time(), abs(r.sim.world.velocity("shuttle_1")[0])))
        lost = [t for t, s in diags if s.name.endswith(": map_localizer") and _level(s) == 2]
        if lost and r.sim_time() > lost[0] + 8.0:   # seen long enough to judge the stop
            r.interrupt()

    runner, result, diags = _run(_scenario(tmp_path, bound_s + 10.0, map_yaml=map_yaml), tmp_path, hook)
    loc = [(t, s) for t, s in diags if s.name.endswith(": map_localizer")]
    errors = [(t, s) for t, s in loc if _level(s) == 2]
    assert errors, [s.message for _, s in loc[-3:]]
    t_lost = errors[0][0]
    assert "does not match the map" in errors[0][1].message
    values = {kv.key: kv.value for kv in errors[0][1].values}
    # why: beams through mapped walls, or the scans pulled the estimate off the odometry; the match is reported
    if check == "through":
        assert float(values["through_walls"]) > float(values["max_through"]) == 0.2, values
    else:
        assert float(values["window_match"]) < float(values["min_window_match"]) == 0.5, values
        assert float(values["window_m"]) >= 10.0, values
    assert float(values["match"]) < 0.8, values       # on the right map about 0.95
    assert t_lost < bound_s, (direction, t_lost)
    # no estimate after the loss, the EKF says why, and the shuttle stands still soon after (the controller
    # stops on the stale pose; the velocity smoother ramps down from its own, open-loop, command)
    assert max(runner.pose_errors.get("shuttle_1", [(0.0,)]), key=lambda e: e[0])[0] <= t_lost + 1.5
    ekf_err = [s for t, s in diags if s.name.endswith("ekf") and _level(s) == 2 and t > t_lost]
    assert ekf_err and "required source stale: pose" in ekf_err[-1].message
    late = [v for t, v in speeds if t > t_lost + 6.0]
    assert late and max(late) < 0.05, max(late)
    detail = runner.mission_status["shuttle_1"]["detail"]
    assert isinstance(detail, dict) and detail["delivered"] == [], detail


def test_gnss_between_buildings_is_degraded():
    spec = load_scenario(CARE_SMALL)
    world = World.from_scenario(spec, seed=0)
    assert world.distance_to_buildings(75.0, 101.8) < 12.0          # main street by home_1
    assert world.distance_to_buildings(50.0, 10.0) > 12.0           # west avenue, open field
    model = GnssModel(GnssParams(mode="rtk", urban_range_m=12.0), np.random.default_rng(1), world.ltp)
    open_sky = [model.read(0.5 * k, 50.0, 10.0, 2.0, urban=False) for k in range(100)]
    assert all(r.status == STATUS_GBAS_FIX for r in open_sky)
    assert max(math.hypot(r.error_east_m, r.error_north_m) for r in open_sky) < 0.1
    town = [model.read(50.0 + 0.5 * k, 75.0, 101.8, 2.0, urban=True) for k in range(2000)]
    statuses = [r.status for r in town]
    assert STATUS_GBAS_FIX not in statuses
    no_fix = statuses.count(STATUS_NO_FIX) / len(town)
    assert 0.15 < no_fix < 0.45, no_fix
    fixes = [r for r in town if r.status == STATUS_FIX]
    err = np.array([math.hypot(r.error_east_m, r.error_north_m) for r in fixes])
    reported = math.sqrt(fixes[0].position_covariance[0])
    assert reported == pytest.approx(1.0)
    assert np.mean(err > 3.0 * reported) > 0.05   # multipath jumps beyond what the receiver reports
