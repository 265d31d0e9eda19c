"""BaseRequest: what a handler observes, and the body API, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

import aiohttp
import pytest

from lowserve import web
from lowserve.testing import make_mocked_request

from conftest import exchange, parse_responses, serve


async def observe(raw: bytes, fn: Any, **options: Any) -> Any:
    """Run *fn(request)* inside a handler for the request *raw*; return what it returned."""
    box: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.Response:
        try:
            box["value"] = await fn(request)
        except Exception as exc:
            box["value"] = exc
        return web.Response(text="x")

    async with serve(handler, **options) as s:
        await exchange(s.port, raw)
    return box["value"]


async def _sync(value: Any) -> Any:
    return value


async def test_url_parts() -> None:
    async def look(r: web.BaseRequest) -> Any:
        return (
            r.method,
            r.path,
            r.raw_path,
            r.query_string,
            dict(r.query),
            str(r.url),
            r.host,
            r.scheme,
            r.secure,
            r.path_qs,
            r.version,
        )

    got = await observe(
        b"GET /a%20b/c?x=1&y=%C3%A9 HTTP/1.1\r\nHost: example.org:81\r\nConnection: close\r\n\r\n",
        look,
    )
    assert got == (
        "GET",
        "/a b/c",
        "/a%20b/c?x=1&y=%C3%A9",
        "x=1&y=é",
        {"x": "1", "y": "é"},
        "http://example.org:81/a%20b/c?x=1&y=%C3%A9",
        "example.org:81",
        "http",
        False,
        "/a%20b/c?x=1&y=%C3%A9",
        web.HttpVersion11,
    )


async def test_headers_and_friends() -> None:
    async def look(r: web.BaseRequest) -> Any:
        return (
            r.headers["x-a"],
            r.headers.getall("X-Multi"),
            r.raw_headers[1],
            r.cookies,
            r.content_type,
            r.charset,
            r.content_length,
            r.if_none_match,
            r.http_range,
            r.if_modified_since.year if r.if_modified_since else None,
            r.keep_alive,
            r.remote,
            r.get_extra_info("peername")[0],
        )

    got = await observe(
        b"POST / HTTP/1.1\r\nHost: h\r\nX-A: one  \r\nX-Multi: 1\r\nX-Multi: 2\r\n"
        b"Cookie: a=1; b=2\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 0\r\n"
        b'If-None-Match: "x", W/"y"\r\nRange: bytes=5-9\r\n'
        b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
        look,
    )
    assert got[0] == "one" and got[1] == ["1", "2"] and got[2] == (b"X-A", b"one")
    assert dict(got[3]) == {"a": "1", "b": "2"}
    assert got[4:7] == ("text/plain", "UTF-8", 0)
    assert [(e.value, e.is_weak) for e in got[7]] == [("x", False), ("y", True)]
    assert got[8] == slice(5, 10, 1) and got[9] == 1994 and got[10] is False
    assert got[11] == "127.0.0.1" == got[12]


async def test_state_mapping_and_clone() -> None:
    async def look(r: web.BaseRequest) -> Any:
        with pytest.warns(web.NotAppKeyWarning):  # a plain str key, as in aiohttp
            r["clone-state"] = "v"
        c = r.clone(
            method="PUT", rel_url="/other?q=1", headers={"X": "y"}, host="h2", scheme="https"
        )
        return (
            r["clone-state"],
            len(r),
            c.method,
            c.path,
            c.query_string,
            c.headers["X"],
            c.host,
            str(c.url),
            c.secure,
        )

    got = await observe(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", look)
    assert got == ("v", 1, "PUT", "/other", "q=1", "y", "h2", "https://h2/other?q=1", True)


def test_absolute_form_target_gives_url_and_host() -> None:
    # RFC 9112 §3.2.2: the target's authority, not Host; the scheme is the connection's.
    req = make_mocked_request("GET", "https://example.com:8443/p/a?b=1", {"Host": "other"})
    assert str(req.url) == "http://example.com:8443/p/a?b=1"
    assert req.host == "example.com" and req.scheme == "http"
    assert req.path == "/p/a" and req.query_string == "b=1" and str(req.rel_url) == "/p/a?b=1"
    tls = make_mocked_request("GET", "http://example.com/x", {"Host": "o"}, sslcontext=object())
    assert str(tls.url) == "https://example.com/x"
    moved = req.clone(host="h2:81")  # a host given (clone, proxy headers) wins
    assert moved.host == "h2:81" and str(moved.url) == "http://h2:81/p/a?b=1"
    assert str(req.clone(scheme="https").url) == "https://example.com:8443/p/a?b=1"
    # an origin-form target that only looks absolute is a path
    assert make_mocked_request("GET", "/http://x/y", {"Host": "h"}).host == "h"


async def test_clone_as_aiohttps() -> None:
    req = make_mocked_request("POST", "/", payload=b"body")
    with pytest.warns(web.NotAppKeyWarning):
        req["k"] = "v"
    copy = req.clone(client_max_fields=2)
    assert copy.client_max_fields == 2 and req.client_max_fields == 1000
    assert copy.clone().client_max_fields == 2
    new = web.RequestKey("new", int)
    copy["k"] = "changed"  # the state is copied, not shared
    copy[new] = 1
    assert req["k"] == "v" and new not in req and copy["k"] == "changed"
    assert await req.read() == b"body"
    with pytest.raises(RuntimeError, match="after reading its content"):
        req.clone()
    empty = make_mocked_request("GET", "/")
    assert await empty.read() == b""
    assert empty.clone().method == "GET"  # nothing was read: aiohttp clones it too


def test_cookies_read_as_browsers_send_them() -> None:
    headers = [
        ("Cookie", 'ISAWPLB{DB45}=1; c/2=2; Path=/; Secure; q="a;b"; bad\x01=x; n=old'),
        ("Cookie", "n=new"),  # several Cookie fields: all read, the last value of a name wins
    ]
    assert dict(make_mocked_request("GET", "/", headers).cookies) == {
        "ISAWPLB{DB45}": "1",
        "c/2": "2",
        "Path": "/",
        "Secure": "",
        "q": "a;b",
        "n": "new",
    }


async def test_body_helpers() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        kind = request.path
        if kind == "/read":
            assert request.body_exists and request.can_read_body
            body = await request.read()
            assert await request.read() == body  # cached
            assert not request.can_read_body
            return web.Response(body=body)
        if kind == "/text":
            return web.Response(text=(await request.text()).upper())
        if kind == "/json":
            return web.json_response(await request.json())
        if kind == "/post":
            return web.json_response(dict(await request.post()))
        if kind == "/lines":
            lines = [line async for line in request.content]
            return web.json_response([x.decode() for x in lines])
        if kind == "/exactly":
            first = await request.content.readexactly(3)
            try:
                await request.content.readexactly(100)
            except asyncio.IncompleteReadError as exc:
                return web.json_response([first.decode(), exc.partial.decode()])
        if kind == "/chunks":
            out = []
            async for data, end in request.content.iter_chunks():
                out.append([data.decode(), end])
            return web.json_response(out)
        if kind == "/release":
            await request.release()
            return web.Response(text=str(request.content.at_eof()))
        return web.Response(status=404)

    async with serve(handler) as s:

        def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
            return (
                b"POST %b HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n%bConnection: close\r\n\r\n%b"
                % (path.encode(), len(body), extra, body)
            )

        async def body_of(raw: bytes) -> bytes:
            return parse_responses(await exchange(s.port, raw))[0][2]

        assert await body_of(post("/read", b"abc")) == b"abc"
        assert await body_of(post("/text", "héllo".encode())) == "HÉLLO".encode()
        assert json.loads(await body_of(post("/json", b'{"a": [1, 2]}'))) == {"a": [1, 2]}
        assert json.loads(
            await body_of(
                post("/post", b"a=1&b=x+y", b"Content-Type: application/x-www-form-urlencoded\r\n")
            )
        ) == {"a": "1", "b": "x y"}
        assert json.loads(await body_of(post("/lines", b"one\ntwo\nthree"))) == [
            "one\n",
            "two\n",
            "three",
        ]
        assert json.loads(await body_of(post("/exactly", b"abcdef"))) == ["abc", "def"]
        chunked = (
            b"POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        assert json.loads(await body_of(chunked)) == [["abc", True], ["de", True]]
        assert await body_of(post("/release", b"x" * 1000)) == b"True"


async def test_client_max_size() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read())

    async with serve(handler, client_max_size=10) as s:
        ok = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
        )
        assert ok.startswith(b"HTTP/1.1 200 ")
        big = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nConnection: close\r\n\r\n0123456789A",
        )
        assert big.startswith(b"HTTP/1.1 413 ")
        chunked = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
        )
        assert chunked.startswith(b"HTTP/1.1 413 ")


def _multipart(*parts: tuple[str, str | None, bytes], boundary: str = "BnD") -> bytes:
    out = b""
    for name, filename, data in parts:
        fn = f'; filename="{filename}"' if filename else ""
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{fn}\r\n\r\n'.encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def test_client_max_fields_minus_one_is_no_limit() -> None:
    # aiohttp reads any client_max_fields <= 0 as no limit; -1 refused every field here
    urlencoded = "&".join(f"f{i}={i}" for i in range(1500)).encode()
    form = make_mocked_request(
        "POST",
        "/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        payload=urlencoded,
        client_max_fields=-1,
    )
    assert len(await form.post()) == 1500
    body = _multipart(("a", None, b"1"), ("b", None, b"2"), ("c", "c.txt", b"3"))
    ctype = {"Content-Type": "multipart/form-data; boundary=BnD"}
    multi = make_mocked_request("POST", "/", ctype, payload=body, client_max_fields=-1)
    assert list(await multi.post()) == ["a", "b", "c"]
    parts = make_mocked_request("POST", "/", ctype, payload=body, client_max_fields=-1)
    names = []
    async for part in await parts.multipart():
        assert isinstance(part, web.BodyPartReader)
        names.append(part.name)
    assert names == ["a", "b", "c"]
    limited = make_mocked_request("POST", "/", ctype, payload=body, client_max_fields=2)
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await limited.post()

    async def count(request: web.BaseRequest) -> web.Response:
        return web.Response(text=str(len(await request.post())))

    async with serve(count, client_max_fields=-1) as s:  # the server's option too
        raw = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(urlencoded), urlencoded),
        )
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"\r\n\r\n1500")


async def test_uploaded_files_spool_to_disk_past_a_mebibyte() -> None:
    # aiohttp's post() keeps a file part in memory up to 1 MiB, then on disk: memory
    # stays bounded by the bytes buffered, not the size of the upload.
    import tempfile
    import tracemalloc

    size, piece = 8 * 2**20, bytes(range(256)) * 256  # 64 KiB
    seen: dict[str, Any] = {}

    async def handler(request: web.BaseRequest) -> web.Response:
        form = await request.post()
        for name in ("small", "big"):
            up = form[name]
            assert isinstance(up, web.FileField)
            f = up.file
            n, same = 0, True
            while chunk := f.read(65536):
                same = same and chunk == piece[: len(chunk)]
                n += len(chunk)
            seen[name] = (isinstance(f, tempfile.SpooledTemporaryFile), f._rolled, n, same)
        return web.Response(text="ok")

    head = _multipart(("small", "s.bin", piece)).rpartition(b"--BnD--")[0]
    head += b'--BnD\r\nContent-Disposition: form-data; name="big"; filename="b.bin"\r\n\r\n'
    tail = b"\r\n--BnD--\r\n"
    length = len(head) + size + len(tail)
    async with serve(handler, client_max_size=64 * 2**20) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        tracemalloc.start()
        try:
            writer.write(
                b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                b"Content-Type: multipart/form-data; boundary=BnD\r\n"
                b"Content-Length: %d\r\n\r\n%b" % (length, head)
            )
            for _ in range(size // len(piece)):
                writer.write(piece)
                await writer.drain()
            writer.write(tail)
            answer = await asyncio.wait_for(reader.read(), 30)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert seen == {"small": (True, False, 65536, True), "big": (True, True, size, True)}
    assert peak < 4 * 2**20, peak  # the 8 MiB upload was never in memory whole


async def test_multipart_with_aiohttp_client() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        form = await request.post()
        up = form["file"]
        assert isinstance(up, web.FileField)
        return web.json_response(
            {
                "name": form["name"],
                "file": up.filename,
                "ct": up.content_type,
                "data": up.file.read().decode(),
            }
        )

    async with serve(handler) as s, aiohttp.ClientSession() as session:
        data = aiohttp.FormData()
        data.add_field("name", "Ada")
        data.add_field("file", b"contents!", filename="notes.txt", content_type="text/plain")
        async with session.post(f"http://127.0.0.1:{s.port}/", data=data) as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "name": "Ada",
                "file": "notes.txt",
                "ct": "text/plain",
                "data": "contents!",
            }


async def test_malformed_multipart_is_400() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        await request.post()
        return web.Response(text="?")

    async with serve(handler) as s:
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: 20\r\nConnection: close\r\n\r\n--B\r\ngarbage\r\n\r\n--X",
        )
        assert out.startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("value", ["bytes=", "bytes=9-3", "items=1-2"])
async def test_bad_range_raises(value: str) -> None:
    async def look(r: web.BaseRequest) -> Any:
        return r.http_range

    got = await observe(
        f"GET / HTTP/1.1\r\nHost: h\r\nRange: {value}\r\nConnection: close\r\n\r\n".encode(), look
    )
    assert isinstance(got, ValueError)


async def test_forwarded_header_parsed() -> None:
    async def look(r: web.BaseRequest) -> Any:
        return [dict(x) for x in r.forwarded]

    got = await observe(
        b'GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:80"\r\nConnection: close\r\n\r\n',
        look,
    )
    assert got == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"},
        {"for": "[2001:db8::1]:80"},
    ]


async def test_aiohttp_client_round_trip() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        data = await request.json()
        return web.json_response({"echo": data, "method": request.method})

    async with serve(handler) as s, aiohttp.ClientSession() as session:
        for _ in range(3):  # keep-alive reuse
            async with session.put(f"http://127.0.0.1:{s.port}/x", json={"k": [1, 2]}) as resp:
                assert resp.status == 200
                assert await resp.json() == {"echo": {"k": [1, 2]}, "method": "PUT"}


async def test_loop_is_there_and_deprecated_as_in_aiohttp() -> None:
    from aiohttp.test_utils import make_mocked_request as aiohttp_make_mocked_request

    for req in (make_mocked_request("GET", "/"), aiohttp_make_mocked_request("GET", "/")):
        with pytest.warns(DeprecationWarning, match="request.loop property is deprecated"):
            assert req.loop is asyncio.get_running_loop()

    async def handler(request: web.BaseRequest) -> web.Response:
        with pytest.warns(DeprecationWarning):
            return web.Response(text=str(request.loop is asyncio.get_running_loop()))

    async with serve(handler) as s:
        raw = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert raw.endswith(b"\r\n\r\nTrue")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-499", slice(0, 500, 1)),
        ("Bytes=0-499", slice(0, 500, 1)),
        ("BYTES=-500", slice(-500, None, 1)),
        ("bytes=500-", slice(500, None, 1)),
        ("bytes=\u0660-\u0665", "range not in acceptable format"),  # Arabic-Indic digits
        ("bytes=1\uff10-20", "range not in acceptable format"),  # a fullwidth zero
        ("bytes=", "range not in acceptable format"),
        ("bytes=-", "No start or end of range specified"),
        ("bytes=9-3", "start cannot be after end"),
        ("items=1-2", "range not in acceptable format"),
    ],
)
def test_http_range_as_aiohttps(value: str, expected: Any) -> None:
    """Only ASCII digits, and the unit in any case, as aiohttp reads ``Range``."""
    from aiohttp.test_utils import make_mocked_request as aiohttp_make_mocked_request

    def outcome(req: Any) -> Any:
        try:
            return req.http_range
        except ValueError as exc:
            return str(exc)

    ours = outcome(make_mocked_request("GET", "/", headers={"Range": value}))
    assert ours == expected
    assert ours == outcome(aiohttp_make_mocked_request("GET", "/", headers={"Range": value}))


async def test_http_range_unit_in_capitals_over_a_socket() -> None:
    async def look(r: web.BaseRequest) -> Any:
        return r.http_range

    raw = b"GET / HTTP/1.1\r\nHost: h\r\nRange: Bytes=0-499\r\nConnection: close\r\n\r\n"
    assert await observe(raw, look) == slice(0, 500, 1)


@pytest.mark.parametrize(
    "target", ["/path/to", "/path/\U0001f415\U0001f308", "/p%F0%9F%90%95/x?q=1#f", "/caf\xe9"]
)
def test_repr_shows_the_path_escaped_as_aiohttps(target: str) -> None:
    from aiohttp.test_utils import make_mocked_request as aiohttp_make_mocked_request

    ours = repr(make_mocked_request("GET", target))
    theirs = repr(aiohttp_make_mocked_request("GET", target))
    assert ours.isascii()
    assert ours == theirs.replace("<Request ", "<BaseRequest ", 1)


def _upload(parts: list[tuple[str, bytes]], *, close: bool = True) -> bytes:
    """A multipart/form-data POST with one file part per (name, content)."""
    body = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="%s"; filename="%s.bin"\r\n\r\n%b\r\n'
        % (name.encode(), name.encode(), content)
        for name, content in parts
    )
    body += b"--B--\r\n"
    connection = b"Connection: close\r\n" if close else b""
    return (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        b"%bContent-Length: %d\r\n\r\n%b" % (connection, len(body), body)
    )


_ON_DISK = b"d" * (1024**2 + 1)  # past post()'s 1 MiB spool: a file on disk


async def _files(request: web.BaseRequest, kept: list[web.FileField]) -> None:
    form = await request.post()
    files = [v for v in form.values() if isinstance(v, web.FileField)]
    assert files and not any(f.file.closed for f in files)  # open while the handler runs
    kept.extend(files)


async def test_uploaded_files_are_closed_when_the_request_is_answered() -> None:
    kept: list[web.FileField] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        await _files(request, kept)
        return web.Response(text="ok")

    async with serve(handler, client_max_size=8 * 1024**2) as s:
        raw = await exchange(s.port, _upload([("small", b"s" * 10), ("big", _ON_DISK)]))
        assert parse_responses(raw)[0][0] == 200
        assert [f.filename for f in kept] == ["small.bin", "big.bin"]
        assert all(f.file.closed for f in kept)


def _deleted_files() -> int:
    """Descriptors this process holds on deleted files (post()'s temporary files)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_uploaded_files_hold_no_descriptor_past_their_request() -> None:
    held: list[int] = []
    kept: list[web.FileField] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        held.append(_deleted_files())  # what the requests before this one left open
        await _files(request, kept)
        return web.Response(text="ok")

    baseline = _deleted_files()
    requests = [_upload([("big", _ON_DISK)], close=False) for _ in range(3)]
    async with serve(handler, client_max_size=8 * 1024**2) as s:
        raw = await exchange(s.port, b"".join(requests) + _upload([("last", b"x")]), timeout=20)
        assert [r[0] for r in parse_responses(raw)] == [200] * 4
        assert held == [baseline] * 4
        assert _deleted_files() == baseline
    assert all(f.file.closed for f in kept)


async def test_uploaded_files_are_closed_when_the_handler_is_cancelled() -> None:
    kept: list[web.FileField] = []
    posted, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        await _files(request, kept)
        posted.set()
        try:
            await asyncio.Event().wait()  # until the client goes and the handler is cancelled
        finally:
            cancelled.set()
        return web.Response()  # never reached

    async with serve(handler, handler_cancellation=True) as s:
        _, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(_upload([("a", b"x" * 100)]))
        await asyncio.wait_for(posted.wait(), 5)
        writer.close()
        await asyncio.wait_for(cancelled.wait(), 5)  # the connection's task closed them then
        assert all(f.file.closed for f in kept)


async def test_uploaded_files_are_closed_when_the_answer_cannot_be_sent() -> None:
    kept: list[web.FileField] = []

    class Gone(web.Response):
        async def prepare(self, request: web.BaseRequest) -> None:
            raise ConnectionResetError("the client went away")

    async def handler(request: web.BaseRequest) -> web.Response:
        await _files(request, kept)
        return Gone()

    async with serve(handler) as s:
        assert await exchange(s.port, _upload([("a", b"x" * 100)])) == b""
        assert kept and all(f.file.closed for f in kept)


def test_make_request_sets_what_the_constructor_sets() -> None:
    """make_request (the connection's way to make a BaseRequest) leaves every field as
    ``BaseRequest(...)`` with the same arguments does."""
    from lowserve.api.request import make_request
    from lowserve.api.streams import EMPTY_STREAM
    from lowserve.wire.head import HttpVersion11

    args = (object(), "GET", "/x?y=1", HttpVersion11, [(b"Host", b"a")], True, EMPTY_STREAM, 99)
    made, built = make_request(*args), web.BaseRequest(*args)  # type: ignore[arg-type]
    assert type(made) is web.BaseRequest
    for name in web.BaseRequest.__slots__:
        assert getattr(made, name) is getattr(built, name), name
