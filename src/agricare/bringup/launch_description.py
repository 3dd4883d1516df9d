"""Turn a scenario graph into plain launch entries (no launch import), for ``launch/*.launch.py``.

The launch files stay thin: they call :func:`launch_entries` and wrap each entry in ``launch_ros`` ``Node``.
Keeping the logic here lets it be tested where ``launch_ros`` does not install.
"""

from __future__ import annotations

import dataclasses

from agricare.bringup.graph import Graph, load_graph


@dataclasses.dataclass
class LaunchEntry:
    package: str
    executable: str
    name: str
    namespace: str
    parameters: list            # [dict] as launch_ros expects
    remappings: list            # [(from, to)]


def launch_entries(scenario_file, use_sim_time: bool = True, include_sim: bool = True,
                   namespace: str | None = None, params_file: str | None = None,
                   out_dir: str = "out") -> list[LaunchEntry]:
    """Launch entries for every node of a scenario.

    Parameters
    ----------
    scenario_file : path-like
    use_sim_time : bool
    include_sim : bool
        Add the embedded simulator (``sim_node``, timer mode). False for Gazebo or hardware.
    namespace : str or None
        Only the nodes of this robot (``robot.launch.py`` on one machine).
    params_file : str or None
        Extra ROS 2 params file given to every node (``params_file:=`` launch argument).
    out_dir : str
        Replaces ``${out}`` in string parameters (where records and maps are written).
    """
    graph: Graph = load_graph(scenario_file)
    entries = []
    if include_sim:
        entries.append(LaunchEntry("agricare", "sim_node", "sim_node", "", [{
            "scenario_file": str(graph.scenario_file), "drive_mode": "timer", "real_time_factor": 1.0,
            "step_dt_s": float(graph.run.step_dt_s)}], []))
    for spec in graph.nodes:
        if namespace and spec.robot != namespace.strip("/"):
            continue
        params = {k: (v.replace("${out}", out_dir) if isinstance(v, str) else v) for k, v in spec.params.items()}
        params["use_sim_time"] = use_sim_time
        plist = [params] + ([params_file] if params_file else [])
        remaps = list(spec.remap.items())
        if spec.robot:
            remaps += [("/tf", "tf"), ("/tf_static", "tf_static")]
        entries.append(LaunchEntry("agricare", spec.node, spec.name, spec.namespace.strip("/"), plist, remaps))
    return entries


def supervision_policy(executable: str) -> dict:
    """What a launch does when this node's process exits (the policy of ``agricare run --multiprocess``,
    :mod:`agricare.bringup.supervise`): drivers and perception respawn after ``respawn_delay_s`` (they hold
    no goal or plan, so a restart never starts motion); any other node's exit shuts the launch down, every
    node then gets SIGINT and sends its zero command before its context goes away."""
    from agricare.bringup.supervise import RESTARTABLE

    if executable in RESTARTABLE:
        return {"respawn": True, "respawn_delay_s": 2.0, "shutdown_on_exit": False}
    return {"respawn": False, "respawn_delay_s": 0.0, "shutdown_on_exit": True}
