"""Wheel odometry with exact arc integration and a distance-driven covariance model.

Each update is a constant-curvature arc (travelled distance ``ds_m``, heading change ``dyaw_rad``),
integrated in closed form, so driving a circle with any step size lands exactly on the circle.
The pose covariance is propagated with the arc Jacobians and a motion noise whose variance grows
linearly with the distance travelled and the angle turned:

    var(ds)   = linear_noise_m2_per_m * |ds|
    var(dyaw) = heading_noise_rad2_per_m * |ds| + heading_noise_rad2_per_rad * |dyaw|

Used by the base driver node (``odom`` + ``odom -> base_link``); time is passed in, never read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agricare.core.control.kinematics import arc_step


@dataclass(frozen=True)
class OdometryParams:
    """Odometry noise model (variances per metre / per radian) and 2-D fill-in values.

    Attributes
    ----------
    linear_noise_m2_per_m : variance of the travelled distance per metre travelled.
    heading_noise_rad2_per_m : heading variance per metre travelled.
    heading_noise_rad2_per_rad : heading variance per radian turned.
    unused_axis_variance : variance reported for z, roll, pitch (planar robot; large = unknown).
    """

    linear_noise_m2_per_m: float = 1e-4
    heading_noise_rad2_per_m: float = 5e-5
    heading_noise_rad2_per_rad: float = 1e-4
    unused_axis_variance: float = 1e3

    def __post_init__(self):
        for name in ("linear_noise_m2_per_m", "heading_noise_rad2_per_m", "heading_noise_rad2_per_rad",
                     "unused_axis_variance"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def encoder_delta(previous_count: int, count: int, bits: int = 32) -> int:
    """Signed tick difference of a wrapping ``bits``-bit encoder counter (two's complement)."""
    span = 1 << bits
    d = (int(count) - int(previous_count)) % span
    return d - span if d >= span // 2 else d


class WheelOdometry:
    """Dead-reckoning pose in the ``odom`` frame from wheel motion.

    Parameters
    ----------
    params : OdometryParams
    pose : array_like, shape (3,)
        Initial ``[x_m, y_m, yaw_rad]`` in ``odom``.
    """

    def __init__(self, params: OdometryParams | None = None, pose=(0.0, 0.0, 0.0)):
        self.params = params or OdometryParams()
        self.reset(pose)

    def reset(self, pose=(0.0, 0.0, 0.0)) -> None:
        """Restart at ``pose`` with zero covariance, zero twist and zero distance."""
        x, y, yaw = (float(v) for v in pose)
        self._pose = [x, y, yaw]
        self._cov = np.zeros((3, 3))
        self.v_mps = 0.0
        self.w_radps = 0.0
        self.distance_m = 0.0
        self._t_s: float | None = None

    @property
    def pose(self) -> np.ndarray:
        """Current ``[x_m, y_m, yaw_rad]`` in ``odom``, shape (3,)."""
        return np.array(self._pose)

    @property
    def covariance(self) -> np.ndarray:
        """Pose covariance of ``(x, y, yaw)``, shape (3, 3)."""
        return self._cov.copy()

    def update(self, ds_m: float, dyaw_rad: float, t_s: float | None = None) -> np.ndarray:
        """Integrate one arc. Non-finite increments are ignored (the pose is kept).

        Parameters
        ----------
        ds_m : signed distance travelled by ``base_link`` (negative when reversing).
        dyaw_rad : heading change.
        t_s : time of this measurement; the twist is ``(ds, dyaw) / (t_s - previous t_s)``.

        Returns
        -------
        numpy.ndarray, shape (3,)
            The new pose.
        """
        if not (math.isfinite(ds_m) and math.isfinite(dyaw_rad)):
            return self.pose
        x, y, yaw = self._pose
        nx, ny, nyaw = arc_step(x, y, yaw, ds_m, dyaw_rad)
        # Jacobians of the exact arc (midpoint chord form for the noise input).
        F = np.array([[1.0, 0.0, -(ny - y)], [0.0, 1.0, nx - x], [0.0, 0.0, 1.0]])
        mid = yaw + 0.5 * dyaw_rad
        c, s = math.cos(mid), math.sin(mid)
        G = np.array([[c, -0.5 * ds_m * s], [s, 0.5 * ds_m * c], [0.0, 1.0]])
        p = self.params
        Q = np.diag([p.linear_noise_m2_per_m * abs(ds_m),
                     p.heading_noise_rad2_per_m * abs(ds_m) + p.heading_noise_rad2_per_rad * abs(dyaw_rad)])
        self._cov = F @ self._cov @ F.T + G @ Q @ G.T
        self._pose = [nx, ny, nyaw]
        self.distance_m += abs(ds_m)
        if t_s is not None:
            if self._t_s is not None and t_s > self._t_s:
                dt = t_s - self._t_s
                self.v_mps, self.w_radps = ds_m / dt, dyaw_rad / dt
            self._t_s = float(t_s)
        return self.pose

    def update_diff_drive(self, d_left_m: float, d_right_m: float, wheel_separation_m: float,
                          t_s: float | None = None) -> np.ndarray:
        """Integrate left/right wheel travel (metres at the contact point)."""
        return self.update(0.5 * (d_left_m + d_right_m), (d_right_m - d_left_m) / wheel_separation_m, t_s)

    def update_ackermann(self, ds_m: float, steering_angle_rad: float, wheelbase_m: float,
                         t_s: float | None = None) -> np.ndarray:
        """Integrate rear-axle travel with the (virtual centre) steering angle held over the step."""
        return self.update(ds_m, ds_m * math.tan(steering_angle_rad) / wheelbase_m, t_s)

    def pose_covariance_6x6(self) -> np.ndarray:
        """Row-major 6x6 covariance (x, y, z, roll, pitch, yaw) for ``nav_msgs/Odometry``."""
        out = np.zeros((6, 6))
        idx = [0, 1, 5]
        out[np.ix_(idx, idx)] = self._cov
        for i in (2, 3, 4):
            out[i, i] = self.params.unused_axis_variance
        return out

    def twist_covariance_6x6(self, dt_s: float = 0.05) -> np.ndarray:
        """Twist covariance for the last update, assuming the noise model over a step of ``dt_s``."""
        p = self.params
        ds = abs(self.v_mps) * dt_s
        var_v = p.linear_noise_m2_per_m * ds / max(dt_s, 1e-6) ** 2
        var_w = (p.heading_noise_rad2_per_m * ds + p.heading_noise_rad2_per_rad * abs(self.w_radps) * dt_s) \
            / max(dt_s, 1e-6) ** 2
        out = np.diag([max(var_v, 1e-6), p.unused_axis_variance, p.unused_axis_variance,
                       p.unused_axis_variance, p.unused_axis_variance, max(var_w, 1e-6)])
        return out
