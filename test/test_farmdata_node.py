"""section_control_node writes the as-applied record (ISO-XML task log, Shapefile, GeoJSON) with its field record."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("shapefile", reason="pyshp not installed (requirements.txt)")


def test_section_node_writes_as_applied_record(rclpy_context, repo_root, tmp_path):
    from nav_msgs.msg import Odometry
    from rclpy.parameter import Parameter

    from agricare.core.farmdata.isoxml import read_timelog
    from agricare.core.geodesy import LocalTangentPlane
    from agricare.nodes.section_control_node import SectionControlNode
    from agricare.ros.convert import xyyaw_to_pose

    node = SectionControlNode(context=rclpy_context, parameter_overrides=[
        Parameter("field_file", value=str(repo_root / "config/fields/field_a.geojson")),
        Parameter("section_widths_m", value=[1.0, 1.0, 1.0]),
        Parameter("datum_lat_deg", value=36.105), Parameter("datum_lon_deg", value=140.095)])
    try:
        xs = np.arange(20.0, 40.0, 0.25)
        for x in xs:
            msg = Odometry()
            msg.pose.pose = xyyaw_to_pose(float(x), 30.0, 0.0)
            node._on_odom(msg)
        files = node.write_record(tmp_path)
    finally:
        node.destroy_node()
    names = {p.split("/")[-1] for p in files}
    assert {"TASKDATA.XML", "TLG00001.BIN", "as_applied.shp", "as_applied.geojson", "applied_area.shp"} <= names
    root = ET.parse(tmp_path / "TASKDATA" / "TASKDATA.XML").getroot()
    assert root.find("PFD/PLN").get("A") == "1" and root.find("TSK/TLG").get("A") == "TLG00001"
    tl = read_timelog(tmp_path / "TASKDATA")
    geo = LocalTangentPlane(36.105, 140.095)
    x, y = geo.to_map(tl["lat"], tl["lon"])
    assert np.all(np.abs(np.asarray(y) - 30.0) < 0.01)
    assert np.min(x) >= 20.0 - 0.01 and np.max(x) <= 40.0
    # sections on once the machine has moved into the field (condensed work state: 3 sections on)
    cws = tl["values"][:, tl["ddi"].index(0xA1)].astype(np.int64) & 0xFFFFFFFF
    assert np.any((cws & 0x3F) == 0x15)
