"""The as-applied record out in the formats farm software reads.

:class:`AsAppliedLog` holds what the implement did (time, position, heading, section states, applied and
prescribed rate); :func:`write_as_applied` writes it with the field as

- ``TASKDATA/TASKDATA.XML`` + ``TLG00001.XML`` + ``TLG00001.BIN`` (ISO 11783-10 task with a binary time
  log, :mod:`agricare.core.farmdata.isoxml`; only for a georeferenced field),
- ``as_applied.shp`` (points with time, sections, width, rates) and ``applied_area.shp`` (polygons of the
  applied area), WGS84 with ``.prj`` when georeferenced, else local metres,
- ``as_applied.geojson`` (the same points).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import pathlib
from dataclasses import dataclass, field as dc_field

import numpy as np

from agricare.core.farmdata.field import FieldData, _json_floats
from agricare.core.farmdata.shp import field_conv, write_layer

DEFAULT_START = dt.datetime(2026, 5, 4, 8, 0, 0, tzinfo=dt.UTC)


@dataclass
class AsAppliedLog:
    """Time series of the implement (N samples, n sections).

    Attributes
    ----------
    t_s : (N,) s since ``start_utc``; xy : (N, 2) m (map frame of the field); yaw : (N,) rad;
    sections : (N, n) uint8 on/off; rate_applied, rate_prescribed : (N,) kg/ha (NaN: no rate control);
    section_widths_m : (n,); start_utc : datetime of t = 0; position_status : ISO 11783 position status
    (4 = RTK fixed).
    """

    section_widths_m: tuple
    t_s: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))
    xy: np.ndarray = dc_field(default_factory=lambda: np.zeros((0, 2)))
    yaw: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))
    sections: np.ndarray = dc_field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    rate_applied: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))
    rate_prescribed: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))
    start_utc: dt.datetime = DEFAULT_START
    position_status: int = 4

    @property
    def n_sections(self) -> int:
        return len(self.section_widths_m)

    @property
    def has_rate(self) -> bool:
        return bool(np.any(np.isfinite(self.rate_applied)) or np.any(np.isfinite(self.rate_prescribed)))

    @classmethod
    def from_rows(cls, section_widths_m, rows, start_utc: dt.datetime = DEFAULT_START) -> AsAppliedLog:
        """From rows ``(t_s, x, y, yaw, states[, rate_applied, rate_prescribed])``."""
        n = len(section_widths_m)
        t = np.array([r[0] for r in rows], float)
        xy = np.array([[r[1], r[2]] for r in rows], float).reshape(-1, 2)
        yaw = np.array([r[3] for r in rows], float)
        st = np.array([list(r[4]) for r in rows], np.uint8).reshape(-1, n)
        app = np.array([r[5] if len(r) > 5 else np.nan for r in rows], float)
        pre = np.array([r[6] if len(r) > 6 else np.nan for r in rows], float)
        return cls(tuple(float(w) for w in section_widths_m), t, xy, yaw, st, app, pre, start_utc)


def _points_geojson(log: AsAppliedLog, fd: FieldData) -> dict:
    conv, _ = field_conv(fd)
    pts = conv(log.xy) if len(log.xy) else np.zeros((0, 2))
    w = np.asarray(log.section_widths_m, float)
    feats = []
    for i in range(len(log.t_s)):
        st = log.sections[i]
        props = {"t_s": float(log.t_s[i]), "time_utc": (log.start_utc + dt.timedelta(seconds=float(log.t_s[i])))
                 .strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "yaw_rad": float(log.yaw[i]),
                 "sections": "".join(str(int(s)) for s in st), "width_m": float(np.sum(w[st > 0]))}
        for key, arr in (("rate_applied_kgha", log.rate_applied), ("rate_prescribed_kgha", log.rate_prescribed)):
            v = float(arr[i])
            props[key] = v if math.isfinite(v) else None
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "Point", "coordinates": [float(pts[i, 0]), float(pts[i, 1])]}})
    return {"type": "FeatureCollection", "properties": {"crs": "EPSG:4326" if fd.geo is not None else "local",
                                                        "field": fd.name, "kind": "as_applied"},
            "features": feats}


def write_as_applied(directory, log: AsAppliedLog, fd: FieldData, applied_rings=None) -> list[pathlib.Path]:
    """Write the as-applied record files (see the module doc); returns their paths.

    ``applied_rings``: outer rings (map metres) of the applied area, e.g. from
    :func:`agricare.core.missions.field_record.applied_polygons`.
    """
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = []
    if fd.geo is not None:
        from agricare.core.farmdata.isoxml import write_taskdata

        files += write_taskdata(d / "TASKDATA", [fd], log)
    conv, prj = field_conv(fd)
    nd = 9 if fd.geo is not None else 4
    (d / "as_applied.geojson").write_text(json.dumps(_json_floats(_points_geojson(log, fd), nd)))
    files.append(d / "as_applied.geojson")
    w = np.asarray(log.section_widths_m, float)
    recs = []
    for i in range(len(log.t_s)):
        st = log.sections[i]
        app, pre = float(log.rate_applied[i]), float(log.rate_prescribed[i])
        recs.append([round(float(log.t_s[i]), 3), "".join(str(int(s)) for s in st), round(float(np.sum(w[st > 0])), 3),
                     round(app, 3) if math.isfinite(app) else None, round(pre, 3) if math.isfinite(pre) else None,
                     round(float(log.yaw[i]), 5)])
    pts = conv(log.xy) if len(log.xy) else np.zeros((0, 2))
    files += write_layer(d / "as_applied.shp", "point", list(pts),
                         [("t_s", "N", 12, 3), ("sections", "C", 16, 0), ("width_m", "N", 8, 3),
                          ("rate_app", "N", 10, 3), ("rate_pre", "N", 10, 3), ("yaw_rad", "N", 10, 5)], recs, prj)
    if applied_rings:
        import shapely
        from shapely.geometry import Polygon

        from agricare.core.farmdata.shp import _esri_rings

        polys = [Polygon(r) for r in applied_rings if len(r) >= 4]
        polys = [p if p.is_valid else shapely.make_valid(p) for p in polys]
        polys = [g for p in polys for g in getattr(p, "geoms", [p]) if g.geom_type == "Polygon" and g.area > 0]
        files += write_layer(d / "applied_area.shp", "polygon", [_esri_rings(p, conv) for p in polys],
                             [("patch", "N", 8, 0), ("area_m2", "N", 14, 2)],
                             [[i, round(p.area, 2)] for i, p in enumerate(polys)], prj)
    return files
