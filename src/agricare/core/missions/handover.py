"""One-time hand-over codes: a child is handed over only to the guardian the code was issued for.

A code binds (child, guardian, trip) with an expiry and a random nonce issued per trip hand-over:

    tag = HMAC-SHA256(key, "agricare-handover-v1" | child | guardian | trip | nonce | expiry)[:9]
    payload = version (1 byte) | nonce (6 bytes) | expiry (uint32, s) | tag (9 bytes)  -> 20 bytes
    code = base32(payload) in groups of four: ``ABCD-EFGH-...`` (32 characters, case-insensitive)

The robot verifies offline with the shared key: it recomputes the tag for the child, guardian and trip
at hand, checks the expiry against the time passed in, and remembers used nonces so a code works once.
Refusal reasons: ``malformed``, ``forged`` (tag mismatch), ``other_child`` / ``other_guardian`` (the tag
matches another child or guardian of the trip manifest), ``expired``, ``replayed``.

The key file (hex, >= 32 hex digits, or >= 16 raw bytes) is refused if group or others may read or
write it (``mode & 0o077``): anyone who can read the key can forge codes; and when the key is guessable
(a password such as ``passwordpassword``, all-zero hex, repeated bytes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agricare.core.security.weak import WeakKeyError, check_key_material

VERSION = 1
NONCE_BYTES = 6
TAG_BYTES = 9
_DOMAIN = b"agricare-handover-v1"
_PAYLOAD = struct.Struct(">B6sI9s")
MIN_KEY_BYTES = 16


class KeyFileError(Exception):
    """The hand-over key file cannot be used (permissions, format)."""


def load_key(path: str | os.PathLike) -> bytes:
    """Read the hand-over key, refusing a file group or others could read.

    Raises
    ------
    KeyFileError
        Not a regular file, readable/writable by group or others, or too short.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            who = []
            if mode & 0o070:
                who.append("group")
            if mode & 0o007:
                who.append("others")
            raise KeyFileError(
                f"key file {path} has mode {mode:04o}: {' and '.join(who)} can access it, so anyone on this "
                f"machine could forge hand-over codes; run 'chmod 600 {path}'")
        data = b""
        while chunk := os.read(fd, 4096):
            data += chunk
    finally:
        os.close(fd)
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii")) if text else b""
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {path} holds {len(key)} key bytes, need at least {MIN_KEY_BYTES}")
    try:
        check_key_material(key, f"key file {path}", MIN_KEY_BYTES)
    except WeakKeyError as exc:
        raise KeyFileError(str(exc)) from None
    return key


def write_key(path: str | os.PathLike, key: bytes | None = None) -> bytes:
    """Create a new key file (mode 0600, hex); refuses to overwrite. Returns the key."""
    key = secrets.token_bytes(32) if key is None else key
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key: need at least {MIN_KEY_BYTES} bytes")
    check_key_material(key, "key", MIN_KEY_BYTES)
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def _field(value: str) -> bytes:
    b = str(value).encode("utf-8")
    return struct.pack(">I", len(b)) + b


def _tag(key: bytes, child_id: str, guardian_id: str, trip_id: str, nonce: bytes, expiry_s: int) -> bytes:
    msg = _DOMAIN + _field(child_id) + _field(guardian_id) + _field(trip_id) + nonce + struct.pack(">I", expiry_s)
    return hmac.new(key, msg, hashlib.sha256).digest()[:TAG_BYTES]


def format_code(payload: bytes) -> str:
    text = base64.b32encode(payload).decode("ascii").rstrip("=")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def parse_code(code: str) -> bytes:
    """Decode a code typed by a person: case, spaces and dashes are ignored, 0/1/8 read as O/I/B."""
    text = "".join(ch for ch in str(code).upper() if ch not in " -\t\n")
    text = text.translate(str.maketrans("018", "OIB"))
    if len(text) not in (32, 40):
        raise ValueError(f"a code has 32 or 40 letters/digits, got {len(text)}")
    try:
        return base64.b32decode(text, casefold=False)
    except (ValueError, base64.binascii.Error) as exc:
        raise ValueError(f"not a valid code ({exc})") from None


def issue_code(key: bytes, child_id: str, guardian_id: str, trip_id: str, expiry_s: float,
               nonce: bytes | None = None) -> str:
    """Issue a one-time hand-over code.

    Parameters
    ----------
    expiry_s : float
        Last second the code is valid (same time base as the verifier's ``now_s``; floored; 0..2^32-1).
    nonce : bytes, optional
        6 bytes; default from the OS random generator (never reuse one).
    """
    if not child_id or not guardian_id or not trip_id:
        raise ValueError("child_id, guardian_id and trip_id must not be empty")
    exp = int(expiry_s // 1)
    if not 0 <= exp < 2**32:
        raise ValueError(f"expiry_s: out of range 0..2^32-1, got {expiry_s!r}")
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else bytes(nonce)
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce: need {NONCE_BYTES} bytes, got {len(nonce)}")
    tag = _tag(key, child_id, guardian_id, trip_id, nonce, exp)
    return format_code(_PAYLOAD.pack(VERSION, nonce, exp, tag))


@dataclass(frozen=True)
class Verdict:
    """Result of a verification: ``accepted`` and a reason code + text (``ok`` when accepted)."""

    accepted: bool
    reason: str
    detail: str = ""
    nonce_hex: str = ""
    expiry_s: int | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class HandoverVerifier:
    """Offline verifier with one-time use.

    Parameters
    ----------
    key : bytes
    manifest : mapping trip_id -> iterable of (child_id, guardian_id), optional
        Authorised pairs per trip; used to tell "code of another child/guardian" from a forgery, and to
        refuse a guardian who is not authorised for the child on that trip even with a valid code.
    used_nonces : iterable of hex str, optional
        Nonces already used (e.g. loaded from :attr:`used` persisted by the caller).
    """

    def __init__(self, key: bytes, manifest: Mapping[str, Iterable[tuple[str, str]]] | None = None,
                 used_nonces: Iterable[str] = ()):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key: need at least {MIN_KEY_BYTES} bytes")
        self._key = bytes(key)
        self.manifest = {t: [tuple(p) for p in pairs] for t, pairs in (manifest or {}).items()}
        self.used: set[str] = set(used_nonces)

    def verify(self, code: str, child_id: str, guardian_id: str, trip_id: str, now_s: float,
               *, consume: bool = True) -> Verdict:
        """Check a code for handing ``child_id`` to ``guardian_id`` on ``trip_id`` at time ``now_s``.

        On acceptance the nonce is marked used (``consume=False`` only checks).
        """
        try:
            payload = parse_code(code)
            version, nonce, exp, tag = _PAYLOAD.unpack(payload)
        except (ValueError, struct.error) as exc:
            return Verdict(False, "malformed", str(exc))
        if version != VERSION:
            return Verdict(False, "malformed", f"unknown code version {version}")
        nonce_hex = nonce.hex()
        want = _tag(self._key, child_id, guardian_id, trip_id, nonce, exp)
        if not hmac.compare_digest(want, tag):
            for c, g in self.manifest.get(trip_id, []):
                if (c, g) == (child_id, guardian_id):
                    continue
                if hmac.compare_digest(_tag(self._key, c, g, trip_id, nonce, exp), tag):
                    if c != child_id:
                        return Verdict(False, "other_child",
                                       f"code was issued for another child ({c}), not {child_id}", nonce_hex, exp)
                    return Verdict(False, "other_guardian",
                                   f"code was issued for another guardian ({g}), not {guardian_id}",
                                   nonce_hex, exp)
            return Verdict(False, "forged",
                           "signature does not match this child, guardian and trip", nonce_hex, exp)
        pairs = self.manifest.get(trip_id)
        if pairs is not None and (child_id, guardian_id) not in pairs:
            return Verdict(False, "not_authorised",
                           f"{guardian_id} is not authorised for {child_id} on trip {trip_id}", nonce_hex, exp)
        if now_s > exp:
            return Verdict(False, "expired", f"code expired at {exp} s, now {now_s:.0f} s", nonce_hex, exp)
        if nonce_hex in self.used:
            return Verdict(False, "replayed", "code was already used", nonce_hex, exp)
        if consume:
            self.used.add(nonce_hex)
        return Verdict(True, "ok", "", nonce_hex, exp)


# ---------------------------------------------------------------------------------------------------- trip codes
# Version 2, what the shuttle verifies itself: bound to the vehicle too, with an issue time and a lifetime.
#   tag = HMAC-SHA256(key, "agricare-tripcode-v2" | child | guardian | trip | vehicle | nonce | issued | life)[:10]
#   payload = version 2 (1) | nonce (8) | issued_s (uint32) | lifetime_s (uint16) | tag (10) -> 25 bytes, 40 chars
VERSION2 = 2
_DOMAIN2 = b"agricare-tripcode-v2"
_PAYLOAD2 = struct.Struct(">B8sIH10s")
#: what a refused caller is told: nothing that says whose code it was
PUBLIC_REASONS = ("malformed", "invalid", "expired", "not_yet_valid", "replayed", "bad_time", "clock_rewound",
                  "lifetime_too_long", "store_failure")


def _tag2(key, child_id, guardian_id, trip_id, vehicle_id, nonce, issued_s, lifetime_s) -> bytes:
    msg = (_DOMAIN2 + _field(child_id) + _field(guardian_id) + _field(trip_id) + _field(vehicle_id) + nonce
           + struct.pack(">IH", issued_s, lifetime_s))
    return hmac.new(key, msg, hashlib.sha256).digest()[:10]


def issue_trip_code(key: bytes, child_id: str, guardian_id: str, trip_id: str, vehicle_id: str, issued_s: float,
                    lifetime_s: float, nonce: bytes | None = None) -> str:
    """Issue a one-time code for handing ``child_id`` to ``guardian_id`` on ``trip_id`` from ``vehicle_id``,
    valid ``lifetime_s`` (<= 65535 s) from ``issued_s`` (same time base as the shuttle's clock)."""
    if not (child_id and guardian_id and trip_id and vehicle_id):
        raise ValueError("child_id, guardian_id, trip_id and vehicle_id must not be empty")
    if not (math.isfinite(issued_s) and 0 <= issued_s < 2**32):
        raise ValueError(f"issued_s: must be finite in 0..2^32-1, got {issued_s!r}")
    if not (math.isfinite(lifetime_s) and 1 <= lifetime_s < 2**16):
        raise ValueError(f"lifetime_s: must be in 1..65535 s, got {lifetime_s!r}")
    nonce = secrets.token_bytes(8) if nonce is None else bytes(nonce)
    if len(nonce) != 8:
        raise ValueError(f"nonce: need 8 bytes, got {len(nonce)}")
    iss, life = int(issued_s // 1), int(lifetime_s // 1)
    tag = _tag2(key, child_id, guardian_id, trip_id, vehicle_id, nonce, iss, life)
    return format_code(_PAYLOAD2.pack(VERSION2, nonce, iss, life, tag))


class UsedCodeStore:
    """Used code nonces and the latest time seen, in one JSON file rewritten atomically (fsync) on change.

    Required by :class:`TripCodeVerifier`: without it a code could be used again after a restart, and the
    clock could be wound back to before a code expired.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not self.path:
            raise ValueError("used-code store: a file path is required")
        self.used: set[str] = set()
        self.latest_time_s = -math.inf
        if os.path.exists(self.path):
            try:
                with open(self.path) as f:
                    data = json.load(f)
                self.used = {str(n) for n in data.get("used", [])}
                t = data.get("latest_time_s")
                t = -math.inf if t is None else float(t)
                self.latest_time_s = t if math.isfinite(t) else -math.inf
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"used-code store {self.path}: unreadable ({exc}); refusing to start") from None
        else:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, mode=0o700, exist_ok=True)
            self.save()

    def save(self) -> None:
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"latest_time_s": self.latest_time_s if math.isfinite(self.latest_time_s) else None,
                       "used": sorted(self.used)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class TripCodeVerifier:
    """The shuttle's own check of version-2 codes (vehicle-bound, issue time, lifetime, one use).

    Parameters
    ----------
    key : bytes
    vehicle_id : str
    store : UsedCodeStore
    manifest : mapping trip -> [(child, guardian)], optional
        Authorised pairs; a guardian not listed for the child is refused even with a valid code.
    max_lifetime_s, max_future_s : float
        Longest validity accepted; how far in the future an issue time may lie (clock skew).
    rewind_tolerance_s : float
        How far the clock may go back against the latest time seen before every check is refused.

    ``verify`` returns a :class:`Verdict` whose ``reason`` is one of :data:`PUBLIC_REASONS` (what the caller
    may be told) and whose ``detail`` says more for the vehicle's own audit record.
    """

    def __init__(self, key: bytes, vehicle_id: str, store: UsedCodeStore,
                 manifest: Mapping[str, Iterable[tuple[str, str]]] | None = None, max_lifetime_s: float = 3600.0,
                 max_future_s: float = 60.0, rewind_tolerance_s: float = 1.0, accept_v1: bool = False):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key: need at least {MIN_KEY_BYTES} bytes")
        if not vehicle_id:
            raise ValueError("vehicle_id: must be set")
        if store is None:
            raise ValueError("store: a used-code store is required")
        self._key, self.vehicle_id, self.store = bytes(key), str(vehicle_id), store
        self.manifest = {t: [tuple(p) for p in pairs] for t, pairs in (manifest or {}).items()}
        self.max_lifetime_s, self.max_future_s = float(max_lifetime_s), float(max_future_s)
        self.rewind_tolerance_s = float(rewind_tolerance_s)
        #: also accept version-1 codes (not bound to a vehicle, no issue time: their expiry may lie at most
        #: ``max_lifetime_s`` ahead); only for issuers that cannot know the vehicle yet
        self.accept_v1 = bool(accept_v1)
        #: how often (s of the verifier's time) the latest time seen is written to the store
        self.save_period_s = 1.0
        #: and, for the periodic ``observe``, at most this often in wall time (s): restarts and power cuts,
        #: what the stored time is kept against, happen in wall time. On a robot (time = wall time) this changes
        #: nothing; a simulation at 5x real time writes (and fsyncs) once per wall second instead of five
        #: times. A code check still writes the time it saw (``verify``).
        self.save_wall_period_s = 1.0
        self._saved_time_s = store.latest_time_s
        self._saved_wall_s = -math.inf

    def observe(self, now_s: float) -> bool:
        """Note the current time (call every cycle); False when it is non-finite or wound back."""
        return self._observe(now_s, wall_limited=True)

    def _observe(self, now_s: float, wall_limited: bool) -> bool:
        """``wall_limited``: the periodic call, which also waits ``save_wall_period_s`` of wall time between
        writes; a code check writes on the verifier's time alone (as before)."""
        if not math.isfinite(now_s):
            return False
        if now_s < self.store.latest_time_s - self.rewind_tolerance_s:
            return False
        if now_s > self.store.latest_time_s:
            self.store.latest_time_s = float(now_s)
            wall = time.monotonic()
            if now_s - self._saved_time_s >= self.save_period_s and (
                    not wall_limited or wall - self._saved_wall_s >= self.save_wall_period_s):
                try:
                    self.store.save()
                    self._saved_time_s, self._saved_wall_s = float(now_s), wall
                except OSError:
                    pass  # kept in memory; the next use of a code saves it or fails safe
        return True

    def verify(self, code: str, child_id: str, guardian_id: str, trip_id: str, now_s: float,
               *, consume: bool = True) -> Verdict:
        try:
            now = float(now_s)
        except (TypeError, ValueError):
            return Verdict(False, "bad_time", "time is not a number")
        if not math.isfinite(now):
            return Verdict(False, "bad_time", f"time {now_s!r} is not finite")
        if not self._observe(now, wall_limited=False):
            return Verdict(False, "clock_rewound", f"time {now:.0f} s is before {self.store.latest_time_s:.0f} s "
                                                   "already seen")
        try:
            version = parse_code(code)[0]
            if version == VERSION and self.accept_v1:
                return self._verify_v1(code, child_id, guardian_id, trip_id, now, consume)
            if version != VERSION2:
                raise ValueError(f"code version {version}, expected {VERSION2}")
            _v, nonce, issued, life, tag = _PAYLOAD2.unpack(parse_code(code))
        except (ValueError, struct.error, IndexError) as exc:
            return Verdict(False, "malformed", str(exc))
        nonce_hex = nonce.hex()
        want = _tag2(self._key, child_id, guardian_id, trip_id, self.vehicle_id, nonce, issued, life)
        if not hmac.compare_digest(want, tag):
            return Verdict(False, "invalid", "tag does not match this child, guardian, trip and vehicle", nonce_hex)
        pairs = self.manifest.get(trip_id)
        if pairs is not None and (child_id, guardian_id) not in pairs:
            return Verdict(False, "invalid", "guardian not authorised for this child on this trip", nonce_hex)
        if life > self.max_lifetime_s:
            return Verdict(False, "lifetime_too_long", f"valid {life} s, at most {self.max_lifetime_s:.0f} s",
                           nonce_hex)
        if issued > now + self.max_future_s:
            return Verdict(False, "not_yet_valid", f"issued {issued - now:.0f} s in the future", nonce_hex)
        if now > issued + life:
            return Verdict(False, "expired", f"expired at {issued + life} s, now {now:.0f} s", nonce_hex,
                           issued + life)
        if nonce_hex in self.store.used:
            return Verdict(False, "replayed", "code was already used", nonce_hex)
        if consume:
            self.store.used.add(nonce_hex)
            try:
                self.store.save()
            except OSError as exc:
                self.store.used.discard(nonce_hex)
                return Verdict(False, "store_failure", f"used-code store not written: {exc.strerror}", nonce_hex)
        return Verdict(True, "ok", "", nonce_hex, issued + life)

    def _verify_v1(self, code, child_id, guardian_id, trip_id, now, consume) -> Verdict:
        v = HandoverVerifier(self._key, self.manifest).verify(code, child_id, guardian_id, trip_id, now, consume=False)
        if not v.accepted:
            public = v.reason if v.reason in ("malformed", "expired") else "invalid"
            return Verdict(False, public, str(v), v.nonce_hex, v.expiry_s)
        if v.expiry_s - now > self.max_lifetime_s:
            return Verdict(False, "lifetime_too_long", f"expires {v.expiry_s - now:.0f} s from now", v.nonce_hex)
        key = "v1:" + v.nonce_hex
        if key in self.store.used:
            return Verdict(False, "replayed", "code was already used", v.nonce_hex)
        if consume:
            self.store.used.add(key)
            try:
                self.store.save()
            except OSError as exc:
                self.store.used.discard(key)
                return Verdict(False, "store_failure", f"used-code store not written: {exc.strerror}", v.nonce_hex)
        return Verdict(True, "ok", "version-1 code (no vehicle binding)", v.nonce_hex, v.expiry_s)
