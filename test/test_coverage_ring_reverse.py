"""Headland rings reached without a long reverse: the shortest reverse exit, then forwards, before any Reeds-Shepp word.

Field from bench/field_plans.py (irregular seeded fields, 3 m width, 4 m turn radius, 9 m headland, 30 m of reverse).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

from agricare.core.planning.coverage import CoverageParams, plan_coverage, plan_work_figures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import field_plans  # noqa: E402


def _reverse_legs(plan) -> list:
    """Lengths (m) of the runs of the plan's path driven in reverse."""
    p = plan.path
    seg = np.hypot(*np.diff(p.xy, axis=0).T)
    rv = (p.direction[1:] < 0) | (p.direction[:-1] < 0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rv.astype(np.int8), [0]])))
    return [float(seg[a:b].sum()) for a, b in zip(edges[::2], edges[1::2])]


@pytest.fixture(scope="module")
def seed_312():
    field = field_plans.seeded_field(312)
    base = dict(field_plans.BASE, max_reverse_m=30.0)
    return tuple(plan_coverage(field, CoverageParams(**base, ring_reverse_exit=on)) for on in (False, True))


def test_ring_after_a_swath_into_a_pond_gap_is_reached_within_the_budget(seed_312):
    # tuning field 312: the last swath ends headed into the gap between a pond and the edge; no forward connection
    # nor 4-8 m straight back reached the next ring, and the last resort reversed 60.5 m (61.0 m for the field).
    # Measured: before 61.0 m (one 60.5 m leg), 99.14 % worked; with the reverse exit 26.6 m, longest leg 7.2 m,
    # 99.37 %
    old, new = seed_312
    f_old, f_new = plan_work_figures(old), plan_work_figures(new)
    assert max(_reverse_legs(old)) > 50.0 and f_old["reverse_m"] > 30.0
    assert max(_reverse_legs(new)) < 10.0
    assert f_new["reverse_m"] <= 30.0
    assert f_new["rings_worked"] == f_new["rings_total"] == f_old["rings_total"]
    assert f_new["worked_ratio"] > f_old["worked_ratio"] + 0.0015
    assert f_new["worked_ratio"] >= 0.99


def test_ring_reverse_exit_leaves_forward_connections_alone():
    # tuning field 0 reaches every ring forwards: the option changes nothing there (the same path)
    field = field_plans.seeded_field(0)
    base = dict(field_plans.BASE, max_reverse_m=30.0)
    a, b = (plan_coverage(field, CoverageParams(**base, ring_reverse_exit=on)) for on in (False, True))
    assert len(a.path) == len(b.path)
    assert np.allclose(a.path.xy, b.path.xy)
