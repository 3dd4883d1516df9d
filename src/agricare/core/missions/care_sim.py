"""The people at the care places, simulated (for the embedded simulator only; pure core, no ROS).

Staff at the nursery and clinic and the children's guardians at home answer a shuttle's requests:

- ``boarding`` (child, trip): the child boards ``board_delay_s`` after the request, but not before its
  pick-up window opens (the child is ready at the window start) and only while the shuttle stands at the
  trip's boarding point (ground truth, within ``dock_tolerance_m``); a child in ``absent_children`` never
  comes.
- ``handover`` (child, trip, place): ``handover_delay_s`` after the request, the receiving person (staff
  at the nursery or clinic, else the trip's first guardian) presents a one-time code issued with the
  shared key for (child, that person, trip), again only while the shuttle stands at the drop-off point.
  A guardian in ``absent_guardians`` (guardian id or child id) never comes; staff are always there.
  ``forged_first`` children first get a code of another child (refused), then the right one.

The caller passes the time and the shuttle's true pose; :meth:`CareSite.step` returns the answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agricare.core.missions.handover import issue_code, issue_trip_code

STAFF_PLACES = ("nursery", "clinic", "nursery_return")


@dataclass(frozen=True)
class CareSiteParams:
    """Simulated people (s, m).

    Attributes
    ----------
    board_delay_s : float
        Time from the boarding request to the child on board, s.
    handover_delay_s : float
        Time from the hand-over request to the code being presented, s.
    dock_tolerance_m : float
        The shuttle must stand this close to the boarding point, m.
    code_ttl_s : float
        Validity of an issued code, s.
    absent_children, absent_guardians, forged_first : tuple of str
        Failure injection (see module docstring).
    staff_nursery_id : str
        Staff member who receives children at the nursery (and returned children).
    """

    board_delay_s: float = 4.0
    handover_delay_s: float = 4.0
    dock_tolerance_m: float = 1.0
    code_ttl_s: float = 300.0
    absent_children: tuple[str, ...] = ()
    absent_guardians: tuple[str, ...] = ()
    forged_first: tuple[str, ...] = ()
    staff_nursery_id: str = "staff_nursery"

    def __post_init__(self):
        for name in ("board_delay_s", "handover_delay_s", "dock_tolerance_m", "code_ttl_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}: must be finite and >= 0, got {v!r}")
        if self.code_ttl_s <= 0:
            raise ValueError(f"code_ttl_s: must be > 0, got {self.code_ttl_s!r}")
        for name in ("absent_children", "absent_guardians", "forged_first"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))


@dataclass
class _Pending:
    kind: str  # boarding | handover
    child: str
    trip: str
    xy: tuple[float, float]
    place: str
    since_s: float
    forged_sent: bool = False
    vehicle: str = ""


@dataclass
class CareSite:
    """People at the places of one day.

    Parameters
    ----------
    requests : iterable of mapping
        The day's requests (REQUESTS.yaml entries: id, pickup, dropoff, pickup_window, child, guardians,
        pickup_place, dropoff_place).
    key : bytes
        Shared hand-over key (the one the shuttle's verifier uses).
    nursery_xy : (float, float)
        Nursery boarding point (children brought back), m.
    params : CareSiteParams
    """

    requests: Iterable[Mapping]
    key: bytes
    nursery_xy: tuple[float, float] = (0.0, 0.0)
    params: CareSiteParams = field(default_factory=CareSiteParams)

    def __post_init__(self):
        self.trips = {str(r["id"]): dict(r) for r in self.requests}
        self.pending: dict[tuple[str, str], _Pending] = {}
        self.log: list[dict] = []

    def request(self, kind: str, child: str, trip: str, place: str, now_s: float,
                xy: tuple[float, float] | None = None, vehicle: str = "") -> None:
        """A shuttle asks for a boarding or a hand-over (a repeated request for the same place keeps its first
        time; a request for another place, e.g. a child taken back to the nursery, replaces it)."""
        if kind not in ("boarding", "handover"):
            raise ValueError(f"kind: expected 'boarding' or 'handover', got {kind!r}")
        r = self.trips.get(trip)
        if xy is None:
            if place == "nursery_return":
                xy = self.nursery_xy
            elif r is not None:
                xy = tuple(r["pickup"] if kind == "boarding" else r["dropoff"])
            else:
                raise ValueError(f"unknown trip {trip!r} and no boarding point given")
        key = (kind, trip)
        old = self.pending.get(key)
        if old is None or old.place != place or old.xy != (float(xy[0]), float(xy[1])):
            self.pending[key] = _Pending(kind, child, trip, (float(xy[0]), float(xy[1])), place, float(now_s),
                                         vehicle=str(vehicle))

    def receiver(self, trip: str, place: str) -> str:
        """Who takes the child at a drop-off ``place`` of ``trip``."""
        r = self.trips.get(trip, {})
        where = place or r.get("dropoff_place", "")
        if where in ("nursery", "nursery_return"):
            return self.params.staff_nursery_id
        guardians = r.get("guardians") or []
        return str(guardians[0]) if guardians else f"guardian_of_{r.get('child', trip)}"

    def step(self, now_s: float, shuttle_xy: tuple[float, float], shuttle_speed_mps: float = 0.0) -> list[dict]:
        """Answers due at ``now_s`` for a shuttle at ``shuttle_xy`` (true pose): dicts with ``type``
        ``boarded`` (child, trip) or ``code`` (child, trip, guardian, code)."""
        p = self.params
        out = []
        for key, pend in list(self.pending.items()):
            there = (math.hypot(shuttle_xy[0] - pend.xy[0], shuttle_xy[1] - pend.xy[1]) <= p.dock_tolerance_m
                     and abs(shuttle_speed_mps) < 0.05)
            if not there:
                continue
            r = self.trips.get(pend.trip, {})
            if pend.kind == "boarding":
                if pend.child in p.absent_children:
                    continue
                ready = float((r.get("pickup_window") or [0.0])[0]) if pend.place != "nursery_return" else 0.0
                if now_s >= max(pend.since_s, ready) + p.board_delay_s:
                    out.append({"type": "boarded", "child": pend.child, "trip": pend.trip})
                    self.pending.pop(key)
                continue
            who = self.receiver(pend.trip, pend.place)
            staff = pend.place in STAFF_PLACES or who == p.staff_nursery_id
            if not staff and (who in p.absent_guardians or pend.child in p.absent_guardians):
                continue
            if now_s < pend.since_s + p.handover_delay_s:
                continue
            if pend.child in p.forged_first and not pend.forged_sent:
                pend.forged_sent = True
                code = self._code(f"{pend.child}_sibling", who, pend, now_s)
                out.append({"type": "code", "child": pend.child, "trip": pend.trip, "guardian": who, "code": code})
                continue
            code = self._code(pend.child, who, pend, now_s)
            out.append({"type": "code", "child": pend.child, "trip": pend.trip, "guardian": who, "code": code})
            self.pending.pop(key)
        self.log.extend(out)
        return out

    def _code(self, child: str, guardian: str, pend: _Pending, now_s: float) -> str:
        """A vehicle-bound code with issue time (the shuttle checks it itself); without a vehicle the older
        code format (checked by handover_node)."""
        if pend.vehicle:
            return issue_trip_code(self.key, child, guardian, pend.trip, pend.vehicle, max(0.0, now_s),
                                   self.params.code_ttl_s)
        return issue_code(self.key, child, guardian, pend.trip, now_s + self.params.code_ttl_s)

    def cancel(self, kind: str, trip: str) -> None:
        """The shuttle left (no-show, child taken back): forget the request."""
        self.pending.pop((kind, trip), None)
