"""WGS84 <-> local map frame.

The map frame of every agricare world is a local east-north plane (x east, y north, metres, REP-105) on a
transverse Mercator projection centred on a datum ``(lat0_deg, lon0_deg)``: scale 1 at the datum, error
below 1 mm per km over a farm or a town. UTM conversion for field files is in :func:`utm_crs_for`.
"""

from __future__ import annotations

import math

import numpy as np
from pyproj import CRS, Transformer


class LocalTangentPlane:
    """Projection between WGS84 (lat, lon, alt) and the map frame (x east, y north, z up).

    Parameters
    ----------
    lat0_deg, lon0_deg : float
        Datum in degrees; lat in [-90, 90], lon in [-180, 180].
    alt0_m : float
        Ellipsoidal height of the map origin.
    """

    def __init__(self, lat0_deg: float, lon0_deg: float, alt0_m: float = 0.0):
        if not (math.isfinite(lat0_deg) and -90.0 < lat0_deg < 90.0):
            raise ValueError(f"datum latitude {lat0_deg!r} not in (-90, 90) degrees")
        if not (math.isfinite(lon0_deg) and -180.0 <= lon0_deg <= 180.0):
            raise ValueError(f"datum longitude {lon0_deg!r} not in [-180, 180] degrees")
        if not math.isfinite(alt0_m):
            raise ValueError(f"datum altitude {alt0_m!r} is not finite")
        self.lat0_deg = float(lat0_deg)
        self.lon0_deg = float(lon0_deg)
        self.alt0_m = float(alt0_m)
        crs = CRS.from_proj4(
            f"+proj=tmerc +lat_0={lat0_deg:.12f} +lon_0={lon0_deg:.12f} +k=1 +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m +no_defs"
        )
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def to_map(self, lat_deg, lon_deg, alt_m=None):
        """WGS84 -> map. Scalars give floats ``(x, y[, z])``; arrays give arrays."""
        x, y = self._fwd.transform(np.asarray(lon_deg, dtype=float), np.asarray(lat_deg, dtype=float))
        if np.ndim(x) == 0:
            x, y = float(x), float(y)
        if alt_m is None:
            return x, y
        z = np.asarray(alt_m, dtype=float) - self.alt0_m
        return x, y, (z if np.ndim(z) else float(z))

    def to_wgs84(self, x_m, y_m, z_m=None):
        """map -> WGS84. Returns ``(lat_deg, lon_deg[, alt_m])``."""
        lon, lat = self._inv.transform(np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float))
        if np.ndim(lat) == 0:
            lat, lon = float(lat), float(lon)
        if z_m is None:
            return lat, lon
        alt = np.asarray(z_m, dtype=float) + self.alt0_m
        return lat, lon, (alt if np.ndim(alt) else float(alt))


def utm_crs_for(lat_deg: float, lon_deg: float) -> CRS:
    """The WGS84 UTM zone CRS containing a point."""
    zone = int((lon_deg + 180.0) // 6.0) % 60 + 1
    epsg = (32600 if lat_deg >= 0 else 32700) + zone
    return CRS.from_epsg(epsg)
