"""Sensor mounts come from the URDF, one source of truth.

- ``core/mounts.py`` -> ``tools/make_urdf.py`` -> ``urdf/*.urdf``, and the simulator places its sensors from the
  same numbers: every shipped scenario's simulated laser, GNSS antenna and camera sit where the URDF says.
- Every node that uses a mount (safety supervisor, obstacle tracker, map localiser, EKF, crop rows, growth map)
  takes it from ``robot_description`` published by robot_description_node, and a parameter set to another value
  overrides it with a warning.
"""

from __future__ import annotations

import math
import pathlib

import pytest

from agricare.core.description import parse_urdf, sensor_mounts
from agricare.core.sim.scenarios import default_sensors, load_scenario

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "config" / "scenarios").glob("*.yaml"))


def _urdf_mounts(robot_type):
    return sensor_mounts(parse_urdf((ROOT / "urdf" / f"{robot_type}.urdf").read_text()))


def _sim_mounts(sensors) -> dict:
    out = {}
    if "scan" in sensors:
        s = sensors["scan"]
        out["laser"] = (s.mount_x_m, s.mount_y_m, s.mount_yaw_rad)
    if "scan_rear" in sensors:
        s = sensors["scan_rear"]
        out["laser_rear"] = (s.mount_x_m, s.mount_y_m, s.mount_yaw_rad)
    if "gnss" in sensors:
        g = sensors["gnss"]
        out["gnss_xy"] = (g.antenna_x_m, g.antenna_y_m)
        out["gnss_height"] = g.antenna_height_m
    if "camera" in sensors:
        c = sensors["camera"]
        out["camera"] = (c.mount_x_m, c.mount_y_m, c.mount_height_m, c.pitch_rad)
    return out


def _check(robot_type, sensors):
    urdf = _urdf_mounts(robot_type)
    model = parse_urdf((ROOT / "urdf" / f"{robot_type}.urdf").read_text())
    ground = 0.0
    if "base_footprint" in model.links:
        from agricare.core.description import frame_pose
        ground = float(frame_pose(model, "base_footprint")[0][2])
    sim = _sim_mounts(sensors)
    assert sim, robot_type
    for key, value in sim.items():
        if key == "gnss_xy":
            want = urdf["gnss"][:2]
        elif key == "gnss_height":
            want, value = (urdf["gnss"][2] - ground,), (value,)
        else:
            want = urdf[key]
        assert value == pytest.approx(want, abs=1e-5), (robot_type, key, value, want)


@pytest.mark.parametrize("robot_type", ["tractor", "row_robot", "care_shuttle"])
def test_simulator_default_mounts_equal_the_urdf(robot_type):
    sensors = default_sensors(robot_type)
    sensors["camera"] = sensors.get("camera")
    _check(robot_type, {k: v for k, v in sensors.items() if v is not None})


def test_urdf_and_simulator_agree_where_they_disagreed_before():
    # the URDFs said shuttle laser 0.95 m and tractor antenna 0.3 m; the simulator drove with 2.0 m and 1.0 m
    assert _urdf_mounts("care_shuttle")["laser"][0] == pytest.approx(2.0)
    assert _urdf_mounts("tractor")["gnss"][:2] == pytest.approx((1.0, 0.0))


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.name.startswith("robot_")], ids=lambda p: p.name)
def test_every_shipped_scenario_places_sensors_as_the_urdf(scenario):
    spec = load_scenario(scenario)
    assert spec.robots
    for robot in spec.robots:
        _check(robot.type, robot.sensors)


def test_nodes_using_a_mount_have_no_mount_parameter_in_shipped_configs():
    mount_params = ("scan_mount_xyyaw", "laser_x_m", "laser_pose_in_base", "gnss_antenna_offset_m", "camera_x_m",
                    "camera_height_m", "camera_pitch_rad")
    offenders = []
    for f in sorted((ROOT / "config").rglob("*.yaml")):
        text = f.read_text()
        offenders += [f"{f.relative_to(ROOT)}: {p}" for p in mount_params if f"{p}:" in text]
    assert not offenders, offenders


# ------------------------------------------------------------------------------------------------ nodes

def _nodes(ctx, store_dir, overrides=None):
    from rclpy.parameter import Parameter

    from agricare.nodes.crop_row_node import CropRowNode
    from agricare.nodes.ekf_node import EkfNode
    from agricare.nodes.growth_map_node import GrowthMapNode
    from agricare.nodes.map_localizer_node import MapLocalizerNode
    from agricare.nodes.obstacle_tracker_node import ObstacleTrackerNode
    from agricare.nodes.safety_supervisor_node import SafetySupervisorNode

    overrides = overrides or {}

    def make(cls, attr, extra=()):
        params = [Parameter(k, value=v) for k, v in overrides.get(cls.__name__, {}).items()] + list(extra)
        node = cls(context=ctx, parameter_overrides=params)
        return node, getattr(node, attr)

    mp = ROOT / "config" / "maps" / "care_town.yaml"
    return {
        "safety": make(SafetySupervisorNode, "scan_mount", [Parameter(
            "command_replay_file", value=str(pathlib.Path(store_dir) / "c.json"))]),
        "tracker": make(ObstacleTrackerNode, "laser_mount"),
        "localizer": make(MapLocalizerNode, "laser_mount", [Parameter("map_yaml", value=str(mp)),
                                                             Parameter("publish_map", value=False)]),
        "ekf": make(EkfNode, "antenna"),
        "crop_rows": make(CropRowNode, "camera_mount"),
        "growth_map": make(GrowthMapNode, "camera_mount"),
    }


def _spin(ctx, nodes, until, n=200):
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    for node in nodes:
        ex.add_node(node)
    try:
        for _ in range(n):
            if until():
                return True
            ex.spin_once(timeout_sec=0.02)
        return until()
    finally:
        for node in nodes:
            ex.remove_node(node)


def _description(ctx, robot_type):
    from rclpy.parameter import Parameter

    from agricare.nodes.robot_description_node import RobotDescriptionNode
    return RobotDescriptionNode(context=ctx, parameter_overrides=[Parameter("robot_type", value=robot_type)])


WANT_KEY = {"safety": "laser", "tracker": "laser", "localizer": "laser", "ekf": "gnss", "crop_rows": "camera",
            "growth_map": "camera"}


def test_every_node_that_uses_a_mount_reads_it_from_robot_description(rclpy_context, tmp_path):
    pytest.importorskip("agricare_interfaces.msg")
    nodes = _nodes(rclpy_context, tmp_path)
    assert all(m.value is None for _, m in nodes.values()), {k: m.value for k, (_, m) in nodes.items()}
    # a robot type whose mounts differ from every node default: the values can only come from its URDF
    desc = _description(rclpy_context, "tractor")
    want = _urdf_mounts("tractor")
    assert _spin(rclpy_context, [desc] + [n for n, _ in nodes.values()],
                 lambda: all(m.value is not None for _, m in nodes.values()))
    for name, (_node, mount) in nodes.items():
        assert mount.source == "robot_description", name
        assert mount.value == pytest.approx(want[WANT_KEY[name]]), (name, mount.value)
    # and they use it: the localiser's filter and the EKF's lever arm
    assert nodes["localizer"][0].pf.p.laser_pose_in_base == pytest.approx(want["laser"])
    assert nodes["ekf"][0].ekf.p.gnss_antenna_offset_m == pytest.approx(want["gnss"][:2])
    for node, _ in nodes.values():
        node.destroy_node()
    desc.destroy_node()


def test_a_mount_parameter_is_an_override_that_warns_when_it_disagrees(rclpy_context, tmp_path):
    pytest.importorskip("agricare_interfaces.msg")
    from agricare.nodes.safety_supervisor_node import SafetySupervisorNode

    nodes = _nodes(rclpy_context, tmp_path, {SafetySupervisorNode.__name__: {"scan_mount_xyyaw": [1.0, 0.0, 0.0]}})
    node, mount = nodes["safety"]
    assert mount.value == (1.0, 0.0, 0.0) and mount.source == "parameter"   # usable before any description
    warnings = []
    node.get_logger().warning = lambda msg, **kw: warnings.append(msg)
    desc = _description(rclpy_context, "care_shuttle")
    assert _spin(rclpy_context, [desc, node], lambda: mount.from_description is not None)
    assert mount.value == (1.0, 0.0, 0.0)
    assert mount.from_description == pytest.approx((2.0, 0.0, 0.0))
    assert any("overrides" in w and "scan_mount_xyyaw" in w for w in warnings), warnings
    assert not math.isnan(mount.value[0])
    for n, _ in nodes.values():
        n.destroy_node()
    desc.destroy_node()


@pytest.mark.parametrize("robot_type", ["tractor", "row_robot", "care_shuttle"])
def test_gazebo_models_mount_sensors_as_the_urdf(robot_type):
    import xml.etree.ElementTree as ET

    from agricare.core.description import frame_pose
    model = parse_urdf((ROOT / "urdf" / f"{robot_type}.urdf").read_text())
    sdf = ET.parse(ROOT / "worlds" / "models" / robot_type / "model.sdf").getroot()
    links = {lk.get("name"): [float(v) for v in lk.find("pose").text.split()] for lk in sdf.iter("link")
             if lk.find("pose") is not None}
    for frame in ("laser", "laser_rear", "gnss_link", "camera_link"):
        if frame not in links:
            continue
        t, R = frame_pose(model, frame)
        pose = links[frame]
        # the SDF is written with 4 decimals
        assert pose[:3] == pytest.approx(list(t), abs=1e-4), (robot_type, frame)
        assert pose[4] == pytest.approx(math.atan2(-R[2, 0], math.hypot(R[0, 0], R[1, 0])), abs=1e-4)
        if frame.startswith("laser"):   # the rear scanner faces backwards: yaw pi (either sign)
            yaw_err = (pose[5] - math.atan2(R[1, 0], R[0, 0]) + math.pi) % (2 * math.pi) - math.pi
            assert abs(yaw_err) < 1e-4, (robot_type, frame, pose[5])
    if robot_type == "tractor":
        assert "laser_rear" in links and "laser_rear" in _urdf_mounts("tractor")


def test_tractor_has_a_rear_scanner_everywhere():
    """URDF frame laser_rear facing backwards, the simulator's scan_rear there, the Gazebo bridge's scan_rear."""
    import yaml

    x, y, yaw = _urdf_mounts("tractor")["laser_rear"]
    assert x < -0.9 and abs(abs(yaw) - math.pi) < 1e-5      # behind the rear axle, looking back (URDF: 6 digits)
    rear = default_sensors("tractor")["scan_rear"]
    assert (rear.mount_x_m, rear.mount_yaw_rad) == pytest.approx((x, yaw), abs=1e-5)
    front = default_sensors("tractor")["scan"]
    assert front.fov_rad + rear.fov_rad >= 2 * math.pi     # together all round
    bridge = yaml.safe_load((ROOT / "worlds" / "farm_bridge.yaml").read_text())
    assert {"/tractor/scan_rear"} <= {e["ros_topic_name"] for e in bridge}
    assert "/row_robot/scan_rear" not in {e["ros_topic_name"] for e in bridge}
