"""Forward camera of the row robot: a perspective view of the ground rendered with OpenCV.

The ground (soil texture, crop plants along the rows with gaps, weeds, plant shadows, soft light patches)
is painted once into a top-down texture per crop block. A frame is one ``cv2.warpPerspective`` of the
visible part of that texture through the ground-plane homography ``H = K [r1 r2 t]`` of the camera pose,
plus sky above the horizon and sensor noise from a precomputed bank, so rendering costs about one
image-sized resampling.

Public API
----------
``CameraParams``: rate, image size, intrinsics (``fx_px``... or ``hfov_rad``), mounting in base_link
(``mount_x_m``, ``mount_height_m``, ``pitch_rad`` down-positive), noise.
``camera_matrix(params) -> K (3, 3)``.
``ground_to_image_homography(K, params, pose_in_map) -> H (3, 3)``: map ground point ``(x, y, 1)`` to
image ``(u, v, w)``.
``project_ground_points(K, params, pose_in_map, pts_xy) -> (N, 2)`` pixel coordinates (NaN behind camera).
``GroundTexture(bounds_xy, resolution_m, rng)``: painted top-down image; ``.paint_rows(rows, spec, rng)``.
``CameraRenderer(params, textures, rng, terrain=None)``: ``.render(pose_in_map) -> (H, W, 3) uint8 bgr``.
Optical frame convention (REP-103): z forward, x right, y down.

Terrain: with a ``terrain`` (:class:`agricare.core.sim.terrain.TerrainSurface`, the surface the simulator
moves the vehicles on) that is not flat, the vehicle stands on the ground at ``height(x, y)`` tilted by
``rpy(x, y, yaw)`` and the camera sees the surface as it is. The rays of a grid of pixels (every
``GRID_STEP_PX``) start on the plane tangent under the vehicle and are moved onto the terrain itself by
Newton steps (undulation); the texture coordinates of the grid nodes are interpolated to every pixel and one
``cv2.remap`` samples the texture, so a frame still costs about one image-sized resampling. Rays that point
above the horizontal see sky; ground beyond ``far_clip_m`` is plain soil.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SOIL_BGR = (58, 82, 108)
SKY_BGR = (235, 206, 170)


@dataclass(frozen=True)
class CameraParams:
    """Pinhole camera looking forward and down.

    ``fx_px``/``fy_px``/``cx_px``/``cy_px`` <= 0 take defaults from ``hfov_rad`` and the image centre.
    """

    enabled: bool = True
    rate_hz: float = 15.0
    width_px: int = 320
    height_px: int = 240
    hfov_rad: float = math.radians(80.0)
    fx_px: float = 0.0
    fy_px: float = 0.0
    cx_px: float = 0.0
    cy_px: float = 0.0
    mount_x_m: float = 0.4
    mount_y_m: float = 0.0
    mount_height_m: float = 1.0
    pitch_rad: float = math.radians(35.0)
    noise_std: float = 3.0
    far_clip_m: float = 25.0
    #: > 0: the simulator renders (and sends) a frame only while a boarding sign stands within this distance in
    #: front of the camera (a care shuttle's camera is only used to dock on the sign; frames of the empty street
    #: would cost the simulation without feeding anything). 0: every frame.
    sign_range_m: float = 0.0

    def __post_init__(self):
        for name in ("rate_hz", "hfov_rad", "mount_height_m", "far_clip_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        for name in ("width_px", "height_px"):
            v = getattr(self, name)
            if not (isinstance(v, int) and 16 <= v <= 4096):
                raise ValueError(f"{name} must be an integer in [16, 4096], got {v!r}")
        if not (-math.pi / 2 < self.pitch_rad < math.pi / 2):
            raise ValueError(f"pitch_rad must be in (-pi/2, pi/2), got {self.pitch_rad!r}")
        if self.hfov_rad >= math.pi:
            raise ValueError("hfov_rad must be < pi")
        if not (math.isfinite(self.sign_range_m) and self.sign_range_m >= 0):
            raise ValueError(f"sign_range_m must be >= 0, got {self.sign_range_m!r}")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std!r}")


def camera_matrix(params: CameraParams) -> np.ndarray:
    """Intrinsic matrix K (3, 3)."""
    fx = params.fx_px if params.fx_px > 0 else 0.5 * params.width_px / math.tan(0.5 * params.hfov_rad)
    fy = params.fy_px if params.fy_px > 0 else fx
    cx = params.cx_px if params.cx_px > 0 else 0.5 * (params.width_px - 1)
    cy = params.cy_px if params.cy_px > 0 else 0.5 * (params.height_px - 1)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def camera_pose(params: CameraParams, pose_in_map):
    """Rotation R_cam_map (3, 3) and camera centre C (3,) in map for a base pose ``[x, y, yaw]``."""
    x, y, yaw = (float(v) for v in pose_in_map)
    p = params.pitch_rad
    # optical axes expressed in base_link
    x_c = np.array([0.0, -1.0, 0.0])
    y_c = np.array([-math.sin(p), 0.0, -math.cos(p)])
    z_c = np.array([math.cos(p), 0.0, -math.sin(p)])
    R_base_cam = np.column_stack([x_c, y_c, z_c])
    c, s = math.cos(yaw), math.sin(yaw)
    R_map_base = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    R_map_cam = R_map_base @ R_base_cam
    C = np.array([x + c * params.mount_x_m - s * params.mount_y_m,
                  y + s * params.mount_x_m + c * params.mount_y_m, params.mount_height_m])
    return R_map_cam.T, C


def _rot_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R_map_base = Rz(yaw) Ry(pitch) Rx(roll) (REP-103)."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def camera_pose_3d(params: CameraParams, pose_in_map, base_z_m: float = 0.0, roll_rad: float = 0.0,
                   pitch_rad: float = 0.0):
    """Rotation R_cam_map (3, 3) and camera centre C (3,) for a base pose ``[x, y, yaw]`` standing at height
    ``base_z_m`` with the vehicle's ``roll_rad``/``pitch_rad`` (REP-103; 0, 0, 0 gives :func:`camera_pose`)."""
    x, y, yaw = (float(v) for v in pose_in_map)
    p = params.pitch_rad
    R_base_cam = np.column_stack([[0.0, -1.0, 0.0], [-math.sin(p), 0.0, -math.cos(p)],
                                  [math.cos(p), 0.0, -math.sin(p)]])
    R_map_base = _rot_rpy(roll_rad, pitch_rad, yaw)
    C = np.array([x, y, base_z_m]) + R_map_base @ np.array([params.mount_x_m, params.mount_y_m,
                                                             params.mount_height_m])
    return (R_map_base @ R_base_cam).T, C


def terrain_ray_ground(terrain, C, d, t0, iterations: int = 3):
    """Ground points where rays ``C + t d`` (d: (N, 3)) meet the terrain, Newton from ``t0`` (N,).

    Returns ``(t, ok)``: ray parameters (N,) and whether the iteration converged in front of the camera
    (height residual below 1 mm)."""
    t = np.asarray(t0, dtype=float).copy()
    for _ in range(iterations):
        z, gx, gy = terrain.height_gradient(C[0] + t * d[:, 0], C[1] + t * d[:, 1])
        f = C[2] + t * d[:, 2] - z
        fp = d[:, 2] - gx * d[:, 0] - gy * d[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = t - np.where(fp < -1e-9, f / fp, np.nan)
    resid = np.abs(C[2] + t * d[:, 2] - terrain.height(C[0] + t * d[:, 0], C[1] + t * d[:, 1]))
    ok = np.isfinite(t) & (t > 0) & (resid < 1e-3)
    return t, ok


def project_terrain_points(K, params: CameraParams, pose_in_map, terrain, pts_xy) -> np.ndarray:
    """Pixel coordinates (N, 2) of the terrain surface points above ``pts_xy`` (N, 2), seen from a vehicle
    standing on ``terrain`` at ``pose_in_map``; NaN behind the camera."""
    x, y, yaw = (float(v) for v in pose_in_map)
    roll, pitch = terrain.rpy(x, y, yaw)
    R, C = camera_pose_3d(params, pose_in_map, float(terrain.height(x, y)), roll, pitch)
    p = np.asarray(pts_xy, float).reshape(-1, 2)
    P = np.column_stack([p, terrain.height(p[:, 0], p[:, 1])])
    q = (P - C) @ R.T @ np.asarray(K).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = q[:, :2] / q[:, 2:3]
    uv[q[:, 2] <= 1e-9] = np.nan
    return uv


def ground_to_image_homography(K, params: CameraParams, pose_in_map) -> np.ndarray:
    """Homography (3, 3) from ground points ``(x_m, y_m, 1)`` in map (z = 0) to image pixels."""
    R, C = camera_pose(params, pose_in_map)
    t = -R @ C
    return K @ np.column_stack([R[:, 0], R[:, 1], t])


def project_ground_points(K, params: CameraParams, pose_in_map, pts_xy) -> np.ndarray:
    """Pixel coordinates (N, 2) of ground points (N, 2); NaN for points behind the camera."""
    H = ground_to_image_homography(K, params, pose_in_map)
    p = np.column_stack([np.asarray(pts_xy, float).reshape(-1, 2), np.ones(len(np.asarray(pts_xy).reshape(-1, 2)))])
    q = p @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = q[:, :2] / q[:, 2:3]
    uv[q[:, 2] <= 1e-9] = np.nan
    return uv


class GroundTexture:
    """Top-down BGR texture of an area of ground (row 0 = north edge, column 0 = west edge).

    Parameters
    ----------
    bounds_xy : array_like (2, 2)
        ``[[x_min, y_min], [x_max, y_max]]`` in map, metres.
    resolution_m : float
        Ground size of one texture pixel.
    rng : numpy.random.Generator
    """

    def __init__(self, bounds_xy, resolution_m: float, rng: np.random.Generator):
        b = np.asarray(bounds_xy, dtype=float)
        self.x0, self.y0 = float(b[0, 0]), float(b[0, 1])
        self.x1, self.y1 = float(b[1, 0]), float(b[1, 1])
        self.res = float(resolution_m)
        self.w = int(math.ceil((self.x1 - self.x0) / self.res))
        self.h = int(math.ceil((self.y1 - self.y0) / self.res))
        self.image = self._soil(rng)

    def _soil(self, rng) -> np.ndarray:
        h, w = self.h, self.w
        # grain (a tiled 256 px noise patch) + clods at 1/8 resolution + soft light patches (cloud shadows)
        tile = rng.normal(0.0, 9.0, (256, 256)).astype(np.float32)
        grain = np.tile(tile, (h // 256 + 1, w // 256 + 1))[:h, :w]
        small = rng.normal(0.0, 1.0, (max(h // 8, 2), max(w // 8, 2))).astype(np.float32)
        clods = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
        big = rng.normal(0.0, 1.0, (max(h // 150, 2), max(w // 150, 2))).astype(np.float32)
        light = cv2.resize(big, (w, h), interpolation=cv2.INTER_CUBIC)
        light = cv2.addWeighted(light, 0.08, light, 0.0, 1.0)
        texture = cv2.scaleAdd(clods, 14.0, grain)
        # each channel to uint8 before the merge (the same per-pixel conversion; merging float32 planes cost 4x)
        chans = [cv2.convertScaleAbs(cv2.multiply(cv2.add(texture, float(base)), light)) for base in SOIL_BGR]
        return cv2.merge(chans)

    def to_px(self, pts_xy) -> np.ndarray:
        """Map points (N, 2) -> float texture pixel coordinates (N, 2) ``(col, row)``."""
        p = np.asarray(pts_xy, dtype=float).reshape(-1, 2)
        return np.column_stack([(p[:, 0] - self.x0) / self.res - 0.5, (self.y1 - p[:, 1]) / self.res - 0.5])

    def px_to_map_matrix(self) -> np.ndarray:
        """Affine (3, 3) taking texture pixel ``(col, row, 1)`` to map ``(x, y, 1)``."""
        r = self.res
        return np.array([[r, 0.0, self.x0 + 0.5 * r], [0.0, -r, self.y1 - 0.5 * r], [0.0, 0.0, 1.0]])

    def paint_plants(self, centers_xy, diameters_m, rng, sun_azimuth_rad: float, shadow_m: float,
                     weed: bool = False) -> None:
        """Draw plants (clusters of leaves) with their shadows."""
        img = self.image
        pts = self.to_px(centers_xy)
        shift = 2
        sc = 1 << shift
        sdx = -math.cos(sun_azimuth_rad) * shadow_m / self.res
        sdy = math.sin(sun_azimuth_rad) * shadow_m / self.res
        shade = np.zeros((self.h, self.w), np.uint8)
        for (u, v), d in zip(pts, diameters_m):
            r = 0.5 * d / self.res
            if u < -2 * r or v < -2 * r or u > self.w + 2 * r or v > self.h + 2 * r:
                continue
            cv2.ellipse(shade, (int((u + sdx) * sc), int((v + sdy) * sc)), (int(r * 0.9 * sc), int(r * 0.7 * sc)),
                        float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA, shift)
        if len(pts):
            k = max(int(0.02 / self.res) | 1, 3)
            shade = cv2.GaussianBlur(shade, (k, k), 0)
            factor = cv2.convertScaleAbs(shade, alpha=-0.45, beta=255.0)  # 255 -> 140 under a shadow
            cv2.multiply(img, cv2.merge([factor, factor, factor]), dst=img, scale=1.0 / 255.0)
        for (u, v), d in zip(pts, diameters_m):
            r = 0.5 * d / self.res
            if u < -2 * r or v < -2 * r or u > self.w + 2 * r or v > self.h + 2 * r:
                continue
            n_leaves = 4 if weed else 6
            base_ang = rng.uniform(0, 360)
            for k in range(n_leaves):
                ang = base_ang + k * 360.0 / n_leaves + rng.uniform(-15, 15)
                a = math.radians(ang)
                lr = r * rng.uniform(0.45, 0.6)
                cu, cv_ = u + 0.5 * r * math.cos(a), v + 0.5 * r * math.sin(a)
                g = int(rng.uniform(120, 175)) if not weed else int(rng.uniform(95, 140))
                col = (int(rng.uniform(25, 55)), g, int(rng.uniform(40, 80)) if not weed else int(rng.uniform(60, 95)))
                cv2.ellipse(img, (int(cu * sc), int(cv_ * sc)), (max(int(lr * sc), 1), max(int(lr * 0.55 * sc), 1)),
                            ang, 0, 360, col, -1, cv2.LINE_AA, shift)
            cv2.circle(img, (int(u * sc), int(v * sc)), max(int(0.18 * r * sc), 1), (40, 150, 95), -1,
                       cv2.LINE_AA, shift)


class CameraRenderer:
    """Renders frames of one camera against a list of ground textures.

    Parameters
    ----------
    params : CameraParams
    textures : list of GroundTexture, or a callable returning it (called at the first render)
        The texture nearest the image centre's ground point is used; ground outside every texture is plain soil.
    rng : numpy.random.Generator
        Picks the noise frames (deterministic per seed).
    terrain : TerrainSurface or None
        The ground surface (see module docstring); None or flat: the plane ``z = 0``.
    """

    N_NOISE = 6
    GRID_STEP_PX = 8    # pixel grid of the texture coordinates (interpolated in between)
    COARSE = 2          # every COARSE-th grid node: rays intersected with the terrain (interpolated in between)

    def __init__(self, params: CameraParams, textures, rng: np.random.Generator, terrain=None):
        self.params = params
        self.terrain = None if terrain is None or getattr(terrain, "flat", False) else terrain
        self.K = camera_matrix(params)
        self._textures_src = textures
        self.textures = None
        self.rng = rng
        h, w = params.height_px, params.width_px
        self._noise_pos = []
        self._noise_neg = []
        if params.noise_std > 0:
            for _ in range(self.N_NOISE):
                n = rng.normal(0.0, params.noise_std, (h, w, 3))
                self._noise_pos.append(np.clip(n, 0, 255).astype(np.uint8))
                self._noise_neg.append(np.clip(-n, 0, 255).astype(np.uint8))
        fy, cy = self.K[1, 1], self.K[1, 2]
        # image rows: sky above the horizon; beyond far_clip the ground fades into uniform soil
        self.horizon_v = cy - fy * math.tan(params.pitch_rad)
        ang_far = math.atan2(params.mount_height_m, params.far_clip_m)  # depression angle of the far clip
        self.far_v = cy + fy * math.tan(ang_far - params.pitch_rad)
        self._out = np.empty((h, w, 3), np.uint8)
        if self.terrain is not None:
            S = self.GRID_STEP_PX
            self._resize = w % S == 0 and h % S == 0
            if self._resize:   # nodes at the centres of S x S blocks: cv2.resize interpolates them exactly
                gu = np.arange(w // S) * S + 0.5 * (S - 1)
                gv = np.arange(h // S) * S + 0.5 * (S - 1)
            else:
                gu = np.arange(0, w - 1 + S, S, dtype=float).clip(max=w - 1)
                gv = np.arange(0, h - 1 + S, S, dtype=float).clip(max=h - 1)
            self._grid_shape = (len(gv), len(gu))
            GU, GV = np.meshgrid(gu, gv)
            self._grid_uv1 = np.column_stack([GU.ravel(), GV.ravel(), np.ones(GU.size)])
            # fractional grid-node index of every pixel: cv2.remap of the node values interpolates them
            node_u = np.interp(np.arange(w), gu, np.arange(len(gu))).astype(np.float32)
            node_v = np.interp(np.arange(h), gv, np.arange(len(gv))).astype(np.float32)
            self._node_u = np.tile(node_u, (h, 1))
            self._node_v = np.tile(node_v[:, None], (1, w))
            # every COARSE-th grid node (and the last): where the rays are intersected with the terrain
            cu = np.unique(np.r_[np.arange(0, len(gu), self.COARSE), len(gu) - 1])
            cv_ = np.unique(np.r_[np.arange(0, len(gv), self.COARSE), len(gv) - 1])
            self._coarse_shape = (len(cv_), len(cu))
            self._coarse_index = (cv_[:, None] * len(gu) + cu[None, :]).ravel()
            self._coarse_u = np.tile(np.interp(np.arange(len(gu)), cu, np.arange(len(cu))).astype(np.float32),
                                     (len(gv), 1))
            self._coarse_v = np.tile(np.interp(np.arange(len(gv)), cv_, np.arange(len(cv_)))
                                     .astype(np.float32)[:, None], (1, len(gu)))

    def _pick_texture(self, H_img_map):
        if self.textures is None:
            src = self._textures_src
            self.textures = list(src() if callable(src) else src)
        if not self.textures:
            return None
        Hinv = np.linalg.inv(H_img_map)
        u, v = 0.5 * self.params.width_px, 0.5 * (max(self.far_v, 0.0) + self.params.height_px)
        g = Hinv @ np.array([u, v, 1.0])
        gx, gy = g[0] / g[2], g[1] / g[2]
        best, best_d = None, math.inf
        for tex in self.textures:
            dx = max(tex.x0 - gx, 0.0, gx - tex.x1)
            dy = max(tex.y0 - gy, 0.0, gy - tex.y1)
            d = math.hypot(dx, dy)
            if d < best_d:
                best, best_d = tex, d
        return best

    def _render_terrain(self, pose_in_map, out) -> None:
        """Ground of the terrain surface into ``out`` (sky and far soil included; see module docstring)."""
        p, terr = self.params, self.terrain
        x, y, yaw = (float(v) for v in pose_in_map)
        z0 = float(terr.height(x, y))
        gx0, gy0 = (float(g) for g in terr.gradient(x, y))
        roll, pitch = terr.rpy(x, y, yaw)
        R, C = camera_pose_3d(p, pose_in_map, z0, roll, pitch)
        # tangent plane under the vehicle: (x, y, 1) -> (x, y, z) -> image
        M = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [gx0, gy0, z0 - gx0 * x - gy0 * y]])
        M[:, 2] -= C
        H = self.K @ R @ M
        Hinv = np.linalg.inv(H)
        tex = self._pick_texture(H)
        if tex is None:
            out[:] = SOIL_BGR
            return
        # grid nodes: tangent-plane points (exact, a homography), then the terrain's departure from that
        # plane along the rays of every COARSE-th node (Newton), interpolated to the other nodes
        ray = R.T @ np.linalg.inv(self.K)
        q = self._grid_uv1 @ Hinv.T
        front = q[:, 2] > 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = q[:, :2] / q[:, 2:3]
        gh, gw = self._grid_shape
        ci = self._coarse_index
        D = self._grid_uv1[ci] @ ray.T
        horiz = np.hypot(D[:, 0], D[:, 1])
        pxy = xy[ci]
        t0 = np.hypot(pxy[:, 0] - C[0], pxy[:, 1] - C[1]) / horiz
        near = front[ci] & (t0 * horiz < 2.0 * p.far_clip_m)
        delta = np.zeros((len(ci), 2))
        if near.any():
            t, ok = terrain_ray_ground(terr, C, D[near], t0[near])
            idx = np.flatnonzero(near)[ok]
            delta[idx] = C[None, :2] + t[ok, None] * D[idx, :2] - pxy[idx]
        ch, cw = self._coarse_shape
        delta = cv2.remap(delta.reshape(ch, cw, 2).astype(np.float32), self._coarse_u, self._coarse_v,
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        xy = np.where(front[:, None], xy + delta.reshape(-1, 2), xy)
        dist = np.where(front, np.hypot(xy[:, 0] - C[0], xy[:, 1] - C[1]), np.inf).reshape(gh, gw)
        tx = ((xy[:, 0] - tex.x0) / tex.res - 0.5).reshape(gh, gw)
        ty = ((tex.y1 - xy[:, 1]) / tex.res - 0.5).reshape(gh, gw)
        # nodes above the horizon: copy the first node below (they are painted over; keeps the cells
        # next to the horizon continuous)
        bad = ~front.reshape(gh, gw)
        if bad.any():
            below = np.where(bad, gh, np.arange(gh)[:, None])
            first = np.minimum.accumulate(below[::-1], axis=0)[::-1].clip(max=gh - 1)
            tx = np.take_along_axis(tx, first, axis=0)
            ty = np.take_along_axis(ty, first, axis=0)
        # texture ROI of the ground within far_clip_m (remapping from the whole texture is ~4x slower)
        vis = dist <= p.far_clip_m
        if not vis.any():
            out[:] = SOIL_BGR
        else:
            c0 = int(max(math.floor(tx[vis].min()) - 2, 0))
            c1 = int(min(math.ceil(tx[vis].max()) + 3, tex.w))
            r0 = int(max(math.floor(ty[vis].min()) - 2, 0))
            r1 = int(min(math.ceil(ty[vis].max()) + 3, tex.h))
            if c1 <= c0 or r1 <= r0:
                out[:] = SOIL_BGR
            else:
                self._remap_texture(tex.image[r0:r1, c0:c1], tx - c0, ty - r0, out)
        # beyond far_clip_m: plain soil above the far line (per grid column, interpolated in 1 / distance)
        inv = 1.0 / dist
        far = inv < 1.0 / p.far_clip_m
        if far.any():
            gv = self._grid_uv1[::gw, 1]
            gu = self._grid_uv1[:gw, 0]
            n_far = far.sum(axis=0)   # far nodes are the top ones of a column
            i1 = np.minimum(n_far, gh - 1)
            i0 = np.maximum(n_far - 1, 0)
            cols = np.arange(gw)
            a, b = inv[i0, cols], inv[i1, cols]
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.clip(np.where(b > a, (1.0 / p.far_clip_m - a) / (b - a), 0.0), 0.0, 1.0)
            v_far = np.where(n_far == 0, -1.0, gv[i0] + f * (gv[i1] - gv[i0]))
            v_far = np.where(n_far == gh, float(p.height_px), v_far)
            poly = np.column_stack([np.r_[gu, gu[-1] + 1.0, -1.0], np.r_[v_far, -1.0, -1.0]])
            cv2.fillPoly(out, [np.round(poly * 16).astype(np.int32)], SOIL_BGR, cv2.LINE_8, 4)
        # sky: rays pointing above the horizontal (dz >= 0, linear in (u, v)): clip the image to that side
        a0, a1, a2 = ray[2]
        corners = [(-0.5, -0.5), (p.width_px - 0.5, -0.5), (p.width_px - 0.5, p.height_px - 0.5),
                   (-0.5, p.height_px - 0.5)]
        sky = []
        for k in range(4):
            (u0, v0), (u1, v1) = corners[k], corners[(k + 1) % 4]
            s0, s1 = a0 * u0 + a1 * v0 + a2, a0 * u1 + a1 * v1 + a2
            if s0 >= 0:
                sky.append((u0, v0))
            if (s0 >= 0) != (s1 >= 0):
                r = s0 / (s0 - s1)
                sky.append((u0 + r * (u1 - u0), v0 + r * (v1 - v0)))
        if len(sky) >= 3:
            cv2.fillConvexPoly(out, np.round(np.asarray(sky) * 16).astype(np.int32), SKY_BGR, cv2.LINE_8, 4)

    def _remap_texture(self, src, tx, ty, out) -> None:
        """Sample ``src`` at the grid-node texture coordinates ``tx``/``ty`` interpolated to every pixel."""
        p = self.params
        grid = np.dstack([tx, ty]).astype(np.float32)
        if self._resize:
            tex_map = cv2.resize(grid, (p.width_px, p.height_px), interpolation=cv2.INTER_LINEAR)
        else:
            tex_map = cv2.remap(grid, self._node_u, self._node_v, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        cv2.remap(src, tex_map, None, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_CONSTANT,
                  borderValue=SOIL_BGR)

    def render(self, pose_in_map) -> np.ndarray:
        """Render one frame (H, W, 3) uint8 BGR at base pose ``[x_m, y_m, yaw_rad]`` in map."""
        p = self.params
        W, Hh = p.width_px, p.height_px
        out = self._out
        if self.terrain is not None:
            self._render_terrain(pose_in_map, out)
            return self._noisy(out)
        H = ground_to_image_homography(self.K, p, pose_in_map)
        tex = self._pick_texture(H)
        v_top = int(math.floor(min(max(self.far_v, 0.0), Hh)))
        if v_top >= Hh or tex is None:
            out[:] = SOIL_BGR
        else:
            # ground footprint of the visible rows -> texture ROI
            Hinv = np.linalg.inv(H)
            corners = np.array([[0, v_top, 1], [W, v_top, 1], [0, Hh, 1], [W, Hh, 1]], float) @ Hinv.T
            g = corners[:, :2] / corners[:, 2:3]
            px = tex.to_px(g)
            c0 = int(max(math.floor(px[:, 0].min()) - 2, 0))
            c1 = int(min(math.ceil(px[:, 0].max()) + 3, tex.w))
            r0 = int(max(math.floor(px[:, 1].min()) - 2, 0))
            r1 = int(min(math.ceil(px[:, 1].max()) + 3, tex.h))
            if c1 <= c0 or r1 <= r0:
                out[:] = SOIL_BGR
            else:
                A = tex.px_to_map_matrix() @ np.array([[1.0, 0, c0], [0, 1.0, r0], [0, 0, 1.0]])
                M = H @ A  # ROI pixel -> image pixel
                cv2.warpPerspective(tex.image[r0:r1, c0:c1], M, (W, Hh), dst=out, flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=SOIL_BGR)
            if v_top > 0:
                out[:v_top] = SOIL_BGR
        hv = int(math.ceil(self.horizon_v))
        if hv > 0:
            out[:min(hv, Hh)] = SKY_BGR
        return self._noisy(out)

    def _noisy(self, out) -> np.ndarray:
        if self._noise_pos:
            k = int(self.rng.integers(self.N_NOISE))
            img = cv2.add(out, self._noise_pos[k])
            return cv2.subtract(img, self._noise_neg[k], dst=img)
        return out.copy()
