"""The topic contract of shared/DESIGN.md as data: per-robot topics (relative) and global ones.

Used by tests (the Gazebo bridge and every node must speak exactly these names and types) and by tools.
"""

ROBOT_TOPICS = {
    "odom": "nav_msgs/msg/Odometry",
    "imu/data": "sensor_msgs/msg/Imu",
    "gnss/fix": "sensor_msgs/msg/NavSatFix",
    "odometry/filtered": "nav_msgs/msg/Odometry",
    "scan": "sensor_msgs/msg/LaserScan",
    "camera/image_raw": "sensor_msgs/msg/Image",
    "camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "battery_state": "sensor_msgs/msg/BatteryState",
    "joint_states": "sensor_msgs/msg/JointState",
    "goal_pose": "geometry_msgs/msg/PoseStamped",
    "plan": "nav_msgs/msg/Path",
    "cmd_vel_nav": "geometry_msgs/msg/TwistStamped",
    "cmd_vel_smoothed": "geometry_msgs/msg/TwistStamped",
    "cmd_vel": "geometry_msgs/msg/TwistStamped",
    "implement/sections": "std_msgs/msg/UInt8MultiArray",
    "safety/estop": "std_msgs/msg/Bool",
    "tf": "tf2_msgs/msg/TFMessage",
    "tf_static": "tf2_msgs/msg/TFMessage",
}

GLOBAL_TOPICS = {
    "/clock": "rosgraph_msgs/msg/Clock",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


def contract_type(topic: str) -> str | None:
    """Type of a fully qualified topic (``/tractor/odom``) under the contract, or None."""
    if topic in GLOBAL_TOPICS:
        return GLOBAL_TOPICS[topic]
    parts = topic.strip("/").split("/", 1)
    if len(parts) == 2:
        return ROBOT_TOPICS.get(parts[1])
    return None
