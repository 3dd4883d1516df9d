"""What the shuttles' docking camera costs the care demo, and what the ArUco sign does for docking.

Runs ``config/scenarios/care.yaml`` (the demo's care day, with the boarding signs, the shuttles' cameras and
marker_node) and, as the reference in the same session, the same day without them (no signs, no camera, no
marker_node, ``marker_docking: false``: docking on the estimate alone). Each run is its own child process
(as ``make demo`` runs it); its CPU seconds come from ``resource.getrusage(RUSAGE_CHILDREN)`` around it. Prints
per variant: wall, CPU (user + system), the run's exit code, and from its ``summary.json`` the docking checks per
source with the true distance to the boarding point (the runner measures it against the simulator's truth).

Usage: ``PYTHONPATH=src python bench/care_camera.py [--repeat 1] [--max-sim-s S]``; writes out/bench/care_camera.json.
The machine's load matters: the figures are printed with ``os.getloadavg()``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def without_camera(scn: dict) -> dict:
    """The care day as it was: no signs, no camera, no marker_node, docking on the estimate."""
    s = copy.deepcopy(scn)
    s["world"].pop("boarding_signs", None)
    for r in s["robots"]:
        r.setdefault("sensors", {})["camera"] = False
    s["nodes"] = [n for n in s["nodes"] if n["node"] != "marker_node"]
    for n in s["nodes"]:
        if n["node"] == "care_mission_node":
            n.setdefault("params", {})["marker_docking"] = False
    return s


def run_variant(name: str, scenario: pathlib.Path, out: pathlib.Path, max_sim_s) -> dict:
    cmd = [sys.executable, "-m", "agricare.cli", "run", str(scenario), "--out", str(out), "--until-done"]
    if max_sim_s:
        cmd += ["--max-sim-s", str(max_sim_s)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = {"variant": name, "exit_code": proc.returncode, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
           "load": [round(x, 1) for x in os.getloadavg()]}
    summary = out / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        res["sim_time_s"] = s.get("sim_time_s")
        res["docking"] = {r: w.get("docking") for r, w in s.get("world", {}).items()}
        res["contacts"] = {r: w.get("contacts") for r, w in s.get("world", {}).items()}
        res["camera_frames"] = {r: w.get("camera_frames", 0) for r, w in s.get("world", {}).items()}
        res["gave_way"] = {r: m.get("detail", {}).get("gave_way") for r, m in s.get("missions", {}).items()
                           if isinstance(m.get("detail"), dict)}
        res["delivered_in_window"] = {r: len(m.get("detail", {}).get("delivered_in_window", []))
                                      for r, m in s.get("missions", {}).items() if isinstance(m.get("detail"), dict)}
    else:
        res["stderr_tail"] = proc.stderr[-2000:]
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-sim-s", type=float, default=None)
    ap.add_argument("--out", default=str(ROOT / "out" / "bench" / "care_camera"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scn = yaml.safe_load((ROOT / "config" / "scenarios" / "care.yaml").read_text())
    ref = out / "care_no_camera.yaml"
    ref.write_text(yaml.safe_dump(without_camera(scn), sort_keys=False))
    cam = ROOT / "config" / "scenarios" / "care.yaml"
    results = []
    for i in range(args.repeat):
        for name, path in (("without camera (reference)", ref), ("with camera + signs", cam)):
            r = run_variant(name, path, out / f"{'ref' if path == ref else 'cam'}_{i}", args.max_sim_s)
            results.append(r)
            print(json.dumps(r), flush=True)
    (out.parent / "care_camera.json").write_text(json.dumps(results, indent=2))
    by = {}
    for r in results:
        by.setdefault(r["variant"], []).append(r["cpu_s"])
    for k, v in by.items():
        print(f"{k:28s} CPU s: {', '.join(f'{x:.1f}' for x in v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
