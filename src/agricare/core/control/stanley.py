"""Stanley steering (front-axle reference) for Ackermann vehicles; usable on diff drive too.

Forward: the reference point is the front axle, ``wheelbase_m`` ahead of ``base_link`` (rear axle).
With ``psi`` the path heading minus the vehicle heading at the front axle's nearest path point and
``e`` the front axle's signed lateral offset (left of the travel direction positive):

    delta = psi + atan2(-k * e, k_soft + |v|),  kappa = tan(delta) / wheelbase

Rear-axle correction (``stanley_rear_axle_correction``, default on): on an arc of curvature ``k`` at
``base_link`` the front axle of a car whose rear axle follows the arc lies ``sqrt(1/k^2 + L^2) - 1/k``
outside it, so the law regulates ``e - e_ref`` with that offset; plain Stanley (off) makes the rear
axle cut every curve by about ``L^2 k / 2``.

Reversing: the vehicle is treated in its travel frame (heading + pi) with the leading rear axle as
the reference; the same law gives the curvature along the travel direction, which is a stable
curvature feedback (characteristic polynomial ``s^2 + (v/L) s + k v / L``).

Speed regulation uses the largest path curvature within one lookahead ahead; cusps, goal and
obstacle handling come from ``PathTracker``.
"""

from __future__ import annotations

import math

import numpy as np

from agricare.core.control.path_tracking import PathTracker, SteerResult, TrackerParams, heading_error

__all__ = ["Stanley", "TrackerParams"]


class Stanley(PathTracker):
    """Stanley controller. See ``PathTracker`` for parameters and ``compute``."""

    def _reset_progress(self) -> None:
        super()._reset_progress()
        self._ref_hint = 0
        self._ref_section = -1
        self.front_cross_track_m = 0.0

    def _steer(self, pose_travel, speed_mps, first, last, seg, t, direction) -> SteerResult:
        p = self.params
        path = self.path
        if self._ref_section != self.section:
            self._ref_section = self.section
            self._ref_hint = seg
        yaw = pose_travel[2]
        if direction > 0:
            ref = np.array([pose_travel[0] + p.wheelbase_m * math.cos(yaw),
                            pose_travel[1] + p.wheelbase_m * math.sin(yaw)])
        else:
            ref = np.array([pose_travel[0], pose_travel[1]])
        look = self.lookahead_m(speed_mps)
        rseg, rt, e = self._search(ref, first, last, self._ref_hint,
                                   p.search_window_m + p.max_lookahead_m + p.wheelbase_m)
        self._ref_hint = rseg
        self.front_cross_track_m = e
        psi = heading_error(path.travel_heading(rseg, first, last), yaw)
        e_ref = 0.0
        if direction > 0 and p.stanley_rear_axle_correction:
            # With the rear axle on an arc of curvature k, the front axle sits outside it by
            # sqrt(1/k^2 + L^2) - 1/k: aim the front there so base_link (not the front) stays on the path.
            k_rear = path.curvature[min(seg + 1, last)] if t > 0.5 else path.curvature[seg]
            if abs(k_rear) > 1e-6:
                r = 1.0 / abs(k_rear)
                e_ref = -math.copysign(math.sqrt(r * r + p.wheelbase_m ** 2) - r, k_rear)
        delta = psi + math.atan2(-p.stanley_gain_per_s * (e - e_ref), p.stanley_softening_mps + abs(speed_mps))
        delta = float(np.clip(delta, -p.max_steering_angle_rad, p.max_steering_angle_rad))
        kappa = math.tan(delta) / p.wheelbase_m
        seg_len = path.seg_len[seg] if seg < len(path) - 1 else 0.0
        s_proj = path.s[seg] + t * seg_len
        kappa_reg = path.max_abs_curvature(s_proj, s_proj + look, first, last)
        return SteerResult(kappa, kappa_reg, psi, min(rseg + 1, last), look)
