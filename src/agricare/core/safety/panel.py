"""The vehicle's own e-stop and reset inputs: never on the network.

The safe base reads the e-stop state and reset requests from a :class:`LocalPanel` each cycle. What feeds
the panel is local to the vehicle:

- the e-stop circuit read as an input pin by the motor driver (call :meth:`LocalPanel.report`),
- the vehicle's panel process on the same computer, through :class:`UnixPanelServer`: a Unix-domain socket
  in a directory only the vehicle user can enter, and every peer's uid checked (``SO_PEERCRED``) against
  the owner. Lines ``estop 0`` / ``estop 1`` refresh the e-stop state, ``reset`` asks for a reset; the
  answer is one line (``ok ...`` or ``refused ...``),
- in simulation the runner (a simulated panel that is refreshed every step and never pressed).

A network peer has no way to reach any of them; the ROS ``safety/estop`` topic can only *press* the
e-stop (anyone may stop the robot), never release or refresh it.

Times are the caller's (steady clock on a vehicle).
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading


class LocalPanel:
    """E-stop state + reset requests from local inputs (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pressed = False
        self._refreshed_s: float | None = None
        self._reset_requests = 0
        self.reset_results: list[tuple[bool, str]] = []

    def report(self, pressed: bool, now_s: float) -> None:
        """The e-stop circuit's state at ``now_s`` (call at least every ``estop_timeout_s``)."""
        with self._lock:
            self._pressed = bool(pressed)
            self._refreshed_s = float(now_s)

    def request_reset(self) -> None:
        """A person at the vehicle pressed reset (acted on at the next safe-base cycle)."""
        with self._lock:
            self._reset_requests += 1

    def state(self) -> tuple[bool, float | None]:
        """``(pressed, refreshed_at_s)``; ``refreshed_at_s`` None when never reported."""
        with self._lock:
            return self._pressed, self._refreshed_s

    def take_reset_request(self) -> bool:
        with self._lock:
            n, self._reset_requests = self._reset_requests, 0
        return n > 0


class UnixPanelServer:
    """Serve a :class:`LocalPanel` on a Unix-domain socket reachable only by the vehicle's own user.

    Parameters
    ----------
    panel : LocalPanel
    path : str
        Socket path; its directory must belong to this user and not be writable or enterable by others
        (created with mode 0700 if missing).
    clock : callable
        Returns the time used for e-stop refreshes (steady clock).
    """

    def __init__(self, panel: LocalPanel, path: str, clock):
        self.panel, self.path, self.clock = panel, os.fspath(path), clock
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, mode=0o700, exist_ok=True)
        st = os.stat(d)
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise ValueError(f"panel socket directory {d}: must belong to uid {os.getuid()} with mode 0700 "
                             f"(is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})")
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.listen(4)
        self.refused_peers = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="local-panel", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._handle(conn)
                except OSError:
                    continue

    def _handle(self, conn) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            self.refused_peers += 1
            conn.sendall(b"refused: not the vehicle user\n")
            return
        conn.settimeout(1.0)
        data = conn.recv(256).decode("ascii", "replace").strip().lower()
        if data in ("estop 1", "estop 0"):
            self.panel.report(data.endswith("1"), self.clock())
            conn.sendall(b"ok\n")
        elif data == "reset":
            self.panel.request_reset()
            conn.sendall(b"ok: reset requested\n")
        else:
            conn.sendall(b"refused: expected 'estop 0', 'estop 1' or 'reset'\n")

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)
