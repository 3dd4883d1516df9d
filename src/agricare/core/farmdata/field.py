"""A field as farm software exchanges it: boundary, obstacles, guidance (AB) lines, georeference.

All geometry of :class:`FieldData` is in a metric map frame (x east, y north, metres). ``geo`` is the
:class:`agricare.core.geodesy.LocalTangentPlane` that ties that frame to WGS84 (None for a field drawn in
local metres without a datum; such a field can be written only to the formats that allow local metres:
GeoJSON with ``"crs": "local"`` and a Shapefile without ``.prj``).

:func:`load_field_data` reads any supported file by its extension (``.geojson/.json``, ``.kml``, ``.kmz``,
``.shp`` / ``.zip``, ``TASKDATA.XML`` or a folder holding one); :func:`save_field_data` writes one. Errors
are :class:`FarmDataError` with a one-line message naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass, field as dc_field

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, mapping, shape
from shapely.validation import explain_validity

from agricare.core.geodesy import LocalTangentPlane
from agricare.core.planning.coverage import PlanningError

FORMATS = ("geojson", "kml", "kmz", "shp", "isoxml")


class FarmDataError(PlanningError):
    """A field or record file cannot be read or written (message: one line)."""


@dataclass
class FieldData:
    """One field.

    Attributes
    ----------
    name : str
    boundary : shapely Polygon
        Outer boundary in metres; its interior rings are unworked areas inside the boundary.
    obstacles : list of shapely Polygon
        Obstacles inside the field (trees, poles, ponds), metres; kept apart from the boundary's holes
        because farm software does (ISO 11783-10 polygon type 6).
    guidance : list of ndarray (2, 2)
        AB lines ``[[xa, ya], [xb, yb]]``, metres.
    geo : LocalTangentPlane or None
        Map frame <-> WGS84.
    """

    name: str
    boundary: Polygon
    obstacles: list = dc_field(default_factory=list)
    guidance: list = dc_field(default_factory=list)
    geo: LocalTangentPlane | None = None

    def work_area(self) -> Polygon:
        """The boundary with every obstacle cut out as a hole (what the planner and section control use)."""
        holes = [list(h.coords) for h in self.boundary.interiors]
        holes += [list(o.exterior.coords) for o in self.obstacles]
        poly = Polygon(self.boundary.exterior.coords, holes)
        if not poly.is_valid:   # overlapping obstacles / holes: merge them
            keep = shapely.union_all([Polygon(h) for h in holes]) if holes else None
            poly = Polygon(self.boundary.exterior.coords).difference(keep) if keep is not None else poly
            poly = shapely.make_valid(poly)
            if poly.geom_type != "Polygon":
                poly = max(getattr(poly, "geoms", [poly]), key=lambda g: g.area)
        return poly

    @property
    def area_m2(self) -> float:
        return float(self.work_area().area)

    def to_wgs84(self, xy) -> np.ndarray:
        """(N, 2) metres -> (N, 2) ``[lon, lat]`` degrees."""
        if self.geo is None:
            raise FarmDataError(f"field {self.name!r} has no georeference (local metres): give a datum")
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        lat, lon = self.geo.to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([np.atleast_1d(lon), np.atleast_1d(lat)])

    def from_wgs84(self, lonlat) -> np.ndarray:
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        x, y = self.geo.to_map(lonlat[:, 1], lonlat[:, 0])
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])


# ------------------------------------------------------------------------------------------ building
def datum_for(lonlat_points) -> LocalTangentPlane:
    """A map frame for a geographic field: datum at the centre of its bounding box (rounded to 1e-6 deg)."""
    pts = np.asarray(lonlat_points, dtype=float).reshape(-1, 2)
    lon = round(0.5 * (pts[:, 0].min() + pts[:, 0].max()), 6)
    lat = round(0.5 * (pts[:, 1].min() + pts[:, 1].max()), 6)
    return LocalTangentPlane(lat, lon)


def check_lonlat(lonlat, where: str) -> None:
    a = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(a)):
        raise FarmDataError(f"{where}: non-finite coordinates")
    if np.any(np.abs(a[:, 0]) > 180.0) or np.any(np.abs(a[:, 1]) > 90.0):
        raise FarmDataError(f"{where}: coordinates are not longitude/latitude degrees")


def valid_polygon(poly: Polygon, where: str) -> Polygon:
    """Check a polygon read from a file (one-line errors)."""
    if poly is None or poly.is_empty:
        raise FarmDataError(f"{where}: empty polygon")
    c = np.asarray(poly.exterior.coords)
    if len(c) < 4:
        raise FarmDataError(f"{where}: a polygon needs at least 3 distinct vertices, got {len(c) - 1}")
    if not np.all(np.isfinite(c)):
        raise FarmDataError(f"{where}: non-finite coordinates")
    if not poly.is_valid:
        poly = _holes_at_the_edge(poly) or poly
    if not poly.is_valid:
        raise FarmDataError(f"{where}: invalid polygon ({explain_validity(poly)})")
    if poly.area <= 0:
        raise FarmDataError(f"{where}: polygon has zero area")
    return poly


def _holes_at_the_edge(poly: Polygon) -> Polygon | None:
    """A polygon whose only fault is holes that touch or cross its outer ring (a pond or building drawn at the field's
    edge, as surveys often have it), with those holes cut out of the outer ring instead; None when the outer ring or a
    hole is itself broken, or cutting splits the field (one field per file)."""
    if not poly.interiors:
        return None
    outer = Polygon(poly.exterior)
    holes = [Polygon(h) for h in poly.interiors]
    if not outer.is_valid or not all(h.is_valid for h in holes):
        return None
    cut = outer.difference(shapely.union_all(holes))
    if cut.geom_type != "Polygon" or cut.is_empty or not cut.is_valid:
        return None
    return cut


#: the widest boundary read as one field. A file in local metres whose GeoJSON lacks ``"crs": "local"`` is read as
#: degrees (RFC 7946): an 80 x 60 m field became 6,000 km across
MAX_FIELD_SPAN_M = 20000.0


def _obstacle_at_the_edge(boundary: Polygon, p: Polygon, named: bool, where: str) -> list:
    """An obstacle polygon that crosses the field boundary (a barn or a tree line drawn over the edge), clipped to the
    field (its parts inside): the planner then works round them. A polygon of unknown role counts as such an obstacle
    only when most of it lies inside the field; otherwise it is another field."""
    inside = boundary.intersection(p)
    parts = [g for g in getattr(inside, "geoms", [inside]) if g.geom_type == "Polygon" and g.area > 0]
    share = sum(g.area for g in parts) / p.area if p.area > 0 else 0.0
    if not parts or share <= (0.0 if named else 0.5):
        raise FarmDataError(f"{where}: a second polygon lies outside the field boundary; one field per file")
    if boundary.difference(shapely.union_all(parts)).geom_type != "Polygon":
        raise FarmDataError(f"{where}: an obstacle cuts the field in two; one field per file")
    return parts


def assemble(name: str, polygons: list, lines: list, where: str, kinds: list | None = None,
             geo: LocalTangentPlane | None = None) -> FieldData:
    """A FieldData from the polygons and lines of a file (already in metres).

    ``kinds`` gives each polygon's role ("boundary", "obstacle", or "" unknown). Without roles, the largest
    polygon is the boundary and every other polygon inside it an obstacle.
    """
    if not polygons:
        raise FarmDataError(f"{where}: no field boundary polygon found")
    kinds = list(kinds) if kinds is not None else [""] * len(polygons)
    polygons = [valid_polygon(p, where) for p in polygons]
    named = [i for i, k in enumerate(kinds) if k == "boundary"]
    if len(named) > 1:
        raise FarmDataError(f"{where}: {len(named)} boundary polygons; one field per file")
    bi = named[0] if named else int(np.argmax([p.area for p in polygons]))
    boundary = shapely.geometry.polygon.orient(polygons[bi], 1.0)
    x0, y0, x1, y1 = boundary.bounds
    if max(x1 - x0, y1 - y0) > MAX_FIELD_SPAN_M:
        hint = " (GeoJSON coordinates are longitude/latitude degrees unless the file says \"crs\": \"local\")" \
            if geo is not None else ""
        raise FarmDataError(f"{where}: the boundary spans {max(x1 - x0, y1 - y0) / 1000:.0f} km, more than a field's "
                            f"{MAX_FIELD_SPAN_M / 1000:.0f} km{hint}")
    obstacles = []
    for i, p in enumerate(polygons):
        if i == bi:
            continue
        if kinds[i] not in ("", "obstacle"):
            continue
        parts = [p] if boundary.buffer(1e-6).contains(p) else \
            _obstacle_at_the_edge(boundary, p, kinds[i] == "obstacle", where)
        obstacles += [shapely.geometry.polygon.orient(g, 1.0) for g in parts]
    guidance = []
    for ln in lines:
        a = np.asarray(ln, dtype=float).reshape(-1, 2)
        if len(a) < 2 or not np.all(np.isfinite(a)) or math.hypot(*(a[-1] - a[0])) < 1e-3:
            raise FarmDataError(f"{where}: a guidance line needs two distinct points")
        guidance.append(np.array([a[0], a[-1]]))
    return FieldData(name=name or "field", boundary=boundary, obstacles=obstacles, guidance=guidance, geo=geo)


def field_from_rings(outer, obstacles=(), where: str = "field") -> Polygon:
    """The field to work from an outer ring and obstacle rings (map frame, metres), as a goal or an upload carries
    them: the obstacles cut out as holes (an obstacle over the boundary clipped to the field, overlapping ones
    merged). :class:`FarmDataError` (one line) for fewer than 3 points, non-finite values, a broken ring, an obstacle
    outside the field or one that cuts the field in two."""
    def ring(pts, what):
        a = np.asarray(pts, dtype=float).reshape(-1, 2) if len(pts) else np.zeros((0, 2))
        if len(a) < 3 or not np.all(np.isfinite(a)):
            raise FarmDataError(f"{where}: {what} needs >= 3 finite points (map frame, metres)")
        poly = Polygon(a)
        if not poly.is_valid or poly.area <= 0:
            raise FarmDataError(f"{where}: {what} is not a simple polygon with area")
        return poly

    field = ring(outer, "the boundary")
    holes = [ring(h, f"obstacle {k + 1}") for k, h in enumerate(obstacles)]
    for k, h in enumerate(holes):
        if field.intersection(h).area <= 0:
            raise FarmDataError(f"{where}: obstacle {k + 1} lies outside the field")
    if holes:
        field = field.difference(shapely.union_all(holes))
        if field.geom_type != "Polygon" or field.is_empty:
            raise FarmDataError(f"{where}: the obstacles cut the field in two; one field per goal")
    return shapely.geometry.polygon.orient(field, 1.0)


# ------------------------------------------------------------------------------------------- GeoJSON
def _geojson_to_field(doc, where: str, datum: LocalTangentPlane | None) -> FieldData:
    if not isinstance(doc, dict) or doc.get("type") not in ("FeatureCollection", "Feature", "Polygon",
                                                            "MultiPolygon"):
        raise FarmDataError(f"{where}: not a GeoJSON Polygon, Feature or FeatureCollection")
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else \
        [doc if doc.get("type") == "Feature" else {"type": "Feature", "geometry": doc, "properties": {}}]
    if not isinstance(feats, list):
        raise FarmDataError(f"{where}: 'features' is not a list")
    props0 = doc.get("properties") or {}
    crs = props0.get("crs")
    geoms, kinds, lines, name = [], [], [], props0.get("name", "")
    for f in feats:
        if not isinstance(f, dict):
            raise FarmDataError(f"{where}: a feature is not an object")
        props = f.get("properties") or {}
        crs = crs or props.get("crs")
        g = f.get("geometry")
        if not isinstance(g, dict):
            continue
        try:
            geom = shape(g)
        except Exception as exc:  # noqa: BLE001 - shapely raises many types on malformed input
            raise FarmDataError(f"{where}: malformed {g.get('type')} geometry ({exc})") from None
        kind = str(props.get("kind", "")).lower()
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            for p in getattr(geom, "geoms", [geom]):
                geoms.append(p)
                kinds.append(kind)
            name = name or props.get("name", "")
        elif geom.geom_type == "LineString":
            lines.append(np.asarray(geom.coords)[:, :2])
    if not geoms:
        raise FarmDataError(f"{where}: no Polygon feature found")
    if crs is None and isinstance(doc.get("crs"), dict):
        crs = (doc["crs"].get("properties") or {}).get("name")
    crs = str(crs or "EPSG:4326")
    if crs.lower() in ("local", "metres", "meters", "m"):
        polys = [shapely.force_2d(p) for p in geoms]
        return assemble(name, polys, lines, where, kinds, geo=datum)
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        crs_in = CRS.from_user_input(crs.replace("urn:ogc:def:crs:OGC:1.3:CRS84", "OGC:CRS84"))
    except CRSError:
        raise FarmDataError(f"{where}: unknown CRS {crs!r}") from None
    to_ll = None if crs_in.is_geographic else Transformer.from_crs(crs_in, "EPSG:4326", always_xy=True)

    def lonlat(c):
        c = np.asarray(c, dtype=float)[:, :2]
        if to_ll is None:
            return c
        lon, lat = to_ll.transform(c[:, 0], c[:, 1])
        return np.column_stack([lon, lat])

    allpts = np.vstack([lonlat(p.exterior.coords) for p in geoms])
    check_lonlat(allpts, where)
    geo = datum or datum_for(allpts)
    tmp = FieldData("", Polygon(), geo=geo)

    def to_m(c):
        return tmp.from_wgs84(lonlat(c))

    polys = [Polygon(to_m(p.exterior.coords), [to_m(h.coords) for h in p.interiors]) for p in geoms]
    return assemble(name, polys, [to_m(ln) for ln in lines], where, kinds, geo=geo)


def field_to_geojson(fd: FieldData) -> dict:
    """GeoJSON FeatureCollection: WGS84 lon/lat (RFC 7946) when georeferenced, else ``"crs": "local"``."""
    conv = (lambda xy: fd.to_wgs84(xy)) if fd.geo is not None else (lambda xy: np.asarray(xy, float))

    def poly(p):
        p = shapely.geometry.polygon.orient(p, 1.0)
        return Polygon(conv(p.exterior.coords), [conv(h.coords) for h in p.interiors])

    feats = [{"type": "Feature", "properties": {"kind": "boundary", "name": fd.name},
              "geometry": mapping(poly(fd.boundary))}]
    feats += [{"type": "Feature", "properties": {"kind": "obstacle", "name": f"obstacle {i + 1}"},
               "geometry": mapping(poly(o))} for i, o in enumerate(fd.obstacles)]
    feats += [{"type": "Feature", "properties": {"kind": "guidance", "name": f"AB {i + 1}"},
               "geometry": mapping(LineString(conv(g)))} for i, g in enumerate(fd.guidance)]
    props = {"name": fd.name, "crs": "EPSG:4326" if fd.geo is not None else "local"}
    if fd.geo is not None:
        props["datum"] = {"lat_deg": fd.geo.lat0_deg, "lon_deg": fd.geo.lon0_deg}
    return {"type": "FeatureCollection", "properties": props, "features": feats}


def _json_floats(obj, nd=9):
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, (list, tuple)):
        return [_json_floats(v, nd) for v in obj]
    if isinstance(obj, dict):
        return {k: _json_floats(v, nd) for k, v in obj.items()}
    return obj


def read_geojson(path, datum=None) -> FieldData:
    p = pathlib.Path(path)
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise FarmDataError(f"{p}: empty file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FarmDataError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    fd = _geojson_to_field(doc, str(p), datum)
    if fd.geo is None and isinstance(doc, dict):
        d = (doc.get("properties") or {}).get("datum")
        if isinstance(d, dict) and "lat_deg" in d and "lon_deg" in d:
            fd.geo = LocalTangentPlane(float(d["lat_deg"]), float(d["lon_deg"]))
    return fd


def write_geojson(fd: FieldData, path) -> pathlib.Path:
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_json_floats(field_to_geojson(fd), 9 if fd.geo is not None else 4), indent=1))
    return p


# ------------------------------------------------------------------------------------------ dispatch
def detect_format(path) -> str:
    p = pathlib.Path(path)
    suf = p.suffix.lower()
    if p.is_dir() or p.name.upper() == "TASKDATA.XML" or suf == ".xml":
        return "isoxml"
    return {".geojson": "geojson", ".json": "geojson", ".kml": "kml", ".kmz": "kmz", ".shp": "shp",
            ".zip": "shp"}.get(suf, "")


def load_field_data(path, datum: LocalTangentPlane | None = None, fmt: str = "", name: str = "") -> FieldData:
    """Read a field from a file of any supported format; one-line :class:`FarmDataError` on bad input.

    ``datum`` fixes the map frame (a scenario's datum); by default it is the centre of the field. ``name`` picks a
    partfield of an ISO-XML TaskData set by its designator (default: the first with a boundary); the other formats
    hold one field per file.
    """
    p = pathlib.Path(path)
    if not p.exists():
        raise FarmDataError(f"{p}: file not found")
    fmt = fmt or detect_format(p)
    if name and fmt != "isoxml":
        raise FarmDataError(f"{p}: a field name picks a partfield of ISO-XML TaskData; a {fmt} file holds one field")
    try:
        if fmt == "geojson":
            fd = read_geojson(p, datum)
        elif fmt in ("kml", "kmz"):
            from agricare.core.farmdata.kml import read_kml

            fd = read_kml(p, datum)
        elif fmt == "shp":
            from agricare.core.farmdata.shp import read_shapefile

            fd = read_shapefile(p, datum)
        elif fmt == "isoxml":
            from agricare.core.farmdata.isoxml import read_taskdata_field

            fd = read_taskdata_field(p, datum, name)
        else:
            raise FarmDataError(f"{p}: unknown field format (use .geojson, .kml, .kmz, .shp, .zip or TASKDATA.XML)")
    except FarmDataError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise FarmDataError(f"{p}: cannot read ({exc})") from None
    if not fd.name or fd.name == "field":
        fd.name = p.stem if p.name.upper() != "TASKDATA.XML" else p.parent.name
    return fd


def save_field_data(fd: FieldData, path, fmt: str = "") -> list[pathlib.Path]:
    """Write a field; returns the files written."""
    p = pathlib.Path(path)
    fmt = fmt or detect_format(p)
    if fmt == "geojson":
        return [write_geojson(fd, p)]
    if fmt in ("kml", "kmz"):
        from agricare.core.farmdata.kml import write_kml

        return [write_kml(fd, p, kmz=(fmt == "kmz"))]
    if fmt == "shp":
        from agricare.core.farmdata.shp import write_field_shapefile

        return write_field_shapefile(fd, p)
    if fmt == "isoxml":
        from agricare.core.farmdata.isoxml import write_taskdata

        return write_taskdata(p if p.suffix.lower() != ".xml" else p.parent, fields=[fd])
    raise FarmDataError(f"{p}: unknown output format {fmt!r} (one of {', '.join(FORMATS)})")
