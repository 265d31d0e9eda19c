"""Content codings, both ways: request bodies decoded, response bodies encoded.

gzip and deflate come from zlib; br from the optional ``brotli`` package, imported
here once. A request body, and a multipart part, is decoded by :class:`BodyDecoder`,
which stops at ``client_max_size`` decoded bytes, so a small compressed body cannot
expand into a large one; a response body is encoded by :func:`make_compressor`'s
compressor.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from enum import Enum
from typing import Any, Protocol

from .errors import WireError

try:
    import brotli  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - optional extra
    brotli = None

__all__ = [
    "SUPPORTED_CODINGS",
    "BodyDecoder",
    "Compressor",
    "ContentCoding",
    "make_compressor",
    "negotiate",
]


#: Request content codings lowserve can decode.
SUPPORTED_CODINGS: frozenset[bytes] = frozenset(
    (b"gzip", b"x-gzip", b"deflate", b"br")
    if brotli is not None
    else (b"gzip", b"x-gzip", b"deflate")
)


class ContentCoding(Enum):
    """Content codings lowserve can apply to a response body."""

    deflate = "deflate"
    gzip = "gzip"
    br = "br"
    identity = "identity"


def negotiate(accept_encoding: str) -> ContentCoding | None:
    """The coding ``enable_compression()`` uses for this ``Accept-Encoding``: deflate if
    named, else gzip, else none. aiohttp's choice, by the same substring test, so
    ``gzip, deflate`` (aiohttp's client's default) gets the same bytes as from aiohttp."""
    accept = accept_encoding.lower()
    for coding in (ContentCoding.deflate, ContentCoding.gzip):
        if coding.value in accept:
            return coding
    return None


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Brotli:
    __slots__ = ("_c",)

    def __init__(self) -> None:
        self._c = brotli.Compressor()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.process(data))

    def flush(self) -> bytes:
        return bytes(self._c.finish())


def make_compressor(encoding: str, strategy: int | None = None) -> Compressor:
    """A compressor for a content coding: ``gzip``, ``deflate`` or ``br``."""
    if encoding == "br":
        if brotli is None:
            raise RuntimeError("brotli compression needs the 'brotli' package")
        return _Brotli()
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    strat = zlib.Z_DEFAULT_STRATEGY if strategy is None else strategy
    return zlib.compressobj(wbits=wbits, strategy=strat)


class BodyDecoder:
    """Decodes a gzip (``x-gzip``), deflate or br body, bounded by *limit* decoded bytes
    (0: no bound); what it refuses is a :class:`WireError` that names *subject*.

    ``deflate`` is taken zlib-wrapped (RFC 9110) or raw, told apart by the first byte
    as aiohttp does for request bodies: a zlib stream's low four bits say method 8.
    """

    __slots__ = ("_d", "_limit", "_subject", "_zlib", "total")

    def __init__(self, coding: str, limit: int, subject: str = "request body") -> None:
        self._limit = limit
        self._subject = subject
        #: Decoded bytes so far.
        self.total = 0
        self._zlib = coding != "br"
        if coding == "br":
            self._d: Any = brotli.Decompressor()
        elif coding in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._d = None  # made once the first byte tells zlib from raw
        else:
            raise ValueError(f"unknown content coding {coding!r}")

    def decode(self, data: bytes) -> bytes:
        """The next piece of the body, decoded (400 if undecodable, 413 past *limit*)."""
        return self._run(data, self._limit - self.total + 1 if self._limit else 0)

    def pieces(self, data: bytes, size: int = 65536) -> Iterator[bytes]:
        """:meth:`decode` of *data*, as pieces of at most *size* bytes (br: one piece),
        so that a small input that inflates a thousandfold is never held whole."""
        while True:
            out = self._run(data, size)
            data = self._d.unconsumed_tail if self._zlib and self._d is not None else b""
            if not out and not data:
                return
            if out:
                yield out

    def finish(self) -> None:
        """Refuse (400) a body whose compressed data has not ended."""
        d = self._d
        if d is None or not (d.eof if self._zlib else d.is_finished()):
            raise WireError(400, f"cannot decode {self._subject}: the compressed data ends early")

    def _run(self, data: bytes, max_length: int) -> bytes:
        if self._d is None:
            if not data:
                return b""
            self._d = zlib.decompressobj(zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS)
        try:
            out = self._d.decompress(data, max_length) if self._zlib else self._d.process(data)
        except Exception as exc:  # zlib.error, brotli.error
            raise WireError(400, f"cannot decode {self._subject}: {exc}") from None
        self.total += len(out)
        if self._limit and self.total > self._limit:
            raise WireError(413, f"decoded {self._subject} passes {self._limit} bytes")
        return bytes(out)
