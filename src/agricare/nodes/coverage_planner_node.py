"""coverage_planner_node: plans the coverage of a field and publishes it.

Field from the ``field_file`` parameter (GeoJSON, see ``config/fields``) at start, and from the ``field``
topic (geometry_msgs/PolygonStamped in the ``map`` frame, latched) whenever one arrives (replans).
Publishes (all latched):

- ``plan`` (nav_msgs/Path, frame ``frame_id``): the continuous path, one pose per sample (<= 0.5 m);
- ``coverage_plan/segments`` (std_msgs/Float64MultiArray, layout dims ``[poses, 4]``): per pose
  ``[kind, working, direction, curvature_1pm]`` with kind 0 swath, 1 turn, 2 headland, 3 transit,
  working 1/0 (implement on/off), direction +1 forward / -1 reverse: what nav_msgs/Path cannot carry;
- ``coverage_plan/markers`` (visualization_msgs/MarkerArray): field, swaths, turns, headland.

A mission in the same process can skip the topics and call
``agricare.core.planning.coverage.plan_coverage(field_polygon, CoverageParams(...))`` directly.

No plan check: this node plans without the machine's footprint and worked corners (``corner_turns``), where the
planner has no plan to veto (the reverse split needs both). farm_mission_node plans what the tractor drives and checks
it with the tractor's own controller (``plan_check``, :class:`agricare.core.missions.farm.MissionPlanCheck`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point, PolygonStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from visualization_msgs.msg import Marker, MarkerArray

from agricare.core.planning.coverage import (KIND_HEADLAND, KIND_SWATH, KIND_TRANSIT, KIND_TURN, CoverageParams,
                                             PlanningError, load_field, plan_coverage)
from agricare.ros.convert import array_to_path, polygon_to_array
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, subscribe_latched


@dataclass(frozen=True)
class CoveragePlannerNodeParams:
    """Parameters of coverage_planner_node (flattened :class:`CoverageParams` plus the field source)."""

    field_file: str = ""
    frame_id: str = "map"
    width_m: float = 3.0
    turn_radius_m: float = 4.0
    headland_width_m: float = 9.0
    robot_width_m: float = 0.0
    turn_type: str = "dubins"
    route: str = "optimal"
    objective: str = "swaths"
    angle_search: bool = True          # false: use angle_deg
    angle_deg: float = 0.0
    ab_line_m: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    max_curvature_rate_1pm2: float = 0.1
    sample_step_m: float = 0.5
    plan_headland: bool = True
    optimizer_time_limit_s: float = 2.0     # route search cap (0: deterministic descents only)
    optimizer_solution_limit: int = 8       # the route search stops after this many solutions: repeatable plans

    def __post_init__(self):
        if not self.frame_id:
            raise ValueError("frame_id must not be empty")
        self.coverage_params()              # validates every planner field (names it on error)

    def coverage_params(self) -> CoverageParams:
        return CoverageParams(
            width_m=self.width_m, turn_radius_m=self.turn_radius_m, headland_width_m=self.headland_width_m,
            robot_width_m=self.robot_width_m, turn_type=self.turn_type, route=self.route, objective=self.objective,
            angle_deg=float("nan") if self.angle_search else self.angle_deg, ab_line_m=tuple(self.ab_line_m),
            max_curvature_rate_1pm2=self.max_curvature_rate_1pm2, sample_step_m=self.sample_step_m,
            plan_headland=self.plan_headland, optimizer_time_limit_s=self.optimizer_time_limit_s,
            optimizer_solution_limit=self.optimizer_solution_limit)


def segments_msg(plan) -> Float64MultiArray:
    """Per-pose ``[kind, working, direction, curvature]`` as a (N, 4) Float64MultiArray."""
    p = plan.path
    data = np.column_stack([p.kind, p.working, p.direction, p.curvature]).astype(float)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="poses", size=len(data), stride=data.size),
                      MultiArrayDimension(label="kind_working_direction_curvature", size=4, stride=4)]
    msg.data = data.ravel().tolist()
    return msg


def segments_from_msg(msg: Float64MultiArray) -> np.ndarray:
    """Inverse of :func:`segments_msg`: array (N, 4)."""
    return np.asarray(msg.data, dtype=float).reshape(-1, 4)


def _line_marker(mid, ns, pts, rgba, width, frame_id, stamp, line_list=False) -> Marker:
    m = Marker()
    m.header.frame_id = frame_id
    m.header.stamp = stamp
    m.ns, m.id = ns, mid
    m.type = Marker.LINE_LIST if line_list else Marker.LINE_STRIP
    m.action = Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x = width
    m.color.r, m.color.g, m.color.b, m.color.a = rgba
    m.points = [Point(x=float(x), y=float(y), z=0.05) for x, y in pts]
    return m


def plan_markers(plan, frame_id: str, stamp) -> MarkerArray:
    arr = MarkerArray()
    clear = Marker()
    clear.action = Marker.DELETEALL
    arr.markers.append(clear)
    f = plan.field
    arr.markers.append(_line_marker(0, "field", np.asarray(f.exterior.coords), (0.0, 0.0, 0.0, 1.0), 0.3,
                                    frame_id, stamp))
    for i, h in enumerate(f.interiors):
        arr.markers.append(_line_marker(i + 1, "holes", np.asarray(h.coords), (0.3, 0.3, 0.5, 1.0), 0.3,
                                        frame_id, stamp))
    sw = plan.swath_array().reshape(-1, 2)
    if len(sw):
        arr.markers.append(_line_marker(0, "swaths", sw, (0.1, 0.4, 0.9, 0.9), 0.2, frame_id, stamp, True))
    p = plan.path
    colors = {KIND_TURN: (0.9, 0.3, 0.0, 0.9), KIND_HEADLAND: (0.5, 0.2, 0.8, 0.9), KIND_TRANSIT: (0.5, 0.5, 0.5, 0.9)}
    change = np.nonzero(p.kind[1:] != p.kind[:-1])[0] + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(p)]])
    for k, (a, b) in enumerate(zip(starts, ends)):
        kind = int(p.kind[a])
        if kind == KIND_SWATH or b - a < 1:
            continue
        pts = p.xy[max(0, a - 1):b]
        if len(pts) >= 2:
            arr.markers.append(_line_marker(k, ("turn", "turn", "headland", "transit")[kind], pts, colors[kind], 0.15,
                                            frame_id, stamp))
    return arr


class CoveragePlannerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("coverage_planner_node", **kwargs)
        self.p = load_params(self, CoveragePlannerNodeParams)
        self.cov_params = self.p.coverage_params()
        self.diag = Diagnostics(self, "coverage_planner")
        self.plan = None
        self._plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self._seg_pub = self.create_publisher(Float64MultiArray, "coverage_plan/segments", LATCHED_QOS)
        self._mk_pub = self.create_publisher(MarkerArray, "coverage_plan/markers", LATCHED_QOS)
        subscribe_latched(self, PolygonStamped, "field", self._on_field)
        if self.p.field_file:
            from agricare import paths

            try:
                field, frame = load_field(paths.resolve(self.p.field_file, "config/fields"))
            except PlanningError as exc:
                raise ParameterError(f"{self.get_name()}: parameter 'field_file': {exc}") from exc
            self._plan_and_publish(field)
        else:
            self.diag.warn("waiting for a field on the 'field' topic")

    def _on_field(self, msg: PolygonStamped):
        from shapely.geometry import Polygon

        pts = polygon_to_array(msg.polygon)
        if len(pts) < 3 or not np.all(np.isfinite(pts)):
            self.diag.error("field polygon has fewer than 3 finite points")
            return
        self._plan_and_publish(Polygon(pts))

    def _plan_and_publish(self, field) -> bool:
        try:
            plan = plan_coverage(field, self.cov_params)
        except PlanningError as exc:
            self.diag.error(f"coverage planning failed: {exc}")
            self.get_logger().error(f"coverage planning failed: {exc}")
            return False
        self.plan = plan
        stamp = self.get_clock().now().to_msg()
        p = plan.path
        self._plan_pub.publish(array_to_path(np.column_stack([p.xy, p.yaw]), self.p.frame_id, stamp))
        self._seg_pub.publish(segments_msg(plan))
        self._mk_pub.publish(plan_markers(plan, self.p.frame_id, stamp))
        L = plan.lengths_m
        self.diag.ok("plan published", swaths=len(plan.swaths), total_m=round(L["total"], 1),
                     headland_m=round(L["headland"], 1), coverage=round(plan.coverage_ratio, 4),
                     angle_deg=round(math.degrees(plan.angle_rad), 2), poses=len(p))
        self.get_logger().info(f"coverage plan: {len(plan.swaths)} swaths, total {L['total']:.1f} m, "
                               f"coverage {plan.coverage_ratio:.4f}")
        return True


def main(args=None):
    return run_node(CoveragePlannerNode, args)


if __name__ == "__main__":
    main()
