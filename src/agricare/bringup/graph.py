"""The node graph of a scenario: which nodes run, in which namespace, with which parameters.

A scenario YAML (``config/scenarios/*.yaml``) has ``world`` and ``robots`` (read by the simulator), and for
the bring-up::

    run:                       # optional
      max_sim_s: 600           # stop after this much simulated time
      step_dt_s: 0.02          # simulator step
      record: true             # write an MCAP of every topic
      record_max_rate_hz: {camera/image_raw: 2}   # throttle heavy topics in the recording
      park_when_done: false    # switch a robot off once its mission is done (the others run on)
    nodes:
      - node: controller_node          # a module in agricare.nodes (the console entry point name)
        robot: tractor                 # namespace = robot name; omit for a global node
        name: controller_node          # optional node name (default: the module name)
        params_files: [controller_node.yaml]   # optional; default config/<node>.yaml when it exists
        params: {algorithm: stanley}   # overrides, applied last
        remap: {odometry/filtered: ground_truth/odom}
    mission: {...}             # read by the mission nodes through their parameters

The simulator node is added by the runner itself (one per scenario). Every robot node gets
``use_sim_time: true`` and the remappings ``/tf -> tf`` and ``/tf_static -> tf_static`` (one TF tree per
robot namespace, as in multi-robot Nav2 set-ups).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pathlib
import pkgutil
import re

import yaml

from agricare import paths


class GraphError(ValueError):
    """The scenario's bring-up section is invalid; one line naming the problem."""


@dataclasses.dataclass
class NodeSpec:
    node: str                   # module / executable name, e.g. "controller_node"
    name: str                   # ROS node name
    namespace: str              # "" or "/tractor"
    robot: str | None
    params_files: list[pathlib.Path]
    params: dict                # merged parameters (files, then overrides)
    remap: dict[str, str]

    @property
    def fqn(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else f"/{self.name}"


@dataclasses.dataclass
class RunSettings:
    max_sim_s: float = 600.0
    step_dt_s: float = 0.02
    record: bool = True
    record_max_rate_hz: dict = dataclasses.field(default_factory=dict)
    record_exclude: tuple = ()
    # a robot whose mission is done is switched off (its nodes stop, the simulator stops its sensors) while the
    # others work on; only for robots that never share space with the others (the farm's row robot)
    park_when_done: bool = False


@dataclasses.dataclass
class Graph:
    scenario_file: pathlib.Path
    name: str
    raw: dict
    robots: dict[str, str]       # name -> type
    nodes: list[NodeSpec]
    run: RunSettings
    mission: dict


def available_nodes() -> list[str]:
    import agricare.nodes as pkg

    return sorted(i.name for i in pkgutil.iter_modules(pkg.__path__) if not i.name.startswith("_"))


def node_class(module_name: str):
    """The rclpy Node subclass defined in ``agricare.nodes.<module_name>``."""
    from rclpy.node import Node

    mod = importlib.import_module(f"agricare.nodes.{module_name}")
    classes = [c for _, c in inspect.getmembers(mod, inspect.isclass)
               if issubclass(c, Node) and c is not Node and c.__module__ == mod.__name__]
    if not classes:
        raise GraphError(f"agricare.nodes.{module_name} defines no rclpy Node class")
    explicit = getattr(mod, "NODE_CLASS", None)
    return explicit or classes[0]


def _key_regex(key: str) -> str:
    """A params-file node key as rcl matches it against a node's fully qualified name: a key without a
    leading slash is absolute, ``*`` is one name segment, ``**`` any number of segments."""
    parts = [p for p in key.strip().strip("/").split("/") if p]
    out = ""
    for p in parts:
        if p == "**":
            out += r"(?:/[^/]+)*"
        elif p == "*":
            out += r"/[^/]+"
        else:
            out += "/" + re.escape(p).replace(r"\*", "[^/]*")
    return out or "/"


def key_matches(key: str, node_fqn: str) -> bool:
    """True when the params-file section ``key`` applies to the node ``node_fqn`` (``/tractor/controller_node``),
    with the same rules under ``agricare run`` and ``ros2 launch`` (rcl's)."""
    fqn = "/" + node_fqn.strip("/")
    return re.fullmatch(_key_regex(str(key)), fqn) is not None


def read_params_file(path: pathlib.Path, node_fqn: str) -> dict:
    """ros__parameters of a ROS 2 params YAML that apply to the node ``node_fqn`` (fully qualified name,
    ``/tractor/controller_node``; a bare name is a node in the root namespace), matched as rcl does:
    ``/**``, the exact name, wildcards."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise GraphError(f"{path}:{where} bad YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise GraphError(f"{path}: a ROS 2 params file must be a mapping")
    out = {}
    for key, section in data.items():
        if key_matches(str(key), node_fqn):
            if not isinstance(section, dict) or "ros__parameters" not in section:
                raise GraphError(f"{path}: section {key!r} has no ros__parameters")
            out.update(_flatten(section["ros__parameters"] or {}))
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _resolve_params_file(entry: str, scenario_dir: pathlib.Path) -> pathlib.Path:
    p = pathlib.Path(entry).expanduser()
    for cand in ([p] if p.is_absolute() else [scenario_dir / p, paths.share_dir() / "config" / p]):
        if cand.is_file():
            return cand
    raise GraphError(f"params file {entry!r} not found (looked next to the scenario and in config/)")


def load_graph(scenario_file, overrides: dict | None = None) -> Graph:
    """Read and validate the bring-up part of a scenario. Raises :class:`GraphError` with one line."""
    path = pathlib.Path(scenario_file)
    if not path.is_file():
        cand = paths.share_dir() / "config" / "scenarios" / path.name
        if cand.is_file():
            path = cand
        else:
            raise GraphError(f"scenario file {scenario_file!s} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise GraphError(f"{path}:{where} bad YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise GraphError(f"{path}: a scenario must be a YAML mapping")
    robots = {}
    for i, r in enumerate(raw.get("robots") or []):
        if not isinstance(r, dict) or "name" not in r:
            raise GraphError(f"{path}: robots[{i}] needs a name")
        robots[str(r["name"])] = str(r.get("type", ""))
    run_cfg = raw.get("run") or {}
    if not isinstance(run_cfg, dict):
        raise GraphError(f"{path}: run must be a mapping")
    unknown = set(run_cfg) - {f.name for f in dataclasses.fields(RunSettings)}
    if unknown:
        raise GraphError(f"{path}: run: unknown key(s) {sorted(unknown)}")
    run = RunSettings(**{k: (tuple(v) if k == "record_exclude" else v) for k, v in run_cfg.items()})
    if not (run.max_sim_s > 0 and 0 < run.step_dt_s <= 0.1):
        raise GraphError(f"{path}: run.max_sim_s must be > 0 and run.step_dt_s in (0, 0.1]")
    known = set(available_nodes())
    nodes = []
    seen = set()
    for i, entry in enumerate(raw.get("nodes") or []):
        where = f"{path.name}: nodes[{i}]"
        if isinstance(entry, str):
            entry = {"node": entry}
        if not isinstance(entry, dict) or "node" not in entry:
            raise GraphError(f"{where}: needs 'node: <name>'")
        bad = set(entry) - {"node", "robot", "name", "params_files", "params", "remap"}
        if bad:
            raise GraphError(f"{where}: unknown key(s) {sorted(bad)}")
        node = str(entry["node"])
        if node not in known:
            raise GraphError(f"{where}: unknown node {node!r} (available: {', '.join(sorted(known))})")
        robot = entry.get("robot")
        if robot is not None and str(robot) not in robots:
            raise GraphError(f"{where}: unknown robot {robot!r} (robots: {', '.join(robots) or 'none'})")
        name = str(entry.get("name", node))
        namespace = f"/{robot}" if robot else ""
        files_cfg = entry.get("params_files")
        if files_cfg is None:
            default = paths.share_dir() / "config" / f"{node}.yaml"
            files = [default] if default.is_file() else []
        else:
            files = [_resolve_params_file(str(f), path.parent) for f in files_cfg]
        params = {}
        for f in files:
            params.update(read_params_file(f, f"{namespace}/{name}"))
        over = entry.get("params") or {}
        if not isinstance(over, dict):
            raise GraphError(f"{where}: params must be a mapping")
        params.update(_flatten(over))
        if overrides:
            params.update(overrides.get(f"{namespace}/{name}", {}))
        remap = {str(k): str(v) for k, v in (entry.get("remap") or {}).items()}
        spec = NodeSpec(node, name, namespace, str(robot) if robot else None, files, params, remap)
        if spec.fqn in seen:
            raise GraphError(f"{where}: duplicate node {spec.fqn}")
        seen.add(spec.fqn)
        nodes.append(spec)
    return Graph(path, str(raw.get("name", path.stem)), raw, robots, nodes, run, raw.get("mission") or {})
