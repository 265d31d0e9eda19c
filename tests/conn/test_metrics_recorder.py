"""The per-request recorder of --metrics (conn.metrics), in memory."""

from __future__ import annotations

import logging

import pytest

from lowserve.conn.metrics import BUCKETS, METHODS, RequestMetrics, RequestMetricsAndLog
from lowserve.testing import make_mocked_request
from lowserve.web import Response


def test_requests_count_by_method_and_status_class_and_duration_bucket() -> None:
    rec = RequestMetrics()
    rec.log(make_mocked_request("GET", "/"), Response(status=200), 0.0005)
    rec.log(make_mocked_request("GET", "/"), Response(status=404), 0.003)
    rec.log(make_mocked_request("POST", "/"), Response(status=503), 99.0)
    rec.log(make_mocked_request("BREW", "/"), Response(status=200), 0.001)  # a client's own
    rec.log(make_mocked_request("GET", "/"), Response(status=1234), 0.01)  # past 999
    requests, buckets = rec.requests(), rec.buckets()
    # by status class, 1xx first; past 599 counts as 5xx; a client's own method as OTHER
    assert requests == {"GET": [0, 1, 0, 1, 1], "POST": [0, 0, 0, 0, 1], "OTHER": [0, 1, 0, 0, 0]}
    # le semantics: 0.001 falls in the 0.001 bucket, 99 s in +Inf
    assert buckets[0] == 2 and buckets[BUCKETS.index(0.005)] == 1
    assert buckets[BUCKETS.index(0.01)] == 1 and buckets[-1] == 1
    assert sum(buckets) == 5 and len(buckets) == len(BUCKETS) + 1
    assert rec.duration_sum == pytest.approx(99.0145)


def test_the_access_logger_behind_the_recorder_still_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lowserve.api.accesslog import AccessLogger

    caplog.set_level(logging.INFO, logger="rec.access")
    rec = RequestMetricsAndLog(AccessLogger(logging.getLogger("rec.access"), "%r %s"))
    rec.log(make_mocked_request("GET", "/x"), Response(status=201), 0.002)
    assert [r.getMessage() for r in caplog.records] == ["GET /x HTTP/1.1 201"]
    assert rec.requests() == {"GET": [0, 1, 0, 0, 0]}


def test_every_method_and_bound_has_its_own_count() -> None:
    rec = RequestMetrics()
    for method in METHODS:
        rec.log(make_mocked_request(method, "/"), Response(status=204), 0.02)
    for bound in BUCKETS:
        rec.log(make_mocked_request("GET", "/"), Response(status=101), bound)
    requests = rec.requests()
    assert {m: requests[m][1] for m in METHODS} == dict.fromkeys(METHODS, 1)
    assert requests["GET"][0] == len(BUCKETS)
    # each bound lands in its own bucket (le), 0.02 s in the 0.025 one, none in +Inf
    buckets = rec.buckets()
    assert buckets[BUCKETS.index(0.025)] == 1 + len(METHODS)
    others = [c for i, c in enumerate(buckets) if i != BUCKETS.index(0.025)]
    assert others == [1] * (len(BUCKETS) - 1) + [0]
