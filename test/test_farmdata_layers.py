"""Layers: soil samples -> IDW grid -> zones -> prescription; yield monitor simulation and cleaning; the row
robot's growth map as a layer."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from agricare.core.farmdata import FarmDataError
from agricare.core.farmdata.layers import (Grid, YieldMonitorParams, clean_yield, idw_grid, prescription_from_zones,
                                           read_growth_csv, simulate_harvest, zones_from_grid)

FIELD = box(0, 0, 120, 60)


def test_idw_passes_through_samples_and_zones_split_by_quantile():
    rng = np.random.default_rng(1)
    xy = np.column_stack([rng.uniform(2, 118, 30), rng.uniform(2, 58, 30)])
    val = 10 + 0.5 * xy[:, 0]
    g = idw_grid(xy, val, FIELD, 2.0)
    at = g.value_at(xy)
    assert np.all(np.isfinite(g.values)) and g.values.shape == (30, 60)
    assert np.nanmin(g.values) >= val.min() - 1e-9 and np.nanmax(g.values) <= val.max() + 1e-9
    assert np.abs(at - val).max() < 2.0             # the cell holding a sample is close to it (slope 0.5 / m)
    # the east half is richer: its mean is above the west half's
    assert np.nanmean(g.values[:, 30:]) > np.nanmean(g.values[:, :30]) + 10
    z = zones_from_grid(g, 3)
    counts = np.bincount(z.values.ravel().astype(int))
    assert len(counts) == 3 and counts.min() >= 0.3 * counts.sum()
    rx = prescription_from_zones(z, [200.0, 150.0, 100.0])
    assert np.nanmean(rx.values[:, :10]) == 200.0 and np.nanmean(rx.values[:, -10:]) == 100.0
    with pytest.raises(FarmDataError):
        idw_grid(np.zeros((0, 2)), [], FIELD, 2.0)


def test_yield_cleaning_recovers_the_true_map_better_than_raw():
    # true yield: 6 t/ha in the west, 9 t/ha in the east; a combine with a 6 m header harvests 10 passes
    truth = Grid("yield", 0, 0, 1.0, np.where(np.arange(120)[None, :] < 60, 6.0, 9.0) * np.ones((60, 1)))
    xy, work = [], []
    for k in range(10):
        y = 3.0 + 6.0 * k
        xs = np.arange(0.0, 120.01, 0.5) if k % 2 == 0 else np.arange(120.0, -0.01, -0.5)
        xy += [[x, y] for x in xs]
        work += [True] * len(xs)
        xy += [[xs[-1], y + 3.0]]                         # the turn: not cutting
        work += [False]
    p = YieldMonitorParams(header_width_m=6.0, flow_delay_s=12.0, sensor_noise=0.05, fill_time_s=6.0, seed=4)
    raw = simulate_harvest(np.asarray(xy), np.asarray(work), 2.0, truth, p)
    cxy, cy, removed = clean_yield(raw, p)
    assert removed["pass_ends"] > 0 and len(cy) > 0.5 * np.count_nonzero(raw["pass_id"] >= 0)
    err_clean = np.abs(cy - truth.value_at(cxy))
    cutting = raw["pass_id"] >= 0
    raw_y = raw["flow_kgps"][cutting] / (2.0 * 6.0) * 10.0            # uncleaned, unshifted
    err_raw = np.abs(raw_y - truth.value_at(np.column_stack([raw["x"], raw["y"]])[cutting]))
    assert np.median(err_clean) < 0.5 and np.mean(err_clean) < 0.5 * np.nanmean(err_raw)
    assert np.mean(err_clean <= 0.1 * truth.value_at(cxy)) >= 0.85


def test_growth_map_csv_of_the_row_robot(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("x_m,y_m,lat_deg,lon_deg,cover_pct,samples,low,gap\n1.0,2.0,36.1,140.1,55.0,3,0,0\n"
                 "1.5,2.0,36.1,140.1,12.5,2,1,0\n")
    xy, v = read_growth_csv(p)
    assert xy.tolist() == [[1.0, 2.0], [1.5, 2.0]] and v.tolist() == [55.0, 12.5]
    with pytest.raises(FarmDataError, match="ndvi"):
        read_growth_csv(p, column="ndvi")
