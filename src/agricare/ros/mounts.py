"""Sensor mounts read from the robot's description (``robot_description``, published by robot_description_node).

One source of truth: a node that needs where its laser, camera or GNSS antenna sits on ``base_link`` takes it
from the URDF, not from a parameter of its own. A parameter stays only as an explicit override: when it is set
the node uses it (also before any description arrives) and logs a warning if the description disagrees.

Until the mount is known (no override, no description yet) :attr:`MountFromDescription.value` is ``None`` and the
node does not use the sensor (fail safe: a safety node then reports its scan missing).
"""

from __future__ import annotations

import math

import numpy as np
from std_msgs.msg import String

from agricare.core.description import UrdfError, parse_urdf, sensor_mounts
from agricare.ros.qos import subscribe_latched

SENSORS = ("laser", "laser_rear", "gnss", "camera", "camera_optical")


def is_unset(value) -> bool:
    """A mount parameter left at its "from the description" default (empty list or NaN)."""
    if value is None:
        return True
    if isinstance(value, (tuple, list)):
        return len(value) == 0 or all(isinstance(v, float) and math.isnan(v) for v in value)
    return isinstance(value, float) and math.isnan(value)


class MountFromDescription:
    """The mount of one sensor of this robot, from ``robot_description`` unless overridden.

    Parameters
    ----------
    node : rclpy.node.Node
    sensor : str
        ``"laser"`` / ``"laser_rear"`` -> ``(x_m, y_m, yaw_rad)``; ``"gnss"`` -> ``(x_m, y_m, z_m)``;
        ``"camera"`` -> ``(x_m, y_m, height_above_ground_m, pitch_down_rad)`` (see ``core.description``).
    override : sequence of float or None
        The node's parameter value; ``None`` / empty / all NaN = take the description's. An override with some
        components set takes the unset (NaN) ones as 0 (a lidar at ``laser_x_m`` only: on the centre line,
        facing forward).
    param_name : str
        Named in the warning.
    on_change : callable(tuple), optional
        Called when the value becomes known or changes.
    compare : slice, optional
        Part of the tuple an override is compared with (a node that sets only some components).
    """

    def __init__(self, node, sensor: str, override=None, param_name: str = "", on_change=None,
                 compare: slice | None = None, tolerance: float = 1e-3):
        if sensor not in SENSORS:
            raise ValueError(f"sensor must be one of {SENSORS}, got {sensor!r}")
        self.node, self.sensor, self.param_name = node, sensor, param_name
        self.on_change = on_change
        self.compare = compare or slice(None)
        self.tolerance = float(tolerance)
        self.override = None if is_unset(override) else tuple(0.0 if math.isnan(float(v)) else float(v)
                                                               for v in override)
        self.from_description = None
        self.value = self.override
        self.source = "parameter" if self.override is not None else "none"
        self._subs = subscribe_latched(node, String, "robot_description", self._on_description)
        if self.value is not None and self.on_change is not None:
            self.on_change(self.value)

    def _on_description(self, msg: String):
        try:
            mounts = sensor_mounts(parse_urdf(msg.data))
        except UrdfError as exc:
            self.node.get_logger().error(f"robot_description: {exc}")
            return
        desc = mounts.get(self.sensor)
        if desc is None:
            self.node.get_logger().error(f"robot_description has no {self.sensor} frame: the {self.sensor} mount "
                                         f"is unknown" + (" (using the parameter)" if self.override else ""))
            return
        self.from_description = desc
        if self.override is not None:
            a, b = np.asarray(self.override)[self.compare], np.asarray(desc)[self.compare]
            if a.shape != b.shape or np.max(np.abs(a - b), initial=0.0) > self.tolerance:
                self.node.get_logger().warning(
                    f"parameter {self.param_name} = {[round(v, 4) for v in self.override]} overrides the "
                    f"{self.sensor} mount of robot_description {[round(float(v), 4) for v in b]}")
            return
        if self.value != desc:
            self.value, self.source = desc, "robot_description"
            self.node.get_logger().info(f"{self.sensor} mount from robot_description: "
                                        f"{[round(v, 4) for v in desc]}")
            if self.on_change is not None:
                self.on_change(desc)
