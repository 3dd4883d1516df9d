"""Test harness pieces several test files share (imported as ``harness``: pytest puts ``test/`` on the path
for its conftest).

- :data:`CARE_DAY`: a one-shuttle, two-trip care day in the town's coordinates.
- :class:`SimTimeRig`: a mission node under test plus an I/O node that stands in for the rest of the robot,
  stepped on simulated time (``/clock`` published every step, then a few executor turns).
- :class:`AttackerGraph`: nodes under attack and an ``attacker`` node on one executor.
- :func:`attack_goals`: the goal attacks every signed mission action must refuse, each counted under its
  reason, then the genuine goal and its replay.
- :func:`decode_qr`: the text of a QR code in an image, read the way a scanner retries.
- :data:`TRACKER_CURVES`, :func:`primitive_path`: the seeded-field bench's tractor controller and plans made of
  straights and arcs, for the path-tracking tests.
- :data:`TRACTOR_BODY`, :data:`TRACTOR_IMPLEMENT`, :func:`sample_poses`, :func:`implement_strips`: the demo tractor's
  footprint and the ground its implement works along a corner ring, for the worked-corner tests.
- :func:`straight_plan`: a coverage plan of one working straight and a reverse, with corner rings that reversed a
  given length, for the reverse-budget and plan-check tests (the planner monkeypatched to return it).
"""

from __future__ import annotations

import copy
import math

CARE_DAY = {
    "speed_mps": 1.4,
    "vehicles": [{"id": "shuttle_1", "depot": [60.0, 101.8], "seats": 2, "available": [0, 2000]}],
    "requests": [
        {"id": "trip_e1", "pickup": [192.0, 101.8], "dropoff": [75.0, 101.8], "pickup_window": [0, 600],
         "dropoff_by": 1500, "service_s": 5, "max_ride_s": 1200, "child": "e1", "guardians": ["g_e1"],
         "pickup_place": "nursery", "dropoff_place": "home_1"},
        {"id": "trip_e2", "pickup": [192.0, 101.8], "dropoff": [100.0, 101.8], "pickup_window": [0, 600],
         "dropoff_by": 1500, "service_s": 5, "max_ride_s": 1200, "child": "e2", "guardians": ["g_e2"],
         "pickup_place": "nursery", "dropoff_place": "home_2"},
    ],
}


def care_day() -> dict:
    """A fresh copy of :data:`CARE_DAY` (tests may change theirs)."""
    return copy.deepcopy(CARE_DAY)


#: bench/farm_missions.py's controller with worked corners and the curve law (CONTROLLER + MANOEUVRE + curve law)
TRACKER_CURVES = dict(desired_speed_mps=2.5, reverse_speed_mps=1.2, min_lookahead_m=2.5, max_lookahead_m=6.0,
                      lookahead_time_s=1.2, regulated_min_radius_m=6.0, goal_xy_tolerance_m=0.5, search_window_m=4.0,
                      manoeuvre_distance_m=3.0, manoeuvre_speed_mps=1.2, cusp_presteer=True, cusp_decel_mps2=0.4,
                      curve_exit_m=3.0, curve_law_min_curvature_per_m=0.05)


def primitive_path(prims, step=0.5):
    """Poses (N, 3) of straights / arcs ``(length_m, curvature)`` from the origin heading +x."""
    import numpy as np

    x = y = th = 0.0
    out = [(x, y, th)]
    for length, k in prims:
        n = max(1, int(round(length / step)))
        ds = length / n
        for _ in range(n):
            if k == 0.0:
                x, y = x + ds * math.cos(th), y + ds * math.sin(th)
            else:
                th2 = th + k * ds
                x, y, th = x + (math.sin(th2) - math.sin(th)) / k, y - (math.cos(th2) - math.cos(th)) / k, th2
            out.append((x, y, th))
    return np.array(out)


class SimTimeRig:
    """A node under test and a stand-in I/O node on one executor, stepped ``dt`` of simulated time at a time.

    Subclasses create their publishers on ``self.io`` and override :meth:`move` (what the rest of the robot
    does in one step, before the executor turns)."""

    def __init__(self, ctx, node, io_name: str, dt: float, spins: int = 6, t0: float = 1.0):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock

        from agricare.ros.qos import RELIABLE_QOS

        self._rclpy, self._clock_type = rclpy, Clock
        self.node, self.dt, self.spins, self.t = node, dt, spins, t0
        self.io = rclpy.create_node(io_name, context=ctx)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(node)
        self.ex.add_node(self.io)
        self.clock = self.io.create_publisher(Clock, "/clock", RELIABLE_QOS)

    def move(self) -> None:
        """One step of the stand-in robot (nothing by default)."""

    def step(self) -> None:
        self.t += self.dt
        sec = int(self.t)
        stamp = self._rclpy.time.Time(seconds=sec, nanoseconds=int((self.t - sec) * 1e9)).to_msg()
        self.clock.publish(self._clock_type(clock=stamp))
        self.move()
        for _ in range(self.spins):  # one timeout for all calls: rclpy keeps its callback iterator between them
            self.ex.spin_once(timeout_sec=0.002)

    def until(self, cond, steps: int) -> bool:
        for _ in range(steps):
            if cond():
                return True
            self.step()
        return cond()

    def close(self) -> None:
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


class AttackerGraph:
    """Nodes under attack (``add``/``drop``) and an ``attacker`` node, on one executor spun until a condition."""

    def __init__(self, ctx):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.ctx = ctx
        self.ex = SingleThreadedExecutor(context=ctx)
        self.attacker = rclpy.create_node("attacker", context=ctx)
        self.ex.add_node(self.attacker)
        self.nodes = []

    def add(self, node):
        self.ex.add_node(node)
        self.nodes.append(node)
        return node

    def drop(self, node):
        self.ex.remove_node(node)
        self.nodes.remove(node)
        node.destroy_node()

    def spin_until(self, cond, n=400):
        for _ in range(n):
            if cond():
                return True
            self.ex.spin_once(timeout_sec=0.01)
        return cond()

    def close(self):
        self.ex.shutdown()
        for n in list(self.nodes):
            n.destroy_node()
        self.attacker.destroy_node()


def attack_goals(spin_until, node, client, what, goal_fn, operator, target, tamper=None, before_genuine=None):
    """Send each bad goal through ``client`` and expect a rejection counted under ``<what>.<reason>`` in
    ``node.security``: unsigned, unknown key, tampered after signing (``tamper(goal)``; default: validity
    stretched), expired, signed for another robot; then the genuine goal is accepted and its copy is a
    replay. ``before_genuine()`` runs after the refusals (e.g. to check nothing started). Returns the
    genuine goal (to replay it after a restart)."""
    from agricare.core.security.keys import SigningKey
    from agricare.ros.signed import sign_message

    mallory = SigningKey.generate("mallory")
    sec = node.security

    def send(goal, key):
        before = sec.counts.get(key, 0)
        fut = client.send_goal_async(goal)
        assert spin_until(fut.done), key
        assert sec.counts.get(key, 0) == before + 1, (key, sec.counts)
        return fut.result()

    def stretch(goal):
        goal.signature.expires_at_s += 3600.0

    assert not send(goal_fn(), f"{what}.unsigned").accepted
    assert not send(sign_message(goal_fn(), mallory, kind="mission_goal"), f"{what}.unknown_key").accepted
    forged = operator.sign(goal_fn(), target)
    (tamper or stretch)(forged)
    assert not send(forged, f"{what}.bad_signature").accepted
    assert not send(operator.sign(goal_fn(), target, issued_at_s=1000.0, lifetime_s=60.0), f"{what}.expired").accepted
    assert not send(operator.sign(goal_fn(), "someone_else"), f"{what}.wrong_target").accepted
    if before_genuine is not None:
        before_genuine(send)
    genuine = operator.sign(goal_fn(), target)
    assert send(genuine, f"{what}.accepted").accepted
    assert not send(genuine, f"{what}.replayed").accepted
    return genuine


def decode_qr(cv2, img) -> str:
    """The text of the QR code in ``img`` ('' if none reads it). OpenCV's default detector fails on about 1 % of
    valid codes (3 of 300 random hand-over codes, at any scale that keeps the modules sharp; one of them failed a CI
    run), its ArUco-based detector and a half-size copy read those: the first reading is taken."""
    readers = [cv2.QRCodeDetector()]
    if hasattr(cv2, "QRCodeDetectorAruco"):
        readers.append(cv2.QRCodeDetectorAruco())
    half = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    for reader in readers:
        for im in (img, half):
            text = reader.detectAndDecode(im)[0]
            if text:
                return text
    return ""


#: the demo tractor's body and implement rectangles in base_link (rear axle): (x0, x1, y0, y1), m
TRACTOR_BODY, TRACTOR_IMPLEMENT = (-0.9, 3.3, -1.1, 1.1), (-2.0, -1.2, -3.0, 3.0)


def sample_poses(s):
    """(N, 3) poses ``x, y, yaw`` of a sampled path piece (``.xy``, ``.yaw``)."""
    import numpy as np

    return np.column_stack([s.xy, s.yaw])


def outer_pass_frame(field, inset_m: float = 3.1):
    """The outer headland pass of ``field`` ``inset_m`` in (counter-clockwise) as corners.py indexes it: vertices ``v``,
    unit edge directions ``u``, headings ``h``, edge lengths ``L``."""
    import numpy as np
    from shapely.geometry import LinearRing

    v = np.asarray(field.buffer(-inset_m, join_style="mitre").exterior.coords)[:-1]
    if not LinearRing(v).is_ccw:
        v = v[::-1]
    e = np.roll(v, -1, axis=0) - v
    L = np.hypot(e[:, 0], e[:, 1])
    u = e / L[:, None]
    return v, u, np.arctan2(u[:, 1], u[:, 0]), L


def implement_strips(ring, offset=1.6, width=6.0):
    """Ground under the implement working line (``offset`` behind base_link) on a ring's working pieces."""
    import numpy as np
    from shapely.geometry import LineString
    from shapely.ops import unary_union

    strips = []
    for s, working in ring.pieces:
        if not working:
            continue
        q = s.xy - offset * np.column_stack([np.cos(s.yaw), np.sin(s.yaw)])
        strips.append(LineString(q).buffer(width / 2, cap_style="flat"))
    return unary_union(strips)


def straight_plan(params, field, start_x: float, work_m: float, back_m: float, corner_rev_m: float):
    """A ``CoveragePlan`` on ``field`` whose corner rings reverse ``corner_rev_m``: a working straight of ``work_m``
    along y = 20 from ``start_x``, then ``back_m`` straight back (not working)."""
    import numpy as np

    from agricare.core.planning import coverage as C
    from agricare.core.planning import turns as T
    from agricare.core.planning.corners import CornerRing

    parts = [(T.sample_primitives((start_x, 20.0, 0.0), [(work_m, 0.0, 0.0)], 0.5), True)]
    if back_m > 0:
        parts.append((T.sample_primitives((start_x + work_m, 20.0, 0.0), [(-back_m, 0.0, 0.0)], 0.5), False))
    xy = np.concatenate([s.xy if i == 0 else s.xy[1:] for i, (s, _) in enumerate(parts)])
    yaw = np.concatenate([s.yaw if i == 0 else s.yaw[1:] for i, (s, _) in enumerate(parts)])
    w = np.concatenate([np.full(len(s.yaw) - (i > 0), wk) for i, (s, wk) in enumerate(parts)])
    d = np.concatenate([s.direction if i == 0 else s.direction[1:] for i, (s, _) in enumerate(parts)])
    n = len(yaw)
    path = C.PlanPath(xy, yaw, np.zeros(n), np.zeros(n, np.int8), w, d.astype(np.int8))
    ring = CornerRing(pieces=[], starts=[], n_manoeuvres=1, reverse_m=corner_rev_m)
    return C.CoveragePlan(field=field, inner=field, angle_rad=0.0, swaths=[], headland_rings=[[ring]], path=path,
                          lengths_m={"total": work_m}, coverage_ratio=1.0, overlap_ratio=0.0, params=params)
