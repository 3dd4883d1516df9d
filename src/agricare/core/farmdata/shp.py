"""ESRI Shapefiles (pyshp): fields in and out, and the record layers (points, polygons) out.

A field is ``NAME.shp`` (+ ``.shx``, ``.dbf``, ``.prj``) of Polygon shapes with a ``kind`` attribute
(boundary / obstacle) and, when it has guidance lines, ``NAME_guidance.shp`` of PolyLines. Reading also
takes a ``.zip`` holding the files. The CRS comes from ``.prj`` (pyproj); without one, coordinates whose
extent is below 0.1 units and within lon/lat ranges are taken as WGS84 degrees, everything else as local
metres.
"""

from __future__ import annotations

import io
import pathlib
import warnings
import zipfile

import numpy as np
import shapefile
import shapely
from shapely.geometry import Polygon

from agricare.core.farmdata.field import FarmDataError, FieldData, assemble, check_lonlat, datum_for

WGS84_PRJ = ('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
             'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')


def _open(p: pathlib.Path, stem_suffix: str = ""):
    """(Reader, prj text or None) for a .shp path or a .zip; None when the (optional) file is absent."""
    if p.suffix.lower() == ".zip":
        try:
            z = zipfile.ZipFile(p)
        except zipfile.BadZipFile:
            raise FarmDataError(f"{p}: not a valid zip file") from None
        names = {n.lower(): n for n in z.namelist()}
        shps = sorted(n for n in names if n.endswith(".shp") and not n.endswith("_guidance.shp"))
        if not shps:
            raise FarmDataError(f"{p}: the zip holds no .shp file")
        base = shps[0][:-4] + stem_suffix
        if base + ".shp" not in names:
            return None, None
        files = {}
        for ext in ("shp", "shx", "dbf", "prj"):
            n = names.get(f"{base}.{ext}")
            files[ext] = io.BytesIO(z.read(n)) if n else None
        if files["shx"] is None or files["dbf"] is None:
            raise FarmDataError(f"{p}: {base}.shp needs its .shx and .dbf beside it in the zip")
        prj = files["prj"].read().decode("utf-8", "replace") if files["prj"] else None
        return shapefile.Reader(shp=files["shp"], shx=files["shx"], dbf=files["dbf"]), prj
    shp = p.with_name(p.stem + stem_suffix + ".shp")
    if not shp.is_file():
        return None, None
    for ext in (".shx", ".dbf"):
        if not shp.with_suffix(ext).is_file():
            raise FarmDataError(f"{shp}: missing {shp.with_suffix(ext).name} (a shapefile is .shp + .shx + .dbf)")
    prj = shp.with_suffix(".prj").read_text(errors="replace") if shp.with_suffix(".prj").is_file() else None
    return shapefile.Reader(str(shp)), prj


def _to_lonlat(prj: str | None, pts: np.ndarray, where: str):
    """A function (N, 2) -> (N, 2) lon/lat, or None for local metres."""
    if prj:
        from pyproj import CRS, Transformer
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_wkt(prj)
        except CRSError:
            raise FarmDataError(f"{where}: the .prj is not a valid coordinate system") from None
        if crs.is_geographic:
            return lambda c: np.asarray(c, float)
        tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        return lambda c: np.column_stack(tr.transform(np.asarray(c, float)[:, 0], np.asarray(c, float)[:, 1]))
    span = pts.max(axis=0) - pts.min(axis=0)
    if np.all(np.abs(pts[:, 0]) <= 180) and np.all(np.abs(pts[:, 1]) <= 90) and np.all(span < 0.1):
        return lambda c: np.asarray(c, float)
    return None


def _rings(shape) -> list[np.ndarray]:
    pts = np.asarray(shape.points, dtype=float).reshape(-1, 2)
    parts = list(shape.parts) + [len(pts)]
    return [pts[a:b] for a, b in zip(parts[:-1], parts[1:]) if b - a >= 1]


def _polygons_of_shape(shape) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """ESRI rings -> (exterior, holes): clockwise rings are exteriors, counter-clockwise ones holes of the
    exterior that contains them."""
    outs, holes = [], []
    for r in _rings(shape):
        if len(r) < 4:
            continue
        x, y = r[:, 0], r[:, 1]
        signed = 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
        (holes if signed > 0 else outs).append(r)
    if not outs and holes:          # written with the wrong orientation: take them as exteriors
        outs, holes = holes, []
    res = [(o, []) for o in outs]
    for h in holes:
        for o, hs in res:
            if Polygon(o).contains(Polygon(h).representative_point()):
                hs.append(h)
                break
    return res


def read_shapefile(path, datum=None) -> FieldData:
    p = pathlib.Path(path)
    where = str(p)
    try:
        with warnings.catch_warnings():           # a corrupt header is reported by the read below
            warnings.simplefilter("ignore")
            rd, prj = _open(p)
        if rd is None:
            raise FarmDataError(f"{where}: file not found")
        with rd:
            if rd.shapeType not in (shapefile.POLYGON, shapefile.POLYGONZ, shapefile.POLYGONM):
                raise FarmDataError(f"{where}: holds {rd.shapeTypeName.title()} shapes; a field needs Polygon shapes")
            names = [f[0].lower() for f in rd.fields[1:]]
            kcol = names.index("kind") if "kind" in names else None
            ncol = names.index("name") if "name" in names else None
            polys, kinds, name = [], [], ""
            for sr in rd.iterShapeRecords():
                kind = str(sr.record[kcol]).strip().lower() if kcol is not None else ""
                for ext, hs in _polygons_of_shape(sr.shape):
                    polys.append((ext, hs))
                    kinds.append(kind)
                if ncol is not None and (kind == "boundary" or not name):
                    name = str(sr.record[ncol]).strip()
        lines = []
        rl, _ = _open(p, "_guidance")
        if rl is not None:
            with rl:
                lines = [np.asarray(s.points, float).reshape(-1, 2) for s in rl.shapes() if len(s.points) >= 2]
    except FarmDataError:
        raise
    except (shapefile.ShapefileException, ValueError, IndexError, OSError, EOFError) as exc:
        raise FarmDataError(f"{where}: not a readable shapefile ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - pyshp raises struct.error and others on truncated files
        raise FarmDataError(f"{where}: not a readable shapefile ({type(exc).__name__}: {exc})") from None
    if not polys:
        raise FarmDataError(f"{where}: no polygon in the shapefile")
    allpts = np.vstack([e for e, _ in polys])
    to_ll = _to_lonlat(prj, allpts, where)
    if to_ll is None:                                       # local metres
        geo = datum
        def conv(c):
            return (np.asarray(c, float))
    else:
        ll = to_ll(allpts)
        check_lonlat(ll, where)
        geo = datum or datum_for(ll)
        tmp = FieldData("", Polygon(), geo=geo)
        def conv(c):
            return (tmp.from_wgs84(to_ll(c)))
    shp_polys = [Polygon(conv(e), [conv(h) for h in hs]) for e, hs in polys]
    return assemble(name, shp_polys, [conv(ln) for ln in lines], where, kinds, geo=geo)


# --------------------------------------------------------------------------------------------- writing
def _esri_rings(poly: Polygon, conv) -> list[list[list[float]]]:
    """ESRI ring order: exterior clockwise, holes counter-clockwise."""
    poly = shapely.geometry.polygon.orient(poly, -1.0)
    return [conv(poly.exterior.coords).tolist()] + [conv(h.coords).tolist() for h in poly.interiors]


def write_layer(path, kind: str, geoms: list, fields: list[tuple], records: list[list], prj: str | None) -> list:
    """Write one shapefile layer.

    Parameters
    ----------
    kind : "point", "line" or "polygon"
    geoms : list
        Points: (x, y); lines: (N, 2) arrays; polygons: lists of rings (already ESRI-ordered).
    fields : list of (name, type, size, decimals)
        dBASE fields (type "C", "N", "F", "L").
    records : list of lists, one per geometry.
    prj : WKT of the CRS or None (local metres).
    """
    p = pathlib.Path(path).with_suffix(".shp")
    p.parent.mkdir(parents=True, exist_ok=True)
    st = {"point": shapefile.POINT, "line": shapefile.POLYLINE, "polygon": shapefile.POLYGON}[kind]
    with shapefile.Writer(str(p), shapeType=st) as w:
        for f in fields:
            w.field(*f)
        for g, r in zip(geoms, records):
            if kind == "point":
                w.point(float(g[0]), float(g[1]))
            elif kind == "line":
                w.line([np.asarray(g, float).tolist()])
            else:
                w.poly(g)
            w.record(*r)
    out = [p, p.with_suffix(".shx"), p.with_suffix(".dbf")]
    if prj:
        p.with_suffix(".prj").write_text(prj)
        out.append(p.with_suffix(".prj"))
    return out


def field_conv(fd: FieldData):
    """(coordinate converter metres -> file CRS, prj text): WGS84 lon/lat when georeferenced, else local."""
    if fd.geo is not None:
        return fd.to_wgs84, WGS84_PRJ
    return (lambda c: np.asarray(c, float).reshape(-1, 2)), None


def write_field_shapefile(fd: FieldData, path) -> list[pathlib.Path]:
    conv, prj = field_conv(fd)
    p = pathlib.Path(path).with_suffix(".shp")
    geoms = [_esri_rings(fd.boundary, conv)] + [_esri_rings(o, conv) for o in fd.obstacles]
    recs = [["boundary", fd.name[:60], round(fd.boundary.area, 2)]]
    recs += [["obstacle", f"obstacle {i + 1}", round(o.area, 2)] for i, o in enumerate(fd.obstacles)]
    files = write_layer(p, "polygon", geoms, [("kind", "C", 16, 0), ("name", "C", 60, 0), ("area_m2", "N", 14, 2)],
                        recs, prj)
    g = p.with_name(p.stem + "_guidance.shp")
    for old in (g, g.with_suffix(".shx"), g.with_suffix(".dbf"), g.with_suffix(".prj")):
        if old.exists():
            old.unlink()
    if fd.guidance:
        files += write_layer(g, "line", [conv(a) for a in fd.guidance], [("kind", "C", 16, 0), ("name", "C", 60, 0)],
                             [["guidance", f"AB {i + 1}"] for i in range(len(fd.guidance))], prj)
    return files
