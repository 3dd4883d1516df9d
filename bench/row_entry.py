"""Where the row robot's cross-track error comes from, from a run directory (recording.mcap).

    python bench/row_entry.py out/farm [--scenario config/scenarios/farm.yaml] [--robot row_robot]

Replays the recorded true pose (``ground_truth/odom``, measuring only) through the simulator's crop-block
geometry and prints, for the in-row samples the runner counts (inside a crop block, follower not turning):
the RMS per lane, the RMS per distance from the row entry, and at every re-entry the estimate's heading
and lateral error (EKF ``odometry/filtered`` minus truth) and the true offset/heading to the lane.
The recording is rate-limited, so the figures are over the recorded samples, not every simulator step.
"""

from __future__ import annotations

import argparse
import bisect
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

from agricare.core.geometry import wrap_angle  # noqa: E402
from agricare.core.sim.world import World  # noqa: E402
from agricare.ros.convert import pose_to_xyyaw  # noqa: E402


def _read(mcap_path, topics):
    """{topic: [(log time s, decoded message)]} of only these topics (the images are not decoded)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out = {t: [] for t in topics}
    with open(mcap_path, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for _schema, channel, message, decoded in reader.iter_decoded_messages(topics=topics, log_time_order=True):
            out[channel.topic].append((message.log_time * 1e-9, decoded))
    return out


def _at(ts, vals, t):
    i = bisect.bisect_right(ts, t) - 1
    return None if i < 0 else vals[i]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--scenario", default=None, help="scenario YAML (default: the one in summary.json)")
    ap.add_argument("--robot", default="row_robot")
    a = ap.parse_args(argv)
    run = pathlib.Path(a.run_dir)
    scen = a.scenario
    if scen is None:
        import json

        scen = json.loads((run / "summary.json").read_text())["scenario_file"]
    world = World.from_file(scen)
    r = a.robot
    topics = _read(run / "recording.mcap", [f"/{r}/ground_truth/odom", f"/{r}/odometry/filtered",
                                            f"/{r}/row_follower/state"])
    gt = topics[f"/{r}/ground_truth/odom"]
    ekf = topics[f"/{r}/odometry/filtered"]
    st = topics[f"/{r}/row_follower/state"]
    st_t, st_v = [t for t, _ in st], [m.data for _, m in st]
    ek_t, ek_p = [t for t, _ in ekf], [pose_to_xyyaw(m.pose.pose) for _, m in ekf]
    veh = world.robots[r].vehicle
    rows = []
    for t, m in gt:
        x, y, yaw = pose_to_xyyaw(m.pose.pose)
        veh.x_m, veh.y_m, veh.yaw_rad = x, y, yaw
        e = world.row_error(r)
        state = _at(st_t, st_v, t) or "following"
        pe = _at(ek_t, ek_p, t)
        if pe is None:
            dyaw = lat = float("nan")
        else:
            dyaw = wrap_angle(pe[2] - yaw)
            lat = -math.sin(yaw) * (pe[0] - x) + math.cos(yaw) * (pe[1] - y)
        rows.append((t, e.inside_block, state, e.lane_index, e.along_m, e.forward, e.lane_offset_m, e.heading_rad,
                     dyaw, lat, x, y))
    # segments: consecutive in-row non-turning samples in one lane
    segs, cur = [], None
    for s in rows:
        inrow = s[1] and s[2] != "turning" and s[2] != "done"
        key = (s[3], s[5])
        if inrow and cur is not None and cur[0] == key:
            cur[1].append(s)
        elif inrow:
            cur = (key, [s])
            segs.append(cur)
        else:
            cur = None
    allv = np.array([s[6] for _, ss in segs for s in ss])
    print(f"{len(allv)} recorded in-row samples, RMS {100 * np.sqrt(np.mean(allv ** 2)):.2f} cm, "
          f"max {100 * np.max(np.abs(allv)):.2f} cm")
    bins = [0, 1, 2, 3, 4, 6, 10, 20, 45]
    print("segment  lane dir  n   RMS cm  | RMS by distance from entry (m): " +
          " ".join(f"{bins[i]}-{bins[i + 1]}" for i in range(len(bins) - 1)))
    by_bin = [[] for _ in range(len(bins) - 1)]
    for k, (key, ss) in enumerate(segs):
        a0 = ss[0][4]
        d = np.array([abs(s[4] - a0) for s in ss])
        v = np.array([s[6] for s in ss])
        cells = []
        for i in range(len(bins) - 1):
            sel = (d >= bins[i]) & (d < bins[i + 1])
            by_bin[i].extend(v[sel])
            cells.append(f"{100 * np.sqrt(np.mean(v[sel] ** 2)):5.2f}" if sel.any() else "  -  ")
        print(f"{k:3d}  {key[0]:5d} {'+' if key[1] else '-'} {len(ss):5d} {100 * np.sqrt(np.mean(v ** 2)):6.2f}  | "
              + " ".join(cells))
    print("all segments by distance from entry: " + " ".join(
        f"{bins[i]}-{bins[i + 1]} m: {100 * np.sqrt(np.mean(np.square(b))):.2f} cm (n={len(b)})"
        for i, b in enumerate(by_bin) if b))
    print("at each entry (first in-row sample): true lane offset cm, true heading to row mrad, "
          "EKF yaw error mrad, EKF lateral error cm")
    for k, (key, ss) in enumerate(segs):
        s = ss[0]
        print(f"{k:3d} lane {key[0]} t={s[0]:7.1f}s  offset {100 * s[6]:6.2f}  heading {1000 * s[7]:6.1f}  "
              f"ekf yaw {1000 * s[8]:6.1f}  ekf lat {100 * s[9]:6.2f}")
    d = np.array([s[8] for s in rows if np.isfinite(s[8])])
    if len(d):
        print(f"EKF yaw error over the run: mean {1000 * d.mean():.1f} mrad, std {1000 * d.std():.1f} mrad")


if __name__ == "__main__":
    main()
