"""Dial-a-ride scheduling for care shuttles (pick-up / drop-off with time windows).

Every child trip is a *request*: a pick-up place and window, a drop-off place and window (``dropoff_by``
is the shorthand for a window without an opening time), service (boarding / hand-over) times at both ends,
a maximum ride time and a number of seats. Every shuttle is a *vehicle*: a depot, seats, an availability
window, a range and a maximum route duration (shift or battery). This is the standard dial-a-ride model
(Cordeau 2006). :func:`solve` assigns requests to vehicles and orders the stops with an adaptive large
neighbourhood search (:mod:`agricare.core.planning.darp`, the default), OR-Tools routing, or the greedy
cheapest-insertion baseline.

Schedule semantics (the contract every reported route obeys, checked by :func:`check_solution`):

- a route leaves its start (depot, or the shuttle's current place after a re-plan) no earlier than
  ``available[0]`` (and the shuttle's ``ready_s``) and is back at the depot by ``available[1]``; it
  leaves the start at ``first stop's arrival - travel time`` (it may wait at the start);
- ``arrival = previous stop's start + its service + distance / speed``; a stop starts at any time
  ``start >= arrival`` (waiting is allowed before every stop) inside its window: pick-ups in
  ``pickup_window``, drop-offs in ``dropoff_window``;
- ride time = drop-off start - (pick-up start + pick-up service) <= ``max_ride_s``;
- route duration = back at the depot - leaving the start <= the vehicle's ``max_duration_s``;
- seats in use never exceed ``seats``; pick-up and drop-off of a request on one route, pick-up first;
- ``distance_m`` is the fleet distance including the legs from and back to the depot.

Schedules are computed with the forward-time-slack procedure of Cordeau & Laporte (2003) (leave as late as
useful, delay pick-ups to shorten rides inside the windows); feasibility is decided exactly (see
:func:`agricare.core.planning.darp.evaluate`). A request that cannot be served is listed as unserved with a
reason. Nothing is ever dropped silently.

Run ``python -m agricare.core.planning.dispatch`` for a small demo.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from agricare.core.planning import darp

PICKUP = "pickup"
DROPOFF = "dropoff"
_TOL_S = 1e-6
_TOL_M = 1e-6

#: reason codes used in :class:`Unserved` (the reason string starts with one of these, then ``: detail``)
REASONS = (
    "no_vehicle",
    "no_seat",
    "window_unreachable",
    "dropoff_unreachable",
    "ride_too_long",
    "availability",
    "range",
    "fleet_full",
    "fleet_busy",
    "duration",
)


# ----------------------------------------------------------------------------------------------- model
def _xy(value, name: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected [x, y] in metres, got {value!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{name}: coordinates must be finite, got {value!r}")
    return (x, y)


def _window(value, name: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected [start_s, end_s], got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or b < a:
        raise ValueError(f"{name}: need finite start <= end, got {value!r}")
    return (a, b)


def _finite(value, name: str, *, minimum: float = 0.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(v) or v < minimum:
        raise ValueError(f"{name}: must be finite and >= {minimum}, got {value!r}")
    return v


@dataclass(frozen=True)
class Vehicle:
    """A shuttle.

    Attributes
    ----------
    vehicle_id : str
    depot_xy : (float, float)
        Depot in the map frame, m. Routes start (unless re-planned) and end here.
    seats : int
        Passenger seats.
    available_s : (float, float)
        Leave the depot no earlier than ``available_s[0]``, back by ``available_s[1]`` (s).
    range_m : float
        Maximum route length, m (``inf`` = unlimited).
    max_duration_s : float
        Maximum route duration (leave the start .. back at the depot), s (``inf`` = unlimited).
    """

    vehicle_id: str
    depot_xy: tuple[float, float]
    seats: int
    available_s: tuple[float, float]
    range_m: float = math.inf
    max_duration_s: float = math.inf

    def __post_init__(self):
        if not self.vehicle_id:
            raise ValueError("vehicle_id: must not be empty")
        object.__setattr__(self, "depot_xy", _xy(self.depot_xy, f"vehicle {self.vehicle_id}: depot"))
        object.__setattr__(
            self, "available_s", _window(self.available_s, f"vehicle {self.vehicle_id}: available")
        )
        if int(self.seats) != self.seats or self.seats < 0:
            raise ValueError(f"vehicle {self.vehicle_id}: seats must be an integer >= 0, got {self.seats!r}")
        object.__setattr__(self, "seats", int(self.seats))
        if not (self.range_m > 0):
            raise ValueError(f"vehicle {self.vehicle_id}: range_m must be > 0, got {self.range_m!r}")
        object.__setattr__(self, "range_m", float(self.range_m))
        if not (float(self.max_duration_s) > 0):
            raise ValueError(f"vehicle {self.vehicle_id}: max_duration_s must be > 0, got {self.max_duration_s!r}")
        object.__setattr__(self, "max_duration_s", float(self.max_duration_s))


@dataclass(frozen=True)
class Request:
    """One child trip.

    Attributes
    ----------
    request_id : str
    pickup_xy, dropoff_xy : (float, float)
        Places in the map frame, m.
    pickup_window_s : (float, float)
        Pick-up service must start inside this window, s.
    dropoff_by_s : float
        Latest drop-off start, s (end of the drop-off window).
    service_s : float
        Boarding time at the pick-up and hand-over time at the drop-off, s (default of both below).
    max_ride_s : float
        Maximum time on board (drop-off start - pick-up end), s.
    passengers : int
        Seats taken (1 for one child).
    dropoff_open_s : float
        Earliest drop-off start, s (start of the drop-off window; ``-inf``: none).
    pickup_service_s, dropoff_service_s : float, optional
        Service time at each end, s (None: ``service_s``).
    """

    request_id: str
    pickup_xy: tuple[float, float]
    dropoff_xy: tuple[float, float]
    pickup_window_s: tuple[float, float]
    dropoff_by_s: float
    service_s: float = 0.0
    max_ride_s: float = math.inf
    passengers: int = 1
    dropoff_open_s: float = -math.inf
    pickup_service_s: float | None = None
    dropoff_service_s: float | None = None

    @property
    def dropoff_window_s(self) -> tuple[float, float]:
        return (self.dropoff_open_s, self.dropoff_by_s)

    def __post_init__(self):
        rid = self.request_id
        if not rid:
            raise ValueError("request_id: must not be empty")
        object.__setattr__(self, "pickup_xy", _xy(self.pickup_xy, f"request {rid}: pickup"))
        object.__setattr__(self, "dropoff_xy", _xy(self.dropoff_xy, f"request {rid}: dropoff"))
        object.__setattr__(
            self, "pickup_window_s", _window(self.pickup_window_s, f"request {rid}: pickup_window")
        )
        object.__setattr__(self, "dropoff_by_s", _finite(self.dropoff_by_s, f"request {rid}: dropoff_by"))
        object.__setattr__(self, "service_s", _finite(self.service_s, f"request {rid}: service_s"))
        for key in ("pickup_service_s", "dropoff_service_s"):
            v = getattr(self, key)
            object.__setattr__(self, key, self.service_s if v is None else _finite(v, f"request {rid}: {key}"))
        op = float(self.dropoff_open_s)
        if math.isnan(op) or op == math.inf or op > self.dropoff_by_s:
            raise ValueError(f"request {rid}: dropoff_window: need start <= end, got "
                             f"[{self.dropoff_open_s!r}, {self.dropoff_by_s!r}]")
        object.__setattr__(self, "dropoff_open_s", op)
        if math.isnan(float(self.max_ride_s)) or float(self.max_ride_s) < 0:
            raise ValueError(f"request {rid}: max_ride_s must be >= 0, got {self.max_ride_s!r}")
        object.__setattr__(self, "max_ride_s", float(self.max_ride_s))
        if int(self.passengers) != self.passengers or self.passengers < 1:
            raise ValueError(f"request {rid}: passengers must be an integer >= 1, got {self.passengers!r}")
        object.__setattr__(self, "passengers", int(self.passengers))


@dataclass(frozen=True)
class VehicleState:
    """Where a shuttle is when the day is re-planned.

    Attributes
    ----------
    vehicle_id : str
    xy : (float, float)
        Place the shuttle leaves from (its current place or the stop it is heading to), m.
    ready_s : float
        Earliest time it can leave ``xy``, s.
    onboard : tuple of (request_id, boarded_s)
        Requests whose child is on board, with the time boarding ended (pick-up start + service), s.
        They stay on this shuttle: only their drop-off is planned.
    range_left_m : float or None
        Remaining range, m (None: the vehicle's ``range_m``).
    """

    vehicle_id: str
    xy: tuple[float, float]
    ready_s: float
    onboard: tuple[tuple[str, float], ...] = ()
    range_left_m: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "xy", _xy(self.xy, f"state {self.vehicle_id}: xy"))
        object.__setattr__(self, "ready_s", _finite(self.ready_s, f"state {self.vehicle_id}: ready_s"))
        object.__setattr__(self, "onboard", tuple((str(r), float(t)) for r, t in self.onboard))


@dataclass(frozen=True)
class Problem:
    """A dispatch problem.

    Attributes
    ----------
    speed_mps : float
        Travel speed; travel time = distance / speed.
    vehicles : tuple of Vehicle
    requests : tuple of Request
        Every request the day knows about (including those on board a shuttle, see ``states``).
    states : tuple of VehicleState
        Re-planning state per vehicle (empty for a fresh day).
    distance_fn : callable ((x, y), (x, y)) -> float, optional
        Road distance in m; Euclidean when None (a route planner on a map can be plugged in here).
    """

    speed_mps: float
    vehicles: tuple[Vehicle, ...]
    requests: tuple[Request, ...]
    states: tuple[VehicleState, ...] = ()
    distance_fn: Callable[[tuple[float, float], tuple[float, float]], float] | None = field(
        default=None, compare=False
    )

    def __post_init__(self):
        if not (math.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise ValueError(f"speed_mps: must be finite and > 0, got {self.speed_mps!r}")
        object.__setattr__(self, "vehicles", tuple(self.vehicles))
        object.__setattr__(self, "requests", tuple(self.requests))
        object.__setattr__(self, "states", tuple(self.states))
        _unique([v.vehicle_id for v in self.vehicles], "vehicle id")
        _unique([r.request_id for r in self.requests], "request id")
        vids = {v.vehicle_id for v in self.vehicles}
        rids = {r.request_id for r in self.requests}
        seen_onboard: set[str] = set()
        for s in self.states:
            if s.vehicle_id not in vids:
                raise ValueError(f"states: unknown vehicle {s.vehicle_id!r}")
            for rid, _ in s.onboard:
                if rid not in rids:
                    raise ValueError(f"states: {s.vehicle_id} carries unknown request {rid!r}")
                if rid in seen_onboard:
                    raise ValueError(f"states: request {rid!r} on board two shuttles")
                seen_onboard.add(rid)
        _unique([s.vehicle_id for s in self.states], "state vehicle id")

    # -- lookups (cached: the problem is immutable)
    def _cache(self) -> dict:
        c = self.__dict__.get("_c")
        if c is None:
            c = {
                "rmap": {r.request_id: r for r in self.requests},
                "vmap": {v.vehicle_id: v for v in self.vehicles},
                "smap": {s.vehicle_id: s for s in self.states},
                "onboard": {rid: (s.vehicle_id, t) for s in self.states for rid, t in s.onboard},
            }
            object.__setattr__(self, "_c", c)
        return c

    def vehicle(self, vehicle_id: str) -> Vehicle:
        return self._cache()["vmap"][vehicle_id]

    def request(self, request_id: str) -> Request:
        return self._cache()["rmap"][request_id]

    def _request_map(self) -> dict[str, Request]:
        return self._cache()["rmap"]

    def state(self, vehicle_id: str) -> VehicleState | None:
        return self._cache()["smap"].get(vehicle_id)

    def onboard(self) -> dict[str, tuple[str, float]]:
        """Map request id -> (vehicle id, boarded_s) for children already on board."""
        return dict(self._cache()["onboard"])

    def open_requests(self) -> list[Request]:
        """Requests still to be picked up."""
        ob = self._cache()["onboard"]
        return [r for r in self.requests if r.request_id not in ob]

    # -- metric
    def distance_m(self, a: Sequence[float], b: Sequence[float]) -> float:
        if self.distance_fn is not None:
            return float(self.distance_fn(tuple(a), tuple(b)))
        return math.hypot(b[0] - a[0], b[1] - a[1])

    def start_of(self, vehicle: Vehicle) -> tuple[tuple[float, float], float, float]:
        """Return (start_xy, earliest departure s, range limit m) of a vehicle."""
        s = self.state(vehicle.vehicle_id)
        if s is None:
            return vehicle.depot_xy, vehicle.available_s[0], vehicle.range_m
        rng = vehicle.range_m if s.range_left_m is None else float(s.range_left_m)
        return s.xy, max(vehicle.available_s[0], s.ready_s), rng

    # -- I/O
    @classmethod
    def from_dict(cls, data: Mapping) -> Problem:
        """Build from the REQUESTS.yaml structure (``speed_mps``, ``vehicles``, ``requests``)."""
        if not isinstance(data, Mapping):
            raise ValueError("top level: expected a mapping with speed_mps, vehicles, requests")
        unknown = set(data) - {"speed_mps", "vehicles", "requests"}
        if unknown:
            raise ValueError(f"top level: unknown key(s) {sorted(unknown)} (maps are not supported here)")
        for key in ("speed_mps", "vehicles", "requests"):
            if key not in data:
                raise ValueError(f"top level: missing {key!r}")
        vehicles = []
        for i, v in enumerate(data["vehicles"] or []):
            name = f"vehicles[{i}]"
            _keys(v, name, {"id", "depot", "seats", "available"}, {"range_m", "max_duration_s"})
            vehicles.append(
                Vehicle(str(v["id"]), v["depot"], v["seats"], v["available"], float(v.get("range_m", math.inf)),
                        float(v.get("max_duration_s", math.inf)))
            )
        requests = []
        for i, r in enumerate(data["requests"] or []):
            name = f"requests[{i}]"
            _keys(r, name, {"id", "pickup", "dropoff", "pickup_window"},
                  {"dropoff_by", "dropoff_window", "service_s", "pickup_service_s", "dropoff_service_s",
                   "max_ride_s", "passengers"} | set(META_KEYS))
            if ("dropoff_by" in r) == ("dropoff_window" in r):
                raise ValueError(f"{name}: give exactly one of dropoff_window [a, b] or dropoff_by b")
            if "dropoff_window" in r:
                d_open, d_by = _window(r["dropoff_window"], f"{name}: dropoff_window")
            else:
                d_open, d_by = -math.inf, r["dropoff_by"]
            requests.append(
                Request(
                    str(r["id"]), r["pickup"], r["dropoff"], r["pickup_window"], d_by,
                    float(r.get("service_s", 0.0)), float(r.get("max_ride_s", math.inf)),
                    r.get("passengers", 1), d_open, r.get("pickup_service_s"), r.get("dropoff_service_s"),
                )
            )
        return cls(_finite(data["speed_mps"], "speed_mps"), tuple(vehicles), tuple(requests))


#: optional per-request metadata accepted in REQUESTS.yaml and ignored by the solver (see :func:`request_meta`)
META_KEYS = ("child", "guardians", "pickup_place", "dropoff_place", "pickup_marker", "dropoff_marker")


def request_meta(data: Mapping) -> dict[str, dict]:
    """Per-request metadata (child, guardians, places, markers) of a REQUESTS.yaml structure."""
    return {str(r["id"]): {k: r[k] for k in META_KEYS if k in r} for r in data.get("requests") or []}


def _keys(d, name, required, optional):
    if not isinstance(d, Mapping):
        raise ValueError(f"{name}: expected a mapping, got {d!r}")
    missing = required - set(d)
    if missing:
        raise ValueError(f"{name}: missing {sorted(missing)}")
    unknown = set(d) - required - optional
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {sorted(unknown)}")


def _unique(ids, what):
    seen = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} {i!r}")
        seen.add(i)


@dataclass(frozen=True)
class Stop:
    """One stop of a route (times in s, place in the map frame in m)."""

    request_id: str
    action: str
    arrival_s: float
    start_s: float
    xy: tuple[float, float]

    def to_json(self) -> dict:
        return {
            "request": self.request_id,
            "action": self.action,
            "arrival_s": float(self.arrival_s),
            "start_s": float(self.start_s),
            "xy": [float(self.xy[0]), float(self.xy[1])],
        }


@dataclass(frozen=True)
class Unserved:
    request_id: str
    reason: str

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass
class Solution:
    """Routes per vehicle (every vehicle has a list, possibly empty) and the unserved requests."""

    routes: dict[str, list[Stop]]
    unserved: list[Unserved]
    distance_m: float
    solve_ms: float = 0.0
    method: str = ""
    warnings: list[str] = field(default_factory=list)
    ride_s: dict[str, float] = field(default_factory=dict)
    duration_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {
            "routes": {vid: [s.to_json() for s in stops] for vid, stops in self.routes.items()},
            "unserved": [{"request": u.request_id, "reason": u.reason} for u in self.unserved],
            "distance_m": float(self.distance_m),
            "ride_s": {k: float(v) for k, v in self.ride_s.items()},
            "duration_s": {k: float(v) for k, v in self.duration_s.items()},
            "solve_ms": float(round(self.solve_ms, 3)),
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> Solution:
        routes = {
            str(vid): [
                Stop(str(s["request"]), str(s["action"]), float(s["arrival_s"]), float(s["start_s"]),
                     (float(s["xy"][0]), float(s["xy"][1])))
                for s in stops
            ]
            for vid, stops in data["routes"].items()
        }
        unserved = [Unserved(str(u["request"]), str(u["reason"])) for u in data.get("unserved", [])]
        return cls(routes, unserved, float(data["distance_m"]), float(data.get("solve_ms", 0.0)),
                   warnings=list(data.get("warnings", [])),
                   ride_s={str(k): float(v) for k, v in (data.get("ride_s") or {}).items()},
                   duration_s={str(k): float(v) for k, v in (data.get("duration_s") or {}).items()})

    def served(self) -> set[str]:
        return {s.request_id for stops in self.routes.values() for s in stops}

    def route_of(self, request_id: str) -> str | None:
        for vid, stops in self.routes.items():
            if any(s.request_id == request_id for s in stops):
                return vid
        return None


# ------------------------------------------------------------------------------------- exact schedule
@dataclass
class RouteSchedule:
    """Exact schedule of one route: stops, distance (incl. depot legs), leave / return times, violations."""

    stops: list[Stop]
    distance_m: float
    depart_s: float
    return_s: float
    violations: list[str]
    ride_s: dict[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def duration_s(self) -> float:
        return self.return_s - self.depart_s


class _Model:
    """The problem as a flat dial-a-ride instance (:class:`darp.Instance`) and the way back to ids.

    Request ``j`` of ``reqs`` is pick-up node ``j`` and drop-off node ``n + j``. Children on board are
    requests pinned to their shuttle (only the drop-off is routed; its window end includes the ride limit).
    """

    def __init__(self, problem: Problem, requests: Iterable[Request] | None = None):
        rmap = problem._request_map()
        onboard = problem.onboard()
        self.problem = problem
        self.vehicles = list(problem.vehicles)
        reqs = list(problem.open_requests() if requests is None else requests)
        reqs = [r for r in reqs if r.request_id not in onboard]
        ob = [(rmap[rid], vid, t) for rid, (vid, t) in onboard.items()]
        self.reqs = reqs + [r for r, _, _ in ob]
        self.index = {r.request_id: j for j, r in enumerate(self.reqs)}
        n, K = len(self.reqs), len(self.vehicles)
        self.n, self.K = n, K
        vidx = {v.vehicle_id: k for k, v in enumerate(self.vehicles)}
        starts = [problem.start_of(v) for v in self.vehicles]
        xy = ([r.pickup_xy for r in self.reqs] + [r.dropoff_xy for r in self.reqs]
              + [s[0] for s in starts] + [v.depot_xy for v in self.vehicles])
        N = len(xy)
        if problem.distance_fn is None:
            P = np.asarray(xy, dtype=float).reshape(N, 2)
            dist = np.hypot(P[:, None, 0] - P[None, :, 0], P[:, None, 1] - P[None, :, 1])
        else:
            dist = np.array([[0.0 if a == b else problem.distance_m(xy[a], xy[b]) for b in range(N)]
                             for a in range(N)]).reshape(N, N)
        tt = dist / problem.speed_mps
        e, lw, sv = np.zeros(N), np.zeros(N), np.zeros(N)
        q = np.zeros(N, dtype=np.int64)
        ride = np.zeros(n)
        for j, r in enumerate(self.reqs):
            e[j], lw[j] = r.pickup_window_s
            e[n + j], lw[n + j] = r.dropoff_window_s
            sv[j], sv[n + j] = r.pickup_service_s, r.dropoff_service_s
            q[j], q[n + j] = r.passengers, -r.passengers
            ride[j] = r.max_ride_s
        for k, veh in enumerate(self.vehicles):
            _, earliest, _ = starts[k]
            e[2 * n + k], lw[2 * n + k] = earliest, max(earliest, veh.available_s[1])
            e[2 * n + K + k], lw[2 * n + K + k] = -math.inf, veh.available_s[1]
        pinned = [-1] * n
        start_load = [0] * K
        for r, vid, boarded in ob:
            j = self.index[r.request_id]
            k = vidx[vid]
            pinned[j] = k
            start_load[k] += r.passengers
            lw[n + j] = min(r.dropoff_by_s, boarded + r.max_ride_s)
            e[j], lw[j], ride[j] = -math.inf, math.inf, math.inf
        self.inst = darp.Instance(
            n, K, dist, tt, e, lw, sv, q, ride, [v.seats for v in self.vehicles],
            [v.max_duration_s for v in self.vehicles], [s[2] for s in starts], start_load, pinned,
            [r.request_id for r in self.reqs])
        self.warnings: list[str] = []
        # children on board are always carried: a drop-off that cannot be on time is kept (late) and reported
        for k, base in enumerate(darp.base_routes(self.inst)):
            if base and darp.evaluate(self.inst, k, base) is None:
                for x in base:
                    self.inst.l[x] = math.inf
                    self.inst.Lw[x] = math.inf
                    self.warnings.append(f"{self.reqs[x - n].request_id}: on board of {self.vehicles[k].vehicle_id}, "
                                         "cannot be dropped off inside its window and ride limit (carried late)")

    def nodes(self, seq: Sequence[tuple[str, str]]) -> list[int]:
        return [self.index[rid] + (0 if action == PICKUP else self.n) for rid, action in seq]

    def seq(self, nodes: Sequence[int]) -> list[tuple[str, str]]:
        n = self.n
        return [(self.reqs[x].request_id, PICKUP) if x < n else (self.reqs[x - n].request_id, DROPOFF) for x in nodes]

    def schedule(self, k: int, nodes: Sequence[int]) -> RouteSchedule:
        """Exact schedule (feasible) or the earliest-time simulation with its violations."""
        nodes = list(nodes)
        veh = self.vehicles[k]
        sch = darp.evaluate(self.inst, k, nodes, full=True)
        n = self.n
        if sch is not None:
            stops, rides = [], {}
            for p, x in enumerate(nodes, start=1):
                req = self.reqs[x if x < n else x - n]
                stops.append(Stop(req.request_id, PICKUP if x < n else DROPOFF, sch.arrival[p], sch.start[p],
                                  req.pickup_xy if x < n else req.dropoff_xy))
            pos = {(s.request_id, s.action): s for s in stops}
            for (rid, action), s in pos.items():
                if action == DROPOFF and (rid, PICKUP) in pos:
                    p = pos[(rid, PICKUP)]
                    rides[rid] = s.start_s - (p.start_s + self.problem.request(rid).pickup_service_s)
            return RouteSchedule(stops, sch.cost, sch.start[0], sch.arrival[-1], [], rides)
        return self._simulate(k, veh, nodes)

    def _simulate(self, k: int, veh: Vehicle, nodes: list[int]) -> RouteSchedule:
        inst, n = self.inst, self.n
        vid = veh.vehicle_id
        start = inst.start(k)
        t = inst.E[start]
        depart = t
        prev, serv = start, 0.0
        load = inst.start_load[k]
        dist = 0.0
        viol, stops = [], []
        boarded: dict[str, float] = {}
        for x in nodes:
            req = self.reqs[x if x < n else x - n]
            rid = req.request_id
            arrival = t + serv + inst.T[prev][x]
            dist += inst.D[prev][x]
            if x < n:
                a, b = req.pickup_window_s
                st = max(arrival, a)
                if st > b + _TOL_S:
                    viol.append(f"{rid}: pick-up starts {st:.3f} s after window end {b} s")
                load += req.passengers
                if load > veh.seats:
                    viol.append(f"{rid}: {load} passengers on {vid} with {veh.seats} seats")
                boarded[rid] = st + req.pickup_service_s
                stops.append(Stop(rid, PICKUP, arrival, st, req.pickup_xy))
                serv = req.pickup_service_s
            else:
                a, b = req.dropoff_window_s
                st = max(arrival, a)
                if st > inst.Lw[x] + _TOL_S:
                    viol.append(f"{rid}: drop-off starts {st:.3f} s after dropoff_by {b} s")
                if rid in boarded and st - boarded[rid] > req.max_ride_s + _TOL_S:
                    viol.append(f"{rid}: ride {st - boarded[rid]:.3f} s exceeds max_ride_s {req.max_ride_s} s")
                load -= req.passengers
                stops.append(Stop(rid, DROPOFF, arrival, st, req.dropoff_xy))
                serv = req.dropoff_service_s
            t, prev = st, x
        end = inst.end(k)
        ret = t + serv + inst.T[prev][end]
        dist += inst.D[prev][end]
        if ret > veh.available_s[1] + _TOL_S:
            viol.append(f"{vid}: back at depot {ret:.3f} s after availability end {veh.available_s[1]} s")
        if dist > inst.max_dist[k] + _TOL_M:
            viol.append(f"{vid}: route {dist:.1f} m exceeds range {inst.max_dist[k]:.1f} m")
        if ret - depart > veh.max_duration_s + _TOL_S:
            viol.append(f"{vid}: route duration {ret - depart:.1f} s exceeds max_duration_s {veh.max_duration_s} s")
        if not viol:  # times alone fit but not together (ride limits need waiting that breaks a window)
            viol.append(f"{vid}: no schedule meets every window, ride limit and the duration together")
        return RouteSchedule(stops, dist, depart, ret, viol)


def _model(problem: Problem, requests: Iterable[Request] | None = None) -> _Model:
    key = ("model", None if requests is None else tuple(r.request_id for r in requests))
    c = problem._cache()
    m = c.get(key)
    if m is None:
        m = _Model(problem, requests)
        c[key] = m
    return m


def schedule_route(problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]]) -> RouteSchedule:
    """Exact schedule of a stop sequence (forward time slack), or its earliest-time simulation with the
    violations when no schedule meets every rule.

    Parameters
    ----------
    seq : sequence of (request_id, action)
        ``action`` is ``"pickup"`` or ``"dropoff"``.
    """
    m = _model(problem)
    k = next(i for i, v in enumerate(m.vehicles) if v.vehicle_id == vehicle_id)
    for _rid, action in seq:
        if action not in (PICKUP, DROPOFF):
            raise ValueError(f"unknown action {action!r}")
    return m.schedule(k, m.nodes(seq))


best_schedule = schedule_route


def route_feasible(problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]]) -> bool:
    """True if some schedule makes the stop sequence feasible."""
    m = _model(problem)
    k = next(i for i, v in enumerate(m.vehicles) if v.vehicle_id == vehicle_id)
    return darp.evaluate(m.inst, k, m.nodes(seq)) is not None


# -------------------------------------------------------------------------------------------- checker
def check_solution(problem: Problem, solution: Solution | Mapping) -> list[str]:
    """Independently verify a solution against the problem; return a list of violations (empty = valid).

    Checks every rule of the module docstring from the reported numbers (not by re-solving): arrivals
    follow the formulas, starts inside both windows and not before arrival, ride times, seats, route
    duration, depot legs, availability, range, distance total, and that every request is either served
    exactly once or listed as unserved with a reason.
    """
    sol = Solution.from_json(solution) if isinstance(solution, Mapping) else solution
    out: list[str] = []
    rmap = problem._request_map()
    vmap = {v.vehicle_id: v for v in problem.vehicles}
    onboard = problem.onboard()
    for vid in sol.routes:
        if vid not in vmap:
            out.append(f"route for unknown vehicle {vid!r}")
    for vid in vmap:
        if vid not in sol.routes:
            out.append(f"vehicle {vid} has no route list")
    total = 0.0
    count: dict[str, int] = {}
    for vid, stops in sol.routes.items():
        veh = vmap.get(vid)
        if veh is None:
            continue
        start_xy, earliest, range_m = problem.start_of(veh)
        pos, prev_start, prev_serv = start_xy, None, 0.0
        depart = earliest
        load = sum(rmap[r].passengers for r, (v, _) in onboard.items() if v == vid)
        boarded = {r: t for r, (v, t) in onboard.items() if v == vid}
        dropped: set[str] = set()
        dist = 0.0
        for k, st in enumerate(stops):
            where = f"{vid}[{k}] {st.request_id} {st.action}"
            req = rmap.get(st.request_id)
            if req is None:
                out.append(f"{where}: unknown request")
                continue
            count[st.request_id] = count.get(st.request_id, 0) + 1
            if st.action not in (PICKUP, DROPOFF):
                out.append(f"{where}: unknown action")
                continue
            want_xy = req.pickup_xy if st.action == PICKUP else req.dropoff_xy
            if math.dist(st.xy, want_xy) > 1e-9:
                out.append(f"{where}: xy {list(st.xy)} is not the request's {st.action} place {list(want_xy)}")
            d = problem.distance_m(pos, want_xy)
            dist += d
            if prev_start is None:
                depart = st.arrival_s - d / problem.speed_mps
                if depart < earliest - _TOL_S:
                    out.append(f"{where}: leaves the start at {depart} s, before {earliest} s")
            else:
                expect = prev_start + prev_serv + d / problem.speed_mps
                if abs(st.arrival_s - expect) > _TOL_S:
                    out.append(f"{where}: arrival {st.arrival_s} s, formula gives {expect} s")
            if st.start_s < st.arrival_s - _TOL_S:
                out.append(f"{where}: starts at {st.start_s} s before arriving at {st.arrival_s} s")
            a, b = req.pickup_window_s if st.action == PICKUP else req.dropoff_window_s
            if st.start_s < a - _TOL_S:
                out.append(f"{where}: start {st.start_s} s before window start {a} s")
            if st.start_s > b + _TOL_S:
                out.append(f"{where}: start {st.start_s} s after window end {b} s")
            if st.action == PICKUP:
                if st.request_id in boarded or st.request_id in onboard:
                    out.append(f"{where}: picked up twice (or already on board)")
                boarded[st.request_id] = st.start_s + req.pickup_service_s
                load += req.passengers
                if load > veh.seats:
                    out.append(f"{where}: {load} passengers > {veh.seats} seats")
                serv = req.pickup_service_s
            else:
                if st.request_id not in boarded:
                    out.append(f"{where}: drop-off before (or without) its pick-up on this route")
                elif st.request_id in dropped:
                    out.append(f"{where}: dropped off twice")
                else:
                    ride = st.start_s - boarded[st.request_id]
                    if ride > req.max_ride_s + _TOL_S:
                        out.append(f"{where}: ride {ride} s > max_ride_s {req.max_ride_s} s")
                    rep = sol.ride_s.get(st.request_id)
                    if rep is not None and st.request_id not in onboard and abs(rep - ride) > 1e-6:
                        out.append(f"{where}: reported ride {rep} s, stops give {ride} s")
                    load -= req.passengers
                dropped.add(st.request_id)
                serv = req.dropoff_service_s
            pos, prev_start, prev_serv = want_xy, st.start_s, serv
        d = problem.distance_m(pos, veh.depot_xy)
        if stops or pos != veh.depot_xy:
            dist += d
        if prev_start is not None:  # an idle shuttle has no route to check
            ret = prev_start + prev_serv + d / problem.speed_mps
            if ret > veh.available_s[1] + _TOL_S:
                out.append(f"{vid}: back at the depot {ret} s after availability end {veh.available_s[1]} s")
            if ret - depart > veh.max_duration_s + _TOL_S:
                out.append(f"{vid}: route duration {ret - depart} s > max_duration_s {veh.max_duration_s} s")
            rep = sol.duration_s.get(vid)
            if rep is not None and abs(rep - (ret - depart)) > 1e-6:
                out.append(f"{vid}: reported duration {rep} s, stops give {ret - depart} s")
        if dist > range_m + _TOL_M:
            out.append(f"{vid}: {dist} m exceeds range {range_m} m")
        for rid in set(boarded) - dropped:
            out.append(f"{vid}: {rid} picked up but never dropped off")
        total += dist
    unserved_ids = [u.request_id for u in sol.unserved]
    for u in sol.unserved:
        if u.request_id not in rmap:
            out.append(f"unserved: unknown request {u.request_id!r}")
        if not u.reason.strip():
            out.append(f"unserved {u.request_id}: empty reason")
        if u.request_id in count:
            out.append(f"{u.request_id}: both served and unserved")
        if u.request_id in onboard:
            out.append(f"{u.request_id}: on board but listed unserved")
    if len(set(unserved_ids)) != len(unserved_ids):
        out.append("unserved: duplicate entries")
    for rid in rmap:
        want = 1 if rid in onboard else 2
        got = count.get(rid, 0)
        if got == 0 and rid not in unserved_ids:
            out.append(f"{rid}: neither served nor listed unserved (dropped silently)")
        elif got and got != want:
            out.append(f"{rid}: {got} stops, expected {want}")
    if abs(total - sol.distance_m) > 1e-6 * max(1.0, total):
        out.append(f"distance_m {sol.distance_m} != sum of legs {total}")
    return out


# ------------------------------------------------------------------------------------ pre-check/reasons
def _single_reason(problem: Problem, req: Request) -> str | None:
    """Why ``req`` cannot be served even alone on any vehicle (None if some vehicle can)."""
    if not problem.vehicles:
        return "no_vehicle: no shuttle in service"
    max_seats = max(v.seats for v in problem.vehicles)
    if req.passengers > max_seats:
        return f"no_seat: needs {req.passengers} seat(s), the largest shuttle has {max_seats}"
    direct = problem.distance_m(req.pickup_xy, req.dropoff_xy) / problem.speed_mps
    if direct > req.max_ride_s + _TOL_S:
        return f"ride_too_long: direct ride {direct:.1f} s exceeds max_ride_s {req.max_ride_s:g} s"
    m = _model(problem)
    inst = m.inst
    j = m.index[req.request_id]
    ins = darp.Inserter(inst, max_checks=10**6)
    best: list[str] | None = None
    for k, veh in enumerate(m.vehicles):
        if veh.seats < req.passengers:
            continue
        base = darp.base_routes(inst)[k]
        if ins.best(k, base, j) is not None:
            return None
        sch = m.schedule(k, base + [j, m.n + j])
        mine = [v for v in sch.violations if v.startswith(f"{req.request_id}:") or v.startswith(veh.vehicle_id)]
        if best is None or len(mine) < len(best):
            best = mine or sch.violations
    assert best is not None
    return _classify(best)


def _classify(violations: list[str]) -> str:
    text = "; ".join(violations)
    if "pick-up starts" in text:
        return "window_unreachable: " + text
    if "drop-off starts" in text:
        return "dropoff_unreachable: " + text
    if "ride" in text and "exceeds max_ride_s" in text:
        return "ride_too_long: " + text
    if "passengers on" in text:
        return "no_seat: " + text
    if "availability end" in text:
        return "availability: " + text
    if "range" in text:
        return "range: " + text
    if "max_duration_s" in text:
        return "duration: " + text
    return "fleet_busy: " + text


def _diagnose(m: _Model, routes: list[list[int]], j: int) -> str:
    """Reason for a request the search could not place (it fits alone)."""
    roomy = replace(m.inst, cap=[10**9] * m.K)
    ins = darp.Inserter(roomy, max_checks=10**6)
    if any(ins.best(k, routes[k], j) is not None for k in range(m.K)):
        return "no_seat: every shuttle that could serve it in time is full"
    return "fleet_busy: no shuttle's schedule has room for it inside its windows"


def _finish(problem: Problem, m: _Model, routes: list[list[int]], unserved: list[Unserved], t0: float,
            method: str, warnings: list[str] | None = None) -> Solution:
    out_routes, total, rides, durations = {}, 0.0, {}, {}
    warnings = list(m.warnings) + list(warnings or [])
    for k, veh in enumerate(m.vehicles):
        nodes = routes[k] if k < len(routes) else []
        sch = m.schedule(k, nodes)
        if sch.violations and nodes:
            warnings.extend(sch.violations)
        out_routes[veh.vehicle_id] = sch.stops
        rides.update(sch.ride_s)
        if nodes or problem.state(veh.vehicle_id):
            total += sch.distance_m
            if nodes:
                durations[veh.vehicle_id] = sch.duration_s
    order = {r.request_id: k for k, r in enumerate(problem.requests)}
    unserved = sorted(unserved, key=lambda u: order.get(u.request_id, 1 << 30))
    return Solution(out_routes, unserved, total, (time.perf_counter() - t0) * 1e3, method, warnings,
                    rides, durations)


def _prepare(problem: Problem) -> tuple[list[Unserved], list[Request]]:
    unserved, ok = [], []
    for req in problem.open_requests():
        reason = _single_reason(problem, req)
        if reason:
            unserved.append(Unserved(req.request_id, reason))
        else:
            ok.append(req)
    return unserved, ok


def _greedy_routes(m: _Model, requests: list[Request]) -> darp.DarpSolution:
    order = sorted(requests, key=lambda r: (r.pickup_window_s[1], r.pickup_window_s[0]))
    return darp.greedy(m.inst, [m.index[r.request_id] for r in order])


def solve_greedy(problem: Problem) -> Solution:
    """Cheapest feasible insertion baseline.

    Requests are taken by pick-up window end (then start); each goes where it adds the least distance
    while keeping every route feasible (exact schedule), else it is listed as unserved with a reason.
    """
    t0 = time.perf_counter()
    unserved, ok = _prepare(problem)
    m = _model(problem)
    g = _greedy_routes(m, ok)
    for j in g.unserved:
        unserved.append(Unserved(m.reqs[j].request_id, _diagnose(m, g.routes, j)))
    return _finish(problem, m, g.routes, unserved, t0, "greedy")


# ------------------------------------------------------------------------------------------- OR-Tools
#: solver time unit: 0.1 s (travel times rounded up, windows rounded inwards)
TIME_UNITS_PER_S = 10


def _up(t_s: float) -> int:
    return math.ceil(t_s * TIME_UNITS_PER_S - 1e-6)


def _down(t_s: float) -> int:
    return math.floor(t_s * TIME_UNITS_PER_S + 1e-6)


def auto_time_limit_s(n_requests: int) -> float:
    """Default OR-Tools time limit: 0.2 s + 85 ms per request, at most 9 s (100 requests -> 8.7 s)."""
    return min(9.0, 0.2 + 0.085 * n_requests)


def solve(problem: Problem, *, time_limit_s: float | None = None, method: str = "alns", seed: int = 0,
          iterations: int | None = None, seed_with_greedy: bool | None = None, keep_best: bool = True,
          solution_limit: int | None = None) -> Solution:
    """Solve with the adaptive large neighbourhood search (``"alns"``), OR-Tools routing (``"ortools"``)
    or the greedy baseline (``"greedy"``).

    Parameters
    ----------
    time_limit_s : float, optional
        ALNS: a cap on the search time (default 10 s); the result is deterministic for a given ``seed`` and
        ``iterations`` unless the cap is reached first. OR-Tools: its search time limit (default
        :func:`auto_time_limit_s`).
    seed, iterations : ALNS random seed and iteration budget (default
        :func:`agricare.core.planning.darp.default_iterations`).
    seed_with_greedy : bool, optional
        OR-Tools only: also search from the greedy routes (default: up to 40 requests).
    keep_best : bool
        OR-Tools only: return the greedy baseline when it serves more requests or is shorter.
    """
    if method == "greedy":
        return solve_greedy(problem)
    if method == "ortools":
        return _solve_ortools(problem, time_limit_s, seed_with_greedy, keep_best, solution_limit)
    if method != "alns":
        raise ValueError(f"method: expected 'alns', 'ortools' or 'greedy', got {method!r}")
    t0 = time.perf_counter()
    unserved, ok = _prepare(problem)
    m = _model(problem)
    if not m.vehicles:
        return _finish(problem, m, [], unserved, t0, "alns")
    g = _greedy_routes(m, ok)
    skip = {m.index[u.request_id] for u in unserved}
    res = darp.alns(m.inst, seed=seed, iterations=iterations,
                    time_limit_s=10.0 if time_limit_s is None else time_limit_s, initial=[g], skip=skip)
    best = res.solution
    for j in best.unserved:
        if j not in skip:
            unserved.append(Unserved(m.reqs[j].request_id, _diagnose(m, best.routes, j)))
    sol = _finish(problem, m, best.routes, unserved, t0,
                  f"alns(seed {seed}, {res.iterations} iterations, {res.seconds:.2f} s)")
    return sol


def _solve_ortools(problem: Problem, time_limit_s, seed_with_greedy, keep_best, solution_limit) -> Solution:
    t0 = time.perf_counter()
    unserved, requests = _prepare(problem)
    m = _model(problem)
    if not problem.vehicles:
        return _finish(problem, m, [], unserved, t0, "ortools")
    if time_limit_s is None:
        time_limit_s = auto_time_limit_s(len(requests))
    if seed_with_greedy is None:
        seed_with_greedy = len(requests) <= 40
    greedy = solve_greedy(problem) if (seed_with_greedy or keep_best) else None
    found: list[Solution] = []
    if seed_with_greedy:
        seqs = _ortools_routes(problem, requests, time_limit_s / 2, greedy, solution_limit)
        if seqs is not None:
            found.append(_repair(problem, seqs, list(unserved), requests, t0))
        seqs = _ortools_routes(problem, requests, time_limit_s / 2, None, solution_limit)
    else:
        seqs = _ortools_routes(problem, requests, time_limit_s, None, solution_limit)
    if seqs is not None:
        found.append(_repair(problem, seqs, list(unserved), requests, t0))
    if not found:
        if greedy is not None:
            greedy.method = "ortools(no solution: greedy fallback)"
            greedy.solve_ms = (time.perf_counter() - t0) * 1e3
            return greedy
        lost = unserved + [Unserved(r.request_id, "fleet_busy: the routing solver found no solution")
                           for r in requests]
        return _finish(problem, m, darp.base_routes(m.inst), lost, t0, "ortools")
    best = found[0]
    for cand in found[1:]:
        if _better(cand, best):
            best = cand
    if keep_best and greedy is not None and _better(greedy, best):
        best, best.method = greedy, "ortools(greedy kept)"
    best.solve_ms = (time.perf_counter() - t0) * 1e3
    return best


def _ortools_routes(problem: Problem, requests: list[Request], time_limit_s: float,
                    init: Solution | None, solution_limit: int | None = None
                    ) -> dict[str, list[tuple[str, str]]] | None:
    """One OR-Tools search; returns stop sequences per vehicle (None if no solution).

    With ``solution_limit`` the search stops after that many solutions (and at the latest at the time
    limit): the same input then gives the same routes on any machine (a time limit alone does not).
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    vehicles = list(problem.vehicles)
    onboard = problem.onboard()
    rmap = problem._request_map()

    # nodes: per vehicle start, end; per request pickup, dropoff; per on-board child a drop-off
    xy: list[tuple[float, float]] = []
    service: list[float] = []
    kind: list[tuple[str, str] | None] = []
    starts, ends = [], []
    for veh in vehicles:
        sxy, _, _ = problem.start_of(veh)
        starts.append(len(xy))
        xy.append(sxy), service.append(0.0), kind.append(None)
        ends.append(len(xy))
        xy.append(veh.depot_xy), service.append(0.0), kind.append(None)
    pairs = []
    for req in requests:
        p = len(xy)
        xy.append(req.pickup_xy), service.append(req.pickup_service_s), kind.append((req.request_id, PICKUP))
        d = len(xy)
        xy.append(req.dropoff_xy), service.append(req.dropoff_service_s), kind.append((req.request_id, DROPOFF))
        pairs.append((req, p, d))
    ob_nodes = []
    vindex = {v.vehicle_id: k for k, v in enumerate(vehicles)}
    for rid, (vid, boarded_s) in onboard.items():
        n = len(xy)
        req = rmap[rid]
        xy.append(req.dropoff_xy), service.append(req.dropoff_service_s), kind.append((rid, DROPOFF))
        ob_nodes.append((req, n, vindex[vid], boarded_s))
    n_nodes = len(xy)

    speed = problem.speed_mps
    dist_cm = [[0] * n_nodes for _ in range(n_nodes)]
    time_s = [[0] * n_nodes for _ in range(n_nodes)]
    for i in range(n_nodes):
        row_d, row_t = dist_cm[i], time_s[i]
        for j in range(n_nodes):
            if i == j:
                row_t[j] = _up(service[i])
                continue
            dm = problem.distance_m(xy[i], xy[j])
            row_d[j] = math.ceil(dm * 100.0 - 1e-9)
            row_t[j] = _up(service[i] + dm / speed)
    demand = [0] * n_nodes
    for req, p, d in pairs:
        demand[p], demand[d] = req.passengers, -req.passengers
    for req, n, _, _ in ob_nodes:
        demand[n] = -req.passengers

    manager = pywrapcp.RoutingIndexManager(n_nodes, len(vehicles), starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    dist_cb = routing.RegisterTransitMatrix(dist_cm)
    time_cb = routing.RegisterTransitMatrix(time_s)
    seat_cb = routing.RegisterUnaryTransitVector(demand)
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    big = 10**12
    horizon = _up(max(v.available_s[1] for v in vehicles)) + 1
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    ranges = []
    for veh in vehicles:
        _, _, rng = problem.start_of(veh)
        ranges.append(big if math.isinf(rng) else max(0, math.floor(rng * 100.0 + 1e-9)))
    routing.AddDimensionWithVehicleCapacity(dist_cb, 0, ranges, True, "distance")
    routing.AddDimensionWithVehicleCapacity(seat_cb, 0, [v.seats for v in vehicles], False, "seats")
    sdim = routing.GetDimensionOrDie("seats")
    solver = routing.solver()
    for k, veh in enumerate(vehicles):
        _, earliest, _ = problem.start_of(veh)
        lo, hi = _up(earliest), _down(veh.available_s[1])
        tdim.CumulVar(routing.Start(k)).SetRange(min(lo, hi), hi)
        tdim.CumulVar(routing.End(k)).SetRange(0, hi)
        n_on = sum(req.passengers for req, _, vk, _ in ob_nodes if vk == k)
        sdim.CumulVar(routing.Start(k)).SetValue(n_on)
    penalty = 10**9
    for req, p, d in pairs:
        pi, di = manager.NodeToIndex(p), manager.NodeToIndex(d)
        routing.AddPickupAndDelivery(pi, di)
        # same vehicle and order come with AddPickupAndDelivery; both or neither performed:
        solver.Add(routing.ActiveVar(pi) == routing.ActiveVar(di))
        routing.AddDisjunction([pi], penalty)
        routing.AddDisjunction([di], penalty)
        a, b = req.pickup_window_s
        lo, hi = _up(a), _down(b)
        tdim.CumulVar(pi).SetRange(min(lo, hi), hi)  # a window thinner than a unit: exact check decides
        d_lo = _up(req.dropoff_open_s) if math.isfinite(req.dropoff_open_s) else 0
        tdim.CumulVar(di).SetRange(max(0, min(d_lo, _down(req.dropoff_by_s))), _down(req.dropoff_by_s))
        if math.isfinite(req.max_ride_s):
            solver.Add(tdim.CumulVar(di) - tdim.CumulVar(pi)
                       <= _down(req.max_ride_s + req.pickup_service_s))
        too_small = [k for k, v in enumerate(vehicles) if v.seats < req.passengers]
        if too_small:
            routing.VehicleVar(pi).RemoveValues(too_small)
    for k, veh in enumerate(vehicles):  # waiting is allowed anywhere (the slack); the span is the duration
        if math.isfinite(veh.max_duration_s):
            tdim.SetSpanUpperBoundForVehicle(_down(veh.max_duration_s), k)
    for req, n, vk, boarded_s in ob_nodes:
        ni = manager.NodeToIndex(n)
        routing.VehicleVar(ni).SetValue(vk)  # stays on its shuttle (mandatory node: no disjunction)
        ub = min(req.dropoff_by_s, boarded_s + req.max_ride_s)
        # soft: a late on-board child is still carried (and reported), never left out
        tdim.SetCumulVarSoftUpperBound(ni, max(0, _down(ub)), 10**6)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    if len(requests) > 30:  # insert among the nearest 10 % only: a first solution in well under a second
        params.global_cheapest_insertion_first_solution_parameters.neighbors_ratio = 0.1
        params.global_cheapest_insertion_first_solution_parameters.min_neighbors = 10
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    if solution_limit:
        params.solution_limit = int(solution_limit)

    assignment = None
    if init is not None:
        node_of = {kind[i]: i for i in range(n_nodes) if kind[i] is not None}
        init_routes = [[manager.NodeToIndex(node_of[(s.request_id, s.action)])
                        for s in init.routes.get(veh.vehicle_id, []) if (s.request_id, s.action) in node_of]
                       for veh in vehicles]
        routing.CloseModelWithParameters(params)
        start = routing.ReadAssignmentFromRoutes(init_routes, True)
        if start is None:
            return None  # the greedy routes do not fit the integer model (rounding): skip this start
        assignment = routing.SolveFromAssignmentWithParameters(start, params)
    else:
        assignment = routing.SolveWithParameters(params)
    if assignment is None:
        return None
    seqs: dict[str, list[tuple[str, str]]] = {v.vehicle_id: [] for v in vehicles}
    for k, veh in enumerate(vehicles):
        idx = assignment.Value(routing.NextVar(routing.Start(k)))
        while not routing.IsEnd(idx):
            seqs[veh.vehicle_id].append(kind[manager.IndexToNode(idx)])
            idx = assignment.Value(routing.NextVar(idx))
    return seqs


def _better(a: Solution, b: Solution) -> bool:
    """True if ``a`` serves more requests, or as many with less distance, than ``b``."""
    ka, kb = len(a.unserved), len(b.unserved)
    return ka < kb or (ka == kb and a.distance_m < b.distance_m - 1e-6)


def _repair(problem: Problem, seqs, unserved, requests, t0) -> Solution:
    """Re-verify the solver routes with exact times; move what breaks, never drop silently."""
    m = _model(problem)
    inst = m.inst
    n = m.n
    routes = []
    removed: list[int] = []
    for k, veh in enumerate(m.vehicles):
        nodes = m.nodes(seqs.get(veh.vehicle_id, []))
        while darp.evaluate(inst, k, nodes) is None:
            free = [x for x in nodes if x < n and inst.pinned[x] < 0]
            if not free:
                break  # only on-board drop-offs left: kept, reported as warning by _finish
            bad = next((j for j in free if darp.evaluate(inst, k, [x for x in nodes if x not in (j, n + j)])
                        is not None), free[-1])
            nodes = [x for x in nodes if x not in (bad, n + bad)]
            removed.append(bad)
        routes.append(nodes)
    served = {x for r in routes for x in r if x < n}
    for req in requests:
        j = m.index[req.request_id]
        if j not in served and j not in removed:
            removed.append(j)
    ins = darp.Inserter(inst)
    for j in removed:
        best = None
        for k in range(m.K):
            got = ins.best(k, routes[k], j)
            if got is not None and (best is None or got[0] < best[0]):
                best = (got[0], k, got[1])
        if best is None:
            unserved.append(Unserved(m.reqs[j].request_id, _diagnose(m, routes, j)))
        else:
            routes[best[1]] = best[2]
    return _finish(problem, m, routes, unserved, t0, "ortools")


# ----------------------------------------------------------------------------------------- re-planning
def replan(
    problem: Problem,
    *,
    now_s: float,
    states: Mapping[str, VehicleState] | Iterable[VehicleState] = (),
    completed: Iterable[str] = (),
    cancelled: Iterable[str] = (),
    out_of_service: Iterable[str] = (),
    new_requests: Iterable[Request] = (),
) -> Problem:
    """Build the problem for the rest of the day.

    Parameters
    ----------
    now_s : float
        Current time, s. Vehicles without a state leave their depot no earlier than this.
    states : VehicleState per vehicle
        Current place / ready time / children on board. Children on board stay on their shuttle.
    completed : request ids already dropped off (removed).
    cancelled : request ids cancelled (removed; a cancelled child already on board is still dropped off).
    out_of_service : vehicle ids taken out of service. Children on board of such a shuttle become new
        requests picked up where that shuttle stands (rescue), with their original drop-off and deadline.
    new_requests : new (e.g. urgent sick-child) requests.

    Returns
    -------
    Problem
        Solve it with :func:`solve`; its ``states`` carry the on-board children.
    """
    states_map = {s.vehicle_id: s for s in (states.values() if isinstance(states, Mapping) else states)}
    for s in problem.states:
        states_map.setdefault(s.vehicle_id, s)
    gone = set(completed)
    cancel = set(cancelled)
    oos = set(out_of_service)
    vids = {v.vehicle_id for v in problem.vehicles}
    for v in oos:
        if v not in vids:
            raise ValueError(f"out_of_service: unknown vehicle {v!r}")
    onboard_ids = {rid for s in states_map.values() for rid, _ in s.onboard}
    requests = []
    for req in problem.requests:
        if req.request_id in gone:
            continue
        if req.request_id in cancel and req.request_id not in onboard_ids:
            continue
        requests.append(req)
    vehicles, new_states = [], []
    for veh in problem.vehicles:
        st = states_map.get(veh.vehicle_id)
        if veh.vehicle_id in oos:
            if st is not None:
                for rid, _ in st.onboard:
                    k = next(i for i, r in enumerate(requests) if r.request_id == rid)
                    old = requests[k]
                    requests[k] = replace(
                        old, pickup_xy=st.xy,
                        pickup_window_s=(min(now_s, old.dropoff_by_s), max(now_s, old.dropoff_by_s)),
                    )
            continue
        vehicles.append(veh)
        if st is None:
            st = VehicleState(veh.vehicle_id, veh.depot_xy, float(now_s))
        else:
            st = replace(st, ready_s=max(st.ready_s, float(now_s)),
                         onboard=tuple((r, t) for r, t in st.onboard if r not in gone))
        new_states.append(st)
    have = {r.request_id for r in requests}
    for req in new_requests:
        if req.request_id in have:
            raise ValueError(f"new_requests: request {req.request_id!r} already exists")
        requests.append(req)
        have.add(req.request_id)
    return Problem(problem.speed_mps, tuple(vehicles), tuple(requests), tuple(new_states), problem.distance_fn)


def random_problem(n_requests: int, n_vehicles: int, seed: int, *, width_m: float = 300.0,
                   height_m: float = 200.0, speed_mps: float = 2.5, seats: int = 4,
                   day_s: tuple[float, float] = (25200.0, 36000.0)) -> Problem:
    """A seeded random care day in a ``width_m`` x ``height_m`` town (for tests and the benchmark).

    Two thirds of the trips go from a home to one of two nurseries, the rest between random places;
    pick-up windows are 10-20 min wide inside ``day_s``, deadlines leave 5-15 min after the window.
    """
    import random

    rng = random.Random(seed)
    nurseries = [(0.3 * width_m, 0.5 * height_m), (0.75 * width_m, 0.4 * height_m)]

    def place():
        return (round(rng.uniform(0, width_m), 1), round(rng.uniform(0, height_m), 1))

    vehicles = []
    for k in range(n_vehicles):
        depot = (round(0.05 * width_m + 0.9 * width_m * k / max(1, n_vehicles - 1), 1), 5.0)
        vehicles.append(Vehicle(f"s{k + 1}", depot, seats, (day_s[0], day_s[1] + 3600.0), 40000.0))
    requests = []
    for i in range(n_requests):
        pickup = place()
        dropoff = rng.choice(nurseries) if rng.random() < 2 / 3 else place()
        open_s = round(rng.uniform(day_s[0] + 600.0, day_s[1] - 1800.0))
        width = rng.choice([600, 900, 1200])
        direct = math.dist(pickup, dropoff) / speed_mps
        service = rng.choice([30, 45, 60])
        requests.append(Request(
            f"c{i + 1}", pickup, dropoff, (open_s, open_s + width),
            round(open_s + width + service + direct + rng.uniform(300, 900)), service,
            round(max(600.0, 3.0 * direct)),
        ))
    return Problem(speed_mps, tuple(vehicles), tuple(requests))


def problem_from_cordeau(c) -> Problem:
    """A :class:`Problem` from a parsed Cordeau DARP file (:func:`darp.parse_cordeau`).

    Coordinates and times are taken as given (units are the file's, speed 1: travel time = distance, as in
    the literature). Request ids are the pick-up node numbers 1..n; vehicles ``1..K`` with ``Q`` seats and
    the maximum route duration ``T``; the depot windows give the availability.
    """
    n = c.n
    vehicles = tuple(Vehicle(str(k + 1), c.xy[0], c.Q, (c.window[0][0], c.end_window[1]), math.inf, c.T)
                     for k in range(c.K))
    requests = []
    for i in range(1, n + 1):
        requests.append(Request(
            str(i), c.xy[i], c.xy[n + i], c.window[i], c.window[n + i][1], 0.0, c.L, c.load[i],
            c.window[n + i][0], c.service[i], c.service[n + i]))
    return Problem(1.0, vehicles, tuple(requests))


def _demo() -> None:  # pragma: no cover - manual demo
    import json

    prob = Problem.from_dict({
        "speed_mps": 4.0,
        "vehicles": [{"id": "s1", "depot": [0.0, 0.0], "seats": 4, "available": [25200, 64800]}],
        "requests": [{"id": "c1", "pickup": [120.0, 40.0], "dropoff": [500.0, 300.0],
                      "pickup_window": [28800, 29700], "dropoff_by": 30600, "service_s": 60,
                      "max_ride_s": 1200}],
    })
    sol = solve(prob, time_limit_s=0.2)
    print(json.dumps(sol.to_json(), indent=1))
    print("violations:", check_solution(prob, sol))


if __name__ == "__main__":  # pragma: no cover
    _demo()
