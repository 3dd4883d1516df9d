"""farm_mission_node: the tractor's coverage job from field to done, served as the ``cover_field`` action.

Serves ``cover_field`` (agricare_interfaces/action/CoverField, in the robot's namespace, as Nav2 serves
``navigate_to_pose``): the goal names the field (``field_file`` GeoJSON or an inline ``field`` polygon in the
map frame; both empty = the configured field: ``field_file``, or ``field_name`` of the scenario
``scenario_file``). The node idles (no plan, status ``idle``) until it has a goal; then it plans the coverage
(headland rings, swaths, drivable turns) and drives it through the controller with
:class:`agricare.core.missions.farm.FarmMission`: pause/resume, refill trips, GNSS-outage slow-down/stop.
Feedback: state, progress, working distance remaining, ETA. Result: success, message, planned coverage and
overlap. Cancel: an empty plan stops the controller, the implement is raised, the goal ends CANCELED. One
goal at a time: a goal while one runs is rejected (cancel first).

Publishes ``implement/enable`` (std_msgs/Bool: implement lowered, at the update rate) for section control.
Subscribes ``<odom_topic>`` (nav_msgs/Odometry), ``gnss/fix`` (NavSatFix), ``controller/status`` (ControllerStatus),
``mission/pause`` (agricare_interfaces/MissionPause, signed like a goal). The goal's ``ab_line`` (two points
A, B in the map frame, signed with the goal) sets the swath direction of that job's plan; no points = none,
the planner chooses. Publishes ``plan`` (nav_msgs/Path), ``plan_directions``
(Int8MultiArray), ``coverage_plan/segments`` (Float64MultiArray N x 4: kind, working, direction, curvature;
for section control),
``speed_limit_mps`` (std_msgs/Float32 in m/s, negative = none; not Nav2's nav2_msgs/SpeedLimit ``speed_limit``),
``mission/status`` (agricare_interfaces/MissionStatus).

Plan check (``plan_check``, on): the planner's reverse split (``cleanup_reverse_split`` with ``corner_turns``, a
``footprint_m`` and a ``max_total_reverse_m``) keeps a plan other than the corners-first one only where the robot's own
controller, driving it on the robot's own kinematic model, is not predicted further out of the field
(:class:`agricare.core.missions.farm.MissionPlanCheck` with this node's mission parameters and footprint and the
``check_controller.*`` parameters: ``TrackerParams`` and ``MachineModel``, which the scenario gives as controller_node's
own). Each check takes seconds; the mission status says ``planning`` with the check under way and its result.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
from agricare_interfaces.action import CoverField
from agricare_interfaces.msg import ControllerStatus, MissionPause, MissionStatus
from nav_msgs.msg import Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future
from sensor_msgs.msg import NavSatFix, NavSatStatus
from std_msgs.msg import Bool, Float32, Float64MultiArray, Int8MultiArray, MultiArrayDimension

from agricare.core.missions.farm import (DONE, FAILED, FarmMission, FarmMissionParams, MissionPlanCheck,
                                        detour_inside, load_scenario_field, master_plan_from_coverage)
from agricare.core.security.keys import KeyFileError
from agricare.core.validation import require
from agricare.ros.convert import array_to_path, pose_to_xyyaw
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.guard import SecurityReport
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params, load_schema
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
from agricare.ros.signed import SignedInput


@dataclasses.dataclass(frozen=True)
class FarmMissionNodeParams:
    robot_name: str = "tractor"
    field_file: str = ""
    scenario_file: str = ""
    field_name: str = ""
    frame_id: str = "map"
    odom_topic: str = "odometry/filtered"
    update_rate_hz: float = 20.0
    # mission/status at a human rate: at once when the state or message changes, else at most this often (s of
    # the node clock; 0 = every tick). Progress is for people and plots; the mission runs at update_rate_hz
    status_period_s: float = 0.5
    start_delay_s: float = 1.0
    # coverage planner
    width_m: float = 3.0
    turn_radius_m: float = 4.0
    headland_width_m: float = 9.0
    robot_width_m: float = 0.0
    turn_type: str = "dubins"
    route: str = "optimal"
    objective: str = "swaths"
    angle_deg: float = float("nan")
    route_time_limit_s: float = 0.0    # 0: deterministic local search only; > 0 adds time-limited OR-Tools search
    footprint_m: tuple[float, ...] = ()  # the machine, rectangles (x_min, x_max, y_min, y_max) in base_link flattened
    corner_turns: bool = False         # headland passes work the corners (three-point manoeuvres; needs footprint_m)
    corner_cc: bool = False            # worked corners curvature-continuous (ring entry, manoeuvres' turns)
    max_reverse_m: float = 0.0         # reversing allowed out of clean-up passes into dead-end corners (corner
                                       # manoeuvres have their own); 0: only clean-up passes left forwards
    max_total_reverse_m: float = float("nan")  # all reversing of the field together (corners, then clean-up
                                       # exits); NaN: no total limit (the fields: 30)
    corner_ease_radius_m: float = 0.0  # a corner not worked is left by a forward S of this radius (0: reversing S)
    cleanup_end_margin_m: float = 0.0  # clean-up passes stop this much further inside (the tracker's overshoot)
    corner_y_turns: bool = False       # sharp corners by forward loops / two-leg Y turns where they reverse less
    cleanup_reverse_split: tuple[float, ...] = (0.67, 0.5)  # with corner_turns and max_total_reverse_m: the field is
                                       # also planned with the corners held to these shares of the total, the plan
                                       # working most kept unless the plan check (plan_check) predicts it further
                                       # out of the field than the corners-first plan; [1.0]: corners first only
    cleanup_turnabout_footprint: bool = False  # the split's plans also with multi-point turn exits under the
                                       # footprint, behind the same veto (plan time x2 for +0.02 points on the seeded
                                       # fields: off)
    # the plan check: the plan as this mission hands it out, driven by the robot's own controller (the
    # ``check_controller.*`` parameters: TrackerParams and the machine model MachineModel, which the scenario gives
    # as the controller_node's own) on its kinematic model, the footprint_m machine checked against the field
    # (core/missions/farm.MissionPlanCheck). It vetoes the reverse split's plans; the plan kept is reported (mission
    # status and diagnostics) with where the check predicts it out. Seconds per check (about the controller's time
    # over the plan); false: no check, and no reverse split (the planner prefers no plan the controller was not
    # asked about)
    plan_check: bool = True
    # mission
    capacity_m: float = 0.0
    depot_x_m: float = float("nan")
    depot_y_m: float = float("nan")
    refill_time_s: float = 30.0
    gnss_slow_after_s: float = 1.0
    gnss_stop_after_s: float = 10.0
    gnss_slow_speed_mps: float = 0.5
    use_gnss: bool = True
    detour_margin_m: float = 0.3
    front_overhang_m: float = 3.3     # body ahead of base_link (rear axle): swings out in turns
    implement_offset_m: float = 1.6   # implement working line behind base_link
    implement_overlap_m: float = 0.3  # lowered early / raised late by this much at the ends of a pass
    stall_distance_m: float = 150.0   # driven without 1 m of progress along the path -> stopped, failed (0 off)
    # signed goals: trust list of the keys that may send goals (kind mission_goal) and the sequence store
    goal_trust_file: str = ""
    command_replay_file: str = ""

    def __post_init__(self):
        require(bool(self.goal_trust_file), "goal_trust_file", "must be set (only signed goals are accepted)")
        require(bool(self.command_replay_file), "command_replay_file",
                "must be set (a goal must not be replayable after a restart)")
        require(not (bool(self.scenario_file) ^ bool(self.field_name)), "field_name",
                "and scenario_file go together (the field of a scenario)")
        require(math.isnan(self.max_total_reverse_m) or self.max_total_reverse_m >= 0, "max_total_reverse_m",
                "must be >= 0 (NaN: no total limit)", self.max_total_reverse_m)
        require(self.update_rate_hz > 0, "update_rate_hz", "must be > 0", self.update_rate_hz)
        require(self.start_delay_s >= 0, "start_delay_s", "must be >= 0", self.start_delay_s)
        require(math.isfinite(self.status_period_s) and self.status_period_s >= 0, "status_period_s",
                "must be >= 0", self.status_period_s)


class FarmMissionNode(ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("farm_mission_node", **kwargs)
        self.p = load_params(self, FarmMissionNodeParams)
        from agricare.core.control.path_tracking import TrackerParams
        from agricare.core.control.track_check import MachineModel
        from agricare.core.planning.coverage import CoverageParams, PlanningError, load_field

        # the plan check's controller and machine: the robot's own (the scenario passes controller_node's parameters
        # as check_controller.*), never the simulator's. wheelbase_m and max_steering_angle_rad are one parameter of
        # both (as in controller_node, where the vehicle's set the tracker's): the machine's by default
        model0 = MachineModel()
        checks = load_schema(self, TrackerParams, MachineModel, prefix="check_controller.",
                             defaults={"wheelbase_m": model0.wheelbase_m,
                                       "max_steering_angle_rad": model0.max_steering_angle_rad})
        self.check_tracker, self.check_model = checks.of(TrackerParams), checks.of(MachineModel)

        try:
            self.mission_params = FarmMissionParams(
                capacity_m=self.p.capacity_m, depot_x_m=self.p.depot_x_m, depot_y_m=self.p.depot_y_m,
                refill_time_s=self.p.refill_time_s, turn_radius_m=self.p.turn_radius_m,
                gnss_slow_after_s=self.p.gnss_slow_after_s, gnss_stop_after_s=self.p.gnss_stop_after_s,
                gnss_slow_speed_mps=self.p.gnss_slow_speed_mps, implement_offset_m=self.p.implement_offset_m,
                implement_overlap_m=self.p.implement_overlap_m, stall_distance_m=self.p.stall_distance_m)
            self.cov_params = CoverageParams(
                width_m=self.p.width_m, turn_radius_m=self.p.turn_radius_m, headland_width_m=self.p.headland_width_m,
                robot_width_m=self.p.robot_width_m, turn_type=self.p.turn_type, route=self.p.route,
                objective=self.p.objective, angle_deg=self.p.angle_deg,
                optimizer_time_limit_s=self.p.route_time_limit_s, footprint_m=tuple(self.p.footprint_m),
                implement_offset_m=self.p.implement_offset_m, corner_turns=self.p.corner_turns,
                corner_cc=self.p.corner_cc, max_reverse_m=self.p.max_reverse_m,
                max_total_reverse_m=(math.inf if math.isnan(self.p.max_total_reverse_m)
                                     else self.p.max_total_reverse_m),
                corner_ease_radius_m=self.p.corner_ease_radius_m, cleanup_end_margin_m=self.p.cleanup_end_margin_m,
                corner_y_turns=self.p.corner_y_turns, cleanup_reverse_split=tuple(self.p.cleanup_reverse_split),
                cleanup_turnabout_footprint=self.p.cleanup_turnabout_footprint)
            from agricare import paths

            self.configured_field = None   # the field of a goal that names none
            if self.p.field_file:
                self.configured_field, _frame = load_field(paths.resolve(self.p.field_file, "config/fields"))
            elif self.p.scenario_file:
                self.configured_field = load_scenario_field(
                    paths.resolve(self.p.scenario_file, "config/scenarios"), self.p.field_name)
            self.field = self.configured_field
        except (ValueError, OSError, PlanningError) as exc:
            raise ParameterError(f"{self.get_name()}: {exc}") from exc
        self.security = SecurityReport(self)
        try:
            self.goal_input = SignedInput(self.security, "cover_field_goal", "mission_goal",
                                          paths.resolve(self.p.goal_trust_file), self.p.command_replay_file,
                                          target=self.p.robot_name)
            # pause / resume: signed by the same operators as goals (the payload names the message type)
            self.pause_input = SignedInput(self.security, "mission_pause", "mission_goal",
                                           paths.resolve(self.p.goal_trust_file), self.p.command_replay_file,
                                           target=self.p.robot_name)
        except (KeyFileError, OSError, ValueError) as exc:
            raise ParameterError(f"{self.get_name()}: parameter 'goal_trust_file': {exc}") from None
        self.diag = Diagnostics(self, "farm mission")
        self._plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self._dir_pub = self.create_publisher(Int8MultiArray, "plan_directions", LATCHED_QOS)
        self._seg_pub = self.create_publisher(Float64MultiArray, "coverage_plan/segments", LATCHED_QOS)
        self._enable_pub = self.create_publisher(Bool, "implement/enable", RELIABLE_QOS)
        self._limit_pub = self.create_publisher(Float32, "speed_limit_mps", LATCHED_QOS)
        self._last_limit = None
        self._last_enable = None
        self._last_status = (None, -1.0)
        self._last_enable_t = -1.0
        self._status_pub = self.create_publisher(MissionStatus, "mission/status", RELIABLE_QOS)
        self.create_subscription(Odometry, self.p.odom_topic, self._on_odom, SENSOR_QOS)
        self.create_subscription(NavSatFix, "gnss/fix", self._on_fix, SENSOR_QOS)
        self.create_subscription(ControllerStatus, "controller/status", self._on_controller, RELIABLE_QOS)
        self.create_subscription(MissionPause, "mission/pause", self._on_pause, RELIABLE_QOS)
        self.ab_line = None   # (x0, y0, x1, y1) of the running goal (operator's AB line), or None
        self.pose = None
        self.last_fix_t = None
        self.goal_reached = False
        self.goal_missed = False   # the controller stopped past the path end: the mission re-approaches or fails
        self.pause = False
        self.mission = None
        self.coverage = None
        self.t0 = None
        self.state = "idle"
        self.message = "waiting for a cover_field goal"
        self._goal = None          # the active ServerGoalHandle
        self._goal_done = None     # Future the execute callback awaits
        self._goal_t0 = None
        self._last_feedback_t = -1.0
        self._action = ActionServer(self, CoverField, "cover_field", execute_callback=self._execute,
                                    goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT)
        self.create_timer(1.0 / self.p.update_rate_hz, self._tick)
        self.autostart()

    # ------------------------------------------------------------------ action
    def _goal_field(self, goal):
        """The field a goal asks for (shapely Polygon), or raise ValueError naming what is wrong."""
        from agricare import paths
        from agricare.core.farmdata.field import field_from_rings
        from agricare.core.planning.coverage import load_field

        if goal.field_file:
            try:
                field, _frame = load_field(paths.resolve(goal.field_file, "config/fields"))
            except OSError as exc:
                raise ValueError(f"field_file: {exc}") from exc
            return field
        if len(goal.field.points):
            # the obstacles travel with the field: a pond the goal left out would be driven through
            return field_from_rings([(p.x, p.y) for p in goal.field.points],
                                    [[(p.x, p.y) for p in o.points] for o in goal.obstacles])
        if len(goal.obstacles):
            raise ValueError("obstacles: given without an inline field (a field_file carries its own)")
        if self.configured_field is None:
            raise ValueError("the goal names no field and none is configured (field_file / scenario_file)")
        return self.configured_field

    def _on_goal(self, goal):
        if not self.active:
            self.get_logger().warning("cover_field goal rejected: the node is not active (lifecycle)")
            return GoalResponse.REJECT
        if self.goal_input.check(goal) is None:   # unsigned, forged, expired, replayed, unknown key: reported
            return GoalResponse.REJECT
        if self._goal is not None:
            self.get_logger().warning("cover_field goal rejected: a mission is running (cancel it first)")
            return GoalResponse.REJECT
        try:
            self._goal_field(goal)
            self._goal_ab_line(goal)
        except (ValueError, OSError) as exc:
            self.get_logger().warning(f"cover_field goal rejected: {exc}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def _execute(self, goal_handle):
        try:
            self.field = self._goal_field(goal_handle.request)
            self.ab_line = self._goal_ab_line(goal_handle.request)
        except (ValueError, OSError) as exc:  # the file changed since the goal was accepted
            goal_handle.abort()
            return CoverField.Result(success=False, message=str(exc))
        self._goal, self._goal_done = goal_handle, Future()
        self.mission, self.coverage, self.t0 = None, None, None
        self.state, self.message = "waiting", "waiting for a pose"
        self._goal_t0 = self._now()
        self.get_logger().info("cover_field goal accepted")
        return await self._goal_done

    def _finish_goal(self, outcome: str):
        gh, done = self._goal, self._goal_done
        if gh is None:
            return
        result = CoverField.Result(success=outcome == "succeed", message=self.message)
        if self.coverage is not None:
            result.coverage_ratio = float(self.coverage.coverage_ratio)
            result.overlap_ratio = float(getattr(self.coverage, "overlap_ratio", float("nan")))
        getattr(gh, outcome)()
        self._goal = self._goal_done = None
        done.set_result(result)

    def _feedback(self, t: float):
        if self._goal is None or t - self._last_feedback_t < 0.5:
            return
        self._last_feedback_t = t
        fig = self.mission.figures() if self.mission else {}
        progress = float(fig.get("progress", 0.0))
        fb = CoverField.Feedback(state=str(self.state), progress=progress)
        fb.distance_remaining_m = float(fig.get("work_total_m", 0.0) - fig.get("work_done_m", 0.0))
        elapsed = t - (self._goal_t0 or t)
        fb.eta_s = elapsed * (1.0 - progress) / progress if progress > 0.01 else -1.0
        self._goal.publish_feedback(fb)

    def _cancel(self):
        """Stop on a cancelled goal: empty plan (the controller stops), implement up, no speed limit kept."""
        msg = Path()
        msg.header.frame_id = self.p.frame_id
        msg.header.stamp = self.get_clock().now().to_msg()
        self._plan_pub.publish(msg)
        self._enable_pub.publish(Bool(data=False))
        self._last_enable = False
        self.mission = None
        self.state, self.message = "canceled", "cover_field goal canceled"
        self.get_logger().info(self.message)
        self._finish_goal("canceled")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_odom(self, msg: Odometry):
        pose = pose_to_xyyaw(msg.pose.pose)
        if np.all(np.isfinite(pose)):
            self.pose = pose

    def _on_fix(self, msg: NavSatFix):
        if msg.status.status >= NavSatStatus.STATUS_FIX and math.isfinite(msg.latitude) and \
                math.isfinite(msg.longitude):
            self.last_fix_t = self._now()

    def _on_controller(self, msg: ControllerStatus):
        self.goal_reached = msg.state == "goal_reached"
        self.goal_missed = msg.state == "goal_missed"

    @staticmethod
    def _goal_ab_line(goal):
        """The goal's AB line as (x0, y0, x1, y1), None when it has no points, or raise ValueError."""
        pts = [(float(p.x), float(p.y)) for p in goal.ab_line.points]
        if not pts:
            return None
        if len(pts) != 2:
            raise ValueError(f"ab_line: needs two points A, B (or none), got {len(pts)}")
        (x0, y0), (x1, y1) = pts
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or math.hypot(x1 - x0, y1 - y0) < 1.0:
            raise ValueError(f"ab_line: needs two finite points >= 1 m apart, got {pts}")
        return (x0, y0, x1, y1)

    def _on_pause(self, msg):
        if self.pause_input.check(msg) is None:   # unsigned, forged, expired, replayed, unknown key: reported
            return
        self.pause = bool(msg.pause)

    def make_plan_check(self, field, inside):
        """The planner's plan check for ``field`` (:class:`MissionPlanCheck`): this node's mission parameters and
        detour region ``inside``, its ``check_controller.*`` controller and machine model, its ``footprint_m``; the
        progress of each check in the mission status, the log and the diagnostics. None when ``plan_check`` is off or
        there is no footprint to check."""
        if not (self.p.plan_check and len(self.p.footprint_m)):
            return None

        def started(k):
            self.state, self.message = "planning", f"checking plan {k} with the controller (predicted drive)"
            self.get_logger().info(self.message)
            self.diag.ok(self.message)
            self._publish_status(force=True)

        def done(k, res):
            where = (f"{len(res.excursions)} excursion(s), up to {res.worst_m:.3f} m out at plan indices "
                     f"{[e.first for e in res.excursions]}" if res.excursions else "inside the field")
            self.message = f"plan check {k}: predicted {where} ({res.wall_s:.1f} s)"
            self.get_logger().info(self.message)
            self._publish_status(force=True)

        return MissionPlanCheck(field, self.mission_params, self.check_tracker, self.p.footprint_m, self.check_model,
                                inside, on_start=started, on_done=done)

    def _plan(self):
        from agricare.core.planning.coverage import PlanningError, plan_coverage

        params = self.cov_params
        if self.ab_line is not None:   # the operator's AB line: swaths parallel to it (this job only)
            params = dataclasses.replace(params, ab_line_m=self.ab_line)
            self.ab_line = None
        # detours (lead-in, depot trips) keep the whole machine inside: inset by half the widest part
        half = max(0.5 * self.p.width_m, 0.5 * self.p.robot_width_m, self.p.front_overhang_m) + self.p.detour_margin_m
        inside = detour_inside(self.field, half)
        check = self.make_plan_check(self.field, inside)
        try:
            self.coverage = plan_coverage(self.field, params, check=check)
        except PlanningError as exc:
            self.state, self.message = FAILED, f"coverage planning failed: {exc}"
            self.diag.error(self.message)
            return
        self.mission = FarmMission(master_plan_from_coverage(self.coverage), self.mission_params, inside)
        checked = ""
        if check is not None and check.results:
            checked = (f", {len(check.results)} plan check(s) in {check.wall_s:.1f} s, corners held to "
                       f"{100 * self.coverage.corner_share:.0f} % of the reverse budget")
        self.get_logger().info(
            f"coverage plan: {len(self.coverage.swaths)} swaths, {self.coverage.lengths_m['total']:.0f} m "
            f"(+{self.coverage.lengths_m.get('headland', 0.0):.0f} m headland), planned coverage "
            f"{100 * self.coverage.coverage_ratio:.1f}%, swaths at {math.degrees(self.coverage.angle_rad):.1f} deg"
            + (" (AB line)" if any(params.ab_line_m) else "") + checked)

    def _publish_path(self, active):
        now = self.get_clock().now().to_msg()
        self._dir_pub.publish(Int8MultiArray(data=[int(d) for d in active.direction]))
        seg = Float64MultiArray()
        n = len(active.direction)
        seg.layout.dim = [MultiArrayDimension(label="pose", size=n, stride=4 * n),
                          MultiArrayDimension(label="kind,working,direction,curvature", size=4, stride=4)]
        kind = np.where(active.master_index >= 0, 0, 3) if n else np.zeros(0)
        seg.data = np.column_stack([kind, active.working.astype(float), active.direction.astype(float),
                                    np.zeros(n)]).ravel().tolist() if n else []
        self._seg_pub.publish(seg)
        if len(active.poses):
            self._plan_pub.publish(array_to_path(active.poses, self.p.frame_id, now))
        else:
            msg = Path()
            msg.header.frame_id = self.p.frame_id
            msg.header.stamp = now
            self._plan_pub.publish(msg)
        self.goal_reached = False
        self.goal_missed = False

    def _tick(self):
        if not self.active:  # unconfigured / inactive: nothing is planned, driven or reported
            return
        t = self._now()
        if self._goal is None:  # idle until a goal: nothing is planned or driven
            self._publish_status()
            return
        if self._goal.is_cancel_requested:
            self._cancel()
            self._publish_status(force=True)
            return
        if self.t0 is None:
            self.t0 = t
        if self.mission is None and self.state != FAILED and self.pose is not None and \
                t - self.t0 >= self.p.start_delay_s:
            self._plan()
            if self.mission is not None:
                out = self.mission.start(t, self.pose)
                self._apply(out)
        elif self.mission is not None and self.pose is not None:
            gnss_age = 0.0
            if self.p.use_gnss:
                gnss_age = (t - self.last_fix_t) if self.last_fix_t is not None else (t - self.t0)
            out = self.mission.update(t, self.pose, gnss_age_s=gnss_age, pause=self.pause,
                                      goal_reached=self.goal_reached, goal_missed=self.goal_missed)
            self._apply(out)
            down = self.mission.implement_down()
            if down != self._last_enable or t - self._last_enable_t >= 0.1:
                self._enable_pub.publish(Bool(data=down))
                self._last_enable, self._last_enable_t = down, t
        if self.state == DONE:
            self._finish_goal("succeed")
        elif self.state == FAILED:
            self._finish_goal("abort")
        else:
            self._feedback(t)
        self._publish_status()

    def _apply(self, out):
        if out.new_path is not None:
            self._publish_path(out.new_path)
        limit = float(out.speed_limit_mps) if out.speed_limit_mps is not None else -1.0
        if limit != self._last_limit:  # latched: published on change only
            self._limit_pub.publish(Float32(data=limit))
            self._last_limit = limit
        self.state = out.state
        if out.message:
            self.message = out.message
        if out.state == FAILED:
            self.diag.error(self.message)
        elif out.state in ("gnss_stop", "gnss_slow"):
            self.diag.warn(self.message)
        else:
            self.diag.ok(self.message, **(self.mission.figures() if self.mission else {}))

    def _publish_status(self, force: bool = False):
        key = (self.state, self.message)
        now = self._now()
        last_key, last_t = self._last_status
        if not force and key == last_key and 0.0 <= now - last_t < self.p.status_period_s:
            return
        self._last_status = (key, now)
        msg = MissionStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p.frame_id
        msg.robot = self.p.robot_name
        msg.mission = "coverage"
        msg.state = self.state
        figures = self.mission.figures() if self.mission else {}
        if self.coverage is not None:
            figures.update(planned_swaths=len(self.coverage.swaths),
                           planned_total_m=round(self.coverage.lengths_m["total"], 1),
                           planned_coverage=round(self.coverage.coverage_ratio, 4))
        msg.progress = float(figures.get("progress", 0.0)) if self.state != DONE else 1.0
        figures["message"] = self.message
        msg.detail = json.dumps(figures)
        self._status_pub.publish(msg)

    def stop_outputs(self):
        """Deactivated or shutting down: a running goal ends (aborted), the controller gets an empty plan,
        the implement goes up; the last status is published."""
        if self._goal is not None:
            msg = Path()
            msg.header.frame_id = self.p.frame_id
            msg.header.stamp = self.get_clock().now().to_msg()
            self._plan_pub.publish(msg)
            self._enable_pub.publish(Bool(data=False))
            self.message = "stopped: the node was deactivated or shut down"
            self._finish_goal("abort")
        if self.mission is not None:
            self._publish_status(force=True)


def main(args=None):
    return run_node(FarmMissionNode, args)


if __name__ == "__main__":
    main()
