"""The access log: aiohttp's format codes, one record per response."""

from __future__ import annotations

import logging
import re

import pytest

from lowserve import web

from conftest import exchange, serve


async def handler(request: web.BaseRequest) -> web.Response:
    return web.Response(text="hello", headers={"X-Out": "o"})


async def test_access_log_format(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.access")
    fmt = '%a %t "%r" %s %b %{User-Agent}i %{X-Out}o %Tf %D %T %%'
    async with serve(
        handler, access_log=logging.getLogger("test.access"), access_log_format=fmt
    ) as s:
        await exchange(
            s.port,
            b"GET /p?q=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1\r\nConnection: close\r\n\r\n",
        )
    [record] = [r for r in caplog.records if r.name == "test.access"]
    assert re.fullmatch(
        r'127\.0\.0\.1 \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /p\?q=1 HTTP/1\.1" 200 5 '
        r"t/1 o \d+\.\d{6} \d+ \d+ %",
        record.getMessage(),
    ), record.getMessage()


async def test_access_log_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with serve(handler, access_log=None) as s:
        await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert not [r for r in caplog.records if "access" in r.name]


async def test_custom_access_logger_class(caplog: pytest.LogCaptureFixture) -> None:
    seen = []

    class Mine(web.AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            seen.append((request.path, response.status))

    async with serve(handler, access_log=logging.getLogger("x"), access_log_class=Mine) as s:
        await exchange(s.port, b"GET /z HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert seen == [("/z", 200)]


async def test_json_access_log_is_one_object_per_request(caplog: pytest.LogCaptureFixture) -> None:
    import json

    from lowserve.api.accesslog import JSON_FIELDS

    caplog.set_level(logging.INFO, logger="test.access")
    async with serve(
        handler, access_log=logging.getLogger("test.access"), access_log_format="json"
    ) as s:
        await exchange(
            s.port,
            b'GET /p?q="1" HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1 "x"\r\nConnection: close\r\n\r\n',
        )
    [record] = [r for r in caplog.records if r.name == "test.access"]
    line = record.getMessage()
    assert "\n" not in line
    entry = json.loads(line)
    assert tuple(entry) == JSON_FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert entry["remote"] == "127.0.0.1"
    assert (entry["method"], entry["path"], entry["version"]) == ("GET", '/p?q="1"', "HTTP/1.1")
    assert (entry["status"], entry["bytes"]) == (200, 5)
    assert (entry["referer"], entry["user_agent"]) == (None, 't/1 "x"')
    assert isinstance(entry["duration"], float) and 0 <= entry["duration"] < 5
    assert entry["pid"] > 0 and entry["worker"] is None


async def test_excluded_paths_are_answered_but_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.access")
    async with serve(
        handler,
        access_log=logging.getLogger("test.access"),
        access_log_exclude="/healthz, /internal/*",
    ) as s:
        for path in ("/healthz", "/internal/ready", "/healthzz", "/x"):
            data = await exchange(
                s.port, f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode()
            )
            assert data.startswith(b"HTTP/1.1 200 ")
    logged = [r.getMessage().split('"')[1] for r in caplog.records if r.name == "test.access"]
    assert logged == ["GET /healthzz HTTP/1.1", "GET /x HTTP/1.1"]
