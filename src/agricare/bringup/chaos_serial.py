"""``serial_unplug``: the base driver's serial cable pulled and plugged back, on a rig of the real driver stack.

The simulator's vehicles take their command in memory, so the serial link is exercised on a rig instead: the
package's ``base_driver_node`` (``config/base_driver_node.yaml``, ``driver: roboclaw``) runs in its own
process on an emulated RoboClaw (:class:`agricare.drivers.emulators.RoboClawEmulator`, a pty behind a stable
symlink, exactly as a USB serial port), and this process stands in for the safety supervisor: ``cmd_vel``
(``speed_mps`` straight ahead) and ``safety/heartbeat`` at 20 Hz, without a break, for the whole run.

Timeline (wall clock, from the moment the wheels turn): the cable is pulled at ``t`` and plugged back ``d``
s later; the command stream goes on for ``hold_s`` after the replug (the wheels must stay still: no motion by
itself); then one zero command (what the stack sends when it stops and starts again) and the same command
again, which must move the wheels.

Figures from the emulated motor controller (its own state, not the driver's word): time from the unplug to
a zero speed target at the motors (the controller's own communication timeout, set by the driver at
connect) and to standstill, wheel travel after the unplug, when the driver reconnected after the replug,
and whether the wheels turned again before the zero command. There is no world on the rig: contacts and
boundary violations are not measured ("-").
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from agricare.bringup.supervise import EXIT_SAFETY_FAULT

# the explicit restart after the replug, in wall time: a zero command for ZERO_HOLD_S (a driver process that a
# loaded machine holds off for half a second would see only the newest command of a shorter one, never the
# zero), then the command again, waiting up to AGAIN_WAIT_S for the wheels to turn (done as soon as they do)
ZERO_HOLD_S = 1.0
AGAIN_WAIT_S = 5.0


@dataclasses.dataclass
class RigResult:
    summary_path: pathlib.Path
    exit_code: int
    stopped_because: str


def run_serial_unplug(fault, out_dir, progress=print, speed_mps: float = 0.5, hold_s: float = 3.0,
                      base_params_file: str | None = None) -> tuple[RigResult, dict]:
    """Run the rig for one ``serial_unplug`` :class:`agricare.bringup.chaos.Fault`; writes summary.json."""
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Header

    from agricare.bringup.chaos import FaultResult, _verdict_of
    from agricare.drivers.base import BaseDriverParams
    from agricare.drivers.emulators import RoboClawEmulator
    from agricare.paths import config_path
    from agricare.ros.convert import twist_stamped
    from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params_file = base_params_file or str(config_path("base_driver_node.yaml"))
    bp = BaseDriverParams()
    t_fault, d = float(fault.t_s), float(fault.duration_s if fault.duration_s is not None else 3.0)
    m_per_tick = 2.0 * math.pi * bp.wheel_radius_m / bp.ticks_per_rev
    trace = []   # (t since driving, target m/s, speed m/s, position m)
    events = []
    tmp = tempfile.mkdtemp(prefix="agricare_rig_")
    link = os.path.join(tmp, "roboclaw")
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    proc = None
    try:
        with RoboClawEmulator(seed=1, symlink=link) as emu:
            code = "import sys; from agricare.nodes.base_driver_node import main; sys.exit(main())"
            proc = subprocess.Popen([sys.executable, "-c", code, "--ros-args", "-r", "__ns:=/chaos_rig",
                                     "--params-file", params_file, "-p", "driver:=roboclaw", "-p", f"port:={link}"],
                                    stdout=subprocess.DEVNULL, stderr=open(out / "base_driver_node.log", "w"))
            node = rclpy.create_node("chaos_rig_safety", namespace="/chaos_rig", context=ctx)
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(node)
            cmd_pub = node.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
            hb_pub = node.create_publisher(Header, "safety/heartbeat", SENSOR_QOS)
            state = {"v": speed_mps}

            def publish():
                stamp = node.get_clock().now().to_msg()
                cmd_pub.publish(twist_stamped(state["v"], 0.0, stamp))
                hb_pub.publish(Header(stamp=stamp, frame_id="RUN"))

            node.create_timer(0.05, publish)
            # what the driver says about itself: an ERROR after it once reported OK is the fault it detected
            from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

            seen_ok, reported = set(), []
            link_down = []   # wall times the driver reported its link down

            def on_diag(msg):
                for st in msg.status:
                    if "base_driver_node" not in st.name:
                        continue
                    if st.level == DiagnosticStatus.OK:
                        seen_ok.add(st.name)
                    elif st.level == DiagnosticStatus.ERROR and st.name in seen_ok and not reported:
                        reported.append(f"{st.name.split(':', 1)[0]}: {st.message}")
                    if st.level == DiagnosticStatus.ERROR and st.message.startswith("link down"):
                        link_down.append(time.monotonic())

            node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, RELIABLE_QOS)

            def sample(t):
                tps = emu.model
                k = m_per_tick
                trace.append((t, 0.5 * (tps.target_tps[0] + tps.target_tps[1]) * k,
                              0.5 * (tps.speed_tps[0] + tps.speed_tps[1]) * k,
                              0.5 * (tps.position_ticks[0] + tps.position_ticks[1]) * k))

            # wait for the wheels to turn (driver up, connected, commanded)
            deadline = time.monotonic() + 90.0   # a loaded machine starts a Python process with rclpy slowly
            while time.monotonic() < deadline and emu.model.speed_tps[0] * m_per_tick < 0.8 * speed_mps:
                ex.spin_once(timeout_sec=0.01)
            if emu.model.speed_tps[0] * m_per_tick < 0.8 * speed_mps:
                raise RuntimeError("rig: the wheels never turned (driver not connected?)")
            t0 = time.monotonic()
            state["t0"] = t0
            phase = "driving"
            requests_at_replug = None
            t_reconnect = None
            t_zero_cmd = None
            while True:
                t = time.monotonic() - t0
                ex.spin_once(timeout_sec=0.005)
                sample(t)
                if phase == "driving" and t >= t_fault:
                    emu.unplug()
                    events.append(f"{t:.2f} s: cable pulled")
                    phase = "unplugged"
                elif phase == "unplugged" and t >= t_fault + d:
                    emu.replug()
                    requests_at_replug = emu.requests
                    events.append(f"{t:.2f} s: cable plugged back")
                    phase = "replugged"
                elif phase == "replugged":
                    if t_reconnect is None and emu.requests > requests_at_replug:
                        t_reconnect = t
                        events.append(f"{t:.2f} s: the driver talks to the device again")
                    if t >= t_fault + d + hold_s:
                        state["v"] = 0.0
                        t_zero_cmd = t
                        events.append(f"{t:.2f} s: a zero command (the stack stops and starts again)")
                        phase = "zero"
                elif phase == "zero" and t >= t_zero_cmd + ZERO_HOLD_S:
                    state["v"] = speed_mps
                    phase = "again"
                elif phase == "again" and (t >= t_zero_cmd + ZERO_HOLD_S + AGAIN_WAIT_S or (
                        t >= t_zero_cmd + ZERO_HOLD_S + 0.5 and abs(trace[-1][2]) > 0.05)):
                    break   # moving again (half a second after the fresh command), or given up waiting
            ex.remove_node(node)
            node.destroy_node()
            proc.terminate()
            proc.wait(timeout=10)
            proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        rclpy.shutdown(context=ctx)

    rows = [r for r in trace if r[0] >= t_fault]
    v0 = rows[0][2]
    t_cmd0 = next((r[0] for r in rows if abs(r[1]) < 1e-9), None)
    t_still = next((r[0] for r in rows if abs(r[2]) < 0.02), None)
    t_replug = t_fault + d
    t_zero = t_zero_cmd if t_zero_cmd is not None else math.inf
    before_zero = [r for r in rows if t_replug <= r[0] < t_zero]
    moved = next((r for r in before_zero if abs(r[2]) > 0.05), None)
    dist = (before_zero[-1][3] if before_zero else rows[-1][3]) - rows[0][3]
    again = next((r for r in trace if r[0] > t_zero + ZERO_HOLD_S and abs(r[2]) > 0.05), None)
    if moved is not None:
        resumed = f"by itself at {moved[0]:.1f} s (before any zero command)"
    else:
        resumed = (f"no: stayed still {t_zero - t_replug:.1f} s on the ongoing command stream; "
                   + (f"moved {again[0] - t_zero - ZERO_HOLD_S:.2f} s after a zero command and a fresh one" if again
                      else "did not move after a zero command either"))
    reconnect = (f"reconnected {t_reconnect - t_replug:.2f} s after the replug" if t_reconnect is not None
                 else "never reconnected")
    bound = bp.comm_timeout_s + 1.0 / bp.loop_rate_hz
    verdict = _verdict_of(fault, v0, None if t_cmd0 is None else t_cmd0 - t_fault, bound, None, None, resumed, "",
                          t_still)
    if t_reconnect is None:
        verdict = "never reconnected" if verdict == "ok" else verdict + "; never reconnected"
    if again is None:
        verdict = "no motion after an explicit restart" if verdict == "ok" else verdict + "; no motion after restart"
    res = FaultResult(fault.text + " (rig: base_driver_node on an emulated RoboClaw)", round(t_fault, 3),
                      round(v0, 3), None if t_cmd0 is None else round(t_cmd0 - t_fault, 3),
                      None if t_still is None else round(t_still - t_fault, 3), round(dist, 2), None, None,
                      f"{resumed} ({reconnect})", "-", round(bound, 3), verdict)
    # the driver detected the lost link (its diagnostics): the run names it and fails (exit 4), as agricare run
    # the link lost again with the cable in, after the driver had reconnected: the emulated controller (a thread
    # of this process) answered too late for the driver's retries, which a loaded machine does; such a run
    # says nothing about the unplug
    lost_plugged = sum(1 for w in link_down if t_reconnect is not None and w - state.get("t0", 0.0) > t_reconnect)
    code = EXIT_SAFETY_FAULT if reported else 0
    named = f"; fault(s) detected: {reported[0]}" if reported else ""
    summary = {"exit_code": code, "stopped_because": f"rig run ended{named}; faults injected: {fault.text}",
               "faults_detected": [{"robot": "chaos_rig", "fault": r} for r in reported],
               "chaos": {"faults": [fault.text], "events": events, "results": [dataclasses.asdict(res)],
                         "device": {"serial_timeouts_fired": emu.timeouts_fired, "requests": emu.requests,
                                    "link_lost_while_plugged": lost_plugged}}}
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    progress(f"agricare chaos rig: {fault.text}: {verdict}")
    return RigResult(path, code, summary["stopped_because"]), summary
