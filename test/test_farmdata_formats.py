"""Fields in/out (GeoJSON, KML, KMZ, Shapefile, ISO-XML) and the as-applied record out, read back by
independent readers (stdlib json / xml.etree / zipfile / struct, not the libraries that wrote them), plus
broken files that must fail with one clear line."""

from __future__ import annotations

import datetime
import json
import math
import pathlib
import struct
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from shapely.geometry import Polygon

pytest.importorskip("shapefile", reason="pyshp not installed (requirements.txt)")
pytest.importorskip("lxml", reason="lxml not installed (requirements.txt)")

from agricare.core.farmdata import FarmDataError, FieldData, load_field_data, save_field_data  # noqa: E402
from agricare.core.farmdata.isoxml import read_timelog  # noqa: E402
from agricare.core.farmdata.records import AsAppliedLog, write_as_applied  # noqa: E402
from agricare.core.geodesy import LocalTangentPlane  # noqa: E402

GEO = LocalTangentPlane(52.2601, 10.5402)
TOL_M = 0.01


def _field():
    ang = np.linspace(0, 2 * math.pi, 37)[:-1]
    r = 80 + 12 * np.sin(3 * ang) + 5 * np.cos(7 * ang)
    outer = np.column_stack([r * np.cos(ang), 0.7 * r * np.sin(ang)])
    hole = [(10, 10), (18, 10), (18, 16), (10, 16)]
    obst = [(-30, -20), (-26, -20), (-26, -16), (-30, -16)]
    return FieldData("Long Acre", Polygon(outer, [hole]), [Polygon(obst)], [np.array([[-60.0, -5.0], [60.0, 7.5]])],
                     GEO)


def _to_m(lonlat):
    x, y = GEO.to_map(np.asarray(lonlat)[:, 1], np.asarray(lonlat)[:, 0])
    return np.column_stack([x, y])


def _same(a: Polygon, b: Polygon):
    assert a.exterior.hausdorff_distance(b.exterior) < TOL_M
    assert len(a.interiors) == len(b.interiors)
    for ha in a.interiors:
        assert min(ha.hausdorff_distance(hb) for hb in b.interiors) < TOL_M


# ------------------------------------------------------------------------------ independent readers
def _shp_read(path):
    """Minimal ESRI .shp/.dbf reader (spec: ESRI Shapefile Technical Description, 1998)."""
    data = pathlib.Path(path).read_bytes()
    assert struct.unpack(">i", data[:4])[0] == 9994
    shape_type = struct.unpack("<i", data[32:36])[0]
    shapes, off = [], 100
    while off < len(data):
        _, clen = struct.unpack(">ii", data[off:off + 8])
        rec = data[off + 8: off + 8 + 2 * clen]
        off += 8 + 2 * clen
        st = struct.unpack("<i", rec[:4])[0]
        if st == 1:
            shapes.append(np.array(struct.unpack("<dd", rec[4:20])))
            continue
        nparts, npts = struct.unpack("<ii", rec[36:44])
        parts = list(struct.unpack(f"<{nparts}i", rec[44:44 + 4 * nparts])) + [npts]
        pts = np.array(struct.unpack(f"<{2 * npts}d", rec[44 + 4 * nparts:44 + 4 * nparts + 16 * npts])).reshape(-1, 2)
        shapes.append([pts[a:b] for a, b in zip(parts[:-1], parts[1:])])
    dbf = pathlib.Path(path).with_suffix(".dbf").read_bytes()
    nrec, hlen, rlen = struct.unpack("<IHH", dbf[4:12])
    fields, p = [], 32
    while dbf[p] != 0x0D:
        fields.append((dbf[p:p + 11].split(b"\0")[0].decode(), chr(dbf[p + 11]), dbf[p + 16]))
        p += 32
    recs = []
    for i in range(nrec):
        r, q, row = dbf[hlen + i * rlen: hlen + (i + 1) * rlen], 1, {}
        for name, _t, ln in fields:
            row[name] = r[q:q + ln].decode().strip()
            q += ln
        recs.append(row)
    return shape_type, shapes, recs


def _esri_poly(rings_m):
    signed = [0.5 * np.sum(r[:-1, 0] * r[1:, 1] - r[1:, 0] * r[:-1, 1]) for r in rings_m]
    outer = [r for r, s in zip(rings_m, signed) if s < 0]          # ESRI: exterior clockwise
    holes = [r for r, s in zip(rings_m, signed) if s > 0]
    assert len(outer) == 1
    return Polygon(outer[0], holes)


# --------------------------------------------------------------------------------------------- fields
def test_geojson_round_trip(tmp_path):
    fd = _field()
    save_field_data(fd, tmp_path / "f.geojson")
    doc = json.loads((tmp_path / "f.geojson").read_text())
    by = {f["properties"]["kind"]: f for f in doc["features"]}
    g = by["boundary"]["geometry"]["coordinates"]
    _same(Polygon(_to_m(g[0]), [_to_m(h) for h in g[1:]]), fd.boundary)
    ab = _to_m(by["guidance"]["geometry"]["coordinates"])
    assert np.abs(ab - fd.guidance[0]).max() < TOL_M
    back = load_field_data(tmp_path / "f.geojson", datum=GEO)
    _same(back.boundary, fd.boundary)
    _same(back.obstacles[0], fd.obstacles[0])


@pytest.mark.parametrize("ext", ["kml", "kmz"])
def test_kml_round_trip(tmp_path, ext):
    fd = _field()
    out = save_field_data(fd, tmp_path / f"f.{ext}")[0]
    raw = out.read_bytes()
    if ext == "kmz":
        with zipfile.ZipFile(out) as z:
            raw = z.read("doc.kml")
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    root = ET.fromstring(raw)

    def ring(el):
        return _to_m([[float(v) for v in t.split(",")[:2]] for t in el.text.split()])

    polys, lines = {}, []
    for pm in root.iter("{http://www.opengis.net/kml/2.2}Placemark"):
        kind = pm.find("k:ExtendedData/k:Data/k:value", ns).text
        pg = pm.find("k:Polygon", ns)
        if pg is not None:
            ext_r = ring(pg.find("k:outerBoundaryIs/k:LinearRing/k:coordinates", ns))
            holes = [ring(c) for c in pg.findall("k:innerBoundaryIs/k:LinearRing/k:coordinates", ns)]
            polys.setdefault(kind, []).append(Polygon(ext_r, holes))
        ls = pm.find("k:LineString/k:coordinates", ns)
        if ls is not None:
            lines.append(ring(ls))
    _same(polys["boundary"][0], fd.boundary)
    _same(polys["obstacle"][0], fd.obstacles[0])
    assert np.abs(lines[0] - fd.guidance[0]).max() < TOL_M
    back = load_field_data(out, datum=GEO)
    _same(back.boundary, fd.boundary)
    assert back.name == "Long Acre"
    assert np.abs(back.guidance[0] - fd.guidance[0]).max() < TOL_M


def test_shapefile_round_trip(tmp_path):
    fd = _field()
    save_field_data(fd, tmp_path / "f.shp")
    st, shapes, recs = _shp_read(tmp_path / "f.shp")
    assert st == 5 and [r["kind"] for r in recs] == ["boundary", "obstacle"]
    _same(_esri_poly([_to_m(r) for r in shapes[0]]), fd.boundary)
    _same(_esri_poly([_to_m(r) for r in shapes[1]]), fd.obstacles[0])
    assert "WGS_1984" in (tmp_path / "f.prj").read_text()
    st, lines, _ = _shp_read(tmp_path / "f_guidance.shp")
    assert st == 3 and np.abs(_to_m(lines[0][0]) - fd.guidance[0]).max() < TOL_M
    back = load_field_data(tmp_path / "f.shp", datum=GEO)
    _same(back.boundary, fd.boundary)
    assert len(back.obstacles) == 1 and len(back.guidance) == 1
    # zipped, as shapefiles are usually mailed
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as z:
        for p in tmp_path.glob("f*.*"):
            if p.suffix != ".zip":
                z.write(p, p.name)
    _same(load_field_data(tmp_path / "f.zip", datum=GEO).boundary, fd.boundary)


def test_local_field_shapefile_keeps_metres(tmp_path):
    fd = _field()
    fd.geo = None
    save_field_data(fd, tmp_path / "local.shp")
    assert not (tmp_path / "local.prj").exists()
    _, shapes, _ = _shp_read(tmp_path / "local.shp")
    _same(_esri_poly(shapes[0]), fd.boundary)
    with pytest.raises(FarmDataError, match="georeference"):
        save_field_data(fd, tmp_path / "x.kml")


def test_isoxml_partfield_round_trip(tmp_path):
    fd = _field()
    save_field_data(fd, tmp_path / "TASKDATA", "isoxml")
    root = ET.parse(tmp_path / "TASKDATA" / "TASKDATA.XML").getroot()
    assert root.tag == "ISO11783_TaskData" and root.get("VersionMajor") == "4"
    pfd = root.find("PFD")
    assert pfd.get("C") == "Long Acre"

    def lsg(el):
        return _to_m([[float(p.get("D")), float(p.get("C"))] for p in el.findall("PNT")])

    plns = {pln.get("A"): pln for pln in pfd.findall("PLN")}
    b = plns["1"]
    ext = [lsg(x) for x in b.findall("LSG") if x.get("A") == "1"]
    holes = [lsg(x) for x in b.findall("LSG") if x.get("A") == "2"]
    _same(Polygon(ext[0], holes), fd.boundary)
    _same(Polygon(lsg(plns["6"].find("LSG"))), fd.obstacles[0])
    pts = pfd.find("GGP/GPN/LSG").findall("PNT")
    assert pfd.find("GGP/GPN").get("C") == "1" and [p.get("A") for p in pts] == ["6", "7"]
    assert np.abs(lsg(pfd.find("GGP/GPN/LSG")) - fd.guidance[0]).max() < TOL_M
    back = load_field_data(tmp_path / "TASKDATA", datum=GEO)
    _same(back.boundary, fd.boundary)
    _same(back.obstacles[0], fd.obstacles[0])
    assert np.abs(back.guidance[0] - fd.guidance[0]).max() < TOL_M


# ------------------------------------------------------------------------------------------ as-applied
def _log():
    rng = np.random.default_rng(3)
    rows = []
    for k in range(40):
        x, y = -50 + 2.5 * k, 0.3 * k
        st = [int(v) for v in rng.integers(0, 2, 6)]
        rows.append((0.5 * k, x, y, 0.12, st, 150.0 + k, 150.0 + (k // 10) * 5))
    return AsAppliedLog.from_rows((1.0,) * 6, rows)


def test_as_applied_isoxml_timelog_read_by_struct(tmp_path):
    fd, log = _field(), _log()
    write_as_applied(tmp_path, log, fd, [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]])
    d = tmp_path / "TASKDATA"
    root = ET.parse(d / "TASKDATA.XML").getroot()
    tsk = root.find("TSK")
    assert tsk.get("E") == "PFD1" and tsk.find("TLG").get("A") == "TLG00001"
    dets = {e.get("A") for e in root.iter("DET")}
    hdr = ET.parse(d / "TLG00001.XML").getroot()
    assert hdr.tag == "TIM" and hdr.get("A") == ""
    ptn = hdr.find("PTN")
    assert (ptn.get("A"), ptn.get("B"), ptn.get("D")) == ("", "", "")
    ddis = [int(v.get("A"), 16) for v in hdr.findall("DLV")]
    assert all(v.get("C") in dets for v in hdr.findall("DLV"))
    assert ddis == [0x8D, 0xA1, 0x43, 0x06, 0x07]
    data, off, recs = (d / "TLG00001.BIN").read_bytes(), 0, []
    while off < len(data):
        ms, days, lat, lon, status, n = struct.unpack_from("<IHiiBB", data, off)
        off += 16
        vals = {}
        for _ in range(n):
            k, v = struct.unpack_from("<Bi", data, off)
            off += 5
            vals[ddis[k]] = v
        recs.append((ms, days, lat * 1e-7, lon * 1e-7, status, vals))
    assert off == len(data) and len(recs) == len(log.t_s)
    xy = _to_m([[r[3], r[2]] for r in recs])
    assert np.abs(xy - log.xy).max() < TOL_M
    t0 = recs[0][0]
    assert [r[0] - t0 for r in recs] == [int(round(1000 * t)) for t in log.t_s]
    assert recs[0][1] == (log.start_utc.date() - datetime.date(1980, 1, 1)).days
    for r, st, app, pre in zip(recs, log.sections, log.rate_applied, log.rate_prescribed):
        cws = r[5][0xA1] & 0xFFFFFFFF
        assert [(cws >> (2 * k)) & 3 for k in range(6)] == [int(s) for s in st]
        assert [(cws >> (2 * k)) & 3 for k in range(6, 16)] == [3] * 10
        assert r[5][0x43] == 1000 * int(st.sum())
        assert r[5][0x8D] == int(st.any())
        assert r[5][0x07] == round(app * 100) and r[5][0x06] == round(pre * 100)
    own = read_timelog(d)                     # the module's own reader agrees with the struct parse
    assert np.allclose(own["lat"], [r[2] for r in recs]) and own["ddi"] == ddis


def test_as_applied_shapefile_and_geojson_read_back(tmp_path):
    fd, log = _field(), _log()
    write_as_applied(tmp_path, log, fd, [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]])
    st, pts, recs = _shp_read(tmp_path / "as_applied.shp")
    assert st == 1 and len(pts) == len(log.t_s)
    assert np.abs(_to_m(np.array(pts)) - log.xy).max() < TOL_M
    assert [r["sections"] for r in recs] == ["".join(map(str, s)) for s in log.sections]
    assert np.allclose([float(r["rate_app"]) for r in recs], log.rate_applied)
    assert np.allclose([float(r["rate_pre"]) for r in recs], log.rate_prescribed)
    st, polys, _ = _shp_read(tmp_path / "applied_area.shp")
    assert st == 5 and abs(_esri_poly([_to_m(r) for r in polys[0]]).area - 100.0) < 0.05
    doc = json.loads((tmp_path / "as_applied.geojson").read_text())
    g = np.array([f["geometry"]["coordinates"] for f in doc["features"]])
    assert np.abs(_to_m(g) - log.xy).max() < TOL_M
    assert [f["properties"]["t_s"] for f in doc["features"]] == list(log.t_s)


# -------------------------------------------------------------------------------------------- broken
def _write(p: pathlib.Path, data) -> pathlib.Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return p


def _broken_cases(tmp: pathlib.Path):
    good = _field()
    save_field_data(good, tmp / "ok" / "f.shp")
    shp = (tmp / "ok" / "f.shp").read_bytes()
    kml_head = '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><Polygon><outerBoundaryIs>' \
               '<LinearRing><coordinates>'
    kml_tail = "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>"
    bow = "10.0,52.0 10.001,52.001 10.001,52.0 10.0,52.001 10.0,52.0"
    iso = '<ISO11783_TaskData VersionMajor="4" VersionMinor="3"><PFD A="PFD1" C="x"><PLN A="1"><LSG A="1">' \
          '<PNT A="2" C="52.0" D="10.0"/><PNT A="2" C="52.001"/><PNT A="2" C="52.0" D="10.001"/></LSG></PLN>' \
          '</PFD></ISO11783_TaskData>'
    return [
        (_write(tmp / "empty.geojson", ""), "empty"),
        (_write(tmp / "bad.geojson", "{not json"), "not valid JSON"),
        (_write(tmp / "point.geojson", '{"type": "Point", "coordinates": [1, 2]}'), "not a GeoJSON"),
        (_write(tmp / "deg.geojson", json.dumps({"type": "Polygon", "coordinates": [[[500, 0], [600, 0],
                                                                                     [600, 100], [500, 0]]]})),
         "longitude/latitude"),
        (_write(tmp / "trunc.kml", kml_head + "10.0,52.0 10.001,52.0"), "not valid XML"),
        (_write(tmp / "nopoly.kml", '<kml xmlns="http://www.opengis.net/kml/2.2"><Document/></kml>'),
         "no Polygon"),
        (_write(tmp / "bow.kml", kml_head + bow + kml_tail), "invalid polygon"),
        (_write(tmp / "coord.kml", kml_head + "10.0;52.0 1 2" + kml_tail), "bad KML coordinate"),
        (_write(tmp / "notkml.kml", "<gpx/>"), "not a KML"),
        (_write(tmp / "bad.kmz", b"PK\x03\x04garbage"), "not a valid KMZ"),
        (_write(tmp / "nodbf" / "f.shp", shp), "missing f.shx"),
        (_write(tmp / "trunc" / "f.shp", shp[:130]), "not a readable shapefile"),
        (_write(tmp / "junk.zip", b"nope"), "not a valid zip"),
        (_write(tmp / "iso1" / "TASKDATA.XML", "<FOO/>"), "not ISO 11783-10"),
        (_write(tmp / "iso2" / "TASKDATA.XML", '<ISO11783_TaskData VersionMajor="4"/>'), "no partfield"),
        (_write(tmp / "iso3" / "TASKDATA.XML", iso), "PNT lacks"),
        (_write(tmp / "iso4" / "TASKDATA.XML", '<ISO11783_TaskData><XFR A="PFD00001" B="1"/></ISO11783_TaskData>'),
         "PFD00001.XML"),
        (tmp / "missing.kml", "not found"),
        (_write(tmp / "f.txt", "x"), "unknown field format"),
    ]


def test_broken_files_fail_with_one_line(tmp_path):
    for path, why in _broken_cases(tmp_path):
        if path.parent.name in ("nodbf", "trunc"):
            src = tmp_path / "ok"
            for ext in (".shx", ".dbf") if path.parent.name == "trunc" else ():
                _write(path.with_suffix(ext), (src / f"f{ext}").read_bytes())
        with pytest.raises(FarmDataError) as ei:
            load_field_data(path)
        msg = str(ei.value)
        assert why in msg, (path, msg)
        assert "\n" not in msg and str(path.name) in msg, msg


def test_points_shapefile_is_not_a_field(tmp_path):
    write_as_applied(tmp_path, _log(), _field())
    with pytest.raises(FarmDataError, match="Point shapes; a field needs Polygon"):
        load_field_data(tmp_path / "as_applied.shp")


def test_polygon_outside_the_boundary_is_refused(tmp_path):
    doc = {"type": "FeatureCollection", "properties": {"crs": "local"}, "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [50, 0], [50, 50], [0, 50], [0, 0]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[100, 0], [110, 0], [110, 10], [100, 0]]]}}]}
    with pytest.raises(FarmDataError, match="outside the field boundary"):
        load_field_data(_write(tmp_path / "two.geojson", json.dumps(doc)))


def _collection(*features, crs="local"):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": ({"kind": kind} if kind else {}),
         "geometry": {"type": "Polygon", "coordinates": rings}} for rings, kind in features]}
    if crs:
        doc["properties"] = {"crs": crs}
    return json.dumps(doc)


_FIELD_100x70 = [[0, 0], [100, 0], [100, 70], [0, 70], [0, 0]]


def test_obstacle_over_the_edge_is_clipped_to_the_field(tmp_path):
    """A barn drawn over the boundary (12 x 13 m, 5 m of it outside): the part inside, 12 x 8 m, is the obstacle and
    the field to work is the boundary less that notch."""
    barn = [[40, -5], [52, -5], [52, 8], [40, 8], [40, -5]]
    for kind in ("obstacle", ""):
        fd = load_field_data(_write(tmp_path / f"barn{kind}.geojson",
                                    _collection(([_FIELD_100x70], "boundary" if kind else ""), ([barn], kind))))
        assert len(fd.obstacles) == 1
        assert fd.obstacles[0].area == pytest.approx(12 * 8, abs=1e-6)
        assert fd.boundary.buffer(1e-6).contains(fd.obstacles[0])
        work = fd.work_area()
        assert work.geom_type == "Polygon" and work.is_valid
        assert work.area == pytest.approx(100 * 70 - 12 * 8, abs=1e-6)


def test_obstacle_that_is_another_field_or_splits_it_is_refused(tmp_path):
    mostly_out = [[40, -30], [52, -30], [52, 3], [40, 3], [40, -30]]     # 3 m of 33 inside: another field
    with pytest.raises(FarmDataError, match="outside the field boundary"):
        load_field_data(_write(tmp_path / "out.geojson", _collection(([_FIELD_100x70], ""), ([mostly_out], ""))))
    ditch = [[40, -5], [45, -5], [45, 75], [40, 75], [40, -5]]          # across the whole field
    with pytest.raises(FarmDataError, match="cuts the field in two"):
        load_field_data(_write(tmp_path / "ditch.geojson",
                               _collection(([_FIELD_100x70], "boundary"), ([ditch], "obstacle"))))


def test_hole_on_the_edge_becomes_a_notch(tmp_path):
    """A hole ring that shares a stretch of the outer ring (a pond at the edge) is invalid as drawn; it is cut out."""
    pond = [[0, 20], [10, 20], [10, 30], [0, 30], [0, 20]]
    fd = load_field_data(_write(tmp_path / "pond.geojson", _collection(([_FIELD_100x70, pond], ""))))
    assert fd.boundary.is_valid and not fd.boundary.interiors
    assert fd.boundary.area == pytest.approx(100 * 70 - 10 * 10, abs=1e-6)
    bow = [[0, 0], [50, 50], [50, 0], [0, 50], [0, 0]]                  # a broken outer ring stays an error
    with pytest.raises(FarmDataError, match="invalid polygon"):
        load_field_data(_write(tmp_path / "bow.geojson", _collection(([bow, [[10, 20], [12, 20], [12, 22], [10, 20]]],
                                                                          ""))))


def test_metres_read_as_degrees_are_refused_with_a_hint(tmp_path):
    """RFC 7946: GeoJSON without a CRS is longitude/latitude. An 80 x 60 m field in metres without "crs": "local"
    would be 6,000 km across; the error says so instead of the planner running out of memory."""
    doc = _collection(([[[0, 0], [80, 0], [80, 60], [0, 60], [0, 0]]], ""), crs=None)
    with pytest.raises(FarmDataError, match=r'spans \d+ km.*"crs": "local"'):
        load_field_data(_write(tmp_path / "metres.geojson", doc))
    fd = load_field_data(_write(tmp_path / "local.geojson", _collection(([[[0, 0], [80, 0], [80, 60], [0, 60],
                                                                           [0, 0]]], ""))))
    assert fd.area_m2 == pytest.approx(80 * 60)


def test_field_from_goal_rings():
    """A CoverField goal's inline field and obstacles: holes cut out, an obstacle over the edge clipped, an obstacle
    outside or one that splits the field refused with one line."""
    from agricare.core.farmdata.field import field_from_rings

    outer = [(0, 0), (60, 0), (60, 40), (0, 40)]
    f = field_from_rings(outer, [[(20, 10), (30, 10), (30, 20), (20, 20)], [(50, -5), (65, -5), (65, 10), (50, 10)]])
    assert f.geom_type == "Polygon" and len(f.interiors) == 1 and f.area == pytest.approx(2400 - 100 - 100)
    for obstacles, why in (([[(100, 0), (110, 0), (110, 10)]], "obstacle 1 lies outside"),
                           ([[(28, -5), (32, -5), (32, 45), (28, 45)]], "cut the field in two"),
                           ([[(1, 1), (2, 2)]], "obstacle 1 needs >= 3 finite points"),
                           ([[(1, 1), (float("nan"), 2), (3, 1)]], "finite points")):
        with pytest.raises(FarmDataError, match=why):
            field_from_rings(outer, obstacles)
    with pytest.raises(FarmDataError, match="not a simple polygon"):
        field_from_rings([(0, 0), (10, 10), (10, 0), (0, 10)])
