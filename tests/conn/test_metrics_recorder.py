"""The per-request recorder of --metrics (conn.metrics), in memory."""

from __future__ import annotations

import logging

import pytest

from lowserve.conn.metrics import BUCKETS, RequestMetrics, RequestMetricsAndLog
from lowserve.testing import make_mocked_request
from lowserve.web import Response


def test_requests_count_by_method_and_status_class_and_duration_bucket() -> None:
    rec = RequestMetrics()
    rec.log(make_mocked_request("GET", "/"), Response(status=200), 0.0005)
    rec.log(make_mocked_request("GET", "/"), Response(status=404), 0.003)
    rec.log(make_mocked_request("POST", "/"), Response(status=503), 99.0)
    rec.log(make_mocked_request("BREW", "/"), Response(status=200), 0.001)  # a client's own
    rec.log(make_mocked_request("GET", "/"), Response(status=1234), 0.01)  # past 999
    assert rec.by_method["GET"][2] == 1 and rec.by_method["GET"][4] == 1
    assert rec.by_method["GET"][9] == 1  # a snapshot counts it as 5xx
    assert rec.by_method["POST"][5] == 1
    assert rec.by_method["OTHER"][2] == 1 and "BREW" not in rec.by_method
    # le semantics: 0.001 falls in the 0.001 bucket, 99 s in +Inf
    assert rec.buckets[0] == 2 and rec.buckets[BUCKETS.index(0.005)] == 1
    assert rec.buckets[BUCKETS.index(0.01)] == 1 and rec.buckets[-1] == 1
    assert sum(rec.buckets) == 5
    assert rec.duration_sum == pytest.approx(99.0145)


def test_the_access_logger_behind_the_recorder_still_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lowserve.api.accesslog import AccessLogger

    caplog.set_level(logging.INFO, logger="rec.access")
    rec = RequestMetricsAndLog(AccessLogger(logging.getLogger("rec.access"), "%r %s"))
    rec.log(make_mocked_request("GET", "/x"), Response(status=201), 0.002)
    assert [r.getMessage() for r in caplog.records] == ["GET /x HTTP/1.1 201"]
    assert rec.by_method["GET"][2] == 1
