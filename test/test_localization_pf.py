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
