"""ros2 launch agricare robot.launch.py scenario:=<robot scenario> namespace:=<robot> use_sim_time:=false

One real robot: the robot's node graph from a scenario, without the simulator; the hardware drivers
(the safe base: supervisor + base driver in one process, gnss_node) come from the scenario's node list with
config/hardware/*.yaml.
"""

import os
import sys

from launch import LaunchDescription

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import common_arguments, nodes_from_scenario  # noqa: E402


def generate_launch_description():
    return LaunchDescription(common_arguments("robot_care_shuttle.yaml", use_sim_time="false")
                             + [nodes_from_scenario(include_sim=False)])
