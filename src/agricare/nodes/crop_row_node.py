"""crop_row_node: camera image -> crop rows -> filtered row guidance for the row follower.

Subscribes ``camera/image_raw`` and ``camera/camera_info`` (sensor QoS) and ``row_follower/state``
(std_msgs/String, latched; the guidance filter restarts when a turn begins).
Publishes ``perception/row_guidance`` (agricare_interfaces/RowGuidance, reliable, depth 10).

``guidance_mode``: ``row`` = guidance to the row the camera straddles, ``lane`` = to the middle of the
inter-row lane (a robot driving between two rows).
Guidance is metric (``base_link``: offset positive left, heading positive counter-clockwise) when
``camera_height_m > 0`` and camera_info has arrived; with ``camera_height_m > 0`` but no camera_info
the guidance has confidence 0 (never mixed units) unless ``allow_normalised`` is set. A blank frame (black,
white, covered lens) is a camera fault: confidence -1 (``CAMERA_FAULT``), on which the follower holds still.
Also publishes ``perception/crop_rows/markers`` (visualization_msgs/MarkerArray, rows on the ground in
``base_frame_id``, metric mode only) and ``/diagnostics`` (stale camera, missing camera_info, bad images).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from geometry_msgs.msg import Point
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from agricare.core.control.row_follower import CAMERA_FAULT
from agricare.core.perception.crop_rows import (
    CropRowParams,
    GuidanceFilter,
    GuidanceFilterParams,
    camera_from_info,
    detect_rows,
)
from agricare.ros.convert import from_stamp, image_to_bgr, to_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.mounts import MountFromDescription
from agricare.ros.node_main import run_node
from agricare.ros.params import load_schema
from agricare.ros.qos import LATEST_SENSOR_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched

from agricare_interfaces.msg import RowGuidance

GUIDANCE_TYPE = RowGuidance


@dataclasses.dataclass(frozen=True)
class _Blind:
    """The guidance of a blank frame: nothing seen, nothing ended, and the camera at fault (confidence
    :data:`agricare.core.control.row_follower.CAMERA_FAULT`, below every real confidence): the follower holds
    still instead of creeping on looking for rows it cannot see."""

    offset: float = 0.0
    heading: float = 0.0
    confidence: float = CAMERA_FAULT
    end_of_row: bool = False
    rows_visible: int = 0


_BLIND = _Blind()


@dataclasses.dataclass(frozen=True)
class CropRowSettings:
    """crop_row_node's own settings (camera mounting, health, frame); the detector and the guidance filter
    parameters are ``CropRowParams`` and ``GuidanceFilterParams`` themselves, flattened beside these by
    :func:`agricare.ros.params.load_schema`."""

    # camera mounting: NaN = from robot_description (the URDF's camera_link); set = an override (all four);
    # camera_height_m 0 = normalised guidance (no metric camera model)
    camera_height_m: float = math.nan
    camera_pitch_rad: float = math.nan
    camera_x_m: float = math.nan
    camera_y_m: float = math.nan
    allow_normalised: bool = False
    stale_timeout_s: float = 1.0
    base_frame_id: str = "base_link"
    # the row markers are for people watching (Foxglove, the recording): refreshed at most this often (node
    # clock) and at once when the number of rows seen changes; 0 = with every image. The guidance itself
    # (row_guidance) goes out with every image.
    markers_period_s: float = 0.5

    def __post_init__(self):
        if not (math.isfinite(self.markers_period_s) and self.markers_period_s >= 0):
            raise ValueError(f"markers_period_s must be >= 0, got {self.markers_period_s}")
        if not (math.isnan(self.camera_height_m) or self.camera_height_m >= 0):
            raise ValueError(f"camera_height_m must be >= 0 (0 = normalised guidance), got {self.camera_height_m}")
        if not (math.isfinite(self.stale_timeout_s) and self.stale_timeout_s > 0):
            raise ValueError(f"stale_timeout_s must be > 0, got {self.stale_timeout_s}")


SCHEMA = (CropRowSettings, CropRowParams, GuidanceFilterParams)


class CropRowNode(Node):
    """Crop-row detection node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("crop_row_node", **kwargs)
        self.param_set = load_schema(self, *SCHEMA)
        self.params = self.param_set.of(CropRowSettings)
        self.crop_params = self.param_set.of(CropRowParams)
        self.filter = GuidanceFilter(self.param_set.of(GuidanceFilterParams))
        self.param_set.on_change(self._on_params, live=set(self.param_set.values))
        self.diag = Diagnostics(self, "crop_rows")
        self.camera_mount = MountFromDescription(self, "camera", self._mount_override(), "camera_*",
                                                 on_change=self._on_mount)
        self._info = None
        self._camera = None
        self._last_image_s = None
        self._n_frames = 0
        self._last = None
        self._pub = self.create_publisher(GUIDANCE_TYPE, "perception/row_guidance", RELIABLE_QOS)
        self._mk_pub = self.create_publisher(MarkerArray, "perception/crop_rows/markers", RELIABLE_QOS)
        # the newest frame only: a detector slower than the camera's rate (a loaded machine) skips frames instead
        # of steering (or noticing a blank camera) on frames queued up to five periods ago
        self.create_subscription(Image, "camera/image_raw", self._on_image, LATEST_SENSOR_QOS)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, SENSOR_QOS)
        subscribe_latched(self, String, "row_follower/state", self._on_state)
        self._timer = self.create_timer(0.5, self._on_timer)
        self.diag.warn("waiting for camera/image_raw")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_params(self, params) -> None:
        """Live change (validated): the next image uses the new detector, filter and mounting values."""
        self.params = params.of(CropRowSettings)
        self.crop_params = params.of(CropRowParams)
        self.filter.p = params.of(GuidanceFilterParams)
        self._info = None   # the camera model is rebuilt from the next camera_info with the new mounting
        self._camera = None
        self.get_logger().info("parameters changed live")

    def _mount_override(self):
        p = self.params
        if math.isnan(p.camera_height_m) or p.camera_height_m == 0:
            return None
        return (p.camera_x_m, p.camera_y_m, p.camera_height_m, p.camera_pitch_rad)

    def _on_mount(self, _mount) -> None:
        self._info = None   # rebuild the camera model from the next camera_info
        self._camera = None

    def _metric_wanted(self) -> bool:
        return self.params.camera_height_m != 0

    def _on_info(self, msg: CameraInfo) -> None:
        mount = self.camera_mount.value
        if not self._metric_wanted() or mount is None:
            return
        key = (tuple(msg.k), msg.width, msg.height)
        if key == self._info:
            return
        try:
            x, y, h, pitch = mount
            self._camera = camera_from_info(msg.k, msg.width, msg.height, h, pitch, x, y)
            self._info = key
        except ValueError as exc:
            self._camera = None
            self.diag.warn(f"bad camera_info: {exc}")

    def _on_state(self, msg: String) -> None:
        if msg.data == "turning":
            self.filter.reset()
        self._follower_done = msg.data == "done"

    def _on_image(self, msg: Image) -> None:
        now = self._now_s()
        self._last_image_s = now
        if getattr(self, "_follower_done", False):
            self.diag.ok("idle: the row follower is done")
            return  # nobody steers by the rows any more: save the CPU
        t = from_stamp(msg.header.stamp) or now
        metric_wanted = self._metric_wanted()
        camera = self._camera
        result = None
        problem = ""
        if metric_wanted and camera is None and not self.params.allow_normalised:
            problem = ("missing camera_info: guidance withheld (confidence 0)" if self.camera_mount.value is not None
                       else "camera mount unknown (no robot_description): guidance withheld (confidence 0)")
        else:
            try:
                img = image_to_bgr(msg)
                if img.size and int(img.max()) - int(img.min()) <= 2:
                    # a uniform frame (black, white, covered lens) is a camera fault, not a view without rows:
                    # no guidance (confidence -1: camera fault) and no end of row, so the follower stops (and holds
                    # while creeping) instead of taking the vanished rows for the row end and driving out blind
                    self._n_frames += 1
                    self._publish(_BLIND, t)
                    self.diag.error("blank image (camera fault): guidance withheld (confidence -1)",
                                    frames=self._n_frames)
                    return
                result = detect_rows(img, self.crop_params, camera=camera if metric_wanted else None)
            except ValueError as exc:
                problem = f"bad image: {exc}"
        g = self.filter.update(now, result)
        self._n_frames += 1
        self._publish(g, t)
        if result is not None and camera is not None:
            last = getattr(self, "_markers_key", None)
            if last is None or len(result.rows) != last[1] or not 0.0 <= now - last[0] < self.params.markers_period_s:
                self._markers_key = (now, len(result.rows))
                self._publish_markers(result, camera, msg.header.stamp)
        if problem:
            self.diag.warn(problem, frames=self._n_frames)
        elif result is not None and result.confidence == 0.0:
            self.diag.ok(f"no rows: {result.reason}", frames=self._n_frames)
        else:
            self.diag.ok("detecting rows", frames=self._n_frames, offset=f"{g.offset:.3f}",
                         heading_rad=f"{g.heading:.3f}", confidence=f"{g.confidence:.2f}",
                         end_of_row=str(g.end_of_row), metric=str(g.metric))
        self._last = (result, g)

    def _publish(self, g, t_s: float) -> None:
        m = RowGuidance()
        m.header.stamp = to_stamp(max(t_s, 0.0))
        m.header.frame_id = self.params.base_frame_id
        m.offset_m = float(g.offset)
        m.heading_rad = float(g.heading)
        m.confidence = float(g.confidence)
        m.end_of_row = bool(g.end_of_row)
        m.rows_visible = int(g.rows_visible)
        self._pub.publish(m)

    def _publish_markers(self, result, camera, stamp) -> None:
        arr = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        arr.markers.append(clear)
        cam = camera
        for i, row in enumerate(result.rows):
            ys = np.linspace(row[0, 1], row[-1, 1], 10)
            xs = np.interp(ys, row[::-1, 1], row[::-1, 0])
            g = cam.pixels_to_ground(np.column_stack([xs, ys]))
            g = g[np.all(np.isfinite(g), axis=1)]
            if len(g) < 2:
                continue
            m = Marker()
            m.header.frame_id = self.params.base_frame_id
            m.header.stamp = stamp
            m.ns = "crop_rows"
            m.id = i
            m.type = Marker.LINE_STRIP
            m.action = Marker.ADD
            m.scale.x = 0.03
            m.pose.orientation.w = 1.0
            m.color.a = 1.0
            m.color.r, m.color.g = (1.0, 0.0) if i == result.center_index else (1.0, 1.0)
            m.points = [Point(x=float(a), y=float(b), z=0.0) for a, b in g]
            arr.markers.append(m)
        self._mk_pub.publish(arr)

    def _on_timer(self) -> None:
        now = self._now_s()
        if self._last_image_s is None:
            self.diag.stale("no camera image received yet")
        elif now - self._last_image_s > self.params.stale_timeout_s:
            self.diag.stale(f"camera image stale for {now - self._last_image_s:.1f} s")
        elif self._metric_wanted() and self._camera is None:
            self.diag.warn("missing camera_info: guidance withheld (confidence 0)")


def main(args=None):
    return run_node(CropRowNode, args)


if __name__ == "__main__":
    main()
