"""``agricare keys``: Ed25519 signing keys and the trust list (generate, list, rotate, revoke).

Keys live in one directory (``--dir``, default ``~/.config/agricare/keys``; mode 0700, owned by you):
``<id>.key`` (private, 0600), ``<id>.pub`` (public, base64) and ``trust.yaml`` (the public keys a receiver
accepts, with the command kinds each may sign and whether it is revoked). Copy ``trust.yaml`` (never a
``.key``) to the vehicles.
"""

from __future__ import annotations

import hashlib
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


def _fingerprint(pub_b64: str) -> str:
    return hashlib.sha256(pub_b64.encode("ascii")).hexdigest()[:16]


def run(args) -> int:
    from agricare.core.security.keys import (
        TRUST_FILE,
        KeyFileError,
        SigningKey,
        TrustEntry,
        TrustList,
        check_private_dir,
        public_key_b64,
        write_signing_key,
    )

    d = os.path.expanduser(args.dir)
    trust_path = os.path.join(d, TRUST_FILE)
    try:
        if os.path.isdir(d):
            check_private_dir(d)
        trust = TrustList.load(trust_path) if os.path.exists(trust_path) else TrustList()
        if args.keys_command == "list":
            if not trust.entries:
                print(f"no keys in {trust_path}")
            for e in trust.entries.values():
                pub = public_key_b64(e.public_key)
                private = "private key here" if os.path.exists(os.path.join(d, f"{e.key_id}.key")) else "public only"
                print(f"{e.key_id:24s} {'REVOKED' if e.revoked else 'active ':7s} {_fingerprint(pub)} "
                      f"kinds={','.join(e.kinds) or 'any'} ({private})")
            return 0
        if args.keys_command == "revoke":
            trust.revoke(args.key_id)
            trust.save(trust_path)
            print(f"{args.key_id} revoked in {trust_path}; copy it to the vehicles")
            return 0
        if args.keys_command == "generate":
            new_id, kinds = args.key_id, tuple(k for k in args.kinds.split(",") if k)
            if args.seed_hex is not None:
                try:
                    seed = bytes.fromhex(args.seed_hex)
                except ValueError:
                    raise CliError("--seed-hex: not hexadecimal") from None
                key = SigningKey.from_seed(new_id, seed)
            else:
                key = SigningKey.generate(new_id)
        else:  # rotate
            old = trust.get(args.old_id)
            if old is None:
                raise CliError(f"{args.old_id} is not in {trust_path}")
            new_id, kinds = args.new_id, old.kinds
            key = SigningKey.generate(new_id)
        if trust.get(new_id) is not None:
            raise CliError(f"{new_id} already exists in {trust_path}")
        try:
            key_path, pub_path = write_signing_key(d, key)
        except FileExistsError:
            raise CliError(f"{os.path.join(d, new_id + '.key')} exists; not overwritten") from None
        trust.add(TrustEntry(new_id, key.private.public_key(), kinds))
        if args.keys_command == "rotate":
            trust.revoke(args.old_id)
        trust.save(trust_path)
    except (KeyFileError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{new_id}: private key {key_path} (mode 0600), public key {pub_path}, fingerprint "
          f"{_fingerprint(key.public_b64)}")
    if args.keys_command == "rotate":
        print(f"{args.old_id} revoked; copy {trust_path} to the vehicles")
    return 0
