"""Agronomic layers on a field grid: soil samples -> interpolated map, yield map from a harvest, zones and
the prescription map the tractor applies.

- :func:`idw_grid`: inverse-distance-weighted interpolation (power 2, nearest ``k`` samples) of point samples
  onto cells of the field (NaN outside);
- :func:`zones_from_grid`: management zones by quantile breaks of a layer;
- :func:`prescription_from_zones`: rate (kg/ha) per zone; :func:`write_prescription` writes it as GeoJSON,
  Shapefile (zone polygons with the rate) and ISO 11783-10 TaskData (treatment zones ``TZN`` with a ``PDV``
  setpoint mass rate, grid type 1 ``GRD`` with one zone code byte per cell);
- :func:`simulate_harvest` / :func:`clean_yield`: a combine yield monitor along the coverage path (mass flow
  delayed by the grain transport, measured with noise, header width, speed) and the cleaning of its raw
  points as the published protocols do it (flow delay shift, start/end-of-pass fill and empty time, speed
  and yield outliers, overlapping narrow passes);
- :func:`read_growth_csv`: the growth map the row robot writes.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import box

from agricare.core.farmdata.field import FarmDataError, FieldData, _json_floats


@dataclass
class Grid:
    """A layer: ``values[iy, ix]`` for the cell centred at ``(x0 + (ix + .5) res, y0 + (iy + .5) res)``."""

    name: str
    x0: float
    y0: float
    res: float
    values: np.ndarray

    @property
    def extent(self):
        ny, nx = self.values.shape
        return (self.x0, self.x0 + nx * self.res, self.y0, self.y0 + ny * self.res)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.values.shape
        return np.meshgrid(self.x0 + (np.arange(nx) + 0.5) * self.res, self.y0 + (np.arange(ny) + 0.5) * self.res)

    def value_at(self, xy) -> np.ndarray:
        """Cell value at points (N, 2); NaN outside the grid."""
        xy = np.asarray(xy, float).reshape(-1, 2)
        ix = np.floor((xy[:, 0] - self.x0) / self.res).astype(int)
        iy = np.floor((xy[:, 1] - self.y0) / self.res).astype(int)
        ny, nx = self.values.shape
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.full(len(xy), np.nan)
        out[ok] = self.values[iy[ok], ix[ok]]
        return out


def field_grid(area, res_m: float, name: str = "") -> Grid:
    """An all-NaN grid covering a polygon, with a boolean mask of the cells whose centre is inside."""
    minx, miny, maxx, maxy = area.bounds
    nx, ny = int(math.ceil((maxx - minx) / res_m)), int(math.ceil((maxy - miny) / res_m))
    return Grid(name, float(minx), float(miny), float(res_m), np.full((ny, nx), np.nan))


def idw_grid(xy, values, area, res_m: float, power: float = 2.0, k: int = 12, name: str = "value") -> Grid:
    """Inverse-distance-weighted interpolation of samples onto the cells of ``area`` (NaN outside)."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    v = np.asarray(values, float).ravel()
    ok = np.all(np.isfinite(xy), axis=1) & np.isfinite(v)
    xy, v = xy[ok], v[ok]
    if len(v) < 1:
        raise FarmDataError("no finite samples to interpolate")
    g = field_grid(area, res_m, name)
    X, Y = g.centres()
    inside = shapely.contains_xy(area, X, Y)
    pts = np.column_stack([X[inside], Y[inside]])
    out = np.empty(len(pts))
    kk = min(k, len(v))
    for a in range(0, len(pts), 4096):
        p = pts[a:a + 4096]
        d = np.hypot(p[:, None, 0] - xy[None, :, 0], p[:, None, 1] - xy[None, :, 1])
        idx = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        dk = np.take_along_axis(d, idx, axis=1)
        w = 1.0 / np.maximum(dk, 1e-6) ** power
        out[a:a + 4096] = np.sum(w * v[idx], axis=1) / np.sum(w, axis=1)
    g.values[inside] = out
    return g


def zones_from_grid(grid: Grid, n_zones: int) -> Grid:
    """Zone index 0..n-1 per cell by quantile breaks of the layer (0 = lowest values)."""
    if n_zones < 1:
        raise FarmDataError("at least one zone")
    ok = np.isfinite(grid.values)
    if not ok.any():
        raise FarmDataError(f"layer {grid.name!r} has no value inside the field")
    breaks = np.quantile(grid.values[ok], np.linspace(0, 1, n_zones + 1)[1:-1]) if n_zones > 1 else np.array([])
    z = np.full(grid.values.shape, np.nan)
    z[ok] = np.searchsorted(breaks, grid.values[ok], side="right")
    return Grid("zone", grid.x0, grid.y0, grid.res, z)


def prescription_from_zones(zones: Grid, rates_kgha) -> Grid:
    """Rate (kg/ha) per cell from the zone index."""
    r = np.asarray(rates_kgha, float)
    v = np.full(zones.values.shape, np.nan)
    ok = np.isfinite(zones.values)
    v[ok] = r[zones.values[ok].astype(int)]
    return Grid("rate_kgha", zones.x0, zones.y0, zones.res, v)


def zone_polygons(grid: Grid) -> list[tuple[float, object]]:
    """(value, shapely geometry) per distinct value: the union of its cells."""
    out = []
    X, Y = grid.centres()
    h = 0.5 * grid.res
    for val in np.unique(grid.values[np.isfinite(grid.values)]):
        m = grid.values == val
        cells = [box(x - h, y - h, x + h, y + h) for x, y in zip(X[m], Y[m])]
        out.append((float(val), shapely.union_all(cells, grid_size=1e-3)))
    return out


def write_grid_csv(grid: Grid, path) -> pathlib.Path:
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    X, Y = grid.centres()
    ok = np.isfinite(grid.values)
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x_m", "y_m", "cell_m", grid.name or "value"])
        for x, y, v in zip(X[ok], Y[ok], grid.values[ok]):
            w.writerow([round(float(x), 3), round(float(y), 3), grid.res, round(float(v), 4)])
    return p


def read_grid_csv(path) -> Grid:
    """A grid written by :func:`write_grid_csv` (or any x_m,y_m,cell_m,value CSV on a regular grid)."""
    p = pathlib.Path(path)
    try:
        with open(p, newline="") as fh:
            rows = list(csv.reader(fh))
        head, body = rows[0], np.array([[float(v) for v in r[:4]] for r in rows[1:] if r], float)
    except (OSError, IndexError, ValueError) as exc:
        raise FarmDataError(f"{p}: not a grid CSV x_m,y_m,cell_m,value ({exc})") from None
    if len(body) == 0:
        raise FarmDataError(f"{p}: no cells")
    res = float(body[0, 2])
    x0, y0 = body[:, 0].min() - res / 2, body[:, 1].min() - res / 2
    ix = np.round((body[:, 0] - x0) / res - 0.5).astype(int)
    iy = np.round((body[:, 1] - y0) / res - 0.5).astype(int)
    v = np.full((iy.max() + 1, ix.max() + 1), np.nan)
    v[iy, ix] = body[:, 3]
    return Grid(head[3] if len(head) > 3 else "value", float(x0), float(y0), res, v)


def read_samples(path, fd: FieldData, column: str = "value"):
    """Point samples (soil lab results): CSV with ``x_m,y_m`` or ``lon,lat`` and ``column``, or GeoJSON points.

    Returns (xy (N, 2) metres in the field's frame, values (N,)).
    """
    p = pathlib.Path(path)
    if not p.is_file():
        raise FarmDataError(f"{p}: file not found")
    xy, vals = [], []
    if p.suffix.lower() in (".geojson", ".json"):
        try:
            doc = json.loads(p.read_text())
            feats = doc["features"]
        except (ValueError, KeyError, TypeError):
            raise FarmDataError(f"{p}: not a GeoJSON FeatureCollection of points") from None
        geo = str((doc.get("properties") or {}).get("crs", "EPSG:4326")).lower() != "local"
        for f in feats:
            g = f.get("geometry") or {}
            if g.get("type") == "Point" and column in (f.get("properties") or {}):
                xy.append(g["coordinates"][:2])
                vals.append(f["properties"][column])
    else:
        try:
            with open(p, newline="") as fh:
                rd = csv.DictReader(fh)
                cols = [c.strip() for c in (rd.fieldnames or [])]
                geo = "lon" in cols and "lat" in cols
                if not geo and not ("x_m" in cols and "y_m" in cols):
                    raise FarmDataError(f"{p}: needs columns x_m,y_m or lon,lat")
                if column not in cols:
                    raise FarmDataError(f"{p}: no column {column!r} (has {', '.join(cols)})")
                for r in rd:
                    r = {k.strip(): v for k, v in r.items() if k}
                    xy.append([r["lon"], r["lat"]] if geo else [r["x_m"], r["y_m"]])
                    vals.append(r[column])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise FarmDataError(f"{p}: cannot read samples ({exc})") from None
    try:
        xy = np.asarray(xy, float).reshape(-1, 2)
        vals = np.asarray(vals, float)
    except ValueError:
        raise FarmDataError(f"{p}: non-numeric sample coordinates or values") from None
    if len(vals) == 0:
        raise FarmDataError(f"{p}: no samples with {column!r}")
    if geo:
        if fd.geo is None:
            raise FarmDataError(f"{p}: samples in lon/lat but the field has no georeference")
        xy = fd.from_wgs84(xy)
    return xy, vals


# ------------------------------------------------------------------------------------------- prescription
def write_prescription(directory, rx: Grid, fd: FieldData) -> list[pathlib.Path]:
    """Prescription map: ``prescription.geojson``, ``prescription.shp`` (zone polygons with ``rate_kgha``),
    ``prescription_grid.csv`` and, for a georeferenced field, ``TASKDATA/`` (TZN + PDV + GRD type 1)."""
    from agricare.core.farmdata.shp import _esri_rings, field_conv, write_layer

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = [write_grid_csv(rx, d / "prescription_grid.csv")]
    conv, prj = field_conv(fd)
    zones = zone_polygons(rx)
    feats, geoms, recs = [], [], []
    for i, (rate, geom) in enumerate(zones):
        for poly in getattr(geom, "geoms", [geom]):
            if poly.geom_type != "Polygon" or poly.is_empty:
                continue
            rings = [conv(poly.exterior.coords).tolist()] + [conv(h.coords).tolist() for h in poly.interiors]
            feats.append({"type": "Feature", "properties": {"zone": i + 1, "rate_kgha": rate},
                          "geometry": {"type": "Polygon", "coordinates": rings}})
            geoms.append(_esri_rings(poly, conv))
            recs.append([i + 1, rate, round(poly.area, 2)])
    doc = {"type": "FeatureCollection", "properties": {"crs": "EPSG:4326" if fd.geo else "local", "field": fd.name,
                                                       "kind": "prescription", "unit": "kg/ha"}, "features": feats}
    (d / "prescription.geojson").write_text(json.dumps(_json_floats(doc, 9 if fd.geo else 3)))
    files.append(d / "prescription.geojson")
    files += write_layer(d / "prescription.shp", "polygon", geoms,
                         [("zone", "N", 4, 0), ("rate_kgha", "N", 10, 3), ("area_m2", "N", 14, 2)], recs, prj)
    if fd.geo is not None:
        from agricare.core.farmdata.isoxml import write_prescription_taskdata

        files += write_prescription_taskdata(d / "TASKDATA", rx, fd)
    return files


# ------------------------------------------------------------------------------------------------ harvest
@dataclass(frozen=True)
class YieldMonitorParams:
    """Combine yield monitor (SI units; yield in t/ha)."""

    header_width_m: float = 6.0
    flow_delay_s: float = 12.0          # cut at the header -> grain at the mass flow sensor
    sensor_noise: float = 0.05          # relative, per reading
    period_s: float = 1.0
    fill_time_s: float = 6.0            # flow ramps up at the start of a pass and down at its end
    seed: int = 0

    def __post_init__(self):
        for n in ("header_width_m", "period_s"):
            if not getattr(self, n) > 0:
                raise ValueError(f"{n} must be > 0")
        for n in ("flow_delay_s", "sensor_noise", "fill_time_s"):
            if not getattr(self, n) >= 0:
                raise ValueError(f"{n} must be >= 0")


def simulate_harvest(path_xy, path_working, speed_mps: float, true_yield: Grid, params: YieldMonitorParams):
    """Raw yield monitor log along a working path.

    The header cuts ``header_width_m x v dt`` of crop per reading; the grain reaches the mass flow sensor
    ``flow_delay_s`` later (first-order fill/empty of ``fill_time_s`` at the pass ends); the monitor logs the
    GNSS position of the moment of the reading (not of the cut), the speed and the flow with noise.

    Returns a dict of arrays: t_s, x, y, speed_mps, flow_kgps, pass_id (per reading).
    """
    rng = np.random.default_rng(params.seed)
    xy = np.asarray(path_xy, float)
    work = np.asarray(path_working, bool)
    seg = np.hypot(*np.diff(xy, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t_end = s[-1] / speed_mps
    t = np.arange(0.0, t_end, params.period_s)
    si = np.interp(t * speed_mps, s, np.arange(len(s)))
    i = np.clip(np.round(si).astype(int), 0, len(xy) - 1)
    pos = np.column_stack([np.interp(si, np.arange(len(s)), xy[:, 0]), np.interp(si, np.arange(len(s)), xy[:, 1])])
    cutting = work[i]
    y_tha = np.nan_to_num(true_yield.value_at(pos), nan=0.0)
    cut_kgps = np.where(cutting, y_tha * 0.1 * params.header_width_m * speed_mps, 0.0)   # t/ha -> kg/m2 = 0.1
    # transport delay and first-order fill / empty
    d = int(round(params.flow_delay_s / params.period_s))
    delayed = np.concatenate([np.zeros(d), cut_kgps[:len(cut_kgps) - d]]) if d else cut_kgps
    tau = max(params.fill_time_s / 3.0, 1e-6)
    a = 1.0 - math.exp(-params.period_s / tau)
    flow = np.zeros_like(delayed)
    for k in range(1, len(flow)):
        flow[k] = flow[k - 1] + a * (delayed[k] - flow[k - 1])
    flow = flow * (1.0 + params.sensor_noise * rng.standard_normal(len(flow)))
    pass_id = np.cumsum(np.concatenate([[0], (cutting[1:] & ~cutting[:-1]).astype(int)]))
    pass_id = np.where(cutting, pass_id, -1)
    return {"t_s": t, "x": pos[:, 0], "y": pos[:, 1], "speed_mps": np.full(len(t), speed_mps),
            "flow_kgps": np.maximum(flow, 0.0), "pass_id": pass_id, "true_tha": np.where(cutting, y_tha, np.nan)}


def clean_yield(raw: dict, params: YieldMonitorParams, n_sd: float = 3.0):
    """Clean a raw yield log: shift the flow back by the flow delay, drop the fill/empty readings at both
    ends of each pass, readings with speed out of range, zero flow while cutting and yields beyond
    ``n_sd`` standard deviations of the mean.

    Returns (xy (M, 2), yield t/ha (M,), counts of removed readings per rule).
    """
    d = int(round(params.flow_delay_s / params.period_s))
    flow = np.asarray(raw["flow_kgps"], float)
    shifted = np.concatenate([flow[d:], np.full(d, np.nan)]) if d else flow.copy()
    v = np.asarray(raw["speed_mps"], float)
    yld = shifted / np.maximum(v * params.header_width_m, 1e-9) * 10.0           # kg/m2 -> t/ha
    pid = np.asarray(raw["pass_id"])
    keep = pid >= 0
    removed = {"not_cutting": int(np.count_nonzero(~keep))}
    n_edge = int(math.ceil(params.fill_time_s / params.period_s))
    edge = np.zeros(len(pid), bool)
    for p in np.unique(pid[pid >= 0]):
        idx = np.flatnonzero(pid == p)
        edge[idx[:n_edge]] = True
        edge[idx[-n_edge:]] = True
    removed["pass_ends"] = int(np.count_nonzero(edge & keep))
    keep &= ~edge
    vs = keep & ((v < 0.3) | (v > 4.0))
    removed["speed"] = int(np.count_nonzero(vs))
    keep &= ~vs
    bad = keep & ~(np.isfinite(yld) & (yld > 0))
    removed["zero_or_missing"] = int(np.count_nonzero(bad))
    keep &= ~bad
    m, sd = float(np.mean(yld[keep])), float(np.std(yld[keep]))
    out = keep & (np.abs(yld - m) > n_sd * sd)
    removed["outliers"] = int(np.count_nonzero(out))
    keep &= ~out
    return np.column_stack([raw["x"], raw["y"]])[keep], yld[keep], removed


def read_growth_csv(path, column: str = "cover_pct") -> tuple[np.ndarray, np.ndarray]:
    """The row robot's growth map CSV (``x_m, y_m, [lat_deg, lon_deg,] cover_pct, samples, low, gap`` as
    :meth:`agricare.core.perception.vegetation.GrowthMap.save` writes it): (xy (N, 2) map metres, values (N,))."""
    p = pathlib.Path(path)
    try:
        with open(p, newline="") as fh:
            rd = csv.DictReader(fh)
            rows = [(float(r["x_m"]), float(r["y_m"]), float(r[column])) for r in rd]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise FarmDataError(f"{p}: not a growth map CSV with x_m, y_m and {column} ({exc})") from None
    if not rows:
        raise FarmDataError(f"{p}: no cells")
    a = np.asarray(rows, float).reshape(-1, 3)
    return a[:, :2], a[:, 2]
