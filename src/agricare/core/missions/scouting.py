"""Row-robot scouting mission: follow N crop rows by camera, then save the growth map and write a record.

The row follower (:mod:`agricare.core.control.row_follower`, node ``row_follower_node``) does the driving:
enter the first row, follow it by camera, leave it at its end, U-turn into the next row. This mission
watches it and closes the job:

1. ``running``: count rows from the follower's state changes. A row is counted when a ``following``
   stretch ends (the follower switches to ``end_of_row`` or ``done``) after the robot travelled at least
   ``min_row_length_m`` in it, so a short creep while looking for the rows after a turn is not a row.
2. When ``rows`` rows are done and the follower reports ``done`` (configure the follower with
   ``max_rows`` = ``rows``; after ``stop_timeout_s`` the mission goes on regardless), or the follower gives
   up early, or ``max_duration_s`` passes: ``saving``: the caller saves the growth map (action ``"save"``)
   and reports back with :meth:`ScoutingMission.on_saved`.
3. ``done`` when all rows were followed (``failed`` otherwise), with the record written: the plant-gap and
   low-cover cells of the saved growth map that lie within ``record_margin_m`` of the scouted track.

Record files (:func:`write_record`): ``scouting_record.geojson`` (track LineString + one Point per listed
cell; WGS84 when the growth map CSV carries lat/lon, else map metres with ``"crs": "map"``),
``scouting_cells.csv`` (kind, x_m, y_m, lat_deg, lon_deg, cover_pct), ``scouting_record.png`` (top view:
track, gap cells red, other low-cover cells orange) and ``scouting_record.json`` (the mission summary).

No ROS, no clock: every method takes the time in seconds.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from dataclasses import dataclass

import cv2
import numpy as np

RUNNING = "running"
SAVING = "saving"
DONE = "done"
FAILED = "failed"


@dataclass(frozen=True)
class ScoutingParams:
    """Scouting mission parameters (SI units).

    Attributes
    ----------
    rows : number of rows to follow (>= 1).
    min_row_length_m : distance travelled in one ``following`` stretch for it to count as a row, m.
    max_duration_s : the mission fails (after saving what it has) when it runs longer than this, s.
    stop_timeout_s : after the last row, wait this long for the follower to report ``done``, s.
    save_timeout_s : the growth-map save must answer within this, s.
    record_margin_m : cells further than this from the scouted track are left out of the record, m.
    """

    rows: int = 4
    min_row_length_m: float = 5.0
    max_duration_s: float = 900.0
    stop_timeout_s: float = 10.0
    save_timeout_s: float = 10.0
    record_margin_m: float = 1.0

    def __post_init__(self):
        if isinstance(self.rows, bool) or int(self.rows) != self.rows or int(self.rows) < 1:
            raise ValueError(f"rows must be an integer >= 1, got {self.rows!r}")
        for name in ("min_row_length_m", "record_margin_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        for name in ("max_duration_s", "stop_timeout_s", "save_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")


class ScoutingMission:
    """State machine of the scouting mission (see module docstring).

    Feed it with :meth:`on_follower_state` and :meth:`on_pose`, call :meth:`update` periodically and act
    on its return value (``"save"``: save the growth map now, then call :meth:`on_saved`).
    """

    def __init__(self, params: ScoutingParams | None = None):
        self.p = params or ScoutingParams()
        self.state = RUNNING
        self.rows_done = 0
        self.reason = ""
        self.follower_state = ""
        self.track: list[tuple[float, float]] = []   # map-frame x, y while following (for the record)
        self.row_lengths_m: list[float] = []
        self.files: list[str] = []
        self.cells: list[dict] = []
        self.save_message = ""
        self._t0 = None
        self._seg_m = 0.0
        self._last_xy = None
        self._rows_reached_t = None
        self._save_requested_t = None
        self._outcome = None  # (state, reason) decided when saving starts

    # ------------------------------------------------------------------ inputs
    def _start(self, t_s):
        if self._t0 is None:
            self._t0 = float(t_s)

    def on_follower_state(self, t_s: float, state: str) -> None:
        """A state change of the row follower (``following``/``end_of_row``/``turning``/``done``)."""
        self._start(t_s)
        state = str(state)
        prev, self.follower_state = self.follower_state, state
        if prev == "following" and state != "following":
            if self._seg_m >= self.p.min_row_length_m and self.state == RUNNING:
                self.rows_done += 1
                self.row_lengths_m.append(round(self._seg_m, 2))
                if self.rows_done >= self.p.rows and self._rows_reached_t is None:
                    self._rows_reached_t = float(t_s)
            self._seg_m = 0.0
        if state == "following" and prev != "following":
            self._seg_m = 0.0

    def on_pose(self, t_s: float, xy) -> None:
        """Robot position ``(x_m, y_m)`` (map frame; used for the row length and the record track)."""
        self._start(t_s)
        x, y = float(xy[0]), float(xy[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        if self._last_xy is not None and self.follower_state == "following":
            self._seg_m += math.hypot(x - self._last_xy[0], y - self._last_xy[1])
        self._last_xy = (x, y)
        if self.follower_state == "following" and self.state == RUNNING:
            if not self.track or math.hypot(x - self.track[-1][0], y - self.track[-1][1]) >= 0.2:
                self.track.append((x, y))

    # ------------------------------------------------------------------ progress
    def update(self, t_s: float) -> str:
        """Advance; returns ``"save"`` once when the growth map must be saved, else ``""``."""
        self._start(t_s)
        t = float(t_s)
        if self.state == RUNNING:
            outcome = None
            if self.rows_done >= self.p.rows:
                if self.follower_state == "done":
                    outcome = (DONE, f"{self.rows_done} rows followed")
                elif t - self._rows_reached_t >= self.p.stop_timeout_s:
                    outcome = (DONE, f"{self.rows_done} rows followed (follower did not report done)")
            elif self.follower_state == "done":
                outcome = (FAILED, f"row follower stopped after {self.rows_done} of {self.p.rows} rows")
            if outcome is None and t - self._t0 > self.p.max_duration_s:
                outcome = (FAILED, f"timeout after {self.p.max_duration_s:.0f} s with {self.rows_done} of "
                                   f"{self.p.rows} rows")
            if outcome is not None:
                self._outcome = outcome
                self.state, self.reason = SAVING, "saving the growth map"
                self._save_requested_t = t
                return "save"
        elif self.state == SAVING and t - self._save_requested_t > self.p.save_timeout_s:
            self.on_saved(t, False, "growth map save timed out", [])
        return ""

    def on_saved(self, t_s: float, success: bool, message: str, files, cells=None) -> None:
        """Result of the growth-map save; ``cells`` are the growth map's cells (see :func:`read_growth_csv`)."""
        if self.state != SAVING:
            return
        self.save_message = str(message)
        self.files = [str(f) for f in files]
        if cells:
            self.cells = select_cells(cells, self.track, self.p.record_margin_m)
        state, reason = self._outcome
        if not success:
            state, reason = FAILED, f"{reason}; growth map not saved: {message}"
        self.state, self.reason = state, reason

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    def progress(self) -> float:
        """Fraction of the rows done, in [0, 1] (1 only when finished successfully)."""
        if self.state == DONE:
            return 1.0
        return float(min(self.rows_done / self.p.rows, 0.99))

    def detail(self) -> dict:
        """JSON-able summary for ``mission/status`` and the record."""
        gaps = [c for c in self.cells if c["kind"] == "gap"]
        low = [c for c in self.cells if c["kind"] == "low_cover"]
        return {"rows_done": self.rows_done, "rows_planned": int(self.p.rows), "row_lengths_m": self.row_lengths_m,
                "follower_state": self.follower_state, "reason": self.reason, "plant_gaps": len(gaps),
                "low_cover_cells": len(low) + len(gaps),
                "gap_cells": [[c["x_m"], c["y_m"], c["cover_pct"]] for c in gaps[:50]],
                "low_cover_cells_list": [[c["x_m"], c["y_m"], c["cover_pct"]] for c in low[:50]],
                "files": self.files}


# ---------------------------------------------------------------------------------------------- record


def read_growth_csv(path) -> list[dict]:
    """Cells flagged low-cover in a growth-map CSV (``GrowthMap.save``): dicts with ``kind`` (``gap`` or
    ``low_cover``), ``x_m``, ``y_m``, ``cover_pct`` and, when present, ``lat_deg``/``lon_deg``."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                low, gap = int(row.get("low", 0)), int(row.get("gap", 0))
                if not (low or gap):
                    continue
                c = {"kind": "gap" if gap else "low_cover", "x_m": float(row["x_m"]), "y_m": float(row["y_m"]),
                     "cover_pct": float(row["cover_pct"])}
                if row.get("lat_deg") and row.get("lon_deg"):
                    c["lat_deg"], c["lon_deg"] = float(row["lat_deg"]), float(row["lon_deg"])
            except (KeyError, ValueError):
                continue
            out.append(c)
    return out


def select_cells(cells, track_xy, margin_m: float) -> list[dict]:
    """The cells within ``margin_m`` of the polyline ``track_xy`` (N, 2) (all cells when the track is empty)."""
    cells = list(cells)
    tr = np.asarray(track_xy, dtype=float).reshape(-1, 2)
    if len(tr) == 0 or not cells:
        return cells
    pts = np.array([[c["x_m"], c["y_m"]] for c in cells])
    if len(tr) == 1:
        d = np.hypot(*(pts - tr[0]).T)
    else:
        a, b = tr[:-1], tr[1:]
        e = b - a
        L2 = np.maximum(np.einsum("ij,ij->i", e, e), 1e-12)
        u = np.clip(((pts[:, None, :] - a[None]) * e[None]).sum(-1) / L2[None], 0.0, 1.0)
        q = a[None] + u[..., None] * e[None]
        d = np.hypot(*(pts[:, None, :] - q).transpose(2, 0, 1)).min(axis=1)
    return [c for c, di in zip(cells, d) if di <= margin_m]


def write_record(directory, track_xy, cells, summary: dict, robot: str = "row_robot") -> list[str]:
    """Write the scouting record (GeoJSON, CSV, PNG, JSON) into ``directory``; returns the paths."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tr = np.asarray(track_xy, dtype=float).reshape(-1, 2)
    geo = all("lat_deg" in c for c in cells) and len(cells) > 0
    feats = []
    if len(tr) >= 2:
        feats.append({"type": "Feature", "properties": {"kind": "track", "robot": robot, "frame": "map"},
                      "geometry": {"type": "LineString", "coordinates": [[round(x, 3), round(y, 3)] for x, y in tr]}})
    for c in cells:
        coords = [c["lon_deg"], c["lat_deg"]] if geo else [c["x_m"], c["y_m"]]
        feats.append({"type": "Feature", "properties": {"kind": c["kind"], "cover_pct": c["cover_pct"],
                                                        "x_m": c["x_m"], "y_m": c["y_m"]},
                      "geometry": {"type": "Point", "coordinates": coords}})
    fc = {"type": "FeatureCollection", "crs": "EPSG:4326 (cells), map metres (track)" if geo else "map",
          "properties": {"robot": robot, **{k: v for k, v in summary.items() if not isinstance(v, list)}},
          "features": feats}
    gj = d / "scouting_record.geojson"
    gj.write_text(json.dumps(fc, indent=1))
    cp = d / "scouting_cells.csv"
    with cp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "x_m", "y_m", "lat_deg", "lon_deg", "cover_pct"])
        for c in cells:
            w.writerow([c["kind"], f"{c['x_m']:.3f}", f"{c['y_m']:.3f}",
                        f"{c['lat_deg']:.8f}" if "lat_deg" in c else "",
                        f"{c['lon_deg']:.8f}" if "lon_deg" in c else "", f"{c['cover_pct']:.1f}"])
    png = d / "scouting_record.png"
    cv2.imwrite(str(png), render_record(tr, cells))
    js = d / "scouting_record.json"
    js.write_text(json.dumps(summary, indent=1))
    return [str(gj), str(cp), str(png), str(js)]


def render_record(track_xy, cells, px_per_m: float = 20.0, margin_m: float = 1.0) -> np.ndarray:
    """Top view (north up) of the track (blue) and the listed cells (gap red, low cover orange), BGR."""
    tr = np.asarray(track_xy, dtype=float).reshape(-1, 2)
    pts = np.array([[c["x_m"], c["y_m"]] for c in cells]).reshape(-1, 2)
    allp = np.vstack([tr, pts]) if len(tr) + len(pts) else np.zeros((1, 2))
    lo, hi = allp.min(axis=0) - margin_m, allp.max(axis=0) + margin_m
    scale = min(px_per_m, 2000.0 / max(float(np.max(hi - lo)), 1e-6))
    w, h = int(math.ceil((hi[0] - lo[0]) * scale)) + 1, int(math.ceil((hi[1] - lo[1]) * scale)) + 1
    img = np.full((h, w, 3), 255, np.uint8)

    def px(p):
        p = np.asarray(p, dtype=float).reshape(-1, 2)
        return np.column_stack([(p[:, 0] - lo[0]) * scale, (hi[1] - p[:, 1]) * scale]).round().astype(np.int32)

    for c, q in zip(cells, px(pts)):
        colour = (0, 0, 230) if c["kind"] == "gap" else (0, 150, 255)
        cv2.circle(img, (int(q[0]), int(q[1])), max(2, int(0.15 * scale)), colour, -1)
    if len(tr) >= 2:
        cv2.polylines(img, [px(tr)], False, (200, 80, 0), max(1, int(0.05 * scale)))
    return img
