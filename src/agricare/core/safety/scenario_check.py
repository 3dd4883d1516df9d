"""Closed loop "driver -> safety supervisor -> simulated vehicle" in plain Python (no ROS).

Used by the scenario tests (``test/test_safety_scenarios.py``) to check the supervisor against the
embedded simulator's vehicles (lag, acceleration limits, Ackermann steering), lidar ray casting and
walking people, at the simulator's fixed step.

Each step (``dt_s``, one supervisor cycle) does what ``safety_supervisor_node`` does on its timer:

1. take the readings due now from ``World.sensors_due()``: ``odom`` twist, ``imu`` roll/pitch, ``scan``
   turned into points in ``base_link`` with the lidar mount (``scan_to_points_in_base``, as the node's
   ``_on_scan``), a rear scanner's ``scan_rear`` likewise (the tractor's), ``ground_truth`` pose as the map pose
   for the geofence (stand-in for the EKF output);
2. in ``mode="tracked"``: tracked objects from the simulator's ground-truth people, transformed to
   ``base_link`` (velocity over ground in base axes), published at scan time and only for people the
   scan actually hits (an occluded person is not tracked). This replaces the obstacle tracker;
3. the driver requests a constant ``(v_req, 0)`` (negative: backing up); ``Supervisor.update(t, inputs)``;
4. ``World.set_command`` with the supervisor's output; ``World.step(dt_s)``.

``mode="bypass"`` sends the driver's request straight to the vehicle (control runs: shows the scenario
would end in a contact or a boundary crossing without the gate). ``mode="scan"`` feeds no tracked objects.

Public API
----------
``load_profile(config_dir, profile=None, **overrides) -> SupervisorParams``: node defaults
``safety_supervisor_node.yaml`` + ``safety_<profile>.yaml`` + overrides, as the node loads them.
``run_closed_loop(world, robot, v_req_mps, params=None, mode="tracked", t_end_s=30, dt_s=0.05,
keep_out_xy=(), until=None) -> LoopResult``.
``person_clearance_m(world, robot) -> ndarray (P,)``: distance (m) from each person's disc to the body.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
import yaml

from agricare.core.safety.fields import scan_to_points_in_base
from agricare.core.safety.supervisor import STOP_STATES, SafetyState, Supervisor, SupervisorInputs, SupervisorParams

MODES = ("tracked", "scan", "bypass")
_SUPERVISOR_FIELDS = {f.name for f in dataclasses.fields(SupervisorParams)}
#: A scan return within this distance (m) of a person's disc counts as "person seen" (lidar noise 1 cm).
_SEEN_TOLERANCE_M = 0.06


def load_profile(config_dir, profile: str | None = None, **overrides) -> SupervisorParams:
    """``SupervisorParams`` from the shipped YAMLs: node defaults, then the robot profile, then overrides.

    Node-only keys (``loop_rate_hz``, ``scan_mount_xyyaw``, ...) are ignored; lists become tuples (ROS
    array parameters), as ``agricare.ros.params.load_params`` does.
    """
    config_dir = pathlib.Path(config_dir)
    files = [config_dir / "safety_supervisor_node.yaml"]
    if profile:
        files.append(config_dir / f"safety_{profile}.yaml")
    values: dict = {}
    for path in files:
        values.update(yaml.safe_load(path.read_text(encoding="utf-8"))["/**"]["ros__parameters"])
    values.update(overrides)
    kw = {k: (tuple(v) if isinstance(v, list | tuple) else v) for k, v in values.items() if k in _SUPERVISOR_FIELDS}
    return SupervisorParams(**kw)


@dataclass
class LoopResult:
    """What happened in one closed-loop run.

    ``t_s`` (N,), ``pose`` (N, 3) true map pose, ``v_mps`` (N,) true speed, ``cmd_v_mps`` (N,) sent command,
    ``states`` / ``reasons`` per step (``None`` / ``()`` in bypass mode), all sampled before each step.
    ``min_clearance_m``: person name -> smallest distance (m) between the person's disc and the robot body
    (negative = overlap). ``keep_out_gap_m``: smallest distance (m) between the body and any keep-out
    polygon (negative = overlap depth proxy: -1 when overlapping), ``inf`` without keep-out polygons.
    ``contacts`` / ``boundary_violations``: the world's episodes involving this robot.
    """

    t_s: np.ndarray
    pose: np.ndarray
    v_mps: np.ndarray
    cmd_v_mps: np.ndarray
    states: list
    reasons: list
    min_clearance_m: dict
    keep_out_gap_m: float
    contacts: list = field(default_factory=list)
    boundary_violations: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)

    def stop_episodes(self) -> list[tuple[float, float | None]]:
        """``(t_enter, t_leave)`` of every PROTECTIVE_STOP episode (``t_leave`` None if still stopped)."""
        out, start = [], None
        for t, s in zip(self.t_s, self.states):
            stopped = s == SafetyState.PROTECTIVE_STOP
            if stopped and start is None:
                start = float(t)
            elif not stopped and start is not None:
                out.append((start, float(t)))
                start = None
        if start is not None:
            out.append((start, None))
        return out

    def last_cause_time(self, causes: Sequence[str]) -> float | None:
        """Last time (s) any of ``causes`` was among the reasons."""
        last = None
        for t, r in zip(self.t_s, self.reasons):
            if any(c in r for c in causes):
                last = float(t)
        return last


def person_clearance_m(world, robot: str) -> np.ndarray:
    """Distance (m) from each person's disc to the robot body rectangles (negative = overlap), (P,)."""
    ppl = world.people
    if not len(ppl):
        return np.zeros(0)
    r = world.robots[robot]
    x, y, yaw = r.pose()
    c, s = math.cos(yaw), math.sin(yaw)
    d = ppl.positions - (x, y)
    lx = c * d[:, 0] + s * d[:, 1]
    ly = -s * d[:, 0] + c * d[:, 1]
    best = np.full(len(ppl), np.inf)
    for x0, x1, y0, y1 in r.rect_list:
        qx, qy = np.clip(lx, x0, x1), np.clip(ly, y0, y1)
        inside = (lx > x0) & (lx < x1) & (ly > y0) & (ly < y1)
        dist = np.where(inside, -np.minimum.reduce([lx - x0, x1 - lx, ly - y0, y1 - ly]), np.hypot(lx - qx, ly - qy))
        best = np.minimum(best, dist)
    return best - ppl.radii


def _body_polygon(world, robot: str):
    polys = [shapely.Polygon(c) for c in world.robots[robot].corners()]
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _tracked_people_in_base(world, robot: str, points_in_base: np.ndarray) -> np.ndarray:
    """Ground-truth people seen in this scan, as ``objects_in_base`` rows (K, 6)."""
    ppl = world.people
    if not len(ppl):
        return np.zeros((0, 6))
    x, y, yaw = world.pose(robot)
    c, s = math.cos(yaw), math.sin(yaw)
    d = ppl.positions - (x, y)
    pos = np.column_stack((c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]))
    vel = ppl.velocities
    vb = np.column_stack((c * vel[:, 0] + s * vel[:, 1], -s * vel[:, 0] + c * vel[:, 1]))
    rows = []
    for k in range(len(ppl)):
        if len(points_in_base) == 0:
            break
        gap = np.min(np.hypot(points_in_base[:, 0] - pos[k, 0], points_in_base[:, 1] - pos[k, 1])) - ppl.radii[k]
        if gap <= _SEEN_TOLERANCE_M:
            rows.append([pos[k, 0], pos[k, 1], vb[k, 0], vb[k, 1], ppl.radii[k], 1.0])
    return np.array(rows, dtype=float).reshape(-1, 6)


def run_closed_loop(world, robot: str, v_req_mps: float, params: SupervisorParams | None = None,
                    mode: str = "tracked", t_end_s: float = 30.0, dt_s: float = 0.05,
                    keep_out_xy: Sequence = (), until: Callable | None = None) -> LoopResult:
    """Drive ``robot`` straight ahead (backwards for a negative ``v_req_mps``) through the supervisor (see the
    module docstring).

    Parameters
    ----------
    world : agricare.core.sim.world.World
        Fresh world (time 0); it is stepped in place.
    robot : str
    v_req_mps : float
        Constant speed the driver requests (m/s); the requested turn rate is 0.
    params : SupervisorParams
        Needed unless ``mode == "bypass"``.
    mode : {"tracked", "scan", "bypass"}
    t_end_s : float
        Stop the run at this sim time (s).
    dt_s : float
        Fixed step (s) = supervisor cycle.
    keep_out_xy : sequence of (K, 2) arrays
        Map polygons for the body-vs-keep-out figure ``keep_out_gap_m`` (the supervisor's own keep-out
        polygons come from ``params``).
    until : callable(world, decision_or_None) -> bool, optional
        Ends the run early when it returns True (checked after each step).
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    if mode != "bypass" and params is None:
        raise ValueError("params: needed unless mode='bypass'")
    sup = Supervisor(params) if mode != "bypass" else None
    mounts = {kind: (sp.mount_x_m, sp.mount_y_m, sp.mount_yaw_rad)
              for kind in ("scan", "scan_rear") if (sp := getattr(world.robots[robot], f"{kind}_params")) is not None}
    keep_out = [shapely.Polygon(np.asarray(p, dtype=float).reshape(-1, 2)) for p in keep_out_xy]
    inp = SupervisorInputs()
    ts, poses, vs, cmds, states, reasons = [], [], [], [], [], []
    names = list(world.people.names)
    min_clear = np.full(len(names), np.inf)
    ko_gap = math.inf
    decision = None
    while world.t_s < t_end_s - 1e-9:
        t = world.t_s
        if sup is not None:
            for sample in world.sensors_due():
                if sample.robot != robot:
                    continue
                rd = sample.reading
                if sample.kind == "odom":
                    inp.odom_v_mps, inp.odom_w_radps, inp.odom_stamp_s = rd.v_mps, rd.w_radps, t
                elif sample.kind == "imu":
                    inp.roll_rad, inp.pitch_rad, inp.imu_stamp_s = rd.roll_rad, rd.pitch_rad, t
                elif sample.kind == "ground_truth":
                    inp.pose_in_map, inp.pose_stamp_s = np.array([rd.x_m, rd.y_m, rd.yaw_rad]), t
                elif sample.kind in mounts:
                    pts = scan_to_points_in_base(rd.ranges_m, rd.angle_min_rad, rd.angle_increment_rad,
                                                 rd.range_min_m, rd.range_max_m, mounts[sample.kind])
                    setattr(inp, f"{sample.kind}_points_in_base", np.full((1, 2), np.nan) if pts is None else pts)
                    setattr(inp, f"{sample.kind}_stamp_s", t)
                    if mode == "tracked" and sample.kind == "scan":
                        # the obstacle tracker is replaced by ground truth: people the scans hit, with their
                        # true positions and velocities in base_link
                        seen = [v for v in (inp.scan_points_in_base, inp.scan_rear_points_in_base) if v is not None]
                        inp.objects_in_base = _tracked_people_in_base(world, robot, np.vstack(seen))
                        inp.objects_stamp_s = t
            inp.cmd_v_mps, inp.cmd_w_radps, inp.cmd_stamp_s = float(v_req_mps), 0.0, t
            decision = sup.update(t, inp)
            cmd_v, cmd_w = decision.cmd_v_mps, decision.cmd_w_radps
            states.append(decision.state)
            reasons.append(decision.reasons)
        else:
            cmd_v, cmd_w = float(v_req_mps), 0.0
            states.append(None)
            reasons.append(())
        world.set_command(robot, cmd_v, cmd_w)
        ts.append(t)
        poses.append(world.pose(robot))
        vs.append(world.velocity(robot)[0])
        cmds.append(cmd_v)
        world.step(dt_s)
        if len(names):
            min_clear = np.minimum(min_clear, person_clearance_m(world, robot))
        if keep_out:
            body = _body_polygon(world, robot)
            for poly in keep_out:
                ko_gap = min(ko_gap, -1.0 if poly.intersects(body) else float(poly.distance(body)))
        if until is not None and until(world, decision):
            break
    return LoopResult(np.asarray(ts), np.asarray(poses).reshape(-1, 3), np.asarray(vs), np.asarray(cmds), states,
                      reasons, dict(zip(names, min_clear.tolist())), ko_gap,
                      [c for c in world.contacts if c.robot == robot],
                      [b for b in world.boundary_violations if b.robot == robot],
                      dict(sup.counters) if sup is not None else {})


__all__ = ["MODES", "LoopResult", "STOP_STATES", "load_profile", "person_clearance_m", "run_closed_loop"]
