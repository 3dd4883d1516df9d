"""Fields in KML 2.2 / KMZ (Google Earth, AgOpenGPS field exports), read and written with lxml.

Read: every ``Placemark`` (also inside folders and ``MultiGeometry``); polygons are the boundary and
obstacles (by ``ExtendedData`` ``kind`` or a name starting with "boundary"/"obstacle"; otherwise the largest
polygon is the boundary and the polygons inside it obstacles), line strings are guidance (AB) lines (first
and last point). Coordinates are ``lon,lat[,alt]`` in WGS84 (KML has no other CRS).
"""

from __future__ import annotations

import io
import pathlib
import zipfile

import numpy as np
import shapely
from lxml import etree
from shapely.geometry import Polygon

from agricare.core.farmdata.field import FarmDataError, FieldData, assemble, check_lonlat, datum_for

KML_NS = "http://www.opengis.net/kml/2.2"


def _coords(el, where) -> np.ndarray:
    txt = (el.text or "").split() if el is not None else []
    pts = []
    for tok in txt:
        parts = tok.split(",")
        if len(parts) < 2:
            raise FarmDataError(f"{where}: bad KML coordinate {tok!r} (expected lon,lat[,alt])")
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise FarmDataError(f"{where}: bad KML coordinate {tok!r} (expected lon,lat[,alt])") from None
    return np.asarray(pts, dtype=float).reshape(-1, 2)


def _kind(pm) -> str:
    for d in pm.iter("{*}Data"):
        if d.get("name", "").lower() == "kind":
            v = d.find("{*}value")
            return (v.text or "").strip().lower() if v is not None else ""
    name = (pm.findtext("{*}name") or "").strip().lower()
    for k in ("boundary", "obstacle", "guidance"):
        if name.startswith(k):
            return k
    return ""


def _parse(data: bytes, where: str):
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise FarmDataError(f"{where}: not valid XML ({exc.msg})") from None
    if etree.QName(root).localname != "kml":
        raise FarmDataError(f"{where}: not a KML document (root element <{etree.QName(root).localname}>)")
    return root


def read_kml(path, datum=None) -> FieldData:
    p = pathlib.Path(path)
    where = str(p)
    raw = p.read_bytes()
    if not raw.strip():
        raise FarmDataError(f"{where}: empty file")
    if p.suffix.lower() == ".kmz" or raw[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                names = [n for n in z.namelist() if n.lower().endswith(".kml")]
                if not names:
                    raise FarmDataError(f"{where}: KMZ holds no .kml file")
                main = "doc.kml" if "doc.kml" in names else names[0]
                raw = z.read(main)
        except zipfile.BadZipFile:
            raise FarmDataError(f"{where}: not a valid KMZ (zip) file") from None
    root = _parse(raw, where)
    polys_ll, kinds, lines_ll, name = [], [], [], ""
    doc_name = root.findtext("{*}Document/{*}name") or ""
    for pm in root.iter("{*}Placemark"):
        kind = _kind(pm)
        for poly in pm.iter("{*}Polygon"):
            outer = _coords(poly.find("{*}outerBoundaryIs/{*}LinearRing/{*}coordinates"), where)
            if len(outer) < 3:
                raise FarmDataError(f"{where}: a Polygon has no outer ring with at least 3 points")
            inner = [_coords(c, where) for c in poly.findall("{*}innerBoundaryIs/{*}LinearRing/{*}coordinates")]
            polys_ll.append((outer, inner))
            kinds.append(kind if kind != "guidance" else "")
            if kind == "boundary":
                name = (pm.findtext("{*}name") or "").strip()
        for ls in pm.iter("{*}LineString"):
            lines_ll.append(_coords(ls.find("{*}coordinates"), where))
    if not polys_ll:
        raise FarmDataError(f"{where}: no Polygon placemark found (a field needs a boundary polygon)")
    allpts = np.vstack([o for o, _ in polys_ll])
    check_lonlat(allpts, where)
    geo = datum or datum_for(allpts)
    tmp = FieldData("", Polygon(), geo=geo)
    polys = [Polygon(tmp.from_wgs84(o), [tmp.from_wgs84(h) for h in inn if len(h) >= 3]) for o, inn in polys_ll]
    lines = [tmp.from_wgs84(ln) for ln in lines_ll if len(ln)]
    if name.lower().startswith("boundary"):
        name = name[len("boundary"):].strip()
    return assemble(name or doc_name.strip(), polys, lines, where, kinds, geo=geo)


def _ring_text(lonlat: np.ndarray) -> str:
    return " ".join(f"{lo:.9f},{la:.9f},0" for lo, la in lonlat)


def kml_document(fd: FieldData) -> bytes:
    """The KML 2.2 document of a field (WGS84)."""
    E = f"{{{KML_NS}}}"
    root = etree.Element(E + "kml", nsmap={None: KML_NS})
    doc = etree.SubElement(root, E + "Document")
    etree.SubElement(doc, E + "name").text = fd.name

    def placemark(name, kind):
        pm = etree.SubElement(doc, E + "Placemark")
        etree.SubElement(pm, E + "name").text = name
        ed = etree.SubElement(pm, E + "ExtendedData")
        d = etree.SubElement(ed, E + "Data", name="kind")
        etree.SubElement(d, E + "value").text = kind
        return pm

    def polygon(pm, poly):
        poly = shapely.geometry.polygon.orient(poly, 1.0)
        pg = etree.SubElement(pm, E + "Polygon")
        ob = etree.SubElement(etree.SubElement(pg, E + "outerBoundaryIs"), E + "LinearRing")
        etree.SubElement(ob, E + "coordinates").text = _ring_text(fd.to_wgs84(poly.exterior.coords))
        for h in poly.interiors:
            ib = etree.SubElement(etree.SubElement(pg, E + "innerBoundaryIs"), E + "LinearRing")
            etree.SubElement(ib, E + "coordinates").text = _ring_text(fd.to_wgs84(h.coords))

    polygon(placemark(f"boundary {fd.name}", "boundary"), fd.boundary)
    for i, o in enumerate(fd.obstacles):
        polygon(placemark(f"obstacle {i + 1}", "obstacle"), o)
    for i, g in enumerate(fd.guidance):
        ls = etree.SubElement(placemark(f"AB line {i + 1}", "guidance"), E + "LineString")
        etree.SubElement(ls, E + "coordinates").text = _ring_text(fd.to_wgs84(g))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_kml(fd: FieldData, path, kmz: bool = False) -> pathlib.Path:
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = kml_document(fd)
    if kmz:
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("doc.kml", data)
    else:
        p.write_bytes(data)
    return p
