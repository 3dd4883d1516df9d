"""map_localizer_node: particle-filter localisation on an occupancy map (AMCL-style), ``map -> odom``.

Subscribes
    ``odom`` (nav_msgs/Odometry, sensor QoS: its pose is ``odom -> base_link``),
    ``scan`` (sensor_msgs/LaserScan, sensor QoS; the laser pose on base_link is ``laser_pose_in_base``),
    ``initialpose`` (geometry_msgs/PoseWithCovarianceStamped, reliable: (re)initialises the particles).
Publishes
    ``localization/pose`` (geometry_msgs/PoseWithCovarianceStamped, map frame) after each update,
    ``map -> odom`` on ``/tf`` (tf2_msgs/TFMessage; skipped with a one-time warning when not importable),
    ``map`` (nav_msgs/OccupancyGrid, latched), ``/diagnostics`` (particles, spread, converged, rate, match:
    the share of scan end points on a mapped surface).

When the scans stop fitting the map the node reports ERROR on ``/diagnostics`` and publishes no pose until a
new ``initialpose``; a localisation that needs the map pose then stops and the robot with it. Two checks:

- more than ``max_through_fraction`` of the beams pass through mapped walls, for ``low_match_updates`` updates
  in a row (the map is wrong, or the robot is not where the filter thinks; people and vehicles that are not on
  the map only shorten beams);
- the scans pull the estimate away from the odometry: the corrections the scans made over the last
  ``drift_window_m`` of travel (at most ``drift_window_s``) add up to more than ``max_drift_m`` +
  ``max_drift_per_m`` x distance. A map shifted away from the walls the robot sees (walls only on one side of a
  street, mapped too far away) is never passed through: the beams look shortened by unmapped things, and the
  filter slides the estimate onto the shifted map at the pace its motion noise allows. Odometry cannot slide
  like that (its error is a scale error along the track; heading is taken from the filter), so a steady pull
  is the map being wrong;
- over at least ``match_window_min_m`` of travel in that window, fewer than ``min_window_match`` of the end
  points lie on a mapped surface on average (a parked vehicle or a crowd hides the walls for a few metres,
  not for the whole window).

Nothing is published until an initial pose arrives (or ``initial_pose_known`` is set).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan

from agricare.core.geometry import se2_compose, se2_inverse, yaw_to_quat
from agricare.core.localization.particle_filter import ParticleFilter, ParticleFilterParams
from agricare.core.planning.grid import load_map
from agricare.nodes.ekf_node import make_tf_publisher, transform_cdr
from agricare.ros.convert import from_stamp, pose_to_xyyaw, to_stamp, xyyaw_to_pose
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.fastmsg import pose_with_covariance_stamped_cdr
from agricare.ros.mounts import MountFromDescription
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS


@dataclass(frozen=True)
class MapLocalizerParams(ParticleFilterParams):
    """map_localizer_node parameters: the filter's plus the node's."""

    map_yaml: str = "config/maps/town.yaml"
    # lidar pose in base_link [x, y, yaw]: NaN = from robot_description (the URDF); set = an override
    laser_pose_in_base: tuple[float, ...] = (math.nan, math.nan, math.nan)
    initial_pose_known: bool = False
    initial_pose_in_map: tuple[float, ...] = (0.0, 0.0, 0.0)
    publish_tf: bool = True
    publish_map: bool = True
    # the scan contradicts the map when more than this share of its beams pass through mapped walls (unmapped
    # people and vehicles only shorten beams); reported with the share of end points on a mapped surface
    max_through_fraction: float = 0.2
    low_match_updates: int = 5        # that many updates in a row without a fit: lost (latched until initialpose)
    max_update_interval_s: float = 0.5   # update (and publish) at least this often, also at a standstill
    # the scans' summed corrections over the last drift_window_m of travel (and drift_window_s) may move the
    # estimate off the odometry by at most max_drift_m + max_drift_per_m * distance; 0 = not checked
    max_drift_m: float = 0.6
    max_drift_per_m: float = 0.02
    # the scans fit the map poorly over the window: mean share of end points on the map below this (0 = off)
    min_window_match: float = 0.5
    match_window_min_m: float = 10.0
    drift_window_m: float = 20.0
    drift_window_s: float = 60.0
    # the particles' spread understates the error when few beams return (a few posts and a hedge can pull the
    # filter off by decimetres with a tight cloud): the published position std is at least
    # min_position_std_m * max_beams / returns, so a fusing filter leans on GNSS there
    min_position_std_m: float = 0.05
    # re-seed the particles from the fused estimate (EKF: odometry + IMU + GNSS) when they have spread over open
    # ground without returns and the fused estimate is sure of itself (GNSS under open sky); "" = never
    reseed_topic: str = ""
    reseed_spread_m: float = 0.5          # particle spread (std) above which the filter is re-seeded
    reseed_max_source_std_m: float = 0.2  # only from an estimate at least this certain

    def __post_init__(self):
        super().__post_init__()
        if not (0.0 < self.max_through_fraction <= 1.0):
            raise ValueError(f"max_through_fraction must be in (0, 1], got {self.max_through_fraction!r}")
        for name in ("reseed_spread_m", "reseed_max_source_std_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if not (math.isfinite(self.min_position_std_m) and self.min_position_std_m >= 0):
            raise ValueError(f"min_position_std_m must be >= 0, got {self.min_position_std_m!r}")
        if not (math.isfinite(self.max_update_interval_s) and self.max_update_interval_s > 0):
            raise ValueError(f"max_update_interval_s must be > 0, got {self.max_update_interval_s!r}")
        if not (0.0 <= self.min_window_match < 1.0):
            raise ValueError(f"min_window_match must be in [0, 1), got {self.min_window_match!r}")
        for name in ("max_drift_m", "max_drift_per_m", "drift_window_m", "drift_window_s", "match_window_min_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.low_match_updates, int) and self.low_match_updates >= 1):
            raise ValueError(f"low_match_updates must be an integer >= 1, got {self.low_match_updates!r}")
        if not self.map_yaml.strip():
            raise ValueError("map_yaml must name a map_server YAML file")
        pose = np.asarray(self.initial_pose_in_map, dtype=float)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)):
            raise ValueError("initial_pose_in_map must be 3 finite numbers [x, y, yaw]")


class MapLocalizerNode(Node):
    """Monte-Carlo localisation node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("map_localizer_node", **kwargs)
        self.params = load_params(self, MapLocalizerParams)
        p = self.params
        try:
            self.grid = load_map(p.map_yaml)
        except (ValueError, OSError) as exc:
            raise ParameterError(f"map_localizer_node: parameter 'map_yaml': {exc}") from exc
        self.pf = ParticleFilter(self.grid, p)
        self.diag = Diagnostics(self, "map_localizer")
        self.laser_mount = MountFromDescription(self, "laser", p.laser_pose_in_base, "laser_pose_in_base",
                                                on_change=self._on_laser_mount)
        self._odom = None                # (t, pose (3,))
        self._low_match = 0              # consecutive updates whose scan did not fit the map
        self._last_update_t = None       # stamp of the last filter update
        self.lost = False                # latched: the map does not match; no pose until a new initialpose
        self.lost_reason = ""
        self._lost_logged = False
        self._travel_m = 0.0             # odometry distance travelled
        self._corrections = collections.deque()   # (t_s, travel_m, estimate (3,), odom pose (3,), match) in the window
        self._matches = collections.deque()       # the matches of those that are not NaN, in the same order
        self.drift_m = 0.0               # how far the scans pulled the estimate off the odometry in the window (m)
        self.window_match = float("nan")  # mean share of end points on the map over the window
        self.update_ms = []
        self._angles_key, self._angles = None, None
        self._pose_pub = self.create_publisher(PoseWithCovarianceStamped, "localization/pose", SENSOR_QOS)
        self._tf_pub, self._TFMessage = make_tf_publisher(self) if p.publish_tf else (None, None)
        self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS)
        self.create_subscription(LaserScan, "scan", self._on_scan, SENSOR_QOS)
        self.create_subscription(PoseWithCovarianceStamped, "initialpose", self._on_initialpose, RELIABLE_QOS)
        self.reseeds = 0
        self._fused = None               # (pose (3,), cov (3, 3)) of the last fused estimate (reseed_topic)
        if p.reseed_topic:
            self.create_subscription(Odometry, p.reseed_topic, self._on_fused, SENSOR_QOS)
        if p.publish_map:
            self._map_pub = self.create_publisher(OccupancyGrid, "map", LATCHED_QOS)
            self._map_pub.publish(self._grid_msg())
        if p.initial_pose_known:
            self.pf.initialize(p.initial_pose_in_map)
        self.diag.warn("waiting for an initial pose on 'initialpose'")

    def _on_laser_mount(self, xyyaw):
        self.pf.p = dataclasses.replace(self.pf.p, laser_pose_in_base=tuple(xyyaw))

    def _grid_msg(self) -> OccupancyGrid:
        g = self.grid
        msg = OccupancyGrid()
        msg.header.frame_id = self.params.map_frame
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.info.resolution = float(g.resolution_m)
        msg.info.width, msg.info.height = g.width, g.height
        msg.info.origin.position.x, msg.info.origin.position.y = g.origin_xy
        msg.info.origin.orientation.w = 1.0
        data = np.zeros(g.occupied.shape, dtype=np.int8)
        data[g.unknown] = -1
        data[g.occupied] = 100
        msg.data = data.ravel().tobytes()
        return msg

    def _on_initialpose(self, msg: PoseWithCovarianceStamped):
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            self.get_logger().warning(f"initialpose in frame '{msg.header.frame_id}', expected "
                                      f"'{self.params.map_frame}': ignored")
            return
        pose = pose_to_xyyaw(msg.pose.pose)
        if not np.all(np.isfinite(pose)):
            self.diag.error("initialpose is NaN/inf: ignored")
            return
        c = np.asarray(msg.pose.covariance, dtype=float).reshape(6, 6)
        cov = c[np.ix_([0, 1, 5], [0, 1, 5])]
        self.pf.initialize(pose, cov)
        self._low_match, self.lost, self.lost_reason = 0, False, ""
        self._corrections.clear()
        self._matches.clear()
        self.get_logger().info(f"initial pose {np.round(pose, 2).tolist()}: {len(self.pf.particles)} particles")

    def _on_fused(self, msg: Odometry):
        if msg.header.frame_id and msg.header.frame_id != self.params.map_frame:
            return
        pose = pose_to_xyyaw(msg.pose.pose)
        c = np.asarray(msg.pose.covariance, dtype=float).reshape(6, 6)[np.ix_([0, 1, 5], [0, 1, 5])]
        if np.all(np.isfinite(pose)) and np.all(np.isfinite(c)):
            self._fused = (pose, c)

    def _maybe_reseed(self, cov) -> bool:
        """Re-seed spread particles around a certain fused estimate (never once lost: that needs an operator)."""
        p = self.params
        if self.lost or self._fused is None or math.sqrt(max(cov[0, 0], cov[1, 1])) <= p.reseed_spread_m:
            return False
        pose, c = self._fused
        if math.sqrt(max(c[0, 0], c[1, 1])) > p.reseed_max_source_std_m:
            return False
        self.pf.initialize(pose, c + np.diag([0.05 ** 2, 0.05 ** 2, 0.02 ** 2]))
        self._corrections.clear()   # the jump to the fused estimate is not a scan's pull
        self._matches.clear()
        self.reseeds += 1
        self.get_logger().info(f"particles spread to {math.sqrt(max(cov[0, 0], cov[1, 1])):.2f} m: re-seeded "
                               f"at the fused estimate {np.round(pose, 2).tolist()}")
        return True

    def _on_odom(self, msg: Odometry):
        pose = pose_to_xyyaw(msg.pose.pose)
        if not np.all(np.isfinite(pose)):
            self.diag.error("odom pose is NaN/inf")
            return
        t = from_stamp(msg.header.stamp)
        if self._odom is not None:
            self._travel_m += math.hypot(*(pose[:2] - self._odom[1][:2]))
        self._odom = (t, pose)
        if self.pf.initialized:
            self.pf.motion_update(pose)

    def _on_scan(self, msg: LaserScan):
        if not self.pf.initialized or self._odom is None:
            return
        if self.laser_mount.value is None:
            self.diag.warn("laser mount unknown: waiting for robot_description")
            return
        r = np.asarray(msg.ranges, dtype=float)
        key = (msg.angle_min, msg.angle_increment, len(r))
        if self._angles_key != key:    # the beam angles of this laser (the same every scan)
            self._angles_key, self._angles = key, msg.angle_min + msg.angle_increment * np.arange(len(r))
        a = self._angles
        r = np.where((r >= msg.range_min) & (r <= msg.range_max), r, np.nan)
        t_scan = from_stamp(msg.header.stamp) or self._odom[0]
        force = self._last_update_t is None or t_scan - self._last_update_t >= self.params.max_update_interval_s
        t0 = time.perf_counter()
        ran = self.pf.sensor_update(r, a, force=force)
        if not ran and not force:
            return
        # no returns to weigh with (open ground): the particles follow the odometry and spread; the pose is still
        # published, with that spread as its covariance
        self._last_update_t = t_scan
        self.update_ms.append((time.perf_counter() - t0) * 1e3)
        self.update_ms = self.update_ms[-100:]
        t_odom, odom_pose = self._odom
        est, cov = self.pf.estimate()
        if self._maybe_reseed(cov):
            est, cov = self.pf.estimate()
        match = self.pf.last_match if ran else float("nan")
        through = self.pf.last_through if ran else float("nan")
        if math.isnan(through):       # too few returns to judge the fit
            pass
        elif through > self.params.max_through_fraction:
            self._low_match += 1
        else:
            self._low_match = 0
        drift, window_m = self._drift(t_scan, ran, est, odom_pose)
        max_drift = self.params.max_drift_m + self.params.max_drift_per_m * window_m
        if not self.lost and self._low_match >= self.params.low_match_updates:
            self.lost, self.lost_reason = True, (f"{100 * through:.0f} % of beams through mapped walls, "
                                                 f"{self._low_match} updates")
        elif not self.lost and self.params.max_drift_m > 0 and drift > max_drift:
            self.lost, self.lost_reason = True, (f"the scans pulled the estimate {drift:.2f} m off the odometry "
                                                 f"in {window_m:.1f} m of travel (at most {max_drift:.2f} m)")
        elif (not self.lost and window_m >= self.params.match_window_min_m
              and self.window_match < self.params.min_window_match):
            self.lost, self.lost_reason = True, (f"{100 * self.window_match:.0f} % of end points on the map over "
                                                 f"the last {window_m:.1f} m of travel (at least "
                                                 f"{100 * self.params.min_window_match:.0f} %)")
        if self.lost and not self._lost_logged:
            self._lost_logged = True
            self.get_logger().error(f"the scans do not match the map ({self.lost_reason}; {100 * match:.0f} % of "
                                    f"end points on it): no pose until a new initialpose")
        if self.lost:   # a pose from a map that does not fit would steer the robot wrong: publish none
            self.diag.error("scan does not match the map: localisation lost", match=f"{match:.2f}",
                            through_walls=f"{through:.2f}", max_through=f"{self.params.max_through_fraction:.2f}",
                            drift_m=f"{drift:.3f}", max_drift_m=f"{max_drift:.3f}", reason=self.lost_reason,
                            window_match=f"{self.window_match:.3f}", window_m=f"{window_m:.1f}",
                            min_window_match=f"{self.params.min_window_match:.2f}",
                            est_x_m=f"{est[0]:.2f}", est_y_m=f"{est[1]:.2f}")
            return
        self._lost_logged = False
        t = from_stamp(msg.header.stamp) or t_odom
        c6 = np.zeros((6, 6))
        c6[np.ix_([0, 1, 5], [0, 1, 5])] = cov
        floor = self.params.min_position_std_m * self.params.max_beams / max(self.pf.last_returns if ran else 0, 1)
        c6[0, 0] += floor ** 2
        c6[1, 1] += floor ** 2
        c6[2, 2] = c6[3, 3] = c6[4, 4] = 1e6
        self._pose_pub.publish(pose_cdr(max(t, 0.0), self.params.map_frame, est, c6))
        if self._tf_pub is not None:
            T = self.pf.map_to_odom(odom_pose)
            stamp = t_odom + self.params.transform_tolerance_s
            self._tf_pub.publish(transform_cdr(T, stamp, self.params.map_frame, self.params.odom_frame))
        std = math.sqrt(max(cov[0, 0], cov[1, 1]))
        values = dict(particles=len(self.pf.particles), std_xy_m=f"{std:.3f}", match=f"{match:.2f}",
                      through_walls=f"{through:.2f}", drift_m=f"{drift:.2f}", max_drift_m=f"{max_drift:.2f}",
                      window_match=f"{self.window_match:.2f}",
                      returns=self.pf.last_returns, reseeds=self.reseeds,
                      std_yaw_rad=f"{math.sqrt(cov[2, 2]):.3f}", update_ms=f"{np.mean(self.update_ms):.1f}")
        if self._low_match:
            self.diag.warn("scan fits the map poorly", **values)
        elif math.isnan(match):
            self.diag.ok("few returns: following odometry", **values)
        elif self.pf.converged():
            self.diag.ok("localised", **values)
        else:
            self.diag.warn("not converged", **values)

    def _drift(self, t_s: float, ran: bool, est, odom_pose) -> tuple[float, float]:
        """How far the estimate moved off the odometry (m) over the drift window, and the window's travel (m).

        The odometry's motion since the window's first update, applied to the estimate then, predicts the
        estimate now; the distance between the two is what the scans have pulled it away.
        """
        p = self.params
        if ran:
            self._corrections.append((t_s, self._travel_m, np.array(est, dtype=float),
                                      np.array(odom_pose, dtype=float), self.pf.last_match))
            if not math.isnan(self.pf.last_match):
                self._matches.append(self.pf.last_match)
        while self._corrections and (self._travel_m - self._corrections[0][1] > p.drift_window_m
                                     or t_s - self._corrections[0][0] > p.drift_window_s):
            if not math.isnan(self._corrections.popleft()[4]):
                self._matches.popleft()
        if not self._corrections:
            return 0.0, 0.0
        # the window's matches are kept beside it (not gathered from the window every scan: hundreds of entries)
        self.window_match = float(np.mean(self._matches)) if self._matches else float("nan")
        _, travel0, est0, odom0, _ = self._corrections[0]
        predicted = se2_compose(est0, se2_compose(se2_inverse(odom0), odom_pose))
        self.drift_m = float(np.hypot(*(np.asarray(est[:2]) - predicted[:2])))
        return self.drift_m, self._travel_m - travel0


def pose_cdr(t_s: float, frame_id: str, xyyaw, cov6) -> bytes:
    """The pose as a serialized geometry_msgs/PoseWithCovarianceStamped (ros/fastmsg.py), the message
    :func:`pose_msg` builds field by field."""
    w, qx, qy, qz = yaw_to_quat(float(xyyaw[2]))
    return pose_with_covariance_stamped_cdr(t_s, frame_id, (float(xyyaw[0]), float(xyyaw[1]), 0.0),
                                            (float(qx), float(qy), float(qz), float(w)), np.ravel(cov6))


def pose_msg(t_s: float, frame_id: str, xyyaw, cov6) -> PoseWithCovarianceStamped:
    """The same pose as a message object."""
    out = PoseWithCovarianceStamped()
    out.header.stamp = to_stamp(t_s)
    out.header.frame_id = frame_id
    out.pose.pose = xyyaw_to_pose(*(float(v) for v in xyyaw))
    out.pose.covariance = [float(v) for v in np.ravel(cov6)]
    return out


def main(args=None):
    return run_node(MapLocalizerNode, args)


if __name__ == "__main__":
    main()
