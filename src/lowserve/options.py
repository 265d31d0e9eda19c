"""One options object: the command builds it, :class:`~lowserve.Server` consumes it.

Every server option is defined here once, with :func:`~lowserve.optionspec.option`: its
default, its documentation, its bounds and whether it is a ``lowserve`` flag.
``Server(handler, **options)`` passes its keyword arguments straight to
:class:`ServerOptions`, so an unknown option is a ``TypeError`` naming it.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from typing import Any

from ._version import __version__ as _version
from .optionspec import check, option
from .wire.proxy import TrustedPeers

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_SERVER_HEADER",
    "DEFAULT_TLS_PORT",
    "ServerOptions",
]

#: Where ``lowserve``, ``lowserve.run`` and ``TCPSite`` listen when told nothing.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_TLS_PORT = 8443  # TCPSite with an SSL context, as aiohttp
#: The listen backlog of every site and of the command (aiohttp's sites use 128). At
#: 1,024 connections opened at once (wrk -c1024), 128 overflowed the accept queue
#: 1,100-1,450 times in 5 s (TcpExtListenOverflows): each dropped handshake waits
#: for TCP's one-second retry, which made p99 400-790 ms and the slowest request
#: 1.2-2.0 s; with 2048, no overflow, p99 48-66 ms. The kernel caps it at
#: net.core.somaxconn (4096 since Linux 5.4).
DEFAULT_BACKLOG = 2048

_PY = ".".join(platform.python_version_tuple()[:2])
DEFAULT_SERVER_HEADER = f"Python/{_PY} lowserve/{_version}"


@dataclass(slots=True)
class ServerOptions:
    """How a :class:`~lowserve.Server` treats its connections (aiohttp's names where it has one).

    Each field's help text is the documentation of the matching ``lowserve`` flag
    (``keepalive_timeout`` is ``--keepalive-timeout``), and its bounds are checked by the
    same function for both, so the two cannot drift apart.
    """

    keepalive_timeout: float = option(
        75.0, "Seconds an idle keep-alive connection stays open (0: close after each).", minimum=0
    )
    tcp_keepalive: bool = option(True, "TCP keep-alive probes on accepted sockets.", cli=False)
    access_log: logging.Logger | None = option(
        lambda: logging.getLogger("lowserve.access"),
        "Logger for the access log, or None for none.",
        cli=False,
        factory=True,
        kind=logging.Logger,
    )
    access_log_class: Any = option(
        None, "Class that writes access-log records.", cli=False, kind=type
    )
    logger: logging.Logger | None = option(
        None,
        "Logger for handler errors and refusals (None: the lowserve.server logger), as aiohttp's.",
        cli=False,
        kind=logging.Logger,
    )
    timeout_ceil_threshold: float = option(
        5.0,
        "Accepted for aiohttp compatibility and unused: lowserve's deadlines are swept, not "
        "rounded up.",
        cli=False,
        minimum=0,
    )
    access_log_format: str = option(
        '%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"',
        "Access-log format, in aiohttp's codes (%a %t %r %s %b %T %Tf %D %{H}i %{H}o), or "
        "json: one JSON object per line.",
    )
    access_log_exclude: tuple[str, ...] = option(
        (),
        "Paths left out of the access log (still answered and counted), separated by "
        "commas: health checks (/healthz); a trailing * matches a prefix.",
        separator=",",
        metavar="PATHS",
    )
    max_line_size: int = option(8190, "Longest request line in bytes (414 past it).", minimum=16)
    max_field_size: int = option(
        8190, "Longest header name or value in bytes (431 past it).", minimum=16
    )
    max_headers: int = option(128, "Most header lines in a request (431 past it).", minimum=1)
    read_bufsize: int = option(
        2**16,
        "Request body buffer, as aiohttp's: reading pauses past twice this many unread "
        "bytes and resumes below it.",
        cli=False,
        minimum=1,
    )
    lingering_time: float = option(
        10.0,
        "Seconds spent discarding an unread request body before closing.",
        cli=False,
        minimum=0,
    )
    auto_decompress: bool = option(True, "Decode gzip/deflate (and br) request bodies.", cli=False)
    debug: bool = option(False, "Put tracebacks in 500 responses.", cli=False)
    client_max_size: int = option(
        1024**2,
        "Largest body read()/text()/json()/post() accept, and largest a compressed body may "
        "decode to, in bytes (413 past it; 0: no limit, as is aiohttp's None).",
        minimum=0,
    )
    client_max_fields: int = option(
        1000,
        "Most fields post() accepts in an urlencoded or multipart body (413 past it; 0 or "
        "-1: no limit), as aiohttp's client_max_fields.",
        minimum=0,
        also=(-1,),
    )
    header_read_timeout: float = option(
        10.0,
        "Seconds to receive a whole request head once it has begun (408 past it).",
        minimum=0,
    )
    body_read_timeout: float = option(
        60.0,
        "Longest gap in seconds between the bytes of a request body while lowserve is "
        "reading it (the handler's read then raises RequestPayloadError: 408; 0: none).",
        minimum=0,
    )
    send_timeout: float = option(
        60.0,
        "Seconds a response may sit above the write buffer's high-water mark without the "
        "client reading any of it before the connection is closed (0: none).",
        minimum=0,
    )
    min_body_rate: int = option(
        500,
        "Least average rate of a request body in bytes a second, while lowserve reads it "
        "and once min_rate_grace has passed: a body may take grace + bytes / rate seconds, "
        "as with Apache's mod_reqtimeout MinRate (then the handler's read raises "
        "RequestPayloadError: 408; 0: none). 500 B/s is 4 kbit/s, below any real link; it "
        "stops a trickle that never leaves a gap of body_read_timeout.",
        minimum=0,
    )
    min_send_rate: int = option(
        500,
        "Least average rate in bytes a second at which a client takes a response held "
        "above the write buffer's high-water mark, once min_rate_grace has passed (then "
        "the connection is closed; 0: none). 500 B/s, as min_body_rate: it stops a client "
        "that reads a byte now and then to dodge send_timeout.",
        minimum=0,
    )
    min_rate_grace: float = option(
        20.0,
        "Seconds a body or a held-back response may move at any rate before min_body_rate "
        "and min_send_rate apply (mod_reqtimeout's body=20): a slow start, or a phone's "
        "radio waking up, is not cut short.",
        minimum=0,
    )
    drain_grace: float = option(
        1.5,
        "Seconds an idle keep-alive connection stays open once a graceful stop begins, so "
        "that a request already on its way is answered (with Connection: close).",
        minimum=0,
    )
    server_header: str | None = option(
        DEFAULT_SERVER_HEADER, "The Server header value, or None to send none.", cli=False
    )
    expect_continue: bool = option(
        True, "Send 100 Continue when a handler first reads a held-back body.", cli=False
    )
    max_pipeline: int = option(
        32, "Pipelined requests queued before reading pauses.", cli=False, minimum=1
    )
    handler_cancellation: bool = option(
        False, "Cancel the handler when its client disconnects.", cli=False
    )
    limit_concurrency: int = option(
        0,
        "Most open connections; past it new ones get 503 and close (0: no limit).",
        minimum=0,
    )
    proxy_headers: bool = option(
        False,
        "Trust Forwarded / X-Forwarded-For, -Proto, -Host from --forwarded-allow-ips peers: "
        "request.remote, scheme and host then reflect them.",
    )
    proxy_protocol: bool = option(
        False,
        "Read a PROXY protocol header (v1 or v2, HAProxy's send-proxy) before HTTP on "
        "every connection: request.remote is then the client it names. Accepted only "
        "from --forwarded-allow-ips peers; a connection without one is closed.",
    )
    forwarded_allow_ips: tuple[str, ...] = option(
        ("127.0.0.1", "::1", "unix"),
        "Peers (addresses, networks, unix for a proxy on a UNIX socket, or *), separated "
        "by commas, whose proxy headers are trusted with --proxy-headers.",
        separator=",",
    )

    http2: bool = option(
        True,
        "Serve HTTP/2 as well: over TLS when the client picks h2 by ALPN, in cleartext "
        "when it starts with the HTTP/2 preface (prior knowledge, h2c). Off: TLS offers "
        "http/1.1 only and the preface is answered 505.",
        flag="--http2/--no-http2",
    )
    http2_max_concurrent_streams: int = option(
        100,
        "Most HTTP/2 streams a connection may have open, and handlers it may have "
        "running, at once (SETTINGS_MAX_CONCURRENT_STREAMS); a stream past it is refused "
        "with REFUSED_STREAM. Streams the client reset count until their handlers end.",
        minimum=1,
    )
    http2_max_header_list_size: int = option(
        65536,
        "Largest HTTP/2 request header list, decoded, in bytes (SETTINGS_MAX_HEADER_LIST_SIZE): "
        "HPACK decoding stops past it, and the connection is closed with GOAWAY "
        "ENHANCE_YOUR_CALM (an HPACK bomb). "
        "A header block may also span at most 64 CONTINUATION frames.",
        minimum=1024,
    )
    http2_max_resets: int = option(
        200,
        "Most HTTP/2 streams a client may reset (or have refused) in 10 seconds before its "
        "connection is closed with GOAWAY ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487).",
        minimum=1,
    )
    http2_max_control_frames: int = option(
        2000,
        "Most HTTP/2 frames that carry no request (PING, SETTINGS, PRIORITY, empty DATA) a "
        "client may send in 10 seconds before its connection is closed with GOAWAY "
        "ENHANCE_YOUR_CALM (CVE-2019-9512, -9513, -9515, -9518).",
        minimum=10,
    )

    def __post_init__(self) -> None:
        if self.client_max_size is None:
            self.client_max_size = 0  # aiohttp's None: no limit (its checks test truth)
        check(self)  # the bounds, as the command checks its flags: ValueError naming the field
        if self.server_header is not None and any(c in self.server_header for c in "\r\n\0"):
            raise ValueError("server_header must not contain CR, LF or NUL")
        if isinstance(self.access_log_exclude, str):
            self.access_log_exclude = tuple(
                p.strip() for p in self.access_log_exclude.split(",") if p.strip()
            )
        if isinstance(self.forwarded_allow_ips, str):
            self.forwarded_allow_ips = tuple(
                ip.strip() for ip in self.forwarded_allow_ips.split(",") if ip.strip()
            )
        TrustedPeers(self.forwarded_allow_ips)  # ValueError naming a bad entry
