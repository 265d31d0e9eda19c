"""What the wire refuses: request errors before any handler runs, and body decoding.

A :class:`WireError` carries the status lowserve answers with (400, 408, 413, 414,
415, 417, 431, 501, 505…); :func:`error_reply` is the whole short answer, always with
``Connection: close``.
"""

from __future__ import annotations

import re

from .framing import connection_header
from .head import REASONS, build_head, http_date

__all__ = ["WireError", "error_reply", "method_refusal", "syntax_refusal"]

_REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/(\d\.\d)\r?$", re.M)  # well formed


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


def method_refusal(start: bytes) -> WireError:
    """llhttp refused the method at the start of *start*: 501 for a token that looks
    like a method (upper-case letters, then a space), 400 for anything else."""
    words = start.split(b" ", 1)
    if words[0].isalpha() and words[0].isupper() and len(words) > 1:
        return WireError(501, "method not implemented")
    return WireError(400, "invalid method")


def syntax_refusal(detail: str, data: bytes) -> WireError:
    """llhttp refused *data* with *detail*: 505 for a well-formed request line whose
    version lowserve does not speak (HTTP/1.2, HTTP/3.0, HTTP/2's preface), else 400."""
    detail = detail or "malformed request"
    if detail in ("Invalid HTTP version", "Pause on PRI/Upgrade"):  # PRI: HTTP/2
        version = _REQUEST_LINE.search(data)
        if version is not None:
            return WireError(505, f"HTTP/{version[1].decode()} is not supported")
    return WireError(400, detail)
