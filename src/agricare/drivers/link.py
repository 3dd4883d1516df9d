"""Shared pieces of every hardware driver: errors, the serial link, reconnect backoff, wheel feedback.

A driver talks to one device over a byte link (a pyserial port, or a pty created by an emulator, opened
exactly like a real port). Everything that goes wrong on the wire ends as one of two exceptions:

- :class:`ProtocolError`: one reply was unusable (bad CRC/checksum, garbage, truncated, wrong length).
  The driver retries; the link is still believed to be up.
- :class:`LinkError`: the device is gone or stopped answering (port vanished, no reply after all retries).
  The caller stops the motors (best effort), closes the link and reconnects with :class:`Backoff`.

No clock is read here: serial timeouts are pyserial's, and :class:`Backoff` is given the time.
"""

from __future__ import annotations

import dataclasses
import math
import termios

import serial

INT32_RANGE = 1 << 32
#: what pyserial may raise on a vanished device (termios.error is not an OSError)
SERIAL_ERRORS = (OSError, ValueError, TypeError, serial.SerialException, termios.error)


class DriverError(Exception):
    """Base class of every driver error."""


class ProtocolError(DriverError):
    """One reply could not be used (checksum/CRC mismatch, garbage, truncated, out of range)."""


class ChecksumError(ProtocolError):
    """A reply's CRC or checksum did not match."""


class LinkError(DriverError):
    """The link to the device is lost (port error, or no valid reply after all retries)."""


def wrap_int32_delta(new: int, old: int) -> int:
    """Signed difference ``new - old`` of two 32-bit encoder counters, robust to wrap-around."""
    d = (int(new) - int(old)) % INT32_RANGE
    return d - INT32_RANGE if d >= INT32_RANGE // 2 else d


def to_int32(value: int) -> int:
    """Interpret the low 32 bits of ``value`` as a two's complement signed integer."""
    v = int(value) & 0xFFFFFFFF
    return v - INT32_RANGE if v & 0x80000000 else v


def clamp(value: float, limit: float) -> float:
    """Clamp ``value`` to ``[-limit, limit]``; NaN becomes 0."""
    if not math.isfinite(value):
        return 0.0 if math.isnan(value) else math.copysign(limit, value)
    return max(-limit, min(limit, value))


def to_units(value: float, limit: float, units_per_value: float) -> int:
    """Clamp ``value`` to ``[-limit, limit]`` and convert to the nearest integer device unit that is still
    within the limit (rounding never pushes a command past it). NaN -> 0."""
    cap = int(limit * units_per_value)  # floor for positive numbers
    n = int(round(clamp(value, limit) * units_per_value))
    return max(-cap, min(cap, n))


@dataclasses.dataclass
class WheelFeedback:
    """One reading of a two-wheel motor controller.

    Attributes
    ----------
    left_ticks, right_ticks : int
        Encoder counters (device units, may wrap at 32 bits).
    left_radps, right_radps : float
        Measured wheel speeds [rad/s]; NaN if the device does not report them.
    battery_v : float
        Main battery / bus voltage [V]; NaN if not read this cycle.
    fault_code : int
        Device fault/status bits; 0 = no fault.
    fault_text : str
        Human-readable fault summary ('' when no fault).
    """

    left_ticks: int
    right_ticks: int
    left_radps: float = math.nan
    right_radps: float = math.nan
    battery_v: float = math.nan
    fault_code: int = 0
    fault_text: str = ""


@dataclasses.dataclass
class LinkStats:
    """Counters a driver keeps for diagnostics."""

    transactions: int = 0
    checksum_errors: int = 0
    protocol_errors: int = 0
    timeouts: int = 0
    retries: int = 0
    link_errors: int = 0
    opens: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Backoff:
    """Exponential reconnect backoff: ``initial_s, 2*initial_s, ...`` capped at ``max_s``.

    Parameters
    ----------
    initial_s, max_s : float
        First and largest delay [s].
    factor : float
        Growth per failed attempt.
    """

    def __init__(self, initial_s: float = 0.2, max_s: float = 5.0, factor: float = 2.0):
        if not initial_s > 0 or not max_s >= initial_s or not factor >= 1.0:
            raise ValueError("backoff: need 0 < initial_s <= max_s and factor >= 1")
        self.initial_s, self.max_s, self.factor = float(initial_s), float(max_s), float(factor)
        self.failures = 0
        self.next_attempt_s = -math.inf

    def ready(self, now_s: float) -> bool:
        """True if a (re)connect attempt may be made at ``now_s``."""
        return now_s >= self.next_attempt_s

    def failed(self, now_s: float) -> float:
        """Record a failed attempt at ``now_s``; return the delay [s] until the next one."""
        delay = min(self.max_s, self.initial_s * self.factor ** self.failures)
        self.failures += 1
        self.next_attempt_s = now_s + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.next_attempt_s = -math.inf


class SerialLink:
    """A byte link over pyserial with a per-read timeout; every OS/serial failure becomes LinkError.

    Parameters
    ----------
    port : str
        Device path (``/dev/ttyUSB0``, a pty path, or a symlink to either).
    baud : int
    timeout_s : float
        Read timeout [s] for one reply.
    """

    def __init__(self, port: str, baud: int = 115200, timeout_s: float = 0.05):
        self.port, self.baud, self.timeout_s = port, int(baud), float(timeout_s)
        self._ser: serial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def open(self) -> None:
        self.close()
        try:
            self._ser = serial.Serial(self.port, self.baud, timeout=self.timeout_s,
                                      write_timeout=max(self.timeout_s, 0.1))
            self._ser.reset_input_buffer()
        except SERIAL_ERRORS as exc:
            self._ser = None
            raise LinkError(f"cannot open {self.port}: {exc}") from exc

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except SERIAL_ERRORS:
                pass

    def _need(self) -> serial.Serial:
        if self._ser is None:
            raise LinkError(f"{self.port} is not open")
        return self._ser

    def write(self, data: bytes) -> None:
        ser = self._need()
        try:
            ser.write(data)
            ser.flush()
        except SERIAL_ERRORS as exc:
            self.close()
            raise LinkError(f"write to {self.port} failed: {exc}") from exc

    def flush_input(self) -> None:
        """Drop whatever is waiting (stale or garbage bytes) before a new request."""
        ser = self._need()
        try:
            ser.reset_input_buffer()
        except SERIAL_ERRORS as exc:
            self.close()
            raise LinkError(f"{self.port}: {exc}") from exc

    def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes, waiting at most the timeout; may return fewer (b'' = nothing came)."""
        ser = self._need()
        try:
            return ser.read(n)
        except SERIAL_ERRORS as exc:
            self.close()
            raise LinkError(f"read from {self.port} failed: {exc}") from exc

    def read_available(self, max_n: int = 4096) -> bytes:
        """Read what is waiting now, without blocking (b'' if nothing)."""
        ser = self._need()
        try:
            n = ser.in_waiting
            if n:
                return ser.read(min(n, max_n))
            # nothing waiting: a zero-timeout read still notices a vanished device (EIO / hang-up)
            return ser.read(1) if self.timeout_s == 0 else b""
        except SERIAL_ERRORS as exc:
            self.close()
            raise LinkError(f"read from {self.port} failed: {exc}") from exc

    def read_line(self, terminator: bytes = b"\n", max_len: int = 256) -> bytes:
        """Read up to and including ``terminator`` or until the timeout / ``max_len``."""
        ser = self._need()
        try:
            return ser.read_until(terminator, max_len)
        except SERIAL_ERRORS as exc:
            self.close()
            raise LinkError(f"read from {self.port} failed: {exc}") from exc


class MotorDriver:
    """Interface of a two-wheel motor driver (what ``base_driver_node`` calls).

    Wheel speeds are in rad/s (positive = the wheel turns the robot forward). Every driver clamps the
    command to ``max_wheel_radps`` before it is converted to device units, so nothing outside the limits
    ever reaches the wire.
    """

    name = "abstract"
    max_wheel_radps: float = 0.0

    def open(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def exchange(self, left_radps: float, right_radps: float, now_s: float) -> WheelFeedback:
        """Send one wheel command and read back encoders (and, now and then, battery / faults)."""
        raise NotImplementedError  # pragma: no cover - interface

    def stop(self) -> None:
        """Best effort: command zero speed. Never raises."""
        try:
            self.send_stop()
        except DriverError:
            pass

    def send_stop(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def configure_comm_timeout(self, seconds: float) -> None:
        """Set the device's own communication timeout: with no valid command for ``seconds`` the device
        stops the motors by itself (a hung host process). Drivers whose device has one override this;
        the default says the device has none."""
        raise DriverError(f"{self.name}: the device has no configurable communication timeout")

    @property
    def stats(self) -> LinkStats:  # pragma: no cover - interface
        raise NotImplementedError


def retry(stats: LinkStats, attempts: int, fn, what: str):
    """Call ``fn()`` up to ``attempts`` times; ProtocolError/timeouts retry, LinkError propagates.

    After the last failed attempt raise :class:`LinkError` (the device is not answering usefully).
    """
    last: Exception | None = None
    for i in range(max(1, attempts)):
        if i:
            stats.retries += 1
        try:
            out = fn()
            stats.transactions += 1
            return out
        except ChecksumError as exc:
            stats.checksum_errors += 1
            last = exc
        except TimeoutError as exc:
            stats.timeouts += 1
            last = exc
        except ProtocolError as exc:
            stats.protocol_errors += 1
            last = exc
    stats.link_errors += 1
    raise LinkError(f"{what}: no valid reply after {max(1, attempts)} attempts ({last})")
