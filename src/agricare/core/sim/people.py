"""People walking in the simulated world (adults, children), as discs moving along waypoint paths.

A person's position is a pure function of time (no hidden state), so the crowd is deterministic and can be
evaluated at any ``t_s``. People do not react to robots: avoiding them is the robots' job.

Public API
----------
``PersonSpec``: name, kind (``adult``/``child``), radius_m, speed_mps, path (N, 2), mode
(``loop`` back to the first point, ``pingpong`` back and forth (crossing a road), ``once`` then stand),
start_delay_s (stands at the first point until then), pause_s (stands at each end of a cycle).
``Crowd(specs)``: ``.update(t_s)`` sets ``.positions`` (N, 2) and ``.velocities`` (N, 2) in map
(and ``.position_list``, the same as a list of tuples);
``.radii`` (N,), ``.names``, ``.kinds``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

PERSON_KINDS = {"adult": 0.25, "child": 0.18}
PERSON_MODES = ("loop", "pingpong", "once")


@dataclass(frozen=True)
class PersonSpec:
    name: str
    kind: str = "adult"
    radius_m: float = 0.25
    speed_mps: float = 1.2
    path: tuple = ()
    mode: str = "pingpong"
    start_delay_s: float = 0.0
    pause_s: float = 0.0

    def __post_init__(self):
        if self.kind not in PERSON_KINDS:
            raise ValueError(f"kind must be one of {sorted(PERSON_KINDS)}, got {self.kind!r}")
        if self.mode not in PERSON_MODES:
            raise ValueError(f"mode must be one of {list(PERSON_MODES)}, got {self.mode!r}")
        for name in ("radius_m", "speed_mps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        for name in ("start_delay_s", "pause_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        p = np.asarray(self.path, dtype=float)
        if p.ndim != 2 or p.shape[1] != 2 or len(p) < 1 or not np.all(np.isfinite(p)):
            raise ValueError("path must be a list of at least one [x, y] point")


class _Walker:
    def __init__(self, spec: PersonSpec):
        p = np.asarray(spec.path, dtype=float).reshape(-1, 2)
        if spec.mode == "loop" and len(p) > 1:
            p = np.vstack([p, p[:1]])
        elif spec.mode == "pingpong" and len(p) > 1:
            p = np.vstack([p, p[-2::-1]])
        self.pts = p
        seg = np.hypot(*np.diff(p, axis=0).T) if len(p) > 1 else np.zeros(0)
        self.cum = np.concatenate([[0.0], np.cumsum(seg)]).tolist()
        self.pts_list = p.tolist()
        self.length = float(self.cum[-1])
        self.spec = spec
        self.walk_s = self.length / spec.speed_mps
        # pingpong pauses at both ends; loop and once at the end of the cycle
        self.turn_s = self.walk_s / 2.0 if spec.mode == "pingpong" else self.walk_s

    def arc_at(self, t_s: float) -> tuple[float, float]:
        """Arc length along the unfolded path and the speed along it at time t."""
        s = self.spec
        tau = t_s - s.start_delay_s
        if tau <= 0.0 or self.length <= 0.0:
            return 0.0, 0.0
        if s.mode == "once":
            return (min(tau * s.speed_mps, self.length), s.speed_mps if tau < self.walk_s else 0.0)
        if s.mode == "pingpong":
            half = self.walk_s / 2.0
            cycle = self.walk_s + 2.0 * s.pause_s
            c = tau % cycle
            if c < half:
                return c * s.speed_mps, s.speed_mps
            if c < half + s.pause_s:
                return self.length / 2.0, 0.0
            if c < 2 * half + s.pause_s:
                return (c - s.pause_s) * s.speed_mps, s.speed_mps
            return 0.0, 0.0
        cycle = self.walk_s + s.pause_s
        c = tau % cycle
        if c < self.walk_s:
            return c * s.speed_mps, s.speed_mps
        return 0.0, 0.0

    def state(self, t_s: float) -> tuple[float, float, float, float]:
        arc, speed = self.arc_at(t_s)
        pts = self.pts_list
        if len(pts) == 1:
            return pts[0][0], pts[0][1], 0.0, 0.0
        i = bisect.bisect_right(self.cum, arc) - 1
        i = min(max(i, 0), len(pts) - 2)
        seg_len = self.cum[i + 1] - self.cum[i]
        a, b = pts[i], pts[i + 1]
        f = (arc - self.cum[i]) / seg_len if seg_len > 0 else 0.0
        x = a[0] + f * (b[0] - a[0])
        y = a[1] + f * (b[1] - a[1])
        if speed > 0 and seg_len > 0:
            return x, y, speed * (b[0] - a[0]) / seg_len, speed * (b[1] - a[1]) / seg_len
        return x, y, 0.0, 0.0


class Crowd:
    """All people of a world."""

    def __init__(self, specs):
        self.specs = list(specs)
        self._walkers = [_Walker(s) for s in self.specs]
        n = len(self.specs)
        self.names = [s.name for s in self.specs]
        self.kinds = [s.kind for s in self.specs]
        self.radii = np.array([s.radius_m for s in self.specs], dtype=float)
        self.positions = np.zeros((n, 2))
        self.velocities = np.zeros((n, 2))
        self.radius_list = self.radii.tolist()
        self.position_list: list[tuple[float, float]] = []
        self.update(0.0)

    def __len__(self) -> int:
        return len(self.specs)

    def update(self, t_s: float) -> None:
        """Set positions and velocities (map frame) at time ``t_s``."""
        self.position_list = []
        for i, w in enumerate(self._walkers):
            x, y, vx, vy = w.state(t_s)
            self.position_list.append((x, y))
            self.positions[i, 0] = x
            self.positions[i, 1] = y
            self.velocities[i, 0] = vx
            self.velocities[i, 1] = vy
