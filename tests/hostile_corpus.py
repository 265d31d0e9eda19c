"""The hostile-request corpus: (name, bytes, category, status).

Categories:
* ``head``: refused before any handler runs: one answer, Connection: close, closed.
* ``body``: the head is fine, the body is not: the handler (which reads it) gets a
  RequestPayloadError or HTTPRequestEntityTooLarge and the answer is precise.
* ``declined``: an upgrade the handler declines: it and the request behind it are answered.
"""

from __future__ import annotations

import gzip
import zlib

H = b"Host: a\r\n"
POST = b"POST /echo HTTP/1.1\r\nHost: a\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
BOMB = gzip.compress(b"\0" * (3 * 2**20))


def _gz(content: bytes, coding: bytes = b"gzip") -> bytes:
    return POST + b"Content-Encoding: %b\r\nContent-Length: %d\r\n\r\n%b" % (
        coding,
        len(content),
        content,
    )


VECTORS: list[tuple[str, bytes, str, int]] = [
    # -- Content-Length / Transfer-Encoding conflicts and malformed values
    (
        "cl-and-te",
        POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "head",
        400,
    ),
    ("cl-negative", POST + b"Content-Length: -1\r\n\r\n", "head", 400),
    ("cl-letters", POST + b"Content-Length: abc\r\n\r\n", "head", 400),
    ("cl-two-numbers", POST + b"Content-Length: 1 2\r\n\r\n", "head", 400),
    ("cl-list", POST + b"Content-Length: 5, 5\r\n\r\nhello", "head", 400),
    ("cl-twice-same", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "head", 400),
    (
        "cl-twice-different",
        POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "head",
        400,
    ),
    ("cl-plus", POST + b"Content-Length: +5\r\n\r\nhello", "head", 400),
    ("cl-hex", POST + b"Content-Length: 0x5\r\n\r\nhello", "head", 400),
    ("cl-overflow", POST + b"Content-Length: 99999999999999999999999\r\n\r\n", "head", 400),
    ("cl-empty", POST + b"Content-Length: \r\n\r\n", "head", 400),
    ("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", "head", 501),
    # chunked not last: the body's length cannot be known (RFC 9112 §6.3): 400
    ("te-chunked-gzip", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", "head", 400),
    ("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n", "head", 501),
    ("te-unknown", POST + b"Transfer-Encoding: xchunked\r\n\r\n", "head", 501),
    (
        "te-twice",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "head",
        400,
    ),
    ("te-chunked-chunked", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n", "head", 400),
    (
        "te-http10",
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "head",
        400,
    ),
    ("te-space-before-colon", POST + b"Transfer-Encoding : chunked\r\n\r\n", "head", 400),
    ("te-folded", POST + b"Transfer-Encoding: gzip,\r\n chunked\r\n\r\n", "head", 400),
    ("te-empty", POST + b"Transfer-Encoding: \r\n\r\n", "head", 400),
    # -- chunk framing (the head is fine: the handler's read fails)
    ("chunk-size-not-hex", CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n", "body", 400),
    ("chunk-size-negative", CHUNKED + b"-3\r\nabc\r\n0\r\n\r\n", "body", 400),
    ("chunk-size-overflow", CHUNKED + b"fffffffffffffffffff\r\nabc\r\n", "body", 400),
    ("chunk-size-space", CHUNKED + b"3 \r\nabc\r\n0\r\n\r\n", "body", 400),
    ("chunk-size-empty", CHUNKED + b"\r\nabc\r\n0\r\n\r\n", "body", 400),
    ("chunk-data-too-long", CHUNKED + b"3\r\nabcdef\r\n0\r\n\r\n", "body", 400),
    ("chunk-missing-crlf", CHUNKED + b"3\r\nabcX\r\n0\r\n\r\n", "body", 400),
    ("chunk-bare-lf", CHUNKED + b"3\nabc\n0\n\n", "body", 400),
    ("chunk-ext-control", CHUNKED + b"3;a=\x01\r\nabc\r\n0\r\n\r\n", "body", 400),
    ("chunk-ext-space-name", CHUNKED + b"3; =b\r\nabc\r\n0\r\n\r\n", "body", 400),
    ("chunk-trailer-bad", CHUNKED + b"3\r\nabc\r\n0\r\nBad Trailer\r\n\r\n", "body", 400),
    ("chunk-trailer-nul", CHUNKED + b"3\r\nabc\r\n0\r\nX: a\x00b\r\n\r\n", "body", 400),
    ("chunk-size-0x", CHUNKED + b"0x3\r\nabc\r\n0\r\n\r\n", "body", 400),
    # -- header syntax
    ("hdr-space-before-colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "head", 400),
    ("hdr-no-colon", b"GET / HTTP/1.1\r\n" + H + b"Foo\r\n\r\n", "head", 400),
    ("hdr-bad-name-char", b"GET / HTTP/1.1\r\n" + H + b"Fo@o: x\r\n\r\n", "head", 400),
    ("hdr-nul-value", b"GET / HTTP/1.1\r\n" + H + b"Foo: a\x00b\r\n\r\n", "head", 400),
    ("hdr-cr-value", b"GET / HTTP/1.1\r\n" + H + b"Foo: a\rb\r\n\r\n", "head", 400),
    ("hdr-obs-fold", b"GET / HTTP/1.1\r\n" + H + b"Foo: a\r\n b\r\n\r\n", "head", 400),
    ("hdr-empty-name", b"GET / HTTP/1.1\r\n" + H + b": x\r\n\r\n", "head", 400),
    ("hdr-leading-space", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", "head", 400),
    ("hdr-bare-lf", b"GET / HTTP/1.1\r\nHost: a\n\r\n", "head", 400),
    ("hdr-del-value", b"GET / HTTP/1.1\r\n" + H + b"Foo: a\x7fb\r\n\r\n", "head", 400),
    ("hdr-utf8-name", b"GET / HTTP/1.1\r\n" + H + "Fé: x\r\n\r\n".encode(), "head", 400),
    ("hdr-tab-in-name", b"GET / HTTP/1.1\r\n" + H + b"Fo\to: x\r\n\r\n", "head", 400),
    ("hdr-bare-cr-end", b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", "head", 400),
    (
        "hdr-dup-content-type",
        POST + b"Content-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n",
        "head",
        400,
    ),
    (
        "hdr-dup-user-agent",
        b"GET / HTTP/1.1\r\n" + H + b"User-Agent: a\r\nUser-Agent: b\r\n\r\n",
        "head",
        400,
    ),
    # -- request line and Host
    ("host-missing", b"GET / HTTP/1.1\r\n\r\n", "head", 400),
    ("host-twice", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "head", 400),
    ("http09", b"GET /\r\n\r\n", "head", 400),
    ("http20", b"GET / HTTP/2.0\r\n" + H + b"\r\n", "head", 505),
    ("http12", b"GET / HTTP/1.2\r\n" + H + b"\r\n", "head", 505),  # llhttp knows 1.0/1.1
    ("http30", b"GET / HTTP/3.0\r\n" + H + b"\r\n", "head", 505),
    ("method-lowercase", b"get / HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("method-unknown", b"FROB / HTTP/1.1\r\n" + H + b"\r\n", "head", 501),
    ("method-digits", b"G3T / HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("line-no-space", b"GET/ HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("line-tab", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("line-tab-before-version", b"GET /\tHTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("line-leading-space", b" GET / HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("target-space", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("target-control", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("target-nul", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", "head", 400),
    ("version-lowercase", b"GET / http/1.1\r\n" + H + b"\r\n", "head", 400),
    ("version-short", b"GET / HTTP/1\r\n" + H + b"\r\n", "head", 400),
    ("version-trailing-space", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", "head", 400),
    ("line-bare-cr", b"GET / HTTP/1.1\rHost: a\r\r", "head", 400),
    ("line-bare-lf", b"GET / HTTP/1.1\nHost: a\n\n", "head", 400),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32), "head", 400),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "head", 505),  # with http2=False
    ("garbage", b"\xff\xfe\xfd\r\n\r\n", "head", 400),
    ("only-spaces", b"   \r\n\r\n", "head", 400),
    # -- oversize lines, fields and counts (defaults: 8190, 8190, 128)
    ("line-too-long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", "head", 414),
    ("value-too-long", b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 9000 + b"\r\n\r\n", "head", 431),
    ("name-too-long", b"GET / HTTP/1.1\r\n" + H + b"X" * 9000 + b": v\r\n\r\n", "head", 431),
    (
        "too-many-headers",
        b"GET / HTTP/1.1\r\n" + H + b"".join(b"X%d: v\r\n" % i for i in range(200)) + b"\r\n",
        "head",
        431,
    ),
    (
        "many-cookies-too-many",
        b"GET / HTTP/1.1\r\n" + H + b"Cookie: a=b\r\n" * 129 + b"\r\n",
        "head",
        431,
    ),
    # -- expectations and codings
    ("expect-unknown", POST + b"Expect: 200-ok\r\nContent-Length: 0\r\n\r\n", "head", 417),
    ("coding-zstd", POST + b"Content-Encoding: zstd\r\nContent-Length: 2\r\n\r\nab", "head", 415),
    (
        "coding-list",
        POST + b"Content-Encoding: gzip, br\r\nContent-Length: 2\r\n\r\nab",
        "head",
        415,
    ),
    # -- body errors
    ("gzip-corrupt", _gz(b"not gzip at all"), "body", 400),
    ("deflate-corrupt", _gz(b"not deflate", b"deflate"), "body", 400),
    ("gzip-bomb", _gz(BOMB), "body", 413),
    ("deflate-bomb", _gz(zlib.compress(b"\0" * (3 * 2**20)), b"deflate"), "body", 413),
    (
        "body-past-client-max-size",
        POST + b"Content-Length: %d\r\n\r\n" % (2 * 2**20) + b"x" * (2 * 2**20),
        "body",
        413,
    ),
    (
        "chunked-past-client-max-size",
        CHUNKED + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 2 + b"0\r\n\r\n",
        "body",
        413,
    ),
    # -- upgrades the handler declines: answered, and the request behind them too
    (
        "declined-h2c",
        b"GET /echo HTTP/1.1\r\n"
        + H
        + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        "declined",
        200,
    ),
    (
        "declined-h2c-body",
        POST + b"Connection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello",
        "declined",
        200,
    ),
    (
        "declined-h2c-chunked",
        CHUNKED.replace(b"\r\n\r\n", b"\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        + b"5\r\nhello\r\n0\r\n\r\n",
        "declined",
        200,
    ),
    (
        "declined-websocket",
        b"GET /echo HTTP/1.1\r\n"
        + H
        + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "declined",
        200,
    ),
    (
        "declined-unknown",
        b"GET /echo HTTP/1.1\r\n" + H + b"Connection: upgrade\r\nUpgrade: foo/1\r\n\r\n",
        "declined",
        200,
    ),
]
