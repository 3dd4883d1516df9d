"""``agricare emulate roboclaw|ascii|modbus|gnss``: a device emulator on a pseudo-terminal.

Prints the port path (open it with the real driver, e.g. ``base_driver_node`` with ``driver:=roboclaw
port:=<path>``) and serves until Ctrl-C. Fault knobs inject garbage, truncated frames, bad CRC/checksums
and reply delays.
"""

from __future__ import annotations

import sys
import time

from agricare.cli import CliError

COMMAND = "emulate"
HELP = "run a motor-controller / GNSS emulator on a pty (prints the port path; Ctrl-C to stop)"
KINDS = ("roboclaw", "ascii", "modbus", "gnss")


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=KINDS, help="which device to emulate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault/noise generator")
    parser.add_argument("--link", default=None, help="also expose the port under this stable symlink path")
    parser.add_argument("--garbage", type=float, default=0.0, help="probability of garbage before a reply")
    parser.add_argument("--truncate", type=float, default=0.0, help="probability of a truncated reply")
    parser.add_argument("--corrupt", type=float, default=0.0, help="probability of a bad CRC / checksum")
    parser.add_argument("--delay", type=float, default=0.0, help="reply delay [s]")
    parser.add_argument("--register-map", default="config/hardware/zlac8015d.yaml",
                        help="modbus: register map YAML")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="gnss: epochs per second")
    parser.add_argument("--quality", type=int, default=4, help="gnss: GGA fix quality (4 RTK fixed, 5 float)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: never)")
    real = parser.add_argument_group("behaviours of real devices")
    real.add_argument("--old-firmware", action="store_true",
                      help="roboclaw: 2-byte status, no command 78 / 14 (older firmware)")
    real.add_argument("--untuned", action="store_true", help="roboclaw: velocity PID and QPPS are zero")
    real.add_argument("--write-gap", type=float, default=0.0,
                      help="modbus: no reply to a request sooner than this after a write [s] (ZLAC8015D)")
    real.add_argument("--counts-per-rev", type=float, default=0.0,
                      help="modbus: the motor's real encoder counts per revolution (0: the map's)")
    real.add_argument("--boot", type=float, default=0.0,
                      help="ascii: the board resets when the port opens and boots this long [s] (Uno/Mega)")
    real.add_argument("--binary", action="store_true", help="gnss: binary frames glued to the NMEA sentences")
    real.add_argument("--no-geoid", action="store_true", help="gnss: empty geoid-separation field in GGA")
    real.add_argument("--gst-first", action="store_true", help="gnss: GST before GGA (default after, as u-blox)")


MAX_RATE_HZ = 100.0   # GNSS receivers output at most a few tens of epochs per second


def run(args) -> int:
    from agricare.drivers.emulators import make_emulator

    for name in ("garbage", "truncate", "corrupt"):
        v = getattr(args, name)
        if not 0.0 <= v <= 1.0:
            raise CliError(f"--{name} must be a probability in [0, 1], got {v}")
    import math

    for name in ("delay", "duration"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v >= 0):
            raise CliError(f"--{name} must be a finite number of seconds >= 0, got {v}")
    kwargs = {}
    regmap = None
    if args.kind == "modbus":
        from agricare import paths
        from agricare.drivers.modbus_hub import RegisterMap

        try:
            regmap = RegisterMap.from_yaml(paths.resolve(args.register_map))
        except (ValueError, FileNotFoundError) as exc:
            raise CliError(f"--register-map: {exc}") from exc
    if min(args.write_gap, args.counts_per_rev, args.boot) < 0:
        raise CliError("--write-gap, --counts-per-rev and --boot must be >= 0")
    if args.kind == "gnss":
        if not (0 < args.rate_hz <= MAX_RATE_HZ):   # NaN fails too
            raise CliError(f"--rate-hz must be in (0, {MAX_RATE_HZ:g}] epochs per second, got {args.rate_hz}")
        kwargs = {"rate_hz": args.rate_hz, "quality": args.quality, "binary_between": args.binary,
                  "sentences": ("GST", "RMC", "VTG", "GGA") if args.gst_first else ("RMC", "VTG", "GGA", "GST")}
        if args.no_geoid:
            kwargs["geoid_sep_m"] = None
    elif args.kind == "roboclaw":
        kwargs = {"firmware": "old" if args.old_firmware else "new"}
        if args.untuned:
            kwargs["velocity_pid"] = (0.0, 0.0, 0.0, 0)
    elif args.kind == "modbus":
        kwargs = {"write_gap_s": args.write_gap}
        if args.counts_per_rev:
            kwargs["counts_per_rev"] = args.counts_per_rev
    elif args.kind == "ascii":
        kwargs = {"boot_s": args.boot}
    try:
        emu = make_emulator(args.kind, seed=args.seed, symlink=args.link, regmap=regmap, **kwargs)
        emu.faults.garbage_prob, emu.faults.truncate_prob = args.garbage, args.truncate
        emu.faults.corrupt_prob, emu.faults.delay_s = args.corrupt, args.delay
        emu.start()
    except OSError as exc:
        raise CliError(f"cannot create the pty: {exc}") from exc
    print(emu.port, flush=True)
    print(f"{args.kind} emulator on {emu.slave_path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    t_end = time.monotonic() + args.duration if args.duration > 0 else None
    try:
        while t_end is None or time.monotonic() < t_end:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        print(f"{args.kind} emulator stopped: {emu.requests} requests, faults {dict(emu.injected)}",
              file=sys.stderr)
    return 0
