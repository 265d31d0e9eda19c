"""The PROXY protocol: the parser alone, and connections that start with a header."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct

import pytest

from lowserve import web
from lowserve.wire.proxyprotocol import SIGNATURE, ProxyHeader, parse

from conftest import serve


def v2(cmd: int, fam: int, body: bytes) -> bytes:
    return SIGNATURE + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


TCP4 = v2(
    1, 0x11, ipaddress.IPv4Address("203.0.113.7").packed + bytes(4) + struct.pack("!HH", 4242, 80)
)
TCP6 = v2(
    1, 0x21, ipaddress.IPv6Address("2001:db8::7").packed + bytes(16) + struct.pack("!HH", 4343, 80)
)
LOCAL = v2(0, 0x00, b"")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 80\r\nGET", ProxyHeader(41, ("203.0.113.7", 4242))),
        (b"PROXY TCP6 2001:db8::7 ::1 4343 80\r\n", ProxyHeader(36, ("2001:db8::7", 4343))),
        (b"PROXY UNKNOWN\r\n", ProxyHeader(15, None)),
        (TCP4 + b"GET", ProxyHeader(len(TCP4), ("203.0.113.7", 4242))),
        (TCP6, ProxyHeader(len(TCP6), ("2001:db8::7", 4343))),
        (LOCAL, ProxyHeader(16, None)),
        (
            v2(1, 0x11, TCP4[16:] + b"\x04\x00\x01x"),
            ProxyHeader(len(TCP4) + 4, ("203.0.113.7", 4242)),
        ),  # a TLV
        (b"PROXY TCP4 1.2.3.4", None),  # more needed
        (TCP4[:10], None),
        (TCP4[:20], None),
    ],
)
def test_parse(data: bytes, expected: ProxyHeader | None) -> None:
    assert parse(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\n",
        b"PROXY TCP5 1.2.3.4 10.0.0.1 1 2\r\n",
        b"PROXY " + b"x" * 120,
        b"\r\n\r\n\x00\r\nQUIX\n" + bytes(4),
        v2(3, 0x11, bytes(12)),
        v2(1, 0x11, bytes(4)),
    ],
)
def test_parse_refuses(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse(data)


async def _remote(request: web.BaseRequest) -> web.Response:
    return web.Response(text=f"{request.remote}")


async def _talk(port: int, data: bytes, pieces: int = 1) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
        await asyncio.sleep(0.01)
    out = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return out


REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("header", "remote"),
    [
        (b"PROXY TCP4 203.0.113.7 127.0.0.1 4242 80\r\n", b"203.0.113.7"),
        (b"PROXY TCP6 2001:db8::7 ::1 4343 80\r\n", b"2001:db8::7"),
        (b"PROXY UNKNOWN\r\n", b"127.0.0.1"),
        (TCP4, b"203.0.113.7"),
        (TCP6, b"2001:db8::7"),
        (LOCAL, b"127.0.0.1"),  # a health check: the balancer itself
    ],
)
async def test_connections_take_the_client_from_the_header(header: bytes, remote: bytes) -> None:
    async with serve(_remote, proxy_protocol=True) as s:
        for pieces in (1, 7):  # whole, and cut across segments
            out = await _talk(s.port, header + REQUEST, pieces)
            assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(remote), out


@pytest.mark.parametrize(
    "data",
    [REQUEST, b"PROXY TCP4 bogus\r\n" + REQUEST, SIGNATURE + b"\x99\x11\x00\x00" + REQUEST],
)
async def test_missing_or_malformed_headers_close_with_a_debug_line(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "lowserve")
    async with serve(_remote, proxy_protocol=True) as s:
        assert await _talk(s.port, data) == b""
        out = await _talk(s.port, TCP4 + REQUEST)  # still serving
        assert out.endswith(b"203.0.113.7")
    assert any("PROXY protocol" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]


async def test_untrusted_peers_are_refused() -> None:
    async with serve(_remote, proxy_protocol=True, forwarded_allow_ips=("10.0.0.1",)) as s:
        assert await _talk(s.port, TCP4 + REQUEST) == b""
