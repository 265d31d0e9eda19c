"""lowserve.wire.proxy: one quote-aware Forwarded parser for proxy headers and request.forwarded."""

from __future__ import annotations

import pytest

from lowserve.wire.proxy import TrustedPeers, parse_forwarded, read_proxy_headers


def _read(value: bytes) -> tuple[str | None, str | None, str | None]:
    return read_proxy_headers([(b"Forwarded", value)])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'for=1.2.3.4;host="h";proto=https;by="p,q"', ("1.2.3.4", "https", "h")),
        (b'for=1.2.3.4;host="x;y"', ("1.2.3.4", None, "x;y")),
        (b'for="[2001:db8::1]:80";proto=http', ("2001:db8::1", "http", None)),
        (b"for=10.0.0.1, for=9.9.9.9:1;proto=HTTPS", ("9.9.9.9", "https", None)),
        (b'for=1.1.1.1, by="a,b";for=2.2.2.2', ("2.2.2.2", None, None)),
        (b'for=1.2.3.4;proto="ftp"', ("1.2.3.4", None, None)),
        (b"garbage", (None, None, None)),
    ],
)
def test_proxy_headers_read_the_last_hop_honouring_quotes(
    value: bytes, expected: tuple[str | None, str | None, str | None]
) -> None:
    assert _read(value) == expected


def test_parse_forwarded_gives_every_hop_and_unescapes() -> None:
    hops = parse_forwarded(['for=a;by="p,q";host="x\\"y"', "for=b;for=c;bad pair;proto=http"])
    assert hops == [{"for": "a", "by": "p,q", "host": 'x"y'}, {"for": "b", "proto": "http"}]


def test_both_readers_agree_on_quoted_separators() -> None:
    value = 'for=1.2.3.4;host="h";proto=https;by="p,q"'
    [hop] = parse_forwarded([value])
    assert (hop["for"], hop["proto"], hop["host"]) == _read(value.encode())


def test_x_forwarded_used_without_forwarded() -> None:
    headers = [(b"X-Forwarded-For", b"1.1.1.1, 2.2.2.2"), (b"X-Forwarded-Proto", b"https")]
    assert read_proxy_headers(headers) == ("2.2.2.2", "https", None)


def test_trust() -> None:
    assert "127.0.0.1" in TrustedPeers(["127.0.0.1"])
    assert "10.1.2.3" in TrustedPeers(["10.0.0.0/8"])
    assert "10.1.2.3" not in TrustedPeers(["127.0.0.1"])
    assert "" in TrustedPeers(["unix"]) and "" not in TrustedPeers(["127.0.0.1"])


def test_trusted_peers_parse_once_and_refuse_bad_entries() -> None:
    peers = TrustedPeers(["10.0.0.0/8", "::1", "unix"])
    assert "10.2.3.4" in peers and "::1" in peers and "" in peers and None in peers
    assert "11.0.0.1" not in peers and "not-an-ip" not in peers
    assert "1.2.3.4" in TrustedPeers(["*"])
    for bad in ("not-an-ip", "10.0.0.0/33", "unix:/x"):
        with pytest.raises(ValueError, match="is not an address, a network"):
            TrustedPeers([bad])


@pytest.mark.parametrize(
    ("value", "remote"),
    [
        (b"203.0.113.7", "203.0.113.7"),
        (b"10.0.0.1, 203.0.113.7", "203.0.113.7"),
        (b"203.0.113.7:4711", "203.0.113.7"),
        (b"2001:db8::1", "2001:db8::1"),
        (b"[2001:db8::1]", "2001:db8::1"),
        (b"[2001:db8::1]:4711", "2001:db8::1"),
        (b"garbage!!", None),
        (b"203.0.113.7, garbage!!", None),  # the last hop is the one believed
        (b"<script>", None),
        (b"unknown", None),  # RFC 7239's tokens are Forwarded's, not X-Forwarded-For's
        (b"_hidden", None),
        (b"203.0.113.7:port", None),
        (b"203.0.113.7:65536", None),
        (b"01.2.3.4", None),  # octal-looking: refused by ipaddress
        (b"fe80::1%eth0", None),  # a zone names the proxy's interface
        (b"[203.0.113.7]", None),  # brackets hold an IPv6 address
        (b"[2001:db8::1", None),
        (b"", None),
    ],
)
def test_x_forwarded_for_believes_ip_addresses_only(value: bytes, remote: str | None) -> None:
    """Anything but an address (with or without a port) leaves request.remote to the
    peer's address (None here), and out of the access log."""
    assert read_proxy_headers([(b"X-Forwarded-For", value)])[0] == remote


@pytest.mark.parametrize(
    ("value", "remote"),
    [
        (b"for=203.0.113.7", "203.0.113.7"),
        (b'for="203.0.113.7:4711"', "203.0.113.7"),
        (b'for="[2001:db8::1]:4711"', "2001:db8::1"),
        (b"for=unknown", "unknown"),
        (b"for=UNKNOWN", "unknown"),
        (b'for="unknown:4711"', "unknown"),
        (b"for=_hidden", "_hidden"),
        (b'for="_hidden:_port"', "_hidden"),
        (b"for=_a.b-c_9", "_a.b-c_9"),
        (b'for="garbage!!"', None),
        (b"for=garbage", None),
        (b'for="_bad!"', None),
        (b"for=_", None),
        (b'for="unknown:x"', None),
        (b'for="[unknown]"', None),
        (b"for=203.0.113.7, for=spoofed", None),
    ],
)
def test_forwarded_for_believes_addresses_and_rfc_7239_identifiers(
    value: bytes, remote: str | None
) -> None:
    assert _read(value)[0] == remote


def test_an_unusable_for_keeps_the_rest_of_its_hop() -> None:
    assert _read(b'for="garbage!!";proto=https;host=example.org') == (
        None,
        "https",
        "example.org",
    )
    headers = [(b"X-Forwarded-For", b"garbage!!"), (b"X-Forwarded-Proto", b"https")]
    assert read_proxy_headers(headers) == (None, "https", None)


async def test_garbage_from_a_trusted_proxy_is_neither_remote_nor_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a socket from a trusted peer (127.0.0.1): an unusable X-Forwarded-For or
    Forwarded leaves request.remote, and the access log's %a, the peer's address."""
    import logging

    from lowserve import web

    from conftest import exchange, serve

    async def remote(request: web.BaseRequest) -> web.Response:
        return web.Response(text=str(request.remote))

    caplog.set_level(logging.INFO, "lowserve.access")
    access = logging.getLogger("lowserve.access")
    async with serve(remote, proxy_headers=True, access_log=access) as s:
        for header, expected in [
            (b"X-Forwarded-For: garbage!!", b"127.0.0.1"),
            (b'Forwarded: for="garbage!!"', b"127.0.0.1"),
            (b"X-Forwarded-For: 203.0.113.7", b"203.0.113.7"),
            (b"Forwarded: for=_hidden", b"_hidden"),
        ]:
            request = b"GET / HTTP/1.1\r\nHost: a\r\n" + header + b"\r\nConnection: close\r\n\r\n"
            out = await exchange(s.port, request)
            assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\n" + expected)
    logged = [r.getMessage() for r in caplog.records if r.name == "lowserve.access"]
    assert [line.split()[0] for line in logged] == [
        "127.0.0.1",
        "127.0.0.1",
        "203.0.113.7",
        "_hidden",
    ]
    assert not any("garbage" in line for line in logged)


@pytest.mark.parametrize(
    ("value", "hops"),
    [
        # a proxy appended its element to a value with an unclosed quote
        ('for=_injected;by=", for=_real', [{"for": "_injected"}, {"for": "_real"}]),
        ('for="1.2.3.4, for=5.6.7.8', [{}, {"for": "5.6.7.8"}]),
        ('for=a"b, for=c', [{}, {"for": "c"}]),
        # a closed quote still groups, escaped quotes included
        ('for=a;by="x\\"", for=b', [{"for": "a", "by": 'x"'}, {"for": "b"}]),
        ('by="p,q"junk, for=z', [{}, {"for": "z"}]),
        ('"', [{}]),
    ],
)
def test_an_unclosed_quote_does_not_swallow_the_elements_after_it(
    value: str, hops: list[dict[str, str]]
) -> None:
    assert parse_forwarded([value]) == hops


def test_the_last_hop_after_an_unclosed_quote_is_the_one_read() -> None:
    assert _read(b'for=1.1.1.1;by=", for=2.2.2.2;proto=https') == ("2.2.2.2", "https", None)


@pytest.mark.parametrize("unit", ['a=",', '\\"', '"\\"', 'x;by="', ";", 'a="\\",,'])
def test_hostile_forwarded_values_parse_in_linear_time(unit: str) -> None:
    """64 KiB of repeated broken quotes and separators parse well within a second:
    each quote is searched for its end at most once (re-scanning to the end after
    every broken quote would take minutes here)."""
    import time

    value = unit * (65536 // len(unit))
    start = time.perf_counter()
    hops = parse_forwarded([value])
    assert time.perf_counter() - start < 1.0
    assert len(hops) >= 1
