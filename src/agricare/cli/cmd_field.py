"""``agricare field import|show|plan|prescription|export``: a field from farm software to a plan and back.

- ``import FILE --out FIELD.geojson``: read a field (GeoJSON, KML/KMZ, Shapefile or .zip, ISO-XML TaskData)
  and write it as agricare's GeoJSON (WGS84 + datum, or local metres);
- ``show FILE --png OUT.png``: draw boundary, obstacles and AB lines (and a layer grid with ``--layer``);
- ``plan FILE --width --turn-radius --headland --json OUT.json``: plan the coverage (obstacles as holes,
  ``--ab`` takes the swath direction from the field's first AB line);
- ``prescription FILE --samples SOIL.csv --rates R1,R2,.. --out DIR``: soil samples -> interpolated grid ->
  zones -> prescription map (GeoJSON, Shapefile, ISO-XML grid task);
- ``export FILE --to FORMAT --out PATH``: write the field as geojson, kml, kmz, shp or isoxml.
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

from agricare.cli import CliError

COMMAND = "field"
HELP = "fields from farm software (GeoJSON, KML/KMZ, Shapefile, ISO-XML): import, show, plan, prescription, export"


def _datum(text):
    if not text:
        return None
    from agricare.core.geodesy import LocalTangentPlane

    try:
        lat, lon = (float(v) for v in text.split(","))
        return LocalTangentPlane(lat, lon)
    except ValueError as exc:
        raise CliError(f"--datum must be LAT,LON in degrees ({exc})") from None


def add_arguments(parser):
    sub = parser.add_subparsers(dest="field_command", metavar="SUBCOMMAND", required=True)

    def common(p):
        p.add_argument("field", metavar="FILE", help="field file: .geojson .kml .kmz .shp .zip or TASKDATA(.XML)")
        p.add_argument("--datum", default="", metavar="LAT,LON",
                       help="WGS84 of the map origin (default: centre of a geographic field; none for local metres)")
        p.add_argument("--name", default="", metavar="PARTFIELD",
                       help="ISO-XML TaskData: the partfield (PFD designator) to read (default: the first)")

    p = sub.add_parser("import", help="read a field and write it as agricare GeoJSON")
    common(p)
    p.add_argument("--out", required=True, metavar="FIELD.geojson")
    p = sub.add_parser("show", help="draw the field to a PNG")
    common(p)
    p.add_argument("--png", required=True, metavar="OUT.png")
    p.add_argument("--layer", default="", metavar="GRID.csv", help="also draw a layer grid (x_m,y_m,value CSV)")
    p = sub.add_parser("plan", help="plan the coverage of the field")
    common(p)
    p.add_argument("--width", type=float, required=True, help="implement working width, m")
    p.add_argument("--turn-radius", type=float, required=True, help="minimum turning radius, m")
    p.add_argument("--headland", type=float, required=True, help="headland width, m")
    p.add_argument("--robot-width", type=float, default=0.0, help="vehicle width, m (default: --width)")
    p.add_argument("--turn", choices=("dubins", "dubins_cc", "reeds_shepp"), default="dubins")
    p.add_argument("--max-reverse", type=float, default=30.0,
                   help="reversing allowed per field out of dead-end corners for clean-up passes, m (default 30)")
    p.add_argument("--ab", action="store_true", help="swaths parallel to the field's first AB line")
    p.add_argument("--json", required=True, metavar="OUT.json")
    p.add_argument("--png", default=None, metavar="OUT.png")
    p = sub.add_parser("prescription", help="soil samples -> zones -> prescription map")
    common(p)
    p.add_argument("--samples", required=True, metavar="SOIL.csv",
                   help="CSV with x_m,y_m or lon,lat and a value column (or GeoJSON points)")
    p.add_argument("--value", default="value", help="sample column / property to interpolate")
    p.add_argument("--rates", required=True, metavar="R1,R2,..",
                   help="rate per zone, kg/ha, from the lowest to the highest sample values")
    p.add_argument("--cell", type=float, default=5.0, help="grid cell, m")
    p.add_argument("--out", required=True, metavar="DIR")
    p = sub.add_parser("export", help="write the field in a farm software format")
    common(p)
    p.add_argument("--to", required=True, choices=("geojson", "kml", "kmz", "shp", "isoxml"))
    p.add_argument("--out", required=True, metavar="PATH", help="file (folder for isoxml)")


def _load(args):
    from agricare.core.farmdata import FarmDataError, load_field_data
    from agricare.core.farmdata.field import detect_format
    from agricare.core.farmdata.isoxml import partfield_names

    try:
        fd = load_field_data(args.field, datum=_datum(args.datum), name=args.name)
        if detect_format(args.field) == "isoxml" and not args.name:
            names = partfield_names(args.field)
            if len(names) > 1:   # a farm's TaskData holds all its fields: say which one this is
                print(f"{args.field}: {len(names)} partfields ({', '.join(map(repr, names))}); reading the first, "
                      f"{names[0]!r} (--name picks another)", file=sys.stderr)
        return fd
    except FarmDataError as exc:
        raise CliError(str(exc)) from None


def _summary(fd) -> str:
    n = len(fd.boundary.exterior.coords) - 1
    return (f"{fd.name}: {fd.area_m2 / 1e4:.3f} ha, {n} vertices, {len(fd.boundary.interiors) + len(fd.obstacles)} "
            f"obstacles/holes, {len(fd.guidance)} AB lines, "
            + (f"datum {fd.geo.lat0_deg:.6f},{fd.geo.lon0_deg:.6f}" if fd.geo else "local metres"))


def plot_field(fd, path_png, grid=None, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 7), dpi=110)
    if grid is not None:
        im = ax.imshow(grid.values, origin="lower", extent=grid.extent, cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.7, label=grid.name)
    b = fd.boundary
    ax.plot(*b.exterior.xy, "k-", lw=1.2, label="boundary")
    for h in b.interiors:
        ax.plot(*h.xy, "k-", lw=1.0)
    for i, o in enumerate(fd.obstacles):
        ax.fill(*o.exterior.xy, color="#9ab", label="obstacle" if i == 0 else None)
    for i, g in enumerate(fd.guidance):
        g = np.asarray(g)
        ax.plot(g[:, 0], g[:, 1], "r--", lw=1.2, label="AB line" if i == 0 else None)
        ax.text(*g[0], "A", color="r")
        ax.text(*g[1], "B", color="r")
    ax.set_aspect("equal")
    ax.set_title(title or _summary(fd), fontsize=8)
    ax.set_xlabel("x east [m]")
    ax.set_ylabel("y north [m]")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    pathlib.Path(path_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path_png)
    plt.close(fig)


def _plan(args, fd):
    import numpy as np

    from agricare.core.planning.coverage import (CoverageParams, FieldFrame, PlanningError, plan_coverage,
                                                 plan_to_json)

    from agricare.cli.cmd_plan_coverage import plot_plan

    ab = tuple(float(v) for v in fd.guidance[0].ravel()) if args.ab and fd.guidance else (0.0, 0.0, 0.0, 0.0)
    if args.ab and not fd.guidance:
        raise CliError(f"--ab: field {fd.name!r} has no AB line")
    try:
        params = CoverageParams(width_m=args.width, turn_radius_m=args.turn_radius, headland_width_m=args.headland,
                                robot_width_m=args.robot_width, turn_type=args.turn, ab_line_m=ab,
                                max_reverse_m=args.max_reverse)
    except ValueError as exc:
        raise CliError(str(exc).replace("max_reverse_m", "--max-reverse").replace("headland_width_m", "--headland")
                       .replace("width_m", "--width").replace("turn_radius_m", "--turn-radius")) from None
    def to_lonlat(x, y):
        ll = fd.to_wgs84(np.column_stack([x, y]))
        return ll[:, 0], ll[:, 1]

    frame = FieldFrame("EPSG:4326", to_lonlat) if fd.geo is not None else FieldFrame()
    # a large field takes a while (a 48 ha field with 429 swaths: about 15 s to plan, 30 s in all): say what is planned
    print(f"planning {_summary(fd)}; {args.width:g} m width, {args.turn_radius:g} m turning radius, "
          f"{args.headland:g} m headland, up to {args.max_reverse:g} m reverse ...", file=sys.stderr, flush=True)
    try:
        t0 = time.perf_counter()
        plan = plan_coverage(fd.work_area(), params, frame)
        plan.plan_time_ms = (time.perf_counter() - t0) * 1000.0
    except PlanningError as exc:
        raise CliError(str(exc)) from None
    out = pathlib.Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(plan_to_json(plan), encoding="utf-8")
    from agricare.core.planning.coverage import plan_work_figures

    fig = plan_work_figures(plan)
    if args.png:
        pathlib.Path(args.png).parent.mkdir(parents=True, exist_ok=True)
        plot_plan(plan, args.png, fig["worked_ratio"])
    print(f"{len(plan.swaths)} swaths at {math.degrees(plan.angle_rad):.2f} deg; field worked by the plan "
          f"{100 * fig['worked_ratio']:.2f} %, reverse {fig['reverse_m']:.1f} m, headland rings "
          f"{fig['rings_worked']}/{fig['rings_total']}; {plan.plan_time_ms:.0f} ms -> {out}")
    for w in plan.warnings:
        print(f"warning: {w}")
    if fig["reverse_m"] > args.max_reverse + 0.05:
        # --max-reverse bounds the clean-up's reversing; turns between swaths reverse where the headland is too
        # narrow to turn forwards (a 3 m headland with a 4 m turning radius: 101 m on a 100 x 30 m field)
        turns = fig["reverse_turns_m"]
        print(f"warning: the plan reverses {fig['reverse_m']:.1f} m, more than --max-reverse {args.max_reverse:g} m"
              + (f"; {turns:.1f} m of it in the turns at the swath ends: the {args.headland:g} m headland is too "
                 "narrow to turn forwards, widen --headland" if turns > 0.05 else ""))
    return 0


def _prescription(args, fd):
    import numpy as np

    from agricare.core.farmdata import FarmDataError
    from agricare.core.farmdata.layers import idw_grid, prescription_from_zones, read_samples, write_prescription, \
        zones_from_grid

    try:
        rates = [float(v) for v in args.rates.split(",")]
    except ValueError:
        raise CliError(f"--rates must be numbers separated by commas, got {args.rates!r}") from None
    if not rates or not all(math.isfinite(r) and r >= 0 for r in rates):
        raise CliError("--rates must be finite and >= 0")
    if not (math.isfinite(args.cell) and args.cell > 0):
        raise CliError("--cell must be > 0")
    try:
        xy, vals = read_samples(args.samples, fd, args.value)
        grid = idw_grid(xy, vals, fd.work_area(), args.cell, name=args.value)
        zones = zones_from_grid(grid, len(rates))
        rx = prescription_from_zones(zones, rates)
        files = write_prescription(args.out, rx, fd)
    except FarmDataError as exc:
        raise CliError(str(exc)) from None
    plot_field(fd, pathlib.Path(args.out) / "prescription.png", rx,
               title=f"prescription {fd.name}: {len(rates)} zones, rates {rates} kg/ha")
    ok = np.isfinite(rx.values)
    print(f"{len(vals)} samples -> {ok.sum()} cells of {args.cell:g} m, {len(rates)} zones, mean rate "
          f"{np.nanmean(rx.values):.1f} kg/ha -> {', '.join(str(f) for f in files)}")
    return 0


def run(args) -> int:
    from agricare.core.farmdata import FarmDataError, save_field_data

    fd = _load(args)
    cmd = args.field_command
    try:
        if cmd == "import":
            files = save_field_data(fd, args.out, "geojson")
            print(f"{_summary(fd)} -> {files[0]}")
        elif cmd == "export":
            files = save_field_data(fd, args.out, args.to)
            print(f"{_summary(fd)} -> {', '.join(str(f) for f in files)}")
        elif cmd == "show":
            grid = None
            if args.layer:
                from agricare.core.farmdata.layers import read_grid_csv

                grid = read_grid_csv(args.layer)
            plot_field(fd, args.png, grid)
            print(f"{_summary(fd)} -> {args.png}")
        elif cmd == "plan":
            return _plan(args, fd)
        elif cmd == "prescription":
            return _prescription(args, fd)
    except FarmDataError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write output: {exc}") from None
    return 0
