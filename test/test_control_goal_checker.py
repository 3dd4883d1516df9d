"""Goal checker: tolerances, goal-line crossing, latching with hysteresis (no flicker)."""

from __future__ import annotations

import numpy as np
import pytest

from agricare.core.control.goal_checker import GoalChecker


def test_xy_and_yaw_tolerances():
    gc = GoalChecker(0.2, 0.1, 0.1, 0.05)
    goal = np.array([5.0, 0.0, 0.0])
    st = gc.update([4.5, 0.0, 0.0], goal)
    assert not st.xy_reached and not st.yaw_reached and st.distance_m == pytest.approx(0.5)
    st = gc.update([4.85, 0.0, 0.3], goal)
    assert st.xy_reached and not st.yaw_reached and st.yaw_error_rad == pytest.approx(-0.3)
    st = gc.update([4.85, 0.0, 0.05], goal)
    assert st.reached


def test_no_flicker_at_the_tolerance_boundary():
    gc = GoalChecker(0.2, 0.1, 0.1, 0.05)
    goal = np.array([0.0, 0.0, 0.0])
    rng = np.random.default_rng(0)
    flags = []
    for _ in range(500):  # hovering around 0.2 m with 5 cm noise, facing the goal yaw +- noise
        r = 0.2 + rng.normal(0.0, 0.03)
        a = rng.uniform(-np.pi, np.pi)
        flags.append(gc.update([r * np.cos(a), r * np.sin(a), rng.normal(0.0, 0.05) + 0.1], goal).xy_reached)
    first = flags.index(True)
    assert all(flags[first:])  # once reached, never released while within tolerance + hysteresis


def test_release_after_being_pushed_away_and_reset():
    gc = GoalChecker(0.2, 0.1, 0.1, 0.05)
    goal = np.zeros(3)
    assert gc.update([0.1, 0.0, 0.0], goal).reached
    assert gc.update([0.28, 0.0, 0.0], goal).xy_reached   # inside tol + hysteresis
    assert gc.update([0.0, 0.0, 0.13], goal).yaw_reached  # inside yaw tol + hysteresis
    assert not gc.update([0.0, 0.0, 0.2], goal).yaw_reached
    assert not gc.update([0.35, 0.0, 0.0], goal).xy_reached
    gc.update([0.0, 0.0, 0.0], goal)
    gc.reset()
    assert not gc.update([-0.25, 0.0, 0.0], goal).xy_reached


def test_crossing_the_goal_line_counts_within_lateral_tolerance():
    gc = GoalChecker(0.1, 0.1, 0.1, 0.05)
    goal = np.array([5.0, 0.0, 0.0])
    st = gc.update([5.05, 0.12, 0.0], goal)  # passed, 0.13 m away but lateral 0.12 > 0.1
    assert not st.xy_reached and st.along_m == pytest.approx(0.05)
    st = gc.update([5.05, 0.08, 0.0], goal)  # passed, lateral within tolerance
    assert st.xy_reached
    gc.reset()
    st = gc.update([4.95, 0.0, np.pi], goal, travel_yaw_rad=np.pi)  # reversing: passed from the other side
    assert st.xy_reached and st.along_m == pytest.approx(0.05)


def test_validation():
    with pytest.raises(ValueError, match="xy_tolerance_m"):
        GoalChecker(0.0, 0.1)
    with pytest.raises(ValueError, match="yaw_hysteresis_rad"):
        GoalChecker(0.1, 0.1, 0.1, -1.0)
