"""Robot descriptions: generated files up to date, check_urdf, parser, description node TF frames."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess

import numpy as np
import pytest

from agricare.core.description import UrdfError, parse_urdf

ROBOTS = ["tractor", "row_robot", "care_shuttle"]


def _load_generator(repo_root):
    spec = importlib.util.spec_from_file_location("make_urdf", repo_root / "tools" / "make_urdf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("robot", ROBOTS)
def test_urdf_up_to_date_with_generator(repo_root, robot):
    gen = _load_generator(repo_root)
    assert (repo_root / "urdf" / f"{robot}.urdf").read_text() == gen.ROBOTS[robot](), \
        "urdf/ is stale: run python tools/make_urdf.py"


@pytest.mark.parametrize("robot", ROBOTS)
def test_check_urdf(repo_root, robot):
    exe = shutil.which("check_urdf")
    if exe is None:
        pytest.skip("check_urdf not installed (Debian liburdfdom-tools; make venv installs it as root)")
    res = subprocess.run([exe, str(repo_root / "urdf" / f"{robot}.urdf")], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Successfully Parsed XML" in res.stdout


@pytest.mark.parametrize("robot", ROBOTS)
def test_parse_and_masses(repo_root, robot):
    model = parse_urdf((repo_root / "urdf" / f"{robot}.urdf").read_text())
    assert model.root == "base_link"
    for frame in ("laser", "imu_link", "gnss_link", "camera_link", "camera_optical_frame"):
        assert frame in model.links
    import xml.etree.ElementTree as ET

    total = sum(float(m.get("value")) for m in ET.fromstring(
        (repo_root / "urdf" / f"{robot}.urdf").read_text()).iter("mass"))
    expected = {"tractor": (4000, 7000), "row_robot": (40, 80), "care_shuttle": (150, 300)}[robot]
    assert expected[0] <= total <= expected[1]


def test_tractor_has_sections_and_steering(repo_root):
    model = parse_urdf((repo_root / "urdf" / "tractor.urdf").read_text())
    assert {f"implement_section_{i}" for i in range(3)} <= set(model.links)
    steer = model.joints["front_left_steering_joint"]
    assert steer.kind == "revolute" and steer.upper == pytest.approx(0.61)
    xyz, q = steer.transform(math.pi / 2)
    np.testing.assert_allclose(q, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-9)


def test_parser_rejects_bad_urdf():
    with pytest.raises(UrdfError, match="XML"):
        parse_urdf("<robot name='x'><link name='a'></robot>")
    with pytest.raises(UrdfError, match="not defined"):
        parse_urdf("<robot name='x'><link name='a'/><joint name='j' type='fixed'><parent link='a'/>"
                   "<child link='b'/></joint></robot>")
    with pytest.raises(UrdfError, match="one tree"):
        parse_urdf("<robot name='x'><link name='a'/><link name='b'/></robot>")
    with pytest.raises(UrdfError, match="limit"):
        parse_urdf("<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='revolute'>"
                   "<parent link='a'/><child link='b'/></joint></robot>")


def test_description_node_publishes_frames(rclpy_context):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage

    from agricare.nodes.robot_description_node import RobotDescriptionNode
    from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS

    ex = SingleThreadedExecutor(context=rclpy_context)
    node = RobotDescriptionNode(context=rclpy_context, namespace="tractor",
                                parameter_overrides=[Parameter("robot_type", value="tractor"),
                                                     Parameter("frame_prefix", value="tractor/")])
    probe = rclpy.create_node("probe", context=rclpy_context)
    ex.add_node(node)
    ex.add_node(probe)
    static, dynamic, desc = [], [], []
    probe.create_subscription(TFMessage, "/tf_static", static.append, LATCHED_QOS)
    probe.create_subscription(TFMessage, "/tf", dynamic.append, RELIABLE_QOS)
    probe.create_subscription(String, "/tractor/robot_description", desc.append, LATCHED_QOS)
    js_pub = probe.create_publisher(JointState, "/tractor/joint_states", RELIABLE_QOS)
    for _ in range(500):
        if static and desc and js_pub.get_subscription_count():
            break
        ex.spin_once(timeout_sec=0.01)
    assert desc and desc[0].data.startswith("<?xml")
    static_children = {t.child_frame_id for m in static for t in m.transforms}
    assert {"tractor/chassis", "tractor/laser", "tractor/imu_link", "tractor/camera_optical_frame",
            "tractor/implement_section_1"} <= static_children
    js = JointState(name=["front_left_steering_joint", "rear_left_wheel_joint", "unknown_joint"],
                    position=[0.3, 1.0, 0.0])
    js.header.stamp.sec = 5
    js_pub.publish(js)
    for _ in range(500):
        if dynamic:
            break
        ex.spin_once(timeout_sec=0.01)
    assert dynamic
    tfs = {t.child_frame_id: t for t in dynamic[0].transforms}
    assert set(tfs) == {"tractor/front_left_steering", "tractor/rear_left_wheel"}
    rot = tfs["tractor/front_left_steering"].transform.rotation
    assert 2 * math.atan2(rot.z, rot.w) == pytest.approx(0.3)
    assert tfs["tractor/front_left_steering"].header.stamp.sec == 5
    ex.shutdown()


def test_description_node_bad_file(rclpy_context):
    pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    from agricare.nodes.robot_description_node import RobotDescriptionNode
    from agricare.ros.params import ParameterError

    with pytest.raises(ParameterError, match="urdf_file"):
        RobotDescriptionNode(context=rclpy_context,
                             parameter_overrides=[Parameter("urdf_file", value="/nonexistent/robot.urdf")])
