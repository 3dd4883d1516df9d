"""Vehicle kinematics: differential drive and Ackermann (bicycle model with a steered front axle).

Both classes convert between the body twist ``(v_mps, w_radps)`` of ``base_link`` and actuator
commands, and clamp a twist to what the machine can do. Saturation keeps the path curvature
``w / v`` whenever the curvature itself is feasible: linear and angular speed are scaled together.

``base_link`` is the middle of the rear (fixed) axle for Ackermann and the middle of the wheel axle
for differential drive, x forward, y left (REP-103).

Run ``python -m agricare.core.control.kinematics`` for a short demo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class DiffDriveParams:
    """Differential drive geometry and limits.

    Attributes
    ----------
    wheel_separation_m : distance between the left and right wheel contact points.
    wheel_radius_m : wheel radius.
    max_wheel_speed_radps : limit on each wheel's angular speed (both directions).
    max_linear_speed_mps, max_angular_speed_radps : body limits (applied in addition to wheel limits).
    """

    wheel_separation_m: float = 0.5
    wheel_radius_m: float = 0.1
    max_wheel_speed_radps: float = 20.0
    max_linear_speed_mps: float = 1.5
    max_angular_speed_radps: float = 2.0

    def __post_init__(self):
        for name in ("wheel_separation_m", "wheel_radius_m", "max_wheel_speed_radps",
                     "max_linear_speed_mps", "max_angular_speed_radps"):
            _check_positive(name, getattr(self, name))


class DiffDrive:
    """Differential drive kinematics.

    Parameters
    ----------
    params : DiffDriveParams
    """

    can_rotate_in_place = True

    def __init__(self, params: DiffDriveParams | None = None):
        self.params = params or DiffDriveParams()

    def forward(self, w_left_radps: float, w_right_radps: float) -> tuple[float, float]:
        """Wheel angular speeds (rad/s) -> body twist ``(v_mps, w_radps)``."""
        p = self.params
        vl, vr = w_left_radps * p.wheel_radius_m, w_right_radps * p.wheel_radius_m
        return 0.5 * (vl + vr), (vr - vl) / p.wheel_separation_m

    def inverse(self, v_mps: float, w_radps: float) -> tuple[float, float]:
        """Body twist -> wheel angular speeds ``(w_left_radps, w_right_radps)`` (no limits)."""
        p = self.params
        half = 0.5 * p.wheel_separation_m * w_radps
        return (v_mps - half) / p.wheel_radius_m, (v_mps + half) / p.wheel_radius_m

    def limit(self, v_mps: float, w_radps: float) -> tuple[float, float]:
        """Clamp a twist to the body and wheel limits keeping the curvature ``w / v``.

        Non-finite input gives ``(0, 0)``. One common scale factor in (0, 1] is applied to both speeds.
        """
        if not (math.isfinite(v_mps) and math.isfinite(w_radps)):
            return 0.0, 0.0
        p = self.params
        scale = 1.0
        if abs(v_mps) > p.max_linear_speed_mps:
            scale = min(scale, p.max_linear_speed_mps / abs(v_mps))
        if abs(w_radps) > p.max_angular_speed_radps:
            scale = min(scale, p.max_angular_speed_radps / abs(w_radps))
        wl, wr = self.inverse(v_mps, w_radps)
        peak = max(abs(wl), abs(wr))
        if peak > p.max_wheel_speed_radps:
            scale = min(scale, p.max_wheel_speed_radps / peak)
        return v_mps * scale, w_radps * scale

    def wheel_speeds(self, v_mps: float, w_radps: float) -> tuple[float, float]:
        """Limited wheel angular speeds ``(left, right)`` in rad/s for a body twist."""
        return self.inverse(*self.limit(v_mps, w_radps))

    def max_curvature_per_m(self) -> float:
        """Largest feasible |curvature| (infinite: it turns in place)."""
        return math.inf


@dataclass(frozen=True)
class AckermannParams:
    """Ackermann (car-like) geometry and limits.

    Attributes
    ----------
    wheelbase_m : rear axle to front axle.
    track_width_m : distance between the left and right wheels (rear and front alike).
    wheel_radius_m : rear (driven) wheel radius.
    max_steering_angle_rad : limit of the virtual centre (bicycle) steering angle, < pi/2.
    max_steering_rate_radps : steering actuator speed limit.
    max_wheel_speed_radps : limit on each rear wheel's angular speed.
    max_linear_speed_mps : body speed limit (both directions).
    """

    wheelbase_m: float = 2.5
    track_width_m: float = 1.6
    wheel_radius_m: float = 0.6
    max_steering_angle_rad: float = 0.6
    max_steering_rate_radps: float = 0.8
    max_wheel_speed_radps: float = 10.0
    max_linear_speed_mps: float = 4.0

    def __post_init__(self):
        for name in ("wheelbase_m", "track_width_m", "wheel_radius_m", "max_steering_angle_rad",
                     "max_steering_rate_radps", "max_wheel_speed_radps", "max_linear_speed_mps"):
            _check_positive(name, getattr(self, name))
        if self.max_steering_angle_rad >= 0.5 * math.pi:
            raise ValueError(f"max_steering_angle_rad must be < pi/2, got {self.max_steering_angle_rad!r}")


class Ackermann:
    """Ackermann kinematics (bicycle model about the rear axle centre).

    Parameters
    ----------
    params : AckermannParams
    """

    can_rotate_in_place = False

    def __init__(self, params: AckermannParams | None = None):
        self.params = params or AckermannParams()

    def max_curvature_per_m(self) -> float:
        """Largest feasible |curvature| = tan(max steering) / wheelbase, 1/m."""
        return math.tan(self.params.max_steering_angle_rad) / self.params.wheelbase_m

    def forward(self, v_mps: float, steering_angle_rad: float) -> tuple[float, float]:
        """Rear-axle speed and virtual steering angle -> body twist ``(v_mps, w_radps)``."""
        return v_mps, v_mps * math.tan(steering_angle_rad) / self.params.wheelbase_m

    def inverse(self, v_mps: float, w_radps: float) -> tuple[float, float]:
        """Body twist -> ``(v_mps, steering_angle_rad)`` (no limits).

        With ``v == 0`` the steering angle is 0 (the angle is undefined; a car cannot turn in place).
        """
        if abs(v_mps) < 1e-9:
            return 0.0, 0.0
        return v_mps, math.atan(self.params.wheelbase_m * w_radps / v_mps)

    def wheel_angles(self, steering_angle_rad: float) -> tuple[float, float]:
        """Ackermann left/right front wheel angles (rad) for a virtual centre steering angle."""
        if abs(steering_angle_rad) < 1e-12:
            return 0.0, 0.0
        p = self.params
        radius = p.wheelbase_m / math.tan(steering_angle_rad)  # signed, + turning left
        left = math.atan(p.wheelbase_m / (radius - 0.5 * p.track_width_m))
        right = math.atan(p.wheelbase_m / (radius + 0.5 * p.track_width_m))
        return left, right

    def rear_wheel_speeds(self, v_mps: float, w_radps: float) -> tuple[float, float]:
        """Rear wheel angular speeds ``(left, right)`` in rad/s for a twist (no limits)."""
        p = self.params
        half = 0.5 * p.track_width_m * w_radps
        return (v_mps - half) / p.wheel_radius_m, (v_mps + half) / p.wheel_radius_m

    def limit(self, v_mps: float, w_radps: float) -> tuple[float, float]:
        """Clamp a twist to the machine: curvature to the steering limit, then speeds together.

        The curvature is clamped only when it exceeds the steering limit (it cannot be kept then);
        speed limits scale ``v`` and ``w`` together so the (clamped) curvature is preserved.
        ``v == 0`` gives ``w == 0``. Non-finite input gives ``(0, 0)``.
        """
        if not (math.isfinite(v_mps) and math.isfinite(w_radps)):
            return 0.0, 0.0
        if abs(v_mps) < 1e-9:
            return 0.0, 0.0
        p = self.params
        kappa_max = self.max_curvature_per_m()
        kappa = float(np.clip(w_radps / v_mps, -kappa_max, kappa_max))
        v = v_mps
        if abs(v) > p.max_linear_speed_mps:
            v = math.copysign(p.max_linear_speed_mps, v)
        wl, wr = self.rear_wheel_speeds(v, v * kappa)
        peak = max(abs(wl), abs(wr))
        if peak > p.max_wheel_speed_radps:
            v *= p.max_wheel_speed_radps / peak
        return v, v * kappa

    def rate_limit_steering(self, previous_angle_rad: float, commanded_angle_rad: float,
                            dt_s: float) -> float:
        """Steering angle reachable from ``previous_angle_rad`` within ``dt_s`` towards the command.

        The result also respects ``max_steering_angle_rad``.
        """
        p = self.params
        target = float(np.clip(commanded_angle_rad, -p.max_steering_angle_rad, p.max_steering_angle_rad))
        step = p.max_steering_rate_radps * max(dt_s, 0.0)
        return float(np.clip(target, previous_angle_rad - step, previous_angle_rad + step))


def integrate_twist(pose, v_mps: float, w_radps: float, dt_s: float) -> np.ndarray:
    """Exact pose after driving a constant twist for ``dt_s`` (arc, not Euler).

    Parameters
    ----------
    pose : array_like, shape (3,)
        ``[x_m, y_m, yaw_rad]``.

    Returns
    -------
    numpy.ndarray, shape (3,)
    """
    x, y, yaw = (float(v) for v in pose)
    ds, dyaw = v_mps * dt_s, w_radps * dt_s
    return np.array(arc_step(x, y, yaw, ds, dyaw))


def arc_step(x: float, y: float, yaw: float, ds_m: float, dyaw_rad: float) -> tuple[float, float, float]:
    """Move along a circular arc of length ``ds_m`` turning ``dyaw_rad`` (exact; straight line if 0)."""
    if abs(dyaw_rad) > 1e-9:
        r = ds_m / dyaw_rad
        x += r * (math.sin(yaw + dyaw_rad) - math.sin(yaw))
        y -= r * (math.cos(yaw + dyaw_rad) - math.cos(yaw))
    else:
        mid = yaw + 0.5 * dyaw_rad
        x += ds_m * math.cos(mid)
        y += ds_m * math.sin(mid)
    yaw = (yaw + dyaw_rad + math.pi) % (2.0 * math.pi) - math.pi
    return x, y, yaw


if __name__ == "__main__":  # pragma: no cover - demo
    dd = DiffDrive()
    print("diff drive inverse(1.0, 1.0) ->", dd.inverse(1.0, 1.0))
    print("diff drive limit(3.0, 4.0) ->", dd.limit(3.0, 4.0), "(curvature kept)")
    ack = Ackermann()
    print("ackermann inverse(2.0, 0.5) ->", ack.inverse(2.0, 0.5))
    print("ackermann limit(6.0, 3.0) ->", ack.limit(6.0, 3.0), "(curvature clamped to steering limit)")
