"""``agricare audit verify LOG [--key PUB] [--head SHA256]``: check a care audit log for edits, deletions, gaps
and (with ``--key``) records not signed by the vehicle's key."""

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
    v.add_argument("--key", metavar="PUB",
                   help="the vehicle's public key (a .pub file of 'agricare keys', or its base64 text): every "
                        "record must be signed by it")


def run(args) -> int:
    from agricare.core.missions.audit import verify_log

    if args.audit_command != "verify":
        raise CliError(f"unknown action {args.audit_command!r}")
    public_key = None
    if args.key:
        import os

        from agricare.core.security.keys import KeyFileError, public_key_from_b64

        try:
            text = open(args.key).read() if os.path.exists(args.key) else args.key
            public_key = public_key_from_b64(text.strip())
        except (OSError, KeyFileError) as exc:
            raise CliError(f"--key: {exc}") from None
    try:
        res = verify_log(args.log, expect_head=args.head, public_key=public_key)
    except OSError as exc:
        raise CliError(f"cannot read {args.log}: {exc.strerror}") from None
    if res.ok:
        signed = ", every record signed by the key" if public_key is not None else " (signatures not checked)"
        print(f"{args.log}: OK, {res.n_records} events{signed}, head {res.head}")
        return 0
    print(f"{args.log}:{res.bad_line}: {res.reason}")
    if res.line_text:
        print(f"  {res.line_text}")
    print(f"{res.n_records} events verified before line {res.bad_line}")
    return 1
