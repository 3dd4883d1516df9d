"""Row follower core: servo law, guidance filter, U-turn plan and a closed loop on synthetic images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.control.row_follower import (
    DONE,
    END_OF_ROW,
    FOLLOWING,
    TURNING,
    RowFollower,
    RowFollowerParams,
    plan_u_turn,
    simulate_row_following,
)
from agricare.core.perception.crop_rows import CropRowResult, GuidanceFilter, GuidanceFilterParams


def test_servo_steers_towards_the_row():
    f = RowFollower(RowFollowerParams(speed_mps=1.0))
    f.set_guidance(0.0, offset_m=0.1, heading_rad=0.0, confidence=0.9)
    v, w = f.step(0.01, [0, 0, 0])
    assert v == pytest.approx(1.0) and w > 0  # row to the left -> turn left
    f.set_guidance(0.02, offset_m=0.0, heading_rad=-0.2, confidence=0.9)
    assert f.step(0.03, [0, 0, 0])[1] < 0
    assert f.state == FOLLOWING


def test_stale_or_weak_guidance_stops():
    f = RowFollower(RowFollowerParams(guidance_timeout_s=0.3))
    f.set_guidance(0.0, 0.0, 0.0, 0.9)
    assert f.step(0.1, [0, 0, 0])[0] > 0
    assert f.step(0.5, [0, 0, 0]) == (0.0, 0.0)
    assert "guidance" in f.reason
    f.set_guidance(0.6, 0.0, 0.0, 0.05)  # below min_confidence
    assert f.step(0.61, [0, 0, 0]) == (0.0, 0.0)
    f.set_guidance(0.7, float("nan"), 0.0, 0.9)  # ignored
    assert f.step(0.71, [0, 0, 0]) == (0.0, 0.0)


def test_u_turn_plan_geometry():
    for left in (True, False):
        path = plan_u_turn([2.0, 1.0, 0.0], 0.5, left, 0.25, reentry_distance_m=0.5)
        end = path[-1]
        assert end[1] == pytest.approx(1.0 + (0.5 if left else -0.5), abs=1e-9)
        assert abs(abs(end[2]) - math.pi) < 1e-6
        assert end[0] == pytest.approx(1.5, abs=1e-9)
        assert np.all(np.hypot(*np.diff(path[:, :2], axis=0).T) < 0.1)  # dense, continuous
    wide = plan_u_turn([0, 0, math.pi / 2], 2.0, True, 0.4)  # arcs + straight, rotated start
    assert wide[-1, 0] == pytest.approx(-2.0, abs=1e-9)
    with pytest.raises(ValueError):
        plan_u_turn([0, 0, 0], 0.0, True, 0.3)


def test_params_validation():
    with pytest.raises(ValueError, match="speed_mps"):
        RowFollowerParams(speed_mps=-1)
    with pytest.raises(ValueError, match="rows_per_turn"):
        RowFollowerParams(rows_per_turn=0)
    with pytest.raises(ValueError, match="min_confidence"):
        GuidanceFilterParams(min_confidence=2.0)


def _res(off, hdg, conf, row_end=5.0):
    return CropRowResult(offset=off, heading=hdg, confidence=conf, metric=True, row_end=row_end, rows_visible=3)


def test_guidance_filter_outliers_and_end_of_row():
    f = GuidanceFilter(GuidanceFilterParams(time_constant_s=0.0, confirm_count=2, lost_timeout_s=0.5))
    for i in range(5):
        g = f.update(0.1 * i, _res(0.05, 0.01, 0.9))
    assert g.offset == pytest.approx(0.05) and g.confidence > 0.5 and not g.end_of_row
    g = f.update(0.6, _res(0.4, 0.01, 0.9))  # single outlier rejected
    assert g.offset == pytest.approx(0.05)
    for i in range(3):  # persistent, consistent jump accepted
        g = f.update(0.7 + 0.1 * i, _res(0.3, 0.0, 0.9))
    assert g.offset == pytest.approx(0.3)
    g = f.update(1.1, _res(0.3, 0.0, 0.9, row_end=0.6))
    assert not g.end_of_row
    g = f.update(1.2, _res(0.3, 0.0, 0.9, row_end=0.5))
    assert g.end_of_row  # confirmed twice
    f.reset()
    assert not f.update(1.3, None).end_of_row  # never followed: not an end of row
    f.update(1.4, _res(0.0, 0.0, 0.9))
    g = f.update(2.2, None)
    assert g.end_of_row and g.confidence == 0.0  # rows lost for longer than lost_timeout_s


def test_end_of_row_without_odometry_stops():
    f = RowFollower()
    f.set_guidance(0.0, 0.0, 0.0, 0.9, end_of_row=True)
    assert f.step(0.01, None) == (0.0, 0.0)
    assert f.state == END_OF_ROW


def test_max_rows_done():
    f = RowFollower(RowFollowerParams(max_rows=1))
    f.set_guidance(0.0, 0.0, 0.0, 0.9, end_of_row=True)
    assert f.step(0.01, [0, 0, 0]) == (0.0, 0.0)
    assert f.state == DONE


def test_closed_loop_follow_end_turn_and_next_row():
    """Synthetic camera (noise, plant gaps) -> detect_rows -> GuidanceFilter -> RowFollower -> unicycle.

    Starts 8 cm off the row and 3 deg off its heading at 1 m/s; rows end 5 m ahead."""
    r = simulate_row_following(duration_s=12.0, row_length_m=5.0, start_offset_m=0.08, start_yaw_rad=0.05,
                               camera_rate_hz=10.0, image_size=(240, 180), seed=1)
    t, st, pose, cte = r["t"], r["state"], r["pose"], r["cte"]
    settled = (t > 2.5) & (st == FOLLOWING) & (pose[:, 0] < 3.5)
    assert settled.sum() > 20
    rms = float(np.sqrt(np.mean(cte[settled] ** 2)))
    assert rms < 0.02  # 2 cm target of the issue; the plain-Python loop gives ~0.5 cm
    assert abs(cte[0]) > 0.07  # it really started off the row
    seq = [s for i, s in enumerate(st) if i == 0 or st[i - 1] != s]
    assert seq[:4] == [FOLLOWING, END_OF_ROW, TURNING, FOLLOWING]
    i_end = int(np.flatnonzero(st == END_OF_ROW)[0])
    assert 3.0 < pose[i_end, 0] < 5.0  # ended before the last plants, after most of the row
    final = pose[-1]
    assert final[1] == pytest.approx(0.5, abs=0.1)  # next row to the left
    assert abs(abs(final[2]) - math.pi) < 0.2  # heading back
    assert r["rows_done"] == 1


def _turn_on_noisy_pose(seed=0, pose_noise_m=0.01, yaw_noise_rad=0.005):
    """U-turn from the end of a row along +x into the lane 0.75 m to the left, tracked on a pose with EKF-like
    noise (the true pose moves as a unicycle). Returns (commands while turning, true pose at the hand-over)."""
    p = RowFollowerParams(speed_mps=1.0, row_spacing_m=0.75, turn_radius_m=0.375, turn_speed_mps=0.25,
                          turn_lookahead_m=0.35, reentry_distance_m=2.0, row_exit_distance_m=0.0,
                          speed_ramp_distance_m=1.5)
    f = RowFollower(p)
    rng = np.random.default_rng(seed)
    true = np.array([0.0, 0.0, 0.0])
    dt, cmds = 0.05, []
    f.set_guidance(0.0, 0.0, 0.0, 0.9, end_of_row=True)
    for i in range(1, 2000):
        meas = true + np.r_[rng.normal(0.0, pose_noise_m, 2), rng.normal(0.0, yaw_noise_rad)]
        v, w = f.step(i * dt, meas)
        if f.state == TURNING:
            cmds.append((true.copy(), v, w))
        elif cmds:
            return cmds, true, f
        true = true + dt * np.array([v * math.cos(true[2]), v * math.sin(true[2]), w])
    raise AssertionError("the turn never finished")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_turn_end_stays_smooth_on_a_noisy_pose(seed):
    # The look-ahead must not shrink onto the last path point: with centimetres of pose noise that turned into
    # yaw-rate commands near the limit right before the hand-over to the camera (the farm demo's 35 cm error).
    cmds, true, f = _turn_on_noisy_pose(seed)
    back = [(pose, w) for pose, v, w in cmds if abs(abs(pose[2]) - math.pi) < 0.15]  # the straight re-entry
    assert len(back) > 100
    assert max(abs(w) for _, w in back[len(back) // 4:]) < 0.3   # 0.10-0.17 measured; 0.39-0.80 before the fix
    # handed over on the next lane, heading back, within a few cm / degrees
    assert f.state == FOLLOWING and f.rows_done == 1
    assert abs(true[1] - 0.75) < 0.03 and abs(abs(true[2]) - math.pi) < 0.05
    # past the end of the planned path (the turn ends when the robot passes it, not within some radius)
    end = f.turn_path[-1]
    assert (true[0] - end[0]) * math.cos(end[2]) + (true[1] - end[1]) * math.sin(end[2]) >= -0.02


def test_speed_ramps_up_after_the_hand_over():
    p = RowFollowerParams(speed_mps=1.0, turn_speed_mps=0.25, speed_ramp_distance_m=1.0, entry_distance_m=2.0,
                          ramp_max_heading_rad=0.15, convergence_distance_m=1.0)
    f = RowFollower(p)
    pose = np.array([0.0, 0.0, 0.0])
    f.set_guidance(0.0, 0.0, 0.0, 0.0)         # perception works but sees no rows yet
    assert f.step(0.0, pose) == (0.125, 0.0)   # creeping: looking for the rows
    f.set_guidance(0.05, 0.02, 0.05, 0.9)
    v0, w0 = f.step(0.05, pose)
    assert v0 == pytest.approx(0.25) and w0 == pytest.approx(0.25 * (0.02 + 2.0 * math.sin(0.05)))
    f.set_guidance(0.1, 0.02, 0.05, 0.9)
    assert f.step(0.1, pose + [0.5, 0.0, 0.0])[0] == pytest.approx(0.625)   # half way up the ramp
    f.set_guidance(0.15, 0.02, 0.3, 0.9)   # heading error beyond ramp_max_heading_rad: back to the turn speed
    assert f.step(0.15, pose + [0.6, 0.0, 0.0])[0] == pytest.approx(0.25)
    f.set_guidance(0.2, 0.02, 0.05, 0.9)
    assert f.step(0.2, pose + [1.2, 0.0, 0.0])[0] == pytest.approx(0.7)     # ramp restarted at x = 0.6
    f.set_guidance(0.25, 0.02, 0.05, 0.9)
    assert f.step(0.25, pose + [1.7, 0.0, 0.0])[0] == pytest.approx(1.0)
    f.set_guidance(0.3, 0.02, 0.05, 0.9)
    assert f.step(0.3, pose + [1.0, 0.0, 0.0])[0] == pytest.approx(1.0)     # ramp over: full speed for good


def test_follower_holds_instead_of_creeping_blind():
    """At the row entry the follower creeps looking for the rows; a camera fault reported by perception
    (confidence CAMERA_FAULT) or silent perception makes it hold still, and it creeps on once the camera sees."""
    from agricare.core.control.row_follower import CAMERA_FAULT, RowFollower, RowFollowerParams

    f = RowFollower(RowFollowerParams(entry_distance_m=3.0, turn_speed_mps=0.25, guidance_timeout_s=0.5))
    pose = np.array([0.0, 0.0, 0.0])
    assert f.step(0.0, pose) == (0.0, 0.0) and "no row guidance" in f.reason   # perception not heard yet
    f.set_guidance(0.1, 0.0, 0.0, 0.0)          # a view without rows: creep on looking for them
    assert f.step(0.15, pose) == (0.125, 0.0)
    f.set_guidance(0.2, 0.0, 0.0, CAMERA_FAULT)  # the camera goes black: hold
    assert f.step(0.25, pose) == (0.0, 0.0) and "camera fault" in f.reason
    assert f.step(0.6, pose) == (0.0, 0.0)
    assert f.step(2.0, pose) == (0.0, 0.0) and "no row guidance" in f.reason   # and perception falls silent
    f.set_guidance(2.1, 0.0, 0.0, 0.0)           # the camera sees again (still no rows): creep on
    assert f.step(2.15, pose) == (0.125, 0.0) and f.state == "following"
