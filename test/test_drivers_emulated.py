"""Each motor driver against its pty emulator (opened through pyserial like a real port), every fault."""

from __future__ import annotations

import math
import os
import pathlib
import stat
import time

import pytest

from agricare.drivers.ascii_bridge import AsciiBridgeDriver
from agricare.drivers.emulators import AsciiBridgeEmulator, ModbusHubEmulator, RoboClawEmulator
from agricare.drivers.link import LinkError
from agricare.drivers.modbus_hub import ModbusHubDriver, RegisterMap
from agricare.drivers.roboclaw import RoboClawDriver

REPO = pathlib.Path(__file__).resolve().parents[1]
REGMAP = RegisterMap.from_yaml(REPO / "config/hardware/zlac8015d.yaml")
TPR = 4096.0
MAX_RADPS = 5.0
TIMEOUT_S = 0.02
KINDS = ("roboclaw", "ascii", "modbus")


def make_pair(kind, tmp_path, seed=1, attempts=3, timeout_s=TIMEOUT_S):
    link = str(tmp_path / f"tty_{kind}")
    if kind == "roboclaw":
        emu = RoboClawEmulator(seed=seed, symlink=link)
        drv = RoboClawDriver(link, ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, timeout_s=timeout_s,
                             attempts=attempts, aux_every_n=1)
    elif kind == "ascii":
        emu = AsciiBridgeEmulator(seed=seed, symlink=link)
        drv = AsciiBridgeDriver(link, ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, timeout_s=timeout_s,
                                attempts=attempts, boot_wait_s=0.0)  # this emulated board does not reset
    else:
        emu = ModbusHubEmulator(REGMAP, seed=seed, symlink=link)
        drv = ModbusHubDriver(link, REGMAP, max_wheel_radps=MAX_RADPS, timeout_s=timeout_s, attempts=attempts)
    return emu.start(), drv


def device_commands_radps(kind, emu):
    """Speed commands the device received, converted back to rad/s (left, right)."""
    if kind == "roboclaw":
        k = 2 * math.pi / TPR
        return [(a * k, b * k) for a, b in emu.speed_commands]
    if kind == "ascii":
        k = 2 * math.pi / TPR * emu.pid_rate_hz
        return [(a * k, b * k) for a, b in emu.motor_commands]
    k = 2 * math.pi / 60.0
    return [(a * k, -b * k) for a, b in emu.target_commands]


@pytest.fixture(params=KINDS)
def pair(request, tmp_path):
    emu, drv = make_pair(request.param, tmp_path, attempts=4)
    yield request.param, emu, drv
    drv.close()
    emu.stop()


def run(drv, n, left=2.0, right=-1.0):
    fb = None
    for _ in range(n):
        fb = drv.exchange(left, right, 0.0)
        time.sleep(0.002)
    return fb


def test_drive_and_read_encoders(pair):
    kind, emu, drv = pair
    drv.open()
    fb0 = drv.exchange(0.0, 0.0, 0.0)
    fb = run(drv, 25, 3.0, -3.0)
    # the emulated motors turn in wall time: a busy machine gives fewer ticks, never the wrong sign
    assert fb.left_ticks - fb0.left_ticks > 5, "left wheel forward"
    assert fb.right_ticks - fb0.right_ticks < -5, "right wheel backward"
    assert fb.fault_code == 0
    if kind == "roboclaw":
        assert fb.battery_v == pytest.approx(24.2)
    cmds = device_commands_radps(kind, emu)
    assert cmds[-1][0] == pytest.approx(3.0, abs=0.11) and cmds[-1][1] == pytest.approx(-3.0, abs=0.11)
    assert drv.stats.link_errors == 0 and drv.stats.checksum_errors == 0


def test_commands_never_exceed_limits(pair):
    kind, emu, drv = pair
    drv.open()
    n0 = len(device_commands_radps(kind, emu))  # modbus writes zero targets on open
    for left, right in ((100.0, -100.0), (math.inf, 0.0), (math.nan, -7.0), (-5.0, 5.0)):
        drv.exchange(left, right, 0.0)
    cmds = device_commands_radps(kind, emu)[n0:]
    assert len(cmds) >= 4
    assert all(abs(c) <= MAX_RADPS + 1e-9 for pair_ in cmds for c in pair_)
    assert cmds[0][0] == pytest.approx(MAX_RADPS, abs=0.11) and cmds[0][1] == pytest.approx(-MAX_RADPS, abs=0.11)
    assert cmds[1][0] == pytest.approx(MAX_RADPS, abs=0.11) and cmds[1][1] == 0.0   # inf -> the limit
    assert cmds[2][0] == 0.0 and cmds[2][1] == pytest.approx(-MAX_RADPS, abs=0.11)  # NaN -> 0
    assert cmds[3][0] == pytest.approx(-5.0, abs=0.11) and cmds[3][1] == pytest.approx(5.0, abs=0.11)


@pytest.mark.parametrize("fault", ["garbage_prob", "truncate_prob", "corrupt_prob"])
def test_damaged_replies_are_retried_and_counted(pair, fault):
    kind, emu, drv = pair
    drv.open()
    setattr(emu.faults, fault, 0.25)
    drv.attempts = 8
    fb0 = drv.exchange(2.0, 2.0, 0.0)
    fb = run(drv, 30, 2.0, 2.0)
    assert emu.injected[fault.split("_")[0]] > 0
    # damaged replies were retried, not taken: the wheels still moved forward by a plausible amount
    assert 0 < fb.left_ticks - fb0.left_ticks < 10 * TPR and 0 < fb.right_ticks - fb0.right_ticks < 10 * TPR
    st = drv.stats
    assert st.retries > 0 and st.link_errors == 0
    if kind in ("roboclaw",) and fault == "corrupt_prob":
        assert st.checksum_errors > 0
    assert all(abs(c) <= MAX_RADPS + 1e-9 for p in device_commands_radps(kind, emu) for c in p)


def test_short_delay_is_tolerated_long_delay_is_link_loss(pair):
    kind, emu, drv = pair
    drv.open()
    emu.faults.delay_s = TIMEOUT_S * 0.2
    n0 = len(device_commands_radps(kind, emu))
    run(drv, 3, 1.0, 1.0)
    assert drv.stats.link_errors == 0 and len(device_commands_radps(kind, emu)) >= n0 + 3
    assert device_commands_radps(kind, emu)[-1][0] == pytest.approx(1.0, abs=0.11)
    emu.faults.delay_s = TIMEOUT_S * 4
    with pytest.raises(LinkError):
        run(drv, 3)
    emu.faults.delay_s = 0.0
    errors, opens = drv.stats.link_errors, drv.stats.opens
    n_cmds = len(device_commands_radps(kind, emu))
    fb = run(drv, 3, 1.5, 1.5)  # late replies are flushed; the link works again without reopening
    assert drv.stats.link_errors == errors and drv.stats.opens == opens
    assert len(device_commands_radps(kind, emu)) >= n_cmds + 3
    assert device_commands_radps(kind, emu)[-1][0] == pytest.approx(1.5, abs=0.11)
    assert fb.fault_code == 0


def test_silence_is_link_loss_within_bound(pair):
    kind, emu, drv = pair
    drv.open()
    run(drv, 2)
    emu.faults.silent = True
    t0 = time.monotonic()
    with pytest.raises(LinkError):
        drv.exchange(1.0, 1.0, 0.0)
    elapsed = time.monotonic() - t0
    # attempts x (timeout + scheduling slack); pymodbus may wait up to 2 timeouts per attempt
    assert elapsed < drv.attempts * TIMEOUT_S * 2 + 0.3
    assert drv.stats.link_errors == 1


def test_unplug_then_replug_reconnects(pair):
    kind, emu, drv = pair
    drv.open()
    run(drv, 2)
    assert os.path.realpath(emu.port) == os.path.realpath(emu.slave_path)
    emu.unplug()
    assert not os.path.exists(emu.port)   # the device node is gone, as a pulled USB adapter's
    with pytest.raises(LinkError):
        for _ in range(3):
            drv.exchange(1.0, 1.0, 0.0)
    drv.close()
    with pytest.raises(LinkError):
        drv.open()  # still unplugged: the port is gone
    emu.replug()
    assert emu.injected["unplug"] == 1 and emu.injected["replug"] == 1
    assert os.path.realpath(emu.port) == os.path.realpath(emu.slave_path)  # the symlink follows the new pty
    assert stat.S_ISCHR(os.stat(emu.port).st_mode)   # a character device again (the new pty)
    drv.open()
    n_before = len(device_commands_radps(kind, emu))
    drv.exchange(0.5, 0.5, 0.0)
    cmds = device_commands_radps(kind, emu)
    assert len(cmds) > n_before and cmds[-1][0] == pytest.approx(0.5, abs=0.11)


def test_roboclaw_error_status_and_modbus_fault_reported(tmp_path):
    emu, drv = make_pair("roboclaw", tmp_path)
    with emu:
        drv.open()
        emu.error_status = 0x0041 | 0x010000
        fb = drv.exchange(0.0, 0.0, 0.0)
        assert fb.fault_code == 0x0041 and "E-stop" in fb.fault_text
        drv.close()
    emu, drv = make_pair("modbus", tmp_path)
    with emu:
        drv.open()
        run(drv, 5)
        emu.inject_fault(left=0x0008)
        fb = drv.exchange(1.0, 1.0, 0.0)
        assert fb.fault_code & 0xFFFF == 0x0008 and "overload" in fb.fault_text
        assert emu.model.target_tps == [0.0, 0.0]  # the drive disabled itself
        drv.clear_fault()
        assert drv.exchange(0.0, 0.0, 0.0).fault_code == 0
        drv.close()


def test_ascii_pid_update_and_reset(tmp_path):
    emu, drv = make_pair("ascii", tmp_path)
    with emu:
        drv.pid_gains = (30, 10, 1, 40)
        drv.open()
        assert emu.pid == (30, 10, 1, 40)
        deadline = time.monotonic() + 5.0   # drive until the encoders are well past the check below
        moved = (0, 0)
        while time.monotonic() < deadline and min(moved) <= 400:
            run(drv, 5, 3.0, 3.0)
            moved = drv.read_encoders()
        assert moved[0] > 400 and moved[1] > 400   # the wheels turned: the reset below has something to clear
        drv.reset_encoders()
        drv.send_stop()
        left, right = drv.read_encoders()
        assert abs(left) < 100 and abs(right) < 100
        assert drv.read_baud() == 57600
        drv.close()


def test_emulator_fault_sequence_is_deterministic(tmp_path):
    def trace(seed):
        # A reply timeout generous enough that no reply is ever late, however busy the machine: every retry is
        # then caused by an injected fault (seen at once by the CRC), so the sequence of requests, and with it
        # the fault sequence, depends on the seed alone.
        emu, drv = make_pair("roboclaw", tmp_path, seed=seed, attempts=10, timeout_s=1.0)
        with emu:
            emu.faults.corrupt_prob = 0.3
            drv.open()
            run(drv, 15)
            out = (dict(emu.injected), drv.stats.checksum_errors)
            drv.close()
        return out

    first = trace(7)
    assert first[0].get("corrupt", 0) > 0 and first[1] > 0  # faults were injected and seen
    assert trace(7) == first


def test_ascii_board_auto_stop_when_the_host_goes_silent(tmp_path):
    """ros_arduino_bridge's AUTO_STOP_INTERVAL: the board stops the motors by itself when no motor command came
    for that long (a dead or frozen host); commands within it keep them turning."""
    interval = 0.5
    link = str(tmp_path / "tty_ascii_auto")
    emu = AsciiBridgeEmulator(seed=1, symlink=link, auto_stop_s=interval).start()
    drv = AsciiBridgeDriver(link, ticks_per_rev=TPR, max_wheel_radps=MAX_RADPS, timeout_s=TIMEOUT_S, attempts=4,
                            boot_wait_s=0.0)
    try:
        drv.open()
        for _ in range(3):   # commands every few ms for twice the interval; a loaded machine may hold this
            n0, max_gap = emu.injected["auto_stop"], 0.0    # process off longer: then once more
            last = time.monotonic()
            t_end = last + 2 * interval
            while time.monotonic() < t_end:
                drv.exchange(2.0, 2.0, 0.0)
                now = time.monotonic()
                max_gap, last = max(max_gap, now - last), now
                time.sleep(0.01)
            if max_gap < 0.6 * interval:
                break
        assert max_gap < 0.6 * interval, f"the test process was held off {max_gap:.2f} s"
        assert emu.injected["auto_stop"] == n0 and emu.model.target_tps[0] > 0   # no stop while commanded
        silent_at = time.monotonic()         # the host stops talking
        deadline = silent_at + 3.0
        while time.monotonic() < deadline and emu.model.target_tps != [0.0, 0.0]:
            time.sleep(0.005)
        stopped_after = time.monotonic() - silent_at
        assert emu.model.target_tps == [0.0, 0.0] and emu.injected["auto_stop"] == n0 + 1
        # the interval after the last command (sent up to 10 ms before the silence), plus the emulator's tick
        assert interval - 0.02 <= stopped_after <= interval + 0.3, stopped_after
    finally:
        drv.close()
        emu.stop()
