"""Particle filter: likelihood field, convergence in the town map, parameter validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.geometry import se2_compose
from agricare.core.localization.particle_filter import LikelihoodField, ParticleFilter, ParticleFilterParams
from agricare.core.localization.synthetic import simulate_scan
from agricare.core.planning.grid import OccupancyMap, load_map


@pytest.fixture(scope="module")
def town(request):
    import pathlib
    return load_map(pathlib.Path(__file__).resolve().parents[1] / "config" / "maps" / "town.yaml")


def test_likelihood_field_distance():
    occ = np.zeros((50, 50), dtype=bool)
    occ[:, 25] = True                          # wall at x in [2.5, 2.6) m
    f = LikelihoodField(OccupancyMap(occ, 0.1), max_distance_m=2.0)
    d = f.distance(np.array([1.55, 2.55, 0.05, 99.0]), np.array([2.5, 2.5, 2.5, 2.5]))
    assert abs(d[0] - 1.0) < 0.06 and d[1] < 0.06 and d[2] == pytest.approx(2.0) and d[3] == 2.0


def test_converges_from_2m_20deg_in_the_town(town):
    truth = np.array([60.0, 100.0, 0.0])
    start = truth + [1.5, -1.32, math.radians(20.0)]   # 2.0 m, 20 deg off
    pf = ParticleFilter(town, ParticleFilterParams(max_particles=2000, seed=3))
    pf.initialize(start, np.diag([1.0, 1.0, 0.35 ** 2]))
    odom = np.zeros(3)
    pf.motion_update(odom)
    angles = np.linspace(-math.pi, math.pi, 180, endpoint=False)
    errs = []
    for k in range(30):
        step = [0.3, 0.0, 0.0]
        truth, odom = se2_compose(truth, step), se2_compose(odom, step)
        pf.motion_update(odom)
        assert pf.sensor_update(simulate_scan(town, truth, angles, 30.0, 0.02, seed=k), angles)
        est, _ = pf.estimate()
        errs.append(math.hypot(*(est[:2] - truth[:2])))
    assert max(errs[10:]) < 0.2, errs
    est, _ = pf.estimate()
    assert abs(math.remainder(est[2] - truth[2], 2 * math.pi)) < 0.03
    assert pf.converged() and len(pf.particles) < 2000  # KLD shrank the set
    T = pf.map_to_odom(odom)
    assert np.allclose(se2_compose(T, odom)[:2], est[:2])


def test_no_update_without_motion_or_valid_beams(town):
    pf = ParticleFilter(town, ParticleFilterParams(seed=1))
    assert not pf.sensor_update([1.0, 2.0, 3.0], [0.0, 0.1, 0.2])   # not initialised
    pf.initialize([60.0, 100.0, 0.0])
    angles = np.linspace(-1, 1, 10)
    assert not pf.sensor_update(np.full(10, np.nan), angles)
    assert pf.sensor_update(np.full(10, 5.0), angles, force=True)
    assert not pf.sensor_update(np.full(10, 5.0), angles)            # has not moved since


@pytest.mark.parametrize("field,value", [("min_particles", 5), ("sigma_hit_m", 0.0), ("alpha1", -0.1),
                                         ("resample_ratio", 1.5), ("odom_frame", "base_link"),
                                         ("laser_pose_in_base", (0.0, 0.0))])
def test_bad_params(field, value):
    with pytest.raises(ValueError) as exc:
        ParticleFilterParams(**{field: value})
    assert field in str(exc.value), str(exc.value)   # "odom_frame": "map_frame, odom_frame and base_frame must be ..."


def test_through_walls_fraction_tells_clutter_from_a_wrong_map():
    """Unmapped objects only shorten beams; a map whose walls are off makes beams pass through mapped walls."""
    res = 0.1

    def corridor(y_shift):
        occ = np.zeros((120, 400), dtype=bool)            # x -20..20, y -6..6
        for y_wall in (-3.0 + y_shift, 3.0 + y_shift):
            row = int(round((y_wall + 6.0) / res))
            occ[row - 1:row + 1, :] = True
        return OccupancyMap(occ, res, (-20.0, -6.0))

    angles = np.linspace(-np.pi, np.pi, 60, endpoint=False) + 0.05
    ranges = np.minimum(3.0 / np.maximum(np.abs(np.sin(angles)), 1e-3), 15.0)
    ok = ranges < 15.0
    pf = ParticleFilter(corridor(0.0), ParticleFilterParams(laser_pose_in_base=(0.0, 0.0, 0.0)))
    pose = np.array([0.0, 0.0, 0.0])
    assert pf.through_fraction(pose, ranges[ok], angles[ok]) == 0.0
    cluttered = np.where(np.arange(len(ranges)) % 3 == 0, 1.0, ranges)      # people / a van in front of walls
    assert pf.through_fraction(pose, cluttered[ok], angles[ok]) == 0.0
    wrong = ParticleFilter(corridor(1.0), ParticleFilterParams(laser_pose_in_base=(0.0, 0.0, 0.0)))
    frac = wrong.through_fraction(pose, ranges[ok], angles[ok])
    assert 0.35 < frac < 0.65, frac                         # the beams towards the wall mapped 1 m too close


def test_fast_paths_give_the_reference_numbers(town):
    """The likelihood-field lookup by flat index (points all on the map and some off it), the through-walls check
    beam by beam and the cached estimate give exactly what the plain forms give."""
    f = LikelihoodField(town, max_distance_m=1.0)
    rng = np.random.default_rng(3)
    (x0, y0), (w, h) = town.origin_xy, (town.width * town.resolution_m, town.height * town.resolution_m)
    on_map = (rng.uniform(x0 + 1, x0 + w - 1, (300, 60)), rng.uniform(y0 + 1, y0 + h - 1, (300, 60)))
    some_off = (rng.uniform(x0 - 20, x0 + w + 20, (300, 60)), rng.uniform(y0 - 20, y0 + h + 20, (300, 60)))
    for x, y in (on_map, some_off):
        fast, ref = f.distance(x, y), f.distance_reference(x, y)
        assert fast.dtype == ref.dtype and np.array_equal(fast, ref)
    assert f.distance(*some_off).max() == pytest.approx(1.0)   # off the map: the clip distance

    pf = ParticleFilter(town, ParticleFilterParams(laser_pose_in_base=(0.3, 0.1, 0.05)))
    angles = np.linspace(-math.pi, math.pi, 60, endpoint=False)
    fractions = []
    for _ in range(200):
        pose = np.array([rng.uniform(x0 - 5, x0 + w + 5), rng.uniform(y0 - 5, y0 + h + 5), rng.uniform(-3, 3)])
        r = rng.uniform(0.0, 30.0, 60)
        fractions.append(pf.through_fraction(pose, r, angles))
        assert fractions[-1] == pf.through_fraction_reference(pose, r, angles)
    assert 0.0 < np.mean(fractions) < 1.0      # the poses cover both beams through walls and clear ones

    truth = np.array([60.0, 100.0, 0.0])
    pf.initialize(truth, np.diag([0.04, 0.04, 0.01]))
    odom = np.zeros(3)
    pf.motion_update(odom)
    for k in range(15):
        truth, odom = se2_compose(truth, [0.3, 0.0, 0.01]), se2_compose(odom, [0.3, 0.0, 0.01])
        before = pf.estimate()
        pf.motion_update(odom)
        moved = pf.estimate()
        assert not np.array_equal(before[0], moved[0])          # the cache follows the particles
        pf.sensor_update(simulate_scan(town, truth, angles, 30.0, 0.02, seed=k), angles)
        for cached, fresh in zip(pf.estimate(), pf._estimate()):
            assert np.array_equal(cached, fresh)
        est = pf.estimate()[0]
        est[0] += 1.0                                            # callers get copies
        assert pf.estimate()[0][0] != est[0]
    assert pf.resamples > 0


def test_motion_noise_drawn_in_one_call_is_the_three_draws(town):
    """One (3, n) draw gives the numbers of three draws of n in turn: the motion update moves the particles
    exactly as the rotation-translation-rotation model with separate draws does."""
    pf = ParticleFilter(town, ParticleFilterParams(seed=5))
    pf.initialize([60.0, 100.0, 0.3], n=400)
    start = pf.particles.copy()
    rng = np.random.default_rng()
    rng.bit_generator.state = pf.rng.bit_generator.state
    pf.motion_update(np.zeros(3))
    odom = np.array([0.4, 0.05, 0.1])
    pf.motion_update(odom)
    p = pf.p
    trans = math.hypot(odom[0], odom[1])
    rot1 = math.atan2(odom[1], odom[0])
    rot2 = odom[2] - rot1
    sd_r1 = math.sqrt(p.alpha1 * rot1 ** 2 + p.alpha2 * trans ** 2)
    sd_t = math.sqrt(p.alpha3 * trans ** 2 + p.alpha4 * (rot1 ** 2 + rot2 ** 2))
    sd_r2 = math.sqrt(p.alpha1 * rot2 ** 2 + p.alpha2 * trans ** 2)
    h_r1 = rot1 + sd_r1 * rng.standard_normal(400)
    h_t = trans + sd_t * rng.standard_normal(400)
    h_r2 = rot2 + sd_r2 * rng.standard_normal(400)
    th = start[:, 2] + h_r1
    assert np.array_equal(pf.particles[:, 0], start[:, 0] + h_t * np.cos(th))
    assert np.array_equal(pf.particles[:, 1], start[:, 1] + h_t * np.sin(th))
    assert np.allclose(pf.particles[:, 2], np.angle(np.exp(1j * (th + h_r2))), atol=1e-12)
