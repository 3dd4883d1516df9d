"""Maps, zones, costmap, A*, Hybrid-A*, plan_route."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from agricare.core.planning import grid as g

ROOT = pathlib.Path(__file__).resolve().parents[1]


def wall_map():
    occ = np.zeros((200, 200), dtype=bool)      # 20 m x 20 m at 0.1 m
    occ[0:150, 95:105] = True                   # wall from the south, gap in the north
    return g.OccupancyMap(occ, 0.1, (-5.0, -5.0))


def test_map_yaml_round_trip(tmp_path):
    m = wall_map()
    m.unknown[190:, :10] = True
    path = g.save_map(m, tmp_path / "m.yaml")
    back = g.load_map(path)
    assert back.resolution_m == 0.1 and back.origin_xy == (-5.0, -5.0)
    assert np.array_equal(back.occupied, m.occupied) and np.array_equal(back.unknown, m.unknown)
    col, row = back.world_to_cell([[4.55, 0.0]])
    assert back.occupied[row[0], col[0]]


def test_bad_map_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text("image: none.pgm\nresolution: 0.1\norigin: [0, 0, 0]\n")
    with pytest.raises(ValueError, match="cannot read image"):
        g.load_map(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("image: none.pgm\norigin: [0, 0, 0]\n")
    with pytest.raises(ValueError, match="resolution"):
        g.load_map(tmp_path / "b.yaml")


def test_zone_parsing_and_errors():
    layer = g.parse_zones({"default_speed_limit_mps": 3.0, "zones": [
        {"name": "school", "type": "speed_limit", "speed_limit_mps": 1.5, "polygon": [[0, 0], [10, 0], [10, 10]]},
        {"name": "x", "type": "speed_limit", "speed_limit_mps": 1.0, "polygon": [[0, 0], [2, 0], [2, 2], [0, 2]]},
        {"name": "works", "type": "keep_out", "polygon": [[20, 20], [30, 20], [30, 30]]}],
        "places": {"home": [1.0, 2.0]}})
    np.testing.assert_allclose(layer.speed_limits([[5, 1], [1, 0.5], [50, 50]]), [1.5, 1.0, 3.0])
    assert [z.name for z in layer.keep_out] == ["works"] and layer.places["home"].shape == (3,)
    with pytest.raises(ValueError, match="speed_limit_mps"):
        g.parse_zones({"zones": [{"name": "a", "type": "speed_limit", "polygon": [[0, 0], [1, 0], [1, 1]]}]})
    with pytest.raises(ValueError, match="type"):
        g.parse_zones({"zones": [{"name": "a", "type": "slow", "polygon": [[0, 0], [1, 0], [1, 1]]}]})
    with pytest.raises(ValueError, match="polygon"):
        g.parse_zones({"zones": [{"name": "a", "type": "keep_out", "polygon": [[0, 0], [1, 0]]}]})


def test_costmap_inflation_and_keep_out():
    m = wall_map()
    zones = g.parse_zones({"zones": [{"name": "k", "type": "keep_out",
                                      "polygon": [[-4, 10], [-2, 10], [-2, 12], [-4, 12]]}]})
    cm = g.build_costmap(m, 0.5, 1.5, 3.0, zones)
    assert cm.cost_at([[4.6, 0.0]])[0] == g.LETHAL             # in the wall
    assert cm.cost_at([[4.0, 0.0]])[0] == g.LETHAL             # within the inscribed radius
    c = cm.cost_at([[3.6, 0.0]])[0]
    assert 0 < c < g.LETHAL                                    # inflated
    assert cm.cost_at([[0.0, 0.0]])[0] == 0
    assert cm.cost_at([[-3.0, 11.0]])[0] == g.LETHAL           # keep-out
    assert cm.cost_at([[100.0, 0.0]])[0] == g.LETHAL           # outside


def test_astar_goes_around_the_wall():
    m = wall_map()
    cm = g.build_costmap(m, 0.4, 1.0)
    pts = g.astar(cm, (0.0, 0.0), (9.0, 0.0))
    assert np.allclose(pts[0], (0.0, 0.0)) and np.allclose(pts[-1], (9.0, 0.0))
    assert np.all(cm.clearance_at(pts) >= 0.4)
    assert pts[:, 1].max() > 10.0                              # through the gap in the north
    sm = g.smooth_path(cm, pts, 0.45)
    assert np.all(cm.clearance_at(sm) >= 0.45) and g.path_length(sm) < g.path_length(pts)
    with pytest.raises(g.PlanningError, match="collision"):
        g.astar(cm, (0.0, 0.0), (4.6, 0.0))
    with pytest.raises(g.PlanningError, match="outside"):
        g.astar(cm, (0.0, 0.0), (40.0, 0.0))


def test_astar_reports_no_path():
    occ = np.zeros((100, 100), dtype=bool)
    occ[:, 50] = True
    cm = g.build_costmap(g.OccupancyMap(occ, 0.1), 0.2, 0.5)
    with pytest.raises(g.PlanningError):
        g.astar(cm, (1.0, 5.0), (9.0, 5.0))


def test_dubins_reaches_the_goal_and_respects_the_radius():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = np.append(rng.uniform(-20, 20, 2), rng.uniform(-math.pi, math.pi))
        b = np.append(rng.uniform(-20, 20, 2), rng.uniform(-math.pi, math.pi))
        word, lengths, total = g.dubins_path(a, b, 3.0)
        poses = g.sample_dubins(a, word, lengths, 3.0, 0.05)
        assert np.allclose(poses[-1, :2], b[:2], atol=1e-6)
        assert g.max_curvature(poses) <= 1 / 3.0 * 1.001
        assert total >= math.hypot(*(b[:2] - a[:2])) - 1e-9


def test_hybrid_astar_avoids_obstacles_and_respects_turn_radius():
    m = wall_map()
    cm = g.build_costmap(m, 0.5, 1.5)
    fp = g.Footprint(1.2, 0.8, 0.3)
    hp = g.HybridAStarParams(min_turn_radius_m=2.0, xy_resolution_m=0.5)
    path = g.hybrid_astar(cm, (0.0, 0.0, math.pi / 2), (9.0, 0.0, -math.pi / 2), fp, hp)
    assert np.all(g.footprint_clear(cm, path[:, :3], fp))
    assert g.max_curvature(path[:, :3]) <= 1 / 2.0 * 1.001
    assert np.allclose(path[-1, :2], (9.0, 0.0), atol=0.3)
    assert path[:, 1].max() > 10.0
    with pytest.raises(g.PlanningError, match="collision"):
        g.hybrid_astar(cm, (4.6, 0.0, 0.0), (9.0, 0.0, 0.0), fp, hp)


@pytest.fixture(scope="module")
def town():
    return g.load_map(ROOT / "config" / "maps" / "town.yaml"), g.load_zones(ROOT / "config" / "maps" /
                                                                           "town_zones.yaml")


def test_town_places_are_free_and_keep_out_is_respected(town):
    m, zones = town
    p = g.RoutePlannerParams()
    cm = g.costmap_for(m, p, zones)
    assert {"nursery", "clinic", "depot"} <= set(zones.places) and sum(k.startswith("home") for k in zones.places) == 8
    assert np.all(g.footprint_clear(cm, np.stack(list(zones.places.values())), p.footprint, 0.05))
    # home_5 -> clinic would be shortest through the road works on the east avenue
    path, speed = g.plan_route(m, zones.places["home_5"], zones.places["nursery"], p, zones, cm)
    assert np.all(g.footprint_clear(cm, path, p.footprint))
    for z in zones.keep_out:
        from agricare.core.geometry import points_in_polygon
        assert not points_in_polygon(path[:, :2], z.polygon).any()
    assert np.allclose(path[0], zones.places["home_5"]) and np.allclose(path[-1], zones.places["nursery"])
    assert g.max_curvature(path) <= 1 / p.min_turn_radius_m + 0.02
    # the nursery stop lies in the school zone: limits applied there
    assert speed[-1] <= 1.5 and speed.max() <= p.max_speed_mps and speed.shape == (len(path),)


def test_plan_route_astar_and_bad_params(town):
    m, zones = town
    p = g.RoutePlannerParams(planner="astar", astar_resolution_m=0.6)
    path, speed = g.plan_route(m, zones.places["home_1"], zones.places["home_2"], p, zones)
    assert path.shape[1] == 3 and len(speed) == len(path)
    with pytest.raises(ValueError, match="planner"):
        g.RoutePlannerParams(planner="rrt")
    with pytest.raises(ValueError, match="min_turn_radius_m"):
        g.RoutePlannerParams(min_turn_radius_m=0.0)
    with pytest.raises(g.PlanningError):
        g.plan_route(m, (0.5, 100.0, 0.0), zones.places["nursery"], p, zones)   # inside the boundary wall


def test_town_map_matches_its_generator():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "make_town_map.py"), "--check"],
                       env={"PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
