"""Dial-a-ride scheduling for care shuttles (pick-up / drop-off with time windows).

Every child trip is a *request*: a pick-up place and window, a drop-off place and a latest arrival, a
service (boarding / hand-over) time and a maximum ride time. Every shuttle is a *vehicle*: a depot,
seats, an availability window and a range. :func:`solve` assigns requests to vehicles and orders the
stops with OR-Tools routing (pick-up and delivery pairs, capacity, time windows, max ride time);
:func:`solve_greedy` is the cheapest-insertion baseline the OR-Tools result is compared against.

Schedule semantics (the contract every reported route obeys, checked by :func:`check_solution`):

- a route leaves its start (depot, or the shuttle's current place after a re-plan) no earlier than
  ``available[0]`` (and the shuttle's ``ready_s``) and is back at the depot by ``available[1]``;
- ``arrival = previous stop's start + its service_s + distance / speed`` (the start "stop" has no
  service); a pick-up starts at ``max(arrival, pickup_window[0])`` and must start by
  ``pickup_window[1]``; a drop-off starts on arrival and must start by ``dropoff_by``;
- ride time = drop-off start - (pick-up start + service_s) <= ``max_ride_s``;
- seats in use never exceed ``seats``; pick-up and drop-off of a request on one route, pick-up first;
- ``distance_m`` is the fleet distance including the legs from and back to the depot.

The solver works on integer seconds and centimetres (travel times rounded up, windows rounded inwards);
the reported times are recomputed exactly from the formulas above in floating point and re-verified, and
a request that would violate its windows after the exact recomputation is re-inserted elsewhere or listed
as unserved with a reason. Nothing is ever dropped silently.

Run ``python -m agricare.core.planning.dispatch`` for a small demo.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

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
    """

    vehicle_id: str
    depot_xy: tuple[float, float]
    seats: int
    available_s: tuple[float, float]
    range_m: float = math.inf

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
        Latest drop-off start, s.
    service_s : float
        Boarding time at the pick-up and hand-over time at the drop-off, s.
    max_ride_s : float
        Maximum time on board (drop-off start - pick-up end), s.
    passengers : int
        Seats taken (1 for one child).
    """

    request_id: str
    pickup_xy: tuple[float, float]
    dropoff_xy: tuple[float, float]
    pickup_window_s: tuple[float, float]
    dropoff_by_s: float
    service_s: float = 0.0
    max_ride_s: float = math.inf
    passengers: int = 1

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
            _keys(v, name, {"id", "depot", "seats", "available"}, {"range_m"})
            vehicles.append(
                Vehicle(str(v["id"]), v["depot"], v["seats"], v["available"], float(v.get("range_m", math.inf)))
            )
        requests = []
        for i, r in enumerate(data["requests"] or []):
            name = f"requests[{i}]"
            _keys(r, name, {"id", "pickup", "dropoff", "pickup_window", "dropoff_by"},
                  {"service_s", "max_ride_s", "passengers"} | set(META_KEYS))
            requests.append(
                Request(
                    str(r["id"]), r["pickup"], r["dropoff"], r["pickup_window"], r["dropoff_by"],
                    float(r.get("service_s", 0.0)), float(r.get("max_ride_s", math.inf)),
                    r.get("passengers", 1),
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

    def to_json(self) -> dict:
        out = {
            "routes": {vid: [s.to_json() for s in stops] for vid, stops in self.routes.items()},
            "unserved": [{"request": u.request_id, "reason": u.reason} for u in self.unserved],
            "distance_m": float(self.distance_m),
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
                   warnings=list(data.get("warnings", [])))

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
    """Exact schedule of one route: stops, distance (incl. depot legs), return time and violations."""

    stops: list[Stop]
    distance_m: float
    depart_s: float
    return_s: float
    violations: list[str]

    @property
    def feasible(self) -> bool:
        return not self.violations


def schedule_route(
    problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]], depart_s: float | None = None
) -> RouteSchedule:
    """Compute the exact schedule of a stop sequence with the module's semantics.

    Parameters
    ----------
    seq : sequence of (request_id, action)
        ``action`` is ``"pickup"`` or ``"dropoff"``.
    depart_s : float, optional
        Departure from the start place; default the earliest allowed.
    """
    veh = problem.vehicle(vehicle_id)
    start_xy, earliest, range_m = problem.start_of(veh)
    depart = earliest if depart_s is None else float(depart_s)
    rmap = problem._request_map()
    onboard = {rid: t for rid, (vid, t) in problem.onboard().items() if vid == vehicle_id}
    viol: list[str] = []
    if depart < earliest - _TOL_S:
        viol.append(f"{vehicle_id}: departs at {depart:.3f} s before {earliest:.3f} s")
    load = sum(rmap[r].passengers for r in onboard)
    pos, t_prev, serv_prev, dist = start_xy, depart, 0.0, 0.0
    boarded = dict(onboard)
    picked: set[str] = set()
    dropped: set[str] = set()
    stops: list[Stop] = []
    for rid, action in seq:
        req = rmap[rid]
        xy = req.pickup_xy if action == PICKUP else req.dropoff_xy
        d = problem.distance_m(pos, xy)
        arrival = t_prev + serv_prev + d / problem.speed_mps
        dist += d
        if action == PICKUP:
            start = max(arrival, req.pickup_window_s[0])
            if rid in picked or rid in onboard:
                viol.append(f"{rid}: picked up twice")
            picked.add(rid)
            if start > req.pickup_window_s[1] + _TOL_S:
                viol.append(f"{rid}: pick-up starts {start:.3f} s after window end {req.pickup_window_s[1]} s")
            load += req.passengers
            if load > veh.seats:
                viol.append(f"{rid}: {load} passengers on {vehicle_id} with {veh.seats} seats")
            boarded[rid] = start + req.service_s
        elif action == DROPOFF:
            start = arrival
            if rid not in boarded or rid in dropped:
                viol.append(f"{rid}: drop-off without a pick-up before it on {vehicle_id}")
            else:
                ride = start - boarded[rid]
                if ride > req.max_ride_s + _TOL_S:
                    viol.append(f"{rid}: ride {ride:.3f} s exceeds max_ride_s {req.max_ride_s} s")
                load -= req.passengers
            dropped.add(rid)
            if start > req.dropoff_by_s + _TOL_S:
                viol.append(f"{rid}: drop-off starts {start:.3f} s after dropoff_by {req.dropoff_by_s} s")
        else:
            raise ValueError(f"unknown action {action!r}")
        stops.append(Stop(rid, action, arrival, start, xy))
        pos, t_prev, serv_prev = xy, start, req.service_s
    d = problem.distance_m(pos, veh.depot_xy)
    dist += d
    ret = t_prev + serv_prev + d / problem.speed_mps
    if ret > veh.available_s[1] + _TOL_S:
        viol.append(f"{vehicle_id}: back at depot {ret:.3f} s after availability end {veh.available_s[1]} s")
    if dist > range_m + _TOL_M:
        viol.append(f"{vehicle_id}: route {dist:.1f} m exceeds range {range_m:.1f} m")
    missing = (picked | set(onboard)) - dropped
    if missing:
        viol.append(f"{vehicle_id}: no drop-off for {sorted(missing)}")
    return RouteSchedule(stops, dist, depart, ret, viol)


def _hypot(a, b) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def _fast_check(problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]], depart: float):
    """Lean feasibility test of :func:`schedule_route` (same arithmetic, no reports).

    Returns
    -------
    (bool, bool, list of float)
        (feasible, only max-ride violations, waits before each stop in s).
    """
    c = problem._cache()
    veh = c["vmap"][vehicle_id]
    rmap = c["rmap"]
    st = c["smap"].get(vehicle_id)
    start_xy, earliest, range_m = problem.start_of(veh)
    boarded = {}
    load = 0
    if st is not None:
        for rid, t in st.onboard:
            boarded[rid] = t
            load += rmap[rid].passengers
    speed = problem.speed_mps
    dm = problem.distance_m if problem.distance_fn is not None else _hypot
    pos, t_prev, serv_prev, dist = start_xy, depart, 0.0, 0.0
    hard = ride = False
    waits = []
    seats = veh.seats
    for rid, action in seq:
        req = rmap[rid]
        if action == PICKUP:
            xy = req.pickup_xy
            d = dm(pos, xy)
            arrival = t_prev + serv_prev + d / speed
            start = arrival if arrival > req.pickup_window_s[0] else req.pickup_window_s[0]
            waits.append(start - arrival)
            if start > req.pickup_window_s[1] + _TOL_S:
                hard = True
            load += req.passengers
            if load > seats:
                hard = True
            boarded[rid] = start + req.service_s
        else:
            xy = req.dropoff_xy
            d = dm(pos, xy)
            start = t_prev + serv_prev + d / speed
            waits.append(0.0)
            b = boarded.pop(rid, None)
            if b is None:
                hard = True
            elif start - b > req.max_ride_s + _TOL_S:
                ride = True
            load -= req.passengers
            if start > req.dropoff_by_s + _TOL_S:
                hard = True
        dist += d
        pos, t_prev, serv_prev = xy, start, req.service_s
    d = dm(pos, veh.depot_xy)
    dist += d
    if t_prev + serv_prev + d / speed > veh.available_s[1] + _TOL_S or dist > range_m + _TOL_M or boarded:
        hard = True
    if depart < earliest - _TOL_S:
        hard = True
    return (not hard and not ride), (ride and not hard), waits


def best_schedule(problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]]) -> RouteSchedule:
    """Schedule with the earliest departure that makes the route feasible (if any does).

    Waiting is only allowed at the start and before a pick-up window opens, so a later departure can
    shorten a ride that would otherwise include a wait; the candidate departures are the ones that
    remove the waits one by one.
    """
    dep = _find_departure(problem, vehicle_id, seq)
    return schedule_route(problem, vehicle_id, seq, dep)


def _find_departure(problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]]) -> float | None:
    """Earliest departure making ``seq`` feasible, or None if no departure does."""
    _, earliest, _ = problem.start_of(problem.vehicle(vehicle_id))
    ok, ride_only, waits = _fast_check(problem, vehicle_id, seq, earliest)
    if ok:
        return earliest
    if not ride_only:
        return None  # later departures never help windows, availability or range
    cum = 0.0
    for w in waits:
        if w > 0:
            cum += w
            ok, ride_only, _ = _fast_check(problem, vehicle_id, seq, earliest + cum)
            if ok:
                return earliest + cum
            if not ride_only:
                return None
    return None


def route_feasible(problem: Problem, vehicle_id: str, seq: Sequence[tuple[str, str]]) -> bool:
    """True if some allowed departure makes the stop sequence feasible."""
    return _find_departure(problem, vehicle_id, seq) is not None


# -------------------------------------------------------------------------------------------- checker
def check_solution(problem: Problem, solution: Solution | Mapping) -> list[str]:
    """Independently verify a solution against the problem; return a list of violations (empty = valid).

    Checks every rule of the module docstring from the reported numbers (not by re-solving): times follow
    the formulas, windows, ride times, seats, depot legs, availability, range, distance total, and that
    every request is either served exactly once or listed as unserved with a reason.
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
            want_xy = req.pickup_xy if st.action == PICKUP else req.dropoff_xy
            if st.action not in (PICKUP, DROPOFF):
                out.append(f"{where}: unknown action")
                continue
            if math.dist(st.xy, want_xy) > 1e-9:
                out.append(f"{where}: xy {list(st.xy)} is not the request's {st.action} place {list(want_xy)}")
            d = problem.distance_m(pos, want_xy)
            dist += d
            if prev_start is None:
                if st.arrival_s - d / problem.speed_mps < earliest - _TOL_S:
                    out.append(f"{where}: leaves the start before {earliest} s")
            else:
                expect = prev_start + prev_serv + d / problem.speed_mps
                if abs(st.arrival_s - expect) > _TOL_S:
                    out.append(f"{where}: arrival {st.arrival_s} s, formula gives {expect} s")
            if st.action == PICKUP:
                if abs(st.start_s - max(st.arrival_s, req.pickup_window_s[0])) > 1e-9:
                    out.append(f"{where}: start {st.start_s} s != max(arrival, window start)")
                if st.start_s > req.pickup_window_s[1] + _TOL_S:
                    out.append(f"{where}: start {st.start_s} s after window end {req.pickup_window_s[1]} s")
                if st.request_id in boarded or st.request_id in onboard:
                    out.append(f"{where}: picked up twice (or already on board)")
                boarded[st.request_id] = st.start_s + req.service_s
                load += req.passengers
                if load > veh.seats:
                    out.append(f"{where}: {load} passengers > {veh.seats} seats")
            else:
                if abs(st.start_s - st.arrival_s) > 1e-9:
                    out.append(f"{where}: drop-off must start on arrival")
                if st.start_s > req.dropoff_by_s + _TOL_S:
                    out.append(f"{where}: start {st.start_s} s after dropoff_by {req.dropoff_by_s} s")
                if st.request_id not in boarded:
                    out.append(f"{where}: drop-off before (or without) its pick-up on this route")
                elif st.request_id in dropped:
                    out.append(f"{where}: dropped off twice")
                else:
                    ride = st.start_s - boarded[st.request_id]
                    if ride > req.max_ride_s + _TOL_S:
                        out.append(f"{where}: ride {ride} s > max_ride_s {req.max_ride_s} s")
                    load -= req.passengers
                dropped.add(st.request_id)
            pos, prev_start, prev_serv = want_xy, st.start_s, req.service_s
        d = problem.distance_m(pos, veh.depot_xy)
        if stops or pos != veh.depot_xy:
            dist += d
        if prev_start is not None:
            ret = prev_start + prev_serv + d / problem.speed_mps
            if ret > veh.available_s[1] + _TOL_S:
                out.append(f"{vid}: back at the depot {ret} s after availability end {veh.available_s[1]} s")
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
    best: list[str] | None = None
    for veh in problem.vehicles:
        if veh.seats < req.passengers:
            continue
        seq = _base_sequence(problem, veh.vehicle_id) + [(req.request_id, PICKUP), (req.request_id, DROPOFF)]
        sch = best_schedule(problem, veh.vehicle_id, seq)
        mine = [v for v in sch.violations if v.startswith(f"{req.request_id}:") or v.startswith(veh.vehicle_id)]
        if sch.feasible:
            return None
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
    return "fleet_busy: " + text


def _base_sequence(problem: Problem, vehicle_id: str) -> list[tuple[str, str]]:
    """Drop-offs of the children already on board, by deadline."""
    rmap = problem._request_map()
    ob = [rid for rid, (vid, _) in problem.onboard().items() if vid == vehicle_id]
    ob.sort(key=lambda r: rmap[r].dropoff_by_s)
    return [(rid, DROPOFF) for rid in ob]


# ------------------------------------------------------------------------------------------- greedy
def _insert_candidates(problem: Problem, vehicle_id: str, seq: list[tuple[str, str]], req: Request,
                       sched: RouteSchedule | None = None):
    """Return [(added distance, i, j)]: insert the pick-up at list position i and the drop-off at j.

    Positions whose pick-up (or drop-off) would be reached after its window even on the current
    schedule are pruned (an insertion only ever delays later stops).
    """
    veh = problem.vehicle(vehicle_id)
    start_xy, earliest, _ = problem.start_of(veh)
    rmap = problem._request_map()
    pts = [start_xy] + [rmap[r].pickup_xy if a == PICKUP else rmap[r].dropoff_xy for r, a in seq]
    pts.append(veh.depot_xy)
    if sched is None:
        sched = schedule_route(problem, vehicle_id, seq)
    # time at which the shuttle can leave point k of pts (k = 0: start)
    leave = [sched.depart_s] + [st.start_s + rmap[st.request_id].service_s for st in sched.stops]
    if sched.depart_s > earliest:  # a later departure was used: the earliest one bounds times from below
        leave[0] = earliest
    dm = problem.distance_m
    v = problem.speed_mps
    p, d = req.pickup_xy, req.dropoff_xy
    n = len(seq)
    pd = dm(p, d)
    legs = [dm(pts[k], pts[k + 1]) for k in range(n + 1)]
    close, by = req.pickup_window_s[1] + _TOL_S, req.dropoff_by_s + _TOL_S
    # Arrival slack (Savelsbergh): how much later old stop k (n = the depot) may be reached while it and
    # every later stop keep their windows; waits absorb delays. A necessary condition for an insertion
    # (ride times are checked exactly afterwards). Only valid when the schedule leaves at the earliest.
    slack = None
    if sched.feasible and sched.depart_s <= earliest + _TOL_S:
        arrive = [st.arrival_s for st in sched.stops] + [sched.return_s]
        slack = [0.0] * (n + 1)
        slack[n] = veh.available_s[1] - sched.return_s
        for k in range(n - 1, -1, -1):
            st = sched.stops[k]
            r = rmap[st.request_id]
            latest = r.pickup_window_s[1] if st.action == PICKUP else r.dropoff_by_s
            slack[k] = (st.start_s - st.arrival_s) + min(latest - st.start_s, slack[k + 1])
    out = []
    for i in range(n + 1):  # pick-up between pts[i] and pts[i+1]
        to_p = dm(pts[i], p)
        t_p = leave[i] + to_p / v
        if t_p > close:
            break  # later positions are reached even later
        p_start = max(t_p, req.pickup_window_s[0])
        if p_start + req.service_s + pd / v > by:
            break
        p_leave = p_start + req.service_s
        if slack is not None:
            d_leave = p_leave + pd / v + req.service_s
            if d_leave + dm(d, pts[i + 1]) / v - arrive[i] <= slack[i] + _TOL_S:
                out.append((to_p + pd + dm(d, pts[i + 1]) - legs[i], i, i + 1))
            if p_leave + dm(p, pts[i + 1]) / v - arrive[i] > slack[i] + _TOL_S:
                continue  # the pick-up alone already delays a later stop too much
        else:
            out.append((to_p + pd + dm(d, pts[i + 1]) - legs[i], i, i + 1))
        add_p = to_p + dm(p, pts[i + 1]) - legs[i]
        for j in range(i + 1, n + 1):  # drop-off between pts[j] and pts[j+1]
            to_d = dm(pts[j], d)
            if leave[j] + to_d / v > by:
                break
            out.append((add_p + to_d + dm(d, pts[j + 1]) - legs[j], i, j + 1))
    return out


def _try_insert(problem: Problem, routes: dict[str, list[tuple[str, str]]], req: Request,
                ignore_seats: bool = False, cache: dict | None = None
                ) -> tuple[str, list[tuple[str, str]], RouteSchedule] | None:
    cands = []
    for vid, seq in routes.items():
        veh = problem.vehicle(vid)
        if veh.seats < req.passengers and not ignore_seats:
            continue
        key = (vid, tuple(seq))
        sched = None if cache is None else cache.get(key)
        if sched is None:
            sched = best_schedule(problem, vid, seq)
            if cache is not None:
                cache[key] = sched
        for add, i, j in _insert_candidates(problem, vid, seq, req, sched):
            cands.append((add, vid, i, j))
    cands.sort(key=lambda c: (c[0], c[1], c[2], c[3]))
    for _add, vid, i, j in cands:
        seq = list(routes[vid])
        seq.insert(i, (req.request_id, PICKUP))
        seq.insert(j, (req.request_id, DROPOFF))
        if not ignore_seats:
            dep = _find_departure(problem, vid, seq)
            if dep is not None:
                return vid, seq, schedule_route(problem, vid, seq, dep)
            continue
        sch = best_schedule(problem, vid, seq)
        if not [v for v in sch.violations if "passengers on" not in v]:
            return vid, seq, sch
    return None


def _finish(problem: Problem, seqs: dict[str, list[tuple[str, str]]], unserved: list[Unserved],
            t0: float, method: str, warnings: list[str] | None = None) -> Solution:
    routes, total = {}, 0.0
    warnings = list(warnings or [])
    for veh in problem.vehicles:
        seq = seqs.get(veh.vehicle_id, [])
        sch = best_schedule(problem, veh.vehicle_id, seq)
        if sch.violations:
            warnings.extend(sch.violations)
        routes[veh.vehicle_id] = sch.stops
        total += sch.distance_m if (seq or problem.state(veh.vehicle_id)) else 0.0
    order = {r.request_id: k for k, r in enumerate(problem.requests)}
    unserved = sorted(unserved, key=lambda u: order.get(u.request_id, 1 << 30))
    return Solution(routes, unserved, total, (time.perf_counter() - t0) * 1e3, method, warnings)


def _diagnose(problem: Problem, seqs, req: Request) -> str:
    if _try_insert(problem, seqs, req, ignore_seats=True) is not None:
        return "no_seat: every shuttle that could serve it in time is full"
    return "fleet_busy: no shuttle's schedule has room for it inside its windows"


def solve_greedy(problem: Problem) -> Solution:
    """Cheapest feasible insertion baseline.

    Requests are taken by pick-up window end (then start); each goes where it adds the least distance
    while keeping every route feasible (exact schedule), else it is listed as unserved with a reason.
    """
    t0 = time.perf_counter()
    seqs = {v.vehicle_id: _base_sequence(problem, v.vehicle_id) for v in problem.vehicles}
    unserved: list[Unserved] = []
    todo = sorted(problem.open_requests(), key=lambda r: (r.pickup_window_s[1], r.pickup_window_s[0]))
    cache: dict = {}
    for req in todo:
        reason = _single_reason(problem, req)
        if reason:
            unserved.append(Unserved(req.request_id, reason))
            continue
        got = _try_insert(problem, seqs, req, cache=cache)
        if got is None:
            unserved.append(Unserved(req.request_id, _diagnose(problem, seqs, req)))
        else:
            seqs[got[0]] = got[1]
    return _finish(problem, seqs, unserved, t0, "greedy")


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


def solve(problem: Problem, *, time_limit_s: float | None = None, method: str = "ortools",
          seed_with_greedy: bool | None = None, keep_best: bool = True,
          solution_limit: int | None = None) -> Solution:
    """Solve with OR-Tools routing (``method="ortools"``) or the greedy baseline (``"greedy"``).

    Parameters
    ----------
    time_limit_s : float, optional
        OR-Tools search time limit, s (guided local search always runs until it); default
        :func:`auto_time_limit_s`.
    seed_with_greedy : bool, optional
        Split the time between a search from OR-Tools' parallel cheapest insertion and one started from
        the greedy routes, keep the better. Default: only up to 40 requests (on big instances the search
        from the greedy routes stays stuck near them, and the time is better spent on one search).
    keep_best : bool
        Also return the greedy baseline when it serves more requests or is shorter (``method`` says which
        one won). Off in the benchmark so that the comparison is fair.
    """
    if method == "greedy":
        return solve_greedy(problem)
    if method != "ortools":
        raise ValueError(f"method: expected 'ortools' or 'greedy', got {method!r}")
    t0 = time.perf_counter()
    unserved: list[Unserved] = []
    requests = []
    for req in problem.open_requests():
        reason = _single_reason(problem, req)
        if reason:
            unserved.append(Unserved(req.request_id, reason))
        else:
            requests.append(req)
    if not problem.vehicles:
        return _finish(problem, {}, unserved, t0, "ortools")
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
        seqs = {v.vehicle_id: _base_sequence(problem, v.vehicle_id) for v in problem.vehicles}
        return _finish(problem, seqs, lost, t0, "ortools")
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
        xy.append(req.pickup_xy), service.append(req.service_s), kind.append((req.request_id, PICKUP))
        d = len(xy)
        xy.append(req.dropoff_xy), service.append(req.service_s), kind.append((req.request_id, DROPOFF))
        pairs.append((req, p, d))
    ob_nodes = []
    vindex = {v.vehicle_id: k for k, v in enumerate(vehicles)}
    for rid, (vid, boarded_s) in onboard.items():
        n = len(xy)
        req = rmap[rid]
        xy.append(req.dropoff_xy), service.append(req.service_s), kind.append((rid, DROPOFF))
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
        tdim.CumulVar(di).SetMax(_down(req.dropoff_by_s))
        if math.isfinite(req.max_ride_s):
            solver.Add(tdim.CumulVar(di) - tdim.CumulVar(pi)
                       <= _down(req.max_ride_s + req.service_s))
        too_small = [k for k, v in enumerate(vehicles) if v.seats < req.passengers]
        if too_small:
            routing.VehicleVar(pi).RemoveValues(too_small)
    # The semantics allow no voluntary waiting: a pick-up starts at max(arrival, window start)
    # and a drop-off on arrival. Model it: the slack after node i (waiting before the next stop) is at
    # most what is needed to reach the next stop's window start, i.e. zero before a drop-off.
    size = routing.Size() + len(vehicles)
    opens = [0] * size
    for req, p, _ in pairs:
        opens[manager.NodeToIndex(p)] = _up(req.pickup_window_s[0])
    to_node = [manager.IndexToNode(j) for j in range(size)]
    for i in range(routing.Size()):
        if routing.IsEnd(i):
            continue
        row = time_s[manager.IndexToNode(i)]
        nxt = routing.NextVar(i)
        solver.Add(tdim.SlackVar(i) <= solver.Max(
            solver.Element(opens, nxt) - tdim.CumulVar(i) - solver.Element([row[n] for n in to_node], nxt), 0))
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
    served = set()
    removed: list[Request] = []
    rmap = problem._request_map()
    onboard = problem.onboard()
    for vid, seq in seqs.items():
        while True:
            sch = best_schedule(problem, vid, seq)
            if sch.feasible:
                break
            bad = None
            for v in sch.violations:
                rid = v.split(":", 1)[0]
                if rid in rmap and rid not in onboard:
                    bad = rid
                    break
            if bad is None:
                break  # only on-board lateness left: kept, reported as warning by _finish
            seq[:] = [(r, a) for r, a in seq if r != bad]
            removed.append(rmap[bad])
        served.update(r for r, _ in seq)
    for req in requests:
        if req.request_id not in served and req not in removed:
            removed.append(req)
    for req in removed:
        got = _try_insert(problem, seqs, req)
        if got is None:
            unserved.append(Unserved(req.request_id, _diagnose(problem, seqs, req)))
        else:
            seqs[got[0]] = got[1]
    return _finish(problem, seqs, unserved, t0, "ortools")


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
