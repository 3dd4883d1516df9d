"""Protocol encoders/decoders of the hardware drivers, without any port."""

from __future__ import annotations

import binascii
import math
import pathlib
import struct

import pytest

from agricare.drivers import ascii_bridge as ab
from agricare.drivers import roboclaw as rc
from agricare.drivers.emulators import nmea_sentence
from agricare.drivers.link import Backoff, ChecksumError, ProtocolError, to_int32, wrap_int32_delta
from agricare.drivers.modbus_hub import (
    RegisterMap,
    crc16_modbus,
    decode_feedback,
    decode_rtu_response,
    registers_from_pdu,
    rtu_frame,
)
from agricare.drivers.nmea_gnss import (
    COVARIANCE_TYPE_APPROXIMATED,
    COVARIANCE_TYPE_DIAGONAL_KNOWN,
    COVARIANCE_TYPE_UNKNOWN,
    STATUS_FIX,
    STATUS_GBAS_FIX,
    STATUS_NO_FIX,
    STATUS_SBAS_FIX,
    NmeaParser,
)


REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def regmap():
    return RegisterMap.from_yaml(REPO / "config/hardware/zlac8015d.yaml")


# ----------------------------------------------------------------------------- RoboClaw
def test_crc16_matches_reference_and_check_value():
    assert rc.crc16(b"123456789") == 0x31C3  # CRC-16/XMODEM check value
    assert rc.crc16(b"") == 0
    for data in (b"\x80\x25", bytes(range(256)), b"\xff" * 17):
        assert rc.crc16(data) == binascii.crc_hqx(data, 0)  # stdlib CCITT, init 0


def test_drive_packet_layout():
    pkt = rc.drive_speed_packet(0x80, 1000, -1000)
    assert pkt[:2] == b"\x80\x25" and len(pkt) == 12
    assert struct.unpack(">ii", pkt[2:10]) == (1000, -1000)
    assert struct.unpack(">H", pkt[10:])[0] == binascii.crc_hqx(pkt[:10], 0)
    with pytest.raises(ValueError, match="address"):
        rc.build_packet(0x10, 37)


def test_reply_crc_covers_request_address_and_command():
    data = struct.pack(">ii", 123, -456)
    reply = data + struct.pack(">H", rc.crc16(b"\x80\x4e" + data))
    assert rc.parse_encoders(rc.decode_reply(0x80, 78, reply)) == (123, -456)
    with pytest.raises(ChecksumError):
        rc.decode_reply(0x81, 78, reply)  # same bytes, other address: CRC differs
    bad = bytearray(reply)
    bad[0] ^= 1
    with pytest.raises(ChecksumError):
        rc.decode_reply(0x80, 78, bytes(bad))
    with pytest.raises(TimeoutError):
        rc.decode_reply(0x80, 78, reply[:-1])
    with pytest.raises(ProtocolError):
        rc.decode_reply(0x80, 78, reply + b"\x00")
    batt = struct.pack(">H", 242)
    assert rc.parse_battery_v(rc.decode_reply(0x80, 24, batt + struct.pack(">H", rc.crc16(b"\x80\x18" + batt)))) \
        == pytest.approx(24.2)
    assert rc.describe_error(0x0041) == "E-stop, M1 driver fault"


def test_roboclaw_speed_conversion_clamps():
    d = rc.RoboClawDriver("/nonexistent", ticks_per_rev=2 * math.pi * 100, max_wheel_radps=2.0)
    assert d.wheel_to_qpps(1.0, -1.0) == (100, -100)
    assert d.wheel_to_qpps(50.0, -math.inf) == (200, -200)
    assert d.wheel_to_qpps(math.nan, 0.0) == (0, 0)


# ----------------------------------------------------------------------------- ASCII bridge
def test_ascii_parsers():
    assert ab.parse_encoders(b"12 -34\r\n") == (12, -34)
    assert ab.parse_encoders(b"2147483647 -2147483648\n") == (2**31 - 1, -(2**31))
    for bad in (b"12\r\n", b"12 34 56\r\n", b"1a 2\r\n", b"12  34\r\n", b"OK\r\n", b"99999999999 1\r\n",
                b"\xff\xfe 1\r\n"):
        with pytest.raises(ProtocolError):
            ab.parse_encoders(bad)
    for short in (b"", b"12 3"):
        with pytest.raises(TimeoutError):
            ab.parse_encoders(short)
    ab.parse_ok(b"OK\r\n")
    with pytest.raises(ProtocolError):
        ab.parse_ok(b"Invalid Command\r\n")
    assert ab.motor_command(5, -7) == b"m 5 -7\r"
    assert ab.pid_command(20, 12, 0, 50) == b"u 20:12:0:50\r"


def test_ascii_ticks_per_frame_conversion():
    d = ab.AsciiBridgeDriver("/nonexistent", ticks_per_rev=2 * math.pi * 300, pid_rate_hz=30, max_wheel_radps=3)
    assert d.wheel_to_ticks_per_frame(1.0, -2.0) == (10, -20)
    assert d.wheel_to_ticks_per_frame(10.0, -10.0) == (30, -30)


# ----------------------------------------------------------------------------- Modbus
def test_crc16_modbus_check_value():
    assert crc16_modbus(b"123456789") == 0x4B37
    assert rtu_frame(b"\x01\x03\x00\x00\x00\x01")[-2:] == b"\x84\x0a"


def test_register_map_yaml_and_validation(regmap):
    assert regmap.registers["target_rpm_left"] == 0x2088
    assert regmap.values["mode_velocity"] == 3
    blocks = regmap.read_blocks()
    covered = {a for s, n in blocks for a in range(s, s + n)}
    assert {0x20A5, 0x20AC, 0x20A7} <= covered
    with pytest.raises(ValueError, match="control_word"):
        RegisterMap.from_dict({"registers": {k: v for k, v in regmap.registers.items() if k != "control_word"},
                               "values": regmap.values, "encoder_ticks_per_rev": 4096})
    # counts per revolution is required: no silent 4096 default
    with pytest.raises(ValueError, match="encoder_ticks_per_rev is required.*4096.*16384"):
        RegisterMap.from_dict({"registers": regmap.registers, "values": regmap.values})


def test_decode_response_through_pymodbus_framer(regmap):
    start, count = regmap.read_blocks()[0]
    values = [0] * count
    base = start
    enc = (-5000) & 0xFFFFFFFF
    values[regmap.registers["encoder_left_hi"] - base] = enc >> 16
    values[regmap.registers["encoder_left_lo"] - base] = enc & 0xFFFF
    values[regmap.registers["actual_rpm_left"] - base] = (-600) & 0xFFFF  # -60.0 rpm
    values[regmap.registers["fault_right"] - base] = 0x0004
    raw = rtu_frame(bytes((1, 3, 2 * count)) + struct.pack(f">{count}H", *values))
    regs = registers_from_pdu(decode_rtu_response(raw, 1), start, count)
    fb = decode_feedback(regmap, regs)
    assert fb.left_ticks == -5000
    assert fb.left_radps == pytest.approx(-60.0 * 2 * math.pi / 60)
    assert fb.fault_code == 0x0004 << 16 and "over-current" in fb.fault_text
    bad = bytearray(raw)
    bad[5] ^= 0x10
    assert decode_rtu_response(bytes(bad), 1) is None  # CRC mismatch: pymodbus drops the frame
    with pytest.raises(TimeoutError):
        registers_from_pdu(None, start, count)


# ----------------------------------------------------------------------------- link helpers
def test_int32_wrap_and_backoff():
    assert wrap_int32_delta(5, 2**32 - 5) == 10
    assert wrap_int32_delta(-(2**31), 2**31 - 1) == 1
    assert to_int32(0xFFFFFFFF) == -1
    b = Backoff(0.1, 1.0)
    delays = [b.failed(0.0) for _ in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert not b.ready(0.5) and b.ready(1.0)
    b.succeeded()
    assert b.ready(-1e9)


# ----------------------------------------------------------------------------- NMEA
def _gga(q, hdop="0.9", t="120000.00", lat="5200.0000000", lon="00500.0000000", talker="GN"):
    return nmea_sentence(f"{talker}GGA,{t},{lat},N,{lon},E,{q},12,{hdop},10.000,M,45.000,M,1.0,0001")


@pytest.mark.parametrize("quality,status,uere", [(1, STATUS_FIX, 3.0), (2, STATUS_SBAS_FIX, 1.0),
                                                 (4, STATUS_GBAS_FIX, 0.02), (5, STATUS_GBAS_FIX, 0.3)])
def test_gga_quality_maps_to_status_and_hdop_covariance(quality, status, uere):
    p = NmeaParser()
    [fix] = p.feed(_gga(quality, hdop="2.0"))
    assert fix.status == status and fix.quality == quality
    assert fix.latitude_deg == pytest.approx(52.0) and fix.longitude_deg == pytest.approx(5.0)
    assert fix.altitude_m == pytest.approx(55.0)  # MSL + geoid separation = ellipsoidal
    assert fix.covariance_type == COVARIANCE_TYPE_APPROXIMATED
    assert fix.position_covariance[0] == pytest.approx((2.0 * uere) ** 2)
    assert fix.position_covariance[8] == pytest.approx((2 * 2.0 * uere) ** 2)


def test_rtk_fixed_tighter_than_float():
    p = NmeaParser()
    [fixed] = p.feed(_gga(4))
    [flt] = p.feed(_gga(5))
    assert fixed.position_covariance[0] < flt.position_covariance[0]


def test_gst_sigmas_used_for_same_epoch():
    p = NmeaParser()
    p.feed(nmea_sentence("GNGST,120000.00,0.02,0.03,0.02,10.0,0.011,0.013,0.025"))
    [fix] = p.feed(_gga(4, t="120000.00"))
    assert fix.covariance_type == COVARIANCE_TYPE_DIAGONAL_KNOWN
    assert fix.position_covariance[0] == pytest.approx(0.013**2)  # east = longitude sigma
    assert fix.position_covariance[4] == pytest.approx(0.011**2)
    assert fix.position_covariance[8] == pytest.approx(0.025**2)
    [later] = p.feed(_gga(4, t="120010.00"))  # GST 10 s old: not used
    assert later.covariance_type == COVARIANCE_TYPE_APPROXIMATED


def test_no_fix_has_nan_position_and_unknown_covariance():
    p = NmeaParser()
    [fix] = p.feed(nmea_sentence("GPGGA,120000.00,,,,,0,00,99.9,,M,,M,,"))
    assert fix.status == STATUS_NO_FIX and not fix.has_fix
    assert math.isnan(fix.latitude_deg) and fix.covariance_type == COVARIANCE_TYPE_UNKNOWN


def test_checksum_errors_counted_and_garbage_skipped_in_any_chunking():
    good = _gga(4)
    bad = bytearray(_gga(5))
    bad[-4:-2] = b"00" if bad[-4:-2] != b"00" else b"11"
    # binary output glued to a sentence (no line break), a '$' inside binary, an over-long '$' run
    stream = b"\x00\xffjunk\r\n" + good + bytes(bad) + good[:20] + b"\r\n" + b"xx" + good.rstrip() + \
        b"\xb5b\x01\x07$\x00" + b"$GPGGA,1*" + b"\r\n" + b"$" + b"A" * 500 + b"\n" + good
    for chunk in (1, 7, len(stream)):
        p = NmeaParser()
        events = []
        for i in range(0, len(stream), chunk):
            events += p.feed(stream[i:i + chunk])
        assert [e.quality for e in events] == [4, 4, 4]
        assert p.counters.checksum_errors == 2
        assert p.counters.parse_errors == 2 and p.counters.overlong == 1


def test_velocity_from_vtg_and_rmc():
    p = NmeaParser()
    [v] = p.feed(nmea_sentence("GNRMC,120000.00,A,5200.0,N,00500.0,E,1.944,90.0,010125,,,A"))
    assert v.source == "RMC" and v.east_mps == pytest.approx(1.0, abs=1e-3) and abs(v.north_mps) < 1e-6
    [v] = p.feed(nmea_sentence("GNVTG,180.0,T,,M,3.888,N,7.2,K,A"))
    assert v.source == "VTG" and v.north_mps == pytest.approx(-2.0, abs=1e-3) and abs(v.east_mps) < 1e-9
    # once VTG is seen RMC no longer produces a second velocity per epoch
    assert p.feed(nmea_sentence("GNRMC,120000.00,A,5200.0,N,00500.0,E,1.944,90.0,010125,,,A")) == []
    [still] = p.feed(nmea_sentence("GNVTG,,T,,M,0.0,N,0.0,K,A"))
    assert still.speed_mps == 0.0 and math.isnan(still.course_rad)
