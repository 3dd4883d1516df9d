"""Variable-rate control: the rate each implement section applies, from a prescription map.

The metering of a section follows its command with a dead time and a first-order lag
(:class:`RateActuator`); to apply the prescription where the section *will be* when the product lands, the
controller reads the map ahead of each section by ``speed x (dead time + time constant)`` along the heading
(:class:`RateController`). Rates are kg/ha and are setpoints: whether a section applies is the section state
(``implement/sections``), as ISO 11783 keeps setpoint rate and work state apart, so a section switched off
keeps its metering at the rate ahead and starts at the right rate when switched on again. Outside the map the
rate falls back to ``default_rate_kgha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agricare.core.validation import require_non_negative, require_positive


@dataclass(frozen=True)
class RateParams:
    """Rate control parameters (SI units; rates in kg/ha)."""

    actuator_delay_s: float = 0.3
    actuator_time_constant_s: float = 0.6
    default_rate_kgha: float = 0.0
    max_rate_kgha: float = 1000.0

    def __post_init__(self):
        require_non_negative(self, "actuator_delay_s", "actuator_time_constant_s", "default_rate_kgha")
        require_positive(self, "max_rate_kgha")

    @property
    def lead_s(self) -> float:
        """How far ahead in time the map is read (dead time + time constant)."""
        return self.actuator_delay_s + self.actuator_time_constant_s


def section_centres(bars: np.ndarray) -> np.ndarray:
    """Centres (n, 2) of section bars (n, 2, 2) as :func:`agricare.core.control.sections.section_bar` gives."""
    return 0.5 * (bars[:, 0] + bars[:, 1])


class RateController:
    """Commanded rate per section from a prescription grid (:class:`agricare.core.farmdata.layers.Grid`)."""

    def __init__(self, params: RateParams, prescription):
        self.params = params
        self.rx = prescription

    def prescribed(self, points_xy) -> np.ndarray:
        """Prescribed rate at points (N, 2) (``default_rate_kgha`` outside the map)."""
        v = self.rx.value_at(points_xy)
        return np.where(np.isfinite(v), v, self.params.default_rate_kgha)

    def command(self, centres_xy: np.ndarray, heading_rad: float, speed_mps: float) -> np.ndarray:
        """Rate setpoints (n,) for sections centred at ``centres_xy`` (n, 2), the map read ``lead_s`` ahead."""
        lead = max(0.0, float(speed_mps)) * self.params.lead_s
        ahead = np.asarray(centres_xy, float) + lead * np.array([math.cos(heading_rad), math.sin(heading_rad)])
        return np.clip(self.prescribed(ahead), 0.0, self.params.max_rate_kgha)


class RateActuator:
    """Metering model of n sections: dead time + first-order lag of the commanded rate (no clock: the caller
    steps it with its own time)."""

    def __init__(self, params: RateParams, n: int):
        self.p = params
        self.n = n
        self._queue: list[tuple[float, np.ndarray]] = []
        self.rate = np.zeros(n)
        self._target = np.zeros(n)
        self._t = None

    def step(self, t_s: float, command) -> np.ndarray:
        """Advance to ``t_s`` with the new command; returns the applied rates (n,)."""
        self._queue.append((float(t_s), np.asarray(command, float).copy()))
        if self._t is None:
            self._t = float(t_s)
            return self.rate.copy()
        dt = max(0.0, float(t_s) - self._t)
        self._t = float(t_s)
        while self._queue and self._queue[0][0] <= t_s - self.p.actuator_delay_s + 1e-9:
            self._target = self._queue.pop(0)[1]
        tau = self.p.actuator_time_constant_s
        a = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
        self.rate = self.rate + a * (self._target - self.rate)
        return self.rate.copy()
