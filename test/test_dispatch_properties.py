"""Hypothesis: every dispatch output (OR-Tools and greedy) obeys all constraints of the issue."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agricare.core.planning.dispatch import Problem, Request, Vehicle, check_solution, solve, solve_greedy

coord = st.floats(0.0, 300.0, allow_nan=False).map(lambda v: round(v, 1))


@st.composite
def problems(draw):
    n_veh = draw(st.integers(1, 2))
    vehicles = []
    for k in range(n_veh):
        start = draw(st.integers(0, 600))
        vehicles.append(Vehicle(f"s{k}", (draw(coord), draw(coord)), draw(st.integers(1, 3)),
                                (float(start), float(start + draw(st.integers(600, 4000)))),
                                draw(st.sampled_from([float("inf"), 1500.0, 4000.0]))))
    reqs = []
    for i in range(draw(st.integers(1, 5))):
        open_s = draw(st.floats(0.0, 2000.0, allow_nan=False))
        width = draw(st.floats(0.0, 900.0, allow_nan=False))
        reqs.append(Request(
            f"c{i}", (draw(coord), draw(coord)), (draw(coord), draw(coord)), (open_s, open_s + width),
            open_s + width + draw(st.floats(0.0, 1500.0, allow_nan=False)),
            draw(st.sampled_from([0.0, 30.0, 45.5])), draw(st.floats(30.0, 1500.0, allow_nan=False)),
            draw(st.integers(1, 2)),
        ))
    speed = draw(st.sampled_from([1.5, 2.5, 4.0]))
    return Problem(speed, tuple(vehicles), tuple(reqs))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_greedy_output_obeys_constraints(prob):
    sol = solve_greedy(prob)
    assert check_solution(prob, sol) == []
    assert not sol.warnings


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_ortools_output_obeys_constraints(prob):
    sol = solve(prob, method="ortools", time_limit_s=0.05, keep_best=False)
    assert sol.method == "ortools", sol.method   # OR-Tools' own routes, not its greedy fallback
    assert check_solution(prob, sol) == []
    assert not sol.warnings
    # JSON round trip is checked the same way
    assert check_solution(prob, sol.to_json()) == []


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.booleans())
def test_replan_keeps_onboard_children_and_obeys_constraints(prob, take_out_other):
    from agricare.core.planning.dispatch import DROPOFF, VehicleState, replan

    first = solve_greedy(prob)
    busy = [(vid, r) for vid, r in first.routes.items() if r]
    assume(busy)  # nothing to re-plan around when no shuttle has a trip
    vid, route = busy[0]
    boarded = route[0]
    now = boarded.start_s + prob.request(boarded.request_id).service_s
    state = VehicleState(vid, boarded.xy, now, ((boarded.request_id, now),))
    others = [v.vehicle_id for v in prob.vehicles if v.vehicle_id != vid]
    oos = others[:1] if take_out_other else []
    p2 = replan(prob, now_s=now, states=[state], out_of_service=oos)
    ortools = solve(p2, method="ortools", time_limit_s=0.05, keep_best=False)
    assert ortools.method == "ortools", ortools.method   # OR-Tools' own routes, not its greedy fallback
    for sol in (solve_greedy(p2), ortools, solve(p2, iterations=30)):
        assert check_solution(p2, sol) == []
        assert [s.action for s in sol.routes[vid] if s.request_id == boarded.request_id] == [DROPOFF]
