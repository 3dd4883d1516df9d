"""Passwords (argon2id), sessions, CSRF tokens, login lock-out and the audit record.

- A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; the database keeps only its
  SHA-256 (a stolen database does not give live sessions).
- Every state-changing request carries the session's CSRF token in the ``X-CSRF-Token`` header (the page
  reads it from ``/api/me``); a cross-site form cannot read it.
- ``max_failed_logins`` wrong passwords in a row lock the account for ``lockout_s``; an unknown user name
  costs the same argon2 time as a known one (no user enumeration by timing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agricare.app import db

SESSION_COOKIE = "agricare_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclasses.dataclass(frozen=True)
class AuthParams:
    """Login and session policy.

    Attributes
    ----------
    session_ttl_s : float
        Session lifetime, s.
    max_failed_logins : int
        Wrong passwords in a row before the account is locked.
    lockout_s : float
        How long a locked account stays locked, s.
    max_logins_per_client_per_min : int
        Login attempts one client address may make per minute (against password spraying over many accounts).
    argon2_time_cost, argon2_memory_kib : int
        argon2id cost (RFC 9106 second recommended option: t=3, m=64 MiB).
    cookie_secure : bool
        Send the session cookie only over HTTPS (set on a site behind TLS).
    """

    session_ttl_s: float = 12 * 3600.0
    max_failed_logins: int = 10
    lockout_s: float = 15 * 60.0
    max_logins_per_client_per_min: int = 30
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    cookie_secure: bool = False

    def __post_init__(self):
        if not self.session_ttl_s > 0:
            raise ValueError(f"session_ttl_s: must be > 0, got {self.session_ttl_s!r}")
        if self.max_failed_logins < 1:
            raise ValueError(f"max_failed_logins: must be >= 1, got {self.max_failed_logins!r}")
        if not self.lockout_s > 0:
            raise ValueError(f"lockout_s: must be > 0, got {self.lockout_s!r}")
        if self.argon2_time_cost < 1 or self.argon2_memory_kib < 8:
            raise ValueError("argon2_time_cost >= 1 and argon2_memory_kib >= 8 required")


class LoginError(Exception):
    """Login refused; ``locked`` tells the page to say so."""

    def __init__(self, message: str, locked: bool = False):
        super().__init__(message)
        self.locked = locked


class Auth:
    """Password and session operations on the app database."""

    def __init__(self, engine: sa.Engine, params: AuthParams = AuthParams()):
        self.engine = engine
        self.params = params
        self.hasher = PasswordHasher(time_cost=params.argon2_time_cost, memory_cost=params.argon2_memory_kib)
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))

    def hash_password(self, password: str) -> str:
        return self.hasher.hash(password)

    def create_user(self, username: str, password: str, role: str, display_name: str = "") -> int:
        if role not in db.ROLES:
            raise ValueError(f"role: expected one of {sorted(db.ROLES)}, got {role!r}")
        with self.engine.begin() as conn:
            res = conn.execute(db.users.insert().values(
                username=username, display_name=display_name or username, password_hash=self.hash_password(password),
                role=role, failed_logins=0, locked_until=0.0, created_at=time.time()))
            return int(res.inserted_primary_key[0])

    def login(self, username: str, password: str, client: str = "") -> tuple[str, dict]:
        """Check a password; returns (session token, user row). Raises :class:`LoginError`."""
        now = time.time()
        refusal = None
        with self.engine.begin() as conn:   # the failure count and audit are committed before refusing
            user = conn.execute(sa.select(db.users).where(db.users.c.username == username)).mappings().first()
            if user is None:
                try:
                    self.hasher.verify(self._dummy_hash, password)
                except VerificationError:
                    pass
                write_audit(conn, username, "login", False, "unknown user", client)
                refusal = LoginError("wrong user name or password")
            elif user["locked_until"] > now:
                write_audit(conn, username, "login", False, "locked", client)
                refusal = LoginError(f"account locked for {user['locked_until'] - now:.0f} s after too many wrong "
                                     "passwords", locked=True)
            else:
                try:
                    self.hasher.verify(user["password_hash"], password)
                except (VerifyMismatchError, VerificationError, InvalidHashError):
                    failed = int(user["failed_logins"]) + 1
                    locked_until = now + self.params.lockout_s if failed >= self.params.max_failed_logins else 0.0
                    conn.execute(db.users.update().where(db.users.c.id == user["id"]).values(
                        failed_logins=0 if locked_until else failed, locked_until=locked_until))
                    write_audit(conn, username, "login", False,
                                "wrong password" + ("; account locked" if locked_until else ""), client)
                    refusal = LoginError("wrong user name or password" + (
                        f"; account locked for {self.params.lockout_s:.0f} s" if locked_until else ""),
                        locked=bool(locked_until))
            if refusal is None:
                if self.hasher.check_needs_rehash(user["password_hash"]):
                    conn.execute(db.users.update().where(db.users.c.id == user["id"]).values(
                        password_hash=self.hash_password(password)))
                conn.execute(db.users.update().where(db.users.c.id == user["id"]).values(failed_logins=0,
                                                                                          locked_until=0.0))
                token = secrets.token_urlsafe(32)
                conn.execute(db.sessions.insert().values(token_hash=_digest(token), user_id=user["id"],
                                                         csrf=secrets.token_urlsafe(32),
                                                         expires_at=now + self.params.session_ttl_s))
                conn.execute(db.sessions.delete().where(db.sessions.c.expires_at < now))
                write_audit(conn, username, "login", True, "", client)
        if refusal is not None:
            raise refusal
        return token, dict(user)

    def session(self, token: str | None) -> dict | None:
        """The user of a live session (with ``csrf``), or None."""
        if not token:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(db.users, db.sessions.c.csrf, db.sessions.c.expires_at)
                .join(db.sessions, db.sessions.c.user_id == db.users.c.id)
                .where(db.sessions.c.token_hash == _digest(token))).mappings().first()
        if row is None or row["expires_at"] < time.time():
            return None
        return dict(row)

    def logout(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(db.sessions.delete().where(db.sessions.c.token_hash == _digest(token)))


def csrf_ok(user: dict, header_value: str | None) -> bool:
    return bool(header_value) and hmac.compare_digest(str(user["csrf"]), str(header_value))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_audit(conn, username: str, action: str, ok: bool, detail: str = "", client: str = "") -> None:
    conn.execute(db.audit.insert().values(t=time.time(), username=username[:64], action=action[:64], ok=bool(ok),
                                          detail=str(detail)[:1000], client=str(client)[:64]))
