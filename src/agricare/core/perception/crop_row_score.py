"""Crop-row detection scores against label images: CRDA and position/angle errors.

CRDA (Vidovic, Cupec & Hocenski, Pattern Recognition 2016): for each of the ``m = 3`` label rows nearest
the image centre and every image row ``v`` it covers, with ``u*(v)`` the true row position, ``d*(v)`` the
true spacing to the adjacent label row(s) (mean of left and right when both exist) and ``u(v)`` the
detected row matched to it, ``s = max(1 - ((u(v) - u*(v)) / (0.1 d*(v)))^2, 0)``; the image's CRDA is
the mean of ``s`` over these rows and image rows (a missed row scores 0 on all its image rows).

Label images hold every row as a white line (~6 px) on black. Label lines are recovered by tracking run
centres image row by image row from the bottom up (they stop where they merge near the vanishing point)
and fitted by a quadratic ``u*(v)``; the rows nearest the centre are those nearest the centre column at
``v = 0.75 H``. Detected polylines are extended linearly beyond their ends. Matching is one-to-one (each
detection serves at most one label row), chosen to maximise the summed score, so a detector cannot gain
by returning many candidate lines. For the matched rows ``pos_err`` is the mean ``|u - u*| / d*`` (capped
at 0.5 per sample) and ``ang_err_deg`` the mean absolute direction difference over the row's lower half.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

CAP = 0.5
M_ROWS = 3


def label_lines(label_gray: np.ndarray, min_len_px: int = 20) -> list[np.ndarray]:
    """Recover label lines as (K, 2) arrays of (x, y) run centres, bottom-up."""
    lab = np.asarray(label_gray)
    if lab.ndim == 3:
        lab = lab[..., 0]
    on = lab > 127
    h, _w = on.shape
    active: list[dict] = []
    done: list[list] = []
    for y in range(h - 1, -1, -1):
        row = on[y].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row, [0]])))
        starts, ends = edges[0::2], edges[1::2]
        centres = (starts + ends - 1) / 2.0
        widths = ends - starts
        claimed: dict[int, list[int]] = {}
        for ti, t in enumerate(active):
            pts = t["pts"]
            pred = pts[-1][0] + (t["slope"] if len(pts) > 5 else 0.0)
            if len(centres) == 0:
                continue
            j = int(np.argmin(np.abs(centres - pred)))
            if abs(centres[j] - pred) <= 8:
                claimed.setdefault(j, []).append(ti)
        stop = set()
        for j, tis in claimed.items():
            if len(tis) > 1 or widths[j] > 14:
                stop.update(tis)
            else:
                t = active[tis[0]]
                t["pts"].append((float(centres[j]), float(y)))
                if len(t["pts"]) > 5:
                    a, b = t["pts"][-6], t["pts"][-1]
                    t["slope"] = (b[0] - a[0]) / 5.0
                t["miss"] = 0
        claimed_tracks = {ti for tis in claimed.values() for ti in tis}
        for ti, t in enumerate(active):
            if ti not in claimed_tracks:
                t["miss"] += 1
                if t["miss"] > 3:
                    stop.add(ti)
        for ti in sorted(stop, reverse=True):
            done.append(active.pop(ti)["pts"])
        # new tracks for unclaimed narrow runs (lines entering from the side / bottom)
        for j in range(len(centres)):
            if j not in claimed and widths[j] <= 14:
                if all(abs(t["pts"][-1][0] - centres[j]) > 10 for t in active):
                    active.append({"pts": [(float(centres[j]), float(y))], "slope": 0.0, "miss": 0})
    done.extend(t["pts"] for t in active)
    return [np.asarray(p) for p in done if len(p) >= min_len_px]


def _fit_label(g: np.ndarray) -> np.ndarray:
    """Quadratic ``x(y)`` of a label line (straight when it is short)."""
    deg = 2 if np.ptp(g[:, 1]) > 60 else 1
    return np.polyfit(g[:, 1], g[:, 0], deg)


def _extend(poly: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x of a bottom-up detected polyline at image rows ``y``, extended linearly beyond both ends."""
    q = np.asarray(poly, float)
    o = np.argsort(q[:, 1])
    ys, xs = q[o, 1], q[o, 0]
    keep = np.concatenate([[True], np.diff(ys) > 1e-9])
    ys, xs = ys[keep], xs[keep]
    if len(ys) < 2:
        return np.full(len(y), np.nan)
    x = np.interp(y, ys, xs)
    lo, hi = y < ys[0], y > ys[-1]
    x[lo] = xs[0] + (y[lo] - ys[0]) * (xs[1] - xs[0]) / (ys[1] - ys[0])
    x[hi] = xs[-1] + (y[hi] - ys[-1]) * (xs[-1] - xs[-2]) / (ys[-1] - ys[-2])
    return x


def label_rows(label_gray) -> tuple[list, int]:
    """Label lines as (poly coefficients, y_top, y_bottom), sorted left to right; and the image width."""
    lab = np.asarray(label_gray)
    h, w = lab.shape[:2]
    out = []
    for g in label_lines(lab):
        c = _fit_label(g)
        out.append((c, float(g[:, 1].min()), float(g[:, 1].max())))
    out.sort(key=lambda t: float(np.polyval(t[0], 0.75 * h)))
    return out, w


def crda_image(rows, label_gray, m: int = M_ROWS) -> dict:
    """CRDA of one image (see the module docstring) plus position/angle errors of the matched rows.

    ``rows``: detected rows, list of (N, 2) polylines (x, y) px. Returns a dict with ``crda`` in [0, 1].
    """
    gts, w = label_rows(label_gray)
    h = np.asarray(label_gray).shape[0]
    res = {"n_label_lines": len(gts), "n_detected": len(rows)}
    if len(gts) < 2:  # no spacing defined: the image cannot be scored
        res.update(crda=math.nan)
        return res
    xref = np.array([np.polyval(c, 0.75 * h) for c, _, _ in gts])
    chosen = sorted(np.argsort(np.abs(xref - (w - 1) / 2.0))[: min(m, len(gts))])
    det = [np.asarray(r, float) for r in rows if len(r) >= 2]
    samples = []  # per chosen line: (v, u*, d*)
    for i in chosen:
        c, y0, y1 = gts[i]
        v = np.arange(math.ceil(y0), math.floor(y1) + 1, dtype=float)
        u = np.polyval(c, v)
        ds = []
        for j in (i - 1, i + 1):
            if 0 <= j < len(gts):
                ds.append(np.abs(np.polyval(gts[j][0], v) - u))
        d = np.mean(ds, axis=0)
        ok = d > 1.0
        samples.append((v[ok], u[ok], d[ok]))
    # score matrix: label line x detection -> per-sample s
    S = np.zeros((len(chosen), len(det)))
    E, A = np.full((len(chosen), len(det)), CAP), np.full((len(chosen), len(det)), 90.0)
    for a, (v, u, d) in enumerate(samples):
        if len(v) == 0:
            continue
        for b, r in enumerate(det):
            x = _extend(r, v)
            rel = (x - u) / (0.1 * d)
            S[a, b] = float(np.mean(np.maximum(1.0 - rel * rel, 0.0)))
            E[a, b] = float(np.mean(np.minimum(np.abs(x - u) / d, CAP)))
            lower = v >= v[0] + 0.5 * (v[-1] - v[0])
            if lower.sum() >= 2:
                vl, ul, xl = v[lower], u[lower], x[lower]
                a_gt = math.atan2(ul[-1] - ul[0], vl[-1] - vl[0])
                a_dt = math.atan2(xl[-1] - xl[0], vl[-1] - vl[0])
                A[a, b] = abs(math.degrees(a_gt - a_dt))
    # one-to-one assignment maximising the summed score (tiny: brute force over permutations)
    n_s = np.array([len(sm[0]) for sm in samples], float)
    best, best_val = [None] * len(chosen), -1.0
    cand = list(range(len(det))) + [None] * len(chosen)
    for perm in set(itertools.permutations(cand, len(chosen))):
        val = sum(S[a, b] * n_s[a] for a, b in enumerate(perm) if b is not None)
        if val > best_val + 1e-12:
            best, best_val = list(perm), val
    tot = float(n_s.sum())
    res["crda"] = best_val / tot if tot > 0 else math.nan
    # the same assignment's score by image band (top 30 % / middle / bottom 40 % of the image rows; NaN
    # where no scored sample falls in the band): where the rows converge (top) the spacing is smallest
    vv = np.concatenate([sm[0] for sm in samples]) if samples else np.zeros(0)
    ss = [np.zeros(len(sm[0])) for sm in samples]
    for a, b in enumerate(best):
        if b is not None and len(samples[a][0]):
            v, u, d = samples[a]
            rel = (_extend(det[b], v) - u) / (0.1 * d)
            ss[a] = np.maximum(1.0 - rel * rel, 0.0)
    ss = np.concatenate(ss) if ss else np.zeros(0)
    for name, lo, hi in (("top", 0.0, 0.3), ("middle", 0.3, 0.6), ("bottom", 0.6, 1.01)):
        sel = (vv >= lo * h) & (vv < hi * h)
        res[f"crda_{name}"] = float(ss[sel].mean()) if sel.any() else math.nan
    pe = [E[a, b] if b is not None else CAP for a, b in enumerate(best)]
    ae = [A[a, b] for a, b in enumerate(best) if b is not None and E[a, b] < 0.25]
    res["pos_err"] = float(np.mean(pe))
    res["ang_err_deg"] = float(np.mean(ae)) if ae else 90.0
    res["matched"] = int(sum(1 for a, b in enumerate(best) if b is not None and E[a, b] < 0.25))
    res["rows_scored"] = len(chosen)
    return res


