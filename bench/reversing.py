"""Benchmark: a tractor backing up towards people, with and without rear sensing.

Closed loop in plain Python (``agricare.core.safety.scenario_check``): the embedded simulator's tractor with the
demo farm's 6 m implement and its laser scanners, the safety supervisor with the shipped tractor profile and the
demo farm's footprint, a constant reverse request at the profile's maximum reverse speed (a corner manoeuvre's
backing leg). People: standing behind, crossing behind from either side, walking towards the machine from behind,
standing behind and to the side within the implement's width. Measured with the simulator's ground truth: contacts
while the machine moves, the closest gap between the machine (implement included) and the person, the speed at the
first stop verdict and the distance driven from it to standstill.

Reference, in the same process: the tractor as it was before the rear scanner (no ``scan_rear``, footprint of the
body only, no reverse-only inputs), same people, same seeds.

Run: ``PYTHONPATH=src .venv/bin/python bench/reversing.py``; writes ``out/bench/reversing.json``.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import yaml

from agricare.core.safety.scenario_check import load_profile, run_closed_loop
from agricare.core.safety.supervisor import STOP_STATES
from agricare.core.sim.scenarios import scenario_dict
from agricare.core.sim.world import World

ROOT = pathlib.Path(__file__).resolve().parents[1]
IMPLEMENT = {"section_widths_m": [1.0] * 6, "offset_m": 1.6, "depth_m": 0.8}
PEOPLE = {
    "standing behind": {"speed_mps": 0.5, "path": [[-9.0, 1.0], [-9.0, 1.2]], "mode": "pingpong", "pause_s": 60.0},
    "standing behind, 2.5 m aside": {"speed_mps": 0.5, "path": [[-8.0, 2.5], [-8.0, 2.6]], "mode": "pingpong",
                                     "pause_s": 60.0},
    "crossing from the right": {"speed_mps": 1.1, "path": [[-7.0, -9.0], [-7.0, 9.0]], "mode": "once"},
    "crossing from the left": {"speed_mps": 1.4, "path": [[-9.0, 12.0], [-9.0, -12.0]], "mode": "once"},
    "walking towards it": {"speed_mps": 1.0, "path": [[-25.0, 0.5], [-6.0, 0.5]], "mode": "once"},
}


def profiles():
    farm = yaml.safe_load((ROOT / "config" / "scenarios" / "farm.yaml").read_text())
    node = next(n for n in farm["nodes"] if n["node"] == "safety_supervisor_node" and n["robot"] == "tractor")
    extra = {k: v for k, v in node["params"].items() if k != "command_replay_file"}
    shipped = load_profile(ROOT / "config", "tractor", **extra)
    reference = load_profile(ROOT / "config", "tractor", footprint_xy=[3.3, 1.1, -0.9, 1.1, -0.9, -1.1, 3.3, -1.1],
                             reverse_required_inputs=[])
    return {"rear scanner + implement footprint": (shipped, {}),
            "reference: no rear scanner, body footprint": (reference, {"scan_rear": False})}


def run_case(params, sensors, person, seed=3, t_end_s=40.0):
    robot = {"name": "tractor", "type": "tractor", "start": {"x_m": 0.0, "y_m": 0.0, "yaw_deg": 0.0},
             "implement": IMPLEMENT, "sensors": {"gnss": False, "battery": False, **sensors}}
    world = World.from_scenario(scenario_dict([robot], people=[{"name": "p", "kind": "adult", **person}]), seed=seed)
    res = run_closed_loop(world, "tractor", -params.max_reverse_speed_mps, params, mode="scan", t_end_s=t_end_s)
    stops = [i for i, s in enumerate(res.states) if s in STOP_STATES]
    v_stop = braking = None
    if stops:
        i = stops[0]
        still = next((k for k in range(i, len(res.v_mps)) if abs(res.v_mps[k]) < 0.01), len(res.v_mps) - 1)
        v_stop = abs(float(res.v_mps[i]))
        braking = float(np.hypot(*(res.pose[still, :2] - res.pose[i, :2])))
    return {"contacts_moving": sum(1 for c in res.contacts if c.robot_speed_mps > 0.05),
            "contacts_standing": sum(1 for c in res.contacts if c.robot_speed_mps <= 0.05),
            "closest_gap_m": round(float(res.min_clearance_m["p"]), 3),
            "speed_at_stop_mps": None if v_stop is None else round(v_stop, 3),
            "stop_distance_m": None if braking is None else round(braking, 3),
            "reverse_m": round(float(np.hypot(*(res.pose[-1, :2] - res.pose[0, :2]))), 2)}


def main():
    out = {"load_average": os.getloadavg(), "results": {}}
    for label, (params, sensors) in profiles().items():
        out["results"][label] = {name: run_case(params, sensors, person) for name, person in PEOPLE.items()}
    print(f"tractor backing up at its maximum reverse speed towards a person (load average "
          f"{out['load_average'][0]:.1f})")
    print(f"{'case':29s} {'setup':43s} {'moving':>6s} {'still':>5s} {'gap m':>6s} {'v stop':>6s} {'stop m':>6s} "
          f"{'back m':>6s}   (contacts while the machine moves / stands still: a person walking into it)")
    for label, rows in out["results"].items():
        for name, r in rows.items():
            fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"{name:29s} {label:43s} {r['contacts_moving']:6d} {r['contacts_standing']:5d} "
                  f"{r['closest_gap_m']:6.2f} "
                  f"{fmt(r['speed_at_stop_mps']):>6s} {fmt(r['stop_distance_m']):>6s} {r['reverse_m']:6.2f}")
    shipped, ref = out["results"].values()
    print(f"contacts while moving: {sum(r['contacts_moving'] for r in shipped.values())} with the rear scanner, "
          f"{sum(r['contacts_moving'] for r in ref.values())} in the reference; closest gap where nobody walked into "
          f"the standing machine {min(r['closest_gap_m'] for r in shipped.values() if not r['contacts_standing']):.2f}"
          " m")
    path = pathlib.Path("out/bench/reversing.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
