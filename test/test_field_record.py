"""Field record: applied-area polygons, 1 m cells and the section log from a known raster."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from agricare.core.missions.field_record import aggregate, applied_polygons, write_field_record


def test_polygons_and_cells_of_two_patches(tmp_path):
    res = 0.2
    grid = np.zeros((50, 100), bool)          # 20 m x 10 m raster from (10, 5)
    grid[5:15, 10:60] = True                  # 10 m x 2 m patch
    grid[30:45, 70:90] = True                 # 4 m x 3 m patch
    rings = applied_polygons(grid, 10.0, 5.0, res)
    assert len(rings) == 2
    from shapely.geometry import Polygon

    areas = sorted(Polygon(r).area for r in rings)
    # contours run through the boundary cell centres: one cell less per side
    assert areas[0] == pytest.approx(3.8 * 2.8, rel=0.02) and areas[1] == pytest.approx(9.8 * 1.8, rel=0.02)
    agg = aggregate(grid, res, 1.0)
    assert agg.shape == (10, 20) and agg.sum() * 1.0 == pytest.approx(grid.sum() * res * res)
    log = [(0.0, 10.0, 6.0, 0.0, [0, 0, 0]), (1.5, 12.0, 6.0, 0.0, [1, 1, 0])]
    files = write_field_record(tmp_path, grid, 10.0, 5.0, res, log, [[10, 5], [30, 5], [30, 15], [10, 15]], 3)
    assert {p.split("/")[-1] for p in files} == {"applied_area.geojson", "applied_cells.csv", "sections_log.csv",
                                                  "applied_area.png"}
    doc = json.loads((tmp_path / "applied_area.geojson").read_text())
    assert doc["properties"]["applied_area_m2"] == pytest.approx(32.0, abs=0.1)
    assert len(doc["features"]) == 2
    rows = list(csv.DictReader(open(tmp_path / "sections_log.csv")))
    assert rows[1]["section_0"] == "1" and rows[1]["section_2"] == "0" and float(rows[1]["t_s"]) == 1.5
    cells = list(csv.DictReader(open(tmp_path / "applied_cells.csv")))
    assert sum(float(c["applied_fraction"]) for c in cells) == pytest.approx(32.0)


def test_empty_record(tmp_path):
    files = write_field_record(tmp_path, np.zeros((5, 5), bool), 0.0, 0.0, 0.2, [], None, 2)
    assert json.loads((tmp_path / "applied_area.geojson").read_text())["features"] == []
    assert len(files) == 4
