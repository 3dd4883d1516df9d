"""Cost of one simulated camera frame: flat ground (reference) against the terrain-aware renderer.

    python bench/camera_render.py [--scenario config/scenarios/farm.yaml] [--frames 300]

Both renderers are built in this process from the same scenario (row robot camera, crop textures); frames are
rendered along the first lane, alternating the two renderers so load changes hit both alike. Process CPU time
is printed beside the wall time: on a shared machine it is the steadier figure.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

from agricare.core.sim.camera import CameraRenderer  # noqa: E402
from agricare.core.sim.world import World  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(pathlib.Path(__file__).resolve().parents[1]
                                              / "config/scenarios/farm.yaml"))
    ap.add_argument("--robot", default="row_robot")
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args(argv)
    w = World.from_file(a.scenario)
    r = w.robots[a.robot]
    params = r.camera.params
    flat = CameraRenderer(params, w.textures, np.random.default_rng(0), terrain=None)
    terr = CameraRenderer(params, w.textures, np.random.default_rng(0), terrain=w.terrain)
    x0, y0, yaw0 = r.spec.start
    poses = [np.array([x0 + 0.1 * i, y0 + 0.05 * np.sin(0.1 * i), yaw0]) for i in range(a.frames)]
    flat.render(poses[0])
    terr.render(poses[0])
    names = ("flat ground (reference)", "terrain")
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for pose in poses:
        for name, cam in zip(names, (flat, terr)):
            t, c = time.perf_counter(), time.process_time()
            cam.render(pose)
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - t)
    print(f"{a.frames} frames {params.width_px}x{params.height_px}, terrain {vars(w.spec.terrain)}")
    for name in names:
        ts, cs = np.asarray(wall[name]) * 1e3, np.asarray(cpu[name]) * 1e3
        print(f"  {name:26s} wall median {np.median(ts):6.2f} ms  p90 {np.percentile(ts, 90):6.2f} ms | "
              f"process CPU mean {cs.mean():6.2f} ms")


if __name__ == "__main__":
    main()
