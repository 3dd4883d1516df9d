"""Gazebo assets and launch files, checked structurally (gz sim and launch_ros do not install here)."""

from __future__ import annotations

import ast
import importlib.util
import xml.etree.ElementTree as ET

import pytest
import yaml

from agricare.bringup.contract import contract_type


def _gen(repo_root):
    spec = importlib.util.spec_from_file_location("make_gazebo", repo_root / "tools" / "make_gazebo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("world", ["farm", "care"])
def test_world_sdf_parses_and_includes_existing_models(repo_root, world):
    root = ET.parse(repo_root / "worlds" / f"{world}.sdf").getroot()
    assert root.tag == "sdf" and root.get("version")
    w = root.find("world")
    assert w is not None
    scn = yaml.safe_load((repo_root / "config" / "scenarios" / f"{world}.yaml").read_text())
    assert w.get("name") == scn["world"]["name"]
    includes = {inc.findtext("name"): inc.findtext("uri") for inc in w.findall("include")}
    signs = {f"boarding_sign_{_gen(repo_root).BoardingSigns(**scn['world']['boarding_signs']).id_base + i}"
             for i, p in enumerate(scn["world"].get("places") or []) if p.get("boarding")} \
        if scn["world"].get("boarding_signs") else set()
    assert set(includes) == {r["name"] for r in scn["robots"]} | signs
    assert (world == "care") == bool(signs)   # the care town has an ArUco sign at each boarding point
    for uri in includes.values():
        model = uri.removeprefix("model://")
        sdf = repo_root / "worlds" / "models" / model / "model.sdf"
        assert sdf.is_file() and (sdf.parent / "model.config").is_file()
        ET.parse(sdf)
    lat = float(w.find("spherical_coordinates").findtext("latitude_deg"))
    assert lat == pytest.approx(scn["world"]["datum"]["lat_deg"])


@pytest.mark.parametrize("world", ["farm", "care"])
def test_generated_files_up_to_date(repo_root, world):
    gen = _gen(repo_root)
    scn = yaml.safe_load((repo_root / "config" / "scenarios" / f"{world}.yaml").read_text())
    assert (repo_root / "worlds" / f"{world}.sdf").read_text() == gen.world_sdf(scn), \
        "worlds/ is stale: run python tools/make_gazebo.py"
    assert (repo_root / "worlds" / f"{world}_bridge.yaml").read_text() == gen.bridge_yaml(scn)
    for name, fn in gen.MODELS.items():
        assert (repo_root / "worlds" / "models" / name / "model.sdf").read_text() == fn()
    if scn["world"].get("boarding_signs"):
        layout = gen.BoardingSigns(**scn["world"]["boarding_signs"])
        for marker_id, *_ in gen.boarding_signs(scn["world"]):
            png, full = gen.sign_texture(layout, marker_id)
            d = repo_root / "worlds" / "models" / f"boarding_sign_{marker_id}"
            assert (d / "model.sdf").read_text() == gen.sign_model(marker_id, full, layout.height_m)
            assert (d / "materials" / "textures" / f"aruco_{marker_id}.png").read_bytes() == png


def test_gazebo_signs_stand_where_the_simulator_draws_them(repo_root):
    """Each sign of the Gazebo care world has the simulator's marker id, position and facing, and its texture
    decodes back to that marker with OpenCV's ArUco detector."""
    import math

    import cv2
    import numpy as np

    from agricare.core.sim.scenarios import load_scenario
    from agricare.core.sim.world import World

    world = World(load_scenario(repo_root / "config" / "scenarios" / "care.yaml"))
    sim = {mid: (centre, corners) for mid, centre, _tex, corners in world.signs.signs}
    root = ET.parse(repo_root / "worlds" / "care.sdf").getroot()
    placed = {}
    for inc in root.find("world").findall("include"):
        if inc.findtext("name").startswith("boarding_sign_"):
            placed[int(inc.findtext("name").rsplit("_", 1)[1])] = [float(v) for v in inc.findtext("pose").split()]
    assert placed and set(placed) == set(sim)
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50))
    for mid, (x, y, z, _r, _p, yaw) in placed.items():
        centre, corners = sim[mid]
        assert np.allclose([x, y, z], centre, atol=1e-3)
        into = np.cross(corners[1] - corners[0], corners[3] - corners[0])   # into the face, in the map
        assert math.cos(yaw) * into[0] + math.sin(yaw) * into[1] < -0.99 * np.linalg.norm(into[:2])
        img = cv2.imread(str(repo_root / "worlds" / "models" / f"boarding_sign_{mid}" / "materials" / "textures" /
                             f"aruco_{mid}.png"), cv2.IMREAD_GRAYSCALE)
        _c, ids, _r = det.detectMarkers(img)
        assert ids is not None and ids.ravel().tolist() == [mid]


@pytest.mark.parametrize("world", ["farm", "care"])
def test_bridge_topics_are_in_the_contract(repo_root, world):
    entries = yaml.safe_load((repo_root / "worlds" / f"{world}_bridge.yaml").read_text())
    assert entries
    seen = set()
    for e in entries:
        assert e["direction"] in ("GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL")
        expected = contract_type(e["ros_topic_name"])
        assert expected is not None, f"{e['ros_topic_name']} is not in the topic contract"
        assert e["ros_type_name"] == expected, e["ros_topic_name"]
        assert e["gz_type_name"].startswith("gz.msgs.")
        assert e["ros_topic_name"] not in seen
        seen.add(e["ros_topic_name"])
    assert "/clock" in seen
    scn = yaml.safe_load((repo_root / "config" / "scenarios" / f"{world}.yaml").read_text())
    for r in scn["robots"]:
        for t in ("cmd_vel", "odom", "imu/data", "gnss/fix", "scan", "tf"):
            assert f"/{r['name']}/{t}" in seen


def test_models_have_drive_and_sensors(repo_root):
    for name, drive in (("tractor", "AckermannSteering"), ("row_robot", "DiffDrive"), ("care_shuttle", "DiffDrive")):
        root = ET.parse(repo_root / "worlds" / "models" / name / "model.sdf").getroot()
        plugins = [p.get("name") for p in root.iter("plugin")]
        assert any(p.endswith(drive) for p in plugins)
        sensors = {s.get("type") for s in root.iter("sensor")}
        assert {"gpu_lidar", "imu", "navsat"} <= sensors
        joints = {j.get("name") for j in root.iter("joint")}
        for j in root.iter("plugin"):
            for tag in ("left_joint", "right_joint", "left_steering_joint", "right_steering_joint"):
                if j.find(tag) is not None:
                    assert j.findtext(tag) in joints


LAUNCH_FILES = ["farm_sim", "care_sim", "robot", "gazebo_farm", "gazebo_care"]


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_files_reference_existing_files(repo_root, name):
    path = repo_root / "launch" / f"{name}.launch.py"
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    if "WORLD" in consts:
        assert (repo_root / "worlds" / consts["WORLD"]).is_file()
        assert (repo_root / "worlds" / consts["BRIDGE"]).is_file()
    found = 0
    for call in ast.walk(tree):
        name = getattr(call.func, "id", "") if isinstance(call, ast.Call) else ""
        if name in ("common_arguments", "gazebo_launch"):
            arg = call.args[-1] if name == "gazebo_launch" else call.args[0]
            scenario = arg.value if isinstance(arg, ast.Constant) else consts[arg.id]
            assert (repo_root / "config" / "scenarios" / scenario).is_file(), scenario
            found += 1
            if name == "gazebo_launch":
                world = call.args[0].value
                assert (repo_root / "worlds" / f"{world}.sdf").is_file()
                assert (repo_root / "worlds" / f"{world}_bridge.yaml").is_file()
    assert found == 1


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_files_import_with_launch_ros(repo_root, name):
    pytest.importorskip("launch_ros", reason="launch_ros is not installable from pip; runs on ROS 2 installs")
    spec = importlib.util.spec_from_file_location(name, repo_root / "launch" / f"{name}.launch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from launch import LaunchDescription
    ld = mod.generate_launch_description()
    assert isinstance(ld, LaunchDescription) and ld.entities, name   # a description that launches something
