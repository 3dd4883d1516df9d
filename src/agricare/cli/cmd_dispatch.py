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
        problem = Problem.from_dict(data)
    except ValueError as exc:
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
