"""base_driver_node: cmd_vel -> wheel commands on real motor controllers (or software), odometry back.

Parameters: :class:`agricare.drivers.base.BaseDriverParams` (defaults in ``config/base_driver_node.yaml``);
``driver`` picks the hardware: ``roboclaw`` (packet serial), ``ascii`` (ros_arduino_bridge style),
``modbus`` (ZLAC8015D-class hub motors, register map YAML) or ``sim`` (no hardware, commands integrated in
software).

Topics (relative, per robot namespace):

On a vehicle this node runs *inside the safe base* (``safe_base_node``): constructed with ``gated=True`` it
subscribes to nothing, has no timer, and moves the wheels only through :meth:`BaseDriverNode.drive`, which
the safety supervisor in the same process calls once per cycle with that cycle's gated command.

Standalone (``gated=False``, bench tests of a driver with the wheels off the ground) it takes:

- sub ``cmd_vel`` (geometry_msgs/TwistStamped, COMMAND_QOS). A stamp of 0, in the future or older than
  ``cmd_timeout_s`` / ``cmd_max_age_s`` is refused; an accepted one is applied only until its stamp (the
  decision's time) is that old.
- sub ``safety/heartbeat`` (std_msgs/Header, SENSOR_QOS): with ``require_heartbeat`` (default true) the
  motors stay stopped unless a heartbeat saying ``RUN`` or ``SLOW`` (``frame_id``) arrived within
  ``heartbeat_timeout_s``. Any peer can publish both: never run a vehicle with people near it this way.
- pub ``odom`` (nav_msgs/Odometry, STATE_QOS), ``joint_states`` (sensor_msgs/JointState, RELIABLE_QOS),
  ``battery_state`` (sensor_msgs/BatteryState, SENSOR_QOS, 1 Hz when the device reports a voltage),
  ``/tf`` odom -> base_link (if ``publish_tf``), ``/diagnostics``.

Stops the motors when cmd_vel is older than ``cmd_timeout_s`` (or its header stamp is), when the heartbeat
is stale, on a device fault, on any link error (then reconnects with exponential backoff; a command received
before the link came back is never replayed, and after a reconnect the motors stay stopped until a zero
command arrives: no motion by itself) and on shutdown. The same holds at start (a driver process restarted after
a crash keeps the wheels still on a command stream that never stopped, until a zero command) and after a stalled
cycle (no exchange with the device for longer than its own communication timeout ``comm_timeout_s``: the process
was frozen and the device has stopped the wheels itself; reported once as an error on ``/diagnostics``).
"""

from __future__ import annotations

import math

from geometry_msgs.msg import TransformStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import BatteryState, JointState
from std_msgs.msg import Header

from agricare.drivers.base import BaseDriverParams, DriveLoop, StepResult, check_port
from agricare.ros.convert import from_stamp, to_stamp, yaw_to_quaternion_msg
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS, STATE_QOS

try:  # built by the interfaces step; without it /tf is not published
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - depends on the install
    TFMessage = None


class BaseDriverNode(ManagedNode):
    """Thin ROS wrapper around :class:`agricare.drivers.base.DriveLoop`."""

    def __init__(self, driver=None, gated: bool = False, params: BaseDriverParams | None = None, **kwargs):
        super().__init__("base_driver_node", **kwargs)
        self.gated = bool(gated)
        self.params = p = params if params is not None else load_params(self, BaseDriverParams)
        try:
            if driver is None:
                check_port(p)
            self.loop = DriveLoop(p, driver=driver)
        except ValueError as exc:
            raise ParameterError(f"{self.get_name()}: {exc}") from exc
        self.diag = Diagnostics(self, "base driver", hardware_id=f"{p.driver}:{p.port}" if p.port else p.driver)
        self._odom_pub = self.create_publisher(Odometry, "odom", STATE_QOS)
        self._joint_pub = self.create_publisher(JointState, "joint_states", RELIABLE_QOS)
        self._battery_pub = self.create_publisher(BatteryState, "battery_state", SENSOR_QOS)
        self._tf_pub = None
        if p.publish_tf:
            if TFMessage is None:
                self.get_logger().warn("tf2_msgs is not available: odom -> base_link is not published on /tf")
            else:
                self._tf_pub = self.create_publisher(TFMessage, "/tf", RELIABLE_QOS)
        self.stale_commands = 0
        self.refused_heartbeats = 0
        self.last_result: StepResult | None = None
        self._last_battery_s = -math.inf
        self._shut = False
        self._timer = None
        if not self.gated:
            self.create_subscription(TwistStamped, "cmd_vel", self._on_cmd_vel, COMMAND_QOS)
            self.create_subscription(Header, "safety/heartbeat", self._on_heartbeat, SENSOR_QOS)
            self._timer = self.create_timer(1.0 / p.loop_rate_hz, self._on_timer)
        self.device_comm_timeout = self._configure_device_timeout()
        self.diag.stale("starting", driver=p.driver, port=p.port)
        self.autostart()

    def _configure_device_timeout(self) -> str:
        """Arm the motor controller's own communication timeout (stops the wheels if this process hangs),
        where the driver offers it (``configure_comm_timeout(seconds)``). Returns what was done."""
        comm = getattr(self.params, "comm_timeout_s", None)
        if comm is not None:  # drivers that take it as a parameter arm it themselves at every connect
            return f"{comm:g} s, armed by the driver at connect" if comm > 0 else "left at the device's setting"
        hook = getattr(self.loop.driver, "configure_comm_timeout", None)
        if not callable(hook):
            return f"not offered by driver '{self.params.driver}'"
        try:
            hook(self.params.cmd_timeout_s)
        except Exception as exc:  # reported, and the software watchdogs still apply
            self.get_logger().error(f"device communication timeout not set: {exc!r}")
            return f"failed: {exc!r}"
        return f"{self.params.cmd_timeout_s:g} s"

    # ------------------------------------------------------------------ the safe base
    def drive(self, v_mps: float, w_radps: float) -> None:
        """One cycle with the gated command of the safety supervisor's cycle (safe base, in memory)."""
        now = self._now()
        if not self.active:  # deactivated: the wheels get a zero command
            v_mps = w_radps = 0.0
        self.loop.set_command(v_mps, w_radps, now)
        self.loop.heartbeat(now)
        self._on_timer()

    def odometry(self):
        """Measured ``(v_mps, w_radps)`` for the supervisor, None while the link is down."""
        if not self.loop.connected or self.loop.last_feedback is None:
            return None
        return float(self.loop.odometry.v_mps), float(self.loop.odometry.w_radps)

    def estop_input(self):
        """The e-stop circuit as the motor controller reads it on an input pin (``read_estop()`` of the driver,
        where it has one): True pressed, False released, None when not available (then the panel reports)."""
        read = getattr(self.loop.driver, "read_estop", None)
        if not callable(read) or not self.loop.connected:
            return None
        try:
            return bool(read())
        except Exception as exc:  # a failed read is no "released"
            self.get_logger().error(f"e-stop input not readable: {exc!r}", throttle_duration_sec=1.0)
            return None

    def stop(self) -> None:
        self.on_shutdown()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs
    def _on_cmd_vel(self, msg: TwistStamped) -> None:
        if not self.active:  # an inactive driver commands nothing (stop_outputs zeroed the wheels)
            return
        now = self._now()
        stamp = from_stamp(msg.header.stamp)
        limit = min(self.params.cmd_timeout_s, self.params.cmd_max_age_s)
        if not (math.isfinite(stamp) and 0.0 < stamp <= now + 0.05 and now - stamp <= limit):
            self.stale_commands += 1  # unstamped, from the future or already too old: ignore it
            return
        # the command's time is its decision's stamp (the clock the safety loop made it on): the loop's
        # watchdogs then stop the wheels once the decision is out of date, not once the message is
        if not self.loop.set_command(msg.twist.linear.x, msg.twist.angular.z, min(stamp, now)):
            self.get_logger().warn("cmd_vel with NaN/inf ignored: stopping", throttle_duration_sec=1.0)

    def _on_heartbeat(self, msg: Header) -> None:
        if msg.frame_id not in ("RUN", "SLOW"):  # the supervisor's verdict is in frame_id: a stop is no go
            self.refused_heartbeats += 1
            self.loop.heartbeat(-math.inf)  # a stop verdict ends the permission at once
            self.loop.set_command(0.0, 0.0, self._now())
            return
        self.loop.heartbeat(self._now())

    # ------------------------------------------------------------------ cycle
    def _on_timer(self) -> None:
        if self._shut:
            return
        now = self._now()
        try:
            r = self.loop.step(now)
        except Exception as exc:  # never let a driver bug kill the node: treat it as a lost link
            self.get_logger().error(f"driver step failed: {exc!r}", throttle_duration_sec=1.0)
            self.loop._link_lost(now, f"unexpected: {exc!r}")
            r = StepResult(False, (0.0, 0.0), "link lost", None, "error", f"unexpected error: {exc!r}")
        self.last_result = r
        if r.connected and r.feedback is not None:
            self._publish_state(now)
        self._report(r)

    def _publish_state(self, now: float) -> None:
        p, loop = self.params, self.loop
        stamp = to_stamp(now)
        x, y, yaw = (float(v) for v in loop.odometry.pose)
        odom = Odometry()
        odom.header.stamp = stamp
        odom.header.frame_id = p.odom_frame
        odom.child_frame_id = p.base_frame
        odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
        odom.pose.pose.orientation = yaw_to_quaternion_msg(yaw)
        odom.pose.covariance = [float(v) for v in loop.odometry.pose_covariance_6x6().ravel()]
        odom.twist.twist.linear.x = float(loop.odometry.v_mps)
        odom.twist.twist.angular.z = float(loop.odometry.w_radps)
        odom.twist.covariance = [float(v) for v in
                                 loop.odometry.twist_covariance_6x6(1.0 / p.loop_rate_hz).ravel()]
        self._odom_pub.publish(odom)
        js = JointState()
        js.header.stamp = stamp
        js.name = [p.left_joint, p.right_joint]
        js.position = [float(a) for a in loop.wheel_angle_rad]
        js.velocity = [float(v) for v in loop.wheel_speed_radps]
        self._joint_pub.publish(js)
        if self._tf_pub is not None:
            tf = TransformStamped()
            tf.header.stamp = stamp
            tf.header.frame_id = p.odom_frame
            tf.child_frame_id = p.base_frame
            tf.transform.translation.x, tf.transform.translation.y = x, y
            tf.transform.rotation = yaw_to_quaternion_msg(yaw)
            self._tf_pub.publish(TFMessage(transforms=[tf]))
        if math.isfinite(loop.battery_v) and now - self._last_battery_s >= 1.0:
            self._last_battery_s = now
            b = BatteryState()
            b.header.stamp = stamp
            b.voltage = float(loop.battery_v)
            b.present = True
            b.percentage = math.nan
            b.current = math.nan
            b.charge = math.nan
            b.capacity = math.nan
            b.design_capacity = math.nan
            self._battery_pub.publish(b)

    def _report(self, r: StepResult) -> None:
        loop, st = self.loop, self.loop.driver.stats
        values = dict(driver=self.params.driver, port=self.params.port, connected=r.connected,
                      stop_reason=r.stop_reason, reconnects=loop.reconnects, transactions=st.transactions,
                      retries=st.retries, checksum_errors=st.checksum_errors, timeouts=st.timeouts,
                      protocol_errors=st.protocol_errors, link_errors=st.link_errors,
                      odom_glitches=loop.odom_glitches, stale_commands=self.stale_commands,
                      refused_heartbeats=self.refused_heartbeats, device_comm_timeout=self.device_comm_timeout,
                      battery_v=f"{loop.battery_v:.2f}")
        if not r.connected:
            # a stall found by a cycle whose exchange then failed is reported with the link: it is the fault
            stall = f"{r.stall}; " if r.stall else ""
            self.diag.error(f"{stall}link down, motors stopped: {loop.last_error}", **values)
        elif r.level == "error":
            self.diag.error(r.message, **values)
        elif r.level == "warn":
            self.diag.warn(f"stopped: {r.stop_reason}", **values)
        else:
            self.diag.ok("driving" if not r.stop_reason else "stopped: waiting for cmd_vel", **values)

    # ------------------------------------------------------------------ shutdown
    def stop_outputs(self) -> None:
        """Deactivated: the wheels get a zero command; odometry keeps being read and published."""
        if not self._shut:
            self.loop.set_command(0.0, 0.0, self._now())

    def on_shutdown(self, state=None):
        """Stop the motors and close the port (lifecycle shutdown, or run_node before the node is destroyed)."""
        self.active = False
        if not self._shut:
            self._shut = True
            self.loop.shutdown()
            self.diag.stale("shut down, motors stopped", driver=self.params.driver)
        return TransitionCallbackReturn.SUCCESS if state is not None else None

    def destroy_node(self):
        self.on_shutdown()
        return super().destroy_node()


def main(args=None):
    return run_node(BaseDriverNode, args)


if __name__ == "__main__":
    main()
