"""ros2 launch agricare gazebo_farm.launch.py [scenario:=...] [namespace:=...] [params_file:=...]

Gazebo (gz sim) with worlds/farm.sdf, ros_gz_bridge with worlds/farm_bridge.yaml (the topic contract), and
the same node graph as the embedded simulator runs, minus the embedded simulator itself.
"""

import os
import sys

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import Node

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import common_arguments, nodes_from_scenario, share  # noqa: E402

WORLD = "farm.sdf"
BRIDGE = "farm_bridge.yaml"
SCENARIO = "farm.yaml"


def generate_launch_description():
    from ament_index_python.packages import get_package_share_directory

    gz_launch = os.path.join(get_package_share_directory("ros_gz_sim"), "launch", "gz_sim.launch.py")
    return LaunchDescription(common_arguments(SCENARIO) + [
        SetEnvironmentVariable("GZ_SIM_RESOURCE_PATH", share("worlds", "models")),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(gz_launch),
                                 launch_arguments={"gz_args": "-r " + share("worlds", WORLD)}.items()),
        Node(package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge", output="screen",
             parameters=[{"config_file": share("worlds", BRIDGE), "use_sim_time": True}]),
        nodes_from_scenario(include_sim=False),
    ])
