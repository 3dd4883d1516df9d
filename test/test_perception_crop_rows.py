"""Crop-row detection: synthetic images with exact geometry, the real dev set, bad inputs."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from agricare.core.perception.crop_rows import (
    CameraGeometry,
    CropRowParams,
    detect_rows,
    draw_rows,
    expected_row_pixels,
    render_synthetic_rows,
)

CAM = CameraGeometry(500.0, 500.0, 319.5, 239.5, 640, 480, height_m=1.0, pitch_rad=math.radians(35.0))


def _x_at(poly, y):
    ys, xs = poly[:, 1], poly[:, 0]
    if y < ys.min() - 1e-6 or y > ys.max() + 1e-6:
        return math.nan
    o = np.argsort(ys)
    return float(np.interp(y, ys[o], xs[o]))


def _max_row_error_px(result, cam, offset, heading, curvature, spacing, y_min):
    """Worst pixel error, over the visible rows, between the expected and the nearest detected row."""
    worst = 0.0
    matched = 0
    for k in range(-4, 5):
        exp = expected_row_pixels(cam, k * spacing, offset, heading, curvature)
        exp = exp[exp[:, 1] >= y_min]
        if len(exp) < 10 or np.ptp(exp[:, 1]) < 0.3 * cam.height_px:
            continue
        matched += 1
        errs = []
        for x, y in exp[::5]:
            xs = [_x_at(r, y) for r in result.rows]
            xs = [v for v in xs if math.isfinite(v)]
            errs.append(min(abs(v - x) for v in xs) if xs else math.inf)
        worst = max(worst, float(np.max(errs)))
    return worst, matched


@pytest.mark.parametrize("offset,heading", [(0.0, 0.0), (0.1, 0.1), (-0.15, -0.05)])
def test_straight_rows_exact_geometry(offset, heading):
    img = render_synthetic_rows(CAM, 0.5, offset, heading, gap_frac=0.2, seed=3)
    r = detect_rows(img, camera=CAM)
    assert r.confidence > 0.6
    assert r.rows_visible >= 5
    assert all(len(row) == 2 for row in r.rows[r.center_index: r.center_index + 1])  # straight -> 2 points
    for row in r.rows:  # bottom-up
        assert row[0, 1] >= row[-1, 1]
    worst, matched = _max_row_error_px(r, CAM, offset, heading, 0.0, 0.5, y_min=120)
    assert matched >= 3
    assert worst < 7.0  # px at 640x480 (rows cut by the image edge included); spacing ~ 220 px
    assert r.metric
    assert r.offset == pytest.approx(offset, abs=0.01)
    assert r.heading == pytest.approx(heading, abs=0.01)
    assert r.spacing_m == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("curvature", [0.03, -0.05])
def test_curved_rows_are_followed(curvature):
    img = render_synthetic_rows(CAM, 0.5, 0.02, 0.0, curvature, gap_frac=0.1, seed=5)
    r = detect_rows(img, camera=CAM)
    assert r.confidence > 0.5
    centre = r.rows[r.center_index]
    assert len(centre) > 2  # a polyline, not a straight line
    exp = expected_row_pixels(CAM, 0.0, 0.02, 0.0, curvature)
    exp = exp[exp[:, 1] >= 60]
    err = [abs(_x_at(centre, y) - x) for x, y in exp[::2] if math.isfinite(_x_at(centre, y))]
    assert len(err) >= 10
    assert max(err) < 8.0
    # a straight line through the end points would be off by far more
    assert r.offset == pytest.approx(0.02, abs=0.03)


def test_normalised_guidance_without_camera():
    left = detect_rows(render_synthetic_rows(CAM, 0.5, 0.1, 0.0, seed=1))
    right = detect_rows(render_synthetic_rows(CAM, 0.5, -0.1, 0.0, seed=1))
    assert not left.metric
    assert left.offset > 0.05 > -0.05 > right.offset  # row spacings, positive = row to the left
    turned = detect_rows(render_synthetic_rows(CAM, 0.5, 0.0, 0.15, seed=1))
    assert turned.heading > 0.05
    assert turned.vanishing_point is not None
    assert turned.vanishing_point[0] < CAM.cx_px


def test_robust_to_noise_and_gaps():
    img = render_synthetic_rows(CAM, 0.6, 0.05, -0.08, gap_frac=0.4, noise_std=25.0, seed=11)
    # a dark shadow over the right half and sun flare top left
    img[:, 320:] = (img[:, 320:] * 0.35).astype(np.uint8)
    img[:120, :200] = np.clip(img[:120, :200].astype(int) + 90, 0, 255).astype(np.uint8)
    r = detect_rows(img, camera=CAM)
    assert r.confidence > 0.3
    assert r.offset == pytest.approx(0.05, abs=0.03)
    assert r.heading == pytest.approx(-0.08, abs=0.03)


@pytest.mark.parametrize("bad", [
    None,
    np.zeros((0, 0, 3), np.uint8),
    np.zeros((480, 640), np.uint8),        # grey
    np.zeros((480, 640, 2), np.uint8),     # not BGR
    np.zeros((5, 5, 3), np.uint8),         # tiny
    np.full((10, 10, 3), np.nan, np.float32),
])
def test_bad_input_raises_clear_valueerror(bad):
    with pytest.raises(ValueError):
        detect_rows(bad)


@pytest.mark.parametrize("img", [
    np.full((480, 640, 3), 128, np.uint8),                          # flat grey
    np.full((480, 640, 3), (60, 85, 115), np.uint8),                 # bare soil (end of row)
    np.full((480, 640, 3), (40, 160, 60), np.uint8),                 # all green
    np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8),  # noise
])
def test_no_rows_gives_confidence_zero(img):
    r = detect_rows(img)
    assert r.confidence < 0.2
    if r.confidence == 0.0:
        assert r.reason


def test_huge_image_rejected_and_large_ok():
    with pytest.raises(ValueError, match="too large"):
        detect_rows(np.zeros((8000, 8000, 3), np.uint8), CropRowParams(max_image_pixels=20_000_000))
    big = render_synthetic_rows(CameraGeometry(1500, 1500, 959.5, 719.5, 1920, 1440, 1.0, math.radians(35)), seed=2)
    r = detect_rows(big)
    assert r.confidence > 0.5
    assert all(np.all(row[:, 0] < 1920 * 1.5) for row in r.rows)
    assert draw_rows(big, r).shape == big.shape


def test_params_validation_names_field():
    with pytest.raises(ValueError, match="work_width_px"):
        CropRowParams(work_width_px=5)
    with pytest.raises(ValueError, match="vegetation_index"):
        CropRowParams(vegetation_index="ndvi")
    with pytest.raises(ValueError, match="height_m"):
        CameraGeometry(500, 500, 320, 240, 640, 480, height_m=-1.0, pitch_rad=0.5)


def test_camera_projection_round_trip():
    pts = np.array([[1.0, 0.0], [2.5, 0.7], [4.0, -1.2]])
    uv = CAM.ground_to_pixels(pts)
    back = CAM.pixels_to_ground(uv)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # the top image row is 9.4 deg below the horizon here; a pixel far above the image looks at the sky
    assert np.all(np.isnan(CAM.pixels_to_ground([[320, -400.0]])))


def _load_score(repo_root):
    spec = importlib.util.spec_from_file_location("crop_rows_score", repo_root / "bench" / "crop_rows_score.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dev_set_crda(shared_data, repo_root):
    """Real images (CRDLD, every 6th of the 300: 34 tuning + 16 held-out). Measured on this subset with the
    default "vp" detector: CRDA 0.621 (tuning 0.645, held-out 0.571), position error 0.105 spacings, 80 %
    of the images at CRDA >= 0.5; the previous "fourier" detector 0.499 on the same images. The thresholds
    leave ~3 % for platform differences; a detector whose rows are 10 % of a spacing off scores 0."""
    root = shared_data / "crop_rows_crdld"
    if not (root / "image").is_dir():
        pytest.skip("crop_rows_crdld not in shared data")
    score = _load_score(repo_root)
    ids = range(0, 300, 6)
    agg = score.score_dataset(root, ids=ids)["aggregate"]
    assert agg["all"]["n"] == 50
    assert agg["all"]["crda"] > 0.60
    assert agg["tune"]["crda"] > 0.62 and agg["held_out"]["crda"] > 0.55
    assert agg["all"]["pos_err"] < 0.11
    assert agg["all"]["frac_crda_ge_0.5"] > 0.76
    old = score.score_dataset(root, ids=ids, params=CropRowParams(method="fourier"))["aggregate"]
    assert agg["all"]["crda"] > old["all"]["crda"] + 0.08


def test_crda_definition():
    """CRDA of the literature: perfect rows score ~1, a shift of 5 % of the spacing 1 - 0.5^2 = 0.75,
    10 % or more 0; rows beyond the 3 nearest the centre do not count; one detection serves one row."""
    import cv2

    from agricare.core.perception.crop_row_score import crda_image

    lab = np.zeros((512, 512), np.uint8)
    xs = (-144, 56, 256, 456, 656)   # 5 rows, 200 px apart at the bottom, converging to (256, 40)
    lines = [np.array([[x, 511.0], [256 + (x - 256) * 0.1, 40.0]]) for x in xs]
    for ln in lines:
        cv2.line(lab, tuple(int(v) for v in ln[0]), tuple(int(v) for v in ln[1]), 255, 6)
    perfect = crda_image(lines, lab)
    assert perfect["rows_scored"] == 3
    assert perfect["crda"] > 0.9

    def shifted(frac):  # every row moved by frac of the local spacing (scales with the convergence)
        return [np.column_stack([ln[:, 0] + frac * 200.0 * np.array([1.0, 0.1]), ln[:, 1]]) for ln in lines]

    assert crda_image(shifted(0.05), lab)["crda"] == pytest.approx(0.75, abs=0.08)
    assert crda_image(shifted(0.12), lab)["crda"] == 0.0
    assert crda_image([], lab)["crda"] == 0.0
    assert crda_image(lines[1:4], lab)["crda"] > 0.9          # the outer rows are not scored
    assert crda_image([lines[2]] * 3, lab)["crda"] < 0.4       # one row copied three times finds one row


def test_score_label_lines_on_synthetic_label(repo_root):
    """The scorer itself: a perfect detection scores 0, a shifted one scores the shift."""
    import cv2

    score = _load_score(repo_root)
    lab = np.zeros((512, 512), np.uint8)
    lines = [np.array([[x, 511.0], [256 + (x - 256) * 0.1, 40.0]]) for x in (56, 256, 456)]
    for ln in lines:
        cv2.line(lab, tuple(int(v) for v in ln[0]), tuple(int(v) for v in ln[1]), 255, 6)
    perfect = score.score_image(lines, lab)
    assert perfect["pos_err"] < 0.02
    shifted = score.score_image([ln + [20.0, 0.0] for ln in lines], lab)
    assert 0.05 < shifted["pos_err"] < 0.3
    assert score.score_image([], lab)["pos_err"] == pytest.approx(0.5)


def test_cli_detect_rows(tmp_path):
    import json

    import cv2

    from agricare.cli import main

    cv2.imwrite(str(tmp_path / "a.png"), render_synthetic_rows(CAM, 0.5, 0.1, 0.0, seed=4))
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "b.png"), np.full((100, 120, 3), 128, np.uint8))
    out = tmp_path / "out.json"
    assert main(["detect-rows", str(tmp_path / "a.png"), str(tmp_path / "sub"), "--json", str(out),
                 "--overlay", str(tmp_path / "ov")]) == 0
    res = json.loads(out.read_text())
    a = res[str(tmp_path / "a.png")]
    assert set(a) >= {"rows", "offset", "heading", "confidence", "ms"}
    assert a["confidence"] > 0.5 and a["offset"] > 0 and len(a["rows"]) >= 3
    assert all(len(pt) == 2 for row in a["rows"] for pt in row)
    assert res[str(tmp_path / "sub" / "b.png")]["confidence"] == 0.0
    assert (tmp_path / "ov" / "a_rows.png").exists()
    assert main(["detect-rows", str(tmp_path / "missing.png"), "--json", str(out)]) == 2


def test_cli_detect_rows_reports_crda(tmp_path, shared_data, capsys):
    import json
    import shutil

    from agricare.cli import main

    root = shared_data / "crop_rows_crdld"
    if not (root / "image").is_dir():
        pytest.skip("crop_rows_crdld not in shared data")
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    for i in (3, 210):
        shutil.copy(root / "image" / f"{i}.jpg", tmp_path / "img")
        shutil.copy(root / "label" / f"{i}.jpg", tmp_path / "lab")
    out = tmp_path / "out.json"
    assert main(["detect-rows", str(tmp_path / "img"), "--json", str(out), "--labels", str(tmp_path / "lab"),
                 "--overlay", str(tmp_path / "ov")]) == 0
    res = json.loads(out.read_text())
    crda = [v["crda"] for v in res.values()]
    assert len(crda) == 2 and all(0.5 < c <= 1.0 for c in crda)   # measured 0.61 and 0.73
    assert "CRDA" in capsys.readouterr().out
    assert (tmp_path / "ov" / "210_rows.png").exists()


def test_learned_path_missing_model_is_a_clear_error(monkeypatch, tmp_path):
    from agricare.core.perception import crop_rows_net as crn

    monkeypatch.setattr(crn, "ROW_NET_PATH", tmp_path / "none.onnx")
    crn._net.cache_clear()
    try:
        with pytest.raises(ValueError, match="train_row_net"):
            detect_rows(render_synthetic_rows(CAM, seed=1), CropRowParams(method="learned"))
    finally:
        crn._net.cache_clear()


def test_heatmap_row_fit_recovers_lines_through_a_vanishing_point():
    """The global row model of the learned path on an ideal centre-line heatmap: five rows through one
    vanishing point are all found to within 0.5 px (heatmap px, ~2 px of a 512 px image; measured 0.29 px
    at worst, on the outer row that leaves the image; 0.25 px without the spacing weight of round 12) and the VP
    height to within 2 %."""
    from agricare.core.perception.crop_rows_net import fit_rows

    h = w = 112
    vp = (60.3, 8.0)
    xb = (-20.0, 20.5, 61.0, 101.5, 142.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    hm = np.zeros((h, w))
    for x0 in xb:
        xl = x0 + (vp[0] - x0) * (h - 0.5 - yy) / (h - 0.5 - vp[1])
        hm = np.maximum(hm, np.exp(-0.5 * ((xx - xl) / 1.2) ** 2) * (yy > vp[1] + 3))
    f = fit_rows(hm.astype(np.float32))
    seen = [r for r in f["rows"] if r[1] > 0]
    guessed = [r for r in f["rows"] if r[1] == 0]     # the comb's next rows outside, no support
    assert len(seen) == 5 and len(guessed) <= 2
    for r in guessed:
        assert min(abs(r[3] - (xb[0] - 40.5)), abs(r[3] - (xb[-1] + 40.5))) < 1.0
    assert 1.0 / f["lam"] == pytest.approx(h - 0.5 - vp[1], rel=0.02)
    for (poly, support, _span, _xb), x0 in zip(seen, xb):
        t = (h - 0.5 - poly[:, 1]) / (h - 0.5 - vp[1])
        assert np.abs(poly[:, 0] - (x0 + (vp[0] - x0) * t)).max() < 0.5
        assert support > 0.9
    assert f["contrast"] > 0.5
    assert fit_rows(np.zeros((h, w), np.float32)) is None       # no ridge, no rows


@pytest.mark.parametrize("k", [1, 2])
def test_heatmap_row_fit_at_full_resolution(k):
    """A heatmap above ``FIT_MAX_SIDE`` (a net with a full-resolution output, ``--full-res``): the row model
    runs on its half-size image, the polish on the full one, and the rows come back in the full heatmap's
    pixels. The same ideal rows drawn at twice the resolution (``k`` 2, 224 px; ``k`` 1 is the bundled net's
    112 px) are all found at twice the scale: VP height within 2 % (k 1; measured 0.6 %) / 4 % (k 2; measured
    3.4 %: the VP of the area-downscaled image), rows within 0.5 / 2.5 px at worst (measured 0.29 / 2.20 px, the
    outer row that leaves the image; the VP error turns the outer rows, which the polish's gentle slope term
    does not fully take back), median per row within 0.2 / 1 px (measured 0.15 / 0.77 px). The k 2 bound was
    2 px (measured 1.87) before the fits weighted image rows by the inverse perspective scale
    (``SPACING_WEIGHT_POW``, round 12: held-out CRDA +0.021): the converging top, where this VP error is
    largest relative to the spacing, now steers the outer row's correction more (2.7 % of its 81 px spacing)."""
    from agricare.core.perception import crop_rows_net as crn

    h = w = 112 * k
    assert (h > crn.FIT_MAX_SIDE) == (k == 2)
    vp = (60.3 * k, 8.0 * k)
    xb = [x * k for x in (-20.0, 20.5, 61.0, 101.5, 142.0)]
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    hm = np.zeros((h, w))
    for x0 in xb:
        xl = x0 + (vp[0] - x0) * (h - 0.5 - yy) / (h - 0.5 - vp[1])
        hm = np.maximum(hm, np.exp(-0.5 * ((xx - xl) / (1.2 * k)) ** 2) * (yy > vp[1] + 3 * k))
    f = crn.fit_rows(hm.astype(np.float32))
    seen = [r for r in f["rows"] if r[1] > 0]
    assert len(seen) == 5
    assert 1.0 / f["lam"] == pytest.approx(h - 0.5 - vp[1], rel=0.02 * k)
    assert f["spacing"] == pytest.approx(40.5 * k, rel=0.05)
    for (poly, _support, _span, _xb), x0 in zip(seen, xb):
        t = (h - 0.5 - poly[:, 1]) / (h - 0.5 - vp[1])
        err = np.abs(poly[:, 0] - (x0 + (vp[0] - x0) * t))
        assert err.max() < (0.5 if k == 1 else 2.5)
        assert np.median(err) < (0.2 if k == 1 else 1.0)
    assert seen[2][0][:, 1].max() > h - 2          # the middle row reaches the bottom of the full heatmap


def test_crda_of_the_labels_themselves(shared_data):
    """The scorer on real labels (every 10th image): the label lines' own quadratic fits score ~1,
    straight-line fits 0.968 (measured on every 3rd image), the same lines 1 px to the side ~0.94: the
    pixel-centre convention of labels and detections must agree (a detector off by a convention loses)."""
    import cv2

    from agricare.core.perception.crop_row_score import crda_image, label_lines

    root = shared_data / "crop_rows_crdld"
    if not (root / "label").is_dir():
        pytest.skip("crop_rows_crdld not in shared data")
    quad, line, moved = [], [], []
    for i in range(0, 300, 10):
        lab = cv2.imread(str(root / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        rq, rl = [], []
        for g in label_lines(lab):
            y = np.linspace(g[:, 1].min(), g[:, 1].max(), 30)
            rq.append(np.column_stack([np.polyval(np.polyfit(g[:, 1], g[:, 0], 2), y), y]))
            rl.append(np.column_stack([np.polyval(np.polyfit(g[:, 1], g[:, 0], 1), y), y]))
        quad.append(crda_image(rq, lab)["crda"])
        line.append(crda_image(rl, lab)["crda"])
        moved.append(crda_image([r + [1.0, 0.0] for r in rl], lab)["crda"])
    assert np.nanmean(quad) > 0.995
    assert 0.95 < np.nanmean(line) < 0.99
    assert np.nanmean(moved) < np.nanmean(line) - 0.01


def test_learned_path_dev_set_crda(shared_data, repo_root):
    """The bundled centre-line network (ImageNet-pretrained EfficientNet-Lite0 encoder fine-tuned on images
    0-199 by tools/train_row_net.py --arch effl, one pass without the mirror image; the recipe chosen on every
    5th of 0-199) on the same 50 images as test_dev_set_crda: measured CRDA 0.758 (tuning 0.786, held-out
    0.698), position error 0.0515 spacings, 100 % of the images at CRDA >= 0.5; without the spacing weight of
    the fits (``SPACING_WEIGHT_POW`` 0, before round 12) 0.752 (0.784 / 0.683, 0.0534, 100 %). The U-Net before
    it ("B", trained from scratch, with the mirror pass) 0.750 (0.799 / 0.643, 0.057, 98 %); the "vp" detector
    0.622 on the same images. Thresholds leave ~3 % for platform differences."""
    from agricare.core.perception.crop_rows import ROW_NET_PATH

    root = shared_data / "crop_rows_crdld"
    if not (root / "image").is_dir():
        pytest.skip("crop_rows_crdld not in shared data")
    if not ROW_NET_PATH.is_file():
        pytest.skip(f"{ROW_NET_PATH} not found")
    score = _load_score(repo_root)
    agg = score.score_dataset(root, ids=range(0, 300, 6), params=CropRowParams(method="learned"))["aggregate"]
    assert agg["all"]["crda"] > 0.73
    assert agg["tune"]["crda"] > 0.76 and agg["held_out"]["crda"] > 0.675
    assert agg["all"]["pos_err"] < 0.053
    assert agg["all"]["frac_crda_ge_0.5"] > 0.97


def test_simulator_training_frames_are_labelled_on_their_rows(repo_root, tmp_path):
    """tools/train_row_net.py --make-sim-frames: the true row lines it draws as labels lie on the plants the
    simulator's camera renders. Vegetation (ExG) is far denser under the label lines than off them in the lower
    half of the frame (measured 3.7-4.0 times on the first six frames of the training set; 1.2-1.7 with the
    labels shifted by 170 px, below 0.5 mirrored: a wrong sign of the lateral axis), checked against the same
    labels mirrored and shifted."""
    import cv2

    spec = importlib.util.spec_from_file_location("train_row_net", repo_root / "tools" / "train_row_net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "sim.npz"
    mod.make_sim_frames(repo_root / "config" / "scenarios" / "farm.yaml", 3, 5, out)
    d = np.load(out)
    assert d["images"].shape == (3, 240, 320, 3) and d["labels"].shape == (3, 512, 512)

    def on_off(img, lab):
        f = img.astype(np.float32)
        exg = (2 * f[..., 1] - f[..., 0] - f[..., 2]) / (f.sum(axis=2) + 1.0) > 0.08
        line = cv2.resize(lab, (320, 240), interpolation=cv2.INTER_AREA) > 64
        lower = np.zeros_like(line)
        lower[120:] = True                       # near field: the plants are resolved there
        return exg[line & lower].mean(), exg[~line & lower].mean()

    for img, lab in zip(d["images"], d["labels"]):
        on, off = on_off(img, lab)
        assert on > 3.0 * off, (on, off)
        for wrong in (lab[:, ::-1], np.roll(lab, 170, axis=1)):
            w_on, _ = on_off(img, wrong)
            assert w_on < 0.6 * on, (w_on, on)


def test_training_stones_and_photometric_augmentation(repo_root):
    """tools/train_row_net.py --stones / --photo: stones go onto the soil only (the leaves, and so the rows the
    label marks, are untouched), the augmented pairs keep their targets, and the options draw from the random
    generator only when on (runs without them stay as they were)."""
    spec = importlib.util.spec_from_file_location("train_row_net", repo_root / "tools" / "train_row_net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(3)
    h = w = mod.NET_W
    x = np.empty((h, w, 3), np.float32)
    x[...] = (90.0, 105.0, 120.0)                      # brown soil (BGR)
    x[:, 100:124] = (40.0, 150.0, 60.0)                # one green row
    y = mod._stones(x, rng)
    assert np.array_equal(y[:, 100:124], x[:, 100:124])
    changed = np.any(np.abs(y - x) > 8, axis=2)
    assert 0.01 < changed.mean() < 0.6                 # stones were drawn, the soil is not replaced
    assert np.isfinite(mod._photometric(x, rng)).all()
    im = np.full((mod.LOAD_PX, mod.LOAD_PX, 3), 100, np.uint8)
    tg = np.zeros((mod.LOAD_PX, mod.LOAD_PX), np.float32)
    tg[:, 140:150] = 1.0
    a = mod.augment(im, tg, np.random.default_rng(0), True, True)
    b = mod.augment(im, tg, np.random.default_rng(0), True, True, 0.0, 0.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = mod.augment(im, tg, np.random.default_rng(0), True, True, 1.0, 1.0)
    assert np.array_equal(c[1], a[1]) and not np.array_equal(c[0], a[0])


def test_training_drop_path_is_off_in_the_exported_net(repo_root):
    """tools/train_row_net.py --drop-path: stochastic depth drops residual branches only while switched on
    (training); switched off (as ``_export`` does) the net is the same function as one built without it, so the
    exported graph and the run-time path are unchanged. Needs torch (the training environment only)."""
    torch = pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("train_row_net", repo_root / "tools" / "train_row_net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    plain = mod.build(torch, "effl", effl_stages=4).eval()
    drop = mod.build(torch, "effl", effl_stages=4, drop_path=0.9).eval()
    drop.load_state_dict(plain.state_dict())
    x = torch.rand(4, 3, mod.NET_H, mod.NET_W)
    with torch.no_grad():
        ref = plain(x)
        mod._set_drop_path(drop, False)
        assert torch.equal(drop(x), ref)
        mod._set_drop_path(drop, True)
        on = [drop(x) for _ in range(3)]
    assert any(not torch.allclose(o, ref) for o in on)
    rates = [m.p_drop for m in drop.blocks if m.residual]
    assert rates == sorted(rates) and 0 < rates[0] < rates[-1] < 0.9
