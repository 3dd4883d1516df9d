"""Benchmark: dial-a-ride plans against the published optima and against the greedy / OR-Tools references.

Run: ``PYTHONPATH=src .venv/bin/python bench/dispatch.py [--only a2-16 a8-96] [--no-ortools] [--town-seeds 1 2 3]``.

Part 1, the standard Cordeau (2006) 'a' instances (bench/data/cordeau, 16-96 requests, proven optima of
Ropke, Cordeau & Laporte 2007): every instance is read with the same code as ``agricare dispatch --format
cordeau`` and solved in this process by the ALNS (seed 0, default iteration budget, the result is the same
for the same seed and budget; the 10 s CPU cap of the CLI applies), the greedy cheapest-insertion baseline
and OR-Tools routing (default time limit, ``keep_best`` off). Printed per instance: distance, gap to the
optimum, requests served, CPU and wall time.
Every plan is re-verified by ``check_solution`` (count of violations printed).
The solver parameters (destroy size, temperature, budget) were tuned on instances with an even number of
vehicles (a2, a4, a6, a8; mostly a4-48, a6-72, a8-64, a8-96); the instances with an odd number (a3, a5,
a7) are reported separately as the held-out split.

Part 2, seeded town days (``random_problem``: 10 requests / 2 shuttles, 50 / 5, 100 / 10): ALNS, greedy and
OR-Tools distances and the ALNS saving over greedy (target >= 15 %).

Times: CPU time of this process (``time.process_time``) and wall time; the machine may be shared, wall
time then over-states the cost. Writes ``out/bench/dispatch.json``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

from agricare.core.planning.darp import parse_cordeau
from agricare.core.planning.dispatch import (
    check_solution,
    problem_from_cordeau,
    random_problem,
    solve,
    solve_greedy,
)

DATA = pathlib.Path(__file__).resolve().parent / "data" / "cordeau"

#: proven optimal total distances (Ropke, Cordeau & Laporte 2007, Networks 49(4), Table 2)
OPTIMA = {
    "a2-16": 294.25, "a2-20": 344.83, "a2-24": 431.12, "a3-24": 344.83, "a3-30": 494.85, "a3-36": 583.19,
    "a4-32": 485.50, "a4-40": 557.69, "a4-48": 668.82, "a5-40": 498.41, "a5-50": 686.62, "a5-60": 808.42,
    "a6-48": 604.12, "a6-60": 819.25, "a6-72": 916.05, "a7-56": 724.04, "a7-70": 889.12, "a7-84": 1033.37,
    "a8-64": 747.46, "a8-80": 945.73, "a8-96": 1229.66,
}

TOWN = ((10, 2), (50, 5), (100, 10))


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def cordeau_part(names, ortools: bool, seed: int, time_cap: float) -> list[dict]:
    rows = []
    print(f"{'instance':>8} {'opt':>8} | {'alns':>8} {'gap%':>6} {'served':>7} {'cpu s':>6} {'wall s':>6} "
          f"{'iters':>6} | {'greedy':>8} {'gap%':>6} {'srv':>3} | {'ortools':>8} {'gap%':>6} {'srv':>3} "
          f"{'wall s':>6} | {'viol':>4}")
    for name in names:
        c = parse_cordeau((DATA / f"{name}.txt").read_text(), name)
        prob = problem_from_cordeau(c)
        n = c.n
        opt = OPTIMA[name]
        a, a_cpu, a_wall = _timed(lambda prob=prob: solve(prob, seed=seed, time_limit_s=time_cap))
        g, _, _ = _timed(lambda prob=prob: solve_greedy(prob))
        viol = check_solution(prob, a) + check_solution(prob, g)
        row = {
            "instance": name, "requests": n, "vehicles": c.K, "optimum": opt,
            "alns": a.distance_m, "alns_gap": a.distance_m / opt - 1.0, "alns_served": n - len(a.unserved),
            "alns_cpu_s": a_cpu, "alns_wall_s": a_wall, "alns_method": a.method,
            "greedy": g.distance_m, "greedy_gap": g.distance_m / opt - 1.0, "greedy_served": n - len(g.unserved),
            "split": "tune" if c.K % 2 == 0 else "held-out",
        }
        o_txt = f"{'-':>8} {'-':>6} {'-':>3} {'-':>6}"
        if ortools:
            o, _, o_wall = _timed(lambda prob=prob: solve(prob, method="ortools", keep_best=False))
            viol += check_solution(prob, o)
            row.update(ortools=o.distance_m, ortools_gap=o.distance_m / opt - 1.0,
                       ortools_served=n - len(o.unserved), ortools_wall_s=o_wall)
            o_txt = (f"{o.distance_m:>8.2f} {100 * row['ortools_gap']:>6.2f} {row['ortools_served']:>3} "
                     f"{o_wall:>6.1f}")
        row["violations"] = viol
        iters = a.method.split(",")[1].split()[0] if "," in a.method else "-"
        rows.append(row)
        print(f"{name:>8} {opt:>8.2f} | {a.distance_m:>8.2f} {100 * row['alns_gap']:>6.2f} "
              f"{row['alns_served']:>3}/{n:<3} {a_cpu:>6.1f} {a_wall:>6.1f} {iters:>6} | {g.distance_m:>8.2f} "
              f"{100 * row['greedy_gap']:>6.2f} {row['greedy_served']:>3} | {o_txt} | {len(viol):>4}", flush=True)
    return rows


def town_part(seeds, ortools: bool, seed: int) -> list[dict]:
    rows = []
    print(f"{'requests':>8} {'shuttles':>8} {'seed':>4} | {'greedy m':>9} {'srv':>3} | {'alns m':>9} {'srv':>3} "
          f"{'cpu s':>6} | {'ortools m':>9} {'srv':>3} | {'saving':>7} {'viol':>4}")
    for n_req, n_veh in TOWN:
        for s in seeds:
            prob = random_problem(n_req, n_veh, s)
            g = solve_greedy(prob)
            a, a_cpu, _ = _timed(lambda prob=prob: solve(prob, seed=seed))
            viol = check_solution(prob, g) + check_solution(prob, a)
            row = {"requests": n_req, "shuttles": n_veh, "seed": s, "greedy_m": g.distance_m,
                   "greedy_served": n_req - len(g.unserved), "alns_m": a.distance_m,
                   "alns_served": n_req - len(a.unserved), "alns_cpu_s": a_cpu,
                   "saving": 1.0 - a.distance_m / g.distance_m if g.distance_m > 0 else 0.0}
            o_txt = f"{'-':>9} {'-':>3}"
            if ortools:
                o = solve(prob, method="ortools", keep_best=False)
                viol += check_solution(prob, o)
                row.update(ortools_m=o.distance_m, ortools_served=n_req - len(o.unserved))
                o_txt = f"{o.distance_m:>9.0f} {row['ortools_served']:>3}"
            row["violations"] = viol
            rows.append(row)
            print(f"{n_req:>8} {n_veh:>8} {s:>4} | {g.distance_m:>9.0f} {row['greedy_served']:>3} | "
                  f"{a.distance_m:>9.0f} {row['alns_served']:>3} {a_cpu:>6.1f} | {o_txt} | "
                  f"{100 * row['saving']:>6.1f}% {len(viol):>4}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None, help="instance names (default: all 21)")
    ap.add_argument("--no-ortools", action="store_true", help="skip the OR-Tools reference")
    ap.add_argument("--no-town", action="store_true", help="skip the town days")
    ap.add_argument("--no-cordeau", action="store_true", help="skip the Cordeau instances")
    ap.add_argument("--seed", type=int, default=0, help="ALNS seed")
    ap.add_argument("--time-cap", type=float, default=10.0,
                    help="ALNS CPU-time cap, s, as the CLI's default (the iteration budget normally ends the "
                         "search first; the iterations column shows where it stopped)")
    ap.add_argument("--town-seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", default="out/bench/dispatch.json")
    ap.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                    help="only summarise earlier runs' JSON files together (e.g. the splits run side by side)")
    args = ap.parse_args()
    if args.merge:
        rows, town = [], []
        for f in args.merge:
            data = json.loads(pathlib.Path(f).read_text())
            rows += data["cordeau"]
            town += data["town"]
        rows.sort(key=lambda r: list(OPTIMA).index(r["instance"]))
        for r in rows:
            print(f"{r['instance']:>8} {r['optimum']:>8.2f} | alns {r['alns']:>8.2f} {100 * r['alns_gap']:>6.2f} % "
                  f"{r['alns_served']:>3}/{r['requests']:<3} cpu {r['alns_cpu_s']:>5.1f} s | greedy "
                  f"{100 * r['greedy_gap']:>6.2f} % | ortools "
                  + (f"{100 * r['ortools_gap']:>6.2f} % {r['ortools_served']:>3}" if "ortools_gap" in r else "-")
                  + f" | {len(r['violations'])} viol")
        _summary(rows, town, args.out)
        return 0
    names = args.only or list(OPTIMA)
    rows = [] if args.no_cordeau else cordeau_part(names, not args.no_ortools, args.seed, args.time_cap)
    town = [] if args.no_town else town_part(args.town_seeds, not args.no_ortools, args.seed)
    _summary(rows, town, args.out)
    return 0


def _summary(rows: list[dict], town: list[dict], out_path: str) -> None:
    summary: dict = {}
    if rows:
        summary["violations"] = sum(len(r["violations"]) for r in rows)
    for split in ("tune", "held-out", "all"):
        sel = [r for r in rows if split == "all" or r["split"] == split]
        if not sel:
            continue
        summary[split] = {
            "instances": len(sel),
            "alns_mean_gap": statistics.mean(r["alns_gap"] for r in sel),
            "alns_max_gap": max(r["alns_gap"] for r in sel),
            "alns_all_served": all(r["alns_served"] == r["requests"] for r in sel),
            "alns_max_cpu_s": max(r["alns_cpu_s"] for r in sel),
            "greedy_mean_gap": statistics.mean(r["greedy_gap"] for r in sel),
        }
        if "ortools_gap" in sel[0]:
            summary[split]["ortools_mean_gap"] = statistics.mean(r["ortools_gap"] for r in sel)
        s = summary[split]
        print(f"cordeau {split:>8} ({s['instances']} instances): ALNS mean gap {100 * s['alns_mean_gap']:.2f} % "
              f"(max {100 * s['alns_max_gap']:.2f} %), all served: {s['alns_all_served']}, max CPU "
              f"{s['alns_max_cpu_s']:.1f} s; greedy mean gap {100 * s['greedy_mean_gap']:.2f} %"
              + (f"; OR-Tools mean gap {100 * s['ortools_mean_gap']:.2f} %" if "ortools_mean_gap" in s else ""))
    for n_req, _ in TOWN:
        sel = [r for r in town if r["requests"] == n_req]
        if sel:
            summary[f"town{n_req}"] = {"mean_saving": statistics.mean(r["saving"] for r in sel),
                                       "min_saving": min(r["saving"] for r in sel),
                                       "violations": sum(len(r["violations"]) for r in sel)}
            t = summary[f"town{n_req}"]
            print(f"town {n_req:>3} requests: ALNS saving over greedy mean {100 * t['mean_saving']:.1f} %, "
                  f"min {100 * t['min_saving']:.1f} %, {t['violations']} violations")
    out = pathlib.Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cordeau": rows, "town": town, "summary": summary}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    raise SystemExit(main())
