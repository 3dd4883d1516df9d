"""ros2 launch agricare care_sim.launch.py [scenario:=...] [namespace:=...] [use_sim_time:=true] [params_file:=...]

The embedded simulator plus the node graph of config/scenarios/care.yaml.
"""

import os
import sys

from launch import LaunchDescription

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import common_arguments, nodes_from_scenario  # noqa: E402


def generate_launch_description():
    return LaunchDescription(common_arguments("care.yaml") + [nodes_from_scenario(include_sim=True)])
