"""``Server``: the protocol factory, its connection registry, and graceful shutdown.

One sweeper callback per server, about once a second (sooner for short
timeouts), checks every connection's deadline: no timer handle is created or
cancelled per request. A pass checks at most ``SWEEP_SLICE`` connections per turn of
the loop and goes on in the next turns, so its stall stays bounded however many
connections are open.

Small answers computed during a loop iteration are written at its end, together
(``schedule_flush``), or in batches of ``FLUSH_BATCH`` connections when a poll
brought more, so that none waits for a thousand others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..api.accesslog import AccessLogger, ExcludingAccessLogger
from ..api.request import BaseRequest
from ..api.response import StreamResponse
from ..options import ServerOptions
from ..wire.proxy import TrustedPeers
from .metrics import RequestMetrics
from .protocol import HttpProtocol
from .state import ConnState, Deadlines

if TYPE_CHECKING:

    class _Served(HttpProtocol, asyncio.Protocol):
        """For type checkers, what a server makes is an ``asyncio.Protocol`` (the loop
        takes the server as a protocol factory). At run time HttpProtocol does not
        subclass it: compiled, it cannot (see ``lowserve.conn.protocol``)."""


__all__ = ["Server"]

log = logging.getLogger("lowserve.server")

_FD_RESERVE = 16  # descriptors kept free for accept(), files, and the loop itself
#: Connections a sweep checks per turn of the loop: ~1.3 µs each (measured in memory,
#: loaded machine), so a turn's share stays ~1 ms; one pass over 10,000 idle
#: connections was a 13 ms stall.
SWEEP_SLICE = 1000
#: Connections whose answers wait for the end of a loop iteration, at most: once
#: more answer, those before are written. Writing an iteration's answers together keeps
#: a busy server's client in step with it (written as each was made, hello cost 1.5x
#: the CPU per request here, at 64 connections); holding them all made one wait for
#: every other, ~30 ms at 1,024 connections (p99 there, 10 runs each: 91.9 ms without
#: this bound, 86.6 with it; bench/PROFILE.md, round 10).
FLUSH_BATCH = 64
_WARN_EVERY = 10.0  # seconds between two WARNING lines about one kind of refusal
#: The per-connection counts a server totals (``Server.traffic``).
_TRAFFIC = (
    "bytes_read",
    "bytes_written",
    "keepalive_requests",
    "ws_received",
    "ws_sent",
)

Handler = Callable[[BaseRequest], Awaitable[StreamResponse]]


class Flushable(Protocol):
    """A connection whose queued output the server writes at the end of an iteration."""

    def flush_out(self) -> None: ...


class Server:
    """Serves *handler* on every connection a listening socket accepts.

    Pass it to ``loop.create_server`` directly, or to a :class:`ServerRunner`.
    Keyword options are those of :class:`~lowserve.options.ServerOptions`.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        request_factory: Callable[..., BaseRequest] | None = None,
        handler_cancellation: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        options: ServerOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if options is None:
            options = ServerOptions(handler_cancellation=handler_cancellation, **kwargs)
        elif kwargs:
            raise TypeError("pass either options= or keyword options, not both")
        self.options = options
        #: Whose proxy headers are believed (``forwarded_allow_ips``, parsed once).
        self.trusted_proxies = TrustedPeers(options.forwarded_allow_ips)
        #: Where handler errors and refusals are logged (aiohttp's ``logger``).
        self.logger: logging.Logger = options.logger or log
        self.request_handler = handler
        self.request_factory: Callable[..., BaseRequest] = request_factory or BaseRequest
        self.requests_count = 0
        self._loop = loop
        self._connections: dict[HttpProtocol, None] = {}
        #: Protocols made for an accepted socket whose connection_made has not run yet
        #: (the loop calls it an iteration later, or after a TLS handshake).
        self._unmade = 0
        #: The sweep's next callback: the timer of the next pass, or the rest of this one.
        self._sweeper: asyncio.Handle | None = None
        self._to_flush: list[Flushable] = []
        self._all_closed: asyncio.Event | None = None
        #: True once a graceful stop has begun (read by every connection, so a plain
        #: attribute: a property costs ~40 ns on each response). Set by pre_shutdown.
        self.shutting_down = False
        #: Call ``on_requests_limit`` once ``requests_count`` reaches this (0: never);
        #: the worker's ``--max-requests``, checked as each response is counted.
        self.requests_limit = 0
        self.on_requests_limit: Callable[[], None] | None = None
        #: Requests answered after the stop began, and handlers cancelled at its end.
        self.drained_count = 0
        self.cancelled_count = 0
        self._count_at_stop = 0
        self._refusals: dict[str, int] = {}
        #: Totals for --metrics (an addition each, metrics on or off): refusals by
        #: kind, connections accepted and closed, and the largest event-loop lag the
        #: sweeper saw since ``take_loop_lag`` last read it.
        self.refusals_total: dict[str, int] = {}
        self.connections_accepted = 0
        self.connections_closed = 0
        #: WebSocket connections opened (each upgrade taken over, counted there).
        self.websockets_opened = 0
        self.loop_lag = 0.0
        #: The closed connections' per-connection counts (see ``traffic``).
        self._closed_traffic = dict.fromkeys(_TRAFFIC, 0)
        #: Connections still open when a drain ran out of time (closed, not yet lost).
        self._cancelled: dict[HttpProtocol, None] = {}
        self._sweep_due = 0.0
        self._refusal_logged: dict[str, float] = {}
        self._fd_limit = _descriptor_limit()
        #: A coarse clock (loop time), advanced by the sweeper; connections arm
        #: their deadlines from it instead of reading the clock on every request.
        self.now = 0.0
        self.access_logger: Any = None
        #: --metrics' per-request recorder (``record_metrics``), or None.
        self.metrics: RequestMetrics | None = None
        if options.access_log is not None:
            cls = options.access_log_class or AccessLogger
            self.access_logger = cls(options.access_log, options.access_log_format)
            if options.access_log_exclude:
                self.access_logger = ExcludingAccessLogger(
                    self.access_logger, options.access_log_exclude
                )
        self._sweep_interval = _sweep_interval(options)
        #: Each waiting state's timeout, shared by the connections (one draining
        #: takes its own copy: Deadlines.draining).
        self.deadlines = Deadlines(
            options.keepalive_timeout, options.header_read_timeout, options.lingering_time
        )

    @property
    def handler_cancellation(self) -> bool:
        """Whether a handler is cancelled when its client disconnects (aiohttp's name)."""
        return self.options.handler_cancellation

    @property
    def connections(self) -> list[HttpProtocol]:
        """The open connections."""
        return list(self._connections)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve on *loop* (``ServerRunner.setup`` binds the running one); unbound, a
        server takes the loop running when it makes its first connection."""
        self._loop = loop

    def __call__(self) -> _Served:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._unmade += 1
        # (no typing.cast: a Python call per connection, the accept path being Python)
        return HttpProtocol(self, loop)  # type: ignore[return-value]

    # -- registry, used by HttpProtocol ---------------------------------------
    def connection_made(self, conn: HttpProtocol, fd: int) -> bool:
        """Register *conn* (its socket is *fd*); False when it must be refused (503).

        Refused: past ``limit_concurrency``, or when *fd* is within ``_FD_RESERVE``
        of the process's descriptor limit. Refusing there, with an answer that frees
        the descriptor at once (ConnState.REFUSING), keeps a few descriptors free,
        so that the event loop does not meet EMFILE in accept() (where libuv closes
        the connections it cannot take, silently).
        """
        if self._unmade:
            self._unmade -= 1
        self.connections_accepted += 1
        limit = self.options.limit_concurrency
        if limit and len(self._connections) >= limit:
            self.note_refusal(
                "limit", f"--limit-concurrency {limit} reached: connections refused with 503"
            )
            return False
        if fd >= self._fd_limit - _FD_RESERVE:
            self.note_refusal(
                "fd",
                f"near the descriptor limit (RLIMIT_NOFILE {self._fd_limit}): connections "
                "refused with 503; raise it (ulimit -n, LimitNOFILE=) or set --limit-concurrency",
            )
            return False
        self._connections[conn] = None
        if self._sweeper is None:
            assert self._loop is not None
            self.now = self._loop.time()
            self._schedule_sweep()
        return True

    def note_refusal(self, kind: str, message: str) -> None:
        """Count a refusal of *kind*; log it at WARNING at most once per ``_WARN_EVERY``
        seconds per kind, with how many happened since the last line."""
        totals = self.refusals_total
        totals[kind] = totals.get(kind, 0) + 1
        count = self._refusals.get(kind, 0) + 1
        self._refusals[kind] = count
        assert self._loop is not None
        now = self._loop.time()
        if now - self._refusal_logged.get(kind, -_WARN_EVERY) >= _WARN_EVERY:
            self._refusal_logged[kind] = now
            self._refusals[kind] = 0
            self.logger.warning("%s (%d since the last such line)", message, count)

    def count_refusal(self, kind: str) -> None:
        """Count a refusal of *kind* for --metrics, without a log line (a client's
        malformed request is one DEBUG line, said where it is refused)."""
        totals = self.refusals_total
        totals[kind] = totals.get(kind, 0) + 1

    def connection_lost(self, conn: HttpProtocol) -> None:
        self.connections_closed += 1
        self._fold(conn)
        self._connections.pop(conn, None)
        self._cancelled.pop(conn, None)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    def schedule_flush(self, conn: Flushable) -> None:
        """Have *conn*'s queued output written once this loop iteration's I/O is done,
        or sooner, once ``FLUSH_BATCH`` connections before it are waiting."""
        pending = self._to_flush
        if not pending:
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        elif len(pending) >= FLUSH_BATCH:
            # Written before *conn* joins: a read being parsed (conn's) is not split
            # between two writes. The end-of-iteration callback stays due.
            self._flush()
        self._to_flush.append(conn)

    def _flush(self) -> None:
        conns, self._to_flush = self._to_flush, []
        for conn in conns:
            conn.flush_out()

    def _schedule_sweep(self) -> None:
        assert self._loop is not None
        self._sweep_due = self._loop.time() + self._sweep_interval
        self._sweeper = self._loop.call_later(self._sweep_interval, self._sweep)

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self.now = self._loop.time()
        # The sweep ran this late: the event-loop lag, measured for free.
        lag = now - self._sweep_due
        if lag > self.loop_lag:
            self.loop_lag = lag
        self._sweep_slice(list(self._connections), 0, now)

    def _sweep_slice(self, conns: list[HttpProtocol], start: int, now: float) -> None:
        """Check *conns* from *start*, ``SWEEP_SLICE`` of them, then the rest next turn
        (skipping those lost since the pass began)."""
        end = start + SWEEP_SLICE
        if start == 0 and end >= len(conns):
            for conn in conns:
                conn.check_timeout(now)
        else:
            registered = self._connections
            for conn in conns[start:end]:
                if conn in registered:
                    conn.check_timeout(now)
            if end < len(conns):
                assert self._loop is not None
                self._sweeper = self._loop.call_soon(self._sweep_slice, conns, end, now)
                return
        if self._connections:
            self._schedule_sweep()
        else:
            self._sweeper = None

    # -- metrics (read by a timer, never per request) ---------------------------
    def record_metrics(self) -> RequestMetrics:
        """Count every answered request (``--metrics``) in a :class:`RequestMetrics`,
        beside the access log. Call it before serving: a connection reads it once,
        when it is made."""
        if self.metrics is None:
            self.metrics = RequestMetrics()
        return self.metrics

    def _fold(self, conn: HttpProtocol) -> None:
        """Add a closed connection's counts to the closed connections' totals."""
        _add_traffic(self._closed_traffic, conn)

    def traffic(self) -> dict[str, int]:
        """Totals since the server started, the open connections' counts included:
        bytes read and written, keep-alive reuse (requests answered on a connection
        that had answered one already), WebSocket messages received and sent; and
        the requests in flight and WebSockets open now. Read by a timer (each
        connection is added to the totals once, when it closes, so every total only
        grows), in one pass over the connections summed in locals (see
        bench/scrape_cost.py for its cost at 10,000 connections)."""
        read = written = reused = received = sent = in_flight = websockets = 0
        upgraded = ConnState.UPGRADED
        for conn in self._connections:
            r, w, served, rc, st = conn.traffic()
            read += r
            written += w
            if served > 1:
                reused += served - 1
            received += rc
            sent += st
            current = conn.current_request
            if current is not None:
                in_flight += 1
            if conn.state is upgraded and (current is not None or conn.served > 0):
                # a WebSocket: after a 101 whose handler runs or has run (HTTP/2
                # takes a connection over before any request)
                websockets += 1
        closed = dict(self._closed_traffic)
        for conn in self._cancelled:  # closed by a drain's end, not yet lost
            _add_traffic(closed, conn)
        return {
            "bytes_read": closed["bytes_read"] + read,
            "bytes_written": closed["bytes_written"] + written,
            "keepalive_requests": closed["keepalive_requests"] + reused,
            "ws_received": closed["ws_received"] + received,
            "ws_sent": closed["ws_sent"] + sent,
            "in_flight": in_flight,
            "websockets_open": websockets,
        }

    def take_loop_lag(self) -> float:
        """The largest event-loop lag seen since the last call, in seconds."""
        lag, self.loop_lag = self.loop_lag, 0.0
        return lag

    def note_loop_lag(self, lag: float) -> None:
        """Another timer's lateness (the worker's snapshot timer, when idle)."""
        if lag > self.loop_lag:
            self.loop_lag = lag

    # -- shutdown -------------------------------------------------------------
    async def pre_shutdown(self) -> None:
        """Begin the drain: every connection answers what is owed with ``Connection: close``."""
        if not self.shutting_down:
            self.shutting_down = True
            self._count_at_stop = self.requests_count
        for conn in list(self._connections):
            conn.begin_shutdown()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Drain within *timeout* seconds, then cancel the handlers still running.

        Each cancelled handler is logged, one WARNING line with its method and path.
        """
        await self.pre_shutdown()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained(), timeout)
        for conn in list(self._connections):
            request = conn.current_request
            if request is not None:
                self.cancelled_count += 1
                self.logger.warning(
                    "cancelled at shutdown: %s %s from %s", request.method, request.path, conn.peer
                )
            conn.cancel()
        # Cancelled, they close later: counted in traffic() until then.
        self._cancelled.update(self._connections)
        self._connections.clear()
        self.drained_count = self.requests_count - self._count_at_stop
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def _drained(self) -> None:
        """Until no connection is open and none accepted is still to be made.

        A socket accepted just before the listener closed has its protocol made
        already and its ``connection_made`` still to come: the loop calls it an
        iteration later (after the handshake, for TLS). Without this wait a worker
        that was idle when told to stop exited at once and closed that connection
        unanswered (seen once in a SIGHUP rolling restart). A handshake that
        fails never calls ``connection_made``, so that wait is bounded by
        ``drain_grace``.
        """
        assert self._loop is not None
        give_up = self._loop.time() + self.options.drain_grace
        while True:
            if self._connections:
                self._all_closed = asyncio.Event()
                await self._all_closed.wait()
            elif self._unmade and self._loop.time() < give_up:
                await asyncio.sleep(0.002)
            else:
                return

    def requests_limit_reached(self) -> None:
        """``requests_limit`` requests were answered (called once, by a connection)."""
        hook = self.on_requests_limit
        if hook is not None:
            self.on_requests_limit = None
            hook()


def _descriptor_limit() -> int:
    """This process's soft RLIMIT_NOFILE (a large number when unlimited)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 30 if limit == resource.RLIM_INFINITY else limit


def _sweep_interval(options: ServerOptions) -> float:
    """How often deadlines and rates are checked: every second, or a quarter of the
    shortest timeout (or rate grace) when that is shorter (but not more often than
    every 20 ms)."""
    timeouts = [
        t
        for t in (
            options.keepalive_timeout,
            options.header_read_timeout,
            options.lingering_time,
            options.drain_grace,
            options.body_read_timeout,
            options.send_timeout,
            options.min_rate_grace if options.min_body_rate or options.min_send_rate else 0,
        )
        if t > 0
    ]
    return max(0.02, min([1.0, *(t / 4 for t in timeouts)]))


def _add_traffic(totals: dict[str, int], conn: HttpProtocol) -> None:
    """Add *conn*'s counts to *totals* (``Server.traffic``'s keys)."""
    read, written, served, received, sent = conn.traffic()
    totals["bytes_read"] += read
    totals["bytes_written"] += written
    totals["keepalive_requests"] += max(served - 1, 0)
    totals["ws_received"] += received
    totals["ws_sent"] += sent
