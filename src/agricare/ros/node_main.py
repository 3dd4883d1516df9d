"""The common ``main`` of every agricare node: init, construct, spin, clean shutdown."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from agricare.ros.guard import guard_callbacks
from agricare.ros.params import ParameterError


def run_node(node_class, args=None) -> int:
    """Run one node until Ctrl-C or shutdown. Bad parameters exit with code 2 and one clear line.

    A node that has to stop actuators on the way out implements ``on_shutdown()``; it is called before
    the node is destroyed, while publishers still work.
    """
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = node_class()
        guard_callbacks(node)
        rclpy.spin(node)
    except ParameterError as exc:
        if not exc.logged:  # load_params logs it FATAL through the node (console and /rosout)
            print(f"[FATAL] {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            hook = getattr(node, "on_shutdown", None)
            if callable(hook):
                try:
                    hook()
                except Exception as exc:  # shutdown must go on
                    print(f"[WARN] on_shutdown failed: {exc}", file=sys.stderr)
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    if args is None and code:
        sys.exit(code)
    return code
