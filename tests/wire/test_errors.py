"""lowserve.wire.errors in memory: which status a refusal gets, and its bytes."""

from __future__ import annotations

import pytest

from lowserve.wire.errors import WireError, error_reply, method_refusal, syntax_refusal


@pytest.mark.parametrize(
    ("start", "status"),
    [
        (b"BREW /pot HTTP/1.1\r\n", 501),  # a method-shaped token lowserve does not know
        (b"brew /pot HTTP/1.1\r\n", 400),  # lower case is no method
        (b"GE(T / HTTP/1.1\r\n", 400),
        (b"BREW", 400),  # no space after it: not a request line
        (b"\x16\x03\x01\x02\x00", 400),  # TLS sent to a plain port
    ],
)
def test_method_refusal(start: bytes, status: int) -> None:
    assert method_refusal(start).status == status


@pytest.mark.parametrize(
    ("detail", "data", "status", "said"),
    [
        ("Invalid HTTP version", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "HTTP/1.2"),
        ("Invalid HTTP version", b"GET / HTTP/3.0\r\n", 505, "HTTP/3.0"),
        ("Pause on PRI/Upgrade", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2.0"),
        ("Invalid HTTP version", b"GET / HTTP/11\r\n", 400, "Invalid HTTP version"),
        ("Invalid header value char", b"GET / HTTP/1.2\r\n", 400, "Invalid header"),
        ("", b"GET / HTTP/1.1\r\n", 400, "malformed request"),
    ],
)
def test_syntax_refusal(detail: str, data: bytes, status: int, said: str) -> None:
    err = syntax_refusal(detail, data)
    assert err.status == status and said in err.detail


def test_error_reply_closes_and_names_the_status() -> None:
    reply = error_reply(WireError(431, "too many header fields"), "lowserve")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nConnection: close" in head and b"\r\nServer: lowserve" in head
    assert body == b"431: Request Header Fields Too Large (too many header fields)"
    assert b"Content-Length: %d\r\n" % len(body) in head
    assert b"\r\nServer:" not in error_reply(WireError(400, "x"), None)
