"""Fault injection: fault syntax, message corruption and sensor lies, process supervision (exit, silence,
restart with backoff), the launch policy, and a short chaos run of the graph in separate processes
(``config/chaos/tractor_line.yaml``) measured on simulator ground truth."""

from __future__ import annotations

import json
import math
import os
import pathlib
import sys
import time

import pytest

from agricare.bringup.chaos import (KINDS, ChaosError, corrupt, lie, parse_fault, resolve, survived)
from agricare.bringup.graph import NodeSpec, load_graph
from agricare.bringup.supervise import EXIT_NODE_FAILED, EXIT_SAFETY_FAULT, ProcessSupervisor, SupervisionParams

SCENARIO = "config/chaos/tractor_line.yaml"
STEP_S = 0.05   # the scenario's simulator step: resolution of the ground-truth trace


# ------------------------------------------------------------------------------------------ syntax
def test_parse_fault_syntax_and_errors():
    f = parse_fault("freeze@t=12.5,d=3:/tractor/controller_node")
    assert (f.kind, f.t_s, f.duration_s, f.target) == ("freeze", 12.5, 3.0, "/tractor/controller_node")
    assert parse_fault("cpu_hog@t=4").duration_s == 30.0       # the kind's default
    assert parse_fault("drop:/tractor/cmd_vel").duration_s is None   # to the end of the run
    for bad in ("explode@t=3", "kill@t=x:/a", "kill@t=-1:/a", "kill@q=3:/a", "kill@t=nan:/a", ""):
        with pytest.raises(ChaosError):
            parse_fault(bad)
    assert len(KINDS) == len(set(KINDS)) == 19
    assert parse_fault("clock_skew@t=3:/tractor/velocity_smoother_node").duration_s == 2.0   # the skew
    assert parse_fault("serial_unplug@t=2").duration_s == 3.0


def test_resolve_checks_targets_against_the_graph(repo_root):
    g = load_graph(repo_root / SCENARIO)
    assert resolve([parse_fault("scan_blind@t=3")], g)[0].target == "/tractor/scan"
    assert resolve([parse_fault("nan@t=3:/tractor/cmd_vel")], g)[0].target == "/tractor/cmd_vel"
    assert resolve([parse_fault("clock_skew@t=3")], g)[0].target == "/tractor/velocity_smoother_node"
    for bad in ("kill@t=3:/tractor/nobody", "nan@t=3:/tractor/plan", "drop@t=3:/ghost/cmd_vel",
                "drop@t=3:/tractor/odometry/filtered", "gnss_jump:/ghost", "disk_full:/tmp",
                "clock_skew@t=3:/tractor/nobody", "serial_unplug:/tractor/gnss"):
        with pytest.raises(ChaosError):
            resolve([parse_fault(bad)], g)
    # the base driver's own process faults run on its rig, alone
    assert resolve([parse_fault("kill@t=2:base")], g)[0].target == "base"
    assert resolve([parse_fault("freeze@t=2,d=2:safe_base")], g)[0].target == "safe_base"
    with pytest.raises(ChaosError, match="alone"):
        resolve([parse_fault("freeze@t=2:base"), parse_fault("scan_blind@t=3")], g)


def test_corruption_and_lies_change_what_the_robot_is_told():
    pytest.importorskip("rclpy")
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import LaserScan, NavSatFix

    tw = TwistStamped()
    tw.twist.linear.x = 1.0
    assert math.isnan(corrupt(tw, "nan", "cmd_vel").twist.linear.x)
    assert corrupt(TwistStamped(), "range", "cmd_vel").twist.linear.x == 1e3
    scan = LaserScan(ranges=[5.0] * 10, range_min=0.1)
    assert all(r < scan.range_min for r in lie(scan, "scan_blind", None).ranges)
    fix = NavSatFix(latitude=36.0, longitude=140.0)
    moved = lie(NavSatFix(latitude=36.0, longitude=140.0), "gnss_jump", None)
    assert (moved.latitude - fix.latitude) * 111_320.0 == pytest.approx(50.0, abs=0.01)
    held = Odometry()
    held.pose.pose.position.x = 3.0
    now = Odometry()
    now.header.stamp.sec = 99
    now.pose.pose.position.x = 7.0
    out = lie(now, "odom_frozen", held)
    assert out.pose.pose.position.x == 3.0 and out.header.stamp.sec == 99   # old content, fresh stamp


# ------------------------------------------------------------------------------------------ supervision
def _spec(node, name):
    return NodeSpec(node, name, "/r", "r", [], {}, {})


def _py(code):
    return [sys.executable, "-c", code]


def _supervise(sup, until, timeout_s=30.0, each=None):
    """Poll ``sup`` until ``until()`` (wall ``timeout_s`` at most); ``each()`` after every poll."""
    sup.start_all()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not until():
            sup.poll(sim_time_s=1.0)
            if each is not None:
                each()
            time.sleep(0.05)
    finally:
        sup.stop_all()


def test_supervisor_reports_exit_and_silence_restarts_with_backoff(tmp_path):
    # the events are ordered by the test, not by sleeps: a loaded machine starts a Python process in seconds,
    # and a crash that came before the driver had given up would shut the graph down first (no more restarts)
    flag = tmp_path / "driver_gave_up"
    specs = [_spec("controller_node", "crash"), _spec("gnss_node", "driver")]
    cmds = {"/r/crash": _py(f"import os, sys, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.05)\n"
                            "sys.exit(7)"),
            "/r/driver": _py("import os, signal, time; time.sleep(0.3); os.kill(os.getpid(), signal.SIGKILL)")}
    # the supervision logic alone: no niceness (a loaded machine would only slow the restarts down)
    params = SupervisionParams(alive_period_s=0.1, alive_timeout_s=0.5, startup_timeout_s=60.0,
                               restart_backoff_s=0.2, max_restarts=2, stop_timeout_s=2.0, background_nice=0)
    sup = ProcessSupervisor(specs, lambda s: cmds[s.fqn], params, progress=None)
    _supervise(sup, until=lambda: len(sup.failures) >= 4,
               each=lambda: sup.fatal is not None and flag.touch())   # the crash comes once the driver gave up
    by_node = {}
    for f in sup.failures:
        by_node.setdefault(f.node, []).append(f)
    drv = by_node["/r/driver"]
    assert drv[0].cause == "killed by SIGKILL" and drv[0].action == "restart in 0.2 s"
    assert drv[1].action == "restart in 0.4 s"          # backoff doubles
    assert drv[2].action.startswith("gave up restarting") and sup.procs["/r/driver"].restarts == 2
    assert sup.fatal is drv[2]                          # out of restarts: the robot's graph shuts down
    assert by_node["/r/crash"][0].cause == "exited with code 7"
    assert not any(p.running() for p in sup.procs.values())
    # a process that never says it is alive: no sign of life after the start-up timeout, the graph shuts down
    silent = ProcessSupervisor([_spec("ekf_node", "silent")], lambda s: _py("import time; time.sleep(30)"),
                               SupervisionParams(alive_period_s=0.1, alive_timeout_s=0.5, startup_timeout_s=1.0,
                                                 stop_timeout_s=2.0, background_nice=0), progress=None)
    t0 = time.monotonic()
    _supervise(silent, until=lambda: bool(silent.failures))
    assert time.monotonic() - t0 >= 1.0
    f = silent.failures[0]
    assert f.cause.startswith("no sign of life") and "shut down" in f.action and silent.fatal is f
    assert not any(p.running() for p in silent.procs.values())


def test_supervisor_allows_more_silence_only_while_the_graph_starts():
    # two processes that never publish: the test sets their last sign of life by hand
    params = SupervisionParams(alive_period_s=0.1, alive_timeout_s=0.5, startup_timeout_s=60.0,
                               startup_alive_timeout_s=5.0, startup_settle_s=0.3, stop_timeout_s=2.0,
                               background_nice=0)
    sup = ProcessSupervisor([_spec("velocity_smoother_node", "up"), _spec("ekf_node", "starting")],
                            lambda s: _py("import time; time.sleep(30)"), params, progress=None)
    sup.start_all()
    try:
        up, starting = sup.procs["/r/up"], sup.procs["/r/starting"]
        up.last_alive = time.monotonic() - 2.0          # silent 2 s while the other one is still importing
        assert sup.poll(sim_time_s=0.0) == [] and sup.alive_timeout(time.monotonic()) == 5.0
        up.last_alive = time.monotonic() - 6.0          # beyond the start-up allowance: a failure all the same
        f = sup.poll(sim_time_s=0.0)
        assert [x.node for x in f] == ["/r/up"] and f[0].cause.startswith("not answering for 6.")
        sup.stop_all()
        sup = ProcessSupervisor([_spec("velocity_smoother_node", "up"), _spec("ekf_node", "starting")],
                                lambda s: _py("import time; time.sleep(30)"), params, progress=None)
        sup.start_all()
        up, starting = sup.procs["/r/up"], sup.procs["/r/starting"]
        starting.last_alive = up.last_alive = time.monotonic()   # every process up: the settle time starts
        up.last_alive -= 2.0
        assert sup.poll(sim_time_s=0.0) == []           # inside startup_settle_s
        time.sleep(0.35)
        assert sup.alive_timeout(time.monotonic()) == 0.5
        starting.last_alive = time.monotonic()
        f = sup.poll(sim_time_s=0.0)                    # settled: 2.35 s of silence is a failure now
        assert [x.node for x in f] == ["/r/up"] and "shut down" in f[0].action
    finally:
        sup.stop_all()
    with pytest.raises(ValueError, match="startup_alive_timeout_s"):
        SupervisionParams(alive_timeout_s=4.0, startup_alive_timeout_s=2.0)


def test_launch_policy_respawns_drivers_and_perception_only(repo_root):
    from agricare.bringup.launch_description import launch_entries, supervision_policy

    entries = launch_entries(repo_root / "config/scenarios/farm_small.yaml")
    pol = {e.executable: supervision_policy(e.executable) for e in entries}
    assert pol["crop_row_node"]["respawn"] and pol["crop_row_node"]["respawn_delay_s"] > 0
    for motion in ("controller_node", "safety_supervisor_node", "velocity_smoother_node", "farm_mission_node",
                   "sim_node"):
        assert not pol[motion]["respawn"] and pol[motion]["shutdown_on_exit"], motion
    assert pol["safety_supervisor_node"]["nice"] == 0 and pol["controller_node"]["nice"] > 0
    assert pol["crop_row_node"]["nice"] > 0
    text = (repo_root / "launch" / "_common.py").read_text()
    assert "supervision_policy" in text and "Shutdown(" in text and "respawn=" in text and "prefix=" in text


# ------------------------------------------------------------------------------------------ chaos runs
@pytest.fixture
def lan_env(monkeypatch):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_DOMAIN_ID", os.environ.get("AGRICARE_TEST_DOMAIN_ID", "77"))


def _chaos(repo_root, tmp_path, faults, max_sim_s, driving: tuple[str, float] | None = None):
    """A chaos run of the tractor line. ``driving`` = (fault, speed): the robot must be driving at least that fast
    when the fault takes effect, or the run measures nothing about it. On a loaded machine the robot can be
    standing then for a reason of its own (a late safety loop latched ``loop_overrun`` before the fault, a
    command stream stalled, a starved controller not yet started): such a run is repeated once, and the second
    one must be driving (asserted by the caller). The loads and what stopped the robot are printed."""
    pytest.importorskip("rclpy")
    from agricare.bringup.chaos import run_chaos

    for attempt in range(2 if driving else 1):
        out = tmp_path / f"run{attempt}"
        result, _ = run_chaos(repo_root / SCENARIO, faults, out, max_sim_s=max_sim_s, progress=lambda *_: None)
        summary = json.loads(pathlib.Path(result.summary_path).read_text())
        rows = {r["fault"]: r for r in summary["chaos"]["results"]}
        print(f"chaos run {attempt}: load {summary['chaos']['load_avg_1min']}, pacing {summary.get('sim_pacing')}, "
              f"{summary['stopped_because']}")
        if driving is None or rows[driving[0]]["speed_at_fault_mps"] > driving[1]:
            break
    return result, summary, rows


def test_chaos_dead_safe_base_stops_the_wheels_and_perception_restarts(repo_root, tmp_path, lan_env):
    # the tracker restarts 1 s (wall) after its death, so after the supervisor's: a restarting tracker may stop
    # the robot for a moment (its first tracks), which must not be what the supervisor's kill is measured from
    faults = ["kill@t=5.5:/tractor/obstacle_tracker_node", "kill@t=6:/tractor/safety_supervisor_node"]
    result, summary, rows = _chaos(repo_root, tmp_path, faults, 12.0, driving=(faults[1], 0.3))
    fails = [f for f in summary["node_failures"] if f.get("node") == "/tractor/obstacle_tracker_node"]
    assert fails[0]["cause"] == "killed by SIGKILL" and fails[0]["action"].startswith("restart in")
    assert any(f.get("restarts", 0) >= 1 for f in fails), summary["node_failures"]
    r = rows["kill@t=6:/tractor/safety_supervisor_node"]
    assert r["speed_at_fault_mps"] > 0.3, r                     # it was driving
    # the trace is sampled once per simulator step (0.05 s): the stale moment is known to one step
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + STEP_S + 1e-9, r
    assert r["standstill_after_s"] is not None
    assert r["contacts"] == 0 and r["boundary_violations"] == 0 and r["resumed"] == "no"
    assert result.exit_code == EXIT_NODE_FAILED == summary["exit_code"]
    assert "safety_supervisor_node (killed by SIGKILL)" in summary["stopped_because"]
    assert any(f.get("node") == "/tractor/safety_supervisor_node" and "shut down" in f.get("action", "")
               for f in summary["node_failures"]), summary["node_failures"]
    assert survived(result)


def test_chaos_fault_caught_by_the_safety_fails_the_run(repo_root, tmp_path, lan_env):
    """No node dies: the supervisor refuses a reordered command pair and stops the robot. The robot survived,
    but the run does not read as a success: exit code 4 and the fault named in summary.json."""
    fault = "reorder@t=6:/tractor/cmd_vel_smoothed"
    result, summary, rows = _chaos(repo_root, tmp_path, [fault], 10.0, driving=(fault, 0.1))
    r = rows["reorder@t=6:/tractor/cmd_vel_smoothed"]
    # driving at the fault (a loaded machine stalls the command stream now and then: the robot stops on stale:cmd
    # and is still speeding up again at the fault; the check below is the stop, whatever the speed)
    assert r["speed_at_fault_mps"] > 0.1, r
    # the first swapped pair is refused (cmd_reordered, latched): a zero command within the timeout + one cycle
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + STEP_S + 1e-9, r
    assert r["contacts"] == 0 and r["boundary_violations"] == 0 and r["resumed"] == "no"
    assert summary["chaos"]["relays"]["/tractor/cmd_vel_smoothed"]["forwarded"] > 50
    assert not summary.get("node_failures")
    assert result.exit_code == EXIT_SAFETY_FAULT == summary["exit_code"]
    caught = [f for f in summary["faults_detected"] if f["fault"] == "cmd_reordered"]
    assert caught and caught[0]["robot"] == "tractor" and caught[0]["sim_time_s"] >= 6.0, summary["faults_detected"]
    assert "cmd_reordered" in summary["stopped_because"] and "faults injected" in summary["stopped_because"]
    loop = summary["chaos"]["safety_loop"]["tractor"]   # the safety loop's period, before the faults
    assert loop["cycles"] > 50 and loop["p50_s"] == pytest.approx(0.05, abs=0.011)
    assert survived(result)


def test_chaos_black_camera_while_creeping_at_the_row_entry_holds(repo_root, tmp_path, lan_env):
    """The row robot creeps towards rows 6.5 m ahead; its camera goes black: it holds still (no creeping on
    blind), perception names the camera fault, the run exits 4."""
    pytest.importorskip("rclpy")
    from agricare.bringup.chaos import run_chaos

    for attempt in range(2):
        result, _ = run_chaos(repo_root / "config/chaos/row_entry.yaml", ["camera_black@t=4"], tmp_path / str(attempt),
                              max_sim_s=8.0, progress=lambda *_: None)
        summary = json.loads(pathlib.Path(result.summary_path).read_text())
        r = summary["chaos"]["results"][0]
        if r["speed_at_fault_mps"] > 0.05:
            break
        # a loaded machine stalled the creep just then (perception or the safety loop late: the robot holds), so
        # this run says nothing about the fault: once more
    assert 0.05 < r["speed_at_fault_mps"] < 0.2, r              # creeping (half the turn speed), not following
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + STEP_S + 1e-9, r
    assert r["distance_after_fault_m"] < 0.15 and r["resumed"] == "no", r
    assert r["contacts"] == 0 and r["boundary_violations"] == 0
    assert result.exit_code == EXIT_SAFETY_FAULT
    assert any("crop_row_node" in f["fault"] and "camera fault" in f["fault"] for f in summary["faults_detected"])
    assert survived(result)


def test_chaos_serial_unplug_rig_stops_reconnects_and_does_not_drive_off(repo_root, tmp_path, lan_env):
    pytest.importorskip("rclpy")
    from agricare.bringup.chaos import run_chaos

    for attempt in range(2):
        result, summary = run_chaos(repo_root / SCENARIO, ["serial_unplug@t=1.5,d=2"], tmp_path / str(attempt),
                                    progress=lambda *_: None, hold_s=2.0)
        r = summary["chaos"]["results"][0]
        print(f"rig run {attempt}: load {os.getloadavg()[0]:.1f}, {r['verdict']}, {summary['chaos']['device']}")
        # the rig's device is a thread of this process: on a loaded machine it answers the driver late (the link
        # drops again with the cable in) or the stand-in safety loop's decisions reach the driver late (not
        # driving at the unplug); such a run says nothing about the unplug: once more
        if r["speed_at_fault_mps"] > 0.4 and not summary["chaos"]["device"]["link_lost_while_plugged"]:
            break
    assert r["speed_at_fault_mps"] > 0.4, r
    # the motor controller's own communication timeout (set by the driver at connect) stops the wheels
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + 0.02, r
    assert r["resumed"].startswith("no: stayed still") and "moved" in r["resumed"] and "reconnected" in r["resumed"], r
    assert summary["chaos"]["device"]["serial_timeouts_fired"] >= 1
    # the driver named the lost link on /diagnostics: the run fails with it (exit 4)
    assert summary["exit_code"] == EXIT_SAFETY_FAULT and "base_driver_node" in summary["stopped_because"], summary
    assert survived(result)


def _rig(repo_root, tmp_path, fault, hold_s=2.0):
    """A base-driver rig run (base_driver_node on an emulated RoboClaw, under the runner's process supervisor),
    repeated once if the run measured nothing about the fault: not driving at it (the stand-in safety loop's
    decisions reached the driver late) or the driver stalled on a loaded machine just before it."""
    from agricare.bringup.chaos import run_chaos

    for attempt in range(2):
        result, summary = run_chaos(repo_root / SCENARIO, [fault], tmp_path / str(attempt), progress=lambda *_: None,
                                    hold_s=hold_s)
        r = summary["chaos"]["results"][0]
        print(f"rig run {attempt}: load {os.getloadavg()[0]:.1f}, {r['verdict']}, {summary['chaos']['events']}")
        if r["speed_at_fault_mps"] > 0.4 and not r["verdict"].startswith("not measured"):
            break
    assert r["speed_at_fault_mps"] > 0.4, r
    return result, summary, r


def test_chaos_base_driver_killed_motor_controller_stops_restart_does_not_drive_off(repo_root, tmp_path, lan_env):
    """SIGKILL of the base driver's process: the motor controller's own communication timeout (armed by the
    driver at connect) stops the wheels within that timeout + one cycle; the supervisor restarts the driver
    with backoff; the restarted driver keeps the wheels still on the ongoing command stream (no stale or
    fresh command starts them) until a zero command, after which a fresh command drives."""
    pytest.importorskip("rclpy")
    result, summary, r = _rig(repo_root, tmp_path, "kill@t=1.5:base")
    assert r["bound_s"] == pytest.approx(0.55)   # comm_timeout_s 0.5 + one 20 Hz cycle
    # the device's state is sampled every few ms: 20 ms is more than the trace's resolution
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + 0.02, r
    assert r["standstill_after_s"] is not None and r["distance_after_fault_m"] < 0.5, r
    assert r["resumed"].startswith("no: stayed still") and "moved" in r["resumed"], r
    assert "restarted, talking" in r["resumed"], r
    assert summary["chaos"]["device"]["serial_timeouts_fired"] >= 1   # it was the device's timeout
    fails = [f for f in summary["node_failures"] if "cause" in f]
    assert fails[0]["cause"] == "killed by SIGKILL" and fails[0]["action"] == "restart in 1.0 s", fails
    assert any(f.get("restarts") == 1 for f in summary["node_failures"]), summary["node_failures"]
    assert summary["exit_code"] == EXIT_NODE_FAILED and "killed by SIGKILL" in summary["stopped_because"]
    assert r["verdict"] == "ok" and survived(result)


def test_chaos_base_driver_frozen_motor_controller_stops_no_motion_after_sigcont(repo_root, tmp_path, lan_env):
    """SIGSTOP of the base driver for 2 s (shorter than the supervisor's 4 s liveness timeout), then SIGCONT:
    the device's own timeout stops the wheels; the continued driver finds its cycle stalled, reports it (exit 4)
    and does not start the wheels on the command stream it finds waiting, only after a zero command."""
    pytest.importorskip("rclpy")
    result, summary, r = _rig(repo_root, tmp_path, "freeze@t=1.5,d=2:base")
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + 0.02, r
    assert r["standstill_after_s"] is not None and r["distance_after_fault_m"] < 0.5, r
    assert r["resumed"].startswith("no: stayed still") and "after SIGCONT" in r["resumed"] and "moved" in r["resumed"]
    assert summary["chaos"]["device"]["serial_timeouts_fired"] >= 1
    stalls = [s for s in summary["chaos"]["device"]["stalls_reported_at_s"] if s >= 1.5]
    assert stalls and stalls[0] >= 1.5 + 2.0 - 0.1, summary["chaos"]   # reported once it ran again
    assert not [f for f in summary["node_failures"] if "cause" in f]    # 2 s: not long enough to be "dead"
    assert summary["exit_code"] == EXIT_SAFETY_FAULT and "stalled" in summary["stopped_because"], summary
    # the report names the process that stalled (also when the rig missed the driver's first OK status)
    named = "/chaos_rig/base_driver_node: driver cycle stalled"
    assert summary["chaos"]["device"]["stall_reported"].startswith(named), summary["chaos"]
    assert f"fault(s) detected: {named}" in summary["stopped_because"], summary["stopped_because"]
    assert r["verdict"] == "ok" and survived(result)


def test_chaos_frozen_safe_base_only_the_motor_controller_stops_the_wheels(repo_root, tmp_path, lan_env):
    """SIGSTOP of the safe base (the safety supervisor and the driver in one process, as on a vehicle): nothing
    of the stack is left to stop the wheels but the motor controller's own communication timeout; after SIGCONT
    neither the supervisor (its late loop latched) nor the driver (its stalled cycle) lets them turn again on
    the command stream that went on."""
    pytest.importorskip("rclpy")
    result, summary, r = _rig(repo_root, tmp_path, "freeze@t=1.5,d=2:safe_base", hold_s=1.5)
    assert "safe_base_node" in r["fault"]
    assert r["cmd_zero_after_s"] is not None and r["cmd_zero_after_s"] <= r["bound_s"] + 0.02, r
    assert r["standstill_after_s"] is not None and r["distance_after_fault_m"] < 0.5, r
    assert r["resumed"].startswith("no: stayed still") and "latched" in r["resumed"], r
    assert summary["chaos"]["device"]["serial_timeouts_fired"] >= 1
    assert summary["exit_code"] in (EXIT_SAFETY_FAULT, EXIT_NODE_FAILED) and summary["faults_detected"], summary
    assert r["verdict"] == "ok" and survived(result)


def test_full_disk_under_a_running_audit_writer_loses_no_acknowledged_record(tmp_path):
    """disk_full:audit on a live process (the mechanism of the chaos fault, fast): a process appends a record
    every 20 ms and says which appends returned; the disk fills up under it. Every record acknowledged before
    then is in the file unchanged, the chain verifies, no append succeeds afterwards, and the writer names the
    failure for every refused record."""
    import subprocess

    from agricare.bringup.chaos import audit_lost, fill_disk

    log = tmp_path / "audit.jsonl"
    code = ("import sys, time\n"
            "from agricare.core.missions.audit import AuditLog, AuditWriteError\n"
            f"a = AuditLog.open({str(log)!r})\n"
            "for i in range(150):\n"
            "    try:\n"
            "        a.append('tick', float(i), n=i)\n"
            "        print('ok', i, flush=True)\n"
            "    except AuditWriteError as e:\n"
            "        print('failed', i, e, flush=True)\n"
            "    time.sleep(0.02)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1] / "src")})
    try:
        lines = []
        while len(lines) < 20:   # let it write for a while
            lines.append(proc.stdout.readline())
        acked = fill_disk(proc.pid, log)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += out.splitlines()
    oks = [ln for ln in lines if ln.startswith("ok")]
    fails = [ln for ln in lines if ln.startswith("failed")]
    n_acked = acked.count(b"\n")
    assert n_acked >= 20 and fails, (n_acked, lines[-3:])
    assert len(oks) <= n_acked + 1             # at most the append in flight when the limit came returned after it
    first_fail = int(fails[0].split()[1])
    assert all(int(ln.split()[1]) < first_fail for ln in oks)   # once failed, never written again
    assert "File too large" in fails[0] and len(fails) == 150 - first_fail
    report = audit_lost({str(log): acked})
    assert report.startswith("none (") and "chain verified" in report, report


def test_which_safety_reasons_fail_a_run():
    """Faults fail the run (exit 4); protective stops for people, obstacles, the geofence or the e-stop, the
    start-up's missing inputs and an idle planner's silence do not."""
    pytest.importorskip("rclpy")
    from agricare.bringup.runner import fault_reasons

    assert fault_reasons("no_data:cmd,no_data:scan", moving=False) == []
    assert fault_reasons("person,person_near,hold", moving=True) == []
    assert fault_reasons("obstacle,geofence_keep_in,remote_stop,estop_stale", moving=True) == []
    assert fault_reasons("stale:cmd", moving=False) == []              # the planner is idle: its command is zero
    assert fault_reasons("stale:cmd,person", moving=True) == ["stale:cmd"]   # it fell silent while driving
    assert fault_reasons("loop_overrun,nonfinite:odom,scan_blinded,cmd_reordered,clock_jump,imu_stuck",
                         moving=False) == ["loop_overrun", "nonfinite:odom", "scan_blinded", "cmd_reordered",
                                           "clock_jump", "imu_stuck"]
    # a rear scanner that is silent, corrupt or blinded while the machine backs up is a fault of the run
    assert fault_reasons("reverse_blind:stale:scan_rear,obstacle", moving=True) == ["reverse_blind:stale:scan_rear"]
    assert fault_reasons("scan_rear_blinded", moving=False) == ["scan_rear_blinded"]


def test_cpu_hog_verdict_says_whether_the_loop_kept_its_deadline():
    """Under the hog the safety loop keeps its deadline or the wheels stop the robot; the verdict says which,
    and driving on a stale decision fails it."""
    from agricare.bringup.chaos import Fault, _verdict_of

    hog = Fault("cpu_hog", 6.0, 30.0)
    kept = ("loop kept its 0.25 s deadline -- cycle gaps (sim) p99 50 ms max 100 ms; cycles later than 0.25 s: 0; "
            "non-zero commands after a late cycle: 0; non-zero decisions older than 0.25 s at the wheels: 0")
    assert _verdict_of(hog, 1.9, None, None, 0, 0, "no", kept) == "ok (loop kept its 0.25 s deadline)"
    late = ("loop missed its 0.25 s deadline: 3 late cycle(s), 2 wheel stop(s) on an out-of-date decision -- cycles "
            "later than 0.25 s: 3; non-zero commands after a late cycle: 0; non-zero decisions older than 0.25 s at "
            "the wheels: 0")
    assert _verdict_of(hog, 1.9, 0.3, None, 0, 0, "no", late, 1.5) == (
        "ok (loop missed its 0.25 s deadline: 3 late cycle(s), 2 wheel stop(s) on an out-of-date decision)")
    stale = late.replace("older than 0.25 s at the wheels: 0", "older than 0.25 s at the wheels: 4")
    assert _verdict_of(hog, 1.9, 0.3, None, 0, 0, "no", stale, 1.5) == "drove on stale decisions"
