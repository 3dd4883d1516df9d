"""ekf_node: fuse wheel odometry, IMU and GNSS into ``odometry/filtered`` and ``map -> odom``.

Subscribes (sensor QoS)
    ``odom`` (nav_msgs/Odometry: twist -> speed / yaw rate; pose = ``odom -> base_link`` for the TF),
    ``imu/data`` (sensor_msgs/Imu: yaw rate; orientation when ``use_imu_orientation``),
    ``gnss/odometry`` (nav_msgs/Odometry in the map frame from ``navsat_node``),
    ``localization/pose`` (geometry_msgs/PoseWithCovarianceStamped, when ``use_pose``).
Publishes
    ``odometry/filtered`` (nav_msgs/Odometry, frame map, child base_link) at ``publish_rate_hz``,
    ``map -> odom`` on ``/tf`` (tf2_msgs/TFMessage; skipped with a one-time warning when tf2_msgs is not
    importable) so ``odom -> base_link`` from wheel odometry stays continuous, ``/diagnostics``
    (stale sources, rejected outliers, invalid and late measurements).

GNSS fixes that fail the Mahalanobis gate are counted (``rejected_gnss``); with ``gnss_reject_stop_s`` > 0
fixes gated out without a break for that long (a 50 m jump, a wrong fix) make the node publish nothing and
report ERROR until a fix passes the gate again.

When a source listed in ``required_sources`` goes stale (e.g. the map pose of ``map_localizer_node``, which
stops when the scans no longer fit the map) the node publishes nothing and reports ERROR: the controller and
the safety supervisor then stop the robot on their stale-pose rules.

Message covariances are used when valid (finite, > 0), else the ``default_*_std`` parameters. A clock
that jumps back (simulation restart, bag loop) resets the filter with a warning.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu

from agricare.core.geometry import yaw_to_quat
from agricare.core.localization.ekf import IV, IW, EkfParams, PlanarEkf, map_to_odom, variance_or_default
from agricare.ros.convert import from_stamp, pose_to_xyyaw, quaternion_msg_to_yaw, to_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.fastmsg import odometry_cdr, tf_cdr
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.node_main import run_node
from agricare.ros.mounts import MountFromDescription
from agricare.ros.params import load_params
from agricare.ros.qos import SENSOR_QOS, STATE_QOS


def make_tf_publisher(node):
    """A ``/tf`` publisher, or None (with a one-time warning) when tf2_msgs is not importable."""
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        node.get_logger().warning("tf2_msgs is not importable: map -> odom is not published on /tf")
        return None, None
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    return node.create_publisher(TFMessage, "/tf", qos), TFMessage


def transform_cdr(T_parent_child, t_s: float, parent: str, child: str) -> bytes:
    """``tf2_msgs/TFMessage`` with the one transform :func:`transform_msg` builds, serialized (ros/fastmsg.py):
    published at the estimate's rate, it costs ~80 us less than the message objects."""
    w, x, y, z = yaw_to_quat(float(T_parent_child[2]))
    return tf_cdr([(max(t_s, 0.0), parent, child, (float(T_parent_child[0]), float(T_parent_child[1]), 0.0),
                    (float(x), float(y), float(z), float(w)))])


def transform_msg(T_parent_child, t_s: float, parent: str, child: str):
    """geometry_msgs/TransformStamped of a planar pose (3,)."""
    from geometry_msgs.msg import TransformStamped

    from agricare.ros.convert import yaw_to_quaternion_msg
    msg = TransformStamped()
    msg.header.stamp = to_stamp(max(t_s, 0.0))
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform.translation.x = float(T_parent_child[0])
    msg.transform.translation.y = float(T_parent_child[1])
    msg.transform.rotation = yaw_to_quaternion_msg(float(T_parent_child[2]))
    return msg


class EkfNode(ManagedNode):
    """Planar EKF node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("ekf_node", **kwargs)
        self.params = load_params(self, EkfParams)
        p = self.params
        self.ekf = PlanarEkf(p)
        self.diag = Diagnostics(self, "ekf")
        # the GNSS antenna's lever arm: from the URDF (robot_description) unless gnss_antenna_offset_m is set
        self.antenna = MountFromDescription(self, "gnss", p.gnss_antenna_offset_m, "gnss_antenna_offset_m",
                                            on_change=self._on_antenna, compare=slice(0, 2))
        self._odom_pose = None          # (t, pose_in_odom (3,))
        self._last_now = None
        self._warned = set()
        self._gnss_rejected_since = None   # stamp of the first fix of the current run of gated-out fixes
        self._gnss_rejected_run = 0
        self._pub = self.create_publisher(Odometry, "odometry/filtered", STATE_QOS)
        self._tf_pub, self._TFMessage = make_tf_publisher(self) if p.publish_tf else (None, None)
        if p.use_odom:
            self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        if p.use_imu:
            self.create_subscription(Imu, "imu/data", self._on_imu, SENSOR_QOS)
        if p.use_gnss:
            self.create_subscription(Odometry, "gnss/odometry", self._on_gnss, SENSOR_QOS)
        if p.use_pose:
            self.create_subscription(PoseWithCovarianceStamped, "localization/pose", self._on_pose, SENSOR_QOS)
        self.create_timer(1.0 / p.publish_rate_hz, self._on_timer)
        from rclpy.clock import JumpThreshold
        from rclpy.duration import Duration
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1_000_000), on_clock_change=False),
            post_callback=self._on_clock_jump)
        self.diag.warn("waiting for a pose", sources=",".join(p.expected_sources))
        self.autostart()

    # ---------------------------------------------------------------- helpers
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self, header) -> float:
        t = from_stamp(header.stamp)
        return t if t > 0.0 else self._now_s()

    def _warn_once(self, key, text):
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _result(self, source, result):
        if result in ("invalid", "dropped_late"):
            self._warn_once((source, result), f"{source}: measurement {result} (further ones counted silently)")
        elif result == "clock_reset":
            self.get_logger().warning(f"{source}: stamp far in the past: clock jumped back, filter reset")

    # ----------------------------------------------------------------- inputs
    def _on_odom(self, msg: Odometry):
        p = self.params
        t = self._stamp(msg.header)
        tw, cov = msg.twist.twist, msg.twist.covariance
        R = np.diag([variance_or_default(cov[0], p.default_odom_speed_std_mps),
                     variance_or_default(cov[35], p.default_odom_yaw_rate_std_radps)])
        self._result("odom", self.ekf.update("odom", t, [tw.linear.x, tw.angular.z], R))
        pose = pose_to_xyyaw(msg.pose.pose) if _finite_pose(msg.pose.pose) else None
        if pose is not None and np.all(np.isfinite(pose)):
            self._odom_pose = (t, pose)

    def _on_imu(self, msg: Imu):
        p = self.params
        t = self._stamp(msg.header)
        var = variance_or_default(msg.angular_velocity_covariance[8], p.default_imu_yaw_rate_std_radps)
        self._result("imu_rate", self.ekf.update("imu_rate", t, [msg.angular_velocity.z], [[var]]))
        if p.use_imu_orientation and msg.orientation_covariance[0] != -1.0:
            q = msg.orientation
            if math.isfinite(q.w) and (q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z) > 0.5:
                yaw = quaternion_msg_to_yaw(q)
                var = variance_or_default(msg.orientation_covariance[8], p.default_imu_yaw_std_rad)
                self._result("imu_yaw", self.ekf.update("imu_yaw", t, [yaw], [[var]]))
            else:
                self.ekf.stats.invalid["imu_yaw"] += 1

    def _on_antenna(self, xyz):
        self.ekf.p = dataclasses.replace(self.ekf.p, gnss_antenna_offset_m=tuple(float(v) for v in xyz[:2]))

    def _on_gnss(self, msg: Odometry):
        if self.antenna.value is None:
            self._warn_once("gnss_mount", "GNSS antenna mount unknown (no robot_description yet): fixes ignored")
            return
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            self._warn_once("gnss_frame", f"gnss/odometry in frame '{msg.header.frame_id}', expected "
                                          f"'{self.params.map_frame}': ignored")
            return
        self._position("gnss", msg.header, msg.pose)

    def _on_pose(self, msg: PoseWithCovarianceStamped):
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            self._warn_once("pose_frame", f"localization/pose in frame '{msg.header.frame_id}': ignored")
            return
        self._position("pose", msg.header, msg.pose)

    def _position(self, source, header, pose_cov):
        t = self._stamp(header)
        c = np.asarray(pose_cov.covariance, dtype=float).reshape(6, 6)[:2, :2]
        std = self.params.default_gnss_std_m
        if not (np.all(np.isfinite(c)) and c[0, 0] > 0 and c[1, 1] > 0):
            c = np.eye(2) * std ** 2
        z = [pose_cov.pose.position.x, pose_cov.pose.position.y]
        result = self.ekf.update(source, t, z, c)
        self._result(source, result)
        if source == "gnss":
            if result == "rejected":
                if self._gnss_rejected_since is None:
                    self._gnss_rejected_since = t
                self._gnss_rejected_run += 1
            elif result == "accepted":
                self._gnss_rejected_since, self._gnss_rejected_run = None, 0

    # ----------------------------------------------------------------- output
    def _on_clock_jump(self, jump=None):
        delta = jump.delta.nanoseconds * 1e-9 if jump is not None else float("nan")
        self.get_logger().warning(f"clock jumped back by {-delta:.3f} s: filter reset")
        self.ekf.stats.clock_resets += 1
        self.ekf.reset()
        self._odom_pose = None
        self._gnss_rejected_since, self._gnss_rejected_run = None, 0

    def _on_timer(self):
        if not self.active:  # inactive localisation publishes no estimate (consumers see it stale)
            return
        p = self.params
        now = self._now_s()
        if self._last_now is not None and now < self._last_now - 1e-3:
            self._on_clock_jump()               # the jump callback did not catch it (wall clock)
        self._last_now = now
        stale = self.ekf.stale_sources(now, p.expected_sources)
        st = self.ekf.stats
        values = dict(rejected_gnss=st.rejected["gnss"], rejected_odom=st.rejected["odom"],
                      rejected_imu=st.rejected["imu_rate"], invalid=sum(st.invalid.values()),
                      dropped_late=sum(st.dropped_late.values()), clock_resets=st.clock_resets,
                      gnss_resets=st.gnss_resets)
        if not self.ekf.initialized:
            self.diag.warn("waiting for the initial pose (GNSS fix and heading)",
                           stale=",".join(sorted(stale)), **values)
            return
        missing = sorted(s for s in p.required_sources if s in stale)
        if missing:   # fail safe: no estimate rather than one the robot must not drive on
            self.diag.error("required source stale: " + ", ".join(missing) + " (no estimate published)",
                            **{f"age_{k}_s": f"{stale[k]:.2f}" for k in missing}, **values)
            return
        since = self._gnss_rejected_since
        if p.gnss_reject_stop_s > 0 and since is not None and now - since >= p.gnss_reject_stop_s:
            # GNSS and the odometry/IMU prediction disagree beyond the gate: which one lies is not known
            self.diag.error(f"GNSS inconsistent with the prediction for {now - since:.1f} s "
                            f"({self._gnss_rejected_run} fixes gated out): no estimate published",
                            gnss_rejected_for_s=f"{now - since:.2f}", **values)
            return
        x, P = self.ekf.predicted(max(now, self.ekf.t or now))
        self._pub.publish(self._odometry(x, P, max(now, 0.0)))
        if stale:
            ages = {f"age_{k}_s": ("never" if math.isinf(v) else f"{v:.2f}") for k, v in stale.items()}
            self.diag.warn("stale: " + ", ".join(sorted(stale)) + " (predicting)",
                           pos_std_m=f"{math.sqrt(max(P[0, 0], P[1, 1])):.3f}", **ages, **values)
        else:
            self.diag.ok("fusing", pos_std_m=f"{math.sqrt(max(P[0, 0], P[1, 1])):.3f}", **values)
        if self._tf_pub is not None and self._odom_pose is not None:
            t_odom, pose_odom = self._odom_pose
            xo, _ = self.ekf.predicted(t_odom)
            T = map_to_odom(xo[:3], pose_odom)
            self._tf_pub.publish(transform_cdr(T, t_odom, p.map_frame, p.odom_frame))

    def _odometry(self, x, P, t) -> bytes:
        """The estimate as a serialized nav_msgs/Odometry (built in ``ros/fastmsg``: the graph's busiest topic)."""
        p = self.params
        cov = np.zeros((6, 6))
        idx = [0, 1, 5]
        cov[np.ix_(idx, idx)] = P[:3, :3]
        cov[2, 2] = cov[3, 3] = cov[4, 4] = 1e6   # z, roll, pitch not estimated
        tcov = np.zeros((6, 6))
        tcov[0, 0], tcov[5, 5] = P[IV, IV], P[IW, IW]
        tcov[1, 1] = tcov[2, 2] = tcov[3, 3] = tcov[4, 4] = 1e6
        w, qx, qy, qz = yaw_to_quat(float(x[2]))
        return odometry_cdr(t, p.map_frame, p.base_frame, (float(x[0]), float(x[1]), 0.0),
                            (float(qx), float(qy), float(qz), float(w)), cov.ravel(),
                            (float(x[IV]), 0.0, 0.0), (0.0, 0.0, float(x[IW])), tcov.ravel())


def _finite_pose(pose) -> bool:
    q, o = pose.orientation, pose.position
    vals = (o.x, o.y, q.w, q.x, q.y, q.z)
    return all(math.isfinite(v) for v in vals) and (q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z) > 0.5


def main(args=None):
    return run_node(EkfNode, args)


if __name__ == "__main__":
    main()
