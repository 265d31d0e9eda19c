"""--metrics' per-connection counts (bytes, keep-alive reuse, WebSocket messages) and
refusals by reason, against exactly what a raw-socket client sent and received."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable

import pytest

from lowserve import web
from lowserve.conn.metrics import RequestMetrics, snapshot

from conftest import H2Client, hello, serve

pytestmark = pytest.mark.timeout(20)


async def _until(check: Callable[[], bool], what: str) -> None:
    """Yield to the loop until *check* holds (the server's side of a close runs there)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 5):
        out += chunk
    return out


async def test_bytes_and_keepalive_reuse_are_what_the_client_sent_and_got() -> None:
    async with serve(hello) as served:
        server = served.server
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(first)
        got = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nOK"), 5)
        # an open connection's counts are in the totals already
        live = server.traffic()
        assert (live["bytes_read"], live["bytes_written"]) == (len(first), len(got))
        assert live["keepalive_requests"] == 0
        more = (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        writer.write(more)
        got += await _read_all(reader)
        writer.close()
        await _until(lambda: server.connections_closed == 1, "the close")
        counts = server.traffic()
        assert counts["bytes_read"] == len(first) + len(more)
        assert counts["bytes_written"] == len(got) and got.count(b"HTTP/1.1 200") == 3
        assert counts["keepalive_requests"] == 2  # the 2nd and 3rd on a used connection
        # a second connection, one request: no reuse
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await _read_all(reader)
        writer.close()
        await _until(lambda: server.connections_closed == 2, "the second close")
        assert server.traffic()["keepalive_requests"] == 2


async def test_http2_streams_after_a_connections_first_count_as_keepalive_reuse() -> None:
    """On HTTP/2 keep-alive reuse is the same figure: requests answered on a connection
    after its first (here three streams, two of them concurrent, then a second
    connection with one); every stream's request is counted by method and status."""
    async with serve(hello) as served:
        server = served.server
        recorder = server.record_metrics()
        client = await H2Client.connect(served.port)
        try:
            assert (await client.request("GET", "/"))[0] == 200
            second, third = client.send_request("GET", "/a"), client.send_request("HEAD", "/b")
            assert [(await client.response(i))[0] for i in (second, third)] == [200, 200]
            assert server.traffic()["keepalive_requests"] == 2  # counted while open
        finally:
            client.close()
        await _until(lambda: server.connections_closed == 1, "the close")
        client = await H2Client.connect(served.port)
        try:
            assert (await client.request("GET", "/"))[0] == 200
        finally:
            client.close()
        await _until(lambda: server.connections_closed == 2, "the second close")
        snap = snapshot(server, recorder)
        assert snap["keepalive_requests"] == 2
        assert snap["requests"] == {"GET": [0, 3, 0, 0, 0], "HEAD": [0, 1, 0, 0, 0]}


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (payloads under 126 bytes)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 * fin | opcode, 0x80 | len(payload))) + mask + masked


async def _echo_ws(request: web.BaseRequest) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def test_websocket_messages_and_bytes_are_counted() -> None:
    async with serve(_echo_ws) as served:
        server = served.server
        recorder = server.record_metrics()
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        key = base64.b64encode(os.urandom(16))
        handshake = (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        writer.write(handshake)
        got = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert got.startswith(b"HTTP/1.1 101")
        sent = handshake
        # 5 text and 3 binary messages, the last binary one in two fragments
        frames = [_frame(0x1, f"message {i}".encode()) for i in range(5)]
        frames += [_frame(0x2, b"\x00\x01"), _frame(0x2, b"\x02" * 100)]
        frames += [_frame(0x2, b"part one ", fin=False), _frame(0x0, b"part two")]
        for frame in frames:
            writer.write(frame)
            sent += frame
        await writer.drain()
        echoes = b""
        while echoes.count(b"message") < 5 or b"part two" not in echoes:
            echoes += await asyncio.wait_for(reader.read(65536), 5)
        assert snapshot(server, recorder)["websockets_open"] == 1
        close = _frame(0x8, b"\x03\xe8")
        writer.write(close)
        sent += close
        got += echoes + await _read_all(reader)
        writer.close()
        await _until(lambda: server.connections_closed == 1, "the close")
        snap = snapshot(server, recorder)
        assert (snap["ws_received"], snap["ws_sent"]) == (8, 8)
        assert (snap["websockets"], snap["websockets_open"]) == (1, 0)
        assert snap["bytes_read"] == len(sent)
        assert snap["bytes_written"] == len(got)
        assert snap["requests"] == {"GET": [1, 0, 0, 0, 0]}  # the 101, once it ended


@pytest.mark.parametrize(
    ("options", "raw", "reason"),
    [
        ({"max_headers": 4}, b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 8 + b"\r\n", "431"),
        ({}, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", "400"),
        ({"max_line_size": 64}, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
        ({}, b"GET / HTTP/2.5\r\nHost: x\r\n\r\n", "505"),
        ({"header_read_timeout": 0.1}, b"GET / HTTP/1.1\r\n", "head-timeout"),
        (
            {"body_read_timeout": 0.1},
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
            "body-timeout",
        ),
        ({"proxy_protocol": True}, b"PROXY TCP4 nonsense\r\n", "proxy"),
        # past client_max_size, refused by the handler's read(): a 413 it answers
        (
            {"client_max_size": 4},
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
            "413",
        ),
        (
            {"client_max_size": 4},
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
            "413",
        ),
    ],
)
async def test_each_refusal_is_counted_by_its_reason(
    options: dict[str, object], raw: bytes, reason: str
) -> None:
    async def reads_body(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    async with serve(reads_body, **options) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(raw)
        answer = await _read_all(reader)
        writer.close()
        if reason.isdigit() or reason.endswith("timeout"):
            assert answer.split(b" ")[1] == (reason.encode() if reason.isdigit() else b"408")
        assert served.server.refusals_total == {reason: 1}


async def test_the_concurrency_limit_refusal_is_counted() -> None:
    async with serve(hello, limit_concurrency=1) as served:
        _, held = await asyncio.open_connection("127.0.0.1", served.port)
        await _until(lambda: len(served.server.connections) == 1, "the first connection")
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _read_all(reader)).startswith(b"HTTP/1.1 503")
        writer.close()
        held.close()
        assert served.server.refusals_total == {"limit": 1}


def test_a_fresh_recorder_reports_nothing() -> None:
    rec = RequestMetrics()
    assert rec.requests() == {} and sum(rec.buckets()) == 0 and rec.duration_sum == 0.0
