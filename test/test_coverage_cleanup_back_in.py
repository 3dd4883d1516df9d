"""Clean-up passes backed into a corner's tip (``cleanup_corner_back_in``, cleanup.back_in_passes).

The other clean-up passes are placed by the strip they sweep at base_link, which keeps half a body width off the edge
(3.1 m for the seeded fields' 6 m bar): at a corner the patch a Y turn leaves lies beyond the tip of that region and
got no candidate at all. Backed in, the trailing bar (1.6 m behind base_link) leads and only the whole machine limits
how deep it goes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from agricare.core.planning.cleanup import BackInPass, back_in_passes, patch_pass_options
from agricare.core.planning.corners import Footprint

#: the seeded fields' machine (bench/farm_missions.py FOOTPRINT): body 4.2 x 2.2 m, a 6 m bar 1.6 m behind base_link
FOOTPRINT = (-0.9, 3.3, -1.1, 1.1, -2.0, -1.2, -3.0, 3.0)


def _corner(deg: float):
    """A field with a convex corner of ``deg`` at the origin (edge A along +x) and the patch within 5.5 m of it."""
    a = math.radians(deg)
    field = Polygon([(0, 0), (60, 0), (60, 50), (40 * math.cos(a), 40 * math.sin(a))])
    return field, field.intersection(Point(0, 0).buffer(5.5))


@pytest.mark.parametrize("deg, best_min, union_min", [(67.0, 8.0, 10.0), (90.0, 14.5, 18.0)])
def test_a_corner_tip_gets_back_in_passes_where_the_other_passes_have_none(deg, best_min, union_min):
    # measured: 67 deg, patch 17.7 m^2: best pass 8.45 m^2, the 8 kept together 10.7; 90 deg, 23.7 m^2: 15.28 / 19.0;
    # the passes placed at base_link (patch_pass_options, its region 3.1 m in): none at either
    field, patch = _corner(deg)
    edges = LineString(field.exterior.coords)
    fp = Footprint(FOOTPRINT, field, margin_m=0.05)
    assert patch_pass_options(patch, field.buffer(-3.15), 6.0, 1.8, boundary=edges, tip_axis=True, tight=True) == []
    cands = back_in_passes(patch, fp, 6.0, 1.6, 1.8, edges, stop_margin_m=0.5)
    assert cands and all(isinstance(c, BackInPass) for c in cands)
    gains = [shapely.intersection(c.strip(6.0), patch).area for c in cands]
    assert max(gains) >= best_min
    assert shapely.union_all([c.strip(6.0) for c in cands]).intersection(patch).area >= union_min
    for c in cands:
        # the whole machine fits along the pass, and 0.5 m deeper than the cusp (the tracker's overshoot at the stop)
        line = np.array([c.cusp + t * c.u for t in np.arange(-0.5, float(np.hypot(*(c.end - c.cusp))) + 1e-9, 0.25)])
        assert fp.fits(np.column_stack([line, np.full(len(line), c.yaw_out)]))
        # headed out of the corner: the end is farther from the vertex than the cusp, the bar leads in
        assert np.hypot(*c.end) > np.hypot(*c.cusp)


def test_back_in_pass_strip_is_the_bar_behind_base_link():
    c = BackInPass((10.0, 0.0), (14.0, 0.0), (20.0, 0.0), 0.0, 1.6)
    s = c.strip(6.0)
    x0, y0, x1, y1 = s.bounds
    assert (x0, x1) == pytest.approx((8.4, 12.4)) and (y0, y1) == pytest.approx((-3.0, 3.0))
    assert c.key() != BackInPass((10.0, 0.0), (14.0, 0.0), (20.0, 0.0), math.pi, 1.6).key()
