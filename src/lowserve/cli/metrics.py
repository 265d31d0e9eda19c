"""The fleet's metrics, kept by the supervisor and exposed on ``/metrics``.

How counts travel: each worker keeps plain ints (``lowserve.conn.metrics``) and,
once a second and once more after its drain, sends a snapshot of its totals as
one JSON datagram on a ``SOCK_DGRAM`` socketpair made for it by the supervisor.
Chosen over the alternatives because:

* nothing is done per request beyond an addition (no lock, no mmap write, as
  ``prometheus_client``'s multiprocess values do on every ``inc``);
* a datagram arrives whole or not at all (the worker sends without blocking and
  skips a snapshot the supervisor has not read; the next one carries every total);
* the supervisor's loop already waits on each worker's pipes with ``select``.

The supervisor keeps each live worker's latest snapshot and, when a worker exits,
folds that worker's counters into ``retired`` (after reading its last datagram),
so every counter stays monotonic across restarts, recycles and crashes (a killed
worker loses at most its last second). Gauges (in flight, open connections, loop
lag, RSS) are per live worker, labelled ``worker`` with its number.

The user's own ``prometheus_client`` metrics: workers get ``PROMETHEUS_MULTIPROC_DIR``
(a directory per service, emptied at start), the supervisor reads it with
``MultiProcessCollector`` and marks each exited worker dead there.

Everything here is read by the admin listener's thread and written by the
supervisor's loop: one lock guards the store.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from ..conn.metrics import BUCKETS

__all__ = ["EXIT_CAUSES", "Fleet", "rss_bytes"]

#: Why a worker exited (``lowserve_worker_exits_total{cause}``).
EXIT_CAUSES = (
    "crash",  # exited by itself, unasked
    "signal",  # killed by a signal lowserve did not send (the OOM killer's SIGKILL)
    "stop",  # the service stopped (SIGTERM, SIGINT)
    "reload",  # a SIGHUP rolling restart replaced it
    "scale",  # SIGTTOU, or a start-up beyond the target
    "recycle-requests",  # --max-requests
    "recycle-age",  # --max-worker-age
    "recycle-memory",  # --max-worker-rss
    "start-timeout",  # a replacement that did not serve in time
)

_GAUGES = ("in_flight", "connections_open", "websockets_open", "loop_lag")


def _add(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Add *more*'s counters into *into* (numbers, lists element-wise, dicts by key)."""
    for key, value in more.items():
        if key in _GAUGES:
            continue
        have = into.get(key)
        if isinstance(value, dict):
            if not isinstance(have, dict):
                have = into[key] = {}
            _add(have, value)
        elif isinstance(value, list):
            if not isinstance(have, list):
                have = into[key] = [0] * len(value)
            for i, v in enumerate(value):
                have[i] += v
        else:
            into[key] = (have or 0) + value


def rss_bytes(pid: int) -> int | None:
    """The resident set size of process *pid* (Linux's /proc), or None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Fleet:
    """Every worker's counts, aggregated (a ``prometheus_client`` collector)."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.lock = threading.Lock()
        #: pid -> (worker number, latest snapshot)
        self.live: dict[int, tuple[int, dict[str, Any]]] = {}
        self.retired: dict[str, Any] = {}
        self.starts = 0
        self.exits: dict[str, int] = dict.fromkeys(EXIT_CAUSES, 0)
        #: Workers by state (``starting``, ``serving``, ``retiring``), set by the loop.
        self.states: dict[str, int] = {}
        self.multiproc_dir = multiproc_dir

    # -- the supervisor's loop ---------------------------------------------------
    def started(self, pid: int, number: int) -> None:
        with self.lock:
            self.starts += 1
            self.live[pid] = (number, {})

    def receive(self, pid: int, datagram: bytes) -> None:
        """A worker's snapshot (a bad one is ignored: the next one will do)."""
        try:
            snap = json.loads(datagram)
        except ValueError:
            return
        if not isinstance(snap, dict):
            return
        with self.lock:
            entry = self.live.get(pid)
            if entry is not None:
                self.live[pid] = (entry[0], snap)

    def exited(self, pid: int, cause: str) -> None:
        """Fold *pid*'s counters into the retired totals; count its exit by *cause*."""
        with self.lock:
            entry = self.live.pop(pid, None)
            if entry is not None:
                _add(self.retired, entry[1])
            self.exits[cause] = self.exits.get(cause, 0) + 1
        if self.multiproc_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.multiproc_dir)  # type: ignore[no-untyped-call]

    # -- the admin listener's thread -------------------------------------------
    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self.lock:
            totals: dict[str, Any] = {}
            _add(totals, self.retired)
            live = sorted(self.live.items(), key=lambda item: item[1][0])
            for _, (_, snap) in live:
                _add(totals, snap)
            starts, exits, states = self.starts, dict(self.exits), dict(self.states)

        def total(key: str) -> float:
            value = totals.get(key, 0)
            return value if isinstance(value, int | float) else 0

        requests = CounterMetricFamily(
            "lowserve_requests", "Requests answered, by method and status class.",
            labels=["method", "status"],
        )  # fmt: skip
        for method, counts in sorted(totals.get("requests", {}).items()):
            for i, count in enumerate(counts):
                if count:
                    requests.add_metric([method, f"{i + 1}xx"], count)
        yield requests

        buckets = totals.get("buckets") or [0] * (len(BUCKETS) + 1)
        cumulative, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), buckets, strict=True):
            running += count
            cumulative.append((bound, running))
        duration = HistogramMetricFamily(
            "lowserve_request_duration_seconds",
            "Seconds from a request's head to its answer's end (the access log's duration).",
        )
        duration.add_metric([], cumulative, sum_value=total("duration_sum"))
        yield duration

        for key, name, text in (
            ("connections_accepted", "connections_accepted", "Connections accepted."),
            ("connections_closed", "connections_closed", "Connections closed."),
            ("drained", "drained_requests", "Requests answered after a worker's drain began."),
            ("cancelled", "cancelled_requests", "Handlers cancelled at a drain's end."),
            ("bytes_read", "bytes_read", "Bytes read from clients (every protocol, TLS as "
             "decrypted)."),
            ("bytes_written", "bytes_written", "Bytes handed to the transport for clients."),
            ("keepalive_requests", "keepalive_requests", "Requests answered on an HTTP/1.1 "
             "connection that had answered one already (keep-alive reuse)."),
            ("websockets", "websockets", "WebSocket connections opened (101 answered)."),
            ("ws_received", "websocket_messages_received", "WebSocket data messages received."),
            ("ws_sent", "websocket_messages_sent", "WebSocket data messages sent."),
        ):  # fmt: skip
            yield CounterMetricFamily(f"lowserve_{name}", text, value=total(key))

        refusals = CounterMetricFamily(
            "lowserve_refusals", "Connections or requests refused, by reason.", labels=["reason"]
        )
        for reason, count in sorted(totals.get("refusals", {}).items()):
            refusals.add_metric([reason], count)
        yield refusals

        for key, name, text in (
            ("in_flight", "requests_in_flight", "Requests being answered now."),
            ("connections_open", "connections_open", "Connections open now."),
            ("websockets_open", "websockets_open", "WebSocket connections open now."),
            (
                "loop_lag",
                "event_loop_lag_seconds",
                "The largest lateness of a worker's event loop in the last second.",
            ),
        ):
            gauge = GaugeMetricFamily(f"lowserve_{name}", text, labels=["worker"])
            for _, (number, snap) in live:
                if key in snap:
                    gauge.add_metric([str(number)], snap[key])
            yield gauge

        rss = GaugeMetricFamily(
            "lowserve_worker_rss_bytes", "Resident memory of each worker.", labels=["worker"]
        )
        info = GaugeMetricFamily(
            "lowserve_worker_info", "Each live worker's process id.", labels=["worker", "pid"]
        )
        for pid, (number, _) in live:
            size = rss_bytes(pid)
            if size is not None:
                rss.add_metric([str(number)], size)
            info.add_metric([str(number), str(pid)], 1)
        yield rss
        yield info

        workers = GaugeMetricFamily("lowserve_workers", "Workers by state.", labels=["state"])
        for state in ("starting", "serving", "retiring"):
            workers.add_metric([state], states.get(state, 0))
        yield workers
        yield CounterMetricFamily("lowserve_worker_starts", "Workers started.", value=starts)
        ends = CounterMetricFamily(
            "lowserve_worker_exits", "Workers exited, by cause.", labels=["cause"]
        )
        for cause, count in exits.items():
            ends.add_metric([cause], count)
        yield ends

    def exposition(self) -> bytes:
        """``/metrics``: lowserve's own families, then the user's multiprocess ones."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        if self.multiproc_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
