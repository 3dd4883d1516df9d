"""``agricare emulate``: starts an emulator on a pty, prints the port, stops cleanly; bad knobs are errors."""

from __future__ import annotations

import threading
import time

from agricare.cli import main
from agricare.drivers.ascii_bridge import AsciiBridgeDriver


def test_emulate_prints_port_and_serves(capsys, tmp_path):
    link = str(tmp_path / "bridge")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "rc", main(["emulate", "ascii", "--link", link, "--duration", "1.0"])))
    t.start()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            drv = AsciiBridgeDriver(link, timeout_s=0.1, boot_wait_s=0.0)
            drv.open()
            break
        except Exception:
            time.sleep(0.02)
    fb = drv.exchange(1.0, 1.0, 0.0)
    drv.close()
    t.join(timeout=5.0)
    assert result["rc"] == 0 and fb is not None
    assert capsys.readouterr().out.strip() == link


def test_emulate_bad_arguments(capsys):
    assert main(["emulate", "gnss", "--corrupt", "1.5"]) == 2
    assert "--corrupt" in capsys.readouterr().err
    assert main(["emulate", "modbus", "--register-map", "/no/such/map.yaml", "--duration", "0.1"]) == 2


def test_emulate_old_roboclaw_firmware(capsys, tmp_path):
    from agricare.drivers.roboclaw import RoboClawDriver

    link = str(tmp_path / "rc")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "rc", main(["emulate", "roboclaw", "--old-firmware", "--link", link, "--duration", "1.5"])))
    t.start()
    deadline = time.monotonic() + 3.0
    drv = RoboClawDriver(link, timeout_s=0.1)
    while time.monotonic() < deadline:
        try:
            drv.open()
            break
        except Exception:
            time.sleep(0.02)
    status_bytes, cmd78 = drv.status_bytes, drv.use_cmd78
    drv.close()
    t.join(timeout=5.0)
    assert result["rc"] == 0 and (status_bytes, cmd78) == (2, False)
    assert main(["emulate", "ascii", "--boot", "-1"]) == 2
