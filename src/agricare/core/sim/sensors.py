"""Simulated sensors: wheel odometry, IMU, GNSS, 2-D laser scan (ray casting) and battery.

Every sensor has its own parameter dataclass (``rate_hz`` and noise in SI units) and its own seeded
``numpy.random.Generator``; a reading is a plain dataclass the ROS node turns into a message. Readings are
produced by :class:`agricare.core.sim.world.World` when due (``World.sensors_due()``); the classes here can
also be used on their own.

Public API
----------
Parameters: ``OdomParams``, ``ImuParams``, ``GnssParams``, ``ScanParams``, ``BatteryParams``.
Readings: ``OdomReading``, ``ImuReading``, ``GnssReading``, ``ScanReading``, ``BatteryReading``.
Models:
``WheelOdometry(params, rng, robot_type)``: ``.integrate(dt_s, wheel_v_mps, wheel_w_radps)``,
``.read(t_s) -> OdomReading`` (pose in the odom frame, which starts at the robot's start pose).
``ImuModel(params, rng)``: ``.read(t_s, roll, pitch, yaw, w_radps, accel_mps2, v_mps) -> ImuReading``.
``GnssModel(params, rng, ltp)``: ``.read(t_s, x_m, y_m, z_m) -> GnssReading`` (NaN position + status -1
during an outage).
``ray_cast(origin_xy, angles_rad, seg_a, seg_b, circ_c, circ_r, range_max_m) -> ranges (N,)``: exact
first hit of rays against segments and circles, ``inf`` when nothing is hit.
``BatteryModel(params)``: ``.integrate(dt_s, v_mps, accel_mps2)``, ``.read(t_s)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _pos(obj, *names):
    for name in names:
        v = getattr(obj, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


def _nonneg(obj, *names):
    for name in names:
        v = getattr(obj, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


# ----------------------------------------------------------------------------------------------- odometry


@dataclass(frozen=True)
class OdomParams:
    """Wheel odometry: scale errors drawn once per robot (seeded) make it drift."""

    enabled: bool = True
    rate_hz: float = 50.0
    scale_error_std: float = 0.005
    track_error_std: float = 0.005
    steer_bias_std_rad: float = 0.003
    velocity_noise_std_mps: float = 0.01
    yaw_rate_noise_std_radps: float = 0.005
    pose_var_per_m: float = 1e-4

    def __post_init__(self):
        _pos(self, "rate_hz")
        _nonneg(self, "scale_error_std", "track_error_std", "steer_bias_std_rad", "velocity_noise_std_mps",
                "yaw_rate_noise_std_radps", "pose_var_per_m")


@dataclass
class OdomReading:
    """Odometry in the odom frame. ``pose_covariance``/``twist_covariance``: 6x6 row-major (36,)."""

    t_s: float
    x_m: float
    y_m: float
    yaw_rad: float
    v_mps: float
    w_radps: float
    pose_covariance: np.ndarray
    twist_covariance: np.ndarray


class WheelOdometry:
    """Dead reckoning from wheel speeds with per-robot scale errors (drift).

    Parameters
    ----------
    params : OdomParams
    rng : numpy.random.Generator
    robot_type : str
        ``"tractor"`` adds a steering-angle bias; every type has a yaw-rate (track width) scale error.
    wheelbase_m : float
        Tractor wheelbase (turns the steering bias into a yaw-rate error).
    """

    def __init__(self, params: OdomParams, rng: np.random.Generator, robot_type: str = "row_robot",
                 wheelbase_m: float = 2.6):
        self.params = params
        self.rng = rng
        self.scale = 1.0 + params.scale_error_std * float(rng.standard_normal())
        self.yaw_scale = 1.0 + params.track_error_std * float(rng.standard_normal())
        self.steer_bias_rad = params.steer_bias_std_rad * float(rng.standard_normal()) \
            if robot_type == "tractor" else 0.0
        self.wheelbase_m = float(wheelbase_m)
        self.x_m = 0.0
        self.y_m = 0.0
        self.yaw_rad = 0.0
        self.v_mps = 0.0
        self.w_radps = 0.0
        self.distance_m = 0.0

    def integrate(self, dt_s: float, wheel_v_mps: float, wheel_w_radps: float) -> None:
        """Advance the odometry pose by one step of measured wheel motion."""
        v = wheel_v_mps * self.scale
        # a steering-angle bias shows as a yaw rate proportional to speed
        w = wheel_w_radps * self.yaw_scale + self.steer_bias_rad * v / self.wheelbase_m
        yaw_mid = self.yaw_rad + 0.5 * w * dt_s
        self.x_m += v * math.cos(yaw_mid) * dt_s
        self.y_m += v * math.sin(yaw_mid) * dt_s
        self.yaw_rad = (self.yaw_rad + w * dt_s + math.pi) % (2.0 * math.pi) - math.pi
        self.v_mps = v
        self.w_radps = w
        self.distance_m += abs(v) * dt_s

    def read(self, t_s: float) -> OdomReading:
        p = self.params
        var_xy = 1e-6 + p.pose_var_per_m * self.distance_m
        pose_cov = np.zeros(36)
        pose_cov[0] = pose_cov[7] = var_xy
        pose_cov[14] = pose_cov[21] = pose_cov[28] = 1e6  # z, roll, pitch: not measured
        pose_cov[35] = 1e-6 + 0.1 * p.pose_var_per_m * self.distance_m
        twist_cov = np.zeros(36)
        twist_cov[0] = max(p.velocity_noise_std_mps, 1e-3) ** 2
        twist_cov[7] = 1e-6
        twist_cov[14] = twist_cov[21] = twist_cov[28] = 1e6
        twist_cov[35] = max(p.yaw_rate_noise_std_radps, 1e-3) ** 2
        v = self.v_mps + p.velocity_noise_std_mps * float(self.rng.standard_normal())
        w = self.w_radps + p.yaw_rate_noise_std_radps * float(self.rng.standard_normal())
        return OdomReading(t_s, self.x_m, self.y_m, self.yaw_rad, v, w, pose_cov, twist_cov)


# ----------------------------------------------------------------------------------------------------- IMU


@dataclass(frozen=True)
class ImuParams:
    """IMU with absolute orientation (ENU yaw, REP-145), gyro with a constant bias, accelerometer."""

    enabled: bool = True
    rate_hz: float = 100.0
    gyro_noise_std_radps: float = 0.002
    gyro_bias_std_radps: float = 0.001
    accel_noise_std_mps2: float = 0.05
    tilt_noise_std_rad: float = 0.003
    yaw_noise_std_rad: float = 0.01
    yaw_bias_std_rad: float = 0.01

    def __post_init__(self):
        _pos(self, "rate_hz")
        _nonneg(self, "gyro_noise_std_radps", "gyro_bias_std_radps", "accel_noise_std_mps2",
                "tilt_noise_std_rad", "yaw_noise_std_rad", "yaw_bias_std_rad")


@dataclass
class ImuReading:
    """Orientation (roll, pitch, yaw; radians, base_link in ENU), rates and specific force (body)."""

    t_s: float
    roll_rad: float
    pitch_rad: float
    yaw_rad: float
    angular_velocity_radps: np.ndarray  # (3,)
    linear_acceleration_mps2: np.ndarray  # (3,)
    orientation_covariance: np.ndarray  # (9,)
    angular_velocity_covariance: np.ndarray  # (9,)
    linear_acceleration_covariance: np.ndarray  # (9,)


GRAVITY_MPS2 = 9.80665


class ImuModel:
    def __init__(self, params: ImuParams, rng: np.random.Generator):
        self.params = params
        self.rng = rng
        self.gyro_bias = (params.gyro_bias_std_radps * rng.standard_normal(3)).tolist()
        self.yaw_bias = params.yaw_bias_std_rad * float(rng.standard_normal())
        p = params
        self._cov_o = np.diag([max(p.tilt_noise_std_rad, 1e-4) ** 2, max(p.tilt_noise_std_rad, 1e-4) ** 2,
                               max(p.yaw_noise_std_rad ** 2 + p.yaw_bias_std_rad ** 2, 1e-8)]).ravel()
        g2 = max(p.gyro_noise_std_radps ** 2 + p.gyro_bias_std_radps ** 2, 1e-8)
        self._cov_w = np.diag([g2, g2, g2]).ravel()
        a2 = max(p.accel_noise_std_mps2, 1e-3) ** 2
        self._cov_a = np.diag([a2, a2, a2]).ravel()

    def read(self, t_s, roll_rad, pitch_rad, yaw_rad, w_radps, accel_mps2, v_mps) -> ImuReading:
        p = self.params
        n = self.rng.standard_normal(9).tolist()
        roll = roll_rad + p.tilt_noise_std_rad * n[0]
        pitch = pitch_rad + p.tilt_noise_std_rad * n[1]
        yaw = yaw_rad + self.yaw_bias + p.yaw_noise_std_rad * n[2]
        yaw = (yaw + math.pi) % (2.0 * math.pi) - math.pi
        b = self.gyro_bias
        sg, sa = p.gyro_noise_std_radps, p.accel_noise_std_mps2
        gyro = np.array([b[0] + sg * n[3], b[1] + sg * n[4], w_radps + b[2] + sg * n[5]])
        # specific force in body: gravity reaction rotated by tilt + longitudinal and centripetal accel
        cr, sr, cp, sp = math.cos(roll_rad), math.sin(roll_rad), math.cos(pitch_rad), math.sin(pitch_rad)
        g = GRAVITY_MPS2
        acc = np.array([-g * sp + accel_mps2 + sa * n[6], g * sr * cp + v_mps * w_radps + sa * n[7],
                        g * cr * cp + sa * n[8]])
        return ImuReading(t_s, roll, pitch, yaw, gyro, acc, self._cov_o, self._cov_w, self._cov_a)


# ---------------------------------------------------------------------------------------------------- GNSS

GNSS_MODES = {"rtk": (0.02, 0.03, 0.0), "float": (0.3, 0.5, 10.0), "standard": (1.5, 3.0, 30.0)}
STATUS_NO_FIX, STATUS_FIX, STATUS_SBAS_FIX, STATUS_GBAS_FIX = -1, 0, 1, 2


@dataclass(frozen=True)
class GnssParams:
    """GNSS receiver at the antenna offset from base_link.

    ``mode`` ``rtk`` (2 cm), ``float`` (0.3 m) or ``standard`` (1.5 m) sets the defaults of
    ``horizontal_std_m``, ``vertical_std_m`` and ``correlation_time_s`` when those are left negative.
    The error is a first-order Gauss-Markov process with that stationary std and correlation time
    (0 = white noise). ``outages``: tuple of ``(t_start_s, t_end_s)`` sim-time intervals without a fix.
    """

    enabled: bool = True
    rate_hz: float = 10.0
    mode: str = "rtk"
    horizontal_std_m: float = -1.0
    vertical_std_m: float = -1.0
    correlation_time_s: float = -1.0
    antenna_x_m: float = 0.0
    antenna_y_m: float = 0.0
    antenna_height_m: float = 2.0
    outages: tuple = ()
    # between buildings (antenna within urban_range_m of a building; 0 = never): no RTK, the receiver reports a
    # standalone fix of urban_std_m, and for urban_hold_s at a time the sky is either clear, or a reflection
    # shifts the fix by a jump of urban_jump_std_m (not in the reported covariance: multipath), or no fix at all
    urban_range_m: float = 0.0
    urban_std_m: float = 1.0
    urban_jump_std_m: float = 3.0
    urban_jump_probability: float = 0.3
    urban_outage_probability: float = 0.3
    urban_hold_s: float = 5.0

    def __post_init__(self):
        _pos(self, "rate_hz", "urban_std_m", "urban_hold_s")
        _nonneg(self, "urban_range_m", "urban_jump_std_m")
        if not (0.0 <= self.urban_jump_probability and 0.0 <= self.urban_outage_probability
                and self.urban_jump_probability + self.urban_outage_probability <= 1.0):
            raise ValueError("urban_jump_probability and urban_outage_probability must be >= 0 with a sum <= 1")
        if self.mode not in GNSS_MODES:
            raise ValueError(f"mode must be one of {sorted(GNSS_MODES)}, got {self.mode!r}")
        for name in ("horizontal_std_m", "vertical_std_m", "correlation_time_s", "antenna_x_m", "antenna_y_m",
                     "antenna_height_m"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        for iv in self.outages:
            if len(iv) != 2 or not (math.isfinite(iv[0]) and math.isfinite(iv[1])) or iv[1] <= iv[0]:
                raise ValueError(f"outages: interval {iv!r} must be [t_start_s, t_end_s] with t_end_s > t_start_s")

    def resolved(self) -> tuple[float, float, float]:
        """``(horizontal_std_m, vertical_std_m, correlation_time_s)`` after mode defaults."""
        h, v, tau = GNSS_MODES[self.mode]
        return (self.horizontal_std_m if self.horizontal_std_m >= 0 else h,
                self.vertical_std_m if self.vertical_std_m >= 0 else v,
                self.correlation_time_s if self.correlation_time_s >= 0 else tau)


@dataclass
class GnssReading:
    """WGS84 fix. ``status``: -1 no fix (lat/lon/alt NaN), 0 fix, 2 RTK (GBAS) fix; covariance (9,) ENU m^2."""

    t_s: float
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    status: int
    position_covariance: np.ndarray
    error_east_m: float = 0.0
    error_north_m: float = 0.0


class GnssModel:
    def __init__(self, params: GnssParams, rng: np.random.Generator, ltp):
        self.params = params
        self.rng = rng
        self.ltp = ltp
        self.h_std, self.v_std, self.tau = params.resolved()
        self.err = np.array([self.h_std, self.h_std, self.v_std]) * rng.standard_normal(3)
        self.last_t = None
        self.cov = np.diag([max(self.h_std, 1e-3) ** 2, max(self.h_std, 1e-3) ** 2,
                            max(self.v_std, 1e-3) ** 2]).ravel()
        u = params.urban_std_m
        self.urban_cov = np.diag([u * u, u * u, 4.0 * u * u]).ravel()
        self.urban_state = "clear"        # clear | jump | outage (between buildings only)
        self.urban_jump = np.zeros(2)
        self.urban_until_s = -math.inf

    def in_outage(self, t_s: float) -> bool:
        return any(a <= t_s < b for a, b in self.params.outages)

    def read(self, t_s: float, x_m: float, y_m: float, z_m: float, urban: bool = False) -> GnssReading:
        """A fix of the antenna at ``(x_m, y_m, z_m)``; ``urban``: the antenna is between buildings."""
        sig = np.array([self.h_std, self.h_std, self.v_std])
        n = self.rng.standard_normal(3)
        if self.tau <= 0.0 or self.last_t is None:
            self.err = sig * n if self.tau <= 0.0 else self.err
        else:
            a = math.exp(-max(t_s - self.last_t, 0.0) / self.tau)
            self.err = a * self.err + math.sqrt(1.0 - a * a) * sig * n
        self.last_t = t_s
        nan = float("nan")
        if self.in_outage(t_s):
            return GnssReading(t_s, nan, nan, nan, STATUS_NO_FIX, np.zeros(9))
        if urban and self.params.urban_range_m > 0.0:
            p = self.params
            if t_s >= self.urban_until_s:
                u = float(self.rng.random())
                self.urban_state = ("outage" if u < p.urban_outage_probability else
                                    "jump" if u < p.urban_outage_probability + p.urban_jump_probability else "clear")
                self.urban_jump = p.urban_jump_std_m * self.rng.standard_normal(2)
                self.urban_until_s = t_s + p.urban_hold_s
            if self.urban_state == "outage":
                return GnssReading(t_s, nan, nan, nan, STATUS_NO_FIX, np.zeros(9))
            e = self.err[:2] + p.urban_std_m * self.rng.standard_normal(2)
            if self.urban_state == "jump":
                e = e + self.urban_jump
            lat, lon, alt = self.ltp.to_wgs84(x_m + e[0], y_m + e[1], z_m + self.err[2])
            return GnssReading(t_s, lat, lon, alt, STATUS_FIX, self.urban_cov, float(e[0]), float(e[1]))
        self.urban_until_s = -math.inf
        lat, lon, alt = self.ltp.to_wgs84(x_m + self.err[0], y_m + self.err[1], z_m + self.err[2])
        status = STATUS_GBAS_FIX if self.params.mode == "rtk" else STATUS_FIX
        return GnssReading(t_s, lat, lon, alt, status, self.cov, float(self.err[0]), float(self.err[1]))


# ---------------------------------------------------------------------------------------------------- scan


@dataclass(frozen=True)
class ScanParams:
    """2-D lidar at ``(mount_x_m, mount_y_m, mount_yaw_rad)`` in base_link.

    ``n_beams`` beams over ``fov_rad`` (a full turn spaces them ``2*pi/n``). Ranges beyond
    ``range_max_m`` are ``+inf``, closer than ``range_min_m`` ``-inf`` (REP-117).
    """

    enabled: bool = True
    rate_hz: float = 10.0
    n_beams: int = 360
    fov_rad: float = 2.0 * math.pi
    range_min_m: float = 0.1
    range_max_m: float = 30.0
    noise_std_m: float = 0.01
    mount_x_m: float = 0.0
    mount_y_m: float = 0.0
    mount_yaw_rad: float = 0.0

    def __post_init__(self):
        _pos(self, "rate_hz", "fov_rad", "range_min_m", "range_max_m")
        _nonneg(self, "noise_std_m")
        if not (isinstance(self.n_beams, int) and self.n_beams >= 2):
            raise ValueError(f"n_beams must be an integer >= 2, got {self.n_beams!r}")
        if self.fov_rad > 2.0 * math.pi + 1e-9:
            raise ValueError("fov_rad must be <= 2*pi")
        if self.range_max_m <= self.range_min_m:
            raise ValueError("range_max_m must be > range_min_m")

    @property
    def angle_increment_rad(self) -> float:
        full = self.fov_rad >= 2.0 * math.pi - 1e-9
        return self.fov_rad / (self.n_beams if full else self.n_beams - 1)

    @property
    def angle_min_rad(self) -> float:
        return -0.5 * self.fov_rad if self.fov_rad < 2.0 * math.pi - 1e-9 else -math.pi

    def beam_angles(self) -> np.ndarray:
        """Beam angles in the scan frame, shape (n_beams,)."""
        return self.angle_min_rad + self.angle_increment_rad * np.arange(self.n_beams)


@dataclass
class ScanReading:
    t_s: float
    angle_min_rad: float
    angle_increment_rad: float
    range_min_m: float
    range_max_m: float
    ranges_m: np.ndarray  # (n_beams,) float32

    @property
    def angle_max_rad(self) -> float:
        return self.angle_min_rad + self.angle_increment_rad * (len(self.ranges_m) - 1)


def ray_cast(origin_xy, angles_rad, seg_a, seg_b, circ_c, circ_r, range_max_m: float) -> np.ndarray:
    """Distance along each ray to the first segment or circle it hits.

    Parameters
    ----------
    origin_xy : array_like (2,)
        Ray origin in the map frame.
    angles_rad : ndarray (N,)
        Ray directions in the map frame.
    seg_a, seg_b : ndarray (M, 2)
        Segment end points.
    circ_c : ndarray (K, 2), circ_r : ndarray (K,)
        Circle centres and radii (rays starting inside a circle hit its far side).
    range_max_m : float
        Hits beyond this are ignored.

    Returns
    -------
    ndarray (N,)
        Range in metres, ``inf`` when nothing is hit within ``range_max_m``.
    """
    ox, oy = float(origin_xy[0]), float(origin_xy[1])
    dx = np.cos(angles_rad)
    dy = np.sin(angles_rad)
    best = np.full(dx.shape, np.inf)
    if len(seg_a):
        ax = seg_a[:, 0] - ox
        ay = seg_a[:, 1] - oy
        ex = seg_b[:, 0] - seg_a[:, 0]
        ey = seg_b[:, 1] - seg_a[:, 1]
        # broad phase: segments that can be within range
        near = np.hypot(ax + 0.5 * ex, ay + 0.5 * ey) - 0.5 * np.hypot(ex, ey) <= range_max_m
        if np.any(near):
            ax, ay, ex, ey = ax[near], ay[near], ex[near], ey[near]
            denom = np.outer(dx, ey) - np.outer(dy, ex)  # cross(d, e)  (N, M)
            cae = ax * ey - ay * ex  # cross(a-o, e) (M,)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = cae[None, :] / denom
                u = (np.outer(dy, ax) - np.outer(dx, ay)) / denom  # cross(a-o, d) / cross(d, e)
            ok = (np.abs(denom) > 1e-12) & (t > 0.0) & (u >= 0.0) & (u <= 1.0)
            t = np.where(ok, t, np.inf)
            best = np.minimum(best, t.min(axis=1))
    if len(circ_r):
        cx = circ_c[:, 0] - ox
        cy = circ_c[:, 1] - oy
        near = np.hypot(cx, cy) - circ_r <= range_max_m
        if np.any(near):
            cx, cy, r = cx[near], cy[near], circ_r[near]
            b = np.outer(dx, cx) + np.outer(dy, cy)  # d . (c - o)
            c2 = cx * cx + cy * cy - r * r
            disc = b * b - c2[None, :]
            with np.errstate(invalid="ignore"):
                sq = np.sqrt(np.where(disc >= 0.0, disc, np.nan))
            t1 = b - sq
            t2 = b + sq
            t = np.where(t1 > 0.0, t1, np.where(t2 > 0.0, t2, np.inf))
            t = np.where(np.isnan(t), np.inf, t)
            best = np.minimum(best, t.min(axis=1))
    best[best > range_max_m] = np.inf
    return best


# ------------------------------------------------------------------------------------------------- battery


@dataclass(frozen=True)
class BatteryParams:
    """Battery with a linear open-circuit voltage curve and a power draw ``idle + k*|v| + m*|a|*|v|``."""

    enabled: bool = True
    rate_hz: float = 1.0
    capacity_ah: float = 100.0
    nominal_voltage_v: float = 48.0
    initial_soc: float = 0.9
    idle_power_w: float = 50.0
    power_per_mps_w: float = 300.0
    power_per_accel_w: float = 100.0

    def __post_init__(self):
        _pos(self, "rate_hz", "capacity_ah", "nominal_voltage_v")
        _nonneg(self, "idle_power_w", "power_per_mps_w", "power_per_accel_w")
        if not (0.0 <= self.initial_soc <= 1.0):
            raise ValueError(f"initial_soc must be in [0, 1], got {self.initial_soc!r}")


@dataclass
class BatteryReading:
    t_s: float
    voltage_v: float
    current_a: float  # negative while discharging (sensor_msgs/BatteryState)
    charge_ah: float
    capacity_ah: float
    percentage: float  # 0..1


class BatteryModel:
    def __init__(self, params: BatteryParams):
        self.params = params
        self.charge_ah = params.capacity_ah * params.initial_soc
        self.power_w = params.idle_power_w

    def integrate(self, dt_s: float, v_mps: float, accel_mps2: float) -> None:
        p = self.params
        self.power_w = p.idle_power_w + p.power_per_mps_w * abs(v_mps) + p.power_per_accel_w * abs(accel_mps2 * v_mps)
        self.charge_ah = max(0.0, self.charge_ah - self.power_w * dt_s / 3600.0 / self.voltage())

    def voltage(self) -> float:
        soc = self.charge_ah / self.params.capacity_ah
        return self.params.nominal_voltage_v * (0.9 + 0.2 * soc)

    def read(self, t_s: float) -> BatteryReading:
        v = self.voltage()
        return BatteryReading(t_s, v, -self.power_w / v, self.charge_ah, self.params.capacity_ah,
                              self.charge_ah / self.params.capacity_ah)


SENSOR_PARAM_TYPES = {"odom": OdomParams, "imu": ImuParams, "gnss": GnssParams, "scan": ScanParams,
                      "battery": BatteryParams}
