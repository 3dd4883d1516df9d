"""Input health checks of the safe base: commands it must refuse and sensors that lie with fresh stamps.

The watchdogs of :class:`agricare.core.safety.supervisor.Supervisor` catch inputs that stop arriving or carry
NaN. These checks catch inputs that keep arriving on time but cannot be trusted (each a pure function of what
it was fed, the time passed in):

- :class:`CommandCheck`: a command whose own stamp is older than the command timeout (delayed on the way), in
  the future by more than that (the sender's clock is skewed), older than the last accepted one (reordered,
  or replayed), the last accepted one again (the same stamp and the same values: duplicated on the way; a
  command source stamps each decision with its own cycle's time, so a repeat is the link, not the source), or
  beyond ``range_factor`` x the safe base's limits (corrupt: a planner may ask for more than the base allows and
  is clamped, but not for 1000 m/s) is refused with the reason.
- :class:`FrozenOdometry`: the odometry pose has not changed for ``window_s`` while the safe base itself sent
  a moving command over that whole window, or while the IMU measured a rotation over that window.
- :class:`StuckImu`: ``samples`` consecutive IMU readings identical in every value (orientation, angular
  velocity, linear acceleration): a real IMU's noise changes some digit on every sample.

Each refusal or detection is a fault of the supervisor (``cmd_delayed``, ``cmd_future``, ``cmd_reordered``,
``cmd_duplicated``, ``cmd_out_of_range``, ``odom_frozen``, ``imu_stuck``): a stop in the same cycle, latched
until the vehicle's panel resets it (a duplicate changes no command, but a link that repeats or reorders
messages cannot be trusted with the next one); only ``cmd_delayed`` is not latched (a command older than its
timeout is no command, as a command stream gone stale: the robot stands while they come late).
"""

from __future__ import annotations

import math


class CommandCheck:
    """Refuse commands by their stamp (age, future, order) and range. ``check`` returns None or a reason."""

    def __init__(self, max_age_s: float, max_v_mps: float, max_w_radps: float, range_factor: float = 2.0):
        self.max_age_s = float(max_age_s)
        self.max_v = float(max_v_mps) * float(range_factor) if range_factor > 0 else math.inf
        self.max_w = float(max_w_radps) * float(range_factor) if range_factor > 0 else math.inf
        self.last_stamp_s: float | None = None
        self.last_vw: tuple[float, float] | None = None
        self.last_now_s: float | None = None

    def check(self, stamp_s: float, now_s: float, v: float, w: float) -> str | None:
        """``stamp_s``: the command's own stamp (0: unstamped, no stamp checks); ``now_s``: receipt time on the
        same clock. NaN values are left to the supervisor's NaN check (``nonfinite:cmd``)."""
        if math.isfinite(v) and math.isfinite(w) and (abs(v) > self.max_v or abs(w) > self.max_w):
            return "cmd_out_of_range"
        if self.last_now_s is not None and now_s < self.last_now_s:
            self.last_stamp_s = None          # our own clock went back (simulation restart, clock jump)
        self.last_now_s = now_s
        if stamp_s == 0.0 or not math.isfinite(stamp_s):
            return None
        if self.last_stamp_s is not None and stamp_s < self.last_stamp_s:
            return "cmd_reordered"
        if self.last_stamp_s is not None and stamp_s == self.last_stamp_s and (v, w) == self.last_vw:
            return "cmd_duplicated"
        if now_s - stamp_s > self.max_age_s:
            return "cmd_delayed"
        if stamp_s - now_s > self.max_age_s:
            return "cmd_future"
        self.last_stamp_s = stamp_s
        self.last_vw = (v, w)
        return None


class FrozenOdometry:
    """Odometry whose pose stands still while the robot is commanded to move or the IMU sees it turn."""

    def __init__(self, window_s: float, min_speed_mps: float, min_yaw_rate_radps: float):
        self.window_s = float(window_s)
        self.min_speed_mps = float(min_speed_mps)
        self.min_yaw_rate_radps = float(min_yaw_rate_radps)
        self._pose = None
        self._t_change: float | None = None
        self._t_cmd_moving: float | None = None    # since when the safe base has commanded motion
        self._t_gyro_moving: float | None = None   # since when the IMU has measured a turn

    def pose(self, t_s: float, pose) -> None:
        p = tuple(float(x) for x in pose)
        if p != self._pose:
            self._pose, self._t_change = p, t_s

    def command(self, t_s: float, v_mps: float) -> None:
        """The speed the safe base sent to the wheels at ``t_s``."""
        if abs(v_mps) >= self.min_speed_mps:   # (NaN: not moving)
            if self._t_cmd_moving is None:
                self._t_cmd_moving = t_s
        else:
            self._t_cmd_moving = None

    def gyro(self, t_s: float, w_radps: float) -> None:
        if abs(w_radps) >= self.min_yaw_rate_radps:
            if self._t_gyro_moving is None:
                self._t_gyro_moving = t_s
        else:
            self._t_gyro_moving = None

    def frozen(self, t_s: float) -> bool:
        """True once the pose has stood still for the whole window (``window_s`` reached, not exceeded: the
        window is the input's timeout, and the stop must reach the wheels within it plus one control cycle)."""
        if self._t_change is None:
            return False
        window = self.window_s - 1e-9   # sample times are sums of float periods
        since_change = t_s - self._t_change
        if self.min_speed_mps > 0 and self._t_cmd_moving is not None:
            if since_change >= window and t_s - self._t_cmd_moving >= window:
                return True
        if self.min_yaw_rate_radps > 0 and self._t_gyro_moving is not None:
            if since_change >= window and t_s - self._t_gyro_moving >= window:
                return True
        return False


class StuckImu:
    """``samples`` consecutive identical IMU readings (0: off)."""

    def __init__(self, samples: int):
        self.samples = int(samples)
        self._last = None
        self.run = 0        # identical readings in a row, the first one included

    def reading(self, values) -> None:
        v = tuple(float(x) for x in values)
        self.run = self.run + 1 if v == self._last else 1
        self._last = v

    @property
    def stuck(self) -> bool:
        return self.samples > 0 and self.run >= self.samples
