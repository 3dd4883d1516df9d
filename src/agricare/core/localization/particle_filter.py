"""2-D Monte-Carlo localisation on an occupancy map (likelihood-field sensor model, AMCL-style).

- Motion: odometry model (rotation, translation, rotation with noises ``alpha1..alpha4``) applied to every
  particle with the change of the ``odom -> base_link`` pose.
- Sensor: likelihood field. A distance-to-nearest-obstacle field of the map (OpenCV distance transform,
  bilinear lookup) gives ``p(z) = z_hit * N(d; 0, sigma_hit) + z_rand / max_range`` per beam end point;
  beams are sub-sampled to ``max_beams`` and the summed log-likelihood is scaled by ``likelihood_gain``
  (beams are not independent).
- Resampling: low-variance (systematic) when the effective sample size drops below ``resample_ratio * N``;
  the particle count adapts by KLD (bins of ``kld_bin_xy_m`` x ``kld_bin_yaw_rad``) between
  ``min_particles`` and ``max_particles``.
- The estimate is the weighted mean; ``T_map_odom`` follows from it and the odometry pose.

Everything is vectorised numpy; the filter never reads a clock and takes a seed.
Run ``python -m agricare.core.localization.particle_filter`` for a demo in the town map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from agricare.core.geometry import se2_compose, se2_inverse, wrap_angle
from agricare.core.planning.grid import OccupancyMap


@dataclass(frozen=True)
class ParticleFilterParams:
    """Parameters of :class:`ParticleFilter` and ``map_localizer_node``."""

    map_frame: str = "map"
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    map_yaml: str = ""
    min_particles: int = 300
    max_particles: int = 3000
    kld_err: float = 0.05
    kld_z: float = 2.33
    kld_bin_xy_m: float = 0.5
    kld_bin_yaw_rad: float = 0.17
    alpha1: float = 0.05   # rotation noise from rotation
    alpha2: float = 0.02   # rotation noise from translation (rad per m)
    alpha3: float = 0.05   # translation noise from translation
    alpha4: float = 0.02   # translation noise from rotation (m per rad)
    sigma_hit_m: float = 0.15
    z_hit: float = 0.9
    z_rand: float = 0.1
    max_range_m: float = 30.0
    max_beams: int = 60
    likelihood_gain: float = 0.5
    laser_pose_in_base: tuple[float, ...] = (0.0, 0.0, 0.0)
    update_min_distance_m: float = 0.05
    update_min_angle_rad: float = 0.03
    resample_ratio: float = 0.5
    initial_std_xy_m: float = 1.0
    initial_std_yaw_rad: float = 0.35
    seed: int = 0
    transform_tolerance_s: float = 0.1
    match_distance_m: float = 0.3   # a beam end point this close to a mapped surface matches the map
    match_min_returns: int = 15     # fewer returns than this (open ground): the fit to the map is not judged

    def __post_init__(self):
        for name in ("map_frame", "odom_frame", "base_frame"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip() or v.startswith("/") or " " in v:
                raise ValueError(f"{name} must be a non-empty frame id without '/' or spaces, got {v!r}")
        if len({self.map_frame, self.odom_frame, self.base_frame}) != 3:
            raise ValueError("map_frame, odom_frame and base_frame must be three different frames")
        if not (isinstance(self.min_particles, int) and 10 <= self.min_particles <= self.max_particles):
            raise ValueError("min_particles must be an integer >= 10 and <= max_particles")
        if self.max_beams < 3:
            raise ValueError("max_beams must be >= 3")
        for name in ("kld_err", "kld_z", "kld_bin_xy_m", "kld_bin_yaw_rad", "sigma_hit_m", "max_range_m",
                     "likelihood_gain", "initial_std_xy_m", "initial_std_yaw_rad", "match_distance_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("alpha1", "alpha2", "alpha3", "alpha4", "z_hit", "z_rand", "update_min_distance_m",
                     "update_min_angle_rad", "transform_tolerance_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.z_hit + self.z_rand <= 0:
            raise ValueError("z_hit + z_rand must be > 0")
        if not 0 < self.resample_ratio <= 1:
            raise ValueError("resample_ratio must be in (0, 1]")
        lp = np.asarray(self.laser_pose_in_base, dtype=float)
        if lp.shape != (3,) or not (np.all(np.isfinite(lp)) or np.all(np.isnan(lp))):
            raise ValueError("laser_pose_in_base must be 3 finite numbers [x, y, yaw] (NaN: not known yet)")


class LikelihoodField:
    """Distance (m) from a point to the nearest obstacle surface, with bilinear lookup.

    The surface of an occupied cell is its edge, not its centre: the field is a signed distance
    (positive in free space, negative inside obstacles, half a cell from the cell centres) so the bilinear
    interpolation crosses zero on the surface; :meth:`distance` returns its absolute value. (A field of
    distances between cell centres reads half a cell at the surface and is flat inside walls, which pulls
    the estimate up to one cell towards one-sided features, e.g. a street with buildings on one side.)

    Parameters
    ----------
    grid_map : OccupancyMap
    max_distance_m : float
        Distances are clipped here (beyond a few sigma the likelihood is flat anyway).
    """

    def __init__(self, grid_map: OccupancyMap, max_distance_m: float = 2.0):
        self.grid = grid_map
        occ = grid_map.occupied
        res = grid_map.resolution_m
        half = 0.5 * res
        if occ.any() and not occ.all():
            out = cv2.distanceTransform((~occ).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * res
            inside = cv2.distanceTransform(occ.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * res
            d = np.where(occ, -(inside - half), out - half)
        elif occ.all():
            d = np.full(occ.shape, -max_distance_m, dtype=np.float32)
        else:
            d = np.full(occ.shape, max_distance_m, dtype=np.float32)
        self.max_distance_m = float(max_distance_m)
        self.dist_m = np.clip(d, -max_distance_m, max_distance_m).astype(np.float32)   # signed
        self._flat = self.dist_m.ravel()
        self._ox, self._oy = grid_map.origin_xy
        self._inv_res = 1.0 / res

    def distance(self, x, y) -> np.ndarray:
        """Distance (same shape as x) to the nearest obstacle surface; ``max_distance_m`` outside the map.

        The four corners are gathered from the flattened field by one index each (the same interpolation, in
        the same arithmetic, as :meth:`distance_reference`, which indexes row and column)."""
        fx = (np.asarray(x) - self._ox) * self._inv_res - 0.5
        fy = (np.asarray(y) - self._oy) * self._inv_res - 0.5
        h, w = self.dist_m.shape
        inside = (fx >= 0) & (fy >= 0) & (fx < w - 1) & (fy < h - 1)
        everywhere = bool(inside.all())   # the usual case: no point to move onto the map and back
        fxc = fx if everywhere else np.where(inside, fx, 0.0)
        fyc = fy if everywhere else np.where(inside, fy, 0.0)
        x0 = fxc.astype(np.int64)
        y0 = fyc.astype(np.int64)
        ax = (fxc - x0).astype(np.float32)
        ay = (fyc - y0).astype(np.float32)
        bx = 1 - ax
        by = 1 - ay
        i00 = y0 * w
        i00 += x0
        d = self._flat
        v = d.take(i00) * bx * by
        v += d.take(i00 + 1) * ax * by
        i00 += w
        v += d.take(i00) * bx * ay
        v += d.take(i00 + 1) * ax * ay
        np.abs(v, out=v)
        return v if everywhere else np.where(inside, v, self.max_distance_m)

    def distance_reference(self, x, y) -> np.ndarray:
        """:meth:`distance` written plainly (row/column indexing): the tests check the two agree."""
        fx = (np.asarray(x) - self._ox) * self._inv_res - 0.5
        fy = (np.asarray(y) - self._oy) * self._inv_res - 0.5
        h, w = self.dist_m.shape
        inside = (fx >= 0) & (fy >= 0) & (fx < w - 1) & (fy < h - 1)
        fxc = np.where(inside, fx, 0.0)
        fyc = np.where(inside, fy, 0.0)
        x0 = fxc.astype(np.int64)
        y0 = fyc.astype(np.int64)
        ax = (fxc - x0).astype(np.float32)
        ay = (fyc - y0).astype(np.float32)
        d = self.dist_m
        v = (d[y0, x0] * (1 - ax) * (1 - ay) + d[y0, x0 + 1] * ax * (1 - ay)
             + d[y0 + 1, x0] * (1 - ax) * ay + d[y0 + 1, x0 + 1] * ax * ay)
        return np.where(inside, np.abs(v), self.max_distance_m)


class ParticleFilter:
    """Monte-Carlo localisation.

    Parameters
    ----------
    grid_map : OccupancyMap
    params : ParticleFilterParams
    """

    def __init__(self, grid_map: OccupancyMap, params: ParticleFilterParams | None = None):
        self.p = params or ParticleFilterParams()
        self.grid = grid_map
        self.field = LikelihoodField(grid_map, max(4.0 * self.p.sigma_hit_m, 1.0))
        self._occupied_flat = np.ascontiguousarray(grid_map.occupied).ravel()
        self._beam_idx = {}               # scan length -> indices of the max_beams beams used
        self.rng = np.random.default_rng(self.p.seed)
        self.particles = np.zeros((0, 3))
        self.log_w = np.zeros(0)
        self._last_odom = None        # odom pose at the last motion update
        self._odom_since_update = np.zeros(2)
        self.updates = 0
        self.last_match = float("nan")   # share of the last scan's end points on a mapped surface (0..1)
        self.last_returns = 0            # valid returns in the last scan (up to max_beams)
        self.last_through = float("nan")  # share of the last scan's beams that passed through a mapped wall
        self.last_correction_xy = np.zeros(2)   # how far the last scan moved the estimate off the odometry (m, map)
        self.resamples = 0
        self._est = None                 # (particles, log_w, mean, cov) of the last estimate()

    @property
    def initialized(self) -> bool:
        return len(self.particles) > 0

    # ------------------------------------------------------------------ init
    def initialize(self, pose_in_map, cov_xyyaw=None, n: int | None = None):
        """Draw particles around a pose.

        Parameters
        ----------
        pose_in_map : array_like (3,)
        cov_xyyaw : array_like (3, 3), optional
            Covariance of x, y, yaw; unknown / non-positive -> ``initial_std_*`` parameters.
        """
        pose = np.asarray(pose_in_map, dtype=float).reshape(3)
        if not np.all(np.isfinite(pose)):
            raise ValueError("initial pose must be finite")
        cov = None if cov_xyyaw is None else np.asarray(cov_xyyaw, dtype=float).reshape(3, 3)
        if cov is None or not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
            cov = np.diag([self.p.initial_std_xy_m ** 2, self.p.initial_std_xy_m ** 2,
                           self.p.initial_std_yaw_rad ** 2])
        cov = 0.5 * (cov + cov.T)
        try:
            L = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            L = np.diag(np.sqrt(np.abs(np.diag(cov))))
        n = n or self.p.max_particles
        parts = pose + self.rng.standard_normal((n, 3)) @ L.T
        parts[:, 2] = wrap_angle(parts[:, 2])
        self.particles = parts
        self.log_w = np.full(n, -math.log(n))
        self._est = None
        self._odom_since_update[:] = 0.0

    # ---------------------------------------------------------------- motion
    def motion_update(self, odom_pose):
        """Move the particles by the change of the odometry pose ``[x, y, yaw]`` (odom frame)."""
        odom_pose = np.asarray(odom_pose, dtype=float).reshape(3)
        if not np.all(np.isfinite(odom_pose)):
            raise ValueError("odometry pose must be finite")
        if self._last_odom is None or not self.initialized:
            self._last_odom = odom_pose
            return
        delta = se2_compose(se2_inverse(self._last_odom), odom_pose)   # motion in the old base frame
        self._last_odom = odom_pose
        trans = math.hypot(delta[0], delta[1])
        rot1 = math.atan2(delta[1], delta[0]) if trans > 1e-4 else 0.0
        if abs(wrap_angle(rot1)) > math.pi / 2:           # reversing: keep the rotations small
            rot1 = wrap_angle(rot1 + math.pi)
            trans = -trans
        rot2 = wrap_angle(delta[2] - rot1)
        a1, a2, a3, a4 = self.p.alpha1, self.p.alpha2, self.p.alpha3, self.p.alpha4
        n = len(self.particles)
        r1a, r2a = min(abs(rot1), abs(wrap_angle(rot1 - math.pi))), abs(rot2)
        sd_r1 = math.sqrt(a1 * r1a ** 2 + a2 * trans ** 2)
        sd_t = math.sqrt(a3 * trans ** 2 + a4 * (r1a ** 2 + r2a ** 2))
        sd_r2 = math.sqrt(a1 * r2a ** 2 + a2 * trans ** 2)
        noise = self.rng.standard_normal((3, n))   # the same numbers as three draws of n, in one call
        h_r1 = rot1 + sd_r1 * noise[0]
        h_t = trans + sd_t * noise[1]
        h_r2 = rot2 + sd_r2 * noise[2]
        th = self.particles[:, 2] + h_r1
        self.particles[:, 0] += h_t * np.cos(th)
        self.particles[:, 1] += h_t * np.sin(th)
        self.particles[:, 2] = wrap_angle(th + h_r2)
        self._est = None
        self._odom_since_update += (abs(trans), abs(delta[2]))

    # ---------------------------------------------------------------- sensor
    def sensor_update(self, ranges_m, angles_rad, force: bool = False) -> bool:
        """Weight the particles with one scan.

        Parameters
        ----------
        ranges_m, angles_rad : array_like (B,)
            Ranges and beam angles in the laser frame; non-finite or out-of-range beams are skipped.
        force : bool
            Update even if the robot has not moved ``update_min_*`` since the last update.

        Returns
        -------
        bool
            True when the update ran.
        """
        if not self.initialized or np.isnan(self.p.laser_pose_in_base[0]):
            return False
        moved_d, moved_a = self._odom_since_update
        if not force and self.updates > 0 and moved_d < self.p.update_min_distance_m \
                and moved_a < self.p.update_min_angle_rad:
            return False
        r = np.asarray(ranges_m, dtype=float).ravel()
        a = np.asarray(angles_rad, dtype=float).ravel()
        if r.shape != a.shape:
            raise ValueError("ranges and angles must have the same length")
        ok = np.isfinite(r) & np.isfinite(a) & (r > 0.05) & (r < self.p.max_range_m)
        if np.count_nonzero(ok) < 3:
            self.last_returns, self.last_match = int(np.count_nonzero(ok)), float("nan")
            return False
        r, a = r[ok], a[ok]
        predicted, _ = self.estimate()   # the odometry's prediction: where the scan moves the estimate from
        if len(r) > self.p.max_beams:
            idx = self._beam_idx.get((len(r), self.p.max_beams))
            if idx is None:
                idx = self._beam_idx[(len(r), self.p.max_beams)] = \
                    np.linspace(0, len(r) - 1, self.p.max_beams).round().astype(int)
            r, a = r[idx], a[idx]
        lx, ly, lyaw = (float(v) for v in self.p.laser_pose_in_base)
        bx = lx + r * np.cos(lyaw + a)   # end points in base_link (B,)
        by = ly + r * np.sin(lyaw + a)
        P = self.particles
        c, s = np.cos(P[:, 2])[:, None], np.sin(P[:, 2])[:, None]
        ex = P[:, 0:1] + c * bx[None, :] - s * by[None, :]
        ey = P[:, 1:2] + s * bx[None, :] + c * by[None, :]
        d = self.field.distance(ex, ey)
        sig2 = 2.0 * self.p.sigma_hit_m ** 2
        pz = self.p.z_hit * np.exp(-(d * d) / sig2) + self.p.z_rand / self.p.max_range_m
        ll = np.log(pz).sum(axis=1) * self.p.likelihood_gain
        self.log_w = self.log_w + ll
        self.log_w -= _logsumexp(self.log_w)
        self._est = None
        self._odom_since_update[:] = 0.0
        self.updates += 1
        # how well the scan fits the map at the estimate: the share of end points on a mapped surface
        est, _ = self.estimate()
        self.last_correction_xy = est[:2] - predicted[:2]
        c0, s0 = math.cos(est[2]), math.sin(est[2])
        d_est = self.field.distance(est[0] + c0 * bx - s0 * by, est[1] + s0 * bx + c0 * by)
        self.last_returns = int(len(d_est))
        enough = len(d_est) >= self.p.match_min_returns
        self.last_match = float(np.mean(d_est <= self.p.match_distance_m)) if enough else float("nan")
        self.last_through = self.through_fraction(est, r, a) if enough else float("nan")
        if self.effective_sample_size() < self.p.resample_ratio * len(self.particles):
            self.resample()
        return True

    def _rays(self, pose, ranges_m, angles_rad):
        """The beams :meth:`through_fraction` walks from ``pose``: ranges (B,), the laser's origin in the map, the
        beams' headings (B,), where each beam's check stops (B,: short of its end point by ``match_distance_m``
        and a cell) and the sample distances along a beam (K,: half a cell apart); ``None`` for no beams."""
        g = self.grid
        r = np.asarray(ranges_m, dtype=float)
        if not len(r):
            return None
        lx, ly, lyaw = (float(v) for v in self.p.laser_pose_in_base)
        c, s = math.cos(pose[2]), math.sin(pose[2])
        ox, oy = pose[0] + c * lx - s * ly, pose[1] + s * lx + c * ly
        th = pose[2] + lyaw + np.asarray(angles_rad, dtype=float)
        step = 0.5 * g.resolution_m
        stop = r - self.p.match_distance_m - g.resolution_m
        k = np.arange(int(math.ceil(max(float(stop.max()), 0.0) / step)) + 1) * step
        return r, ox, oy, th, stop, k

    def through_fraction(self, pose, ranges_m, angles_rad) -> float:
        """Share of beams that pass through a mapped obstacle before their end point, seen from ``pose``.

        People, vehicles and anything else not on the map only shorten a beam; a beam that reaches past a mapped
        wall means the map or the pose is wrong. End points within ``match_distance_m`` (plus a cell) of the
        surface they hit are not counted.
        """
        g = self.grid
        rays = self._rays(pose, ranges_m, angles_rad)
        if rays is None:
            return float("nan")
        r, ox, oy, th, stop, k = rays
        # only the samples before each beam's stop (k < stop), beam after beam: short beams cost no more samples
        # than they have (the (B, K) grid of through_fraction_reference holds the longest beam's K for every beam)
        counts = np.searchsorted(k, stop, side="left")                 # (B,) how many k < stop
        total = int(counts.sum())
        if total == 0:
            return 0.0
        beam = np.repeat(np.arange(len(r)), counts)                    # (S,) beam of each sample
        j = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)   # (S,) its index along the beam
        kk = k[j]
        px = ox + np.cos(th)[beam] * kk
        py = oy + np.sin(th)[beam] * kk
        col = np.floor((px - g.origin_xy[0]) / g.resolution_m).astype(np.int64)
        row = np.floor((py - g.origin_xy[1]) / g.resolution_m).astype(np.int64)
        h, w = g.occupied.shape
        ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        cell = row * w
        cell += col
        hit = self._occupied_flat.take(np.where(ok, cell, 0))   # one flat gather, masked after
        hit &= ok
        return float(np.count_nonzero(np.bincount(beam[hit], minlength=len(r)))) / len(r)

    def through_fraction_reference(self, pose, ranges_m, angles_rad) -> float:
        """:meth:`through_fraction` on the full (beams x samples) grid, for the tests."""
        g = self.grid
        rays = self._rays(pose, ranges_m, angles_rad)
        if rays is None:
            return float("nan")
        r, ox, oy, th, stop, k = rays
        inside = k[None, :] < stop[:, None]
        px = ox + np.cos(th)[:, None] * k[None, :]
        py = oy + np.sin(th)[:, None] * k[None, :]
        col = np.floor((px - g.origin_xy[0]) / g.resolution_m).astype(np.int64)
        row = np.floor((py - g.origin_xy[1]) / g.resolution_m).astype(np.int64)
        h, w = g.occupied.shape
        ok = inside & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        hit = np.zeros(ok.shape, dtype=bool)
        hit[ok] = g.occupied[row[ok], col[ok]]
        return float(np.mean(hit.any(axis=1)))

    def effective_sample_size(self) -> float:
        w = np.exp(self.log_w)
        return float(1.0 / np.sum(w * w))

    def resample(self):
        """Low-variance resampling to a KLD-bounded particle count."""
        n_target = self._kld_count()
        w = np.exp(self.log_w)
        w /= w.sum()
        positions = (self.rng.random() + np.arange(n_target)) / n_target
        idx = np.searchsorted(np.cumsum(w), positions, side="right")
        idx = np.minimum(idx, len(w) - 1)
        self.particles = self.particles[idx].copy()
        self.log_w = np.full(n_target, -math.log(n_target))
        self._est = None
        self.resamples += 1

    def _kld_count(self) -> int:
        w = np.exp(self.log_w)
        sig = w > (1e-3 / len(w))
        P = self.particles[sig]
        bins = np.column_stack([np.floor(P[:, 0] / self.p.kld_bin_xy_m), np.floor(P[:, 1] / self.p.kld_bin_xy_m),
                                np.floor((P[:, 2] + math.pi) / self.p.kld_bin_yaw_rad)])
        k = len(np.unique(bins, axis=0)) if len(bins) else 1
        if k <= 1:
            return self.p.min_particles
        a = 2.0 / (9.0 * (k - 1))
        n = (k - 1) / (2.0 * self.p.kld_err) * (1.0 - a + math.sqrt(a) * self.p.kld_z) ** 3
        return int(np.clip(math.ceil(n), self.p.min_particles, self.p.max_particles))

    # -------------------------------------------------------------- estimate
    def estimate(self):
        """Weighted mean pose (3,) and covariance (3, 3) of the particles.

        Kept until the particles or their weights change (the node asks several times per scan); callers get
        copies. A new ``particles`` or ``log_w`` array is noticed by identity; code that changes them in place must
        set ``_est = None``."""
        if self._est is None or self._est[0] is not self.particles or self._est[1] is not self.log_w:
            mean, cov = self._estimate()
            self._est = (self.particles, self.log_w, mean, cov)
        return self._est[2].copy(), self._est[3].copy()

    def _estimate(self):
        w = np.exp(self.log_w)
        w /= w.sum()
        P = self.particles
        mx, my = float(w @ P[:, 0]), float(w @ P[:, 1])
        myaw = math.atan2(float(w @ np.sin(P[:, 2])), float(w @ np.cos(P[:, 2])))
        d = np.column_stack([P[:, 0] - mx, P[:, 1] - my, wrap_angle(P[:, 2] - myaw)])
        cov = (d * w[:, None]).T @ d
        return np.array([mx, my, myaw]), cov

    def converged(self, max_std_xy_m: float = 0.25, max_std_yaw_rad: float = 0.1) -> bool:
        if not self.initialized:
            return False
        _, cov = self.estimate()
        return bool(math.sqrt(max(cov[0, 0], cov[1, 1])) < max_std_xy_m and math.sqrt(cov[2, 2]) < max_std_yaw_rad)

    def map_to_odom(self, odom_pose=None) -> np.ndarray:
        """``T_map_odom`` (3,) from the estimate and the odometry pose at the same instant."""
        odom = self._last_odom if odom_pose is None else np.asarray(odom_pose, dtype=float)
        est, _ = self.estimate()
        return se2_compose(est, se2_inverse(odom))


def _logsumexp(v):
    m = float(np.max(v))
    return m + math.log(float(np.sum(np.exp(v - m))))


def _demo():  # pragma: no cover
    import pathlib
    import time

    from agricare.core.localization.synthetic import simulate_scan
    from agricare.core.planning.grid import load_map

    root = pathlib.Path(__file__).resolve().parents[4]
    m = load_map(root / "config" / "maps" / "town.yaml")
    pf = ParticleFilter(m, ParticleFilterParams())
    truth = np.array([60.0, 100.0, 0.0])
    pf.initialize(truth + [1.5, -1.3, 0.35])
    pf.motion_update(np.zeros(3))
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    odom = np.zeros(3)
    for k in range(50):
        truth = se2_compose(truth, [0.3, 0.0, 0.0])
        odom = se2_compose(odom, [0.3, 0.0, 0.0])
        pf.motion_update(odom)
        t0 = time.perf_counter()
        pf.sensor_update(simulate_scan(m, truth, angles, 30.0, 0.02, seed=k), angles)
        dt = time.perf_counter() - t0
        est, _ = pf.estimate()
        print(f"{k:2d} err {np.hypot(*(est[:2] - truth[:2])):.3f} m n={len(pf.particles)} {dt * 1e3:.1f} ms")


if __name__ == "__main__":  # pragma: no cover
    _demo()
