"""Variable-rate control: look-ahead on the prescription map through the metering lag; the node publishes
implement/rate and the as-applied record carries applied and prescribed rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agricare.core.control.rate import RateActuator, RateController, RateParams
from agricare.core.farmdata.layers import Grid


def _two_zone_map():
    v = np.full((20, 100), 100.0)
    v[:, 50:] = 200.0                       # 100 kg/ha west of x = 50 m, 200 east
    return Grid("rate_kgha", 0.0, 0.0, 1.0, v)


def _drive(lead: bool):
    p = RateParams(actuator_delay_s=0.3, actuator_time_constant_s=0.6)
    ctrl = RateController(p if lead else RateParams(actuator_delay_s=0.0, actuator_time_constant_s=0.0),
                          _two_zone_map())
    act = RateActuator(p, 1)
    speed, dt = 2.5, 0.05
    err = []
    for k in range(int(90 / (speed * dt))):
        x = 5.0 + k * speed * dt
        cmd = ctrl.command(np.array([[x, 10.0]]), 0.0, speed)
        applied = act.step(k * dt, cmd)[0]
        pre = ctrl.prescribed(np.array([[x, 10.0]]))[0]
        err.append(abs(applied - pre) / pre)
    return np.asarray(err[80:])             # after the start-up fill (4 s)


def test_look_ahead_applies_the_prescription_where_it_lands():
    with_lead, without = _drive(True), _drive(False)
    assert np.mean(with_lead <= 0.05) >= 0.93
    assert np.mean(with_lead <= 0.05) > np.mean(without <= 0.05)
    assert np.max(without) > 0.3            # without look-ahead the step lands metres late


def _drive_comp(tau_true: float, speed: float = 3.0):
    """Share of the travel within 5 % of the prescription, lag compensation (nominal lag 0.6 s) against the look-ahead
    alone, the metering's true time constant ``tau_true``."""
    out = []
    for comp in (True, False):
        ctrl = RateController(RateParams(actuator_delay_s=0.3, actuator_time_constant_s=0.6, lag_compensation=comp),
                              _two_zone_map())
        act = RateActuator(RateParams(actuator_delay_s=0.3, actuator_time_constant_s=tau_true), 1)
        dt, err = 0.05, []
        for k in range(int(90 / (speed * dt))):
            x = 5.0 + k * speed * dt
            cmd = ctrl.command(np.array([[x, 10.0]]), 0.0, speed, k * dt)
            assert 0.0 <= cmd[0] <= 1000.0
            applied = act.step(k * dt, cmd)[0]
            pre = ctrl.prescribed(np.array([[x, 10.0]]))[0]
            err.append(abs(applied - pre) / pre)
        out.append(np.asarray(err[80:]))
    return out


def test_lag_compensation_lands_the_zone_change_within_a_step():
    comp, lead = _drive_comp(0.6)
    # the look-ahead alone smears the 100 -> 200 step over metres; the inverted lag lands it within about one
    # control step's travel (0.15 m at 3 m/s) after the dead time's look-ahead
    assert np.sum(comp > 0.05) <= 2 < np.sum(lead > 0.05)
    assert np.mean(comp <= 0.05) > np.mean(lead <= 0.05)
    # a metering 30 % slower or faster than its nominal model: still no worse than the look-ahead alone
    for tau in (0.42, 0.78):
        comp, lead = _drive_comp(tau)
        assert np.mean(comp <= 0.05) >= np.mean(lead <= 0.05)
    # without the command time there is nothing to invert over: the look-ahead setpoint (dead time + lag)
    ctrl = RateController(RateParams(lag_compensation=True), _two_zone_map())
    assert list(ctrl.command(np.array([[48.5, 5.0]]), 0.0, 2.5)) == [200.0]


def test_setpoint_per_section_and_bad_params_refused():
    ctrl = RateController(RateParams(), _two_zone_map())
    r = ctrl.command(np.array([[10.0, 5.0], [60.0, 5.0], [70.0, 5.0]]), math.pi, 0.0)
    assert list(r) == [100.0, 200.0, 200.0]
    # at 2.5 m/s the map is read 2.25 m ahead: a section at x = 48.5 heading east already gets the east rate
    assert list(ctrl.command(np.array([[48.5, 5.0]]), 0.0, 2.5)) == [200.0]
    assert ctrl.prescribed(np.array([[-5.0, 0.0]]))[0] == 0.0
    with pytest.raises(ValueError, match="actuator_delay_s"):
        RateParams(actuator_delay_s=-1)


def test_section_node_publishes_rate_and_records_it(rclpy_context, repo_root, tmp_path):
    pytest.importorskip("shapefile", reason="pyshp not installed (requirements.txt)")
    from nav_msgs.msg import Odometry
    from rclpy.parameter import Parameter

    from agricare.core.farmdata.isoxml import read_timelog
    from agricare.core.farmdata.layers import write_grid_csv
    from agricare.nodes.section_control_node import SectionControlNode
    from agricare.ros.convert import xyyaw_to_pose

    write_grid_csv(_two_zone_map(), tmp_path / "rx.csv")
    node = SectionControlNode(context=rclpy_context, parameter_overrides=[
        Parameter("field_file", value=str(repo_root / "config/fields/field_a.geojson")),
        Parameter("section_widths_m", value=[1.0, 1.0, 1.0]),
        Parameter("prescription_file", value=str(tmp_path / "rx.csv")),
        Parameter("datum_lat_deg", value=36.105), Parameter("datum_lon_deg", value=140.095),
        Parameter("record_period_s", value=0.0001)])
    sent = []
    node._rate_pub.publish = lambda m: sent.append(list(m.data))
    try:
        for k, x in enumerate(np.arange(20.0, 80.0, 0.25)):
            msg = Odometry()
            msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + k // 10, (k % 10) * 100_000_000   # 2.5 m/s
            msg.pose.pose = xyyaw_to_pose(float(x), 10.0, 0.0)
            msg.twist.twist.linear.x = 2.5
            node._on_odom(msg)
        files = node.write_record(tmp_path / "rec")
    finally:
        node.destroy_node()
    assert sent and all(len(s) == 3 for s in sent)
    assert {round(v) for s in sent for v in s} <= {100, 200} and any(v == 200.0 for s in sent for v in s)
    assert any(f.endswith("TLG00001.BIN") for f in files)
    tl = read_timelog(tmp_path / "rec" / "TASKDATA")
    pre = tl["values"][:, tl["ddi"].index(0x06)] / 100.0
    app = tl["values"][:, tl["ddi"].index(0x07)] / 100.0
    on = pre > 0
    assert set(np.unique(pre[on])) <= {100.0, 200.0} and (pre == 200.0).any()
    assert np.mean(np.abs(app[on] - pre[on]) <= 0.05 * pre[on]) >= 0.8
