"""Modbus-RTU dual-channel hub-motor driver (ZLAC8015D-class register map) through pymodbus.

The register map lives in YAML (``config/hardware/zlac8015d.yaml``) so another driver model of the same
family is a config change. The map names:

- ``registers``: ``operating_mode``, ``control_word``, ``target_rpm_left/right`` (int16),
  ``actual_rpm_left/right`` (int16), ``encoder_left_hi/lo``, ``encoder_right_hi/lo`` (int32 split in two
  holding registers), ``fault_left/right`` (bit fields), optionally ``bus_voltage``.
- ``values``: ``mode_velocity``, ``control_enable``, ``control_stop``, ``control_clear_fault``.
- ``scale``: register units per rpm for target and actual speed, units per volt for the bus voltage.
- ``fault_codes``: bit -> text.

Writes use function 0x06 / 0x10 (write single / multiple holding registers), reads function 0x03.

What real units need, and what :class:`ModbusHubDriver` does about it:

- A request sent right after the reply to a write gets no answer on real ZLAC8015D units (Modbus IO
  errors). The driver waits ``write_delay_s`` after every write before the next request: at least the
  Modbus RTU inter-frame gap of 3.5 character times (1.75 ms fixed above 19200 baud), default 10 ms.
- ``encoder_ticks_per_rev`` is required in the map (no default): 4096 for a 1024-line encoder, 16384 for a
  4096-line encoder (x4 quadrature); read the line count from the motor's label or data sheet.
- Start-up check, over the first ``startup_check_s`` of driving: the speed the unit reports must follow
  the command (motor enabled, right mode, wired), and the speed from the encoder counts (with the
  configured counts per revolution) must match the speed the unit reports; otherwise the driver reports
  a fault naming the likely cause (the robot stops) until the next connect.
- Speeds are commanded in whole units of ``target_rpm_per_unit`` (1 rpm): requests smaller than half a
  unit would round to zero. The driver carries the rounding error over to the next command (first-order
  dithering), so the average commanded speed equals the request; ``dither=False`` rounds instead.
- ``comm_timeout`` (optional register): the unit's own communication timeout, set at connect by
  :meth:`ModbusHubDriver.configure_comm_timeout` so the motors stop when the host stops talking.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
import struct
import time

import yaml
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.pdu import DecodePDU

from agricare.drivers.link import (
    SERIAL_ERRORS,
    DriverError,
    clamp,
    wrap_int32_delta,
    LinkError,
    LinkStats,
    MotorDriver,
    ProtocolError,
    WheelFeedback,
    to_units,
    retry,
    to_int32,
)

REQUIRED_REGISTERS = ("operating_mode", "control_word", "target_rpm_left", "target_rpm_right",
                      "actual_rpm_left", "actual_rpm_right", "encoder_left_hi", "encoder_left_lo",
                      "encoder_right_hi", "encoder_right_lo", "fault_left", "fault_right")
REQUIRED_VALUES = ("mode_velocity", "control_enable", "control_stop", "control_clear_fault")
READ_REGISTERS = ("actual_rpm_left", "actual_rpm_right", "encoder_left_hi", "encoder_left_lo",
                  "encoder_right_hi", "encoder_right_lo", "fault_left", "fault_right")
RPM_TO_RADPS = 2.0 * math.pi / 60.0


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (reflected polynomial 0xA001, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for b in bytes(data):
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(body: bytes) -> bytes:
    """Append the CRC (little-endian) to an RTU ``device_id + function + data`` body."""
    return bytes(body) + struct.pack("<H", crc16_modbus(body))


def rtu_crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16_modbus(frame[:-2]) == struct.unpack("<H", bytes(frame[-2:]))[0]


def to_int16(value: int) -> int:
    v = int(value) & 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


@dataclasses.dataclass(frozen=True)
class RegisterMap:
    """A hub-motor driver's register map (see module docstring); build with :meth:`from_yaml`."""

    model: str
    registers: dict
    values: dict
    encoder_ticks_per_rev: float        # required: 4096 (1024-line encoder) or 16384 (4096-line), see above
    target_rpm_per_unit: float = 1.0
    actual_rpm_per_unit: float = 0.1
    volts_per_unit: float = 0.01
    max_rpm: float = 300.0
    comm_timeout_ms_per_unit: float = 1.0
    fault_codes: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        missing = [k for k in REQUIRED_REGISTERS if k not in self.registers]
        if missing:
            raise ValueError(f"register map {self.model}: registers missing: {', '.join(missing)}")
        missing = [k for k in REQUIRED_VALUES if k not in self.values]
        if missing:
            raise ValueError(f"register map {self.model}: values missing: {', '.join(missing)}")
        for k, a in self.registers.items():
            if a is not None and not (isinstance(a, int) and 0 <= a <= 0xFFFF):
                raise ValueError(f"register map {self.model}: register {k} = {a!r} is not 0..0xFFFF")
        for name in ("target_rpm_per_unit", "actual_rpm_per_unit", "volts_per_unit", "encoder_ticks_per_rev",
                     "max_rpm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"register map {self.model}: {name} must be > 0")

    @classmethod
    def from_dict(cls, d: dict) -> RegisterMap:
        scale = d.get("scale", {}) or {}
        if d.get("encoder_ticks_per_rev") is None:
            raise ValueError(f"register map {d.get('model', 'unknown')}: encoder_ticks_per_rev is required "
                             "(counts per wheel revolution: 4096 for a 1024-line encoder, 16384 for a "
                             "4096-line encoder; see the motor's label)")
        return cls(model=str(d.get("model", "unknown")), registers=dict(d.get("registers", {})),
                   values=dict(d.get("values", {})),
                   comm_timeout_ms_per_unit=float(scale.get("comm_timeout_ms_per_unit", 1.0)),
                   target_rpm_per_unit=float(scale.get("target_rpm_per_unit", 1.0)),
                   actual_rpm_per_unit=float(scale.get("actual_rpm_per_unit", 0.1)),
                   volts_per_unit=float(scale.get("volts_per_unit", 0.01)),
                   encoder_ticks_per_rev=float(d["encoder_ticks_per_rev"]),
                   max_rpm=float(d.get("max_rpm", 300)),
                   fault_codes={int(k): str(v) for k, v in (d.get("fault_codes", {}) or {}).items()})

    @classmethod
    def from_yaml(cls, path) -> RegisterMap:
        path = pathlib.Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"register map {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"register map {path}: not a mapping")
        return cls.from_dict(data)

    def addr(self, name: str) -> int | None:
        return self.registers.get(name)

    def read_blocks(self, max_gap: int = 8, max_count: int = 64) -> list[tuple[int, int]]:
        """Contiguous ``(start, count)`` blocks covering every feedback register (+ bus voltage)."""
        names = list(READ_REGISTERS) + (["bus_voltage"] if self.registers.get("bus_voltage") is not None
                                        else [])
        addrs = sorted({self.registers[n] for n in names})
        blocks: list[list[int]] = []
        for a in addrs:
            if blocks and a - blocks[-1][1] <= max_gap and a - blocks[-1][0] < max_count:
                blocks[-1][1] = a
            else:
                blocks.append([a, a])
        return [(s, e - s + 1) for s, e in blocks]

    def describe_faults(self, code: int) -> str:
        return ", ".join(t for bit, t in self.fault_codes.items() if code & bit) or (
            f"fault {code:#x}" if code else "")


def decode_feedback(regmap: RegisterMap, regs: dict) -> WheelFeedback:
    """Register values ``{address: uint16}`` -> :class:`WheelFeedback`.

    Raises
    ------
    ProtocolError
        A register is missing or a value is outside 0..0xFFFF.
    """
    def get(name):
        a = regmap.registers[name]
        v = regs.get(a)
        if v is None or not isinstance(v, int) or not 0 <= v <= 0xFFFF:
            raise ProtocolError(f"modbus: register {name} ({a:#06x}) missing or invalid: {v!r}")
        return v

    enc_l = to_int32((get("encoder_left_hi") << 16) | get("encoder_left_lo"))
    enc_r = to_int32((get("encoder_right_hi") << 16) | get("encoder_right_lo"))
    k = regmap.actual_rpm_per_unit * RPM_TO_RADPS
    left = to_int16(get("actual_rpm_left")) * k
    right = to_int16(get("actual_rpm_right")) * k
    fault = (get("fault_left") & 0xFFFF) | (get("fault_right") << 16)
    volts = math.nan
    if regmap.registers.get("bus_voltage") is not None:
        volts = get("bus_voltage") * regmap.volts_per_unit
    text = ""
    if fault:
        parts = []
        if fault & 0xFFFF:
            parts.append("left: " + regmap.describe_faults(fault & 0xFFFF))
        if fault >> 16:
            parts.append("right: " + regmap.describe_faults(fault >> 16))
        text = "; ".join(parts)
    return WheelFeedback(enc_l, enc_r, left_radps=left, right_radps=right, battery_v=volts,
                         fault_code=fault, fault_text=text)


_RESPONSE_DECODER = None


def decode_rtu_response(raw: bytes, device_id: int):
    """Run raw bytes through pymodbus' RTU framer (client side); return the first PDU or None.

    This is the parser the driver relies on; exposed so it can be fuzzed without a port.

    Raises
    ------
    ProtocolError
        pymodbus found a frame with a good CRC but could not decode it.
    """
    global _RESPONSE_DECODER
    if _RESPONSE_DECODER is None:
        _RESPONSE_DECODER = FramerRTU(DecodePDU(False))
    try:
        _, pdu = _RESPONSE_DECODER.handleFrame(bytes(raw), device_id, 0)
    except ModbusException as exc:
        raise ProtocolError(f"modbus: {exc}") from exc
    return pdu


def registers_from_pdu(pdu, start: int, count: int) -> dict:
    """A read-holding-registers response PDU -> ``{address: value}``; checks function and count."""
    if pdu is None:
        raise TimeoutError("modbus: no response")
    if pdu.isError():
        raise ProtocolError(f"modbus: exception response {getattr(pdu, 'exception_code', '?')}")
    regs = list(getattr(pdu, "registers", []) or [])
    if len(regs) != count:
        raise ProtocolError(f"modbus: expected {count} registers, got {len(regs)}")
    return {start + i: int(v) for i, v in enumerate(regs)}


#: fault bit (above the two 16-bit device fault words) set by the driver's start-up check
STARTUP_CHECK_FAULT = 1 << 32
MODBUS_GAP_ABOVE_19200_S = 0.00175  # Modbus RTU: fixed 3.5-character gap above 19200 baud


def inter_frame_gap_s(baud: int) -> float:
    """Modbus RTU minimum silence between frames: 3.5 characters of 11 bits, 1.75 ms above 19200 baud."""
    return MODBUS_GAP_ABOVE_19200_S if baud > 19200 else 3.5 * 11.0 / float(baud)


class ModbusHubDriver(MotorDriver):
    """Dual-channel hub-motor driver over Modbus-RTU (pymodbus ``ModbusSerialClient``).

    Parameters
    ----------
    port : str
    regmap : RegisterMap
    baud : int
    device_id : int
        Modbus slave id (1..247).
    max_wheel_radps : float
        Command limit [rad/s]; also capped at the map's ``max_rpm``.
    timeout_s : float
        Reply timeout [s] per attempt.
    attempts : int
    right_inverted : bool
        Hub motors on the right side are usually mounted mirrored: negate its target and feedback.
    write_delay_s : float
        Silence after every write before the next request [s]; at least :func:`inter_frame_gap_s`.
    comm_timeout_s : float
        The unit's communication timeout set at connect (map register ``comm_timeout``); 0 leaves it.
    startup_check_s : float
        Length of the start-up speed check [s] (0 disables it).
    startup_tolerance : float
        Relative speed disagreement the start-up check accepts.
    dither : bool
        Carry the rounding error of speed commands over to the next command (see the module docstring).
    """

    name = "modbus"

    def __init__(self, port: str, regmap: RegisterMap, baud: int = 115200, device_id: int = 1,
                 max_wheel_radps: float = 10.0, timeout_s: float = 0.05, attempts: int = 3,
                 right_inverted: bool = True, write_delay_s: float = 0.01, comm_timeout_s: float = 0.0,
                 startup_check_s: float = 1.0, startup_tolerance: float = 0.3, dither: bool = True):
        if not 1 <= device_id <= 247:
            raise ValueError(f"device_id must be 1..247, got {device_id}")
        if not max_wheel_radps > 0:
            raise ValueError("max_wheel_radps must be > 0")
        gap = inter_frame_gap_s(baud)
        if not write_delay_s >= gap:
            raise ValueError(f"write_delay_s must be >= the Modbus RTU inter-frame gap of 3.5 characters "
                             f"({gap * 1e3:.2f} ms at {baud} baud), got {write_delay_s}")
        if comm_timeout_s < 0 or (comm_timeout_s > 0 and regmap.registers.get("comm_timeout") is None):
            raise ValueError("comm_timeout_s needs the register map's 'comm_timeout' register (or 0)")
        self.regmap = regmap
        self.device_id = int(device_id)
        self.max_wheel_radps = min(float(max_wheel_radps), regmap.max_rpm * RPM_TO_RADPS)
        self.attempts = int(attempts)
        self.right_sign = -1 if right_inverted else 1
        self.port, self.baud, self.timeout_s = port, int(baud), float(timeout_s)
        self.write_delay_s = float(write_delay_s)
        self.comm_timeout_s = float(comm_timeout_s)
        self.startup_check_s = float(startup_check_s)
        self.startup_tolerance = float(startup_tolerance)
        self.dither = bool(dither)
        self._client: ModbusSerialClient | None = None
        self._stats = LinkStats()
        self._blocks = regmap.read_blocks()
        self._residual = [0.0, 0.0]
        self.notes: list[str] = []
        self.startup_fault = ""
        self._check = None
        logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)

    @property
    def stats(self) -> LinkStats:
        return self._stats

    @property
    def min_command_rpm(self) -> float:
        """Smallest non-zero speed the unit can be commanded [rpm] (one target register unit)."""
        return self.regmap.target_rpm_per_unit

    def _call(self, fn, what, post=None, write=False):
        def once():
            if self._client is None:
                raise LinkError(f"modbus {self.port} is not open")
            try:
                rr = fn(self._client)
            except ConnectionException as exc:
                # pymodbus closes the port itself after a write timeout or an OS error and reopens it on
                # the next request: retry; if the port is really gone, every attempt fails -> LinkError
                raise TimeoutError(f"modbus {self.port}: {exc}") from exc
            except ModbusIOException as exc:
                raise TimeoutError(f"modbus {what}: {exc}") from exc
            except ModbusException as exc:
                raise ProtocolError(f"modbus {what}: {exc}") from exc
            except (*SERIAL_ERRORS, struct.error) as exc:
                raise LinkError(f"modbus {self.port}: {exc}") from exc
            finally:
                if write:  # the unit needs silence after a write before it takes the next request
                    time.sleep(self.write_delay_s)
            if rr is None:
                raise TimeoutError(f"modbus {what}: no response")
            if rr.isError():
                raise ProtocolError(f"modbus {what}: exception response {getattr(rr, 'exception_code', '?')}")
            return post(rr) if post is not None else rr

        return retry(self._stats, self.attempts, once, f"modbus {what}")

    def _write(self, name: str, value: int):
        addr = self.regmap.registers[name]
        return self._call(lambda c: c.write_register(addr, int(value) & 0xFFFF, device_id=self.device_id),
                          f"write {name}", write=True)

    def open(self) -> None:
        self.close()
        client = ModbusSerialClient(self.port, framer=FramerType.RTU, baudrate=self.baud,
                                    timeout=self.timeout_s, retries=0)
        if not client.connect():
            raise LinkError(f"cannot open {self.port}")
        self._client = client
        self._stats.opens += 1
        self.notes = []
        self.startup_fault = ""
        self._check = None
        self._residual = [0.0, 0.0]
        try:
            if self.comm_timeout_s > 0:
                self.configure_comm_timeout(self.comm_timeout_s)
            self._write("operating_mode", self.regmap.values["mode_velocity"])
            self._write_targets(0, 0)
            self._write("control_word", self.regmap.values["control_enable"])
        except DriverError:
            self.close()
            raise

    def configure_comm_timeout(self, seconds: float) -> None:
        """Set the unit's communication timeout (map register ``comm_timeout``): with no request for this
        long the unit stops the motors by itself."""
        if self.regmap.registers.get("comm_timeout") is None:
            raise ValueError(f"register map {self.regmap.model} has no 'comm_timeout' register")
        units = int(round(float(seconds) * 1000.0 / self.regmap.comm_timeout_ms_per_unit))
        if not 0 <= units <= 0x7FFF:
            raise ValueError(f"communication timeout {seconds} s out of range")
        self._write("comm_timeout", units)
        addr = self.regmap.registers["comm_timeout"]
        [back] = self._call(lambda c: c.read_holding_registers(addr, count=1, device_id=self.device_id),
                            "read comm_timeout", post=lambda rr: list(registers_from_pdu(rr, addr, 1).values()))
        if back != units:
            raise DriverError(f"modbus: communication timeout register {addr:#06x} reads {back} after writing "
                            f"{units}: the unit did not take it (check the register map)")
        self.notes.append(f"communication timeout {seconds:g} s")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # pragma: no cover - pyserial close never matters here
                pass

    def wheel_to_units(self, left_radps: float, right_radps: float) -> tuple[int, int]:
        """Clamp and convert to int16 target register units (right side sign applied, dithered)."""
        lim = self.max_wheel_radps
        k = 1.0 / (RPM_TO_RADPS * self.regmap.target_rpm_per_unit)
        out = []
        for i, v in enumerate((left_radps, right_radps)):
            exact = clamp(v, lim) * k
            if exact == 0.0 or not self.dither:
                self._residual[i] = 0.0  # a stop is exactly zero
                n = to_units(v, lim, k)
            else:
                want = exact + self._residual[i]
                n = int(round(want))
                cap = int(lim * k)
                n = max(-cap, min(cap, n))
                self._residual[i] = want - n
            out.append(n)
        left, right = out[0], out[1] * self.right_sign
        return max(-32768, min(32767, left)), max(-32768, min(32767, right))

    def _write_targets(self, left_units: int, right_units: int):
        a_l = self.regmap.registers["target_rpm_left"]
        a_r = self.regmap.registers["target_rpm_right"]
        self._last_units = (left_units, right_units * self.right_sign)
        if a_r == a_l + 1:
            self._call(lambda c: c.write_registers(a_l, [left_units & 0xFFFF, right_units & 0xFFFF],
                                                   device_id=self.device_id), "write targets", write=True)
        else:
            self._write("target_rpm_left", left_units)
            self._write("target_rpm_right", right_units)

    def send_speeds(self, left_radps: float, right_radps: float) -> None:
        self._write_targets(*self.wheel_to_units(left_radps, right_radps))

    def send_stop(self) -> None:
        self._residual = [0.0, 0.0]
        self._write_targets(0, 0)

    def clear_fault(self) -> None:
        """Operator action: clear latched faults and re-enable (never done automatically)."""
        self._write("control_word", self.regmap.values["control_clear_fault"])
        self._write("control_word", self.regmap.values["control_enable"])

    def read_feedback(self) -> WheelFeedback:
        regs: dict = {}
        for start, count in self._blocks:
            regs.update(self._call(
                lambda c, s=start, n=count: c.read_holding_registers(s, count=n, device_id=self.device_id),
                f"read {start:#06x}+{count}", post=lambda rr, s=start, n=count: registers_from_pdu(rr, s, n)))
        fb = decode_feedback(self.regmap, regs)
        if self.right_sign < 0:
            fb.right_ticks = to_int32(-fb.right_ticks)
            fb.right_radps = -fb.right_radps
        return fb

    def exchange(self, left_radps: float, right_radps: float, now_s: float) -> WheelFeedback:
        self.send_speeds(left_radps, right_radps)
        try:
            fb = self.read_feedback()
        except ProtocolError as exc:  # decode problem after a good transaction: count, then give up
            self._stats.protocol_errors += 1
            raise LinkError(str(exc)) from exc
        self._startup_check(fb, now_s)
        if self.startup_fault:
            fb.fault_code |= STARTUP_CHECK_FAULT
            fb.fault_text = "; ".join(t for t in (fb.fault_text, self.startup_fault) if t)
        return fb

    # ------------------------------------------------------------------ start-up check
    def _startup_check(self, fb: WheelFeedback, now_s: float) -> None:
        """Over the first ``startup_check_s`` of non-zero commands compare (1) the commanded with the
        reported speed and (2) the speed from encoder counts with the reported speed."""
        if self.startup_check_s <= 0 or self._check == "done":
            return
        k = self.regmap.target_rpm_per_unit * RPM_TO_RADPS
        cmd = (self._last_units[0] * k, self._last_units[1] * k)
        if self._check is None:
            if not any(cmd):
                return
            self._check = dict(t0=now_s, ticks0=(fb.left_ticks, fb.right_ticks), cmd=[0.0, 0.0],
                               rep=[0.0, 0.0], n=0)
            return
        c = self._check
        c["n"] += 1
        for i, (commanded, reported) in enumerate(zip(cmd, (fb.left_radps, fb.right_radps))):
            c["cmd"][i] += abs(commanded)
            c["rep"][i] += abs(reported) if math.isfinite(reported) else 0.0
        if now_s - c["t0"] < self.startup_check_s:
            return
        dt = now_s - c["t0"]
        tpr = self.regmap.encoder_ticks_per_rev
        problems = []
        judged = 0
        for i, side in enumerate(("left", "right")):
            mean_cmd, mean_rep = c["cmd"][i] / c["n"], c["rep"][i] / c["n"]
            ticks = abs(wrap_int32_delta((fb.left_ticks, fb.right_ticks)[i], c["ticks0"][i]))
            enc = ticks / tpr * 2.0 * math.pi / dt
            if mean_cmd < 0.5:  # too slow to judge (rad/s)
                continue
            judged += 1
            if mean_rep < (1.0 - self.startup_tolerance) * mean_cmd * 0.5:
                problems.append(f"{side} wheel does not follow the command (commanded {mean_cmd:.2f} rad/s, "
                                f"reported {mean_rep:.2f} rad/s): check enable, mode, motor wiring")
            elif mean_rep > 0 and abs(enc / mean_rep - 1.0) > self.startup_tolerance:
                actual = tpr * enc / mean_rep
                problems.append(f"{side} encoder counts disagree with the reported speed by a factor "
                                f"{enc / mean_rep:.2f}: encoder_ticks_per_rev is {tpr:g}, the motor seems to "
                                f"have {actual:.0f} (4096 for a 1024-line, 16384 for a 4096-line encoder)")
        if not judged:  # the commands were too small to tell anything: check the next window
            self._check = None
            return
        self._check = "done"
        if problems:
            self.startup_fault = "start-up check failed: " + "; ".join(problems)
        else:
            self.notes.append("start-up check passed")
