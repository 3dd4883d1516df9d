"""Order and direction of the swaths: boustrophedon, snake, spiral and an optimised order.

A route is a list of ``(swath_index, reversed)``. The optimised route solves the generalised asymmetric
travelling-salesman problem "visit every swath once in one of its two directions" with the cost of the
connection (turn) from the end of one swath to the start of the next, using OR-Tools routing (guided local
search, time-limited) seeded with the best pattern route; the pattern routes are kept if they are better.
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


def optimal_route(cost: np.ndarray, seeds: list, time_limit_s: float = 0.2):
    """Best route found by OR-Tools routing (guided local search) from the seed routes.

    Parameters
    ----------
    cost : ndarray (2n, 2n)
        Connection cost (m) from the exit of oriented swath a to the entry of oriented swath b.
    seeds : list of routes
        Initial solutions; the best of these and the OR-Tools result is returned.
    time_limit_s : float
        Search time limit.
    """
    n2 = cost.shape[0]
    n = n2 // 2
    best = min(seeds, key=lambda r: route_cost(r, cost)) if seeds else None
    if n <= 1:
        return best or [(0, False)]
    if pywrapcp is None:                                          # pragma: no cover
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
    p.time_limit.FromMilliseconds(max(10, int(time_limit_s * 1000)))
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
