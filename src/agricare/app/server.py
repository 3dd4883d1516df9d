"""The operator app's HTTP / WebSocket server (FastAPI).

Every ``/api`` route checks the session (401 without one), the role (403), the object's owner (a guardian
asking for another child's trip gets 403) and, for a state change, the CSRF header (403). Bodies are
pydantic models that forbid unknown fields: a bad body gets 422 naming the field and writes nothing.
``/ws`` pushes the live state the user may see, ``update_rate_hz`` times a second.
"""


import asyncio
import collections
import contextlib
import dataclasses
import json
import math
import pathlib
import secrets
import threading
import time
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agricare.app import db
from agricare.app.fields import FieldFormatError, parse_field
from agricare.app.security import CSRF_HEADER, SESSION_COOKIE, Auth, AuthParams, LoginError, csrf_ok, write_audit

STATIC = pathlib.Path(__file__).parent / "static"
SYSTEM_USER = {"id": 0, "username": "app", "role": "system"}   # the app's own commands (re-plans) in the audit
ACTIVE_TRIP_STATES = ("requested", "planned", "boarding", "on_board", "at_handover")
NOMINAL_SPEED_MPS = 1.4   # ETA of a leg the shuttle is driving: road distance / this
STOP_SERVICE_S = 10.0     # ETA: time at each stop on the way (the app's requests ask for 10 s of service)
REPLAN_MIN_PERIOD_S = 3.0  # a shuttle's re-plan requests are acted on at most this often (wall clock)


@dataclasses.dataclass
class AppSettings:
    """Site settings of ``agricare serve``.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL (``sqlite:///<data_dir>/agricare.sqlite`` by default; ``postgresql://...`` works).
    care_world, farm_world : dict
        ``world`` of the care town / farm scenario (roads, places, fields, datum) for the maps.
    robots : dict
        {robot name: "care" | "farm"}.
    handover_key : bytes or None
        Shared hand-over key (the one the shuttles' handover_node verifies with); None: no codes.
    demo : bool
        Demo site: the guardian page also offers the shuttle's code reader (the vehicle is simulated).
    key_dir : str or None
        The site's signing-key directory (``agricare keys --dir``): the admin page lists, generates, rotates
        and revokes its keys through the same functions; None: no keys page.
    """

    database_url: str
    care_world: dict | None = None
    farm_world: dict | None = None
    robots: dict = dataclasses.field(default_factory=dict)
    handover_key: bytes | None = None
    code_ttl_s: float = 1800.0
    update_rate_hz: float = 5.0
    demo: bool = False
    auth: AuthParams = AuthParams()
    key_dir: str | None = None


# ---------------------------------------------------------------------------------------------- bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RequestBody(_Body):
    child_id: str = Field(min_length=1, max_length=64)
    kind: Literal["pickup", "dropoff"]
    window_start_min: float = Field(ge=0, le=24 * 60)
    window_length_min: float = Field(gt=0, le=12 * 60)


class UrgentBody(_Body):
    child_id: str = Field(min_length=1, max_length=64)


class ChildBody(_Body):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=120)
    home_place: str = Field(min_length=1, max_length=64)


class CodeBody(_Body):
    code: str = Field(min_length=8, max_length=80)


class FieldBody(_Body):
    name: str = Field(min_length=1, max_length=120)
    format: Literal["geojson", "kml"]
    content: str = Field(min_length=2, max_length=2_000_000)
    ab_line: list[list[float]] | None = Field(default=None, min_length=2, max_length=2)

    @field_validator("ab_line")
    @classmethod
    def _ab(cls, v):
        return _check_ab_line(v)


def _check_ab_line(v):
    if v is None:
        return v
    if any(len(p) != 2 or not all(math.isfinite(c) for c in p) for p in v):
        raise ValueError("A and B must be [x, y] with finite numbers (map frame, m)")
    if math.hypot(v[1][0] - v[0][0], v[1][1] - v[0][1]) < 1.0:
        raise ValueError("A and B must be at least 1 m apart")
    return v


class AbLineBody(_Body):
    ab_line: list[list[float]] | None = Field(min_length=2, max_length=2)

    @field_validator("ab_line")
    @classmethod
    def _ab(cls, v):
        return _check_ab_line(v)


class JobBody(_Body):
    field_id: int = Field(ge=1)
    robot: str = Field(min_length=1, max_length=64)
    kind: Literal["coverage", "scouting"]


class ScoutBody(_Body):
    rows: int = Field(default=0, ge=0, le=1000)


class KeyBody(_Body):
    key_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kinds: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]] = Field(
        default_factory=list, max_length=20)


class RotateBody(_Body):
    new_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class UserBody(_Body):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    display_name: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=10, max_length=256)
    role: Literal["guardian", "staff", "farmer", "admin"]
    children: list[str] = Field(default_factory=list, max_length=20)


# ---------------------------------------------------------------------------------------------- app
def create_app(settings: AppSettings, bridge=None) -> FastAPI:
    """The ASGI app. ``bridge``: a started :class:`agricare.app.bridge.Bridge` or None (no robot link)."""
    engine = db.connect(settings.database_url)
    auth = Auth(engine, settings.auth)
    @contextlib.asynccontextmanager
    async def lifespan(app_):
        yield
        for hook in app_.state.shutdown_hooks:   # e.g. stop the robot link and the demo robots
            hook()

    app = FastAPI(title="agricare", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.shutdown_hooks = []
    app.state.engine, app.state.auth, app.state.settings, app.state.bridge = engine, auth, settings, bridge
    app.state.clients = set()
    app.state.plan = {}
    places_xy = _places(settings)
    app.state.places_xy = places_xy
    if settings.care_world:
        _sync_places(engine, settings.care_world)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        """422 naming the field; the offending input is not echoed (it may not even be valid JSON: NaN)."""
        return JSONResponse({"detail": [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                                         "type": str(e.get("type", ""))} for e in exc.errors()]}, status_code=422)

    # ------------------------------------------------------------------ middleware: headers
    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                                   "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # ------------------------------------------------------------------ dependencies
    def current_user(request: Request) -> dict:
        user = auth.session(request.cookies.get(SESSION_COOKIE))
        if user is None:
            raise HTTPException(401, "log in first")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(user, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, "missing or wrong CSRF token")
        return user

    def role(*names):
        def dep(user: Annotated[dict, Depends(current_user)]) -> dict:
            if user["role"] not in names:
                raise HTTPException(403, f"not allowed for role {user['role']}")
            return user
        return dep

    def client_of(request: Request) -> str:
        return request.client.host if request.client else ""

    def audit(user, action, ok, detail="", request=None):
        with engine.begin() as conn:
            write_audit(conn, user["username"] if user else "", action, ok, detail,
                        client_of(request) if request else "")

    def command(user, request, robot, kind, body) -> dict:
        """The app's one path to a robot: bridge.send_command (signed), audited."""
        if bridge is None:
            res_ok, msg = False, "no robot link (server started without robots)"
        else:
            res = bridge.send_command(robot, kind, body, user["username"])
            res_ok, msg = res.ok, res.message
        audit(user, f"command:{kind}", res_ok, f"{robot} {json.dumps(body)[:600]} -> {msg}", request)
        return {"ok": res_ok, "message": msg}

    def own_children(conn, user) -> set[str]:
        return {r[0] for r in conn.execute(sa.select(db.guardians.c.child_id)
                                           .where(db.guardians.c.user_id == user["id"]))}

    def robot_time() -> float:
        return bridge.robot_time_s() if bridge is not None else time.time()

    # ------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ auth
    attempts: dict[str, collections.deque] = {}

    @app.post("/api/login")
    async def login(body: LoginBody, request: Request, response: Response):
        now = time.monotonic()
        q = attempts.setdefault(client_of(request), collections.deque())
        while q and now - q[0] > 60.0:
            q.popleft()
        if len(q) >= settings.auth.max_logins_per_client_per_min:
            audit(None, "login", False, f"rate limited ({body.username})", request)
            return JSONResponse({"detail": "too many login attempts from this address: wait a minute"},
                                status_code=429)
        q.append(now)
        try:
            token, user = await asyncio.to_thread(auth.login, body.username, body.password, client_of(request))
        except LoginError as exc:
            return JSONResponse({"detail": str(exc), "locked": exc.locked}, status_code=423 if exc.locked else 401)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=settings.auth.cookie_secure, max_age=int(settings.auth.session_ttl_s), path="/")
        return {"username": user["username"], "role": user["role"]}

    @app.post("/api/logout")
    async def logout(request: Request, response: Response, user: Annotated[dict, Depends(current_user)]):
        auth.logout(request.cookies.get(SESSION_COOKIE))
        response.delete_cookie(SESSION_COOKIE, path="/")
        audit(user, "logout", True, "", request)
        return {"ok": True}

    @app.get("/api/me")
    async def me(user: Annotated[dict, Depends(current_user)]):
        return {"username": user["username"], "display_name": user["display_name"], "role": user["role"],
                "csrf": user["csrf"], "demo": settings.demo}

    # ------------------------------------------------------------------ maps
    @app.get("/api/map/{area}")
    async def map_(area: Literal["care", "farm"], user: Annotated[dict, Depends(current_user)]):
        allowed = {"care": ("guardian", "staff", "admin"), "farm": ("farmer", "admin")}[area]
        if user["role"] not in allowed:
            raise HTTPException(403, f"not allowed for role {user['role']}")
        world = settings.care_world if area == "care" else settings.farm_world
        if not world:
            return {"roads": [], "places": [], "fields": []}
        return {"roads": world.get("roads") or [],
                "places": [{k: p.get(k) for k in ("name", "kind", "xy", "footprint", "boarding")}
                           for p in world.get("places") or []],
                "fields": [{"name": f["name"], "polygon": f["polygon"]} for f in world.get("fields") or []],
                "robots": [r for r, k in settings.robots.items() if k == area]}

    # ------------------------------------------------------------------ care: children, requests, trips
    @app.get("/api/children")
    async def children(user: Annotated[dict, Depends(role("guardian", "staff", "admin"))]):
        with engine.connect() as conn:
            q = sa.select(db.children)
            if user["role"] == "guardian":
                q = q.where(db.children.c.id.in_(own_children(conn, user)))
            return [dict(r) for r in conn.execute(q).mappings()]

    @app.post("/api/children")
    async def add_child(body: ChildBody, request: Request, user: Annotated[dict, Depends(role("admin"))]):
        if body.home_place not in places_xy:
            return JSONResponse({"detail": [{"loc": ["body", "home_place"], "msg": "unknown place"}]},
                                status_code=422)
        with engine.begin() as conn:
            if conn.execute(sa.select(db.children.c.id).where(db.children.c.id == body.id)).first() is not None:
                raise HTTPException(409, "child id taken")
            conn.execute(db.children.insert().values(id=body.id, name=body.name, home_place=body.home_place))
            write_audit(conn, user["username"], "child_add", True, body.id, client_of(request))
        return {"id": body.id}

    @app.post("/api/requests")
    async def new_request(body: RequestBody, request: Request, user: Annotated[dict, Depends(role("guardian"))]):
        with engine.connect() as conn:
            if body.child_id not in own_children(conn, user):
                audit(user, "request", False, f"child {body.child_id} is not theirs", request)
                raise HTTPException(403, "not your child")
            child = conn.execute(sa.select(db.children).where(db.children.c.id == body.child_id)).mappings().one()
        home, nursery = child["home_place"], "nursery"
        src, dst = (nursery, home) if body.kind == "pickup" else (home, nursery)
        return _create_trip(user, request, body.child_id, body.kind, src, dst, body.window_start_min * 60.0,
                            body.window_length_min * 60.0)

    @app.post("/api/urgent")
    async def urgent(body: UrgentBody, request: Request, user: Annotated[dict, Depends(role("staff"))]):
        with engine.connect() as conn:
            if conn.execute(sa.select(db.children.c.id).where(db.children.c.id == body.child_id)).first() is None:
                raise HTTPException(404, "no such child")
        return _create_trip(user, request, body.child_id, "sick", "nursery", "clinic", 0.0, 300.0)

    def _create_trip(user, request, child_id, kind, src, dst, start_s, length_s):
        if src not in places_xy or dst not in places_xy:
            raise HTTPException(409, f"the site has no boarding point for {src} or {dst}")
        now = robot_time()
        rid = f"app_{child_id}_{secrets.token_hex(3)}"
        open_s, close_s = now + start_s, now + start_s + length_s
        with engine.connect() as conn:
            guardian_ids = [f"g_{r[0]}" for r in conn.execute(
                sa.select(db.users.c.username).join(db.guardians, db.guardians.c.user_id == db.users.c.id)
                .where(db.guardians.c.child_id == child_id))]
        receiver = "staff_nursery" if dst in ("nursery", "clinic") else (
            f"g_{user['username']}" if user["role"] == "guardian" else (guardian_ids or ["staff_nursery"])[0])
        req = {"id": rid, "pickup": list(places_xy[src]), "dropoff": list(places_xy[dst]),
               "pickup_window": [round(open_s, 1), round(close_s, 1)],
               "dropoff_by": round(close_s + 600.0, 1), "service_s": 10, "max_ride_s": 600,
               "child": child_id, "guardians": [receiver], "pickup_place": src, "dropoff_place": dst}
        code = ""
        if settings.handover_key is not None and receiver.startswith("g_"):
            from agricare.core.missions.handover import issue_code

            code = issue_code(settings.handover_key, child_id, receiver, rid, now + length_s + settings.code_ttl_s)
        # the rows first: the dispatcher's plan can come back before this handler would get to write them
        with engine.begin() as conn:
            conn.execute(db.requests.insert().values(
                id=rid, child_id=child_id, user_id=user["id"], kind=kind, from_place=src, to_place=dst,
                window_open_s=open_s, window_close_s=close_s, state="requested", created_at=time.time()))
            conn.execute(db.trips.insert().values(
                id=rid, request_id=rid, child_id=child_id, robot="", state="requested", receiver_id=receiver,
                code=code, updated_at=time.time()))
        _fleet_state_to_dispatcher(user, request)
        res = command(user, request, "", "dispatch", {"type": "new_request", "request": req})
        with engine.begin() as conn:
            if not res["ok"]:
                conn.execute(db.requests.update().where(db.requests.c.id == rid).values(state="not_sent"))
                _set_trip(conn, rid, state="not_sent")
            _event(conn, "", "info", "request", f"{kind} {child_id} {src} -> {dst}: {res['message']}", rid)
        return {"trip_id": rid, **res}

    @app.post("/api/trips/{trip_id}/cancel")
    async def cancel(trip_id: str, request: Request, user: Annotated[dict, Depends(role("guardian", "staff"))]):
        trip = _trip_for(user, trip_id)
        if trip["state"] not in ("requested", "planned", "not_sent"):
            raise HTTPException(409, f"trip is {trip['state']}: it can no longer be cancelled")
        _fleet_state_to_dispatcher(user, request)
        res = command(user, request, "", "dispatch", {"type": "cancel", "request": trip_id})
        with engine.begin() as conn:
            conn.execute(db.trips.update().where(db.trips.c.id == trip_id).values(state="cancelled",
                                                                                   updated_at=time.time()))
        return res

    out_of_service: set = set()

    def _fleet_state_to_dispatcher(user, request) -> None:
        """Before a re-plan, tell the dispatcher where each shuttle is, who is on board and what is done (it
        keeps children on board on their shuttle); a shuttle whose day is done takes no new stops."""
        if bridge is None:
            return
        now = robot_time()
        for robot, st in bridge.state.items():
            if st.get("kind") != "care" or robot in out_of_service:
                continue
            mission = st.get("mission") or {}
            if mission.get("state") == "done" and not mission.get("onboard_requests"):
                command(user, request, "", "dispatch", {"type": "out_of_service", "vehicle": robot, "now_s": now})
                out_of_service.add(robot)
                continue
            for rid in mission.get("finished_requests") or []:
                command(user, request, "", "dispatch", {"type": "completed", "request": rid, "now_s": now})
            if st.get("pose") is not None:
                command(user, request, "", "dispatch", {
                    "type": "vehicle_state", "vehicle": robot, "xy": st["pose"][:2], "ready_s": now,
                    "onboard": mission.get("onboard_requests") or [], "now_s": now})

    def _trip_for(user, trip_id) -> dict:
        with engine.connect() as conn:
            trip = conn.execute(sa.select(db.trips).where(db.trips.c.id == trip_id)).mappings().first()
            if trip is None:
                raise HTTPException(404, "no such trip")
            if user["role"] == "guardian" and trip["child_id"] not in own_children(conn, user):
                raise HTTPException(403, "not your child's trip")
        return dict(trip)

    @app.get("/api/trips")
    async def trips(user: Annotated[dict, Depends(role("guardian", "staff", "admin"))]):
        return _trips_view(user)

    def _trips_view(user) -> list[dict]:
        with engine.connect() as conn:
            q = sa.select(db.trips, db.children.c.name.label("child_name"), db.requests.c.kind,
                          db.requests.c.from_place, db.requests.c.to_place, db.requests.c.window_open_s,
                          db.requests.c.window_close_s).select_from(
                db.trips.join(db.children, db.children.c.id == db.trips.c.child_id)
                .join(db.requests, db.requests.c.id == db.trips.c.request_id)).order_by(db.trips.c.updated_at.desc())
            if user["role"] == "guardian":
                q = q.where(db.trips.c.child_id.in_(own_children(conn, user)))
            rows = [dict(r) for r in conn.execute(q.limit(200)).mappings()]
        now = robot_time()
        for r in rows:
            r.pop("code", None)
            r["eta_s"] = _eta(r, now)
            r["window_open_in_s"] = round(r["window_open_s"] - now, 1)
        return rows

    @app.get("/api/trips/{trip_id}")
    async def trip(trip_id: str, user: Annotated[dict, Depends(role("guardian", "staff", "admin"))]):
        t = _trip_for(user, trip_id)
        t.pop("code", None)
        t["eta_s"] = _eta(t, robot_time())
        return t

    def _own_code(user, trip_id) -> dict:
        t = _trip_for(user, trip_id)
        if t["receiver_id"] != f"g_{user['username']}" or not t["code"]:
            raise HTTPException(403, "the hand-over code of this trip is for another receiver")
        return t

    @app.get("/api/trips/{trip_id}/code")
    async def trip_code(trip_id: str, request: Request, user: Annotated[dict, Depends(role("guardian"))]):
        t = _own_code(user, trip_id)
        audit(user, "show_code", True, trip_id, request)
        return {"trip_id": trip_id, "code": t["code"], "receiver_id": t["receiver_id"],
                "qr": _qr_payload(t["code"]), "qr_png": f"/api/trips/{trip_id}/code.png"}

    @app.get("/api/trips/{trip_id}/code.png")
    async def trip_code_png(trip_id: str, request: Request, user: Annotated[dict, Depends(role("guardian"))]):
        """The hand-over code as a QR image, made here (no third party sees the code)."""
        t = _own_code(user, trip_id)
        audit(user, "show_code_qr", True, trip_id, request)
        return Response(qr_png(_qr_payload(t["code"])), media_type="image/png")

    @app.post("/api/trips/{trip_id}/present_code")
    async def present_code(trip_id: str, body: CodeBody, request: Request,
                           user: Annotated[dict, Depends(role("guardian"))]):
        """The shuttle's code reader (demo site: the vehicle is simulated, so its reader is on this page)."""
        if not settings.demo:
            raise HTTPException(404, "only on a demo site: the shuttle's reader scans the code")
        t = _trip_for(user, trip_id)
        if not t["robot"]:
            raise HTTPException(409, "no shuttle on this trip yet")
        return command(user, request, t["robot"], "site_answer",
                       {"type": "code", "child": t["child_id"], "trip": trip_id, "guardian": t["receiver_id"],
                        "code": body.code})

    @app.post("/api/trips/{trip_id}/boarded")
    async def boarded(trip_id: str, request: Request, user: Annotated[dict, Depends(role("staff"))]):
        t = _trip_for(user, trip_id)
        if not t["robot"]:
            raise HTTPException(409, "no shuttle on this trip yet")
        return command(user, request, t["robot"], "site_answer",
                       {"type": "boarded", "child": t["child_id"], "trip": trip_id})

    # ------------------------------------------------------------------ fleet
    def _robot_of_kind(robot, kind):
        if robot not in settings.robots:
            raise HTTPException(404, f"no robot {robot!r}")
        if settings.robots[robot] != kind:
            raise HTTPException(403, f"{robot} is not a {kind} robot")

    @app.post("/api/robots/{robot}/stop")
    async def stop(robot: str, request: Request, user: Annotated[dict, Depends(role("staff", "farmer"))]):
        _robot_of_kind(robot, "care" if user["role"] == "staff" else "farm")
        return command(user, request, robot, "protective_stop", {})

    @app.post("/api/robots/{robot}/resume")
    async def resume(robot: str, request: Request, user: Annotated[dict, Depends(role("staff", "farmer"))]):
        _robot_of_kind(robot, "care" if user["role"] == "staff" else "farm")
        return command(user, request, robot, "resume", {})

    @app.post("/api/robots/{robot}/scout")
    async def scout(robot: str, body: ScoutBody, request: Request, user: Annotated[dict, Depends(role("farmer"))]):
        """The row robot's scouting job (ScoutField goal, signed by the bridge): ``rows`` rows, 0 = configured."""
        _robot_of_kind(robot, "farm")
        if bridge is None:
            res_ok, msg = False, "no robot link (server started without robots)"
        else:
            res = bridge.start_scouting(robot, body.rows, user["username"])
            res_ok, msg = res.ok, res.message
        audit(user, "command:scout_field", res_ok, f"{robot} rows={body.rows} -> {msg}", request)
        return {"ok": res_ok, "message": msg}

    @app.get("/api/events")
    async def events(user: Annotated[dict, Depends(role("staff", "farmer", "admin"))]):
        with engine.connect() as conn:
            rows = conn.execute(sa.select(db.events).order_by(db.events.c.id.desc()).limit(100)).mappings()
            return [dict(r) for r in rows]

    # ------------------------------------------------------------------ farm
    @app.get("/api/fields")
    async def list_fields(user: Annotated[dict, Depends(role("farmer", "admin"))]):
        with engine.connect() as conn:
            q = sa.select(db.fields)
            if user["role"] == "farmer":
                q = q.where(db.fields.c.owner_id == user["id"])
            return [{**dict(r), "polygon": json.loads(r["polygon_json"]), "holes": json.loads(r["holes_json"] or "[]"),
                     "ab_line": json.loads(r["ab_line_json"]) if r["ab_line_json"] else None}
                    for r in conn.execute(q).mappings()]

    @app.post("/api/fields/{field_id}/ab_line")
    async def set_ab_line(field_id: int, body: AbLineBody, request: Request,
                          user: Annotated[dict, Depends(role("farmer"))]):
        """The field's AB line (two points in the map frame, e.g. two clicks on the map; null clears it): the
        swath direction of its coverage jobs."""
        with engine.begin() as conn:
            f = conn.execute(sa.select(db.fields.c.owner_id).where(db.fields.c.id == field_id)).first()
            if f is None or f[0] != user["id"]:
                raise HTTPException(403 if f is not None else 404, "not your field" if f is not None
                                    else "no such field")
            conn.execute(db.fields.update().where(db.fields.c.id == field_id).values(
                ab_line_json=json.dumps(body.ab_line) if body.ab_line else ""))
            write_audit(conn, user["username"], "field_ab_line", True, f"{field_id} {body.ab_line}",
                        client_of(request))
        return {"id": field_id, "ab_line": body.ab_line}

    @app.post("/api/fields")
    async def upload_field(body: FieldBody, request: Request, user: Annotated[dict, Depends(role("farmer"))]):
        datum = None
        if settings.farm_world and settings.farm_world.get("datum"):
            d = settings.farm_world["datum"]
            datum = (float(d["lat_deg"]), float(d["lon_deg"]), float(d.get("alt_m", 0.0)))
        try:
            parsed = parse_field(body.content, body.format, datum)
        except FieldFormatError as exc:
            audit(user, "field_upload", False, str(exc), request)
            return JSONResponse({"detail": [{"loc": ["body", "content"], "msg": str(exc)}]}, status_code=422)
        from shapely.geometry import Polygon

        poly, holes = parsed["polygon"], parsed["holes"]
        area = Polygon(poly, holes).area        # what is worked: the boundary less its holes
        with engine.begin() as conn:
            res = conn.execute(db.fields.insert().values(
                owner_id=user["id"], name=body.name, polygon_json=json.dumps(poly), holes_json=json.dumps(holes),
                ab_line_json=json.dumps(body.ab_line) if body.ab_line else "", area_m2=area,
                created_at=time.time()))
            fid = int(res.inserted_primary_key[0])
            write_audit(conn, user["username"], "field_upload", True, f"{fid} {body.name} ({len(holes)} holes)",
                        client_of(request))
        return {"id": fid, "polygon": poly, "holes": holes, "area_m2": round(area, 1)}

    @app.get("/api/jobs")
    async def list_jobs(user: Annotated[dict, Depends(role("farmer", "admin"))]):
        with engine.connect() as conn:
            q = sa.select(db.jobs).order_by(db.jobs.c.id.desc())
            if user["role"] == "farmer":
                q = q.where(db.jobs.c.owner_id == user["id"])
            return [dict(r) for r in conn.execute(q).mappings()]

    @app.post("/api/jobs")
    async def start_job(body: JobBody, request: Request, user: Annotated[dict, Depends(role("farmer"))]):
        _robot_of_kind(body.robot, "farm")
        with engine.connect() as conn:
            f = conn.execute(sa.select(db.fields).where(db.fields.c.id == body.field_id)).mappings().first()
        if f is None or f["owner_id"] != user["id"]:
            raise HTTPException(403 if f is not None else 404, "not your field" if f is not None else "no such field")
        with engine.begin() as conn:
            jid = int(conn.execute(db.jobs.insert().values(
                field_id=f["id"], owner_id=user["id"], robot=body.robot, kind=body.kind, state="sending",
                progress=0.0, message="", created_at=time.time())).inserted_primary_key[0])
        kind = "cover_field" if body.kind == "coverage" else "scout_field"
        goal = {"job_id": jid, "polygon": json.loads(f["polygon_json"]), "holes": json.loads(f["holes_json"] or "[]")}
        if kind == "cover_field":   # swath direction: the field's AB line (None: the planner chooses)
            goal["ab_line"] = json.loads(f["ab_line_json"]) if f["ab_line_json"] else None
        res = command(user, request, body.robot, kind, goal)
        state = "sent" if res["ok"] else "not_started"
        with engine.begin() as conn:
            conn.execute(db.jobs.update().where(db.jobs.c.id == jid).values(state=state, message=res["message"]))
        return {"id": jid, "state": state, **res}

    @app.post("/api/jobs/{job_id}/{action}")
    async def job_action(job_id: int, action: Literal["pause", "resume", "refill"], request: Request,
                         user: Annotated[dict, Depends(role("farmer"))]):
        with engine.connect() as conn:
            j = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).mappings().first()
        if j is None or j["owner_id"] != user["id"]:
            raise HTTPException(403 if j is not None else 404, "not your job" if j is not None else "no such job")
        return command(user, request, j["robot"], "pause", {"pause": action in ("pause", "refill"),
                                                               "reason": action})

    @app.get("/api/jobs/{job_id}/record")
    async def job_record(job_id: int, user: Annotated[dict, Depends(role("farmer", "admin"))]):
        with engine.connect() as conn:
            j = conn.execute(sa.select(db.jobs, db.fields.c.name, db.fields.c.polygon_json, db.fields.c.holes_json,
                                       db.fields.c.area_m2)
                             .join(db.fields).where(db.jobs.c.id == job_id)).mappings().first()
        if j is None or (user["role"] == "farmer" and j["owner_id"] != user["id"]):
            raise HTTPException(403 if j is not None else 404, "not your job" if j is not None else "no such job")
        rings = [json.loads(j["polygon_json"]), *json.loads(j["holes_json"] or "[]")]
        return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [r + r[:1] for r in rings]},
                "properties": {"frame": "map", "field": j["name"], "job": job_id, "robot": j["robot"],
                               "kind": j["kind"], "state": j["state"], "progress": j["progress"],
                               "applied_area_m2": round(j["progress"] * j["area_m2"], 1)}}

    # ------------------------------------------------------------------ admin
    @app.get("/api/users")
    async def users(user: Annotated[dict, Depends(role("admin"))]):
        with engine.connect() as conn:
            rows = conn.execute(sa.select(db.users.c.id, db.users.c.username, db.users.c.display_name,
                                          db.users.c.role, db.users.c.locked_until)).mappings()
            return [dict(r) for r in rows]

    @app.post("/api/users")
    async def add_user(body: UserBody, request: Request, user: Annotated[dict, Depends(role("admin"))]):
        with engine.connect() as conn:
            known = {r[0] for r in conn.execute(sa.select(db.children.c.id).where(
                db.children.c.id.in_(body.children)))}
            exists = conn.execute(sa.select(db.users.c.id).where(db.users.c.username == body.username)).first()
        if set(body.children) - known:
            return JSONResponse({"detail": [{"loc": ["body", "children"], "msg": "unknown child id(s): "
                                             + ", ".join(sorted(set(body.children) - known))}]}, status_code=422)
        if exists:
            raise HTTPException(409, "user name taken")
        uid = await asyncio.to_thread(auth.create_user, body.username, body.password, body.role, body.display_name)
        with engine.begin() as conn:
            for c in body.children:
                conn.execute(db.guardians.insert().values(user_id=uid, child_id=c))
        audit(user, "user_add", True, f"{body.username} ({body.role})", request)
        return {"id": uid}

    # ------------------------------------------------------------------ admin: signing keys (agricare keys)
    def _key_dir() -> str:
        if not settings.key_dir:
            raise HTTPException(404, "no key directory on this site (agricare serve --key-dir)")
        return settings.key_dir

    def _key_view(k) -> dict:   # public parts only: the private key never leaves its file
        return {"key_id": k.key_id, "fingerprint": k.fingerprint, "public_key": k.public_key,
                "kinds": list(k.kinds), "revoked": k.revoked, "private_here": k.private_here}

    def _key_call(user, request, action, detail, fn):
        from agricare.core.security.keys import KeyFileError

        try:
            out = fn()
        except (KeyFileError, OSError) as exc:
            audit(user, action, False, f"{detail}: {exc}", request)
            raise HTTPException(409, str(exc)) from None
        audit(user, action, True, detail, request)
        return out

    @app.get("/api/keys")
    async def keys_list(user: Annotated[dict, Depends(role("admin"))]):
        from agricare.core.security.keys import KeyFileError, list_keys

        try:
            keys = list_keys(_key_dir())
        except (KeyFileError, OSError) as exc:
            raise HTTPException(409, str(exc)) from None
        return {"dir": settings.key_dir, "keys": [_key_view(k) for k in keys]}

    @app.post("/api/keys")
    async def keys_generate(body: KeyBody, request: Request, user: Annotated[dict, Depends(role("admin"))]):
        from agricare.core.security.keys import generate_key

        d = _key_dir()
        info, _key_path, _pub = _key_call(user, request, "key_generate", f"{body.key_id} kinds={body.kinds}",
                                          lambda: generate_key(d, body.key_id, body.kinds))
        return _key_view(info)

    @app.post("/api/keys/{key_id}/rotate")
    async def keys_rotate(key_id: str, body: RotateBody, request: Request,
                          user: Annotated[dict, Depends(role("admin"))]):
        from agricare.core.security.keys import rotate_key

        d = _key_dir()
        info, _key_path, _pub = _key_call(user, request, "key_rotate", f"{key_id} -> {body.new_id}",
                                          lambda: rotate_key(d, key_id, body.new_id))
        return _key_view(info)

    @app.post("/api/keys/{key_id}/revoke")
    async def keys_revoke(key_id: str, request: Request, user: Annotated[dict, Depends(role("admin"))]):
        from agricare.core.security.keys import revoke_key

        d = _key_dir()
        _key_call(user, request, "key_revoke", key_id, lambda: revoke_key(d, key_id))
        return {"key_id": key_id, "revoked": True}

    @app.get("/api/audit")
    async def audit_view(user: Annotated[dict, Depends(role("admin"))]):
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(db.audit).order_by(db.audit.c.id.desc()).limit(300))
                    .mappings()]

    # ------------------------------------------------------------------ live state
    def _eta(trip: dict, now: float) -> float | None:
        """Seconds until the shuttle is at the trip's next stop (pick-up, then drop-off).

        The plan's arrival time, or later when the shuttle is behind it: from its pose along the stops it
        still has to serve before this one (the plan's order, from the stop it is driving to; the town's
        streets are a grid, so Manhattan distance at :data:`NOMINAL_SPEED_MPS` plus each stop's service)."""
        if trip["state"] not in ("planned", "boarding", "on_board", "at_handover") or not trip["robot"]:
            return None
        if trip["state"] in ("boarding", "at_handover"):
            return 0.0
        action = "dropoff" if trip["state"] == "on_board" else "pickup"
        stops = (app.state.plan.get("solution") or {}).get("routes", {}).get(trip["robot"], [])
        keys = [(s["action"], s["request"]) for s in stops]
        me = (action, trip["id"])
        stop = stops[keys.index(me)] if me in keys else None
        planned = (stop["arrival_s"] - now) if stop else None
        live = None
        if bridge is not None:
            st = bridge.state.get(trip["robot"], {})
            pose, mission = st.get("pose"), st.get("mission") or {}
            current = tuple(str((mission.get("detail") or {}).get("current") or "").split(" ", 1))
            if pose is not None and stop is not None and current in keys and keys.index(current) <= keys.index(me):
                xy, d, service = pose[:2], 0.0, 0.0
                for s in stops[keys.index(current):keys.index(me) + 1]:
                    d += abs(s["xy"][0] - xy[0]) + abs(s["xy"][1] - xy[1])
                    xy = s["xy"]
                    if s is not stop:
                        service += STOP_SERVICE_S
                live = d / NOMINAL_SPEED_MPS + service
            elif pose is not None and current == me:   # driving to it, the plan does not list it (yet)
                target = places_xy.get(trip["to_place" if action == "dropoff" else "from_place"])
                if target:
                    live = (abs(pose[0] - target[0]) + abs(pose[1] - target[1])) / NOMINAL_SPEED_MPS
        if live is not None:
            return round(max(live, planned if planned is not None else 0.0), 1)
        return None if planned is None else round(max(0.0, planned), 1)

    def live_payload(user: dict, snap: dict) -> dict:
        r = user["role"]
        if r == "farmer":
            robots = {k: v for k, v in snap["robots"].items() if v["kind"] == "farm"}
            with engine.connect() as conn:
                jobs = [dict(j) for j in conn.execute(sa.select(db.jobs).where(db.jobs.c.owner_id == user["id"])
                                                      .order_by(db.jobs.c.id.desc()).limit(20)).mappings()]
            return {"robots": robots, "jobs": jobs}
        trips_view = _trips_view(user)
        if r == "guardian":
            mine = {t["robot"] for t in trips_view if t["state"] in ACTIVE_TRIP_STATES and t["robot"]}
            robots = {k: v for k, v in snap["robots"].items() if k in mine}
            return {"robots": robots, "trips": trips_view}
        robots = {k: v for k, v in snap["robots"].items() if v["kind"] == "care"}
        return {"robots": robots, "trips": trips_view[:50], "incidents": snap["incidents"]}

    cache: dict = {}   # user id -> (time, JSON text): one payload per user and update, however many pages

    async def _payload_text(user: dict, now: float, period: float) -> str:
        hit = cache.get(user["id"])
        if hit is not None and now - hit[0] < 0.5 * period:
            return hit[1]
        snap = bridge.snapshot() if bridge is not None else {"robots": {}, "incidents": [], "robot_time_s": now}
        payload = await asyncio.to_thread(live_payload, user, snap)
        text = json.dumps({"robot_time_s": snap.get("robot_time_s"), "link": bridge is not None, **payload},
                          default=_json)
        cache[user["id"]] = (now, text)
        return text

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        token = websocket.cookies.get(SESSION_COOKIE)
        user = auth.session(token)
        if user is None:
            await websocket.close(code=4401)
            return
        await websocket.accept()
        client = {"ws": websocket, "user": user}
        app.state.clients.add(id(client))
        period = 1.0 / settings.update_rate_hz
        seq = 0
        next_t = time.monotonic()
        try:
            while True:
                t0 = time.time()
                if seq % max(1, int(5.0 / period)) == 0 and seq and auth.session(token) is None:
                    await websocket.close(code=4401)   # logged out or expired meanwhile
                    break
                body = await _payload_text(user, t0, period)
                seq += 1
                await websocket.send_text(f'{{"seq": {seq}, "t_sent": {time.time():.6f}, {body[1:]}')
                next_t += period   # a fixed rate (no drift); a page that fell behind skips, never bursts
                now_m = time.monotonic()
                if next_t < now_m - period:
                    next_t = now_m
                await asyncio.sleep(max(0.0, next_t - now_m))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            app.state.clients.discard(id(client))

    # ------------------------------------------------------------------ robot events -> database
    def on_event(kind: str, data: dict) -> None:
        try:
            _on_event(kind, data)
        except Exception as exc:  # never kill the bridge thread; keep the reason
            with engine.begin() as conn:
                _event(conn, data.get("robot", "") if isinstance(data, dict) else "", "error", "app_error",
                       f"{kind}: {type(exc).__name__}: {exc}")

    def _set_trip(conn, trip_id, **values):
        return conn.execute(db.trips.update().where(db.trips.c.id == trip_id).values(updated_at=time.time(),
                                                                                      **values)).rowcount

    def _on_event(kind: str, data: dict) -> None:
        if kind == "dispatch_plan":
            app.state.plan = data
            routes = (data.get("solution") or {}).get("routes") or {}
            unserved = {u["request"]: u["reason"] for u in (data.get("solution") or {}).get("unserved") or []}
            with engine.begin() as conn:
                for robot, stops in routes.items():
                    for s in stops:
                        conn.execute(db.trips.update().where(db.trips.c.id == s["request"])
                                     .where(db.trips.c.state == "requested")
                                     .values(state="planned", robot=robot, updated_at=time.time()))
                for rid, reason in unserved.items():
                    if _set_trip(conn, rid, state="unserved"):
                        _event(conn, "", "warn", "unserved", f"{rid}: {reason}", rid)
        elif kind == "site_request":
            with engine.begin() as conn:
                state = "boarding" if data.get("type") == "boarding" else "at_handover"
                if _set_trip(conn, data.get("trip", ""), state=state, robot=data["robot"]):
                    _event(conn, data["robot"], "info", state, f"{data.get('child')} at {data.get('place')}",
                           data.get("trip", ""))
        elif kind == "mission_status":
            onboard = [str(c) for c in (data.get("detail") or {}).get("onboard") or []]   # child ids
            with engine.begin() as conn:
                if onboard:
                    conn.execute(db.trips.update().where(db.trips.c.robot == data["robot"])
                                 .where(db.trips.c.child_id.in_(onboard))
                                 .where(db.trips.c.state.in_(("planned", "boarding")))
                                 .values(state="on_board", updated_at=time.time()))
                if data.get("mission") != "care":
                    conn.execute(db.jobs.update().where(db.jobs.c.robot == data["robot"])
                                 .where(db.jobs.c.state.in_(("sent", "running")))
                                 .values(progress=float(data.get("progress", 0.0)),
                                         state="done" if data.get("state") == "done" else "running"))
        elif kind == "handover":
            with engine.begin() as conn:
                if data.get("action") == "release" and data.get("accepted"):
                    _set_trip(conn, data["trip"], state="delivered", eta_s=None)
                    _event(conn, data["robot"], "info", "delivered",
                           f"{data['child']} handed over to {data['guardian']}", data["trip"])
                elif not data.get("accepted"):
                    _event(conn, data["robot"], "warn", "handover_refused",
                           f"{data['child']}: {data.get('reason')}", data["trip"])
        elif kind == "notification":
            if data.get("kind") == "replan_requested" and data.get("robot"):
                _replan_soon(str(data["robot"]), str(data.get("message", "")))
            if data.get("level", "info") != "info":
                with engine.begin() as conn:
                    _event(conn, data.get("robot", ""), data.get("level", "warn"), data.get("kind", "note"),
                           str(data.get("message", ""))[:900], str(data.get("trip", "") or ""))
        elif kind in ("goal_feedback", "goal_result"):
            if data.get("job") is None:
                return
            with engine.begin() as conn:
                if kind == "goal_feedback":
                    conn.execute(db.jobs.update().where(db.jobs.c.id == data["job"]).values(
                        state="running", progress=float(data.get("progress", 0.0))))
                else:
                    conn.execute(db.jobs.update().where(db.jobs.c.id == data["job"]).values(
                        state="done" if data["success"] else "failed", message=str(data.get("message", ""))[:500]))
        elif kind in ("safety", "bridge_error"):
            with engine.begin() as conn:
                _event(conn, data.get("robot", ""), "warn", kind,
                       f"{data.get('state', '')} {data.get('reason', data.get('message', ''))}".strip())

    replan_due: dict[str, float] = {}

    def _replan_soon(robot: str, reason: str) -> None:
        """A shuttle refused a plan or dropped stops and asks for a re-plan: after its mission status has
        caught up (what is on board, what is done), send the fleet's state and a ``replan`` to the
        dispatcher. At most once per :data:`REPLAN_MIN_PERIOD_S` per shuttle; another request after that
        (the new plan was refused again) gets another try."""
        now = time.monotonic()
        if now < replan_due.get(robot, 0.0):
            return
        replan_due[robot] = now + REPLAN_MIN_PERIOD_S
        with engine.begin() as conn:
            _event(conn, robot, "warn", "replan_requested", reason)

        def go():
            if bridge is None:
                return
            try:
                _fleet_state_to_dispatcher(SYSTEM_USER, None)
                command(SYSTEM_USER, None, "", "dispatch", {"type": "replan", "reason": f"{robot}: {reason}",
                                                             "vehicle": robot, "now_s": robot_time()})
            except Exception as exc:  # keep the reason; never kill the timer thread silently
                with engine.begin() as conn:
                    _event(conn, robot, "error", "app_error", f"replan: {type(exc).__name__}: {exc}")

        timer = threading.Timer(1.0, go)   # one status period: the shuttle's status shows the new boarding
        timer.daemon = True
        timer.start()

    app.state.on_event = on_event
    return app


def _event(conn, robot, level, kind, message, trip_id="") -> None:
    conn.execute(db.events.insert().values(t=time.time(), robot=robot, level=level, kind=kind,
                                           message=str(message)[:1000], trip_id=trip_id or ""))


def _json(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


def _qr_payload(code: str) -> str:
    """What the QR code carries: the code itself, upper case without dashes (QR alphanumeric mode; the
    shuttle's :func:`agricare.core.missions.handover.parse_code` reads it either way)."""
    return code.replace("-", "").upper()


def qr_png(payload: str, scale: int = 8) -> bytes:
    """PNG of a QR code (error correction M, 4-module quiet zone) carrying ``payload``."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(payload, error="m", boost_error=False).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def _places(settings: AppSettings) -> dict[str, tuple[float, float]]:
    out = {}
    for p in (settings.care_world or {}).get("places") or []:
        b = p.get("boarding")
        if b:
            out[str(p["name"])] = (float(b["x_m"]), float(b["y_m"]))
    return out


def _sync_places(engine, world) -> None:
    with engine.begin() as conn:
        for p in world.get("places") or []:
            b = p.get("boarding") or {}
            xy = (b.get("x_m", p["xy"][0]), b.get("y_m", p["xy"][1]))
            if conn.execute(sa.select(db.places.c.name).where(db.places.c.name == p["name"])).first() is None:
                conn.execute(db.places.insert().values(name=p["name"], kind=p.get("kind", ""), x_m=xy[0], y_m=xy[1]))
