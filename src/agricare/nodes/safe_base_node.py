"""safe_base_node: the safety supervisor and the base driver in one process (what a vehicle runs).

As ros2_control keeps its controller manager and hardware interface together, the safe base composes the
safety supervisor (``safety_supervisor_node``'s node, named ``safe_base_node``) with the base driver
(``base_driver_node``'s node, gated): every supervisor cycle hands that cycle's gated command (zero unless
the verdict is RUN or SLOW) to the driver in memory and runs one driver cycle. The gated command never
crosses DDS: nothing is published on ``cmd_vel`` or ``safety/heartbeat``, and the driver subscribes to
neither, so a peer publishing ``cmd_vel`` reaches only the supervisor's ``cmd_vel_smoothed``-side inputs.
Measured wheel speeds feed the supervisor's odometry input in memory too.

Parameters: every ``safety_supervisor_node`` parameter (defaults ``publish_cmd_vel: false``, ``panel:
socket``), plus the driver's: ``driver_params_files`` (ROS 2 params files of ``base_driver_node``, relative to
the config directory, e.g. ``[base_driver_node.yaml, hardware/zlac8015d_shuttle.yaml]``) and ``driver.<name>``
overrides of any :class:`agricare.drivers.base.BaseDriverParams` field. The e-stop comes from the motor
controller's input pin where the driver reads one (``read_estop()``) and from the vehicle's panel on the Unix
socket ``panel_socket_path`` (default ``$XDG_RUNTIME_DIR/agricare/<ns>_panel.sock``), the reset only from the panel.
The motor controller's own communication timeout is armed where the driver offers it (see
``/diagnostics`` ``device_comm_timeout``).

Publishes what both parts publish (``odom``, ``joint_states``, ``battery_state``, ``/tf``, ``safety/state``,
``/diagnostics``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import typing

import yaml

from agricare import paths
from agricare.drivers.base import BaseDriverParams, check_port
from agricare.nodes.base_driver_node import BaseDriverNode
from agricare.nodes.safety_supervisor_node import SafetyNodeParams, SafetySupervisorNode
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError


@dataclasses.dataclass(frozen=True)
class SafeBaseParams(SafetyNodeParams):
    """safety_supervisor_node parameters with the vehicle defaults, plus the driver's parameter files."""

    publish_cmd_vel: bool = False
    panel: str = "socket"
    driver_params_files: tuple[str, ...] = ()


def default_panel_socket(namespace: str) -> str:
    run = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/agricare-{os.getuid()}"
    tag = namespace.strip("/").replace("/", "_")
    return os.path.join(run, "agricare", f"{tag + '_' if tag else ''}panel.sock")


def _read_driver_files(files, node_name: str) -> dict:
    out: dict = {}
    for entry in files:
        path = pathlib.Path(entry)
        if not path.is_absolute():
            path = paths.share_dir() / "config" / path
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(f"{node_name}: parameter 'driver_params_files': {path}: {exc}") from None
        for key, section in data.items():
            if str(key).strip("/") in ("**", "base_driver_node") and isinstance(section, dict):
                out.update(section.get("ros__parameters") or {})
    return out


def _without_node_name(cli_args) -> list[str]:
    """The ROS arguments without a ``__node:=`` remap (and its ``-r``/``--remap`` flag): the driver keeps its name."""
    out: list[str] = []
    args = list(cli_args)
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-r", "--remap") and i + 1 < len(args) and args[i + 1].startswith("__node:="):
            i += 2
            continue
        if not a.startswith("__node:="):
            out.append(a)
        i += 1
    return out


class SafeBaseNode(SafetySupervisorNode):
    PARAMS = SafeBaseParams

    def __init__(self, driver=None, **kwargs):
        super().__init__("safe_base_node", **kwargs)
        driver_params = self._load_driver_params()
        try:
            if driver is None:
                check_port(driver_params)
        except ValueError as exc:
            raise ParameterError(f"{self.get_name()}: driver: {exc}") from exc
        inner = {k: v for k, v in kwargs.items() if k in ("context", "namespace", "enable_rosout")}
        inner["cli_args"] = _without_node_name(kwargs.get("cli_args") or [])
        self.base_driver = BaseDriverNode(driver=driver, gated=True, params=driver_params, **inner)
        self.attach_base(self.base_driver)
        self.composed_nodes = (self.base_driver,)  # the other node objects of this process (graph checks)
        self.get_logger().info(f"safe base: driver '{driver_params.driver}' gated in this process, device "
                               f"communication timeout {self.base_driver.device_comm_timeout}")

    def _panel_socket_path(self) -> str:
        return self.params.panel_socket_path or default_panel_socket(self.get_namespace())

    def _load_driver_params(self) -> BaseDriverParams:
        merged = _read_driver_files(self.params.driver_params_files, self.get_name())
        hints = typing.get_type_hints(BaseDriverParams)
        values = {}
        for f in dataclasses.fields(BaseDriverParams):
            default = merged.get(f.name, f.default)
            name = f"driver.{f.name}"
            self.declare_parameter(name, list(default) if isinstance(default, tuple) else default)
            value = self.get_parameter(name).value
            if hints[f.name] is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[f.name] = value
        try:
            return BaseDriverParams(**values)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{self.get_name()}: driver: {exc}") from exc

    def destroy_node(self):
        self.on_shutdown()
        if getattr(self, "base_driver", None) is not None:  # absent when the start failed
            self.base_driver.destroy_node()
        return super().destroy_node()


NODE_CLASS = SafeBaseNode


def main(args=None):
    return run_node(SafeBaseNode, args)


if __name__ == "__main__":
    main()
