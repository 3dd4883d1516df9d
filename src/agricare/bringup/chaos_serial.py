"""The base driver's own faults, on a rig of the real driver stack: ``serial_unplug`` (cable pulled and plugged
back), ``kill:base`` (SIGKILL of the driver process) and ``freeze:base`` (SIGSTOP for ``d`` s, then SIGCONT).

The simulator's vehicles take their command in memory, so the base driver is exercised on a rig instead: the
package's ``base_driver_node`` (``config/base_driver_node.yaml``, ``driver: roboclaw``) runs in its own
process on an emulated RoboClaw (:class:`agricare.drivers.emulators.RoboClawEmulator`, a pty behind a stable
symlink, exactly as a USB serial port, with the controller's own serial timeout that the driver arms at
connect), started and watched by the multi-process runner's :class:`agricare.bringup.supervise.ProcessSupervisor`
(the same policy: a dead or silent driver is a node failure, restarted with backoff), and this process stands
in for the safety supervisor: ``cmd_vel`` and ``safety/heartbeat`` (RUN) at 20 Hz, without a break, for the
whole run: zero until the driver talks to the device (a stack starts stopped), then ``speed_mps`` straight
ahead. It never learns of the fault: the worst case for "no motion by itself".

Timeline (wall clock, from the moment the wheels turn): the fault at ``t``; the cable plugged back or the
process continued ``d`` s later (a killed driver is restarted by the supervisor after its backoff); the
command stream goes on for ``hold_s`` after the driver talks to the device again (the wheels must stay still:
no motion by itself, no stale command replayed); then a zero command (what the stack sends when it stops and
starts again) and the same command again, which must move the wheels.

Figures from the emulated motor controller (its own state, not the driver's word): time from the fault to a
zero speed target at the motors (the controller's own communication timeout) and to standstill, wheel travel
after the fault, when the driver talked to the device again, and whether the wheels turned again before the
zero command. The bound is the controller's communication timeout + one driver cycle; the trace is sampled
every few milliseconds, and its largest gap near the stop is the only tolerance. There is no world on the
rig: contacts and boundary violations are not measured ("-").
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time

from agricare.bringup.supervise import EXIT_NODE_FAILED, EXIT_SAFETY_FAULT

# the explicit restart after the fault, in wall time: a zero command for ZERO_HOLD_S (a driver process that a
# loaded machine holds off for half a second would see only the newest command of a shorter one, never the
# zero), then the command again, waiting up to AGAIN_WAIT_S for the wheels to turn (done as soon as they do)
ZERO_HOLD_S = 1.0
AGAIN_WAIT_S = 5.0
START_MOVE_S = 10.0    # longest wait for the wheels to turn once the armed driver is commanded, at the start
ARM_SEEN_S = 2.0       # zero commands since the driver talks to the device that arm it, its "driving" unseen
ARM_BLIND_S = 8.0      # the same when no status of the driver has come at all (a /diagnostics path not matched)
ARM_WAIT_S = 20.0      # longest zero command while waiting for the driver to say it took it
BACK_WAIT_S = 60.0     # longest wait for the driver to talk to the device again (a restart on a loaded machine)
RIG_KINDS = ("serial_unplug", "kill", "freeze")
RIG_TARGETS = ("base", "safe_base")


@dataclasses.dataclass
class RigResult:
    summary_path: pathlib.Path
    exit_code: int
    stopped_because: str


def is_rig_fault(fault) -> bool:
    """The faults run on the rig: the serial link, and the base driver's process itself (target ``base``: the
    standalone ``base_driver_node``; ``safe_base``: ``safe_base_node``, the safety supervisor with the driver
    gated in its process, as a vehicle runs it)."""
    return fault.kind == "serial_unplug" or (fault.kind in ("kill", "freeze") and fault.target in RIG_TARGETS)


def run_serial_unplug(fault, out_dir, progress=print, speed_mps: float = 0.5, hold_s: float = 3.0,
                      base_params_file: str | None = None) -> tuple[RigResult, dict]:
    return run_rig(fault, out_dir, progress, speed_mps, hold_s, base_params_file)


def run_rig(fault, out_dir, progress=print, speed_mps: float = 0.5, hold_s: float = 3.0,
            base_params_file: str | None = None) -> tuple[RigResult, dict]:
    """Run the rig for one rig :class:`agricare.bringup.chaos.Fault` (:func:`is_rig_fault`); writes summary.json."""
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Header

    from agricare.bringup.chaos import FaultResult, _verdict_of
    from agricare.bringup.graph import NodeSpec
    from agricare.bringup.supervise import ProcessSupervisor, SupervisionParams
    from agricare.drivers.base import BaseDriverParams
    from agricare.drivers.emulators import RoboClawEmulator
    from agricare.paths import config_path
    from agricare.ros.convert import twist_stamped
    from agricare.ros.qos import COMMAND_QOS, RELIABLE_QOS, SENSOR_QOS

    if not is_rig_fault(fault):
        raise ValueError(f"{fault.text}: not a rig fault")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params_file = base_params_file or str(config_path("base_driver_node.yaml"))
    bp = BaseDriverParams()
    kind = fault.kind
    safe_base = fault.target == "safe_base"
    # the standalone driver is restartable (restarted with backoff, then moved by a zero and a fresh command);
    # the safe base is safety-critical: killed, the robot's graph is shut down; frozen, its supervisor latches
    # the late loop until the vehicle's panel resets it. Either way nothing may move the wheels again here.
    expect_again = not safe_base
    t_fault = float(fault.t_s)
    d = 0.0 if kind == "kill" else float(fault.duration_s if fault.duration_s is not None else 3.0)
    m_per_tick = 2.0 * math.pi * bp.wheel_radius_m / bp.ticks_per_rev
    trace = []   # (t since driving, target m/s, speed m/s, position m)
    events = []
    tmp = tempfile.mkdtemp(prefix="agricare_rig_")
    link = os.path.join(tmp, "roboclaw")
    log = str(out / "base_driver_node.log")
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    sup = None
    never_turned = False
    t0 = time.monotonic()
    state = {"v": 0.0, "t0": t0}   # the stack starts stopped
    device = {}
    sup_params = SupervisionParams()
    try:
        with RoboClawEmulator(seed=1, symlink=link) as emu:
            # the driver's output to its log (appended by a restarted process too)
            exe = "safe_base_node" if safe_base else "base_driver_node"
            code = (f"import os, sys; fd = os.open({log!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644); "
                    "os.dup2(fd, 1); os.dup2(fd, 2); "
                    f"from agricare.nodes.{exe} import main; sys.exit(main())")
            if safe_base:   # the supervisor's defaults, its command from this process, odometry from the driver
                params = {"panel": "none", "driver_params_files": [params_file], "driver.driver": "roboclaw",
                          "driver.port": link, "required_inputs": ["cmd", "odom"], "resume_hold_s": 0.2,
                          "command_replay_file": os.path.join(tmp, "safety_commands.json"),
                          "require_estop": False, "loop_timeout_s": 1.0}
                args = ["-p", "panel:=none", "-p", f"driver_params_files:=[{params_file}]", "-p",
                        "driver.driver:=roboclaw", "-p", f"driver.port:={link}", "-p", "required_inputs:=[cmd, odom]",
                        "-p", "resume_hold_s:=0.2", "-p", f"command_replay_file:={params['command_replay_file']}",
                        # no e-stop panel on the rig; the loop watchdog relaxed as in the chaos scenarios (the
                        # measured loop gaps on the shared machine: config/chaos/tractor_line.yaml)
                        "-p", "require_estop:=false", "-p", "loop_timeout_s:=1.0"]
            else:
                params = {"driver": "roboclaw", "port": link}
                args = ["--params-file", params_file, "-p", "driver:=roboclaw", "-p", f"port:={link}"]
            spec = NodeSpec(exe, exe, "/chaos_rig", None, [pathlib.Path(params_file)], params, {})
            fqn = spec.fqn
            cmd = [sys.executable, "-c", code, "--ros-args", "-r", "__ns:=/chaos_rig", *args]
            sup = ProcessSupervisor([spec], lambda _s: cmd, sup_params, progress=lambda *_: None)
            node = rclpy.create_node("chaos_rig_safety", namespace="/chaos_rig", context=ctx)
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(node)
            sup.attach(node)
            sup.start_all()
            # the safe base takes the smoother's command and makes its own decision; the driver takes the decision
            cmd_pub = node.create_publisher(TwistStamped, "cmd_vel_smoothed" if safe_base else "cmd_vel", COMMAND_QOS)
            hb_pub = node.create_publisher(Header, "safety/heartbeat", SENSOR_QOS)

            def publish():
                stamp = node.get_clock().now().to_msg()
                cmd_pub.publish(twist_stamped(state["v"], 0.0, stamp))
                hb_pub.publish(Header(stamp=stamp, frame_id="RUN"))

            node.create_timer(0.05, publish)
            # what the driver says about itself: an ERROR after it once reported OK is the fault it detected
            from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

            seen_ok, reported = set(), []
            link_down = []   # wall times the driver reported its link down
            stall_reports, stall_walls = [], []   # the driver's reports of a stalled cycle, and their wall times
            armed = []       # wall times the driver said "driving" (a zero command taken: the stack may move it)
            status = {"seen": False, "wants_zero": False}   # a status of the driver seen; its last waits for a zero

            def on_diag(msg):
                for st in msg.status:
                    if "base_driver_node" not in st.name and "safe_base_node" not in st.name:
                        continue
                    if "base driver" in st.name:
                        status["wants_zero"] = "until a zero command" in st.message
                        status["seen"] = True
                    if st.level == DiagnosticStatus.OK:
                        seen_ok.add(st.name)
                        if st.message.startswith("driving") and "base driver" in st.name:
                            armed.append(time.monotonic())
                    elif st.level == DiagnosticStatus.ERROR and st.name in seen_ok and not reported:
                        reported.append(f"{st.name.split(':', 1)[0]}: {st.message}")
                    if st.level == DiagnosticStatus.ERROR and "link down" in st.message:
                        link_down.append(time.monotonic())
                    if "stalled" in st.message and st.level == DiagnosticStatus.ERROR:
                        # named as the fault reports are (the name prefix says which process stalled)
                        stall_reports.append(f"{st.name.split(':', 1)[0]}: {st.message}")
                        stall_walls.append(time.monotonic())

            node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, RELIABLE_QOS)

            def sample(t):
                tps = emu.model
                k = m_per_tick
                trace.append((t, 0.5 * (tps.target_tps[0] + tps.target_tps[1]) * k,
                              0.5 * (tps.speed_tps[0] + tps.speed_tps[1]) * k,
                              0.5 * (tps.position_ticks[0] + tps.position_ticks[1]) * k))

            # zero commands until the driver talks to the device and has taken one (it starts stopped, and moves
            # only after upstream's zero), then motion until the wheels turn
            deadline = time.monotonic() + 90.0   # a loaded machine starts a Python process with rclpy slowly
            talking = moving_cmd = None
            while time.monotonic() < deadline and emu.model.speed_tps[0] * m_per_tick < 0.8 * speed_mps:
                ex.spin_once(timeout_sec=0.01)
                sup.poll(0.0)
                if talking is None and emu.requests > 0:
                    talking = time.monotonic()
                # the driver says "driving" once it has taken a zero; the rig's /diagnostics subscription (a new
                # participant) may miss that: ARM_SEEN_S of zeros since it talks to the device arm it all the same
                # once its status no longer says it waits for a zero (without any status from it, after
                # ARM_BLIND_S). DDS discovery between two new processes can take a few seconds: the rig's zeros
                # reach the driver ~3 s after it starts, its first status the rig after ~2.4 s (measured at load
                # 4); moving before would leave the driver latched, rightly, and the run "not measured"
                since = time.monotonic() - talking if talking is not None else -1.0
                arm_ok = armed or (since >= ARM_SEEN_S and status["seen"] and not status["wants_zero"]) or (
                    since >= ARM_BLIND_S and not status["seen"])
                if talking is not None and arm_ok and time.monotonic() - talking >= 0.2 and moving_cmd is None:
                    state["v"] = speed_mps   # the driver took a zero command ("driving" on zero): now move
                    moving_cmd = time.monotonic()
                if moving_cmd is not None and time.monotonic() - moving_cmd > START_MOVE_S:
                    break   # commanded, armed, and still standing (a safety loop latched late on a loaded machine)
            if emu.model.speed_tps[0] * m_per_tick < 0.8 * speed_mps:
                never_turned = True   # (a loaded machine: the stack late or stopped before the fault): nothing measured
            else:
                t0 = time.monotonic()
                state["t0"] = t0
                phase = "driving"
                requests_back = None
                t_back = t_reconnect = t_zero_cmd = t_again = new_pid = None
                pid = None
                while True:
                    t = time.monotonic() - t0
                    ex.spin_once(timeout_sec=0.005)
                    sup.poll(t)
                    sample(t)
                    if phase == "driving" and t >= t_fault:
                        pid = sup.pid_of(fqn)
                        if kind == "serial_unplug":
                            emu.unplug()
                            events.append(f"{t:.2f} s: cable pulled")
                        elif kind == "kill":
                            os.kill(pid, signal.SIGKILL)
                            events.append(f"{t:.2f} s: {exe} process {pid} killed (SIGKILL)")
                        else:
                            os.kill(pid, signal.SIGSTOP)
                            events.append(f"{t:.2f} s: {exe} process {pid} stopped (SIGSTOP)")
                        phase = "fault"
                    elif phase == "fault" and t >= t_fault + d:
                        if kind == "serial_unplug":
                            emu.replug()
                            events.append(f"{t:.2f} s: cable plugged back")
                        elif kind == "freeze":
                            try:
                                os.kill(pid, signal.SIGCONT)
                                events.append(f"{t:.2f} s: {exe} process {pid} continued (SIGCONT)")
                            except ProcessLookupError:   # the supervisor found it silent and killed it
                                events.append(f"{t:.2f} s: {exe} process {pid} gone before SIGCONT")
                        requests_back = emu.requests
                        t_back = t
                        phase = "back"
                    elif phase == "back":
                        if not expect_again and t >= t_back + hold_s + (0.0 if kind == "kill" or t_reconnect else 2.0):
                            break   # the safe base: watched for hold_s after the fault's end; nothing restarts it here
                        now_pid = sup.pid_of(fqn)
                        gone = kind != "serial_unplug" and now_pid is None
                        if gone:   # the old process is gone: only the requests of the next one count
                            requests_back = emu.requests
                        elif kind != "serial_unplug" and now_pid != pid and new_pid is None:
                            new_pid, requests_back = now_pid, emu.requests   # restarted: its requests from now on
                            events.append(f"{t:.2f} s: {exe} restarted (process {now_pid})")
                        if t_reconnect is None and not gone and emu.requests > requests_back and (
                                kind != "kill" or new_pid is not None):
                            t_reconnect = t
                            events.append(f"{t:.2f} s: the driver talks to the device again"
                                          + (f" (process {sup.pid_of(fqn)})" if kind != "serial_unplug" else ""))
                        if (t_reconnect is not None and t >= t_reconnect + hold_s) or t >= t_back + BACK_WAIT_S:
                            state["v"] = 0.0
                            t_zero_cmd = t
                            events.append(f"{t:.2f} s: a zero command (the stack stops and starts again)")
                            phase = "zero"
                    elif phase == "zero" and t >= t_zero_cmd + ZERO_HOLD_S and (
                            any(a - t0 > t_zero_cmd for a in armed) or t >= t_zero_cmd + ARM_WAIT_S):
                        # the driver has taken the zero ("driving" on it; a restarted process on a loaded machine
                        # may talk to the device long before its subscriptions are matched): the fresh command
                        state["v"] = speed_mps
                        t_again = t
                        phase = "again"
                    elif phase == "again" and (t >= t_again + AGAIN_WAIT_S or (
                            t >= t_again + 0.5 and abs(trace[-1][2]) > 0.05)):
                        break   # moving again (half a second after the fresh command), or given up waiting
            ex.remove_node(node)
            node.destroy_node()
            sup.stop_all()
            device = {"serial_timeouts_fired": emu.timeouts_fired, "requests": emu.requests}
    finally:
        if sup is not None:
            for p in sup.procs.values():
                if p.running():
                    os.kill(p.pid, signal.SIGCONT)
                    p.popen.kill()
                    p.popen.wait()
        rclpy.shutdown(context=ctx)
        shutil.rmtree(tmp, ignore_errors=True)   # the pty link and the rig's throwaway command store

    if never_turned:
        res = FaultResult(fault.text + " (rig)", round(t_fault, 3), 0.0, None, None, 0.0, None, None, "-", "-",
                          None, "not measured: the wheels never turned before the fault (the stack late or latched "
                          "on a loaded machine)")
        summary = {"exit_code": 0, "stopped_because": f"rig run ended before the fault; faults injected: {fault.text}",
                   "node_failures": sup.summary() if sup is not None else [], "faults_detected": [],
                   "chaos": {"faults": [fault.text], "events": [], "results": [dataclasses.asdict(res)],
                             "device": device}}
        path = out / "summary.json"
        path.write_text(json.dumps(summary, indent=2))
        progress(f"agricare chaos rig: {fault.text}: {res.verdict}")
        return RigResult(path, 0, summary["stopped_because"]), summary
    rows = [r for r in trace if r[0] >= t_fault]
    v0 = rows[0][2]
    i_cmd0 = next((i for i, r in enumerate(rows) if abs(r[1]) < 1e-9), None)
    t_cmd0 = None if i_cmd0 is None else rows[i_cmd0][0]
    # the trace's resolution at the stop: the gap between the last sample before it and the first at zero
    resolution = (rows[i_cmd0][0] - rows[i_cmd0 - 1][0]) if i_cmd0 else 0.0
    t_still = next((r[0] for r in rows if abs(r[2]) < 0.02), None)
    t_zero = t_zero_cmd if t_zero_cmd is not None else math.inf
    # motion by itself: the wheels turning again after they had stood still, before any zero command
    after_still = [r for r in rows if t_still is not None and t_still <= r[0] < t_zero]
    moved = next((r for r in after_still if abs(r[2]) > 0.05), None)
    before_zero = [r for r in rows if r[0] < t_zero]
    dist = before_zero[-1][3] - rows[0][3]
    t_fresh = t_again if t_again is not None else math.inf
    again = next((r for r in trace if r[0] > t_fresh and abs(r[2]) > 0.05), None)
    what = {"serial_unplug": "the replug", "kill": "the kill", "freeze": "SIGCONT"}[kind]
    if moved is not None:
        resumed = f"by itself at {moved[0]:.1f} s (before any zero command)"
    elif not expect_again:
        held = trace[-1][0] - (t_back if t_back is not None else t_fault)
        resumed = (f"no: stayed still {held:.1f} s after {what} on the ongoing command stream ("
                   + ("not restarted: safety-critical, the robot's graph shut down" if kind == "kill"
                      else "the supervisor's stop is latched until the vehicle's panel resets it") + ")")
    else:
        held = t_zero - (t_back if t_back is not None else t_fault)
        resumed = (f"no: stayed still {held:.1f} s after {what} on the ongoing command stream; "
                   + (f"moved {again[0] - t_fresh:.2f} s after a zero command and a fresh one" if again
                      else "did not move after a zero command either"))
    back = "reconnected" if kind == "serial_unplug" else ("restarted, talking" if kind == "kill" else "talking")
    if not expect_again and kind == "kill":
        back = "not restarted"
    reconnect = (f"{back} {t_reconnect - t_back:.2f} s after {what}" if t_reconnect is not None
                 else f"never talked to the device again after {what}")
    bound = bp.comm_timeout_s + 1.0 / bp.loop_rate_hz
    t_cmd = None if t_cmd0 is None else t_cmd0 - t_fault
    verdict = _verdict_of(fault, v0, t_cmd, bound, None, None, resumed, "", t_still)
    if verdict == "ok" and t_cmd is not None and t_cmd > bound + resolution + 1e-9:
        verdict = f"stop command {t_cmd:.3f} s > bound {bound:.2f} s + {resolution * 1e3:.0f} ms sampling"
    extra = []
    if t_reconnect is None and expect_again:
        extra.append("never talked to the device again")
    if again is None and expect_again:
        extra.append("no motion after an explicit restart")
    if extra:
        verdict = "; ".join(extra) if verdict == "ok" else "; ".join([verdict] + extra)
    early = [w - t0 for w in stall_walls if t_fault - 1.0 <= w - t0 < t_fault]
    if early:   # the wheels were being stopped by the driver's own stall, not by the fault
        verdict = f"not measured: the driver stalled {t_fault - early[0]:.2f} s before the fault (loaded machine)"
    label = ("" if kind == "serial_unplug" else " (safe_base_node process: supervisor + driver)" if safe_base
             else " (base_driver_node process)")
    rig = "safe_base_node" if safe_base else "base_driver_node"
    res = FaultResult(fault.text + label + f" (rig: {rig} on an emulated RoboClaw)", round(t_fault, 3),
                      round(v0, 3), None if t_cmd is None else round(t_cmd, 3),
                      None if t_still is None else round(t_still - t_fault, 3), round(dist, 2), None, None,
                      f"{resumed} ({reconnect})", "-", round(bound, 3), verdict)
    # the link lost again with the cable in, after the driver had reconnected: the emulated controller (a thread
    # of this process) answered too late for the driver's retries, which a loaded machine does; such a run
    # says nothing about the fault
    lost_plugged = sum(1 for w in link_down if t_reconnect is not None and w - t0 > t_reconnect)
    failures = sup.summary()
    if any("cause" in f for f in failures):   # a dead or silent driver process: a node failure (exit 3)
        code = EXIT_NODE_FAILED
        f0 = next(f for f in failures if "cause" in f)
        named = f"; node process(es) failed: {f0['node']} ({f0['cause']}, {f0['action']})"
    elif reported or stall_reports:   # the driver detected it itself (its diagnostics): exit 4, as agricare run
        code = EXIT_SAFETY_FAULT
        named = f"; fault(s) detected: {(reported or stall_reports)[0]}"
    else:
        code, named = 0, ""
    device["link_lost_while_plugged"] = lost_plugged
    # the driver's stalled cycles as it reported them (a loaded machine can stall it before the fault: then the
    # wheels were already being stopped when the fault came, and the run says less about the fault)
    device["stalls_reported_at_s"] = [round(w - state["t0"], 2) for w in stall_walls]
    device["stall_reported"] = stall_reports[0] if stall_reports else ""
    events += [f"{w - state['t0']:.2f} s: the driver reported: {m}" for w, m in zip(stall_walls, stall_reports)]
    summary = {"exit_code": code, "stopped_because": f"rig run ended{named}; faults injected: {fault.text}",
               "node_failures": failures,
               "faults_detected": [{"robot": "chaos_rig", "fault": r} for r in (reported or stall_reports)],
               "chaos": {"faults": [fault.text], "events": events, "results": [dataclasses.asdict(res)],
                         "device": device}}
    # the device's trace (t s, target m/s, speed m/s, travel m), every 20 ms
    kept, last = [], -math.inf
    for r in trace:
        if r[0] - last >= 0.02:
            kept.append([round(x, 4) for x in r])
            last = r[0]
    (out / "device_trace.json").write_text(json.dumps(kept))
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    progress(f"agricare chaos rig: {fault.text}: {verdict}")
    return RigResult(path, code, summary["stopped_because"]), summary
