"""Planar extended Kalman filter fusing wheel odometry, IMU and GNSS positions.

State (7,): ``[x_m, y_m, yaw_rad, v_mps, yaw_rate_radps, gyro_bias_radps, odom_scale]`` in the map frame
(x east, y north). The motion model is constant speed / constant yaw rate; wheel odometry measures
``odom_scale * v`` and ``yaw_rate``, the gyro measures ``yaw_rate + gyro_bias``, GNSS measures the antenna
position ``[x, y] + R(yaw) @ antenna_offset``. Bias and scale are frozen (zero variance) unless enabled.

Every measurement goes through :meth:`PlanarEkf.update` with its own stamp. Measurements arriving out of
order within ``history_s`` are inserted into a short history and the later ones re-applied; older ones are
dropped and counted; a stamp far in the past (``clock_jump_back_s``) means the clock jumped back (a
simulation restarted, a bag looped) and the filter resets. Outliers are rejected by a Mahalanobis gate and
counted per source. The filter never reads a clock.

Run ``python -m agricare.core.localization.ekf`` for a small demo.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from agricare.core.geometry import angle_diff, wrap_angle

IX, IY, IYAW, IV, IW, IB, IK = range(7)
N_STATE = 7

# result codes of update()
ACCEPTED = "accepted"
REJECTED = "rejected"          # failed the Mahalanobis gate
INVALID = "invalid"            # NaN / inf / negative variance
DROPPED_LATE = "dropped_late"  # older than the history buffer
CLOCK_RESET = "clock_reset"    # stamp far in the past: filter reset, then measurement applied
BUFFERED = "buffered"          # waiting for initialisation (no position yet)

SOURCES = ("odom", "imu_rate", "imu_yaw", "gnss", "pose")
_MAX_STEPS = 500   # a long gap is predicted in at most this many steps
_EYE = np.eye(N_STATE)
_EYE.flags.writeable = False


@dataclass(frozen=True)
class EkfParams:
    """Parameters of :class:`PlanarEkf` (and of ``ekf_node``). SI units; std = standard deviation."""

    map_frame: str = "map"
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    accel_noise_mps2: float = 0.5
    yaw_accel_noise_radps2: float = 0.5
    position_noise_mps: float = 0.02
    yaw_noise_radps: float = 0.002
    estimate_gyro_bias: bool = True
    gyro_bias_walk_radps_per_sqrt_s: float = 2.0e-4
    initial_gyro_bias_std_radps: float = 0.01
    estimate_odom_scale: bool = True
    odom_scale_walk_per_sqrt_s: float = 1.0e-4
    initial_odom_scale_std: float = 0.03
    default_odom_speed_std_mps: float = 0.05
    default_odom_yaw_rate_std_radps: float = 0.05
    default_imu_yaw_rate_std_radps: float = 0.01
    default_imu_yaw_std_rad: float = 0.05
    default_gnss_std_m: float = 2.5
    use_imu_orientation: bool = False
    use_odom_yaw_rate: bool = False     # wheel yaw rate; always used when use_imu is false
    # GNSS antenna [x, y] in base_link (m); NaN = not given: this filter then takes the antenna at base_link, and
    # ekf_node reads it from robot_description (ignoring fixes until it has it)
    gnss_antenna_offset_m: tuple[float, ...] = (math.nan, math.nan)
    gate_chi2_2dof: float = 13.8
    gate_chi2_1dof: float = 10.8
    max_consecutive_gnss_rejections: int = 50
    history_s: float = 1.0
    clock_jump_back_s: float = 3.0
    max_predict_step_s: float = 0.02
    yaw_align_distance_m: float = 3.0
    initial_pose_known: bool = False
    initial_pose_in_map: tuple[float, ...] = (0.0, 0.0, 0.0)
    initial_pose_std: tuple[float, ...] = (1.0, 1.0, 0.2)
    odom_timeout_s: float = 0.5
    imu_timeout_s: float = 0.5
    gnss_timeout_s: float = 2.0
    pose_timeout_s: float = 2.0
    publish_rate_hz: float = 50.0
    publish_tf: bool = True
    use_odom: bool = True
    use_imu: bool = True
    use_gnss: bool = True
    use_pose: bool = False
    # sources without which no estimate is published (e.g. the map pose of a robot that must not drive on
    # odometry and degraded GNSS alone): stale beyond its timeout -> the node stops publishing and says why
    required_sources: tuple[str, ...] = ()
    # GNSS policy: fixes rejected by the gate without a break for this long (a jump, a spoofed or wrong fix
    # against the odometry/IMU prediction) -> no estimate is published until a fix passes the gate again, so
    # the robot's consumers stop on their stale-pose rules; 0: dead-reckon on and only report it
    gnss_reject_stop_s: float = 0.0

    @property
    def expected_sources(self) -> tuple[str, ...]:
        """Sources the node subscribes to (and reports as stale when silent)."""
        out = []
        for flag, src in ((self.use_odom, "odom"), (self.use_imu, "imu_rate"), (self.use_gnss, "gnss"),
                          (self.use_pose, "pose")):
            if flag:
                out.append(src)
        return tuple(out)

    def __post_init__(self):
        for name in ("map_frame", "odom_frame", "base_frame"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip() or v.startswith("/") or " " in v:
                raise ValueError(f"{name} must be a non-empty frame id without '/' or spaces, got {v!r}")
        if len({self.map_frame, self.odom_frame, self.base_frame}) != 3:
            raise ValueError("map_frame, odom_frame and base_frame must be three different frames")
        positive = ("accel_noise_mps2", "yaw_accel_noise_radps2", "position_noise_mps", "yaw_noise_radps",
                    "default_odom_speed_std_mps", "default_odom_yaw_rate_std_radps",
                    "default_imu_yaw_rate_std_radps", "default_imu_yaw_std_rad", "default_gnss_std_m",
                    "gate_chi2_2dof", "gate_chi2_1dof", "history_s", "clock_jump_back_s",
                    "max_predict_step_s", "yaw_align_distance_m", "odom_timeout_s", "imu_timeout_s",
                    "gnss_timeout_s", "pose_timeout_s", "publish_rate_hz")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("gyro_bias_walk_radps_per_sqrt_s", "initial_gyro_bias_std_radps", "gnss_reject_stop_s",
                     "odom_scale_walk_per_sqrt_s", "initial_odom_scale_std"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.clock_jump_back_s < self.history_s:
            raise ValueError("clock_jump_back_s must be >= history_s")
        if not (isinstance(self.max_consecutive_gnss_rejections, int)
                and self.max_consecutive_gnss_rejections >= 1):
            raise ValueError("max_consecutive_gnss_rejections must be an integer >= 1")
        if not (len(self.gnss_antenna_offset_m) == 2 and all(math.isnan(v) for v in self.gnss_antenna_offset_m)):
            _check_vec("gnss_antenna_offset_m", self.gnss_antenna_offset_m, 2)
        bad = [x for x in self.required_sources if x not in self.expected_sources]
        if bad:
            raise ValueError(f"required_sources {bad} must be among the sources in use {list(self.expected_sources)}")
        _check_vec("initial_pose_in_map", self.initial_pose_in_map, 3)
        _check_vec("initial_pose_std", self.initial_pose_std, 3, positive=True)
        if not (self.use_odom or self.use_imu):
            raise ValueError("use_odom and use_imu are both false: the filter needs a motion source")


def _check_vec(name, value, n, positive=False):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {n} numbers, got {value!r}") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        raise ValueError(f"{name} must be {n} finite{' positive' if positive else ''} numbers, got {value!r}")


def variance_or_default(var, default_std: float) -> float:
    """A message variance if usable (finite, > 0), else ``default_std**2``."""
    try:
        v = float(var)
    except (TypeError, ValueError):
        return default_std ** 2
    return v if (math.isfinite(v) and v > 0.0) else default_std ** 2


@dataclass
class _Entry:
    """One applied measurement and the filter state just before it (for re-propagation)."""

    t: float
    source: str
    z: np.ndarray
    R: np.ndarray
    snapshot: tuple


@dataclass
class EkfStats:
    """Counters per source (dicts keyed by source name)."""

    accepted: dict = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    rejected: dict = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    invalid: dict = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    dropped_late: dict = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    reprocessed: int = 0
    clock_resets: int = 0
    gnss_resets: int = 0


class PlanarEkf:
    """EKF over ``[x, y, yaw, v, yaw_rate, gyro_bias, odom_scale]``.

    Parameters
    ----------
    params : EkfParams
    """

    def __init__(self, params: EkfParams | None = None):
        self.p = params or EkfParams()
        self.stats = EkfStats()
        self.last_time: dict[str, float] = {}
        self._q_for = None           # the parameters _q was computed from
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self):
        """Forget everything but the parameters and the counters."""
        p = self.p
        self.t: float | None = None
        self.x = np.zeros(N_STATE)
        self.x[IK] = 1.0
        self.P = np.diag([1e6, 1e6, math.pi ** 2, 1.0, 0.1, p.initial_gyro_bias_std_radps ** 2
                          if p.estimate_gyro_bias else 0.0,
                          p.initial_odom_scale_std ** 2 if p.estimate_odom_scale else 0.0])
        self.position_initialized = False
        self.yaw_initialized = False
        self._align_anchor = None     # (xy, yaw_at_anchor, std) for course alignment
        self._gnss_reject_run = 0
        self._history: list[_Entry] = []
        self.last_time.clear()
        if p.initial_pose_known:
            self.initialize(None, p.initial_pose_in_map, p.initial_pose_std)

    def initialize(self, t_s, pose_in_map, std=(0.5, 0.5, 0.1)):
        """Set the pose explicitly.

        Parameters
        ----------
        t_s : float or None
            Stamp of the pose (None: at the first measurement).
        pose_in_map : array_like (3,)
            ``[x_m, y_m, yaw_rad]``.
        std : array_like (3,)
            Standard deviations of x, y (m) and yaw (rad).
        """
        pose = np.asarray(pose_in_map, dtype=float)
        sd = np.asarray(std, dtype=float)
        if pose.shape != (3,) or sd.shape != (3,) or not (np.all(np.isfinite(pose))
                                                          and np.all(np.isfinite(sd))):
            raise ValueError("initialize: pose and std must be 3 finite numbers each")
        self.x[IX:IYAW + 1] = [pose[0], pose[1], wrap_angle(pose[2])]
        self.P[:3, :] = 0.0
        self.P[:, :3] = 0.0
        self.P[0, 0], self.P[1, 1], self.P[2, 2] = sd ** 2
        self.position_initialized = self.yaw_initialized = True
        if t_s is not None:
            self.t = float(t_s)
        self._history.clear()

    @property
    def initialized(self) -> bool:
        return self.position_initialized and self.yaw_initialized

    def _snapshot(self):
        return (self.t, self.x.copy(), self.P.copy(), self.position_initialized, self.yaw_initialized,
                self._align_anchor, self._gnss_reject_run)

    def _restore(self, snap):
        (self.t, x, P, self.position_initialized, self.yaw_initialized, self._align_anchor,
         self._gnss_reject_run) = snap
        self.x, self.P = x.copy(), P.copy()

    # ------------------------------------------------------------- prediction
    def _q_rate(self) -> np.ndarray:
        """Process noise per second (7,) of the current parameters (kept until ``p`` is replaced)."""
        p = self.p
        if self._q_for is not p:
            self._q = np.array([p.position_noise_mps ** 2, p.position_noise_mps ** 2, p.yaw_noise_radps ** 2,
                                p.accel_noise_mps2 ** 2, p.yaw_accel_noise_radps2 ** 2,
                                p.gyro_bias_walk_radps_per_sqrt_s ** 2 if p.estimate_gyro_bias else 0.0,
                                p.odom_scale_walk_per_sqrt_s ** 2 if p.estimate_odom_scale else 0.0])
            self._q_for = p
        return self._q

    def _process(self, x, P, dt):
        """One prediction step: ``F P F^T + Q dt`` with F the identity but for the rows of x, y and yaw, so only
        those rows and columns are multiplied (:meth:`_process_reference` is the dense form, for the tests)."""
        _x, _y, yaw, v, w = x[:5].tolist()
        yaw_m = yaw + 0.5 * w * dt
        c, s = math.cos(yaw_m), math.sin(yaw_m)
        xn = x.copy()
        xn[IX] = _x + v * c * dt
        xn[IY] = _y + v * s * dt
        xn[IYAW] = wrap_angle(yaw + w * dt)
        Fr = np.array([[1.0, 0.0, -v * s * dt, c * dt, -v * s * dt * dt * 0.5, 0.0, 0.0],
                       [0.0, 1.0, v * c * dt, s * dt, v * c * dt * dt * 0.5, 0.0, 0.0],
                       [0.0, 0.0, 1.0, 0.0, dt, 0.0, 0.0]])
        M = P.copy()
        M[:3] = Fr @ P             # F P
        Pn = M.copy()
        Pn[:, :3] = M @ Fr.T       # (F P) F^T
        Pn.flat[::N_STATE + 1] += self._q_rate() * dt
        Pn += Pn.T
        Pn *= 0.5
        return xn, Pn

    def _process_reference(self, x, P, dt):
        """The dense prediction step (full F), which :meth:`_process` computes with fewer multiplications."""
        p = self.p
        yaw_m = x[IYAW] + 0.5 * x[IW] * dt
        c, s = math.cos(yaw_m), math.sin(yaw_m)
        v = x[IV]
        xn = x.copy()
        xn[IX] += v * c * dt
        xn[IY] += v * s * dt
        xn[IYAW] = wrap_angle(x[IYAW] + x[IW] * dt)
        F = np.eye(N_STATE)
        F[IX, IYAW] = -v * s * dt
        F[IX, IV] = c * dt
        F[IX, IW] = -v * s * dt * dt * 0.5
        F[IY, IYAW] = v * c * dt
        F[IY, IV] = s * dt
        F[IY, IW] = v * c * dt * dt * 0.5
        F[IYAW, IW] = dt
        q = np.array([p.position_noise_mps ** 2, p.position_noise_mps ** 2, p.yaw_noise_radps ** 2,
                      p.accel_noise_mps2 ** 2, p.yaw_accel_noise_radps2 ** 2,
                      p.gyro_bias_walk_radps_per_sqrt_s ** 2 if p.estimate_gyro_bias else 0.0,
                      p.odom_scale_walk_per_sqrt_s ** 2 if p.estimate_odom_scale else 0.0]) * dt
        Pn = F @ P @ F.T + np.diag(q)
        return xn, 0.5 * (Pn + Pn.T)

    def _predict_to(self, t):
        if self.t is None:
            self.t = t
            return
        remaining = t - self.t
        n = min(_MAX_STEPS, max(1, int(math.ceil(remaining / self.p.max_predict_step_s)))) if remaining > 0 else 0
        for _ in range(n):
            self.x, self.P = self._process(self.x, self.P, remaining / n)
        self.t = max(self.t, t)

    def predicted(self, t_s: float):
        """State and covariance predicted to ``t_s`` without changing the filter.

        Returns
        -------
        x : ndarray (7,)
        P : ndarray (7, 7)
        """
        if self.t is None or t_s <= self.t:
            return self.x.copy(), self.P.copy()
        x, P = self.x.copy(), self.P.copy()
        remaining = t_s - self.t
        n = min(_MAX_STEPS, max(1, int(math.ceil(remaining / self.p.max_predict_step_s))))
        for _ in range(n):
            x, P = self._process(x, P, remaining / n)
        return x, P

    # ------------------------------------------------------------------ update
    def update(self, source: str, t_s: float, z, R) -> str:
        """Fuse one measurement.

        Parameters
        ----------
        source : str
            ``"odom"``: z = ``[v_mps, yaw_rate_radps]`` (base_link twist), R (2, 2);
            ``"imu_rate"``: z = ``[yaw_rate_radps]``, R (1, 1);
            ``"imu_yaw"``: z = ``[yaw_rad]`` in map, R (1, 1) (ignored unless ``use_imu_orientation``);
            ``"gnss"``: z = ``[x_m, y_m]`` antenna position in map, R (2, 2);
            ``"pose"``: z = ``[x_m, y_m]`` base_link position in map from another localiser, R (2, 2).
        t_s : float
            Measurement stamp, seconds.

        Returns
        -------
        str
            One of ``accepted``, ``rejected``, ``invalid``, ``dropped_late``, ``clock_reset``, ``buffered``.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
        z = np.asarray(z, dtype=float)
        if z.ndim == 0:
            z = z.reshape(1)
        R = np.asarray(R, dtype=float)
        if R.ndim < 2:
            R = R.reshape(1, -1)
        dim = 2 if source in ("odom", "gnss", "pose") else 1
        if (z.shape != (dim,) or R.shape != (dim, dim) or not math.isfinite(t_s)
                or not np.isfinite(z).all() or not np.isfinite(R).all() or (R.diagonal() <= 0).any()):
            self.stats.invalid[source] += 1
            return INVALID
        if source == "imu_yaw" and not self.p.use_imu_orientation:
            return INVALID
        status = None
        if self.t is not None and t_s < self.t:
            late = self.t - t_s
            if late > self.p.clock_jump_back_s:
                self.stats.clock_resets += 1
                self.reset()
                status = CLOCK_RESET
            elif late > self.p.history_s or not self._history or t_s < self._history[0].t:
                self.stats.dropped_late[source] += 1
                return DROPPED_LATE
            else:
                return self._insert_late(source, t_s, z, R)
        snap = self._snapshot()
        result = self._apply(source, t_s, z, R, replay=False)
        self._remember(_Entry(t_s, source, z, R, snap))
        self.last_time[source] = max(self.last_time.get(source, -math.inf), t_s)
        return status or result

    def _remember(self, entry):
        self._history.append(entry)
        horizon = entry.t - self.p.history_s
        while self._history and self._history[0].t < horizon:
            self._history.pop(0)

    def _insert_late(self, source, t_s, z, R):
        i = next(k for k, e in enumerate(self._history) if e.t > t_s)
        later = self._history[i:]
        self._restore(later[0].snapshot)
        del self._history[i:]
        snap = self._snapshot()
        result = self._apply(source, t_s, z, R, replay=False)
        self._history.append(_Entry(t_s, source, z, R, snap))
        for e in later:
            e.snapshot = self._snapshot()
            self._apply(e.source, e.t, e.z, e.R, replay=True)
            self._history.append(e)
        self.stats.reprocessed += 1
        self.last_time[source] = max(self.last_time.get(source, -math.inf), t_s)
        return result

    def _apply(self, source, t, z, R, replay):
        self._predict_to(t)
        if source in ("gnss", "pose"):
            return self._update_position(source, z, R, replay)
        if not self.position_initialized and source != "imu_yaw":
            # no pose yet: still learn speed / yaw rate so the first fix starts moving correctly
            pass
        x = self.x
        if source == "odom":
            if self.p.use_odom_yaw_rate or not self.p.use_imu:
                h = np.array([x[IK] * x[IV], x[IW]])
                H = np.zeros((2, N_STATE))
                H[0, IV], H[0, IK], H[1, IW] = x[IK], x[IV], 1.0
                return self._kalman(source, z - h, H, R, self.p.gate_chi2_2dof, replay)
            H = np.zeros((1, N_STATE))
            H[0, IV], H[0, IK] = x[IK], x[IV]
            return self._kalman(source, z[:1] - x[IK] * x[IV], H, R[:1, :1], self.p.gate_chi2_1dof, replay)
        if source == "imu_rate":
            H = np.zeros((1, N_STATE))
            H[0, IW] = 1.0
            H[0, IB] = 1.0
            return self._kalman(source, z - (x[IW] + x[IB]), H, R, self.p.gate_chi2_1dof, replay)
        # imu_yaw
        if not self.yaw_initialized:
            self.x[IYAW] = wrap_angle(z[0])
            self.P[IYAW, :] = 0.0
            self.P[:, IYAW] = 0.0
            self.P[IYAW, IYAW] = R[0, 0]
            self.yaw_initialized = True
            if not replay:
                self.stats.accepted[source] += 1
            return ACCEPTED
        H = np.zeros((1, N_STATE))
        H[0, IYAW] = 1.0
        y = np.array([angle_diff(z[0], x[IYAW])])
        return self._kalman(source, y, H, R, self.p.gate_chi2_1dof, replay)

    def _antenna(self, source):
        if source == "gnss":
            off = np.asarray(self.p.gnss_antenna_offset_m, dtype=float)
            return np.zeros(2) if np.all(np.isnan(off)) else off
        return np.zeros(2)

    def _update_position(self, source, z, R, replay):
        off = self._antenna(source)
        if not self.position_initialized:
            c, s = math.cos(self.x[IYAW]), math.sin(self.x[IYAW])
            self.x[IX:IY + 1] = z - (np.array([[c, -s], [s, c]]) @ off if self.yaw_initialized else 0.0)
            self.P[:2, :] = 0.0
            self.P[:, :2] = 0.0
            self.P[:2, :2] = R + (np.eye(2) * float(off @ off) if not self.yaw_initialized else 0.0)
            self.position_initialized = True
            self._align_anchor = (z.copy(), self.x[IYAW], math.sqrt(max(R[0, 0], R[1, 1])))
            if not replay:
                self.stats.accepted[source] += 1
            return ACCEPTED
        if not self.yaw_initialized:
            return self._align_yaw(source, z, R, replay)
        yaw = self.x[IYAW]
        c, s = math.cos(yaw), math.sin(yaw)
        h = self.x[:2] + np.array([c * off[0] - s * off[1], s * off[0] + c * off[1]])
        H = np.zeros((2, N_STATE))
        H[0, IX] = H[1, IY] = 1.0
        H[0, IYAW] = -s * off[0] - c * off[1]
        H[1, IYAW] = c * off[0] - s * off[1]
        result = self._kalman(source, z - h, H, R, self.p.gate_chi2_2dof, replay)
        if source == "gnss":
            if result == REJECTED:
                self._gnss_reject_run += 1
                if self._gnss_reject_run >= self.p.max_consecutive_gnss_rejections:
                    # persistently inconsistent: trust GNSS again (the filter has diverged)
                    self.x[:2] = z - (h - self.x[:2])
                    self.P[:2, :] = 0.0
                    self.P[:, :2] = 0.0
                    self.P[:2, :2] = R
                    self._gnss_reject_run = 0
                    if not replay:
                        self.stats.gnss_resets += 1
            else:
                self._gnss_reject_run = 0
        return result

    def _align_yaw(self, source, z, R, replay):
        """Before the heading is known: follow the fixes and take the course once far enough."""
        anchor_xy, anchor_yaw, anchor_std = self._align_anchor
        std = math.sqrt(max(R[0, 0], R[1, 1]))
        d = z - anchor_xy
        dist = float(np.hypot(*d))
        turned = abs(angle_diff(self.x[IYAW], anchor_yaw))
        self.x[:2] = z
        self.P[:2, :] = 0.0
        self.P[:, :2] = 0.0
        self.P[:2, :2] = R
        if turned > 0.1:
            self._align_anchor = (z.copy(), self.x[IYAW], std)
        elif dist >= max(self.p.yaw_align_distance_m, 8.0 * (std + anchor_std)):
            course = math.atan2(d[1], d[0])
            if self.x[IV] < 0:
                course += math.pi
            # yaw integrated since the anchor is relative; the course is the mean heading over the leg
            self.x[IYAW] = wrap_angle(course + 0.5 * angle_diff(self.x[IYAW], anchor_yaw))
            self.P[IYAW, :] = 0.0
            self.P[:, IYAW] = 0.0
            self.P[IYAW, IYAW] = ((std + anchor_std) / dist) ** 2 + 0.05 ** 2
            self.yaw_initialized = True
            # the fixes are the antenna: base_link is the antenna minus the lever arm at this heading
            off = self._antenna(source)
            c, s = math.cos(self.x[IYAW]), math.sin(self.x[IYAW])
            self.x[:2] = z - np.array([c * off[0] - s * off[1], s * off[0] + c * off[1]])
            J = np.array([[-s * off[0] - c * off[1]], [c * off[0] - s * off[1]]])   # d(base)/d(yaw)
            self.P[:2, :2] = R + J @ J.T * self.P[IYAW, IYAW]
            self.P[:2, IYAW] = self.P[IYAW, :2] = -J[:, 0] * self.P[IYAW, IYAW]
        if not replay:
            self.stats.accepted[source] += 1
        return ACCEPTED

    def _kalman(self, source, y, H, R, gate, replay):
        """Gated update with the Joseph form. The innovation covariance of the 1- and 2-D measurements is
        inverted in closed form (a scalar, a 2 x 2 adjugate) rather than by LAPACK, which costs more than the rest
        of the update; :meth:`_kalman_reference` is the general form the tests compare it with."""
        PHt = self.P @ H.T
        S = H @ PHt + R
        m = len(y)
        if m == 1:
            s00 = float(S[0, 0])
            if s00 == 0.0 or not math.isfinite(s00):
                return self._invalid(source, replay)
            Sinv = np.array([[1.0 / s00]])
        elif m == 2:
            a, b, c, d = S.ravel().tolist()
            det = a * d - b * c
            if det == 0.0 or not math.isfinite(det):
                return self._invalid(source, replay)
            Sinv = np.array([[d / det, -b / det], [-c / det, a / det]])
        else:
            try:
                Sinv = np.linalg.inv(S)
            except np.linalg.LinAlgError:
                return self._invalid(source, replay)
        d2 = float(y @ Sinv @ y)
        if not math.isfinite(d2) or d2 > gate:
            if not replay:
                self.stats.rejected[source] += 1
            return REJECTED
        K = PHt @ Sinv
        self.x = self.x + K @ y
        self.x[IYAW] = wrap_angle(self.x[IYAW])
        I_KH = _EYE - K @ H
        P = I_KH @ self.P @ I_KH.T + K @ R @ K.T
        P += P.T
        P *= 0.5
        self.P = P
        if not replay:
            self.stats.accepted[source] += 1
        return ACCEPTED

    def _invalid(self, source, replay):
        if not replay:
            self.stats.invalid[source] += 1
        return INVALID

    def _kalman_reference(self, source, y, H, R, gate, replay):
        """The general form of :meth:`_kalman` (LAPACK inverse), for the tests."""
        S = H @ self.P @ H.T + R
        try:
            Sinv = np.linalg.inv(S)
        except np.linalg.LinAlgError:
            if not replay:
                self.stats.invalid[source] += 1
            return INVALID
        d2 = float(y @ Sinv @ y)
        if not math.isfinite(d2) or d2 > gate:
            if not replay:
                self.stats.rejected[source] += 1
            return REJECTED
        K = self.P @ H.T @ Sinv
        self.x = self.x + K @ y
        self.x[IYAW] = wrap_angle(self.x[IYAW])
        I_KH = np.eye(N_STATE) - K @ H
        P = I_KH @ self.P @ I_KH.T + K @ R @ K.T
        self.P = 0.5 * (P + P.T)
        if not replay:
            self.stats.accepted[source] += 1
        return ACCEPTED

    # ---------------------------------------------------------------- helpers
    def stale_sources(self, t_now_s: float, expected=("odom", "imu_rate", "gnss")) -> dict[str, float]:
        """Sources older than their timeout at ``t_now_s``: ``{source: age_s}`` (inf if never seen)."""
        timeouts = {"odom": self.p.odom_timeout_s, "imu_rate": self.p.imu_timeout_s,
                    "imu_yaw": self.p.imu_timeout_s, "gnss": self.p.gnss_timeout_s,
                    "pose": self.p.pose_timeout_s}
        out = {}
        for s in expected:
            age = t_now_s - self.last_time[s] if s in self.last_time else math.inf
            if age > timeouts[s]:
                out[s] = age
        return out

    def pose_covariance_xyyaw(self, P=None) -> np.ndarray:
        """The (3, 3) covariance of x, y, yaw."""
        P = self.P if P is None else P
        return P[:3, :3].copy()


def map_to_odom(pose_in_map, pose_in_odom) -> np.ndarray:
    """``T_map_odom`` so that ``T_map_odom * T_odom_base == T_map_base`` (both poses of base_link), (3,)."""
    from agricare.core.geometry import se2_compose, se2_inverse

    return se2_compose(pose_in_map, se2_inverse(pose_in_odom))


def params_with(params: EkfParams, **changes) -> EkfParams:
    """A copy of ``params`` with some fields changed (validated again)."""
    return dataclasses.replace(params, **changes)


def _demo():  # pragma: no cover - runnable demo
    rng = np.random.default_rng(0)
    ekf = PlanarEkf(EkfParams())
    x = np.zeros(3)
    v, w = 2.0, 0.05
    for k in range(1, 1001):
        t = k * 0.02
        x = x + np.array([v * math.cos(x[2]) * 0.02, v * math.sin(x[2]) * 0.02, w * 0.02])
        z_odom = [v * 1.01 + rng.normal(0, 0.02), w + rng.normal(0, 0.01)]
        ekf.update("odom", t, z_odom, np.diag([4e-4, 1e-4]))
        if k % 10 == 0:
            ekf.update("gnss", t, x[:2] + rng.normal(0, 0.02, 2), np.eye(2) * 4e-4)
    print("truth", x, "estimate", ekf.x[:3], "odom scale", ekf.x[IK])


if __name__ == "__main__":  # pragma: no cover
    _demo()
