"""Tractor coverage mission: follow a coverage plan with pause/resume, refill trips and GNSS-outage handling.

The mission owns the master plan (every pose with its direction, implement on/off and segment kind) and
hands the controller an *active* path: the remaining part of the master plan, or a detour (to the depot and
back) followed by the rest. Progress is the index of the master plan reached, tracked by a windowed
nearest-point search, so a pause or a detour resumes exactly where work stopped: no gap, no double work.

Runnable demo::

    PYTHONPATH=src python -m agricare.core.missions.farm
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from agricare.core.geometry import wrap_angle
from agricare.core.validation import require, require_non_negative, require_positive

MISS_DEBOUNCE_S = 1.0
RUNNING, PAUSED, TO_DEPOT, REFILLING, RETURNING, GNSS_SLOW, GNSS_STOP, DONE, FAILED = (
    "running", "paused", "to_depot", "refilling", "returning", "gnss_slow", "gnss_stop", "done", "failed")


@dataclasses.dataclass(frozen=True)
class FarmMissionParams:
    """Mission parameters (SI units).

    ``capacity_m``: metres of work one tank/hopper allows (0 = unlimited). ``depot_x_m``/``depot_y_m``: where
    to refill (must be reachable inside the field). GNSS: after ``gnss_slow_after_s`` without a good fix the
    speed is limited to ``gnss_slow_speed_mps``; after ``gnss_stop_after_s`` the tractor stops until the fix
    returns. ``stall_distance_m`` (0 = off): the machine drove this far without getting 1 m further along its active
    path (circling round a bend tighter than it steers, or a controller that cannot close on the path): the mission
    stops the machine and fails with the reason instead of driving on for ever.
    """

    capacity_m: float = 0.0
    depot_x_m: float = float("nan")
    depot_y_m: float = float("nan")
    depot_yaw_rad: float = 0.0
    refill_time_s: float = 30.0
    turn_radius_m: float = 4.0
    gnss_slow_after_s: float = 1.0
    gnss_stop_after_s: float = 10.0
    gnss_slow_speed_mps: float = 0.5
    search_window_m: float = 8.0
    goal_tolerance_m: float = 1.0
    sample_step_m: float = 0.5
    implement_offset_m: float = 0.0   # implement working line behind base_link (m): it trails the plan
    implement_overlap_m: float = 0.0  # lower this much early and raise this much late (no seam at the ends)
    max_reapproaches: int = 3         # controller goal_missed at the same place this often -> failed
    end_tolerance_m: float = 3.0      # goal_missed this close to the end of the job / the depot counts as there
    stall_distance_m: float = 150.0   # driven without 1 m of progress along the active path -> stopped, failed

    def __post_init__(self):
        require_non_negative(self, "capacity_m", "refill_time_s", "implement_offset_m", "implement_overlap_m",
                             "max_reapproaches", "end_tolerance_m", "stall_distance_m")
        require_positive(self, "turn_radius_m", "gnss_slow_after_s", "gnss_stop_after_s", "gnss_slow_speed_mps",
                         "search_window_m", "goal_tolerance_m", "sample_step_m")
        require(self.gnss_stop_after_s >= self.gnss_slow_after_s, "gnss_stop_after_s",
                "must be >= gnss_slow_after_s", self.gnss_stop_after_s)
        if self.capacity_m > 0:
            require(math.isfinite(self.depot_x_m) and math.isfinite(self.depot_y_m), "depot_x_m",
                    "and depot_y_m must be set when capacity_m > 0", (self.depot_x_m, self.depot_y_m))


@dataclasses.dataclass
class MasterPlan:
    """The whole job: poses (N, 3) x, y, yaw; direction (N,) +1/-1; working (N,) bool; kind (N,) int."""

    poses: np.ndarray
    direction: np.ndarray
    working: np.ndarray
    kind: np.ndarray

    def __post_init__(self):
        self.poses = np.asarray(self.poses, dtype=float).reshape(-1, 3)
        n = len(self.poses)
        self.direction = np.asarray(self.direction, dtype=np.int8).reshape(n)
        self.working = np.asarray(self.working, dtype=bool).reshape(n)
        self.kind = np.asarray(self.kind, dtype=np.int8).reshape(n)
        if n < 2 or not np.all(np.isfinite(self.poses)):
            raise ValueError("a mission plan needs at least 2 finite poses")
        seg = np.linalg.norm(np.diff(self.poses[:, :2], axis=0), axis=1)
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.work_s = np.concatenate([[0.0], np.cumsum(seg * self.working[1:])])

    def __len__(self):
        return len(self.poses)


@dataclasses.dataclass
class ActivePath:
    """What the controller follows now. ``master_index[i]`` is the master index of pose i, -1 in a detour."""

    poses: np.ndarray
    direction: np.ndarray
    working: np.ndarray
    master_index: np.ndarray
    reason: str


@dataclasses.dataclass
class MissionOutput:
    state: str
    new_path: ActivePath | None = None      # publish when not None (an empty path means: stop and hold)
    speed_limit_mps: float | None = None    # None = no mission limit
    message: str = ""


def connector(start, goal, radius_m: float, step_m: float, inside=None, allow_reverse: bool = True):
    """A drivable path start -> goal: the shortest of Dubins and (``allow_reverse``) Reeds-Shepp that stays
    ``inside`` (callable on (N, 2)).

    Returns (poses (N, 3), direction (N,)) or None when no candidate stays inside.
    """
    from agricare.core.planning import turns

    cands = [turns.dubins_path(start, goal, radius_m)]
    if allow_reverse:
        try:
            cands += turns.reeds_shepp_candidates(start, goal, radius_m)
        except Exception:  # no RS word for this geometry: Dubins only
            pass
    best = None
    for prims in cands:
        if not prims:
            continue
        smp = turns.sample_primitives(start, prims, step_m)
        if inside is not None and not bool(np.all(inside(smp.xy))):
            continue
        if best is None or smp.length_m < best.length_m:
            best = smp
    if best is None:
        return None
    return np.column_stack([best.xy, best.yaw]), best.direction.astype(np.int8)


def lead_in(pose, goal, radius_m: float, step_m: float, inside=None, max_extension_m: float = 30.0):
    """A drivable path from ``pose`` to ``goal`` that stays ``inside``.

    Forward-only first: a Dubins path, from the pose or after driving straight ahead 1, 2, ... m (the usual
    way to line up on a swath from a field entrance); only then Reeds-Shepp manoeuvres with reversing.
    """

    x, y, th = (float(v) for v in pose)

    def straight(d):
        n = max(2, int(math.ceil(abs(d) / step_m)) + 1)
        s = np.linspace(0.0, d, n)
        return np.column_stack([x + s * math.cos(th), y + s * math.sin(th), np.full(n, th)])

    for d in np.arange(0.0, max_extension_m + 0.5, 1.0):
        pre = straight(d)
        if d > 0 and inside is not None and not bool(np.all(inside(pre[:, :2]))):
            break
        rest = connector(pre[-1], goal, radius_m, step_m, inside, allow_reverse=False)
        if rest is not None:
            if d == 0:
                return rest
            return np.vstack([pre, rest[0][1:]]), np.concatenate([np.ones(len(pre), np.int8), rest[1][1:]])
    direct = connector(pose, goal, radius_m, step_m, inside)
    if direct is not None:
        return direct
    for d in np.arange(1.0, max_extension_m + 0.5, 1.0):
        for gear in (1, -1):
            pre = straight(gear * d)
            if inside is not None and not bool(np.all(inside(pre[:, :2]))):
                continue
            rest = connector(pre[-1], goal, radius_m, step_m, inside)
            if rest is not None:
                return np.vstack([pre, rest[0][1:]]), np.concatenate([np.full(len(pre), gear, np.int8), rest[1][1:]])
    return None


class FarmMission:
    """State machine of one coverage job.

    Parameters
    ----------
    plan : MasterPlan
    params : FarmMissionParams
    inside : callable or None
        ``inside(points (N, 2)) -> bool array``: where the tractor may drive (the field); detours are checked.
    """

    #: off the path before a cusp by more than this (m), the part after it may take over (:meth:`_past_cusp`)
    CUSP_LEFT_M = 1.5

    def __init__(self, plan: MasterPlan, params: FarmMissionParams, inside=None):
        plan = self._run_out(plan, params, inside)
        self.plan = plan
        self.p = params
        self.inside = inside
        self.state = RUNNING
        self.index = 0                      # master index reached
        self.active: ActivePath | None = None
        self._active_i = 0
        self.work_since_fill_m = 0.0
        self.refills = 0
        self.pauses = 0
        self._refill_until = None
        self._resume_index = None
        self._paused_from = None
        self._last_work_s = 0.0
        self._holding = False
        self._moving = False
        self._last_pose = None
        self._gear = 0                      # the machine's observed motion: +1 forwards, -1 reversing, 0 unknown
        self.reapproaches = 0               # re-approaches after the controller missed an active path's end
        self._missed_at = None              # (master index, count) of consecutive misses at one place
        self._t = 0.0                       # time of the last start/update
        self._active_t = 0.0                # when the active path was handed out
        self._stall = (0.0, 0.0)            # (arc length reached on the active path, metres driven since it grew 1 m)
        self.events: list[tuple[float, str, str]] = []

    @staticmethod
    def _run_out(plan: MasterPlan, p: FarmMissionParams, inside) -> MasterPlan:
        """Drive on straight past a working end by the implement offset, so the trailing implement works the
        last metres too (it is lowered and raised where the implement is, not where base_link is)."""
        if p.implement_offset_m <= 0 or not plan.working[-1] or plan.direction[-1] < 0:
            return plan
        x, y, th = plan.poses[-1]
        n = int(math.ceil(p.implement_offset_m / p.sample_step_m))
        d = np.linspace(p.implement_offset_m / n, p.implement_offset_m, n)
        ext = np.column_stack([x + d * math.cos(th), y + d * math.sin(th), np.full(n, th)])
        # only on a straight end (the run-out then stays on the pass's own line, as far from the boundary)
        tail = plan.poses[-min(len(plan), 6):, 2]
        if float(np.max(np.abs(wrap_angle(tail - th)))) > 0.02:
            return plan
        return MasterPlan(np.vstack([plan.poses, ext]), np.concatenate([plan.direction, np.ones(n, np.int8)]),
                          np.concatenate([plan.working, np.zeros(n, bool)]),
                          np.concatenate([plan.kind, np.full(n, plan.kind[-1], np.int8)]))

    # ------------------------------------------------------------------ helpers
    def _event(self, t, state, why):
        if state != self.state:
            self.events.append((float(t), state, why))
        self.state = state

    def _remaining_from(self, k: int, reason: str) -> ActivePath:
        k = int(np.clip(k, 0, len(self.plan) - 1))
        idx = np.arange(k, len(self.plan))
        return ActivePath(self.plan.poses[idx], self.plan.direction[idx], self.plan.working[idx], idx, reason)

    def _set_active(self, path: ActivePath) -> ActivePath:
        self.active = path
        self._active_t = self._t
        self._holding = False
        self._active_i = 0
        self._stall = (0.0, 0.0)
        self._active_s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path.poses[:, :2], axis=0),
                                                                        axis=1))]) if len(path.poses) else None
        return path

    def implement_down(self) -> bool:
        """Whether the implement works now: the plan's working flag where the implement is, i.e.
        ``implement_offset_m`` behind base_link along the path (it goes down and up at the swath ends,
        not ``offset`` early). Always up while holding, reversing or in a non-working state."""
        a = self.active
        if a is None or len(a.poses) == 0:
            return False
        if self._holding:
            if not (self._moving and self.state in (PAUSED, GNSS_STOP)):
                return False  # at rest, refilling, done or failed: raised
        elif self.state not in (RUNNING, GNSS_SLOW, RETURNING):
            return False
        i = self._active_i
        # the planner labels a pose with the direction arriving at it: the pose where a reverse leg ends (backed into
        # a corner) is labelled -1 and the pass leaving it +1; there the implement goes down once the machine has
        # stopped reversing, not a few decimetres into the pass (the strip behind the corner would stay unworked)
        at_cusp = a.direction[i] < 0 and i + 1 < len(a.direction) and a.direction[i + 1] > 0 \
            and (self._gear > 0 or not self._moving)
        if a.direction[i] < 0 and not at_cusp:
            return False
        s_impl = self._active_s[i] - self.p.implement_offset_m
        # after a cusp (a manoeuvre that reversed into a corner) the implement is behind the machine on ground
        # the path has just reversed over, not on the path before the cusp: it follows the flags from the cusp
        back = a.direction[:i + 1]
        cusp = int(np.flatnonzero(back[1:] != back[:-1])[-1]) + 1 if len(back) > 1 and np.any(back[1:] != back[:-1]) \
            else 0
        if at_cusp:
            cusp = i + 1
        for ds in (self.p.implement_overlap_m, -self.p.implement_overlap_m):
            j = int(np.searchsorted(self._active_s, s_impl + ds, side="left"))
            j = max(j, cusp)
            if a.working[min(max(j, 0), len(a.working) - 1)]:
                return True
        return False

    def progress(self) -> float:
        return float(self.plan.s[self.index] / self.plan.s[-1]) if self.plan.s[-1] > 0 else 1.0

    def _track(self, pose) -> None:
        """Advance the active index by a windowed nearest-point search (never backwards)."""
        a = self.active
        if a is None or len(a.poses) == 0:
            return
        i0 = self._active_i
        s = self._active_s
        i1 = int(np.searchsorted(s, s[i0] + self.p.search_window_m, side="right"))
        seg = a.poses[i0:max(i1, i0 + 1), :2]
        d = np.linalg.norm(seg - np.asarray(pose[:2], dtype=float), axis=1)
        # prefer the earliest index among near-equal candidates (cusps revisit the same spot)
        j = int(np.argmin(d + 1e-3 * np.arange(len(d))))
        # do not skip across a direction change (cusp) we have not reached
        dirs = a.direction[i0:i0 + j + 1]
        if len(dirs) > 1 and np.any(dirs[1:] != dirs[:-1]):
            changes = np.flatnonzero(dirs[1:] != dirs[:-1]) + 1
            first_cusp = int(changes[0])
            if d[j] > 0.5 and j > first_cusp:
                j = first_cusp
            # a manoeuvre's legs retrace each other (reversing back along the pass just driven): the index passes
            # a cusp only once the machine moves the new way, and never two cusps at once
            if self._gear and j >= first_cusp and self._gear != int(dirs[first_cusp]):
                j = first_cusp - 1
            elif len(changes) > 1 and j >= int(changes[1]):
                j = int(changes[1]) - 1
        j = self._past_cusp(pose, i0, j, d)
        self._active_i = i0 + j
        mi = int(a.master_index[self._active_i])
        if mi >= 0 and mi > self.index:
            self.work_since_fill_m += float(self.plan.work_s[mi] - self.plan.work_s[self.index])
            self.index = mi

    def _stalled(self, driven: float) -> bool:
        """``stall_distance_m``: count the metres driven while moving along the active path (not holding) since the
        arc length reached on it last grew by 1 m; True once they pass the limit."""
        if self.p.stall_distance_m <= 0 or self.active is None or self._active_s is None or self._holding or \
                self.state not in (RUNNING, GNSS_SLOW, RETURNING, TO_DEPOT):
            return False
        reached, since = self._stall
        s = float(self._active_s[self._active_i])
        if s >= reached + 1.0:
            self._stall = (s, 0.0)
            return False
        self._stall = (reached, since + driven)
        return self._stall[1] > self.p.stall_distance_m

    def _past_cusp(self, pose, i0: int, j: int, d) -> int:
        """The machine changed direction before reaching the path's next cusp (the controller turns a
        reversing manoeuvre short) and drives on along the part after it: continue from there. Taken only
        when it is clearly off the part before the cusp (> ``CUSP_LEFT_M``), clearly nearer to the part after
        it, and heading its way (within 60 deg); otherwise the windowed search's answer ``j`` stands."""
        a = self.active
        near = float(np.min(d))
        if len(pose) < 3 or not np.isfinite(pose[2]) or near <= self.CUSP_LEFT_M:
            return j
        dirs = a.direction[i0:]
        change = np.flatnonzero(dirs[1:] != dirs[:-1])
        if len(change) == 0:
            return j
        c = i0 + int(change[0]) + 1          # first pose after the next cusp
        s = self._active_s
        c1 = int(np.searchsorted(s, s[c] + self.p.search_window_m, side="right"))
        post = a.poses[c:max(c1, c + 1)]
        dp = np.linalg.norm(post[:, :2] - np.asarray(pose[:2], dtype=float), axis=1)
        k = int(np.argmin(dp))
        heading_ok = abs(wrap_angle(float(post[k, 2]) - float(pose[2]))) < math.radians(60.0)
        if heading_ok and dp[k] < near - 0.5:
            return c + k - i0
        return j

    def _at_end_of_active(self, pose) -> bool:
        a = self.active
        return a is not None and len(a.poses) > 0 and self._active_i >= len(a.poses) - 2 and \
            float(np.hypot(*(a.poses[-1, :2] - np.asarray(pose[:2])))) <= self.p.goal_tolerance_m

    # ------------------------------------------------------------------ API
    def start(self, t: float, pose) -> MissionOutput:
        """First output: the lead-in from ``pose`` to the plan start, then the plan."""
        pose = np.asarray(pose, dtype=float)
        self._t = float(t)
        start = self.plan.poses[0]
        if float(np.hypot(*(start[:2] - pose[:2]))) < self.p.goal_tolerance_m and \
                abs(wrap_angle(start[2] - pose[2])) < 0.3:
            path = self._remaining_from(0, "plan")
        else:
            con = lead_in(pose, start, self.p.turn_radius_m, self.p.sample_step_m, self.inside)
            if con is None:
                self._event(t, FAILED, "no drivable lead-in to the plan start inside the field")
                return MissionOutput(FAILED, ActivePath(np.zeros((0, 3)), np.zeros(0, np.int8), np.zeros(0, bool),
                                                        np.zeros(0, int), "failed"), message=self.events[-1][2])
            rest = self._remaining_from(0, "plan")
            n = len(con[0])
            path = ActivePath(np.vstack([con[0], rest.poses[1:]]), np.concatenate([con[1], rest.direction[1:]]),
                              np.concatenate([np.zeros(n, bool), rest.working[1:]]),
                              np.concatenate([-np.ones(n - 1, int), [0], rest.master_index[1:]]), "lead-in")
        self._event(t, RUNNING, "started")
        return MissionOutput(RUNNING, self._set_active(path), None, "started")

    def update(self, t: float, pose, gnss_age_s: float = 0.0, pause: bool = False,
               goal_reached: bool = False, goal_missed: bool = False) -> MissionOutput:
        """One mission step.

        Parameters
        ----------
        t : float
            Time, seconds.
        pose : array_like (3,)
            Current pose in the plan frame; NaN -> hold (no progress, no new path).
        gnss_age_s : float
            Seconds since the last good GNSS fix (0 when fresh).
        pause : bool
            Operator or safety pause request (True holds, False resumes).
        goal_reached : bool
            The controller reports the end of the active path.
        goal_missed : bool
            The controller stopped past the end of the active path outside its tolerance (it drives no
            further): the mission re-approaches (the depot, or the plan where work stopped), ends the job when
            the machine is within ``end_tolerance_m`` of the end, and fails with the reason after
            ``max_reapproaches`` misses at the same place.
        """
        if self.state in (DONE, FAILED):
            return MissionOutput(self.state)
        self._t = float(t)
        pose = np.asarray(pose, dtype=float)
        if not np.all(np.isfinite(pose)):
            return MissionOutput(self.state, message="pose not finite: holding")
        # track in every state: while holding, the machine still rolls to a stop along its last path
        driven = 0.0 if self._last_pose is None else float(np.hypot(*(pose[:2] - self._last_pose[:2])))
        self._moving = self._last_pose is None or driven > 0.01
        if self._moving and self._last_pose is not None:
            step = pose[:2] - self._last_pose[:2]
            self._gear = 1 if step[0] * math.cos(pose[2]) + step[1] * math.sin(pose[2]) >= 0.0 else -1
        self._last_pose = pose.copy()
        self._track(pose)
        if self._stalled(driven):
            msg = (f"no progress along the path for {self._stall[1]:.0f} m driven (stall_distance_m "
                   f"{self.p.stall_distance_m:g}): stopped")
            self._event(t, FAILED, msg)
            return MissionOutput(FAILED, self._set_hold(), 0.0, msg)

        # pause / resume (operator, safety)
        if pause and self.state != PAUSED:
            self._paused_from = self.state
            self.pauses += 1
            self._event(t, PAUSED, "pause requested")
            return MissionOutput(PAUSED, self._set_hold(), None, "paused")
        if self.state == PAUSED:
            if pause:
                return MissionOutput(PAUSED)
            resume_state = self._paused_from if self._paused_from not in (None, PAUSED) else RUNNING
            self._event(t, resume_state, "resumed")
            return MissionOutput(resume_state, self._resume_path(pose, "resume"), None, "resumed")

        # GNSS outage: slow, then stop until the fix returns
        if gnss_age_s >= self.p.gnss_stop_after_s:
            if self.state != GNSS_STOP:
                self._paused_from = self.state if self.state != GNSS_SLOW else RUNNING
                self._event(t, GNSS_STOP, f"no GNSS fix for {gnss_age_s:.1f} s")
                return MissionOutput(GNSS_STOP, self._set_hold(), 0.0, "GNSS lost: stopped")
            return MissionOutput(GNSS_STOP, None, 0.0)
        if self.state == GNSS_STOP:
            back = self._paused_from or RUNNING
            self._event(t, back, "GNSS fix back")
            return MissionOutput(back, self._resume_path(pose, "gnss back"), None, "GNSS back: resumed")
        if gnss_age_s >= self.p.gnss_slow_after_s:
            if self.state == RUNNING:
                self._event(t, GNSS_SLOW, f"GNSS fix {gnss_age_s:.1f} s old")
            limit = self.p.gnss_slow_speed_mps
        else:
            if self.state == GNSS_SLOW:
                self._event(t, RUNNING, "GNSS fix fresh")
            limit = None

        # refill trips
        if self.state == REFILLING:
            if t >= self._refill_until:
                self.work_since_fill_m = 0.0
                self.refills += 1
                self._event(t, RETURNING, "refilled")
                resume = self.plan.poses[self._resume_index]
                con = connector(pose, resume, self.p.turn_radius_m, self.p.sample_step_m, self.inside)
                if con is None:
                    self._event(t, FAILED, "no drivable path back from the depot")
                    return MissionOutput(FAILED, self._set_hold(), 0.0, self.events[-1][2])
                rest = self._remaining_from(self._resume_index, "rest")
                n = len(con[0])
                path = ActivePath(np.vstack([con[0], rest.poses[1:]]), np.concatenate([con[1], rest.direction[1:]]),
                                  np.concatenate([np.zeros(n, bool), rest.working[1:]]),
                                  np.concatenate([-np.ones(n - 1, int), [self._resume_index],
                                                  rest.master_index[1:]]), "return from depot")
                return MissionOutput(RETURNING, self._set_active(path), limit, "returning to work")
            return MissionOutput(REFILLING, None, 0.0)
        # a miss reported within MISS_DEBOUNCE_S of a new path is the controller's state for the previous one
        if goal_missed and self.state in (RUNNING, GNSS_SLOW, RETURNING, TO_DEPOT) and not self._holding and \
                t - self._active_t >= MISS_DEBOUNCE_S:
            return self._on_goal_missed(t, pose, limit)
        if self.state == TO_DEPOT:
            if self._at_end_of_active(pose) or goal_reached:
                self._refill_until = t + self.p.refill_time_s
                self._event(t, REFILLING, "at depot")
                return MissionOutput(REFILLING, self._set_hold(), 0.0, "refilling")
            return MissionOutput(TO_DEPOT, None, limit)
        if self.state == RETURNING and self.active is not None and \
                self.active.master_index[self._active_i] >= 0:
            self._event(t, RUNNING, "back at work")
        if self.p.capacity_m > 0 and self.index < len(self.plan) - 2 and (
                (self.work_since_fill_m >= self.p.capacity_m and not self.plan.working[self.index])
                or self.work_since_fill_m >= 1.1 * self.p.capacity_m):
            # at the end of a pass when possible; mid-pass only when the tank is really empty
            return self._go_refill(t, pose, limit)

        # end of the job
        if self.index >= len(self.plan) - 2 and (goal_reached or self._at_end_of_active(pose)):
            self._event(t, DONE, "plan complete")
            return MissionOutput(DONE, self._set_hold(), 0.0, "done")
        return MissionOutput(self.state, None, limit)

    def _on_goal_missed(self, t, pose, limit) -> MissionOutput:
        """The controller stopped past the end of the active path: arrive, re-approach or fail (never wait)."""
        a = self.active
        end = a.poses[-1] if a is not None and len(a.poses) else None
        miss = float(np.hypot(*(end[:2] - pose[:2]))) if end is not None else math.inf
        if self.state == TO_DEPOT and miss <= self.p.end_tolerance_m:   # close enough to the depot: arrived
            self._refill_until = t + self.p.refill_time_s
            self._event(t, REFILLING, f"at depot (controller stopped {miss:.1f} m from it)")
            return MissionOutput(REFILLING, self._set_hold(), 0.0, "refilling")
        if self.state != TO_DEPOT and self.index >= len(self.plan) - 2 and miss <= self.p.end_tolerance_m:
            self._event(t, DONE, f"plan complete (controller stopped {miss:.1f} m from the end)")
            return MissionOutput(DONE, self._set_hold(), 0.0, self.events[-1][2])
        key = -1 if self.state == TO_DEPOT else self.index
        n = self._missed_at[1] + 1 if self._missed_at is not None and self._missed_at[0] == key else 1
        self._missed_at = (key, n)
        where = "the depot" if key < 0 else f"master index {key} of {len(self.plan)}"
        if n > self.p.max_reapproaches:
            self._event(t, FAILED, f"controller missed the path end {n} times at {where} ({miss:.1f} m off); "
                                   "giving up")
            return MissionOutput(FAILED, self._set_hold(), 0.0, self.events[-1][2])
        self.reapproaches += 1
        if self.state == TO_DEPOT:
            depot = np.array([self.p.depot_x_m, self.p.depot_y_m, self.p.depot_yaw_rad])
            con = lead_in(pose, depot, self.p.turn_radius_m, self.p.sample_step_m, self.inside)
            if con is None:
                self._event(t, FAILED, f"controller missed the depot ({miss:.1f} m off) and no drivable "
                                       "re-approach inside the field")
                return MissionOutput(FAILED, self._set_hold(), 0.0, self.events[-1][2])
            path = ActivePath(con[0], con[1], np.zeros(len(con[0]), bool), -np.ones(len(con[0]), int),
                              "re-approach depot")
            self.events.append((float(t), self.state, f"re-approach {n} to the depot ({miss:.1f} m off)"))
            return MissionOutput(TO_DEPOT, self._set_active(path), limit, self.events[-1][2])
        k = int(self.index)
        con = lead_in(pose, self.plan.poses[k], self.p.turn_radius_m, self.p.sample_step_m, self.inside)
        if con is None:
            self._event(t, FAILED, f"controller missed the path end ({miss:.1f} m off) and no drivable "
                                   f"re-approach to {where} inside the field")
            return MissionOutput(FAILED, self._set_hold(), 0.0, self.events[-1][2])
        rest = self._remaining_from(k, "rest")
        m = len(con[0])
        path = ActivePath(np.vstack([con[0], rest.poses[1:]]), np.concatenate([con[1], rest.direction[1:]]),
                          np.concatenate([np.zeros(m, bool), rest.working[1:]]),
                          np.concatenate([-np.ones(m - 1, int), [k], rest.master_index[1:]]), "re-approach")
        if self.state == RETURNING:
            self._event(t, RUNNING, "back at work")
        self.events.append((float(t), self.state, f"re-approach {n} to {where} ({miss:.1f} m off)"))
        return MissionOutput(self.state, self._set_active(path), limit, self.events[-1][2])

    def _set_hold(self) -> ActivePath:
        """An empty path for the controller (stop and hold). Tracking goes on along the last path, so the
        ground the machine covers while it brakes counts, and the implement works it (no gap on resume)."""
        empty = ActivePath(np.zeros((0, 3)), np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0, int), "hold")
        self.active_before_hold = self.active
        self._holding = True
        return empty

    def _resume_path(self, pose, why) -> ActivePath:
        prev = getattr(self, "active_before_hold", None)
        if prev is not None and len(prev.poses):
            # keep an unfinished detour (depot trip) as it was, from where we are
            i = self._nearest_in(prev, pose)
            sl = slice(i, None)
            return self._set_active(ActivePath(prev.poses[sl], prev.direction[sl], prev.working[sl],
                                               prev.master_index[sl], why))
        return self._set_active(self._remaining_from(self.index, why))

    @staticmethod
    def _nearest_in(path: ActivePath, pose) -> int:
        d = np.linalg.norm(path.poses[:, :2] - np.asarray(pose[:2]), axis=1)
        return int(np.argmin(d))

    def _go_refill(self, t, pose, limit) -> MissionOutput:
        depot = np.array([self.p.depot_x_m, self.p.depot_y_m, self.p.depot_yaw_rad])
        con = connector(pose, depot, self.p.turn_radius_m, self.p.sample_step_m, self.inside)
        if con is None:
            self._event(t, FAILED, "no drivable path to the depot inside the field")
            return MissionOutput(FAILED, self._set_hold(), 0.0, self.events[-1][2])
        self._resume_index = self.index
        n = len(con[0])
        path = ActivePath(con[0], con[1], np.zeros(n, bool), -np.ones(n, int), "to depot")
        self._event(t, TO_DEPOT, f"tank empty after {self.work_since_fill_m:.0f} m of work")
        return MissionOutput(TO_DEPOT, self._set_active(path), limit, "driving to the depot")

    def figures(self) -> dict:
        return {"progress": round(self.progress(), 4), "master_index": int(self.index),
                "work_done_m": round(float(self.plan.work_s[self.index]), 1),
                "work_total_m": round(float(self.plan.work_s[-1]), 1), "refills": self.refills,
                "pauses": self.pauses, "reapproaches": self.reapproaches, "state": self.state}


def load_scenario_field(scenario_file, field_name: str):
    """The shapely Polygon (with holes) of field ``field_name`` of a simulator scenario YAML."""
    import pathlib

    import yaml
    from shapely.geometry import Polygon

    data = yaml.safe_load(pathlib.Path(scenario_file).read_text()) or {}
    for f in (data.get("world") or {}).get("fields") or []:
        if f.get("name") == field_name:
            return Polygon(f["polygon"], f.get("holes") or [])
    raise ValueError(f"field {field_name!r} not in {scenario_file}")


def master_plan_from_coverage(plan) -> MasterPlan:
    """MasterPlan from a :class:`agricare.core.planning.coverage.CoveragePlan`."""
    p = plan.path
    return MasterPlan(np.column_stack([p.xy, p.yaw]), p.direction, p.working, p.kind)


def detour_inside(field, half_width_m: float):
    """Where the mission's own detours (lead-in, depot trips, re-approach after a missed path end) may put base_link:
    ``field`` inset by ``half_width_m`` (half the widest part of the machine plus a margin; farm_mission_node:
    ``max(width_m, robot_width_m) / 2`` or the front overhang, whichever is more, plus ``detour_margin_m``). Returns
    the ``inside`` callable :class:`FarmMission` takes: (N, 2) points -> (N,) bool."""
    import shapely

    allowed = field.buffer(-float(half_width_m))
    shapely.prepare(allowed)
    return lambda xy: shapely.contains_xy(allowed, np.asarray(xy, float).reshape(-1, 2)[:, 0],
                                          np.asarray(xy, float).reshape(-1, 2)[:, 1])


class MissionPlanCheck:
    """The planner's plan check (``plan_coverage(check=...)``) as the robot drives: a coverage plan as the mission
    hands it out (:class:`FarmMission` with the robot's own ``mission_params`` and detour region ``inside``: the
    plan with its run-out), driven by the robot's own controller ``tracker_params`` on its own kinematic model
    ``model`` (:func:`agricare.core.control.track_check.check_plan`: steering lag and rate limit, no slip, no noise;
    nothing of a simulator), the machine ``footprint`` (rectangles in base_link, flattened) checked against
    ``field``. Calling it returns the largest distance (m) the machine is predicted outside the field (0 inside).

    One helper for every caller (farm_mission_node, bench/farm_missions.py), so the plan the node keeps is vetoed
    by the same prediction the bench measured. ``on_start(k)`` is called before the k-th check (1, 2, ...) and
    ``on_done(k, result)`` after it with the :class:`~agricare.core.control.track_check.CheckResult` (a check takes
    seconds: progress for the operator). ``results`` keeps every result, ``wall_s`` their total time."""

    def __init__(self, field, mission_params: FarmMissionParams, tracker_params, footprint, model=None, inside=None,
                 on_start=None, on_done=None):
        from agricare.core.control.track_check import MachineModel

        fp = tuple(float(v) for v in footprint)
        require(len(fp) > 0 and len(fp) % 4 == 0 and all(math.isfinite(v) for v in fp), "footprint",
                "must be finite numbers, 4 per rectangle (x_min, x_max, y_min, y_max)", footprint)
        self.field = field
        self.mission_params = mission_params
        self.tracker_params = tracker_params
        self.footprint = fp
        self.model = model if model is not None else MachineModel()
        self.inside = inside
        self.on_start, self.on_done = on_start, on_done
        self.results = []

    @property
    def wall_s(self) -> float:
        return float(sum(r.wall_s for r in self.results))

    def predict(self, plan):
        """The :class:`~agricare.core.control.track_check.CheckResult` of coverage plan ``plan``."""
        from agricare.core.control.track_check import check_plan

        mission = FarmMission(master_plan_from_coverage(plan), self.mission_params, self.inside)
        return check_plan(mission.plan.poses, mission.plan.direction, self.field, self.footprint,
                          self.tracker_params, self.model)

    def __call__(self, plan) -> float:
        k = len(self.results) + 1
        if self.on_start is not None:
            self.on_start(k)
        res = self.predict(plan)
        self.results.append(res)
        if self.on_done is not None:
            self.on_done(k, res)
        return float(res.worst_m)


if __name__ == "__main__":  # pragma: no cover - demo
    from shapely.geometry import Polygon

    from agricare.core.planning.coverage import CoverageParams, plan_coverage

    field = Polygon([(0, 0), (60, 0), (60, 40), (0, 40)])
    cp = plan_coverage(field, CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0))
    mp = master_plan_from_coverage(cp)
    m = FarmMission(mp, FarmMissionParams(capacity_m=300.0, depot_x_m=5.0, depot_y_m=5.0, refill_time_s=5.0))
    out = m.start(0.0, [5.0, 5.0, 0.0])
    t = 0.0
    pose = out.new_path.poses[0]
    while m.state not in (DONE, FAILED) and t < 5000:
        a = m.active
        if a is not None and len(a.poses):
            pose = a.poses[min(m._active_i + 2, len(a.poses) - 1)]
        out = m.update(t, pose)
        t += 0.5
    print(m.figures(), m.events[:6])
