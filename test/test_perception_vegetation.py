"""Growth map: ground projection of vegetation, cover accumulation, gaps, georeferenced export."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from agricare.core.perception.crop_rows import CameraGeometry
from agricare.core.perception.vegetation import GrowthMap, GrowthMapParams, project_vegetation

# camera looking straight down from 1 m: 1 px = 1/200 m at the centre
DOWN = CameraGeometry(200.0, 200.0, 79.5, 59.5, 160, 120, height_m=1.0, pitch_rad=math.pi / 2, x_m=0.5)


def _top_down_image(green_box_m):
    """Soil image seen by DOWN, with a green patch covering ground box (xmin, xmax, ymin, ymax) in base_link."""
    img = np.full((120, 160, 3), (60, 85, 115), np.uint8)
    u, v = np.meshgrid(np.arange(160.0), np.arange(120.0))
    g = DOWN.pixels_to_ground(np.column_stack([u.ravel(), v.ravel()])).reshape(120, 160, 2)
    x0, x1, y0, y1 = green_box_m
    m = (g[..., 0] >= x0) & (g[..., 0] < x1) & (g[..., 1] >= y0) & (g[..., 1] < y1)
    img[m] = (40, 160, 60)
    return img


def test_projection_geometry_top_down():
    img = _top_down_image((0.5, 0.7, 0.0, 0.2))
    pts, veg = project_vegetation(img, DOWN, GrowthMapParams(sample_step_px=1))
    # footprint: 160x120 px at 200 px/m -> 0.8 m x 0.6 m centred under the camera (x = 0.5 m)
    assert pts[:, 0].min() == pytest.approx(0.5 - 0.3, abs=0.02)
    assert pts[:, 1].max() == pytest.approx(0.4, abs=0.02)
    green = pts[veg > 0.5]
    assert green[:, 0].min() == pytest.approx(0.5, abs=0.02) and green[:, 0].max() == pytest.approx(0.7, abs=0.02)
    assert green[:, 1].min() == pytest.approx(0.0, abs=0.02) and green[:, 1].max() == pytest.approx(0.2, abs=0.02)


def test_accumulate_with_pose_and_export(tmp_path):
    p = GrowthMapParams(resolution_m=0.1, width_m=4, height_m=2, origin_x_m=0, origin_y_m=-1, min_samples=3,
                        sample_step_px=1)
    gm = GrowthMap(p)
    img = _top_down_image((0.5, 0.7, 0.0, 0.2))
    # robot at (1, 0) facing +y (yaw 90 deg): base x -> map y, base y -> map -x
    gm.add_image(img, DOWN, [1.0, 0.0, math.pi / 2])
    cov = gm.cover_percent()
    occ = gm.to_occupancy()
    assert occ.dtype == np.int8 and occ.min() >= -1 and occ.max() <= 100
    # the green patch lands at map x in [0.8, 1.0], y in [0.5, 0.7]
    ix, iy = 8, 15  # cell (0.8..0.9, 0.5..0.6)
    assert cov[iy, ix] > 90
    assert cov[iy, 12] < 10  # x = 1.2: soil
    assert np.isnan(cov[0, 0])  # never seen
    files = gm.save(tmp_path, datum=(52.0, 5.0))
    assert {f.rsplit(".", 1)[1] for f in files} == {"png", "pgw", "yaml", "csv"}
    rows = list(csv.DictReader(open(tmp_path / "growth_map.csv")))
    assert len(rows) == int(np.isfinite(cov).sum())
    assert 51.99 < float(rows[0]["lat_deg"]) < 52.01
    pgw = (tmp_path / "growth_map.pgw").read_text().split()
    assert float(pgw[0]) == pytest.approx(0.1) and float(pgw[3]) == pytest.approx(-0.1)


def test_low_cover_and_plant_gaps():
    p = GrowthMapParams(resolution_m=1.0, width_m=5, height_m=5, origin_x_m=0, origin_y_m=0, min_samples=1)
    gm = GrowthMap(p)
    xs, ys = np.meshgrid(np.arange(5) + 0.5, np.arange(5) + 0.5)
    pts = np.column_stack([xs.ravel(), ys.ravel()])
    veg = np.ones(25)
    veg[12] = 0.0   # centre cell bare inside a full crop: a gap
    veg[0] = 0.0    # corner bare: low, but too few good neighbours? (3 neighbours, all good -> gap too)
    gm.add_points(np.repeat(pts, 4, axis=0), np.repeat(veg, 4))
    low = gm.low_cover_cells()
    assert sorted((x, y) for x, y, _ in low) == [(0.5, 0.5), (2.5, 2.5)]
    gaps = gm.plant_gaps()
    assert (2.5, 2.5, 0.0) in gaps
    assert gm.add_points([[100.0, 100.0], [np.nan, 1.0]], [1, 1]) == 0  # outside / invalid ignored


def test_bad_inputs():
    gm = GrowthMap(GrowthMapParams(width_m=2, height_m=2))
    with pytest.raises(ValueError):
        gm.add_image(np.zeros((120, 160), np.uint8), DOWN, [0, 0, 0])
    with pytest.raises(ValueError, match="pose_in_map"):
        gm.add_image(_top_down_image((0, 0, 0, 0)), DOWN, [0, np.nan, 0])
    with pytest.raises(ValueError, match="resolution_m"):
        GrowthMapParams(resolution_m=0)
