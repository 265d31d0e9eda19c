"""What a module migrated from aiohttp's low-level server relies on (the compatibility issue)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lowserve import web
from lowserve.api.writer import PayloadWriter

from conftest import exchange, serve


def test_server_accepts_every_keyword_of_aiohttps() -> None:
    from aiohttp import web_protocol, web_server

    names = set(inspect.signature(web_protocol.RequestHandler.__init__).parameters) - {
        "self",
        "manager",
        "loop",
    }
    names |= set(inspect.signature(web_server.Server.__init__).parameters) - {
        "self",
        "handler",
        "kwargs",
    }
    for name in sorted(names):
        param = inspect.signature(web_protocol.RequestHandler.__init__).parameters.get(name)
        value = param.default if param is not None else None
        if name == "access_log_class":
            value = None
        web.Server(lambda r: None, **{name: value})  # type: ignore[arg-type,return-value]


def test_handler_cancellation_is_exposed() -> None:
    assert web.Server(lambda r: None, handler_cancellation=True).handler_cancellation  # type: ignore[arg-type,return-value]
    assert not web.Server(lambda r: None).handler_cancellation  # type: ignore[arg-type,return-value]


async def test_logger_receives_handler_errors(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: web.BaseRequest) -> web.Response:
        raise RuntimeError("boom")

    mine = logging.getLogger("my.app.server")
    with caplog.at_level(logging.ERROR):
        async with serve(broken, logger=mine) as s:
            out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 500 ")
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["my.app.server"]


async def test_keepalive_timeout_zero_closes_after_each_response() -> None:
    async def ok(request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    async with serve(ok, keepalive_timeout=0) as s:
        out = await exchange(
            s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
        )
    assert out.count(b"HTTP/1.1 200 ") == 1
    assert b"\r\nConnection: close\r\n" in out


async def test_response_subclasses_are_prepared_and_ended_as_aiohttp_does() -> None:
    calls: list[str] = []

    class Traced(web.Response):
        async def prepare(self, request: web.BaseRequest) -> PayloadWriter | None:
            calls.append("prepare")
            self.headers["X-Traced"] = "1"
            return await super().prepare(request)

        async def write_eof(self, data: bytes = b"") -> None:
            calls.append("write_eof")
            await super().write_eof(data)

    class Streamed(web.StreamResponse):
        async def write(self, data: bytes | bytearray | memoryview) -> None:
            calls.append("write")
            await super().write(data)

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/stream":
            resp = Streamed()
            await resp.prepare(request)
            await resp.write(b"abc")
            return resp
        return Traced(text="hello")

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert b"\r\nX-Traced: 1\r\n" in out and out.endswith(b"hello")
        assert calls == ["prepare", "write_eof"]
        calls.clear()
        out = await exchange(
            s.port, b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert calls == ["write"] and b"abc" in out
    await asyncio.sleep(0)


async def test_returning_an_http_exception_warns_as_aiohttp_does() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.HTTPAccepted()

    async with serve(handler) as s:
        with pytest.warns(DeprecationWarning, match="please raise the exception instead"):
            out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 202 ")


async def test_typed_keys_and_the_warning_for_string_keys() -> None:
    user: web.RequestKey[str] = web.RequestKey("user", str)
    trace: web.ResponseKey[int] = web.ResponseKey("trace", int)
    assert repr(user).endswith(".user, type=str)>")  # named after the module that made it
    seen: list[object] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        request[user] = "ada"
        resp = web.Response(text=request[user])
        resp[trace] = 7
        with pytest.warns(web.NotAppKeyWarning, match="RequestKey"):
            request["a-new-string-key"] = 1
        seen.append(resp[trace])
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"ada") and seen == [7]


async def test_json_bytes_response_and_read_buffer_limits() -> None:
    import json

    async def handler(request: web.BaseRequest) -> web.Response:
        low, high = request.content.get_read_buffer_limits()
        return web.json_bytes_response(
            {"low": low, "high": high}, dumps=lambda d: json.dumps(d).encode()
        )

    async with serve(handler, read_bufsize=4096) as s:
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        )
    assert b"Content-Type: application/json" in out
    assert out.endswith(b'{"low": 4096, "high": 8192}')  # aiohttp's for read_bufsize=4096
    with pytest.raises(ValueError, match="only one of data or body"):
        web.json_bytes_response({}, body=b"{}", dumps=lambda d: b"")


async def test_websocket_decode_text_false_gives_bytes() -> None:
    import aiohttp

    got: list[object] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse(decode_text=False)
        await ws.prepare(request)
        msg = await ws.receive()
        got.append((msg.type, msg.data))
        await ws.close()
        return ws

    async with (
        serve(handler) as s,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{s.port}/") as ws,
    ):
        await ws.send_str("héllo")
        await ws.receive()
    assert got == [(web.WSMsgType.TEXT, "héllo".encode())]


async def test_response_bodies_beyond_bytes_and_str(tmp_path: Path) -> None:
    import io

    data = bytes(range(256)) * 1024  # 256 KiB
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    (tmp_path / "text.txt").write_text("héllo text file")

    async def pieces() -> AsyncIterator[bytes | str]:
        for piece in (b"async ", "iter", b"able"):
            yield piece

    async def handler(request: web.BaseRequest) -> web.Response:
        kind = request.path[1:]
        makers: dict[str, Callable[[], object]] = {
            "bytearray": lambda: bytearray(b"ba"),
            "memoryview": lambda: memoryview(b"mv"),
            "bytesio": lambda: io.BytesIO(b"bytesio"),
            "stringio": lambda: io.StringIO("stringio"),
            "file": lambda: open(path, "rb"),  # noqa: SIM115  (lowserve closes it once sent)
            "textfile": lambda: open(tmp_path / "text.txt", encoding="utf-8"),  # noqa: SIM115
            "asyncgen": pieces,
        }
        return web.Response(body=makers[kind]())

    async with serve(handler) as s:
        answers = {}
        for kind in (
            "bytearray",
            "memoryview",
            "bytesio",
            "stringio",
            "file",
            "textfile",
            "asyncgen",
        ):
            raw = await exchange(
                s.port, f"GET /{kind} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode()
            )
            answers[kind] = raw
    from conftest import parse_responses

    def one(kind: str) -> tuple[int, dict[str, str], bytes]:
        [resp] = parse_responses(answers[kind])
        return resp

    assert one("bytearray")[2] == b"ba" and one("memoryview")[2] == b"mv"
    assert one("bytesio")[2] == b"bytesio"
    status, headers, body = one("stringio")
    assert body == b"stringio" and headers["content-type"] == "text/plain; charset=utf-8"
    status, headers, body = one("file")
    assert status == 200 and body == data and headers["content-length"] == str(len(data))
    status, headers, body = one("textfile")
    assert body == "héllo text file".encode() and headers["transfer-encoding"] == "chunked"
    status, headers, body = one("asyncgen")
    assert body == b"async iterable" and headers["transfer-encoding"] == "chunked"


def test_validation_as_aiohttp() -> None:
    from lowserve.testing import make_mocked_request
    from lowserve.wire.headers import ETag

    with pytest.raises(ValueError, match="Unsupported etag type"):
        web.Response().etag = ETag(value=123)  # type: ignore[arg-type]
    # obs-text is allowed in an entity tag (RFC 9110 §8.8.3), as aiohttp parses it
    assert make_mocked_request("GET", "/", {"If-None-Match": '"ét"'}).if_none_match == (ETag("ét"),)
    assert make_mocked_request("GET", "/", {"Content-Type": "jpeg"}).content_type == (
        "application/octet-stream"
    )
    assert make_mocked_request("GET", "/", {"Content-Type": "Text/HTML; x=1"}).content_type == (
        "text/html"
    )


async def test_aiohttps_deprecation_warnings() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        with pytest.warns(DeprecationWarning, match="Chunk size is deprecated"):
            resp.enable_chunked_encoding(1024)
        with pytest.warns(DeprecationWarning, match="boolean for force"):
            resp.enable_compression(False)
        await resp.prepare(request)
        await resp.write(b"x")
        with pytest.warns(DeprecationWarning, match="drain method is deprecated"):
            await resp.drain()
        with pytest.warns(DeprecationWarning, match="output_length is deprecated"):
            assert resp.output_length > 0
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and b"\r\n1\r\nx\r\n0\r\n\r\n" in out
