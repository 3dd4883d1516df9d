"""The operator app in a real headless Chromium, live with the simulated robots in their own processes.

``agricare serve --demo`` runs as a subprocess: the server (with its rclpy bridge) and two robot hosts
(care town: two shuttles + dispatcher; farm: the tractor), each a separate process on ROS 2 / DDS. Selenium
drives Debian's chromium + chromedriver (``make sysdeps`` installs them). Screenshots go to ``out/app/``.

- guardian: asks for a pick-up, sees it planned and the shuttle's ETA change, shows the hand-over code,
  the shuttle's reader accepts it and the trip is delivered;
- staff: both shuttles move on the map/table; a protective stop brings one to a standstill
  (PROTECTIVE_STOP from its own safety supervisor), resume releases it; a ``<script>`` name is text;
- farmer: uploads a field, draws its AB line with two clicks on the map, starts a coverage job whose planned
  route runs along the AB line, sees the progress rise;
- admin: generates a signing key on the keys page (public parts only on the page).

Waits are for conditions: on the care side with a budget in the robots' simulated time (the page's live
``robot_time_s``), so a loaded machine that runs the simulator slower waits longer instead of failing, with a
wall-clock cap.
"""

import base64
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("selenium", reason="selenium not installed (pip install -r requirements.txt)")
pytest.importorskip("fastapi", reason="fastapi not installed (pip install -r requirements.txt)")
pytest.importorskip("agricare_interfaces", reason="agricare_interfaces not built (make venv)")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from harness import decode_qr  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHOTS = REPO / "out" / "app"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium / chromedriver not installed (make sysdeps: apt-get install "
                                       "chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data = tmp_path_factory.mktemp("site")
    port = _free_port()
    domain = int(os.environ.get("AGRICARE_TEST_DOMAIN_ID", "61"))
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    log = open(data / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "agricare.cli", "serve", "--demo", "--port", str(port),
                             "--data-dir", str(data), "--domain-id", str(domain), "--real-time-factor", "3",
                             "--demo-day", "short",
                             "--update-rate-hz", "5"], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60.0
    while True:
        try:
            if httpx.get(url + "/", timeout=1.0).status_code == 200 and (data / "demo_logins.json").is_file():
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("agricare serve --demo did not come up:\n" + (data / "serve.log").read_text()[-3000:])
        time.sleep(0.3)
    logins = json.loads((data / "demo_logins.json").read_text())
    yield {"url": url, "logins": logins, "data": data, "proc": proc}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    for area in ("care", "farm"):   # the robot hosts stopped with the server
        logf = data / "demo" / f"robots_{area}.log"
        if logf.is_file():
            print(f"--- robots_{area}.log (tail)\n" + logf.read_text()[-1500:])


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    try:
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except WebDriverException as exc:
        pytest.skip(f"chromium did not start: {exc.msg}")
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


def wait(fn, timeout_s, what, period_s=0.25):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except WebDriverException as exc:   # a row re-rendered under us: look again
            last = exc
        time.sleep(period_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def robot_time(drv):
    """The robots' clock as the page last received it (live update), or None."""
    return js(drv, "return (typeof S !== 'undefined' && S.live) ? S.live.robot_time_s : null;")


def wait_sim(drv, fn, sim_s, what, wall_cap_s, period_s=0.25):
    """Wait until ``fn()`` is truthy, for ``sim_s`` seconds of the robots' simulated time (at most
    ``wall_cap_s`` of wall time): the budget follows the simulator, however fast the machine runs it."""
    t_wall = time.monotonic()
    t0 = None
    last = None
    while time.monotonic() - t_wall < wall_cap_s:
        try:
            last = fn()
            if last:
                return last
            now = robot_time(drv)
        except WebDriverException as exc:
            last, now = exc, None
        if now is not None:
            t0 = now if t0 is None else t0
            if now - t0 > sim_s:
                raise AssertionError(f"not within {sim_s} s of simulated time ({time.monotonic() - t_wall:.0f} s "
                                     f"wall) waiting for {what} (last: {last!r})")
        time.sleep(period_s)
    raise AssertionError(f"timed out after {wall_cap_s} s of wall time waiting for {what} (simulated time "
                         f"{None if t0 is None else round((robot_time(drv) or t0) - t0)} s; last: {last!r})")


def click_map(drv, canvas_id, xy):
    """Click the canvas where the map point ``xy`` (metres) is drawn (a real pointer click, viewport coords)."""
    from selenium.webdriver.common.action_chains import ActionChains

    js(drv, "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});", canvas_id)
    geo = js(drv, """const c = document.getElementById(arguments[0]); const r = c.getBoundingClientRect();
        const o = c.toMap(0, 0), u = c.toMap(1, 1);   // map of pixels (0,0), (1,1): origin and scale
        return {left: r.left, top: r.top, w: r.width, h: r.height, cw: c.width, ch: c.height, x0: o[0], y0: o[1],
                sx: u[0] - o[0], sy: u[1] - o[1]};""", canvas_id)
    px, py = (xy[0] - geo["x0"]) / geo["sx"], (xy[1] - geo["y0"]) / geo["sy"]    # canvas pixels
    vx, vy = geo["left"] + px * geo["w"] / geo["cw"], geo["top"] + py * geo["h"] / geo["ch"]
    chain = ActionChains(drv)
    chain.w3c_actions.pointer_action.move_to_location(round(vx), round(vy))
    chain.w3c_actions.pointer_action.click()
    chain.perform()


def js(drv, script, *args):
    return drv.execute_script(script, *args)


def login(drv, site, user, live=True):
    drv.delete_all_cookies()
    drv.get(site["url"] + "/")
    wait(lambda: drv.find_element(By.ID, "login-view").is_displayed(), 15, "login form")
    drv.find_element(By.ID, "login-user").send_keys(user)
    drv.find_element(By.ID, "login-pass").send_keys(site["logins"][user])
    drv.find_element(By.ID, "login-submit").click()
    wait(lambda: drv.find_element(By.ID, "who").text or drv.find_element(By.ID, "login-error").text, 10, "logged in")
    assert not drv.find_element(By.ID, "login-error").text, drv.find_element(By.ID, "login-error").text
    if live:
        wait(lambda: drv.find_element(By.ID, "link").text == "live", 30, "live updates")


def trip_card(drv):
    """State and ETA of the guardian's first trip card (rendered from the WebSocket updates)."""
    return js(drv, """const li = document.querySelector('#g-trips li'); if (!li) return null;
        return {id: li.id.slice(5), state: li.dataset.state, eta: li.querySelector('.trip-eta').dataset.eta};""")


def fleet(drv):
    return js(drv, """const out = {}; for (const tr of document.querySelectorAll('#fleet tbody tr')) {
        const p = tr.querySelector('.pos'); out[tr.id.slice(6)] = {x: Number(p.dataset.x), y: Number(p.dataset.y),
        speed: parseFloat(tr.querySelector('.speed').textContent), safety: tr.querySelector('.safety').textContent,
        state: tr.querySelector('.safety').dataset.state}; } return out;""")


def moved_both(drv, first, seen):
    f = fleet(drv)
    for r, v in f.items():
        if r not in first or v["x"] is None or v["x"] != v["x"]:   # no position shown yet
            continue
        if first[r]["x"] is None or first[r]["x"] != first[r]["x"]:
            first[r] = v                                           # its first known position
            continue
        seen[r] = max(seen.get(r, 0.0), abs(v["x"] - first[r]["x"]) + abs(v["y"] - first[r]["y"]))
    return len(seen) == 2 and all(d > 3.0 for d in seen.values())


@pytest.mark.timeout(900)
def test_operator_app_in_chromium(site, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    drv = browser
    t0 = time.monotonic()
    lap = lambda what: print(f"[{time.monotonic() - t0:5.1f} s] {what}", flush=True)  # noqa: E731

    # ---- staff: both shuttles move; a protective stop holds one still; resume releases it
    drv.set_window_size(1280, 1300)
    login(drv, site, "staff")
    first = wait(lambda: (f := fleet(drv)) and len(f) == 2 and all(v["x"] == v["x"] for v in f.values()) and f, 30,
                 "both shuttles in the fleet table")
    seen = {}
    try:
        wait_sim(drv, lambda: moved_both(drv, first, seen), 120, "both shuttles to move", 300)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; moved so far {seen}") from None
    lap("staff: both shuttles moved")

    def driving():
        f = fleet(drv)
        order = sorted(f, key=lambda r: r != "shuttle_1")   # prefer shuttle_1: shuttle_2 serves the guardian
        return next((r for r in order if abs(f[r]["speed"]) > 0.3 and f[r]["state"] in ("RUN", "SLOW")), None)

    # serve --demo gives the app a command key the shuttles trust: the stop is a signed remote protective stop
    moving = wait_sim(drv, driving, 90, "a shuttle driving", 240)
    js(drv, "document.querySelector('#robot-' + arguments[0] + ' button.stop').click();", moving)
    wait(lambda: "protective stop sent" in drv.find_element(By.ID, "fleet-msg").text, 10, "stop sent")
    wait_sim(drv, lambda: (v := fleet(drv)[moving])["state"] == "PROTECTIVE_STOP" and "remote_stop" in v["safety"],
             30, "the shuttle's safety supervisor in PROTECTIVE_STOP", 120)
    still = wait_sim(drv, lambda: abs((v := fleet(drv)[moving])["speed"]) < 0.02 and v, 30, "the shuttle standing",
                     120)
    time.sleep(2.0)
    held = fleet(drv)[moving]
    assert held["state"] == "PROTECTIVE_STOP"
    assert abs(held["x"] - still["x"]) + abs(held["y"] - still["y"]) < 0.2, (still, held)
    drv.save_screenshot(str(SHOTS / "staff.png"))
    js(drv, "document.querySelector('#robot-' + arguments[0] + ' button.resume').click();", moving)
    wait_sim(drv, lambda: fleet(drv)[moving]["state"] != "PROTECTIVE_STOP", 30, "the shuttle released after resume",
             120)
    lap(f"staff: {moving} stopped and resumed")
    # a name with markup shows as text (the admin added it through the API)
    import httpx

    with httpx.Client(base_url=site["url"], timeout=30.0) as admin:
        admin.post("/api/login", json={"username": "admin", "password": site["logins"]["admin"]})
        admin.headers["X-CSRF-Token"] = admin.get("/api/me").json()["csrf"]
        evil = "<script>window.pwned=1</script><b>Bo</b>"
        r = admin.post("/api/children", json={"id": "c_evil", "name": evil, "home_place": "home_5"})
        assert r.status_code == 200
    drv.refresh()
    wait(lambda: evil in [o.text for o in drv.find_elements(By.CSS_SELECTOR, "#urgent-child option")], 10,
         "the name as text")
    assert js(drv, "return window.pwned === undefined && document.querySelectorAll('#urgent-child b').length === 0;")

    # ---- guardian: ask for a pick-up at the nursery, see it planned with an ETA that changes
    drv.set_window_size(412, 915)   # a phone
    login(drv, site, "guardian")
    drv.find_element(By.ID, "req-len").clear()
    drv.find_element(By.ID, "req-len").send_keys("20")
    drv.find_element(By.ID, "req-submit").click()
    wait(lambda: "Request sent" in drv.find_element(By.ID, "req-msg").text, 10, "request sent")
    # the dispatcher re-plans the day (ALNS, up to its CPU cap) before the trip shows as planned
    card = wait_sim(drv, lambda: (c := trip_card(drv)) and c["state"] == "planned" and c["eta"] != "" and c, 120,
                    "trip planned with an ETA", 300)
    trip_id = card["id"]
    etas = {float(card["eta"])}
    wait_sim(drv, lambda: (c := trip_card(drv)) and (c["eta"] and etas.add(float(c["eta"])) is None
                                                     and len(etas) >= 2),
             120, "the ETA to update while the simulator runs", 300)
    drv.save_screenshot(str(SHOTS / "guardian.png"))
    lap(f"guardian: trip planned, ETAs seen {sorted(etas)}")

    # ---- farmer: upload a field, start coverage, watch the progress rise (the shuttle drives meanwhile)
    drv.set_window_size(1280, 1000)
    login(drv, site, "farmer")
    field = site["data"] / "field_a.geojson"
    field.write_text(json.dumps({"type": "Feature", "properties": {"frame": "map"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 30], [0, 30], [0, 0]]]}}))
    drv.find_element(By.ID, "field-name").send_keys("field A")
    drv.find_element(By.ID, "field-file").send_keys(str(field))
    drv.find_element(By.ID, "field-submit").click()
    wait(lambda: "Field uploaded: 1200" in drv.find_element(By.ID, "field-msg").text, 10, "field uploaded")
    wait(lambda: len(drv.find_elements(By.CSS_SELECTOR, "#job-field option")) == 1, 5, "field listed")
    # the AB line: two clicks on the map, north-south (the planner's own choice here is east-west swaths)
    js(drv, "document.getElementById('f-map').scrollIntoView();")
    drv.find_element(By.ID, "ab-draw").click()
    click_map(drv, "f-map", (5.0, 2.0))
    wait(lambda: "click point B" in drv.find_element(By.ID, "ab-msg").text, 5, "point A taken")
    click_map(drv, "f-map", (5.0, 28.0))
    wait(lambda: "AB line saved" in drv.find_element(By.ID, "ab-msg").text, 10, "AB line saved")
    saved = wait(lambda: js(drv, "return S.fields && S.fields.length ? S.fields[0].ab_line : null;"), 10,
                 "the field list with its AB line")
    assert all(abs(saved[i][k] - (5.0, 2.0, 5.0, 28.0)[2 * i + k]) < 0.5 for i in (0, 1) for k in (0, 1)), saved
    drv.find_element(By.ID, "job-submit").click()
    wait(lambda: "tractor" in drv.find_element(By.ID, "job-msg").text, 10, "job started")

    def along_ab():   # the tractor's planned route inside the headland: north-south like A-B (the
        # planner alone: east-west, 187 m of dx to 50 m of dy there; along this AB line 105 to 215)
        route = js(drv, "const r = S.live && S.live.robots.tractor; return r && r.route && r.route.length > 50 ? "
                        "r.route : null;")
        if not route:
            return None
        inner = [(a, b) for a, b in zip(route, route[1:])
                 if all(7.0 < p[0] < 33.0 and 7.0 < p[1] < 23.0 for p in (a, b))]   # 6 m headland, 40 x 30 m
        return (sum(abs(b[0] - a[0]) for a, b in inner), sum(abs(b[1] - a[1]) for a, b in inner))
    dx, dy = wait(along_ab, 120, "the tractor's planned route")
    assert dy > 100.0 and dy > 1.5 * dx, f"swaths not along the AB line: |dx| {dx:.0f} m, |dy| {dy:.0f} m"
    prog = lambda: float(js(drv, "const e = document.querySelector('#jobs tbody tr .job-progress');"  # noqa: E731
                                 "return e ? e.dataset.progress : -1;"))
    p1 = wait(lambda: (p := prog()) > 0.0 and p, 120, "coverage progress above 0")
    wait(lambda: prog() > p1 + 0.01, 120, "coverage progress rising")
    js(drv, "document.getElementById('f-map').scrollIntoView();")
    drv.save_screenshot(str(SHOTS / "farmer.png"))
    lap(f"farmer: AB line {saved}, route |dx| {dx:.0f} m |dy| {dy:.0f} m, progress {p1:.3f} -> {prog():.3f}")

    # ---- admin: the keys page generates a key (same functions as agricare keys); no private key on the page
    login(drv, site, "admin", live=False)
    drv.find_element(By.ID, "key-id").send_keys("site-app")
    drv.find_element(By.ID, "key-kinds").send_keys("protective_stop, operator")
    drv.find_element(By.ID, "key-submit").click()
    wait(lambda: "Generated site-app" in drv.find_element(By.ID, "key-msg").text, 15, "key generated")
    wait(lambda: drv.find_elements(By.ID, "key-site-app"), 10, "key listed")
    page = drv.page_source
    assert "PRIVATE KEY" not in page and (site["data"] / "keys" / "site-app.key").read_text() not in page
    with httpx.Client(base_url=site["url"], timeout=30.0) as admin:
        admin.post("/api/login", json={"username": "admin", "password": site["logins"]["admin"]})
        assert any(e["action"] == "key_generate" and e["ok"] and "site-app" in e["detail"]
                   for e in admin.get("/api/audit").json())
    drv.save_screenshot(str(SHOTS / "admin.png"))
    lap("admin: key generated")

    # ---- guardian: the shuttle is at the door; show the code, the shuttle's reader accepts it
    drv.set_window_size(412, 915)
    login(drv, site, "guardian")
    wait_sim(drv, lambda: (c := trip_card(drv)) and c["state"] == "at_handover", 600, "the shuttle at the hand-over",
             600)
    js(drv, "document.querySelector('#trip-' + arguments[0] + ' button.show-code').click();", trip_id)
    code = wait(lambda: drv.find_element(By.ID, "code-digits").text, 10, "the code shown")
    assert len(code.replace("-", "")) == 32
    # the QR image on the page (made by the server) carries the code
    wait(lambda: js(drv, "const i = document.getElementById('code-qr'); return i.complete && i.naturalWidth > 0;"),
         10, "the QR image loaded")
    png_b64 = drv.execute_async_script("""const done = arguments[arguments.length - 1];
        fetch(document.getElementById('code-qr').src, {credentials: 'same-origin'}).then((r) => r.arrayBuffer())
          .then((b) => { let s = ''; new Uint8Array(b).forEach((x) => { s += String.fromCharCode(x); });
                         done(btoa(s)); }).catch((e) => done('error: ' + e));""")
    cv2 = pytest.importorskip("cv2", reason="opencv not installed (decodes the QR code)")
    import numpy as np

    img = cv2.imdecode(np.frombuffer(base64.b64decode(png_b64), np.uint8), cv2.IMREAD_GRAYSCALE)
    decoded = decode_qr(cv2, img)
    assert decoded == code.replace("-", "").upper(), (decoded, code)
    js(drv, "document.getElementById('code-box').scrollIntoView();")
    drv.save_screenshot(str(SHOTS / "guardian_code.png"))
    drv.find_element(By.ID, "present-code").click()
    wait_sim(drv, lambda: (c := trip_card(drv)) and c["state"] == "delivered", 60, "the shuttle to accept the code",
             120)
    lap("guardian: code accepted, child delivered")
