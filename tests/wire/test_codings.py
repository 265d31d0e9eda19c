"""wire.codings: the response coding negotiated and request bodies decoded, each
checked against what aiohttp does with the same bytes."""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import Callable

import pytest

from lowserve import web
from lowserve.wire.codings import BodyDecoder, ContentCoding, negotiate
from lowserve.wire.errors import WireError

from conftest import exchange, serve

CASES = {
    "gzip, deflate": ContentCoding.deflate,  # aiohttp's client's default
    "gzip, deflate, br": ContentCoding.deflate,
    "deflate": ContentCoding.deflate,
    "gzip": ContentCoding.gzip,
    "GZIP": ContentCoding.gzip,
    "x-gzip": ContentCoding.gzip,
    "br": None,
    "identity": None,
    "": None,
}


@pytest.mark.parametrize(("header", "coding"), list(CASES.items()))
def test_negotiate(header: str, coding: ContentCoding | None) -> None:
    assert negotiate(header) is coding


def _aiohttp_choice(header: str) -> str | None:
    """The coding aiohttp's StreamResponse._start_compression takes for *header*."""
    from aiohttp.web_response import CONTENT_CODINGS

    for value in CONTENT_CODINGS:
        if value in header.lower():
            return None if value == "identity" else value
    return None


def test_same_as_aiohttp_on_random_headers() -> None:
    pytest.importorskip("aiohttp")
    words = ["gzip", "deflate", "br", "identity", "*", "x-gzip", "zstd", ";q=0", ";q=0.5", ", "]
    rng = random.Random(18)
    for header in [*CASES, *("".join(rng.choices(words, k=5)) for _ in range(2000))]:
        ours = negotiate(header)
        assert (ours.value if ours else None) == _aiohttp_choice(header), header


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


PACKERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110's deflate: zlib-wrapped
    "raw deflate": _raw_deflate,  # what aiohttp's multipart writer sends
}


def _coding(name: str) -> str:
    return "deflate" if name == "raw deflate" else name


def _aiohttp_inflate(coding: str, chunks: list[bytes]) -> bytes | None:
    """A request body through aiohttp's own decoder (DeflateBuffer); None if refused."""
    from unittest import mock

    import aiohttp
    from aiohttp.http_exceptions import ContentEncodingError
    from aiohttp.http_parser import DeflateBuffer

    out = aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=mock.Mock())
    buffer = DeflateBuffer(out, coding, max_decompress_size=2**30)
    try:
        for chunk in chunks:
            buffer.feed_data(chunk, len(chunk))
        buffer.feed_eof()
    except ContentEncodingError:
        return None
    return out.read_nowait()


def _split(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("name", list(PACKERS))
def test_body_decoder_reads_what_aiohttp_reads(name: str) -> None:
    """Request bodies, in random pieces: deflate zlib-wrapped or raw (aiohttp tells
    them apart by the first byte; lowserve refused raw deflate before), gzip."""
    pytest.importorskip("aiohttp")
    rng = random.Random(19)
    for _ in range(200):
        data = rng.randbytes(rng.randint(0, 3000)) * rng.randint(1, 3)
        chunks = _split(PACKERS[name](data), rng)
        decoder = BodyDecoder(_coding(name), 0)
        ours = b"".join(decoder.decode(c) for c in chunks)
        decoder.finish()
        assert ours == data
        if name != "x-gzip":  # aiohttp does not decode x-gzip at all (RFC 9110 §8.4.1.3 says to)
            assert _aiohttp_inflate(_coding(name), chunks) == data


@pytest.mark.parametrize("name", list(PACKERS))
def test_body_decoder_refuses_corrupt_and_truncated_data(name: str) -> None:
    packed = PACKERS[name](b"payload " * 1000)
    corrupt = packed[:2] + bytes(b ^ 0x55 for b in packed[2:12]) + packed[12:]
    with pytest.raises(WireError) as err:
        BodyDecoder(_coding(name), 0, "a part").decode(corrupt)
    assert err.value.status == 400 and err.value.detail.startswith("cannot decode a part: ")
    decoder = BodyDecoder(_coding(name), 0)
    decoder.decode(packed[:-5])
    with pytest.raises(WireError) as err:
        decoder.finish()
    assert err.value.status == 400 and "ends early" in err.value.detail


def test_body_decoder_bounds_the_decoded_size() -> None:
    packed = zlib.compress(b"\0" * 100_000)
    assert len(BodyDecoder("deflate", 100_000).decode(packed)) == 100_000
    with pytest.raises(WireError) as err:
        BodyDecoder("deflate", 99_999).decode(packed)
    assert err.value.status == 413 and err.value.detail == "decoded request body passes 99999 bytes"


def test_pieces_are_bounded_and_whole() -> None:
    """pieces() never holds more than one piece of a bomb; past the bound it stops."""
    bomb = gzip.compress(b"\0" * 2**20)
    decoder = BodyDecoder("gzip", 0)
    sizes = [len(p) for p in decoder.pieces(bomb, 4096)]
    decoder.finish()
    assert max(sizes) == 4096 and sum(sizes) == 2**20
    decoder = BodyDecoder("gzip", 10_000)
    seen = 0
    with pytest.raises(WireError) as err:
        for piece in decoder.pieces(bomb, 4096):
            seen += len(piece)
    assert err.value.status == 413 and seen == 8192 and decoder.total == 12_288


def test_deflate_waits_for_its_first_byte() -> None:
    """An empty piece first (a chunk-size line alone) does not decide zlib or raw."""
    decoder = BodyDecoder("deflate", 0)
    assert decoder.decode(b"") == b""
    assert decoder.decode(_raw_deflate(b"abc")) == b"abc"
    decoder.finish()
    with pytest.raises(WireError):
        BodyDecoder("deflate", 0).finish()  # no data at all: it never ended


def test_unknown_coding_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown content coding 'zstd'"):
        BodyDecoder("zstd", 0)


def test_br_when_brotli_is_installed() -> None:
    brotli = pytest.importorskip("brotli")
    packed = brotli.compress(b"brotli " * 1000)
    decoder = BodyDecoder("br", 0)
    assert b"".join(decoder.pieces(packed)) == b"brotli " * 1000
    decoder.finish()
    with pytest.raises(WireError) as err:
        BodyDecoder("br", 0).decode(b"\xff" * 10)
    assert err.value.status == 400


@pytest.mark.parametrize("name", ["deflate", "raw deflate"])
async def test_a_deflate_request_body_is_read_wrapped_or_raw(name: str) -> None:
    """Over a socket: aiohttp's server reads both (its DeflateBuffer sniffs the first
    byte); lowserve answered a raw one 400 before."""

    async def echo(request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read())

    payload = b"a body " * 500
    body = PACKERS[name](payload)
    async with serve(echo) as s:
        out = await exchange(
            s.port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: deflate\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body),
        )
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\n" + payload)
