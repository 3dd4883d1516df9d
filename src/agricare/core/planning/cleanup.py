"""Clean-up passes: straight working passes over what the swaths and headland rings leave unworked.

Irregular fields leave patches between the headland rings of obstacles and of the outer boundary (where a
ring opened to the turning radius splits), in narrow necks and at sharp corners. For every leftover patch
larger than ``min_patch_m2`` the passes run along the long side of its minimum rotated rectangle, ``width``
apart, each clipped to the region the machine's centre may use and to the patch (+ half a width), kept
only when it works at least ``min_gain_m2`` of the patch. The order is greedy nearest-first from the current
pose; each pass may be driven either way and is reached by forward in-field transit
(:func:`agricare.core.planning.transit.forward_transit`). With ``tip_axis`` the options also hold passes along the
patch's axis through its apex (a corner tip's bisector: the pass that gets nearest the tip); with ``tight`` a pass
runs only as far as its strip meets the patch (:func:`_tight_clip`). A pass into a dead end may be left by a
multi-point turn inside it (:func:`turnabout_exit`) instead of backing out until a forward half-turn fits. Where an
obstacle lies closer to the edge than the implement is wide, curved passes (:class:`ArcPass`) follow a circle half a
width off it into the wedges either side of the gap (:func:`wedge_circles`, :func:`arc_passes`). A patch at the field's
edge (a corner's tip) also gets passes worked backed in (:func:`back_in_passes`): reversed in with a trailing implement
leading, worked forwards out, as deep as the whole machine fits rather than as far as base_link's region reaches.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString

from agricare.core.planning.headland import polygons_of


def worked_area(xy: np.ndarray, working: np.ndarray, width_m: float):
    """Union of the implement strips (flat ends, round joins) along the working runs of a path (a segment works when
    the sample it ends at does: :func:`agricare.core.planning.coverage.plan_work_figures`)."""
    work = working[1:]            # segment i -> i + 1 worked when sample i + 1 is (as the mission lowers the implement)
    runs = np.flatnonzero(np.diff(np.concatenate([[0], work.astype(np.int8), [0]])))
    strips = []
    for a, b in zip(runs[::2], runs[1::2]):
        line = LineString(xy[a:b + 1])
        if line.length > 0:
            strips.append(line.simplify(0.02).buffer(0.5 * width_m, cap_style="flat", join_style="round",
                                                     quad_segs=3))
    # on a 1 mm grid: the plain overlay of strips 3 m apart, edge on edge, dropped a whole 128 m swath on a tuning
    # field (bench/field_plans.py seed 18, 380 m^2 left as a phantom patch that clean-up passes then crossed)
    return shapely.union_all(strips, grid_size=1e-3) if strips else shapely.geometry.Polygon()


def leftover_patches(field, worked, min_patch_m2: float, sliver_m: float = 0.15) -> list:
    """Unworked patches of the field (opened by ``sliver_m`` to drop slivers), largest first."""
    rest = shapely.difference(field, worked)
    rest = rest.buffer(-sliver_m).buffer(sliver_m)
    return sorted((g for g in polygons_of(rest) if g.area >= min_patch_m2), key=lambda g: -g.area)


def _passes_along(patch, region_geom, u, width_m, min_gain_m2, min_len_m, through=None, tight=False,
                  edge_in_m=0.0):
    """Passes over ``patch`` along the unit direction ``u``; (list of (p0, p1), total gain m^2). ``edge_in_m`` > 0:
    also the outermost offsets moved that far in (a patch along the field's edge puts its outermost pass half a
    width from the edge, where the region the pass ends keep inside stops 5 cm short: the pass was clipped away)."""
    nrm = np.array([-u[1], u[0]])
    pts = np.asarray(patch.exterior.coords)
    ctr = np.asarray(patch.centroid.coords[0])
    off = (pts - ctr) @ nrm
    along = (pts - ctr) @ u
    lo, hi = float(off.min()), float(off.max())
    span = hi - lo
    n = max(1, int(math.ceil(span / width_m - 1e-6)))
    offsets = [lo + span / 2] if n == 1 else list(np.linspace(lo + width_m / 2, hi - width_m / 2, n))
    # also the offsets pushed to either side (a patch at the boundary is reached from the inside only)
    offsets += [lo + width_m / 2, hi - width_m / 2] if n == 1 else []
    if edge_in_m > 0 and span > width_m:
        offsets += [lo + width_m / 2 + edge_in_m, hi - width_m / 2 - edge_in_m]
    if through is not None:                     # a tip's axis: the pass through its apex
        offsets.append(float((np.asarray(through) - ctr) @ nrm))
    reach = float(np.max(np.abs(along))) + width_m
    band = patch.buffer(0.5 * width_m)
    best = {}
    for o in offsets:
        a = ctr + o * nrm - reach * u
        b = ctr + o * nrm + reach * u
        inside = shapely.intersection(LineString([a, b]), region_geom)
        for seg in getattr(inside, "geoms", [inside]):
            if seg.geom_type != "LineString" or seg.is_empty:
                continue
            if tight:
                # only as far along as the strip this pass sweeps meets the patch (+ a raster cell): the pass
                # clipped to the patch grown by half a width ran up to 1.5 m past it at either end, double work
                part = _tight_clip(seg, a, u, width_m, patch)
            else:
                part = shapely.intersection(seg, band)
            for q, gain in _working_pieces(part, width_m, patch, min_len_m, min_gain_m2):
                key = round(float(o), 1)
                if key not in best or gain > best[key][1]:
                    best[key] = ((q[0], q[-1]), gain)
    # the side-pushed offsets compete with the centred one: keep the best of overlapping offsets
    chosen, total = [], 0.0
    for key in sorted(best, key=lambda k: -best[k][1]):
        if all(abs(key - k2) >= width_m * 0.75 for k2, _ in chosen):
            chosen.append((key, best[key][0]))
            total += best[key][1]
    return [c[1] for c in chosen], total


def gap_lines(field, region_geom, width_m: float, max_gap_m: float, step_deg: float = 0.25,
              max_turn_deg: float = 12.0) -> list:
    """Straight lines through the narrow gaps between an obstacle and the field's edge (or another obstacle) that
    the implement fits through (``width_m`` < gap <= ``max_gap_m``): the headland rings, opened to the turning radius,
    go round the obstacle and leave the gap; passes placed by a patch's extent miss the one line that threads it (a
    3.15 m gap leaves 0.15 m for a 3 m bar). For each gap, the longest line inside ``region_geom`` through the gap's
    middle, its direction within ``max_turn_deg`` of square to the gap (``step_deg`` steps), offsets up to 4 cm
    either side. Returns LineStrings."""
    from shapely.ops import nearest_points

    rings = [LineString(field.exterior.coords)] + [LineString(h.coords) for h in field.interiors]
    out = []
    for i in range(1, len(rings)):
        for j in range(len(rings)):
            if j == i or (j > 0 and j < i):
                continue
            d = rings[i].distance(rings[j])
            if not (width_m < d <= max_gap_m):
                continue
            a, b = nearest_points(rings[i], rings[j])
            pa, pb = np.array(a.coords[0]), np.array(b.coords[0])
            mid, nrm = 0.5 * (pa + pb), (pb - pa) / d
            best = None
            for dang in np.radians(np.arange(-max_turn_deg, max_turn_deg + 1e-9, step_deg)):
                c, sn = math.cos(dang), math.sin(dang)
                u = np.array([-nrm[1] * c - nrm[0] * sn, -nrm[1] * sn + nrm[0] * c])
                side = np.array([-u[1], u[0]])
                for off in (0.0, -0.02, 0.02, -0.04, 0.04):
                    p0 = mid + off * side
                    ins = shapely.intersection(LineString([p0 - 100 * u, p0 + 100 * u]), region_geom)
                    for g in getattr(ins, "geoms", [ins]):
                        if g.geom_type == "LineString" and g.distance(shapely.geometry.Point(p0)) < 1e-6 and \
                                (best is None or g.length > best.length):
                            best = g
            if best is not None and best.length > 2 * width_m:
                out.append(best)
    return out


def gap_passes(lines, patch, width_m: float, min_gain_m2: float, min_len_m: float = 1.0) -> list:
    """Passes ``(p0, p1)`` along :func:`gap_lines` over ``patch``: each line as far as its strip meets the patch
    (:func:`_tight_clip`), kept where it works at least ``min_gain_m2``."""
    out = []
    band = patch.buffer(0.5 * width_m)
    for line in lines:
        if not line.intersects(band):
            continue
        q = np.asarray(line.coords)
        u = (q[-1] - q[0]) / max(float(np.hypot(*(q[-1] - q[0]))), 1e-9)
        part = _tight_clip(line, q[0], u, width_m, patch)
        out += [(c[0], c[-1]) for c, _gain in _working_pieces(part, width_m, patch, min_len_m, min_gain_m2)]
    return out


def _working_pieces(part, width_m, patch, min_len_m, min_gain_m2):
    """The line pieces of ``part`` (a (multi)line string) at least ``min_len_m`` long whose strip (``width_m``
    wide, flat ends) works at least ``min_gain_m2`` of ``patch``: (coordinates, area worked) each."""
    for s in getattr(part, "geoms", [part]):
        if s.geom_type != "LineString" or s.length < min_len_m:
            continue
        gain = shapely.intersection(s.buffer(0.5 * width_m, cap_style="flat"), patch).area
        if gain >= min_gain_m2:
            yield np.asarray(s.coords), gain


def _tight_clip(seg, origin, u, width_m, patch, margin_m: float = 0.25):
    """The parts of ``seg`` (on a line through ``origin`` along unit ``u``) over which its strip (``width_m`` wide)
    meets ``patch``, each grown by ``margin_m``: a (multi)line string."""
    q = np.asarray(seg.coords)
    t0, t1 = sorted(float((c - origin) @ u) for c in (q[0], q[-1]))
    strip = seg.buffer(0.5 * width_m, cap_style="flat")
    hit = shapely.intersection(strip, patch)
    parts = []
    for g in getattr(hit, "geoms", [hit]):
        if g.geom_type != "Polygon" or g.is_empty:
            continue
        t = (np.asarray(g.exterior.coords) - origin) @ u
        lo, hi = max(t0, float(t.min()) - margin_m), min(t1, float(t.max()) + margin_m)
        if hi > lo:
            parts.append((lo, hi))
    parts.sort()
    merged = []
    for lo, hi in parts:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return shapely.MultiLineString([[origin + lo * u, origin + hi * u] for lo, hi in merged]) if merged \
        else LineString()


def patch_passes(patch, region_geom, width_m: float, min_gain_m2: float, min_len_m: float = 1.0,
                 boundary=None, long_axis_only: bool = False, tight: bool = False, edge_in_m: float = 0.0) -> list:
    """Straight passes ``(p0, p1)`` over a patch: along its minimum rotated rectangle's sides or along the
    nearby field edges (corners), whichever works most of it; ``long_axis_only``: along the rectangle's long
    side only (a corner tip: passes along it are driven in and backed out, passes across it cannot be reached
    in the narrow tip)."""
    best = ([], 0.0)
    for cand in _pass_sets(patch, region_geom, width_m, min_gain_m2, min_len_m, boundary, long_axis_only,
                           tight=tight, edge_in_m=edge_in_m):
        if cand[1] > best[1]:
            best = cand
    return best[0]


def patch_pass_options(patch, region_geom, width_m: float, min_gain_m2: float, min_len_m: float = 1.0,
                       boundary=None, tip_axis: bool = False, tight: bool = False, edge_in_m: float = 0.0) -> list:
    """Every straight pass ``(p0, p1)`` over a patch in every direction :func:`patch_passes` weighs (the rectangle's
    sides, the nearby field edges): the candidates for passes that need a reverse exit, chosen one by one by what
    each still works per metre reversed. In a corner tip the direction that works most on paper (across the tip)
    is the one that cannot be reached; a pass along one of the tip's edges can be driven in and backed out."""
    out = []
    for passes, _ in _pass_sets(patch, region_geom, width_m, min_gain_m2, min_len_m, boundary, False, tip_axis,
                                tight, edge_in_m):
        out += passes
    return out


def _edge_steps(boundary, patch, width_m) -> list:
    """The segments (as vectors) of the field's edges within half a width of ``patch``."""
    near = shapely.intersection(boundary, patch.buffer(0.5 * width_m))
    out = []
    for g in getattr(near, "geoms", [near]):
        q = np.asarray(getattr(g, "coords", []))
        out += [q[k + 1] - q[k] for k in range(len(q) - 1)]
    return out


def _pass_sets(patch, region_geom, width_m, min_gain_m2, min_len_m, boundary, long_axis_only, tip_axis=False,
               tight=False, edge_in_m=0.0):
    """(passes, gain) per direction of the patch's minimum rotated rectangle (its long side only with
    ``long_axis_only``) and, given ``boundary``, of the field edges near it (directions within 0.05 rad merged)."""
    rect = patch.minimum_rotated_rectangle
    c = np.asarray(rect.exterior.coords)[:4]
    dirs = [c[1] - c[0], c[2] - c[1]]
    if tip_axis and not long_axis_only:
        # a corner tip's axis: from the patch's centroid to its farthest point (the apex), about the tip's bisector
        pts = np.asarray(patch.exterior.coords)[:-1]
        ctr = np.asarray(patch.centroid.coords[0])
        apex = pts[int(np.argmax(np.hypot(*(pts - ctr).T)))]
        dirs.insert(0, apex - ctr)
    if long_axis_only:
        dirs = [max(dirs, key=lambda d: float(np.hypot(*d)))]
        boundary = None
    if boundary is not None:
        dirs += _edge_steps(boundary, patch, width_m)
    out, seen = [], []
    apex_dir = 0 if tip_axis and not long_axis_only else -1
    for k, d in enumerate(dirs):
        L = float(np.hypot(*d))
        if L < 1e-6:
            continue
        u = d / L
        ang = math.atan2(u[1], u[0]) % math.pi
        if any(abs(ang - a) < 0.05 or abs(abs(ang - a) - math.pi) < 0.05 for a in seen):
            continue
        seen.append(ang)
        out.append(_passes_along(patch, region_geom, u, width_m, min_gain_m2, min_len_m,
                                 through=apex if k == apex_dir else None, tight=tight, edge_in_m=edge_in_m))
    return out


def turnabout_exit(end, turn_radius_m: float, step_m: float, fits, free, budget_m: float, max_reverse_legs: int = 3,
                   min_leg_m: float = 1.0, back_radii=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0), run_radii: int = 4):
    """A way out of a dead end (a pass ending in a corner tip or a spike) that turns the machine round where the
    tip is a little wider than its turning radius, instead of backing out until a forward half-turn fits: straight
    back ``back_radii`` turning radii, then a multi-point turn (a reverse arc at full lock, a forward arc at the other
    full lock, ... each as long as it stays inside: ``fits``, at most half a turn) until a forward straight of 0 to
    ``run_radii`` turning radii ends where ``free`` (a forward half-turn fits; 8 radii measured the same as 4). A
    three-point turn at full lock needs a strip one turning radius wide for the reference point (a 7 m wide spike for
    a 4 m radius and a 3 m bar, which a half-turn needs 11 m for). Returns ``(samples, reverse_m)`` with the least
    reversing (``reverse_m`` counts each reverse leg plus a sample either side, as
    :func:`agricare.core.planning.coverage.plan_work_figures` labels a leg's ends), within ``budget_m``; None when
    none fits.

    ``fits(samples) -> bool``: the samples (and the machine along them) inside the field; ``free(pose) -> bool``.
    """
    from agricare.core.planning import turns as T

    R = float(turn_radius_m)
    end = np.asarray(end, dtype=float)
    free_memo = {}
    free_raw = free

    def free(q):                                # the same poses recur across straight-back distances and locks
        key = np.round(np.asarray(q, dtype=float), 6).tobytes()
        if key not in free_memo:
            free_memo[key] = bool(free_raw(q))
        return free_memo[key]

    def longest_arc(pose, k, sign):
        """The longest arc (``sign`` +1 forward, -1 reverse; curvature ``k``) from ``pose`` up to half a turn that
        fits: its length (0 when less than ``min_leg_m`` fits)."""
        full = math.pi * R
        if fits(T.sample_primitives(pose, [(sign * full, k, k)], step_m)):
            return full
        lo, hi = 0.0, full
        while hi - lo > step_m:
            mid = 0.5 * (lo + hi)
            if fits(T.sample_primitives(pose, [(sign * mid, k, k)], step_m)):
                lo = mid
            else:
                hi = mid
        return lo if lo >= min_leg_m else 0.0

    best = None
    for f in back_radii:
        back = f * R
        if back + 2 * step_m > budget_m + 1e-6 or (best is not None and back + 2 * step_m >= best[1]):
            break
        prims0 = [(-back, 0.0, 0.0)] if back > 0 else []
        if prims0 and not fits(T.sample_primitives(end, prims0, step_m)):
            break                               # further back does not fit either
        for k in (1.0 / R, -1.0 / R):
            prims = list(prims0)
            pose = T.end_pose(end, prims)
            rev = back + 2 * step_m if back > 0 else 0.0
            turned = 0.0
            for _leg in range(max_reverse_legs):
                a = longest_arc(pose, k, -1.0)
                if a <= 0.0:
                    break
                # the shortest reverse arc (0.25 rad steps up to the longest) after which a forward way out exists
                done = None
                for ang in list(np.arange(0.25, a / R, 0.25)) + [a / R]:
                    rl = ang * R
                    cost = rev + (0.0 if back > 0 and _leg == 0 else 2 * step_m) + rl
                    if cost > budget_m + 1e-6 or (best is not None and cost >= best[1]):
                        break
                    q = T.end_pose(pose, [(-rl, k, k)])
                    out = _forward_out(q, k, R, step_m, fits, free, min_leg_m, run_radii)
                    if out is not None:
                        done = (prims + [(-rl, k, k)] + out, cost)
                        break
                if done is not None:
                    best = done
                    break
                # no way out yet: the whole reverse arc, then the longest forward arc at the other lock
                cost = rev + (0.0 if back > 0 and _leg == 0 else 2 * step_m) + a
                if cost > budget_m + 1e-6 or (best is not None and cost >= best[1]):
                    break
                prims.append((-a, k, k))
                rev = cost
                pose = T.end_pose(pose, [(-a, k, k)])
                turned += a / R
                b = longest_arc(pose, -k, 1.0)
                if b <= 0.0:
                    break
                prims.append((b, -k, -k))
                pose = T.end_pose(pose, [(b, -k, -k)])
                turned += b / R
                if turned >= math.pi * 1.5:
                    break
    if best is None:
        return None
    prims, cost = best
    return T.sample_primitives(end, prims, step_m), cost


def _forward_out(pose, k, R, step_m, fits, free, min_leg_m, run_radii=4):
    """Forward primitives from ``pose``: an arc at the lock opposite ``k`` (0 to half a turn, about 0.25 rad steps)
    and a straight of 0 to ``run_radii`` turning radii, ending where ``free``; None if none fits. The half-turn and each
    longest straight are sampled once and checked by their prefixes (the samples of the shorter primitives)."""
    from agricare.core.planning import turns as T

    if free(pose):
        return []
    arc = T.sample_primitives(pose, [(math.pi * R, -k, -k)], step_m)
    m = len(arc.xy) - 1
    ds = math.pi * R / m                        # the arc's sample spacing (<= step_m)
    n_str = int(round(R / step_m))              # samples per turning radius of straight (R a multiple of the step)
    seen = set()
    for ang in np.arange(0.0, math.pi + 1e-9, 0.25):
        i = int(round(ang * R / ds))
        if i in seen:
            continue
        seen.add(i)
        if i > 0 and not fits(_prefix(arc, i)):
            return None                         # a longer arc has this one as its start
        p1 = np.array([arc.xy[i, 0], arc.xy[i, 1], pose[2] - k * i * ds])
        straight = T.sample_primitives(p1, [(run_radii * R, 0.0, 0.0)], step_m)
        exact = abs(n_str * step_m - R) < 1e-9 and len(straight.xy) == run_radii * n_str + 1
        for f in range(run_radii + 1):
            prims = ([(i * ds, -k, -k)] if i > 0 else []) + ([(f * R, 0.0, 0.0)] if f > 0 else [])
            if not prims or sum(abs(q[0]) for q in prims) < min_leg_m:
                continue
            if f > 0:
                seg = _prefix(straight, f * n_str) if exact else T.sample_primitives(p1, [(f * R, 0.0, 0.0)], step_m)
                if not fits(seg):
                    break                       # longer straights on this arc do not fit either
                q = np.array([seg.xy[-1, 0], seg.xy[-1, 1], p1[2]])
            else:
                q = p1
            if free(q):
                return prims
    return None


def _prefix(s, i):
    """The first ``i`` segments of sampled path ``s``."""
    from agricare.core.planning import turns as T

    return T.PathSamples(s.xy[:i + 1], s.yaw[:i + 1], s.kappa[:i + 1], s.direction[:i + 1], 0.0)


class ArcPass:
    """A curved clean-up pass: the arc of the circle about ``centre`` of radius ``rho`` from angle ``th0`` to ``th1``
    (counter-clockwise, ``th1 > th0``), driven either way (:func:`wedge_circles`, :func:`arc_passes`)."""

    def __init__(self, centre, rho: float, th0: float, th1: float):
        self.centre = np.asarray(centre, dtype=float)
        self.rho, self.th0, self.th1 = float(rho), float(th0), float(th1)

    @property
    def length_m(self) -> float:
        return self.rho * (self.th1 - self.th0)

    def point(self, th: float) -> np.ndarray:
        return self.centre + self.rho * np.array([math.cos(th), math.sin(th)])

    def ends(self):
        return self.point(self.th0), self.point(self.th1)

    def start_pose(self, ccw: bool) -> np.ndarray:
        """The pose at the arc's start driven counter-clockwise (``ccw``) or clockwise."""
        th = self.th0 if ccw else self.th1
        return np.array([*self.point(th), th + (0.5 * math.pi if ccw else -0.5 * math.pi)])

    def prims(self, ccw: bool) -> list:
        k = (1.0 if ccw else -1.0) / self.rho
        return [(self.length_m, k, k)]

    def line(self, step_m: float = 0.25) -> LineString:
        n = max(2, int(math.ceil(self.length_m / step_m)) + 1)
        th = np.linspace(self.th0, self.th1, n)
        return LineString(self.centre + self.rho * np.column_stack([np.cos(th), np.sin(th)]))

    def key(self) -> tuple:
        return (*np.round(self.centre, 3), round(self.rho, 3), round(self.th0, 4), round(self.th1, 4))


def wedge_circles(field, region_geom, width_m: float, turn_radius_m: float, max_gap_m: float,
                  step_m: float = 0.25) -> list:
    """Circles round the obstacles that lie within ``max_gap_m`` of the field's edge (or of another obstacle), for
    curved passes into the wedges either side of the narrow gap: the bar's centre half a width (+5 cm) off the
    obstacle's bounding circle, at least the turning radius from its centre. The headland rings round such an
    obstacle open where the gap pinches them, and straight passes into a wedge between a round pond and the edge
    leave the band along the pond (bench/field_plans.py seed 204: 58 m^2 there, with 100 m of reversing still 51).
    Per circle ``(centre, rho, theta, inside)``: angles every ``step_m`` of arc and whether the point there lies
    in ``region_geom`` (where the machine's reference point may be)."""
    rings = [LineString(field.exterior.coords)] + [LineString(h.coords) for h in field.interiors]
    out = []
    for i, h in enumerate(field.interiors):
        gap = min(rings[j].distance(rings[i + 1]) for j in range(len(rings)) if j != i + 1)
        if gap > max_gap_m:
            continue
        circ = shapely.minimum_bounding_circle(shapely.geometry.Polygon(h.coords))
        ctr = np.asarray(circ.centroid.coords[0])
        r = float(np.max(np.hypot(*(np.asarray(h.coords) - ctr).T)))
        rho = max(float(turn_radius_m), r + 0.5 * width_m + 0.05)
        n = max(8, int(math.ceil(2 * math.pi * rho / step_m)))
        th = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
        xy = ctr + rho * np.column_stack([np.cos(th), np.sin(th)])
        out.append((ctr, rho, th, shapely.contains_xy(region_geom, xy[:, 0], xy[:, 1])))
    return out


def arc_passes(circles, patch, width_m: float, min_gain_m2: float, min_len_m: float = 1.0,
               margin_m: float = 0.25) -> list:
    """Curved passes (:class:`ArcPass`) over ``patch`` along :func:`wedge_circles`: each run of a circle inside the
    region, as far as the bar (radial on the circle) meets the patch (+ ``margin_m``; stretches of the run where it
    does not are left out when longer than a width), kept where its strip works at least ``min_gain_m2``."""
    out = []
    band = patch.buffer(0.5 * width_m)
    for ctr, rho, th, inside in circles:
        n = len(th)
        dth = 2 * math.pi / n
        if not band.intersects(shapely.geometry.Point(*ctr).buffer(rho + 0.5 * width_m)):
            continue
        c, s = np.cos(th), np.sin(th)
        bars = shapely.linestrings(np.stack([np.column_stack([ctr[0] + (rho - 0.5 * width_m) * c,
                                                              ctr[1] + (rho - 0.5 * width_m) * s]),
                                             np.column_stack([ctr[0] + (rho + 0.5 * width_m) * c,
                                                              ctr[1] + (rho + 0.5 * width_m) * s])], axis=1))
        hit = shapely.intersects(bars, patch) & inside
        if not hit.any():
            continue
        # circular runs of the region: start the scan where the circle is outside (or anywhere if wholly inside)
        k0 = int(np.argmin(inside)) if not inside.all() else 0
        idx = (np.arange(n) + k0) % n
        gap_n = int(math.ceil(width_m / (rho * dth)))
        runs, cur, last_hit = [], None, None
        for j, k in enumerate(idx):
            if not inside[k]:
                if cur is not None:
                    runs.append(cur)
                cur, last_hit = None, None
                continue
            if hit[k]:
                if cur is not None and last_hit is not None and j - last_hit > gap_n:
                    runs.append(cur)
                    cur = None
                if cur is None:
                    cur = [j, j]
                cur[1] = j
                last_hit = j
        if cur is not None:
            runs.append(cur)
        m = int(round(margin_m / (rho * dth)))
        for j0, j1 in runs:
            # grown by the margin where the circle stays inside the region
            if m and j0 - m >= 0 and all(inside[idx[j]] for j in range(j0 - m, j0)):
                j0 -= m
            if m and j1 + m < n and all(inside[idx[j]] for j in range(j1 + 1, j1 + m + 1)):
                j1 += m
            th0 = float(th[idx[j0]])
            th1 = th0 + (j1 - j0) * dth
            a = ArcPass(ctr, rho, th0, th1)
            if a.length_m < min_len_m:
                continue
            gain = shapely.intersection(a.line().buffer(0.5 * width_m, cap_style="flat"), patch).area
            if gain >= min_gain_m2:
                out.append(a)
    return out


class BackInPass:
    """A clean-up pass worked out of a corner: the machine reversed in along a line with the trailing implement
    raised and leading, to ``cusp`` (base_link, headed ``yaw_out`` out of the corner), then worked forwards to
    ``end``; the line stays drivable (the machine inside) out to ``outer``, where a forward arrival may start the
    reverse leg. ``bar_m``: the implement's working line behind base_link."""

    def __init__(self, cusp, end, outer, yaw_out: float, bar_m: float):
        self.cusp, self.end, self.outer = np.asarray(cusp, float), np.asarray(end, float), np.asarray(outer, float)
        self.yaw_out, self.bar_m = float(yaw_out), float(bar_m)
        self.u = np.array([math.cos(self.yaw_out), math.sin(self.yaw_out)])

    def strip(self, width_m: float, end=None):
        """What the bar works from the cusp to ``end`` (default ``self.end``): the strip ``width_m`` wide between the
        bar's positions there (it goes down at the cusp)."""
        e = self.end if end is None else np.asarray(end, float)
        return LineString([self.cusp - self.bar_m * self.u, e - self.bar_m * self.u]).buffer(
            0.5 * width_m, cap_style="flat")

    def ends(self):
        return self.cusp, self.end

    def key(self) -> tuple:
        return ("back_in", *np.round(self.cusp, 3), *np.round(self.end, 3), round(self.yaw_out, 4))


def back_in_passes(patch, fp, width_m: float, bar_m: float, min_gain_m2: float, boundary, stop_margin_m: float = 0.5,
                   step_m: float = 0.25, offset_step_m: float = 0.5, angle_step_deg: float = 10.0, keep: int = 8,
                   min_leg_m: float = 2.0, reach_m: float = 20.0) -> list:
    """Passes into a leftover patch at the field's edge (a corner's tip) worked backed in (:class:`BackInPass`).

    Every other clean-up pass is placed by the strip it sweeps at base_link, and base_link keeps half a body width
    (3.1 m for a 6 m bar) off the edge: a corner's tip, beyond the tip of that region, got no candidate at all
    (bench/farm_missions.py tuning seed 0: 6 corner patches of 3-30 m^2, none with a candidate). Backed in, the
    trailing bar leads by ``bar_m`` and the depth is set by the whole machine (``fp``), not by that region; the cusp
    is a stop, so the machine fits ``stop_margin_m`` further along the line too (a tracker overshoots it). A straight
    6 m bar leaves a kite at an acute corner whatever the line: along one edge it ends where its far end meets the
    other edge (6 / tan(angle) from the vertex), so lines in many directions compete: along and across each field
    edge near the patch, the bisectors of their pairs, the patch's rectangle sides and every ``angle_step_deg``;
    lateral offsets every ``offset_step_m`` across the patch and half a bar either side. Along each line the deepest
    pose that fits, worked out until the bar has left the patch (at least ``min_leg_m``). Returns the ``keep`` that
    work most of the patch, none less than ``min_gain_m2``."""
    edge_dirs = [d / float(np.hypot(*d)) for d in _edge_steps(boundary, patch, width_m) if float(np.hypot(*d)) > 1e-6]
    dirs = []
    for d in edge_dirs:
        dirs += [d, np.array([-d[1], d[0]])]
    for i in range(len(edge_dirs)):
        for j in range(i + 1, len(edge_dirs)):
            for v in (edge_dirs[i] + edge_dirs[j], edge_dirs[i] - edge_dirs[j]):
                if float(np.hypot(*v)) > 1e-6:
                    dirs.append(v / float(np.hypot(*v)))
    rect = np.asarray(patch.minimum_rotated_rectangle.exterior.coords)[:4]
    for d in (rect[1] - rect[0], rect[2] - rect[1]):
        if float(np.hypot(*d)) > 1e-6:
            dirs.append(d / float(np.hypot(*d)))
    if angle_step_deg > 0:
        dirs += [np.array([math.cos(a), math.sin(a)]) for a in np.radians(np.arange(0.0, 180.0, angle_step_deg))]
    seen, lines = [], []
    for d in dirs:
        ang = math.atan2(d[1], d[0]) % math.pi
        if any(min(abs(ang - a), math.pi - abs(ang - a)) < 0.03 for a in seen):
            continue
        seen.append(ang)
        lines.append(np.array([math.cos(ang), math.sin(ang)]))
    pts = np.asarray(patch.exterior.coords)
    ctr = np.asarray(patch.centroid.coords[0])
    n_stop = int(math.ceil(stop_margin_m / step_m - 1e-9))
    out = []
    for w in lines:
        nrm = np.array([-w[1], w[0]])
        off = (pts - ctr) @ nrm
        offsets = np.arange(float(off.min()) - 0.5 * width_m, float(off.max()) + 0.5 * width_m + 1e-9, offset_step_m)
        along = (pts - ctr) @ w
        # the cusp is no deeper than the patch (the bar is behind it); the line runs ``reach_m`` out of it
        lo_t, hi_t = float(along.min()), float(along.max())
        t = np.arange(lo_t - reach_m, hi_t + reach_m + 1e-9, step_m)
        for sense in (1.0, -1.0):
            u = sense * w
            yaw = math.atan2(u[1], u[0])
            ts = t if sense > 0 else (-t)[::-1]       # increasing along u (out of the patch)
            ts = ts[ts >= (lo_t if sense > 0 else -hi_t) - 1.0]
            for o in offsets:
                xy = ctr + o * nrm + ts[:, None] * u
                ok = ~fp.outside_mask(np.column_stack([xy, np.full(len(ts), yaw)]))
                if not ok.any():
                    continue
                runs = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
                for i0, i1 in zip(runs[::2], runs[1::2] - 1):
                    ia = i0 + n_stop                   # the cusp: room for the overshoot behind it
                    if (i1 - ia) * step_m < min_leg_m:
                        continue
                    cand = BackInPass(xy[ia], xy[i1], xy[i1], yaw, bar_m)
                    hit = shapely.intersection(cand.strip(width_m), patch)
                    if hit.area < min_gain_m2:
                        continue
                    # worked out until the bar has left the patch (+ a raster cell), at least min_leg_m
                    hp = np.concatenate([np.asarray(g.exterior.coords) for g in getattr(hit, "geoms", [hit])
                                         if g.geom_type == "Polygon"])
                    t_end = min(max(float(np.max((hp - xy[ia]) @ u)) + bar_m + 0.25, min_leg_m), (i1 - ia) * step_m)
                    cand.end = xy[ia] + t_end * u
                    gain = shapely.intersection(cand.strip(width_m), patch).area
                    if gain >= min_gain_m2:
                        out.append((gain, cand))
    out.sort(key=lambda c: -c[0])
    chosen = []
    for _gain, c in out:             # the best of near-identical lines (same direction, cusps within 0.5 m)
        if all(abs(c.yaw_out - c2.yaw_out) > 0.03 or float(np.hypot(*(c.cusp - c2.cusp))) > 0.5 for c2 in chosen):
            chosen.append(c)
        if len(chosen) >= keep:
            break
    return chosen
