"""core.geometry and core.geodesy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agricare.core import geometry
from agricare.core.geodesy import LocalTangentPlane, utm_crs_for

pose = st.tuples(st.floats(-100, 100), st.floats(-100, 100), st.floats(-math.pi, math.pi))


@settings(max_examples=200, deadline=None)
@given(a=pose, b=pose)
def test_se2_compose_inverse(a, b):
    ab = geometry.se2_compose(a, b)
    back = geometry.se2_compose(geometry.se2_inverse(a), ab)
    np.testing.assert_allclose(back[:2], b[:2], atol=1e-8)
    assert abs(geometry.angle_diff(back[2], b[2])) < 1e-9
    M = geometry.se2_to_matrix(a) @ geometry.se2_to_matrix(b)
    np.testing.assert_allclose(geometry.matrix_to_se2(M)[:2], ab[:2], atol=1e-8)


@settings(max_examples=200, deadline=None)
@given(a=st.floats(-1e3, 1e3))
def test_wrap_angle_range(a):
    w = geometry.wrap_angle(a)
    assert -math.pi <= w < math.pi
    assert math.isclose(math.sin(w), math.sin(a), abs_tol=1e-9)


def test_points_in_polygon_and_distance():
    sq = [[0, 0], [4, 0], [4, 4], [0, 4]]
    inside = geometry.points_in_polygon([[1, 1], [5, 1], [3.9, 3.9], [-0.1, 2]], sq)
    assert inside.tolist() == [True, False, True, False]
    assert geometry.distance_to_polygon_boundary([1, 2], sq) == pytest.approx(1.0)
    assert geometry.polygon_area(sq) == pytest.approx(16.0)
    assert geometry.polygon_area(sq[::-1]) == pytest.approx(-16.0)


def test_quaternion_helpers():
    q = geometry.rpy_to_quat(0.1, -0.2, 1.0)
    r, p, y = geometry.quat_to_rpy(q)
    assert (r, p, y) == pytest.approx((0.1, -0.2, 1.0))
    assert geometry.quat_to_yaw(geometry.yaw_to_quat(2.5)) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        geometry.quat_to_rpy([0, 0, 0, 0])


def test_local_tangent_plane_round_trip_and_scale():
    ltp = LocalTangentPlane(36.1, 140.1, 20.0)
    x, y = ltp.to_map(36.1, 140.1)
    assert abs(x) < 1e-6 and abs(y) < 1e-6
    lat, lon = ltp.to_wgs84(100.0, 200.0)
    x2, y2 = ltp.to_map(lat, lon)
    assert x2 == pytest.approx(100.0, abs=1e-6) and y2 == pytest.approx(200.0, abs=1e-6)
    # one arc-second of latitude is about 30.8 m
    _, dy = ltp.to_map(36.1 + 1 / 3600, 140.1)
    assert dy == pytest.approx(30.82, abs=0.05)
    assert ltp.to_map(36.1, 140.1, 25.0)[2] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="latitude"):
        LocalTangentPlane(95.0, 0.0)
    assert utm_crs_for(36.1, 140.1).to_epsg() == 32654
