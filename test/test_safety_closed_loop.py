"""Plain-Python closed-loop tests of the safety supervisor (no simulator graph, no rclpy).

A unicycle with a one-cycle actuation delay, the profile's first-order speed lag and the profile's
braking deceleration is driven by a constant-speed "planner" through the supervisor, with ideal
odometry / pose and a synthetic 2-D scan of a walking person (point-robot world: one circle).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np
import pytest
import shapely
import yaml

from agricare.core.geometry import se2_compose, se2_inverse, se2_transform_points
from agricare.core.safety.supervisor import STOP_STATES, Supervisor, SupervisorInputs, SupervisorParams

CONFIG = pathlib.Path(__file__).resolve().parents[1] / "config"
DT = 0.05
FIELDS = {f.name for f in dataclasses.fields(SupervisorParams)}


def load_profile(name: str | None, **overrides) -> SupervisorParams:
    """Shipped defaults + a robot profile from config/, as the node would load them."""
    values = yaml.safe_load((CONFIG / "safety_supervisor_node.yaml").read_text())["/**"]["ros__parameters"]
    if name:
        values.update(yaml.safe_load((CONFIG / f"safety_{name}.yaml").read_text())["/**"]["ros__parameters"])
    values.update(overrides)
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in FIELDS}
    return SupervisorParams(**kw)


@pytest.mark.parametrize("profile", [None, "tractor", "shuttle", "row_robot"])
def test_shipped_profiles_are_valid(profile):
    p = load_profile(profile)
    assert p.person_stop_margin_m > p.stop_margin_m
    if profile == "shuttle":
        assert p.max_speed_mps <= 20.0 / 3.6 / 2 and p.max_accel_mps2 <= 1.5 and p.max_jerk_mps3 <= 3.0


class Robot:
    """Unicycle with command delay (one cycle), first-order speed lag and a braking-rate cap."""

    def __init__(self, pose, accel_mps2, decel_mps2, lag_s):
        self.pose = np.asarray(pose, dtype=float)
        self.v = 0.0
        self.w = 0.0
        self.accel, self.decel, self.lag = accel_mps2, decel_mps2, lag_s
        self._pending = (0.0, 0.0)

    def step(self, cmd_v, cmd_w):
        target_v, target_w = self._pending
        self._pending = (cmd_v, cmd_w)
        dv = (target_v - self.v) * min(1.0, DT / self.lag) if self.lag > 0 else target_v - self.v
        cap = (self.decel if abs(target_v) < abs(self.v) else self.accel) * DT
        self.v += max(-cap, min(cap, dv))
        self.w = target_w
        x, y, th = self.pose
        self.pose = np.array([x + self.v * math.cos(th) * DT, y + self.v * math.sin(th) * DT, th + self.w * DT])


def footprint_in_map(params, pose):
    return se2_transform_points(pose, np.asarray(params.footprint_xy).reshape(-1, 2))


def run_geofence(params, start_pose, v_req, w_req, t_end=40.0):
    sup = Supervisor(params)
    robot = Robot(start_pose, accel_mps2=2.0, decel_mps2=params.braking_decel_mps2, lag_s=0.0)
    fence = shapely.Polygon(np.asarray(params.keep_in_xy).reshape(-1, 2))
    keep_out = sup.geofence.keep_out_polygons()
    worst_gap = math.inf
    t = 0.0
    stopped_since = None
    while t < t_end:
        inp = SupervisorInputs(cmd_v_mps=v_req, cmd_w_radps=w_req, cmd_stamp_s=t, odom_v_mps=robot.v,
                               odom_w_radps=robot.w, odom_stamp_s=t, scan_points_in_base=np.zeros((0, 2)),
                               scan_stamp_s=t, imu_stamp_s=t, pose_in_map=robot.pose.copy(), pose_stamp_s=t)
        d = sup.update(t, inp)
        robot.step(d.cmd_v_mps, d.cmd_w_radps)
        body = shapely.Polygon(footprint_in_map(params, robot.pose))
        gap = fence.exterior.distance(body) if fence.contains(body) else -fence.exterior.distance(body)
        for ko in keep_out:
            gap = min(gap, -1.0 if shapely.Polygon(ko).intersects(body) else shapely.Polygon(ko).distance(body))
        worst_gap = min(worst_gap, gap)
        t += DT
        if d.state in STOP_STATES and robot.v == 0.0:
            stopped_since = t if stopped_since is None else stopped_since
            if t - stopped_since > 1.0:
                break
        else:
            stopped_since = None
    return worst_gap, robot, d


@pytest.mark.parametrize("profile", ["tractor", "shuttle"])
@pytest.mark.parametrize("v_req", [0.8, 3.0])
@pytest.mark.parametrize("heading,w_req", [(0.0, 0.0), (0.6, 0.0), (-0.3, 0.05)])
def test_geofence_stop_before_line(profile, v_req, heading, w_req):
    """Drive at the keep-in boundary x = 40 m: the body never crosses it and ends close to it."""
    params = load_profile(profile, keep_in_xy=[0.0, -30.0, 40.0, -30.0, 40.0, 30.0, 0.0, 30.0])
    front = max(params.footprint_xy[0::2])
    worst_gap, robot, d = run_geofence(params, [33.0 - front, 0.0, heading], v_req, w_req)
    assert worst_gap > 0.0, f"crossed the geofence by {-worst_gap:.3f} m"
    assert d.state in STOP_STATES and "geofence_keep_in" in d.reasons and robot.v == pytest.approx(0.0, abs=1e-9)
    body = footprint_in_map(params, robot.pose)
    assert 40.0 - body[:, 0].max() < params.geofence_margin_m + params.lateral_margin_m + 1.5  # not absurdly early


def test_geofence_keep_out_pond_in_the_way():
    params = load_profile("tractor", keep_in_xy=[0.0, -30.0, 80.0, -30.0, 80.0, 30.0, 0.0, 30.0],
                          keep_out_xy=[30.0, -5.0, 36.0, -5.0, 36.0, 5.0, 30.0, 5.0], keep_out_vertex_counts=[4])
    worst_gap, robot, d = run_geofence(params, [15.0, 1.0, 0.0], 3.0, 0.0)
    assert worst_gap > 0.0 and "geofence_keep_out" in d.reasons and robot.pose[0] < 30.0


def test_geofence_closed_loop_would_cross_without_supervisor():
    """Sanity check of the harness: the same drive with the gate open does cross the line."""
    params = load_profile("tractor", keep_in_xy=[0.0, -30.0, 40.0, -30.0, 40.0, 30.0, 0.0, 30.0])
    robot = Robot([5.0, 0.0, 0.0], 2.0, params.braking_decel_mps2, 0.0)
    for _ in range(int(30.0 / DT)):
        robot.step(3.0, 0.0)
    assert footprint_in_map(params, robot.pose)[:, 0].max() > 40.0


# ---------------------------------------------------------------- person walking into the path
def synthetic_scan(robot_pose, mount, person_xy, radius, n_rays=1080, fov=2 * math.pi, range_max=30.0):
    """Ranges of a 2-D lidar (``n_rays`` over ``fov``) seeing one circle; +inf where nothing is hit."""
    T_map_lidar = se2_compose(robot_pose, mount)
    c = se2_transform_points(se2_inverse(T_map_lidar), [person_xy])[0]
    angles = -fov / 2 + fov * np.arange(n_rays) / n_rays
    d = np.column_stack((np.cos(angles), np.sin(angles)))
    b = d @ c
    disc = b * b - (c @ c - radius * radius)
    with np.errstate(invalid="ignore"):
        r = b - np.sqrt(disc)
    ranges = np.where((disc >= 0) & (r > 0) & (r < range_max), r, np.inf)
    return angles, ranges


def run_person(params, v_cruise, walk_speed, offset_m, use_tracks, supervised=True, y0_m=5.0):
    """Robot drives +x from the origin; a person starts ``y0_m`` to the side and walks across its path
    until 2.5 m past its centre line.

    ``offset_m``: where along the robot's body front the unsafeguarded crossing would happen (positive =
    ahead of the front when the person reaches the path centre line). Returns the worst "robot hits
    person" clearance (m, negative = contact while the robot moves) and the minimum clearance overall.
    """
    from agricare.core.safety.fields import scan_to_points_in_base

    radius = 0.3
    front = max(params.footprint_xy[0::2])
    t_cross = y0_m / walk_speed
    t_end = (y0_m + 2.5) / walk_speed
    accel = params.max_accel_mps2
    t_acc = v_cruise / accel  # the supervisor ramps the request up at max_accel (no jerk phase here)
    x_front_at_cross = front + (v_cruise * (t_cross - t_acc / 2) if t_cross > t_acc else 0.5 * accel * t_cross ** 2)
    person = np.array([x_front_at_cross + offset_m, y0_m])
    vel = np.array([0.0, -walk_speed])
    lag = max(0.0, params.reaction_time_s - 2 * DT - 0.05)
    robot = Robot([0.0, 0.0, 0.0], params.max_accel_mps2 + 1.0, params.braking_decel_mps2, lag)
    sup = Supervisor(params)
    mount = np.array([front, 0.0, 0.0])
    fp = np.asarray(params.footprint_xy).reshape(-1, 2)
    worst_moving, min_clear = math.inf, math.inf
    t = 0.0
    while t < t_end:
        if not supervised:
            robot.step(v_cruise, 0.0)
            person = person + vel * DT
            min_clear = min(min_clear, shapely.Polygon(se2_transform_points(robot.pose, fp)).distance(
                shapely.Point(person)) - radius)
            t += DT
            continue
        angles, ranges = synthetic_scan(robot.pose, mount, person, radius)
        pts = scan_to_points_in_base(ranges, angles[0], angles[1] - angles[0], 0.05, 30.0, mount)
        inp = SupervisorInputs(cmd_v_mps=v_cruise, cmd_stamp_s=t, odom_v_mps=robot.v, odom_stamp_s=t,
                               scan_points_in_base=pts, scan_stamp_s=t, imu_stamp_s=t)
        if use_tracks:
            p_base = se2_transform_points(se2_inverse(robot.pose), [person])[0]
            c, s = math.cos(robot.pose[2]), math.sin(robot.pose[2])
            v_base = np.array([c * vel[0] + s * vel[1], -s * vel[0] + c * vel[1]])  # over ground, base axes
            inp.objects_in_base = np.array([[p_base[0], p_base[1], v_base[0], v_base[1], radius, 1.0]])
            inp.objects_stamp_s = t
        d = sup.update(t, inp)
        robot.step(d.cmd_v_mps, d.cmd_w_radps)
        person = person + vel * DT
        clear = shapely.Polygon(se2_transform_points(robot.pose, fp)).distance(shapely.Point(person)) - radius
        min_clear = min(min_clear, clear)
        if abs(robot.v) > 0.05:
            worst_moving = min(worst_moving, clear)
        t += DT
    return worst_moving, min_clear


CASES = [(v, u, off) for v in (1.0, 2.0) for u in (0.6, 1.6) for off in (0.0, 2.0)] + [(1.5, 1.0, 1.0)]


@pytest.mark.parametrize("profile", ["tractor", "shuttle"])
def test_person_walking_into_path_no_contact_with_tracks(profile):
    """Scan + tracked person (position, velocity, is_person): the robot never touches the person while moving;
    with the gate open most of these crossings would be collisions."""
    params = load_profile(profile)
    hits_unsupervised = 0
    for v, u, off in CASES + [(1.0, 1.6, -1.0), (2.0, 1.0, -2.0)]:  # the last two: into the side
        worst, _ = run_person(params, v, u, off, use_tracks=True)
        assert worst > 0.0, f"{profile}: contact while moving (v={v}, walk={u}, offset={off}): {worst:.2f} m"
        _, clear_open = run_person(params, v, u, off, use_tracks=True, supervised=False)
        hits_unsupervised += clear_open <= 0.0
    assert hits_unsupervised >= len(CASES) // 2


@pytest.mark.parametrize("profile", ["tractor", "shuttle"])
def test_person_walking_into_path_ahead_no_contact_scan_only(profile):
    """Scan only (no classification, obstacle distances): a person stepping into the path ahead is never hit."""
    params = load_profile(profile)
    for v, u, off in CASES:
        worst, _ = run_person(params, v, u, off, use_tracks=False)
        assert worst > 0.0, f"{profile}: contact while moving (v={v}, walk={u}, offset={off}): {worst:.2f} m"
