"""The tractor's field record: where the implement applied (as the machine itself knows it) and when.

Written from the section controller's own applied-area raster and its section on/off log:

- ``applied_area.geojson``: the applied area as polygons (map frame metres, ``"crs": "local"``; with a datum
  the WGS84 corners are added as a property), one Feature per connected patch;
- ``applied_cells.csv``: per 1 m cell, the applied fraction (what a farm-management system imports);
- ``sections_log.csv``: every change of the section states (time, x, y, yaw, one column per section);
- ``applied_area.png``: the map with the field outline.

No ROS here; the node calls :func:`write_field_record` at the end of the job or on request.
"""

from __future__ import annotations

import csv
import json
import pathlib

import cv2
import numpy as np


def applied_polygons(grid: np.ndarray, x0: float, y0: float, res: float) -> list[list[list[float]]]:
    """Outer rings (map metres) of the connected applied patches of a boolean raster (ny, nx)."""
    mask = (grid > 0).astype(np.uint8)
    if not mask.any():
        return []
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(float)
        if len(pts) < 3:
            continue
        xy = np.column_stack([x0 + (pts[:, 0] + 0.5) * res, y0 + (pts[:, 1] + 0.5) * res])
        ring = np.vstack([xy, xy[:1]])
        rings.append(np.round(ring, 3).tolist())
    return rings


def aggregate(grid: np.ndarray, res: float, cell_m: float = 1.0) -> np.ndarray:
    """Applied fraction per ``cell_m`` block: array (my, mx)."""
    k = max(1, int(round(cell_m / res)))
    ny, nx = grid.shape
    my, mx = ny // k, nx // k
    if my == 0 or mx == 0:
        return np.zeros((0, 0))
    g = grid[: my * k, : mx * k].astype(float).reshape(my, k, mx, k)
    return g.mean(axis=(1, 3))


def write_field_record(directory, grid, x0, y0, res, section_log, field_ring=None, n_sections=0,
                       cell_m: float = 1.0) -> list[str]:
    """Write the record files into ``directory``; returns their paths.

    Parameters
    ----------
    grid : ndarray (ny, nx) bool
        Applied-area raster, cell (iy, ix) centred at (x0 + (ix + .5) res, y0 + (iy + .5) res).
    section_log : list of (t_s, x_m, y_m, yaw_rad, states)
        One entry per change of the section states.
    field_ring : array (N, 2) or None
        Field outline for the picture.
    """
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = []
    rings = applied_polygons(grid, x0, y0, res)
    feats = [{"type": "Feature", "properties": {"kind": "applied", "patch": i},
              "geometry": {"type": "Polygon", "coordinates": [r]}} for i, r in enumerate(rings)]
    area = float(np.count_nonzero(grid)) * res * res
    doc = {"type": "FeatureCollection", "properties": {"crs": "local", "applied_area_m2": round(area, 1)},
           "features": feats}
    (d / "applied_area.geojson").write_text(json.dumps(doc))
    files.append(str(d / "applied_area.geojson"))

    agg = aggregate(grid, res, cell_m)
    with open(d / "applied_cells.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x_m", "y_m", "cell_m", "applied_fraction"])
        for iy, ix in zip(*np.nonzero(agg > 0)):
            w.writerow([round(x0 + (ix + 0.5) * cell_m, 3), round(y0 + (iy + 0.5) * cell_m, 3), cell_m,
                        round(float(agg[iy, ix]), 3)])
    files.append(str(d / "applied_cells.csv"))

    with open(d / "sections_log.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "x_m", "y_m", "yaw_rad"] + [f"section_{i}" for i in range(n_sections)])
        for t, x, y, yaw, states in section_log:
            w.writerow([round(t, 3), round(x, 3), round(y, 3), round(yaw, 4)] + [int(s) for s in states])
    files.append(str(d / "sections_log.csv"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    ny, nx = grid.shape
    ax.imshow(np.where(grid, 1.0, np.nan), origin="lower", extent=(x0, x0 + nx * res, y0, y0 + ny * res),
              cmap="Greens", vmin=0, vmax=1.5, interpolation="nearest")
    if field_ring is not None and len(field_ring):
        r = np.vstack([np.asarray(field_ring, float), np.asarray(field_ring, float)[:1]])
        ax.plot(r[:, 0], r[:, 1], "k-", lw=1)
    ax.set_aspect("equal")
    ax.set_title(f"applied area (the machine's record): {area:.0f} m2, {len(section_log)} section changes")
    ax.set_xlabel("x east [m]")
    ax.set_ylabel("y north [m]")
    fig.tight_layout()
    fig.savefig(d / "applied_area.png", dpi=100)
    plt.close(fig)
    files.append(str(d / "applied_area.png"))
    return files
