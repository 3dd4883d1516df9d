"""navsat_node: GNSS fixes -> map-frame positions, and a lat/lon -> map service.

Subscribes
    ``gnss/fix`` (sensor_msgs/NavSatFix, sensor QoS).
Publishes
    ``gnss/odometry`` (nav_msgs/Odometry in the map frame, position + covariance only; the EKF input),
    ``gnss/datum`` (sensor_msgs/NavSatFix, latched: the datum in use), ``/diagnostics``.
Service
    ``latlon_to_map`` (agricare_interfaces/srv/LatLonToMap) when agricare_interfaces is importable.

The datum comes from ``datum_lat_deg`` / ``datum_lon_deg`` or, when those are NaN and
``datum_from_first_fix`` is true, from the first good fix. NO_FIX, NaN/inf, out-of-range fixes and
non-finite covariances are refused and counted; an unknown covariance is replaced by the default for
the fix quality (and reported).
"""

from __future__ import annotations

import math

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import NavSatFix

from agricare.core.localization.navsat import NavSatParams, NavSatTransform
from agricare.ros.convert import from_stamp
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import load_params
from agricare.ros.qos import LATCHED_QOS, SENSOR_QOS


class NavSatNode(Node):
    """WGS84 -> map (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("navsat_node", **kwargs)
        self.params = load_params(self, NavSatParams)
        self.nst = NavSatTransform(self.params)
        self.diag = Diagnostics(self, "navsat")
        self.last_reason = ""
        self.fixes_ok = 0
        self._pub = self.create_publisher(Odometry, "gnss/odometry", SENSOR_QOS)
        self._datum_pub = self.create_publisher(NavSatFix, "gnss/datum", LATCHED_QOS)
        self.create_subscription(NavSatFix, "gnss/fix", self._on_fix, SENSOR_QOS)
        from agricare_interfaces.srv import LatLonToMap

        self.service = self.create_service(LatLonToMap, "latlon_to_map", self._on_latlon)
        if self.nst.plane is not None:
            self._publish_datum()
        self.diag.warn("waiting for a fix", datum=str(self.nst.datum))

    def _publish_datum(self):
        lat, lon, alt = self.nst.datum
        msg = NavSatFix(latitude=lat, longitude=lon, altitude=alt)
        msg.header.frame_id = self.params.map_frame
        msg.header.stamp = self.get_clock().now().to_msg()
        self._datum_pub.publish(msg)

    def _on_fix(self, msg: NavSatFix):
        had_datum = self.nst.plane is not None
        r = self.nst.convert(msg.status.status, msg.latitude, msg.longitude, msg.altitude,
                             list(msg.position_covariance), msg.position_covariance_type)
        values = dict(refused_no_fix=self.nst.refused["no_fix"], refused_not_finite=self.nst.refused["not_finite"],
                      refused_out_of_range=self.nst.refused["out_of_range"],
                      refused_covariance=self.nst.refused["bad_covariance"], fixes_ok=self.fixes_ok)
        if not r.ok:
            self.diag.warn(f"fix refused: {r.reason}", **values)
            return
        if not had_datum:
            self.get_logger().info(f"datum set from the first good fix: {self.nst.datum}")
            self._publish_datum()
        self.fixes_ok += 1
        values["fixes_ok"] = self.fixes_ok
        t = from_stamp(msg.header.stamp)
        out = Odometry()
        out.header.stamp = msg.header.stamp if t > 0 else self.get_clock().now().to_msg()
        out.header.frame_id = self.params.map_frame
        out.child_frame_id = msg.header.frame_id or "gnss_link"
        out.pose.pose.position.x = float(r.xy_in_map[0])
        out.pose.pose.position.y = float(r.xy_in_map[1])
        out.pose.pose.position.z = float(r.z_m) if math.isfinite(r.z_m) else 0.0
        out.pose.pose.orientation.w = 1.0
        cov = np.diag([0.0, 0.0, 1e6, 1e6, 1e6, 1e6])
        cov[:2, :2] = r.cov_xy
        out.pose.covariance = [float(v) for v in cov.ravel()]
        self._pub.publish(out)
        if r.covariance_known:
            self.diag.ok("fix", **values)
        else:
            self.diag.warn(r.reason, **values)

    def _on_latlon(self, request, response):
        try:
            x, y = self.nst.latlon_to_map(request.latitude, request.longitude)
            response.success, response.message, response.x, response.y = True, "", float(x), float(y)
        except (RuntimeError, ValueError) as exc:
            response.success, response.message = False, str(exc)
            response.x = response.y = float("nan")
        return response


def main(args=None):
    return run_node(NavSatNode, args)


if __name__ == "__main__":
    main()
