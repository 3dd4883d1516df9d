"""Care mission state machine: the normal day and every failure path."""

from __future__ import annotations

import errno
import io

import pytest

from agricare.core.missions.audit import AuditLog, verify_lines
from agricare.core.missions.care import (
    AwaitBoarding,
    BatteryLevel,
    Boarded,
    CareMission,
    CareMissionParams,
    CareStop,
    Dock,
    Docked,
    DockingFailed,
    EmergencyStop,
    EmergencyStopReset,
    Finished,
    GoalReached,
    HandoverResult,
    HoldStill,
    NavigateTo,
    NavigationFailed,
    Notify,
    OperatorResume,
    Phase,
    PlanUpdated,
    ReleaseChild,
    RequestHandover,
    RequestReplan,
    SetPassengerProfile,
    Start,
    Tick,
    stops_from_route,
)

NURSERY = (150.0, 100.0)
PARAMS = CareMissionParams(depot_xy=(0.0, 0.0), nursery_xy=NURSERY, nursery_marker_id=9,
                           pickup_grace_s=30.0, guardian_escalate_s=120.0, guardian_wait_s=300.0)


def _stops():
    return [
        CareStop("t1", "anna", "pickup", (10.0, 20.0), 100.0, 400.0, marker_id=1, place="home"),
        CareStop("t2", "ben", "pickup", (40.0, 20.0), 200.0, 500.0, marker_id=-1, place="home"),
        CareStop("t1", "anna", "dropoff", NURSERY, 0.0, 900.0, marker_id=9, place="nursery"),
        CareStop("t2", "ben", "dropoff", (90.0, 150.0), 0.0, 900.0, marker_id=-1, place="home"),
    ]


def _mission(stops=None, audit=True):
    buf = io.BytesIO()
    log = AuditLog(buf) if audit else None
    m = CareMission(_stops() if stops is None else stops, PARAMS, log, robot="s1")
    return m, buf


def _kinds(actions, cls):
    return [a for a in actions if isinstance(a, cls)]


def _events(buf):
    import json

    return [json.loads(line)["event"] for line in buf.getvalue().decode().splitlines()]


def _board(m, t, child):
    """Drive to the current pick-up, dock if needed, board."""
    out = m.handle(GoalReached(), t)
    if _kinds(out, Dock):
        out = m.handle(Docked(), t + 1)
    assert _kinds(out, AwaitBoarding)
    return m.handle(Boarded(child), t + 2)


def test_normal_round_all_delivered_and_audited():
    m, buf = _mission()
    out = m.handle(Start(), 0.0)
    nav = _kinds(out, NavigateTo)[0]
    assert nav.xy == (10.0, 20.0) and not nav.passenger and m.phase == Phase.DRIVE_TO_PICKUP
    out = m.handle(GoalReached(), 90.0)
    assert _kinds(out, Dock)[0].marker_id == 1 and m.phase == Phase.DOCKING
    out = m.handle(Docked(), 95.0)
    assert _kinds(out, AwaitBoarding)[0].deadline_s == 430.0 and m.phase == Phase.BOARDING
    out = m.handle(Boarded("anna"), 110.0)
    assert _kinds(out, SetPassengerProfile) == [SetPassengerProfile(True)]
    assert _kinds(out, NavigateTo)[0].passenger and m.phase == Phase.DRIVE_TO_PICKUP
    out = m.handle(GoalReached(), 200.0)  # no marker: boarding at the kerb
    assert _kinds(out, AwaitBoarding) and m.phase == Phase.BOARDING
    out = m.handle(Boarded("ben"), 210.0)
    assert m.phase == Phase.RIDE and _kinds(out, NavigateTo)[0].xy == NURSERY
    out = m.handle(GoalReached(), 300.0)
    out = m.handle(Docked(), 305.0)
    assert _kinds(out, RequestHandover) == [RequestHandover("anna", "t1", True)]
    out = m.handle(HandoverResult("anna", True, "ok", "staff1"), 320.0)
    assert _kinds(out, ReleaseChild) == [ReleaseChild("anna", "t1", "staff1")]
    assert not _kinds(out, SetPassengerProfile)  # ben still on board
    m.handle(GoalReached(), 400.0)
    out = m.handle(HandoverResult("ben", True, "ok", "mum_ben"), 410.0)
    assert _kinds(out, SetPassengerProfile) == [SetPassengerProfile(False)]
    assert m.phase == Phase.RETURN_TO_DEPOT and _kinds(out, NavigateTo)[0].xy == (0.0, 0.0)
    out = m.handle(GoalReached(), 500.0)
    fin = _kinds(out, Finished)[0]
    assert fin.summary["delivered"] == ["t1", "t2"] and m.phase == Phase.DONE
    assert m.status()["progress"] == 1.0
    ev = _events(buf)
    assert ev[0] == "mission_started" and ev[-1] == "mission_done"
    assert ev.count("boarded") == 2 and ev.count("handover_accepted") == 2
    assert verify_lines(buf.getvalue().decode().splitlines(keepends=True)).ok


def test_child_not_at_pickup_waits_to_window_end_then_continues():
    m, buf = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 90.0)
    m.handle(Docked(), 95.0)
    assert m.handle(Tick(), 429.0) == [] and m.phase == Phase.BOARDING  # window end 400 + grace 30
    out = m.handle(Tick(), 431.0)
    assert _kinds(out, Notify)[0].kind == "no_show"
    assert m.no_shows == ["t1"]
    assert all(s.request_id != "t1" for s in m.stops)  # its drop-off is gone too
    assert _kinds(out, NavigateTo)[0].xy == (40.0, 20.0)
    assert "no_show" in _events(buf)


def test_late_arrival_still_gets_grace_time():
    m, _ = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 600.0)  # after the window end
    out = m.handle(Docked(), 601.0)
    assert _kinds(out, AwaitBoarding)[0].deadline_s == 630.0


def test_wrong_child_is_not_boarded():
    m, buf = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 90.0)
    m.handle(Docked(), 91.0)
    out = m.handle(Boarded("ben"), 92.0)
    assert _kinds(out, Notify)[0].kind == "wrong_child" and m.phase == Phase.BOARDING and not m.onboard


def _to_ben_dropoff(m):
    m.handle(Start(), 0.0)
    _board(m, 90.0, "anna")
    _board(m, 200.0, "ben")
    m.handle(GoalReached(), 300.0)
    m.handle(Docked(), 301.0)
    m.handle(HandoverResult("anna", True, "ok", "staff"), 302.0)
    out = m.handle(GoalReached(), 400.0)
    assert _kinds(out, RequestHandover) == [RequestHandover("ben", "t2", False)]


def test_guardian_absent_escalate_then_child_back_to_nursery():
    m, buf = _mission()
    _to_ben_dropoff(m)
    out = m.handle(HandoverResult("ben", False, "forged", "someone"), 410.0)
    assert _kinds(out, Notify)[0].kind == "handover_refused" and m.phase == Phase.HANDOVER
    assert not _kinds(out, ReleaseChild)
    assert m.handle(Tick(), 519.0) == []
    out = m.handle(Tick(), 520.0)
    assert [n.kind for n in _kinds(out, Notify)] == ["guardian_absent"]
    assert m.handle(Tick(), 600.0) == []  # escalated once only
    out = m.handle(Tick(), 700.0)
    assert [n.kind for n in _kinds(out, Notify)] == ["child_returned"]
    assert _kinds(out, RequestReplan)
    nav = _kinds(out, NavigateTo)[0]
    assert nav.xy == NURSERY and nav.passenger and m.phase == Phase.RIDE
    assert "t2" in m.onboard
    out = m.handle(GoalReached(), 800.0)
    assert _kinds(out, Dock)[0].marker_id == 9
    out = m.handle(Docked(), 801.0)
    assert _kinds(out, RequestHandover) == [RequestHandover("ben", "t2", True)]
    out = m.handle(HandoverResult("ben", True, "ok", "staff2"), 810.0)
    assert _kinds(out, ReleaseChild) and m.returned == ["t2"] and not m.onboard
    assert m.phase == Phase.RETURN_TO_DEPOT
    ev = _events(buf)
    assert ["handover_refused", "escalated", "guardian_absent_return", "returned_to_nursery"] == [
        e for e in ev if e in ("handover_refused", "escalated", "guardian_absent_return", "returned_to_nursery")]


def test_battery_low_finishes_boarding_skips_pickups_and_returns():
    m, buf = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 90.0)
    m.handle(Docked(), 91.0)
    out = m.handle(BatteryLevel(0.2), 92.0)  # during boarding: finish it
    assert _kinds(out, Notify)[0].kind == "battery_low" and m.phase == Phase.BOARDING
    out = m.handle(Boarded("anna"), 93.0)
    replan = _kinds(out, RequestReplan)[0]
    assert replan.dropped_requests == ("t2",) and m.skipped == ["t2"]
    assert _kinds(out, NavigateTo)[0].xy == NURSERY  # anna is delivered first
    assert [(s.request_id, s.action) for s in m.stops] == [("t1", "dropoff")]
    m.handle(GoalReached(), 200.0)
    m.handle(Docked(), 201.0)
    out = m.handle(HandoverResult("anna", True, "ok", "staff"), 202.0)
    assert m.phase == Phase.RETURN_TO_DEPOT and _kinds(out, NavigateTo)[0].xy == (0.0, 0.0)
    # a later plan with pick-ups is refused while the battery is low
    out = m.handle(PlanUpdated((_stops()[1], _stops()[3])), 203.0)
    assert _kinds(out, RequestReplan)[0].dropped_requests == ("t2",)
    assert m.phase == Phase.RETURN_TO_DEPOT


def test_battery_low_while_driving_to_pickup_goes_straight_home():
    m, _ = _mission()
    m.handle(Start(), 0.0)
    out = m.handle(BatteryLevel(0.1), 10.0)
    assert m.phase == Phase.RETURN_TO_DEPOT and _kinds(out, RequestReplan)
    assert m.handle(BatteryLevel(0.05), 11.0) == []  # reported once


def test_estop_mid_ride_holds_until_reset():
    m, buf = _mission()
    m.handle(Start(), 0.0)
    _board(m, 90.0, "anna")
    _board(m, 200.0, "ben")
    assert m.phase == Phase.RIDE
    out = m.handle(EmergencyStop("button pressed"), 250.0)
    assert _kinds(out, HoldStill) and _kinds(out, Notify)[0].kind == "emergency_stop"
    assert m.phase == Phase.HOLD
    # nothing moves it: goal reached, ticks, operator resume, a second e-stop
    for ev in (GoalReached(), Tick(), OperatorResume(), Docked()):
        assert not _kinds(m.handle(ev, 260.0), NavigateTo)
        assert m.phase == Phase.HOLD
    assert _kinds(m.handle(EmergencyStop(), 270.0), HoldStill)
    out = m.handle(EmergencyStopReset(), 300.0)
    nav = _kinds(out, NavigateTo)[0]
    assert nav.xy == NURSERY and nav.passenger and m.phase == Phase.RIDE
    ev = _events(buf)
    assert "emergency_stop" in ev and "emergency_stop_reset" in ev


def test_estop_during_handover_resumes_handover():
    m, _ = _mission()
    _to_ben_dropoff(m)
    m.handle(EmergencyStop(), 401.0)
    assert not _kinds(m.handle(HandoverResult("ben", True, "ok", "mum"), 402.0), ReleaseChild)
    out = m.handle(EmergencyStopReset(), 403.0)
    assert _kinds(out, RequestHandover) and m.phase == Phase.HANDOVER


def test_docking_retries_then_kerb():
    m, _ = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 90.0)
    assert _kinds(m.handle(DockingFailed("marker not seen"), 91.0), Dock)
    assert _kinds(m.handle(DockingFailed("marker not seen"), 92.0), Dock)
    out = m.handle(DockingFailed("marker not seen"), 93.0)
    assert _kinds(out, Notify)[0].kind == "docking_failed" and _kinds(out, AwaitBoarding)


def test_navigation_failure_blocks_until_operator():
    m, _ = _mission()
    m.handle(Start(), 0.0)
    assert _kinds(m.handle(NavigationFailed("no path"), 1.0), NavigateTo)
    assert _kinds(m.handle(NavigationFailed("no path"), 2.0), NavigateTo)
    out = m.handle(NavigationFailed("no path"), 3.0)
    assert m.phase == Phase.BLOCKED and _kinds(out, HoldStill) and _kinds(out, RequestReplan)
    assert m.handle(GoalReached(), 4.0) == []
    out = m.handle(OperatorResume(), 5.0)
    assert _kinds(out, NavigateTo) and m.phase == Phase.DRIVE_TO_PICKUP


def test_replan_replaces_remaining_stops_and_keeps_onboard_child():
    m, buf = _mission()
    m.handle(Start(), 0.0)
    _board(m, 90.0, "anna")  # anna on board, driving to ben
    sick = CareStop("sick1", "cara", "pickup", (70.0, 70.0), 150.0, 600.0, place="nursery")
    clinic = CareStop("sick1", "cara", "dropoff", (250.0, 150.0), 0.0, 1200.0, place="clinic")
    # the dispatcher's plan forgot anna's drop-off: it is kept, first, and reported
    out = m.handle(PlanUpdated((sick, clinic)), 100.0)
    assert _kinds(out, Notify)[0].kind == "plan_repaired"
    assert [(s.request_id, s.action) for s in m.stops] == [("t1", "dropoff"), ("sick1", "pickup"),
                                                           ("sick1", "dropoff")]
    assert _kinds(out, NavigateTo)[0].xy == NURSERY
    # a plan that picks up a child already on board is rejected, the old one kept
    before = list(m.stops)
    out = m.handle(PlanUpdated((_stops()[0],)), 101.0)
    assert _kinds(out, Notify)[0].kind == "plan_rejected" and m.stops == before
    assert "plan_updated" in _events(buf) and "plan_rejected" in _events(buf)


def test_plan_held_back_during_boarding_counts_the_boarded_pickup_as_done():
    """The dispatcher planned before anna boarded (its plan still picks her up) and the plan arrived during
    the boarding: once she is on board that pick-up is done; her drop-off and the new trip are kept."""
    m, buf = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 90.0)
    m.handle(Docked(), 91.0)
    sick = CareStop("sick1", "cara", "pickup", (70.0, 70.0), 150.0, 600.0, place="nursery")
    clinic = CareStop("sick1", "cara", "dropoff", (250.0, 150.0), 0.0, 1200.0, place="clinic")
    stale = (_stops()[0], sick, _stops()[2], clinic)       # pick-up t1 (anna) planned before she boarded
    assert m.handle(PlanUpdated(stale), 92.0) == [] and m.phase == Phase.BOARDING
    out = m.handle(Boarded("anna"), 93.0)
    assert not _kinds(out, RequestReplan) and not [n for n in _kinds(out, Notify) if n.kind == "plan_rejected"]
    assert [(s.request_id, s.action) for s in m.stops] == [("sick1", "pickup"), ("t1", "dropoff"),
                                                           ("sick1", "dropoff")]
    assert _kinds(out, NavigateTo)[0].xy == (70.0, 70.0)
    assert "plan_pickup_done" in _events(buf) and "plan_rejected" not in _events(buf)


def test_replan_during_boarding_is_applied_after_the_stop():
    m, _ = _mission()
    m.handle(Start(), 0.0)
    m.handle(GoalReached(), 90.0)
    m.handle(Docked(), 91.0)
    new = (CareStop("t1", "anna", "dropoff", (5.0, 5.0), 0.0, 900.0),)
    assert m.handle(PlanUpdated(new), 92.0) == [] and m.phase == Phase.BOARDING
    out = m.handle(Boarded("anna"), 93.0)
    assert _kinds(out, NavigateTo)[0].xy == (5.0, 5.0)
    assert [(s.request_id, s.action) for s in m.stops] == [("t1", "dropoff")]


class _DiskFull(io.RawIOBase):
    def __init__(self, ok):
        self.ok = ok

    def writable(self):
        return True

    def write(self, b):
        if self.ok <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.ok -= 1
        return len(b)


def test_audit_failure_is_a_safe_stop_and_no_release_without_record():
    def to_nursery_handover(m):
        m.handle(Start(), 0.0)
        _board(m, 90.0, "anna")
        _board(m, 200.0, "ben")
        m.handle(GoalReached(), 300.0)
        m.handle(Docked(), 301.0)

    ref, buf = _mission()
    to_nursery_handover(ref)
    n_ok = len(_events(buf))  # the disk fills up right after these records
    log = AuditLog(_DiskFull(ok=n_ok), name="full.jsonl")
    m = CareMission(_stops(), PARAMS, log, robot="s1")
    to_nursery_handover(m)
    assert m.phase == Phase.HANDOVER
    out = m.handle(HandoverResult("anna", True, "ok", "staff"), 302.0)
    assert not _kinds(out, ReleaseChild)
    assert _kinds(out, HoldStill) and _kinds(out, Notify)[0].kind == "audit_failure"
    assert "disk full" in _kinds(out, Notify)[0].message
    assert m.phase == Phase.SAFE_STOP
    assert [r["event"] for r in log.unwritten] == ["handover_accepted"]
    # terminal: nothing restarts motion
    for ev in (EmergencyStopReset(), OperatorResume(), GoalReached(), Start()):
        assert _kinds(m.handle(ev, 303.0), HoldStill) and m.phase == Phase.SAFE_STOP


def test_params_validation_names_field():
    with pytest.raises(ValueError, match="guardian_wait_s"):
        CareMissionParams(guardian_escalate_s=100.0, guardian_wait_s=50.0)
    with pytest.raises(ValueError, match="battery_low_fraction"):
        CareMissionParams(battery_low_fraction=1.5)
    with pytest.raises(ValueError, match="action"):
        CareStop("t", "c", "fly", (0, 0))


def test_stops_from_dispatch_route():
    from agricare.core.planning.dispatch import Problem, solve_greedy

    prob = Problem.from_dict({"speed_mps": 2.0,
                              "vehicles": [{"id": "s1", "depot": [0, 0], "seats": 2, "available": [0, 5000]}],
                              "requests": [{"id": "t1", "pickup": [10, 0], "dropoff": [50, 0],
                                            "pickup_window": [100, 400], "dropoff_by": 900}]})
    sol = solve_greedy(prob)
    stops = stops_from_route(sol.routes["s1"], {r.request_id: r for r in prob.requests}, {"t1": "anna"},
                             {("t1", "dropoff"): 9}, {("t1", "dropoff"): "nursery"})
    assert [(s.child_id, s.action, s.marker_id) for s in stops] == [("anna", "pickup", -1), ("anna", "dropoff", 9)]
    assert stops[0].window_close_s == 400.0 and stops[1].window_close_s == 900.0





def test_stops_from_dispatcher_plan_json(repo_root):
    import yaml

    from agricare.core.missions.care import stops_from_plan
    from agricare.core.planning.dispatch import Problem, request_meta, solve

    data = yaml.safe_load((repo_root / "config" / "care" / "requests_day.yaml").read_text())
    prob = Problem.from_dict(data)
    plan = {"solution": solve(prob, method="greedy").to_json(), "meta": request_meta(data)}
    windows = {r["id"]: r for r in data["requests"]}
    stops = stops_from_plan(plan, "shuttle_1", windows, {"nursery": 9, "clinic": 10})
    assert stops and all(s.child_id.startswith("c") for s in stops)
    to_nursery = [s for s in stops if s.action == "dropoff" and s.place == "nursery"]
    assert to_nursery and all(s.marker_id == 9 for s in to_nursery)
    first = stops[0]
    assert (first.window_open_s, first.window_close_s) == tuple(windows[first.request_id]["pickup_window"])
    # the mission accepts them
    m = CareMission(stops, PARAMS)
    assert _kinds(m.handle(Start(), 0.0), NavigateTo)[0].xy == first.xy


def test_same_place_dropoffs_are_done_together():
    from agricare.core.missions.care import DROPOFF, PICKUP, CareStop, group_dropoffs

    nursery, clinic = (192.0, 101.8), (251.0, 98.2)
    stops = [CareStop("t3", "c3", PICKUP, (125.0, 98.2)), CareStop("t4", "c4", PICKUP, (155.0, 98.2)),
             CareStop("t4", "c4", DROPOFF, nursery), CareStop("s4", "c4", PICKUP, nursery),
             CareStop("s4", "c4", DROPOFF, clinic), CareStop("t3", "c3", DROPOFF, nursery),
             CareStop("t9", "c9", PICKUP, (10.0, 10.0)), CareStop("t9", "c9", DROPOFF, nursery)]
    out = group_dropoffs(stops)
    order = [(s.request_id, s.action) for s in out]
    # c3 leaves at the nursery with c4 instead of riding to the clinic and back; c9 (not yet aboard) stays
    assert order == [("t3", PICKUP), ("t4", PICKUP), ("t4", DROPOFF), ("t3", DROPOFF), ("s4", PICKUP),
                     ("s4", DROPOFF), ("t9", PICKUP), ("t9", DROPOFF)]
    # children already on board count too
    out2 = group_dropoffs([CareStop("a", "ca", DROPOFF, nursery), CareStop("x", "cx", PICKUP, clinic),
                           CareStop("b", "cb", DROPOFF, nursery)], onboard={"a", "b"})
    assert [s.request_id for s in out2] == ["a", "b", "x"]
