"""Vehicle kinematics of the embedded simulator: an Ackermann tractor and differential-drive robots.

Both models take a velocity command ``(v_mps, w_radps)`` (what ``cmd_vel`` carries) and step on a fixed
``dt_s``. State is the true planar pose in the map frame plus the actuator states.

Public API
----------
``TractorParams``, ``DiffDriveParams``
    Frozen parameter dataclasses (SI units in the names, validated in ``__post_init__``).
``default_vehicle_params(robot_type) -> TractorParams | DiffDriveParams``
    Defaults for ``"tractor"``, ``"row_robot"`` and ``"care_shuttle"``.
``AckermannVehicle(params, pose)``, ``DiffDriveVehicle(params, pose)``
    ``.step(dt_s, v_cmd_mps, w_cmd_radps, slip_long_ratio, slip_lat_gain_s, brake=False)`` advances one
    step (``brake``: stale command, decelerate at ``max_decel_mps2`` to zero);
    ``.x_m, .y_m, .yaw_rad`` true pose in map; ``.v_mps`` / ``.w_radps`` true body velocities (over
    ground); ``.v_lat_mps`` lateral slip velocity; ``.wheel_v_mps`` / ``.wheel_w_radps`` what the
    wheels report (before slip, used by the odometry sensor); ``.accel_mps2`` longitudinal accel;
    ``.rectangles`` footprint rectangles in base_link ``(x_min, x_max, y_min, y_max)``.

Conventions: base_link is on the ground below the rear axle centre (tractor) or the drive axle centre
(differential drive); x forward, y left, yaw counter-clockwise from east (REP-103/105).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


def _check_positive(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_nonneg(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class TractorParams:
    """Ackermann tractor (front-wheel steering, base_link at the rear axle centre)."""

    wheelbase_m: float = 2.6
    max_steer_rad: float = 0.6
    max_steer_rate_radps: float = 0.8
    steer_time_constant_s: float = 0.15
    speed_time_constant_s: float = 0.4
    max_speed_mps: float = 4.0
    max_reverse_mps: float = 1.5
    max_accel_mps2: float = 1.0
    max_decel_mps2: float = 2.5
    length_m: float = 4.2
    width_m: float = 2.2
    rear_overhang_m: float = 0.9
    cmd_timeout_s: float = 0.5

    def __post_init__(self):
        _check_positive(self, "wheelbase_m", "max_steer_rad", "max_steer_rate_radps", "max_speed_mps",
                        "max_accel_mps2", "max_decel_mps2", "length_m", "width_m", "cmd_timeout_s")
        _check_nonneg(self, "steer_time_constant_s", "speed_time_constant_s", "max_reverse_mps",
                      "rear_overhang_m")
        if self.max_steer_rad >= math.pi / 2:
            raise ValueError(f"max_steer_rad must be < pi/2, got {self.max_steer_rad!r}")
        if self.rear_overhang_m >= self.length_m:
            raise ValueError("rear_overhang_m must be smaller than length_m")


@dataclass(frozen=True)
class DiffDriveParams:
    """Differential-drive robot (base_link at the drive axle centre)."""

    track_width_m: float = 0.45
    max_wheel_speed_mps: float = 1.5
    max_speed_mps: float = 1.0
    max_yaw_rate_radps: float = 1.5
    max_accel_mps2: float = 0.8
    max_decel_mps2: float = 1.5
    time_constant_s: float = 0.15
    length_m: float = 1.0
    width_m: float = 0.55
    rear_overhang_m: float = 0.3
    cmd_timeout_s: float = 0.5

    def __post_init__(self):
        _check_positive(self, "track_width_m", "max_wheel_speed_mps", "max_speed_mps", "max_yaw_rate_radps",
                        "max_accel_mps2", "max_decel_mps2", "length_m", "width_m", "cmd_timeout_s")
        _check_nonneg(self, "time_constant_s", "rear_overhang_m")
        if self.rear_overhang_m >= self.length_m:
            raise ValueError("rear_overhang_m must be smaller than length_m")


def default_vehicle_params(robot_type: str):
    """Default parameters of a robot type (``tractor``, ``row_robot``, ``care_shuttle``)."""
    if robot_type == "tractor":
        return TractorParams()
    if robot_type == "row_robot":
        return DiffDriveParams()
    if robot_type == "care_shuttle":
        return DiffDriveParams(track_width_m=1.3, max_wheel_speed_mps=4.0, max_speed_mps=3.0,
                               max_yaw_rate_radps=1.0, max_accel_mps2=0.8, max_decel_mps2=2.0,
                               time_constant_s=0.25, length_m=3.2, width_m=1.6, rear_overhang_m=1.0)
    raise ValueError(f"unknown robot type {robot_type!r}")


def vehicle_params_from_dict(robot_type: str, overrides: dict):
    """Default params of ``robot_type`` with ``overrides`` applied (unknown key -> ValueError)."""
    base = default_vehicle_params(robot_type)
    names = {f.name for f in dataclasses.fields(base)}
    for key in overrides:
        if key not in names:
            raise ValueError(f"unknown parameter {key!r} for {robot_type} (known: {', '.join(sorted(names))})")
    return dataclasses.replace(base, **{k: float(v) for k, v in overrides.items()})


def _first_order(current: float, target: float, dt_s: float, tau_s: float) -> float:
    if tau_s <= 0.0:
        return target
    out = current + (target - current) * (1.0 - math.exp(-dt_s / tau_s))
    return target if abs(out - target) < 1e-4 else out  # settle exactly (a stopped robot reads 0)


def _rate_limit(current: float, target: float, up: float, down: float, dt_s: float) -> float:
    """Move ``current`` towards ``target`` by at most ``up*dt`` when speeding up, ``down*dt`` when slowing."""
    delta = target - current
    speeding_up = abs(target) > abs(current) and target * current >= 0.0
    lim = (up if speeding_up else down) * dt_s
    if delta > lim:
        delta = lim
    elif delta < -lim:
        delta = -lim
    return current + delta


class _VehicleBase:
    """Pose integration shared by both models (midpoint rule)."""

    def __init__(self, pose):
        self.x_m = float(pose[0])
        self.y_m = float(pose[1])
        self.yaw_rad = float(pose[2])
        self.v_mps = 0.0
        self.w_radps = 0.0
        self.v_lat_mps = 0.0
        self.wheel_v_mps = 0.0
        self.wheel_w_radps = 0.0
        self.accel_mps2 = 0.0
        self.rectangles: list[tuple[float, float, float, float]] = []

    def _integrate(self, dt_s: float):
        yaw_mid = self.yaw_rad + 0.5 * self.w_radps * dt_s
        c, s = math.cos(yaw_mid), math.sin(yaw_mid)
        self.x_m += (self.v_mps * c - self.v_lat_mps * s) * dt_s
        self.y_m += (self.v_mps * s + self.v_lat_mps * c) * dt_s
        yaw = self.yaw_rad + self.w_radps * dt_s
        self.yaw_rad = (yaw + math.pi) % (2.0 * math.pi) - math.pi

    @property
    def pose(self) -> tuple[float, float, float]:
        return (self.x_m, self.y_m, self.yaw_rad)


class AckermannVehicle(_VehicleBase):
    """Kinematic bicycle model with steering lag/rate limit, speed lag and soil slip.

    The command ``(v, w)`` becomes a steering angle ``atan(w * L / v)`` (at standstill the wheels are
    steered towards ``sign(w) * max_steer``), clipped to ``max_steer_rad``.
    """

    def __init__(self, params: TractorParams, pose):
        super().__init__(pose)
        self.params = params
        self.steer_rad = 0.0
        p = params
        self.rectangles = [(-p.rear_overhang_m, p.length_m - p.rear_overhang_m, -p.width_m / 2, p.width_m / 2)]

    def step(self, dt_s: float, v_cmd_mps: float, w_cmd_radps: float,
             slip_long_ratio: float = 0.0, slip_lat_gain_s: float = 0.0, brake: bool = False) -> None:
        """Advance one step; ``brake`` (stale command) decelerates at ``max_decel_mps2`` to a standstill."""
        p = self.params
        if brake:
            v_cmd_mps, w_cmd_radps = 0.0, 0.0
        v_cmd = min(max(v_cmd_mps, -p.max_reverse_mps), p.max_speed_mps)
        if abs(v_cmd_mps) > 1e-3:
            steer_cmd = math.atan(w_cmd_radps * p.wheelbase_m / v_cmd_mps)
        elif abs(w_cmd_radps) > 1e-6:
            steer_cmd = math.copysign(p.max_steer_rad, w_cmd_radps)
        else:
            steer_cmd = self.steer_rad
        steer_cmd = min(max(steer_cmd, -p.max_steer_rad), p.max_steer_rad)
        # steering: first-order lag, then rate limit
        lagged = _first_order(self.steer_rad, steer_cmd, dt_s, p.steer_time_constant_s)
        max_d = p.max_steer_rate_radps * dt_s
        d = min(max(lagged - self.steer_rad, -max_d), max_d)
        self.steer_rad = min(max(self.steer_rad + d, -p.max_steer_rad), p.max_steer_rad)
        # speed: first-order lag, then acceleration limit
        v_old = self.wheel_v_mps
        lagged_v = 0.0 if brake else _first_order(v_old, v_cmd, dt_s, p.speed_time_constant_s)
        self.wheel_v_mps = _rate_limit(v_old, lagged_v, p.max_accel_mps2, p.max_decel_mps2, dt_s)
        self.accel_mps2 = (self.wheel_v_mps - v_old) / dt_s
        self.wheel_w_radps = self.wheel_v_mps * math.tan(self.steer_rad) / p.wheelbase_m
        # slip on soil: ground speed lower than wheel speed, sideslip outwards in turns
        self.v_mps = self.wheel_v_mps * (1.0 - slip_long_ratio)
        self.w_radps = self.v_mps * math.tan(self.steer_rad) / p.wheelbase_m
        self.v_lat_mps = -slip_lat_gain_s * self.v_mps * self.w_radps
        self._integrate(dt_s)


class DiffDriveVehicle(_VehicleBase):
    """Differential drive with wheel speed limit (curvature kept), per-wheel accel limit and motor lag."""

    def __init__(self, params: DiffDriveParams, pose):
        super().__init__(pose)
        self.params = params
        self.left_mps = 0.0
        self.right_mps = 0.0
        p = params
        self.rectangles = [(-p.rear_overhang_m, p.length_m - p.rear_overhang_m, -p.width_m / 2, p.width_m / 2)]

    def step(self, dt_s: float, v_cmd_mps: float, w_cmd_radps: float,
             slip_long_ratio: float = 0.0, slip_lat_gain_s: float = 0.0, brake: bool = False) -> None:
        """Advance one step; ``brake`` (stale command) decelerates at ``max_decel_mps2`` to a standstill."""
        p = self.params
        if brake:
            v_cmd_mps, w_cmd_radps = 0.0, 0.0
        half = 0.5 * p.track_width_m
        v = min(max(v_cmd_mps, -p.max_speed_mps), p.max_speed_mps)
        w = min(max(w_cmd_radps, -p.max_yaw_rate_radps), p.max_yaw_rate_radps)
        left, right = v - w * half, v + w * half
        peak = max(abs(left), abs(right))
        if peak > p.max_wheel_speed_mps:
            scale = p.max_wheel_speed_mps / peak
            left *= scale
            right *= scale
        v_old = self.wheel_v_mps
        lag_l = 0.0 if brake else _first_order(self.left_mps, left, dt_s, p.time_constant_s)
        lag_r = 0.0 if brake else _first_order(self.right_mps, right, dt_s, p.time_constant_s)
        self.left_mps = _rate_limit(self.left_mps, lag_l, p.max_accel_mps2, p.max_decel_mps2, dt_s)
        self.right_mps = _rate_limit(self.right_mps, lag_r, p.max_accel_mps2, p.max_decel_mps2, dt_s)
        self.wheel_v_mps = 0.5 * (self.left_mps + self.right_mps)
        self.wheel_w_radps = (self.right_mps - self.left_mps) / p.track_width_m
        self.accel_mps2 = (self.wheel_v_mps - v_old) / dt_s
        self.v_mps = self.wheel_v_mps * (1.0 - slip_long_ratio)
        self.w_radps = self.wheel_w_radps * (1.0 - slip_long_ratio)
        self.v_lat_mps = -slip_lat_gain_s * self.v_mps * self.w_radps
        self._integrate(dt_s)


def make_vehicle(robot_type: str, params, pose):
    """Vehicle object for a robot type."""
    if robot_type == "tractor":
        return AckermannVehicle(params, pose)
    return DiffDriveVehicle(params, pose)
