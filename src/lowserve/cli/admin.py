"""The admin listener (``--metrics``): ``/metrics``, ``/healthz`` and ``/readyz``.

Served by the supervisor, in a thread of its own (the standard library's HTTP
server, one thread per admin connection, each bounded by a timeout), never by a
worker nor on the application's sockets: a handler that blocks its event loop
cannot make the probes lie, and user code never answers them. The thread reads
the supervisor's state through :class:`Health` and the counts through the
:class:`~lowserve.cli.metrics.Fleet`'s lock.

Semantics, as Kubernetes probes expect them:

* ``/healthz`` (liveness) is 200 while the supervisor runs and at least one worker
  serves, draining ones included: a drain is not a failure to restart for.
* ``/readyz`` (readiness) is 200 once every worker of the first start serves, and
  503 from the moment a stop (SIGTERM, SIGINT) begins, so that endpoints are
  removed while the drain runs; also 503 while no worker serves.

Both answer ``HEAD`` too; any other path is 404, any other method 405.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .listeners import Listener
from .metrics import Fleet

__all__ = ["AdminServer", "Health"]

log = logging.getLogger("lowserve.admin")

_TIMEOUT = 10.0  # seconds an admin connection may stay silent


@dataclass
class Health:
    """What the probes read, written by the supervisor's loop."""

    serving: int = 0  #: workers that serve (draining ones included)
    started: bool = False  #: every worker of the first start served
    stopping: bool = False  #: a stop has begun

    def live(self) -> bool:
        return self.serving > 0

    def ready(self) -> bool:
        return self.started and not self.stopping and self.serving > 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _TIMEOUT
    protocol_version = "HTTP/1.1"
    server_version = "lowserve-admin"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        health = self.server.health
        if path == "/metrics":
            try:
                data = self.server.fleet.exposition()
            except Exception:
                log.exception("/metrics failed")
                self._send(500, b"metrics failed\n", body)
                return
            self._send(200, data, body, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/healthz":
            ok = health.live()
            self._send(200 if ok else 503, b"ok\n" if ok else b"no worker serves\n", body)
        elif path == "/readyz":
            ok = health.ready()
            why = b"stopping\n" if health.stopping else b"not serving\n"
            self._send(200 if ok else 503, b"ready\n" if ok else why, body)
        else:
            self._send(404, b"not found: /metrics, /healthz, /readyz\n", body)

    def _not_allowed(self) -> None:
        self._send(405, b"GET or HEAD\n", True, allow=True)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _send(
        self,
        status: int,
        data: bytes,
        body: bool,
        ctype: str = "text/plain; charset=utf-8",
        allow: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("admin: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    health: Health
    fleet: Fleet


class AdminServer:
    """Serves the admin endpoints on *listener* from a daemon thread."""

    def __init__(self, listener: Listener, fleet: Fleet, health: Health) -> None:
        self.listener = listener
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = listener.sock  # bound and listening already
        server.health = health
        server.fleet = fleet
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.25}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()
        if self.listener.owned_path:
            import contextlib
            import os

            with contextlib.suppress(OSError):
                os.unlink(self.listener.owned_path)
