"""The row-anchor head of the learned crop-row path (round 14 of tools/train_row_net.py): its decoder on
synthetic anchor outputs (no network, no torch), the training targets decoded back, and the head's output
through ``detect_rows``."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from agricare.core.perception import crop_rows_net as crn
from agricare.core.perception.crop_rows import CameraGeometry, CropRowParams, detect_rows, render_synthetic_rows

W = H = 224
G = 84
HA = 56
VP = (118.3, 20.0)
XB = (-60.0, 30.0, 112.0, 196.0, 280.0)   # the rows' x at the bottom image row (input px), slots 0-4


def _rows_x(v):
    """x (K, len(v)) of straight rows through VP at image rows v."""
    t = ((H - 1.0) - v) / ((H - 1.0) - VP[1])
    return np.array([x0 + (VP[0] - x0) * t for x0 in XB])


def _logits(x, present, sigma_bins=1.0, rng=None):
    """Anchor logits (K (G + 1), H_a, 1) with a Gaussian over the bins centred at x where present, the
    "absent" class winning elsewhere."""
    _v, xc = crn.anchor_geometry(HA, G, W, H)
    bw = xc[1] - xc[0]
    K = x.shape[0]
    z = np.full((K, G + 1, HA), -20.0)
    for k in range(K):
        for j in range(HA):
            if present[k, j]:
                z[k, :G, j] = -0.5 * ((xc - x[k, j]) / (sigma_bins * bw)) ** 2
                z[k, G, j] = -8.0
            else:
                z[k, G, j] = 5.0
    if rng is not None:
        z = z + rng.normal(0.0, 0.05, z.shape)
    return z.reshape(K * (G + 1), HA, 1)


def _present():
    v, _ = crn.anchor_geometry(HA, G, W, H)
    x = _rows_x(v)
    lo, hi = crn.ANCHOR_X_RANGE[0] * W, crn.ANCHOR_X_RANGE[1] * W
    # present where the bins' window (ANCHOR_WINDOW bins either side) is not cut by the range's ends: a row
    # within two bins of an end comes back biased towards the inside (0.38 px at 1.6 bins from the end)
    present = (v[None, :] > VP[1] + 6) & (x > lo + 12) & (x < hi - 12)
    present[4] = False
    present[4, -2:] = True            # slot 4 present on 2 anchors only: fewer than ANCHOR_MIN_POINTS, no row
    return v, x, present


def test_anchor_decoder_recovers_rows_and_vanishing_point():
    """Rows through one vanishing point, each anchor a Gaussian over the column bins (one bin wide) plus
    logit noise: every slot with enough present anchors comes back as a polyline through its anchors, bottom-up,
    within 0.5 px (measured 0.34 px at worst: the windowed expectation of a Gaussian with 0.05 of logit noise),
    the slot with two present anchors is dropped, the bottom positions come back within 0.5 px (measured
    0.28 px), the VP within 0.5 px (measured 0.04 px) and the spacing is the rows' bottom spacing."""
    assert crn.ANCHOR_SLOTS == 5
    v, x, present = _present()
    f = crn.fit_anchor_rows(_logits(x, present, rng=np.random.default_rng(4)), W, H)
    assert len(f["rows"]) == 4
    for (poly, support, span, xbot), k in zip(f["rows"], range(4)):
        assert np.all(np.diff(poly[:, 1]) < 0)                    # bottom-up
        truth = np.interp(poly[:, 1], v, x[k])
        assert np.abs(poly[:, 0] - truth).max() < 0.5
        assert support > 0.99
        assert xbot == pytest.approx(XB[k], abs=0.5)
        assert 0.8 < span < 0.95
    vx, vy = f["m"] / f["lam"], (H - 0.5) - 1.0 / f["lam"]
    assert math.hypot(vx - VP[0], vy - VP[1]) < 0.5
    assert f["spacing"] == pytest.approx(np.median(np.diff(XB[:4])), abs=1.0)
    # the (K, G + 1, H_a) layout decodes the same
    z = _logits(x, present).reshape(5, G + 1, HA)
    a = crn.anchor_positions(z, W, H)
    b = crn.anchor_positions(z.reshape(5 * (G + 1), HA, 1), W, H)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    # nothing present: no rows
    assert crn.fit_anchor_rows(_logits(x, np.zeros_like(present)), W, H) is None
    assert crn.is_anchor_output(np.zeros((1, 5 * (G + 1), HA, 1)))
    assert not crn.is_anchor_output(np.zeros((1, 1, 112, 112)))


def test_anchor_decoder_polynomial_fit(monkeypatch):
    """``ANCHOR_FIT_DEG`` 2: each slot's noisy anchors replaced by their quadratic fit, which for straight rows
    stays within 0.2 px of the rows (measured 0.10 px; the anchors themselves 0.34 px) and extends to the bottom
    row's x within 0.3 px (measured 0.14 px)."""
    v, x, present = _present()
    monkeypatch.setattr(crn, "ANCHOR_FIT_DEG", 2)
    f = crn.fit_anchor_rows(_logits(x, present, rng=np.random.default_rng(4)), W, H)
    assert len(f["rows"]) == 4
    for (poly, _support, _span, xbot), k in zip(f["rows"], range(4)):
        assert np.abs(poly[:, 0] - np.interp(poly[:, 1], v, x[k])).max() < 0.2
        assert xbot == pytest.approx(XB[k], abs=0.3)


def test_anchor_output_through_detect_rows(monkeypatch):
    """``detect_rows(method="learned")`` with a row-anchor net (its forward pass replaced by the synthetic
    output): the rows come back in the image's pixels, scaled from the 224 px network input, and the followed
    row is the one nearest the image centre at the bottom."""
    v, x, present = _present()
    z = _logits(x, present)[None]
    monkeypatch.setattr(crn, "_forward", lambda img, flip: z)
    monkeypatch.setattr(crn, "_is_anchor_model", lambda: True)
    cam = CameraGeometry(250.0, 250.0, 159.5, 119.5, 320, 240, height_m=1.0, pitch_rad=math.radians(35.0))
    img = render_synthetic_rows(cam, seed=1)
    res = detect_rows(img, CropRowParams(method="learned"))
    assert len(res.rows) == 4
    sx, sy = 320 / W, 240 / H
    for poly, k in zip(res.rows, range(4)):
        yin = (poly[:, 1] + 0.5) / sy - 0.5
        truth = (np.interp(yin, v, x[k]) + 0.5) * sx - 0.5
        assert np.abs(poly[:, 0] - truth).max() < 0.5
    assert res.center_index == 2
    assert res.vanishing_point[0] == pytest.approx((VP[0] + 0.5) * sx - 0.5, abs=1.5)


def _train_module(repo_root):
    spec = importlib.util.spec_from_file_location("train_row_net", repo_root / "tools" / "train_row_net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_anchor_training_targets_decode_back(repo_root):
    """tools/train_row_net.py's targets of the head: rows given as points (network input px) are ordered by
    their bottom position, the one nearest the centre in the middle slot, each anchor's bin holds the row and
    the local spacing is the distance to the neighbours; the targets written as logits (two bins, linear
    weights) decode back to the rows within 0.01 px. Near the tie at half a spacing the second assignment is
    the one centred on the other neighbour (one slot shifted)."""
    mod = _train_module(repo_root)
    assert mod.NET_W == W and mod.NET_H == H
    v, _xc = crn.anchor_geometry(HA, G, W, H)
    vv = np.arange(VP[1] + 8, H, 2.0)
    xs = _rows_x(vv)
    rows = [np.column_stack([xs[k], vv]) for k in range(5)]
    B, X, D = mod.anchor_targets(rows[::-1], HA, G)                # order of the input does not matter
    assert B.shape == (2, 5, HA)
    assert np.array_equal(B[0], B[1])                              # 112 px from the centre 111.5: no tie
    xa = _rows_x(v)
    inside = (v >= vv[0]) & (v <= vv[-1])
    for k in range(5):
        ok = B[0, k] < G
        assert np.array_equal(ok, inside & (xa[k] > -56.5) & (xa[k] < 279.5))
        assert np.abs(X[0, k, ok] - xa[k, ok]).max() < 0.01
    dk = np.abs(np.diff(xa, axis=0))
    assert np.allclose(D[0, 2, inside], 0.5 * (dk[1, inside] + dk[2, inside]), atol=0.01)
    _v, xc = crn.anchor_geometry(HA, G, W, H)
    bw = xc[1] - xc[0]
    z = np.full((5, G + 1, HA), -30.0)
    for k in range(5):
        for j in range(HA):
            if B[0, k, j] == G:
                z[k, G, j] = 0.0
                continue
            fpos = (X[0, k, j] - xc[0]) / bw
            lo = int(np.clip(np.floor(fpos), 0, G - 2))
            t = float(np.clip(fpos - lo, 0.0, 1.0))
            z[k, lo, j], z[k, lo + 1, j] = np.log(max(1 - t, 1e-12)), np.log(max(t, 1e-12))
    f = crn.fit_anchor_rows(z, W, H)
    assert len(f["rows"]) == 5
    for (poly, *_), k in zip(f["rows"], range(5)):
        truth = np.interp(poly[:, 1], v, xa[k])
        inner = (truth > xc[0]) & (truth < xc[-1])   # beyond the outermost bin centres: clamped there
        assert inner.sum() > 20
        assert np.abs(poly[inner, 0] - truth[inner]).max() < 0.01
    # near the tie: the rows shifted so that the centre (111.5) lies 0.45 spacings from the nearest row
    sh = [np.column_stack([r[:, 0] + 0.45 * 84.0 - 0.5, r[:, 1]]) for r in rows]
    B2, X2, _ = mod.anchor_targets(sh, HA, G)
    j = HA - 1
    assert X2[1, 2, j] < 111.5 < X2[0, 2, j]           # the two assignments' middle slots straddle the centre
    assert np.array_equal(B2[1, 2], B2[0, 1])           # the second is the first shifted by one slot
    assert np.array_equal(X2[1, 1:], X2[0, :-1])


def test_anchor_loss_prefers_the_true_rows(repo_root):
    """The head's loss (cross-entropy + the CRDA-shaped position term) is lower for logits at the true rows
    than for the same logits 1 px off, and the better of the two slot assignments counts. Needs torch (the
    training environment only)."""
    torch = pytest.importorskip("torch")
    mod = _train_module(repo_root)
    v, x, present = _present()
    present[4] = False
    vv = np.arange(VP[1] + 8, H, 2.0)
    xs = _rows_x(vv)
    B, X, D = mod.anchor_targets([np.column_stack([xs[k], vv]) for k in range(4)], HA, G)
    bt, xt, dt = (torch.from_numpy(a[None]) for a in (B, X, D))
    good = torch.from_numpy(_logits(x, present, 0.7)[None]).float()
    off = torch.from_numpy(_logits(x + 1.0, present, 0.7)[None]).float()
    lg, lo = (float(mod.anchor_loss(torch, t, bt, xt, dt)) for t in (good, off))
    assert lg < lo


@pytest.mark.parametrize("level,glob", [(4, 0), (4, 16), (2, 0)])
def test_anchor_net_shapes(repo_root, level, glob):
    """The head's output is what the decoder reads: ``(N, K (G + 1), NET_H / level, 1)``, the heatmap beside it
    only while training (``with_heat``); with the global context vector too. Needs torch."""
    torch = pytest.importorskip("torch")
    mod = _train_module(repo_root)
    net = mod._anchor_net(torch, mod.build(torch, "effl", effl_stages=4), 20, hidden=16, level=level, glob=glob)
    net.eval()
    x = torch.rand(2, 3, mod.NET_H, mod.NET_W)
    with torch.no_grad():
        a = net(x)
        net.with_heat = True
        a2, heat = net(x)
    assert tuple(a.shape) == (2, crn.ANCHOR_SLOTS * 21, mod.NET_H // level, 1)
    assert torch.equal(a, a2) and tuple(heat.shape) == (2, 1, mod.NET_H // 2, mod.NET_W // 2)
    assert crn.is_anchor_output(a.numpy())
