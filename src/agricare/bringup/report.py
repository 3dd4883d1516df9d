"""Plots and figures from a run directory (``recording.mcap`` + ``summary.json``).

Everything is read back from the MCAP with a plain MCAP reader and the ROS 2 CDR decoder, so the same
report can be made from any recording, including one from a robot.
"""

from __future__ import annotations

import collections
import json
import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402


def read_topics(mcap_path, topics_suffixes: tuple[str, ...]):
    """Decoded messages of the topics ending with one of ``topics_suffixes``: {topic: [(t_s, msg), ...]}.

    Only the chunks' messages on the wanted channels are decoded (a care day records ~250 k messages, the
    plots need ~15 %). Odometry, Imu and TwistStamped are read by the light decoders of ``ros/fastmsg``, any
    other installed type by rclpy's C deserialiser, the rest (a recording from a robot with other packages) by
    the plain CDR decoder of ``mcap_ros2``.
    """
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out = collections.defaultdict(list)
    with open(mcap_path, "rb") as fh:
        reader = make_reader(fh)
        summary = reader.get_summary()
        wanted = None
        if summary is not None:
            wanted = sorted({c.topic for c in summary.channels.values() if c.topic.endswith(topics_suffixes)})
            if not wanted:
                return out
        fast = _fast_decoders(summary)
        for schema, channel, message in reader.iter_messages(topics=wanted, log_time_order=True):
            if not channel.topic.endswith(topics_suffixes):
                continue
            decode = fast.get(channel.id)
            if decode is None:
                decode = fast[channel.id] = DecoderFactory().decoder_for(channel.message_encoding, schema)
            out[channel.topic].append((message.log_time * 1e-9, decode(message.data)))
    return out


def _fast_decoders(summary) -> dict:
    """{channel id: bytes -> message} for CDR channels whose ROS type is importable here."""
    if summary is None:
        return {}
    try:
        from rclpy.serialization import deserialize_message
    except ImportError:
        return {}
    from agricare.bringup.recorder import import_type
    from agricare.ros import fastmsg

    light_decoders = fastmsg.decoders()   # Odometry, Imu, TwistStamped: read field by field, ~6x faster
    out = {}
    for cid, ch in summary.channels.items():
        schema = summary.schemas.get(ch.schema_id)
        if ch.message_encoding != "cdr" or schema is None or schema.encoding != "ros2msg":
            continue
        try:
            cls = import_type(schema.name)
        except (ImportError, AttributeError, IndexError, ValueError):
            continue
        light = light_decoders.get(cls)
        out[cid] = (fastmsg.decoder(cls, light) if light is not None
                    else (lambda data, cls=cls: deserialize_message(data, cls)))
    return out


def message_counts(mcap_path) -> dict:
    from mcap.reader import make_reader

    with open(mcap_path, "rb") as fh:
        summary = make_reader(fh).get_summary()
    if summary is None or summary.statistics is None:
        return {}
    counts = summary.statistics.channel_message_counts
    return {summary.channels[cid].topic: n for cid, n in sorted(counts.items())}


def _world_geometry(scenario: dict):
    world = scenario.get("world") or {}
    return world.get("fields") or [], world.get("roads") or [], world.get("places") or [], \
        world.get("obstacles") or []


def _draw_world(ax, scenario):
    fields, roads, places, obstacles = _world_geometry(scenario)
    for f in fields:
        poly = np.array(f["polygon"] + [f["polygon"][0]], dtype=float)
        ax.plot(poly[:, 0], poly[:, 1], "-", color="saddlebrown", lw=1.5)
        for h in f.get("holes") or []:
            hp = np.array(h + [h[0]], dtype=float)
            ax.fill(hp[:, 0], hp[:, 1], color="lightblue", alpha=0.6)
    for r in roads:
        line = np.array(r["polyline"], dtype=float)
        ax.plot(line[:, 0], line[:, 1], "-", color="0.75", lw=max(1.0, float(r.get("width_m", 4))), alpha=0.5,
                solid_capstyle="round", zorder=0)
    for p in places:
        x, y = p["xy"]
        ax.plot(x, y, "s", color={"home": "tab:orange", "nursery": "tab:green", "clinic": "tab:red",
                                  "depot": "k"}.get(p.get("kind"), "0.4"), ms=6)
        ax.annotate(p["name"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for o in obstacles:
        if "circle" in o:
            c = o["circle"]
            ax.add_patch(plt.Circle(c["center"], c["radius_m"], color="0.3"))
        elif "polygon" in o:
            pp = np.array(o["polygon"], dtype=float)
            ax.fill(pp[:, 0], pp[:, 1], color="0.3")


def make_report(run_dir) -> dict:
    """Write PNG plots into ``run_dir`` and return {name: path}."""
    run_dir = pathlib.Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    scenario = yaml.safe_load(pathlib.Path(summary["scenario_file"]).read_text())
    mcap_path = run_dir / "recording.mcap"
    written = {}
    if not mcap_path.exists():
        return written
    data = read_topics(mcap_path, ("ground_truth/odom", "safety/state", "controller/status", "mission/status",
                                   "/ground_truth/people", "handover/events"))
    truth = {t.split("/")[1]: v for t, v in data.items() if t.endswith("ground_truth/odom")}

    # trajectory over the field or the town
    fig, ax = plt.subplots(figsize=(8, 6))
    _draw_world(ax, scenario)
    for robot, series in sorted(truth.items()):
        xy = np.array([[m.pose.pose.position.x, m.pose.pose.position.y] for _, m in series])
        if len(xy):
            ax.plot(xy[:, 0], xy[:, 1], "-", lw=1, label=robot)
            ax.plot(xy[0, 0], xy[0, 1], "o", color="k", ms=3)
    people = [v for t, v in data.items() if t.endswith("ground_truth/people")]
    if people:
        pts = np.array([[p.position.x, p.position.y] for _, m in people[0][:: max(1, len(people[0]) // 200)]
                        for p in m.poses])
        if len(pts):
            ax.plot(pts[:, 0], pts[:, 1], ".", color="tab:purple", ms=1, alpha=0.4, label="people")
    ax.set_aspect("equal")
    ax.set_xlabel("x east [m]")
    ax.set_ylabel("y north [m]")
    ax.set_title(f"{summary['scenario']}: trajectories (ground truth)")
    ax.legend(fontsize=7, loc="best")
    written["trajectory"] = _save(fig, run_dir / "trajectory.png")

    # speed over time, and cross-track error when the controller reports it
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for robot, series in sorted(truth.items()):
        t = np.array([s for s, _ in series])
        v = np.array([math.hypot(m.twist.twist.linear.x, m.twist.twist.linear.y) for _, m in series])
        axes[0].plot(t, v, lw=0.8, label=robot)
    axes[0].set_ylabel("speed [m/s]")
    axes[0].legend(fontsize=7)
    for topic, series in sorted(data.items()):
        if not topic.endswith("controller/status"):
            continue
        ts, cte = [], []
        for s, m in series:
            try:
                cte.append(float(m.cross_track_m))  # agricare_interfaces/ControllerStatus
                ts.append(s)
            except (ValueError, TypeError, AttributeError):
                continue
        if ts:
            axes[1].plot(ts, cte, lw=0.8, label=topic.split("/")[1])
    axes[1].set_ylabel("cross-track error [m]")
    axes[1].set_xlabel("sim time [s]")
    axes[1].legend(fontsize=7)
    written["speed"] = _save(fig, run_dir / "speed_cross_track.png")

    # safety events
    fig, ax = plt.subplots(figsize=(9, 3))
    names = ["RUN", "SLOW", "PROTECTIVE_STOP", "EMERGENCY_STOP", "FAULT"]
    for i, (topic, series) in enumerate(sorted(t for t in data.items() if t[0].endswith("safety/state"))):
        ts = np.array([s for s, _ in series])
        st = np.array([m.state for _, m in series])
        ax.step(ts, st + 0.05 * i, where="post", lw=1, label=topic.split("/")[1])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("sim time [s]")
    ax.set_title("safety supervisor state")
    ax.legend(fontsize=7)
    written["safety"] = _save(fig, run_dir / "safety_events.png")

    # mission timeline (children's timeline for the care scenario)
    fig, ax = plt.subplots(figsize=(9, 3))
    rows = []
    for topic, series in sorted(t for t in data.items() if t[0].endswith("mission/status")):
        robot = topic.split("/")[1]
        prev = None
        for s, m in series:
            if m.state != prev:
                rows.append((robot, s, m.state))
                prev = m.state
    robots = sorted({r for r, _, _ in rows})
    for r, s, state in rows:
        y = robots.index(r)
        ax.plot(s, y, "|", ms=12, color="tab:blue")
        ax.annotate(state, (s, y), fontsize=5, rotation=60, xytext=(0, 4), textcoords="offset points")
    ax.set_yticks(range(len(robots)), robots, fontsize=7)
    ax.set_xlabel("sim time [s]")
    ax.set_title("mission timeline")
    written["timeline"] = _save(fig, run_dir / "mission_timeline.png")
    return written


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _commit() -> str:
    import subprocess

    try:
        here = pathlib.Path(__file__).resolve().parent
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _pct(x):
    return "-" if x is None else f"{100.0 * float(x):.2f} %"


def _cm(x):
    return "-" if x is None else f"{100.0 * float(x):.2f} cm"


def robot_rows(summary: dict) -> list[dict]:
    """One row of figures per robot from ``summary.json`` (missions + ground-truth measurements)."""
    rows = []
    missions = summary.get("missions") or {}
    for robot, fig in sorted((summary.get("world") or {}).items()):
        st = missions.get(robot) or {}
        d = st.get("detail") if isinstance(st.get("detail"), dict) else {}
        pe = fig.get("pose_error") or {}
        row = {"robot": robot, "type": fig.get("type"), "mission": st.get("state", "-"),
               "pose_rmse": _cm(pe.get("rmse_m")), "pose_max": _cm(pe.get("max_m")),
               "pose_urban": (f"{_cm(pe['between_buildings']['rmse_m'])} / {_cm(pe['between_buildings']['max_m'])}"
                              if "between_buildings" in pe else "-"),
               "contacts_moving": fig.get("contacts", 0), "boundary_violations": fig.get("boundary_violations", 0)}
        if "covered_ratio_inner" in fig:
            row["figures"] = (f"inner field covered {_pct(fig['covered_ratio_inner'])}, double "
                              f"{_pct(fig['double_ratio_inner'])} (whole field {_pct(fig.get('covered_ratio_field'))})")
        elif "row_cross_track_rms_m" in fig:
            row["figures"] = (f"cross-track RMS {_cm(fig['row_cross_track_rms_m'])}, max "
                              f"{_cm(fig['row_cross_track_max_m'])} over {fig['row_samples']} in-row samples "
                              f"({fig.get('row_samples_excluded_turning', 0)} excluded while turning), "
                              f"{d.get('rows_done', '-')} rows")
        elif "delivered" in d:
            trips = d.get("trips") or {}
            row["figures"] = (f"{len(d.get('delivered_in_window', []))} of {len(trips)} trips delivered in window, "
                              f"{d.get('handovers_verified', 0)} hand-overs verified, "
                              f"{d.get('handovers_refused', 0)} refused")
        else:
            row["figures"] = "-"
        rows.append(row)
    return rows


def write_report_md(run_dir) -> pathlib.Path:
    """``report.md`` next to ``summary.json``: the run, a table of figures per robot and the plots."""
    run_dir = pathlib.Path(run_dir)
    s = json.loads((run_dir / "summary.json").read_text())
    lines = [f"# {s['scenario']}: run report", "",
             f"commit {_commit()}, seed {s.get('seed')}, {s.get('sim_time_s')} s simulated in {s.get('wall_time_s')} s "
             f"wall ({s.get('real_time_factor')}x real time); stopped: {s.get('stopped_because')}, "
             f"exit code {s.get('exit_code')}.", "",
             "Every robot drives on its own estimates; the figures are measured with the simulator's ground truth "
             "(pose error: `odometry/filtered` against the true pose at the estimate's stamp).", "",
             "| robot | mission | figures | pose RMSE | pose max | pose RMSE / max, GNSS degraded | "
             "contacts while moving | boundary violations |",
             "|---|---|---|---|---|---|---|---|"]
    for r in robot_rows(s):
        lines.append(f"| {r['robot']} ({r['type']}) | {r['mission']} | {r['figures']} | {r['pose_rmse']} | "
                     f"{r['pose_max']} | {r['pose_urban']} | {r['contacts_moving']} | {r['boundary_violations']} |")
    if s.get("violations"):
        lines += ["", f"Violations: {len(s['violations'])} (see summary.json)."]
    csvs = sorted(p.name for p in run_dir.glob("*.csv"))
    if csvs:
        lines += ["", "Long lists and series: " + ", ".join(f"[{n}]({n})" for n in csvs) + "."]
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    for name in pngs:
        lines += ["", f"![{name}]({name})"]
    out = run_dir / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
