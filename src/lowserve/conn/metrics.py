"""A worker's counts for ``--metrics``: plain ints on the hot path, read off it.

What is counted where:

* per answered request, :class:`RequestMetrics` (method and status class, the
  duration histogram, body bytes): it takes the access logger's place on the
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

__all__ = ["BUCKETS", "METHODS", "RequestMetrics", "snapshot"]

#: The request-duration histogram's upper bounds, in seconds (+Inf is implied).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Methods counted by name; any other (a client chooses it) counts as ``OTHER``, so
#: the number of series stays bounded.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


class RequestMetrics:
    """Counts each answered request, then hands it to *inner* (the access logger).

    Shaped as an access logger (``enabled``, ``log``): the connection calls it for
    every answered request, with the seconds the answer took.
    """

    enabled = True

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        #: Per method, the answers by status // 100 (index 1 for 1xx ... 5 for 5xx; a
        #: status up to 999 is allowed, and counted as 5xx in a snapshot).
        self.by_method: dict[str, list[int]] = {m: [0] * 10 for m in (*METHODS, "OTHER")}
        self._other = self.by_method["OTHER"]
        #: Non-cumulative bucket counts (the last one is +Inf), and the sum of seconds.
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        # Each line here is paid by every request while metrics are on: no property
        # read that is not needed (bench/inmemory.py --instructions, hello: see
        # docs/observability.md for the figure).
        (self.by_method.get(request.method) or self._other)[response.status // 100] += 1
        self.buckets[bisect_left(BUCKETS, time)] += 1
        self.duration_sum += time
        inner = self.inner
        if inner is not None and inner.enabled:
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
