"""ArUco marker detection and solvePnP pose on rendered markers with known pose."""

from __future__ import annotations

import math

import numpy as np
import pytest
import transforms3d

from agricare.core.perception.markers import MarkerDetector, MarkerParams, euler_to_rvec, render_marker

K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])


@pytest.mark.parametrize("mid,rpy,t", [
    (3, (math.pi, 0.0, 0.0), (0.0, 0.0, 1.0)),
    (7, (math.pi + 0.35, 0.25, 0.2), (0.12, -0.06, 1.4)),
    (21, (math.pi - 0.4, -0.3, -0.5), (-0.2, 0.1, 2.0)),
])
def test_pose_recovered(mid, rpy, t):
    rv = euler_to_rvec(*rpy)
    img = render_marker(mid, K, rv, t, length_m=0.15)
    found = MarkerDetector(MarkerParams(marker_length_m=0.15)).detect(img, K)
    assert [m.id for m in found] == [mid]
    m = found[0]
    assert m.position_m == pytest.approx(t, abs=0.01 * max(1.0, t[2]))
    R_true = transforms3d.quaternions.quat2mat(transforms3d.euler.euler2quat(*rpy, axes="sxyz"))
    R_est = transforms3d.quaternions.quat2mat(m.quat_wxyz)
    ang = math.degrees(math.acos(np.clip((np.trace(R_true.T @ R_est) - 1) / 2, -1, 1)))
    assert ang < 3.0
    assert m.reprojection_px < 1.0
    assert m.distance_m == pytest.approx(np.linalg.norm(t), rel=0.01)


def test_unknown_ids_filtered_and_empty_scene():
    img = render_marker(5, K, euler_to_rvec(math.pi, 0, 0), (0, 0, 1.0))
    assert MarkerDetector(MarkerParams(known_ids=(1, 2))).detect(img, K) == []
    assert MarkerDetector().detect(np.full((480, 640, 3), 200, np.uint8), K) == []


def test_bad_inputs():
    det = MarkerDetector()
    with pytest.raises(ValueError):
        det.detect(None, K)
    with pytest.raises(ValueError):
        det.detect(np.zeros((0, 0, 3), np.uint8), K)
    with pytest.raises(ValueError):
        det.detect(np.zeros((480, 640, 3), np.uint8), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="dictionary"):
        MarkerParams(dictionary="NOPE")
    with pytest.raises(ValueError, match="marker_length_m"):
        MarkerParams(marker_length_m=0)
