"""Drivable turns with a minimum turning radius: Dubins, curvature-continuous Dubins, Reeds-Shepp.

A path is a list of primitives ``(length_m, kappa_start_1pm, kappa_end_1pm)`` with a *signed* length:
negative length means the vehicle drives in reverse. Along a primitive the steering curvature changes
linearly with arc length (constant for arcs and lines, linear for clothoids), and the heading changes by
``kappa * ds`` with the signed ``ds`` (so a reversing left arc turns the vehicle clockwise).

Formulas: Dubins words from Shkel & Lumelsky (2001, normalised ``alpha, beta, d`` form); Reeds-Shepp
formulas 8.1 (CSC, same side), 8.2 (CSC, opposite sides) and 8.3 (C|C|C) of Reeds & Shepp (1990) with
their time-flip / reflection / backwards symmetries; curvature-continuous turns after Fraichard & Scheuer
(2004): every arc is replaced by an elementary turn clothoid-arc-clothoid whose curvature rate is bounded
by ``max_curvature_rate_1pm2``, solved for the CSC words numerically (1-D root search, all side
combinations at once) and, in closed form on their CC circles, for the CSC and CCC words (CCC where the start
and goal circles are too close for a straight: a goal just ahead, an adjacent swath); :func:`dubins_cc_lengths`
is the cheap closed-form estimate (CC circles) used to cost many pairs before the chosen ones are solved
exactly.

Poses are ``[x_m, y_m, yaw_rad]`` in any metric frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agricare.core.geometry import wrap_angle

TWO_PI = 2.0 * math.pi

#: a primitive: (signed length m, curvature at start 1/m, curvature at end 1/m)
Primitive = tuple[float, float, float]


def _mod2pi(a):
    return np.mod(a, TWO_PI)


@dataclass
class PathSamples:
    """A sampled path.

    Attributes
    ----------
    xy : ndarray, shape (N, 2)
        Positions, metres.
    yaw : ndarray, shape (N,)
        Vehicle heading, radians (not the direction of motion when reversing).
    kappa : ndarray, shape (N,)
        Steering curvature, 1/m (positive = steering left).
    direction : ndarray, shape (N,), int8
        +1 forward, -1 reverse (direction of the motion arriving at / leaving the sample).
    length_m : float
        Driven length (reverse counted positive).
    """

    xy: np.ndarray
    yaw: np.ndarray
    kappa: np.ndarray
    direction: np.ndarray
    length_m: float

    @property
    def n_cusps(self) -> int:
        d = self.direction
        return int(np.count_nonzero(d[1:] != d[:-1])) if len(d) > 1 else 0


def primitives_length(prims) -> float:
    return float(sum(abs(p[0]) for p in prims))


def _advance(pose, length, k0, k1, n_sub=24):
    """End pose after one primitive (exact for arcs/lines, Simpson-integrated for clothoids)."""
    x, y, th = pose
    if abs(length) < 1e-12:
        return (x, y, th)
    if abs(k1 - k0) < 1e-12:
        k = k0
        if abs(k) < 1e-9:
            return (x + length * math.cos(th), y + length * math.sin(th), th)
        th1 = th + k * length
        return (x + (math.sin(th1) - math.sin(th)) / k, y - (math.cos(th1) - math.cos(th)) / k, th1)
    s = np.linspace(0.0, length, 2 * n_sub + 1)
    a = (k1 - k0) / length
    ang = th + k0 * s + 0.5 * a * s * s
    w = np.ones_like(s)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    h = length / (2 * n_sub) / 3.0
    return (x + h * float(np.dot(w, np.cos(ang))), y + h * float(np.dot(w, np.sin(ang))),
            th + k0 * length + 0.5 * a * length * length)


def _clothoid_points(pose, length, k0, k1, n, sub=16):
    """Poses at ``length * (1..n) / n`` along a clothoid from ``pose`` (vectorised, O(h^4) accurate).

    Cumulative trapezoid rule over ``sub`` steps per sample with the Euler-Maclaurin end correction.
    """
    m = n * sub
    u = np.linspace(0.0, length, m + 1)
    a = (k1 - k0) / length
    ang = pose[2] + k0 * u + 0.5 * a * u * u
    dang = k0 + a * u
    c, s = np.cos(ang), np.sin(ang)
    h = length / m
    x = np.concatenate([[0.0], np.cumsum(0.5 * h * (c[1:] + c[:-1]))])
    y = np.concatenate([[0.0], np.cumsum(0.5 * h * (s[1:] + s[:-1]))])
    # trapezoid correction -h^2/12 (f'(u) - f'(0)), f' = -sin(ang) ang' resp. cos(ang) ang'
    x -= h * h / 12.0 * (-s * dang + math.sin(pose[2]) * k0)
    y -= h * h / 12.0 * (c * dang - math.cos(pose[2]) * k0)
    idx = np.arange(1, n + 1) * sub
    return pose[0] + x[idx], pose[1] + y[idx], ang[idx]


def end_pose(start, prims) -> np.ndarray:
    """Pose reached from ``start`` after the primitives."""
    pose = (float(start[0]), float(start[1]), float(start[2]))
    for length, k0, k1 in prims:
        pose = _advance(pose, length, k0, k1)
    return np.array([pose[0], pose[1], wrap_angle(pose[2])])


def sample_primitives(start, prims, step_m: float = 0.25) -> PathSamples:
    """Sample a primitive sequence every ``step_m`` metres at most (both ends included)."""
    if step_m <= 0:
        raise ValueError("step_m must be > 0")
    xs, ys, ths, ks, ds = [np.array([float(start[0])])], [np.array([float(start[1])])], \
        [np.array([float(start[2])])], [], []
    pose = (float(start[0]), float(start[1]), float(start[2]))
    first_k = None
    for length, k0, k1 in prims:
        if abs(length) < 1e-9:
            continue
        if first_k is None:
            first_k = k0
        n = max(1, int(math.ceil(abs(length) / step_m - 1e-9)))
        gear = 1 if length > 0 else -1
        sv = length * np.arange(1, n + 1) / n
        if abs(k1 - k0) < 1e-12:
            th = pose[2] + k0 * sv
            if abs(k0) < 1e-9:
                px = pose[0] + sv * math.cos(pose[2])
                py = pose[1] + sv * math.sin(pose[2])
            else:
                px = pose[0] + (np.sin(th) - math.sin(pose[2])) / k0
                py = pose[1] - (np.cos(th) - math.cos(pose[2])) / k0
            kk = np.full(n, k0)
        else:
            px, py, th = _clothoid_points(pose, length, k0, k1, n)
            kk = k0 + (k1 - k0) * np.arange(1, n + 1) / n
        xs.append(px)
        ys.append(py)
        ths.append(th)
        ks.append(kk)
        ds.append(np.full(n, gear, dtype=np.int8))
        pose = _advance(pose, length, k0, k1)
    xs, ys, ths = np.concatenate(xs), np.concatenate(ys), np.concatenate(ths)
    ks = list(np.concatenate(ks)) if ks else []
    ds = list(np.concatenate(ds)) if ds else []
    kappa = np.array([first_k if first_k is not None else 0.0] + ks)
    direction = np.array((ds[:1] or [1]) + ds, dtype=np.int8)
    return PathSamples(np.column_stack([xs, ys]), wrap_angle(np.array(ths)), kappa, direction,
                       primitives_length(prims))


def _to_local(start, goal):
    c, s = math.cos(start[2]), math.sin(start[2])
    dx, dy = goal[0] - start[0], goal[1] - start[1]
    return c * dx + s * dy, -s * dx + c * dy, float(wrap_angle(goal[2] - start[2]))


# ----------------------------------------------------------------------------------------------- Dubins
DUBINS_WORDS = ("LSL", "RSR", "LSR", "RSL", "RLR", "LRL")


def dubins_word_lengths(start, goal, radius_m: float) -> np.ndarray:
    """Normalised segment lengths ``(t, p, q)`` of the six Dubins words, vectorised.

    Parameters
    ----------
    start, goal : array_like, shape (N, 3) or (3,)
    radius_m : float

    Returns
    -------
    ndarray, shape (6, N, 3)
        ``[word, pair, segment]`` lengths in radius units (NaN where the word does not exist), words in
        :data:`DUBINS_WORDS` order.
    """
    s = np.atleast_2d(np.asarray(start, dtype=float))
    g = np.atleast_2d(np.asarray(goal, dtype=float))
    dx, dy = g[:, 0] - s[:, 0], g[:, 1] - s[:, 1]
    d = np.hypot(dx, dy) / radius_m
    phi = np.arctan2(dy, dx)
    a = _mod2pi(s[:, 2] - phi)
    b = _mod2pi(g[:, 2] - phi)
    sa, sb, ca, cb = np.sin(a), np.sin(b), np.cos(a), np.cos(b)
    cab = np.cos(a - b)
    out = np.full((6, len(d), 3), np.nan)
    with np.errstate(invalid="ignore"):
        # LSL
        p2 = 2 + d * d - 2 * cab + 2 * d * (sa - sb)
        tmp = np.arctan2(cb - ca, d + sa - sb)
        ok = p2 >= 0
        out[0] = np.where(ok[:, None], np.column_stack([_mod2pi(-a + tmp), np.sqrt(np.abs(p2)),
                                                         _mod2pi(b - tmp)]), np.nan)
        # RSR
        p2 = 2 + d * d - 2 * cab + 2 * d * (sb - sa)
        tmp = np.arctan2(ca - cb, d - sa + sb)
        ok = p2 >= 0
        out[1] = np.where(ok[:, None], np.column_stack([_mod2pi(a - tmp), np.sqrt(np.abs(p2)),
                                                         _mod2pi(-b + tmp)]), np.nan)
        # LSR
        p2 = -2 + d * d + 2 * cab + 2 * d * (sa + sb)
        p = np.sqrt(np.abs(p2))
        tmp = np.arctan2(-ca - cb, d + sa + sb) - np.arctan2(-2.0, p)
        ok = p2 >= 0
        out[2] = np.where(ok[:, None], np.column_stack([_mod2pi(-a + tmp), p, _mod2pi(-b + tmp)]), np.nan)
        # RSL
        p2 = -2 + d * d + 2 * cab - 2 * d * (sa + sb)
        p = np.sqrt(np.abs(p2))
        tmp = np.arctan2(ca + cb, d - sa - sb) - np.arctan2(2.0, p)
        ok = p2 >= 0
        out[3] = np.where(ok[:, None], np.column_stack([_mod2pi(a - tmp), p, _mod2pi(b - tmp)]), np.nan)
        # RLR
        c = (6 - d * d + 2 * cab + 2 * d * (sa - sb)) / 8
        ok = np.abs(c) <= 1
        p = _mod2pi(TWO_PI - np.arccos(np.clip(c, -1, 1)))
        t = _mod2pi(a - np.arctan2(ca - cb, d - sa + sb) + p / 2)
        out[4] = np.where(ok[:, None], np.column_stack([t, p, _mod2pi(a - b - t + p)]), np.nan)
        # LRL
        c = (6 - d * d + 2 * cab + 2 * d * (sb - sa)) / 8
        ok = np.abs(c) <= 1
        p = _mod2pi(TWO_PI - np.arccos(np.clip(c, -1, 1)))
        t = _mod2pi(-a - np.arctan2(ca - cb, d + sa - sb) + p / 2)
        out[5] = np.where(ok[:, None], np.column_stack([t, p, _mod2pi(b - a - t + p)]), np.nan)
    return out


def dubins_lengths(start, goal, radius_m: float) -> np.ndarray:
    """Shortest Dubins path length in metres for each start/goal pair, shape (N,)."""
    w = dubins_word_lengths(start, goal, radius_m)
    return np.nanmin(w.sum(axis=2), axis=0) * radius_m


def _word_prims(word: str, lengths, radius_m: float, gears=None) -> list[Primitive]:
    prims = []
    for i, (c, t) in enumerate(zip(word, lengths)):
        k = {"L": 1.0 / radius_m, "R": -1.0 / radius_m, "S": 0.0}[c]
        g = 1.0 if gears is None else gears[i]
        prims.append((g * abs(float(t)) * radius_m, k, k))
    return prims


def dubins_candidates(start, goal, radius_m: float) -> list[list[Primitive]]:
    """All existing Dubins words as primitive lists, shortest first."""
    w = dubins_word_lengths(start, goal, radius_m)[:, 0, :]
    tot = w.sum(axis=1)
    out = []
    for i in np.argsort(np.where(np.isnan(tot), np.inf, tot)):
        if np.isfinite(tot[i]):
            out.append(_word_prims(DUBINS_WORDS[i], w[i], radius_m))
    return out


def dubins_path(start, goal, radius_m: float) -> list[Primitive]:
    """Shortest forward-only path with curvature <= 1/radius."""
    return dubins_candidates(start, goal, radius_m)[0]


# ------------------------------------------------------------------------------------------ Reeds-Shepp
def _polar(x, y):
    return math.hypot(x, y), math.atan2(y, x)


def _rs_LpSpLp(x, y, phi):
    u, t = _polar(x - math.sin(phi), y - 1.0 + math.cos(phi))
    if t >= -1e-9:
        v = float(_mod2pi(phi - t))
        if v >= -1e-9:
            return t, u, v
    return None


def _rs_LpSpRp(x, y, phi):
    u1, t1 = _polar(x + math.sin(phi), y - 1.0 - math.cos(phi))
    u1 = u1 * u1
    if u1 >= 4.0:
        u = math.sqrt(u1 - 4.0)
        theta = math.atan2(2.0, u)
        t = float(_mod2pi(t1 + theta))
        v = float(_mod2pi(t - phi))
        return t, u, v
    return None


def _rs_LpRmL(x, y, phi):
    xi, eta = x - math.sin(phi), y - 1.0 + math.cos(phi)
    u1, theta = _polar(xi, eta)
    if u1 <= 4.0:
        u = -2.0 * math.asin(0.25 * u1)
        t = float(_mod2pi(theta + 0.5 * u + math.pi))
        v = float(_mod2pi(phi - t + u))
        return t, u, v
    return None


_RS_BASE = (("LSL", _rs_LpSpLp), ("LSR", _rs_LpSpRp), ("LRL", _rs_LpRmL))
_SWAP = str.maketrans("LR", "RL")


def reeds_shepp_candidates(start, goal, radius_m: float) -> list[list[Primitive]]:
    """Reeds-Shepp paths (CSC and C|C|C families, all symmetries), shortest first.

    Returns
    -------
    list of primitive lists; reverse segments have negative lengths.
    """
    x, y, phi = _to_local(start, goal)
    x, y = x / radius_m, y / radius_m
    found = []
    for word, fn in _RS_BASE:
        variants = [
            (fn(x, y, phi), word, 1.0, False),
            (fn(-x, y, -phi), word, -1.0, False),                   # timeflip
            (fn(x, -y, -phi), word.translate(_SWAP), 1.0, False),   # reflect
            (fn(-x, -y, phi), word.translate(_SWAP), -1.0, False),  # timeflip + reflect
        ]
        if True:  # backwards symmetry
            xb = x * math.cos(phi) + y * math.sin(phi)
            yb = x * math.sin(phi) - y * math.cos(phi)
            variants += [
                (fn(xb, yb, phi), word, 1.0, True),
                (fn(-xb, yb, -phi), word, -1.0, True),
                (fn(xb, -yb, -phi), word.translate(_SWAP), 1.0, True),
                (fn(-xb, -yb, phi), word.translate(_SWAP), -1.0, True),
            ]
        for sol, w, flip, backwards in variants:
            if sol is None:
                continue
            lens = [flip * v for v in sol]
            if backwards:
                lens = lens[::-1]
                w = w[::-1]
            prims = []
            for c, t in zip(w, lens):
                k = {"L": 1.0 / radius_m, "R": -1.0 / radius_m, "S": 0.0}[c]
                prims.append((t * radius_m, k, k))
            found.append(prims)
    # keep only exact solutions (guards against formula branches that do not apply), shortest first
    ok = []
    for prims in found:
        e = end_pose(start, prims)
        if math.hypot(e[0] - goal[0], e[1] - goal[1]) < 1e-6 * max(1.0, radius_m) * 100 and \
                abs(wrap_angle(e[2] - goal[2])) < 1e-5:
            ok.append(prims)
    ok.sort(key=primitives_length)
    uniq, seen = [], set()
    for p in ok:
        key = tuple(round(v[0], 6) for v in p if abs(v[0]) > 1e-9)
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    return uniq


def reeds_shepp_path(start, goal, radius_m: float) -> list[Primitive]:
    """Shortest Reeds-Shepp path found among the implemented families."""
    c = reeds_shepp_candidates(start, goal, radius_m)
    if not c:
        raise ValueError("no Reeds-Shepp path found")
    return c[0]


# --------------------------------------------------------------------------- curvature-continuous Dubins
class ClothoidTurns:
    """Elementary turns (clothoid, arc, clothoid) for curvature <= kappa_max and |dkappa/ds| <= sigma.

    Parameters
    ----------
    radius_m : float
        Minimum turning radius (``kappa_max = 1 / radius_m``).
    max_curvature_rate_1pm2 : float
        Maximum curvature change per metre (sharpness), 1/m^2.
    """

    def __init__(self, radius_m: float, max_curvature_rate_1pm2: float):
        if radius_m <= 0 or max_curvature_rate_1pm2 <= 0:
            raise ValueError("radius_m and max_curvature_rate_1pm2 must be > 0")
        self.kmax = 1.0 / radius_m
        self.sigma = float(max_curvature_rate_1pm2)
        self.lc = self.kmax / self.sigma                      # clothoid length
        self.dmin = self.kmax * self.lc                       # deflection of the two clothoids together
        xc, yc, thc = _advance((0.0, 0.0, 0.0), self.lc, 0.0, self.kmax, n_sub=64)
        self.omega = np.array([xc - math.sin(thc) / self.kmax, yc + math.cos(thc) / self.kmax])
        #: radius of the CC circle (distance from the start to the arc centre)
        self.r_cc = float(np.hypot(*self.omega))
        #: angle between the start heading and the tangent of the CC circle at the start
        self.mu = math.atan2(self.omega[0], self.omega[1])
        #: the arc centre lies ``a_m`` ahead of the start (behind the end) and ``rho_m`` to the side of the turn
        self.a_m = self.r_cc * math.sin(self.mu)
        self.rho_m = self.r_cc * math.cos(self.mu)
        # A CC turn of deflection below dmin lands on the CC circle with a lower sharpness (Fraichard & Scheuer
        # 2004); that needs the chord at mu + delta / 2 from the tangent to stay short of a half turn, i.e.
        # clothoids that do not wind past pi on their own (dmin <= ~4.5 rad: any practical vehicle). Checked
        # here on a grid rather than assumed.
        grid = np.linspace(0.0, self.dmin, 257)[1:]
        self.cc_circle_ok = bool(self.mu + 0.5 * self.dmin < math.pi
                                 and np.all(self._fs_sharpness(grid) <= self.sigma * (1 + 1e-6)))

    @property
    def u_turn_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(lateral offset m, increasing; length m) of U-turns (deflection pi) with peak curvature <= kmax."""
        if not hasattr(self, "_u_tab"):
            kp = np.linspace(self.kmax / 256, self.kmax, 512)
            lat = elementary_end(np.full(len(kp), math.pi), kp, self.sigma)[:, 1]
            big = math.pi >= kp * kp / self.sigma
            length = np.where(big, 2 * kp / self.sigma + (math.pi - kp * kp / self.sigma) / kp,
                              2 * math.sqrt(math.pi / self.sigma))
            self._u_tab = (lat[::-1].copy(), length[::-1].copy())
        return self._u_tab

    def prims(self, delta: float, side: int) -> list[Primitive]:
        """Primitives of a forward elementary turn of deflection ``delta`` (rad, >= 0) to ``side`` (+1 L)."""
        if delta < 1e-9:
            return []
        if delta >= self.dmin:
            k = side * self.kmax
            arc = (delta - self.dmin) / self.kmax
            return [(self.lc, 0.0, k), (arc, k, k), (self.lc, k, 0.0)]
        kp = math.sqrt(delta * self.sigma)
        lc = kp / self.sigma
        return [(lc, 0.0, side * kp), (lc, side * kp, 0.0)]

    def length(self, delta):
        delta = np.asarray(delta, dtype=float)
        big = self.lc * 2 + (delta - self.dmin) / self.kmax
        small = 2 * np.sqrt(np.maximum(delta, 0.0) * self.sigma) / self.sigma
        return np.where(delta >= self.dmin, big, small)

    def _fs_sharpness(self, delta):
        """Sharpness (1/m^2) of the two-clothoid turn of deflection ``delta`` < dmin that ends on the CC circle.

        The symmetric turn's chord leaves at ``delta / 2`` from the start heading, i.e. at ``mu + delta / 2``
        from the circle's tangent, so it must be ``2 r_cc sin(mu + delta / 2)`` long; at sharpness 1 its length
        is ``C = 2 int_0^sqrt(delta) cos(u^2 / 2 - delta / 2) du`` and a clothoid scales as ``1 / sqrt(sigma)``.
        """
        delta = np.atleast_1d(np.asarray(delta, dtype=float))
        root = np.sqrt(np.maximum(delta, 0.0))
        u = np.linspace(0.0, 1.0, 33)[None, :] * root[:, None]
        w = np.ones(33)
        w[1:-1:2] = 4.0
        w[2:-1:2] = 2.0
        chord_unit = 2.0 * (root / 32.0 / 3.0) * (np.cos(0.5 * u * u - 0.5 * delta[:, None]) @ w)
        return (chord_unit / (2.0 * self.r_cc * np.sin(self.mu + 0.5 * delta))) ** 2

    def cc_prims(self, delta: float, side: int) -> list[Primitive]:
        """Primitives of the CC turn (Fraichard & Scheuer 2004) of deflection ``delta`` (rad, [0, 2 pi)).

        Unlike :meth:`prims`, the end always lies on the CC circle, at ``mu`` to its tangent: below ``dmin``
        the two clothoids use the sharpness :meth:`_fs_sharpness` (<= sigma, so the peak curvature
        ``sqrt(delta * sharpness)`` stays <= kappa_max); a zero deflection is the straight chord ``2 a_m``.
        """
        if delta >= self.dmin:
            return self.prims(delta, side)
        if delta < 1e-9:
            return [(2.0 * self.a_m, 0.0, 0.0)]
        sig = float(self._fs_sharpness(delta)[0])
        kp = math.sqrt(delta * sig)
        return [(kp / sig, 0.0, side * kp), (kp / sig, side * kp, 0.0)]

    def cc_length(self, delta):
        """Length (m) of the CC turns of :meth:`cc_prims`, vectorised."""
        delta = np.atleast_1d(np.asarray(delta, dtype=float))
        out = np.asarray(self.length(delta), dtype=float).copy()
        small = delta < self.dmin
        if np.any(small):
            d = np.maximum(delta[small], 0.0)
            sig = self._fs_sharpness(np.maximum(d, 1e-12))
            out[small] = np.where(d < 1e-9, 2.0 * self.a_m, 2.0 * np.sqrt(d / sig))
        return out

    def rel_end(self, delta: np.ndarray, side: int) -> np.ndarray:
        """End poses ``(N, 3)`` of elementary turns (peak ``kappa_max``) from the origin heading +x."""
        out = elementary_end(delta, self.kmax, self.sigma)
        if side < 0:
            out[:, 1] *= -1
            out[:, 2] *= -1
        return out


def elementary_prims(delta: float, side: int, kappa_peak: float, sigma: float) -> list[Primitive]:
    """Forward turn of deflection ``delta`` with peak curvature ``kappa_peak`` and sharpness ``sigma``."""
    if delta < 1e-9:
        return []
    if delta >= kappa_peak * kappa_peak / sigma:
        lc = kappa_peak / sigma
        k = side * kappa_peak
        return [(lc, 0.0, k), ((delta - kappa_peak * lc) / kappa_peak, k, k), (lc, k, 0.0)]
    kp = math.sqrt(delta * sigma)
    return [(kp / sigma, 0.0, side * kp), (kp / sigma, side * kp, 0.0)]


_UNIT_L = np.linspace(0.0, math.sqrt(2 * TWO_PI), 4001)


def _unit_clothoid_table():
    """End points of the unit clothoid (sharpness 1) at arc lengths :data:`_UNIT_L`."""
    th = 0.5 * _UNIT_L ** 2
    h = _UNIT_L[1] - _UNIT_L[0]
    c, s = np.cos(th), np.sin(th)
    x = np.concatenate([[0.0], np.cumsum(0.5 * h * (c[1:] + c[:-1]))])
    y = np.concatenate([[0.0], np.cumsum(0.5 * h * (s[1:] + s[:-1]))])
    # Euler-Maclaurin end correction of the trapezoid rule: -h^2/12 (f'(L) - f'(0))
    x -= h * h / 12.0 * (-s * _UNIT_L)
    y -= h * h / 12.0 * (c * _UNIT_L)
    return x, y


_UNIT_X, _UNIT_Y = _unit_clothoid_table()


def elementary_end(delta, kappa_peak, sigma) -> np.ndarray:
    """End poses ``(N, 3)`` of forward left elementary turns from the origin heading +x, vectorised.

    Parameters
    ----------
    delta : array_like (N,)
        Deflection, rad, in [0, 2 pi).
    kappa_peak : array_like (N,) or float
        Peak curvature, 1/m.
    sigma : float
        Sharpness (curvature rate), 1/m^2.
    """
    delta = np.atleast_1d(np.asarray(delta, dtype=float))
    kp = np.broadcast_to(np.asarray(kappa_peak, dtype=float), delta.shape)
    sq = math.sqrt(sigma)
    big = delta >= kp * kp / sigma
    k_eff = np.where(big, kp, np.sqrt(np.maximum(delta, 0.0) * sigma))
    lu = k_eff / sigma * sq                        # unit-clothoid length
    xc = np.interp(lu, _UNIT_L, _UNIT_X) / sq
    yc = np.interp(lu, _UNIT_L, _UNIT_Y) / sq
    thc = 0.5 * lu * lu
    out = np.zeros((len(delta), 3))
    kb = np.where(k_eff > 1e-12, k_eff, 1.0)
    ox = xc - np.sin(thc) / kb
    oy = yc + np.cos(thc) / kb
    mu = np.arctan2(ox, oy)
    # start and end lie on the circle about the arc centre at the same angle mu to its tangent
    rot = np.where(big, delta + 2 * mu, 2 * thc + 2 * mu)
    c, s = np.cos(rot), np.sin(rot)
    out[:, 0] = ox - c * ox + s * oy
    out[:, 1] = oy - s * ox - c * oy
    small = k_eff <= 1e-12
    out[small, :2] = 0.0
    out[:, 2] = delta
    return out


def _cc_sts_candidates(start, goal, radius_m, sigma, n_grid=64):
    """Straight, one elementary turn with a free peak curvature <= 1/radius, straight (incl. U-turns)."""
    x, y, phi = _to_local(start, goal)
    out = []
    kmax = 1.0 / radius_m
    kps = np.linspace(kmax / n_grid, kmax, n_grid)
    parallel = abs(math.sin(phi)) < 1e-6
    for side in (1, -1):
        delta = float(_mod2pi(side * phi))
        if delta < 1e-3:
            continue
        e = elementary_end(np.full(n_grid, delta), kps, sigma)
        e[:, 1] *= side
        if parallel:
            # (anti)parallel: the lateral offset fixes the peak curvature (1-D root, all roots bisected at once)
            f = e[:, 1] - y
            idx = np.nonzero(np.sign(f[1:]) != np.sign(f[:-1]))[0]
            sols = []
            if len(idx):
                dl = np.full(len(idx), delta)
                kp_all = _illinois(lambda m, dl=dl, side=side: elementary_end(dl, m, sigma)[:, 1] * side - y,
                                   kps[idx], kps[idx + 1], f[idx], f[idx + 1])
                ee_all = elementary_end(dl, kp_all, sigma)
                c = math.cos(phi)
                for kp, ee in zip(kp_all, ee_all):
                    rest = x - ee[0]
                    if c > 0:
                        if rest < 0:
                            continue
                        s1, s2 = rest, 0.0
                    else:
                        s1, s2 = (rest, 0.0) if rest >= 0 else (0.0, -rest)
                    sols.append((s1, float(kp), s2))
        else:
            bx, by = x - e[:, 0], y - e[:, 1]
            s2 = by / math.sin(phi)
            s1 = bx - s2 * math.cos(phi)
            good = (s1 >= -1e-9) & (s2 >= -1e-9)
            sols = [(float(s1[i]), float(kps[i]), float(s2[i])) for i in np.nonzero(good)[0]]
        for s1, kp, s2 in sols:
            out.append([(max(s1, 0.0), 0.0, 0.0)] + elementary_prims(delta, side, float(kp), sigma)
                       + [(max(s2, 0.0), 0.0, 0.0)])
    out.sort(key=primitives_length)
    return out[:2]


def _side_rel_end(delta, side, kmax, sigma):
    """End poses ``(N, 3)`` of elementary turns with per-row side (+1 left / -1 right), peak ``kmax``."""
    out = elementary_end(delta, kmax, sigma)
    out[:, 1] *= side
    out[:, 2] *= side
    return out


#: Illinois regula-falsi steps of the exact solvers (brackets of 2 pi / 180 rad converge in ~6)
_ROOT_ITERS = 14


def _illinois(f, lo, hi, flo, fhi, iters: int = _ROOT_ITERS) -> np.ndarray:
    """Roots of ``f`` in the brackets ``[lo, hi]`` (vectorised Illinois regula falsi, bracket kept).

    ``flo`` and ``fhi`` are ``f`` at the bracket ends and must differ in sign. Converges superlinearly on
    smooth residuals and never leaves the bracket, so a kink (turn changing branch) only slows it down.
    """
    lo, hi, flo, fhi = (np.array(v, dtype=float) for v in (lo, hi, flo, fhi))
    side = np.zeros(len(lo), dtype=np.int8)
    for _ in range(iters):
        den = fhi - flo
        x = np.where(np.abs(den) > 1e-300, (lo * fhi - hi * flo) / np.where(den == 0, 1.0, den), 0.5 * (lo + hi))
        x = np.clip(x, np.minimum(lo, hi), np.maximum(lo, hi))
        fx = f(x)
        left = np.sign(fx) == np.sign(flo)           # root lies in [x, hi]
        # Illinois: halve the retained end's value when the same end is kept twice in a row
        fhi = np.where(left & (side == 1), 0.5 * fhi, fhi)
        flo = np.where(~left & (side == -1), 0.5 * flo, flo)
        lo, flo = np.where(left, x, lo), np.where(left, fx, flo)
        hi, fhi = np.where(left, hi, x), np.where(left, fhi, fx)
        side = np.where(left, 1, -1).astype(np.int8)
        done = np.abs(fx) < 1e-9
        if np.all(done):
            lo = hi = x
            break
    return np.where(np.abs(flo) < np.abs(fhi), lo, hi)


_SIDES = np.array([(1, 1), (1, -1), (-1, 1), (-1, -1)], dtype=float)


def _cc_circle_words(start, goal, cc: ClothoidTurns) -> list[tuple[str, tuple, tuple]]:
    """The CSC and CCC words on the CC circles of Fraichard & Scheuer (2004), closed form, vectorised.

    A CC turn (:meth:`ClothoidTurns.cc_prims`) of side ``s`` starting at ``q`` (heading ``h``, left normal
    ``n``) has its arc centre at ``q + a h + s rho n``; one ending there at ``q - a h + s rho n``. Hence:
    turn-straight-turn on the same side needs the centres ``>= 2 a`` apart (straight = distance - 2 a), on
    opposite sides ``>= 2 r_cc`` (the centres differ by ``(L + 2 a) h + (s2 - s1) rho n``); two turns of
    opposite sides meeting at zero curvature have centres exactly ``2 r_cc`` apart, so turn-turn-turn needs the
    outer centres ``<= 4 r_cc`` apart. Where the outer centres of one side are closer than ``2 a`` (no CSC on
    that side), they are closer than ``4 r_cc`` too, so some word always exists: the family is complete.

    Parameters
    ----------
    start, goal : array_like, shape (N, 3) or (3,)
    cc : ClothoidTurns

    Returns
    -------
    list of ``(kind, sides, values)``: kind ``"CSC"`` with sides ``(s1, s2)`` and values
    ``(deflection_1, straight_m, deflection_2)``, or ``"CCC"`` with sides ``(s, -s, s)`` and three deflections;
    each value an array of shape (N,), NaN where the word does not exist. Deflections are in [0, 2 pi).
    """
    s = np.atleast_2d(np.asarray(start, dtype=float))
    g = np.atleast_2d(np.asarray(goal, dtype=float))
    a, rho, rcc = cc.a_m, cc.rho_m, cc.r_cc
    cs, ss = np.cos(s[:, 2]), np.sin(s[:, 2])
    cg, sg = np.cos(g[:, 2]), np.sin(g[:, 2])

    def centres(side_s, side_g):
        c1 = np.column_stack([s[:, 0] + a * cs - side_s * rho * ss, s[:, 1] + a * ss + side_s * rho * cs])
        c2 = np.column_stack([g[:, 0] - a * cg - side_g * rho * sg, g[:, 1] - a * sg + side_g * rho * cg])
        return c1, c2

    words = []
    with np.errstate(invalid="ignore"):
        for s1, s2 in _SIDES:
            c1, c2 = centres(s1, s2)
            dx, dy = c2[:, 0] - c1[:, 0], c2[:, 1] - c1[:, 1]
            dist = np.hypot(dx, dy)
            if s1 == s2:
                straight = dist - 2 * a
                h = np.arctan2(dy, dx)
            else:
                lat = (s2 - s1) * rho
                straight = np.sqrt(dist * dist - lat * lat) - 2 * a
                h = np.arctan2(dy, dx) - np.arctan2(lat, straight + 2 * a)
            ok = straight >= -1e-9
            d1 = np.where(ok, _mod2pi(s1 * (h - s[:, 2])), np.nan)
            d2 = np.where(ok, _mod2pi(s2 * (g[:, 2] - h)), np.nan)
            words.append(("CSC", (int(s1), int(s2)), (d1, np.where(ok, np.maximum(straight, 0.0), np.nan), d2)))
        tilt = math.atan2(rho, a)           # angle(c_next - c_prev) = h - s_prev * tilt at a zero-curvature joint
        for side in (1, -1):
            c1, c3 = centres(side, side)
            v = c3 - c1
            dist = np.hypot(v[:, 0], v[:, 1])
            ok = dist <= 4 * rcc
            # unit normal of c1 -> c3 (any direction when the centres coincide)
            nx = np.where(dist > 1e-12, -v[:, 1] / np.where(dist > 1e-12, dist, 1.0), -ss)
            ny = np.where(dist > 1e-12, v[:, 0] / np.where(dist > 1e-12, dist, 1.0), cs)
            off = np.sqrt(np.maximum(4 * rcc * rcc - 0.25 * dist * dist, 0.0))
            for sign in (1.0, -1.0):
                c2x = 0.5 * (c1[:, 0] + c3[:, 0]) + sign * off * nx
                c2y = 0.5 * (c1[:, 1] + c3[:, 1]) + sign * off * ny
                h1 = np.arctan2(c2y - c1[:, 1], c2x - c1[:, 0]) + side * tilt
                h2 = np.arctan2(c3[:, 1] - c2y, c3[:, 0] - c2x) - side * tilt
                d1 = np.where(ok, _mod2pi(side * (h1 - s[:, 2])), np.nan)
                d2 = np.where(ok, _mod2pi(-side * (h2 - h1)), np.nan)
                d3 = np.where(ok, _mod2pi(side * (g[:, 2] - h2)), np.nan)
                words.append(("CCC", (side, -side, side), (d1, d2, d3)))
    return words


def _cc_circle_candidates(start, goal, cc: ClothoidTurns) -> list[list[Primitive]]:
    """Primitive lists of the CC-circle words of one start/goal pair (unverified; see :func:`_cc_circle_words`).

    Also the single CC turn when the goal's CC circle is the start's.
    """
    out = []
    for kind, sides, vals in _cc_circle_words(start, goal, cc):
        v = [float(x[0]) for x in vals]
        if any(math.isnan(x) for x in v):
            continue
        if kind == "CSC":
            out.append(cc.cc_prims(v[0], sides[0]) + [(v[1], 0.0, 0.0)] + cc.cc_prims(v[2], sides[1]))
        else:
            out.append(cc.cc_prims(v[0], sides[0]) + cc.cc_prims(v[1], sides[1]) + cc.cc_prims(v[2], sides[2]))
    x, y, phi = _to_local(start, goal)
    for side in (1, -1):
        # goal on the start's CC circle at the CC angle: one turn (its centres coincide)
        c1 = np.array([cc.a_m, side * cc.rho_m])
        c2 = np.array([x - cc.a_m * math.cos(phi) - side * cc.rho_m * math.sin(phi),
                       y - cc.a_m * math.sin(phi) + side * cc.rho_m * math.cos(phi)])
        if np.hypot(*(c2 - c1)) < 1e-6:
            out.append(cc.cc_prims(float(_mod2pi(side * phi)), side))
    return [[pr for pr in prims if abs(pr[0]) > 1e-12] for prims in out]


def _same_path(p, q) -> bool:
    """Whether two primitive lists describe the same path (lengths within 1e-5 m, curvatures within 1e-7 1/m)."""
    p = [v for v in p if abs(v[0]) > 1e-9]
    q = [v for v in q if abs(v[0]) > 1e-9]
    return len(p) == len(q) and all(abs(a[0] - b[0]) < 1e-5 and abs(a[1] - b[1]) < 1e-7 and abs(a[2] - b[2]) < 1e-7
                                    for a, b in zip(p, q))


def dubins_cc_candidates(start, goal, radius_m: float, max_curvature_rate_1pm2: float,
                         n_grid: int = 180) -> list[list[Primitive]]:
    """Curvature-continuous forward paths, shortest first, each checked to end at ``goal``.

    Every turn is an elementary clothoid-arc-clothoid turn, so curvature is continuous, bounded by
    ``1/radius_m`` and changes at most ``max_curvature_rate_1pm2`` per metre. Three sources:

    - turn-straight-turn (LSL, RSR, LSR, RSL) with turns at full sharpness (the shortest for small
      deflections): the four side combinations are solved together, a grid over the first deflection brackets
      the roots of the lateral residual, all brackets are then bisected at once;
    - straight-turn-straight with a free peak curvature (U-turns wider than the CC circles);
    - the CC-circle words of Fraichard & Scheuer (2004), closed form: CSC and, where the start and goal
      circles are too close for a straight between them (a goal just ahead, an adjacent swath), CCC
      (LRL, RLR). These always include a path (:func:`_cc_circle_words`), so the list is empty only for a
      sharpness so low that the CC turns are not defined (``ClothoidTurns.cc_circle_ok`` false) or start == goal.
    """
    cc = ClothoidTurns(radius_m, max_curvature_rate_1pm2)
    kmax, sigma = cc.kmax, cc.sigma
    start = np.asarray(start, dtype=float)
    goal = np.asarray(goal, dtype=float)
    dth = float(goal[2] - start[2])
    c0, s0 = math.cos(start[2]), math.sin(start[2])

    def residual(d1, s1, s2):
        h = start[2] + s1 * d1
        d2 = _mod2pi(s2 * (dth - s1 * d1))
        r1 = _side_rel_end(d1, s1, kmax, sigma)
        e1x = start[0] + c0 * r1[:, 0] - s0 * r1[:, 1]
        e1y = start[1] + s0 * r1[:, 0] + c0 * r1[:, 1]
        rel2 = _side_rel_end(d2, s2, kmax, sigma)
        # start of the second turn: goal composed with the inverse of rel2
        hh = goal[2] - rel2[:, 2]
        ch, sh = np.cos(hh), np.sin(hh)
        vx = goal[0] - (ch * rel2[:, 0] - sh * rel2[:, 1]) - e1x
        vy = goal[1] - (sh * rel2[:, 0] + ch * rel2[:, 1]) - e1y
        cos_h, sin_h = np.cos(h), np.sin(h)
        return cos_h * vy - sin_h * vx, cos_h * vx + sin_h * vy, d2

    grid = np.linspace(0.0, TWO_PI, n_grid, endpoint=False)
    g1 = np.tile(grid, 4)
    s1g = np.repeat(_SIDES[:, 0], n_grid)
    s2g = np.repeat(_SIDES[:, 1], n_grid)
    cr = residual(g1, s1g, s2g)[0].reshape(4, n_grid)
    crn = np.roll(cr, -1, axis=1)
    combo, idx = np.nonzero((np.sign(cr) != np.sign(crn)) & (np.abs(cr - crn) < 4 * radius_m + 50))
    sols = []
    if len(idx):
        s1, s2 = _SIDES[combo, 0], _SIDES[combo, 1]
        d1s = _illinois(lambda d: residual(d, s1, s2)[0], grid[idx], grid[idx] + TWO_PI / n_grid,
                        cr[combo, idx], crn[combo, idx])
        c_, dot, d2 = residual(d1s, s1, s2)
        for j in range(len(d1s)):
            if abs(c_[j]) > 1e-5 or dot[j] < -1e-6:
                continue
            d1 = float(_mod2pi(d1s[j]))
            prims = (cc.prims(d1, int(s1[j])) + [(max(float(dot[j]), 0.0), 0.0, 0.0)]
                     + cc.prims(float(d2[j]), int(s2[j])))
            sols.append(prims)
    sols += _cc_sts_candidates(start, goal, radius_m, max_curvature_rate_1pm2)
    if cc.cc_circle_ok:
        sols += _cc_circle_candidates(start, goal, cc)
    sols.sort(key=primitives_length)
    # check the shortest ones by integration (the cheap closed-form residual can mislead at branch edges)
    out = []
    for prims in sols:
        if primitives_length(prims) < 1e-9:         # start == goal: a root at zero deflection, not a turn
            continue
        if any(_same_path(prims, o) for o in out):  # the same path found by several side combinations / solvers
            continue
        if _close(end_pose(start, prims), goal) and _drivable(prims, kmax, sigma):
            out.append(prims)
            if len(out) >= _CC_KEEP:
                break
    return out


#: number of verified curvature-continuous candidates returned (shortest first)
_CC_KEEP = 12


def _close(e, goal) -> bool:
    return math.hypot(e[0] - goal[0], e[1] - goal[1]) < 1e-3 and abs(wrap_angle(e[2] - goal[2])) < 1e-4


def _drivable(prims, kmax: float, sigma: float) -> bool:
    """Forward, curvature continuous (from and to zero), ``|kappa| <= kmax``, ``|dkappa/ds| <= sigma``."""
    k_prev = 0.0
    for length, k0, k1 in prims:
        if length < -1e-12 or abs(k0 - k_prev) > 1e-9 or max(abs(k0), abs(k1)) > kmax * (1 + 1e-9):
            return False
        if abs(k1 - k0) > sigma * (1 + 1e-9) * length + 1e-12:
            return False
        k_prev = k1
    return abs(k_prev) <= 1e-9


def turn_candidates(start, goal, turn_type: str, radius_m: float,
                    max_curvature_rate_1pm2: float = 0.1) -> list[list[Primitive]]:
    """Candidate connections of the requested type, shortest first (may be empty)."""
    if turn_type == "dubins":
        return dubins_candidates(start, goal, radius_m)
    if turn_type == "dubins_cc":
        return dubins_cc_candidates(start, goal, radius_m, max_curvature_rate_1pm2)
    if turn_type == "reeds_shepp":
        return reeds_shepp_candidates(start, goal, radius_m)
    raise ValueError(f"unknown turn type {turn_type!r} (dubins, dubins_cc, reeds_shepp)")


def dubins_cc_lengths(start, goal, radius_m: float, max_curvature_rate_1pm2: float) -> np.ndarray:
    """Cheap estimate of the shortest curvature-continuous turn-straight-turn length, vectorised.

    Closed form on the "CC circles" of Fraichard & Scheuer (2004): the start and the end of an elementary
    turn of deflection >= ``kappa_max^2 / sigma`` lie on a circle of radius ``r_cc`` about the arc centre,
    their heading at the fixed angle ``mu`` to its tangent, so each of LSL, RSR, LSR, RSL has one straight
    whose length and heading follow from the two centres. Exact (same path as
    :func:`dubins_cc_candidates`) when both deflections are at least that; for smaller deflections the
    turn's length is still exact but its shape is approximated by the CC circle.

    Parameters
    ----------
    start, goal : array_like, shape (N, 3) or (3,)
        Poses ``[x_m, y_m, yaw_rad]``.
    radius_m : float
        Minimum turning radius.
    max_curvature_rate_1pm2 : float
        Sharpness, 1/m^2.

    The turn-turn-turn words on the CC circles (:func:`_cc_circle_words`) are included with their exact
    lengths.

    Returns
    -------
    ndarray, shape (N,)
        Length estimate in metres, never below the Dubins length; where the closed form has no word the
        exact :func:`dubins_cc_candidates` length, ``inf`` only where that finds none either.
    """
    cc = _cc_turns_cached(float(radius_m), float(max_curvature_rate_1pm2))
    s = np.atleast_2d(np.asarray(start, dtype=float))
    g = np.atleast_2d(np.asarray(goal, dtype=float))
    cs, ss = np.cos(s[:, 2]), np.sin(s[:, 2])
    best = np.full(len(s), np.inf)
    with np.errstate(invalid="ignore"):
        # the words on the CC circles (:func:`_cc_circle_words`, NaN where a word does not exist): turn-straight-turn,
        # and turn-turn-turn (exact: the same paths the exact solver builds) where the circles are too close for a
        # straight between them (adjacent swaths, a goal just ahead)
        for kind, _, vals in _cc_circle_words(s, g, cc):
            if kind == "CSC":
                tot = cc.length(vals[0]) + vals[1] + cc.length(vals[2])
            elif cc.cc_circle_ok:
                tot = cc.cc_length(vals[0]) + cc.cc_length(vals[1]) + cc.cc_length(vals[2])
            else:
                continue
            best = np.where(np.isnan(tot), best, np.fmin(best, tot))
        # U-turn between anti-parallel poses as one elementary turn with a lower peak curvature (what
        # _cc_sts_candidates finds): the lateral offset fixes the peak, straights make up the rest
        rel_th = wrap_angle(g[:, 2] - s[:, 2])
        dxg, dyg = g[:, 0] - s[:, 0], g[:, 1] - s[:, 1]
        lon = cs * dxg + ss * dyg
        lat = -ss * dxg + cs * dyg
        anti = np.abs(np.abs(rel_th) - math.pi) < 1e-6
        if np.any(anti):
            lat_tab, len_tab = cc.u_turn_table
            ok = anti & (np.abs(lat) >= lat_tab[0]) & (np.abs(lat) <= lat_tab[-1])
            u = np.interp(np.abs(lat), lat_tab, len_tab) + np.abs(lon)
            best = np.where(ok, np.fmin(best, u), best)
        # goal straight ahead
        ahead = (np.abs(rel_th) < 1e-6) & (np.abs(lat) < 1e-6) & (lon > 1e-9)
        best = np.where(ahead, np.fmin(best, lon), best)
    # where no CC-circle word closes (goal close ahead with a small heading change: a turn of small deflection
    # is not on the CC circle) the exact solver decides; rare (none in 20,000 random pairs), so cheap
    for i in np.flatnonzero(np.isinf(best)):
        exact = dubins_cc_candidates(s[i], g[i], radius_m, max_curvature_rate_1pm2)
        if exact:
            best[i] = primitives_length(exact[0])
    # no path with curvature <= 1/radius is shorter than the Dubins path (tightens small deflections)
    return np.maximum(best, dubins_lengths(s, g, radius_m))


_CC_CACHE: dict = {}


def _cc_turns_cached(radius_m: float, sigma: float) -> ClothoidTurns:
    key = (radius_m, sigma)
    if key not in _CC_CACHE:
        if len(_CC_CACHE) > 32:
            _CC_CACHE.clear()
        _CC_CACHE[key] = ClothoidTurns(radius_m, sigma)
    return _CC_CACHE[key]
