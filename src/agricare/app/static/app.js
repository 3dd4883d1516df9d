// agricare operator app: one page, four roles. Everything user-supplied is written with textContent.
"use strict";

const S = { me: null, csrf: "", ws: null, maps: {}, live: null, trail: {}, codeTrip: null, code: "" };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opt.headers["X-CSRF-Token"] = S.csrf;
  if (body !== undefined) { opt.headers["Content-Type"] = "application/json"; opt.body = JSON.stringify(body); }
  const r = await fetch(path, opt);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    let msg = (data && data.detail) || r.statusText;
    if (Array.isArray(msg)) msg = msg.map((d) => (d.loc || []).slice(1).join(".") + ": " + d.msg).join("; ");
    const err = new Error(msg); err.status = r.status; throw err;
  }
  return data;
}

function fmtEta(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return Math.round(s) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

// ---------------------------------------------------------------------------------------------- login
async function start() {
  try {
    const me = await api("GET", "/api/me");
    S.me = me; S.csrf = me.csrf;
    showRole();
  } catch (e) {
    $("login-view").hidden = false;
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("POST", "/api/login", { username: $("login-user").value, password: $("login-pass").value });
    $("login-pass").value = "";
    const me = await api("GET", "/api/me");
    S.me = me; S.csrf = me.csrf;
    $("login-view").hidden = true;
    showRole();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch (e) { /* gone anyway */ }
  location.reload();
});

async function showRole() {
  $("who").textContent = S.me.display_name + " (" + S.me.role + ")";
  $("logout").hidden = false;
  const view = { guardian: "guardian-view", staff: "staff-view", farmer: "farmer-view", admin: "admin-view" }[S.me.role];
  $(view).hidden = false;
  if (S.me.role === "guardian") await initGuardian();
  if (S.me.role === "staff") await initStaff();
  if (S.me.role === "farmer") await initFarmer();
  if (S.me.role === "admin") await initAdmin();
  if (S.me.role !== "admin") connect();
}

function connect() {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/ws");
  S.ws = ws;
  ws.onmessage = (m) => { S.live = JSON.parse(m.data); render(); };
  ws.onclose = () => { $("link").textContent = "offline"; $("link").className = "badge off"; setTimeout(connect, 2000); };
}

function render() {
  const L = S.live;
  $("link").textContent = L.link ? "live" : "no robot link";
  $("link").className = L.link ? "badge" : "badge off";
  for (const [r, st] of Object.entries(L.robots || {})) {
    if (!st.pose) continue;
    const t = S.trail[r] || (S.trail[r] = []);
    const last = t[t.length - 1];
    if (!last || Math.hypot(last[0] - st.pose[0], last[1] - st.pose[1]) > 0.3) t.push([st.pose[0], st.pose[1]]);
    if (t.length > 5000) t.shift();
  }
  if (S.me.role === "guardian") renderGuardian();
  if (S.me.role === "staff") renderStaff();
  if (S.me.role === "farmer") renderFarmer();
}

// ---------------------------------------------------------------------------------------------- map
function bounds(map) {
  const xs = [], ys = [];
  const add = (p) => { xs.push(p[0]); ys.push(p[1]); };
  (map.roads || []).forEach((r) => r.polyline.forEach(add));
  (map.places || []).forEach((p) => (p.footprint || [p.xy]).forEach(add));
  (map.fields || []).forEach((f) => f.polygon.forEach(add));
  (map.extra || []).forEach((f) => f.forEach(add));
  if (!xs.length) return [0, 0, 100, 100];
  const m = 8;
  return [Math.min(...xs) - m, Math.min(...ys) - m, Math.max(...xs) + m, Math.max(...ys) + m];
}

function drawMap(canvas, map, robots, opts) {
  const ctx = canvas.getContext("2d");
  const [x0, y0, x1, y1] = bounds(map);
  const sc = Math.min(canvas.width / (x1 - x0), canvas.height / (y1 - y0));
  const P = (p) => [(p[0] - x0) * sc, canvas.height - (p[1] - y0) * sc];
  canvas.toMap = (px, py) => [px / sc + x0, (canvas.height - py) / sc + y0];   // canvas pixel -> map metres
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const poly = (pts, close) => { ctx.beginPath(); pts.forEach((p, i) => { const q = P(p); i ? ctx.lineTo(q[0], q[1]) : ctx.moveTo(q[0], q[1]); }); if (close) ctx.closePath(); };
  ctx.lineCap = "round";
  for (const r of map.roads || []) { ctx.strokeStyle = "#c9c4b5"; ctx.lineWidth = (r.width_m || 4) * sc; poly(r.polyline); ctx.stroke(); }
  for (const f of map.fields || []) { ctx.fillStyle = "#cfe3b8"; ctx.strokeStyle = "#5b7f3a"; ctx.lineWidth = 2; poly(f.polygon, true); ctx.fill(); ctx.stroke(); }
  for (const f of opts.uploaded || []) { ctx.strokeStyle = "#2b59c3"; ctx.setLineDash([6, 4]); ctx.lineWidth = 2; poly(f, true); ctx.stroke(); ctx.setLineDash([]); }
  for (const ab of opts.abLines || []) {     // AB lines: A-B and its labels
    ctx.strokeStyle = "#8a2be2"; ctx.lineWidth = 3; poly(ab); ctx.stroke();
    ctx.fillStyle = "#8a2be2"; ctx.font = "bold 13px sans-serif";
    ["A", "B"].forEach((t, i) => { const q = P(ab[i]); ctx.fillText(t, q[0] + 4, q[1] - 4); });
  }
  if (opts.abPending) { const q = P(opts.abPending); ctx.fillStyle = "#8a2be2"; ctx.beginPath(); ctx.arc(q[0], q[1], 5, 0, 7); ctx.fill(); }
  if (opts.coverage) {            // coverage raster: cells the implement passed over (from the machine's pose)
    ctx.fillStyle = "rgba(214,140,40,0.55)";
    const w = opts.coverage.width_m, cell = 1.0;
    const seen = new Set();
    for (const t of Object.values(S.trail)) for (const p of t) {
      for (let dx = -w / 2; dx <= w / 2; dx += cell) for (let dy = -w / 2; dy <= w / 2; dy += cell) {
        const k = Math.floor(p[0] + dx) + "," + Math.floor(p[1] + dy);
        if (seen.has(k)) continue; seen.add(k);
        const q = P([Math.floor(p[0] + dx), Math.floor(p[1] + dy) + 1]);
        ctx.fillRect(q[0], q[1], cell * sc + 0.5, cell * sc + 0.5);
      }
    }
  }
  for (const p of map.places || []) {
    ctx.fillStyle = { nursery: "#f1c6d5", clinic: "#f6d2c4", depot: "#d8d8d8" }[p.kind] || "#f3e6c4";
    if (p.footprint) { poly(p.footprint, true); ctx.fill(); }
    const q = P(p.xy); ctx.fillStyle = "#333"; ctx.font = "11px sans-serif"; ctx.fillText(p.name, q[0] + 3, q[1] - 3);
  }
  for (const [name, st] of Object.entries(robots || {})) {
    if (st.route && st.route.length > 1) { ctx.strokeStyle = "#2b59c3"; ctx.lineWidth = 2; poly(st.route); ctx.stroke(); }
    if (!st.pose) continue;
    const [x, y, yaw] = st.pose; const q = P([x, y]); const s = 9;
    ctx.save(); ctx.translate(q[0], q[1]); ctx.rotate(-yaw);
    const stop = st.safety && ["PROTECTIVE_STOP", "EMERGENCY_STOP", "FAULT"].includes(st.safety.state);
    ctx.fillStyle = stop ? "#b3261e" : "#1f4e8c";
    ctx.beginPath(); ctx.moveTo(s, 0); ctx.lineTo(-s * 0.7, s * 0.6); ctx.lineTo(-s * 0.7, -s * 0.6); ctx.closePath(); ctx.fill();
    ctx.restore(); ctx.fillStyle = "#000"; ctx.font = "bold 12px sans-serif"; ctx.fillText(name, q[0] + 10, q[1] + 12);
  }
}

async function loadMap(area) {
  if (!S.maps[area]) S.maps[area] = await api("GET", "/api/map/" + area);
  return S.maps[area];
}

// ---------------------------------------------------------------------------------------------- guardian
async function initGuardian() {
  const kids = await api("GET", "/api/children");
  const ul = $("g-children"), sel = $("req-child");
  for (const c of kids) {
    ul.appendChild(el("li", c.name + " (home: " + c.home_place + ")"));
    const o = el("option", c.name); o.value = c.id; sel.appendChild(o);
  }
  await loadMap("care");
  if (S.me.demo) $("reader").hidden = false;
}

$("req-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await api("POST", "/api/requests", { child_id: $("req-child").value, kind: $("req-kind").value,
      window_start_min: Number($("req-start").value), window_length_min: Number($("req-len").value) });
    $("req-msg").textContent = (r.ok ? "Request sent: " : "Not sent: ") + r.message;
  } catch (e) { $("req-msg").textContent = "Refused: " + e.message; }
});

function renderGuardian() {
  const ul = $("g-trips");
  ul.replaceChildren();
  for (const t of S.live.trips || []) {
    const li = el("li"); li.id = "trip-" + t.id; li.dataset.state = t.state;
    li.appendChild(el("strong", t.child_name + ": " + t.from_place + " → " + t.to_place));
    li.appendChild(el("div", "State: " + t.state.replace(/_/g, " "), "trip-state"));
    const eta = el("div", "Shuttle: " + (t.robot || "not yet assigned") + " · ETA " + fmtEta(t.eta_s), "trip-eta");
    eta.dataset.eta = t.eta_s === null ? "" : String(t.eta_s);
    li.appendChild(eta);
    if (t.receiver_id === "g_" + S.me.username && !["delivered", "cancelled"].includes(t.state)) {
      const b = el("button", "Show hand-over code", "show-code"); b.type = "button";
      b.addEventListener("click", () => showCode(t.id)); li.appendChild(b);
    }
    if (["requested", "planned"].includes(t.state)) {
      const c = el("button", "Cancel", "secondary"); c.type = "button";
      c.addEventListener("click", async () => { try { await api("POST", "/api/trips/" + t.id + "/cancel"); } catch (e) { $("req-msg").textContent = e.message; } });
      li.appendChild(c);
    }
    ul.appendChild(li);
  }
  drawMap($("g-map"), S.maps.care || {}, S.live.robots, {});
}

async function showCode(tripId) {
  try {
    const r = await api("GET", "/api/trips/" + tripId + "/code");
    S.codeTrip = tripId; S.code = r.code;
    $("code-digits").textContent = r.code;
    $("code-qr").src = r.qr_png;
    $("code-box").hidden = false;
  } catch (e) { $("req-msg").textContent = e.message; }
}

$("present-code").addEventListener("click", async () => {
  try {
    const r = await api("POST", "/api/trips/" + S.codeTrip + "/present_code", { code: S.code });
    $("present-msg").textContent = r.message;
  } catch (e) { $("present-msg").textContent = "Refused: " + e.message; }
});

// ---------------------------------------------------------------------------------------------- staff
async function initStaff() {
  await loadMap("care");
  const kids = await api("GET", "/api/children");
  for (const c of kids) { const o = el("option", c.name); o.value = c.id; $("urgent-child").appendChild(o); }
}

$("urgent-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try { const r = await api("POST", "/api/urgent", { child_id: $("urgent-child").value }); $("urgent-msg").textContent = r.message; }
  catch (e) { $("urgent-msg").textContent = e.message; }
});

async function robotCommand(robot, what, msgId) {
  try { const r = await api("POST", "/api/robots/" + robot + "/" + what); $(msgId).textContent = r.message; }
  catch (e) { $(msgId).textContent = e.message; }
}

function robotRow(name, st, withStop, msgId, extra) {
  const tr = el("tr"); tr.id = "robot-" + name;
  tr.appendChild(el("td", name));
  const pos = el("td", st.pose ? st.pose[0].toFixed(1) + ", " + st.pose[1].toFixed(1) : "–", "pos");
  if (st.pose) { pos.dataset.x = st.pose[0]; pos.dataset.y = st.pose[1]; }
  tr.appendChild(pos);
  tr.appendChild(el("td", (st.speed_mps || 0).toFixed(2) + " m/s", "speed"));
  const sf = st.safety ? st.safety.state + (st.safety.reason ? " (" + st.safety.reason + ")" : "") : "–";
  const sc = el("td", sf, "safety state-" + (st.safety ? st.safety.state : "")); sc.dataset.state = st.safety ? st.safety.state : "";
  tr.appendChild(sc);
  tr.appendChild(el("td", st.mission ? st.mission.state + (st.mission.detail && st.mission.detail.text ? ": " + st.mission.detail.text : "") : "–", "mission"));
  for (const x of extra || []) tr.appendChild(x);
  if (withStop) {
    const td = el("td");
    const b = el("button", st.stopped_by_app ? "Resume" : "Protective stop", st.stopped_by_app ? "resume" : "stop");
    b.type = "button";
    b.addEventListener("click", () => robotCommand(name, st.stopped_by_app ? "resume" : "stop", msgId));
    td.appendChild(b); tr.appendChild(td);
  }
  return tr;
}

function renderStaff() {
  const tb = $("fleet").tBodies[0]; tb.replaceChildren();
  for (const [name, st] of Object.entries(S.live.robots || {})) tb.appendChild(robotRow(name, st, true, "fleet-msg"));
  const tt = $("s-trips").tBodies[0]; tt.replaceChildren();
  for (const t of S.live.trips || []) {
    const tr = el("tr"); tr.id = "strip-" + t.id;
    [t.id, t.child_name, t.from_place + " → " + t.to_place, t.robot || "–", t.state, fmtEta(t.eta_s)].forEach((v) => tr.appendChild(el("td", v)));
    const td = el("td");
    if (t.state === "boarding") {
      const b = el("button", "Confirm boarding"); b.type = "button";
      b.addEventListener("click", async () => { try { await api("POST", "/api/trips/" + t.id + "/boarded"); } catch (e) { $("fleet-msg").textContent = e.message; } });
      td.appendChild(b);
    }
    tr.appendChild(td); tt.appendChild(tr);
  }
  const ul = $("incidents"); ul.replaceChildren();
  for (const d of S.live.incidents || []) ul.appendChild(el("li", d.name + ": " + d.message));
  drawMap($("s-map"), S.maps.care || {}, S.live.robots, {});
}

// ---------------------------------------------------------------------------------------------- farmer
async function initFarmer() {
  const m = await loadMap("farm");
  for (const r of m.robots || []) { const o = el("option", r); o.value = r; $("job-robot").appendChild(o); }
  for (const r of m.robots || []) { const o = el("option", r); o.value = r; $("scout-robot").appendChild(o); }
  await refreshFields();
}

async function refreshFields() {
  const fields = await api("GET", "/api/fields");
  S.fields = fields;
  const sel = $("job-field"); sel.replaceChildren();
  for (const f of fields) { const o = el("option", f.name + " (" + (f.area_m2 / 10000).toFixed(2) + " ha)"); o.value = f.id; sel.appendChild(o); }
  S.maps.farm.extra = fields.flatMap((f) => [f.polygon, ...(f.holes || [])]);   // holes (ponds) outlined too
  S.abLines = fields.filter((f) => f.ab_line).map((f) => f.ab_line);
}

// AB line: two clicks on the field map (map frame, metres), saved with the selected field
$("ab-draw").addEventListener("click", () => {
  if (!$("job-field").value) { $("ab-msg").textContent = "Upload a field first"; return; }
  S.abDraw = []; $("ab-msg").textContent = "Click point A on the map";
});

$("ab-clear").addEventListener("click", async () => {
  try {
    await api("POST", "/api/fields/" + $("job-field").value + "/ab_line", { ab_line: null });
    $("ab-msg").textContent = "AB line cleared"; await refreshFields();
  } catch (e) { $("ab-msg").textContent = "Refused: " + e.message; }
});

$("f-map").addEventListener("click", async (ev) => {
  if (!S.abDraw) return;
  const c = $("f-map"), r = c.getBoundingClientRect();
  if (!c.toMap) return;
  const p = c.toMap((ev.clientX - r.left) * c.width / r.width, (ev.clientY - r.top) * c.height / r.height);
  S.abDraw.push([Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100]);
  if (S.abDraw.length < 2) { $("ab-msg").textContent = "A at " + S.abDraw[0].join(", ") + " m; click point B"; return; }
  const ab = S.abDraw; S.abDraw = null;
  try {
    const res = await api("POST", "/api/fields/" + $("job-field").value + "/ab_line", { ab_line: ab });
    $("ab-msg").textContent = "AB line saved: A " + res.ab_line[0].join(", ") + " B " + res.ab_line[1].join(", ") + " (m)";
    await refreshFields();
  } catch (e) { $("ab-msg").textContent = "Refused: " + e.message; }
});

$("field-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("field-file").files[0];
  if (!file) return;
  const text = await file.text();
  const fmt = /\.kml$/i.test(file.name) ? "kml" : "geojson";
  try {
    const r = await api("POST", "/api/fields", { name: $("field-name").value, format: fmt, content: text });
    $("field-msg").textContent = "Field uploaded: " + r.area_m2 + " m²";
    await refreshFields();
  } catch (e) { $("field-msg").textContent = "Refused: " + e.message; }
});

$("job-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await api("POST", "/api/jobs", { field_id: Number($("job-field").value), robot: $("job-robot").value, kind: $("job-kind").value });
    $("job-msg").textContent = r.message;
  } catch (e) { $("job-msg").textContent = "Refused: " + e.message; }
});

$("scout-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await api("POST", "/api/robots/" + encodeURIComponent($("scout-robot").value) + "/scout",
                        { rows: Number($("scout-rows").value) || 0 });
    $("scout-msg").textContent = r.message;
  } catch (e) { $("scout-msg").textContent = "Refused: " + e.message; }
});

function renderFarmer() {
  const tb = $("f-robots").tBodies[0]; tb.replaceChildren();
  for (const [name, st] of Object.entries(S.live.robots || {})) {
    const p = st.mission ? st.mission.progress : 0;
    const pr = el("td", (100 * p).toFixed(1) + " %", "progress"); pr.dataset.progress = p;
    tb.appendChild(robotRow(name, st, false, "job-msg", [pr]));
  }
  const jt = $("jobs").tBodies[0]; jt.replaceChildren();
  for (const j of S.live.jobs || []) {
    const tr = el("tr"); tr.id = "job-" + j.id;
    [j.id, j.robot, j.kind, j.state].forEach((v) => tr.appendChild(el("td", v)));
    const td = el("td", (100 * j.progress).toFixed(1) + " %", "job-progress"); td.dataset.progress = j.progress; tr.appendChild(td);
    const act = el("td");
    for (const a of ["pause", "resume", "refill"]) {
      const b = el("button", a, "secondary"); b.type = "button";
      b.addEventListener("click", async () => { try { const r = await api("POST", "/api/jobs/" + j.id + "/" + a); $("job-msg").textContent = r.message; } catch (e) { $("job-msg").textContent = e.message; } });
      act.appendChild(b);
    }
    const dl = el("a", "record"); dl.href = "/api/jobs/" + j.id + "/record"; dl.download = "job_" + j.id + ".geojson"; act.appendChild(dl);
    tr.appendChild(act); jt.appendChild(tr);
  }
  const map = S.maps.farm || {};
  drawMap($("f-map"), map, S.live.robots, { uploaded: map.extra || [], coverage: { width_m: 3.0 },
    abLines: S.abLines || [], abPending: S.abDraw && S.abDraw.length ? S.abDraw[0] : null });
}

// ---------------------------------------------------------------------------------------------- admin
async function initAdmin() {
  const users = await api("GET", "/api/users");
  const tb = $("users").tBodies[0]; tb.replaceChildren();
  for (const u of users) { const tr = el("tr"); [u.username, u.display_name, u.role].forEach((v) => tr.appendChild(el("td", v))); tb.appendChild(tr); }
  const audit = await api("GET", "/api/audit");
  const ta = $("audit").tBodies[0]; ta.replaceChildren();
  await refreshKeys();
  for (const a of audit) { const tr = el("tr"); [new Date(a.t * 1000).toISOString(), a.username, a.action, a.ok ? "yes" : "no", a.detail].forEach((v) => tr.appendChild(el("td", v))); ta.appendChild(tr); }
}

async function refreshKeys() {
  let r;
  try { r = await api("GET", "/api/keys"); } catch (e) { $("keys-dir").textContent = e.message; return; }
  $("keys-dir").textContent = "Key directory: " + r.dir;
  const tb = $("keys").tBodies[0]; tb.replaceChildren();
  const sel = $("rotate-old"); sel.replaceChildren();
  for (const k of r.keys) {
    const tr = el("tr"); tr.id = "key-" + k.key_id; tr.dataset.revoked = k.revoked ? "1" : "0";
    [k.key_id, k.fingerprint, k.kinds.join(", ") || "any", k.revoked ? "REVOKED" : "active",
     k.private_here ? "on this server" : "public only"].forEach((v) => tr.appendChild(el("td", v)));
    const td = el("td");
    if (!k.revoked) {
      const b = el("button", "Revoke", "revoke secondary"); b.type = "button";
      b.addEventListener("click", async () => {
        try { await api("POST", "/api/keys/" + encodeURIComponent(k.key_id) + "/revoke"); $("key-msg").textContent = k.key_id + " revoked"; }
        catch (e) { $("key-msg").textContent = "Refused: " + e.message; }
        await refreshKeys();
      });
      td.appendChild(b);
      const o = el("option", k.key_id); o.value = k.key_id; sel.appendChild(o);
    }
    tr.appendChild(td); tb.appendChild(tr);
  }
}

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const k = await api("POST", "/api/keys", { key_id: $("key-id").value,
      kinds: $("key-kinds").value.split(",").map((s) => s.trim()).filter(Boolean) });
    $("key-msg").textContent = "Generated " + k.key_id + " (fingerprint " + k.fingerprint + ")";
  } catch (e) { $("key-msg").textContent = "Refused: " + e.message; }
  await refreshKeys();
});

$("rotate-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const k = await api("POST", "/api/keys/" + encodeURIComponent($("rotate-old").value) + "/rotate", { new_id: $("rotate-new").value });
    $("key-msg").textContent = "Rotated to " + k.key_id + " (fingerprint " + k.fingerprint + ")";
  } catch (e) { $("key-msg").textContent = "Refused: " + e.message; }
  await refreshKeys();
});

$("user-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("POST", "/api/users", { username: $("u-name").value, display_name: $("u-display").value, password: $("u-pass").value,
      role: $("u-role").value, children: $("u-children").value.split(",").map((s) => s.trim()).filter(Boolean) });
    $("u-msg").textContent = "User added"; await initAdmin();
  } catch (e) { $("u-msg").textContent = e.message; }
});

start();
