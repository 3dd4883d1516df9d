"""Turn a scenario graph into plain launch entries (no launch import), for ``launch/*.launch.py``.

The launch files stay thin: they call :func:`launch_entries` and wrap each entry in ``launch_ros`` ``Node``.
Keeping the logic here lets it be tested where ``launch_ros`` does not install.
"""

from __future__ import annotations

import dataclasses

from agricare.bringup.graph import Graph, load_graph
from agricare.bringup.signing import MISSION_ACTIONS, prepare_mission_signing


@dataclasses.dataclass
class LaunchEntry:
    package: str
    executable: str
    name: str
    namespace: str
    parameters: list            # [dict] as launch_ros expects
    remappings: list            # [(from, to)]


# mission node -> (goal sender's action parameter): a robot idles until its mission has a goal, so a launch
# that starts a mission also starts the node that sends the mission's default goal
MISSION_GOALS = {node: action for node, (action, _type) in MISSION_ACTIONS.items()}
# managed (lifecycle) nodes in bring-up order: the driver, safety, localisation, then the missions
MANAGED_ORDER = ("base_driver_node", "safe_base_node", "gnss_node", "safety_supervisor_node", "ekf_node",
                 "farm_mission_node", "care_mission_node")


def launch_entries(scenario_file, use_sim_time: bool = True, include_sim: bool = True,
                   robot: str | None = None, params_file: str | None = None,
                   out_dir: str = "out", send_goals: bool = True,
                   lifecycle: bool = True) -> list[LaunchEntry]:
    """Launch entries for every node of a scenario.

    Parameters
    ----------
    scenario_file : path-like
    use_sim_time : bool
    include_sim : bool
        Add the embedded simulator (``sim_node``, timer mode). False for Gazebo or hardware.
    robot : str or None
        Only the nodes of this robot (``robot.launch.py`` on one machine). A namespace for everything is
        pushed by the launch file (``namespace:=``, PushRosNamespace), not chosen here.
    params_file : str or None
        Extra ROS 2 params file given to every node, the simulator too (``params_file:=``); its sections
        match node names as rcl does, as under ``agricare run``.
    out_dir : str
        Replaces ``${out}`` in string parameters (where records and maps are written); made absolute, so
        output does not depend on the directory the launch was started from.
    send_goals : bool
        Add one ``mission_goal_node`` per mission node: it sends the mission's default goal, signed with the
        operator key under ``out_dir`` (:mod:`agricare.bringup.signing`; the missions trust it for goals).
    lifecycle : bool
        Start the managed nodes (driver, localisation, missions) unconfigured and add one
        ``lifecycle_manager_node`` per robot that brings them up in order and down safely.
    """
    import os

    graph: Graph = load_graph(scenario_file)
    out_abs = os.path.abspath(os.path.expanduser(out_dir))
    goal_keys = prepare_mission_signing(graph.nodes, out_abs)
    extra = [params_file] if params_file else []
    entries = []
    if include_sim:
        entries.append(LaunchEntry("agricare", "sim_node", "sim_node", "", [{
            "scenario_file": str(graph.scenario_file), "drive_mode": "timer", "real_time_factor": 1.0,
            "step_dt_s": float(graph.run.step_dt_s), "use_sim_time": False}] + extra, []))
    for spec in graph.nodes:
        if robot and spec.robot != robot.strip("/"):
            continue
        params = {k: (v.replace("${out}", out_abs) if isinstance(v, str) else v) for k, v in spec.params.items()}
        params["use_sim_time"] = use_sim_time
        if lifecycle and spec.node in MANAGED_ORDER:
            params["managed"] = True
        remaps = list(spec.remap.items())
        if spec.robot:
            remaps += [("/tf", "tf"), ("/tf_static", "tf_static")]
        ns = spec.namespace.strip("/")
        entries.append(LaunchEntry("agricare", spec.node, spec.name, ns, [params] + extra, remaps))
        if send_goals and spec.node in MISSION_GOALS:
            entries.append(LaunchEntry("agricare", "mission_goal_node", "mission_goal", ns, [{
                "action": MISSION_GOALS[spec.node], "use_sim_time": use_sim_time, "robot_name": spec.robot or "",
                "signing_key_file": str(goal_keys[spec.fqn])}] + extra, []))
    if lifecycle:
        by_robot: dict[str, list] = {}
        for spec in graph.nodes:
            if spec.node in MANAGED_ORDER and (not robot or spec.robot == robot.strip("/")):
                by_robot.setdefault(spec.namespace.strip("/"), []).append(spec)
        for ns, specs in by_robot.items():
            names = [s.name for s in sorted(specs, key=lambda s: MANAGED_ORDER.index(s.node))]
            entries.append(LaunchEntry("agricare", "lifecycle_manager_node", "lifecycle_manager", ns, [{
                "node_names": names, "autostart": True, "use_sim_time": use_sim_time}] + extra, []))
    return entries


ONE_SHOT = frozenset({"mission_goal_node"})


def supervision_policy(executable: str) -> dict:
    """What a launch does when this node's process exits (the policy of ``agricare run --multiprocess``,
    :mod:`agricare.bringup.supervise`): drivers and perception respawn after ``respawn_delay_s`` (they hold
    no goal or plan, so a restart never starts motion); any other node's exit shuts the launch down, every
    node then gets SIGINT and sends its zero command before its context goes away. ``nice``: the niceness the
    process starts with (every node but the safety-critical ones: ``SupervisionParams.background_nice``)."""
    from agricare.bringup.supervise import RESTARTABLE, SAFETY_CRITICAL, SupervisionParams

    nice = 0 if executable in SAFETY_CRITICAL else SupervisionParams().background_nice
    if executable in ONE_SHOT:   # ends by design (the mission's result): neither respawned nor fatal
        return {"respawn": False, "respawn_delay_s": 0.0, "shutdown_on_exit": False, "nice": nice}
    if executable in RESTARTABLE:
        return {"respawn": True, "respawn_delay_s": 2.0, "shutdown_on_exit": False, "nice": nice}
    return {"respawn": False, "respawn_delay_s": 0.0, "shutdown_on_exit": True, "nice": nice}
