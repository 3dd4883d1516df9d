"""Fast reception of the high-rate fixed-layout messages: ``nav_msgs/Odometry``, ``sensor_msgs/Imu``,
``geometry_msgs/TwistStamped``, ``geometry_msgs/PoseWithCovarianceStamped`` and ``sensor_msgs/LaserScan``; fast
publication of those and ``tf2_msgs/TFMessage``.

rclpy turns every received message into Python objects through the generated classes: an Odometry builds
~15 of them (each nested default built and then replaced) and two numpy arrays, ~100-200 us per message.
In the care day, ~360 Odometry messages a second reach the nodes (odometry and the fused estimate, each to
four or five subscribers), which was about a third of the scenario's CPU time.

:func:`fast_subscriptions` re-creates a node's subscriptions of these types as raw (serialized) ones and
decodes the CDR bytes here, with ``struct``, into light objects with the same field names
(``msg.header.stamp.sec``, ``msg.pose.pose.position.x``, ``msg.pose.covariance`` as a float64 array, ...).
Same topic, same type, same QoS; only the Python objects the callbacks receive are lighter. A payload that
is not plain little-endian CDR (XCDR1) is decoded by rclpy as before, so nothing depends on the middleware's
encoding. Callbacks that keep a message and publish it again, or test ``isinstance``, must not be converted:
only the nodes' own subscriptions of the listed types are, by the embedded runner and ``run_node``.
A LaserScan's ``ranges`` / ``intensities`` arrive as float32 numpy arrays (rclpy gives ``array.array('f')``
of the same values); the scan callbacks read them through ``np.asarray`` only.

Publishing: the ``*_cdr`` functions build the serialized message (plain little-endian CDR, what rclpy's
``serialize_message`` makes of the same message, padding zeroed) for ``Publisher.publish(bytes)``, which skips
building the Python message objects and converting them back (a LaserScan ~100 us to build from a list of
ranges, an Imu ~50 us, a TwistStamped ~30 us, each plus ~20 us to serialise). ``test_ros_fastmsg.py`` checks
that rclpy's own deserialiser reads each one as the message built field by field.
"""

from __future__ import annotations

import struct

import numpy as np

_ENCAP_CDR_LE = b"\x00\x01"
_U32 = struct.Struct("<I")
_STAMP = struct.Struct("<iI")


class _Obj:
    """A record of named fields."""

    __slots__ = ()

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def _record(name, fields):
    """A slotted class ``name(*fields)`` (its ``__init__`` assigns the fields one by one, no loop)."""
    args = ", ".join(fields)
    body = "".join(f"\n    self.{f} = {f}" for f in fields)
    scope: dict = {}
    exec(f"def __init__(self, {args}):{body}", scope)   # noqa: S102 - a fixed template over fixed field names
    return type(name, (_Obj,), {"__slots__": fields, "__init__": scope["__init__"]})


Time = _record("Time", ("sec", "nanosec"))
Header = _record("Header", ("stamp", "frame_id"))
Vector3 = _record("Vector3", ("x", "y", "z"))
Quaternion = _record("Quaternion", ("x", "y", "z", "w"))
Pose = _record("Pose", ("position", "orientation"))
PoseWithCovariance = _record("PoseWithCovariance", ("pose", "covariance"))
Twist = _record("Twist", ("linear", "angular"))
TwistWithCovariance = _record("TwistWithCovariance", ("twist", "covariance"))
Odometry = _record("Odometry", ("header", "child_frame_id", "pose", "twist"))
Imu = _record("Imu", ("header", "orientation", "orientation_covariance", "angular_velocity",
                      "angular_velocity_covariance", "linear_acceleration", "linear_acceleration_covariance"))
TwistStamped = _record("TwistStamped", ("header", "twist"))
PoseWithCovarianceStamped = _record("PoseWithCovarianceStamped", ("header", "pose"))
KeyValue = _record("KeyValue", ("key", "value"))
DiagnosticStatus = _record("DiagnosticStatus", ("level", "name", "message", "hardware_id", "values"))
DiagnosticArray = _record("DiagnosticArray", ("header", "status"))
Point = Vector3
TrackedObject = _record("TrackedObject", ("id", "position", "velocity", "radius_m", "is_person", "confidence"))
TrackedObjectArray = _record("TrackedObjectArray", ("header", "objects"))
LaserScan = _record("LaserScan", ("header", "angle_min", "angle_max", "angle_increment", "time_increment",
                                  "scan_time", "range_min", "range_max", "ranges", "intensities"))


def _string(data, off):
    """CDR string at payload offset ``off`` (4-aligned length incl. the NUL) -> (str, next offset)."""
    off = (off + 3) & ~3
    (n,) = _U32.unpack_from(data, 4 + off)
    start = 4 + off + 4
    return bytes(data[start:start + max(n - 1, 0)]).decode("utf-8"), off + 4 + n


def _header(data):
    sec, nsec = _STAMP.unpack_from(data, 4)
    frame, off = _string(data, 8)
    return Header(Time(sec, nsec), frame), off


def _doubles(data, off, n):
    off = (off + 7) & ~7
    return np.frombuffer(data, dtype="<f8", count=n, offset=4 + off).copy()


def decode_odometry(data):
    header, off = _header(data)
    child, off = _string(data, off)
    d = _doubles(data, off, 85)
    pose = PoseWithCovariance(Pose(Vector3(*d[0:3].tolist()), Quaternion(*d[3:7].tolist())), d[7:43])
    twist = TwistWithCovariance(Twist(Vector3(*d[43:46].tolist()), Vector3(*d[46:49].tolist())), d[49:85])
    return Odometry(header, child, pose, twist)


def decode_imu(data):
    header, off = _header(data)
    d = _doubles(data, off, 37)
    return Imu(header, Quaternion(*d[0:4].tolist()), d[4:13], Vector3(*d[13:16].tolist()), d[16:25],
               Vector3(*d[25:28].tolist()), d[28:37])


def decode_pose_with_covariance_stamped(data):
    header, off = _header(data)
    d = _doubles(data, off, 43)
    return PoseWithCovarianceStamped(header, PoseWithCovariance(Pose(Vector3(*d[0:3].tolist()),
                                                                     Quaternion(*d[3:7].tolist())), d[7:43]))


def decode_diagnostic_array(data):
    """``diagnostic_msgs/DiagnosticArray``: ``level`` as one byte (``bytes``, as rclpy gives it), the strings, the
    key-values. Not in :func:`decoders` (nodes keep rclpy's objects): the runner reads every ``/diagnostics``
    message of a run with it, ~50 a second in the care day."""
    header, off = _header(data)
    off = (off + 3) & ~3
    (n,) = _U32.unpack_from(data, 4 + off)
    off += 4
    status = []
    for _ in range(n):
        level = bytes(data[4 + off:5 + off])
        name, off = _string(data, off + 1)
        message, off = _string(data, off)
        hardware_id, off = _string(data, off)
        off = (off + 3) & ~3
        (m,) = _U32.unpack_from(data, 4 + off)
        off += 4
        values = []
        for _ in range(m):
            key, off = _string(data, off)
            value, off = _string(data, off)
            values.append(KeyValue(key, value))
        status.append(DiagnosticStatus(level, name, message, hardware_id, values))
    return DiagnosticArray(header, status)


def decode_twist_stamped(data):
    header, off = _header(data)
    v = struct.unpack_from("<6d", data, 4 + ((off + 7) & ~7))
    return TwistStamped(header, Twist(Vector3(*v[0:3]), Vector3(*v[3:6])))


_SCAN_META = struct.Struct("<7f")


def _floats32(data, off):
    """CDR ``float32[]`` at payload offset ``off`` -> (float32 array, next offset)."""
    off = (off + 3) & ~3
    (n,) = _U32.unpack_from(data, 4 + off)
    return np.frombuffer(data, dtype="<f4", count=n, offset=4 + off + 4).copy(), off + 4 + 4 * n


def decode_laser_scan(data):
    header, off = _header(data)
    off = (off + 3) & ~3
    meta = _SCAN_META.unpack_from(data, 4 + off)
    ranges, off = _floats32(data, off + 28)
    intensities, _ = _floats32(data, off)
    return LaserScan(header, *meta, ranges, intensities)


_OBJECT = struct.Struct("<I4x7d?7xd")   # id, (pad), position, velocity, radius_m, is_person, (pad), confidence


def decode_tracked_objects(data):
    """``agricare_interfaces/TrackedObjectArray`` (each object 72 bytes, 8-aligned after its ``id``)."""
    header, off = _header(data)
    off = (off + 3) & ~3
    (n,) = _U32.unpack_from(data, 4 + off)
    off += 4
    objects = []
    for _ in range(n):
        off = (off + 3) & ~3
        if off & 7:        # the doubles after the id start 8-aligned: the id sits 4 bytes before them
            oid, px, py, pz, vx, vy, vz, radius, person, conf = struct.unpack_from("<I7d?7xd", data, 4 + off)
            off += 4 + 56 + 8 + 8
        else:
            oid, px, py, pz, vx, vy, vz, radius, person, conf = _OBJECT.unpack_from(data, 4 + off)
            off += _OBJECT.size
        objects.append(TrackedObject(oid, Point(px, py, pz), Vector3(vx, vy, vz), radius, person, conf))
    return TrackedObjectArray(header, objects)


def decoders():
    from geometry_msgs.msg import PoseWithCovarianceStamped as PoseWithCovarianceStampedMsg
    from geometry_msgs.msg import TwistStamped as TwistStampedMsg
    from nav_msgs.msg import Odometry as OdometryMsg
    from sensor_msgs.msg import Imu as ImuMsg
    from sensor_msgs.msg import LaserScan as LaserScanMsg

    table = {OdometryMsg: decode_odometry, ImuMsg: decode_imu, TwistStampedMsg: decode_twist_stamped,
             LaserScanMsg: decode_laser_scan, PoseWithCovarianceStampedMsg: decode_pose_with_covariance_stamped}
    try:
        from agricare_interfaces.msg import TrackedObjectArray as TrackedObjectArrayMsg
    except ImportError:   # interfaces not built: those subscriptions stay rclpy's
        return table
    table[TrackedObjectArrayMsg] = decode_tracked_objects
    return table


def decoder(msg_type, fast):
    """bytes -> message: ``fast`` for plain little-endian CDR, rclpy's deserialiser for anything else."""
    from rclpy.serialization import deserialize_message

    def decode(data):
        if data[:2] == _ENCAP_CDR_LE:
            return fast(data)
        return deserialize_message(data, msg_type)

    return decode


def fast_subscriptions(node) -> int:
    """Re-create ``node``'s subscriptions of the types :func:`decoders` lists as raw ones with the fast decoder
    (same topic, QoS and callback group). Returns how many. Call before the callbacks are wrapped (guards):
    a malformed payload then raises inside the guard and is reported like any bad message."""
    table = decoders()
    n = 0
    for sub in list(getattr(node, "subscriptions", [])):
        fast = table.get(sub.msg_type)
        if fast is None or sub.raw:
            continue
        decode, cb = decoder(sub.msg_type, fast), sub.callback
        topic, qos, group, msg_type = sub.topic_name, sub.qos_profile, sub.callback_group, sub.msg_type
        node.destroy_subscription(sub)
        node.create_subscription(msg_type, topic, lambda data, cb=cb, decode=decode: cb(decode(data)), qos,
                                 callback_group=group, raw=True)
        n += 1
    return n


def fast_timers(node) -> int:
    """Give each of ``node``'s timer callbacks a ready-made signature. rclpy looks at a timer callback's
    signature every time the timer fires (it passes a ``TimerInfo`` to a callback that asks for one), ~40 us per
    call through ``inspect`` for a bound method: with ~60 timer calls per simulated second per robot graph, about
    2 % of a simulated run. A callback that takes no ``TimerInfo`` is wrapped in a plain function whose
    ``__signature__`` says so (``inspect`` returns it at once); the call itself is unchanged. Coroutine callbacks
    and those asking for ``TimerInfo`` are left alone. Returns how many were wrapped."""
    import inspect

    from rclpy.timer import TimerInfo

    n = 0
    for tmr in list(getattr(node, "timers", [])):
        cb = tmr.callback
        if cb is None or getattr(cb, "_agricare_fast_timer", False) or inspect.iscoroutinefunction(cb):
            continue
        try:
            params = inspect.signature(cb).parameters.values()
        except (TypeError, ValueError):
            continue
        if any(p.annotation == TimerInfo for p in params):
            continue

        def call(cb=cb):
            return cb()

        call.__signature__ = inspect.Signature()
        call._agricare_fast_timer = True
        tmr.callback = call
        n += 1
    return n


# ------------------------------------------------------------------------------------------------ encoding
_ODOM_HEAD = b"\x00\x01\x00\x00"


def _pack_string(parts: list, off: int, s: str) -> int:
    """Append a CDR string at payload offset ``off`` (4-aligned); returns the next offset."""
    pad = (-off) & 3
    raw = s.encode("utf-8") + b"\x00"
    parts.append(b"\x00" * pad + _U32.pack(len(raw)) + raw)
    return off + pad + 4 + len(raw)


def _stamp_pair(stamp) -> tuple[int, int]:
    """(sec, nanosec) of a stamp given as float seconds >= 0 (rounded to the nanosecond like ``to_stamp``) or
    as a ``builtin_interfaces/Time``."""
    if hasattr(stamp, "nanosec"):
        return int(stamp.sec), int(stamp.nanosec)
    ns = int(round(float(stamp) * 1e9))
    if ns < 0:
        raise ValueError(f"stamp {stamp!r} must be >= 0")
    return ns // 1_000_000_000, ns % 1_000_000_000


def _begin(stamp, frame_id: str) -> tuple[list, int]:
    """Encapsulation header + ``std_msgs/Header``: (parts, payload offset after it)."""
    parts = [_ODOM_HEAD, _STAMP.pack(*_stamp_pair(stamp))]
    return parts, _pack_string(parts, 8, frame_id)


def _align(parts: list, off: int, n: int) -> int:
    pad = (-off) % n
    if pad:
        parts.append(b"\x00" * pad)
    return off + pad


def odometry_cdr(t_s: float, frame_id: str, child_frame_id: str, position, orientation_xyzw, pose_covariance,
                 linear, angular, twist_covariance) -> bytes:
    """A ``nav_msgs/Odometry`` serialized as plain little-endian CDR, what rclpy's
    ``serialize_message`` makes of the same message, padding zeroed (Fast CDR leaves it uninitialised).
    Published with ``Publisher.publish(bytes)``, which skips building ~15 Python message objects and
    converting them back. ``t_s``: stamp, seconds >= 0 (rounded to the nanosecond like ``to_stamp``)."""
    parts, off = _begin(t_s, frame_id)
    off = _pack_string(parts, off, child_frame_id)
    parts.append(b"\x00" * ((-off) & 7))
    parts.append(_ODOM_DOUBLES.pack(*_floats(position), *_floats(orientation_xyzw), *_floats(pose_covariance),
                                    *_floats(linear), *_floats(angular), *_floats(twist_covariance)))
    return b"".join(parts)


_ODOM_DOUBLES = struct.Struct("<85d")


def _floats(x):
    return x.tolist() if hasattr(x, "tolist") else x


_TWIST_DOUBLES = struct.Struct("<6d")
_IMU_DOUBLES = struct.Struct("<37d")
_TF_DOUBLES = struct.Struct("<7d")


def header_cdr(stamp, frame_id: str) -> bytes:
    """``std_msgs/Header`` as CDR bytes (the safety heartbeat, 20 Hz per robot)."""
    return b"".join(_begin(stamp, frame_id)[0])


_PWCS_DOUBLES = struct.Struct("<43d")


def pose_with_covariance_stamped_cdr(stamp, frame_id: str, position, orientation_xyzw, covariance) -> bytes:
    """``geometry_msgs/PoseWithCovarianceStamped`` as CDR bytes (``covariance``: 36 values, row-major); the map
    localiser's pose, 10 Hz per robot."""
    parts, off = _begin(stamp, frame_id)
    _align(parts, off, 8)
    parts.append(_PWCS_DOUBLES.pack(*_floats(position), *_floats(orientation_xyzw), *_floats(covariance)))
    return b"".join(parts)


def twist_stamped_cdr(stamp, frame_id: str, v_mps: float, w_radps: float) -> bytes:
    """``geometry_msgs/TwistStamped`` (linear.x = ``v_mps``, angular.z = ``w_radps``, the rest 0) as CDR bytes,
    the message ``convert.twist_stamped`` builds. ``stamp``: float seconds or a ``builtin_interfaces/Time``."""
    parts, off = _begin(stamp, frame_id)
    _align(parts, off, 8)
    parts.append(_TWIST_DOUBLES.pack(float(v_mps), 0.0, 0.0, 0.0, 0.0, float(w_radps)))
    return b"".join(parts)


def imu_cdr(t_s: float, frame_id: str, orientation_xyzw, orientation_covariance, angular_velocity,
            angular_velocity_covariance, linear_acceleration, linear_acceleration_covariance) -> bytes:
    """``sensor_msgs/Imu`` as CDR bytes (covariances: 9 values each, row-major)."""
    parts, off = _begin(t_s, frame_id)
    _align(parts, off, 8)
    parts.append(_IMU_DOUBLES.pack(*_floats(orientation_xyzw), *_floats(orientation_covariance),
                                   *_floats(angular_velocity), *_floats(angular_velocity_covariance),
                                   *_floats(linear_acceleration), *_floats(linear_acceleration_covariance)))
    return b"".join(parts)


def laser_scan_cdr(t_s: float, frame_id: str, angle_min: float, angle_max: float, angle_increment: float,
                   time_increment: float, scan_time: float, range_min: float, range_max: float, ranges,
                   intensities=()) -> bytes:
    """``sensor_msgs/LaserScan`` as CDR bytes. The float64 values are rounded to the nearest float32 as rclpy
    does; a metadata value outside the float32 range raises (rclpy's setter too), a range beyond it becomes inf
    (rclpy's setter raises: the simulator's ranges are never near 3.4e38 m)."""
    parts, off = _begin(t_s, frame_id)
    off = _align(parts, off, 4)
    r = np.asarray(ranges, dtype=float).astype("<f4").tobytes()
    i = np.asarray(intensities, dtype=float).astype("<f4").tobytes()
    parts.append(_SCAN_META.pack(angle_min, angle_max, angle_increment, time_increment, scan_time, range_min,
                                 range_max))
    parts.append(_U32.pack(len(r) // 4) + r + _U32.pack(len(i) // 4) + i)
    return b"".join(parts)


def tf_cdr(transforms) -> bytes:
    """``tf2_msgs/TFMessage`` as CDR bytes; ``transforms``: ``(stamp, parent, child, (x, y, z), (qx, qy, qz,
    qw))`` each (stamp as in :func:`twist_stamped_cdr`)."""
    transforms = list(transforms)
    parts = [_ODOM_HEAD, _U32.pack(len(transforms))]
    off = 4
    for stamp, parent, child, xyz, q_xyzw in transforms:
        off = _align(parts, off, 4)
        parts.append(_STAMP.pack(*_stamp_pair(stamp)))
        off = _pack_string(parts, off + 8, parent)
        off = _pack_string(parts, off, child)
        off = _align(parts, off, 8)
        parts.append(_TF_DOUBLES.pack(*_floats(xyz), *_floats(q_xyzw)))
        off += 56
    return b"".join(parts)


def tracked_objects_cdr(stamp, frame_id: str, objects) -> bytes:
    """``agricare_interfaces/TrackedObjectArray`` as CDR bytes; ``objects``: ``(id, x, y, vx, vy, radius_m,
    is_person, confidence)`` each (position and velocity z = 0)."""
    parts, off = _begin(stamp, frame_id)
    objects = list(objects)
    off = _align(parts, off, 4)
    parts.append(_U32.pack(len(objects)))
    off += 4
    for oid, x, y, vx, vy, radius, person, conf in objects:
        off = _align(parts, off, 4)
        parts.append(_U32.pack(int(oid)))
        off = _align(parts, off + 4, 8)
        parts.append(struct.pack("<7d?7xd", float(x), float(y), 0.0, float(vx), float(vy), 0.0, float(radius),
                                 bool(person), float(conf)))
        off += 72
    return b"".join(parts)
