"""A worker's counts for ``--metrics``: plain ints on the hot path, read off it.

What is counted where:

* per answered request, :class:`RequestMetrics` (method and status class, the
  duration histogram): it takes the access logger's place on the
  :class:`~lowserve.conn.server.Server` (``Server.record_metrics``) and passes each
  call on to the real access logger, if any. A request's duration is measured only
  when ``Server.access_logger`` is set, so with metrics off nothing is added to a
  request's path, not even a clock read;
* per connection, refusal and sweep, the server's own ints (``connections_accepted``,
  ``refusals_total``, ``loop_lag``...), which cost an addition each whether or not
  metrics are on.

Nothing here is shipped, locked or formatted per request: :func:`snapshot` reads the
totals, and the worker sends one snapshot a second to its supervisor, which
aggregates them and serves ``/metrics`` (see ``lowserve.cli.metrics``). Every count is
cumulative since the worker started, so a lost snapshot loses nothing but freshness.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from ..api.response import StreamResponse
    from .server import Server

__all__ = ["BUCKETS", "METHODS", "RequestMetrics", "RequestMetricsAndLog", "snapshot"]

#: The request-duration histogram's upper bounds, in seconds (+Inf is implied).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Methods counted by name; any other (a client chooses it) counts as ``OTHER``, so
#: the number of series stays bounded.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


class RequestMetrics:
    """Counts each answered request: shaped as an access logger (``enabled``, ``log``),
    which the connection calls for every answered request with the seconds it took.

    ``log`` is paid by every request while metrics are on, so it reads the two fields
    it needs directly: its body cost ~3,500 instructions a request through the
    properties, ~1,800 so (callgrind, bench/inmemory.py hello, CPython 3.11).
    """

    enabled = True

    def __init__(self) -> None:
        #: Per method, the answers by status // 100 (index 1 for 1xx ... 5 for 5xx; a
        #: status past 599 counts as 5xx in a snapshot).
        self.by_method: dict[str, list[int]] = {m: [0] * 10 for m in (*METHODS, "OTHER")}
        #: Non-cumulative bucket counts (the last one is +Inf), and the sum of seconds.
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            self.by_method[request._method][response._status // 100] += 1  # noqa: SLF001 (see the docstring)
        except (KeyError, IndexError):  # a method of the client's own, or a status > 999
            self._count_odd(request.method, response.status)
        self.buckets[bisect_left(BUCKETS, time)] += 1
        self.duration_sum += time

    def _count_odd(self, method: str, status: int) -> None:
        counts = self.by_method.get(method, self.by_method["OTHER"])
        counts[min(max(status // 100, 0), 9)] += 1


class RequestMetricsAndLog(RequestMetrics):
    """:class:`RequestMetrics` that then passes each request to the access logger."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        super().log(request, response, time)
        inner = self.inner
        if inner.enabled:
            inner.log(request, response, time)


def snapshot(server: Server, recorder: RequestMetrics) -> dict[str, Any]:
    """Every count of *server* and *recorder*, as plain JSON-ready data.

    Counters are totals since the worker started; ``loop_lag`` is the largest lag
    seen since the previous snapshot (reading it starts a new interval).
    """
    requests = {method: counts[1:] for method, counts in recorder.by_method.items() if any(counts)}
    return {
        "requests": requests,
        "buckets": list(recorder.buckets),
        "duration_sum": recorder.duration_sum,
        "in_flight": server.in_flight(),
        "connections_accepted": server.connections_accepted,
        "connections_closed": server.connections_closed,
        "connections_open": server.connections_accepted - server.connections_closed,
        "websockets_open": server.upgraded_count(),
        "refusals": dict(server.refusals_total),
        "drained": server.drained_count,
        "cancelled": server.cancelled_count,
        "loop_lag": server.take_loop_lag(),
    }
