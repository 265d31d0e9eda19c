"""WebSocketResponse's API at its edges: calls before prepare(), argument checks, the
typed receive helpers, control frames, extension negotiation and a non-GET handshake.
Each case is what aiohttp's WebSocketResponse does for the same call."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import aiohttp
import pytest

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
