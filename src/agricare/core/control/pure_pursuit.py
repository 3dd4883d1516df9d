"""Regulated pure pursuit (Nav2-style regulation) for diff-drive and Ackermann robots.

The target is the path point one lookahead ahead (by arc length) of the robot's projection on the
current constant-direction section, extended straight past the section end. The commanded
curvature is the arc through the target tangent to the robot heading: ``kappa = 2 y / d^2`` with the
target at ``(x, y)`` in the robot's travel frame (flipped when reversing) and ``d`` its distance.
Lookahead scales with the measured speed (``lookahead_time_s``, clamped to min/max). Speed
regulation, cusps, rotate-to-heading and the goal check live in ``PathTracker``.

Run ``python -m agricare.core.control.pure_pursuit`` for a closed-loop demo.

Example
-------
>>> tracker = RegulatedPurePursuit(TrackerParams(), DiffDrive())
>>> tracker.set_plan(poses_xyyaw)                 # (N, 3), optional directions (N,) of +1/-1
>>> out = tracker.compute(pose_xyyaw, speed_mps, t_s, obstacle_distance_m)
>>> out.v_mps, out.w_radps, out.cross_track_m, out.target_index, out.done
"""

from __future__ import annotations

import math

import numpy as np

from agricare.core.control.kinematics import DiffDrive
from agricare.core.control.path_tracking import PathTracker, SteerResult, TrackerParams

__all__ = ["RegulatedPurePursuit", "TrackerParams"]


class RegulatedPurePursuit(PathTracker):
    """Regulated pure pursuit. See ``PathTracker`` for parameters and ``compute``."""

    def _steer(self, pose_travel, speed_mps, first, last, seg, t, direction) -> SteerResult:
        path = self.path
        look = self.lookahead_m(speed_mps)
        seg_len = path.seg_len[seg] if seg < len(path) - 1 else 0.0
        s_proj = path.s[seg] + t * seg_len
        target, idx = path.point_at(s_proj + look, first, last)
        dx, dy = target[0] - pose_travel[0], target[1] - pose_travel[1]
        c, s = math.cos(pose_travel[2]), math.sin(pose_travel[2])
        x_l, y_l = c * dx + s * dy, -s * dx + c * dy
        d2 = x_l * x_l + y_l * y_l
        kappa = 2.0 * y_l / d2 if d2 > 1e-12 else 0.0
        return SteerResult(kappa, kappa, math.atan2(y_l, x_l), idx, look)


if __name__ == "__main__":  # pragma: no cover - demo
    from agricare.core.control.kinematics import integrate_twist

    theta = np.linspace(0.0, 1.5 * math.pi, 300)
    plan = np.column_stack([5.0 * np.sin(theta), 5.0 - 5.0 * np.cos(theta), theta])
    tracker = RegulatedPurePursuit(TrackerParams(), DiffDrive())
    tracker.set_plan(plan)
    pose, v, dt = np.array([0.0, -0.3, 0.0]), 0.0, 0.05
    for k in range(2000):
        out = tracker.compute(pose, v, k * dt)
        if out.done:
            break
        v = out.v_mps
        pose = integrate_twist(pose, out.v_mps, out.w_radps, dt)
    print(f"done={out.done} after {k * dt:.1f} s, goal error {out.distance_to_goal_m:.3f} m")
