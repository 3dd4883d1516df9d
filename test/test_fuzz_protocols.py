"""Fuzz every protocol parser and driver with >= 10 000 random / mutated frames, plus a short pty run each.

Asserts: no crash, only the documented exceptions leave a parser, only LinkError leaves a driver, every
command put on the wire is inside the limits, and a lost link stops the motors.
"""

from __future__ import annotations

import math
import pathlib
import random
import struct
import time

import pytest

from agricare.drivers import ascii_bridge as ab
from agricare.drivers import roboclaw as rc
from agricare.drivers.base import BaseDriverParams, DriveLoop
from agricare.drivers.emulators import (
    AsciiBridgeEmulator,
    GnssEmulator,
    ModbusHubEmulator,
    RoboClawEmulator,
    nmea_sentence,
)
from agricare.drivers.link import LinkError, ProtocolError
from agricare.drivers.modbus_hub import (
    ModbusHubDriver,
    RegisterMap,
    decode_feedback,
    decode_rtu_response,
    registers_from_pdu,
    rtu_crc_ok,
    rtu_frame,
)
from agricare.drivers.nmea_gnss import GnssFix, GnssVelocity, NmeaParser

REPO = pathlib.Path(__file__).resolve().parents[1]
REGMAP = RegisterMap.from_yaml(REPO / "config/hardware/zlac8015d.yaml")
N_FRAMES = 10_000
MAX_RADPS = 6.0
TPR = 4096.0


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """One random mutation (or none) of a valid frame."""
    b = bytearray(frame)
    op = rng.randrange(9)
    if op == 0:
        return bytes(b)
    if op == 1 and b:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    elif op == 2 and b:
        del b[rng.randrange(len(b)):]
    elif op == 3:
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    elif op == 4:
        b[0:0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    elif op == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    elif op == 6 and b:
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256)
    elif op == 7:
        return b""
    else:
        b = b + b  # duplicated
    return bytes(b)


class FakeLink:
    """In-memory stand-in for SerialLink: ``responder(request) -> reply bytes`` after each write."""

    def __init__(self, responder):
        self.responder = responder
        self.written: list[bytes] = []
        self.is_open = False
        self._pending = b""

    def open(self):
        self.is_open = True

    def close(self):
        self.is_open = False

    def flush_input(self):
        self._pending = b""

    def write(self, data):
        if not self.is_open:
            raise LinkError("closed")
        self.written.append(bytes(data))
        self._pending += self.responder(bytes(data))

    def read(self, n):
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def read_line(self, terminator=b"\n", max_len=256):
        i = self._pending.find(terminator)
        end = min(len(self._pending), max_len) if i < 0 else min(i + len(terminator), max_len)
        out, self._pending = self._pending[:end], self._pending[end:]
        return out


def open_retrying(drv, tries: int = 50) -> int:
    """Open a driver whose connect-time checks talk to a damaged link; returns the failed attempts."""
    for n in range(tries):
        try:
            drv.open()
            return n
        except LinkError:
            drv.close()
    raise AssertionError(f"could not open in {tries} tries")


# ============================================================================ RoboClaw
def roboclaw_responder(rng, good_prob=0.5):
    counts = [0, 0]

    def respond(req: bytes) -> bytes:
        addr, cmd = req[0], req[1]
        if cmd in rc.WRITE_DATA_LEN:
            valid = bytes((rc.ACK,))
        else:
            counts[0] += rng.randint(-50, 50)
            counts[1] += rng.randint(-50, 50)
            pid = struct.pack(">IIII", 98304, 16384, 0, 20000)  # P 1.5, I 0.25, D 0, QPPS 20000
            data = {78: struct.pack(">ii", *counts), 24: struct.pack(">H", 240), 90: struct.pack(">I", 0),
                    55: pid, 56: pid, 79: struct.pack(">ii", rng.randint(-9000, 9000), rng.randint(-9000, 9000)),
                    18: struct.pack(">IB", rng.randint(0, 9000), rng.randint(0, 1)),
                    19: struct.pack(">IB", rng.randint(0, 9000), rng.randint(0, 1)),
                    16: struct.pack(">IB", counts[0] & 0xFFFFFFFF, 0),
                    17: struct.pack(">IB", counts[1] & 0xFFFFFFFF, 0)}[cmd]
            valid = data + struct.pack(">H", rc.crc16(bytes((addr, cmd)) + data))
        return valid if rng.random() < good_prob else mutate(rng, valid)

    return respond


def test_fuzz_roboclaw_reply_parser():
    rng = random.Random(11)
    accepted = 0
    t0 = time.perf_counter()
    for _ in range(N_FRAMES):
        cmd = rng.choice(list(rc.REPLY_DATA_LEN))
        n = rc.REPLY_DATA_LEN[cmd]
        data = bytes(rng.randrange(256) for _ in range(n))
        frame = mutate(rng, data + struct.pack(">H", rc.crc16(bytes((0x80, cmd)) + data)))
        try:
            out = rc.decode_reply(0x80, cmd, frame)
        except (TimeoutError, ProtocolError):
            continue
        accepted += 1
        assert len(out) == n and rc.crc16(bytes((0x80, cmd)) + out) == struct.unpack(">H", frame[n:])[0]
    assert 0 < accepted < N_FRAMES
    assert time.perf_counter() - t0 < 10


def _check_roboclaw_writes(written, limit_qpps):
    n = 0
    for pkt in written:
        if pkt[1] == rc.CMD_DRIVE_M1M2_SPEED:
            assert rc.crc16(pkt[:-2]) == struct.unpack(">H", pkt[-2:])[0]
            m1, m2 = struct.unpack(">ii", pkt[2:10])
            assert abs(m1) <= limit_qpps and abs(m2) <= limit_qpps
            n += 1
    return n


def test_fuzz_roboclaw_driver_only_link_errors_and_limits():
    rng = random.Random(12)
    link = FakeLink(roboclaw_responder(rng))
    drv = rc.RoboClawDriver("fake", ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, attempts=2, link=link,
                            aux_every_n=3)
    open_retrying(drv)
    ok = lost = 0
    while len(link.written) < N_FRAMES:
        try:
            fb = drv.exchange(rng.uniform(-50, 50), rng.choice([math.nan, math.inf, -1e9, rng.uniform(-9, 9)]), 0)
            assert isinstance(fb.left_ticks, int) and isinstance(fb.right_ticks, int)
            ok += 1
        except LinkError:
            lost += 1
            drv.close()
            lost += open_retrying(drv)
    assert ok > 100 and lost > 10
    assert _check_roboclaw_writes(link.written, MAX_RADPS * TPR / (2 * math.pi)) > 1000


# ============================================================================ ASCII bridge
def ascii_responder(rng, good_prob=0.5):
    counts = [0, 0]

    def respond(req: bytes) -> bytes:
        if req.startswith(b"e"):
            counts[0] += rng.randint(-30, 30)
            counts[1] += rng.randint(-30, 30)
            valid = b"%d %d\r\n" % tuple(counts)
        elif req.startswith(b"b"):
            valid = b"57600\r\n"
        else:
            valid = b"OK\r\n"
        return valid if rng.random() < good_prob else mutate(rng, valid)

    return respond


def test_fuzz_ascii_parsers():
    rng = random.Random(21)
    accepted = 0
    for i in range(N_FRAMES):
        valid = b"%d %d\r\n" % (rng.randint(-2**31, 2**31 - 1), rng.randint(-2**31, 2**31 - 1)) if i % 2 \
            else b"OK\r\n"
        line = mutate(rng, valid)
        for parse in (ab.parse_encoders, ab.parse_ok, ab.parse_baud):
            try:
                out = parse(line)
            except (TimeoutError, ProtocolError):
                continue
            accepted += 1
            if parse is ab.parse_encoders:
                assert all(-2**31 <= v < 2**31 for v in out)
    assert accepted > 1000


def test_fuzz_ascii_driver_only_link_errors_and_limits():
    rng = random.Random(22)
    link = FakeLink(ascii_responder(rng))
    drv = ab.AsciiBridgeDriver("fake", ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, attempts=2, link=link,
                               boot_wait_s=0.0)
    open_retrying(drv)
    ok = lost = 0
    while len(link.written) < N_FRAMES:
        try:
            drv.exchange(rng.uniform(-60, 60), rng.choice([math.nan, -math.inf, rng.uniform(-9, 9)]), 0)
            ok += 1
        except LinkError:
            lost += 1
    limit = MAX_RADPS * TPR / (2 * math.pi) / 30.0
    m = [w for w in link.written if w.startswith(b"m ")]
    assert len(m) > 1000 and ok > 100 and lost > 10
    for w in m:
        left, right = (int(v) for v in w[2:].split())
        assert abs(left) <= limit and abs(right) <= limit


# ============================================================================ Modbus
def test_fuzz_modbus_response_parser():
    rng = random.Random(31)
    blocks = REGMAP.read_blocks()
    accepted = 0
    t0 = time.perf_counter()
    for _ in range(N_FRAMES):
        start, count = rng.choice(blocks)
        values = [rng.randrange(65536) for _ in range(count)]
        fc = rng.choice([3, 3, 3, 0x83, 6, 16])
        if fc == 3:
            body = bytes((1, 3, 2 * count)) + struct.pack(f">{count}H", *values)
        elif fc == 0x83:
            body = bytes((1, 0x83, rng.randint(1, 4)))
        else:
            body = bytes((1, fc)) + struct.pack(">HH", start, count)
        frame = mutate(rng, rtu_frame(body))
        try:
            pdu = decode_rtu_response(frame, 1)
            regs = registers_from_pdu(pdu, start, count)
        except (TimeoutError, ProtocolError):
            continue
        accepted += 1
        fb = decode_feedback(REGMAP, regs) if all(
            REGMAP.registers[k] in regs for k in ("encoder_left_hi", "fault_right")) else None
        assert fb is None or (math.isfinite(fb.left_radps) and -2**31 <= fb.left_ticks < 2**31)
    assert accepted > 100
    assert time.perf_counter() - t0 < 20


# ============================================================================ NMEA
def test_fuzz_nmea_parser():
    rng = random.Random(41)
    emu = GnssEmulator(seed=41, rate_hz=0, quality=5)
    lines = []
    for _ in range(N_FRAMES // 4 + 1):
        emu.quality = rng.choice([0, 1, 2, 4, 5, 6, 9])
        lines.extend(emu.epoch_lines(0.1))
    p = NmeaParser()
    events = []
    stream = bytearray()
    for line in lines[:N_FRAMES]:
        stream += mutate(rng, line)
    stream += bytes(rng.randrange(256) for _ in range(20000))
    i = 0
    while i < len(stream):
        n = rng.randint(1, 300)
        events.extend(p.feed(bytes(stream[i:i + n])))
        i += n
    c = p.counters
    assert c.fixes > 500 and c.checksum_errors > 100 and c.parse_errors > 0
    for e in events:
        if isinstance(e, GnssFix):
            assert e.status in (-1, 0, 1, 2) and len(e.position_covariance) == 9
            if e.has_fix:
                assert abs(e.latitude_deg) <= 90 and abs(e.longitude_deg) <= 180
                assert all(math.isfinite(v) and v >= 0 for v in e.position_covariance[::4])
        else:
            assert isinstance(e, GnssVelocity) and math.isfinite(e.speed_mps)


# ============================================================================ link loss -> stop (drive loop)
def test_fuzz_drive_loop_stops_on_link_loss_and_stale_commands():
    rng = random.Random(51)
    quality = {"good": 0.5}

    def responder(req):
        return roboclaw_responder(rng, quality["good"])(req)

    link = FakeLink(responder)
    params = BaseDriverParams(driver="roboclaw", port="fake", ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS,
                              max_speed_mps=2.0, max_yaw_rate_radps=3.0, cmd_timeout_s=0.5,
                              require_heartbeat=False, reconnect_initial_s=0.05, reconnect_max_s=0.2)
    drv = rc.RoboClawDriver("fake", ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, attempts=2, link=link)
    loop = DriveLoop(params, driver=drv)
    limit_qpps = MAX_RADPS * TPR / (2 * math.pi)
    t, last_cmd, steps, losses = 0.0, -1e9, 0, 0
    while len(link.written) < N_FRAMES:
        quality["good"] = rng.choice([0.0, 0.3, 0.9, 1.0])
        if rng.random() < 0.5:
            loop.set_command(rng.uniform(-5, 5), rng.uniform(-5, 5), t)
            last_cmd = t
        n_before = len(link.written)
        r = loop.step(t)
        steps += 1
        new = [w for w in link.written[n_before:] if w[1] == rc.CMD_DRIVE_M1M2_SPEED]
        _check_roboclaw_writes(new, limit_qpps)
        if not r.connected:
            losses += 1
            assert r.wheel_cmd_radps == (0.0, 0.0)
            if new:  # the best-effort stop after a failed exchange
                assert struct.unpack(">ii", new[-1][2:10]) == (0, 0)
        if t - last_cmd > params.cmd_timeout_s or last_cmd < loop.link_up_s:
            assert r.wheel_cmd_radps == (0.0, 0.0)
        t += 0.05
    assert steps > 500 and losses > 20


# ============================================================================ short pty runs
@pytest.mark.parametrize("kind", ["roboclaw", "ascii", "modbus"])
def test_fuzz_pty_heavy_faults(kind, tmp_path):
    rng = random.Random(61)
    link = str(tmp_path / kind)
    if kind == "roboclaw":
        emu = RoboClawEmulator(seed=61, symlink=link)
        drv = rc.RoboClawDriver(link, ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, timeout_s=0.02, attempts=2)
    elif kind == "ascii":
        emu = AsciiBridgeEmulator(seed=61, symlink=link)
        drv = ab.AsciiBridgeDriver(link, ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, timeout_s=0.02,
                                   attempts=2, boot_wait_s=0.0)
    else:
        emu = ModbusHubEmulator(REGMAP, seed=61, symlink=link)
        # this emulator answers right after a write: the minimum Modbus gap keeps the run short
        drv = ModbusHubDriver(link, REGMAP, max_wheel_radps=MAX_RADPS, timeout_s=0.02, attempts=2,
                              write_delay_s=0.002)
    emu.faults.garbage_prob, emu.faults.truncate_prob, emu.faults.corrupt_prob = 0.2, 0.15, 0.15
    ok = lost = 0
    with emu:
        lost += open_retrying(drv)
        for _ in range(60):
            try:
                drv.exchange(rng.uniform(-40, 40), rng.uniform(-40, 40), 0.0)
                ok += 1
            except LinkError:
                lost += 1
                for _ in range(20):  # opening talks to the device too (modbus): it may fail as well
                    try:
                        drv.open()
                        break
                    except LinkError:
                        lost += 1
        drv.close()
    assert ok > 10
    if kind == "roboclaw":
        cmds = emu.speed_commands
        k = TPR / (2 * math.pi)
    elif kind == "ascii":
        cmds = emu.motor_commands
        k = TPR / (2 * math.pi) / emu.pid_rate_hz
    else:
        cmds = emu.target_commands
        k = 60 / (2 * math.pi)
    assert cmds and all(abs(v) <= MAX_RADPS * k + 1e-9 for c in cmds for v in c)


def test_fuzz_pty_gnss_stream(tmp_path):
    from agricare.drivers.nmea_gnss import GnssReceiver

    link = str(tmp_path / "gnss")
    with GnssEmulator(seed=71, symlink=link, rate_hz=0, quality=4) as emu:
        emu.faults.garbage_prob, emu.faults.truncate_prob, emu.faults.corrupt_prob = 0.2, 0.1, 0.2
        rx = GnssReceiver(link)
        rx.open()
        events = []
        for _ in range(50):
            emu.emit_epoch(0.1)
            events.extend(rx.poll())
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            got = rx.poll()
            events.extend(got)
            if not got:
                time.sleep(0.01)
                if not rx.poll():
                    break
        rx.close()
    c = rx.parser.counters
    assert c.fixes > 10 and c.checksum_errors > 0
    assert all(e.status == 2 for e in events if isinstance(e, GnssFix))
    assert nmea_sentence("GPGGA,") and rtu_crc_ok(rtu_frame(b"\x01\x03"))
