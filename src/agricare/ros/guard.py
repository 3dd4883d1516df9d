"""Boundaries for inputs from the network: refusals are counted and reported, a bad message never kills a node.

``SecurityReport`` is one ``/diagnostics`` status per node (``<node>: security``) that says what was refused
and why (signature checks, reset requests from the network, malformed messages); ``guarded`` wraps a
subscription or service callback so an exception is logged, reported and swallowed (the node keeps its safe
state: an input that was not accepted simply goes stale).
"""

from __future__ import annotations

import functools

from agricare.ros.diagnostics import Diagnostics


class SecurityReport:
    """Counts and reports refused inputs of one node on ``/diagnostics``."""

    def __init__(self, node, name: str = "security"):
        self._node = node
        self.diag = Diagnostics(node, name)
        self.counts: dict[str, int] = {}
        self.last: str = ""
        self.diag.ok("no refusals")

    def refused(self, what: str, reason: str, detail: str = "") -> None:
        key = f"{what}.{reason}"
        self.counts[key] = self.counts.get(key, 0) + 1
        self.last = f"refused {what}: {reason}" + (f" ({detail})" if detail else "")
        self._node.get_logger().warning(self.last, throttle_duration_sec=1.0)
        self.diag.warn(self.last, **{f"count.{k}": v for k, v in sorted(self.counts.items())})
        self.diag.publish()

    def accepted(self, what: str) -> None:
        key = f"{what}.accepted"
        self.counts[key] = self.counts.get(key, 0) + 1

    def total(self, prefix: str = "") -> int:
        return sum(v for k, v in self.counts.items() if k.startswith(prefix) and not k.endswith(".accepted"))


def guarded(report: SecurityReport, what: str, fallback=None):
    """Decorator: run a callback; on any exception report ``callback_error`` and return ``fallback(*args)``
    (or None). For service callbacks pass a fallback that fills and returns the response."""

    def wrap(fn):
        if getattr(fn, "_agricare_guarded", False):
            return fn

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # the boundary: one bad message must not kill the node
                report.refused(what, "callback_error", f"{type(exc).__name__}: {str(exc)[:120]}")
                return fallback(*args) if fallback is not None else None

        inner._agricare_guarded = True
        return inner

    return wrap


def guard_callbacks(node) -> int:
    """Put every subscription and service callback of ``node`` behind a reporting boundary (the node's own
    ``security`` report when it has one). Called for every node by ``run_node`` and the embedded runner, so a
    malformed message is reported instead of ending the process. Returns how many callbacks were wrapped."""
    report = getattr(node, "security", None)
    n = 0
    for sub in list(getattr(node, "subscriptions", [])):
        if getattr(sub.callback, "_agricare_guarded", False):
            continue
        if report is None:
            report = node.security = SecurityReport(node)
        sub.callback = _mark(guarded(report, sub.topic_name)(sub.callback))
        n += 1
    for srv in list(getattr(node, "services", [])):
        if getattr(srv.callback, "_agricare_guarded", False) or srv.srv_name.endswith(
                ("/describe_parameters", "/get_parameters", "/set_parameters", "/list_parameters",
                 "/get_parameter_types", "/set_parameters_atomically", "/get_type_description")):
            continue
        if report is None:
            report = node.security = SecurityReport(node)
        response_type = srv.srv_type.Response
        srv.callback = _mark(guarded(report, srv.srv_name, fallback=lambda *_a, t=response_type: t())(srv.callback))
        n += 1
    return n


def _mark(fn):
    fn._agricare_guarded = True
    return fn
