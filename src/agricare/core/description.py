"""Robot descriptions (URDF): parse joints and compute joint transforms, no ROS needed.

The description node publishes fixed joints once on ``/tf_static`` and moving joints on ``/tf`` from
``joint_states``, as robot_state_publisher does. Transforms are ``(xyz (3,), quaternion wxyz (4,))`` of the
child link in the parent link frame.
"""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET

import numpy as np
import transforms3d

from agricare.core.geometry import rpy_to_quat

MOVING = ("revolute", "continuous", "prismatic")
KNOWN = MOVING + ("fixed", "floating", "planar")


class UrdfError(ValueError):
    """The URDF text is not a valid robot description."""


@dataclasses.dataclass(frozen=True)
class Joint:
    name: str
    kind: str
    parent: str
    child: str
    xyz: np.ndarray
    quat_wxyz: np.ndarray
    axis: np.ndarray
    lower: float = -math.inf
    upper: float = math.inf

    def transform(self, position: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Child pose in the parent frame for a joint position (rad or m)."""
        if self.kind in ("revolute", "continuous"):
            q_joint = transforms3d.quaternions.axangle2quat(self.axis, position)
            return self.xyz.copy(), transforms3d.quaternions.qmult(self.quat_wxyz, q_joint)
        if self.kind == "prismatic":
            R = transforms3d.quaternions.quat2mat(self.quat_wxyz)
            return self.xyz + R @ (self.axis * position), self.quat_wxyz.copy()
        return self.xyz.copy(), self.quat_wxyz.copy()


@dataclasses.dataclass
class RobotModel:
    name: str
    links: list[str]
    joints: dict[str, Joint]

    @property
    def root(self) -> str:
        children = {j.child for j in self.joints.values()}
        roots = [link for link in self.links if link not in children]
        return roots[0]

    def fixed_joints(self) -> list[Joint]:
        return [j for j in self.joints.values() if j.kind == "fixed"]

    def moving_joints(self) -> list[Joint]:
        return [j for j in self.joints.values() if j.kind in MOVING]


def _floats(text, n, what):
    try:
        vals = [float(v) for v in (text or " ".join(["0"] * n)).split()]
    except ValueError as exc:
        raise UrdfError(f"{what}: not numbers: {text!r}") from exc
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise UrdfError(f"{what}: expected {n} finite numbers, got {text!r}")
    return np.array(vals)


def parse_urdf(text: str) -> RobotModel:
    """Parse URDF XML. Raises :class:`UrdfError` for malformed XML, unknown links or a non-tree."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise UrdfError(f"URDF is not valid XML: {exc}") from exc
    if root.tag != "robot" or not root.get("name"):
        raise UrdfError("URDF root must be <robot name=...>")
    links = [link.get("name") for link in root.findall("link")]
    if not links or any(not name for name in links):
        raise UrdfError("URDF has no links or a link without a name")
    if len(set(links)) != len(links):
        raise UrdfError("URDF has duplicate link names")
    joints = {}
    child_of = {}
    for j in root.findall("joint"):
        name, kind = j.get("name"), j.get("type")
        if not name or kind not in KNOWN:
            raise UrdfError(f"joint {name!r}: missing name or unknown type {kind!r}")
        parent = j.find("parent").get("link") if j.find("parent") is not None else None
        child = j.find("child").get("link") if j.find("child") is not None else None
        for which, link in (("parent", parent), ("child", child)):
            if link not in links:
                raise UrdfError(f"joint {name!r}: {which} link {link!r} is not defined")
        if child in child_of:
            raise UrdfError(f"link {child!r} has two parents")
        child_of[child] = parent
        origin = j.find("origin")
        xyz = _floats(origin.get("xyz") if origin is not None else None, 3, f"joint {name} origin xyz")
        rpy = _floats(origin.get("rpy") if origin is not None else None, 3, f"joint {name} origin rpy")
        axis_el = j.find("axis")
        axis = _floats(axis_el.get("xyz") if axis_el is not None else "1 0 0", 3, f"joint {name} axis")
        n = np.linalg.norm(axis)
        if n < 1e-9:
            raise UrdfError(f"joint {name}: zero axis")
        lim = j.find("limit")
        lower = float(lim.get("lower", "-inf")) if lim is not None else -math.inf
        upper = float(lim.get("upper", "inf")) if lim is not None else math.inf
        if kind in ("revolute", "prismatic") and lim is None:
            raise UrdfError(f"joint {name}: {kind} joint needs <limit>")
        joints[name] = Joint(name, kind, parent, child, xyz, rpy_to_quat(*rpy), axis / n, lower, upper)
    roots = [link for link in links if link not in child_of]
    if len(roots) != 1:
        raise UrdfError(f"URDF must be one tree; roots: {roots}")
    return RobotModel(root.get("name"), links, joints)


def frame_pose(model: RobotModel, frame: str, base: str = "base_link") -> tuple[np.ndarray, np.ndarray]:
    """Pose ``(xyz (3,), rotation matrix (3, 3))`` of ``frame`` in ``base`` through fixed joints.

    Raises :class:`UrdfError` when ``frame`` is not below ``base`` or a joint on the way moves.
    """
    by_child = {j.child: j for j in model.joints.values()}
    R, t = np.eye(3), np.zeros(3)
    link = frame
    while link != base:
        j = by_child.get(link)
        if j is None:
            raise UrdfError(f"frame {frame!r} is not attached to {base!r}")
        if j.kind != "fixed":
            raise UrdfError(f"frame {frame!r} hangs on the moving joint {j.name!r}")
        Rj = transforms3d.quaternions.quat2mat(j.quat_wxyz)
        R, t = Rj @ R, Rj @ t + j.xyz
        link = j.parent
    return t, R


def sensor_mounts(model: RobotModel) -> dict:
    """The planar sensor mounts the robot nodes use, read from a description.

    Returns
    -------
    dict
        ``"laser"``: ``(x_m, y_m, yaw_rad)`` of frame ``laser`` (``"laser_rear"``: of the rear-facing scanner's frame
        ``laser_rear``, on robots that have one); ``"gnss"``: ``(x_m, y_m, z_m)`` of ``gnss_link``;
        ``"camera"``: ``(x_m, y_m, height_above_ground_m, pitch_down_rad)`` of ``camera_link`` (the ground is
        ``base_footprint`` if the description has it, else base_link); ``"camera_optical"``: ``(x, y, z, R00, R01,
        ..., R22)`` of ``camera_optical_frame`` (position and row-major rotation). Sensors the description lacks
        are left out.
    """
    out = {}
    ground = 0.0
    if "base_footprint" in model.links:
        ground = float(frame_pose(model, "base_footprint")[0][2])
    for key, frame in (("laser", "laser"), ("laser_rear", "laser_rear"), ("gnss", "gnss_link"),
                       ("camera", "camera_link")):
        if frame not in model.links:
            continue
        t, R = frame_pose(model, frame)
        yaw = math.atan2(R[1, 0], R[0, 0])
        if key in ("laser", "laser_rear"):
            out[key] = (float(t[0]), float(t[1]), float(yaw))
        elif key == "gnss":
            out[key] = (float(t[0]), float(t[1]), float(t[2]))
        else:   # pitch of the optical axis (x of camera_link), down-positive
            pitch = math.atan2(-R[2, 0], math.hypot(R[0, 0], R[1, 0]))
            out[key] = (float(t[0]), float(t[1]), float(t[2] - ground), float(pitch))
    if "camera_optical_frame" in model.links:
        t, R = frame_pose(model, "camera_optical_frame")
        out["camera_optical"] = tuple(float(v) for v in np.concatenate([t, R.ravel()]))
    return out
