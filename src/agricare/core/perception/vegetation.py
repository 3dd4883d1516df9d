"""Crop growth map: segmented vegetation projected onto the ground plane and accumulated as canopy
cover per map cell.

Each camera frame: segment vegetation (same index as crop-row detection), sample the mask on a pixel
grid, intersect the pixel rays with the ground (:class:`~agricare.core.perception.crop_rows.CameraGeometry`,
``base_link``), transform to the map with the robot pose, and add (vegetation, 1) to each cell's
(sum, count). Cover = sum / count in percent. Cells seen fewer than ``min_samples`` times are unknown.

Outputs: an occupancy-grid style array (-1 unknown, 0..100 % cover; row 0 = south edge, as
``nav_msgs/OccupancyGrid``), the list of low-cover cells, plant gaps (low-cover cells surrounded by
good cover), and a georeferenced PNG (+ world file ``.pgw`` and ``.yaml``) and CSV.

Run ``python -m agricare.core.perception.vegetation`` for a demo.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from dataclasses import dataclass

import cv2
import numpy as np

from agricare.core.geometry import se2_transform_points
from agricare.core.perception.crop_rows import CameraGeometry, check_image, segment_vegetation


@dataclass(frozen=True)
class GrowthMapParams:
    """Growth map parameters (SI units).

    Attributes
    ----------
    resolution_m : cell size, m.
    width_m, height_m : map extent (x east, y north), m.
    origin_x_m, origin_y_m : map-frame position of the lower-left corner of cell (0, 0), m.
    max_range_m : ground points further than this from the camera are ignored (resolution drops), m.
    sample_step_px : mask sampling step on the working image, px.
    work_width_px : images are downscaled to this width before segmentation, px.
    min_samples : a cell needs this many samples to be known.
    low_cover_pct : cells below this cover are "low".
    good_cover_pct : a plant gap is a low cell whose known neighbours average at least this cover.
    vegetation_index, min_index : segmentation (see :func:`segment_vegetation`).
    """

    resolution_m: float = 0.25
    width_m: float = 100.0
    height_m: float = 100.0
    origin_x_m: float = -50.0
    origin_y_m: float = -50.0
    max_range_m: float = 4.0
    sample_step_px: int = 2
    work_width_px: int = 160
    min_samples: int = 5
    low_cover_pct: float = 15.0
    good_cover_pct: float = 30.0
    vegetation_index: str = "exg"
    min_index: float = 0.03

    def __post_init__(self):
        for name in ("resolution_m", "width_m", "height_m", "max_range_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v}")
        for name in ("origin_x_m", "origin_y_m"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        if self.width_m / self.resolution_m * self.height_m / self.resolution_m > 4e7:
            raise ValueError("width_m/height_m/resolution_m give more than 4e7 cells")
        if int(self.sample_step_px) < 1 or int(self.min_samples) < 1 or int(self.work_width_px) < 16:
            raise ValueError("sample_step_px and min_samples must be >= 1, work_width_px >= 16")
        if not 0 <= self.low_cover_pct <= self.good_cover_pct <= 100:
            raise ValueError("need 0 <= low_cover_pct <= good_cover_pct <= 100")


def project_vegetation(image_bgr, camera: CameraGeometry, params: GrowthMapParams | None = None):
    """Segment and project one image.

    Returns
    -------
    points_in_base : np.ndarray (N, 2)
        Ground points in ``base_link``, m.
    is_vegetation : np.ndarray (N,) float
        1.0 for vegetation, 0.0 for soil.
    """
    p = params or GrowthMapParams()
    img = check_image(image_bgr)
    H, W = img.shape[:2]
    ww = min(int(p.work_width_px), W)
    hw = max(8, int(round(H * ww / W)))
    small = cv2.resize(img, (ww, hw), interpolation=cv2.INTER_AREA) if ww != W else img
    mask, _ = segment_vegetation(small, p.vegetation_index, p.min_index)
    cam = camera.scaled(ww, hw)
    st = int(p.sample_step_px)
    vv, uu = np.mgrid[st // 2:hw:st, st // 2:ww:st]
    uv = np.column_stack([uu.ravel(), vv.ravel()]).astype(float)
    g = cam.pixels_to_ground(uv)
    ok = np.all(np.isfinite(g), axis=1)
    ok &= np.hypot(g[:, 0] - cam.x_m, g[:, 1] - cam.y_m) <= p.max_range_m
    vals = mask[vv.ravel(), uu.ravel()].astype(float)
    return g[ok], vals[ok]


class GrowthMap:
    """Canopy cover accumulated per cell of a fixed map grid (see module doc)."""

    def __init__(self, params: GrowthMapParams | None = None):
        self.p = params or GrowthMapParams()
        self.nx = int(round(self.p.width_m / self.p.resolution_m))
        self.ny = int(round(self.p.height_m / self.p.resolution_m))
        self.veg = np.zeros((self.ny, self.nx), np.float64)
        self.count = np.zeros((self.ny, self.nx), np.float64)
        self.frames = 0

    def cell_of(self, points_in_map) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pts = np.asarray(points_in_map, float).reshape(-1, 2)
        pts = np.where(np.isfinite(pts), pts, -1e12)
        ix = np.floor((pts[:, 0] - self.p.origin_x_m) / self.p.resolution_m).astype(np.int64)
        iy = np.floor((pts[:, 1] - self.p.origin_y_m) / self.p.resolution_m).astype(np.int64)
        ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return ix, iy, ok

    def add_points(self, points_in_map, is_vegetation) -> int:
        """Accumulate samples; returns how many fell inside the map."""
        ix, iy, ok = self.cell_of(points_in_map)
        v = np.asarray(is_vegetation, float).ravel()
        flat = iy[ok] * self.nx + ix[ok]
        self.veg.ravel()[:] += np.bincount(flat, weights=v[ok], minlength=self.nx * self.ny)
        self.count.ravel()[:] += np.bincount(flat, minlength=self.nx * self.ny)
        return int(ok.sum())

    def add_image(self, image_bgr, camera: CameraGeometry, pose_in_map) -> int:
        """Segment, project and accumulate one image taken at ``pose_in_map`` ``[x, y, yaw]`` of base_link."""
        pose = np.asarray(pose_in_map, float)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"pose_in_map must be 3 finite values, got {pose_in_map!r}")
        pts, vals = project_vegetation(image_bgr, camera, self.p)
        self.frames += 1
        return self.add_points(se2_transform_points(pose, pts), vals)

    def cover_percent(self) -> np.ndarray:
        """(ny, nx) cover in percent, NaN where unknown. Row 0 = lowest y."""
        with np.errstate(invalid="ignore", divide="ignore"):
            c = 100.0 * self.veg / self.count
        c[self.count < self.p.min_samples] = np.nan
        return c

    def to_occupancy(self) -> np.ndarray:
        """(ny, nx) int8: -1 unknown, 0..100 cover (nav_msgs/OccupancyGrid data, row-major from the origin)."""
        c = self.cover_percent()
        out = np.full(c.shape, -1, np.int8)
        k = np.isfinite(c)
        out[k] = np.clip(np.round(c[k]), 0, 100).astype(np.int8)
        return out

    def cell_centre(self, ix, iy):
        r = self.p.resolution_m
        return self.p.origin_x_m + (np.asarray(ix) + 0.5) * r, self.p.origin_y_m + (np.asarray(iy) + 0.5) * r

    def low_cover_cells(self) -> list[tuple[float, float, float]]:
        """Known cells with cover below ``low_cover_pct``: list of (x_m, y_m, cover_pct)."""
        c = self.cover_percent()
        iy, ix = np.nonzero(np.isfinite(c) & (c < self.p.low_cover_pct))
        x, y = self.cell_centre(ix, iy)
        return [(float(a), float(b), float(v)) for a, b, v in zip(x, y, c[iy, ix])]

    def plant_gaps(self) -> list[tuple[float, float, float]]:
        """Low-cover cells whose known 8-neighbours average at least ``good_cover_pct`` (missing plants
        inside an otherwise growing crop): list of (x_m, y_m, cover_pct)."""
        c = self.cover_percent()
        known = np.isfinite(c)
        cz = np.where(known, c, 0.0).astype(np.float32)
        k = np.ones((3, 3), np.float32)
        k[1, 1] = 0
        s = cv2.filter2D(cz, -1, k, borderType=cv2.BORDER_CONSTANT)
        n = cv2.filter2D(known.astype(np.float32), -1, k, borderType=cv2.BORDER_CONSTANT)
        with np.errstate(invalid="ignore", divide="ignore"):
            nb = s / n
        gap = known & (c < self.p.low_cover_pct) & (n >= 3) & (nb >= self.p.good_cover_pct)
        iy, ix = np.nonzero(gap)
        x, y = self.cell_centre(ix, iy)
        return [(float(a), float(b), float(v)) for a, b, v in zip(x, y, c[iy, ix])]

    def save(self, directory, basename: str = "growth_map", datum=None, frame_id: str = "map") -> list[str]:
        """Write ``<basename>.png`` (north up, red = low, green = high cover, grey = unknown) with a world
        file ``.pgw`` (map metres) and ``.yaml`` (resolution, origin, frame, datum), and ``<basename>.csv``
        (one row per known cell: x_m, y_m, [lat_deg, lon_deg,] cover_pct, samples, low, gap).

        ``datum`` = ``(lat0_deg, lon0_deg)`` of the map frame adds WGS84 coordinates. Returns the paths.
        """
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        c = self.cover_percent()
        known = np.isfinite(c)
        img = np.full((self.ny, self.nx, 3), 128, np.uint8)
        cv = np.clip(np.nan_to_num(c) / 100.0, 0, 1)
        # red (0 %) -> yellow -> green (100 %), BGR
        img[..., 2] = np.where(known, (255 * np.clip(2 - 2 * cv, 0, 1)), 128).astype(np.uint8)
        img[..., 1] = np.where(known, (255 * np.clip(2 * cv, 0, 1)), 128).astype(np.uint8)
        img[..., 0] = np.where(known, 0, 128).astype(np.uint8)
        png = d / f"{basename}.png"
        cv2.imwrite(str(png), img[::-1])  # north up
        r = self.p.resolution_m
        pgw = d / f"{basename}.pgw"
        top_y = self.p.origin_y_m + self.ny * r
        pgw.write_text(f"{r}\n0\n0\n{-r}\n{self.p.origin_x_m + r / 2}\n{top_y - r / 2}\n")
        meta = {"image": png.name, "resolution_m": r, "origin_m": [self.p.origin_x_m, self.p.origin_y_m],
                "size_cells": [self.nx, self.ny], "frame_id": frame_id, "frames": self.frames,
                "datum_lat_lon_deg": list(datum) if datum else None,
                "low_cover_cells": len(self.low_cover_cells()), "plant_gaps": len(self.plant_gaps())}
        yml = d / f"{basename}.yaml"
        yml.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in meta.items()))
        ltp = None
        if datum:
            from agricare.core.geodesy import LocalTangentPlane

            ltp = LocalTangentPlane(float(datum[0]), float(datum[1]))
        gaps = {(round(x, 6), round(y, 6)) for x, y, _ in self.plant_gaps()}
        csvp = d / f"{basename}.csv"
        iy, ix = np.nonzero(known)
        xs, ys = self.cell_centre(ix, iy)
        with csvp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["x_m", "y_m"] + (["lat_deg", "lon_deg"] if ltp else []) + ["cover_pct", "samples", "low",
                                                                                   "gap"])
            lat = lon = None
            if ltp is not None and len(xs):
                lat, lon = ltp.to_wgs84(xs, ys)
                lat, lon = np.atleast_1d(lat), np.atleast_1d(lon)
            for k in range(len(xs)):
                cov = float(c[iy[k], ix[k]])
                row = [f"{xs[k]:.3f}", f"{ys[k]:.3f}"]
                if lat is not None:
                    row += [f"{lat[k]:.8f}", f"{lon[k]:.8f}"]
                row += [f"{cov:.1f}", int(self.count[iy[k], ix[k]]), int(cov < self.p.low_cover_pct),
                        int((round(float(xs[k]), 6), round(float(ys[k]), 6)) in gaps)]
                w.writerow(row)
        return [str(png), str(pgw), str(yml), str(csvp)]


if __name__ == "__main__":  # pragma: no cover - demo
    import tempfile

    from agricare.core.perception.crop_rows import render_synthetic_rows

    cam = CameraGeometry(300, 300, 159.5, 119.5, 320, 240, height_m=0.8, pitch_rad=math.radians(45))
    gm = GrowthMap(GrowthMapParams(width_m=10, height_m=4, origin_x_m=0, origin_y_m=-2))
    for x in np.arange(0, 6, 0.2):
        gm.add_image(render_synthetic_rows(cam, 0.5, 0.0, 0.0, gap_frac=0.2, seed=int(x * 10)), cam, [x, 0, 0])
    print(gm.save(tempfile.mkdtemp()), len(gm.low_cover_cells()), len(gm.plant_gaps()))
