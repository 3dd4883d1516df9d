"""Variable-rate control: the rate each implement section applies, from a prescription map.

The metering of a section follows its command with a dead time and a first-order lag
(:class:`RateActuator`); to apply the prescription where the section *will be* when the product lands, the
controller reads the map ahead of each section by ``speed x (dead time + time constant)`` along the heading
(:class:`RateController`). With ``lag_compensation`` the map is read ahead by ``speed x dead time`` only and the
first-order lag is inverted instead (model-based feedforward on the nominal metering model): the setpoint is the one
that brings the modelled metering to the prescription in one control step, clipped to ``0..max_rate_kgha``, so a
zone change lands within a step's travel instead of being smeared over ``speed x time constant``.
Rates are kg/ha and are setpoints: whether a section applies is the section state (``implement/sections``), as
ISO 11783 keeps setpoint rate and work state apart, so a section switched off keeps its metering at the rate ahead
and starts at the right rate when switched on again. Outside the map the rate falls back to ``default_rate_kgha``.
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
    lag_compensation: bool = False   # invert the metering lag (needs the command time, see RateController.command)

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
        self._model = None              # lag_compensation: the modelled metering output per section
        self._t = None

    def prescribed(self, points_xy) -> np.ndarray:
        """Prescribed rate at points (N, 2) (``default_rate_kgha`` outside the map)."""
        v = self.rx.value_at(points_xy)
        return np.where(np.isfinite(v), v, self.params.default_rate_kgha)

    def command(self, centres_xy: np.ndarray, heading_rad: float, speed_mps: float,
                t_s: float | None = None) -> np.ndarray:
        """Rate setpoints (n,) for sections centred at ``centres_xy`` (n, 2), the map read ``lead_s`` ahead.

        With ``lag_compensation`` and the command time ``t_s`` (s, increasing), the map is read ``speed x dead
        time`` ahead and the setpoint inverts the first-order lag over the time since the last command (a
        setpoint held for the coming step of the same length)."""
        p = self.params
        comp = p.lag_compensation and t_s is not None and p.actuator_time_constant_s > 0
        lead = max(0.0, float(speed_mps)) * (p.actuator_delay_s if comp else p.lead_s)
        ahead = np.asarray(centres_xy, float) + lead * np.array([math.cos(heading_rad), math.sin(heading_rad)])
        target = np.clip(self.prescribed(ahead), 0.0, p.max_rate_kgha)
        if not comp:
            return target
        t_s = float(t_s)
        if self._model is None or self._model.shape != target.shape or self._t is None or t_s <= self._t:
            # first command (or a reset / a clock that went back): no lag history to invert, the target as is
            self._model, self._t = target.copy(), t_s
            return target
        a = 1.0 - math.exp(-min(t_s - self._t, 1.0) / p.actuator_time_constant_s)
        cmd = np.clip(self._model + (target - self._model) / a, 0.0, p.max_rate_kgha)
        self._model = self._model + a * (cmd - self._model)
        self._t = t_s
        return cmd


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
