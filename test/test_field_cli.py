"""`agricare field import|show|plan|prescription|export` on the traced real fields; one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("shapefile", reason="pyshp not installed (requirements.txt)")
pytest.importorskip("lxml", reason="lxml not installed (requirements.txt)")

from agricare.cli import main  # noqa: E402


def _run(capsys, *argv):
    rc = main(["field", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_export_import_show_every_format(repo_root, tmp_path, capsys):
    src = repo_root / "config/fields/bruchwiese.geojson"
    for fmt, name in (("kml", "b.kml"), ("kmz", "b.kmz"), ("shp", "b.shp"), ("isoxml", "TASKDATA"),
                      ("geojson", "b.geojson")):
        rc, out, err = _run(capsys, "export", src, "--to", fmt, "--out", tmp_path / name)
        assert rc == 0, err
        rc, out, err = _run(capsys, "import", tmp_path / name, "--out", tmp_path / f"{fmt}.geojson")
        assert rc == 0, err
        assert "79 vertices, 3 obstacles/holes, 1 AB lines" in out, out
        doc = json.loads((tmp_path / f"{fmt}.geojson").read_text())
        assert [f["properties"]["kind"] for f in doc["features"]] == ["boundary"] + ["obstacle"] * 3 + ["guidance"]
    rc, out, err = _run(capsys, "show", tmp_path / "b.kmz", "--png", tmp_path / "b.png")
    assert rc == 0 and (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_plan_real_field_works_every_ring(repo_root, tmp_path, capsys):
    rc, out, err = _run(capsys, "plan", repo_root / "config/fields/hofacker.geojson", "--width", 3, "--turn-radius", 4,
                        "--headland", 9, "--json", tmp_path / "p.json", "--ab")
    assert rc == 2 and "no AB line" in err
    rc, out, err = _run(capsys, "plan", repo_root / "config/fields/hofacker.geojson", "--width", 3, "--turn-radius", 4,
                        "--headland", 9, "--json", tmp_path / "p.json")
    assert rc == 0, err
    # what is planned goes to stderr before the planning starts (stdout keeps the one result line)
    assert err.startswith("planning ") and "ha, 26 vertices" in err and "up to 30 m reverse" in err, err
    worked = float(out.split("field worked by the plan ")[1].split(" %")[0])
    assert worked >= 99.0, out
    assert "reverse 0.0 m" in out and "headland rings 3/3" in out and "warning" not in out
    plan = json.loads((tmp_path / "p.json").read_text())
    lon, lat = np.array(plan["path"])[:, 0], np.array(plan["path"])[:, 1]
    assert plan["crs"] == "EPSG:4326" and abs(lat.mean() - 52.2613) < 0.001 and abs(lon.mean() - 10.542) < 0.001


def test_prescription_from_soil_samples(repo_root, tmp_path, capsys):
    rc, out, err = _run(capsys, "prescription", repo_root / "config/fields/hofacker.geojson", "--samples",
                        repo_root / "config/fields/hofacker_soil.csv", "--value", "p_mgkg", "--rates", "180,150,120",
                        "--out", tmp_path / "rx")
    assert rc == 0, err
    doc = json.loads((tmp_path / "rx/prescription.geojson").read_text())
    rates = {f["properties"]["rate_kgha"] for f in doc["features"]}
    assert rates == {120.0, 150.0, 180.0}
    root = ET.parse(tmp_path / "rx/TASKDATA/TASKDATA.XML").getroot()
    grd = root.find("TSK/GRD")
    codes = np.frombuffer((tmp_path / "rx/TASKDATA/GRD00001.BIN").read_bytes(), np.uint8)
    assert len(codes) == int(grd.get("E")) * int(grd.get("F")) == int(grd.get("H"))
    tzn = {int(t.get("A")): int(t.find("PDV").get("B")) for t in root.find("TSK").findall("TZN")}
    assert tzn == {0: 0, 1: 12000, 2: 15000, 3: 18000}
    # about a third of the field's cells per zone (quantile zones)
    n = np.bincount(codes, minlength=4)[1:]
    assert n.min() > 0.25 * n.sum()
    rc, out, err = _run(capsys, "prescription", repo_root / "config/fields/hofacker.geojson", "--samples",
                        repo_root / "config/fields/hofacker_soil.csv", "--value", "k_mgkg", "--rates", "1,2",
                        "--out", tmp_path / "rx2")
    assert rc == 2 and "no column 'k_mgkg'" in err


def test_broken_field_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.kml"
    bad.write_text("<kml><Document><Placemark>")
    rc, out, err = _run(capsys, "show", bad, "--png", tmp_path / "x.png")
    assert rc == 2 and err.count("\n") == 1 and "bad.kml: not valid XML" in err


def test_field_too_large_for_one_plan_is_a_clear_error():
    """A 6 x 6 km field with a 3 m implement needs 2000 swaths across (the route's cost matrix grows with their
    square): refused at once, before any planning."""
    import time

    from agricare.core.planning.coverage import MAX_SWATHS, CoverageParams, PlanningError, plan_coverage
    from shapely.geometry import box

    assert 6000 / 3 > MAX_SWATHS
    t0 = time.perf_counter()
    with pytest.raises(PlanningError, match="too large for one plan: about 2000 swaths"):
        plan_coverage(box(0, 0, 6000, 6000), CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0))
    assert time.perf_counter() - t0 < 5.0


def test_taskdata_with_several_partfields_names_them_and_picks_by_name(repo_root, tmp_path, capsys):
    """A farm's TaskData holds all its fields: import says how many and which it read, --name picks another, and an
    unknown name lists the ones there are."""
    from agricare.core.farmdata import load_field_data
    from agricare.core.farmdata.isoxml import write_taskdata

    a = load_field_data(repo_root / "config/fields/hofacker.geojson")
    b = load_field_data(repo_root / "config/fields/bruchwiese.geojson")
    write_taskdata(tmp_path / "farm", [a, b])
    rc, out, err = _run(capsys, "import", tmp_path / "farm", "--out", tmp_path / "a.geojson")
    assert rc == 0 and f"2 partfields ('{a.name}', '{b.name}'); reading the first" in err, err
    assert "26 vertices" in out, out
    rc, out, err = _run(capsys, "import", tmp_path / "farm", "--name", b.name, "--out", tmp_path / "b.geojson")
    assert rc == 0 and "79 vertices, 3 obstacles/holes" in out and "partfields" not in err, (out, err)
    rc, out, err = _run(capsys, "import", tmp_path / "farm", "--name", "Nowhere", "--out", tmp_path / "c.geojson")
    assert rc != 0 and f"named 'Nowhere' (there are: '{a.name}', '{b.name}')" in err, err
    rc, out, err = _run(capsys, "import", repo_root / "config/fields/hofacker.geojson", "--name", "x",
                        "--out", tmp_path / "d.geojson")
    assert rc != 0 and "picks a partfield of ISO-XML TaskData" in err, err


def test_plan_warns_when_turns_reverse_past_the_limit(tmp_path, capsys):
    """--max-reverse bounds the clean-up; with a headland too narrow to turn forwards the swath-end turns reverse
    (a 100 x 30 m paddy, 3 m headland: 101 m in the turns) and the command says so instead of printing the figure
    alone. With a 9 m headland the same field reverses within the limit and says nothing."""
    doc = {"type": "FeatureCollection", "properties": {"crs": "local"}, "features": [{"type": "Feature",
           "properties": {}, "geometry": {"type": "Polygon",
                                          "coordinates": [[[0, 0], [100, 0], [100, 30], [0, 30], [0, 0]]]}}]}
    src = tmp_path / "paddy.geojson"
    src.write_text(json.dumps(doc))
    rc, out, err = _run(capsys, "plan", src, "--width", 3, "--turn-radius", 4, "--headland", 3, "--json",
                        tmp_path / "p.json")
    assert rc == 0, err
    line = [x for x in out.splitlines() if "more than --max-reverse 30 m" in x]
    assert len(line) == 1 and "in the turns at the swath ends" in line[0], out
    turns = float(line[0].split("; ")[1].split(" m of it")[0])
    assert turns > 60.0, line
    rc, out, err = _run(capsys, "plan", src, "--width", 3, "--turn-radius", 4, "--headland", 9, "--json",
                        tmp_path / "q.json")
    assert rc == 0 and "more than --max-reverse" not in out, out
