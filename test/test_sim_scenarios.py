"""Scenario files: the shipped ones load and build; bad ones fail with one line naming the problem."""

from __future__ import annotations

import copy

import pytest

from agricare.core.sim.scenarios import ScenarioError, load_scenario, parse_scenario, scenario_dict
from agricare.core.sim.world import World

SHIPPED = ["farm_small", "farm", "care"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load_and_step(repo_root, name):
    spec = load_scenario(repo_root / f"config/scenarios/{name}.yaml")
    # the bring-up part is there (the simulator ignores it) and names only known node executables
    assert isinstance(spec.raw["nodes"], list) and len(spec.raw["nodes"]) >= 5
    w = World.from_scenario(spec, seed=0)
    kinds = {r.name: set() for r in spec.robots}
    for _ in range(5):
        w.step(0.02)
        for sample in w.sensors_due():
            if sample.robot is not None:
                kinds[sample.robot].add(sample.kind)
    assert w.contacts == [] and w.boundary_violations == []
    for r in spec.robots:   # every robot's sensors report from the first steps; nobody moved without a command
        assert {"odom", "imu", "gnss"} <= kinds[r.name], (r.name, kinds[r.name])
        assert w.pose(r.name)[:2] == pytest.approx(r.start[:2], abs=1e-6)
        if "camera" in r.sensors and r.sensors["camera"].sign_range_m == 0:   # else only near a sign
            assert "camera" in kinds[r.name]
    if name == "care":
        assert len([p for p in spec.places if p.kind == "home"]) == 8
        assert {"nursery", "clinic", "depot"} <= {p.kind for p in spec.places}
        assert {p.kind for p in spec.people} == {"adult", "child"}
        assert [r.type for r in spec.robots] == ["care_shuttle", "care_shuttle"]
    else:
        assert {r.type for r in spec.robots} == {"tractor", "row_robot"}
        assert w.row_error("row_robot").inside_block is False  # waits before the rows
        assert abs(w.row_error("row_robot").lane_offset_m) < (1e-6 if name == "farm_small" else 0.1)  # farm: wavy


def _base():
    return scenario_dict([{"name": "t", "type": "tractor", "start": {"x_m": 5, "y_m": 5}, "field": "f",
                           "implement": {"section_widths_m": [1, 1, 1]}}],
                         fields=[{"name": "f", "polygon": [[0, 0], [40, 0], [40, 30], [0, 30]]}])


def _mutate(fn):
    cfg = copy.deepcopy(_base())
    fn(cfg)
    return cfg


BAD = [
    (lambda c: c["robots"][0].update(type="plane"), "robots[0].type: unknown robot type 'plane'"),
    (lambda c: c["world"]["fields"][0].update(polygon=[[0, 0], [10, 10], [10, 0], [0, 10]]),
     "world.fields[0].polygon: bad polygon: Self-intersection"),
    (lambda c: c["world"]["fields"][0].update(polygon=[[0, 0], [1, 1]]), "world.fields[0].polygon: expected a list"),
    (lambda c: c["world"].pop("datum"), "world.datum: missing"),
    (lambda c: c["world"]["datum"].update(lat_deg=95.0), "world.datum.lat_deg: must be <= 89"),
    (lambda c: c["world"].update(colour="red"), "world.colour: unknown key"),
    (lambda c: c["robots"][0].update(field="nowhere"), "robots[0].field: unknown field 'nowhere'"),
    (lambda c: c["robots"][0].update(vehicle={"wheelbase_m": -1}), "robots[0].vehicle: wheelbase_m must be"),
    (lambda c: c["robots"][0].update(vehicle={"wings": 2}), "robots[0].vehicle: unknown parameter 'wings'"),
    (lambda c: c["robots"][0].update(sensors={"gnss": {"mode": "magic"}}), "robots[0].sensors.gnss: mode must be"),
    (lambda c: c["robots"][0].update(sensors={"sonar": {}}), "robots[0].sensors.sonar: unknown sensor"),
    (lambda c: c["robots"][0].update(sensors={"camera": {"pitch_degrees": 3}}),
     "robots[0].sensors.camera.pitch_degrees: unknown key"),
    (lambda c: c["robots"][0].update(sensors={"gnss": {"outages": [[5, 2]]}}), "robots[0].sensors.gnss: outages"),
    (lambda c: c["robots"].append(dict(c["robots"][0])), "robots[1].name: duplicate name 't'"),
    (lambda c: c["robots"][0].update(name="my robot"), "robots[0].name: 'my robot' is not a valid ROS namespace"),
    (lambda c: c["robots"][0]["start"].pop("x_m"), "robots[0].start.x_m: missing"),
    (lambda c: c.update(robots=[]), "robots: at least one robot"),
    (lambda c: c["world"].update(people=[{"name": "p", "kind": "dog", "path": [[0, 0]]}]),
     "world.people[0].kind: unknown person kind 'dog'"),
    (lambda c: c["world"].update(obstacles=[{"name": "o", "circle": {"center": [0, 0], "radius_m": 0}}]),
     "world.obstacles[0].circle.radius_m: must be > 0"),
    (lambda c: c["world"]["fields"][0].update(holes=[[[50, 50], [60, 50], [60, 60]]]),
     "world.fields[0].holes[0]: hole is not inside"),
    (lambda c: c["world"].update(places=[{"name": "h", "kind": "castle", "xy": [0, 0],
                                          "boarding": {"x_m": 0, "y_m": 0}}]),
     "world.places[0].kind: unknown place kind 'castle'"),
    (lambda c: c["robots"].append({"name": "s", "type": "care_shuttle", "start": {"x_m": 0, "y_m": 0},
                                   "implement": {"section_widths_m": [1]}}),
     "robots[1].implement: only a tractor carries an implement"),
]


@pytest.mark.parametrize("mutate,expected", BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_bad_scenarios_fail_with_one_clear_line(mutate, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_mutate(mutate))
    msg = str(info.value)
    assert expected in msg, msg
    assert "\n" not in msg


def test_base_scenario_is_valid():
    spec = parse_scenario(_base())
    assert spec.robots[0].implement.width_m == 3.0


def test_load_scenario_names_the_file_and_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("world:\n  name: x\n  datum: [1, 2\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: bad YAML at line \d+"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text("world:\n  name: x\n  datum: {lat_deg: 36, lon_deg: 140}\nrobots:\n"
                    "  - {name: a, type: tractr, start: {x_m: 0, y_m: 0}}\n")
    with pytest.raises(ScenarioError, match=r"typo\.yaml: robots\[0\]\.type: unknown robot type 'tractr'"):
        load_scenario(typo)


def test_degree_keys_are_converted_to_radians():
    cfg = _mutate(lambda c: c["robots"][0].update(vehicle={"max_steer_deg": 30},
                                                  sensors={"scan": {"fov_deg": 180, "mount_yaw_deg": 90}}))
    r = parse_scenario(cfg).robots[0]
    assert r.vehicle.max_steer_rad == pytest.approx(0.5235987755982988)
    assert r.sensors["scan"].fov_rad == pytest.approx(3.141592653589793)
    assert r.sensors["scan"].mount_yaw_rad == pytest.approx(1.5707963267948966)
