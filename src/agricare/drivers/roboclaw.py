"""RoboClaw packet serial: two-channel motor controller over a serial port.

Frame (host -> device): ``address, command, data..., crc_hi, crc_lo`` where the CRC is CRC16-CCITT
(polynomial 0x1021, initial value 0, no reflection, no final xor) over address, command and data.
Write commands are acknowledged with one byte ``0xFF``. Read replies are ``data..., crc_hi, crc_lo`` with
the CRC computed over the *request's* address and command followed by the reply data, so a reply cannot be
mistaken for another command's.

Commands used (numbers from the RoboClaw user manual):

====  =====================================  ===================================================
 37   drive M1/M2 with signed speed           data: int32 M1 speed, int32 M2 speed [QPPS]; ack
 16   read encoder M1                         reply: uint32 count, uint8 status
 17   read encoder M2                         reply: uint32 count, uint8 status
 78   read encoder counters (both)            reply: int32 M1 count, int32 M2 count
 20   reset quadrature encoders               ack
 24   read main battery voltage               reply: uint16 [0.1 V]
 90   read error status                       reply: uint32 bit field
====  =====================================  ===================================================

M1 drives the left wheel and M2 the right wheel. Speeds are quadrature pulses per second (QPPS).
"""

from __future__ import annotations

import math
import struct

from agricare.drivers.link import (
    ChecksumError,
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
CMD_READ_ERROR = 90
ACK = 0xFF

#: reply data length (without CRC) per read command
REPLY_DATA_LEN = {CMD_READ_ENC_M1: 5, CMD_READ_ENC_M2: 5, CMD_READ_ENCODERS: 8,
                  CMD_READ_MAIN_BATTERY: 2, CMD_READ_ERROR: 4}
#: request data length (without CRC) per write command
WRITE_DATA_LEN = {CMD_DRIVE_M1M2_SPEED: 8, CMD_RESET_ENC: 0}

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


def decode_reply(address: int, command: int, reply: bytes) -> bytes:
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
    n = REPLY_DATA_LEN.get(command)
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


def parse_battery_v(data: bytes) -> float:
    """Data of command 24 -> volts."""
    (tenths,) = struct.unpack(">H", data)
    return tenths / 10.0


def parse_error(data: bytes) -> int:
    """Data of command 90 -> 32-bit status word."""
    (status,) = struct.unpack(">I", data)
    return status


def describe_error(status: int) -> str:
    """Comma-separated names of the set bits ('' if none)."""
    return ", ".join(name for bit, name in ERROR_BITS.items() if status & bit) or (
        f"status {status:#x}" if status else "")


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
    use_cmd78 : bool
        Read both encoders with command 78 (one transaction); else commands 16 and 17.
    link : SerialLink, optional
        Injected link (tests); default a :class:`SerialLink` on ``port``.
    """

    name = "roboclaw"

    def __init__(self, port: str, baud: int = 38400, address: int = 0x80, ticks_per_rev: float = 4096.0,
                 max_wheel_radps: float = 10.0, timeout_s: float = 0.05, attempts: int = 3,
                 aux_every_n: int = 10, use_cmd78: bool = True, link=None):
        if not 0x80 <= address <= 0x87:
            raise ValueError(f"address must be 0x80..0x87, got {address}")
        if not ticks_per_rev > 0 or not max_wheel_radps > 0:
            raise ValueError("ticks_per_rev and max_wheel_radps must be > 0")
        self.address = int(address)
        self.ticks_per_rad = float(ticks_per_rev) / (2.0 * math.pi)
        self.max_wheel_radps = float(max_wheel_radps)
        self.attempts = int(attempts)
        self.aux_every_n = max(1, int(aux_every_n))
        self.use_cmd78 = bool(use_cmd78)
        self.link = link if link is not None else SerialLink(port, baud, timeout_s)
        self._stats = LinkStats()
        self._count = 0
        self._battery_v = math.nan
        self._fault = 0

    @property
    def stats(self) -> LinkStats:
        return self._stats

    def open(self) -> None:
        self.link.open()
        self._stats.opens += 1
        self._count = 0

    def close(self) -> None:
        self.link.close()

    def _write(self, command: int, payload: bytes = b"") -> None:
        packet = build_packet(self.address, command, payload)

        def once():
            self.link.flush_input()
            self.link.write(packet)
            decode_ack(self.link.read(1))

        retry(self._stats, self.attempts, once, f"roboclaw command {command}")

    def _read(self, command: int) -> bytes:
        request = bytes((self.address, command))
        n = REPLY_DATA_LEN[command] + 2

        def once():
            self.link.flush_input()
            self.link.write(request)
            return decode_reply(self.address, command, self.link.read(n))

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

    def read_battery_v(self) -> float:
        return parse_battery_v(self._read(CMD_READ_MAIN_BATTERY))

    def read_error_status(self) -> int:
        return parse_error(self._read(CMD_READ_ERROR))

    def reset_encoders(self) -> None:
        self._write(CMD_RESET_ENC)

    def exchange(self, left_radps: float, right_radps: float, now_s: float) -> WheelFeedback:
        self.send_speeds(left_radps, right_radps)
        left, right = self.read_encoders()
        if self._count % self.aux_every_n == 0:
            self._battery_v = self.read_battery_v()
            self._fault = self.read_error_status()
        self._count += 1
        fault = self._fault & ERROR_MASK
        return WheelFeedback(left, right, battery_v=self._battery_v, fault_code=fault,
                             fault_text=describe_error(fault))
