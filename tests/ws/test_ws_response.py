"""WebSocketResponse's API at its edges: calls before prepare(), argument checks, the
typed receive helpers, control frames, extension negotiation and a non-GET handshake.
Each case is what aiohttp's WebSocketResponse does for the same call."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web as aioweb

from lowserve import web

from conftest import exchange, serve
from test_websocket import HANDSHAKE, frame, raw_ws


async def _handshake(port: int, extra: str) -> bytes:
    """The 101 head the server answers the handshake with *extra* headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write((HANDSHAKE + extra + "\r\n").encode())
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


async def test_calls_before_prepare_are_refused_as_aiohttp_does() -> None:
    ws = web.WebSocketResponse()
    assert not ws.prepared and not ws.closed
    assert ws.close_code is None and ws.exception() is None and ws.ws_protocol is None
    assert ws.compress is False
    assert ws.get_extra_info("peername", "none") == "none"
    assert repr(ws) == "<WebSocketResponse open>"
    for call in (
        ws.send_str("x"),
        ws.send_bytes(b"x"),
        ws.send_json({}),
        ws.send_frame(b"x", web.WSMsgType.TEXT),
        ws.ping(),
        ws.pong(),
        ws.receive(),
        ws.close(),
    ):
        with pytest.raises(RuntimeError, match=r"prepare\(\) first"):
            await call
    with pytest.raises(RuntimeError, match=r"Cannot call \.write"):
        await ws.write(b"x")
    await ws.write_eof()  # never prepared: nothing to close
    await ws.write_eof()
    assert ws.prepared


async def test_the_api_over_a_live_connection() -> None:
    """One handler drives the calls; the aiohttp client answers and checks what it got."""
    seen: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("v1",))
        conn = await ws.prepare(request)
        seen["again"] = await ws.prepare(request) is conn
        with pytest.raises(RuntimeError, match="Already started"):
            ws.can_prepare(request)
        seen["peer"] = ws.get_extra_info("peername")[0]
        seen["protocol"] = ws.ws_protocol
        with pytest.raises(TypeError, match="must be str"):
            await ws.send_str(b"bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="byte-ish"):
            await ws.send_bytes("text")  # type: ignore[arg-type]
        await ws.ping(b"p")
        await ws.pong(b"unsolicited")
        await ws.send_frame(b"framed", web.WSMsgType.TEXT)
        await ws.send_json({"a": 1})
        await ws.send_bytes(memoryview(b"mv"))
        seen["json"] = await ws.receive_json()
        with pytest.raises(TypeError, match="is not bytes"):
            await ws.receive_bytes()  # a TEXT message arrives
        seen["bytes"] = await ws.receive_bytes()
        with pytest.raises(TypeError, match=r"is not WSMsgType\.TEXT"):
            await ws.receive_str()  # a BINARY message arrives
        seen["iterated"] = [m.data async for m in ws]  # ends at the client's close
        seen["closed"] = ws.closed
        seen["code"] = ws.close_code
        seen["repr"] = repr(ws)
        seen["close_again"] = await ws.close()
        return ws

    async with (
        serve(handler) as s,
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"http://127.0.0.1:{s.port}/", protocols=("v1",), autoping=False
        ) as client,
    ):
        got = [await client.receive(timeout=5) for _ in range(5)]
        await client.send_str('{"b": 2}')
        await client.send_str("not bytes")
        await client.send_bytes(b"raw")
        await client.send_bytes(b"not text")
        await client.send_str("last")
        await client.close()
    assert [(m.type, m.data) for m in got] == [
        (aiohttp.WSMsgType.PING, b"p"),
        (aiohttp.WSMsgType.PONG, b"unsolicited"),
        (aiohttp.WSMsgType.TEXT, "framed"),
        (aiohttp.WSMsgType.TEXT, '{"a": 1}'),
        (aiohttp.WSMsgType.BINARY, b"mv"),
    ]
    assert seen == {
        "again": True,
        "peer": "127.0.0.1",
        "protocol": "v1",
        "json": {"b": 2},
        "bytes": b"raw",
        "iterated": ["last"],
        "closed": True,
        "code": 1000,
        "repr": "<WebSocketResponse closed>",
        "close_again": False,
    }


async def test_iteration_passes_control_frames_when_autoping_is_off() -> None:
    kinds: list[web.WSMsgType] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for msg in ws:
            kinds.append(msg.type)
        return ws

    async with (
        serve(handler) as s,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{s.port}/", autoping=False) as client,
    ):
        await client.ping(b"1")
        await client.pong(b"2")
        await client.send_str("t")
        await client.close()
    assert kinds[:3] == [web.WSMsgType.PING, web.WSMsgType.PONG, web.WSMsgType.TEXT]


@pytest.mark.parametrize(
    ("offers", "accepted"),
    [
        (["x-unknown, permessage-deflate; client_max_window_bits"], True),
        (["permessage-deflate; server_max_window_bits=7"], False),  # zlib needs >= 8
        (["permessage-deflate; bogus", "permessage-deflate"], True),
        (["=;;", "permessage-deflate"], True),  # a malformed offer is skipped
        (["x-unknown"], False),
    ],
    ids=["unknown-first", "bad-params", "second-header", "malformed-first", "none"],
)
async def test_extension_offers(offers: list[str], accepted: bool) -> None:
    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(f"compress={ws.compress}")
        await ws.close()
        return ws

    extra = "".join(f"Sec-WebSocket-Extensions: {o}\r\n" for o in offers)
    async with serve(handler) as s:
        head = await _handshake(s.port, extra)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert (b"Sec-WebSocket-Extensions: permessage-deflate" in head) is accepted, head


async def test_compression_off_offers_nothing() -> None:
    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        await ws.close()
        return ws

    async with serve(handler) as s:
        head = await _handshake(s.port, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Extensions" not in head


async def test_a_post_handshake_is_405_and_can_prepare_says_no() -> None:
    ready: list[web.WebSocketReady] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        ready.append(ws.can_prepare(request))
        await ws.prepare(request)
        return ws

    async with serve(handler) as s:
        out = await exchange(
            s.port,
            HANDSHAKE.replace("GET ", "POST ", 1).encode() + b"Content-Length: 0\r\n\r\n",
            until_close=False,
        )
    assert out.startswith(b"HTTP/1.1 405 ") and b"Allow: GET\r\n" in out
    assert ready == [web.WebSocketReady(False, None)]


async def test_decode_text_false_gives_bytes_to_every_receive_helper() -> None:
    """As in aiohttp with ``decode_text=False``: receive_str() returns the TEXT message's
    bytes, receive_json() gives those bytes to *loads*, and a fragmented message (and
    one split inside a code point) arrives as its bytes too."""
    got: list[Any] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        ws: web.WebSocketResponse[Literal[False]] = web.WebSocketResponse(decode_text=False)
        await ws.prepare(request)
        got.append(await ws.receive_str())
        got.append(await ws.receive_json(loads=lambda b: (type(b), json.loads(b))))
        got.append(await ws.receive_str())
        got.append((await ws.receive()).data)
        await ws.close()
        return ws

    word = "héllo €".encode()
    frames = (
        frame(1, word)
        + frame(1, b'{"a": "\xc3\xa9"}')
        + frame(1, word[:2], fin=False)  # "h" and half of "é"
        + frame(9, b"p")
        + frame(0, word[2:])
        + frame(1, b"")
        + frame(8, b"\x03\xe8")  # the client's close, answered by the handler's close()
    )
    async with serve(handler) as s:
        _, out = await raw_ws(s.port, frames)
    assert got == [word, (bytes, {"a": "é"}), word, b""]
    assert out == b"\x8a\x01p\x88\x02\x03\xe8"  # the pong, then the close


async def test_receive_str_and_json_decode_text_by_default() -> None:
    got: list[Any] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        got.append(await ws.receive_str())
        got.append(await ws.receive_json(loads=lambda s: (type(s), json.loads(s))))
        await ws.close()
        return ws

    async with serve(handler) as s:
        _, out = await raw_ws(s.port, frame(1, "é".encode()) + frame(1, b"[1]") + frame(8, b""))
    assert out == b"\x88\x02\x03\xe8"
    assert got == ["é", (str, [1])]


# -- closing and disconnects: the same handler under aiohttp's server and lowserve's ----


def _exc(exc: BaseException | None) -> str | None:
    """An exception as a handler tests it: aiohttp's ``ClientConnectionResetError`` and
    lowserve's ``ClientDisconnectedError`` both by their base, ``ConnectionResetError``."""
    if exc is None:
        return None
    kind = "ConnectionResetError" if isinstance(exc, ConnectionResetError) else type(exc).__name__
    return f"{kind}{exc.args!r}"


class _Probe:
    """What a handler saw, recorded alike under either server."""

    def __init__(self, web_ns: Any) -> None:
        self.web = web_ns
        self.seen: list[Any] = []
        self.done = asyncio.Event()

    def gone(self, request: Any) -> bool:
        """The server has seen the client leave: aiohttp drops the transport at EOF,
        lowserve keeps it for a half-closed client and says so in ``client_eof``."""
        if self.web is web:
            return bool(request.protocol.client_eof)
        return request.transport is None

    async def call(self, label: str, coro: Any) -> Any:
        try:
            result = await coro
        except Exception as exc:
            self.seen.append((label, "raised", _exc(exc)))
            return None
        if hasattr(result, "extra"):  # a message
            data = result.data
            data = _exc(data) if isinstance(data, BaseException) else data
            data = bytes(data) if isinstance(data, bytearray) else data
            self.seen.append((label, result.type.name, data, result.extra))
        else:
            self.seen.append((label, result if isinstance(result, bool | None) else "ok"))
        return result

    def state(self, label: str, ws: Any) -> None:
        code = ws.close_code
        self.seen.append(
            (label, ws.closed, None if code is None else int(code), _exc(ws.exception()))
        )


async def _prepare_after_client_left(w: Any, request: Any, p: _Probe) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + 5
    while not p.gone(request):  # wait for the server to see the client's FIN
        assert loop.time() < end, "the server never saw the client leave"
        await asyncio.sleep(0.01)
    ws = w.WebSocketResponse()
    await p.call("prepare", ws.prepare(request))
    p.state("after", ws)
    return w.Response(text="not a WebSocket")


async def _close_unanswered(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse(timeout=0.2)
    await ws.prepare(request)
    await p.call("close", ws.close())
    p.state("after close", ws)
    await p.call("receive", ws.receive())
    await p.call("close again", ws.close())
    await p.call("send_str", ws.send_str("x"))
    p.state("end", ws)
    return ws


async def _receive_until_gone(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse()
    await ws.prepare(request)
    while (await p.call("receive", ws.receive())).type is w.WSMsgType.TEXT:
        pass
    p.state("after", ws)
    await p.call("send_str", ws.send_str("x"))
    await p.call("close", ws.close())
    p.state("end", ws)
    for _ in range(5):  # as aiohttp: four more CLOSED, then RuntimeError
        await p.call("receive again", ws.receive())
    return ws


async def _iterate(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        p.seen.append(("iterated", msg.type.name, msg.data, msg.extra))
    p.state("after the loop", ws)
    await p.call("send_str", ws.send_str("x"))
    await p.call("close", ws.close())
    return ws


async def _server_closes(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse()
    await ws.prepare(request)
    await p.call("close", ws.close(code=4001))
    p.state("after close", ws)
    await p.call("close again", ws.close())
    await p.call("send_str", ws.send_str("x"))
    await p.call("send_bytes", ws.send_bytes(b"x"))
    await p.call("ping", ws.ping())
    await p.call("receive", ws.receive())
    return ws


async def _client_closes(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse()
    await ws.prepare(request)
    await p.call("receive", ws.receive())
    p.state("close frame not read yet", ws)
    await p.call("send_str", ws.send_str("x"))
    await p.call("close", ws.close())
    await p.call("receive", ws.receive())
    p.state("end", ws)
    return ws


async def _client_closes_autoclose_off(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse(autoclose=False)
    await ws.prepare(request)
    await p.call("receive", ws.receive())
    await p.call("receive", ws.receive())
    p.state("close frame read", ws)
    await p.call("receive", ws.receive())
    await p.call("send_str", ws.send_str("x"))
    await p.call("close", ws.close())
    p.state("end", ws)
    await p.call("close again", ws.close())
    return ws


async def _close_from_another_task(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse()
    await ws.prepare(request)
    waiting = asyncio.ensure_future(ws.receive())
    for _ in range(3):
        await asyncio.sleep(0)  # let it start waiting
    await p.call("close", ws.close(code=4002))
    await p.call("the waiting receive", waiting)
    p.state("after close", ws)
    await p.call("receive", ws.receive())
    return ws


async def _heartbeat_unanswered(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse(heartbeat=0.2)
    await ws.prepare(request)
    await p.call("receive", ws.receive())
    p.state("after", ws)
    await p.call("receive", ws.receive())
    await p.call("send_str", ws.send_str("x"))
    return ws


async def _control_messages(w: Any, request: Any, p: _Probe) -> Any:
    ws = w.WebSocketResponse(autoping=False)
    await ws.prepare(request)
    for _ in range(5):
        await p.call("receive", ws.receive())
    p.state("end", ws)
    return ws


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _leave_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _read_to_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    await _until_closed(reader)


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Read until the server closes; a reset ends it too (aiohttp's server resets
    such a connection on Python 3.12, where it closes it on 3.11)."""
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 5)


def _after_101(*, send: bytes = b"", then: str = "read", first: int = 0) -> Any:
    """A client: take the 101, read *first* bytes (the server's close frame), send
    *send*, then ``read`` to EOF, ``fin`` (close the socket) or ``rst`` (reset it)."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if first:
            await asyncio.wait_for(reader.readexactly(first), 5)
        writer.write(send)
        await writer.drain()
        if then == "fin":
            writer.close()
        elif then == "rst":
            _rst(writer)
        else:
            await _until_closed(reader)

    return client


_CLOSE_4000 = frame(8, b"\x0f\xa0bye")
SCENARIOS: dict[str, tuple[Any, Any]] = {
    "prepare-after-client-left": (_prepare_after_client_left, _leave_at_once),
    "close-unanswered": (_close_unanswered, _read_to_end),
    "vanish-fin": (_receive_until_gone, _after_101(then="fin")),
    "vanish-rst": (_receive_until_gone, _after_101(then="rst")),
    "data-then-vanish": (_receive_until_gone, _after_101(send=frame(1, b"hi"), then="fin")),
    "iterate-until-vanish": (_iterate, _after_101(send=frame(1, b"hi"), then="fin")),
    "iterate-until-close": (_iterate, _after_101(send=frame(1, b"hi") + _CLOSE_4000)),
    "server-closes": (
        _server_closes,
        _after_101(first=4, send=frame(1, b"x") + frame(8, b"\x0f\xa5")),
    ),
    "client-closes": (_client_closes, _after_101(send=frame(1, b"hi") + _CLOSE_4000)),
    "client-closes-autoclose-off": (
        _client_closes_autoclose_off,
        _after_101(send=frame(1, b"hi") + _CLOSE_4000),
    ),
    "close-from-another-task": (
        _close_from_another_task,
        _after_101(first=4, send=frame(1, b"late") + frame(8, b"\x03\xe8")),
    ),
    "heartbeat-unanswered": (_heartbeat_unanswered, _read_to_end),
    "control-messages": (
        _control_messages,
        _after_101(
            send=frame(1, b"t")
            + frame(2, b"b")
            + frame(9, b"pi")
            + frame(10, b"po")
            + frame(8, b"\x03\xe8")
        ),
    ),
}

# One fact per scenario, spelled out, so that a change in aiohttp is seen too.
KEY_FACTS: dict[str, Any] = {
    "prepare-after-client-left": ("prepare", "raised", "ConnectionResetError('Connection lost',)"),
    "close-unanswered": ("after close", True, 1006, "TimeoutError()"),
    "vanish-fin": (
        "after",
        True,
        1006,
        "ConnectionResetError('Cannot write to closing transport',)",
    ),
    "vanish-rst": ("receive again", "raised", "RuntimeError('WebSocket connection is closed.',)"),
    "data-then-vanish": ("receive", "TEXT", "hi", ""),
    "iterate-until-vanish": ("iterated", "TEXT", "hi", ""),
    "iterate-until-close": ("after the loop", True, 4000, None),
    "server-closes": ("after close", True, 4005, None),
    "client-closes": ("close frame not read yet", False, None, None),
    "client-closes-autoclose-off": ("receive", "CLOSING", None, None),
    "close-from-another-task": ("the waiting receive", "CLOSING", None, None),
    "heartbeat-unanswered": (
        "receive",
        "ERROR",
        "TimeoutError('No PONG received after 0.1 seconds',)",
        None,
    ),
    "control-messages": ("receive", "PONG", b"po", ""),
}


@contextlib.asynccontextmanager
async def _served(web_ns: Any, handler: Any) -> AsyncIterator[int]:
    server = web_ns.Server(handler, access_log=None)
    runner = web_ns.ServerRunner(server, shutdown_timeout=1)
    await runner.setup()
    site = web_ns.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


async def _observe(web_ns: Any, name: str) -> list[Any]:
    """Run scenario *name* under *web_ns*'s server; what its handler saw."""
    script, client = SCENARIOS[name]
    probe = _Probe(web_ns)

    async def handler(request: Any) -> Any:
        try:
            return await script(web_ns, request, probe)
        finally:
            probe.done.set()

    async with _served(web_ns, handler) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write((HANDSHAKE + "\r\n").encode())
            await client(reader, writer)
            await asyncio.wait_for(probe.done.wait(), 5)
        finally:
            writer.close()
    return probe.seen


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_close_and_disconnect_as_aiohttp(name: str) -> None:
    """What a handler sees when it, or the client, closes or goes away: aiohttp's
    WebSocketResponse and lowserve's, the same handler code over real sockets."""
    theirs = await _observe(aioweb, name)
    ours = await _observe(web, name)
    assert KEY_FACTS[name] in theirs
    assert ours == theirs


# -- permessage-deflate's level and window (lowserve's compress_level, compress_window_bits)


@pytest.mark.parametrize(
    ("kwargs", "offer", "answer"),
    [
        ({}, "permessage-deflate", b"permessage-deflate; server_max_window_bits=12"),
        (
            {},
            "permessage-deflate; client_max_window_bits",
            b"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        ({"compress_window_bits": 15}, "permessage-deflate", b"permessage-deflate\r\n"),
        ({"compress_window_bits": 10}, "permessage-deflate", b"server_max_window_bits=10"),
    ],
)
async def test_the_window_is_offered_in_the_answer(
    kwargs: dict[str, Any], offer: str, answer: bytes
) -> None:
    bits: list[int | bool] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(**kwargs)
        await ws.prepare(request)
        bits.append(ws.compress)
        await ws.close()
        return ws

    async with serve(handler) as s:
        head = await _handshake(s.port, f"Sec-WebSocket-Extensions: {offer}\r\n")
    assert answer in head, head
    assert bits == [kwargs.get("compress_window_bits", 12)]


@pytest.mark.parametrize(
    "kwargs", [{"compress_level": -1}, {"compress_level": 10}, {"compress_window_bits": 8}]
)
def test_a_level_or_window_out_of_range_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="compress_"):
        web.WebSocketResponse(**kwargs)


@pytest.mark.parametrize("level", [0, 1, 9])
@pytest.mark.parametrize("window", [9, 12, 15])
async def test_compressed_messages_round_trip_with_aiohttp_s_client(
    level: int, window: int
) -> None:
    # Whole compressed messages are inflated and deflated on the fast path: distinct
    # messages, the context kept across them, text and binary, one past 64 KiB (the
    # slow path's) in between.
    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress_level=level, compress_window_bits=window)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is web.WSMsgType.TEXT:
                await ws.send_str(msg.data[::-1])
            elif msg.type is web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    texts = [json.dumps({"n": i, "word": "lowserve " * (i % 7)}) for i in range(40)]
    texts.insert(20, base64.b64encode(os.urandom(75_000)).decode())  # deflated, still > 64 KiB
    texts.insert(30, "é" * 50_000)
    async with (
        serve(handler) as s,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{s.port}/", compress=15) as ws,
    ):
        assert ws.compress == window
        for text in texts:
            await ws.send_str(text)
            assert await asyncio.wait_for(ws.receive_str(), 5) == text[::-1]
        await ws.send_bytes(bytes(range(256)) * 8)
        assert await asyncio.wait_for(ws.receive_bytes(), 5) == (bytes(range(256)) * 8)[::-1]


class _Shouting(web.WebSocketResponse):
    """Overrides receive(): async for must go through it."""

    async def receive(self, timeout: float | None = None) -> web.WSMessage:
        msg = await super().receive(timeout)
        if msg.type is web.WSMsgType.TEXT:
            return web.WSMessage(msg.type, msg.data.upper(), msg.extra)
        return msg


class _Numbered(web.WebSocketResponse):
    """Overrides __anext__(): async for must call it."""

    count = 0

    async def __anext__(self) -> web.WSMessage:
        msg = await super().__anext__()
        self.count += 1
        return web.WSMessage(msg.type, f"{self.count}:{msg.data}", msg.extra)


@pytest.mark.parametrize("cls", [web.WebSocketResponse, _Shouting, _Numbered])
async def test_async_for_goes_through_a_subclass_s_receive_or_anext(
    cls: type[web.WebSocketResponse],
) -> None:
    """Prepared, a plain response iterates with the connection's MessageIterator (a
    compiled __anext__); a subclass overriding receive() or __anext__() is iterated
    through its override, as before."""
    iterators: list[Any] = []

    async def handler(request: web.BaseRequest) -> web.WebSocketResponse:
        ws = cls()
        assert ws.__aiter__() is ws  # not prepared yet
        await ws.prepare(request)
        iterator = ws.__aiter__()
        iterators.append(iterator)
        async for msg in iterator:
            await ws.send_str(msg.data)
        return ws

    async with (
        serve(handler) as s,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{s.port}/") as client,
    ):
        echoed = []
        for text in ("a", "b"):
            await client.send_str(text)
            echoed.append(await asyncio.wait_for(client.receive_str(), 5))
        await client.close()
    expected = {web.WebSocketResponse: ["a", "b"], _Shouting: ["A", "B"], _Numbered: ["1:a", "2:b"]}
    assert echoed == expected[cls]
    plain = cls is web.WebSocketResponse
    assert (type(iterators[0]).__name__ == "MessageIterator") is plain
