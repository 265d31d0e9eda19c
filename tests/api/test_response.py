"""Responses: headers, framing, cookies, compression, validation."""

from __future__ import annotations

import datetime
import gzip
import warnings
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp import web as aioweb
from aiohttp.test_utils import make_mocked_request as aiohttp_make_mocked_request

from lowserve import web
from lowserve.testing import make_mocked_request

from conftest import exchange, parse_responses, serve


def test_response_defaults() -> None:
    r = web.Response(text="hi")
    assert r.status == 200 and r.reason == "OK"
    assert r.content_type == "text/plain" and r.charset == "utf-8"
    assert r.body == b"hi" and r.text == "hi"
    assert r.content_length == 2
    assert not r.prepared


def test_response_arguments_checked() -> None:
    with pytest.raises(ValueError):
        web.Response(body=b"x", text="y")
    with pytest.raises(ValueError):
        web.Response(text="x", content_type="text/plain; charset=utf-8")
    with pytest.raises(ValueError):
        web.Response(text="x", headers={"Content-Type": "a/b"}, content_type="c/d")
    with pytest.raises(TypeError):
        web.Response(text=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        web.Response(body=object())


@pytest.mark.parametrize("reason", ["a\r\nb", "x\ny", "nul\0"])
def test_reason_with_cr_lf_nul_rejected(reason: str) -> None:
    with pytest.raises(ValueError):
        web.Response(reason=reason)


def test_json_response() -> None:
    r = web.json_response({"a": 1})
    assert r.content_type == "application/json"
    assert r.body == b'{"a": 1}'
    assert web.json_response(None).body == b"null"
    with pytest.raises(ValueError):
        web.json_response({"a": 1}, text="x")


def test_properties_round_trip() -> None:
    r = web.StreamResponse()
    r.content_type = "text/html"
    r.charset = "latin-1"
    assert r.headers["Content-Type"] == "text/html; charset=latin-1"
    r.content_length = 10
    assert r.content_length == 10
    with pytest.raises(RuntimeError):
        r.enable_chunked_encoding()
    r.content_length = None
    r.last_modified = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert r.headers["Last-Modified"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert r.last_modified == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    r.etag = web.ETag("xyz", is_weak=True) if hasattr(web, "ETag") else "xyz"
    assert r.etag is not None and r.etag.value == "xyz"
    with pytest.raises(ValueError):
        r.etag = 'bad"quote'
    with pytest.warns(web.NotAppKeyWarning):  # a plain str key, as in aiohttp
        r["response-state"] = 1
    assert r["response-state"] == 1 and len(r) == 1


async def test_header_injection_refused_before_any_byte() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(text="x", headers={"X-Evil": "a\r\nSet-Cookie: pwned=1"})

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 500 ")
        assert b"pwned" not in out


@pytest.mark.parametrize("name", ["Bad Name", "X:y", "X\x00", ""])
async def test_bad_header_names_refused(name: str) -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.headers[name] = "v"
        await resp.prepare(request)
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 500 ")


async def test_date_and_server_overridable_and_server_off() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(text="x", headers={"Server": "mine", "Date": "yesterday"})

    async with serve(handler) as s:
        [(_, h, _)] = parse_responses(
            await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        )
        assert h["server"] == "mine" and h["date"] == "yesterday"

    async with serve(lambda r: _ok(), server_header=None) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert b"\r\nServer:" not in out


async def _ok() -> web.Response:
    return web.Response(text="ok")


async def test_stream_response_chunked_and_drain() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(200):
            await resp.write(b"x" * 65536)  # 12.5 MiB: must wait for the client
        await resp.write_eof()
        return resp

    async with serve(handler) as s:
        out = await exchange(
            s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=20
        )
        [(_status, headers, body)] = parse_responses(out)
        assert headers["transfer-encoding"] == "chunked"
        assert len(body) == 200 * 65536


async def test_stream_response_http10_closes() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"abc")
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 200 OK\r\n")
        assert out.endswith(b"\r\n\r\nabc")


async def test_short_body_closes_connection() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 10
        await resp.prepare(request)
        await resp.write(b"abc")
        await resp.write_eof()
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # ends by close
        assert out.endswith(b"abc")


async def test_long_body_truncated_to_content_length() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 3
        await resp.prepare(request)
        await resp.write(b"abcdef")
        await resp.write_eof()
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"\r\n\r\nabc")


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
async def test_compression(coding: str) -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_compression()
        await resp.prepare(request)
        await resp.write(b"hello " * 100)
        await resp.write_eof()
        return resp

    async def fixed(request: web.BaseRequest) -> web.Response:
        resp = web.Response(text="hello " * 100)
        resp.enable_compression(web.ContentCoding(coding) if coding == "br" else None)
        return resp

    decoders: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
    }
    if coding == "br":
        decoders["br"] = pytest.importorskip("brotli").decompress
    decode = decoders[coding]
    for h in (handler, fixed):
        async with serve(h) as s:
            out = await exchange(
                s.port,
                f"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {coding}\r\nConnection: close\r\n\r\n".encode(),
            )
            [(_status, headers, body)] = parse_responses(out)
            if coding == "br" and h is handler:
                assert "content-encoding" not in headers  # br only when forced
                continue
            assert headers["content-encoding"] == coding
            assert decode(body) == b"hello " * 100


async def test_cookies_written() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        resp = web.Response(text="c")
        resp.set_cookie("sid", "abc", httponly=True, secure=True, samesite="Strict", max_age=60)
        return resp

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        line = next(ln for ln in out.split(b"\r\n") if ln.startswith(b"Set-Cookie"))
        assert b"sid=abc" in line and b"HttpOnly" in line and b"Secure" in line
        assert b"SameSite=Strict" in line and b"Max-Age=60" in line


async def test_head_and_empty_statuses_carry_no_body() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        status = int(request.query.get("s", "200"))
        return web.Response(status=status, text="body!")

    async with serve(handler) as s:
        out = await exchange(s.port, b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"\r\n\r\n") and b"Content-Length: 5" in out
        for status in (204, 304):
            out = await exchange(
                s.port,
                f"GET /?s={status} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode(),
            )
            assert out.endswith(b"\r\n\r\n")
            assert b"Transfer-Encoding" not in out


async def test_exception_after_prepare_closes_connection() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"partial")
        raise RuntimeError("late failure")

    async with serve(handler) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 ")
        assert b"500" not in out


def test_set_status_after_prepare_refused() -> None:
    r = web.StreamResponse()
    r.set_status(201, "Yes")
    assert (r.status, r.reason) == (201, "Yes")


async def test_cached_single_header_heads() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path == "/evil":
            return web.Response(body=b"x", headers={"Content-Type": "a/b\r\nSet-Cookie: x=1"})
        return web.Response(text=request.path, status=int(request.query.get("s", "200")))

    async with serve(handler) as s:
        for _ in range(2):  # second time from the cache
            out = await exchange(s.port, b"GET /evil HTTP/1.1\r\nHost: a\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 500 ") and b"x=1" not in out
            out = await exchange(
                s.port,
                b"GET /a?s=201 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                until_close=False,
            )
            assert out.startswith(
                b"HTTP/1.0 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: 2\r\nDate: "
            )
            assert out.endswith(b"\r\nConnection: keep-alive\r\n\r\n/a")
            out = await exchange(
                s.port, b"GET /bb HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            assert out.endswith(b"\r\nConnection: close\r\n\r\n/bb")


async def test_text_responses_touched_after_construction() -> None:
    """Response(text=...) keeps its one header without a multidict until asked: whatever
    the handler does to the response afterwards is what goes out."""

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path.startswith("/bytes"):
            resp = web.Response(body=b"b")
            if request.path == "/bytes-typed":
                resp.headers["Content-Type"] = "image/png"
            return resp
        resp = web.json_response({"a": 1}) if request.path == "/json" else web.Response(text="t")
        if request.path == "/extra":
            resp.headers["X-Extra"] = "1"
        elif request.path == "/type":
            resp.content_type = "text/html"
        elif request.path == "/evil":
            return web.Response(text="t", content_type="a/b\r\nSet-Cookie: x=1")
        return resp

    async with serve(handler) as s:
        expected = {
            "/json": (b"Content-Type: application/json; charset=utf-8\r\n", b'{"a": 1}'),
            "/extra": (b"Content-Type: text/plain; charset=utf-8\r\nX-Extra: 1\r\n", b"t"),
            "/type": (b"Content-Type: text/html; charset=utf-8\r\n", b"t"),
            "/plain": (b"Content-Type: text/plain; charset=utf-8\r\n", b"t"),
            "/bytes": (b"Content-Length: 1\r\nContent-Type: application/octet-stream\r\n", b"b"),
            "/bytes-typed": (b"Content-Type: image/png\r\nContent-Length: 1\r\n", b"b"),
        }
        for path, (head, body) in expected.items():
            out = await exchange(
                s.port, f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode(), until_close=False
            )
            assert out.startswith(b"HTTP/1.1 200 OK\r\n" + head), out
            assert out.endswith(b"\r\n\r\n" + body), out
        out = await exchange(s.port, b"GET /evil HTTP/1.1\r\nHost: a\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 500 ") and b"x=1" not in out
    r = web.json_response([1])
    assert r.headers == {"Content-Type": "application/json; charset=utf-8"}
    assert web.Response(body=b"x").headers == {} and web.StreamResponse().headers == {}
    assert r.content_type == "application/json" and r.charset == "utf-8"
    with pytest.raises(ValueError):
        web.json_response([1], content_type="application/json; charset=utf-8")


_CORPUS = Path(__file__).resolve().parents[1] / "hostile_corpus.py"


def _streamed_body(kind: str) -> Any:
    """A fresh body of *kind* that is sent as a stream."""
    if kind == "file":
        return _CORPUS.open("rb")
    if kind == "textfile":
        return _CORPUS.open()
    if kind == "streamer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)

            @aiohttp.streamer
            async def sender(writer: Any) -> None:
                await writer.write(b"s")

        return sender()

    async def pieces() -> Any:
        yield b"a"

    return pieces()


@pytest.mark.parametrize("kind", ["file", "textfile", "agen", "streamer"])
def test_streamed_body_seen_before_sending_as_aiohttps(kind: str) -> None:
    # the type and name of a file (Content-Disposition), a file's text (read, and left
    # to be sent whole), no content_length before the head is made; TypeError for the
    # text of a body that can be read once
    def look(namespace: Any) -> tuple[Any, ...]:
        body = _streamed_body(kind)
        resp = namespace.Response(body=body)
        try:
            text: Any = resp.text[:60]
            text_again = resp.text[:60]
        except TypeError:
            text = text_again = TypeError
        if hasattr(body, "close"):
            body.close()
        return text, text_again, resp.content_length, dict(resp.headers)

    assert look(web) == look(aioweb)


async def test_file_body_is_sent_whole_after_its_text_was_read() -> None:
    req = make_mocked_request("GET", "/")
    resp = web.Response(body=_CORPUS.open("rb"))
    assert resp.text is not None and resp.text.startswith('"""The hostile-request corpus')
    await resp.prepare(req)
    await resp.write_eof()
    sent = b"".join(req.protocol.written)  # type: ignore[attr-defined]
    assert sent.endswith(b"\r\n\r\n" + _CORPUS.read_bytes())
    assert b'Content-Disposition: attachment; filename="hostile_corpus.py"\r\n' in sent


async def test_streamed_body_is_sent_by_write_eof_as_in_aiohttp() -> None:
    # prepare() sends the head; the body and its errors come with write_eof()
    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        raise ValueError("the source failed")

    req = make_mocked_request("GET", "/")
    resp = web.Response(body=failing())
    assert await resp.prepare(req) is not None
    assert resp.prepared and req.protocol.written == []  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="the source failed"):
        await resp.write_eof()


async def test_prepared_response_headers_are_those_sent() -> None:
    ours = make_mocked_request("GET", "/", {"Host": "x"})
    resp = web.Response(text="hi", headers={"X-A": "1"})
    await resp.prepare(ours)
    head = b"".join(ours.protocol.written).partition(b"\r\n\r\n")[0]  # type: ignore[attr-defined]
    assert head.decode().split("\r\n")[1:] == [f"{k}: {v}" for k, v in resp.headers.items()]
    theirs = aiohttp_make_mocked_request("GET", "/", headers={"Host": "x"})
    aio_resp = aioweb.Response(text="hi", headers={"X-A": "1"})
    await aio_resp.prepare(theirs)
    assert list(resp.headers) == list(aio_resp.headers)  # the same fields, in that order


async def test_output_length_counts_the_head() -> None:
    req = make_mocked_request("GET", "/")
    resp = web.StreamResponse()
    await resp.prepare(req)
    await resp.write(b"abc")
    with pytest.warns(DeprecationWarning, match="output_length is deprecated"):
        written: list[bytes] = req.protocol.written  # type: ignore[attr-defined]
        assert resp.output_length == sum(len(chunk) for chunk in written)


async def _both(handler: Any, raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """*raw*'s answers from aiohttp's low-level server and lowserve's, running *handler*."""
    out = []
    for namespace in (aioweb, web):
        runner = namespace.ServerRunner(namespace.Server(handler, access_log=None))
        await runner.setup()
        site = namespace.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            [(status, headers, body)] = parse_responses(await exchange(port, raw, timeout=10))
        finally:
            await runner.cleanup()
        headers.pop("date"), headers.pop("server")
        out.append((status, headers, body))
    return out


def _form(disposition: str, body: bytes, extra: str = "") -> bytes:
    part = f"--B\r\nContent-Disposition: {disposition}\r\n{extra}\r\n".encode() + body
    data = part + b"\r\n--B--\r\n"
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: multipart/form-data; boundary=B\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(data), data)
    )


@pytest.mark.parametrize(
    ("disposition", "extra", "body"),
    [
        ('form-data; name="file"; filename="file"', "", b"test"),
        ('form-data; name="f"; filename="foo bar.txt"', "Content-Type: text/plain\r\n", b"x"),
        ('form-data; name="a b\\"c"', "", b"named only"),
        ('form-data; name="na\u00efve"', "", b"non-ASCII name"),
        ("form-data", "", b"no name"),
        ('form-data; name="b"', "Content-Transfer-Encoding: base64\r\n", b"aGVsbG8gd29ybGQ="),
        ('form-data; name="big"; filename="big.bin"', "", bytes(range(256)) * 1024),
    ],
)
async def test_multipart_part_body_as_aiohttps(disposition: str, extra: str, body: bytes) -> None:
    """``Response(body=part)`` streams the part decoded, with aiohttp's headers."""

    async def handler(request: Any) -> Any:
        namespace = aioweb if type(request).__module__.startswith("aiohttp") else web
        reader = await request.multipart()
        return namespace.Response(body=await reader.next())

    theirs, ours = await _both(handler, _form(disposition, body, extra))
    assert ours == theirs
    assert ours[0] == 200 and ours[1]["transfer-encoding"] == "chunked"


async def test_bare_streamer_body_as_aiohttps() -> None:
    """``Response(body=stream)`` with the ``@aiohttp.streamer`` object itself, not called."""
    with pytest.warns(DeprecationWarning):

        @aiohttp.streamer
        async def stream(writer: Any) -> None:
            for i in range(3):
                await writer.write(b"piece %d;" % i)

    async def handler(request: Any) -> Any:
        namespace = aioweb if type(request).__module__.startswith("aiohttp") else web
        return namespace.Response(body=stream, headers={"X-A": "1"})

    theirs, ours = await _both(handler, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ours == theirs
    assert ours[2] == b"piece 0;piece 1;piece 2;"


async def test_part_body_has_no_text_as_in_aiohttp() -> None:
    from aiohttp.multipart import BodyPartReader as AiohttpPart
    from multidict import CIMultiDict, CIMultiDictProxy

    raw = _form('form-data; name="f"', b"abc").partition(b"\r\n\r\n")
    req = make_mocked_request(
        "POST", "/", {"Content-Type": "multipart/form-data; boundary=B"}, payload=raw[2]
    )
    ours = await (await req.multipart()).next()
    theirs = AiohttpPart(b"B", CIMultiDictProxy(CIMultiDict()), mock.Mock())
    for part in (ours, theirs):
        resp = web.Response(body=part)
        with pytest.raises(TypeError):
            resp.text  # noqa: B018 (the property raises)
        assert resp.content_length is None
    with pytest.raises(TypeError):
        aioweb.Response(body=theirs).text  # noqa: B018 (aiohttp's own, as the reference)


@pytest.mark.parametrize("reason", ["a\r\nb", "x\ny", "c\rd"])
def test_reason_message_as_aiohttps(reason: str) -> None:
    with pytest.raises(ValueError) as theirs:
        aioweb.Response(reason=reason)
    with pytest.raises(ValueError) as ours:
        web.Response(reason=reason)
    assert str(ours.value) == str(theirs.value) == "Reason cannot contain \\r or \\n"
    with pytest.raises(ValueError, match=r"^Reason cannot contain \\0$"):
        web.Response(reason="nul\0")
