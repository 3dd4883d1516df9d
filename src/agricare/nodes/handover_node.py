"""handover_node: offline verification of one-time hand-over codes on the shuttle.

Service ``verify_handover`` (agricare_interfaces/srv/VerifyHandover: code, child_id, guardian_id,
trip_id -> accepted, reason). Every check is published on ``handover/events``
(agricare_interfaces/msg/HandoverEvent, reliable, action ``verify``) and, when ``audit_log`` is set,
recorded in the hash-chained audit log before the answer goes out: an accepted code whose record cannot be
written (full disk...) is refused (``audit_failure``), so no child is released without its record.
Used nonces are persisted to ``used_nonces_file`` (fsync) so a code works once even across restarts.

The key file is refused when group or others can access it (mode & 0o077): the node then fails at start
with one clear line. Code expiry uses the node clock (sim time under ``use_sim_time``); a clock wound back
before the latest time seen (kept in ``<used_nonces_file>.latest_time``) or not finite refuses every code.
The care shuttle verifies codes itself (care_mission_node); this node serves other verifiers (a kiosk).
"""

from __future__ import annotations

import dataclasses
import math
import os

from rclpy.node import Node

from agricare import paths

from agricare.core.missions.audit import AuditError, AuditLog, AuditWriteError
from agricare.core.missions.handover import HandoverVerifier, KeyFileError, Verdict, load_key, write_key
from agricare.ros.diagnostics import Diagnostics
from agricare.ros.node_main import run_node
from agricare.ros.params import ParameterError, load_params
from agricare.ros.qos import RELIABLE_QOS


@dataclasses.dataclass(frozen=True)
class HandoverNodeParams:
    """handover_node parameters.

    Attributes
    ----------
    key_file : str
        Shared HMAC key (hex); must be mode 0600 (or stricter).
    create_key_if_missing : bool
        Create a fresh 0600 key file when missing (simulation / first set-up only).
    manifest_file : str
        Optional YAML ``trips: {trip_id: [[child_id, guardian_id], ...]}``: authorised pairs per trip.
    used_nonces_file : str
        Where used code nonces are appended (required).
    audit_log : str
        Hash-chained audit log for hand-over checks (empty: none).
    robot : str
        Shuttle name recorded with each event.
    """

    key_file: str = ""
    create_key_if_missing: bool = False
    manifest_file: str = ""
    used_nonces_file: str = ""
    audit_log: str = ""
    audit_key_file: str = ""
    robot: str = ""

    def __post_init__(self):
        if not self.key_file:
            raise ValueError("key_file: must be set (path of the hand-over key, mode 0600)")
        if not self.used_nonces_file:
            raise ValueError("used_nonces_file: must be set (a code must work once, also after a restart)")


def load_manifest(path: str) -> dict[str, list[tuple[str, str]]]:
    """Read ``trips: {trip: [[child, guardian], ...]}`` from YAML."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    trips = data.get("trips", {}) if isinstance(data, dict) else None
    if not isinstance(trips, dict):
        raise ValueError(f"{path}: expected 'trips: {{trip_id: [[child_id, guardian_id], ...]}}'")
    out = {}
    for trip, pairs in trips.items():
        out[str(trip)] = []
        for p in pairs or []:
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise ValueError(f"{path}: trip {trip}: expected [child_id, guardian_id], got {p!r}")
            out[str(trip)].append((str(p[0]), str(p[1])))
    return out


class HandoverNode(Node):
    """Hand-over code verifier node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("handover_node", **kwargs)
        from agricare_interfaces.msg import HandoverEvent
        from agricare_interfaces.srv import VerifyHandover

        self._Event = HandoverEvent
        self.params = load_params(self, HandoverNodeParams)
        p = self.params
        try:
            if p.create_key_if_missing and not os.path.exists(p.key_file):
                write_key(p.key_file)
                self.get_logger().warn(f"created a new hand-over key {p.key_file}")
            key = load_key(p.key_file)
        except (KeyFileError, OSError) as exc:
            raise ParameterError(f"handover_node: parameter 'key_file': {exc}") from None
        manifest = None
        if p.manifest_file:
            try:
                manifest = load_manifest(p.manifest_file)
            except (OSError, ValueError) as exc:
                raise ParameterError(f"handover_node: parameter 'manifest_file': {exc}") from None
        used = []
        if p.used_nonces_file and os.path.exists(p.used_nonces_file):
            with open(p.used_nonces_file) as f:
                used = [line.strip() for line in f if line.strip()]
        self.verifier = HandoverVerifier(key, manifest, used)
        self.audit = None
        if p.audit_log:
            try:
                signer = None
                if p.audit_key_file:
                    from agricare.core.security.keys import load_signing_key

                    signer = load_signing_key(paths.resolve(p.audit_key_file))
                self.audit = AuditLog.open(p.audit_log, signer=signer, t_s=self.get_clock().now().nanoseconds * 1e-9)
            except (AuditError, OSError, ValueError) as exc:
                raise ParameterError(f"handover_node: parameter 'audit_log' / 'audit_key_file': {exc}") from None
        self.diag = Diagnostics(self, "handover")
        self._pub = self.create_publisher(HandoverEvent, "handover/events", RELIABLE_QOS)
        self.create_service(VerifyHandover, "verify_handover", self._on_verify)
        self.n_accepted = 0
        self.n_refused = 0
        self._latest_path = p.used_nonces_file + ".latest_time"
        self._latest_s = -math.inf
        if os.path.exists(self._latest_path):
            try:
                self._latest_s = float(open(self._latest_path).read().strip())
            except (OSError, ValueError) as exc:
                raise ParameterError(f"handover_node: {self._latest_path}: unreadable ({exc})") from None
        self.diag.ok("ready", used_nonces=len(used))

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _persist_nonce(self, nonce_hex: str) -> None:
        if not self.params.used_nonces_file:
            return
        fd = os.open(self.params.used_nonces_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (nonce_hex + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _time_ok(self, now: float) -> bool:
        """Refuse a non-finite clock or one wound back before the latest time seen (persisted)."""
        if not math.isfinite(now) or now < self._latest_s - 1.0:
            return False
        if now > self._latest_s:
            self._latest_s = now
            tmp = self._latest_path + ".tmp"
            with open(tmp, "w") as f:
                f.write(repr(now))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._latest_path)
        return True

    def _on_verify(self, request, response):
        now = self._now_s()
        if not self._time_ok(now):
            v = Verdict(False, "clock_rewound", f"time {now!r} is before {self._latest_s:.0f} s already seen")
        else:
            v = self.verifier.verify(request.code, request.child_id, request.guardian_id, request.trip_id, now,
                                     consume=False)
        accepted, reason = v.accepted, str(v)
        if accepted:
            try:
                self._persist_nonce(v.nonce_hex)
            except OSError as exc:
                accepted, reason = False, f"nonce_store_failure: {exc.strerror}; cannot guarantee one-time use"
        if self.audit is not None and self.audit.failed is None:
            try:
                self.audit.append("handover_check", now, robot=self.params.robot, trip=request.trip_id,
                                  child=request.child_id, guardian=request.guardian_id, accepted=accepted,
                                  reason=reason, nonce=v.nonce_hex)
            except AuditWriteError as exc:
                accepted, reason = False, f"audit_failure: {exc}"
        elif self.audit is not None:
            accepted, reason = False, f"audit_failure: {self.audit.failed}"
        if accepted:
            self.verifier.used.add(v.nonce_hex)
            self.n_accepted += 1
        else:
            self.n_refused += 1
        if reason.startswith("audit_failure") or reason.startswith("nonce_store_failure"):
            self.diag.error(reason)
        else:
            self.diag.ok("ready", accepted=self.n_accepted, refused=self.n_refused)
        response.accepted = accepted
        response.reason = reason
        ev = self._Event()
        ev.header.stamp = self.get_clock().now().to_msg()
        ev.trip_id, ev.child_id, ev.guardian_id = request.trip_id, request.child_id, request.guardian_id
        ev.action, ev.accepted, ev.reason = "verify", accepted, reason
        self._pub.publish(ev)
        self.get_logger().info(f"hand-over {request.child_id} -> {request.guardian_id} ({request.trip_id}): "
                               f"{'accepted' if accepted else 'refused'} {reason}")
        return response

    def on_shutdown(self) -> None:
        if self.audit is not None:
            self.audit.close()


def main(args=None):
    return run_node(HandoverNode, args)


if __name__ == "__main__":
    main()
