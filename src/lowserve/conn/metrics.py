"""A worker's counts for ``--metrics``: plain ints on the hot path, read off it.

What is counted where:

* per answered request, :class:`RequestMetrics` (method and status class, the
  duration histogram), made by ``Server.record_metrics``: each connection's responder
  keeps it beside the access logger, reads the clock when a handler starts and ends
  (as it does for the access log), and calls :meth:`RequestMetrics.record`. With
  metrics off (and no access log) nothing is added to a request's path, not even a
  clock read. In the compiled build (this module is in ``lowserve._build.COMPILED``)
  the responder calls ``record`` as a C method, the clock is C's ``clock_gettime``,
  and the counts are C integers in fixed arrays: a request costs two attribute reads,
  a few C comparisons and three additions;
* per connection, in C fields of the connection: bytes read and written, requests
  answered, WebSocket messages received and sent. A connection adds them to the
  server's totals when it closes (``Server.connection_lost``), and :func:`snapshot`
  adds the open connections' counts to those totals, so every total is exact and
  monotonic without a shared counter touched per request;
* per refusal and sweep, the server's own ints (``connections_accepted``,
  ``refusals_total``, ``loop_lag``...).

Nothing here is shipped, locked or formatted per request: :func:`snapshot` reads the
totals, and the worker sends one snapshot a second to its supervisor, which
aggregates them and serves ``/metrics`` (see ``lowserve.cli.metrics``). Every count is
cumulative since the worker started, so a lost snapshot loses nothing but freshness.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from ..api.response import StreamResponse
    from .server import Server

__all__ = ["BUCKETS", "METHODS", "RequestMetrics", "snapshot"]

#: The request-duration histogram's upper bounds, in seconds (+Inf is implied).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Methods counted by name; any other (a client chooses it) counts as ``OTHER``, so
#: the number of series stays bounded.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

# The counts' layout: a row of _ROW per method (METHODS, then OTHER), indexed by the
# status class (1 for 1xx ... 5 for 5xx; a status past 599 counts as 5xx; 0 unused).
# The sizes are spelt out in metrics.pxd's C arrays.
_ROW = 6
_COUNTS = _ROW * (len(METHODS) + 1)
_BUCKETS = len(BUCKETS) + 1
_BOUNDS = BUCKETS  # compiled, a C array of doubles (metrics.pxd)


class RequestMetrics:
    """Counts each answered request: the connection calls :meth:`record` for every
    answered request with the seconds it took (the access log's duration)."""

    __slots__ = ("_buckets", "_counts", "duration_sum")

    def __init__(self) -> None:
        # Compiled, these lists are copied into the C arrays.
        counts: list[int] = [0] * _COUNTS
        self._counts = counts
        # Non-cumulative bucket counts (the last one is +Inf), and the sum of seconds.
        buckets: list[int] = [0] * _BUCKETS
        self._buckets = buckets
        self.duration_sum = 0.0

    def record(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Count *request*, answered with *response* in *time* seconds."""
        # Reads the two private fields: through the properties, this body costs ~40%
        # more (callgrind, bench/inmemory.py hello).
        method = request._method  # noqa: SLF001
        # An if-chain, not a dict: compiled, each test is a pointer comparison first
        # (the parser's method names are interned), and GET is the first.
        if method == "GET":
            row = 0
        elif method == "POST":
            row = 2 * _ROW
        elif method == "HEAD":
            row = _ROW
        elif method == "PUT":
            row = 3 * _ROW
        elif method == "DELETE":
            row = 4 * _ROW
        elif method == "PATCH":
            row = 5 * _ROW
        elif method == "OPTIONS":
            row = 6 * _ROW
        else:
            row = 7 * _ROW
        status = response._status  # noqa: SLF001
        cls = status // 100
        if cls > 5 or cls < 1:
            cls = 5
        self._counts[row + cls] += 1
        # Most requests take under a millisecond: a scan from the smallest bound ends
        # at the first comparison, where a bisection always makes four.
        i = 0
        while i < _BUCKETS - 1 and time > _BOUNDS[i]:
            i += 1
        self._buckets[i] += 1
        self.duration_sum += time

    def requests(self) -> dict[str, list[int]]:
        """Per method with any, the answers by status class (1xx ... 5xx)."""
        out = {}
        for m, method in enumerate((*METHODS, "OTHER")):
            row = [self._counts[m * _ROW + c] for c in range(1, _ROW)]
            if any(row):
                out[method] = row
        return out

    def buckets(self) -> list[int]:
        """The duration histogram's counts per bucket (not cumulative; +Inf last)."""
        return [self._buckets[i] for i in range(_BUCKETS)]


def snapshot(server: Server, recorder: RequestMetrics) -> dict[str, Any]:
    """Every count of *server* and *recorder*, as plain JSON-ready data.

    Counters are totals since the worker started; ``loop_lag`` is the largest lag
    seen since the previous snapshot (reading it starts a new interval).
    """
    traffic = server.traffic()
    return {
        "requests": recorder.requests(),
        "buckets": recorder.buckets(),
        "duration_sum": recorder.duration_sum,
        "in_flight": traffic["in_flight"],
        "connections_accepted": server.connections_accepted,
        "connections_closed": server.connections_closed,
        "connections_open": server.connections_accepted - server.connections_closed,
        "websockets_open": traffic["websockets_open"],
        "websockets": server.websockets_opened,
        "ws_received": traffic["ws_received"],
        "ws_sent": traffic["ws_sent"],
        "bytes_read": traffic["bytes_read"],
        "bytes_written": traffic["bytes_written"],
        "keepalive_requests": traffic["keepalive_requests"],
        "refusals": dict(server.refusals_total),
        "drained": server.drained_count,
        "cancelled": server.cancelled_count,
        "loop_lag": server.take_loop_lag(),
    }
