"""``agricare audit verify LOG``: check a hash-chained care audit log for edits, deletions and gaps."""

from __future__ import annotations

from agricare.cli import CliError

COMMAND = "audit"
HELP = "verify a care audit log (hash chain, sequence numbers); prints the first bad line"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="verify LOG; exit 0 if intact, 1 at the first bad line")
    v.add_argument("log", metavar="LOG")
    v.add_argument("--head", metavar="SHA256",
                   help="expected hash of the last line (detects lines cut from the end)")


def run(args) -> int:
    from agricare.core.missions.audit import verify_log

    if args.audit_command != "verify":
        raise CliError(f"unknown action {args.audit_command!r}")
    try:
        res = verify_log(args.log, expect_head=args.head)
    except OSError as exc:
        raise CliError(f"cannot read {args.log}: {exc.strerror}") from None
    if res.ok:
        print(f"{args.log}: OK, {res.n_records} events, head {res.head}")
        return 0
    print(f"{args.log}:{res.bad_line}: {res.reason}")
    if res.line_text:
        print(f"  {res.line_text}")
    print(f"{res.n_records} events verified before line {res.bad_line}")
    return 1
