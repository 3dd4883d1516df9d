"""Shared by the agricare launch files: build launch_ros Nodes from a scenario graph.

The graph logic lives in ``agricare.bringup.launch_description`` (tested without launch_ros); this file only
wraps its entries.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from agricare.bringup.launch_description import launch_entries, supervision_policy


def share(*parts):
    return os.path.join(get_package_share_directory("agricare"), *parts)


def common_arguments(default_scenario, use_sim_time="true"):
    return [
        DeclareLaunchArgument("scenario", default_value=share("config", "scenarios", default_scenario),
                              description="scenario YAML (world, robots, node graph)"),
        DeclareLaunchArgument("robot", default_value="", description="only this robot's nodes (empty: all)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace pushed onto every node (PushRosNamespace), e.g. a fleet"),
        DeclareLaunchArgument("use_sim_time", default_value=use_sim_time,
                              description="nodes follow /clock (simulator or Gazebo)"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="extra ROS 2 params file for every node (rcl name matching)"),
        DeclareLaunchArgument("out", default_value=os.path.join(os.getcwd(), "out"),
                              description="directory for records and maps (made absolute)"),
        DeclareLaunchArgument("send_goals", default_value="true",
                              description="start mission_goal_node per mission (a robot idles without a goal)"),
    ]


def nodes_from_scenario(include_sim):
    def _make(context):
        def arg(name):
            return LaunchConfiguration(name).perform(context)

        truthy = ("1", "true", "yes")
        entries = launch_entries(arg("scenario"), arg("use_sim_time").lower() in truthy, include_sim,
                                 robot=arg("robot") or None, params_file=arg("params_file") or None,
                                 out_dir=arg("out"), send_goals=arg("send_goals").lower() in truthy)
        nodes = [_node(e) for e in entries]
        ns = arg("namespace").strip("/")
        return [GroupAction([PushRosNamespace(ns), *nodes])] if ns else nodes

    return OpaqueFunction(function=_make)


def _node(e):
    """A launch_ros Node with the supervision policy: respawn drivers/perception, else shut the launch down."""
    pol = supervision_policy(e.executable)
    on_exit = [Shutdown(reason=f"{e.namespace}/{e.name} exited: the robot's graph stops")] \
        if pol["shutdown_on_exit"] else None
    # every node but the safety-critical ones starts nicer, so it cannot starve the safety loop (no root needed)
    prefix = f"nice -n {pol['nice']}" if pol["nice"] > 0 else None
    return Node(package=e.package, executable=e.executable, name=e.name, namespace=e.namespace,
                parameters=e.parameters, remappings=e.remappings, output="screen", prefix=prefix,
                respawn=pol["respawn"], respawn_delay=pol["respawn_delay_s"] or None, on_exit=on_exit)


def gazebo_launch(world: str, scenario: str):
    """gz sim with worlds/<world>.sdf, ros_gz_bridge with worlds/<world>_bridge.yaml, and the scenario's
    node graph without the embedded simulator."""
    from launch import LaunchDescription
    from launch.actions import AppendEnvironmentVariable, IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    gz_launch = os.path.join(get_package_share_directory("ros_gz_sim"), "launch", "gz_sim.launch.py")
    return LaunchDescription(common_arguments(scenario) + [
        AppendEnvironmentVariable("GZ_SIM_RESOURCE_PATH", share("worlds", "models")),  # keeps the user's paths
        IncludeLaunchDescription(PythonLaunchDescriptionSource(gz_launch),
                                 launch_arguments={"gz_args": "-r " + share("worlds", f"{world}.sdf")}.items()),
        Node(package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge", output="screen",
             parameters=[{"config_file": share("worlds", f"{world}_bridge.yaml"), "use_sim_time": True}]),
        nodes_from_scenario(include_sim=False),
    ])
