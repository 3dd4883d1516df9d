"""In-process node tests: navsat_node + ekf_node pipeline, map_localizer_node, route_planner_node."""

from __future__ import annotations

import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped  # noqa: E402
from nav_msgs.msg import Odometry, Path  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Imu, LaserScan, NavSatFix, NavSatStatus  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402

from agricare.core.geodesy import LocalTangentPlane  # noqa: E402
from agricare.ros.convert import to_stamp, xyyaw_to_pose  # noqa: E402
from agricare.ros.params import ParameterError  # noqa: E402
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402

DATUM = (52.0, 5.0)
SIM = Parameter("use_sim_time", Parameter.Type.BOOL, True)


class Harness:
    """Publishes /clock and sensor messages, collects outputs."""

    def __init__(self, ctx, nodes):
        self.node = Node("harness", context=ctx)
        self.ex = SingleThreadedExecutor(context=ctx)
        for n in [self.node, *nodes]:
            self.ex.add_node(n)
        self.clock = self.node.create_publisher(Clock, "/clock", RELIABLE_QOS)
        self.got: dict[str, list] = {}
        self.t = 1.0

    def pub(self, msg_type, topic, qos=SENSOR_QOS):
        return self.node.create_publisher(msg_type, topic, qos)

    def sub(self, msg_type, topic, qos=SENSOR_QOS):
        self.got[topic] = []
        self.node.create_subscription(msg_type, topic, self.got[topic].append, qos)

    def tick(self, dt=0.02, spins=3):
        self.t += dt
        self.clock.publish(Clock(clock=to_stamp(self.t)))
        for _ in range(spins):
            self.ex.spin_once(timeout_sec=0.005)

    def spin_until(self, cond, max_spins=400):
        for _ in range(max_spins):
            if cond():
                return True
            self.ex.spin_once(timeout_sec=0.01)
        return cond()


def odom_msg(t, v, w, pose):
    m = Odometry()
    m.header.stamp, m.header.frame_id, m.child_frame_id = to_stamp(t), "odom", "base_link"
    m.pose.pose = xyyaw_to_pose(*pose)
    m.twist.twist.linear.x, m.twist.twist.angular.z = v, w
    m.twist.covariance[0], m.twist.covariance[35] = 0.02 ** 2, 0.01 ** 2
    return m


def fix_msg(t, lat, lon, std=0.02, status=NavSatStatus.STATUS_GBAS_FIX, cov_type=2):
    m = NavSatFix(latitude=lat, longitude=lon, altitude=0.0)
    m.header.stamp, m.header.frame_id = to_stamp(t), "gnss_link"
    m.status.status = status
    m.position_covariance = [std ** 2, 0.0, 0.0, 0.0, std ** 2, 0.0, 0.0, 0.0, 1.0]
    m.position_covariance_type = cov_type
    return m


def diag_of(msgs, name):
    out = [s for a in msgs for s in a.status if name in s.name]
    return out[-1] if out else None


def test_navsat_and_ekf_pipeline(rclpy_context):
    from agricare.nodes.ekf_node import EkfNode
    from agricare.nodes.navsat_node import NavSatNode

    nav = NavSatNode(context=rclpy_context, parameter_overrides=[
        SIM, Parameter("datum_lat_deg", value=DATUM[0]), Parameter("datum_lon_deg", value=DATUM[1]),
        Parameter("datum_from_first_fix", value=False)])
    ekf = EkfNode(context=rclpy_context, parameter_overrides=[SIM, Parameter("gnss_timeout_s", value=1.0),
                                                               Parameter("gnss_antenna_offset_m", value=[0.0, 0.0])])
    h = Harness(rclpy_context, [nav, ekf])
    try:
        plane = LocalTangentPlane(*DATUM)
        p_odom, p_fix, p_imu = h.pub(Odometry, "odom"), h.pub(NavSatFix, "gnss/fix"), h.pub(Imu, "imu/data")
        h.sub(Odometry, "odometry/filtered")
        h.sub(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        from tf2_msgs.msg import TFMessage
        h.sub(TFMessage, "/tf", RELIABLE_QOS)
        x0, y0, yaw, v = 10.0, 20.0, 0.5, 2.0
        odom_pose = np.zeros(3)
        rng = np.random.default_rng(0)
        for k in range(300):                                  # 6 s at 50 Hz
            h.tick()
            s = v * (h.t - 1.0)
            x, y = x0 + s * math.cos(yaw), y0 + s * math.sin(yaw)
            odom_pose = np.array([s * 1.01, 0.0, 0.0])
            p_odom.publish(odom_msg(h.t, v * 1.01, 0.0, odom_pose))
            imu = Imu()
            imu.header.stamp = to_stamp(h.t)
            imu.angular_velocity_covariance[8] = 0.003 ** 2
            imu.orientation_covariance[0] = -1.0
            p_imu.publish(imu)
            if k % 10 == 0:
                lat, lon = plane.to_wgs84(x + rng.normal(0, 0.02), y + rng.normal(0, 0.02))
                p_fix.publish(fix_msg(h.t, lat, lon))
        assert h.spin_until(lambda: len(h.got["odometry/filtered"]) > 10)
        est = h.got["odometry/filtered"][-1]
        assert est.header.frame_id == "map" and est.child_frame_id == "base_link"
        t_est = est.header.stamp.sec + est.header.stamp.nanosec * 1e-9
        s_est = v * (t_est - 1.0)                              # truth at the message stamp
        xe, ye = x0 + s_est * math.cos(yaw), y0 + s_est * math.sin(yaw)
        assert math.hypot(est.pose.pose.position.x - xe, est.pose.pose.position.y - ye) < 0.15
        assert h.spin_until(lambda: any(t.header.frame_id == "map" and t.child_frame_id == "odom"
                                        for m in h.got["/tf"] for t in m.transforms))
        # map->odom composes with odom->base_link to the filtered pose
        tf = [t for m in h.got["/tf"] for t in m.transforms][-1]
        t_tf = tf.header.stamp.sec + tf.header.stamp.nanosec * 1e-9
        s_tf = v * (t_tf - 1.0)
        assert abs(tf.transform.translation.x + 1.01 * s_tf * math.cos(yaw) - (x0 + s_tf * math.cos(yaw))) < 0.2
        # bad fixes: NO_FIX, NaN, a 50 m jump
        lat, lon = plane.to_wgs84(x, y)
        p_fix.publish(fix_msg(h.t, lat, lon, status=NavSatStatus.STATUS_NO_FIX))
        p_fix.publish(fix_msg(h.t, math.nan, lon))
        h.tick()
        lat_j, lon_j = plane.to_wgs84(x + 50.0, y)
        p_fix.publish(fix_msg(h.t, lat_j, lon_j))
        assert h.spin_until(lambda: nav.nst.refused["no_fix"] == 1 and nav.nst.refused["not_finite"] == 1
                            and ekf.ekf.stats.rejected["gnss"] >= 1)
        # GNSS goes silent: keeps predicting, reports stale, covariance grows
        cov0 = h.got["odometry/filtered"][-1].pose.covariance[0]
        for _ in range(100):                                  # 2 s with odometry only
            h.tick()
            s = v * (h.t - 1.0)
            p_odom.publish(odom_msg(h.t, v * 1.01, 0.0, [s * 1.01, 0.0, 0.0]))
        assert h.spin_until(lambda: (d := diag_of(h.got["/diagnostics"], "ekf")) is not None
                            and d.level == DiagnosticStatus.WARN and "gnss" in d.message)
        assert h.got["odometry/filtered"][-1].pose.covariance[0] > cov0
        # the clock jumps back: the filter resets with a warning
        h.t = 1.0
        h.tick()
        assert h.spin_until(lambda: ekf.ekf.stats.clock_resets >= 1)
        assert not ekf.ekf.initialized
    finally:
        for n in (nav, ekf, h.node):
            n.destroy_node()


def test_latlon_service(rclpy_context):
    srv = pytest.importorskip("agricare_interfaces.srv")
    from agricare.nodes.navsat_node import NavSatNode

    nav = NavSatNode(context=rclpy_context, parameter_overrides=[
        Parameter("datum_lat_deg", value=DATUM[0]), Parameter("datum_lon_deg", value=DATUM[1]),
        Parameter("datum_from_first_fix", value=False)])
    h = Harness(rclpy_context, [nav])
    try:
        cli = h.node.create_client(srv.LatLonToMap, "latlon_to_map")
        assert h.spin_until(lambda: cli.service_is_ready())
        fut = cli.call_async(srv.LatLonToMap.Request(latitude=52.001, longitude=5.0))
        assert h.spin_until(fut.done)
        r = fut.result()
        assert r.success and abs(r.x) < 1e-6 and 110 < r.y < 112
        fut = cli.call_async(srv.LatLonToMap.Request(latitude=math.nan, longitude=5.0))
        assert h.spin_until(fut.done)
        assert not fut.result().success and "finite" in fut.result().message
    finally:
        nav.destroy_node()
        h.node.destroy_node()


@pytest.mark.parametrize("node_name,param,value", [
    ("ekf", "map_frame", ""), ("ekf", "default_gnss_std_m", -1.0), ("ekf", "odom_frame", "map"),
    ("navsat", "datum_lat_deg", 95.0), ("map_localizer", "map_yaml", "/nonexistent/map.yaml"),
    ("route_planner", "min_turn_radius_m", 0.0), ("route_planner", "zones_yaml", "/nonexistent/z.yaml"),
])
def test_bad_parameters_fail_at_start(rclpy_context, node_name, param, value):
    import importlib
    mod = importlib.import_module(f"agricare.nodes.{node_name}_node")
    cls = {"ekf": "EkfNode", "navsat": "NavSatNode", "map_localizer": "MapLocalizerNode",
           "route_planner": "RoutePlannerNode"}[node_name]
    with pytest.raises(ParameterError) as exc:
        getattr(mod, cls)(context=rclpy_context, parameter_overrides=[Parameter(param, value=value)])
    assert param in str(exc.value), str(exc.value)


def test_map_localizer_node_converges(rclpy_context):
    from agricare.core.geometry import se2_compose
    from agricare.core.localization.synthetic import simulate_scan
    from agricare.nodes.map_localizer_node import MapLocalizerNode

    loc = MapLocalizerNode(context=rclpy_context, parameter_overrides=[
        SIM, Parameter("max_particles", value=1500), Parameter("publish_map", value=False),
        Parameter("laser_pose_in_base", value=[0.0, 0.0, 0.0])])
    h = Harness(rclpy_context, [loc])
    try:
        h.sub(PoseWithCovarianceStamped, "localization/pose")
        p_init = h.pub(PoseWithCovarianceStamped, "initialpose", RELIABLE_QOS)
        p_odom, p_scan = h.pub(Odometry, "odom"), h.pub(LaserScan, "scan")
        truth = np.array([60.0, 100.0, 0.0])
        init = PoseWithCovarianceStamped()
        init.header.frame_id = "map"
        init.pose.pose = xyyaw_to_pose(61.5, 98.68, math.radians(20.0))
        init.pose.covariance[0] = init.pose.covariance[7] = 1.0
        init.pose.covariance[35] = 0.35 ** 2
        p_init.publish(init)
        assert h.spin_until(lambda: loc.pf.initialized)
        odom = np.zeros(3)
        angles = np.linspace(-math.pi, math.pi, 180, endpoint=False)
        for k in range(25):
            h.tick(0.1, spins=1)
            truth, odom = se2_compose(truth, [0.3, 0, 0]), se2_compose(odom, [0.3, 0, 0])
            p_odom.publish(odom_msg(h.t, 3.0, 0.0, odom))
            h.spin_until(lambda: loc._odom is not None and abs(loc._odom[0] - h.t) < 1e-6, 50)
            scan = LaserScan(angle_min=-math.pi, angle_increment=2 * math.pi / 180, range_min=0.1,
                             range_max=30.0)
            scan.header.stamp, scan.header.frame_id = to_stamp(h.t), "laser"
            r = simulate_scan(loc.grid, truth, angles, 30.0, 0.02, seed=k)
            scan.ranges = [float(v) if math.isfinite(v) else math.inf for v in r]
            p_scan.publish(scan)
            n = len(h.got["localization/pose"])
            h.spin_until(lambda n=n: len(h.got["localization/pose"]) > n, 100)
        est = h.got["localization/pose"][-1].pose.pose.position
        assert math.hypot(est.x - truth[0], est.y - truth[1]) < 0.2
    finally:
        loc.destroy_node()
        h.node.destroy_node()


def test_route_planner_node(rclpy_context):
    from agricare.core.planning.grid import load_zones
    from agricare.nodes.route_planner_node import RoutePlannerNode

    node = RoutePlannerNode(context=rclpy_context)
    h = Harness(rclpy_context, [node])
    try:
        zones = load_zones("config/maps/town_zones.yaml")
        h.sub(Path, "plan", LATCHED_QOS)
        h.sub(Float32MultiArray, "plan_speed_limits", LATCHED_QOS)
        h.sub(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        p_pose, p_goal = h.pub(Odometry, "odometry/filtered"), h.pub(PoseStamped, "goal_pose", RELIABLE_QOS)
        goal = PoseStamped()
        goal.header.frame_id = "map"
        goal.pose = xyyaw_to_pose(*zones.places["nursery"])
        p_goal.publish(goal)                                  # no pose yet: empty plan + error
        assert h.spin_until(lambda: len(h.got["plan"]) == 1)
        assert len(h.got["plan"][0].poses) == 0
        start = Odometry()
        start.header.frame_id = "map"
        start.pose.pose = xyyaw_to_pose(*zones.places["home_4"])
        p_pose.publish(start)
        assert h.spin_until(lambda: node._pose is not None)
        p_goal.publish(goal)
        assert h.spin_until(lambda: len(h.got["plan"]) == 2 and len(h.got["plan_speed_limits"]) == 2)
        plan, speeds = h.got["plan"][1], h.got["plan_speed_limits"][1]
        assert plan.header.frame_id == "map" and len(plan.poses) > 100 and len(speeds.data) == len(plan.poses)
        assert min(speeds.data) <= 1.5                        # passes the school zone
        goal.pose = xyyaw_to_pose(0.5, 100.0, 0.0)            # inside the boundary wall
        p_goal.publish(goal)
        assert h.spin_until(lambda: len(h.got["plan"]) == 3)
        assert len(h.got["plan"][2].poses) == 0
        assert h.spin_until(lambda: (d := diag_of(h.got["/diagnostics"], "route_planner")) is not None
                            and d.level == DiagnosticStatus.ERROR)
    finally:
        node.destroy_node()
        h.node.destroy_node()
