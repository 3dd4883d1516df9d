"""gnss_node: NMEA-0183 receiver on a serial port -> ``gnss/fix`` and ``gnss/vel``.

Parses GGA, RMC, VTG and GST (:mod:`agricare.drivers.nmea_gnss`). Publishes:

- ``gnss/fix`` (sensor_msgs/NavSatFix, SENSOR_QOS) for every GGA: status from the fix quality (RTK fixed /
  float -> GBAS_FIX, DGPS/SBAS -> SBAS_FIX, no fix -> NO_FIX with NaN position), covariance from the GST
  of the same epoch (DIAGONAL_KNOWN) or HDOP x UERE (APPROXIMATED). Stamped with the receive time (node
  clock). ``altitude`` is above the WGS-84 ellipsoid when the receiver sends the geoid separation;
  otherwise it is the MSL altitude with the altitude variance widened by ``geoid_unknown_sigma_m ** 2``
  and the covariance type APPROXIMATED (diagnostics say ``altitude: MSL``).
  A GGA waits for the GST of its epoch at most ``gst_wait_s`` (receivers that send GST after GGA).
- ``gnss/vel`` (geometry_msgs/TwistWithCovarianceStamped, SENSOR_QOS): ground velocity, ``linear.x`` =
  east, ``linear.y`` = north [m/s] (ENU), frame ``frame_id``; covariance rows/columns 0, 1 from the
  driver (a speed sent without course at standstill: zero vector, variance >= speed^2), ``linear.z`` and
  the angular part unknown (variance 1e6). Published at standstill too.
- ``/diagnostics``: fix quality, satellites, HDOP, altitude reference, checksum/parse error counters;
  error when the port is lost (reconnects with exponential backoff) or no valid sentence arrived within
  ``stale_timeout_s``.
"""

from __future__ import annotations

import dataclasses
import math

from geometry_msgs.msg import TwistWithCovarianceStamped
from sensor_msgs.msg import NavSatFix, NavSatStatus

from agricare.core.validation import require, require_positive
from agricare.drivers.link import Backoff, LinkError
from agricare.drivers.nmea_gnss import QUALITY_NAMES, GnssFix, GnssReceiver, GnssVelocity, NmeaParser
from agricare.ros.convert import to_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.lifecycle import ManagedNode
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import SENSOR_QOS


@dataclasses.dataclass(frozen=True)
class GnssParams:
    """Parameters of ``gnss_node`` (defaults in ``config/gnss_node.yaml``)."""

    port: str = "/dev/gnss"
    baud: int = 115200
    frame_id: str = "gnss"
    poll_rate_hz: float = 50.0          # how often the port is read
    stale_timeout_s: float = 1.0        # no valid sentence for this long -> diagnostics error
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 5.0
    gst_wait_s: float = 0.2             # a GGA waits this long at most for the GST of its epoch
    vertical_factor: float = 2.0        # vertical sigma = factor x horizontal (HDOP model)
    geoid_unknown_sigma_m: float = 50.0  # altitude sigma added when the geoid separation is not sent
    velocity_sigma_mps: float = 0.1     # 1-sigma of a velocity component
    standstill_speed_mps: float = 0.5   # a speed sent without course at or below this: standstill

    def __post_init__(self):
        require(bool(self.port.strip()), "port", "must be set", self.port)
        require(self.baud > 0, "baud", "must be > 0", self.baud)
        require(bool(self.frame_id), "frame_id", "must not be empty")
        require_positive(self, "poll_rate_hz", "stale_timeout_s", "reconnect_initial_s", "reconnect_max_s",
                         "gst_wait_s", "vertical_factor", "geoid_unknown_sigma_m", "velocity_sigma_mps",
                         "standstill_speed_mps")
        require(self.reconnect_max_s >= self.reconnect_initial_s, "reconnect_max_s",
                "must be >= reconnect_initial_s", self.reconnect_max_s)


class GnssNode(ManagedNode):
    """NMEA GNSS driver, a managed (lifecycle) node: it reads the receiver and publishes only while active
    (the lifecycle manager activates it after the base driver); deactivated or cleaned up, it closes the
    port and publishes nothing."""

    def __init__(self, **kwargs):
        super().__init__("gnss_node", **kwargs)
        self.params = p = load_params(self, GnssParams)
        import os
        import stat

        if not os.path.exists(p.port) or not stat.S_ISCHR(os.stat(p.port).st_mode):
            raise ParameterError(f"{self.get_name()}: parameter 'port' is not an existing serial device "
                                 f"(got {p.port!r})")
        self.rx = GnssReceiver(p.port, p.baud, NmeaParser(
            vertical_factor=p.vertical_factor, geoid_unknown_sigma_m=p.geoid_unknown_sigma_m,
            velocity_sigma_mps=p.velocity_sigma_mps, standstill_speed_mps=p.standstill_speed_mps))
        self._holding_since: float | None = None
        self.backoff = Backoff(p.reconnect_initial_s, p.reconnect_max_s)
        self.diag = Diagnostics(self, "gnss", hardware_id=p.port)
        self._fix_pub = self.create_publisher(NavSatFix, "gnss/fix", SENSOR_QOS)
        self._vel_pub = self.create_publisher(TwistWithCovarianceStamped, "gnss/vel", SENSOR_QOS)
        self.last_fix: GnssFix | None = None
        self.last_error = ""
        self._last_valid_s: float | None = None
        self._opened_s: float | None = None
        self._timer = self.create_timer(1.0 / p.poll_rate_hz, self._on_timer)
        self.autostart()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_timer(self) -> None:
        if not self.active:   # unconfigured / inactive: the receiver is not read, nothing is published
            return
        now = self._now()
        if not self.rx.is_open:
            if not self.backoff.ready(now):
                return
            try:
                self.rx.open()
            except LinkError as exc:
                self.last_error = str(exc)
                self.backoff.failed(now)
                self.diag.error(f"port lost: {exc}", **self.rx.parser.counters.as_dict())
                return
            self.backoff.succeeded()
            self._opened_s = now
        before = self.rx.parser.counters.sentences
        try:
            events = self.rx.poll()
        except LinkError as exc:
            self.rx.close()
            self.last_error = str(exc)
            self.backoff.failed(now)
            self.diag.error(f"port lost: {exc}", **self.rx.parser.counters.as_dict())
            return
        if self.rx.parser.counters.sentences > before:
            self._last_valid_s = now
        if not self.rx.parser.holding:
            self._holding_since = None
        elif self._holding_since is None:
            self._holding_since = now
        elif now - self._holding_since >= self.params.gst_wait_s:  # its GST is not coming
            events.extend(self.rx.parser.flush())
            self._holding_since = None
        for ev in events:
            if isinstance(ev, GnssFix):
                self._publish_fix(ev, now)
            elif isinstance(ev, GnssVelocity):
                self._publish_vel(ev, now)
        self._report(now)

    def _publish_fix(self, fix: GnssFix, now: float) -> None:
        self.last_fix = fix
        msg = NavSatFix()
        msg.header.stamp = to_stamp(now)
        msg.header.frame_id = self.params.frame_id
        msg.status = NavSatStatus(status=fix.status, service=fix.service)
        msg.latitude, msg.longitude, msg.altitude = fix.latitude_deg, fix.longitude_deg, fix.altitude_m
        msg.position_covariance = [float(v) for v in fix.position_covariance]
        msg.position_covariance_type = fix.covariance_type
        self._fix_pub.publish(msg)

    def _publish_vel(self, vel: GnssVelocity, now: float) -> None:
        msg = TwistWithCovarianceStamped()
        msg.header.stamp = to_stamp(now)
        msg.header.frame_id = self.params.frame_id
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = vel.east_mps, vel.north_mps
        cov = [0.0] * 36
        cov[0], cov[1], cov[6], cov[7] = (float(v) for v in vel.covariance_en)
        for i in (14, 21, 28, 35):
            cov[i] = 1e6  # not measured
        msg.twist.covariance = cov
        self._vel_pub.publish(msg)

    def _report(self, now: float) -> None:
        c = self.rx.parser.counters.as_dict()
        ref = self._last_valid_s if self._last_valid_s is not None else self._opened_s
        if ref is not None and now - ref > self.params.stale_timeout_s:
            self.diag.error(f"no valid NMEA for more than {self.params.stale_timeout_s:g} s", **c)
            return
        f = self.last_fix
        if f is None:
            self.diag.warn("waiting for GGA", **c)
            return
        values = dict(c, quality=QUALITY_NAMES.get(f.quality, str(f.quality)), satellites=f.num_satellites,
                      hdop=f.hdop if math.isfinite(f.hdop) else "n/a", covariance=f.covariance_source or "unknown",
                      altitude="ellipsoid (MSL + geoid separation)" if f.altitude_is_ellipsoidal else
                      f"MSL (receiver sends no geoid separation; variance widened by "
                      f"{self.params.geoid_unknown_sigma_m:g} m^2)")
        if not f.has_fix:
            self.diag.warn("no fix", **values)
        else:
            self.diag.ok(f"fix: {QUALITY_NAMES.get(f.quality, f.quality)}", **values)

    def stop_outputs(self) -> None:
        """Deactivated, cleaned up or shutting down: release the port (re-opened when active again)."""
        self.rx.close()
        self.diag.stale("inactive: port closed, nothing published")


def main(args=None):
    return run_node(GnssNode, args)


if __name__ == "__main__":
    main()
