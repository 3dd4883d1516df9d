"""RoboClaw packet serial: two-channel motor controller over a serial port.

Frame (host -> device): ``address, command, data..., crc_hi, crc_lo`` where the CRC is CRC16-CCITT
(polynomial 0x1021, initial value 0, no reflection, no final xor) over address, command and data.
Write commands are acknowledged with one byte ``0xFF``. Read replies are ``data..., crc_hi, crc_lo`` with
the CRC computed over the *request's* address and command followed by the reply data, so a reply cannot be
mistaken for another command's.

Commands used (numbers from the RoboClaw user manual):

====  =====================================  ===================================================
 14   set serial timeout                      data: uint8 [0.1 s], 0 = off; ack
 37   drive M1/M2 with signed speed           data: int32 M1 speed, int32 M2 speed [QPPS]; ack
 16   read encoder M1                         reply: uint32 count, uint8 status
 17   read encoder M2                         reply: uint32 count, uint8 status
 18   read encoder speed M1                   reply: uint32 speed [counts/s], uint8 direction (1 = back)
 19   read encoder speed M2                   as 18
 78   read encoder counters (both)            reply: int32 M1 count, int32 M2 count
 79   read instantaneous speeds (both)        reply: int32 M1, int32 M2 [counts/s]
 20   reset quadrature encoders               ack
 24   read main battery voltage               reply: uint16 [0.1 V]
 55   read M1 velocity PID and QPPS           reply: uint32 P, I, D [x65536], uint32 QPPS
 56   read M2 velocity PID and QPPS           as 55
 90   read error status                       reply: uint32 bit field (older firmware: uint16)
====  =====================================  ===================================================

M1 drives the left wheel and M2 the right wheel. Speeds are quadrature pulses per second (QPPS).

What real units do, and what :meth:`RoboClawDriver.open` checks at connect:

- Older firmware (and the older vendor library) answers command 90 with a 2-byte status whose bits are
  laid out differently (:data:`ERROR_BITS_16`); newer firmware sends 4 bytes (:data:`ERROR_BITS`). The
  driver reads the reply of command 90 once with room for 4 data bytes and takes the format whose CRC
  matches.
- Commands 78 and 79 do not exist on older firmware (no reply): the driver tries 78 once and falls back to
  commands 16/17 (counts) and 18/19 (speeds).
- Command 37 (speed mode) runs the controller's velocity PID: with P = I = D = 0 or QPPS = 0 (never tuned)
  the wheels do not follow. Commands 55/56 are read and the driver refuses to connect with a message
  saying which motor and what to set (:class:`NotConfiguredError`).
- The controller's own serial timeout (command 14) is set so that the motors stop when the host stops
  sending (a hung process, a pulled cable): ``comm_timeout_s``.
"""

from __future__ import annotations

import math
import struct

from agricare.drivers.link import (
    ChecksumError,
    DriverError,
    LinkStats,
    MotorDriver,
    ProtocolError,
    SerialLink,
    WheelFeedback,
    to_units,
    retry,
    to_int32,
)

CMD_DRIVE_M1M2_SPEED = 37
CMD_READ_ENC_M1 = 16
CMD_READ_ENC_M2 = 17
CMD_RESET_ENC = 20
CMD_READ_MAIN_BATTERY = 24
CMD_READ_ENCODERS = 78
CMD_READ_SPEED_M1 = 18
CMD_READ_SPEED_M2 = 19
CMD_READ_SPEEDS = 79
CMD_READ_ERROR = 90
CMD_SET_SERIAL_TIMEOUT = 14
CMD_READ_VELOCITY_PID_M1 = 55
CMD_READ_VELOCITY_PID_M2 = 56
ACK = 0xFF

#: reply data length (without CRC) per read command
REPLY_DATA_LEN = {CMD_READ_ENC_M1: 5, CMD_READ_ENC_M2: 5, CMD_READ_ENCODERS: 8, CMD_READ_SPEED_M1: 5,
                  CMD_READ_SPEED_M2: 5, CMD_READ_SPEEDS: 8,
                  CMD_READ_MAIN_BATTERY: 2, CMD_READ_ERROR: 4, CMD_READ_VELOCITY_PID_M1: 16,
                  CMD_READ_VELOCITY_PID_M2: 16}
#: request data length (without CRC) per write command
WRITE_DATA_LEN = {CMD_DRIVE_M1M2_SPEED: 8, CMD_RESET_ENC: 0, CMD_SET_SERIAL_TIMEOUT: 1}

#: error status bits (cmd 90); the upper 16 bits are warnings
ERROR_BITS = {
    0x0001: "E-stop", 0x0002: "temperature error", 0x0004: "temperature 2 error",
    0x0008: "main battery high error", 0x0010: "logic battery high error", 0x0020: "logic battery low error",
    0x0040: "M1 driver fault", 0x0080: "M2 driver fault", 0x0100: "M1 speed error",
    0x0200: "M2 speed error", 0x0400: "M1 position error", 0x0800: "M2 position error",
    0x1000: "M1 current error", 0x2000: "M2 current error",
    0x010000: "M1 over current warning", 0x020000: "M2 over current warning",
    0x040000: "main battery high warning", 0x080000: "main battery low warning",
    0x100000: "temperature warning", 0x200000: "temperature 2 warning",
}
ERROR_MASK = 0xFFFF  # bits that stop the robot

#: the 2-byte status of older firmware (a different layout; 0x4000/0x8000 are the home switches)
ERROR_BITS_16 = {
    0x0001: "M1 over current warning", 0x0002: "M2 over current warning", 0x0004: "E-stop",
    0x0008: "temperature error", 0x0010: "temperature 2 error", 0x0020: "main battery high error",
    0x0040: "logic battery high error", 0x0080: "logic battery low error", 0x0100: "M1 driver fault",
    0x0200: "M2 driver fault", 0x0400: "main battery high warning", 0x0800: "main battery low warning",
    0x1000: "temperature warning", 0x2000: "temperature 2 warning", 0x4000: "M1 home", 0x8000: "M2 home",
}
ERROR_MASK_16 = 0x03FC  # errors of the 2-byte layout that stop the robot


class NotConfiguredError(DriverError):
    """The controller answers but is not set up for what the driver needs (a person has to act)."""


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC16-CCITT as RoboClaw uses it: polynomial 0x1021, initial value 0 (a.k.a. CRC-16/XMODEM).

    Parameters
    ----------
    data : bytes

    Returns
    -------
    int
        0 .. 0xFFFF. ``crc16(b"123456789") == 0x31C3``.
    """
    crc = 0
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def build_packet(address: int, command: int, payload: bytes = b"") -> bytes:
    """A host -> device packet: ``address, command, payload, crc16`` (CRC big-endian)."""
    if not 0x80 <= address <= 0x87:
        raise ValueError(f"roboclaw address must be 0x80..0x87, got {address:#x}")
    body = bytes((address, command)) + bytes(payload)
    return body + struct.pack(">H", crc16(body))


def drive_speed_packet(address: int, m1_qpps: int, m2_qpps: int) -> bytes:
    """Command 37: drive M1 and M2 with signed speeds [QPPS]."""
    return build_packet(address, CMD_DRIVE_M1M2_SPEED, struct.pack(">ii", int(m1_qpps), int(m2_qpps)))


def decode_reply(address: int, command: int, reply: bytes, data_len: int | None = None) -> bytes:
    """Check a read reply's length and CRC; return its data bytes.

    Raises
    ------
    TimeoutError
        ``reply`` is shorter than expected (truncated or nothing came).
    ProtocolError
        ``command`` is not a known read command or the reply is too long.
    ChecksumError
        The CRC does not match.
    """
    n = REPLY_DATA_LEN.get(command) if data_len is None else data_len
    if n is None:
        raise ProtocolError(f"roboclaw: command {command} has no read reply")
    reply = bytes(reply)
    if len(reply) < n + 2:
        raise TimeoutError(f"roboclaw: reply to {command} truncated ({len(reply)} of {n + 2} bytes)")
    if len(reply) > n + 2:
        raise ProtocolError(f"roboclaw: reply to {command} too long ({len(reply)} bytes)")
    data, (crc,) = reply[:n], struct.unpack(">H", reply[n:])
    if crc16(bytes((address, command)) + data) != crc:
        raise ChecksumError(f"roboclaw: CRC mismatch in reply to {command}")
    return data


def decode_ack(reply: bytes) -> None:
    """A write command's acknowledgement must be exactly ``0xFF``."""
    if len(reply) == 0:
        raise TimeoutError("roboclaw: no ack")
    if bytes(reply) != bytes((ACK,)):
        raise ProtocolError(f"roboclaw: bad ack {bytes(reply)[:8].hex()}")


def parse_encoders(data: bytes) -> tuple[int, int]:
    """Data of command 78 -> (M1, M2) signed counts."""
    m1, m2 = struct.unpack(">ii", data)
    return m1, m2


def parse_single_encoder(data: bytes) -> int:
    """Data of command 16/17 -> signed count (the status byte is ignored)."""
    (count,) = struct.unpack(">I", data[:4])
    return to_int32(count)


def parse_single_speed(data: bytes) -> int:
    """Data of command 18/19 -> signed speed [counts/s] (magnitude, then direction byte: 1 = backwards)."""
    (speed,) = struct.unpack(">I", data[:4])
    speed = to_int32(speed)
    return -abs(speed) if data[4] & 1 else speed


def parse_speeds(data: bytes) -> tuple[int, int]:
    """Data of command 79 -> (M1, M2) signed speeds [counts/s]."""
    m1, m2 = struct.unpack(">ii", data)
    return m1, m2


def parse_battery_v(data: bytes) -> float:
    """Data of command 24 -> volts."""
    (tenths,) = struct.unpack(">H", data)
    return tenths / 10.0


def parse_error(data: bytes) -> int:
    """Data of command 90 -> 32-bit status word."""
    (status,) = struct.unpack(">I", data)
    return status


def describe_error(status: int, bits: dict | None = None) -> str:
    """Comma-separated names of the set bits ('' if none); ``bits`` = the layout (default 4-byte)."""
    return ", ".join(name for bit, name in (ERROR_BITS if bits is None else bits).items() if status & bit) or (
        f"status {status:#x}" if status else "")


def parse_velocity_pid(data: bytes) -> tuple[float, float, float, int]:
    """Data of command 55/56 -> (P, I, D, QPPS); the gains are fixed point x65536."""
    p, i, d, qpps = struct.unpack(">IIII", data)
    return p / 65536.0, i / 65536.0, d / 65536.0, qpps


class RoboClawDriver(MotorDriver):
    """Two-wheel drive through a RoboClaw (M1 = left, M2 = right).

    Parameters
    ----------
    port : str
    baud : int
    address : int
        Packet serial address 0x80..0x87.
    ticks_per_rev : float
        Encoder counts per wheel revolution (quadrature, after the gearbox).
    max_wheel_radps : float
        Command limit [rad/s]; commands are clamped to it before conversion to QPPS.
    timeout_s : float
        Reply timeout [s] per attempt.
    attempts : int
        Tries per transaction before the link is declared lost.
    aux_every_n : int
        Read battery voltage and error status every n-th exchange.
    use_cmd78 : bool or None
        Read both encoders with command 78 and both speeds with 79 (one transaction each), or with 16/17
        and 18/19; None (default): detect at connect (older firmware has neither 78 nor 79).
    comm_timeout_s : float
        The controller's serial timeout set at connect (command 14, 0.1 s steps, at most 25.5 s): the
        motors stop when no valid command arrives for this long. 0 leaves the device's setting alone.
    check_velocity_pid : bool
        Read the velocity PID / QPPS at connect and refuse to drive when they are zero.
    link : SerialLink, optional
        Injected link (tests); default a :class:`SerialLink` on ``port``.
    """

    name = "roboclaw"

    def __init__(self, port: str, baud: int = 38400, address: int = 0x80, ticks_per_rev: float = 4096.0,
                 max_wheel_radps: float = 10.0, timeout_s: float = 0.05, attempts: int = 3,
                 aux_every_n: int = 10, use_cmd78: bool | None = None, comm_timeout_s: float = 0.0,
                 check_velocity_pid: bool = True, link=None):
        if not 0x80 <= address <= 0x87:
            raise ValueError(f"address must be 0x80..0x87, got {address}")
        if not ticks_per_rev > 0 or not max_wheel_radps > 0:
            raise ValueError("ticks_per_rev and max_wheel_radps must be > 0")
        if not 0.0 <= comm_timeout_s <= 25.5:
            raise ValueError(f"comm_timeout_s must be 0 (off) .. 25.5 s, got {comm_timeout_s}")
        self.address = int(address)
        self.ticks_per_rad = float(ticks_per_rev) / (2.0 * math.pi)
        self.max_wheel_radps = float(max_wheel_radps)
        self.attempts = int(attempts)
        self.aux_every_n = max(1, int(aux_every_n))
        self.use_cmd78_setting = use_cmd78
        self.use_cmd78 = True if use_cmd78 is None else bool(use_cmd78)
        self.comm_timeout_s = float(comm_timeout_s)
        self.check_velocity_pid = bool(check_velocity_pid)
        self.link = link if link is not None else SerialLink(port, baud, timeout_s)
        self._stats = LinkStats()
        self._count = 0
        self._battery_v = math.nan
        self._fault = 0
        self.status_bytes = 4       # detected at connect: 4 (newer firmware) or 2 (older)
        self.velocity_pid: dict = {}  # 'M1'/'M2' -> (P, I, D, QPPS), read at connect
        self.notes: list[str] = []  # what the connect-time checks found (for diagnostics)

    @property
    def stats(self) -> LinkStats:
        return self._stats

    def open(self) -> None:
        """Open the port and run the connect-time checks (status format, encoder command, velocity PID,
        serial timeout); raises LinkError (no answer) or NotConfiguredError (answers, not set up)."""
        self.link.open()
        self._stats.opens += 1
        self._count = 0
        self.notes = []
        try:
            self.status_bytes = self.detect_status_format()
            if self.status_bytes == 2:
                self.notes.append("older firmware: 2-byte status (command 90)")
            if self.use_cmd78_setting is None:
                self.use_cmd78 = self.probe_cmd78()
                if not self.use_cmd78:
                    self.notes.append("no command 78: encoders read with 16/17, speeds with 18/19")
            if self.check_velocity_pid:
                self.check_velocity_settings()
            if self.comm_timeout_s > 0:
                self.configure_comm_timeout(self.comm_timeout_s)
        except DriverError:
            self.link.close()
            raise

    def close(self) -> None:
        self.link.close()

    # ------------------------------------------------------------------ connect-time checks
    def detect_status_format(self) -> int:
        """Send command 90 and take the reply format whose CRC matches: 4 data bytes or 2 (older)."""
        request = bytes((self.address, CMD_READ_ERROR))

        def once():
            self.link.flush_input()
            self.link.write(request)
            reply = self.link.read(6)  # an older unit sends 4 bytes: this read then waits the timeout
            head = bytes((self.address, CMD_READ_ERROR))
            if len(reply) >= 6 and crc16(head + reply[:4]) == struct.unpack(">H", reply[4:6])[0]:
                return 4
            if len(reply) in (4, 5) and crc16(head + reply[:2]) == struct.unpack(">H", reply[2:4])[0]:
                return 2
            if not reply:
                raise TimeoutError("roboclaw: no reply to command 90")
            raise ChecksumError(f"roboclaw: reply to 90 fits neither the 2- nor the 4-byte status "
                                f"({reply[:8].hex()})")

        return retry(self._stats, self.attempts, once, "roboclaw status format (command 90)")

    def probe_cmd78(self) -> bool:
        """True if the unit answers command 78 (one try: older firmware ignores it)."""
        try:
            self.link.flush_input()
            self.link.write(bytes((self.address, CMD_READ_ENCODERS)))
            decode_reply(self.address, CMD_READ_ENCODERS, self.link.read(REPLY_DATA_LEN[CMD_READ_ENCODERS] + 2))
            return True
        except (TimeoutError, ProtocolError):
            self.link.flush_input()
            return False

    def check_velocity_settings(self) -> None:
        """Read the velocity PID / QPPS of both motors (55, 56); NotConfiguredError when unusable."""
        bad = []
        for motor, cmd in (("M1", CMD_READ_VELOCITY_PID_M1), ("M2", CMD_READ_VELOCITY_PID_M2)):
            p, i, d, qpps = parse_velocity_pid(self._read(cmd))
            self.velocity_pid[motor] = (p, i, d, qpps)
            if qpps == 0 or (p == 0 and i == 0 and d == 0):
                bad.append(f"{motor} (P={p:g} I={i:g} D={d:g} QPPS={qpps})")
        if bad:
            raise NotConfiguredError(
                "roboclaw: velocity mode refused: velocity PID / QPPS not set for " + ", ".join(bad)
                + ". Command 37 drives through the velocity PID: run the auto-tune (Motion Studio, "
                "Velocity Settings) for each motor with its encoder connected, set QPPS to the encoder "
                "counts per second at full speed, and write the settings to the controller (Device > "
                "Write Settings).")

    def configure_comm_timeout(self, seconds: float) -> None:
        """Set the controller's serial timeout (command 14, 0.1 s units, 0 = off): with no valid packet
        for this long the controller stops both motors by itself."""
        tenths = int(round(float(seconds) * 10.0))
        if not 0 <= tenths <= 255:
            raise ValueError(f"roboclaw serial timeout must be 0..25.5 s, got {seconds}")
        if seconds > 0 and tenths == 0:
            tenths = 1
        self._write(CMD_SET_SERIAL_TIMEOUT, bytes((tenths,)))
        self.notes.append(f"serial timeout {tenths / 10:g} s")

    # ------------------------------------------------------------------ transactions
    def _write(self, command: int, payload: bytes = b"") -> None:
        packet = build_packet(self.address, command, payload)

        def once():
            self.link.flush_input()
            self.link.write(packet)
            decode_ack(self.link.read(1))

        retry(self._stats, self.attempts, once, f"roboclaw command {command}")

    def _read(self, command: int, data_len: int | None = None) -> bytes:
        request = bytes((self.address, command))
        n = REPLY_DATA_LEN[command] if data_len is None else data_len

        def once():
            self.link.flush_input()
            self.link.write(request)
            return decode_reply(self.address, command, self.link.read(n + 2), n)

        return retry(self._stats, self.attempts, once, f"roboclaw command {command}")

    def wheel_to_qpps(self, left_radps: float, right_radps: float) -> tuple[int, int]:
        """Clamp to the limit and convert to integer QPPS."""
        lim = self.max_wheel_radps
        return (to_units(left_radps, lim, self.ticks_per_rad),
                to_units(right_radps, lim, self.ticks_per_rad))

    def send_speeds(self, left_radps: float, right_radps: float) -> None:
        m1, m2 = self.wheel_to_qpps(left_radps, right_radps)
        self._write(CMD_DRIVE_M1M2_SPEED, struct.pack(">ii", m1, m2))

    def send_stop(self) -> None:
        self._write(CMD_DRIVE_M1M2_SPEED, struct.pack(">ii", 0, 0))

    def read_encoders(self) -> tuple[int, int]:
        if self.use_cmd78:
            return parse_encoders(self._read(CMD_READ_ENCODERS))
        return (parse_single_encoder(self._read(CMD_READ_ENC_M1)),
                parse_single_encoder(self._read(CMD_READ_ENC_M2)))

    def read_speeds(self) -> tuple[int, int]:
        """Measured wheel speeds [counts/s] (79, or 18/19 on older firmware)."""
        if self.use_cmd78:
            return parse_speeds(self._read(CMD_READ_SPEEDS))
        return (parse_single_speed(self._read(CMD_READ_SPEED_M1)),
                parse_single_speed(self._read(CMD_READ_SPEED_M2)))

    def read_battery_v(self) -> float:
        return parse_battery_v(self._read(CMD_READ_MAIN_BATTERY))

    def read_error_status(self) -> int:
        """The status word in the detected format (see :attr:`status_bytes`)."""
        data = self._read(CMD_READ_ERROR, self.status_bytes)
        return struct.unpack(">H", data)[0] if self.status_bytes == 2 else parse_error(data)

    def reset_encoders(self) -> None:
        self._write(CMD_RESET_ENC)

    def exchange(self, left_radps: float, right_radps: float, now_s: float) -> WheelFeedback:
        self.send_speeds(left_radps, right_radps)
        left, right = self.read_encoders()
        s_left, s_right = self.read_speeds()
        if self._count % self.aux_every_n == 0:
            self._battery_v = self.read_battery_v()
            self._fault = self.read_error_status()
        self._count += 1
        bits, mask = (ERROR_BITS_16, ERROR_MASK_16) if self.status_bytes == 2 else (ERROR_BITS, ERROR_MASK)
        fault = self._fault & mask
        return WheelFeedback(left, right, left_radps=s_left / self.ticks_per_rad,
                             right_radps=s_right / self.ticks_per_rad, battery_v=self._battery_v,
                             fault_code=fault, fault_text=describe_error(fault, bits))
