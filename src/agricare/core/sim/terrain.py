"""Ground surface of the embedded simulator: one model for the vehicles' tilt, the GNSS height and the camera.

``z = slope_x * x + slope_y * y + A * sin(k x) * sin(k y)``, ``k = 2 pi / undulation_wavelength_m`` (the
scenario's ``world.terrain``, :class:`agricare.core.sim.scenarios.Terrain`).

``TerrainSurface(terrain)``: ``.height(x, y)`` (arrays or floats), ``.gradient(x, y) -> (dz/dx, dz/dy)``,
``.height_gradient(x, y) -> (z, dz/dx, dz/dy)``,
``.rpy(x, y, yaw) -> (roll, pitch)`` of a vehicle standing on it (REP-103: pitch positive nose down),
``.flat`` when the ground is the plane ``z = 0``.
"""

from __future__ import annotations

import math

import numpy as np


class TerrainSurface:
    """Analytic ground height (see module docstring)."""

    def __init__(self, terrain):
        self.slope_x = float(terrain.slope_x)
        self.slope_y = float(terrain.slope_y)
        self.amplitude_m = float(terrain.undulation_amplitude_m)
        self.k = 2.0 * math.pi / float(terrain.undulation_wavelength_m)
        self.flat = self.slope_x == 0.0 and self.slope_y == 0.0 and self.amplitude_m == 0.0

    def height(self, x_m, y_m):
        k = self.k
        return self.slope_x * x_m + self.slope_y * y_m + self.amplitude_m * np.sin(k * x_m) * np.sin(k * y_m)

    def gradient(self, x_m, y_m):
        """``(dz/dx, dz/dy)`` at the points (arrays or floats)."""
        k, a = self.k, self.amplitude_m
        gx = self.slope_x + a * k * np.cos(k * x_m) * np.sin(k * y_m)
        gy = self.slope_y + a * k * np.sin(k * x_m) * np.cos(k * y_m)
        return gx, gy

    def height_gradient(self, x_m, y_m):
        """``(z, dz/dx, dz/dy)`` at the points, sharing the sines (the camera's ray-terrain Newton steps)."""
        k, a = self.k, self.amplitude_m
        sx, sy = np.sin(k * x_m), np.sin(k * y_m)
        cx, cy = np.cos(k * x_m), np.cos(k * y_m)
        z = self.slope_x * x_m + self.slope_y * y_m + a * sx * sy
        return z, self.slope_x + a * k * cx * sy, self.slope_y + a * k * sx * cy

    def rpy(self, x_m: float, y_m: float, yaw_rad: float) -> tuple[float, float]:
        """Roll and pitch (rad, REP-103) of a vehicle standing on the terrain with heading ``yaw_rad``."""
        gx, gy = (float(g) for g in self.gradient(x_m, y_m))
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        along = gx * c + gy * s
        left = -gx * s + gy * c
        return math.atan(left), -math.atan(along)
