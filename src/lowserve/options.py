"""One options object: the command builds it, :class:`~lowserve.Server` consumes it.

Every server option is defined here once, with its default and its documentation.
``Server(handler, **options)`` passes its keyword arguments straight to
:class:`ServerOptions`, so an unknown option is a ``TypeError`` naming it.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field, fields
from typing import Any

from ._version import __version__ as _version

__all__ = ["DEFAULT_SERVER_HEADER", "ServerOptions"]

_PY = ".".join(platform.python_version_tuple()[:2])
DEFAULT_SERVER_HEADER = f"Python/{_PY} lowserve/{_version}"


@dataclass(slots=True)
class ServerOptions:
    """How a :class:`~lowserve.Server` treats its connections (aiohttp's names where it has one)."""

    #: Seconds an idle keep-alive connection is kept open (aiohttp: 75).
    keepalive_timeout: float = 75.0
    #: Enable TCP keep-alive probes on accepted sockets.
    tcp_keepalive: bool = True
    #: Logger for the access log, or None to switch it off.
    access_log: logging.Logger | None = field(
        default_factory=lambda: logging.getLogger("lowserve.access")
    )
    #: Class that formats access-log records (see :mod:`lowserve.accesslog`).
    access_log_class: Any = None
    #: aiohttp's access-log format codes.
    access_log_format: str = '%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'
    #: Longest request line (method, target, version) in bytes: 414 past it.
    max_line_size: int = 8190
    #: Longest header line (name and value) in bytes: 431 past it.
    max_field_size: int = 8190
    #: Most header lines in one request: 431 past it.
    max_headers: int = 128
    #: Unread request body bytes buffered before reading from the socket pauses.
    read_bufsize: int = 2**16
    #: Seconds spent discarding an unread request body before closing instead.
    lingering_time: float = 10.0
    #: Decode gzip, deflate (and br, if brotli is installed) request bodies.
    auto_decompress: bool = True
    #: Put tracebacks in 500 responses.
    debug: bool = False
    #: Largest body ``read()``/``text()``/``json()``/``post()`` accept, and the largest a
    #: compressed body may decode to (413 past it); 0 for no limit.
    client_max_size: int = 1024**2
    #: Seconds allowed to receive a whole request head once it has begun: 408 past it.
    header_read_timeout: float = 10.0
    #: The ``Server`` header value, or None to send none.
    server_header: str | None = DEFAULT_SERVER_HEADER
    #: Send ``100 Continue`` when a handler first reads a body the client is holding back.
    expect_continue: bool = True
    #: Requests read ahead of the one being answered before reading pauses.
    max_pipeline: int = 32
    #: Cancel the handler when the client disconnects (aiohttp's handler_cancellation).
    handler_cancellation: bool = False
    #: Most simultaneous connections before new ones get 503 and close (0: no limit).
    limit_concurrency: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{f.name} must be a non-negative number, got {value!r}")
        if self.max_line_size < 16 or self.max_field_size < 16:
            raise ValueError("max_line_size and max_field_size must be at least 16")
        if self.max_pipeline < 1:
            raise ValueError("max_pipeline must be at least 1")
        if self.server_header is not None and any(c in self.server_header for c in "\r\n\0"):
            raise ValueError("server_header must not contain CR, LF or NUL")
