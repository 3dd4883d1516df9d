"""agricare serve: the operator web app (guardians, nursery staff, farmers, admins)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

from agricare.cli import CliError

COMMAND = "serve"
HELP = "run the operator web app (--demo: with the simulated care and farm robots and demo users)"


def add_arguments(p):
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--data-dir", default="data", help="where the SQLite database and demo files go")
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL (default sqlite:///<data-dir>/agricare.sqlite)")
    p.add_argument("--robots", default=None,
                   help="robots to show, name:kind comma-separated (kind care|farm); default the demo's")
    p.add_argument("--handover-key", default=None, help="shared hand-over key file (issues guardians' codes)")
    p.add_argument("--command-key", default=None, help="private key that signs the commands to the robots")
    p.add_argument("--key-dir", default=None,
                   help="the site's key directory (agricare keys --dir) shown on the admin page (default with "
                        "--demo: <data-dir>/keys; else none)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the care robots' graph")
    p.add_argument("--farm-domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID of the farm robots (default: the care one; --demo: care + 100, since "
                        "each simulator publishes its own /clock)")
    p.add_argument("--no-robots", action="store_true", help="no ROS 2 link (pages and data only)")
    p.add_argument("--demo", action="store_true", help="start the simulated robots and create demo users")
    p.add_argument("--demo-areas", default="care,farm", help="which simulated areas --demo starts")
    p.add_argument("--real-time-factor", type=float, default=1.0, help="pace of the --demo simulators")
    p.add_argument("--demo-day", choices=["short", "long"], default="long",
                   help="the care day of --demo: short (a trip per shuttle, for tests) or long")
    p.add_argument("--update-rate-hz", type=float, default=5.0, help="live updates per second per page")


def parse_robots(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, kind = item.partition(":")
        if kind not in ("care", "farm") or not name:
            raise CliError(f"--robots: expected name:care or name:farm, got {item!r}")
        out[name] = kind
    return out


def build(args):
    """(app, bridge, robot host processes, demo logins) for the arguments."""
    from agricare.app import db, demo, robots
    from agricare.app.bridge import Bridge, Bridges, default_signer
    from agricare.app.server import AppSettings, create_app
    from agricare.core.missions.handover import load_key, write_key

    data = pathlib.Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    areas = [a for a in args.demo_areas.split(",") if a] if args.demo else []
    bad = set(areas) - {"care", "farm"}
    if bad:
        raise CliError(f"--demo-areas: unknown {sorted(bad)} (care, farm)")
    robot_kinds = parse_robots(args.robots) if args.robots else {}
    if not robot_kinds:
        for a in areas or ["care", "farm"]:
            robot_kinds.update(robots.robots_of(a))
    key_file = args.handover_key
    if args.demo and not key_file:
        key_file = str(data / "demo" / "care" / "audit" / "sim.key")
        if not os.path.exists(key_file):
            write_key(key_file)
    key = load_key(key_file) if key_file else None
    settings = AppSettings(database_url=db.database_url(data, args.database_url),
                           care_world=robots.world_of("care"), farm_world=robots.world_of("farm"),
                           robots=robot_kinds, handover_key=key, demo=args.demo, update_rate_hz=args.update_rate_hz,
                           key_dir=args.key_dir or (str(data / "keys") if args.demo else None))
    care_domain = args.domain_id
    farm_domain = args.farm_domain_id
    if farm_domain is None and args.demo and len(areas) > 1:
        farm_domain = (care_domain if care_domain is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))) + 100
    if farm_domain is None:
        farm_domain = care_domain
    domains = {"care": care_domain, "farm": farm_domain}
    hosts = []
    command_key = args.command_key
    app_trust = None
    if args.demo and not command_key:   # the demo site's command key; the simulated robots trust it
        from agricare.app.bridge import APP_KINDS
        from agricare.bringup.signing import ensure_key

        key_path, app_trust = ensure_key(data / "demo" / "keys", "app", APP_KINDS)
        command_key = str(key_path)
    if args.demo:
        env = dict(os.environ)
        for area in areas:
            cmd = [sys.executable, "-m", "agricare.app.robots", area, "--out", str(data / "demo" / area),
                   "--real-time-factor", str(args.real_time_factor), "--app-children", ",".join(demo.app_children()),
                   "--day", args.demo_day]
            if app_trust is not None:
                cmd += ["--app-trust", str(app_trust)]
            if domains[area] is not None:
                cmd += ["--domain-id", str(domains[area])]
            log = open(data / "demo" / f"robots_{area}.log", "w")
            hosts.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                          preexec_fn=_die_with_parent))
    bridge = None
    if not args.no_robots:
        try:
            signer = default_signer(command_key)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        groups = {}
        for r, k in robot_kinds.items():
            groups.setdefault(domains[k], {})[r] = k
        parts = [Bridge(g, domain_id=d, signer=signer, node_name=f"agricare_app_{i}")
                 for i, (d, g) in enumerate(sorted(groups.items(), key=lambda kv: "farm" in kv[1].values()))]
        bridge = parts[0] if len(parts) == 1 else Bridges(parts)
    app = create_app(settings, bridge)
    if bridge is not None:
        bridge.on_event = app.state.on_event
        bridge.start()
    logins = {}
    if args.demo:
        logins = demo.seed(app.state.auth)
        if logins:
            demo.write_logins(data / "demo_logins.json", logins)
    return app, bridge, hosts, logins


def _die_with_parent() -> None:
    """Linux: the robot host gets SIGTERM when the server process dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_hosts(hosts) -> None:
    for h in hosts:
        if h.poll() is None:
            h.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10.0
    for h in hosts:
        try:
            h.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            h.kill()


def run(args) -> int:
    import uvicorn

    app, bridge, hosts, logins = build(args)

    def shutdown():   # runs in uvicorn's shutdown, before it re-raises a caught SIGINT / SIGTERM
        if bridge is not None:
            bridge.stop()
        stop_hosts(hosts)

    app.state.shutdown_hooks.append(shutdown)
    url = f"http://{args.host}:{args.port}/"
    print(f"agricare serve: {url}  (database {app.state.settings.database_url})", flush=True)
    if args.demo:
        print(f"demo robots: {', '.join(app.state.settings.robots)} (logs under {pathlib.Path(args.data_dir)}/demo/)")
        if logins:
            print("demo logins (also in demo_logins.json, mode 0600):")
            for user, pw in logins.items():
                print(f"  {user:10s} {pw}")
        else:
            print(f"demo logins: see {pathlib.Path(args.data_dir) / 'demo_logins.json'}")
    try:
        # no per-message deflate: compressing every update for every page costs more CPU than the bytes save
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio",
                    ws_per_message_deflate=False)
    finally:
        shutdown()
    return 0
