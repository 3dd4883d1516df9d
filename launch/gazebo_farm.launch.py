"""ros2 launch agricare gazebo_farm.launch.py [scenario:=...] [namespace:=...] [params_file:=...]

Gazebo (gz sim) with worlds/farm.sdf, ros_gz_bridge with worlds/farm_bridge.yaml (the topic contract), and
the same node graph as the embedded simulator runs, minus the embedded simulator itself.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import gazebo_launch  # noqa: E402

WORLD = "farm.sdf"
BRIDGE = "farm_bridge.yaml"
SCENARIO = "farm.yaml"


def generate_launch_description():
    return gazebo_launch("farm", SCENARIO)
