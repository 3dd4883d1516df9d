"""Geofence: one keep-in polygon (field boundary, service area) and any number of keep-out polygons
(roads, ponds, play areas), all in the ``map`` frame (m).

The supervisor asks whether a region the robot may occupy before it can stop (its protective field
transformed into ``map``) stays inside the keep-in polygon and clear of every keep-out polygon.
Keep-out polygons come from parameters (static) and from a topic (dynamic, replaceable as a set).

Run ``python -m agricare.core.safety.geofence`` for a small demo.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from agricare.core.geometry import se2_transform_points
from agricare.core.safety.fields import validate_polygon

KEEP_IN = "geofence_keep_in"
KEEP_OUT = "geofence_keep_out"


def split_flat_polygons(name: str, flat_xy: Sequence[float],
                        vertex_counts: Sequence[int]) -> list[np.ndarray]:
    """Split a flat coordinate list ``[x0, y0, x1, y1, ...]`` into polygons of ``vertex_counts`` vertices.

    ROS parameters cannot hold nested lists, so several polygons travel as one flat list plus counts.
    Raises ``ValueError`` naming ``name`` when the counts do not match or any polygon is invalid.
    """
    flat = np.asarray(flat_xy, dtype=float).ravel()
    counts = [int(c) for c in vertex_counts]
    if any(c < 3 for c in counts):
        raise ValueError(f"{name}_vertex_counts: every polygon needs >= 3 vertices, got {counts}")
    if 2 * sum(counts) != flat.size:
        raise ValueError(f"{name}: {flat.size} coordinates do not match vertex counts {counts} "
                         f"(need {2 * sum(counts)})")
    out, i = [], 0
    for k, c in enumerate(counts):
        out.append(validate_polygon(f"{name}[{k}]", flat[i:i + 2 * c]))
        i += 2 * c
    return out


class Geofence:
    """Keep-in / keep-out polygon set.

    Parameters
    ----------
    keep_in_xy : array_like, shape (N, 2), or None
        Region the robot must stay inside; ``None`` means unbounded.
    keep_out_xy : sequence of array_like, each shape (K, 2)
        Static keep-out regions.
    """

    def __init__(self, keep_in_xy=None, keep_out_xy: Sequence = ()):
        self.keep_in_xy = None if keep_in_xy is None else validate_polygon("keep_in", keep_in_xy)
        self._keep_in = None
        if self.keep_in_xy is not None:
            self._keep_in = shapely.Polygon(self.keep_in_xy)
            shapely.prepare(self._keep_in)
        self._static = [self._prep(validate_polygon(f"keep_out[{i}]", p)) for i, p in enumerate(keep_out_xy)]
        self._dynamic: list = []

    @staticmethod
    def _prep(ring):
        poly = shapely.Polygon(ring)
        shapely.prepare(poly)
        return poly

    @property
    def active(self) -> bool:
        """True when any polygon is configured (the supervisor then needs a pose)."""
        return self._keep_in is not None or bool(self._static) or bool(self._dynamic)

    def set_dynamic_keep_out(self, polygons_xy: Sequence) -> None:
        """Replace the dynamic keep-out set (e.g. from the ``safety/keep_out`` topic); validates each."""
        self._dynamic = [self._prep(validate_polygon(f"dynamic_keep_out[{i}]", p))
                         for i, p in enumerate(polygons_xy)]

    def keep_out_polygons(self) -> list[np.ndarray]:
        """All keep-out rings (static then dynamic), each (K, 2)."""
        return [shapely.get_coordinates(p.exterior)[:-1] for p in self._static + self._dynamic]

    def violation(self, region_in_map_xy) -> str | None:
        """Reason string when the region (P, 2) leaves the keep-in polygon or touches a keep-out one."""
        region = shapely.Polygon(np.asarray(region_in_map_xy, dtype=float).reshape(-1, 2))
        if self._keep_in is not None and not self._keep_in.contains(region):
            return KEEP_IN
        for poly in self._static + self._dynamic:
            if poly.intersects(region):
                return KEEP_OUT
        return None

    def check_field(self, pose_in_map, field_in_base_xy) -> str | None:
        """``violation`` of a field polygon (P, 2) given in ``base_link`` at ``pose_in_map`` [x, y, yaw]."""
        return self.violation(se2_transform_points(pose_in_map, field_in_base_xy))


if __name__ == "__main__":
    fence = Geofence([[0, 0], [50, 0], [50, 30], [0, 30]], [[[20, 10], [25, 10], [25, 15], [20, 15]]])
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    for pose in ([10, 10, 0], [49.5, 10, 0], [19.5, 12, 0]):
        print(pose, fence.check_field(pose, square))
