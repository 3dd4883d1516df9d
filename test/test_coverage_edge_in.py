"""Clean-up passes along the field's edge that the pass region clipped away (``cleanup_edge_in_m``).

A leftover patch against the field's edge (the corner a rounded headland ring leaves, 6.5 m^2 at each corner of a
rectangle with a 3 m implement and a 4 m turning radius) gets its outermost pass half a width from the edge; the
region the clean-up keeps pass ends inside stops 5 cm further in, so that pass was clipped away and the patch had no
pass at all. The option adds the outermost offsets moved in by ``cleanup_edge_in_m``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from shapely.geometry import Polygon, box

from agricare.core.planning.cleanup import patch_passes
from agricare.core.planning.coverage import CoverageParams, plan_coverage, plan_work_figures


def test_corner_patch_gets_a_pass_along_the_edge():
    # the unworked corner of a ring of radius 4 + 1.5 m at the field's (0, 0) corner; passes end 1.55 m inside
    r = 5.5
    arc = [(r - r * np.cos(t), r - r * np.sin(t)) for t in np.linspace(0, np.pi / 2, 30)]
    patch = Polygon([(0, 0), *arc[::-1]]).buffer(0)
    region = box(1.55, 1.55, 48.45, 18.45)
    assert patch_passes(patch, region, 3.0, 1.0, boundary=box(0, 0, 50, 20).exterior) == []
    passes = patch_passes(patch, region, 3.0, 1.0, boundary=box(0, 0, 50, 20).exterior, edge_in_m=0.1)
    assert passes, "no pass over the corner patch"
    # along an edge (horizontal or vertical), 0.1 m in from half a width
    along = [float(a[1]) for a, b in passes if abs(a[1] - b[1]) < 1e-6] + \
        [float(a[0]) for a, b in passes if abs(a[0] - b[0]) < 1e-6]
    assert any(1.55 < v <= 1.61 for v in along), passes


def test_small_rectangle_works_its_corners():
    # measured (a 50 x 20 m paddy, 3 m width, 4 m turning radius, 9 m headland, 30 m reverse):
    # 97.43 -> 98.23 % of the field worked, every ring worked
    field = box(0, 0, 50, 20)
    base = CoverageParams(width_m=3.0, turn_radius_m=4.0, headland_width_m=9.0, max_reverse_m=30.0)
    old, new = (plan_work_figures(plan_coverage(field, dataclasses.replace(base, cleanup_edge_in_m=v)))
                for v in (0.0, 0.1))
    assert old["worked_ratio"] < 0.976
    assert new["worked_ratio"] > old["worked_ratio"] + 0.006
    assert new["reverse_m"] <= 30.0 and new["rings_worked"] == new["rings_total"]
