"""``agricare dispatch REQUESTS.yaml --json OUT.json``: plan the shuttles' pick-ups and drop-offs.

``--format cordeau FILE`` reads the standard dial-a-ride benchmark format instead (first line ``K 2n T Q L``,
then ``id x y service load e l`` per node; depot 0, pick-ups 1..n, drop-off of request i is n+i; Euclidean
distances, travel time = distance) and prints the plan in that numbering with its total distance.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys

from agricare.cli import CliError

COMMAND = "dispatch"
HELP = ("plan care-shuttle pick-ups/drop-offs with time windows (adaptive large neighbourhood search, "
        "OR-Tools or greedy) and write routes as JSON")


def add_arguments(parser) -> None:
    parser.add_argument("requests", metavar="FILE",
                        help="REQUESTS.yaml: speed_mps, vehicles (id, depot, seats, available[, range_m, "
                             "max_duration_s]) and requests (id, pickup, dropoff, pickup_window, dropoff_window "
                             "or dropoff_by, service_s / pickup_service_s / dropoff_service_s, max_ride_s, "
                             "passengers); or a Cordeau DARP file with --format cordeau")
    parser.add_argument("--format", choices=("yaml", "cordeau"), default="yaml",
                        help="input format (default yaml)")
    parser.add_argument("--json", metavar="OUT.json", help="write the routes here (default: print to stdout)")
    parser.add_argument("--method", choices=("alns", "ortools", "greedy"), default="alns",
                        help="adaptive large neighbourhood search (default), OR-Tools routing or the greedy "
                             "insertion baseline")
    parser.add_argument("--seed", type=int, default=0, help="ALNS random seed (default 0)")
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="ALNS iteration budget (default 1e7 / n^2, clipped to 3000..20000); the plan is "
                             "the same for the same seed and budget")
    parser.add_argument("--time-limit", type=float, default=None, metavar="S",
                        help="search time limit in s (ALNS: a cap on CPU time, default 10 s; OR-Tools: 0.2 s + "
                             "85 ms per request, max 9 s)")
    parser.add_argument("--serve-all", action="store_true",
                        help="fail (exit 1) when a request is left unserved, naming it and the reason")


def _load(args):
    from agricare.core.planning.dispatch import Problem, problem_from_cordeau

    path = pathlib.Path(args.requests)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    if args.format == "cordeau":
        from agricare.core.planning.darp import parse_cordeau

        try:
            c = parse_cordeau(text, path.stem)
            return problem_from_cordeau(c), c
        except ValueError as exc:
            raise CliError(f"{path}: {exc}") from None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    try:
        return Problem.from_dict(data), None
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None


def run(args) -> int:
    from agricare.core.planning.dispatch import check_solution, solve

    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise CliError(f"--time-limit: must be > 0, got {args.time_limit}")
    if args.iterations is not None and args.iterations < 0:
        raise CliError(f"--iterations: must be >= 0, got {args.iterations}")
    problem, cordeau = _load(args)
    solution = solve(problem, method=args.method, time_limit_s=args.time_limit, seed=args.seed,
                     iterations=args.iterations)
    problems = check_solution(problem, solution)
    text = json.dumps(solution.to_json(), indent=2)
    if args.json:
        try:
            pathlib.Path(args.json).write_text(text + "\n")
        except OSError as exc:
            raise CliError(f"cannot write {args.json}: {exc.strerror}") from None
    elif cordeau is None:
        print(text)
    out = sys.stderr if (not args.json and cordeau is None) else sys.stdout
    if cordeau is not None:
        n = cordeau.n
        for vid, stops in solution.routes.items():
            ids = [int(s.request_id) + (n if s.action == "dropoff" else 0) for s in stops]
            dur = solution.duration_s.get(vid, 0.0)
            print(f"vehicle {vid}: 0 {' '.join(map(str, ids))} {2 * n + 1}  duration {dur:.2f}", file=out)
        print(f"total distance {solution.distance_m:.2f}", file=out)
    served = len(problem.requests) - len(solution.unserved)
    print(f"{served}/{len(problem.requests)} requests served, {solution.distance_m:.2f} "
          f"{'' if cordeau is not None else 'm, '}{solution.solve_ms:.0f} ms ({solution.method})", file=out)
    for u in solution.unserved:
        print(f"unserved {u.request_id}: {u.reason}", file=out)
    if problems:
        for p in problems:
            print(f"agricare dispatch: internal check failed: {p}", file=sys.stderr)
        return 1
    if args.serve_all and solution.unserved:
        for u in solution.unserved:
            print(f"agricare dispatch: request {u.request_id} not served: {u.reason}", file=sys.stderr)
        return 1
    return 0
