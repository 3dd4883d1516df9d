"""Plan check with the robot's own tracker: where would the machine, driving this plan, leave the field?

A coverage planner checks the machine's footprint at the *planned* poses. The machine follows the plan with a tracker
whose steering lags and turns at a limited rate, so on a step of curvature, an arc onto the opposite one or a corner
sharper than the machine can steer it runs off the plan by centimetres to metres. This module drives the plan through
the robot's own controller (:class:`~agricare.core.control.pure_pursuit.RegulatedPurePursuit` with the robot's
``TrackerParams``) on the robot's own kinematic model (:class:`MachineModel`: bicycle model with the steering's first
order lag and rate limit, the speed's lag and acceleration limits, the controller acting on the pose of the previous
cycle), without noise or slip, and reports where the predicted footprint leaves the allowed region, as pieces of the
plan (index ranges). It uses nothing of the simulator: the model's numbers are the machine's specification.

Run time is about that of the controller itself over the plan's length: a 2.5 km coverage plan (about 1300 s driven)
takes about 2-4 s on one core (``CheckResult.wall_s``; measured on the seeded fields of bench/farm_missions.py at a
load of 5 on two cores).

What it found on those fields (seeds 0-19, the bench's controller with the curve law, steering anticipation and the
transition law): it predicted the two fields where the run leaves the field by centimetres to metres, at the pieces
where it does (seed 10: a ring's concave corner rounded to about 1.4 m, sharper than the machine steers, 1.40 m
predicted against 1.26 m driven; seed 14: a 120 deg kink inside a working headland pass, 0.03 against 0.07 m), and none
elsewhere; it missed the third (seed 15: 5 mm at a cusp where the bonnet stops 0.1 m from the boundary, the soil's slip
and the smoother's delay that the model leaves out). Slowing such a piece down (1.2, 0.8, 0.5 m/s, checked again each
time) did not keep seeds 10 and 14 inside: these need the planner to give the piece a shape the machine can steer,
which is why the check reports and does not correct them.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import shapely

from agricare.core.control.kinematics import Ackermann, AckermannParams
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit


@dataclasses.dataclass(frozen=True)
class MachineModel:
    """The robot's kinematic model as its specification gives it (SI units).

    Bicycle model about the rear axle (``wheelbase_m``), steering clipped to ``max_steering_angle_rad``, following the
    command with a first-order lag ``steer_time_constant_s`` and at most ``steer_rate_radps``; the speed with a lag
    ``speed_time_constant_s`` and at most ``max_accel_mps2`` / ``max_decel_mps2``. The controller runs every
    ``control_period_s`` on the pose of the previous cycle (the demo graph's one-cycle delay)."""

    wheelbase_m: float = 2.6
    max_steering_angle_rad: float = 0.6
    steer_rate_radps: float = 0.8
    steer_time_constant_s: float = 0.15
    speed_time_constant_s: float = 0.4
    max_accel_mps2: float = 0.8
    max_decel_mps2: float = 2.5
    max_speed_mps: float = 3.0
    control_period_s: float = 0.05

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{f.name} must be a finite number >= 0, got {v!r}")
        for name in ("wheelbase_m", "max_steering_angle_rad", "steer_rate_radps", "max_accel_mps2", "max_decel_mps2",
                     "max_speed_mps", "control_period_s"):
            if getattr(self, name) <= 0.0:
                raise ValueError(f"{name} must be > 0")
        if self.max_steering_angle_rad >= 0.5 * math.pi:
            raise ValueError("max_steering_angle_rad must be < pi/2")


@dataclasses.dataclass
class Prediction:
    """Predicted drive: poses (M, 3) after each control period, the plan index each was tracking (M,), whether the
    tracker reached the plan's end, and the simulated time (s)."""

    poses: np.ndarray
    plan_index: np.ndarray
    done: bool
    t_s: float


@dataclasses.dataclass
class Excursion:
    """A piece of the plan where the predicted machine leaves the region: plan indices ``first``..``last``, the largest
    distance outside (m) and when (s, predicted)."""

    first: int
    last: int
    worst_m: float
    t_s: float


@dataclasses.dataclass
class CheckResult:
    excursions: list
    prediction: Prediction
    wall_s: float

    @property
    def worst_m(self) -> float:
        return max((e.worst_m for e in self.excursions), default=0.0)


def _lag(cur: float, target: float, dt: float, tau: float) -> float:
    return target if tau <= 0.0 else cur + (target - cur) * (1.0 - math.exp(-dt / tau))


def predict_track(poses, directions, tracker_params: TrackerParams, model: MachineModel | None = None,
                  t_max_s: float | None = None) -> Prediction:
    """Drive ``poses`` (N, 3) with ``directions`` (N,) of +1/-1 from the first pose with the robot's controller on
    ``model``; stops at the plan's end, a missed end, or ``t_max_s`` (default: three times the plan's length at the
    slower of the two speeds, plus a minute)."""
    m = model or MachineModel()
    poses = np.asarray(poses, float).reshape(-1, 3)
    tracker = RegulatedPurePursuit(tracker_params, Ackermann(AckermannParams(
        wheelbase_m=m.wheelbase_m, max_steering_angle_rad=m.max_steering_angle_rad,
        max_linear_speed_mps=m.max_speed_mps)))
    tracker.set_plan(poses, directions)
    if t_max_s is None:
        slow = min(tracker_params.desired_speed_mps, tracker_params.reverse_speed_mps)
        t_max_s = 3.0 * tracker.path.length_m / max(slow, 0.1) + 60.0
    x, y, th = (float(v) for v in poses[0])
    steer = v = 0.0
    seen, seen_v = np.array([x, y, th]), 0.0
    cmd_v = cmd_k = 0.0
    dt, t = m.control_period_s, 0.0
    out_p, out_i, done = [], [], False
    while t < t_max_s:
        c = tracker.compute(seen, seen_v, t)
        if c.done or c.state in ("goal_missed", "error"):
            done = c.done
            break
        seen, seen_v = np.array([x, y, th]), v
        # the machine: steering and speed follow the previous cycle's command
        if abs(cmd_v) > 1e-3:
            target = math.atan(m.wheelbase_m * cmd_k)
        else:
            target = steer
        target = min(max(target, -m.max_steering_angle_rad), m.max_steering_angle_rad)
        lagged = _lag(steer, target, dt, m.steer_time_constant_s)
        d = min(max(lagged - steer, -m.steer_rate_radps * dt), m.steer_rate_radps * dt)
        steer = min(max(steer + d, -m.max_steering_angle_rad), m.max_steering_angle_rad)
        v_t = _lag(v, cmd_v, dt, m.speed_time_constant_s)
        up = abs(v_t) > abs(v) and v_t * v >= 0.0
        lim = (m.max_accel_mps2 if up else m.max_decel_mps2) * dt
        v = v + min(max(v_t - v, -lim), lim)
        w = v * math.tan(steer) / m.wheelbase_m
        mid = th + 0.5 * w * dt
        x, y = x + v * math.cos(mid) * dt, y + v * math.sin(mid) * dt
        th = math.remainder(th + w * dt, 2.0 * math.pi)
        cmd_v, cmd_k = c.v_mps, (c.w_radps / c.v_mps if abs(c.v_mps) > 1e-6 else cmd_k)
        t += dt
        out_p.append((x, y, th))
        out_i.append(c.nearest_index)
    return Prediction(np.array(out_p).reshape(-1, 3), np.array(out_i, int), done, t)


def footprint_points(poses, footprint) -> np.ndarray:
    """Corners (M, 4 K, 2) of the machine's rectangles ``footprint`` (x_min, x_max, y_min, y_max, ... in base_link) at
    ``poses`` (M, 3)."""
    fp = np.asarray(footprint, float).reshape(-1, 4)
    loc = np.array([(r[a], r[b]) for r in fp for a, b in ((0, 2), (1, 2), (1, 3), (0, 3))])
    q = np.asarray(poses, float).reshape(-1, 3)
    c, s = np.cos(q[:, 2])[:, None], np.sin(q[:, 2])[:, None]
    return np.stack([q[:, :1] + c * loc[None, :, 0] - s * loc[None, :, 1],
                     q[:, 1:2] + s * loc[None, :, 0] + c * loc[None, :, 1]], axis=-1)


def excursions(region, prediction: Prediction, footprint, margin_m: float = 0.0, control_period_s: float = 0.05
               ) -> list:
    """Pieces where a corner of the predicted footprint is outside ``region`` (a shapely polygon, holes excluded)
    shrunk by ``margin_m``: one :class:`Excursion` per run of consecutive predicted poses outside."""
    if len(prediction.poses) == 0:
        return []
    allowed = region.buffer(-margin_m) if margin_m > 0 else region
    pts = footprint_points(prediction.poses, footprint)
    flat = pts.reshape(-1, 2)
    inside = shapely.contains_xy(allowed, flat[:, 0], flat[:, 1]).reshape(pts.shape[:2])
    out = ~inside.all(axis=1)
    res = []
    k, n = 0, len(out)
    while k < n:
        if not out[k]:
            k += 1
            continue
        j = k
        while j + 1 < n and out[j + 1]:
            j += 1
        bad = flat.reshape(pts.shape)[k:j + 1][~inside[k:j + 1]]
        worst = float(np.max(shapely.distance(allowed, shapely.points(bad))))
        idx = prediction.plan_index[k:j + 1]
        res.append(Excursion(int(idx.min()), int(idx.max()) + 1, worst, (k + 1) * control_period_s))
        k = j + 1
    return res


def check_plan(poses, directions, region, footprint, tracker_params: TrackerParams,
               model: MachineModel | None = None, margin_m: float = 0.0) -> CheckResult:
    """Predict the drive (:func:`predict_track`) and where its footprint leaves ``region`` (:func:`excursions`)."""
    m = model or MachineModel()
    w0 = time.perf_counter()
    pred = predict_track(poses, directions, tracker_params, m)
    ex = excursions(region, pred, footprint, margin_m, m.control_period_s)
    return CheckResult(ex, pred, time.perf_counter() - w0)

