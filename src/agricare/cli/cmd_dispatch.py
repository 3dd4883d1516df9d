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
        if "max_duration_s" in v:
            _number(v["max_duration_s"], f"{w}.max_duration_s", 0.0, MAX_TIME_S, allow_inf=True)
    for i, r in enumerate(data.get("requests") or []):
        if not isinstance(r, dict):
            continue
        w = f"requests[{i}]"
        for k in ("pickup", "dropoff"):
            if k in r:
                _pair(r[k], f"{w}.{k}", -MAX_COORD_M, MAX_COORD_M)
        if "pickup_window" in r:
            _pair(r["pickup_window"], f"{w}.pickup_window", -MAX_TIME_S, MAX_TIME_S)
        if "dropoff_window" in r:
            _pair(r["dropoff_window"], f"{w}.dropoff_window", -MAX_TIME_S, MAX_TIME_S)
        if "dropoff_by" in r:
            _number(r["dropoff_by"], f"{w}.dropoff_by", -MAX_TIME_S, MAX_TIME_S)
        for k in ("service_s", "pickup_service_s", "dropoff_service_s"):
            if k in r:
                _number(r[k], f"{w}.{k}", 0.0, MAX_TIME_S)
        if "max_ride_s" in r:
            _number(r["max_ride_s"], f"{w}.max_ride_s", 0.0, MAX_TIME_S, allow_inf=True)
        if "passengers" in r and (isinstance(r["passengers"], bool) or not isinstance(r["passengers"], int)
                                  or not 0 < r["passengers"] <= 100):
            raise ValueError(f"{w}.passengers: expected a whole number 1..100, got {r['passengers']!r}")


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
        check_input(data)
        return Problem.from_dict(data), None
    except (ValueError, TypeError, OverflowError) as exc:
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
