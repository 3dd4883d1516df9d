"""Dial-a-ride problem (DARP) core: instance arrays, exact route scheduling, insertion and ALNS.

The standard model (Cordeau 2006; Cordeau & Laporte 2003): ``n`` requests, each a pick-up node ``i`` and a
drop-off node ``n + i`` with time windows ``[e, l]``, service durations ``s`` and loads ``q``; ``K`` vehicles
with a start and an end node, a capacity, a maximum route duration and (here) a maximum route length. A
vehicle may wait before any stop. For a stop ``p``: arrival ``A_p = B_{p-1} + s_{p-1} + t_{p-1,p}``, start of
service ``B_p >= max(A_p, e_p)``, ``B_p <= l_p``; ride time of request ``i`` is ``B_{n+i} - (B_i + s_i)``
and must not exceed its maximum ride time; route duration ``B_end - B_start`` must not exceed the vehicle's
maximum. The objective is the total travel distance.

Feasibility of a stop order is decided exactly: its schedule constraints (precedence with travel and
service, windows, ride limits, route duration) are difference constraints, so the least solution obtained
by raising start times from the window openings until every constraint holds exists iff the order is
feasible (:func:`least_schedule`; an insertion starts from the route's previous least schedule). Reported
schedules use the eight-step forward-time-slack procedure of Cordeau & Laporte (2003): leave the start as
late as the slack allows without lengthening the route, then delay each pick-up by its forward time slack
to shorten rides; when that heuristic procedure misses a feasible schedule the least one is reported.

:func:`alns` is an adaptive large neighbourhood search (Ropke & Pisinger 2006 style): removal (random,
worst, related/Shaw, a whole route, a whole route with one of its requests starting an unused vehicle),
insertion (greedy, regret-2, regret-3; greedy and regret-2 also with noisy costs) with exact feasibility
checks, simulated annealing acceptance and adaptive operator weights. Deterministic for a given seed and
iteration budget; the time limit is a cap only.

Pure Python (numpy only for the instance matrices). Insertion positions of a route are filtered by
necessary conditions (windows against the route's earliest departures and latest starts, capacity, a lower
bound of the ride time); the survivors are checked exactly in order of added distance.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np

INF = math.inf
EPS = 1e-7


# ----------------------------------------------------------------------------------------------- instance
@dataclass
class Instance:
    """Flat DARP instance. Node ids: pick-up ``i`` (0..n-1), drop-off ``n+i``, start of vehicle ``k``:
    ``2n+k``, end of vehicle ``k``: ``2n+K+k``.

    ``pinned[i] = k`` marks a request already on board vehicle ``k``: only its drop-off is routed (on ``k``);
    its window end already contains the ride limit. ``start_load[k]`` counts those passengers.
    """

    n: int
    K: int
    dist: np.ndarray          # (N, N) travel distance
    tt: np.ndarray            # (N, N) travel time
    e: np.ndarray             # (N,) window start
    l: np.ndarray             # (N,) window end  # noqa: E741
    s: np.ndarray             # (N,) service duration
    q: np.ndarray             # (N,) load change (int)
    ride: np.ndarray          # (n,) maximum ride time
    cap: list[int]
    max_dur: list[float]
    max_dist: list[float]
    start_load: list[int] = field(default_factory=list)
    pinned: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        n, K = self.n, self.K
        if not self.start_load:
            self.start_load = [0] * K
        if not self.pinned:
            self.pinned = [-1] * n
        self.e = np.array(self.e, dtype=float)
        self.l = np.array(self.l, dtype=float)
        self.tighten_windows()
        # python lists for fast scalar access
        self.D = self.dist.tolist()
        self.T = self.tt.tolist()
        self.E = self.e.tolist()
        self.Lw = self.l.tolist()
        self.S = self.s.tolist()
        self.Q = [int(v) for v in self.q.tolist()]
        self.R = self.ride.tolist()

    def tighten_windows(self) -> None:
        """Shrink windows to what the other end and the ride limit allow (Cordeau 2006, section 5).

        Pick-up ``i``: ``[max(e_i, e_d - L - s_i), min(l_i, l_d - t_id - s_i)]``; drop-off ``d``:
        ``[max(e_d, e_i + s_i + t_id), min(l_d, l_i + s_i + L)]``. The feasible set does not change.
        """
        n = self.n
        e, lw, s, tt = self.e, self.l, self.s, self.tt
        for i in range(n):
            if self.pinned[i] >= 0:
                continue
            d = n + i
            L = float(self.ride[i])
            t = float(tt[i, d])
            e[i] = max(e[i], e[d] - L - s[i])
            lw[i] = min(lw[i], lw[d] - t - s[i])
            e[d] = max(e[d], e[i] + s[i] + t)
            lw[d] = min(lw[d], lw[i] + s[i] + L)

    @property
    def N(self) -> int:
        return 2 * self.n + 2 * self.K

    def start(self, k: int) -> int:
        return 2 * self.n + k

    def end(self, k: int) -> int:
        return 2 * self.n + self.K + k

    def request_of(self, node: int) -> int:
        return node if node < self.n else node - self.n

    def can_carry(self, k: int, i: int) -> bool:
        p = self.pinned[i]
        if p >= 0:
            return p == k
        return self.Q[i] <= self.cap[k]


# -------------------------------------------------------------------------------------------- scheduling
@dataclass
class Schedule:
    """Exact schedule of one route (positions: 0 = start, 1..m = stops, m+1 = end)."""

    nodes: list[int]
    arrival: list[float]
    start: list[float]
    cost: float

    @property
    def depart(self) -> float:
        return self.start[0]

    @property
    def duration(self) -> float:
        return self.start[-1] - self.start[0]


def route_cost(inst: Instance, k: int, route: list[int]) -> float:
    D = inst.D
    prev = inst.start(k)
    c = 0.0
    for x in route:
        c += D[prev][x]
        prev = x
    return c + D[prev][inst.end(k)]


def evaluate(inst: Instance, k: int, route: list[int], full: bool = False):
    """Exact feasibility of ``route`` (stop nodes) on vehicle ``k``.

    Returns None if infeasible; else the route distance, or with ``full`` a :class:`Schedule` computed with
    the eight-step forward-time-slack procedure (the earliest feasible schedule when that procedure fails
    on a feasible route).
    """
    n = inst.n
    seq = [inst.start(k)] + route + [inst.end(k)]
    m = len(seq)
    D, T, E, Lw, S, Q, R = inst.D, inst.T, inst.E, inst.Lw, inst.S, inst.Q, inst.R
    # pairing, capacity, length
    load = inst.start_load[k]
    cap = inst.cap[k]
    cost = 0.0
    pos_p: dict[int, int] = {}
    pairs: list[tuple[int, int, float]] = []   # (pick-up position, drop-off position, L_i + s_i)
    prev = seq[0]
    for idx in range(1, m - 1):
        x = seq[idx]
        cost += D[prev][x]
        prev = x
        if x < n:
            if x in pos_p:
                return None
            pos_p[x] = idx
        else:
            i = x - n
            pp = pos_p.pop(i, None)
            if pp is None:
                if inst.pinned[i] != k:
                    return None
            else:
                pairs.append((pp, idx, R[i] + S[i]))
        load += Q[x]
        if load > cap:
            return None
    if pos_p:
        return None  # a pick-up without its drop-off (or the drop-off before it)
    cost += D[prev][seq[-1]]
    if cost > inst.max_dist[k] + 1e-6:
        return None
    # earliest schedule: the least solution of the difference constraints (infeasible as soon as a window
    # end is passed)
    B = [-INF] * m
    B[0] = E[seq[0]]
    if B[0] > Lw[seq[0]] + EPS or not _raise(inst, k, seq, B, pairs, 1):
        return None
    if not full:
        return cost
    sch = _eight_step(inst, k, seq, pairs)
    if sch is None:  # the slack procedure missed a feasible schedule: report the earliest one
        A = [B[0]] + [B[p - 1] + S[seq[p - 1]] + T[seq[p - 1]][seq[p]] for p in range(1, m)]
        return Schedule(seq, A, B, cost)
    A, B8 = sch
    return Schedule(seq, A, B8, cost)


def _eight_step(inst: Instance, k: int, seq: list[int], pairs) -> tuple[list[float], list[float]] | None:
    """Cordeau & Laporte (2003) schedule of a fixed stop order; None if it ends with a violation."""
    m = len(seq)
    T, E, Lw, S = inst.T, inst.E, inst.Lw, inst.S
    A = [0.0] * m
    B = [0.0] * m
    W = [0.0] * m

    def forward(frm: int) -> None:
        for p in range(frm, m):
            a = B[p - 1] + S[seq[p - 1]] + T[seq[p - 1]][seq[p]]
            x = seq[p]
            b = a if a > E[x] else E[x]
            A[p], B[p], W[p] = a, b, b - a

    def rides_ok() -> bool:
        return all(B[hd] - B[pp] <= w + EPS for pp, hd, w in pairs)

    # 1-2: earliest departure, earliest times
    B[0] = A[0] = E[seq[0]]
    forward(1)
    if any(B[p] > Lw[seq[p]] + EPS for p in range(m)):
        return None
    # 3-5: forward time slack of the start; leave as late as it allows without lengthening the route
    f0, wsum = INF, 0.0
    for h in range(m):
        if h > 0:
            wsum += W[h]
        v = Lw[seq[h]] - B[h]
        v = wsum + (v if v > 0 else 0.0)
        if v < f0:
            f0 = v
    delay = min(f0, sum(W[1:m - 1]))
    if delay > 0:
        B[0] += delay
        A[0] = B[0]
        forward(1)
    # 6-7: delay every pick-up by its forward time slack (bounded by the waits after it)
    if not rides_ok():
        drop_at = {pp: (hd, w) for pp, hd, w in pairs}
        pick_before = {}  # drop-off position -> (pick-up position, L + s)
        for pp, hd, w in pairs:
            pick_before[hd] = (pp, w)
        for j in sorted(drop_at):
            fj, wsum = INF, 0.0
            for h in range(j, m):
                if h > j:
                    wsum += W[h]
                v = Lw[seq[h]] - B[h]
                pb = pick_before.get(h)
                if pb is not None and pb[0] < j:
                    r = pb[1] - (B[h] - B[pb[0]])
                    if r < v:
                        v = r
                v = wsum + (v if v > 0 else 0.0)
                if v < fj:
                    fj = v
            delay = min(fj, sum(W[j + 1:m - 1]))
            if delay > 0:
                W[j] += delay
                B[j] = A[j] + W[j]
                forward(j + 1)
    # 8: violations
    if not rides_ok() or B[-1] - B[0] > inst.max_dur[k] + EPS:
        return None
    if any(B[p] > Lw[seq[p]] + EPS for p in range(m)):
        return None
    return A, B


# ------------------------------------------------------------------------------------------- insertion
class RouteData:
    """Lists of one route used to filter insertion positions (recomputed when the route changes).

    ``Bs[p]``: earliest departure from position ``p`` (start + service); ``Lt[p]``: latest start at ``p``
    that keeps the rest of the route inside its windows; ``load[p]``: load after ``p``; ``PS[p]``: time
    from the start to position ``p`` without waiting. ``Bs`` and ``Lt`` are non-decreasing along the route.
    """

    __slots__ = ("seq", "Bs", "Lt", "load", "PS", "cost", "m", "Bmin", "pairs", "key", "pair_hd")

    def __init__(self, inst: Instance, k: int, route: list[int]):
        seq = [inst.start(k)] + route + [inst.end(k)]
        m = len(seq)
        T, E, Lw, S, Q, D = inst.T, inst.E, inst.Lw, inst.S, inst.Q, inst.D
        Bs = [0.0] * m
        b = E[seq[0]]
        Bs[0] = b + S[seq[0]]
        for p in range(1, m):
            a = Bs[p - 1] + T[seq[p - 1]][seq[p]]
            b = a if a > E[seq[p]] else E[seq[p]]
            Bs[p] = b + S[seq[p]]
        Lt = [0.0] * m
        Lt[-1] = Lw[seq[-1]]
        for p in range(m - 2, -1, -1):
            v = Lt[p + 1] - S[seq[p]] - T[seq[p]][seq[p + 1]]
            Lt[p] = v if v < Lw[seq[p]] else Lw[seq[p]]
        load = [0] * m
        cur = inst.start_load[k]
        load[0] = cur
        for p in range(1, m - 1):
            cur += Q[seq[p]]
            load[p] = cur
        load[m - 1] = cur
        PS = [0.0] * m
        cost = 0.0
        for p in range(1, m):
            PS[p] = PS[p - 1] + S[seq[p - 1]] + T[seq[p - 1]][seq[p]]
            cost += D[seq[p - 1]][seq[p]]
        self.seq, self.Bs, self.Lt, self.load, self.PS, self.cost, self.m = seq, Bs, Lt, load, PS, cost, m
        self.key = (k, tuple(route))
        sch = least_schedule(inst, k, seq)
        self.Bmin, self.pairs = sch if sch is not None else (None, None)
        self.pair_hd = [hd for _, hd, _ in self.pairs] if self.pairs is not None else []


def insertion_candidates(inst: Instance, k: int, rd: RouteData, i: int) -> list[tuple[float, int, int]]:
    """Sorted (added distance, a, b) of the positions passing necessary conditions.

    Pick-up after route position ``a`` (0 = start), drop-off after original position ``b >= a`` (b == a:
    directly after the pick-up). Conditions: both windows against the route's earliest departures and
    latest starts, capacity between the two, and a lower bound of the ride time.
    """
    n = inst.n
    p, d = i, n + i
    seq, Bs, Lt, load, PS, m = rd.seq, rd.Bs, rd.Lt, rd.load, rd.PS, rd.m
    T, D, E, Lw, S = inst.T, inst.D, inst.E, inst.Lw, inst.S
    ep, lp, ed, ld, sp, sd = E[p], Lw[p], E[d], Lw[d], S[p], S[d]
    Tp, Td, Dp, Dd = T[p], T[d], D[p], D[d]
    qp = inst.Q[p]
    cap = inst.cap[k]
    ride = inst.R[i]
    tpd = Tp[d]
    last = m - 2  # insert after positions 0..m-2
    a_hi = min(last, bisect_right(Bs, lp + EPS) - 1)
    a_lo = max(0, bisect_left(Lt, ep + sp - EPS) - 1)
    b_hi = min(last, bisect_right(Bs, ld + EPS) - 1)
    b_lo = max(0, bisect_left(Lt, ed + sd - EPS) - 1)
    out = []
    for a in range(a_lo, a_hi + 1):
        if load[a] + qp > cap:
            continue
        x = seq[a]
        nx = seq[a + 1]
        bp = Bs[a] + T[x][p]
        if bp < ep:
            bp = ep
        if bp > lp + EPS:
            continue
        leave = bp + sp
        dxp = D[x][p]
        dold = D[x][nx]
        # drop-off right after the pick-up
        bd = leave + tpd
        if bd < ed:
            bd = ed
        if bd <= ld + EPS:
            t = bd + sd + Td[nx]
            if t < E[nx]:
                t = E[nx]
            if t <= Lt[a + 1] + EPS:
                out.append((dxp + Dp[d] + Dd[nx] - dold, a, a))
        t = leave + Tp[nx]
        if t < E[nx]:
            t = E[nx]
        if t > Lt[a + 1] + EPS or a >= b_hi:
            continue
        det_p = dxp + Dp[nx] - dold
        base_ride = Tp[nx] - PS[a + 1]
        for b in range(a + 1, b_hi + 1):
            if load[b] + qp > cap:
                break
            y = seq[b]
            Ty = T[y]
            if base_ride + PS[b] + S[y] + Ty[d] > ride + EPS:
                break
            if b < b_lo:
                continue
            bd = Bs[b] + Ty[d]
            if bd < ed:
                bd = ed
            if bd > ld + EPS:
                continue
            ny = seq[b + 1]
            t = bd + sd + Td[ny]
            if t < E[ny]:
                t = E[ny]
            if t > Lt[b + 1] + EPS:
                continue
            out.append((det_p + D[y][d] + Dd[ny] - D[y][ny], a, b))
    out.sort()
    return out


def _pairs_of(inst: Instance, seq: list[int]) -> list[tuple[int, int, float]]:
    n = inst.n
    pos = {}
    out = []
    for idx in range(1, len(seq) - 1):
        x = seq[idx]
        if x < n:
            pos[x] = idx
        elif (x - n) in pos:
            out.append((pos[x - n], idx, inst.R[x - n] + inst.S[x - n]))
    return out


def _push_forward(inst: Instance, seq: list[int], B: list[float], frm: int, settled: int) -> bool:
    """Push start times forward from position ``frm`` (travel, service, window openings), in place; False when a
    window closes. Past position ``settled`` it stops at the first position it does not move."""
    T, E, Lw, S = inst.T, inst.E, inst.Lw, inst.S
    for p in range(frm, len(seq)):
        a = B[p - 1] + S[seq[p - 1]] + T[seq[p - 1]][seq[p]]
        x = seq[p]
        if a < E[x]:
            a = E[x]
        if a > B[p]:
            if a > Lw[x] + EPS:
                return False
            B[p] = a
        elif p > settled:
            break
    return True


def _raise(inst: Instance, k: int, seq: list[int], B: list[float], pairs, frm: int, settled: int = 1 << 30) -> bool:
    """Least solution >= ``B`` of the route's difference constraints (in place); False if none.

    ``B`` must be a lower bound of the least solution. Past position ``settled`` the first forward pass stops
    at the first position it does not move (the rest already satisfies the precedences).
    """
    if not _push_forward(inst, seq, B, frm, settled):
        return False
    m = len(seq)
    Lw, S, T = inst.Lw, inst.S, inst.T
    max_dur = inst.max_dur[k]
    for _round in range(m + 2):
        low = m
        for pp, hd, w in pairs:
            need = B[hd] - w
            if B[pp] < need - EPS:
                if need > Lw[seq[pp]] + EPS:
                    return False
                B[pp] = need
                if pp < low:
                    low = pp
        if B[0] < B[m - 1] - max_dur - EPS:
            B[0] = B[m - 1] - max_dur
            if B[0] > Lw[seq[0]] + EPS:
                return False
            low = 0
        if low == m:
            return True
        for p in range(low + 1, m):
            a = B[p - 1] + S[seq[p - 1]] + T[seq[p - 1]][seq[p]]
            if a > B[p]:
                if a > Lw[seq[p]] + EPS:
                    return False
                B[p] = a
    return False


def least_schedule(inst: Instance, k: int, seq: list[int]):
    """(earliest feasible start times, ride pairs) of a full stop sequence, or None (windows/rides/duration)."""
    m = len(seq)
    B = [-INF] * m
    B[0] = inst.E[seq[0]]
    if B[0] > inst.Lw[seq[0]] + EPS:
        return None
    pairs = _pairs_of(inst, seq)
    if not _raise(inst, k, seq, B, pairs, 1):
        return None
    return B, pairs


def feasible_insert(inst: Instance, k: int, rd: RouteData, i: int, a: int, b: int) -> bool:
    """Exact time feasibility of inserting request ``i`` (pick-up after ``a``, drop-off after ``b``) into a
    feasible route; capacity and pairing are guaranteed by :func:`insertion_candidates`.

    Starts from the route's least schedule (a lower bound of the new one) and raises it.
    """
    n = inst.n
    seq, Bo = rd.seq, rd.Bmin
    if Bo is None:
        return False
    p, d = i, n + i
    if b == a:
        nseq = seq[:a + 1] + [p, d] + seq[a + 1:]
        B = Bo[:a + 1] + [-INF, -INF] + Bo[a + 1:]
        pd = a + 2
    else:
        nseq = seq[:a + 1] + [p] + seq[a + 1:b + 1] + [d] + seq[b + 1:]
        B = Bo[:a + 1] + [-INF] + Bo[a + 1:b + 1] + [-INF] + Bo[b + 1:]
        pd = b + 2
    # fast path: push the new stops through the route; the old schedule meets every ride limit that does not
    # end after the pick-up, so only the later drop-offs, the new request and the duration can break
    if not _push_forward(inst, nseq, B, a + 1, pd):
        return False
    m = len(nseq)
    ok = True
    w_new = inst.R[i] + inst.S[i]
    if B[pd] - B[a + 1] > w_new + EPS or B[m - 1] - B[0] > inst.max_dur[k] + EPS:
        ok = False
    else:
        pairs_old = rd.pairs
        for idx in range(bisect_right(rd.pair_hd, a), len(pairs_old)):
            pp, hd, w = pairs_old[idx]
            pp += (pp > a) + (pp > b)
            hd += 1 + (hd > b)
            if B[hd] - B[pp] > w + EPS:
                ok = False
                break
    if ok:
        return True
    pairs = [(pp + (pp > a) + (pp > b), hd + (hd > a) + (hd > b), w) for pp, hd, w in rd.pairs]
    pairs.append((a + 1, pd, w_new))
    return _raise(inst, k, nseq, B, pairs, a + 1, pd)


def make_route(route: list[int], n: int, i: int, a: int, b: int) -> list[int]:
    """Insert request ``i``: pick-up after position ``a``, drop-off after original position ``b``."""
    r = list(route)
    # positions are 1-based in seq (0 = start): pick-up goes to list index a
    if b == a:
        r[a:a] = [i, n + i]
    else:
        r.insert(b, n + i)  # after original stop b (list index b-1) -> insert at index b
        r.insert(a, i)
    return r


class Inserter:
    """Best feasible insertion of a request into a route, cached by (request, vehicle, route)."""

    def __init__(self, inst: Instance, max_checks: int = 40):
        self.inst = inst
        self.cache: dict = {}
        self.rd_cache: dict = {}
        self.max_checks = max_checks
        self.evals = 0

    def route_data(self, k: int, route: list[int], key=None) -> RouteData:
        if key is None:
            key = (k, tuple(route))
        rd = self.rd_cache.get(key)
        if rd is None:
            if len(self.rd_cache) > 20000:
                self.rd_cache.clear()
            rd = RouteData(self.inst, k, route)
            self.rd_cache[key] = rd
        return rd

    def best(self, k: int, route: list[int], i: int, rkey=None):
        """(added distance, new route) or None. ``rkey``: ``(k, tuple(route))`` if the caller has it."""
        inst = self.inst
        if not inst.can_carry(k, i):
            return None
        if rkey is None:
            rkey = (k, tuple(route))
        key = (i, rkey)
        hit = self.cache.get(key, False)
        if hit is not False:
            return hit
        rd = self.route_data(k, route, rkey)
        cands = insertion_candidates(inst, k, rd, i)
        out = None
        lim = inst.max_dist[k] - rd.cost + 1e-6
        for c, a, b in cands[: self.max_checks]:
            if c > lim:
                continue
            self.evals += 1
            if feasible_insert(inst, k, rd, i, a, b):
                out = (c, make_route(route, inst.n, i, a, b))
                break
        if len(self.cache) > 200000:
            self.cache.clear()
        self.cache[key] = out
        return out


# ---------------------------------------------------------------------------------------------- solution
@dataclass
class DarpSolution:
    routes: list[list[int]]
    unserved: list[int]
    cost: float

    def copy(self) -> DarpSolution:
        return DarpSolution([list(r) for r in self.routes], list(self.unserved), self.cost)


def _penalty(inst: Instance) -> float:
    return 10.0 * (float(inst.dist.max()) + 1.0) * 4


def objective(inst: Instance, sol: DarpSolution) -> float:
    return sol.cost + _penalty(inst) * len(sol.unserved)


def base_routes(inst: Instance) -> list[list[int]]:
    """Routes holding only the drop-offs of the passengers on board (by window end)."""
    routes: list[list[int]] = [[] for _ in range(inst.K)]
    for i in range(inst.n):
        k = inst.pinned[i]
        if k >= 0:
            routes[k].append(inst.n + i)
    for r in routes:
        r.sort(key=lambda x: inst.Lw[x])
    return routes


def greedy(inst: Instance, order: list[int] | None = None, inserter: Inserter | None = None,
           skip: set[int] | frozenset = frozenset()) -> DarpSolution:
    """Sequential cheapest feasible insertion (requests by pick-up window end, then drop-off window end)."""
    ins = inserter or Inserter(inst)
    routes = base_routes(inst)
    todo = [i for i in range(inst.n) if inst.pinned[i] < 0 and i not in skip]
    if order is None:
        todo.sort(key=lambda i: (inst.Lw[i], inst.Lw[inst.n + i], i))
    else:
        todo = list(order)
    unserved = []
    for i in todo:
        best = None
        for k in range(inst.K):
            got = ins.best(k, routes[k], i)
            if got is not None and (best is None or got[0] < best[0] - 1e-12):
                best = (got[0], k, got[1])
        if best is None:
            unserved.append(i)
        else:
            routes[best[1]] = best[2]
    cost = sum(route_cost(inst, k, r) for k, r in enumerate(routes))
    return DarpSolution(routes, unserved, cost)


def _repair(inst: Instance, sol: DarpSolution, todo: list[int], ins: Inserter, regret: int,
            rng: random.Random, noise: float = 0.0) -> None:
    """Insert ``todo`` into ``sol`` (in place): greedy (regret=1) or regret-k; what fits nowhere stays unserved.

    Greedy takes the request with the cheapest feasible insertion; regret-k the one with the largest sum of
    differences between its best insertion and its best in the k-1 next routes (ties: cheapest). With
    ``noise`` > 0 every (request, route) insertion cost is perturbed by a uniform draw in [-noise, noise]
    (Ropke & Pisinger 2006), which changes the request order and the route chosen (the position inside a
    route stays the cheapest feasible one); the solution's cost is the true distance.
    """
    routes = sol.routes
    todo = list(todo)
    K = inst.K
    big = 1e18

    def perturbed(c: float) -> float:
        return c + noise * rng.uniform(-1.0, 1.0) if noise else c

    rkeys = [(k, tuple(routes[k])) for k in range(K)]
    cost: dict[int, list[float]] = {}
    newr: dict[int, list] = {}
    for i in todo:
        cs, rs = [big] * K, [None] * K
        for k in range(K):
            got = ins.best(k, routes[k], i, rkeys[k])
            if got is not None:
                cs[k], rs[k] = perturbed(got[0]), got[1]
        cost[i], newr[i] = cs, rs
    while todo:
        pick_key = None
        pick = None
        for i in todo:
            cs = cost[i]
            c0 = min(cs)
            if c0 >= big:
                continue
            if regret <= 1:
                key = (c0, i)
            else:
                srt = sorted(cs)
                reg = 0.0
                for h in range(1, regret):
                    reg += (srt[h] if h < K and srt[h] < big else 1e9) - c0
                key = (-reg, c0, i)
            if pick_key is None or key < pick_key:
                pick_key, pick = key, i
        if pick is None:
            break
        i = pick
        cs = cost[i]
        k = cs.index(min(cs))
        r = newr[i][k]
        routes[k] = r
        todo.remove(i)
        del cost[i], newr[i]
        rk = (k, tuple(r))
        for j in todo:
            got = ins.best(k, r, j, rk)
            if got is None:
                cost[j][k], newr[j][k] = big, None
            else:
                cost[j][k], newr[j][k] = perturbed(got[0]), got[1]
    sol.unserved = sorted(set(sol.unserved) | set(todo))
    sol.cost = sum(route_cost(inst, k, r) for k, r in enumerate(routes))


def _remove(inst: Instance, sol: DarpSolution, reqs) -> None:
    n = inst.n
    gone = set(reqs)
    for k, r in enumerate(sol.routes):
        if any((x if x < n else x - n) in gone for x in r):
            sol.routes[k] = [x for x in r if (x if x < n else x - n) not in gone]
    sol.unserved = sorted(set(sol.unserved) | gone)
    sol.cost = sum(route_cost(inst, k, r) for k, r in enumerate(sol.routes))


def _served(inst: Instance, sol: DarpSolution) -> list[int]:
    n = inst.n
    return [x for r in sol.routes for x in r if x < n and inst.pinned[x] < 0]


def _times(inst: Instance, sol: DarpSolution, ins: Inserter) -> dict[int, float]:
    """Earliest start time of every routed node (for relatedness)."""
    out = {}
    for k, r in enumerate(sol.routes):
        rd = ins.route_data(k, r)
        for p, x in enumerate(r, start=1):
            out[x] = rd.Bs[p] - inst.S[x]
    return out


def _destroy_random(inst, sol, q, rng):
    served = _served(inst, sol)
    return rng.sample(served, min(q, len(served)))


def _destroy_worst(inst, sol, q, rng, p_exp=3.0):
    n = inst.n
    D = inst.D
    gains = []
    for k, r in enumerate(sol.routes):
        seq = [inst.start(k)] + r + [inst.end(k)]
        pos = {x: idx for idx, x in enumerate(seq)}
        for x in r:
            if x >= n or inst.pinned[x] >= 0:
                continue
            a, b = pos[x], pos[n + x]
            if b == a + 1:
                g = D[seq[a - 1]][x] + D[x][n + x] + D[n + x][seq[b + 1]] - D[seq[a - 1]][seq[b + 1]]
            else:
                g = (D[seq[a - 1]][x] + D[x][seq[a + 1]] - D[seq[a - 1]][seq[a + 1]]
                     + D[seq[b - 1]][n + x] + D[n + x][seq[b + 1]] - D[seq[b - 1]][seq[b + 1]])
            gains.append((-g, x))
    gains.sort()
    out = []
    cand = [x for _, x in gains]
    while cand and len(out) < q:
        idx = int(len(cand) * rng.random() ** p_exp)
        out.append(cand.pop(idx))
    return out


def _destroy_route(inst, sol, q, rng):
    """Every free request of one random non-empty route (at most ``2 q``: then ``2 q`` of them at random).

    Emptying a route is what lets the search use one shuttle fewer; removing a few requests at a time
    cannot, as each one goes back to the cheapest route, which is usually its old one.
    """
    n = inst.n
    routes = [[x for x in r if x < n and inst.pinned[x] < 0] for r in sol.routes]
    routes = [r for r in routes if r]
    if not routes:
        return []
    mine = rng.choice(routes)
    return mine if len(mine) <= 2 * q else rng.sample(mine, 2 * q)


def _open_route(inst: Instance, sol: DarpSolution, todo: list[int], ins: Inserter, rng: random.Random) -> None:
    """Start an unused vehicle with one random request of ``todo`` (in place; nothing if none fits).

    After a route removal this splits a route in two: a cheapest insertion never opens a vehicle by itself
    when the first request costs the vehicle's whole trip from and back to its depot.
    """
    empty = [k for k, r in enumerate(sol.routes) if not r]
    if not empty or not todo:
        return
    k = rng.choice(empty)
    i = rng.choice(todo)
    got = ins.best(k, [], i)
    if got is not None:
        sol.routes[k] = got[1]
        todo.remove(i)


def _destroy_shaw(inst, sol, q, rng, ins, p_exp=6.0):
    n = inst.n
    served = _served(inst, sol)
    if not served:
        return []
    tm = _times(inst, sol, ins)
    D = inst.D
    dmax = float(inst.dist.max()) or 1.0
    tmax = max(1.0, max(tm.values()) - min(tm.values())) if tm else 1.0
    first = rng.choice(served)
    chosen = [first]
    rest = [x for x in served if x != first]
    while rest and len(chosen) < q:
        ref = rng.choice(chosen)

        def rel(j, ref=ref):
            return ((D[ref][j] + D[n + ref][n + j]) / dmax
                    + (abs(tm[ref] - tm[j]) + abs(tm[n + ref] - tm[n + j])) / tmax)

        rest.sort(key=rel)
        idx = int(len(rest) * rng.random() ** p_exp)
        chosen.append(rest.pop(idx))
    return chosen


def default_iterations(n_requests: int) -> int:
    """Default ALNS iteration budget: 1e7 / n^2 clipped to [3000, 20000] (an iteration costs about n^2
    until the destroy size reaches its cap of 20; about 5-8 s of one core for 30-96 requests)."""
    if n_requests <= 0:
        return 0
    return int(min(20000, max(3000, 1.0e7 / n_requests ** 2)))


DESTROY = ("random", "worst", "shaw", "route", "split")
#: insertion operators: (name, regret k, noisy)
REPAIR = (("greedy", 1, False), ("regret2", 2, False), ("regret3", 3, False),
          ("greedy+noise", 1, True), ("regret2+noise", 2, True))
#: initial operator weights (then adapted; an operator with weight 0 is never used)
DESTROY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)
REPAIR_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)


@dataclass
class AlnsResult:
    solution: DarpSolution
    iterations: int
    seconds: float
    evals: int
    start_cost: float
    history: list[float] = field(default_factory=list)


def alns(inst: Instance, *, seed: int = 0, iterations: int | None = None, time_limit_s: float = 10.0,
         initial: list[DarpSolution] | None = None, q_min: int = 2, q_max: int | None = None,
         skip: set[int] | frozenset = frozenset(), cpu_time: bool = True,
         start_worse: float = 0.05, noise_ratio: float = 0.025,
         destroy_weights: tuple[float, ...] = DESTROY_WEIGHTS, repair_weights: tuple[float, ...] = REPAIR_WEIGHTS
         ) -> AlnsResult:
    """Adaptive large neighbourhood search; returns the best solution (fewest unserved, then distance).

    Deterministic for a given ``seed`` and ``iterations`` as long as the time limit is not reached first
    (measured as CPU time of this process with ``cpu_time``, else wall time).
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    rng = random.Random(seed)
    ins = Inserter(inst)
    free = [i for i in range(inst.n) if inst.pinned[i] < 0 and i not in skip]
    starts = [greedy(inst, inserter=ins, skip=skip)]
    regret_start = DarpSolution(base_routes(inst), [], 0.0)
    _repair(inst, regret_start, free, ins, 2, rng)
    starts.append(regret_start)
    for s in initial or []:
        starts.append(s.copy())
    cur = min(starts, key=lambda s: objective(inst, s)).copy()
    best = cur.copy()
    start_cost = objective(inst, cur)
    nfree = len(free)
    if iterations is None:
        iterations = default_iterations(nfree)
    if q_max is None:
        q_max = max(q_min, min(20, int(0.35 * nfree)))
    q_min = min(q_min, max(1, nfree))
    noise = noise_ratio * float(inst.dist.max())  # Ropke & Pisinger (2006): 0.025 x the largest distance
    wd = [float(w) for w in destroy_weights]
    wr = [float(w) for w in repair_weights]
    sd = [0.0] * len(DESTROY)
    sr = [0.0] * len(REPAIR)
    nd = [0] * len(DESTROY)
    nr = [0] * len(REPAIR)
    f_cur = objective(inst, cur)
    # simulated annealing: at the start a plan ``start_worse`` (relative) longer is accepted with p = 1/2
    temp0 = max(1e-9, start_worse * best.cost / math.log(2.0)) if best.cost > 0 else 1.0
    temp_ratio = 0.002  # final / initial temperature over the iteration budget (not the clock: determinism)
    temp = temp0
    seen: set = set()
    it = 0
    history = []
    while it < iterations and nfree > 0:
        used = time.process_time() - c0 if cpu_time else time.perf_counter() - t0
        if used > time_limit_s:
            break
        temp = temp0 * temp_ratio ** (it / iterations)
        it += 1
        di = rng.choices(range(len(DESTROY)), weights=wd)[0]
        ri = rng.choices(range(len(REPAIR)), weights=wr)[0]
        q = rng.randint(q_min, max(q_min, q_max))
        cand = cur.copy()
        if DESTROY[di] == "random":
            rem = _destroy_random(inst, cand, q, rng)
        elif DESTROY[di] == "worst":
            rem = _destroy_worst(inst, cand, q, rng)
        elif DESTROY[di] == "shaw":
            rem = _destroy_shaw(inst, cand, q, rng, ins)
        else:
            rem = _destroy_route(inst, cand, q, rng)
        _remove(inst, cand, rem)
        todo = list(cand.unserved)
        cand.unserved = []
        rng.shuffle(todo)
        if DESTROY[di] == "split":
            _open_route(inst, cand, todo, ins, rng)
        _, regret, noisy = REPAIR[ri]
        _repair(inst, cand, todo, ins, regret, rng, noise if noisy else 0.0)
        f_new = objective(inst, cand)
        key = (tuple(tuple(r) for r in cand.routes))
        score = 0.0
        if f_new < objective(inst, best) - 1e-9:
            best = cand.copy()
            cur, f_cur = cand, f_new
            score = 33.0
        elif f_new < f_cur - 1e-9:
            cur, f_cur = cand, f_new
            score = 9.0 if key not in seen else 0.0
        elif rng.random() < math.exp(-(f_new - f_cur) / temp):
            cur, f_cur = cand, f_new
            score = 13.0 if key not in seen else 0.0
        seen.add(key)
        if len(seen) > 100000:
            seen.clear()
        sd[di] += score
        sr[ri] += score
        nd[di] += 1
        nr[ri] += 1
        if it % 100 == 0:
            for w, sc, nn in ((wd, sd, nd), (wr, sr, nr)):
                for h in range(len(w)):
                    if nn[h]:
                        w[h] = max(0.05, 0.9 * w[h] + 0.1 * sc[h] / nn[h])
                    sc[h] = 0.0
                    nn[h] = 0
            history.append(best.cost)
    return AlnsResult(best, it, time.perf_counter() - t0, ins.evals, start_cost, history)


# ------------------------------------------------------------------------------------- Cordeau format
@dataclass
class CordeauInstance:
    """The Cordeau DARP text format: header ``K <n or 2n> T Q L``, then ``id x y service load e l``."""

    K: int
    n: int
    T: float
    Q: int
    L: float
    xy: list[tuple[float, float]]        # node 0 = depot, 1..2n, [2n+1 = end depot]
    service: list[float]
    load: list[int]
    window: list[tuple[float, float]]
    end_window: tuple[float, float]
    name: str = ""


def parse_cordeau(text: str, name: str = "") -> CordeauInstance:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError("empty file")
    head = lines[0]
    if len(head) < 5:
        raise ValueError(f"line 1: expected 'K 2n T Q L', got {' '.join(head)!r}")
    try:
        K = int(head[0])
        T = float(head[2])
        Q = int(head[3])
        L = float(head[4])
    except ValueError:
        raise ValueError(f"line 1: expected numbers 'K 2n T Q L', got {' '.join(head)!r}") from None
    rows = []
    for no, t in enumerate(lines[1:], start=2):
        if len(t) < 7:
            raise ValueError(f"line {no}: expected 'id x y service load e l', got {' '.join(t)!r}")
        try:
            rows.append((int(t[0]), float(t[1]), float(t[2]), float(t[3]), int(float(t[4])),
                         float(t[5]), float(t[6])))
        except ValueError:
            raise ValueError(f"line {no}: not numbers: {' '.join(t)!r}") from None
    if K < 1 or Q < 1:
        raise ValueError("line 1: K and Q must be >= 1")
    if not rows or rows[0][0] != 0:
        raise ValueError("line 2: the first node must be the depot 0")
    for idx, r in enumerate(rows):
        if r[0] != idx:
            raise ValueError(f"line {idx + 2}: node id {r[0]}, expected {idx}")
    body = rows[1:]
    end_window = (rows[0][5], rows[0][6])
    if len(body) % 2 == 1:  # the last line is the end depot
        end = body[-1]
        body = body[:-1]
        end_window = (end[5], end[6])
    n = len(body) // 2
    if n == 0:
        raise ValueError("no requests")
    for i in range(n):
        if body[i][4] <= 0 or body[n + i][4] != -body[i][4]:
            raise ValueError(f"node {i + 1}/{n + i + 1}: pick-up load must be > 0 and the drop-off's its negative")
    for r in rows:
        if r[6] < r[5]:
            raise ValueError(f"node {r[0]}: window end before start")
    return CordeauInstance(
        K, n, T, Q, L, [(r[1], r[2]) for r in rows[: 2 * n + 1]], [r[3] for r in rows[: 2 * n + 1]],
        [r[4] for r in rows[: 2 * n + 1]], [(r[5], r[6]) for r in rows[: 2 * n + 1]], end_window, name)


def cordeau_to_instance(c: CordeauInstance) -> Instance:
    n, K = c.n, c.K
    N = 2 * n + 2 * K
    xy = np.zeros((N, 2))
    xy[: 2 * n] = np.asarray(c.xy[1: 2 * n + 1])
    xy[2 * n:] = np.asarray(c.xy[0])
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    e = np.zeros(N)
    lw = np.zeros(N)
    s = np.zeros(N)
    q = np.zeros(N, dtype=np.int64)
    for v in range(2 * n):
        e[v], lw[v] = c.window[v + 1]
        s[v] = c.service[v + 1]
        q[v] = c.load[v + 1]
    e[2 * n: 2 * n + K], lw[2 * n: 2 * n + K] = c.window[0]
    e[2 * n + K:], lw[2 * n + K:] = c.end_window
    return Instance(n, K, dist, dist.copy(), e, lw, s, q, np.full(n, c.L), [c.Q] * K, [c.T] * K,
                    [INF] * K, names=[str(i + 1) for i in range(n)])


def generate_cordeau(n: int, K: int, seed: int, *, Q: int = 3, L: float = 30.0, T: float | None = None,
                     horizon: float = 1440.0, width: float = 15.0) -> CordeauInstance:
    """A random instance after Cordeau's (2006) description of the 'a' set.

    Requests in the [-10, 10]^2 square (20 x 20), depot at the centre; half outbound (window of ``width``
    on the drop-off), half inbound (window on the pick-up); the other end's window follows from the ride
    limit ``L``; service 3, load 1. The windows are placed so that each request alone is feasible.
    """
    rng = random.Random(seed)
    T = T if T is not None else 480.0
    pts = [(round(rng.uniform(-10, 10), 3), round(rng.uniform(-10, 10), 3)) for _ in range(2 * n)]
    win = [(0.0, horizon)] * (2 * n)
    win = list(win)
    for i in range(n):
        direct = math.dist(pts[i], pts[n + i])
        if i < n // 2:  # outbound: window on the drop-off
            a = round(rng.uniform(60 + direct, T - 60))
            win[n + i] = (float(a), float(a + width))
        else:           # inbound: window on the pick-up
            a = round(rng.uniform(60, T - 60 - direct))
            win[i] = (float(a), float(a + width))
    xy = [(0.0, 0.0)] + pts
    service = [0.0] + [3.0] * (2 * n)
    load = [0] + [1] * n + [-1] * n
    window = [(0.0, horizon)] + win
    return CordeauInstance(K, n, T, Q, L, xy, service, load, window, (0.0, horizon), f"gen{n}-{K}-{seed}")
