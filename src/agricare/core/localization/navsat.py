"""GNSS fix (WGS84) -> map frame, with explicit handling of bad fixes.

The map frame is the local east-north plane of :class:`agricare.core.geodesy.LocalTangentPlane` at a datum
that comes from the parameters (``datum_from_first_fix: false``) or from the first good fix.
:meth:`NavSatTransform.convert` takes the plain fields of a ``sensor_msgs/NavSatFix`` and returns a
:class:`FixResult` that either carries
the position and its 2x2 covariance in the map frame or says why the fix was refused (no fix, NaN, out of
range, no datum yet). Unknown covariance is replaced by a default per fix quality and flagged.

Run ``python -m agricare.core.localization.navsat`` for a small demo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agricare.core.geodesy import LocalTangentPlane

# sensor_msgs/NavSatStatus and NavSatFix constants (copied as plain ints: no rclpy below core/)
STATUS_NO_FIX = -1
STATUS_FIX = 0
STATUS_SBAS_FIX = 1
STATUS_GBAS_FIX = 2
COVARIANCE_TYPE_UNKNOWN = 0
COVARIANCE_TYPE_APPROXIMATED = 1
COVARIANCE_TYPE_DIAGONAL_KNOWN = 2
COVARIANCE_TYPE_KNOWN = 3


@dataclass(frozen=True)
class NavSatParams:
    """Parameters of :class:`NavSatTransform` and ``navsat_node``."""

    map_frame: str = "map"
    datum_from_first_fix: bool = True      # false: datum_lat_deg / datum_lon_deg / datum_alt_m are the datum
    datum_lat_deg: float = 0.0
    datum_lon_deg: float = 0.0
    datum_alt_m: float = 0.0
    default_std_fix_m: float = 3.0
    default_std_sbas_m: float = 1.0
    default_std_gbas_m: float = 0.05
    min_std_m: float = 0.005
    max_std_m: float = 50.0

    def __post_init__(self):
        mf = self.map_frame
        if not isinstance(mf, str) or not mf.strip() or mf.startswith("/") or " " in mf:
            raise ValueError(f"map_frame must be a non-empty frame id without '/' or spaces, got {mf!r}")
        if not (math.isfinite(self.datum_lat_deg) and -90.0 < self.datum_lat_deg < 90.0):
            raise ValueError(f"datum_lat_deg {self.datum_lat_deg} not in (-90, 90)")
        if not (math.isfinite(self.datum_lon_deg) and -180.0 <= self.datum_lon_deg <= 180.0):
            raise ValueError(f"datum_lon_deg {self.datum_lon_deg} not in [-180, 180]")
        if not math.isfinite(self.datum_alt_m):
            raise ValueError("datum_alt_m must be finite")
        for name in ("default_std_fix_m", "default_std_sbas_m", "default_std_gbas_m", "min_std_m",
                     "max_std_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if self.min_std_m >= self.max_std_m:
            raise ValueError("min_std_m must be < max_std_m")

    @property
    def has_datum(self) -> bool:
        return not self.datum_from_first_fix


@dataclass(frozen=True)
class FixResult:
    """Outcome of converting one fix.

    Attributes
    ----------
    ok : bool
    reason : str
        Why the fix was refused ("" when ok), or a note ("covariance unknown: default used").
    xy_in_map : ndarray (2,) or None
    cov_xy : ndarray (2, 2) or None
        Covariance of x, y in m^2 (east, north).
    z_m : float
    covariance_known : bool
    """

    ok: bool
    reason: str = ""
    xy_in_map: np.ndarray | None = None
    cov_xy: np.ndarray | None = None
    z_m: float = float("nan")
    covariance_known: bool = False


class NavSatTransform:
    """Convert fixes to the map frame.

    Parameters
    ----------
    params : NavSatParams
    """

    def __init__(self, params: NavSatParams | None = None):
        self.p = params or NavSatParams()
        self.plane: LocalTangentPlane | None = None
        if self.p.has_datum:
            self.plane = LocalTangentPlane(self.p.datum_lat_deg, self.p.datum_lon_deg, self.p.datum_alt_m)
        self.refused = {"no_fix": 0, "not_finite": 0, "out_of_range": 0, "bad_covariance": 0}

    @property
    def datum(self):
        """``(lat_deg, lon_deg, alt_m)`` or None before the first good fix."""
        if self.plane is None:
            return None
        return self.plane.lat0_deg, self.plane.lon0_deg, self.plane.alt0_m

    def set_datum(self, lat_deg: float, lon_deg: float, alt_m: float = 0.0):
        self.plane = LocalTangentPlane(lat_deg, lon_deg, alt_m)

    def convert(self, status: int, lat_deg: float, lon_deg: float, alt_m: float,
                covariance, covariance_type: int) -> FixResult:
        """Convert one fix.

        Parameters
        ----------
        status : int
            ``NavSatStatus.status`` (-1 no fix, 0 fix, 1 SBAS, 2 GBAS/RTK).
        lat_deg, lon_deg, alt_m : float
        covariance : array_like (9,)
            Row-major ENU position covariance, m^2.
        covariance_type : int
            ``NavSatFix.position_covariance_type``.
        """
        if status is None or int(status) < STATUS_FIX:
            self.refused["no_fix"] += 1
            return FixResult(False, "no fix (status NO_FIX)")
        if not all(_finite(v) for v in (lat_deg, lon_deg)):
            self.refused["not_finite"] += 1
            return FixResult(False, "latitude/longitude not finite")
        if not (-90.0 < lat_deg < 90.0 and -180.0 <= lon_deg <= 180.0):
            self.refused["out_of_range"] += 1
            return FixResult(False, f"latitude/longitude out of range ({lat_deg}, {lon_deg})")
        alt = float(alt_m) if _finite(alt_m) else float("nan")
        cov, known, note = self._covariance(int(status), covariance, covariance_type)
        if cov is None:
            self.refused["bad_covariance"] += 1
            return FixResult(False, note)
        if self.plane is None:
            if not self.p.datum_from_first_fix:
                return FixResult(False, "no datum")
            self.set_datum(lat_deg, lon_deg, alt if math.isfinite(alt) else 0.0)
        x, y = self.plane.to_map(lat_deg, lon_deg)
        z = alt - self.plane.alt0_m if math.isfinite(alt) else float("nan")
        return FixResult(True, note, np.array([x, y]), cov, z, known)

    def _covariance(self, status, covariance, covariance_type):
        default = {STATUS_FIX: self.p.default_std_fix_m, STATUS_SBAS_FIX: self.p.default_std_sbas_m}.get(
            status, self.p.default_std_gbas_m)
        if covariance_type is None or int(covariance_type) == COVARIANCE_TYPE_UNKNOWN:
            return np.eye(2) * default ** 2, False, "covariance unknown: default used"
        try:
            c = np.asarray(covariance, dtype=float).reshape(3, 3)
        except (TypeError, ValueError):
            return np.eye(2) * default ** 2, False, "covariance malformed: default used"
        cxy = c[:2, :2]
        if not np.all(np.isfinite(cxy)):
            return None, False, "covariance not finite"
        if int(covariance_type) != COVARIANCE_TYPE_KNOWN:
            cxy = np.diag(np.diag(cxy))
        cxy = 0.5 * (cxy + cxy.T)
        if np.any(np.diag(cxy) <= 0) or np.linalg.det(cxy) <= 0:
            return np.eye(2) * default ** 2, False, "covariance not positive: default used"
        if np.any(np.diag(cxy) > self.p.max_std_m ** 2):
            return None, False, f"covariance too large (> {self.p.max_std_m} m std)"
        cxy = cxy + np.eye(2) * max(0.0, self.p.min_std_m ** 2 - float(np.min(np.diag(cxy))))
        return cxy, True, ""

    # ------------------------------------------------------------ conversions
    def latlon_to_map(self, lat_deg, lon_deg):
        """WGS84 -> map ``(x_m, y_m)`` (scalars or arrays). Raises RuntimeError before a datum exists."""
        if self.plane is None:
            raise RuntimeError("no datum yet: set one or wait for the first good fix")
        lat = np.asarray(lat_deg, dtype=float)
        lon = np.asarray(lon_deg, dtype=float)
        if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
            raise ValueError("latitude/longitude must be finite")
        if np.any(np.abs(lat) >= 90.0) or np.any(np.abs(lon) > 180.0):
            raise ValueError("latitude/longitude out of range")
        return self.plane.to_map(lat_deg, lon_deg)

    def map_to_latlon(self, x_m, y_m):
        """map -> WGS84 ``(lat_deg, lon_deg)``."""
        if self.plane is None:
            raise RuntimeError("no datum yet: set one or wait for the first good fix")
        return self.plane.to_wgs84(x_m, y_m)


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def geojson_to_map(geojson: dict, transform: NavSatTransform) -> list[np.ndarray]:
    """Every polygon outer ring of a GeoJSON (WGS84, [lon, lat]) object as map-frame arrays (N, 2)."""
    rings: list[np.ndarray] = []

    def geom(g):
        t = g.get("type")
        if t == "Polygon":
            rings.append(_ring(g["coordinates"][0]))
        elif t == "MultiPolygon":
            for poly in g["coordinates"]:
                rings.append(_ring(poly[0]))
        elif t == "GeometryCollection":
            for sub in g.get("geometries", []):
                geom(sub)

    def _ring(coords):
        arr = np.asarray(coords, dtype=float)[:, :2]
        x, y = transform.latlon_to_map(arr[:, 1], arr[:, 0])
        return np.column_stack([x, y])

    t = geojson.get("type")
    if t == "FeatureCollection":
        for f in geojson.get("features", []):
            if f.get("geometry"):
                geom(f["geometry"])
    elif t == "Feature":
        geom(geojson["geometry"])
    else:
        geom(geojson)
    return rings


if __name__ == "__main__":  # pragma: no cover
    nst = NavSatTransform(NavSatParams(datum_lat_deg=52.0, datum_lon_deg=5.0, datum_from_first_fix=False))
    print(nst.convert(STATUS_GBAS_FIX, 52.001, 5.001, 10.0, [4e-4, 0, 0, 0, 4e-4, 0, 0, 0, 1e-3], 2))
    print(nst.convert(STATUS_NO_FIX, 52.001, 5.001, 10.0, [0] * 9, 0))
