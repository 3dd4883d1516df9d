"""``agricare dispatch REQUESTS.yaml --json OUT.json``: plan the shuttles' pick-ups and drop-offs."""

from __future__ import annotations

import json
import math
import pathlib
import sys

from agricare.cli import CliError

COMMAND = "dispatch"
HELP = "plan care-shuttle pick-ups/drop-offs with time windows (OR-Tools routing) and write routes as JSON"


def add_arguments(parser) -> None:
    parser.add_argument("requests", metavar="REQUESTS.yaml",
                        help="speed_mps, vehicles (id, depot, seats, available[, range_m]) and requests "
                             "(id, pickup, dropoff, pickup_window, dropoff_by, service_s, max_ride_s)")
    parser.add_argument("--json", metavar="OUT.json", help="write the routes here (default: print to stdout)")
    parser.add_argument("--method", choices=("ortools", "greedy"), default="ortools",
                        help="OR-Tools routing (default) or the greedy insertion baseline")
    parser.add_argument("--time-limit", type=float, default=None, metavar="S",
                        help="OR-Tools search time limit in s (default: 0.2 s + 85 ms per request, max 9 s)")


MAX_TIME_S = 1.0e8      # about 3 years: a time beyond this is an input mistake (and overflows the solver)
MAX_COORD_M = 1.0e7     # metres from the map origin
MAX_ITEMS = 10_000      # vehicles or requests in one file


def _number(value, where, lo, hi, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if allow_inf and value == float("inf"):
        return
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{where}: must be within {lo:g}..{hi:g}, got {value!r}")


def _pair(value, where, lo, hi):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{where}: expected [a, b], got {value!r}")
    for k, v in enumerate(value):
        _number(v, f"{where}[{k}]", lo, hi)


def check_input(data) -> None:
    """Types and ranges of REQUESTS.yaml, each problem named by its field path (``vehicles[0].seats``),
    before the solver sees a value it would overflow on."""
    if not isinstance(data, dict):
        return  # Problem.from_dict names the top-level problem
    if "speed_mps" in data:
        _number(data["speed_mps"], "speed_mps", 1e-3, 100.0)
    for key in ("vehicles", "requests"):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise ValueError(f"{key}: expected a list, got {type(items).__name__}")
        if len(items) > MAX_ITEMS:
            raise ValueError(f"{key}: {len(items)} entries (at most {MAX_ITEMS})")
    for i, v in enumerate(data.get("vehicles") or []):
        if not isinstance(v, dict):
            continue
        w = f"vehicles[{i}]"
        seats = v.get("seats", 1)
        if isinstance(seats, bool) or not isinstance(seats, int) or not 0 < seats <= 100:
            raise ValueError(f"{w}.seats: expected a whole number of seats 1..100, got {v['seats']!r}")
        if "depot" in v:
            _pair(v["depot"], f"{w}.depot", -MAX_COORD_M, MAX_COORD_M)
        if "available" in v:
            _pair(v["available"], f"{w}.available", -MAX_TIME_S, MAX_TIME_S)
        if "range_m" in v:
            _number(v["range_m"], f"{w}.range_m", 0.0, MAX_COORD_M * 10, allow_inf=True)
    for i, r in enumerate(data.get("requests") or []):
        if not isinstance(r, dict):
            continue
        w = f"requests[{i}]"
        for k in ("pickup", "dropoff"):
            if k in r:
                _pair(r[k], f"{w}.{k}", -MAX_COORD_M, MAX_COORD_M)
        if "pickup_window" in r:
            _pair(r["pickup_window"], f"{w}.pickup_window", -MAX_TIME_S, MAX_TIME_S)
        if "dropoff_by" in r:
            _number(r["dropoff_by"], f"{w}.dropoff_by", -MAX_TIME_S, MAX_TIME_S)
        if "service_s" in r:
            _number(r["service_s"], f"{w}.service_s", 0.0, MAX_TIME_S)
        if "max_ride_s" in r:
            _number(r["max_ride_s"], f"{w}.max_ride_s", 0.0, MAX_TIME_S, allow_inf=True)
        if "passengers" in r and (isinstance(r["passengers"], bool) or not isinstance(r["passengers"], int)
                                  or not 0 < r["passengers"] <= 100):
            raise ValueError(f"{w}.passengers: expected a whole number 1..100, got {r['passengers']!r}")


def run(args) -> int:
    import yaml

    from agricare.core.planning.dispatch import Problem, check_solution, solve

    path = pathlib.Path(args.requests)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    try:
        check_input(data)
        problem = Problem.from_dict(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CliError(f"{path}: {exc}") from None
    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise CliError(f"--time-limit: must be > 0, got {args.time_limit}")
    solution = solve(problem, method=args.method, time_limit_s=args.time_limit)
    problems = check_solution(problem, solution)
    text = json.dumps(solution.to_json(), indent=2)
    if args.json:
        try:
            pathlib.Path(args.json).write_text(text + "\n")
        except OSError as exc:
            raise CliError(f"cannot write {args.json}: {exc.strerror}") from None
    else:
        print(text)
    out = sys.stderr if not args.json else sys.stdout
    served = len(problem.requests) - len(solution.unserved)
    print(f"{served}/{len(problem.requests)} requests served, {solution.distance_m:.1f} m, "
          f"{solution.solve_ms:.0f} ms ({solution.method})", file=out)
    for u in solution.unserved:
        print(f"unserved {u.request_id}: {u.reason}", file=out)
    if problems:
        for p in problems:
            print(f"agricare dispatch: internal check failed: {p}", file=sys.stderr)
        return 1
    return 0
