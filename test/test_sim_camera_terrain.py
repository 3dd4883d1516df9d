"""The simulated camera sees the ground the simulator drives on: slope and undulation of ``world.terrain``.

The crop rows are located in the rendered image (centroid of the vegetation index per image column) and compared
with two predictions made without the renderer: the forward projection of the rows' points on the terrain
surface (``project_terrain_points``: 3-D points -> pinhole) and the flat-ground projection (what the camera
rendered before it knew the terrain).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.sim.camera import camera_pose_3d, project_ground_points, project_terrain_points
from agricare.core.sim.scenarios import scenario_dict
from agricare.core.sim.world import World


def _world(terrain=None, y=-2.0, yaw_deg=90.0, **cam):
    """Crop rows along x at y = 0, 0.75, 1.5, 2.25; by default the robot stands south of them looking north, so
    the rows cross the image and their distance shows directly as the image row they appear in."""
    fields = [{"name": "f", "polygon": [[-5, -5], [40, -5], [40, 10], [-5, 10]],
               "crop_blocks": [{"name": "c", "origin": [0.0, 0.0], "heading_deg": 0.0, "rows": 4, "spacing_m": 0.75,
                                "length_m": 30.0, "gap_probability": 0.0, "weed_density_per_m2": 0.0,
                                "plant_spacing_m": 0.1, "plant_diameter_m": 0.12}]}]
    cam = {"noise_std": 0.0, "width_px": 320, "height_px": 240, **cam}
    robots = [{"name": "r", "type": "row_robot", "start": {"x_m": 5.0, "y_m": y, "yaw_deg": yaw_deg},
               "sensors": {"camera": cam}}]
    world = {"fields": fields}
    if terrain:
        world["terrain"] = terrain
    return World.from_scenario(scenario_dict(robots, **world))


def _exg(w):
    img = w.camera_image("r").astype(float)
    return 2 * img[:, :, 1] - img[:, :, 0] - img[:, :, 2]


def _rows_predicted(w, on_terrain: bool, rows_y=(0.0, 0.75)):
    """Image points (N, 2) of the two nearest rows' centre lines, on the terrain surface or on flat ground."""
    params = w.robots["r"].spec.sensors["camera"]
    K, pose = w.camera_matrix("r"), w.pose("r")
    xs = np.arange(3.0, 7.0, 0.05)
    pts = np.vstack([np.column_stack([xs, np.full_like(xs, y)]) for y in rows_y])
    uv = project_terrain_points(K, params, pose, w.terrain, pts) if on_terrain else \
        project_ground_points(K, params, pose, pts)
    return uv


def _in_view(uv, margin_px=10, size=(320, 240)):
    return (uv[:, 0] > margin_px) & (uv[:, 0] < size[0] - margin_px) & (uv[:, 1] > margin_px) & \
        (uv[:, 1] < size[1] - margin_px)


def _measured_v(exg, predicted, half_window_px=8):
    """For each predicted row point (u, v): the image row of the rendered row there (centroid of the vegetation
    index in column u within +-half_window_px of v); NaN where no vegetation is found."""
    out = []
    for u, v in predicted:
        ui, lo, hi = int(round(u)), int(round(v)) - half_window_px, int(round(v)) + half_window_px + 1
        if not (0 <= ui < exg.shape[1] and lo >= 0 and hi <= exg.shape[0]):
            out.append(np.nan)
            continue
        win = np.clip(exg[lo:hi, ui] - 30.0, 0.0, None)
        out.append(lo + float(np.sum(win * np.arange(len(win))) / win.sum()) if win.sum() > 0 else np.nan)
    return np.asarray(out)


def test_undulating_ground_moves_the_rows_in_the_image_as_the_terrain_model_says():
    # a bump field (0.3 m, 12 m wavelength): the robot stands tilted (roll ~0.12 rad) and the ground ahead bends
    # away from its tangent plane within the camera's view
    w = _world({"undulation_amplitude_m": 0.3, "undulation_wavelength_m": 12.0})
    assert w.robots["r"].camera.terrain is w.terrain   # the camera's ground is the one the vehicles drive on
    roll, _pitch = w.terrain_rpy(*w.pose("r"))
    assert abs(roll) > 0.1
    on_terrain, flat = _rows_predicted(w, True), _rows_predicted(w, False)
    inside = _in_view(on_terrain) & _in_view(flat)
    on_terrain, flat = on_terrain[inside], flat[inside]
    v = _measured_v(_exg(w), on_terrain)
    found = np.isfinite(v)
    assert found.mean() > 0.95 and found.sum() > 120
    err = np.abs(v[found] - on_terrain[found, 1])
    assert np.median(err) < 1.0 and np.percentile(err, 90) < 2.0, (np.median(err), np.percentile(err, 90))
    # the change is visible: flat ground would put the rows several pixels elsewhere
    assert np.median(np.abs(on_terrain[:, 1] - flat[:, 1])) > 4.0
    assert np.median(np.abs(v[found] - flat[found, 1])) > 4.0
    # and without terrain the same measurement finds the rows where flat ground puts them
    wf = _world()
    flat_f = _rows_predicted(wf, False)
    flat_f = flat_f[_in_view(flat_f)]
    vf = _measured_v(_exg(wf), flat_f)
    assert np.nanmedian(np.abs(vf - flat_f[:, 1])) < 1.0


def test_uniform_slope_tilts_the_horizon_but_not_the_rows():
    # on a plane the robot tilts with the ground: the rows seen from it are (nearly) those of flat ground, while
    # the horizon (true horizontal) tilts with the robot's roll
    slope = {"slope_x": 0.10, "slope_y": 0.06}
    w = _world(slope, pitch_deg=10.0, hfov_deg=90.0, y=-2.0)
    wf = _world(None, pitch_deg=10.0, hfov_deg=90.0, y=-2.0)
    roll, pitch = w.terrain_rpy(*w.pose("r"))   # heading north: the east slope rolls it, the north one pitches it
    assert roll == pytest.approx(-math.atan(0.10)) and pitch == pytest.approx(-math.atan(0.06))
    flat = _rows_predicted(wf, False)
    flat = flat[_in_view(flat)]
    v = _measured_v(_exg(w), flat)
    assert np.isfinite(v).mean() > 0.95 and np.nanmedian(np.abs(v - flat[:, 1])) < 1.0
    # horizon: the sky/ground boundary per column against the projection of far horizontal directions
    img = w.camera_image("r").astype(int)
    sky = (img[:, :, 0] > 200) & (img[:, :, 1] > 190)   # SKY_BGR (235, 206, 170)
    params = w.robots["r"].spec.sensors["camera"]
    K, pose = w.camera_matrix("r"), w.pose("r")
    R, C = camera_pose_3d(params, pose, float(w.terrain_height(*pose[:2])), roll, pitch)
    cols = np.arange(20, 300, 20)
    predicted, measured = [], []
    for az in np.linspace(-0.78, 0.78, 79):
        P = C + 1e6 * np.array([math.cos(pose[2] + az), math.sin(pose[2] + az), 0.0])
        q = K @ R @ (P - C)
        predicted.append(q[:2] / q[2])
    predicted = np.asarray(predicted)
    order = np.argsort(predicted[:, 0])
    for u in cols:
        measured.append(int(np.argmin(sky[:, u])))   # first non-sky row from the top
    v_pred = np.interp(cols, predicted[order, 0], predicted[order, 1])
    assert np.max(np.abs(np.asarray(measured) - v_pred)) < 1.5
    tilt = np.polyfit(cols, measured, 1)[0]
    assert abs(tilt) > 0.05   # roll 0.1 rad: the horizon visibly slopes across the image (~15 px over it)
    flat_img = wf.camera_image("r").astype(int)
    flat_sky = (flat_img[:, :, 0] > 200) & (flat_img[:, :, 1] > 190)
    assert abs(np.polyfit(cols, [int(np.argmin(flat_sky[:, u])) for u in cols], 1)[0]) < 0.01


def test_soil_texture_same_pixels_as_the_float_merge():
    """The soil channels are converted to uint8 before the merge (cheaper); the pixels are those of converting
    the merged float image, as the texture was painted before."""
    import cv2

    from agricare.core.sim.camera import SOIL_BGR, GroundTexture

    tex = GroundTexture([[0.0, 0.0], [6.0, 4.0]], 0.01, np.random.default_rng([3, 2000]))
    rng = np.random.default_rng([3, 2000])
    h, w = tex.h, tex.w
    tile = rng.normal(0.0, 9.0, (256, 256)).astype(np.float32)
    grain = np.tile(tile, (h // 256 + 1, w // 256 + 1))[:h, :w]
    small = rng.normal(0.0, 1.0, (max(h // 8, 2), max(w // 8, 2))).astype(np.float32)
    clods = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
    big = rng.normal(0.0, 1.0, (max(h // 150, 2), max(w // 150, 2))).astype(np.float32)
    light = cv2.resize(big, (w, h), interpolation=cv2.INTER_CUBIC)
    light = cv2.addWeighted(light, 0.08, light, 0.0, 1.0)
    texture = cv2.scaleAdd(clods, 14.0, grain)
    want = cv2.convertScaleAbs(cv2.merge([cv2.multiply(cv2.add(texture, float(b)), light) for b in SOIL_BGR]))
    assert tex.image.shape == (400, 600, 3) and tex.image.std() > 3.0
    assert np.array_equal(tex.image, want)
