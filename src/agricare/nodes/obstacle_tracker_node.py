"""obstacle_tracker_node: LaserScan -> clusters -> tracked objects with velocity and a person flag.

Subscribes ``scan`` (sensor_msgs/LaserScan, sensor QoS; REP-117 invalid values are dropped) and, when
``track_in_odom`` is set, ``odom_topic`` (nav_msgs/Odometry) so that tracks live in the odometry frame and
the robot's own motion does not show up as object velocity (the laser pose on ``base_link`` is
``laser_x_m, laser_y_m, laser_yaw_rad``). Without odometry it tracks in the scan frame.

With ``publish_in_base`` (default) the tracks are published in ``base_frame_id`` (``base_link``, the frame
every consumer accepts without a transform): positions relative to the robot at the scan, velocities *over
ground* (tracked in the odometry frame, rotated into base_link axes). Without odometry the velocities are
relative to the moving robot (diagnostics warn). ``publish_in_base: false`` publishes in the tracking frame.

Publishes ``tracked_objects`` (agricare_interfaces/TrackedObjectArray); ``perception/obstacles/markers``
(visualization_msgs/MarkerArray: cylinder per track, orange = person, arrow = velocity); ``/diagnostics``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from geometry_msgs.msg import Point
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from visualization_msgs.msg import Marker, MarkerArray

from agricare.core.geometry import se2_compose, se2_inverse, se2_transform_points
from agricare.core.perception.obstacles import ClusterParams, MultiObjectTracker, TrackerParams, cluster_scan
from agricare.ros.convert import pose_to_xyyaw, to_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.fastmsg import tracked_objects_cdr
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params
from agricare.ros.mounts import MountFromDescription
from agricare.ros.qos import RELIABLE_QOS, SENSOR_QOS

from agricare_interfaces.msg import TrackedObjectArray

_CLUSTER_FIELDS = tuple(f.name for f in dataclasses.fields(ClusterParams))
_TRACKER_FIELDS = tuple(f.name for f in dataclasses.fields(TrackerParams))


@dataclasses.dataclass(frozen=True)
class ObstacleTrackerNodeParams:
    """obstacle_tracker_node parameters (clustering + tracking + frames)."""

    lambda_rad: float = math.radians(10.0)
    sigma_range_m: float = 0.02
    min_points: int = 2
    max_cluster_width_m: float = 3.0
    max_skipped_beams: int = 1
    accel_noise_mps2: float = 1.5
    meas_noise_m: float = 0.05
    gate_chi2: float = 9.21
    confirm_hits: int = 3
    max_coast_s: float = 1.0
    tentative_coast_s: float = 0.3
    init_speed_std_mps: float = 1.5
    person_min_width_m: float = 0.1
    person_max_width_m: float = 0.8
    max_tracks: int = 200
    track_in_odom: bool = True
    odom_topic: str = "odometry/filtered"
    odom_timeout_s: float = 0.5
    # lidar pose in base_link: NaN = from robot_description (the URDF); set = an override
    laser_x_m: float = math.nan
    laser_y_m: float = math.nan
    laser_yaw_rad: float = math.nan
    stale_timeout_s: float = 1.0
    publish_in_base: bool = True
    base_frame_id: str = "base_link"
    # the markers are for people watching (Foxglove, the recording): refreshed at most this often (node clock)
    # and at once when the set of tracks changes; 0 = with every scan. tracked_objects goes out with every scan.
    markers_period_s: float = 0.5

    def __post_init__(self):
        if not self.base_frame_id:
            raise ValueError("base_frame_id must not be empty")
        if not (math.isfinite(self.stale_timeout_s) and self.stale_timeout_s > 0):
            raise ValueError(f"stale_timeout_s must be > 0, got {self.stale_timeout_s}")
        if not (math.isfinite(self.odom_timeout_s) and self.odom_timeout_s > 0):
            raise ValueError(f"odom_timeout_s must be > 0, got {self.odom_timeout_s}")
        if not (math.isfinite(self.markers_period_s) and self.markers_period_s >= 0):
            raise ValueError(f"markers_period_s must be >= 0, got {self.markers_period_s}")
        self.cluster_params()
        self.tracker_params()

    def cluster_params(self) -> ClusterParams:
        return ClusterParams(**{k: getattr(self, k) for k in _CLUSTER_FIELDS})

    def tracker_params(self) -> TrackerParams:
        return TrackerParams(**{k: getattr(self, k) for k in _TRACKER_FIELDS})


class ObstacleTrackerNode(Node):
    """Lidar obstacle tracker node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("obstacle_tracker_node", **kwargs)
        self.params = load_params(self, ObstacleTrackerNodeParams)
        self.cparams = self.params.cluster_params()
        self.tracker = MultiObjectTracker(self.params.tracker_params())
        self.diag = Diagnostics(self, "obstacle_tracker")
        p = self.params
        self.laser_mount = MountFromDescription(self, "laser", (p.laser_x_m, p.laser_y_m, p.laser_yaw_rad),
                                                "laser_x_m/laser_y_m/laser_yaw_rad")
        self._odom = None
        self._odom_t = None
        self._odom_frame = "odom"
        self._frame = None
        self._last_scan_s = None
        self._markers_key = None     # (time, track ids and kinds) of the markers last published
        self._pub = self.create_publisher(TrackedObjectArray, "tracked_objects", RELIABLE_QOS)
        self._mk_pub = self.create_publisher(MarkerArray, "perception/obstacles/markers", RELIABLE_QOS)
        self.create_subscription(LaserScan, "scan", self._on_scan, SENSOR_QOS)
        if self.params.track_in_odom:
            self.create_subscription(Odometry, self.params.odom_topic, self._on_odom, SENSOR_QOS)
        self._timer = self.create_timer(1.0, self._on_timer)
        self.diag.stale("waiting for scan")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_odom(self, msg: Odometry) -> None:
        self._odom = pose_to_xyyaw(msg.pose.pose)
        self._odom_t = self._now_s()
        self._odom_frame = msg.header.frame_id or "odom"

    def _on_scan(self, scan: LaserScan) -> None:
        now = self._now_s()
        self._last_scan_s = now
        try:
            clusters = cluster_scan(scan.ranges, scan.angle_min, scan.angle_increment, scan.range_min,
                                    scan.range_max, self.cparams)
        except ValueError as exc:
            self.diag.warn(f"bad scan: {exc}")
            return
        cents = np.array([c.centroid for c in clusters]).reshape(-1, 2)
        widths = np.array([c.width_m for c in clusters])
        p = self.params
        frame = scan.header.frame_id or "laser"
        odom_ok = self._odom is not None and self._odom_t is not None and now - self._odom_t <= p.odom_timeout_s
        if self.laser_mount.value is None:
            self.diag.warn("laser mount unknown: waiting for robot_description")
            return
        T_base_laser = np.array(self.laser_mount.value)
        T_base_track = T_base_laser  # pose of the tracking frame in base_link
        if p.track_in_odom and odom_ok:
            T = se2_compose(self._odom, T_base_laser)
            cents = se2_transform_points(T, cents) if len(cents) else cents
            frame = self._odom_frame
            T_base_track = se2_inverse(self._odom)
        if frame != self._frame:  # frame switched (odometry appeared/disappeared): start over
            self.tracker = MultiObjectTracker(self.params.tracker_params())
            self._frame = frame
        tracks = self.tracker.update(now, cents, widths)
        if p.publish_in_base:
            self._publish(tracks, now, p.base_frame_id, T_base_track)
        else:
            self._publish(tracks, now, frame)
        n_person = sum(1 for t in tracks if t.is_person)
        msg = "tracking" if not p.track_in_odom or odom_ok else "no odometry: tracking in the scan frame"
        (self.diag.ok if msg == "tracking" else self.diag.warn)(msg, clusters=len(clusters), tracks=len(tracks),
                                                                people=n_person, frame=frame)

    @staticmethod
    def _states(tracks, T_out_track) -> np.ndarray:
        """(N, 4) ``[x, y, vx, vy]`` of the tracks in the output frame (``T_out_track``: tracking frame pose)."""
        st = np.array([t.x[:4] for t in tracks], dtype=float).reshape(-1, 4)
        if T_out_track is not None and len(st):
            st[:, 0:2] = se2_transform_points(T_out_track, st[:, 0:2])
            c, s = math.cos(T_out_track[2]), math.sin(T_out_track[2])
            vx, vy = st[:, 2].copy(), st[:, 3].copy()
            st[:, 2], st[:, 3] = c * vx - s * vy, s * vx + c * vy
        return st

    def _publish(self, tracks, now, frame, T_out_track=None) -> None:
        mc = self.params.max_coast_s
        states = self._states(tracks, T_out_track)
        # serialized here (ros/fastmsg.py): the TrackedObjectArray these fields make, without the objects
        self._pub.publish(tracked_objects_cdr(now, frame, [
            (int(t.id), float(st[0]), float(st[1]), float(st[2]), float(st[3]), float(t.radius_m), bool(t.is_person),
             float(t.confidence(now, mc))) for t, st in zip(tracks, states)]))
        kinds = tuple((int(t.id), bool(t.is_person)) for t in tracks)
        last = self._markers_key
        if last is not None and kinds == last[1] and 0.0 <= now - last[0] < self.params.markers_period_s:
            return
        self._markers_key = (now, kinds)
        ma = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        ma.markers.append(clear)
        for t, st in zip(tracks, states):
            m = Marker()
            m.header.frame_id = frame
            m.header.stamp = to_stamp(now)
            m.ns = "obstacles"
            m.id = int(t.id) * 2
            m.type = Marker.CYLINDER
            m.pose.position.x, m.pose.position.y, m.pose.position.z = float(st[0]), float(st[1]), 0.5
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = max(0.1, 2 * float(t.radius_m))
            m.scale.z = 1.0
            m.color.a = 0.7
            m.color.r, m.color.g, m.color.b = (1.0, 0.5, 0.0) if t.is_person else (0.3, 0.3, 1.0)
            ma.markers.append(m)
            a = Marker()
            a.header = m.header
            a.ns = "obstacle_velocity"
            a.id = int(t.id) * 2 + 1
            a.type = Marker.ARROW
            a.scale.x, a.scale.y, a.scale.z = 0.05, 0.1, 0.1
            a.color.a, a.color.r = 1.0, 1.0
            a.points = [Point(x=float(st[0]), y=float(st[1]), z=0.5),
                        Point(x=float(st[0] + st[2]), y=float(st[1] + st[3]), z=0.5)]
            ma.markers.append(a)
        self._mk_pub.publish(ma)

    def _on_timer(self) -> None:
        now = self._now_s()
        if self._last_scan_s is None:
            self.diag.stale("no scan received yet")
        elif now - self._last_scan_s > self.params.stale_timeout_s:
            self.diag.stale(f"scan stale for {now - self._last_scan_s:.1f} s")


def main(args=None):
    return run_node(ObstacleTrackerNode, args)


if __name__ == "__main__":
    main()
