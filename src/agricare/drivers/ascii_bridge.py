"""ASCII motor bridge in the ros_arduino_bridge command style (an Arduino-class board running a PID).

One command per line, terminated by CR (``\\r``); the board answers one line (``\\r\\n`` terminated):

==========================  ==========================================  ===============
 command                     meaning                                     reply
==========================  ==========================================  ===============
 ``e``                       read encoders                               ``<left> <right>``
 ``m <L> <R>``               set target speeds [encoder ticks per PID     ``OK``
                             frame], integers
 ``r``                       reset encoders                              ``OK``
 ``u <Kp>:<Kd>:<Ki>:<Ko>``   update PID gains (integers)                 ``OK``
 ``b``                       get baud rate                               ``<baud>``
==========================  ==========================================  ===============

There is no checksum: a reply is accepted only if it parses exactly (two int32 for ``e``, ``OK`` for writes).
The board stops the motors by itself if no ``m`` arrives for a while (auto-stop), the driver does not rely
on it.

Connecting: opening the port resets Uno/Mega-class boards (the DTR line is wired to reset) and the
bootloader takes 1-2 s, during which bytes are lost. :meth:`AsciiBridgeDriver.open` waits ``boot_wait_s``
(default 2 s) after opening, then sends the baud query ``b`` until the board answers (handshake) before
any other command. Reconnects are spaced at least ``boot_wait_s`` apart (:attr:`min_reconnect_s`), so a
board that is slow to answer is not reset over and over.
"""

from __future__ import annotations

import math
import re

import time

from agricare.drivers.link import (
    DriverError,
    LinkError,
    LinkStats,
    MotorDriver,
    ProtocolError,
    SerialLink,
    WheelFeedback,
    to_units,
    retry,
)

TERMINATOR = b"\r"
MAX_LINE = 64
_INT_RE = re.compile(rb"[+-]?[0-9]{1,10}")
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def _line_text(line: bytes) -> bytes:
    """Strip the line terminator; a missing ``\\n`` means the reply was cut short."""
    if not line:
        raise TimeoutError("ascii bridge: no reply")
    if not line.endswith(b"\n"):
        raise TimeoutError(f"ascii bridge: reply truncated ({line[:16]!r})")
    return line.rstrip(b"\r\n").strip(b" ")


def parse_int(token: bytes) -> int:
    """One signed decimal int32 token."""
    if not _INT_RE.fullmatch(token):
        raise ProtocolError(f"ascii bridge: not an integer: {token[:16]!r}")
    v = int(token)
    if not _INT32_MIN <= v <= _INT32_MAX:
        raise ProtocolError(f"ascii bridge: integer out of int32 range: {v}")
    return v


def parse_encoders(line: bytes) -> tuple[int, int]:
    """Reply to ``e`` (with its terminator) -> (left, right) ticks.

    Raises
    ------
    TimeoutError
        Empty or unterminated (truncated) reply.
    ProtocolError
        Anything but two int32 separated by one space.
    """
    text = _line_text(bytes(line))
    parts = text.split(b" ")
    if len(parts) != 2:
        raise ProtocolError(f"ascii bridge: expected two encoder counts, got {text[:24]!r}")
    return parse_int(parts[0]), parse_int(parts[1])


def parse_ok(line: bytes) -> None:
    """Reply to a write command must be ``OK``."""
    text = _line_text(bytes(line))
    if text != b"OK":
        raise ProtocolError(f"ascii bridge: expected OK, got {text[:24]!r}")


def parse_baud(line: bytes) -> int:
    v = parse_int(_line_text(bytes(line)))
    if v <= 0:
        raise ProtocolError(f"ascii bridge: bad baud {v}")
    return v


def motor_command(left_ticks_per_frame: int, right_ticks_per_frame: int) -> bytes:
    return b"m %d %d\r" % (int(left_ticks_per_frame), int(right_ticks_per_frame))


def pid_command(kp: int, kd: int, ki: int, ko: int) -> bytes:
    return b"u %d:%d:%d:%d\r" % (int(kp), int(kd), int(ki), int(ko))


class AsciiBridgeDriver(MotorDriver):
    """Two-wheel drive through an ros_arduino_bridge-style board.

    Parameters
    ----------
    port : str
    baud : int
    ticks_per_rev : float
        Encoder counts per wheel revolution.
    pid_rate_hz : float
        The board's PID loop rate; speeds are sent as ticks per PID frame.
    max_wheel_radps : float
        Command limit [rad/s] (commands are clamped before conversion).
    timeout_s : float
        Reply timeout [s].
    attempts : int
        Tries per transaction before the link is declared lost.
    pid_gains : tuple of 4 int, optional
        ``(Kp, Kd, Ki, Ko)`` sent with ``u`` on open.
    boot_wait_s : float
        Wait after opening the port for the board's bootloader [s] (0 for boards without auto-reset).
    link : SerialLink, optional
    """

    name = "ascii"

    def __init__(self, port: str, baud: int = 57600, ticks_per_rev: float = 1200.0, pid_rate_hz: float = 30.0,
                 max_wheel_radps: float = 10.0, timeout_s: float = 0.05, attempts: int = 3,
                 pid_gains: tuple[int, int, int, int] | None = None, boot_wait_s: float = 2.0, link=None):
        if not ticks_per_rev > 0 or not pid_rate_hz > 0 or not max_wheel_radps > 0:
            raise ValueError("ticks_per_rev, pid_rate_hz and max_wheel_radps must be > 0")
        self.ticks_per_frame_per_radps = float(ticks_per_rev) / (2.0 * math.pi) / float(pid_rate_hz)
        self.max_wheel_radps = float(max_wheel_radps)
        self.attempts = int(attempts)
        self.pid_gains = tuple(pid_gains) if pid_gains else None
        if not boot_wait_s >= 0:
            raise ValueError("boot_wait_s must be >= 0")
        self.baud = int(baud)
        self.boot_wait_s = float(boot_wait_s)
        self.link = link if link is not None else SerialLink(port, baud, timeout_s)
        self._stats = LinkStats()
        self.notes: list[str] = []

    @property
    def min_reconnect_s(self) -> float:
        """Reconnects no closer than this [s]: each open resets the board."""
        return self.boot_wait_s

    @property
    def stats(self) -> LinkStats:
        return self._stats

    def _transact(self, request: bytes, parse, what: str):
        def once():
            self.link.flush_input()
            self.link.write(request)
            return parse(self.link.read_line(b"\n", MAX_LINE))

        return retry(self._stats, self.attempts, once, f"ascii bridge {what}")

    def open(self) -> None:
        """Open, wait for the bootloader, handshake with ``b``, then send the PID gains (if any)."""
        self.link.open()
        self._stats.opens += 1
        self.notes = []
        if self.boot_wait_s > 0:
            time.sleep(self.boot_wait_s)  # the board resets on open: nothing it could answer before this
        try:
            baud = self.read_baud()
        except LinkError as exc:
            self.link.close()
            raise LinkError(f"ascii bridge: no answer to the baud query 'b' {self.boot_wait_s:g} s after "
                            f"opening {getattr(self.link, 'port', '')}: check the port, the firmware "
                            f"(ros_arduino_bridge) and its BAUDRATE (driver uses {self.baud}); a board that "
                            f"boots slower needs a longer ascii_boot_wait_s ({exc})") from exc
        if baud != self.baud:
            self.notes.append(f"board reports {baud} baud, port opened at {self.baud}")
        if self.pid_gains:
            self._transact(pid_command(*self.pid_gains), parse_ok, "u")

    def close(self) -> None:
        self.link.close()

    def configure_comm_timeout(self, seconds: float) -> None:
        """Not settable over the wire: the firmware stops the motors after ``AUTO_STOP_INTERVAL`` without an
        ``m`` command (compiled in, 2000 ms in ros_arduino_bridge); change it in the firmware."""
        raise DriverError("ascii bridge: the auto-stop time is compiled into the firmware "
                          "(AUTO_STOP_INTERVAL); it cannot be set over the serial link")

    def wheel_to_ticks_per_frame(self, left_radps: float, right_radps: float) -> tuple[int, int]:
        lim = self.max_wheel_radps
        k = self.ticks_per_frame_per_radps
        return to_units(left_radps, lim, k), to_units(right_radps, lim, k)

    def send_speeds(self, left_radps: float, right_radps: float) -> None:
        self._transact(motor_command(*self.wheel_to_ticks_per_frame(left_radps, right_radps)), parse_ok, "m")

    def send_stop(self) -> None:
        self._transact(motor_command(0, 0), parse_ok, "m")

    def read_encoders(self) -> tuple[int, int]:
        return self._transact(b"e\r", parse_encoders, "e")

    def reset_encoders(self) -> None:
        self._transact(b"r\r", parse_ok, "r")

    def read_baud(self) -> int:
        return self._transact(b"b\r", parse_baud, "b")

    def exchange(self, left_radps: float, right_radps: float, now_s: float) -> WheelFeedback:
        self.send_speeds(left_radps, right_radps)
        left, right = self.read_encoders()
        return WheelFeedback(left, right)
