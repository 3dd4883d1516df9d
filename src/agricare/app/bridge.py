"""The app's rclpy node: robot state in, commands out (the only place the app touches ROS 2).

It runs inside the server process on its own executor thread and talks to the robots over DDS like any
other participant (the robots are other processes or machines). Per robot ``r`` it reads
``/r/odometry/filtered`` (the robot's own estimate; ``/r/odom`` when no filter runs), ``/r/safety/state``,
``/r/mission/status``, ``/r/plan``, ``/r/care/site_request``, ``/r/handover/events``,
``/r/care/notifications`` (CareNotification); globally ``/dispatch/plan`` (DispatchPlan), ``/diagnostics``
and ``/clock`` (the robots' time base: windows and code expiry).

Every command to a robot goes through :meth:`Bridge.send_command`: it builds one envelope (robot, kind,
body, issuer, time, nonce) for the app's audit and hands it to the transport of its kind, signed with the
site's command key (:func:`default_signer`; :mod:`agricare.core.security.commands` for the envelopes on
String topics, :mod:`agricare.ros.signed` for typed messages and action goals, whose ``signature`` block
covers a canonical encoding of the whole message). Without a key the commands leave unsigned and every robot with a
trust list refuses them:

=====================  ==================================================================================
kind                   transport
=====================  ==================================================================================
``protective_stop``    signed: ``/r/safety/command`` (envelope ``protective_stop`` ``{"stop": true}``;
                       ``resume``: false); unsigned: ``/r/safety/geofence`` keep-out square around the
                       robot, which its safety supervisor holds as a protective stop (``resume`` clears it).
                       Either way an e-stop reset stays on the vehicle.
``dispatch``           ``/dispatch/events`` (envelope ``dispatch_event``: new_request / cancel) to
                       dispatcher_node
``site_answer``        ``/r/care/site_answer`` (SiteAnswer, signed ``site_answer``: boarding confirmed,
                       hand-over code presented)
``pause``              ``/r/mission/pause`` (MissionPause, signed ``mission_goal``: farm missions' pause /
                       resume)
``cover_field``        action ``/r/cover_field`` (CoverField, goal signed ``mission_goal``; the field's AB line
                       in the goal: no points = none)
``transport_child``    action ``/r/transport_child`` (TransportChild, goal signed ``mission_goal``)
``scout_field``        action ``/r/scout_field`` (ScoutField, goal signed ``mission_goal``; the row robot)
=====================  ==================================================================================
"""

from __future__ import annotations

import dataclasses
import json
import math
import secrets
import threading
import time

ROBOT_KINDS = ("care", "farm")
STOP_BOX_HALF_M = 12.0   # protective stop: keep-out square around the robot, half side, m
POSE_STALE_S = 2.0       # odometry/filtered older than this: fall back to odom


def sign_envelope(envelope: dict, signer=None) -> dict:
    """Sign a command envelope: the one place where the signed-command scheme plugs in.

    ``signer`` is a callable ``(kind, target, payload) -> signed envelope (dict)``: the Ed25519 envelope of
    :mod:`agricare.core.security.commands` made with the site's key (:func:`default_signer`). The signed
    envelope goes under ``"signed"``; without a signer the command leaves unsigned and says so
    (``"signed": None``), which only a vehicle without a trust list accepts."""
    out = dict(envelope)
    out["signed"] = None
    if signer is not None:
        kind = SIGNED_KIND.get(envelope["kind"])
        if kind is not None:
            out["signed"] = signer(kind, envelope["robot"], _signed_payload(envelope))
    return out


#: app command kind -> kind of the signed-command scheme
SIGNED_KIND = {"protective_stop": "protective_stop", "resume": "protective_stop", "site_answer": "site_answer",
               "dispatch": "dispatch_event", "pause": "mission_goal", "cover_field": "mission_goal",
               "transport_child": "mission_goal", "scout_field": "mission_goal"}
#: commands sent as typed messages / action goals, signed in their own signature block
TYPED_KINDS = ("site_answer", "pause", "cover_field", "transport_child", "scout_field")
#: what the app's key must be trusted for on the robots (``agricare keys``: the robots' trust lists)
APP_KINDS = ("protective_stop", "site_answer", "dispatch_event", "mission_goal")


def _signed_payload(envelope: dict) -> dict:
    if envelope["kind"] in ("protective_stop", "resume"):
        return {"stop": envelope["kind"] == "protective_stop"}
    if envelope["kind"] == "dispatch":
        return dict(envelope["body"])   # the dispatcher's event, as dispatcher_node reads it
    return {"command": envelope["kind"], **envelope["body"]}


class CommandSigner:
    """The site's command key: ``signer(kind, target, payload)`` signs an envelope; ``signer.key`` signs typed
    messages (:func:`agricare.ros.signed.sign_message`)."""

    def __init__(self, key):
        self.key = key

    def __call__(self, kind: str, target: str, payload: dict) -> dict:
        from agricare.core.security.commands import sign_command  # noqa: PLC0415

        return sign_command(payload, self.key, kind=kind, target=target)


def default_signer(key_file: str | None):
    """A signer with the site's signing key (``agricare keys``), or None without a key file. Raises
    ValueError when a key file is given but the signed-command scheme or the key cannot be used."""
    if not key_file:
        return None
    try:
        from agricare.core.security.keys import load_signing_key  # noqa: PLC0415
    except ImportError as exc:
        raise ValueError(f"--command-key: the signed-command scheme is not available here ({exc})") from None
    try:
        key = load_signing_key(key_file)
    except Exception as exc:
        raise ValueError(f"--command-key: {exc}") from None
    return CommandSigner(key)


@dataclasses.dataclass
class CommandResult:
    ok: bool
    message: str
    envelope: dict


class Bridge:
    """rclpy bridge (see module docstring). ``robots``: {name: "care" | "farm"}."""

    def __init__(self, robots: dict[str, str], domain_id: int | None = None, signer=None, on_event=None,
                 node_name: str = "agricare_app"):
        for name, kind in robots.items():
            if kind not in ROBOT_KINDS:
                raise ValueError(f"robot {name}: kind must be one of {ROBOT_KINDS}, got {kind!r}")
        self.robots = dict(robots)
        self.signer = signer
        self.on_event = on_event or (lambda kind, data: None)
        self._lock = threading.Lock()
        self.state = {r: {"robot": r, "kind": k, "pose": None, "pose_source": "", "pose_t": 0.0, "speed_mps": 0.0,
                          "safety": None, "mission": None, "route": [], "stopped_by_app": False}
                      for r, k in robots.items()}
        self.sim_time_s = None
        self.dispatch_plan = None
        self.diagnostics: dict[str, dict] = {}
        self._filtered_t: dict[str, float] = {}
        self._goals: dict[str, object] = {}
        self._started = False
        self._domain_id = domain_id
        self._node_name = node_name

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.context.Context()
        kwargs = {"domain_id": self._domain_id} if self._domain_id is not None else {}
        rclpy.init(context=self.context, **kwargs)
        self.node = rclpy.create_node(self._node_name, context=self.context, start_parameter_services=False)
        self._build()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="agricare-bridge", daemon=True)
        self._started = True
        self._thread.start()

    def _spin(self) -> None:
        while self._started and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception as exc:  # keep the bridge alive; say why
                if self._started:
                    self.on_event("bridge_error", {"message": f"{type(exc).__name__}: {exc}"})

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._thread.join(timeout=2.0)
        try:
            self.executor.shutdown(timeout_sec=0.5)
            self.node.destroy_node()
            self.context.try_shutdown()
        except Exception:
            pass

    # ------------------------------------------------------------------ ROS entities
    def _build(self) -> None:
        from agricare_interfaces.msg import (CareNotification, DispatchPlan, HandoverEvent, MissionStatus, SafetyState,
                                             SiteAnswer, SiteRequest)
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PolygonStamped
        from nav_msgs.msg import Odometry, Path
        from rclpy.action import ActionClient
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import String

        from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched

        n = self.node
        self._pubs = {}
        self._actions = {}
        for r, kind in self.robots.items():
            n.create_subscription(Odometry, f"/{r}/odometry/filtered", lambda m, r=r: self._on_odom(r, m, True),
                                  SENSOR_QOS)
            n.create_subscription(Odometry, f"/{r}/odom", lambda m, r=r: self._on_odom(r, m, False), SENSOR_QOS)
            subscribe_latched(n, SafetyState, f"/{r}/safety/state", lambda m, r=r: self._on_safety(r, m))
            n.create_subscription(MissionStatus, f"/{r}/mission/status", lambda m, r=r: self._on_status(r, m),
                                  RELIABLE_QOS)
            subscribe_latched(n, Path, f"/{r}/plan", lambda m, r=r: self._on_plan(r, m))
            self._pubs[(r, "geofence")] = n.create_publisher(PolygonStamped, f"/{r}/safety/geofence", LATCHED_QOS)
            self._pubs[(r, "command")] = n.create_publisher(String, f"/{r}/safety/command", RELIABLE_QOS)
            if kind == "care":
                n.create_subscription(SiteRequest, f"/{r}/care/site_request", lambda m, r=r: self._on_site(r, m),
                                      RELIABLE_QOS)
                n.create_subscription(HandoverEvent, f"/{r}/handover/events",
                                      lambda m, r=r: self._on_handover(r, m), RELIABLE_QOS)
                n.create_subscription(CareNotification, f"/{r}/care/notifications",
                                      lambda m, r=r: self._on_note(r, m), RELIABLE_QOS)
                self._pubs[(r, "site_answer")] = n.create_publisher(SiteAnswer, f"/{r}/care/site_answer",
                                                                    RELIABLE_QOS)
                from agricare_interfaces.action import TransportChild
                self._actions[(r, "transport_child")] = ActionClient(n, TransportChild, f"/{r}/transport_child")
            else:
                from agricare_interfaces.msg import MissionPause
                self._pubs[(r, "pause")] = n.create_publisher(MissionPause, f"/{r}/mission/pause", RELIABLE_QOS)
                from agricare_interfaces.action import CoverField, ScoutField
                self._actions[(r, "cover_field")] = ActionClient(n, CoverField, f"/{r}/cover_field")
                self._actions[(r, "scout_field")] = ActionClient(n, ScoutField, f"/{r}/scout_field")
        self._pubs[("", "dispatch")] = n.create_publisher(String, "/dispatch/events", RELIABLE_QOS)
        subscribe_latched(n, DispatchPlan, "/dispatch/plan", self._on_dispatch_plan)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE_QOS)
        n.create_subscription(Clock, "/clock", self._on_clock, RELIABLE_QOS)

    # ------------------------------------------------------------------ inputs
    def _on_clock(self, msg) -> None:
        self.sim_time_s = msg.clock.sec + msg.clock.nanosec * 1e-9

    def robot_time_s(self) -> float:
        """The robots' clock (``/clock`` when they run on simulated time, else wall time)."""
        return self.sim_time_s if self.sim_time_s is not None else time.time()

    def _on_odom(self, r: str, msg, filtered: bool) -> None:
        from agricare.ros.convert import quaternion_msg_to_yaw

        now = time.monotonic()
        if filtered:
            self._filtered_t[r] = now
        elif now - self._filtered_t.get(r, -math.inf) < POSE_STALE_S:
            return  # the robot's filtered estimate is live: prefer it
        p = msg.pose.pose
        with self._lock:
            s = self.state[r]
            s["pose"] = [round(p.position.x, 3), round(p.position.y, 3),
                         round(quaternion_msg_to_yaw(p.orientation), 4)]
            s["pose_source"] = "odometry/filtered" if filtered else "odom"
            s["pose_t"] = time.time()
            s["speed_mps"] = round(float(msg.twist.twist.linear.x), 3)

    def _on_safety(self, r: str, msg) -> None:
        names = {0: "RUN", 1: "SLOW", 2: "PROTECTIVE_STOP", 3: "EMERGENCY_STOP", 4: "FAULT"}
        with self._lock:
            self.state[r]["safety"] = {"state": names.get(int(msg.state), str(msg.state)), "reason": msg.reason,
                                       "speed_limit_mps": round(float(msg.speed_limit_mps), 3),
                                       "estop_latched": bool(msg.estop_latched)}
        if int(msg.state) >= 2:
            self.on_event("safety", {"robot": r, "state": names.get(int(msg.state)), "reason": msg.reason})

    def _on_status(self, r: str, msg) -> None:
        try:
            detail = json.loads(msg.detail) if msg.detail.strip().startswith("{") else {"text": msg.detail}
        except ValueError:
            detail = {"text": msg.detail}
        small = {k: detail.get(k) for k in ("phase", "text", "current", "onboard", "delivered", "coverage_ratio")
                 if k in detail}
        trips = detail.get("trips") if isinstance(detail.get("trips"), dict) else {}
        done = set(detail.get("delivered") or []) | set(detail.get("returned_to_nursery") or []) \
            | set(detail.get("no_shows") or []) | set(detail.get("skipped") or [])
        onboard = [[rid, float(t["boarded_s"])] for rid, t in trips.items()
                   if isinstance(t, dict) and "boarded_s" in t and rid not in done]
        with self._lock:
            self.state[r]["mission"] = {"mission": msg.mission, "state": msg.state,
                                        "progress": round(float(msg.progress), 4), "detail": small,
                                        "onboard_requests": onboard, "finished_requests": sorted(done)}
        self.on_event("mission_status", {"robot": r, "mission": msg.mission, "state": msg.state,
                                         "progress": float(msg.progress), "detail": detail})

    def _on_plan(self, r: str, msg) -> None:
        pts = [[round(ps.pose.position.x, 2), round(ps.pose.position.y, 2)] for ps in msg.poses]
        if len(pts) > 400:
            step = math.ceil(len(pts) / 400)
            pts = pts[::step] + [pts[-1]]
        with self._lock:
            self.state[r]["route"] = pts

    def _on_site(self, r: str, msg) -> None:
        from agricare.ros.convert import site_request_to_dict

        self.on_event("site_request", {**site_request_to_dict(msg), "robot": r})

    def _on_handover(self, r: str, msg) -> None:
        self.on_event("handover", {"robot": r, "trip": msg.trip_id, "child": msg.child_id,
                                   "guardian": msg.guardian_id, "action": msg.action, "accepted": bool(msg.accepted),
                                   "reason": msg.reason})

    def _on_note(self, r: str, msg) -> None:
        from agricare.ros.convert import care_notification_to_dict

        self.on_event("notification", {**care_notification_to_dict(msg), "robot": r})

    def _on_dispatch_plan(self, msg) -> None:
        from agricare.ros.convert import plan_msg_to_dict

        try:
            plan = plan_msg_to_dict(msg)   # the shuttles verify its signature; the app only shows it
        except ValueError:
            return
        with self._lock:
            self.dispatch_plan = plan
        self.on_event("dispatch_plan", plan)

    def _on_diagnostics(self, msg) -> None:
        with self._lock:
            for st in msg.status:
                lvl = st.level if isinstance(st.level, int) else int.from_bytes(st.level, "little")
                self.diagnostics[st.name] = {"name": st.name, "level": lvl, "message": st.message,
                                             "t": time.time()}

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict:
        with self._lock:
            robots = {r: {**s, "pose": list(s["pose"]) if s["pose"] else None, "route": list(s["route"])}
                      for r, s in self.state.items()}
            diags = [d for d in self.diagnostics.values() if d["level"] >= 1]
        for r, (kind, _) in self._actions_ready().items():
            robots[r].setdefault("actions", {})[kind] = _
        return {"t": time.time(), "robot_time_s": self.robot_time_s(), "robots": robots,
                "incidents": sorted(diags, key=lambda d: -d["t"])[:30]}

    def _actions_ready(self) -> dict:
        out = {}
        for (r, kind), client in getattr(self, "_actions", {}).items():
            try:
                out[r] = (kind, bool(client.server_is_ready()))
            except Exception:
                out[r] = (kind, False)
        return out

    # ------------------------------------------------------------------ commands
    def send_command(self, robot: str, kind: str, body: dict, issuer: str) -> CommandResult:
        """Send one command: build the envelope, sign it, publish it on its transport. Never raises for a
        robot that is not there: the result says what happened."""
        envelope = {"robot": robot, "kind": kind, "body": body, "issuer": issuer, "issued_at": time.time(),
                    "robot_time_s": self.robot_time_s(), "nonce": secrets.token_hex(8), "signed": None}
        try:
            if kind not in TYPED_KINDS:   # typed messages carry their own signature block (_sign_message)
                envelope = sign_envelope(envelope, self.signer)
        except (ValueError, TypeError) as exc:
            return CommandResult(False, f"not signed: {exc}", envelope)
        if robot and robot not in self.robots:
            return CommandResult(False, f"unknown robot {robot!r}", envelope)
        if not self._started:
            return CommandResult(False, "no robot link (the bridge is not running)", envelope)
        try:
            return self._transport(robot, kind, body, envelope)
        except Exception as exc:
            return CommandResult(False, f"{type(exc).__name__}: {exc}", envelope)

    def _transport(self, robot: str, kind: str, body: dict, envelope: dict) -> CommandResult:
        from geometry_msgs.msg import Point32, PolygonStamped
        from std_msgs.msg import String

        if kind in ("protective_stop", "resume") and envelope.get("signed") is not None:
            from agricare.core.security.commands import envelope_to_text  # noqa: PLC0415

            self._pubs[(robot, "command")].publish(String(data=envelope_to_text(envelope["signed"])))
            with self._lock:
                self.state[robot]["stopped_by_app"] = kind == "protective_stop"
            return CommandResult(True, f"{robot}: signed {kind.replace('_', ' ')} sent", envelope)
        if kind in ("protective_stop", "resume"):   # unsigned: a keep-out zone around the robot
            with self._lock:
                pose = self.state[robot]["pose"]
            msg = PolygonStamped()
            msg.header.frame_id = "map"
            msg.header.stamp = self.node.get_clock().now().to_msg()
            if kind == "protective_stop":
                if pose is None:
                    return CommandResult(False, f"{robot}: no pose yet, cannot place the stop zone", envelope)
                h = STOP_BOX_HALF_M
                msg.polygon.points = [Point32(x=float(pose[0] + dx), y=float(pose[1] + dy), z=0.0)
                                      for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h))]
            self._pubs[(robot, "geofence")].publish(msg)
            with self._lock:
                self.state[robot]["stopped_by_app"] = kind == "protective_stop"
            return CommandResult(True, f"{robot}: {kind.replace('_', ' ')} sent", envelope)
        if kind == "dispatch":
            if envelope.get("signed") is not None:
                from agricare.core.security.commands import envelope_to_text  # noqa: PLC0415

                data = envelope_to_text(envelope["signed"])
            else:   # only a dispatcher without an events trust list takes it
                data = json.dumps(body)
            self._pubs[("", "dispatch")].publish(String(data=data))
            return CommandResult(True, f"dispatch {body.get('type')} sent", envelope)
        if kind == "site_answer":
            from agricare_interfaces.msg import SiteAnswer  # noqa: PLC0415

            msg = SiteAnswer(robot=robot, type=str(body.get("type", "")), child=str(body.get("child", "")),
                             trip=str(body.get("trip", "")), guardian=str(body.get("guardian", "")),
                             code=str(body.get("code", "")))
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self._sign_message(msg, "site_answer", robot, envelope)
            self._pubs[(robot, "site_answer")].publish(msg)
            return CommandResult(True, f"{robot}: {body.get('type')} sent", envelope)
        if kind == "pause":
            from agricare_interfaces.msg import MissionPause

            msg = MissionPause(pause=bool(body["pause"]))
            self._sign_message(msg, "mission_goal", robot, envelope)
            self._pubs[(robot, "pause")].publish(msg)
            return CommandResult(True, f"{robot}: {'pause' if body['pause'] else 'resume'} sent", envelope)
        if kind in ("cover_field", "transport_child", "scout_field"):
            return self._send_goal(robot, kind, body, envelope)
        return CommandResult(False, f"unknown command kind {kind!r}", envelope)

    def _sign_message(self, msg, kind: str, robot: str, envelope: dict) -> None:
        """Fill the signature block of a typed command (unsigned without a command key: refused by robots
        with a trust list); the block's key id and sequence number go into the app's audit envelope."""
        key = getattr(self.signer, "key", None)
        if key is None:
            envelope["signed"] = None
            return
        from agricare.ros.signed import sign_message  # noqa: PLC0415

        sign_message(msg, key, kind=kind, target=robot)
        b = msg.signature
        envelope["signed"] = {"kind": b.kind, "target": b.target, "key_id": b.key_id, "seq": int(b.seq),
                              "issued_at_s": b.issued_at_s, "expires_at_s": b.expires_at_s}

    def start_scouting(self, robot: str, rows: int, issuer: str, job_id=None) -> CommandResult:
        """Send the row robot its scouting goal (ScoutField: ``rows`` rows, 0 = its configured number)."""
        rows = int(rows)
        if not 0 <= rows <= 1000:
            return CommandResult(False, f"rows: must be in [0, 1000], got {rows}", {})
        return self.send_command(robot, "scout_field", {"rows": rows, "job_id": job_id}, issuer)

    def _send_goal(self, robot: str, kind: str, body: dict, envelope: dict) -> CommandResult:
        client = self._actions.get((robot, kind))
        if client is None or not client.server_is_ready():
            return CommandResult(False, f"{robot}: no action server on /{robot}/{kind}", envelope)
        goal_cls = client._action_type.Goal
        goal = goal_cls()
        if kind == "cover_field":
            from geometry_msgs.msg import Point32, Polygon
            goal.field_file = str(body.get("field_file", ""))
            goal.field.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in body["polygon"]]
            goal.obstacles = [Polygon(points=[Point32(x=float(x), y=float(y), z=0.0) for x, y in ring])
                              for ring in body.get("holes") or []]
            goal.ab_line.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in (body.get("ab_line") or [])]
        elif kind == "scout_field":
            goal.rows = int(body.get("rows", 0))
        else:
            goal.request_id, goal.child_id = str(body["request_id"]), str(body["child_id"])
            goal.pickup.x, goal.pickup.y = map(float, body["pickup"])
            goal.dropoff.x, goal.dropoff.y = map(float, body["dropoff"])
        self._sign_message(goal, "mission_goal", robot, envelope)
        job = body.get("job_id")

        def feedback(fb, r=robot, job=job):
            f = fb.feedback
            self.on_event("goal_feedback", {"robot": r, "job": job, "state": getattr(f, "state", ""),
                                            "progress": float(getattr(f, "progress", 0.0)),
                                            "eta_s": float(getattr(f, "eta_s", float("nan")))})

        fut = client.send_goal_async(goal, feedback_callback=feedback)

        def accepted(f, r=robot, job=job):
            try:
                handle = f.result()
            except Exception as exc:
                self.on_event("goal_result", {"robot": r, "job": job, "success": False, "message": str(exc)})
                return
            if not handle.accepted:
                self.on_event("goal_result", {"robot": r, "job": job, "success": False, "message": "goal refused"})
                return
            self._goals[f"{r}:{job}"] = handle
            handle.get_result_async().add_done_callback(
                lambda rf: self.on_event("goal_result", {"robot": r, "job": job,
                                                         "success": bool(rf.result().result.success),
                                                         "message": rf.result().result.message}))

        fut.add_done_callback(accepted)
        return CommandResult(True, f"{robot}: {kind} goal sent", envelope)


class Bridges:
    """Several bridges behind the one interface of :class:`Bridge` (e.g. the care town and the farm on
    separate ROS domains, as two simulators each with its own ``/clock``). The first one's clock is the
    care requests' time base."""

    def __init__(self, bridges: list[Bridge]):
        if not bridges:
            raise ValueError("bridges: need at least one")
        self.bridges = list(bridges)
        self.robots = {r: k for b in self.bridges for r, k in b.robots.items()}
        self._by_robot = {r: b for b in self.bridges for r in b.robots}

    @property
    def state(self) -> dict:
        return {r: s for b in self.bridges for r, s in b.state.items()}

    @property
    def on_event(self):
        return self.bridges[0].on_event

    @on_event.setter
    def on_event(self, fn) -> None:
        for b in self.bridges:
            b.on_event = fn

    def start(self) -> None:
        for b in self.bridges:
            b.start()

    def stop(self) -> None:
        for b in self.bridges:
            b.stop()

    def robot_time_s(self) -> float:
        return self.bridges[0].robot_time_s()

    def snapshot(self) -> dict:
        snaps = [b.snapshot() for b in self.bridges]
        out = dict(snaps[0])
        out["robots"] = {r: s for sn in snaps for r, s in sn["robots"].items()}
        out["incidents"] = sorted((d for sn in snaps for d in sn["incidents"]), key=lambda d: -d["t"])[:30]
        return out

    def send_command(self, robot: str, kind: str, body: dict, issuer: str) -> CommandResult:
        b = self._by_robot.get(robot, self.bridges[0]) if robot else self.bridges[0]
        return b.send_command(robot, kind, body, issuer)

    def start_scouting(self, robot: str, rows: int, issuer: str, job_id=None) -> CommandResult:
        b = self._by_robot.get(robot, self.bridges[0])
        return b.start_scouting(robot, rows, issuer, job_id)
