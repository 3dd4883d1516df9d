"""SE(2) poses, angle helpers and small polygon utilities shared by every core module.

Conventions (REP-103): x forward, y left, yaw counter-clockwise from +x, metres and radians.
A planar pose is an array ``[x_m, y_m, yaw_rad]``; ``T_a_b`` is the pose of frame b in frame a.
Quaternions are ``(w, x, y, z)`` as in transforms3d.
"""

from __future__ import annotations

import math

import numpy as np
import transforms3d

TWO_PI = 2.0 * math.pi


def wrap_angle(angle_rad):
    """Wrap an angle (scalar or array) to [-pi, pi)."""
    return (np.asarray(angle_rad) + math.pi) % TWO_PI - math.pi if isinstance(angle_rad, np.ndarray) \
        else (float(angle_rad) + math.pi) % TWO_PI - math.pi


def angle_diff(a_rad, b_rad):
    """Smallest signed difference ``a - b`` wrapped to [-pi, pi)."""
    return wrap_angle(np.asarray(a_rad) - np.asarray(b_rad)) if isinstance(a_rad, np.ndarray) \
        or isinstance(b_rad, np.ndarray) else wrap_angle(float(a_rad) - float(b_rad))


def se2_compose(T_a_b, T_b_c) -> np.ndarray:
    """Compose planar poses: ``T_a_c = T_a_b * T_b_c``.

    Parameters
    ----------
    T_a_b, T_b_c : array_like, shape (3,)
        ``[x_m, y_m, yaw_rad]``.
    """
    xa, ya, ta = (float(v) for v in T_a_b)
    xb, yb, tb = (float(v) for v in T_b_c)
    c, s = math.cos(ta), math.sin(ta)
    return np.array([xa + c * xb - s * yb, ya + s * xb + c * yb, wrap_angle(ta + tb)])


def se2_inverse(T_a_b) -> np.ndarray:
    """Inverse of a planar pose: ``T_b_a``."""
    x, y, t = (float(v) for v in T_a_b)
    c, s = math.cos(t), math.sin(t)
    return np.array([-c * x - s * y, s * x - c * y, wrap_angle(-t)])


def se2_transform_points(T_a_b, points_in_b) -> np.ndarray:
    """Transform points, shape (N, 2), from frame b into frame a."""
    pts = np.asarray(points_in_b, dtype=float).reshape(-1, 2)
    x, y, t = (float(v) for v in T_a_b)
    c, s = math.cos(t), math.sin(t)
    R = np.array([[c, -s], [s, c]])
    return pts @ R.T + np.array([x, y])


def se2_to_matrix(T_a_b) -> np.ndarray:
    """3x3 homogeneous matrix of a planar pose."""
    x, y, t = (float(v) for v in T_a_b)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, x], [s, c, y], [0.0, 0.0, 1.0]])


def matrix_to_se2(M) -> np.ndarray:
    """Planar pose ``[x, y, yaw]`` from a 3x3 homogeneous matrix."""
    M = np.asarray(M, dtype=float)
    return np.array([M[0, 2], M[1, 2], math.atan2(M[1, 0], M[0, 0])])


def yaw_to_quat(yaw_rad: float) -> np.ndarray:
    """Quaternion ``(w, x, y, z)`` of a rotation about +z."""
    return np.array([math.cos(yaw_rad / 2.0), 0.0, 0.0, math.sin(yaw_rad / 2.0)])


def quat_to_yaw(q_wxyz) -> float:
    """Yaw (rotation about +z, radians) of a quaternion ``(w, x, y, z)``; need not be planar."""
    w, x, y, z = (float(v) for v in q_wxyz)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rpy_to_quat(roll_rad: float, pitch_rad: float, yaw_rad: float) -> np.ndarray:
    """Quaternion ``(w, x, y, z)`` from fixed-axis roll, pitch, yaw (sxyz, as URDF and ROS use)."""
    return np.asarray(transforms3d.euler.euler2quat(roll_rad, pitch_rad, yaw_rad, axes="sxyz"))


def quat_to_rpy(q_wxyz) -> tuple[float, float, float]:
    """Roll, pitch, yaw (sxyz) of a quaternion ``(w, x, y, z)``."""
    q = np.asarray(q_wxyz, dtype=float)
    n = float(np.linalg.norm(q))
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"invalid quaternion {q_wxyz!r}")
    r, p, y = transforms3d.euler.quat2euler(q / n, axes="sxyz")
    return float(r), float(p), float(y)


def polygon_area(points) -> float:
    """Signed area of a simple polygon, shape (N, 2) (positive when counter-clockwise)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def points_in_polygon(points, polygon) -> np.ndarray:
    """Even-odd test of many points, shape (N, 2), against one polygon ring, shape (M, 2).

    Returns a boolean array (N,). Points exactly on an edge may land on either side.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=float).reshape(-1, 2)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_int = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = np.logical_and(crosses, x < x_int)
    return (np.count_nonzero(inside, axis=1) % 2) == 1


def distance_point_to_segments(point, seg_a, seg_b) -> np.ndarray:
    """Distance from one point (2,) to each segment ``seg_a[i] -> seg_b[i]``, shapes (N, 2)."""
    p = np.asarray(point, dtype=float)
    a = np.asarray(seg_a, dtype=float).reshape(-1, 2)
    b = np.asarray(seg_b, dtype=float).reshape(-1, 2)
    ab = b - a
    denom = np.einsum("ij,ij->i", ab, ab)
    t = np.where(denom > 0, np.einsum("ij,ij->i", p - a, ab) / np.where(denom > 0, denom, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    closest = a + ab * t[:, None]
    return np.linalg.norm(closest - p, axis=1)


def distance_to_polygon_boundary(point, polygon) -> float:
    """Distance from a point (2,) to the boundary of a polygon ring (M, 2)."""
    poly = np.asarray(polygon, dtype=float).reshape(-1, 2)
    return float(np.min(distance_point_to_segments(point, poly, np.roll(poly, -1, axis=0))))


def is_finite(*values) -> bool:
    """True when every value (scalars or arrays) is finite."""
    return all(bool(np.all(np.isfinite(np.asarray(v, dtype=float)))) for v in values)
