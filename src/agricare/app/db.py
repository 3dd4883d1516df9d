"""Tables of the operator app and their migrations (SQLAlchemy Core; SQLite by default).

The schema version lives in ``schema_version``; :data:`MIGRATIONS` is an ordered list of steps, each run
once inside a transaction, so a site database made by an older app is brought up to date at start.
Times are UNIX seconds (float), coordinates metres in the site's map frame (x east, y north).
"""

from __future__ import annotations

import pathlib
import time

import sqlalchemy as sa

metadata = sa.MetaData()

roles = sa.Table(
    "roles", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("description", sa.String(200), nullable=False, default=""),
)
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(32), sa.ForeignKey("roles.name"), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", sa.Float, nullable=False, default=time.time),
)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
places = sa.Table(
    "places", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("x_m", sa.Float, nullable=False),
    sa.Column("y_m", sa.Float, nullable=False),
)
children = sa.Table(
    "children", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("home_place", sa.String(64), sa.ForeignKey("places.name"), nullable=False),
)
guardians = sa.Table(
    "guardians", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("child_id", sa.String(64), sa.ForeignKey("children.id"), primary_key=True),
)
requests = sa.Table(
    "requests", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("child_id", sa.String(64), sa.ForeignKey("children.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),          # pickup | dropoff | sick
    sa.Column("from_place", sa.String(64), nullable=False),
    sa.Column("to_place", sa.String(64), nullable=False),
    sa.Column("window_open_s", sa.Float, nullable=False),       # robots' clock
    sa.Column("window_close_s", sa.Float, nullable=False),
    sa.Column("state", sa.String(32), nullable=False, default="requested"),
    sa.Column("created_at", sa.Float, nullable=False, default=time.time),
)
trips = sa.Table(
    "trips", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id"), nullable=False),
    sa.Column("child_id", sa.String(64), sa.ForeignKey("children.id"), nullable=False),
    sa.Column("robot", sa.String(64), nullable=False, default=""),
    sa.Column("state", sa.String(32), nullable=False, default="requested"),
    sa.Column("eta_s", sa.Float, nullable=True),
    sa.Column("receiver_id", sa.String(64), nullable=False, default=""),
    sa.Column("code", sa.String(64), nullable=False, default=""),
    sa.Column("updated_at", sa.Float, nullable=False, default=time.time),
)
events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("t", sa.Float, nullable=False, default=time.time),
    sa.Column("robot", sa.String(64), nullable=False, default=""),
    sa.Column("level", sa.String(16), nullable=False, default="info"),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.String(1000), nullable=False, default=""),
    sa.Column("trip_id", sa.String(64), nullable=False, default=""),
)
fields = sa.Table(
    "fields", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("polygon_json", sa.Text, nullable=False),         # [[x, y], ...] map frame
    sa.Column("ab_line_json", sa.Text, nullable=False, default=""),
    sa.Column("holes_json", sa.Text, nullable=False, default="[]"),   # [[[x, y], ...], ...] not worked (ponds)
    sa.Column("area_m2", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, default=time.time),
)
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("field_id", sa.Integer, sa.ForeignKey("fields.id"), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("robot", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),           # coverage | scouting
    sa.Column("state", sa.String(32), nullable=False, default="created"),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.String(500), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False, default=time.time),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("t", sa.Float, nullable=False, default=time.time),
    sa.Column("username", sa.String(64), nullable=False, default=""),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("detail", sa.String(1000), nullable=False, default=""),
    sa.Column("client", sa.String(64), nullable=False, default=""),
)
schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)

ROLES = {"guardian": "own children: requests, live trip, hand-over code",
         "staff": "care fleet, trips, urgent trips, boarding, protective stop / resume",
         "farmer": "fields, coverage and scouting jobs",
         "admin": "users, roles, audit"}

_V1_TABLES = [roles, users, sessions, places, children, guardians, requests, trips, events, fields, jobs, audit]


def _v1(conn) -> None:
    for t in _V1_TABLES:
        t.create(conn, checkfirst=True)
    conn.execute(roles.insert(), [{"name": k, "description": v} for k, v in ROLES.items()])


def _v2(conn) -> None:
    # plain SQL (SQLite and PostgreSQL): an sa.Index object would attach itself to the Table and be made by _v1
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_events_t ON events (t)"))
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_audit_t ON audit (t)"))


def _v3(conn) -> None:
    # a field's holes (ponds, poles) travel with its jobs; _v1 on a new database already made the column
    if "holes_json" not in {c["name"] for c in sa.inspect(conn).get_columns("fields")}:
        conn.execute(sa.text("ALTER TABLE fields ADD COLUMN holes_json TEXT NOT NULL DEFAULT '[]'"))


#: ordered schema migrations: (version, step). Add new steps at the end; never edit a released one.
MIGRATIONS = [(1, _v1), (2, _v2), (3, _v3)]


def database_url(data_dir: str | pathlib.Path | None, url: str | None = None) -> str:
    """``url`` if given, else a SQLite file ``agricare.sqlite`` under ``data_dir``."""
    if url:
        return url
    d = pathlib.Path(data_dir or "data").resolve()
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'agricare.sqlite'}"


def connect(url: str) -> sa.Engine:
    """Engine for ``url`` with the schema migrated to the latest version."""
    kwargs = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False}
    engine = sa.create_engine(url, future=True, **kwargs)
    if url.startswith("sqlite"):
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _rec):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
    migrate(engine)
    return engine


def current_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(engine: sa.Engine) -> list[int]:
    """Apply the missing migrations; returns the versions applied."""
    with engine.begin() as conn:
        schema_version.create(conn, checkfirst=True)
    done = current_version(engine)
    applied = []
    for version, step in MIGRATIONS:
        if version <= done:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(schema_version.insert().values(version=version, applied_at=time.time()))
        applied.append(version)
    return applied
