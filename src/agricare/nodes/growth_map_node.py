"""growth_map_node: camera + robot pose -> canopy-cover growth map.

Subscribes ``camera/image_raw``, ``camera/camera_info`` (sensor QoS) and ``pose_topic`` (nav_msgs/Odometry,
default ``odometry/filtered``; ``ground_truth/odom`` in simulation). Each image taken after the robot moved
``min_travel_m`` (or turned ``min_turn_rad``) is segmented, projected onto the ground with the intrinsics and
the mounting parameters (``camera_height_m``, ``camera_pitch_rad``, ``camera_x_m``, ``camera_y_m``) and
accumulated per cell (see :mod:`agricare.core.perception.vegetation`).

Publishes ``perception/growth_map`` (nav_msgs/OccupancyGrid, latched, -1 unknown / 0..100 % cover, in the
pose's frame) every ``publish_period_s`` and ``/diagnostics``. Service ``perception/save_growth_map``:
agricare_interfaces/SaveMap (``directory`` request field: empty = ``save_directory``, else a directory inside
``save_directory``; anything outside it is refused).
Saves a georeferenced PNG (+ .pgw world file, .yaml) and a
CSV listing every known cell with its cover and low-cover / plant-gap flags (WGS84 too when
``datum_lat_deg``/``datum_lon_deg`` are set).
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from agricare.core.perception.crop_rows import camera_from_info
from agricare.core.perception.vegetation import GrowthMap, GrowthMapParams
from agricare.ros.convert import image_to_bgr, pose_to_xyyaw, to_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.mounts import MountFromDescription
from agricare.ros.node_main import run_node
from agricare.ros.params import load_schema
from agricare.ros.qos import LATCHED_QOS, SENSOR_QOS

from agricare_interfaces.srv import SaveMap


@dataclasses.dataclass(frozen=True)
class GrowthMapSettings:
    """growth_map_node's own settings (camera mounting, pose input, cadence, output); the map's parameters
    are ``GrowthMapParams`` itself, flattened beside these by :func:`agricare.ros.params.load_schema`."""

    # camera mounting: NaN = from robot_description (the URDF's camera_link); set = an override (all four)
    camera_height_m: float = math.nan
    camera_pitch_rad: float = math.nan
    camera_x_m: float = math.nan
    camera_y_m: float = math.nan
    pose_topic: str = "odometry/filtered"
    pose_timeout_s: float = 0.3
    min_travel_m: float = 0.3
    min_turn_rad: float = 0.2
    publish_period_s: float = 2.0
    save_directory: str = "out/growth_map"
    datum_lat_deg: float = float("nan")
    datum_lon_deg: float = float("nan")

    def __post_init__(self):
        if not (math.isnan(self.camera_height_m) or self.camera_height_m > 0):
            raise ValueError(f"camera_height_m must be > 0 (NaN: from robot_description), got {self.camera_height_m}")
        for name in ("pose_timeout_s", "publish_period_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v}")
        for name in ("min_travel_m", "min_turn_rad"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be >= 0")
        if not self.save_directory:
            raise ValueError("save_directory must not be empty")

    def datum(self):
        if math.isfinite(self.datum_lat_deg) and math.isfinite(self.datum_lon_deg):
            return (self.datum_lat_deg, self.datum_lon_deg)
        return None


SCHEMA = (GrowthMapSettings, GrowthMapParams)
# the grid (GrowthMapParams) holds what was mapped so far; a new grid or cadence needs a restart
RESTART_ONLY = tuple(f.name for f in dataclasses.fields(GrowthMapParams)) + ("pose_topic", "publish_period_s")


class GrowthMapNode(Node):
    """Growth map node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("growth_map_node", **kwargs)
        self.param_set = load_schema(self, *SCHEMA)
        self.params = self.param_set.of(GrowthMapSettings)
        self.map = GrowthMap(self.param_set.of(GrowthMapParams))
        self.param_set.on_change(self._on_params, live=set(self.param_set.values) - set(RESTART_ONLY))
        self.diag = Diagnostics(self, "growth_map")
        p = self.params
        override = None if math.isnan(p.camera_height_m) else (p.camera_x_m, p.camera_y_m, p.camera_height_m,
                                                                p.camera_pitch_rad)
        self.camera_mount = MountFromDescription(self, "camera", override, "camera_*", on_change=self._on_mount)
        self._camera = None
        self._info_key = None
        self._pose = None
        self._pose_t = None
        self._frame = "map"
        self._last_added = None
        self._frames = 0
        self._pub = self.create_publisher(OccupancyGrid, "perception/growth_map", LATCHED_QOS)
        self.create_subscription(Image, "camera/image_raw", self._on_image, SENSOR_QOS)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, SENSOR_QOS)
        self.create_subscription(Odometry, self.params.pose_topic, self._on_pose, SENSOR_QOS)
        self.create_service(SaveMap, "perception/save_growth_map", self._on_save_map)
        self._timer = self.create_timer(self.params.publish_period_s, self.publish_map)
        self.diag.stale("waiting for camera, camera_info and pose")

    def _on_params(self, params) -> None:
        """Live change (validated): mounting, pose timeout, sampling distances, output settings."""
        self.params = params.of(GrowthMapSettings)
        self._info_key = None   # rebuild the camera model with the new mounting from the next camera_info
        self._camera = None
        self.get_logger().info("parameters changed live")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_mount(self, _mount) -> None:
        self._info_key = None   # rebuild the camera model from the next camera_info
        self._camera = None

    def _on_info(self, msg: CameraInfo) -> None:
        key = (tuple(msg.k), msg.width, msg.height)
        if key == self._info_key or self.camera_mount.value is None:
            return
        x, y, h, pitch = self.camera_mount.value
        try:
            self._camera = camera_from_info(msg.k, msg.width, msg.height, h, pitch, x, y)
            self._info_key = key
        except ValueError as exc:
            self._camera = None
            self.diag.warn(f"bad camera_info: {exc}")

    def _on_pose(self, msg: Odometry) -> None:
        self._pose = pose_to_xyyaw(msg.pose.pose)
        self._pose_t = self._now_s()
        self._frame = msg.header.frame_id or "map"

    def _on_image(self, msg: Image) -> None:
        now = self._now_s()
        if self._camera is None:
            self.diag.warn("missing camera_info: image not mapped")
            return
        if self._pose is None or now - self._pose_t > self.params.pose_timeout_s:
            self.diag.warn("no recent pose: image not mapped")
            return
        pose = self._pose.copy()
        if self._last_added is not None:
            moved = float(np.hypot(*(pose[:2] - self._last_added[:2])))
            turned = abs(math.remainder(pose[2] - self._last_added[2], 2 * math.pi))
            if moved < self.params.min_travel_m and turned < self.params.min_turn_rad:
                return
        try:
            n = self.map.add_image(image_to_bgr(msg), self._camera, pose)
        except ValueError as exc:
            self.diag.warn(f"bad image: {exc}")
            return
        self._last_added = pose
        self._frames += 1
        self.diag.ok("mapping", frames=self._frames, samples_last=n)

    def occupancy_msg(self) -> OccupancyGrid:
        g = OccupancyGrid()
        g.header.stamp = to_stamp(max(self._now_s(), 0.0))
        g.header.frame_id = self._frame
        p = self.map.p
        g.info.map_load_time = g.header.stamp
        g.info.resolution = float(p.resolution_m)
        g.info.width = self.map.nx
        g.info.height = self.map.ny
        g.info.origin.position.x = float(p.origin_x_m)
        g.info.origin.position.y = float(p.origin_y_m)
        g.info.origin.orientation.w = 1.0
        g.data = self.map.to_occupancy().ravel().tolist()
        return g

    def publish_map(self) -> None:
        self._pub.publish(self.occupancy_msg())

    def _save(self, directory: str):
        """Save under ``save_directory`` only: a requested directory must resolve inside it (relative ones
        are taken relative to it); anything else is refused (a peer must not make the node write anywhere)."""
        root = os.path.realpath(self.params.save_directory)
        target = os.path.realpath(os.path.join(root, directory)) if directory else root
        if os.path.commonpath([root, target]) != root:
            raise ValueError(f"directory {directory!r} is outside the save directory {self.params.save_directory!r}")
        files = self.map.save(target, datum=self.params.datum(), frame_id=self._frame)
        low, gaps = len(self.map.low_cover_cells()), len(self.map.plant_gaps())
        return files, f"saved {len(files)} files: {low} low-cover cells, {gaps} plant gaps"

    def _on_save_map(self, req, resp):
        try:
            files, msg = self._save(req.directory)
            resp.success, resp.message, resp.files = True, msg, files
        except (OSError, ValueError) as exc:
            resp.success, resp.message = False, f"save failed: {exc}"
        return resp


def main(args=None):
    return run_node(GrowthMapNode, args)


if __name__ == "__main__":
    main()
