"""Fast CDR decoding/encoding of the high-rate messages (ros/fastmsg.py) against rclpy's own serialiser."""

import random

import numpy as np
import pytest

pytest.importorskip("rclpy")

from geometry_msgs.msg import TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import Imu  # noqa: E402

from agricare.ros import fastmsg  # noqa: E402
from agricare.ros.convert import to_stamp  # noqa: E402


def _odometry(rng):
    m = Odometry()
    m.header.stamp = to_stamp(rng.uniform(0.0, 5e4))
    m.header.frame_id = "m" * rng.randint(0, 9)
    m.child_frame_id = "bé" * rng.randint(0, 4)     # multi-byte UTF-8 shifts the alignment
    p = m.pose.pose
    p.position.x, p.position.y, p.position.z = (rng.uniform(-1e3, 1e3) for _ in range(3))
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (rng.uniform(-1, 1) for _ in range(4))
    m.pose.covariance = np.array([rng.uniform(-1, 1) for _ in range(36)])
    m.twist.covariance = np.array([rng.uniform(-1, 1) for _ in range(36)])
    t = m.twist.twist
    t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z = (rng.uniform(-3, 3) for _ in range(6))
    return m


def _same_odometry(a, b):
    pa, pb = a.pose.pose, b.pose.pose
    ta, tb = a.twist.twist, b.twist.twist
    return ((a.header.stamp.sec, a.header.stamp.nanosec, a.header.frame_id, a.child_frame_id)
            == (b.header.stamp.sec, b.header.stamp.nanosec, b.header.frame_id, b.child_frame_id)
            and all(getattr(pa.position, k) == getattr(pb.position, k) for k in "xyz")
            and all(getattr(pa.orientation, k) == getattr(pb.orientation, k) for k in "xyzw")
            and all(getattr(ta.linear, k) == getattr(tb.linear, k) and getattr(ta.angular, k) == getattr(tb.angular, k)
                    for k in "xyz")
            and np.array_equal(a.pose.covariance, b.pose.covariance)
            and np.array_equal(a.twist.covariance, b.twist.covariance))


def test_decoders_read_what_rclpy_reads():
    rng = random.Random(3)
    for _ in range(100):
        m = _odometry(rng)
        data = serialize_message(m)
        fast = fastmsg.decode_odometry(data)
        assert _same_odometry(fast, deserialize_message(data, Odometry))
        assert isinstance(fast.pose.pose.position.x, float) and fast.pose.covariance.shape == (36,)

        imu = Imu()
        imu.header.frame_id = "imu" * rng.randint(0, 3)
        imu.header.stamp = to_stamp(rng.uniform(0.0, 100.0))
        imu.orientation.z, imu.orientation.w = rng.uniform(-1, 1), rng.uniform(-1, 1)
        imu.angular_velocity.z, imu.linear_acceleration.x = rng.uniform(-2, 2), rng.uniform(-9, 9)
        imu.angular_velocity_covariance = np.array([rng.uniform(0, 1) for _ in range(9)])
        data = serialize_message(imu)
        f, r = fastmsg.decode_imu(data), deserialize_message(data, Imu)
        assert (f.header.frame_id, f.header.stamp.sec, f.header.stamp.nanosec) == \
            (r.header.frame_id, r.header.stamp.sec, r.header.stamp.nanosec)
        assert (f.orientation.z, f.orientation.w, f.angular_velocity.z, f.linear_acceleration.x) == \
            (r.orientation.z, r.orientation.w, r.angular_velocity.z, r.linear_acceleration.x)
        assert np.array_equal(f.angular_velocity_covariance, r.angular_velocity_covariance)

        tw = TwistStamped()
        tw.header.frame_id = "base" * rng.randint(0, 3)
        tw.twist.linear.x, tw.twist.angular.z = rng.uniform(-2, 2), rng.uniform(-1, 1)
        data = serialize_message(tw)
        f, r = fastmsg.decode_twist_stamped(data), deserialize_message(data, TwistStamped)
        assert (f.header.frame_id, f.twist.linear.x, f.twist.angular.z) == \
            (r.header.frame_id, r.twist.linear.x, r.twist.angular.z)


def test_encoder_makes_the_message_rclpy_makes():
    rng = random.Random(4)
    for _ in range(100):
        m = _odometry(rng)
        t = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
        p, tw = m.pose.pose, m.twist.twist
        data = fastmsg.odometry_cdr(
            t, m.header.frame_id, m.child_frame_id, (p.position.x, p.position.y, p.position.z),
            (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w), m.pose.covariance,
            (tw.linear.x, tw.linear.y, tw.linear.z), (tw.angular.x, tw.angular.y, tw.angular.z), m.twist.covariance)
        assert len(data) == len(serialize_message(m))
        back = deserialize_message(data, Odometry)
        assert abs((back.header.stamp.sec + back.header.stamp.nanosec * 1e-9) - t) < 1e-6
        back.header.stamp = m.header.stamp   # the float round trip may move the stamp by a nanosecond
        assert _same_odometry(back, m)
    with pytest.raises(ValueError):
        fastmsg.odometry_cdr(-1.0, "", "", (0, 0, 0), (0, 0, 0, 1), [0.0] * 36, (0, 0, 0), (0, 0, 0), [0.0] * 36)


def test_other_encodings_fall_back_to_rclpy(monkeypatch):
    import rclpy.serialization

    data = serialize_message(_odometry(random.Random(5)))
    seen = []
    monkeypatch.setattr(rclpy.serialization, "deserialize_message", lambda d, t: seen.append(("rclpy", d[:2])))
    decode = fastmsg.decoder(Odometry, lambda d: seen.append(("fast", d[:2])))
    decode(data)                              # plain little-endian CDR (what Fast DDS sends here)
    decode(b"\x00\x07\x00\x00" + data[4:])    # XCDR2 little-endian: rclpy's job
    decode(b"\x00\x00\x00\x00" + data[4:])    # big-endian CDR: rclpy's job
    assert seen == [("fast", b"\x00\x01"), ("rclpy", b"\x00\x07"), ("rclpy", b"\x00\x00")]


def test_fast_subscriptions_deliver_decoded_messages(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from agricare.ros.qos import SENSOR_QOS

    node = Node("fastmsg_sub", context=rclpy_context)
    pub_node = Node("fastmsg_pub", context=rclpy_context)
    got = []
    node.create_subscription(Odometry, "odom", got.append, SENSOR_QOS)
    assert fastmsg.fast_subscriptions(node) == 1
    assert [s.raw for s in node.subscriptions] == [True]
    pub = pub_node.create_publisher(Odometry, "odom", SENSOR_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(pub_node)
    try:
        m = _odometry(random.Random(6))
        raw = fastmsg.odometry_cdr(1.5, "odom", "base_link", (1.0, 2.0, 0.0), (0.0, 0.0, 0.0, 1.0), [0.0] * 36,
                                   (0.5, 0.0, 0.0), (0.0, 0.0, 0.1), [0.0] * 36)
        for _ in range(100):
            if len(got) >= 2:
                break
            pub.publish(m if not got else raw)
            ex.spin_once(timeout_sec=0.05)
        assert len(got) >= 2
        assert _same_odometry(got[0], m)
        assert (got[-1].header.frame_id, got[-1].pose.pose.position.y, got[-1].twist.twist.angular.z) == \
            ("odom", 2.0, 0.1)
    finally:
        ex.shutdown()
        node.destroy_node()
        pub_node.destroy_node()


def test_fast_timers_keep_the_calls_and_leave_timerinfo_callbacks_alone(rclpy_context):
    """Wrapped timer callbacks still fire (with no argument); one that asks for a TimerInfo still gets it."""
    import inspect

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.timer import TimerInfo

    from agricare.ros.fastmsg import fast_timers

    node = rclpy.create_node("fast_timer_test", context=rclpy_context)
    plain, infos = [], []

    def with_info(info: TimerInfo):
        infos.append(info)

    t_plain = node.create_timer(0.01, lambda: plain.append(1))
    t_info = node.create_timer(0.01, with_info)
    try:
        assert fast_timers(node) == 1 and fast_timers(node) == 0          # once only
        assert inspect.signature(t_plain.callback) == inspect.Signature() and t_info.callback is with_info
        ex = SingleThreadedExecutor(context=rclpy_context)
        ex.add_node(node)
        for _ in range(200):
            ex.spin_once(timeout_sec=0.01)
            if len(plain) >= 3 and len(infos) >= 3:
                break
        assert len(plain) >= 3 and len(infos) >= 3 and all(isinstance(i, TimerInfo) for i in infos)
        ex.shutdown()
    finally:
        node.destroy_node()


def _stamp_of(rng):
    return to_stamp(rng.uniform(0.0, 5e4))


def test_encoders_make_the_messages_rclpy_reads():
    """Each ``*_cdr`` encoder against the message built field by field: rclpy's deserialiser reads the bytes as
    that message (all fields equal), and the length is what rclpy's serialiser makes."""
    from geometry_msgs.msg import TransformStamped
    from sensor_msgs.msg import LaserScan
    from tf2_msgs.msg import TFMessage

    rng = random.Random(6)
    for _ in range(60):
        stamp = _stamp_of(rng)
        frame = "bé" * rng.randint(0, 5)    # multi-byte UTF-8 shifts the alignment
        v, w = rng.uniform(-3, 3), rng.uniform(-2, 2)
        tw = TwistStamped()
        tw.header.stamp, tw.header.frame_id = stamp, frame
        tw.twist.linear.x, tw.twist.angular.z = v, w
        for st in (stamp, stamp.sec + stamp.nanosec * 1e-9):
            data = fastmsg.twist_stamped_cdr(st, frame, v, w)
            back = deserialize_message(data, TwistStamped)
            if not isinstance(st, float):
                assert back == tw and len(data) == len(serialize_message(tw))
            else:   # float seconds: the stamp may move by a nanosecond
                assert abs(back.header.stamp.nanosec - stamp.nanosec) <= 1 and back.twist == tw.twist

        imu = Imu()
        imu.header.stamp, imu.header.frame_id = stamp, frame
        q = [rng.uniform(-1, 1) for _ in range(4)]
        imu.orientation.x, imu.orientation.y, imu.orientation.z, imu.orientation.w = q
        covs = [np.array([rng.uniform(-1, 1) for _ in range(9)]) for _ in range(3)]
        av, la = [rng.uniform(-2, 2) for _ in range(3)], [rng.uniform(-9, 9) for _ in range(3)]
        imu.orientation_covariance, imu.angular_velocity_covariance, imu.linear_acceleration_covariance = covs
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = av
        imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z = la
        data = fastmsg.imu_cdr(stamp, frame, q, covs[0], av, covs[1], la, covs[2])
        assert deserialize_message(data, Imu) == imu and len(data) == len(serialize_message(imu))

        n = rng.choice([0, 1, 7, 360])
        ranges = np.array([rng.choice([rng.uniform(0.0, 30.0), float("inf"), float("-inf")]) for _ in range(n)])
        inten = np.array([rng.uniform(0.0, 100.0) for _ in range(rng.choice([0, n]))])
        meta = [rng.uniform(-3.2, 3.2) for _ in range(7)]
        scan = LaserScan()
        scan.header.stamp, scan.header.frame_id = stamp, frame
        (scan.angle_min, scan.angle_max, scan.angle_increment, scan.time_increment, scan.scan_time, scan.range_min,
         scan.range_max) = meta
        scan.ranges, scan.intensities = ranges.tolist(), inten.tolist()
        data = fastmsg.laser_scan_cdr(stamp, frame, *meta, ranges, inten)
        ref = serialize_message(scan)    # float32 fields: compare with what rclpy's own round trip gives
        assert deserialize_message(data, LaserScan) == deserialize_message(ref, LaserScan) and len(data) == len(ref)
        # and the light decoder reads what rclpy reads, from rclpy's own bytes
        f, r = fastmsg.decode_laser_scan(ref), deserialize_message(ref, LaserScan)
        assert (f.header.stamp.sec, f.header.stamp.nanosec, f.header.frame_id) == \
            (r.header.stamp.sec, r.header.stamp.nanosec, r.header.frame_id)
        assert [getattr(f, k) for k in ("angle_min", "angle_max", "angle_increment", "time_increment", "scan_time",
                                        "range_min", "range_max")] == \
            [getattr(r, k) for k in ("angle_min", "angle_max", "angle_increment", "time_increment", "scan_time",
                                     "range_min", "range_max")]
        assert np.array_equal(np.asarray(f.ranges, dtype=float), np.asarray(r.ranges, dtype=float))
        assert np.array_equal(np.asarray(f.intensities, dtype=float), np.asarray(r.intensities, dtype=float))

        items, tfm = [], TFMessage()
        for _k in range(rng.randint(0, 3)):
            t = TransformStamped()
            t.header.stamp, t.header.frame_id = _stamp_of(rng), "p" * rng.randint(0, 6)
            t.child_frame_id = "c" * rng.randint(0, 6)
            xyz, qq = [rng.uniform(-9, 9) for _ in range(3)], [rng.uniform(-1, 1) for _ in range(4)]
            t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = xyz
            r_ = t.transform.rotation
            r_.x, r_.y, r_.z, r_.w = qq
            tfm.transforms.append(t)
            items.append((t.header.stamp, t.header.frame_id, t.child_frame_id, xyz, qq))
        data = fastmsg.tf_cdr(items)
        assert deserialize_message(data, TFMessage) == tfm and len(data) == len(serialize_message(tfm))
    with pytest.raises(ValueError):
        fastmsg.twist_stamped_cdr(-1.0, "", 0.0, 0.0)


def test_tracked_objects_encoder_and_decoder_match_rclpy():
    ai = pytest.importorskip("agricare_interfaces.msg")
    rng = random.Random(7)
    for _ in range(80):
        arr = ai.TrackedObjectArray()
        arr.header.stamp = _stamp_of(rng)
        arr.header.frame_id = "é" * rng.randint(0, 7)     # every alignment of the object sequence
        rows = []
        for _k in range(rng.randint(0, 5)):
            o = ai.TrackedObject()
            o.id = rng.randint(0, 2 ** 32 - 1)
            o.position.x, o.position.y = rng.uniform(-50, 50), rng.uniform(-50, 50)
            o.velocity.x, o.velocity.y = rng.uniform(-2, 2), rng.uniform(-2, 2)
            o.radius_m, o.is_person, o.confidence = rng.uniform(0, 2), rng.random() < 0.5, rng.random()
            arr.objects.append(o)
            rows.append((o.id, o.position.x, o.position.y, o.velocity.x, o.velocity.y, o.radius_m, o.is_person,
                         o.confidence))
        data = fastmsg.tracked_objects_cdr(arr.header.stamp, arr.header.frame_id, rows)
        assert deserialize_message(data, ai.TrackedObjectArray) == arr
        assert len(data) == len(serialize_message(arr))
        ref = serialize_message(arr)
        f = fastmsg.decode_tracked_objects(ref)
        assert (f.header.stamp.sec, f.header.stamp.nanosec, f.header.frame_id) == \
            (arr.header.stamp.sec, arr.header.stamp.nanosec, arr.header.frame_id)
        assert [(o.id, o.position.x, o.position.y, o.position.z, o.velocity.x, o.velocity.y, o.velocity.z, o.radius_m,
                 o.is_person, o.confidence) for o in f.objects] == \
            [(o.id, o.position.x, o.position.y, o.position.z, o.velocity.x, o.velocity.y, o.velocity.z, o.radius_m,
              o.is_person, o.confidence) for o in arr.objects]


def test_header_encoder_matches_rclpy():
    from std_msgs.msg import Header

    rng = random.Random(8)
    for _ in range(50):
        h = Header(stamp=_stamp_of(rng), frame_id="RUN" * rng.randint(0, 4) + "é" * rng.randint(0, 3))
        data = fastmsg.header_cdr(h.stamp, h.frame_id)
        assert deserialize_message(data, Header) == h and len(data) == len(serialize_message(h))


def test_pose_with_covariance_encoder_and_decoder_match_rclpy():
    """The map localiser's pose: its bytes are what rclpy reads as the message built field by field (same length
    as rclpy's own), and the light decoder reads rclpy's bytes as rclpy does."""
    from geometry_msgs.msg import PoseWithCovarianceStamped

    from agricare.nodes.map_localizer_node import pose_cdr, pose_msg

    rng = random.Random(9)
    for _ in range(60):
        t = rng.uniform(0.0, 5000.0)
        frame = "mé" * rng.randint(0, 5)    # multi-byte UTF-8 shifts the alignment
        xyyaw = [rng.uniform(-300, 300), rng.uniform(-300, 300), rng.uniform(-3.2, 3.2)]
        cov = np.array([rng.uniform(-1, 1) for _ in range(36)]).reshape(6, 6)
        ref = pose_msg(t, frame, xyyaw, cov)
        data = pose_cdr(t, frame, xyyaw, cov)
        assert deserialize_message(data, PoseWithCovarianceStamped) == ref
        assert len(data) == len(serialize_message(ref))
        raw = serialize_message(ref)
        f, r = fastmsg.decode_pose_with_covariance_stamped(raw), deserialize_message(raw, PoseWithCovarianceStamped)
        assert (f.header.stamp.sec, f.header.stamp.nanosec, f.header.frame_id) == \
            (r.header.stamp.sec, r.header.stamp.nanosec, r.header.frame_id)
        fp, rp = f.pose.pose, r.pose.pose
        assert [getattr(fp.position, k) for k in "xyz"] == [getattr(rp.position, k) for k in "xyz"]
        assert [getattr(fp.orientation, k) for k in "xyzw"] == [getattr(rp.orientation, k) for k in "xyzw"]
        assert np.array_equal(f.pose.covariance, r.pose.covariance) and f.pose.covariance.shape == (36,)


def test_diagnostic_array_decoder_reads_what_rclpy_reads():
    """The runner's /diagnostics decoder against rclpy's deserialiser on rclpy's own bytes: every status's level
    (one byte), name, message, hardware id and key-values, with multi-byte UTF-8 shifting the alignment."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    rng = random.Random(10)
    word = lambda: "é" * rng.randint(0, 2) + "x" * rng.randint(0, 7)   # noqa: E731
    for _ in range(80):
        arr = DiagnosticArray()
        arr.header.stamp, arr.header.frame_id = _stamp_of(rng), word()
        for _k in range(rng.randint(0, 4)):
            st = DiagnosticStatus(level=rng.choice([DiagnosticStatus.OK, DiagnosticStatus.WARN,
                                                    DiagnosticStatus.ERROR, DiagnosticStatus.STALE]),
                                  name=word(), message=word(), hardware_id=word())
            st.values = [KeyValue(key=word(), value=word()) for _ in range(rng.randint(0, 6))]
            arr.status.append(st)
        data = serialize_message(arr)
        f, r = fastmsg.decode_diagnostic_array(data), deserialize_message(data, DiagnosticArray)
        assert (f.header.stamp.sec, f.header.stamp.nanosec, f.header.frame_id) == \
            (r.header.stamp.sec, r.header.stamp.nanosec, r.header.frame_id)
        assert len(f.status) == len(r.status) == len(arr.status)
        for a, b in zip(f.status, r.status):
            assert (a.level, a.name, a.message, a.hardware_id) == (b.level, b.name, b.message, b.hardware_id)
            assert [(kv.key, kv.value) for kv in a.values] == [(kv.key, kv.value) for kv in b.values]


def test_runner_judges_decoded_diagnostics_as_before():
    """The runner's fault rule on what the light decoder gives: a node's ERROR after it once reported OK is a
    fault (once); before its first OK, or from the safety supervisor, it is not."""
    from types import SimpleNamespace

    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    from agricare.bringup.runner import EmbeddedRunner

    def arr(*statuses):
        a = DiagnosticArray()
        a.status = [DiagnosticStatus(level=lvl, name=name, message=msg) for lvl, name, msg in statuses]
        return fastmsg.decode_diagnostic_array(serialize_message(a))

    run = SimpleNamespace(_faults_closed=None, _diag_ok=set(), _fault_seen=set(), safety_faults=[], sim=None,
                          graph=SimpleNamespace(robots={"shuttle_1": None}))
    err, ok = DiagnosticStatus.ERROR, DiagnosticStatus.OK
    EmbeddedRunner._on_diagnostics(run, arr((err, "/shuttle_1/ekf_node: ekf", "starting")))
    assert run.safety_faults == []                              # not yet OK once: starting up
    EmbeddedRunner._on_diagnostics(run, arr((ok, "/shuttle_1/ekf_node: ekf", "fusing"),
                                            (ok, "/shuttle_1/safety_supervisor_node: safety", "RUN")))
    EmbeddedRunner._on_diagnostics(run, arr((err, "/shuttle_1/safety_supervisor_node: safety", "FAULT"),
                                            (err, "/shuttle_1/ekf_node: ekf", "required source stale: pose")))
    EmbeddedRunner._on_diagnostics(run, arr((err, "/shuttle_1/ekf_node: ekf", "again")))
    assert [f["fault"] for f in run.safety_faults] == ["/shuttle_1/ekf_node: required source stale: pose"]
