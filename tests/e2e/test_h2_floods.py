"""HTTP/2's known attacks, each mounted against a live server: the answer is a reset
or a GOAWAY with the right code, the server's memory and handlers stay bounded, and
it goes on serving other clients.

rapid reset (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316), PING, SETTINGS
and empty-frame floods and their unread answers (CVE-2019-9512, -9515, -9518), an
HPACK bomb (CVE-2016-6581), a zero window (CVE-2019-9517's stall), too many
concurrent streams, and the last stream ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import h2.errors
import h2.events
import h2.settings
import pytest
from hpack import Encoder
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, PingFrame, SettingsFrame

from lowserve import web

from conftest import H2Client, serve

CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


async def hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text="ok")


async def still_serves(port: int) -> None:
    """Another client is answered as before."""
    client = await H2Client.connect(port)
    try:
        assert (await client.request("GET", "/"))[0] == 200
    finally:
        client.close()


async def goaway_code(client: H2Client) -> int:
    end = await client.goaway(timeout=10)
    assert end is not None, "the connection ended without a GOAWAY"
    # ... and then the server closes it.
    await client.read_until(lambda e: False, timeout=10)
    assert client.closed
    return int(end.error_code)


async def test_rapid_reset(caplog: pytest.LogCaptureFixture) -> None:
    started = 0
    gate = asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.Response:
        nonlocal started
        started += 1
        await gate.wait()
        return web.Response(text="late")

    async with serve(slow, http2_max_concurrent_streams=10, http2_max_resets=50) as srv:
        client = await H2Client.connect(srv.port)
        try:
            for _ in range(200):  # open and cancel at once, as fast as it can
                stream = client.send_request("GET", "/")
                client.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
                client.flush()
            assert await goaway_code(client) == CALM
        finally:
            client.close()
        # Reset streams whose handlers still run count against the concurrency limit:
        # the flood started no more handlers than that.
        assert started <= 10
        gate.set()
        await still_serves(srv.port)
    assert any(
        "CVE-2023-44487" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


async def test_continuation_flood() -> None:
    async with serve(hello) as srv:
        client = await H2Client.connect(srv.port)
        try:
            block = Encoder().encode(
                [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
            )
            head = HeadersFrame(1)
            head.data = block
            client.send_raw(head.serialize())  # no END_HEADERS: a header block begins
            for _ in range(200):  # and never ends
                more = ContinuationFrame(1)
                more.data = b"\x40\x01a\x01b" * 1000  # literal fields, ~5 KB a frame
                client.send_raw(more.serialize())
            assert await goaway_code(client) == h2.errors.ErrorCodes.PROTOCOL_ERROR
        finally:
            client.close()
        await still_serves(srv.port)


@pytest.mark.parametrize("kind", ["ping", "settings", "empty-data"])
async def test_control_frame_floods(kind: str) -> None:
    async with serve(hello, http2_max_control_frames=100) as srv:
        client = await H2Client.connect(srv.port)
        try:
            stream = client.send_request("POST", "/", end=False) if kind == "empty-data" else 0
            for i in range(500):
                if kind == "ping":
                    frame: Any = PingFrame(0)
                    frame.opaque_data = i.to_bytes(8, "big")
                elif kind == "settings":
                    frame = SettingsFrame(0)
                    frame.settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 65535}
                else:
                    frame = DataFrame(stream)
                client.send_raw(frame.serialize())
            assert await goaway_code(client) == CALM
        finally:
            client.close()
        await still_serves(srv.port)


async def test_unread_ping_answers_stay_bounded() -> None:
    """A client that sends PINGs and never reads: the server stops reading once its
    answers fill the transport's buffer (it does not queue an answer per PING)."""
    async with serve(hello, http2_max_control_frames=10**9, header_read_timeout=100) as srv:
        # Small socket buffers on the client's side, so that the kernel does not
        # absorb megabytes of answers before the server's own buffer fills.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", srv.port))
        client = H2Client(*await asyncio.open_connection(sock=sock))
        try:
            frame = PingFrame(0)
            frame.opaque_data = b"12345678"
            burst = frame.serialize() * 4096
            sent = 0
            conn = srv.server.connections[0]
            assert conn.transport is not None
            for _ in range(200):  # 800,000 PINGs, if the server took them all
                client.send_raw(burst)
                sent += 4096
                # Our buffer filling (drain timing out) only says the server is slow to
                # read: keep sending until it says it has stopped reading.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(client.writer.drain(), 0.2)
                if not conn.transport.is_reading():
                    break
            assert sent < 800_000
            assert not conn.transport.is_reading()
            buffered = conn.transport.get_write_buffer_size()
            assert buffered < 1 << 20, buffered  # bounded by the high-water mark and one read
        finally:
            client.writer.transport.abort()
        await still_serves(srv.port)


async def test_hpack_bomb() -> None:
    """A 4 KB field in the dynamic table, referenced a hundred times: a small block that
    decodes past http2_max_header_list_size."""
    async with serve(hello) as srv:
        client = await H2Client.connect(srv.port)
        try:
            encoder = Encoder()
            fields = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
            fields += [("x-bomb", "a" * 4000)] * 100
            block = encoder.encode(fields)
            assert len(block) < 6000
            head = HeadersFrame(1)
            head.flags.add("END_HEADERS")
            head.flags.add("END_STREAM")
            head.data = block
            client.send_raw(head.serialize())
            assert await goaway_code(client) == CALM
        finally:
            client.close()
        await still_serves(srv.port)


async def test_zero_window_stall_is_reset_after_send_timeout() -> None:
    async def big(request: web.BaseRequest) -> web.Response:
        return web.Response(body=b"z" * 100_000)

    async with serve(big, send_timeout=1.0) as srv:
        client = await H2Client.connect(srv.port, settings={0x4: 0})  # INITIAL_WINDOW_SIZE 0
        try:
            loop = asyncio.get_running_loop()
            began = loop.time()
            stream = client.send_request("GET", "/")
            reset = await client.read_until(
                lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == stream, timeout=10
            )
            assert reset.error_code == h2.errors.ErrorCodes.CANCEL
            assert 0.9 <= loop.time() - began < 5
            assert srv.server.connections  # the connection itself goes on
            assert (await client.request("HEAD", "/"))[0] == 200
        finally:
            client.close()


async def test_too_many_concurrent_streams() -> None:
    gate = asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.Response:
        await gate.wait()
        return web.Response(text="ok")

    async with serve(slow, http2_max_concurrent_streams=5) as srv:
        client = await H2Client.connect(srv.port)
        try:
            await client.read_until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
            assert client.conn.remote_settings.max_concurrent_streams == 5
            for _ in range(5):
                client.send_request("GET", "/")
            # The client's library keeps to the limit; one that does not is told so.
            client.conn.remote_settings = type(client.conn.remote_settings)(
                client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}
            )
            client.send_request("GET", "/")
            assert await goaway_code(client) == h2.errors.ErrorCodes.PROTOCOL_ERROR
        finally:
            gate.set()
            client.close()
        await still_serves(srv.port)


async def test_the_last_stream_id() -> None:
    async with serve(hello) as srv:
        client = await H2Client.connect(srv.port)
        try:
            last = 2**31 - 1
            client.conn.send_headers(
                last,
                [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")],
                end_stream=True,
            )
            client.flush()
            assert (await client.response(last))[0] == 200
            # A stream ID that goes back down is a protocol error.
            head = HeadersFrame(3)
            head.flags.add("END_HEADERS")
            head.flags.add("END_STREAM")
            head.data = Encoder().encode(
                [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
            )
            client.send_raw(head.serialize())
            assert await goaway_code(client) == h2.errors.ErrorCodes.PROTOCOL_ERROR
        finally:
            client.close()


@pytest.mark.parametrize("seed", range(20))
async def test_random_frames_end_the_connection_quietly(
    seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage after the preface (random frame headers and payloads): the connection
    ends with a GOAWAY or a close, nothing is logged above DEBUG, the server goes on."""
    import random

    rng = random.Random(seed)
    async with serve(hello) as srv:
        client = await H2Client.connect(srv.port)
        try:
            for _ in range(20):
                payload = rng.randbytes(rng.randrange(0, 64))
                kind = rng.randrange(0, 12)
                flags = rng.randrange(0, 256)
                stream = rng.choice([0, 1, 3, rng.randrange(0, 2**31)])
                client.send_raw(
                    len(payload).to_bytes(3, "big")
                    + bytes([kind, flags])
                    + stream.to_bytes(4, "big")
                    + payload
                )
            client.flush()
            await client.read_until(lambda e: False, timeout=10)
        except (ConnectionResetError, asyncio.TimeoutError):
            pass  # the server may also reset, or wait for more: either is fine
        finally:
            client.close()
        await still_serves(srv.port)
    noisy = [
        r for r in caplog.records if r.levelno > logging.DEBUG and r.name.startswith("lowserve")
    ]
    assert noisy == [], [r.getMessage() for r in noisy]
