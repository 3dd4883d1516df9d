"""What real devices do on first connection, reproduced by the emulators, and how the drivers cope.

GNSS: binary output glued to NMEA, GST after GGA, empty geoid separation, speed without course.
RoboClaw: older firmware (2-byte status, no command 78), untuned velocity PID, the controller's serial
timeout. ZLAC8015D: no reply right after a write, wrong counts per revolution, sub-rpm commands, the
unit's communication timeout. ASCII bridge: the board resets when the port opens.
"""

from __future__ import annotations

import math
import pathlib
import time

import pytest

from agricare.drivers import roboclaw as rc
from agricare.drivers.ascii_bridge import AsciiBridgeDriver
from agricare.drivers.base import BaseDriverParams, DriveLoop
from agricare.drivers.emulators import (
    AsciiBridgeEmulator,
    GnssEmulator,
    ModbusHubEmulator,
    RoboClawEmulator,
)
from agricare.drivers.link import LinkError
from agricare.drivers.modbus_hub import STARTUP_CHECK_FAULT, ModbusHubDriver, RegisterMap
from agricare.drivers.nmea_gnss import (
    COVARIANCE_TYPE_APPROXIMATED,
    GnssFix,
    GnssReceiver,
    GnssVelocity,
    NmeaParser,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
REGMAP = RegisterMap.from_yaml(REPO / "config/hardware/zlac8015d.yaml")
TPR = 4096.0


def wait_for(cond, timeout_s=2.0):
    """Poll a condition on an emulator running in wall time (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# ============================================================================ GNSS
def _stream(emu, epochs):
    return b"".join(line for _ in range(epochs) for line in emu.epoch_lines(1.0))


def test_gnss_binary_glued_to_nmea_keeps_every_fix():
    emu = GnssEmulator(seed=3, rate_hz=0, quality=1, binary_between=True)
    data = _stream(emu, 40)
    assert data.count(b"\xb5\x62") == 40 * 4 and b"\n$" not in data  # no line break before any '$'
    p = NmeaParser()
    events = []
    for i in range(0, len(data), 37):
        events += p.feed(data[i:i + 37])
    events += p.flush()
    fixes = [e for e in events if isinstance(e, GnssFix)]
    assert len(fixes) == 40 and all(f.has_fix for f in fixes)
    # a parser that needs line breaks keeps next to nothing of this stream
    assert sum(1 for line in data.split(b"\n") if line.startswith(b"$") and b"GGA" in line[:7]) <= 1


def test_gnss_gst_after_gga_is_matched_to_its_own_epoch():
    emu = GnssEmulator(seed=4, rate_hz=0, quality=4, sentences=("RMC", "GGA", "GST"))
    p = NmeaParser()
    fixes = [e for e in p.feed(_stream(emu, 10)) if isinstance(e, GnssFix)]
    assert [f.covariance_source for f in fixes[1:]] == ["GST"] * 9
    assert fixes[0].covariance_source == "HDOP" and p.gst_follows_gga  # learned on the first epoch
    # the sigma of RTK fixed in the emulator is 1.5 cm: the fix has this epoch's GST, not an HDOP guess
    assert fixes[-1].position_covariance[4] == pytest.approx(0.015 ** 2)
    before = NmeaParser()
    for f in [e for e in before.feed(_stream(GnssEmulator(seed=4, rate_hz=0, quality=4,
                                                          sentences=("GST", "RMC", "GGA")), 5))
              if isinstance(e, GnssFix)]:
        assert f.covariance_source == "GST"  # GST first: matched at once, nothing held
    assert not before.gst_follows_gga


def test_gnss_empty_geoid_separation_gives_flagged_msl_altitude():
    emu = GnssEmulator(seed=5, rate_hz=0, quality=1, geoid_sep_m=None, altitude_msl_m=109.44,
                       sentences=("GGA",))
    [fix] = NmeaParser().feed(_stream(emu, 1))
    assert not fix.altitude_is_ellipsoidal and fix.altitude_m == pytest.approx(109.44)
    assert math.isnan(fix.geoid_separation_m)
    assert fix.covariance_type == COVARIANCE_TYPE_APPROXIMATED and fix.position_covariance[8] > 50.0 ** 2
    emu.geoid = 45.79
    [fix] = NmeaParser().feed(_stream(emu, 1))
    assert fix.altitude_is_ellipsoidal and fix.altitude_m == pytest.approx(109.44 + 45.79)


def test_gnss_speed_without_course():
    emu = GnssEmulator(seed=6, rate_hz=0, quality=1, speed_mps=0.2, course_deg=45.0, course_min_speed_mps=0.5,
                       sentences=("RMC", "VTG", "GGA"))
    p = NmeaParser()
    vels = [e for e in p.feed(_stream(emu, 3)) if isinstance(e, GnssVelocity)]
    assert vels and all(v.direction == "standstill" and math.isnan(v.course_rad) for v in vels)
    assert vels[-1].speed_mps == pytest.approx(0.2, abs=1e-3) and vels[-1].covariance_en[0] >= 0.2 ** 2
    emu.speed_mps = 2.0  # moving with a course: the course is remembered
    p.feed(_stream(emu, 1))
    emu.course_min_speed_mps = 5.0  # the course drops out while moving: speed along the last course
    [v] = [e for e in p.feed(_stream(emu, 1)) if isinstance(e, GnssVelocity)]
    assert v.direction == "held" and v.east_mps == pytest.approx(2.0 * math.sin(math.radians(45)), abs=0.01)
    assert v.covariance_en[0] > 0.1 ** 2  # wider than with a reported course


def test_gnss_receiver_over_pty_with_binary_output(tmp_path):
    link = str(tmp_path / "gnss")
    with GnssEmulator(seed=7, symlink=link, rate_hz=0, quality=4, binary_between=True) as emu:
        rx = GnssReceiver(link)
        rx.open()
        events = []
        for _ in range(10):
            emu.emit_epoch(0.1)
        assert wait_for(lambda: events.extend(rx.poll()) or sum(isinstance(e, GnssFix) for e in events) >= 9)
        rx.close()
    fixes = [e for e in events if isinstance(e, GnssFix)]
    assert all(f.has_fix for f in fixes) and rx.parser.counters.skipped_bytes > 100


# ============================================================================ RoboClaw
def _roboclaw(tmp_path, **emu_kw):
    link = str(tmp_path / "rc")
    emu = RoboClawEmulator(seed=1, symlink=link, **emu_kw).start()
    drv = rc.RoboClawDriver(link, ticks_per_rev=TPR, max_wheel_radps=5.0, timeout_s=0.1, attempts=4,
                            aux_every_n=1)
    return emu, drv


def test_roboclaw_old_firmware_detected_and_driven(tmp_path):
    emu, drv = _roboclaw(tmp_path, firmware="old")
    with emu:
        drv.open()  # one connect: no timeouts turned into a reconnect loop
        assert drv.status_bytes == 2 and drv.use_cmd78 is False
        assert drv.stats.link_errors == 0 and emu.unknown_commands >= 1  # command 78 was tried once
        fb0 = drv.exchange(2.0, -2.0, 0.0)
        assert wait_for(lambda: drv.exchange(2.0, -2.0, 0.0).left_ticks - fb0.left_ticks > 20)
        # speeds from 18/19 (magnitude + direction byte) settle on the command, with their signs
        assert wait_for(lambda: (lambda fb: abs(fb.left_radps - 2.0) < 0.05 and abs(fb.right_radps + 2.0) < 0.05)(
            drv.exchange(2.0, -2.0, 0.0)))
        emu.error_status = 0x0004  # E-stop in the 2-byte layout (0x0001 there is only a warning)
        fb = drv.exchange(0.0, 0.0, 0.0)
        assert fb.fault_code == 0x0004 and fb.fault_text == "E-stop"
        emu.error_status = 0x0001
        assert drv.exchange(0.0, 0.0, 0.0).fault_code == 0  # M1 over current *warning*: not a stop
        assert drv.stats.link_errors == 0
        drv.close()
    emu, drv = _roboclaw(tmp_path, firmware="new")
    with emu:
        drv.open()
        assert drv.status_bytes == 4 and drv.use_cmd78 is True
        drv.close()


def test_roboclaw_untuned_velocity_pid_is_refused_with_a_clear_message(tmp_path):
    emu, drv = _roboclaw(tmp_path, velocity_pid=(0.0, 0.0, 0.0, 0))
    with emu:
        with pytest.raises(rc.NotConfiguredError, match=r"velocity PID / QPPS not set for M1 .*M2.*QPPS=0"):
            drv.open()
        assert not drv.link.is_open
        drv.check_velocity_pid = False  # what happens without the check: command 37 does not move it
        drv.open()
        for _ in range(10):
            drv.exchange(3.0, 3.0, 0.0)
        assert emu.speed_commands[-1][0] > 0 and emu.model.target_tps == [0.0, 0.0]
        drv.close()


def test_roboclaw_serial_timeout_stops_the_wheels_when_the_host_hangs(tmp_path):
    emu, drv = _roboclaw(tmp_path)
    drv.comm_timeout_s = 0.2
    with emu:
        drv.open()
        assert emu.serial_timeout_s == pytest.approx(0.2)
        drv.exchange(3.0, 3.0, 0.0)
        assert emu.model.target_tps[0] > 0
        # the host process hangs: nothing more is sent; the controller stops by itself
        assert wait_for(lambda: emu.timeouts_fired == 1 and emu.model.target_tps == [0.0, 0.0])
        drv.close()


def test_drive_loop_reports_roboclaw_connect_notes(tmp_path):
    emu, drv = _roboclaw(tmp_path, firmware="old")
    params = BaseDriverParams(driver="roboclaw", port=emu.port, require_heartbeat=False, ticks_per_rev=TPR)
    with emu:
        loop = DriveLoop(params, driver=drv)
        r = loop.step(0.0)
        assert r.connected and "2-byte status" in r.message and "16/17" in r.message
        loop.shutdown()


# ============================================================================ ZLAC8015D
def _zlac(tmp_path, write_delay_s=0.01, **emu_kw):
    link = str(tmp_path / "zlac")
    emu = ModbusHubEmulator(REGMAP, seed=2, symlink=link, **emu_kw).start()
    drv = ModbusHubDriver(link, REGMAP, max_wheel_radps=10.0, timeout_s=0.2, attempts=5,
                          write_delay_s=write_delay_s)
    return emu, drv


def test_zlac_read_right_after_write_fails_without_the_delay(tmp_path):
    emu, drv = _zlac(tmp_path, write_delay_s=0.002, write_gap_s=0.1)
    drv.timeout_s = 0.15
    with emu:
        drv.open()
        for _ in range(5):
            drv.exchange(1.0, 1.0, time.monotonic())
        # every request right after a write goes unanswered (the "Modbus IO error" of real units): each
        # costs a reply timeout and a retry; with slower replies or fewer attempts it becomes a link loss
        assert emu.dropped_after_write >= 3 and drv.stats.timeouts >= 3 and drv.stats.retries >= 3
        drv.close()
    emu, drv = _zlac(tmp_path, write_delay_s=0.15, write_gap_s=0.1)
    with emu:
        drv.open()
        for _ in range(5):
            drv.exchange(1.0, 1.0, time.monotonic())
        # with the delay no request goes unanswered; on a heavily loaded test machine a late echo can still
        # cost a timeout, and the retry that follows it may land inside the gap: never more drops than that
        assert drv.stats.link_errors == 0 and emu.dropped_after_write <= drv.stats.timeouts
        drv.close()
    with pytest.raises(ValueError, match="3.5"):
        ModbusHubDriver("x", REGMAP, baud=115200, write_delay_s=0.001)


def _drive_for(drv, seconds, radps=3.0):
    """Drive until the start-up check has run (at least ``seconds``, at most 5 s on a loaded machine)."""
    t0 = time.monotonic()
    fb = None
    while time.monotonic() - t0 < 5.0:
        fb = drv.exchange(radps, radps, time.monotonic())
        if time.monotonic() - t0 >= seconds and drv._check == "done":
            break
        time.sleep(0.02)
    return fb


def test_zlac_startup_check_catches_wrong_counts_per_revolution(tmp_path):
    emu, drv = _zlac(tmp_path, counts_per_rev=16384)  # a 4096-line encoder behind a map saying 4096
    drv.startup_check_s = 0.6
    with emu:
        drv.open()
        fb = _drive_for(drv, 0.9)
        assert fb.fault_code & STARTUP_CHECK_FAULT
        assert "encoder_ticks_per_rev is 4096" in fb.fault_text and "16384" in fb.fault_text
        drv.close()
    emu, drv = _zlac(tmp_path)  # matching encoder: passes
    drv.startup_check_s = 0.6
    with emu:
        drv.open()
        fb = _drive_for(drv, 0.9)
        assert not fb.fault_code & STARTUP_CHECK_FAULT and "start-up check passed" in drv.notes
        drv.close()


def test_zlac_startup_check_waits_for_commands_it_can_judge(tmp_path):
    emu, drv = _zlac(tmp_path, counts_per_rev=16384)
    drv.startup_check_s = 0.3
    with emu:
        drv.open()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:  # creeping: too slow to judge, no verdict either way
            fb = drv.exchange(0.2, 0.2, time.monotonic())
            time.sleep(0.02)
        assert drv._check != "done" and not fb.fault_code and "start-up check passed" not in drv.notes
        fb = _drive_for(drv, 0.4)  # then a real command: judged
        assert fb.fault_code & STARTUP_CHECK_FAULT
        drv.close()


def test_zlac_startup_check_catches_a_wheel_that_does_not_follow(tmp_path):
    emu, drv = _zlac(tmp_path)
    drv.startup_check_s = 0.6
    with emu:
        drv.open()
        emu.enabled = False  # e.g. the enable did not take: the unit reports 0 rpm
        fb = _drive_for(drv, 0.9)
        assert fb.fault_code & STARTUP_CHECK_FAULT and "does not follow the command" in fb.fault_text
        drv.close()


def test_zlac_sub_rpm_commands_are_dithered_not_dropped():
    drv = ModbusHubDriver("x", REGMAP, max_wheel_radps=10.0)
    want_rpm = 0.3  # below half of the 1 rpm command unit: plain rounding sends 0 forever
    radps = want_rpm * 2 * math.pi / 60
    units = [drv.wheel_to_units(radps, -radps) for _ in range(100)]
    assert sum(u[0] for u in units) / 100 == pytest.approx(want_rpm, abs=0.011)
    assert sum(u[1] for u in units) / 100 == pytest.approx(want_rpm, abs=0.011)  # right inverted
    assert set(u[0] for u in units) == {0, 1}
    assert drv.wheel_to_units(0.0, 0.0) == (0, 0)  # a stop is exactly zero, no residue
    drv.dither = False
    assert drv.wheel_to_units(radps, radps) == (0, 0)


def test_zlac_communication_timeout_is_set_and_stops_the_wheels(tmp_path):
    emu, drv = _zlac(tmp_path)
    drv.comm_timeout_s = 0.2
    with emu:
        drv.open()
        assert emu.regs[REGMAP.registers["comm_timeout"]] == 200  # ms
        drv.exchange(3.0, 3.0, time.monotonic())
        assert wait_for(lambda: emu.comm_timeouts_fired == 1 and emu.model.target_tps == [0.0, 0.0])
        drv.close()


def test_zlac_counts_per_revolution_must_agree_with_the_parameters():
    from agricare.drivers.base import make_driver

    with pytest.raises(ValueError, match="ticks_per_rev.*disagrees"):
        make_driver(BaseDriverParams(driver="modbus", port="/dev/null", ticks_per_rev=16384.0))


# ============================================================================ ASCII bridge
def test_ascii_board_resets_on_open_and_the_driver_waits(tmp_path):
    link = str(tmp_path / "ab")
    with AsciiBridgeEmulator(seed=3, symlink=link, boot_s=0.2) as emu:
        hasty = AsciiBridgeDriver(link, timeout_s=0.03, attempts=3, boot_wait_s=0.0)
        with pytest.raises(LinkError, match="baud query 'b'"):
            hasty.open()  # exchanged right after open: the bootloader swallowed it
        assert emu.resets == 1 and emu.injected["boot_dropped"] >= 1
        assert wait_for(lambda: not emu._host_open)
        drv = AsciiBridgeDriver(link, timeout_s=0.05, attempts=3, boot_wait_s=0.6)
        drv.open()
        assert emu.resets == 2 and drv.stats.opens == 1  # one open, one reset: the handshake got through
        assert drv.stats.link_errors == 0
        drv.exchange(1.0, 1.0, 0.0)
        assert emu.motor_commands
        drv.close()


def test_ascii_reconnects_are_spaced_by_the_boot_time():
    drv = AsciiBridgeDriver("/nonexistent/port", boot_wait_s=2.0)
    params = BaseDriverParams(driver="ascii", port="/nonexistent/port", require_heartbeat=False,
                              reconnect_initial_s=0.05, reconnect_max_s=0.2)
    loop = DriveLoop(params, driver=drv)
    attempts, t = [], 0.0
    while t < 10.0:
        opens = drv.stats.opens
        r = loop.step(t)
        if "cannot connect" in r.message:
            attempts.append(t)
        assert drv.stats.opens == opens  # the port does not exist: open fails before counting
        t += 0.05
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) >= 3 and min(gaps) >= 2.0 - 1e-9  # never faster than the board can boot


def test_comm_timeout_is_part_of_every_driver():
    from agricare.drivers.base import SimMotorDriver
    from agricare.drivers.link import DriverError

    with pytest.raises(DriverError, match="AUTO_STOP_INTERVAL"):
        AsciiBridgeDriver("/nonexistent").configure_comm_timeout(0.5)
    sim = SimMotorDriver()
    sim.configure_comm_timeout(0.5)
    assert sim.comm_timeout_s == 0.5
    with pytest.raises(ValueError, match="25.5"):
        rc.RoboClawDriver("/nonexistent").configure_comm_timeout(30.0)
    with pytest.raises(ValueError, match="comm_timeout"):
        ModbusHubDriver("x", RegisterMap.from_dict({"registers": {k: v for k, v in REGMAP.registers.items()
                                                                    if k != "comm_timeout"},
                                                     "values": REGMAP.values, "encoder_ticks_per_rev": 4096}),
                        comm_timeout_s=0.5)
