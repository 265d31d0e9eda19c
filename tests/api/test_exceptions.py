"""The HTTPException family, raised and returned, over real sockets."""

from __future__ import annotations

import asyncio
import logging
import warnings

import pytest

from lowserve import web

from conftest import exchange, parse_responses, serve


def test_defaults() -> None:
    e = web.HTTPNotFound()
    assert (e.status, e.reason, e.text) == (404, "Not Found", "404: Not Found")
    assert isinstance(e, web.Response) and isinstance(e, Exception)
    assert str(e) == "Not Found"
    assert web.HTTPNoContent().body is None
    r = web.HTTPFound("/x")
    assert r.location == "/x" and r.headers["Location"] == "/x"
    with pytest.raises(ValueError):
        web.HTTPFound("")
    m = web.HTTPMethodNotAllowed("post", ["GET", "PUT"])
    assert m.headers["Allow"] == "GET,PUT" and m.method == "POST"
    assert web.HTTPRequestEntityTooLarge(100, 200).text == "Maximum request body size 100 exceeded."
    assert (
        web.HTTPUnavailableForLegalReasons("https://x/").headers["Link"]
        == '<https://x/>; rel="blocked-by"'
    )
    with pytest.raises(ValueError):
        web.HTTPBadRequest(reason="a\nb")


async def test_raised_and_returned(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path == "/raise":
            raise web.HTTPConflict(text="busy")
        if request.path == "/return":
            return web.HTTPAccepted()  # deprecated (warns), as in aiohttp
        if request.path == "/boom":
            raise KeyError("x")
        return None  # type: ignore[return-value]

    caplog.set_level(logging.ERROR)
    async with serve(handler) as s:
        reqs = (
            b"".join(
                b"GET /%b HTTP/1.1\r\nHost: a\r\n\r\n" % p for p in (b"raise", b"return", b"none")
            )
            + b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        with pytest.warns(DeprecationWarning, match="returning HTTPException"):
            out = parse_responses(await exchange(s.port, reqs))
    assert [(st, b) for st, _, b in out] == [
        (409, b"busy"),
        (202, b"202: Accepted"),
        (500, b"500: Internal Server Error"),
        (500, b"500 Internal Server Error\n\nServer got itself in trouble"),
    ]
    assert out[3][1]["connection"] == "close"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "KeyError" in caplog.text
    assert "Missing return statement" in caplog.text


async def test_only_a_returned_exception_is_deprecated() -> None:
    """Raising is the way aiohttp asks for: no DeprecationWarning, whether the handler
    raised before or after its first await (a raised one used to warn on the first)."""

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path.endswith("/late"):
            await asyncio.sleep(0)
        if request.path.startswith("/raise"):
            raise web.HTTPConflict()
        return web.HTTPAccepted()

    async with serve(handler) as s:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            paths = (b"/raise", b"/raise/late", b"/return", b"/return/late")
            reqs = b"".join(b"GET %b HTTP/1.1\r\nHost: a\r\n\r\n" % p for p in paths)
            out = parse_responses(
                await exchange(
                    s.port, reqs + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                )
            )
    assert [st for st, _, _ in out] == [409, 409, 202, 202, 202]
    deprecated = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecated) == 3, [str(w.message) for w in deprecated]
    assert all("returning HTTPException" in str(w.message) for w in deprecated)


async def test_debug_shows_traceback() -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        raise ZeroDivisionError("zzz")

    async with serve(handler, debug=True) as s:
        out = await exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert b"ZeroDivisionError: zzz" in out


def test_body_argument_is_deprecated_as_in_aiohttp() -> None:
    from aiohttp import web as aioweb

    for namespace in (web, aioweb):
        with pytest.warns(DeprecationWarning, match="body argument is deprecated"):
            exc = namespace.HTTPBadRequest(body=b"raw")
        assert exc.body == b"raw"
        with pytest.warns(DeprecationWarning, match="body argument is deprecated"):
            namespace.HTTPFound("/x", body=b"moved")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert web.HTTPBadRequest(text="t").text == "t"  # text= is not deprecated
