"""Fuzzing the connection in memory with hypothesis.

Valid requests (GET, Content-Length and chunked POSTs, pipelined) are mutated (bytes
flipped, inserted, deleted; streams concatenated) and fed in segments cut at random
offsets. Whatever arrives, the connection:

* never raises out of ``data_received``/``eof_received`` and never logs an error;
* writes only well-formed responses: one per request a handler answered, in order,
  then at most one error response, after which it stops (FIN or close);
* answers no request it did not parse whole: every 200 echoes a request line that
  was sent, and no more requests are answered than heads were completed;
* does not hang: once the input is over, nothing is left half-answered.

CI runs a bounded number of examples; run it longer with, e.g.::

    LOWSERVE_FUZZ_EXAMPLES=20000 python -m pytest tests/conn/test_fuzz.py -q
"""

from __future__ import annotations

import asyncio
import logging
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lowserve import web

from conftest import parse_responses

EXAMPLES = int(os.environ.get("LOWSERVE_FUZZ_EXAMPLES", "300"))
pytestmark = pytest.mark.timeout(max(60, EXAMPLES // 20))  # ~5 ms an example

VALID = [
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /b?q=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"GET /e HTTP/1.0\r\n\r\n",
    b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
]


class _Transport:
    """A transport that records what the connection does to it."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.eof = False
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.eof and not self.closed, "a write after FIN or close"
        self.out.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    parts = draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))
    data = bytearray(b"".join(parts))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        if op == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = bytes([draw(st.integers(0, 255))])
        elif data:
            del data[at]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return bytes(data), cuts


async def _run(data: bytes, cuts: list[int]) -> tuple[_Transport, list[bytes]]:
    sent: list[bytes] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        line = f"{request.method} {request.raw_path}".encode()
        # "\n" ends the line: a request line cannot hold one (a "|" once could)
        sent.append(line + b"\n" + body)
        return web.Response(body=line + b"\n" + body)

    server = web.Server(handler, access_log=None, max_pipeline=4)
    server._loop = asyncio.get_running_loop()
    conn = server()
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    pos = 0
    for cut in [*cuts, len(data)]:
        if cut > pos:
            conn.data_received(data[pos:cut])
            pos = cut
        for _ in range(3):
            await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    if not transport.closed and not transport.eof:
        conn.eof_received()
        for _ in range(20):
            await asyncio.sleep(0)
    conn.connection_lost(None)
    await asyncio.sleep(0)
    return transport, sent


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stream=streams())
def test_mutated_requests_keep_the_invariants(
    stream: tuple[bytes, list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    data, cuts = stream
    caplog.clear()
    with caplog.at_level(logging.DEBUG, "lowserve"):
        transport, sent = asyncio.run(_run(data, cuts))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    responses = parse_responses(b"".join(transport.out))
    ok = [body for status, _, body in responses if status == 200]
    failed = [(status, headers) for status, headers, _ in responses if status != 200]
    assert ok == sent  # one answer per request a handler saw, in order
    for body in ok:  # and each was parsed whole from what was sent: its request line
        line, _, payload = body.partition(b"\n")
        method, _, target = line.partition(b" ")  # llhttp takes runs of spaces (RFC 9112 §3)
        assert re.search(re.escape(method) + b" +" + re.escape(target) + b" +HTTP/1\\.", data), body
        assert len(payload) < len(data)
    assert len(ok) <= data.count(b"\r\n\r\n") + data.count(b"\n\n")  # a head ends each
    assert len(failed) <= 1
    if failed:
        status, headers = failed[0]
        assert responses[-1][0] == status  # the error is the last answer
        assert 400 <= status < 600 and status != 500
        assert headers.get("connection") == "close"
        assert transport.eof or transport.closed
