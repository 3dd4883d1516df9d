"""EKF on a short simulator drive (core/sim): RTK tractor, inputs converted as the nodes convert them."""

from __future__ import annotations

import math

import numpy as np

from agricare.core.localization.ekf import EkfParams
from agricare.core.localization.navsat import NavSatParams
from agricare.core.localization.sim_feed import EkfFeed
from agricare.core.sim.scenarios import scenario_dict
from agricare.core.sim.world import World


def test_ekf_on_a_simulated_rtk_drive():
    cfg = scenario_dict([{"name": "tractor", "type": "tractor", "start": {"x_m": 0.0, "y_m": 0.0, "yaw_deg": 30.0},
                          "sensors": {"gnss": {"mode": "rtk", "rate_hz": 10.0}, "scan": False, "battery": False}}],
                        terrain={"slope_y": 0.02, "undulation_amplitude_m": 0.1})
    world = World.from_scenario(cfg, seed=3)
    d = cfg["world"]["datum"]
    gp = world.robots["tractor"].gnss.params
    feed = EkfFeed(EkfParams(gnss_antenna_offset_m=(gp.antenna_x_m, gp.antenna_y_m)),
                   NavSatParams(datum_from_first_fix=False, datum_lat_deg=d["lat_deg"], datum_lon_deg=d["lon_deg"],
                                datum_alt_m=d["alt_m"]))
    errs, t_init = [], None
    while world.t_s < 24.0:
        t = world.t_s
        world.set_command("tractor", min(3.0, 0.5 + t), 0.0 if t < 10.0 else 0.25 * math.sin(0.5 * (t - 10.0)))
        world.step(0.01)
        for smp in world.sensors_due():
            feed.feed(smp.kind, smp.reading)
            if smp.kind == "ground_truth" and feed.ekf.initialized:
                t_init = smp.reading.t_s if t_init is None else t_init
                if smp.reading.t_s > t_init + 2.0:
                    truth = world.pose("tractor")
                    errs.append(math.hypot(*(feed.pose()[:2] - truth[:2])))
    assert t_init is not None and t_init < 5.0, t_init          # heading from the course after a few metres
    rmse = float(np.sqrt(np.mean(np.square(errs))))
    assert rmse < 0.05, rmse
    assert feed.ekf.stats.rejected["gnss"] == 0                 # every RTK fix consistent with the filter
    assert feed.ekf.stats.accepted["gnss"] > 150 and feed.fixes_refused == 0
