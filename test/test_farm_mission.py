"""Farm coverage mission state machine: pause/resume, refill, GNSS outage, with an along-path follower."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from agricare.core.missions import farm
from agricare.core.missions.farm import FarmMission, FarmMissionParams, MasterPlan, master_plan_from_coverage

FIELD = Polygon([(0, 0), (50, 0), (50, 36), (0, 36)])


@pytest.fixture(scope="module")
def coverage():
    from agricare.core.planning.coverage import CoverageParams, plan_coverage

    return plan_coverage(FIELD, CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=6.0))


def inside(xy):
    g = FIELD.buffer(0.01)
    return np.array([g.contains(Point(float(x), float(y))) for x, y in xy])


class AlongPathFollower:
    """Moves the tractor along the mission's active path at ``speed`` (m/s); records where it worked."""

    def __init__(self, mission, speed=3.0):
        self.m = mission
        self.speed = speed
        self.pos_s = 0.0
        self.worked = []          # list of (x, y) runs while the implement was on
        self._run = []
        self.pose = None
        self._active_id = None
        self._i = 0
        self.work_count = np.zeros(len(mission.plan), dtype=int)  # times each master pose was worked

    def step(self, dt):
        a = self.m.active
        if a is None or len(a.poses) == 0 or self.m._holding:  # the controller got an empty path: stand still
            self._close_run()
            return self.pose
        if id(a) != self._active_id:
            self._active_id = id(a)
            self.pos_s = 0.0
            self._i = 0
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(a.poses[:, :2], axis=0), axis=1))])
        self.pos_s = min(self.pos_s + self.speed * dt, s[-1])
        i = int(np.clip(np.searchsorted(s, self.pos_s), 0, len(s) - 1))
        self.pose = a.poses[i].copy()
        for k in range(self._i + 1, i + 1):  # every pose passed in this step
            if a.working[k] and a.master_index[k] >= 0:
                self.work_count[a.master_index[k]] += 1
        self._i = i
        if a.working[i]:
            self._run.append(tuple(self.pose[:2]))
        else:
            self._close_run()
        return self.pose

    def _close_run(self):
        if len(self._run) > 1:
            self.worked.append(self._run)
        self._run = []


def run(mission, follower, t_end=3000.0, dt=0.1, events=None):
    out = mission.start(0.0, [3.0, 3.0, 0.0])
    assert out.new_path is not None and len(out.new_path.poses) > 0
    follower.pose = out.new_path.poses[0].copy()
    t = 0.0
    states = []
    while mission.state not in (farm.DONE, farm.FAILED) and t < t_end:
        kw = events(t) if events else {}
        pose = follower.step(dt)
        out = mission.update(t, pose, **kw)
        states.append(out.state)
        t += dt
    follower._close_run()
    return t, states


def worked_area(follower, width):
    lines = [LineString(r).buffer(width / 2, cap_style="flat") for r in follower.worked if len(r) > 1]
    return unary_union(lines)


def test_params_validation():
    with pytest.raises(ValueError, match="depot_x_m"):
        FarmMissionParams(capacity_m=100.0)
    with pytest.raises(ValueError, match="gnss_stop_after_s"):
        FarmMissionParams(gnss_slow_after_s=5.0, gnss_stop_after_s=1.0)
    with pytest.raises(ValueError, match="turn_radius_m"):
        FarmMissionParams(turn_radius_m=0.0)
    with pytest.raises(ValueError):
        MasterPlan(np.zeros((1, 3)), [1], [True], [0])


def test_plain_run_completes_and_covers(coverage):
    m = FarmMission(master_plan_from_coverage(coverage), FarmMissionParams(), inside)
    f = AlongPathFollower(m)
    t, _ = run(m, f)
    assert m.state == farm.DONE
    assert m.progress() > 0.99
    inner = coverage.inner
    covered = worked_area(f, 3.0).intersection(inner).area / inner.area
    assert covered > 0.98


def test_pause_resume_leaves_no_gap_and_no_double_work(coverage):
    base = FarmMission(master_plan_from_coverage(coverage), FarmMissionParams(), inside)
    fb = AlongPathFollower(base)
    run(base, fb)
    m = FarmMission(master_plan_from_coverage(coverage), FarmMissionParams(), inside)
    f = AlongPathFollower(m)

    def events(t):
        return {"pause": 60.0 <= t < 90.0 or 200.0 <= t < 215.0}

    _, states = run(m, f, events=events)
    assert m.state == farm.DONE and m.pauses == 2
    assert farm.PAUSED in states
    _assert_no_gap_no_double(m, f, fb)


def _assert_no_gap_no_double(m, f, fb):
    """Every working pose of the plan worked (no gap); a pose worked twice only within one section width
    (1 m = 2 samples of 0.5 m) around each interruption."""
    work = m.plan.working.copy()
    work[0] = False  # the first pose is the start point, not passed through
    work[-3:] = False  # done within the goal tolerance
    assert np.all(fb.work_count[work] >= 1)
    missing = np.nonzero(work & (f.work_count == 0))[0]
    assert missing.size == 0, f"gap at master poses {missing[:10]}"
    doubled = np.nonzero(f.work_count > 1)[0]
    interruptions = max(1, m.pauses + m.refills)
    assert doubled.size <= 2 * interruptions + 2, f"double work at {doubled}"


def test_refill_trip_returns_to_the_same_spot(coverage):
    plan = master_plan_from_coverage(coverage)
    p = FarmMissionParams(capacity_m=250.0, depot_x_m=3.0, depot_y_m=3.0, refill_time_s=5.0)
    m = FarmMission(plan, p, inside)
    f = AlongPathFollower(m)
    _, states = run(m, f)
    assert m.state == farm.DONE
    expected = int(plan.work_s[-1] // 250.0 * 0.9)
    assert m.refills >= max(1, expected)
    for st in (farm.TO_DEPOT, farm.REFILLING, farm.RETURNING):
        assert st in states
    base = FarmMission(master_plan_from_coverage(coverage), FarmMissionParams(), inside)
    fb = AlongPathFollower(base)
    run(base, fb)
    _assert_no_gap_no_double(m, f, fb)
    # every detour stayed inside the field
    assert all(inside(np.array(r)).all() for r in f.worked)


def test_gnss_outage_slows_then_stops_then_resumes(coverage):
    m = FarmMission(master_plan_from_coverage(coverage), FarmMissionParams(gnss_slow_after_s=1.0,
                                                                           gnss_stop_after_s=5.0), inside)
    f = AlongPathFollower(m)
    outage = (50.0, 70.0)
    limits = []

    def events(t):
        age = t - outage[0] if outage[0] <= t < outage[1] else 0.0
        return {"gnss_age_s": age}

    out = m.start(0.0, [3.0, 3.0, 0.0])
    f.pose = out.new_path.poses[0].copy()
    t = 0.0
    seen = []
    while m.state != farm.DONE and t < 3000:
        pose = f.step(0.2)
        out = m.update(t, pose, **events(t))
        seen.append((t, out.state))
        limits.append((t, out.speed_limit_mps))
        t += 0.2
    states_in = [s for tt, s in seen if outage[0] + 1.5 <= tt < outage[0] + 4.5]
    assert states_in and all(s == farm.GNSS_SLOW for s in states_in)
    assert any(s == farm.GNSS_STOP for tt, s in seen if outage[0] + 5.5 <= tt < outage[1])
    assert all(lim == 0.0 for tt, lim in limits if outage[0] + 5.5 <= tt < outage[1] - 0.5)
    assert m.state == farm.DONE


def test_nan_pose_holds_without_progress(coverage):
    m = FarmMission(master_plan_from_coverage(coverage), FarmMissionParams(), inside)
    m.start(0.0, [3.0, 3.0, 0.0])
    before = m.index
    out = m.update(1.0, [np.nan, 0.0, 0.0])
    assert out.new_path is None and m.index == before and "finite" in out.message


def test_implement_goes_down_and_up_where_the_implement_is():
    x = np.arange(0.0, 20.01, 0.5)
    poses = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    working = (x >= 5.0) & (x <= 15.0)
    m = FarmMission(MasterPlan(poses, np.ones_like(x), working, np.zeros_like(x)),
                    FarmMissionParams(implement_offset_m=1.6))
    m.start(0.0, [0.0, 0.0, 0.0])
    seen = {}
    for xi in (4.0, 6.0, 7.0, 14.0, 16.0, 16.5, 17.0):
        m.update(xi, [xi, 0.0, 0.0])
        seen[xi] = m.implement_down()
    # base_link reaches the swath start at 5 m; the implement (1.6 m behind) at 6.6 m; it leaves at 16.6 m
    assert seen == {4.0: False, 6.0: False, 7.0: True, 14.0: True, 16.0: True, 16.5: True, 17.0: False}
    m.update(18.0, [18.0, 0.0, 0.0], pause=True)
    assert m.implement_down() is False


def test_implement_keeps_working_while_braking_to_a_hold():
    x = np.arange(0.0, 30.01, 0.5)
    poses = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    m = FarmMission(MasterPlan(poses, np.ones_like(x), x >= 2.0, np.zeros_like(x)),
                    FarmMissionParams(implement_offset_m=1.0))
    m.start(0.0, [0.0, 0.0, 0.0])
    m.update(1.0, [8.0, 0.0, 0.0])
    out = m.update(2.0, [9.0, 0.0, 0.0], gnss_age_s=20.0)       # GNSS lost: hold, still rolling
    assert out.state == farm.GNSS_STOP and len(out.new_path.poses) == 0
    m.update(3.0, [10.0, 0.0, 0.0], gnss_age_s=21.0)            # braking: 1 m further
    assert m.implement_down() is True and m.index == 20         # the braked metre is worked and counted
    m.update(4.0, [10.0, 0.0, 0.0], gnss_age_s=22.0)            # at rest
    assert m.implement_down() is False
    out = m.update(5.0, [10.0, 0.0, 0.0], gnss_age_s=0.0)       # fix back: resume where it stands
    assert out.new_path is not None and out.new_path.poses[0][0] == pytest.approx(10.0)


def test_progress_follows_a_machine_that_turns_a_reversing_manoeuvre_short():
    """Live run of the app (40 x 30 m field, 4.5 m turns): the controller ended a reversing turn ~5 m before
    the plan's cusp and drove on along the next pass. Progress must follow it there, not stay at the
    reversing part (it stayed put for 200 s of the run before)."""
    from agricare.core.planning.coverage import CoverageParams, plan_coverage

    field = Polygon([(0, 0), (40, 0), (40, 30), (0, 30)])
    cp = plan_coverage(field, CoverageParams(width_m=3.0, turn_radius_m=4.5, headland_width_m=6.0,
                                             robot_width_m=3.8, turn_type="dubins", route="optimal"))
    mp = master_plan_from_coverage(cp)
    m = FarmMission(mp, FarmMissionParams(turn_radius_m=4.5, implement_offset_m=1.5))
    m.start(0.0, mp.poses[0])
    a = m.active
    d = a.direction
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(a.poses[:, :2], axis=0), axis=1))])
    cusps = [i for i in range(1, len(d)) if d[i] != d[i - 1] and d[i] > 0]   # reverse -> forward
    c = cusps[0]
    t = 0.0
    for i in range(c):                           # the pass and the reversing turn, cut 5 m short of the cusp
        if s[c] - s[i] < 5.0:
            break
        t += 0.1
        m.update(t, a.poses[i])
    stuck_at = m.progress()
    after = [i for i in range(c, len(d)) if 6.0 < s[i] - s[c] < 20.0]   # on along the next pass, 0.3 m off
    for i in after:
        t += 0.1
        p = a.poses[i].copy()
        p[1] += 0.3
        m.update(t, p)
    assert m.progress() > stuck_at + 0.015, (stuck_at, m.progress())
    assert abs(m.progress() - mp.s[a.master_index[after[-1]]] / mp.s[-1]) < 0.01


def _line_mission(**kw):
    x = np.arange(0.0, 40.01, 0.5)
    poses = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    return FarmMission(MasterPlan(poses, np.ones_like(x), x >= 2.0, np.zeros_like(x)),
                       FarmMissionParams(turn_radius_m=4.0, **kw))


def _walk(m, x_end, t0=1.0):
    """Drive along the x axis to ``x_end`` in 1 m steps (the mission tracks within its search window)."""
    out = None
    for k, x in enumerate(np.arange(1.0, x_end + 1e-9, 1.0)):
        out = m.update(t0 + 0.4 * k, [x, 0.0, 0.0])
    return out


def test_goal_missed_mid_plan_re_approaches_where_work_stopped():
    m = _line_mission()
    m.start(0.0, [0.0, 0.0, 0.0])
    _walk(m, 10.0)
    assert m.index == 20
    # the controller stopped 3 m to the side (it reports goal_missed): a new path back to the plan, not a wait
    out = m.update(6.0, [12.0, 3.0, 0.0], goal_missed=True)
    assert out.state == farm.RUNNING and out.new_path is not None and out.new_path.reason == "re-approach"
    assert m.reapproaches == 1 and "re-approach 1" in out.message
    # it joins the plan at the master index reached (no gap) and then follows the rest of it
    j = int(np.argmax(out.new_path.master_index >= 0))
    assert m.index == 24                                  # the plan pose nearest to where it stopped
    assert out.new_path.master_index[j] == m.index and out.new_path.master_index[-1] == len(m.plan) - 1
    # a stale goal_missed right after the new path is the controller's word about the old one: ignored
    again = m.update(6.2, [12.0, 3.0, 0.0], goal_missed=True)
    assert again.new_path is None and m.reapproaches == 1


def test_goal_missed_repeatedly_fails_with_the_reason():
    m = _line_mission(max_reapproaches=2)
    m.start(0.0, [0.0, 0.0, 0.0])
    _walk(m, 10.0)
    states = [m.update(6.0 + 2 * k, [12.0, 3.0, 0.0], goal_missed=True).state for k in range(3)]
    assert states == [farm.RUNNING, farm.RUNNING, farm.FAILED]
    assert m.state == farm.FAILED and "missed the path end 3 times" in m.events[-1][2]
    assert m.update(20.0, [12.0, 3.0, 0.0]).state == farm.FAILED        # stays failed, the node aborts the goal


def test_goal_missed_at_the_end_of_the_job_completes():
    m = _line_mission()
    m.start(0.0, [0.0, 0.0, 0.0])
    _walk(m, 39.0)
    out = m.update(20.0, [41.5, 1.2, 0.0], goal_missed=True)   # past the end, 1.9 m off: not inside 1 m tolerance
    assert out.state == farm.DONE and "controller stopped" in out.message


def test_goal_missed_on_the_way_to_the_depot_re_approaches_the_depot():
    x = np.arange(0.0, 40.01, 0.5)
    poses = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    m = FarmMission(MasterPlan(poses, np.ones_like(x), np.ones_like(x, bool), np.zeros_like(x)),
                    FarmMissionParams(turn_radius_m=4.0, capacity_m=10.0, depot_x_m=20.0, depot_y_m=25.0))
    m.start(0.0, [0.0, 0.0, 0.0])
    out = _walk(m, 12.0)
    assert out.state == farm.TO_DEPOT
    out = m.update(9.0, [10.0, 15.0, 1.0], goal_missed=True)            # stopped 12 m short of the depot
    assert out.state == farm.TO_DEPOT and out.new_path.reason == "re-approach depot"
    assert np.hypot(*(out.new_path.poses[-1, :2] - [20.0, 25.0])) < 0.1
    out = m.update(12.0, [21.0, 26.5, 0.0], goal_missed=True)            # 1.8 m off the depot: arrived
    assert out.state == farm.REFILLING


def _circle(m, centre, radius, metres, t0, step=0.5):
    """Drive round a circle of ``radius`` about ``centre`` for ``metres`` in ``step`` m steps (one update each)."""
    out, n = None, int(metres / step)
    for k in range(n):
        a = k * step / radius
        out = m.update(t0 + 0.2 * k, [centre[0] + radius * np.sin(a), centre[1] + radius * (1 - np.cos(a)) - radius,
                                      a])
        if out.state == farm.FAILED:
            return out, (k + 1) * step
    return out, n * step


def test_circling_without_progress_stops_and_fails_with_the_reason():
    # a machine that circles (a bend tighter than it steers, a controller that cannot close on the path) drives
    # on for ever without getting further along its path: stopped and failed after stall_distance_m
    m = _line_mission(stall_distance_m=60.0)
    m.start(0.0, [0.0, 0.0, 0.0])
    _walk(m, 10.0)
    out, driven = _circle(m, (10.0, 4.0), 4.0, 200.0, 5.0)
    assert out.state == farm.FAILED and m.state == farm.FAILED
    assert "no progress along the path" in out.message and "stall_distance_m 60" in out.message
    assert out.new_path is not None and out.speed_limit_mps == 0.0      # a hold: the machine is stopped
    assert 55.0 < driven < 70.0                          # 60 m, plus the first metres near the path
    # off: the same circling goes on (the mission cannot tell, as before)
    m = _line_mission(stall_distance_m=0.0)
    m.start(0.0, [0.0, 0.0, 0.0])
    _walk(m, 10.0)
    out, driven = _circle(m, (10.0, 4.0), 4.0, 200.0, 5.0)
    assert out.state == farm.RUNNING and driven == 200.0


def test_progress_along_the_path_never_trips_the_stall_watch():
    m = _line_mission(stall_distance_m=5.0)
    m.start(0.0, [0.0, 0.0, 0.0])
    out = _walk(m, 39.0)
    assert m.state == farm.RUNNING and out.state == farm.RUNNING


def test_stall_distance_must_not_be_negative():
    with pytest.raises(ValueError, match="stall_distance_m"):
        FarmMissionParams(stall_distance_m=-1.0)
