"""Scouting mission core: row counting from follower states, save hand-shake, record files."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from agricare.core.missions.scouting import (
    DONE,
    FAILED,
    RUNNING,
    SAVING,
    ScoutingMission,
    ScoutingParams,
    read_growth_csv,
    select_cells,
    write_record,
)


def drive_row(m, t, x0, x1, y, dt=0.1, v=1.0):
    """Feed poses along a row from x0 to x1 (either direction) at v m/s; returns the end time."""
    n = int(abs(x1 - x0) / (v * dt))
    for i in range(n + 1):
        m.on_pose(t, (x0 + (x1 - x0) * i / n, y))
        t += dt
    return t


def run_rows(m, n_rows, length=10.0, spacing=0.75):
    t = 0.0
    m.on_follower_state(t, "following")
    for k in range(n_rows):
        a, b = (0.0, length) if k % 2 == 0 else (length, 0.0)
        t = drive_row(m, t, a, b, k * spacing)
        last = k == n_rows - 1
        m.on_follower_state(t, "done" if last else "end_of_row")
        if not last:
            m.on_follower_state(t + 1, "turning")
            m.on_follower_state(t + 8, "following")
            t += 8
            m.on_pose(t, (b, (k + 1) * spacing))
    return t


def test_params_validation_names_field():
    with pytest.raises(ValueError, match="rows"):
        ScoutingParams(rows=0)
    with pytest.raises(ValueError, match="min_row_length_m"):
        ScoutingParams(min_row_length_m=float("nan"))
    with pytest.raises(ValueError, match="save_timeout_s"):
        ScoutingParams(save_timeout_s=0.0)


def test_counts_rows_and_saves_then_done():
    m = ScoutingMission(ScoutingParams(rows=3, min_row_length_m=5.0))
    t = run_rows(m, 3)
    assert m.rows_done == 3
    assert m.state == RUNNING
    assert m.update(t) == "save"
    assert m.state == SAVING
    assert m.update(t + 0.1) == ""  # asked once only
    cells = [{"kind": "gap", "x_m": 5.0, "y_m": 0.3, "cover_pct": 4.0},
             {"kind": "low_cover", "x_m": 5.0, "y_m": 9.0, "cover_pct": 2.0}]  # far from the track
    m.on_saved(t + 0.5, True, "ok", ["/tmp/x.csv"], cells)
    assert m.state == DONE and m.finished and m.progress() == 1.0
    d = m.detail()
    assert d["rows_done"] == 3 and d["plant_gaps"] == 1 and d["low_cover_cells"] == 1
    assert all(length >= 9.0 for length in d["row_lengths_m"])


def test_short_creep_after_turn_is_not_a_row():
    m = ScoutingMission(ScoutingParams(rows=2, min_row_length_m=5.0))
    m.on_follower_state(0.0, "following")
    t = drive_row(m, 0.0, 0.0, 10.0, 0.0)
    m.on_follower_state(t, "end_of_row")
    m.on_follower_state(t + 1, "turning")
    m.on_follower_state(t + 5, "following")
    t = drive_row(m, t + 5, 10.0, 9.0, 0.75)  # crept 1 m, rows not found
    m.on_follower_state(t, "done")
    assert m.rows_done == 1
    assert m.update(t) == "save"
    m.on_saved(t, True, "ok", [])
    assert m.state == FAILED
    assert "1 of 2" in m.reason


def test_follower_not_reporting_done_times_out_to_done():
    m = ScoutingMission(ScoutingParams(rows=1, stop_timeout_s=3.0))
    m.on_follower_state(0.0, "following")
    t = drive_row(m, 0.0, 0.0, 10.0, 0.0)
    m.on_follower_state(t, "end_of_row")
    assert m.update(t + 1.0) == ""
    assert m.update(t + 3.5) == "save"
    m.on_saved(t + 4.0, True, "ok", [])
    assert m.state == DONE


def test_save_failure_and_timeout_fail_the_mission():
    m = ScoutingMission(ScoutingParams(rows=1))
    t = run_rows(m, 1)
    assert m.update(t) == "save"
    m.on_saved(t, False, "disk full", [])
    assert m.state == FAILED and "disk full" in m.reason
    m2 = ScoutingMission(ScoutingParams(rows=1, save_timeout_s=2.0))
    t = run_rows(m2, 1)
    assert m2.update(t) == "save"
    m2.update(t + 2.5)
    assert m2.state == FAILED and "timed out" in m2.reason


def test_overall_timeout_fails():
    m = ScoutingMission(ScoutingParams(rows=4, max_duration_s=20.0))
    m.on_follower_state(0.0, "following")
    m.on_pose(0.0, (0.0, 0.0))
    assert m.update(10.0) == ""
    assert m.update(21.0) == "save"
    m.on_saved(21.0, True, "ok", [])
    assert m.state == FAILED and "timeout" in m.reason


def test_select_cells_by_distance_to_track():
    track = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 1.0], [0.0, 1.0]])
    cells = [{"kind": "gap", "x_m": x, "y_m": y, "cover_pct": 0.0} for x, y in
             [(5.0, 0.4), (5.0, -0.9), (5.0, -1.5), (11.5, 0.5), (5.0, 3.0)]]
    got = {(c["x_m"], c["y_m"]) for c in select_cells(cells, track, 1.0)}
    assert got == {(5.0, 0.4), (5.0, -0.9)}
    assert len(select_cells(cells, np.zeros((0, 2)), 1.0)) == len(cells)


def test_read_growth_csv_and_write_record(tmp_path):
    p = tmp_path / "growth_map.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x_m", "y_m", "lat_deg", "lon_deg", "cover_pct", "samples", "low", "gap"])
        w.writerow(["1.000", "0.000", "36.1", "140.1", "50.0", 9, 0, 0])
        w.writerow(["2.000", "0.000", "36.1", "140.1001", "5.0", 9, 1, 1])
        w.writerow(["3.000", "0.000", "36.1", "140.1002", "8.0", 9, 1, 0])
    cells = read_growth_csv(p)
    assert [c["kind"] for c in cells] == ["gap", "low_cover"]
    assert cells[0]["lon_deg"] == pytest.approx(140.1001)
    files = write_record(tmp_path / "rec", [[0, 0], [4, 0]], cells, {"rows_done": 2, "state": "done"})
    names = sorted(f.rsplit("/", 1)[1] for f in files)
    assert names == ["scouting_cells.csv", "scouting_record.geojson", "scouting_record.json", "scouting_record.png"]
    gj = json.loads((tmp_path / "rec" / "scouting_record.geojson").read_text())
    kinds = [f["properties"]["kind"] for f in gj["features"]]
    assert kinds == ["track", "gap", "low_cover"]
    assert gj["features"][1]["geometry"]["coordinates"] == [pytest.approx(140.1001), pytest.approx(36.1)]
    img = cv2.imread(str(tmp_path / "rec" / "scouting_record.png"))
    assert img is not None and img.shape[0] > 10
    rows = list(csv.DictReader((tmp_path / "rec" / "scouting_cells.csv").open()))
    assert len(rows) == 2 and rows[0]["kind"] == "gap"
