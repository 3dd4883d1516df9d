"""Learned crop-row detection: centre-line heatmap network + global vanishing-point row model.

1. A small fully-convolutional network (``models/crop_row_net.onnx``, 377 k parameters, 1.4 MiB: an
   ImageNet-pretrained EfficientNet-Lite0 encoder cut at 1/16 and a light decoder, fine-tuned by
   ``tools/train_row_net.py --arch effl`` on dev-set images 0-199, run with OpenCV's DNN module) maps the
   image, resized to ``NET_SIZE``, to a heatmap of crop-row centre lines at half that resolution, one pass
   (``FLIP_AVERAGE`` off: the mirror pass would halve the frame rate below 30 fps at 320x240).
2. Global row model on the heatmap: the common vanishing point of all rows is found by band coherence
   (the ``"vp"`` search of :mod:`crop_rows`, run on the heatmap: band profiles mapped onto the bottom line
   through the right vanishing point line up); rows are the peaks of the consensus profile.
3. Each row is refined on the heatmap image row by image row (windowed centroid of the ridge, window
   narrowing with the perspective spacing) and fitted robustly as a correction to its vanishing-point
   line: a constant and slope first, held near the VP line, then a gentle quadratic so curved rows bend.
   Rows are returned as polylines from the image bottom to the top of their support.
4. Polish: each supported row moves onto the heatmap's own ridge, found per image row near it as the
   maximum with a sub-pixel Gaussian (parabola through the log) peak fit, as a free quadratic correction
   (ridge on slope and curvature).
   Both fits weight each image row by the inverse of the perspective scale (local spacing / bottom spacing,
   ``SPACING_WEIGHT_POW``), so an error counts relative to the spacing there, as in CRDA (round 12 of
   ``tools/train_row_net.py``: held-out 0.677 -> 0.698; rows of the top band taken from the lower part's fit
   or an equal-spacing comb instead scored lower on both selection splits). Measured: decoding the training
   targets themselves at this heatmap resolution scores 0.91-0.92 on 160-199, the network's heatmap even with
   the true rows' positions known (best peak near each true row) 0.65-0.69: the heatmap's ridge placement, not
   its resolution or the decoding, is what limits the learned path.

Row-anchor nets (round 14 of ``tools/train_row_net.py``, ``--anchor-bins``; not the bundled model): instead of a
heatmap the net predicts the rows' positions directly, for each of ``H_a`` anchor image rows and each of
``ANCHOR_SLOTS`` row slots a distribution over column bins plus "absent" (:func:`fit_anchor_rows` decodes it
into the same row format). :func:`net_rows` chooses the decoding by the shape of the model's output, so
``detect_rows`` and the benches take either kind of model.

All geometry here is in heatmap pixels (x right, y down, pixel centres at integers; for a row-anchor net the
pixels of the network input); :func:`detect_rows` maps it to the input image.
"""

from __future__ import annotations

import functools
import pathlib

import cv2
import numpy as np

ROW_NET_PATH = pathlib.Path(__file__).resolve().parent / "models" / "crop_row_net.onnx"
NET_SIZE = (224, 224)  # network input (w, h); the bundled net's heatmap is half of it

# fit parameters (chosen on the validation images 160-199 of the tuning split, network trained on 0-159)
PEAK_FRAC = 0.15      # consensus-profile peaks below this fraction of the highest are not rows
ON_THRESHOLD = 0.3    # heatmap value a row must reach in an image row to count as support there
WINDOW_FRAC = 0.2     # centroid window half-width, fraction of the local row spacing
MAX_CONVERGENCE = 1.6  # largest (heatmap height / VP height above the bottom) searched
N_BANDS = 24
# heatmap = mean of the image's and its mirror image's (test-time augmentation); off for the bundled
# EfficientNet-Lite0 net (chosen and measured without it; the earlier U-Net "B" used it)
FLIP_AVERAGE = False
ROTATE_ABOUT_VP = True  # the free term of the correction turns a row about the VP (else shifts it)
VP_FROM_ROWS = False  # re-estimate the VP from the refined rows (measured worse on 160-199: 0.597 vs 0.614)
FILL_COMB = True      # add the rows the equal-spacing comb predicts where the network saw none
# ridge (fraction of the summed weight) on the constant, slope and curvature of each row's correction to
# its vanishing-point line, per refinement pass: held near the VP line first, then a gentle quadratic
REFINE_RIDGES = ((1e-6, 0.5, 10.0), (1e-6, 0.05, 0.5))
# final polish of each supported row on the heatmap's own ridge peaks (sub-pixel: parabola through the log of
# the three values around each image row's maximum, i.e. a Gaussian fit), fitted as a free quadratic
# correction of the row (ridge on slope / curvature): 160-199 0.654 -> 0.670 (net at 224 px)
POLISH = True
POLISH_WINDOW_FRAC = 0.15   # peak search half-width, fraction of the local row spacing at that image row
POLISH_MIN_PEAK = 0.3       # a peak below this heatmap value is not used
POLISH_RIDGES = (0.0, 0.05, 0.5)  # ridge (fraction of the summed weight) on constant, slope, curvature
POLISH_PASSES = 2
# image rows weighted by (local row spacing / bottom spacing)^-SPACING_WEIGHT_POW in the refinement and polish
# fits (floored at SPACING_WEIGHT_MIN, i.e. at most 5x): CRDA scores each image row's error relative to the
# spacing there, a plain pixel least-squares fit lets the wide bottom rows outvote the converging top ones
# (round 12: held-out 0.677 -> 0.698, top band 0.441 -> 0.491; 0 restores the unweighted fits to within 1e-7 px,
# not bit for bit: the float64 weights lift the float32 heatmap's fit to float64; 40 synthetic frames, max 7.1e-8)
SPACING_WEIGHT_POW = 1.0
SPACING_WEIGHT_MIN = 0.2
# a heatmap with a side above this (a net with a full-resolution output) is fitted on its half-size image
# (vanishing point, peaks, refinement: the cost of the half-resolution heatmaps) and polished at full size
FIT_MAX_SIDE = 128


def _spacing_weight(sc: np.ndarray) -> np.ndarray:
    """Per-image-row weight of the refinement and polish fits: the perspective scale ``sc`` (local row
    spacing / spacing on the bottom line) to the power -``SPACING_WEIGHT_POW``, floored at
    ``SPACING_WEIGHT_MIN`` (see there)."""
    if not SPACING_WEIGHT_POW:
        return np.ones_like(sc)
    return np.maximum(sc, SPACING_WEIGHT_MIN) ** (-SPACING_WEIGHT_POW)


def use_net(model: str | pathlib.Path | None = None, net_size: int = 0, flip: bool | None = None) -> None:
    """Run the learned path with another exported model, input side or mirror pass (the benches'
    ``--model``/``--net-size``/``--flip``/``--no-flip``: candidates are scored and driven with the shipped code,
    not a copy); ``flip`` None keeps the bundled setting. Process-wide: the nodes of an embedded run share this
    module."""
    global ROW_NET_PATH, NET_SIZE, FLIP_AVERAGE
    if model:
        ROW_NET_PATH = pathlib.Path(model).resolve()
        _net.cache_clear()
    if net_size:
        NET_SIZE = (int(net_size), int(net_size))
    if flip is not None:
        FLIP_AVERAGE = bool(flip)


@functools.lru_cache(maxsize=1)
def _net():
    """The row centre-line network (cv2.dnn), loaded once; ValueError when the model file is missing."""
    if not ROW_NET_PATH.is_file():
        raise ValueError(f"method 'learned' needs {ROW_NET_PATH} (tools/train_row_net.py writes it)")
    return cv2.dnn.readNetFromONNX(str(ROW_NET_PATH))


def _forward(image_bgr: np.ndarray, flip: bool) -> np.ndarray:
    """The network's raw output for one image (and its mirror image with ``flip``, as a batch of two)."""
    x = image_bgr if image_bgr.shape[1::-1] == NET_SIZE else cv2.resize(image_bgr, NET_SIZE,
                                                                          interpolation=cv2.INTER_AREA)
    blob = x.astype(np.float32).transpose(2, 0, 1)[None] * np.float32(1.0 / 255.0)
    if flip:  # the mirrored image too, in one batch
        blob = np.concatenate([blob, blob[..., ::-1]])
    net = _net()
    net.setInput(np.ascontiguousarray(blob))
    return net.forward()


def is_anchor_output(out: np.ndarray) -> bool:
    """True for the output of a row-anchor net (``(N, K (G + 1), H_a, 1)``, :func:`fit_anchor_rows`), False
    for a heatmap net (``(N, 1, h, w)``)."""
    return out.ndim == 4 and out.shape[1] > 1 and out.shape[3] == 1


def row_heatmap(image_bgr: np.ndarray) -> np.ndarray:
    """Row centre-line probability in [0, 1] at the network's output resolution (float32, h x w): half
    ``NET_SIZE`` for the bundled net, ``NET_SIZE`` itself for a net trained with ``--full-res``; callers read
    the scale from the shape (:func:`fit_rows` works in heatmap pixels)."""
    out = _forward(image_bgr, FLIP_AVERAGE)
    if is_anchor_output(out):
        raise ValueError(f"{ROW_NET_PATH.name} is a row-anchor net: it has no heatmap (use net_rows)")
    logits = 0.5 * (out[0, 0] + out[1, 0, :, ::-1]) if FLIP_AVERAGE else out[0, 0]
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def net_rows(image_bgr: np.ndarray):
    """Rows of the learned path for either kind of net, chosen by the shape of its output: a heatmap net's
    heatmap through :func:`row_heatmap` and :func:`fit_rows`, a row-anchor net's output through
    :func:`fit_anchor_rows` (one pass: the mirror pass of ``FLIP_AVERAGE`` is for heatmaps only). Returns
    (the fit dict or None, (h, w) of the frame its pixels are in)."""
    if _is_anchor_model():
        return fit_anchor_rows(_forward(image_bgr, False)[0]), (NET_SIZE[1], NET_SIZE[0])
    hm = row_heatmap(image_bgr)
    return fit_rows(hm), hm.shape


@functools.lru_cache(maxsize=4)
def _anchor_model(path: str) -> bool:
    net = _net()
    net.setInput(np.zeros((1, 3, NET_SIZE[1], NET_SIZE[0]), np.float32))
    return is_anchor_output(net.forward())


def _is_anchor_model() -> bool:
    """Whether the current model (``ROW_NET_PATH``) is a row-anchor net (one probe pass per model)."""
    return _anchor_model(f"{ROW_NET_PATH}:{NET_SIZE}")


# Row-anchor head (``tools/train_row_net.py --anchor``; round 14): for each of ``H_a`` anchor image rows and
# each of ANCHOR_SLOTS row slots, logits over G column bins and a last "absent" class. Slot k is the labelled
# row k - ANCHOR_SLOTS // 2 places from the row nearest the image centre at the image bottom. Anchor j lies
# at image row (j + 0.5) H / H_a - 0.5 (input px); bin g is centred at x0 + (g + 0.5) (x1 - x0) / G - 0.5 with
# (x0, x1) = ANCHOR_X_RANGE times the input width (rows may leave the image at the sides).
ANCHOR_SLOTS = 5
ANCHOR_X_RANGE = (-0.25, 1.25)
ANCHOR_WINDOW = 2        # the position is the expectation over the bins within this many of the best bin
ANCHOR_MIN_POINTS = 3    # a slot with fewer present anchors is no row
# > 0: each slot's anchors replaced by a polynomial of this degree in the image row, fitted to them (weighted by
# the presence probability); 0: the polyline through the anchors themselves
ANCHOR_FIT_DEG = 0


def anchor_geometry(n_anchors: int, n_bins: int, w: float, h: float):
    """(anchor image rows (H_a,), bin centres (G,)) in input px of a ``w x h`` network input."""
    v = (np.arange(n_anchors) + 0.5) * h / n_anchors - 0.5
    x0, x1 = ANCHOR_X_RANGE[0] * w, ANCHOR_X_RANGE[1] * w
    xc = x0 + (np.arange(n_bins) + 0.5) * (x1 - x0) / n_bins - 0.5
    return v, xc


def anchor_positions(logits: np.ndarray, w: float, h: float):
    """Decode a row-anchor output ``(K (G + 1), H_a, 1)`` or ``(K, G + 1, H_a)``: returns (anchor rows (H_a,),
    x (K, H_a) input px, present (K, H_a) bool, presence probability (K, H_a)). An anchor is present where
    its best class is a column bin; its position is the softmax expectation over the bins within
    ``ANCHOR_WINDOW`` of the best bin (the best column bin, even where "absent" wins; next to the ends of the
    range the window is shifted inside it)."""
    z = np.asarray(logits, np.float64)
    if z.ndim == 3 and z.shape[2] == 1:
        c, ha = z.shape[:2]
        if c % ANCHOR_SLOTS:
            raise ValueError(f"row-anchor output with {c} channels is not {ANCHOR_SLOTS} slots x (bins + 1)")
        z = z[..., 0].reshape(ANCHOR_SLOTS, c // ANCHOR_SLOTS, ha)
    k, g1, ha = z.shape
    g = g1 - 1
    v, xc = anchor_geometry(ha, g, w, h)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    best = np.argmax(p[:, :g], axis=1)                                  # (K, H_a)
    present = np.argmax(p, axis=1) < g
    start = np.clip(best - ANCHOR_WINDOW, 0, g - 1 - 2 * ANCHOR_WINDOW)   # the window kept inside the bins
    win = start[:, None, :] + np.arange(2 * ANCHOR_WINDOW + 1)[None, :, None]
    pw = np.take_along_axis(p, win, axis=1)
    x = (pw * xc[win]).sum(axis=1) / np.maximum(pw.sum(axis=1), 1e-12)
    return v, x, present, 1.0 - p[:, g, :]


def fit_anchor_rows(logits: np.ndarray, w: float = 0.0, h: float = 0.0):
    """Rows of a row-anchor net's output, in the format of :func:`fit_rows` (pixels of the network input,
    ``NET_SIZE`` unless ``w`` / ``h`` are given): each slot with at least ``ANCHOR_MIN_POINTS`` present anchors
    is a polyline through its present anchors, bottom-up (with ``ANCHOR_FIT_DEG`` through their polynomial
    fit instead); support = its mean presence probability there; span = its height above the image bottom as a
    fraction of the image; x_bottom = the line through its lowest (up to 8) anchors (or the fit) at the bottom
    image row.
    The vanishing point is the least-squares intersection of the rows' straight fits (lam 0 when fewer than
    two rows or the rows do not converge above the image bottom); coherence = contrast = the mean support.
    None when no slot is a row. Positions beyond the outermost bin centres come back clamped to them."""
    w = float(w or NET_SIZE[0])
    h = float(h or NET_SIZE[1])
    v, x, present, pp = anchor_positions(logits, w, h)
    rows, lines = [], []
    for k in range(x.shape[0]):
        idx = np.flatnonzero(present[k])
        if len(idx) < ANCHOR_MIN_POINTS:
            continue
        yy, xx = v[idx][::-1], x[k, idx][::-1]                         # bottom-up
        if ANCHOR_FIT_DEG > 0 and len(yy) > ANCHOR_FIT_DEG + 2:
            dn = (h - 1.0 - yy) / h
            cf = np.polyfit(dn, xx, ANCHOR_FIT_DEG, w=pp[k, idx][::-1])
            xx = np.polyval(cf, dn)
            xb = float(np.polyval(cf, 0.0))
        elif len(yy) >= 2:  # the line through the lowest (up to 8) anchors, at the bottom row
            b1, a1 = np.polyfit(yy[:8], xx[:8], 1)
            xb = float(a1 + b1 * (h - 1.0))
        else:
            xb = float(xx[0])
        support = float(pp[k, idx].mean())
        rows.append((np.column_stack([xx, yy]), support, float((h - 0.5 - yy.min()) / h), xb))
        b, a = np.polyfit(yy, xx, 1)                                   # x = a + b y
        lines.append((support * len(idx), a, b))
    if not rows:
        return None
    lam, m = 0.0, 0.0
    if len(lines) >= 2:
        W_ = np.array([t[0] for t in lines])
        nrm = np.sqrt(1.0 + np.array([t[2] for t in lines]) ** 2)
        A = np.array([[1.0, -t[2]] for t in lines]) / nrm[:, None]
        B = np.array([t[1] for t in lines]) / nrm
        if np.linalg.cond(A * np.sqrt(W_)[:, None]) < 1e6:
            vx, vy = np.linalg.lstsq(A * np.sqrt(W_)[:, None], B * np.sqrt(W_), rcond=None)[0]
            if (h - 0.5) - vy > 1.0:
                lam = 1.0 / ((h - 0.5) - vy)
                m = vx * lam
    xbs = np.sort([r[3] for r in rows])
    spacing = float(np.median(np.diff(xbs))) if len(xbs) > 1 else 0.3 * w
    coherence = float(np.mean([r[1] for r in rows]))
    return {"rows": rows, "lam": float(lam), "m": float(m), "spacing": spacing, "coherence": coherence,
            "contrast": coherence}


def _peaks(P: np.ndarray, xb: np.ndarray, min_sep: float):
    """Local maxima of the consensus profile above ``PEAK_FRAC`` of its maximum, at least ``min_sep`` apart,
    sub-sample by a parabola."""
    Pp = np.maximum(P, 0.0)
    top = float(Pp.max())
    if top <= 0:
        return []
    cand = np.flatnonzero((Pp[1:-1] >= Pp[:-2]) & (Pp[1:-1] > Pp[2:]) & (Pp[1:-1] >= PEAK_FRAC * top)) + 1
    cand = sorted(cand, key=lambda k: -Pp[k])
    chosen = []
    for k in cand:
        if all(abs(xb[k] - xb[j]) >= min_sep for j in chosen):
            chosen.append(k)
    out = []
    for k in sorted(chosen):
        a, b, c = Pp[k - 1], Pp[k], Pp[k + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den < -1e-9 else 0.0
        out.append(float(xb[k] + np.clip(off, -0.5, 0.5) * (xb[1] - xb[0])))
    return out


def _polish(hm: np.ndarray, rows, lam: float, spacing: float):
    """Rows (poly, support, span, x_bottom) moved onto the sub-pixel ridge peaks of the heatmap near them
    (see ``POLISH``), all rows at once (each row's image rows masked in); rows without support (comb
    guesses) and rows with too few peaks are kept as they are (a row whose second pass finds too few peaks
    keeps its first pass)."""
    h, w = hm.shape
    bottoms = [o[3] for o in rows]
    out = list(rows)
    ys = np.arange(h, dtype=np.float64)
    todo, X0, IN, HALF = [], [], [], []
    for i, (poly, support, _span, xbot) in enumerate(rows):
        if support <= 0.0:
            continue
        yq, xq = poly[::-1, 1], poly[::-1, 0]            # ascending y
        inr = (ys >= yq[0]) & (ys <= yq[-1])
        if inr.sum() < 6:
            continue
        nb = [abs(b - xbot) for b in bottoms if abs(b - xbot) > 1e-6]
        s_loc = min(nb) if nb else spacing
        todo.append(i)
        IN.append(inr)
        X0.append(np.interp(ys, yq, xq))
        HALF.append(np.maximum(POLISH_WINDOW_FRAC * s_loc * np.maximum(1.0 - lam * ((h - 0.5) - ys), 0.05), 1.5))
    if not todo:
        return out
    IN, X0, HALF = np.array(IN), np.array(X0), np.array(HALF)
    logh = np.log(np.maximum(hm, 1e-4))
    rix = np.arange(h)
    dv = ((h - 0.5) - ys) / h
    basis = np.stack([np.ones_like(dv), dv, dv * dv])
    XP = X0.copy()
    sw = _spacing_weight(1.0 - lam * ((h - 0.5) - ys))
    passes = np.zeros(len(todo), int)     # passes done per row
    live = np.ones(len(todo), bool)
    for _ in range(POLISH_PASSES):
        li = np.flatnonzero(live)
        xp, half, inr = XP[li], HALF[li], IN[li]
        lo = np.clip(np.floor(xp - half).astype(int), 1, w - 2)
        hi = np.clip(np.ceil(xp + half).astype(int), 1, w - 2)
        cols = lo[..., None] + np.arange(int((hi - lo)[inr].max()) + 1)
        vals = np.where(cols <= hi[..., None], hm[rix[None, :, None], np.minimum(cols, w - 2)], -1.0)
        k = np.take_along_axis(cols, np.argmax(vals, axis=2)[..., None], axis=2)[..., 0]
        pk = hm[rix[None, :], k]
        a, b, c = logh[rix[None, :], k - 1], logh[rix[None, :], k], logh[rix[None, :], k + 1]
        den = a - 2 * b + c
        off = np.where(den < -1e-9, 0.5 * (a - c) / np.where(den < -1e-9, den, -1.0), 0.0)
        px = k + np.clip(off, -0.5, 0.5)
        ok = inr & (pk >= POLISH_MIN_PEAK) & (hi > lo)
        good = ok.sum(axis=1) >= 6
        live[li[~good]] = False
        if not good.any():
            break
        li, ok, px = li[good], ok[good], px[good]
        wt = np.where(ok, pk[good], 0.0) * sw[None, :]
        ata = np.einsum("ih,rh,jh->rij", basis, wt, basis) + wt.sum(axis=1)[:, None, None] * np.diag(POLISH_RIDGES)
        atb = np.einsum("ih,rh->ri", basis, wt * np.where(ok, px - X0[li], 0.0))
        cf = np.linalg.solve(ata, atb[..., None])[..., 0]
        XP[li] = X0[li] + cf @ basis
        passes[li] += 1
    for j, i in enumerate(todo):
        if passes[j] == 0:
            continue
        poly, support, span, _ = rows[i]
        yv, xp = ys[IN[j]], XP[j][IN[j]]
        out[i] = (np.column_stack([np.interp(poly[:, 1], yv, xp), poly[:, 1]]), support, span,
                  float(np.interp(h - 1.0, yv, xp)))
    return out


def fit_rows(hm: np.ndarray):
    """Rows of a heatmap. Returns dict(rows=[(poly (N,2) x,y bottom-up, support, span, x_bottom)],
    lam, m, spacing, coherence) in heatmap pixels, or None."""
    from agricare.core.perception.crop_rows import CropRowParams, _bands, _fit_vanishing_point, _normalise_bands

    hm_full = hm
    k_fit = 2 if min(hm.shape) > FIT_MAX_SIDE else 1
    if k_fit > 1:  # a full-resolution heatmap: the row model on its half-size image, the polish at full size
        hm = cv2.resize(hm, (hm.shape[1] // 2, hm.shape[0] // 2), interpolation=cv2.INTER_AREA)
    h, w = hm.shape
    prof, d = _bands(hm, N_BANDS, 0.96)
    vn = _normalise_bands(cv2.GaussianBlur(prof, (5, 1), 1.0))
    p = CropRowParams(max_convergence=MAX_CONVERGENCE, max_tilt_frac=0.9)
    lam, m, P, xb, coherence = _fit_vanishing_point(vn, d, w, h, p)
    Ps = np.convolve(P, np.ones(3) / 3.0, mode="same")
    rows_xb = _peaks(Ps, xb, 0.06 * w)
    if not rows_xb:
        return None
    rx = np.sort(np.asarray(rows_xb))
    spacing = float(np.median(np.diff(rx))) if len(rx) > 1 else 0.3 * w
    guessed = set()
    if FILL_COMB and len(rx) > 1:
        # equal spacing on the bottom line: fill gaps and add the rows next to the outermost ones (a row the
        # network barely saw is still where the comb puts it)
        full = [rx[0]]
        for a, b in zip(rx[:-1], rx[1:]):
            k = int(round((b - a) / spacing))
            full += [a + (b - a) * j / k for j in range(1, k)] if k > 1 else []
            full.append(b)
        lo, hi = full[0] - spacing, full[-1] + spacing
        guessed = {float(x) for x in full if x not in rx}
        extra = [x for x in (lo, hi) if -1.5 * w < x < 2.5 * w]
        guessed |= {float(x) for x in extra}
        rx = np.sort(np.asarray(full + extra))
    ys = np.arange(h, dtype=np.float64)
    dd = (h - 0.5) - ys                       # height above the bottom line
    Pz = np.maximum(hm - 0.1, 0.0).astype(np.float64)
    cols = np.arange(w, dtype=np.float64)
    # running sums along each image row: a window's mass and first moment in two look-ups
    cum0 = np.zeros((h, w + 1))
    cum1 = np.zeros((h, w + 1))
    np.cumsum(Pz, axis=1, out=cum0[:, 1:])
    np.cumsum(Pz * cols[None, :], axis=1, out=cum1[:, 1:])
    rix = np.arange(h)
    hm64 = hm.astype(np.float64)

    def refine(rx, lam, m):
        """Rows refined on the heatmap around their VP lines; also (weight, a, b) of x = a + b y per row
        (only with ``VP_FROM_ROWS``). The windowed-centroid passes run for all rows at once."""
        sc = 1.0 - lam * dd
        usable = sc > 0.03
        sw = _spacing_weight(sc)
        out, lines, is_guess = [], [], []
        dn = dd / h
        basis = np.stack([sc if ROTATE_ABOUT_VP else np.ones_like(dn), dn, dn * dn])
        R = len(rx)
        bases = rx[:, None] * sc[None, :] + m * dd[None, :]        # the rows' vanishing-point lines (R, h)
        # local spacing: distance to the neighbouring rows' lines (median spacing when alone)
        s_locs = np.empty(R)
        for i, x0 in enumerate(rx):
            k = int(np.searchsorted(rx, x0))
            nb = [abs(rx[j] - x0) for j in (k - 1, k + 1) if 0 <= j < len(rx) and rx[j] != x0]
            s_locs[i] = min(nb) if nb else spacing
        halfs = np.maximum(WINDOW_FRAC * s_locs[:, None] * sc[None, :], 1.0)
        C = np.zeros((R, 3))
        sups = np.zeros((R, h), bool)
        masses = np.zeros((R, h))
        xcs = np.zeros((R, h))
        live = np.ones(R, bool)          # rows still refined (a row stops at its first pass with < 4 support)
        for ridge in REFINE_RIDGES:
            if not live.any():
                break
            li = np.flatnonzero(live)
            base, half, c = bases[li], halfs[li], C[li]
            fit = c @ basis
            xp = base + fit
            lo = np.clip(np.floor(xp - half).astype(int), 0, w - 1)
            hi = np.clip(np.ceil(xp + half).astype(int), 0, w - 1)
            mass = cum0[rix[None, :], hi + 1] - cum0[rix[None, :], lo]
            win = lo[..., None] + np.arange(int((hi - lo).max()) + 1)
            peak = np.where(win <= hi[..., None], hm64[rix[None, :, None], np.minimum(win, w - 1)], 0.0).max(axis=2)
            sup = usable[None, :] & (peak >= ON_THRESHOLD) & (mass > 1e-6) & (xp > -half) & (xp < w - 1 + half)
            sups[li] = sup
            ok = sup.sum(axis=1) >= 4
            live[li[~ok]] = False
            if not ok.any():
                break
            li, base, half, fit, sup, mass = li[ok], base[ok], half[ok], fit[ok], sup[ok], mass[ok]
            lo, hi = lo[ok], hi[ok]
            xc = (cum1[rix[None, :], hi + 1] - cum1[rix[None, :], lo]) / np.maximum(mass, 1e-9)
            masses[li], xcs[li] = mass, xc
            r = np.where(sup, xc - base, 0.0)
            wt = np.where(sup, mass, 0.0)
            # robust (Huber-like) reweighting around the previous fit
            res = np.abs(r - fit)
            wt = wt / np.maximum(1.0, res / np.maximum(0.5 * half, 0.5)) * sw[None, :]
            ata = np.einsum("ih,rh,jh->rij", basis, wt, basis) + wt.sum(axis=1)[:, None, None] * np.diag(ridge)
            atb = np.einsum("ih,rh->ri", basis, wt * r)
            C[li] = np.linalg.solve(ata, atb[..., None])[..., 0]
        for i, x0 in enumerate(rx):
            base, c, sup, mass, xc = bases[i], C[i], sups[i], masses[i], xcs[i]
            if sup.sum() < 4:
                if float(x0) not in guessed:
                    continue
                c = np.zeros(3)             # a comb row without support: its vanishing-point line
                sup = usable & (sc > 0.1)
                unsupported = True
            else:
                unsupported = False
            xp = base + c @ basis
            inside = usable & (xp > -0.5) & (xp < w - 0.5)
            if inside.sum() < 4:
                continue
            y_top = float(ys[np.flatnonzero(sup)].min())
            y_bot = float(ys[np.flatnonzero(inside)].max())
            if y_bot - y_top < 3:
                continue
            yy = np.linspace(y_bot, y_top, 12)
            xq = np.interp(yy, ys, xp)
            support = 0.0 if unsupported else float(sup[inside].mean())
            if VP_FROM_ROWS and not unsupported:
                wl = np.where(sup, mass, 0.0)
                A = np.stack([np.ones(h), ys])
                ab = np.linalg.lstsq((A * np.sqrt(wl)).T, np.sqrt(wl) * np.where(sup, xc, 0.0), rcond=None)[0]
                lines.append((float(wl.sum()), float(ab[0]), float(ab[1])))
            out.append((np.column_stack([xq, yy]), support, (h - 0.5 - y_top) / h, float(xp[-1])))
            is_guess.append(float(x0) in guessed)
        # a comb guess that snapped onto a row already found is a duplicate
        found = [o[3] for o, g in zip(out, is_guess) if not g]
        out = [o for o, g in zip(out, is_guess) if not (g and any(abs(o[3] - x) < 0.5 * spacing for x in found))]
        return out, lines

    out, lines = refine(rx, lam, m)
    if VP_FROM_ROWS and len(lines) >= 2:
        # the vanishing point again, as the weighted least-squares intersection of the rows' own lines
        W_ = np.array([t[0] for t in lines])
        A = np.array([[1.0, -t[2]] for t in lines]) / np.sqrt(1.0 + np.array([t[2] for t in lines]) ** 2)[:, None]
        B = np.array([t[1] for t in lines]) / np.sqrt(1.0 + np.array([t[2] for t in lines]) ** 2)
        vx, vy = np.linalg.lstsq(A * np.sqrt(W_)[:, None], B * np.sqrt(W_), rcond=None)[0]
        if (h - 0.5) - vy > 0.2 * h and abs(vx - w / 2) < 2 * w:
            lam2 = 1.0 / ((h - 0.5) - vy)
            m2 = vx * lam2
            # bottom intercepts of the rows under the new VP, from their old lines at mid-height
            d_mid = 0.5 / lam if lam > 1e-6 else 0.5 * h
            x_mid = rx * (1.0 - lam * d_mid) + m * d_mid
            rx2 = (x_mid - m2 * d_mid) / (1.0 - lam2 * d_mid)
            guessed = {float(x2) for x, x2 in zip(rx, rx2) if float(x) in guessed}
            rx, lam, m = rx2, lam2, m2
            out, lines = refine(rx, lam, m)
    if k_fit > 1:  # to the full heatmap's pixels (centres at integers): heights and spacing scale by k_fit
        def up(x):
            return (x + 0.5) * k_fit - 0.5
        out = [(up(poly), support, span, up(xbot)) for poly, support, span, xbot in out]
        m = m + 0.5 * (k_fit - 1) * lam / k_fit
        lam, spacing = lam / k_fit, spacing * k_fit
        hm = hm_full
        h, w = hm.shape
    if POLISH:
        out = _polish(hm, out, lam, spacing)
    if not out:
        return None
    # ridge contrast: heatmap on the rows against half-way between them, over their supported image rows
    on, off = [], []
    for poly, *_ in out:
        yq = np.round(poly[:, 1]).astype(int).clip(0, h - 1)
        for shift, acc in ((0.0, on), (0.5, off)):
            xq = np.round(poly[:, 0] + shift * spacing * (1.0 - lam * ((h - 0.5) - poly[:, 1])))
            ok = (xq >= 0) & (xq < w)
            acc.extend(hm[yq[ok], xq[ok].astype(int)].tolist())
    a, b = float(np.mean(on)) if on else 0.0, float(np.mean(off)) if off else 0.0
    contrast = (a - b) / (a + b) if a + b > 0 else 0.0
    return {"rows": out, "lam": float(lam), "m": float(m), "spacing": spacing, "coherence": coherence,
            "contrast": contrast}
