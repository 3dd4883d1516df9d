"""Right of way between care shuttles (core rule): who gives way, where it goes, when it resumes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.missions.right_of_way import (
    FleetState,
    RightOfWay,
    RightOfWayParams,
    footprint_corners,
    give_way_path,
    out_of_corridor,
    priority,
)

FOOTPRINT = (2.2, 0.8, -1.0, 0.8, -1.0, -0.8, 2.2, -0.8)


def _state(name, t, pose, held=True, onboard=0, deadline=math.inf, giving_way=False):
    return FleetState(name, t, tuple(pose), held, onboard, deadline, giving_way)


def test_order_child_aboard_then_deadline_then_name():
    a = _state("shuttle_2", 0, (0, 0, 0), onboard=1, deadline=900)
    b = _state("shuttle_1", 0, (0, 0, 0), onboard=0, deadline=100)
    assert priority(a) < priority(b)                       # a child aboard keeps the way
    c = _state("shuttle_2", 0, (0, 0, 0), deadline=100)
    d = _state("shuttle_1", 0, (0, 0, 0), deadline=200)
    assert priority(c) < priority(d)                       # then the earlier deadline
    e, f = _state("shuttle_2", 0, (0, 0, 0)), _state("shuttle_1", 0, (0, 0, 0))
    assert priority(f) < priority(e)                       # then the name


def test_fleet_state_round_trip_and_malformed():
    s = _state("shuttle_1", 12.5, (1.0, 2.0, 0.5), onboard=2, deadline=300.0, giving_way=True)
    assert FleetState.from_dict(s.to_dict()) == s
    assert FleetState.from_dict(_state("x", 0, (0, 0, 0)).to_dict()).deadline_s == math.inf
    with pytest.raises((ValueError, KeyError, TypeError)):
        FleetState.from_dict({"name": "x", "t_s": 0, "pose": [0, "nan", 0], "held": True})


def _standoff(now_steps, a_kw=None, b_kw=None, params=None):
    """Two shuttles nose to nose 4 m apart on one line, both held, stepped for ``now_steps`` (s)."""
    p = params or RightOfWayParams()
    ra, rb = RightOfWay("shuttle_1", p), RightOfWay("shuttle_2", p)
    gave = {"shuttle_1": None, "shuttle_2": None}
    for k in range(int(now_steps / 0.2) + 1):
        t = 10.0 + 0.2 * k
        a = _state("shuttle_1", t, (100.0, 50.0, 0.0), **(a_kw or {}))
        b = _state("shuttle_2", t, (104.5, 50.0, math.pi), **(b_kw or {}))
        ra.on_peer(b)
        rb.on_peer(a)
        for r, me in ((ra, a), (rb, b)):
            if r.step(t, me) is not None and gave[me.name] is None:
                gave[me.name] = t
    return gave


def test_exactly_one_gives_way_after_detect_s():
    gave = _standoff(2.8)
    assert gave == {"shuttle_1": None, "shuttle_2": None}      # not before detect_s (3 s)
    gave = _standoff(5.0)
    assert gave["shuttle_1"] is None and gave["shuttle_2"] == pytest.approx(13.0)   # the name decides
    gave = _standoff(5.0, b_kw={"onboard": 1})
    assert gave["shuttle_2"] is None and gave["shuttle_1"] == pytest.approx(13.0)   # a child aboard keeps the way
    gave = _standoff(5.0, a_kw={"deadline": 500.0}, b_kw={"deadline": 200.0})
    assert gave["shuttle_2"] is None and gave["shuttle_1"] is not None              # the earlier deadline does


def test_no_stand_off_when_a_person_holds_or_the_peer_is_not_held():
    # "held" is false when the supervisor's cause is a person (the node sets it): nobody gives way
    assert _standoff(10.0, a_kw={"held": False}, b_kw={"held": False}) == {"shuttle_1": None, "shuttle_2": None}
    # only one side held (the other stands for its own reason, e.g. boarding): not a stand-off
    assert _standoff(10.0, b_kw={"held": False}) == {"shuttle_1": None, "shuttle_2": None}
    # a peer already giving way is never answered by giving way too
    assert _standoff(10.0, a_kw={"giving_way": True})["shuttle_2"] is None


def test_stale_or_far_or_behind_peer_is_not_a_stand_off():
    p = RightOfWayParams()
    r = RightOfWay("shuttle_2", p)
    me = _state("shuttle_2", 20.0, (100.0, 50.0, 0.0))
    r.on_peer(_state("shuttle_1", 20.0 - p.peer_timeout_s - 0.1, (104.0, 50.0, math.pi)))
    assert r.blocking_peer(20.0, me) is None                # stale
    r.on_peer(_state("shuttle_1", 20.0, (100.0 + p.near_m + 0.5, 50.0, math.pi)))
    assert r.blocking_peer(20.0, me) is None                # too far
    r.on_peer(_state("shuttle_1", 20.0, (96.0, 50.0, 0.0)))
    assert r.blocking_peer(20.0, me) is None                # behind
    r.on_peer(_state("shuttle_1", 20.0, (104.0, 51.0, math.pi)))
    assert r.blocking_peer(20.0, me).name == "shuttle_1"


@pytest.mark.parametrize("keeper, expect_side", [
    ((104.5, 50.0, math.pi), True),        # head-on on one line: reversing alone never clears it
    ((103.5, 46.0, math.pi / 2), False),   # the keeper crosses ahead (a U-turn): straight back is enough
])
def test_give_way_path_leaves_the_keepers_corridor(keeper, expect_side):
    p = RightOfWayParams()
    me = (100.0, 50.0, 0.0)
    path = give_way_path(me, keeper, FOOTPRINT, p, kerb_left=True)
    assert path is not None
    end = path[-1]
    assert out_of_corridor(footprint_corners(end, FOOTPRINT), keeper, p.corridor_half_m, p.corridor_length_m)
    assert not out_of_corridor(footprint_corners(me, FOOTPRINT), keeper, p.corridor_half_m, p.corridor_length_m)
    lateral = -math.sin(me[2]) * (end[0] - me[0]) + math.cos(me[2]) * (end[1] - me[1])
    back = math.cos(me[2]) * (end[0] - me[0]) + math.sin(me[2]) * (end[1] - me[1])
    assert back < -1.9 and (lateral > 0.4 if expect_side else abs(lateral) < 1e-9)   # kerb (left) side first
    # a drivable reversing path: small steps, curvature within what the shuttle turns
    steps = np.hypot(*np.diff(path[:, :2], axis=0).T)
    assert steps.max() < 0.25
    dyaw = np.abs(np.diff(np.unwrap(path[:, 2])))
    assert np.all(dyaw / steps <= 0.26)


def test_resume_after_the_keeper_passed_or_the_wait_limit():
    p = RightOfWayParams(wait_max_s=30.0)
    r = RightOfWay("shuttle_2", p)
    me = _state("shuttle_2", 10.0, (104.5, 50.0, math.pi))
    keeper = _state("shuttle_1", 10.0, (100.0, 50.0, 0.0))
    r.on_peer(keeper)
    for k in range(20):
        r.step(10.0 + 0.2 * k, _state("shuttle_2", 10.0 + 0.2 * k, me.pose))
    assert r.giving_way_to is not None
    t0 = r.gave_way_s
    aside = (110.0, 53.0, math.pi)                                        # reversed east and to the side
    r.on_peer(_state("shuttle_1", t0 + 5, (108.0, 50.0, 0.0)))            # alongside: not yet
    assert not r.may_resume(t0 + 5, aside)
    r.on_peer(_state("shuttle_1", t0 + 9, (115.0, 50.0, 0.0)))            # 5 m behind us: passed
    assert r.may_resume(t0 + 9, aside)
    r.on_peer(_state("shuttle_1", t0 + 9, (96.0, 50.0, 0.0)))             # far, but still ahead of us: not yet
    assert not r.may_resume(t0 + 9, aside)
    r.on_peer(_state("shuttle_1", t0 + 9, (108.0, 50.0, 0.0)))
    assert not r.may_resume(t0 + 29, aside) and r.may_resume(t0 + 30.0, aside)   # waited wait_max_s
    r.resumed(t0 + 30.0)
    assert r.giving_way_to is None and r.events[-1]["resumed_s"] == pytest.approx(t0 + 30.0)
