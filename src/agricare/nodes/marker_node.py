"""marker_node: ArUco markers (docking stations, boarding points) -> poses in the camera frame.

Subscribes ``camera/image_raw`` and ``camera/camera_info`` (sensor QoS). Publishes ``markers/poses``
(geometry_msgs/PoseArray in the image's frame, the camera optical frame, one pose per detected known
marker, ordered by id) and ``markers/ids`` (std_msgs/String JSON ``[{"id": 3, "distance_m": 1.2,
"reprojection_px": 0.3}, ...]`` in the same order), both reliable, plus ``/diagnostics`` (missing
camera_info, stale camera, bad images). Without camera_info nothing is published (no pose without
intrinsics).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
from geometry_msgs.msg import Pose, PoseArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from agricare.core.perception.markers import MarkerDetector, MarkerParams
from agricare.ros.convert import image_to_bgr
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params
from agricare.ros.qos import RELIABLE_QOS, SENSOR_QOS


@dataclasses.dataclass(frozen=True)
class MarkerNodeParams:
    """marker_node parameters."""

    dictionary: str = "DICT_4X4_50"
    marker_length_m: float = 0.15
    known_ids: tuple[int, ...] = ()
    max_reprojection_px: float = 3.0
    stale_timeout_s: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.stale_timeout_s) and self.stale_timeout_s > 0):
            raise ValueError(f"stale_timeout_s must be > 0, got {self.stale_timeout_s}")
        self.marker_params()

    def marker_params(self) -> MarkerParams:
        return MarkerParams(self.dictionary, self.marker_length_m, tuple(int(i) for i in self.known_ids),
                            self.max_reprojection_px)


class MarkerNode(Node):
    """ArUco marker pose node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("marker_node", **kwargs)
        self.params = load_params(self, MarkerNodeParams)
        self.detector = MarkerDetector(self.params.marker_params())
        self.diag = Diagnostics(self, "markers")
        self._K = None
        self._D = None
        self._last_image_s = None
        self._pose_pub = self.create_publisher(PoseArray, "markers/poses", RELIABLE_QOS)
        self._ids_pub = self.create_publisher(String, "markers/ids", RELIABLE_QOS)
        self.create_subscription(Image, "camera/image_raw", self._on_image, SENSOR_QOS)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, SENSOR_QOS)
        self._timer = self.create_timer(1.0, self._on_timer)
        self.diag.stale("waiting for camera")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_info(self, msg: CameraInfo) -> None:
        K = np.asarray(msg.k, float).reshape(3, 3)
        if np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0:
            self._K = K
            self._D = np.asarray(msg.d, float) if len(msg.d) in (4, 5, 8, 12, 14) else None

    def _on_image(self, msg: Image) -> None:
        self._last_image_s = self._now_s()
        if self._K is None:
            self.diag.warn("missing camera_info: no marker poses")
            return
        try:
            found = self.detector.detect(image_to_bgr(msg), self._K, self._D)
        except ValueError as exc:
            self.diag.warn(f"bad image: {exc}")
            return
        pa = PoseArray()
        pa.header = msg.header
        ids = []
        for m in found:
            p = Pose()
            p.position.x, p.position.y, p.position.z = (float(v) for v in m.position_m)
            w, x, y, z = (float(v) for v in m.quat_wxyz)
            p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = w, x, y, z
            pa.poses.append(p)
            ids.append({"id": m.id, "distance_m": round(m.distance_m, 4),
                        "reprojection_px": round(m.reprojection_px, 3)})
        self._pose_pub.publish(pa)
        self._ids_pub.publish(String(data=json.dumps(ids)))
        self.diag.ok("detecting", markers=len(found), ids=",".join(str(i["id"]) for i in ids))

    def _on_timer(self) -> None:
        now = self._now_s()
        if self._last_image_s is None:
            self.diag.stale("no camera image received yet")
        elif now - self._last_image_s > self.params.stale_timeout_s:
            self.diag.stale(f"camera image stale for {now - self._last_image_s:.1f} s")


def main(args=None):
    return run_node(MarkerNode, args)


if __name__ == "__main__":
    main()
