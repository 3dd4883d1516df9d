"""Whole-field plans on real-looking field boundaries: worked area, reverse driving, headland rings.

Fields: the traced fields of config/fields (hofacker: 0.79 ha, 26 vertices; bruchwiese: 1.94 ha, 79 vertices,
three obstacles, a narrow neck; field_c_holes) - the ones the planner was developed on - and ``--fields``
seeded irregular fields it was not tuned on (20-90 jittered vertices, a neck on every other field, 1-3
obstacles, some within 6-10 m of the edge). Per field: the plan's share of the whole field worked (implement
swept along the working path, 0.25 m raster), double-worked share, metres driven in reverse, headland rings
worked / planned, planning time. Reference in the same process: the same planner with ``transit="direct"``
and no clean-up passes (the behaviour before forward transit: Dubins / Reeds-Shepp words only).

The planner may reverse ``--reverse-m`` metres per field (default 30, the issue's limit) out of dead-end corners.

Run: ``PYTHONPATH=src .venv/bin/python bench/field_plans.py [--fields 20] [--seed 100] [--reverse-m 30]``; writes
``out/bench/field_plans.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import numpy as np
from shapely.geometry import Point, Polygon

from agricare.core.farmdata import load_field_data
from agricare.core.planning.coverage import CoverageParams, PlanningError, plan_coverage, plan_work_figures

ROOT = pathlib.Path(__file__).resolve().parents[1]
BASE = dict(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0)


def seeded_field(seed: int) -> Polygon:
    """An irregular field of ~0.6-2.5 ha: jittered outline, a neck on odd seeds, 1-3 obstacles."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n_key = int(rng.integers(6, 11))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n_key))
        r = rng.uniform(45.0, 85.0, n_key)
        key = np.column_stack([r * np.cos(ang), r * np.sin(ang)])
        if seed % 2 == 1:                      # a second lobe through a neck 22-30 m wide
            a = ang[int(rng.integers(n_key))]
            d = np.array([math.cos(a), math.sin(a)])
            nv = np.array([-d[1], d[0]])
            half = rng.uniform(11.0, 15.0)
            base = d * 40.0
            lobe = [base + nv * half, base + d * 45 + nv * half, base + d * 50 + nv * 30, base + d * 90 + nv * 25,
                    base + d * 95 - nv * 25, base + d * 50 - nv * 30, base + d * 45 - nv * half, base - nv * half]
            poly = Polygon(key).union(Polygon(lobe))
            if poly.geom_type != "Polygon":
                continue
            key = np.asarray(poly.exterior.coords)[:-1]
        # survey-like vertices: edges split every 6-14 m with 0.3 m jitter
        pts = []
        step = rng.uniform(6.0, 14.0)
        for i in range(len(key)):
            a, b = key[i], key[(i + 1) % len(key)]
            L = float(np.hypot(*(b - a)))
            k = max(1, int(L // step))
            nrm = np.array([-(b - a)[1], (b - a)[0]]) / max(L, 1e-9)
            for j in range(k):
                pts.append(a + j / k * (b - a) + (nrm * rng.normal(0, 0.3) if j else 0))
        outer = Polygon(pts)
        if not outer.is_valid or outer.area < 5000 or len(pts) > 95:
            continue
        holes = []
        for _k in range(int(rng.integers(1, 4))):
            near_edge = rng.random() < 0.4
            for _t in range(50):
                minx, miny, maxx, maxy = outer.bounds
                c = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
                dist = outer.exterior.distance(c)
                ok = (6.0 <= dist <= 10.0) if near_edge else dist > 25.0
                if outer.contains(c) and ok and all(c.distance(h) > 20.0 for h in holes):
                    holes.append(c.buffer(float(rng.uniform(1.5, 6.0)), quad_segs=int(rng.integers(2, 5))))
                    break
        f = Polygon(outer.exterior.coords, [h.exterior.coords for h in holes])
        if f.is_valid:
            return f
    raise RuntimeError("could not draw a field")


def run(name, field, split, reverse_m=30.0, options=None):
    row = {"field": name, "split": split, "ha": round(field.area / 1e4, 3),
           "vertices": len(field.exterior.coords) - 1, "obstacles": len(field.interiors)}
    new = dict(max_reverse_m=reverse_m, **(options or {}))
    for tag, extra in (("ref", dict(transit="direct", plan_cleanup=False)), ("new", new)):
        t0 = time.perf_counter()
        try:
            plan = plan_coverage(field, CoverageParams(**BASE, **extra))
        except PlanningError as exc:
            row[tag] = {"error": str(exc)}
            continue
        f = plan_work_figures(plan)
        row[tag] = {"worked": round(f["worked_ratio"], 5), "double": round(f["double_ratio"], 5),
                    "reverse_m": round(f["reverse_m"], 1), "rings": f"{f['rings_worked']}/{f['rings_total']}",
                    "skipped_rings": f["rings_total"] - f["rings_worked"], "plan_s": round(time.perf_counter() - t0, 2)}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fields", type=int, default=20)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--reverse-m", type=float, default=30.0,
                    help="reversing allowed per field out of dead-end corners (planner max_reverse_m)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a CoverageParams option for the planner measured (not the reference), e.g. "
                         "cleanup_turnabout_exit=0; repeatable")
    args = ap.parse_args(argv)
    options = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in CoverageParams.__dataclass_fields__ or not value:
            ap.error(f"--set {item!r}: not NAME=VALUE with NAME a CoverageParams field")
        default = CoverageParams.__dataclass_fields__[name].default
        options[name] = (value.lower() in ("1", "true", "on", "yes") if isinstance(default, bool)
                         else type(default)(value))
    rows = []
    for name in ("hofacker", "bruchwiese", "field_c_holes"):
        suffix = ".geojson"
        rows.append(run(name, load_field_data(ROOT / "config/fields" / (name + suffix)).work_area(), "traced (dev)",
                        args.reverse_m, options))
    for k in range(args.fields):
        rows.append(run(f"seed {args.seed + k}", seeded_field(args.seed + k), "seeded (unseen)", args.reverse_m,
                        options))
    print(f"{'field':14} {'ha':>5} {'vtx':>4} {'obs':>3} | {'ref worked':>10} {'rev m':>6} {'rings':>5} | "
          f"{'worked':>7} {'double':>6} {'rev m':>6} {'rings':>5} {'s':>5}")
    for r in rows:
        a, b = r["ref"], r["new"]
        if "error" in a or "error" in b:
            print(f"{r['field']:14} error: {a.get('error') or b.get('error')}")
            continue
        print(f"{r['field']:14} {r['ha']:5.2f} {r['vertices']:4d} {r['obstacles']:3d} | {100 * a['worked']:9.2f}% "
              f"{a['reverse_m']:6.1f} {a['rings']:>5} | {100 * b['worked']:6.2f}% {100 * b['double']:5.2f}% "
              f"{b['reverse_m']:6.1f} {b['rings']:>5} {b['plan_s']:5.1f}")
    for split in ("traced (dev)", "seeded (unseen)"):
        ok = [r for r in rows if r["split"] == split and "error" not in r["new"] and "error" not in r["ref"]]
        if not ok:
            continue
        w = [r["new"]["worked"] for r in ok]
        print(f"{split}: {len(ok)} fields; worked min {100 * min(w):.2f} % mean {100 * np.mean(w):.2f} % "
              f"(reference mean {100 * np.mean([r['ref']['worked'] for r in ok]):.2f} %), fields >= 99 %: "
              f"{sum(v >= 0.99 for v in w)}/{len(ok)}; reverse max {max(r['new']['reverse_m'] for r in ok):.1f} m "
              f"(reference {max(r['ref']['reverse_m'] for r in ok):.1f} m), fields <= 30 m reverse: "
              f"{sum(r['new']['reverse_m'] <= 30 for r in ok)}/{len(ok)}; skipped rings "
              f"{sum(r['new']['skipped_rings'] for r in ok)} (reference {sum(r['ref']['skipped_rings'] for r in ok)})")
    errs = [r for r in rows if "error" in r["new"]]
    print(f"planner errors: {len(errs)}")
    out = ROOT / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "field_plans.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
