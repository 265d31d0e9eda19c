"""One worker process: serve the handler on inherited sockets until told to stop.

A worker is started by the supervisor as ``python -m lowserve.cli.worker`` with the
configuration in ``LOWSERVE_WORKER_CONFIG``, its listening sockets at the fds in
``LOWSERVE_WORKER_FDS`` and a status pipe at ``LOWSERVE_WORKER_STATUS_FD``. On the
pipe it writes ``R`` once it serves, ``H`` as a heartbeat from its event loop (so
the supervisor can tell systemd's watchdog that every loop is alive) and ``Q`` when
``--max-requests`` is reached and it begins to drain (so a replacement starts at once).
It stops gracefully on SIGTERM, and gets one when the supervisor dies.

Exit codes: 0 after a graceful stop, 2 when the handler cannot be loaded, 3 when
serving cannot start, 1 for anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import random
import signal
import socket
import ssl
import sys

from .. import listening
from ..conn.metrics import RequestMetrics, snapshot
from ..conn.server import Server
from ..runner import ServerRunner, SockSite
from ..serve import new_event_loop
from .config import Config, Exit, TLSOptions
from .heap import keep_heap
from .loader import LoadError, load_handler
from .logconfig import setup_logging
from .proctitle import set_title

__all__ = ["main", "serve_config"]

log = logging.getLogger("lowserve.worker")
_PR_SET_PDEATHSIG = 1


class _StatusLine:
    """The worker's side of its pipe to the supervisor: one byte per event (``R``
    serving, ``Q`` recycling, ``H`` alive). A pipe that fails means the supervisor is
    gone, and the worker stops."""

    def __init__(self, fd: int | None, stop: asyncio.Event) -> None:
        self.fd = fd
        self.stop = stop

    def tell(self, code: bytes) -> None:
        if self.fd is not None:
            try:
                os.write(self.fd, code)
            except OSError:
                self.stop.set()


def _arm_recycling(server: Server, config: Config, line: _StatusLine, stop: asyncio.Event) -> None:
    """Stop after ``max_requests`` responses (plus up to ``max_requests_jitter``)."""
    limit = config.max_requests
    if not limit:
        return
    if config.max_requests_jitter:
        limit += random.randint(0, config.max_requests_jitter)

    def recycle() -> None:
        # Checked as each response is counted: the drain starts within a request of
        # the limit. The supervisor starts the replacement on "Q", before we drain.
        log.info("served %d requests: recycling this worker", server.requests_count)
        line.tell(b"Q")
        stop.set()

    server.requests_limit = limit
    server.on_requests_limit = recycle


_REPORT_EVERY = 1.0  # seconds between two metrics snapshots


class _Reporter:
    """Sends this worker's counts to the supervisor (``--metrics``), off the hot path:
    a timer, once a second, sends one datagram of totals (see lowserve.cli.metrics);
    the timer's own lateness is a loop-lag sample when the sweeper is idle."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.recorder: RequestMetrics = server.record_metrics()
        self.sock = sock
        sock.setblocking(False)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + _REPORT_EVERY
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        self.server.note_loop_lag(asyncio.get_running_loop().time() - self._due)
        self.send()
        self._schedule()

    def send(self) -> None:
        """One snapshot; skipped when the supervisor has not read the last ones."""
        data = json.dumps(snapshot(self.server, self.recorder)).encode()
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            self.sock.send(data)

    def close(self) -> None:
        """The last snapshot (after the drain), sent even if it has to wait a little."""
        if self._handle is not None:
            self._handle.cancel()
        self.sock.settimeout(1.0)
        data = json.dumps(snapshot(self.server, self.recorder)).encode()
        with contextlib.suppress(OSError):
            self.sock.send(data)
        self.sock.close()


async def _serve_until_stopped(
    stop: asyncio.Event, line: _StatusLine, heartbeat: float | None, parent: int | None
) -> None:
    """Wait for *stop*, beating every *heartbeat* seconds, and watching *parent*."""
    tick = min(heartbeat or 1.0, 1.0)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), tick)
        except asyncio.TimeoutError:
            pass
        if heartbeat:
            line.tell(b"H")
        if parent is not None and os.getppid() != parent:
            log.warning("the supervisor (pid %d) is gone: stopping", parent)
            break


async def serve_config(
    config: Config,
    sockets: list[socket.socket],
    *,
    status_fd: int | None = None,
    heartbeat: float | None = None,
    parent: int | None = None,
    metrics_fd: int | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (or ``max_requests``); return the exit code."""
    loop = asyncio.get_running_loop()
    handler = await load_handler(config.handler, factory=config.factory, app_dir=config.app_dir)
    try:
        ssl_context = config.tls.context() if config.tls else None
    except (OSError, ssl.SSLError, ValueError) as exc:
        print(f"Error: {TLSOptions.load_error(exc)}", file=sys.stderr)
        return Exit.START
    server = Server(handler, options=config.server_options())
    reporter = None
    if metrics_fd is not None:
        reporter = _Reporter(server, socket.socket(fileno=metrics_fd))
    runner = ServerRunner(server, shutdown_timeout=config.shutdown_timeout)
    await runner.setup()
    # What start-up made (the handler's modules, lowserve's) lives as long as the worker:
    # out of the collector's generations, a full collection no longer walks it. Measured
    # at 1,024 new connections on one worker (bench/PROFILE.md, round 6): without this,
    # a 40-48 ms full collection landed in the first burst; with it, those first requests
    # took 108-125 us of the server's time instead of 177.
    gc.collect()
    gc.freeze()
    keep_heap()  # a turn's freed bodies stay mapped for the next (cli/heap.py)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # One worker has the sockets to itself: it accepts in large bursts (the tail at a
    # thousand connections); several share them, and each takes a few at a time.
    burst = listening.ACCEPT_BURST if config.workers == 1 else listening.SHARED_ACCEPT_BURST
    for sock in sockets:
        await SockSite(
            runner, sock, ssl_context=ssl_context, backlog=config.backlog, accept_burst=burst
        ).start()
    line = _StatusLine(status_fd, stop)
    line.tell(b"R")
    _arm_recycling(server, config, line, stop)
    if reporter is not None:
        reporter.start()
    await _serve_until_stopped(stop, line, heartbeat, parent)
    await runner.cleanup()
    if reporter is not None:
        reporter.close()
    log.info(
        "stopped: %d request(s) answered while draining, %d handler(s) cancelled",
        server.drained_count,
        server.cancelled_count,
    )
    return Exit.OK


def die_with_parent(parent: int) -> None:
    """Get SIGTERM (a graceful stop) when the supervisor dies, however it dies.

    ``PR_SET_PDEATHSIG`` where Linux has it; the serve loop also compares
    ``os.getppid()`` with *parent* once a second, which covers the rest (and a
    supervisor that died before this call).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    config = Config.from_json(os.environ.pop("LOWSERVE_WORKER_CONFIG"))
    number = os.environ.get("LOWSERVE_WORKER_NUMBER", "?")
    set_title(f"lowserve worker {number} [{config.handler}]")
    fds = [int(x) for x in os.environ.pop("LOWSERVE_WORKER_FDS", "").split(",") if x]
    status = os.environ.pop("LOWSERVE_WORKER_STATUS_FD", "")
    beat = os.environ.pop("LOWSERVE_WORKER_HEARTBEAT", "")
    parent = os.environ.pop("LOWSERVE_WORKER_PARENT", "")
    metrics = os.environ.pop("LOWSERVE_WORKER_METRICS_FD", "")
    if parent:
        die_with_parent(int(parent))
    setup_logging(
        config.log_level,
        config.log_config,
        process=f"worker {os.getpid()}",
        bare_access=config.server.access_log_format == "json",
    )
    sockets = [socket.socket(fileno=fd) for fd in fds]
    loop = new_event_loop()
    try:
        code = loop.run_until_complete(
            serve_config(
                config,
                sockets,
                status_fd=int(status) if status else None,
                heartbeat=float(beat) if beat else None,
                parent=int(parent) if parent else None,
                metrics_fd=int(metrics) if metrics else None,
            )
        )
    except LoadError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        code = Exit.USAGE
    finally:
        loop.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
