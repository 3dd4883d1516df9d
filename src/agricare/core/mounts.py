"""Sensor mounts of each robot type: the one source of truth.

``tools/make_urdf.py`` writes these into ``urdf/<type>.urdf`` (the ``laser``, ``laser_rear``, ``camera_link``,
``gnss_link`` and ``imu_link`` joints) and the embedded simulator places its sensors here
(``core/sim/scenarios.py`` defaults).
Robot nodes never read this module: they read the mounts from the URDF that robot_description_node publishes
(``ros/mounts.py``), so a real robot with another URDF needs no parameter changes.

All positions are in ``base_link`` (m): x forward, y left, z up. ``base_height_m`` is base_link above the ground
(the diff-drive robots have base_link on the wheel axle, the tractor on the ground under the rear axle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SensorMounts:
    """Mounting of the sensors on one robot type (base_link frame, m and rad)."""

    base_height_m: float
    laser_xyz: tuple[float, float, float]
    camera_xyz: tuple[float, float, float]
    camera_pitch_rad: float          # down-positive
    gnss_xyz: tuple[float, float, float]
    imu_xyz: tuple[float, float, float]
    laser_yaw_rad: float = 0.0
    # a second, rear-facing laser scanner (None: the robot has none): what the safety supervisor needs to reverse
    rear_laser_xyz: tuple[float, float, float] | None = None
    rear_laser_yaw_rad: float = math.pi


MOUNTS = {
    # lidar on the front of the bonnet, antenna 1 m ahead of the rear axle on the cab roof. A second safety laser
    # scanner faces backwards from a bracket on the rear linkage frame, 1.0 m up: its plane passes over the
    # three-point-hitch implement (0.7 m high) and sees what is behind it, where the machine goes when it reverses
    # (the bonnet scanner cannot look past the cab)
    "tractor": SensorMounts(base_height_m=0.0, laser_xyz=(3.2, 0.0, 1.0), camera_xyz=(1.0, 0.0, 2.9),
                            camera_pitch_rad=0.35, gnss_xyz=(1.0, 0.0, 2.8), imu_xyz=(0.8, 0.0, 1.0),
                            rear_laser_xyz=(-1.0, 0.0, 1.0)),
    # forward camera 0.4 m ahead, 1.0 m above the ground, 35 deg down (crop-row guidance)
    "row_robot": SensorMounts(base_height_m=0.15, laser_xyz=(0.6, 0.0, 0.35), camera_xyz=(0.4, 0.0, 0.85),
                              camera_pitch_rad=math.radians(35.0), gnss_xyz=(0.0, 0.0, 0.95),
                              imu_xyz=(0.0, 0.0, 0.2)),
    # lidar behind the front bumper (the shuttle is 3.2 m long, 1.0 m of it behind the axle), antenna on the roof
    "care_shuttle": SensorMounts(base_height_m=0.2, laser_xyz=(2.0, 0.0, 0.25), camera_xyz=(2.0, 0.0, 1.3),
                                 camera_pitch_rad=0.25, gnss_xyz=(0.0, 0.0, 2.0), imu_xyz=(0.0, 0.0, 0.3)),
}
