"""Conversions core <-> messages round-trip (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agricare.core import geometry

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image, LaserScan  # noqa: E402

from agricare.ros import convert  # noqa: E402

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
angle = st.floats(min_value=-math.pi + 1e-9, max_value=math.pi - 1e-9)


@settings(max_examples=200, deadline=None)
@given(x=finite, y=finite, yaw=angle)
def test_pose_round_trip(x, y, yaw):
    back = convert.pose_to_xyyaw(convert.xyyaw_to_pose(x, y, yaw))
    assert back[0] == pytest.approx(x) and back[1] == pytest.approx(y)
    assert abs(geometry.angle_diff(back[2], yaw)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(r=st.floats(-1.5, 1.5), p=st.floats(-1.5, 1.5), yaw=angle)
def test_rpy_round_trip(r, p, yaw):
    q = convert.rpy_to_quaternion_msg(r, p, yaw)
    r2, p2, y2 = convert.quaternion_msg_to_rpy(q)
    assert r2 == pytest.approx(r, abs=1e-7) and p2 == pytest.approx(p, abs=1e-7)
    assert abs(geometry.angle_diff(y2, yaw)) < 1e-7
    assert convert.quaternion_msg_to_yaw(q) == pytest.approx(y2, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(t=st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_stamp_round_trip(t):
    assert convert.from_stamp(convert.to_stamp(t)) == pytest.approx(t, abs=1e-9 * max(1.0, t) + 1e-9)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_stamp_rejected(bad):
    with pytest.raises(ValueError):
        convert.to_stamp(bad)


@settings(max_examples=50, deadline=None)
@given(pts=st.lists(st.tuples(finite, finite, angle), min_size=1, max_size=30))
def test_path_round_trip(pts):
    arr = np.array(pts)
    back = convert.path_to_array(convert.array_to_path(arr, "map", 1.5))
    assert back.shape == arr.shape
    np.testing.assert_allclose(back[:, :2], arr[:, :2])
    assert np.all(np.abs(geometry.wrap_angle(back[:, 2] - arr[:, 2])) < 1e-9)


def test_path_without_yaw_follows_direction():
    path = convert.array_to_path(np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 2.0]]), "map", 0.0)
    yaws = convert.path_to_array(path)[:, 2]
    assert yaws[0] == pytest.approx(math.pi / 4) and yaws[1] == pytest.approx(math.pi / 2)


def test_image_round_trip_and_encodings():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, size=(7, 5, 3), dtype=np.uint8)
    msg = convert.bgr_to_image(img, 2.0, "camera")
    np.testing.assert_array_equal(convert.image_to_bgr(msg), img)
    rgb = Image(height=7, width=5, encoding="rgb8", step=15, data=img[:, :, ::-1].tobytes())
    np.testing.assert_array_equal(convert.image_to_bgr(rgb), img)
    mono = Image(height=2, width=2, encoding="mono8", step=2, data=bytes([1, 2, 3, 4]))
    assert convert.image_to_bgr(mono).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="encoding"):
        convert.image_to_bgr(Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(16)))
    with pytest.raises(ValueError, match="too short"):
        convert.image_to_bgr(Image(height=4, width=4, encoding="bgr8", step=12, data=bytes(10)))
    with pytest.raises(ValueError, match="empty"):
        convert.image_to_bgr(Image(height=0, width=4, encoding="bgr8", step=12, data=b""))


def test_scan_rep117():
    scan = LaserScan(angle_min=0.0, angle_increment=math.pi / 2, range_min=0.1, range_max=10.0)
    scan.ranges = [1.0, float("nan"), float("inf"), 0.05, 2.0]
    pts = convert.scan_to_points(scan)
    assert pts.shape == (2, 2)
    np.testing.assert_allclose(pts[0], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pts[1], [2.0, 0.0], atol=1e-9)  # 4 * pi/2 = 2 pi


def test_polygon_round_trip():
    sq = np.array([[0, 0], [2, 0], [2, 1], [0, 1]], dtype=float)
    np.testing.assert_allclose(convert.polygon_to_array(convert.array_to_polygon(sq)), sq)
