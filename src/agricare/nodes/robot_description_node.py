"""robot_description_node: a Python robot_state_publisher.

Publishes the URDF on ``robot_description`` (std_msgs/String, transient local), fixed joints once on
``/tf_static`` and moving joints on ``/tf`` for every ``joint_states`` message.
"""

from __future__ import annotations

import dataclasses
import math

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from agricare import paths
from agricare.core.description import UrdfError, parse_urdf
from agricare.core.validation import require
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS


@dataclasses.dataclass(frozen=True)
class DescriptionParams:
    robot_type: str = "tractor"
    urdf_file: str = ""  # empty: urdf/<robot_type>.urdf from the package share
    frame_prefix: str = ""  # e.g. "tractor/" for several robots on one /tf

    def __post_init__(self):
        require(bool(self.robot_type or self.urdf_file), "robot_type", "or urdf_file must be set")
        require(self.frame_prefix == "" or self.frame_prefix.endswith("/"), "frame_prefix",
                "must be empty or end with '/'", self.frame_prefix)


class RobotDescriptionNode(Node):
    def __init__(self, **kwargs):
        super().__init__("robot_description_node", **kwargs)
        self.params = load_params(self, DescriptionParams)
        path = paths.resolve(self.params.urdf_file, "urdf") if self.params.urdf_file \
            else paths.urdf_path(self.params.robot_type)
        try:
            self.urdf_text = path.read_text()
            self.model = parse_urdf(self.urdf_text)
        except (OSError, UrdfError) as exc:
            raise ParameterError(f"{self.get_name()}: parameter 'urdf_file'/'robot_type': {path}: {exc}") from exc
        self.diag = Diagnostics(self, "description")
        self._desc_pub = self.create_publisher(String, "robot_description", LATCHED_QOS)
        self._static_pub = self.create_publisher(TFMessage, "/tf_static", LATCHED_QOS)
        self._tf_pub = self.create_publisher(TFMessage, "/tf", RELIABLE_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, RELIABLE_QOS)
        self._desc_pub.publish(String(data=self.urdf_text))
        self._publish_static()
        self.diag.ok(f"{self.model.name}: {len(self.model.links)} links, "
                     f"{len(self.model.moving_joints())} moving joints", urdf=str(path))

    def _tf(self, joint, position, stamp):
        xyz, q = joint.transform(position)
        t = TransformStamped()
        t.header.stamp = stamp
        t.header.frame_id = self.params.frame_prefix + joint.parent
        t.child_frame_id = self.params.frame_prefix + joint.child
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (float(v) for v in xyz)
        t.transform.rotation.w, t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z = (
            float(v) for v in q)
        return t

    def _publish_static(self):
        stamp = self.get_clock().now().to_msg()
        msg = TFMessage(transforms=[self._tf(j, 0.0, stamp) for j in self.model.fixed_joints()])
        self._static_pub.publish(msg)

    def _on_joint_states(self, msg: JointState):
        out = []
        bad = []
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            stamp = self.get_clock().now().to_msg()
        for name, pos in zip(msg.name, msg.position):
            joint = self.model.joints.get(name)
            if joint is None or joint.kind == "fixed":
                continue
            if not math.isfinite(pos):
                bad.append(name)
                continue
            out.append(self._tf(joint, pos, stamp))
        if out:
            self._tf_pub.publish(TFMessage(transforms=out))
        if bad:
            self.diag.warn("non-finite joint positions ignored", joints=",".join(bad))


def main(args=None):
    return run_node(RobotDescriptionNode, args)


if __name__ == "__main__":
    main()
