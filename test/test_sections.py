"""Section control core: overlap and field-edge switching, raster recording, parameter validation."""

import math

import numpy as np
import pytest
from shapely.geometry import box

from agricare.core.control.sections import (CoverageRaster, SectionController, SectionParams, section_bar,
                                            section_states)

FIELD = box(0, 0, 60, 30)


def test_bar_geometry_left_to_right():
    bars = section_bar([10, 5, 0.0], SectionParams(section_widths_m=(1, 2, 1), implement_offset_m=-2))
    assert bars.shape == (3, 2, 2)
    assert np.allclose(bars[0, 0], [8, 7]) and np.allclose(bars[-1, 1], [8, 3])
    assert np.allclose(np.hypot(*(bars[:, 1] - bars[:, 0]).T), [1, 2, 1])


def test_sections_off_over_covered_ground_on_return_pass():
    sc = SectionController(SectionParams(section_widths_m=(1, 1, 1)), FIELD)
    for x in np.arange(2, 50, 0.5):
        st = sc.update([x, 10, 0.0])
    assert st.tolist() == [1, 1, 1]
    assert sc.raster.covered_area_m2 == pytest.approx(3 * 47.5, rel=0.05)
    # return pass heading west 2 m to the north: the left section (south side) overlaps the first pass
    for x in np.arange(48, 10, -0.5):
        st = sc.update([x, 12, math.pi])
    assert st.tolist() == [0, 1, 1]


def test_sections_off_outside_field():
    p = SectionParams(section_widths_m=(1, 1, 1), implement_offset_m=0.0)
    # driving east along the south edge: the right section is outside
    assert section_states([20, 0.9, 0.0], p, FIELD, None).tolist() == [1, 1, 0]
    assert section_states([80, 10, 0.0], p, FIELD, None).tolist() == [0, 0, 0]


def test_shapely_coverage_record():
    p = SectionParams(section_widths_m=(1, 1), implement_offset_m=0.0)
    covered = box(0, 10, 60, 11)
    assert section_states([20, 10, 0.0], p, FIELD, covered).tolist() == [0, 1]


def test_raster_marks_rotated_quad():
    r = CoverageRaster((0, 0, 10, 10), 0.1)
    r.mark_quad(np.array([[5, 2], [8, 5], [5, 8], [2, 5]]))
    assert r.covered_area_m2 == pytest.approx(18.0, rel=0.05)


@pytest.mark.parametrize("kw,name", [({"section_widths_m": ()}, "section_widths_m"),
                                     ({"section_widths_m": (1, -1)}, "section_widths_m"),
                                     ({"overlap_threshold": 1.5}, "overlap_threshold"),
                                     ({"look_ahead_m": 0}, "look_ahead_m")])
def test_bad_params(kw, name):
    with pytest.raises(ValueError, match=name):
        SectionParams(**kw)


def test_nan_pose_rejected():
    sc = SectionController(SectionParams(), FIELD)
    with pytest.raises(ValueError):
        sc.update([float("nan"), 0, 0])
