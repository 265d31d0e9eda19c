"""What the wire refuses: request errors before any handler runs, and body decoding.

A :class:`WireError` carries the status lowserve answers with (400, 408, 413, 414,
415, 417, 431, 501, 505…); :func:`error_reply` is the whole short answer, always with
``Connection: close``. :class:`BodyDecoder` decodes gzip/deflate/br request bodies
and stops at ``client_max_size`` decoded bytes, so a small compressed body cannot
expand into a large one.
"""

from __future__ import annotations

import zlib
from typing import Any

from .framing import connection_header
from .head import REASONS, build_head, http_date

try:
    import brotli  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - optional
    brotli = None

__all__ = ["SUPPORTED_CODINGS", "BodyDecoder", "WireError", "error_reply"]


#: Request content codings lowserve can decode.
SUPPORTED_CODINGS: frozenset[bytes] = frozenset(
    (b"gzip", b"x-gzip", b"deflate", b"br")
    if brotli is not None
    else (b"gzip", b"x-gzip", b"deflate")
)


def error_reply(err: WireError, server_header: str | None) -> bytes:
    """The bytes of a short text answer to a refused request."""
    reason = REASONS.get(err.status, "")
    body = f"{err.status}: {reason} ({err.detail})".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Date", http_date()),
    ]
    if server_header is not None:
        headers.append(("Server", server_header))
    headers.append(("Connection", connection_header(False, 1) or "close"))
    return build_head(1, err.status, reason, headers) + body


class WireError(Exception):
    """A request the server refuses before any handler sees it."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


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
