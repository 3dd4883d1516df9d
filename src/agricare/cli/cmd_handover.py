"""``agricare handover``: create a key, issue and check one-time hand-over codes (offline)."""

from __future__ import annotations

from agricare.cli import CliError

COMMAND = "handover"
HELP = "hand-over codes: new-key KEY | issue KEY CHILD GUARDIAN TRIP EXPIRY_S | verify KEY CODE CHILD GUARDIAN TRIP"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="handover_command", metavar="ACTION", required=True)
    k = sub.add_parser("new-key", help="create a new key file (mode 0600; never overwrites)")
    k.add_argument("key")
    i = sub.add_parser("issue", help="issue a code for CHILD -> GUARDIAN on TRIP, valid until EXPIRY_S")
    for name in ("key", "child", "guardian", "trip"):
        i.add_argument(name)
    i.add_argument("expiry_s", type=float, help="last valid second (same time base as the shuttle clock)")
    v = sub.add_parser("verify", help="check a code (does not remember it: the shuttle does)")
    for name in ("key", "code", "child", "guardian", "trip"):
        v.add_argument(name)
    v.add_argument("--now", type=float, default=None, help="time to check the expiry against (default: now)")


def run(args) -> int:
    import math
    import time

    from agricare.core.missions.handover import HandoverVerifier, KeyFileError, issue_code, load_key, write_key

    try:
        if args.handover_command == "new-key":
            try:
                write_key(args.key)
            except FileExistsError:
                raise CliError(f"{args.key} exists; not overwritten") from None
            print(f"new key written to {args.key} (mode 0600)")
            return 0
        key = load_key(args.key)
    except (KeyFileError, OSError) as exc:
        raise CliError(str(exc)) from None
    if args.handover_command == "issue":
        try:
            print(issue_code(key, args.child, args.guardian, args.trip, args.expiry_s))
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return 0
    now = time.time() if args.now is None else args.now
    if not math.isfinite(now):
        raise CliError(f"--now: must be a finite time, got {args.now!r}")
    verdict = HandoverVerifier(key).verify(args.code, args.child, args.guardian, args.trip, now, consume=False)
    print(("accepted" if verdict.accepted else "refused") + f": {verdict}")
    return 0 if verdict.accepted else 1
