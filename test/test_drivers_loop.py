"""DriveLoop (the clock-free core of base_driver_node): watchdogs, limits, reconnects, odometry; GNSS on a pty."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest

from agricare.drivers.base import BaseDriverParams, DriveLoop, SimMotorDriver, check_port, make_driver
from agricare.drivers.emulators import GnssEmulator, RoboClawEmulator
from agricare.drivers.link import LinkError
from agricare.drivers.nmea_gnss import STATUS_GBAS_FIX, GnssReceiver
from agricare.drivers.roboclaw import RoboClawDriver

P = BaseDriverParams(driver="sim", wheel_radius_m=0.1, wheel_separation_m=0.5, ticks_per_rev=4096.0,
                     max_speed_mps=1.0, max_yaw_rate_radps=1.0, max_wheel_radps=8.0, cmd_timeout_s=0.5,
                     heartbeat_timeout_s=0.3, reconnect_initial_s=0.2, reconnect_max_s=1.0)


def drive(loop, t0, t1, dt=0.05, v=None, w=0.0, beat=True):
    """Step the loop from t0 to t1; send a command and a heartbeat every step if asked."""
    out = []
    t = t0
    while t < t1 - 1e-9:
        if v is not None:
            loop.set_command(v, w, t)
        if beat:
            loop.heartbeat(t)
        out.append((t, loop.step(t)))
        t += dt
    return out


def test_params_validation_names_the_field():
    for kwargs, field in (({"driver": "canbus"}, "driver"), ({"driver": "roboclaw"}, "port"),
                          ({"max_speed_mps": -1.0}, "max_speed_mps"), ({"cmd_timeout_s": 0.0}, "cmd_timeout_s"),
                          ({"roboclaw_address": 3}, "roboclaw_address"), ({"baud": 0}, "baud"),
                          ({"ascii_pid_gains": "1:2:3"}, "ascii_pid_gains")):
        with pytest.raises(ValueError, match=field):
            BaseDriverParams(**kwargs)
    with pytest.raises(ValueError, match="port"):
        check_port(BaseDriverParams(driver="ascii", port="/dev/does_not_exist_42"))
    with pytest.raises(ValueError, match="register_map_file"):
        make_driver(BaseDriverParams(driver="modbus", port="/dev/null", register_map_file="/nope.yaml"))


def test_straight_line_odometry_and_limits():
    loop = DriveLoop(P)
    drive(loop, 0.0, 0.1, v=0.0)  # connect and arm with a zero command (a driver starts stopped)
    drive(loop, 0.1, 2.1, v=0.5)
    x, y, yaw = loop.odometry.pose
    assert x == pytest.approx(0.5 * 2.0, abs=0.06) and abs(y) < 1e-3 and abs(yaw) < 1e-3
    # too fast and too sharp: scaled down together, curvature kept
    res = drive(loop, 2.1, 2.2, v=3.0, w=3.0)[-1][1]
    left, right = res.wheel_cmd_radps
    v, w = loop.kinematics.forward(left, right)
    assert w / v == pytest.approx(1.0, rel=1e-6)
    assert max(abs(left), abs(right)) <= P.max_wheel_radps + 1e-9 and abs(v) <= P.max_speed_mps + 1e-9


def test_stale_cmd_vel_stops_within_timeout():
    loop = DriveLoop(P)
    drive(loop, 0.0, 0.1, v=0.0)
    drive(loop, 0.1, 1.0, v=0.5)
    assert loop.driver.speed_radps[0] > 0
    res = drive(loop, 1.0, 2.0)  # no more commands, heartbeats continue
    stopped_at = next(t for t, r in res if r.wheel_cmd_radps == (0.0, 0.0))
    assert stopped_at - 0.95 <= P.cmd_timeout_s + 0.05 + 1e-9
    assert "older than" in res[-1][1].stop_reason


def test_stale_heartbeat_stops_and_missing_heartbeat_never_moves():
    loop = DriveLoop(P)
    drive(loop, 0.0, 0.1, v=0.0)
    res = drive(loop, 0.1, 0.5, v=0.5)
    assert res[-1][1].wheel_cmd_radps[0] > 0
    res = drive(loop, 0.5, 1.5, v=0.5, beat=False)
    stopped = [t for t, r in res if r.wheel_cmd_radps == (0.0, 0.0)]
    assert stopped and stopped[0] - 0.45 <= P.heartbeat_timeout_s + 0.05 + 1e-9
    assert "heartbeat" in res[-1][1].stop_reason and res[-1][1].level == "warn"
    fresh = DriveLoop(P)
    drive(fresh, 0.0, 0.1, v=0.0, beat=False)
    res = drive(fresh, 0.1, 1.0, v=0.5, beat=False)
    assert all(r.wheel_cmd_radps == (0.0, 0.0) for _, r in res)
    assert "heartbeat" in res[-1][1].stop_reason
    no_hb = DriveLoop(dataclasses.replace(P, require_heartbeat=False))
    drive(no_hb, 0.0, 0.1, v=0.0, beat=False)
    assert drive(no_hb, 0.1, 0.3, v=0.5, beat=False)[-1][1].wheel_cmd_radps[0] > 0


def test_a_started_driver_never_drives_off_on_the_command_stream_by_itself():
    """A driver process (re)started while upstream keeps sending a moving command (a restart after a crash):
    the wheels stay still until a zero command says upstream stopped; then the next command drives."""
    loop = DriveLoop(P)
    res = drive(loop, 0.0, 1.0, v=0.5)
    assert all(r.wheel_cmd_radps == (0.0, 0.0) for _, r in res)
    assert res[-1][1].stop_reason == "driver started: stopped until a zero command (no motion by itself)"
    assert loop.driver.speed_radps == [0.0, 0.0]
    drive(loop, 1.0, 1.1, v=0.0)
    assert drive(loop, 1.1, 1.3, v=0.5)[-1][1].wheel_cmd_radps[0] > 0


def test_a_stalled_cycle_stops_until_a_zero_command():
    """No device exchange for longer than the device's own communication timeout (the process was frozen):
    the device has stopped the wheels; the fresh command stream after the stall must not start them again.
    A gap just under the timeout is no stall."""
    loop = DriveLoop(P)
    drive(loop, 0.0, 0.1, v=0.0)
    drive(loop, 0.1, 1.0, v=0.5)
    assert loop.driver.speed_radps[0] > 0
    gap = P.comm_timeout_s - 0.05              # late, but within the device's timeout: keeps driving
    res = drive(loop, 1.0 + gap, 1.5 + gap, v=0.5)
    assert all(r.wheel_cmd_radps[0] > 0 for _, r in res) and loop.stalls == 0
    t = 1.5 + gap + P.comm_timeout_s + 0.1     # frozen longer than the device's timeout (SIGSTOP ... SIGCONT)
    res = drive(loop, t, t + 1.0, v=0.5)
    assert all(r.wheel_cmd_radps == (0.0, 0.0) for _, r in res) and loop.stalls == 1
    assert res[0][1].stop_reason.startswith("driver cycle stalled 0.6")
    assert "no motion by itself" in res[-1][1].stop_reason
    drive(loop, t + 1.0, t + 1.1, v=0.0)        # upstream stopped and starts again
    assert drive(loop, t + 1.1, t + 1.3, v=0.5)[-1][1].wheel_cmd_radps[0] > 0


def test_a_stalled_cycle_whose_exchange_fails_is_still_reported_as_a_stall():
    """A frozen process whose first exchange after SIGCONT fails (the device answered too late for it): the
    error names the stall before the lost link, and the reconnect still waits for a zero command."""
    drv = SimMotorDriver(P.ticks_per_rev, P.max_wheel_radps)
    loop = DriveLoop(P, driver=drv)
    drive(loop, 0.0, 0.1, v=0.0)
    drive(loop, 0.1, 1.0, v=0.5)
    t = 1.0 + P.comm_timeout_s + 0.2
    drv.fail_next = 1
    loop.set_command(0.5, 0.0, t)
    res = loop.step(t)
    assert not res.connected and res.level == "error" and loop.stalls == 1
    assert res.message.startswith("driver cycle stalled 0.7") and "link lost" in res.message, res.message
    res = drive(loop, t + 0.05, t + 1.5, v=0.5)
    assert loop.connected and all(r.wheel_cmd_radps == (0.0, 0.0) for _, r in res)
    drive(loop, t + 1.5, t + 1.6, v=0.0)
    assert drive(loop, t + 1.6, t + 1.8, v=0.5)[-1][1].wheel_cmd_radps[0] > 0


def test_link_loss_stops_backs_off_and_never_replays_old_command():
    drv = SimMotorDriver(P.ticks_per_rev, P.max_wheel_radps)
    loop = DriveLoop(P, driver=drv)
    drive(loop, 0.0, 0.1, v=0.0)
    drive(loop, 0.1, 0.5, v=0.5)
    drv.fail_next = 3
    loop.set_command(0.5, 0.0, 0.5)
    res = loop.step(0.5)
    assert not res.connected and res.wheel_cmd_radps == (0.0, 0.0) and res.level == "error"
    assert drv.commands[-1] == (0.0, 0.0)  # best-effort stop was sent
    attempts = []
    t = 0.55
    while t < 3.0:
        loop.heartbeat(t)
        r = loop.step(t)
        if r.connected:
            break
        if "cannot connect" in r.message or "link lost" in r.message:
            attempts.append(t)
        t += 0.05
    assert loop.connected and loop.reconnects == 3  # open works, exchange fails twice more, then ok
    # the command sent at 0.5 s (before the link came back) is not replayed
    assert r.wheel_cmd_radps == (0.0, 0.0) and "since the link came up" in r.stop_reason


def test_reconnect_backoff_is_exponential():
    class Dead(SimMotorDriver):
        def open(self):
            raise LinkError("no such device")

    loop = DriveLoop(P, driver=Dead())
    tries = []
    t = 0.0
    while t < 4.0:
        r = loop.step(t)
        if "cannot connect" in r.message:
            tries.append(round(t, 2))
        t = round(t + 0.01, 2)
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert gaps[:3] == pytest.approx([0.2, 0.4, 0.8], abs=0.011)
    assert max(gaps) <= P.reconnect_max_s + 0.011


def test_loop_with_roboclaw_emulator_link_loss_and_recovery(tmp_path):
    link = str(tmp_path / "roboclaw")
    params = dataclasses.replace(P, driver="roboclaw", port=link, io_timeout_s=0.02, reconnect_initial_s=0.05,
                                 require_heartbeat=False)
    with RoboClawEmulator(seed=3, symlink=link) as emu:
        loop = DriveLoop(params, driver=RoboClawDriver(link, ticks_per_rev=4096, max_wheel_radps=8.0,
                                                       timeout_s=0.02, attempts=2))
        t0 = time.monotonic()

        def now():
            return time.monotonic() - t0

        loop.set_command(0.0, 0.0, now())   # the stack starts stopped: arms the driver
        loop.step(now())
        for _ in range(20):
            loop.set_command(0.4, 0.0, now())
            loop.step(now())
        assert emu.speed_commands[-1][0] > 0
        emu.unplug()
        lost_at = now()
        loop.set_command(0.4, 0.0, now())
        r = loop.step(now())
        assert not r.connected and now() - lost_at < 0.5
        emu.replug()
        deadline = now() + 3.0
        while not loop.connected and now() < deadline:
            loop.step(now())
            time.sleep(0.01)
        assert loop.connected
        first = emu.speed_commands[-1]
        assert first == (0, 0), "after a reconnect the first command is a stop, not the old command"
        for _ in range(10):   # fresh commands keep coming: the motors stay stopped (no motion by itself)
            loop.set_command(0.4, 0.0, now())
            r = loop.step(now())
            assert r.wheel_cmd_radps == (0.0, 0.0) and "no motion by itself" in r.message, r
        assert emu.speed_commands[-1] == (0, 0)
        loop.set_command(0.0, 0.0, now())   # a zero command re-arms
        loop.step(now())
        loop.set_command(0.4, 0.0, now())
        loop.step(now())
        assert emu.speed_commands[-1][0] > 0


def test_gnss_receiver_on_pty_with_faults(tmp_path):
    link = str(tmp_path / "gnss")
    with GnssEmulator(seed=5, symlink=link, rate_hz=0, quality=4) as emu:
        rx = GnssReceiver(link, 115200)
        rx.open()
        events = []

        def pump(n):
            for _ in range(n):
                emu.emit_epoch(0.1)
            deadline = time.monotonic() + 2.0
            quiet_since = time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.1:
                got = rx.poll()
                events.extend(got)
                if got or rx.parser._buf:
                    quiet_since = time.monotonic()
                time.sleep(0.005)

        pump(5)
        fixes = [e for e in events if hasattr(e, "status")]
        assert len(fixes) == 5 and all(f.status == STATUS_GBAS_FIX for f in fixes)
        # GST follows GGA here: learned on the first epoch, then every fix has the GST of its own epoch
        assert [f.covariance_source for f in fixes] == ["HDOP"] + ["GST"] * 4
        assert rx.parser.gst_follows_gga and fixes[-1].covariance_type == 2
        emu.faults.corrupt_prob = 0.3
        emu.faults.garbage_prob = 0.2
        emu.faults.truncate_prob = 0.1
        pump(20)
        c = rx.parser.counters
        assert c.checksum_errors > 0 and c.checksum_errors <= emu.injected["corrupt"] + emu.injected["truncate"]
        emu.faults.silent = True
        before = len(events)
        pump(3)
        assert len(events) == before
        emu.faults = type(emu.faults)()
        emu.unplug()
        with pytest.raises(LinkError):
            for _ in range(5):
                rx.poll()
                time.sleep(0.01)
        rx.close()
        emu.replug()
        rx.open()
        events.clear()
        pump(3)
        assert sum(1 for e in events if hasattr(e, "status")) >= 2
        rx.close()
        assert math.isfinite(fixes[0].latitude_deg)


def test_shutdown_stops_the_motors_before_closing_the_port_even_on_a_pulled_cable():
    """The last thing on the wire is the stop; a port that fails on it (unplugged) is still closed."""
    events = []

    class Recording(SimMotorDriver):
        def send_stop(self):
            events.append("stop")
            if self.unplugged:
                raise OSError(5, "Input/output error")
            super().send_stop()

        def close(self):
            events.append("close")

    for unplugged in (False, True):
        events.clear()
        drv = Recording(P.ticks_per_rev, P.max_wheel_radps)
        drv.unplugged = False
        loop = DriveLoop(P, driver=drv)
        drive(loop, 0.0, 0.1, v=0.0)
        drive(loop, 0.1, 0.3, v=0.5)
        drv.unplugged = unplugged
        loop.shutdown()
        assert events[-2:] == ["stop", "close"], events
        assert not loop.connected
        if unplugged:
            assert "stop at shutdown failed" in loop.last_error
        else:
            assert drv.commands[-1] == (0.0, 0.0)
