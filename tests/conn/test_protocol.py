"""The connection over real sockets: framing, keep-alive, pipelining, limits, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from lowserve import web
from lowserve.conn.state import ConnState

from conftest import exchange, hello, parse_responses, serve


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
        assert len(conn._pipeline.queue) <= 2
        assert conn.reading_paused
        release.set()
        out = parse_responses(await task)
        assert len(out) == 41
        assert out[-1][2] == b"/last"


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
        [conn] = s.server.connections
        deadline = asyncio.get_running_loop().time() + 5
        while not conn.reading_paused:  # the server stops reading: the body is not buffered whole
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # and stays stopped
        assert conn.reading_paused
        assert conn._responder.request is not None
        assert conn._responder.request.content._size < 4 * 65536 + 262144
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


async def test_runs_of_spaces_in_the_request_line_are_accepted() -> None:
    """llhttp splits the request line on runs of spaces, as RFC 9112 §3 allows (a
    recipient MAY parse on whitespace-delimited word boundaries); docs/security.md says
    so. The request is the one sent: method, target and version intact."""

    async def echo_line(request: web.BaseRequest) -> web.Response:
        return web.Response(text=f"{request.method} {request.raw_path} {request.version}")

    async with serve(echo_line) as s:
        out = await exchange(
            s.port, b"GET  /a?b=1   HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.endswith(b"GET /a?b=1 HttpVersion(major=1, minor=1)")


async def test_a_client_that_pipelines_and_never_reads_costs_a_bounded_buffer() -> None:
    """Thousands of pipelined requests from a peer that reads no answer: the server
    stops answering once its write buffer is over the high-water mark (HELD), so it
    holds about that much, not a response per request; once the peer reads, every
    request is answered, in order."""
    body = b"x" * 16384

    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(body=body)

    loop = asyncio.get_running_loop()
    count = 2000
    reqs = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * (count - 1)
    reqs += b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    async with serve(handler) as s:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", s.port))
        sending = asyncio.ensure_future(loop.sock_sendall(sock, reqs))
        deadline = loop.time() + 10
        while not s.server.connections or s.server.connections[0].state is not ConnState.HELD:
            assert loop.time() < deadline, "the connection was never held"
            await asyncio.sleep(0.01)
        [conn] = s.server.connections
        assert conn.transport is not None
        await asyncio.sleep(0.2)  # more requests arrive: they wait
        assert conn.state is ConnState.HELD
        assert conn.transport.get_write_buffer_size() < 2 * 65536 + 32 * len(body)
        received = bytearray()
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10):
            received += chunk
        await asyncio.wait_for(sending, 5)
        sock.close()
    assert received.count(b"HTTP/1.1 200 OK\r\n") == count
    assert len(received) > count * len(body)


@pytest.mark.parametrize("last", [b"GET /\x01 HTTP/1.1\r\n\r\n", b""])
async def test_requests_held_for_a_peer_that_does_not_read_keep_their_order(last: bytes) -> None:
    """Held requests (the peer reads nothing) are answered in order once it reads,
    whether what follows them is a malformed request (its 400 comes last) or the
    peer's half-close (every request before it is still answered)."""
    body = b"x" * 16384

    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(body=body, headers={"X-Path": request.path})

    loop = asyncio.get_running_loop()
    reqs = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(1000)) + last
    async with serve(handler) as s:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", s.port))
        await loop.sock_sendall(sock, reqs)
        if not last:
            sock.shutdown(socket.SHUT_WR)
        deadline = loop.time() + 10
        while not s.server.connections or s.server.connections[0].state is not ConnState.HELD:
            assert loop.time() < deadline, "the connection was never held"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the rest is parsed meanwhile
        received = bytearray()
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10):
            received += chunk
        sock.close()
    paths = [
        int(line.split(b"/")[1])
        for line in received.split(b"\r\n")
        if line.startswith(b"X-Path: /")
    ]
    assert paths == list(range(1000))
    if last:
        assert received.rfind(b"HTTP/1.1 400 Bad Request") > received.rfind(b"X-Path: /999")


async def test_refusals_are_logged_to_the_server_logger() -> None:
    # Server(logger=): a bad request's DEBUG line, and a PROXY header refused, go to
    # the logger given, and not to lowserve.server.
    texts = ("bad request from", "PROXY protocol from")
    seen = {text: asyncio.Event() for text in texts}
    stray: list[str] = []

    class Catch(logging.Handler):
        def __init__(self, into: list[str] | None = None) -> None:
            super().__init__(logging.DEBUG)
            self.into = into

        def emit(self, record: logging.LogRecord) -> None:
            for text in texts:
                if record.getMessage().startswith(text) and record.levelno == logging.DEBUG:
                    if self.into is None:
                        seen[text].set()
                    else:
                        self.into.append(text)

    mine = logging.getLogger("test_protocol.mine")
    default = logging.getLogger("lowserve.server")
    catches = [(mine, Catch()), (default, Catch(stray))]
    levels = [(logger, logger.level) for logger in (mine, default)]
    for logger, catch in catches:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(catch)
    try:
        async with serve(hello, logger=mine) as s:
            raw = await exchange(s.port, b"GET / HTTP/1.1\r\n\r\n")  # no Host
            assert raw.startswith(b"HTTP/1.1 400 ")
        async with serve(hello, logger=mine, proxy_protocol=True) as s:
            with contextlib.suppress(ConnectionError):
                await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # no PROXY header
            await asyncio.wait_for(seen["PROXY protocol from"].wait(), 5)
        assert seen["bad request from"].is_set()
        assert stray == []
    finally:
        for logger, catch in catches:
            logger.removeHandler(catch)
        for logger, level in levels:
            logger.setLevel(level)


async def test_proxy_headers_from_a_trusted_peer_set_remote_scheme_and_host() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(text=f"{request.remote} {request.scheme} {request.host}")

    forwarded = b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n"
    async with serve(handler, proxy_headers=True) as s:  # 127.0.0.1 is trusted by default
        raw = await exchange(
            s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + forwarded + b"\r\n"
        )
        assert parse_responses(raw)[0][2] == b"203.0.113.7 https example.com"
    async with serve(handler, proxy_headers=True, forwarded_allow_ips="10.0.0.1") as s:
        raw = await exchange(
            s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + forwarded + b"\r\n"
        )
        assert parse_responses(raw)[0][2] == b"127.0.0.1 http a"


def _socket_options(server: web.Server) -> tuple[bool, bool]:
    """(TCP_NODELAY, SO_KEEPALIVE) on the server side of *server*'s one connection."""
    [conn] = server.connections
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    return bool(nodelay), bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))


async def _one_answer(port: int) -> asyncio.StreamWriter:
    """A connection to *port* that has had one answer (and stays open)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return writer


@pytest.mark.parametrize("keepalive", [True, False])
async def test_accepted_sockets_have_nodelay_and_keepalive_as_configured(keepalive: bool) -> None:
    # TCP_NODELAY is set by the loop's transport (lowserve relies on it), SO_KEEPALIVE
    # by the connection when tcp_keepalive is on (aiohttp's default).
    async with serve(hello, tcp_keepalive=keepalive) as s:
        writer = await _one_answer(s.port)
        assert _socket_options(s.server) == (True, keepalive)
        writer.close()


@pytest.mark.parametrize("burst", [False, True])
def test_uvloop_accepted_sockets_have_nodelay_and_keepalive(burst: bool) -> None:
    # The same on uvloop, through its own listener and through the burst acceptor,
    # which hands uvloop bare descriptors (lowserve.listening._Accepted).
    import uvloop

    from lowserve import listening

    async def main() -> list[tuple[bool, bool]]:
        loop = asyncio.get_running_loop()
        found = []
        for keepalive in (True, False):
            server = web.Server(hello, access_log=None, tcp_keepalive=keepalive)
            server.bind_loop(loop)
            listener = socket.create_server(("127.0.0.1", 0))
            listener.setblocking(False)
            port = listener.getsockname()[1]
            if burst:
                acceptor = listening.BurstAcceptor(loop, listener, server, None, 16)
                closing: Any = acceptor
            else:
                closing = await loop.create_server(server, sock=listener)
            writer = await _one_answer(port)
            found.append(_socket_options(server))
            writer.close()
            closing.close()
            await server.shutdown(1.0)
            listener.close()
        return found

    assert uvloop.run(asyncio.wait_for(main(), 10)) == [(True, True), (True, False)]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_uvloop_peer_is_named_when_asked_also_after_the_close(host: str) -> None:
    # On uvloop's TCP transport a connection names its peer when first asked
    # (HttpProtocol.peer): a handler that reads request.remote after its client went
    # away still gets the address; SO_KEEPALIVE is set on IPv4 and IPv6 sockets alike.
    import uvloop

    async def main() -> tuple[list[str | None], bool, str | None]:
        loop = asyncio.get_running_loop()
        started, gone = asyncio.Event(), asyncio.Event()
        remotes: list[str | None] = []

        async def handler(request: web.BaseRequest) -> web.Response:
            started.set()
            await gone.wait()
            remotes.append(request.remote)
            return web.Response(text="late")

        server = web.Server(handler, access_log=None)
        listener = await loop.create_server(server, host, 0)
        port = listener.sockets[0].getsockname()[1]
        client = socket.create_connection((host, port), timeout=5)
        client.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")

        async def until(condition: Callable[[], bool]) -> None:
            while not condition():
                await asyncio.sleep(0.005)

        await asyncio.wait_for(started.wait(), 5)
        [conn] = server.connections
        keepalive = _socket_options(server)[1]
        # reset, not closed: a half-closed client would still be answered
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        await asyncio.wait_for(until(lambda: conn.transport is None), 5)
        gone.set()
        await asyncio.wait_for(until(lambda: bool(remotes)), 5)
        listener.close()
        await server.shutdown(1.0)
        return remotes, keepalive, conn.peer

    assert uvloop.run(asyncio.wait_for(main(), 10)) == ([host], True, host)


_WS_UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
_WS_CLOSE = bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])  # close 1000, masked
#: How a connection ends: what the client sends, how it reads (exchange's options),
#: and how the answer it reads begins.
_ENDINGS: dict[str, tuple[bytes, dict[str, Any], bytes]] = {
    "answered, then closed by the server": (
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        {},
        b"HTTP/1.1 200",
    ),
    "refused": (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", {}, b"HTTP/1.1 400"),
    "closed by the peer while idle": (
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        {"until_close": False},
        b"HTTP/1.1 200",
    ),
    "closed by the peer while its handler runs": (
        b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n",
        {"expect": 0},  # closed once sent
        b"",
    ),
}


async def _one_connection(port: int, ending: str) -> None:
    """A connection to *port* that ends as *ending* says; returns once the client is done."""
    if ending != "a WebSocket":
        data, how, begins = _ENDINGS[ending]
        assert (await exchange(port, data, **how)).startswith(begins)
        return
    # a WebSocket, closed by the client once upgraded
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(_WS_UPGRADE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101")
        writer.write(_WS_CLOSE)
        while await asyncio.wait_for(reader.read(65536), 5):
            pass
    finally:
        writer.close()


@pytest.mark.parametrize("ending", [*_ENDINGS, "a WebSocket"])
@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_closed_connection_is_freed_without_the_cyclic_collector(
    ending: str, loop_kind: str
) -> None:
    # Once closed and its handler done, a connection cuts the references its parts hold
    # back to it (HttpProtocol._release): reference counting frees it as it goes, and
    # the collector finds nothing of lowserve's (it used to find ~20 objects a
    # connection, which its older generations then walked: bench/PROFILE.md, round 11).
    import gc

    import uvloop

    async def main() -> list[str]:
        handlers: list[asyncio.Task[Any]] = []

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            if request.path == "/ws":
                ws = web.WebSocketResponse()
                await ws.prepare(request)
                async for _ in ws:
                    pass
                return ws
            if request.path == "/slow":
                assert request.task is not None
                handlers.append(request.task)
                await asyncio.sleep(0.05)
            return web.Response(text="OK")

        async with serve(handler) as s:

            async def until(condition: Callable[[], bool]) -> None:
                while not condition():
                    await asyncio.sleep(0.005)

            await _one_connection(s.port, ending)  # the first: imports and caches made
            await asyncio.wait_for(until(lambda: not s.server.connections), 5)
            gc.collect()
            gc.disable()
            try:
                for _ in range(5):
                    await _one_connection(s.port, ending)
                await asyncio.wait_for(until(lambda: not s.server.connections), 5)
                # a handler the peer left runs on to its end, and its task with it
                await asyncio.wait_for(asyncio.gather(*handlers), 5)
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                found = sorted(
                    type(o).__qualname__
                    for o in gc.garbage
                    if type(o).__module__.startswith(("lowserve", "httptools"))
                )
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
        return found

    run = uvloop.run if loop_kind == "uvloop" else asyncio.run
    assert run(asyncio.wait_for(main(), 20)) == []
