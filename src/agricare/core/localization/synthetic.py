"""Seeded ground-truth trajectories and sensor streams for testing and benchmarking localisation.

Small and self-contained (the full simulator lives in ``core/sim``): a vehicle driving a lawnmower pattern
or along a planned path, wheel odometry with a scale error and noise, a gyro with bias, GNSS with noise,
a rate and outages, and a ray-cast 2-D lidar on an occupancy map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agricare.core.geometry import wrap_angle
from agricare.core.planning.grid import OccupancyMap


@dataclass
class Trajectory:
    """Ground truth sampled every ``dt_s``: arrays (N,) t, x, y, yaw, v, w."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    v: np.ndarray
    w: np.ndarray

    @property
    def dt_s(self) -> float:
        return float(self.t[1] - self.t[0])

    def pose(self, i) -> np.ndarray:
        return np.array([self.x[i], self.y[i], self.yaw[i]])

    def distance_m(self, i0=0, i1=None) -> float:
        i1 = len(self.t) if i1 is None else i1
        return float(np.sum(np.abs(self.v[i0:i1])) * self.dt_s)


def integrate(v, w, dt_s, pose0=(0.0, 0.0, 0.0)) -> Trajectory:
    """Integrate speed / yaw-rate commands (N,) exactly (piecewise constant arcs)."""
    v = np.asarray(v, dtype=float)
    w = np.asarray(w, dtype=float)
    n = len(v)
    x, y, th = np.zeros(n), np.zeros(n), np.zeros(n)
    x[0], y[0], th[0] = pose0
    for i in range(1, n):
        vi, wi = v[i - 1], w[i - 1]
        t0 = th[i - 1]
        if abs(wi) < 1e-9:
            x[i] = x[i - 1] + vi * dt_s * math.cos(t0)
            y[i] = y[i - 1] + vi * dt_s * math.sin(t0)
        else:
            t1 = t0 + wi * dt_s
            x[i] = x[i - 1] + vi / wi * (math.sin(t1) - math.sin(t0))
            y[i] = y[i - 1] - vi / wi * (math.cos(t1) - math.cos(t0))
        th[i] = th[i - 1] + wi * dt_s
    return Trajectory(np.arange(n) * dt_s, x, y, wrap_angle(th), v, w)


def lawnmower(speed_mps=3.0, row_length_m=100.0, row_spacing_m=12.0, rows=4, dt_s=0.01,
              pose0=(0.0, 0.0, 0.0), accel_time_s=2.0) -> Trajectory:
    """Straight rows joined by half-circle turns (radius ``row_spacing / 2``), alternating left/right."""
    radius = row_spacing_m / 2.0
    t_row = row_length_m / speed_mps
    t_turn = math.pi * radius / speed_mps
    segs = []
    for r in range(rows):
        segs.append((t_row, 0.0))
        if r < rows - 1:
            segs.append((t_turn, (1.0 if r % 2 == 0 else -1.0) * speed_mps / radius))
    v, w = [], []
    for dur, wi in segs:
        n = int(round(dur / dt_s))
        v += [speed_mps] * n
        w += [wi] * n
    v = np.asarray(v)
    ramp = int(accel_time_s / dt_s)
    if ramp > 0:
        v[:ramp] *= np.linspace(0.0, 1.0, ramp)
    w = np.asarray(w) * np.where(v > 0, v / speed_mps, 0.0)
    return integrate(v, w, dt_s, pose0)


def follow_path(path_xyyaw, speed_mps, dt_s=0.01) -> Trajectory:
    """Drive along a path (N, 3) at constant speed (yaw rate from the path heading)."""
    p = np.asarray(path_xyyaw, dtype=float)
    seg = np.hypot(*np.diff(p[:, :2], axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = int(s[-1] / (speed_mps * dt_s))
    st = np.arange(n) * speed_mps * dt_s
    yaw_u = np.unwrap(p[:, 2])
    yaw = np.interp(st, s, yaw_u)
    w = np.gradient(yaw, dt_s)
    return integrate(np.full(n, speed_mps), w, dt_s, (p[0, 0], p[0, 1], p[0, 2]))


def odometry(traj: Trajectory, rate_hz=50.0, scale_error=0.01, speed_std_mps=0.02, yaw_rate_std_radps=0.01,
             yaw_rate_bias_radps=0.002, seed=0):
    """Wheel odometry: ``(t (M,), v (M,), w (M,), pose_in_odom (M, 3))`` with drift."""
    rng = np.random.default_rng(seed)
    step = max(1, int(round(1.0 / (rate_hz * traj.dt_s))))
    idx = np.arange(0, len(traj.t), step)
    v = traj.v[idx] * (1.0 + scale_error) + rng.normal(0.0, speed_std_mps, len(idx))
    w = traj.w[idx] + yaw_rate_bias_radps + rng.normal(0.0, yaw_rate_std_radps, len(idx))
    dt = step * traj.dt_s
    od = integrate(v, w, dt)
    return traj.t[idx], v, w, np.column_stack([od.x, od.y, od.yaw])


def gyro(traj: Trajectory, rate_hz=100.0, bias_radps=0.005, std_radps=0.003, seed=1):
    """Gyro z: ``(t (M,), yaw_rate (M,))``."""
    rng = np.random.default_rng(seed)
    step = max(1, int(round(1.0 / (rate_hz * traj.dt_s))))
    idx = np.arange(0, len(traj.t), step)
    return traj.t[idx], traj.w[idx] + bias_radps + rng.normal(0.0, std_radps, len(idx))


def gnss(traj: Trajectory, std_m=0.02, rate_hz=5.0, outages=(), seed=2, bias_walk_m_per_sqrt_s=0.0):
    """GNSS positions: ``(t (M,), xy (M, 2))``; no fixes inside the ``(t0, t1)`` outages."""
    rng = np.random.default_rng(seed)
    step = max(1, int(round(1.0 / (rate_hz * traj.dt_s))))
    idx = np.arange(0, len(traj.t), step)
    t = traj.t[idx]
    keep = np.ones(len(idx), dtype=bool)
    for t0, t1 in outages:
        keep &= ~((t >= t0) & (t < t1))
    xy = np.column_stack([traj.x[idx], traj.y[idx]]) + rng.normal(0.0, std_m, (len(idx), 2))
    if bias_walk_m_per_sqrt_s > 0:
        xy += np.cumsum(rng.normal(0.0, bias_walk_m_per_sqrt_s * math.sqrt(step * traj.dt_s), (len(idx), 2)),
                        axis=0)
    return t[keep], xy[keep]


def simulate_scan(grid_map: OccupancyMap, pose_in_map, angles_rad, max_range_m=30.0, noise_std_m=0.0,
                  seed=None) -> np.ndarray:
    """Ray-cast ranges (B,) from a pose; ``inf`` where nothing is hit within ``max_range_m``."""
    x, y, th = (float(v) for v in pose_in_map)
    a = np.asarray(angles_rad, dtype=float) + th
    step = 0.5 * grid_map.resolution_m
    r = np.arange(step, max_range_m + step, step)
    px = x + np.cos(a)[:, None] * r[None, :]
    py = y + np.sin(a)[:, None] * r[None, :]
    col, row = grid_map.world_to_cell(np.column_stack([px.ravel(), py.ravel()]))
    inside = grid_map.in_bounds(col, row)
    hit = np.ones(len(col), dtype=bool)        # outside the map counts as a hit-free ray end
    hit[inside] = grid_map.occupied[row[inside], col[inside]]
    hit[~inside] = False
    hit = hit.reshape(len(a), len(r))
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    ranges = np.where(first >= 0, r[np.maximum(first, 0)] - 0.5 * step, np.inf)
    if noise_std_m > 0:
        rng = np.random.default_rng(seed)
        ranges = ranges + rng.normal(0.0, noise_std_m, len(ranges))
    return ranges
