"""scouting_mission_node: the row robot's scouting job: follow N rows by camera, save the growth map, record.

Serves ``scout_field`` (agricare_interfaces/action/ScoutField, in the robot's namespace): the goal gives the
number of rows (0 = ``rows``) and is signed (kind ``mission_goal``, a key of ``goal_trust_file``; unsigned,
forged, expired, replayed or unknown-key goals are rejected and reported on ``/diagnostics``). The robot
idles until it has a goal: ``row_follower/enable`` (std_msgs/Bool, latched) is false until then, true while
the goal runs and false again when it ends or is canceled (give the row follower ``enable_topic``).
Feedback: state, progress (rows done / rows), rows done, ETA. Result: success, message, rows done, plant
gaps, low-cover cells and the record's files. One goal at a time.

The driving is done by ``row_follower_node`` (enter row -> follow by camera -> end of row -> U-turn -> next
row; give it ``max_rows`` = ``rows`` so it stops after the last row) fed by ``crop_row_node``; the map by
``growth_map_node``. This node watches them (:class:`agricare.core.missions.scouting.ScoutingMission`):

Subscribes ``row_follower/state`` (std_msgs/String, latched) and ``odom_topic`` (nav_msgs/Odometry, sensor
QoS; default and in every shipped graph the robot's own map-frame estimate ``odometry/filtered``).
Calls ``perception/save_growth_map`` (agricare_interfaces/SaveMap) with ``<output_dir>/growth_map`` once the
rows are done, reads the saved CSV and writes
the record (GeoJSON, CSV, PNG, JSON: plant-gap and low-cover cells along the scouted track) into
``output_dir``. Publishes ``mission/status`` (agricare_interfaces/MissionStatus, reliable) every
``status_period_s`` and on every change: ``state`` idle/running/done/failed/canceled, ``progress`` = rows done / rows,
``detail`` JSON (rows_done, plant_gaps, low_cover_cells, cell lists, files, reason); and ``/diagnostics``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

from agricare_interfaces.action import ScoutField
from agricare_interfaces.msg import MissionStatus
from nav_msgs.msg import Odometry
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Bool, String

from agricare import paths

from agricare.core.missions.scouting import (
    DONE,
    FAILED,
    SAVING,
    ScoutingMission,
    ScoutingParams,
    read_growth_csv,
    write_record,
)
from agricare.core.security.keys import KeyFileError
from agricare.ros.convert import pose_to_xyyaw, to_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.guard import SecurityReport
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, subscribe_latched
from agricare.ros.signed import SignedInput

from agricare_interfaces.srv import SaveMap

_MISSION_FIELDS = tuple(f.name for f in dataclasses.fields(ScoutingParams))


def growth_map_request_dir(output_dir: str) -> str:
    """The directory asked of growth_map_node's save service: ``<output_dir>/growth_map``, made absolute here. The
    service takes a relative directory relative to its own ``save_directory``, so a relative ``output_dir`` (as
    ``make demo``'s ``out/farm/records``) was saved under ``out/farm/records/growth_map/out/farm/records/growth_map``;
    both nodes run in the launch's working directory."""
    return os.path.abspath(os.path.join(output_dir, "growth_map"))


@dataclasses.dataclass(frozen=True)
class ScoutingMissionNodeParams:
    """scouting_mission_node parameters (mission fields as :class:`ScoutingParams`)."""

    robot_name: str = "row_robot"
    rows: int = 4
    min_row_length_m: float = 5.0
    max_duration_s: float = 900.0
    stop_timeout_s: float = 10.0
    save_timeout_s: float = 10.0
    record_margin_m: float = 1.0
    odom_topic: str = "odometry/filtered"
    output_dir: str = "out/records"
    status_period_s: float = 1.0
    goal_trust_file: str = ""
    command_replay_file: str = ""

    def __post_init__(self):
        if not self.goal_trust_file:
            raise ValueError("goal_trust_file must be set (only signed scout_field goals are accepted)")
        if not self.command_replay_file:
            raise ValueError("command_replay_file must be set (a goal must not be replayable after a restart)")
        if not self.robot_name:
            raise ValueError("robot_name must not be empty")
        if not self.odom_topic:
            raise ValueError("odom_topic must not be empty")
        if not self.output_dir:
            raise ValueError("output_dir must not be empty")
        if not (math.isfinite(self.status_period_s) and self.status_period_s > 0):
            raise ValueError(f"status_period_s must be > 0, got {self.status_period_s}")
        self.mission_params()

    def mission_params(self, rows: int = 0) -> ScoutingParams:
        values = {k: getattr(self, k) for k in _MISSION_FIELDS}
        if rows:
            values["rows"] = int(rows)
        return ScoutingParams(**values)


class ScoutingMissionNode(Node):
    """Scouting mission node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("scouting_mission_node", **kwargs)
        self.p = load_params(self, ScoutingMissionNodeParams)
        self.security = SecurityReport(self)
        try:
            self.goal_input = SignedInput(self.security, "scout_field_goal", "mission_goal",
                                          paths.resolve(self.p.goal_trust_file), self.p.command_replay_file,
                                          self.p.robot_name)
        except (KeyFileError, OSError, ValueError) as exc:
            raise ParameterError(f"scouting_mission_node: parameter 'goal_trust_file': {exc}") from None
        self.mission: ScoutingMission | None = None   # none until a goal
        self.diag = Diagnostics(self, "scouting_mission")
        self.record_files: list[str] = []
        self.canceled = False
        self._rows_reached = False
        self._follower_state = ""
        self._goal = self._goal_done = None
        self._goal_t0 = None
        self._last_feedback_s = -math.inf
        self._sent = None
        self._future = None
        self._status_pub = self.create_publisher(MissionStatus, "mission/status", RELIABLE_QOS)
        self._enable_pub = self.create_publisher(Bool, "row_follower/enable", LATCHED_QOS)
        self._enable_pub.publish(Bool(data=False))
        subscribe_latched(self, String, "row_follower/state", self._on_state)
        self.create_subscription(Odometry, self.p.odom_topic, self._on_odom, SENSOR_QOS)
        self._save_type = SaveMap
        self._save_client = self.create_client(SaveMap, "perception/save_growth_map")
        self._timer = self.create_timer(min(self.p.status_period_s, 0.25), self._on_timer)
        self._next_status = 0.0
        self._action = ActionServer(self, ScoutField, "scout_field", execute_callback=self._execute,
                                    goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT)

    # ------------------------------------------------------------------ action
    def _on_goal(self, goal) -> GoalResponse:
        if self.goal_input.check(goal) is None:   # unsigned, forged, expired, replayed, unknown key: reported
            return GoalResponse.REJECT
        if self._goal is not None:
            self.get_logger().warning("scout_field goal rejected: a goal is running (cancel it first)")
            return GoalResponse.REJECT
        try:
            self.p.mission_params(goal.rows)
        except ValueError as exc:
            self.get_logger().warning(f"scout_field goal rejected: {exc}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def _execute(self, goal_handle):
        now = self._now_s()
        self.mission = ScoutingMission(self.p.mission_params(goal_handle.request.rows))
        self.record_files, self.canceled, self._sent, self._future = [], False, None, None
        self._rows_reached = False
        if self._follower_state:
            self.mission.on_follower_state(now, self._follower_state)
        self._goal, self._goal_done, self._goal_t0 = goal_handle, Future(), now
        self._enable_pub.publish(Bool(data=True))
        self.get_logger().info(f"scout_field goal accepted: {self.mission.p.rows} rows")
        return await self._goal_done

    def _finish_goal(self, outcome: str, message: str) -> None:
        gh, done = self._goal, self._goal_done
        if gh is None:
            return
        self._enable_pub.publish(Bool(data=False))
        getattr(gh, outcome)()
        self._goal = self._goal_done = None
        d = self.mission.detail()
        done.set_result(ScoutField.Result(
            success=outcome == "succeed", message=message, rows_done=int(d["rows_done"]),
            plant_gaps=int(d["plant_gaps"]), low_cover_cells=int(d["low_cover_cells"]),
            record_files=list(self.record_files)))

    def _goal_step(self, now: float) -> None:
        gh, m = self._goal, self.mission
        if gh.is_cancel_requested:
            self.canceled = True
            self._finish_goal("canceled", f"canceled after {m.rows_done} rows: the robot stops")
            return
        if m.finished:
            self._finish_goal("succeed" if m.state == DONE else "abort", m.reason)
            return
        if now - self._last_feedback_s >= 1.0:
            self._last_feedback_s = now
            progress = float(m.progress())
            elapsed = now - (self._goal_t0 or now)
            fb = ScoutField.Feedback(state=m.state, progress=progress, rows_done=int(m.rows_done))
            fb.eta_s = elapsed * (1.0 - progress) / progress if progress > 0.01 else -1.0
            gh.publish_feedback(fb)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_state(self, msg: String) -> None:
        self._follower_state = msg.data
        if self._goal is None:
            return
        self.mission.on_follower_state(self._now_s(), msg.data)
        self._publish_status(force=True)

    def _on_odom(self, msg: Odometry) -> None:
        if self._goal is not None:
            self.mission.on_pose(self._now_s(), pose_to_xyyaw(msg.pose.pose)[:2])

    # ------------------------------------------------------------------ save
    def _request_save(self) -> None:
        req = self._save_type.Request()
        req.directory = growth_map_request_dir(self.p.output_dir)
        if not self._save_client.service_is_ready():
            self.get_logger().warning("perception/save_growth_map not available yet; retrying")
            self._future = None
            return
        self._future = self._save_client.call_async(req)

    def _check_save(self) -> None:
        if self.mission.state != SAVING:
            return
        if self._future is None:
            self._request_save()
            return
        if not self._future.done():
            return
        fut, self._future = self._future, None
        try:
            resp = fut.result()
        except Exception as exc:  # a failed call: the mission records it and fails
            self.mission.on_saved(self._now_s(), False, f"service call failed: {exc}", [])
            return
        files = list(getattr(resp, "files", []) or [])
        cells = []
        for f in files:
            if f.endswith(".csv"):
                try:
                    cells = read_growth_csv(f)
                except OSError as exc:
                    self.get_logger().warning(f"cannot read {f}: {exc}")
        self.mission.on_saved(self._now_s(), bool(resp.success), resp.message, files, cells)
        self._write_record()

    def _write_record(self) -> None:
        summary = {"robot": self.p.robot_name, "mission": "scouting", "state": self.mission.state,
                   **self.mission.detail()}
        try:
            self.record_files = write_record(self.p.output_dir, self.mission.track, self.mission.cells, summary,
                                             robot=self.p.robot_name)
        except OSError as exc:
            self.get_logger().error(f"record not written: {exc}")
            self.record_files = []

    # ------------------------------------------------------------------ loop
    def _on_timer(self) -> None:
        if self.mission is None or (self._goal is None and not self.mission.finished):
            self._publish_status()   # idle (or canceled) until a goal
            return
        now = self._now_s()
        was_running = self.mission.state
        if self.mission.update(now) == "save":
            self.get_logger().info(f"scouting: {self.mission.rows_done} rows, saving the growth map")
            self._request_save()
        self._check_save()
        if self.mission.finished and was_running == SAVING and not self.record_files:
            self._write_record()  # save timed out: still leave a record
        if self._goal is not None:
            if self.mission.rows_done >= self.mission.p.rows and not self._rows_reached:
                self._rows_reached = True   # the goal's rows are done: the follower stops even if set for more
                self._enable_pub.publish(Bool(data=False))
            self._goal_step(now)
        self._publish_status(force=self.mission.state != was_running)

    def _publish_status(self, force: bool = False) -> None:
        now = self._now_s()
        m = self.mission
        if m is None or (self.canceled and self._goal is None):
            state = "canceled" if self.canceled else "idle"
            if not force and self._sent == state and now < self._next_status:
                return
            self._sent, self._next_status = state, now + self.p.status_period_s
            msg = MissionStatus(robot=self.p.robot_name, mission="scouting", state=state, progress=0.0, detail="{}")
            msg.header.stamp = to_stamp(max(now, 0.0))
            msg.header.frame_id = "map"
            self._status_pub.publish(msg)
            self.diag.ok(f"{state}: waiting for a scout_field goal")
            return
        key = (m.state, m.rows_done, m.follower_state)
        if not force and key == self._sent and now < self._next_status:
            return
        self._sent = key
        self._next_status = now + self.p.status_period_s
        detail = m.detail()
        if self.record_files:
            detail["record_files"] = self.record_files
        msg = MissionStatus()
        msg.header.stamp = to_stamp(max(now, 0.0))
        msg.header.frame_id = "map"
        msg.robot = self.p.robot_name
        msg.mission = "scouting"
        msg.state = m.state if m.state in (DONE, FAILED) else "running"
        msg.progress = float(m.progress())
        msg.detail = json.dumps(detail)
        self._status_pub.publish(msg)
        values = dict(state=m.state, rows_done=m.rows_done, follower=m.follower_state)
        if m.state == FAILED:
            self.diag.error(m.reason, **values)
        else:
            self.diag.ok(m.reason or m.state, **values)


def main(args=None):
    return run_node(ScoutingMissionNode, args)


if __name__ == "__main__":
    main()
