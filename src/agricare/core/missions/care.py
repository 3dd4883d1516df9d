"""Care mission state machine of one shuttle (pure core: events and time in, actions out).

Per stop::

    idle -> drive_to_pickup -> docking -> boarding -> ride -> docking -> handover -> next stop
                                                                   ... -> return_to_depot -> done

The mission never reads a clock or talks to ROS: the caller passes each event with the current time to
:meth:`CareMission.handle` and executes the returned actions (navigate, dock, ask for boarding or a
hand-over code, hold still, notify staff, ask the dispatcher for a new plan). Failure paths:

- child not at the pick-up: wait until the window ends (+ grace), report ``no_show``, drop its drop-off,
  continue;
- guardian absent (or only refused codes) at the drop-off: after ``guardian_escalate_s`` escalate to
  staff, after ``guardian_wait_s`` keep the child on board and take it back to the nursery (hand-over to
  staff there), and ask for a re-plan;
- battery low: finish the safe part (children on board are delivered, a boarding in progress finishes),
  skip the remaining pick-ups (reported to the dispatcher), return to the depot;
- emergency stop: hold in any phase, report, resume the interrupted phase only after
  :class:`EmergencyStopReset` (release alone is not enough);
- navigation failure: retry, then hold as ``blocked`` until :class:`OperatorResume`;
- re-plan from the dispatcher: the new stops replace the remaining ones at a safe point; children on
  board keep their drop-off (a plan that would leave one behind is repaired and reported);
- audit log write failure (:class:`~agricare.core.missions.audit.AuditWriteError`): safe stop, terminal,
  said loudly; a hand-over is never released without its audit record.
"""

from __future__ import annotations

import math

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from agricare.core.missions.audit import AuditWriteError

PICKUP = "pickup"
DROPOFF = "dropoff"


class Phase(StrEnum):
    IDLE = "idle"
    DRIVE_TO_PICKUP = "drive_to_pickup"
    RIDE = "ride"  # driving to a drop-off (children on board)
    DOCKING = "docking"
    BOARDING = "boarding"
    HANDOVER = "handover"
    RETURN_TO_DEPOT = "return_to_depot"
    HOLD = "hold"  # emergency stop: waits for a reset
    BLOCKED = "blocked"  # navigation failed: waits for an operator
    SAFE_STOP = "safe_stop"  # audit failure: terminal
    DONE = "done"


# ------------------------------------------------------------------------------------------- data
def group_dropoffs(stops, onboard=(), tol_m: float = 1.0) -> list:
    """Hand over together the children bound for the same place.

    When the plan drops a child at a place and, later, another child who is already on board by then at the
    same place, the later drop-off moves up to right after the first: nobody rides on past their
    destination (a dispatcher may order same-place drop-offs arbitrarily). Precedence stays valid: a child
    is moved up only when its pick-up is already behind (or it is on board).
    """
    out = list(stops)
    i = 0
    while i < len(out):
        s = out[i]
        if s.action == DROPOFF:
            aboard = set(onboard) | {x.request_id for x in out[:i] if x.action == PICKUP}
            aboard -= {x.request_id for x in out[:i] if x.action == DROPOFF}
            j = i + 1
            while j < len(out):
                t = out[j]
                if t.action == DROPOFF and t.request_id in aboard and \
                        math.hypot(t.xy[0] - s.xy[0], t.xy[1] - s.xy[1]) <= tol_m and \
                        all(x.request_id != t.request_id for x in out[i + 1:j]):
                    out.insert(i + 1, out.pop(j))
                    i += 1
                j += 1
        i += 1
    return out


@dataclass(frozen=True)
class CareStop:
    """One stop of a shuttle's plan.

    Attributes
    ----------
    request_id : str
        Trip id (dispatch request id); hand-over codes are bound to it.
    child_id : str
    action : str
        ``"pickup"`` or ``"dropoff"``.
    xy : (float, float)
        Boarding point in the map frame, m.
    window_open_s, window_close_s : float
        Pick-up window (pick-up), or (0, dropoff_by) for a drop-off, s.
    marker_id : int
        ArUco marker of the boarding point (-1: no docking, board at the kerb).
    place : str
        ``home``, ``nursery``, ``clinic``...; ``nursery_return`` for a child brought back.
    """

    request_id: str
    child_id: str
    action: str
    xy: tuple[float, float]
    window_open_s: float = 0.0
    window_close_s: float = float("inf")
    marker_id: int = -1
    place: str = ""

    def __post_init__(self):
        if self.action not in (PICKUP, DROPOFF):
            raise ValueError(f"action: expected 'pickup' or 'dropoff', got {self.action!r}")
        object.__setattr__(self, "xy", (float(self.xy[0]), float(self.xy[1])))


@dataclass(frozen=True)
class CareMissionParams:
    """Care mission parameters (SI units).

    Attributes
    ----------
    depot_xy, nursery_xy : (float, float)
        Depot (return when done / battery low) and nursery (children whose guardian is absent), m.
    nursery_marker_id : int
        Boarding-point marker at the nursery (-1: none).
    pickup_grace_s : float
        Extra wait after the pick-up window end before reporting a no-show, s.
    guardian_escalate_s : float
        Time at a drop-off without an accepted hand-over before staff is alerted, s.
    guardian_wait_s : float
        Time at a drop-off before the child is taken back to the nursery, s (> escalate).
    battery_low_fraction : float
        State of charge (0..1) below which the remaining pick-ups are skipped.
    docking_attempts : int
        Docking tries before boarding at the kerb.
    navigation_attempts : int
        Navigation tries before the mission blocks and waits for an operator.
    """

    depot_xy: tuple[float, float] = (0.0, 0.0)
    nursery_xy: tuple[float, float] = (0.0, 0.0)
    nursery_marker_id: int = -1
    pickup_grace_s: float = 0.0
    guardian_escalate_s: float = 120.0
    guardian_wait_s: float = 600.0
    battery_low_fraction: float = 0.25
    docking_attempts: int = 3
    navigation_attempts: int = 3

    def __post_init__(self):
        for name in ("pickup_grace_s", "guardian_escalate_s", "guardian_wait_s"):
            v = getattr(self, name)
            if not (v >= 0 and v != float("inf")):
                raise ValueError(f"{name}: must be finite and >= 0, got {v!r}")
        if self.guardian_wait_s < self.guardian_escalate_s:
            raise ValueError(f"guardian_wait_s: must be >= guardian_escalate_s ({self.guardian_escalate_s}), "
                             f"got {self.guardian_wait_s!r}")
        if not 0.0 <= self.battery_low_fraction < 1.0:
            raise ValueError(f"battery_low_fraction: must be in [0, 1), got {self.battery_low_fraction!r}")
        for name in ("docking_attempts", "navigation_attempts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)!r}")
        for name in ("depot_xy", "nursery_xy"):
            v = tuple(float(c) for c in getattr(self, name))
            if len(v) != 2:
                raise ValueError(f"{name}: expected (x, y), got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)


# ----------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Start:
    """Begin the mission (from idle)."""


@dataclass(frozen=True)
class Tick:
    """Time passes (timeouts are checked on every event, a Tick just carries the time)."""


@dataclass(frozen=True)
class GoalReached:
    """Navigation reached the goal of the last :class:`NavigateTo`."""


@dataclass(frozen=True)
class NavigationFailed:
    reason: str = ""


@dataclass(frozen=True)
class Docked:
    """Docked at the boarding point (marker) of the current stop."""


@dataclass(frozen=True)
class DockingFailed:
    reason: str = ""


@dataclass(frozen=True)
class Boarded:
    """Boarding confirmed (staff / door sensor) for ``child_id``."""

    child_id: str


@dataclass(frozen=True)
class HandoverResult:
    """Outcome of a hand-over code check at the current drop-off (from the hand-over verifier)."""

    child_id: str
    accepted: bool
    reason: str = ""
    guardian_id: str = ""


@dataclass(frozen=True)
class BatteryLevel:
    fraction: float


@dataclass(frozen=True)
class EmergencyStop:
    reason: str = "emergency stop"


@dataclass(frozen=True)
class EmergencyStopReset:
    """The latched emergency stop was reset by a person (not just released)."""


@dataclass(frozen=True)
class OperatorResume:
    """An operator clears a ``blocked`` mission."""


@dataclass(frozen=True)
class PlanUpdated:
    """New remaining stops from the dispatcher."""

    stops: tuple[CareStop, ...]


# ---------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class NavigateTo:
    """Drive to ``xy`` (map frame, m); ``passenger`` selects the passenger safety profile."""

    xy: tuple[float, float]
    purpose: str
    passenger: bool
    request_id: str = ""


@dataclass(frozen=True)
class Dock:
    marker_id: int
    xy: tuple[float, float]


@dataclass(frozen=True)
class AwaitBoarding:
    child_id: str
    request_id: str
    deadline_s: float


@dataclass(frozen=True)
class RequestHandover:
    """Ask the guardian (or staff, ``to_staff``) for the hand-over code of ``child_id`` on trip ``request_id``."""

    child_id: str
    request_id: str
    to_staff: bool = False


@dataclass(frozen=True)
class ReleaseChild:
    """Hand-over verified and recorded: open the door for ``child_id``."""

    child_id: str
    request_id: str
    guardian_id: str


@dataclass(frozen=True)
class HoldStill:
    reason: str


@dataclass(frozen=True)
class SetPassengerProfile:
    passenger: bool


@dataclass(frozen=True)
class Notify:
    """Report to staff / dispatcher. ``level``: info, warn, error."""

    level: str
    kind: str
    message: str
    request_id: str = ""


@dataclass(frozen=True)
class RequestReplan:
    reason: str
    dropped_requests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finished:
    summary: Mapping = field(default_factory=dict)


Event = (Start | Tick | GoalReached | NavigationFailed | Docked | DockingFailed | Boarded | HandoverResult
         | BatteryLevel | EmergencyStop | EmergencyStopReset | OperatorResume | PlanUpdated)


class _AuditFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------- mission
class CareMission:
    """State machine of one shuttle's care mission.

    Parameters
    ----------
    stops : sequence of CareStop
        The plan (e.g. from :func:`stops_from_route`).
    params : CareMissionParams
    audit : object with ``append(event, t_s, **fields)``, optional
        Usually :class:`~agricare.core.missions.audit.AuditLog`; an ``AuditWriteError`` makes a safe stop.
    robot : str
        Shuttle name recorded in the audit log.
    """

    def __init__(self, stops: Sequence[CareStop], params: CareMissionParams | None = None, audit=None,
                 robot: str = ""):
        self.params = params or CareMissionParams()
        self.audit = audit
        self.robot = robot
        self.phase = Phase.IDLE
        self.stops: list[CareStop] = group_dropoffs(stops)  # remaining, head = current
        self.onboard: dict[str, CareStop] = {}  # request id -> its pick-up stop
        self.delivered: list[str] = []
        self.no_shows: list[str] = []
        self.returned: list[str] = []
        self.skipped: list[str] = []
        self.battery_low = False
        self.detail = ""
        self.done_stops = 0
        self._resume: Phase | None = None
        self._pending_plan: tuple[CareStop, ...] | None = None
        self._arrived_s: float | None = None
        self._escalated = False
        self._dock_tries = 0
        self._nav_tries = 0
        self._refusals = 0
        self.audit_error: AuditWriteError | None = None

    # -- public
    @property
    def current(self) -> CareStop | None:
        return self.stops[0] if self.stops else None

    def status(self) -> dict:
        """State summary for MissionStatus: state, progress 0..1, detail, children on board."""
        total = self.done_stops + len(self.stops)
        return {
            "state": self.phase.value,
            "progress": 1.0 if self.phase == Phase.DONE else (self.done_stops / total if total else 0.0),
            "detail": self.detail,
            "onboard": sorted(s.child_id for s in self.onboard.values()),
            "current": None if self.current is None else f"{self.current.action} {self.current.request_id}",
        }

    def handle(self, event: Event, now_s: float) -> list:
        """Process one event at time ``now_s`` (s) and return the actions to execute, in order."""
        if self.phase == Phase.SAFE_STOP:
            return [HoldStill(self.detail)]
        try:
            out = self._dispatch(event, float(now_s))
            out += self._timeouts(float(now_s))
            return out
        except _AuditFailed:
            err = self.audit_error
            self.phase = Phase.SAFE_STOP
            self.detail = f"audit log failure, mission stopped safely: {err}"
            return [HoldStill(self.detail), Notify("error", "audit_failure", self.detail)]

    # -- internals
    def _log(self, event: str, now_s: float, **fields) -> None:
        if self.audit is None:
            return
        try:
            self.audit.append(event, now_s, robot=self.robot, **fields)
        except AuditWriteError as exc:
            self.audit_error = exc
            raise _AuditFailed() from exc

    def _dispatch(self, ev, now: float) -> list:
        if isinstance(ev, EmergencyStop):
            return self._on_estop(ev, now)
        if self.phase == Phase.HOLD:
            if isinstance(ev, EmergencyStopReset):
                return self._on_reset(now)
            if isinstance(ev, PlanUpdated):
                self._pending_plan = tuple(ev.stops)
                self._log("plan_deferred", now, reason="emergency stop")
            if isinstance(ev, BatteryLevel):
                self._on_battery(ev, now, apply_now=False)
            return []
        if isinstance(ev, BatteryLevel):
            return self._on_battery(ev, now)
        if isinstance(ev, PlanUpdated):
            return self._on_plan(ev.stops, now)
        if self.phase == Phase.BLOCKED:
            if isinstance(ev, OperatorResume):
                self._log("operator_resume", now)
                self._nav_tries = 0
                return self._go_current(now)
            return []
        if isinstance(ev, Start):
            if self.phase != Phase.IDLE:
                return []
            self._log("mission_started", now, stops=[f"{s.action}:{s.request_id}" for s in self.stops])
            return self._go_current(now)
        if isinstance(ev, GoalReached):
            return self._on_goal(now)
        if isinstance(ev, NavigationFailed):
            return self._on_nav_failed(ev, now)
        if isinstance(ev, Docked) and self.phase == Phase.DOCKING:
            self._log("docked", now, request=self.current.request_id)
            return self._begin_service(now)
        if isinstance(ev, DockingFailed) and self.phase == Phase.DOCKING:
            return self._on_dock_failed(ev, now)
        if isinstance(ev, Boarded):
            return self._on_boarded(ev, now)
        if isinstance(ev, HandoverResult):
            return self._on_handover(ev, now)
        return []

    # navigation -------------------------------------------------------------------------------------
    def _go_current(self, now: float) -> list:
        """Start towards the head stop (or the depot when none is left)."""
        out = []
        if self._pending_plan is not None:  # called only at safe points (stop done, start, resume)
            plan, self._pending_plan = self._pending_plan, None
            out += self._install_plan(plan, now, held_back=True)
        if self.battery_low:
            out += self._drop_pickups(now)
        stop = self.current
        self._dock_tries = 0
        self._escalated = False
        self._refusals = 0
        self._arrived_s = None
        if stop is None:
            if self.phase == Phase.DONE:
                return out
            self.phase = Phase.RETURN_TO_DEPOT
            self.detail = "returning to depot" + (" (battery low)" if self.battery_low else "")
            return out + [NavigateTo(self.params.depot_xy, "return_to_depot", bool(self.onboard))]
        self.phase = Phase.DRIVE_TO_PICKUP if stop.action == PICKUP else Phase.RIDE
        self.detail = f"to {stop.action} {stop.child_id} ({stop.place or stop.request_id})"
        return out + [NavigateTo(stop.xy, self.phase.value, bool(self.onboard), stop.request_id)]

    def _on_goal(self, now: float) -> list:
        self._nav_tries = 0
        if self.phase == Phase.RETURN_TO_DEPOT:
            self.phase = Phase.DONE
            summary = {"delivered": list(self.delivered), "no_shows": list(self.no_shows),
                       "returned_to_nursery": list(self.returned), "skipped": list(self.skipped),
                       "onboard": sorted(self.onboard)}
            self._log("mission_done", now, **summary)
            self.detail = "done"
            return [Finished(summary)]
        if self.phase not in (Phase.DRIVE_TO_PICKUP, Phase.RIDE):
            return []
        stop = self.current
        self._arrived_s = now
        self._log("arrived", now, request=stop.request_id, child=stop.child_id, action=stop.action,
                  place=stop.place, late_s=max(0.0, now - stop.window_close_s))
        if stop.marker_id >= 0:
            self.phase = Phase.DOCKING
            self.detail = f"docking at marker {stop.marker_id}"
            return [Dock(stop.marker_id, stop.xy)]
        return self._begin_service(now)

    def _on_nav_failed(self, ev: NavigationFailed, now: float) -> list:
        if self.phase not in (Phase.DRIVE_TO_PICKUP, Phase.RIDE, Phase.RETURN_TO_DEPOT):
            return []
        self._nav_tries += 1
        self._log("navigation_failed", now, reason=ev.reason, attempt=self._nav_tries)
        if self._nav_tries < self.params.navigation_attempts:
            stop = self.current
            xy = self.params.depot_xy if stop is None else stop.xy
            return [NavigateTo(xy, self.phase.value, bool(self.onboard), "" if stop is None else stop.request_id)]
        self._resume = self.phase
        self.phase = Phase.BLOCKED
        self.detail = f"navigation failed {self._nav_tries} times: {ev.reason}; waiting for an operator"
        return [HoldStill(self.detail), Notify("error", "navigation_failed", self.detail),
                RequestReplan(f"shuttle blocked: {ev.reason}")]

    # docking ---------------------------------------------------------------------------------------
    def _on_dock_failed(self, ev: DockingFailed, now: float) -> list:
        stop = self.current
        self._dock_tries += 1
        self._log("docking_failed", now, request=stop.request_id, reason=ev.reason, attempt=self._dock_tries)
        if self._dock_tries < self.params.docking_attempts:
            return [Dock(stop.marker_id, stop.xy)]
        msg = f"docking at marker {stop.marker_id} failed {self._dock_tries} times ({ev.reason}); serving at the kerb"
        return [Notify("warn", "docking_failed", msg, stop.request_id)] + self._begin_service(now)

    def _begin_service(self, now: float) -> list:
        stop = self.current
        if stop.action == PICKUP:
            self.phase = Phase.BOARDING
            deadline = self._boarding_deadline(stop)
            self.detail = f"waiting for {stop.child_id} to board (until {deadline:.0f} s)"
            return [AwaitBoarding(stop.child_id, stop.request_id, deadline)]
        self.phase = Phase.HANDOVER
        to_staff = stop.place in ("nursery", "clinic", "nursery_return")
        self.detail = f"hand-over of {stop.child_id}"
        return [RequestHandover(stop.child_id, stop.request_id, to_staff)]

    def _boarding_deadline(self, stop: CareStop) -> float:
        base = stop.window_close_s
        if self._arrived_s is not None and self._arrived_s > base:
            base = self._arrived_s  # arrived late: still give the child the grace time
        return base + self.params.pickup_grace_s

    # boarding / hand-over ----------------------------------------------------------------------------
    def _on_boarded(self, ev: Boarded, now: float) -> list:
        stop = self.current
        if self.phase != Phase.BOARDING or stop is None:
            return []
        if ev.child_id != stop.child_id:
            self._log("boarding_refused", now, request=stop.request_id, expected=stop.child_id, got=ev.child_id)
            return [Notify("warn", "wrong_child", f"{ev.child_id} is not {stop.child_id}: not boarded",
                           stop.request_id)]
        self._log("boarded", now, request=stop.request_id, child=stop.child_id)
        first = not self.onboard
        self.onboard[stop.request_id] = stop
        out = [SetPassengerProfile(True)] if first else []
        return out + self._next(now)

    def _on_handover(self, ev: HandoverResult, now: float) -> list:
        stop = self.current
        if self.phase != Phase.HANDOVER or stop is None or ev.child_id != stop.child_id:
            return []
        if not ev.accepted:
            self._refusals += 1
            self._log("handover_refused", now, request=stop.request_id, child=stop.child_id,
                      guardian=ev.guardian_id, reason=ev.reason)
            return [Notify("warn", "handover_refused",
                           f"hand-over of {stop.child_id} refused: {ev.reason}", stop.request_id)]
        event = "returned_to_nursery" if stop.place == "nursery_return" else "handover_accepted"
        self._log(event, now, request=stop.request_id, child=stop.child_id, guardian=ev.guardian_id)
        self.onboard.pop(stop.request_id, None)
        (self.returned if stop.place == "nursery_return" else self.delivered).append(stop.request_id)
        out = [ReleaseChild(stop.child_id, stop.request_id, ev.guardian_id)]
        if not self.onboard:
            out.append(SetPassengerProfile(False))
        return out + self._next(now)

    def _next(self, now: float) -> list:
        self.stops.pop(0)
        self.done_stops += 1
        return self._go_current(now)

    # timeouts ----------------------------------------------------------------------------------------
    def _timeouts(self, now: float) -> list:
        stop = self.current
        if stop is None:
            return []
        if self.phase == Phase.BOARDING and now > self._boarding_deadline(stop):
            self._log("no_show", now, request=stop.request_id, child=stop.child_id)
            self.no_shows.append(stop.request_id)
            self.stops = [s for s in self.stops[1:] if s.request_id != stop.request_id]
            self.stops.insert(0, stop)  # popped by _next
            return [Notify("warn", "no_show",
                           f"{stop.child_id} not at the pick-up by {self._boarding_deadline(stop):.0f} s",
                           stop.request_id)] + self._next(now)
        if self.phase == Phase.HANDOVER and self._arrived_s is not None:
            waited = now - self._arrived_s
            out = []
            if waited >= self.params.guardian_escalate_s and not self._escalated:
                self._escalated = True
                self._log("escalated", now, request=stop.request_id, child=stop.child_id, waited_s=waited)
                who = "nursery staff" if stop.place != "nursery_return" else "nursery management"
                out.append(Notify("warn", "guardian_absent",
                                  f"no authorised hand-over for {stop.child_id} after {waited:.0f} s: {who} alerted",
                                  stop.request_id))
            if waited >= self.params.guardian_wait_s and stop.place not in ("nursery", "nursery_return"):
                self._log("guardian_absent_return", now, request=stop.request_id, child=stop.child_id)
                back = CareStop(stop.request_id, stop.child_id, DROPOFF, self.params.nursery_xy, 0.0,
                                float("inf"), self.params.nursery_marker_id, "nursery_return")
                self.stops[0] = back  # current stop replaced: the child stays on board
                self.stops.insert(0, stop)  # popped by _next (counted as attempted)
                out.append(Notify("warn", "child_returned",
                                  f"guardian of {stop.child_id} absent: taking the child back to the nursery",
                                  stop.request_id))
                out.append(RequestReplan(f"{stop.child_id} is being taken back to the nursery"))
                out += self._next(now)
            return out
        return []

    # e-stop / battery / plan -------------------------------------------------------------------------
    def _on_estop(self, ev: EmergencyStop, now: float) -> list:
        if self.phase == Phase.HOLD:
            return [HoldStill(self.detail)]
        if self.phase == Phase.DONE:
            return []
        self._log("emergency_stop", now, phase=self.phase.value, reason=ev.reason, onboard=sorted(self.onboard))
        self._resume = self.phase
        self.phase = Phase.HOLD
        self.detail = f"holding: {ev.reason}; resumes only after a reset"
        return [HoldStill(self.detail), Notify("error", "emergency_stop", self.detail)]

    def _on_reset(self, now: float) -> list:
        resume, self._resume = self._resume, None
        self._log("emergency_stop_reset", now, resume=resume.value if resume else "")
        self.phase = resume or Phase.IDLE
        stop = self.current
        if self.phase in (Phase.DRIVE_TO_PICKUP, Phase.RIDE, Phase.RETURN_TO_DEPOT):
            return self._go_current(now)
        if self.phase == Phase.DOCKING:
            return [Dock(stop.marker_id, stop.xy)]
        if self.phase in (Phase.BOARDING, Phase.HANDOVER):
            return self._begin_service(now)
        if self.phase == Phase.BLOCKED:
            return [HoldStill(self.detail)]
        return []

    def _on_battery(self, ev: BatteryLevel, now: float, apply_now: bool = True) -> list:
        if self.battery_low or not (ev.fraction < self.params.battery_low_fraction):
            return []
        self.battery_low = True
        self._log("battery_low", now, fraction=float(ev.fraction), onboard=sorted(self.onboard))
        out = [Notify("warn", "battery_low",
                      f"battery at {100 * ev.fraction:.0f} %: delivering children on board, then to the depot")]
        if not apply_now:
            return out
        if self.phase == Phase.DRIVE_TO_PICKUP:
            return out + self._go_current(now)  # drops the pick-ups, heads for the next drop-off / depot
        if self.phase in (Phase.RIDE, Phase.RETURN_TO_DEPOT, Phase.IDLE):
            return out + self._drop_pickups(now)
        return out  # docking / boarding / hand-over in progress: finish it first

    def _drop_pickups(self, now: float) -> list:
        # called between stops only (a boarding in progress has finished and is on board by then)
        dropped = [s.request_id for s in self.stops if s.action == PICKUP]
        if not dropped:
            return []
        self.stops = [s for s in self.stops if s.request_id in self.onboard]
        self.skipped.extend(dropped)
        self._log("pickups_skipped", now, requests=dropped, reason="battery low")
        return [RequestReplan("battery low: remaining pick-ups need another shuttle", tuple(dropped))]

    def _on_plan(self, stops: Iterable[CareStop], now: float) -> list:
        stops = tuple(stops)
        if self.phase in (Phase.DOCKING, Phase.BOARDING, Phase.HANDOVER):
            self._pending_plan = stops
            self._log("plan_deferred", now, reason=f"{self.phase.value} in progress")
            return []
        out = self._install_plan(stops, now)
        if self.phase in (Phase.IDLE, Phase.DONE, Phase.BLOCKED):
            return out
        return out + self._go_current(now)

    def _install_plan(self, stops: tuple[CareStop, ...], now: float, held_back: bool = False) -> list:
        """Make ``stops`` the remaining stops. ``held_back``: the plan arrived during a docking / boarding /
        hand-over and was kept until now; a pick-up in it of a child who boarded meanwhile was planned before
        that boarding and is done (dropped, its drop-off kept). A fresh plan that picks up a child on board
        contradicts what the shuttle knows: refused, the old stops kept and a re-plan requested."""
        out = []
        stops = list(stops)
        bad = [s.request_id for s in stops if s.action == PICKUP and s.request_id in self.onboard]
        if bad and held_back:
            stops = [s for s in stops if not (s.action == PICKUP and s.request_id in self.onboard)]
            self._log("plan_pickup_done", now, requests=bad, reason="boarded while the plan was held back")
            bad = []
        if bad:
            self._log("plan_rejected", now, reason="pick-up of a child on board", requests=bad)
            return [Notify("error", "plan_rejected", f"plan picks up children already on board: {bad}"),
                    RequestReplan("plan rejected: picks up children already on board")]
        planned = {s.request_id for s in stops if s.action == DROPOFF}
        kept = [s for s in self.stops if s.action == DROPOFF and s.request_id in self.onboard
                and s.request_id not in planned]
        if kept:
            ids = [s.request_id for s in kept]
            out.append(Notify("warn", "plan_repaired", f"plan had no drop-off for children on board {ids}: kept"))
            stops = kept + stops
        if self.battery_low:
            pick = [s.request_id for s in stops if s.action == PICKUP]
            if pick:
                stops = [s for s in stops if s.request_id not in pick]
                out.append(RequestReplan("battery low: plan pick-ups refused", tuple(pick)))
        stops = group_dropoffs(stops, onboard=set(self.onboard))
        self._log("plan_updated", now, stops=[f"{s.action}:{s.request_id}" for s in stops])
        self.stops = stops
        if self.phase == Phase.DONE and stops:
            self.phase = Phase.IDLE
        return out


def stops_from_route(route, requests: Mapping, child_of: Mapping[str, str] | None = None,
                     marker_of: Mapping[tuple[str, str], int] | None = None,
                     place_of: Mapping[tuple[str, str], str] | None = None) -> list[CareStop]:
    """Turn a dispatch route into care stops.

    Parameters
    ----------
    route : sequence of :class:`agricare.core.planning.dispatch.Stop`
    requests : mapping request id -> :class:`agricare.core.planning.dispatch.Request`
    child_of : mapping request id -> child id (default: the request id)
    marker_of, place_of : mapping (request id, action) -> marker id / place name
    """
    out = []
    for st in route:
        req = requests[st.request_id]
        key = (st.request_id, st.action)
        if st.action == PICKUP:
            win = req.pickup_window_s
        else:
            win = (0.0, req.dropoff_by_s)
        out.append(CareStop(st.request_id, (child_of or {}).get(st.request_id, st.request_id), st.action,
                            tuple(st.xy), win[0], win[1], (marker_of or {}).get(key, -1),
                            (place_of or {}).get(key, "")))
    return out



def stops_from_plan(plan: Mapping, vehicle_id: str, windows: Mapping[str, Mapping] | None = None,
                    marker_of_place: Mapping[str, int] | None = None) -> list[CareStop]:
    """Care stops of one shuttle from a ``dispatch/plan`` message (dispatcher_node JSON, already parsed).

    Parameters
    ----------
    plan : mapping
        ``{"solution": <agricare dispatch JSON>, "meta": {request: {child, pickup_place, dropoff_place,
        pickup_marker, dropoff_marker}}}`` (``meta`` optional).
    vehicle_id : str
    windows : mapping request id -> {"pickup_window": [a, b], "dropoff_by": t}, optional
        Time windows (the requests of the day); without them a stop's window is its planned start
        (pick-up: open = close = planned start, so a no-show is declared at start + pickup_grace_s).
    marker_of_place : mapping place name -> ArUco marker id, optional
    """
    meta = plan.get("meta") or {}
    out = []
    for st in plan["solution"]["routes"].get(vehicle_id, []):
        rid, action = st["request"], st["action"]
        m = meta.get(rid, {})
        place = m.get(f"{action}_place", "")
        marker = m.get(f"{action}_marker", (marker_of_place or {}).get(place, -1))
        w = (windows or {}).get(rid)
        if action == PICKUP:
            a, b = (w["pickup_window"] if w else (st["start_s"], st["start_s"]))
        else:
            a, b = 0.0, (w["dropoff_by"] if w else float("inf"))
        out.append(CareStop(rid, m.get("child", rid), action, tuple(st["xy"]), float(a), float(b), int(marker),
                            place))
    return out
