"""Signed ROS messages: the signed-command scheme of :mod:`agricare.core.security.commands` on typed messages.

A typed command (an action goal, a dispatch plan, a site answer) carries an
``agricare_interfaces/CommandSignature`` field (named ``signature``). The signature covers a canonical
encoding of the whole message: the SHA-256 of the canonical JSON of every field but the signature block
(:func:`canonical_content`: sorted keys, floats exact as ``float.hex``, float32 rounded as it travels) goes
into the payload of an ordinary command envelope ``{"type": <message type>, "sha256": <hex>}``, and the
envelope (kind, target, key id, issue time, expiry, sequence number) is signed with Ed25519 as any other
command. The receiver encodes the message it got the same way, rebuilds the envelope from the block and
checks it with its :class:`~agricare.core.security.commands.CommandVerifier` (trust list, kind, target,
validity, replay). Changing any field of the message, the block or the message type breaks the signature.
(The CDR bytes themselves are not canonical: Fast CDR leaves alignment padding uninitialised.)

Example (the runner, the operator app)::

    goal = CoverField.Goal(field_file="north.geojson")
    sign_message(goal, key, kind="mission_goal", target="tractor")
    client.send_goal_async(goal)

and the mission node::

    cmd = verify_message(goal, self.goal_verifier, time.time())   # raises CommandRejected
"""

from __future__ import annotations

import hashlib
import time

import struct

from agricare.core.security.commands import (DEFAULT_LIFETIME_S, VERSION, CommandVerifier, VerifiedCommand,
                                             canonical_bytes, sign_command)
from agricare.core.security.keys import SigningKey

FIELD = "signature"


def message_type_name(msg) -> str:
    """``pkg/msg/Type`` (``pkg/action/Type_Goal`` for an action goal) of a message instance."""
    mod = type(msg).__module__.split(".")
    return f"{mod[0]}/{mod[1]}/{type(msg).__name__}"


def _element_type(typ: str) -> str:
    """``sequence<T, N>`` / ``T[N]`` / ``sequence<T>`` -> ``T``."""
    if typ.startswith("sequence<"):
        return typ[len("sequence<"):-1].split(",")[0].strip()
    return typ.split("[", 1)[0]


def _canon(value, typ: str):
    """A JSON value that encodes ``value`` (of ROS type ``typ``) exactly: floats as ``float.hex`` (float32
    rounded to float32 first, as it travels), nested messages as dicts of their fields."""
    if hasattr(value, "get_fields_and_field_types"):
        return {name: _canon(getattr(value, name), t) for name, t in value.get_fields_and_field_types().items()}
    if typ.startswith("sequence<") or typ.endswith("]"):
        elem = _element_type(typ)
        if isinstance(value, (bytes, bytearray)):
            return value.hex()
        return [_canon(v, elem) for v in value]
    if typ == "float":
        return struct.unpack("<f", struct.pack("<f", float(value)))[0].hex()
    if typ == "double":
        return float(value).hex()
    if typ in ("octet", "uint8", "char") and isinstance(value, (bytes, bytearray)):
        return value.hex()
    if typ == "boolean":
        return bool(value)
    if isinstance(value, str):
        return value
    return int(value)


def canonical_content(msg, field: str = FIELD) -> bytes:
    """Canonical bytes of ``msg`` without its signature block: canonical JSON (sorted keys) of every field,
    floats exact. Not the CDR bytes: Fast CDR leaves alignment padding uninitialised, so the same message
    serialises to different bytes now and then (about 1 in 20 for a ScoutField goal)."""
    fields = {name: _canon(getattr(msg, name), t) for name, t in msg.get_fields_and_field_types().items()
              if name != field}
    return canonical_bytes({"type": message_type_name(msg), "fields": fields})


def content_digest(msg, field: str = FIELD) -> str:
    """Hex SHA-256 of :func:`canonical_content`."""
    return hashlib.sha256(canonical_content(msg, field)).hexdigest()


def sign_message(msg, key: SigningKey, *, kind: str, target: str = "", lifetime_s: float = DEFAULT_LIFETIME_S,
                 issued_at_s: float | None = None, seq: int | None = None, field: str = FIELD):
    """Fill the signature block of ``msg`` (in place; also returned). Any later change to ``msg`` voids it."""
    payload = {"type": message_type_name(msg), "sha256": content_digest(msg, field)}
    env = sign_command(payload, key, kind=kind, target=target, lifetime_s=lifetime_s, issued_at_s=issued_at_s,
                       seq=seq)
    block = type(getattr(msg, field))()
    block.kind, block.target, block.key_id = env["kind"], env["target"], env["key_id"]
    block.issued_at_s, block.expires_at_s, block.seq = env["issued_at_s"], env["expires_at_s"], env["seq"]
    block.signature = env["sig"]
    setattr(msg, field, block)
    return msg


def envelope_of(msg, field: str = FIELD) -> dict:
    """The command envelope a signed message stands for (what :class:`CommandVerifier` checks); an empty
    block gives an envelope without signature (refused as ``unsigned``)."""
    b = getattr(msg, field)
    env = {"v": VERSION, "kind": b.kind, "target": b.target, "key_id": b.key_id, "issued_at_s": b.issued_at_s,
           "expires_at_s": b.expires_at_s, "seq": int(b.seq),
           "payload": {"type": message_type_name(msg), "sha256": content_digest(msg, field)}}
    if b.key_id or b.signature:
        env["sig"] = b.signature
    else:
        env.pop("key_id")
    return env


def verify_message(msg, verifier: CommandVerifier, now_s: float | None = None, *, consume: bool = True,
                   field: str = FIELD) -> VerifiedCommand:
    """Check the signature block of ``msg`` at wall-clock ``now_s``; raises
    :class:`~agricare.core.security.commands.CommandRejected` (unsigned, unknown_key, bad_signature, expired,
    replayed, wrong_kind, wrong_target, ...)."""
    return verifier.verify(envelope_of(msg, field), time.time() if now_s is None else now_s, consume=consume)


class SignedInput:
    """One signed input of a node (its goals, plans or site answers): trust list, replay store, reports.

    Parameters
    ----------
    report : agricare.ros.guard.SecurityReport
        Where refusals (and acceptances) are counted and reported on ``/diagnostics``.
    what : str
        Name of the input in the reports (``cover_field_goal``, ``dispatch_plan``, ...).
    kind : str
        The command kind it must be signed as (``mission_goal``, ``dispatch_plan``, ``site_answer``).
    trust_file : path
        Trust list (``agricare keys``); keys must be trusted for ``kind``.
    replay_file : path
        The node's sequence-number store (required: a goal must not be replayable after a restart); the
        inputs of one node share it, each in its own section.
    target : str
        This robot's name (commands for another robot are refused).
    """

    def __init__(self, report, what: str, kind: str, trust_file, replay_file, target: str = "",
                 max_lifetime_s: float = 300.0):
        from agricare.core.security.keys import TrustList

        if not replay_file:
            raise ValueError("command_replay_file: must be set (signed commands must not be replayable after a "
                             "restart)")
        self.report, self.what, self.kind = report, what, kind
        self.verifier = CommandVerifier(TrustList.load(trust_file), [kind], target, max_lifetime_s=max_lifetime_s,
                                        state_file=replay_file, state_section=what)

    def check(self, msg, now_s: float | None = None) -> VerifiedCommand | None:
        """The verified command, or None after reporting why ``msg`` was refused."""
        from agricare.core.security.commands import CommandRejected

        try:
            cmd = verify_message(msg, self.verifier, now_s)
        except CommandRejected as exc:
            self.report.refused(self.what, exc.reason, exc.detail)
            return None
        self.report.accepted(self.what)
        return cmd
