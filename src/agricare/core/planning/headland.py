"""Headland passes as drivable rings around the field and its holes, and the inner field.

A headland pass ``k`` follows the field boundary (and every hole) at offset ``d_k`` from it; the ring is
the boundary of the field eroded by ``d_k`` and then opened with a disc of the turning radius, so every
convex corner is an arc of radius >= the turning radius (a tractor can drive it without stopping). A hole's
ring is the hole grown by ``d_k`` and opened the same way (:func:`hole_offset`), on its own where it is clear
of the outer ring; given the machine's footprint, rings are moved in where the machine would leave the field
and concave corners are rounded too (:func:`headland_rings`, :func:`push_ring_in`).
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon


def polygons_of(geom) -> list[Polygon]:
    """The non-empty polygons of a Polygon / MultiPolygon / GeometryCollection."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return [g for g in geom.geoms if not g.is_empty]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]


def headland_offsets(headland_width_m: float, width_m: float, robot_width_m: float = 0.0) -> list[float]:
    """Centre-line offsets (m) of the headland passes filling ``headland_width_m`` with the implement.

    The last pass is pulled in so that the passes end exactly at the headland width (overlap rather than
    a missed strip). An empty list when the headland is 0.
    """
    if headland_width_m <= 1e-9:
        return []
    n = max(1, math.ceil(headland_width_m / width_m - 1e-9))
    first = max(0.5 * width_m, 0.5 * robot_width_m)
    offs = [min(first + k * width_m, headland_width_m - 0.5 * width_m) for k in range(n)]
    offs = [max(o, first) for o in offs]
    out = []
    for o in offs:
        if not out or o > out[-1] + 1e-6:
            out.append(o)
    return out


def inner_field(field: Polygon, headland_width_m: float):
    """Field eroded by the headland width (mitred corners keep the full cultivated area)."""
    if headland_width_m <= 0:
        return field
    return field.buffer(-headland_width_m, join_style="mitre")


def _resample_ring(coords: np.ndarray, step_m: float) -> np.ndarray:
    line = LineString(coords)
    n = max(4, int(math.ceil(line.length / step_m)))
    d = np.linspace(0.0, line.length, n + 1)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    return pts


def hole_offset(hole: Polygon, offset_m: float, turn_radius_m: float, tol_m: float = 0.02):
    """What a headland pass ``offset_m`` round a keep-out ``hole`` must stay out of, with a boundary a tractor can
    drive: ``hole`` grown by ``offset_m + s`` and opened with a disc of the turning radius (every bend of radius >=
    ``turn_radius_m``), ``s`` the least extra of (0, 0.05, ... m) for which the result still holds the hole grown
    by ``offset_m`` (within ``tol_m``). A hole grown by ``offset_m`` with mitred joins (how the field's own offset
    has it) is a polygon with a kink at every vertex: a surveyed pond or a pole outlined by 16 points gave a ring
    with a 21 deg kink every 3 m that the machine cut, its implement entering the hole. ``s`` is 0 when the offset
    is at least the turning radius; at most ``turn_radius_m - offset_m`` (then the hole grown by the turning radius).
    """
    need = hole.buffer(offset_m, quad_segs=32)
    if offset_m >= turn_radius_m:
        return need
    for s in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0):
        if offset_m + s >= turn_radius_m:
            break
        g = hole.buffer(offset_m + s, quad_segs=32).buffer(-turn_radius_m).buffer(turn_radius_m, quad_segs=32)
        if not g.is_empty and g.buffer(tol_m).contains(need):
            return g
    return hole.buffer(turn_radius_m, quad_segs=32)


def headland_rings(field: Polygon, offsets_m, turn_radius_m: float, step_m: float = 0.5, excess=None,
                   warnings: list | None = None, smooth_holes: bool | None = None,
                   fill_corners: bool = True) -> list[list[np.ndarray]]:
    """Closed rings, one list per pass (outermost first), each ring an ``(N, 2)`` array (first == last).

    Rings around the outer boundary run counter-clockwise, rings around holes clockwise, so driving
    them keeps the field interior on the left of the outer ring.

    A hole's ring is its own smooth ring (:func:`hole_offset`) when that lies inside the pass's outer ring and
    clear of the other holes' rings: then the opening of the outer ring, which drops corridors narrower than two
    turning radii, does not swallow it (a pond 21 m from the edge lost its second ring that way, a 6 m wide annulus
    left unworked). Holes whose rings would cross the outer ring or each other are cut out of the pass's area as
    before (rings merged where they meet). ``smooth_holes`` (default: when ``excess`` is given, i.e. planning for a
    machine with a known footprint) takes the smooth outline of :func:`hole_offset` for the holes; otherwise the
    mitred offset as before (a kink at every vertex, but right against a square obstacle: a plan judged on the area
    its implement sweeps, not on what a machine can track, works more that way).

    ``excess`` (``poses (M, 3) -> (M,)`` metres the machine lies outside the field at each pose, e.g. its footprint)
    makes the rings safe for the whole machine (:func:`push_ring_in`) and lets the outer ring's concave corners be
    rounded too: a notch in the field left a kink of its angle in the ring (45 deg in 0.5 m), which the machine
    overran by 2 m, its front leaving the field. The outer ring is then closed with the largest disc of (R, R/2, R/4)
    whose ring, moved in where the machine would leave the field, bends nowhere tighter than 0.9 R
    (:func:`min_bend_radius`); a pushed ring that does bend tighter (the push moves a convex arc towards its centre)
    is first opened again with R and re-pushed (:func:`_reround`), kept when that bends less tightly. Where none
    reaches 0.9 R, the least tight of them (if it bends at least R/2), else the first that moves the ring at most
    0.6 m into the notch (moved in where needed); when that cannot be done for a pass, its kinked ring is kept (moved
    in where needed). A ring that cannot be made safe is kept as it is and ``warnings`` (a list) gets a line.

    ``fill_corners``: each outer ring after the first is bent into the corners where the opening cut it off from the
    ring outside it (:func:`corner_fill`); otherwise every pass's ring is its own offset opened (a crescent unworked
    between successive rings at every corner sharper than a right angle).
    """
    holes = [Polygon(h) for h in field.interiors]
    outer_field = Polygon(field.exterior)
    passes = []
    prev = None                                    # (offset, region) of the pass outside this one
    offsets_m = [float(v) for v in offsets_m]
    smooth = turn_radius_m > 0 and (smooth_holes if smooth_holes is not None else excess is not None)

    def less_merged(base, grown, own):
        """``base`` less the holes' offsets that have no ring of their own (``grown`` but not ``own``), opened with
        the turning radius."""
        merged = [g for i, g in enumerate(grown) if i not in own]
        if not merged:
            return base
        g = base.difference(shapely.union_all(merged))
        return g.buffer(-turn_radius_m).buffer(turn_radius_m, quad_segs=32) if turn_radius_m > 0 else g

    def pass_region(d, prev_region=None, spacing=0.0, next_cover=None):
        """(outer ring's region, the holes' offsets, own-ring hole indices, the pass's region: the outer region less
        the merged holes, opened; with ``prev_region`` grown into the corners, corner_fill)."""
        outer = outer_field.buffer(-d, join_style="mitre")
        outer_open = outer.buffer(-turn_radius_m).buffer(turn_radius_m, quad_segs=32) if turn_radius_m > 0 else outer
        grown = [hole_offset(h, d, turn_radius_m) if smooth else h.buffer(d, join_style="mitre") for h in holes]
        own = []
        if turn_radius_m > 0:
            for i, g in enumerate(grown):
                clear = g.buffer(0.5)
                if outer_open.contains(clear) and not any(clear.intersects(o) for j, o in enumerate(grown) if j != i):
                    own.append(i)
        region = less_merged(outer_open, grown, own)
        if fill_corners and turn_radius_m > 0 and prev_region is not None and not region.is_empty:
            region = corner_fill(prev_region, region, spacing, turn_radius_m, next_cover=next_cover,
                                 keep_out=shapely.union_all([grown[i] for i in own]) if own else None)
        return outer_open, grown, own, region

    for k, d in enumerate(offsets_m):
        spacing = d - prev[0] if prev is not None else 0.0
        if k + 1 < len(offsets_m):
            d1 = offsets_m[k + 1]

            def next_cover(reg, d1=d1, d=d):
                # the next pass (its own corner discs in this one) and its strip
                return pass_region(d1, reg, d1 - d)[3].buffer(0.5 * (d1 - d))
        else:
            def next_cover(reg, d=d, spacing=spacing):
                # the swaths: the inner field, where this last pass's strip ends
                return field.buffer(-(d + 0.5 * spacing), join_style="mitre")
        outer_open, grown, own, region = pass_region(d, prev[1] if prev is not None else None, spacing, next_cover)
        prev = (d, region)

        def pass_rings(base):
            rings = []
            for poly in polygons_of(base):
                poly = shapely.geometry.polygon.orient(poly, 1.0)
                for ring in [poly.exterior, *poly.interiors]:
                    if ring.length < 1e-6:
                        continue
                    rings.append(_resample_ring(np.asarray(ring.coords), step_m))
            return rings

        rings = None
        if excess is not None and turn_radius_m > 0 and \
                outer_open.convex_hull.area - outer_open.area > 1e-6 * max(outer_open.area, 1.0):
            # the closing moves the ring into a notch by rc (1 / cos(turn / 2) - 1): 0.37 m at a 45 deg notch with
            # the turning radius, 4.5 m at a 120 deg one (a band of the pass left unworked). A ring the machine can
            # drive (no bend sharper than 0.9 R after the push, which moves pieces of it in and can leave kinks) comes
            # first, the largest radius that gives one (an R/4 bend took the machine 1.26 m out of a field); else the
            # first radius that moves the ring at most 0.6 m, or the kinked ring
            fallback, chosen = None, False
            best, best_bend = None, 0.0
            for rc in (turn_radius_m, 0.5 * turn_radius_m, 0.25 * turn_radius_m):
                closed = outer_open.buffer(rc, quad_segs=32).buffer(-rc, quad_segs=32)
                near = closed.hausdorff_distance(outer_open) <= 0.6
                # the closed outer region less the merged holes, without the corner fill
                pushed = [push_ring_in(r, excess, max_shift_m=3.0) for r in pass_rings(less_merged(closed, grown, own))]
                ok = bool(pushed) and all(r is not None for r in pushed)
                bend = min(min_bend_radius(r) for r in pushed) if ok else 0.0
                if ok and bend < 0.9 * turn_radius_m:
                    # the push moved the ring in where the machine would leave the field, and at a convex bend that
                    # tightens it (radius less the shift): seed 5 of farm_missions kept a 3.49 m bend, tighter than
                    # the machine steers (3.8 m), and left the field by 0.09 m there. Rounded again to the turning
                    # radius (an opening only moves the ring further in; the sliver is left to the clean-up)
                    again = _reround(pushed, turn_radius_m, excess, pass_rings)
                    if again is not None:
                        bend_again = min(min_bend_radius(r) for r in again)
                        if bend_again > bend:
                            pushed, bend = again, bend_again
                if ok and bend >= 0.9 * turn_radius_m:
                    rings = pushed
                    break
                if ok and bend > best_bend:
                    best, best_bend = pushed, bend
                if near and not chosen:
                    fallback, chosen = (pushed if ok else None), True
            if rings is None and best is not None and best_bend >= 0.5 * turn_radius_m:
                # none drivable: the one that bends least tightly (seed 10 of farm_missions: the first ring within
                # 0.6 m was the R/4 one, and the machine left the field by 1.26 m after its bend)
                rings = best
            if rings is None:
                rings = fallback
        if rings is None:
            rings = pass_rings(region)
            if excess is not None:
                safe = [push_ring_in(r, excess) for r in rings]
                if warnings is not None and any(r is None for r in safe):
                    warnings.append("a headland ring leaves the field with the machine's footprint and could not be "
                                    "moved in")
                rings = [r if q is None else q for r, q in zip(rings, safe)]
        for i in own:
            ring = shapely.geometry.polygon.orient(grown[i], 1.0).exterior      # counter-clockwise round the hole
            ring = _resample_ring(np.asarray(ring.coords)[::-1], step_m)       # clockwise, as a hole's ring
            if excess is not None:
                q = push_ring_in(ring, excess)
                if q is None and warnings is not None:
                    warnings.append("a headland ring leaves the field with the machine's footprint and could not be "
                                    "moved in")
                ring = ring if q is None else q
            rings.append(ring)
        passes.append(rings)
    return passes


def _reround(rings, turn_radius_m: float, excess, pass_rings, max_shift_m: float = 1.0):
    """The region bounded by ``rings`` (counter-clockwise outer rings, clockwise rings round holes, as
    :func:`headland_rings` writes them) opened with ``turn_radius_m`` (every convex bend at least that radius; the
    region only shrinks), its rings moved in where the machine would still leave the field (:func:`push_ring_in`,
    ``excess``); None when that fails or the opening changes how many rings there are."""
    outer = [Polygon(r) for r in rings if shapely.is_ccw(shapely.linearrings(r))]
    inner = [Polygon(r) for r in rings if not shapely.is_ccw(shapely.linearrings(r))]
    region = shapely.union_all(outer)
    if inner:
        region = region.difference(shapely.union_all(inner))
    opened = region.buffer(-turn_radius_m).buffer(turn_radius_m, quad_segs=32)
    if opened.is_empty:
        return None
    out = [push_ring_in(r, excess, max_shift_m=max_shift_m) for r in pass_rings(opened)]
    if len(out) != len(rings) or any(r is None for r in out):
        return None
    return out


def min_bend_radius(ring: np.ndarray, window_m: float = 1.5) -> float:
    """The smallest radius a closed ring ``(N, 2)`` bends with: its net heading change over every ``window_m`` of arc
    (a kink of angle a shows as about window / a, a bend of radius r as r)."""
    xy = np.asarray(ring, dtype=float)
    if len(xy) > 1 and np.allclose(xy[0], xy[-1]):
        xy = xy[:-1]
    d = np.diff(np.vstack([xy, xy[:1]]), axis=0)
    seg = np.hypot(d[:, 0], d[:, 1])
    d, seg = d[seg > 1e-9], seg[seg > 1e-9]
    n = len(seg)
    if n < 3:
        return math.inf
    h = np.arctan2(d[:, 1], d[:, 0])
    dth = (np.roll(h, -1) - h + math.pi) % (2 * math.pi) - math.pi      # turn at the end of segment i
    s_end = np.cumsum(np.concatenate([seg, seg]))                      # two laps: windows wrap round the start
    turn = np.concatenate([[0.0], np.cumsum(np.concatenate([dth, dth]))])
    start = np.concatenate([[0.0], s_end[:n - 1]])                     # arc length where segment i starts
    j = np.searchsorted(s_end, start + window_m)                       # the segment where each window ends
    j = np.minimum(j, 2 * n - 1)
    net = np.abs(turn[j] - turn[np.arange(n)])
    # the turns at the ends of segments i .. j-1 happen between the middles of segments i and j: the arc between
    # those middles (from the start of i to the end of j it read a 3.5 m bend sampled at 0.5 m as 5.2 m, and the
    # 0.9 R check let a 3.5 m concave bend through, tighter than the machine steers: seed 5 of farm_missions)
    seg2 = np.concatenate([seg, seg])
    arc = np.maximum((s_end[j] - 0.5 * seg2[j]) - (start + 0.5 * seg), 1e-9)
    with np.errstate(divide="ignore"):
        return float(np.min(np.where(net > 1e-9, arc / np.maximum(net, 1e-12), math.inf)))


def corner_discs(prev_region, region, spacing_m: float, turn_radius_m: float, min_area_m2: float = 3.0,
                 min_clear_m: float = -0.15, max_area_m2: float = 60.0) -> list:
    """Where the opening cut ``region`` (the area inside a pass's ring: its offset opened with a disc of the turning
    radius) off from ``prev_region`` (the same of the pass ``spacing_m`` outside it): ``(centre, crescent m^2)`` of
    the disc of the turning radius the pass may take there (:func:`corner_fill`).

    At a corner of half-angle ``a`` both rings turn on arcs of the turning radius ``R``, each tangent to its own
    offset of the edges, so the inner arc lies ``spacing / sin(a)`` further from the corner than the outer one: a
    crescent ``spacing (1 / sin a - 1)`` deep stays unworked between the two passes (1.2 m at a right angle, 8.6 m at
    30 deg with a 3 m implement), a patch the straight clean-up passes mostly cannot reach. The disc lies inside
    ``prev_region``, reaches the crescent's deepest point and keeps most clear of the outer ring: at a plain corner
    the outer ring's disc moved ``spacing`` along the bisector (the rings meet at the apex and overlap a little
    towards the arc's ends).

    Only crescents of ``min_area_m2`` to ``max_area_m2`` (centre-line area): at a blunt corner the crescent is a sliver
    (1-2 m^2) and the disc's S-bends leave about as much unworked beside them (the traced bruchwiese field lost 0.04 %
    with 0.5 m^2); a cut larger than a corner's crescent is a merged hole's.
    """
    R = _disc_radius(turn_radius_m)
    want = prev_region.buffer(-spacing_m, quad_segs=16)
    cut = want.difference(region.buffer(0.05))
    border = prev_region.boundary
    inside = prev_region.buffer(-R + 0.1)          # where a disc's centre may be (0.1 m slack: a ring's own arc)
    shapely.prepare(inside)
    out = []
    for c in polygons_of(cut):
        if not min_area_m2 <= c.area <= max_area_m2:
            continue
        pts = np.asarray(c.exterior.coords)
        far = shapely.distance(region, shapely.points(pts))
        t = pts[int(np.argmax(far))]
        if float(far.max()) < 0.3:
            continue
        ang = np.linspace(0.0, 2 * math.pi, 96, endpoint=False)
        rr = np.linspace(R, 0.0, 11)[:, None]
        cand = np.column_stack([(t[0] + rr * np.cos(ang)).ravel(), (t[1] + rr * np.sin(ang)).ravel()])
        cand = cand[shapely.contains_xy(inside, cand[:, 0], cand[:, 1])]
        if not inside.is_empty:
            near = np.asarray(shapely.shortest_line(inside, shapely.Point(t)).coords)[0]
            if math.hypot(*(near - t)) <= R:        # the outer pass's own arc: the grid misses its tiny centre set
                cand = np.vstack([cand, near])
        if not len(cand):
            continue
        dd = shapely.distance(border, shapely.points(cand))
        j = int(np.argmax(dd))
        if dd[j] >= R + min_clear_m:
            out.append((cand[j], float(c.area)))
    return out


def _disc_radius(turn_radius_m: float) -> float:
    # a little over the turning radius: the opening of a pass around holes (pass_rings) keeps a disc of exactly R
    # only by luck (its polygon is inscribed in the circle)
    return float(turn_radius_m) + 0.15


def with_discs(region, centres, turn_radius_m: float):
    """``region`` grown by discs of (a little over) the turning radius at ``centres``, joined to it by concave bends
    of that radius (a closing near the discs): no kink, every bend of the boundary has radius >= the turning radius.
    A disc the closing does not join to the region is left out (and the closing done again without it): driven as a
    ring of its own it would leave its middle unworked (a circle of the turning radius works an annulus), and the
    closing towards it would leave a cusp on the region's ring."""
    R = _disc_radius(turn_radius_m)
    discs = [shapely.Point(c).buffer(R, quad_segs=32) for c in centres]
    while discs:
        # done on the part of the region near the discs (buffers of the whole field's ring are slow): the part is cut
        # 4 R farther out than what is kept of it, so its cut edge does not reach in
        near = shapely.union_all([g.buffer(6.0 * R, quad_segs=8) for g in discs])
        keep = near.buffer(R, quad_segs=8)
        part = shapely.intersection(region, keep.buffer(3 * R, quad_segs=8))
        closed = shapely.union_all([part, *discs]).buffer(R, quad_segs=32).buffer(-R, quad_segs=32)
        local = shapely.union_all([part, shapely.intersection(closed, near), *discs])
        joined = [g for g in polygons_of(local) if g.intersection(part).area > 1.0]
        loose = [d for d in discs if not any(g.intersection(d).area > 0.5 * d.area for g in joined)]
        if loose:
            discs = [d for d in discs if all(d is not q for q in loose)]
            continue
        out = shapely.union_all([region.difference(keep), shapely.intersection(shapely.union_all(joined), keep)])
        polys = [g for g in polygons_of(out) if g.area > 1e-3 and g.intersection(region).area > 1.0]
        if polys:
            return shapely.union_all(polys) if len(polys) > 1 else polys[0]
        break
    return region


def corner_fill(prev_region, region, spacing_m: float, turn_radius_m: float, next_cover=None, keep_out=None):
    """``region`` grown into the corners where the opening cut it off from ``prev_region`` (:func:`corner_discs`,
    :func:`with_discs`).

    ``next_cover`` (``region -> geometry``): what the passes inside this one work, given this pass's region. A disc
    whose middle they do not reach is taken only where it fills more than it leaves: the ring works an annulus
    round the disc's centre, and where the next ring cannot follow into the disc (an acute corner: the next ring's
    own disc does not fit in the bulb) a hole of radius ``R - spacing / 2`` stays in its middle.

    The grown region stays inside ``prev_region`` (the ring inside the ring outside it, so inside the field as that
    one is: the closing's bends could otherwise round a notch of the field next to the corner, and the ring cross the
    boundary there) and out of ``keep_out`` (holes with rings of their own, grown by the pass's offset); a disc that
    would take it out is left out.
    """
    found = corner_discs(prev_region, region, spacing_m, turn_radius_m)
    if not found:
        return region
    allowed = prev_region.buffer(0.12, quad_segs=8)

    def safe(g):
        if not allowed.contains(g):
            return False
        return keep_out is None or keep_out.is_empty or g.difference(region).intersection(keep_out).area < 1e-3

    def grow(centres):
        out = with_discs(region, centres, turn_radius_m)
        if safe(out):
            return out
        ok = [c for c in centres if safe(with_discs(region, [c], turn_radius_m))]
        if len(ok) == len(centres) or not ok:
            return region
        out = with_discs(region, ok, turn_radius_m)
        return out if safe(out) else region

    out = grow([c for c, _ in found])
    if next_cover is None or out is region:
        return out
    cover = next_cover(out)
    r_in = _disc_radius(turn_radius_m) - 0.5 * spacing_m
    keep = []
    for c, gain in found:
        hole = shapely.Point(c).buffer(r_in, quad_segs=16).difference(cover).area
        if gain > hole:
            keep.append(c)
    if len(keep) == len(found):
        return out
    return grow(keep) if keep else region


def push_ring_in(ring: np.ndarray, excess, plateau_m: float = 4.0, ramp_m: float = 10.0, max_iter: int = 8,
                 max_shift_m: float = 1.5):
    """The closed ring ``(N, 2)`` (first == last) bent towards its left (the field side of an outer ring run
    counter-clockwise and of a hole's ring run clockwise) where the machine driving it would leave the field.

    ``excess(poses (M, 3)) -> (M,)``: how far (m) the machine at each pose lies outside where it may be (0 inside).
    A rounded ring's corner arcs keep base_link at the pass's offset, but the trailing implement's outer rear corner
    swings out by ``sqrt(x_r^2 + (r + w/2)^2) - (r + w/2)`` on an arc of radius ``r`` (0.26 m for the bench's
    tractor on a 4.5 m arc), whichever way the ring is driven. The ring is moved sideways there by what the worse
    of the two driving directions needs (a little more), over a plateau of ``plateau_m`` either side of the pose
    with raised-cosine ramps of ``ramp_m`` (a bend of about ``shift * pi^2 / (2 ramp^2)`` 1/m: 0.015 for 0.3 m over
    10 m), and checked again, at most ``max_iter`` times. Returns the new ring, or None when it still leaves the
    field after that, or would move more than ``max_shift_m`` (a neck narrower than the machine).
    """
    xy = np.asarray(ring, float)[:-1, :2]
    n = len(xy)
    if n < 4:
        return None
    seg = np.hypot(*np.diff(np.vstack([xy, xy[:1]]), axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    length = float(seg.sum())
    t = np.roll(xy, -1, axis=0) - np.roll(xy, 1, axis=0)
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-12)[:, None]
    left = np.column_stack([-t[:, 1], t[:, 0]])
    shift = np.zeros(n)

    def poses(q):
        d = np.roll(q, -1, axis=0) - q
        yaw = np.arctan2(d[:, 1], d[:, 0])
        back = np.arctan2(-(q - np.roll(q, 1, axis=0))[:, 1], -(q - np.roll(q, 1, axis=0))[:, 0])
        return np.column_stack([q, yaw]), np.column_stack([q, back])

    for _ in range(max_iter + 1):
        q = xy + shift[:, None] * left
        fwd, rev = poses(q)
        e = np.maximum(excess(fwd), excess(rev))
        if not np.any(e > 0):
            return np.vstack([q, q[:1]])
        if _ == max_iter:
            return None
        inc = np.zeros(n)
        for i in np.flatnonzero(e > 0):
            d = np.abs(s - s[i])
            d = np.minimum(d, length - d)
            w = np.where(d <= plateau_m, 1.0,
                         np.where(d < plateau_m + ramp_m, 0.5 * (1 + np.cos(math.pi * (d - plateau_m) / ramp_m)), 0.0))
            inc = np.maximum(inc, (1.2 * e[i] + 0.01) * w)
        shift += inc
        if shift.max() > max_shift_m:
            return None
    return None
