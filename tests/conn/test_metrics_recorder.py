"""The per-request recorder of --metrics (conn.metrics), in memory; beside the access
log, over a socket."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lowserve import web
from lowserve.conn.metrics import BUCKETS, METHODS, RequestMetrics
from lowserve.testing import make_mocked_request
from lowserve.web import Response

from conftest import exchange, parse_responses, serve


def test_requests_count_by_method_and_status_class_and_duration_bucket() -> None:
    rec = RequestMetrics()
    rec.record(make_mocked_request("GET", "/"), Response(status=200), 0.0005)
    rec.record(make_mocked_request("GET", "/"), Response(status=404), 0.003)
    rec.record(make_mocked_request("POST", "/"), Response(status=503), 99.0)
    rec.record(make_mocked_request("BREW", "/"), Response(status=200), 0.001)  # a client's own
    rec.record(make_mocked_request("GET", "/"), Response(status=1234), 0.01)  # past 999
    requests, buckets = rec.requests(), rec.buckets()
    # by status class, 1xx first; past 599 counts as 5xx; a client's own method as OTHER
    assert requests == {"GET": [0, 1, 0, 1, 1], "POST": [0, 0, 0, 0, 1], "OTHER": [0, 1, 0, 0, 0]}
    # le semantics: 0.001 falls in the 0.001 bucket, 99 s in +Inf
    assert buckets[0] == 2 and buckets[BUCKETS.index(0.005)] == 1
    assert buckets[BUCKETS.index(0.01)] == 1 and buckets[-1] == 1
    assert sum(buckets) == 5 and len(buckets) == len(BUCKETS) + 1
    assert rec.duration_sum == pytest.approx(99.0145)


def test_every_method_and_bound_has_its_own_count() -> None:
    rec = RequestMetrics()
    for method in METHODS:
        rec.record(make_mocked_request(method, "/"), Response(status=204), 0.02)
    for bound in BUCKETS:
        rec.record(make_mocked_request("GET", "/"), Response(status=101), bound)
    requests = rec.requests()
    assert {m: requests[m][1] for m in METHODS} == dict.fromkeys(METHODS, 1)
    assert requests["GET"][0] == len(BUCKETS)
    # each bound lands in its own bucket (le), 0.02 s in the 0.025 one, none in +Inf
    buckets = rec.buckets()
    assert buckets[BUCKETS.index(0.025)] == 1 + len(METHODS)
    others = [c for i, c in enumerate(buckets) if i != BUCKETS.index(0.025)]
    assert others == [1] * (len(BUCKETS) - 1) + [0]


async def _timed(request: web.BaseRequest) -> web.Response:
    if request.path == "/slow":
        await asyncio.sleep(0.03)  # answered by the connection's task, not in data_received
    return web.Response(text="OK", status=201 if request.method == "POST" else 200)


@pytest.mark.timeout(20)
async def test_the_access_log_and_the_recorder_see_the_same_durations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With --metrics and an access log, every request is counted and logged, both with
    the one duration (%D's microseconds); with the access log's level raised it is
    counted still, and not logged."""
    caplog.set_level(logging.INFO, logger="rec.access")
    access = logging.getLogger("rec.access")
    async with serve(_timed, access_log=access, access_log_format="%r %s %D") as served:
        rec = served.server.record_metrics()
        raw = (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        got = parse_responses(await exchange(served.port, raw))
        assert [status for status, _, _ in got] == [200, 200, 201]
        lines = [r.getMessage().rsplit(" ", 1) for r in caplog.records]
        assert [line for line, _ in lines] == [
            "GET / HTTP/1.1 200",
            "GET /slow HTTP/1.1 200",
            "POST / HTTP/1.1 201",
        ]
        micros = [int(us) for _, us in lines]
        assert micros[1] >= 30_000 > max(micros[0], micros[2])
        assert rec.requests() == {"GET": [0, 2, 0, 0, 0], "POST": [0, 1, 0, 0, 0]}
        assert sum(rec.buckets()) == 3
        assert rec.duration_sum == pytest.approx(sum(micros) / 1e6, abs=2e-6)

        caplog.clear()
        access.setLevel(logging.WARNING)
        try:
            await exchange(served.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        finally:
            access.setLevel(logging.NOTSET)
        assert not caplog.records
        assert rec.requests()["GET"] == [0, 3, 0, 0, 0]
