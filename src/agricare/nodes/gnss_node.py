"""gnss_node: NMEA-0183 receiver on a serial port -> ``gnss/fix`` and ``gnss/vel``.

Parses GGA, RMC, VTG and GST (:mod:`agricare.drivers.nmea_gnss`). Publishes:

- ``gnss/fix`` (sensor_msgs/NavSatFix, SENSOR_QOS) for every GGA: status from the fix quality (RTK fixed /
  float -> GBAS_FIX, DGPS/SBAS -> SBAS_FIX, no fix -> NO_FIX with NaN position), covariance from GST sigmas
  (DIAGONAL_KNOWN) or HDOP x UERE (APPROXIMATED). Stamped with the receive time (node clock).
- ``gnss/vel`` (geometry_msgs/TwistStamped, SENSOR_QOS): ground velocity, ``linear.x`` = east,
  ``linear.y`` = north [m/s] (ENU), frame ``frame_id``.
- ``/diagnostics``: fix quality, satellites, HDOP, checksum/parse error counters; error when the port is
  lost (reconnects with exponential backoff) or no valid sentence arrived within ``stale_timeout_s``.
"""

from __future__ import annotations

import dataclasses
import math

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import NavSatFix, NavSatStatus

from agricare.core.validation import require, require_positive
from agricare.drivers.link import Backoff, LinkError
from agricare.drivers.nmea_gnss import QUALITY_NAMES, GnssFix, GnssReceiver, GnssVelocity, NmeaParser
from agricare.ros.convert import to_stamp
from agricare.ros.diagnostics import Diagnostics
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
    gst_max_age_s: float = 1.5          # GST used for a GGA within this time difference
    vertical_factor: float = 2.0        # vertical sigma = factor x horizontal (HDOP model)

    def __post_init__(self):
        require(bool(self.port.strip()), "port", "must be set", self.port)
        require(self.baud > 0, "baud", "must be > 0", self.baud)
        require(bool(self.frame_id), "frame_id", "must not be empty")
        require_positive(self, "poll_rate_hz", "stale_timeout_s", "reconnect_initial_s", "reconnect_max_s",
                         "gst_max_age_s", "vertical_factor")
        require(self.reconnect_max_s >= self.reconnect_initial_s, "reconnect_max_s",
                "must be >= reconnect_initial_s", self.reconnect_max_s)


class GnssNode(Node):
    def __init__(self, **kwargs):
        super().__init__("gnss_node", **kwargs)
        self.params = p = load_params(self, GnssParams)
        import os
        import stat

        if not os.path.exists(p.port) or not stat.S_ISCHR(os.stat(p.port).st_mode):
            raise ParameterError(f"{self.get_name()}: parameter 'port' is not an existing serial device "
                                 f"(got {p.port!r})")
        self.rx = GnssReceiver(p.port, p.baud, NmeaParser(vertical_factor=p.vertical_factor,
                                                          gst_max_age_s=p.gst_max_age_s))
        self.backoff = Backoff(p.reconnect_initial_s, p.reconnect_max_s)
        self.diag = Diagnostics(self, "gnss", hardware_id=p.port)
        self._fix_pub = self.create_publisher(NavSatFix, "gnss/fix", SENSOR_QOS)
        self._vel_pub = self.create_publisher(TwistStamped, "gnss/vel", SENSOR_QOS)
        self.last_fix: GnssFix | None = None
        self.last_error = ""
        self._last_valid_s: float | None = None
        self._opened_s: float | None = None
        self._timer = self.create_timer(1.0 / p.poll_rate_hz, self._on_timer)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_timer(self) -> None:
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
        msg = TwistStamped()
        msg.header.stamp = to_stamp(now)
        msg.header.frame_id = self.params.frame_id
        msg.twist.linear.x, msg.twist.linear.y = vel.east_mps, vel.north_mps
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
                      hdop=f.hdop if math.isfinite(f.hdop) else "n/a")
        if not f.has_fix:
            self.diag.warn("no fix", **values)
        else:
            self.diag.ok(f"fix: {QUALITY_NAMES.get(f.quality, f.quality)}", **values)

    def on_shutdown(self) -> None:
        self.rx.close()


def main(args=None):
    return run_node(GnssNode, args)


if __name__ == "__main__":
    main()
