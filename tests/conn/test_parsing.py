"""Reading requests: framing, the limits and checks llhttp leaves to us, 100-continue,
request content codings — over real sockets, and the parser fed in memory."""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
from collections.abc import Awaitable, Callable

import pytest

from lowserve import web
from lowserve.conn.state import ConnState

from conftest import MemoryTransport, echo, exchange, hello, parse_responses, serve


async def test_post_content_length_and_chunked() -> None:
    async with serve(echo) as s:
        raw = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
        )
        out = parse_responses(raw)
        assert [b for _, _, b in out] == [b"hello", b"abcde"]


BAD = [
    (b"GET / HTTP/1.1\r\n\r\n", 400, b"Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, b"duplicate"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", 400, b"duplicate"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: a\r\nuser-agent: b\r\n\r\n", 400, b"duplicate"),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, b"HTTP/2.0"),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, b"HTTP/1.2"),  # llhttp parses 1.0/1.1 only
    (b"GET /\r\n\r\n", 400, b"0.9"),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate, chunked\r\n\r\n0\r\n\r\n",
        501,
        b"deflate",
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, b"gzip"),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        b"",
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, b""),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, b""),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, b""),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, b""),
    (b"GET / HTTP/1.1\nHost: a\n\n", 400, b""),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, b""),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, b""),
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, b""),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400, b"method"),
    (b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501, b"method"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417, b""),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, b"1.0"),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Encoding: zstd\r\n\r\nab",
        415,
        b"zstd",
    ),
]


@pytest.mark.parametrize(("raw", "status", "detail"), BAD)
async def test_malformed_requests_get_precise_errors(
    raw: bytes, status: int, detail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(echo) as s:
        out = await exchange(s.port, raw)
        assert out.startswith(b"HTTP/1.1 %d " % status), out
        assert b"\r\nConnection: close\r\n" in out
        assert detail in out.partition(b"\r\n\r\n")[2]
        # the server is alive afterwards
        ok = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200")
    assert not any(r.exc_info for r in caplog.records), "no traceback for a bad request"
    assert all(r.levelno <= logging.DEBUG for r in caplog.records if r.name.startswith("lowserve"))


async def test_limits_request_line_header_line_count() -> None:
    async with serve(hello, max_line_size=100, max_field_size=100, max_headers=5) as s:
        out = await exchange(s.port, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 414 ")
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 200 + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 431 ")
        many = b"".join(b"X%d: y\r\n" % i for i in range(6))
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
        assert out.startswith(b"HTTP/1.1 431 ")


async def test_header_line_limit_holds_across_segments() -> None:
    async with serve(hello, max_field_size=100) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ")
        for _ in range(50):  # a header line that never ends, 20 bytes at a time
            try:
                writer.write(b"a" * 20)
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.002)
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 431 ")


async def test_expect_100_continue_sent_on_first_read() -> None:
    async with serve(echo) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert line == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
        writer.close()


async def test_expect_100_not_sent_when_handler_ignores_body() -> None:
    async with serve(hello) as s:
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        assert out.startswith(b"HTTP/1.1 200 ")
        assert b"100 Continue" not in out
        assert b"Connection: close" in out  # the body was never sent, so it cannot be drained


async def test_expect_100_not_sent_when_too_large() -> None:
    async with serve(echo, client_max_size=10) as s:
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n",
        )
        assert out.startswith(b"HTTP/1.1 413 ")
        assert b"100 Continue" not in out


async def test_gzip_request_body_decoded_and_bounded() -> None:

    async with serve(echo, client_max_size=1000) as s:
        small = gzip.compress(b"hello " * 10)
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%b" % (len(small), small),
        )
        assert parse_responses(out)[0][2] == b"hello " * 10
        bomb = gzip.compress(b"\0" * 10_000_000)
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%b" % (len(bomb), bomb),
        )
        assert out.startswith(b"HTTP/1.1 413 ")


async def _pipeline_in_memory(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
    stream: bytes,
    count: int,
    gate: asyncio.Event,
) -> list[bytes]:
    """Feed *stream* to a connection (max_pipeline=4) in segments of every size while
    the first handler waits on *gate*; the queue never holds more than 4 requests.
    Returns the response bodies, once *count* requests are answered."""
    server = web.Server(handler, max_pipeline=4, access_log=None)
    server._loop = asyncio.get_running_loop()
    conn = server()
    transport = MemoryTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    pos, sizes = 0, [5, 27, 54, 81, 300, 1000, 70000]
    longest = 0
    while pos < len(stream) and not conn.reading_paused:
        size = sizes[pos % len(sizes)]
        conn.data_received(stream[pos : pos + size])
        pos += size
        longest = max(longest, len(conn._pipeline.queue))
    assert conn.reading_paused and longest == 4
    gate.set()
    while pos < len(stream):  # the client sends the rest as reading resumes
        await asyncio.wait_for(_until(lambda: not conn.reading_paused), 5)
        conn.data_received(stream[pos : pos + 100])
        pos += 100
        assert len(conn._pipeline.queue) <= 4
    # Wait for the answers written, not for requests_count: an answer is counted when
    # it is queued, and leaves at the end of that loop iteration (Server.schedule_flush).
    await asyncio.wait_for(
        _until(lambda: b"".join(transport.out).count(b"HTTP/1.1 200 ") == count), 5
    )
    assert server.requests_count == count
    return [b for _, _, b in parse_responses(b"".join(transport.out))]


async def test_pipelined_segments_in_memory_stay_bounded_and_ordered() -> None:
    """Segments of every size, each holding many heads: the queue never holds more
    than max_pipeline requests, and every request is answered, in order."""
    gate = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path == "/0":
            await gate.wait()
        return web.Response(text=request.path)

    stream = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(60))
    assert await _pipeline_in_memory(handler, stream, 60, gate) == [b"/%d" % i for i in range(60)]


async def test_pipelined_bodies_full_of_empty_lines_in_memory() -> None:
    """Pipelined POSTs (Content-Length and chunked) whose bodies are full of CRLFCRLF:
    bodies are not mistaken for heads, the bound holds, and each body comes back whole."""
    gate = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        if request.path == "/0":
            await gate.wait()
        return web.Response(body=body)

    bodies = [(b"%d\r\n\r\n" % i) * (1 + i * 37) for i in range(40)]
    parts = []
    for i, body in enumerate(bodies):
        if i % 2:
            parts.append(
                b"POST /%d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"%x\r\n%b\r\n0\r\n\r\n" % (i, len(body), body)
            )
        else:
            parts.append(
                b"POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%b"
                % (i, len(body), body)
            )
    assert await _pipeline_in_memory(handler, b"".join(parts), 40, gate) == bodies


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 32])
async def test_requests_pipelined_behind_a_declined_upgrade_are_answered(limit: int) -> None:
    """Pipelined requests behind an upgrade request that is declined (answered 200),
    sent in one read while the queue is full: the bytes past the upgrade head are
    parsed afresh, every request is answered, in order, and none is lost (they were,
    when the queue's slicing stopped at the upgrade head and dropped the rest)."""
    gate = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path == "/0":
            await gate.wait()
        return web.Response(text=request.path)

    server = web.Server(handler, max_pipeline=limit, access_log=None)
    server._loop = asyncio.get_running_loop()
    conn = server()
    transport = MemoryTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    heads = [b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(8)]
    heads[2] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    conn.data_received(b"".join(heads))
    gate.set()
    await asyncio.wait_for(_until(lambda: b"".join(transport.out).count(b"HTTP/1.1 200 ") == 8), 5)
    paths = [b"/%d" % i for i in range(8)]
    paths[2] = b"/ws"
    assert [b for _, _, b in parse_responses(b"".join(transport.out))] == paths


async def _until(check: Callable[[], bool]) -> None:
    """Yield to the loop until *check* holds (callers bound it with a timeout)."""
    while not check():
        await asyncio.sleep(0)


_PIECES = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /x HTTP/1.0\r\n\r\n",
    b"\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"XX / HTTP/1.1\r\n",
    b"GET /a b HTTP/1.1\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"\x00\xff",
]


async def test_random_streams_of_good_and_bad_requests_in_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Random mixes of good, bad and pipelined requests, cut at random points, with
    handlers that wait or not: never an error logged, never a 500 for bad input."""
    caplog.set_level(logging.DEBUG, logger="lowserve")
    for seed in range(3000):
        rnd = random.Random(seed)

        async def handler(request: web.BaseRequest, rnd: random.Random = rnd) -> web.Response:
            if rnd.random() < 0.3:
                await asyncio.sleep(0)
            if request.method == "POST":
                await request.read()
            return web.Response(text="ok")

        server = web.Server(handler, max_pipeline=rnd.choice([1, 2, 4, 32]), access_log=None)
        server._loop = asyncio.get_running_loop()
        conn = server()
        transport = MemoryTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        stream = b"".join(rnd.choice(_PIECES) for _ in range(rnd.randint(1, 30)))
        pos = 0
        while pos < len(stream) and conn.transport is not None:
            for _ in range(3):
                if conn.reading_paused:
                    await asyncio.sleep(0)
            if conn.reading_paused:
                break
            size = rnd.randint(1, 200)
            conn.data_received(stream[pos : pos + size])
            pos += size
            if rnd.random() < 0.5:
                await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        assert b" 500 " not in b"".join(transport.out), seed
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, bad[0].getMessage()


@pytest.mark.parametrize("last", [b"GET /\x01 HTTP/1.1\r\n\r\n", b""])
async def test_requests_held_while_the_peer_reads_nothing_keep_their_order(last: bytes) -> None:
    """While writing is paused, requests are held (HELD), not answered; once the peer
    reads, they are answered in order: a malformed request after them gets its 400
    last, and a half-close after them still lets them all be answered."""

    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(text=request.path)

    server = web.Server(handler, access_log=None)
    server._loop = asyncio.get_running_loop()
    conn = server()
    transport = MemoryTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.pause_writing()  # the peer reads nothing
    conn.data_received(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n" + last
    )
    if not last:
        assert conn.eof_received() is True  # kept open: the held requests are owed
    await asyncio.sleep(0)  # the end-of-iteration flush
    assert conn.state is ConnState.HELD and transport.out == []
    conn.resume_writing()
    await asyncio.sleep(0)
    out = b"".join(transport.out)
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.index(b"/1") < out.index(b"/2")
    if last:
        assert out.index(b"HTTP/1.1 400 Bad Request") > out.index(b"/2")
