"""Generate the care-shuttle town map (deterministic): ``config/maps/town.pgm`` + ``town.yaml``.

A 300 m x 200 m town at 0.2 m per cell: a boundary wall, a grid of 10 m roads with 3 m pavements, six
building blocks split into lots with houses of seeded sizes and set-backs, lamp posts along the pavements,
8 homes, a nursery and a clinic. The named places (kerb-side stops) and the zones live in
``config/maps/town_zones.yaml`` (hand-written, checked against this map by the tests).

Usage: ``PYTHONPATH=src .venv/bin/python bench/make_town_map.py [--out config/maps] [--check]``
``--check`` regenerates in memory and exits 1 if the committed PGM differs.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

from agricare.core.planning.grid import OccupancyMap, load_map, save_map

WIDTH_M, HEIGHT_M, RES_M = 300.0, 200.0, 0.2
ROADS_X = (15.0, 105.0, 195.0, 285.0)   # vertical road centre lines
ROADS_Y = (15.0, 100.0, 185.0)          # horizontal road centre lines
ROAD_HALF_M = 5.0
PAVEMENT_M = 3.0
SEED = 20240611


def build_town(seed: int = SEED) -> OccupancyMap:
    rng = np.random.default_rng(seed)
    w, h = int(round(WIDTH_M / RES_M)), int(round(HEIGHT_M / RES_M))
    occ = np.zeros((h, w), dtype=bool)

    def rect(x0, y0, x1, y1):
        c0, c1 = int(round(x0 / RES_M)), int(round(x1 / RES_M))
        r0, r1 = int(round(y0 / RES_M)), int(round(y1 / RES_M))
        occ[max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)] = True

    # boundary wall 1 m
    rect(0, 0, WIDTH_M, 1.0)
    rect(0, HEIGHT_M - 1.0, WIDTH_M, HEIGHT_M)
    rect(0, 0, 1.0, HEIGHT_M)
    rect(WIDTH_M - 1.0, 0, WIDTH_M, HEIGHT_M)
    edge = ROAD_HALF_M + PAVEMENT_M
    # blocks between the roads: lots with houses of random size and set-back
    for xa, xb in zip(ROADS_X[:-1], ROADS_X[1:]):
        for ya, yb in zip(ROADS_Y[:-1], ROADS_Y[1:]):
            bx0, bx1, by0, by1 = xa + edge, xb - edge, ya + edge, yb - edge
            nx, ny = 4, 3
            lw, lh = (bx1 - bx0) / nx, (by1 - by0) / ny
            for i in range(nx):
                for j in range(ny):
                    if rng.random() < 0.12:
                        continue  # empty lot (garden, parking)
                    x0 = bx0 + i * lw + rng.uniform(0.5, 4.0)
                    x1 = bx0 + (i + 1) * lw - rng.uniform(1.0, 4.0)
                    y0 = by0 + j * lh + rng.uniform(0.5, 4.0)
                    y1 = by0 + (j + 1) * lh - rng.uniform(0.5, 4.0)
                    rect(x0, y0, x1, y1)
                    if rng.random() < 0.4:  # an annex makes the outline irregular
                        ax = rng.uniform(x0, x1 - 3.0)
                        rect(ax, y0 - 1.0, ax + 3.0, y0)
    # outer strips (between the boundary wall and the outer roads): fences with gaps
    for x in np.arange(25.0, 280.0, 14.0):
        rect(x, 3.0, x + rng.uniform(5.0, 9.0), 4.0)
        rect(x, HEIGHT_M - 4.0, x + rng.uniform(5.0, 9.0), HEIGHT_M - 3.0)
    # lamp posts (0.4 m) along every pavement, jittered spacing
    for yc in ROADS_Y:
        for side in (-1.0, 1.0):
            for x in np.arange(8.0, WIDTH_M - 8.0, 18.0) + rng.uniform(-3.0, 3.0):
                if all(abs(x - xc) > edge + 1.0 for xc in ROADS_X):
                    y = yc + side * (ROAD_HALF_M + PAVEMENT_M - 0.6)
                    rect(x - 0.2, y - 0.2, x + 0.2, y + 0.2)
    for xc in ROADS_X:
        for side in (-1.0, 1.0):
            for y in np.arange(8.0, HEIGHT_M - 8.0, 18.0) + rng.uniform(-3.0, 3.0):
                if all(abs(y - yc) > edge + 1.0 for yc in ROADS_Y):
                    x = xc + side * (ROAD_HALF_M + PAVEMENT_M - 0.6)
                    rect(x - 0.2, y - 0.2, x + 0.2, y + 0.2)
    return OccupancyMap(occ, RES_M, (0.0, 0.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[1] / "config" / "maps"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    town = build_town()
    yaml_path = pathlib.Path(args.out) / "town.yaml"
    if args.check:
        committed = load_map(yaml_path)
        same = np.array_equal(committed.occupied, town.occupied)
        print("town map matches the generator" if same else "town map differs from the generator")
        return 0 if same else 1
    save_map(town, yaml_path, "town.pgm")
    print(f"wrote {yaml_path} ({town.width}x{town.height} cells, {RES_M} m, "
          f"{100.0 * town.occupied.mean():.1f} % occupied)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
