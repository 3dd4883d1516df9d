"""Order and direction of the swaths: boustrophedon, snake, spiral and an optimised order.

A route is a list of ``(swath_index, reversed)``. The optimised route solves the generalised asymmetric
travelling-salesman problem "visit every swath once in one of its two directions" with the cost of the
connection (turn) from the end of one swath to the start of the next: a deterministic best-improvement
descent (:func:`improve_route`: run reversal with direction flips, or-opt) from the cheapest pattern routes,
then OR-Tools routing (guided local search, limited to a number of solutions so that it is repeatable, or
time-limited, :func:`search_time_s`) from the best of them.
"""

from __future__ import annotations

import math

import numpy as np

from agricare.core.planning.decomposition import Swath

try:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2
except ImportError:                                               # pragma: no cover
    pywrapcp = None

ROUTES = ("boustrophedon", "snake", "spiral", "optimal")


def pattern_order(n: int, route: str) -> list[int]:
    """Visiting order of ``n`` parallel swaths of one cell for a pattern route."""
    if route == "boustrophedon":
        return list(range(n))
    if route == "snake":
        # skip one swath going out, come back on the skipped ones: 0 2 4 ... 5 3 1
        evens = list(range(0, n, 2))
        odds = list(range(1, n, 2))
        return evens + odds[::-1]
    if route == "spiral":
        # outside in: 0, n-1, 1, n-2, ...
        out, lo, hi = [], 0, n - 1
        while lo <= hi:
            out.append(lo)
            if hi != lo:
                out.append(hi)
            lo, hi = lo + 1, hi - 1
        return out
    if route.startswith("skip"):
        # interleaved passes k lanes apart (k >= 2r / width makes every turn a plain U-turn):
        # 0, k, 2k, ... then back on the next residue class, and so on
        k = max(1, int(route[4:]))
        out = []
        for r in range(k):
            lanes = list(range(r, n, k))
            out.extend(lanes if r % 2 == 0 else lanes[::-1])
        return out
    raise ValueError(f"unknown route {route!r} ({', '.join(ROUTES)})")


def end_poses(swaths: list[Swath]) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit poses ``(2n, 3)`` of each swath in both directions (row 2i forward, 2i+1 reversed)."""
    n = len(swaths)
    entry = np.zeros((2 * n, 3))
    exit_ = np.zeros((2 * n, 3))
    for i, sw in enumerate(swaths):
        yaw = math.atan2(sw.p1[1] - sw.p0[1], sw.p1[0] - sw.p0[0])
        entry[2 * i] = (*sw.p0, yaw)
        exit_[2 * i] = (*sw.p1, yaw)
        entry[2 * i + 1] = (*sw.p1, yaw + math.pi)
        exit_[2 * i + 1] = (*sw.p0, yaw + math.pi)
    return entry, exit_


def route_cost(route, cost: np.ndarray) -> float:
    """Sum of connection costs of a route given the ``(2n, 2n)`` exit->entry cost matrix."""
    nodes = [2 * i + int(r) for i, r in route]
    return float(sum(cost[a, b] for a, b in zip(nodes[:-1], nodes[1:])))


def pattern_route(cells: list[list[int]], route: str, swaths: list[Swath], cost: np.ndarray):
    """Pattern route cell by cell; each next cell is entered at its cheapest corner (greedy)."""
    remaining = list(range(len(cells)))
    out: list[tuple[int, bool]] = []
    while remaining:
        best = None
        for ci in remaining:
            idx = cells[ci]
            order = pattern_order(len(idx), route)
            for flip_lines in (False, True):
                seq = [idx[k] for k in order]
                if flip_lines:
                    seq = [idx[len(idx) - 1 - k] for k in order]
                for first_rev in (False, True):
                    cand = [(sw, bool(first_rev ^ (j % 2 == 1))) for j, sw in enumerate(seq)]
                    inner = route_cost(cand, cost)
                    link = cost[2 * out[-1][0] + int(out[-1][1]), 2 * cand[0][0] + int(cand[0][1])] if out else 0.0
                    c = inner + link
                    if best is None or c < best[0]:
                        best = (c, ci, cand)
        out.extend(best[2])
        remaining.remove(best[1])
    return out


#: search seconds per squared node count (after the descents, guided local search on the oriented-swath graph
#: rarely improves after ``1e-5 * n^2`` s; twice that leaves a margin)
SEARCH_S_PER_NODE2 = 2e-5


def search_time_s(n_nodes: int, time_limit_s: float, min_s: float = 0.01) -> float:
    """Search time given to the route optimiser: ``min(time_limit_s, max(min_s, 2e-5 n^2))`` seconds.

    Small problems converge long before a fixed limit (a 14-swath field within ~20 ms), so they do not wait
    for it; large ones keep the full ``time_limit_s``.
    """
    return float(min(time_limit_s, max(min_s, SEARCH_S_PER_NODE2 * n_nodes * n_nodes)))


def improve_route(cost: np.ndarray, route, max_seg: int = 3, max_moves: int = 100000):
    """Best-improvement local search on a route until no move shortens it (deterministic).

    Moves, all evaluated at once with numpy each step: reverse a run of swaths (each swath then driven the
    other way: a 2-opt move with direction flips), and move a run of 1..``max_seg`` swaths elsewhere, as is
    or reversed (or-opt). The route is an open path (free start and end).

    Parameters
    ----------
    cost : ndarray (2n, 2n)
        Connection cost (m) from the exit of oriented swath a (``2i`` forward, ``2i+1`` reversed) to the
        entry of oriented swath b.
    route : list of (swath_index, reversed)
    max_seg : int
        Longest run moved by or-opt.
    max_moves : int
        Safety bound on applied moves.

    Returns
    -------
    list of (swath_index, reversed), never costlier than ``route``.
    """
    n2 = cost.shape[0]
    cm = np.zeros((n2 + 2, n2 + 2))
    cm[:n2, :n2] = np.minimum(cost, 1e9)
    depot = n2                                     # zero-cost depot at both ends: flips to n2 + 1, also free
    s = np.array([depot] + [2 * i + int(r) for i, r in route] + [depot])
    n = len(s) - 2
    for _ in range(max_moves):
        fs = s ^ 1
        fwd = cm[s[:-1], s[1:]]                    # arc t: s[t] -> s[t+1]
        rev = cm[fs[1:], fs[:-1]]                  # the same arc driven backwards over flipped swaths
        F = np.concatenate([[0.0], np.cumsum(fwd)])
        G = np.concatenate([[0.0], np.cumsum(rev)])
        best_d, best_mv = -1e-7, None
        # reverse s[i..j] with flips
        ii, jj = np.meshgrid(np.arange(1, n + 1), np.arange(1, n + 1), indexing="ij")
        d = (cm[s[ii - 1], fs[jj]] + cm[fs[ii], s[jj + 1]] - fwd[ii - 1] - fwd[jj] + (G[jj] - G[ii])
             - (F[jj] - F[ii]))
        d = np.where(jj >= ii, d, np.inf)
        k = np.unravel_index(int(np.argmin(d)), d.shape)
        if d[k] < best_d:
            best_d, best_mv = d[k], ("rev", int(ii[k]), int(jj[k]), 0)
        # move s[i..j] (L swaths) into the gap after position g, as is or reversed
        for seg in range(1, min(max_seg, n - 1) + 1):
            i = np.arange(1, n - seg + 2)[:, None]
            j = i + seg - 1
            g = np.arange(0, n + 1)[None, :]
            ok = (g < i - 1) | (g > j)
            base = cm[s[i - 1], s[j + 1]] - fwd[i - 1] - fwd[j] - fwd[g]
            for tag, ins in (("mov", cm[s[g], s[i]] + cm[s[j], s[g + 1]]),
                             ("movr", cm[s[g], fs[j]] + cm[fs[i], s[g + 1]] + (G[j] - G[i]) - (F[j] - F[i]))):
                d = np.where(ok, base + ins, np.inf)
                k = np.unravel_index(int(np.argmin(d)), d.shape)
                if d[k] < best_d:
                    best_d, best_mv = d[k], (tag, int(i[k[0], 0]), int(j[k[0], 0]), int(g[0, k[1]]))
        if best_mv is None:
            break
        tag, a, b, g = best_mv
        lst = s.tolist()
        if tag == "rev":
            lst[a:b + 1] = [v ^ 1 for v in lst[a:b + 1][::-1]]
        else:
            seg_nodes = lst[a:b + 1] if tag == "mov" else [v ^ 1 for v in lst[a:b + 1][::-1]]
            rest = lst[:a] + lst[b + 1:]
            pos = g + 1 if g < a else g + 1 - (b - a + 1)
            lst = rest[:pos] + seg_nodes + rest[pos:]
        s = np.array(lst)
    out = [(int(v) // 2, bool(v % 2)) for v in s[1:-1]]
    return out if route_cost(out, cost) <= route_cost(route, cost) else list(route)


def optimal_route(cost: np.ndarray, seeds: list, time_limit_s: float = 0.2, n_descents: int = 6,
                  solution_limit: int = 0):
    """Best route found by local search (:func:`improve_route`) from the cheapest seeds, then OR-Tools
    routing (guided local search) from the best of those.

    Parameters
    ----------
    cost : ndarray (2n, 2n)
        Connection cost (m) from the exit of oriented swath a to the entry of oriented swath b.
    seeds : list of routes
        Initial solutions; the best of these and the OR-Tools result is returned.
    time_limit_s : float
        Search time limit (upper bound: see :func:`search_time_s`); 0 = descents only, no search.
    n_descents : int
        Number of seeds (cheapest first) improved by :func:`improve_route` before the search, up to 40
        swaths; scaled down by ``(40 / n)^2`` beyond (at least one).
    solution_limit : int
        > 0: the search stops after this many solutions (single-threaded, so the same cost matrix gives the same
        route on any machine and under any load) and ``time_limit_s`` only caps it, unscaled; 0: the search
        runs for :func:`search_time_s` (how far it gets depends on the machine's speed and load).
    """
    n2 = cost.shape[0]
    n = n2 // 2
    # deterministic descent from every seed first (a few ms), then guided local search from the best
    seeds = sorted(seeds, key=lambda r: route_cost(r, cost))
    if n > 1:
        # a descent costs ~n^3: all seeds up to 40 swaths, fewer beyond (one from about 100 swaths)
        k = max(1, min(n_descents, int(n_descents * (40.0 / n) ** 2)))
        seeds = [improve_route(cost, r) for r in seeds[:k]] + seeds[k:]
    best = min(seeds, key=lambda r: route_cost(r, cost)) if seeds else None
    if n <= 1:
        return best or [(0, False)]
    if pywrapcp is None or time_limit_s <= 0:
        return best
    scale = 100.0
    big = int(min(np.max(cost) * scale * 4 + 1e6, 2 ** 40))
    cm = np.zeros((n2 + 1, n2 + 1), dtype=np.int64)
    cm[1:, 1:] = np.round(np.minimum(cost, 1e9) * scale).astype(np.int64)
    mgr = pywrapcp.RoutingIndexManager(n2 + 1, 1, 0)
    rm = pywrapcp.RoutingModel(mgr)
    t = rm.RegisterTransitMatrix(cm.tolist())
    rm.SetArcCostEvaluatorOfAllVehicles(t)
    for i in range(n):
        rm.AddDisjunction([mgr.NodeToIndex(2 * i + 1), mgr.NodeToIndex(2 * i + 2)], big, 1)
    p = pywrapcp.DefaultRoutingSearchParameters()
    p.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    p.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    if solution_limit > 0:
        p.solution_limit = int(solution_limit)
        p.time_limit.FromMilliseconds(max(10, int(time_limit_s * 1000)))
    else:
        p.time_limit.FromMilliseconds(max(10, int(search_time_s(n2, time_limit_s) * 1000)))
    sol = None
    if best is not None:
        init = rm.ReadAssignmentFromRoutes([[2 * i + int(r) + 1 for i, r in best]], True)
        if init is not None:
            sol = rm.SolveFromAssignmentWithParameters(init, p)
    if sol is None:
        sol = rm.SolveWithParameters(p)
    if sol is None:
        return best
    idx = rm.Start(0)
    route = []
    while not rm.IsEnd(idx):
        node = mgr.IndexToNode(idx)
        if node > 0:
            route.append(((node - 1) // 2, bool((node - 1) % 2)))
        idx = sol.Value(rm.NextVar(idx))
    if len({i for i, _ in route}) != n:
        return best
    if best is not None and route_cost(best, cost) <= route_cost(route, cost) + 1e-9:
        return best
    return route
