"""Headland passes that work the corners, and the machine's full footprint.

A rounded headland ring (:func:`agricare.core.planning.headland.headland_rings`) never works the corners of a
field: its arcs keep the turning radius away from every convex corner. :func:`corner_ring` builds the ring
of one headland pass as straight working passes along the (simplified) offset boundary joined per corner:

- a sharp convex corner (turn >= ``min_angle``): the pass along edge A ends with the implement at the near
  side of the square both strips share, the implement goes up, a Reeds-Shepp manoeuvre (reversing, a
  three-point turn) backs the machine into the corner along edge B with the implement first, and the pass
  along B starts with the implement at the far side of that square (so B works the corner square itself,
  as far as the machine fits);
- a shallow or concave corner: a working arc of the turning radius (a fillet; at a concave corner the
  strips overlap towards the boundary and leave nothing on the field side).

Every pose of the ring (working straights, arcs, manoeuvres) keeps the whole machine, tractor body and
implement (:class:`Footprint`), inside the field; a ring that cannot be built so returns None and the
planner keeps the rounded ring.

The implement trails base_link by ``implement_offset_m``: the pass along A stops where the *implement* has
reached the near side of the corner square, and after the manoeuvre the implement is lowered at once (it is
behind the machine, where the manoeuvre has just reversed over): :meth:`FarmMission.implement_down` does so
after a cusp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np
import shapely
from shapely.geometry import LinearRing

from agricare.core.planning import turns as T


class Footprint:
    """Rectangles ``(x_min, x_max, y_min, y_max)`` in base_link (body, implement) checked against a field.

    ``fits(poses)`` is True when every corner and edge midpoint of every rectangle at every pose ``(N, 3)``
    lies inside the field shrunk by ``margin_m``.
    """

    def __init__(self, rects, field, margin_m: float = 0.1):
        r = np.asarray(rects, dtype=float).reshape(-1, 4)
        pts = []
        for x0, x1, y0, y1 in r:
            xm, ym = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
            pts += [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (xm, y0), (xm, y1), (x0, ym), (x1, ym)]
        self.local = np.array(pts, dtype=float)
        self.rects = r
        self.geom = field.buffer(-margin_m) if margin_m > 0 else field
        shapely.prepare(self.geom)

    def inset(self, margin_m: float) -> Footprint:
        """The same machine against this footprint's field shrunk by ``margin_m`` more (built once per margin and
        kept: the corner manoeuvres ask for the same one at every corner)."""
        if margin_m <= 0:
            return self
        insets = self.__dict__.setdefault("_insets", {})
        if margin_m not in insets:
            insets[margin_m] = Footprint(self.rects, self.geom, margin_m=margin_m)
        return insets[margin_m]

    @property
    def front_m(self) -> float:
        return float(self.rects[:, 1].max())

    @property
    def rear_m(self) -> float:
        return float(-self.rects[:, 0].min())

    def points(self, poses) -> np.ndarray:
        q = np.asarray(poses, dtype=float).reshape(-1, 3)
        c, s = np.cos(q[:, 2])[:, None], np.sin(q[:, 2])[:, None]
        x = q[:, 0:1] + c * self.local[None, :, 0] - s * self.local[None, :, 1]
        y = q[:, 1:2] + s * self.local[None, :, 0] + c * self.local[None, :, 1]
        return np.stack([x.ravel(), y.ravel()], axis=1)

    def excess(self, poses) -> np.ndarray:
        """Per pose ``(N, 3)``: how far (m) the farthest footprint point lies outside the field (0 inside)."""
        q = np.asarray(poses, float).reshape(-1, 3)
        pts = self.points(q)
        inside = shapely.contains_xy(self.geom, pts[:, 0], pts[:, 1])
        d = np.zeros(len(pts))
        if not inside.all():
            d[~inside] = shapely.distance(self.geom, shapely.points(pts[~inside]))
        return d.reshape(len(q), -1).max(axis=1)

    def fits(self, poses) -> bool:
        p = self.points(poses)
        return bool(np.all(shapely.contains_xy(self.geom, p[:, 0], p[:, 1])))

    def outside_mask(self, poses) -> np.ndarray:
        """Per pose: True where some footprint point is outside."""
        q = np.asarray(poses, dtype=float).reshape(-1, 3)
        p = self.points(q)
        ins = shapely.contains_xy(self.geom, p[:, 0], p[:, 1]).reshape(len(q), -1)
        return ~ins.all(axis=1)


def _poses(s: T.PathSamples) -> np.ndarray:
    return np.column_stack([s.xy, s.yaw])


def _straight(p0, p1, step):
    L = float(math.hypot(p1[0] - p0[0], p1[1] - p0[1]))
    yaw = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    return T.sample_primitives((p0[0], p0[1], yaw), [(L, 0.0, 0.0)], step)


def _eased_turn(turn_rad: float, radius_m: float, sharpness_1pm2: float):
    """A left turn of ``turn_rad`` whose curvature ramps 0 -> 1/radius_m -> 0 at ``sharpness_1pm2`` (clothoid, arc,
    clothoid): ``(primitives, t)`` with ``t`` the distance from either end to where the two straight lines meet
    (symmetric turn: the same on both); None when the turn is too small for the two ramps."""
    k = 1.0 / radius_m
    lc = k / sharpness_1pm2
    arc = turn_rad - k * lc                      # each ramp turns k * lc / 2
    if arc < 0.0:
        return None
    prims = [(lc, 0.0, k), (radius_m * arc, k, k), (lc, k, 0.0)]
    end = T.sample_primitives((0.0, 0.0, 0.0), prims, 0.05)
    x1, y1 = float(end.xy[-1, 0]), float(end.xy[-1, 1])
    return prims, x1 - y1 / math.tan(turn_rad)


def three_point_corner(a: float, b: float, turn_rad: float, radius_m: float, extension_m: float,
                       min_leg_m: float = 0.0, inset_m: float = 0.0, sharpness_1pm2: float = 0.0):
    """Primitives ``(length, k0, k1)`` of the corner manoeuvre at a convex corner turning ``turn_rad`` left.

    Local frame: the (offset) vertex at the origin, edge A along +x, edge B leaving at ``turn_rad``. The pass
    along A ends with base_link ``a`` metres past the vertex (negative: before it). The machine reverses: first
    an S of two arcs that shifts it ``inset_m`` towards the field (so the trailing implement, which swings
    outwards in the forward arc, stays inside), then straight along that line to where a forward arc of
    ``radius_m`` joins it to B; it drives the arc and ``extension_m`` on along B, then reverses straight along
    B until base_link is ``b`` metres past the vertex (negative: backed into the corner), where the pass along B
    starts with the trailing implement at the corner. A reverse leg shorter than ``min_leg_m`` is lengthened
    and the difference driven forward before the arc. None when B's start is not behind the arc's end.
    ``sharpness_1pm2`` > 0: the forward turn eases in and out (clothoids of that sharpness either side of the arc),
    so the steering, limited in rate, is straight again where the turn ends on B instead of overshooting it.
    """
    k = 1.0 / radius_m
    t = radius_m * math.tan(0.5 * turn_rad)
    turn = [(radius_m * turn_rad, k, k)]
    if sharpness_1pm2 > 0.0 and turn_rad < math.pi - 1e-3:
        eased = _eased_turn(turn_rad, radius_m, sharpness_1pm2)
        if eased is not None:
            turn, t = eased
    prims = []
    x = a                                            # base_link's position along A (inset line after the S)
    if inset_m > 1e-6:
        s_prims, s_len = _s_shift(inset_m, radius_m, forward=False)
        prims += s_prims
        x -= s_len
    start_arc = inset_m / math.tan(turn_rad) - t     # the arc's start along A on the inset line
    back_b = inset_m / math.sin(turn_rad) + t + extension_m - b
    if back_b < max(min_leg_m, 1e-3):
        return None
    back = x - start_arc
    if back > 1e-6:
        leg = max(back, min_leg_m) if not prims else back
        prims.append((-leg, 0.0, 0.0))
        if leg - back > 1e-6:
            prims.append((leg - back, 0.0, 0.0))
    elif back < -1e-6:
        prims.append((-back, 0.0, 0.0))
    prims += turn + [(extension_m, 0.0, 0.0), (-back_b, 0.0, 0.0)]
    return prims


def _fits(fp: Footprint, poses: np.ndarray) -> bool:
    """``fp.fits(poses)``, every fourth pose first: most candidate connections fail, and fail there already."""
    return fp.fits(poses[::4]) and fp.fits(poses)


#: how far past a planned stop the machine may roll before it reverses (m): the cusp is approached at the manoeuvre
#: speed and stopped by the velocity smoother's deceleration on slipping soil; a stop planned 0.1 m from the boundary
#: with the bonnet towards it left the field by 5 mm on seed 15 of bench/farm_missions.py
CUSP_OVERSHOOT_M = 0.2


def _overshoot_poses(s: T.PathSamples) -> np.ndarray:
    """The poses of ``s`` where it stops to change direction, moved on ``CUSP_OVERSHOOT_M`` the way the machine
    arrives there: every sample before a change of direction, and the first sample when ``s`` starts in reverse after
    a forward pass. (0, 3) when there is none."""
    d = np.asarray(s.direction)
    q = _poses(s)
    if len(d) < 2:
        return q[:0]
    idx = list(np.flatnonzero(d[2:] != d[1:-1]) + 1)
    arrive = [float(d[k]) for k in idx]
    if d[1] < 0:
        idx.insert(0, 0)
        arrive.insert(0, 1.0)
    if not idx:
        return q[:0]
    c = q[idx].copy()
    a = np.asarray(arrive) * CUSP_OVERSHOOT_M
    c[:, 0] += a * np.cos(c[:, 2])
    c[:, 1] += a * np.sin(c[:, 2])
    return c


def _fits_stops(fp: Footprint, s: T.PathSamples) -> bool:
    """The machine still inside when it rolls ``CUSP_OVERSHOOT_M`` past each stop of ``s``
    (:func:`_overshoot_poses`)."""
    c = _overshoot_poses(s)
    return len(c) == 0 or fp.fits(c)


#: room kept around a gap's turn when no cusp comes before it (after a forward S, or straight off the pass; m, on top
#: of the footprint's margin): the tracker's steering lag carries the machine wider there
EASE_TURN_MARGIN_M = 0.5


def _gap(vertex, ua, ub, len_a: float, len_b: float, turn_rad: float, radius_m: float, fp: Footprint,
         step_m: float, ease_radius_m: float = 0.0):
    """A corner the ring cannot work: the pass along A stops ``-a`` before the vertex and the pass along B starts
    ``b`` after it, joined with the implement raised by the shortest connection that keeps the whole machine
    inside: a forward (Dubins) path of the turning radius, after an S that shifts the machine ``inset`` towards
    the field when needed (a forward turn off the outer pass swings the trailing implement out of the field).
    The S is a gentle forward one of radius ``ease_radius_m`` (> 0) at the end of the pass along A, still
    working (the trailing implement swings out about ``offset^2 / (2 radius)``, inside the footprint margin), or
    else a short reversing S of the turning radius. Returns ``(a, b, pieces)`` with ``pieces`` a list of
    ``(PathSamples, working)``, or None when none fits."""
    ha, hb = math.atan2(ua[1], ua[0]), math.atan2(ub[1], ub[0])
    t = radius_m * math.tan(0.5 * min(abs(turn_rad), math.radians(170.0)))
    sgn = 1.0 if turn_rad > 0 else -1.0
    leads = [(0.0, [], 0.0)]
    if ease_radius_m > 0:
        for inset in (0.6, 1.2):
            leads.append((inset, *_s_shift(inset, ease_radius_m, sign=sgn)))
    for inset in (0.6, 1.2):
        leads.append((inset, _s_shift(inset, radius_m, forward=False, sign=sgn)[0], 0.0))
    # a concave corner: A on past the vertex and B from before it (both into the field), a loop between;
    # else both backed off the vertex
    concave = [(e, -e) for e in (3.0, 4.5, 1.5, 6.0)] if turn_rad < 0 else []
    # backed off each side on its own (a short edge gives less), least backing off first
    steps = (-4.0, -2.0, 0.0, 1.5, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0)
    grid = [(ea, eb) for ea in steps for eb in steps]
    backed = [(-(t + ea), t + eb) for ea, eb in sorted(grid, key=lambda e: (abs(e[0]) + abs(e[1]), e))]
    wide = fp.inset(EASE_TURN_MARGIN_M)
    for inset, s_prims, ahead in leads:
        pairs = (concave if inset == 0 else []) + backed
        forward_lead = ahead > 0
        for a, b in pairs:
            a0 = a - ahead                                  # a forward S starts that much earlier along A
            if -a0 > len_a - 1.0 or b > len_b - 1.0 or a > 0.7 * len_b or -b > 0.7 * len_a:
                continue
            p0 = np.array([*(vertex + a0 * ua), ha])
            p1 = np.array([*(vertex + b * ub), hb])
            if not (fp.fits([p0]) and fp.fits([p1])):
                continue
            lead = T.sample_primitives(p0, s_prims, step_m) if s_prims else None
            q0 = np.array([*lead.xy[-1], lead.yaw[-1]]) if lead is not None else p0
            if lead is not None and not fp.fits(_poses(lead)):
                break
            for prims in T.dubins_candidates(q0, p1, radius_m)[:4]:
                if forward_lead:
                    # no stop before the turn (a reversing S ends at a cusp, where the wheels are steered at
                    # standstill): the tracker's steering lag at the start of the turn carries the machine wider,
                    # so the turn keeps EASE_TURN_MARGIN_M more room
                    smp = T.sample_primitives(q0, prims, step_m)
                    if _fits(wide, _poses(smp)):
                        return a0, b, [(lead, True), (smp, False)]
                else:
                    smp = T.sample_primitives(p0, s_prims + prims, step_m)
                    # without a reversing S the turn follows the pass without a stop either: the same extra room
                    if _fits(wide if not s_prims else fp, _poses(smp)) and _fits_stops(fp, smp):
                        return a0, b, [(smp, False)]
    return None


#: ``(inset along A, inset along B)`` (m) an eased arc tries per corner with ``per_side``, least sliver first: the
#: pass along A needs an inset (a turn that leaves a line swings the trailing implement out: 0.26 m for the bench's
#: 6 m bar 1.6-2.0 m behind base_link on a 4.5 m radius, plus the footprint's margin), the pass along B mostly none
#: (a turn that joins a line from the field side keeps the implement inside its strip)
EASED_SIDE_INSETS = tuple(sorted(((ia, ib) for ia in (0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
                                  for ib in (0.0, 0.1, 0.2, 0.3, 0.5) if ib <= ia), key=lambda p: (p[0] + p[1], p[0])))


def _eased_arc(vertex, ua, ub, len_a: float, len_b: float, turn_rad: float, radius_m: float, fp: Footprint,
               step_m: float, ease_radius_m: float, insets=(0.3, 0.5), per_side: bool = False):
    """A convex corner worked forward without a stop where the working arc of the turning radius on the pass's own line
    does not fit (the outer pass: the rigid trailing implement swings out ~offset^2 / (2 (radius + width/2)) where a
    turn *leaves* a line): the pass along A shifts ``inset`` into the field by a gentle working S of ``ease_radius_m``,
    works the corner on an arc of the turning radius between the two inset lines, and shifts back out onto B's line by
    the mirrored S (a turn that *joins* a line from the field side keeps the implement inside its strip). Everything
    works. Against a gap (the passes cut back, a reversing S off the outer pass) or a manoeuvre (a Y turn at a shallow
    corner reverses ~3.3 m) it reverses nothing and leaves the band outside the arc plus two thin slivers.
    ``(a, b, (PathSamples, True), inset)`` (``a`` < 0: A's S starts that far before the vertex, ``b``: where B's pass
    begins), or None when no inset fits (both S and the arc within the edges, the whole machine inside).

    ``per_side``: each side its own inset (:data:`EASED_SIDE_INSETS`, least sliver first), and a fifth item, the
    slivers (m^2, half the inset along each side) for :func:`_manoeuvre_gain`. The 0.3 / 0.5 m on both sides are
    what A needs, not B: on a 69 deg corner of the bench's machine (6 m bar 1.6-2.0 m behind base_link, 4.5 m
    radius) the arc on A's own line leaves the field by 0.26 m (the bar's outer rear corner, 15 deg into the arc),
    at 0.15 / 0.2 m in by 0.11 / 0.06 m, at 0.25 m it fits; B needs nothing, and its S (7.7 m at 0.3 m) went with
    a 0.3 m strip from there to the arc. bench/farm_missions.py tuning seeds 0-19, standard flags, plan-trail:
    97.61 -> 97.85 %, all 20 better, corners 1.57 -> 1.37 % of the field.

    ``ease_radius_m`` is no free parameter: the S's first arc swings the bar out too, ~offset^2 / (2 ease radius);
    for this machine on the outer pass (bar 0.1 m off the boundary, footprint margin 0.05 m) a 35 m S leaves the
    field by 3 mm and a 30 m one by 11 mm, so no eased arc fits anywhere and every shallow corner falls back to a Y
    turn or a gap (a 30 m ease radius measured -0.88 points, plan-trail, 16 tuning fields); 40 m fits, with an S
    0.8 m shorter than at 50 m (about 0.1 m^2 less sliver per corner)."""
    if ease_radius_m <= 0 or not (1e-3 < turn_rad < math.pi - 1e-3):
        return None
    na = np.array([-ua[1], ua[0]])
    nb = np.array([-ub[1], ub[0]])
    k = 1.0 / radius_m
    t = radius_m * math.tan(0.5 * turn_rad)
    ha = math.atan2(ua[1], ua[0])
    for ia, ib in (EASED_SIDE_INSETS if per_side else [(i, i) for i in insets]):
        # the inset lines meet at vertex + w: w . na = ia, w . nb = ib
        w = np.linalg.solve(np.array([na, nb]), np.array([ia, ib]))
        s_in, ahead = _s_shift(ia, ease_radius_m)
        s_out, behind = _s_shift(ib, ease_radius_m, sign=-1.0) if ib > 0 else ([], 0.0)
        a = float(np.dot(w, ua)) - t - ahead            # along A from the vertex, where A's S starts
        b = float(np.dot(w, ub)) + t + behind           # along B, where B's S ends
        if -a > len_a - 1.0 or b > len_b - 1.0:
            continue
        prims = s_in + [(radius_m * turn_rad, k, k)] + s_out
        p0 = np.array([*(vertex + a * ua), ha])
        smp = T.sample_primitives(p0, prims, step_m)
        if _fits(fp, _poses(smp)):
            if not per_side:
                return a, b, (smp, True), ia
            # the slivers the S curves and the inset lines leave (half the inset along each side), for the ranking
            return a, b, (smp, True), ia, 0.5 * (ia * (-a) + ib * b)
    return None


def _manoeuvre(i, v, u, h, L, d, r, off, width_m, fp, step_m, min_leg_m, rmax, sharpness=0.0):
    """The shortest three-point manoeuvre at convex vertex ``i`` that keeps the machine inside:
    ``(PathSamples, reverse_m, a, b)`` or None."""
    # A: base_link stops a along u[i-1] from the vertex, B starts b along u[i] (negative: backed into the corner)
    a, b = _pass_ends(i, v, u, h, L, d, off, width_m, fp)
    best = None
    start = np.array([*(v[i] + a * u[i - 1]), h[i - 1]])
    for rr, inset in ((r, 0.0), (r, 0.5), (r, 1.0), (1.25 * r, 0.5), (r, 1.5)):
        for ext in (max(min_leg_m, 1.0), 2.0 * max(min_leg_m, 1.0)):
            prims = three_point_corner(a, b, d, rr, ext, min_leg_m, inset, sharpness)
            if prims is None:
                continue
            back = float(sum(-q[0] for q in prims if q[0] < 0))
            if back > rmax:
                continue
            smp = T.sample_primitives(start, prims, step_m)
            if not fp.fits(_poses(smp)) or not _fits_stops(fp, smp):
                continue
            if best is None or smp.length_m < best[0].length_m:
                best = (smp, back, a, b)
        if best is not None:
            break
    return best


def _pass_ends(i, v, u, h, L, d, off, width_m, fp, deep: bool = False):
    """Where the pass along A may end (``a``, signed along A from vertex ``i``) and the pass along B start (``b``)
    at a sharp corner, heading along its edge (:func:`_manoeuvre`, :func:`_y_manoeuvre`): the implement at the near
    (A) and far (B) side of the square both strips share, backed off until the whole machine fits. ``deep``: each as
    far into the corner as the whole machine fits (A on until its body or implement meets the boundary, B backed in
    until it does): at a corner other than a right angle the two strips' ends leave a triangle between them that
    only the overlap covers."""
    w_eff = min(0.5 * width_m / max(math.sin(min(d, math.pi - 1e-3)), 0.3), width_m)
    target = off - w_eff
    a = target
    if deep:
        x = target
        while x < target + 2.0 * width_m and fp.fits([[*(v[i] + (x + 0.25) * u[i - 1]), h[i - 1]]]):
            x += 0.25
        a = x
    while not fp.fits([[*(v[i] + a * u[i - 1]), h[i - 1]]]) and a > -L[i - 1]:
        a -= 0.25
    b = target
    if deep:
        x = target
        while x > target - 2.0 * width_m and fp.fits([[*(v[i] + (x - 0.25) * u[i]), h[i]]]):
            x -= 0.25
        b = x
    while not fp.fits([[*(v[i] + b * u[i]), h[i]]]) and b < L[i]:
        b += 0.25
    return a, b


def y_turn_candidates(a: float, b: float, turn_rad: float, radius_m: float, sharpness_1pm2: float = 0.0,
                      step_deg: float = 2.5, inset_m: float = 0.0):
    """Two-leg corner manoeuvres ("Y" / fishtail turns) at a convex corner turning ``turn_rad`` left, cheapest in
    metres reversed first: ``[(reverse_m, primitives)]``.

    Local frame as :func:`three_point_corner` (vertex at the origin, A along +x, B leaving at ``turn_rad``; the pass
    along A ends with base_link at ``x = a``, the pass along B starts with base_link ``b`` along B). The machine drives
    on along A (``s0`` >= 0, or first backs ``-s0``), turns forward into the field by ``theta1`` on an arc, stops,
    and reverses on an arc that brings its heading onto B's (steering right when ``theta1`` < turn, left when it
    turned further: a fishtail), then straight back along B by ``s2`` to the start of B. For each ``theta1`` the two
    straights follow from the end pose (two linear equations), so the family is one-dimensional. Against the
    three-point manoeuvre (back along A, forward turn, back along B: about two tangent lengths reversed) it reverses
    only the second arc and ``s2``; the forward arc starts at a cusp-free point after the pass, so with
    ``sharpness_1pm2`` > 0 it eases in by a clothoid (the steering is rate-limited while moving); the reverse arc starts
    at a cusp (steered at standstill). Candidates with ``s2 < 0`` are dropped: the pass along B must begin with the
    machine reversing into it (the implement goes down at the cusp). ``inset_m``: the machine starts ``inset_m`` towards
    the field from A's line (after an S off the outer pass: a forward turn straight off it swings the trailing
    implement's outer corner out of the field)."""
    k = 1.0 / radius_m
    ub = (math.cos(turn_rad), math.sin(turn_rad))
    det = -ub[1]                                    # | ua  -ub | with ua = (1, 0)
    if abs(det) < 1e-6:
        return []
    gx, gy = b * ub[0], b * ub[1]
    ease = sharpness_1pm2 > 0.0
    lc = k / sharpness_1pm2 if ease else 0.0
    out = []
    for th1 in np.radians(np.arange(0.0, math.degrees(turn_rad) + 60.0 + 1e-9, step_deg)):
        th1 = float(th1)
        fwd = []
        if th1 > 1e-6:
            if ease:
                if th1 < 0.5 * k * lc + 1e-6:
                    continue
                fwd = [(lc, 0.0, k), (radius_m * (th1 - 0.5 * k * lc), k, k)]
                x1, y1, _ = T.end_pose((0.0, 0.0, 0.0), fwd)
            else:
                fwd = [(radius_m * th1, k, k)]
                x1, y1 = radius_m * math.sin(th1), radius_m * (1.0 - math.cos(th1))
        else:
            x1 = y1 = 0.0
        delta = turn_rad - th1                      # heading change of the reverse arc
        rev = []
        if abs(delta) > 1e-6:
            k2 = -math.copysign(k, delta)
            rev = [(-radius_m * abs(delta), k2, k2)]
            x1 += (math.sin(turn_rad) - math.sin(th1)) / k2
            y1 -= (math.cos(turn_rad) - math.cos(th1)) / k2
        # s0 * ua - s2 * ub = goal - (a + x1, inset + y1)
        rx, ry = gx - (a + x1), gy - (inset_m + y1)
        s0 = (rx * (-ub[1]) - (-ub[0]) * ry) / det
        s2 = ry / -ub[1]
        if s2 < -1e-6:
            continue
        s2 = max(float(s2), 0.0)
        prims = ([(float(s0), 0.0, 0.0)] if abs(s0) > 1e-6 else []) + fwd + rev + \
            ([(-s2, 0.0, 0.0)] if s2 > 1e-6 else [])
        back = max(-float(s0), 0.0) + radius_m * abs(delta) + s2
        out.append((back, prims))
    out.sort(key=lambda c: (c[0], T.primitives_length(c[1])))
    return out


def _y_manoeuvre(i, v, u, h, L, d, r, off, width_m, fp, step_m, min_leg_m, rmax, sharpness=0.0, ease_radius_m=0.0,
                 deep: bool = False, b_extra_m: float = 0.0, deep_a: bool = False, a_at: float | None = None):
    """The two-leg manoeuvre (:func:`y_turn_candidates`) at convex vertex ``i`` that reverses least and keeps the
    machine inside: ``(pieces, reverse_m, a, b)`` with ``pieces`` a list of ``(PathSamples, working)``, or None.
    Each leg between cusps is at least ``min_leg_m`` long (a tracker settles on it). Where a forward turn straight
    off the pass does not fit (the outer pass: the trailing implement swings out), the pass ends with a gentle
    forward S of ``ease_radius_m`` (> 0, still working; ``a`` is then where the S starts) or a short reversing S
    of the turning radius that shifts the machine towards the field first. ``b_extra_m`` > 0: B starts that much less
    deep in the corner (a cheaper manoeuvre that works less: the reverse straight onto B is shorter). ``deep_a``: the
    pass along A on as far into the corner as the whole machine fits (:func:`_pass_ends` ``deep``), B where it starts
    without it; the machine then first backs along A's worked line to make room for the forward arc
    (:func:`y_turn_candidates` ``s0`` < 0), None where A goes no deeper than without it. ``a_at``: A ends there."""
    a, b = _pass_ends(i, v, u, h, L, d, off, width_m, fp, deep)
    if deep_a and not deep:
        # the deepest end that fits with the stop's roll-on (``CUSP_OVERSHOOT_M``) and a Y turn from there
        a_deep = _pass_ends(i, v, u, h, L, d, off, width_m, fp, deep=True)[0]
        for x in np.arange(a_deep, a + DEEP_A_MIN_M - 1e-9, -0.25):
            y = _y_manoeuvre(i, v, u, h, L, d, r, off, width_m, fp, step_m, min_leg_m, rmax, sharpness, ease_radius_m,
                             b_extra_m=b_extra_m, a_at=float(x))
            if y is not None:
                return y
        return None
    if a_at is not None:
        a = a_at
    b += b_extra_m
    if b > L[i] - 1.0:
        return None
    leads = [(0.0, [], 0.0, True)]
    for inset in (0.3, 0.5, 0.8):
        if ease_radius_m > 0:
            leads.append((inset, *_s_shift(inset, ease_radius_m), True))
        s_prims, s_len = _s_shift(inset, r, forward=False)
        leads.append((inset, s_prims, -s_len, False))
    best = None
    for inset, s_prims, ahead, working_lead in leads:
        a0 = a - ahead if working_lead else a           # where the pass along A hands over
        if -a0 > L[i - 1] - 1.0:
            continue
        on_a = _lead_on_a(i, v, u, h, a0, s_prims, fp, step_m)
        if on_a is None:
            continue
        p0, lead, start = on_a
        x_start = a0 + ahead
        lead_back = 0.0 if working_lead else float(sum(-q[0] for q in s_prims))
        cands = []
        for rr in (r, 1.25 * r, 1.5 * r):
            for back, prims in y_turn_candidates(x_start, b, d, rr, sharpness, inset_m=inset):
                if back + lead_back > rmax or (best is not None and back + lead_back >= best[1]):
                    break
                # legs between cusps (consecutive primitives of one direction)
                seq = ([] if working_lead else s_prims) + prims
                legs, cur, sign = [], 0.0, 0
                for q in seq:
                    sg = 1 if q[0] > 0 else -1
                    if sg != sign and sign != 0:
                        legs.append(cur)
                        cur = 0.0
                    sign = sg
                    cur += abs(q[0])
                legs.append(cur)
                # the first leg continues the pass (no cusp before it) unless it reverses
                inner_legs = legs[1:] if seq and seq[0][0] > 0 else legs
                if any(x < min_leg_m for x in inner_legs):
                    continue
                cands.append((back + lead_back, T.primitives_length(prims), prims))
        cands.sort(key=lambda c: (c[0], c[1]))
        for back, _, prims in cands:
            smp = T.sample_primitives(start, prims, step_m)
            whole = smp if working_lead or lead is None else T.sample_primitives(p0, s_prims + prims, step_m)
            if not _fits(fp, _poses(smp)) or not _fits_stops(fp, whole):
                continue
            if lead is None:
                best = ([(smp, False)], back, a0, b)
            elif working_lead:
                best = ([(lead, True), (smp, False)], back, a0, b, a)
            else:
                best = ([(T.sample_primitives(p0, s_prims + prims, step_m), False)], back, a0, b)
            break
    return best


#: the least (m) a Y turn's pass along A must go deeper into the corner than without ``deep_a`` to be offered
#: (:func:`_y_manoeuvre`)
DEEP_A_MIN_M = 0.2

#: how much further out of a sharp corner than the deepest start (m) a partial Y turn may start the pass along B, least
#: first (:func:`corner_ring` ``partial_y_turns``); the cheaper Y turns the budget allocation is offered
#: (``variants``) start B there too
PARTIAL_Y_EXTRA_M = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0)

#: the longest straight a loop-and-back corner (:func:`_loop_back_corner`) reverses onto B (m), and its search step
LOOP_BACK_MAX_M = 8.0
LOOP_BACK_STEP_M = 0.25
#: the slack (m) of the loop-back's pre-test of its arrival pose against the room a loop keeps (the loop's last sample
#: is the arrival pose only to rounding)
LOOP_BACK_SLACK_M = 0.01


def _loop_back_corner(i, v, u, h, L, d, r, off, width_m, fp, step_m, min_leg_m, rmax, ease_radius_m=0.0):
    """A sharp corner worked with one short reverse: the pass along A ends as for a Y turn (:func:`_pass_ends`, after a
    gentle working S of ``ease_radius_m`` off the outer pass where one fits: a left turn straight off it swings the
    trailing implement out), a forward (Dubins) loop with the implement raised - over the field inside - arrives
    heading along B on B's line or on a line ``shift`` (0.5 / 0.8 m) inside it, ``e`` ahead of B's start, and the
    machine reverses onto B's start: straight, after a reversing S back onto B's line when it arrived inside it.
    A forward turn that joins a line from the field side keeps the rigid implement inside that line's strip (it swings
    out only where a turn *leaves* a line), so the reverse need only be as long as the machine needs to stop where it
    fits: ``min_leg_m``-2.75 m on an inner pass, the S (3.0 / 3.8 m) and a straight on the outer pass (where the
    whole loop keeps the room of a turn that follows a pass without a stop, ``EASE_TURN_MARGIN_M``, so it cannot end
    on the outer line itself), against the Y turn's reverse arc and straight (6-7 m at a right angle, 8-15 m at
    sharper corners of the outer pass on the seeded fields). The candidate that reverses least and fits:
    ``(pieces, reverse_m, a0, b[, a])`` as :func:`_y_manoeuvre`, or None."""
    a, b = _pass_ends(i, v, u, h, L, d, off, width_m, fp)
    leads = [([], 0.0)]
    if ease_radius_m > 0:
        leads += [_s_shift(inset, ease_radius_m) for inset in (0.3, 0.5, 0.8)]
    wide = fp.inset(EASE_TURN_MARGIN_M)
    cands = []                                       # (reverse_m, shift, reverse primitives, e)
    for shift in (0.0, 0.5, 0.8):
        s_rev, s_len = _s_shift(shift, r, forward=False, sign=-1.0) if shift > 0 else ([], 0.0)
        for s2 in np.arange(0.0, LOOP_BACK_MAX_M + 1e-9, LOOP_BACK_STEP_M):
            s2 = float(s2)
            prims = s_rev + ([(-s2, 0.0, 0.0)] if s2 > 1e-6 else [])
            back = float(sum(-q[0] for q in prims))
            if not prims or back < min_leg_m - 1e-9 or back > rmax:
                continue
            cands.append((back, shift, prims, b + s_len + s2))
    cands.sort(key=lambda c: c[0])
    # the loop's first sample is the pose after the lead and its last one (to rounding) the arrival pose on B: a lead
    # whose end, or an arrival pose whose machine, is not inside ``wide`` can give no loop that fits (on the outer
    # pass, where no loop-back fits at all, that rules out most of the Dubins paths tried before they are sampled).
    # The arrival test has 1 cm of slack (``near``), so only poses no loop could end at are ruled out
    starts = []
    for s_prims, ahead in leads:
        a0 = a - ahead
        if -a0 > L[i - 1] - 1.0:
            continue
        on_a = _lead_on_a(i, v, u, h, a0, s_prims, fp, step_m)
        if on_a is None or not wide.fits([on_a[2]]):
            continue
        starts.append((a0, on_a))
    if not starts:
        return None
    near = fp.inset(EASE_TURN_MARGIN_M - LOOP_BACK_SLACK_M)
    nb = np.array([-u[i][1], u[i][0]])               # B's left normal: into the field
    for back, shift, rev, e in cands:
        if e > L[i] - 1.0:
            continue
        q = np.array([*(v[i] + e * u[i] + shift * nb), h[i]])
        stop = q.copy()
        stop[:2] += CUSP_OVERSHOOT_M * u[i]
        if not fp.fits([q, stop]) or not near.fits([q]):
            continue
        for a0, (_p0, lead, start) in starts:
            for prims in T.dubins_candidates(start, q, r)[:4]:
                loop = T.sample_primitives(start, prims, step_m)
                # no stop before the loop (it follows the pass): the tracker's steering lag carries it wider
                if not _fits(wide, _poses(loop)):
                    continue
                smp = T.sample_primitives(start, prims + rev, step_m)
                if not _fits(fp, _poses(smp)) or not _fits_stops(fp, smp):
                    continue
                if lead is None:
                    return [(smp, False)], back, a0, b
                return [(lead, True), (smp, False)], back, a0, b, a
    return None


def _s_shift(inset_m: float, radius_m: float, forward: bool = True, sign: float = 1.0):
    """An S of two opposite arcs of ``radius_m`` that moves the machine ``inset_m`` sideways (to the left for
    ``sign`` 1, driven forwards or in reverse): ``(primitives, length along the line)``."""
    psi = math.acos(max(-1.0, 1.0 - inset_m / (2.0 * radius_m)))
    k = sign / radius_m
    arc = radius_m * psi if forward else -radius_m * psi
    return [(arc, k, k), (arc, -k, -k)], 2.0 * radius_m * math.sin(psi)


def _lead_on_a(i, v, u, h, a0, s_prims, fp, step_m):
    """The end of the pass along A at ``a0`` from vertex ``i`` and the S ``s_prims`` from there (none: no lead):
    ``(p0, lead PathSamples or None, the pose after it)``, or None when the S does not fit."""
    p0 = np.array([*(v[i] + a0 * u[i - 1]), h[i - 1]])
    lead = T.sample_primitives(p0, s_prims, step_m) if s_prims else None
    if lead is not None and not fp.fits(_poses(lead)):
        return None
    return p0, lead, (np.array([*lead.xy[-1], lead.yaw[-1]]) if lead is not None else p0)


def _loop_corner(i, v, u, h, L, d, r, off, width_m, fp, step_m):
    """A corner worked without reversing, where there is room beside the pass (an inner headland pass: the outer
    pass's strip lies between it and the boundary): the pass along A runs on as far into the corner as the whole
    machine fits, a forward (Dubins) loop with the implement raised - mostly out over the ground already worked -
    brings the machine onto B as far back into the corner as it fits arriving forwards. The trailing implement goes
    down where it reaches B's start (about ``implement_offset`` less deep than after reversing into the corner).
    ``([(PathSamples, False)], 0.0, a, b)`` as :func:`_y_manoeuvre`, or None when no loop fits."""
    a_deep, b_deep = _pass_ends(i, v, u, h, L, d, off, width_m, fp, deep=True)
    a_t, b_t = _pass_ends(i, v, u, h, L, d, off, width_m, fp, deep=False)
    wide = fp.inset(EASE_TURN_MARGIN_M)
    a_c = sorted({a_deep, 0.5 * (a_deep + a_t), a_t}, reverse=True)
    b_c = sorted({b_deep, 0.5 * (b_deep + b_t), b_t})
    for b in b_c:
        p1 = np.array([*(v[i] + b * u[i]), h[i]])
        if b > L[i] - 1.0:
            continue
        for a in a_c:
            if -a > L[i - 1] - 1.0:
                continue
            p0 = np.array([*(v[i] + a * u[i - 1]), h[i - 1]])
            for prims in T.dubins_candidates(p0, p1, r)[:4]:
                smp = T.sample_primitives(p0, prims, step_m)
                if _fits(wide, _poses(smp)):
                    return [(smp, False)], 0.0, a, b
    return None


def _reverse_len(s: T.PathSamples) -> float:
    """Metres of ``s`` driven in reverse."""
    if len(s.yaw) < 2:
        return 0.0
    seg = np.hypot(*np.diff(s.xy, axis=0).T)
    return float(np.sum(seg[s.direction[1:] < 0]))


def _a_band(d: float, a_ref: float, a_m: float, b_m: float, off: float, width_m: float) -> float:
    """Area (m^2) the trailing bar of a pass along A that ends at ``a_m`` instead of ``a_ref`` (base_link, along A from
    the vertex, :func:`_pass_ends`) works more, less what the pass along B starting at ``b_m`` works of it: the bar
    (``width_m`` across, 0.8 m deep, its back ``off`` + 0.4 m behind base_link) swept over the extra length, minus B's
    strip from the bar's back at B's start on. Local frame of :func:`three_point_corner`."""
    if a_m <= a_ref + 1e-6:
        return 0.0
    hw = 0.5 * width_m
    ext = shapely.box(a_ref - off + 0.4, -hw, a_m - off + 0.4, hw)
    c, s = math.cos(d), math.sin(d)
    s0, s1 = b_m - off - 0.4, b_m - off - 0.4 + 100.0
    strip = shapely.Polygon([(c * x - s * y, s * x + c * y) for x, y in ((s0, -hw), (s1, -hw), (s1, hw), (s0, hw))])
    return float(ext.difference(strip).area)


#: how far round a corner's vertex (m) :func:`_corner_sweep` compares what the ring works with and without a manoeuvre
SWEEP_RADIUS_M = 30.0


def _corner_sweep(i, v, u, off: float, width_m: float, a: float, b: float, pieces) -> object:
    """What the trailing bar (``width_m`` wide, ``off`` behind base_link) works round vertex ``i`` when the pass
    along A ends at ``a`` (along A from the vertex), the pass along B starts at ``b`` and ``pieces``'s working pieces
    between are worked: the three as strips of the bar's path (as the tests' implement strips), within
    :data:`SWEEP_RADIUS_M` of the vertex."""
    from shapely.geometry import LineString

    hw = 0.5 * width_m
    ua, ub = np.asarray(u[i - 1]), np.asarray(u[i])
    far = SWEEP_RADIUS_M + 5.0
    parts = [LineString([v[i] + (a - far - off) * ua, v[i] + (a - off) * ua]).buffer(hw, cap_style="flat"),
             LineString([v[i] + (b - off) * ub, v[i] + (b + far - off) * ub]).buffer(hw, cap_style="flat")]
    for smp, working in pieces:
        if working and len(smp.xy) > 1:
            q = smp.xy - off * np.column_stack([np.cos(smp.yaw), np.sin(smp.yaw)])
            parts.append(LineString(q).buffer(hw, cap_style="flat"))
    return shapely.union_all(parts)


def _swept_gain(i, v, u, width_m, fp, m, off, fallback) -> float:
    """:func:`_manoeuvre_gain` ``swept``: the area (m^2) of the field within :data:`SWEEP_RADIUS_M` of vertex ``i``
    that the ring works with manoeuvre ``m`` and not with ``fallback`` ``(a, b, pieces)`` (a working arc, an eased
    arc or a gap), less the other way round."""
    disc = shapely.Point(v[i]).buffer(SWEEP_RADIUS_M).intersection(fp.geom)
    with_m = _corner_sweep(i, v, u, off, width_m, m[2], m[3], m[0]).intersection(disc).area
    without = _corner_sweep(i, v, u, off, width_m, *fallback).intersection(disc).area
    return float(with_m - without)


def _manoeuvre_gain(i, v, u, h, L, d, r, width_m, fp, step_m, m, gap_at,
                    eased_at=None, b_ref: float | None = None, a_ref: float | None = None,
                    off: float = 0.0, swept: bool = False) -> tuple[float, float, bool]:
    """Area (m^2) a manoeuvre ``m`` at convex vertex ``i`` works more than what the ring does there without it,
    the metres that fallback reverses itself (a gap's S), and whether there is a fallback at all (else the ring
    cannot be driven without this manoeuvre).

    Without the manoeuvre the corner gets a working arc of the turning radius where the machine fits on it
    (the band outside the arc's swept strip is lost: ``(r + w/2)^2 (tan(d/2) - d/2)``), else a gap (:func:`_gap`):
    both passes stop short of the corner, ``w`` times the lengths they are cut back by more than the manoeuvre's
    own passes, plus the corner square; the rarely drivable case of neither counts as the whole corner square.
    A sharp corner on the outer pass usually gets a gap, which loses many times the arc's area: ranking by the arc
    alone spent a limited budget on shallow corners and left the sharp ones to long gaps. ``gap_at(i)``: the gap
    at vertex ``i`` (:func:`_gap`, cached by the caller).

    ``b_ref`` (where given): where the deepest pass along B that the corner's manoeuvres start from begins
    (:func:`_pass_ends`); a manoeuvre whose B starts further out (a cheaper Y turn, ``b_extra_m``) leaves the strip
    between, ``width * (b - b_ref)``, off its gain against a working or eased arc too (against a gap the cut-back
    already counts it). Without it every such variant scored the full manoeuvre's gain against an eased arc (e.g.
    81.6 m^2 for 10.0 and for 16.0 m reversed at a 137 deg corner of bench/farm_missions.py seed 13), so the ranking
    bought the cheapest, which leave 6 m^2 more per metre saved.

    ``a_ref`` (where given): where the pass along A ends without ``deep_a`` (:func:`_pass_ends`); a manoeuvre whose
    pass along A works on deeper (a deep-A Y turn) is credited what its bar works more there and B's strip does not
    (:func:`_a_band`) against a working or eased arc (against a gap the cut-back counts it already).

    ``swept``: the gain is what the bar's strips round the corner work with the manoeuvre and not with the fallback
    (:func:`_swept_gain`) instead of the formulas, which take the manoeuvre to work the whole corner: a Y turn leaves
    the triangle between B's first bar and edge A (the bar's field end meets A) and the strip beyond A's last bar (the
    nose meets B): 10.0-19.2 m^2 at 70-125 deg corners of the bench's machine against 10.6-52.5 m^2 for the eased arc,
    so it works 0.6 m^2 more at 70 deg, 2.4 at 80, 12.0 at 100 and 33.3 at 125, where the formula counted 6.3, 9.3,
    19.5 and 48.7 m^2."""
    short = width_m * max(0.0, m[3] - b_ref) if b_ref is not None else 0.0
    if a_ref is not None:
        short -= _a_band(d, a_ref, m[4] if len(m) > 4 else m[2], m[3], off, width_m)
    dd = min(d, math.radians(170.0))
    t = r * math.tan(0.5 * dd)
    arc = T.sample_primitives(np.array([*(v[i] - t * u[i - 1]), h[i - 1]]), [(r * dd, 1 / r, 1 / r)], step_m)
    if d < math.pi - 1e-3 and fp.fits(_poses(arc)):
        if swept:
            return _swept_gain(i, v, u, width_m, fp, m, off, (-t, t, [(arc, True)])), 0.0, True
        return (r + 0.5 * width_m) ** 2 * (math.tan(0.5 * dd) - 0.5 * dd) - short, 0.0, True
    ea = eased_at(i) if eased_at is not None else None
    if ea is not None and swept:
        return _swept_gain(i, v, u, width_m, fp, m, off, (ea[0], ea[1], [ea[2]])), 0.0, True
    if ea is not None:
        # the band outside the arc, plus the slivers the two S leave (half the inset along each)
        sliver = ea[4] if len(ea) > 4 else 0.5 * ea[3] * ((-ea[0]) + ea[1])
        return (r + 0.5 * width_m) ** 2 * (math.tan(0.5 * dd) - 0.5 * dd) + sliver - short, 0.0, True
    g = gap_at(i)
    if g is None:
        return width_m * width_m, 0.0, False
    if swept:
        return (_swept_gain(i, v, u, width_m, fp, m, off, g),
                sum(_reverse_len(q[0]) for q in g[2]), True)
    a_m = m[4] if len(m) > 4 else m[2]             # a pass that ends with a working S works on to the S's end
    return (width_m * (max(0.0, (-g[0]) - (-a_m)) + max(0.0, g[1] - m[3])) + width_m * width_m,
            sum(_reverse_len(q[0]) for q in g[2]), True)


@dataclass
class CornerRing:
    """A headland pass with worked corners: ``pieces`` (PathSamples, working) in driving order, closed (the
    last piece ends where the first starts); ``starts`` the piece indices where a working straight begins
    (where the ring may be entered)."""

    pieces: list
    starts: list
    n_manoeuvres: int = 0
    reverse_m: float = 0.0
    #: diagnostics (measuring only): per vertex where the ring turns ``(x, y, turn_deg, what works it)``
    vertices: list = dc_field(default_factory=list)
    #: with a reverse budget: per ring budget 0, 0.1, ... m the most its corners work more than their fallbacks (m^2,
    #: :func:`joint_budgets`); None where the ring was not ranked by the knapsack
    gain_curve: np.ndarray | None = None

    def rotated(self, k: int) -> list:
        return self.pieces[k:] + self.pieces[:k]

    def start_pose(self, k: int) -> np.ndarray:
        s = self.pieces[k][0]
        return np.array([*s.xy[0], s.yaw[0]])


def corner_ring(ring_xy, width_m: float, turn_radius_m: float, fp: Footprint, implement_offset_m: float,
                step_m: float = 0.5, min_angle_rad: float = math.radians(50.0), simplify_m: float = 0.3,
                max_reverse_m: float | None = None, min_leg_m: float = 0.0,
                budget_m: float | None = None, ease_radius_m: float = 0.0,
                sharpness_1pm2: float = 0.0, y_turns: bool = False,
                loop_back: bool = False, eased_arcs: bool = False, concave_gaps: bool = False,
                inset_edges: bool = False, partial_y_turns: bool = False,
                depth_gain: bool = False, eased_per_corner: bool = False,
                eased_per_side: bool = False, deep_a: bool = False, swept_gain: bool = False) -> CornerRing | None:
    """The headland pass along ``ring_xy`` (closed, counter-clockwise: field on the left) with worked corners.

    ``max_reverse_m``: the most one manoeuvre may reverse (default four turning radii); ``budget_m``: the most
    all manoeuvres of the ring may reverse together (None: no limit) - the corners that work most per metre
    reversed keep their manoeuvre, the others get a working arc or a gap as when no manoeuvre fits; every
    reversing piece (a gap's S too) counts against it, but only manoeuvres are given up for it: a gap that can leave
    the outer pass only by a reversing S keeps it (over the budget, rather than the rounded ring whose trailing
    implement leaves the field). ``ease_radius_m`` > 0: a gap shifts the machine off the
    outer pass by a gentle forward S of that radius where one fits, instead of reversing (:func:`_gap`).
    ``sharpness_1pm2`` > 0: the manoeuvres' forward turns ease in and out at that curvature rate
    (:func:`three_point_corner`). ``y_turns``: a sharp corner gets whichever of the three-point manoeuvre and the
    two-leg Y turn (:func:`_y_manoeuvre`) reverses less. ``loop_back`` (with ``y_turns``): a sharp corner may also
    get a forward loop onto B's line and one short straight reverse onto B's start (:func:`_loop_back_corner`) where
    that reverses less. ``eased_arcs`` (with ``ease_radius_m`` > 0): where a convex corner's working arc does not fit
    on the pass's own line, the arc on lines shifted into the field by gentle working S curves (:func:`_eased_arc`)
    before a gap: a shallow corner takes it instead of a Y turn, a sharp corner as the fallback of its manoeuvre
    (nothing reversed). ``concave_gaps``: where the corners would eat an edge that ends at a concave corner, that corner
    is joined by its gap (both passes on into the field past it, a forward loop between) instead of its working arc,
    whose tangent length (``radius tan(|turn|/2)``: 3.6 m at -77 deg with a 4.5 m radius) left nothing of a short edge
    between a concave and a sharp corner, so no corner ring was built at all (bench/farm_missions.py seeds 5 and 10).
    ``inset_edges``: every edge whose straight would take the machine out of the field (the simplified outline cuts a
    shallow dip of the pass's own line: 0.21 m on a 49 m edge of bench/farm_missions.py seed 2's outer pass, at every
    simplification) is moved into the field by as much, its ends where the moved lines meet their neighbours
    (:func:`_inset_edges`); without it such a pass builds no corner ring at all.
    ``partial_y_turns`` (with ``y_turns``): a sharp corner where no manoeuvre fits within ``max_reverse_m`` gets the
    Y turn whose pass along B starts least further out of the corner that does (``b_extra_m`` 1-10 m: the reverse
    straight onto B is that much shorter), instead of only its fallback. At the narrow spikes of the seeded fields
    (turns of 143-147 deg) the full Y turn reverses 18.7-20.8 m against the 18 m limit, and the fallback, a gap,
    leaves 50-75 m^2 (bench/farm_missions.py seeds 6, 7, 10, 12); 1-3 m further out it reverses 17.3-17.8 m.
    ``depth_gain``: the ranking charges a manoeuvre whose B starts further out than the deepest one the strip it
    leaves (:func:`_manoeuvre_gain` ``b_ref``) against a working or eased arc too.
    ``eased_per_corner`` (with ``eased_arcs``): where the corner pieces leave nothing of an edge and an end of it is
    worked on an eased arc, that end (the sharper of two) is built without its eased arc and the ring built again,
    instead of the whole pass being built without eased arcs. Their S curves reach 7.7-13.4 m along each edge: on the
    outer pass of bench/farm_missions.py seed 18 the eased arcs of a 36 and a 55 deg corner overlap on the 17.9 m edge
    between them, and without any eased arc its 21, 28 and 36 deg corners took Y turns (1.5-5.5 m each): the ring
    needed more than 20 m and the planner kept the rounded one.

    Returns None when some part cannot be driven with the footprint inside the field (short edges between
    corners, no manoeuvre that fits): the caller keeps the rounded ring then.
    """
    if eased_arcs:
        # the eased arcs' S curves are long (7.75 m each side at 0.3 m): where they eat an edge the ring cannot be
        # built with them; then it is built as without them (never a rounded ring where a corner ring was built)
        ring = _corner_ring(ring_xy, width_m, turn_radius_m, fp, implement_offset_m, step_m, min_angle_rad,
                            simplify_m, max_reverse_m, min_leg_m, budget_m, ease_radius_m, sharpness_1pm2, y_turns,
                            loop_back, True, concave_gaps, inset_edges, partial_y_turns, depth_gain, eased_per_corner,
                            eased_per_side, deep_a, swept_gain)
        if ring is not None:
            return ring
    return _corner_ring(ring_xy, width_m, turn_radius_m, fp, implement_offset_m, step_m, min_angle_rad, simplify_m,
                        max_reverse_m, min_leg_m, budget_m, ease_radius_m, sharpness_1pm2, y_turns, loop_back,
                        False, concave_gaps, inset_edges, partial_y_turns, depth_gain, deep_a=deep_a,
                        swept_gain=swept_gain)


def _inset_edges(v, fp: Footprint, step_m: float, end_m: float, slack_m: float = 0.01):
    """The counter-clockwise ring ``v`` with each edge whose straight (the machine on it, headed along it, ``end_m``
    clear of either end, where the corner pieces take over) leaves ``fp``'s field moved into the field by its largest
    excess plus ``slack_m``; each vertex where its two edges' (moved) lines meet. None when a moved edge turns round
    (the ring cannot keep its shape)."""
    n = len(v)
    e = np.roll(v, -1, axis=0) - v
    L = np.hypot(e[:, 0], e[:, 1])
    if np.any(L < 1e-6):
        return None
    u = e / L[:, None]
    nrm = np.column_stack([-u[:, 1], u[:, 0]])            # into the field (counter-clockwise ring)
    shift = np.zeros(n)
    for i in range(n):
        if L[i] <= 2.0 * end_m + step_m:
            continue
        q = _poses(_straight(v[i] + end_m * u[i], v[i] + (L[i] - end_m) * u[i], step_m))
        if fp.outside_mask(q).any():
            shift[i] = float(fp.excess(q).max()) + slack_m
    if not shift.any():
        return v
    base = v + shift[:, None] * nrm                     # a point on each edge's moved line
    new = np.empty_like(v)
    for j in range(n):
        i = j - 1
        A = np.column_stack([u[i], -u[j]])
        if abs(float(np.linalg.det(A))) < 1e-9:         # collinear neighbours: the vertex moves with its own edge
            new[j] = v[j] + max(shift[i], shift[j]) * nrm[j]
            continue
        t = np.linalg.solve(A, base[j] - base[i])[0]
        new[j] = base[i] + t * u[i]
    e2 = np.roll(new, -1, axis=0) - new
    if np.any(np.einsum("ij,ij->i", e2, u) <= 1e-6):
        return None
    return new


def _corner_ring(ring_xy, width_m, turn_radius_m, fp, implement_offset_m, step_m, min_angle_rad, simplify_m,
                 max_reverse_m, min_leg_m, budget_m, ease_radius_m, sharpness_1pm2, y_turns, loop_back,
                 eased_arcs, concave_gaps: bool = False, inset_edges: bool = False, partial_y_turns: bool = False,
                 depth_gain: bool = False, eased_per_corner: bool = False,
                 eased_per_side: bool = False, deep_a: bool = False, swept_gain: bool = False) -> CornerRing | None:
    """:func:`corner_ring` with ``eased_arcs`` as given (no retry without them)."""
    lr = LinearRing(np.asarray(ring_xy, dtype=float)[:, :2])
    lr = lr.simplify(simplify_m)
    v = np.asarray(lr.coords)[:-1]
    n = len(v)
    if n < 3:
        return None
    if LinearRing(v).is_ccw is False:
        v = v[::-1]
    if inset_edges:
        v = _inset_edges(v, fp, step_m, 2.0 * float(turn_radius_m))
        if v is None:
            return None
    e = np.roll(v, -1, axis=0) - v                      # edge i: v[i] -> v[i+1]
    L = np.hypot(e[:, 0], e[:, 1])
    if np.any(L < 1e-6):
        return None
    u = e / L[:, None]
    # turn at vertex i, from edge i-1 to edge i (+ left = convex for a counter-clockwise ring)
    h = np.arctan2(u[:, 1], u[:, 0])
    turn = T.wrap_angle(h - np.roll(h, 1))
    r = float(turn_radius_m)
    off = float(implement_offset_m)
    rmax = max_reverse_m if max_reverse_m is not None else 4.0 * r
    mcache, mkind = {}, {}

    def man(i):
        if i not in mcache:
            if y_turns and float(turn[i]) >= min_angle_rad:     # (a shallow corner's loop is a gap in all but name)
                lp = _loop_corner(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m)
                if lp is not None:
                    mcache[i], mkind[i] = lp, "loop"
                    return lp
            m = _manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                           sharpness_1pm2)
            if m is not None:
                m = ([(m[0], False)], *m[1:])
                mkind[i] = "three_point"
            if y_turns:
                # a shallow corner (no working arc fits: the outer pass) has no corner square to speak of: both passes
                # as far into the corner as the machine fits, else the strip between them stays unworked
                y = _y_manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                                 sharpness_1pm2, ease_radius_m, deep=True) if float(turn[i]) < min_angle_rad else None
                if y is None:
                    y = _y_manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                                     sharpness_1pm2, ease_radius_m)
                if y is not None and (m is None or y[1] < m[1] - 1e-6 or float(turn[i]) < min_angle_rad):
                    m = y
                    mkind[i] = "y_turn"
                if loop_back and float(turn[i]) >= min_angle_rad and (m is None or m[1] > min_leg_m + 1e-6):
                    lb = _loop_back_corner(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m,
                                           m[1] if m is not None else rmax, ease_radius_m)
                    if lb is not None and (m is None or lb[1] < m[1] - 1e-6):
                        m = lb
                        mkind[i] = "loop_back"
                if m is None and partial_y_turns and float(turn[i]) >= min_angle_rad:
                    for extra in PARTIAL_Y_EXTRA_M:
                        m = _y_manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                                         sharpness_1pm2, ease_radius_m, b_extra_m=extra)
                        if m is not None:
                            mkind[i] = f"partial_y {extra:g}"
                            break
            mcache[i] = m
        return mcache[i]

    def variants(i, only_deep: bool = False, deep: bool = True):
        """Y turns at vertex ``i`` other than :func:`man`'s: the deep one (both passes as far into the corner as the
        machine fits), then ones that start B 1-10 m less deep (cheaper), each only where it reverses differently."""
        m = man(i)
        if m is None or m[1] <= 1.0:
            return []
        out = []
        dp = _y_manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                          sharpness_1pm2, ease_radius_m, deep=True) if deep else None
        if dp is not None and dp[1] > m[1] + 0.3:
            out.append(dp)
        if only_deep:
            return out
        if deep_a:
            da = _y_manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                              sharpness_1pm2, ease_radius_m, deep_a=True)
            if da is not None:
                out.append(da)
        cheapest = m[1]
        for extra in PARTIAL_Y_EXTRA_M:
            y = _y_manoeuvre(i, v, u, h, L, float(turn[i]), r, off, width_m, fp, step_m, min_leg_m, rmax,
                             sharpness_1pm2, ease_radius_m, b_extra_m=extra)
            if y is not None and y[1] < cheapest - 0.3:
                out.append(y)
                cheapest = y[1]
        return out

    ends = {}

    def pass_ends(i):
        """:func:`_pass_ends` of vertex ``i`` (not ``deep``), computed once."""
        if i not in ends:
            ends[i] = _pass_ends(i, v, u, h, L, float(turn[i]), off, width_m, fp)
        return ends[i]

    def b_ref(i):
        """Where the deepest pass along B of vertex ``i``'s manoeuvres starts (``depth_gain``), else None."""
        return pass_ends(i)[1] if depth_gain else None

    def a_ref(i):
        """Where the pass along A of vertex ``i`` ends without ``deep_a`` (``deep_a``), else None."""
        return pass_ends(i)[0] if deep_a else None

    gcache = {}

    def gap_at(i):
        if i not in gcache:
            gcache[i] = _gap(v[i], u[i - 1], u[i], L[i - 1], L[i], float(turn[i]), r, fp, step_m, ease_radius_m)
        return gcache[i]

    ecache = {}

    def eased_at(i):
        if not eased_arcs:
            return None
        if i not in ecache:
            ecache[i] = _eased_arc(v[i], u[i - 1], u[i], L[i - 1], L[i], float(turn[i]), r, fp, step_m,
                                   ease_radius_m, per_side=eased_per_side)
        return ecache[i]

    last_kinds = [""] * n                                  # what worked each vertex in the last ring tried

    def build(barred, pick=None):
        """The ring with a manoeuvre at every sharp convex corner not in ``barred`` (``pick[i]`` where given, else
        the deepest, :func:`man`); None when it cannot be driven.
        Its ``reverse_m`` counts every reversing piece: manoeuvres and the short S a gap may start with.
        ``concave_gaps``: where the corners eat an edge that ends at a concave corner worked on an arc, that corner
        gets its gap instead (the passes run on past it into the field, a loop joins them) and the ring is built
        again."""
        looped, plain = set(), set()
        while True:
            ring = _build(barred, pick, looped, plain)
            if not isinstance(ring, int):
                return ring
            # edge ``ring`` eaten: its concave ends that still have an arc take their gap
            ends = [k for k in (ring, (ring + 1) % n) if float(turn[k]) < -1e-3 and k not in looped]
            if concave_gaps and ends and all(gap_at(k) is not None for k in ends):
                looped.update(ends)
                continue
            # ``eased_per_corner``: else an end worked on an eased arc gives it up (the sharper of two), so the rest of
            # the ring keeps theirs
            eased = [k for k in (ring, (ring + 1) % n) if last_kinds[k] == "eased_arc"] if eased_per_corner else []
            if not eased:
                return None
            plain.add(max(eased, key=lambda k: float(turn[k])))

    def _build(barred, pick, looped, plain=frozenset()):
        """:func:`build` with the concave corners ``looped`` given their gaps; the index of an edge the corners eat
        (an int) where that stops it."""
        # per vertex: how far before it edge i-1 ends ("a", along u[i-1], signed) and after it edge i starts ("b")
        a_ext = np.zeros(n)
        b_ext = np.zeros(n)
        n_man, rev = 0, 0.0
        corner = [None] * n                                # per vertex: PathSamples of the corner piece
        kinds = [""] * n                                   # per vertex: what works it (CornerRing.vertices)

        def place_gap(i) -> bool:
            """A gap at vertex ``i`` (the pass breaks, a connection with the implement raised); False: none fits."""
            nonlocal rev
            gap = gap_at(i)
            if gap is None:
                return False
            a_ext[i], b_ext[i], corner[i] = gap
            rev += sum(_reverse_len(q[0]) for q in gap[2])
            kinds[i] = "gap"
            return True

        for i in range(n):
            d = float(turn[i])
            if abs(d) <= 1e-3:
                continue
            if i in looped:
                place_gap(i)
                continue
            if d < min_angle_rad:
                # a working arc of the turning radius (concave, or shallow convex) when the machine fits on it
                t = r * math.tan(0.5 * abs(d))
                k = 1.0 / r if d > 0 else -1.0 / r
                arc = T.sample_primitives(np.array([*(v[i] - t * u[i - 1]), h[i - 1]]), [(r * abs(d), k, k)],
                                          step_m)
                if fp.fits(_poses(arc)):
                    a_ext[i], b_ext[i], corner[i] = -t, t, (arc, True)
                    kinds[i] = "arc"
                    continue
                if d > 0 and i not in plain and eased_at(i) is not None:
                    a_ext[i], b_ext[i], corner[i] = eased_at(i)[:3]
                    kinds[i] = "eased_arc"
                    continue
                if d < 0:
                    if not place_gap(i):
                        return None
                    continue
            best = None if i in barred else (pick[i] if pick and i in pick else man(i))
            if best is None:
                # no manoeuvre fits: a working arc of the turning radius when the machine fits on it
                t = r * math.tan(0.5 * abs(d))
                arc = T.sample_primitives(np.array([*(v[i] - t * u[i - 1]), h[i - 1]]),
                                          [(r * abs(d), 1 / r, 1 / r)], step_m)
                if d < math.pi - 1e-3 and fp.fits(_poses(arc)):
                    a_ext[i], b_ext[i], corner[i] = -t, t, (arc, True)
                    kinds[i] = "arc"
                    continue
                if i not in plain and eased_at(i) is not None:
                    a_ext[i], b_ext[i], corner[i] = eased_at(i)[:3]
                    kinds[i] = "eased_arc"
                    continue
                # nor an arc: the pass breaks here (the corner is left to the clean-up passes) and a forward
                # connection with the implement raised joins the two straights, the rest of the ring keeps its
                # corners
                if not place_gap(i):
                    return None
                continue
            a_ext[i], b_ext[i], corner[i] = best[2], best[3], best[0]
            rev += best[1]
            n_man += 1
            kinds[i] = (mkind.get(i, "") if best is mcache.get(i) else "y_variant") + f" {best[1]:.2f}"
        last_kinds[:] = kinds
        pieces, starts = [], []
        for i in range(n):
            j = (i + 1) % n
            p0 = v[i] + b_ext[i] * u[i]
            p1 = v[j] + a_ext[j] * u[i]
            if float(np.dot(p1 - p0, u[i])) < step_m:
                return i                                      # the corners eat the whole edge
            straight = _straight(p0, p1, step_m)
            if not fp.fits(_poses(straight)):
                return None
            starts.append(len(pieces))
            pieces.append((straight, True))
            if isinstance(corner[j], list):
                pieces.extend(corner[j])
            elif corner[j] is not None:
                pieces.append(corner[j])
        ring = CornerRing(pieces, starts, n_man, rev)
        # diagnostics: per vertex where the ring turns, what works it and whether a manoeuvre would have fitted
        ring.vertices = [(float(v[i][0]), float(v[i][1]), math.degrees(float(turn[i])),
                          kinds[i] + (" barred" if i in barred and mcache.get(i) is not None else "")
                          + (" no_fit" if float(turn[i]) >= min_angle_rad and i in mcache and mcache[i] is None
                             else ""))
                         for i in range(n) if abs(float(turn[i])) > 1e-3]
        return ring

    if budget_m is None:
        if y_turns:                                 # no limit: the deep Y turns where they fit
            deep = {}
            for i in range(n):
                if float(turn[i]) >= min_angle_rad and man(i) is not None:
                    vs = variants(i, only_deep=True)
                    if vs and vs[0][1] > man(i)[1] and vs[0][3] <= man(i)[3] + 1e-9:
                        deep[i] = vs[0]
            ring = build(set(), deep)
            if ring is not None:
                return ring
        return build(set())
    # what each manoeuvre would reverse (less what its fallback, a gap, may reverse) and what it works more than
    # its fallback (:func:`_manoeuvre_gain`): the best ratio first while the budget lasts; then, while the ring
    # with its gaps' reversing is still over the budget, the worst-ratio manoeuvres left go too. A manoeuvre
    # without a fallback (neither an arc nor a gap fits there) is paid first: without it the ring cannot be
    # driven; when the budget cannot pay for it the ring is None (the caller keeps the rounded ring)
    cost, forced = {}, set()
    for i in range(n):
        d = float(turn[i])
        if d >= min_angle_rad:
            m = man(i)
            if m is not None:
                gain, fallback_rev, has_fallback = _manoeuvre_gain(i, v, u, h, L, d, r, width_m, fp, step_m, m,
                                                                   gap_at, eased_at, b_ref(i), a_ref(i), off,
                                                                   swept_gain)
                cost[i] = (max(m[1] - fallback_rev, 0.0), gain)
                if not has_fallback:
                    forced.add(i)
    order = sorted(cost, key=lambda i: (i not in forced, -cost[i][1] / max(cost[i][0], 0.1)))
    barred, pick = set(), {}
    curve = []
    chosen = _allocate(cost, forced, order, budget_m, build, man, y_turns, lambda i, m: _manoeuvre_gain(
        i, v, u, h, L, float(turn[i]), r, width_m, fp, step_m, m, gap_at, eased_at, b_ref(i), a_ref(i), off,
        swept_gain),
        variants,
        curve_out=curve)
    if chosen is not None:
        barred, pick = chosen
        for i, m in pick.items():
            g, fb, _ = _manoeuvre_gain(i, v, u, h, L, float(turn[i]), r, width_m, fp, step_m, m, gap_at, eased_at,
                                       b_ref(i), a_ref(i), off, swept_gain)
            cost[i] = (max(m[1] - fb, 0.0), g)
        order = sorted(cost, key=lambda i: (i not in forced, i in barred, -cost[i][1] / max(cost[i][0], 0.1)))
    else:
        # the greedy ranking's gain per ring budget (joint_budgets), as it would take the corners at each budget
        grid = np.arange(int(math.floor(float(budget_m) / 0.1 + 1e-9)) + 1) * 0.1
        g = np.zeros(len(grid))
        room = grid.copy()
        for i in order:
            take = cost[i][0] <= room + 1e-9
            if i in forced:
                g[~take] = -np.inf
            g[take] += cost[i][1]
            room[take] -= cost[i][0]
        curve.append(g)
        left = float(budget_m)
        for i in order:
            if cost[i][0] <= left:
                left -= cost[i][0]
            elif i in forced:
                return None                             # the budget cannot pay for a corner the ring needs
            else:
                barred.add(i)
    ring = build(barred, pick)
    while ring is None and barred:                  # fallbacks side by side may eat an edge: give the best back
        barred.discard(min(barred, key=lambda i: order.index(i)))
        ring = build(barred, pick)
    kept = [i for i in order if i not in barred and i not in forced]
    while ring is not None and ring.reverse_m > budget_m + 1e-6 and kept:
        i = kept.pop()
        fewer = build(barred | {i}, pick)
        if fewer is None:
            continue
        barred.add(i)
        ring = fewer
    if ring is not None and ring.n_manoeuvres and ring.reverse_m > budget_m + 1e-6:
        return None                                 # only with manoeuvres that cannot go: over the budget
    if ring is not None and curve:
        ring.gain_curve = curve[0]
    return ring


def _allocate(cost, forced, order, budget_m, build, man, y_turns, gain_of, variants, step_m: float = 0.1,
              curve_out: list | None = None):
    """With ``y_turns``: which sharp corners get which manoeuvre within ``budget_m`` (``(barred, pick)`` for
    ``build``), or None (the caller ranks greedily, as without Y turns). Each corner may take its manoeuvre (``man``),
    one of ``variants(i)``'s cheaper Y turns that start B less deep (the reverse straight onto B is shorter, the
    corner a strip less worked), or its fallback (the deep Y turn is left out: offered too, it scored worse on the
    tuning fields, 2.38 against 2.29 % of the field unworked in corners; ranking every option, the deep one
    included, by the area the implement actually sweeps round the corner as the mission lowers it, instead of
    :func:`_manoeuvre_gain`'s formula, was measured too and moved nothing: farm_missions tuning seeds 0-19, plan swept
    as the mission works it, 96.06 % either way at 30 m, 97.51 against 97.52 % with free reversing: figures from
    before the eased arcs, now the fallback of most sharp corners, against which the formulas overrate a Y turn most;
    ``swept`` in :func:`_manoeuvre_gain` ranks by the strips round the corner); the choice
    that works most in all within
    the budget (a multiple-choice knapsack, exact on a ``step_m`` grid of metres reversed). What the fallbacks
    themselves reverse (a gap's S) is taken off the budget first: the ring with every corner that has a fallback
    left to it."""
    if not y_turns or not cost:
        return None
    base = build({i for i in cost if i not in forced})
    if base is None:
        return None
    left = float(budget_m) - base.reverse_m
    if left < 0:
        return None
    units = int(math.floor(left / step_m + 1e-9))
    items = []
    for i in order:
        m = man(i)
        opts = [(cost[i][0], cost[i][1], m)]
        _, fb_rev, _ = gain_of(i, m)
        for y in variants(i, deep=False):
            opts.append((max(y[1] - fb_rev, 0.0), gain_of(i, y)[0], y))
        items.append((i, opts))
    neg = -1e18
    dp = np.full(units + 1, neg)
    dp[0] = 0.0
    choice = []
    for i, opts in items:
        new = np.full(units + 1, neg)
        arg = np.full(units + 1, -2, int)
        if i not in forced:
            new[:] = dp
            arg[:] = -1
        for k, (c, g, _) in enumerate(opts):
            cu = int(math.ceil(c / step_m - 1e-9))
            if cu > units:
                continue
            cand = np.full(units + 1, neg)
            cand[cu:] = dp[:units + 1 - cu] + g
            better = cand > new
            new[better] = cand[better]
            arg[better] = k
        choice.append(arg)
        dp = new
    if dp.max() <= neg / 2:
        return None
    if curve_out is not None:
        # the most the ring's corners work more than their fallbacks (m^2) within each ring budget 0, step_m, ...,
        # budget_m (-inf below what the ring needs): what a budget shared between rings weighs (joint_budgets)
        off = int(math.ceil(base.reverse_m / step_m - 1e-9))
        g = np.full(int(math.floor(float(budget_m) / step_m + 1e-9)) + 1, -np.inf)
        best = np.maximum.accumulate(np.where(dp > neg / 2, dp, -np.inf))
        g[off:off + len(best)] = best[:len(g) - off]
        curve_out.append(g)
    c = int(np.argmax(dp))
    barred, pick = set(), {}
    for (i, opts), arg in zip(reversed(items), reversed(choice)):
        k = int(arg[c])
        if k == -1:
            barred.add(i)
            continue
        pick[i] = opts[k][2]
        c -= int(math.ceil(opts[k][0] / step_m - 1e-9))
    return barred, pick


def joint_budgets(curves, budget_m: float, step_m: float = 0.1) -> list | None:
    """Per ring the share of a reverse budget ``budget_m`` shared by several corner rings (the headland passes) that
    works most in all: ``curves`` the rings' :attr:`CornerRing.gain_curve` (gain per ring budget on a ``step_m`` grid);
    returns each ring's budget (m), or None when some ring has no curve or no split affords every ring. Ranking each
    pass on what the passes before it left (outer pass first) spent the budget on outer-pass Y turns (2-18 m each)
    while inner-pass loop-backs (1.5-3 m) that work more per metre reversed got nothing."""
    if not curves or any(c is None for c in curves):
        return None
    units = int(math.floor(budget_m / step_m + 1e-9))
    neg = -np.inf
    dp = np.zeros(units + 1)
    picks = []
    for c in curves:
        cu = np.full(units + 1, neg)
        m = min(len(c), units + 1)
        cu[:m] = c[:m]
        if m < units + 1 and m:
            cu[m:] = c[m - 1]                      # more budget than the ring was ranked with: no more gain
        new = np.full(units + 1, neg)
        arg = np.zeros(units + 1, int)
        for b in range(units + 1):
            tot = dp[b::-1][:b + 1] + cu[:b + 1]   # dp[b - j] + cu[j]
            j = int(np.argmax(tot))
            new[b], arg[b] = tot[j], j
        dp = new
        picks.append(arg)
    if not np.isfinite(dp[units]):
        return None
    out, b = [], units
    for arg in reversed(picks):
        j = int(arg[b])
        out.append(j * step_m)
        b -= j
    return out[::-1]
