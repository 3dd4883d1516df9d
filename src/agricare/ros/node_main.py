"""The common ``main`` of every agricare node: init, construct, spin, clean shutdown.

Signals: rclpy's own SIGINT handler shuts the ROS context down at once, so a node's last zero command
would go out on a dead publisher ("publisher's context is invalid") and the robot would keep the last
non-zero command it got. ``run_node`` therefore installs its own SIGINT/SIGTERM handlers: the signal
only ends the spin; ``on_shutdown()`` (zero velocity, motors stopped) runs while the context is still
valid, the zero command is given a moment to leave, and only then is the context shut down. A steady
clock timer wakes the executor every ``WAKE_PERIOD_S`` so a signal is handled even when nothing else
arrives (a dead simulator stops /clock and every sim-time timer with it).

Liveness: with ``AGRICARE_ALIVE_PERIOD_S`` set in the environment (the multi-process runner sets it), the
same timer publishes the node's full name on ``/agricare/alive`` (std_msgs/String, best effort) every
period, from the executor thread: a node whose executor stops (frozen process, callback stuck) goes
silent and its supervisor reports it as not answering.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException

from agricare.ros.guard import guard_callbacks
from agricare.ros.params import ParameterError

WAKE_PERIOD_S = 0.2
ALIVE_TOPIC = "/agricare/alive"
FLUSH_S = 0.2   # after on_shutdown: time for the last (zero) command to reach its subscribers


class _Stop(KeyboardInterrupt):
    """Raised by the signal handlers: ends the spin like Ctrl-C."""


def _install_signal_handlers():
    def _handler(signum, _frame):
        raise _Stop(signal.Signals(signum).name)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, _handler)
        except ValueError:   # not the main thread (tests): keep rclpy's default behaviour
            pass
    return old


def _restore(old):
    for sig, h in old.items():
        try:
            signal.signal(sig, h)
        except ValueError:
            pass


def _add_wake_timer(node):
    """Steady-clock timer: wakes the executor for signals; publishes liveness when asked to."""
    from rclpy.clock import Clock, ClockType

    period = os.environ.get("AGRICARE_ALIVE_PERIOD_S")
    pub = None
    msg = None
    if period:
        from std_msgs.msg import String

        from agricare.ros.qos import SENSOR_QOS

        pub = node.create_publisher(String, ALIVE_TOPIC, SENSOR_QOS)
        msg = String(data=node.get_fully_qualified_name())
    try:
        wake = min(WAKE_PERIOD_S, float(period)) if period else WAKE_PERIOD_S
    except ValueError:
        wake = WAKE_PERIOD_S

    def _tick():
        if pub is not None:
            pub.publish(msg)

    return node.create_timer(wake, _tick, clock=Clock(clock_type=ClockType.STEADY_TIME))


def run_node(node_class, args=None) -> int:
    """Run one node until Ctrl-C, SIGTERM or shutdown. Bad parameters exit with code 2 and one clear line.

    A node that has to stop actuators on the way out implements ``on_shutdown()``; it is called before
    the node is destroyed and before the context is shut down, while publishers still work.
    """
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    old = _install_signal_handlers()
    node = None
    code = 0
    try:
        node = node_class()
        guard_callbacks(node)
        _add_wake_timer(node)
        rclpy.spin(node)
    except ParameterError as exc:
        if not exc.logged:  # load_params logs it FATAL through the node (console and /rosout)
            print(f"[FATAL] {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # a second signal during the safe stop must not cut it short
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except ValueError:
                pass
        if node is not None:
            hook = getattr(node, "on_shutdown", None)
            if callable(hook):
                try:
                    hook()
                    time.sleep(FLUSH_S)   # shutdown path only: let the zero command leave before teardown
                except Exception as exc:  # shutdown must go on
                    print(f"[WARN] on_shutdown failed: {exc}", file=sys.stderr)
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
        _restore(old)
    if args is None and code:
        sys.exit(code)
    return code
