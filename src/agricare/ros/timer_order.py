"""A node's timers that fall due at the same instant run in the order they were created.

rclpy's EventsExecutor keeps each clock's timers in a C++ ``unordered_map`` keyed by the rcl timer's address and,
when the clock jumps (simulated time), dispatches the due ones in that map's order: an order of memory addresses,
different in every process. On simulated time a node's timers often fall due together (a 20 Hz loop and the
1 Hz diagnostics report at every whole second), so which ran first differed from run to run: whether a report
showed the state before or after the loop's update, and where in the step a timer's published command landed
(the embedded runner's row robot graph, measured at t = 1 s). rclpy's SingleThreadedExecutor takes them in
``node.timers`` order; this gives the EventsExecutor the same order.

:func:`order_timers` wraps each timer callback of a node (those taking no argument): the first of the node's
timers dispatched at an instant runs every timer of the node that is due at that instant (same clock,
``is_ready``) in creation order, and marks the others as done for that instant; their own dispatch, which the
executor has already queued, then returns at once. A callback that raises does not keep the others from
running; the first exception is raised once all ran (the executor reports it as before). Timers created later
(or taking ``TimerInfo``) are not wrapped and run as the executor dispatches them.
"""

from __future__ import annotations

import inspect


def order_timers(node) -> int:
    """Wrap ``node``'s timer callbacks as the module describes; returns how many (0 with fewer than two)."""
    group = []
    for tmr in list(getattr(node, "timers", [])):
        cb = tmr.callback
        if cb is None or getattr(cb, "_agricare_ordered", False) or inspect.iscoroutinefunction(cb):
            continue
        try:
            if inspect.signature(cb).parameters:
                continue   # asks for TimerInfo: rclpy passes it, leave it alone
        except (TypeError, ValueError):
            continue
        group.append((tmr, cb))
    if len(group) < 2:
        return 0
    done: dict = {}   # timer -> clock time (ns) of the instant its callback already ran at

    def due_with(fired, now):
        out = []
        for tmr, cb in group:
            if tmr is fired:
                out.append((tmr, cb))
                continue
            try:
                if tmr.clock is fired.clock and done.get(tmr) != now and tmr.is_ready():
                    out.append((tmr, cb))
            except Exception:   # destroyed meanwhile
                continue
        return out

    def wrap(fired):
        def call():
            now = fired.clock.now().nanoseconds
            if done.pop(fired, None) == now:
                return None   # ran already at this instant, in its place
            first_error = None
            for tmr, cb in due_with(fired, now):
                if tmr is not fired:
                    done[tmr] = now
                try:
                    cb()
                except Exception as exc:   # the others still run, as they would have on their own dispatch
                    first_error = first_error or exc
            if first_error is not None:
                raise first_error
            return None

        call.__signature__ = inspect.Signature()
        call._agricare_ordered = True
        call._agricare_fast_timer = True
        return call

    for tmr, _cb in group:
        tmr.callback = wrap(tmr)
    return len(group)
