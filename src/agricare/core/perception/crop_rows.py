"""Crop-row detection from a forward-looking (or top-down) camera image.

Pipeline (default ``method="vp"``)
----------------------------------
1. Downscale to a small working image (``work_width_px`` wide) and weigh vegetation softly around an
   Otsu threshold of the chromatic excess-green index (robust to shadows and sun flare), never below
   ``min_index``.
2. Fit the common vanishing point of all rows by band coherence (see ``_fit_vanishing_point``): band
   profiles mapped onto the bottom line through the right vanishing point line up.
3. Rows are the teeth of the equally spaced comb fitted to the consensus profile (fundamental period and
   phase), snapped to the nearest peak, then refined one by one through windowed vegetation centroids
   band by band (a correction to the vanishing-point line: kept near it at first, nearly free in the
   last pass so curved rows bend); a row is returned as a polyline when it bends, else as 2 points.
4. Guidance as below. When this finds nothing, the ``"fourier"`` pipeline runs instead:

Pipeline ``method="fourier"`` (the previous detector, fallback)
--------------------------------------------------------------
1. Segment vegetation with the same index, thresholded with Otsu but never below ``min_index``.
2. Cut the mask into horizontal strips and take each strip's column profile.
3. Fit all rows at once with a *frequency-domain perspective Hough*: parallel, equally spaced rows on a
   flat field project to lines through one vanishing point whose intercepts on every image row are
   equally spaced. For a candidate convergence ``lam`` (1 / distance to the vanishing point, px^-1),
   tilt ``t`` and bottom spacing ``s`` (px) each strip's profile must be periodic with period
   ``s * (1 - lam * d)`` (``d`` = height above the image bottom) and a phase given by the line model, so
   the complex Fourier coefficients of all strips add up coherently. The candidate maximising the
   coherent sum gives the vanishing point, spacing and phase of every row in one go.
4. Each row is then followed strip by strip from the bottom upwards (local centroid in a window that
   follows the row's own extrapolated direction), which lets curved rows bend away from the straight
   model; a quadratic robust fit decides whether the row is returned as a 2-point line or a polyline.
5. Guidance for the row the camera straddles (the row nearest the image centre line at the bottom):
   metric (metres, radians in ``base_link``) when a :class:`CameraGeometry` is given, else normalised.

Conventions
-----------
Pixel coordinates are (x right, y down) of the *input* image. Rows are returned bottom-up.
``offset`` is the lateral position of the followed row relative to the robot, positive to the left
(REP-103 ``y``); ``heading`` is the direction of the row relative to the robot's heading, positive
counter-clockwise (the robot must turn left to align). Normalised mode: ``offset`` in row spacings
measured on the image bottom line, ``heading`` in radians assuming a pinhole with ``nominal_hfov_rad``.

Run ``python -m agricare.core.perception.crop_rows IMAGE`` for a demo that prints the result.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from agricare.core.perception.crop_rows_net import ROW_NET_PATH  # noqa: F401  (the learned path's model)

VEGETATION_INDICES = ("exg", "exgr", "cive")
GUIDANCE_MODES = ("row", "lane")
DETECTION_METHODS = ("vp", "fourier", "learned")
_GRID = (8, 21, 18)  # coarse search grid: convergence x tilt x spacing


@dataclass(frozen=True)
class CropRowParams:
    """Parameters of :func:`detect_rows`.

    Attributes
    ----------
    work_width_px : internal processing width (the image is downscaled to it), px.
    vegetation_index : ``"exg"``, ``"exgr"`` or ``"cive"``.
    min_index : lower bound of the vegetation threshold on the (chromatic) index, unitless.
    n_strips : number of horizontal strips the working image is cut into.
    min_spacing_frac, max_spacing_frac : row spacing search range on the image bottom line,
        as a fraction of the image width.
    max_convergence : largest ``lam * H`` searched (1 = vanishing point on the top edge).
    max_tilt_frac : largest tilt of the central row across the image height, fraction of the width.
    ignore_top_frac : fraction of the image height at the top never used (sky, horizon).
    min_support_frac : a row must have vegetation in at least this fraction of its usable strips
        (``"fourier"`` method; the ``"vp"`` comb keeps every row with vegetation in 3 strips or more).
    min_fill_frac : a strip supports a row when at least this fraction of the row window is vegetation
        (``"fourier"`` method).
    min_vegetation_frac, max_vegetation_frac : outside this band of vegetation cover the image
        holds no usable rows (confidence 0).
    nominal_hfov_rad : horizontal field of view assumed for the normalised heading.
    max_image_pixels : larger images are rejected with ValueError.
    min_image_px : images smaller than this in either dimension are rejected with ValueError.
    guidance_mode : ``"row"``: guidance to the row the camera straddles (a robot driving over the row);
        ``"lane"``: guidance to the middle of the inter-row lane the camera looks along (a robot driving
        between two rows): offset/heading of the lane centre line, the mean of the nearest row on each
        side (or one row shifted by half the spacing when only one side is seen).
    method : ``"vp"``: vanishing-point band-coherence model (default, see ``_fit_vanishing_point``), falling
        back to ``"fourier"`` (frequency-domain perspective Hough) when it finds nothing; ``"learned"``: a small
        network (``models/crop_row_net.onnx``, trained by ``tools/train_row_net.py``, run with OpenCV's DNN
        module) gives a row centre-line heatmap, on which the common vanishing point and the rows are fitted
        (:mod:`crop_rows_net`), falling back to ``"vp"`` and ``"fourier"`` when it finds no row.
    """

    work_width_px: int = 160
    vegetation_index: str = "exg"
    min_index: float = 0.03
    n_strips: int = 30
    min_spacing_frac: float = 0.08
    max_spacing_frac: float = 0.6
    max_convergence: float = 1.25
    max_tilt_frac: float = 0.7
    ignore_top_frac: float = 0.0
    min_support_frac: float = 0.25
    min_fill_frac: float = 0.05
    min_vegetation_frac: float = 0.01
    max_vegetation_frac: float = 0.9
    nominal_hfov_rad: float = math.radians(60.0)
    max_image_pixels: int = 40_000_000
    min_image_px: int = 16
    guidance_mode: str = "row"
    method: str = "vp"

    def __post_init__(self):
        if self.method not in DETECTION_METHODS:
            raise ValueError(f"method must be one of {DETECTION_METHODS}, got {self.method!r}")
        if self.guidance_mode not in GUIDANCE_MODES:
            raise ValueError(f"guidance_mode must be one of {GUIDANCE_MODES}, got {self.guidance_mode!r}")
        if not 32 <= int(self.work_width_px) <= 1024:
            raise ValueError(f"work_width_px must be in [32, 1024], got {self.work_width_px}")
        if self.vegetation_index not in VEGETATION_INDICES:
            raise ValueError(f"vegetation_index must be one of {VEGETATION_INDICES}, got {self.vegetation_index!r}")
        if not 0.0 <= self.min_index < 1.0:
            raise ValueError(f"min_index must be in [0, 1), got {self.min_index}")
        if not 6 <= int(self.n_strips) <= 200:
            raise ValueError(f"n_strips must be in [6, 200], got {self.n_strips}")
        if not 0.0 < self.min_spacing_frac < self.max_spacing_frac <= 2.0:
            raise ValueError("min_spacing_frac/max_spacing_frac must satisfy 0 < min < max <= 2, got "
                             f"{self.min_spacing_frac}, {self.max_spacing_frac}")
        if not 0.0 <= self.max_convergence <= 3.0:
            raise ValueError(f"max_convergence must be in [0, 3], got {self.max_convergence}")
        if not 0.0 <= self.max_tilt_frac <= 2.0:
            raise ValueError(f"max_tilt_frac must be in [0, 2], got {self.max_tilt_frac}")
        if not 0.0 <= self.ignore_top_frac < 0.8:
            raise ValueError(f"ignore_top_frac must be in [0, 0.8), got {self.ignore_top_frac}")
        if not 0.0 <= self.min_fill_frac < 1.0:
            raise ValueError(f"min_fill_frac must be in [0, 1), got {self.min_fill_frac}")
        if not 0.0 < self.min_support_frac <= 1.0:
            raise ValueError(f"min_support_frac must be in (0, 1], got {self.min_support_frac}")
        if not 0.0 <= self.min_vegetation_frac < self.max_vegetation_frac <= 1.0:
            raise ValueError("min_vegetation_frac/max_vegetation_frac must satisfy 0 <= min < max <= 1")
        if not 0.0 < self.nominal_hfov_rad < math.pi:
            raise ValueError(f"nominal_hfov_rad must be in (0, pi), got {self.nominal_hfov_rad}")
        if int(self.min_image_px) < 8:
            raise ValueError(f"min_image_px must be >= 8, got {self.min_image_px}")
        if int(self.max_image_pixels) < 64 * 64:
            raise ValueError(f"max_image_pixels must be >= 4096, got {self.max_image_pixels}")


@dataclass(frozen=True)
class CameraGeometry:
    """Pinhole intrinsics (for the image size given) and mounting on ``base_link``.

    The camera looks forward along ``base_link`` +x, pitched down by ``pitch_rad``, without roll.

    Attributes
    ----------
    fx_px, fy_px, cx_px, cy_px : intrinsics of the full-resolution image, px.
    width_px, height_px : image size the intrinsics belong to, px.
    height_m : height of the optical centre above the ground, m.
    pitch_rad : downward pitch of the optical axis (0 = horizontal, pi/2 = straight down), rad.
    x_m, y_m : position of the optical centre in ``base_link`` (forward, left), m.
    """

    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float
    width_px: int
    height_px: int
    height_m: float
    pitch_rad: float
    x_m: float = 0.0
    y_m: float = 0.0

    def __post_init__(self):
        for name in ("fx_px", "fy_px"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v}")
        for name in ("cx_px", "cy_px", "x_m", "y_m"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if int(self.width_px) <= 0 or int(self.height_px) <= 0:
            raise ValueError(f"width_px/height_px must be > 0, got {self.width_px}x{self.height_px}")
        if not (math.isfinite(self.height_m) and self.height_m > 0):
            raise ValueError(f"height_m must be finite and > 0, got {self.height_m}")
        if not (math.isfinite(self.pitch_rad) and -0.2 < self.pitch_rad <= math.pi / 2 + 1e-9):
            raise ValueError(f"pitch_rad must be in (-0.2, pi/2], got {self.pitch_rad}")

    def scaled(self, width_px: int, height_px: int) -> CameraGeometry:
        """The same camera for an image resized to ``width_px`` x ``height_px``."""
        sx, sy = width_px / self.width_px, height_px / self.height_px
        return CameraGeometry(self.fx_px * sx, self.fy_px * sy, (self.cx_px + 0.5) * sx - 0.5,
                              (self.cy_px + 0.5) * sy - 0.5, width_px, height_px, self.height_m,
                              self.pitch_rad, self.x_m, self.y_m)

    def _axes(self):
        c, s = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        fwd = np.array([c, 0.0, -s])     # optical axis (z_opt) in base_link
        left = np.array([0.0, 1.0, 0.0])  # -x_opt
        up = np.array([s, 0.0, c])       # -y_opt
        return fwd, left, up

    def pixels_to_ground(self, uv_px) -> np.ndarray:
        """Intersect pixel rays with the ground plane.

        Parameters
        ----------
        uv_px : array_like, shape (N, 2)
            Pixel coordinates (x right, y down).

        Returns
        -------
        np.ndarray, shape (N, 2)
            ``(x_m, y_m)`` in ``base_link`` on the ground; NaN where the ray does not hit the ground
            (at or above the horizon).
        """
        uv = np.asarray(uv_px, dtype=float).reshape(-1, 2)
        xo = (uv[:, 0] - self.cx_px) / self.fx_px
        yo = (uv[:, 1] - self.cy_px) / self.fy_px
        fwd, left, up = self._axes()
        ray = fwd[None, :] - xo[:, None] * left[None, :] - yo[:, None] * up[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -self.height_m / ray[:, 2]
        t[~(ray[:, 2] < -1e-9)] = np.nan
        out = np.empty((len(uv), 2))
        out[:, 0] = self.x_m + t * ray[:, 0]
        out[:, 1] = self.y_m + t * ray[:, 1]
        return out

    def ground_to_pixels(self, xy_m) -> np.ndarray:
        """Project ground points ``(x_m, y_m)`` in ``base_link``, shape (N, 2), to pixels (N, 2).

        Points behind the camera come out as NaN.
        """
        p = np.asarray(xy_m, dtype=float).reshape(-1, 2)
        fwd, left, up = self._axes()
        rel = np.column_stack([p[:, 0] - self.x_m, p[:, 1] - self.y_m, np.full(len(p), -self.height_m)])
        z = rel @ fwd
        xo = -(rel @ left)
        yo = -(rel @ up)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.cx_px + self.fx_px * xo / z
            v = self.cy_px + self.fy_px * yo / z
        bad = ~(z > 1e-6)
        u[bad] = np.nan
        v[bad] = np.nan
        return np.column_stack([u, v])


def camera_from_info(k, width_px: int, height_px: int, height_m: float, pitch_rad: float,
                     x_m: float = 0.0, y_m: float = 0.0) -> CameraGeometry:
    """CameraGeometry from a ``sensor_msgs/CameraInfo``-style row-major 3x3 ``k`` (9 values) and mounting.

    Raises ValueError for an all-zero/invalid ``k`` (uncalibrated camera) or bad mounting.
    """
    kk = np.asarray(k, dtype=float).ravel()
    if kk.size != 9 or not np.all(np.isfinite(kk)) or kk[0] <= 0 or kk[4] <= 0:
        raise ValueError("camera_info K is missing or invalid (uncalibrated camera)")
    return CameraGeometry(float(kk[0]), float(kk[4]), float(kk[2]), float(kk[5]), int(width_px), int(height_px),
                          float(height_m), float(pitch_rad), float(x_m), float(y_m))


@dataclass
class CropRowResult:
    """Output of :func:`detect_rows`.

    Attributes
    ----------
    rows : list of np.ndarray, each shape (N, 2)
        One polyline per visible row, pixel (x, y) of the input image, ordered bottom-up; rows sorted
        left to right. Straight rows have 2 points.
    offset : float
        Lateral offset of the followed row (positive left); metres if ``metric`` else row spacings.
    heading : float
        Row direction relative to the robot heading (positive counter-clockwise), rad.
    confidence : float
        In [0, 1]; 0 means "no usable rows" and ``offset``/``heading`` are 0.
    center_index : int
        Index into ``rows`` of the followed row, -1 if none.
    metric : bool
        True when ``offset`` is in metres (camera geometry was given).
    vanishing_point : tuple of float or None
        Common vanishing point (x, y) px, None when the rows are (near) parallel in the image.
    spacing_px : float
        Row spacing on the image bottom line, px of the input image (0 if none).
    spacing_m : float
        Row spacing on the ground (metric mode only, else 0), m.
    vegetation_frac : float
        Fraction of the image segmented as vegetation.
    row_end : float
        How far the followed row is visible: metres ahead of ``base_link`` in metric mode, else the
        fraction of the image height (from the bottom) that holds the row; 0 if none.
    rows_visible : int
        ``len(rows)``.
    contrast : float
        Vegetation density on the rows against between them, in [-1, 1] (part of the confidence).
    reason : str
        Why confidence is 0 (empty when a detection was made).
    mask : np.ndarray or None
        Working-resolution vegetation mask (uint8 0/1) when requested.
    """

    rows: list = field(default_factory=list)
    offset: float = 0.0
    heading: float = 0.0
    confidence: float = 0.0
    center_index: int = -1
    metric: bool = False
    vanishing_point: tuple | None = None
    spacing_px: float = 0.0
    spacing_m: float = 0.0
    vegetation_frac: float = 0.0
    row_end: float = 0.0
    rows_visible: int = 0
    contrast: float = 0.0
    reason: str = ""
    mask: np.ndarray | None = None


# ----------------------------------------------------------------------------------------------
# Input checking and vegetation segmentation


def check_image(image_bgr, params: CropRowParams | None = None) -> np.ndarray:
    """Validate an image and return it as a contiguous ``uint8`` (H, W, 3) BGR array.

    Raises
    ------
    ValueError
        For None, empty, non-numeric, wrong-shape (grey, RGBA is accepted and dropped to BGR),
        too small or too large images, or non-finite float data.
    """
    p = params or CropRowParams()
    if image_bgr is None:
        raise ValueError("image is None")
    img = np.asarray(image_bgr)
    if img.size == 0:
        raise ValueError(f"image is empty (shape {img.shape})")
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected a colour BGR image of shape (H, W, 3), got shape {img.shape}")
    if img.shape[2] == 4:
        img = img[:, :, :3]
    h, w = img.shape[:2]
    if h < p.min_image_px or w < p.min_image_px:
        raise ValueError(f"image too small: {w}x{h} px (minimum {p.min_image_px} px per side)")
    if h * w > p.max_image_pixels:
        raise ValueError(f"image too large: {w}x{h} px (maximum {p.max_image_pixels} pixels)")
    if img.dtype != np.uint8:
        if img.dtype.kind == "f":
            if not np.all(np.isfinite(img)):
                raise ValueError("image holds NaN or inf")
            scale = 255.0 if float(img.max(initial=0.0)) <= 1.0 else 1.0
            img = np.clip(img * scale, 0, 255).astype(np.uint8)
        elif img.dtype.kind in "ui":
            if img.dtype.itemsize > 1:
                img = (np.clip(img, 0, 65535) >> 8).astype(np.uint8) if img.max(initial=0) > 255 \
                    else np.clip(img, 0, 255).astype(np.uint8)
            else:
                img = img.astype(np.uint8)
        elif img.dtype == bool:
            raise ValueError("expected a colour BGR image, got a boolean array")
        else:
            raise ValueError(f"unsupported image dtype {img.dtype}")
    return np.ascontiguousarray(img)


def vegetation_index(image_bgr: np.ndarray, index: str = "exg") -> np.ndarray:
    """Vegetation index per pixel, larger = greener.

    Parameters
    ----------
    image_bgr : np.ndarray, shape (H, W, 3), uint8
    index : ``"exg"`` (excess green ``2g - r - b`` on chromatic coordinates), ``"exgr"`` (ExG - ExR,
        ExR = ``1.4 r - g``) or ``"cive"`` (negated colour index of vegetation extraction, scaled).

    Returns
    -------
    np.ndarray, shape (H, W), float32
        Chromatic indices lie roughly in [-1, 2]; soil is near or below 0.
    """
    f = image_bgr.astype(np.float32)
    b, g, r = f[..., 0], f[..., 1], f[..., 2]
    s = b + g + r + 1.0
    if index == "cive":
        cive = 0.441 * r - 0.811 * g + 0.385 * b + 18.78745
        return (-cive / 255.0).astype(np.float32)
    rn, gn, bn = r / s, g / s, b / s
    exg = 2.0 * gn - rn - bn
    if index == "exg":
        return exg
    if index == "exgr":
        return exg - (1.4 * rn - gn)
    raise ValueError(f"unknown vegetation index {index!r}")


def segment_vegetation(image_bgr: np.ndarray, index: str = "exg", min_index: float = 0.04):
    """Binary vegetation mask by Otsu on the vegetation index, never below ``min_index``.

    Dark pixels (sum of channels < 30) carry no reliable chroma and are never vegetation.

    Returns
    -------
    mask : np.ndarray, shape (H, W), uint8 in {0, 1}
    threshold : float
        The index threshold used.
    """
    vi = vegetation_index(image_bgr, index)
    lo, hi = -0.5, 1.0
    q = np.clip((vi - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(lo + otsu * (hi - lo) / 255.0, min_index if index != "cive" else -1.0)
    mask = vi > thr
    dark = image_bgr.astype(np.uint16).sum(axis=2) < 30
    mask &= ~dark
    return mask.astype(np.uint8), float(thr)


# ----------------------------------------------------------------------------------------------
# Row model fit


def _strip_profiles(mask: np.ndarray, n_strips: int, ignore_top_frac: float):
    """Column profiles of horizontal strips, bottom-up: (n, W) float32 and strip centres y (n,)."""
    h, w = mask.shape
    sh = max(1, h // n_strips)
    n = h // sh
    top0 = h - n * sh
    m = mask[top0:].reshape(n, sh, w).astype(np.float32).mean(axis=1)
    yc = top0 + (np.arange(n) + 0.5) * sh - 0.5
    keep = yc >= ignore_top_frac * h
    return np.ascontiguousarray(m[keep][::-1]), yc[keep][::-1]


def _fit_row_model(profiles, yc, h, w, p: CropRowParams):
    """Coherent periodic fit of the common-vanishing-point, equal-spacing row model.

    Returns ``(lam, mslope, s, x0, coherence)`` or None. Working-image pixels; a row with bottom
    intercept ``xb`` lies at ``x(d) = xb * (1 - lam d) + mslope d`` (``d`` = px above the bottom line).
    """
    n, W = profiles.shape
    d = ((h - 0.5) - yc).astype(np.float64)
    wz = profiles - profiles.mean(axis=1, keepdims=True)
    wz = wz * np.hanning(W + 2)[1:-1].astype(np.float32)[None, :]
    N = 8 * int(2 ** math.ceil(math.log2(W)))
    F = np.fft.rfft(wz, n=N, axis=1).astype(np.complex64)  # F[i, k] = sum_j wz_ij e^{-2 pi i k j / N}
    lam_max = p.max_convergence / h

    def evaluate(lams, tilts, ss):
        lams, tilts, ss = (np.asarray(v, dtype=np.float64) for v in (lams, tilts, ss))
        scale = 1.0 - lams[:, None] * d[None, :]                     # (L, n)
        valid_l = scale > 0.12
        a = 1.0 / np.where(valid_l, scale, 1.0)
        f = a[:, None, :] / ss[None, :, None]                        # (L, S, n) cycles/px
        valid = valid_l[:, None, :] & (f < 1.0 / 3.0)
        kf = np.where(valid, f * N, 0.0)
        k0 = kf.astype(np.int64)
        fr = (kf - k0).astype(np.float32)
        ri = np.arange(n)[None, None, :]
        Pv = F[ri, k0] * (1.0 - fr) + F[ri, k0 + 1] * fr               # (L, S, n)
        Pv = np.where(valid, Pv, 0.0).astype(np.complex64)
        u = (d[None, :] * a)[:, None, :] / ss[None, :, None]          # (L, S, n)
        m = (tilts[None, :] * w + lams[:, None] * h * w / 2.0) / h    # (L, T)
        # x_b = a x + b with b = -m d a, so sum_j wz e^{-2 pi i x_b / s} = F(a / s) e^{+2 pi i m u}
        # tilts are evenly spaced: m[:, k] = m[:, 0] + k dm, so the phase factors are powers of one step
        dm = (tilts[1] - tilts[0]) * w / h if len(tilts) > 1 else 0.0
        cur = (np.exp((2j * np.pi) * (m[:, 0, None, None] * u)) * Pv).astype(np.complex64)   # (L, S, n)
        step = np.exp((2j * np.pi * dm) * u).astype(np.complex64)
        tot = np.empty((len(lams), len(tilts), len(ss)), np.complex64)
        for k in range(len(tilts)):
            tot[:, k, :] = cur.sum(axis=2)
            cur *= step
        nvalid = valid.sum(axis=2)                                   # (L, S)
        power = (np.abs(Pv) ** 2).sum(axis=2) + 1e-12               # (L, S)
        # weighted Rayleigh statistic: ~1 for random phases, ~n_strips when all strips agree
        score = (np.abs(tot) ** 2) / power[:, None, :]
        score = np.where((nvalid >= max(4, n // 3))[:, None, :], score, 0.0)
        return tot, score, m, power

    lams = np.linspace(0.0, lam_max, _GRID[0])
    tilts = np.linspace(-p.max_tilt_frac, p.max_tilt_frac, _GRID[1])
    ss = np.exp(np.linspace(math.log(p.min_spacing_frac * w), math.log(p.max_spacing_frac * w), _GRID[2]))
    tot, score, m, power = evaluate(lams, tilts, ss)
    li, ti, si = np.unravel_index(int(np.argmax(score)), score.shape)
    if score[li, ti, si] <= 0:
        return None
    lam0, t0, s0 = lams[li], tilts[ti], ss[si]
    dl, dt, rs = lams[1] - lams[0], tilts[1] - tilts[0], ss[1] / ss[0]
    for _ in range(3):
        lams = np.unique(np.clip(lam0 + dl * np.array([-0.5, 0.0, 0.5]), 0.0, lam_max))
        tilts = t0 + dt * np.array([-0.5, 0.0, 0.5])
        ss = s0 * rs ** np.array([-0.5, 0.0, 0.5])
        tot, score, m, power = evaluate(lams, tilts, ss)
        li, ti, si = np.unravel_index(int(np.argmax(score)), score.shape)
        lam0, t0, s0 = lams[li], tilts[ti], ss[si]
        dl, dt, rs = dl / 2.0, dt / 2.0, rs ** 0.5
    z = tot[li, ti, si]
    x0 = float((-np.angle(z) / (2 * np.pi) * s0) % s0)
    coherence = float(abs(z) / math.sqrt(power[li, si] * max(1, n)))
    return float(lam0), float(m[li, ti]), float(s0), x0, coherence


def _centroids(profiles, cum0, cum1, x_pred, half):
    """Vegetation centroid of each strip in windows ``x_pred +- half``.

    ``x_pred``, ``half``: (R, n). Returns centroid x (R, n) and fill fraction (R, n) (NaN/0 outside).
    """
    n, W = profiles.shape
    lo = np.clip(np.floor(x_pred - half), 0, W).astype(np.int64)
    hi = np.clip(np.ceil(x_pred + half) + 1, 0, W).astype(np.int64)
    ri = np.broadcast_to(np.arange(n)[None, :], lo.shape)
    m0 = cum0[ri, hi] - cum0[ri, lo]
    m1 = cum1[ri, hi] - cum1[ri, lo]
    width = np.maximum(hi - lo, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = np.where(m0 > 1e-6, m1 / m0, np.nan)
    fill = np.where(hi > lo, m0 / width, 0.0)
    return xc, fill


def _robust_fit(d, x, w, deg):
    """Weighted least squares of x(d) with two Cauchy re-weighting passes; returns coefficients."""
    c = np.polyfit(d, x, deg, w=w)
    for _ in range(2):
        r = x - np.polyval(c, d)
        sc = max(1.4826 * float(np.median(np.abs(r))), 0.5)
        c = np.polyfit(d, x, deg, w=w / (1.0 + (r / (2.5 * sc)) ** 2))
    return c


def _batch_fit(dn, X, Wt, ridge_quad):
    """Weighted quadratic least squares per row, with Cauchy re-weighting.

    dn : (n,) normalised height; X, Wt : (R, n) positions and weights (0 = unused).
    A ridge on the quadratic coefficient pulls sparse or noisy rows towards straight lines.
    Returns coefficients (R, 3) for ``x = c0 + c1 dn + c2 dn^2``.
    """
    A = np.stack([np.ones_like(dn), dn, dn * dn], axis=1)  # (n, 3)
    Xz = np.where(Wt > 0, X, 0.0)
    reg = np.diag([1e-9, 1e-9, ridge_quad])
    w = Wt.copy()
    c = None
    for _ in range(3):
        ATA = np.einsum("rn,ni,nj->rij", w, A, A) + reg[None]
        ATb = np.einsum("rn,ni,rn->ri", w, A, Xz)
        c = np.linalg.solve(ATA, ATb[..., None])[..., 0]
        r = np.where(Wt > 0, Xz - c @ A.T, 0.0)
        cnt = np.maximum((Wt > 0).sum(axis=1, keepdims=True), 1)
        sc = np.maximum(1.4826 * np.sqrt((r * r).sum(axis=1, keepdims=True) / cnt), 0.5)
        w = Wt / (1.0 + (r / (2.0 * sc)) ** 2)
    return c


def _extract_rows(profiles, yc, h, w, lam, mslope, s, x0, p: CropRowParams, tol_px):
    """Follow every row of the model through the strips (three passes of windowed centroids).

    Returns a list, left to right, of (polyline (K, 2) working px bottom-up, support fraction,
    span fraction of h, x on the bottom line (possibly outside the image)), and the row/inter-row
    vegetation contrast in [-1, 1].
    """
    n, W = profiles.shape
    d = (h - 0.5) - yc
    dn = d / h
    sc = 1.0 - lam * d
    usable = (sc > 0.15) & (s * sc >= 3.0)
    cum0 = np.zeros((n, W + 1), np.float64)
    cum0[:, 1:] = np.cumsum(profiles, axis=1)
    cum1 = np.zeros((n, W + 1), np.float64)
    cum1[:, 1:] = np.cumsum(profiles * np.arange(W, dtype=np.float32)[None, :], axis=1)
    d_top = h * 0.75
    sc_top = max(1.0 - lam * d_top, 0.15)
    k_lo = int(math.floor((-mslope * d_top / sc_top - x0) / s)) - 1
    k_hi = int(math.ceil(((w - mslope * d_top) / sc_top - x0) / s)) + 1
    k_lo = max(k_lo, int(math.floor((-1.5 * w - x0) / s)))
    k_hi = min(k_hi, int(math.ceil((2.5 * w - x0) / s)))
    xb = x0 + s * np.arange(k_lo, k_hi + 1, dtype=np.float64)
    if xb.size == 0:
        return [], 0.0
    x_model = xb[:, None] * sc[None, :] + mslope * d[None, :]
    local_s = np.maximum(s * sc, 1.0)[None, :]
    basis = np.stack([np.ones_like(dn), dn, dn * dn])
    x_pred = x_model
    inside = usable[None, :] & (x_pred > -0.2 * local_s) & (x_pred < W - 1 + 0.2 * local_s)
    ok = inside
    c = np.zeros((len(xb), 3))
    for half_frac in (0.3, 0.25, 0.2):
        xc, fill = _centroids(profiles, cum0, cum1, x_pred, half_frac * local_s)
        ok = inside & np.isfinite(xc) & (fill >= p.min_fill_frac)
        wt = np.where(ok, np.sqrt(fill), 0.0)
        # fit the correction to the global model; the ridge keeps weakly supported rows model-like
        c = _batch_fit(dn, np.nan_to_num(xc - x_model), wt, ridge_quad=0.02)
        x_pred = x_model + c @ basis
        inside = usable[None, :] & (x_pred > -0.2 * local_s) & (x_pred < W - 1 + 0.2 * local_s)
    # row/inter-row contrast: vegetation density on the rows against half a spacing beside them
    _, fill_on = _centroids(profiles, cum0, cum1, x_pred, 0.2 * local_s)
    _, fill_off = _centroids(profiles, cum0, cum1, x_pred + 0.5 * local_s, 0.2 * local_s)
    both = inside & (x_pred + 0.7 * local_s < W - 1)
    on, off = float(fill_on[both].sum()), float(fill_off[both].sum())
    contrast = (on - off) / (on + off) if on + off > 0 else 0.0
    out = []
    n_inside = inside.sum(axis=1)
    for r in range(len(xb)):
        okr = ok[r]
        cnt = int(okr.sum())
        if cnt < 3 or n_inside[r] == 0:
            continue
        support = cnt / int(n_inside[r])
        if support < p.min_support_frac:
            continue
        top_i = int(np.max(np.flatnonzero(okr)))
        bot_i = int(np.min(np.flatnonzero(inside[r])))
        d_lo = 0.0 if bot_i == 0 else float(d[bot_i])
        d_hi = float(d[top_i])
        if d_hi - d_lo < 2.0:
            continue
        dd = np.linspace(d_lo, d_hi, 9) / h
        xq = xb[r] * (1.0 - lam * dd * h) + mslope * dd * h + c[r, 0] + c[r, 1] * dd + c[r, 2] * dd * dd
        # straight chord through the same end points
        xl = xq[0] + (xq[-1] - xq[0]) * (dd - dd[0]) / (dd[-1] - dd[0])
        yy = (h - 0.5) - dd * h
        if float(np.max(np.abs(xq - xl))) > tol_px:
            poly = np.column_stack([xq, yy])
        else:
            poly = np.column_stack([xq[[0, -1]], yy[[0, -1]]])
        out.append((poly, support, d_hi / h, float(xb[r] + c[r, 0])))
    return out, contrast



# ----------------------------------------------------------------------------------------------
# Vanishing-point row model ("vp" method)
#
# Parallel rows on a flat field are lines through one vanishing point (VP). With ``d`` the height above
# the image bottom, a row with bottom intercept ``xb`` lies at ``x(d) = xb (1 - lam d) + m d``
# (``lam`` = 1 / VP height above the bottom, ``m`` = VP x * lam). Mapping every image band onto the
# bottom line by ``xb = (x - m d) / (1 - lam d)`` aligns all bands of a row on one ``xb`` exactly when
# (lam, m) is right, so the energy is the coherence of the mapped band profiles: each band's profile is
# centred and scaled to unit norm (every band counts the same, a band of uniform green counts nothing)
# and the energy is the squared norm of their sum (searched coarse to fine). Rows are then the teeth of
# the equally spaced comb (the fundamental of the consensus profile) snapped to the nearest peak, and
# each row is refined on its own through windowed vegetation centroids band by band (robust line or
# parabola pulled towards the VP line).


def vegetation_weight(image_bgr: np.ndarray, min_index: float = 0.03, softness: float = 0.05) -> np.ndarray:
    """Soft vegetation map in [0, 1]: ExG on chromatic coordinates around an Otsu threshold.

    The chromatic index is invariant to brightness (shadows, flare); dark pixels (channel sum < 30) carry
    no reliable chroma and weigh 0. Pixels ``softness`` above the threshold weigh ~1.
    """
    vi = vegetation_index(image_bgr, "exg")
    q = np.clip((vi + 0.5) * (255.0 / 1.5), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(otsu * 1.5 / 255.0 - 0.5, min_index)
    w = np.clip((vi - thr) * (1.0 / softness) + 0.5, 0.0, 1.0)
    w[image_bgr.astype(np.uint16).sum(axis=2) < 30] = 0.0
    return w.astype(np.float32)


def _bands(w: np.ndarray, n: int, top_frac: float):
    """Mean column profiles of ``n`` horizontal bands over the lower ``top_frac`` of the image, bottom-up,
    and their heights ``d`` above the bottom line."""
    H, W = w.shape
    sh = max(1, int(round(H * top_frac / n)))
    n = max(1, min(n, int(H * top_frac) // sh))
    top = H - n * sh
    prof = w[top:].reshape(n, sh, W).mean(axis=1)[::-1]
    yc = top + (np.arange(n) + 0.5) * sh - 0.5
    return np.ascontiguousarray(prof, dtype=np.float32), ((H - 0.5) - yc[::-1]).astype(np.float64)


def _normalise_bands(prof):
    """Centre each band profile and scale it to unit norm (every band counts the same in the energy)."""
    v = prof - prof.mean(axis=1, keepdims=True)
    v /= np.sqrt((v * v).sum(axis=1, keepdims=True)) + 1e-6
    return np.ascontiguousarray(v, dtype=np.float32)


@functools.lru_cache(maxsize=16)
def _band_rows_map(C, n, B):
    """The remap y map of :func:`_vp_energy` (band index of every sample), cached per shape; read-only."""
    my = np.ascontiguousarray(np.broadcast_to(np.arange(n, dtype=np.float32)[None, :, None], (C, n, B)))
    my = my.reshape(C * n, B)
    my.flags.writeable = False
    return my


def _vp_energy(vn, d, lams, ms, xb):
    """Band-coherence energy for every (lam, m) pair; returns energy (C,), consensus profiles (C, B).

    ``vn``: normalised band profiles (:func:`_normalise_bands`). Band ``i`` is sampled at
    ``x = xb (1 - lam d_i) + m d_i`` (linear interpolation, 0 outside the image) and the samples of all
    bands are summed per ``xb``. One ``cv2.remap`` call does the sampling for all candidates.
    """
    n, Wp = vn.shape
    C, B = len(lams), len(xb)
    sc = (1.0 - lams[:, None] * d[None, :]).astype(np.float32)                    # (C, n)
    off = (ms[:, None] * d[None, :]).astype(np.float32)
    mx = xb.astype(np.float32)[None, None, :] * sc[:, :, None] + off[:, :, None]   # (C, n, B)
    mx[sc <= 0.15] = -10.0
    v = cv2.remap(vn, mx.reshape(C * n, B), _band_rows_map(C, n, B), cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    tot = v.reshape(C, n, B).sum(axis=1)
    return (tot * tot).sum(axis=1), tot


VP_GRID = (10, 17)  # coarse search: convergence x VP abscissa
VP_REFINE_STEPS = 6  # 3 x 3 refinement steps of the VP search
VP_FINE_STEPS = 3  # the last ones on a 1 px grid (2 px before)
VP_BANDS = (20, 0.92)  # bands of the VP search and the fraction of the image height they cover
# window half-width (row spacings) and ridge on slope / curvature of the correction per pass: the first
# passes keep rows near their VP line, the last lets curved rows bend
REFINE_PASSES = ((0.3, 0.1, 1.0), (0.22, 0.1, 1.0), (0.2, 0.001, 0.001))


def _fit_vanishing_point(vn, d, W, H, p: CropRowParams):
    """Coarse-to-fine search of (lam, m). Returns lam, m, consensus profile, its xb grid, coherence.

    The coarse grid runs on bands pooled in pairs and a 4 px xb grid; each refinement step halves the
    search step around the best candidate (3 x 3 candidates).
    """
    lo, hi = -0.75 * W, 1.75 * W
    lam_max = p.max_convergence / H
    m_max = p.max_tilt_frac * W / H * 1.5
    lams = np.linspace(0.0, lam_max, VP_GRID[0])
    ms = np.linspace(-m_max, m_max, VP_GRID[1])
    L, M = (a.ravel() for a in np.meshgrid(lams, ms, indexing="ij"))
    n2 = len(d) // 2 * 2
    vc = _normalise_bands(vn[:n2].reshape(n2 // 2, 2, -1).mean(axis=1))
    e, _ = _vp_energy(vc, d[:n2].reshape(-1, 2).mean(axis=1), L, M, np.arange(lo, hi, 4.0))
    k = int(np.argmax(e))
    lam, m = L[k], M[k]
    dl, dm = (lams[1] - lams[0]) * 0.5, (ms[1] - ms[0]) * 0.5
    step = np.array([-1.0, 0.0, 1.0])
    for it in range(VP_REFINE_STEPS):
        L, M = (a.ravel() for a in np.meshgrid(np.clip(lam + dl * step, 0.0, lam_max), m + dm * step,
                                               indexing="ij"))
        e, _ = _vp_energy(vn, d, L, M, np.arange(lo, hi, 2.0 if it < VP_REFINE_STEPS - VP_FINE_STEPS else 1.0))
        k = int(np.argmax(e))
        lam, m = L[k], M[k]
        if k == 4:  # the centre is best: search closer
            dl, dm = dl / 2.0, dm / 2.0
    xb = np.arange(lo, hi, 1.0)
    e, tot = _vp_energy(vn, d, np.array([lam]), np.array([m]), xb)
    coherence = float(math.sqrt(max(e[0], 0.0)) / max(len(d), 1))  # 1: all bands agree, ~n^-1/2: noise
    return float(lam), float(m), tot[0], xb, coherence


def _comb_rows(P, xb, W, p: CropRowParams):
    """Equally spaced rows from the consensus profile: fundamental period and phase, teeth snapped to
    the nearest peak. Returns (list of xb, spacing) or ([], 0)."""
    Pz = np.convolve(P, _GAUSS7, mode="same")
    Pp = np.maximum(Pz, 0.0)
    Pz = (Pz - Pz.mean()) * np.hanning(len(Pz))
    ss, basis = _comb_basis(float(xb[0]), float(xb[1] - xb[0]), len(xb), p.min_spacing_frac * W,
                            p.max_spacing_frac * W)
    F = basis @ Pz.astype(np.complex64)
    k = int(np.argmax(np.abs(F)))
    s0, z = float(ss[k]), F[k]
    r = (ss[1] / ss[0]) ** 0.5
    for _ in range(3):
        cand = s0 * r ** np.linspace(-1.0, 1.0, 5)
        F2 = np.exp((-2j * np.pi) * xb[None, :] / cand[:, None]) @ Pz
        j = int(np.argmax(np.abs(F2)))
        s0, z = float(cand[j]), F2[j]
        r = r ** 0.5
    if abs(z) <= 1e-9:
        return [], 0.0
    x0 = (-np.angle(z) / (2 * np.pi) * s0) % s0
    rows = []
    for kk in range(int(math.floor((xb[0] - x0) / s0)), int(math.ceil((xb[-1] - x0) / s0)) + 1):
        c = x0 + kk * s0
        if not xb[0] <= c <= xb[-1]:
            continue
        sel = np.abs(xb - c) <= 0.25 * s0
        wv = Pp[sel]
        rows.append(float((wv * xb[sel]).sum() / wv.sum()) if wv.sum() > 1e-6 else c)
    return rows, s0


_GAUSS7 = cv2.getGaussianKernel(7, 1.5).ravel()


@functools.lru_cache(maxsize=8)
def _comb_basis(x_first, step, n, s_min, s_max, n_periods=60):
    """Log-spaced candidate periods and their Fourier basis on the xb grid (cached per image size)."""
    ss = np.exp(np.linspace(math.log(s_min), math.log(s_max), n_periods))
    xb = x_first + step * np.arange(n)
    return ss, np.exp((-2j * np.pi) * xb[None, :] / ss[:, None]).astype(np.complex64)


def _refine_vp_rows(prof, d, h, w, rows_xb, lam, m, s, p: CropRowParams, tol_px):
    """Per-row windowed-centroid refinement; output in the format of :func:`_extract_rows`."""
    n, Wp = prof.shape
    pz = np.maximum(prof - prof.mean(axis=1, keepdims=True), 0.0)
    cum0 = np.zeros((n, Wp + 1))
    cum0[:, 1:] = np.cumsum(pz, axis=1)
    cum1 = np.zeros((n, Wp + 1))
    cum1[:, 1:] = np.cumsum(pz * np.arange(Wp)[None, :], axis=1)
    sc = 1.0 - lam * d
    usable = (sc > 0.15) & (s * sc >= 2.0)
    dn = d / h
    ri = np.arange(n)
    out = []
    xr = np.asarray(rows_xb)[:, None] * sc[None, :] + m * d[None, :]
    seen = ((xr > -0.3 * s * sc) & (xr < Wp - 1 + 0.3 * s * sc) & usable[None, :]).sum(axis=1) >= 3
    rows_xb = [x for x, k in zip(rows_xb, seen) if k]   # rows that cross the image
    if not rows_xb:
        return [], 0.0
    x0s = np.asarray(rows_xb, dtype=np.float64)
    R = len(x0s)
    base = x0s[:, None] * sc[None, :] + m * d[None, :]        # (R, n): the VP line of every row
    basis = np.stack([np.ones_like(dn), dn, dn * dn])          # correction x = base + c . basis
    c = np.zeros((R, 3))
    alive = np.ones(R, bool)
    ok_last = np.zeros((R, n), bool)
    for hf, r_slope, r_curv in REFINE_PASSES:
        xp = base + c @ basis
        half = np.maximum(hf * s * sc, 1.0)[None, :]
        lo = np.clip(np.floor(xp - half), 0, Wp).astype(np.int64)
        hi = np.clip(np.ceil(xp + half) + 1, 0, Wp).astype(np.int64)
        m0 = cum0[ri[None, :], hi] - cum0[ri[None, :], lo]
        m1 = cum1[ri[None, :], hi] - cum1[ri[None, :], lo]
        ok = usable[None, :] & (hi - lo >= 2) & (m0 > 1e-6)
        ok_last[alive] = ok[alive]
        alive &= ok.sum(axis=1) >= 4
        if not alive.any():
            break
        wt = np.where(ok, np.sqrt(np.where(ok, m0, 1.0)), 0.0)
        xc = np.where(ok, m1 / np.where(ok, m0, 1.0) - base, 0.0)
        ata = np.einsum("rn,in,jn->rij", wt, basis, basis)
        ata += wt.sum(axis=1)[:, None, None] * np.diag([1e-6, r_slope, r_curv])[None]  # pulls towards the VP line
        atb = np.einsum("rn,in,rn->ri", wt, basis, xc)
        cn = np.linalg.solve(ata[alive], atb[alive][..., None])[..., 0]
        c[alive] = cn
    xp = base + c @ basis
    inside = usable[None, :] & (xp > -0.2 * s * sc) & (xp < Wp - 1 + 0.2 * s * sc)
    sup = ok_last & inside
    keep = (inside.sum(axis=1) > 0) & (sup.sum(axis=1) >= 3)
    # on/off-row vegetation of the kept rows for the contrast
    half = np.maximum(0.2 * s * sc, 1.0)[None, :]
    sums = []
    for shift in (0.0, 0.5):
        xq = xp + shift * s * sc[None, :]
        lo = np.clip(np.floor(xq - half), 0, Wp).astype(np.int64)
        hi = np.clip(np.ceil(xq + half) + 1, 0, Wp).astype(np.int64)
        fill = (cum0[ri[None, :], hi] - cum0[ri[None, :], lo]) / np.maximum(hi - lo, 1)
        sums.append(float(fill[inside & keep[:, None]].sum()))
    on_sum, off_sum = sums
    for r in np.flatnonzero(keep):
        support = float(sup[r].sum()) / int(inside[r].sum())  # every tooth of the comb is kept
        d_hi = float(d[int(np.max(np.flatnonzero(sup[r])))])
        bot = int(np.min(np.flatnonzero(inside[r])))
        d_lo = 0.0 if bot == 0 else float(d[bot])
        if d_hi - d_lo < 2.0:
            continue
        dd = np.linspace(d_lo, d_hi, 9)
        cr = c[r]
        xq = x0s[r] * (1.0 - lam * dd) + m * dd + cr[0] + cr[1] * dd / h + cr[2] * (dd / h) ** 2
        chord = xq[0] + (xq[-1] - xq[0]) * (dd - dd[0]) / (dd[-1] - dd[0])
        yy = (h - 0.5) - dd
        poly = np.column_stack([xq, yy])
        if float(np.max(np.abs(xq - chord))) <= tol_px:
            poly = poly[[0, -1]]
        out.append((poly, support, d_hi / h, float(x0s[r] + cr[0])))
    contrast = (on_sum - off_sum) / (on_sum + off_sum) if on_sum + off_sum > 0 else 0.0
    return out, contrast


def _detect_vp(small, p: CropRowParams, tol_px, wv=None):
    """The "vp" pipeline on the working image. Returns (found, contrast, lam, m, s, coherence) or None."""
    hw, ww = small.shape[:2]
    if wv is None:
        wv = vegetation_weight(small, p.min_index)
    prof, d = _bands(wv, VP_BANDS[0], VP_BANDS[1] - p.ignore_top_frac)
    prof = cv2.GaussianBlur(prof, (5, 1), 1.0)
    vn = _normalise_bands(prof)
    lam, m, P, xb, coherence = _fit_vanishing_point(vn, d, ww, hw, p)
    rows_xb, s = _comb_rows(P, xb, ww, p)
    if not rows_xb:
        return None
    pr, dr = _bands(wv, max(6, int(p.n_strips)), 0.95 - p.ignore_top_frac)
    found, contrast = _refine_vp_rows(pr, dr, hw, ww, rows_xb, lam, m, s, p, tol_px)
    if not found:
        return None
    return found, contrast, lam, m, s, coherence


def _detect_learned(img, ww, hw):
    """The learned pipeline (:mod:`crop_rows_net`) in working-image coordinates, in the format of
    :func:`_detect_vp`; None when the network's heatmap holds no rows."""
    from agricare.core.perception import crop_rows_net

    f, (h, w) = crop_rows_net.net_rows(img)
    if f is None:
        return None
    kx, ky = ww / w, hw / h
    found = []
    for poly, support, span, xbot in f["rows"]:
        q = poly.copy()
        q[:, 0] = (q[:, 0] + 0.5) * kx - 0.5
        q[:, 1] = (q[:, 1] + 0.5) * ky - 0.5
        found.append((q, support, span, (xbot + 0.5) * kx - 0.5))
    lam, m = f["lam"], f["m"]
    if lam > 1e-6:
        vx, vy = (m / lam + 0.5) * kx - 0.5, ((h - 0.5) - 1.0 / lam + 0.5) * ky - 0.5
        lam_s = 1.0 / max((hw - 0.5) - vy, 1e-6)
        m_s = vx * lam_s
    else:
        lam_s, m_s = 0.0, m * kx / ky
    return found, f["contrast"], lam_s, m_s, f["spacing"] * kx, f["coherence"]


# ----------------------------------------------------------------------------------------------
# Public entry point


def detect_rows(image_bgr, params: CropRowParams | None = None, camera: CameraGeometry | None = None,
                return_mask: bool = False) -> CropRowResult:
    """Detect all visible crop rows and the guidance for the row the camera straddles.

    Parameters
    ----------
    image_bgr : np.ndarray, shape (H, W, 3), uint8 BGR
        (float images in [0, 1] or [0, 255], uint16 and BGRA are converted.)
    params : CropRowParams, optional
    camera : CameraGeometry, optional
        Intrinsics + mounting; when given ``offset``/``heading`` are metric (``base_link``).
    return_mask : bool
        Also return the working-resolution vegetation mask.

    Returns
    -------
    CropRowResult

    Raises
    ------
    ValueError
        For images that are not colour images or are empty, too small or too large. Images that
        are valid but hold no rows (grey, bare soil, all green) give ``confidence == 0``.
    """
    p = params or CropRowParams()
    img = check_image(image_bgr, p)
    H, W = img.shape[:2]
    ww = min(int(p.work_width_px), W)
    hw = max(8, int(round(H * ww / W)))
    small = cv2.resize(img, (ww, hw), interpolation=cv2.INTER_AREA) if (ww, hw) != (W, H) else img
    sx, sy = W / ww, H / hw
    wv = None
    if p.method in ("vp", "learned") and p.vegetation_index == "exg":  # same index and threshold: share it
        wv = vegetation_weight(small, p.min_index)
        mask = (wv >= 0.5).astype(np.uint8)
    else:
        mask, _thr = segment_vegetation(small, p.vegetation_index, p.min_index)
    res = CropRowResult(mask=mask if return_mask else None, metric=camera is not None)
    vf = float(mask.mean())
    res.vegetation_frac = vf
    if vf < p.min_vegetation_frac:
        res.reason = f"too little vegetation ({vf:.3f})"
        return res
    if vf > p.max_vegetation_frac:
        res.reason = f"too much vegetation ({vf:.3f}), no row structure"
        return res
    profiles, yc = _strip_profiles(mask, int(p.n_strips), p.ignore_top_frac)
    if len(yc) < 6:
        res.reason = "too few image strips"
        return res
    vp = None
    if p.method == "learned":
        vp = _detect_learned(img, ww, hw)
    if vp is None and p.method in ("vp", "learned"):
        vp = _detect_vp(small, p, tol_px=max(0.5, 1.5 / sx), wv=wv)
    if vp is not None:
        found, contrast, lam, mslope, s, coherence = vp
    elif len(yc) >= 20:  # the global fit needs fewer, taller strips: pool pairs (speed)
        n2 = len(yc) // 2 * 2
        fit = _fit_row_model(profiles[:n2].reshape(-1, 2, ww).mean(axis=1), yc[:n2].reshape(-1, 2).mean(axis=1),
                             hw, ww, p)
    else:
        fit = _fit_row_model(profiles, yc, hw, ww, p)
    if vp is None:
        if fit is None:
            res.reason = "no periodic row structure"
            return res
        lam, mslope, s, x0, coherence = fit
        found, contrast = _extract_rows(profiles, yc, hw, ww, lam, mslope, s, x0, p, tol_px=max(0.5, 1.5 / sx))
    if not found:
        res.reason = "no row had enough support"
        res.spacing_px = s * sx
        return res
    keep = found
    rows = [f[0] for f in keep]
    supports = [f[1] for f in keep]
    spans = [f[2] for f in keep]
    x_bottom = [(f[3] + 0.5) * sx - 0.5 for f in keep]

    out_rows = []
    for r in rows:
        q = r.copy()
        q[:, 0] = (q[:, 0] + 0.5) * sx - 0.5
        q[:, 1] = (q[:, 1] + 0.5) * sy - 0.5
        out_rows.append(q)
    res.rows = out_rows
    res.rows_visible = len(out_rows)
    res.spacing_px = s * sx
    if lam > 1e-6:
        vy = (hw - 0.5) - 1.0 / lam
        vx = mslope / lam
        res.vanishing_point = ((vx + 0.5) * sx - 0.5, (vy + 0.5) * sy - 0.5)

    # followed row: nearest the image centre line at the bottom
    cxb = (W - 1) / 2.0
    if camera is not None:
        cam = camera.scaled(W, H) if (camera.width_px, camera.height_px) != (W, H) else camera
        cxb = float(cam.cx_px)
    ci = int(np.argmin([abs(xb_ - cxb) for xb_ in x_bottom]))
    res.center_index = ci
    row = out_rows[ci]
    res.contrast = float(contrast)
    conf = float(np.clip((contrast - 0.08) / 0.3, 0.0, 1.0)) * float(np.clip((coherence - 0.3) / 0.3, 0.0, 1.0))
    conf *= float(np.clip((supports[ci] - 0.2) / 0.5, 0.0, 1.0))
    conf *= float(np.clip(spans[ci] / 0.3, 0.0, 1.0))
    res.confidence = float(np.clip(conf, 0.0, 1.0))
    if res.confidence == 0.0:
        res.reason = (f"weak row structure (contrast {contrast:.2f}, coherence {coherence:.2f}, "
                      f"support {supports[ci]:.2f})")

    if camera is not None:
        _metric_guidance(res, cam, p.guidance_mode)
    else:
        # bottom segment direction of the followed row
        seg = row[: min(len(row), 3)]
        dx, dy = seg[-1, 0] - seg[0, 0], seg[0, 1] - seg[-1, 1]
        if res.vanishing_point is not None:
            f_nom = (W / 2.0) / math.tan(p.nominal_hfov_rad / 2.0)
            res.heading = float(math.atan2(cxb - res.vanishing_point[0], f_nom))
        else:
            res.heading = float(math.atan2(-dx, max(dy, 1e-6)))
        res.offset = float((cxb - x_bottom[ci]) / max(res.spacing_px, 1e-6))
        res.row_end = float(spans[ci])
        if p.guidance_mode == "lane":  # lane centre in row spacings: offset wrapped to the lane middle
            res.offset = float((res.offset % 1.0) - 0.5)
    if not (math.isfinite(res.offset) and math.isfinite(res.heading)):
        res.offset, res.heading, res.confidence = 0.0, 0.0, 0.0
        res.reason = "non-finite guidance"
    return res


def _row_on_ground(row, cam: CameraGeometry):
    """Fit the ground curve ``y = c0 + c1 x (+ c2 x^2)`` (base_link) of an image polyline.

    Returns (coefficients highest power first, far end x_m) or None.
    """
    ys = np.linspace(row[0, 1], row[-1, 1], 16)
    xs = np.interp(ys, row[::-1, 1], row[::-1, 0])
    g = cam.pixels_to_ground(np.column_stack([xs, ys]))
    ok = np.all(np.isfinite(g), axis=1) & (g[:, 0] > 0)
    if ok.sum() < 2:
        return None
    g = g[ok]
    deg = 2 if (len(row) > 2 and len(g) >= 6) else 1
    # a pixel error grows like x^2 on the ground: weight residuals by 1 / x^2 (near points count most)
    return np.polyfit(g[:, 0], g[:, 1], deg, w=1.0 / np.maximum(g[:, 0], 0.1) ** 2), float(np.max(g[:, 0]))


def _metric_guidance(res: CropRowResult, cam: CameraGeometry, mode: str = "row"):
    """Metric offset/heading/spacing/row_end from the rows' ground projections (``mode``: row or lane)."""
    fits = [_row_on_ground(r, cam) for r in res.rows]
    if mode == "lane":
        _metric_lane_guidance(res, fits)
        return
    f = fits[res.center_index]
    if f is None:
        res.confidence = 0.0
        res.reason = "followed row does not project onto the ground (check camera pitch/height)"
        return
    c, x_far = f
    res.offset = float(c[-1])                 # lateral position of the row at x = 0 (base_link origin)
    res.heading = float(math.atan(c[-2]))     # row direction at x = 0
    res.row_end = x_far
    ci = res.center_index
    offs = sorted(float(fi[0][-1]) for fi in fits[max(0, ci - 1): ci + 2] if fi is not None)
    if len(offs) >= 2:
        res.spacing_m = float(np.median(np.diff(offs)) * math.cos(res.heading))


def _metric_lane_guidance(res: CropRowResult, fits) -> None:
    """Lane mode: guidance to the middle between the nearest row left and right of ``base_link``."""
    ok = [(float(f[0][-1]), float(math.atan(f[0][-2])), f[1]) for f in fits if f is not None]
    if not ok:
        res.confidence = 0.0
        res.reason = "no row projects onto the ground (check camera pitch/height)"
        return
    ok.sort()
    offs = np.array([o[0] for o in ok])
    if len(offs) >= 2:
        res.spacing_m = float(np.median(np.diff(offs)) * math.cos(float(np.median([o[1] for o in ok]))))
    left = [o for o in ok if o[0] >= 0.0]
    right = [o for o in ok if o[0] < 0.0]
    if left and right:
        lo, ro = left[0], right[-1]
        res.offset = 0.5 * (lo[0] + ro[0])
        res.heading = 0.5 * (lo[1] + ro[1])
        res.row_end = max(lo[2], ro[2])
        if res.spacing_m <= 0:
            res.spacing_m = (lo[0] - ro[0]) * math.cos(res.heading)
        return
    if res.spacing_m <= 0:  # a single row and no spacing: the lane is unknown
        res.confidence = 0.0
        res.reason = "lane mode: only one row seen"
        return
    one = left[0] if left else right[-1]
    half = 0.5 * res.spacing_m / max(math.cos(one[1]), 0.2)
    res.offset = one[0] - half if left else one[0] + half
    res.heading = one[1]
    res.row_end = one[2]
    res.confidence *= 0.5


@dataclass(frozen=True)
class GuidanceFilterParams:
    """Temporal filtering of :class:`CropRowResult` guidance and end-of-row decision.

    Attributes
    ----------
    time_constant_s : first-order smoothing time constant of offset/heading (0 = none), s.
    min_confidence : detections below this are ignored.
    gate_offset_m, gate_heading_rad : a detection further than this from the filtered value is an
        outlier unless ``outlier_accept_count`` outliers in a row agree with each other.
    outlier_accept_count : consecutive outliers after which the filter re-initialises.
    end_of_row_distance_m : metric mode: end of row when the followed row's visible end is closer than
        this ahead of ``base_link``.
    lost_timeout_s : end of row when no confident detection arrived for this long after following.
    confirm_count : consecutive frames needed to declare the end of row from ``row_end``; as many
        consecutive confident frames that see the row further than ``end_of_row_distance_m`` clear it again
        (the caller latches its own end-of-row state).
    """

    time_constant_s: float = 0.05
    min_confidence: float = 0.25
    gate_offset_m: float = 0.15
    gate_heading_rad: float = 0.25
    outlier_accept_count: int = 3
    end_of_row_distance_m: float = 1.0
    lost_timeout_s: float = 0.6
    confirm_count: int = 3

    def __post_init__(self):
        for name in ("time_constant_s", "gate_offset_m", "gate_heading_rad", "end_of_row_distance_m",
                     "lost_timeout_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if int(self.outlier_accept_count) < 1 or int(self.confirm_count) < 1:
            raise ValueError("outlier_accept_count and confirm_count must be >= 1")


@dataclass
class FilteredGuidance:
    """Filtered guidance for the row follower (same sign conventions as :class:`CropRowResult`)."""

    t_s: float
    offset: float
    heading: float
    confidence: float
    end_of_row: bool
    rows_visible: int
    metric: bool


class GuidanceFilter:
    """Smooths detections over time, rejects outliers and decides the end of the row.

    ``update(t_s, result)`` takes a :class:`CropRowResult` (or None for a frame that failed) and
    returns a :class:`FilteredGuidance`. Never reads a clock.
    """

    def __init__(self, params: GuidanceFilterParams | None = None):
        self.p = params or GuidanceFilterParams()
        self.reset()

    def reset(self) -> None:
        self._est = None
        self._t_last = None
        self._t_good = None
        self._outliers: list = []
        self._near_end = 0
        self._far = 0
        self._was_following = False
        self._conf = 0.0
        self.end_of_row = False

    def update(self, t_s: float, result: CropRowResult | None) -> FilteredGuidance:
        p = self.p
        metric = bool(result.metric) if result is not None else False
        good = result is not None and result.confidence >= p.min_confidence \
            and math.isfinite(result.offset) and math.isfinite(result.heading)
        conf_in = float(result.confidence) if result is not None else 0.0
        if good:
            meas = np.array([result.offset, result.heading])
            if self._est is None:
                self._est = meas.copy()
                self._outliers = []
            else:
                gate_off = p.gate_offset_m if metric else p.gate_offset_m / 0.5
                if abs(meas[0] - self._est[0]) > gate_off or abs(meas[1] - self._est[1]) > p.gate_heading_rad:
                    self._outliers.append(meas)
                    if len(self._outliers) >= p.outlier_accept_count:
                        last = np.asarray(self._outliers[-p.outlier_accept_count:])
                        if np.ptp(last[:, 0]) < gate_off and np.ptp(last[:, 1]) < p.gate_heading_rad:
                            self._est = last[-1].copy()
                        self._outliers = []
                    good = False
                else:
                    self._outliers = []
                    dt = 0.0 if self._t_last is None else max(0.0, t_s - self._t_last)
                    a = 1.0 if p.time_constant_s <= 0 else 1.0 - math.exp(-dt / p.time_constant_s)
                    a = max(a, 0.3)
                    self._est += a * (meas - self._est)
        if good:
            self._t_good = t_s
            self._was_following = True
            self._conf += 0.5 * (conf_in - self._conf)
            near = metric and result.row_end < p.end_of_row_distance_m
            self._near_end = self._near_end + 1 if near else 0
            self._far = 0 if near else self._far + 1
            if self._near_end >= p.confirm_count:
                self.end_of_row = True
            elif self.end_of_row and self._far >= p.confirm_count:
                # rows seen far ahead again (e.g. a gap or the field entry made them vanish): not the end
                self.end_of_row = False
        else:
            self._conf *= 0.5
            if self._was_following and self._t_good is not None and t_s - self._t_good > p.lost_timeout_s:
                self.end_of_row = True
        self._t_last = t_s
        off, hdg = (0.0, 0.0) if self._est is None else (float(self._est[0]), float(self._est[1]))
        stale = self._t_good is None or t_s - self._t_good > p.lost_timeout_s
        conf = 0.0 if stale else float(np.clip(self._conf, 0.0, 1.0))
        return FilteredGuidance(t_s, off, hdg, conf, bool(self.end_of_row),
                                int(result.rows_visible) if result is not None else 0, metric)


def draw_rows(image_bgr: np.ndarray, result: CropRowResult) -> np.ndarray:
    """Overlay of the detected rows (followed row in red, others in yellow) and the guidance text."""
    out = check_image(image_bgr).copy()
    th = max(1, int(round(out.shape[1] / 256)))
    for i, r in enumerate(result.rows):
        col = (0, 0, 255) if i == result.center_index else (0, 255, 255)
        cv2.polylines(out, [np.round(r).astype(np.int32).reshape(-1, 1, 2)], False, col, th, cv2.LINE_AA)
    unit = "m" if result.metric else "sp"
    txt = f"off {result.offset:+.3f}{unit} hdg {math.degrees(result.heading):+.1f}deg conf {result.confidence:.2f}"
    cv2.putText(out, txt, (5, 15 * th), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * th, (255, 255, 255), th, cv2.LINE_AA)
    return out


def render_synthetic_rows(camera: CameraGeometry, row_spacing_m: float = 0.5, row_offset_m: float = 0.0,
                          row_heading_rad: float = 0.0, curvature_1pm: float = 0.0,
                          plant_width_m: float = 0.12, gap_frac: float = 0.0, noise_std: float = 8.0,
                          max_range_m: float = 30.0, row_end_m: float = math.inf, seed: int = 0) -> np.ndarray:
    """Render a synthetic forward camera image of parallel crop rows on flat soil (for tests and demos).

    Rows are lines (or parabolas with ``curvature_1pm``) in a row frame whose origin is at lateral
    position ``row_offset_m`` (``base_link`` y) and whose direction is ``row_heading_rad``; row ``k`` lies
    at ``k * row_spacing_m`` from it. ``gap_frac`` of the row length is left bare in 0.3 m gaps; rows
    end ``row_end_m`` ahead (measured along the rows).

    Returns
    -------
    np.ndarray, shape (camera.height_px, camera.width_px, 3), uint8 BGR
    """
    rng = np.random.default_rng(seed)
    H, W = int(camera.height_px), int(camera.width_px)
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    g = camera.pixels_to_ground(np.column_stack([u.ravel(), v.ravel()])).reshape(H, W, 2)
    ground = np.isfinite(g[..., 0]) & (g[..., 0] < max_range_m)
    gx, gy = np.nan_to_num(g[..., 0]), np.nan_to_num(g[..., 1])
    ch, sh = math.cos(row_heading_rad), math.sin(row_heading_rad)
    along = gx * ch + gy * sh
    lateral = -gx * sh + gy * ch - row_offset_m * ch - 0.5 * curvature_1pm * along ** 2
    k = np.round(lateral / row_spacing_m)
    dist = np.abs(lateral - k * row_spacing_m)
    plant = ground & (dist < plant_width_m / 2.0) & (along < row_end_m)
    if gap_frac > 0:
        cell = np.floor(along / 0.3).astype(np.int64) * 7919 + k.astype(np.int64) * 104729
        plant &= (np.abs(np.sin(cell * 12.9898) * 43758.5453) % 1.0) >= gap_frac
    img = np.empty((H, W, 3), np.float32)
    img[...] = (60, 85, 115)             # soil (BGR)
    img[plant] = (40, 150, 70)           # plants
    img[~ground] = (200, 170, 150)       # sky / far field
    img += rng.normal(0.0, noise_std, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def expected_row_pixels(camera: CameraGeometry, lateral_m: float, row_offset_m: float = 0.0,
                        row_heading_rad: float = 0.0, curvature_1pm: float = 0.0,
                        along_m=None) -> np.ndarray:
    """Pixels (N, 2) of the row at ``lateral_m`` in the row frame of :func:`render_synthetic_rows`.

    Sampled at distances ``along_m`` (default 0.2 .. 20 m) along the row; points behind the camera
    or outside the image are dropped. Ordered bottom-up.
    """
    s = np.linspace(0.2, 20.0, 200) if along_m is None else np.asarray(along_m, float)
    ch, sh = math.cos(row_heading_rad), math.sin(row_heading_rad)
    lat = lateral_m + row_offset_m * ch + 0.5 * curvature_1pm * s ** 2
    xy = np.column_stack([s * ch - lat * sh, s * sh + lat * ch])
    uv = camera.ground_to_pixels(xy)
    ok = np.all(np.isfinite(uv), axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] <= camera.width_px - 1) \
        & (uv[:, 1] >= 0) & (uv[:, 1] <= camera.height_px - 1)
    uv = uv[ok]
    return uv[np.argsort(-uv[:, 1])]


if __name__ == "__main__":  # pragma: no cover - demo
    import sys
    import time

    for path in sys.argv[1:]:
        im = cv2.imread(path, cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        r = detect_rows(im)
        ms = (time.perf_counter() - t0) * 1e3
        print(f"{path}: {r.rows_visible} rows, offset {r.offset:+.3f}, heading {r.heading:+.3f} rad, "
              f"confidence {r.confidence:.2f}, {ms:.1f} ms {r.reason}")
