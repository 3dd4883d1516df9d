"""2-D lidar obstacles: REP-117 scan cleaning, adaptive-breakpoint clustering, constant-velocity
Kalman tracking with gating and track birth/death, people-sized flag.

Scan handling (REP-117): ``NaN`` = no valid measurement, ``+inf`` = no return within ``range_max``,
``-inf`` = object closer than ``range_min``; finite values outside ``[range_min, range_max]`` are
invalid too. Only finite in-range returns become points; more than ``max_skipped_beams`` consecutive
invalid beams break a cluster (a single dropout inside an object does not).

Clustering: consecutive beams i-1, i belong together when their distance is below the adaptive
breakpoint threshold ``D = r_{i-1} sin(dphi) / sin(lambda - dphi) + 3 sigma_r`` (Borges & Aldon 2004):
the largest gap a surface inclined at ``lambda`` to the beam can produce, plus range noise.

Tracking: each confirmed object is a constant-velocity Kalman filter ``[x, y, vx, vy]`` driven by white
acceleration noise; detections associate to tracks greedily by Mahalanobis distance inside a chi-square
gate; unassociated detections start tentative tracks, confirmed after ``confirm_hits`` updates; tracks
not updated for ``max_coast_s`` (tentative: ``tentative_coast_s``) are deleted.

Run ``python -m agricare.core.perception.obstacles`` for a small demo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterParams:
    """Adaptive breakpoint clustering parameters."""

    lambda_rad: float = math.radians(10.0)
    sigma_range_m: float = 0.02
    min_points: int = 2
    max_cluster_width_m: float = 3.0
    max_skipped_beams: int = 1

    def __post_init__(self):
        if int(self.max_skipped_beams) < 0:
            raise ValueError(f"max_skipped_beams must be >= 0, got {self.max_skipped_beams}")
        if not 0.0 < self.lambda_rad < math.pi / 2:
            raise ValueError(f"lambda_rad must be in (0, pi/2), got {self.lambda_rad}")
        if not (math.isfinite(self.sigma_range_m) and self.sigma_range_m >= 0):
            raise ValueError(f"sigma_range_m must be >= 0, got {self.sigma_range_m}")
        if int(self.min_points) < 1:
            raise ValueError(f"min_points must be >= 1, got {self.min_points}")
        if not self.max_cluster_width_m > 0:
            raise ValueError(f"max_cluster_width_m must be > 0, got {self.max_cluster_width_m}")


@dataclass
class Cluster:
    """A group of scan points: ``points`` (N, 2) m in the scan frame, centroid (2,), radius m."""

    points: np.ndarray
    centroid: np.ndarray
    radius_m: float
    width_m: float


def valid_scan_points(ranges, angle_min_rad: float, angle_increment_rad: float, range_min_m: float,
                      range_max_m: float):
    """REP-117 cleaning.

    Returns
    -------
    points : np.ndarray (N, 2)
        Valid returns in the scan frame, beam order.
    index : np.ndarray (N,) int
        Beam index of each point.
    """
    r = np.asarray(ranges, dtype=float).ravel()
    if not (math.isfinite(angle_min_rad) and math.isfinite(angle_increment_rad)):
        raise ValueError("scan angle_min/angle_increment must be finite")
    ok = np.isfinite(r) & (r >= range_min_m) & (r <= range_max_m)
    idx = np.flatnonzero(ok)
    a = angle_min_rad + idx * angle_increment_rad
    pts = np.column_stack([r[idx] * np.cos(a), r[idx] * np.sin(a)])
    return pts, idx


def cluster_scan(ranges, angle_min_rad: float, angle_increment_rad: float, range_min_m: float,
                 range_max_m: float, params: ClusterParams | None = None) -> list[Cluster]:
    """Split a LaserScan into clusters with the adaptive breakpoint detector (see module doc)."""
    p = params or ClusterParams()
    pts, idx = valid_scan_points(ranges, angle_min_rad, angle_increment_rad, range_min_m, range_max_m)
    if len(pts) == 0:
        return []
    r = np.hypot(pts[:, 0], pts[:, 1])
    dphi = abs(angle_increment_rad) * np.maximum(np.diff(idx), 1)
    gap = np.hypot(*np.diff(pts, axis=0).T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dmax = r[:-1] * np.sin(dphi) / np.sin(p.lambda_rad - np.minimum(dphi, p.lambda_rad * 0.99)) \
            + 3.0 * p.sigma_range_m
    # more than max_skipped_beams invalid beams in between also break (a single dropout does not)
    brk = (gap > dmax) | (np.diff(idx) > 1 + int(p.max_skipped_beams))
    starts = np.concatenate([[0], np.flatnonzero(brk) + 1])
    ends = np.concatenate([np.flatnonzero(brk) + 1, [len(pts)]])
    segments = [pts[s:e] for s, e in zip(starts, ends)]
    # a full 360-degree scan wraps around: the last beam neighbours the first
    n_beams = len(np.asarray(ranges).ravel())
    full_circle = n_beams * abs(angle_increment_rad) >= 2 * math.pi - 1.5 * abs(angle_increment_rad)
    if full_circle and len(segments) > 1 and idx[0] == 0 and idx[-1] == n_beams - 1:
        d_wrap = float(np.hypot(*(pts[0] - pts[-1])))
        lim = r[-1] * math.sin(abs(angle_increment_rad)) / math.sin(p.lambda_rad - abs(angle_increment_rad)) \
            + 3.0 * p.sigma_range_m
        if d_wrap <= lim:
            segments[0] = np.vstack([segments.pop(), segments[0]])
    out = []
    for cp in segments:
        if len(cp) < p.min_points:
            continue
        if len(cp) > 1 and float(np.max(np.hypot(*(cp - cp[0]).T))) > p.max_cluster_width_m:
            continue  # some pair is already too far apart (width >= this): skip the all-pairs width (walls)
        c = cp.mean(axis=0)
        width = float(np.max(np.hypot(*(cp[None, :, :] - cp[:, None, :]).reshape(-1, 2).T))) if len(cp) > 1 else 0.0
        if width > p.max_cluster_width_m:
            continue  # walls and long structures are not objects to track
        rad = max(float(np.max(np.hypot(*(cp - c).T))), 0.5 * width)
        out.append(Cluster(cp, c, rad, width))
    return out


@dataclass(frozen=True)
class TrackerParams:
    """Multi-object tracker parameters (SI units)."""

    accel_noise_mps2: float = 1.5
    meas_noise_m: float = 0.05
    gate_chi2: float = 9.21  # 99 % for 2 degrees of freedom
    confirm_hits: int = 3
    max_coast_s: float = 1.0
    tentative_coast_s: float = 0.3
    init_speed_std_mps: float = 1.5
    person_min_width_m: float = 0.1
    person_max_width_m: float = 0.8
    max_tracks: int = 200

    def __post_init__(self):
        for name in ("accel_noise_mps2", "meas_noise_m", "gate_chi2", "max_coast_s", "tentative_coast_s",
                     "init_speed_std_mps", "person_max_width_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v}")
        if not 0 <= self.person_min_width_m < self.person_max_width_m:
            raise ValueError("person_min_width_m must be >= 0 and < person_max_width_m")
        if int(self.confirm_hits) < 1 or int(self.max_tracks) < 1:
            raise ValueError("confirm_hits and max_tracks must be >= 1")


@dataclass
class Track:
    """One tracked object; ``x`` = ``[x_m, y_m, vx_mps, vy_mps]`` in the tracking frame."""

    id: int
    x: np.ndarray
    P: np.ndarray
    t_update_s: float
    t_start_s: float
    hits: int
    radius_m: float
    width_m: float
    confirmed: bool = False
    is_person: bool = False

    @property
    def position(self) -> np.ndarray:
        return self.x[:2].copy()

    @property
    def velocity(self) -> np.ndarray:
        return self.x[2:].copy()

    def confidence(self, t_s: float, max_coast_s: float) -> float:
        """In [0, 1]: grows with the number of hits, decays while coasting."""
        c = min(1.0, self.hits / 5.0)
        return float(c * max(0.0, 1.0 - max(0.0, t_s - self.t_update_s) / max_coast_s))


class MultiObjectTracker:
    """Constant-velocity Kalman tracks with gating, greedy association, birth and death."""

    def __init__(self, params: TrackerParams | None = None):
        self.p = params or TrackerParams()
        self.tracks: list[Track] = []
        self._next_id = 1
        self._t = None

    def _transition(self, dt: float):
        """Constant-velocity F and process noise Q over ``dt`` (the same for every track of one update)."""
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        q = self.p.accel_noise_mps2 ** 2
        G = np.array([[0.5 * dt * dt, 0], [0, 0.5 * dt * dt], [dt, 0], [0, dt]])
        return F, q * G @ G.T

    def _predict(self, tr: Track, dt: float, FQ=None):
        if dt <= 0:
            return
        F, Q = FQ if FQ is not None else self._transition(dt)
        tr.x = F @ tr.x
        tr.P = F @ tr.P @ F.T + Q

    def update(self, t_s: float, detections, widths_m=None) -> list[Track]:
        """Predict all tracks to ``t_s``, associate ``detections`` (M, 2) and update.

        ``widths_m`` (M,) are the cluster widths (for the person flag). Returns the confirmed tracks.
        """
        p = self.p
        Z = np.asarray(detections, dtype=float).reshape(-1, 2)
        W = np.zeros(len(Z)) if widths_m is None else np.asarray(widths_m, dtype=float).ravel()
        keep = np.all(np.isfinite(Z), axis=1)
        Z, W = Z[keep], W[keep]
        if self._t is not None and t_s < self._t:
            # time jumped back (e.g. simulator reset): start over
            self.tracks = []
        dt = 0.0 if self._t is None else max(0.0, t_s - self._t)
        self._t = t_s
        FQ = self._transition(dt) if dt > 0 and self.tracks else None
        for tr in self.tracks:
            self._predict(tr, dt, FQ)
        R = np.eye(2) * p.meas_noise_m ** 2
        H = np.zeros((2, 4))
        H[0, 0] = H[1, 1] = 1.0
        pairs = []
        S_inv = []     # per track: the same inverse serves its gate and its update (P changes only after)
        for ti, tr in enumerate(self.tracks):
            S = tr.P[:2, :2] + R
            Si = np.linalg.inv(S)
            S_inv.append(Si)
            dz = Z - tr.x[:2]
            d2 = np.einsum("ni,ij,nj->n", dz, Si, dz)
            for zi in np.flatnonzero(d2 < p.gate_chi2):
                pairs.append((float(d2[zi]), ti, int(zi)))
        pairs.sort()
        used_t, used_z = set(), set()
        for _d2, ti, zi in pairs:
            if ti in used_t or zi in used_z:
                continue
            used_t.add(ti)
            used_z.add(zi)
            tr = self.tracks[ti]
            K = tr.P @ H.T @ S_inv[ti]
            tr.x = tr.x + K @ (Z[zi] - tr.x[:2])
            tr.P = (np.eye(4) - K @ H) @ tr.P
            tr.hits += 1
            tr.t_update_s = t_s
            tr.width_m = 0.7 * tr.width_m + 0.3 * float(W[zi])
            tr.radius_m = max(0.5 * tr.width_m, 0.05)
            if tr.hits >= p.confirm_hits:
                tr.confirmed = True
            tr.is_person = p.person_min_width_m <= tr.width_m <= p.person_max_width_m
        # death
        self.tracks = [tr for tr in self.tracks
                       if t_s - tr.t_update_s <= (p.max_coast_s if tr.confirmed else p.tentative_coast_s)]
        # birth
        for zi in range(len(Z)):
            if zi in used_z or len(self.tracks) >= p.max_tracks:
                continue
            P0 = np.diag([p.meas_noise_m ** 2, p.meas_noise_m ** 2, p.init_speed_std_mps ** 2,
                          p.init_speed_std_mps ** 2])
            w = float(W[zi])
            tr = Track(self._next_id, np.array([Z[zi, 0], Z[zi, 1], 0.0, 0.0]), P0, t_s, t_s, 1,
                       max(0.5 * w, 0.05), w, confirmed=p.confirm_hits <= 1)
            tr.is_person = p.person_min_width_m <= w <= p.person_max_width_m
            self._next_id += 1
            self.tracks.append(tr)
        return self.confirmed()

    def confirmed(self) -> list[Track]:
        return [tr for tr in self.tracks if tr.confirmed]


def transform_points(points, T_a_b) -> np.ndarray:
    """Points (N, 2) from frame b into frame a, ``T_a_b = [x, y, yaw]``."""
    from agricare.core.geometry import se2_transform_points

    return se2_transform_points(T_a_b, points)


if __name__ == "__main__":  # pragma: no cover - demo
    n = 360
    ang = np.linspace(-math.pi, math.pi, n, endpoint=False)
    trk = MultiObjectTracker()
    for k in range(20):
        t = 0.1 * k
        person = np.array([2.0 + 0.8 * t, 1.0])
        rr = np.full(n, np.inf)
        d = np.hypot(*person)
        a0 = math.atan2(person[1], person[0])
        sel = np.abs(ang - a0) < 0.2 / d
        rr[sel] = d - 0.1
        cl = cluster_scan(rr, -math.pi, 2 * math.pi / n, 0.1, 30.0)
        tracks = trk.update(t, [c.centroid for c in cl], [c.width_m for c in cl])
    for tr in tracks:
        print(tr.id, np.round(tr.x, 2), "person" if tr.is_person else "")
