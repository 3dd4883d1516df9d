"""CPU per frame of the care shuttle's docking camera, stage by stage (one core, this process).

Renders the demo's shuttle camera (``config/scenarios/care.yaml``: 480x360) 2.5 m behind home_1's boarding
point, converts it to sensor_msgs/Image, serialises / deserialises it (what DDS does to a message between
processes, and rclpy between nodes of one process), converts it back and runs marker_node's ArUco detector.
Reference in the same process: the row robot's camera frame (farm.yaml, 320x240) rendered the same number of times.

Usage: ``PYTHONPATH=src python bench/camera_frame.py [--frames 100]``.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    from builtin_interfaces.msg import Time
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from agricare.core.perception.markers import MarkerDetector, MarkerParams
    from agricare.core.sim.scenarios import parse_scenario
    from agricare.core.sim.world import World
    from agricare.ros.convert import bgr_to_image, image_to_bgr

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    n = ap.parse_args().frames
    world = World.from_scenario(parse_scenario(yaml.safe_load((ROOT / "config/scenarios/care.yaml").read_text())), 0)
    v = world.robots["shuttle_1"].vehicle
    v.x_m, v.y_m, v.yaw_rad = 72.5, 101.8, 0.0
    K = world.camera_matrix("shuttle_1")
    det = MarkerDetector(MarkerParams("DICT_4X4_50", 0.5, tuple(range(10, 22))))
    stages = {}

    def timed(name, fn):
        t0 = time.process_time()
        for _ in range(n):
            out = fn()
        stages[name] = (time.process_time() - t0) / n * 1e3
        return out

    img = timed("render (simulator, sign drawn)", lambda: world.camera_image("shuttle_1"))
    msg = timed("to sensor_msgs/Image", lambda: bgr_to_image(img, Time(), "camera_optical_frame"))
    raw = timed("serialise", lambda: serialize_message(msg))
    back = timed("deserialise", lambda: deserialize_message(raw, Image))
    bgr = timed("to BGR array", lambda: image_to_bgr(back))
    found = timed("ArUco detection (marker_node)", lambda: det.detect(bgr, K))
    farm = World.from_scenario(parse_scenario(yaml.safe_load((ROOT / "config/scenarios/farm.yaml").read_text())), 0)
    row = next(name for name, r in farm.robots.items() if r.camera is not None)
    timed("reference: row robot frame render", lambda: farm.camera_image(row))
    print(f"shuttle camera {img.shape[1]}x{img.shape[0]}, markers found: {[m.id for m in found]}, {n} frames")
    total = 0.0
    for name, ms in stages.items():
        print(f"  {name:38s} {ms:6.2f} ms/frame")
        total += ms if not name.startswith("reference") else 0.0
    print(f"  {'shuttle frame, all stages':38s} {total:6.2f} ms/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
