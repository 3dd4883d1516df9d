"""Reference paths and a kinematic closed loop for the path trackers (tests, benchmark, demos).

Paths are built from driving primitives ``(length_m, curvature_per_m, direction)`` integrated exactly
(arcs), sampled every ``step_m``. The closed loop drives a ``DiffDrive`` or ``Ackermann`` model with
the tracker's command (steering rate limited for Ackermann), measuring per-cycle compute time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from agricare.core.control.kinematics import Ackermann, arc_step
from agricare.core.control.path_tracking import PathTracker


def build_path(primitives, start=(0.0, 0.0, 0.0), step_m: float = 0.1):
    """Sample a path from driving primitives.

    Parameters
    ----------
    primitives : iterable of (length_m, curvature_per_m, direction)
        ``direction`` +1 forward / -1 reverse; curvature is of the body (yaw change per metre driven
        forward), so a reversing arc with curvature > 0 turns the robot's tail to the right.
    start : ``[x_m, y_m, yaw_rad]``
    step_m : sampling distance.

    Returns
    -------
    (poses, directions) : arrays (N, 3) and (N,) int8.
    """
    x, y, yaw = (float(v) for v in start)
    poses = [(x, y, yaw)]
    dirs: list[int] = []
    for length, kappa, direction in primitives:
        n = max(1, int(math.ceil(length / step_m)))
        ds = direction * length / n
        dirs.append(int(direction))  # direction of the pose that starts this primitive
        for k in range(n):
            x, y, yaw = arc_step(x, y, yaw, ds, kappa * ds)
            poses.append((x, y, yaw))
            if k < n - 1:
                dirs.append(int(direction))
    dirs.append(dirs[-1] if dirs else 1)
    return np.array(poses), np.array(dirs, dtype=np.int8)


def scenario_paths(turn_radius_m: float = 3.0, step_m: float = 0.1) -> dict:
    """The standard scenarios: name -> (poses, directions, start_pose).

    straight (start 0.5 m off the line), circle (full loop, start = goal), S-curve, Dubins-like
    U-turn (straight, 180 deg arc, straight back) and a reversing cusp (forward, reverse arc, forward).
    """
    r = turn_radius_m
    out = {}
    p, d = build_path([(20.0, 0.0, 1)], step_m=step_m)
    out["straight"] = (p, d, np.array([0.0, 0.5, 0.0]))
    p, d = build_path([(2.0 * math.pi * (r + 2.0), 1.0 / (r + 2.0), 1)], step_m=step_m)
    out["circle"] = (p, d, p[0].copy())
    p, d = build_path([(5.0, 0.0, 1), (0.5 * math.pi * (r + 1.0), 1.0 / (r + 1.0), 1),
                       (0.5 * math.pi * (r + 1.0), -1.0 / (r + 1.0), 1), (5.0, 0.0, 1)], step_m=step_m)
    out["s_curve"] = (p, d, p[0].copy())
    p, d = build_path([(10.0, 0.0, 1), (math.pi * r, 1.0 / r, 1), (10.0, 0.0, 1)], step_m=step_m)
    out["dubins_turn"] = (p, d, p[0].copy())
    p, d = build_path([(8.0, 0.0, 1), (0.5 * math.pi * (r + 1.0), 1.0 / (r + 1.0), -1), (6.0, 0.0, 1)],
                      step_m=step_m)
    out["reversing_cusp"] = (p, d, p[0].copy())
    return out


@dataclass
class LoopResult:
    """Closed-loop figures."""

    done: bool
    time_s: float
    cross_track_rms_m: float
    cross_track_max_m: float
    goal_error_m: float
    goal_yaw_error_rad: float
    states: set = field(default_factory=set)
    compute_time_mean_s: float = 0.0
    compute_time_max_s: float = 0.0
    trajectory: np.ndarray | None = None


def run_closed_loop(tracker: PathTracker, vehicle, poses, directions, start_pose, dt_s: float = 0.05,
                    max_time_s: float = 120.0, settle_cycles: int = 5, obstacle_distance_m=None) -> LoopResult:
    """Drive ``vehicle`` with ``tracker`` on a plan until done (or ``max_time_s``).

    ``obstacle_distance_m`` may be a callable ``f(pose) -> float``. Cross-track figures use the
    tracker's reported ``cross_track_m`` while tracking (not while rotating / stopped at a cusp).
    """
    tracker.set_plan(poses, directions)
    pose = np.asarray(start_pose, dtype=float).copy()
    v_meas, steer = 0.0, 0.0
    ctes: list[float] = []
    states: set[str] = set()
    traj = [pose.copy()]
    times: list[float] = []
    t, done_cycles, out = 0.0, 0, None
    is_ack = isinstance(vehicle, Ackermann)
    while t < max_time_s:
        obst = math.inf if obstacle_distance_m is None else float(obstacle_distance_m(pose))
        t0 = time.perf_counter()
        out = tracker.compute(pose, v_meas, t, obst)
        times.append(time.perf_counter() - t0)
        states.add(out.state)
        if out.state == "tracking":
            ctes.append(out.cross_track_m)
        if out.done:
            done_cycles += 1
            if done_cycles >= settle_cycles:
                break
        v, w = vehicle.limit(out.v_mps, out.w_radps)
        if is_ack:
            _, delta_cmd = vehicle.inverse(v, w) if abs(v) > 1e-9 else (0.0, steer)
            steer = vehicle.rate_limit_steering(steer, delta_cmd, dt_s)
            v, w = vehicle.forward(v, steer)
        x, y, yaw = arc_step(pose[0], pose[1], pose[2], v * dt_s, w * dt_s)
        pose = np.array([x, y, yaw])
        v_meas = v
        traj.append(pose.copy())
        t += dt_s
    goal = tracker.path.goal
    cte = np.abs(np.array(ctes)) if ctes else np.zeros(1)
    yaw_err = math.remainder(goal[2] - pose[2], 2.0 * math.pi)
    return LoopResult(bool(out is not None and out.done), t, float(np.sqrt(np.mean(cte ** 2))),
                      float(np.max(cte)), float(math.hypot(pose[0] - goal[0], pose[1] - goal[1])),
                      abs(yaw_err), states, float(np.mean(times)), float(np.max(times)), np.array(traj))
