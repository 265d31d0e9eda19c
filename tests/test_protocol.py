"""The connection over real sockets: framing, keep-alive, pipelining, limits, timeouts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lowserve import web

from conftest import exchange, parse_responses, serve


async def hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text="OK")


async def echo(request: web.BaseRequest) -> web.Response:
    return web.Response(body=await request.read())


async def test_hello_any_method_and_path() -> None:
    async with serve(hello) as s:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            raw = await exchange(
                s.port,
                f"{method} /x/y?z=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode(),
            )
            [(status, headers, body)] = parse_responses(raw)
            assert (status, body) == (200, b"OK")
            assert headers["connection"] == "close"
            assert headers["content-type"] == "text/plain; charset=utf-8"
            assert headers["server"].startswith("Python/")
            assert "date" in headers


async def test_keep_alive_11_and_10() -> None:
    async with serve(hello) as s:
        raw = await exchange(s.port, b"GET / HTTP/1.0\r\n\r\n")
        assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
        assert b"Connection" not in raw  # 1.0 closes by default
        raw = await exchange(
            s.port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", until_close=False
        )
        assert b"Connection: keep-alive\r\n" in raw
        raw = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", until_close=False)
        assert b"Connection:" not in raw


async def test_pipelined_requests_answered_in_order() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        n = int(request.query["n"])
        await asyncio.sleep(0.01 * (5 - n))  # later requests finish sooner if run in parallel
        return web.Response(text=str(n))

    async with serve(handler) as s:
        reqs = b"".join(f"GET /?n={i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(5))
        reqs += b"GET /?n=5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        out = parse_responses(await exchange(s.port, reqs))
        assert [b for _, _, b in out] == [str(i).encode() for i in range(6)]


async def test_pipeline_queue_bounded_pauses_reading() -> None:
    release = asyncio.Event()
    seen = []

    async def handler(request: web.BaseRequest) -> web.Response:
        seen.append(request.path)
        await release.wait()
        return web.Response(text=request.path)

    async with serve(handler, max_pipeline=2) as s:
        reqs = b"".join(f"GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(40))
        reqs += b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        task = asyncio.create_task(exchange(s.port, reqs))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if seen:
                break
        [conn] = s.server.connections
        assert len(conn._queue) <= 2 + 10  # the bound, plus at most one 256-byte slice
        assert conn._paused
        release.set()
        out = parse_responses(await task)
        assert len(out) == 41
        assert out[-1][2] == b"/last"


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


async def test_unread_body_is_drained_before_next_request() -> None:
    async with serve(hello) as s:
        body = b"x" * 300_000
        raw = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
            + b"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        out = parse_responses(raw)
        assert [st for st, _, _ in out] == [200, 200]


async def test_lingering_time_closes_when_body_never_ends() -> None:
    async with serve(hello, lingering_time=0.2) as s:
        raw = await exchange(
            s.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc", timeout=5
        )
        [(status, _, _)] = parse_responses(raw)
        assert status == 200  # answered, then closed after lingering instead of hanging


BAD = [
    (b"GET / HTTP/1.1\r\n\r\n", 400, b"Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, b"duplicate"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", 400, b"duplicate"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: a\r\nuser-agent: b\r\n\r\n", 400, b"duplicate"),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, b"HTTP/2.0"),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400, b"version"),
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


async def test_header_read_timeout_sends_408() -> None:
    async with serve(hello, header_read_timeout=0.2) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finishes the head
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b"Connection: close" in data


async def test_keepalive_timeout_closes_idle_connection() -> None:
    async with serve(hello, keepalive_timeout=0.2) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)  # EOF after the idle timeout
        writer.close()
        assert data.startswith(b"HTTP/1.1 200 ")


async def test_error_queued_behind_pipelined_response() -> None:
    async def slow(request: web.BaseRequest) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response(text="slow")

    async with serve(slow) as s:
        out = await exchange(
            s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"
        )
        responses = parse_responses(out)
        assert [st for st, _, _ in responses] == [200, 400]
        assert responses[0][2] == b"slow"


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


async def test_limit_concurrency_answers_503() -> None:
    gate = asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.Response:
        await gate.wait()
        return web.Response(text="ok")

    async with serve(slow, limit_concurrency=1) as s:
        first = asyncio.create_task(
            exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        )
        for _ in range(100):
            await asyncio.sleep(0.01)
            if s.server.connections:
                break
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 ")
        gate.set()
        assert (await first).startswith(b"HTTP/1.1 200 ")


async def test_half_closed_client_still_answered() -> None:
    async with serve(hello) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        writer.write_eof()
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 200 ")


async def test_read_flow_control_pauses_on_large_body() -> None:
    got = asyncio.Event()
    proceed = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        got.set()
        await proceed.wait()
        n = 0
        async for chunk in request.content.iter_chunked(65536):
            n += len(chunk)
        return web.Response(text=str(n))

    async with serve(handler, read_bufsize=65536) as s:
        size = 8 * 2**20
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size)

        async def send() -> None:
            for _ in range(size // 65536):
                writer.write(b"x" * 65536)
                await writer.drain()

        sender = asyncio.create_task(send())
        await asyncio.wait_for(got.wait(), 5)
        await asyncio.sleep(0.2)
        [conn] = s.server.connections
        assert conn._paused  # the server stopped reading: the body is not buffered whole
        assert conn._request is not None
        assert conn._request.content._size < 4 * 65536 + 262144
        proceed.set()
        await asyncio.wait_for(sender, 10)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        writer.close()


async def test_handler_cancellation_on_disconnect() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(text="late")

    async with serve(handler, handler_cancellation=True) as s:
        _reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.wait_for(started.wait(), 5)
        writer.close()
        await asyncio.wait_for(cancelled.wait(), 5)


async def test_no_cancellation_by_default_body_read_fails() -> None:
    result: list[str] = []
    done = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        try:
            await request.read()
        except ConnectionResetError:
            result.append("reset")
        finally:
            done.set()
        return web.Response(text="x")

    async with serve(handler) as s:
        _reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        await asyncio.sleep(0.05)
        writer.close()
        await asyncio.wait_for(done.wait(), 5)
        assert result == ["reset"]


async def test_gzip_request_body_decoded_and_bounded() -> None:
    import gzip

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


async def test_graceful_shutdown_finishes_in_flight_request() -> None:
    started = asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.Response:
        started.set()
        await asyncio.sleep(0.3)
        return web.Response(text="finished")

    server = web.Server(slow, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site.port
    idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
    busy = asyncio.create_task(exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    await asyncio.wait_for(started.wait(), 5)
    await runner.cleanup()
    out = await busy
    assert parse_responses(out)[0][2] == b"finished"
    assert b"Connection: close" in out
    assert await asyncio.wait_for(idle_r.read(), 5) == b""  # idle connection closed at once
    idle_w.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_shutdown_timeout_cancels_stuck_handler() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(request: web.BaseRequest) -> web.Response:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()

    server = web.Server(stuck, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client = asyncio.create_task(exchange(site.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(runner.cleanup(), 5)
    await asyncio.wait_for(cancelled.wait(), 5)
    assert await client == b""
