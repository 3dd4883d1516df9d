"""Conversions between ROS messages and the numpy / float values the core works with.

Stamps are float seconds; planar poses are ``[x_m, y_m, yaw_rad]``; images are BGR ``uint8`` arrays.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32, Polygon, Pose, PoseStamped, Quaternion, TwistStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import Image, LaserScan
from std_msgs.msg import Header

from agricare.core import geometry


def to_stamp(t_s: float) -> Time:
    """Float seconds -> builtin_interfaces/Time (t >= 0)."""
    if not math.isfinite(t_s) or t_s < 0:
        raise ValueError(f"time {t_s!r} is not a finite non-negative number of seconds")
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def from_stamp(stamp) -> float:
    """builtin_interfaces/Time (or rclpy Time) -> float seconds."""
    if hasattr(stamp, "nanoseconds"):
        return stamp.nanoseconds * 1e-9
    return stamp.sec + stamp.nanosec * 1e-9


def header(t_s: float, frame_id: str) -> Header:
    return Header(stamp=to_stamp(t_s), frame_id=frame_id)


def yaw_to_quaternion_msg(yaw_rad: float) -> Quaternion:
    w, x, y, z = geometry.yaw_to_quat(yaw_rad)
    return Quaternion(w=float(w), x=float(x), y=float(y), z=float(z))


def rpy_to_quaternion_msg(roll_rad: float, pitch_rad: float, yaw_rad: float) -> Quaternion:
    w, x, y, z = geometry.rpy_to_quat(roll_rad, pitch_rad, yaw_rad)
    return Quaternion(w=float(w), x=float(x), y=float(y), z=float(z))


def quaternion_msg_to_yaw(q: Quaternion) -> float:
    return geometry.quat_to_yaw((q.w, q.x, q.y, q.z))


def quaternion_msg_to_rpy(q: Quaternion) -> tuple[float, float, float]:
    return geometry.quat_to_rpy((q.w, q.x, q.y, q.z))


def pose_to_xyyaw(pose: Pose) -> np.ndarray:
    """geometry_msgs/Pose -> array (3,) ``[x_m, y_m, yaw_rad]``."""
    return np.array([pose.position.x, pose.position.y, quaternion_msg_to_yaw(pose.orientation)])


def xyyaw_to_pose(x_m: float, y_m: float, yaw_rad: float) -> Pose:
    p = Pose()
    p.position.x = float(x_m)
    p.position.y = float(y_m)
    p.orientation = yaw_to_quaternion_msg(float(yaw_rad))
    return p


def path_to_array(path: Path) -> np.ndarray:
    """nav_msgs/Path -> array (N, 3) of ``[x_m, y_m, yaw_rad]``."""
    if not path.poses:
        return np.zeros((0, 3))
    return np.array([pose_to_xyyaw(ps.pose) for ps in path.poses])


def array_to_path(arr, frame_id: str, stamp) -> Path:
    """Array (N, 2) or (N, 3) -> nav_msgs/Path. Without yaw, yaw follows the path direction."""
    a = np.asarray(arr, dtype=float)
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"path array must have shape (N, 2) or (N, 3), got {a.shape}")
    if a.shape[1] == 2:
        d = np.diff(a, axis=0, append=a[-1:] + (a[-1:] - a[-2:-1] if len(a) > 1 else [[1.0, 0.0]]))
        yaw = np.arctan2(d[:, 1], d[:, 0])
        a = np.column_stack([a, yaw])
    if not isinstance(stamp, Time):
        stamp = to_stamp(float(stamp))
    msg = Path()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    for x, y, yaw in a[:, :3]:
        ps = PoseStamped()
        ps.header = msg.header
        ps.pose = xyyaw_to_pose(x, y, yaw)
        msg.poses.append(ps)
    return msg


def twist_stamped(v_mps: float, w_radps: float, stamp, frame_id: str = "base_link") -> TwistStamped:
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp if isinstance(stamp, Time) else to_stamp(float(stamp))
    msg.twist.linear.x = float(v_mps)
    msg.twist.angular.z = float(w_radps)
    return msg


_ENCODINGS = {"bgr8": 3, "rgb8": 3, "mono8": 1, "bgra8": 4, "rgba8": 4}


def image_to_bgr(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 BGR. Raises ValueError for unsupported or corrupt images."""
    enc = msg.encoding.lower()
    if enc not in _ENCODINGS:
        raise ValueError(f"unsupported image encoding {msg.encoding!r} (bgr8, rgb8, mono8, bgra8, rgba8)")
    ch = _ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f"empty image {w}x{h}")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if step < w * ch or data.size < h * step:
        raise ValueError(f"image data too short: {data.size} bytes for {w}x{h} {enc} step {step}")
    img = data[: h * step].reshape(h, step)[:, : w * ch].reshape(h, w, ch)
    if enc == "bgr8":
        return img.copy()
    if enc == "rgb8":
        return img[:, :, ::-1].copy()
    if enc == "mono8":
        return np.repeat(img, 3, axis=2)
    if enc == "bgra8":
        return img[:, :, :3].copy()
    return img[:, :, 2::-1].copy()


def bgr_to_image(arr: np.ndarray, stamp, frame_id: str) -> Image:
    a = np.ascontiguousarray(arr, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) BGR array, got shape {a.shape}")
    msg = Image()
    msg.header.stamp = stamp if isinstance(stamp, Time) else to_stamp(float(stamp))
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = int(a.shape[1] * 3)
    msg.data = a.tobytes()
    return msg


def scan_valid_mask(scan: LaserScan) -> np.ndarray:
    """REP-117: a range is a valid return when finite and inside [range_min, range_max]."""
    r = np.asarray(scan.ranges, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(r) & (r >= scan.range_min) & (r <= scan.range_max)


def scan_to_points(scan: LaserScan) -> np.ndarray:
    """Valid scan returns as points (N, 2) in the scan frame."""
    r = np.asarray(scan.ranges, dtype=float)
    ang = scan.angle_min + scan.angle_increment * np.arange(r.size)
    m = scan_valid_mask(scan)
    return np.column_stack([r[m] * np.cos(ang[m]), r[m] * np.sin(ang[m])])


def polygon_to_array(poly: Polygon) -> np.ndarray:
    return np.array([[p.x, p.y] for p in poly.points], dtype=float).reshape(-1, 2)


def array_to_polygon(arr) -> Polygon:
    a = np.asarray(arr, dtype=float).reshape(-1, 2)
    return Polygon(points=[Point32(x=float(x), y=float(y), z=0.0) for x, y in a])


def site_request_to_dict(msg) -> dict:
    """agricare_interfaces/SiteRequest as a plain dict (``type, child, trip, place, xy, robot``): the fields
    the JSON string of earlier versions carried, for consumers that log or forward it."""
    return {"type": msg.type, "child": msg.child, "trip": msg.trip, "place": msg.place,
            "xy": [float(msg.position.x), float(msg.position.y)], "robot": msg.robot}


def controller_status_to_dict(msg) -> dict:
    """agricare_interfaces/ControllerStatus as a plain dict (the keys of the earlier JSON status)."""
    return {"state": msg.state, "cross_track_m": float(msg.cross_track_m), "progress": float(msg.progress),
            "distance_to_goal_m": float(msg.distance_to_goal_m), "target_index": int(msg.target_index),
            "section": int(msg.section), "direction": int(msg.direction), "message": msg.message}


def plan_dict_to_msg(plan: dict, stamp=None):
    """A dispatch plan (``{"revision", "reason", "solution": <agricare dispatch JSON>, "meta": {request:
    {child, guardians, pickup_place, dropoff_place, pickup_marker, dropoff_marker}}}``) as an unsigned
    agricare_interfaces/DispatchPlan."""
    from agricare_interfaces.msg import DispatchPlan, DispatchRequest, DispatchRoute, DispatchStop

    sol = plan["solution"]
    msg = DispatchPlan(revision=int(plan["revision"]), reason=str(plan.get("reason", "")),
                       distance_m=float(sol.get("distance_m", 0.0)))
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = "map"
    for vid, stops in sol["routes"].items():
        route = DispatchRoute(vehicle=str(vid))
        for st in stops:
            s = DispatchStop(request=str(st["request"]), action=str(st["action"]), arrival_s=float(st["arrival_s"]),
                             start_s=float(st["start_s"]))
            s.position.x, s.position.y = float(st["xy"][0]), float(st["xy"][1])
            route.stops.append(s)
        msg.routes.append(route)
    for rid, m in (plan.get("meta") or {}).items():
        msg.requests.append(DispatchRequest(
            request=str(rid), child=str(m.get("child", "")), guardians=[str(g) for g in m.get("guardians") or []],
            pickup_place=str(m.get("pickup_place", "")), dropoff_place=str(m.get("dropoff_place", "")),
            pickup_marker=int(m.get("pickup_marker", -1)), dropoff_marker=int(m.get("dropoff_marker", -1))))
    msg.unserved_requests = [str(u["request"]) for u in sol.get("unserved", [])]
    msg.unserved_reasons = [str(u["reason"]) for u in sol.get("unserved", [])]
    return msg


def plan_msg_to_dict(msg) -> dict:
    """agricare_interfaces/DispatchPlan as the plan dict of :func:`plan_dict_to_msg` (what
    :func:`agricare.core.missions.care.stops_from_plan` reads). Raises ValueError for an inconsistent plan
    (non-finite times or positions, unknown stop actions, a vehicle twice, unserved lists of unequal length)."""
    routes = {}
    for r in msg.routes:
        if r.vehicle in routes:
            raise ValueError(f"vehicle {r.vehicle!r} has two routes")
        stops = []
        for s in r.stops:
            if s.action not in ("pickup", "dropoff"):
                raise ValueError(f"stop {s.request!r}: action {s.action[:20]!r} is not pickup/dropoff")
            vals = (s.arrival_s, s.start_s, s.position.x, s.position.y)
            if not all(math.isfinite(v) for v in vals):
                raise ValueError(f"stop {s.request!r}: non-finite time or position")
            stops.append({"request": s.request, "action": s.action, "arrival_s": s.arrival_s, "start_s": s.start_s,
                          "xy": [s.position.x, s.position.y]})
        routes[r.vehicle] = stops
    if len(msg.unserved_requests) != len(msg.unserved_reasons):
        raise ValueError("unserved_requests and unserved_reasons differ in length")
    meta = {}
    for q in msg.requests:
        m = {"child": q.child, "guardians": list(q.guardians), "pickup_place": q.pickup_place,
             "dropoff_place": q.dropoff_place}
        if q.pickup_marker >= 0:
            m["pickup_marker"] = int(q.pickup_marker)
        if q.dropoff_marker >= 0:
            m["dropoff_marker"] = int(q.dropoff_marker)
        meta[q.request] = m
    return {"revision": int(msg.revision), "reason": msg.reason, "stamp_s": from_stamp(msg.header.stamp),
            "solution": {"routes": routes, "distance_m": float(msg.distance_m),
                         "unserved": [{"request": r, "reason": w}
                                      for r, w in zip(msg.unserved_requests, msg.unserved_reasons, strict=True)]},
            "meta": meta}


def care_notification_to_dict(msg) -> dict:
    """agricare_interfaces/CareNotification as a plain dict (the keys of the earlier JSON notification)."""
    out = {"t_s": from_stamp(msg.header.stamp), "robot": msg.robot, "level": msg.level, "kind": msg.kind,
           "message": msg.message}
    if msg.trip:
        out["trip"] = msg.trip
    if msg.audit_head:
        out["audit_head"] = msg.audit_head
    if msg.requests:
        out["requests"] = list(msg.requests)
    return out
