"""Feed simulator readings to the localisation filters exactly as the ROS nodes do.

``ekf_node``, ``navsat_node`` and ``map_localizer_node`` turn messages into filter calls; the embedded
simulator (``agricare.core.sim``) produces plain readings that ``sim_node`` turns into those messages. This
module does both conversions in one step, without ROS, so benchmarks and tests measure the same filter
inputs a running graph would see:

- ``odom`` (OdomReading -> nav_msgs/Odometry -> ekf_node): ``z = [twist.linear.x, twist.angular.z]``,
  ``R = diag(twist_cov[0], twist_cov[35])`` or the ``default_odom_*`` stds when not usable.
- ``imu`` (ImuReading -> sensor_msgs/Imu -> ekf_node): yaw rate ``angular_velocity.z`` with
  ``angular_velocity_covariance[8]``; orientation yaw with ``orientation_covariance[8]`` when
  ``use_imu_orientation``.
- ``gnss`` (GnssReading -> NavSatFix -> navsat_node -> gnss/odometry -> ekf_node): covariance type
  DIAGONAL_KNOWN for a fix and UNKNOWN for NO_FIX (as ``sim_node``), :class:`NavSatTransform` to the map
  frame, its 2x2 covariance into the EKF.
- ``scan`` (ScanReading -> LaserScan -> map_localizer_node): ranges outside ``[range_min, range_max]``
  become NaN, beam angles ``angle_min + k * angle_increment``.
"""

from __future__ import annotations

import math

import numpy as np

from agricare.core.localization.ekf import EkfParams, PlanarEkf, variance_or_default
from agricare.core.localization.navsat import (COVARIANCE_TYPE_DIAGONAL_KNOWN, COVARIANCE_TYPE_UNKNOWN,
                                               NavSatParams, NavSatTransform)

__all__ = ["EkfFeed", "scan_ranges_angles"]


class EkfFeed:
    """A :class:`PlanarEkf` and a :class:`NavSatTransform` fed with simulator readings.

    Parameters
    ----------
    ekf_params : EkfParams
    navsat_params : NavSatParams
    """

    def __init__(self, ekf_params: EkfParams, navsat_params: NavSatParams):
        self.ekf = PlanarEkf(ekf_params)
        self.nst = NavSatTransform(navsat_params)
        self.fixes_refused = 0

    def feed(self, kind: str, reading) -> str | None:
        """Fuse one reading of kind ``odom``, ``imu`` or ``gnss``; other kinds are ignored (None)."""
        p = self.ekf.p
        if kind == "odom" and p.use_odom:
            cov = reading.twist_covariance
            R = np.diag([variance_or_default(cov[0], p.default_odom_speed_std_mps),
                         variance_or_default(cov[35], p.default_odom_yaw_rate_std_radps)])
            return self.ekf.update("odom", reading.t_s, [reading.v_mps, reading.w_radps], R)
        if kind == "imu" and p.use_imu:
            var = variance_or_default(reading.angular_velocity_covariance[8], p.default_imu_yaw_rate_std_radps)
            result = self.ekf.update("imu_rate", reading.t_s, [float(reading.angular_velocity_radps[2])], [[var]])
            if p.use_imu_orientation and reading.orientation_covariance[0] != -1.0:
                var = variance_or_default(reading.orientation_covariance[8], p.default_imu_yaw_std_rad)
                self.ekf.update("imu_yaw", reading.t_s, [reading.yaw_rad], [[var]])
            return result
        if kind == "gnss" and p.use_gnss:
            cov_type = COVARIANCE_TYPE_DIAGONAL_KNOWN if reading.status >= 0 else COVARIANCE_TYPE_UNKNOWN
            fix = self.nst.convert(reading.status, reading.latitude_deg, reading.longitude_deg, reading.altitude_m,
                                   list(reading.position_covariance), cov_type)
            if not fix.ok:
                self.fixes_refused += 1
                return None
            c = fix.cov_xy
            if not (np.all(np.isfinite(c)) and c[0, 0] > 0 and c[1, 1] > 0):
                c = np.eye(2) * p.default_gnss_std_m ** 2
            return self.ekf.update("gnss", reading.t_s, fix.xy_in_map, c)
        return None

    def pose(self) -> np.ndarray:
        """Current estimate ``[x_m, y_m, yaw_rad]`` of base_link in the map frame, (3,)."""
        return self.ekf.x[:3].copy()


def scan_ranges_angles(reading) -> tuple[np.ndarray, np.ndarray]:
    """Ranges (NaN where invalid) and beam angles of a ScanReading, as ``map_localizer_node`` reads a LaserScan."""
    r = np.asarray(reading.ranges_m, dtype=float)
    a = reading.angle_min_rad + reading.angle_increment_rad * np.arange(len(r))
    r = np.where((r >= reading.range_min_m) & (r <= reading.range_max_m), r, math.nan)
    return r, a
