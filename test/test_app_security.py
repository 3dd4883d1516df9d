"""Operator app security: sessions, roles, owners, CSRF, escaping, lock-out, body validation (no robots)."""

import json
import re
import secrets

import pytest

fastapi = pytest.importorskip("fastapi", reason="fastapi not installed (pip install -r requirements.txt)")
pytest.importorskip("argon2", reason="argon2-cffi not installed")
pytest.importorskip("httpx", reason="httpx not installed (TestClient needs it)")

import sqlalchemy as sa  # noqa: E402
from shapely.geometry import Polygon  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from agricare.app import db, demo, robots  # noqa: E402
from agricare.app.security import AuthParams  # noqa: E402
from agricare.app.server import STATIC, AppSettings, create_app  # noqa: E402
from harness import decode_qr  # noqa: E402

PW = {"guardian": "guardian-pass-1", "guardian2": "guardian-pass-2", "staff": "staff-pass-123",
      "farmer": "farmer-pass-123", "admin": "admin-pass-123"}
# argon2 cost is not under test here; every TestClient comes from one address: the per-address limit is tested apart
FAST = AuthParams(argon2_time_cost=1, argon2_memory_kib=8192, lockout_s=600.0, max_logins_per_client_per_min=10000)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    url = db.database_url(tmp_path_factory.mktemp("appdb"))
    settings = AppSettings(database_url=url, care_world=robots.world_of("care"), farm_world=robots.world_of("farm"),
                           robots={"shuttle_1": "care", "tractor": "farm"}, auth=FAST)
    a = create_app(settings, bridge=None)
    demo.seed(a.state.auth, PW)
    return a


def login(app, user, password=None):
    c = TestClient(app)
    r = c.post("/api/login", json={"username": user, "password": password or PW[user]})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = c.get("/api/me").json()["csrf"]
    return c


def count(app, table):
    with app.state.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def _fill(path):
    return re.sub(r"\{[^}]+\}", lambda m: {"{area}": "care", "{action}": "pause"}.get(m.group(0), "1"), path)


def test_every_api_route_needs_a_session(app):
    c = TestClient(app)
    seen = 0
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/") or path == "/api/login":
            continue
        for method in route.methods:
            r = c.request(method, _fill(path), json={})
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            seen += 1
    assert seen >= 20
    cookie_less = TestClient(app)
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as exc:   # the WebSocket refuses without a session
        with cookie_less.websocket_connect("/ws") as ws:
            ws.receive_text()
    assert exc.value.code == 4401


def test_session_cookie_is_httponly_samesite(app):
    c = TestClient(app)
    r = c.post("/api/login", json={"username": "staff", "password": PW["staff"]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    with app.state.engine.connect() as conn:   # the database keeps a digest, never the token
        stored = conn.execute(sa.select(db.sessions.c.token_hash)).scalars().all()
    token = r.cookies.get("agricare_session")
    assert token and token not in stored and len(stored) >= 1


@pytest.mark.parametrize("user,method,path", [
    ("farmer", "GET", "/api/trips"), ("farmer", "POST", "/api/robots/shuttle_1/stop"),
    ("guardian", "GET", "/api/fields"), ("guardian", "POST", "/api/robots/shuttle_1/stop"),
    ("guardian", "GET", "/api/map/farm"), ("staff", "GET", "/api/users"), ("staff", "GET", "/api/audit"),
    ("farmer", "POST", "/api/urgent"), ("guardian", "POST", "/api/users"), ("staff", "POST", "/api/jobs"),
    ("staff", "POST", "/api/robots/tractor/scout"), ("guardian", "POST", "/api/robots/tractor/scout"),
    ("staff", "GET", "/api/keys"), ("farmer", "POST", "/api/keys"), ("guardian", "POST", "/api/keys/k1/revoke"),
    ("staff", "POST", "/api/keys/k1/rotate"), ("staff", "POST", "/api/fields/1/ab_line"),
    ("staff", "GET", "/api/trips/x/code.png"), ("farmer", "GET", "/api/trips/x/code.png"),
])
def test_wrong_role_is_403(app, user, method, path):
    c = login(app, user)
    assert c.request(method, path, json={}).status_code == 403


def test_other_guardians_child_is_403(app):
    g1, g2 = login(app, "guardian"), login(app, "guardian2")
    r = g1.post("/api/requests", json={"child_id": "c2", "kind": "pickup", "window_start_min": 0,
                                       "window_length_min": 15})
    assert r.status_code == 200, r.text
    trip = r.json()["trip_id"]
    assert g1.get(f"/api/trips/{trip}").status_code == 200
    assert g2.get(f"/api/trips/{trip}").status_code == 403
    assert g2.get(f"/api/trips/{trip}/code").status_code == 403
    assert g2.post(f"/api/trips/{trip}/cancel").status_code == 403
    assert all(t["child_id"] == "c3" for t in g2.get("/api/trips").json())
    before = count(app, db.requests)
    r = g2.post("/api/requests", json={"child_id": "c2", "kind": "pickup", "window_start_min": 0,
                                       "window_length_min": 15})
    assert r.status_code == 403 and count(app, db.requests) == before
    assert [c["id"] for c in g2.get("/api/children").json()] == ["c3"]


def test_post_without_csrf_token_is_refused_and_writes_nothing(app):
    c = login(app, "guardian")
    body = {"child_id": "c2", "kind": "dropoff", "window_start_min": 5, "window_length_min": 10}
    before = count(app, db.requests)
    for headers in ({"X-CSRF-Token": ""}, {"X-CSRF-Token": "forged"}):
        r = c.post("/api/requests", json=body, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert count(app, db.requests) == before
    assert c.post("/api/requests", json=body).status_code == 200   # with the token it works
    assert count(app, db.requests) == before + 1


def test_script_in_a_name_stays_text(app):
    a = login(app, "admin")
    name = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    assert a.post("/api/children", json={"id": "c_x", "name": name, "home_place": "home_5"}).status_code == 200
    r = a.get("/api/children")
    assert r.headers["content-type"].startswith("application/json")
    assert name in [c["name"] for c in r.json()]           # stored and returned as data, unchanged
    page = TestClient(app).get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    js = (STATIC / "app.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
    assert "textContent" in js


def test_ten_wrong_passwords_lock_the_login(app):
    a = login(app, "admin")
    assert a.post("/api/users", json={"username": "victim", "display_name": "V", "password": "right-password-1",
                                      "role": "guardian"}).status_code == 200
    c = TestClient(app)
    for i in range(10):
        r = c.post("/api/login", json={"username": "victim", "password": f"wrong-{i}"})
        assert r.status_code in (401, 423)
    assert r.status_code == 423 and r.json()["locked"]
    r = c.post("/api/login", json={"username": "victim", "password": "right-password-1"})
    assert r.status_code == 423 and "locked" in r.json()["detail"]
    audit = a.get("/api/audit").json()
    assert sum(1 for e in audit if e["username"] == "victim" and e["action"] == "login" and not e["ok"]) == 11


@pytest.mark.parametrize("body,field", [
    ({"child_id": "c2", "kind": "pickup", "window_start_min": 0, "window_length_min": -5}, "window_length_min"),
    ({"child_id": "c2", "kind": "teleport", "window_start_min": 0, "window_length_min": 5}, "kind"),
    ({"child_id": "c2", "kind": "pickup", "window_length_min": 5}, "window_start_min"),
    ({"child_id": "c2", "kind": "pickup", "window_start_min": 0, "window_length_min": 5, "robot": "x"}, "robot"),
])
def test_bad_body_is_422_naming_the_field_and_writes_nothing(app, body, field):
    c = login(app, "guardian")
    before = (count(app, db.requests), count(app, db.trips))
    r = c.post("/api/requests", json=body)
    assert r.status_code == 422
    assert field in json.dumps(r.json()["detail"])
    assert (count(app, db.requests), count(app, db.trips)) == before


def test_field_upload_geojson_kml_and_bad_boundary(app):
    f = login(app, "farmer")
    lat0, lon0 = 36.1002, 140.1004
    ring = [[lon0, lat0], [lon0 + 0.0004, lat0], [lon0 + 0.0004, lat0 + 0.0003], [lon0, lat0 + 0.0003], [lon0, lat0]]
    gj = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    r = f.post("/api/fields", json={"name": "north", "format": "geojson", "content": json.dumps(gj)})
    assert r.status_code == 200, r.text
    xs = [p[0] for p in r.json()["polygon"]]
    assert abs(min(xs)) < 0.5 and 35.0 < max(xs) < 37.0      # 0.0004 deg of longitude at 36.1 N is ~36 m
    kml = ("<kml xmlns='http://www.opengis.net/kml/2.2'><Placemark><Polygon><outerBoundaryIs><LinearRing>"
           "<coordinates>" + " ".join(f"{lo},{la},0" for lo, la in ring) + "</coordinates>"
           "</LinearRing></outerBoundaryIs></Polygon></Placemark></kml>")
    r2 = f.post("/api/fields", json={"name": "north kml", "format": "kml", "content": kml})
    assert r2.status_code == 200 and abs(r2.json()["area_m2"] - r.json()["area_m2"]) < 1.0
    before = count(app, db.fields)
    bow = {"type": "Polygon", "properties": {"frame": "map"},
           "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    r3 = f.post("/api/fields", json={"name": "bow tie", "format": "geojson", "content": json.dumps(bow)})
    assert r3.status_code == 422 and "content" in json.dumps(r3.json()) and count(app, db.fields) == before
    other = login(app, "admin").get("/api/fields").json()
    assert {x["name"] for x in other} >= {"north", "north kml"}


def test_field_upload_keeps_holes_and_obstacles(app):
    """A pond in the uploaded field (a GeoJSON interior ring, a KML innerBoundaryIs, an obstacle feature) is kept as
    a hole: listed with the field and taken off its area; before, the outer ring alone was kept."""
    f = login(app, "farmer")
    outer = [[0, 0], [60, 0], [60, 40], [0, 40], [0, 0]]
    pond = [[20, 10], [30, 10], [30, 20], [20, 20], [20, 10]]
    gj = {"type": "Feature", "properties": {"frame": "map"},
          "geometry": {"type": "Polygon", "coordinates": [outer, pond]}}
    r = f.post("/api/fields", json={"name": "pond", "format": "geojson", "content": json.dumps(gj)})
    assert r.status_code == 200, r.text
    assert len(r.json()["holes"]) == 1 and r.json()["area_m2"] == pytest.approx(60 * 40 - 10 * 10, abs=0.1)
    barn = [[50, -5], [65, -5], [65, 10], [50, 10], [50, -5]]        # over the edge: clipped, a notch
    def feat(kind, ring):
        return {"type": "Feature", "properties": {"kind": kind}, "geometry": {"type": "Polygon", "coordinates": [ring]}}

    fc = {"type": "FeatureCollection", "properties": {"frame": "map"},
          "features": [feat("boundary", outer), feat("obstacle", pond), feat("obstacle", barn)]}
    r2 = f.post("/api/fields", json={"name": "pond+barn", "format": "geojson", "content": json.dumps(fc)})
    assert r2.status_code == 200, r2.text
    assert len(r2.json()["holes"]) == 1 and r2.json()["area_m2"] == pytest.approx(2400 - 100 - 10 * 10, abs=0.1)
    lat0, lon0 = 36.1002, 140.1004
    ll = [[lon0, lat0], [lon0 + 0.0006, lat0], [lon0 + 0.0006, lat0 + 0.0004], [lon0, lat0 + 0.0004], [lon0, lat0]]
    hole = [[lon0 + 0.0002, lat0 + 0.0001], [lon0 + 0.0003, lat0 + 0.0001], [lon0 + 0.0003, lat0 + 0.0002],
            [lon0 + 0.0002, lat0 + 0.0002], [lon0 + 0.0002, lat0 + 0.0001]]
    coords = lambda ring: " ".join(f"{lo},{la},0" for lo, la in ring)  # noqa: E731
    kml = ("<kml xmlns='http://www.opengis.net/kml/2.2'><Placemark><Polygon><outerBoundaryIs><LinearRing><coordinates>"
           + coords(ll) + "</coordinates></LinearRing></outerBoundaryIs><innerBoundaryIs><LinearRing><coordinates>"
           + coords(hole) + "</coordinates></LinearRing></innerBoundaryIs></Polygon></Placemark></kml>")
    r3 = f.post("/api/fields", json={"name": "pond kml", "format": "kml", "content": kml})
    assert r3.status_code == 200, r3.text
    assert len(r3.json()["holes"]) == 1 and 70.0 < Polygon(r3.json()["holes"][0]).area < 110.0   # ~9 x 11 m
    listed = {x["name"]: x for x in f.get("/api/fields").json()}
    assert [len(listed[n]["holes"]) for n in ("pond", "pond+barn", "pond kml")] == [1, 1, 1]
    ditch = [[28, -5], [32, -5], [32, 45], [28, 45], [28, -5]]      # splits the field: refused, nothing stored
    bad = dict(fc, features=[feat("boundary", outer), feat("obstacle", ditch)])
    before = count(app, db.fields)
    r4 = f.post("/api/fields", json={"name": "split", "format": "geojson", "content": json.dumps(bad)})
    assert r4.status_code == 422 and "cuts the field in two" in r4.text and count(app, db.fields) == before


def test_field_upload_does_not_resolve_xml_entities(app, tmp_path):
    """The KML upload goes through lxml with entities and the network off: an external entity naming a local file
    (XXE) is not read into the field, the upload is refused and nothing of the file comes back."""
    secret = tmp_path / "secret.txt"
    secret.write_text("140.1004,36.1002,0 140.1008,36.1002,0 140.1008,36.1005,0 140.1004,36.1002,0 TOPSECRET")
    kml = (f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           "<kml xmlns='http://www.opengis.net/kml/2.2'><Placemark><Polygon><outerBoundaryIs><LinearRing>"
           "<coordinates>&xxe;</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></kml>")
    f = login(app, "farmer")
    before = count(app, db.fields)
    r = f.post("/api/fields", json={"name": "xxe", "format": "kml", "content": kml})
    assert r.status_code == 422 and "TOPSECRET" not in r.text and count(app, db.fields) == before, r.text


def test_commands_without_robot_link_say_so_and_are_audited(app):
    s = login(app, "staff")
    r = s.post("/api/robots/shuttle_1/stop")
    assert r.status_code == 200 and r.json()["ok"] is False and "no robot link" in r.json()["message"]
    assert s.post("/api/robots/tractor/stop").status_code == 403   # staff stop care shuttles only
    assert s.post("/api/robots/nobody/stop").status_code == 404
    f = login(app, "farmer")
    r = f.post("/api/robots/tractor/scout", json={"rows": 4})
    assert r.status_code == 200 and r.json()["ok"] is False and "no robot link" in r.json()["message"]
    assert f.post("/api/robots/shuttle_1/scout", json={"rows": 4}).status_code == 403   # a farm robot's job
    assert f.post("/api/robots/tractor/scout", json={"rows": -1}).status_code == 422
    audit = login(app, "admin").get("/api/audit").json()
    assert any(e["action"] == "command:protective_stop" and e["username"] == "staff" for e in audit)
    assert any(e["action"] == "command:scout_field" and e["username"] == "farmer" for e in audit)


def test_migrations_are_versioned_and_idempotent(tmp_path):
    url = db.database_url(tmp_path)
    engine = db.connect(url)
    assert db.current_version(engine) == db.MIGRATIONS[-1][0]
    assert db.migrate(engine) == []
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"users", "roles", "children", "guardians", "places", "requests", "trips", "events", "fields",
            "jobs", "audit"} <= tables


class _RecordingBridge:
    """Stands in for the rclpy bridge: records what the routes send (the robots are not needed here)."""

    def __init__(self):
        from agricare.app.bridge import CommandResult, sign_envelope

        self.sent = []
        self.state = {}
        self._result, self._sign = CommandResult, sign_envelope

    def robot_time_s(self):
        return 100.0

    def snapshot(self):
        return {"robots": {}, "incidents": [], "robot_time_s": 100.0}

    def send_command(self, robot, kind, body, issuer):
        env = self._sign({"robot": robot, "kind": kind, "body": body, "issuer": issuer},
                         lambda k, target, payload: {"kind": k, "target": target, "payload": payload, "sig": "x"})
        self.sent.append(env)
        return self._result(True, "sent", env)


def test_every_command_goes_through_the_one_signing_send(tmp_path):
    bridge = _RecordingBridge()
    settings = AppSettings(database_url=db.database_url(tmp_path), care_world=robots.world_of("care"),
                           farm_world=robots.world_of("farm"), robots={"shuttle_1": "care", "tractor": "farm"},
                           auth=FAST, demo=True, handover_key=secrets.token_bytes(32))
    a = create_app(settings, bridge=bridge)
    demo.seed(a.state.auth, PW)
    g, s = login(a, "guardian"), login(a, "staff")
    trip = g.post("/api/requests", json={"child_id": "c2", "kind": "pickup", "window_start_min": 1,
                                         "window_length_min": 10}).json()["trip_id"]
    a.state.on_event("dispatch_plan", {"solution": {"routes": {"shuttle_1": [
        {"request": trip, "action": "pickup", "arrival_s": 160.0, "start_s": 160.0, "xy": [192.0, 101.8]}]}}})
    assert g.get(f"/api/trips/{trip}").json()["state"] == "planned"
    assert g.get(f"/api/trips/{trip}").json()["eta_s"] == 60.0          # planned arrival - robot clock
    assert s.post("/api/robots/shuttle_1/stop").json()["ok"]
    assert s.post("/api/robots/shuttle_1/resume").json()["ok"]
    code = g.get(f"/api/trips/{trip}/code").json()["code"]
    assert g.post(f"/api/trips/{trip}/present_code", json={"code": code}).json()["ok"]
    kinds = [e["kind"] for e in bridge.sent]
    assert kinds == ["dispatch", "protective_stop", "resume", "site_answer"]
    assert all(e["signed"] is not None for e in bridge.sent)
    assert bridge.sent[1]["signed"]["payload"] == {"stop": True} and bridge.sent[2]["signed"]["payload"] == {
        "stop": False}
    req = bridge.sent[0]["body"]["request"]
    assert req["pickup_window"] == [160.0, 760.0] and req["guardians"] == ["g_guardian"]
    assert bridge.sent[3]["body"]["code"] == code and bridge.sent[3]["body"]["guardian"] == "g_guardian"
    from agricare.core.missions.handover import HandoverVerifier

    verdict = HandoverVerifier(settings.handover_key).verify(code, "c2", "g_guardian", trip, now_s=200.0)
    assert verdict.accepted, verdict       # the shuttle's verifier accepts it for this child, receiver and trip
    assert not HandoverVerifier(settings.handover_key).verify(code, "c3", "g_guardian", trip, now_s=200.0).accepted
    a.state.on_event("handover", {"robot": "shuttle_1", "trip": trip, "child": "c2", "guardian": "g_guardian",
                                  "action": "release", "accepted": True, "reason": "ok"})
    assert g.get(f"/api/trips/{trip}").json()["state"] == "delivered"


def test_unsigned_without_a_signer_and_real_signature_when_available():
    from agricare.app.bridge import sign_envelope

    env = {"robot": "shuttle_1", "kind": "protective_stop", "body": {}, "issuer": "staff"}
    assert sign_envelope(env, None)["signed"] is None
    commands = pytest.importorskip("agricare.core.security.commands",
                                   reason="the signed-command scheme (core/security/commands.py) is not here")
    from agricare.core.security.keys import SigningKey, TrustList

    key = SigningKey.generate("site-app")
    signed = sign_envelope(env, lambda kind, target, payload: commands.sign_command(payload, key, kind=kind,
                                                                                    target=target))["signed"]
    cmd = commands.verify_command(commands.envelope_to_text(signed), TrustList().trust(key),
                                  kinds=["protective_stop"], target="shuttle_1")
    assert cmd.payload == {"stop": True}


def _pg_bin(name):
    import glob
    import os
    import shutil

    found = shutil.which(name)
    if found:
        return os.path.realpath(found)
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return cands[-1] if cands else None


@pytest.fixture(scope="module")
def postgres_url():
    """AGRICARE_TEST_POSTGRES_URL, else a throwaway cluster (initdb + pg_ctl in a temporary directory, Unix
    socket only, trust auth, as user ``nobody`` when run as root: PostgreSQL refuses to run as root)."""
    import os
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    url = os.environ.get("AGRICARE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    pytest.importorskip("psycopg", reason="no PostgreSQL driver (pip install -r requirements.txt: psycopg[binary])")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (Debian: apt-get install postgresql, as make sysdeps does) and "
                    "no AGRICARE_TEST_POSTGRES_URL")
    tmp = tempfile.mkdtemp(prefix="agricare-pg-")
    prefix = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            pytest.skip("running as root and neither runuser nor setpriv is here to start PostgreSQL as 'nobody'")
        nobody = pwd.getpwnam("nobody")
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        prefix = [runuser, "-u", "nobody", "--"] if runuser.endswith("runuser") else [
            runuser, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(tmp, "data")
    t0 = time.monotonic()
    env = dict(os.environ, LC_ALL="C", LANG="C")
    r = subprocess.run(prefix + [initdb, "-D", data, "-U", "agricare", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"initdb failed: {r.stderr[-800:]}")
    r = subprocess.run(prefix + [pg_ctl, "-D", data, "-l", os.path.join(tmp, "log"), "-w", "-t", "60", "-o",
                                 f"-k {tmp} -p {port} -c listen_addresses='' -c fsync=off", "start"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
    if r.returncode != 0:
        log = open(os.path.join(tmp, "log")).read()[-800:] if os.path.exists(os.path.join(tmp, "log")) else ""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {r.stderr[-800:]} {log}")
    print(f"throwaway PostgreSQL ({os.path.dirname(initdb)}) up in {time.monotonic() - t0:.1f} s")
    try:
        yield f"postgresql://agricare@/postgres?host={tmp}&port={port}"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True,
                       timeout=60, env=env, cwd=tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def test_postgresql_migrations_and_login(postgres_url):
    engine = db.connect(postgres_url)
    assert db.current_version(engine) == db.MIGRATIONS[-1][0]
    assert db.migrate(engine) == []                              # idempotent
    assert engine.dialect.name == "postgresql"
    from agricare.app.security import Auth

    auth = Auth(engine, FAST)
    name = "pg_" + secrets.token_hex(4)
    auth.create_user(name, "a-long-password", "staff")
    token, user = auth.login(name, "a-long-password")
    assert auth.session(token)["username"] == name


def test_postgresql_app_flows(postgres_url, tmp_path):
    """The app on PostgreSQL: roles, a guardian's trip with its code, a field with its AB line, keys, audit."""
    import sqlalchemy as sa_

    engine = sa_.create_engine(postgres_url)
    schema = "t_" + secrets.token_hex(4)            # a fresh schema: this test's tables only
    with engine.begin() as conn:
        conn.execute(sa_.text(f"CREATE SCHEMA {schema}"))
    url = postgres_url + f"&options=-csearch_path%3D{schema}"
    a, bridge = _recording_app(tmp_path, database_url=url, key_dir=str(tmp_path / "keys"))
    assert a.state.engine.dialect.name == "postgresql"
    g, g2, f, adm = login(a, "guardian"), login(a, "guardian2"), login(a, "farmer"), login(a, "admin")
    trip = g.post("/api/requests", json={"child_id": "c2", "kind": "pickup", "window_start_min": 1,
                                         "window_length_min": 10}).json()["trip_id"]
    assert g.get(f"/api/trips/{trip}/code.png").status_code == 200 and g2.get(f"/api/trips/{trip}").status_code == 403
    gj = {"type": "Feature", "properties": {"frame": "map"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 30], [0, 30], [0, 0]]]}}
    fid = f.post("/api/fields", json={"name": "A", "format": "geojson", "content": json.dumps(gj)}).json()["id"]
    assert f.post(f"/api/fields/{fid}/ab_line", json={"ab_line": [[0, 0], [0, 10]]}).status_code == 200
    assert adm.post("/api/keys", json={"key_id": "pg-site"}).status_code == 200
    with a.state.engine.connect() as conn:
        assert conn.execute(sa_.text("SELECT current_schema()")).scalar() == schema
        assert conn.execute(sa.select(db.fields.c.ab_line_json).where(db.fields.c.id == fid)).scalar() == \
            "[[0.0, 0.0], [0.0, 10.0]]"
    acts = {e["action"] for e in adm.get("/api/audit").json()}
    assert {"login", "field_upload", "field_ab_line", "key_generate", "show_code_qr"} <= acts


def test_login_attempts_per_address_are_limited(tmp_path):
    import dataclasses

    settings = AppSettings(database_url=db.database_url(tmp_path), care_world=robots.world_of("care"),
                           auth=dataclasses.replace(FAST, max_logins_per_client_per_min=5))
    a = create_app(settings, bridge=None)
    demo.seed(a.state.auth, PW)
    c = TestClient(a)
    codes = [c.post("/api/login", json={"username": f"nobody{i}", "password": "x"}).status_code for i in range(5)]
    assert codes == [401] * 5
    r = c.post("/api/login", json={"username": "staff", "password": PW["staff"]})   # even the right password
    assert r.status_code == 429 and "agricare_session" not in r.cookies


def _recording_app(tmp_path, **kw):
    bridge = _RecordingBridge()
    kw.setdefault("database_url", db.database_url(tmp_path))
    settings = AppSettings(care_world=robots.world_of("care"), farm_world=robots.world_of("farm"),
                           robots={"shuttle_1": "care", "tractor": "farm"}, auth=FAST, demo=True,
                           handover_key=secrets.token_bytes(32), **kw)
    a = create_app(settings, bridge=bridge)
    demo.seed(a.state.auth, PW)
    return a, bridge


def test_handover_code_as_qr_png_decodes_to_the_code(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="opencv not installed (decodes the QR code back)")
    import numpy as np

    a, _ = _recording_app(tmp_path)
    g, g2 = login(a, "guardian"), login(a, "guardian2")
    trip = g.post("/api/requests", json={"child_id": "c2", "kind": "pickup", "window_start_min": 1,
                                         "window_length_min": 10}).json()["trip_id"]
    shown = g.get(f"/api/trips/{trip}/code").json()
    r = g.get(shown["qr_png"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    text = decode_qr(cv2, img)
    assert text, "no QR code found in the PNG"
    assert text == shown["code"].replace("-", "").upper()
    from agricare.core.missions.handover import HandoverVerifier

    # what a reader scans is accepted by the shuttle's verifier for this child, receiver and trip
    assert HandoverVerifier(a.state.settings.handover_key).verify(text, "c2", "g_guardian", trip, now_s=200.0).accepted
    assert g2.get(f"/api/trips/{trip}/code.png").status_code == 403          # another guardian
    assert TestClient(a).get(f"/api/trips/{trip}/code.png").status_code == 401
    audit = login(a, "admin").get("/api/audit").json()
    assert any(e["action"] == "show_code_qr" and e["username"] == "guardian" for e in audit)


def test_ab_line_is_saved_with_the_field_and_sent_with_the_coverage_job(tmp_path):
    a, bridge = _recording_app(tmp_path)
    f = login(a, "farmer")
    gj = {"type": "Feature", "properties": {"frame": "map"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 30], [0, 30], [0, 0]]]}}
    fid = f.post("/api/fields", json={"name": "A", "format": "geojson", "content": json.dumps(gj)}).json()["id"]
    before = count(a, db.audit)
    for bad in ([[1.0, 1.0], [1.2, 1.1]], [[0, 0]], [[0, 0], [1, 2], [3, 4]], [[0, 0], [float("nan"), 5.0]]):
        r = f.post(f"/api/fields/{fid}/ab_line", content=json.dumps({"ab_line": bad}),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "ab_line" in json.dumps(r.json()["detail"]), (bad, r.text)
    assert count(a, db.audit) == before                    # nothing written
    ab = [[5.0, 2.0], [5.0, 28.0]]                         # north-south: swaths across the long side
    assert f.post(f"/api/fields/{fid}/ab_line", json={"ab_line": ab}).json()["ab_line"] == ab
    assert [x["ab_line"] for x in f.get("/api/fields").json() if x["id"] == fid] == [ab]
    a.state.auth.create_user("farmer2", "farmer-pass-456", "farmer")
    assert login(a, "farmer2", "farmer-pass-456").post(f"/api/fields/{fid}/ab_line",
                                                      json={"ab_line": None}).status_code == 403
    assert f.post("/api/jobs", json={"field_id": fid, "robot": "tractor", "kind": "coverage"}).json()["ok"]
    goal = bridge.sent[-1]
    assert goal["kind"] == "cover_field" and goal["body"]["ab_line"] == ab and goal["signed"] is not None
    assert f.post(f"/api/fields/{fid}/ab_line", json={"ab_line": None}).json()["ab_line"] is None
    f.post("/api/jobs", json={"field_id": fid, "robot": "tractor", "kind": "coverage"})
    assert bridge.sent[-1]["body"]["ab_line"] is None       # cleared: the planner chooses again
    audit = login(a, "admin").get("/api/audit").json()
    assert sum(1 for e in audit if e["action"] == "field_ab_line") == 2


def test_admin_keys_page_uses_agricare_keys_and_never_shows_private_keys(tmp_path):
    import subprocess
    import sys

    kdir = tmp_path / "keys"
    a, _ = _recording_app(tmp_path, key_dir=str(kdir))
    adm = login(a, "admin")
    assert adm.get("/api/keys").json()["keys"] == []
    k1 = adm.post("/api/keys", json={"key_id": "site-app", "kinds": ["protective_stop", "operator"]}).json()
    assert k1["key_id"] == "site-app" and k1["private_here"] and not k1["revoked"]
    assert adm.post("/api/keys", json={"key_id": "site-app"}).status_code == 409     # exists: not overwritten
    assert adm.post("/api/keys", json={"key_id": "../evil"}).status_code == 422
    k2 = adm.post("/api/keys/site-app/rotate", json={"new_id": "site-app-2"}).json()
    assert k2["kinds"] == ["protective_stop", "operator"]
    assert adm.post("/api/keys/nope/revoke").status_code == 409
    listing = adm.get("/api/keys")
    keys = {k["key_id"]: k for k in listing.json()["keys"]}
    assert keys["site-app"]["revoked"] and not keys["site-app-2"]["revoked"]
    assert adm.post("/api/keys/site-app-2/revoke").json()["revoked"]
    # what the page gets: public keys and fingerprints, never private key material
    from cryptography.hazmat.primitives import serialization

    from agricare.core.security.keys import load_signing_key

    raw = load_signing_key(kdir / "site-app-2.key").private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    import base64

    body = adm.get("/api/keys").text
    assert "PRIVATE" not in body and (kdir / "site-app-2.key").read_text() not in body
    assert base64.b64encode(raw).decode() not in body and raw.hex() not in body
    # the same directory, read by agricare keys: the CLI sees what the page did
    out = subprocess.run([sys.executable, "-m", "agricare.cli", "keys", "--dir", str(kdir), "list"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "site-app " in out and "site-app-2" in out and out.count("REVOKED") == 2
    acts = [(e["action"], e["ok"]) for e in adm.get("/api/audit").json() if e["action"].startswith("key_")]
    assert ("key_generate", True) in acts and ("key_generate", False) in acts and ("key_rotate", True) in acts
    assert ("key_revoke", True) in acts and ("key_revoke", False) in acts
    for user in ("staff", "farmer", "guardian"):
        c = login(a, user)
        assert c.get("/api/keys").status_code == 403
        assert c.post("/api/keys", json={"key_id": "x"}).status_code == 403
        assert c.post("/api/keys/site-app-2/rotate", json={"new_id": "y"}).status_code == 403
    assert not (kdir / "x.key").exists() and not (kdir / "y.key").exists()


def test_a_shuttles_replan_request_reaches_the_dispatcher(tmp_path):
    """A shuttle that refused a plan asks for a re-plan (care/notifications): the app sends the fleet's
    state and a ``replan`` event to the dispatcher, once per burst."""
    import time

    a, bridge = _recording_app(tmp_path)
    bridge.state = {"shuttle_1": {"kind": "care", "pose": [10.0, 20.0, 0.0], "mission": {
        "state": "ride", "onboard_requests": [["trip_c1", 30.0]], "finished_requests": []}}}
    note = {"robot": "shuttle_1", "level": "warn", "kind": "replan_requested",
            "message": "plan rejected: picks up children already on board"}
    a.state.on_event("notification", note)
    a.state.on_event("notification", note)            # the same burst: acted on once
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not any(e["body"].get("type") == "replan" for e in bridge.sent):
        time.sleep(0.05)
    sent = [e["body"] for e in bridge.sent if e["kind"] == "dispatch"]
    assert [b["type"] for b in sent] == ["vehicle_state", "replan"], sent
    assert sent[0]["vehicle"] == "shuttle_1" and sent[0]["onboard"] == [["trip_c1", 30.0]]
    assert sent[1]["reason"].startswith("shuttle_1: plan rejected") and sent[1]["now_s"] == 100.0
    audit = login(a, "admin").get("/api/audit").json()
    assert any(e["action"] == "command:dispatch" and e["username"] == "app" and "replan" in e["detail"]
               for e in audit)
