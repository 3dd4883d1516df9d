"""care_mission_node: one care shuttle's day, from the plan to the last hand-over (logic: ``core.missions.care``).

Action
    Serves ``transport_child`` (agricare_interfaces/action/TransportChild, in the robot's namespace). The
    shuttle idles until it has a goal. An empty ``request_id`` runs the whole day plan; a ``request_id`` of
    a trip in the plan starts the day and succeeds when that child is handed over. Feedback: phase,
    progress, ETA (extrapolated from the progress so far; negative when unknown). Cancel: the shuttle stops
    where it is (empty plan, speed limit 0) and holds; children on board stay with the operator's decision.
    One goal at a time.

Plan
    With ``plan_topic`` set (e.g. ``/dispatch/plan``), the stops come from dispatcher_node's latched plan
    (agricare_interfaces/DispatchPlan, signed by a key of ``plan_trust_file``; a newer revision becomes a
    :class:`~agricare.core.missions.care.PlanUpdated`). Without it, the node solves the day of
    ``requests_file`` itself at start with ``agricare.core.planning.dispatch`` (travel times on the
    scenario's roads when ``use_road_distance``). Every shuttle must execute the same plan:
    ``solve_method: greedy`` is deterministic; an OR-Tools plan is solved once per process and shared by
    the shuttles of an in-process run (embedded runner); run dispatcher_node for one process per node.
Navigation
    A :class:`~agricare.core.missions.care.NavigateTo` becomes lane-keeping legs on the scenario's roads
    (:mod:`agricare.core.missions.care_nav`) published on ``plan`` (nav_msgs/Path, map frame) for
    controller_node; a leg is done on ``controller/status`` ``goal_reached`` (seen after the leg started),
    failed on ``goal_missed`` or a time-out. ``speed_limit_mps`` (std_msgs/Float32) carries the cruise or the
    passenger speed (SetPassengerProfile).
Docking
    The shuttle is docked when its pose is within ``dock_xy_tolerance_m`` / ``dock_yaw_tolerance_rad`` of the
    boarding point, else a short straight approach is driven and checked again (``DockingFailed`` when still
    off). With ``marker_docking`` and the scenario's ``world.boarding_signs`` (the surveyed ArUco sign of each
    boarding point), that pose is the estimate (``odom_topic``) fused with the goal's marker as marker_node sees
    it (``markers/poses`` + ``markers/ids``; camera mount from ``robot_description``;
    :mod:`agricare.core.missions.docking`); without a fresh sighting it is the estimate alone, reported on
    ``/diagnostics`` and in the figures (``docking``: place, source, error).
People
    ``care/site_request`` (agricare_interfaces/SiteRequest: type boarding|handover, child, trip, place,
    position) asks the people at the place; ``care/site_answer`` (agricare_interfaces/SiteAnswer, signed: type
    ``boarded`` with child and trip, or ``code`` with child, trip, guardian and code) answers (staff, guardians, a
    door sensor on the vehicle; ``care_site_sim_node`` in simulation). The shuttle checks a code itself
    before a child is released (:class:`~agricare.core.missions.handover.TripCodeVerifier` with the key
    ``handover_key_file``): the code must be bound to this child, guardian, trip and vehicle, issued at most
    ``code_max_lifetime_s`` ago and not used before (``used_codes_file``, required, also keeps the latest time
    seen so a wound-back clock is refused). A refusal tells the sender only a generic reason; the detail goes
    to the audit log. Each release sends the audit chain head (``care/notifications`` ``audit_head``).
Safety
    ``safety/state`` EMERGENCY_STOP -> hold (empty plan), any other state after it (the stop was reset)
    -> resume; ``battery_state`` -> battery level.
Right of way (:mod:`agricare.core.missions.right_of_way`)
    Each shuttle puts its own state (estimate, held by its supervisor for an obstacle, children aboard, next
    deadline, giving way) in ``mission/status`` detail ``fleet`` and reads its peers' (``fleet_peers``:
    ``/<peer>/mission/status``). When two shuttles hold each other nose to nose for ``detect_s``, the one
    that comes second in the order (a child aboard, the earlier deadline, the name) reverses out of the other's
    way (a plan with ``plan_directions`` -1; its supervisor still gates it), waits until the other has passed
    and re-plans its leg. The other shuttle's stop is released by its own supervisor only. A person in the way
    is never a stand-off. While held by a peer the navigation time-out does not run.
Publishes
    ``mission/status`` (agricare_interfaces/MissionStatus; ``state`` is the phase, ``done`` at the end,
    ``failed`` after a safe stop; ``detail`` is JSON with the day's figures: trips delivered / in window,
    hand-overs verified / refused, boarding and hand-over waits, no-shows, children returned),
    ``handover/events`` (HandoverEvent, action ``release``), ``care/notifications`` (CareNotification),
    ``/diagnostics``.

The pose comes from ``odom_topic`` in the map frame (``odometry/filtered`` of the localisation on a
vehicle and in the embedded scenarios alike).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import math

import numpy as np
import yaml
from agricare_interfaces.action import TransportChild
from agricare_interfaces.msg import (CareNotification, ControllerStatus, DispatchPlan, HandoverEvent, MissionStatus,
                                     SafetyState, SiteAnswer, SiteRequest)
from geometry_msgs.msg import PoseArray
from nav_msgs.msg import Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Float32, Int8MultiArray, String

from agricare import paths
from agricare.core.geometry import angle_diff
from agricare.core.missions import care
from agricare.core.missions.right_of_way import FleetState, RightOfWay, RightOfWayParams, give_way_path
from agricare.core.missions.audit import AuditError, AuditLog, AuditWriteError
from agricare.core.missions.handover import KeyFileError, TripCodeVerifier, UsedCodeStore, Verdict, load_key
from agricare.core.missions.docking import MarkerDocking
from agricare.core.missions.care_nav import RoadNetwork, RoadNetworkParams, RoutingError, densify
from agricare.core.perception.markers import BoardingSigns
from agricare.core.planning.dispatch import Problem, request_meta, solve
from agricare.core.security.keys import KeyFileError as TrustFileError
from agricare.ros.convert import array_to_path, plan_msg_to_dict, pose_to_xyyaw
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.guard import SecurityReport, guarded
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.mounts import MountFromDescription
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched
from agricare.ros.signed import SignedInput

STAFF_PLACES = ("nursery", "clinic", "nursery_return")
#: plans solved in this process, shared by the shuttles of one fleet (OR-Tools under a time limit is not
#: deterministic: every shuttle must execute the same plan). Key: (day, scenario, method, limit, roads).
_SOLVED: dict[tuple, dict] = {}


@dataclasses.dataclass(frozen=True)
class CareMissionNodeParams:
    """care_mission_node parameters (SI units; the mission's own are those of ``CareMissionParams``).

    Attributes
    ----------
    robot_name : str
        Vehicle id in the requests / plan.
    scenario_file : str
        Scenario with the town's roads and places (boarding points, markers).
    requests_file : str
        The day's requests (windows, children, guardians); solved here when ``plan_topic`` is empty.
    plan_topic : str
        dispatcher_node's plan topic (empty: solve the day here).
    solve_method : str
        ``greedy`` (deterministic) or ``ortools``.
    park_xy : (x, y)
        Where the shuttle parks at the end (default: its depot in the requests).
    marker_id_base : int
        Marker id of the scenario's place i is ``marker_id_base + i`` (-1: no docking, board at the kerb).
    """

    robot_name: str = ""
    scenario_file: str = "care.yaml"
    requests_file: str = ""
    plan_topic: str = ""
    solve_method: str = "greedy"
    solve_time_limit_s: float = 2.0
    solve_solution_limit: int = 200   # deterministic plans: stop after this many solutions (0: time only)
    done_when_served: bool = False    # report "done" once every stop is served (before parking)
    use_road_distance: bool = True
    odom_topic: str = "odometry/filtered"
    start_delay_s: float = 1.0
    tick_period_s: float = 0.2
    status_period_s: float = 1.0
    cruise_speed_mps: float = 2.0
    passenger_speed_mps: float = 1.5
    dock_xy_tolerance_m: float = 0.6
    dock_yaw_tolerance_rad: float = 0.35
    nav_timeout_min_s: float = 60.0
    nav_timeout_speed_mps: float = 0.25
    marker_id_base: int = 10
    marker_docking: bool = True       # fuse the boarding point's ArUco sign into the docking pose (if signs exist)
    park_xy: tuple[float, ...] = ()
    handover_service: str = "verify_handover"
    handover_timeout_s: float = 5.0
    handover_key_file: str = ""
    used_codes_file: str = ""
    code_max_lifetime_s: float = 3600.0
    accept_unbound_codes: bool = False   # also version-1 codes (no vehicle, no issue time): issuers that plan later
    plan_trust_file: str = ""
    site_trust_file: str = ""
    goal_trust_file: str = ""
    command_replay_file: str = ""
    audit_log: str = ""
    audit_key_file: str = ""
    create_audit_key_if_missing: bool = False   # simulations only: a fresh vehicle key for the audit signatures
    keep_left: bool = True
    uturn_ahead_m: float = 6.0
    merge_m: float = 4.0
    pickup_grace_s: float = 0.0
    guardian_escalate_s: float = 120.0
    guardian_wait_s: float = 600.0
    battery_low_fraction: float = 0.25
    docking_attempts: int = 3
    navigation_attempts: int = 3
    fleet_peers: tuple[str, ...] = ()   # the other shuttles: their mission/status carries their fleet state
    right_of_way: bool = True           # resolve nose-to-nose stand-offs with the peers (see module docstring)
    right_of_way_detect_s: float = 3.0
    footprint_xy: tuple[float, ...] = (2.2, 0.8, -1.0, 0.8, -1.0, -0.8, 2.2, -0.8)   # as the safety profile

    def __post_init__(self):
        if not self.robot_name:
            raise ValueError("robot_name: must be set (vehicle id of this shuttle)")
        if not self.requests_file and not self.plan_topic:
            raise ValueError("requests_file: must be set (or plan_topic)")
        if self.plan_topic and not self.plan_trust_file:
            raise ValueError("plan_trust_file: must be set with plan_topic (only signed plans are accepted)")
        if not self.handover_key_file:
            raise ValueError("handover_key_file: must be set (the shuttle verifies hand-over codes itself)")
        if not self.used_codes_file:
            raise ValueError("used_codes_file: must be set (a code must work once, also across restarts)")
        if not self.goal_trust_file:
            raise ValueError("goal_trust_file: must be set (only signed transport_child goals are accepted)")
        if not self.site_trust_file:
            raise ValueError("site_trust_file: must be set (only signed site answers are accepted)")
        if not self.command_replay_file:
            raise ValueError("command_replay_file: must be set (signed goals, plans and site answers must not "
                             "be replayable after a restart)")
        if not (math.isfinite(self.code_max_lifetime_s) and 0 < self.code_max_lifetime_s < 65536):
            raise ValueError(f"code_max_lifetime_s: must be in (0, 65536) s, got {self.code_max_lifetime_s!r}")
        if self.solve_method not in ("greedy", "ortools"):
            raise ValueError(f"solve_method: expected 'greedy' or 'ortools', got {self.solve_method!r}")
        for name in ("tick_period_s", "status_period_s", "cruise_speed_mps", "passenger_speed_mps",
                     "dock_xy_tolerance_m", "dock_yaw_tolerance_rad", "nav_timeout_min_s", "nav_timeout_speed_mps",
                     "handover_timeout_s", "solve_time_limit_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be finite and > 0, got {v!r}")
        if len(self.park_xy) not in (0, 2):
            raise ValueError(f"park_xy: expected [] or [x, y], got {list(self.park_xy)!r}")
        if not (math.isfinite(self.start_delay_s) and self.start_delay_s >= 0):
            raise ValueError(f"start_delay_s: must be >= 0, got {self.start_delay_s!r}")

    def mission_params(self, depot_xy, nursery_xy, nursery_marker_id) -> care.CareMissionParams:
        return care.CareMissionParams(
            depot_xy=tuple(depot_xy), nursery_xy=tuple(nursery_xy), nursery_marker_id=int(nursery_marker_id),
            pickup_grace_s=self.pickup_grace_s, guardian_escalate_s=self.guardian_escalate_s,
            guardian_wait_s=self.guardian_wait_s, battery_low_fraction=self.battery_low_fraction,
            docking_attempts=self.docking_attempts, navigation_attempts=self.navigation_attempts)


def load_day(requests_file: str) -> dict:
    """The REQUESTS.yaml of the day (path resolved against the share directory)."""
    with open(paths.resolve(requests_file)) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{requests_file}: expected a mapping with speed_mps, vehicles, requests")
    return data


def solve_day(data: dict, method: str, time_limit_s: float, net: RoadNetwork | None,
              solution_limit: int = 0) -> dict:
    """Solve a day; returns the dispatcher-style plan ``{"solution": ..., "meta": ...}``."""
    solver_data = {k: data[k] for k in ("speed_mps", "vehicles", "requests")}
    problem = Problem.from_dict(solver_data)
    if net is not None:
        @functools.lru_cache(maxsize=4096)
        def road(a, b):
            try:
                return net.distance_m(a, b)
            except RoutingError:
                return math.hypot(b[0] - a[0], b[1] - a[1])

        def dist(a, b):
            return road((round(a[0], 2), round(a[1], 2)), (round(b[0], 2), round(b[1], 2)))

        problem = dataclasses.replace(problem, distance_fn=dist)
    sol = solve(problem, method=method, time_limit_s=time_limit_s, solution_limit=solution_limit or None)
    return {"revision": 0, "solution": sol.to_json(), "meta": request_meta(data)}


class CareMissionNode(ManagedNode):
    """One shuttle's care mission (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("care_mission_node", **kwargs)
        self.params = p = load_params(self, CareMissionNodeParams)
        try:
            scen = yaml.safe_load(paths.resolve(p.scenario_file, "config/scenarios").read_text())
            world = scen["world"]
            self.net = RoadNetwork.from_world(world, RoadNetworkParams(
                keep_left=p.keep_left, uturn_ahead_m=p.uturn_ahead_m, merge_m=p.merge_m))
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            raise ParameterError(f"care_mission_node: parameter 'scenario_file': {exc}") from None
        self.signs = None
        if world.get("boarding_signs") is not None and p.marker_docking:
            try:
                self.signs = BoardingSigns(**world["boarding_signs"])
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"care_mission_node: scenario world.boarding_signs: {exc}") from None
            if self.signs.id_base != p.marker_id_base:
                raise ParameterError(f"care_mission_node: marker_id_base {p.marker_id_base} is not the scenario's "
                                     f"boarding_signs.id_base {self.signs.id_base}")
        self.places = {}
        for i, pl in enumerate(world.get("places") or []):
            b = pl.get("boarding")
            if b:
                self.places[str(pl["name"])] = (float(b["x_m"]), float(b["y_m"]), math.radians(float(b["yaw_deg"])),
                                                (p.marker_id_base + i) if p.marker_id_base >= 0 else -1)
        start_yaw = 0.0
        for r in scen.get("robots") or []:
            if r.get("name") == p.robot_name:
                start_yaw = math.radians(float((r.get("start") or {}).get("yaw_deg", 0.0)))
        self.day = {}
        if p.requests_file:
            try:
                self.day = load_day(p.requests_file)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                raise ParameterError(f"care_mission_node: parameter 'requests_file': {exc}") from None
        self.windows = {str(r["id"]): {"pickup_window": r["pickup_window"], "dropoff_by": r["dropoff_by"]}
                        for r in self.day.get("requests") or []}
        depot = None
        for v in self.day.get("vehicles") or []:
            if str(v["id"]) == p.robot_name:
                depot = tuple(float(c) for c in v["depot"])
        if depot is None:
            depot = self.places.get("depot", (0.0, 0.0))[:2]
        if p.park_xy:
            depot = (float(p.park_xy[0]), float(p.park_xy[1]))
        self.depot_pose = (depot[0], depot[1], start_yaw)
        nursery = self.places.get("nursery", (0.0, 0.0, 0.0, -1))
        self.mission_params = p.mission_params(depot, nursery[:2], nursery[3])
        self.audit = None
        if p.audit_log:
            try:
                signer = None
                if p.audit_key_file:
                    import os

                    from agricare.core.security.keys import SigningKey, load_signing_key, write_signing_key

                    key_path = str(paths.resolve(p.audit_key_file))
                    if p.create_audit_key_if_missing and not os.path.exists(key_path):
                        key_id = os.path.splitext(os.path.basename(key_path))[0]
                        write_signing_key(os.path.dirname(key_path), SigningKey.generate(key_id))
                    signer = load_signing_key(key_path)
                self.audit = AuditLog.open(p.audit_log, signer=signer, t_s=self.get_clock().now().nanoseconds * 1e-9)
            except (AuditError, OSError, ValueError) as exc:
                raise ParameterError(f"care_mission_node: parameter 'audit_log' / 'audit_key_file': {exc}") from None
        try:
            self.code_store = UsedCodeStore(p.used_codes_file)
        except (ValueError, OSError) as exc:
            raise ParameterError(f"care_mission_node: parameter 'used_codes_file': {exc}") from None
        self.codes: TripCodeVerifier | None = None
        try:
            self._load_code_key()
        except (KeyFileError, OSError) as exc:
            raise ParameterError(f"care_mission_node: parameter 'handover_key_file': {exc}") from None
        if self.codes is None:  # a simulation's key may be created by another process a moment later
            self.get_logger().warning(f"hand-over key {p.handover_key_file} not there yet: loaded at first use")
        self.security = SecurityReport(self)
        self.plan_input = self.site_input = None
        try:
            self.goal_input = SignedInput(self.security, "transport_child_goal", "mission_goal",
                                          paths.resolve(p.goal_trust_file), p.command_replay_file, p.robot_name)
            if p.plan_trust_file:
                self.plan_input = SignedInput(self.security, "dispatch_plan", "dispatch_plan",
                                              paths.resolve(p.plan_trust_file), p.command_replay_file, p.robot_name,
                                              max_lifetime_s=86400.0)
            if paths.resolve(p.site_trust_file).exists():
                self._load_site_trust()
        except (TrustFileError, OSError, ValueError) as exc:
            raise ParameterError(f"care_mission_node: trust list: {exc}") from None
        self.mission: care.CareMission | None = None
        self.plan_revision = -1
        self.diag = Diagnostics(self, f"care_mission {p.robot_name}")

        self._plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self._speed_pub = self.create_publisher(Float32, "speed_limit_mps", LATCHED_QOS)
        self._dirs_pub = self.create_publisher(Int8MultiArray, "plan_directions", LATCHED_QOS)
        self._status_pub = self.create_publisher(MissionStatus, "mission/status", RELIABLE_QOS)
        self._site_pub = self.create_publisher(SiteRequest, "care/site_request", RELIABLE_QOS)
        self._note_pub = self.create_publisher(CareNotification, "care/notifications", RELIABLE_QOS)
        self._ho_pub = self.create_publisher(HandoverEvent, "handover/events", RELIABLE_QOS)
        g = self.security
        self.create_subscription(Odometry, p.odom_topic, guarded(g, "odom")(self._on_odom), SENSOR_QOS)
        self.create_subscription(ControllerStatus, "controller/status", guarded(g, "controller_status")(
            self._on_ctrl), RELIABLE_QOS)
        self.create_subscription(SiteAnswer, "care/site_answer", guarded(g, "site_answer")(self._on_site),
                                 RELIABLE_QOS)
        subscribe_latched(self, SafetyState, "safety/state", guarded(g, "safety_state")(self._on_safety))
        self.create_subscription(BatteryState, "battery_state", guarded(g, "battery")(self._on_battery), SENSOR_QOS)
        if p.plan_topic:
            subscribe_latched(self, DispatchPlan, p.plan_topic, guarded(g, "dispatch_plan")(self._on_plan_msg))
        self.safety = (0, "")
        self.row = None
        self._yield = None   # giving way: {"stage": "backing" | "waiting", "saved": the interrupted navigation}
        self._waiting_for_peer = False
        self._speed_value = p.cruise_speed_mps   # the speed limit the mission wants (restored after waiting)
        if p.right_of_way:
            self.row = RightOfWay(p.robot_name, RightOfWayParams(detect_s=p.right_of_way_detect_s))
            for peer in p.fleet_peers:
                if peer and peer != p.robot_name:
                    self.create_subscription(MissionStatus, f"/{peer}/mission/status",
                                             guarded(g, "fleet_status")(self._on_peer_status), RELIABLE_QOS)
        self.docking = MarkerDocking(self.signs) if self.signs is not None else None
        self.dock_source = "estimate"
        self.pose_std_m = 0.05
        self._marker_poses = None
        if self.docking is not None:
            self.camera_mount = MountFromDescription(self, "camera_optical")
            self.create_subscription(PoseArray, "markers/poses", guarded(g, "markers")(self._on_marker_poses),
                                     RELIABLE_QOS)
            self.create_subscription(String, "markers/ids", guarded(g, "markers")(self._on_marker_ids), RELIABLE_QOS)

        self.pose = None
        self.speed = 0.0
        self.events: collections.deque = collections.deque()
        self.nav = None  # dict: legs, i, started_s, armed, purpose, goal
        self.estop = False
        self.state = "idle"
        self.finished = False
        self.figures = {"trips": {}, "handovers_verified": 0, "handovers_refused": 0, "refusals": [],
                        "notifications": [], "distance_m": 0.0}
        self._last_xy = None
        self._last_status_s = -math.inf
        self._last_battery_s = -math.inf
        self._current_stop: care.CareStop | None = None
        self._service_start_s = None
        self._pending_verify = None
        self._settle = None  # (goal pose, final): docking check once the shuttle stands still

        if not p.plan_topic:
            try:
                net = self.net if p.use_road_distance else None
                key = (json.dumps(self.day, sort_keys=True, default=str), str(p.scenario_file), p.solve_method,
                       p.solve_time_limit_s, p.use_road_distance)
                if key not in _SOLVED:
                    _SOLVED[key] = solve_day(self.day, p.solve_method, p.solve_time_limit_s, net,
                                             p.solve_solution_limit)
                plan = _SOLVED[key]
            except (ValueError, KeyError) as exc:
                raise ParameterError(f"care_mission_node: parameter 'requests_file': {exc}") from None
            self._install(plan)
        self._goal = None
        self._goal_done = None
        self._goal_t0 = None
        self._last_feedback_s = -math.inf
        self._action = ActionServer(self, TransportChild, "transport_child", execute_callback=self._execute_goal,
                                    goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT)
        self.create_timer(p.tick_period_s, self._on_tick)
        self.autostart()
        self.diag.ok("waiting for a transport_child goal", stops=0 if self.mission is None else len(self.mission.stops))

    # ------------------------------------------------------------------ helpers
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stops_from(self, plan: dict) -> list[care.CareStop]:
        marker_of_place = {name: v[3] for name, v in self.places.items()}
        stops = care.stops_from_plan(plan, self.params.robot_name, self.windows or None, marker_of_place)
        self.unserved = plan["solution"].get("unserved", [])
        meta = plan.get("meta") or {}
        for s in stops:
            trip = self.figures["trips"].setdefault(s.request_id, {
                "child": s.child_id, "pickup_place": meta.get(s.request_id, {}).get("pickup_place", ""),
                "dropoff_place": meta.get(s.request_id, {}).get("dropoff_place", "")})
            if s.action == care.PICKUP:
                trip["pickup_window"] = [s.window_open_s, s.window_close_s]
            else:
                trip["dropoff_by"] = s.window_close_s
        return stops

    def _install(self, plan: dict, stops: list | None = None) -> None:
        stops = self._stops_from(plan) if stops is None else stops
        if self.mission is None:
            self.mission = care.CareMission(stops, self.mission_params, self.audit, self.params.robot_name)
            self.get_logger().info(f"plan: {len(stops)} stops: " + ", ".join(f"{s.action} {s.request_id}"
                                                                            for s in stops))
        else:
            self.events.append(care.PlanUpdated(tuple(stops)))

    def _goal_pose(self, xy) -> tuple[float, float, float]:
        """Boarding pose (with its yaw) of the place at ``xy``; the depot's parking pose for the depot."""
        x, y = float(xy[0]), float(xy[1])
        if math.hypot(x - self.depot_pose[0], y - self.depot_pose[1]) < 0.5:
            return self.depot_pose
        best = min(self.places.values(), key=lambda v: math.hypot(v[0] - x, v[1] - y), default=None)
        if best is not None and math.hypot(best[0] - x, best[1] - y) < 1.0:
            return (x, y, best[2])
        yaw = self.pose[2] if self.pose is not None else 0.0
        return (x, y, yaw)

    def _note(self, kind: str, message: str, level: str = "info", **extra) -> None:
        body = {"t_s": round(self._now_s(), 2), "robot": self.params.robot_name, "level": level, "kind": kind,
                "message": message, **extra}
        note = CareNotification(robot=self.params.robot_name, level=level, kind=kind, message=message,
                                trip=str(extra.get("trip") or ""), audit_head=str(extra.get("audit_head") or ""),
                                requests=[str(r) for r in (extra.get("onboard") or extra.get("dropped") or [])])
        note.header.stamp = self.get_clock().now().to_msg()
        self._note_pub.publish(note)
        if level != "info":
            self.figures["notifications"].append({k: body[k] for k in ("t_s", "level", "kind", "message")})
        text = f"{kind}: {message}"
        if level == "info":
            self.get_logger().info(text)
        elif level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().error(text)

    # ------------------------------------------------------------------ inputs
    def _on_plan_msg(self, msg: DispatchPlan) -> None:
        """Only a plan signed by a trusted dispatcher key, newer than the current one, is installed."""
        if self.plan_input.check(msg) is None:
            return
        try:
            plan = plan_msg_to_dict(msg)
            rev = plan["revision"]
            if rev <= self.plan_revision:
                self.security.refused("dispatch_plan", "old_revision", f"revision {rev} <= {self.plan_revision}")
                return
            stops = self._stops_from(plan)  # validates the whole plan before anything changes
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, IndexError) as exc:
            self.security.refused("dispatch_plan", "malformed", str(exc)[:120])
            return
        self.plan_revision = rev
        self.security.accepted("dispatch_plan")
        self._install(plan, stops)

    def _on_odom(self, msg: Odometry) -> None:
        self.pose = pose_to_xyyaw(msg.pose.pose)
        c = msg.pose.covariance
        if math.isfinite(c[0]) and math.isfinite(c[7]) and max(c[0], c[7]) > 0:
            self.pose_std_m = math.sqrt(max(c[0], c[7]))
        self.speed = float(msg.twist.twist.linear.x)
        xy = self.pose[:2].copy()
        if self._last_xy is not None:
            self.figures["distance_m"] += float(np.hypot(*(xy - self._last_xy)))
        self._last_xy = xy

    def _on_ctrl(self, msg: ControllerStatus) -> None:
        state = msg.state
        nav = self.nav
        if nav is None:
            return
        now = self._now_s()
        if state != "goal_reached":
            nav["armed"] = True
        if state == "goal_reached":
            end = nav["legs"][nav["i"]][-1]
            near = self.pose is not None and math.hypot(self.pose[0] - end[0], self.pose[1] - end[1]) < 1.0
            if nav["armed"] or (now - nav["started_s"] > 2.0 and near):
                self._leg_done(now)
        elif state == "goal_missed" and nav["armed"]:
            end = nav["legs"][nav["i"]][-1]
            near = self.pose is not None and math.hypot(self.pose[0] - end[0], self.pose[1] - end[1]) < 1.5
            if near and (nav["i"] + 1 < len(nav["legs"]) or nav["purpose"] == "nav"):
                self._leg_done(now)  # close enough: a turn-round point, or docking corrects the rest
            else:
                self._nav_failed("controller: passed the goal outside tolerance")

    def _load_site_trust(self) -> None:
        p = self.params
        self.site_input = SignedInput(self.security, "site_answer", "site_answer", paths.resolve(p.site_trust_file),
                                      p.command_replay_file, p.robot_name, max_lifetime_s=600.0)

    def _on_site(self, msg: SiteAnswer) -> None:
        if self.site_input is None:
            try:  # the site's trust list may be written by another process after this node started
                self._load_site_trust()
            except (TrustFileError, OSError, ValueError) as exc:
                self.security.refused("site_answer", "no_trust_list", str(exc)[:120])
                return
        if self.site_input.check(msg) is None:   # unsigned, forged, expired, replayed: refused and reported
            return
        if msg.type not in ("boarded", "code"):
            self.security.refused("site_answer", "malformed", f"type {msg.type[:40]!r}")
            return
        stop = self.mission.current if self.mission is not None else None
        if stop is None or msg.trip != stop.request_id:
            return
        if msg.type == "boarded" and self.mission.phase == care.Phase.BOARDING:
            self.events.append(care.Boarded(msg.child))
        elif msg.type == "code" and self.mission.phase == care.Phase.HANDOVER:
            self._check_code(stop, msg.guardian, msg.code)

    def _on_peer_status(self, msg: MissionStatus) -> None:
        if not msg.detail.startswith("{"):
            return
        try:
            fleet = json.loads(msg.detail).get("fleet")
            if fleet:
                self.row.on_peer(FleetState.from_dict(fleet))
        except (ValueError, TypeError, KeyError, AttributeError):
            self.security.refused("fleet_status", "malformed", msg.robot[:40])

    def _on_safety(self, msg) -> None:
        self.safety = (int(msg.state), str(msg.reason))
        if msg.state == SafetyState.EMERGENCY_STOP:
            if not self.estop:
                self.estop = True
                self.events.append(care.EmergencyStop(msg.reason or "emergency stop"))
        elif self.estop:
            self.estop = False
            self.events.append(care.EmergencyStopReset())

    def _on_battery(self, msg: BatteryState) -> None:
        now = self._now_s()
        if now - self._last_battery_s < 1.0 or not math.isfinite(msg.percentage):
            return
        self._last_battery_s = now
        self.events.append(care.BatteryLevel(float(msg.percentage)))

    # ------------------------------------------------------------------ hand-over check
    def _load_code_key(self) -> None:
        path = paths.resolve(self.params.handover_key_file)
        if self.codes is None and path.exists():
            self.codes = TripCodeVerifier(load_key(path), self.params.robot_name, self.code_store,
                                          max_lifetime_s=self.params.code_max_lifetime_s,
                                          accept_v1=self.params.accept_unbound_codes)

    def _check_code(self, stop: care.CareStop, guardian: str, code: str) -> None:
        """Verify a presented code here, on the vehicle (no network service decides a release)."""
        now = self._now_s()
        try:
            self._load_code_key()
        except (KeyFileError, OSError) as exc:
            self.diag.error(f"hand-over key unusable: {exc}")
        if self.codes is None:
            v = Verdict(False, "verifier_unavailable", "no hand-over key on this vehicle")
        else:
            v = self.codes.verify(code, stop.child_id, guardian, stop.request_id, now)
        accepted, reason = v.accepted, v.reason
        if self.audit is not None:
            try:
                self.audit.append("handover_check", now, robot=self.params.robot_name, trip=stop.request_id,
                                  child=stop.child_id, guardian=guardian, accepted=accepted, reason=reason,
                                  detail=v.detail, nonce=v.nonce_hex)
            except AuditWriteError as exc:
                accepted, reason = False, "audit_failure"
                self.get_logger().error(f"hand-over refused: audit record not written: {exc}")
        ev = HandoverEvent()
        ev.header.stamp = self.get_clock().now().to_msg()
        ev.trip_id, ev.child_id, ev.guardian_id = stop.request_id, stop.child_id, guardian
        ev.action, ev.accepted, ev.reason = "verify", accepted, reason
        self._ho_pub.publish(ev)
        self._on_verified(accepted, reason, stop, guardian)

    def _on_verified(self, accepted: bool, reason: str, stop, guardian) -> None:
        trip = self.figures["trips"].setdefault(stop.request_id, {"child": stop.child_id})
        if accepted:
            self.figures["handovers_verified"] += 1
            trip["receiver"] = guardian
        else:
            self.figures["handovers_refused"] += 1
            self.figures["refusals"].append({"trip": stop.request_id, "child": stop.child_id, "guardian": guardian,
                                             "reason": reason})
        self.events.append(care.HandoverResult(stop.child_id, accepted, reason, guardian))

    # ------------------------------------------------------------------ navigation
    def _publish_plan(self, arr) -> None:
        self._plan_pub.publish(array_to_path(np.asarray(arr, dtype=float).reshape(-1, 3), "map",
                                             self.get_clock().now().to_msg()))

    def _start_legs(self, legs, purpose: str, goal) -> None:
        now = self._now_s()
        self._end_yield(now)
        if not legs:
            self.nav = None
            self.events.append(care.Docked() if purpose == "dock" else care.GoalReached())
            return
        length = sum(float(np.sum(np.hypot(*np.diff(leg[:, :2], axis=0).T))) for leg in legs)
        timeout = self.params.nav_timeout_min_s + length / self.params.nav_timeout_speed_mps
        self.nav = {"legs": legs, "i": 0, "started_s": now, "armed": False, "purpose": purpose, "goal": goal,
                    "deadline_s": now + timeout}
        self._publish_plan(legs[0])

    def _leg_done(self, now: float) -> None:
        nav = self.nav
        if nav["purpose"] == "yield":   # out of the other shuttle's way: wait until it has passed
            self.nav = None
            self._publish_plan(np.zeros((0, 3)))
            self._yield["stage"] = "waiting"
            return
        nav["i"] += 1
        if nav["i"] < len(nav["legs"]):
            nav["started_s"], nav["armed"] = now, False
            self._publish_plan(nav["legs"][nav["i"]])
            return
        self.nav = None
        self._publish_plan(np.zeros((0, 3)))
        if nav["purpose"] == "dock":
            self._settle = (nav["goal"], True)
        else:
            self.events.append(care.GoalReached())

    def _nav_failed(self, reason: str) -> None:
        nav, self.nav = self.nav, None
        self._publish_plan(np.zeros((0, 3)))
        if nav is not None and nav["purpose"] == "yield":   # gave what way it could: wait, then re-plan
            self._yield["stage"] = "waiting"
            return
        if nav is not None and nav["purpose"] == "dock":
            self.events.append(care.DockingFailed(reason))
        else:
            self.events.append(care.NavigationFailed(reason))

    def _navigate(self, xy) -> None:
        goal = self._goal_pose(xy)
        try:
            legs = self.net.route(self.pose, goal)
        except RoutingError as exc:
            self.events.append(care.NavigationFailed(str(exc)))
            return
        self._start_legs(legs, "nav", goal)

    # ------------------------------------------------------------------ docking (marker + estimate)
    def _marker_of(self, goal) -> int:
        v = min(self.places.values(), key=lambda v: math.hypot(v[0] - goal[0], v[1] - goal[1]), default=None)
        return v[3] if v is not None and math.hypot(v[0] - goal[0], v[1] - goal[1]) < 1.0 else -1

    def _on_marker_poses(self, msg: PoseArray) -> None:
        self._marker_poses = msg

    def _on_marker_ids(self, msg: String) -> None:
        poses, self._marker_poses = self._marker_poses, None
        goal = (self.nav or {}).get("goal") or (self._settle[0] if self._settle else None)
        if poses is None or goal is None or self.pose is None or self.camera_mount.value is None:
            return
        try:
            ids = [int(d["id"]) for d in json.loads(msg.data)]
        except (ValueError, TypeError, KeyError):
            return
        want = self._marker_of(goal)
        if want < 0 or len(ids) != len(poses.poses) or want not in ids:
            return
        m = poses.poses[ids.index(want)].position
        v = np.asarray(self.camera_mount.value)
        self.docking.on_detection(self._now_s(), want, (m.x, m.y, m.z), (v[:3], v[3:].reshape(3, 3)),
                                  (goal[0], goal[1], goal[2]), self.pose)

    def _dock_pose(self, goal):
        """The pose docking is judged on: the estimate, with the goal's marker fused in when it is seen."""
        if self.docking is None:
            return np.asarray(self.pose, dtype=float), "estimate"
        return self.docking.fused(self._now_s(), self._marker_of(goal), self.pose, self.pose_std_m)

    def _dock_error(self, goal, pose=None) -> tuple[float, float]:
        pose = self.pose if pose is None else pose
        return (math.hypot(pose[0] - goal[0], pose[1] - goal[1]), abs(angle_diff(goal[2], pose[2])))

    def _check_docked(self, goal, final: bool = False) -> None:
        pose, self.dock_source = self._dock_pose(goal)
        d, a = self._dock_error(goal, pose)
        p = self.params
        self.figures.setdefault("docking", []).append(
            {"goal": [round(goal[0], 2), round(goal[1], 2)], "source": self.dock_source, "error_m": round(d, 3),
             "t_s": round(self._now_s(), 3)})
        if self.docking is not None:
            if self.dock_source == "marker":
                self.diag.ok(f"docking on marker {self._marker_of(goal)} fused with the estimate", error_m=f"{d:.3f}")
            else:
                self.diag.warn(f"docking on the estimate alone: marker {self._marker_of(goal)} not seen",
                               error_m=f"{d:.3f}")
                self.get_logger().warning(f"docking at {goal[0]:.1f}, {goal[1]:.1f} on the estimate alone: marker "
                                          f"{self._marker_of(goal)} not seen")
        if d <= p.dock_xy_tolerance_m and a <= p.dock_yaw_tolerance_rad:
            self.events.append(care.Docked())
            return
        if final:
            self.events.append(care.DockingFailed(f"{d:.2f} m / {math.degrees(a):.0f} deg off the boarding point"))
            return
        # short straight approach from 2 m behind the line of the boarding point, in the estimate's frame to where
        # the fused pose reaches the goal
        target = np.array([goal[0] - (pose[0] - self.pose[0]), goal[1] - (pose[1] - self.pose[1])])
        back = target - 2.0 * np.array([math.cos(goal[2]), math.sin(goal[2])])
        ahead = np.dot(self.pose[:2] - back, [math.cos(goal[2]), math.sin(goal[2])])
        pts = [self.pose[:2]] + ([back] if ahead < 0.5 else []) + [target]
        self._start_legs([densify(np.vstack(pts), 0.1)], "dock", goal)

    # ------------------------------------------------------------------ actions
    def _execute(self, actions, now: float, before: care.CareStop | None = None) -> None:
        for act in actions:
            if isinstance(act, care.NavigateTo):
                self._current_stop = self.mission.current
                self._navigate(act.xy)
            elif isinstance(act, care.Dock):
                self._settle = (self._goal_pose(act.xy), False)  # checked once the shuttle stands still
            elif isinstance(act, (care.AwaitBoarding, care.RequestHandover)):
                cands = [s for s in [before, self.mission.current] if s is not None]
                stop = next((s for s in cands if s.request_id == act.request_id and s.child_id == act.child_id),
                            None)
                if stop is not None:
                    self._site_request("boarding" if isinstance(act, care.AwaitBoarding) else "handover", now, stop)
            elif isinstance(act, care.ReleaseChild):
                trip = self.figures["trips"].setdefault(act.request_id, {"child": act.child_id})
                trip["delivered_s"] = round(now, 2)
                trip["handover_wait_s"] = round(now - (self._service_start_s or now), 2)
                ev = HandoverEvent()
                ev.header.stamp = self.get_clock().now().to_msg()
                ev.trip_id, ev.child_id, ev.guardian_id = act.request_id, act.child_id, act.guardian_id
                ev.action, ev.accepted, ev.reason = "release", True, "ok"
                self._ho_pub.publish(ev)
                head = self.audit.head if self.audit is not None else ""
                self._note("released", f"{act.child_id} handed over to {act.guardian_id}", trip=act.request_id,
                           audit_head=head)
            elif isinstance(act, care.HoldStill):
                self._end_yield(now)
                self.nav = None
                self._publish_plan(np.zeros((0, 3)))
            elif isinstance(act, care.SetPassengerProfile):
                p = self.params
                self._set_speed(p.passenger_speed_mps if act.passenger else p.cruise_speed_mps)
            elif isinstance(act, care.Notify):
                self._note(act.kind, act.message, act.level, trip=act.request_id)
            elif isinstance(act, care.RequestReplan):
                self._note("replan_requested", act.reason, "warn", dropped=list(act.dropped_requests))
            elif isinstance(act, care.Finished):
                self.finished = True
                self._note("finished", json.dumps(dict(act.summary)))

    def _site_request(self, kind: str, now: float, stop: care.CareStop) -> None:
        self._service_start_s = now
        trip = self.figures["trips"].setdefault(stop.request_id, {"child": stop.child_id})
        trip["pickup_start_s" if kind == "boarding" else "dropoff_start_s"] = round(now, 2)
        if stop.place == "nursery_return":
            trip["returned_start_s"] = round(now, 2)
        msg = SiteRequest(type=kind, child=stop.child_id, trip=stop.request_id, place=stop.place,
                          robot=self.params.robot_name)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "map"
        msg.position.x, msg.position.y = float(stop.xy[0]), float(stop.xy[1])
        self._site_pub.publish(msg)

    # ------------------------------------------------------------------ action
    def _on_goal(self, goal) -> GoalResponse:
        if not self.active:
            self.get_logger().warning("transport_child goal rejected: the node is not active (lifecycle)")
            return GoalResponse.REJECT
        if self.goal_input.check(goal) is None:   # unsigned, forged, expired, replayed, unknown key: reported
            return GoalResponse.REJECT
        if self._goal is not None:
            self.get_logger().warning("transport_child goal rejected: a goal is running (cancel it first)")
            return GoalResponse.REJECT
        if self.mission is None:
            self.get_logger().warning("transport_child goal rejected: no plan yet")
            return GoalResponse.REJECT
        if goal.request_id and goal.request_id not in self.figures["trips"]:
            self.get_logger().warning(f"transport_child goal rejected: request_id {goal.request_id!r} is not a "
                                      f"trip of this shuttle's plan ({', '.join(sorted(self.figures['trips']))})")
            return GoalResponse.REJECT
        if self.state == "canceled" or self.finished or self.mission.phase == care.Phase.SAFE_STOP:
            self.get_logger().warning(f"transport_child goal rejected: the mission is {self.state}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def _execute_goal(self, goal_handle):
        self._goal, self._goal_done = goal_handle, Future()
        self._goal_t0 = self._now_s()
        req = goal_handle.request.request_id
        self.get_logger().info(f"transport_child goal accepted: {req or 'the day plan'}")
        return await self._goal_done

    def _finish_goal(self, outcome: str, message: str) -> None:
        gh, done = self._goal, self._goal_done
        if gh is None:
            return
        getattr(gh, outcome)()
        self._goal = self._goal_done = None
        done.set_result(TransportChild.Result(success=outcome == "succeed", message=message))

    def _goal_step(self, now: float) -> None:
        """Feedback, and the end of the goal: its trip delivered / the day done / failed / canceled."""
        m, gh = self.mission, self._goal
        if gh.is_cancel_requested:
            self._publish_plan(np.zeros((0, 3)))
            self._speed_pub.publish(Float32(data=0.0))
            self.nav = None
            self.state = "canceled"
            self._note("canceled", "transport_child goal canceled: holding", "warn", onboard=sorted(m.onboard))
            self._finish_goal("canceled", "canceled: the shuttle holds where it is")
            return
        req = gh.request.request_id
        st = m.status()
        if req and req in m.delivered:
            self._finish_goal("succeed", f"{req} handed over")
            return
        if m.phase == care.Phase.DONE or self.finished:
            ok = not req
            self._finish_goal("succeed" if ok else "abort", "day plan done" if ok else f"{req} not delivered")
            return
        if m.phase == care.Phase.SAFE_STOP:
            self._finish_goal("abort", f"safe stop: {st['detail']}")
            return
        if req and (req in m.no_shows or req in m.skipped or req in m.returned):
            self._finish_goal("abort", f"{req}: not delivered ({st['detail']})")
            return
        if now - self._last_feedback_s >= 1.0:
            self._last_feedback_s = now
            progress = float(st["progress"])
            elapsed = now - (self._goal_t0 or now)
            fb = TransportChild.Feedback(state=str(st["state"]), progress=progress)
            fb.eta_s = elapsed * (1.0 - progress) / progress if progress > 0.01 else -1.0
            gh.publish_feedback(fb)

    # ------------------------------------------------------------------ loop
    def _on_tick(self) -> None:
        if not self.active:  # unconfigured / inactive: the shuttle is not driven
            return
        now = self._now_s()
        m = self.mission
        if self.codes is not None and not self.codes.observe(now):
            self.diag.error(f"clock went back to {now:.1f} s (latest seen {self.codes.store.latest_time_s:.1f} s): "
                            "hand-over codes are refused until it catches up")
        if m is None or self.pose is None or now < self.params.start_delay_s:
            return
        if self.state == "canceled":
            return
        if self._goal is None and self.state == "idle":
            return  # idle until a goal
        if self._goal is not None:
            self._goal_step(now)
            if self.state == "canceled":
                self._publish_status(now)
                return
        if m.phase == care.Phase.IDLE and not self.finished and m.done_stops == 0 and self.state == "idle":
            self.state = "started"
            self._set_speed(self.params.cruise_speed_mps)
            self.events.appendleft(care.Start())
        self._right_of_way_step(now)
        if self.nav is not None and now > self.nav["deadline_s"]:
            self._nav_failed("navigation time-out")
        if self._settle is not None and abs(self.speed) < 0.02:
            goal, final = self._settle
            self._settle = None
            self._check_docked(goal, final)
        for _ in range(50):
            if not self.events:
                break
            ev = self.events.popleft()
            before, stop_before = m.phase, m.current
            acts = m.handle(ev, now)
            if isinstance(ev, care.Boarded) and before == care.Phase.BOARDING and m.phase != care.Phase.BOARDING:
                rid = next((r for r, s in m.onboard.items() if s.child_id == ev.child_id), None)
                if rid is not None:
                    trip = self.figures["trips"][rid]
                    trip["boarded_s"] = round(now, 2)
                    trip["boarding_wait_s"] = round(now - (self._service_start_s or now), 2)
            self._execute(acts, now, stop_before)
        stop_before = m.current
        self._execute(m.handle(care.Tick(), now), now, stop_before)
        if now - self._last_status_s >= self.params.status_period_s or m.phase in (care.Phase.DONE,
                                                                                    care.Phase.SAFE_STOP):
            self._publish_status(now)

    # ------------------------------------------------------------------ right of way
    def _fleet_state(self, now: float) -> FleetState:
        m = self.mission
        state, reason = self.safety
        causes = set(reason.split(","))
        wants = self.nav is not None and self.nav["purpose"] in ("nav", "dock")
        held = state == SafetyState.PROTECTIVE_STOP and "obstacle" in causes and "person" not in causes and wants
        stops = list(m.stops) if m is not None else []   # remaining, the current one first
        deadline = min((s.window_close_s for s in stops), default=math.inf)
        backing = self._yield["keeper"] if self._yield is not None and self._yield["stage"] == "backing" else ""
        return FleetState(self.params.robot_name, now, tuple(float(v) for v in self.pose), held,
                          len(m.onboard) if m is not None else 0, deadline, self._yield is not None, backing)

    def _right_of_way_step(self, now: float) -> None:
        if self.row is None or self.pose is None:
            return
        # a peer reversing out of our way: we wait for it (speed limit 0) instead of driving into its move
        waiting = bool(self.row.waiting_for(now)) and self._yield is None and self.state != "canceled"
        if waiting != self._waiting_for_peer:
            self._waiting_for_peer = waiting
            hold = waiting or self.state == "canceled"
            self._speed_pub.publish(Float32(data=0.0 if hold else float(self._speed_value)))
        if self._yield is None:
            me = self._fleet_state(now)
            if self.nav is not None and self.row.blocking_peer(now, me) is not None:
                self.nav["deadline_s"] += self.params.tick_period_s   # held by a peer: not a navigation failure
            keeper = self.row.step(now, me)
            if keeper is None or self.nav is None:
                return
            p = self.params
            path = give_way_path(self.pose, keeper.pose, p.footprint_xy, self.row.p, p.keep_left)
            if path is None:
                self._note("right_of_way", f"cannot give way to {keeper.name}: no reversing move clears its way",
                           "warn")
                self.row.resumed(now)
                return
            self._yield = {"stage": "backing", "saved": self.nav, "keeper": keeper.name}
            self._note("right_of_way", f"giving way to {keeper.name}: reversing {len(path) * 0.2:.0f} m out of "
                       "its way", "warn")
            self.nav = {"legs": [path], "i": 0, "started_s": now, "armed": False, "purpose": "yield",
                        "goal": self.nav["goal"], "deadline_s": now + 45.0}
            self._dirs_pub.publish(Int8MultiArray(data=[-1] * len(path)))
            self._publish_plan(path)
        elif self._yield["stage"] == "waiting" and self.row.may_resume(now, self.pose):
            saved = self._yield["saved"]
            self._end_yield(now)
            self._note("right_of_way", "resuming after giving way")
            try:
                legs = self.net.route(self.pose, saved["goal"])
            except RoutingError as exc:
                self._nav_failed(str(exc))
                return
            self._start_legs(legs, saved["purpose"], saved["goal"])

    def _set_speed(self, v: float) -> None:
        self._speed_value = float(v)
        if not self._waiting_for_peer:
            self._speed_pub.publish(Float32(data=float(v)))

    def _end_yield(self, now: float) -> None:
        if self._yield is not None:
            self._yield = None
            self.row.resumed(now)

    def figures_summary(self) -> dict:
        """The day's figures so far (the ``detail`` of ``mission/status``)."""
        m = self.mission
        trips = self.figures["trips"]
        in_window = []
        for rid, t in trips.items():
            if "delivered_s" not in t or rid in m.returned:
                continue
            pw = t.get("pickup_window", [0.0, math.inf])
            ok_pick = "boarded_s" in t and t["boarded_s"] >= pw[0] - 1e-6 and t.get("pickup_start_s", 0.0) <= pw[1]
            ok_drop = t.get("dropoff_start_s", math.inf) <= t.get("dropoff_by", math.inf)
            t["in_window"] = bool(ok_pick and ok_drop)
            if t["in_window"]:
                in_window.append(rid)
        waits_b = [t["boarding_wait_s"] for t in trips.values() if "boarding_wait_s" in t]
        waits_h = [t["handover_wait_s"] for t in trips.values() if "handover_wait_s" in t]
        st = m.status()
        return {
            "robot": self.params.robot_name, "phase": st["state"], "text": st["detail"], "current": st["current"],
            "onboard": st["onboard"], "trips_planned": len(trips),
            "delivered": sorted(m.delivered), "children_delivered": sorted({trips[r]["child"] for r in m.delivered
                                                                           if r in trips}),
            "delivered_in_window": sorted(in_window), "no_shows": sorted(m.no_shows),
            "returned_to_nursery": sorted(m.returned), "skipped": sorted(m.skipped),
            "unserved": getattr(self, "unserved", []),
            "handovers_verified": self.figures["handovers_verified"],
            "handovers_refused": self.figures["handovers_refused"], "refusals": self.figures["refusals"],
            "boarding_wait_s": {"mean": round(float(np.mean(waits_b)), 2) if waits_b else None,
                                "max": round(float(np.max(waits_b)), 2) if waits_b else None},
            "handover_wait_s": {"mean": round(float(np.mean(waits_h)), 2) if waits_h else None,
                                "max": round(float(np.max(waits_h)), 2) if waits_h else None},
            "distance_m": round(self.figures["distance_m"], 1),
            "warnings": self.figures["notifications"][-20:],
            "trips": trips,
            # each docking check: the goal, what it was judged on (marker + estimate, or the estimate alone), error
            "docking": self.figures.get("docking", [])[-20:],
            # this shuttle's own state for the right of way (its peers read it), and the stand-offs it gave way in
            "fleet": self._fleet_state(self._now_s()).to_dict() if self.pose is not None else None,
            "gave_way": list(self.row.events) if self.row is not None else [],
        }

    def _publish_status(self, now: float) -> None:
        self._last_status_s = now
        m = self.mission
        st = m.status()
        state = {care.Phase.DONE: "done", care.Phase.SAFE_STOP: "failed"}.get(m.phase, st["state"])
        if self.state == "canceled":
            state = "canceled"
        if self.params.done_when_served and m.phase == care.Phase.RETURN_TO_DEPOT and not m.onboard \
                and not m.stops and not m.battery_low:
            state = "done"  # every child of the day handed over; the drive to park is housekeeping
        msg = MissionStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "map"
        msg.robot, msg.mission, msg.state = self.params.robot_name, "care", state
        msg.progress = float(st["progress"])
        msg.detail = json.dumps(self.figures_summary())
        self._status_pub.publish(msg)
        level = {"failed": self.diag.error, "hold": self.diag.error, "blocked": self.diag.warn}.get(state, self.diag.ok)
        level(f"{state}: {st['detail']}", delivered=len(m.delivered), onboard=len(m.onboard))

    def stop_outputs(self) -> None:
        """Deactivated or shutting down: empty plan (the controller stops); a running goal is aborted."""
        self._publish_plan(np.zeros((0, 3)))
        if self._goal is not None:
            self._finish_goal("abort", "stopped: the node was deactivated or shut down")

    def on_shutdown(self, state=None):
        result = super().on_shutdown(state)
        if self.audit is not None:
            self.audit.close()
        return result


def main(args=None):
    return run_node(CareMissionNode, args)


if __name__ == "__main__":
    main()
