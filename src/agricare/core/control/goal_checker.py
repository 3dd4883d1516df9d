"""Goal checker with xy / yaw tolerances, latching and hysteresis (no flicker near the goal).

Position: reached when the robot is within ``xy_tolerance_m`` of the goal, or when it has crossed
the goal line (the line through the goal perpendicular to the final travel direction) with a
lateral offset within the tolerance. Once reached it stays reached until the robot is further than
``xy_tolerance_m + xy_hysteresis_m`` away (pushed off), so a robot hovering at the tolerance boundary
or rotating in place never toggles between "arrived" and "driving".

Heading: judged only once the position is reached, latched the same way with ``yaw_hysteresis_rad``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agricare.core.geometry import angle_diff


@dataclass(frozen=True)
class GoalStatus:
    """Result of one check.

    Attributes
    ----------
    xy_reached, yaw_reached : latched flags.
    distance_m : Euclidean distance to the goal position.
    along_m : signed position along the final travel direction relative to the goal (> 0: passed).
    yaw_error_rad : goal yaw minus robot yaw, wrapped.
    """

    xy_reached: bool
    yaw_reached: bool
    distance_m: float
    along_m: float
    yaw_error_rad: float

    @property
    def reached(self) -> bool:
        return self.xy_reached and self.yaw_reached


class GoalChecker:
    """Stateful goal checker.

    Parameters
    ----------
    xy_tolerance_m, yaw_tolerance_rad : arrival tolerances (> 0).
    xy_hysteresis_m, yaw_hysteresis_rad : extra margin before a latched flag is released (>= 0).
    """

    def __init__(self, xy_tolerance_m: float = 0.25, yaw_tolerance_rad: float = 0.25,
                 xy_hysteresis_m: float = 0.15, yaw_hysteresis_rad: float = 0.1):
        for name, value, lower in (("xy_tolerance_m", xy_tolerance_m, 0.0),
                                   ("yaw_tolerance_rad", yaw_tolerance_rad, 0.0)):
            if not (math.isfinite(value) and value > lower):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name, value in (("xy_hysteresis_m", xy_hysteresis_m), ("yaw_hysteresis_rad", yaw_hysteresis_rad)):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.xy_tolerance_m = float(xy_tolerance_m)
        self.yaw_tolerance_rad = float(yaw_tolerance_rad)
        self.xy_hysteresis_m = float(xy_hysteresis_m)
        self.yaw_hysteresis_rad = float(yaw_hysteresis_rad)
        self.reset()

    def reset(self) -> None:
        """Forget the latched flags (new goal)."""
        self._xy = False
        self._yaw = False

    def update(self, pose, goal_pose, travel_yaw_rad: float | None = None) -> GoalStatus:
        """Check ``pose`` against ``goal_pose`` (both ``[x_m, y_m, yaw_rad]``).

        Parameters
        ----------
        travel_yaw_rad : direction of travel when arriving (defaults to the goal yaw); the goal line
            is perpendicular to it. For a reversing final approach pass ``goal_yaw + pi``.
        """
        dx, dy = float(pose[0]) - float(goal_pose[0]), float(pose[1]) - float(goal_pose[1])
        dist = math.hypot(dx, dy)
        ty = float(goal_pose[2]) if travel_yaw_rad is None else float(travel_yaw_rad)
        along = dx * math.cos(ty) + dy * math.sin(ty)
        lateral = -dx * math.sin(ty) + dy * math.cos(ty)
        yaw_err = float(angle_diff(float(goal_pose[2]), float(pose[2])))
        if self._xy:
            if dist > self.xy_tolerance_m + self.xy_hysteresis_m:
                self._xy = False
                self._yaw = False
        elif dist <= self.xy_tolerance_m or (along > 0.0 and abs(lateral) <= self.xy_tolerance_m
                                             and along <= self.xy_tolerance_m + self.xy_hysteresis_m):
            self._xy = True
        if self._xy:
            if self._yaw:
                if abs(yaw_err) > self.yaw_tolerance_rad + self.yaw_hysteresis_rad:
                    self._yaw = False
            elif abs(yaw_err) <= self.yaw_tolerance_rad:
                self._yaw = True
        return GoalStatus(self._xy, self._yaw, dist, along, yaw_err)
