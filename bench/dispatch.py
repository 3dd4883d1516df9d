"""Benchmark: dial-a-ride plans against the published optima and against the greedy / OR-Tools references.

Run: ``PYTHONPATH=src .venv/bin/python bench/dispatch.py [--only a2-16 a8-96] [--no-ortools] [--town-seeds 1 2 3]``.

Part 1, the standard Cordeau (2006) 'a' instances (bench/data/cordeau, 16-96 requests, proven optima of
Ropke, Cordeau & Laporte 2007): every instance is read with the same code as ``agricare dispatch --format
cordeau`` and solved in this process by the ALNS (seed 0, default iteration budget, the result is the same
for the same seed and budget; the 10 s CPU cap of the CLI applies), the greedy cheapest-insertion baseline
and OR-Tools routing (default time limit, ``keep_best`` off). Printed per instance: distance, gap to the
optimum, requests served, CPU and wall time.
Every plan is re-verified by ``check_solution`` (count of violations printed).
The solver parameters (destroy size, temperature, budget, operators) were tuned on instances with an even
number of vehicles (a2, a4, a6, a8; mostly a4-48, a6-72, a8-64, a8-96); the instances with an odd number
(a3, a5, a7) are reported separately as the held-out split.

Part 2, seeded town days (``random_problem``: 10 requests / 2 shuttles, 50 / 5, 100 / 10): ALNS, greedy and
OR-Tools distances and the ALNS saving over greedy (target >= 15 %). The greedy baseline is the plain one:
requests one by one in the order of their pick-up windows, each at its cheapest feasible position, no
improvement afterwards. Days up to ``--exact-max`` requests are also solved exactly by a CP-SAT model
written here (:func:`exact_lower_bound`): the optimum column says how far the ALNS is from the best plan
and how much any plan can save over the greedy one on that day.

Output: progress lines on stderr, then markdown tables (one row per instance / day) and a summary on
stdout. Times: CPU time of this process (``time.process_time``); the machine may be shared, wall time
then over-states the cost. Writes ``out/bench/dispatch.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import sys
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


def exact_lower_bound(prob, time_limit_s: float = 120.0, hint=None) -> tuple[float, str]:
    """Optimal distance of a fresh town day by an exact CP-SAT model written here (not the solver's code).

    Per shuttle a circuit over its depot and the stops (skipped stops: self-loops), start-of-service
    variables with ``B_j >= B_i + s_i + t_ij`` on a used arc (waiting allowed anywhere), both windows,
    ride limits ``B_d - B_p - s_p <= L``, precedence, loads on arcs, seats, availability, range and route
    duration. Times and distances are integers in 1/100 of a unit, rounded outwards (travel times, services
    and distances down, window ends and limits up): the model is a relaxation and its optimum a proven lower
    bound of the true optimum (the rounding costs < 0.01 per arc). Returns (bound, CP-SAT status); the bound
    is the optimum when the status is OPTIMAL. Every request must be served (the bound is for that case).
    """
    from ortools.sat.python import cp_model

    scale = 100.0
    reqs, vehs = list(prob.requests), list(prob.vehicles)
    n, K = len(reqs), len(vehs)
    pts = [r.pickup_xy for r in reqs] + [r.dropoff_xy for r in reqs]
    serv = [r.pickup_service_s for r in reqs] + [r.dropoff_service_s for r in reqs]
    lo = [r.pickup_window_s[0] for r in reqs] + [r.dropoff_open_s for r in reqs]
    hi = [r.pickup_window_s[1] for r in reqs] + [r.dropoff_by_s for r in reqs]
    q = [r.passengers for r in reqs] + [-r.passengers for r in reqs]
    horizon = max(v.available_s[1] for v in vehs)

    def down(x):
        return math.floor(x * scale + 1e-9)

    def up(x):
        return math.ceil(x * scale - 1e-9)

    m = cp_model.CpModel()
    B = [m.NewIntVar(max(0, down(lo[i])) if lo[i] > -math.inf else 0, up(min(hi[i], horizon)), f"B{i}")
         for i in range(2 * n)]
    load = [m.NewIntVar(0, max(v.seats for v in vehs), f"q{i}") for i in range(2 * n)]
    visit = [[None] * (2 * n) for _ in range(K)]
    cost, arc_lits = [], []
    for k, v in enumerate(vehs):
        leave = m.NewIntVar(down(v.available_s[0]), up(v.available_s[1]), f"S{k}")
        back = m.NewIntVar(down(v.available_s[0]), up(v.available_s[1]), f"E{k}")
        if v.max_duration_s < math.inf:
            m.Add(back - leave <= up(v.max_duration_s))
        unused = m.NewBoolVar(f"unused{k}")
        arcs, lits, dist = [(0, 0, unused)], {}, []
        for i in range(2 * n):
            visit[k][i] = m.NewBoolVar(f"v{k}_{i}")
            arcs.append((i + 1, i + 1, visit[k][i].Not()))
            m.AddImplication(visit[k][i], unused.Not())
            m.Add(load[i] <= v.seats).OnlyEnforceIf(visit[k][i])
        for i in range(-1, 2 * n):  # -1: the depot
            for j in range(-1, 2 * n):
                if i == j or (i >= n and j == i - n) or (i == -1 and j >= n) or (j == -1 and 0 <= i < n):
                    continue  # a drop-off before its pick-up, leaving empty or coming back loaded
                d = prob.distance_m(pts[i] if i >= 0 else v.depot_xy, pts[j] if j >= 0 else v.depot_xy)
                t = d / prob.speed_mps
                lit = m.NewBoolVar(f"x{k}_{i}_{j}")
                arcs.append((i + 1, j + 1, lit))
                lits[(i, j)] = lit
                dist.append(down(d) * lit)
                if i == -1:
                    m.Add(B[j] >= leave + down(t)).OnlyEnforceIf(lit)
                    m.Add(load[j] == q[j]).OnlyEnforceIf(lit)
                elif j == -1:
                    m.Add(back >= B[i] + down(serv[i]) + down(t)).OnlyEnforceIf(lit)
                else:
                    m.Add(B[j] >= B[i] + down(serv[i]) + down(t)).OnlyEnforceIf(lit)
                    m.Add(load[j] == load[i] + q[j]).OnlyEnforceIf(lit)
        m.AddCircuit(arcs)
        if v.range_m < math.inf:
            m.Add(sum(dist) <= up(v.range_m))
        for i in range(n):
            m.Add(visit[k][i] == visit[k][n + i])
        cost += dist
        arc_lits.append(lits)
    for i in range(2 * n):
        m.AddExactlyOne(visit[k][i] for k in range(K))
    for i, r in enumerate(reqs):
        direct = prob.distance_m(r.pickup_xy, r.dropoff_xy) / prob.speed_mps
        m.Add(B[n + i] >= B[i] + down(r.pickup_service_s) + down(direct))
        if r.max_ride_s < math.inf:
            m.Add(B[n + i] - B[i] - down(r.pickup_service_s) <= up(r.max_ride_s))
    m.Minimize(sum(cost))
    if hint is not None:  # a known plan (e.g. the ALNS one) as a hint: it only speeds the search up
        idx = {r.request_id: i for i, r in enumerate(reqs)}
        for k, v in enumerate(vehs):
            seq = [idx[s.request_id] + (0 if s.action == "pickup" else n) for s in hint.routes[v.vehicle_id]]
            chain = [-1, *seq, -1]
            on = set(zip(chain, chain[1:])) if seq else set()
            for arc, lit in arc_lits[k].items():
                m.AddHint(lit, arc in on)
    solver = cp_model.CpSolver()
    # a deterministic work limit (about seconds on a quiet machine): on a shared machine a wall-clock limit
    # cut one proof off at 120 s wall after under 5 s of CPU; the wall limit is only a safety net
    solver.parameters.max_deterministic_time = time_limit_s
    solver.parameters.max_time_in_seconds = 30.0 * time_limit_s
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    status = solver.Solve(m)
    if status == cp_model.INFEASIBLE:
        return math.inf, "INFEASIBLE"
    return solver.BestObjectiveBound() / scale, solver.StatusName(status)


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cordeau_part(names, ortools: bool, seed: int, time_cap: float) -> list[dict]:
    rows = []
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
            "alns_iterations": int(a.method.split(",")[1].split()[0]) if "," in a.method else None,
            "greedy": g.distance_m, "greedy_gap": g.distance_m / opt - 1.0, "greedy_served": n - len(g.unserved),
            "split": "tune" if c.K % 2 == 0 else "held-out",
        }
        if ortools:
            o, _, o_wall = _timed(lambda prob=prob: solve(prob, method="ortools", keep_best=False))
            viol += check_solution(prob, o)
            row.update(ortools=o.distance_m, ortools_gap=o.distance_m / opt - 1.0,
                       ortools_served=n - len(o.unserved), ortools_wall_s=o_wall)
        row["violations"] = viol
        rows.append(row)
        _progress(f"{name}: ALNS {a.distance_m:.2f} ({100 * row['alns_gap']:.2f} %), {row['alns_served']}/{n} "
                  f"served, {a_cpu:.1f} s CPU, {len(viol)} violations")
    return rows


def town_part(seeds, ortools: bool, seed: int, exact_max: int, exact_time_s: float, sizes=None) -> list[dict]:
    rows = []
    for n_req, n_veh in TOWN:
        if sizes and n_req not in sizes:
            continue
        for s in seeds:
            prob = random_problem(n_req, n_veh, s)
            g = solve_greedy(prob)
            a, a_cpu, _ = _timed(lambda prob=prob: solve(prob, seed=seed))
            viol = check_solution(prob, g) + check_solution(prob, a)
            row = {"requests": n_req, "shuttles": n_veh, "seed": s, "greedy_m": g.distance_m,
                   "greedy_served": n_req - len(g.unserved), "alns_m": a.distance_m,
                   "alns_served": n_req - len(a.unserved), "alns_cpu_s": a_cpu,
                   "saving": 1.0 - a.distance_m / g.distance_m if g.distance_m > 0 else 0.0}
            if ortools:
                o = solve(prob, method="ortools", keep_best=False)
                viol += check_solution(prob, o)
                row.update(ortools_m=o.distance_m, ortools_served=n_req - len(o.unserved))
            if n_req <= exact_max and not g.unserved:
                c0 = time.process_time()
                bound, status = exact_lower_bound(prob, exact_time_s, hint=a)
                row.update(exact_m=bound, exact_status=status, exact_cpu_s=time.process_time() - c0,
                           best_saving=1.0 - bound / g.distance_m)
            row["violations"] = viol
            rows.append(row)
            _progress(f"town {n_req}/{n_veh} seed {s}: greedy {g.distance_m:.1f}, ALNS {a.distance_m:.1f} "
                      f"({100 * row['saving']:.1f} % shorter), {len(viol)} violations"
                      + (f", exact {row['exact_m']:.1f} ({row['exact_status']})" if "exact_m" in row else ""))
    return rows


def _pct(v) -> str:
    return f"{100 * v:.2f}"


def cordeau_table(rows: list[dict]) -> str:
    out = ["| instance | split | n | K | optimum | ALNS | gap % | served | CPU s | iterations | greedy gap % "
           "| OR-Tools gap % (served) | violations |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o = f"{_pct(r['ortools_gap'])} ({r['ortools_served']})" if "ortools_gap" in r else "-"
        out.append(f"| {r['instance']} | {r['split']} | {r['requests']} | {r['vehicles']} | {r['optimum']:.2f} "
                   f"| {r['alns']:.2f} | {_pct(r['alns_gap'])} | {r['alns_served']}/{r['requests']} "
                   f"| {r['alns_cpu_s']:.1f} | {r.get('alns_iterations') or '-'} | {_pct(r['greedy_gap'])} | {o} "
                   f"| {len(r['violations'])} |")
    return "\n".join(out)


def town_table(rows: list[dict]) -> str:
    out = ["| requests | shuttles | seed | greedy m | OR-Tools m | ALNS m | ALNS CPU s | exact optimum m "
           "(CP-SAT) | ALNS above optimum % | ALNS saving vs greedy % | optimum's saving vs greedy % "
           "| served (greedy/ALNS) | violations |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o = f"{r['ortools_m']:.1f}" if "ortools_m" in r else "-"
        if "exact_m" in r:
            ex = f"{r['exact_m']:.1f}" + ("" if r["exact_status"] == "OPTIMAL" else f" (bound, {r['exact_status']})")
            above = _pct(r["alns_m"] / r["exact_m"] - 1.0)
            best = _pct(r["best_saving"])
        else:
            ex = above = best = "-"
        out.append(f"| {r['requests']} | {r['shuttles']} | {r['seed']} | {r['greedy_m']:.1f} | {o} "
                   f"| {r['alns_m']:.1f} | {r['alns_cpu_s']:.1f} | {ex} | {above} | {_pct(r['saving'])} | {best} "
                   f"| {r['greedy_served']}/{r['alns_served']} | {len(r['violations'])} |")
    return "\n".join(out)


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
    ap.add_argument("--town-sizes", type=int, nargs="+", default=None,
                    help=f"only these town day sizes (requests; default all of {[n for n, _ in TOWN]})")
    ap.add_argument("--exact-max", type=int, default=12,
                    help="solve town days up to this many requests exactly (CP-SAT) for the optimum column")
    ap.add_argument("--exact-time", type=float, default=120.0,
                    help="CP-SAT deterministic time limit per town day (about s of one core)")
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
        town.sort(key=lambda r: (r["requests"], r["seed"]))
    else:
        names = args.only or list(OPTIMA)
        rows = [] if args.no_cordeau else cordeau_part(names, not args.no_ortools, args.seed, args.time_cap)
        town = [] if args.no_town else town_part(args.town_seeds, not args.no_ortools, args.seed, args.exact_max,
                                                 args.exact_time, args.town_sizes)
    if rows:
        print(cordeau_table(rows) + "\n")
    if town:
        print(town_table(town) + "\n")
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
        print(f"- cordeau {split:>8} ({s['instances']} instances): ALNS mean gap {100 * s['alns_mean_gap']:.2f} % "
              f"(max {100 * s['alns_max_gap']:.2f} %), all served: {s['alns_all_served']}, max CPU "
              f"{s['alns_max_cpu_s']:.1f} s; greedy mean gap {100 * s['greedy_mean_gap']:.2f} %"
              + (f"; OR-Tools mean gap {100 * s['ortools_mean_gap']:.2f} %" if "ortools_mean_gap" in s else ""))
    for n_req, _ in TOWN:
        sel = [r for r in town if r["requests"] == n_req]
        if sel:
            summary[f"town{n_req}"] = t = {"mean_saving": statistics.mean(r["saving"] for r in sel),
                                           "min_saving": min(r["saving"] for r in sel),
                                           "violations": sum(len(r["violations"]) for r in sel)}
            ex = [r for r in sel if r.get("exact_status") == "OPTIMAL"]
            if ex:
                t["optimal_days"] = len(ex)
                t["alns_max_above_optimum"] = max(r["alns_m"] / r["exact_m"] - 1.0 for r in ex)
                t["optimum_min_saving"] = min(r["best_saving"] for r in ex)
            print(f"- town {n_req:>3} requests: ALNS saving over greedy mean {100 * t['mean_saving']:.1f} %, "
                  f"min {100 * t['min_saving']:.1f} %, {t['violations']} violations"
                  + (f"; exact optimum known on {len(ex)}/{len(sel)} days: ALNS at most "
                     f"{100 * t['alns_max_above_optimum']:.2f} % above it, the optimum itself saves at least "
                     f"{100 * t['optimum_min_saving']:.1f} % over greedy" if ex else ""))
    out = pathlib.Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cordeau": rows, "town": town, "summary": summary}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    raise SystemExit(main())
