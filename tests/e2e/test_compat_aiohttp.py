"""Compatibility, proven: the same handlers under aiohttp's Server and lowserve's.

Each case sends the same raw bytes to both servers and compares the answers byte for
byte, after removing the headers that legitimately differ (``Date``, ``Server``).

Accepted differences, each on purpose:

* ``100 Continue``: lowserve sends it when the handler first reads the body; aiohttp never
  does (cases with ``Expect`` are compared after dropping the interim response).
* A body written to a ``StreamResponse`` answering ``HEAD`` (or 204/304): aiohttp sends
  it, breaking the framing; lowserve drops it (``head-stream`` compares the heads only).
* A declined ``Upgrade`` request (``ws-bad-version``): lowserve adds ``Connection: close``,
  since what follows the head may be frames, not a request; aiohttp keeps the connection.
* Malformed requests: lowserve answers ``HTTP/1.1`` with ``Connection: close`` and its own
  short text; aiohttp answers ``HTTP/1.0 400`` with parser text (``test_protocol`` covers ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web as aioweb

from lowserve import web as lsweb

from compat_handlers import make_handler
from conftest import exchange

CASES: dict[str, bytes] = {
    "file": b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n",
    "file-head": b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n",
    "file-range": b"GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=10-29\r\n\r\n",
    "file-suffix-range": b"GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=-5\r\n\r\n",
    "file-416": b"GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=99999999-\r\n\r\n",
    "file-304": b"GET /file HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n",
    "file-412": b'GET /file HTTP/1.1\r\nHost: x\r\nIf-Match: "x"\r\n\r\n',
    # Upgrades the handler declines (curl --http2 on http://): the body and the
    # requests pipelined behind are served as usual.
    "h2c-declined-pipelined": (
        b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ),
    "h2c-declined-body": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ),
    "h2c-declined-chunked": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ),
    **{
        f"payload-{kind}": b"GET /payload-%b HTTP/1.1\r\nHost: x\r\n\r\n" % kind.encode()
        for kind in ("bytes", "string", "json", "aiter", "file", "headers")
    },
    **{
        f"body-{kind}": b"GET /body-%b HTTP/1.1\r\nHost: x\r\n\r\n" % kind.encode()
        for kind in ("streamer", "agen", "agen-fails", "file", "multipart")
    },
    "body-file-head": b"HEAD /body-file HTTP/1.1\r\nHost: x\r\n\r\n",
    "payload-head": b"HEAD /payload-bytes HTTP/1.1\r\nHost: x\r\n\r\n",
    "text": b"GET /text HTTP/1.1\r\nHost: x\r\n\r\n",
    "bytes": b"GET /bytes HTTP/1.1\r\nHost: x\r\n\r\n",
    "empty": b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
    "json": b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n",
    "json-none": b"GET /json-none HTTP/1.1\r\nHost: x\r\n\r\n",
    "status": b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n",
    "headers": b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n",
    "content-type": b"GET /content-type HTTP/1.1\r\nHost: x\r\n\r\n",
    "stream": b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
    "stream-10": b"GET /stream HTTP/1.0\r\n\r\n",
    "stream-length": b"GET /stream-length HTTP/1.1\r\nHost: x\r\n\r\n",
    "stream-unprepared": b"GET /stream-unprepared HTTP/1.1\r\nHost: x\r\n\r\n",
    "raise404": b"GET /raise404 HTTP/1.1\r\nHost: x\r\n\r\n",
    "raise-text": b"GET /raise-text HTTP/1.1\r\nHost: x\r\n\r\n",
    "redirect": b"GET /redirect HTTP/1.1\r\nHost: x\r\n\r\n",
    "moved": b"GET /moved HTTP/1.1\r\nHost: x\r\n\r\n",
    "405": b"POST /405 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "204": b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n",
    "304": b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n",
    "204-body": b"GET /204-body HTTP/1.1\r\nHost: x\r\n\r\n",
    "500": b"GET /500 HTTP/1.1\r\nHost: x\r\n\r\n",
    "500-html": b"GET /500 HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n",
    "timeout": b"GET /timeout HTTP/1.1\r\nHost: x\r\n\r\n",
    "none": b"GET /none HTTP/1.1\r\nHost: x\r\n\r\n",
    "cookies": b"GET /cookies HTTP/1.1\r\nHost: x\r\n\r\n",
    "force-close": b"GET /force-close HTTP/1.1\r\nHost: x\r\n\r\n",
    "chunked": b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n",
    "compress-gzip": b"GET /compress HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
    "compress-deflate": b"GET /compress HTTP/1.1\r\nHost: x\r\nAccept-Encoding: deflate\r\n\r\n",
    "compress-none": b"GET /compress HTTP/1.1\r\nHost: x\r\n\r\n",
    "last-modified": b"GET /last-modified HTTP/1.1\r\nHost: x\r\n\r\n",
    "head-text": b"HEAD /text HTTP/1.1\r\nHost: x\r\n\r\n",
    "head-stream": b"HEAD /stream-length HTTP/1.1\r\nHost: x\r\n\r\n",
    "http10": b"GET /text HTTP/1.0\r\n\r\n",
    "http10-keepalive": b"GET /text HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "close": b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "echo": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "echo-chunked": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"
    ),
    "echo-gzip": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%b"
        % (len(gzip.compress(b"zipped!")), gzip.compress(b"zipped!"))
    ),
    "json-echo": b'POST /json-echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"a": [1]}',
    "form": (
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 19\r\n\r\na=1&b=two+words&c="
        b"\n"
    ),
    "multipart": (
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
        b"Content-Length: 177\r\n\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="up"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n"
    ),
    # %XX escapes are bytes in the body's charset (here latin-1); a bad one is U+FFFD
    "form-latin1": (
        b"POST /form HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded; charset=latin-1\r\n"
        b"Content-Length: 27\r\n\r\na=%E9t%E9&b=caf%C3%A9&c=\xe9+x"
    ),
    "form-bad-escape": (
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 9\r\n\r\na=%E9&b=%"
    ),
    "stream-read": b"POST /stream-read HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nabcdefgh",
    "introspect": (
        b"GET /introspect/a%20b/c?x=1&y=2&x=3 HTTP/1.1\r\nHost: example.com:8080\r\n"
        b"Cookie: s=1; t=two\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        b'If-None-Match: "a", W/"b"\r\nForwarded: for=1.2.3.4;proto=https, for="[::1]"\r\n'
        b"Range: bytes=0-99\r\nX-Custom: v \r\n\r\n"
    ),
    "introspect-post": (
        b"POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    ),
    "introspect-10": b"GET /introspect?q HTTP/1.0\r\n\r\n",
    # Cookie names browsers send, attribute names as cookies, quoted values, odd pairs
    "introspect-cookies": (
        b"GET /introspect HTTP/1.1\r\nHost: x\r\nCookie: {a}=1; b/c=2; d[0]=3; e(1)=4; "
        b'Domain=.x.org; Path=/; Secure; q="v;w"; c,d=5; x=y"z; ok=6\r\n\r\n'
    ),
    # Absolute-form targets (RFC 9112 §3.2.2): URL and host from the target, not Host;
    # the scheme from the connection, whatever the target claims.
    "introspect-absolute": (
        b"GET http://Example.com:8080/introspect/a%20b?x=1 HTTP/1.1\r\nHost: other:1\r\n\r\n"
    ),
    "introspect-absolute-https": (
        b"GET https://user@[::1]:81/introspect HTTP/1.1\r\nHost: other\r\n\r\n"
    ),
    "pipelined": (
        b"GET /text HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /raise404 HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "unread-body-then-next": (
        b"POST /text HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
        b"GET /bytes HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
}

HEAD_ONLY = {"head-stream"}
CLOSES_DECLINED_UPGRADE: set[str] = set()
# aiohttp serves a declined upgrade request (and its body) but never answers what is
# pipelined behind it; lowserve answers it too (documented). aiohttp's bytes are a prefix.
ANSWERS_MORE = {"h2c-declined-pipelined", "h2c-declined-body", "h2c-declined-chunked"}
_WS = (
    "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
)


def _masked(opcode: int, payload: bytes) -> bytes:
    key = b"\x01\x02\x03\x04"
    return (
        bytes([0x80 | opcode, 0x80 | len(payload)])
        + key
        + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    )


CASES.update(
    {
        "ws-echo": _WS.format(path="/ws", extra="Sec-WebSocket-Protocol: x, chat\r\n").encode()
        + _masked(1, b"hi")
        + _masked(2, b"abc"),
        "ws-server-close": _WS.format(path="/ws-server-close", extra="").encode(),
        "ws-close-after-data": _WS.format(path="/ws", extra="").encode()
        + _masked(1, b"a")
        + _masked(2, b"bc")
        + _masked(8, b"\x03\xe9bye"),
        "ws-manual": _WS.format(path="/ws-manual", extra="").encode()
        + _masked(9, b"pi")
        + _masked(8, b"\x03\xe8bye"),
        "ws-bad-version": _WS.format(path="/ws", extra="").replace("13", "12").encode(),
        "ws-no-upgrade": b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    }
)

_VOLATILE = re.compile(rb"^(Date|Server): [^\r]*\r\n", re.M | re.I)


def normalise(raw: bytes) -> bytes:
    return _VOLATILE.sub(b"", raw)


@contextlib.asynccontextmanager
async def running(web: Any) -> AsyncIterator[int]:
    server = web.Server(make_handler(web), access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


async def ask(port: int, raw: bytes) -> bytes:
    # Read until the server closes, or until it has been quiet for a moment (keep-alive).
    # The first bytes get longer: a file's answer waits on a worker thread (aiohttp's
    # stat and open), which took over 0.3 s on a loaded machine.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    out = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 0.3 if out else 10)
            if not chunk:
                break
            out += chunk
    except asyncio.TimeoutError:
        pass
    writer.close()
    return out


@pytest.fixture(scope="module")
def answers() -> dict[str, tuple[bytes, bytes]]:
    async def collect() -> dict[str, tuple[bytes, bytes]]:
        out: dict[str, tuple[bytes, bytes]] = {}
        async with running(aioweb) as ap, running(lsweb) as lp:
            results = await asyncio.gather(
                *(asyncio.gather(ask(ap, raw), ask(lp, raw)) for raw in CASES.values())
            )
        for name, (theirs, ours) in zip(CASES, results, strict=True):
            out[name] = (theirs, ours)
        return out

    return asyncio.run(asyncio.wait_for(collect(), 60))


def _aiohttp_version() -> tuple[int, ...]:
    import aiohttp

    return tuple(int(x) for x in aiohttp.__version__.split(".")[:3] if x.isdigit())


@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_as_aiohttp(case: str, answers: dict[str, tuple[bytes, bytes]]) -> None:
    theirs, ours = answers[case]
    assert theirs, "aiohttp answered nothing"
    if case == "introspect" and _aiohttp_version() < (3, 14, 5):
        pytest.skip("aiohttp < 3.14.5 keeps trailing whitespace in header values (RFC 9110 §5.5)")
    ours, theirs = normalise(ours), normalise(theirs)
    if case in CLOSES_DECLINED_UPGRADE:
        ours = ours.replace(b"Connection: close\r\n", b"", 1)
    if case in HEAD_ONLY:
        ours, theirs = ours.partition(b"\r\n\r\n")[0], theirs.partition(b"\r\n\r\n")[0]
    if case in ANSWERS_MORE:
        assert ours.count(b"HTTP/1.1 200 ") == 2
        ours = ours[: len(theirs)]
    if ours != theirs and theirs.count(b"HTTP/1.1 ") == 1 and b"application/json" in theirs:
        # Name the field that differs, not just the byte.
        assert json.loads(ours.partition(b"\r\n\r\n")[2]) == json.loads(
            theirs.partition(b"\r\n\r\n")[2]
        )
    assert ours == theirs


def test_seed_example_answers_ok_everywhere() -> None:
    async def main() -> None:
        async def handler(request: Any) -> Any:
            return lsweb.Response(text="OK")

        async with running(
            type(
                "W",
                (),
                {
                    "Server": lambda h, **kw: lsweb.Server(handler, **kw),
                    "ServerRunner": lsweb.ServerRunner,
                    "TCPSite": lsweb.TCPSite,
                },
            )
        ) as port:
            for method in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"):
                raw = await exchange(
                    port,
                    f"{method} /any/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
                )
                assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
                if method != "HEAD":
                    assert raw.endswith(b"\r\n\r\nOK")

    asyncio.run(main())
