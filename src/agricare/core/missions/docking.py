"""Docking on a boarding point with its ArUco sign: the marker fused with the pose estimate.

A sign's marker stands at a surveyed map pose (:class:`~agricare.core.perception.markers.BoardingSigns`).
The camera measures the marker's position in its optical frame; through the camera's mount on base_link (the
URDF) and the estimate's heading this gives a position fix of base_link in the map. (The marker's own
orientation from one small square is the weak part of a PnP pose, and a few milliradians of it move the base
by centimetres at 3-4 m; the heading of the estimate is better, so only the marker's position is used.)
The fix and the estimate are averaged with inverse-variance weights; a fix more than ``gate_m`` from the
estimate is refused (a misread or a mirrored pose), and the fix's variance grows with the distance.

Without a fresh fix the docking runs on the estimate alone and says so (:attr:`MarkerDocking.source`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agricare.core.perception.markers import BoardingSigns


@dataclass(frozen=True)
class MarkerDockingParams:
    """How far a marker fix is trusted."""

    max_distance_m: float = 8.0     # markers farther than this are not used (pose error grows with range)
    std_at_1m_m: float = 0.01       # position std of a fix: std_at_1m_m + std_per_m2 * distance^2
    std_per_m2: float = 0.002
    gate_m: float = 0.5             # a fix this far from the estimate is refused
    timeout_s: float = 1.0          # a fix older than this is not used ...
    still_m: float = 0.02           # ... unless the estimate moved less than this since (the shuttle stood still)

    def __post_init__(self):
        for name in ("max_distance_m", "std_at_1m_m", "gate_m", "timeout_s", "still_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if not (math.isfinite(self.std_per_m2) and self.std_per_m2 >= 0):
            raise ValueError(f"std_per_m2 must be >= 0, got {self.std_per_m2!r}")


class MarkerDocking:
    """Marker fixes of the base position and their fusion with the estimate.

    Parameters
    ----------
    signs : BoardingSigns
        Where the markers stand (by boarding pose).
    params : MarkerDockingParams
    """

    def __init__(self, signs: BoardingSigns, params: MarkerDockingParams | None = None):
        self.signs = signs
        self.p = params or MarkerDockingParams()
        self.fix = None          # (t_s, marker_id, xy (2,), std_m, estimate (3,) when it was taken)
        self.refused = 0
        self.used = 0

    def on_detection(self, t_s: float, marker_id: int, p_opt_marker, T_base_opt, boarding_xyyaw,
                     estimate_xyyaw) -> bool:
        """Take one detection of the goal's marker. Returns True when it gave a fix.

        ``p_opt_marker`` (3,): marker centre in the optical frame; ``T_base_opt`` ``(t (3,), R (3, 3))``: the
        optical frame on base_link; ``boarding_xyyaw``: the boarding pose whose sign this is.
        """
        p = np.asarray(p_opt_marker, dtype=float).reshape(3)
        d = float(np.linalg.norm(p))
        if not (np.all(np.isfinite(p)) and 0.3 < d <= self.p.max_distance_m):
            return False
        t_map_marker, _ = self.signs.marker_pose_in_map(boarding_xyyaw)
        t, R = T_base_opt
        p_base = np.asarray(t, float) + np.asarray(R, float) @ p
        yaw = float(estimate_xyyaw[2])
        c, s = math.cos(yaw), math.sin(yaw)
        xy = t_map_marker[:2] - np.array([c * p_base[0] - s * p_base[1], s * p_base[0] + c * p_base[1]])
        if math.hypot(*(xy - np.asarray(estimate_xyyaw[:2], float))) > self.p.gate_m:
            self.refused += 1
            return False
        std = self.p.std_at_1m_m + self.p.std_per_m2 * d * d
        self.fix = (float(t_s), int(marker_id), xy, std, np.asarray(estimate_xyyaw, dtype=float).copy())
        self.used += 1
        return True

    def fused(self, t_s: float, marker_id: int, estimate_xyyaw, estimate_std_m: float):
        """``(pose (3,), source)``: the estimate with the latest fresh fix of ``marker_id`` averaged in, and
        ``"marker"``; or the estimate and ``"estimate"`` when there is none. A fix older than ``timeout_s`` still
        counts while the estimate has moved less than ``still_m`` (and its heading less than 0.01 rad) since it was
        taken: the shuttle stood still (the camera need not keep sending frames of a parked shuttle)."""
        est = np.asarray(estimate_xyyaw, dtype=float).copy()
        f = self.fix
        if f is None or f[1] != int(marker_id):
            return est, "estimate"
        if t_s - f[0] > self.p.timeout_s:
            moved = math.hypot(*(est[:2] - f[4][:2]))
            turned = abs((est[2] - f[4][2] + math.pi) % (2.0 * math.pi) - math.pi)
            if moved > self.p.still_m or turned > 0.01:
                return est, "estimate"
        w_fix = 1.0 / f[3] ** 2
        w_est = 1.0 / max(float(estimate_std_m), 1e-3) ** 2
        est[:2] = (w_fix * f[2] + w_est * est[:2]) / (w_fix + w_est)
        return est, "marker"
