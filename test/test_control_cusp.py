"""A cusp is left once the machine has stopped, also when the speed estimate never reads exactly zero."""

from __future__ import annotations

import numpy as np

from agricare.core.control.kinematics import DiffDrive, DiffDriveParams
from agricare.core.control.path_tracking import TrackerParams
from agricare.core.control.pure_pursuit import RegulatedPurePursuit


def _cusp_path():
    fwd = np.column_stack([np.linspace(0, 5, 21), np.zeros(21), np.zeros(21)])
    back = np.column_stack([np.linspace(5, 0, 21)[1:], np.full(20, 1.0), np.zeros(20)])
    back[:, 1] = np.linspace(0.0, 1.0, 20)
    return np.vstack([fwd, back]), np.concatenate([np.ones(21), -np.ones(20)])


def test_cusp_left_after_settle_time_with_noisy_speed():
    poses, dirs = _cusp_path()
    tr = RegulatedPurePursuit(TrackerParams(cusp_settle_s=2.0), DiffDrive(DiffDriveParams()))
    tr.set_plan(poses, dirs)
    at_cusp = np.array([5.0, 0.0, 0.0])
    tr.compute(np.array([4.5, 0.0, 0.0]), 0.5, 9.9)  # arriving forward
    states = []
    for k in range(60):
        t = 10.0 + 0.05 * k
        out = tr.compute(at_cusp, 0.06, t)  # a fused speed that hovers above stop_speed_mps (0.03)
        states.append((t, out.state, out.direction))
    first_stop = next(t for t, s, _ in states if s == "cusp_stop")
    after = [(t, s, d) for t, s, d in states if t >= first_stop + 2.0 + 0.06]
    assert all(s == "cusp_stop" for t, s, _ in states if first_stop <= t < first_stop + 2.0 - 0.06)
    assert after and after[-1][1] != "cusp_stop" and after[-1][2] == -1


def test_cusp_left_at_once_when_stopped():
    poses, dirs = _cusp_path()
    tr = RegulatedPurePursuit(TrackerParams(), DiffDrive(DiffDriveParams()))
    tr.set_plan(poses, dirs)
    tr.compute(np.array([4.5, 0.0, 0.0]), 0.5, 0.95)  # arriving forward
    out = tr.compute(np.array([5.0, 0.0, 0.0]), 0.5, 1.0)
    assert out.state == "cusp_stop"
    out = tr.compute(np.array([5.0, 0.0, 0.0]), 0.0, 1.05)
    assert out.state == "cusp_stop"  # switches this cycle, moves next
    out = tr.compute(np.array([5.0, 0.0, 0.0]), 0.0, 1.1)
    assert out.state != "cusp_stop" and out.direction == -1
