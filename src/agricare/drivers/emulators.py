"""Device emulators on pseudo-terminals, with a motor/encoder model and fault injection.

Each emulator opens a pty pair (``os.openpty``, raw mode), serves the device side from a background thread
and exposes the slave path as :attr:`PtyEmulator.port`, so a driver opens it through pyserial exactly as a
real port. With ``symlink=path`` the port is also reachable under a stable name that follows
:meth:`PtyEmulator.replug` (like a udev rule).

Fault knobs (:class:`Faults`, change them at any time): random ``garbage`` bytes before a reply, ``truncate``
(reply cut short), ``corrupt`` (bad CRC / checksum / digits), ``delay_s`` (reply delay), ``silent`` (no
reply at all), and :meth:`PtyEmulator.unplug` / :meth:`PtyEmulator.replug` (the pty is closed: the driver's
reads and writes fail; a new pty is created on replug). Fault decisions come from ``random.Random(seed)``,
so a run is reproducible for a given sequence of requests. ``injected`` counts what was done.

Emulators (the device side of each protocol):

- :class:`AsciiBridgeEmulator` - ros_arduino_bridge-style board (``e``, ``m``, ``r``, ``u``, ``b``);
  ``boot_s``: resets when the host opens the port and ignores bytes while booting (Uno/Mega).
- :class:`RoboClawEmulator` - RoboClaw packet serial (commands 14, 16-20, 24, 37, 55, 56, 78, 79, 90);
  ``firmware='old'`` (2-byte status, no 78/79/14), an untuned ``velocity_pid``, the serial timeout.
- :class:`ModbusHubEmulator` - ZLAC8015D-style Modbus-RTU slave (functions 3, 6, 16) with CRC-16/MODBUS;
  ``write_gap_s`` (no reply right after a write), ``counts_per_rev`` (another encoder than the map
  says), the communication-timeout register.
- :class:`GnssEmulator` - NMEA-0183 receiver streaming RMC, VTG, GGA, GST at a fixed rate, or on demand;
  binary frames glued to the sentences, empty geoid separation, course dropped at low speed, any
  sentence order (GST after or before GGA).

Device-side time (motor model integration, reply delays) is the host's monotonic clock: an emulator is a
stand-in for hardware, not a core algorithm.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import random
import select
import struct
import threading
import time
import tty

from agricare.drivers import roboclaw as rc
from agricare.drivers.modbus_hub import RegisterMap, crc16_modbus, rtu_crc_ok, rtu_frame, to_int16


@dataclasses.dataclass
class Faults:
    """Fault injection knobs (probabilities per reply; 0 = never)."""

    garbage_prob: float = 0.0
    truncate_prob: float = 0.0
    corrupt_prob: float = 0.0
    delay_s: float = 0.0
    silent: bool = False


class WheelMotorModel:
    """Two wheels with first-order speed lag and integrating encoders (device units: ticks).

    Parameters
    ----------
    tau_s : float
        Speed time constant [s].
    """

    def __init__(self, tau_s: float = 0.05):
        self.tau_s = float(tau_s)
        self.target_tps = [0.0, 0.0]
        self.speed_tps = [0.0, 0.0]
        self.position_ticks = [0.0, 0.0]

    def step(self, dt_s: float) -> None:
        if dt_s <= 0:
            return
        a = 1.0 - math.exp(-dt_s / self.tau_s) if self.tau_s > 0 else 1.0
        for i in range(2):
            v0 = self.speed_tps[i]
            self.speed_tps[i] += (self.target_tps[i] - v0) * a
            self.position_ticks[i] += 0.5 * (v0 + self.speed_tps[i]) * dt_s

    def counts(self) -> tuple[int, int]:
        return int(math.floor(self.position_ticks[0])), int(math.floor(self.position_ticks[1]))

    def reset(self) -> None:
        self.position_ticks = [0.0, 0.0]


class PtyEmulator:
    """Base class: pty management, the serving thread, fault injection.

    Subclasses implement :meth:`on_bytes` (returns the replies to what arrived) and may override
    :meth:`on_tick` (periodic work) and :meth:`corrupt` (protocol-specific damage).

    Parameters
    ----------
    seed : int
        Seed of the fault/noise generator.
    symlink : str, optional
        Stable path kept pointing at the current pty slave.
    tick_s : float
        Thread poll period [s].
    """

    def __init__(self, seed: int = 0, symlink: str | None = None, tick_s: float = 0.005):
        self.rng = random.Random(seed)
        self.faults = Faults()
        self.symlink = symlink
        self.tick_s = float(tick_s)
        self.injected: collections.Counter = collections.Counter()
        self.requests = 0
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._pending: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_t = None

    # ---------------------------------------------------------------- pty life cycle
    @property
    def port(self) -> str:
        """Path to open with pyserial (the symlink if one was asked for)."""
        return self.symlink or self._slave_path

    @property
    def slave_path(self) -> str:
        return self._slave_path

    @property
    def plugged(self) -> bool:
        return self._master is not None

    #: False: the emulator does not hold the slave side open, so it sees the host open the port
    #: (:meth:`on_host_open`; reading the master fails with EIO while no host has it open)
    keep_slave_open = True

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        self._host_open = False
        if not self.keep_slave_open:
            os.close(slave)
            self._slave = None
        if self.symlink:
            tmp = self.symlink + ".tmp"
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            os.symlink(self._slave_path, tmp)
            os.replace(tmp, self.symlink)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        self._pending.clear()
        if self.symlink:
            try:
                os.unlink(self.symlink)
            except FileNotFoundError:
                pass

    def start(self):
        """Open the pty and start serving; returns self."""
        with self._lock:
            if self._thread is not None:
                return self
            self._open_pty()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the pty (idempotent)."""
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=2.0)
        with self._lock:
            self._close_pty()

    def unplug(self) -> None:
        """Pull the cable: close the pty; the driver's reads/writes fail from now on."""
        with self._lock:
            self._close_pty()
            self.injected["unplug"] += 1

    def replug(self) -> str:
        """Plug back in: a new pty (new slave path; the symlink follows). Returns :attr:`port`."""
        with self._lock:
            if self._master is None:
                self._open_pty()
                self.injected["replug"] += 1
                self.on_replug()
        return self.port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------------- serving
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self._master
            if master is None:
                time.sleep(self.tick_s)
                self._tick()
                continue
            try:
                ready, _, _ = select.select([master], [], [], self.tick_s)
            except (OSError, ValueError):
                ready = []
            data = b""
            host_closed = False
            if ready:
                with self._lock:
                    if self._master == master:
                        try:
                            data = os.read(master, 4096)
                        except (BlockingIOError, InterruptedError):
                            data = b""
                        except OSError:
                            data = b""
                            host_closed = True  # EIO: nobody has the port open
            now = time.monotonic()
            if not self.keep_slave_open:
                if host_closed:
                    self._host_open = False
                    time.sleep(self.tick_s)
                elif not self._host_open:
                    self._host_open = True
                    with self._lock:
                        self.on_host_open(now)
            self._tick()
            if data:
                with self._lock:
                    for reply in self.on_bytes(data, now):
                        self._queue(reply, now)
            self._flush(time.monotonic())

    def _tick(self) -> None:
        now = time.monotonic()
        dt = 0.0 if self._last_t is None else now - self._last_t
        self._last_t = now
        with self._lock:
            for out in self.on_tick(dt, now) or ():
                self._queue(out, now, replies=False)

    def _queue(self, reply: bytes, now: float, replies: bool = True) -> None:
        """Apply the fault knobs to one outgoing message and schedule it."""
        f = self.faults
        if f.silent:
            self.injected["silent"] += 1
            return
        if reply and f.truncate_prob and self.rng.random() < f.truncate_prob:
            reply = reply[: self.rng.randrange(0, len(reply))]
            self.injected["truncate"] += 1
        elif reply and f.corrupt_prob and self.rng.random() < f.corrupt_prob:
            reply = self.corrupt(reply)
            self.injected["corrupt"] += 1
        if f.garbage_prob and self.rng.random() < f.garbage_prob:
            reply = self.garbage() + reply
            self.injected["garbage"] += 1
        delay = f.delay_s if replies else 0.0
        if delay > 0:
            self.injected["delay"] += 1
        self._pending.append((now + delay, reply))

    def _flush(self, now: float) -> None:
        with self._lock:
            if self._master is None or not self._pending:
                return
            keep = []
            for due, data in self._pending:
                if due > now:
                    keep.append((due, data))
                    continue
                try:
                    os.write(self._master, data)
                except (BlockingIOError, OSError):
                    self.injected["write_dropped"] += 1
            self._pending = keep

    # ---------------------------------------------------------------- protocol hooks
    def on_bytes(self, data: bytes, now: float) -> list[bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_tick(self, dt_s: float, now: float):
        return ()

    def on_replug(self) -> None:
        pass

    def on_host_open(self, now: float) -> None:
        """The host opened the port (only with ``keep_slave_open = False``)."""

    def corrupt(self, reply: bytes) -> bytes:
        """Default damage: flip one bit of the last byte (the CRC of binary protocols)."""
        b = bytearray(reply)
        b[-1] ^= 1 << self.rng.randrange(8)
        return bytes(b)

    def garbage(self) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 8)))


# ====================================================================== ASCII bridge
class AsciiBridgeEmulator(PtyEmulator):
    """ros_arduino_bridge-style board: line commands, CR terminated, replies end with CR LF.

    Parameters
    ----------
    pid_rate_hz : float
        PID frame rate; ``m`` speeds are ticks per frame.
    auto_stop_s : float
        Motors stop when no ``m`` came for this long (0 disables).
    baud : int
        Reported by ``b``.
    boot_s : float
        Arduino Uno/Mega behaviour: opening the port resets the board (DTR), and the bootloader ignores
        what arrives for this long [s]. 0 = no reset (a board without auto-reset).
    """

    def __init__(self, seed: int = 0, symlink: str | None = None, pid_rate_hz: float = 30.0,
                 auto_stop_s: float = 2.0, baud: int = 57600, tau_s: float = 0.05, boot_s: float = 0.0):
        self.boot_s = float(boot_s)
        self.keep_slave_open = self.boot_s <= 0
        self.resets = 0
        self.booting_until = -1.0
        super().__init__(seed, symlink)
        self.model = WheelMotorModel(tau_s)
        self.pid_rate_hz = float(pid_rate_hz)
        self.auto_stop_s = float(auto_stop_s)
        self.baud = int(baud)
        self.pid = (20, 12, 0, 50)
        self.motor_commands: list[tuple[int, int]] = []
        self._buf = bytearray()
        self._last_m = None

    def on_tick(self, dt_s, now):
        if self.auto_stop_s and self._last_m is not None and now - self._last_m > self.auto_stop_s:
            self.model.target_tps = [0.0, 0.0]
            self._last_m = None
            self.injected["auto_stop"] += 1
        self.model.step(dt_s)
        return ()

    def on_host_open(self, now):
        self.resets += 1
        self.booting_until = now + self.boot_s
        self.model.target_tps = [0.0, 0.0]
        self._buf.clear()

    def on_bytes(self, data, now):
        out = []
        if now < self.booting_until:
            self.injected["boot_dropped"] += 1  # the bootloader is running: bytes are lost
            return out
        self._buf.extend(data)
        while True:
            i = self._buf.find(b"\r")
            if i < 0:
                if len(self._buf) > 128:
                    self._buf.clear()
                return out
            line = bytes(self._buf[:i]).strip(b"\n ")
            del self._buf[: i + 1]
            if line:
                self.requests += 1
                out.append(self._command(line, now) + b"\r\n")

    def _command(self, line: bytes, now: float) -> bytes:
        cmd, args = line[:1], line[1:].split()
        try:
            if cmd == b"e":
                left, right = self.model.counts()
                return b"%d %d" % (left, right)
            if cmd == b"m" and len(args) == 2:
                left, right = int(args[0]), int(args[1])
                self.motor_commands.append((left, right))
                self.model.target_tps = [left * self.pid_rate_hz, right * self.pid_rate_hz]
                self._last_m = now
                return b"OK"
            if cmd == b"r":
                self.model.reset()
                return b"OK"
            if cmd == b"u" and len(args) == 1:
                gains = tuple(int(v) for v in args[0].split(b":"))
                if len(gains) == 4:
                    self.pid = gains
                    return b"OK"
            if cmd == b"b":
                return b"%d" % self.baud
        except ValueError:
            pass
        return b"Invalid Command"

    def corrupt(self, reply):
        b = bytearray(reply)
        body = len(b) - 2 if reply.endswith(b"\r\n") else len(b)
        if body > 0:
            b[self.rng.randrange(body)] = self.rng.choice(b"xX#?!0123456789 -")
        return bytes(b)

    def garbage(self):
        return bytes(self.rng.choice(b"abc#@!?\x00\xff0123456789 ") for _ in range(self.rng.randint(1, 8)))


# ====================================================================== RoboClaw
class RoboClawEmulator(PtyEmulator):
    """RoboClaw packet serial device (M1 = left, M2 = right).

    Parameters
    ----------
    address : int
    battery_v : float
        Main battery voltage reported by command 24.
    firmware : str
        'new': 4-byte status (command 90), command 78 and the serial timeout (14) exist.
        'old': 2-byte status in the older bit layout; commands 78 and 14 are unknown (no reply).
    velocity_pid : tuple
        (P, I, D, QPPS) reported by commands 55/56 for both motors; (0, 0, 0, 0) = never tuned, and then
        command 37 does not move the wheels (as a real unit without a tuned velocity PID).
    """

    def __init__(self, seed: int = 0, symlink: str | None = None, address: int = 0x80,
                 battery_v: float = 24.2, tau_s: float = 0.05, firmware: str = "new",
                 velocity_pid: tuple = (1.5, 0.25, 0.0, 20000)):
        super().__init__(seed, symlink)
        if firmware not in ("new", "old"):
            raise ValueError("firmware must be 'new' or 'old'")
        self.address = int(address)
        self.model = WheelMotorModel(tau_s)
        self.battery_v = float(battery_v)
        self.firmware = firmware
        self.velocity_pid = tuple(velocity_pid)
        self.error_status = 0
        self.serial_timeout_s = 0.0  # command 14; 0 = off
        self.timeouts_fired = 0
        self.speed_commands: list[tuple[int, int]] = []
        self.bad_request_crc = 0
        self.unknown_commands = 0
        self._buf = bytearray()
        self._last_byte_t = 0.0
        self._last_packet_t: float | None = None

    def on_tick(self, dt_s, now):
        if self.serial_timeout_s > 0 and self._last_packet_t is not None \
                and now - self._last_packet_t > self.serial_timeout_s and any(self.model.target_tps):
            self.model.target_tps = [0.0, 0.0]  # the controller's own serial timeout stops the motors
            self.timeouts_fired += 1
        self.model.step(dt_s)
        return ()

    def _supported(self, cmd: int) -> bool:
        return self.firmware == "new" or cmd not in (rc.CMD_READ_ENCODERS, rc.CMD_READ_SPEEDS,
                                                     rc.CMD_SET_SERIAL_TIMEOUT)

    def on_bytes(self, data, now):
        # a gap of more than 10 ms between bytes resets a half-received packet (as the device does)
        if self._buf and now - self._last_byte_t > 0.01:
            self._buf.clear()
        self._last_byte_t = now
        self._buf.extend(data)
        out = []
        while len(self._buf) >= 2:
            addr, cmd = self._buf[0], self._buf[1]
            if addr != self.address:
                del self._buf[0]
                continue
            if not self._supported(cmd):
                self.unknown_commands += 1
                self._buf.clear()  # unknown on this firmware: ignored, no reply
                break
            if cmd in rc.REPLY_DATA_LEN:
                del self._buf[:2]
                self.requests += 1
                self._last_packet_t = now
                payload = self._read_reply(cmd)
                out.append(payload + struct.pack(">H", rc.crc16(bytes((addr, cmd)) + payload)))
                continue
            n = rc.WRITE_DATA_LEN.get(cmd)
            if n is None:
                self._buf.clear()  # unknown command: the device ignores the packet
                break
            if len(self._buf) < 2 + n + 2:
                break
            packet = bytes(self._buf[: 2 + n + 2])
            del self._buf[: 2 + n + 2]
            self.requests += 1
            if rc.crc16(packet[:-2]) != struct.unpack(">H", packet[-2:])[0]:
                self.bad_request_crc += 1
                continue  # no ack on a bad CRC
            self._last_packet_t = now
            self._write(cmd, packet[2:-2])
            out.append(bytes((rc.ACK,)))
        return out

    def _read_reply(self, cmd: int) -> bytes:
        left, right = self.model.counts()
        if cmd == rc.CMD_READ_ENCODERS:
            return struct.pack(">ii", left, right)
        if cmd in (rc.CMD_READ_ENC_M1, rc.CMD_READ_ENC_M2):
            count = left if cmd == rc.CMD_READ_ENC_M1 else right
            return struct.pack(">IB", count & 0xFFFFFFFF, 0)
        if cmd == rc.CMD_READ_MAIN_BATTERY:
            return struct.pack(">H", int(round(self.battery_v * 10)))
        speeds = [int(round(v)) for v in self.model.speed_tps]
        if cmd == rc.CMD_READ_SPEEDS:
            return struct.pack(">ii", *speeds)
        if cmd in (rc.CMD_READ_SPEED_M1, rc.CMD_READ_SPEED_M2):
            v = speeds[0 if cmd == rc.CMD_READ_SPEED_M1 else 1]
            return struct.pack(">IB", abs(v), 1 if v < 0 else 0)
        if cmd in (rc.CMD_READ_VELOCITY_PID_M1, rc.CMD_READ_VELOCITY_PID_M2):
            p, i, d, qpps = self.velocity_pid
            return struct.pack(">IIII", int(p * 65536), int(i * 65536), int(d * 65536), int(qpps))
        if self.firmware == "old":
            return struct.pack(">H", self.error_status & 0xFFFF)
        return struct.pack(">I", self.error_status & 0xFFFFFFFF)

    @property
    def _tuned(self) -> bool:
        p, i, d, qpps = self.velocity_pid
        return qpps != 0 and (p or i or d)

    def _write(self, cmd: int, data: bytes) -> None:
        if cmd == rc.CMD_DRIVE_M1M2_SPEED:
            m1, m2 = struct.unpack(">ii", data)
            self.speed_commands.append((m1, m2))
            mask = rc.ERROR_MASK_16 if self.firmware == "old" else rc.ERROR_MASK
            if self.error_status & mask or not self._tuned:
                m1 = m2 = 0
            self.model.target_tps = [float(m1), float(m2)]
        elif cmd == rc.CMD_RESET_ENC:
            self.model.reset()
        elif cmd == rc.CMD_SET_SERIAL_TIMEOUT:
            self.serial_timeout_s = data[0] / 10.0


# ====================================================================== Modbus hub driver
class ModbusHubEmulator(PtyEmulator):
    """A ZLAC8015D-style dual-channel hub-motor driver as a Modbus-RTU slave (functions 3, 6, 16).

    Registers not in the map read as 0. Requests with a bad CRC or for another device id get no reply.
    Motors follow the target rpm only when enabled, in velocity mode and without a fault.

    Parameters
    ----------
    regmap : RegisterMap
    device_id : int
    bus_voltage_v : float
    write_gap_s : float
        A request arriving sooner than this after the reply to a write gets no reply (real units give
        Modbus IO errors on a read right after a write); 0 = answer at once.
    counts_per_rev : float, optional
        The motor's real encoder counts per revolution (default: the map's) - another value emulates a
        map that does not fit the motor.
    """

    def __init__(self, regmap: RegisterMap, seed: int = 0, symlink: str | None = None, device_id: int = 1,
                 bus_voltage_v: float = 48.0, tau_s: float = 0.05, write_gap_s: float = 0.0,
                 counts_per_rev: float | None = None):
        super().__init__(seed, symlink)
        self.regmap = regmap
        self.write_gap_s = float(write_gap_s)
        self.counts_per_rev = float(regmap.encoder_ticks_per_rev if counts_per_rev is None else counts_per_rev)
        self.dropped_after_write = 0
        self.comm_timeouts_fired = 0
        self._last_write_reply_t = -1e9
        self._last_request_t: float | None = None
        self.device_id = int(device_id)
        self.model = WheelMotorModel(tau_s)
        self.bus_voltage_v = float(bus_voltage_v)
        self.regs: dict[int, int] = {}
        self.enabled = False
        self.target_commands: list[tuple[int, int]] = []
        self.bad_request_crc = 0
        self._buf = bytearray()
        self._last_byte_t = 0.0
        r = regmap.registers
        self._a = {k: r.get(k) for k in r}

    def inject_fault(self, left: int = 0, right: int = 0) -> None:
        """Latch fault codes; the drive disables itself like the real one."""
        with self._lock:
            self.regs[self._a["fault_left"]] = left & 0xFFFF
            self.regs[self._a["fault_right"]] = right & 0xFFFF
            if left or right:
                self.enabled = False
                self.model.target_tps = [0.0, 0.0]

    def on_tick(self, dt_s, now):
        a = self._a.get("comm_timeout")
        timeout_s = self.regs.get(a, 0) * self.regmap.comm_timeout_ms_per_unit / 1000.0 if a is not None else 0
        if timeout_s > 0 and self._last_request_t is not None and now - self._last_request_t > timeout_s \
                and self.enabled:
            self.enabled = False  # the unit's communication timeout: motors stop
            self.model.target_tps = [0.0, 0.0]
            self.comm_timeouts_fired += 1
        self.model.step(dt_s)
        return ()

    def _update_feedback(self) -> None:
        m, a = self.regmap, self._a
        tpr = self.counts_per_rev
        for side, i in (("left", 0), ("right", 1)):
            rpm = self.model.speed_tps[i] / tpr * 60.0
            self.regs[a[f"actual_rpm_{side}"]] = int(round(rpm / m.actual_rpm_per_unit)) & 0xFFFF
            count = self.model.counts()[i] & 0xFFFFFFFF
            self.regs[a[f"encoder_{side}_hi"]] = count >> 16
            self.regs[a[f"encoder_{side}_lo"]] = count & 0xFFFF
        if a.get("bus_voltage") is not None:
            self.regs[a["bus_voltage"]] = int(round(self.bus_voltage_v / m.volts_per_unit)) & 0xFFFF

    def _apply_targets(self) -> None:
        m, a = self.regmap, self._a
        faulted = self.regs.get(a["fault_left"], 0) or self.regs.get(a["fault_right"], 0)
        mode_ok = self.regs.get(a["operating_mode"], 0) == m.values["mode_velocity"]
        if not (self.enabled and mode_ok) or faulted:
            self.model.target_tps = [0.0, 0.0]
            return
        k = m.target_rpm_per_unit * self.counts_per_rev / 60.0
        self.model.target_tps = [to_int16(self.regs.get(a["target_rpm_left"], 0)) * k,
                                 to_int16(self.regs.get(a["target_rpm_right"], 0)) * k]

    def _written(self, addr: int, value: int) -> None:
        m, a = self.regmap, self._a
        self.regs[addr] = value & 0xFFFF
        if addr == a["control_word"]:
            v = m.values
            if value == v["control_enable"]:
                self.enabled = True
            elif value == v["control_stop"]:
                self.enabled = False
            elif value == v["control_clear_fault"]:
                self.regs[a["fault_left"]] = 0
                self.regs[a["fault_right"]] = 0
            else:
                self.enabled = False  # emergency stop and anything unknown: disable

    def _frame_len(self) -> int | None:
        """Length of the request at the start of the buffer, None if more bytes are needed, 0 if junk."""
        b = self._buf
        if len(b) < 2:
            return None
        fc = b[1]
        if fc in (3, 4, 6):
            return 8
        if fc == 16:
            if len(b) < 7:
                return None
            return 9 + b[6]
        return 0

    def on_bytes(self, data, now):
        if self._buf and now - self._last_byte_t > 0.005:  # RTU: a silent gap ends a frame
            self._buf.clear()
        self._last_byte_t = now
        self._buf.extend(data)
        out = []
        while self._buf:
            n = self._frame_len()
            if n is None:
                break
            if n == 0:
                self._buf.clear()
                break
            if len(self._buf) < n:
                break
            frame = bytes(self._buf[:n])
            del self._buf[:n]
            self.requests += 1
            if not rtu_crc_ok(frame):
                self.bad_request_crc += 1
                self._buf.clear()
                break
            if frame[0] != self.device_id:
                continue
            if now - self._last_write_reply_t < self.write_gap_s:
                self.dropped_after_write += 1  # too soon after a write: the real unit does not answer
                self.injected["read_after_write"] += 1
                continue
            self._last_request_t = now
            out.append(self._handle(frame))
            if frame[1] in (6, 16):
                self._last_write_reply_t = now
        return out

    def _exception(self, fc: int, code: int) -> bytes:
        return rtu_frame(bytes((self.device_id, fc | 0x80, code)))

    def _handle(self, frame: bytes) -> bytes:
        fc = frame[1]
        if fc in (3, 4):
            start, count = struct.unpack(">HH", frame[2:6])
            if not 1 <= count <= 125:
                return self._exception(fc, 3)
            if start + count > 0x10000:
                return self._exception(fc, 2)
            self._update_feedback()
            vals = [self.regs.get(start + i, 0) for i in range(count)]
            return rtu_frame(bytes((self.device_id, fc, 2 * count)) + struct.pack(f">{count}H", *vals))
        if fc == 6:
            addr, value = struct.unpack(">HH", frame[2:6])
            self._written(addr, value)
            self._apply_targets()
            self._note_targets(addr, 1)
            return frame  # echo
        start, count, nbytes = struct.unpack(">HHB", frame[2:7])
        if not 1 <= count <= 123 or nbytes != 2 * count:
            return self._exception(fc, 3)
        values = struct.unpack(f">{count}H", frame[7:7 + nbytes])
        for i, v in enumerate(values):
            self._written(start + i, v)
        self._apply_targets()
        self._note_targets(start, count)
        return rtu_frame(frame[:6])

    def _note_targets(self, start: int, count: int) -> None:
        a = self._a
        if any(start <= a[k] < start + count for k in ("target_rpm_left", "target_rpm_right")):
            self.target_commands.append((to_int16(self.regs.get(a["target_rpm_left"], 0)),
                                         to_int16(self.regs.get(a["target_rpm_right"], 0))))

    def corrupt(self, reply):
        b = bytearray(reply)
        b[-1] ^= 0xFF  # CRC-16/MODBUS high byte
        return bytes(b)


# ====================================================================== GNSS
def nmea_checksum(body: str) -> str:
    """XOR of the characters between ``$`` and ``*``, two hex digits."""
    c = 0
    for ch in body.encode("ascii"):
        c ^= ch
    return f"{c:02X}"


def nmea_sentence(body: str) -> bytes:
    return f"${body}*{nmea_checksum(body)}\r\n".encode("ascii")


def _dm(value_deg: float, lat: bool) -> tuple[str, str]:
    hemi = ("N" if value_deg >= 0 else "S") if lat else ("E" if value_deg >= 0 else "W")
    v = abs(value_deg)
    d = int(v)
    m = (v - d) * 60.0
    return (f"{d:02d}{m:010.7f}" if lat else f"{d:03d}{m:010.7f}"), hemi


class GnssEmulator(PtyEmulator):
    """NMEA-0183 receiver moving on a straight line / circle, streaming RMC, VTG, GGA, GST per epoch.

    Parameters
    ----------
    rate_hz : float
        Epochs per second streamed by the thread; 0 = only on :meth:`emit_epoch` calls.
    latitude_deg, longitude_deg, altitude_msl_m, geoid_sep_m : float
        Start position.
    speed_mps, course_deg, turn_rate_dps : float
        Motion.
    quality : int
        GGA fix quality (4 RTK fixed, 5 RTK float, 1 GPS, 0 none, ...).
    sentences : tuple of str
        Which sentences, in order, per epoch (u-blox, SkyTraq, Quectel, ST send GST after GGA;
        Septentrio before it).
    geoid_sep_m : float or None
        None: the geoid-separation field of GGA is left empty (Telit, PolaRx2); the altitude is MSL.
    course_min_speed_mps : float
        Below this speed the course fields of RMC/VTG are empty, the speed is still sent (u-blox).
    binary_between : bool
        Binary frames (UBX-like, sync 0xB5 0x62, containing ``$`` and line-end bytes) sit between the
        sentences without line breaks around them, as on a port with NMEA and binary output at once.
    """

    SIGMA_BY_QUALITY = {0: 0.0, 1: 1.5, 2: 0.6, 4: 0.015, 5: 0.2, 6: 5.0, 9: 0.6}

    def __init__(self, seed: int = 0, symlink: str | None = None, rate_hz: float = 10.0,
                 latitude_deg: float = 52.0, longitude_deg: float = 5.0, altitude_msl_m: float = 10.0,
                 geoid_sep_m: float = 45.0, speed_mps: float = 1.0, course_deg: float = 90.0,
                 turn_rate_dps: float = 0.0, quality: int = 4, hdop: float = 0.8, talker: str = "GN",
                 sentences: tuple = ("RMC", "VTG", "GGA", "GST"), start_time_of_day_s: float = 43200.0,
                 course_min_speed_mps: float = 0.0, binary_between: bool = False):
        super().__init__(seed, symlink)
        self.rate_hz = float(rate_hz)
        self.lat, self.lon, self.alt, self.geoid = latitude_deg, longitude_deg, altitude_msl_m, geoid_sep_m
        self.speed_mps, self.course_deg, self.turn_rate_dps = speed_mps, course_deg, turn_rate_dps
        self.quality, self.hdop, self.talker = int(quality), float(hdop), talker
        self.sentences = tuple(sentences)
        self.tod_s = float(start_time_of_day_s)
        self.course_min_speed_mps = float(course_min_speed_mps)
        self.binary_between = bool(binary_between)
        self.epochs = 0
        self._accum = 0.0

    def on_tick(self, dt_s, now):
        if self.rate_hz <= 0:
            return ()
        self._accum += dt_s
        out = []
        period = 1.0 / self.rate_hz
        while self._accum >= period:
            self._accum -= period
            out.extend(self.epoch_lines(period))
        return out

    def emit_epoch(self, dt_s: float = 0.1) -> None:
        """Advance one epoch and send its sentences now (with faults applied)."""
        with self._lock:
            now = time.monotonic()
            for line in self.epoch_lines(dt_s):
                self._queue(line, now, replies=False)
        self._flush(time.monotonic())

    def epoch_lines(self, dt_s: float) -> list[bytes]:
        """Advance the motion model by ``dt_s`` and build this epoch's sentences (no faults)."""
        self.epochs += 1
        self.tod_s = (self.tod_s + dt_s) % 86400.0
        self.course_deg = (self.course_deg + self.turn_rate_dps * dt_s) % 360.0
        c = math.radians(self.course_deg)
        d = self.speed_mps * dt_s
        self.lat += math.degrees(d * math.cos(c) / 6378137.0)
        self.lon += math.degrees(d * math.sin(c) / (6378137.0 * math.cos(math.radians(self.lat))))
        h = int(self.tod_s // 3600)
        m = int(self.tod_s % 3600 // 60)
        s = self.tod_s % 60
        t = f"{h:02d}{m:02d}{s:05.2f}"
        lat, ns = _dm(self.lat, True)
        lon, ew = _dm(self.lon, False)
        q = self.quality
        tk = self.talker
        sig = self.SIGMA_BY_QUALITY.get(q, 1.0)
        kn = self.speed_mps / (1852.0 / 3600.0)
        kmh = self.speed_mps * 3.6
        course = "" if self.speed_mps < self.course_min_speed_mps else f"{self.course_deg:.2f}"
        lines = []
        for name in self.sentences:
            if name == "GGA":
                if q == 0:
                    body = f"{tk}GGA,{t},,,,,0,00,99.9,,M,,M,,"
                else:
                    age = "1.0" if q in (2, 4, 5) else ""
                    sid = "0001" if q in (2, 4, 5) else ""
                    sep = "" if self.geoid is None else f"{self.geoid:.3f}"
                    body = (f"{tk}GGA,{t},{lat},{ns},{lon},{ew},{q},12,{self.hdop:.1f},{self.alt:.3f},M,"
                            f"{sep},M,{age},{sid}")
            elif name == "RMC":
                st = "A" if q else "V"
                body = f"{tk}RMC,{t},{st},{lat},{ns},{lon},{ew},{kn:.3f},{course},010125,,,A"
            elif name == "VTG":
                body = f"{tk}VTG,{course},T,,M,{kn:.3f},N,{kmh:.3f},K,{'A' if q else 'N'}"
            elif name == "GST":
                if q == 0:
                    continue
                body = (f"{tk}GST,{t},{sig:.3f},{sig * 1.2:.3f},{sig:.3f},0.0,{sig:.3f},{sig * 1.1:.3f},"
                        f"{sig * 2:.3f}")
            else:
                continue
            line = nmea_sentence(body)
            if self.binary_between:  # binary frame glued before the sentence, no line break after it
                line = self.binary_frame() + line.rstrip(b"\r\n")
            lines.append(line)
        return lines

    def binary_frame(self) -> bytes:
        """A UBX-like frame: sync, class, id, length, payload with '$' and line-end bytes, checksum."""
        payload = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(4, 40))) + b"$\r\n\x00"
        body = bytes((0x01, 0x07)) + struct.pack("<H", len(payload)) + payload
        a = b = 0
        for ch in body:
            a = (a + ch) & 0xFF
            b = (b + a) & 0xFF
        return b"\xb5\x62" + body + bytes((a, b))

    def on_bytes(self, data, now):
        return []  # a receiver ignores what the host sends (no configuration here)

    def corrupt(self, reply):
        """Wrong checksum: the sentence text is intact, the two hex digits are not."""
        text = reply.decode("ascii", "replace")
        i = text.rfind("*")
        if i < 0 or len(text) < i + 3:
            return super().corrupt(reply)
        good = text[i + 1:i + 3]
        bad = f"{(int(good, 16) ^ (1 + self.rng.randrange(255))) & 0xFF:02X}"
        return (text[: i + 1] + bad + text[i + 3:]).encode("ascii")

    def garbage(self):
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 12))) + b"\r\n"


def make_emulator(kind: str, seed: int = 0, symlink: str | None = None, regmap: RegisterMap | None = None,
                  **kwargs) -> PtyEmulator:
    """Factory used by ``agricare emulate``: kind = roboclaw | ascii | modbus | gnss."""
    if kind == "roboclaw":
        return RoboClawEmulator(seed=seed, symlink=symlink, **kwargs)
    if kind == "ascii":
        return AsciiBridgeEmulator(seed=seed, symlink=symlink, **kwargs)
    if kind == "modbus":
        if regmap is None:
            raise ValueError("modbus emulator needs a register map")
        return ModbusHubEmulator(regmap, seed=seed, symlink=symlink, **kwargs)
    if kind == "gnss":
        return GnssEmulator(seed=seed, symlink=symlink, **kwargs)
    raise ValueError(f"unknown emulator kind {kind!r} (roboclaw, ascii, modbus, gnss)")


__all__ = ["Faults", "WheelMotorModel", "PtyEmulator", "AsciiBridgeEmulator", "RoboClawEmulator",
           "ModbusHubEmulator", "GnssEmulator", "make_emulator", "nmea_sentence", "nmea_checksum",
           "crc16_modbus"]
