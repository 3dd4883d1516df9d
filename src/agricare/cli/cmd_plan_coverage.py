"""``agricare plan-coverage FIELD ...``: plan the coverage of a GeoJSON field, write JSON (and a PNG)."""

from __future__ import annotations

import math
import pathlib
import time

from agricare.cli import CliError

COMMAND = "plan-coverage"
HELP = "plan headland, swaths, route and drivable turns for a field (GeoJSON) and write the plan as JSON"


def add_arguments(parser):
    parser.add_argument("field", metavar="FIELD", help="GeoJSON file with one Polygon (holes allowed)")
    parser.add_argument("--width", type=float, required=True, help="implement working width, m")
    parser.add_argument("--turn-radius", type=float, required=True, help="minimum turning radius, m")
    parser.add_argument("--headland", type=float, required=True, help="headland width, m")
    parser.add_argument("--robot-width", type=float, default=0.0, help="vehicle width, m (default: --width)")
    parser.add_argument("--max-reverse", type=float, default=30.0,
                        help="reversing allowed per field out of dead-end corners for clean-up passes, m (default 30)")
    parser.add_argument("--turn", choices=("dubins", "dubins_cc", "reeds_shepp"), default="dubins")
    parser.add_argument("--route", choices=("boustrophedon", "snake", "spiral", "optimal"), default="optimal")
    parser.add_argument("--angle-deg", type=float, default=None, help="fixed swath angle (default: search)")
    parser.add_argument("--objective", choices=("swaths", "length", "overlap"), default="swaths")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="output plan")
    parser.add_argument("--png", default=None, metavar="OUT.png", help="also draw the plan")


def plot_plan(plan, path_png, worked_ratio: float | None = None) -> None:
    """Draw field, holes, inner field, headland passes, swaths, turns and transits to a PNG (Agg). The title gives
    the inner field's coverage by the swaths and, with ``worked_ratio`` (plan_work_figures), the whole field's: a
    field plan printed 99.40 % worked while its picture said "coverage 1.0000", the inner field alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from agricare.core.planning.coverage import KIND_HEADLAND, KIND_SWATH, KIND_TRANSIT, KIND_TURN
    from agricare.core.planning.headland import polygons_of

    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    f = plan.field
    ax.fill(*f.exterior.xy, color="#e8f3dc", zorder=0)
    ax.plot(*f.exterior.xy, color="k", lw=1.2, label="field")
    for h in f.interiors:
        ax.fill(*h.xy, color="#9ab", zorder=1)
        ax.plot(*h.xy, color="k", lw=1.0)
    for g in polygons_of(plan.inner):
        ax.plot(*g.exterior.xy, color="#6a6", lw=0.8, ls="--")
        for r in g.interiors:
            ax.plot(*r.xy, color="#6a6", lw=0.8, ls="--")
    p = plan.path
    styles = {KIND_SWATH: ("#1f5fbf", 1.0, "swaths"), KIND_TURN: ("#d9480f", 0.9, "turns"),
              KIND_HEADLAND: ("#7b2cbf", 0.9, "headland"), KIND_TRANSIT: ("#888888", 0.9, "transit")}
    if len(p):
        change = np.nonzero(p.kind[1:] != p.kind[:-1])[0] + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(p)]])
        seen = set()
        for a, b in zip(starts, ends):
            k = int(p.kind[a])
            c, lw, lab = styles[k]
            sl = slice(max(0, a - 1), b)
            ax.plot(p.xy[sl, 0], p.xy[sl, 1], color=c, lw=lw, label=None if k in seen else lab)
            seen.add(k)
        rev = p.direction < 0
        if rev.any():
            ax.plot(p.xy[rev, 0], p.xy[rev, 1], ".", color="r", ms=2, label="reverse")
        ax.plot(*p.xy[0], "go", ms=6, label="start")
    L = plan.lengths_m
    ax.set_title(f"{len(plan.swaths)} swaths at {math.degrees(plan.angle_rad):.1f} deg, total {L['total']:.1f} m "
                 f"(swaths {L['swaths']:.0f} + turns {L['turns']:.0f})\n"
                 + (f"whole field worked {100 * worked_ratio:.2f} %, " if worked_ratio is not None else "")
                 + f"inner field covered by swaths {100 * plan.coverage_ratio:.2f} %",
                 fontsize=9)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    fig.tight_layout()
    fig.savefig(path_png)
    plt.close(fig)


MAX_SWATHS = 20000          # a field needing more passes than this is an input mistake (units, CRS)
MAX_EXTENT_M = 50_000.0     # 50 km across is not a field


def check_size(field, width_m: float) -> None:
    """Refuse a field too large to plan before anything is allocated (a metre file read as degrees, a
    wrong CRS): one line naming FIELD and the size."""
    minx, miny, maxx, maxy = field.bounds
    extent = max(maxx - minx, maxy - miny)
    swaths = extent / max(width_m, 1e-9)
    if extent > MAX_EXTENT_M or swaths > MAX_SWATHS:
        raise CliError(f"FIELD: {extent / 1000:.1f} km across ({swaths:.0f} swaths of {width_m:g} m): not a field; "
                       "check its units / properties.crs ('local' for metres)")


def run(args) -> int:
    from agricare.core.planning.coverage import CoverageParams, PlanningError, load_field, plan_coverage, plan_to_json

    try:
        params = CoverageParams(
            width_m=args.width, turn_radius_m=args.turn_radius, headland_width_m=args.headland,
            robot_width_m=args.robot_width, turn_type=args.turn, route=args.route, objective=args.objective,
            angle_deg=float("nan") if args.angle_deg is None else args.angle_deg, max_reverse_m=args.max_reverse)
    except ValueError as exc:
        import re

        flags = {"width_m": "--width", "turn_radius_m": "--turn-radius", "headland_width_m": "--headland",
                 "robot_width_m": "--robot-width", "angle_deg": "--angle-deg", "max_reverse_m": "--max-reverse"}
        # whole names only: "headland_width_m" must not become "headland_--width"
        msg = re.sub(r"\b(" + "|".join(sorted(flags, key=len, reverse=True)) + r")\b",
                     lambda m: flags[m.group(1)], str(exc))
        raise CliError(msg) from None
    try:
        field, frame = load_field(args.field)
        check_size(field, params.width_m)
        t0 = time.perf_counter()
        plan = plan_coverage(field, params, frame)
        plan.plan_time_ms = (time.perf_counter() - t0) * 1000.0
    except PlanningError as exc:
        raise CliError(str(exc)) from None
    out = pathlib.Path(args.json)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(plan_to_json(plan), encoding="utf-8")
        if args.png:
            pathlib.Path(args.png).parent.mkdir(parents=True, exist_ok=True)
            plot_plan(plan, args.png)
    except OSError as exc:
        raise CliError(f"cannot write output: {exc}") from None
    L = plan.lengths_m
    print(f"{len(plan.swaths)} swaths at {math.degrees(plan.angle_rad):.2f} deg; total {L['total']:.1f} m "
          f"(swaths {L['swaths']:.1f}, turns {L['turns']:.1f}); headland {L['headland']:.1f} m; "
          f"coverage {plan.coverage_ratio:.4f}, overlap {plan.overlap_ratio:.4f}; {plan.plan_time_ms:.0f} ms "
          f"-> {out}")
    for w in plan.warnings:
        print(f"warning: {w}")
    return 0
