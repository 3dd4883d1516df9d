"""Right of way between care shuttles that meet nose to nose.

Two shuttles whose safety supervisors each see the other in their stop field both sit in PROTECTIVE_STOP:
neither supervisor may release the stop while the other is there, so without a rule neither moves again. This
module decides, from what the shuttles really know, which one gives way and where it goes:

- each shuttle publishes a :class:`FleetState` (its own pose estimate, whether its supervisor holds it for an
  obstacle, the children aboard, its next deadline, whether it is giving way) in its ``mission/status``;
- a **stand-off** is seen by a shuttle that wants to move, is held for an obstacle (not for a person) for
  ``detect_s``, while a fresh peer, also held for an obstacle, stands within ``near_m`` in front of it;
- the **order** (:func:`priority`): a shuttle with a child aboard before an empty one, then the earlier
  deadline, then the smaller name: both shuttles compute the same order from the same published states, so
  exactly one gives way (a peer already giving way is never answered by giving way too);
- the shuttle that gives way reverses to a pose out of the other's way (:func:`give_way_path`: straight back,
  or back with a sideways shift to its kerb side, the smallest move whose footprint leaves the corridor ahead
  of the other shuttle), waits until the other has passed (:meth:`RightOfWay.may_resume`) and re-plans its leg.

Nothing here commands the wheels: the reversing path goes to the controller like any plan, the supervisor of
the yielding shuttle still gates it (its rear field), and the other shuttle's stop is released only by its own
supervisor once its fields are clear. A person in the way is never a stand-off: the shuttle stays held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RightOfWayParams:
    """How a stand-off is recognised and resolved."""

    detect_s: float = 3.0          # held this long with a held peer in front: a stand-off
    near_m: float = 9.0            # the peer's base within this distance of ours
    ahead_rad: float = math.radians(75.0)  # ... and within this angle of our heading
    peer_timeout_s: float = 3.0    # a peer state older than this is not used
    corridor_half_m: float = 1.6   # half width of the corridor ahead of the keeper (its half width + 0.8 m)
    corridor_length_m: float = 30.0
    max_back_m: float = 8.0        # reversing at most this far ...
    max_side_m: float = 3.0        # ... with at most this sideways shift
    lead_m: float = 2.0            # straight back before a sideways shift
    pass_clear_m: float = 4.0      # the keeper has passed when it is this far behind us
    wait_max_s: float = 60.0       # give the way at most this long, then re-plan anyway

    def __post_init__(self):
        for name in ("detect_s", "near_m", "ahead_rad", "peer_timeout_s", "corridor_half_m", "corridor_length_m",
                     "max_back_m", "max_side_m", "lead_m", "pass_clear_m", "wait_max_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")


@dataclass(frozen=True)
class FleetState:
    """What one shuttle publishes about itself (in ``mission/status`` detail ``fleet``)."""

    name: str
    t_s: float
    pose: tuple[float, float, float]   # its own estimate, map frame
    held: bool                         # its supervisor holds it for an obstacle (not a person), and it wants to move
    onboard: int = 0
    deadline_s: float = math.inf       # the earliest window close among its remaining stops
    giving_way: bool = False
    backing_from: str = ""             # while reversing out of its way: the shuttle it gives way to (which waits)

    def to_dict(self) -> dict:
        return {"name": self.name, "t_s": round(self.t_s, 3), "pose": [round(float(v), 3) for v in self.pose],
                "held": bool(self.held), "onboard": int(self.onboard),
                "deadline_s": None if not math.isfinite(self.deadline_s) else round(self.deadline_s, 2),
                "giving_way": bool(self.giving_way), "backing_from": self.backing_from}

    @classmethod
    def from_dict(cls, d: dict) -> FleetState:
        pose = tuple(float(v) for v in d["pose"])
        if len(pose) != 3 or not all(math.isfinite(v) for v in pose):
            raise ValueError("pose must be 3 finite numbers")
        deadline = d.get("deadline_s")
        return cls(str(d["name"]), float(d["t_s"]), pose, bool(d["held"]), int(d.get("onboard", 0)),
                   math.inf if deadline is None else float(deadline), bool(d.get("giving_way", False)),
                   str(d.get("backing_from", "")))


def priority(s: FleetState) -> tuple:
    """Sort key of the right of way (smaller keeps the way): a child aboard, then the earlier deadline, then name."""
    return (0 if s.onboard > 0 else 1, s.deadline_s, s.name)


def _in_front(me, other, near_m: float, ahead_rad: float) -> bool:
    dx, dy = other[0] - me[0], other[1] - me[1]
    d = math.hypot(dx, dy)
    if d > near_m:
        return False
    if d < 1e-6:
        return True
    off = (math.atan2(dy, dx) - me[2] + math.pi) % (2.0 * math.pi) - math.pi
    return abs(off) <= ahead_rad


def footprint_corners(pose, footprint_xy) -> np.ndarray:
    """Corners (N, 2) of a footprint polygon (base_link, flat ``[x0, y0, ...]``) at ``pose``, map frame."""
    fp = np.asarray(footprint_xy, dtype=float).reshape(-1, 2)
    c, s = math.cos(pose[2]), math.sin(pose[2])
    return np.column_stack([pose[0] + c * fp[:, 0] - s * fp[:, 1], pose[1] + s * fp[:, 0] + c * fp[:, 1]])


def out_of_corridor(corners: np.ndarray, keeper_pose, half_m: float, length_m: float, rear_m: float = 1.0) -> bool:
    """Whether a footprint (its corners; convex) stays clear of the corridor ahead of ``keeper_pose``:
    ``half_m`` either side of the keeper's heading line, from ``rear_m`` behind it to ``length_m`` ahead."""
    c, s = math.cos(keeper_pose[2]), math.sin(keeper_pose[2])
    rel = corners - np.asarray(keeper_pose[:2], dtype=float)
    lon = rel @ np.array([c, s])
    lat = rel @ np.array([-s, c])
    return bool(np.all(lat > half_m) or np.all(lat < -half_m) or np.all(lon < -rear_m) or np.all(lon > length_m))


def s_curve(pose, back_m: float, side_m: float, spacing_m: float = 0.2, lead_m: float = 0.0) -> np.ndarray:
    """Reversing path (N, 3) from ``pose``: ``lead_m`` straight back, then ``back_m`` back along the heading with a
    smooth sideways shift of ``side_m`` (> 0: to the left); the poses keep the direction the vehicle faces (yaw of
    the path's tangent). The straight lead opens a gap before the nose swings (it swings towards the other side)."""
    n_lead = int(math.ceil(lead_m / spacing_m)) if lead_m > 0 else 0
    n = max(int(math.ceil(back_m / spacing_m)), 2) + 1
    u = np.linspace(0.0, 1.0, n)
    lon = np.concatenate([-np.linspace(0.0, lead_m, n_lead, endpoint=False), -lead_m - back_m * u])
    lat = np.concatenate([np.zeros(n_lead), side_m * 0.5 * (1.0 - np.cos(math.pi * u))])
    dlat = np.concatenate([np.zeros(n_lead), side_m * 0.5 * math.pi * np.sin(math.pi * u) / back_m])   # d lat / d back
    c, s = math.cos(pose[2]), math.sin(pose[2])
    x = pose[0] + c * lon - s * lat
    y = pose[1] + s * lon + c * lat
    yaw = pose[2] - np.arctan(dlat)     # moving backwards while drifting left: the nose turns right
    return np.column_stack([x, y, yaw])


def give_way_path(me_pose, keeper_pose, footprint_xy, params: RightOfWayParams, kerb_left: bool = True):
    """The smallest reversing move that takes ``me`` out of the keeper's corridor: straight back first, then back
    (after ``lead_m`` straight) with a sideways shift to the kerb side, then to the other side; ``None`` when no
    candidate clears it."""
    p = params
    sides = [0.0]
    step = 0.5
    k = step
    while k <= p.max_side_m + 1e-9:
        sides += [k if kerb_left else -k]
        k += step
    sides += [-s for s in sides[1:]]
    for side in sides:
        back = 2.0
        # the S-curve needs length for its sideways shift (curvature ~ pi^2 side / (2 back^2) <= 0.25 1/m)
        back = max(back, math.sqrt(math.pi ** 2 * abs(side) / (2 * 0.25))) if side else back
        lead = p.lead_m if side else 0.0
        while back <= p.max_back_m + 1e-9:
            path = s_curve(me_pose, back, side, lead_m=lead)
            if out_of_corridor(footprint_corners(path[-1], footprint_xy), keeper_pose, p.corridor_half_m,
                               p.corridor_length_m):
                return path
            back += 0.5
    return None


class RightOfWay:
    """Stand-off watch of one shuttle (a step function of what it knows; see the module docstring)."""

    def __init__(self, name: str, params: RightOfWayParams | None = None):
        self.name = name
        self.p = params or RightOfWayParams()
        self.peers: dict[str, FleetState] = {}
        self._since: float | None = None      # when the current stand-off condition began
        self._peer: str | None = None
        self.giving_way_to: FleetState | None = None   # the keeper as it stood when we started giving way
        self.gave_way_s: float | None = None
        self.events: list[dict] = []           # stand-offs seen and how they were resolved (figures)

    def on_peer(self, state: FleetState) -> None:
        if state.name != self.name:
            self.peers[state.name] = state

    def blocking_peer(self, now: float, me: FleetState) -> FleetState | None:
        """A fresh peer held in front of us while we are held (the stand-off condition, without its duration)."""
        if not me.held:
            return None
        best = None
        for peer in self.peers.values():
            if now - peer.t_s > self.p.peer_timeout_s or not peer.held:
                continue
            if _in_front(me.pose, peer.pose, self.p.near_m, self.p.ahead_rad):
                d = math.hypot(peer.pose[0] - me.pose[0], peer.pose[1] - me.pose[1])
                if best is None or d < best[0]:
                    best = (d, peer)
        return None if best is None else best[1]

    def waiting_for(self, now: float) -> list[str]:
        """Fresh peers reversing out of this shuttle's way: it waits for them (does not drive into their move)."""
        return sorted(n for n, s in self.peers.items()
                      if s.backing_from == self.name and now - s.t_s <= self.p.peer_timeout_s)

    def step(self, now: float, me: FleetState) -> FleetState | None:
        """Returns the peer to give way to when this shuttle must give way now (once per stand-off), else None."""
        if self.giving_way_to is not None:
            return None
        peer = self.blocking_peer(now, me)
        if peer is None or peer.name != self._peer:
            self._since, self._peer = (now, peer.name) if peer is not None else (None, None)
            return None
        if now - self._since < self.p.detect_s:
            return None
        if peer.giving_way or priority(me) < priority(peer):
            return None   # we keep the way: our supervisor releases us when the other has cleared our fields
        self.giving_way_to, self.gave_way_s = peer, now
        self.events.append({"t_s": round(now, 2), "peer": peer.name, "gave_way": True,
                            "order": [list(map(str, priority(me))), list(map(str, priority(peer)))]})
        return peer

    def may_resume(self, now: float, my_pose) -> bool:
        """After giving way: the keeper is behind us (it passed), or far away and not ahead, or we waited
        ``wait_max_s``."""
        keeper = self.giving_way_to
        if keeper is None:
            return True
        if now - self.gave_way_s >= self.p.wait_max_s:
            return True
        cur = self.peers.get(keeper.name)
        if cur is None or now - cur.t_s > self.p.peer_timeout_s or cur.t_s <= self.gave_way_s:
            return False
        c, s = math.cos(my_pose[2]), math.sin(my_pose[2])
        lon = (cur.pose[0] - my_pose[0]) * c + (cur.pose[1] - my_pose[1]) * s
        far = math.hypot(cur.pose[0] - my_pose[0], cur.pose[1] - my_pose[1])
        gone = far >= self.p.near_m + self.p.pass_clear_m and not _in_front(my_pose, cur.pose, math.inf,
                                                                            self.p.ahead_rad)
        return lon <= -self.p.pass_clear_m or gone

    def resumed(self, now: float) -> None:
        if self.events:
            self.events[-1]["resumed_s"] = round(now, 2)
        self.giving_way_to = self.gave_way_s = None
        self._since = self._peer = None
