"""Wire helpers: status lines, header serialisation and validation, the Date cache.

Everything lowserve writes into a response head passes through :func:`build_head`,
which refuses CR, LF and NUL in the reason, any header name or value, and any
header name that is not an RFC 9110 token, before a single byte is written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Final, NamedTuple, Protocol

from .framing import DEFAULT_TYPE, Framing, connection_header, drops_length
from .headers import TOKEN, format_http_date

__all__ = [
    "GOOD_NAMES",
    "HEADS",
    "REASONS",
    "HttpVersion",
    "HttpVersion10",
    "HttpVersion11",
    "HttpVersion20",
    "build_head",
    "cache_head",
    "check_header_field",
    "complete_fields",
    "h2_fields",
    "http_date",
    "whole_answer",
]


class HttpVersion(NamedTuple):
    """An HTTP version as aiohttp spells it: ``HttpVersion(major=1, minor=1)``."""

    major: int
    minor: int


HttpVersion10: Final = HttpVersion(1, 0)
HttpVersion11: Final = HttpVersion(1, 1)
HttpVersion20: Final = HttpVersion(2, 0)

REASONS: Final[dict[int, str]] = {s.value: s.phrase for s in HTTPStatus}

_FORBIDDEN = re.compile(r"[\r\n\x00]")
_STATUS_LINES: dict[tuple[int, int, str], str] = {}
#: Header names already checked to be tokens (at most 512), for hot loops to skip
#: :func:`check_header_field` on; read-only outside this module.
GOOD_NAMES: set[str] = set()


def check_header_field(name: str, value: str) -> None:
    """Raise ValueError if *name* is not a token or *value* holds CR, LF or NUL."""
    if name not in GOOD_NAMES:
        if not TOKEN.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if len(GOOD_NAMES) < 512:
            GOOD_NAMES.add(name)
    if _FORBIDDEN.search(value):
        raise ValueError(f"header {name!r} has a CR, LF or NUL character in its value")


def status_line(minor: int, status: int, reason: str) -> str:
    """``HTTP/1.x <status> <reason>\\r\\n``, validated and cached."""
    key = (minor, status, reason)
    line = _STATUS_LINES.get(key)
    if line is None:
        if _FORBIDDEN.search(reason):
            raise ValueError("reason has a CR, LF or NUL character")
        line = f"HTTP/1.{minor} {status} {reason}\r\n"
        if len(_STATUS_LINES) < 1024:
            _STATUS_LINES[key] = line
    return line


def build_head(minor: int, status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise a response head; ValueError if any part would break the framing."""
    parts = [status_line(minor, status, reason)]
    good = GOOD_NAMES
    for name, value in headers:
        if name not in good or "\r" in value or "\n" in value or "\x00" in value:
            check_header_field(name, value)
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


#: Fields that manage a connection rather than describe the message: HTTP/2 carries
#: none of them (RFC 9113 §8.2.2).
CONNECTION_FIELDS: Final = (
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Transfer-Encoding",
    "Upgrade",
)


class Fields(Protocol):
    """The header multidict a response completes (``CIMultiDict[str]``)."""

    def __contains__(self, name: object) -> bool: ...
    def __setitem__(self, name: str, value: str) -> None: ...
    def __delitem__(self, name: str) -> None: ...
    def setdefault(self, name: str, default: str) -> str: ...


def complete_fields(
    headers: Fields,
    method: str,
    status: int,
    framing: Framing,
    length: int | None,
    server: str | None,
    minor: int | None,
) -> None:
    """Add the fields the server writes into a response head, in one fixed order: the
    framing (``Transfer-Encoding`` or no length), the default ``Content-Type``,
    ``Date``, ``Server``, then ``Connection`` for HTTP/1.*minor*; for HTTP/2 (*minor*
    None) the connection-specific fields are removed instead.

    The one writer of those fields for every head built from a header multidict
    (a streamed response's, and a ``Response``'s outside the cached fast path).
    """
    if framing.chunked and minor is not None:
        headers["Transfer-Encoding"] = "chunked"
    elif not framing.body:
        if "Content-Length" in headers and drops_length(method, status):
            del headers["Content-Length"]
        if "Transfer-Encoding" in headers:
            del headers["Transfer-Encoding"]
    if framing.body and length != 0:
        headers.setdefault("Content-Type", DEFAULT_TYPE)
    if "Date" not in headers:
        headers["Date"] = http_date()
    if server is not None:
        headers.setdefault("Server", server)
    if minor is None:
        for name in CONNECTION_FIELDS:
            if name in headers:
                del headers[name]  # every field of that name
    elif "Connection" not in headers:
        connection = connection_header(framing.keep_alive, minor)
        if connection is not None:
            headers["Connection"] = connection


def h2_fields(status: int, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A response head as HTTP/2 fields: ``:status`` first, names lower-cased (RFC 9113
    §8.2.1), each checked as :func:`build_head` checks it."""
    fields = [(":status", str(status))]
    good = GOOD_NAMES
    for name, value in headers:
        if name not in good or "\r" in value or "\n" in value or "\x00" in value:
            check_header_field(name, value)
        fields.append((name.lower(), value))
    return fields


_date_second = 0.0  # the second the cached values are for, and the next one
_date_until = 0.0
_date_value = ""
_date_line = ""
_date_line_bytes = b""


def http_date() -> str:
    """The current time as an IMF-fixdate, recomputed at most once a second."""
    global _date_second, _date_until, _date_value, _date_line, _date_line_bytes
    now = time.time()  # compiled: a C clock_gettime (see _ctime.pxd)
    if not _date_second <= now < _date_until:
        _date_second = float(int(now))
        _date_until = _date_second + 1.0
        _date_value = format_http_date(now)
        _date_line = f"Date: {_date_value}\r\n"
        _date_line_bytes = _date_line.encode()
    return _date_value


def date_line_bytes() -> bytes:
    """``b"Date: <now>\r\n"``, recomputed at most once a second."""
    if not _date_second <= time.time() < _date_until:
        http_date()
    return _date_line_bytes


def date_line() -> str:
    """``Date: <now>\r\n``, recomputed at most once a second."""
    if not _date_second <= time.time() < _date_until:
        http_date()
    return _date_line


HEADS: dict[tuple[Any, ...], tuple[bytes, bytes, bytes]] = {}


def cache_head(key: tuple[Any, ...]) -> tuple[bytes, bytes, bytes]:
    """A head with one Content-Type header (or none), cut around its length and date."""
    name, value, minor, status, reason, keep_alive, server = key
    if name:
        check_header_field(name, value)
        before = f"{status_line(minor, status, reason)}{name}: {value}\r\nContent-Length: "
        middle = ""
    else:  # no header: a body gets aiohttp's default type, after the length
        before = f"{status_line(minor, status, reason)}Content-Length: "
        middle = f"Content-Type: {DEFAULT_TYPE}\r\n" if value else ""
    after = f"Server: {server}\r\n" if server is not None else ""
    connection = connection_header(keep_alive, minor)
    if connection is not None:
        after += f"Connection: {connection}\r\n"
    parts = (before.encode(), middle.encode(), (after + "\r\n").encode())
    if len(HEADS) < 256:
        HEADS[key] = parts
    return parts


#: ``b"<n>\r\n"`` for the body lengths below _LENGTH_LINES_CACHED (the Content-Length
#: value ending a cached head); at most that many entries.
_LENGTH_LINES: dict[int, bytes] = {}
_LENGTH_LINES_CACHED = 4096

# The head whole_answer gave last, and what it was for: the same answer again (a
# server's commonest case) is found by comparing the fields, without building and
# hashing HEADS' 7-tuple key (~1,000 instructions a response, callgrind, CPython 3.11).
_last_name: str = ""
_last_value: str | bool = False
_last_version: HttpVersion = HttpVersion11
_last_status = 0
_last_reason = ""
_last_keep_alive = False
_last_server: str | None = None
_last_head: tuple[bytes, bytes, bytes] | None = None


def whole_answer(
    name: str,
    value: str | bool,
    version: HttpVersion,
    status: int,
    reason: str,
    keep_alive: bool,
    server: str | None,
    body: bytes | bytearray,
) -> bytes | None:
    """Head and body in one buffer, for an HTTP/1.*x* answer with one header *name*
    (a Content-Type: *value*) or none (*name* empty, *value* whether there is a body),
    its length known; its head cached (:func:`cache_head`). None when the one header
    is not a Content-Type (the caller serialises it in full)."""
    global _last_name, _last_value, _last_version, _last_status, _last_reason
    global _last_keep_alive, _last_server, _last_head
    cached = _last_head
    if not (
        cached is not None
        and status == _last_status
        and value == _last_value
        and name == _last_name
        and keep_alive == _last_keep_alive
        and reason == _last_reason
        and server == _last_server
        and version == _last_version
    ):
        key = (name, value, version[1], status, reason, keep_alive, server)
        cached = HEADS.get(key)
        if cached is None:
            if name and name.title() != "Content-Type":
                return None
            cached = cache_head(key)
        _last_name, _last_value, _last_version, _last_status = name, value, version, status
        _last_reason, _last_keep_alive, _last_server = reason, keep_alive, server
        _last_head = cached
    n = len(body)
    length_line = _LENGTH_LINES.get(n)
    if length_line is None:
        length_line = b"%d\r\n" % n
        if n < _LENGTH_LINES_CACHED:
            _LENGTH_LINES[n] = length_line
    if not _date_second <= time.time() < _date_until:
        http_date()
    # One join of cached pieces: b"%b%d..." % (...) cost ~400 more instructions a
    # response (callgrind, hello, CPython 3.11).
    return b"".join((cached[0], length_line, cached[1], _date_line_bytes, cached[2], body))
