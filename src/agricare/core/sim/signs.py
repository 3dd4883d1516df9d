"""ArUco signs at the boarding points, drawn into a simulated camera image.

The signs stand where :class:`agricare.core.perception.markers.BoardingSigns` says (the same layout the care
mission uses as its map of markers). Each sign is a planar marker (black square plus a white quiet zone of one
module) warped into the image by the homography of its pose; signs behind the camera or outside the image
are skipped. Occlusion by buildings is not modelled (the signs stand at the kerb in front of them).
"""

from __future__ import annotations

import cv2
import numpy as np

from agricare.core.perception.markers import BoardingSigns, marker_object_points
from agricare.core.sim.camera import camera_pose


class SignPainter:
    """Draws the signs of ``boarding_poses`` (list of ``(marker_id, (x, y, yaw))``) into camera images."""

    TEXTURE_PX = 120

    def __init__(self, layout: BoardingSigns, boarding_poses):
        self.layout = layout
        dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.dictionary))
        side = self.TEXTURE_PX
        border = side // 6
        self.signs = []
        for marker_id, pose in boarding_poses:
            tex = cv2.aruco.generateImageMarker(dic, int(marker_id), side)
            tex = cv2.copyMakeBorder(tex, border, border, border, border, cv2.BORDER_CONSTANT, value=255)
            full = layout.length_m * (side + 2 * border) / side
            t, R = layout.marker_pose_in_map(pose)
            corners = marker_object_points(full) @ R.T + t       # (4, 3) in map, ArUco corner order
            self.signs.append((int(marker_id), t, cv2.cvtColor(tex, cv2.COLOR_GRAY2BGR), corners))

    def any_in_view(self, cam_params, base_pose_in_map, max_distance_m: float) -> bool:
        """Whether a sign's centre lies within ``max_distance_m`` of the camera and inside its horizontal field of
        view (in front of it, facing it): a cheap test before rendering a frame."""
        x, y, yaw = (float(v) for v in base_pose_in_map)
        c, s = np.cos(yaw), np.sin(yaw)
        cx = x + c * cam_params.mount_x_m - s * cam_params.mount_y_m
        cy = y + s * cam_params.mount_x_m + c * cam_params.mount_y_m
        half = 0.5 * cam_params.hfov_rad
        for _mid, centre, _tex, corners in self.signs:
            dx, dy = centre[0] - cx, centre[1] - cy
            d = float(np.hypot(dx, dy))
            if d > max_distance_m or d < 0.3:
                continue
            off = (np.arctan2(dy, dx) - yaw + np.pi) % (2 * np.pi) - np.pi
            back = np.cross(corners[1] - corners[0], corners[3] - corners[0])   # into the face (map)
            if abs(off) <= half and back[0] * dx + back[1] * dy > 0.0:
                return True
        return False

    def draw(self, image, K, cam_params, base_pose_in_map, max_distance_m: float = 25.0) -> np.ndarray:
        """Draw the visible signs into ``image`` (H, W, 3) uint8 BGR in place; returns it."""
        R_cam_map, C = camera_pose(cam_params, base_pose_in_map)
        h, w = image.shape[:2]
        for _mid, centre, tex, corners in self.signs:
            if np.hypot(*(centre[:2] - C[:2])) > max_distance_m:
                continue
            pc = (corners - C) @ R_cam_map.T                    # (4, 3) in the optical frame
            if np.any(pc[:, 2] < 0.3):
                continue
            uv = (pc @ np.asarray(K).T)[:, :2] / pc[:, 2:3]
            x0, y0 = np.floor(uv.min(axis=0)).astype(int)
            x1, y1 = np.ceil(uv.max(axis=0)).astype(int)
            if x1 < 0 or y1 < 0 or x0 >= w or y0 >= h or min(x1 - x0, y1 - y0) < 4:
                continue
            n = tex.shape[0] - 1
            src = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32)
            # warp only into the sign's bounding box
            bx0, by0, bx1, by1 = max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h)
            dst = (uv - [bx0, by0]).astype(np.float32)
            M = cv2.getPerspectiveTransform(src, dst)
            size = (bx1 - bx0, by1 - by0)
            warped = cv2.warpPerspective(tex, M, size, flags=cv2.INTER_LINEAR)
            mask = cv2.warpPerspective(np.full(tex.shape[:2], 255, np.uint8), M, size, flags=cv2.INTER_NEAREST)
            roi = image[by0:by1, bx0:bx1]
            np.copyto(roi, warped, where=mask[:, :, None] > 0)
        return image
