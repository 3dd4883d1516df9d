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


class _ReferenceTracker(MultiObjectTracker):
    """The tracker as first written: F and Q built per track, S inverted again for the update."""

    def update(self, t_s, detections, widths_m=None):
        p = self.p
        Z = np.asarray(detections, dtype=float).reshape(-1, 2)
        W = np.zeros(len(Z)) if widths_m is None else np.asarray(widths_m, dtype=float).ravel()
        keep = np.all(np.isfinite(Z), axis=1)
        Z, W = Z[keep], W[keep]
        dt = 0.0 if self._t is None else max(0.0, t_s - self._t)
        self._t = t_s
        for tr in self.tracks:
            if dt > 0:
                F = np.eye(4)
                F[0, 2] = F[1, 3] = dt
                G = np.array([[0.5 * dt * dt, 0], [0, 0.5 * dt * dt], [dt, 0], [0, dt]])
                tr.x = F @ tr.x
                tr.P = F @ tr.P @ F.T + p.accel_noise_mps2 ** 2 * G @ G.T
        R = np.eye(2) * p.meas_noise_m ** 2
        H = np.zeros((2, 4))
        H[0, 0] = H[1, 1] = 1.0
        pairs = []
        for ti, tr in enumerate(self.tracks):
            Si = np.linalg.inv(tr.P[:2, :2] + R)
            dz = Z - tr.x[:2]
            d2 = np.einsum("ni,ij,nj->n", dz, Si, dz)
            pairs += [(float(d2[zi]), ti, int(zi)) for zi in np.flatnonzero(d2 < p.gate_chi2)]
        used_t, used_z = set(), set()
        for _d2, ti, zi in sorted(pairs):
            if ti in used_t or zi in used_z:
                continue
            used_t.add(ti)
            used_z.add(zi)
            tr = self.tracks[ti]
            K = tr.P @ H.T @ np.linalg.inv(tr.P[:2, :2] + R)
            tr.x = tr.x + K @ (Z[zi] - tr.x[:2])
            tr.P = (np.eye(4) - K @ H) @ tr.P
            tr.hits += 1
            tr.t_update_s = t_s
            tr.width_m = 0.7 * tr.width_m + 0.3 * float(W[zi])
            tr.radius_m = max(0.5 * tr.width_m, 0.05)
            tr.confirmed = tr.confirmed or tr.hits >= p.confirm_hits
            tr.is_person = p.person_min_width_m <= tr.width_m <= p.person_max_width_m
        self.tracks = [tr for tr in self.tracks
                       if t_s - tr.t_update_s <= (p.max_coast_s if tr.confirmed else p.tentative_coast_s)]
        for zi in range(len(Z)):
            if zi in used_z or len(self.tracks) >= p.max_tracks:
                continue
            P0 = np.diag([p.meas_noise_m ** 2] * 2 + [p.init_speed_std_mps ** 2] * 2)
            from agricare.core.perception.obstacles import Track
            tr = Track(self._next_id, np.array([Z[zi, 0], Z[zi, 1], 0.0, 0.0]), P0, t_s, t_s, 1,
                       max(0.5 * float(W[zi]), 0.05), float(W[zi]), confirmed=p.confirm_hits <= 1)
            tr.is_person = p.person_min_width_m <= float(W[zi]) <= p.person_max_width_m
            self._next_id += 1
            self.tracks.append(tr)
        return self.confirmed()


def test_tracker_shared_transition_and_inverse_give_the_reference_tracks():
    """F and Q built once per update (not per track) and S inverted once per track: the same tracks, states and
    covariances, bit for bit, as building them per track, over walkers that cross, appear and vanish."""
    rng = np.random.default_rng(2)
    fast, ref = MultiObjectTracker(), _ReferenceTracker()
    starts = rng.uniform(-10, 10, (6, 2))
    vels = rng.uniform(-1.5, 1.5, (6, 2))
    t, n_confirmed = 0.0, 0
    for k in range(150):
        t += rng.choice([0.1, 0.1, 0.2])
        seen = [i for i in range(6) if (k + 7 * i) % 40 < 30]           # each walker hidden now and then
        det = np.array([starts[i] + vels[i] * t + rng.normal(0, 0.03, 2) for i in seen]).reshape(-1, 2)
        widths = rng.uniform(0.2, 1.2, len(det))
        a, b = fast.update(t, det, widths), ref.update(t, det, widths)
        assert [tr.id for tr in a] == [tr.id for tr in b]
        for ta, tb in zip(fast.tracks, ref.tracks):
            assert ta.id == tb.id and np.array_equal(ta.x, tb.x) and np.array_equal(ta.P, tb.P)
            assert (ta.hits, ta.confirmed, ta.is_person) == (tb.hits, tb.confirmed, tb.is_person)
        n_confirmed = max(n_confirmed, len(a))
    assert n_confirmed >= 4


def test_wide_clusters_skipped_early_are_those_the_all_pairs_width_drops():
    """A cluster with one pair already farther apart than max_cluster_width_m is skipped before its all-pairs
    width: the clusters kept are exactly those a limit nothing reaches keeps, filtered by their width."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        circles = [(rng.uniform(-15, 15), rng.uniform(-15, 15), rng.uniform(0.1, 4.0)) for _ in range(8)]
        scan = ray_cast(circles, noise=0.01, rng=rng)
        limit = rng.uniform(0.5, 3.0)
        got = cluster_scan(scan, A0, DA, 0.05, 30.0, ClusterParams(max_cluster_width_m=limit))
        every = cluster_scan(scan, A0, DA, 0.05, 30.0, ClusterParams(max_cluster_width_m=1e9))
        want = [c for c in every if c.width_m <= limit]
        assert len(got) == len(want) and len(want) < len(every)
        for a, b in zip(got, want):
            assert np.array_equal(a.points, b.points) and a.width_m == b.width_m and a.radius_m == b.radius_m
