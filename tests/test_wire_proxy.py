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
