"""CLI robustness: each bad input gets one clear line naming the option or field, quickly (no allocation)."""

from __future__ import annotations

import json
import time

import pytest

from agricare.cli import main


def _one_line(capsys, argv, must):
    t0 = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    for m in must:
        assert m in lines[0], lines[0]
    assert elapsed < 20.0   # refused up front, not after a long run
    return lines[0]


def _metre_field(tmp_path, crs=None):
    props = {} if crs is None else {"crs": crs}
    doc = {"type": "Feature", "properties": props, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 80], [0, 80], [0, 0]]]}}
    p = tmp_path / "field_m.geojson"
    p.write_text(json.dumps(doc))
    return p


def test_plan_coverage_metre_file_without_crs_is_refused_at_once(tmp_path, capsys):
    f = _metre_field(tmp_path)
    line = _one_line(capsys, ["plan-coverage", str(f), "--width", "3", "--turn-radius", "4", "--headland", "9",
                              "--json", str(tmp_path / "o.json")], ["degrees", "crs"])
    assert "metres" in line


def test_plan_coverage_degrees_out_of_range(tmp_path, capsys):
    doc = {"type": "Feature", "properties": {"crs": "EPSG:4326"}, "geometry": {
        "type": "Polygon", "coordinates": [[[10, 95], [10.001, 95], [10.001, 95.001], [10, 95.001], [10, 95]]]}}
    f = tmp_path / "f.geojson"
    f.write_text(json.dumps(doc))
    _one_line(capsys, ["plan-coverage", str(f), "--width", "3", "--turn-radius", "4", "--headland", "9",
                       "--json", str(tmp_path / "o.json")], ["not lon/lat degrees"])


def test_plan_coverage_huge_projected_field_is_bounded_before_planning(tmp_path, capsys):
    doc = {"type": "Feature", "properties": {"crs": "local"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [900000, 0], [900000, 800000], [0, 800000], [0, 0]]]}}
    f = tmp_path / "f.geojson"
    f.write_text(json.dumps(doc))
    _one_line(capsys, ["plan-coverage", str(f), "--width", "3", "--turn-radius", "4", "--headland", "9",
                       "--json", str(tmp_path / "o.json")], ["FIELD", "km across"])


def test_plan_coverage_negative_headland_names_the_option(tmp_path, capsys):
    f = _metre_field(tmp_path, crs="local")
    line = _one_line(capsys, ["plan-coverage", str(f), "--width", "3", "--turn-radius", "4", "--headland", "-1",
                              "--json", str(tmp_path / "o.json")], ["--headland"])
    assert "headland_--" not in line and "_m" not in line


DAY = {"speed_mps": 1.4,
       "vehicles": [{"id": "s1", "depot": [0, 0], "seats": 2, "available": [0, 2000]}],
       "requests": [{"id": "r1", "pickup": [10, 0], "dropoff": [20, 0], "pickup_window": [0, 600],
                     "dropoff_by": 1500}]}


@pytest.mark.parametrize("edit,must", [
    (lambda d: d["requests"][0].update(dropoff_by=1e300), ["requests[0].dropoff_by"]),
    (lambda d: d["vehicles"][0].update(seats="two"), ["vehicles[0].seats", "'two'"]),
    (lambda d: d["requests"][0].update(pickup=[float("nan"), 0.0]), ["requests[0].pickup[0]"]),
    (lambda d: d.update(speed_mps=-1), ["speed_mps"]),
])
def test_dispatch_bad_fields_are_named(tmp_path, capsys, edit, must):
    import copy

    d = copy.deepcopy(DAY)
    edit(d)
    f = tmp_path / "day.json"   # JSON is YAML: 1e300 stays a number
    f.write_text(json.dumps(d).replace("NaN", ".nan"))
    _one_line(capsys, ["dispatch", str(f), "--json", str(tmp_path / "o.json")], must)


@pytest.mark.parametrize("argv,must", [
    (["emulate", "gnss", "--rate-hz", "1e9", "--duration", "1"], ["--rate-hz"]),
    (["emulate", "gnss", "--rate-hz", "nan"], ["--rate-hz"]),
    (["emulate", "ascii", "--duration", "nan"], ["--duration"]),
])
def test_emulate_bad_numbers_are_refused_before_starting(capsys, argv, must):
    _one_line(capsys, argv, must)


def test_run_foxglove_port_out_of_range(capsys):
    _one_line(capsys, ["run", "farm_small.yaml", "--foxglove", "70000"], ["--foxglove"])
