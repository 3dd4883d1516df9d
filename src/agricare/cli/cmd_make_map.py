"""``agricare make-map SCENARIO.yaml --out DIR``: the scenario world as a map_server occupancy map (PGM + YAML)."""

from __future__ import annotations

import pathlib

from agricare.cli import CliError

COMMAND = "make-map"
HELP = "rasterise a scenario's buildings, walls and fixed obstacles into a map_server map (PGM + YAML)"


def add_arguments(parser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO.yaml")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for <name>.pgm and <name>.yaml")
    parser.add_argument("--name", default=None, help="file name stem (default: the world's name)")
    parser.add_argument("--resolution", type=float, default=0.2, metavar="M", help="cell size in metres (0.2)")
    parser.add_argument("--margin", type=float, default=10.0, metavar="M",
                        help="free space around the world's extent in metres (10)")


def run(args) -> int:
    from agricare.core.planning.grid import save_map
    from agricare.core.sim.occupancy import scenario_occupancy
    from agricare.core.sim.scenarios import ScenarioError, load_scenario

    path = pathlib.Path(args.scenario)
    if not path.is_file():
        raise CliError(f"scenario file {args.scenario} not found")
    try:
        spec = load_scenario(path)
        grid = scenario_occupancy(spec, args.resolution, args.margin)
    except (ScenarioError, ValueError) as exc:
        raise CliError(str(exc)) from None
    name = args.name or spec.name
    try:
        out = save_map(grid, pathlib.Path(args.out) / f"{name}.yaml")
    except OSError as exc:
        raise CliError(f"cannot write the map into {args.out}: {exc}") from None
    print(f"wrote {out} ({grid.width} x {grid.height} cells at {grid.resolution_m} m, origin "
          f"[{grid.origin_xy[0]:.1f}, {grid.origin_xy[1]:.1f}], {100.0 * grid.occupied.mean():.2f} % occupied)")
    return 0
