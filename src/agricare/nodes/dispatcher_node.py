"""dispatcher_node: plans the care shuttles' day and re-plans on events.

At start it reads ``requests_file`` (the ``agricare dispatch`` YAML, metadata allowed), solves it and
publishes the plan on ``dispatch/plan`` (agricare_interfaces/DispatchPlan, latched: revision, reason, one
route of stops per vehicle, the requests' children, guardians, places and markers, the unserved requests
with their reasons; :func:`agricare.ros.convert.plan_msg_to_dict` gives the plan dict). Events arrive on
``dispatch/events`` (std_msgs/String JSON, reliable):

- ``{"type": "vehicle_state", "vehicle": "shuttle_1", "xy": [x, y], "ready_s": t, "onboard": [[request, boarded_s]]}``
  (stored; used at the next re-plan),
- ``{"type": "completed", "request": id}`` (stored),
- ``{"type": "new_request", "request": {<one request of the YAML>}}`` -> re-plan,
- ``{"type": "cancel", "request": id}`` -> re-plan,
- ``{"type": "out_of_service", "vehicle": id}`` -> re-plan (its children become rescue pick-ups),
- ``{"type": "replan", "reason": "..."}`` -> re-plan with what is known (a shuttle refused its plan or
  dropped stops: its ``replan_requested`` notification; send its ``vehicle_state`` first).

Every event may carry ``"now_s"``: the current time in the requests' time base (default: the node
clock, i.e. sim time under ``use_sim_time``). Children on board stay on their shuttle. Unserved
requests are in the plan with their reason and on ``/diagnostics`` (warn). A malformed event is
refused with a diagnostics warning, never half-applied.

With ``signing_key_file`` (an Ed25519 key of ``agricare keys``) the plan's signature block is filled (kind
``dispatch_plan``, valid ``signed_lifetime_s``; :mod:`agricare.ros.signed`): the shuttles' care_mission_node
accepts only plans signed by a key of its trust list. Events are accepted only as signed envelopes (kind
``dispatch_event``, payload = the event) from a key of ``events_trust_file`` (required): a peer can neither
add, cancel nor take a shuttle out of service.
"""

from __future__ import annotations

import dataclasses
import json
import math

from agricare_interfaces.msg import DispatchPlan
from rclpy.node import Node
from std_msgs.msg import String

from agricare import paths
from agricare.core.planning.dispatch import Problem, VehicleState, replan, request_meta, solve
from agricare.ros.convert import plan_dict_to_msg
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.guard import SecurityReport
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import LATCHED_QOS, RELIABLE_QOS
from agricare.ros.signed import sign_message


@dataclasses.dataclass(frozen=True)
class DispatcherNodeParams:
    """dispatcher_node parameters.

    Attributes
    ----------
    requests_file : str
        REQUESTS.yaml of the day.
    time_limit_s : float
        Search time limit per (re-)plan, s (0: automatic by size; for ``alns`` a cap on its iteration budget).
    method : str
        ``alns`` (adaptive large neighbourhood search), ``ortools`` or ``greedy``.
    """

    requests_file: str = ""
    time_limit_s: float = 2.0
    method: str = "alns"
    signing_key_file: str = ""
    signed_lifetime_s: float = 3600.0
    events_trust_file: str = ""
    command_replay_file: str = ""   # the events' sequence numbers across restarts (required)

    def __post_init__(self):
        if not self.requests_file:
            raise ValueError("requests_file: must be set")
        if not (math.isfinite(self.time_limit_s) and self.time_limit_s >= 0):
            raise ValueError(f"time_limit_s: must be >= 0, got {self.time_limit_s!r}")
        if not self.events_trust_file:
            raise ValueError("events_trust_file: must be set (only signed dispatch events are accepted)")
        if not self.command_replay_file:
            raise ValueError("command_replay_file: must be set (a dispatch event must not be replayable after a "
                             "restart)")
        if self.method not in ("alns", "ortools", "greedy"):
            raise ValueError(f"method: expected 'alns', 'ortools' or 'greedy', got {self.method!r}")


class DispatcherNode(Node):
    """Fleet dispatcher (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("dispatcher_node", **kwargs)
        import yaml

        self.params = load_params(self, DispatcherNodeParams)
        try:
            with open(paths.resolve(self.params.requests_file)) as f:
                data = yaml.safe_load(f)
            self.problem = Problem.from_dict(data)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ParameterError(f"dispatcher_node: parameter 'requests_file': {exc}") from None
        self.meta = request_meta(data)
        self.signing_key = None
        if self.params.signing_key_file:
            from agricare.core.security.keys import KeyFileError, load_signing_key

            try:
                self.signing_key = load_signing_key(paths.resolve(self.params.signing_key_file))
            except (KeyFileError, OSError, ValueError) as exc:
                raise ParameterError(f"dispatcher_node: parameter 'signing_key_file': {exc}") from None
        self.states: dict[str, VehicleState] = {}
        self.completed: set[str] = set()
        self.revision = 0
        self.solution = None
        self.diag = Diagnostics(self, "dispatcher")
        self._pub = self.create_publisher(DispatchPlan, "dispatch/plan", LATCHED_QOS)
        from agricare.core.security.commands import CommandVerifier
        from agricare.core.security.keys import TrustList

        try:
            self.events_verifier = CommandVerifier(TrustList.load(paths.resolve(self.params.events_trust_file)),
                                                   ["dispatch_event"], state_file=self.params.command_replay_file)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"dispatcher_node: parameter 'events_trust_file': {exc}") from None
        self.security = SecurityReport(self)
        self.create_subscription(String, "dispatch/events", self._on_event, RELIABLE_QOS)
        self._plan(self.problem, "initial plan")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _plan(self, problem: Problem, reason: str) -> None:
        limit = self.params.time_limit_s or None
        self.problem = problem
        self.solution = solve(problem, method=self.params.method, time_limit_s=limit)
        self.revision += 1
        plan = {"revision": self.revision, "reason": reason, "solution": self.solution.to_json(), "meta": self.meta}
        msg = plan_dict_to_msg(plan, self.get_clock().now().to_msg())
        if self.signing_key is not None:
            sign_message(msg, self.signing_key, kind="dispatch_plan", lifetime_s=self.params.signed_lifetime_s)
        self._pub.publish(msg)
        n_un = len(self.solution.unserved)
        text = f"plan {self.revision} ({reason}): {len(problem.requests) - n_un} served, {n_un} unserved"
        (self.diag.warn if n_un else self.diag.ok)(text, distance_m=round(self.solution.distance_m, 1))
        self.get_logger().info(text)

    def _on_event(self, msg: String) -> None:
        import time

        from agricare.core.security.commands import CommandRejected

        try:
            ev = self.events_verifier.verify(msg.data, time.time()).payload
        except CommandRejected as exc:
            self.security.refused("dispatch_event", exc.reason, exc.detail)
            return
        self.security.accepted("dispatch_event")
        msg = String(data=json.dumps(ev))
        try:
            ev = json.loads(msg.data)
            kind = ev["type"]
            now = float(ev["now_s"]) if "now_s" in ev else self._now_s()
            if kind == "vehicle_state":
                vid = str(ev["vehicle"])
                self.problem.vehicle(vid)
                self.states[vid] = VehicleState(vid, tuple(ev["xy"]), float(ev.get("ready_s", now)),
                                                tuple((str(r), float(t)) for r, t in ev.get("onboard", [])))
                return
            if kind == "completed":
                self.completed.add(str(ev["request"]))
                return
            kwargs = {}
            if kind == "new_request":
                r = dict(ev["request"])
                self.meta[str(r["id"])] = request_meta({"requests": [r]})[str(r["id"])]
                one = Problem.from_dict({"speed_mps": self.problem.speed_mps, "vehicles": [], "requests": [r]})
                kwargs["new_requests"] = one.requests
            elif kind == "cancel":
                kwargs["cancelled"] = [str(ev["request"])]
            elif kind == "out_of_service":
                kwargs["out_of_service"] = [str(ev["vehicle"])]
            elif kind == "replan":
                kind = f"replan: {str(ev.get('reason', ''))[:200]}"
            else:
                raise ValueError(f"unknown event type {kind!r}")
            states = [s for vid, s in self.states.items() if vid in {v.vehicle_id for v in self.problem.vehicles}]
            problem = replan(self.problem, now_s=now, states=states, completed=self.completed, **kwargs)
        except (ValueError, KeyError, TypeError) as exc:
            self.diag.warn(f"refused dispatch event: {exc}")
            self.get_logger().warning(f"refused dispatch event {msg.data[:200]!r}: {exc}")
            return
        self.completed.clear()
        self._plan(problem, kind)


def main(args=None):
    return run_node(DispatcherNode, args)


if __name__ == "__main__":
    main()
