"""The base driver loop (no ROS): parameters, driver factory, command watchdogs, reconnects, odometry.

:class:`DriveLoop` is what ``base_driver_node`` runs every cycle. It is clock-free: the caller passes the
time. Per :meth:`DriveLoop.step`:

1. Not connected: (re)open the driver when the :class:`~agricare.drivers.link.Backoff` allows it.
2. Choose the wheel command: zero unless a ``cmd_vel`` was decided *after* the link came up (an old command is
   never replayed after a reconnect), a zero command has been seen since the loop started, the link came back
   or a cycle stalled longer than the device's own communication timeout (no motion by itself), it is younger
   than ``cmd_timeout_s`` and ``cmd_max_age_s`` (its time is the decision's stamp, so a late or starved safety
   loop stops the wheels), the safety heartbeat is younger
   than ``heartbeat_timeout_s`` (if required) and the device reports no fault. Otherwise the body twist is
   limited by :class:`agricare.core.control.kinematics.DiffDrive` (curvature kept) and converted to wheel
   speeds; the driver clamps again to ``max_wheel_radps`` before the wire.
3. Exchange with the device. A :class:`~agricare.drivers.link.LinkError` stops the motors (best effort),
   closes the port and schedules a reconnect with exponential backoff.
4. Encoder deltas (32-bit wrap safe) update :class:`agricare.core.control.odometry.WheelOdometry`; the
   first reading after a (re)connect only sets the baseline, implausible jumps are dropped and counted.
"""

from __future__ import annotations

import dataclasses
import math
import os

from agricare.core.control.kinematics import DiffDrive, DiffDriveParams
from agricare.core.control.odometry import OdometryParams, WheelOdometry, encoder_delta
from agricare.core.validation import require, require_positive
from agricare.drivers.link import (
    SERIAL_ERRORS,
    Backoff,
    DriverError,
    LinkError,
    LinkStats,
    MotorDriver,
    WheelFeedback,
    clamp,
)

DRIVERS = ("roboclaw", "ascii", "modbus", "sim")


@dataclasses.dataclass(frozen=True)
class BaseDriverParams:
    """Parameters of ``base_driver_node`` (SI units; defaults ship in ``config/base_driver_node.yaml``)."""

    driver: str = "sim"                 # roboclaw | ascii | modbus | sim (no hardware)
    port: str = ""                      # serial device (required unless driver == sim)
    baud: int = 115200
    wheel_radius_m: float = 0.1
    wheel_separation_m: float = 0.5
    ticks_per_rev: float = 4096.0       # encoder counts per wheel revolution
    max_speed_mps: float = 1.0
    max_yaw_rate_radps: float = 1.5
    max_wheel_radps: float = 15.0
    cmd_timeout_s: float = 0.5          # cmd_vel older than this -> zero
    cmd_max_age_s: float = 0.25         # a decision (cmd_vel's stamp: when the safety loop made it) older than
                                        # this is not applied: a late or starved safety loop stops the wheels
    heartbeat_timeout_s: float = 0.5    # safety/heartbeat older than this -> zero
    require_heartbeat: bool = True
    publish_tf: bool = True
    loop_rate_hz: float = 20.0
    io_timeout_s: float = 0.05          # reply timeout per attempt
    io_attempts: int = 3                # attempts per transaction before the link counts as lost
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 5.0
    aux_every_n: int = 10               # battery / error status every n cycles (roboclaw)
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    left_joint: str = "left_wheel_joint"
    right_joint: str = "right_wheel_joint"
    roboclaw_address: int = 128         # 0x80
    pid_rate_hz: float = 30.0           # ascii bridge PID frame rate
    ascii_pid_gains: str = ""           # "Kp:Kd:Ki:Ko" sent with 'u' on connect; empty: keep the board's
    modbus_device_id: int = 1
    modbus_right_inverted: bool = True
    register_map_file: str = "config/hardware/zlac8015d.yaml"
    modbus_write_delay_s: float = 0.01  # silence after each write (>= 3.5 characters; ZLAC needs it)
    modbus_startup_check_s: float = 1.0  # commanded vs reported vs encoder speed check at start (0 = off)
    ascii_boot_wait_s: float = 2.0      # opening resets Uno/Mega boards: wait for the bootloader
    comm_timeout_s: float = 0.5         # the controller's own serial/communication timeout, set at connect
                                        # (roboclaw, modbus): a hung host stops the wheels; 0 = leave it

    def __post_init__(self):
        require(self.driver in DRIVERS, "driver", f"must be one of {', '.join(DRIVERS)}", self.driver)
        require(self.driver == "sim" or bool(self.port.strip()), "port",
                f"must be set for driver '{self.driver}'", self.port)
        require(self.baud > 0, "baud", "must be > 0", self.baud)
        require_positive(self, "wheel_radius_m", "wheel_separation_m", "ticks_per_rev", "max_speed_mps",
                         "max_yaw_rate_radps", "max_wheel_radps", "cmd_timeout_s", "cmd_max_age_s",
                         "heartbeat_timeout_s", "loop_rate_hz", "io_timeout_s", "reconnect_initial_s",
                         "reconnect_max_s", "pid_rate_hz")
        require(self.reconnect_max_s >= self.reconnect_initial_s, "reconnect_max_s",
                "must be >= reconnect_initial_s", self.reconnect_max_s)
        require(1 <= self.io_attempts <= 10, "io_attempts", "must be 1..10", self.io_attempts)
        require(self.aux_every_n >= 1, "aux_every_n", "must be >= 1", self.aux_every_n)
        require(0x80 <= self.roboclaw_address <= 0x87, "roboclaw_address", "must be 128..135",
                self.roboclaw_address)
        require(1 <= self.modbus_device_id <= 247, "modbus_device_id", "must be 1..247", self.modbus_device_id)
        require(self.modbus_write_delay_s >= 0.00175 or (self.baud <= 19200 and
                self.modbus_write_delay_s >= 38.5 / self.baud), "modbus_write_delay_s",
                "must be >= the Modbus RTU 3.5-character gap (1.75 ms above 19200 baud)",
                self.modbus_write_delay_s)
        require(self.modbus_startup_check_s >= 0, "modbus_startup_check_s", "must be >= 0",
                self.modbus_startup_check_s)
        require(self.ascii_boot_wait_s >= 0, "ascii_boot_wait_s", "must be >= 0", self.ascii_boot_wait_s)
        require(0 <= self.comm_timeout_s <= 25.5, "comm_timeout_s", "must be 0 (leave the device's) .. 25.5 s",
                self.comm_timeout_s)
        require(self.ascii_pid_gains == "" or _parse_gains(self.ascii_pid_gains) is not None, "ascii_pid_gains",
                "must be empty or 'Kp:Kd:Ki:Ko' (four integers)", self.ascii_pid_gains)
        for name in ("odom_frame", "base_frame", "left_joint", "right_joint"):
            require(bool(getattr(self, name)), name, "must not be empty")


def _parse_gains(text: str) -> tuple[int, int, int, int] | None:
    """'Kp:Kd:Ki:Ko' -> four ints, None if empty or malformed."""
    try:
        gains = tuple(int(v) for v in text.split(":"))
    except ValueError:
        return None
    return gains if len(gains) == 4 else None  # type: ignore[return-value]


def check_port(params: BaseDriverParams) -> None:
    """Start-time check that the configured port exists and is a character device (ValueError naming it)."""
    if params.driver == "sim":
        return
    path = params.port
    require(os.path.exists(path), "port", "does not exist", path)
    import stat

    require(stat.S_ISCHR(os.stat(path).st_mode), "port", "is not a serial (character) device", path)


def make_driver(params: BaseDriverParams) -> MotorDriver:
    """Build the driver named by ``params.driver`` (does not open it)."""
    p = params
    if p.driver == "sim":
        return SimMotorDriver(p.ticks_per_rev, p.max_wheel_radps)
    if p.driver == "roboclaw":
        from agricare.drivers.roboclaw import RoboClawDriver

        return RoboClawDriver(p.port, p.baud, p.roboclaw_address, p.ticks_per_rev, p.max_wheel_radps,
                              p.io_timeout_s, p.io_attempts, p.aux_every_n, comm_timeout_s=p.comm_timeout_s)
    if p.driver == "ascii":
        from agricare.drivers.ascii_bridge import AsciiBridgeDriver

        return AsciiBridgeDriver(p.port, p.baud, p.ticks_per_rev, p.pid_rate_hz, p.max_wheel_radps,
                                 p.io_timeout_s, p.io_attempts, pid_gains=_parse_gains(p.ascii_pid_gains),
                                 boot_wait_s=p.ascii_boot_wait_s)
    from agricare import paths
    from agricare.drivers.modbus_hub import ModbusHubDriver, RegisterMap

    try:
        regmap = RegisterMap.from_yaml(paths.resolve(p.register_map_file))
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"parameter 'register_map_file': {exc}") from exc
    if abs(regmap.encoder_ticks_per_rev - p.ticks_per_rev) > 1e-9:
        raise ValueError(f"parameter 'ticks_per_rev' ({p.ticks_per_rev:g}) disagrees with the register map's "
                         f"encoder_ticks_per_rev ({regmap.encoder_ticks_per_rev:g}) in {p.register_map_file}")
    comm = p.comm_timeout_s if regmap.registers.get("comm_timeout") is not None else 0.0
    return ModbusHubDriver(p.port, regmap, p.baud, p.modbus_device_id, p.max_wheel_radps, p.io_timeout_s,
                           p.io_attempts, p.modbus_right_inverted, write_delay_s=p.modbus_write_delay_s,
                           comm_timeout_s=comm, startup_check_s=p.modbus_startup_check_s)


class SimMotorDriver(MotorDriver):
    """No hardware: wheels follow the (clamped) command exactly; encoders integrate it over ``now_s``."""

    name = "sim"

    def __init__(self, ticks_per_rev: float = 4096.0, max_wheel_radps: float = 15.0):
        self.ticks_per_rad = float(ticks_per_rev) / (2.0 * math.pi)
        self.max_wheel_radps = float(max_wheel_radps)
        self.angle_rad = [0.0, 0.0]
        self.speed_radps = [0.0, 0.0]
        self.commands: list[tuple[float, float]] = []
        self._t: float | None = None
        self._stats = LinkStats()
        self.fail_next = 0  # test hook: raise LinkError this many times

    @property
    def stats(self) -> LinkStats:
        return self._stats

    def open(self) -> None:
        self._stats.opens += 1
        self._t = None

    def close(self) -> None:
        pass

    def send_stop(self) -> None:
        self.speed_radps = [0.0, 0.0]
        self.commands.append((0.0, 0.0))

    def configure_comm_timeout(self, seconds: float) -> None:
        self.comm_timeout_s = float(seconds)  # nothing to configure; kept so callers need no special case

    def exchange(self, left_radps: float, right_radps: float, now_s: float) -> WheelFeedback:
        if self.fail_next > 0:
            self.fail_next -= 1
            self._stats.link_errors += 1
            raise LinkError("sim: injected link failure")
        if self._t is not None and now_s > self._t:
            dt = now_s - self._t
            for i in range(2):
                self.angle_rad[i] += self.speed_radps[i] * dt
        self._t = now_s
        lim = self.max_wheel_radps
        self.speed_radps = [clamp(left_radps, lim), clamp(right_radps, lim)]
        self.commands.append(tuple(self.speed_radps))
        self._stats.transactions += 1
        return WheelFeedback(int(math.floor(self.angle_rad[0] * self.ticks_per_rad)),
                             int(math.floor(self.angle_rad[1] * self.ticks_per_rad)),
                             left_radps=self.speed_radps[0], right_radps=self.speed_radps[1])


@dataclasses.dataclass
class StepResult:
    """What one :meth:`DriveLoop.step` did.

    Attributes
    ----------
    connected : bool
    wheel_cmd_radps : tuple (left, right)
        What was sent (0, 0 when stopped or not connected).
    stop_reason : str
        Why the command is zero ('' when driving).
    feedback : WheelFeedback or None
    level : str
        'ok', 'warn' or 'error' for diagnostics.
    message : str
    stall : str
        The stalled cycle this step found ('driver cycle stalled 2.03 s'; '' none): the process's own fault,
        reported also where the step then lost the link.
    """

    connected: bool
    wheel_cmd_radps: tuple
    stop_reason: str
    feedback: WheelFeedback | None
    level: str
    message: str
    stall: str = ""


class DriveLoop:
    """Clock-free control loop around one :class:`MotorDriver`.

    Parameters
    ----------
    params : BaseDriverParams
    driver : MotorDriver, optional
        Default: :func:`make_driver` (params).
    """

    def __init__(self, params: BaseDriverParams, driver: MotorDriver | None = None,
                 odometry_params: OdometryParams | None = None):
        self.params = params
        self.driver = driver if driver is not None else make_driver(params)
        self.kinematics = DiffDrive(DiffDriveParams(
            wheel_separation_m=params.wheel_separation_m, wheel_radius_m=params.wheel_radius_m,
            max_wheel_speed_radps=params.max_wheel_radps, max_linear_speed_mps=params.max_speed_mps,
            max_angular_speed_radps=params.max_yaw_rate_radps))
        self.odometry = WheelOdometry(odometry_params)
        # a driver whose open resets the device (Arduino) says how far apart reconnects must be
        floor = float(getattr(self.driver, "min_reconnect_s", 0.0))
        self.backoff = Backoff(max(params.reconnect_initial_s, floor), max(params.reconnect_max_s, floor))
        self.rad_per_tick = 2.0 * math.pi / params.ticks_per_rev
        self.connected = False
        self.link_up_s = math.inf
        self.last_error = ""
        self.odom_glitches = 0
        self.reconnects = 0
        self.wheel_angle_rad = [0.0, 0.0]
        self.wheel_speed_radps = [0.0, 0.0]
        self.battery_v = math.nan
        self.last_feedback: WheelFeedback | None = None
        self._cmd: tuple[float, float, float] | None = None  # v, w, received_s
        self._heartbeat_s: float | None = None
        self._baseline: tuple[int, int] | None = None
        self._last_fb_s: float | None = None
        # at start (a driver process restarted after a crash is a start too), after a lost link and after a
        # stalled cycle (process frozen: the device's own communication timeout has stopped the wheels) the
        # motors stay stopped until a zero command arrives: the robot does not drive off on the command stream
        # by itself; something upstream must have stopped and started it again
        self.rearm_needed = True
        self.rearm_why = "driver started"
        self._rearm_since_s = -math.inf   # a zero command decided at or after this time re-arms
        self.stalls = 0
        self._last_exchange_s: float | None = None

    @property
    def stall_limit_s(self) -> float:
        """A gap between two device exchanges longer than this is a stalled cycle: the device's own
        communication timeout (``comm_timeout_s``) where it is armed, else the command timeout."""
        return self.params.comm_timeout_s if self.params.comm_timeout_s > 0 else self.params.cmd_timeout_s

    # ------------------------------------------------------------------ inputs
    def set_command(self, v_mps: float, w_radps: float, received_s: float) -> bool:
        """Store a body twist command made (decided) at ``received_s``; non-finite values are refused (False).
        It is applied while younger than ``cmd_timeout_s`` and ``cmd_max_age_s``."""
        if not (math.isfinite(v_mps) and math.isfinite(w_radps)):
            self._cmd = None
            return False
        self._cmd = (float(v_mps), float(w_radps), float(received_s))
        return True

    def heartbeat(self, received_s: float) -> None:
        self._heartbeat_s = float(received_s)

    # ------------------------------------------------------------------ the cycle
    def _target(self, now_s: float) -> tuple[tuple[float, float], str]:
        p = self.params
        if self._cmd is None:
            return (0.0, 0.0), "no cmd_vel"
        v, w, t = self._cmd
        if self.rearm_needed and v == 0.0 and w == 0.0 and t >= self._rearm_since_s:
            self.rearm_needed = False   # upstream has stopped since: its next command is a deliberate start
        if t < self.link_up_s:
            return (0.0, 0.0), "no cmd_vel since the link came up"
        if now_s - t > p.cmd_timeout_s:
            return (0.0, 0.0), f"cmd_vel older than {p.cmd_timeout_s:g} s"
        if now_s - t > p.cmd_max_age_s:
            return (0.0, 0.0), f"decision older than {p.cmd_max_age_s:g} s (safety loop late)"
        if self.rearm_needed:
            return (0.0, 0.0), f"{self.rearm_why}: stopped until a zero command (no motion by itself)"
        if p.require_heartbeat and (self._heartbeat_s is None or now_s - self._heartbeat_s > p.heartbeat_timeout_s):
            return (0.0, 0.0), f"safety heartbeat older than {p.heartbeat_timeout_s:g} s"
        fb = self.last_feedback
        if fb is not None and fb.fault_code:
            return (0.0, 0.0), f"device fault: {fb.fault_text or fb.fault_code}"
        return self.kinematics.wheel_speeds(v, w), ""

    def step(self, now_s: float) -> StepResult:
        """Run one cycle at time ``now_s`` [s]."""
        if not self.connected:
            if not self.backoff.ready(now_s):
                return StepResult(False, (0.0, 0.0), "link down", None, "error",
                                  f"link down ({self.last_error}); next attempt in "
                                  f"{self.backoff.next_attempt_s - now_s:.2f} s")
            try:
                self.driver.open()
            except (DriverError, *SERIAL_ERRORS) as exc:
                self.last_error = str(exc)
                delay = self.backoff.failed(now_s)
                return StepResult(False, (0.0, 0.0), "link down", None, "error",
                                  f"cannot connect: {exc}; retry in {delay:.2f} s")
            if self.link_up_s != math.inf:
                self.reconnects += 1
                self.rearm_needed, self.rearm_why, self._rearm_since_s = True, "link came back", now_s
            self.connected = True
            self.link_up_s = now_s
            self.backoff.succeeded()
            self._baseline = None
            self.last_feedback = None
            self._last_exchange_s = None
        gap = now_s - self._last_exchange_s if self._last_exchange_s is not None else 0.0
        stall = f"driver cycle stalled {gap:.2f} s" if gap > self.stall_limit_s else ""
        if stall:
            # no exchange for longer than the device's own communication timeout: this process was frozen
            # (SIGSTOP, swapped out, a hung call) and the device has stopped the wheels by itself; a fresh
            # command stream must not start them again on its own
            self.stalls += 1
            self.rearm_needed, self.rearm_why = True, stall
            self._rearm_since_s = now_s
        (left, right), reason = self._target(now_s)
        try:
            fb = self.driver.exchange(left, right, now_s)
        except (DriverError, *SERIAL_ERRORS) as exc:
            self._link_lost(now_s, str(exc))
            # a stalled cycle whose first exchange fails too (a frozen process finds the device answering late)
            # is still this process's fault: named first, else the reconnect (gap 0) would never report it
            return StepResult(False, (0.0, 0.0), "link lost", None, "error",
                              f"{stall}; link lost: {exc}" if stall else f"link lost: {exc}", stall)
        self._last_exchange_s = now_s
        self.last_feedback = fb
        self._odometry(fb, now_s)
        if math.isfinite(fb.battery_v):
            self.battery_v = fb.battery_v
        if fb.fault_code:
            return StepResult(True, (left, right), reason or "device fault", fb, "error",
                              f"device fault: {fb.fault_text or fb.fault_code}")
        level = "ok" if not reason or reason.startswith("no cmd_vel") or reason.startswith("cmd_vel") \
            else "warn"
        if stall:     # a fault of this process (reported as an error once; then the stop waits for a zero)
            level, reason = "error", f"{stall} (longer than the device's own communication timeout, " \
                f"{self.stall_limit_s:g} s): motors stopped until a zero command"
        message = reason or "driving"
        notes = getattr(self.driver, "notes", None)
        if notes:  # what the driver's connect-time checks found
            message += " (" + "; ".join(notes) + ")"
        return StepResult(True, (left, right), reason, fb, level, message, stall)

    def _link_lost(self, now_s: float, why: str) -> None:
        self.last_error = why
        self.driver.stop()  # best effort; the port may be gone
        try:
            self.driver.close()
        except (DriverError, *SERIAL_ERRORS):
            pass
        self.connected = False
        self.wheel_speed_radps = [0.0, 0.0]
        self.backoff.failed(now_s)

    def _odometry(self, fb: WheelFeedback, now_s: float) -> None:
        ticks = (fb.left_ticks, fb.right_ticks)
        if self._baseline is None:
            self._baseline = ticks
            self._last_fb_s = now_s
            return
        dl = encoder_delta(self._baseline[0], ticks[0])
        dr = encoder_delta(self._baseline[1], ticks[1])
        dt = max(now_s - (self._last_fb_s if self._last_fb_s is not None else now_s), 1e-3)
        max_ticks = 3.0 * self.params.max_wheel_radps * dt / self.rad_per_tick + 10
        self._baseline = ticks
        self._last_fb_s = now_s
        if abs(dl) > max_ticks or abs(dr) > max_ticks:
            self.odom_glitches += 1
            return
        a_l, a_r = dl * self.rad_per_tick, dr * self.rad_per_tick
        self.wheel_angle_rad[0] += a_l
        self.wheel_angle_rad[1] += a_r
        self.wheel_speed_radps = [
            fb.left_radps if math.isfinite(fb.left_radps) else a_l / dt,
            fb.right_radps if math.isfinite(fb.right_radps) else a_r / dt,
        ]
        r = self.params.wheel_radius_m
        self.odometry.update_diff_drive(a_l * r, a_r * r, self.params.wheel_separation_m, now_s)

    def shutdown(self) -> None:
        """Stop the motors (best effort: a broken link still gets its port closed) and close the port."""
        if self.connected:
            try:
                self.driver.stop()
            except (DriverError, *SERIAL_ERRORS) as exc:
                self.last_error = f"stop at shutdown failed: {exc}"
        try:
            self.driver.close()
        except (DriverError, *SERIAL_ERRORS):
            pass
        self.connected = False
