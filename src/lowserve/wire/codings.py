"""Content codings, both ways: request bodies decoded, response bodies encoded.

gzip and deflate come from zlib; br from the optional ``brotli`` package, imported
here once. A request body is decoded by :class:`BodyDecoder`, which stops at
``client_max_size`` decoded bytes, so a small compressed body cannot expand into
a large one; a response body is encoded by :func:`make_compressor`'s compressor.
"""

from __future__ import annotations

import zlib
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
    """Decodes a gzip/deflate/br request body, bounded by ``client_max_size``."""

    __slots__ = ("_d", "_limit", "_total", "_zlib")

    def __init__(self, coding: str, limit: int) -> None:
        self._limit = limit
        self._total = 0
        self._zlib = coding != "br"
        if coding == "br":
            self._d: Any = brotli.Decompressor()
        elif coding == "gzip":
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            self._d = zlib.decompressobj(zlib.MAX_WBITS)

    def decode(self, data: bytes) -> bytes:
        try:
            if self._zlib:
                budget = self._limit - self._total + 1 if self._limit else 0
                out = self._d.decompress(data, budget)
            else:
                out = self._d.process(data)
        except Exception as exc:  # zlib.error, brotli.error
            raise WireError(400, f"cannot decode request body: {exc}") from None
        self._total += len(out)
        if self._limit and self._total > self._limit:
            raise WireError(413, f"decoded request body passes {self._limit} bytes")
        return bytes(out)
