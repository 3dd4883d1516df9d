"""Lidar clustering (adaptive breakpoint, REP-117) and constant-velocity multi-object tracking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.perception.obstacles import (
    ClusterParams,
    MultiObjectTracker,
    TrackerParams,
    cluster_scan,
    valid_scan_points,
)

N = 720
A0, DA = -math.pi, 2 * math.pi / N


def ray_cast(circles, max_range=20.0, noise=0.0, rng=None):
    """Ranges of a 360-degree scan of circles [(x, y, r), ...]; +inf where nothing is hit."""
    ang = A0 + DA * np.arange(N)
    d = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    rr = np.full(N, np.inf)
    for cx, cy, r in circles:
        b = d @ np.array([cx, cy])
        disc = b * b - (cx * cx + cy * cy - r * r)
        t = b - np.sqrt(np.maximum(disc, 0))
        hit = (disc >= 0) & (t > 0)
        rr = np.where(hit & (t < rr), t, rr)
    if noise and rng is not None:
        rr = rr + rng.normal(0, noise, N)
    rr[rr > max_range] = np.inf
    return rr


def test_rep117_invalid_values_dropped_and_break_clusters():
    r = np.full(10, 2.0)
    r[3] = np.nan
    r[5] = np.inf
    r[6] = -np.inf
    r[8] = 0.01   # below range_min
    r[9] = 50.0   # above range_max
    pts, idx = valid_scan_points(r, 0.0, 0.01, 0.1, 30.0)
    assert list(idx) == [0, 1, 2, 4, 7]
    assert np.allclose(np.hypot(*pts.T), 2.0)
    cl = cluster_scan(r, 0.0, 0.01, 0.1, 30.0, ClusterParams(min_points=1))
    assert [len(c.points) for c in cl] == [4, 1]  # one dropout is bridged, two invalid beams split
    cl = cluster_scan(r, 0.0, 0.01, 0.1, 30.0, ClusterParams(min_points=1, max_skipped_beams=0))
    assert [len(c.points) for c in cl] == [3, 1, 1]
    assert cluster_scan(np.full(5, np.nan), 0, 0.01, 0.1, 30.0) == []
    assert cluster_scan([], 0, 0.01, 0.1, 30.0) == []


def test_adaptive_breakpoint_separates_objects():
    scan = ray_cast([(2.0, 0.0, 0.2), (2.0, 0.6, 0.2), (6.0, -2.0, 0.25)])
    cl = cluster_scan(scan, A0, DA, 0.05, 30.0)
    assert len(cl) == 3
    cents = sorted((round(c.centroid[0], 1), round(c.centroid[1], 1)) for c in cl)
    assert cents[0][0] == pytest.approx(1.9, abs=0.15)
    for c in cl:
        assert 0.1 < c.width_m < 0.5
    # a long wall is not an object
    wall = ray_cast([(0.0, 100.0, 97.0)])
    assert cluster_scan(wall, A0, DA, 0.05, 30.0, ClusterParams(max_cluster_width_m=2.0)) == []


def test_tracker_estimates_velocity_and_flags_person():
    rng = np.random.default_rng(0)
    trk = MultiObjectTracker()
    ids_seen = set()
    for k in range(30):
        t = 0.1 * k
        person = (1.0 + 1.2 * t, 2.0 - 0.4 * t, 0.2)       # walking person, 0.4 m wide
        post = (4.0, -1.0, 0.06)                            # thin static pole
        car = (-5.0, 0.0 + 0.0 * t, 0.9)                    # 1.8 m wide: not a person
        scan = ray_cast([person, post, car], noise=0.01, rng=rng)
        cl = cluster_scan(scan, A0, DA, 0.05, 30.0)
        tracks = trk.update(t, [c.centroid for c in cl], [c.width_m for c in cl])
        ids_seen |= {tr.id for tr in tracks}
    assert len(tracks) == 3
    by_x = sorted(tracks, key=lambda tr: tr.x[0])
    car_t, pole_t, person_t = by_x[0], by_x[1], by_x[2]
    assert person_t.velocity == pytest.approx([1.2, -0.4], abs=0.15)
    assert np.hypot(*pole_t.velocity) < 0.1
    assert person_t.is_person and not car_t.is_person
    assert len(ids_seen) == 3  # stable ids, no track swaps
    assert 0.0 < person_t.confidence(t, 1.0) <= 1.0


def test_track_birth_confirmation_and_death():
    p = TrackerParams(confirm_hits=3, max_coast_s=0.5)
    trk = MultiObjectTracker(p)
    assert trk.update(0.0, [[1.0, 1.0]], [0.3]) == []          # tentative
    assert trk.update(0.1, [[1.0, 1.0]], [0.3]) == []
    assert len(trk.update(0.2, [[1.0, 1.0]], [0.3])) == 1      # confirmed after 3 hits
    assert len(trk.update(0.6, [], [])) == 1                   # coasting
    assert trk.update(0.8, [], []) == []                       # dead after max_coast_s
    # a far detection outside the gate starts a new track instead of dragging the old one
    trk2 = MultiObjectTracker(p)
    for k in range(3):
        trk2.update(0.1 * k, [[0.0, 0.0]], [0.3])
    trk2.update(0.3, [[3.0, 0.0]], [0.3])
    assert len(trk2.tracks) == 2
    assert trk2.confirmed()[0].position == pytest.approx([0.0, 0.0], abs=0.05)
    # NaN detections are ignored, time going backwards resets
    trk2.update(0.4, [[np.nan, 1.0]], [0.3])
    trk2.update(0.0, [[5.0, 5.0]], [0.3])
    assert len(trk2.tracks) == 1


def test_params_validation():
    with pytest.raises(ValueError, match="lambda_rad"):
        ClusterParams(lambda_rad=2.0)
    with pytest.raises(ValueError, match="meas_noise_m"):
        TrackerParams(meas_noise_m=0.0)
