"""ISO 11783-10 (ISO-XML) TaskData: partfields in and out, the as-applied task log out (lxml + struct).

Written and read (version 4 TaskData, ``TASKDATA.XML`` in a ``TASKDATA`` folder):

- ``PFD`` partfield: ``PLN`` A=1 (partfield boundary) with ``LSG`` A=1 (exterior) and A=2 (interior rings),
  ``PLN`` A=6 (obstacle; types 3 water and 4 building are read as obstacles too), ``GGP``/``GPN`` C=1 (AB
  guidance pattern) with ``LSG`` A=5 holding ``PNT`` A=6 (reference A) and A=7 (reference B); points are
  ``PNT`` C = latitude, D = longitude (WGS84 degrees, 9 decimals). External files (``XFR``) are followed.
- ``TSK`` task with ``TIM`` (start/stop, type 4 effective) and ``TLG`` (time log ``TLG00001``, type 1
  binary): ``TLG00001.XML`` is the header (``TIM`` with empty A = start time per record, ``PTN`` with empty
  A/B/D = north/east/status per record, one ``DLV`` per logged process value), ``TLG00001.BIN`` the records,
  little-endian: uint32 ms since midnight + uint16 days since 1980-01-01, int32 latitude and int32
  longitude in 1e-7 degrees, uint8 position status, uint8 number of values, then per value uint8 DLV index +
  int32 value.
- ``DVC`` device description of the implement (device element ``DET`` type 1 with one type 4 element per
  section and ``DPD`` process data) that the DLVs refer to.

Logged DDIs (ISO 11783-11): 0x008D actual work state, 0x00A1 actual condensed work state of sections 1-16
(2 bits per section, section 1 in the least significant bits: 0 off, 1 on, 3 not installed), 0x0043 actual
working width (mm), 0x0006 / 0x0007 setpoint / actual mass per area application rate (mg/m^2; 1 kg/ha =
100 mg/m^2).
"""

from __future__ import annotations

import datetime as dt
import math
import pathlib
import struct

import numpy as np
import shapely
from lxml import etree
from shapely.geometry import Polygon

from agricare.core.farmdata.field import FarmDataError, FieldData, assemble, check_lonlat, datum_for

DDI_SETPOINT_MASS_RATE = 0x0006
DDI_ACTUAL_MASS_RATE = 0x0007
DDI_ACTUAL_WORKING_WIDTH = 0x0043
DDI_ACTUAL_WORK_STATE = 0x008D
DDI_CONDENSED_WORK_STATE_1_16 = 0x00A1
KGHA_TO_MG_M2 = 100.0

EPOCH_1980 = dt.date(1980, 1, 1)
OBSTACLE_TYPES = ("6", "3", "4")


# ---------------------------------------------------------------------------------------------- reading
def _parse_file(path: pathlib.Path, what: str):
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        return etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise FarmDataError(f"{path}: not valid XML ({exc.msg})") from None
    except OSError as exc:
        raise FarmDataError(f"{path}: cannot read {what} ({exc})") from None


def _taskdata_path(path) -> pathlib.Path:
    p = pathlib.Path(path)
    if p.is_dir():
        for cand in (p / "TASKDATA.XML", p / "TASKDATA" / "TASKDATA.XML", p / "taskdata.xml"):
            if cand.is_file():
                return cand
        raise FarmDataError(f"{p}: no TASKDATA.XML in this folder")
    return p


def load_taskdata(path):
    """Root element of TASKDATA.XML with the external files (``XFR``) merged in."""
    p = _taskdata_path(path)
    root = _parse_file(p, "TaskData")
    if root.tag != "ISO11783_TaskData":
        raise FarmDataError(f"{p}: not ISO 11783-10 TaskData (root element <{root.tag}>)")
    for xfr in list(root.findall("XFR")):
        name = xfr.get("A", "")
        ext = p.parent / f"{name}.XML"
        if not ext.is_file():
            ext = p.parent / f"{name}.xml"
        if not ext.is_file():
            raise FarmDataError(f"{p}: external file {name}.XML (XFR) not found")
        sub = _parse_file(ext, "external TaskData file")
        for child in sub:
            root.append(child)
    return root


def _lonlat_of_lsg(lsg, where) -> np.ndarray:
    pts = []
    for pnt in lsg.findall("PNT"):
        try:
            lat, lon = float(pnt.get("C")), float(pnt.get("D"))
        except (TypeError, ValueError):
            raise FarmDataError(f"{where}: a PNT lacks a numeric C (north) / D (east)") from None
        pts.append((lon, lat))
    return np.asarray(pts, dtype=float).reshape(-1, 2)


def _bounded_partfields(root) -> list:
    """The ``PFD`` elements that have a boundary polygon (``PLN`` A=1), in file order."""
    return [f for f in root.findall("PFD") if any(pln.get("A") == "1" for pln in f.findall("PLN"))]


def _names(pfds) -> list[str]:
    return [f.get("C") or f.get("A") or "" for f in pfds]


def partfield_names(path) -> list[str]:
    """The designators (``PFD`` C) of the partfields with a boundary in a TaskData set, in file order: a farm's
    TaskData holds all its fields, and :func:`read_taskdata_field` takes the first unless one is named."""
    return _names(_bounded_partfields(load_taskdata(_taskdata_path(path))))


def read_taskdata_field(path, datum=None, name: str = "") -> FieldData:
    """The partfield (``PFD``; the one named ``name``, else the first with a boundary) of a TaskData set."""
    p = _taskdata_path(path)
    where = str(p)
    root = load_taskdata(p)
    bounded = _bounded_partfields(root)
    pfds = [f for f in bounded if f.get("C") == name] if name else bounded
    if not pfds:
        raise FarmDataError(f"{where}: no partfield (PFD) with a boundary polygon (PLN A=1)"
                            + (f" named {name!r} (there are: {', '.join(map(repr, _names(bounded)))})"
                               if name else ""))
    pfd = pfds[0]
    rings, kinds, lines = [], [], []
    for pln in pfd.findall("PLN"):
        kind = {"1": "boundary"}.get(pln.get("A"), "obstacle" if pln.get("A") in OBSTACLE_TYPES else None)
        if kind is None:
            continue
        ext = [_lonlat_of_lsg(lsg, where) for lsg in pln.findall("LSG") if lsg.get("A") == "1"]
        holes = [_lonlat_of_lsg(lsg, where) for lsg in pln.findall("LSG") if lsg.get("A") == "2"]
        if not ext or len(ext[0]) < 3:
            raise FarmDataError(f"{where}: a PLN has no exterior line string (LSG A=1) with at least 3 points")
        rings.append((ext[0], holes))
        kinds.append(kind)
    for gpn in pfd.iter("GPN"):
        for lsg in gpn.findall("LSG"):
            if lsg.get("A") != "5":
                continue
            ll = _lonlat_of_lsg(lsg, where)
            a = [pt for pt, pn in zip(ll, lsg.findall("PNT")) if pn.get("A") == "6"]
            b = [pt for pt, pn in zip(ll, lsg.findall("PNT")) if pn.get("A") == "7"]
            if a and b:
                lines.append(np.array([a[0], b[0]]))
            elif len(ll) >= 2:
                lines.append(ll[[0, -1]])
    allpts = np.vstack([e for e, _ in rings])
    check_lonlat(allpts, where)
    geo = datum or datum_for(allpts)
    tmp = FieldData("", Polygon(), geo=geo)
    polys = [Polygon(tmp.from_wgs84(e), [tmp.from_wgs84(h) for h in hs if len(h) >= 3]) for e, hs in rings]
    return assemble(pfd.get("C", ""), polys, [tmp.from_wgs84(ln) for ln in lines], where, kinds, geo=geo)


# ---------------------------------------------------------------------------------------------- writing
def _pnt(parent, kind: int, lon: float, lat: float):
    etree.SubElement(parent, "PNT", A=str(kind), C=f"{lat:.9f}", D=f"{lon:.9f}")


def _lsg(parent, kind: int, lonlat, pnt_kind: int = 2):
    lsg = etree.SubElement(parent, "LSG", A=str(kind))
    for lon, lat in lonlat:
        _pnt(lsg, pnt_kind, lon, lat)
    return lsg


def _pfd(root, fd: FieldData, idx: int):
    pfd = etree.SubElement(root, "PFD", A=f"PFD{idx}", C=fd.name[:32] or f"field {idx}",
                           D=str(int(round(fd.work_area().area))))
    b = shapely.geometry.polygon.orient(fd.boundary, 1.0)
    pln = etree.SubElement(pfd, "PLN", A="1", B="boundary", C=str(int(round(b.area))))
    _lsg(pln, 1, fd.to_wgs84(b.exterior.coords))
    for h in b.interiors:
        _lsg(pln, 2, fd.to_wgs84(h.coords))
    for i, o in enumerate(fd.obstacles):
        o = shapely.geometry.polygon.orient(o, 1.0)
        pln = etree.SubElement(pfd, "PLN", A="6", B=f"obstacle {i + 1}", C=str(int(round(o.area))))
        _lsg(pln, 1, fd.to_wgs84(o.exterior.coords))
    for i, g in enumerate(fd.guidance):
        ggp = etree.SubElement(pfd, "GGP", A=f"GGP{idx}{i + 1}", B=f"AB {i + 1}")
        gpn = etree.SubElement(ggp, "GPN", A=f"GPN{idx}{i + 1}", B=f"AB {i + 1}", C="1")
        lsg = etree.SubElement(gpn, "LSG", A="5")
        (la, lb) = fd.to_wgs84(g)
        _pnt(lsg, 6, *la)
        _pnt(lsg, 7, *lb)
    return pfd


def _dvc(root, n_sections: int, widths_m):
    """Device description of the sectioned implement (ids DET-1 implement, DET-2.. sections)."""
    dvc = etree.SubElement(root, "DVC", A="DVC-1", B="agricare implement", C="1.0", D="A00086000CE00000",
                           E="1", F="00000000000001", G="FF000000006A65")
    det = etree.SubElement(dvc, "DET", A="DET-1", B="1", C="1", D="implement", E="0", F="0")
    ddis = [(DDI_ACTUAL_WORK_STATE, "work state"), (DDI_CONDENSED_WORK_STATE_1_16, "condensed work state"),
            (DDI_ACTUAL_WORKING_WIDTH, "working width"), (DDI_SETPOINT_MASS_RATE, "setpoint rate"),
            (DDI_ACTUAL_MASS_RATE, "actual rate")]
    for k in range(len(ddis)):
        etree.SubElement(det, "DOR", A=str(100 + k))
    for k in range(n_sections):
        etree.SubElement(dvc, "DET", A=f"DET-{k + 2}", B=str(k + 2), C="4", D=f"section {k + 1}", E=str(k + 1),
                         F="1")
    for k, (ddi, name) in enumerate(ddis):
        etree.SubElement(dvc, "DPD", A=str(100 + k), B=f"{ddi:04X}", C="1", D="8", E=name)
    return dvc


def utc_of(start_utc: dt.datetime, t_s: float) -> dt.datetime:
    return start_utc + dt.timedelta(seconds=float(t_s))


def _time_fields(when: dt.datetime) -> tuple[int, int]:
    """(ms since midnight, days since 1980-01-01) of a UTC datetime (ISO 11783 time log)."""
    when = when.astimezone(dt.UTC)
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    ms = int(round((when - midnight).total_seconds() * 1000.0))
    return ms, (when.date() - EPOCH_1980).days


def condensed_work_state(states) -> int:
    """DDI 0x00A1 value of up to 16 section states (1 on / 0 off; unused sections 3 = not installed).

    An unsigned 32-bit field; the time log stores its bit pattern in the int32 value."""
    v = 0
    for k in range(16):
        s = (1 if states[k] else 0) if k < len(states) else 3
        v |= s << (2 * k)
    return v


def write_timelog(directory, name: str, log, fd: FieldData) -> list[pathlib.Path]:
    """``name``.XML header and ``name``.BIN records of an :class:`AsAppliedLog` (see the module doc)."""
    d = pathlib.Path(directory)
    n = log.n_sections
    if n > 16:
        raise FarmDataError("ISO-XML condensed work state holds at most 16 sections")
    dlvs = [(DDI_ACTUAL_WORK_STATE, "DET-1"), (DDI_CONDENSED_WORK_STATE_1_16, "DET-1"),
            (DDI_ACTUAL_WORKING_WIDTH, "DET-1")]
    has_rate = log.has_rate
    if has_rate:
        dlvs += [(DDI_SETPOINT_MASS_RATE, "DET-1"), (DDI_ACTUAL_MASS_RATE, "DET-1")]
    tim = etree.Element("TIM", A="", D="4")
    etree.SubElement(tim, "PTN", A="", B="", D="")
    for ddi, det in dlvs:
        etree.SubElement(tim, "DLV", A=f"{ddi:04X}", B="", C=det)
    hdr = d / f"{name}.XML"
    hdr.write_bytes(etree.tostring(tim, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    lonlat = fd.to_wgs84(log.xy)
    widths = np.asarray(log.section_widths_m, float)
    buf = bytearray()
    for i in range(len(log.t_s)):
        ms, days = _time_fields(utc_of(log.start_utc, log.t_s[i]))
        st = log.sections[i]
        width_mm = int(round(1000.0 * float(np.sum(widths[st > 0]))))
        vals = [1 if st.any() else 0, condensed_work_state(st), width_mm]
        if has_rate:
            pre, app = log.rate_prescribed[i], log.rate_applied[i]
            vals += [int(round((pre if math.isfinite(pre) else 0.0) * KGHA_TO_MG_M2)),
                     int(round((app if math.isfinite(app) else 0.0) * KGHA_TO_MG_M2))]
        buf += struct.pack("<IHiiBB", ms, days, int(round(lonlat[i, 1] * 1e7)), int(round(lonlat[i, 0] * 1e7)),
                           int(log.position_status), len(vals))
        for k, v in enumerate(vals):
            v = int(v)
            buf += struct.pack("<Bi", k, v - (1 << 32) if v >= (1 << 31) else v)   # 32-bit fields as int32
    binf = d / f"{name}.BIN"
    binf.write_bytes(bytes(buf))
    return [hdr, binf]


def write_taskdata(directory, fields: list, log=None, task_name: str = "coverage") -> list[pathlib.Path]:
    """Write ``directory``/TASKDATA.XML (+ the time log of ``log``); returns the files written.

    ``fields``: the :class:`FieldData` partfields (georeferenced); ``log``: an :class:`AsAppliedLog` of the
    first field, written as task ``TSK1`` with time log ``TLG00001``.
    """
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for fd in fields:
        if fd.geo is None:
            raise FarmDataError(f"field {fd.name!r} has no georeference: ISO-XML needs WGS84 (give a datum)")
    root = etree.Element("ISO11783_TaskData", VersionMajor="4", VersionMinor="3",
                         ManagementSoftwareManufacturer="agricare", ManagementSoftwareVersion="1.0",
                         DataTransferOrigin="1" if log is None else "2")
    if log is not None:
        _dvc(root, log.n_sections, log.section_widths_m)
    for i, fd in enumerate(fields):
        _pfd(root, fd, i + 1)
    files = []
    if log is not None:
        tsk = etree.SubElement(root, "TSK", A="TSK1", B=task_name, E="PFD1", G="4")
        start = utc_of(log.start_utc, log.t_s[0] if len(log.t_s) else 0.0)
        stop = utc_of(log.start_utc, log.t_s[-1] if len(log.t_s) else 0.0)
        etree.SubElement(tsk, "TIM", A=start.strftime("%Y-%m-%dT%H:%M:%S"), B=stop.strftime("%Y-%m-%dT%H:%M:%S"),
                         D="4")
        etree.SubElement(tsk, "TLG", A="TLG00001", C="1")
        files += write_timelog(d, "TLG00001", log, fields[0])
    out = d / "TASKDATA.XML"
    out.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return [out] + files


def write_prescription_taskdata(directory, rx, fd: FieldData, task_name: str = "prescription") -> list:
    """A prescription task: ``TZN`` per rate (``PDV`` DDI 0x0006 setpoint mass rate, mg/m^2; code 0 = outside,
    rate 0) and a grid of type 1 (``GRD``, ``GRD00001.BIN``: one zone code byte per cell, rows from the south,
    cells west to east) on WGS84 cells about the size of the prescription's cells."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rates = sorted({float(v) for v in rx.values[np.isfinite(rx.values)]})
    if len(rates) > 254:
        raise FarmDataError("an ISO-XML grid of type 1 holds at most 254 treatment zones")
    root = etree.Element("ISO11783_TaskData", VersionMajor="4", VersionMinor="3",
                         ManagementSoftwareManufacturer="agricare", ManagementSoftwareVersion="1.0",
                         DataTransferOrigin="1")
    _pfd(root, fd, 1)
    tsk = etree.SubElement(root, "TSK", A="TSK1", B=task_name, E="PFD1", G="1", H="0")
    for code, rate in enumerate([0.0] + rates):
        tzn = etree.SubElement(tsk, "TZN", A=str(code), B="outside" if code == 0 else f"zone {code}")
        etree.SubElement(tzn, "PDV", A=f"{DDI_SETPOINT_MASS_RATE:04X}", B=str(int(round(rate * KGHA_TO_MG_M2))))
    ll = fd.to_wgs84(np.asarray(fd.boundary.exterior.coords))
    lat0, lon0 = float(ll[:, 1].min()), float(ll[:, 0].min())
    dlat = rx.res / 111320.0
    dlon = rx.res / (111320.0 * math.cos(math.radians(lat0)))
    ncol = int(math.ceil((ll[:, 0].max() - lon0) / dlon)) + 1
    nrow = int(math.ceil((ll[:, 1].max() - lat0) / dlat)) + 1
    lon_c = lon0 + (np.arange(ncol) + 0.5) * dlon
    lat_c = lat0 + (np.arange(nrow) + 0.5) * dlat
    LON, LAT = np.meshgrid(lon_c, lat_c)
    xy = fd.from_wgs84(np.column_stack([LON.ravel(), LAT.ravel()]))
    val = rx.value_at(xy)
    codes = np.zeros(len(val), np.uint8)
    ok = np.isfinite(val)
    codes[ok] = 1 + np.searchsorted(np.asarray(rates), val[ok])
    data = codes.astype(np.uint8).tobytes()
    etree.SubElement(tsk, "GRD", A=f"{lat0:.9f}", B=f"{lon0:.9f}", C=f"{dlat:.12f}", D=f"{dlon:.12f}",
                     E=str(ncol), F=str(nrow), G="GRD00001", H=str(len(data)), I="1")
    (d / "GRD00001.BIN").write_bytes(data)
    out = d / "TASKDATA.XML"
    out.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return [out, d / "GRD00001.BIN"]


def read_timelog(directory, name: str = "TLG00001") -> dict:
    """Decode a binary time log from its XML header (any PTN/DLV layout this module writes).

    Returns ``{"ms": (N,), "days": (N,), "lat": (N,), "lon": (N,), "status": (N,), "ddi": [..],
    "values": (N, n_dlv) float with NaN where a record lacks the value}``.
    """
    d = pathlib.Path(directory)
    hdr = _parse_file(d / f"{name}.XML", "time log header")
    if hdr.tag != "TIM":
        raise FarmDataError(f"{d / (name + '.XML')}: time log header must be a TIM element")
    ptn = hdr.find("PTN")
    ptn_fields = [(a, f) for a, f in (("A", "i"), ("B", "i"), ("C", "i"), ("D", "B"), ("E", "H"), ("F", "H"),
                                      ("G", "B"), ("H", "I"), ("I", "H"))
                  if ptn is not None and ptn.get(a) == ""]
    ddis = [int(v.get("A"), 16) for v in hdr.findall("DLV")]
    data = (d / f"{name}.BIN").read_bytes()
    rows, off = [], 0
    try:
        while off < len(data):
            rec = {}
            if hdr.get("A") == "":
                rec["ms"], rec["days"] = struct.unpack_from("<IH", data, off)
                off += 6
            for a, f in ptn_fields:
                (rec[a],) = struct.unpack_from("<" + f, data, off)
                off += struct.calcsize(f)
            (nv,) = struct.unpack_from("<B", data, off)
            off += 1
            vals = np.full(len(ddis), np.nan)
            for _ in range(nv):
                k, v = struct.unpack_from("<Bi", data, off)
                off += 5
                if k >= len(ddis):
                    raise FarmDataError(f"{name}.BIN: DLV index {k} not in the header")
                vals[k] = v
            rec["values"] = vals
            rows.append(rec)
    except struct.error:
        raise FarmDataError(f"{d / (name + '.BIN')}: truncated record at byte {off}") from None
    return {"ms": np.array([r.get("ms", 0) for r in rows]), "days": np.array([r.get("days", 0) for r in rows]),
            "lat": np.array([r.get("A", 0) for r in rows]) * 1e-7,
            "lon": np.array([r.get("B", 0) for r in rows]) * 1e-7,
            "status": np.array([r.get("D", 0) for r in rows]), "ddi": ddis,
            "values": np.array([r["values"] for r in rows]).reshape(-1, len(ddis))}
