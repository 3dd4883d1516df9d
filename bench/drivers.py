"""Driver benchmark: parser throughput (frames/s) and round-trip time of one exchange over the pty emulators.

Run: ``PYTHONPATH=src .venv/bin/python bench/drivers.py``. Writes ``out/bench/drivers.json``.
"""

from __future__ import annotations

import json
import pathlib
import random
import statistics
import struct
import time

from agricare.drivers import ascii_bridge as ab
from agricare.drivers import roboclaw as rc
from agricare.drivers.emulators import AsciiBridgeEmulator, GnssEmulator, ModbusHubEmulator, RoboClawEmulator
from agricare.drivers.modbus_hub import (
    ModbusHubDriver,
    RegisterMap,
    decode_rtu_response,
    registers_from_pdu,
    rtu_frame,
)
from agricare.drivers.nmea_gnss import NmeaParser

REPO = pathlib.Path(__file__).resolve().parents[1]
REGMAP = RegisterMap.from_yaml(REPO / "config/hardware/zlac8015d.yaml")
N = 20_000


def parser_rates() -> dict:
    rng = random.Random(1)
    out = {}
    data = struct.pack(">ii", 1234, -5678)
    frame = data + struct.pack(">H", rc.crc16(b"\x80\x4e" + data))
    t = time.perf_counter()
    for _ in range(N):
        rc.decode_reply(0x80, 78, frame)
    out["roboclaw_decode_reply"] = N / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(N):
        ab.parse_encoders(b"123456 -654321\r\n")
    out["ascii_parse_encoders"] = N / (time.perf_counter() - t)
    start, count = REGMAP.read_blocks()[0]
    raw = rtu_frame(bytes((1, 3, 2 * count)) + struct.pack(f">{count}H", *[rng.randrange(65536)
                                                                          for _ in range(count)]))
    t = time.perf_counter()
    for _ in range(N // 4):
        registers_from_pdu(decode_rtu_response(raw, 1), start, count)
    out["modbus_decode_response"] = (N // 4) / (time.perf_counter() - t)
    emu = GnssEmulator(rate_hz=0)
    lines = b"".join(line for _ in range(N // 16) for line in emu.epoch_lines(0.1))
    p = NmeaParser()
    t = time.perf_counter()
    p.feed(lines)
    out["nmea_sentences"] = p.counters.sentences / (time.perf_counter() - t)
    return out


def round_trips(tmp: pathlib.Path, n: int = 200) -> dict:
    from agricare.drivers.ascii_bridge import AsciiBridgeDriver
    from agricare.drivers.roboclaw import RoboClawDriver

    res = {}
    setups = {
        "roboclaw": (RoboClawEmulator, lambda p: RoboClawDriver(p, timeout_s=0.1, aux_every_n=10)),
        "ascii": (AsciiBridgeEmulator, lambda p: AsciiBridgeDriver(p, timeout_s=0.1)),
        "modbus": (lambda **kw: ModbusHubEmulator(REGMAP, **kw), lambda p: ModbusHubDriver(p, REGMAP,
                                                                                           timeout_s=0.1)),
    }
    for kind, (make_emu, make_drv) in setups.items():
        link = str(tmp / kind)
        with make_emu(seed=1, symlink=link):
            drv = make_drv(link)
            drv.open()
            times = []
            for _ in range(n):
                t = time.perf_counter()
                drv.exchange(1.0, -1.0, 0.0)
                times.append((time.perf_counter() - t) * 1e3)
            drv.close()
        times.sort()
        res[kind] = {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times))],
                     "max_ms": times[-1]}
    return res


def main() -> None:
    import tempfile

    rates = parser_rates()
    with tempfile.TemporaryDirectory() as d:
        rtt = round_trips(pathlib.Path(d))
    print(f"{'parser':28s} {'frames/s':>12s}")
    for k, v in rates.items():
        print(f"{k:28s} {v:12.0f}")
    print(f"\n{'exchange over pty':20s} {'median ms':>10s} {'p95 ms':>10s} {'max ms':>10s}")
    for k, v in rtt.items():
        print(f"{k:20s} {v['median_ms']:10.2f} {v['p95_ms']:10.2f} {v['max_ms']:10.2f}")
    out = REPO / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "drivers.json").write_text(json.dumps({"parser_frames_per_s": rates, "exchange_round_trip": rtt},
                                                 indent=2))
    print(f"\ndrivers: roboclaw exchange median {rtt['roboclaw']['median_ms']:.2f} ms, "
          f"modbus {rtt['modbus']['median_ms']:.2f} ms -> out/bench/drivers.json")


if __name__ == "__main__":
    main()
