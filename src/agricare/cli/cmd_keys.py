"""``agricare keys``: Ed25519 signing keys and the trust list (generate, list, rotate, revoke).

Keys live in one directory (``--dir``, default ``~/.config/agricare/keys``; mode 0700, owned by you):
``<id>.key`` (private, 0600), ``<id>.pub`` (public, base64) and ``trust.yaml`` (the public keys a receiver
accepts, with the command kinds each may sign and whether it is revoked). Copy ``trust.yaml`` (never a
``.key``) to the vehicles. The operator app's admin page (keys) uses the same functions
(:func:`agricare.core.security.keys.list_keys`, ``generate_key``, ``rotate_key``, ``revoke_key``).
"""

from __future__ import annotations

import os

from agricare.cli import CliError

COMMAND = "keys"
HELP = "signing keys: generate ID | list | rotate OLD NEW | revoke ID (files 0600, weak keys refused)"
DEFAULT_DIR = "~/.config/agricare/keys"


def add_arguments(parser) -> None:
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"key directory (default {DEFAULT_DIR})")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    g = sub.add_parser("generate", help="new key pair ID; its public key joins trust.yaml")
    g.add_argument("key_id")
    g.add_argument("--kinds", default="", help="comma-separated command kinds it may sign (default: any)")
    g.add_argument("--seed-hex", default=None,
                   help="import 32 bytes of existing key material (hex) instead of generating; weak ones refused")
    sub.add_parser("list", help="keys in trust.yaml and which private keys are here")
    r = sub.add_parser("rotate", help="generate NEW with OLD's kinds, then revoke OLD")
    r.add_argument("old_id")
    r.add_argument("new_id")
    v = sub.add_parser("revoke", help="mark ID revoked in trust.yaml (receivers then refuse it)")
    v.add_argument("key_id")


def run(args) -> int:
    from agricare.core.security.keys import TRUST_FILE, KeyFileError, generate_key, list_keys, revoke_key, rotate_key

    d = os.path.expanduser(args.dir)
    trust_path = os.path.join(d, TRUST_FILE)
    try:
        if args.keys_command == "list":
            keys = list_keys(d)
            if not keys:
                print(f"no keys in {trust_path}")
            for k in keys:
                print(f"{k.key_id:24s} {'REVOKED' if k.revoked else 'active ':7s} {k.fingerprint} "
                      f"kinds={','.join(k.kinds) or 'any'} ({'private key here' if k.private_here else 'public only'})")
            return 0
        if args.keys_command == "revoke":
            revoke_key(d, args.key_id)
            print(f"{args.key_id} revoked in {trust_path}; copy it to the vehicles")
            return 0
        if args.keys_command == "generate":
            seed = None
            if args.seed_hex is not None:
                try:
                    seed = bytes.fromhex(args.seed_hex)
                except ValueError:
                    raise CliError("--seed-hex: not hexadecimal") from None
            info, key_path, pub_path = generate_key(d, args.key_id, [k for k in args.kinds.split(",") if k], seed)
        else:  # rotate
            info, key_path, pub_path = rotate_key(d, args.old_id, args.new_id)
    except (KeyFileError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{info.key_id}: private key {key_path} (mode 0600), public key {pub_path}, fingerprint {info.fingerprint}")
    if args.keys_command == "rotate":
        print(f"{args.old_id} revoked; copy {trust_path} to the vehicles")
    return 0
