"""Safety supervisor: the single gate between the requested command and the wheels.

``Supervisor.update(t_s, inputs) -> Decision`` is a step function of its inputs and its own small
state (latches, hold timers, output filter); it never reads a clock. Every cause of a stop acts in the
cycle in which it appears in ``inputs``.

States, highest priority first:

- ``EMERGENCY_STOP``: ``inputs.estop`` was true at any time; latched until ``reset()`` succeeds, which
  needs the e-stop input false and no active fault condition. Never clears on its own.
- ``FAULT``: an input required by ``params.required_inputs`` never arrived (``no_data:<input>``) or
  is older than its timeout (``stale:<input>``), any present input holds NaN/inf
  (``nonfinite:<input>``), the loop itself ran late (``loop_overrun``) or time went back
  (``clock_jump``). With ``latch_faults`` every fault except ``no_data:*`` (start-up) and faults of the
  command input (``cmd``: an idle planner is not a hazard, its command is then zero) stays latched
  until ``reset()``. A blinded scanner (``scan_blinded``: too few valid returns, see
  :func:`agricare.core.safety.fields.scan_to_safety_points`) is a fault, and so are inputs that arrive on
  time but lie (:mod:`agricare.core.safety.health`): frozen odometry (``odom_frozen``), a stuck IMU
  (``imu_stuck``) and refused commands (``cmd_delayed``, ``cmd_future``, ``cmd_reordered``,
  ``cmd_duplicated``, ``cmd_out_of_range``; these latch, except ``cmd_delayed``: a command older than its
  timeout is no command, as ``stale:cmd``). After time went back the
  supervisor restarts its time base: the condition ``clock_jump`` stays active while a required input still
  carries a receipt time from before the jump, and the fault is latched (time going back mid-run is a broken
  clock or a restarted world: the robot does not drive off by itself on the plan it had).
- ``PROTECTIVE_STOP``: a required e-stop input that never arrived or went stale (``estop_missing`` /
  ``estop_stale``: a broken e-stop circuit must stop the robot, not fault-latch it),
  an obstacle in the stop field (``obstacle``), a person whose predicted path
  meets the braking envelope with ``person_stop_margin_m`` (``person``), the stop field crossing the
  geofence (``geofence_keep_in`` / ``geofence_keep_out``), roll/pitch beyond limits (``tilt_roll`` /
  ``tilt_pitch``), battery critical (``battery_critical``), a signed remote stop
  (``remote_stop``). Released only after no cause was present
  for ``resume_hold_s`` (reason ``hold`` meanwhile).
- ``SLOW``: an obstacle / person / geofence in the slow field (``obstacle_near``, ``person_near``,
  ``geofence_near``; limit ``slow_speed_mps``, same hold) or a slope (``slope``; linear reduction).
- ``RUN``.

In the three stop states the output is exactly zero. Otherwise the requested command is clamped to
the active speed limit, to the lateral-acceleration limit (keeping the path curvature), and
rate-limited by the longitudinal acceleration / jerk limits (passenger comfort); it never exceeds
``Decision.limit_mps``.

Input names used by ``required_inputs``: ``cmd``, ``odom``, ``scan``, ``scan_rear``, ``imu``, ``pose`` (map pose
for the geofence; added automatically when a geofence is active), ``objects`` (tracked objects),
``estop``, ``battery``.

Reversing. The fields always sweep the way the robot moves (a negative speed sweeps the footprint backwards),
and every scan point in ``base_link`` counts, from the front scanner (``scan``) and a rear-facing one
(``scan_rear``). Inputs listed in ``reverse_required_inputs`` (a tractor's rear scanner) are needed only to move
backwards: when one never arrived, is stale, holds NaN/inf or is blinded while a motion to protect goes backwards
(the request, or the measured motion / own output), that is a protective stop ``reverse_blind:<cond>:<input>``
(``<cond>`` one of ``no_data``, ``stale``, ``nonfinite``, ``blinded``), released like any protective stop once
the input is back or the robot no longer backs up. Driving forwards the same condition is only a warning
(``<cond>:<input>``): the rear scanner does not look where the robot goes, and a fault that latched would stop the
forward work too. A blinded rear scan's points are not used (they lie inside the machine's own footprint).

Run ``python -m agricare.core.safety.supervisor`` for a small demo.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import numpy as np

from agricare.core.control.smoother import _ramp_sum_inverse
from agricare.core.safety.fields import (
    FieldGeometry,
    points_in_field,
    segments_polygon_distance_m,
    stopping_distance_m,
    stopping_time_s,
    validate_polygon,
)
from agricare.core.safety.geofence import Geofence, split_flat_polygons

GRAVITY_MPS2 = 9.80665
INPUT_NAMES = ("cmd", "odom", "scan", "scan_rear", "imu", "pose", "objects", "estop", "battery")
#: Inputs whose faults never latch (an idle command source only means "no motion wanted").
_NON_LATCHING_INPUTS = ("cmd",)
#: A command that arrives older than its timeout is no command (as ``stale:cmd``): refused, not latched.
_NON_LATCHING_FAULTS = ("cmd_delayed",)
#: Memoised field polygons kept across cycles before the memo is cleared.
_FIELD_CACHE_SIZE = 256


class SafetyState(enum.IntEnum):
    """Supervisor state; values equal the ``agricare_interfaces/SafetyState`` constants."""

    RUN = 0
    SLOW = 1
    PROTECTIVE_STOP = 2
    EMERGENCY_STOP = 3
    FAULT = 4


STOP_STATES = frozenset({SafetyState.PROTECTIVE_STOP, SafetyState.EMERGENCY_STOP, SafetyState.FAULT})


@dataclass(frozen=True)
class SupervisorParams:
    """Parameters of the safety supervisor (SI units; validated on construction).

    Geometry is in ``base_link`` (footprint) and ``map`` (geofence); polygons are flat
    ``[x0, y0, x1, y1, ...]`` lists because ROS parameters cannot nest.
    """

    footprint_xy: tuple[float, ...] = (0.6, 0.4, -0.6, 0.4, -0.6, -0.4, 0.6, -0.4)
    required_inputs: tuple[str, ...] = ("cmd", "odom", "scan", "imu")
    # inputs needed only to move backwards (a rear scanner): see "Reversing" in the module docstring
    reverse_required_inputs: tuple[str, ...] = ()
    latch_faults: bool = True
    # watchdog timeouts
    cmd_timeout_s: float = 0.5
    odom_timeout_s: float = 0.5
    scan_timeout_s: float = 0.5
    scan_rear_timeout_s: float = 0.5
    imu_timeout_s: float = 0.5
    pose_timeout_s: float = 1.0
    objects_timeout_s: float = 1.0
    estop_timeout_s: float = 0.5
    battery_timeout_s: float = 10.0
    loop_timeout_s: float = 0.25
    # speed / comfort limits (applied to the output command)
    max_speed_mps: float = 2.0
    max_reverse_speed_mps: float = 0.5
    max_angular_speed_radps: float = 1.0
    max_accel_mps2: float = 1.5
    max_decel_mps2: float = 1.5
    max_jerk_mps3: float = 3.0
    max_lateral_accel_mps2: float = 1.5
    max_angular_accel_radps2: float = 2.0
    # stopping model used to size the fields
    reaction_time_s: float = 0.25
    braking_decel_mps2: float = 2.0
    min_braking_decel_mps2: float = 0.5
    braking_angular_decel_radps2: float = 3.0
    odom_speed_deadband_mps: float = 0.05
    # protective fields
    lateral_margin_m: float = 0.2
    stop_margin_m: float = 0.3
    slow_margin_m: float = 1.5
    slow_speed_mps: float = 0.5
    person_stop_margin_m: float = 0.8
    person_slow_margin_m: float = 2.5
    resume_hold_s: float = 1.0
    # tilt / slope
    max_roll_rad: float = 0.35
    max_pitch_rad: float = 0.35
    slope_slow_start_fraction: float = 0.5
    slope_min_speed_mps: float = 0.3
    # battery (state of charge 0..1)
    battery_low_fraction: float = 0.25
    battery_critical_fraction: float = 0.10
    # geofence (map frame)
    keep_in_xy: tuple[float, ...] = ()
    keep_out_xy: tuple[float, ...] = ()
    keep_out_vertex_counts: tuple[int, ...] = ()
    geofence_margin_m: float = 0.5

    def __post_init__(self):
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            if isinstance(val, bool) or isinstance(val, tuple | str):
                continue
            if not isinstance(val, int | float) or not math.isfinite(val):
                raise ValueError(f"{f.name}: must be a finite number, got {val!r}")
            if val < 0:
                raise ValueError(f"{f.name}: must be >= 0, got {val}")
        strictly_positive = [n for n in (f.name for f in dataclasses.fields(self))
                             if n.endswith(("_timeout_s", "_mps2", "_radps2", "_mps3"))
                             or n in ("max_speed_mps", "max_angular_speed_radps", "slow_speed_mps")]
        for name in strictly_positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        validate_polygon("footprint_xy", self.footprint_xy)
        bad = [n for n in self.required_inputs if n not in INPUT_NAMES]
        if bad:
            raise ValueError(f"required_inputs: unknown input(s) {bad}; known: {list(INPUT_NAMES)}")
        bad = [n for n in self.reverse_required_inputs if n not in INPUT_NAMES or n == "cmd"]
        if bad:
            raise ValueError(f"reverse_required_inputs: unknown input(s) {bad}; known: "
                             f"{[n for n in INPUT_NAMES if n != 'cmd']}")
        if self.slow_speed_mps > self.max_speed_mps:
            raise ValueError(f"slow_speed_mps: {self.slow_speed_mps} exceeds max_speed_mps "
                             f"{self.max_speed_mps}")
        if self.slope_min_speed_mps > self.max_speed_mps:
            raise ValueError(f"slope_min_speed_mps: {self.slope_min_speed_mps} exceeds max_speed_mps")
        if self.min_braking_decel_mps2 > self.braking_decel_mps2:
            raise ValueError(f"min_braking_decel_mps2: {self.min_braking_decel_mps2} exceeds "
                             "braking_decel_mps2")
        if self.person_stop_margin_m < self.stop_margin_m:
            raise ValueError(f"person_stop_margin_m: {self.person_stop_margin_m} must be >= stop_margin_m "
                             f"{self.stop_margin_m} (person distances are larger)")
        if self.person_slow_margin_m < self.person_stop_margin_m:
            raise ValueError(f"person_slow_margin_m: {self.person_slow_margin_m} must be >= "
                             "person_stop_margin_m")
        if not 0.0 <= self.slope_slow_start_fraction < 1.0:
            raise ValueError("slope_slow_start_fraction: must be in [0, 1), got "
                             f"{self.slope_slow_start_fraction}")
        if not 0.0 < self.max_roll_rad < math.pi / 2:
            raise ValueError(f"max_roll_rad: must be in (0, pi/2), got {self.max_roll_rad}")
        if not 0.0 < self.max_pitch_rad < math.pi / 2:
            raise ValueError(f"max_pitch_rad: must be in (0, pi/2), got {self.max_pitch_rad}")
        if not 0.0 <= self.battery_critical_fraction < self.battery_low_fraction <= 1.0:
            raise ValueError("battery_critical_fraction: need 0 <= critical "
                             f"({self.battery_critical_fraction}) "
                             f"< low ({self.battery_low_fraction}) <= 1")
        if self.keep_in_xy:
            validate_polygon("keep_in_xy", self.keep_in_xy)
        if self.keep_out_xy or self.keep_out_vertex_counts:
            split_flat_polygons("keep_out_xy", self.keep_out_xy, self.keep_out_vertex_counts)

    def timeout_s(self, input_name: str) -> float:
        """Watchdog timeout (s) of one input."""
        return float(getattr(self, f"{input_name}_timeout_s"))



def _all_finite(v) -> bool:
    """Every value of ``v`` (a number or an array) finite. A Python / numpy float or int is checked with
    ``math.isfinite`` (the 20 Hz cycle checks ~8 of them: ~1 us each instead of ~6 us through numpy)."""
    if isinstance(v, (float, int)):
        return math.isfinite(v)
    return bool(np.all(np.isfinite(np.asarray(v, dtype=float))))

@dataclass
class SupervisorInputs:
    """Latest value of every input and the time (s, same clock as ``update``) it was received.

    A ``*_stamp_s`` of ``None`` means "never received". Frames: velocities in ``base_link``,
    ``scan_points_in_base`` (N, 2) in ``base_link`` (already without REP-117 "no return" values; set it
    to an array containing NaN for a corrupt scan), ``pose_in_map`` ``[x_m, y_m, yaw_rad]``,
    ``objects_in_base`` (K, 6) rows ``[x_m, y_m, vx_mps, vy_mps, radius_m, is_person]``: position in
    ``base_link``, velocity over ground expressed in ``base_link`` axes (not relative to the robot).
    ``battery_fraction`` NaN means "unknown" (BatteryState convention) and is reported, not a fault.
    """

    cmd_v_mps: float = 0.0
    cmd_w_radps: float = 0.0
    cmd_stamp_s: float | None = None
    odom_v_mps: float = 0.0
    odom_w_radps: float = 0.0
    odom_stamp_s: float | None = None
    scan_points_in_base: np.ndarray | None = None
    scan_blinded: bool = False
    scan_stamp_s: float | None = None
    scan_rear_points_in_base: np.ndarray | None = None   # the rear-facing scanner's, as scan_points_in_base
    scan_rear_blinded: bool = False
    scan_rear_stamp_s: float | None = None
    roll_rad: float = 0.0
    pitch_rad: float = 0.0
    imu_stamp_s: float | None = None
    pose_in_map: np.ndarray | None = None
    pose_stamp_s: float | None = None
    objects_in_base: np.ndarray | None = None
    objects_stamp_s: float | None = None
    estop: bool = False
    estop_stamp_s: float | None = None
    battery_fraction: float = math.nan
    battery_stamp_s: float | None = None
    remote_stop: bool = False           # a signed remote protective stop is active
    # input health (agricare.core.safety.health): lies with fresh stamps
    odom_frozen: bool = False           # odometry pose still while commanded to move / while the IMU turns
    imu_stuck: bool = False             # identical IMU readings over many samples
    cmd_refused: tuple[str, ...] = ()   # commands refused since the last cycle (cmd_delayed, cmd_reordered, ...)

    def values(self, name: str) -> tuple:
        """The numeric values of one input (for the NaN/inf check)."""
        if name == "cmd":
            return (self.cmd_v_mps, self.cmd_w_radps)
        if name == "odom":
            return (self.odom_v_mps, self.odom_w_radps)
        if name in ("scan", "scan_rear"):
            pts = getattr(self, f"{name}_points_in_base")
            return (np.zeros(0) if pts is None else pts,)
        if name == "imu":
            return (self.roll_rad, self.pitch_rad)
        if name == "pose":
            return (np.full(3, np.nan) if self.pose_in_map is None else self.pose_in_map,)
        if name == "objects":
            return (np.zeros(0) if self.objects_in_base is None else self.objects_in_base,)
        if name == "battery" and not math.isnan(float(self.battery_fraction)):
            return (self.battery_fraction,)  # NaN = unknown (BatteryState convention), inf = corrupt
        return ()


@dataclass(frozen=True)
class Decision:
    """Output of one supervisor cycle.

    ``cmd_v_mps`` / ``cmd_w_radps`` go to ``cmd_vel``; ``limit_mps`` is the active speed limit
    (0 in stop states, ``|cmd_v_mps| <= limit_mps`` always); ``reasons`` lists every active cause, most
    severe first; ``warnings`` are reported only (``battery_low``, ``battery_unknown``);
    ``transition`` is ``(old, new)`` when the state changed this cycle.
    """

    cmd_v_mps: float
    cmd_w_radps: float
    state: SafetyState
    reasons: tuple[str, ...]
    limit_mps: float
    estop_latched: bool = False
    fault_latched: bool = False
    warnings: tuple[str, ...] = ()
    transition: tuple[SafetyState, SafetyState] | None = None
    stop_distance_m: float = 0.0

    @property
    def cmd_v(self) -> float:
        return self.cmd_v_mps

    @property
    def cmd_w(self) -> float:
        return self.cmd_w_radps

    @property
    def limit(self) -> float:
        return self.limit_mps

    @property
    def reason(self) -> str:
        """All reasons joined with ``,`` (empty in RUN)."""
        return ",".join(self.reasons)


def gated_command(decision: Decision) -> tuple[float, float]:
    """The wheel command of one cycle: the decision's command on a RUN or SLOW verdict, else exactly zero.

    The safe base hands this (and nothing else) to the motors in the same cycle the verdict was made.
    """
    if decision.state not in (SafetyState.RUN, SafetyState.SLOW):
        return 0.0, 0.0
    v, w = float(decision.cmd_v_mps), float(decision.cmd_w_radps)
    if not (math.isfinite(v) and math.isfinite(w)):
        return 0.0, 0.0
    return v, w


@dataclass
class _Shaper:
    """Output command filter state."""

    v_mps: float = 0.0
    a_mps2: float = 0.0
    w_radps: float = 0.0

    def reset(self):
        self.v_mps = self.a_mps2 = self.w_radps = 0.0


class Supervisor:
    """Safety supervisor core (see module docstring).

    Parameters
    ----------
    params : SupervisorParams
    """

    def __init__(self, params: SupervisorParams | None = None):
        self.params = p = params or SupervisorParams()
        self.fields = FieldGeometry(p.footprint_xy, p.lateral_margin_m)
        keep_out = split_flat_polygons("keep_out_xy", p.keep_out_xy, p.keep_out_vertex_counts) \
            if p.keep_out_xy else []
        self.geofence = Geofence(p.keep_in_xy if p.keep_in_xy else None, keep_out)
        self.counters: dict[str, int] = {}
        self.state = SafetyState.FAULT
        self._t_prev: float | None = None
        self._clock_jumped = False
        self._estop_latched = False
        self._latched_faults: dict[str, None] = {}
        self._active_fault_conditions: tuple[str, ...] = ()
        self._estop_input = False
        self._last_stop_cause_t: float | None = None
        self._last_slow_cause_t: float | None = None
        self._prev_reasons: frozenset[str] = frozenset()
        self._shaper = _Shaper()
        self._field_cache: dict = {}  # (v, w, decel, extra) -> polygon; fields are pure functions of the key

    # ------------------------------------------------------------------ public API
    @property
    def estop_latched(self) -> bool:
        return self._estop_latched

    @property
    def latched_faults(self) -> tuple[str, ...]:
        return tuple(self._latched_faults)

    def set_dynamic_keep_out(self, polygons_xy) -> None:
        """Replace the keep-out polygons that came from the topic (list of (K, 2) arrays in ``map``)."""
        self.geofence.set_dynamic_keep_out(polygons_xy)

    def reset(self) -> tuple[bool, str]:
        """Release a latched e-stop / latched faults.

        Succeeds only when the e-stop input (as of the last ``update``) is false and no fault condition
        was active in the last cycle. Returns ``(success, message)``.
        """
        if self._estop_input:
            return False, "e-stop input still active"
        if self._active_fault_conditions:
            return False, "fault still active: " + ",".join(self._active_fault_conditions)
        if not self._estop_latched and not self._latched_faults:
            return True, "nothing latched"
        released = (["estop"] if self._estop_latched else []) + list(self._latched_faults)
        self._estop_latched = False
        self._latched_faults.clear()
        self._count("reset")
        return True, "released: " + ",".join(released)

    def required_inputs(self) -> tuple[str, ...]:
        """Inputs checked by the watchdog (``pose`` is added while a geofence is active)."""
        req = list(self.params.required_inputs)
        if self.geofence.active and "pose" not in req:
            req.append("pose")
        return tuple(req)

    def update(self, t_s: float, inputs: SupervisorInputs) -> Decision:
        """Run one cycle at time ``t_s`` (s) and return the command to send and why."""
        p = self.params
        t = float(t_s)
        faults: list[str] = []
        warnings: list[str] = []
        estop_stop: list[str] = []
        # --- own loop watchdog
        dt = 0.0
        if not math.isfinite(t):
            faults.append("nonfinite:time")
        elif self._t_prev is not None:
            dt = t - self._t_prev
            if dt < 0.0:
                # time went back: restart the time base here (inputs from before the jump are not fresh)
                self._clock_jumped = True
                faults.append("clock_jump")
                self._t_prev = t
                for name in ("_last_stop_cause_t", "_last_slow_cause_t"):
                    if getattr(self, name) is not None and getattr(self, name) > t:
                        setattr(self, name, t)
                dt = 0.0
            elif dt > p.loop_timeout_s:
                faults.append("loop_overrun")
        # --- input watchdogs and NaN/inf
        required = self.required_inputs()
        reverse_only = [n for n in p.reverse_required_inputs if n not in required]
        reverse_problems: list[str] = []   # "<cond>:<input>" of the inputs only reversing needs
        avail: dict[str, bool] = {}
        jumped = False
        for name in INPUT_NAMES:
            stamp = getattr(inputs, f"{name}_stamp_s")
            is_req = name in required
            # an input only reversing needs is never a fault: its problems stop backward motion (below)
            problems = reverse_problems if name in reverse_only else faults
            ok = False
            if stamp is None:
                if is_req or name in reverse_only:
                    problems.append(f"no_data:{name}")
            elif not math.isfinite(float(stamp)):
                problems.append(f"nonfinite:{name}")
            elif math.isfinite(t) and float(stamp) > t + 1e-9:
                if is_req:  # received before a clock jump back: not fresh, and no reason to latch
                    jumped = True
                elif name in reverse_only:
                    problems.append(f"stale:{name}")
            elif math.isfinite(t) and t - float(stamp) > p.timeout_s(name):
                if is_req or name in reverse_only:
                    problems.append(f"stale:{name}")
            else:
                try:
                    finite = all(_all_finite(v) for v in inputs.values(name))
                except (TypeError, ValueError):
                    finite = False
                if finite:
                    ok = True
                else:
                    problems.append(f"nonfinite:{name}")
            avail[name] = ok
        if self._clock_jumped:
            if not jumped:
                self._clock_jumped = False   # every required input arrived after the jump
            elif "clock_jump" not in faults:
                faults.append("clock_jump")
        if avail["scan"] and inputs.scan_blinded:
            faults.append("scan_blinded")
        if avail["scan_rear"] and inputs.scan_rear_blinded:
            if "scan_rear" in reverse_only:
                reverse_problems.append("blinded:scan_rear")
            else:
                faults.append("scan_rear_blinded")
            avail["scan_rear"] = False   # its points at range_min lie inside the machine's own footprint
        if avail["odom"] and inputs.odom_frozen:
            faults.append("odom_frozen")
        if avail["imu"] and inputs.imu_stuck:
            faults.append("imu_stuck")
        faults.extend(r for r in dict.fromkeys(inputs.cmd_refused) if r not in faults)
        # a required e-stop that is missing or stale stops the robot (not a latched fault)
        for reason, tag in (("no_data:estop", "estop_missing"), ("stale:estop", "estop_stale")):
            if reason in faults:
                faults.remove(reason)
                estop_stop.append(tag)
        if p.latch_faults:
            for f in faults:
                if not f.startswith("no_data:") and f.split(":")[-1] not in _NON_LATCHING_INPUTS \
                        and f not in _NON_LATCHING_FAULTS:
                    self._latched_faults[f] = None
        self._active_fault_conditions = tuple(faults)
        # --- e-stop latch (a true value latches even when its stamp is old)
        self._estop_input = bool(inputs.estop)
        if self._estop_input:
            self._estop_latched = True

        # --- requested and measured motion
        v_in = float(inputs.cmd_v_mps) if avail["cmd"] else 0.0
        w_in = float(inputs.cmd_w_radps) if avail["cmd"] else 0.0
        v_meas = float(inputs.odom_v_mps) if avail["odom"] else 0.0
        w_meas = float(inputs.odom_w_radps) if avail["odom"] else 0.0
        if abs(self._shaper.v_mps) > abs(v_meas):  # our own last output bounds the speed from below
            v_meas, w_meas = self._shaper.v_mps, self._shaper.w_radps

        if len(self._field_cache) > _FIELD_CACHE_SIZE:
            self._field_cache.clear()
        stop: list[str] = list(estop_stop)
        if inputs.remote_stop:
            stop.append("remote_stop")
        slow: list[str] = []
        limit = p.max_speed_mps
        decel = p.braking_decel_mps2
        # --- tilt / slope
        if avail["imu"]:
            roll, pitch = abs(float(inputs.roll_rad)), abs(float(inputs.pitch_rad))
            if roll >= p.max_roll_rad:
                stop.append("tilt_roll")
            if pitch >= p.max_pitch_rad:
                stop.append("tilt_pitch")
            ratio = max(roll / p.max_roll_rad, pitch / p.max_pitch_rad)
            if p.slope_slow_start_fraction <= ratio < 1.0 and ratio > 0.0:
                frac = (ratio - p.slope_slow_start_fraction) / (1.0 - p.slope_slow_start_fraction)
                slope_limit = p.max_speed_mps - frac * (p.max_speed_mps - p.slope_min_speed_mps)
                if slope_limit < limit:
                    limit = slope_limit
                    slow.append("slope")
            # braking downhill is weaker: a - g sin(pitch), floored
            # rounded down to 0.01 m/s^2 (conservative): IMU noise would otherwise make every field new
            decel = max(math.floor(100.0 * (p.braking_decel_mps2 - GRAVITY_MPS2 * math.sin(min(pitch, math.pi / 2))))
                        / 100.0, p.min_braking_decel_mps2)
        # --- battery
        if avail["battery"]:
            frac = float(inputs.battery_fraction)
            if not math.isfinite(frac):
                warnings.append("battery_unknown")
            elif frac <= p.battery_critical_fraction:
                stop.append("battery_critical")
            elif frac <= p.battery_low_fraction:
                warnings.append("battery_low")
        elif inputs.battery_stamp_s is not None and math.isnan(float(inputs.battery_fraction)):
            warnings.append("battery_unknown")

        # --- backing up without the inputs reversing needs: a protective stop; forwards only a warning
        if reverse_problems:
            backwards = v_in < -1e-3 or v_meas < -max(p.odom_speed_deadband_mps, 1e-3)
            if backwards:
                stop.extend(f"reverse_blind:{r}" for r in reverse_problems)
            else:
                warnings.extend(reverse_problems)

        # --- slow fields, sized for the requested speed
        motions_slow = self._motions(v_in, w_in, v_meas, w_meas, limit)
        scan = self._scan_points(inputs, avail)
        objects = inputs.objects_in_base if avail["objects"] and inputs.objects_in_base is not None else None
        pose = inputs.pose_in_map if avail["pose"] else None
        for v, w in motions_slow:
            self._check_fields(v, w, decel, scan, objects, pose, slow=True, out=slow)
        if any(r != "slope" for r in slow):
            self._last_slow_cause_t = t
        if self._last_slow_cause_t is not None and t - self._last_slow_cause_t < p.resume_hold_s:
            if not any(r != "slope" for r in slow):
                slow.append("hold")
            limit = min(limit, p.slow_speed_mps)

        # --- stop fields, sized for the speed that may actually be sent
        stop_distance = 0.0
        for v, w in self._motions(v_in, w_in, v_meas, w_meas, limit):
            stop_distance = max(stop_distance, self._check_fields(v, w, decel, scan, objects, pose,
                                                                  slow=False, out=stop))
        if stop:
            self._last_stop_cause_t = t
        elif self._last_stop_cause_t is not None and t - self._last_stop_cause_t < p.resume_hold_s:
            stop.append("hold")
        stop = list(dict.fromkeys(stop))
        slow = list(dict.fromkeys(slow))

        # --- state
        fault_reasons = list(dict.fromkeys(faults + list(self._latched_faults)))
        if self._estop_latched:
            state = SafetyState.EMERGENCY_STOP
        elif fault_reasons:
            state = SafetyState.FAULT
        elif stop:
            state = SafetyState.PROTECTIVE_STOP
        elif slow:
            state = SafetyState.SLOW
        else:
            state = SafetyState.RUN
        reasons = (["estop"] if self._estop_latched else []) + fault_reasons + stop + slow
        for r in set(reasons) - self._prev_reasons:
            self._count(r)
        self._prev_reasons = frozenset(reasons)
        transition = None
        if state != self.state or self._t_prev is None:
            transition = (self.state, state)
            self._count(f"enter:{state.name}")
        self.state = state
        if math.isfinite(t) and (self._t_prev is None or t >= self._t_prev):
            self._t_prev = t

        # --- output
        if state in STOP_STATES:
            self._shaper.reset()
            out_v, out_w, limit = 0.0, 0.0, 0.0
        else:
            out_v, out_w = self._shape(v_in, w_in, limit, min(dt, p.loop_timeout_s))
        return Decision(out_v, out_w, state, tuple(reasons), float(limit), self._estop_latched,
                        bool(self._latched_faults), tuple(warnings), transition, stop_distance)

    # ------------------------------------------------------------------ internals
    def _count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    @staticmethod
    def _scan_points(inputs: SupervisorInputs, avail: dict) -> np.ndarray | None:
        """The points of every usable scanner in ``base_link`` (N, 2), None when there is none."""
        parts = [pts for name in ("scan", "scan_rear")
                 if avail[name] and (pts := getattr(inputs, f"{name}_points_in_base")) is not None and len(pts)]
        if not parts:
            return None if not (avail["scan"] or avail["scan_rear"]) else np.zeros((0, 2))
        return parts[0] if len(parts) == 1 else np.vstack(parts)

    def _motions(self, v_in, w_in, v_meas, w_meas, limit) -> list[tuple[float, float]]:
        """Motions to protect: the request (clamped to ``limit``) and the measured one when it differs."""
        p = self.params
        cap = min(limit, p.max_speed_mps) if v_in >= 0 else min(limit, p.max_reverse_speed_mps)
        v_req = math.copysign(min(abs(v_in), cap), v_in)
        w_req = max(-p.max_angular_speed_radps, min(p.max_angular_speed_radps, w_in))
        if abs(v_in) > 1e-6:
            w_req = v_req * (w_in / v_in)  # keep the requested curvature
        out = [(v_req, w_req)]
        # the measured motion is protected too when it differs from the request; below the deadband it is
        # sensor noise (its stopping distance is negligible), and its curvature w / v would be arbitrary:
        # a noisy (-0.01 m/s, 0.005 rad/s) at standstill swung the field sideways into things beside the robot
        if abs(v_meas) > max(p.odom_speed_deadband_mps, 1e-3) and (v_meas * v_req <= 0.0 or abs(v_meas) > abs(v_req)):
            out.append((v_meas, w_meas))
        return out

    def _field(self, v, w, decel, extra) -> np.ndarray:
        """Field polygon for a motion, memoised (the same motion recurs over many cycles at a steady speed)."""
        key = (v, w, decel, extra)
        poly = self._field_cache.get(key)
        if poly is None:
            p = self.params
            poly = self.fields.field(v, w, p.reaction_time_s, decel, p.braking_angular_decel_radps2, extra)
            self._field_cache[key] = poly
        return poly

    def _check_fields(self, v, w, decel, scan, objects, pose, slow: bool, out: list) -> float:
        """Append causes found for motion ``(v, w)`` to ``out``; return the stopping distance (m)."""
        p = self.params
        extra = p.stop_margin_m + (p.slow_margin_m if slow else 0.0)
        field_xy = self._field(v, w, decel, extra)
        if scan is not None and len(scan) and np.any(points_in_field(scan, field_xy)):
            out.append("obstacle_near" if slow else "obstacle")
        if objects is not None and len(objects):
            obj = np.asarray(objects, dtype=float).reshape(-1, 6)
            person = obj[:, 5] >= 0.5
            if np.any(person):
                # a person may walk on during the robot's stopping time: test the whole predicted path
                ppl = obj[person]
                horizon = stopping_time_s(v, p.reaction_time_s, decel)
                reach = ppl[:, 0:2] + ppl[:, 2:4] * horizon
                envelope = self._field(v, w, decel, 0.0)
                margin = p.person_slow_margin_m if slow else p.person_stop_margin_m
                # bounding-box lower bound of the distance first: most people are far away
                lo, hi = envelope.min(axis=0), envelope.max(axis=0)
                gap = np.maximum(0.0, np.maximum(lo - np.maximum(ppl[:, 0:2], reach),
                                                 np.minimum(ppl[:, 0:2], reach) - hi))
                near = np.hypot(gap[:, 0], gap[:, 1]) <= ppl[:, 4] + margin
                if np.any(near):
                    dist = segments_polygon_distance_m(ppl[near, 0:2], reach[near], envelope)
                    if np.any(dist <= ppl[near, 4] + margin):
                        out.append("person_near" if slow else "person")
            if not np.all(person):
                things = obj[~person]
                # the same bounding-box lower bound first (the field lies inside its box, so a thing farther
                # from the box than its radius is farther from the field): the exact distance only for the rest
                lo, hi = field_xy.min(axis=0), field_xy.max(axis=0)
                gap = np.maximum(0.0, np.maximum(lo - things[:, 0:2], things[:, 0:2] - hi))
                near = np.hypot(gap[:, 0], gap[:, 1]) <= things[:, 4]
                if np.any(near):
                    dist = segments_polygon_distance_m(things[near, 0:2], things[near, 0:2], field_xy)
                    if np.any(dist <= things[near, 4]):
                        out.append("obstacle_near" if slow else "obstacle")
        if pose is not None and self.geofence.active:
            gextra = p.geofence_margin_m + (p.slow_margin_m if slow else 0.0)
            reason = self.geofence.check_field(pose, self._field(v, w, decel, gextra))
            if reason:
                out.append("geofence_near" if slow else reason)
        return stopping_distance_m(v, p.reaction_time_s, decel) if abs(v) > 1e-3 else 0.0

    def _shape(self, v_in: float, w_in: float, limit: float, dt: float) -> tuple[float, float]:
        """Clamp to limits and apply acceleration / jerk / lateral-acceleration limits."""
        p = self.params
        s = self._shaper
        cap = min(limit, p.max_speed_mps) if v_in >= 0 else min(limit, p.max_reverse_speed_mps)
        v_t = math.copysign(min(abs(v_in), cap), v_in)
        curvature = (w_in / v_in) if abs(v_in) > 1e-6 else None
        if curvature is not None and abs(curvature) > 1e-9:
            v_lat = math.sqrt(p.max_lateral_accel_mps2 / abs(curvature))
            if abs(v_t) > v_lat:
                v_t = math.copysign(v_lat, v_t)
        # longitudinal: jerk-limited approach to v_t
        dv = v_t - s.v_mps
        if dt > 0.0:
            speeding_up = abs(v_t) > abs(s.v_mps) and v_t * s.v_mps >= 0
            accel_cap = p.max_accel_mps2 if speeding_up else p.max_decel_mps2
            # largest accel from which the sampled jerk-limited ramp back to zero (a, a - j dt, ..., one step
            # each) lands exactly on the target: the discrete form, so the stop settles in the time-optimal
            # number of cycles. The continuous bound a dt + a^2 / (2 j) <= |dv| shrinks the acceleration
            # geometrically near the target and left a tail of sub-mm/s commands (a 2 m/s stop took 1.75 s
            # against the 1.5 s of v / a + a / j: the controller-loss stop missed its bound by 0.18 s)
            a_reach = abs(_ramp_sum_inverse(dv / dt, p.max_jerk_mps3 * dt))
            a_des = math.copysign(min(accel_cap, a_reach), dv)
            a_new = min(max(a_des, s.a_mps2 - p.max_jerk_mps3 * dt), s.a_mps2 + p.max_jerk_mps3 * dt)
            v_new = s.v_mps + a_new * dt
            if (v_new - v_t) * dv > 0.0:  # overshoot
                v_new, a_new = v_t, 0.0
        else:
            v_new, a_new = s.v_mps, s.a_mps2
        # hard safety clamp: never above the active limit, whatever the comfort filter says
        rev_cap = min(limit, p.max_reverse_speed_mps)
        fwd_cap = min(limit, p.max_speed_mps)
        if v_new > fwd_cap or v_new < -rev_cap:
            v_new = min(max(v_new, -rev_cap), fwd_cap)
            a_new = 0.0
        # angular: follow the requested curvature, else rate-limit the turn rate
        if curvature is not None:
            w_new = curvature * v_new
        else:
            w_t = max(-p.max_angular_speed_radps, min(p.max_angular_speed_radps, w_in))
            step = p.max_angular_accel_radps2 * dt
            w_new = s.w_radps + max(-step, min(step, w_t - s.w_radps))
        w_new = max(-p.max_angular_speed_radps, min(p.max_angular_speed_radps, w_new))
        if abs(v_new * w_new) > p.max_lateral_accel_mps2:
            w_new = math.copysign(p.max_lateral_accel_mps2 / abs(v_new), w_new)
        s.v_mps, s.a_mps2, s.w_radps = v_new, a_new, w_new
        return v_new, w_new


if __name__ == "__main__":
    sup = Supervisor(SupervisorParams(required_inputs=("cmd",)))
    inp = SupervisorInputs(cmd_v_mps=2.0)
    for k in range(60):
        t = 0.05 * k
        inp.cmd_stamp_s = t
        inp.scan_stamp_s = t
        inp.scan_points_in_base = np.array([[max(0.5, 6.0 - 2.0 * t), 0.0]])
        d = sup.update(t, inp)
        if k % 5 == 0 or d.transition:
            print(f"t={t:4.2f} {d.state.name:16s} v={d.cmd_v_mps:5.2f} limit={d.limit_mps:4.2f} {d.reason}")
    print(sup.counters)
