"""care_site_sim_node: the people at the care places, for the embedded simulator only.

One per shuttle (in its namespace). Staff and guardians answer the shuttle's ``care/site_request``
(agricare_interfaces/SiteRequest from care_mission_node) on ``care/site_answer``: a child boards when the shuttle
stands at the trip's boarding point (``ground_truth/odom``: the simulator's true pose) and the pick-up
window has opened; at a drop-off the receiving person presents a one-time hand-over code issued with the
shared simulation key (``key_file``, the same file handover_node verifies with). Logic and failure
injection (``absent_children``, ``absent_guardians``, ``forged_first``): :mod:`agricare.core.missions.care_sim`.
"""

from __future__ import annotations

import dataclasses
import math
import os

import yaml
from agricare_interfaces.msg import SiteAnswer, SiteRequest
from nav_msgs.msg import Odometry
from rclpy.node import Node

from agricare import paths
from agricare.core.missions.care_sim import CareSite, CareSiteParams
from agricare.core.missions.handover import KeyFileError, load_key, write_key
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import RELIABLE_QOS
from agricare.ros.signed import sign_message


@dataclasses.dataclass(frozen=True)
class CareSiteSimNodeParams:
    """care_site_sim_node parameters (see :class:`~agricare.core.missions.care_sim.CareSiteParams`).

    Attributes
    ----------
    requests_file : str
        The day's requests (children, guardians, windows, boarding points).
    scenario_file : str
        Scenario (the nursery's boarding point for children brought back).
    key_file : str
        Shared hand-over key (mode 0600); created when missing and ``create_key_if_missing``.
    signing_key_file : str
        Ed25519 key of the site's devices (``agricare keys``): answers (agricare_interfaces/SiteAnswer) are
        then signed (kind ``site_answer``, for this namespace's shuttle). Created when missing and
        ``create_key_if_missing``, with ``trust.yaml`` beside it (the shuttle's ``site_trust_file``).
    """

    requests_file: str = ""
    scenario_file: str = "care.yaml"
    key_file: str = ""
    create_key_if_missing: bool = True
    signing_key_file: str = ""
    answer_lifetime_s: float = 60.0
    pose_topic: str = "ground_truth/odom"
    period_s: float = 0.2
    board_delay_s: float = 4.0
    handover_delay_s: float = 4.0
    dock_tolerance_m: float = 1.0
    code_ttl_s: float = 300.0
    absent_children: tuple[str, ...] = ()
    absent_guardians: tuple[str, ...] = ()
    forged_first: tuple[str, ...] = ()
    staff_nursery_id: str = "staff_nursery"

    def __post_init__(self):
        if not self.requests_file:
            raise ValueError("requests_file: must be set")
        if not self.key_file:
            raise ValueError("key_file: must be set (the shared simulation hand-over key)")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"period_s: must be > 0, got {self.period_s!r}")
        self.site_params()  # validates the rest

    def site_params(self) -> CareSiteParams:
        return CareSiteParams(self.board_delay_s, self.handover_delay_s, self.dock_tolerance_m, self.code_ttl_s,
                              tuple(a for a in self.absent_children if a), tuple(a for a in self.absent_guardians if a),
                              tuple(a for a in self.forged_first if a), self.staff_nursery_id)


class CareSiteSimNode(Node):
    """Simulated staff and guardians (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("care_site_sim_node", **kwargs)
        self.params = p = load_params(self, CareSiteSimNodeParams)
        try:
            with open(paths.resolve(p.requests_file)) as f:
                day = yaml.safe_load(f)
            requests = day["requests"]
        except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise ParameterError(f"care_site_sim_node: parameter 'requests_file': {exc}") from None
        nursery = (0.0, 0.0)
        try:
            scen = yaml.safe_load(paths.resolve(p.scenario_file, "config/scenarios").read_text())
            for pl in scen["world"].get("places") or []:
                if pl.get("name") == "nursery" and pl.get("boarding"):
                    nursery = (float(pl["boarding"]["x_m"]), float(pl["boarding"]["y_m"]))
        except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise ParameterError(f"care_site_sim_node: parameter 'scenario_file': {exc}") from None
        try:
            if p.create_key_if_missing and not os.path.exists(p.key_file):
                try:
                    write_key(p.key_file)
                except FileExistsError:
                    pass
            key = load_key(p.key_file)
        except (KeyFileError, OSError) as exc:
            raise ParameterError(f"care_site_sim_node: parameter 'key_file': {exc}") from None
        self.site = CareSite(requests, key, nursery, p.site_params())
        self.signer = None
        if p.signing_key_file:
            try:
                self.signer = self._site_key(str(paths.resolve(p.signing_key_file)))
            except (OSError, ValueError) as exc:
                raise ParameterError(f"care_site_sim_node: parameter 'signing_key_file': {exc}") from None
        self.pose = None
        self.speed = 0.0
        self._pub = self.create_publisher(SiteAnswer, "care/site_answer", RELIABLE_QOS)
        self.create_subscription(SiteRequest, "care/site_request", self._on_request, RELIABLE_QOS)
        self.create_subscription(Odometry, p.pose_topic, self._on_pose, RELIABLE_QOS)
        self.create_timer(p.period_s, self._on_timer)

    def _site_key(self, path: str):
        from agricare.core.security.keys import SigningKey, TrustList, load_signing_key, write_signing_key

        if self.params.create_key_if_missing and not os.path.exists(path):
            directory = os.path.dirname(path)
            key = SigningKey.generate(os.path.splitext(os.path.basename(path))[0])
            try:
                write_signing_key(directory, key)
                trust_path = os.path.join(directory, "trust.yaml")
                trust = TrustList.load(trust_path) if os.path.exists(trust_path) else TrustList()
                trust.trust(key, kinds=["site_answer"]).save(trust_path)
            except FileExistsError:
                pass  # another site node made it a moment ago
        return load_signing_key(path)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_pose(self, msg: Odometry) -> None:
        self.pose = (msg.pose.pose.position.x, msg.pose.pose.position.y)
        self.speed = float(msg.twist.twist.linear.x)

    def _on_request(self, msg: SiteRequest) -> None:
        try:
            self.site.request(msg.type, msg.child, msg.trip, msg.place, self._now_s(),
                              (msg.position.x, msg.position.y), msg.robot)
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().warning(f"bad site request ({msg.type} {msg.child} {msg.trip}): {exc}")

    def _on_timer(self) -> None:
        if self.pose is None:
            return
        for ans in self.site.step(self._now_s(), self.pose, self.speed):
            robot = self.get_namespace().strip("/")
            msg = SiteAnswer(robot=robot, type=str(ans["type"]), child=str(ans.get("child", "")),
                             trip=str(ans.get("trip", "")), guardian=str(ans.get("guardian", "")),
                             code=str(ans.get("code", "")))
            msg.header.stamp = self.get_clock().now().to_msg()
            if self.signer is not None:   # else unsigned: a shuttle with a site trust list refuses it
                sign_message(msg, self.signer, kind="site_answer", target=robot,
                             lifetime_s=self.params.answer_lifetime_s)
            self._pub.publish(msg)
            what = f"{ans['child']} boarded" if ans["type"] == "boarded" else \
                f"{ans['guardian']} presents a code for {ans['child']}"
            self.get_logger().info(f"{what} ({ans['trip']})")


def main(args=None):
    return run_node(CareSiteSimNode, args)


if __name__ == "__main__":
    main()
