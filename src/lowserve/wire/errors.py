"""What the wire refuses: request errors before any handler runs, and body decoding.

A :class:`WireError` carries the status lowserve answers with (400, 408, 413, 414,
415, 417, 431, 501, 505…); :func:`error_reply` is the whole short answer, always with
``Connection: close``.
"""

from __future__ import annotations

from .framing import connection_header
from .head import REASONS, build_head, http_date

__all__ = ["WireError", "error_reply"]


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
