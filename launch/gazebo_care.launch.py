"""ros2 launch agricare gazebo_care.launch.py [scenario:=...] [namespace:=...] [params_file:=...]

Gazebo (gz sim) with worlds/care.sdf, ros_gz_bridge with worlds/care_bridge.yaml (the topic contract), and
the same node graph as the embedded simulator runs, minus the embedded simulator itself.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import gazebo_launch  # noqa: E402

WORLD = "care.sdf"
BRIDGE = "care_bridge.yaml"
SCENARIO = "care.yaml"


def generate_launch_description():
    return gazebo_launch("care", SCENARIO)
