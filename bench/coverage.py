"""Coverage planner benchmark against the Fields2Cover 2.1 figures of issue 5.

Plans fields A and B (the reference table), the non-convex sample field with holes and random ~1 ha
polygons; prints total length (swaths + turns) and planning time side by side with Fields2Cover, and writes
``out/bench/coverage.json``. Run: ``PYTHONPATH=src .venv/bin/python bench/coverage.py``
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import numpy as np
from shapely import affinity
from shapely.geometry import Polygon, box

from agricare.core.planning.coverage import CoverageParams, load_field, path_inside_fraction, plan_coverage

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Fields2Cover 2.1: width 3, robot width 3, r_min 4, headland 9, brute-force angle / fewest swaths, boustrophedon
F2C = {"A": {"swaths": 14, "dubins": 1480.4, "dubins_cc": 1492.5, "ms": 165},
       "B": {"swaths": 34, "dubins": 8731.8, "dubins_cc": 8762.6, "ms": 496}}


def random_field(seed: int, area_m2: float = 10000.0) -> Polygon:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 9))
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    if np.min(np.diff(np.concatenate([ang, [ang[0] + 2 * math.pi]]))) < 0.35:
        ang = np.linspace(0, 2 * math.pi, n, endpoint=False) + rng.uniform(0, 0.3)
    r = rng.uniform(0.6, 1.0, n)
    p = Polygon(np.column_stack([r * np.cos(ang), r * np.sin(ang)]))
    return affinity.scale(p, math.sqrt(area_m2 / p.area), math.sqrt(area_m2 / p.area), origin=(0, 0))


def run_one(name, field, params, repeats=3):
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        plan = plan_coverage(field, params)
        dt = (time.perf_counter() - t0) * 1000
        best = dt if best is None else min(best, dt)
    return {"field": name, "turn": params.turn_type, "route": params.route, "swaths": len(plan.swaths),
            "total_m": round(plan.lengths_m["total"], 1), "swath_m": round(plan.lengths_m["swaths"], 1),
            "turn_m": round(plan.lengths_m["turns"], 1), "headland_m": round(plan.lengths_m["headland"], 1),
            "coverage": round(plan.coverage_ratio, 5), "overlap": round(plan.overlap_ratio, 5),
            "inside": path_inside_fraction(plan), "fallback_turns": plan.n_fallback_turns,
            "reverse_samples": int(np.sum(plan.path.direction < 0)), "ms": round(best, 1)}


def main():
    base = dict(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0, robot_width_m=3.0, objective="swaths")
    fields = {"A": box(0, 0, 100, 60), "B": affinity.rotate(box(0, 0, 250, 120), 30, origin=(0, 0))}
    rows = []
    print("reference fields (Fields2Cover 2.1 figures from the issue; ratio = agricare / F2C)")
    print(f"{'field':5} {'turn':11} {'route':13} {'swaths':>6} {'F2C m':>8} {'ours m':>8} {'ratio':>6} "
          f"{'F2C ms':>6} {'ours ms':>7} {'cover':>7} {'inside':>6}")
    for name, f in fields.items():
        for turn in ("dubins", "dubins_cc", "reeds_shepp"):
            for route in ("boustrophedon", "optimal"):
                r = run_one(name, f, CoverageParams(turn_type=turn, route=route, **base),
                            repeats=1 if turn == "dubins_cc" else 3)
                ref = F2C[name]["dubins_cc" if turn == "dubins_cc" else "dubins"]
                r["f2c_total_m"], r["ratio"], r["f2c_ms"] = ref, round(r["total_m"] / ref, 4), F2C[name]["ms"]
                rows.append(r)
                print(f"{name:5} {turn:11} {route:13} {r['swaths']:6d} {ref:8.1f} {r['total_m']:8.1f} "
                      f"{r['ratio']:6.3f} {F2C[name]['ms']:6d} {r['ms']:7.0f} {r['coverage']:7.4f} {r['inside']:6.3f}")
    print("\nown fields (no reference): non-convex with holes, random 1 ha polygons")
    extra = {"C_holes": load_field(ROOT / "config/fields/field_c_holes.geojson")[0]}
    for s in range(4):
        extra[f"rand1ha_{s}"] = random_field(s)
    for name, f in extra.items():
        r = run_one(name, f, CoverageParams(turn_type="dubins", route="optimal", **base), repeats=1)
        rows.append(r)
        print(f"{name:10} swaths {r['swaths']:3d} total {r['total_m']:8.1f} m (turns {r['turn_m']:7.1f}) "
              f"cover {r['coverage']:.4f} overlap {r['overlap']:.4f} inside {r['inside']:.3f} "
              f"fallbacks {r['fallback_turns']} {r['ms']:.0f} ms")
    out = ROOT / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "coverage.json").write_text(json.dumps(rows, indent=1))
    ok = [r for r in rows if r["field"] in F2C and r["route"] == "optimal" and r["turn"] == "dubins"]
    print("\nsummary: dubins/optimal ratio " + ", ".join(f"{r['field']} {r['ratio']:.3f}" for r in ok) +
          f" (target <= 0.97); written {out / 'coverage.json'}")


if __name__ == "__main__":
    main()
