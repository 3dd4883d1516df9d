"""Robot host for the demo and the tests: the simulated robots of one area in their own process.

``python -m agricare.app.robots care|farm --out DIR [--real-time-factor F] [--domain-id N]`` builds a graph
from the small scenarios (``care_small.yaml``: two shuttles on the dispatcher's plan; ``farm_small.yaml``:
the tractor) and runs it with the embedded runner on simulated time paced at ``F`` x real time, visible to
other processes on the machine's DDS (unlike ``agricare run``, which isolates its run). The app talks to it
over ROS 2 only, as to vehicles on the network.

Care: shuttle_1 (depot west of home_1) and shuttle_2 (east of the nursery) start with a trip each, more from
200 s on (``--day long``; a shuttle whose mission is done parks and takes no new stops, the app then tells
the dispatcher it is out of service); the app's trips come through
dispatcher_node (``/dispatch/events``). The people at the places are simulated (care_site_sim_node) except
the app's guardians, who present their own hand-over codes.
Care: each shuttle gets the runner's default TransportChild goal (its day plan). Farm: the tractor gets no
default goal: it idles until an operator sends a CoverField goal (the app's coverage job).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import pathlib
import sys
import time

import yaml

from agricare import paths

CARE_BASE = "care_small.yaml"
FARM_BASE = "farm_small.yaml"
SHUTTLES = {"shuttle_1": {"x_m": 60.0, "y_m": 101.8, "yaw_deg": 0.0},
            "shuttle_2": {"x_m": 215.0, "y_m": 98.2, "yaw_deg": 180.0}}


def _load(name: str) -> dict:
    return yaml.safe_load(paths.resolve(name, "config/scenarios").read_text())


def _subst(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_subst(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _subst(v, old, new) for k, v in value.items()}
    return value


def merge_trust(path: pathlib.Path, *trust_files) -> pathlib.Path:
    """Add the keys of ``trust_files`` to the trust list at ``path`` (made when missing); returns ``path``."""
    from agricare.core.security.keys import TrustList

    if not any(trust_files) and path.exists():
        return path
    if not any(trust_files):   # nothing to add: whoever makes the keys writes the list
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    trust = TrustList.load(path) if path.exists() else TrustList()
    for f in trust_files:
        if f:
            for entry in TrustList.load(f).entries.values():
                trust.add(entry)
    trust.save(path)
    return path


def mission_trust(out: pathlib.Path, app_trust=None) -> pathlib.Path:
    """The missions' goal trust list: the runner's operator key (its default goals) and the app's key."""
    from agricare.bringup.signing import OPERATOR_KEY_ID, ensure_key

    _key, operator_trust = ensure_key(out / "keys", OPERATOR_KEY_ID, ["mission_goal"])
    # not "<key>_trust.yaml": that name means a commissioned key beside its trust list (bringup.signing)
    return merge_trust(out / "keys" / "missions_trusted.yaml", operator_trust, app_trust)


def care_scenario(out: pathlib.Path, app_children: list[str], day: str = "long", app_trust=None) -> pathlib.Path:
    """Write the care host's scenario (+ requests) under ``out``; returns the scenario path.

    ``day``: ``short`` (one trip per shuttle in the first minute: tests) or ``long`` (more trips from 200 s
    on, for a demo that runs a while). ``app_trust``: the operator app's trust list (its command key): the
    shuttles then take its goals, site answers and protective stops, the dispatcher its events."""
    base = _load(CARE_BASE)
    template_robot = base["robots"][0]
    template_name = template_robot["name"]
    day_plan = {"speed_mps": 1.4,
           "vehicles": [{"id": r, "depot": [s["x_m"], s["y_m"]], "seats": 4, "available": [0, 3600],
                         "range_m": 5000.0} for r, s in SHUTTLES.items()],
           "requests": [
               {"id": "trip_c1", "pickup": [75.0, 101.8], "dropoff": [192.0, 101.8], "pickup_window": [5, 90],
                "dropoff_by": 400, "service_s": 10, "max_ride_s": 400, "child": "c1", "guardians": ["g_c1_mother"],
                "pickup_place": "home_1", "dropoff_place": "nursery"},
               {"id": "trip_c5", "pickup": [192.0, 101.8], "dropoff": [155.0, 98.2], "pickup_window": [5, 90],
                "dropoff_by": 400, "service_s": 10, "max_ride_s": 400, "child": "c5", "guardians": ["g_c5_aunt"],
                "pickup_place": "nursery", "dropoff_place": "home_4"},
               {"id": "trip_c6", "pickup": [155.0, 98.2], "dropoff": [192.0, 101.8], "pickup_window": [200, 400],
                "dropoff_by": 700, "service_s": 10, "max_ride_s": 400, "child": "c6", "guardians": ["g_c6_mother"],
                "pickup_place": "home_4", "dropoff_place": "nursery"},
               {"id": "trip_c7", "pickup": [125.0, 98.2], "dropoff": [192.0, 101.8], "pickup_window": [200, 400],
                "dropoff_by": 700, "service_s": 10, "max_ride_s": 400, "child": "c7", "guardians": ["g_c7_father"],
                "pickup_place": "home_3", "dropoff_place": "nursery"}]}
    if day == "short":
        day_plan["requests"] = day_plan["requests"][:2]
    elif day != "long":
        raise ValueError(f"day: expected 'short' or 'long', got {day!r}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "requests.yaml").write_text(yaml.safe_dump(day_plan, sort_keys=False))
    fleet_key, fleet_trust = dispatcher_key(out / "keys")
    goal_trust = mission_trust(out, app_trust)
    robots, nodes = [], []
    for name, start in SHUTTLES.items():
        r = copy.deepcopy(template_robot)
        r["name"], r["start"] = name, dict(start)
        robots.append(r)
        has_ekf = any(n.get("robot") == template_name and n["node"] == "ekf_node" for n in base["nodes"])
        for n in base["nodes"]:
            if n.get("robot") != template_name:
                continue
            n = _subst(copy.deepcopy(n), template_name, name)
            n["robot"] = name
            params = n.setdefault("params", {})
            if "initial_pose_in_map" in params:   # localisation starts where this shuttle starts, not the template
                params["initial_pose_in_map"] = [start["x_m"], start["y_m"], math.radians(start["yaw_deg"])]
            if n["node"] == "care_mission_node":
                params.update({"robot_name": name, "plan_topic": "/dispatch/plan", "requests_file": "",
                               "fleet_peers": [r for r in SHUTTLES if r != name],   # right of way between them
                               "park_xy": [start["x_m"], start["y_m"]], "pickup_grace_s": 120.0,
                               "guardian_escalate_s": 300.0, "guardian_wait_s": 900.0,
                               "plan_trust_file": str(fleet_trust), "goal_trust_file": str(goal_trust),
                               # the app issues a code when a trip is booked, before a shuttle is assigned
                               "accept_unbound_codes": True})
                # answers from the simulated staff (their site key, added by care_site_sim_node) and the app's
                site_trust = pathlib.Path(params["site_trust_file"].replace("${out}", str(out)))
                merge_trust(site_trust, app_trust)
            elif n["node"] == "care_site_sim_node":
                params.update({"requests_file": str(out / "requests.yaml"),
                               "absent_guardians": list(app_children) or [""]})
            elif n["node"] == "safety_supervisor_node":
                params["geofence_topic_enabled"] = True  # the app's unsigned stop zone (without a command key)
                if app_trust:
                    params["trust_file"] = str(app_trust)   # the app's signed protective stops
            nodes.append(n)
        if not has_ekf:   # the keep-out check of the safety supervisor needs the robot's own map pose
            d = base["world"]["datum"]
            nodes.append({"node": "navsat_node", "robot": name, "params": {
                "datum_from_first_fix": False, "datum_lat_deg": d["lat_deg"], "datum_lon_deg": d["lon_deg"],
                "datum_alt_m": d.get("alt_m", 0.0)}})
            nodes.append({"node": "ekf_node", "robot": name, "params": {"use_imu_orientation": True}})
    dispatcher = {"requests_file": str(out / "requests.yaml"), "method": "greedy", "time_limit_s": 1.0,
                  "signing_key_file": str(fleet_key)}
    # only the app's signed events (without an app key: a list nobody may send events with)
    dispatcher["events_trust_file"] = str(app_trust or goal_trust)
    dispatcher["command_replay_file"] = str(out / "state" / "dispatcher_commands.json")
    nodes.append({"node": "dispatcher_node", "params": dispatcher})
    scen = {"world": base["world"], "robots": robots,
            "run": {**base.get("run", {}), "max_sim_s": 36000.0, "record": False}, "nodes": nodes, "mission": {}}
    path = out / "care_app.yaml"
    path.write_text(yaml.safe_dump(scen, sort_keys=False))
    return path


def dispatcher_key(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The demo dispatcher's plan-signing key and the shuttles' trust list (made once, kept across runs)."""
    from agricare.core.security.keys import SigningKey, TrustList, write_signing_key

    key, trust = directory / "dispatcher.key", directory / "trust.yaml"
    if not key.exists():
        signing = SigningKey.generate("dispatcher")
        write_signing_key(directory, signing)
        TrustList().trust(signing, kinds=["dispatch_plan"]).save(trust)
    return key, trust


def farm_scenario(out: pathlib.Path, app_trust=None) -> pathlib.Path:
    base = _load(FARM_BASE)
    robots = [r for r in base["robots"] if r["name"] == "tractor"]
    nodes = [n for n in base["nodes"] if n.get("robot") == "tractor"]
    goal_trust = mission_trust(out, app_trust)
    for n in nodes:
        params = n.setdefault("params", {})
        if n["node"] == "safety_supervisor_node":
            params["geofence_topic_enabled"] = True  # the app's unsigned stop zone
            if app_trust:
                params["trust_file"] = str(app_trust)
        elif n["node"] == "farm_mission_node":
            params["goal_trust_file"] = str(goal_trust)
    scen = {"world": base["world"], "robots": robots,
            "run": {**base.get("run", {}), "max_sim_s": 36000.0, "record": False}, "nodes": nodes, "mission": {}}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "farm_app.yaml"
    path.write_text(yaml.safe_dump(scen, sort_keys=False))
    return path


def world_of(area: str) -> dict:
    """The map of an area (the world of its base scenario)."""
    return _load(CARE_BASE if area == "care" else FARM_BASE)["world"]


def robots_of(area: str) -> dict[str, str]:
    return {r: "care" for r in SHUTTLES} if area == "care" else {"tractor": "farm"}


def run_host(area: str, out: pathlib.Path, real_time_factor: float = 1.0, domain_id: int | None = None,
             app_children: tuple[str, ...] = (), max_sim_s: float | None = None, seed: int = 0,
             day: str = "long", app_trust=None) -> int:
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import EmbeddedRunner

    scen = care_scenario(out, list(app_children), day, app_trust) if area == "care" else farm_scenario(out, app_trust)
    graph = load_graph(scen)
    runner = EmbeddedRunner(graph, out, seed, max_sim_s or graph.run.max_sim_s, until_done=False,
                            progress=lambda s: print(s, flush=True), progress_period_s=30.0, domain_id=domain_id,
                            record=False)
    runner.build(isolate=False)
    if area == "farm":
        runner.goals.clear()   # the tractor waits for an operator's CoverField goal (the app's job)
    wall0 = time.monotonic()

    def pace(r):
        if real_time_factor > 0:
            ahead = r.sim_time() / real_time_factor - (time.monotonic() - wall0)
            if ahead > 0:
                time.sleep(min(ahead, 0.2))

    runner.step_hook = pace
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):   # stop the graph cleanly (zero velocity) on either
        signal.signal(sig, runner.interrupt)
    print(json.dumps({"ready": area, "robots": list(graph.robots), "scenario": str(scen)}), flush=True)
    try:
        result = runner.run()
    finally:
        runner.shutdown()
    print(f"robots {area}: {result.stopped_because} at sim {result.sim_time_s:.1f} s", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agricare.app.robots", description=__doc__.splitlines()[0])
    ap.add_argument("area", choices=["care", "farm"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--real-time-factor", type=float, default=1.0)
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--app-children", default="", help="comma-separated child ids whose guardians use the app")
    ap.add_argument("--max-sim-s", type=float, default=None)
    ap.add_argument("--day", choices=["short", "long"], default="long", help="care: the day's trips")
    ap.add_argument("--app-trust", default=None, help="trust list of the operator app's command key")
    a = ap.parse_args(argv)
    children = tuple(c for c in a.app_children.split(",") if c)
    return run_host(a.area, pathlib.Path(a.out), a.real_time_factor, a.domain_id, children, a.max_sim_s, day=a.day,
                    app_trust=a.app_trust)


if __name__ == "__main__":
    sys.exit(main())
