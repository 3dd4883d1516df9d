"""Demo site data: users of each role, children and their guardians (``agricare serve --demo``)."""

from __future__ import annotations

import json
import os
import pathlib
import secrets

import sqlalchemy as sa

from agricare.app import db
from agricare.app.security import Auth

#: (child id, name, home place, guardian user name, guardian display name)
DEMO_CHILDREN = [("c2", "Hana", "home_4", "guardian", "Hana's father"),
                 ("c3", "Ken", "home_3", "guardian2", "Ken's mother")]
DEMO_USERS = [("staff", "Nursery staff", "staff"), ("farmer", "Farmer Sato", "farmer"),
              ("admin", "Site admin", "admin")]


def seed(auth: Auth, passwords: dict[str, str] | None = None) -> dict[str, str]:
    """Create the demo users and children when missing; returns {user name: password} of the new ones."""
    passwords = dict(passwords or {})
    made = {}
    engine = auth.engine
    with engine.connect() as conn:
        have = {r[0] for r in conn.execute(sa.select(db.users.c.username))}
    for child_id, name, home, guardian, gname in DEMO_CHILDREN:
        with engine.begin() as conn:
            if conn.execute(sa.select(db.children.c.id).where(db.children.c.id == child_id)).first() is None:
                conn.execute(db.children.insert().values(id=child_id, name=name, home_place=home))
        if guardian not in have:
            pw = passwords.get(guardian) or secrets.token_urlsafe(12)
            uid = auth.create_user(guardian, pw, "guardian", gname)
            with engine.begin() as conn:
                conn.execute(db.guardians.insert().values(user_id=uid, child_id=child_id))
            made[guardian] = pw
    for username, display, role in DEMO_USERS:
        if username not in have:
            pw = passwords.get(username) or secrets.token_urlsafe(12)
            auth.create_user(username, pw, role, display)
            made[username] = pw
    return made


def app_children() -> list[str]:
    return [c[0] for c in DEMO_CHILDREN]


def write_logins(path: pathlib.Path, logins: dict[str, str]) -> None:
    """Keep the generated demo passwords (mode 0600) so a second start can print them again."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    old.update(logins)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(old, f, indent=1)
