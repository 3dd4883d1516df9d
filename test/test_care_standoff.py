"""Two care shuttles meet nose to nose on a lane too narrow to pass: the right of way resolves it.

The care town of ``care_small.yaml`` with its main street narrowed to 3 m (the two traffic lanes 1.5 m apart,
the shuttles 1.6 m wide): shuttle_1 drives east, shuttle_2 west, on the full graph of each shuttle (its own
localisation, care mission, controller, smoother, people tracker, safety supervisor). They meet, each
supervisor holds its shuttle for the other (PROTECTIVE_STOP, ``obstacle``): the stand-off that ended a browser
test run. shuttle_1 keeps the way (same order otherwise: the name); shuttle_2 reverses out of its corridor,
shuttle_1's own supervisor releases it once its fields are clear, it passes, shuttle_2 re-plans and goes on.
With a person standing between them instead, both stay stopped: a person is never a stand-off.
The simulator's true poses are read by the test only (measuring).
"""

from __future__ import annotations

import copy
import math
import os
import pathlib

import pytest
import yaml

pytest.importorskip("agricare_interfaces.msg")

from agricare.bringup.graph import load_graph  # noqa: E402
from agricare.app.robots import _subst  # noqa: E402  (names replaced in every string of a scenario)
from agricare.bringup.runner import EmbeddedRunner  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
LANE_Y = 100.0
STARTS = {"shuttle_1": (108.0, LANE_Y + 0.75, 0.0), "shuttle_2": (172.0, LANE_Y - 0.75, math.pi)}
# each shuttle's first pick-up lies beyond the other: they must pass on the narrowed street
PICKUPS = {"shuttle_1": ("east_stop", (215.0, LANE_Y + 0.75), 0.0), "shuttle_2": ("west_stop", (62.0, LANE_Y - 0.75),
                                                                                   180.0)}
#: stand-off (both held) to passed (their true positions 6 m beyond each other along the lane), simulated s
RESOLVE_BOUND_S = 90.0
DEBUG = bool(os.environ.get("STANDOFF_DEBUG"))


def _scenario(tmp: pathlib.Path, person: bool) -> pathlib.Path:
    base = yaml.safe_load((ROOT / "config" / "scenarios" / "care_small.yaml").read_text())
    w = base["world"]
    w.pop("boarding_signs", None)
    w["people"] = [{"name": "standing_child", "kind": "child", "speed_mps": 0.5, "path": [[130.0, LANE_Y]]}] \
        if person else []
    for road in w["roads"]:
        if road["name"] == "main_street":
            road["width_m"] = 3.0
    for name, (x, y), yaw in PICKUPS.values():
        w["places"].append({"name": name, "kind": "home", "xy": [x, y + (2.0 if yaw == 0.0 else -2.0)],
                            "boarding": {"x_m": x, "y_m": y, "yaw_deg": yaw}})
    template = base["robots"][0]
    template["sensors"]["camera"] = False
    robots, nodes = [], []
    scen_path = tmp / "standoff.yaml"
    for name, (x, y, yaw) in STARTS.items():
        r = copy.deepcopy(template)
        r["name"], r["start"] = name, {"x_m": x, "y_m": y, "yaw_deg": math.degrees(yaw)}
        robots.append(r)
        place, (px, py), _ = PICKUPS[name]
        requests = {"speed_mps": 1.4,
                    "vehicles": [{"id": name, "depot": [x, y], "seats": 4, "available": [0, 900], "range_m": 3000.0}],
                    "requests": [{"id": f"trip_{name}", "pickup": [px, py], "dropoff": [192.0, 101.8],
                                  "pickup_window": [0, 600], "dropoff_by": 900, "service_s": 10, "max_ride_s": 800,
                                  "child": f"c_{name}", "guardians": [f"g_{name}"], "pickup_place": place,
                                  "dropoff_place": "nursery"}]}
        req_path = tmp / f"requests_{name}.yaml"
        req_path.write_text(yaml.safe_dump(requests, sort_keys=False))
        for n in base["nodes"]:
            if n.get("robot") != "shuttle_1" or n["node"] == "marker_node":
                continue
            n = _subst(copy.deepcopy(n), "shuttle_1", name)
            n["robot"] = name
            params = n.setdefault("params", {})
            if "initial_pose_in_map" in params:
                params["initial_pose_in_map"] = [x, y, yaw]
            if n["node"] in ("care_mission_node", "care_site_sim_node"):
                params.update({"requests_file": str(req_path), "scenario_file": str(scen_path)})
            if n["node"] == "care_mission_node":
                params.update({"park_xy": [x, y], "fleet_peers": [p for p in STARTS if p != name]})
            nodes.append(n)
    base.update({"robots": robots, "nodes": nodes, "mission": {"requests_file": str(tmp / "requests_shuttle_1.yaml")}})
    base["run"]["max_sim_s"] = 140
    base["run"]["record"] = False
    scen_path.write_text(yaml.safe_dump(base, sort_keys=False))
    return scen_path


def _run(tmp, person: bool, end_after_s: float):
    graph = load_graph(_scenario(tmp, person))
    runner = EmbeddedRunner(graph, out_dir=tmp / "out", progress=None)
    log = {"both_held_s": None, "passed_s": None, "first_stop_pose": {}, "max_move_after_stop": 0.0,
           "reasons": set(), "gave_way": {}}

    def hook(r):
        t = r.sim_time()
        world = r.sim.world
        p1, p2 = world.pose("shuttle_1"), world.pose("shuttle_2")
        held = {}
        for name in STARTS:
            node = r.nodes.get(f"/{name}/care_mission_node")
            if node is None:
                return
            state, reason = node.safety
            held[name] = state == 2   # PROTECTIVE_STOP
            if held[name]:
                log["reasons"].update(reason.split(","))
            if node.row is not None and node.row.events:
                log["gave_way"][name] = list(node.row.events)
        if log["both_held_s"] is None and all(held.values()):
            log["both_held_s"] = t
            log["first_stop_pose"] = {"shuttle_1": p1.copy(), "shuttle_2": p2.copy()}
        if log["both_held_s"] is not None:
            for name, p in (("shuttle_1", p1), ("shuttle_2", p2)):
                q = log["first_stop_pose"][name]
                log["max_move_after_stop"] = max(log["max_move_after_stop"], math.hypot(p[0] - q[0], p[1] - q[1]))
        if log["passed_s"] is None and p1[0] > p2[0] + 6.0:
            log["passed_s"] = t
        if DEBUG and abs(t - round(t)) < 1e-6 and round(t) % 2 == 0:
            print(f"t={t:.0f} s1={p1.round(2)} s2={p2.round(2)} held={held}", flush=True)
        done_at = (log["passed_s"] if not person else log["both_held_s"])
        if done_at is not None and t > done_at + end_after_s:
            r.interrupt()

    runner.step_hook = hook
    try:
        runner.run()
    finally:
        runner.shutdown()
    if DEBUG:
        print("STANDOFF", {k: v for k, v in log.items() if k != "first_stop_pose"}, flush=True)
    world = {n: (sum(1 for c in runner.sim.world.contacts if c.robot == n and abs(c.robot_speed_mps) > 0.05))
             for n in STARTS}
    return log, world


@pytest.mark.timeout(300)
def test_nose_to_nose_stand_off_resolves_without_contact(tmp_path):
    log, contacts = _run(tmp_path, person=False, end_after_s=5.0)
    assert log["both_held_s"] is not None, "the shuttles never met nose to nose: the test lost its stand-off"
    assert "obstacle" in log["reasons"] and "person" not in log["reasons"], log["reasons"]
    assert log["passed_s"] is not None, f"not resolved within the run: {log}"
    assert log["passed_s"] - log["both_held_s"] <= RESOLVE_BOUND_S, log
    assert contacts == {"shuttle_1": 0, "shuttle_2": 0}
    # exactly one gave way: shuttle_2 (the order's tie-break by name), and it resumed afterwards
    assert set(log["gave_way"]) == {"shuttle_2"}, log["gave_way"]
    ev = log["gave_way"]["shuttle_2"]
    assert len(ev) == 1 and ev[0]["peer"] == "shuttle_1" and "resumed_s" in ev[0], ev


@pytest.mark.timeout(300)
def test_a_person_between_them_holds_both(tmp_path):
    log, contacts = _run(tmp_path, person=True, end_after_s=30.0)
    assert log["both_held_s"] is not None, "the shuttles never stopped for the person"
    assert "person" in log["reasons"], log["reasons"]
    assert log["gave_way"] == {}, log["gave_way"]            # nobody reverses away from a person's stand-off
    assert log["max_move_after_stop"] < 0.3, log["max_move_after_stop"]   # both held for 30 s
    assert contacts == {"shuttle_1": 0, "shuttle_2": 0}
