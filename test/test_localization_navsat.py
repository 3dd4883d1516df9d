"""navsat transform: datum handling, bad fixes, covariance handling, lat/lon <-> map."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.localization import navsat as ns


def test_datum_from_first_good_fix_and_round_trip():
    t = ns.NavSatTransform(ns.NavSatParams())
    assert t.datum is None
    r = t.convert(ns.STATUS_NO_FIX, 52.0, 5.0, 0.0, [0] * 9, 0)
    assert not r.ok and "no fix" in r.reason and t.datum is None
    r = t.convert(ns.STATUS_FIX, 52.0, 5.0, 12.0, [1, 0, 0, 0, 1, 0, 0, 0, 4], ns.COVARIANCE_TYPE_DIAGONAL_KNOWN)
    assert r.ok and np.allclose(r.xy_in_map, 0.0, atol=1e-6) and r.covariance_known
    assert t.datum == (52.0, 5.0, 12.0)
    x, y = t.latlon_to_map(52.001, 5.001)
    assert 60 < x < 75 and 105 < y < 118  # ~68.7 m east, ~111.3 m north
    lat, lon = t.map_to_latlon(x, y)
    assert abs(lat - 52.001) < 1e-9 and abs(lon - 5.001) < 1e-9


def test_bad_fixes_are_refused_with_reasons():
    t = ns.NavSatTransform(ns.NavSatParams(datum_lat_deg=52.0, datum_lon_deg=5.0, datum_from_first_fix=False))
    cov = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert not t.convert(ns.STATUS_FIX, math.nan, 5.0, 0.0, cov, 2).ok
    assert not t.convert(ns.STATUS_FIX, 52.0, math.inf, 0.0, cov, 2).ok
    assert not t.convert(ns.STATUS_FIX, 95.0, 5.0, 0.0, cov, 2).ok
    assert not t.convert(ns.STATUS_NO_FIX, 52.0, 5.0, 0.0, cov, 2).ok
    r = t.convert(ns.STATUS_FIX, 52.0, 5.0, 0.0, [math.nan] * 9, 2)
    assert not r.ok and "not finite" in r.reason
    r = t.convert(ns.STATUS_FIX, 52.0, 5.0, 0.0, [1e4, 0, 0, 0, 1e4, 0, 0, 0, 1], 2)
    assert not r.ok and "too large" in r.reason
    assert t.refused["no_fix"] == 1 and t.refused["not_finite"] == 2


@pytest.mark.parametrize("status,std", [(ns.STATUS_FIX, 3.0), (ns.STATUS_SBAS_FIX, 1.0), (ns.STATUS_GBAS_FIX, 0.05)])
def test_unknown_covariance_uses_default_per_fix_quality(status, std):
    t = ns.NavSatTransform(ns.NavSatParams(datum_lat_deg=52.0, datum_lon_deg=5.0, datum_from_first_fix=False))
    r = t.convert(status, 52.0, 5.0, 0.0, [0.0] * 9, ns.COVARIANCE_TYPE_UNKNOWN)
    assert r.ok and not r.covariance_known and "unknown" in r.reason
    np.testing.assert_allclose(r.cov_xy, np.eye(2) * std ** 2)
    r = t.convert(status, 52.0, 5.0, 0.0, [0.0] * 9, ns.COVARIANCE_TYPE_DIAGONAL_KNOWN)
    assert r.ok and "not positive" in r.reason


def test_conversion_needs_a_datum():
    t = ns.NavSatTransform(ns.NavSatParams())
    with pytest.raises(RuntimeError):
        t.latlon_to_map(52.0, 5.0)


@pytest.mark.parametrize("kwargs,field", [
    (dict(datum_lat_deg=95.0, datum_lon_deg=5.0), "datum_lat_deg"),
    (dict(datum_lon_deg=-181.0), "datum_lon_deg"),
    (dict(datum_lat_deg=float("nan"), datum_from_first_fix=False), "datum_lat_deg"),
    (dict(default_std_fix_m=0.0), "default_std_fix_m"),
    (dict(map_frame="/map"), "map_frame"),
])
def test_bad_params_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ns.NavSatParams(**kwargs)


def test_geojson_polygon_to_map():
    t = ns.NavSatTransform(ns.NavSatParams(datum_lat_deg=52.0, datum_lon_deg=5.0, datum_from_first_fix=False))
    gj = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {
        "type": "Polygon", "coordinates": [[[5.0, 52.0], [5.001, 52.0], [5.001, 52.001], [5.0, 52.0]]]}}]}
    rings = ns.geojson_to_map(gj, t)
    assert len(rings) == 1 and rings[0].shape == (4, 2)
    assert np.allclose(rings[0][0], 0.0, atol=1e-6) and rings[0][2, 1] > 100
