"""Shared path handling and the tracking state machine used by pure pursuit and Stanley.

``TrackPath`` holds a plan: poses ``(N, 3)`` ``[x_m, y_m, yaw_rad]`` (the yaw is the way the robot
*faces*) and a direction per pose (+1 forward, -1 reverse). It is split into *sections* of constant
direction at the cusps. Per section it offers a nearest-point search restricted to a moving window
(so a path that loops back over itself, as coverage paths do, never makes the tracker jump ahead),
interpolation by arc length, travel direction and curvature.

``PathTracker`` is the common controller: it follows one section at a time, stops at a cusp until
the measured speed is ~0 and then switches direction, regulates the speed (curvature, obstacle
distance, approach to the section end), rotates in place when a diff-drive robot faces the wrong
way, and checks the goal. Subclasses provide only the steering law (``_steer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from agricare.core.control.goal_checker import GoalChecker
from agricare.core.geometry import angle_diff, wrap_angle


class TrackPath:
    """A plan with per-pose driving direction, split at cusps.

    Parameters
    ----------
    poses : array_like, shape (N, 3)
        ``[x_m, y_m, yaw_rad]``, N >= 1, finite.
    directions : array_like of int, shape (N,), optional
        +1 forward / -1 reverse per pose (default all +1). The direction of pose ``i`` applies to the
        motion from pose ``i`` to pose ``i + 1``; a cusp is a pose where it changes.

    Attributes
    ----------
    xy : (N, 2); yaw : (N,); directions : (N,) int8; s : (N,) cumulative arc length (m);
    sections : list of (first, last) pose indices, inclusive, one per constant-direction run;
    curvature : (N,) signed curvature (1/m) along the direction of travel.
    """

    def __init__(self, poses, directions=None):
        arr = np.asarray(poses, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
            raise ValueError(f"poses must have shape (N, 3) with N >= 1, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("poses contain NaN or inf")
        n = arr.shape[0]
        if directions is None or len(directions) == 0:
            dirs = np.ones(n, dtype=np.int8)
        else:
            d = np.asarray(directions, dtype=float).reshape(-1)
            if d.shape[0] != n:
                raise ValueError(f"directions has {d.shape[0]} entries for {n} poses")
            if not np.all(np.isin(d, (-1.0, 1.0))):
                raise ValueError("directions must be +1 or -1")
            dirs = d.astype(np.int8)
            dirs = self._cusps_from_geometry(arr, dirs)
        self.xy = arr[:, :2].copy()
        self.yaw = wrap_angle(arr[:, 2].copy())
        self.directions = dirs
        seg = np.diff(self.xy, axis=0)
        self.seg_vec = seg                                   # (N-1, 2)
        self.seg_len = np.hypot(seg[:, 0], seg[:, 1])        # (N-1,)
        self.seg_len2 = self.seg_len ** 2
        self.s = np.concatenate(([0.0], np.cumsum(self.seg_len)))
        self.length_m = float(self.s[-1])
        # Sections: a new one starts at pose i when directions[i] != directions[i-1]; the cusp pose i
        # ends the previous section and starts the next one.
        self.sections: list[tuple[int, int]] = []
        start = 0
        for i in range(1, n):
            if dirs[i] != dirs[i - 1] and i < n - 1:
                self.sections.append((start, i))
                start = i
        self.sections.append((start, n - 1))
        self.curvature = self._curvature()

    @staticmethod
    def _cusps_from_geometry(arr, dirs):
        """Put every cusp on the pose where the motion really reverses.

        Planners that label each pose with the direction of the motion *arriving* at it (``PathSamples``)
        mark a cusp one pose late: the segment from the cusp pose to the next already goes the new way. At
        each label change ``i`` the segment ``i-1 -> i`` is checked against the pose's facing (``yaw``): when
        it plainly goes the new way, pose ``i-1`` is the cusp and is relabelled. Labels that already say the
        direction of the motion leaving each pose are unchanged.
        """
        dirs = dirs.copy()
        change = np.flatnonzero(dirs[1:] != dirs[:-1]) + 1
        for i in change:
            seg = arr[i, :2] - arr[i - 1, :2]
            n = math.hypot(seg[0], seg[1])
            if n < 1e-9:
                continue
            cos = (seg[0] * math.cos(arr[i - 1, 2]) + seg[1] * math.sin(arr[i - 1, 2])) / n
            if (cos > 0.5 and dirs[i] > 0) or (cos < -0.5 and dirs[i] < 0):
                dirs[i - 1] = dirs[i]
        return dirs

    def _curvature(self) -> np.ndarray:
        """Signed Menger curvature per pose, computed within each section (cusps are not corners)."""
        k = np.zeros(self.xy.shape[0])
        for first, last in self.sections:
            k[first:last + 1] = self._menger(self.xy[first:last + 1])
        return k

    @staticmethod
    def _menger(xy) -> np.ndarray:
        """Signed Menger curvature at each interior point of (n, 2) (ends copy their neighbour)."""
        n = xy.shape[0]
        k = np.zeros(n)
        if n >= 3:
            a, b, c = xy[:-2], xy[1:-1], xy[2:]
            ab, bc, ac = b - a, c - b, c - a
            cross = ab[:, 0] * bc[:, 1] - ab[:, 1] * bc[:, 0]
            den = np.hypot(*ab.T) * np.hypot(*bc.T) * np.hypot(*ac.T)
            with np.errstate(divide="ignore", invalid="ignore"):
                k[1:-1] = np.where(den > 1e-12, 2.0 * cross / np.where(den > 1e-12, den, 1.0), 0.0)
            k[0], k[-1] = k[1], k[-2]
        return k

    def __len__(self) -> int:
        return self.xy.shape[0]

    @property
    def goal(self) -> np.ndarray:
        """Final pose ``[x, y, yaw]``."""
        return np.array([self.xy[-1, 0], self.xy[-1, 1], self.yaw[-1]])

    def section_direction(self, k: int) -> int:
        """+1 / -1 for section ``k``."""
        return int(self.directions[self.sections[k][0]])

    def travel_heading(self, i: int, first: int, last: int) -> float:
        """Direction of travel (rad) along segment ``i`` (clamped into section [first, last]).

        Uses the segment chord; a zero-length segment falls back to the pose yaw (flipped when
        reversing).
        """
        if last <= first:
            d = self.directions[first]
            return float(self.yaw[first] if d > 0 else wrap_angle(self.yaw[first] + math.pi))
        i = min(max(i, first), last - 1)
        if self.seg_len[i] > 1e-9:
            return math.atan2(self.seg_vec[i, 1], self.seg_vec[i, 0])
        d = self.directions[first]
        return float(self.yaw[i] if d > 0 else wrap_angle(self.yaw[i] + math.pi))

    def nearest(self, xy, first: int, last: int, hint: int, window_m: float) -> tuple[int, float, float]:
        """Nearest point on segments of section [first, last] inside a window after ``hint``.

        The window spans segments from ``hint`` up to the arc length ``s[hint] + window_m``.

        Returns
        -------
        (segment_index, t, cross_track_m) : the segment ``i`` (pose i -> i+1), the fraction along it in
            [0, 1], and the signed lateral offset of ``xy`` (> 0: left of the travel direction).
        """
        if last <= first:
            return first, 0.0, self._lateral(xy, first, first, last)
        lo = min(max(hint, first), last - 1)
        hi = int(np.searchsorted(self.s, self.s[lo] + window_m, side="right"))
        hi = min(max(hi, lo + 1), last)  # segments lo .. hi-1
        return self._nearest_in(xy, lo, hi, first, last)

    def nearest_naive(self, xy, first: int, last: int) -> tuple[int, float, float]:
        """Reference: nearest point over the whole section (no window). Same return as ``nearest``."""
        if last <= first:
            return first, 0.0, self._lateral(xy, first, first, last)
        return self._nearest_in(xy, first, last, first, last)

    def _nearest_in(self, xy, lo: int, hi: int, first: int, last: int) -> tuple[int, float, float]:
        px, py = float(xy[0]), float(xy[1])
        a = self.xy[lo:hi]
        v = self.seg_vec[lo:hi]
        l2 = self.seg_len2[lo:hi]
        rx, ry = px - a[:, 0], py - a[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(l2 > 1e-18, (rx * v[:, 0] + ry * v[:, 1]) / np.where(l2 > 1e-18, l2, 1.0), 0.0)
        t = np.clip(t, 0.0, 1.0)
        dx, dy = rx - t * v[:, 0], ry - t * v[:, 1]
        j = int(np.argmin(dx * dx + dy * dy))
        i = lo + j
        return i, float(t[j]), self._lateral(xy, i, first, last, float(t[j]))

    def _lateral(self, xy, i: int, first: int, last: int, t: float = 0.0) -> float:
        heading = self.travel_heading(i, first, last)
        if last <= first:
            base = self.xy[first]
        else:
            base = self.xy[i] + t * self.seg_vec[i]
        dx, dy = float(xy[0]) - base[0], float(xy[1]) - base[1]
        return -dx * math.sin(heading) + dy * math.cos(heading)

    def point_at(self, s_m: float, first: int, last: int) -> tuple[np.ndarray, int]:
        """Point at arc length ``s_m`` within section [first, last], extended past its end.

        Beyond the last pose the point continues straight along the final travel direction, so a
        lookahead near the end of a section still pulls the robot onto the end pose's line.

        Returns
        -------
        (xy, index) : xy shape (2,), and the pose index at or just after ``s_m`` (clamped to ``last``).
        """
        s_end = self.s[last]
        if s_m >= s_end:
            heading = self.travel_heading(last - 1, first, last)
            extra = s_m - s_end
            return self.xy[last] + extra * np.array([math.cos(heading), math.sin(heading)]), last
        s_m = max(s_m, self.s[first])
        j = int(np.searchsorted(self.s, s_m, side="right")) - 1
        j = min(max(j, first), last - 1)
        seg = self.seg_len[j]
        frac = 0.0 if seg <= 1e-12 else (s_m - self.s[j]) / seg
        return self.xy[j] + frac * self.seg_vec[j], min(j + 1, last)

    def max_abs_curvature(self, s_from_m: float, s_to_m: float, first: int, last: int) -> float:
        """Largest |curvature| of poses in section [first, last] with arc length in [s_from, s_to]."""
        lo = int(np.searchsorted(self.s, s_from_m, side="left"))
        hi = int(np.searchsorted(self.s, s_to_m, side="right"))
        lo, hi = max(lo, first), min(hi, last + 1)
        if hi <= lo:
            return 0.0
        return float(np.max(np.abs(self.curvature[lo:hi])))


@dataclass(frozen=True)
class TrackerParams:
    """Parameters shared by the trackers (SI units; validated).

    Speeds
        desired_speed_mps (forward), reverse_speed_mps (magnitude when reversing).
    Lookahead (pure pursuit target; speed-regulation preview for Stanley)
        lookahead = clip(|speed| * lookahead_time_s, min_lookahead_m, max_lookahead_m).
    Regulation (Nav2 style)
        below ``regulated_min_radius_m`` the speed scales by radius / regulated_min_radius_m;
        an obstacle closer than ``obstacle_slowdown_distance_m`` scales the speed linearly down to 0 at
        ``obstacle_stop_distance_m``; curvature/obstacle regulation never goes below
        ``min_regulated_speed_mps`` unless the obstacle stop applies;
        within ``approach_distance_m`` of a section end (cusp or goal) the speed scales with the
        remaining distance, never below ``min_approach_speed_mps``.
    Rotate to heading (diff drive only)
        in place when the heading error exceeds ``rotate_to_heading_min_angle_rad`` (until it drops
        below half of it), ``w = clip(rotate_gain_per_s * err, +-rotate_to_heading_speed_radps)``.
    Stanley
        ``delta = heading_error + atan2(-stanley_gain_per_s * e, stanley_softening_mps + |v|)`` at the
        front axle ``wheelbase_m`` ahead of ``base_link`` (rear axle when reversing).
    Goal / cusp
        goal_xy_tolerance_m, goal_yaw_tolerance_rad (+ hysteresis); a cusp counts as reached within
        ``cusp_tolerance_m`` or once passed; the direction switches when |speed| <= stop_speed_mps.
    Search
        nearest-point window ``search_window_m`` ahead of the previous nearest segment.
    Manoeuvres (Ackermann reversing; 0 = off)
        within ``manoeuvre_distance_m`` of a cusp (before or after it) the steering law is path-curvature
        feedforward plus feedback on the rear axle's lateral and heading error,
        ``kappa = kappa_path(s + preview) - manoeuvre_lateral_gain_1pm2 * e - manoeuvre_heading_gain_1pm * dpsi``
        (travel frame: valid forwards and in reverse, where a long pure-pursuit lookahead cuts the short
        curved legs), preview ``|v| * manoeuvre_preview_s`` for the steering lag, and the speed is at most
        ``manoeuvre_speed_mps``. ``cusp_presteer``: stopped at a cusp, the wheels are first steered to the
        next leg's curvature at a creep of ``presteer_speed_mps`` (an Ackermann command needs a speed to say
        a steering angle) for the time the steering needs at ``steer_rate_radps`` plus ``steer_settle_s``.
        ``curve_law_min_curvature_per_m`` (0 = off): where the path's |curvature| from ``curve_exit_m`` behind to one
        lookahead ahead reaches this, the steering is the manoeuvre law above (curvature feedforward with the
        steering-lag preview, feedback at the rear axle) instead of the subclass's: pure pursuit cuts a curve and,
        with the steering lag, overshoots the straight joined at its end (measured 0.10 m against 0.06 m onto the
        straight after a 4.5 m-radius arc, through the velocity smoother with ``keep_curvature``).
        ``curve_exit_m`` (0 = off): the curvature regulation also uses the path's own largest |curvature| from
        ``curve_exit_m`` behind the robot's projection to one lookahead ahead of it, so the machine keeps the
        curve's speed until it is ``curve_exit_m`` onto the straight that follows (a curve's speed when a
        straight is joined at the end of a minimum-radius arc: the steering lag overshoots the straight by a
        distance that grows with the speed, e.g. onto a headland pass 0.1 m off the field boundary).
        ``steer_anticipation`` (0 = off; with the curve law or near cusps): a steering that turns at most
        ``steer_rate_radps`` cannot follow a step of the path's curvature (a straight onto a minimum-radius arc, an arc
        onto the opposite one); steered after the step it runs wide by the whole ramp. The law's feedforward is then
        the mean steering angle over a window centred on the preview point, as long as this factor times the
        distance the steering needs for the change of angle within it: a ramp centred on the step, whose errors
        before and after it cancel. On a constant curvature the window is empty (the path's own curvature).
        Measured through the demo's command chain (velocity smoother with ``keep_curvature``, steering lag 0.15 s and
        0.8 rad/s, soil slip): the machine's corners outside the planned sweep on a 90 deg ring entry 0.116 -> 0.079 m
        (0.3).
        ``transition_ramp_m`` (0 = off): the speed is at most ``transition_ramp_m * steer_rate_radps / span`` where the
        steering angles the path asks within ``transition_ramp_m`` span ``span`` (decelerating towards it at
        ``transition_decel_mps2``), so the steering makes each change within about that distance: an arc onto the
        opposite arc at the minimum radius (a Dubins transit's C C word) asks 1.05 rad, 1.3 s of steering, 2.4 m at the
        curve's 1.9 m/s, and the machine ran 0.48 m outside the planned sweep; at 0.75 m (0.57 m/s there) 0.09 m, and
        with ``steer_anticipation`` 0.3 too 0.08 m.
        ``cusp_decel_mps2`` (0 = off): before a cusp the speed is at most ``sqrt(2 a d)`` for the distance ``d``
        left, so a machine whose speed follows the command at that deceleration stops at the cusp, not past it
        (a corner manoeuvre's cusp is where the bonnet meets the boundary).
    """

    desired_speed_mps: float = 1.0
    reverse_speed_mps: float = 0.5
    lookahead_time_s: float = 1.5
    min_lookahead_m: float = 0.6
    max_lookahead_m: float = 3.0
    regulated_min_radius_m: float = 1.5
    min_regulated_speed_mps: float = 0.2
    obstacle_slowdown_distance_m: float = 2.0
    obstacle_stop_distance_m: float = 0.5
    approach_distance_m: float = 1.0
    min_approach_speed_mps: float = 0.05
    use_rotate_to_heading: bool = True
    rotate_to_heading_min_angle_rad: float = 0.785
    rotate_to_heading_speed_radps: float = 1.0
    rotate_gain_per_s: float = 2.0
    stanley_gain_per_s: float = 2.0
    stanley_softening_mps: float = 0.3
    wheelbase_m: float = 1.0
    goal_xy_tolerance_m: float = 0.15
    goal_yaw_tolerance_rad: float = 0.15
    goal_xy_hysteresis_m: float = 0.1
    goal_yaw_hysteresis_rad: float = 0.1
    cusp_tolerance_m: float = 0.2
    stop_speed_mps: float = 0.03
    cusp_settle_s: float = 2.0
    search_window_m: float = 2.0
    stanley_rear_axle_correction: bool = True
    max_steering_angle_rad: float = field(default=1.4)
    manoeuvre_distance_m: float = 0.0
    manoeuvre_speed_mps: float = 0.6
    manoeuvre_lateral_gain_1pm2: float = 1.0
    manoeuvre_heading_gain_1pm: float = 2.0
    manoeuvre_preview_s: float = 0.3
    cusp_presteer: bool = False
    presteer_speed_mps: float = 0.005
    steer_rate_radps: float = 0.8
    steer_settle_s: float = 0.3
    cusp_decel_mps2: float = 0.0
    curve_exit_m: float = 0.0
    curve_law_min_curvature_per_m: float = 0.0
    steer_anticipation: float = 0.0
    transition_ramp_m: float = 0.0
    transition_decel_mps2: float = 0.5

    def __post_init__(self):
        positive = ("desired_speed_mps", "reverse_speed_mps", "lookahead_time_s", "min_lookahead_m",
                    "max_lookahead_m", "regulated_min_radius_m", "approach_distance_m",
                    "rotate_to_heading_min_angle_rad", "rotate_to_heading_speed_radps", "rotate_gain_per_s",
                    "stanley_gain_per_s", "wheelbase_m", "goal_xy_tolerance_m", "goal_yaw_tolerance_rad",
                    "cusp_tolerance_m", "stop_speed_mps", "search_window_m", "max_steering_angle_rad",
                    "cusp_settle_s", "manoeuvre_speed_mps", "presteer_speed_mps", "steer_rate_radps",
                    "transition_decel_mps2")
        non_negative = ("min_regulated_speed_mps", "obstacle_slowdown_distance_m", "obstacle_stop_distance_m",
                        "min_approach_speed_mps", "stanley_softening_mps", "goal_xy_hysteresis_m",
                        "goal_yaw_hysteresis_rad", "manoeuvre_distance_m", "manoeuvre_lateral_gain_1pm2",
                        "manoeuvre_heading_gain_1pm", "manoeuvre_preview_s", "steer_settle_s", "cusp_decel_mps2",
                        "curve_exit_m", "curve_law_min_curvature_per_m", "steer_anticipation", "transition_ramp_m")
        for name in positive + non_negative:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if name in positive and value <= 0.0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
            if value < 0.0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if self.max_lookahead_m < self.min_lookahead_m:
            raise ValueError("max_lookahead_m must be >= min_lookahead_m")
        if self.obstacle_slowdown_distance_m < self.obstacle_stop_distance_m:
            raise ValueError("obstacle_slowdown_distance_m must be >= obstacle_stop_distance_m")
        if self.max_steering_angle_rad >= 0.5 * math.pi:
            raise ValueError("max_steering_angle_rad must be < pi/2")


@dataclass(frozen=True)
class ControlOutput:
    """One control cycle's command and diagnostics.

    Attributes
    ----------
    v_mps, w_radps : body twist command for ``base_link``.
    state : "idle" | "tracking" | "rotating" | "cusp_stop" | "cusp_steer" | "final_rotate" | "goal_reached" |
        "obstacle_stop" | "goal_missed" (passed the goal line outside tolerance; stopped) |
        "error".
    done : the goal is reached (command is zero).
    cross_track_m : signed lateral offset of ``base_link`` from the path (> 0 left of travel direction).
    heading_error_rad : path travel heading minus robot travel heading.
    nearest_index : pose index at the start of the nearest segment; target_index : pose index of the
        lookahead / reference target.
    section_index : current constant-direction section; direction : +1 / -1.
    lookahead_m, curvature_per_m : steering details (curvature along the travel direction).
    distance_to_goal_m : straight-line distance to the final pose; progress : travelled fraction of the
        path length in [0, 1].
    """

    v_mps: float = 0.0
    w_radps: float = 0.0
    state: str = "idle"
    done: bool = False
    cross_track_m: float = 0.0
    heading_error_rad: float = 0.0
    nearest_index: int = 0
    target_index: int = 0
    section_index: int = 0
    direction: int = 1
    lookahead_m: float = 0.0
    curvature_per_m: float = 0.0
    distance_to_goal_m: float = 0.0
    progress: float = 0.0
    message: str = ""


@dataclass
class SteerResult:
    """What a steering law returns (travel frame: flipped when reversing)."""

    curvature_per_m: float           # commanded curvature along the travel direction
    regulation_curvature_per_m: float  # curvature used for speed regulation (>= 0)
    heading_error_rad: float         # for rotate-to-heading
    target_index: int
    lookahead_m: float


class PathTracker:
    """Base path tracker. Subclasses implement ``_steer``.

    Parameters
    ----------
    params : TrackerParams
    vehicle : DiffDrive or Ackermann (from ``kinematics``); used to clamp commands (curvature kept)
        and to decide whether rotating in place is possible.
    naive_search : use the full-section nearest-point search (reference for benchmarks).
    """

    def __init__(self, params: TrackerParams, vehicle, naive_search: bool = False):
        self.params = params
        self.vehicle = vehicle
        self.naive_search = naive_search
        self.goal_checker = GoalChecker(params.goal_xy_tolerance_m, params.goal_yaw_tolerance_rad,
                                        params.goal_xy_hysteresis_m, params.goal_yaw_hysteresis_rad)
        self.path: TrackPath | None = None
        self._reset_progress()

    # ------------------------------------------------------------------ plan handling
    def _reset_progress(self) -> None:
        self.section = 0
        self._hint = 0
        self._state = "idle"
        self._cusp_since = 0.0
        self._done = False
        self._rotating = False
        self._steer_until = None
        self._last_kappa = 0.0            # last commanded curvature of base_link's path (body frame, 1/m)
        self._caps = None                 # per-pose transition speed caps of the plan (transition_ramp_m)
        self.goal_checker.reset()

    def set_plan(self, poses, directions=None) -> None:
        """Replace the plan (``poses`` (N, 3), optional ``directions`` (N,) of +1/-1)."""
        self.path = TrackPath(poses, directions)
        self._reset_progress()
        self._hint = self.path.sections[0][0]
        self._state = "tracking"

    def clear_plan(self) -> None:
        self.path = None
        self._reset_progress()

    @property
    def done(self) -> bool:
        return self._done

    # ------------------------------------------------------------------ helpers
    def lookahead_m(self, speed_mps: float) -> float:
        p = self.params
        return min(max(abs(float(speed_mps)) * p.lookahead_time_s, p.min_lookahead_m), p.max_lookahead_m)

    def _search(self, xy, first: int, last: int, hint: int, window_m: float):
        path = self.path
        if self.naive_search:
            return path.nearest_naive(xy, first, last)
        return path.nearest(xy, first, last, hint, window_m)

    def _steer(self, pose_travel, speed_mps: float, first: int, last: int, seg: int, t: float,
               direction: int) -> SteerResult:
        raise NotImplementedError

    def _zero(self, state: str, **kw) -> ControlOutput:
        return ControlOutput(0.0, 0.0, state, self._done, **kw)

    # ------------------------------------------------------------------ main entry point
    def compute(self, pose, speed_mps: float, t_s: float,
                obstacle_distance_m: float = math.inf) -> ControlOutput:
        """One control cycle.

        Parameters
        ----------
        pose : array_like, shape (3,)
            Robot ``[x_m, y_m, yaw_rad]`` in the plan frame.
        speed_mps : measured signed forward speed (for lookahead and the stop check at cusps).
        t_s : time of this cycle (the law is memoryless in time; t_s only times the stop at a cusp).
        obstacle_distance_m : distance to the nearest obstacle ahead (inf when none / unknown).

        Returns
        -------
        ControlOutput
        """
        p = self.params
        if self.path is None:
            return self._zero("idle", message="no plan")
        pose = np.asarray(pose, dtype=float).reshape(-1)
        if pose.shape[0] != 3 or not np.all(np.isfinite(pose)) or not math.isfinite(speed_mps):
            return self._zero("error", message="non-finite pose or speed")
        if math.isnan(obstacle_distance_m):
            obstacle_distance_m = math.inf
        path = self.path
        goal = path.goal
        dist_goal = math.hypot(pose[0] - goal[0], pose[1] - goal[1])
        if self._done:
            return self._zero("goal_reached", distance_to_goal_m=dist_goal, progress=1.0,
                              section_index=self.section, nearest_index=len(path) - 1,
                              target_index=len(path) - 1)

        first, last = path.sections[self.section]
        direction = path.section_direction(self.section)
        is_last_section = self.section == len(path.sections) - 1
        seg, t, cte = self._search(pose[:2], first, last, self._hint,
                                   p.search_window_m + p.max_lookahead_m)
        self._hint = seg
        s_proj = path.s[seg] + t * (path.seg_len[seg] if seg < len(path) - 1 else 0.0)
        progress = 1.0 if path.length_m <= 1e-9 else float(np.clip(s_proj / path.length_m, 0.0, 1.0))
        remaining = max(path.s[last] - s_proj, 0.0)
        end_xy = path.xy[last]
        end_heading = path.travel_heading(last - 1, first, last)
        diag = dict(cross_track_m=cte, nearest_index=seg, section_index=self.section, direction=direction,
                    distance_to_goal_m=dist_goal, progress=progress)

        # ---- end of section: goal or cusp (only judged near the end: a loop may start at its goal)
        near_end = remaining <= max(p.approach_distance_m, p.max_lookahead_m) + p.goal_xy_tolerance_m
        if is_last_section and near_end:
            status = self.goal_checker.update(pose, goal, travel_yaw_rad=end_heading)
            if self._state == "goal_missed" or (not status.xy_reached and status.along_m > (
                    p.goal_xy_tolerance_m + p.goal_xy_hysteresis_m) and remaining <= 1e-9):
                # Clearly past the goal line and not within tolerance: the plan cannot be finished
                # by driving on; stop and let the planner replan.
                self._state = "goal_missed"
                return self._zero("goal_missed", message="passed the goal outside tolerance", **diag)
            if status.xy_reached:
                can_turn = getattr(self.vehicle, "can_rotate_in_place", False)
                if status.yaw_reached or not can_turn:
                    self._done = True
                    self._state = "goal_reached"
                    return self._zero("goal_reached", heading_error_rad=status.yaw_error_rad,
                                      **{**diag, "progress": 1.0})
                w = self._rotate_command(status.yaw_error_rad)
                self._rotating = False
                self._state = "final_rotate"
                v, w = self.vehicle.limit(0.0, w)
                return ControlOutput(v, w, "final_rotate", False, heading_error_rad=status.yaw_error_rad,
                                     **diag)
        elif not is_last_section and (near_end or self._state == "cusp_stop"):
            dx, dy = pose[0] - end_xy[0], pose[1] - end_xy[1]
            along = dx * math.cos(end_heading) + dy * math.sin(end_heading)
            if self._state == "cusp_stop" or math.hypot(dx, dy) <= p.cusp_tolerance_m or along > 0.0:
                if self._state != "cusp_stop":
                    self._cusp_since = float(t_s)
                # stopped: measured speed below stop_speed_mps, or the zero command has been held for
                # cusp_settle_s (a fused speed estimate may never read exactly zero)
                if abs(speed_mps) <= p.stop_speed_mps or float(t_s) - self._cusp_since >= p.cusp_settle_s:
                    self.section += 1
                    self._hint = path.sections[self.section][0]
                    self._state = "tracking"
                    self._rotating = False
                    if p.cusp_presteer and self._steer_angle(self._last_kappa) is not None:
                        self._state = "cusp_steer"
                        self._steer_until = None
                    return self._zero("cusp_stop", **diag)
                else:
                    self._state = "cusp_stop"
                return self._zero("cusp_stop", **diag)

        # ---- steering
        yaw_travel = pose[2] if direction > 0 else wrap_angle(pose[2] + math.pi)
        pose_travel = np.array([pose[0], pose[1], yaw_travel])
        manoeuvre = p.manoeuvre_distance_m > 0 and (
            (self.section > 0 and s_proj - path.s[first] < p.manoeuvre_distance_m)
            or (not is_last_section and path.s[last] - s_proj < p.manoeuvre_distance_m))
        # the path's largest |curvature| from curve_exit_m behind to one lookahead ahead: the curve law's trigger
        # and the speed regulation's curve (one window, looked up once)
        curve_kappa = path.max_abs_curvature(s_proj - p.curve_exit_m, s_proj + self.lookahead_m(speed_mps), first,
                                             last) if p.curve_law_min_curvature_per_m > 0 or p.curve_exit_m > 0 else 0.0
        curve_law = p.curve_law_min_curvature_per_m > 0 and curve_kappa >= p.curve_law_min_curvature_per_m
        if manoeuvre or curve_law:
            steer = self._manoeuvre_steer(pose_travel, speed_mps, first, last, seg, t, cte)
        else:
            steer = self._steer(pose_travel, speed_mps, first, last, seg, t, direction)
        if self._state == "cusp_steer":
            # stopped at a cusp: steer the wheels to the next leg's curvature before moving (creep command)
            now = float(t_s)
            if self._steer_until is None:
                d0 = self._steer_angle(self._last_kappa)
                d1 = self._steer_angle(direction * steer.curvature_per_m)
                self._steer_until = now + abs(d1 - d0) / p.steer_rate_radps + p.steer_settle_s
            if now < self._steer_until:
                v = direction * p.presteer_speed_mps
                w = p.presteer_speed_mps * steer.curvature_per_m
                self._last_kappa = direction * steer.curvature_per_m
                return ControlOutput(v, w, "cusp_steer", False, curvature_per_m=steer.curvature_per_m, **diag)
            self._state = "tracking"
        diag.update(heading_error_rad=steer.heading_error_rad, target_index=steer.target_index,
                    lookahead_m=steer.lookahead_m)

        # ---- rotate to heading (diff drive)
        if p.use_rotate_to_heading and getattr(self.vehicle, "can_rotate_in_place", False):
            err = steer.heading_error_rad
            limit = p.rotate_to_heading_min_angle_rad
            if abs(err) > limit or (self._rotating and abs(err) > 0.5 * limit):
                self._rotating = True
                self._state = "rotating"
                v, w = self.vehicle.limit(0.0, self._rotate_command(err))
                return ControlOutput(v, w, "rotating", False, curvature_per_m=0.0, **diag)
            self._rotating = False

        # ---- speed regulation
        base_speed = p.desired_speed_mps if direction > 0 else p.reverse_speed_mps
        speed = base_speed
        kappa_reg = abs(steer.regulation_curvature_per_m)
        if p.curve_exit_m > 0:
            kappa_reg = max(kappa_reg, curve_kappa)
        if kappa_reg > 1e-9 and 1.0 / kappa_reg < p.regulated_min_radius_m:
            speed *= (1.0 / kappa_reg) / p.regulated_min_radius_m
        obstacle_stop = False
        if obstacle_distance_m < p.obstacle_slowdown_distance_m:
            span = p.obstacle_slowdown_distance_m - p.obstacle_stop_distance_m
            if obstacle_distance_m <= p.obstacle_stop_distance_m:
                obstacle_stop = True
            elif span > 0.0:
                speed *= (obstacle_distance_m - p.obstacle_stop_distance_m) / span
        if p.transition_ramp_m > 0:
            speed = min(speed, self._transition_speed(s_proj, first, last))
        speed = max(speed, min(p.min_regulated_speed_mps, base_speed))
        if manoeuvre:
            speed = min(speed, p.manoeuvre_speed_mps)
        if p.cusp_decel_mps2 > 0 and not is_last_section:
            speed = min(speed, max(math.sqrt(2.0 * p.cusp_decel_mps2 * remaining), p.min_approach_speed_mps))
        if remaining < p.approach_distance_m:
            speed = min(speed, max(speed * remaining / p.approach_distance_m, p.min_approach_speed_mps))
        if obstacle_stop:
            self._state = "obstacle_stop"
            return self._zero("obstacle_stop", curvature_per_m=steer.curvature_per_m, **diag)

        v = direction * speed
        w = speed * steer.curvature_per_m
        v, w = self.vehicle.limit(v, w)
        if abs(v) > 1e-9:
            self._last_kappa = w / v
        self._state = "tracking"
        return ControlOutput(v, w, "tracking", False, curvature_per_m=steer.curvature_per_m, **diag)

    def _steer_angle(self, kappa_body: float) -> float | None:
        """Front-wheel angle (rad) of an Ackermann vehicle for a body-frame curvature; None for other drives."""
        vp = getattr(self.vehicle, "params", None)
        if getattr(self.vehicle, "can_rotate_in_place", False) or not hasattr(vp, "wheelbase_m"):
            return None
        return math.atan(vp.wheelbase_m * kappa_body)

    def _manoeuvre_steer(self, pose_travel, speed_mps, first, last, seg, t, cte) -> SteerResult:
        """Curvature feedforward + lateral/heading feedback at the rear axle (travel frame), near cusps."""
        p = self.params
        path = self.path
        seg_len = path.seg_len[seg] if seg < len(path) - 1 else 0.0
        s_proj = path.s[seg] + t * seg_len
        preview = abs(float(speed_mps)) * p.manoeuvre_preview_s
        _, idx = path.point_at(s_proj + preview, first, last)
        kappa_ref = float(path.curvature[min(max(idx, first), last)]) if last > first else 0.0
        if p.steer_anticipation > 0 and last > first:
            kappa_ref = self._anticipated_curvature(s_proj + preview, abs(float(speed_mps)), first, last, kappa_ref)
        # the path's tangent at the projection, not the segment's chord: on a curve the chord's heading is the
        # tangent's at the segment's middle only, off by +-kappa*len/2 at its ends (a 0.5 m step on a 4.5 m radius:
        # +-3.2 deg), which the heading gain turned into a curvature sawtooth at the sampling period
        k_seg = 0.5 * (float(path.curvature[seg]) + float(path.curvature[min(seg + 1, last)])) if last > first else 0.0
        tangent = path.travel_heading(seg, first, last) + k_seg * (t - 0.5) * seg_len
        dpsi = float(wrap_angle(pose_travel[2] - tangent))
        kappa = kappa_ref - p.manoeuvre_lateral_gain_1pm2 * cte - p.manoeuvre_heading_gain_1pm * dpsi
        kmax = getattr(self.vehicle, "max_curvature_per_m", None)
        if callable(kmax):
            k = kmax()
            kappa = float(np.clip(kappa, -k, k))
        return SteerResult(kappa, max(abs(kappa), abs(kappa_ref)), -dpsi, idx, preview)

    def _steer_limits(self):
        """(wheelbase, largest steering angle) of an Ackermann vehicle, None for other drives."""
        vp = getattr(self.vehicle, "params", None)
        if getattr(self.vehicle, "can_rotate_in_place", False) or not hasattr(vp, "wheelbase_m"):
            return None
        return vp.wheelbase_m, getattr(vp, "max_steering_angle_rad", self.params.max_steering_angle_rad)

    def _anticipated_curvature(self, centre_s: float, speed: float, first: int, last: int, kappa_ref: float) -> float:
        """``steer_anticipation``: the feedforward curvature as the mean steering angle over a window centred on the
        preview point, as long as the distance the steering needs (at ``steer_rate_radps``, times the factor) for the
        change of steering angle within it. A rate-limited steering cannot follow a step of the path's curvature
        (straight onto an arc, an arc onto the opposite one); steered after the step it runs wide by the whole ramp,
        steered on a ramp centred on the step the errors before and after it cancel. On a constant curvature the window
        is empty and this is the path's own curvature."""
        lim = self._steer_limits()
        if lim is None or speed <= 1e-3:
            return kappa_ref
        wb, dmax = lim
        p, path = self.params, self.path
        ss, kk = path.s[first:last + 1], path.curvature[first:last + 1]
        n = 15

        def angles(length):
            return np.arctan(wb * np.interp(centre_s + np.linspace(-0.5 * length, 0.5 * length, n), ss, kk))

        full = speed * 2.0 * dmax / p.steer_rate_radps * p.steer_anticipation
        d = angles(full)
        length = min(full, speed * float(d.max() - d.min()) / p.steer_rate_radps * p.steer_anticipation)
        if length <= 1e-6:
            return kappa_ref
        return math.tan(float(np.mean(angles(length)))) / wb

    def _transition_caps(self):
        """Per pose ``j``: the speed cap ``transition_ramp_m * steer_rate_radps / span_j`` (inf where the steering
        is constant) for the span of steering angles the path asks from ``transition_ramp_m`` behind it to it (the
        pose just outside counted: the path is sampled), and the arc length where that window starts. Computed once
        per plan, within each section (a cusp is a stop, not a curvature change)."""
        if self._caps is not None:
            return self._caps
        p, path = self.params, self.path
        lim = self._steer_limits()
        n = len(path)
        cap, start = np.full(n, math.inf), path.s.copy()
        if lim is not None:
            d = np.arctan(lim[0] * path.curvature)
            r = p.transition_ramp_m
            for first, last in path.sections:
                j0 = first
                for j in range(first, last + 1):
                    while j0 + 1 < j and path.s[j] - path.s[j0 + 1] >= r:
                        j0 += 1
                    span = float(d[j0:j + 1].max() - d[j0:j + 1].min())
                    start[j] = path.s[j0]
                    if span > 1e-6:
                        cap[j] = r * p.steer_rate_radps / span
        self._caps = (cap, start)
        return self._caps

    def _transition_speed(self, s_proj: float, first: int, last: int) -> float:
        """``transition_ramp_m``: the speed at which the steering, at ``steer_rate_radps``, changes between the largest
        and smallest angle the path asks within ``transition_ramp_m`` (:meth:`_transition_caps`) in at most that
        distance, for the windows from the robot's projection to the braking distance ahead, so a change of curvature
        (above all an arc onto the opposite one) is steered over a short ramp; the machine decelerates towards each
        cap at ``transition_decel_mps2`` (inf when no limit applies)."""
        p, path = self.params, self.path
        if last <= first or self._steer_limits() is None:
            return math.inf
        cap, start = self._transition_caps()
        reach = 0.5 * max(p.desired_speed_mps, p.reverse_speed_mps) ** 2 / p.transition_decel_mps2 \
            + p.transition_ramp_m
        lo = int(np.searchsorted(path.s, s_proj, side="left"))
        hi = int(np.searchsorted(path.s, s_proj + reach, side="right"))
        lo, hi = max(lo, first), min(hi, last + 1)
        if hi <= lo:
            return math.inf
        c = cap[lo:hi]
        if not np.isfinite(c).any():
            return math.inf
        x = np.maximum(start[lo:hi] - s_proj, 0.0)
        return float(np.sqrt(np.min(c * c + 2.0 * p.transition_decel_mps2 * x)))

    def _rotate_command(self, err_rad: float) -> float:
        p = self.params
        w = float(np.clip(p.rotate_gain_per_s * err_rad, -p.rotate_to_heading_speed_radps,
                          p.rotate_to_heading_speed_radps))
        min_w = min(0.1, p.rotate_to_heading_speed_radps)
        if abs(w) < min_w:
            w = math.copysign(min_w, err_rad)
        return w


def heading_error(path_heading_rad: float, robot_heading_rad: float) -> float:
    """Wrapped ``path - robot`` heading difference (rad)."""
    return float(angle_diff(path_heading_rad, robot_heading_rad))
