"""Velocity smoother: velocity, acceleration and jerk limits per axis, deadband, input timeout.

Two axes are smoothed independently: linear x (m/s) and angular z (rad/s). Each step chooses the
acceleration that brings the velocity to the target *exactly* if the acceleration is then ramped
back to zero at the jerk limit, clipped to what the jerk and acceleration limits allow this step.
This is time-optimal up to the discretisation, never overshoots a constant target, never exceeds
the velocity limit, and settles exactly (no chatter around the target).

The limits are guaranteed on the finite differences of the output sequence for a fixed step
``dt``: ``|v_k| <= max_vel``, ``|v_k - v_{k-1}| / dt <= max_accel``,
``|a_k - a_{k-1}| / dt <= max_jerk`` (velocity and acceleration limits win over jerk if the step
changes).

The core is deterministic: ``update(cmd, t_s)`` with the time passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmootherParams:
    """Limits per axis (linear x, angular z) and input handling.

    Attributes
    ----------
    max_linear_speed_mps, max_linear_accel_mps2, max_linear_jerk_mps3 : linear x limits.
    max_angular_speed_radps, max_angular_accel_radps2, max_angular_jerk_radps3 : angular z limits.
    linear_deadband_mps, angular_deadband_radps : input commands smaller than this count as 0.
    input_timeout_s : without a new command for this long the target becomes 0 (ramp down).
    keep_curvature : (car-like robots) while the linear target is not zero, the angular output is the linear
        output times the commanded curvature ``w / v`` (within ``max_angular_speed_radps``) instead of being
        smoothed on its own: an Ackermann machine steers to ``atan(L w / v)``, so smoothing the two axes apart
        changes the curvature it drives whenever the speed changes (e.g. slowing into a minimum-radius arc).
    stop_on_timeout : on an input timeout or a NaN input, output 0 at once instead of ramping down (the
        safety supervisor and the base then brake at their own limits): the lost input is caught within
        ``input_timeout_s`` + one cycle.
    """

    max_linear_speed_mps: float = 1.5
    max_linear_accel_mps2: float = 1.0
    max_linear_jerk_mps3: float = 5.0
    max_angular_speed_radps: float = 1.5
    max_angular_accel_radps2: float = 2.0
    max_angular_jerk_radps3: float = 10.0
    linear_deadband_mps: float = 0.0
    angular_deadband_radps: float = 0.0
    input_timeout_s: float = 0.5
    stop_on_timeout: bool = False
    keep_curvature: bool = False

    def __post_init__(self):
        for name in ("max_linear_speed_mps", "max_linear_accel_mps2", "max_linear_jerk_mps3",
                     "max_angular_speed_radps", "max_angular_accel_radps2", "max_angular_jerk_radps3",
                     "input_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("linear_deadband_mps", "angular_deadband_radps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _ramp_sum(a: float, jdt: float) -> float:
    """Sum ``a + (a - jdt) + (a - 2 jdt) + ...`` over the terms with the sign of ``a`` (D(a))."""
    m = abs(a)
    if m == 0.0:
        return 0.0
    n = math.ceil(m / jdt - 1e-12)
    return math.copysign(n * m - jdt * n * (n - 1) / 2.0, a)


def _ramp_sum_inverse(total: float, jdt: float) -> float:
    """Acceleration ``a`` whose ramp sum ``D(a)`` equals ``total`` (``D`` is strictly increasing)."""
    m = abs(total)
    if m == 0.0:
        return 0.0
    n = max(1, math.ceil((-1.0 + math.sqrt(1.0 + 8.0 * m / jdt)) / 2.0 - 1e-12))
    return math.copysign((m + jdt * n * (n - 1) / 2.0) / n, total)


class AxisSmoother:
    """One axis: jerk-limited tracking of a target velocity.

    Parameters
    ----------
    max_vel, max_accel, max_jerk : limits in axis units (per s, per s^2, per s^3), > 0.
    """

    def __init__(self, max_vel: float, max_accel: float, max_jerk: float):
        self.max_vel, self.max_accel, self.max_jerk = float(max_vel), float(max_accel), float(max_jerk)
        self.vel = 0.0
        self.acc = 0.0

    def reset(self, vel: float = 0.0) -> None:
        self.vel, self.acc = float(np.clip(vel, -self.max_vel, self.max_vel)), 0.0

    def step(self, target: float, dt_s: float) -> float:
        """Advance by ``dt_s`` towards ``target`` (clipped to the velocity limit); returns the velocity."""
        if not dt_s > 0.0:
            return self.vel
        target = float(np.clip(target, -self.max_vel, self.max_vel))
        jdt = self.max_jerk * dt_s
        wanted = _ramp_sum_inverse((target - self.vel) / dt_s, jdt)
        lo = max(self.acc - jdt, -self.max_accel)
        hi = min(self.acc + jdt, self.max_accel)
        # Velocity limit has priority over jerk if the window and the limit disagree.
        v_lo = (-self.max_vel - self.vel) / dt_s
        v_hi = (self.max_vel - self.vel) / dt_s
        if max(lo, v_lo) <= min(hi, v_hi):
            acc = float(np.clip(wanted, max(lo, v_lo), min(hi, v_hi)))
        else:
            # Empty only by rounding at the limit or when dt changed between steps: keep the velocity
            # and acceleration limits and stay as close to the jerk window as they allow.
            acc = float(np.clip(np.clip(wanted, self.acc - jdt, self.acc + jdt),
                                max(v_lo, -self.max_accel), min(v_hi, self.max_accel)))
        new_vel = self.vel + acc * dt_s
        if abs(new_vel - target) < 1e-12:
            new_vel = target
        self.acc = (new_vel - self.vel) / dt_s
        self.vel = new_vel
        return self.vel


class VelocitySmoother:
    """Smooth ``(v_mps, w_radps)`` commands.

    Parameters
    ----------
    params : SmootherParams

    Notes
    -----
    ``update(cmd, t_s)`` is the whole API: pass the newest command (or ``None`` when none arrived
    since the last call) and the current time; it returns the smoothed command. A non-finite input
    is treated as a zero command. The first call only records the time and returns the current
    (zero) output.
    """

    def __init__(self, params: SmootherParams | None = None):
        self.params = params or SmootherParams()
        p = self.params
        self.linear = AxisSmoother(p.max_linear_speed_mps, p.max_linear_accel_mps2, p.max_linear_jerk_mps3)
        self.angular = AxisSmoother(p.max_angular_speed_radps, p.max_angular_accel_radps2,
                                    p.max_angular_jerk_radps3)
        self._target = (0.0, 0.0)
        self._cmd_time_s: float | None = None
        self._t_s: float | None = None
        self.timed_out = True

    def reset(self) -> None:
        """Zero output and state; forget the last command."""
        self.linear.reset()
        self.angular.reset()
        self._target = (0.0, 0.0)
        self._cmd_time_s = None
        self._t_s = None
        self.timed_out = True

    @property
    def output(self) -> tuple[float, float]:
        return self.linear.vel, self.angular.vel

    def update(self, cmd, t_s: float, cmd_time_s: float | None = None) -> tuple[float, float]:
        """Advance to time ``t_s``.

        Parameters
        ----------
        cmd : tuple (v_mps, w_radps) or None
            Newest input command, or None if no new one arrived.
        t_s : float
            Current time.
        cmd_time_s : float, optional
            When ``cmd`` was received (defaults to ``t_s``); used for the input timeout.

        Returns
        -------
        tuple (v_mps, w_radps)
        """
        p = self.params
        if cmd is not None:
            v, w = float(cmd[0]), float(cmd[1])
            if not (math.isfinite(v) and math.isfinite(w)):
                v, w = 0.0, 0.0
                if p.stop_on_timeout:
                    self.linear.reset()
                    self.angular.reset()
            v = 0.0 if abs(v) < p.linear_deadband_mps else v
            w = 0.0 if abs(w) < p.angular_deadband_radps else w
            self._target = (v, w)
            self._cmd_time_s = float(t_s if cmd_time_s is None else cmd_time_s)
        self.timed_out = self._cmd_time_s is None or (t_s - self._cmd_time_s) > p.input_timeout_s
        target = (0.0, 0.0) if self.timed_out else self._target
        if self.timed_out and p.stop_on_timeout:
            self.linear.reset()
            self.angular.reset()
        if self._t_s is None:
            self._t_s = float(t_s)
            return self.output
        dt = float(t_s) - self._t_s
        if dt <= 0.0:
            return self.output
        self._t_s = float(t_s)
        self.linear.step(target[0], dt)
        if p.keep_curvature and abs(target[0]) > 1e-6:
            w = self.linear.vel * target[1] / target[0]
            self.angular.reset(float(np.clip(w, -p.max_angular_speed_radps, p.max_angular_speed_radps)))
        else:
            self.angular.step(target[1], dt)
        return self.output
