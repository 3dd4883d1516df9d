"""`agricare plan-coverage`: output format, PNG, one-line errors (no traceback)."""

import json

import pytest

from agricare.cli import main

ARGS = ["--width", "3", "--turn-radius", "4", "--headland", "9"]


def _run(capsys, argv):
    rc = main(["plan-coverage", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_plan_field_a_json_and_png(repo_root, tmp_path, capsys):
    out, png = tmp_path / "a.json", tmp_path / "a.png"
    rc, stdout, err = _run(capsys, [str(repo_root / "config/fields/field_a.geojson"), *ARGS, "--robot-width", "3",
                                    "--turn", "dubins", "--route", "optimal", "--objective", "swaths",
                                    "--json", str(out), "--png", str(png)])
    assert rc == 0, err
    d = json.loads(out.read_text())
    assert len(d["swaths"]) == 14
    assert all(len(p) == 4 for p in d["path"])
    L = d["length_m"]
    assert L["total"] == pytest.approx(L["swaths"] + L["turns"], abs=0.01)
    assert L["total"] <= 0.97 * 1480.4
    assert d["coverage_ratio"] >= 0.995 and 0 <= d["overlap_ratio"] < 0.01
    assert d["plan_time_ms"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "14 swaths" in stdout


def test_fixed_angle_and_pattern(repo_root, tmp_path, capsys):
    out = tmp_path / "b.json"
    rc, _, err = _run(capsys, [str(repo_root / "config/fields/field_a.geojson"), *ARGS, "--angle-deg", "90",
                               "--route", "snake", "--turn", "reeds_shepp", "--json", str(out)])
    assert rc == 0, err
    assert json.loads(out.read_text())["angle_deg"] == pytest.approx(90.0)


@pytest.mark.parametrize("content,extra,msg", [
    ('{"type":"Polygon","coordinates":[[[0,0],[60,60],[60,0],[0,60],[0,0]]],"properties":{"crs":"local"}}', [],
     "self-intersecting"),
    ('{"type":"Polygon","coordinates":[[[0,0],[15,0],[15,15],[0,15],[0,0]]],"properties":{"crs":"local"}}', [],
     "smaller than the headland"),
    ('{"type":"Polygon","coordinates":[[[0,0],[99,0],[99,99],[0,99],[0,0]]],"properties":{"crs":"EPSG:1"}}', [],
     "unknown CRS"),
    ("", [], "is empty"),
    ("{not json", [], "not valid JSON"),
    ('{"type":"Polygon","coordinates":[[[0,0],[99,0],[99,99],[0,99],[0,0]]],"properties":{"crs":"local"}}',
     ["--width", "0"], "--width"),
    ('{"type":"Polygon","coordinates":[[[0,0],[99,0],[99,99],[0,99],[0,0]]],"properties":{"crs":"local"}}',
     ["--max-reverse", "-1"], "--max-reverse must be >= 0"),
])
def test_bad_input_one_line_error(tmp_path, capsys, content, extra, msg):
    f = tmp_path / "f.geojson"
    f.write_text(content)
    argv = [str(f), *ARGS, "--json", str(tmp_path / "o.json"), *extra]
    rc, _, err = _run(capsys, argv)
    assert rc == 2
    assert msg in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file(tmp_path, capsys):
    rc, _, err = _run(capsys, [str(tmp_path / "nope.geojson"), *ARGS, "--json", str(tmp_path / "o.json")])
    assert rc == 2 and "not found" in err
