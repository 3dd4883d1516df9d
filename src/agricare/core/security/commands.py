"""Signed command envelopes: everything that changes what a robot does carries an Ed25519 signature.

An envelope is a JSON object (``dict``; ``envelope_to_text`` gives the wire text)::

    {"v": 1, "kind": "dispatch_plan", "target": "shuttle_1", "key_id": "fleet-2026",
     "issued_at_s": 1796000000.0, "expires_at_s": 1796000030.0, "seq": 1796000000000001,
     "payload": {...}, "sig": "<base64 Ed25519 signature>"}

The signature covers ``DOMAIN`` + the canonical JSON (sorted keys, no spaces, no NaN) of every field but
``sig``: the payload, the kind, the target and the validity cannot be changed without the signer's key.

The receiver (:class:`CommandVerifier`) refuses, with a reason code:

``unsigned`` (no signature fields), ``malformed`` (not an envelope, bad types, non-finite times),
``unknown_key``, ``revoked_key``, ``kind_not_allowed`` (key not trusted for this kind), ``bad_signature``,
``wrong_kind``, ``wrong_target``, ``not_yet_valid`` (issued in the future beyond ``max_clock_skew_s``),
``expired``, ``lifetime_too_long`` (validity longer than ``max_lifetime_s``), ``replayed`` (sequence
number already used or too old for the replay window; the highest number per key can be persisted so a
restart does not reopen the window).

Times are seconds of the wall clock (UNIX time) of signer and receiver, never a ROS ``/clock`` that a peer
can publish. Sequence numbers must grow per key: the default counter starts at the current time in
microseconds and counts up, so a restarted signer keeps growing.

Example (the operator app)::

    from agricare.core.security.commands import sign_command
    from agricare.core.security.keys import load_signing_key
    key = load_signing_key("/etc/agricare/keys/fleet.key")
    env = sign_command({"revision": 3, "routes": [...]}, key, kind="dispatch_plan", target="shuttle_1")
    publisher.publish(String(data=envelope_to_text(env)))
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from agricare.core.security.keys import SigningKey, TrustList

VERSION = 1
DOMAIN = b"agricare-command-v1\n"
#: command kinds used by the product (a receiver accepts only the kinds it is built for)
KINDS = ("dispatch_plan", "geofence", "site_answer", "protective_stop", "mission_goal", "handover_verdict",
         "operator")
DEFAULT_LIFETIME_S = 30.0
_FIELDS = ("v", "kind", "target", "key_id", "issued_at_s", "expires_at_s", "seq", "payload")


class CommandRejected(Exception):
    """A command envelope was refused. ``reason`` is a short code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def canonical_bytes(obj) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8, NaN/inf refused)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def signed_bytes(envelope: Mapping) -> bytes:
    """The bytes a signature covers: domain tag + canonical JSON of every field except ``sig``."""
    return DOMAIN + canonical_bytes({k: envelope[k] for k in _FIELDS})


class _SeqCounter:
    """Strictly increasing sequence numbers, seeded from the wall clock (microseconds)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


_DEFAULT_SEQ = _SeqCounter()


def sign_command(payload: dict, key: SigningKey, *, kind: str, target: str = "", issued_at_s: float | None = None,
                 lifetime_s: float = DEFAULT_LIFETIME_S, seq: int | None = None) -> dict:
    """Sign ``payload`` (a JSON-able dict) as a command of ``kind`` for ``target`` (robot name, "" = any).

    Parameters
    ----------
    key : SigningKey
        From :func:`agricare.core.security.keys.load_signing_key` (or ``SigningKey.generate`` in tests).
    issued_at_s : float, optional
        Wall-clock issue time (s); default now.
    lifetime_s : float
        Validity after ``issued_at_s`` (s); receivers refuse lifetimes above their ``max_lifetime_s``.
    seq : int, optional
        Sequence number, strictly growing per key; default a process-wide counter seeded from the clock.

    Returns
    -------
    dict
        The envelope (send it as ``envelope_to_text(env)``).
    """
    if not isinstance(payload, dict):
        raise TypeError(f"payload: need a dict, got {type(payload).__name__}")
    if not isinstance(kind, str) or not kind:
        raise ValueError("kind: must be a non-empty string")
    t = time.time() if issued_at_s is None else float(issued_at_s)
    if not (math.isfinite(t) and math.isfinite(lifetime_s) and lifetime_s > 0):
        raise ValueError(f"issued_at_s / lifetime_s must be finite and lifetime > 0, got {t}, {lifetime_s}")
    n = _DEFAULT_SEQ.next() if seq is None else int(seq)
    if n < 0:
        raise ValueError(f"seq: must be >= 0, got {n}")
    env = {"v": VERSION, "kind": kind, "target": str(target), "key_id": key.key_id, "issued_at_s": t,
           "expires_at_s": t + float(lifetime_s), "seq": n, "payload": payload}
    env["sig"] = base64.b64encode(key.sign(signed_bytes(env))).decode("ascii")
    return env


def envelope_to_text(envelope: Mapping) -> str:
    return canonical_bytes(dict(envelope)).decode()


def parse_envelope(data) -> dict:
    """An envelope from a dict, JSON text or bytes; raises :class:`CommandRejected` (``malformed`` /
    ``unsigned``)."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandRejected("malformed", "not UTF-8") from None
    if isinstance(data, str):
        if len(data) > 4_000_000:
            raise CommandRejected("malformed", f"{len(data)} characters is too long")
        try:
            data = json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise CommandRejected("malformed", f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise CommandRejected("unsigned", f"a {type(data).__name__}, not a signed envelope")
    if "sig" not in data or "key_id" not in data:
        raise CommandRejected("unsigned", "no signature")
    for name, types in (("v", int), ("kind", str), ("target", str), ("key_id", str), ("seq", int),
                        ("payload", dict), ("sig", str), ("issued_at_s", (int, float)),
                        ("expires_at_s", (int, float))):
        val = data.get(name)
        if not isinstance(val, types) or isinstance(val, bool):
            raise CommandRejected("malformed", f"field {name!r} missing or of the wrong type")
    if data["v"] != VERSION:
        raise CommandRejected("malformed", f"envelope version {data['v']}, expected {VERSION}")
    if not (math.isfinite(data["issued_at_s"]) and math.isfinite(data["expires_at_s"])):
        raise CommandRejected("malformed", "non-finite time")
    return data


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


@dataclass(frozen=True)
class VerifiedCommand:
    kind: str
    target: str
    key_id: str
    seq: int
    issued_at_s: float
    expires_at_s: float
    payload: dict


class CommandVerifier:
    """Checks envelopes for one receiver against its trust list, with replay protection.

    Parameters
    ----------
    trust : TrustList
    kinds : iterable of str
        Kinds this receiver accepts.
    target : str
        This robot's name; envelopes for another target are refused ("" in the envelope = any robot).
    max_lifetime_s, max_clock_skew_s : float
    replay_window : int
        How many sequence numbers below the highest accepted one may still arrive (out of order), once.
    state_file : path, optional
        JSON file keeping the highest accepted sequence number per key across restarts (written atomically).
    state_section : str
        Several verifiers of one node may share a state file, each in its own section ("" = the top level).
    """

    def __init__(self, trust: TrustList, kinds: Iterable[str], target: str = "", *, max_lifetime_s: float = 300.0,
                 max_clock_skew_s: float = 5.0, replay_window: int = 64, state_file: str | os.PathLike | None = None,
                 state_section: str = ""):
        self.trust = trust
        self.kinds = tuple(kinds)
        self.target = str(target)
        self.max_lifetime_s = float(max_lifetime_s)
        self.max_clock_skew_s = float(max_clock_skew_s)
        self.replay_window = int(replay_window)
        self.state_file = os.fspath(state_file) if state_file else None
        self.state_section = str(state_section)
        self._highest: dict[str, int] = {}
        self._recent: dict[str, set[int]] = {}
        self.counters: dict[str, int] = {}
        if self.state_file:
            try:   # the store must be writable now, not at the first accepted command
                os.makedirs(os.path.dirname(os.path.abspath(self.state_file)), exist_ok=True)
            except OSError as exc:
                raise ValueError(f"replay state {self.state_file}: cannot create its directory ({exc})") from None
        if self.state_file and os.path.exists(self.state_file):
            try:
                with open(self.state_file) as f:
                    data = json.load(f)
                if self.state_section:
                    data = data.get("sections", {}).get(self.state_section, {})
                self._highest = {str(k): int(v) for k, v in data.get("highest_seq", {}).items()}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"replay state {self.state_file}: unreadable ({exc}); refusing to start "
                                 "without it (delete it only if no old command can be replayed)") from None

    def _count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def verify(self, data, now_s: float, *, consume: bool = True) -> VerifiedCommand:
        """Check one envelope at wall-clock time ``now_s``; returns the verified command or raises
        :class:`CommandRejected`. An accepted sequence number is used up (``consume=False`` only checks)."""
        try:
            cmd = self._verify(data, now_s, consume)
        except CommandRejected as exc:
            self._count(exc.reason)
            raise
        self._count("accepted")
        return cmd

    def _verify(self, data, now_s: float, consume: bool) -> VerifiedCommand:
        env = parse_envelope(data)
        kid = env["key_id"]
        entry = self.trust.get(kid)
        if entry is None:
            raise CommandRejected("unknown_key", f"key {kid!r} is not trusted here")
        if entry.revoked:
            raise CommandRejected("revoked_key", f"key {kid!r} was revoked")
        try:
            sig = base64.b64decode(env["sig"], validate=True)
            entry.public_key.verify(sig, signed_bytes(env))
        except (InvalidSignature, ValueError, TypeError):
            raise CommandRejected("bad_signature", "signature does not match the content") from None
        kind = env["kind"]
        if kind not in self.kinds:
            raise CommandRejected("wrong_kind", f"{kind!r} is not accepted here")
        if not entry.allows(kind):
            raise CommandRejected("kind_not_allowed", f"key {kid!r} may not sign {kind!r}")
        if env["target"] and self.target and env["target"] != self.target:
            raise CommandRejected("wrong_target", f"for {env['target']!r}, this is {self.target!r}")
        now = float(now_s)
        if not math.isfinite(now):
            raise CommandRejected("malformed", "receiver time is not finite")
        issued, expires = float(env["issued_at_s"]), float(env["expires_at_s"])
        if expires - issued > self.max_lifetime_s or expires < issued:
            raise CommandRejected("lifetime_too_long", f"valid {expires - issued:.0f} s, at most "
                                                       f"{self.max_lifetime_s:.0f} s accepted")
        if issued > now + self.max_clock_skew_s:
            raise CommandRejected("not_yet_valid", f"issued {issued - now:.1f} s in the future")
        if now > expires:
            raise CommandRejected("expired", f"expired {now - expires:.1f} s ago")
        seq = env["seq"]
        high = self._highest.get(kid, -1)
        recent = self._recent.setdefault(kid, set())
        if seq <= high - self.replay_window or seq in recent or (seq <= high and not recent):
            raise CommandRejected("replayed", f"sequence number {seq} already used or too old")
        if consume:
            recent.add(seq)
            if seq > high:
                self._highest[kid] = seq
                floor = seq - self.replay_window
                self._recent[kid] = {s for s in recent if s > floor}
                self._save()
        return VerifiedCommand(kind, env["target"], kid, seq, issued, expires, env["payload"])

    def _save(self) -> None:
        if not self.state_file:
            return
        data = {}
        if os.path.exists(self.state_file):
            try:   # keep the other sections (verifiers of the same node sharing the file)
                with open(self.state_file) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = {}
            data = data if isinstance(data, dict) else {}
        if self.state_section:
            data.setdefault("sections", {})[self.state_section] = {"highest_seq": self._highest}
        else:
            data["highest_seq"] = self._highest
        os.makedirs(os.path.dirname(os.path.abspath(self.state_file)), exist_ok=True)
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)


def verify_command(data, trust: TrustList, now_s: float | None = None, *, kinds: Iterable[str] | None = None,
                   target: str = "", max_lifetime_s: float = 300.0) -> VerifiedCommand:
    """One-shot check of an envelope (signature, key, kind, target, validity) without replay memory.

    Receivers that act on commands keep a :class:`CommandVerifier` (it also refuses replays); this function
    suits a viewer that only shows whether a command is authentic.
    """
    v = CommandVerifier(trust, kinds if kinds is not None else KINDS, target, max_lifetime_s=max_lifetime_s)
    return v.verify(data, time.time() if now_s is None else now_s, consume=False)

