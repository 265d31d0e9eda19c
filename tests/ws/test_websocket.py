"""WebSocketResponse over real sockets: websockets and aiohttp clients, raw frames."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
import zlib
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.typing import Subprotocol

from lowserve import web
from lowserve.web import ClientDisconnectedError

from conftest import exchange, serve

KEY = base64.b64encode(b"0123456789abcdef").decode()
HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
)


async def echo(request: web.BaseRequest) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("chat", "v2"), max_msg_size=1024)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is web.WSMsgType.TEXT:
            if msg.data == "close-me":
                await ws.close(code=4001, message=b"bye")
                break
            await ws.send_str(msg.data)
        elif msg.type is web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bool = True
) -> bytes:
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, (0x80 if mask else 0) | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def raw_ws(port: int, frames: bytes, extra_headers: str = "") -> tuple[bytes, bytes]:
    """Handshake, send raw frames, return (response head, everything after it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((HANDSHAKE + extra_headers + "\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.write(frames)
    rest = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return head, rest


def close_code(data: bytes) -> int:
    """The code of the first close frame the server sent."""
    i = 0
    while i < len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        start = i + 2 + (2 if n == 126 else 8 if n == 127 else 0)
        if n >= 126:
            n = int.from_bytes(data[i + 2 : start], "big")
        if op == 8:
            return int.from_bytes(data[start : start + 2], "big")
        i = start + n
    raise AssertionError(f"no close frame in {data!r}")


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client(compression: str | None) -> None:
    async with (
        serve(echo) as s,
        websockets.connect(
            f"ws://127.0.0.1:{s.port}/ws", subprotocols=[Subprotocol("v2")], compression=compression
        ) as client,
    ):
        assert client.subprotocol == "v2"
        assert client.response is not None
        exts = client.response.headers.get("Sec-WebSocket-Extensions")
        assert (exts is not None) == (compression is not None)
        for text in ("hello", "é" * 300, ""):
            await client.send(text)
            assert await client.recv() == text
        await client.send(b"\x00\x01" * 100)
        assert await client.recv() == b"\x00\x01" * 100
        await client.send("close-me")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_aiohttp_client_and_fragments() -> None:
    async with (
        serve(echo) as s,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{s.port}/ws", protocols=("chat",)) as ws,
    ):
        assert ws.protocol == "chat"
        await ws.send_str("aio")
        assert await ws.receive_str() == "aio"
        await ws.send_json({"a": 1})
        assert (await ws.receive()).json() == {"a": 1}
        await ws.close()
        assert ws.close_code == 1000


async def test_fragmented_message_reassembled() -> None:
    async with serve(echo) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(
            frame(1, b"hel", fin=False)
            + frame(9, b"ping!")
            + frame(0, b"lo", fin=False)
            + frame(0, b"!")
        )
        assert await asyncio.wait_for(reader.readexactly(7), 5) == b"\x8a\x05ping!"  # pong first
        assert await asyncio.wait_for(reader.readexactly(8), 5) == b"\x81\x06hello!"
        writer.write(frame(8, struct.pack("!H", 1000)))
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert close_code(rest) == 1000


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (frame(1, b"hi", mask=False), 1002),  # unmasked client frame
        (frame(1, b"hi", rsv1=True), 1002),  # reserved bit without an extension
        (frame(1, b"\xff\xfe"), 1007),  # bad UTF-8
        (frame(1, b"ab", fin=False) + frame(0, b"\xc3", fin=False) + frame(0, b"\x28"), 1007),
        (frame(9, b"x" * 126), 1002),  # control frame over 125 bytes
        (frame(9, b"x", fin=False), 1002),  # fragmented control frame
        (frame(2, b"x" * 2000), 1009),  # over max_msg_size
        (frame(2, b"x" * 600, fin=False) + frame(0, b"x" * 600), 1009),  # over it across fragments
        (frame(0, b"orphan"), 1002),  # continuation without a start
        (frame(3, b"?"), 1002),  # reserved opcode
    ],
    ids=[
        "unmasked",
        "rsv1",
        "bad-utf8",
        "bad-utf8-fragments",
        "long-control",
        "fragmented-control",
        "too-big",
        "too-big-fragments",
        "orphan-continuation",
        "reserved-opcode",
    ],
)
async def test_protocol_violations(
    frames: bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[web.WSMsgType] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1024 if code == 1009 else 4 * 2**20)
        await ws.prepare(request)
        async for msg in ws:
            seen.append(msg.type)
        return ws

    async with serve(handler) as s:
        _, rest = await raw_ws(s.port, frames)
    assert close_code(rest) == code
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a protocol violation"
    assert web.WSMsgType.TEXT not in seen and web.WSMsgType.BINARY not in seen


async def test_deflate_bomb_is_refused() -> None:
    comp = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bomb = comp.compress(b"\0" * 10_000_000) + comp.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]  # permessage-deflate strips the sync-flush tail

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=65536)
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async with serve(handler) as s:
        _, rest = await raw_ws(
            s.port, frame(2, bomb, rsv1=True), "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
    assert close_code(rest) == 1009


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Upgrade: websocket\r\nConnection: keep-alive\r\n", 400),
        ("Upgrade: h2c\r\nConnection: Upgrade\r\n", 400),
        ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 12\r\n", 400),
        (
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {base64.b64encode(b'short').decode()}\r\n",
            400,
        ),
        (
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: !!notbase64!!\r\n",
            400,
        ),
    ],
    ids=["no-connection-upgrade", "not-websocket", "version", "short-key", "bad-key"],
)
async def test_bad_handshakes(headers: str, status: int) -> None:
    async with serve(echo) as s:
        out = await exchange(
            s.port, f"GET /ws HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode(), until_close=False
        )
    assert out.startswith(b"HTTP/1.1 %d " % status)


async def test_can_prepare_and_handler_headers_kept() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("x",))
        seen["ready"] = ws.can_prepare(request)
        if not seen["ready"].ok:
            return web.Response(text="plain")
        ws.headers["X-Custom"] = "kept"
        await ws.prepare(request)
        await ws.close()
        return ws

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"plain") and seen["ready"] == (False, None)
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "Sec-WebSocket-Protocol: y, x\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"X-Custom: kept\r\n" in head and b"Sec-WebSocket-Protocol: x\r\n" in head
    assert b"Sec-WebSocket-Accept: " in head
    assert seen["ready"] == (True, "x")


async def test_autoping_off_shows_ping_and_pong() -> None:
    """With autoping=False the handler sees PING and PONG, and a ping is answered only
    by the handler's own pong (aiohttp's behaviour): exactly one PONG frame goes out."""
    got: list[Any] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, timeout=0.2)
        await ws.prepare(request)
        for _ in range(2):
            msg = await ws.receive()
            got.append((msg.type, msg.data))
            if msg.type is web.WSMsgType.PING:
                await ws.pong(b"mine:" + msg.data)
        await ws.close()
        return ws

    async with serve(handler) as s:
        _, out = await raw_ws(s.port, frame(9, b"pi") + frame(10, b"po"))
    assert got == [(web.WSMsgType.PING, b"pi"), (web.WSMsgType.PONG, b"po")]
    assert out.startswith(bytes([0x8A, 7]) + b"mine:pi")
    assert out.count(bytes([0x8A])) == 1


async def test_heartbeat_without_pong_closes_abnormally() -> None:
    result: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=0.2)
        await ws.prepare(request)
        msg = await ws.receive()
        result["type"], result["code"] = msg.type, ws.close_code
        result["error"] = repr(msg.data)
        result["exception"] = ws.exception() is msg.data
        result["next"] = (await ws.receive()).type
        done.set()
        return ws

    done = asyncio.Event()
    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        ping = await asyncio.wait_for(reader.readexactly(2), 5)
        assert ping == b"\x89\x00"  # the server pings; we never answer
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(done.wait(), 5)
    # As aiohttp: the receive() waiting gets an ERROR, then CLOSED.
    assert result == {
        "type": web.WSMsgType.ERROR,
        "code": 1006,
        "error": "TimeoutError('No PONG received after 0.1 seconds')",
        "exception": True,
        "next": web.WSMsgType.CLOSED,
    }


async def test_receive_timeout_and_concurrent_receive() -> None:
    result: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(receive_timeout=0.1, timeout=0.2)
        await ws.prepare(request)
        try:
            await ws.receive()
        except asyncio.TimeoutError:
            result["timeout"] = True
        first = asyncio.ensure_future(ws.receive(timeout=5))
        await asyncio.sleep(0)
        try:
            await ws.receive()
        except RuntimeError as exc:
            result["concurrent"] = str(exc)
        first.cancel()
        await ws.close()
        return ws

    async with serve(handler) as s:
        await raw_ws(s.port, b"")
    assert result == {"timeout": True, "concurrent": "Concurrent call to receive() is not allowed"}


async def test_slow_reader_applies_back_pressure() -> None:
    sent = 0
    done = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        nonlocal sent
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            for _ in range(2000):
                await ws.send_bytes(b"x" * 65536)
                sent += 1
        except ConnectionError:
            pass
        done.set()
        return ws

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port, limit=2**16)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        await asyncio.sleep(0.3)  # read nothing: the server must stop, not buffer 128 MiB
        assert sent < 200
        writer.close()
        await asyncio.wait_for(done.wait(), 10)


async def test_graceful_shutdown_closes_with_1001() -> None:
    started = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        started.set()
        async for _ in ws:
            pass
        return ws

    server = web.Server(handler, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with websockets.connect(f"ws://127.0.0.1:{site.port}/") as client:
        await asyncio.wait_for(started.wait(), 5)
        cleanup = asyncio.create_task(runner.cleanup())
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(client.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    await asyncio.wait_for(cleanup, 10)


async def test_handler_return_closes_socket() -> None:
    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("one and done")
        return ws

    async with serve(handler) as s, websockets.connect(f"ws://127.0.0.1:{s.port}/") as client:
        assert await client.recv() == "one and done"
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(client.recv(), 5)


async def test_fast_path_survives_splits_and_mixed_frames() -> None:
    """Simple frames split at every byte, long (16-bit length) frames, and control and
    fragmented frames between them: the fast path hands over and resumes correctly."""
    async with serve(echo) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)

        async def expect(data: bytes) -> None:
            assert await asyncio.wait_for(reader.readexactly(len(data)), 5) == data

        for byte in frame(1, b"split"):  # one byte per segment
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)
        await expect(b"\x81\x05split")
        writer.write(frame(2, b"y" * 300))  # 16-bit length
        await expect(b"\x82\x7e\x01\x2c" + b"y" * 300)
        writer.write(frame(9, b"p") + frame(1, b"after-ping"))  # control frame, then simple
        await expect(b"\x8a\x01p")
        await expect(b"\x81\x0aafter-ping")
        writer.write(frame(1, b"fr", fin=False) + frame(0, b"ag"))  # fragmented, then simple
        writer.write(frame(1, b"next"))
        await expect(b"\x81\x04frag")
        await expect(b"\x81\x04next")
        half = frame(9, b"x")
        writer.write(half[:3])  # a control frame split mid-header goes through websockets
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(half[3:] + frame(1, b"ok"))
        await expect(b"\x8a\x01x")
        await expect(b"\x81\x02ok")
        writer.write(frame(8, struct.pack("!H", 1000)))
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert close_code(rest) == 1000


async def test_frames_sent_with_the_handshake_all_arrive() -> None:
    """More than 64 KiB of frames in the same write as the handshake: none is lost
    where the parser hands the rest of the segment over."""
    async with serve(echo) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        payloads = [bytes([i]) * 500 for i in range(200)]
        writer.write((HANDSHAKE + "\r\n").encode() + b"".join(frame(2, p) for p in payloads))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        for p in payloads:
            head = await asyncio.wait_for(reader.readexactly(4), 5)
            assert head == bytes([0x82, 126]) + struct.pack("!H", 500)
            assert await asyncio.wait_for(reader.readexactly(500), 5) == p
        writer.close()


async def test_autoclose_off_leaves_the_close_reply_to_the_handler() -> None:
    """With autoclose=False a client's close frame is not echoed: the handler sees
    CLOSE, may still send, and its close() is the reply (aiohttp's behaviour)."""
    seen: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False)
        await ws.prepare(request)
        msg = await ws.receive()
        seen["msg"] = (msg.type, msg.data, msg.extra)
        seen["next"] = (await ws.receive()).type
        await ws.send_str("after")
        seen["closed_by_call"] = await ws.close(code=4000, message=b"mine")
        return ws

    async with serve(handler) as s:
        _, out = await raw_ws(s.port, frame(8, struct.pack("!H", 1000) + b"bye"))
    assert seen["msg"] == (web.WSMsgType.CLOSE, 1000, "bye")
    assert seen["next"] is web.WSMsgType.CLOSING and seen["closed_by_call"] is True
    assert out == bytes([0x81, 5]) + b"after" + bytes([0x88, 6]) + struct.pack("!H", 4000) + b"mine"


# -- closing and disconnects, byte for byte (tests/ws/test_ws_response.py compares the
#    handler's view with aiohttp's) ----------------------------------------------------


async def _wait_for(cond: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 5
    while not cond():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_prepare_after_the_client_half_closed_sends_no_101(caplog_debug: Any) -> None:
    """As aiohttp: prepare() raises ConnectionResetError once the client has shut its
    side, before any 101 goes out; the handler that lets it propagate is one DEBUG line
    (a half-closed client can still read the 400)."""
    seen: list[BaseException] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        await _wait_for(lambda: request.protocol.client_eof, "the client's FIN")
        ws = web.WebSocketResponse()
        try:
            await ws.prepare(request)
        except ConnectionResetError as exc:
            seen.append(exc)
            raise
        return ws

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        writer.write_eof()
        out = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert [(type(e), str(e)) for e in seen] == [(ClientDisconnectedError, "Connection lost")]
    assert out.startswith(b"HTTP/1.1 400 ") and b"101" not in out.partition(b"\r\n")[0]
    assert not [r for r in caplog_debug.records if r.levelno >= logging.WARNING]


async def test_a_close_the_client_never_answers_times_out_with_1006() -> None:
    """The close frame goes out; no answer within ``timeout``: the server ends the TCP
    connection, close() is True, close_code 1006 and exception() a bare TimeoutError,
    as aiohttp sets them."""
    seen: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=0.2)
        await ws.prepare(request)
        seen["close"] = await ws.close(code=4001, message=b"bye")
        seen["state"] = (ws.closed, ws.close_code, ws.exception())
        seen["again"] = await ws.close()
        return ws

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        out = await asyncio.wait_for(reader.read(), 5)  # ends when the server gives up
        writer.close()
    assert out == b"\x88\x05\x0f\xa1bye"
    assert seen["close"] is True and seen["again"] is False
    closed, code, exc = seen["state"]
    # asyncio.TimeoutError: the builtin TimeoutError from 3.11, its own class on 3.10
    assert (closed, code, type(exc), exc.args) == (True, 1006, asyncio.TimeoutError, ())


async def test_a_client_gone_without_a_close_frame(caplog_debug: Any) -> None:
    """A client that half-closes after a message: the handler gets the message, then
    CLOSED; close_code is 1006, exception() a ConnectionResetError (aiohttp's, whose
    reply meets a closed transport), sending raises it, close() says False, and the
    fifth receive() after raises RuntimeError. No close frame is sent."""
    seen: list[Any] = []
    done = asyncio.Event()

    async def outcome(coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:
            return (type(exc), str(exc))

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        try:
            await ws.prepare(request)
            seen.append((await ws.receive())[:2])
            seen.append((await ws.receive())[:2])
            exc = ws.exception()
            seen.append((ws.closed, ws.close_code, type(exc), str(exc)))
            seen.append(await outcome(ws.send_str("x")))
            seen.append(await ws.close())
            seen.append([(await ws.receive()).type for _ in range(4)])
            seen.append(await outcome(ws.receive()))
        finally:
            done.set()
        return ws

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode() + frame(1, b"last words"))
        writer.write_eof()
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        out = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(done.wait(), 5)
    assert out == b""
    assert seen == [
        (web.WSMsgType.TEXT, "last words"),
        (web.WSMsgType.CLOSED, None),
        (True, 1006, ClientDisconnectedError, "Cannot write to closing transport"),
        (ClientDisconnectedError, "Cannot write to closing transport"),
        False,
        [web.WSMsgType.CLOSED] * 4,
        (RuntimeError, "WebSocket connection is closed."),
    ]
    assert not [r for r in caplog_debug.records if r.levelno >= logging.WARNING]


async def test_a_client_gone_while_close_waits_for_its_answer() -> None:
    """The client takes the close frame and leaves without answering: close() returns
    at once with 1006 and a ClientDisconnectedError (aiohttp: its internal EofStream)."""
    seen: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=5)
        await ws.prepare(request)
        started = asyncio.get_running_loop().time()
        seen["close"] = await ws.close()
        seen["fast"] = asyncio.get_running_loop().time() - started < 4
        seen["state"] = (ws.close_code, repr(ws.exception()))
        return ws

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"\x88\x02\x03\xe8"
        writer.close()
        await _wait_for(lambda: "state" in seen, "the handler")
    assert seen == {
        "close": True,
        "fast": True,
        "state": (1006, "ClientDisconnectedError('Connection lost')"),
    }


async def test_a_close_frame_without_a_code_reads_as_1005() -> None:
    """An empty close frame: CLOSE with 1005, RFC 6455's code for "no status" (aiohttp:
    0), answered with 1000; close_code 1005 too."""
    seen: list[Any] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen.append(tuple(await ws.receive()))
        seen.append((ws.closed, ws.close_code))
        return ws

    async with serve(handler) as s:
        _, out = await raw_ws(s.port, frame(8, b""))
    assert out == b"\x88\x02\x03\xe8"
    assert seen == [(web.WSMsgType.CLOSE, 1005, ""), (True, 1005)]


async def test_closed_and_close_code_change_when_the_client_vanishes() -> None:
    """Unlike aiohttp (which waits for the next receive()), ``closed`` and 1006 show as
    soon as the connection is lost, so a loop that sends while ``not ws.closed`` ends;
    exception() is set when the handler reads CLOSED, as in aiohttp."""
    seen: list[Any] = []
    gone = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await asyncio.wait_for(gone.wait(), 5)
        await _wait_for(lambda: ws.closed, "ws.closed")
        seen.append((ws.closed, ws.close_code, ws.exception()))
        seen.append((await ws.receive()).type)
        seen.append(type(ws.exception()))
        return ws

    async with serve(handler) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write((HANDSHAKE + "\r\n").encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        gone.set()
        await _wait_for(lambda: len(seen) == 3, "the handler")
    assert seen == [(True, 1006, None), web.WSMsgType.CLOSED, ClientDisconnectedError]
