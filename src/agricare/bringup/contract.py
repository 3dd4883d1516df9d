"""The topic contract of shared/DESIGN.md as data: per-robot topics (relative) and global ones.

Used by tests (the Gazebo bridge and every node must speak exactly these names and types) and by tools.
"""

ROBOT_TOPICS = {
    "odom": "nav_msgs/msg/Odometry",
    "imu/data": "sensor_msgs/msg/Imu",
    "gnss/fix": "sensor_msgs/msg/NavSatFix",
    "odometry/filtered": "nav_msgs/msg/Odometry",
    "scan": "sensor_msgs/msg/LaserScan",
    "scan_rear": "sensor_msgs/msg/LaserScan",      # a second, rear-facing scanner (tractor): safety when reversing
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
    "ground_truth/odom": "nav_msgs/msg/Odometry",   # simulators only: for measuring, never a robot node's input
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


# Nodes that belong to the simulated world (the back-end), not to a robot: they may read the simulator's truth.
SIMULATOR_NODES = ("sim_node", "care_site_sim_node")
GROUND_TRUTH_PREFIX = "ground_truth"


def is_ground_truth(topic: str) -> bool:
    """True for ``/ground_truth/...`` and ``/<robot>/ground_truth/...`` (fully qualified names)."""
    parts = topic.strip("/").split("/")
    return GROUND_TRUTH_PREFIX in parts[:2]


def node_io(entries, out_dir) -> dict:
    """Resolved topics of every node of a graph, by instantiating the nodes (nothing is spun).

    Parameters
    ----------
    entries : list of agricare.bringup.launch_description.LaunchEntry
        What ``ros2 launch`` would start (parameters and remappings exactly as launched).
    out_dir : path-like
        Replaces ``${out}`` (records, audit logs).

    Returns
    -------
    dict
        ``{fqn: {"node": executable, "subscribes": {topic: type}, "publishes": {topic: type}}}``; a node that
        fails to start is reported with ``"error": text``.
    """
    import rclpy
    from rclpy.context import Context

    from agricare.bringup.graph import node_class
    from agricare.bringup.runner import to_parameters

    ctx = Context()
    rclpy.init(context=ctx, domain_id=0)
    out = {}
    nodes = []
    try:
        for e in entries:
            params = {k: (v.replace("${out}", str(out_dir)) if isinstance(v, str) else v)
                      for k, v in e.parameters[0].items()}
            args = ["--ros-args", "-r", f"__node:={e.name}"]
            for src, dst in e.remappings:
                args += ["-r", f"{src}:={dst}"]
            fqn = f"/{e.namespace}/{e.name}" if e.namespace else f"/{e.name}"
            try:
                node = node_class(e.executable)(namespace=("/" + e.namespace) if e.namespace else "/",
                                                cli_args=args, parameter_overrides=to_parameters(params),
                                                context=ctx, start_parameter_services=False, enable_rosout=False)
            except Exception as exc:  # reported, the caller decides
                out[fqn] = {"node": e.executable, "error": f"{type(exc).__name__}: {exc}"}
                continue
            nodes.append(node)
            out[fqn] = {"node": e.executable,
                        "subscribes": {s.topic_name: _type_name(s.msg_type) for s in node.subscriptions},
                        "publishes": {p.topic_name: _type_name(p.msg_type) for p in node.publishers}}
            # a composed process (the safe base: supervisor + base driver): its other nodes count as nodes too
            for part in getattr(node, "composed_nodes", ()):
                out[f"{fqn}+{part.get_name()}"] = {
                    "node": f"{e.executable}+{part.get_name()}",
                    "subscribes": {s.topic_name: _type_name(s.msg_type) for s in part.subscriptions},
                    "publishes": {p.topic_name: _type_name(p.msg_type) for p in part.publishers}}
    finally:
        for n in nodes:
            try:
                n.destroy_node()
            except Exception:
                pass
        ctx.try_shutdown()
    return out


def _type_name(cls) -> str:
    mod = cls.__module__.split(".")
    return f"{mod[0]}/{mod[1]}/{cls.__name__}" if len(mod) >= 2 else cls.__name__


# Inputs no node of a graph publishes by design (relative to the robot namespace), with who provides them.
OPERATOR_INPUTS = {
    "initialpose": "operator (RViz 2D Pose Estimate) or the dock; the scenarios give initial_pose_in_map",
    "goal_pose": "operator or the app",
    "safety/estop": "e-stop button, remote, app",
    "safety/geofence": "operator or the app (signed)",
    "safety/command": "fleet side or the app: signed geofence updates and remote protective stops",
    "mission/pause": "operator or the app (signed)",
    "care/site_answer": "staff and guardians' app (the simulator's care_site_sim_node in simulation)",
}
OPTIONAL_INPUTS = {
    "plan_directions": "only plans with reverse segments (coverage turns) carry driving directions",
    "obstacle_distance": "an optional obstacle-distance source for speed regulation",
    "tracked_objects": "people tracker, on robots that have one",
    "implement/rate": "rate setpoints from section control with a prescription map; without one the implement "
                      "applies its nominal rate",
    "implement/rate_applied": "the implement's measured rate where its controller reports one (else metering model)",
    "joint_states": "wheel joints for robot_description (Gazebo, base driver); the embedded simulator has none",
}


def bridge_topics(bridge_yaml) -> dict:
    """ROS topics a ros_gz_bridge config publishes into ROS (GZ_TO_ROS / BIDIRECTIONAL): {topic: type}."""
    import yaml

    entries = yaml.safe_load(open(bridge_yaml)) or []
    return {e["ros_topic_name"]: e["ros_type_name"] for e in entries
            if e.get("direction", "BIDIRECTIONAL") in ("GZ_TO_ROS", "BIDIRECTIONAL")}


def unmet_inputs(io: dict, providers: dict) -> list[str]:
    """Subscriptions no other node publishes and no back-end provides (operator/optional inputs excepted).

    ``io``: :func:`node_io` output; ``providers``: ``{topic: provider description}`` of the back-end.
    """
    pubs: dict[str, set] = {}
    for fqn, rec in io.items():
        for t in rec.get("publishes", {}):
            pubs.setdefault(t, set()).add(fqn)
    out = []
    for fqn, rec in io.items():
        for t in rec.get("subscribes", {}):
            rel = t.strip("/").split("/", 1)[1] if t.count("/") >= 2 else t.strip("/")
            if (pubs.get(t, set()) - {fqn}) or t in providers or rel in OPERATOR_INPUTS or rel in OPTIONAL_INPUTS:
                continue
            out.append(f"{fqn} subscribes {t}: nobody publishes it")
    return out
