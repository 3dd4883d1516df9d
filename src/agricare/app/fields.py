"""Field boundaries uploaded by farmers: GeoJSON or KML -> polygon with holes in the site's map frame.

Coordinates in lon/lat (GeoJSON RFC 7946 order, KML ``lon,lat[,alt]``) are projected with the site's
datum (:class:`agricare.core.geodesy.LocalTangentPlane`); a GeoJSON whose properties say ``"frame": "map"``
(``{"properties": {"frame": "map"}}``) or ``"crs": "local"`` is taken as metres already.
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import shapely

MAX_VERTICES = 5000
MAX_AREA_M2 = 5.0e6


class FieldFormatError(ValueError):
    """The file is not a usable field boundary (the message says why)."""


def _map_frame_as_local(doc: dict) -> dict:
    """The app's convention for metres (``"frame": "map"`` in the properties of the object or a feature) said the
    way the field readers take it (``"crs": "local"``)."""
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc]
    if any(isinstance(f, dict) and (f.get("properties") or {}).get("frame") == "map"
           for f in [doc, *(feats or [])]):
        doc = dict(doc)
        doc["properties"] = {**(doc.get("properties") or {}), "crs": "local"}
    return doc


def parse_field(content: str, fmt: str, datum: tuple[float, float, float] | None) -> dict:
    """``{"polygon": [[x, y], ...], "holes": [[[x, y], ...], ...]}`` in the map frame (metres, open rings, the
    outer one counter-clockwise): the boundary and the areas inside it not to be worked (a GeoJSON polygon's
    interior rings or obstacle features, a KML ``innerBoundaryIs`` or a second Placemark inside the field), read
    by the same readers as ``agricare field import`` (:mod:`agricare.core.farmdata`). The holes go to the robot
    with the job: a pond left out of the upload would be planned through."""
    from agricare.core.farmdata import FarmDataError, load_field_data
    from agricare.core.geodesy import LocalTangentPlane

    if fmt == "geojson":
        try:
            obj = json.loads(content)
        except ValueError as exc:
            raise FieldFormatError(f"GeoJSON: not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise FieldFormatError("GeoJSON: expected an object")
        content, label = json.dumps(_map_frame_as_local(obj)), "GeoJSON"
    elif fmt == "kml":
        label = "KML"
    else:
        raise FieldFormatError(f"format: expected 'geojson' or 'kml', got {fmt!r}")
    ltp = LocalTangentPlane(*datum) if datum is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"upload.{fmt}"
        path.write_text(content, encoding="utf-8")
        try:
            fd = load_field_data(path, datum=ltp)
        except FarmDataError as exc:
            raise FieldFormatError(f"{label}: {str(exc).replace(str(path) + ': ', '')}") from None
    if fd.geo is not None and ltp is None:
        raise FieldFormatError("lon/lat boundary but the site has no datum")
    poly = shapely.geometry.polygon.orient(fd.work_area(), 1.0)
    rings = [poly.exterior, *poly.interiors]
    n = sum(len(r.coords) - 1 for r in rings)
    if n > MAX_VERTICES:
        raise FieldFormatError(f"too many vertices ({n} > {MAX_VERTICES})")
    if not 1.0 <= poly.area <= MAX_AREA_M2:
        raise FieldFormatError(f"area {poly.area:.0f} m^2 out of range [1, {MAX_AREA_M2:.0f}]")

    def ring(r):
        return [[round(x, 3), round(y, 3)] for x, y in list(r.coords)[:-1]]

    return {"polygon": ring(poly.exterior), "holes": [ring(h) for h in poly.interiors]}
