"""Applied against prescribed rate in a machine's as-applied record (``as_applied.geojson`` of a run).

Each record point stands for the ground the implement swept until the next point (distance x working
width); the share of that area whose applied rate is within ``--tol`` of the prescription is printed. The
figure is the machine's own view (applied = the implement's report, or the metering model when the implement
reports none), not simulator ground truth; the look-ahead against no look-ahead comparison is in
test/test_rate_control.py.

Run: ``PYTHONPATH=src .venv/bin/python bench/rate_record.py out/farm/records/tractor [--tol 0.05]``
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("record_dir")
    ap.add_argument("--tol", type=float, default=0.05)
    a = ap.parse_args(argv)
    doc = json.loads((pathlib.Path(a.record_dir) / "as_applied.geojson").read_text())
    crs = doc["properties"]["crs"]
    f = doc["features"]
    xy = np.array([q["geometry"]["coordinates"] for q in f], float)
    if crs != "local":                      # lon/lat -> metres (equirectangular, enough for segment lengths)
        lat0 = np.radians(xy[:, 1].mean())
        xy = np.column_stack([xy[:, 0] * 111320.0 * np.cos(lat0), xy[:, 1] * 110540.0])
    w = np.array([q["properties"]["width_m"] for q in f], float)
    app = np.array([np.nan if q["properties"]["rate_applied_kgha"] is None else q["properties"]["rate_applied_kgha"]
                    for q in f], float)
    pre = np.array([np.nan if q["properties"]["rate_prescribed_kgha"] is None else
                    q["properties"]["rate_prescribed_kgha"] for q in f], float)
    ds = np.hypot(*np.diff(xy, axis=0).T)
    area = ds * w[:-1]
    ok = (w[:-1] > 0) & np.isfinite(pre[:-1]) & (pre[:-1] > 0)
    within = ok & (np.abs(app[:-1] - pre[:-1]) <= a.tol * pre[:-1])
    tot = float(area[ok].sum())
    print(f"{len(f)} record points, worked area in the record {tot:.0f} m2; applied within {100 * a.tol:.0f} % of "
          f"the prescription on {100 * area[within].sum() / max(tot, 1e-9):.2f} % of it; mean |applied - prescribed| "
          f"{np.nanmean(np.abs(app[:-1] - pre[:-1])[ok]):.2f} kg/ha")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
