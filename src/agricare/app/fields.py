"""Field boundaries uploaded by farmers: GeoJSON or KML -> polygon in the site's map frame.

Coordinates in lon/lat (GeoJSON RFC 7946 order, KML ``lon,lat[,alt]``) are projected with the site's
datum (:class:`agricare.core.geodesy.LocalTangentPlane`); a GeoJSON whose ``crs`` / properties say
``"map"`` (``{"properties": {"frame": "map"}}``) is taken as metres already.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

from shapely.geometry import Polygon

MAX_VERTICES = 5000
MAX_AREA_M2 = 5.0e6


class FieldFormatError(ValueError):
    """The file is not a usable field boundary (the message says why)."""


def _ring_from_geojson(obj) -> tuple[list, bool]:
    frame_map = False
    if obj.get("type") == "FeatureCollection":
        feats = [f for f in obj.get("features") or [] if (f.get("geometry") or {}).get("type") in
                 ("Polygon", "MultiPolygon")]
        if not feats:
            raise FieldFormatError("GeoJSON: no Polygon feature")
        obj = feats[0]
    if obj.get("type") == "Feature":
        frame_map = (obj.get("properties") or {}).get("frame") == "map"
        obj = obj.get("geometry") or {}
    if obj.get("type") == "MultiPolygon":
        coords = obj["coordinates"][0][0]
    elif obj.get("type") == "Polygon":
        coords = obj["coordinates"][0]
    else:
        raise FieldFormatError(f"GeoJSON: expected a Polygon, got {obj.get('type')!r}")
    return [(float(c[0]), float(c[1])) for c in coords], frame_map


def _ring_from_kml(text: str) -> list:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise FieldFormatError(f"KML: not XML ({exc})") from None
    for el in root.iter():
        if el.tag.endswith("outerBoundaryIs"):
            for c in el.iter():
                if c.tag.endswith("coordinates") and c.text:
                    pts = []
                    for tok in c.text.split():
                        parts = tok.split(",")
                        pts.append((float(parts[0]), float(parts[1])))
                    return pts
    raise FieldFormatError("KML: no Polygon outerBoundaryIs coordinates")


def parse_field(content: str, fmt: str, datum: tuple[float, float, float] | None) -> list[list[float]]:
    """Polygon ``[[x, y], ...]`` (map frame, metres, open ring, counter-clockwise)."""
    if fmt == "geojson":
        try:
            obj = json.loads(content)
        except ValueError as exc:
            raise FieldFormatError(f"GeoJSON: not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise FieldFormatError("GeoJSON: expected an object")
        try:
            ring, frame_map = _ring_from_geojson(obj)
        except (KeyError, IndexError, TypeError) as exc:
            raise FieldFormatError(f"GeoJSON: bad coordinates ({exc})") from None
    elif fmt == "kml":
        ring, frame_map = _ring_from_kml(content), False
    else:
        raise FieldFormatError(f"format: expected 'geojson' or 'kml', got {fmt!r}")
    if len(ring) > MAX_VERTICES:
        raise FieldFormatError(f"too many vertices ({len(ring)} > {MAX_VERTICES})")
    if not all(math.isfinite(v) for p in ring for v in p):
        raise FieldFormatError("coordinates must be finite numbers")
    if not frame_map:
        if datum is None:
            raise FieldFormatError("lon/lat boundary but the site has no datum")
        from agricare.core.geodesy import LocalTangentPlane

        ltp = LocalTangentPlane(*datum)
        ring = [tuple(float(v) for v in ltp.to_map(lat, lon)) for lon, lat in ring]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(ring) < 3:
        raise FieldFormatError("a field needs at least 3 corners")
    poly = Polygon(ring)
    if not poly.is_valid:
        raise FieldFormatError("the boundary crosses itself")
    if not 1.0 <= poly.area <= MAX_AREA_M2:
        raise FieldFormatError(f"area {poly.area:.0f} m^2 out of range [1, {MAX_AREA_M2:.0f}]")
    if poly.exterior.is_ccw is False:
        ring = ring[::-1]
    return [[round(x, 3), round(y, 3)] for x, y in ring]
