"""ArUco fiducials for docking stations and boarding points: detection (``cv2.aruco.ArucoDetector``)
and 6-DoF pose by ``cv2.solvePnP`` (IPPE_SQUARE) in the camera optical frame (x right, y down,
z forward), metres.

Run ``python -m agricare.core.perception.markers`` for a demo on a rendered marker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from agricare.core.geometry import rpy_to_quat


@dataclass(frozen=True)
class MarkerParams:
    """Marker detector parameters.

    Attributes
    ----------
    dictionary : OpenCV predefined dictionary name, e.g. ``"DICT_4X4_50"``.
    marker_length_m : printed side length of the black square, m.
    known_ids : ids to report (empty = all).
    max_reprojection_px : poses with a larger RMS reprojection error are dropped.
    """

    dictionary: str = "DICT_4X4_50"
    marker_length_m: float = 0.15
    known_ids: tuple = ()
    max_reprojection_px: float = 3.0

    def __post_init__(self):
        if not hasattr(cv2.aruco, self.dictionary) or not self.dictionary.startswith("DICT_"):
            raise ValueError(f"dictionary must be a cv2.aruco DICT_* name, got {self.dictionary!r}")
        if not (math.isfinite(self.marker_length_m) and self.marker_length_m > 0):
            raise ValueError(f"marker_length_m must be > 0, got {self.marker_length_m}")
        if any(int(i) < 0 for i in self.known_ids):
            raise ValueError(f"known_ids must be >= 0, got {self.known_ids}")
        if not self.max_reprojection_px > 0:
            raise ValueError(f"max_reprojection_px must be > 0, got {self.max_reprojection_px}")


@dataclass
class MarkerPose:
    """One detected marker: pose of the marker in the camera optical frame.

    ``position_m`` (3,), ``quat_wxyz`` (4,), ``rvec``/``tvec`` as OpenCV gives them, ``corners_px``
    (4, 2) in the ArUco order (top-left, top-right, bottom-right, bottom-left of the marker),
    ``reprojection_px`` RMS, ``distance_m``.
    """

    id: int
    position_m: np.ndarray
    quat_wxyz: np.ndarray
    rvec: np.ndarray
    tvec: np.ndarray
    corners_px: np.ndarray
    reprojection_px: float
    distance_m: float = field(default=0.0)


def rotation_matrix_to_quat(R) -> np.ndarray:
    """3x3 rotation matrix -> quaternion (w, x, y, z)."""
    import transforms3d

    return np.asarray(transforms3d.quaternions.mat2quat(np.asarray(R, float)))


def marker_object_points(length_m: float) -> np.ndarray:
    """Marker corners (4, 3) in the marker frame (z out of the marker face), ArUco corner order."""
    h = length_m / 2.0
    return np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]], dtype=np.float64)


class MarkerDetector:
    """Detect ArUco markers and estimate their poses."""

    def __init__(self, params: MarkerParams | None = None):
        self.p = params or MarkerParams()
        dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.p.dictionary))
        dp = cv2.aruco.DetectorParameters()
        dp.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self._det = cv2.aruco.ArucoDetector(dic, dp)
        self._dic = dic
        self._obj = marker_object_points(self.p.marker_length_m)

    def detect(self, image, camera_matrix, dist_coeffs=None) -> list[MarkerPose]:
        """Markers in ``image`` (H, W) grey or (H, W, 3) BGR uint8 with intrinsics ``camera_matrix``
        (3, 3) and distortion ``dist_coeffs`` (plumb-bob, may be None).

        Raises ValueError for an empty/invalid image or camera matrix.
        """
        img = np.asarray(image) if image is not None else None
        if img is None or img.size == 0 or img.ndim not in (2, 3) or min(img.shape[:2]) < 8:
            raise ValueError(f"invalid image of shape {None if img is None else img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {img.dtype}")
        grey = img if img.ndim == 2 else cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
        K = np.asarray(camera_matrix, dtype=np.float64).reshape(3, 3)
        if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
            raise ValueError("camera_matrix must be finite with positive focal lengths")
        D = np.zeros(5) if dist_coeffs is None or len(dist_coeffs) == 0 else np.asarray(dist_coeffs, float)
        corners, ids, _rej = self._det.detectMarkers(grey)
        out = []
        if ids is None:
            return out
        known = {int(i) for i in self.p.known_ids}
        for c, i in zip(corners, ids.ravel()):
            if known and int(i) not in known:
                continue
            c2 = c.reshape(4, 2).astype(np.float64)
            ok, rvec, tvec = cv2.solvePnP(self._obj, c2, K, D, flags=cv2.SOLVEPNP_IPPE_SQUARE)
            if not ok:
                continue
            proj, _ = cv2.projectPoints(self._obj, rvec, tvec, K, D)
            err = float(np.sqrt(np.mean(np.sum((proj.reshape(4, 2) - c2) ** 2, axis=1))))
            if err > self.p.max_reprojection_px:
                continue
            R, _ = cv2.Rodrigues(rvec)
            t = tvec.ravel()
            out.append(MarkerPose(int(i), t.copy(), rotation_matrix_to_quat(R), rvec.ravel(), t.copy(), c2, err,
                                  float(np.linalg.norm(t))))
        out.sort(key=lambda m: m.id)
        return out


def render_marker(marker_id: int, camera_matrix, rvec, tvec, image_size=(640, 480), length_m: float = 0.15,
                  dictionary: str = "DICT_4X4_50", background: int = 200) -> np.ndarray:
    """Render one marker at a known pose into a BGR image (for tests and demos).

    The marker (with a white quiet zone of one module) is warped by the homography of its pose.
    """
    dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    side = 240
    tex = cv2.aruco.generateImageMarker(dic, int(marker_id), side)
    border = side // 6
    tex = cv2.copyMakeBorder(tex, border, border, border, border, cv2.BORDER_CONSTANT, value=255)
    full = length_m * (side + 2 * border) / side
    obj = marker_object_points(full)
    K = np.asarray(camera_matrix, np.float64)
    proj, _ = cv2.projectPoints(obj, np.asarray(rvec, float), np.asarray(tvec, float), K, np.zeros(5))
    n = tex.shape[0] - 1
    src = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32)
    Hm = cv2.getPerspectiveTransform(src, proj.reshape(4, 2).astype(np.float32))
    W, H = image_size
    out = cv2.warpPerspective(tex, Hm, (W, H), flags=cv2.INTER_LINEAR, borderValue=background)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)


@dataclass(frozen=True)
class BoardingSigns:
    """ArUco signs at the boarding points (a surveyed map of markers, shared by the simulator and the mission).

    Place ``i`` of a scenario (in the order of ``world.places``) carries marker ``id_base + i`` on an upright sign
    ``ahead_m`` ahead of and ``left_m`` left of (the kerb side of) its boarding pose, the marker's centre
    ``height_m`` above the ground, its face towards the arriving shuttle. ``length_m`` is the black square's side.
    """

    id_base: int = 10
    length_m: float = 0.5
    ahead_m: float = 5.0
    left_m: float = 1.6
    height_m: float = 1.2
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self):
        if not (isinstance(self.id_base, int) and self.id_base >= 0):
            raise ValueError(f"id_base must be an integer >= 0, got {self.id_base!r}")
        for name in ("length_m", "height_m"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not (hasattr(cv2.aruco, self.dictionary) and self.dictionary.startswith("DICT_")):
            raise ValueError(f"dictionary must be a cv2.aruco DICT_* name, got {self.dictionary!r}")

    def marker_pose_in_map(self, boarding_xyyaw) -> tuple[np.ndarray, np.ndarray]:
        """Pose of the marker frame (x right, y up, z out of the face, as :func:`marker_object_points`) in the
        map: ``(t (3,), R (3, 3))``, z of the map up from the ground."""
        bx, by, byaw = (float(v) for v in boarding_xyyaw)
        c, s = math.cos(byaw), math.sin(byaw)
        t = np.array([bx + self.ahead_m * c - self.left_m * s, by + self.ahead_m * s + self.left_m * c, self.height_m])
        z = np.array([-c, -s, 0.0])     # the face looks back along the boarding direction
        y = np.array([0.0, 0.0, 1.0])
        return t, np.column_stack([np.cross(y, z), y, z])


def base_pose_from_marker(T_map_marker, T_opt_marker, T_base_opt) -> np.ndarray:
    """Planar base pose ``[x, y, yaw]`` in the map from one marker seen by the camera.

    Each ``T_*`` is ``(t (3,), R (3, 3))``: the marker in the map (surveyed), the marker in the camera's optical
    frame (measured), the optical frame on base_link (the URDF). The base is taken upright: the yaw comes from
    the chain's rotation, the position from its horizontal part.
    """
    def inv(T):
        t, R = T
        return -R.T @ t, R.T

    def compose(A, B):
        return A[0] + A[1] @ B[0], A[1] @ B[1]

    t, R = compose(compose(T_map_marker, inv(T_opt_marker)), inv(T_base_opt))
    return np.array([t[0], t[1], math.atan2(R[1, 0], R[0, 0])])


def euler_to_rvec(roll_rad: float, pitch_rad: float, yaw_rad: float) -> np.ndarray:
    """Rodrigues vector of the rotation ``R = Rz(yaw) Ry(pitch) Rx(roll)``."""
    import transforms3d

    q = rpy_to_quat(roll_rad, pitch_rad, yaw_rad)
    R = transforms3d.quaternions.quat2mat(q)
    rv, _ = cv2.Rodrigues(R)
    return rv.ravel()


if __name__ == "__main__":  # pragma: no cover - demo
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    rv = euler_to_rvec(math.pi + 0.3, 0.2, 0.1)
    img = render_marker(7, K, rv, [0.1, -0.05, 1.2])
    for m in MarkerDetector().detect(img, K):
        print(m.id, np.round(m.position_m, 3), round(m.reprojection_px, 2))
